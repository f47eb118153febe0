package eventlog_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// TestPublisherRejectsPoisonEvents publishes events too large for the
// topic's max.message.bytes among normal ones: the broker refuses them for
// good, the Publisher isolates and drops them (counted as rejected) instead
// of blocking, and every other event arrives in order.
func TestPublisherRejectsPoisonEvents(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			topic := topics.Outcomes + ".small"
			client := adminClient(t, bs)
			resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
				Topic: topic, NumPartitions: 2, ReplicationFactor: 1,
				ConfigEntries: []kafka.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "2000"}},
			}}})
			if err != nil || resp.Errors[topic] != nil {
				t.Fatalf("create topic: %v %v", err, resp)
			}
			cfg := publisherConfig(t, bs, topic)
			cfg.BatchSize = 10 // batches of normal events stay under the topic limit
			pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			evs := newEvents(5)
			big := bytes.Repeat([]byte("x"), 3000)
			const poison = 3
			for i := range poison {
				evs.publish(t, pub, 40)
				if err := pub.Publish([]byte("poison"), big); err != nil {
					t.Fatalf("publish big event %d: %v", i, err)
				}
			}
			evs.publish(t, pub, 40)
			for _, k := range sentinelKeys(2) {
				if err := pub.Publish([]byte(k), []byte("end")); err != nil {
					t.Fatal(err)
				}
			}
			wait := runPublisher(t, ctx, pub)
			want := int64(evs.n + 2)
			waitFor(t, ctx, "everything but the poison sent", func() bool {
				s := pub.Stats()
				return s.Published == want && s.Rejected == poison
			})
			if err := pub.Close(ctx); err != nil {
				t.Fatal(err)
			}
			wait()
			if s := pub.Stats(); s.SpillEvents != 0 || s.QueuedEvents != 0 || s.Dropped != 0 {
				t.Fatalf("after close: got %+v", s)
			}
			r, err := eventlog.NewReader(readerConfig(bs, topic, "g-"+topic), deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			checkOrder(t, readUntilSentinels(t, ctx, r, 2), evs.next, false)
		})
	}
}
