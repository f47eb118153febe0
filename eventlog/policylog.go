package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/deps"
)

// PolicyKey is the key of every record on the policy topic. The topic is
// compacted, so the broker keeps the newest policy; the warehouse's
// policies table keeps them all.
const PolicyKey = "policy"

// PolicyLogConfig says where the policy log is.
type PolicyLogConfig struct {
	// Brokers is the bootstrap list. Required.
	Brokers []string
	// Topic is the compacted policy topic (one partition). Default "loopgate.policy".
	Topic string
	// WriteTimeout bounds one Publish. Default 10s.
	WriteTimeout time.Duration
	// RetryBackoff is Follow's first wait after the log became
	// unreadable; it doubles up to MaxRetryBackoff. Defaults 1s and 30s.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// Security is how connections to the brokers are made (TLS, SASL).
	// Default: plaintext, no authentication.
	Security Security
}

// DefaultPolicyLogConfig returns the defaults documented on the fields.
func DefaultPolicyLogConfig() PolicyLogConfig {
	return PolicyLogConfig{Topic: DefaultTopicsConfig().Policy, WriteTimeout: 10 * time.Second, RetryBackoff: time.Second, MaxRetryBackoff: 30 * time.Second}
}

// Validate reports settings that cannot work.
func (c PolicyLogConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("policy log: no brokers"))
	}
	if err := validTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("policy log: %w", err))
	}
	if c.WriteTimeout <= 0 || c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("policy log: write_timeout %v and retry_backoff %v..%v must be positive ranges", c.WriteTimeout, c.RetryBackoff, c.MaxRetryBackoff))
	}
	return errors.Join(errs...)
}

// PolicyLog is the log of routing policies: the optimizer publishes each
// policy's encoding once, and every router follows the log from the newest
// policy on. It carries bytes and never decodes them: the router validates
// a policy once, when it receives it.
type PolicyLog struct {
	cfg PolicyLogConfig
	sec client // resolved Security
	w   *Writer
	log *slog.Logger

	caughtUp     chan struct{} // closed once Follow delivered the newest policy, or found none
	caughtUpOnce sync.Once
}

// NewPolicyLog returns the policy log on cfg's brokers. It connects on
// first use.
func NewPolicyLog(cfg PolicyLogConfig, d deps.Deps) (*PolicyLog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wcfg := DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic, wcfg.WriteTimeout, wcfg.Security = cfg.Brokers, cfg.Topic, cfg.WriteTimeout, cfg.Security
	wcfg.MaxMessageBytes = PolicyMaxMessageBytes // a fleet's policy outgrows the default
	w, err := NewWriter(wcfg, d)
	if err != nil {
		return nil, fmt.Errorf("policy log: %w", err)
	}
	sec, err := cfg.Security.resolve()
	if err != nil {
		return nil, fmt.Errorf("policy log: %w", err)
	}
	return &PolicyLog{cfg: cfg, sec: sec, w: w, log: d.Log().With(logKeyTopic, cfg.Topic), caughtUp: make(chan struct{})}, nil
}

// Publish appends one encoded policy. It returns nil only when the broker
// has acknowledged it.
func (l *PolicyLog) Publish(ctx context.Context, encoded []byte) error {
	return l.w.Write(ctx, Message{Key: []byte(PolicyKey), Value: encoded})
}

// CaughtUp is closed once Follow has delivered the policy that was newest
// when it started, or found the log empty: a router waits on it (bounded)
// before it serves, so its first request is routed by the current policy.
func (l *PolicyLog) CaughtUp() <-chan struct{} { return l.caughtUp }

func (l *PolicyLog) markCaughtUp() { l.caughtUpOnce.Do(func() { close(l.caughtUp) }) }

// Follow calls apply with the newest policy on the log, if there is one,
// then with every policy published after it, in order, until ctx ends; it
// returns nil then. A restarted router therefore applies one policy, not
// the history. When the log becomes unreadable Follow waits (with backoff)
// and goes on from the record after the last one it delivered. apply runs
// on Follow's goroutine; it should not block for long.
func (l *PolicyLog) Follow(ctx context.Context, apply func(encoded []byte)) error {
	next := int64(-1) // the newest record
	backoff := l.cfg.RetryBackoff
	for {
		delivered := false
		var err error
		next, delivered, err = l.follow(ctx, next, apply)
		if ctx.Err() != nil {
			return nil
		}
		if delivered {
			backoff = l.cfg.RetryBackoff
		}
		l.log.Warn("policy log unreadable; following again", logKeyErr, err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, l.cfg.MaxRetryBackoff)
	}
}

// follow reads from offset from (-1: the newest record) until an error,
// and returns the offset to go on from.
func (l *PolicyLog) follow(ctx context.Context, from int64, apply func([]byte)) (next int64, delivered bool, err error) {
	next = from
	if from < 0 {
		if from, err = l.newest(ctx); err != nil {
			return next, false, err
		}
		if from < 0 {
			l.markCaughtUp() // nothing published yet
		}
	}
	newest := from
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     l.cfg.Brokers,
		Topic:       l.cfg.Topic,
		Partition:   0,
		Dialer:      l.sec.dialer(),
		StartOffset: kafka.FirstOffset, // if from was compacted away
		MaxWait:     DefaultReaderConfig().MaxWait,
		MaxBytes:    PolicyMaxMessageBytes, // one whole policy per fetch
		Logger:      kafkaLogger(l.log, slog.LevelDebug, "kafka policy log"),
		ErrorLogger: kafkaLogger(l.log, slog.LevelWarn, "kafka policy log error"),
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return next, false, fmt.Errorf("seek policy log to %d: %w", from, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return next, delivered, fmt.Errorf("read policy log %s: %w", l.cfg.Topic, err)
		}
		apply(m.Value)
		next, delivered = m.Offset+1, true
		if m.Offset >= newest {
			l.markCaughtUp()
		}
	}
}

// newest is the offset of the newest record of the policy partition, or
// the first offset when it holds none.
func (l *PolicyLog) newest(ctx context.Context) (int64, error) {
	tr := l.sec.transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(l.cfg.Brokers...), Transport: tr, Timeout: l.cfg.WriteTimeout}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{l.cfg.Topic: {kafka.LastOffsetOf(0)}},
	})
	if err != nil {
		return 0, fmt.Errorf("list offsets of %s: %w", l.cfg.Topic, err)
	}
	parts := res.Topics[l.cfg.Topic]
	if len(parts) == 0 {
		return 0, fmt.Errorf("list offsets of %s: %w", l.cfg.Topic, kafka.UnknownTopicOrPartition)
	}
	if parts[0].Error != nil {
		return 0, fmt.Errorf("list offsets of %s: %w", l.cfg.Topic, parts[0].Error)
	}
	if end := parts[0].LastOffset; end > 0 {
		return end - 1, nil
	}
	return kafka.FirstOffset, nil
}

// Newest returns the newest policy on the log, or nil when it holds none.
// A standby optimizer reads it when it takes over, so its first version is
// above the last one its predecessor published, even one the predecessor
// did not live to record anywhere else.
func (l *PolicyLog) Newest(ctx context.Context) ([]byte, error) {
	off, err := l.newest(ctx)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     l.cfg.Brokers,
		Topic:       l.cfg.Topic,
		Partition:   0,
		Dialer:      l.sec.dialer(),
		MaxWait:     DefaultReaderConfig().MaxWait,
		MaxBytes:    PolicyMaxMessageBytes, // one whole policy per fetch
		Logger:      kafkaLogger(l.log, slog.LevelDebug, "kafka policy log"),
		ErrorLogger: kafkaLogger(l.log, slog.LevelWarn, "kafka policy log error"),
	})
	defer r.Close()
	if err := r.SetOffset(off); err != nil {
		return nil, fmt.Errorf("seek policy log to %d: %w", off, err)
	}
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("read newest policy of %s: %w", l.cfg.Topic, err)
	}
	return m.Value, nil
}

// Close releases the writer.
func (l *PolicyLog) Close() error { return l.w.Close() }
