package fleet

import (
	"errors"
	"fmt"
	"math"
	"net"
	"time"
)

// Config says where and how fast the fleet runs. The zero value is not
// valid; start from DefaultConfig.
type Config struct {
	// Host is the address every orchestrator listens on. Default "127.0.0.1".
	Host string `yaml:"host"`
	// BasePort: when > 0, the i-th orchestrator of the scenario listens on
	// BasePort+i (unless Ports names it). Default 0: a free port each.
	BasePort int `yaml:"base_port"`
	// Ports pins some orchestrators to a port, by id. 0 or absent: BasePort
	// rule, else a free port. Default none.
	Ports map[string]int `yaml:"ports"`
	// Speed runs scenario time Speed times faster than the wall clock: every
	// scenario duration (service times, timeline times, rtt) is divided by
	// it. Speed 10 plays a 600 s scenario in 60 s; the load generator must
	// use the same Speed (it multiplies rates by it), so every
	// orchestrator's utilisation is the scenario's. Default 1.
	Speed float64 `yaml:"speed"`
	// RTTFrom is the region the traffic comes from (the gateway's). When
	// set, every answer is delayed by rtt(RTTFrom, orchestrator region)/Speed
	// from the scenario's rtt_ms, so a router in RTTFrom sees the latency the
	// scenario describes. Default "": no delay (loopback only).
	RTTFrom string `yaml:"rtt_from"`
	// DisableTimeline: do not apply the scenario's timeline; only Set
	// changes the fleet. Default false.
	DisableTimeline bool `yaml:"disable_timeline"`
	// Seed of the service-time and failure draws; each orchestrator has its
	// own stream. Default 0: the scenario's seed.
	Seed int64 `yaml:"seed"`
	// MaxBodyBytes caps a request body; larger ones are answered 413.
	// Default 32 MiB (the router's default).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReopenTimeout bounds how long an orchestrator coming back up retries
	// to bind its old port (another socket may hold it briefly). Default 2s.
	ReopenTimeout time.Duration `yaml:"reopen_timeout"`

	// Clock is the time source. Default (nil): the wall clock.
	Clock Clock `yaml:"-"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Host:          "127.0.0.1",
		Speed:         1,
		MaxBodyBytes:  32 << 20,
		ReopenTimeout: 2 * time.Second,
	}
}

// Validate checks the fields that do not depend on the scenario.
func (c Config) Validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host: required"))
	} else if net.ParseIP(c.Host) == nil && c.Host != "localhost" {
		errs = append(errs, fmt.Errorf("host: %q is not an IP address", c.Host))
	}
	if c.BasePort < 0 || c.BasePort > 65535 {
		errs = append(errs, fmt.Errorf("base_port: got %d, want 0..65535", c.BasePort))
	}
	for id, p := range c.Ports {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("ports.%s: got %d, want 0..65535", id, p))
		}
	}
	if !(c.Speed > 0) || math.IsInf(c.Speed, 0) {
		errs = append(errs, fmt.Errorf("speed: got %v, want > 0", c.Speed))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: got %d, want > 0", c.MaxBodyBytes))
	}
	if c.ReopenTimeout < 0 {
		errs = append(errs, fmt.Errorf("reopen_timeout: got %v, want ≥ 0", c.ReopenTimeout))
	}
	return errors.Join(errs...)
}

// Clock is the fleet's time source.
type Clock interface {
	Now() time.Time
	// Timer fires once after d; stop releases it early.
	Timer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

// WallClock is the real clock.
type WallClock struct{}

// Now returns time.Now().
func (WallClock) Now() time.Time { return time.Now() }

// Timer returns a time.Timer's channel and Stop.
func (WallClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
