package router

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/loopgate/loopgate/event"
)

// Gate applies the gateway's business rules to a request that passed
// authentication and input checks, before any attempt: allowlists, the
// limits and budgets of its key and customer, and the customer's prices
// (package gateway's Gateway is one; cmd wires it with WithGate).
//
// Admit is handed the outcome as far as it is known (key, customer, class,
// units — for audio-to-text without a WAV header the configured default —
// and start), costPerUnit (the highest price per unit of an orchestrator
// the request may be routed to) and listPrice (the router's own customer
// price per unit for the class). It returns done, which the router calls
// once with the finished outcome (to price it and settle the spend), or
// an error; an error with HTTPStatus, RetryAfterSeconds and APIError
// methods is answered as it says, any other one with 500.
type Gate interface {
	Admit(req *http.Request, key *event.APIKey, o *event.Outcome, costPerUnit, listPrice float64) (done func(*event.Outcome), err error)
}

// WithGate makes the router admit every request through g.
func WithGate(g Gate) Option { return func(r *Router) { r.gate = g } }

// refusal is what a Gate's error can tell about itself.
type refusal interface {
	error
	HTTPStatus() int
	RetryAfterSeconds() int
	APIError() event.APIError
}

// Reasons of the router's own key checks (rejected metric, error class).
const (
	reasonKeyScope   = "key_scope"   // the key may not call this capability or model
	reasonKeyRevoked = "key_revoked" // the key was revoked
	reasonGate       = "gate_error"  // the gate failed (not a refusal)
)

// checkScope refuses a capability or model the key is not scoped to, and a
// revoked key. It runs before any outcome is made: such a request is bad
// input from the client, like an unknown key.
func checkScope(k *event.APIKey, capability, model string) (int, string, string) {
	switch {
	case k.RevokedMs != 0:
		return http.StatusForbidden, reasonKeyRevoked, "API key " + strconv.Quote(k.ID) + " was revoked"
	case len(k.Capabilities) > 0 && !slices.Contains(k.Capabilities, capability):
		return http.StatusForbidden, reasonKeyScope, "API key " + strconv.Quote(k.ID) + " may not call " + capability + " (allowed: " + strings.Join(k.Capabilities, ", ") + ")"
	case len(k.Models) > 0 && !slices.Contains(k.Models, model):
		return http.StatusForbidden, reasonKeyScope, "API key " + strconv.Quote(k.ID) + " may not use model " + strconv.Quote(model)
	}
	return 0, "", ""
}

// overPrice lists the class's orchestrators a key's max price per unit
// excludes, and the highest price of the others.
func overPrice(t *classTable, maxPrice float64) (excluded []*orchEntry, highest float64) {
	if t == nil {
		return nil, 0
	}
	for _, m := range t.members {
		if maxPrice > 0 && m.price > maxPrice {
			excluded = append(excluded, m.o)
			continue
		}
		highest = max(highest, m.price)
	}
	return excluded, highest
}

// passGate asks the gate, if there is one, whether x may go on. When it may
// not, the refusal is answered and x ends rejected (its outcome is still
// published: the request was authenticated and valid).
func (r *Router) passGate(x *exchange, w http.ResponseWriter) (func(*event.Outcome), bool) {
	var highest float64
	x.excluded, highest = overPrice(x.table, x.key.cfg.MaxPricePerUnit)
	if r.gate == nil {
		return nil, true
	}
	o := x.outcome(x.start)
	o.Units = x.info.units
	if o.Units < 0 {
		o.Units = x.ci.cfg.DefaultAudioMs
	}
	done, err := r.gate.Admit(x.req, &x.key.cfg, &o, highest, x.customerPrice())
	if err == nil {
		return done, true
	}
	var ref refusal
	if !errors.As(err, &ref) {
		r.log.Error("gate failed", logKeyID, x.id, logKeyErr, err)
		r.m.rejected.WithLabelValues(reasonGate).Inc()
		x.final, x.errorClass = event.StatusRejected, reasonGate
		r.writeErr(x, w, http.StatusInternalServerError, "internal error")
		return nil, false
	}
	body := ref.APIError()
	r.m.rejected.WithLabelValues(body.Error.Reason).Inc()
	x.final, x.errorClass = event.StatusRejected, body.Error.Reason
	if s := ref.RetryAfterSeconds(); s > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	w.Header().Set(HeaderRequestID, x.id)
	writeAPIError(w, ref.HTTPStatus(), body)
	x.wrote, x.status, x.ttfb = true, ref.HTTPStatus(), r.now().Sub(x.start)
	return nil, false
}

// keyFingerprint is the first 8 hex digits of the SHA-256 of the presented
// key: enough to tell keys apart in a log, never the key.
func keyFingerprint(req *http.Request) string {
	_, key, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	key = strings.TrimSpace(key)
	if key == "" {
		return ""
	}
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:4])
}

// mergeKeys is the configured keys and, after them, the API-made keys
// whose id no configured key has (a configured key wins).
func mergeKeys(cfgKeys, apiKeys []APIKeyConfig) []APIKeyConfig {
	if len(apiKeys) == 0 {
		return cfgKeys
	}
	ids := make(map[string]bool, len(cfgKeys))
	for _, k := range cfgKeys {
		ids[k.ID] = true
	}
	out := slices.Clip(slices.Clone(cfgKeys))
	for _, k := range apiKeys {
		if !ids[k.ID] {
			out = append(out, k)
		}
	}
	return out
}

// ValidateAPIKeys reports whether SetAPIKeys(keys) would be accepted:
// every key valid, no id or hash shared with a configured key or another.
func (r *Router) ValidateAPIKeys(keys []APIKeyConfig) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	_, err := r.withAPIKeys(keys)
	return err
}

// withAPIKeys is the current configuration with keys as the API-made
// keys, validated. writeMu held.
func (r *Router) withAPIKeys(keys []APIKeyConfig) (Config, error) {
	for _, k := range keys {
		if slices.ContainsFunc(r.cfgKeys, func(c APIKeyConfig) bool { return c.ID == k.ID }) {
			return Config{}, errors.New("router: api key " + strconv.Quote(k.ID) + " is a configured key")
		}
	}
	cfg := r.snap.Load().cfg
	cfg.APIKeys = mergeKeys(r.cfgKeys, keys)
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// SetAPIKeys replaces the keys made through the admin API (package
// gateway's Keys keeps them in the warehouse and hands every version
// here): they are accepted beside the configured keys from the next
// request on, and kept across Reload. On error nothing changes.
func (r *Router) SetAPIKeys(keys []APIKeyConfig) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	cfg, err := r.withAPIKeys(keys)
	if err != nil {
		return err
	}
	prev := r.snap.Load()
	r.snap.Store(buildSnapshot(cfg, prev.policy, prev, r.now().UnixMilli()))
	r.apiKeys = slices.Clone(keys)
	return nil
}
