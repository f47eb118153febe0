package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is a small valid scenario; tests edit it with strings.Replace.
const base = `
name: tiny
seed: 1
duration: 60s
warmup: 10s
regions: [FRA, LAX]
rtt_ms: {same_region: 4, FRA-LAX: 150}
classes:
  - {id: a, capability: text-to-image, units: 100, slo_ms: 3000, timeout_ms: 10000, value: 0.02}
  - {id: b, capability: llm, units: 10, slo_ms: 2000, timeout_ms: 8000, value: 0.01}
clients:
  - {id: acme, region: FRA, rate: 5, mix: {a: 0.6, b: 0.4}}
orchestrators:
  - {id: o1, region: FRA, stake: 10, capacity: 2, queue: 4, fail: 0.01, fail_mode: slow,
     classes: {a: {price: 1.0e-9, p50_ms: 700, p99_ms: 1900}, b: {price: 2.0e-6, p50_ms: 300, p99_ms: 900}}}
  - {id: o2, region: LAX, capacity: 1,
     classes: {a: {price: 2.0e-9, p50_ms: 500, p99_ms: 500}}}
timeline:
  - {at: 30s, orchestrator: o1, set: {down: true}}
  - {at: 20s, client: acme, set: {rate: 9}}
`

func TestParseBase(t *testing.T) {
	sc, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"duration", sc.Duration, 60 * time.Second},
		{"warmup", sc.Warmup, 10 * time.Second},
		{"slo", sc.Classes[0].SLO, 3 * time.Second},
		{"default fail_mode", sc.Orchestrators[1].FailMode, FailFast},
		{"slow fail_mode", sc.Orchestrators[0].FailMode, FailSlow},
		{"p99", sc.Orchestrators[0].Classes["a"].P99, 1900 * time.Millisecond},
		{"timeline sorted", sc.Timeline[0].Client, "acme"},
		{"timeline at", sc.Timeline[1].At, 30 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, pair := range [][2]string{{"FRA", "LAX"}, {"LAX", "FRA"}} {
		if d, ok := sc.RTT.Between(pair[0], pair[1]); !ok || d != 150*time.Millisecond {
			t.Errorf("rtt %s-%s: got %v %v, want 150ms true", pair[0], pair[1], d, ok)
		}
	}
	if d, _ := sc.RTT.Between("LAX", "LAX"); d != 4*time.Millisecond {
		t.Errorf("same region rtt: got %v, want 4ms", d)
	}
	if s := sc.Orchestrators[0].Classes["a"].Sigma(); s < 0.428 || s > 0.430 {
		t.Errorf("sigma: got %v, want ln(1900/700)/2.326 ≈ 0.429", s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // replacement applied to base
		wantPath  string // substring of the error
		wantWords string
	}{
		{"unknown class in mix", "mix: {a: 0.6, b: 0.4}", "mix: {a: 0.6, c: 0.4}", "clients[0].mix.c", "unknown class"},
		{"mix not summing to 1", "mix: {a: 0.6, b: 0.4}", "mix: {a: 0.6, b: 0.3}", "clients[0].mix", "sum to 0.9"},
		{"unknown orchestrator in timeline", "orchestrator: o1, set: {down", "orchestrator: o9, set: {down", "timeline[0]", "unknown orchestrator \"o9\""},
		{"unknown client in timeline", "client: acme, set", "client: zed, set", "timeline[1]", "unknown client"},
		{"p99 below p50", "p50_ms: 300, p99_ms: 900", "p50_ms: 300, p99_ms: 200", "orchestrators[0].classes.b.p99_ms", "< p50_ms"},
		{"unknown region", "id: o2, region: LAX", "id: o2, region: SIN", "orchestrators[1].region", "unknown region"},
		{"missing rtt pair", "FRA-LAX: 150", "FRA-FRA: 150", "rtt_ms", "same_region"},
		{"rtt given twice", "FRA-LAX: 150}", "FRA-LAX: 150, LAX-FRA: 150}", "rtt_ms.LAX-FRA", "twice"},
		{"bad fail mode", "fail_mode: slow", "fail_mode: sometimes", "orchestrators[0].fail_mode", "fast or slow"},
		{"fail above 1", "fail: 0.01", "fail: 1.5", "orchestrators[0].fail", "probability"},
		{"capacity 0", "capacity: 1", "capacity: 0", "orchestrators[1].capacity", "want ≥ 1"},
		{"duplicate orchestrator", "id: o2,", "id: o1,", "orchestrators[1].id", "duplicate"},
		{"unknown field", "stake: 10,", "stak: 10,", "decode scenario", "stak"},
		{"bad duration", "duration: 60s", "duration: sixty", "decode scenario", "duration"},
		{"warmup after end", "warmup: 10s", "warmup: 90s", "warmup", "want in"},
		{"timeline after end", "at: 30s", "at: 90s", "timeline[0].at", "want in"},
		{"offer missing p99", "{price: 2.0e-9, p50_ms: 500, p99_ms: 500}", "{price: 2.0e-9, p50_ms: 500}", "orchestrators[1].classes.a", "p99_ms"},
		{"client field on orchestrator", "set: {down: true}", "set: {rate: 3}", "timeline[0].set", "rate"},
		{"id in set", "set: {down: true}", "set: {id: o3}", "timeline[0].set", "id"},
		{"timeline p99 below p50", "set: {down: true}", "set: {classes: {a: {p99_ms: 100}}}", "timeline[0].set.classes.a.p99_ms", "< p50_ms"},
		{"timeline new class incomplete", "orchestrator: o1, set: {down: true}", "orchestrator: o2, set: {classes: {b: {price: 1}}}", "timeline[0]", "needs price"},
		{"timeline mix unknown class", "set: {rate: 9}", "set: {mix: {zz: 1}}", "timeline[1].set.mix.zz", "unknown class"},
		{"both targets", "client: acme, set", "client: acme, orchestrator: o1, set", "timeline[1]", "exactly one"},
		{"empty set", "set: {rate: 9}", "set: {}", "timeline[1].set", "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if src == base {
				t.Fatalf("replacement %q not found in base", tt.old)
			}
			_, err := Parse([]byte(src))
			if err == nil {
				t.Fatalf("got no error, want one at %s", tt.wantPath)
			}
			if !strings.Contains(err.Error(), tt.wantPath) || !strings.Contains(err.Error(), tt.wantWords) {
				t.Errorf("got error %q, want one naming %q and saying %q", err, tt.wantPath, tt.wantWords)
			}
		})
	}
}

func TestFieldErrorIsInspectable(t *testing.T) {
	_, err := Parse([]byte(strings.Replace(base, "rate: 5", "rate: -5", 1)))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *FieldError", err)
	}
	if fe.Path != "clients[0].rate" {
		t.Errorf("got path %q, want clients[0].rate", fe.Path)
	}
}

func TestTimelineApply(t *testing.T) {
	src := strings.Replace(base, "set: {down: true}",
		"set: {hang: true, classes: {a: {price: 5.0e-9}, b: null}, capacity: 7}", 1)
	sc, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	st := sc.Initial()
	for _, ch := range sc.Timeline {
		if err := st.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	o := st.Orchestrators[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"hang", o.Hang, true},
		{"capacity", o.Capacity, 7},
		{"price merged", o.Classes["a"].Price, 5.0e-9},
		{"p50 kept", o.Classes["a"].P50, 700 * time.Millisecond},
		{"class removed", len(o.Classes), 1},
		{"client rate", st.Clients[0].Rate, 9.0},
		{"initial untouched", sc.Orchestrators[0].Classes["a"].Price, 1.0e-9},
		{"initial classes untouched", len(sc.Orchestrators[0].Classes), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestPublicScenariosParse(t *testing.T) {
	paths, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(paths) < 5 {
		t.Fatalf("got %d scenario files (%v), want at least 5", len(paths), err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			sc, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(p)
			if sc.Name == "" || len(b) == 0 {
				t.Errorf("got name %q, want one", sc.Name)
			}
		})
	}
}
