package ingest

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
)

// The pipeline has three stages, each one goroutine, joined by channels
// that hold at most Config.Pipeline batches between them:
//
//	fetch ──▶ decode (DecodeWorkers in parallel within the batch) ──▶ write + dead-letter + commit
//
// Batches keep their fetch order through every stage, and only the last
// stage commits, one batch at a time after that batch's rows are durable:
// so a commit never moves a partition's offset past a row that is not yet
// written, whatever the stages overlap. There is one writer, so two
// batches are never written at once, and a message re-delivered after a
// rebalance is written after, never beside, its first copy (the Sink's
// "one writer per id range"). Across processes, the Holder's generations
// keep it so (see flush).

// batch is what one flush writes and commits.
type batch struct {
	msgs  []eventlog.Message // every message, in fetch order, to commit
	outs  []event.Outcome    // the valid ones, in fetch order
	dead  []eventlog.Message // the invalid ones, with error headers
	first time.Time          // when the first message arrived
	token string             // Token(msgs)
}

// Run ingests until ctx is cancelled. On cancel it tries, for at most
// DrainTimeout, to write and commit the batches it holds, in order; what
// it cannot is re-delivered to the next run. It returns nil after a
// cancel, or the error that stopped it (a Source failure other than
// cancellation; the batches it held are then dropped uncommitted, to be
// re-delivered).
func (i *Ingester) Run(ctx context.Context) error {
	if gl, ok := i.src.(GroupLagger); ok {
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); i.watchLag(lctx, gl) }()
		defer func() { stop(); <-done }()
	}

	// wctx ends the writer early when fetching fails; a cancel of ctx
	// instead lets it drain.
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	fetched := make(chan *batch, i.cfg.Pipeline-1)
	decoded := make(chan *batch, 1)
	var fetchErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(fetched)
		if err := i.fetch(ctx, fetched); err != nil {
			fetchErr = err
			stopWriter()
		}
	}()
	go func() {
		defer wg.Done()
		defer close(decoded)
		for b := range fetched {
			i.decode(b)
			decoded <- b
		}
	}()
	i.write(ctx, wctx, decoded)
	wg.Wait()
	if fetchErr != nil {
		return fetchErr
	}
	return nil
}

// fetch cuts the Source's messages into batches of BatchRows, or fewer when
// BatchWait has passed since a batch's first message, and sends them to
// out. A batch holds messages of one consumer-group generation: the first
// message of a new generation starts the next batch. On cancel it sends the
// partial batch (for the drain) and returns nil; on a Source failure it
// returns the error.
func (i *Ingester) fetch(ctx context.Context, out chan<- *batch) error {
	f := &feed{src: i.src}
	for {
		b := &batch{msgs: make([]eventlog.Message, 0, min(i.cfg.BatchRows, 1<<16))}
		err := i.collect(ctx, f, b)
		if err == nil {
			err = i.handOff(ctx, f, out, b)
		} else if len(b.msgs) > 0 && ctx.Err() != nil {
			out <- b
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("fetch outcome: %w", err)
		}
	}
}

// feed is the fetch stage's Source with one message of look-ahead: the
// message that ended a batch by starting a new generation is the next
// batch's first.
type feed struct {
	src   Source
	carry *eventlog.Message
}

// next returns the carried message, if any, else the Source's next.
func (f *feed) next(ctx context.Context) (eventlog.Message, error) {
	if m := f.carry; m != nil {
		f.carry = nil
		return *m, nil
	}
	return f.src.Fetch(ctx)
}

// add appends msg to b, or carries it to the next batch and reports false
// when it belongs to another generation than b's.
func (f *feed) add(b *batch, msg eventlog.Message) bool {
	if len(b.msgs) > 0 && msg.Generation != b.msgs[0].Generation {
		f.carry = &msg
		return false
	}
	b.msgs = append(b.msgs, msg)
	return true
}

// collect fills b: it blocks for the first message, then fetches until the
// batch is full, BatchWait after that first message, or a message of a new
// generation. It returns nil when the batch is due.
func (i *Ingester) collect(ctx context.Context, f *feed, b *batch) error {
	msg, err := f.next(ctx)
	if err != nil {
		return err
	}
	b.first = i.now()
	f.add(b, msg)
	// One deadline for the whole batch, not a timer per message.
	fctx, cancel := context.WithTimeout(ctx, i.cfg.BatchWait)
	defer cancel()
	for len(b.msgs) < i.cfg.BatchRows {
		msg, err := f.next(fctx)
		if err != nil {
			if ctx.Err() == nil && fctx.Err() != nil {
				return nil // the batch is due
			}
			return err
		}
		if !f.add(b, msg) {
			return nil // a new generation: the batch is due
		}
	}
	return nil
}

// topUpWait is how long handOff fetches into a due batch before it tries
// the hand-off again.
const topUpWait = 20 * time.Millisecond

// handOff sends the due batch b to out. While out is full — the writer is
// still busy with earlier batches — it keeps fetching into b, up to
// BatchRows or a message of a new generation: waiting costs no latency
// then, and fuller batches make fewer, larger warehouse writes. On cancel
// it sends b (for the drain) and returns nil; on a Source failure it
// returns the error.
func (i *Ingester) handOff(ctx context.Context, f *feed, out chan<- *batch, b *batch) error {
	for len(b.msgs) < i.cfg.BatchRows && f.carry == nil {
		select {
		case out <- b:
			return nil
		default:
		}
		fctx, cancel := context.WithTimeout(ctx, topUpWait)
	topUp:
		for len(b.msgs) < i.cfg.BatchRows {
			msg, err := f.next(fctx)
			switch {
			case err == nil:
				if !f.add(b, msg) {
					break topUp // a new generation: send b as it is
				}
			case ctx.Err() != nil:
				cancel()
				out <- b
				return nil
			case fctx.Err() != nil:
				break topUp // try the hand-off again
			default:
				cancel()
				return err
			}
		}
		cancel()
	}
	out <- b
	return nil
}

// minParallel is the fewest messages per decode worker worth a goroutine.
const minParallel = 256

// decode decodes b's messages into outcomes and dead letters, splitting
// the work over DecodeWorkers goroutines; the result keeps fetch order.
func (i *Ingester) decode(b *batch) {
	b.token = Token(b.msgs)
	n := len(b.msgs)
	outs := make([]event.Outcome, n)
	errs := make([]error, n)
	workers := i.cfg.DecodeWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n/minParallel))
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		run := func() {
			for j := lo; j < hi; j++ {
				outs[j], errs[j] = decodeOutcome(b.msgs[j].Value)
			}
		}
		if hi == n {
			run() // the last chunk on this goroutine
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	b.outs = outs[:0]
	ok := 0
	for j := range n {
		if errs[j] != nil {
			i.reject(b, b.msgs[j], errs[j])
			continue
		}
		b.outs = append(b.outs, outs[j])
		ok++
	}
	i.m.messages.WithLabelValues("ok").Add(float64(ok))
}

// reject turns msg into a dead letter of b.
func (i *Ingester) reject(b *batch, msg eventlog.Message, err error) {
	reason := reasonOf(err)
	i.m.messages.WithLabelValues("dead_letter").Inc()
	i.m.deadLetters.WithLabelValues(reason).Inc()
	i.log.Warn("outcome rejected to dead-letter topic", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "reason", reason, "err", err)
	b.dead = append(b.dead, deadLetter(msg, reason, err))
}

// write flushes the batches from in, in order. While wctx lives each is
// retried until it succeeds. Once ctx is cancelled the rest are flushed
// under one DrainTimeout; after the first that fails there (or once wctx
// ends for another reason) the rest are dropped uncommitted, since a later
// batch's commit would move offsets past the failed one's rows.
func (i *Ingester) write(ctx, wctx context.Context, in <-chan *batch) {
	var dctx context.Context
	failed := false
	for b := range in {
		if failed {
			continue // keep receiving so the other stages can end
		}
		if wctx.Err() == nil {
			err := i.flush(wctx, b)
			if err == nil {
				continue
			}
		}
		if ctx.Err() == nil || i.cfg.DrainTimeout == 0 {
			failed = true // stopped by a fetch failure, or no drain
			continue
		}
		if dctx == nil {
			var cancel context.CancelFunc
			dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), i.cfg.DrainTimeout)
			defer cancel()
		}
		if err := i.flush(dctx, b); err != nil {
			i.log.Warn("final batch not committed; it will be re-delivered", "messages", len(b.msgs), "err", err)
			failed = true
		}
	}
}
