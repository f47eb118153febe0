package eventlog_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// TestPublishReadCommitRestart publishes through a Publisher, reads
// everything back through a consumer group, commits, and checks that a
// restarted reader in the same group gets nothing again — against the
// embedded broker and against Apache Kafka.
func TestPublishReadCommitRestart(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			if err := eventlog.EnsureTopics(ctx, bs, topics); err != nil {
				t.Fatalf("ensure topics a second time: got %v, want nil (idempotent)", err)
			}

			reg := prometheus.NewRegistry()
			cfg := publisherConfig(t, bs, topics.Outcomes)
			cfg.Compression = "snappy"
			pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t), Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			wait := runPublisher(t, ctx, pub)
			evs := newEvents(37)
			const n = 1000
			evs.publish(t, pub, n)
			for _, k := range sentinelKeys(topics.OutcomesPartitions) {
				if err := pub.Publish([]byte(k), []byte("end")); err != nil {
					t.Fatal(err)
				}
			}
			if err := pub.Close(ctx); err != nil {
				t.Fatalf("close publisher: %v", err)
			}
			wait()
			total := n + topics.OutcomesPartitions
			st := pub.Stats()
			if st.Published != int64(total) || st.SpillEvents != 0 || st.QueuedEvents != 0 || st.Dropped != 0 {
				t.Fatalf("after close: got %+v, want %d published and nothing queued, spilled or dropped", st, total)
			}
			if got := counterValue(t, reg, "loopgate_eventlog_publisher_published_total"); got != float64(total) {
				t.Errorf("published_total: got %v, want %d", got, total)
			}
			if err := pub.Publish([]byte("k"), []byte("v")); !errors.Is(err, eventlog.ErrClosed) {
				t.Errorf("publish after close: got %v, want ErrClosed", err)
			}

			group := "g-" + topics.Outcomes
			rreg := prometheus.NewRegistry()
			r, err := eventlog.NewReader(readerConfig(bs, topics.Outcomes, group), deps.Deps{Logger: testLogger(t), Registerer: rreg})
			if err != nil {
				t.Fatal(err)
			}
			got := readUntilSentinels(t, ctx, r, topics.OutcomesPartitions)
			checkOrder(t, got, evs.next, false)
			if lag := r.Lag(); lag != 0 {
				t.Errorf("lag after reading everything: got %d, want 0", lag)
			}
			if got := counterValue(t, rreg, "loopgate_eventlog_reader_fetched_total"); got != float64(total) {
				t.Errorf("fetched_total: got %v, want %d", got, total)
			}
			if got := counterValue(t, rreg, "loopgate_eventlog_reader_committed_total"); got != float64(total) {
				t.Errorf("committed_total: got %v, want %d", got, total)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Fetch(ctx); !errors.Is(err, eventlog.ErrClosed) {
				t.Errorf("fetch after close: got %v, want ErrClosed", err)
			}

			// New sentinels through a synchronous Writer; a restarted
			// member of the group must see only them.
			w, err := eventlog.NewWriter(writerConfig(bs, topics.Outcomes), deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			var sentinels []eventlog.Message
			for _, k := range sentinelKeys(topics.OutcomesPartitions) {
				sentinels = append(sentinels, eventlog.Message{Key: []byte(k), Value: []byte("end-2"),
					Headers: []eventlog.Header{{Key: "why", Value: []byte("restart check")}}})
			}
			if err := w.Write(ctx, sentinels...); err != nil {
				t.Fatalf("write sentinels: %v", err)
			}
			w.Close()
			r2, err := eventlog.NewReader(readerConfig(bs, topics.Outcomes, group), deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			seen := 0
			for seen < topics.OutcomesPartitions {
				m, err := r2.Fetch(ctx)
				if err != nil {
					t.Fatalf("fetch after restart: %v", err)
				}
				if !isSentinel(m) || string(m.Value) != "end-2" {
					t.Fatalf("after restart got %q=%q at %d/%d, want only the new sentinels (committed records redelivered)", m.Key, m.Value, m.Partition, m.Offset)
				}
				if len(m.Headers) != 1 || m.Headers[0].Key != "why" || string(m.Headers[0].Value) != "restart check" {
					t.Errorf("sentinel headers: got %+v", m.Headers)
				}
				if err := r2.Commit(ctx, m); err != nil {
					t.Fatal(err)
				}
				seen++
			}
		})
	}
}

func writerConfig(brokers []string, topic string) eventlog.WriterConfig {
	cfg := eventlog.DefaultWriterConfig()
	cfg.Brokers = brokers
	cfg.Topic = topic
	cfg.WriteTimeout = 3 * time.Second
	cfg.RetryBackoff = 20 * time.Millisecond
	return cfg
}

// TestTopics checks EnsureTopics' partition counts and the compacted policy
// topic on both brokers.
func TestTopics(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			client := adminClient(t, bs)
			md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topics.Outcomes, topics.Policy, topics.DLQ}})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{topics.Outcomes: topics.OutcomesPartitions, topics.Policy: 1, topics.DLQ: 1}
			for _, tp := range md.Topics {
				if tp.Error != nil {
					t.Errorf("topic %s: %v", tp.Name, tp.Error)
				}
				if len(tp.Partitions) != want[tp.Name] {
					t.Errorf("topic %s: got %d partitions, want %d", tp.Name, len(tp.Partitions), want[tp.Name])
				}
				delete(want, tp.Name)
			}
			if len(want) > 0 {
				t.Errorf("topics missing: %v", want)
			}
			resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: topics.Policy, ConfigNames: []string{"cleanup.policy"},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			var policy string
			for _, res := range resp.Resources {
				for _, e := range res.ConfigEntries {
					if e.ConfigName == "cleanup.policy" {
						policy = e.ConfigValue
					}
				}
			}
			if policy != "compact" {
				t.Errorf("policy topic cleanup.policy: got %q, want compact", policy)
			}
		})
	}
}

// TestWriterPolicyTopic writes policies with a synchronous Writer and reads
// them back in order.
func TestWriterPolicyTopic(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			w, err := eventlog.NewWriter(writerConfig(bs, topics.Policy), deps.Deps{Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			const n = 20
			for i := range n {
				if err := w.Write(ctx, eventlog.Message{Key: []byte("policy"), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
					t.Fatalf("write policy %d: %v", i, err)
				}
			}
			if err := w.Write(ctx, eventlog.Message{Topic: "other", Value: []byte("x")}); err == nil {
				t.Error("write to another topic: got nil, want an error")
			}
			r, err := eventlog.NewReader(readerConfig(bs, topics.Policy, "g-"+topics.Policy), deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for i := range n {
				m, err := r.Fetch(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("v%d", i); string(m.Value) != want || m.Topic != topics.Policy {
					t.Fatalf("policy %d: got %s %q, want %s %q", i, m.Topic, m.Value, topics.Policy, want)
				}
			}
		})
	}
}
