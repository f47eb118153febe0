package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/event"
)

// PolicyMaxMessageBytes is the policy topic's max.message.bytes, set when
// EnsureTopics creates it, and the policy log's own bound on what it writes
// and fetches: event.MaxPolicyEncodedSize plus room for the record's key
// and framing. The broker's default (1 MB) is below what a policy of a
// few thousand orchestrators encodes to; the outcome topics keep it. A
// policy topic created before this setting needs it added by hand:
//
//	kafka-configs.sh --alter --entity-type topics --entity-name loopgate.policy \
//	  --add-config max.message.bytes=4259840
const PolicyMaxMessageBytes = event.MaxPolicyEncodedSize + 64<<10

// Topic names of the event log.
const (
	// TopicOutcomes carries one event.Outcome per client request, keyed by
	// request id, so every event of one request lands on one partition.
	TopicOutcomes = "loopgate.outcomes"
	// TopicPolicy carries every event.Policy the optimizer publishes. It is
	// compacted: the latest policy per key survives forever.
	TopicPolicy = "loopgate.policy"
	// TopicOutcomesDLQ receives outcome records ingest could not decode or
	// store, with the failure in a header.
	TopicOutcomesDLQ = "loopgate.outcomes.dlq"
)

// TopicsConfig names the topics of the event log and how EnsureTopics creates
// them. Topics that already exist are left as they are.
type TopicsConfig struct {
	// Outcomes is the outcome topic. Default TopicOutcomes.
	Outcomes string
	// OutcomesPartitions is the partition count of a new outcome topic; it
	// bounds ingest parallelism. Default 6.
	OutcomesPartitions int
	// Policy is the compacted policy topic. Default TopicPolicy.
	Policy string
	// PolicyPartitions is the partition count of a new policy topic. One keeps
	// every policy in one total order. Default 1.
	PolicyPartitions int
	// DLQ is the outcome dead-letter topic. Default TopicOutcomesDLQ.
	DLQ string
	// DLQPartitions is the partition count of a new dead-letter topic.
	// Default 1.
	DLQPartitions int
	// ReplicationFactor of new topics. Use 3 on a production cluster.
	// Default 1.
	ReplicationFactor int
	// Security is how EnsureTopics connects (TLS, SASL). Default:
	// plaintext, no authentication.
	Security Security
}

// DefaultTopicsConfig returns the default topic layout.
func DefaultTopicsConfig() TopicsConfig {
	return TopicsConfig{
		Outcomes:           TopicOutcomes,
		OutcomesPartitions: 6,
		Policy:             TopicPolicy,
		PolicyPartitions:   1,
		DLQ:                TopicOutcomesDLQ,
		DLQPartitions:      1,
		ReplicationFactor:  1,
	}
}

// Validate reports the first invalid field, or nil.
func (c TopicsConfig) Validate() error {
	names := map[string]string{"Outcomes": c.Outcomes, "Policy": c.Policy, "DLQ": c.DLQ}
	seen := map[string]string{}
	for _, field := range []string{"Outcomes", "Policy", "DLQ"} {
		n := names[field]
		if err := validTopicName(n); err != nil {
			return fmt.Errorf("topics config: %s: %w", field, err)
		}
		if other, dup := seen[n]; dup {
			return fmt.Errorf("topics config: %s and %s are both %q", other, field, n)
		}
		seen[n] = field
	}
	for field, n := range map[string]int{"OutcomesPartitions": c.OutcomesPartitions, "PolicyPartitions": c.PolicyPartitions, "DLQPartitions": c.DLQPartitions, "ReplicationFactor": c.ReplicationFactor} {
		if n < 1 {
			return fmt.Errorf("topics config: %s must be at least 1, got %d", field, n)
		}
	}
	return nil
}

func (c TopicsConfig) specs() []kafka.TopicConfig {
	return []kafka.TopicConfig{
		{Topic: c.Outcomes, NumPartitions: c.OutcomesPartitions, ReplicationFactor: c.ReplicationFactor},
		{Topic: c.Policy, NumPartitions: c.PolicyPartitions, ReplicationFactor: c.ReplicationFactor,
			ConfigEntries: []kafka.ConfigEntry{
				{ConfigName: "cleanup.policy", ConfigValue: "compact"},
				{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(PolicyMaxMessageBytes)},
			}},
		{Topic: c.DLQ, NumPartitions: c.DLQPartitions, ReplicationFactor: c.ReplicationFactor},
	}
}

// EnsureTopics creates the topics of cfg that do not exist yet. It is
// idempotent: a topic that already exists is not an error, and its partition
// count and configuration are left untouched (it does not check that an
// existing policy topic is compacted). The request goes to the cluster's
// controller, which kafka-go's transport finds from the metadata.
func EnsureTopics(ctx context.Context, brokers []string, cfg TopicsConfig) error {
	if len(brokers) == 0 {
		return errors.New("ensure topics: no brokers")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	sec, err := cfg.Security.resolve()
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	tr := sec.transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	specs := cfg.specs()
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: specs})
	if err != nil {
		return fmt.Errorf("create topics: %w", sec.explain(ctx, brokers, err))
	}
	var errs []error
	for _, s := range specs {
		err, ok := resp.Errors[s.Topic]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("create topic %s: no answer from the controller", s.Topic))
		case err == nil, errors.Is(err, kafka.TopicAlreadyExists):
		default:
			errs = append(errs, fmt.Errorf("create topic %s: %w", s.Topic, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitLeaders(ctx, client, specs)
}

// waitLeaders returns once every partition of the topics has a leader: a
// topic just created answers produce requests with Not Leader For
// Partition until then, and a publisher that starts at once would spill.
// It gives up after leaderWait.
func waitLeaders(ctx context.Context, client *kafka.Client, specs []kafka.TopicConfig) error {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Topic
	}
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err == nil && allLed(md, len(names)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the topics' partition leaders: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leaderWait bounds how long EnsureTopics waits for partition leaders.
const leaderWait = 30 * time.Second

func allLed(md *kafka.MetadataResponse, topics int) bool {
	if len(md.Topics) < topics {
		return false
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
	}
	return true
}

// validTopicName applies Kafka's rules for topic names.
func validTopicName(n string) error {
	if n == "" {
		return errors.New("empty topic name")
	}
	if len(n) > 249 {
		return fmt.Errorf("topic name %q longer than 249 characters", n)
	}
	if n == "." || n == ".." {
		return fmt.Errorf("topic name %q is not allowed", n)
	}
	if i := strings.IndexFunc(n, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("topic name %q has an invalid character at %d", n, i)
	}
	return nil
}
