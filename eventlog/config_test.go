package eventlog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/eventlog"
)

// validateCase is one row of a config validation table: mut breaks (or
// keeps) a valid config and wantErr names the field the error must mention
// ("" for valid).
type validateCase[C any] struct {
	name    string
	mut     func(c *C)
	wantErr string
}

func runValidate[C any](t *testing.T, valid func() C, validate func(C) error, tests []validateCase[C]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mut(&c)
			err := validate(c)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestReaderConfigValidate(t *testing.T) {
	runValidate(t, func() eventlog.ReaderConfig {
		c := eventlog.DefaultReaderConfig()
		c.Brokers, c.Topic, c.GroupID = []string{"b:9092"}, eventlog.TopicOutcomes, "ingest"
		return c
	}, eventlog.ReaderConfig.Validate, []validateCase[eventlog.ReaderConfig]{
		{"defaults", func(*eventlog.ReaderConfig) {}, ""},
		{"no group", func(c *eventlog.ReaderConfig) { c.GroupID = "" }, "GroupID"},
		{"no topic", func(c *eventlog.ReaderConfig) { c.Topic = "" }, "Topic"},
		{"no brokers", func(c *eventlog.ReaderConfig) { c.Brokers = nil }, "Brokers"},
		{"heartbeat not below session", func(c *eventlog.ReaderConfig) { c.HeartbeatInterval = c.SessionTimeout }, "HeartbeatInterval"},
		{"zero max wait", func(c *eventlog.ReaderConfig) { c.MaxWait = 0 }, "MaxWait"},
		{"min above max bytes", func(c *eventlog.ReaderConfig) { c.MinBytes = c.MaxBytes + 1 }, "MinBytes"},
	})
}

func TestWriterConfigValidate(t *testing.T) {
	runValidate(t, func() eventlog.WriterConfig {
		c := eventlog.DefaultWriterConfig()
		c.Brokers, c.Topic = []string{"b:9092"}, eventlog.TopicPolicy
		return c
	}, eventlog.WriterConfig.Validate, []validateCase[eventlog.WriterConfig]{
		{"defaults", func(*eventlog.WriterConfig) {}, ""},
		{"no topic", func(c *eventlog.WriterConfig) { c.Topic = "" }, "Topic"},
		{"zero timeout", func(c *eventlog.WriterConfig) { c.WriteTimeout = 0 }, "WriteTimeout"},
		{"bad compression", func(c *eventlog.WriterConfig) { c.Compression = "lzma" }, "compression"},
	})
}

func TestTopicsConfigValidate(t *testing.T) {
	runValidate(t, eventlog.DefaultTopicsConfig, eventlog.TopicsConfig.Validate, []validateCase[eventlog.TopicsConfig]{
		{"defaults", func(*eventlog.TopicsConfig) {}, ""},
		{"same name twice", func(c *eventlog.TopicsConfig) { c.DLQ = c.Outcomes }, "both"},
		{"invalid character", func(c *eventlog.TopicsConfig) { c.Policy = "policy/v1" }, "Policy"},
		{"too long", func(c *eventlog.TopicsConfig) { c.Outcomes = strings.Repeat("x", 250) }, "Outcomes"},
		{"zero partitions", func(c *eventlog.TopicsConfig) { c.OutcomesPartitions = 0 }, "OutcomesPartitions"},
		{"zero replication", func(c *eventlog.TopicsConfig) { c.ReplicationFactor = 0 }, "ReplicationFactor"},
	})
}

func TestEmbeddedConfigValidate(t *testing.T) {
	runValidate(t, eventlog.DefaultEmbeddedConfig, eventlog.EmbeddedConfig.Validate, []validateCase[eventlog.EmbeddedConfig]{
		{"defaults", func(*eventlog.EmbeddedConfig) {}, ""},
		{"port out of range", func(c *eventlog.EmbeddedConfig) { c.Port = 70000 }, "Port"},
		{"zero start timeout", func(c *eventlog.EmbeddedConfig) { c.StartTimeout = 0 }, "StartTimeout"},
		{"bad topics", func(c *eventlog.EmbeddedConfig) { c.Topics.Policy = "" }, "Policy"},
		{"fixed port", func(c *eventlog.EmbeddedConfig) { c.Port = 19099; c.StartTimeout = time.Second }, ""},
	})
}
