package eventlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A spill segment is a file of framed records after a fixed header:
//
//	header  "lgspill" + version byte 0x01                        8 bytes
//	frame   u32 BE payload length | u32 BE CRC-32C(payload) | payload
//	payload i64 BE record time (Unix ms) | uvarint key length | key | value
//
// The length and checksum let a reader tell a complete record from a torn
// one (a crash in the middle of a write) or a damaged one, and stop there.
const (
	segmentMagic      = "lgspill\x01"
	segmentHeaderSize = len(segmentMagic)
	frameHeaderSize   = 8
	minPayloadSize    = 8 + 1 // time and a zero key length
	// recordOverhead is what one queued event costs besides its key and
	// value: the record struct and slice headers. It makes MaxQueuedBytes
	// bound real memory even for tiny events.
	recordOverhead = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errTorn: the data ends inside a frame.
	errTorn = errors.New("torn record")
	// errCorrupt: a frame that is complete but wrong (length out of range,
	// checksum mismatch, malformed payload).
	errCorrupt = errors.New("corrupt record")
)

// record is one event in memory, in the spill, or on its way to Kafka.
type record struct {
	key     []byte
	value   []byte
	headers []Header // Writer only; the Publisher's events have none and the spill does not store them
	timeMs  int64
}

// memSize is what the record counts against MaxQueuedBytes and batch
// limits.
func (r *record) memSize() int64 {
	n := int64(len(r.key)+len(r.value)) + recordOverhead
	for _, h := range r.headers {
		n += int64(len(h.Key)+len(h.Value)) + 16
	}
	return n
}

// payloadLen is the payload size of r in a frame.
func payloadLen(keyLen, valueLen int) int {
	return 8 + uvarintLen(uint64(keyLen)) + keyLen + valueLen
}

// frameLen is the size of r on disk.
func frameLen(r *record) int { return frameHeaderSize + payloadLen(len(r.key), len(r.value)) }

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendFrame appends the frame of r to dst.
func appendFrame(dst []byte, r *record) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.timeMs))
	dst = binary.AppendUvarint(dst, uint64(len(r.key)))
	dst = append(dst, r.key...)
	dst = append(dst, r.value...)
	payload := dst[start+frameHeaderSize:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// decodeFrame decodes the frame at the start of b. It returns the record,
// whose key and value alias b, and the frame's size. maxPayload bounds the
// length field, so damage there cannot make a reader allocate or skip
// gigabytes. The error wraps errTorn when b ends inside the frame and
// errCorrupt when the frame is wrong.
func decodeFrame(b []byte, maxPayload int) (record, int, error) {
	if len(b) < frameHeaderSize {
		return record{}, 0, fmt.Errorf("%w: %d header bytes of %d", errTorn, len(b), frameHeaderSize)
	}
	n, err := checkLength(binary.BigEndian.Uint32(b), maxPayload)
	if err != nil {
		return record{}, 0, err
	}
	if len(b)-frameHeaderSize < n {
		return record{}, 0, fmt.Errorf("%w: %d payload bytes of %d", errTorn, len(b)-frameHeaderSize, n)
	}
	r, err := decodePayload(b[frameHeaderSize:frameHeaderSize+n], binary.BigEndian.Uint32(b[4:]))
	if err != nil {
		return record{}, 0, err
	}
	return r, frameHeaderSize + n, nil
}

func checkLength(n uint32, maxPayload int) (int, error) {
	if n < minPayloadSize || uint64(n) > uint64(maxPayload) {
		return 0, fmt.Errorf("%w: payload length %d not in [%d, %d]", errCorrupt, n, minPayloadSize, maxPayload)
	}
	return int(n), nil
}

// decodePayload checks p against its checksum and splits it. The key and
// value alias p.
func decodePayload(p []byte, sum uint32) (record, error) {
	if got := crc32.Checksum(p, castagnoli); got != sum {
		return record{}, fmt.Errorf("%w: checksum %08x, want %08x", errCorrupt, got, sum)
	}
	ts := int64(binary.BigEndian.Uint64(p))
	keyLen, n := binary.Uvarint(p[8:])
	if n <= 0 || keyLen > uint64(len(p)-8-n) {
		return record{}, fmt.Errorf("%w: bad key length", errCorrupt)
	}
	rest := p[8+n:]
	r := record{timeMs: ts, value: rest[keyLen:]}
	if keyLen > 0 {
		r.key = rest[:keyLen:keyLen]
	}
	return r, nil
}

// frameReader reads frames from a stream. By default it allocates one buffer
// per record, so the records may outlive the reader.
type frameReader struct {
	br         *bufio.Reader
	maxPayload int
	hdr        [frameHeaderSize]byte
	reuse      bool   // reuse one buffer: records are only valid until the next call
	buf        []byte // the reused buffer
}

func newFrameReader(r io.Reader, maxPayload int) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, 64<<10), maxPayload: maxPayload}
}

// next returns the next record and its frame size. It returns io.EOF at a
// clean end, and errors wrapping errTorn or errCorrupt where the valid data
// ends.
func (fr *frameReader) next() (record, int, error) {
	if _, err := io.ReadFull(fr.br, fr.hdr[:]); err != nil {
		if err == io.EOF {
			return record{}, 0, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return record{}, 0, fmt.Errorf("%w: short frame header", errTorn)
		}
		return record{}, 0, err
	}
	n, err := checkLength(binary.BigEndian.Uint32(fr.hdr[:]), fr.maxPayload)
	if err != nil {
		return record{}, 0, err
	}
	var p []byte
	if fr.reuse {
		if cap(fr.buf) < n {
			fr.buf = make([]byte, n)
		}
		p = fr.buf[:n]
	} else {
		p = make([]byte, n)
	}
	if _, err := io.ReadFull(fr.br, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return record{}, 0, fmt.Errorf("%w: short payload", errTorn)
		}
		return record{}, 0, err
	}
	r, err := decodePayload(p, binary.BigEndian.Uint32(fr.hdr[4:]))
	if err != nil {
		return record{}, 0, err
	}
	return r, frameHeaderSize + n, nil
}
