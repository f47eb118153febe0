package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/warehouse"
)

// policySink is where the optimizer publishes: the policy log, which the
// routers follow, then the warehouse's policies table, which keeps the
// history. Both get the optimizer's one encoding.
type policySink struct {
	log    *eventlog.PolicyLog
	store  *warehouse.Store
	logger *slog.Logger // nil: slog's default
}

// PublishPolicy returns nil only when the policy is on the log and in the
// warehouse. It then records the publish in the audit table (actor
// "optimizer", action "policy.publish", detail {"version", "lambda"}); a
// failed audit write is logged and refuses nothing: the policy is already
// on the log, and the policies table holds it anyway.
func (s policySink) PublishPolicy(ctx context.Context, p event.Policy, encoded []byte) error {
	if err := s.log.Publish(ctx, encoded); err != nil {
		return fmt.Errorf("publish policy %d: %w", p.Version, err)
	}
	if err := s.store.WritePolicy(ctx, p, encoded); err != nil {
		return fmt.Errorf("record policy %d: %w", p.Version, err)
	}
	if err := s.store.WriteAudit(ctx, publishAudit(p)); err != nil {
		cmp.Or(s.logger, slog.Default()).Error("policy publish not audited", "version", p.Version, "err", err)
	}
	return nil
}

// publishAudit is the audit row of a published policy.
func publishAudit(p event.Policy) warehouse.AuditEntry {
	detail, _ := json.Marshal(struct {
		Version uint64  `json:"version"`
		Lambda  float64 `json:"lambda"`
	}{p.Version, p.Lambda}) // cannot fail: an integer and a validated finite float
	return warehouse.AuditEntry{Actor: "optimizer", Action: "policy.publish", Detail: string(detail)}
}

// lastPolicyVersion is the newest version in the warehouse, 0 for none.
func lastPolicyVersion(ctx context.Context, store *warehouse.Store) (uint64, error) {
	p, err := store.Policy(ctx, 0)
	if errors.Is(err, warehouse.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return p.Version, nil
}

// policyLog is the configured policy log.
func policyLog(cfg Config, brokers []string, p process) (*eventlog.PolicyLog, error) {
	pcfg := eventlog.DefaultPolicyLogConfig()
	pcfg.Brokers, pcfg.Topic, pcfg.Security = brokers, cfg.Kafka.PolicyTopic, cfg.kafkaSecurity()
	l, err := eventlog.NewPolicyLog(pcfg, p.deps("policy-log"))
	if err != nil {
		return nil, fmt.Errorf("policy log: %w", err)
	}
	return l, nil
}
