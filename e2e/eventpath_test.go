package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/faultnet"
	"github.com/loopgate/loopgate/warehouse"
)

// TestEventPath100k publishes 100,000 outcomes through the publisher, runs
// ingest into the warehouse, and finds every request and attempt exactly
// once — on each broker × each warehouse backend.
func TestEventPath100k(t *testing.T) {
	const n = 100000
	for _, br := range brokers {
		for _, be := range backends {
			t.Run(br.name+"/"+be.name, func(t *testing.T) {
				bs := br.brokers(t)
				st := openStore(t, be.config(t))
				tc := topics(t, bs)
				publish(t, bs, tc.Outcomes, 0, n)
				p := startPipeline(t, bs, tc, st, pipelineOpts{group: "e2e-" + suffix(), drain: true})
				waitRows(t, st, n, 3*time.Minute)
				p.stop(t)
				checkExactlyOnce(t, st, n)
			})
		}
	}
}

// TestIngestCrashRestart runs ingest in a child process that SIGKILLs
// itself right after its second insert and before that batch's commit —
// the worst moment to die, with nothing closed — then ingests the rest in
// a new process (this one) in the same consumer group: the re-delivered
// batch adds no rows.
func TestIngestCrashRestart(t *testing.T) {
	const n = 20000
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			bs := brokers[0].brokers(t) // the real Kafka
			cfg := be.config(t)
			cfg.Database = "loopgate_e2e_" + suffix()
			if cfg.Backend == warehouse.BackendEmbedded {
				cfg.DataDir = t.TempDir() // the child's engine; this process opens it after the child died
			}
			tc := topics(t, bs)
			publish(t, bs, tc.Outcomes, 0, n)
			group := "e2e-crash-" + suffix()

			err := spawnChild(t, childSpec{Brokers: bs, Topics: tc, Group: group, Warehouse: cfg, BatchRows: 3000, CrashAfterWrites: 2})
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child ingest: got %v, want it killed by SIGKILL after its second write", err)
			}

			st := openStore(t, cfg)
			partial := count(t, st, "SELECT count() FROM requests")
			if partial == 0 || partial >= n {
				t.Fatalf("after the crash: got %d rows, want some but not all of %d", partial, n)
			}
			p := startPipeline(t, bs, tc, st, pipelineOpts{group: group, batchRows: 3000, drain: true})
			waitRows(t, st, n, 3*time.Minute)
			// Let the new ingester run past the end: anything delivered twice would land now.
			time.Sleep(2 * time.Second)
			p.stop(t)
			checkExactlyOnce(t, st, n)
		})
	}
}

// TestClickHouseOutage cuts the network to the ClickHouse server while
// ingest runs: ingest commits nothing while it cannot write, and every row
// arrives once the server is back.
func TestClickHouseOutage(t *testing.T) {
	const n = 30000
	bs := brokers[0].brokers(t)
	cfg := backends[0].config(t) // the server
	proxy, err := faultnet.Listen(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cfg.Addr = proxy.Addr()
	cfg.DialTimeout = 2 * time.Second
	st := openStore(t, cfg)
	tc := topics(t, bs)
	publish(t, bs, tc.Outcomes, 0, n/3)

	var log *commitLog
	p := startPipeline(t, bs, tc, st, pipelineOpts{
		group: "e2e-outage-" + suffix(), batchRows: 2000, drain: true,
		source: func(s ingest.Source) ingest.Source { log = &commitLog{Source: s}; return log },
	})
	waitRows(t, st, n/3, 2*time.Minute)
	// Wait until the first third is committed too, so the outage starts clean.
	deadline := time.Now().Add(time.Minute)
	for _, msgs := log.committed(); msgs < n/3; _, msgs = log.committed() {
		if time.Now().After(deadline) {
			t.Fatalf("first third never committed: %d of %d", msgs, n/3)
		}
		time.Sleep(50 * time.Millisecond)
	}

	proxy.Cut()
	commitsBefore, _ := log.committed()
	publish(t, bs, tc.Outcomes, n/3, n)
	time.Sleep(5 * time.Second) // ingest fetches, fails to write, backs off
	if commits, _ := log.committed(); commits != commitsBefore {
		t.Fatalf("during the outage: got %d commits, want none (had %d before)", commits-commitsBefore, commitsBefore)
	}
	proxy.Restore()

	waitRows(t, st, n, 3*time.Minute)
	p.stop(t)
	checkExactlyOnce(t, st, n)
	if _, msgs := log.committed(); msgs != n {
		t.Errorf("committed %d messages, want %d", msgs, n)
	}
}

// TestPoisonMessages writes invalid messages between valid ones: each ends
// in the dead-letter topic with its error, and the valid ones flow.
func TestPoisonMessages(t *testing.T) {
	for _, br := range brokers {
		t.Run(br.name, func(t *testing.T) {
			bs := br.brokers(t)
			st := openStore(t, backends[1].config(t)) // embedded: the poison is Kafka-side
			tc := topics(t, bs)

			future := eventtest.Outcome(1, 1)
			future.Schema = event.SchemaVersion + 1
			fb, _ := json.Marshal(future)
			invalid := eventtest.Outcome(1, 2)
			invalid.Attempts[0].Propensity = 7
			ib, _ := json.Marshal(invalid)
			poison := map[string][]byte{
				"malformed":      []byte(`{"id": "x", "schema": 1, "attempts": [`),
				"schema_version": fb,
				"too_large":      []byte(`{"id":"` + strings.Repeat("a", event.MaxEncodedSize) + `","schema":1}`),
				"invalid":        ib,
			}
			const good = 400
			var msgs []eventlog.Message
			for i := 0; i < good; i++ {
				o := eventtest.Outcome(2, i)
				b, err := event.EncodeOutcome(o)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, eventlog.Message{Key: []byte(o.ID), Value: b})
				if i%100 == 50 {
					for reason, v := range poison {
						msgs = append(msgs, eventlog.Message{Key: []byte(reason), Value: v})
					}
				}
			}
			wcfg := eventlog.DefaultWriterConfig()
			wcfg.Brokers, wcfg.Topic = bs, tc.Outcomes
			w, err := eventlog.NewWriter(wcfg, deps.Deps{Logger: logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := w.Write(ctx, msgs...); err != nil {
				t.Fatalf("write messages: %v", err)
			}
			w.Close()

			p := startPipeline(t, bs, tc, st, pipelineOpts{group: "e2e-poison-" + suffix(), drain: true})
			waitRows(t, st, good, 2*time.Minute)
			p.stop(t)
			if got := count(t, st, "SELECT count() FROM requests"); got != good {
				t.Errorf("got %d requests, want the %d valid ones", got, good)
			}

			// Read the DLQ: 4 copies of each poison, each with its reason and error.
			rcfg := eventlog.DefaultReaderConfig()
			rcfg.Brokers, rcfg.Topic, rcfg.GroupID = bs, tc.DLQ, "e2e-dlq-"+suffix()
			r, err := eventlog.NewReader(rcfg, deps.Deps{Logger: logger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// The dead-letter topic is at-least-once (a batch re-delivered
			// after a rebalance dead-letters again), so count distinct
			// source offsets until every poison copy has arrived.
			byReason := map[string]int{}
			seen := map[string]bool{}
			dups := 0
			complete := func() bool {
				for reason := range poison {
					if byReason[reason] < 4 {
						return false
					}
				}
				return true
			}
			for !complete() {
				m, err := r.Fetch(ctx)
				if err != nil {
					t.Fatalf("after %d distinct dead letters: %v", len(seen), err)
				}
				h := map[string]string{}
				for _, x := range m.Headers {
					h[x.Key] = string(x.Value)
				}
				reason := h["loopgate.error_reason"]
				if string(m.Key) != reason {
					t.Errorf("dead letter with key %q: got reason %q (error %q)", m.Key, reason, h["loopgate.error"])
				}
				if h["loopgate.error"] == "" || h["loopgate.source_topic"] != tc.Outcomes {
					t.Errorf("dead letter %d: headers %v lack the error or the source", len(seen), h)
				}
				if !bytes.Equal(m.Value, poison[reason]) {
					t.Errorf("dead letter %d (%s): value changed", len(seen), reason)
				}
				src := h["loopgate.source_partition"] + "/" + h["loopgate.source_offset"]
				if seen[src] {
					dups++
					continue
				}
				seen[src] = true
				byReason[reason]++
			}
			if dups > 0 {
				t.Logf("%d dead letters delivered twice (at-least-once)", dups)
			}
			// Only the DLQ's own at-least-once is tolerated: the writer
			// put each poison in the outcomes topic four times.
			for reason := range poison {
				if byReason[reason] != 4 {
					t.Errorf("reason %s: got %d distinct dead letters, want 4", reason, byReason[reason])
				}
			}
		})
	}
}
