package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions configures AdminHandler.
type AdminOptions struct {
	// Gatherer is served at /metrics. nil: /metrics answers 404.
	Gatherer prometheus.Gatherer
	// Ready is an extra readiness check (e.g. "the publisher reaches
	// Kafka"); nil: none. It gets the request's context.
	Ready func(ctx context.Context) error
}

// AdminHandler returns the operator endpoints, for a separate port:
//
//	GET /metrics        Prometheus metrics of opts.Gatherer
//	GET /healthz        200 while the process serves HTTP
//	GET /readyz         200 when a configuration with orchestrators is loaded and opts.Ready passes, else 503
//	GET /policy         the routing policy in use (JSON), 404 before the first
//	GET /orchestrators  per orchestrator: in flight, latency estimate, ejection state, price and share per class
func (r *Router) AdminHandler(opts AdminOptions) http.Handler {
	mux := http.NewServeMux()
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		if len(r.snap.Load().orchs) == 0 {
			writeError(w, http.StatusServiceUnavailable, "no orchestrators configured")
			return
		}
		if opts.Ready != nil {
			if err := opts.Ready(req.Context()); err != nil {
				writeError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /policy", func(w http.ResponseWriter, _ *http.Request) {
		p, ok := r.Policy()
		if !ok {
			writeError(w, http.StatusNotFound, "no routing policy received yet")
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET /orchestrators", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Orchestrators())
	})
	return mux
}

// OrchestratorStatus is the router's view of one orchestrator.
type OrchestratorStatus struct {
	ID                  string        `json:"id"`
	URL                 string        `json:"url"`
	Region              string        `json:"region,omitempty"`
	InFlight            int64         `json:"in_flight"`
	MaxInFlight         int           `json:"max_in_flight,omitempty"` // config and policy limits combined; 0 = none
	LatencyMs           float64       `json:"latency_ms"`              // peak-EWMA estimate; 0 = none yet
	LatencyFreshness    float64       `json:"latency_freshness"`       // 1 = just measured, → 0 as it ages
	ConsecutiveFailures int64         `json:"consecutive_failures"`
	Ejected             bool          `json:"ejected"`
	EjectedUntil        string        `json:"ejected_until,omitempty"` // RFC 3339
	PolicyEjected       bool          `json:"policy_ejected"`
	PolicyEjectedUntil  string        `json:"policy_ejected_until,omitempty"`
	PolicyEjectReason   string        `json:"policy_eject_reason,omitempty"`
	Classes             []ClassStatus `json:"classes"`
}

// ClassStatus is one class an orchestrator serves.
type ClassStatus struct {
	Capability   string  `json:"capability"`
	Model        string  `json:"model"`
	PricePerUnit float64 `json:"price_per_unit"`
	// Share for clients without a region-specific entry; absent without a policy.
	Share *float64 `json:"share,omitempty"`
	// RegionShares per client region with its own entry.
	RegionShares map[string]float64 `json:"region_shares,omitempty"`
}

// Orchestrators returns the status of every configured orchestrator, in
// configuration order.
func (r *Router) Orchestrators() []OrchestratorStatus {
	s := r.snap.Load()
	now := r.now()
	nowMs := now.UnixMilli()
	keys := make([]classKey, 0, len(s.classes))
	for k := range s.classes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	out := make([]OrchestratorStatus, 0, len(s.orchs))
	for _, o := range s.orchs {
		lat, fresh := o.state.latencyView(now, s.cfg.Selection.LatencyStale)
		ej, until := o.state.ejected(nowMs)
		st := OrchestratorStatus{
			ID: o.cfg.ID, URL: redact(o.cfg.URL), Region: o.cfg.Region,
			InFlight: o.state.inFlight.Load(), MaxInFlight: o.limit,
			LatencyMs: lat, LatencyFreshness: fresh, ConsecutiveFailures: o.state.failures.Load(),
			Ejected: ej, PolicyEjected: o.policyEjected(nowMs), PolicyEjectReason: o.policyEjectReason,
			Classes: []ClassStatus{},
		}
		if ej {
			st.EjectedUntil = time.UnixMilli(until).UTC().Format(time.RFC3339Nano)
		}
		if st.PolicyEjected && o.policyEjectUntilMs < 1<<62 {
			st.PolicyEjectedUntil = time.UnixMilli(o.policyEjectUntilMs).UTC().Format(time.RFC3339Nano)
		}
		for _, k := range keys {
			t := s.classes[k]
			for i, m := range t.members {
				if m.o != o {
					continue
				}
				cs := ClassStatus{Capability: k.capability, Model: k.model, PricePerUnit: m.price}
				if t.defaultShares != nil {
					v := t.defaultShares[i]
					cs.Share = &v
				}
				for region, sh := range t.regionShares {
					if cs.RegionShares == nil {
						cs.RegionShares = map[string]float64{}
					}
					cs.RegionShares[region] = sh[i]
				}
				st.Classes = append(st.Classes, cs)
			}
		}
		out = append(out, st)
	}
	return out
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
