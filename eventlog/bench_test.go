package eventlog_test

import (
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/eventlog"
)

// BenchmarkPublish measures the caller's cost of Publish (it never waits for
// Kafka) with real encoded outcomes, against the embedded broker.
//
//	kept-up     the timer stops every 5000 events until the sender has caught
//	            up: the in-memory path, as in normal operation
//	overload    a tight loop that outruns the sender: the memory queue fills
//	            and events overflow to the spill on disk
//
// spilled/op shows how many events took the disk path; sent/op how many
// Kafka had acknowledged when the timed loop ended.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
		keptUp   bool
	}{{"kept-up", false, true}, {"overload", false, false}, {"overload-parallel", true, false}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := testCtx(b, 5*time.Minute)
			topics := uniqueTopics(b)
			e := startEmbedded(b, "", 0, topics)
			cfg := publisherConfig(b, e.Brokers(), topics.Outcomes)
			cfg.Linger = 5 * time.Millisecond
			pub, err := eventlog.NewPublisher(cfg, deps.Deps{})
			if err != nil {
				b.Fatal(err)
			}
			wait := runPublisher(b, ctx, pub)
			const n = 1024
			keys, values := make([][]byte, n), make([][]byte, n)
			for i := range n {
				o := eventtest.Outcome(1, i)
				v, err := event.EncodeOutcome(o)
				if err != nil {
					b.Fatal(err)
				}
				keys[i], values[i] = []byte(o.ID), v
			}
			b.SetBytes(int64(len(keys[0]) + len(values[0])))
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if err := pub.Publish(keys[i%n], values[i%n]); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			} else {
				for i := 0; b.Loop(); i++ {
					if err := pub.Publish(keys[i%n], values[i%n]); err != nil {
						b.Fatal(err)
					}
					if bc.keptUp && i%5000 == 4999 {
						b.StopTimer()
						waitFor(b, ctx, "sender caught up", func() bool {
							s := pub.Stats()
							return s.QueuedEvents == 0 && s.SpillEvents == 0
						})
						b.StartTimer()
					}
				}
			}
			b.StopTimer()
			s := pub.Stats()
			if err := pub.Close(ctx); err != nil {
				b.Fatal(err)
			}
			wait()
			b.ReportMetric(float64(s.Spilled)/float64(b.N), "spilled/op")
			b.ReportMetric(float64(s.Published)/float64(b.N), "sent/op")
		})
	}
}
