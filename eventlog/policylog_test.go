package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
)

// TestPolicyLogFollowsFromNewest publishes five policies, then follows the
// log twice: each follower gets the newest one only (a restarted router
// applies one policy, not the history), then every policy published after.
func TestPolicyLogFollowsFromNewest(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			log := startPolicyLog(t, b)
			for i := 1; i <= 5; i++ {
				if err := log.Publish(ctx, fmt.Appendf(nil, "p%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			for follower := range 2 {
				got := make(chan string, 16)
				fctx, stop := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- log.Follow(fctx, func(b []byte) { got <- string(b) }) }()
				if v := receive(t, ctx, got); v != "p5" {
					t.Fatalf("follower %d: first policy %q, want the newest, p5", follower, v)
				}
				select {
				case <-log.CaughtUp():
				case <-time.After(5 * time.Second):
					t.Fatalf("follower %d: CaughtUp not closed after the newest policy", follower)
				}
				next := fmt.Sprintf("p%d", 6+follower)
				if err := log.Publish(ctx, []byte(next)); err != nil {
					t.Fatal(err)
				}
				if v := receive(t, ctx, got); v != next {
					t.Fatalf("follower %d: got %q after the newest, want %q", follower, v, next)
				}
				stop()
				if err := <-done; err != nil {
					t.Fatalf("follower %d: Follow returned %v on cancel, want nil", follower, err)
				}
				select {
				case v := <-got:
					t.Fatalf("follower %d: got %q more, want nothing else", follower, v)
				default:
				}
				if follower == 0 {
					// The second follower starts at p6, now the newest.
					if err := log.Publish(ctx, []byte("p5")); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestPolicyLogEmpty follows a log with no policy yet: nothing is applied
// until the first one is published.
func TestPolicyLogEmpty(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	topics := uniqueTopics(t)
	bs := brokers()[0].start(t, topics)
	cfg := eventlog.DefaultPolicyLogConfig()
	cfg.Brokers, cfg.Topic = bs, topics.Policy
	log, err := eventlog.NewPolicyLog(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	got := make(chan string, 4)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go log.Follow(fctx, func(b []byte) { got <- string(b) })
	select {
	case <-log.CaughtUp():
	case <-ctx.Done():
		t.Fatal("CaughtUp not closed on an empty log")
	}
	select {
	case v := <-got:
		t.Fatalf("got %q from an empty log", v)
	case <-time.After(500 * time.Millisecond):
	}
	if err := log.Publish(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if v := receive(t, ctx, got); v != "first" {
		t.Fatalf("got %q, want first", v)
	}
	if _, err := eventlog.NewPolicyLog(eventlog.DefaultPolicyLogConfig(), deps.Deps{}); err == nil {
		t.Error("a policy log without brokers: got nil error")
	}
}

// startPolicyLog is a PolicyLog on b's broker, on a topic of its own,
// closed when the test ends.
func startPolicyLog(t *testing.T, b broker) *eventlog.PolicyLog {
	t.Helper()
	topics := uniqueTopics(t)
	cfg := eventlog.DefaultPolicyLogConfig()
	cfg.Brokers, cfg.Topic = b.start(t, topics), topics.Policy
	log, err := eventlog.NewPolicyLog(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log
}

func receive(t *testing.T, ctx context.Context, c <-chan string) string {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-ctx.Done():
		t.Fatal("timed out waiting for a policy")
		return ""
	}
}

// TestPolicyLogCarriesAFleetPolicy publishes a policy-sized record above
// the broker's default max.message.bytes (1 MB): the policy topic accepts
// it because EnsureTopics creates it with PolicyMaxMessageBytes, and a
// follower fetches it whole. A record above that bound is refused before
// it is sent.
func TestPolicyLogCarriesAFleetPolicy(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			log := startPolicyLog(t, b)
			big := bytes.Repeat([]byte("0123456789abcdef"), event.MaxPolicyEncodedSize/16)
			if err := log.Publish(ctx, big); err != nil {
				t.Fatalf("publish a %d-byte policy: %v", len(big), err)
			}
			got := make(chan []byte, 1)
			fctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- log.Follow(fctx, func(b []byte) {
					select {
					case got <- bytes.Clone(b):
					default:
					}
				})
			}()
			select {
			case b := <-got:
				if !bytes.Equal(b, big) {
					t.Fatalf("got %d bytes back, want the %d published", len(b), len(big))
				}
			case <-ctx.Done():
				t.Fatal("no policy followed")
			}
			stop()
			if err := <-done; err != nil {
				t.Fatalf("Follow returned %v on cancel, want nil", err)
			}
			if err := log.Publish(ctx, make([]byte, eventlog.PolicyMaxMessageBytes+1)); !errors.Is(err, eventlog.ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge above PolicyMaxMessageBytes", err)
			}
		})
	}
}
