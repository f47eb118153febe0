package optimizer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/loopgate/loopgate/event"
)

// fitPolicy makes p encode within event.MaxPolicyEncodedSize, which consumers
// enforce when they decode. A policy names every serving orchestrator in
// every (class, client region), so a large fleet outgrows the limit; the
// steps below give up explanation before allocation, and allocation
// detail only at the exploration floors:
//
//  1. drop the ejected (zero) shares: absent means 0 to the router, and
//     the reason is in the policy's ejections;
//  2. drop the reasons of exploration-floor shares;
//  3. drop the frontier (a dozen points, about 1 KB): it is what the
//     operator could have chosen, never what a router does, and the
//     optimizer's /frontier still serves it; it goes before any step
//     that changes routing;
//  4. drop the exploration-floor shares and renormalise the rest: the
//     router's own exploration still reaches them;
//  5. drop every reason.
//
// It returns the encoding — the one every consumer receives — and the
// number of steps applied, or an error when even step 5 does not fit.
func fitPolicy(p *event.Policy) (encoded []byte, steps int, err error) {
	isFloor := func(s *event.Share) bool {
		return s.Reason == "" || strings.HasPrefix(s.Reason, reasonExploration)
	}
	trim := []func(){
		func() { filterShares(p, func(s *event.Share) bool { return s.Reason != reasonEjected }) },
		func() {
			eachShare(p, func(s *event.Share) {
				if isFloor(s) {
					s.Reason = ""
				}
			})
		},
		func() { p.Frontier = nil },
		func() { filterShares(p, func(s *event.Share) bool { return !isFloor(s) }) },
		func() { eachShare(p, func(s *event.Share) { s.Reason = "" }) },
	}
	for steps = 0; ; steps++ {
		// EncodePolicy refuses a policy over the limit (ErrTooLarge): trim.
		b, err := event.EncodePolicy(*p)
		if err == nil {
			return b, steps, nil
		}
		if !errors.Is(err, event.ErrTooLarge) {
			return nil, steps, err
		}
		if steps == len(trim) {
			return nil, steps, fmt.Errorf("policy exceeds the %d-byte limit even trimmed: %w", event.MaxPolicyEncodedSize, err)
		}
		trim[steps]()
	}
}

func eachShare(p *event.Policy, fn func(*event.Share)) {
	for i := range p.Classes {
		for j := range p.Classes[i].Shares {
			fn(&p.Classes[i].Shares[j])
		}
	}
}

// filterShares keeps the shares for which keep is true and renormalises an
// entry that lost a positive share; an entry it would empty is left alone.
func filterShares(p *event.Policy, keep func(*event.Share) bool) {
	for i := range p.Classes {
		c := &p.Classes[i]
		var out []event.Share
		lost := false
		for _, s := range c.Shares {
			if keep(&s) {
				out = append(out, s)
			} else if s.Share > 0 {
				lost = true
			}
		}
		if len(out) == 0 {
			continue
		}
		if lost {
			v := make([]float64, len(out))
			for j := range out {
				v[j] = out[j].Share
			}
			for j, sh := range roundShares(v) {
				out[j].Share = sh
			}
		}
		c.Shares = out
	}
}
