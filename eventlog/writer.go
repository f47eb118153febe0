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

// WriterConfig configures a Writer. Start from DefaultWriterConfig and set
// Brokers and Topic.
type WriterConfig struct {
	// Brokers are the Kafka bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic receives every message, e.g. TopicPolicy or TopicOutcomesDLQ.
	// Required.
	Topic string
	// MaxMessageBytes is the largest message (key, value and headers)
	// accepted. Default 900 KiB, under the broker's 1 MiB message.max.bytes.
	MaxMessageBytes int
	// WriteTimeout bounds one produce request. Default 10 s.
	WriteTimeout time.Duration
	// RetryBackoff is the wait before retrying what Kafka did not
	// acknowledge; it doubles up to MaxRetryBackoff. Default 250 ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps RetryBackoff. Default 5 s.
	MaxRetryBackoff time.Duration
	// Compression of record batches: "none", "gzip", "snappy", "lz4" or
	// "zstd". Default "none".
	Compression string
	// Security is how connections to the brokers are made (TLS, SASL).
	// Default: plaintext, no authentication.
	Security Security
}

// DefaultWriterConfig returns the defaults; Brokers and Topic are left empty.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{
		MaxMessageBytes: 900 << 10,
		WriteTimeout:    10 * time.Second,
		RetryBackoff:    250 * time.Millisecond,
		MaxRetryBackoff: 5 * time.Second,
		Compression:     "none",
	}
}

// Validate reports the first invalid field, or nil.
func (c WriterConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is empty"))
	}
	if err := validTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("Topic: %w", err))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxMessageBytes", int64(c.MaxMessageBytes)},
		{"WriteTimeout", int64(c.WriteTimeout)},
		{"RetryBackoff", int64(c.RetryBackoff)},
		{"MaxRetryBackoff", int64(c.MaxRetryBackoff)},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", f.name, f.v))
		}
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("MaxRetryBackoff %v below RetryBackoff %v", c.MaxRetryBackoff, c.RetryBackoff))
	}
	if _, err := parseCompression(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("writer config: %w", err)
	}
	return nil
}

// Writer writes messages to one topic synchronously: Write returns nil only
// once Kafka has acknowledged every message with acks=all. It is meant for
// low-volume topics where the caller must know (the dead-letter topic, the
// policy topic); the outcome stream uses Publisher. Messages with the same
// key keep their order. Safe for concurrent use; concurrent Writes are
// serialized.
type Writer struct {
	cfg    WriterConfig
	logger *slog.Logger
	now    func() time.Time

	written, writeErrors prometheus.Counter

	mu     sync.Mutex
	prod   *producer
	closed bool
}

// NewWriter returns a Writer. A nil logger discards logs; a nil reg
// registers no metrics. It does not connect until the first Write.
func NewWriter(cfg WriterConfig, d deps.Deps) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger, reg, now := d.Log(), d.Registerer, d.Now
	compression, _ := parseCompression(cfg.Compression)
	sec, err := cfg.Security.resolve()
	if err != nil {
		return nil, fmt.Errorf("writer for %s: %w", cfg.Topic, err)
	}
	labels := prometheus.Labels{"topic": cfg.Topic}
	w := &Writer{
		cfg:    cfg,
		logger: logger.With(logKeyTopic, cfg.Topic),
		now:    now,
		prod:   newProducer(cfg.Brokers, cfg.Topic, compression, cfg.WriteTimeout, now, sec),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "loopgate", Subsystem: "eventlog_writer", Name: "written_total",
			Help: "Messages acknowledged by Kafka.", ConstLabels: labels,
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "loopgate", Subsystem: "eventlog_writer", Name: "write_errors_total",
			Help: "Produce attempts that left messages unacknowledged.", ConstLabels: labels,
		}),
	}
	if err := register(reg, w.written, w.writeErrors); err != nil {
		return nil, err
	}
	return w, nil
}

// Write sends msgs and returns nil once all are acknowledged. Unacknowledged
// messages are retried with backoff until ctx ends; a message the broker
// refuses for good (too large, invalid) fails the Write at once. On error
// some messages may have been written (at-least-once: a retried Write may
// duplicate them). Topic, Partition and Offset of msgs are ignored; Topic
// must be empty or the Writer's topic.
func (w *Writer) Write(ctx context.Context, msgs ...Message) error {
	recs := make([]record, len(msgs))
	nowMs := w.now().UnixMilli()
	for i, m := range msgs {
		if m.Topic != "" && m.Topic != w.cfg.Topic {
			return fmt.Errorf("write message %d: topic %q, writer writes %q", i, m.Topic, w.cfg.Topic)
		}
		size := len(m.Key) + len(m.Value)
		for _, h := range m.Headers {
			size += len(h.Key) + len(h.Value)
		}
		if size > w.cfg.MaxMessageBytes {
			return fmt.Errorf("write message %d of %d bytes (limit %d): %w", i, size, w.cfg.MaxMessageBytes, ErrTooLarge)
		}
		recs[i] = record{key: m.Key, value: m.Value, headers: m.Headers, timeMs: nowMs}
		if !m.Time.IsZero() {
			recs[i].timeMs = m.Time.UnixMilli()
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	// Chunks stay under the broker's request size limit; a chunk goes only
	// after the one before it was acknowledged, which keeps the order.
	for start := 0; start < len(recs); {
		end, bytes := start, int64(0)
		for end < len(recs) && (end == start || bytes+recs[end].memSize() <= int64(w.cfg.MaxMessageBytes)) {
			bytes += recs[end].memSize()
			end++
		}
		if err := w.writeChunk(ctx, recs[start:end]); err != nil {
			return fmt.Errorf("write %d messages to %s: %d acknowledged: %w", len(recs), w.cfg.Topic, start, err)
		}
		start = end
	}
	return nil
}

func (w *Writer) writeChunk(ctx context.Context, recs []record) error {
	backoff := time.Duration(0)
	for {
		errs, err := w.prod.produce(ctx, recs)
		if err == nil && errs == nil {
			w.written.Add(float64(len(recs)))
			return nil
		}
		w.writeErrors.Inc()
		if err == nil {
			// Keep the unacknowledged ones, in order.
			var rest []record
			for i, e := range errs {
				if e == nil {
					continue
				}
				if isPoison(e) {
					return e
				}
				if err == nil {
					err = e
				}
				rest = append(rest, recs[i])
			}
			w.written.Add(float64(len(recs) - len(rest)))
			recs = rest
		}
		backoff = min(max(2*backoff, w.cfg.RetryBackoff), w.cfg.MaxRetryBackoff)
		w.logger.Debug("kafka write failed, retrying", logKeyEvents, len(recs), logKeyErr, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// Close releases the Writer's connections, after waiting for a Write in
// progress (cancel its context to cut it short). Write returns ErrClosed
// after.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	w.prod.close()
	return nil
}
