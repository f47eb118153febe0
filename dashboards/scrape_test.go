package dashboards

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/internal/testenv"
)

// MetricsTokenEnv names the read token TestPrometheusFindsEveryMetric gives
// loopgate and its Prometheus (authorization.credentials_file); unset, the
// test makes a random one.
const MetricsTokenEnv = "LOOPGATE_METRICS_TOKEN"

// metricsNamed returns every loopgate metric the dashboards and the alert
// rules name, sorted.
func metricsNamed(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	for _, g := range committed(t) {
		for _, p := range g.Panels {
			for _, tg := range p.Targets {
				for _, m := range metricRe.FindAllString(tg.Expr, -1) {
					set[m] = true
				}
			}
		}
	}
	for _, r := range alertRules(t) {
		for _, m := range metricRe.FindAllString(r.Expr, -1) {
			set[m] = true
		}
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// TestPrometheusFindsEveryMetric builds loopgate, runs `loopgate dev`
// (router, ingest and optimizer in one process with a simulated fleet and
// load, every port free), starts Debian's Prometheus scraping its admin
// port, and asks Prometheus's HTTP API for every metric a dashboard or an
// alert rule names.
func TestPrometheusFindsEveryMetric(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs loopgate and Prometheus")
	}
	prom := needTool(t, "prometheus")
	lib := testenv.ChdbLib(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "loopgate")
	build := exec.Command("go", "build", "-o", bin, "../cmd/loopgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/loopgate: %v\n%s", err, out)
	}

	// Prometheus scrapes /metrics with a read token, as in production: the
	// token is in loopgate's tokens file and in Prometheus's credentials
	// file (deploy/prometheus/prometheus.yml has the same block).
	token := os.Getenv(MetricsTokenEnv)
	if token == "" {
		var b [24]byte
		if _, err := crand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		token = hex.EncodeToString(b[:])
	}
	tokensFile := filepath.Join(dir, "admin-tokens")
	if err := os.WriteFile(tokensFile, []byte("prometheus read "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin, routerAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := fmt.Sprintf("data_dir: %s\nrouter_addr: %s\nadmin:\n  addr: %s\n  tokens_file: %s\nkafka:\n  embedded_port: 0\n", filepath.Join(dir, "var"), routerAddr, admin, tokensFile)
	cfgPath := filepath.Join(dir, "loopgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := exec.Command(bin, "dev", "--config", cfgPath, "--for", "3m", "--scenario", "steady-heterogeneous")
	dev.Env = append(os.Environ(), "LOOPGATE_CHDB_LIB="+lib)
	testenv.Start(t, dev, "loopgate-dev.log")

	tf := filepath.Join(dir, "token")
	if err := os.WriteFile(tf, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := "    authorization:\n      credentials_file: " + tf + "\n"

	promAddr := testenv.FreeAddr(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	abs, _ := filepath.Abs(filepath.Join(promDir, "alerts.yml"))
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: loopgate-dev
    static_configs:
      - targets: [%q]
%s`, abs, admin, auth)), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, exec.Command(prom, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn"), "prometheus.log")

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(url string, header map[string]string, into any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		if into == nil {
			return nil
		}
		return json.Unmarshal(buf.Bytes(), into)
	}

	// A refused request, so the router's refusal counter has a series
	// (its label values appear on first use).
	for ctx.Err() == nil {
		if err := get("http://"+routerAddr+"/healthz", nil, nil); err == nil || !strings.Contains(err.Error(), "connection refused") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+routerAddr+"/text-to-image", strings.NewReader(`{"prompt":"x"}`)); err == nil {
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}

	want := metricsNamed(t)
	var missing []string
	for {
		var names struct {
			Data []string `json:"data"`
		}
		err := get("http://"+promAddr+"/api/v1/label/__name__/values", nil, &names)
		have := map[string]bool{}
		for _, n := range names.Data {
			have[n] = true
		}
		missing = missing[:0]
		for _, m := range want {
			if !have[m] {
				missing = append(missing, m)
			}
		}
		if err == nil && len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus has no series for %d of the %d metrics the dashboards and alerts name: %v (last error: %v)", len(missing), len(want), missing, err)
		case <-time.After(time.Second):
		}
	}
	t.Logf("Prometheus found all %d metrics: %v", len(want), want)

	// The scrape itself is healthy, and the alert rules load and evaluate.
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := get("http://"+promAddr+"/api/v1/targets", nil, &targets); err != nil {
		t.Fatal(err)
	}
	if len(targets.Data.ActiveTargets) != 1 || targets.Data.ActiveTargets[0].Health != "up" {
		t.Errorf("got targets %+v, want one, up", targets.Data.ActiveTargets)
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := get("http://"+promAddr+"/api/v1/rules", nil, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if n != len(alertRules(t)) {
		t.Errorf("Prometheus loaded %d rules, want %d", n, len(alertRules(t)))
	}
}
