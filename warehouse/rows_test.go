package warehouse

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseJSONCompact(t *testing.T) {
	in := `{"meta":[{"name":"u","type":"UInt64"},{"name":"i","type":"Nullable(Int32)"},{"name":"f","type":"Float64"},
		{"name":"s","type":"LowCardinality(String)"},{"name":"t","type":"DateTime64(3, 'UTC')"},{"name":"a","type":"Array(UInt8)"},
		{"name":"q","type":"Array(Float64)"}],
		"data":[[18446744073709551615, null, 0.25, "x", "2026-01-01 00:00:01.500", [1, 2], [1.5, 2]]], "rows": 1}`
	rows, err := parseJSONCompact([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{uint64(18446744073709551615), nil, 0.25, "x",
		time.Date(2026, 1, 1, 0, 0, 1, 500e6, time.UTC), []any{uint64(1), uint64(2)}, []any{1.5, 2.0}}
	if !reflect.DeepEqual(rows.Values[0], want) {
		t.Fatalf("got %#v, want %#v", rows.Values[0], want)
	}
	if empty, err := parseJSONCompact(nil); err != nil || empty.Len() != 0 {
		t.Fatalf("empty output: got %v, %v, want no rows", empty, err)
	}
	if _, err := parseJSONCompact([]byte(`{"meta":[{"name":"a","type":"UInt8"}],"data":[[1,2]]}`)); err == nil {
		t.Fatal("got nil error for a row wider than meta")
	}
}

func TestSplitStatements(t *testing.T) {
	in := "-- header\nCREATE TABLE a (x UInt8);\n\n-- about b\nCREATE VIEW b AS\nSELECT 1;\n-- trailing comment\n"
	got := splitStatements(in)
	if len(got) != 2 || !strings.HasPrefix(got[0], "-- header\nCREATE TABLE a") || !strings.HasSuffix(got[1], "SELECT 1") {
		t.Fatalf("got %q, want two statements", got)
	}
}
