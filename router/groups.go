package router

import "slices"

// Large classes are drawn in two stages, so a decision costs the same at
// 10,000 orchestrators as at a few hundred.
//
// A class with more than groupThreshold members is cut, once per snapshot,
// into groups of groupSize consecutive members (configuration order). A
// decision then
//
//  1. draws a group g with probability P(g) = m_g / Σ m, where
//     m_g = Σ_{i∈g} ((1−ε)·share_i + ε/n) is the group's policy mass (n the
//     class's members, shares those of the client's region, equal shares
//     without a policy) — O(1), from an alias table built with the snapshot;
//  2. draws a member of g with Choose over g's candidates only: the
//     one-stage rule (policy share, latency, load, failures) restricted to
//     the group, with probability P(i | g).
//
// The logged propensity is P(g)·P(i | g): the exact probability of the
// choice under this two-stage rule. Local signals (latency, in-flight,
// failures) act within a group, not across groups: traffic between groups
// follows the policy's shares, which is what the optimizer sets. When the
// drawn group has no usable candidate (every member tried, at its limit or
// ejected by the policy, or all of them locally ejected), the decision
// falls back to the one-stage rule over the whole class, and the logged
// propensity is that rule's (the probability given the fallback). Classes
// up to groupThreshold members always use the one-stage rule, so small
// fleets decide exactly as before.
const (
	groupThreshold = 256
	groupSize      = 64
)

// groupDraw is one shares vector's group stage: the alias table over the
// class's groups and each group's probability.
type groupDraw struct {
	prob  []float64 // P(g)
	alias aliasTable
}

// pick returns the group u selects and its probability; u in [0, 1).
func (d *groupDraw) pick(u float64) (int, float64) {
	g := d.alias.pick(u)
	return g, d.prob[g]
}

// buildGroups prepares t's group stage for every shares vector it holds,
// or clears it for a class too small to need one.
func (t *classTable) buildGroups(exploration float64) {
	t.groupDefault, t.groupRegion, t.groupEqual = nil, nil, nil
	n := len(t.members)
	if n <= groupThreshold {
		return
	}
	t.groupEqual = newGroupDraw(nil, n, exploration)
	if t.defaultShares != nil {
		t.groupDefault = newGroupDraw(t.defaultShares, n, exploration)
	}
	for region, sh := range t.regionShares {
		if t.groupRegion == nil {
			t.groupRegion = map[string]*groupDraw{}
		}
		t.groupRegion[region] = newGroupDraw(sh, n, exploration)
	}
}

// groups returns the group stage for a client region; nil for a class
// decided in one stage.
func (t *classTable) groups(region string) *groupDraw {
	if t.groupEqual == nil {
		return nil
	}
	if d, ok := t.groupRegion[region]; ok {
		return d
	}
	if t.defaultShares != nil {
		return t.groupDefault
	}
	return t.groupEqual
}

// groupBounds is the member range [lo, hi) of group g.
func groupBounds(g, n int) (lo, hi int) { return g * groupSize, min((g+1)*groupSize, n) }

func newGroupDraw(shares []float64, n int, eps float64) *groupDraw {
	k := (n + groupSize - 1) / groupSize
	mass := make([]float64, k)
	total := 0.0
	for g := range k {
		lo, hi := groupBounds(g, n)
		for i := lo; i < hi; i++ {
			b := 1.0 / float64(n)
			if shares != nil {
				b = eps / float64(n)
				if s := shares[i]; s > 0 {
					b += (1 - eps) * s
				}
			}
			mass[g] += b
		}
		total += mass[g]
	}
	if !(total > 0) {
		// Shares all zero and no exploration: equal groups by size.
		total = 0
		for g := range k {
			lo, hi := groupBounds(g, n)
			mass[g] = float64(hi - lo)
			total += mass[g]
		}
	}
	for g := range mass {
		mass[g] /= total
	}
	return &groupDraw{prob: mass, alias: newAliasTable(mass)}
}

// aliasTable draws index i with probability p_i in O(1) (Vose's method).
type aliasTable struct {
	cut   []float64 // keep i when the fractional draw is below cut[i]
	alias []int32
}

// newAliasTable builds the table for probabilities p summing to 1.
func newAliasTable(p []float64) aliasTable {
	k := len(p)
	t := aliasTable{cut: make([]float64, k), alias: make([]int32, k)}
	scaled := make([]float64, k)
	var small, large []int32
	for i, v := range p {
		scaled[i] = v * float64(k)
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.cut[s], t.alias[s] = scaled[s], l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// Rounding leaves some entries at (almost) 1: they always keep.
	for _, i := range slices.Concat(small, large) {
		t.cut[i], t.alias[i] = 1, i
	}
	return t
}

func (t aliasTable) pick(u float64) int {
	x := u * float64(len(t.cut))
	i := int(x)
	if i >= len(t.cut) {
		i = len(t.cut) - 1
	}
	if x-float64(i) < t.cut[i] {
		return i
	}
	return int(t.alias[i])
}
