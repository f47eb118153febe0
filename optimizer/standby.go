package optimizer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LeaseConfig tunes the lease of a standby optimizer (Config.Standby): the
// Kafka consumer group every replica joins and how soon a dead holder
// loses it. A replica takes over about SessionTimeout + HeartbeatInterval
// after the active one died (a clean stop hands over at once), then runs
// its first round at once: keep that under two periods.
type LeaseConfig struct {
	// Group is the consumer group of the lease; replicas of one optimizer
	// share it. Default "loopgate.optimizer".
	Group string `yaml:"group"`
	// Topic is the one-partition topic whose partition is the lease
	// (created if missing, never written). Default "loopgate.optimizer.lease".
	Topic string `yaml:"topic"`
	// SessionTimeout: how long a silent holder keeps the lease. Kafka
	// refuses less than its group.min.session.timeout.ms (default 6s).
	// Default 6s.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval: how often a replica tells the group it lives, and
	// so how soon it learns the lease moved. Default 1s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
}

// DefaultLeaseConfig returns the defaults documented on the fields.
func DefaultLeaseConfig() LeaseConfig {
	return LeaseConfig{Group: "loopgate.optimizer", Topic: "loopgate.optimizer.lease", SessionTimeout: 6 * time.Second, HeartbeatInterval: time.Second}
}

// Validate reports settings that cannot work.
func (c LeaseConfig) Validate() error {
	var errs []error
	if c.Group == "" || c.Topic == "" {
		errs = append(errs, errors.New("lease: group and topic are required"))
	}
	if c.SessionTimeout <= 0 || c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("lease: heartbeat interval %v and session timeout %v must be positive, the interval below the timeout", c.HeartbeatInterval, c.SessionTimeout))
	}
	return errors.Join(errs...)
}

// Lease is what standby optimizers compete for (eventlog.Lease is one, on
// Kafka group membership). Run calls hold each time this process gets the
// lease, with a context that ends when it loses it and the lease's epoch,
// which grows with every change of holder; it returns when ctx ends.
type Lease interface {
	Run(ctx context.Context, hold func(ctx context.Context, epoch int64) error) error
}

// versionStride: in standby, every version v this optimizer publishes under
// lease epoch e has v % versionStride == e % versionStride. Two holders of
// different epochs therefore never publish the same version, even in the
// moment when an old holder has not yet noticed it lost the lease.
const versionStride = 1024

// RunStandby runs rounds (as Run does) only while this optimizer holds the
// lease, and waits otherwise, until ctx ends; it returns nil then. On each
// takeover it forgets the version it last used and asks the version source
// again (WithLastVersion), so its first policy is numbered above every one
// the previous holder published, and it runs a round at once.
//
// With WithLastPolicy, a takeover also adopts the λ of the newest policy
// published (the previous holder's knob, which it published with every
// policy); when that policy cannot be read, the λ in force stays.
func (o *Optimizer) RunStandby(ctx context.Context, lease Lease) error {
	o.m.leader.Set(0)
	o.standby.Store(true)
	defer o.standby.Store(false)
	return lease.Run(ctx, func(hctx context.Context, epoch int64) error {
		o.lead(epoch)
		o.inherit(hctx)
		o.active.Store(true)
		o.log.Info("optimizer active", "epoch", epoch, "lambda", o.Lambda())
		err := o.Run(hctx)
		o.active.Store(false)
		o.log.Info("optimizer standby", "epoch", epoch)
		return err
	})
}

// Active reports whether this optimizer publishes policies: always
// outside standby, and in standby while it holds the lease. Changes made
// to a standby (λ) would not reach the routers, so the admin API refuses
// them there.
func (o *Optimizer) Active() bool { return !o.standby.Load() || o.active.Load() }

// inherit adopts the newest published policy's λ (WithLastPolicy).
func (o *Optimizer) inherit(ctx context.Context) {
	if o.lastPolicy == nil {
		return
	}
	p, err := o.lastPolicy(ctx)
	if err != nil {
		o.log.Warn("newest policy unknown at takeover; keeping λ", "lambda", o.Lambda(), "err", err)
		return
	}
	if p == nil {
		return
	}
	if err := o.SetLambda(p.Lambda); err != nil {
		o.log.Warn("newest policy's λ refused at takeover; keeping λ", "lambda", o.Lambda(), "err", err)
	}
}

// lead starts a term under epoch: versions are asked afresh and follow the
// epoch's residue.
func (o *Optimizer) lead(epoch int64) {
	o.step.Lock()
	defer o.step.Unlock()
	o.versionKnown = false
	o.epoch, o.epochSet = uint64(epoch), true
	o.m.leaseEpoch.Set(float64(epoch))
}

// inEpoch returns the smallest version ≥ v that belongs to the current
// epoch (v itself outside standby).
func (o *Optimizer) inEpoch(v uint64) uint64 {
	if !o.epochSet {
		return v
	}
	want := o.epoch % versionStride
	if r := v % versionStride; r != want {
		v += (want + versionStride - r) % versionStride
	}
	return v
}
