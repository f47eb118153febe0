package sim

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// single always sends to orchestrator 0 and never retries: the simulator
// then is a plain queue that theory can check.
type single struct{ limits Limits }

func (p single) Limits(time.Duration, *Request) Limits       { return p.limits }
func (p single) Pick(time.Duration, *Request, *Fleet) Choice { return Use(0) }
func (p single) Observe(time.Duration, *Attempt)             {}

// queueScenario is one client and one orchestrator in one region: Poisson
// arrivals at rate, servers servers with exponential service of mean 10 ms
// (p50 = 10·ln 2 ms) and a queue of queue places.
func queueScenario(t *testing.T, rate float64, servers, queue int, seconds int) *scenario.Scenario {
	t.Helper()
	src := fmt.Sprintf(`
name: mmc
seed: 5
duration: %ds
warmup: 20s
regions: [X]
rtt_ms: {same_region: 4}
classes:
  - {id: a, capability: llm, units: 1, slo_ms: 1000000, timeout_ms: 100000000, value: 0}
clients:
  - {id: c, region: X, rate: %g, mix: {a: 1}}
orchestrators:
  - {id: o, region: X, capacity: %d, queue: %d,
     classes: {a: {price: 1, p50_ms: %.15g, p99_ms: %.15g}}}
`, seconds, rate, servers, queue, 10*math.Ln2, 10*math.Ln2)
	sc, err := scenario.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func erlangC(c int, a float64) float64 {
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return float64(c) * b / (float64(c) - a*(1-b))
}

// mmcKBlocking is the M/M/c/K loss probability p_K with K = c + queue.
func mmcKBlocking(c, queue int, a float64) float64 {
	k := c + queue
	terms := make([]float64, k+1)
	term := 1.0
	sum := 0.0
	for n := 0; n <= k; n++ {
		if n > 0 {
			if n <= c {
				term *= a / float64(n)
			} else {
				term *= a / float64(c)
			}
		}
		terms[n] = term
		sum += term
	}
	return terms[k] / sum
}

// TestErlangC checks the mean queueing delay of an M/M/c queue against
// Erlang C: Wq = C(c, a) / (cμ − λ). 4 servers, μ = 100/s, λ = 320/s
// (ρ = 0.8), 600 s (≈190,000 requests), fixed seed; tolerance 5%.
func TestErlangC(t *testing.T) {
	const servers, mu, lambda = 4, 100.0, 320.0
	sc := queueScenario(t, lambda, servers, 1_000_000, 600)
	res, err := Run(context.Background(), sc, single{Limits{MaxAttempts: 1}}, Options{Service: Exponential})
	if err != nil {
		t.Fatal(err)
	}
	var wait, service float64
	n := 0
	for _, a := range res.Attempts {
		if a.Sent < sc.Warmup {
			continue
		}
		if a.Outcome != OK {
			t.Fatalf("attempt %d: got %v, want ok (no losses with an unbounded queue)", a.Request, a.Outcome)
		}
		wait += a.Wait.Seconds()
		service += a.Service.Seconds()
		n++
	}
	gotWq, gotS := wait/float64(n), service/float64(n)
	wantWq := erlangC(servers, lambda/mu) / (servers*mu - lambda)
	t.Logf("M/M/%d ρ=0.8, %d requests: mean wait %.3f ms (Erlang C %.3f ms, %+.1f%%), mean service %.3f ms (want 10)",
		servers, n, gotWq*1e3, wantWq*1e3, 100*(gotWq/wantWq-1), gotS*1e3)
	if math.Abs(gotWq/wantWq-1) > 0.05 {
		t.Errorf("mean queueing delay: got %.4f ms, want %.4f ms ± 5%%", gotWq*1e3, wantWq*1e3)
	}
	if math.Abs(gotS*mu-1) > 0.02 {
		t.Errorf("mean service: got %.4f ms, want 10 ms ± 2%%", gotS*1e3)
	}
}

// TestMMcKBlocking checks the share of attempts rejected at a full queue
// against the M/M/c/K loss probability (PASTA: Poisson arrivals see time
// averages). 2 servers, 3 queue places, a = λ/μ = 1.8; tolerance 5%
// relative.
func TestMMcKBlocking(t *testing.T) {
	const servers, queue, mu, lambda = 2, 3, 100.0, 180.0
	sc := queueScenario(t, lambda, servers, queue, 1200)
	res, err := Run(context.Background(), sc, single{Limits{MaxAttempts: 1}}, Options{Service: Exponential})
	if err != nil {
		t.Fatal(err)
	}
	rejected, n := 0, 0
	for _, a := range res.Attempts {
		if a.Sent < sc.Warmup {
			continue
		}
		n++
		switch a.Outcome {
		case Rejected:
			rejected++
			if a.Cost != 0 {
				t.Errorf("rejected attempt %d: got cost %v, want 0 (not billed)", a.Request, a.Cost)
			}
		case OK:
		default:
			t.Fatalf("attempt %d: got %v, want ok or rejected", a.Request, a.Outcome)
		}
	}
	got := float64(rejected) / float64(n)
	want := mmcKBlocking(servers, queue, lambda/mu)
	t.Logf("M/M/%d/%d a=1.8, %d attempts: rejected %.4f (theory %.4f, %+.1f%%)",
		servers, servers+queue, n, got, want, 100*(got/want-1))
	if math.Abs(got/want-1) > 0.05 {
		t.Errorf("blocking probability: got %.4f, want %.4f ± 5%%", got, want)
	}
}

// TestRoundTripsExact checks latency − service − wait == rtt for every
// attempt that got a reply, on a multi-region scenario with failures.
func TestRoundTripsExact(t *testing.T) {
	sc := loadScenario(t, "fault-storm")
	res, err := Run(context.Background(), sc, newRandom(NewEnv(sc, "random")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checked := map[Outcome]int{}
	for _, a := range res.Attempts {
		switch a.Outcome {
		case OK, Failed, Rejected, Refused, Unsupported:
		default:
			continue // abandoned: no reply to measure
		}
		checked[a.Outcome]++
		if got := a.Latency - a.Service - a.Wait; got != a.RTT {
			t.Fatalf("attempt %d/%d %v: latency %v − service %v − wait %v = %v, want rtt %v",
				a.Request, a.Seq, a.Outcome, a.Latency, a.Service, a.Wait, got, a.RTT)
		}
	}
	for _, o := range []Outcome{OK, Failed, Refused} {
		if checked[o] == 0 {
			t.Errorf("no %v attempts checked: the scenario should produce some", o)
		}
	}
	t.Logf("checked %v", checked)
}
