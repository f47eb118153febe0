package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
)

func TestOutcomeRoundTrip(t *testing.T) {
	for i := 0; i < 10; i++ {
		want := eventtest.Outcome(1, i)
		b, err := event.EncodeOutcome(want)
		if err != nil {
			t.Fatalf("encode %d: %v", i, err)
		}
		got, err := event.DecodeOutcome(b)
		if err != nil {
			t.Fatalf("decode %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip %d:\ngot  %+v\nwant %+v", i, got, want)
		}
	}
}

func TestDecodeOutcomeToleratesUnknownFields(t *testing.T) {
	b, err := event.EncodeOutcome(eventtest.Outcome(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["added_in_a_later_minor"] = map[string]any{"x": 1}
	m["attempts"].([]any)[0].(map[string]any)["new_attempt_field"] = "y"
	b2, _ := json.Marshal(m)
	if _, err := event.DecodeOutcome(b2); err != nil {
		t.Fatalf("got %v, want unknown fields tolerated", err)
	}
}

func TestDecodeOutcomeRejects(t *testing.T) {
	valid := func(mut func(o *event.Outcome)) []byte {
		o := eventtest.Outcome(1, 4)
		mut(&o)
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error  // sentinel, or nil for a *ValidationError
		field   string // for a *ValidationError
	}{
		{"not json", []byte("{not json"), event.ErrMalformed, ""},
		{"json array", []byte("[1,2]"), event.ErrMalformed, ""},
		{"wrong type", []byte(`{"id": 5, "schema": 1}`), event.ErrMalformed, ""},
		{"oversized", append([]byte(`{"id":"`), bytes.Repeat([]byte("x"), event.MaxEncodedSize)...), event.ErrTooLarge, ""},
		{"schema missing", []byte(`{"id":"a"}`), event.ErrSchemaVersion, ""},
		{"schema from the future", valid(func(o *event.Outcome) { o.Schema = event.SchemaVersion + 1 }), event.ErrSchemaVersion, ""},
		{"no id", valid(func(o *event.Outcome) { o.ID = "" }), nil, "id"},
		{"no capability", valid(func(o *event.Outcome) { o.Capability = "" }), nil, "capability"},
		{"bad status", valid(func(o *event.Outcome) { o.Status = "great" }), nil, "status"},
		{"bad unit kind", valid(func(o *event.Outcome) { o.UnitKind = "furlongs" }), nil, "unit_kind"},
		{"end before start", valid(func(o *event.Outcome) { o.EndMs = o.StartMs - 1 }), nil, "end_ms"},
		{"negative cost", valid(func(o *event.Outcome) { o.Cost = -1 }), nil, "cost"},
		{"http status", valid(func(o *event.Outcome) { o.HTTPStatus = 700 }), nil, "http_status"},
		{"ok without attempts", valid(func(o *event.Outcome) { o.Attempts = nil }), nil, "attempts"},
		{"attempt without orchestrator", valid(func(o *event.Outcome) { o.Attempts[1].Orchestrator = "" }), nil, "attempts[1].orchestrator"},
		{"propensity over one", valid(func(o *event.Outcome) { o.Attempts[0].Propensity = 1.5 }), nil, "attempts[0].propensity"},
		{"long model", valid(func(o *event.Outcome) { o.Model = strings.Repeat("m", 300) }), nil, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := event.DecodeOutcome(tt.in)
			if err == nil {
				t.Fatal("got nil error, want a rejection")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			var ve *event.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %T %v, want *ValidationError", err, err)
			}
			if ve.Field != tt.field {
				t.Fatalf("got field %q, want %q (%v)", ve.Field, tt.field, err)
			}
		})
	}
}

func TestEncodeOutcomeValidates(t *testing.T) {
	o := eventtest.Outcome(1, 0)
	o.Cost = math.NaN()
	if _, err := event.EncodeOutcome(o); err == nil {
		t.Fatal("got nil error for NaN cost, want a rejection")
	}
}

func TestPolicyRoundTripAndValidation(t *testing.T) {
	p := event.Policy{
		Version: 3, CreatedMs: eventtest.BaseMs, Lambda: 0.5, WindowS: 60, Producer: "opt-1",
		Classes: []event.ClassPolicy{{
			Capability: "text-to-image", Model: "m", ClientRegion: "FRA",
			Shares: []event.Share{{Orchestrator: "a", Share: 0.75, Reason: "cheap"}, {Orchestrator: "b", Share: 0.25}},
		}},
		Ejections: []event.Ejection{{Orchestrator: "c", Reason: "fail rate 0.6", UntilMs: eventtest.BaseMs + 60000}},
		Limits:    []event.Limit{{Orchestrator: "a", MaxInFlight: 8}},
		Frontier: []event.FrontierPoint{
			{Lambda: 0, CostPerRequest: 0.003, SLOAttainment: 0.95, P95Ms: 2800},
			{Lambda: 0.5, CostPerRequest: 0.0031, SLOAttainment: 0.985, P95Ms: 2100.5},
			{Lambda: 1, CostPerRequest: 0.0042, SLOAttainment: 0.99, P95Ms: 1900},
		},
	}
	b, err := event.EncodePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := event.DecodePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	p.Schema = event.SchemaVersion
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("got %+v, want %+v", got, p)
	}
	bad := p
	bad.Classes = []event.ClassPolicy{{Capability: "x", Shares: []event.Share{{Orchestrator: "a", Share: 0.5}}}}
	if _, err := event.EncodePolicy(bad); err == nil {
		t.Fatal("got nil error for shares summing to 0.5")
	}
	bad = p
	bad.Version = 0
	if _, err := event.EncodePolicy(bad); err == nil {
		t.Fatal("got nil error for version 0")
	}
}

func TestPolicyFrontierValidation(t *testing.T) {
	base := event.Policy{Schema: event.SchemaVersion, Version: 1, Lambda: 0.5}
	pt := func(lambda, cost, slo, p95 float64) event.FrontierPoint {
		return event.FrontierPoint{Lambda: lambda, CostPerRequest: cost, SLOAttainment: slo, P95Ms: p95}
	}
	tests := []struct {
		name      string
		frontier  []event.FrontierPoint
		wantField string // "" = valid
	}{
		{"absent", nil, ""},
		{"ascending", []event.FrontierPoint{pt(0, 1, 0.9, 10), pt(1, 2, 1, 5)}, ""},
		{"lambda above 1", []event.FrontierPoint{pt(1.5, 1, 0.9, 10)}, "frontier[0].lambda"},
		{"lambda NaN", []event.FrontierPoint{pt(math.NaN(), 1, 0.9, 10)}, "frontier[0].lambda"},
		{"not ascending", []event.FrontierPoint{pt(0.5, 1, 0.9, 10), pt(0.5, 1, 0.9, 10)}, "frontier[1].lambda"},
		{"negative cost", []event.FrontierPoint{pt(0, -1, 0.9, 10)}, "frontier[0].cost_per_request"},
		{"infinite cost", []event.FrontierPoint{pt(0, math.Inf(1), 0.9, 10)}, "frontier[0].cost_per_request"},
		{"attainment above 1", []event.FrontierPoint{pt(0, 1, 1.01, 10)}, "frontier[0].slo_attainment"},
		{"negative p95", []event.FrontierPoint{pt(0, 1, 0.9, -1)}, "frontier[0].p95_ms"},
		{"too many", make([]event.FrontierPoint, event.MaxFrontierPoints+1), "frontier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			p.Frontier = tt.frontier
			err := p.Validate()
			var ve *event.ValidationError
			switch {
			case tt.wantField == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tt.wantField != "" && !errors.As(err, &ve):
				t.Fatalf("got %v, want a ValidationError on %s", err, tt.wantField)
			case tt.wantField != "" && ve.Field != tt.wantField:
				t.Fatalf("got field %q, want %q", ve.Field, tt.wantField)
			}
		})
	}
}

func TestNewIDOrderedAndUnique(t *testing.T) {
	r := bytes.NewReader(bytes.Repeat([]byte{0xab, 0x01, 0xff, 0x37}, 1000))
	a, err := event.NewID(1000, r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := event.NewID(1001, r)
	if err != nil {
		t.Fatal(err)
	}
	if !(a < b) {
		t.Fatalf("got %s >= %s, want ids ordered by time", a, b)
	}
	if len(a) != 36 || a[14] != '7' {
		t.Fatalf("got %q, want a UUIDv7 string", a)
	}
	if _, err := event.NewID(1, bytes.NewReader(nil)); err == nil {
		t.Fatal("got nil error from an empty random source")
	}
}

func FuzzDecodeOutcome(f *testing.F) {
	for i := 0; i < 5; i++ {
		b, _ := event.EncodeOutcome(eventtest.Outcome(1, i))
		f.Add(b)
	}
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"019a0000-0000-7000-8000-000000000000","schema":1,"gateway_id":"g","capability":"llm","units":1,"unit_kind":"tokens","start_ms":1,"end_ms":1,"status":"shed","error_class":"queue_deadline","http_status":503,"attempts":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := event.DecodeOutcome(b)
		if err != nil {
			return
		}
		// Anything accepted must re-encode and decode to the same value.
		b2, err := event.EncodeOutcome(o)
		if err != nil {
			t.Fatalf("accepted outcome does not re-encode: %v", err)
		}
		o2, err := event.DecodeOutcome(b2)
		if err != nil {
			t.Fatalf("re-encoded outcome rejected: %v", err)
		}
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("re-encoding changed the outcome:\n%+v\n%+v", o, o2)
		}
	})
}

func FuzzDecodePolicy(f *testing.F) {
	f.Add([]byte(`{"schema":1,"version":1,"lambda":0.5,"classes":[{"capability":"llm","shares":[{"orchestrator":"a","share":1}]}]}`))
	f.Add([]byte(`{"schema":1,"version":2,"lambda":0.5,"classes":[],"frontier":[{"lambda":0,"cost_per_request":0.003,"slo_attainment":0.95,"p95_ms":2800},{"lambda":1,"cost_per_request":0.004,"slo_attainment":0.99,"p95_ms":1900}]}`))
	f.Add([]byte(`{"schema":1,"version":2,"lambda":0.5,"frontier":[{"lambda":1},{"lambda":0}]}`))
	f.Add([]byte(`{"schema":1,"version":3,"lambda":0.5,"classes":[{"capability":"llm","admit_per_s":4.5,"admit_reason":"overload","value":0.02,"slo_ms":3000,"shares":[{"orchestrator":"a","share":1}]}],"limits":[{"orchestrator":"a","max_in_flight":6,"reason":"little"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := event.DecodePolicy(b)
		if err != nil {
			return
		}
		b2, err := event.EncodePolicy(p)
		if err != nil {
			t.Fatalf("accepted policy does not re-encode: %v", err)
		}
		p2, err := event.DecodePolicy(b2)
		if err != nil {
			t.Fatalf("re-encoded policy rejected: %v", err)
		}
		// Empty and absent lists decode differently; the encoding is the
		// fixed point.
		b3, err := event.EncodePolicy(p2)
		if err != nil || !bytes.Equal(b2, b3) {
			t.Fatalf("re-encoding changed the policy (%v):\n%s\n%s", err, b2, b3)
		}
	})
}

// TestShapingFieldsBackwardCompatible: a policy and an outcome written
// before workload shaping still decode, and the shaping fields round-trip.
func TestShapingFieldsBackwardCompatible(t *testing.T) {
	old := []byte(`{"schema":1,"version":7,"lambda":0.5,"classes":[{"capability":"llm","shares":[{"orchestrator":"a","share":1}]}],"limits":[{"orchestrator":"a","max_in_flight":3}]}`)
	p, err := event.DecodePolicy(old)
	if err != nil {
		t.Fatalf("pre-shaping policy: %v", err)
	}
	if p.Limits[0].Reason != "" || p.Classes[0].AdmitPerS != 0 || p.Classes[0].Value != 0 {
		t.Fatalf("got %+v, want the shaping fields zero", p)
	}
	p.Limits[0].Reason = "capacity 2, queue 1"
	p.Classes[0].AdmitPerS, p.Classes[0].AdmitReason, p.Classes[0].Value, p.Classes[0].SLOMs = 2.5, "overload", 0.5, 3000
	b, err := event.EncodePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := event.DecodePolicy(b)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip: got %+v (%v), want %+v", got, err, p)
	}
	bad := p
	bad.Classes = []event.ClassPolicy{p.Classes[0]}
	bad.Classes[0].SLOMs = -1
	if _, err := event.EncodePolicy(bad); err == nil {
		t.Fatal("got nil error for a negative slo_ms")
	}
	o := eventtest.Outcome(1, 0)
	o.Status, o.ErrorClass, o.HTTPStatus, o.Attempts = event.StatusShed, "queue_full", 503, nil
	ob, err := event.EncodeOutcome(o)
	if err != nil {
		t.Fatalf("shed outcome: %v", err)
	}
	if got, err := event.DecodeOutcome(ob); err != nil || got.Status != event.StatusShed {
		t.Fatalf("got %+v (%v), want a shed outcome", got.Status, err)
	}
}

func TestEncodeRejectsOversized(t *testing.T) {
	p := event.Policy{Version: 1, Lambda: 0.5}
	for i := 0; i < 50000; i++ {
		p.Classes = append(p.Classes, event.ClassPolicy{Capability: "llm", Shares: []event.Share{{Orchestrator: strings.Repeat("o", 50), Share: 1, Reason: strings.Repeat("r", 20)}}})
	}
	if _, err := event.EncodePolicy(p); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge for a policy over %d bytes", err, event.MaxPolicyEncodedSize)
	}
}

// A policy has its own bound: one above the outcomes' MaxEncodedSize
// round-trips, one above MaxPolicyEncodedSize is refused by the decoder,
// and an outcome above MaxEncodedSize still is.
func TestPolicyBoundIsItsOwn(t *testing.T) {
	big := event.Policy{Schema: event.SchemaVersion, Version: 7, Lambda: 0.5}
	for i := 0; len(big.Classes) < 8000; i++ {
		big.Classes = append(big.Classes, event.ClassPolicy{Capability: "llm", Model: fmt.Sprintf("m%d", i), Shares: []event.Share{{Orchestrator: fmt.Sprintf("orchestrator-%05d", i), Share: 1, Reason: "main"}}})
	}
	b, err := event.EncodePolicy(big)
	if err != nil {
		t.Fatalf("encode a %d-class policy: %v", len(big.Classes), err)
	}
	if len(b) <= event.MaxEncodedSize {
		t.Fatalf("got %d bytes, want a policy above MaxEncodedSize (%d) for this test", len(b), event.MaxEncodedSize)
	}
	got, err := event.DecodePolicy(b)
	if err != nil {
		t.Fatalf("decode a %d-byte policy: %v", len(b), err)
	}
	if !reflect.DeepEqual(got, big) {
		t.Fatal("got a different policy back, want the one encoded")
	}
	huge := append(append([]byte(`{"schema":1,"version":1,"producer":"`), bytes.Repeat([]byte("x"), event.MaxPolicyEncodedSize)...), `","classes":[]}`...)
	if _, err := event.DecodePolicy(huge); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge for a policy over %d bytes", err, event.MaxPolicyEncodedSize)
	}
	out := append(append([]byte(`{"id":"`), bytes.Repeat([]byte("x"), event.MaxEncodedSize)...), `"}`...)
	if _, err := event.DecodeOutcome(out); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("got %v, want an outcome over %d bytes refused", err, event.MaxEncodedSize)
	}
}

// FuzzDecodeAPIKey: any bytes either decode to a record whose encoding
// survives a round trip, or fail; nothing panics.
func FuzzDecodeAPIKey(f *testing.F) {
	f.Add([]byte(`{"id":"k1","sha256":"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8","customer":"acme","limits":{"requests_per_second":2,"units_per_minute":{"tokens":100}},"budgets":[{"period":"day","usd":5}],"created_ms":1}`))
	f.Add([]byte(`{"id":"","sha256":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := event.DecodeAPIKey(b)
		if err != nil {
			return
		}
		enc, err := event.EncodeAPIKey(k)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		k2, err := event.DecodeAPIKey(enc)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if enc2, _ := event.EncodeAPIKey(k2); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the record: %s → %s", enc, enc2)
		}
	})
}
