package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/warehouse"
)

// process is what the components of one loopgate process share: the
// logger and the metrics registry (with Go and process metrics).
type process struct {
	log *slog.Logger
	reg *prometheus.Registry
}

func newProcess(log *slog.Logger) process {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return process{log: log, reg: reg}
}

// deps are a component's dependencies: the process's registry, its logger
// with the component named once, and the wall clock.
func (p process) deps(component string) deps.Deps {
	return deps.Deps{Logger: p.log.With("component", component), Registerer: p.reg}
}

func topicsConfig(cfg Config) eventlog.TopicsConfig {
	t := eventlog.DefaultTopicsConfig()
	t.Outcomes, t.Policy, t.DLQ = cfg.Kafka.OutcomesTopic, cfg.Kafka.PolicyTopic, cfg.Kafka.DLQTopic
	t.OutcomesPartitions = cfg.Kafka.Partitions
	t.ReplicationFactor = cfg.Kafka.Replication
	t.Security = cfg.kafkaSecurity()
	return t
}

// kafka returns the brokers to use. With none configured and embedded
// allowed, it starts the embedded broker, whose log lives in the data dir;
// the returned stop function closes it.
func kafka(ctx context.Context, cfg Config, embedded bool, p process) (brokers []string, stop func(), err error) {
	log := p.log.With("component", "broker")
	if len(cfg.Kafka.Brokers) > 0 {
		if err := eventlog.EnsureTopics(ctx, cfg.Kafka.Brokers, topicsConfig(cfg)); err != nil {
			return nil, nil, fmt.Errorf("ensure topics on %v: %w", cfg.Kafka.Brokers, err)
		}
		return cfg.Kafka.Brokers, func() {}, nil
	}
	if !embedded {
		return nil, nil, errors.New("no Kafka brokers configured: set kafka.brokers, LOOPGATE_KAFKA_BROKERS or --brokers (only `loopgate dev` starts an embedded broker)")
	}
	ecfg := eventlog.DefaultEmbeddedConfig()
	ecfg.DataDir = filepath.Join(cfg.DataDir, "kafka")
	ecfg.Port = cfg.Kafka.EmbeddedPort
	ecfg.Topics = topicsConfig(cfg)
	emb, err := eventlog.StartEmbedded(ctx, ecfg, p.deps("broker"))
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded broker: %w", err)
	}
	// StartEmbedded logs where it listens; nothing to add here.
	return emb.Brokers(), func() {
		if err := emb.Close(); err != nil {
			log.Warn("close embedded broker", "err", err)
		}
	}, nil
}

func warehouseConfig(cfg Config) warehouse.Config {
	w := warehouse.DefaultConfig()
	w.Backend = cfg.Warehouse.Backend
	w.Addr = cfg.Warehouse.Addr
	w.Database = cfg.Warehouse.Database
	w.Username = cfg.Warehouse.Username
	w.Password = cfg.Warehouse.Password
	w.TLS = cfg.Warehouse.TLS
	w.LibPath = cfg.Warehouse.LibPath
	w.Cluster, w.InsertQuorum = cfg.Warehouse.Cluster, cfg.Warehouse.InsertQuorum
	w.DataDir = filepath.Join(cfg.DataDir, "chdb")
	return w
}

func openWarehouse(ctx context.Context, cfg Config, d deps.Deps) (*warehouse.Store, error) {
	st, err := warehouse.Open(ctx, warehouseConfig(cfg), d)
	if err != nil {
		return nil, fmt.Errorf("open %s warehouse: %w", cfg.Warehouse.Backend, err)
	}
	return st, nil
}

// ingestPipeline is an Ingester with the reader and DLQ writer it owns.
type ingestPipeline struct {
	ing    *ingest.Ingester
	reader *eventlog.Reader
	dlq    *eventlog.Writer
}

func newIngestPipeline(cfg Config, brokers []string, sink ingest.Sink, p process) (*ingestPipeline, error) {
	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = brokers, cfg.Kafka.OutcomesTopic, cfg.Ingest.Group
	rcfg.Security = cfg.kafkaSecurity()
	reader, err := eventlog.NewReader(rcfg, p.deps("reader"))
	if err != nil {
		return nil, fmt.Errorf("outcome reader: %w", err)
	}
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic, wcfg.Security = brokers, cfg.Kafka.DLQTopic, cfg.kafkaSecurity()
	dlq, err := eventlog.NewWriter(wcfg, p.deps("dlq"))
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("dead-letter writer: %w", err)
	}
	icfg := ingest.DefaultConfig()
	icfg.BatchRows, icfg.BatchWait, icfg.DLQTopic = cfg.Ingest.BatchRows, cfg.Ingest.BatchWait, cfg.Kafka.DLQTopic
	// A batch's partitions stay this member's only while one write lasts
	// less than the group's rebalance timeout (eventlog.Reader.Hold): a
	// write attempt that takes longer is abandoned and retried, same token.
	icfg.WriteTimeout = min(icfg.WriteTimeout, rcfg.RebalanceTimeout*2/3)
	ing, err := ingest.New(icfg, reader, sink, dlq, p.deps("ingest"), ingest.WithLag(reader.Lag))
	if err != nil {
		reader.Close()
		dlq.Close()
		return nil, err
	}
	return &ingestPipeline{ing: ing, reader: reader, dlq: dlq}, nil
}

func (p *ingestPipeline) Run(ctx context.Context) error { return p.ing.Run(ctx) }

func (p *ingestPipeline) Close() error {
	return errors.Join(p.reader.Close(), p.dlq.Close())
}

// newAdmin is the process's one admin server: /metrics, /healthz and
// /readyz with the same bodies in every command, behind the configured
// tokens; each command mounts its own endpoints on it. ready is /readyz's
// check (nil: ready); audits go to the warehouse when there is one (nil:
// every audited change is refused).
func newAdmin(cfg Config, p process, ready func(context.Context) error, store *warehouse.Store) (*admin.Server, error) {
	hooks := admin.Hooks{Gatherer: p.reg, Ready: ready}
	if store != nil {
		hooks.Auditor = auditLog{store}
	}
	srv, err := admin.New(cfg.Admin, hooks, p.deps("admin"))
	if err != nil {
		return nil, fmt.Errorf("admin server: %w", err)
	}
	return srv, nil
}

// auditLog stores the admin server's audit records in the warehouse's
// audit table.
type auditLog struct{ store *warehouse.Store }

func (a auditLog) WriteAudit(ctx context.Context, r admin.AuditRecord) error {
	detail, err := json.Marshal(map[string]json.RawMessage{"old": rawJSON(r.Old), "new": rawJSON(r.New)})
	if err != nil {
		return fmt.Errorf("audit detail: %w", err)
	}
	return a.store.WriteAudit(ctx, warehouse.AuditEntry{Time: r.Time, Actor: r.Actor, Action: r.Action, Detail: string(detail)})
}

// rawJSON is s as JSON, null when empty.
func rawJSON(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

// allReady is a readiness check that passes when every check passes.
func allReady(checks ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// backends is what a distributed-form command connects to: the Kafka
// cluster (never the embedded broker) and the warehouse.
type backends struct {
	brokers []string
	store   *warehouse.Store
}

// connect opens the configured Kafka and warehouse for a command; close
// releases them.
func connect(ctx context.Context, cfg Config, p process) (*backends, error) {
	brokers, _, err := kafka(ctx, cfg, false, p)
	if err != nil {
		return nil, err
	}
	store, err := openWarehouse(ctx, cfg, p.deps("warehouse"))
	if err != nil {
		return nil, err
	}
	return &backends{brokers: brokers, store: store}, nil
}

func (b *backends) close() error { return b.store.Close() }
