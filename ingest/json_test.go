package ingest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
)

// FuzzDecodeOutcomeSameAsEvent: for any bytes, ingest's fast decoder and
// event.DecodeOutcome (encoding/json) accept the same messages, decode them
// to the same outcome, and reject the others for the same kind of reason.
func FuzzDecodeOutcomeSameAsEvent(f *testing.F) {
	for i := 0; i < 5; i++ {
		b, _ := event.EncodeOutcome(eventtest.Outcome(1, i))
		f.Add(b)
	}
	o := eventtest.Outcome(1, 9)
	b, _ := json.Marshal(map[string]any{"ID": o.ID, "schema": 1, "future_field": []int{1, 2}, "attempts": o.Attempts})
	f.Add(b)
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"schema":1,"id":"\xff\xfe"}`))
	f.Add([]byte(`{"schema":1,"schema":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := event.DecodeOutcome(b)
		got, err := decodeOutcome(b)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("got error %v, encoding/json gives %v", err, wantErr)
		}
		if err != nil {
			if reasonOf(err) != reasonOf(wantErr) {
				t.Fatalf("got reason %s (%v), encoding/json gives %s (%v)", reasonOf(err), err, reasonOf(wantErr), wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoders disagree:\ngot  %+v\nwant %+v", got, want)
		}
	})
}

func TestDecodeOutcomeTolerant(t *testing.T) {
	o := eventtest.Outcome(1, 3)
	b, err := event.EncodeOutcome(o)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"as encoded", b, true},
		{"unknown field", append([]byte(`{"added_by_a_newer_producer":{"x":[1,2,3]},`), b[1:]...), true},
		{"mixed-case key", []byte(strings.Replace(string(b), `"model":`, `"MoDeL":`, 1)), true},
		{"truncated", b[:len(b)/2], false},
		{"missing comma", []byte(strings.Replace(string(b), `,"model":`, ` "model":`, 1)), false},
		{"not an object", []byte(`[1,2]`), false},
	}
	bad := o
	bad.Model = "sd\xffxl" // invalid UTF-8: encoding/json turns it into U+FFFD
	if raw, err := json.Marshal(bad); err != nil {
		t.Fatal(err)
	} else if got, want := mustDecode(t, decodeOutcome, raw), mustDecode(t, event.DecodeOutcome, raw); !reflect.DeepEqual(got, want) {
		t.Fatalf("invalid UTF-8: got %+v, encoding/json gives %+v", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want, err := event.DecodeOutcome(tt.in); (err == nil) != tt.ok || (tt.ok && !reflect.DeepEqual(want, o)) {
				t.Fatalf("the case is wrong: encoding/json gives %v", err)
			}
			got, err := decodeOutcome(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !reflect.DeepEqual(got, o) {
				t.Fatalf("got %+v, want %+v", got, o)
			}
			if !tt.ok && !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func mustDecode(t *testing.T, dec func([]byte) (event.Outcome, error), b []byte) event.Outcome {
	t.Helper()
	o, err := dec(b)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// BenchmarkDecodeOutcome compares ingest's decoder with event.DecodeOutcome
// (encoding/json), the baseline, on the same messages in the same run.
// The two alternate every 1,000 messages, so a machine whose load drifts
// during the run weighs on both alike; it reports each one's ns per
// message and speedup = baseline time / ingest time.
func BenchmarkDecodeOutcome(b *testing.B) {
	msgs := make([][]byte, 1000)
	for i := range msgs {
		msgs[i], _ = event.EncodeOutcome(eventtest.Outcome(1, i))
	}
	var std, fast time.Duration
	round := func(dec func([]byte) (event.Outcome, error)) time.Duration {
		start := time.Now()
		for _, m := range msgs {
			if _, err := dec(m); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	rounds := 0
	for b.Loop() {
		std += round(event.DecodeOutcome)
		fast += round(decodeOutcome)
		rounds++
	}
	n := float64(rounds * len(msgs))
	b.ReportMetric(float64(std.Nanoseconds())/n, "encoding_json_ns/msg")
	b.ReportMetric(float64(fast.Nanoseconds())/n, "ingest_ns/msg")
	b.ReportMetric(std.Seconds()/fast.Seconds(), "speedup")
}
