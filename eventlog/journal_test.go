package eventlog_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

func openJournal(t *testing.T, dir string, max int64) (*eventlog.Journal, []eventlog.Unfinished) {
	t.Helper()
	cfg := eventlog.DefaultJournalConfig()
	cfg.Dir = dir
	if max > 0 {
		cfg.MaxBytes = max
	}
	j, un, err := eventlog.OpenJournal(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return j, un
}

// TestJournalRecoversUnfinished: requests begun and not done come back on
// the next open, with their attempts in order; done ones do not, and a
// torn last record (a crash mid-write) is cut off.
func TestJournalRecoversUnfinished(t *testing.T) {
	dir := t.TempDir()
	j, un := openJournal(t, dir, 0)
	if len(un) != 0 {
		t.Fatalf("a new journal: got %d unfinished, want 0", len(un))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(j.Begin("r1", []byte("begin-1")))
	must(j.Begin("r2", []byte("begin-2")))
	must(j.Attempt("r1", []byte("a1")))
	must(j.Attempt("r2", []byte("b1")))
	must(j.Attempt("r1", []byte("a2")))
	must(j.Begin("r3", []byte("begin-3")))
	must(j.Done("r2"))
	must(j.Attempt("r9", []byte("never begun"))) // ignored
	if got := j.Open(); got != 2 {
		t.Fatalf("open: got %d, want 2", got)
	}
	// No Close: the process dies here, and the last write was torn.
	f, err := os.OpenFile(filepath.Join(dir, "inflight.jnl"), os.O_WRONLY|os.O_APPEND, 0)
	must(err)
	_, err = f.Write([]byte{0, 0, 0, 9, 1, 2})
	must(err)
	f.Close()

	j2, un := openJournal(t, dir, 0)
	defer j2.Close()
	want := []eventlog.Unfinished{
		{ID: "r1", Begin: []byte("begin-1"), Attempts: [][]byte{[]byte("a1"), []byte("a2")}},
		{ID: "r3", Begin: []byte("begin-3")},
	}
	if len(un) != len(want) {
		t.Fatalf("got %d unfinished %+v, want %d", len(un), un, len(want))
	}
	for i, w := range want {
		g := un[i]
		if g.ID != w.ID || string(g.Begin) != string(w.Begin) || !slices.EqualFunc(g.Attempts, w.Attempts, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Errorf("unfinished %d: got %s %q %q, want %s %q %q", i, g.ID, g.Begin, g.Attempts, w.ID, w.Begin, w.Attempts)
		}
	}
	// Recovered requests stay open until done, across another restart.
	must(j2.Done("r1"))
	must(j2.Close())
	j3, un := openJournal(t, dir, 0)
	defer j3.Close()
	if len(un) != 1 || un[0].ID != "r3" {
		t.Fatalf("after r1 done: got %+v, want r3 only", un)
	}
	if err := j2.Begin("x", nil); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("begin after close: got %v, want ErrClosed", err)
	}
}

// TestJournalCompacts: a journal past its size limit is rewritten with the
// open requests only, and still recovers them.
func TestJournalCompacts(t *testing.T) {
	dir := t.TempDir()
	j, _ := openJournal(t, dir, 4<<10)
	payload := make([]byte, 200)
	for i := range 500 {
		id := fmt.Sprintf("r%d", i)
		if err := j.Begin(id, payload); err != nil {
			t.Fatal(err)
		}
		if i%100 != 0 { // every 100th stays open
			if err := j.Done(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := os.Stat(filepath.Join(dir, "inflight.jnl"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 8<<10 {
		t.Errorf("journal file is %d bytes after 500 requests, want it compacted below 8 KiB", st.Size())
	}
	_, un := openJournal(t, dir, 4<<10)
	if len(un) != 5 {
		t.Fatalf("got %d unfinished, want the 5 left open", len(un))
	}
}
