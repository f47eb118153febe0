package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/loopgate/loopgate/event"
)

// ErrNoOrchestrators is Ready's answer while no orchestrator is configured.
var ErrNoOrchestrators = errors.New("no orchestrators configured")

// Ready reports whether the router can route: a configuration with
// orchestrators is loaded. The process's /readyz (package admin) asks it.
func (r *Router) Ready(context.Context) error {
	if len(r.snap.Load().orchs) == 0 {
		return ErrNoOrchestrators
	}
	return nil
}

// AdminHandler returns the router's operator endpoints, read-only, to be
// mounted with the read role on the process's admin server (package
// admin), which serves /metrics, /healthz and /readyz for every command:
//
//	GET /policy         the routing policy in use (JSON, with its limits and admission rates and their
//	                    reasons), plus "shaping": the admission rates in force and the edge queue's length;
//	                    404 before the first
//	GET /orchestrators  per orchestrator: in flight, limits (configured/published ceiling, the adaptive
//	                    limit in force, the policy's reason), latency estimate, ejection state, price and
//	                    share per class
func (r *Router) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /policy", func(w http.ResponseWriter, _ *http.Request) {
		p, ok := r.Policy()
		if !ok {
			writeError(w, http.StatusNotFound, "no routing policy received yet")
			return
		}
		writeJSON(w, http.StatusOK, PolicyView{Policy: p, Shaping: r.Shaping()})
	})
	mux.HandleFunc("GET /orchestrators", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, r.Orchestrators())
	})
	return mux
}

// PolicyView is GET /policy: the policy as published, and what the
// router's shaping does with it now.
type PolicyView struct {
	event.Policy
	Shaping ShapingStatus `json:"shaping"`
}

// ShapingStatus is the router's workload shaping at a moment.
type ShapingStatus struct {
	// AdmissionRates are the token buckets in force, with their reasons.
	AdmissionRates []AdmissionRate `json:"admission_rates"`
	// QueueLength is the number of requests waiting in the edge queue.
	QueueLength int `json:"queue_length"`
}

// Shaping reports the admission rates in force and the edge queue's length.
func (r *Router) Shaping() ShapingStatus {
	return ShapingStatus{AdmissionRates: r.admission.Rates(), QueueLength: int(r.edge.n.Load())}
}

// OrchestratorStatus is the router's view of one orchestrator.
type OrchestratorStatus struct {
	ID                  string        `json:"id"`
	URL                 string        `json:"url"`
	Region              string        `json:"region,omitempty"`
	InFlight            int64         `json:"in_flight"`
	MaxInFlight         int           `json:"max_in_flight,omitempty"` // config and policy limits combined (the ceiling); 0 = none
	Limit               int           `json:"limit,omitempty"`         // the adaptive limit in force, ≤ MaxInFlight; 0 = none
	LimitReason         string        `json:"limit_reason,omitempty"`  // the policy's reason, when its limit is the ceiling
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
			InFlight: o.state.inFlight.Load(), MaxInFlight: o.limit, Limit: o.state.effLimit(o.limit), LimitReason: o.limitReason,
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
