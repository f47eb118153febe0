package optimizer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

// scriptedLease hands the lease to its holder for each term in turn: hold
// runs until the shared log holds `until` policies, then its context ends.
type scriptedLease struct {
	terms []term
	log   *fakePub
}

type term struct {
	epoch int64
	until int
}

func (l *scriptedLease) Run(ctx context.Context, hold func(context.Context, int64) error) error {
	for _, tm := range l.terms {
		hctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.log.count() < tm.until && hctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		err := hold(hctx, tm.epoch)
		cancel()
		wg.Wait()
		if err != nil {
			return err
		}
	}
	return nil
}

// newestOn is a version source reading the shared log, as the binary reads
// the policy topic and the policies table.
func newestOn(log *fakePub) VersionSource {
	return func(context.Context) (uint64, error) {
		log.mu.Lock()
		defer log.mu.Unlock()
		var v uint64
		for _, p := range log.policies {
			v = max(v, p.Version)
		}
		return v, nil
	}
}

// TestStandbyTakeoverVersions: two optimizers take turns holding the lease
// on one clock that never moves, publishing to one log; every version is
// new, above the previous holder's last one, and in its epoch's residue.
func TestStandbyTakeoverVersions(t *testing.T) {
	cfg, stats := failingFleet()
	cfg.Period = time.Millisecond
	shared := &fakePub{}
	a, b := newHarness(t, cfg, WithLastVersion(newestOn(shared))), newHarness(t, cfg, WithLastVersion(newestOn(shared)))
	a.stats.set(stats...)
	b.stats.set(stats...)
	a.opt.pub, b.opt.pub = shared, shared
	// Neither clock moves (both stay at t0): versions cannot come from them.

	plan := []struct {
		h     *harness
		epoch int64
		until int
	}{{a, 3, 3}, {b, 4, 6}, {a, 9, 9}, {b, 1030, 12}}
	owner := map[uint64]int64{} // version → epoch
	for _, st := range plan {
		before := shared.count()
		lease := &scriptedLease{terms: []term{{st.epoch, st.until}}, log: shared}
		if err := st.h.opt.RunStandby(context.Background(), lease); err != nil {
			t.Fatalf("RunStandby: %v", err)
		}
		if got := value(t, st.h.opt.m.leaseEpoch); got != float64(st.epoch) {
			t.Errorf("got lease epoch gauge %v, want %d", got, st.epoch)
		}
		if got := value(t, st.h.opt.m.leader); got != 0 {
			t.Errorf("got leader gauge %v after the term, want 0", got)
		}
		shared.mu.Lock()
		term := append([]event.Policy(nil), shared.policies[before:]...)
		var prevMax uint64
		for _, p := range shared.policies[:before] {
			prevMax = max(prevMax, p.Version)
		}
		shared.mu.Unlock()
		if len(term) == 0 {
			t.Fatalf("epoch %d published nothing", st.epoch)
		}
		if term[0].Version <= prevMax {
			t.Errorf("epoch %d: got first version %d, want above the previous holder's %d", st.epoch, term[0].Version, prevMax)
		}
		for _, p := range term {
			if e, dup := owner[p.Version]; dup {
				t.Errorf("version %d published under epoch %d and again under %d", p.Version, e, st.epoch)
			}
			owner[p.Version] = st.epoch
			if got, want := p.Version%versionStride, uint64(st.epoch)%versionStride; got != want {
				t.Errorf("epoch %d: got version %d ≡ %d (mod %d), want ≡ %d", st.epoch, p.Version, got, versionStride, want)
			}
		}
	}
}

// TestStandbyOverlappingHoldersNeverShareAVersion: an old holder that has
// not noticed it lost the lease (epoch 5) and the new one (epoch 6) publish
// at once, neither seeing the other's policies, on the same clock: their
// versions never coincide.
func TestStandbyOverlappingHoldersNeverShareAVersion(t *testing.T) {
	cfg, stats := failingFleet()
	old, cur := newHarness(t, cfg), newHarness(t, cfg)
	old.stats.set(stats...)
	cur.stats.set(stats...)
	old.opt.lead(5)
	cur.opt.lead(6)
	seen := map[uint64]string{}
	for i := range 200 {
		for name, h := range map[string]*harness{"old": old, "new": cur} {
			p := h.step(t)
			if other, dup := seen[p.Version]; dup {
				t.Fatalf("round %d: version %d published by %s and by %s", i, p.Version, other, name)
			}
			seen[p.Version] = name
		}
		if i%3 == 0 {
			old.clock.advance(time.Millisecond) // the two clocks stay equal
			cur.clock.advance(time.Millisecond)
		}
	}
}

func TestLeaseConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*LeaseConfig)
		ok   bool
	}{
		{"defaults", func(*LeaseConfig) {}, true},
		{"no group", func(c *LeaseConfig) { c.Group = "" }, false},
		{"no topic", func(c *LeaseConfig) { c.Topic = "" }, false},
		{"heartbeat not below session", func(c *LeaseConfig) { c.HeartbeatInterval = c.SessionTimeout }, false},
		{"zero session", func(c *LeaseConfig) { c.SessionTimeout = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultLeaseConfig()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
			cfg := DefaultConfig()
			cfg.Standby, cfg.Lease = true, c
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Config with standby: got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestStandbyInheritsLambdaAndIsActiveOnlyWhileHolding: a takeover adopts
// the λ of the newest policy on the shared log (the previous holder's
// knob), and Active is true only while the lease is held.
func TestStandbyInheritsLambdaAndIsActiveOnlyWhileHolding(t *testing.T) {
	cfg, stats := failingFleet()
	cfg.Period = time.Millisecond
	shared := &fakePub{}
	newest := func(context.Context) (*event.Policy, error) {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if len(shared.policies) == 0 {
			return nil, nil
		}
		p := shared.policies[len(shared.policies)-1]
		return &p, nil
	}
	a := newHarness(t, cfg, WithLastVersion(newestOn(shared)), WithLastPolicy(newest))
	b := newHarness(t, cfg, WithLastVersion(newestOn(shared)), WithLastPolicy(newest))
	a.stats.set(stats...)
	b.stats.set(stats...)
	a.opt.pub, b.opt.pub = shared, shared
	if err := a.opt.SetLambda(0.8); err != nil {
		t.Fatal(err)
	}
	if err := b.opt.SetLambda(0.1); err != nil {
		t.Fatal(err)
	}
	if err := a.opt.RunStandby(context.Background(), &scriptedLease{terms: []term{{1, 3}}, log: shared}); err != nil {
		t.Fatal(err)
	}
	// b held nothing yet: a standby that is not running RunStandby is
	// active (no lease in use); one inside RunStandby without the lease
	// is not.
	var during bool
	lease := &scriptedLease{terms: []term{{2, 6}}, log: shared}
	probe := leaseFunc(func(ctx context.Context, hold func(context.Context, int64) error) error {
		during = b.opt.Active()
		return lease.Run(ctx, func(hctx context.Context, e int64) error {
			return hold(hctx, e)
		})
	})
	if err := b.opt.RunStandby(context.Background(), probe); err != nil {
		t.Fatal(err)
	}
	if during {
		t.Error("a standby waiting for the lease reports Active")
	}
	if got := b.opt.Lambda(); got != 0.8 {
		t.Errorf("after taking over from a holder at λ 0.8, got λ %v", got)
	}
	shared.mu.Lock()
	last := shared.policies[len(shared.policies)-1]
	shared.mu.Unlock()
	if last.Lambda != 0.8 {
		t.Errorf("the new holder published λ %v, want the inherited 0.8", last.Lambda)
	}
}

type leaseFunc func(ctx context.Context, hold func(context.Context, int64) error) error

func (f leaseFunc) Run(ctx context.Context, hold func(context.Context, int64) error) error {
	return f(ctx, hold)
}
