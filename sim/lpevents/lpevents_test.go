package lpevents

import (
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
)

// TestFormatFaceValue: go-livepeer's eth.FormatUnits(v, "ETH").
func TestFormatFaceValue(t *testing.T) {
	for _, tt := range []struct{ wei, want string }{
		{"0", "0 WEI"},
		{"9999999999999999", "9999999999999999 WEI"},
		{"10000000000000000", "0.01 ETH"},
		{"123456789012345678", "0.123456789012345678 ETH"},
		{"2000000000000000000", "2 ETH"},
		{"2500000000000000001", "2.500000000000000001 ETH"},
	} {
		v, _ := new(big.Int).SetString(tt.wei, 10)
		if got := FormatFaceValue(v); got != tt.want {
			t.Errorf("FormatFaceValue(%s): got %q, want %q", tt.wei, got, tt.want)
		}
	}
}

// TestEventsEnvelope: every event is go-livepeer's envelope, with the
// timestamp in ms as a string, and the totals count what was generated.
func TestEventsEnvelope(t *testing.T) {
	g, err := New(DefaultConfig(), deps.Deps{Rand: rand.New(rand.NewPCG(1, 2)), Clock: func() time.Time { return time.UnixMilli(1767225600000) }})
	if err != nil {
		t.Fatal(err)
	}
	evs := g.Events(500)
	n := 0
	for _, e := range evs {
		var env struct {
			ID, Type, Timestamp, Gateway string
			Data                         json.RawMessage
		}
		if err := json.Unmarshal(e.Value, &env); err != nil {
			t.Fatalf("%s: %v", e.Value, err)
		}
		if env.ID != string(e.Key) || env.Type != e.Type || env.Timestamp != "1767225600000" || len(env.Data) == 0 {
			t.Fatalf("got envelope %+v for key %s, want id = key, type, ms timestamp as a string, data", env, e.Key)
		}
	}
	for _, c := range g.Totals().Events {
		n += c
	}
	if n != len(evs) || len(evs) < 500 {
		t.Errorf("got %d events counted in the totals for %d generated (asked 500)", n, len(evs))
	}
}
