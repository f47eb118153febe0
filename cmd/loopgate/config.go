package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/gateway"
	"github.com/loopgate/loopgate/internal/secret"
	"github.com/loopgate/loopgate/internal/tlsconf"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/router"
)

// Config is the one configuration of the loopgate binary. Every field has a
// default (DefaultConfig) and can be set in a YAML file (--config), then in
// the environment (the LOOPGATE_ variable named beside it), then by flags.
type Config struct {
	Kafka     KafkaConfig     `yaml:"kafka"`
	Warehouse WarehouseConfig `yaml:"warehouse"`
	Ingest    IngestConfig    `yaml:"ingest"`
	// Livepeer is the adapter for stock go-livepeer's own gateway events
	// (docs/LIVEPEER.md).
	Livepeer LivepeerConfig `yaml:"livepeer"`
	// Admin is the admin listener every command serves: /metrics,
	// /healthz, /readyz and the command's own endpoints, behind bearer
	// tokens with a read and an admin role (see package admin).
	Admin admin.Config `yaml:"admin"`
	// Orchestrators is the fleet, listed once for every component: the
	// router sends work to them, the optimizer computes their shares and
	// limits and lists them on the advisor endpoints. Each entry: id, url,
	// region, address, stake, max_in_flight and classes with
	// price_per_unit (event.Orchestrator). Reloaded on SIGHUP.
	Orchestrators []event.Orchestrator `yaml:"orchestrators"`
	// Router is the router's own configuration: API keys, timeouts,
	// retries, selection (see package router). Reloaded on SIGHUP.
	Router router.Config `yaml:"router"`
	// Gateway is the business side of the router: customers with their
	// tier, limits and budgets, price books (tiers), how many routers share
	// the limits, allowlists and trusted proxies (see package gateway).
	// Keys stay in router.api_keys, each with its own scope, limits and
	// budgets. Reloaded on SIGHUP.
	Gateway gateway.Config `yaml:"gateway"`
	// Optimizer tunes the slow loop: period, window, λ, priors,
	// exploration, ejection, and the classes with their SLO, value and
	// units (optimizer.catalog.classes).
	Optimizer optimizer.Config `yaml:"optimizer"`
	// RouterAddr is where the router serves the Livepeer AI API.
	// Default "127.0.0.1:8935" (LOOPGATE_ROUTER_ADDR).
	RouterAddr string `yaml:"router_addr"`
	// DurableOutcomes makes the router write every outcome to its spill
	// directory (data_dir/spill) before it is sent, so that the outcome of
	// an answered request survives SIGKILL of the router (see
	// eventlog.PublisherConfig.Durable for the fsync policy). Default true.
	DurableOutcomes bool `yaml:"durable_outcomes"`
	// PolicyWait is how long a router waits at start for the current
	// policy before it serves without one (equal shares until it arrives).
	// Default 10s.
	PolicyWait time.Duration `yaml:"policy_wait"`
	// DataDir holds local state: the embedded broker's log, the embedded
	// ClickHouse, publisher spill files. Default ".var/loopgate" (LOOPGATE_DATA_DIR).
	DataDir string `yaml:"data_dir"`
}

// KafkaConfig says where the event log is.
type KafkaConfig struct {
	// Brokers is the bootstrap list. Empty: `dev` starts the embedded
	// broker; other commands refuse to run. (LOOPGATE_KAFKA_BROKERS, comma-separated)
	Brokers []string `yaml:"brokers"`
	// EmbeddedPort is the 127.0.0.1 port of the embedded broker. Default 19192; 0 picks a free one.
	EmbeddedPort int `yaml:"embedded_port"`
	// OutcomesTopic. Default "loopgate.outcomes".
	OutcomesTopic string `yaml:"outcomes_topic"`
	// PolicyTopic (compacted). Default "loopgate.policy".
	PolicyTopic string `yaml:"policy_topic"`
	// DLQTopic receives outcomes that cannot be ingested. Default "loopgate.outcomes.dlq".
	DLQTopic string `yaml:"dlq_topic"`
	// Partitions of the outcomes topic when loopgate creates it. Default 6.
	Partitions int `yaml:"partitions"`
	// Replication factor of topics loopgate creates. Default 1; use 3 in production.
	Replication int `yaml:"replication"`
	// Security applies to every Kafka connection of the process (publisher,
	// readers, dead-letter writers, policy log, topic creation); ignored
	// for the embedded broker, which is plaintext on 127.0.0.1.
	//   tls: enabled (default false), ca_file (default: system roots),
	//        cert_file + key_file (client certificate, for mTLS),
	//        server_name, insecure_skip_verify (tests only)
	//   sasl: mechanism ("", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; default ""),
	//         username, password_file; or the password in
	//         LOOPGATE_KAFKA_SASL_PASSWORD. Never in this file, never printed.
	// Kafka's SASL_SSL is tls.enabled with a sasl.mechanism.
	eventlog.Security `yaml:",inline"`
}

// WarehouseConfig says where ClickHouse is.
type WarehouseConfig struct {
	// Backend is "embedded" (chDB in this process) or "server" (a ClickHouse
	// server over the native protocol). Default "embedded" (LOOPGATE_WAREHOUSE_BACKEND).
	Backend string `yaml:"backend"`
	// Addr of the server's native protocol. Default "127.0.0.1:9000" (LOOPGATE_CLICKHOUSE_ADDR).
	Addr string `yaml:"addr"`
	// Database. Default "loopgate" (LOOPGATE_CLICKHOUSE_DATABASE).
	Database string `yaml:"database"`
	// Username. Default "default" (LOOPGATE_CLICKHOUSE_USER).
	Username string `yaml:"username"`
	// Password. Default empty (LOOPGATE_CLICKHOUSE_PASSWORD, which wins
	// over password_file). Prefer password_file or the environment to
	// writing it here; print-config masks it.
	Password string `yaml:"password"`
	// PasswordFile holds the password (one line), read at start when no
	// password is set otherwise. Default empty.
	PasswordFile string `yaml:"password_file"`
	// TLS for the server backend: enabled, ca_file, cert_file, key_file,
	// server_name, insecure_skip_verify (as for kafka.tls). With TLS on,
	// addr is the server's secure native port (tcp_port_secure, usually
	// 9440). Default off.
	TLS tlsconf.Config `yaml:"tls"`
	// LibPath of libchdb.so for the embedded backend. Default: $LOOPGATE_CHDB_LIB, then $CHDB_LIB_PATH.
	LibPath string `yaml:"lib_path"`
	// Cluster is the ClickHouse cluster (remote_servers) the schema is laid
	// out for: replicated tables under Distributed ones, created ON
	// CLUSTER (warehouse.Config.Cluster). Empty: one server. Default empty
	// (LOOPGATE_CLICKHOUSE_CLUSTER).
	Cluster string `yaml:"cluster"`
	// InsertQuorum on a cluster: replicas that must hold an insert before
	// it counts as stored (warehouse.Config.InsertQuorum, with its price);
	// 0 or 1: the one written to. Default 0.
	InsertQuorum int `yaml:"insert_quorum"`
}

// IngestConfig tunes the Kafka → ClickHouse consumer.
type IngestConfig struct {
	// Group is the consumer group id. Default "loopgate-ingest".
	Group string `yaml:"group"`
	// BatchRows flushes a batch at this many rows. Default 10000.
	BatchRows int `yaml:"batch_rows"`
	// BatchWait flushes a non-empty batch after this long. Default 1s.
	BatchWait time.Duration `yaml:"batch_wait"`
}

// LivepeerConfig says where stock go-livepeer publishes its gateway events
// and how they are read: `ingest` (and `dev --livepeer-events`) adapt them
// into the livepeer_* tables; the optimizer reads those as priors.
type LivepeerConfig struct {
	// Topic is go-livepeer's -kafkaGatewayTopic. Empty: no adapter runs
	// (`dev --livepeer-events` uses "livepeer.gateway") (LOOPGATE_LIVEPEER_TOPIC).
	Topic string `yaml:"topic"`
	// Group is the adapter's consumer group id. Default "loopgate-livepeer".
	Group string `yaml:"group"`
	// DLQTopic receives the events that cannot be stored. Default "loopgate.livepeer.dlq".
	DLQTopic string `yaml:"dlq_topic"`
	// PublicAdvisor serves GET /orchestrators/webhook and
	// /orchestrators/perf-stats on the admin port without a token: stock
	// go-livepeer reads -orchWebhookUrl and -orchPerfStatsUrl with no
	// Authorization header. They list orchestrator URLs and scores only.
	// Default false (a read token is needed).
	PublicAdvisor bool `yaml:"public_advisor"`
	// Priors tunes how the optimizer uses the events for orchestrators
	// without outcomes: window (default 1h), discovery_trips (default 2),
	// usd_per_eth (default 3000).
	Priors optimizer.PriorsConfig `yaml:"priors"`
}

// DefaultConfig returns every default documented on the fields.
func DefaultConfig() Config {
	return Config{
		DataDir: ".var/loopgate",
		Kafka: KafkaConfig{
			EmbeddedPort:  19192,
			OutcomesTopic: "loopgate.outcomes",
			PolicyTopic:   "loopgate.policy",
			DLQTopic:      "loopgate.outcomes.dlq",
			Partitions:    6,
			Replication:   1,
		},
		Warehouse:       WarehouseConfig{Backend: "embedded", Addr: "127.0.0.1:9000", Database: "loopgate", Username: "default"},
		Ingest:          IngestConfig{Group: "loopgate-ingest", BatchRows: 10000, BatchWait: time.Second},
		Livepeer:        LivepeerConfig{Group: "loopgate-livepeer", DLQTopic: "loopgate.livepeer.dlq", Priors: optimizer.DefaultPriorsConfig()},
		Admin:           admin.DefaultConfig(),
		Router:          router.DefaultConfig(),
		Gateway:         gateway.DefaultConfig(),
		RouterAddr:      "127.0.0.1:8935",
		PolicyWait:      10 * time.Second,
		DurableOutcomes: true,
		Optimizer:       optimizer.DefaultConfig(),
	}
}

// kafkaSecurity is the security of the configured brokers; none for the
// embedded broker (no brokers configured), which is plaintext.
func (c Config) kafkaSecurity() eventlog.Security {
	if len(c.Kafka.Brokers) == 0 {
		return eventlog.Security{}
	}
	return c.Kafka.Security
}

// RouterConfig is the router's configuration with the fleet in it.
func (c Config) RouterConfig() router.Config {
	r := c.Router
	r.Orchestrators = c.Orchestrators
	return r
}

// OptimizerConfig is the optimizer's configuration with the fleet in its
// catalog.
func (c Config) OptimizerConfig() optimizer.Config {
	o := c.Optimizer
	o.Catalog.Orchestrators = c.Orchestrators
	return o
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Warehouse.Backend != "embedded" && c.Warehouse.Backend != "server" {
		errs = append(errs, fmt.Errorf("warehouse.backend %q: want embedded or server", c.Warehouse.Backend))
	}
	if c.Kafka.Partitions <= 0 || c.Kafka.Replication <= 0 {
		errs = append(errs, fmt.Errorf("kafka.partitions %d and kafka.replication %d must be positive", c.Kafka.Partitions, c.Kafka.Replication))
	}
	if c.Ingest.BatchRows <= 0 || c.Ingest.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("ingest.batch_rows %d and ingest.batch_wait %v must be positive", c.Ingest.BatchRows, c.Ingest.BatchWait))
	}
	if len(c.Kafka.Brokers) > 0 {
		if err := c.Kafka.Security.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.Warehouse.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("warehouse.%w", err))
	}
	if c.Livepeer.Group == "" || c.Livepeer.DLQTopic == "" {
		errs = append(errs, errors.New("livepeer.group and livepeer.dlq_topic are required"))
	}
	if err := c.Livepeer.Priors.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is required"))
	}
	if err := c.Admin.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.PolicyWait < 0 {
		errs = append(errs, fmt.Errorf("policy_wait %v is negative", c.PolicyWait))
	}
	if err := c.RouterConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.OptimizerConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateGateway(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadConfig builds the config from defaults, the file, then the environment.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("parse config %s: %w", path, err)
		}
	}
	setString := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	if v := getenv("LOOPGATE_KAFKA_BROKERS"); v != "" {
		cfg.Kafka.Brokers = splitList(v)
	}
	setString(&cfg.DataDir, "LOOPGATE_DATA_DIR")
	setString(&cfg.Warehouse.Backend, "LOOPGATE_WAREHOUSE_BACKEND")
	setString(&cfg.Warehouse.Addr, "LOOPGATE_CLICKHOUSE_ADDR")
	setString(&cfg.Warehouse.Database, "LOOPGATE_CLICKHOUSE_DATABASE")
	setString(&cfg.Warehouse.Cluster, "LOOPGATE_CLICKHOUSE_CLUSTER")
	setString(&cfg.Warehouse.Username, "LOOPGATE_CLICKHOUSE_USER")
	setString(&cfg.Warehouse.Password, "LOOPGATE_CLICKHOUSE_PASSWORD")
	setString(&cfg.Admin.Addr, "LOOPGATE_ADMIN_ADDR")
	setString(&cfg.RouterAddr, "LOOPGATE_ROUTER_ADDR")
	setString(&cfg.Livepeer.Topic, "LOOPGATE_LIVEPEER_TOPIC")
	if v := getenv("LOOPGATE_KAFKA_SASL_PASSWORD"); v != "" {
		cfg.Kafka.SASL.Password = secret.String(v)
	}
	if cfg.Warehouse.Password == "" && cfg.Warehouse.PasswordFile != "" {
		pw, err := secret.FromFile(cfg.Warehouse.PasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("warehouse.password_file: %w", err)
		}
		cfg.Warehouse.Password = pw.Reveal()
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// commonFlags registers the flags every command shares and returns a
// function that loads the config once the flags are parsed.
func commonFlags(fs *flag.FlagSet) func() (Config, error) {
	path := fs.String("config", "", "YAML config `file` (see 'loopgate dev --print-config' for every field)")
	brokers := fs.String("brokers", "", "Kafka bootstrap `list`, comma-separated (overrides kafka.brokers)")
	backend := fs.String("warehouse", "", "warehouse backend: embedded or server (overrides warehouse.backend)")
	chAddr := fs.String("clickhouse", "", "ClickHouse server native `addr`ess (overrides warehouse.addr; implies --warehouse server)")
	dataDir := fs.String("data-dir", "", "`dir`ectory for local state (overrides data_dir)")
	admin := fs.String("admin", "", "admin listener `addr`ess for /metrics and /healthz (overrides admin.addr)")
	return func() (Config, error) {
		cfg, err := loadConfig(*path, os.Getenv)
		if err != nil {
			return cfg, err
		}
		if *brokers != "" {
			cfg.Kafka.Brokers = splitList(*brokers)
		}
		if *chAddr != "" {
			cfg.Warehouse.Addr, cfg.Warehouse.Backend = *chAddr, "server"
		}
		if *backend != "" {
			cfg.Warehouse.Backend = *backend
		}
		if *dataDir != "" {
			cfg.DataDir = *dataDir
		}
		if *admin != "" {
			cfg.Admin.Addr = *admin
		}
		return cfg, cfg.Validate()
	}
}
