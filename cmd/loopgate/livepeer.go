package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/sim/lpevents"
)

// devLivepeerTopic is the gateway topic `dev --livepeer-events` uses when
// livepeer.topic is empty.
const devLivepeerTopic = "livepeer.gateway"

// livepeerPipeline is the go-livepeer adapter with the reader and DLQ
// writer it owns.
type livepeerPipeline struct {
	a      *ingest.LivepeerAdapter
	reader *eventlog.Reader
	dlq    *eventlog.Writer
}

// newLivepeerPipeline ensures the gateway topic and its DLQ exist and
// builds the adapter reading it into sink.
func newLivepeerPipeline(ctx context.Context, cfg Config, brokers []string, sink ingest.LivepeerSink, p process) (*livepeerPipeline, error) {
	lc := cfg.Livepeer
	tc := topicsConfig(cfg)
	tc.Outcomes, tc.DLQ = lc.Topic, lc.DLQTopic // the gateway topic and its DLQ; the policy topic is already there
	if err := eventlog.EnsureTopics(ctx, brokers, tc); err != nil {
		return nil, fmt.Errorf("ensure go-livepeer topics: %w", err)
	}
	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = brokers, lc.Topic, lc.Group
	rcfg.Security = cfg.kafkaSecurity()
	reader, err := eventlog.NewReader(rcfg, p.deps("livepeer_reader"))
	if err != nil {
		return nil, fmt.Errorf("go-livepeer reader: %w", err)
	}
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic, wcfg.Security = brokers, lc.DLQTopic, cfg.kafkaSecurity()
	dlq, err := eventlog.NewWriter(wcfg, p.deps("livepeer_dlq"))
	if err != nil {
		reader.Close()
		return nil, fmt.Errorf("go-livepeer dead-letter writer: %w", err)
	}
	acfg := ingest.DefaultLivepeerConfig()
	acfg.Batch.BatchRows, acfg.Batch.BatchWait, acfg.Batch.DLQTopic = cfg.Ingest.BatchRows, cfg.Ingest.BatchWait, lc.DLQTopic
	a, err := ingest.NewLivepeer(acfg, reader, sink, dlq, p.deps("livepeer_adapter"))
	if err != nil {
		reader.Close()
		dlq.Close()
		return nil, err
	}
	return &livepeerPipeline{a: a, reader: reader, dlq: dlq}, nil
}

func (l *livepeerPipeline) Run(ctx context.Context) error { return l.a.Run(ctx) }

func (l *livepeerPipeline) Close() error { return errors.Join(l.reader.Close(), l.dlq.Close()) }

// startDevLivepeer runs, for `dev --livepeer-events`, the go-livepeer
// adapter and a generator of go-livepeer events for the dev fleet (its
// addresses and URLs, so the optimizer's priors apply to it). The returned
// function stops both and waits for them.
func startDevLivepeer(ctx context.Context, cfg Config, brokers []string, sink ingest.LivepeerSink, fleet []orchRef, p process) (func(), error) {
	if cfg.Livepeer.Topic == "" {
		cfg.Livepeer.Topic = devLivepeerTopic
	}
	pipe, err := newLivepeerPipeline(ctx, cfg, brokers, sink, p)
	if err != nil {
		return nil, err
	}
	lcfg := lpevents.DefaultConfig()
	if len(fleet) > 0 {
		sim := lpevents.Fleet(len(fleet))
		for i, o := range fleet {
			sim[i].URL = o.URL
			if o.Address != "" {
				sim[i].Address = o.Address
			}
		}
		lcfg.Orchestrators = sim
	}
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic, wcfg.Security = brokers, cfg.Livepeer.Topic, cfg.kafkaSecurity()
	w, err := eventlog.NewWriter(wcfg, p.deps("livepeer_fixtures"))
	if err != nil {
		pipe.Close()
		return nil, fmt.Errorf("go-livepeer fixtures writer: %w", err)
	}
	d := p.deps("livepeer_fixtures")
	d.Rand = rand.New(rand.NewPCG(15, uint64(time.Now().UnixNano())))
	gen, err := lpevents.New(lcfg, d)
	if err != nil {
		pipe.Close()
		w.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if err := gen.Run(runCtx, 20, w); err != nil {
			p.log.Warn("go-livepeer fixtures stopped", "err", err)
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		if err := pipe.Run(runCtx); err != nil {
			p.log.Warn("go-livepeer adapter stopped", "err", err)
		}
	}()
	p.log.Info("go-livepeer events simulated", "topic", cfg.Livepeer.Topic, "orchestrators", len(lcfg.Orchestrators))
	return func() {
		cancel()
		<-done
		<-done
		w.Close()
		pipe.Close()
	}, nil
}

// orchRef is what the fixtures need of a fleet orchestrator.
type orchRef struct{ Address, URL string }

func orchRefs(orchs []event.Orchestrator) []orchRef {
	out := make([]orchRef, len(orchs))
	for i, o := range orchs {
		out[i] = orchRef{Address: o.Address, URL: o.URL}
	}
	return out
}
