package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/deps"
)

// ReaderConfig configures a Reader. Start from DefaultReaderConfig and set
// Brokers, Topic and GroupID.
type ReaderConfig struct {
	// Brokers are the Kafka bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic to read. Required.
	Topic string
	// GroupID is the consumer group; its committed offsets are where a
	// restarted reader resumes. A new group starts at the oldest record.
	// Required.
	GroupID string
	// SessionTimeout is how long the coordinator waits for a heartbeat
	// before it gives this member's partitions to another. The broker
	// accepts 6 s to 5 min by default. Default 10 s.
	SessionTimeout time.Duration
	// HeartbeatInterval between heartbeats; a third of SessionTimeout.
	// Default 3 s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the coordinator waits for every member to
	// rejoin during a rebalance. Default 30 s.
	RebalanceTimeout time.Duration
	// JoinGroupBackoff is the wait before rejoining after an error.
	// Default 1 s.
	JoinGroupBackoff time.Duration
	// MaxWait is the longest a fetch request waits for new records.
	// Default 500 ms.
	MaxWait time.Duration
	// MinBytes the broker gathers before answering a fetch early.
	// Default 1.
	MinBytes int
	// MaxBytes per fetch response. Default 10 MiB.
	MaxBytes int
	// QueueCapacity is how many fetched messages are buffered ahead of
	// Fetch. Default 1000.
	QueueCapacity int
	// OffsetRetention is how long the broker keeps the group's committed
	// offsets once the group is empty. Default 7 days (Kafka's own default;
	// kafka-go's would be 24 h, after which an idle group starts over).
	OffsetRetention time.Duration
	// Security is how connections to the brokers are made (TLS, SASL).
	// Default: plaintext, no authentication.
	Security Security
}

// DefaultReaderConfig returns the defaults; Brokers, Topic and GroupID are
// left empty.
func DefaultReaderConfig() ReaderConfig {
	return ReaderConfig{
		SessionTimeout:    10 * time.Second,
		HeartbeatInterval: 3 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  time.Second,
		MaxWait:           500 * time.Millisecond,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		QueueCapacity:     1000,
		OffsetRetention:   7 * 24 * time.Hour,
	}
}

// Validate reports the first invalid field, or nil.
func (c ReaderConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers is empty"))
	}
	if err := validTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("Topic: %w", err))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("GroupID is empty"))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"SessionTimeout", int64(c.SessionTimeout)},
		{"HeartbeatInterval", int64(c.HeartbeatInterval)},
		{"RebalanceTimeout", int64(c.RebalanceTimeout)},
		{"JoinGroupBackoff", int64(c.JoinGroupBackoff)},
		{"MaxWait", int64(c.MaxWait)},
		{"MinBytes", int64(c.MinBytes)},
		{"MaxBytes", int64(c.MaxBytes)},
		{"QueueCapacity", int64(c.QueueCapacity)},
		{"OffsetRetention", int64(c.OffsetRetention)},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", f.name, f.v))
		}
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("HeartbeatInterval %v must be below SessionTimeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.MinBytes > c.MaxBytes {
		errs = append(errs, fmt.Errorf("MinBytes %d above MaxBytes %d", c.MinBytes, c.MaxBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reader config: %w", err)
	}
	return nil
}

// Reader reads a topic as a member of a consumer group and commits only
// what it is told to: fetch, handle, then commit the handled messages, so a
// crash between handling and committing redelivers (at-least-once) and
// nothing is skipped. Commits are synchronous. Messages of one partition
// arrive in offset order; committing a message commits every earlier
// message of its partition.
//
// Fetch is meant for one goroutine; Commit may be called from another.
type Reader struct {
	cfg    ReaderConfig
	r      *kafka.Reader
	logger *slog.Logger

	fetched, committed, fetchErrors, commitErrors prometheus.Counter
	lagGauge                                      prometheus.Gauge

	sec  client // resolved Security
	mu   sync.Mutex
	lags map[int]int64    // per partition: records after the last one fetched
	tr   *kafka.Transport // for GroupLag; created on first use
}

// NewReader returns a Reader that joins the group in the background. A nil
// logger discards logs; a nil reg registers no metrics.
func NewReader(cfg ReaderConfig, d deps.Deps) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := cfg.Security.resolve()
	if err != nil {
		return nil, fmt.Errorf("reader of %s: %w", cfg.Topic, err)
	}
	reg := d.Registerer
	logger := d.Log().With(logKeyTopic, cfg.Topic, logKeyGroup, cfg.GroupID)
	labels := prometheus.Labels{"topic": cfg.Topic, "group": cfg.GroupID}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "loopgate", Subsystem: "eventlog_reader", Name: name, Help: help, ConstLabels: labels,
		})
	}
	rd := &Reader{
		cfg:          cfg,
		logger:       logger,
		fetched:      counter("fetched_total", "Messages returned by Fetch."),
		committed:    counter("committed_total", "Messages committed."),
		fetchErrors:  counter("fetch_errors_total", "Fetch calls that failed (not counting cancellation)."),
		commitErrors: counter("commit_errors_total", "Commit calls that failed."),
		lagGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "loopgate", Subsystem: "eventlog_reader", Name: "lag",
			Help:        "Records behind the newest, summed over the partitions this reader has fetched from, as of the last fetch from each.",
			ConstLabels: labels,
		}),
		lags: map[int]int64{},
		sec:  sec,
	}
	if err := register(reg, rd.fetched, rd.committed, rd.fetchErrors, rd.commitErrors, rd.lagGauge); err != nil {
		return nil, err
	}
	rd.r = kafka.NewReader(kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		Topic:             cfg.Topic,
		GroupID:           cfg.GroupID,
		Dialer:            sec.dialer(),
		StartOffset:       kafka.FirstOffset,
		CommitInterval:    0, // synchronous commits of exactly what Commit is given
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  cfg.JoinGroupBackoff,
		MaxWait:           cfg.MaxWait,
		MinBytes:          cfg.MinBytes,
		MaxBytes:          cfg.MaxBytes,
		QueueCapacity:     cfg.QueueCapacity,
		RetentionTime:     cfg.OffsetRetention,
		ReadLagInterval:   -1, // kafka-go cannot compute lag for groups; we do it per fetch
		Logger:            kafkaLogger(logger, slog.LevelDebug, "kafka reader"),
		ErrorLogger:       kafkaLogger(logger, slog.LevelWarn, "kafka reader error"),
	})
	return rd, nil
}

// Fetch returns the next message, blocking until one arrives, ctx ends or
// the Reader is closed (ErrClosed). It does not commit.
//
// A retriable group error (the coordinator moving or still loading its
// offsets, as on a cluster that is starting or has lost a broker) is
// counted and logged, and Fetch goes on waiting: kafka-go rejoins the group
// by itself and only reports the error.
func (r *Reader) Fetch(ctx context.Context) (Message, error) {
	m, err := r.r.FetchMessage(ctx)
	for err != nil && ctx.Err() == nil && retriable(err) {
		r.fetchErrors.Inc()
		r.logger.Warn("fetch: retriable group error; waiting", logKeyErr, err)
		m, err = r.r.FetchMessage(ctx)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Message{}, ErrClosed
		}
		if ctx.Err() == nil {
			r.fetchErrors.Inc()
		}
		return Message{}, fmt.Errorf("fetch from %s: %w", r.cfg.Topic, err)
	}
	r.fetched.Inc()
	if m.HighWaterMark > 0 {
		r.mu.Lock()
		r.lags[m.Partition] = max(0, m.HighWaterMark-m.Offset-1)
		var sum int64
		for _, l := range r.lags {
			sum += l
		}
		r.mu.Unlock()
		r.lagGauge.Set(float64(sum))
	}
	return fromKafka(m), nil
}

// retriable reports whether err is a Kafka error that a later attempt may
// not meet.
func retriable(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && kerr.Temporary()
}

// Commit commits msgs: for each partition, the group's offset moves past the
// highest offset given. Call it only after the messages were handled. It
// returns once the coordinator has accepted the commit.
func (r *Reader) Commit(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	refs := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		refs[i] = commitRef(m)
	}
	if err := r.r.CommitMessages(ctx, refs...); err != nil {
		if errors.Is(err, io.ErrClosedPipe) {
			return ErrClosed
		}
		r.commitErrors.Inc()
		return fmt.Errorf("commit %d messages to group %s: %w", len(msgs), r.cfg.GroupID, err)
	}
	r.committed.Add(float64(len(msgs)))
	return nil
}

// Lag returns the records behind the newest, summed over the partitions this
// Reader has fetched from, as of its last fetch from each. It is an
// estimate for a gauge: a partition given to another member keeps its last
// value here.
func (r *Reader) Lag() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum int64
	for _, l := range r.lags {
		sum += l
	}
	return sum
}

// GroupLag asks the brokers for the group's real lag: for every partition
// of the topic, the partition's end offset minus the group's committed
// offset (minus the partition's first offset when the group has committed
// nothing there), summed. Unlike Lag it does not depend on this Reader
// fetching, so it keeps moving while the consumer is stuck — during a
// warehouse outage, ingest stops fetching while producers keep writing.
func (r *Reader) GroupLag(ctx context.Context) (int64, error) {
	c := &kafka.Client{Addr: kafka.TCP(r.cfg.Brokers...), Transport: r.transport()}
	meta, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{r.cfg.Topic}})
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: metadata: %w", r.cfg.GroupID, err)
	}
	var ids []int
	for _, t := range meta.Topics {
		if t.Name != r.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("group lag of %s: metadata of %s: %w", r.cfg.GroupID, t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("group lag of %s: topic %s has no partitions", r.cfg.GroupID, r.cfg.Topic)
	}
	committed, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: r.cfg.GroupID, Topics: map[string][]int{r.cfg.Topic: ids}})
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: committed offsets: %w", r.cfg.GroupID, err)
	}
	if committed.Error != nil {
		return 0, fmt.Errorf("group lag of %s: committed offsets: %w", r.cfg.GroupID, committed.Error)
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ids))
	for _, id := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(id), kafka.LastOffsetOf(id))
	}
	ends, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{r.cfg.Topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("group lag of %s: end offsets: %w", r.cfg.GroupID, err)
	}
	first, last := map[int]int64{}, map[int]int64{}
	for _, p := range ends.Topics[r.cfg.Topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("group lag of %s: offsets of partition %d: %w", r.cfg.GroupID, p.Partition, p.Error)
		}
		first[p.Partition], last[p.Partition] = p.FirstOffset, p.LastOffset
	}
	pos := map[int]int64{}
	for _, p := range committed.Topics[r.cfg.Topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("group lag of %s: committed offset of partition %d: %w", r.cfg.GroupID, p.Partition, p.Error)
		}
		pos[p.Partition] = p.CommittedOffset
	}
	var sum int64
	for _, id := range ids {
		at, ok := pos[id]
		if !ok || at < 0 {
			at = first[id] // nothing committed: a new group starts at the oldest record
		}
		sum += max(0, last[id]-at)
	}
	return sum, nil
}

// transport is the kafka-go transport of the Reader's side requests.
func (r *Reader) transport() *kafka.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tr == nil {
		r.tr = r.sec.transport()
	}
	return r.tr
}

// Close leaves the group (so its partitions move to other members at once)
// and stops the background fetching. Uncommitted messages will be delivered
// again to whoever reads the partition next.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.tr != nil {
		r.tr.CloseIdleConnections()
	}
	r.mu.Unlock()
	if err := r.r.Close(); err != nil {
		return fmt.Errorf("close reader: %w", err)
	}
	return nil
}
