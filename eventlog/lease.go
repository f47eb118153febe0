package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/deps"
)

// Lease defaults.
const (
	// LeaseGroup is the default consumer group of the optimizer lease.
	LeaseGroup = "loopgate.optimizer"
	// LeaseTopic is the default one-partition topic whose partition is the lease.
	LeaseTopic = "loopgate.optimizer.lease"
)

// LeaseConfig says where a lease is held and how fast a dead holder loses it.
type LeaseConfig struct {
	// Brokers is the bootstrap list. Required.
	Brokers []string
	// Group is the consumer group every candidate joins. Default LeaseGroup.
	Group string
	// Topic is the one-partition topic whose partition 0 is the lease; it is
	// created if missing (nothing is ever written to it). Default LeaseTopic.
	Topic string
	// ReplicationFactor of the lease topic when it is created. Default 1.
	ReplicationFactor int
	// SessionTimeout is how long the coordinator waits for a silent holder
	// before it gives the lease to another member: the takeover time is
	// about SessionTimeout + HeartbeatInterval. Brokers refuse less than
	// their group.min.session.timeout.ms (Kafka's default 6s). Default 6s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a member tells the coordinator it is
	// alive, and so how soon it learns of a rebalance. Default 1s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long the coordinator waits for members to
	// rejoin during a rebalance. Default 6s.
	RebalanceTimeout time.Duration
	// RetryBackoff is the wait after the group could not be joined. Default 1s.
	RetryBackoff time.Duration
	// Security is how connections to the brokers are made (TLS, SASL).
	// Default: plaintext, no authentication.
	Security Security
}

// DefaultLeaseConfig returns the defaults documented on the fields.
func DefaultLeaseConfig() LeaseConfig {
	return LeaseConfig{
		Group: LeaseGroup, Topic: LeaseTopic, ReplicationFactor: 1,
		SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second,
		RebalanceTimeout: 6 * time.Second, RetryBackoff: time.Second,
	}
}

// Validate reports settings that cannot work.
func (c LeaseConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("lease: no brokers"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("lease: empty group"))
	}
	if err := validTopicName(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("lease: %w", err))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("lease: replication factor %d must be at least 1", c.ReplicationFactor))
	}
	if c.SessionTimeout <= 0 || c.HeartbeatInterval <= 0 || c.RebalanceTimeout <= 0 || c.RetryBackoff <= 0 {
		errs = append(errs, errors.New("lease: session timeout, heartbeat interval, rebalance timeout and retry backoff must be positive"))
	}
	if c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("lease: heartbeat interval %v must be below the session timeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	return errors.Join(errs...)
}

// Lease is a leadership lease held through Kafka group membership: every
// candidate joins one consumer group on a one-partition topic, and the
// member the coordinator assigns partition 0 holds the lease for that group
// generation. The generation id is the lease's epoch: it grows with every
// rebalance, so two holders never share one.
//
// The coordinator moves the lease when the holder leaves (a clean stop
// leaves the group at once) or stops heartbeating for SessionTimeout (a
// crash). A holder cut off from the coordinator learns it lost the lease at
// its next failed heartbeat, so for up to about one HeartbeatInterval two
// processes may both believe they hold it; a caller that must never act
// twice derives what it publishes from the epoch (the optimizer's policy
// versions do).
type Lease struct {
	cfg LeaseConfig
	sec client // resolved Security
	log *slog.Logger
}

// NewLease returns a lease on cfg's brokers. It connects in Run.
func NewLease(cfg LeaseConfig, d deps.Deps) (*Lease, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := cfg.Security.resolve()
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", cfg.Group, err)
	}
	return &Lease{cfg: cfg, sec: sec, log: d.Log().With(logKeyGroup, cfg.Group, logKeyTopic, cfg.Topic)}, nil
}

// Run competes for the lease until ctx ends, and returns nil then. Each time
// this member gets it, Run calls hold with a context that ends when the lease
// is lost and the generation's epoch; hold must return promptly once its
// context ends (the next generation waits for it). An error from hold is
// returned by Run.
func (l *Lease) Run(ctx context.Context, hold func(ctx context.Context, epoch int64) error) error {
	if err := l.ensureTopic(ctx); err != nil {
		return err
	}
	sticky := &stickyBalancer{}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                l.cfg.Group,
		GroupBalancers:    []kafka.GroupBalancer{sticky},
		Brokers:           l.cfg.Brokers,
		Dialer:            l.sec.dialer(),
		Topics:            []string{l.cfg.Topic},
		HeartbeatInterval: l.cfg.HeartbeatInterval,
		SessionTimeout:    l.cfg.SessionTimeout,
		RebalanceTimeout:  l.cfg.RebalanceTimeout,
		JoinGroupBackoff:  l.cfg.RetryBackoff,
		Logger:            kafkaLogger(l.log, slog.LevelDebug, "kafka lease"),
		ErrorLogger:       kafkaLogger(l.log, slog.LevelDebug, "kafka lease error"),
	})
	if err != nil {
		return fmt.Errorf("lease group %s: %w", l.cfg.Group, err)
	}
	defer cg.Close() // leaves the group, so a clean stop hands the lease over at once
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			l.log.Warn("lease group unavailable; joining again", logKeyErr, err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(l.cfg.RetryBackoff):
			}
			continue
		}
		// Set before the next join, which the group may start at any
		// moment: a holder keeps claiming the lease until a generation
		// gives it to someone else.
		sticky.holding.Store(holds(gen, l.cfg.Topic))
		if !holds(gen, l.cfg.Topic) {
			l.log.Info("lease standby", "epoch", gen.ID)
			continue // Next blocks until the generation ends
		}
		l.log.Info("lease acquired", "epoch", gen.ID)
		errc := make(chan error, 1)
		gen.Start(func(gctx context.Context) {
			// The generation's context ends with the generation; ctx ends
			// with Run. hold sees whichever comes first.
			hctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(gctx, cancel)
			defer stop()
			errc <- hold(hctx, int64(gen.ID))
		})
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			l.log.Info("lease lost", "epoch", gen.ID)
		case <-ctx.Done():
			<-errc
			return nil
		}
	}
}

// stickyBalancer keeps the lease where it is when a member joins: each
// member says in its join metadata whether it holds the lease, and the
// group leader gives partition 0 to the holder, or, with none (the holder
// died or left), to the member with the smallest id. Without it a standby
// that (re)joins could take the lease from a healthy holder.
type stickyBalancer struct {
	holding atomic.Bool
}

const leaseProtocol = "loopgate-lease-v1"

func (b *stickyBalancer) ProtocolName() string { return leaseProtocol }

func (b *stickyBalancer) UserData() ([]byte, error) {
	if b.holding.Load() {
		return []byte{1}, nil
	}
	return []byte{0}, nil
}

func (b *stickyBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	holder := members[0].ID
	for _, m := range members {
		if len(m.UserData) == 1 && m.UserData[0] == 1 {
			holder = m.ID
			break
		}
	}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
	}
	for _, p := range partitions {
		out[holder][p.Topic] = append(out[holder][p.Topic], p.ID)
	}
	return out
}

// holds reports whether gen assigns this member partition 0 of topic.
func holds(gen *kafka.Generation, topic string) bool {
	for _, a := range gen.Assignments[topic] {
		if a.ID == 0 {
			return true
		}
	}
	return false
}

// ensureTopic creates the lease topic (one partition) if it is missing.
func (l *Lease) ensureTopic(ctx context.Context) error {
	tr := l.sec.transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(l.cfg.Brokers...), Transport: tr}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: l.cfg.Topic, NumPartitions: 1, ReplicationFactor: l.cfg.ReplicationFactor,
	}}})
	if err != nil {
		return fmt.Errorf("create lease topic %s: %w", l.cfg.Topic, err)
	}
	if err := resp.Errors[l.cfg.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create lease topic %s: %w", l.cfg.Topic, err)
	}
	return nil
}
