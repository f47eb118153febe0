package router

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// BenchmarkSelect measures one routing decision (candidate list from live
// state, the weighted draw, taking and releasing the in-flight slot) for a
// class served by n orchestrators, with a policy giving every one a share
// and live latency and in-flight state on all of them.
func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchSelect(b, n, 1, false) })
	}
	// The baseline of the two-stage draw: 10,000 in one stage, as every
	// class was decided before groups.go.
	b.Run("10000-one-stage", func(b *testing.B) { benchSelect(b, 10000, 1, true) })
	// The same 10,000 orchestrators split over 100 classes: a decision
	// reads only its class's 100 members.
	b.Run("10000-in-100-classes", func(b *testing.B) { benchSelect(b, 10000, 100, false) })
}

func benchSelect(b *testing.B, n, classes int, oneStage bool) {
	cfg := DefaultConfig()
	cfg.APIKeys = nil
	var shares []event.Share
	for i := range n {
		id := fmt.Sprintf("o%05d", i)
		cfg.Orchestrators = append(cfg.Orchestrators, OrchestratorConfig{
			ID: id, URL: "http://" + id + ".invalid", MaxInFlight: 64,
			Classes: []ClassPrice{{Capability: event.CapTextToImage, Model: fmt.Sprint("m", i%classes), PricePerUnit: 1e-9},
				{Capability: event.CapLLM, Model: "llama", PricePerUnit: 1e-6}},
		})
		if i%classes == 0 {
			shares = append(shares, event.Share{Orchestrator: id, Share: float64(classes) / float64(n)})
		}
	}
	clock := newFakeClock()
	r, err := New(cfg, &fakePublisher{}, deps.Deps{Rand: rand.New(rand.NewPCG(1, 2)), Clock: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.SetPolicy(sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m0", Shares: shares})); err != nil {
		b.Fatal(err)
	}
	s := r.snap.Load()
	for i, o := range s.orchs {
		o.state.observeLatency(clock.Now(), float64(100+i%50), time.Second)
		o.state.inFlight.Store(int64(i % 5))
	}
	t := s.classes[classKey{event.CapTextToImage, "m0"}]
	if oneStage {
		t.groupEqual, t.groupDefault, t.groupRegion = nil, nil, nil
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		p, _, ok := r.choose(s, t, "LON", nil)
		lat = append(lat, time.Since(start))
		if !ok {
			b.Fatal("no choice")
		}
		p.m.o.state.release()
	}
	b.StopTimer()
	// The tail is what a request sees: report p50 and p99 of single decisions.
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkProxy sends the same small text-to-image request alternately
// straight to an httptest orchestrator and through the router to it, and
// reports requests per second and latency percentiles for both, in µs.
func BenchmarkProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"images":[{"url":"https://example.invalid/1.png","seed":7,"nsfw":false}]}`)
	}))
	defer upstream.Close()
	cfg := DefaultConfig()
	cfg.Orchestrators = []OrchestratorConfig{orch("a", upstream.URL, t2i(1e-9)), orch("b", upstream.URL+"/", t2i(1e-9))}
	cfg.APIKeys = []APIKeyConfig{{ID: "k", SHA256: keyHash(testKey), Customer: "c"}}
	r, err := New(cfg, discardPublisher{}, deps.Deps{Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	front := httptest.NewServer(r.Handler())
	defer front.Close()

	body := []byte(`{"prompt":"a lighthouse at dusk","model_id":"m1","height":512,"width":512}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	send := func(url string) time.Duration {
		req, _ := http.NewRequest(http.MethodPost, url+"/text-to-image", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testKey)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("got %d", resp.StatusCode)
		}
		return d
	}
	send(upstream.URL) // warm both connection pools
	send(front.URL)
	direct := make([]time.Duration, 0, b.N)
	routed := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		direct = append(direct, send(upstream.URL))
		routed = append(routed, send(front.URL))
	}
	b.StopTimer()
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		var total time.Duration
		for _, d := range ds {
			total += d
		}
		pct := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Nanoseconds()) / 1e3 }
		b.ReportMetric(float64(len(ds))/total.Seconds(), name+"_req/s")
		b.ReportMetric(pct(0.5), name+"_p50_µs")
		b.ReportMetric(pct(0.99), name+"_p99_µs")
	}
	report("direct", direct)
	report("router", routed)
}

type discardPublisher struct{}

func (discardPublisher) Publish(key, value []byte) error { return nil }
