package event

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
)

// NewID returns a time-ordered unique id in UUIDv7 layout (RFC 9562): 48 bits
// of Unix milliseconds, then random bits from r. Ids sort by creation time
// and are unique across routers without coordination. Pass crypto/rand.Reader
// in production and a seeded source in tests and simulations.
func NewID(unixMs int64, r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[6:]); err != nil {
		return "", fmt.Errorf("read random bits for id: %w", err)
	}
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(unixMs))
	copy(b[0:6], ts[2:8])
	b[6] = 0x70 | (b[6] & 0x0f) // version 7
	b[8] = 0x80 | (b[8] & 0x3f) // variant 10
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:]), nil
}
