package dashboards

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The time range of the plugin's own tests (pkg/macros/macros_test.go), so
// the expected strings can be compared with its expectations directly.
var (
	testFrom = time.Date(2014, 11, 12, 11, 45, 26, 371e6, time.UTC)
	testTo   = time.Date(2015, 11, 12, 11, 45, 26, 371e6, time.UTC)
)

type macroCase struct {
	name     string
	sql      string
	interval time.Duration
	want     string
	wantErr  error
}

func runMacroCases(t *testing.T, cases []macroCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExpandMacros(tc.sql, QueryContext{From: testFrom, To: testTo, Interval: tc.interval})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ExpandMacros(%q) error = %v, want %v", tc.sql, err, tc.wantErr)
				}
				if got != tc.sql {
					t.Errorf("ExpandMacros(%q) on error returned %q, want the input unchanged", tc.sql, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ExpandMacros(%q): %v", tc.sql, err)
			}
			if got != tc.want {
				t.Errorf("ExpandMacros(%q)\n got %q\nwant %q", tc.sql, got, tc.want)
			}
		})
	}
}

func TestMacroTimeFilter(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "column", sql: "WHERE $__timeFilter(start_time)", want: "WHERE start_time >= toDateTime(1415792726) AND start_time <= toDateTime(1447328726)"},
		{name: "spaces trimmed", sql: "$__timeFilter( t )", want: "t >= toDateTime(1415792726) AND t <= toDateTime(1447328726)"},
		{name: "expression argument", sql: "$__timeFilter(toDateTime(a, 'UTC'))", want: "toDateTime(a, 'UTC') >= toDateTime(1415792726) AND toDateTime(a, 'UTC') <= toDateTime(1447328726)"},
		{name: "twice", sql: "$__timeFilter(a) OR $__timeFilter(b)", want: "a >= toDateTime(1415792726) AND a <= toDateTime(1447328726) OR b >= toDateTime(1415792726) AND b <= toDateTime(1447328726)"},
		{name: "no argument", sql: "$__timeFilter()", wantErr: ErrMacroArgs},
		{name: "two arguments", sql: "$__timeFilter(a, b)", wantErr: ErrMacroArgs},
		// Comments are blanked to spaces of the same length first.
		{name: "in a line comment", sql: "SELECT 1 -- $__timeFilter(a)\nFROM t", want: "SELECT 1 " + strings.Repeat(" ", 19) + "\nFROM t"},
		{name: "in a block comment", sql: "SELECT /* $__timeFilter(a) */ 1", want: "SELECT " + strings.Repeat(" ", 22) + " 1"},
		// Strings are not protected: the plugin (macropro) expands a macro
		// inside a literal too, so a bare one there fails the query.
		{name: "in a string", sql: "SELECT '$__timeFilter' AS s", wantErr: ErrMacroArgs},
	})
}

func TestMacroTimeFilterMs(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "column", sql: "$__timeFilter_ms(start_time)", want: "start_time >= fromUnixTimestamp64Milli(1415792726371) AND start_time <= fromUnixTimestamp64Milli(1447328726371)"},
		{name: "not read as $__timeFilter", sql: "$__timeFilter_ms(x) AND $__timeFilter(x)", want: "x >= fromUnixTimestamp64Milli(1415792726371) AND x <= fromUnixTimestamp64Milli(1447328726371) AND x >= toDateTime(1415792726) AND x <= toDateTime(1447328726)"},
		{name: "no argument", sql: "$__timeFilter_ms", wantErr: ErrMacroArgs},
	})
}

func TestMacroFromTime(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "bare", sql: "t >= $__fromTime", want: "t >= toDateTime(1415792726)"},
		{name: "empty parentheses", sql: "t >= $__fromTime()", want: "t >= toDateTime(1415792726)"},
		{name: "milliseconds", sql: "$__fromTime_ms", want: "fromUnixTimestamp64Milli(1415792726371)"},
		{name: "longer name left alone", sql: "$__fromTimeX", want: "$__fromTimeX"},
	})
}

func TestMacroToTime(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "bare", sql: "t <= $__toTime", want: "t <= toDateTime(1447328726)"},
		{name: "milliseconds", sql: "$__toTime_ms", want: "fromUnixTimestamp64Milli(1447328726371)"},
		{name: "difference", sql: "dateDiff('second', $__fromTime, $__toTime)", want: "dateDiff('second', toDateTime(1415792726), toDateTime(1447328726))"},
	})
}

func TestMacroTimeInterval(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "20 s", sql: "$__timeInterval(col)", interval: 20 * time.Second, want: "toStartOfInterval(toDateTime(col), INTERVAL 20 second)"},
		{name: "sub-second rounds up to 1", sql: "$__timeInterval(col)", interval: 200 * time.Millisecond, want: "toStartOfInterval(toDateTime(col), INTERVAL 1 second)"},
		{name: "fraction truncated", sql: "$__timeInterval(col)", interval: 1500 * time.Millisecond, want: "toStartOfInterval(toDateTime(col), INTERVAL 1 second)"},
		{name: "zero interval", sql: "$__timeInterval(col)", want: "toStartOfInterval(toDateTime(col), INTERVAL 1 second)"},
		{name: "no argument", sql: "$__timeInterval()", interval: time.Minute, wantErr: ErrMacroArgs},
	})
}

func TestMacroTimeIntervalMs(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "20 s", sql: "$__timeInterval_ms(col)", interval: 20 * time.Second, want: "toStartOfInterval(toDateTime64(col, 3), INTERVAL 20000 millisecond)"},
		{name: "zero interval", sql: "$__timeInterval_ms(col)", want: "toStartOfInterval(toDateTime64(col, 3), INTERVAL 1 millisecond)"},
		{name: "two arguments", sql: "$__timeInterval_ms(a, b)", interval: time.Second, wantErr: ErrMacroArgs},
	})
}

func TestMacroIntervalSeconds(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "20 s", sql: "INTERVAL $__interval_s second", interval: 20 * time.Second, want: "INTERVAL 20 second"},
		{name: "at least 1", sql: "$__interval_s", interval: 10 * time.Millisecond, want: "1"},
		{name: "rate", sql: "count() / $__interval_s", interval: 5 * time.Minute, want: "count() / 300"},
		{name: "interval", sql: "'$__interval' $__interval_ms", interval: 5 * time.Minute, want: "'5m' 300000"},
	})
}

func TestMacroUnknownLeftAlone(t *testing.T) {
	runMacroCases(t, []macroCase{
		{name: "unknown", sql: "$__nope(x) $__", want: "$__nope(x) $__"},
		{name: "conditionalAll is the frontend's", sql: "$__conditionalAll(a IN ($v), $v)", want: "$__conditionalAll(a IN ($v), $v)"},
	})
}

func TestConditionalAll(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  string
		vars map[string]string
		want string
	}{
		// The plugin's own cases (src/data/CHDatasource.test.ts).
		{"all selected", "select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal);",
			map[string]string{"fieldVal": "$__all"}, "select stuff from table where 1=1;"},
		{"values selected", "select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal);",
			map[string]string{"fieldVal": "'val1', 'val2'"}, "select stuff from table where fieldVal in ($fieldVal);"},
		{"two calls", "select stuff from table where $__conditionalAll(fieldVal in ($fieldVal), $fieldVal) and $__conditionalAll(fieldVal in ($fieldVal2), $fieldVal2);",
			map[string]string{"fieldVal": "'val1', 'val2'", "fieldVal2": "$__all"}, "select stuff from table where fieldVal in ($fieldVal) and 1=1;"},
		{"bare", "$__conditionalAll(foo, $fieldVal)", map[string]string{"fieldVal": "$__all"}, "1=1"},
		// loopgate's own edges.
		{"empty value counts as all", "$__conditionalAll(c IN (${cap}), ${cap})", map[string]string{"cap": ""}, "1=1"},
		{"braced variable", "$__conditionalAll(c IN (${cap:singlequote}), ${cap})", map[string]string{"cap": "a,b"}, "c IN (${cap:singlequote})"},
		{"undefined variable keeps the condition", "$__conditionalAll(c = 1, $nope)", map[string]string{}, "c = 1"},
		{"no variable keeps the condition", "$__conditionalAll(c = 1, x)", map[string]string{"x": "$__all"}, "c = 1"},
		{"nested parentheses", "WHERE $__conditionalAll(lower(c) IN (lower($v)), $v) AND 1", map[string]string{"v": "$__all"}, "WHERE 1=1 AND 1"},
		{"one argument stops", "$__conditionalAll(c = 1)", map[string]string{}, "$__conditionalAll(c = 1)"},
		{"unclosed stops", "$__conditionalAll(c = 1, $v", map[string]string{"v": "$__all"}, "$__conditionalAll(c = 1, $v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConditionalAll(tc.sql, tc.vars); got != tc.want {
				t.Errorf("ConditionalAll(%q)\n got %q\nwant %q", tc.sql, got, tc.want)
			}
		})
	}
}
