package optimizer

import (
	"net/http"
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
// swapped atomically.
type advisorView struct {
	webhook  []webhookEntry
	fallback []webhookEntry                  // every eligible orchestrator with a URL
	perf     map[string]map[string]perfScore // address -> region -> score
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
		writeJSON(w, http.StatusOK, o.advisor.Load().perf)
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
