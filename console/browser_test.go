package console_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/loopgate/loopgate/internal/testenv"
)

// Environment variables of TestConsoleInBrowser.
const (
	// UpdateScreenshotEnv=1 also writes the screenshot to docs/console.png.
	UpdateScreenshotEnv = "LOOPGATE_UPDATE_SCREENSHOT"
	// ScreenshotDirEnv names a directory that gets a copy of every
	// screenshot (a CI artifact, or a look at a passing run).
	ScreenshotDirEnv = "LOOPGATE_SCREENSHOT_DIR"
	// FakeFrontierEnv=1 serves /frontier and /frontier/preview from a fake
	// in front of loopgate dev when its optimizer has none (before the
	// frontier is built), instead of skipping.
	FakeFrontierEnv = "LOOPGATE_CONSOLE_FAKE_FRONTIER"
)

const tokenID = "console-test"

// TestConsoleInBrowser is issue 11's browser test: it builds loopgate, runs
// `loopgate dev` on free ports, and drives the console in Debian's
// headless Chromium (chromedp): a wrong token is refused at the login box;
// the right one shows the frontier with the current point; the knob moves
// (arrow keys on the slider) and the preview changes; Apply, confirmed,
// sets λ. Then, through the HTTP API: /lambda and the next /policy carry
// the new λ, and the audit table has a config.lambda row naming the
// token. It saves a screenshot in the test's temp dir (and in
// docs/console.png with LOOPGATE_UPDATE_SCREENSHOT=1).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs loopgate dev and Chromium")
	}
	chromium := needChromium(t)
	lib := testenv.ChdbLib(t)
	started := time.Now()
	dev := startDev(t, lib)
	t.Logf("loopgate dev serving its first policy after %v", time.Since(started).Round(100*time.Millisecond))

	base := "http://" + dev.admin
	if code, body := dev.frontierStatus(t); code != http.StatusOK {
		why := fmt.Sprintf("GET /frontier answered %d (%s) after the first policy: this loopgate has no frontier yet (issue 11, item 3)", code, strings.TrimSpace(body))
		switch {
		case os.Getenv(FakeFrontierEnv) == "1":
			t.Logf("%s; serving a fake /frontier and /frontier/preview in front of it (%s=1)", why, FakeFrontierEnv)
			base = fakeFrontier(t, dev.admin)
		case testenv.CI():
			t.Fatalf("%s; required under CI=true", why)
		default:
			t.Skipf("%s; set %s=1 to drive the console against a fake frontier", why, FakeFrontierEnv)
		}
	}

	ctx := newBrowser(t, chromium)
	var pageErrs []string
	var mu sync.Mutex
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			mu.Lock()
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			pageErrs = append(pageErrs, fmt.Sprintf("%s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
			mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				mu.Lock()
				pageErrs = append(pageErrs, fmt.Sprintf("console.error %s", argsText(e.Args)))
				mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(what, expr string) {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
		if err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](pageState))
			shot(t, ctx, "failure.png", false)
			t.Fatalf("%s: %v\npage: %s", what, err, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	// A wrong token stays at the login box with the server's message.
	run("log in with a wrong token",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token-of-this-gateway"),
		chromedp.Click(chromedp.CSS("#login-submit")))
	poll("the login box answers", `document.querySelector('#login-msg').textContent !== ''`)
	if msg := text("#login-msg"); !strings.Contains(msg, "invalid token") {
		t.Errorf("login message after a wrong token: %q, want the server's \"invalid token\"", msg)
	}

	run("log in", chromedp.SendKeys(chromedp.CSS("#token"), dev.token), chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#app")))
	poll("the frontier is drawn with the current point", `document.querySelector('#frontier-plot').dataset.drawn === 'current'`)
	poll("the charts have data", `document.querySelector('#chart-slo canvas') !== null && document.querySelector('#table-policies').dataset.rows > 0`)
	if updateDocs() {
		// docs/console.png shows a few minutes of the per-minute charts.
		run("wait for three minutes of charts", chromedp.Poll[chromedp.Void](`document.querySelector('#chart-slo').dataset.points >= 4`,
			chromedp.WithPollingTimeout(5*time.Minute), chromedp.WithPollingInterval(time.Second)))
	}

	// The first rounds can have a flat frontier (too little data to tell
	// the orchestrators apart): wait until its ends differ, as an operator
	// would before turning the knob; then go to the far end of the knob.
	dev.waitFrontierSpread(t, 60*time.Second)
	lambda := dev.lambda(t)
	target := dev.farthestEnd(t, lambda)
	key := kb.ArrowLeft
	if target > lambda {
		key = kb.ArrowRight
	}
	run("move the knob", chromedp.Focus(chromedp.CSS("#knob")), chromedp.KeyEvent(strings.Repeat(key, int(math.Round(math.Abs(target-lambda)*100)))))
	want := strconv.FormatFloat(target, 'f', 2, 64)
	poll("the preview follows the knob", fmt.Sprintf(`document.querySelector('#preview').dataset.lambda === %q && document.querySelector('#frontier-plot').dataset.preview === %q`, want, want))
	// The preview must show a change from now to the knob's λ. A round can
	// be flat (every λ the same allocation) while the load is heavy; the
	// page asks again at every new policy, so wait for one that is not.
	poll("the preview shows a change", `Array.from(document.querySelectorAll('#preview tbody tr')).some(tr => tr.querySelector('td.cur').textContent !== tr.querySelector('td.new').textContent)`)
	now, at := text("#preview tbody tr:nth-child(2) td.cur"), text("#preview tbody tr:nth-child(2) td.new")
	t.Logf("preview: SLO attainment %s → %s at λ %s", now, at, want)
	shot(t, ctx, "console.png", true)

	run("apply", chromedp.Click(chromedp.CSS("#apply")))
	poll("the confirmation opens", `document.querySelector('#confirm').open`)
	if s := text("#confirm-table"); !strings.Contains(s, "→") || !strings.Contains(s, "cost / request") {
		t.Errorf("confirmation shows %q, want cost, SLO and p95 before → after", s)
	}
	run("confirm", chromedp.Click(chromedp.CSS("#confirm-apply")))
	poll("the page says λ is set", fmt.Sprintf(`document.querySelector('#knob-msg').dataset.applied === %q && !document.querySelector('#confirm').open`, want))

	// Through the HTTP API: the knob, the next policy, the audit row.
	if got := dev.lambda(t); math.Abs(got-target) > 1e-9 {
		t.Errorf("GET /lambda: %v, want %v", got, target)
	}
	testenv.Eventually(t, 30*time.Second, "a policy computed at λ "+want, func() bool {
		var p struct {
			Lambda float64 `json:"lambda"`
		}
		return dev.get(t, "/policy", &p) == http.StatusOK && math.Abs(p.Lambda-target) < 1e-9
	})
	var q struct {
		Rows [][]any `json:"rows"`
	}
	sql := "SELECT actor, action, detail FROM loopgate.audit WHERE action = 'config.lambda' ORDER BY time_ms DESC LIMIT 1"
	if code := dev.get(t, "/query?sql="+url.QueryEscape(sql), &q); code != http.StatusOK || len(q.Rows) != 1 {
		t.Fatalf("audit query: %d, %v rows", code, q.Rows)
	}
	if row := q.Rows[0]; row[0] != tokenID || !strings.Contains(fmt.Sprint(row[2]), `"new":`+strconv.FormatFloat(target, 'f', -1, 64)) {
		t.Errorf("audit row %v: want actor %s and the new λ %v", row, tokenID, target)
	}
	poll("the audit log on the page names the token", fmt.Sprintf(`document.querySelector('#table-audit').textContent.includes(%q)`, tokenID))
	shot(t, ctx, "console-applied.png", false)

	// Every chart's SQL runs on the real warehouse.
	var charts struct {
		Charts []struct{ ID, SQL string } `json:"charts"`
	}
	dev.get(t, "/console/charts.json", &charts)
	for _, c := range charts.Charts {
		var r struct {
			Columns []string `json:"columns"`
		}
		if code := dev.get(t, "/query?sql="+url.QueryEscape(c.SQL), &r); code != http.StatusOK {
			t.Errorf("chart %s: /query answered %d", c.ID, code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range pageErrs {
		t.Errorf("page error: %s", e)
	}
	t.Logf("browser test done %v after start", time.Since(started).Round(100*time.Millisecond))
}

// pageState is what a failed wait logs of the page.
const pageState = `JSON.stringify({
  status: document.querySelector('#status').textContent,
  login: document.querySelector('#login-msg').textContent,
  frontier: Object.assign({}, document.querySelector('#frontier-plot').dataset),
  note: document.querySelector('#frontier-note').textContent,
  knob: document.querySelector('#knob').value,
  preview: document.querySelector('#preview').dataset.lambda,
  knobMsg: document.querySelector('#knob-msg').textContent,
  confirm: document.querySelector('#confirm-msg').textContent,
})`

// needChromium returns Debian's chromium, or skips (fails under CI=true).
func needChromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if testenv.CI() {
			t.Fatalf("chromium is required under CI=true (deploy/local/chromium.sh install): %v", err)
		}
		t.Skipf("chromium not installed (deploy/local/chromium.sh install): %v", err)
	}
	return p
}

// newBrowser starts a headless Chromium for the test, on 127.0.0.1 only:
// chromedp talks to it over a pipe (no DevTools port at all), and every
// host name but 127.0.0.1 resolves to nothing, so the page cannot reach
// beyond this machine.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 1200),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	limit := 90 * time.Second
	if updateDocs() {
		limit = 7 * time.Minute
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, limit)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shot saves a full-page PNG in the test's temp dir and, when docs is set
// and LOOPGATE_UPDATE_SCREENSHOT=1, as docs/console.png.
func shot(t *testing.T, ctx context.Context, name string, docs bool) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
	if dir := os.Getenv(ScreenshotDirEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Error(err)
		}
	}
	if docs && updateDocs() {
		if err := os.WriteFile(filepath.Join("..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to docs/console.png")
	}
}

func updateDocs() bool { return os.Getenv(UpdateScreenshotEnv) == "1" }

func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		if a.Value != nil {
			parts = append(parts, string(a.Value))
		} else {
			parts = append(parts, a.Description)
		}
	}
	return strings.Join(parts, " ")
}

// devProcess is a running `loopgate dev`.
type devProcess struct {
	admin string // host:port
	token string // admin role, id tokenID
}

// startDev builds ./cmd/loopgate and runs `loopgate dev` on the default
// scenario with free ports, embedded Kafka and ClickHouse under the test's
// temp dir, an optimizer step every 2 s and an admin token from a tokens
// file; it returns once the first policy is served. The process gets
// SIGINT when the test ends.
func startDev(t *testing.T, lib string) *devProcess {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "loopgate")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/loopgate").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/loopgate: %v\n%s", err, out)
	}
	var b [24]byte
	if _, err := crand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	d := &devProcess{admin: testenv.FreeAddr(t), token: hex.EncodeToString(b[:])}
	tokens := filepath.Join(dir, "admin-tokens")
	if err := os.WriteFile(tokens, []byte(tokenID+" admin "+d.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("data_dir: %s\nrouter_addr: %s\nadmin:\n  addr: %s\n  tokens_file: %s\n  token_env: \"\"\nkafka:\n  embedded_port: 0\noptimizer:\n  period: 2s\n",
		filepath.Join(dir, "var"), testenv.FreeAddr(t), d.admin, tokens)
	cfgPath := filepath.Join(dir, "loopgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "dev", "--config", cfgPath, "--for", "10m", "--scenario", "steady-heterogeneous")
	cmd.Env = append(os.Environ(), "LOOPGATE_CHDB_LIB="+lib)
	done := testenv.Start(t, cmd, "loopgate-dev.log")
	deadline := time.Now().Add(60 * time.Second)
	for d.get(t, "/policy", nil) != http.StatusOK {
		select {
		case <-done:
			t.Fatal("loopgate dev exited before serving a policy")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("loopgate dev served no policy within 60 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	return d
}

// get asks the admin port with the token and decodes a 200's JSON into
// into (when not nil); it returns the status, 0 when the port is not up.
func (d *devProcess) get(t *testing.T, path string, into any) int {
	t.Helper()
	code, body := d.raw(path)
	if code == http.StatusOK && into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return code
}

func (d *devProcess) raw(path string) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, "http://"+d.admin+path, nil)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// waitFrontierSpread waits until the frontier's cheapest and fastest ends
// differ in predicted cost or SLO attainment.
func (d *devProcess) waitFrontierSpread(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var f struct {
			Points []struct {
				Cost float64 `json:"cost_per_request"`
				SLO  float64 `json:"slo_attainment"`
			} `json:"points"`
		}
		if d.get(t, "/frontier", &f) == http.StatusOK && len(f.Points) > 1 {
			first, last := f.Points[0], f.Points[len(f.Points)-1]
			if math.Abs(first.Cost-last.Cost) > 1e-3*math.Max(first.Cost, last.Cost) || math.Abs(first.SLO-last.SLO) > 1e-3 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the frontier stayed flat for %v: %+v", within, f.Points)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// farthestEnd is the end of the knob (0 or 1) whose frontier point is
// farthest from the current λ's, so the preview has something to show.
func (d *devProcess) farthestEnd(t *testing.T, current float64) float64 {
	t.Helper()
	var f struct {
		Points []struct {
			Lambda float64 `json:"lambda"`
			Cost   float64 `json:"cost_per_request"`
			SLO    float64 `json:"slo_attainment"`
		} `json:"points"`
	}
	if d.get(t, "/frontier", &f) != http.StatusOK || len(f.Points) < 2 {
		t.Fatalf("no frontier to choose a λ from: %+v", f.Points)
	}
	cur := f.Points[0]
	for _, p := range f.Points {
		if math.Abs(p.Lambda-current) < math.Abs(cur.Lambda-current) {
			cur = p
		}
	}
	dist := func(i int) float64 {
		p := f.Points[i]
		return math.Abs(p.Cost-cur.Cost)/math.Max(cur.Cost, 1e-12) + math.Abs(p.SLO-cur.SLO)
	}
	if dist(0) >= dist(len(f.Points)-1) {
		return f.Points[0].Lambda
	}
	return f.Points[len(f.Points)-1].Lambda
}

func (d *devProcess) lambda(t *testing.T) float64 {
	t.Helper()
	var l struct {
		Lambda float64 `json:"lambda"`
	}
	if code := d.get(t, "/lambda", &l); code != http.StatusOK {
		t.Fatalf("GET /lambda: %d", code)
	}
	return l.Lambda
}

// frontierStatus asks for /frontier once the first policy is out. Where
// the optimizer serves it, it answers 200 from the start (version 0 and no
// points before its first round, CONTRACT.md of the frontier work), so a
// 404 means the route is not there; one retry covers a slow start.
func (d *devProcess) frontierStatus(t *testing.T) (int, string) {
	t.Helper()
	code, body := d.raw("/frontier")
	if code != http.StatusOK {
		time.Sleep(2 * time.Second)
		code, body = d.raw("/frontier")
	}
	return code, string(body)
}

// fakeFrontier serves /frontier and /frontier/preview, with the JSON
// contract of the optimizer's, in front of loopgate dev's admin port, and
// passes everything else through (Host kept, so the admin server's origin
// checks see the page's own origin). Its numbers are a smooth made-up
// trade-off around the real λ, and its moves shift the real policy's
// largest shares: enough for the page, not a prediction.
func fakeFrontier(t *testing.T, admin string) string {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: admin}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		// Requests the browser drops when the test ends are no news.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	upstream := func(r *http.Request, path string, into any) bool {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, target.String()+path, nil)
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(into) == nil
	}
	type point struct {
		Lambda         float64 `json:"lambda,omitempty"`
		CostPerRequest float64 `json:"cost_per_request"`
		SLOAttainment  float64 `json:"slo_attainment"`
		P95Ms          float64 `json:"p95_ms"`
	}
	at := func(l float64) point {
		return point{Lambda: l, CostPerRequest: 0.0011 + 0.0016*math.Pow(l, 0.7), SLOAttainment: 0.81 + 0.17*math.Sqrt(l), P95Ms: 4100 - 2300*math.Sqrt(l)}
	}
	type policy struct {
		Version uint64 `json:"version"`
		Classes []struct {
			Capability   string `json:"capability"`
			Model        string `json:"model"`
			ClientRegion string `json:"client_region"`
			Shares       []struct {
				Orchestrator string  `json:"orchestrator"`
				Share        float64 `json:"share"`
			} `json:"shares"`
		} `json:"classes"`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /frontier", func(w http.ResponseWriter, r *http.Request) {
		var l struct {
			Lambda float64 `json:"lambda"`
		}
		var p policy
		if !upstream(r, "/lambda", &l) {
			http.Error(w, `{"error":{"message":"fake frontier: no λ"}}`, http.StatusUnauthorized)
			return
		}
		upstream(r, "/policy", &p)
		var pts []point
		for _, x := range []float64{0.001, 0.003, 0.01, 0.03, 0.06, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1} {
			pts = append(pts, at(x))
		}
		writeJSON(w, map[string]any{"version": p.Version, "lambda": l.Lambda, "points": pts, "computed_ms": time.Now().UnixMilli()})
	})
	mux.HandleFunc("GET /frontier/preview", func(w http.ResponseWriter, r *http.Request) {
		x, err := strconv.ParseFloat(r.URL.Query().Get("lambda"), 64)
		var l struct {
			Lambda float64 `json:"lambda"`
		}
		var p policy
		if err != nil || x < 0 || x > 1 || !upstream(r, "/lambda", &l) {
			http.Error(w, `{"error":{"message":"want ?lambda= in [0, 1]"}}`, http.StatusBadRequest)
			return
		}
		upstream(r, "/policy", &p)
		cur := at(l.Lambda)
		cur.Lambda = 0
		pv := at(x)
		pv.Lambda = 0
		var moves []map[string]any
		for _, c := range p.Classes {
			for i, s := range c.Shares {
				if i >= 2 || x == l.Lambda {
					break
				}
				to := math.Min(1, math.Max(0, s.Share+(x-l.Lambda)*0.4*float64(1-2*i)))
				moves = append(moves, map[string]any{"capability": c.Capability, "model": c.Model, "client_region": c.ClientRegion,
					"orchestrator": s.Orchestrator, "from": s.Share, "to": to})
			}
		}
		writeJSON(w, map[string]any{"lambda": x, "cost_per_request": pv.CostPerRequest, "slo_attainment": pv.SLOAttainment,
			"p95_ms": pv.P95Ms, "current": cur, "moves": moves})
	})
	mux.Handle("/", proxy)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
