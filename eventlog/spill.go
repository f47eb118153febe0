package eventlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The spill is a directory of segment files that together hold one FIFO of
// records, oldest first:
//
//	LOCK                  flock held while a Publisher owns the directory
//	cursor                how far partly sent segments were sent
//	0000010000000000.seg  segments in sequence order
//	0000010000000001.seg
//
// New records are appended to the newest segment (a new one is started once
// it reaches segmentBytes). Records that must go before everything already
// spilled — a batch that failed after later events were spilled — are
// written as a new segment with a sequence number below all others, written
// to a temporary name and renamed, so it appears whole or not at all. The
// sender reads from the oldest segment, and a segment is deleted once every
// record in it has been acknowledged by Kafka. The cursor file records the
// offset reached in each partly sent segment, so a restart does not send
// them again from their start.
//
// A spill is not safe for concurrent use: the Publisher serializes the
// metadata calls under its mutex. writeHeadSegment and readBatch touch only
// files the caller owns and run without the mutex.

const (
	segmentExt   = ".seg"
	tmpExt       = ".tmp"
	cursorName   = "cursor"
	lockName     = "LOCK"
	baseSequence = uint64(1) << 40 // room below for prepends, above for appends
)

var errSpillFull = errors.New("spill full")

type segment struct {
	seq         uint64
	size        int64 // bytes of valid data, header included
	readOff     int64 // offset of the first frame not yet acknowledged
	records     int64 // frames in the segment
	readRecords int64 // frames acknowledged
}

func (s *segment) pending() int64 { return s.records - s.readRecords }

type spillOptions struct {
	maxBytes     int64 // limit on the segment bytes on disk
	segmentBytes int64 // roll the newest segment at this size
	maxPayload   int   // largest frame payload accepted when reading
}

type spill struct {
	dir    string
	opts   spillOptions
	logger *slog.Logger

	lock      *os.File
	cursor    *os.File
	cursorLen int // bytes of the cursor file's current content

	segs   []*segment // in sequence order
	lo, hi uint64     // next prepend sequence (counts down) and append sequence (counts up)

	tail    *os.File // newest segment open for appends; nil: the next append starts a segment
	tailSeg *segment

	diskBytes    int64 // sum of segment sizes
	pendBytes    int64 // frame bytes not yet acknowledged
	pendRecords  int64 // frames not yet acknowledged
	corruptBytes int64 // discarded on open: torn or damaged tails

	buf []byte // frame scratch for appends

	// Reader side, owned by the sender.
	rf    *os.File
	rfSeq uint64
}

// openSpill opens (creating if needed) the spill in dir, takes its lock and
// loads what a previous run left: each segment is scanned, a torn or damaged
// tail is cut off (logged, and counted in corruptBytes), fully sent segments
// are deleted.
func openSpill(dir string, opts spillOptions, logger *slog.Logger) (*spill, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create spill dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	s := &spill{dir: dir, opts: opts, logger: logger, lock: lock}
	if err := s.load(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *spill) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list spill dir: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpExt):
			// A prepend that did not finish: its records are still in the
			// segments it was made from or were never acknowledged by the
			// caller, so the file is garbage.
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("remove unfinished spill segment: %w", err)
			}
		case strings.HasSuffix(name, segmentExt):
			seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 16, 64)
			if err != nil {
				s.logger.Warn("ignoring unknown file in spill dir", logKeyFile, name)
				continue
			}
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)

	s.cursor, err = os.OpenFile(filepath.Join(s.dir, cursorName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open spill cursor: %w", err)
	}
	cursors := s.readCursor()

	for _, seq := range seqs {
		curOff, hasCursor := cursors[seq]
		if !hasCursor {
			curOff = -1
		}
		seg, err := s.loadSegment(seq, curOff)
		if err != nil {
			return err
		}
		if seg == nil {
			continue
		}
		if seg.pending() == 0 {
			if err := os.Remove(s.segPath(seq)); err != nil {
				return fmt.Errorf("remove sent spill segment: %w", err)
			}
			continue
		}
		s.segs = append(s.segs, seg)
		s.diskBytes += seg.size
		s.pendBytes += seg.size - seg.readOff
		s.pendRecords += seg.pending()
	}
	s.lo, s.hi = baseSequence-1, baseSequence
	if len(seqs) > 0 {
		s.lo, s.hi = seqs[0]-1, seqs[len(seqs)-1]+1
	}
	if s.lo == 0 {
		return errors.New("open spill: segment sequence numbers exhausted; move the spill dir away")
	}
	// Rewrite the cursor now, so it names live segments only: a sequence
	// number freed by a sent segment may be used again, and must not
	// inherit that segment's progress.
	if st, err := s.cursor.Stat(); err == nil {
		s.cursorLen = int(st.Size())
	}
	return s.writeCursor()
}

// loadSegment scans one segment, starting it at curOff (-1: none) if that
// is a record boundary. It returns nil for a file without a valid header
// (removed).
func (s *spill) loadSegment(seq uint64, curOff int64) (*segment, error) {
	path := s.segPath(seq)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open spill segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat spill segment: %w", err)
	}
	var hdr [segmentHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:]) != segmentMagic {
		s.logger.Warn("removing spill segment without a valid header", logKeyFile, path, logKeyBytes, st.Size())
		s.corruptBytes += st.Size()
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove invalid spill segment: %w", err)
		}
		return nil, nil
	}
	seg := &segment{seq: seq, size: int64(segmentHeaderSize), readOff: int64(segmentHeaderSize)}
	fr := newFrameReader(f, s.opts.maxPayload)
	fr.reuse = true
	for {
		if seg.size == curOff {
			seg.readOff, seg.readRecords = seg.size, seg.records
		}
		_, n, err := fr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, errTorn) && !errors.Is(err, errCorrupt) {
				return nil, fmt.Errorf("read spill segment %s: %w", path, err)
			}
			// A crash in the middle of an append leaves a torn last
			// record; a damaged disk leaves anything. Either way the
			// valid data ends here: keep what precedes it.
			cut := st.Size() - seg.size
			s.logger.Warn("cutting torn or corrupt tail of spill segment",
				logKeyFile, path, logKeyOffset, seg.size, logKeyBytes, cut, logKeyErr, err)
			s.corruptBytes += cut
			if err := f.Truncate(seg.size); err != nil {
				return nil, fmt.Errorf("truncate spill segment: %w", err)
			}
			break
		}
		seg.size += int64(n)
		seg.records++
	}
	if seg.readOff == int64(segmentHeaderSize) && curOff > int64(segmentHeaderSize) {
		s.logger.Warn("spill cursor does not match a record boundary, resending the segment from its start",
			logKeyFile, path, logKeyOffset, curOff)
	}
	return seg, nil
}

func (s *spill) segPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", seq, segmentExt))
}

// The cursor file holds the progress of every partly sent segment:
//
//	u32 BE count | count × (u64 BE sequence, u64 BE offset) | u32 BE CRC-32C of what precedes
//
// A torn or damaged file reads as no progress: records are sent again.

// readCursor returns the recorded offsets by segment sequence.
func (s *spill) readCursor() map[uint64]int64 {
	b, err := io.ReadAll(io.NewSectionReader(s.cursor, 0, 1<<20))
	if err != nil || len(b) < 8 {
		return nil
	}
	n := int(binary.BigEndian.Uint32(b))
	if len(b) < 4+16*n+4 {
		return nil
	}
	body := b[:4+16*n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return nil
	}
	out := make(map[uint64]int64, n)
	for i := range n {
		e := body[4+16*i:]
		out[binary.BigEndian.Uint64(e)] = int64(binary.BigEndian.Uint64(e[8:]))
	}
	return out
}

// writeCursor records the progress of every partly sent segment. It is not
// synced: after a machine crash a stale cursor only means some records are
// sent twice.
func (s *spill) writeCursor() error {
	b := make([]byte, 4, 4+16*2+4)
	n := 0
	for _, seg := range s.segs {
		if seg.readOff > int64(segmentHeaderSize) {
			b = binary.BigEndian.AppendUint64(b, seg.seq)
			b = binary.BigEndian.AppendUint64(b, uint64(seg.readOff))
			n++
		}
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if _, err := s.cursor.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write spill cursor: %w", err)
	}
	if len(b) < s.cursorLen {
		if err := s.cursor.Truncate(int64(len(b))); err != nil {
			return fmt.Errorf("truncate spill cursor: %w", err)
		}
	}
	s.cursorLen = len(b)
	return nil
}

// empty reports whether no record waits in the spill.
func (s *spill) empty() bool { return s.pendRecords == 0 }

// append adds r at the end of the spill. It returns an error wrapping
// errSpillFull when the spill would exceed maxBytes, or the I/O error; in
// both cases the spill is unchanged.
func (s *spill) append(r *record) error {
	fl := int64(frameLen(r))
	if s.diskBytes+fl > s.opts.maxBytes {
		return fmt.Errorf("append %d bytes to spill of %d: %w", fl, s.diskBytes, errSpillFull)
	}
	if s.tail != nil && s.tailSeg.size+fl > s.opts.segmentBytes {
		if err := s.closeTail(); err != nil {
			s.logger.Warn("closing full spill segment", logKeyErr, err)
		}
	}
	s.buf = s.buf[:0]
	fresh := s.tail == nil
	if fresh {
		s.buf = append(s.buf, segmentMagic...)
	}
	s.buf = appendFrame(s.buf, r)
	if fresh {
		seg := &segment{seq: s.hi, size: 0, readOff: int64(segmentHeaderSize)}
		f, err := os.OpenFile(s.segPath(seg.seq), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("create spill segment: %w", err)
		}
		if _, err := f.Write(s.buf); err != nil {
			f.Close()
			os.Remove(s.segPath(seg.seq))
			return fmt.Errorf("write spill segment: %w", err)
		}
		s.hi++
		s.tail, s.tailSeg = f, seg
		s.segs = append(s.segs, seg)
	} else if _, err := s.tail.Write(s.buf); err != nil {
		// Undo a partial write so the segment stays a clean sequence of
		// frames, and start a new segment for the next append. If the
		// truncate fails too, the reader stops at the garbage; a restart
		// cuts it off.
		if terr := s.tail.Truncate(s.tailSeg.size); terr != nil {
			s.logger.Warn("truncating spill segment after a failed write", logKeyFile, s.tail.Name(), logKeyErr, terr)
		}
		s.tail.Close()
		s.tail, s.tailSeg = nil, nil
		return fmt.Errorf("write spill segment: %w", err)
	}
	n := int64(len(s.buf))
	s.tailSeg.size += n
	s.tailSeg.records++
	s.diskBytes += n
	s.pendBytes += fl
	s.pendRecords++
	return nil
}

// closeTail closes the newest segment; the next append starts a new one. It
// does not sync: appends run under the Publisher's lock, and an fsync there
// could stall Publish for as long as the disk likes. The data is in the page
// cache, which survives a process crash; close syncs every segment.
func (s *spill) closeTail() error {
	if s.tail == nil {
		return nil
	}
	err := s.tail.Close()
	s.tail, s.tailSeg = nil, nil
	if err != nil {
		return fmt.Errorf("close spill segment: %w", err)
	}
	return nil
}

// reserveHead returns a sequence number below every segment, for
// writeHeadSegment.
func (s *spill) reserveHead() uint64 {
	seq := s.lo
	s.lo--
	return seq
}

// headRoom reports whether n more bytes fit under maxBytes.
func (s *spill) headRoom(n int64) bool { return s.diskBytes+n <= s.opts.maxBytes }

// writeHeadSegment writes recs as the complete segment seq: to a temporary
// file, synced, then renamed, so after a crash it is there whole or not at
// all. It does not touch the spill's metadata; insertHead publishes it.
func (s *spill) writeHeadSegment(seq uint64, recs []record) (*segment, error) {
	final := s.segPath(seq)
	tmp := final + tmpExt
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create spill segment: %w", err)
	}
	seg := &segment{seq: seq, size: int64(segmentHeaderSize), readOff: int64(segmentHeaderSize)}
	bw := bufio.NewWriterSize(f, 256<<10)
	bw.WriteString(segmentMagic)
	var buf []byte
	for i := range recs {
		buf = appendFrame(buf[:0], &recs[i])
		bw.Write(buf)
		seg.size += int64(len(buf))
		seg.records++
	}
	err = bw.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("write spill segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		s.logger.Warn("syncing spill dir", logKeyDir, s.dir, logKeyErr, err)
	}
	return seg, nil
}

// insertHead adds a segment made by writeHeadSegment.
func (s *spill) insertHead(seg *segment) {
	i, _ := slices.BinarySearchFunc(s.segs, seg.seq, func(a *segment, seq uint64) int {
		switch {
		case a.seq < seq:
			return -1
		case a.seq > seq:
			return 1
		}
		return 0
	})
	s.segs = slices.Insert(s.segs, i, seg)
	s.diskBytes += seg.size
	s.pendBytes += seg.size - seg.readOff
	s.pendRecords += seg.pending()
}

// head returns the position of the oldest unsent record: its segment, the
// offset and the end of the valid data in that segment.
func (s *spill) head() (seq uint64, off, end int64, ok bool) {
	if len(s.segs) == 0 {
		return 0, 0, 0, false
	}
	h := s.segs[0]
	return h.seq, h.readOff, h.size, true
}

// readBatch reads records of segment seq from off up to end, at most maxN
// records and (beyond the first) maxBytes of memSize. It returns the records
// and the offset after the last. An error wrapping errTorn or errCorrupt
// comes with the records before the damage and the damage's offset as next.
// Only the sender calls it, without the Publisher's mutex: the bytes below
// end never change.
func (s *spill) readBatch(seq uint64, off, end int64, maxN int, maxBytes int64) (recs []record, next int64, err error) {
	if s.rf == nil || s.rfSeq != seq {
		if s.rf != nil {
			s.rf.Close()
			s.rf = nil
		}
		f, err := os.Open(s.segPath(seq))
		if err != nil {
			return nil, off, fmt.Errorf("open spill segment: %w", err)
		}
		s.rf, s.rfSeq = f, seq
	}
	fr := newFrameReader(io.NewSectionReader(s.rf, off, end-off), s.opts.maxPayload)
	next = off
	var bytes int64
	for len(recs) < maxN && next < end {
		r, n, err := fr.next()
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("%w: segment ends before its recorded size", errTorn)
			}
			return recs, next, fmt.Errorf("read spill segment %s at %d: %w", s.segPath(seq), next, err)
		}
		if len(recs) > 0 && bytes+r.memSize() > maxBytes {
			break
		}
		recs = append(recs, r)
		bytes += r.memSize()
		next += int64(n)
	}
	return recs, next, nil
}

// commit marks the records of segment seq before off (n of them) as sent.
// A segment with nothing left is deleted.
func (s *spill) commit(seq uint64, off int64, n int64) error {
	i := slices.IndexFunc(s.segs, func(g *segment) bool { return g.seq == seq })
	if i < 0 {
		return fmt.Errorf("commit spill segment %016x: no such segment", seq)
	}
	seg := s.segs[i]
	s.pendBytes -= off - seg.readOff
	s.pendRecords -= n
	seg.readOff = off
	seg.readRecords += n
	if seg.pending() == 0 {
		if err := s.remove(i); err != nil {
			return err
		}
	}
	return s.writeCursor()
}

// dropRest discards the unsent records of segment seq (damaged data) and
// returns how many there were.
func (s *spill) dropRest(seq uint64) (int64, error) {
	i := slices.IndexFunc(s.segs, func(g *segment) bool { return g.seq == seq })
	if i < 0 {
		return 0, nil
	}
	seg := s.segs[i]
	lost := seg.pending()
	s.pendBytes -= seg.size - seg.readOff
	s.pendRecords -= lost
	if err := s.remove(i); err != nil {
		return lost, err
	}
	return lost, s.writeCursor()
}

func (s *spill) remove(i int) error {
	seg := s.segs[i]
	if s.tailSeg == seg {
		s.tail.Close()
		s.tail, s.tailSeg = nil, nil
	}
	if s.rf != nil && s.rfSeq == seg.seq {
		s.rf.Close()
		s.rf = nil
	}
	s.segs = slices.Delete(s.segs, i, i+1)
	s.diskBytes -= seg.size
	if err := os.Remove(s.segPath(seg.seq)); err != nil {
		return fmt.Errorf("remove sent spill segment: %w", err)
	}
	return nil
}

// sync makes everything appended so far durable.
func (s *spill) sync() error {
	var errs []error
	for _, seg := range s.segs {
		if err := syncFile(s.segPath(seg.seq)); err != nil {
			errs = append(errs, fmt.Errorf("sync spill segment: %w", err))
		}
	}
	if s.cursor != nil {
		if err := s.cursor.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("sync spill cursor: %w", err))
		}
	}
	if err := syncDir(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("sync spill dir: %w", err))
	}
	return errors.Join(errs...)
}

// close syncs and closes every file and releases the directory lock.
func (s *spill) close() error {
	err := s.sync()
	if s.tail != nil {
		s.tail.Close()
		s.tail, s.tailSeg = nil, nil
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
	if s.cursor != nil {
		s.cursor.Close()
		s.cursor = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
