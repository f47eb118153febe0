package dashboards

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// QueryContext is what the Grafana ClickHouse plugin knows about a query
// when it expands macros: the dashboard's time range and the interval
// Grafana chose for the panel (time range / max data points, rounded).
type QueryContext struct {
	From, To time.Time
	Interval time.Duration
}

// ErrMacroArgs is returned (wrapped) when a macro gets the wrong number of
// arguments, as the plugin's sqlutil.ErrorBadArgumentCount.
var ErrMacroArgs = errors.New("bad argument count")

// macroFunc expands one macro call; args are the comma-separated,
// whitespace-trimmed arguments between its parentheses.
type macroFunc func(q QueryContext, args []string) (string, error)

// clickHouseMacros are the server-side macros of grafana-clickhouse-datasource
// (pkg/macros) that loopgate's panels may use, with the plugin's output
// byte for byte. The statement macros ($__columns, $__lttb, ...) and
// $__timeGroup are left out: no panel uses them.
var clickHouseMacros = map[string]macroFunc{
	"timeFilter":      filterMacro("$__timeFilter", toDateTime),
	"timeFilter_ms":   filterMacro("$__timeFilter_ms", toDateTime64),
	"dateFilter":      filterMacro("$__dateFilter", toDate),
	"fromTime":        func(q QueryContext, _ []string) (string, error) { return toDateTime(q.From), nil },
	"toTime":          func(q QueryContext, _ []string) (string, error) { return toDateTime(q.To), nil },
	"fromTime_ms":     func(q QueryContext, _ []string) (string, error) { return toDateTime64(q.From), nil },
	"toTime_ms":       func(q QueryContext, _ []string) (string, error) { return toDateTime64(q.To), nil },
	"timeFrom":        boundMacro("$__timeFrom", ">=", func(q QueryContext) time.Time { return q.From }),
	"timeTo":          boundMacro("$__timeTo", "<=", func(q QueryContext) time.Time { return q.To }),
	"timeInterval":    timeInterval,
	"timeInterval_ms": timeIntervalMs,
	"interval_s":      func(q QueryContext, _ []string) (string, error) { return strconv.Itoa(intervalSeconds(q)), nil },
	// macropro's dialect-neutral defaults that the plugin keeps.
	"interval": func(q QueryContext, _ []string) (string, error) { return formatDuration(q.Interval), nil },
	"interval_ms": func(q QueryContext, _ []string) (string, error) {
		return strconv.FormatInt(q.Interval.Milliseconds(), 10), nil
	},
}

// macroNames are the macro names, longest first, so that $__timeFilter_ms
// is never read as $__timeFilter followed by "_ms".
var macroNames = func() []string {
	names := make([]string, 0, len(clickHouseMacros))
	for n := range clickHouseMacros {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) > len(names[j])
		}
		return names[i] < names[j]
	})
	return names
}()

func toDate(t time.Time) string     { return fmt.Sprintf("toDate('%s')", t.Format("2006-01-02")) }
func toDateTime(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
func toDateTime64(t time.Time) string {
	return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli())
}

// filterMacro is $__timeFilter(col) and its kin: col >= F(from) AND col <= F(to).
func filterMacro(name string, conv func(time.Time) string) macroFunc {
	return func(q QueryContext, args []string) (string, error) {
		if len(args) != 1 {
			return "", badArgs(name, 1, len(args))
		}
		col := args[0]
		return fmt.Sprintf("%s >= %s AND %s <= %s", col, conv(q.From), col, conv(q.To)), nil
	}
}

// boundMacro is $__timeFrom(col) / $__timeTo(col): one side of the range.
func boundMacro(name, op string, at func(QueryContext) time.Time) macroFunc {
	return func(q QueryContext, args []string) (string, error) {
		if len(args) != 1 {
			return "", badArgs(name, 1, len(args))
		}
		return fmt.Sprintf("%s %s %s", args[0], op, toDateTime(at(q))), nil
	}
}

func timeInterval(q QueryContext, args []string) (string, error) {
	if len(args) != 1 {
		return "", badArgs("$__timeInterval", 1, len(args))
	}
	return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], intervalSeconds(q)), nil
}

func timeIntervalMs(q QueryContext, args []string) (string, error) {
	if len(args) != 1 {
		return "", badArgs("$__timeInterval_ms", 1, len(args))
	}
	ms := int(math.Max(float64(q.Interval.Milliseconds()), 1))
	return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", args[0], ms), nil
}

// intervalSeconds is the interval in whole seconds, at least 1 (truncated,
// as the plugin's int(math.Max(seconds, 1))).
func intervalSeconds(q QueryContext) int { return int(math.Max(q.Interval.Seconds(), 1)) }

func badArgs(name string, want, got int) error {
	return fmt.Errorf("%w: %s expected %d argument(s), received %d", ErrMacroArgs, name, want, got)
}

// formatDuration is macropro's FormatDuration: the largest whole unit.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		d = -d
	}
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}

// ExpandMacros expands the plugin's server-side macros in sql as the
// plugin's backend does before it sends a query to ClickHouse: comments are
// blanked first (so a macro in a comment is never expanded), then every
// $__name or $__name(args) of a known macro is replaced; unknown macros
// are left as they are. On an error the original sql is returned with it.
func ExpandMacros(sql string, q QueryContext) (string, error) {
	src := stripComments(sql)
	var b strings.Builder
	for {
		i := strings.Index(src, "$__")
		if i < 0 {
			b.WriteString(src)
			return b.String(), nil
		}
		b.WriteString(src[:i])
		rest := src[i+3:]
		name := matchMacro(rest)
		if name == "" {
			b.WriteString("$__")
			src = rest
			continue
		}
		rest = rest[len(name):]
		raw := ""
		if strings.HasPrefix(rest, "(") {
			if end := closingParen(rest); end >= 0 {
				raw, rest = rest[1:end], rest[end+1:]
			}
		}
		args, err := splitArgs(raw)
		if err != nil {
			return sql, fmt.Errorf("macro $__%s: %w", name, err)
		}
		out, err := clickHouseMacros[name](q, args)
		if err != nil {
			return sql, fmt.Errorf("macro $__%s(%s): %w", name, strings.Join(args, ", "), err)
		}
		b.WriteString(out)
		src = rest
	}
}

// matchMacro returns the known macro name s starts with, as a whole word.
func matchMacro(s string) string {
	for _, n := range macroNames {
		if strings.HasPrefix(s, n) && (len(s) == len(n) || !isNameChar(s[len(n)])) {
			return n
		}
	}
	return ""
}

func isNameChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// closingParen returns the index of the ')' matching the '(' at s[0],
// skipping quoted strings, or -1 when unbalanced (the plugin then treats
// the macro as called without arguments).
func closingParen(s string) int {
	depth := 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '\'', '"':
			i = skipQuoted(s, i)
			continue
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return -1
}

// splitArgs splits a macro's argument text on top-level commas.
func splitArgs(raw string) ([]string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return []string{}, nil
	}
	var args []string
	depth, start := 0, 0
	for i := 0; i < len(raw); {
		switch raw[i] {
		case '\'', '"':
			i = skipQuoted(raw, i)
			continue
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return nil, fmt.Errorf("unexpected ')' at position %d", i)
			}
			depth--
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(raw[start:i]))
				start = i + 1
			}
		}
		i++
	}
	if depth != 0 {
		return nil, errors.New("unbalanced parentheses in arguments")
	}
	return append(args, strings.TrimSpace(raw[start:])), nil
}

// skipQuoted returns the index just past the quoted literal starting at
// s[pos], honouring doubled quotes (”) and, as ClickHouse does, backslash
// escapes (\'). Unterminated: len(s).
func skipQuoted(s string, pos int) int {
	q := s[pos]
	for j := pos + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// stripComments blanks -- line comments and /* */ block comments outside
// quoted strings with spaces of the same length, as the plugin does.
func stripComments(s string) string {
	b := []byte(s)
	for i := 0; i < len(b); {
		switch {
		case b[i] == '\'' || b[i] == '"' || b[i] == '`':
			i = skipQuoted(s, i)
		case b[i] == '-' && i+1 < len(b) && b[i+1] == '-':
			for i < len(b) && b[i] != '\n' && b[i] != '\r' {
				b[i] = ' '
				i++
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			stop := len(b)
			if end >= 0 {
				stop = i + 2 + end + 2
			}
			for ; i < stop; i++ {
				b[i] = ' '
			}
		default:
			i++
		}
	}
	return string(b)
}

// ConditionalAll applies $__conditionalAll(condition, $var) as the plugin's
// frontend does before any template variable is replaced: the call becomes
// 1=1 when the variable's current value is empty or "$__all" (All
// selected), and the condition otherwise. vars maps a variable name to its
// current value as the browser renders it (a multi-value variable's values
// joined with commas). A variable that is not defined keeps the condition.
// The calls are rewritten from the last to the first; a call without
// exactly two arguments stops the rewriting and leaves the rest as it is.
func ConditionalAll(sql string, vars map[string]string) string {
	const macro = "$__conditionalAll("
	for i := strings.LastIndex(sql, macro); i >= 0; i = strings.LastIndex(sql, macro) {
		params := frontendArgs(sql[i+len(macro)-1:])
		if len(params) != 2 {
			return sql
		}
		phrase := params[0]
		if name := varRef.FindStringSubmatch(strings.TrimSpace(params[1])); name != nil {
			n := name[1] + name[2]
			if v, ok := vars[n]; ok && (v == "" || v == "$__all") {
				phrase = "1=1"
			}
		}
		sql = strings.Replace(sql, macro+params[0]+","+params[1]+")", phrase, 1)
	}
	return sql
}

// varRef finds the first variable named in a $__conditionalAll argument:
// ${name} or $name (the frontend's (?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+).
var varRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// frontendArgs splits s, which starts at a macro's '(', into its arguments
// the way the plugin's frontend does: by ( ) and , only, without trimming
// and without regard to quotes. It returns nil when the parentheses never
// close.
func frontendArgs(s string) []string {
	var args []string
	depth, last := 0, 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 1 {
				args = append(args, s[last:i])
				last = i + 1
			}
		}
		if (s[i] == '(' || s[i] == ')' || s[i] == ',') && depth == 0 {
			return append(args, s[last:i])
		}
	}
	return nil
}
