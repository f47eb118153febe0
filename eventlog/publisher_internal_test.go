package eventlog

import (
	"bytes"
	"fmt"
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

// BenchmarkPublishDurable is Publish in durable mode (every event written
// to the spill before it returns), against BenchmarkPublishMemoryPath in
// the same run: the cost of surviving SIGKILL. The spill is large enough
// for the whole run; nothing sends.
func BenchmarkPublishDurable(b *testing.B) {
	cfg := DefaultPublisherConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.SpillDir = b.TempDir()
	cfg.Durable = true
	cfg.MaxSpillBytes = 8 << 30
	p, err := NewPublisher(cfg, deps.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(b.Context())
	key := []byte("019b7a3c-5e00-7000-8000-000000000001")
	value := bytes.Repeat([]byte("x"), 700)
	b.SetBytes(int64(len(key) + len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Publish(key, value); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJournalRequest is one request's journal records: begin, two
// attempts, done.
func BenchmarkJournalRequest(b *testing.B) {
	cfg := DefaultJournalConfig()
	cfg.Dir = b.TempDir()
	j, _, err := OpenJournal(cfg, deps.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	begin := bytes.Repeat([]byte("b"), 600)
	att := bytes.Repeat([]byte("a"), 250)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("019b7a3c-5e00-7000-8000-%012d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		if err := j.Begin(id, begin); err != nil {
			b.Fatal(err)
		}
		for range 2 {
			if err := j.Attempt(id, att); err != nil {
				b.Fatal(err)
			}
		}
		if err := j.Done(id); err != nil {
			b.Fatal(err)
		}
	}
}
