package optimizer

import (
	"math"
	"net/http"
	"slices"
	"sort"
	"sync"
)

// Advisor endpoint paths, as stock go-livepeer gateways are pointed at them
// (-orchWebhookUrl, -orchPerfStatsUrl).
const (
	WebhookPath   = "/orchestrators/webhook"
	PerfStatsPath = "/orchestrators/perf-stats"
)

// webhookEntry is one element of go-livepeer's -orchWebhookUrl answer;
// score ≥ 1 puts the orchestrator in the trusted pool.
type webhookEntry struct {
	Address string  `json:"address"`
	Score   float64 `json:"score"`
}

// perfScore is one region's entry of go-livepeer's -orchPerfStatsUrl
// answer; go-livepeer reads "score" and uses it as a minimum-score filter.
type perfScore struct {
	Score float64 `json:"score"`
}

// advisorView is what the endpoints serve, rebuilt every round and
// swapped atomically. The webhook is built with the round; perf-stats,
// an on-time probability per orchestrator, region and class it serves
// (80,000 of them at 1,000 orchestrators, a tenth of the round), is built
// from the round's estimates when first asked for: go-livepeer reads it
// every 10 minutes, and rounds run every few seconds.
type advisorView struct {
	webhook  []webhookEntry
	fallback []webhookEntry // every eligible orchestrator with a URL

	perfOnce  sync.Once
	buildPerf func() map[string]map[string]perfScore // nil once built
	perf      map[string]map[string]perfScore        // address -> region -> score
}

// perfStats returns the perf-stats document, building it on first use.
func (v *advisorView) perfStats() map[string]map[string]perfScore {
	v.perfOnce.Do(func() {
		if v.buildPerf != nil {
			v.perf, v.buildPerf = v.buildPerf(), nil
		}
	})
	return v.perf
}

// AdvisorHandler serves the advisor endpoints for stock go-livepeer
// gateways:
//
//	GET /orchestrators/webhook     [{"address": "https://host:port", "score": 1}, ...]
//	GET /orchestrators/perf-stats  {"0xADDR": {"FRA": {"score": 0.93}}, ...}
//
// The webhook lists the non-ejected orchestrators (with a URL) whose
// largest share reaches Config.AdvisorMinShare, all with score 1 (the
// trusted pool); before the first round, or if none qualifies, it lists
// every non-ejected orchestrator with a URL, never an empty pool.
// perf-stats gives, per orchestrator with an on-chain address and per
// client region, the estimated probability that a request succeeds within
// its SLO at the planned load (demand-weighted over the classes it
// serves; 0 while ejected). Orchestrators without an address are left out:
// go-livepeer decodes the keys as addresses and rejects the whole document
// on any other key.
func (o *Optimizer) AdvisorHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+WebhookPath, func(w http.ResponseWriter, _ *http.Request) {
		v := o.advisor.Load()
		list := v.webhook
		if list == nil {
			list = []webhookEntry{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET "+PerfStatsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.advisor.Load().perfStats())
	})
	return mux
}

// initialAdvisor is served before the first round: every catalog
// orchestrator with a URL, and no scores.
func initialAdvisor(cat *Catalog) *advisorView {
	v := &advisorView{perf: map[string]map[string]perfScore{}}
	for _, o := range cat.Orchestrators {
		if o.URL != "" {
			v.webhook = append(v.webhook, webhookEntry{Address: o.URL, Score: 1})
		}
	}
	v.fallback = v.webhook
	return v
}

// advisorView builds what the advisor endpoints serve: the webhook now,
// perf-stats when first asked for (from the round's estimates and the
// planned utilisation, which no later step modifies: a round is not
// changed once planned).
func (pr *planner) advisorView() *advisorView {
	r, cfg, p := pr.r, pr.cfg, pr.p
	v := &advisorView{}
	maxShare := make([]float64, len(r.orchs))
	for k := range p.rows {
		for i, a := range p.rows[k].arcs {
			if pr.shares[k] != nil {
				maxShare[p.arcs[a].orch] = math.Max(maxShare[p.arcs[a].orch], pr.shares[k][i])
			}
		}
	}
	for i := range r.orchs {
		o := &r.orchs[i]
		if o.cfg.URL == "" || !o.eligible {
			continue
		}
		entry := webhookEntry{Address: o.cfg.URL, Score: 1}
		if maxShare[i] >= cfg.AdvisorMinShare {
			v.webhook = append(v.webhook, entry)
		}
		v.fallback = append(v.fallback, entry)
	}
	if len(v.webhook) == 0 {
		// Never advise an empty pool: go-livepeer would have no orchestrator.
		v.webhook = v.fallback
	}
	rho := slices.Clone(pr.sol.rho)
	v.buildPerf = func() map[string]map[string]perfScore { return pr.perfStats(rho) }
	return v
}

// perfStats is the perf-stats document at the planned utilisation rho.
func (pr *planner) perfStats(rho []float64) map[string]map[string]perfScore {
	r, cfg := pr.r, pr.cfg
	perf := map[string]map[string]perfScore{}
	regionSet := map[string]bool{}
	for _, reg := range r.regions {
		if reg != "" {
			regionSet[reg] = true
		}
	}
	for _, reg := range cfg.AdvisorRegions {
		regionSet[reg] = true
	}
	var regions []string
	for reg := range regionSet {
		regions = append(regions, reg)
	}
	sort.Strings(regions)
	// Each orchestrator's (class, index in the class) pairs, in class
	// order: the sums below add in the order a scan of every class would.
	type served struct{ class, j int }
	byOrch := make([][]served, len(r.orchs))
	for ci := range r.classes {
		for j, o := range r.classes[ci].orchs {
			byOrch[o] = append(byOrch[o], served{ci, j})
		}
	}
	for i := range r.orchs {
		o := &r.orchs[i]
		if !addressRE.MatchString(o.cfg.Address) {
			continue // go-livepeer rejects the whole document on a key that is not an address
		}
		load := 0.0
		if cfg.Solver.Queueing {
			load = rho[i]
		}
		scores := map[string]perfScore{}
		for _, reg := range regions {
			num, den := 0.0, 0.0
			for _, sv := range byOrch[i] {
				c := &r.classes[sv.class]
				est := r.estimate(cfg, sv.class, sv.j, reg, false)
				w := r.demand[demandKey{sv.class, reg}] + 1e-9 // classes without demand count a little
				num += w * est.p * onTime(est.lat, est.slots, load, c.slo)
				den += w
			}
			score := 0.0
			if den > 0 && o.eligible {
				score = math.Round(num/den*1000) / 1000
			}
			scores[reg] = perfScore{Score: score}
		}
		perf[o.cfg.Address] = scores
	}
	return perf
}
