package router

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/internal/testenv"
)

func TestBodyMemoryReserve(t *testing.T) {
	type step struct {
		key     string
		n       int64 // > 0 reserve, < 0 release
		wantWhy string
	}
	tests := []struct {
		name  string
		steps []step
		key   int64 // bytes of key "a" after the steps
		total int64
	}{
		{"within both caps", []step{{"a", 60, ""}, {"b", 60, ""}}, 60, 120},
		{"exactly at the key's cap", []step{{"a", 100, ""}}, 100, 100},
		{"one byte over the key's cap", []step{{"a", 100, ""}, {"a", 1, reasonBodyMemoryKey}}, 100, 100},
		{"over the global cap", []step{{"a", 100, ""}, {"b", 100, ""}, {"c", 51, reasonBodyMemory}}, 100, 200},
		{"release makes room", []step{{"a", 100, ""}, {"a", -100, ""}, {"a", 100, ""}}, 100, 100},
		{"nothing to reserve", []step{{"a", 0, ""}}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBodyMemory()
			for i, s := range tt.steps {
				if s.n < 0 {
					b.release(s.key, -s.n)
					continue
				}
				if why := b.reserve(s.key, s.n, 100, 250); why != s.wantWhy {
					t.Fatalf("step %d: got %q, want %q", i, why, s.wantWhy)
				}
			}
			if k, all := b.inUse("a"); k != tt.key || all != tt.total {
				t.Fatalf("got key a %d, all %d; want %d, %d", k, all, tt.key, tt.total)
			}
		})
	}
}

// TestBodyMemoryCapsOverHTTP: while a key's requests hold its body
// allowance a further request of that key is answered 429 with
// Retry-After (another key's still goes through); past the router's cap
// the answer is 503; the allowance comes back when the requests end.
func TestBodyMemoryCapsOverHTTP(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		okJSON(`{"images":[]}`)(w, r)
	})
	cfg := testConfig(orch("a", up.srv.URL, t2i(1)))
	cfg.MaxBodyBytes, cfg.BodyMemoryPerKey, cfg.BodyMemory = 600, 1000, 1500
	const key2, key3 = "lg-test-key-two-0123456789", "lg-test-key-three-0123456789"
	cfg.APIKeys = append(cfg.APIKeys, APIKeyConfig{ID: "key-2", SHA256: keyHash(key2)}, APIKeyConfig{ID: "key-3", SHA256: keyHash(key3)})
	tr := newTestRouter(t, cfg)
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	body := func(n int) []byte {
		b := `{"prompt":"` + strings.Repeat("x", n) + `","model_id":"m1"}`
		return []byte(b)
	}
	type answer struct {
		code int
		h    http.Header
		b    []byte
	}
	send := func(key string, b []byte, chunked bool) answer {
		var rd io.Reader = bytes.NewReader(b)
		if chunked {
			rd = io.MultiReader(rd) // unknown length
		}
		req, _ := http.NewRequest(http.MethodPost, tr.srv.URL+"/text-to-image", rd)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := tr.srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return answer{}
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, rb}
	}
	held := make(chan answer, 2)
	go func() { held <- send(testKey, body(500), false) }() // 529 bytes of key-1's 1000
	testenv.Eventually(t, 10*time.Second, "the first request held at the orchestrator", func() bool { return up.hits.Load() == 1 })

	for _, chunked := range []bool{false, true} {
		a := send(testKey, body(500), chunked)
		if a.code != http.StatusTooManyRequests || a.h.Get("Retry-After") == "" {
			t.Fatalf("chunked %v: a second body of the key: got %d %q (Retry-After %q), want 429 with Retry-After", chunked, a.code, a.b, a.h.Get("Retry-After"))
		}
		if e := apiError(t, a.h, a.b); e.Reason != reasonBodyMemoryKey {
			t.Fatalf("got reason %q, want %q", e.Reason, reasonBodyMemoryKey)
		}
	}
	go func() { held <- send(key2, body(500), false) }() // another key: served (1058 of 1500 in all)
	testenv.Eventually(t, 10*time.Second, "the second key's request held", func() bool { return up.hits.Load() == 2 })
	a := send(key3, body(500), false)
	if a.code != http.StatusServiceUnavailable || a.h.Get("Retry-After") == "" {
		t.Fatalf("past the router's cap: got %d %q, want 503 with Retry-After", a.code, a.b)
	}
	if e := apiError(t, a.h, a.b); e.Reason != reasonBodyMemory {
		t.Fatalf("got reason %q, want %q", e.Reason, reasonBodyMemory)
	}
	if _, all := tr.mem.inUse(""); all != int64(2*len(body(500))) {
		t.Fatalf("got %d bytes reserved, want the two held bodies' %d", all, 2*len(body(500)))
	}

	once.Do(func() { close(release) })
	for range 2 {
		if a := <-held; a.code != http.StatusOK {
			t.Fatalf("a held request: got %d %q, want 200", a.code, a.b)
		}
	}
	testenv.Eventually(t, 10*time.Second, "every reservation released", func() bool {
		_, all := tr.mem.inUse("")
		return all == 0
	})
	if a := send(testKey, body(500), true); a.code != http.StatusOK {
		t.Fatalf("after the release: got %d %q, want 200", a.code, a.b)
	}
}

// TestBodyBuffersAreFreed: the bodies of requests in flight are on the
// heap while they run and are freed once they end — nothing pools or
// pins them (the 193 → 341 MB "for good").
func TestBodyBuffersAreFreed(t *testing.T) {
	const n, size = 16, 2 << 20
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-release; okJSON(`{}`)(w, r) })
	cfg := testConfig(orch("a", up.srv.URL, t2i(1)))
	cfg.MaxBodyBytes, cfg.BodyMemoryPerKey, cfg.BodyMemory = size+1024, n*(size+1024), n*(size+1024)
	tr := newTestRouter(t, cfg)
	body := []byte(`{"prompt":"` + strings.Repeat("x", size) + `","model_id":"m1"}`)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // a second cycle also empties sync.Pools
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, tr.srv.URL+"/text-to-image", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testKey)
			if resp, err := tr.srv.Client().Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	testenv.Eventually(t, 20*time.Second, "every request at the orchestrator", func() bool { return up.hits.Load() == n })
	if _, all := tr.mem.inUse(""); all != int64(n*len(body)) {
		t.Fatalf("got %d bytes reserved, want %d", all, n*len(body))
	}
	// Both the router and the fake orchestrator hold each body now.
	if during := heap(); during < base+n*size {
		t.Fatalf("heap %d MiB with %d bodies of 2 MiB in flight, want at least %d MiB above the %d MiB before", during>>20, n, n*size>>20, base>>20)
	}
	close(release)
	wg.Wait()
	testenv.Eventually(t, 10*time.Second, "every reservation released", func() bool { _, all := tr.mem.inUse(""); return all == 0 })
	// The fake orchestrator keeps the last body it saw; allow that and slack.
	if after := heap(); after > base+4*size {
		t.Fatalf("heap %d MiB after the requests ended, want within %d MiB of the %d MiB before", after>>20, 4*size>>20, base>>20)
	}
}
