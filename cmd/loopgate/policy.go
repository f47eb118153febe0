package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/warehouse"
)

// policyKey is the key of every record on the compacted policy topic:
// compaction keeps the newest policy; the warehouse keeps them all.
var policyKey = []byte("policy")

// kafkaPolicies is the router's policy source: the compacted policy topic,
// read from its start by every router (router.PolicySource).
type kafkaPolicies struct {
	brokers []string
	topic   string
	log     *slog.Logger
}

// Subscribe applies every decodable policy on the topic, oldest first, then
// each new one, until ctx ends. The router keeps only newer versions.
func (k kafkaPolicies) Subscribe(ctx context.Context, apply func(event.Policy)) error {
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		err := k.follow(ctx, apply)
		if ctx.Err() != nil {
			return nil
		}
		k.log.Warn("policy subscription interrupted; resubscribing", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

func (k kafkaPolicies) follow(ctx context.Context, apply func(event.Policy)) error {
	tail, err := eventlog.NewTail(k.brokers, k.topic, 0, k.log)
	if err != nil {
		return err
	}
	defer tail.Close()
	for {
		m, err := tail.Fetch(ctx)
		if err != nil {
			return fmt.Errorf("read policy topic %s: %w", k.topic, err)
		}
		p, err := event.DecodePolicy(m.Value)
		if err != nil {
			k.log.Warn("undecodable policy skipped", "offset", m.Offset, "err", err)
			continue
		}
		apply(p)
	}
}

// policySink is where the optimizer publishes: the policy topic, which the
// routers follow, then the warehouse's policies table, which keeps history.
type policySink struct {
	w     *eventlog.Writer
	store *warehouse.Store
}

// PublishPolicy returns nil only when the policy is on the topic and in the
// warehouse.
func (s policySink) PublishPolicy(ctx context.Context, p event.Policy) error {
	b, err := event.EncodePolicy(p)
	if err != nil {
		return err
	}
	if err := s.w.Write(ctx, eventlog.Message{Key: policyKey, Value: b}); err != nil {
		return fmt.Errorf("publish policy %d: %w", p.Version, err)
	}
	if err := s.store.WritePolicy(ctx, p); err != nil {
		return fmt.Errorf("record policy %d: %w", p.Version, err)
	}
	return nil
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
