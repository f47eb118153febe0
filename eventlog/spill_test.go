package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func rec(key, value string, ms int64) record {
	r := record{value: []byte(value), timeMs: ms}
	if key != "" {
		r.key = []byte(key)
	}
	return r
}

func sameRecord(a, b record) bool {
	return bytes.Equal(a.key, b.key) && bytes.Equal(a.value, b.value) && a.timeMs == b.timeMs
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    record
	}{
		{"key and value", rec("req-1", `{"id":"req-1"}`, 1767225600000)},
		{"no key", rec("", "v", 1)},
		{"empty value", rec("k", "", 0)},
		{"negative time", rec("k", "v", -5)},
		{"binary", record{key: []byte{0, 0xff, 0x80}, value: bytes.Repeat([]byte{0, 1, 2, 0xfe}, 1000), timeMs: 42}},
		{"long key", rec(strings.Repeat("k", 300), "v", 7)}, // two-byte key length
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendFrame([]byte("prefix"), &tt.r)[len("prefix"):]
			if len(b) != frameLen(&tt.r) {
				t.Fatalf("frame length: got %d, want frameLen %d", len(b), frameLen(&tt.r))
			}
			got, n, err := decodeFrame(append(b, "trailing"...), maxSpillPayload)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if n != len(b) || !sameRecord(got, tt.r) {
				t.Fatalf("got %+v (%d bytes), want %+v (%d bytes)", got, n, tt.r, len(b))
			}
			if len(tt.r.key) == 0 && got.key != nil {
				t.Errorf("empty key decoded as %q, want nil (round-robin partitioning)", got.key)
			}
		})
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	good := appendFrame(nil, &record{key: []byte("key"), value: []byte("value"), timeMs: 9})
	mutate := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, errTorn},
		{"short header", good[:5], errTorn},
		{"header only", good[:frameHeaderSize], errTorn},
		{"short payload", good[:len(good)-1], errTorn},
		{"payload bit flip", mutate(func(b []byte) []byte { b[len(b)-2] ^= 0x10; return b }), errCorrupt},
		{"checksum bit flip", mutate(func(b []byte) []byte { b[5] ^= 1; return b }), errCorrupt},
		{"zero length", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 0); return b }), errCorrupt},
		{"length over limit", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, maxSpillPayload+1); return b }), errCorrupt},
		{"zeroed tail", make([]byte, 64), errCorrupt}, // a crash can leave zeros after the data
		{"key length beyond payload", func() []byte {
			p := binary.BigEndian.AppendUint64(nil, 1)
			p = binary.AppendUvarint(p, 1000)
			p = append(p, "abc"...)
			b := binary.BigEndian.AppendUint32(nil, uint32(len(p)))
			b = binary.BigEndian.AppendUint32(b, crc32c(p))
			return append(b, p...)
		}(), errCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeFrame(tt.b, maxSpillPayload)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func testSpillOptions() spillOptions {
	return spillOptions{maxBytes: 1 << 20, segmentBytes: 1 << 10, maxPayload: maxSpillPayload}
}

func openTestSpill(t *testing.T, dir string, opts spillOptions) *spill {
	t.Helper()
	s, err := openSpill(dir, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open spill: %v", err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// drain reads the whole spill through readBatch/commit, as the sender does.
func drain(t *testing.T, s *spill, batch int) []record {
	t.Helper()
	var out []record
	for {
		seq, off, end, ok := s.head()
		if !ok {
			return out
		}
		recs, next, err := s.readBatch(seq, off, end, batch, 1<<20)
		if err != nil {
			t.Fatalf("read batch: %v", err)
		}
		out = append(out, recs...)
		if err := s.commit(seq, next, int64(len(recs))); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}

func numbered(n int, prefix string) []record {
	recs := make([]record, n)
	for i := range recs {
		recs[i] = rec(fmt.Sprintf("k%d", i%7), fmt.Sprintf("%s-%04d", prefix, i), int64(i))
	}
	return recs
}

func checkRecords(t *testing.T, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !sameRecord(got[i], want[i]) {
			t.Fatalf("record %d: got %q=%q@%d, want %q=%q@%d", i, got[i].key, got[i].value, got[i].timeMs, want[i].key, want[i].value, want[i].timeMs)
		}
	}
}

func TestSpillOrderAcrossSegmentsPrependsAndRestarts(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpill(t, dir, testSpillOptions())
	appended := numbered(200, "a")
	for i := range appended[:100] {
		if err := s.append(&appended[i]); err != nil {
			t.Fatal(err)
		}
	}
	// A failed batch goes in front of everything already spilled.
	head := numbered(5, "head")
	seg, err := s.writeHeadSegment(s.reserveHead(), head)
	if err != nil {
		t.Fatal(err)
	}
	s.insertHead(seg)
	for i := range appended[100:] {
		if err := s.append(&appended[100+i]); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segmentNames(t, dir)); n < 3 {
		t.Fatalf("got %d segment files, want several (segmentBytes %d)", n, s.opts.segmentBytes)
	}
	if s.pendRecords != 205 {
		t.Fatalf("pending records: got %d, want 205", s.pendRecords)
	}

	// Send part of it, close, reopen: the rest comes back in order, without
	// what was acknowledged (the cursor remembers the offset inside a
	// partly sent segment).
	seq, off, end, _ := s.head()
	recs, next, err := s.readBatch(seq, off, end, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, head[:3])
	if err := s.commit(seq, next, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTestSpill(t, dir, testSpillOptions())
	if s2.pendRecords != 202 {
		t.Fatalf("after reopen: got %d pending records, want 202", s2.pendRecords)
	}
	more := numbered(3, "b")
	for i := range more {
		if err := s2.append(&more[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := slices.Concat(head[3:], appended, more)
	checkRecords(t, drain(t, s2, 7), want)
	if !s2.empty() || s2.pendBytes != 0 || s2.diskBytes != 0 {
		t.Fatalf("after drain: pending %d records %d bytes, disk %d bytes; want all zero", s2.pendRecords, s2.pendBytes, s2.diskBytes)
	}
	if names := segmentNames(t, dir); len(names) != 0 {
		t.Fatalf("segment files left after drain: %v", names)
	}
}

func segmentNames(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSpillRecoversDamage writes three records, damages the segment in
// various ways, and checks what a reopened spill keeps.
func TestSpillRecoversDamage(t *testing.T) {
	recs := numbered(3, "r")
	frame := func(i int) int { return frameLen(&recs[i]) }
	tests := []struct {
		name        string
		damage      func(t *testing.T, path string, size int64)
		wantRecords int
		wantCut     int64 // bytes cut off; -1: the whole file
	}{
		{"intact", func(*testing.T, string, int64) {}, 3, 0},
		{"torn last record", func(t *testing.T, path string, size int64) {
			truncate(t, path, size-3)
		}, 2, int64(frame(2)) - 3},
		{"torn frame header", func(t *testing.T, path string, size int64) {
			appendTo(t, path, []byte{0, 0, 0})
		}, 3, 3},
		{"checksum mismatch in the last record", func(t *testing.T, path string, size int64) {
			flip(t, path, size-1)
		}, 2, int64(frame(2))},
		{"checksum mismatch in the middle", func(t *testing.T, path string, size int64) {
			flip(t, path, int64(segmentHeaderSize+frame(0)+frameHeaderSize+2))
		}, 1, int64(frame(1) + frame(2))},
		{"zeros after the data", func(t *testing.T, path string, size int64) {
			appendTo(t, path, make([]byte, 100))
		}, 3, 100},
		{"bad header", func(t *testing.T, path string, size int64) {
			flip(t, path, 0)
		}, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openTestSpill(t, dir, testSpillOptions())
			for i := range recs {
				if err := s.append(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			names := segmentNames(t, dir)
			if len(names) != 1 {
				t.Fatalf("got %d segments, want 1", len(names))
			}
			st, err := os.Stat(names[0])
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, names[0], st.Size())
			damaged, _ := os.Stat(names[0])

			s2 := openTestSpill(t, dir, testSpillOptions())
			wantCut := tt.wantCut
			if wantCut < 0 {
				wantCut = damaged.Size()
			}
			if s2.corruptBytes != wantCut {
				t.Errorf("cut: got %d bytes, want %d", s2.corruptBytes, wantCut)
			}
			// What survives must be appendable and read back in order.
			extra := rec("k", "after", 99)
			if err := s2.append(&extra); err != nil {
				t.Fatal(err)
			}
			checkRecords(t, drain(t, s2, 2), append(slices.Clone(recs[:tt.wantRecords]), extra))
		})
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func TestSpillSizeLimit(t *testing.T) {
	opts := testSpillOptions()
	opts.maxBytes = 1000
	s := openTestSpill(t, t.TempDir(), opts)
	r := rec("key", strings.Repeat("v", 80), 1) // 8+8+1+3+80 = 100 bytes a frame
	stored := 0
	for {
		err := s.append(&r)
		if errors.Is(err, errSpillFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stored++
	}
	// 8 bytes of segment header plus 9 frames of 100 bytes fit in 1000.
	if stored != 9 || s.diskBytes > opts.maxBytes {
		t.Fatalf("got %d records in %d bytes, want 9 within %d", stored, s.diskBytes, opts.maxBytes)
	}
	if s.headRoom(100) {
		t.Error("headRoom(100): got true on a full spill")
	}
	// Draining makes room again.
	drain(t, s, 100)
	if err := s.append(&r); err != nil {
		t.Fatalf("append after drain: %v", err)
	}
}

func TestSpillLockedByOneOwner(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpill(t, dir, testSpillOptions())
	if _, err := openSpill(dir, testSpillOptions(), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("second open of a locked spill dir: got nil error")
	}
	s.close()
	s2, err := openSpill(dir, testSpillOptions(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.close()
}

func TestSpillIgnoresUnfinishedPrepend(t *testing.T) {
	dir := t.TempDir()
	s := openTestSpill(t, dir, testSpillOptions())
	r := rec("k", "v", 1)
	if err := s.append(&r); err != nil {
		t.Fatal(err)
	}
	s.close()
	// A crash during a prepend leaves a temporary file.
	tmp := filepath.Join(dir, fmt.Sprintf("%016x%s%s", baseSequence-1, segmentExt, tmpExt))
	if err := os.WriteFile(tmp, []byte(segmentMagic+"garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := openTestSpill(t, dir, testSpillOptions())
	checkRecords(t, drain(t, s2, 10), []record{r})
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file: got %v, want it removed", err)
	}
}

// FuzzDecodeFrame feeds arbitrary bytes (what a damaged disk could hold) to
// the frame decoder and the stream reader: they must not panic or allocate
// beyond the limit, and whatever they accept must re-encode to exactly the
// bytes they consumed.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, &record{key: []byte("k"), value: []byte("v"), timeMs: 1}))
	f.Add(appendFrame(appendFrame(nil, &record{value: []byte("x")}), &record{key: []byte("kk"), timeMs: -1}))
	f.Add([]byte{0, 0, 0, 9, 1, 2, 3, 4})
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 16
		r, n, err := decodeFrame(b, limit)
		if err == nil {
			if got := appendFrame(nil, &r); !bytes.Equal(got, b[:n]) {
				t.Fatalf("accepted frame does not re-encode: got %x, want %x", got, b[:n])
			}
		} else if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
			t.Fatalf("unexpected error kind: %v", err)
		}

		fr := newFrameReader(bytes.NewReader(b), limit)
		var consumed int
		for {
			r, n, err := fr.next()
			if err == io.EOF {
				if consumed != len(b) {
					t.Fatalf("clean end after %d of %d bytes", consumed, len(b))
				}
				return
			}
			if err != nil {
				if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if got := appendFrame(nil, &r); !bytes.Equal(got, b[consumed:consumed+n]) {
				t.Fatalf("stream frame does not re-encode")
			}
			consumed += n
		}
	})
}

func crc32c(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// TestSpillCursorTracksSeveralPartlySentSegments follows what the Publisher
// does when part of a spill batch fails: the failed records go into a new
// head segment and the old segment moves past the batch. Both segments are
// then partly sent, and a restart must resume both where they were.
func TestSpillCursorTracksSeveralPartlySentSegments(t *testing.T) {
	dir := t.TempDir()
	opts := testSpillOptions()
	opts.segmentBytes = 1 << 20
	s := openTestSpill(t, dir, opts)
	recs := numbered(10, "x")
	for i := range recs {
		if err := s.append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	read := func(n int) (uint64, int64, []record) {
		seq, off, end, _ := s.head()
		got, next, err := s.readBatch(seq, off, end, n, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return seq, next, got
	}
	seq, next, got := read(4)
	checkRecords(t, got, recs[:4])
	if err := s.commit(seq, next, 4); err != nil {
		t.Fatal(err)
	}
	// Records 4..7 go out; 5 and 7 fail.
	seq, next, got = read(4)
	checkRecords(t, got, recs[4:8])
	seg, err := s.writeHeadSegment(s.reserveHead(), []record{recs[5], recs[7]})
	if err != nil {
		t.Fatal(err)
	}
	s.insertHead(seg)
	if err := s.commit(seq, next, 4); err != nil {
		t.Fatal(err)
	}
	// Record 5 goes out from the new head segment.
	hseq, hnext, got := read(1)
	checkRecords(t, got, recs[5:6])
	if err := s.commit(hseq, hnext, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTestSpill(t, dir, opts)
	checkRecords(t, drain(t, s2, 10), []record{recs[7], recs[8], recs[9]})
}
