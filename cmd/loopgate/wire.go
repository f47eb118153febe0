package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/loopgate/loopgate/deps"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/warehouse"
)

// newRegistry is the process's metrics registry, with Go and process metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func topicsConfig(cfg Config) eventlog.TopicsConfig {
	t := eventlog.DefaultTopicsConfig()
	t.Outcomes, t.Policy, t.DLQ = cfg.Kafka.OutcomesTopic, cfg.Kafka.PolicyTopic, cfg.Kafka.DLQTopic
	t.OutcomesPartitions = cfg.Kafka.Partitions
	t.ReplicationFactor = cfg.Kafka.Replication
	return t
}

// kafka returns the brokers to use. With none configured and embedded
// allowed, it starts the embedded broker, whose log lives in the data dir;
// the returned stop function closes it.
func kafka(ctx context.Context, cfg Config, embedded bool, log *slog.Logger) (brokers []string, stop func(), err error) {
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
	emb, err := eventlog.StartEmbedded(ctx, ecfg, deps.Deps{Logger: log.With("component", "broker")})
	if err != nil {
		return nil, nil, fmt.Errorf("start embedded broker: %w", err)
	}
	log.Info("embedded kafka broker started", "addr", emb.Addr(), "data_dir", ecfg.DataDir)
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
	w.LibPath = cfg.Warehouse.LibPath
	w.DataDir = filepath.Join(cfg.DataDir, "chdb")
	return w
}

func openWarehouse(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*warehouse.Store, error) {
	st, err := warehouse.Open(ctx, warehouseConfig(cfg), deps.Deps{Logger: log, Registerer: reg})
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

func newIngestPipeline(cfg Config, brokers []string, sink ingest.Sink, log *slog.Logger, reg prometheus.Registerer) (*ingestPipeline, error) {
	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = brokers, cfg.Kafka.OutcomesTopic, cfg.Ingest.Group
	reader, err := eventlog.NewReader(rcfg, deps.Deps{Logger: log.With("component", "reader"), Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("outcome reader: %w", err)
	}
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic = brokers, cfg.Kafka.DLQTopic
	dlq, err := eventlog.NewWriter(wcfg, deps.Deps{Logger: log.With("component", "dlq"), Registerer: reg})
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("dead-letter writer: %w", err)
	}
	icfg := ingest.DefaultConfig()
	icfg.BatchRows, icfg.BatchWait, icfg.DLQTopic = cfg.Ingest.BatchRows, cfg.Ingest.BatchWait, cfg.Kafka.DLQTopic
	ing, err := ingest.New(icfg, reader, sink, dlq, deps.Deps{Logger: log.With("component", "ingest"), Registerer: reg}, ingest.WithLag(reader.Lag))
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

// serveAdmin serves /metrics, /healthz and /readyz on addr until ctx ends.
// An empty addr disables it.
func serveAdmin(ctx context.Context, addr string, reg *prometheus.Registry, ready func(context.Context) error, extra map[string]http.Handler, log *slog.Logger) error {
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			if err := ready(r.Context()); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return serveHTTP(ctx, addr, mux, log.With("component", "admin"))
}

// serveHTTP runs an HTTP server on addr until ctx ends, then shuts it down
// gracefully.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down %s: %w", addr, err)
	}
	<-errc
	return nil
}

// backends is what a distributed-form command connects to: the Kafka
// cluster (never the embedded broker) and the warehouse.
type backends struct {
	reg     *prometheus.Registry
	brokers []string
	store   *warehouse.Store
}

// connect opens the configured Kafka and warehouse for a command; close
// releases them.
func connect(ctx context.Context, cfg Config, log *slog.Logger) (*backends, error) {
	reg := newRegistry()
	brokers, _, err := kafka(ctx, cfg, false, log)
	if err != nil {
		return nil, err
	}
	store, err := openWarehouse(ctx, cfg, log, reg)
	if err != nil {
		return nil, err
	}
	return &backends{reg: reg, brokers: brokers, store: store}, nil
}

func (b *backends) close() error { return b.store.Close() }
