package dashboards

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/sim/lpevents"
	"github.com/loopgate/loopgate/warehouse"
)

// fillLivepeer stores simulated go-livepeer gateway events spread over the
// simulated run, decoded by the ingest adapter's own decoder, so the
// go-livepeer panels and cookbook queries have rows.
func fillLivepeer(ctx context.Context, st *warehouse.Store) error {
	const n = 3000
	var mu sync.Mutex
	t := runStart
	step := runEnd.Sub(runStart) / n
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(step / 2) // each event reads the clock about twice
		return t
	}
	g, err := lpevents.New(lpevents.DefaultConfig(), deps.Deps{Rand: rand.New(rand.NewPCG(15, 2)), Clock: clock})
	if err != nil {
		return err
	}
	var b event.LivepeerBatch
	for i, e := range g.Events(n) {
		if _, err := ingest.DecodeLivepeer(e.Value, fmt.Sprint("fixture-", i), 0, &b); err != nil {
			return fmt.Errorf("decode fixture %d: %w", i, err)
		}
	}
	return st.WriteLivepeer(ctx, "livepeer-fixtures", &b)
}
