package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// SQL from outside loopgate (an analyst, the admin /query endpoint,
// `loopgate query`) goes through QueryReadOnly, never Query. Two layers
// refuse what could change state or reach beyond the warehouse:
//
//  1. A lexer (checkReadOnly) that understands ClickHouse's string
//     literals, quoted identifiers and comments accepts exactly one
//     statement whose first keyword is SELECT, WITH, SHOW, DESCRIBE, DESC,
//     EXPLAIN or EXISTS, with no INTO OUTFILE and no call of a function
//     that reaches files, the network, other servers or dictionaries
//     (deniedFunctions). Where the two engines lex differently (chDB 26
//     has heredocs `$$…$$`, nested block comments and `#` comments; 18.16
//     has none of them) it takes the reading that shows ClickHouse no text
//     the lexer did not check, and refuses what it cannot read that way.
//  2. ClickHouse's own readonly = 1 on the statement (a per-query setting
//     on the server, a trailing SETTINGS clause on chDB), which refuses
//     every write, DDL and setting change, so `SELECT 1 SETTINGS
//     readonly = 0` cannot lift it. The 18.16 server also refuses every
//     table function under readonly = 1 (even numbers()); chDB refuses
//     file(), url() and remote() under it.
//
// The lexer is the only layer against INTO OUTFILE on chDB (clickhouse-local
// writes the file itself, readonly or not) and against multi-statement text
// on chDB (which runs every statement of a multi-query), so neither layer
// is optional.

// ErrNotReadOnly is wrapped by every refusal of QueryReadOnly and
// CheckReadOnly: the statement is not one read-only statement, or
// ClickHouse's readonly mode refused it. Callers answer 400 with the
// error's text, which names the reason and never contains data.
var ErrNotReadOnly = errors.New("not a read-only query")

// ReadOnlyError is a refused statement; it wraps ErrNotReadOnly.
type ReadOnlyError struct {
	// Reason says what was refused, e.g. "more than one statement".
	Reason string
	// Offset is the byte offset in the statement where the refused text
	// starts; -1 when ClickHouse refused it.
	Offset int
}

func (e *ReadOnlyError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("%s: %s (at byte %d)", ErrNotReadOnly, e.Reason, e.Offset)
	}
	return fmt.Sprintf("%s: %s", ErrNotReadOnly, e.Reason)
}

func (e *ReadOnlyError) Unwrap() error { return ErrNotReadOnly }

// ReadOnlyLimits bound what one read-only statement may cost. They are
// sent to ClickHouse as settings (max_execution_time, max_result_rows,
// max_result_bytes; result_overflow_mode stays 'throw'), so a statement
// over a limit fails instead of returning a truncated result.
type ReadOnlyLimits struct {
	// MaxExecutionTime is ClickHouse's max_execution_time. Default 30 s.
	MaxExecutionTime time.Duration
	// MaxRows is max_result_rows. Default 100,000.
	MaxRows uint64
	// MaxBytes is max_result_bytes (uncompressed, in ClickHouse's memory
	// representation). Default 64 MiB.
	MaxBytes uint64
}

// DefaultReadOnlyLimits returns the limits QueryReadOnly uses.
func DefaultReadOnlyLimits() ReadOnlyLimits {
	return ReadOnlyLimits{MaxExecutionTime: 30 * time.Second, MaxRows: 100_000, MaxBytes: 64 << 20}
}

// Validate reports a limit that is not positive.
func (l ReadOnlyLimits) Validate() error {
	switch {
	case l.MaxExecutionTime < time.Second:
		return fmt.Errorf("read-only max execution time %s: want at least 1s", l.MaxExecutionTime)
	case l.MaxRows == 0:
		return errors.New("read-only max rows: want > 0")
	case l.MaxBytes == 0:
		return errors.New("read-only max bytes: want > 0")
	}
	return nil
}

// roSetting is one per-query setting of a read-only statement. Values
// are integers: clickhouse-go sends settings to an 18.16 server as varints
// and refuses other types.
type roSetting struct {
	name  string
	value int
}

// settings are the per-query settings that enforce the limits and
// readonly. readonly comes last: the embedded backend applies a SETTINGS
// clause in order, and once readonly = 1 no other setting may change. (The
// server gets them as a map, in any order; it applies a query's settings
// before checking readonly, TestQueryReadOnly/server shows it.)
// result_overflow_mode is left at its default, 'throw', on both engines.
func (l ReadOnlyLimits) settings() []roSetting {
	return []roSetting{
		{"max_execution_time", int((l.MaxExecutionTime + time.Second - 1) / time.Second)},
		{"max_result_rows", int(min(l.MaxRows, 1<<53))},
		{"max_result_bytes", int(min(l.MaxBytes, 1<<53))},
		{"readonly", 1},
	}
}

// QueryReadOnly runs sql, which comes from outside loopgate, if it is one
// read-only statement (see CheckReadOnly), under ClickHouse's readonly = 1
// and DefaultReadOnlyLimits. A refusal wraps ErrNotReadOnly. Tables
// without a database name are the store's.
func (s *Store) QueryReadOnly(ctx context.Context, sql string) (*Rows, error) {
	return s.QueryReadOnlyLimits(ctx, sql, DefaultReadOnlyLimits())
}

// QueryReadOnlyLimits is QueryReadOnly with other limits.
func (s *Store) QueryReadOnlyLimits(ctx context.Context, sql string, lim ReadOnlyLimits) (*Rows, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	stmt, err := checkReadOnly(sql)
	if err != nil {
		return nil, err
	}
	return s.runReadOnly(ctx, stmt, lim)
}

// runReadOnly runs stmt with readonly = 1 and lim, without the lexer's
// check (tests call it directly to show the second layer alone). stmt must
// not end inside a line comment: the embedded backend appends a SETTINGS
// clause on a new line.
func (s *Store) runReadOnly(ctx context.Context, stmt string, lim ReadOnlyLimits) (*Rows, error) {
	var (
		rows *Rows
		err  error
	)
	switch b := s.b.(type) {
	case *serverBackend:
		settings := clickhouse.Settings{}
		for _, st := range lim.settings() {
			settings[st.name] = st.value
		}
		rows, err = b.query(clickhouse.Context(ctx, clickhouse.WithSettings(settings)), stmt)
	default:
		var q strings.Builder
		q.WriteString(stmt)
		for i, st := range lim.settings() {
			if i == 0 {
				q.WriteString("\nSETTINGS ")
			} else {
				q.WriteString(", ")
			}
			q.WriteString(st.name)
			q.WriteString(" = ")
			q.WriteString(strconv.Itoa(st.value))
		}
		rows, err = s.b.query(ctx, q.String())
	}
	if err != nil {
		if refusedByReadonly(err) {
			return nil, fmt.Errorf("query warehouse: %w", &ReadOnlyError{Reason: "refused by ClickHouse readonly mode: " + err.Error(), Offset: -1})
		}
		s.m.errors.WithLabelValues("query").Inc()
		return nil, fmt.Errorf("query warehouse: %w", err)
	}
	return rows, nil
}

// chReadonlyCode is ClickHouse's error code READONLY.
const chReadonlyCode = 164

// refusedByReadonly reports whether ClickHouse refused a statement because
// of readonly mode (code 164 on either backend).
func refusedByReadonly(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code == chReadonlyCode
	}
	msg := err.Error()
	return strings.Contains(msg, "Code: 164.") || strings.Contains(msg, "(READONLY)")
}

// CheckReadOnly reports whether sql is one statement that QueryReadOnly
// accepts; the error wraps ErrNotReadOnly. It does not ask ClickHouse, so
// a statement it accepts may still be refused by readonly mode (e.g. one
// with a SETTINGS clause). Tools that forward SQL elsewhere (`loopgate
// query` to a running `loopgate dev`) use it to refuse early.
//
// Accepted: one statement (an optional trailing `;`, then only whitespace
// and comments), first keyword SELECT, WITH, SHOW, DESCRIBE, DESC, EXPLAIN
// or EXISTS (after optional opening parentheses). Refused anywhere outside
// string literals and quoted identifiers: INTO OUTFILE, INFILE, a FORMAT
// clause (loopgate picks the result format), a call of any function in
// DeniedFunctions or with a denied prefix, a call of a function by a
// quoted name, `$` (chDB's heredoc strings), a block comment opened inside
// another, non-ASCII characters, and NUL anywhere.
func CheckReadOnly(sql string) error {
	_, err := checkReadOnly(sql)
	return err
}

// DeniedFunctions lists the functions (most are table functions) that
// read-only SQL may not call, lower case; DeniedFunctionPrefixes are
// prefixes of denied families. Each reaches files (file, input, iceberg
// on local disk), the network (url, s3, gcs, azureBlobStorage, hdfs),
// other servers (remote, cluster, mysql, postgresql, mongodb, redis, jdbc,
// odbc, hasColumnInTable with a host), runs programs (executable), loads a
// model from disk (catboostEvaluate, modelEvaluate) or loads a dictionary, whose source may be any of these (loopgate defines no
// dictionaries). Local generators such as numbers(), zeros() and values()
// are allowed by the lexer (the 18.16 server still refuses every table
// function under readonly = 1).
func DeniedFunctions() []string {
	return []string{
		"file", "filecluster", "input", "executable",
		"url", "urlcluster", "s3", "s3cluster", "gcs", "cosn", "oss",
		"hdfs", "hdfscluster", "azureblobstorage", "azureblobstoragecluster",
		"remote", "remotesecure", "cluster", "clusterallreplicas",
		"mysql", "postgresql", "jdbc", "odbc", "mongodb", "sqlite", "redis",
		"postgres", "mongo", "hascolumnintable", "ytsaurus", "arrowflight", "flight",
		"catboostevaluate", "modelevaluate",
	}
}

// DeniedFunctionPrefixes are the denied families: data lake readers over
// files and object stores, and every dictionary function (dictGet,
// dictHas, dictionary(), ...).
func DeniedFunctionPrefixes() []string {
	return []string{"iceberg", "deltalake", "hudi", "paimon", "dict"}
}

// readOnlyFirstWords are the statements read-only SQL may start with.
var readOnlyFirstWords = map[string]bool{
	"SELECT": true, "WITH": true, "SHOW": true, "DESCRIBE": true, "DESC": true, "EXPLAIN": true, "EXISTS": true,
}

// checkReadOnly lexes sql and returns the statement to run: sql from its
// first token to the end of its last, without the trailing `;` and
// comments, so a suffix appended on a new line cannot be commented out.
func checkReadOnly(sql string) (string, error) {
	toks, err := lexSQL(sql)
	if err != nil {
		return "", err
	}
	refuse := func(off int, format string, args ...any) (string, error) {
		return "", &ReadOnlyError{Reason: fmt.Sprintf(format, args...), Offset: off}
	}
	for i, t := range toks {
		if t.kind == tokPunct && t.text == ";" {
			if i+1 < len(toks) {
				return refuse(toks[i+1].start, "more than one statement")
			}
			toks = toks[:i]
			break
		}
	}
	if len(toks) == 0 {
		return refuse(0, "empty statement")
	}
	first := 0
	for first < len(toks) && toks[first].kind == tokPunct && toks[first].text == "(" {
		first++
	}
	if first == len(toks) || toks[first].kind != tokWord || !readOnlyFirstWords[strings.ToUpper(toks[first].text)] {
		off := toks[min(first, len(toks)-1)].start
		return refuse(off, "only SELECT, WITH, SHOW, DESCRIBE, DESC, EXPLAIN and EXISTS statements may run, not %s", describeToken(toks, first))
	}
	denied := map[string]bool{}
	for _, f := range DeniedFunctions() {
		denied[f] = true
	}
	for i, t := range toks {
		call := i+1 < len(toks) && toks[i+1].kind == tokPunct && toks[i+1].text == "("
		switch t.kind {
		case tokQuotedIdent:
			if call {
				return refuse(t.start, "a function called by a quoted name")
			}
		case tokWord:
			name := strings.ToLower(t.text)
			switch name {
			case "outfile":
				return refuse(t.start, "INTO OUTFILE: results are returned, never written to a file")
			case "infile":
				return refuse(t.start, "FROM INFILE")
			case "format":
				if !call {
					return refuse(t.start, "a FORMAT clause: loopgate chooses the result format")
				}
			}
			if call && deniedFunction(name, denied) {
				return refuse(t.start, "function %s reaches files, the network, other servers or dictionaries", t.text)
			}
		}
	}
	last := toks[len(toks)-1]
	return sql[toks[0].start:last.end], nil
}

// deniedFunction reports whether a function called name (lower case) is
// denied. A word that starts with a digit is checked by its suffix too:
// ClickHouse's lexers disagree on where a number ends ("1file" is a wrong
// number to 18.16 and an identifier to chDB 26).
func deniedFunction(name string, denied map[string]bool) bool {
	cands := []string{name}
	if name[0] >= '0' && name[0] <= '9' {
		for i := 1; i < len(name); i++ {
			cands = append(cands, name[i:])
		}
	}
	for _, c := range cands {
		if denied[c] {
			return true
		}
		for _, p := range DeniedFunctionPrefixes() {
			if strings.HasPrefix(c, p) {
				return true
			}
		}
	}
	return false
}

// describeToken names toks[i] for an error message, short and without
// quoting the user's string literals.
func describeToken(toks []sqlToken, i int) string {
	if i >= len(toks) {
		return "nothing"
	}
	t := toks[i]
	switch t.kind {
	case tokWord:
		w := t.text
		if len(w) > 32 {
			w = w[:32] + "…"
		}
		return strings.ToUpper(w)
	case tokString:
		return "a string literal"
	case tokQuotedIdent:
		return "a quoted identifier"
	}
	return strconv.Quote(t.text)
}
