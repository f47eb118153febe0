package warehouse

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// appendTSV appends b in ClickHouse's TabSeparated format: one line per
// row, values escaped so a tab, newline, backslash or NUL inside a string
// cannot break the row (NUL also matters because chDB takes the query as a
// C string).
func appendTSV(buf []byte, b *block) ([]byte, error) {
	for r := 0; r < b.rows; r++ {
		for c, col := range b.cols {
			if c > 0 {
				buf = append(buf, '\t')
			}
			switch v := col.data.(type) {
			case []string:
				buf = appendTSVString(buf, v[r])
			case []int64:
				buf = strconv.AppendInt(buf, v[r], 10)
			case []uint64:
				buf = strconv.AppendUint(buf, v[r], 10)
			case []uint32:
				buf = strconv.AppendUint(buf, uint64(v[r]), 10)
			case []uint16:
				buf = strconv.AppendUint(buf, uint64(v[r]), 10)
			case []uint8:
				buf = strconv.AppendUint(buf, uint64(v[r]), 10)
			case []float64:
				buf = strconv.AppendFloat(buf, v[r], 'g', -1, 64)
			default:
				return nil, fmt.Errorf("encode column %s.%s: unsupported type %T", b.table, col.name, col.data)
			}
		}
		buf = append(buf, '\n')
	}
	return buf, nil
}

func appendTSVString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '\t':
			buf = append(buf, '\\', 't')
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case 0:
			buf = append(buf, '\\', '0')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// appendRowBinary appends b in ClickHouse's RowBinary format.
func appendRowBinary(buf []byte, b *block) ([]byte, error) {
	for r := 0; r < b.rows; r++ {
		for _, col := range b.cols {
			switch v := col.data.(type) {
			case []string:
				buf = binary.AppendUvarint(buf, uint64(len(v[r])))
				buf = append(buf, v[r]...)
			case []int64:
				buf = binary.LittleEndian.AppendUint64(buf, uint64(v[r]))
			case []uint64:
				buf = binary.LittleEndian.AppendUint64(buf, v[r])
			case []uint32:
				buf = binary.LittleEndian.AppendUint32(buf, v[r])
			case []uint16:
				buf = binary.LittleEndian.AppendUint16(buf, v[r])
			case []uint8:
				buf = append(buf, v[r])
			case []float64:
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v[r]))
			default:
				return nil, fmt.Errorf("encode column %s.%s: unsupported type %T", b.table, col.name, col.data)
			}
		}
	}
	return buf, nil
}

// quote returns s as a ClickHouse string literal. Control bytes are
// written as \xHH so no NUL reaches chDB's C string.
func quote(s string) string {
	buf := make([]byte, 0, len(s)+2)
	return string(appendQuoted(buf, s))
}

func appendQuoted(buf []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	buf = append(buf, '\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			buf = append(buf, '\\', c)
		case c < 0x20 || c == 0x7f:
			buf = append(buf, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '\'')
}
