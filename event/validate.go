package event

import (
	"fmt"
	"math"
)

// ValidationError says which field of an event is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

const maxStringLen = 256

// Validate reports the first problem with o, or nil.
func (o *Outcome) Validate() error {
	if o.Schema < MinSchemaVersion || o.Schema > SchemaVersion {
		return invalid("schema", "version %d not in %d..%d", o.Schema, MinSchemaVersion, SchemaVersion)
	}
	if err := checkString("id", o.ID, true); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		req     bool
	}{
		{"gateway_id", o.GatewayID, true},
		{"gateway_region", o.GatewayRegion, false},
		{"client_region", o.ClientRegion, false},
		{"api_key_id", o.APIKeyID, false},
		{"customer", o.Customer, false},
		{"capability", o.Capability, true},
		{"model", o.Model, false},
		{"error_class", o.ErrorClass, false},
	} {
		if err := checkString(f.name, f.v, f.req); err != nil {
			return err
		}
	}
	if !o.Status.Valid() {
		return invalid("status", "unknown status %q", o.Status)
	}
	if !o.UnitKind.Valid() {
		return invalid("unit_kind", "unknown unit kind %q", o.UnitKind)
	}
	if o.Units < 0 {
		return invalid("units", "negative: %d", o.Units)
	}
	if o.StartMs <= 0 {
		return invalid("start_ms", "must be a positive Unix time in ms, got %d", o.StartMs)
	}
	if o.EndMs < o.StartMs {
		return invalid("end_ms", "%d is before start_ms %d", o.EndMs, o.StartMs)
	}
	if o.HTTPStatus < 0 || o.HTTPStatus > 599 {
		return invalid("http_status", "%d out of range", o.HTTPStatus)
	}
	for name, v := range map[string]int64{"latency_ms": o.LatencyMs, "ttfb_ms": o.TTFBMs, "bytes_in": o.BytesIn, "bytes_out": o.BytesOut} {
		if v < 0 {
			return invalid(name, "negative: %d", v)
		}
	}
	for name, v := range map[string]float64{"price_per_unit": o.PricePerUnit, "cost": o.Cost, "charge": o.Charge} {
		if err := checkMoney(name, v); err != nil {
			return err
		}
	}
	if math.IsNaN(o.Margin) || math.IsInf(o.Margin, 0) {
		return invalid("margin", "%v is not a finite amount", o.Margin)
	}
	if len(o.Attempts) > MaxAttempts {
		return invalid("attempts", "%d attempts, limit %d", len(o.Attempts), MaxAttempts)
	}
	if o.Status == StatusOK && len(o.Attempts) == 0 {
		return invalid("attempts", "a successful request needs at least one attempt")
	}
	for i := range o.Attempts {
		if err := o.Attempts[i].validate(fmt.Sprintf("attempts[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (a *Attempt) validate(prefix string) error {
	if err := checkString(prefix+".orchestrator", a.Orchestrator, true); err != nil {
		return err
	}
	if err := checkString(prefix+".orch_region", a.OrchRegion, false); err != nil {
		return err
	}
	if err := checkString(prefix+".error_class", a.ErrorClass, false); err != nil {
		return err
	}
	if !a.Result.Valid() {
		return invalid(prefix+".result", "unknown result %q", a.Result)
	}
	if a.StartMs <= 0 {
		return invalid(prefix+".start_ms", "must be a positive Unix time in ms, got %d", a.StartMs)
	}
	if a.LatencyMs < 0 {
		return invalid(prefix+".latency_ms", "negative: %d", a.LatencyMs)
	}
	if a.HTTPStatus < 0 || a.HTTPStatus > 599 {
		return invalid(prefix+".http_status", "%d out of range", a.HTTPStatus)
	}
	if err := checkMoney(prefix+".cost", a.Cost); err != nil {
		return err
	}
	if !(a.Propensity >= 0 && a.Propensity <= 1) {
		return invalid(prefix+".propensity", "%v not in [0, 1]", a.Propensity)
	}
	for name, v := range map[string]float64{"share": a.Score.Share, "latency_ms": a.Score.LatencyMs, "penalty": a.Score.Penalty, "weight": a.Score.Weight} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return invalid(prefix+".score."+name, "%v is not a finite non-negative number", v)
		}
	}
	return nil
}

// Validate reports the first problem with p, or nil.
func (p *Policy) Validate() error {
	if p.Schema < MinSchemaVersion || p.Schema > SchemaVersion {
		return invalid("schema", "version %d not in %d..%d", p.Schema, MinSchemaVersion, SchemaVersion)
	}
	if p.Version == 0 {
		return invalid("version", "must be positive")
	}
	if !(p.Lambda >= 0 && p.Lambda <= 1) {
		return invalid("lambda", "%v not in [0, 1]", p.Lambda)
	}
	for i, c := range p.Classes {
		prefix := fmt.Sprintf("classes[%d]", i)
		if err := checkString(prefix+".capability", c.Capability, true); err != nil {
			return err
		}
		if !(c.AdmitPerS >= 0) || math.IsInf(c.AdmitPerS, 0) {
			return invalid(prefix+".admit_per_s", "%v is not a finite non-negative rate", c.AdmitPerS)
		}
		if err := checkString(prefix+".admit_reason", c.AdmitReason, false); err != nil {
			return err
		}
		if err := checkMoney(prefix+".value", c.Value); err != nil {
			return err
		}
		if c.SLOMs < 0 {
			return invalid(prefix+".slo_ms", "negative: %d", c.SLOMs)
		}
		sum := 0.0
		for j, s := range c.Shares {
			if err := checkString(fmt.Sprintf("%s.shares[%d].orchestrator", prefix, j), s.Orchestrator, true); err != nil {
				return err
			}
			if !(s.Share >= 0 && s.Share <= 1) {
				return invalid(fmt.Sprintf("%s.shares[%d].share", prefix, j), "%v not in [0, 1]", s.Share)
			}
			sum += s.Share
		}
		if len(c.Shares) > 0 && math.Abs(sum-1) > 1e-6 {
			return invalid(prefix+".shares", "sum to %v, want 1", sum)
		}
	}
	for i, e := range p.Ejections {
		if err := checkString(fmt.Sprintf("ejections[%d].orchestrator", i), e.Orchestrator, true); err != nil {
			return err
		}
	}
	for i, l := range p.Limits {
		if err := checkString(fmt.Sprintf("limits[%d].orchestrator", i), l.Orchestrator, true); err != nil {
			return err
		}
		if l.MaxInFlight < 0 {
			return invalid(fmt.Sprintf("limits[%d].max_in_flight", i), "negative: %d", l.MaxInFlight)
		}
		if err := checkString(fmt.Sprintf("limits[%d].reason", i), l.Reason, false); err != nil {
			return err
		}
	}
	return validateFrontier(p.Frontier)
}

// validateFrontier checks a policy's frontier: bounded, λ strictly
// ascending in [0, 1], finite non-negative figures, attainment a fraction.
func validateFrontier(f []FrontierPoint) error {
	if len(f) > MaxFrontierPoints {
		return invalid("frontier", "%d points, limit %d", len(f), MaxFrontierPoints)
	}
	for i, pt := range f {
		prefix := fmt.Sprintf("frontier[%d]", i)
		if !(pt.Lambda >= 0 && pt.Lambda <= 1) {
			return invalid(prefix+".lambda", "%v not in [0, 1]", pt.Lambda)
		}
		if i > 0 && !(pt.Lambda > f[i-1].Lambda) {
			return invalid(prefix+".lambda", "%v not above the previous point's %v", pt.Lambda, f[i-1].Lambda)
		}
		if err := checkMoney(prefix+".cost_per_request", pt.CostPerRequest); err != nil {
			return err
		}
		if !(pt.SLOAttainment >= 0 && pt.SLOAttainment <= 1) {
			return invalid(prefix+".slo_attainment", "%v not in [0, 1]", pt.SLOAttainment)
		}
		if math.IsNaN(pt.P95Ms) || math.IsInf(pt.P95Ms, 0) || pt.P95Ms < 0 {
			return invalid(prefix+".p95_ms", "%v is not a finite non-negative duration", pt.P95Ms)
		}
	}
	return nil
}

func checkString(field, v string, required bool) error {
	if required && v == "" {
		return invalid(field, "required")
	}
	if len(v) > maxStringLen {
		return invalid(field, "%d bytes, limit %d", len(v), maxStringLen)
	}
	return nil
}

func checkMoney(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return invalid(field, "%v is not a finite non-negative amount", v)
	}
	return nil
}
