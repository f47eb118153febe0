package warehouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
)

func TestStats(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		st := openStore(t, testConfig(t, tb))
		ctx := context.Background()
		var outs []event.Outcome
		for i := 0; i < 15; i++ {
			o := eventtest.Outcome(7, i*5) // i*5: one attempt each
			o.ID = fmt.Sprintf("stats-%d", i)
			o.ClientRegion = "FRA"
			a := &o.Attempts[0]
			if i < 10 {
				a.Orchestrator, a.Result, a.LatencyMs = "a", event.AttemptOK, int64(100*(i+1))
			} else {
				a.Orchestrator, a.Result, a.HTTPStatus, a.LatencyMs = "b", event.AttemptError, 500, 5000
				o.Status = event.StatusError
			}
			outs = append(outs, o)
		}
		if err := st.WriteOutcomes(ctx, "stats", outs); err != nil {
			t.Fatal(err)
		}
		base := time.UnixMilli(eventtest.BaseMs)
		stats, err := st.Stats(ctx, base.Add(-time.Minute), base.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stats {
			if s.Seconds != 120 {
				t.Errorf("%s: got a window of %v s, want 120", s.Orchestrator, s.Seconds)
			}
		}
		by := map[string]event.AttemptStats{}
		for _, s := range stats {
			by[s.Orchestrator] = s
		}
		a, b := by["a"], by["b"]
		if a.Attempts != 10 || a.Successes != 10 || a.Errors != 0 {
			t.Errorf("a: got %+v, want 10 attempts, 10 successes", a)
		}
		if a.LatencyP50Ms < 400 || a.LatencyP50Ms > 700 || a.LatencyP99Ms < a.LatencyP50Ms {
			t.Errorf("a: got p50 %v p99 %v, want p50 near 550 and p99 above it", a.LatencyP50Ms, a.LatencyP99Ms)
		}
		if b.Attempts != 5 || b.Errors != 5 || b.Successes != 0 || b.LatencyP50Ms != 0 {
			t.Errorf("b: got %+v, want 5 attempts, 5 errors, no latency (no success)", b)
		}
		if a.Capability != "text-to-image" || a.ClientRegion != "FRA" {
			t.Errorf("a: got class %q region %q", a.Capability, a.ClientRegion)
		}
		// A window after the data is empty.
		later, err := st.Stats(ctx, base.Add(time.Hour), base.Add(2*time.Hour))
		if err != nil || len(later) != 0 {
			t.Errorf("later window: got %d stats, %v; want none", len(later), err)
		}
	})
}

func TestShed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		st := openStore(t, testConfig(t, tb))
		ctx := context.Background()
		var outs []event.Outcome
		for i := 0; i < 12; i++ {
			o := eventtest.Outcome(9, i*5)
			o.ID = fmt.Sprintf("shed-%d", i)
			o.ClientRegion = "FRA"
			switch {
			case i < 5: // shed before any attempt: counted
				o.Status, o.ErrorClass, o.HTTPStatus, o.Attempts = event.StatusShed, event.ShedAdmission, 503, nil
			case i < 7: // shed from LAX: counted in its own row
				o.Status, o.ErrorClass, o.HTTPStatus, o.Attempts = event.StatusShed, event.ShedDeadline, 503, nil
				o.ClientRegion = "LAX"
			case i < 9: // a retry shed after an attempt: its attempt is demand already
				o.Status, o.ErrorClass, o.HTTPStatus = event.StatusShed, event.ShedDeadline, 503
			}
			outs = append(outs, o)
		}
		if err := st.WriteOutcomes(ctx, "shed", outs); err != nil {
			t.Fatal(err)
		}
		base := time.UnixMilli(eventtest.BaseMs)
		shed, err := st.Shed(ctx, base.Add(-time.Minute), base.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, s := range shed {
			if s.Seconds != 120 {
				t.Errorf("%s: got a window of %v s, want 120", s.ClientRegion, s.Seconds)
			}
			if s.Capability != outs[0].Capability || s.Model != outs[0].Model {
				t.Errorf("got class %s/%s, want %s/%s", s.Capability, s.Model, outs[0].Capability, outs[0].Model)
			}
			got[s.ClientRegion+"/"+s.Reason] += s.Requests
		}
		if len(shed) != 2 || got["FRA/admission"] != 5 || got["LAX/queue_deadline"] != 2 {
			t.Fatalf("got %+v, want 5 shed by admission from FRA and 2 by deadline from LAX (none with attempts, none served)", shed)
		}
		later, err := st.Shed(ctx, base.Add(time.Hour), base.Add(2*time.Hour))
		if err != nil || len(later) != 0 {
			t.Errorf("later window: got %d rows, %v; want none", len(later), err)
		}
	})
}
