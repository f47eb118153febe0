// Package deps is what every loopgate component is handed instead of
// reaching for globals: a logger, a metrics registry, a clock and a
// random source. Every component's constructor has one shape,
//
//	func New(cfg Config, collaborators..., d deps.Deps) (*T, error)
//
// where cfg has DefaultConfig and Validate, the collaborators are the
// small interfaces the component itself defines (a publisher, a sink, a
// stats reader), and d is this struct. A zero Deps is usable: logs are
// discarded, metrics are not registered, the clock is the wall clock, and
// a component that needs randomness says so with an error. Tests and the
// simulator pass a fixed clock and a seeded source, so a component's
// decisions can be replayed exactly:
//
//	d := deps.Deps{Logger: log, Registerer: reg, Clock: func() time.Time { return t0 }, Rand: rand.New(rand.NewPCG(1, 2))}
//	r, err := router.New(cfg, pub, d)
//
// Clock is the only way a core package reads the time: nothing below cmd
// calls time.Now itself.
package deps

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock returns the current time. A simulator's clock returns virtual
// time; the wall clock is WallClock.
type Clock func() time.Time

// WallClock is the clock of production: time.Now.
func WallClock() Clock { return time.Now }

// Deps are a component's logger, metrics registry, clock and random source.
type Deps struct {
	// Logger receives the component's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the component's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Clock is read for every timestamp and duration; nil is the wall clock.
	Clock Clock
	// Rand drives every random choice; components that need one refuse a
	// nil source. Seed it from the OS in production (SeededRand).
	Rand *mrand.Rand
}

// Log is the logger, never nil.
func (d Deps) Log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Now reads the clock (the wall clock when Clock is nil). A component
// keeps the method value, d.Now, as its clock.
func (d Deps) Now() time.Time {
	if d.Clock == nil {
		return time.Now()
	}
	return d.Clock()
}

// With returns d with its logger extended by args (slog.Logger.With).
func (d Deps) With(args ...any) Deps {
	d.Logger = d.Log().With(args...)
	return d
}

// SeededRand is a ChaCha8 source seeded from the operating system: two
// processes never share a stream (outcome ids draw from it).
func SeededRand() *mrand.Rand {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		// crypto/rand does not fail on supported platforms; the clock is
		// a last resort that still differs between processes.
		binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	}
	return mrand.New(mrand.NewChaCha8(seed))
}
