package optimizer

import "sort"

// serverFlow hands the fleet's server-seconds per second to classes in
// priority order, exactly: class after class, each takes as much of what
// it needs as a maximum flow allows without lowering what any class before
// it got. It first takes spare budget on its own orchestrators, those
// fewest classes share first; then it follows augmenting paths, moving an
// earlier class's work from an orchestrator they share to one only the
// earlier class can use (a class with many orchestrators leaves the few a
// narrower class has). Giving each class its share of every
// orchestrator's budget instead, as a first version did, starved classes
// served by a subset of the fleet: on hang-slow it held audio-to-text to
// 31 % of a fleet with room for all of it, and shed 28 % of it.
//
// Work is counted in server-seconds at each class's mean latency: moving
// it between orchestrators does not change it. Each take is bounded
// (maxAugment paths); stopping early can only under-admit a class.
type serverFlow struct {
	r      *round
	spare  []float64   // per orchestrator: budget not yet handed out
	flow   [][]float64 // per class, aligned with classInfo.orchs
	serves [][]arcRef  // per orchestrator: the classes that may use it
	fill   [][]int     // per class: indexes into its orchs, fewest sharers first

	// BFS scratch.
	seenClass []int // generation marks
	seenOrch  []int
	gen       int
	parent    []hop
	queue     []int
}

type arcRef struct{ class, j int }

// hop: class reached from class from over the orchestrator both serve,
// at index fromJ in from's orchestrators and j in its own.
type hop struct{ from, fromJ, j int }

// maxAugment bounds the augmenting paths one take follows.
const maxAugment = 64

func newServerFlow(r *round) *serverFlow {
	f := &serverFlow{
		r: r, spare: make([]float64, len(r.orchs)), flow: make([][]float64, len(r.classes)),
		serves: make([][]arcRef, len(r.orchs)), fill: make([][]int, len(r.classes)),
		seenClass: make([]int, len(r.classes)), seenOrch: make([]int, len(r.orchs)),
		parent: make([]hop, len(r.classes)),
	}
	for ci := range r.classes {
		c := &r.classes[ci]
		f.flow[ci] = make([]float64, len(c.orchs))
		for j, o := range c.orchs {
			if r.orchs[o].eligible {
				f.serves[o] = append(f.serves[o], arcRef{ci, j})
			}
		}
	}
	for ci := range r.classes {
		c := &r.classes[ci]
		idx := make([]int, 0, len(c.orchs))
		for j, o := range c.orchs {
			if r.orchs[o].eligible {
				idx = append(idx, j)
			}
		}
		sort.SliceStable(idx, func(a, b int) bool { return len(f.serves[c.orchs[idx[a]]]) < len(f.serves[c.orchs[idx[b]]]) })
		f.fill[ci] = idx
	}
	return f
}

// eps is what counts as nothing left, relative to a take's need.
func eps(need float64) float64 { return 1e-9 * (1 + need) }

// take gives class ci up to need server-seconds per second and returns
// what it got.
func (f *serverFlow) take(ci int, need float64) float64 {
	got := 0.0
	tiny := eps(need)
	c := &f.r.classes[ci]
	for _, j := range f.fill[ci] {
		if need-got <= tiny {
			break
		}
		o := c.orchs[j]
		if f.spare[o] <= tiny {
			continue
		}
		d := min(f.spare[o], need-got)
		f.flow[ci][j] += d
		f.spare[o] -= d
		got += d
	}
	for n := 0; n < maxAugment && need-got > tiny; n++ {
		d := f.augment(ci, need-got, tiny)
		if d <= tiny {
			break
		}
		got += d
	}
	return got
}

// spareOf is the budget left on class ci's orchestrators.
func (f *serverFlow) spareOf(ci int) float64 {
	s := 0.0
	for _, j := range f.fill[ci] {
		s += f.spare[f.r.classes[ci].orchs[j]]
	}
	return s
}

// augment finds the shortest path (breadth first) from class ci through
// orchestrators that are full to one with spare budget: ci takes some of
// the first one's budget from the class using it, which takes the same
// on the next, and so on. It moves as much as the path allows, at most
// want, and returns it (0: no path).
func (f *serverFlow) augment(ci int, want, tiny float64) float64 {
	f.gen++
	g := f.gen
	f.queue = append(f.queue[:0], ci)
	f.seenClass[ci] = g
	for qi := 0; qi < len(f.queue); qi++ {
		x := f.queue[qi]
		cx := &f.r.classes[x]
		for _, jx := range f.fill[x] {
			o := cx.orchs[jx]
			if f.seenOrch[o] == g {
				continue
			}
			f.seenOrch[o] = g
			if f.spare[o] > tiny {
				return f.push(ci, x, jx, want)
			}
			for _, a := range f.serves[o] {
				if f.seenClass[a.class] == g || f.flow[a.class][a.j] <= tiny {
					continue
				}
				f.seenClass[a.class] = g
				f.parent[a.class] = hop{from: x, fromJ: jx, j: a.j}
				f.queue = append(f.queue, a.class)
			}
		}
	}
	return 0
}

// push moves flow along the path found by augment, ending with class end
// taking spare budget on its orchestrator endJ.
func (f *serverFlow) push(ci, end, endJ int, want float64) float64 {
	o := f.r.classes[end].orchs[endJ]
	d := min(want, f.spare[o])
	for y := end; y != ci; y = f.parent[y].from {
		d = min(d, f.flow[y][f.parent[y].j])
	}
	f.flow[end][endJ] += d
	f.spare[o] -= d
	for y := end; y != ci; {
		h := f.parent[y]
		f.flow[y][h.j] -= d
		f.flow[h.from][h.fromJ] += d
		y = h.from
	}
	return d
}
