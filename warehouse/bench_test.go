package warehouse

import (
	"context"
	"testing"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
)

// benchBatch is the batch size of the ingest path (ingest.Config.BatchRows).
const benchBatch = 10000

// benchOutcomes returns batch number i: fresh ids for every i, and times
// that move on from batch to batch as live traffic does (10 ms apart), so
// each batch's existence check covers its own time range.
func benchOutcomes(i int) []event.Outcome {
	outs := outcomes(uint64(i)+1000, 0, benchBatch)
	shift := int64(i) * benchBatch * 10
	for k := range outs {
		o := &outs[k]
		o.StartMs += shift
		o.EndMs += shift
		for a := range o.Attempts {
			o.Attempts[a].StartMs += shift
		}
	}
	return outs
}

// reportRows reports outcomes/s and rows/s (requests + attempts rows).
func reportRows(b *testing.B, batches int) {
	sec := b.Elapsed().Seconds()
	rows := float64(batches) * float64(benchBatch+eventtest.TotalAttempts(benchBatch))
	b.ReportMetric(float64(batches*benchBatch)/sec, "outcomes/s")
	b.ReportMetric(rows/sec, "rows/s")
}

// BenchmarkWriteOutcomes measures the ingest path: existence checks, then
// inserts, for batches of new outcomes ("new") and for a batch replayed in
// full ("replay": checks only, nothing inserted).
func BenchmarkWriteOutcomes(b *testing.B) {
	for _, tb := range testBackends[:2] {
		b.Run(tb.name, func(b *testing.B) {
			ctx := context.Background()
			s := newStore(b, tb)
			next := 0 // the next fresh batch, across runs of "new"
			b.Run("new", func(b *testing.B) {
				skipped := s.m.dupsSkipped.WithLabelValues("requests", "warehouse")
				before := counterValue(b, skipped)
				n := 0
				for b.Loop() {
					b.StopTimer()
					outs := benchOutcomes(next)
					next++
					n++
					b.StartTimer()
					if err := s.WriteOutcomes(ctx, "bench", outs); err != nil {
						b.Fatal(err)
					}
				}
				if d := counterValue(b, skipped) - before; d != 0 {
					b.Fatalf("got %v rows skipped as duplicates, want 0 for fresh batches", d)
				}
				reportRows(b, n)
			})
			b.Run("replay", func(b *testing.B) {
				outs := benchOutcomes(0) // written by "new"
				if err := s.WriteOutcomes(ctx, "bench", outs); err != nil {
					b.Fatal(err)
				}
				n := 0
				for b.Loop() {
					if err := s.WriteOutcomes(ctx, "bench", outs); err != nil {
						b.Fatal(err)
					}
					n++
				}
				reportRows(b, n)
			})
		})
	}
}

// BenchmarkRawInsert inserts the same rows as BenchmarkWriteOutcomes/new
// without the existence checks: the difference is the price of the
// exactly-once check.
func BenchmarkRawInsert(b *testing.B) {
	for _, tb := range testBackends[:2] {
		b.Run(tb.name, func(b *testing.B) {
			s := newStore(b, tb)
			benchRawInsert(b, s)
		})
	}
}

// BenchmarkEmbeddedInsertMethod compares the two ways of handing rows to
// chDB: inline TabSeparated in the statement, or a RowBinary temp file
// read through file().
func BenchmarkEmbeddedInsertMethod(b *testing.B) {
	for _, m := range []struct {
		name   string
		method insertMethod
	}{{"inline_tsv", insertInlineTSV}, {"file_rowbinary", insertFileRowBinary}} {
		b.Run(m.name, func(b *testing.B) {
			s := newStore(b, testBackends[1])
			s.b.(*embeddedBackend).method = m.method
			benchRawInsert(b, s)
		})
	}
}

func benchRawInsert(b *testing.B, s *Store) {
	ctx := context.Background()
	n := 0
	for b.Loop() {
		b.StopTimer()
		batch, err := s.uniqueOutcomes(benchOutcomes(n))
		if err != nil {
			b.Fatal(err)
		}
		n++ // a fresh store per benchmark run, so batch n is new
		var refs []attemptRef
		for _, o := range batch {
			for i := range o.Attempts {
				refs = append(refs, attemptRef{o, i})
			}
		}
		b.StartTimer()
		if err := s.insert(ctx, requestsBlock(batch), s.dedupToken("raw", "requests", n, 0)); err != nil {
			b.Fatal(err)
		}
		if err := s.insert(ctx, attemptsBlock(refs), s.dedupToken("raw", "attempts", n, 0)); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, n)
}
