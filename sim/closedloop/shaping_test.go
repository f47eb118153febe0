package closedloop

import (
	"testing"

	"github.com/loopgate/loopgate/router"
)

// TestWaitingRetryTakesOnlyUntried: a slot freed on an orchestrator goes
// to a waiting request whose class it serves, never back to a retry that
// already failed on it (the router's waiter rule).
func TestWaitingRetryTakesOnlyUntried(t *testing.T) {
	s := newShaping(router.ShapingConfig{}, 3)
	serves := func(o, class int) bool { return class == 0 && o < 2 } // orchestrators 0 and 1 serve class 0
	s.classOf[7], s.classOf[8] = 0, 0
	s.tried[8] = []int{0}
	for _, tc := range []struct {
		name  string
		id, o int
		want  bool
	}{
		{"first attempt on 0", 7, 0, true},
		{"first attempt on 1", 7, 1, true},
		{"not its class", 7, 2, false},
		{"retry on the one it failed on", 8, 0, false},
		{"retry on another", 8, 1, true},
	} {
		if got := s.takes(serves, tc.id, tc.o); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	s.leave(8)
	if _, ok := s.tried[8]; ok {
		t.Error("leave kept the retry's tried list")
	}
}
