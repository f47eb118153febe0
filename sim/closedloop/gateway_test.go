package closedloop

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/sim/scenarios"
)

// runGated runs the loopgate policy on sc and returns the result and what
// its gateway did; inspect, if not nil, sees the policy before it closes.
func runGated(t *testing.T, sc *scenario.Scenario, inspect func(*Policy)) (*sim.Result, GatewayStats) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.LibPath, cfg.TempDir = testenv.ChdbLib(t), t.TempDir()
	p, err := New(context.Background(), cfg, sim.NewEnv(sc, Name))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res, err := sim.Run(context.Background(), sc, p, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inspect != nil {
		inspect(p)
	}
	return res, p.Gateway()
}

// sloOf is the SLO attainment of the counted requests (after the warmup)
// of the clients keep selects.
func sloOf(sc *scenario.Scenario, res *sim.Result, keep func(client string) bool) (float64, int) {
	var met, n int
	for _, r := range res.Requests {
		if r.Arrival < sc.Warmup || !keep(sc.Clients[r.Client].ID) {
			continue
		}
		n++
		if r.SLOMet(sc) {
			met++
		}
	}
	return float64(met) / float64(max(n, 1)), n
}

// TestRunawayClient: in the runaway-client scenario the gateway section,
// applied through package gateway, keeps the runaway's spend within its
// budget, and the other clients' SLO attainment within 1 point of the
// same scenario without the runaway's 20× jump.
func TestRunawayClient(t *testing.T) {
	sc, err := scenarios.Load("runaway-client")
	if err != nil {
		t.Fatal(err)
	}
	calm := *sc
	calm.Timeline = nil // the runaway stays at its first rate
	if len(sc.Timeline) != 1 || sc.Timeline[0].Client != "runaway" {
		t.Fatalf("got timeline %+v, want the runaway's one jump", sc.Timeline)
	}

	var margins map[string][2]float64 // customer → charged, paid by the cookbook's query
	res, gs := runGated(t, sc, func(p *Policy) { margins = cookbookMargins(t, p) })
	calmRes, _ := runGated(t, &calm, nil)
	others := func(c string) bool { return c != "runaway" }
	slo, n := sloOf(sc, res, others)
	calmSLO, calmN := sloOf(&calm, calmRes, others)
	budget := sc.Gateway.Customers[0].Budgets[0].USD
	var runawaySent int
	for _, r := range res.Requests {
		if sc.Clients[r.Client].ID == "runaway" {
			runawaySent++
		}
	}
	t.Logf("other clients' SLO attainment: %.4f over %d requests with the runaway, %.4f over %d without (Δ %.2f points); runaway: %d sent, %d refused by the gateway, charged %.4f USD of its %.2f USD budget",
		slo, n, calmSLO, calmN, 100*(slo-calmSLO), runawaySent, gs.Refused["runaway"], gs.Charge["runaway"], budget)
	// The runaway's rate change moves the arrival streams a little.
	if n == 0 || math.Abs(float64(n-calmN)) > 0.002*float64(calmN) {
		t.Fatalf("got %d and %d requests of the other clients, want the same traffic in both runs", n, calmN)
	}
	if math.Abs(slo-calmSLO) > 0.01 {
		t.Errorf("other clients' SLO attainment moved %.2f points with the runaway, want at most 1", 100*(slo-calmSLO))
	}
	if gs.Charge["runaway"] > budget*(1+1e-9) {
		t.Errorf("runaway charged %.4f USD, over its budget %.2f", gs.Charge["runaway"], budget)
	}
	if gs.Refused["runaway"] == 0 || gs.Charge["runaway"] < 0.9*budget {
		t.Errorf("runaway refused %d times, charged %.4f: the gateway did not bind", gs.Refused["runaway"], gs.Charge["runaway"])
	}
	// The analysts' margin query on the run's warehouse gives back the
	// charges the gateway made.
	for client, customer := range map[string]string{"runaway": "runaway-co", "acme": "acme", "globex": "globex"} {
		m := margins[customer]
		if math.Abs(m[0]-gs.Charge[client]) > 1e-9*math.Max(1, gs.Charge[client]) || m[1] <= 0 {
			t.Errorf("customer %s: cookbook says charged %.6f paid %.6f, the gateway charged %.6f", customer, m[0], m[1], gs.Charge[client])
		}
	}
	t.Logf("margin per customer from the cookbook query: %v", margins)
	if gs.Refused["acme"]+gs.Refused["globex"] != 0 || gs.Charge["acme"] <= 0 {
		t.Errorf("the other clients were refused %d times, charged %v: want none refused and charged by the default tier", gs.Refused["acme"]+gs.Refused["globex"], gs.Charge["acme"])
	}
}

// cookbookMargins runs docs/ANALYSTS.md's margin query on the policy's
// warehouse (every outcome flushed) and sums it per customer.
func cookbookMargins(t *testing.T, p *Policy) map[string][2]float64 {
	t.Helper()
	ctx := context.Background()
	if err := p.flush(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../docs/ANALYSTS.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### Margin per customer, class and day, from the spend rollup\n\n```sql\n(.*?)```").FindSubmatch(raw)
	if m == nil {
		t.Fatal("no margin-from-rollup query in docs/ANALYSTS.md")
	}
	sql := strings.ReplaceAll(string(m[1]), "loopgate.", p.store.Database()+".")
	sql = strings.ReplaceAll(sql, "now()", fmt.Sprintf("toDateTime64('%s', 3, 'UTC')", Epoch().Add(p.sc.Duration).Format("2006-01-02 15:04:05")))
	rows, err := p.store.Query(ctx, sql)
	if err != nil {
		t.Fatalf("cookbook margin query: %v\n%s", err, sql)
	}
	out := map[string][2]float64{}
	for _, r := range rows.Values {
		c := fmt.Sprint(r[1])
		v := out[c]
		v[0] += r[5].(float64)
		v[1] += r[6].(float64)
		out[c] = v
	}
	return out
}

// TestGatedBaseline: Gated puts the scenario's gateway in front of a
// classic balancer as the loopgate policy applies it: the runaway's excess
// is refused before any attempt and its charge stays within its budget,
// the other clients are never refused, and without the section the same
// balancer serves the runaway as it comes.
func TestGatedBaseline(t *testing.T) {
	sc, err := scenarios.Load("runaway-client")
	if err != nil {
		t.Fatal(err)
	}
	bare := *sc
	bare.Gateway = nil
	budget := sc.Gateway.Customers[0].Budgets[0].USD
	for _, name := range []string{"least-inflight", "p2c-ewma"} {
		t.Run(name, func(t *testing.T) {
			run := func(sc *scenario.Scenario) (*sim.Result, GatewayStats) {
				p, err := Gated(sim.Baselines()[name])(context.Background(), sim.NewEnv(sc, name))
				if err != nil {
					t.Fatal(err)
				}
				res, err := sim.Run(context.Background(), sc, p, sim.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return res, GatewayOf(p)
			}
			refusedOf := func(res *sim.Result, client string) (refused int) {
				for _, r := range res.Requests {
					if sc.Clients[r.Client].ID == client && r.Attempts == 0 {
						refused++
					}
				}
				return refused
			}
			res, gs := run(sc)
			bareRes, bareGS := run(&bare)
			t.Logf("runaway: %d refused by the gateway (%d requests without attempts), charged %.4f of %.2f USD; without the section %d without attempts",
				gs.Refused["runaway"], refusedOf(res, "runaway"), gs.Charge["runaway"], budget, refusedOf(bareRes, "runaway"))
			if gs.Refused["runaway"] == 0 || refusedOf(res, "runaway") < gs.Refused["runaway"] {
				t.Errorf("got %d refusals and %d runaway requests without attempts, want refusals, each without an attempt", gs.Refused["runaway"], refusedOf(res, "runaway"))
			}
			if c := gs.Charge["runaway"]; c > budget*(1+1e-9) || c < 0.9*budget {
				t.Errorf("runaway charged %.4f USD, want within its %.2f USD budget and the budget binding", c, budget)
			}
			if n := gs.Refused["acme"] + gs.Refused["globex"]; n != 0 || gs.Charge["acme"] <= 0 {
				t.Errorf("other clients refused %d times, charged %v: want none refused, charged by the default tier", n, gs.Charge["acme"])
			}
			if bareGS.Refused != nil || refusedOf(bareRes, "runaway") >= refusedOf(res, "runaway")/10 {
				t.Errorf("without the section: stats %+v and %d runaway requests without attempts, want no gateway", bareGS, refusedOf(bareRes, "runaway"))
			}
		})
	}
}
