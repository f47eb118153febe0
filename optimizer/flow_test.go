package optimizer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// flowRound is a round with only what serverFlow reads: which
// orchestrators serve each class and which are eligible.
func flowRound(serves [][]int, orchs int, ineligible ...int) *round {
	r := &round{orchs: make([]orchInfo, orchs)}
	for i := range r.orchs {
		r.orchs[i].eligible = true
	}
	for _, o := range ineligible {
		r.orchs[o].eligible = false
	}
	for _, os := range serves {
		r.classes = append(r.classes, classInfo{orchs: os})
	}
	return r
}

// takeAll runs the flow's takes in class order.
func takeAll(r *round, spare, need []float64) []float64 {
	f := newServerFlow(r)
	copy(f.spare, spare)
	got := make([]float64, len(need))
	for ci := range need {
		got[ci] = f.take(ci, need[ci])
	}
	return got
}

func TestServerFlow(t *testing.T) {
	tests := []struct {
		name   string
		serves [][]int // per class, in priority order
		spare  []float64
		need   []float64
		want   []float64
		inelig []int
	}{
		// The first version split the broad class over all three, leaving
		// the narrow one 2 of the 4 it needs on orchestrator 0.
		{"a broad class leaves a narrow one its orchestrator", [][]int{{0, 1, 2}, {0}}, []float64{4, 4, 4}, []float64{8, 4}, []float64{8, 4}, nil},
		// Only an augmenting path finds this: the broad class took 0 first
		// (its fewest-shared orchestrators are all shared alike).
		{"rerouting an earlier class", [][]int{{0, 1}, {0}, {1, 2}}, []float64{3, 3, 3}, []float64{3, 3, 3}, []float64{3, 3, 3}, nil},
		{"over capacity: the earlier class keeps its share", [][]int{{0, 1}, {0, 1}}, []float64{2, 2}, []float64{3, 3}, []float64{3, 1}, nil},
		{"an ineligible orchestrator offers nothing", [][]int{{0, 1}}, []float64{2, 2}, []float64{3}, []float64{2}, []int{1}},
		{"no need, nothing taken", [][]int{{0}}, []float64{2}, []float64{0}, []float64{0}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := flowRound(tc.serves, len(tc.spare), tc.inelig...)
			spare := append([]float64(nil), tc.spare...)
			for _, o := range tc.inelig {
				spare[o] = 0 // admission gives ineligible orchestrators no budget
			}
			got := takeAll(r, spare, tc.need)
			for ci := range got {
				if math.Abs(got[ci]-tc.want[ci]) > 1e-9 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestServerFlowMatchesLP checks the flow against the exact answer on
// random small fleets: for each class in priority order, the LP that
// maximises its total with every earlier class's total held.
func TestServerFlowMatchesLP(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 300; trial++ {
		nc, no := 1+rng.IntN(4), 1+rng.IntN(6)
		serves := make([][]int, nc)
		for ci := range serves {
			for o := 0; o < no; o++ {
				if rng.Float64() < 0.5 {
					serves[ci] = append(serves[ci], o)
				}
			}
		}
		spare, need := make([]float64, no), make([]float64, nc)
		for o := range spare {
			spare[o] = float64(rng.IntN(5))
		}
		for ci := range need {
			need[ci] = float64(rng.IntN(8))
		}
		got := takeAll(flowRound(serves, no), spare, need)
		want := lexMaxFlow(t, serves, spare, need)
		for ci := range got {
			if math.Abs(got[ci]-want[ci]) > 1e-6 {
				t.Fatalf("trial %d: serves %v spare %v need %v: got %v, want %v (LP)", trial, serves, spare, need, got, want)
			}
		}
	}
}

// lexMaxFlow solves the priority allocation exactly with gonum's simplex:
// one LP maximising Σ_k 1000^(n−1−k)·total_k, whose weights make it
// lexicographic (a class's gain can never buy a loss of one unit of an
// earlier class: totals are at most 8 × 4 here). Variables: x[c][o] per
// arc, then one slack per orchestrator and per class, all ≥ 0:
// Σ_c x[c][o] + s_o = spare[o]; Σ_o x[c][o] + t_c = need[c].
func lexMaxFlow(t *testing.T, serves [][]int, spare, need []float64) []float64 {
	t.Helper()
	type arc struct{ c, o int }
	var arcs []arc
	for c, os := range serves {
		for _, o := range os {
			arcs = append(arcs, arc{c, o})
		}
	}
	nc, no, na := len(serves), len(spare), len(arcs)
	nv := na + no + nc
	A := mat.NewDense(no+nc, nv, nil)
	b := make([]float64, no+nc)
	cost := make([]float64, nv)
	for i, a := range arcs {
		A.Set(a.o, i, 1)
		A.Set(no+a.c, i, 1)
		cost[i] = -math.Pow(1000, float64(nc-1-a.c))
	}
	for o := 0; o < no; o++ {
		A.Set(o, na+o, 1)
		b[o] = spare[o]
	}
	for c := 0; c < nc; c++ {
		A.Set(no+c, na+no+c, 1)
		b[no+c] = need[c]
	}
	_, x, err := lp.Simplex(cost, A, b, 0, nil)
	if err != nil {
		t.Fatalf("LP: %v (serves %v spare %v need %v)", err, serves, spare, need)
	}
	got := make([]float64, nc)
	for i, a := range arcs {
		got[a.c] += x[i]
	}
	return got
}

func BenchmarkServerFlow(b *testing.B) {
	for _, size := range []struct{ orchs, classes int }{{100, 5}, {1000, 100}} {
		b.Run(fmt.Sprintf("%dx%d", size.orchs, size.classes), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			serves := make([][]int, size.classes)
			for ci := range serves {
				for o := 0; o < size.orchs; o++ {
					if rng.Float64() < 0.3 {
						serves[ci] = append(serves[ci], o)
					}
				}
			}
			r := flowRound(serves, size.orchs)
			spare := make([]float64, size.orchs)
			for o := range spare {
				spare[o] = 0.9 * float64(1+rng.IntN(4))
			}
			need := make([]float64, size.classes)
			for ci := range need { // 1.2× the fleet in all: the last classes are short
				need[ci] = 1.2 * 0.9 * 2.5 * float64(size.orchs) / float64(size.classes)
			}
			b.ResetTimer()
			for range b.N {
				takeAll(r, spare, need)
			}
		})
	}
}
