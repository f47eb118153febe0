package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/testenv"
)

// TestStandbyOptimizerTakeover runs two `loopgate optimizer` processes
// with optimizer.standby on the real Kafka and ClickHouse: one publishes,
// the other waits. SIGKILLing the active one hands the lease to the
// standby, which publishes within two periods of the kill, and the policy
// log never carries one version twice.
func TestStandbyOptimizerTakeover(t *testing.T) {
	r := newRig(t, []string{testenv.Kafka(t)}, testenv.ClickHouse(t))
	period := r.cfg.Optimizer.Period // the default, 5s: the lease's 6s session fits two
	sfx := filepath.Base(r.cfg.Warehouse.Database)
	write := func(producer string) string {
		cfg := r.cfg
		cfg.Optimizer.Producer = producer
		cfg.Optimizer.Standby = true
		cfg.Optimizer.Lease.Group, cfg.Optimizer.Lease.Topic = "standby-"+sfx, "standby.lease."+sfx
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), producer+".yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	startOpt := func(producer string) *child {
		cmd := cliChild(t, "optimizer", "--config", write(producer))
		cmd.Stderr = testWriter{t, producer}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &child{proc: cmd.Process, exited: make(chan struct{})}
		go func() { cmd.Wait(); close(c.exited) }()
		t.Cleanup(func() {
			select {
			case <-c.exited:
			default:
				c.stop(t)
			}
		})
		return c
	}
	by := func(ps []event.Policy, producer string) int {
		n := 0
		for _, p := range ps {
			if p.Producer == producer {
				n++
			}
		}
		return n
	}

	a := startOpt("opt-a")
	var log []event.Policy
	testenv.Eventually(t, 60*time.Second, "a policy from the first optimizer", func() bool {
		log = readPolicyLog(t, r.ctx, r.cfg.Kafka.Brokers, r.cfg.Kafka.PolicyTopic)
		return by(log, "opt-a") > 0
	})
	b := startOpt("opt-b")
	time.Sleep(3 * period) // b joins the group and must stay standby
	log = readPolicyLog(t, r.ctx, r.cfg.Kafka.Brokers, r.cfg.Kafka.PolicyTopic)
	if n := by(log, "opt-b"); n != 0 {
		t.Fatalf("the standby published %d policies while the active one lived, want 0", n)
	}
	if n := by(log, "opt-a"); n < 3 {
		t.Fatalf("the active optimizer published %d policies in %v, want at least 3 (one per period)", n, 4*period)
	}
	killed := time.Now()
	a.kill(t)
	testenv.Eventually(t, 4*period, "a policy from the standby", func() bool {
		log = readPolicyLog(t, r.ctx, r.cfg.Kafka.Brokers, r.cfg.Kafka.PolicyTopic)
		return by(log, "opt-b") > 0
	})
	var first event.Policy
	for _, p := range log {
		if p.Producer == "opt-b" {
			first = p
			break
		}
	}
	took := time.UnixMilli(first.CreatedMs).Sub(killed)
	t.Logf("takeover: the standby's first policy (version %d) %v after the kill (period %v)", first.Version, took.Round(time.Millisecond), period)
	if took > 2*period {
		t.Errorf("the standby took over %v after the kill, want within two periods (%v)", took, 2*period)
	}
	time.Sleep(2 * period)
	b.stop(t)
	log = readPolicyLog(t, r.ctx, r.cfg.Kafka.Brokers, r.cfg.Kafka.PolicyTopic)
	seen := map[uint64]string{}
	var prev uint64
	for i, p := range log {
		if other, dup := seen[p.Version]; dup {
			t.Errorf("version %d published twice: by %s and by %s", p.Version, other, p.Producer)
		}
		seen[p.Version] = p.Producer
		if p.Version <= prev {
			t.Errorf("policy %d on the log: version %d after %d, want increasing", i, p.Version, prev)
		}
		prev = p.Version
	}
	t.Logf("policy log: %d policies, %d by opt-a, %d by opt-b", len(log), by(log, "opt-a"), by(log, "opt-b"))
	if by(log, "opt-b") < 2 {
		t.Errorf("got %d policies from the new active optimizer, want one per period after the takeover", by(log, "opt-b"))
	}
}

// readPolicyLog returns every policy on the topic, in log order.
func readPolicyLog(t *testing.T, ctx context.Context, brokers []string, topic string) []event.Policy {
	t.Helper()
	rd := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 200 * time.Millisecond})
	defer rd.Close()
	var out []event.Policy
	for {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := rd.FetchMessage(fctx)
		cancel()
		if err != nil {
			return out // nothing more within 2 s (or no topic yet)
		}
		p, err := event.DecodePolicy(m.Value)
		if err != nil {
			t.Fatalf("policy log offset %d: %v", m.Offset, err)
		}
		out = append(out, p)
		if m.Offset+1 >= m.HighWaterMark {
			return out
		}
	}
}
