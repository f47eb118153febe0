package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// Fetch: that many for each assigned partition, and that many more
	// between the partitions and Fetch. Default 1000.
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
// Partitions move between members when one joins, leaves or dies; each
// assignment is a group generation, and every Message carries the
// generation it was fetched in. A consumer whose handling must not overlap
// another member's (two writers of the same rows) brackets it with Hold:
// while a Hold is open the generation cannot end on this member's side —
// the group waits for it before giving the partitions to anyone — and once
// the generation has ended Hold refuses its messages (ErrRevoked), so they
// are dropped uncommitted and the partitions' new owner reads them again.
// Fetch skips messages of a generation that has ended, and Commit refuses
// them: a commit from an old generation never moves an offset.
//
// Fetch is meant for one goroutine; Commit and Hold may be called from
// another.
type Reader struct {
	cfg    ReaderConfig
	cg     *kafka.ConsumerGroup
	logger *slog.Logger

	fetched, committed, fetchErrors, commitErrors, stale prometheus.Counter
	lagGauge                                             prometheus.Gauge

	sec     client        // resolved Security
	msgs    chan Message  // fetched by the partition readers of the live generation
	closed  chan struct{} // closed by Close, after the group is left
	stop    context.CancelFunc
	done    chan struct{} // closed when run returns
	once    sync.Once
	liveGen atomic.Int64 // id of the generation whose messages may be handled; 0 for none

	mu      sync.Mutex
	drained *sync.Cond        // signalled when holds drops
	gen     *kafka.Generation // the generation commits go through; nil between generations
	genEnd  context.CancelFunc
	genCtx  context.Context // ends when gen ends (Hold's context derives from it)
	holds   int
	lags    map[int]int64    // per partition: records after the last one fetched
	tr      *kafka.Transport // for GroupLag; created on first use
}

// ErrRevoked is returned by Hold and Commit for messages of a consumer-group
// generation that has ended: their partitions may belong to another member
// now, which reads them again from the last commit. Drop them uncommitted.
var ErrRevoked = errors.New("eventlog: partitions revoked")

// NewReader returns a Reader that joins the group in the background (until
// Close). A nil logger discards logs; a nil reg registers no metrics.
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
		fetchErrors:  counter("fetch_errors_total", "Failed fetches and group joins (not counting cancellation); each is retried."),
		commitErrors: counter("commit_errors_total", "Commit calls that failed."),
		stale:        counter("stale_total", "Fetched messages skipped because their generation ended before Fetch returned them; the partitions' next owner reads them again."),
		lagGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "loopgate", Subsystem: "eventlog_reader", Name: "lag",
			Help:        "Records behind the newest, summed over the partitions this reader has fetched from, as of the last fetch from each.",
			ConstLabels: labels,
		}),
		msgs:   make(chan Message, cfg.QueueCapacity),
		closed: make(chan struct{}),
		done:   make(chan struct{}),
		lags:   map[int]int64{},
		sec:    sec,
	}
	rd.drained = sync.NewCond(&rd.mu)
	if err := register(reg, rd.fetched, rd.committed, rd.fetchErrors, rd.commitErrors, rd.stale, rd.lagGauge); err != nil {
		return nil, err
	}
	rd.cg, err = kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                cfg.GroupID,
		Brokers:           cfg.Brokers,
		Dialer:            sec.dialer(),
		Topics:            []string{cfg.Topic},
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: cfg.HeartbeatInterval,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  cfg.JoinGroupBackoff,
		RetentionTime:     cfg.OffsetRetention,
		Logger:            kafkaLogger(logger, slog.LevelDebug, "kafka group"),
		ErrorLogger:       kafkaLogger(logger, slog.LevelDebug, "kafka group error"),
	})
	if err != nil {
		return nil, fmt.Errorf("reader of %s: group %s: %w", cfg.Topic, cfg.GroupID, err)
	}
	// The Reader's own goroutine, stopped by Close: context.Background
	// because a Reader outlives any one call.
	ctx, stop := context.WithCancel(context.Background())
	rd.stop = stop
	go func() { defer close(rd.done); rd.run(ctx) }()
	return rd, nil
}

// run takes each generation the group gives this member: one partition
// reader per assigned partition, and a guard that, when the generation
// ends, refuses new Holds and waits for the open ones before letting the
// member rejoin.
func (r *Reader) run(ctx context.Context) {
	for {
		gen, err := r.cg.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
			return
		}
		if err != nil {
			r.fetchErrors.Inc()
			r.logger.Warn("join group; retrying", logKeyErr, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.JoinGroupBackoff):
			}
			continue
		}
		assigned := gen.Assignments[r.cfg.Topic]
		ids := make([]int, len(assigned))
		for i, a := range assigned {
			ids[i] = a.ID
		}
		r.logger.Info("partitions assigned", logKeyGeneration, gen.ID, logKeyPartitions, ids)
		gctx, end := context.WithCancel(ctx)
		r.mu.Lock()
		r.gen, r.genCtx, r.genEnd = gen, gctx, end
		r.mu.Unlock()
		r.liveGen.Store(int64(gen.ID))
		gen.Start(func(kctx context.Context) {
			<-kctx.Done()
			r.revoke(gen)
		})
		for _, a := range assigned {
			gen.Start(func(kctx context.Context) { r.readPartition(kctx, int64(gen.ID), a) })
		}
	}
}

// revoke ends gen on this member's side: no new Hold, then wait for the
// open ones. kafka-go rejoins only after it returns, so the partitions'
// next owner cannot start before the handling held here is done.
func (r *Reader) revoke(gen *kafka.Generation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen {
		return
	}
	r.liveGen.Store(0)
	r.genEnd()
	for r.holds > 0 {
		r.drained.Wait()
	}
	r.gen = nil
	r.logger.Info("partitions revoked", logKeyGeneration, gen.ID)
}

// readPartition feeds r.msgs from one assigned partition, from its
// committed offset, until the generation ends.
func (r *Reader) readPartition(ctx context.Context, genID int64, a kafka.PartitionAssignment) {
	pr := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         r.cfg.Brokers,
		Topic:           r.cfg.Topic,
		Partition:       a.ID,
		Dialer:          r.sec.dialer(),
		MaxWait:         r.cfg.MaxWait,
		MinBytes:        r.cfg.MinBytes,
		MaxBytes:        r.cfg.MaxBytes,
		QueueCapacity:   r.cfg.QueueCapacity,
		ReadLagInterval: -1, // lag is computed per fetch from the high-water mark
		Logger:          kafkaLogger(r.logger, slog.LevelDebug, "kafka reader"),
		ErrorLogger:     kafkaLogger(r.logger, slog.LevelWarn, "kafka reader error"),
	})
	defer pr.Close()
	if err := pr.SetOffset(a.Offset); err != nil {
		r.fetchErrors.Inc()
		r.logger.Warn("set partition offset", logKeyPartition, a.ID, logKeyOffset, a.Offset, logKeyErr, err)
		return
	}
	for {
		m, err := pr.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.fetchErrors.Inc()
			r.logger.Warn("fetch: retrying", logKeyPartition, a.ID, logKeyErr, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.cfg.JoinGroupBackoff):
			}
			continue
		}
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
		msg := fromKafka(m)
		msg.Generation = genID
		select {
		case r.msgs <- msg:
		case <-ctx.Done():
			return
		}
	}
}

// Fetch returns the next message, blocking until one arrives, ctx ends or
// the Reader is closed (ErrClosed). It does not commit. Messages of a
// generation that has ended are skipped (counted in stale_total).
//
// Group trouble (the coordinator moving or still loading its offsets, as
// on a cluster that is starting or has lost a broker) is counted and
// logged, and Fetch goes on waiting while the Reader rejoins.
func (r *Reader) Fetch(ctx context.Context) (Message, error) {
	for {
		var m Message
		select {
		case <-ctx.Done():
			return Message{}, fmt.Errorf("fetch from %s: %w", r.cfg.Topic, ctx.Err())
		case <-r.closed:
			return Message{}, ErrClosed
		case m = <-r.msgs:
		}
		if m.Generation != r.liveGen.Load() {
			r.stale.Inc()
			continue
		}
		r.fetched.Inc()
		return m, nil
	}
}

// Hold keeps the generation of msgs from ending on this member's side
// until release is called: the partitions stay this member's, and no other
// member starts reading them, while the messages are handled (written and
// committed). The returned context ends when the group wants the
// partitions back (a member joined or left) or ctx ends: stop retrying
// then, finish what is under way, and release. Hold returns ErrRevoked when
// the generation of any of msgs has already ended; drop them uncommitted.
//
// A Hold should last well under RebalanceTimeout: past it the coordinator
// drops this member from the group and gives its partitions away anyway.
func (r *Reader) Hold(ctx context.Context, msgs []Message) (context.Context, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.liveGen.Load()
	for _, m := range msgs {
		if live == 0 || m.Generation != live {
			return nil, nil, fmt.Errorf("hold %d messages of generation %d: %w", len(msgs), m.Generation, ErrRevoked)
		}
	}
	r.holds++
	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.genCtx, cancel)
	var once sync.Once
	release := func() {
		once.Do(func() {
			stop()
			cancel()
			r.mu.Lock()
			r.holds--
			r.mu.Unlock()
			r.drained.Broadcast()
		})
	}
	return hctx, release, nil
}

// Commit commits msgs through their generation: for each partition, the
// group's offset moves past the highest offset given. Call it only after
// the messages were handled. It returns once the coordinator has accepted
// the commit, or ErrRevoked when their generation is over (the commit
// would be refused; the messages will be read again).
func (r *Reader) Commit(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %d messages to group %s: %w", len(msgs), r.cfg.GroupID, err)
	}
	// A commit is valid while its generation is live, or has ended but is
	// still waiting for open Holds (this commit may be one's last step):
	// until then this member has not rejoined, so the coordinator accepts
	// the generation. The commit counts as a Hold meanwhile, so the
	// generation cannot finish ending under it.
	r.mu.Lock()
	gen := r.gen
	ok := gen != nil && (r.liveGen.Load() == int64(gen.ID) || r.holds > 0)
	for _, m := range msgs {
		ok = ok && m.Generation == int64(gen.ID)
	}
	if ok {
		r.holds++
	}
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("commit %d messages of generation %d to group %s: %w", len(msgs), msgs[0].Generation, r.cfg.GroupID, ErrRevoked)
	}
	defer func() {
		r.mu.Lock()
		r.holds--
		r.mu.Unlock()
		r.drained.Broadcast()
	}()
	offsets := map[string]map[int]int64{}
	for _, m := range msgs {
		p := offsets[m.Topic]
		if p == nil {
			p = map[int]int64{}
			offsets[m.Topic] = p
		}
		p[m.Partition] = max(p[m.Partition], m.Offset+1)
	}
	if err := gen.CommitOffsets(offsets); err != nil {
		r.commitErrors.Inc()
		if errors.Is(err, kafka.IllegalGeneration) || errors.Is(err, kafka.UnknownMemberId) ||
			errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.FencedInstanceID) {
			err = fmt.Errorf("%w: %w", ErrRevoked, err)
		}
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

// Close leaves the group (so its partitions move to other members at once;
// open Holds are waited for first) and stops the background fetching.
// Uncommitted messages will be delivered again to whoever reads the
// partition next.
func (r *Reader) Close() error {
	r.once.Do(func() {
		r.stop()
		r.cg.Close() // ends the generation (the guard waits for Holds) and leaves the group
		<-r.done
		r.mu.Lock()
		if r.tr != nil {
			r.tr.CloseIdleConnections()
		}
		r.mu.Unlock()
		close(r.closed)
	})
	return nil
}
