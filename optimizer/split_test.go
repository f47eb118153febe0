package optimizer

import "testing"

// TestSplitPanicsReachTheCaller: a panic in the half split runs on its own
// goroutine reaches the caller (which a serial loop's would), after both
// halves stopped, instead of ending the process.
func TestSplitPanicsReachTheCaller(t *testing.T) {
	p := &problem{arcs: make([]parc, exactLPArcs+1)} // above exactLPArcs: split uses two goroutines
	for _, tc := range []struct {
		name   string
		panics int // the index whose half panics
	}{{"first half, on the goroutine", 0}, {"second half, on the caller", 9}} {
		t.Run(tc.name, func(t *testing.T) {
			var done [10]bool
			got := func() (r any) {
				defer func() { r = recover() }()
				p.split(10, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						if i == tc.panics {
							panic("boom")
						}
						done[i] = true
					}
				})
				return nil
			}()
			if got != "boom" {
				t.Fatalf("got %v, want the half's panic", got)
			}
			other := 9 // the half that did not panic ran to its end before split returned
			if tc.panics >= 5 {
				other = 4
			}
			if !done[other] {
				t.Fatalf("the other half had not finished when the panic reached the caller: %v", done)
			}
		})
	}
}
