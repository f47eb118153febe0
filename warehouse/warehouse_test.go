package warehouse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
)

func outcomes(seed uint64, from, to int) []event.Outcome {
	outs := make([]event.Outcome, 0, to-from)
	for i := from; i < to; i++ {
		outs = append(outs, eventtest.Outcome(seed, i))
	}
	return outs
}

func TestMigrationsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		cfg := testConfig(t, tb)
		s1, err := Open(ctx, cfg, deps.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, cfg) // the second open finds everything applied
		t.Cleanup(func() { dropDatabase(t, s) })
		if err := s.migrate(ctx); err != nil { // and a third, on a live store
			t.Fatal(err)
		}
		if got := queryInt(t, s, "SELECT count() FROM "+cfg.Database+".schema_migrations"); got != 9 {
			t.Errorf("got %d schema_migrations rows, want 9 (one per migration, none repeated)", got)
		}
		rows, err := s.Query(ctx, "SELECT name FROM system.tables WHERE database = '"+cfg.Database+"' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows.Values {
			got = append(got, r[0].(string))
		}
		want := []string{"api_keys", "attempts", "attempts_10s", "attempts_10s_mv", "attempts_1m", "attempts_1m_mv", "audit", "livepeer_discovery", "livepeer_orchestrators", "livepeer_payments", "livepeer_streams", "policies", "requests", "schema_migrations", "spend_1h", "spend_1h_mv"}
		if !slices.Equal(got, want) {
			t.Errorf("got tables %v, want %v", got, want)
		}
		wantProfile := tb.profile
		if wantProfile == ProfileAuto {
			wantProfile = ProfileLegacy
			if major, minor, _ := parseVersion(s.Profile().Version); major > 22 || (major == 22 && minor >= 3) {
				wantProfile = ProfileModern
			}
		}
		if s.Profile().Name != wantProfile {
			t.Errorf("got profile %q for version %s, want %q", s.Profile().Name, s.Profile().Version, wantProfile)
		}
	})
}

// step is one write in an exactly-once scenario.
type step struct {
	token        string
	from, to     int  // outcomes eventtest.Outcome(seed, from..to-1)
	twice        bool // every outcome appears twice in the batch
	requestsOnly bool // simulate a crash after the requests insert
}

func TestWriteOutcomesExactlyOnce(t *testing.T) {
	const n = 1000
	scenarios := []struct {
		name      string
		steps     []step
		wantSkips float64 // requests rows skipped as already stored
	}{
		{"one batch", []step{{token: "a", to: n}}, 0},
		{"same batch twice, same token", []step{{token: "a", to: n}, {token: "a", to: n}}, n},
		{"same batch twice, new token", []step{{token: "a", to: n}, {token: "b", to: n}}, n},
		{"same batch twice, no token", []step{{to: n}, {to: n}}, n},
		{"overlapping batches", []step{{token: "a", to: 600}, {token: "b", from: 400, to: n}}, 200},
		{"duplicates within a batch", []step{{token: "a", to: n, twice: true}}, 0},
		{"requests landed, attempts did not", []step{{token: "a", to: n, requestsOnly: true}, {token: "a", to: n}}, n},
		{"partial overlap after a partial write", []step{{token: "a", to: 600, requestsOnly: true}, {token: "b", from: 300, to: n}, {token: "c", to: n}}, 300 + n},
		{"split into small checks", []step{{token: "a", to: 700}, {token: "b", to: n}}, 700},
	}
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				ctx := context.Background()
				s := newStore(t, tb)
				if sc.name == "split into small checks" {
					s.cfg.CheckChunk = 64
				}
				for _, st := range sc.steps {
					outs := outcomes(1, st.from, st.to)
					if st.twice {
						outs = append(outs, outcomes(1, st.from, st.to)...)
					}
					var err error
					if st.requestsOnly {
						var batch []*event.Outcome
						if batch, err = s.uniqueOutcomes(outs); err == nil {
							err = s.writeRequests(ctx, st.token, batch)
						}
					} else {
						err = s.WriteOutcomes(ctx, st.token, outs)
					}
					if err != nil {
						t.Fatalf("write %+v: %v", st, err)
					}
				}
				checkExactlyOnce(t, s, n)
				if got := counterValue(t, s.m.dupsSkipped.WithLabelValues("requests", "warehouse")); got != sc.wantSkips {
					t.Errorf("got %v requests rows skipped as stored, want %v", got, sc.wantSkips)
				}
			})
		}
	})
}

// checkExactlyOnce asserts that outcomes 0..n-1 are stored exactly once,
// in the raw tables and in the rollup.
func checkExactlyOnce(t *testing.T, s *Store, n int) {
	t.Helper()
	db := s.Database()
	wantAttempts := int64(eventtest.TotalAttempts(n))
	for _, c := range []struct {
		sql  string
		want int64
	}{
		{"SELECT count() FROM " + db + ".requests", int64(n)},
		{"SELECT uniqExact(id) FROM " + db + ".requests", int64(n)},
		{"SELECT count() FROM " + db + ".attempts", wantAttempts},
		{"SELECT uniqExact(request_id, attempt) FROM " + db + ".attempts", wantAttempts},
		{"SELECT countMerge(attempts) FROM " + db + ".attempts_1m", wantAttempts},
		{"SELECT sumMerge(successes) FROM " + db + ".attempts_1m", int64(n)},
		{"SELECT sum(attempt_count) FROM " + db + ".requests", wantAttempts},
	} {
		if got := queryInt(t, s, c.sql); got != c.want {
			t.Errorf("%s: got %d, want %d", c.sql, got, c.want)
		}
	}
}

// TestConcurrentWriters writes disjoint batches from several goroutines
// through one Store (the embedded backend serialises them).
func TestConcurrentWriters(t *testing.T) {
	const writers, per = 4, 500
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		s := newStore(t, tb)
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			go func() {
				errs <- s.WriteOutcomes(context.Background(), fmt.Sprint("w", w), outcomes(1, w*per, (w+1)*per))
			}()
		}
		for w := 0; w < writers; w++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		checkExactlyOnce(t, s, writers*per)
	})
}

func TestRollup(t *testing.T) {
	const n = 3000
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		if err := s.WriteOutcomes(ctx, "t", outcomes(7, 0, n)); err != nil {
			t.Fatal(err)
		}
		db := s.Database()
		total := int64(eventtest.TotalAttempts(n))
		for _, c := range []struct {
			sql  string
			want int64
		}{
			{"SELECT countMerge(attempts) FROM " + db + ".attempts_1m", total},
			{"SELECT sumMerge(errors) FROM " + db + ".attempts_1m", total - n},
			{"SELECT sumMerge(retries) FROM " + db + ".attempts_1m", total - n},
			{"SELECT sumMerge(billed_attempts) FROM " + db + ".attempts_1m", n},
			// 3000 outcomes, 10 ms apart, span 30 s: one or two minutes.
			{"SELECT uniqExact(minute) FROM " + db + ".attempts_1m", 1},
			{"SELECT uniqExact(orchestrator) FROM " + db + ".attempts_1m", 5},
		} {
			if got := queryInt(t, s, c.sql); got != c.want {
				t.Errorf("%s: got %d, want %d", c.sql, got, c.want)
			}
		}
		rows, err := s.Query(ctx, "SELECT quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_tdigest) AS q, sumMerge(billed_cost) AS cost FROM "+db+".attempts_1m")
		if err != nil {
			t.Fatal(err)
		}
		qs, ok := rows.Values[0][0].([]any)
		if !ok || len(qs) != 4 {
			t.Fatalf("got quantiles %#v, want 4 values", rows.Values[0][0])
		}
		exact := queryInt(t, s, "SELECT toInt64(quantileExact(0.5)(latency_ms)) FROM "+db+".attempts")
		p50 := toFloat(t, qs[0])
		// Latencies are uniform in [200, 2200) ms: the median is near 1200.
		if p50 < 0.95*float64(exact) || p50 > 1.05*float64(exact) || p50 < 1000 || p50 > 1400 {
			t.Errorf("got tdigest p50 %v, want within 5%% of the exact median %d and in [1000, 1400]", p50, exact)
		}
		for i := 1; i < len(qs); i++ {
			if toFloat(t, qs[i]) < toFloat(t, qs[i-1]) {
				t.Errorf("got quantiles %v, want non-decreasing", qs)
			}
		}
		wantCost := float64(n) * 2e-9 * 1048576
		if got := toFloat(t, rows.Values[0][1]); got < wantCost*0.999 || got > wantCost*1.001 {
			t.Errorf("got billed cost %v, want %v", got, wantCost)
		}
	})
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func toFloat(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	t.Fatalf("got %T %v, want a number", v, v)
	return 0
}

func TestPolicyRoundTrip(t *testing.T) {
	policy := func(v uint64) event.Policy {
		return event.Policy{
			Schema: event.SchemaVersion, Version: v, CreatedMs: eventtest.BaseMs + int64(v)*1000, Lambda: 0.4, WindowS: 60, Producer: "opt-1",
			Classes: []event.ClassPolicy{{
				Capability: "text-to-image", Model: "m", ClientRegion: "FRA",
				Shares: []event.Share{{Orchestrator: "fra-1", Share: 0.7, Reason: "fast"}, {Orchestrator: "lax-1", Share: 0.3}},
			}},
			Ejections: []event.Ejection{{Orchestrator: "sin-1", Reason: "fail rate 0.6", UntilMs: eventtest.BaseMs + 60000}},
			Limits:    []event.Limit{{Orchestrator: "fra-1", MaxInFlight: 8}},
		}
	}
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		for _, v := range []uint64{1, 2, 2, 1} { // replays are skipped
			p := policy(v)
			enc, err := event.EncodePolicy(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WritePolicy(ctx, p, enc); err != nil {
				t.Fatal(err)
			}
		}
		if got := queryInt(t, s, "SELECT count() FROM "+s.Database()+".policies"); got != 2 {
			t.Errorf("got %d policy rows, want 2", got)
		}
		for _, tt := range []struct {
			ask, want uint64
		}{{1, 1}, {2, 2}, {0, 2}} {
			got, err := s.Policy(ctx, tt.ask)
			if err != nil {
				t.Fatal(err)
			}
			if want := policy(tt.want); !reflect.DeepEqual(got, want) {
				t.Errorf("Policy(%d): got %+v, want %+v", tt.ask, got, want)
			}
		}
		if _, err := s.Policy(ctx, 9); !errors.Is(err, ErrNotFound) {
			t.Errorf("Policy(9): got %v, want ErrNotFound", err)
		}
		if err := s.WritePolicy(ctx, event.Policy{Version: 3}, nil); err == nil {
			t.Error("got nil error for a policy without its encoding")
		}

		// A fleet-sized policy, over the outcomes' MaxEncodedSize (policies
		// have their own bound), is stored and read back whole.
		big := policy(4)
		for c := range 40 {
			cp := event.ClassPolicy{Capability: "llm", Model: fmt.Sprintf("model-%d", c), ClientRegion: "FRA"}
			for o := range 1000 {
				cp.Shares = append(cp.Shares, event.Share{Orchestrator: fmt.Sprintf("orch-%04d", o), Share: 0.001, Reason: "within SLO at λ 0.40"})
			}
			big.Classes = append(big.Classes, cp)
		}
		enc, err := event.EncodePolicy(big)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) <= event.MaxEncodedSize {
			t.Fatalf("the big policy encodes to %d bytes, want more than %d", len(enc), event.MaxEncodedSize)
		}
		if err := s.WritePolicy(ctx, big, enc); err != nil {
			t.Fatalf("write a %d-byte policy: %v", len(enc), err)
		}
		got, err := s.Policy(ctx, 4)
		if err != nil {
			t.Fatalf("read the %d-byte policy back: %v", len(enc), err)
		}
		if !reflect.DeepEqual(got, big) {
			t.Errorf("the %d-byte policy read back differs", len(enc))
		}
	})
}

func TestWriteAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		at := time.UnixMilli(eventtest.BaseMs + 1234).UTC()
		s.now = func() time.Time { return at.Add(time.Minute) }
		for _, e := range []AuditEntry{
			{Time: at, Actor: "alice", Action: "config.lambda", Detail: `{"from":0.5,"to":0.3}`},
			{Actor: "optimizer", Action: "policy.publish", Detail: "version 7\tline\nbreak \\ 'quoted'"},
		} {
			if err := s.WriteAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.WriteAudit(ctx, AuditEntry{Actor: "x"}); err == nil {
			t.Error("got nil error for an entry without an action")
		}
		rows, err := s.Query(ctx, "SELECT time_ms, time, actor, detail FROM "+s.Database()+".audit ORDER BY time_ms")
		if err != nil {
			t.Fatal(err)
		}
		if rows.Len() != 2 {
			t.Fatalf("got %d audit rows, want 2", rows.Len())
		}
		if got := rows.Values[0][0]; got != at.UnixMilli() {
			t.Errorf("got time_ms %v, want %d", got, at.UnixMilli())
		}
		if got, ok := rows.Values[0][1].(time.Time); !ok || got.Unix() != at.Unix() {
			t.Errorf("got time %v, want %v (to the second)", rows.Values[0][1], at)
		}
		if got := rows.Values[1][0]; got != at.Add(time.Minute).UnixMilli() {
			t.Errorf("got defaulted time_ms %v, want the injected clock's %d", got, at.Add(time.Minute).UnixMilli())
		}
		if got, want := rows.Values[1][3], "version 7\tline\nbreak \\ 'quoted'"; got != want {
			t.Errorf("got detail %q, want %q", got, want)
		}
	})
}

// TestQueryTypes checks both backends return the same Go types.
func TestQueryTypes(t *testing.T) {
	const sql = `SELECT toUInt8(1) AS u, toInt32(-2) AS i, toUInt64(18446744073709551615) AS big, 1.5 AS f,
		'it''s' AS s, toDateTime('2026-01-01 00:00:07', 'UTC') AS t, [1, 2] AS a, toDate('2026-01-02') AS d`
	want := []any{uint64(1), int64(-2), uint64(18446744073709551615), 1.5, "it's",
		time.Date(2026, 1, 1, 0, 0, 7, 0, time.UTC), []any{uint64(1), uint64(2)}, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		s := newStore(t, tb)
		rows, err := s.Query(context.Background(), sql)
		if err != nil {
			t.Fatal(err)
		}
		if rows.Len() != 1 {
			t.Fatalf("got %d rows, want 1", rows.Len())
		}
		for i, w := range want {
			if got := rows.Values[0][i]; !reflect.DeepEqual(got, w) {
				t.Errorf("column %s (%s): got %T %#v, want %T %#v", rows.Columns[i], rows.Types[i], got, got, w, w)
			}
		}
		if m := rows.Maps()[0]; m["s"] != "it's" {
			t.Errorf("Maps: got %v, want s = it's", m)
		}
		if _, err := s.Query(context.Background(), "SELECT * FROM no_such_table_here"); err == nil {
			t.Error("got nil error for a missing table")
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

func TestEmbeddedOnePerProcess(t *testing.T) {
	tb := testBackends[1]
	s := newStore(t, tb)
	_, err := Open(context.Background(), testConfig(t, tb), deps.Deps{})
	if !errors.Is(err, ErrEngineInUse) {
		t.Fatalf("second embedded Open: got %v, want ErrEngineInUse", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("first store after a refused second Open: %v", err)
	}
}

func TestEmbeddedContextCanceled(t *testing.T) {
	s := newStore(t, testBackends[1])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Query(ctx, "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if err := s.WriteOutcomes(ctx, "t", outcomes(1, 0, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestOpenWithoutLibchdb(t *testing.T) {
	cfg := DefaultConfig()
	cfg.LibPath = "/nonexistent/libchdb.so"
	cfg.DataDir = t.TempDir()
	_, err := Open(context.Background(), cfg, deps.Deps{})
	if !errors.Is(err, ErrNoChdb) {
		t.Fatalf("got %v, want ErrNoChdb", err)
	}
	t.Log(err)
}

// TestInsertDedupToken checks the second line of defence on its own: an
// insert retried with the same token is dropped by ClickHouse, in the table
// and in the rollup fed from it, even without the existence check.
func TestInsertDedupToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		if !s.Profile().InsertDedup {
			t.Skipf("profile %s has no insert deduplication", s.Profile().Name)
		}
		batch, err := s.uniqueOutcomes(outcomes(3, 0, 100))
		if err != nil {
			t.Fatal(err)
		}
		var refs []attemptRef
		for _, o := range batch {
			for i := range o.Attempts {
				refs = append(refs, attemptRef{o, i})
			}
		}
		total := int64(len(refs))
		db := s.Database()
		for _, tt := range []struct {
			token string
			want  int64 // attempts rows after this insert
		}{
			{"tok-1", total},
			{"tok-1", total},     // a retry: dropped
			{"tok-2", 2 * total}, // another token: stored again, so the token is what dropped it
		} {
			if err := s.insert(ctx, attemptsBlock(refs), tt.token); err != nil {
				t.Fatal(err)
			}
			if got := queryInt(t, s, "SELECT count() FROM "+db+".attempts"); got != tt.want {
				t.Errorf("after insert with %s: got %d attempts rows, want %d", tt.token, got, tt.want)
			}
			if got := queryInt(t, s, "SELECT countMerge(attempts) FROM "+db+".attempts_1m"); got != tt.want {
				t.Errorf("after insert with %s: got %d attempts in the rollup, want %d", tt.token, got, tt.want)
			}
		}
	})
}
