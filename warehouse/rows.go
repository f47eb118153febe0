package warehouse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rows is a query result held in memory, with values normalised so both
// backends return the same Go types: int64 for signed integers, uint64 for
// unsigned ones, float64 for floats and decimals, string for strings, enums
// and UUIDs, bool, time.Time (UTC) for dates and times, []any for arrays,
// nil for NULL. Other types (tuples, maps, aggregate states) come back as
// the backend renders them.
type Rows struct {
	Columns []string // column names, in order
	Types   []string // ClickHouse type of each column
	Values  [][]any  // one slice per row, aligned with Columns
}

// Len is the number of rows.
func (r *Rows) Len() int { return len(r.Values) }

// Maps returns each row as a map from column name to value.
func (r *Rows) Maps() []map[string]any {
	out := make([]map[string]any, len(r.Values))
	for i, row := range r.Values {
		m := make(map[string]any, len(r.Columns))
		for j, c := range r.Columns {
			m[c] = row[j]
		}
		out[i] = m
	}
	return out
}

// jsonCompact is chDB's JSONCompact output.
type jsonCompact struct {
	Meta []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"meta"`
	Data [][]any `json:"data"`
}

// parseJSONCompact decodes JSONCompact output (64-bit integers unquoted)
// into Rows.
func parseJSONCompact(b []byte) (*Rows, error) {
	rows := &Rows{}
	if len(bytes.TrimSpace(b)) == 0 {
		return rows, nil
	}
	var jc jsonCompact
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&jc); err != nil {
		return nil, fmt.Errorf("decode JSONCompact result: %w", err)
	}
	for _, m := range jc.Meta {
		rows.Columns = append(rows.Columns, m.Name)
		rows.Types = append(rows.Types, m.Type)
	}
	rows.Values = make([][]any, len(jc.Data))
	for i, row := range jc.Data {
		if len(row) != len(rows.Columns) {
			return nil, fmt.Errorf("decode JSONCompact result: row %d has %d values, want %d", i, len(row), len(rows.Columns))
		}
		for j := range row {
			v, err := fromJSON(rows.Types[j], row[j])
			if err != nil {
				return nil, fmt.Errorf("decode column %s: %w", rows.Columns[j], err)
			}
			row[j] = v
		}
		rows.Values[i] = row
	}
	return rows, nil
}

// fromJSON converts one JSON value of ClickHouse type typ.
func fromJSON(typ string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	base := unwrapType(typ)
	switch {
	case strings.HasPrefix(base, "Array("):
		arr, ok := v.([]any)
		if !ok {
			return v, nil
		}
		elem := strings.TrimSuffix(strings.TrimPrefix(base, "Array("), ")")
		for i := range arr {
			e, err := fromJSON(elem, arr[i])
			if err != nil {
				return nil, err
			}
			arr[i] = e
		}
		return arr, nil
	case strings.HasPrefix(base, "Int"):
		return parseNumber(v, func(s string) (any, error) { return strconv.ParseInt(s, 10, 64) })
	case strings.HasPrefix(base, "UInt"):
		return parseNumber(v, func(s string) (any, error) { return strconv.ParseUint(s, 10, 64) })
	case strings.HasPrefix(base, "Float"), strings.HasPrefix(base, "Decimal"):
		return parseNumber(v, func(s string) (any, error) { return strconv.ParseFloat(s, 64) })
	case base == "Bool":
		return v, nil
	case strings.HasPrefix(base, "DateTime"), base == "Date", base == "Date32":
		s, ok := v.(string)
		if !ok {
			return v, nil
		}
		return parseCHTime(s)
	}
	if n, ok := v.(json.Number); ok {
		return n.String(), nil
	}
	return v, nil
}

// unwrapType strips Nullable(...) and LowCardinality(...).
func unwrapType(t string) string {
	for {
		switch {
		case strings.HasPrefix(t, "Nullable("):
			t = t[len("Nullable(") : len(t)-1]
		case strings.HasPrefix(t, "LowCardinality("):
			t = t[len("LowCardinality(") : len(t)-1]
		default:
			return t
		}
	}
}

func parseNumber(v any, parse func(string) (any, error)) (any, error) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = n.String()
	case string: // quoted 64-bit integers, inf, nan
		s = n
	default:
		return v, nil
	}
	out, err := parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse number %q: %w", s, err)
	}
	return out, nil
}

// parseCHTime reads a Date or DateTime as ClickHouse prints it. Loopgate's
// time columns are all UTC.
func parseCHTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q", s)
}
