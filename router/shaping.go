package router

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ShapingConfig tunes workload shaping: the adaptive concurrency limits,
// the edge queue, admission and tiers. A zero field means the default
// written beside it.
type ShapingConfig struct {
	// Limit is the adaptive concurrency limit under each orchestrator's
	// configured or published limit (see LimitConfig).
	Limit LimitConfig `yaml:"limit"`
	// QueueSize bounds the edge queue: requests waiting for a slot when
	// every eligible orchestrator is at its limit. Default 1024.
	QueueSize int `yaml:"queue_size"`
	// QueueDrainWindow is the busy time over which the edge queue
	// measures each class's drain rate, the rate its waiters are handed
	// slots, to predict when a newcomer can start (see EdgeQueue).
	// Default 5s.
	QueueDrainWindow time.Duration `yaml:"queue_drain_window"`
	// QueueDisabled answers such requests 503 at once instead. Default false.
	QueueDisabled bool `yaml:"queue_disabled"`
	// AdmissionBurst is how much of its admission rate a class may spend
	// at once (the token bucket's depth). Default 1s.
	AdmissionBurst time.Duration `yaml:"admission_burst"`
	// TierPriority multiplies the class value of requests whose API key
	// has that tier (APIKeyConfig.Tier): the edge queue serves them first,
	// and a priority above 1 exempts them from the class's admission rate,
	// so a paid tier is protected from a free one on the same model.
	// Tiers not listed have priority 1. Default none.
	TierPriority map[string]float64 `yaml:"tier_priority"`
}

// DefaultShapingConfig returns the defaults written on ShapingConfig.
func DefaultShapingConfig() ShapingConfig {
	return ShapingConfig{Limit: DefaultLimitConfig(), QueueSize: 1024, QueueDrainWindow: DefaultDrainWindow, AdmissionBurst: time.Second}
}

func (c ShapingConfig) normalized() ShapingConfig {
	d := DefaultShapingConfig()
	if c.Limit == (LimitConfig{}) {
		c.Limit = d.Limit
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.AdmissionBurst == 0 {
		c.AdmissionBurst = d.AdmissionBurst
	}
	if c.QueueDrainWindow == 0 {
		c.QueueDrainWindow = d.QueueDrainWindow
	}
	return c
}

// Validate reports settings that cannot work (after defaults are applied).
func (c ShapingConfig) Validate() error {
	c = c.normalized()
	var errs []error
	if c.Limit != (LimitConfig{Disabled: true}) {
		if err := c.Limit.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.QueueSize < 0 || c.QueueSize > 1<<20 {
		errs = append(errs, fmt.Errorf("shaping.queue_size %d not in 0..%d", c.QueueSize, 1<<20))
	}
	if c.QueueDrainWindow < 0 {
		errs = append(errs, fmt.Errorf("shaping.queue_drain_window %v is negative", c.QueueDrainWindow))
	}
	if c.AdmissionBurst < 0 {
		errs = append(errs, fmt.Errorf("shaping.admission_burst %v is negative", c.AdmissionBurst))
	}
	for tier, p := range c.TierPriority {
		if !(p > 0) || math.IsInf(p, 0) {
			errs = append(errs, fmt.Errorf("shaping.tier_priority[%q] %v must be positive and finite", tier, p))
		}
	}
	return errors.Join(errs...)
}

// tierPriority is the priority of a key's tier: the one place the router
// reads a customer's tier, so it can be re-pointed at the customer
// registry when there is one.
func (c ShapingConfig) tierPriority(k *apiKey) float64 {
	if k == nil {
		return 1
	}
	if p, ok := c.TierPriority[keyTier(k)]; ok {
		return p
	}
	return 1
}

// keyTier is the tier of an API key ("" = none).
func keyTier(k *apiKey) string { return k.cfg.Tier }
