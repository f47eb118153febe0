package eventlog

import (
	"bytes"
	"testing"

	"github.com/loopgate/loopgate/deps"
)

// BenchmarkPublishMemoryPath measures Publish alone on its common path (the
// event goes to the memory queue), without a sender competing for the CPU:
// the queue is emptied outside the timer every 10000 events.
func BenchmarkPublishMemoryPath(b *testing.B) {
	cfg := DefaultPublisherConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.SpillDir = b.TempDir()
	p, err := NewPublisher(cfg, deps.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(b.Context())
	key := []byte("019b7a3c-5e00-7000-8000-000000000001")
	value := bytes.Repeat([]byte("x"), 700)
	b.SetBytes(int64(len(key) + len(value)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := p.Publish(key, value); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 9999 {
			b.StopTimer()
			p.mu.Lock()
			clear(p.mem)
			p.mem, p.memHead, p.memBytes = p.mem[:0], 0, 0
			p.mu.Unlock()
			b.StartTimer()
		}
	}
}
