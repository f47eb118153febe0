package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/gateway"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/warehouse"
)

// The tolerances the gateway states (package gateway's documentation):
// split limits never admit more than the limit across routers; a budget
// shared through the warehouse, with each router's unseen spend held to
// its share of the remainder, overshoots by at most one request per other
// router (n − 1 requests' charge).

// heldUpstream is an orchestrator that answers every llm request after
// the X-Test-Hold-Ms the client asked for, counting requests in flight per
// X-Test-Key.
type heldUpstream struct {
	srv      *httptest.Server
	mu       sync.Mutex
	inFlight map[string]int
	maxIn    map[string]int
}

func newHeldUpstream(t *testing.T) *heldUpstream {
	u := &heldUpstream{inFlight: map[string]int{}, maxIn: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		k := r.Header.Get("X-Test-Key")
		u.mu.Lock()
		u.inFlight[k]++
		u.maxIn[k] = max(u.maxIn[k], u.inFlight[k])
		u.mu.Unlock()
		ms, _ := strconv.Atoi(r.Header.Get("X-Test-Hold-Ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
		u.mu.Lock()
		u.inFlight[k]--
		u.mu.Unlock()
		body := []byte(`{"choices":[{"message":{"role":"assistant","content":"ok"}}]}`)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *heldUpstream) max(key string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.maxIn[key]
}

// fleetOfRouters is N routers, each with its gateway and publisher, as
// cmd/loopgate wires them, sharing one Kafka topic and one warehouse.
type fleetOfRouters struct {
	urls   []string
	client *http.Client
	up     *heldUpstream
}

func secretOf(id string) string { return "lg-e2e-" + id }

func sha(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

func startRouters(t *testing.T, n int, brokers []string, topic string, st *warehouse.Store, keys []event.APIKey, gcfg gateway.Config) *fleetOfRouters {
	t.Helper()
	up := newHeldUpstream(t)
	f := &fleetOfRouters{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, up: up}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var pubs []*eventlog.Publisher
	var servers []*httptest.Server
	for i := range n {
		id := fmt.Sprintf("gw-e2e-%d", i+1)
		pcfg := eventlog.DefaultPublisherConfig()
		pcfg.Brokers, pcfg.Topic, pcfg.SpillDir = brokers, topic, t.TempDir()
		pub, err := eventlog.NewPublisher(pcfg, deps.Deps{Logger: logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		gw, err := gateway.New(gcfg, id, deps.Deps{Logger: logger(t)}, gateway.WithSpendSource(st))
		if err != nil {
			t.Fatal(err)
		}
		rcfg := router.DefaultConfig()
		rcfg.GatewayID = id
		rcfg.APIKeys = keys
		// The upstream holds each request for as long as the test asks (a
		// few ms in one subtest, 500 ms in the next), so its latency history
		// does not predict the next request's: the derived attempt timeout
		// would cut the 500 ms holds. These tests are about the gateway's
		// limits; attempts end at attempt_timeout.
		rcfg.DerivedTimeout.Disabled = true
		rcfg.Orchestrators = []router.OrchestratorConfig{{ID: "orch", URL: up.srv.URL, Classes: []router.ClassPrice{{Capability: event.CapLLM, Model: "m", PricePerUnit: 2e-5}}}}
		r, err := router.New(rcfg, pub, deps.Deps{Logger: logger(t), Rand: rand.New(rand.NewPCG(uint64(i), 7))}, router.WithGate(gw))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); _ = pub.Run(ctx) }()
		go func() { defer wg.Done(); _ = gw.Run(ctx) }()
		srv := httptest.NewServer(r.Handler())
		servers, pubs = append(servers, srv), append(pubs, pub)
		f.urls = append(f.urls, srv.URL)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		for _, p := range pubs {
			_ = p.Close(cctx)
		}
		cancel()
		wg.Wait()
	})
	return f
}

// answer is one response: its status, Retry-After and error body.
type answer struct {
	code       int
	retryAfter string
	err        event.APIError
}

func (f *fleetOfRouters) llm(t *testing.T, i int, key string, maxTokens, holdMs int) answer {
	body := fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":%d}`, maxTokens)
	req, err := http.NewRequest(http.MethodPost, f.urls[i%len(f.urls)]+"/llm", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Error(err)
		return answer{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secretOf(key))
	req.Header.Set("X-Test-Key", key)
	req.Header.Set("X-Test-Hold-Ms", strconv.Itoa(holdMs))
	resp, err := f.client.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if a.code != 200 {
		_ = json.Unmarshal(b, &a.err)
	}
	return a
}

// checkRefusal: every refusal names its limit (and, for 429, says when to retry).
func checkRefusal(t *testing.T, a answer, code int, limit string) {
	t.Helper()
	l := a.err.Error.Limit
	if a.code != code || l == nil || l.Name != limit || l.Value <= 0 || a.err.Error.Message == "" || a.err.Error.Reason == "" {
		t.Fatalf("got %d %+v (limit %+v), want %d naming %s with its value", a.code, a.err, l, code, limit)
	}
	if code == http.StatusTooManyRequests && limit != "units_per_minute.tokens" && a.retryAfter == "" {
		t.Fatalf("got no Retry-After on a %s refusal", limit)
	}
}

// TestGatewayLimitsThreeRouters drives keys over their rate, concurrency,
// units and budget limits through 3 routers on real Kafka and ClickHouse
// and measures how far the routers together go over each limit.
func TestGatewayLimitsThreeRouters(t *testing.T) {
	brokers := []string{testenv.Kafka(t)}
	st := openStore(t, backends[0].config(t))
	tc := topics(t, brokers)
	pipe := startPipeline(t, brokers, tc, st, pipelineOpts{group: "e2e-gateway-" + suffix(), drain: true})
	t.Cleanup(func() { pipe.stop(t) })

	const budgetUSD = 2.0
	keys := []event.APIKey{
		{ID: "rate", Customer: "c-rate", Limits: event.Limits{RequestsPerSecond: 30, Burst: 30}},
		{ID: "conc", Customer: "c-conc", Limits: event.Limits{Concurrency: 6}},
		{ID: "units", Customer: "c-units", Limits: event.Limits{UnitsPerMinute: map[event.UnitKind]int64{event.UnitTokens: 30000}}},
		{ID: "budget", Customer: "c-budget", Budgets: []event.Budget{{Period: event.PeriodDay, USD: budgetUSD}}},
	}
	for i := range keys {
		keys[i].SHA256 = sha(secretOf(keys[i].ID))
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Routers, gcfg.SyncInterval = 3, 200*time.Millisecond
	gcfg.Tiers = map[string]gateway.Tier{"std": {Prices: map[string]float64{"llm": 1e-4}}} // 100 tokens: 0.01 USD
	gcfg.DefaultTier = "std"
	f := startRouters(t, 3, brokers, tc.Outcomes, st, keys, gcfg)

	t.Run("rate", func(t *testing.T) {
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Since(start) < 2*time.Second; i += 12 {
					a := f.llm(t, i, "rate", 10, 0)
					if a.code == 200 {
						ok.Add(1)
						continue
					}
					checkRefusal(t, a, http.StatusTooManyRequests, "requests_per_second")
					refused.Add(1)
				}
			}()
		}
		wg.Wait()
		secs := time.Since(start).Seconds()
		bound := 30*secs + 30
		t.Logf("rate 30/s burst 30 over %.2f s through 3 routers: admitted %d, refused %d; limit allows %.0f, overshoot %.0f (%.1f %%)",
			secs, ok.Load(), refused.Load(), bound, float64(ok.Load())-bound, 100*(float64(ok.Load())-bound)/bound)
		if float64(ok.Load()) > bound {
			t.Errorf("admitted %d, over the limit's %.0f", ok.Load(), bound)
		}
		if refused.Load() == 0 || float64(ok.Load()) < 0.7*bound {
			t.Errorf("admitted %d of %.0f allowed, refused %d: the routers did not reach the limit", ok.Load(), bound, refused.Load())
		}
	})

	t.Run("concurrency", func(t *testing.T) {
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := f.llm(t, i, "conc", 10, 500)
				if a.code == 200 {
					ok.Add(1)
					return
				}
				checkRefusal(t, a, http.StatusTooManyRequests, "concurrency")
				refused.Add(1)
			}()
		}
		wg.Wait()
		t.Logf("concurrency 6 through 3 routers, 30 at once: most in flight at the orchestrator %d, admitted %d, refused %d", f.max("conc"), ok.Load(), refused.Load())
		if m := f.max("conc"); m > 6 || m < 3 {
			t.Errorf("got %d in flight at once, want 3..6", m)
		}
	})

	t.Run("units", func(t *testing.T) {
		var tokens int64
		refused := 0
		for i := range 60 {
			a := f.llm(t, i, "units", 1000, 0)
			if a.code == 200 {
				tokens += 1000
				continue
			}
			checkRefusal(t, a, http.StatusTooManyRequests, "units_per_minute.tokens")
			refused++
		}
		t.Logf("units 30000 tokens/min through 3 routers: admitted %d tokens, refused %d requests; overshoot %d", tokens, refused, tokens-30000)
		if tokens > 30000 || tokens < 27000 || refused == 0 {
			t.Errorf("admitted %d tokens with %d refused, want at most 30000 and near it", tokens, refused)
		}
	})

	t.Run("budget", func(t *testing.T) {
		// The stated tolerance holds while ingest keeps up: wait until the
		// outcomes so far are in ClickHouse (a fresh broker takes seconds to
		// give the consumer group a coordinator).
		testenv.Eventually(t, 60*time.Second, "ingest to catch up", func() bool {
			rows, err := st.Query(context.Background(), "SELECT count() FROM "+st.Database()+".requests WHERE api_key_id = 'units'")
			return err == nil && rows.Len() == 1 && toI64(rows.Values[0][0]) == 60
		})
		var ok, refused, pending, exceeded atomic.Int64
		var lastOK atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Since(start) < 8*time.Second; i += 6 {
					a := f.llm(t, i, "budget", 100, 20)
					switch {
					case a.code == 200:
						ok.Add(1)
						lastOK.Store(time.Since(start).Milliseconds())
						continue
					case a.code == http.StatusTooManyRequests:
						checkRefusal(t, a, http.StatusTooManyRequests, "budget.day.charge")
						if a.err.Error.Reason != gateway.CodeBudgetPending {
							t.Errorf("got 429 %s, want budget_pending", a.err.Error.Reason)
						}
						pending.Add(1)
					default:
						checkRefusal(t, a, http.StatusPaymentRequired, "budget.day.charge")
						exceeded.Add(1)
					}
					refused.Add(1)
				}
			}()
		}
		wg.Wait()
		// Every admitted request's outcome reaches the warehouse.
		var charged float64
		testenv.Eventually(t, 60*time.Second, "the budget key's outcomes in ClickHouse", func() bool {
			rows, err := st.Query(context.Background(), "SELECT count(), sum(charge), countIf(status = 'ok') FROM "+st.Database()+".requests WHERE api_key_id = 'budget'")
			if err != nil || rows.Len() != 1 {
				return false
			}
			charged = toF64(rows.Values[0][1])
			return toI64(rows.Values[0][0]) == ok.Load()+refused.Load() && toI64(rows.Values[0][2]) == ok.Load()
		})
		spendSecs := float64(lastOK.Load()) / 1000
		tolerance := 2 * 0.01 // (3 − 1) requests of 100 tokens at 1e-4 USD
		if exceeded.Load() == 0 {
			t.Errorf("no 402: the spent budget was never reported as exceeded")
		}
		over := charged - budgetUSD
		t.Logf("budget %.2f USD/day through 3 routers: charged %.4f USD in %d requests over %.2f s (%.2f USD/s), %d refused (%d 429 budget_pending, %d 402 budget_exceeded); overshoot %.4f USD (%.2f %%), stated tolerance %.4f USD",
			budgetUSD, charged, ok.Load(), spendSecs, charged/max(spendSecs, 0.001), refused.Load(), pending.Load(), exceeded.Load(), over, 100*over/budgetUSD, tolerance)
		if over > tolerance+1e-9 { // float sums of 0.01s
			t.Errorf("overshoot %.4f USD over the tolerance %.4f", over, tolerance)
		}
		if refused.Load() == 0 || charged < budgetUSD*0.9 {
			t.Errorf("charged %.4f of %.2f with %d refused: the budget was not reached", charged, budgetUSD, refused.Load())
		}
	})
}

func (f *fleetOfRouters) max(key string) int { return f.up.max(key) }

func toF64(v any) float64 {
	if x, ok := v.(float64); ok {
		return x
	}
	return -1
}

func toI64(v any) int64 {
	switch x := v.(type) {
	case uint64:
		return int64(x)
	case int64:
		return x
	}
	return -1
}
