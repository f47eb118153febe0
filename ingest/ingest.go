package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
)

// Source is the consumer group the Ingester reads from.
type Source interface {
	// Fetch returns the next message, blocking until one arrives or ctx ends.
	Fetch(ctx context.Context) (eventlog.Message, error)
	// Commit marks the messages as processed.
	Commit(ctx context.Context, msgs ...eventlog.Message) error
}

// Sink stores outcomes. WriteOutcomes returns nil only when the outcomes are
// durable, and writing outcomes that are already stored adds no rows. The
// token identifies the batch deterministically (same messages, same token).
type Sink interface {
	WriteOutcomes(ctx context.Context, token string, outs []event.Outcome) error
}

// GroupLagger is a Source that can ask the brokers for its consumer
// group's lag: the partition ends minus the committed offsets
// (eventlog.Reader.GroupLag). When the Source has it, Run refreshes the lag
// gauge from it every LagInterval, fetching or not.
type GroupLagger interface {
	GroupLag(ctx context.Context) (int64, error)
}

// Holder is a Source whose partitions can move to another consumer while
// their messages are in hand (eventlog.Reader, whose group generations
// they are). Hold keeps this consumer the only one writing msgs' rows
// until release: the returned context ends when the partitions are wanted
// elsewhere, and Hold returns eventlog.ErrRevoked once they are gone. The
// Ingester writes and commits each batch inside a Hold, and drops a
// revoked batch uncommitted for the new owner to read again, so two
// consumers never write the same rows at once (the Sink's "one writer per
// id range" holds across rebalances). That needs each write to finish
// within the Source's rebalance timeout (eventlog.ReaderConfig's
// RebalanceTimeout, 30 s by default): a member that holds longer is
// dropped from the group and its partitions are given away anyway.
type Holder interface {
	Hold(ctx context.Context, msgs []eventlog.Message) (context.Context, func(), error)
}

var _ Holder = (*eventlog.Reader)(nil)

// DeadLetters receives messages that cannot be ingested. Write returns nil
// only when the messages are acknowledged.
type DeadLetters interface {
	Write(ctx context.Context, msgs ...eventlog.Message) error
}

// Config tunes an Ingester.
type Config struct {
	// BatchRows flushes a batch when it holds this many messages. Default 10,000.
	BatchRows int
	// BatchWait flushes a non-empty batch this long after its first message. Default 1s.
	BatchWait time.Duration
	// RetryMin is the first backoff after a failed write. Default 100ms.
	RetryMin time.Duration
	// RetryMax caps the backoff between retries. Default 10s.
	RetryMax time.Duration
	// DrainTimeout bounds the final flush when Run's context is cancelled. Default 10s.
	DrainTimeout time.Duration
	// WriteTimeout bounds one sink write. A write is never cut short by
	// Run's cancellation: an insert abandoned half way may still land in
	// ClickHouse after the abandoning, racing the retry's check for rows
	// already stored. Default 2m.
	WriteTimeout time.Duration
	// DLQTopic is written into dead letters' headers for reference. Default "loopgate.outcomes.dlq".
	DLQTopic string
	// LagInterval is how often Run asks a GroupLagger Source for the
	// group's lag, independently of fetching and writing, so
	// loopgate_ingest_consumer_lag keeps moving while the warehouse is down.
	// Default 5s.
	LagInterval time.Duration
	// DecodeWorkers is how many goroutines decode one batch's messages in
	// parallel; 0 means one per CPU (runtime.GOMAXPROCS). Default 0.
	DecodeWorkers int
	// Pipeline is how many batches may wait, fetched and decoded, behind the
	// one being written: while batch k is written and committed, batch k+1
	// is decoded and batch k+2 fetched. Memory is bounded by about
	// (Pipeline+2)×BatchRows messages. Commits stay in batch order and each
	// follows its own batch's durable write. Default 2.
	Pipeline int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		BatchRows:    10000,
		BatchWait:    time.Second,
		RetryMin:     100 * time.Millisecond,
		RetryMax:     10 * time.Second,
		DrainTimeout: 10 * time.Second,
		WriteTimeout: 2 * time.Minute,
		DLQTopic:     "loopgate.outcomes.dlq",
		LagInterval:  5 * time.Second,
		Pipeline:     2,
	}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BatchRows <= 0:
		return fmt.Errorf("ingest: batch rows %d must be positive", c.BatchRows)
	case c.BatchWait <= 0:
		return fmt.Errorf("ingest: batch wait %v must be positive", c.BatchWait)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("ingest: retry backoff %v..%v is not a range", c.RetryMin, c.RetryMax)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("ingest: write timeout %v must be positive", c.WriteTimeout)
	case c.DrainTimeout < 0:
		return fmt.Errorf("ingest: drain timeout %v is negative", c.DrainTimeout)
	case c.LagInterval <= 0:
		return fmt.Errorf("ingest: lag interval %v must be positive", c.LagInterval)
	case c.DecodeWorkers < 0:
		return fmt.Errorf("ingest: decode workers %d is negative", c.DecodeWorkers)
	case c.Pipeline <= 0:
		return fmt.Errorf("ingest: pipeline depth %d must be positive", c.Pipeline)
	}
	return nil
}

// Ingester is the consumer → warehouse pipeline. Create it with New and
// start it with Run; it is not safe to Run twice at once.
type Ingester struct {
	cfg   Config
	src   Source
	sink  Sink
	dlq   DeadLetters
	log   *slog.Logger
	m     *metrics
	sleep func(ctx context.Context, d time.Duration) error
	lagFn func() int64
	now   func() time.Time
}

// Option customises an Ingester beyond its Config.
type Option func(*Ingester)

// WithLag reports consumer lag through fn after every commit (for example
// eventlog.Reader.Lag). It is not used when the Source is a GroupLagger,
// whose answer is the group's real lag.
func WithLag(fn func() int64) Option { return func(i *Ingester) { i.lagFn = fn } }

// WithSleep replaces the backoff sleep, for tests that must not wait.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(i *Ingester) { i.sleep = sleep }
}

// New returns an Ingester reading src and writing to sink and dlq.
func New(cfg Config, src Source, sink Sink, dlq DeadLetters, d deps.Deps, opts ...Option) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || sink == nil || dlq == nil {
		return nil, errors.New("ingest: source, sink and dead-letter writer are required")
	}
	logger := d.Log()
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	ing := &Ingester{cfg: cfg, src: src, sink: sink, dlq: dlq, log: logger, m: m, sleep: sleepCtx, now: d.Now}
	for _, o := range opts {
		o(ing)
	}
	return ing, nil
}

// flush writes, dead-letters and commits b, retrying each step until it
// succeeds or ctx ends. Commit comes last: a crash before it re-delivers.
// A batch whose partitions moved to another consumer before it was
// committed is dropped (counted, logged) and flush returns nil.
func (i *Ingester) flush(ctx context.Context, b *batch) error {
	revoked, err := owned(ctx, i.src, b.msgs, func(ctx context.Context) error { return i.store(ctx, b) })
	if revoked {
		i.m.revoked.Add(float64(len(b.msgs)))
		i.log.Info("batch dropped: its partitions moved to another consumer, which reads it again", "messages", len(b.msgs), "err", err)
		return nil
	}
	return err
}

// store writes, dead-letters and commits b.
func (i *Ingester) store(ctx context.Context, b *batch) error {
	if len(b.outs) > 0 {
		token := b.token
		err := i.retry(ctx, "write batch", func(ctx context.Context) error {
			start := i.now()
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), i.cfg.WriteTimeout)
			defer cancel()
			if err := i.sink.WriteOutcomes(wctx, token, b.outs); err != nil {
				i.m.writeErrors.Inc()
				return err
			}
			i.m.writeSeconds.Observe(i.now().Sub(start).Seconds())
			return nil
		})
		if err != nil {
			return err
		}
		i.m.rows.Add(float64(len(b.outs)))
		i.m.batchSize.Observe(float64(len(b.outs)))
	}
	if len(b.dead) > 0 {
		if err := i.retry(ctx, "write dead letters", func(ctx context.Context) error { return i.dlq.Write(ctx, b.dead...) }); err != nil {
			return err
		}
	}
	if err := i.retry(ctx, "commit offsets", func(ctx context.Context) error { return i.src.Commit(ctx, b.msgs...) }); err != nil {
		return err
	}
	i.m.lastCommit.Set(float64(i.now().UnixMilli()) / 1000)
	if _, ok := i.src.(GroupLagger); !ok && i.lagFn != nil {
		i.m.lag.Set(float64(i.lagFn()))
	}
	return nil
}

// owned runs handle (which writes and commits msgs) inside a Hold of msgs
// when src is a Holder, with the Hold's context, and reports revoked when
// msgs' partitions moved to another consumer first: Hold refused them, a
// commit was refused, or the Hold's context ended (the group wants the
// partitions back) while ctx did not. Then the remaining steps were not
// done; nothing is committed, and the new owner reads msgs again. A write
// already sent when the Hold's context ends is waited for (it runs without
// that cancellation), so the Hold is released only once nothing more of
// msgs can land.
func owned(ctx context.Context, src Source, msgs []eventlog.Message, handle func(context.Context) error) (revoked bool, err error) {
	h, ok := src.(Holder)
	if !ok {
		return false, handle(ctx)
	}
	hctx, release, err := h.Hold(ctx, msgs)
	if err != nil {
		if errors.Is(err, eventlog.ErrRevoked) {
			return true, err
		}
		return false, fmt.Errorf("hold %d messages: %w", len(msgs), err)
	}
	defer release()
	err = handle(hctx)
	if err != nil && ctx.Err() == nil && (hctx.Err() != nil || errors.Is(err, eventlog.ErrRevoked)) {
		return true, err
	}
	return false, err
}

// watchLag sets the lag gauge from the group's lag every LagInterval until
// ctx ends. A failed query keeps the last value (and logs): during a broker
// outage the lag is unknown, not zero.
func (i *Ingester) watchLag(ctx context.Context, gl GroupLagger) {
	t := time.NewTicker(i.cfg.LagInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, i.cfg.LagInterval)
		lag, err := gl.GroupLag(qctx)
		cancel()
		switch {
		case err == nil:
			i.m.lag.Set(float64(lag))
		case ctx.Err() == nil:
			i.log.Warn("consumer lag unknown", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retry runs fn until it succeeds, backing off between failures, or until
// ctx ends.
func (i *Ingester) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	backoff := i.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				i.log.Info("recovered after retries", "step", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if errors.Is(err, eventlog.ErrRevoked) {
			return fmt.Errorf("%s: %w", what, err) // no retry can succeed
		}
		i.log.Warn("retrying", "step", what, "attempt", attempt, "backoff", backoff, "err", err)
		if err := i.sleep(ctx, backoff); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		backoff = min(backoff*2, i.cfg.RetryMax)
	}
}

// Token names a batch deterministically from the offset ranges it covers,
// so a retry of the same messages carries the same deduplication token.
func Token(msgs []eventlog.Message) string {
	type span struct{ lo, hi int64 }
	spans := map[string]*span{}
	for _, m := range msgs {
		k := m.Topic + "/" + strconv.Itoa(m.Partition)
		s := spans[k]
		if s == nil {
			spans[k] = &span{m.Offset, m.Offset}
			continue
		}
		s.lo, s.hi = min(s.lo, m.Offset), max(s.hi, m.Offset)
	}
	keys := make([]string, 0, len(spans))
	for k := range spans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s:%d-%d;", k, spans[k].lo, spans[k].hi)
	}
	if sb.Len() <= 200 {
		return sb.String()
	}
	h := fnv.New128a()
	h.Write([]byte(sb.String()))
	return fmt.Sprintf("%x", h.Sum(nil))
}

func reasonOf(err error) string {
	var ve *event.ValidationError
	switch {
	case errors.Is(err, event.ErrTooLarge):
		return "too_large"
	case errors.Is(err, event.ErrSchemaVersion):
		return "schema_version"
	case errors.Is(err, event.ErrMalformed):
		return "malformed"
	case errors.As(err, &ve):
		return "invalid"
	}
	return "other"
}

// deadLetter is msg as it goes to the DLQ: same key and value, with where it
// came from and why it was rejected in its headers.
func deadLetter(msg eventlog.Message, reason string, err error) eventlog.Message {
	h := append([]eventlog.Header(nil), msg.Headers...)
	h = append(h,
		eventlog.Header{Key: "loopgate.error", Value: []byte(err.Error())},
		eventlog.Header{Key: "loopgate.error_reason", Value: []byte(reason)},
		eventlog.Header{Key: "loopgate.source_topic", Value: []byte(msg.Topic)},
		eventlog.Header{Key: "loopgate.source_partition", Value: []byte(strconv.Itoa(msg.Partition))},
		eventlog.Header{Key: "loopgate.source_offset", Value: []byte(strconv.FormatInt(msg.Offset, 10))},
	)
	return eventlog.Message{Key: msg.Key, Value: msg.Value, Headers: h}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
