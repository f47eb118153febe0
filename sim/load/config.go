package load

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"
)

// Config says where to send the scenario's demand and how fast. Start from
// DefaultConfig; Target is required.
type Config struct {
	// Target is the base URL requests go to: the router
	// ("http://127.0.0.1:8935"), or one orchestrator. A request of a
	// text-to-image class is POSTed to Target + "/text-to-image". Required.
	Target string `yaml:"target"`
	// APIKeys maps a scenario client id to the key sent as
	// "Authorization: Bearer <key>". A client without a key sends no
	// Authorization header. Default none.
	APIKeys map[string]string `yaml:"api_keys"`
	// Speed runs scenario time Speed times faster than the wall clock, as
	// fleet.Config.Speed does: rates are multiplied by it, timeouts and
	// timeline times divided by it. Use the fleet's value. Default 1.
	Speed float64 `yaml:"speed"`
	// Duration of scenario time to send for, from the scenario's time 0
	// (wall time: Duration/Speed). Default 0: the scenario's duration.
	Duration time.Duration `yaml:"duration"`
	// MaxInFlight bounds requests outstanding at once. An arrival that finds
	// MaxInFlight outstanding is not sent and counted as dropped, so the
	// arrivals stay Poisson (an open loop) and memory stays bounded.
	// Default 1000.
	MaxInFlight int `yaml:"max_in_flight"`
	// DrainTimeout bounds how long Run waits, after the last arrival or a
	// cancel, for requests still in flight; the rest are then cancelled
	// (counted as cancelled). Default 0: the longest class timeout / Speed +
	// 1s, after which every request has ended by itself.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Clients restricts sending to these scenario client ids. Default: all.
	Clients []string `yaml:"clients"`
	// DialTimeout bounds a TCP connect. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`

	// Origin is the wall-clock time of scenario time 0 (fleet.Fleet.Origin,
	// so fleet and load play one timeline). Zero: when Run starts. An origin
	// in the past joins the scenario in progress: arrivals before now are
	// skipped, not sent in a burst.
	Origin time.Time `yaml:"-"`
	// Clock is the time source. Default (nil): the wall clock.
	Clock Clock `yaml:"-"`
	// Transport sends the requests. Default (nil): a dedicated
	// http.Transport without proxy, keeping MaxInFlight idle connections.
	Transport http.RoundTripper `yaml:"-"`
}

// DefaultConfig returns the documented defaults (Target still to set).
func DefaultConfig() Config {
	return Config{Speed: 1, MaxInFlight: 1000, DialTimeout: 5 * time.Second}
}

// Validate checks the fields that do not depend on the scenario.
func (c Config) Validate() error {
	var errs []error
	if c.Target == "" {
		errs = append(errs, errors.New("target: required"))
	} else if u, err := url.Parse(c.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("target: got %q, want a base URL such as http://127.0.0.1:8935", c.Target))
	}
	if !(c.Speed > 0) || math.IsInf(c.Speed, 0) {
		errs = append(errs, fmt.Errorf("speed: got %v, want > 0", c.Speed))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration: got %v, want ≥ 0", c.Duration))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max_in_flight: got %d, want ≥ 1", c.MaxInFlight))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain_timeout: got %v, want ≥ 0", c.DrainTimeout))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: got %v, want > 0", c.DialTimeout))
	}
	return errors.Join(errs...)
}

// Clock is the load generator's time source.
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
