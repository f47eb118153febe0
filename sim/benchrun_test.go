package sim

import (
	"bytes"
	"context"
	"testing"
)

// TestBenchRunsMatchesBench checks that BenchRuns reports what Bench does
// and hands over each policy's result in order.
func TestBenchRunsMatchesBench(t *testing.T) {
	sc := loadScenario(t, "price-shift")
	names := []string{PolicyRandom, PolicyLivepeer, PolicyOracle}
	want, err := Bench(context.Background(), sc, names, BenchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	got, err := BenchRuns(context.Background(), sc, names, BenchOptions{}, func(name string, res *Result) {
		if res == nil || len(res.Requests) == 0 {
			t.Errorf("%s: got an empty result", name)
		}
		kept = append(kept, name)
	})
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := want.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := got.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("BenchRuns report differs from Bench:\ngot  %s\nwant %s", b.String(), a.String())
	}
	if len(kept) != len(names) {
		t.Fatalf("got results of %v, want %v", kept, names)
	}
	for i := range names {
		if kept[i] != names[i] {
			t.Errorf("result %d: got %s, want %s", i, kept[i], names[i])
		}
	}
}
