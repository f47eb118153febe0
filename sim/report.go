package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// Report is report.json: every policy's summary on one scenario.
type Report struct {
	Scenario string         `json:"scenario"`
	Seed     int64          `json:"seed"`
	Policies []PolicyReport `json:"policies"`
	Timing   []PolicyTiming `json:"-"` // wall time per policy, for the console
}

// PolicyTiming is how long one policy's run took on the machine.
type PolicyTiming struct {
	Name    string
	Elapsed time.Duration
	Events  int64
}

// PolicyReport is one policy's row, with exactly the fields the scenario
// format defines.
type PolicyReport struct {
	Name           string             `json:"name"`
	Requests       int                `json:"requests"`
	SuccessRate    float64            `json:"success_rate"`
	SLOAttainment  float64            `json:"slo_attainment"`
	LatencyMs      Percentiles        `json:"latency_ms"`
	CostPerRequest float64            `json:"cost_per_request"`
	LossPerRequest float64            `json:"loss_per_request"`
	ExtraAttempts  float64            `json:"extra_attempts"`
	RecoveryS      map[string]float64 `json:"recovery_s"`
	// ShedRate: requests refused at the edge without any attempt (the
	// policy gave up at once or after waiting) / requests counted.
	ShedRate float64 `json:"shed_rate"`
	// EdgeWaitMs: from arrival to the first attempt, over requests that
	// made one (waiting in the router's edge queue; 0 for a policy that
	// never waits).
	EdgeWaitMs WaitStats `json:"edge_wait_ms"`
	// OrchQueueMs: time attempts spent in orchestrators' queues before
	// service, over attempts that started service (the simulator's truth).
	OrchQueueMs WaitStats `json:"orch_queue_ms"`
	// Classes is the same per class, in scenario order.
	Classes []ClassReport `json:"classes"`
}

// WaitStats summarises a wait, in ms.
type WaitStats struct {
	Mean float64 `json:"mean"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
}

// ClassReport is one class's part of a policy's row.
type ClassReport struct {
	Class          string  `json:"class"`
	Requests       int     `json:"requests"`
	SLOAttainment  float64 `json:"slo_attainment"`
	ShedRate       float64 `json:"shed_rate"`
	LossPerRequest float64 `json:"loss_per_request"`
}

// Percentiles of client-observed latency of successful requests, in ms.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

// Recovery measurement: the rolling window and how far below the level of
// the minute before an event counts as a dip.
const (
	recoveryWindow   = 10 * time.Second
	recoveryBaseline = time.Minute
	recoveryStep     = 100 * time.Millisecond
	recoveryPoints   = 0.01
)

// Summarize turns a run into the policy's report row. Requests that arrive
// before the warmup are not counted.
func Summarize(sc *scenario.Scenario, name string, res *Result) PolicyReport {
	pr := PolicyReport{Name: name, RecoveryS: map[string]float64{}}
	var lat []float64
	var billed, missed float64
	attempts, tried, ok, met := 0, 0, 0, 0
	for i := range res.Requests {
		r := &res.Requests[i]
		if r.Arrival < sc.Warmup {
			continue
		}
		pr.Requests++
		attempts += r.Attempts
		if r.Attempts > 0 {
			tried++
		}
		billed += r.Cost
		if r.Success {
			ok++
			lat = append(lat, float64(r.Latency)/float64(time.Millisecond))
		}
		if r.SLOMet(sc) {
			met++
		} else {
			missed += sc.Classes[r.Class].Value
		}
	}
	if pr.Requests == 0 {
		return pr
	}
	n := float64(pr.Requests)
	pr.SuccessRate = float64(ok) / n
	pr.SLOAttainment = float64(met) / n
	pr.CostPerRequest = billed / n
	pr.LossPerRequest = (billed + missed) / n
	// Attempts beyond each request's first, per request: a request shed or
	// refused before any attempt has no first to count beyond.
	pr.ExtraAttempts = float64(attempts-tried) / n
	sort.Float64s(lat)
	pr.LatencyMs = Percentiles{
		P50: quantile(lat, 0.50), P95: quantile(lat, 0.95), P99: quantile(lat, 0.99), P999: quantile(lat, 0.999),
	}
	pr.RecoveryS = recovery(sc, res)
	shaping(sc, res, &pr)
	return pr
}

// shaping fills the shed rate, the edge and orchestrator waits and the
// per-class rows of pr.
func shaping(sc *scenario.Scenario, res *Result, pr *PolicyReport) {
	type acc struct {
		n, met, shed int
		loss         float64
	}
	classes := make([]acc, len(sc.Classes))
	first := make(map[int]time.Duration, len(res.Requests))
	for i := range res.Attempts {
		a := &res.Attempts[i]
		if a.Seq == 0 {
			first[a.Request] = a.Sent
		}
	}
	var edge []float64
	shed := 0
	for i := range res.Requests {
		r := &res.Requests[i]
		if r.Arrival < sc.Warmup {
			continue
		}
		c := &classes[r.Class]
		c.n++
		c.loss += r.Cost
		if r.SLOMet(sc) {
			c.met++
		} else {
			c.loss += sc.Classes[r.Class].Value
		}
		if r.Attempts == 0 && r.Outcome == Shed {
			c.shed++
			shed++
		}
		if sent, ok := first[r.ID]; ok && r.Attempts > 0 {
			edge = append(edge, float64(sent-r.Arrival)/float64(time.Millisecond))
		}
	}
	var orch []float64
	for i := range res.Attempts {
		a := &res.Attempts[i]
		if a.Service > 0 && res.Requests[a.Request].Arrival >= sc.Warmup {
			orch = append(orch, float64(a.Wait)/float64(time.Millisecond))
		}
	}
	pr.ShedRate = float64(shed) / float64(pr.Requests)
	pr.EdgeWaitMs, pr.OrchQueueMs = waitStats(edge), waitStats(orch)
	pr.Classes = make([]ClassReport, len(sc.Classes))
	for i, c := range classes {
		cr := ClassReport{Class: sc.Classes[i].ID, Requests: c.n}
		if c.n > 0 {
			n := float64(c.n)
			cr.SLOAttainment, cr.ShedRate, cr.LossPerRequest = float64(c.met)/n, float64(c.shed)/n, c.loss/n
		}
		pr.Classes[i] = cr
	}
}

func waitStats(v []float64) WaitStats {
	if len(v) == 0 {
		return WaitStats{}
	}
	sum := 0.0
	for _, x := range v { // in request or attempt order: a deterministic sum
		sum += x
	}
	sort.Float64s(v)
	return WaitStats{Mean: sum / float64(len(v)), P95: quantile(v, 0.95), P99: quantile(v, 0.99)}
}

// quantile is the nearest-rank quantile of sorted values (0 when empty).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// recovery computes recovery_s: for each distinct timeline time T, the
// baseline is the SLO attainment of requests that arrived in [T−60s, T);
// the rolling attainment at t is that of requests that arrived in
// (t−10s, t], evaluated every 100 ms from T on. If it drops more than one
// point below the baseline before the next timeline event (a later dip is
// that event's), recovery is the first t after the drop at which it is back
// within one point, minus T; a policy that never recovers before the end of
// the run gets the time to the end instead (a lower bound).
// Requests are placed by arrival, so a request is charged to the conditions
// it was sent into. Warmup requests count here: an event may come early.
func recovery(sc *scenario.Scenario, res *Result) map[string]float64 {
	out := map[string]float64{}
	reqs := res.Requests // in arrival order
	metPrefix := make([]int, len(reqs)+1)
	for i, r := range reqs {
		metPrefix[i+1] = metPrefix[i]
		if r.SLOMet(sc) {
			metPrefix[i+1]++
		}
	}
	// before(t) is the number of requests that arrived before t, upTo(t)
	// the number that arrived at t or before.
	before := func(t time.Duration) int {
		return sort.Search(len(reqs), func(i int) bool { return reqs[i].Arrival >= t })
	}
	upTo := func(t time.Duration) int {
		return sort.Search(len(reqs), func(i int) bool { return reqs[i].Arrival > t })
	}
	attainment := func(lo, hi int) (float64, bool) {
		if hi <= lo {
			return 0, false
		}
		return float64(metPrefix[hi]-metPrefix[lo]) / float64(hi-lo), true
	}
	for i, ch := range sc.Timeline {
		if i > 0 && ch.At == sc.Timeline[i-1].At {
			continue
		}
		base, ok := attainment(before(ch.At-recoveryBaseline), before(ch.At))
		if !ok {
			continue
		}
		key := scenario.FormatAt(ch.At)
		// A dip belongs to this event only if it starts before the next one.
		dipBy := sc.Duration
		for _, later := range sc.Timeline[i:] {
			if later.At > ch.At {
				dipBy = later.At
				break
			}
		}
		dipped, recovered := false, false
		for t := ch.At + recoveryStep; t <= sc.Duration && !recovered; t += recoveryStep {
			if !dipped && t > dipBy {
				break
			}
			att, ok := attainment(upTo(t-recoveryWindow), upTo(t))
			switch {
			case !ok:
			case !dipped:
				dipped = att < base-recoveryPoints
			case att >= base-recoveryPoints:
				out[key] = round3((t - ch.At).Seconds())
				recovered = true
			}
		}
		if dipped && !recovered {
			out[key] = round3((sc.Duration - ch.At).Seconds())
		}
	}
	return out
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// GapClosed is (loss_livepeer − loss_policy) / (loss_livepeer − loss_oracle):
// 1 matches the oracle, 0 is no better than go-livepeer, above 1 beats the
// oracle. It is NaN when livepeer and the oracle tie.
func GapClosed(lossPolicy, lossLivepeer, lossOracle float64) float64 {
	d := lossLivepeer - lossOracle
	if d == 0 {
		return math.NaN()
	}
	return (lossLivepeer - lossPolicy) / d
}

// ClassicNames lists the classic balancers a policy is judged against
// first: what an operator could switch on in an afternoon.
func ClassicNames() []string {
	return []string{PolicyRandom, PolicyRoundRobin, PolicyLeastInflight, PolicyP2CEWMA}
}

// BestClassic returns the name and loss per request of the classic
// balancer with the lowest loss in the report (the first on a tie);
// ok is false when the report has none.
func (r *Report) BestClassic() (name string, loss float64, ok bool) {
	for _, n := range ClassicNames() {
		if p := r.Policy(n); p != nil && (!ok || p.LossPerRequest < loss) {
			name, loss, ok = n, p.LossPerRequest, true
		}
	}
	return name, loss, ok
}

// VsBestClassic returns each policy's loss per request ÷ the best classic
// balancer's: below 1 beats every classic balancer. Nil when the report
// has no classic balancer; NaN for every policy when the best loss is 0.
func (r *Report) VsBestClassic() map[string]float64 {
	_, best, ok := r.BestClassic()
	if !ok {
		return nil
	}
	out := map[string]float64{}
	for _, p := range r.Policies {
		if best == 0 {
			out[p.Name] = math.NaN()
			continue
		}
		out[p.Name] = p.LossPerRequest / best
	}
	return out
}

// Policy returns the row of the named policy, or nil.
func (r *Report) Policy(name string) *PolicyReport {
	for i := range r.Policies {
		if r.Policies[i].Name == name {
			return &r.Policies[i]
		}
	}
	return nil
}

// GapClosed returns each policy's gap closed, or nil when the report lacks
// livepeer or oracle.
func (r *Report) GapClosed() map[string]float64 {
	lp, or := r.Policy(PolicyLivepeer), r.Policy(PolicyOracle)
	if lp == nil || or == nil {
		return nil
	}
	out := map[string]float64{}
	for _, p := range r.Policies {
		out[p.Name] = GapClosed(p.LossPerRequest, lp.LossPerRequest, or.LossPerRequest)
	}
	return out
}

// WriteJSON writes the report as report.json (indented).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report as a Markdown table (and a second one of
// recovery times when the scenario has a timeline).
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	gap, vs := r.GapClosed(), r.VsBestClassic()
	fmt.Fprintf(&b, "### %s (seed %d)\n\n", r.Scenario, r.Seed)
	b.WriteString("| policy | requests | success | SLO | p50 ms | p95 ms | p99 ms | p99.9 ms | cost/req | loss/req | vs best classic | extra att. | gap closed | shed | edge wait p95 ms | orch queue mean ms | orch queue p95 ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Policies {
		fmt.Fprintf(&b, "| %s | %d | %.4f | %.4f | %.0f | %.0f | %.0f | %.0f | %.5f | %.5f | %s | %.3f | %s | %.4f | %.0f | %.0f | %.0f |\n",
			p.Name, p.Requests, p.SuccessRate, p.SLOAttainment, p.LatencyMs.P50, p.LatencyMs.P95,
			p.LatencyMs.P99, p.LatencyMs.P999, p.CostPerRequest, p.LossPerRequest, ratioCell(vs, p.Name, "%.3f"),
			p.ExtraAttempts, ratioCell(gap, p.Name, "%.2f"), p.ShedRate, p.EdgeWaitMs.P95, p.OrchQueueMs.Mean, p.OrchQueueMs.P95)
	}
	writeClasses(&b, r.Policies)
	var events []string
	seen := map[string]bool{}
	for _, p := range r.Policies {
		for k := range p.RecoveryS {
			if !seen[k] {
				seen[k] = true
				events = append(events, k)
			}
		}
	}
	if len(events) > 0 {
		sort.Slice(events, func(i, j int) bool { return atSeconds(events[i]) < atSeconds(events[j]) })
		b.WriteString("\nrecovery (s; blank: never dipped)\n\n| policy |")
		for _, e := range events {
			b.WriteString(" " + e + " |")
		}
		b.WriteString("\n|---|" + strings.Repeat("---:|", len(events)) + "\n")
		for _, p := range r.Policies {
			b.WriteString("| " + p.Name + " |")
			for _, e := range events {
				if v, ok := p.RecoveryS[e]; ok {
					fmt.Fprintf(&b, " %.1f |", v)
				} else {
					b.WriteString("  |")
				}
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeClasses writes the per-class table (SLO attainment, shed rate,
// loss per request) when the policies' rows have more than one class.
func writeClasses(b *strings.Builder, ps []PolicyReport) {
	if len(ps) == 0 || len(ps[0].Classes) < 2 {
		return
	}
	b.WriteString("\nper class (SLO attainment / shed / loss per request)\n\n| policy |")
	for _, c := range ps[0].Classes {
		b.WriteString(" " + c.Class + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(ps[0].Classes)) + "\n")
	for _, p := range ps {
		b.WriteString("| " + p.Name + " |")
		for _, c := range p.Classes {
			fmt.Fprintf(b, " %.4f / %.4f / %.5f |", c.SLOAttainment, c.ShedRate, c.LossPerRequest)
		}
		b.WriteString("\n")
	}
}

func atSeconds(s string) float64 {
	var v float64
	fmt.Sscanf(strings.TrimSuffix(s, "s"), "%g", &v)
	return v
}

// ratioCell formats m[name], or a dash when it is absent or NaN.
func ratioCell(m map[string]float64, name, format string) string {
	if v, ok := m[name]; ok && !math.IsNaN(v) {
		return fmt.Sprintf(format, v)
	}
	return "—"
}

// WriteSummary writes the closing line of a run over several scenarios:
// for each policy, in the order of its first appearance, the worst (with
// its scenario) and the mean of loss ÷ best classic over the scenarios
// where both are known.
//
//	vs best classic over 5 scenarios (worst, mean): random 2.310 (price-shift), 1.621; …
func WriteSummary(w io.Writer, reps []*Report) error {
	type agg struct {
		worst, sum float64
		at         string
		n          int
	}
	var order []string
	by := map[string]*agg{}
	for _, r := range reps {
		vs := r.VsBestClassic()
		for _, p := range r.Policies {
			v, ok := vs[p.Name]
			if !ok || math.IsNaN(v) {
				continue
			}
			a := by[p.Name]
			if a == nil {
				a = &agg{}
				by[p.Name] = a
				order = append(order, p.Name)
			}
			if a.n == 0 || v > a.worst {
				a.worst, a.at = v, r.Scenario
			}
			a.sum += v
			a.n++
		}
	}
	if len(order) == 0 {
		return nil
	}
	parts := make([]string, len(order))
	for i, name := range order {
		a := by[name]
		parts[i] = fmt.Sprintf("%s %.3f (%s), %.3f", name, a.worst, a.at, a.sum/float64(a.n))
	}
	_, err := fmt.Fprintf(w, "\nvs best classic over %d scenarios (worst, mean): %s\n", len(reps), strings.Join(parts, "; "))
	return err
}
