package eventlog_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// Publish outcomes through a Publisher and read them back as a consumer
// group, against the embedded broker.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "eventlog-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	broker, err := eventlog.StartEmbedded(ctx, eventlog.DefaultEmbeddedConfig(), deps.Deps{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()

	cfg := eventlog.DefaultPublisherConfig()
	cfg.Brokers = broker.Brokers()
	cfg.SpillDir = dir
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{})
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	for i := range 3 {
		if err := pub.Publish([]byte("req-1"), fmt.Appendf(nil, `{"attempt":%d}`, i)); err != nil {
			panic(err)
		}
	}
	if err := pub.Close(ctx); err != nil { // sends everything, or spills it
		panic(err)
	}
	if err := <-done; err != nil {
		panic(err)
	}

	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers = broker.Brokers()
	rcfg.Topic = eventlog.TopicOutcomes
	rcfg.GroupID = "example"
	r, err := eventlog.NewReader(rcfg, deps.Deps{})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for range 3 {
		m, err := r.Fetch(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s %s\n", m.Key, m.Value)
		if err := r.Commit(ctx, m); err != nil { // after handling it
			panic(err)
		}
	}
	// Output:
	// req-1 {"attempt":0}
	// req-1 {"attempt":1}
	// req-1 {"attempt":2}
}
