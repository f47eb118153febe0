package dashboards

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMarginQueryMatchesCharges runs the cookbook's margin query on the
// spend_1h rollup against the simulated run and checks every row against
// the simulated outcomes' own charge and cost.
func TestMarginQueryMatchesCharges(t *testing.T) {
	raw, err := os.ReadFile(cookbook)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### Margin per customer, class and day, from the spend rollup\n\n```sql\n(.*?)```").FindSubmatch(raw)
	if m == nil {
		t.Fatalf("no margin-from-rollup query in %s", cookbook)
	}
	st := simulatedStore(t)
	pinned := fmt.Sprintf("toDateTime64('%s', 3, 'UTC')", runEnd.UTC().Format("2006-01-02 15:04:05"))
	rows, err := st.Query(context.Background(), strings.ReplaceAll(string(m[1]), "now()", pinned))
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ day, customer, capability, model string }
	type sums struct {
		n            int64
		charge, cost float64
	}
	want := map[key]*sums{}
	outs, _ := simulate()
	for _, o := range outs {
		k := key{time.UnixMilli(o.StartMs).UTC().Format("2006-01-02"), o.Customer, o.Capability, o.Model}
		if want[k] == nil {
			want[k] = &sums{}
		}
		want[k].n++
		want[k].charge += o.Charge
		want[k].cost += o.Cost
	}
	if rows.Len() != len(want) || len(want) < 2 {
		t.Fatalf("got %d rows, want %d (one per day, customer and class)", rows.Len(), len(want))
	}
	for _, r := range rows.Values {
		k := key{fmt.Sprint(r[0]), fmt.Sprint(r[1]), fmt.Sprint(r[2]), fmt.Sprint(r[3])}
		if d, ok := r[0].(time.Time); ok {
			k.day = d.UTC().Format("2006-01-02")
		}
		w := want[k]
		if w == nil {
			t.Fatalf("got row %v for no simulated class", r)
		}
		n, charged, paid, margin := toInt(r[4]), toF(r[5]), toF(r[6]), toF(r[7])
		if n != w.n || !near(charged, w.charge) || !near(paid, w.cost) || !near(margin, w.charge-w.cost) {
			t.Errorf("%v: got %d requests charged %v paid %v margin %v, want %d %v %v %v", k, n, charged, paid, margin, w.n, w.charge, w.cost, w.charge-w.cost)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func toF(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	}
	return math.NaN()
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case uint64:
		return int64(x)
	case int64:
		return x
	case uint32:
		return int64(x)
	}
	return -1
}
