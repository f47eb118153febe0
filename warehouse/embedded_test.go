package warehouse

import (
	"context"
	"testing"
)

// TestFailedStatementDoesNotLeak: a statement that fails while it runs
// leaves nothing behind for the next one. chDB kept the failed statement's
// partial output and returned it ahead of the next statement's result, so
// SELECT 7 decoded as zero rows.
func TestFailedStatementDoesNotLeak(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		s := newStore(t, tb)
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			if _, err := s.Query(ctx, "SELECT throwIf(number = 3) FROM system.numbers LIMIT 10"); err == nil {
				t.Fatal("throwIf: got nil, want an error")
			}
			if got := queryInt(t, s, "SELECT 7"); got != 7 {
				t.Errorf("SELECT 7 after a failed statement: got %d, want 7", got)
			}
		}
	})
}
