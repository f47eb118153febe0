package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
)

// Publisher sends events to one Kafka topic without ever making the caller
// wait for the network. See the package documentation for the ordering and
// durability guarantees.
//
// All events form one FIFO, oldest first:
//
//	head   records taken out of mem: the batch in flight, or one that failed
//	mem    the in-memory queue
//	spill  the segments on disk
//
// Publish appends to mem while the spill is empty, Kafka was reachable on
// the last attempt and mem has room; otherwise to the spill. The sender
// always sends from the front: head, else mem, else the oldest spill
// segment. When a batch from memory fails, head and mem are written to the
// spill as a segment that sorts before every other, so the FIFO order
// survives the move. That order per key is what Kafka sees, because every
// key maps to one partition and a partition gets one produce request at a
// time.
type Publisher struct {
	cfg    PublisherConfig
	logger *slog.Logger
	now    func() time.Time
	prod   *producer
	m      publisherMetrics

	notify  chan struct{} // cap 1: there may be work for the sender
	closing chan struct{} // closed by Close
	runDone chan struct{} // closed when Run returns

	// Sender state. Only the goroutine that sends (Run, or Close once Run
	// has returned) touches these.
	isolate int // send this many more batches one record at a time (after a poison error)

	mu        sync.Mutex
	closed    bool
	running   bool
	stopRun   context.CancelFunc
	head      []record
	headBytes int64
	mem       []record // mem[memHead:] are queued
	memHead   int
	memBytes  int64
	outage    bool // the last attempt to reach Kafka failed
	sp        *spill
	dropRun   int64 // events dropped since the spill last accepted one (for logging)
	st        PublisherStats
}

// PublisherStats is a snapshot of a Publisher's queues and counters.
type PublisherStats struct {
	QueuedEvents int   // events in memory, including a batch in flight
	QueuedBytes  int64 // their size as counted against MaxQueuedBytes
	SpillEvents  int64 // events in the spill not yet acknowledged by Kafka
	SpillBytes   int64 // their size on disk; 0 when the spill is empty
	Published    int64 // events acknowledged by Kafka
	Spilled      int64 // events written to the spill
	Replayed     int64 // events acknowledged by Kafka that were sent from the spill
	Dropped      int64 // events lost: the spill was full or failing
	Rejected     int64 // events the broker refused for good (e.g. too large for the topic)
}

type publisherMetrics struct {
	published, spilled, replayed, dropped, rejected, writeErrors, corrupt prometheus.Counter
}

// NewPublisher opens the spill in cfg.SpillDir (replaying what a previous run
// left there before any new event) and registers the metrics on reg. A nil
// logger discards logs; a nil reg registers nothing. Call Run to start
// sending and Close to stop.
func NewPublisher(cfg PublisherConfig, d deps.Deps) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger, reg, now := d.Log().With(logKeyTopic, cfg.Topic), d.Registerer, d.Now
	compression, _ := parseCompression(cfg.Compression)
	sec, err := cfg.Security.resolve()
	if err != nil {
		return nil, fmt.Errorf("publisher for %s: %w", cfg.Topic, err)
	}
	sp, err := openSpill(cfg.SpillDir, spillOptions{
		maxBytes:     cfg.MaxSpillBytes,
		segmentBytes: cfg.SpillSegmentBytes,
		maxPayload:   maxSpillPayload,
	}, logger)
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		cfg:     cfg,
		logger:  logger,
		now:     now,
		prod:    newProducer(cfg.Brokers, cfg.Topic, compression, cfg.WriteTimeout, now, sec),
		notify:  make(chan struct{}, 1),
		closing: make(chan struct{}),
		runDone: make(chan struct{}),
		sp:      sp,
	}
	if err := p.registerMetrics(reg); err != nil {
		sp.close()
		return nil, err
	}
	p.m.corrupt.Add(float64(sp.corruptBytes))
	if !sp.empty() {
		logger.Info("replaying spill left by a previous run",
			logKeyDir, cfg.SpillDir, logKeyEvents, sp.pendRecords, logKeyBytes, sp.pendBytes)
	}
	return p, nil
}

func (p *Publisher) registerMetrics(reg prometheus.Registerer) error {
	labels := prometheus.Labels{"topic": p.cfg.Topic}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "loopgate", Subsystem: "eventlog_publisher", Name: name, Help: help, ConstLabels: labels,
		})
	}
	gauge := func(name, help string, f func(PublisherStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "loopgate", Subsystem: "eventlog_publisher", Name: name, Help: help, ConstLabels: labels,
		}, func() float64 { return f(p.Stats()) })
	}
	p.m = publisherMetrics{
		published:   counter("published_total", "Events acknowledged by Kafka."),
		spilled:     counter("spilled_total", "Events written to the local spill."),
		replayed:    counter("replayed_total", "Events acknowledged by Kafka that were sent from the spill."),
		dropped:     counter("dropped_total", "Events lost because the spill was full or failing."),
		rejected:    counter("rejected_total", "Events the broker refused for good (too large, invalid)."),
		writeErrors: counter("write_errors_total", "Batches that Kafka did not fully acknowledge."),
		corrupt:     counter("spill_corrupt_bytes_total", "Bytes of torn or damaged spill data cut off when opening the spill."),
	}
	return register(reg,
		p.m.published, p.m.spilled, p.m.replayed, p.m.dropped, p.m.rejected, p.m.writeErrors, p.m.corrupt,
		gauge("queue_depth", "Events held in memory, including a batch in flight.", func(s PublisherStats) float64 { return float64(s.QueuedEvents) }),
		gauge("queue_bytes", "Bytes of events held in memory.", func(s PublisherStats) float64 { return float64(s.QueuedBytes) }),
		gauge("spill_events", "Events in the spill not yet acknowledged by Kafka.", func(s PublisherStats) float64 { return float64(s.SpillEvents) }),
		gauge("spill_bytes", "Bytes of the spill not yet acknowledged by Kafka.", func(s PublisherStats) float64 { return float64(s.SpillBytes) }),
	)
}

// register registers every collector on reg, or none.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// Stats returns a snapshot of the queues and counters. After Close it still
// describes what is left in the spill.
func (p *Publisher) Stats() PublisherStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.st
	s.QueuedEvents = len(p.head) + len(p.mem) - p.memHead
	s.QueuedBytes = p.headBytes + p.memBytes
	s.SpillEvents = p.sp.pendRecords
	s.SpillBytes = p.sp.pendBytes
	return s
}

// Publish queues one event for the topic, keyed by key (events with the
// same key keep their order; a nil or empty key spreads events over the
// partitions with no order). It copies key and value, never waits for the
// network, and may write to the spill on local disk. It returns ErrClosed
// after Close, an error wrapping ErrTooLarge for an event over
// MaxMessageBytes, and an error wrapping ErrDropped when the event could not
// be kept at all (already counted and logged). Safe for concurrent use;
// concurrent calls are ordered as they take the Publisher's lock.
func (p *Publisher) Publish(key, value []byte) error {
	n := len(key) + len(value)
	if n > p.cfg.MaxMessageBytes {
		return fmt.Errorf("publish %d-byte event (limit %d): %w", n, p.cfg.MaxMessageBytes, ErrTooLarge)
	}
	// Copy before taking the lock; in the spill path the copy is wasted, but
	// that path writes to disk anyway.
	buf := make([]byte, n)
	copy(buf, key)
	copy(buf[len(key):], value)
	r := record{timeMs: p.now().UnixMilli(), value: buf[len(key):]}
	if len(key) > 0 {
		r.key = buf[:len(key):len(key)]
	}
	size := r.memSize()

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !p.cfg.Durable && !p.outage && p.sp.empty() && p.headBytes+p.memBytes+size <= p.cfg.MaxQueuedBytes {
		p.mem = append(p.mem, r)
		p.memBytes += size
		if p.dropRun > 0 {
			p.endDropRun()
		}
		// Wake the sender when there is something to start lingering on,
		// and again when a batch is full.
		if q := len(p.mem) - p.memHead; q == 1 || q == p.cfg.BatchSize ||
			(p.memBytes >= p.cfg.BatchBytes && p.memBytes-size < p.cfg.BatchBytes) {
			p.wake()
		}
		return nil
	}
	if err := p.sp.append(&r); err != nil {
		p.dropLocked(1, err)
		return fmt.Errorf("publish: %w: %w", ErrDropped, err)
	}
	p.st.Spilled++
	p.m.spilled.Inc()
	if p.dropRun > 0 {
		p.endDropRun()
	}
	p.wake()
	return nil
}

func (p *Publisher) endDropRun() {
	p.logger.Warn("accepting events again after dropping some", logKeyDropped, p.dropRun)
	p.dropRun = 0
}

func (p *Publisher) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// dropLocked counts n lost events. It logs the first drop of a run of drops
// and the end of the run (endDropRun), not every event.
func (p *Publisher) dropLocked(n int64, err error) {
	p.st.Dropped += n
	p.m.dropped.Add(float64(n))
	if p.dropRun == 0 {
		p.logger.Error("dropping events: spill full or failing", logKeyDir, p.cfg.SpillDir, logKeyEvents, n, logKeyErr, err)
	}
	p.dropRun += n
}

// Run sends events until ctx is canceled or Close is called, and returns
// nil then (at once if Close came first). It returns an error if Run is
// already running. Events still queued when Run returns stay queued: Close
// sends or spills them.
func (p *Publisher) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if p.running {
		p.mu.Unlock()
		return errors.New("run publisher: already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.running, p.stopRun = true, cancel
	p.mu.Unlock()
	defer close(p.runDone)

	var backoff time.Duration
	for {
		b, ok := p.next(ctx)
		if !ok {
			return nil
		}
		if p.send(ctx, b) {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, p.cfg.RetryBackoff), p.cfg.MaxRetryBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-p.closing:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// batch is a run of records from the front of the FIFO.
type batch struct {
	recs      []record
	bytes     int64 // memSize sum
	fromSpill bool
	seq       uint64 // spill segment of the records
	end       int64  // offset after the last record in that segment
}

// next waits for the next batch: head, else mem once full or lingered, else
// the spill. It returns false when ctx is done or Close was called.
func (p *Publisher) next(ctx context.Context) (batch, bool) {
	var lingerUntil time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		b, ok, wait := p.take(lingerUntil)
		if ok {
			return b, true
		}
		var timeout <-chan time.Time
		if wait > 0 {
			if lingerUntil.IsZero() {
				lingerUntil = p.now().Add(wait)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(lingerUntil.Sub(p.now()))
			}
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
			return batch{}, false
		case <-p.closing:
			return batch{}, false
		case <-p.notify:
		case <-timeout:
		}
	}
}

// take takes the next batch if one is ready. lingerUntil is when a partial
// batch in mem is ready (zero: lingering has not started; take reports how
// long to wait in wait). A zero Linger, or Close, makes any batch ready.
func (p *Publisher) take(lingerUntil time.Time) (b batch, ok bool, wait time.Duration) {
	limit := p.cfg.BatchSize
	if p.isolate > 0 {
		limit = 1
	}
	p.mu.Lock()
	if len(p.head) > 0 {
		// Records that failed before go first, all together (they were
		// one batch), or one at a time while isolating a poison record.
		recs := p.head[:min(len(p.head), limit)]
		b = batch{recs: recs, bytes: sumMemSize(recs)}
		p.decIsolate()
		p.mu.Unlock()
		return b, true, 0
	}
	if q := len(p.mem) - p.memHead; q > 0 {
		full := q >= limit || p.memBytes >= p.cfg.BatchBytes
		if !full && !p.closed && p.cfg.Linger > 0 {
			if lingerUntil.IsZero() {
				p.mu.Unlock()
				return batch{}, false, p.cfg.Linger
			}
			if d := lingerUntil.Sub(p.now()); d > 0 {
				p.mu.Unlock()
				return batch{}, false, d
			}
		}
		n, bytes := 0, int64(0)
		for _, r := range p.mem[p.memHead:] {
			if n == limit || (n > 0 && bytes+r.memSize() > p.cfg.BatchBytes) {
				break
			}
			n++
			bytes += r.memSize()
		}
		taken := p.mem[p.memHead : p.memHead+n]
		p.head = append(p.head[:0], taken...)
		clear(taken)
		p.memHead += n
		if p.memHead == len(p.mem) {
			p.mem, p.memHead = p.mem[:0], 0
		} else if p.memHead > 4096 && p.memHead > len(p.mem)/2 {
			// Reclaim the consumed front of the slice.
			k := copy(p.mem, p.mem[p.memHead:])
			clear(p.mem[k:])
			p.mem, p.memHead = p.mem[:k], 0
		}
		p.headBytes, p.memBytes = bytes, p.memBytes-bytes
		b = batch{recs: p.head, bytes: bytes}
		p.decIsolate()
		p.mu.Unlock()
		return b, true, 0
	}
	seq, off, end, ok := p.sp.head()
	p.mu.Unlock()
	if !ok {
		return batch{}, false, 0
	}
	// Only the sender reads the spill or removes segments, so the head
	// segment stays put while we read it without the lock.
	recs, next, err := p.sp.readBatch(seq, off, end, limit, p.cfg.BatchBytes)
	if err != nil {
		if len(recs) == 0 {
			p.skipDamagedSegment(seq, err)
			return p.take(lingerUntil)
		}
		// Send what precedes the damage; the next read hits it at once.
		p.logger.Warn("spill segment damaged, sending the records before the damage", logKeyErr, err)
	}
	b = batch{recs: recs, fromSpill: true, seq: seq, end: next}
	for i := range recs {
		b.bytes += recs[i].memSize()
	}
	p.decIsolate()
	return b, true, 0
}

func (p *Publisher) decIsolate() {
	if p.isolate > 0 {
		p.isolate--
	}
}

// skipDamagedSegment drops the unreadable rest of a spill segment: the
// records there cannot be recovered, and keeping them would block every
// later event.
func (p *Publisher) skipDamagedSegment(seq uint64, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lost, err := p.sp.dropRest(seq)
	p.st.Dropped += lost
	p.m.dropped.Add(float64(lost))
	p.logger.Error("dropping unreadable rest of spill segment", logKeyEvents, lost, logKeyErr, errors.Join(cause, err))
}

// send sends b and settles the outcome. It reports whether the sender may
// go on without backing off.
func (p *Publisher) send(ctx context.Context, b batch) bool {
	errs, err := p.prod.produce(ctx, b.recs)
	if err == nil && errs == nil {
		p.settle(b, nil, 0)
		return true
	}
	if err != nil {
		errs = make([]error, len(b.recs))
		for i := range errs {
			errs[i] = err
		}
	}
	p.m.writeErrors.Inc()
	poisoned := false
	for _, e := range errs {
		if e != nil && isPoison(e) {
			poisoned = true
			break
		}
	}
	rejected := 0
	switch {
	case poisoned && len(b.recs) > 1:
		// Some record is unacceptable; find it by sending these records
		// one at a time, right away. They keep their place in front.
		p.isolate = len(b.recs)
		p.settle(b, errs, 0)
		return true
	case poisoned:
		rejected = 1
		p.logger.Error("broker rejected event for good, dropping it", logKeyBytes, len(b.recs[0].key)+len(b.recs[0].value), logKeyErr, errs[0])
		errs[0] = nil
	}
	failed := 0
	var firstErr error
	for _, e := range errs {
		if e != nil {
			failed++
			if firstErr == nil {
				firstErr = e
			}
		}
	}
	p.settle(b, errs, rejected)
	if failed == 0 {
		return true
	}
	p.enterOutage(failed, firstErr)
	return false
}

// settle records the result of sending b: errs is nil when everything was
// acknowledged, else errs[i] is non-nil for each record still to be sent.
// Records still to be sent keep their place at the front of the FIFO.
func (p *Publisher) settle(b batch, errs []error, rejected int) {
	acked := len(b.recs)
	if errs != nil {
		acked = 0
		for _, e := range errs {
			if e == nil {
				acked++
			}
		}
	}
	published := int64(acked - rejected)

	var failed []record
	if acked < len(b.recs) {
		for i := range b.recs {
			if errs[i] != nil {
				failed = append(failed, b.recs[i])
			}
		}
	}

	if b.fromSpill && acked > 0 && len(failed) > 0 {
		// Part of a spill batch went through. The rest must stay in front of
		// everything else: write it as a new head segment before giving up
		// the old records, so a crash in between sends them twice rather
		// than never.
		if p.prependSpill(failed) {
			failed = nil
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case b.fromSpill && acked == 0:
		// Nothing went through: the records are still where they were.
	case b.fromSpill:
		if err := p.sp.commit(b.seq, b.end, int64(len(b.recs))); err != nil {
			p.logger.Warn("recording spill progress", logKeyErr, err)
		}
		if len(failed) > 0 {
			// Could not write them back to disk: keep them in memory,
			// in front of the spill.
			p.head = append(p.head[:0], failed...)
			p.headBytes = sumMemSize(failed)
		}
		p.st.Replayed += published
		p.m.replayed.Add(float64(published))
	default:
		// b.recs is a prefix of head: what failed of it takes its place.
		rest := p.head[len(b.recs):]
		head := make([]record, 0, len(failed)+len(rest))
		head = append(append(head, failed...), rest...)
		clear(p.head)
		p.head = append(p.head[:0], head...)
		p.headBytes = sumMemSize(p.head)
	}
	p.st.Published += published
	p.m.published.Add(float64(published))
	p.st.Rejected += int64(rejected)
	p.m.rejected.Add(float64(rejected))
	if errs == nil || acked == len(b.recs) {
		if p.outage {
			p.outage = false
			p.logger.Info("kafka reachable again", logKeySpillEvents, p.sp.pendRecords)
		}
	}
}

// enterOutage marks Kafka unreachable, so that new events go to the spill,
// and moves the events held in memory there, in front of what the spill
// already holds.
func (p *Publisher) enterOutage(failed int, err error) {
	p.mu.Lock()
	if !p.outage {
		p.outage = true
		p.logger.Warn("kafka write failed, spilling events until it succeeds", logKeyEvents, failed, logKeyErr, err)
	} else {
		p.logger.Debug("kafka write failed again", logKeyEvents, failed, logKeyErr, err)
	}
	p.mu.Unlock()
	if err := p.spillMemory(false); err != nil {
		p.logger.Warn("moving queued events to the spill, keeping them in memory", logKeyErr, err)
	}
}

// spillMemory moves head and mem to a new segment in front of the spill.
// Unless force, it leaves them in memory when the spill has no room for
// them (they will be sent first once Kafka answers). Publish must not be
// appending to mem meanwhile: the caller has set outage or closed.
func (p *Publisher) spillMemory(force bool) error {
	p.mu.Lock()
	recs := make([]record, 0, len(p.head)+len(p.mem)-p.memHead)
	recs = append(recs, p.head...)
	recs = append(recs, p.mem[p.memHead:]...)
	if len(recs) == 0 {
		p.mu.Unlock()
		return nil
	}
	var disk int64
	for i := range recs {
		disk += int64(frameLen(&recs[i]))
	}
	if !force && !p.sp.headRoom(disk) {
		p.mu.Unlock()
		return fmt.Errorf("spill %d events: %w", len(recs), errSpillFull)
	}
	seq := p.sp.reserveHead()
	p.mu.Unlock()

	seg, err := p.sp.writeHeadSegment(seq, recs)

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("spill %d events: %w", len(recs), err)
	}
	p.sp.insertHead(seg)
	clear(p.head)
	p.head, p.headBytes = p.head[:0], 0
	clear(p.mem)
	p.mem, p.memHead, p.memBytes = p.mem[:0], 0, 0
	p.st.Spilled += int64(len(recs))
	p.m.spilled.Add(float64(len(recs)))
	return nil
}

// prependSpill writes recs as a new head segment of the spill. It reports
// whether it succeeded (a failure is logged).
func (p *Publisher) prependSpill(recs []record) bool {
	p.mu.Lock()
	seq := p.sp.reserveHead()
	p.mu.Unlock()
	seg, err := p.sp.writeHeadSegment(seq, recs)
	if err != nil {
		p.logger.Warn("writing failed events back to the spill, keeping them in memory", logKeyEvents, len(recs), logKeyErr, err)
		return false
	}
	p.mu.Lock()
	p.sp.insertHead(seg)
	p.mu.Unlock()
	return true
}

func sumMemSize(recs []record) int64 {
	var n int64
	for i := range recs {
		n += recs[i].memSize()
	}
	return n
}

// Close stops Run (waiting for a batch in flight, or cutting it short when
// ctx ends), sends everything still queued to Kafka while Kafka answers and
// ctx allows, writes whatever is left in memory to the spill, and syncs and
// closes the spill. Nothing is lost unless the disk fails: then the events
// are counted as dropped and the error wraps ErrDropped. Events left in the
// spill are sent by the next Publisher on the same SpillDir before any new
// event. Publish returns ErrClosed once Close has begun; a second Close
// returns ErrClosed.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	running, stop := p.running, p.stopRun
	p.mu.Unlock()
	close(p.closing)
	if running {
		select {
		case <-p.runDone:
		case <-ctx.Done():
			stop()
			<-p.runDone
		}
	}

	// Send while Kafka answers; the first failure moves memory to the spill.
	for ctx.Err() == nil {
		b, ok, _ := p.take(time.Time{})
		if !ok || !p.send(ctx, b) {
			break
		}
	}

	var errs []error
	if err := p.spillMemory(true); err != nil {
		p.mu.Lock()
		n := int64(len(p.head) + len(p.mem) - p.memHead)
		p.dropLocked(n, err)
		clear(p.head)
		p.head, p.headBytes = nil, 0
		clear(p.mem)
		p.mem, p.memHead, p.memBytes = nil, 0, 0
		p.mu.Unlock()
		errs = append(errs, fmt.Errorf("close publisher: %w: %d events: %w", ErrDropped, n, err))
	}
	p.mu.Lock()
	if err := p.sp.close(); err != nil {
		errs = append(errs, fmt.Errorf("close publisher: %w", err))
	}
	left, leftBytes := p.sp.pendRecords, p.sp.pendBytes
	p.mu.Unlock()
	p.prod.close()
	if left > 0 {
		p.logger.Info("publisher closed with events in the spill", logKeyEvents, left, logKeyBytes, leftBytes)
	}
	return errors.Join(errs...)
}
