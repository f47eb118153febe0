package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/testenv"
)

// TestCommandsStopOnSIGTERM starts every long-running command as its own
// process, waits until it serves, sends SIGTERM and expects a clean exit
// (status 0) within 5 s.
func TestCommandsStopOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every command")
	}
	kafka, ch := testenv.Kafka(t), testenv.ClickHouse(t)
	testenv.ChdbLib(t)
	sfx := fmt.Sprint(time.Now().UnixNano())
	config := func(t *testing.T) (string, Config) {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Kafka.Brokers = []string{kafka}
		cfg.Kafka.OutcomesTopic, cfg.Kafka.PolicyTopic, cfg.Kafka.DLQTopic = "stop.outcomes."+sfx, "stop.policy."+sfx, "stop.dlq."+sfx
		cfg.Warehouse.Backend, cfg.Warehouse.Addr, cfg.Warehouse.Database = "server", ch, "loopgate_stop_"+sfx
		cfg.Ingest.Group = "stop-" + sfx
		cfg.RouterAddr, cfg.Admin.Addr = testenv.FreeAddr(t), testenv.FreeAddr(t)
		cfg.Kafka.EmbeddedPort = freePort(t)
		cfg.PolicyWait = time.Second
		cfg.Orchestrators = []event.Orchestrator{{ID: "a", URL: "http://127.0.0.1:1", Classes: []event.ClassPrice{{Capability: event.CapLLM, Model: "m", PricePerUnit: 1e-6}}}}
		path := filepath.Join(t.TempDir(), "loopgate.yaml")
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path, cfg
	}
	for _, tc := range []struct {
		name string
		args func(path string, cfg Config) []string
		// listening is the address that says the command serves.
		listening func(cfg Config) string
	}{
		{"router", func(p string, _ Config) []string { return []string{"router", "--config", p} }, func(c Config) string { return c.RouterAddr }},
		{"ingest", func(p string, _ Config) []string { return []string{"ingest", "--config", p} }, func(c Config) string { return c.Admin.Addr }},
		{"optimizer", func(p string, _ Config) []string { return []string{"optimizer", "--config", p} }, func(c Config) string { return c.Admin.Addr }},
		{"broker", func(p string, _ Config) []string { return []string{"broker", "--config", p} }, func(c Config) string {
			return fmt.Sprintf("127.0.0.1:%d", c.Kafka.EmbeddedPort)
		}},
		{"fleet", func(string, Config) []string {
			return []string{"fleet", "--scenario", "price-shift", "--base-port", "0"}
		}, nil},
		{"load", func(_ string, c Config) []string {
			return []string{"load", "--scenario", "price-shift", "--target", "http://" + c.RouterAddr}
		}, nil},
		{"dev", func(p string, _ Config) []string {
			return []string{"dev", "--config", p, "--scenario", "price-shift", "--speed", "4"}
		}, func(c Config) string { return c.Admin.Addr }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, cfg := config(t)
			if tc.name == "dev" {
				// dev runs on its own embedded broker and warehouse.
				cfg.Kafka.Brokers, cfg.Warehouse.Backend = nil, "embedded"
				b, _ := yaml.Marshal(cfg)
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var cmd *exec.Cmd
			if tc.name == "dev" {
				cmd = cliCommand(t, tc.args(path, cfg)...)
			} else {
				cmd = cliChild(t, tc.args(path, cfg)...)
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			if tc.listening != nil {
				addr := tc.listening(cfg)
				testenv.Eventually(t, 60*time.Second, tc.name+" listening on "+addr, func() bool {
					select {
					case err := <-exited:
						t.Fatalf("%s exited early: %v\n%s", tc.name, err, &out)
					default:
					}
					c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
					if err == nil {
						c.Close()
					}
					return err == nil
				})
			} else {
				time.Sleep(1500 * time.Millisecond)
			}
			sent := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("%s gone before SIGTERM: %v\n%s", tc.name, err, &out)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("%s after SIGTERM: %v, want exit 0\n%s", tc.name, err, &out)
				}
				t.Logf("%s stopped %v after SIGTERM", tc.name, time.Since(sent).Round(10*time.Millisecond))
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("%s still running 5 s after SIGTERM\n%s", tc.name, &out)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	return p
}
