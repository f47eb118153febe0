package eventlog

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/loopgate/loopgate/deps"
)

// EmbeddedConfig configures an embedded broker.
type EmbeddedConfig struct {
	// DataDir keeps the log, topics and committed group offsets across
	// restarts. Empty keeps everything in memory.
	DataDir string
	// Port to listen on, on 127.0.0.1. 0 picks a free port; restart on the
	// same port by passing the Port of the previous instance.
	Port int
	// Topics are created at start if missing (the policy topic compacted).
	// Default DefaultTopicsConfig().
	Topics TopicsConfig
	// SyncWrites fsyncs every produce before acknowledging it, as a real
	// broker with flush.messages=1 would. Default false: data reaches the
	// disk on segment roll and on Close, like Kafka's default.
	SyncWrites bool
	// StartTimeout bounds the topic creation at start. Default 10 s.
	StartTimeout time.Duration
}

// DefaultEmbeddedConfig returns an in-memory broker on a free port with the
// default topics.
func DefaultEmbeddedConfig() EmbeddedConfig {
	return EmbeddedConfig{Topics: DefaultTopicsConfig(), StartTimeout: 10 * time.Second}
}

// Validate reports the first invalid field, or nil.
func (c EmbeddedConfig) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("embedded config: Port %d out of range", c.Port)
	}
	if c.StartTimeout <= 0 {
		return fmt.Errorf("embedded config: StartTimeout must be positive, got %v", c.StartTimeout)
	}
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("embedded config: %w", err)
	}
	return nil
}

// Embedded is a single-node Kafka-protocol broker running in this process
// (github.com/twmb/franz-go/pkg/kfake), for development and tests. It speaks
// the protocol kafka-go uses: produce, fetch, consumer groups and offset
// commits, topic creation with configs.
type Embedded struct {
	c    *kfake.Cluster
	addr string
	port int

	once sync.Once
}

// StartEmbedded starts a broker listening on 127.0.0.1 and creates the
// configured topics.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, d deps.Deps) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := d.Log()
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("loopgate-embedded"),
		kfake.WithLogger(kfakeLogger{logger}),
		// Let tests use short sessions; clients still pick their own.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if cfg.Port != 0 {
		opts = append(opts, kfake.Ports(cfg.Port))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	addr := c.ListenAddrs()[0]
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	e := &Embedded{c: c, addr: addr, port: port}

	// The topics go through the broker's own CreateTopics handler, the only
	// way to give the policy topic its cleanup.policy. This is a loopback
	// call to a listener in this process, bounded by StartTimeout; it has no
	// caller context because StartEmbedded is a constructor.
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := EnsureTopics(ctx, []string{addr}, cfg.Topics); err != nil {
		c.Close()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	logger.Info("embedded kafka broker started", logKeyAddr, addr, logKeyDir, cfg.DataDir)
	return e, nil
}

// Addr returns the broker's host:port.
func (e *Embedded) Addr() string { return e.addr }

// Brokers returns Addr as a bootstrap list.
func (e *Embedded) Brokers() []string { return []string{e.addr} }

// Port returns the port the broker listens on.
func (e *Embedded) Port() int { return e.port }

// Close stops the broker, closing every client connection, and (with a
// DataDir) writes its state to disk. It is idempotent.
func (e *Embedded) Close() error {
	e.once.Do(e.c.Close)
	return nil
}
