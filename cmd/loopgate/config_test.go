package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/loopgate/loopgate/event"
)

// readmeConfig is the config example in README.md, between its markers.
func readmeConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := strings.Index(s, "<!-- config-example:begin -->"), strings.Index(s, "<!-- config-example:end -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md has no config example between <!-- config-example:begin --> and <!-- config-example:end -->")
	}
	block := s[begin:end]
	open := strings.Index(block, "```yaml\n")
	closing := strings.LastIndex(block, "```")
	if open < 0 || closing <= open {
		t.Fatal("README.md's config example is not a ```yaml block")
	}
	return block[open+len("```yaml\n") : closing]
}

// TestREADMEConfig loads README's config example and checks that its one
// orchestrators list reaches both the router and the optimizer.
func TestREADMEConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loopgate.yaml")
	if err := os.WriteFile(path, []byte(readmeConfig(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("README's config does not validate: %v", err)
	}
	rc, oc := cfg.RouterConfig(), cfg.OptimizerConfig()
	if got := len(cfg.Orchestrators); got != 2 {
		t.Fatalf("got %d orchestrators, want 2", got)
	}
	for name, got := range map[string]int{"router": len(rc.Orchestrators), "optimizer": len(oc.Catalog.Orchestrators)} {
		if got != 2 {
			t.Errorf("%s sees %d orchestrators, want the 2 listed", name, got)
		}
	}
	a := rc.Orchestrators[0]
	if a.ID != "orch-a" || a.URL != "https://orch-a.example:8935" || a.MaxInFlight != 8 || len(a.Classes) != 2 || a.Classes[1].PricePerUnit != 5.0e-6 {
		t.Errorf("router's orch-a: got %+v", a)
	}
	if oc.Catalog.Orchestrators[0].Address != "0x1111111111111111111111111111111111111111" {
		t.Errorf("optimizer's orch-a address: got %q", oc.Catalog.Orchestrators[0].Address)
	}
	if len(rc.APIKeys) != 1 || rc.GatewayID != "gw-fra-1" || len(oc.Catalog.Classes) != 1 {
		t.Errorf("got api keys %v, gateway %q, classes %v", rc.APIKeys, rc.GatewayID, oc.Catalog.Classes)
	}
	k, gw := rc.APIKeys[0], cfg.Gateway
	if k.Limits.Concurrency != 8 || k.Limits.UnitsPerMinute[event.UnitTokens] != 200000 || len(k.Budgets) != 1 || k.MaxPricePerUnit != 3e-9 {
		t.Errorf("got key %+v, want its limits, budget and max price", k)
	}
	if gw.Routers != 3 || len(gw.Customers) != 1 || gw.Customers[0].Tier != "enterprise" || len(gw.Customers[0].Budgets) != 2 || gw.Tiers["standard"].Markup != 0.3 {
		t.Errorf("got gateway %+v, want 3 routers, customer acme on enterprise with 2 budgets", gw)
	}
}

// TestGatewayConfigValidated: a bad limit on a key or a customer's unknown
// tier fails the config, naming it.
func TestGatewayConfigValidated(t *testing.T) {
	for name, src := range map[string]string{
		"key limit":    "router:\n  api_keys:\n    - {id: k, sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8, limits: {concurrency: -1}}\n",
		"unknown tier": "gateway:\n  customers:\n    - {id: c, tier: gold}\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err == nil {
				t.Fatal("invalid gateway config accepted")
			}
		})
	}
}

// TestConfigRefusesNestedOrchestrators checks that the orchestrators
// lists of older configs (under router: or optimizer.catalog:) are refused
// with an error naming the field, not silently ignored.
func TestConfigRefusesNestedOrchestrators(t *testing.T) {
	for name, src := range map[string]string{
		"router":    "router:\n  orchestrators:\n    - {id: a, url: http://a:1}\n",
		"optimizer": "optimizer:\n  catalog:\n    orchestrators:\n      - {id: a}\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.yaml")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path, func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), "orchestrators") {
				t.Fatalf("got %v, want an error naming the orchestrators field", err)
			}
		})
	}
}

// TestReloadKeepsFlagOverrides: a reload (SIGHUP) reads the config file
// named at start again, with the same flag overrides on top, and hands the
// result to apply; a file that no longer loads leaves the running config.
func TestReloadKeepsFlagOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loopgate.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("orchestrators:\n  - {id: a, url: http://a:1}\nadmin:\n  addr: 127.0.0.1:1111\n")
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	load := commonFlags(fs)
	if err := fs.Parse([]string{"--config", path, "--admin", "127.0.0.1:2222"}); err != nil {
		t.Fatal(err)
	}
	applied := make(chan Config, 4)
	hup := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- reloadOn(ctx, hup, load, func(c Config) error { applied <- c; return nil }, slog.New(slog.DiscardHandler))
	}()

	write("orchestrators:\n  - {id: a, url: http://a:1}\n  - {id: b, url: http://b:1}\nadmin:\n  addr: 127.0.0.1:1111\n")
	hup <- syscall.SIGHUP
	c := <-applied
	if len(c.Orchestrators) != 2 || c.Admin.Addr != "127.0.0.1:2222" {
		t.Fatalf("reloaded: got %d orchestrators and admin %s, want 2 and the --admin override 127.0.0.1:2222", len(c.Orchestrators), c.Admin.Addr)
	}
	write("orchestrators: [this is not a list of orchestrators\n")
	hup <- syscall.SIGHUP
	hup <- syscall.SIGHUP // the loop is past the bad file when this is taken
	select {
	case c := <-applied:
		t.Fatalf("a broken file was applied: %+v", c)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("reload loop: got %v on cancel, want nil", err)
	}
}

// TestConfigSecurity loads the README's security example with the
// passwords in a file and the environment: they reach the Kafka and
// ClickHouse settings, and print-config shows neither.
func TestConfigSecurity(t *testing.T) {
	dir := t.TempDir()
	chPW := filepath.Join(dir, "clickhouse-password")
	os.WriteFile(chPW, []byte("ch-pw-never-printed\n"), 0o600)
	const kafkaPW = "kafka-pw-never-printed"
	yaml := strings.NewReplacer("/etc/loopgate/clickhouse-password", chPW).Replace(readmeSecurityConfig(t))
	path := filepath.Join(dir, "loopgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOOPGATE_KAFKA_SASL_PASSWORD": kafkaPW}
	cfg, err := loadConfig(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("README's security config does not validate: %v", err)
	}
	sec := cfg.kafkaSecurity()
	if !sec.TLS.Enabled || sec.SASL.Mechanism != "SCRAM-SHA-512" || sec.SASL.Username != "loopgate" || sec.SASL.Password.Reveal() != kafkaPW {
		t.Errorf("kafka security: got %+v (password set %v)", sec, sec.SASL.Password.IsSet())
	}
	w := warehouseConfig(cfg)
	if !w.TLS.Enabled || w.TLS.CAFile != "/etc/loopgate/ca.pem" || w.Password != "ch-pw-never-printed" {
		t.Errorf("warehouse: got tls %+v, password from the file %v", w.TLS, w.Password == "ch-pw-never-printed")
	}
	var out strings.Builder
	if err := printConfig(&cliEnv{stdout: &out}, cfg); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{kafkaPW, "ch-pw-never-printed"} {
		if strings.Contains(out.String(), pw) {
			t.Errorf("print-config shows a password:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "mechanism: SCRAM-SHA-512") {
		t.Errorf("print-config lacks the SASL settings:\n%s", out.String())
	}
	// Security without brokers is the embedded broker's: plaintext.
	cfg.Kafka.Brokers = nil
	if s := cfg.kafkaSecurity(); s.TLS.Enabled || s.SASL.Mechanism != "" {
		t.Errorf("embedded broker: got security %+v, want none", s)
	}
}

// readmeSecurityConfig is README's TLS/SASL example, between its markers.
func readmeSecurityConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := strings.Index(s, "<!-- security-example:begin -->"), strings.Index(s, "<!-- security-example:end -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md has no security example between <!-- security-example:begin --> and <!-- security-example:end -->")
	}
	block := s[begin:end]
	open := strings.Index(block, "```yaml\n")
	closing := strings.LastIndex(block, "```")
	if open < 0 || closing <= open {
		t.Fatal("README.md's security example is not a ```yaml block")
	}
	return block[open+len("```yaml\n") : closing]
}
