package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

// firstThen is a policy that sends every first attempt to first (share 1,
// no exploration), so a retry must go elsewhere.
func firstThen(t *testing.T, tr *testRouter, first string) {
	t.Helper()
	if err := tr.SetPolicy(sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1",
		Shares: []event.Share{{Orchestrator: first, Share: 1}}})); err != nil {
		t.Fatal(err)
	}
}

func TestProxyForwardsUntouched(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Orch", "yes")
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "no")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"images":[{"url":"https://x/1.png","seed":1,"nsfw":false}]}`)
	})
	cfg := testConfig(orch("a", up.srv.URL+"/base/", t2i(1)))
	tr := newTestRouter(t, cfg)
	body := []byte(`{"prompt":"a cat","model_id":"m1","height":64,  "width":32}`)
	code, h, got := tr.post(t, "/text-to-image?x=1", "application/json", body, map[string]string{
		"Cookie": "session=1", "Prefer": "respond-async", HeaderClientRegion: "SIN",
	})
	if code != http.StatusOK || string(got) != `{"images":[{"url":"https://x/1.png","seed":1,"nsfw":false}]}` {
		t.Fatalf("got %d %q, want the orchestrator's 200 body", code, got)
	}
	if h.Get("X-Orch") != "yes" || h.Get("X-Secret-Hop") != "" || h.Get(HeaderRequestID) == "" {
		t.Fatalf("got response headers %v, want end-to-end headers relayed, hop-by-hop dropped, a request id", h)
	}
	req, fwd := up.lastRequest()
	if !bytes.Equal(fwd, body) {
		t.Fatalf("orchestrator got body %q, want it byte for byte %q", fwd, body)
	}
	if req.URL.Path != "/base/text-to-image" || req.URL.RawQuery != "x=1" {
		t.Fatalf("orchestrator got %s?%s, want /base/text-to-image?x=1", req.URL.Path, req.URL.RawQuery)
	}
	for _, hdr := range []string{"Authorization", "Cookie", HeaderClientRegion} {
		if v := req.Header.Get(hdr); v != "" {
			t.Fatalf("orchestrator got %s: %q, want it stripped", hdr, v)
		}
	}
	if req.Header.Get("Prefer") != "respond-async" || req.Header.Get(HeaderRequestID) != h.Get(HeaderRequestID) {
		t.Fatalf("orchestrator got headers %v, want Prefer and the request id forwarded", req.Header)
	}
	outs := tr.pub.wait(t, 1)
	if len(outs) != 1 || outs[0].ID != h.Get(HeaderRequestID) || outs[0].ClientRegion != "LON" {
		t.Fatalf("got outcomes %+v, want one with the response's id and the key's region (header not trusted)", outs)
	}
}

func TestRetryOnAnotherOrchestrator(t *testing.T) {
	tests := []struct {
		name      string
		first     http.HandlerFunc // nil: connection refused
		timeout   time.Duration
		want      event.AttemptResult
		wantClass string
		wantCode  int
	}{
		{"500", status(500, `{"error":"boom"}`), 0, event.AttemptError, "http_500", 500},
		{"503 busy", status(503, `{"error":"insufficient capacity"}`), 0, event.AttemptBusy, "busy", 503},
		{"connection refused", nil, 0, event.AttemptRefused, "connect", 0},
		{"hang past the attempt timeout", hang, 150 * time.Millisecond, event.AttemptTimeout, "timeout", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := newUpstream(t, okJSON(`{"ok":true}`))
			badURL := refusedURL(t)
			var bad *upstream
			if tt.first != nil {
				bad = newUpstream(t, tt.first)
				badURL = bad.srv.URL
			}
			cfg := testConfig(orch("bad", badURL, t2i(1)), orch("good", good.srv.URL, t2i(1)))
			cfg.Selection.Exploration = 0
			if tt.timeout > 0 {
				cfg.AttemptTimeout = tt.timeout
			}
			tr := newTestRouter(t, cfg)
			firstThen(t, tr, "bad")
			code, body := tr.postT2I(t)
			if code != http.StatusOK || string(body) != `{"ok":true}` {
				t.Fatalf("got %d %q, want the good orchestrator's 200", code, body)
			}
			if good.hits.Load() != 1 || (bad != nil && bad.hits.Load() != 1) {
				t.Fatalf("got hits good=%d, want each orchestrator once", good.hits.Load())
			}
			outs := tr.pub.wait(t, 1)
			if len(outs) != 1 || len(outs[0].Attempts) != 2 {
				t.Fatalf("got %+v, want one outcome with two attempts", outs)
			}
			a0, a1 := outs[0].Attempts[0], outs[0].Attempts[1]
			if a0.Orchestrator != "bad" || a0.Result != tt.want || a0.ErrorClass != tt.wantClass || a0.HTTPStatus != tt.wantCode || a0.Retry {
				t.Fatalf("first attempt: got %+v, want bad / %s / %s / %d", a0, tt.want, tt.wantClass, tt.wantCode)
			}
			if a1.Orchestrator != "good" || a1.Result != event.AttemptOK || !a1.Retry || a1.Propensity != 1 {
				t.Fatalf("second attempt: got %+v, want good / ok / retry, propensity 1 (the only one left)", a1)
			}
			if outs[0].Status != event.StatusOK || value(t, tr.m.retries.WithLabelValues(event.CapTextToImage)) != 1 {
				t.Fatalf("got status %s and %v retries, want ok and 1", outs[0].Status, value(t, tr.m.retries.WithLabelValues(event.CapTextToImage)))
			}
		})
	}
}

func TestNoRetryOnClientError(t *testing.T) {
	bad := newUpstream(t, status(422, `{"detail":{"msg":"prompt too long"}}`))
	good := newUpstream(t, okJSON(`{}`))
	cfg := testConfig(orch("a", bad.srv.URL, t2i(1)), orch("b", good.srv.URL, t2i(1)))
	cfg.Selection.Exploration = 0
	tr := newTestRouter(t, cfg)
	firstThen(t, tr, "a")
	code, body := tr.postT2I(t)
	if code != 422 || string(body) != `{"detail":{"msg":"prompt too long"}}` {
		t.Fatalf("got %d %q, want the orchestrator's 422 as is", code, body)
	}
	if good.hits.Load() != 0 {
		t.Fatal("a 4xx was retried")
	}
	o := tr.pub.wait(t, 1)[0]
	if o.Status != event.StatusError || o.HTTPStatus != 422 || len(o.Attempts) != 1 || o.Attempts[0].Result != event.AttemptClient || o.Attempts[0].Billed {
		t.Fatalf("got %+v, want one unbilled client attempt, status error, 422", o)
	}
	// A 4xx is the client's fault: it does not count against the orchestrator.
	if f := tr.snap.Load().byID["a"].state.failures.Load(); f != 0 {
		t.Fatalf("got %d failures for a, want 0", f)
	}
}

func TestMaxAttemptsRelaysLastFailure(t *testing.T) {
	var orchs []OrchestratorConfig
	var ups []*upstream
	for i := range 4 {
		u := newUpstream(t, status(502, fmt.Sprintf(`{"error":"orch %d down"}`, i)))
		ups = append(ups, u)
		orchs = append(orchs, orch(fmt.Sprint("o", i), u.srv.URL, t2i(1)))
	}
	cfg := testConfig(orchs...)
	cfg.MaxAttempts = 3
	tr := newTestRouter(t, cfg)
	code, _, body := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), nil)
	if code != 502 || !strings.Contains(string(body), "down") {
		t.Fatalf("got %d %q, want the last orchestrator's 502 relayed", code, body)
	}
	total := int64(0)
	for _, u := range ups {
		total += u.hits.Load()
		if u.hits.Load() > 1 {
			t.Fatal("an orchestrator was tried twice for one request")
		}
	}
	o := tr.pub.wait(t, 1)[0]
	if total != 3 || len(o.Attempts) != 3 || o.Status != event.StatusError || o.ErrorClass != "http_502" {
		t.Fatalf("got %d hits and outcome %+v, want 3 attempts, status error, class http_502", total, o)
	}
}

func TestRetryBudgetExhaustion(t *testing.T) {
	a := newUpstream(t, status(500, `{}`))
	b := newUpstream(t, status(500, `{}`))
	cfg := testConfig(orch("a", a.srv.URL, t2i(1)), orch("b", b.srv.URL, t2i(1)))
	cfg.RetryBudget = RetryBudgetConfig{Ratio: 0.2, MinPerSecond: 0, Window: time.Hour}
	cfg.Selection.EjectAfter = 1000 // keep both in play
	tr := newTestRouter(t, cfg)
	const requests = 30
	for range requests {
		if code, _ := tr.postT2I(t); code != 500 {
			t.Fatalf("got %d, want the orchestrators' 500", code)
		}
	}
	attempts := a.hits.Load() + b.hits.Load()
	retries := value(t, tr.m.retries.WithLabelValues(event.CapTextToImage))
	if retries > 0.2*requests || attempts != requests+int64(retries) {
		t.Fatalf("got %d attempts and %v retries for %d requests, want retries ≤ 20%%", attempts, retries, requests)
	}
	if retries < 0.2*requests-1 {
		t.Fatalf("got %v retries, want the budget used (≈ %v)", retries, 0.2*requests)
	}
	if value(t, tr.m.budgetExhausted) == 0 {
		t.Fatal("budget exhaustion not counted")
	}
}

func TestLocalEjectionThroughRouter(t *testing.T) {
	bad := newUpstream(t, status(500, `{}`))
	good := newUpstream(t, okJSON(`{}`))
	cfg := testConfig(orch("bad", bad.srv.URL, t2i(1)), orch("good", good.srv.URL, t2i(1)))
	cfg.Selection.Exploration = 0
	tr := newTestRouter(t, cfg)
	firstThen(t, tr, "bad")
	for i := range cfg.Selection.EjectAfter {
		if code, _ := tr.postT2I(t); code != 200 {
			t.Fatalf("request %d: got %d, want 200 after a retry", i, code)
		}
	}
	if bad.hits.Load() != int64(cfg.Selection.EjectAfter) {
		t.Fatalf("got %d hits on bad, want %d", bad.hits.Load(), cfg.Selection.EjectAfter)
	}
	// Ejected: the policy's favourite is skipped, no attempt is wasted on it.
	for range 5 {
		tr.postT2I(t)
	}
	if bad.hits.Load() != int64(cfg.Selection.EjectAfter) {
		t.Fatal("an ejected orchestrator was tried")
	}
	st := tr.Orchestrators()[0]
	if !st.Ejected || st.EjectedUntil == "" {
		t.Fatalf("got status %+v, want bad ejected", st)
	}
	// After the ejection the next request probes it again; a failure
	// re-ejects it at once.
	tr.clock.Advance(cfg.Selection.EjectBase)
	tr.postT2I(t)
	if bad.hits.Load() != int64(cfg.Selection.EjectAfter)+1 {
		t.Fatal("bad was not probed after its ejection ended")
	}
	if !tr.Orchestrators()[0].Ejected {
		t.Fatal("a failed probe did not re-eject")
	}
	// Recovery: it answers again once probed.
	bad.set(okJSON(`{}`))
	tr.clock.Advance(cfg.Selection.EjectMax)
	tr.postT2I(t)
	tr.pub.wait(t, cfg.Selection.EjectAfter+5+1+1) // state is updated before the outcome is published
	if st := tr.Orchestrators()[0]; st.Ejected || st.ConsecutiveFailures != 0 {
		t.Fatalf("got %+v, want bad back after a successful probe", st)
	}
	if value(t, tr.m.ejections) != 2 {
		t.Fatalf("got %v ejections counted, want 2", value(t, tr.m.ejections))
	}
}

func TestRequestDeadline(t *testing.T) {
	a := newUpstream(t, hang)
	cfg := testConfig(orch("a", a.srv.URL, t2i(1)))
	cfg.RequestTimeout = 150 * time.Millisecond
	tr := newTestRouter(t, cfg)
	code, body := tr.postT2I(t)
	if code != http.StatusGatewayTimeout {
		t.Fatalf("got %d %q, want 504", code, body)
	}
	errorMessage(t, body)
	o := tr.pub.wait(t, 1)[0]
	if o.Status != event.StatusTimeout || o.HTTPStatus != 504 || o.Attempts[0].Result != event.AttemptTimeout {
		t.Fatalf("got %+v, want status timeout, 504, a timed-out attempt", o)
	}
}

func TestAllRefused503(t *testing.T) {
	cfg := testConfig(orch("a", refusedURL(t), t2i(1)), orch("b", refusedURL(t), t2i(1)))
	tr := newTestRouter(t, cfg)
	code, body := tr.postT2I(t)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("got %d %q, want 503", code, body)
	}
	errorMessage(t, body)
	o := tr.pub.wait(t, 1)[0]
	if len(o.Attempts) != 2 || o.Cost != 0 || o.Charge != 0 || o.Status != event.StatusError {
		t.Fatalf("got %+v, want two unbilled refused attempts, no charge", o)
	}
}

func TestStreamingResponseIsRelayed(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"chunk\":%d}\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	cfg := testConfig(orch("a", up.srv.URL, ClassPrice{Capability: event.CapLLM, Model: "llama", PricePerUnit: 1e-6}))
	tr := newTestRouter(t, cfg)
	code, h, body := tr.post(t, "/llm", "application/json",
		[]byte(`{"model":"llama","messages":[{"role":"user","content":"hi"}],"max_tokens":100,"stream":true}`), nil)
	want := "data: {\"chunk\":0}\n\ndata: {\"chunk\":1}\n\ndata: {\"chunk\":2}\n\n"
	if code != 200 || string(body) != want || h.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %q (%s), want the event stream", code, body, h.Get("Content-Type"))
	}
	o := tr.pub.wait(t, 1)[0]
	if o.Model != "llama" || o.Units != 100 || o.UnitKind != event.UnitTokens || o.BytesOut != int64(len(want)) {
		t.Fatalf("got %+v, want model llama, 100 tokens, %d bytes out", o, len(want))
	}
}

func TestClientGoneIsRecordedAsCanceled(t *testing.T) {
	arrived := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	tr := newTestRouter(t, testConfig(orch("a", up.srv.URL, t2i(1))))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tr.srv.URL+"/text-to-image", strings.NewReader(`{"prompt":"x","model_id":"m1"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	errc := make(chan error, 1)
	go func() {
		resp, err := tr.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("got a response, want the cancelled request to fail")
	}
	o := tr.pub.wait(t, 1)[0]
	if o.Status != event.StatusCanceled || o.HTTPStatus != statusClientClosed || len(o.Attempts) != 1 || o.Attempts[0].Result != event.AttemptCanceled {
		t.Fatalf("got %+v, want status canceled, 499, one canceled attempt", o)
	}
	// The client leaving is not the orchestrator's failure.
	if f := tr.snap.Load().byID["a"].state.failures.Load(); f != 0 {
		t.Fatalf("got %d failures, want 0", f)
	}
}

func TestTrustedClientRegionHeader(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	cfg := testConfig(orch("a", up.srv.URL, t2i(1)))
	cfg.TrustClientRegionHeader = true
	tr := newTestRouter(t, cfg)
	for i, tt := range []struct{ header, want string }{{"SIN", "SIN"}, {"not a region!", "LON"}, {"", "LON"}} {
		tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), map[string]string{HeaderClientRegion: tt.header})
		if got := tr.pub.wait(t, i+1)[i].ClientRegion; got != tt.want {
			t.Fatalf("header %q: got region %q, want %q", tt.header, got, tt.want)
		}
	}
}

// TestDerivedAttemptTimeout: an orchestrator that has answered in 10 ms
// for a while and then hangs is abandoned at the timeout its own latency
// derives (TimeoutConfig: 1.5 × p99.9, at least Min), not at the
// configured attempt_timeout, and the request is retried on the other one.
// Disabled, the hang lasts until attempt_timeout.
func TestDerivedAttemptTimeout(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		t.Run(fmt.Sprintf("disabled=%v", disabled), func(t *testing.T) {
			good := newUpstream(t, okJSON(`{"ok":true}`))
			a := newUpstream(t, okJSON(`{"ok":true}`))
			cfg := testConfig(orch("a", a.srv.URL, t2i(1)), orch("good", good.srv.URL, t2i(1)))
			cfg.Selection.Exploration = 0
			cfg.AttemptTimeout, cfg.RequestTimeout = time.Minute, 2*time.Minute
			cfg.DerivedTimeout.Disabled = disabled
			cfg.DerivedTimeout.MinSamples = 5
			if disabled {
				cfg.AttemptTimeout = 300 * time.Millisecond // so the disabled case ends too
			}
			tr := newTestRouter(t, cfg)
			a.set(advancing(tr.clock, 10*time.Millisecond, `{"ok":true}`))
			firstThen(t, tr, "a")
			for range 6 {
				if code, _ := tr.postT2I(t); code != http.StatusOK {
					t.Fatalf("warm-up: got %d", code)
				}
			}
			a.set(hang)
			began := time.Now()
			if code, body := tr.postT2I(t); code != http.StatusOK || string(body) != `{"ok":true}` {
				t.Fatalf("got %d %q, want the good orchestrator's 200", code, body)
			}
			// Not a speed check: without the derived timeout the hang lasts
			// exactly attempt_timeout (a minute), with it about Min.
			if took := time.Since(began); !disabled && took >= cfg.AttemptTimeout {
				t.Errorf("the hung attempt lasted %v, the whole attempt_timeout", took)
			}
			outs := tr.pub.wait(t, 7)
			last := outs[len(outs)-1]
			if len(last.Attempts) != 2 || last.Attempts[0].Result != event.AttemptTimeout || last.Attempts[1].Orchestrator != "good" {
				t.Fatalf("got attempts %+v, want a timeout on a, then good", last.Attempts)
			}
			want := cfg.DerivedTimeout.Min // 1.5 × p99.9 of a steady 10 ms is below it
			if disabled {
				want = cfg.AttemptTimeout
			}
			if got := tr.timeouts.timeout(cfg.DerivedTimeout, "a", classKey{event.CapTextToImage, "m1"}, cfg.RequestTimeout, cfg.AttemptTimeout); got != want {
				t.Errorf("a's attempt timeout: got %v, want %v", got, want)
			}
		})
	}
}
