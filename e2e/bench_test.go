package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/internal/metrictest"
)

// BenchmarkEventPath measures the whole path — publish → Kafka → ingest →
// ClickHouse — on each broker × backend, with ingest running while the
// events are published, and reports events/s from the first Publish to the
// last row visible. In the same run it measures the raw insert rate of the
// same backend: the same outcomes written straight to the warehouse in
// 10,000-row batches (WriteOutcomes, with its exactly-once check), so the
// path's cost is read as a ratio against it. writer_busy is the share of
// the path's time the ingester spent in warehouse writes: near 1, the
// writes (the warehouse, or the CPU it shares) are the bottleneck; well
// below, fetching, decoding or publishing are.
//
//	make bench   (or: go test -run '^$' -bench EventPath -benchtime 1x ./e2e)
func BenchmarkEventPath(b *testing.B) {
	const n = 100000
	for _, br := range brokers {
		for _, be := range backends {
			b.Run(br.name+"/"+be.name, func(b *testing.B) {
				var pathSecs, rawSecs, writeSecs float64
				ext := map[string]string{}
				if br.name == "kafka" {
					ext["kafka"] = os.Getenv("LOOPGATE_TEST_KAFKA_PIDFILE")
				}
				if be.name == "server" {
					ext["clickhouse"] = os.Getenv("LOOPGATE_TEST_CLICKHOUSE_PIDFILE")
				}
				cpu := newCPUMeter(ext)
				var pathFrom, pathTo, rawFrom, rawTo map[string]time.Duration
				for i := 0; i < b.N; i++ {
					bs := br.brokers(b)
					st := openStore(b, be.config(b))
					tc := topics(b, bs)
					reg := prometheus.NewRegistry()
					p := startPipeline(b, bs, tc, st, pipelineOpts{group: "bench-" + suffix(), drain: true, registry: reg})
					start := time.Now()
					pathFrom = cpu.sample()
					publish(b, bs, tc.Outcomes, 0, n)
					waitRows(b, st, n, 5*time.Minute)
					pathSecs += time.Since(start).Seconds()
					pathTo = cpu.sample()
					p.stop(b)
					writeSecs += metrictest.Value(b, reg, "loopgate_ingest_batch_write_seconds")

					// The same store (the embedded engine is one per process),
					// with other ids: seed 2 instead of the publisher's 1.
					outs := make([]event.Outcome, 0, 10000)
					start = time.Now()
					rawFrom = cpu.sample()
					for j := 0; j < n; j++ {
						outs = append(outs, eventtest.Outcome(2, j))
						if len(outs) == cap(outs) {
							if err := st.WriteOutcomes(context.Background(), "", outs); err != nil {
								b.Fatal(err)
							}
							outs = outs[:0]
						}
					}
					rawSecs += time.Since(start).Seconds()
					rawTo = cpu.sample()
				}
				// The last run's CPU (b.N is 1 in make bench).
				cpu.report(b, "path_", pathFrom, pathTo, n)
				cpu.report(b, "raw_", rawFrom, rawTo, n)
				b.ReportMetric(float64(n*b.N)/pathSecs, "path_events/s")
				b.ReportMetric(float64(n*b.N)/rawSecs, "raw_insert_events/s")
				b.ReportMetric(rawSecs/pathSecs, "path/raw")
				b.ReportMetric(writeSecs/pathSecs, "writer_busy")
			})
		}
	}
}
