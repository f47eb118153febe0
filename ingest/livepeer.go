package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
)

// LivepeerSink stores the rows of go-livepeer events. WriteLivepeer returns
// nil only when the rows are durable, and writing rows already stored adds
// none (warehouse.Store.WriteLivepeer); token names the batch
// deterministically.
type LivepeerSink interface {
	WriteLivepeer(ctx context.Context, token string, b *event.LivepeerBatch) error
}

// LivepeerConfig tunes a LivepeerAdapter.
type LivepeerConfig struct {
	// Batch is the batching, retry and drain behaviour, as for outcomes.
	// Default DefaultConfig() with DLQTopic "loopgate.livepeer.dlq".
	Batch Config
	// MaxEventBytes bounds one event; a larger one is dead-lettered as
	// too_large. Default 1 MiB (Kafka's default message.max.bytes).
	MaxEventBytes int
}

// DefaultLivepeerConfig returns the documented defaults.
func DefaultLivepeerConfig() LivepeerConfig {
	b := DefaultConfig()
	b.DLQTopic = "loopgate.livepeer.dlq"
	return LivepeerConfig{Batch: b, MaxEventBytes: 1 << 20}
}

// Validate reports a config that cannot work.
func (c LivepeerConfig) Validate() error {
	if err := c.Batch.Validate(); err != nil {
		return err
	}
	if c.MaxEventBytes <= 0 {
		return fmt.Errorf("ingest: livepeer max event bytes %d must be positive", c.MaxEventBytes)
	}
	return nil
}

// LivepeerAdapter consumes a stock go-livepeer gateway topic
// (-kafkaGatewayTopic) into the warehouse's livepeer_* tables, under the
// outcome path's rules: a batch is written, then its dead letters, then
// its offsets committed; a failed write is retried without committing;
// malformed events go to the DLQ with their error; events of a type not
// stored are counted and committed. Create it with NewLivepeer and start
// it with Run; it is not safe to Run twice at once.
type LivepeerAdapter struct {
	cfg  LivepeerConfig
	src  Source
	sink LivepeerSink
	dlq  DeadLetters
	core *Ingester // for retry, with the same backoff and logger
	log  *slog.Logger
	m    *livepeerMetrics
	now  func() time.Time
}

// NewLivepeer returns an adapter reading src and writing to sink and dlq.
// Options are the Ingester's (WithSleep).
func NewLivepeer(cfg LivepeerConfig, src Source, sink LivepeerSink, dlq DeadLetters, d deps.Deps, opts ...Option) (*LivepeerAdapter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || sink == nil || dlq == nil {
		return nil, errors.New("ingest: source, livepeer sink and dead-letter writer are required")
	}
	m, err := newLivepeerMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	logger := d.Log().With("component", "livepeer_adapter")
	core := &Ingester{cfg: cfg.Batch, log: logger, sleep: sleepCtx, now: d.Now}
	for _, o := range opts {
		o(core)
	}
	return &LivepeerAdapter{cfg: cfg, src: src, sink: sink, dlq: dlq, core: core, log: logger, m: m, now: d.Now}, nil
}

// lpBatch is what one flush writes and commits.
type lpBatch struct {
	msgs  []eventlog.Message
	rows  event.LivepeerBatch
	dead  []eventlog.Message
	first time.Time
}

func (b *lpBatch) reset() {
	b.msgs, b.dead = b.msgs[:0], b.dead[:0]
	b.rows.Reset()
}

// Run adapts until ctx is cancelled, then tries, for at most DrainTimeout,
// to write and commit what it holds. It returns nil after a cancel, or the
// Source failure that stopped it.
func (a *LivepeerAdapter) Run(ctx context.Context) error {
	var b lpBatch
	cfg := a.cfg.Batch
	for {
		var msg eventlog.Message
		var err error
		switch wait := cfg.BatchWait - a.now().Sub(b.first); {
		case len(b.msgs) == 0:
			msg, err = a.src.Fetch(ctx)
		case wait > 0:
			fctx, cancel := context.WithTimeout(ctx, wait)
			msg, err = a.src.Fetch(fctx)
			cancel()
		default:
			err = context.DeadlineExceeded
		}
		switch {
		case err == nil:
			if len(b.msgs) > 0 && msg.Generation != b.msgs[0].Generation {
				// A batch holds one consumer-group generation (see
				// Holder): flush the old one before msg starts the next.
				if err := a.flush(ctx, &b); err != nil {
					if ctx.Err() != nil {
						return a.drain(ctx, &b)
					}
					return err
				}
				b.reset()
			}
			if len(b.msgs) == 0 {
				b.first = a.now()
			}
			a.add(&b, msg)
			if len(b.msgs) < cfg.BatchRows {
				continue
			}
		case ctx.Err() != nil:
			return a.drain(ctx, &b)
		case errors.Is(err, context.DeadlineExceeded):
		default:
			return fmt.Errorf("fetch go-livepeer event: %w", err)
		}
		if len(b.msgs) == 0 {
			continue
		}
		if err := a.flush(ctx, &b); err != nil {
			if ctx.Err() != nil {
				return a.drain(ctx, &b)
			}
			return err
		}
		b.reset()
	}
}

func (a *LivepeerAdapter) drain(ctx context.Context, b *lpBatch) error {
	if len(b.msgs) == 0 || a.cfg.Batch.DrainTimeout == 0 {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Batch.DrainTimeout)
	defer cancel()
	if err := a.flush(dctx, b); err != nil {
		a.log.Warn("final batch not committed; it will be re-delivered", "messages", len(b.msgs), "err", err)
	}
	return nil
}

// add decodes msg into the batch, counts it, or turns it into a dead letter.
func (a *LivepeerAdapter) add(b *lpBatch, msg eventlog.Message) {
	b.msgs = append(b.msgs, msg)
	fallback := "kafka:" + msg.Topic + "/" + strconv.Itoa(msg.Partition) + "/" + strconv.FormatInt(msg.Offset, 10)
	typ, err := DecodeLivepeer(msg.Value, fallback, a.cfg.MaxEventBytes, &b.rows)
	label := typ
	if !isLivepeerType(typ) {
		label = "unknown"
	}
	var le *LivepeerError
	switch {
	case err == nil:
		a.m.messages.WithLabelValues(label, "ok").Inc()
	case errors.Is(err, ErrUnknownType):
		a.m.messages.WithLabelValues(label, "skipped").Inc()
	case errors.As(err, &le):
		a.m.messages.WithLabelValues(label, "dead_letter").Inc()
		a.m.deadLetters.WithLabelValues(le.Reason).Inc()
		a.log.Warn("go-livepeer event rejected to dead-letter topic", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "reason", le.Reason, "err", err)
		b.dead = append(b.dead, deadLetter(msg, le.Reason, err))
	default: // not produced by DecodeLivepeer; kept safe
		a.m.messages.WithLabelValues(label, "dead_letter").Inc()
		a.m.deadLetters.WithLabelValues("other").Inc()
		b.dead = append(b.dead, deadLetter(msg, "other", err))
	}
}

// flush writes, dead-letters and commits b, each step retried; commit
// last. As for outcomes, it does so inside a Hold of b's generation, and a
// batch whose partitions moved to another consumer first is dropped
// uncommitted (flush returns nil).
func (a *LivepeerAdapter) flush(ctx context.Context, b *lpBatch) error {
	revoked, err := owned(ctx, a.src, b.msgs, func(ctx context.Context) error { return a.store(ctx, b) })
	if revoked {
		a.log.Info("batch dropped: its partitions moved to another consumer, which reads it again", "messages", len(b.msgs), "err", err)
		return nil
	}
	return err
}

// store writes, dead-letters and commits b.
func (a *LivepeerAdapter) store(ctx context.Context, b *lpBatch) error {
	if b.rows.Len() > 0 {
		token := "livepeer/" + Token(b.msgs)
		err := a.core.retry(ctx, "write livepeer batch", func(ctx context.Context) error {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Batch.WriteTimeout)
			defer cancel()
			if err := a.sink.WriteLivepeer(wctx, token, &b.rows); err != nil {
				a.m.writeErrors.Inc()
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		for table, n := range map[string]int{
			"livepeer_payments": len(b.rows.Payments), "livepeer_discovery": len(b.rows.Discovery),
			"livepeer_orchestrators": len(b.rows.Orchestrators), "livepeer_streams": len(b.rows.Streams),
		} {
			a.m.rows.WithLabelValues(table).Add(float64(n))
		}
	}
	if len(b.dead) > 0 {
		if err := a.core.retry(ctx, "write dead letters", func(ctx context.Context) error { return a.dlq.Write(ctx, b.dead...) }); err != nil {
			return err
		}
	}
	if err := a.core.retry(ctx, "commit offsets", func(ctx context.Context) error { return a.src.Commit(ctx, b.msgs...) }); err != nil {
		return err
	}
	a.m.lastCommit.Set(float64(a.now().UnixMilli()) / 1000)
	return nil
}

func isLivepeerType(t string) bool {
	for _, k := range livepeerTypes {
		if k == t {
			return true
		}
	}
	return false
}

type livepeerMetrics struct {
	messages    *prometheus.CounterVec
	rows        *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	writeErrors prometheus.Counter
	lastCommit  prometheus.Gauge
}

func newLivepeerMetrics(reg prometheus.Registerer) (*livepeerMetrics, error) {
	m := &livepeerMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_ingest_livepeer_messages_total", Help: "go-livepeer events read, by type (unknown for types not stored) and result (ok, skipped, dead_letter).",
		}, []string{"type", "result"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_ingest_livepeer_rows_total", Help: "Rows of go-livepeer events the warehouse accepted, by table (retried writes count again).",
		}, []string{"table"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_ingest_livepeer_dead_letters_total", Help: "go-livepeer events sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_ingest_livepeer_write_errors_total", Help: "Failed warehouse writes of go-livepeer rows; each is retried.",
		}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_ingest_livepeer_last_commit_timestamp_seconds", Help: "Unix time of the adapter's last offset commit.",
		}),
	}
	for _, t := range append(append([]string(nil), livepeerTypes...), "unknown") {
		for _, r := range []string{"ok", "skipped", "dead_letter"} {
			m.messages.WithLabelValues(t, r)
		}
	}
	for _, r := range []string{"malformed", "too_large", "invalid", "other"} {
		m.deadLetters.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.rows, m.deadLetters, m.writeErrors, m.lastCommit} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register livepeer adapter metrics: %w", err)
		}
	}
	return m, nil
}
