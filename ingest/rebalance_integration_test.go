package ingest_test

import (
	"context"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

// slowSink is the real warehouse, each write started after a random pause
// of up to max: it widens the time a batch is in hand, as a loaded
// warehouse does, so a rebalance lands during writes often.
type slowSink struct {
	st     *warehouse.Store
	max    time.Duration
	mu     sync.Mutex
	rnd    *mrand.Rand
	handed atomic.Int64 // outcomes handed to the warehouse
}

func (s *slowSink) WriteOutcomes(ctx context.Context, token string, outs []event.Outcome) error {
	s.mu.Lock()
	d := time.Duration(s.rnd.Int64N(int64(s.max)))
	s.mu.Unlock()
	time.Sleep(d)
	s.handed.Add(int64(len(outs)))
	return s.st.WriteOutcomes(ctx, token, outs)
}

// member is one in-process "loopgate ingest": a Reader in the group and an
// Ingester on it.
type member struct {
	cancel context.CancelFunc
	done   chan error
}

func startMember(t *testing.T, brokers []string, topic, group string, sink ingest.Sink, dlq ingest.DeadLetters, drain time.Duration) *member {
	t.Helper()
	rc := eventlog.DefaultReaderConfig()
	rc.Brokers, rc.Topic, rc.GroupID = brokers, topic, group
	rc.SessionTimeout, rc.HeartbeatInterval, rc.RebalanceTimeout = 6*time.Second, 500*time.Millisecond, 15*time.Second
	rc.JoinGroupBackoff, rc.MaxWait = 200*time.Millisecond, 100*time.Millisecond
	rd, err := eventlog.NewReader(rc, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.BatchRows, cfg.BatchWait, cfg.DrainTimeout = 300, 100*time.Millisecond, drain
	cfg.RetryMin, cfg.RetryMax, cfg.DecodeWorkers = 50*time.Millisecond, time.Second, 1
	ing, err := ingest.New(cfg, rd, sink, dlq, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := ing.Run(ctx)
		rd.Close()
		m.done <- err
	}()
	return m
}

func (m *member) stop(t *testing.T) {
	t.Helper()
	m.cancel()
	if err := <-m.done; err != nil {
		t.Errorf("ingest Run: %v", err)
	}
}

// TestIngestRebalanceExactlyOnce runs three ingest members of one group on
// a six-partition topic of the real Apache Kafka while outcomes are
// published, and keeps moving partitions: members leave (with a drain, or
// abruptly with none, as a killed process that drops what it fetched) and
// join again at random. Every outcome must be stored exactly once:
// count() = uniqExact(id) = published. Before partitions were held per
// group generation, an old owner still wrote batches it had fetched for
// partitions that had moved, at the same time as the new owner, and both
// copies landed.
func TestIngestRebalanceExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	brokers := []string{testenv.Kafka(t)}
	for _, be := range lpBackends {
		t.Run(be.name, func(t *testing.T) {
			st := openLPStore(t, be.config(t))
			topic, dlqTopic := "loopgate.outcomes."+suffix(), ""
			tc := eventlog.DefaultTopicsConfig()
			tc.Outcomes, tc.OutcomesPartitions, tc.Policy, tc.DLQ = topic, 6, topic+".unused", topic+".dlq"
			dlqTopic = tc.DLQ
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := eventlog.EnsureTopics(ctx, brokers, tc); err != nil {
				t.Fatal(err)
			}
			w := lpWriter(t, brokers, topic)
			dlq := &countingDLQ{w: lpWriter(t, brokers, dlqTopic)}
			sink := &slowSink{st: st, max: 300 * time.Millisecond, rnd: mrand.New(mrand.NewPCG(1, 2))}
			group := "ingest-" + suffix()

			// Publish 24,000 outcomes over about 12 s.
			const total, per = 24000, 400
			seed := mrand.Uint64()
			pubDone := make(chan struct{})
			go func() {
				defer close(pubDone)
				for lo := 0; lo < total; lo += per {
					msgs := make([]eventlog.Message, 0, per)
					for i := lo; i < lo+per; i++ {
						o := eventtest.Outcome(seed, i)
						b, err := event.EncodeOutcome(o)
						if err != nil {
							t.Error(err)
							return
						}
						msgs = append(msgs, eventlog.Message{Key: []byte(o.ID), Value: b})
					}
					if err := w.Write(ctx, msgs...); err != nil {
						t.Errorf("publish: %v", err)
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()

			// Three slots, each a member that lives 1.5-4 s, stops (half
			// the time without a drain) and rejoins after up to 1 s,
			// until publishing has ended and a few more seconds passed.
			churnUntil := make(chan struct{})
			go func() { <-pubDone; time.Sleep(4 * time.Second); close(churnUntil) }()
			var moves atomic.Int64
			var wg sync.WaitGroup
			for slot := range 3 {
				rnd := mrand.New(mrand.NewPCG(seed, uint64(slot)))
				wg.Go(func() {
					for {
						drain := 5 * time.Second
						if rnd.IntN(2) == 0 {
							drain = 0
						}
						m := startMember(t, brokers, topic, group, sink, dlq, drain)
						select {
						case <-time.After(1500*time.Millisecond + time.Duration(rnd.Int64N(int64(2500*time.Millisecond)))):
						case <-churnUntil:
						}
						m.stop(t)
						moves.Add(1)
						select {
						case <-churnUntil:
							return
						case <-time.After(time.Duration(rnd.Int64N(int64(time.Second)))):
						}
					}
				})
			}
			wg.Wait()
			<-pubDone
			if t.Failed() {
				return
			}

			// Then three steady members finish the topic.
			var steady []*member
			for range 3 {
				steady = append(steady, startMember(t, brokers, topic, group, sink, dlq, 5*time.Second))
			}
			db := st.Database()
			testenv.Eventually(t, 3*time.Minute, "every published outcome stored", func() bool {
				return scalar(t, st, "SELECT toInt64(uniqExact(id)) FROM "+db+".requests") >= total
			})
			for _, m := range steady {
				m.stop(t)
			}
			n := scalar(t, st, "SELECT toInt64(count()) FROM "+db+".requests")
			uniq := scalar(t, st, "SELECT toInt64(uniqExact(id)) FROM "+db+".requests")
			t.Logf("%d member stops; %d outcomes handed to the warehouse for %d published; count() %d, uniqExact(id) %d",
				moves.Load(), sink.handed.Load(), total, n, uniq)
			if n != total || uniq != total {
				rows, err := st.Query(ctx, "SELECT id, count() AS c FROM "+db+".requests GROUP BY id HAVING c > 1 LIMIT 5")
				if err == nil {
					t.Logf("ids stored more than once (first 5): %v", rows.Values)
				}
				t.Errorf("got count() %d, uniqExact(id) %d, want both = %d published", n, uniq, total)
			}
			if got := dlq.n.Load(); got != 0 {
				t.Errorf("dead letters: got %d, want 0 (every outcome is valid)", got)
			}
		})
	}
}
