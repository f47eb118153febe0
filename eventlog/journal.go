package eventlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/loopgate/loopgate/deps"
)

// Journal is a router's record of the requests it has in flight, on local
// disk, so that a crash leaves a trace of every request it had accepted:
//
//	Begin(id, rec)     when a request is accepted, before any orchestrator works on it
//	Attempt(id, rec)   when one of its attempts ends
//	Done(id)           when its outcome has been handed to a durable Publisher
//
// After SIGKILL the next OpenJournal on the directory returns the requests
// that began and were never done, with the attempts recorded for them; the
// router publishes each as an interrupted outcome and marks it Done. Every
// record is written with one write(2) before the call returns, so it
// survives the death of the process (the page cache keeps it); like the
// publisher's spill, the journal is not fsynced per record, and a kernel
// crash or power loss can lose its tail.
//
// The file holds the requests in flight and what finished since the last
// compaction: once it passes JournalConfig.MaxBytes it is rewritten with
// only the open requests (written to a temporary file and renamed over
// it). A request whose Done did not reach the file before a crash is
// recovered although its outcome was published: the warehouse keeps one
// row per request id, the first, which is the real outcome (same key, so
// the same partition, earlier in the log).
//
// Safe for concurrent use.
type Journal struct {
	cfg JournalConfig
	log *slog.Logger

	mu   sync.Mutex
	f    *os.File
	size int64
	open map[string]*journalEntry
	buf  []byte
	err  error // a write failed: the journal stops (calls return it)
}

type journalEntry struct {
	begin    []byte
	attempts [][]byte
}

// Unfinished is a request that began before a crash and was never done.
type Unfinished struct {
	ID       string
	Begin    []byte   // what Begin recorded
	Attempts [][]byte // what Attempt recorded, in order
}

// JournalConfig says where the journal is.
type JournalConfig struct {
	// Dir holds the journal file; it must survive restarts and belong to
	// one router. Required.
	Dir string
	// MaxBytes is the size past which the file is compacted to the open
	// requests. Default 16 MiB.
	MaxBytes int64
}

// DefaultJournalConfig returns the defaults; Dir is left empty.
func DefaultJournalConfig() JournalConfig { return JournalConfig{MaxBytes: 16 << 20} }

// Validate reports settings that cannot work.
func (c JournalConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("journal: dir is required")
	}
	if c.MaxBytes < 4<<10 {
		return fmt.Errorf("journal: max_bytes %d is below 4 KiB", c.MaxBytes)
	}
	return nil
}

// Journal record kinds, the first byte of a frame's value.
const (
	journalBegin   = 'b'
	journalAttempt = 'a'
	journalDone    = 'd'
)

const journalFile = "inflight.jnl"

// OpenJournal opens the journal in cfg.Dir and returns the requests a
// previous run left unfinished, oldest first. They stay open in the new
// journal until Done is called for each.
func OpenJournal(cfg JournalConfig, d deps.Deps) (*Journal, []Unfinished, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{cfg: cfg, log: d.Log(), open: map[string]*journalEntry{}}
	order, err := j.load()
	if err != nil {
		return nil, nil, err
	}
	if err := j.compactLocked(); err != nil {
		return nil, nil, err
	}
	var out []Unfinished
	for _, id := range order {
		if e, ok := j.open[id]; ok {
			out = append(out, Unfinished{ID: id, Begin: e.begin, Attempts: e.attempts})
		}
	}
	if len(out) > 0 {
		j.log.Warn("requests in flight at the last stop were never finished", logKeyEvents, len(out), logKeyDir, cfg.Dir)
	}
	return j, out, nil
}

// load reads the file; a torn or damaged tail (a crash mid-write) ends it.
func (j *Journal) load() (order []string, err error) {
	f, err := os.Open(filepath.Join(j.cfg.Dir, journalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	fr := newFrameReader(bufio.NewReader(f), maxSpillPayload)
	for {
		rec, _, err := fr.next()
		if errors.Is(err, io.EOF) {
			return order, nil
		}
		if err != nil {
			j.log.Warn("journal ends in a damaged record; cutting it off", logKeyErr, err)
			return order, nil
		}
		if len(rec.value) == 0 {
			continue
		}
		id, payload := string(rec.key), rec.value[1:]
		switch rec.value[0] {
		case journalBegin:
			if _, seen := j.open[id]; !seen {
				order = append(order, id)
			}
			j.open[id] = &journalEntry{begin: payload}
		case journalAttempt:
			if e := j.open[id]; e != nil {
				e.attempts = append(e.attempts, payload)
			}
		case journalDone:
			delete(j.open, id)
		}
	}
}

// Begin records that request id began; rec is what recovery gets back.
func (j *Journal) Begin(id string, rec []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeLocked(id, journalBegin, rec); err != nil {
		return err
	}
	j.open[id] = &journalEntry{begin: append([]byte(nil), rec...)}
	return nil
}

// Attempt records one ended attempt of request id.
func (j *Journal) Attempt(id string, rec []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.open[id]
	if e == nil {
		return nil // not begun here (or already done): nothing to recover
	}
	if err := j.writeLocked(id, journalAttempt, rec); err != nil {
		return err
	}
	e.attempts = append(e.attempts, append([]byte(nil), rec...))
	return nil
}

// Done records that request id's outcome is safe elsewhere.
func (j *Journal) Done(id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.open[id]; !ok {
		return nil
	}
	if err := j.writeLocked(id, journalDone, nil); err != nil {
		return err
	}
	delete(j.open, id)
	if j.size > j.cfg.MaxBytes {
		return j.compactLocked()
	}
	return nil
}

// Open is the number of requests begun and not done.
func (j *Journal) Open() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.open)
}

func (j *Journal) writeLocked(id string, kind byte, payload []byte) error {
	if j.err != nil {
		return j.err
	}
	if j.f == nil {
		return ErrClosed
	}
	j.buf = appendJournalFrame(j.buf[:0], id, kind, payload)
	n, err := j.f.Write(j.buf)
	j.size += int64(n)
	if err != nil {
		j.err = fmt.Errorf("journal: write: %w", err)
		return j.err
	}
	return nil
}

func appendJournalFrame(dst []byte, id string, kind byte, payload []byte) []byte {
	v := make([]byte, 1+len(payload))
	v[0] = kind
	copy(v[1:], payload)
	return appendFrame(dst, &record{key: []byte(id), value: v})
}

// compactLocked rewrites the file with only the open requests.
func (j *Journal) compactLocked() error {
	path := filepath.Join(j.cfg.Dir, journalFile)
	tmp := path + tmpExt
	var buf []byte
	for id, e := range j.open {
		buf = appendJournalFrame(buf, id, journalBegin, e.begin)
		for _, a := range e.attempts {
			buf = appendJournalFrame(buf, id, journalAttempt, a)
		}
	}
	if err := os.WriteFile(tmp, buf, 0o644); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("journal: reopen: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size = f, int64(len(buf))
	return nil
}

// Close syncs and closes the file; the open requests stay in it.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return ErrClosed
	}
	err := errors.Join(j.f.Sync(), j.f.Close())
	j.f = nil
	return err
}
