package optimizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests hold the advisor endpoints to go-livepeer's own reading of
// them (discovery/wh_discovery.go, cmd/livepeer/starter/starter.go
// updatePerfScore, server/selection_algorithm.go filterByPerfScore), as
// re-implemented here: go-livepeer is not a dependency.

// lpWebhookEntry is go-livepeer's webhookResponse.
type lpWebhookEntry struct {
	Address string  `json:"address,omitempty"`
	Score   float32 `json:"score,omitempty"`
}

// lpDeserializeWebhook is go-livepeer's deserializeWebhookJSON: entries
// without an address or whose address is not a request URI are dropped.
func lpDeserializeWebhook(t *testing.T, body []byte) (urls []string, scores []float32) {
	t.Helper()
	var addrs []lpWebhookEntry
	if err := json.Unmarshal(body, &addrs); err != nil {
		t.Fatalf("go-livepeer cannot unmarshal the webhook: %v in %s", err, body)
	}
	for _, a := range addrs {
		if a.Address == "" {
			continue
		}
		u, err := url.ParseRequestURI(a.Address)
		if err != nil {
			t.Errorf("go-livepeer drops %q: %v", a.Address, err)
			continue
		}
		urls, scores = append(urls, u.String()), append(scores, a.Score)
	}
	return urls, scores
}

// lpAddressRE is what ethcommon.Address accepts as a JSON map key.
var lpAddressRE = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

// lpUpdatePerfScore is go-livepeer's updatePerfScore for region: the whole
// document is refused when a key is not an address or a value not a
// number; otherwise each address's region "score" is taken.
func lpUpdatePerfScore(t *testing.T, region string, body []byte) map[string]float64 {
	t.Helper()
	var resp map[string]map[string]map[string]float64
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("go-livepeer cannot unmarshal perf-stats: %v in %s", err, body)
	}
	scores := map[string]float64{}
	for addr, regions := range resp {
		if !lpAddressRE.MatchString(addr) {
			t.Fatalf("go-livepeer refuses the whole document: key %q is not an address", addr)
		}
		if st, ok := regions[region]; ok {
			if sc, ok := st["score"]; ok {
				scores[addr] = sc
			}
		}
	}
	return scores
}

// lpFilterByPerfScore is go-livepeer's filterByPerfScore: with no minimum
// or no scores, everyone; else those at or above the minimum (a missing
// score is 0); and everyone again if nobody passes.
func lpFilterByPerfScore(addrs []string, scores map[string]float64, min float64) []string {
	if min <= 0 || len(scores) == 0 {
		return addrs
	}
	var res []string
	for _, a := range addrs {
		if scores[a] >= min {
			res = append(res, a)
		}
	}
	if len(res) == 0 {
		return addrs
	}
	return res
}

func body(t *testing.T, h http.Handler, path string) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: got %d, want 200", path, rec.Code)
	}
	return rec.Body.Bytes()
}

// TestAdvisorWebhookAsGoLivepeerReadsIt: the webhook decodes as go-livepeer
// decodes it, every entry survives its URL check, and every entry's score
// is ≥ 1 (Score_Trusted): the advised orchestrators form the trusted pool,
// and the ejected one is not in it.
func TestAdvisorWebhookAsGoLivepeerReadsIt(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.step(t)
	urls, scores := lpDeserializeWebhook(t, body(t, h.opt.AdvisorHandler(), WebhookPath))
	if len(urls) != 2 {
		t.Fatalf("got %v, want a and b (c is ejected)", urls)
	}
	for i, s := range scores {
		if s < 1 {
			t.Errorf("%s: got score %v, want ≥ 1 (go-livepeer's trusted pool is ScoreAtLeast(1))", urls[i], s)
		}
	}
	for _, u := range urls {
		if u == cfg.Catalog.Orchestrators[2].URL {
			t.Errorf("got the ejected %s in the trusted pool", u)
		}
	}
}

// TestAdvisorPerfStatsAsGoLivepeerFilters: perf-stats is keyed by address
// then region; go-livepeer's minimum-score filter, fed with it, keeps the
// healthy orchestrators and drops the ejected one; for a region the
// document does not name, nobody is scored and the filter keeps everyone.
func TestAdvisorPerfStatsAsGoLivepeerFilters(t *testing.T) {
	cfg, stats := failingFleet()
	cfg.AdvisorRegions = []string{"LAX"}
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.step(t)
	b := body(t, h.opt.AdvisorHandler(), PerfStatsPath)
	var all []string
	for _, o := range cfg.Catalog.Orchestrators {
		all = append(all, o.Address)
	}
	a, c := cfg.Catalog.Orchestrators[0].Address, cfg.Catalog.Orchestrators[2].Address
	for _, region := range []string{"FRA", "LAX"} {
		scores := lpUpdatePerfScore(t, region, b)
		kept := lpFilterByPerfScore(all, scores, 0.5)
		in := map[string]bool{}
		for _, k := range kept {
			in[k] = true
		}
		if !in[a] || in[c] {
			t.Errorf("%s: go-livepeer's filter at 0.5 keeps %v, want a (%s) and not the ejected c (%s)", region, kept, a, c)
		}
	}
	if kept := lpFilterByPerfScore(all, lpUpdatePerfScore(t, "SIN", b), 0.5); len(kept) != len(all) {
		t.Errorf("unscored region: got %v, want every orchestrator (go-livepeer does not filter without scores)", kept)
	}
}

// TestAdvisorStableWithoutData: before any round, and after rounds with
// no statistics at all, both endpoints answer documents go-livepeer
// accepts, the webhook is never an empty pool, and repeated reads are
// identical (go-livepeer hashes the webhook body to detect changes).
func TestAdvisorStableWithoutData(t *testing.T) {
	cfg, _ := failingFleet()
	cfg.AdvisorRegions = []string{"FRA"}
	h := newHarness(t, cfg)
	handler := h.opt.AdvisorHandler()
	check := func(when string) ([]byte, []byte) {
		hook, perf := body(t, handler, WebhookPath), body(t, handler, PerfStatsPath)
		if urls, _ := lpDeserializeWebhook(t, hook); len(urls) == 0 {
			t.Errorf("%s: got an empty pool, want every orchestrator", when)
		}
		lpUpdatePerfScore(t, "FRA", perf)
		return hook, perf
	}
	check("before the first round")
	h.step(t)
	hook1, perf1 := check("after an empty round")
	h.clock.advance(time.Minute)
	h.step(t)
	hook2, perf2 := check("after a second empty round")
	if !bytes.Equal(hook1, hook2) || !bytes.Equal(perf1, perf2) {
		t.Errorf("got different documents for the same (absent) data:\n%s%s\n%s%s", hook1, perf1, hook2, perf2)
	}
}

// advisorFleet is an optimizer over n orchestrators in three advisor
// regions, after one round.
func advisorFleet(t testing.TB, n int) http.Handler {
	cfg := DefaultConfig()
	cfg.AdvisorRegions = []string{"FRA", "LAX", "SIN"}
	specs := make([]orchSpec, n)
	var stats []Stat
	for i := range specs {
		specs[i] = orchSpec{fmt.Sprintf("o%04d", i), 1e-9 * float64(1+i%7), 8}
		stats = append(stats, stat(specs[i].id, 50, 48, 400+float64(i%50), 1500))
	}
	cfg.Catalog = catalogOf(3*time.Second, 0.02, specs...)
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.step(t)
	return h.opt.AdvisorHandler()
}

// TestAdvisorBounded: at 1,000 orchestrators each endpoint's body is
// bounded by the fleet (go-livepeer reads the webhook with a 3 s timeout;
// how fast it answers is BenchmarkAdvisorAnswer's, not a test's, to say).
func TestAdvisorBounded(t *testing.T) {
	const n = 1000
	handler := advisorFleet(t, n)
	for _, path := range []string{WebhookPath, PerfStatsPath} {
		if size := len(body(t, handler, path)); size > 300*n {
			t.Errorf("%s: got %d bytes, want ≤ %d (300 per orchestrator)", path, size, 300*n)
		}
	}
}

// BenchmarkAdvisorAnswer is one answer of each advisor endpoint at 1,000
// orchestrators (go-livepeer's webhook timeout is 3 s).
func BenchmarkAdvisorAnswer(b *testing.B) {
	handler := advisorFleet(b, 1000)
	for _, path := range []string{WebhookPath, PerfStatsPath} {
		b.Run(strings.TrimPrefix(path, "/orchestrators/"), func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: got %d", path, rec.Code)
				}
			}
		})
	}
}
