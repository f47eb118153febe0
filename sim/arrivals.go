package sim

import (
	"slices"
	"sort"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// arrival is one client request before any policy sees it.
type arrival struct {
	at     time.Duration
	client int
	class  int
	region string
}

// genArrivals draws every client's Poisson arrivals over [0, Duration), with
// rates, mixes and regions following the timeline. The result depends on the
// scenario and its seed only, so every policy gets the same requests. A rate
// change restarts the client's exponential clock at the change, which the
// memorylessness of the exponential makes exact.
func genArrivals(sc *scenario.Scenario) []arrival {
	// Segment boundaries: 0, every time a client changes, the end.
	bounds := []time.Duration{0}
	for _, ch := range sc.Timeline {
		if ch.Client != "" && ch.At > 0 && ch.At < sc.Duration && ch.At != bounds[len(bounds)-1] {
			bounds = append(bounds, ch.At)
		}
	}
	bounds = append(bounds, burstBounds(sc)...)
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	bounds = append(bounds, sc.Duration)
	st := sc.Initial()
	next := 0
	var out []arrival
	counts := make([]uint64, len(sc.Clients))
	for k := 0; k+1 < len(bounds); k++ {
		start, end := bounds[k], bounds[k+1]
		for next < len(sc.Timeline) && sc.Timeline[next].At <= start {
			if sc.Timeline[next].Client != "" {
				_ = st.Apply(sc.Timeline[next]) // validated by Parse
			}
			next++
		}
		for i, c := range st.Clients {
			rate := c.RateAt(start)
			if !(rate > 0) {
				continue
			}
			t := float64(start)
			for {
				gap := exponential(draw(sc.Seed, purposeArrival, uint64(i), counts[i], 0)) / rate
				t += gap * float64(time.Second)
				if t >= float64(end) {
					break
				}
				cls := sc.PickClass(c.Mix, unit(draw(sc.Seed, purposeClass, uint64(i), counts[i], 0)))
				counts[i]++
				out = append(out, arrival{at: time.Duration(t), client: i, class: cls, region: c.Region})
			}
			counts[i]++ // the overshooting draw is used up
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].at != out[b].at {
			return out[a].at < out[b].at
		}
		return out[a].client < out[b].client
	})
	return out
}

// burstBounds are the times in (0, Duration) where an on/off client
// switches, so that every segment of genArrivals has one rate per client.
// Scenarios without on/off clients have none (their arrivals are as before).
func burstBounds(sc *scenario.Scenario) []time.Duration {
	var out []time.Duration
	for i := range sc.Clients {
		c := &sc.Clients[i]
		if !c.Bursty() {
			continue
		}
		for t := time.Duration(0); t < sc.Duration; t += c.On + c.Off {
			for _, b := range []time.Duration{t, t + c.On} {
				if b > 0 && b < sc.Duration {
					out = append(out, b)
				}
			}
		}
	}
	return out
}
