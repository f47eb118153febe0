package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/optimizer"
)

type noStats struct{}

func (noStats) Stats(context.Context, time.Time, time.Time) ([]optimizer.Stat, error) {
	return nil, nil
}

type noPub struct{}

func (noPub) PublishPolicy(context.Context, event.Policy, []byte) error { return nil }

// TestAdvisorPublicForGoLivepeer: stock go-livepeer reads -orchWebhookUrl
// and -orchPerfStatsUrl without an Authorization header, so with
// livepeer.public_advisor the advisor endpoints answer it; without, they
// need a read token like every other route.
func TestAdvisorPublicForGoLivepeer(t *testing.T) {
	for _, tt := range []struct {
		public bool
		want   int
	}{{false, http.StatusUnauthorized}, {true, http.StatusOK}} {
		cfg := DefaultConfig()
		cfg.Livepeer.PublicAdvisor = tt.public
		cfg.Admin.TokenEnv = ""
		ocfg := optimizer.DefaultConfig()
		ocfg.Catalog.Orchestrators = []event.Orchestrator{{ID: "a", URL: "https://a.example:8935", Classes: []event.ClassPrice{{Capability: event.CapLLM, Model: "m"}}}}
		opt, err := optimizer.New(ocfg, noStats{}, noPub{}, deps.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := newAdmin(cfg, process{log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc := &optimizerService{opt: opt, publicAdvisor: cfg.Livepeer.PublicAdvisor}
		svc.mount(srv)
		for _, path := range []string{optimizer.WebhookPath, optimizer.PerfStatsPath} {
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != tt.want {
				t.Errorf("public_advisor=%v GET %s without a token: got %d, want %d", tt.public, path, rec.Code, tt.want)
			}
			if tt.public && !json.Valid(rec.Body.Bytes()) {
				t.Errorf("GET %s: got %q, want JSON", path, rec.Body.String())
			}
		}
	}
}
