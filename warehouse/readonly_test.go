package warehouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attacks are statements that must never run through QueryReadOnly, with
// a fragment of the reason the lexer gives.
var attacks = []struct {
	name, sql, reason string
}{
	{"second statement", "SELECT 1; DROP TABLE requests", "more than one statement"},
	{"second statement after comment", "/* */ SeLeCt 1;/**/DROP TABLE requests", "more than one statement"},
	{"second statement after line comment", "SELECT 1 -- x\n; DROP TABLE requests", "more than one statement"},
	{"two semicolons", "SELECT 1;;", "more than one statement"},
	{"drop", "DROP TABLE requests", "not DROP"},
	{"drop in parentheses", "(DROP TABLE requests)", "not DROP"},
	{"insert", "INSERT INTO audit (time_ms, actor, action, detail) VALUES (1, 'x', 'y', 'z')", "not INSERT"},
	{"insert select", "INSERT INTO audit (time_ms, actor, action, detail) SELECT 1, 'x', 'y', 'z'", "not INSERT"},
	{"truncate", "TRUNCATE TABLE requests", "not TRUNCATE"},
	{"alter delete", "ALTER TABLE requests DELETE WHERE 1", "not ALTER"},
	{"set readonly", "SET readonly = 0", "not SET"},
	{"use", "USE system", "not USE"},
	{"system", "SYSTEM SHUTDOWN", "not SYSTEM"},
	{"kill", "KILL QUERY WHERE 1", "not KILL"},
	{"file", "SELECT * FROM file('/etc/passwd', 'CSV', 'line String')", "function file"},
	{"file upper case with space", "select * from FILE ('x')", "function FILE"},
	{"file with comment before paren", "SELECT * FROM file/* */('/etc/passwd')", "function file"},
	{"file scalar", "SELECT file('/etc/passwd')", "function file"},
	{"file quoted name", "SELECT * FROM `file`('/etc/passwd', 'CSV', 'line String')", "quoted name"},
	{"file double-quoted name", `SELECT * FROM "file" ('/etc/passwd')`, "quoted name"},
	{"file after number", "SELECT 1file('/etc/passwd')", "function 1file"},
	{"file in subquery", "SELECT * FROM (SELECT * FROM file('/etc/passwd', 'CSV', 'line String'))", "function file"},
	{"file in lambda", "SELECT arrayMap(x -> file(x), ['/etc/passwd'])", "function file"},
	{"url", "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')", "function url"},
	{"remote", "SELECT * FROM remote('127.0.0.1', system.one)", "function remote"},
	{"remoteSecure", "SELECT * FROM remoteSecure('127.0.0.1', system.one)", "function remoteSecure"},
	{"cluster", "SELECT * FROM clusterAllReplicas('default', system.one)", "function clusterAllReplicas"},
	{"s3", "SELECT * FROM s3('http://127.0.0.1:1/b/k', 'CSV', 'a String')", "function s3"},
	{"mysql", "SELECT * FROM mysql('127.0.0.1:1', 'd', 't', 'u', 'p')", "function mysql"},
	{"postgresql", "SELECT * FROM postgresql('127.0.0.1:1', 'd', 't', 'u', 'p')", "function postgresql"},
	{"executable", "SELECT * FROM executable('x.sh', 'TSV', 'a String')", "function executable"},
	{"input", "SELECT * FROM input('a String')", "function input"},
	{"iceberg local", "SELECT * FROM icebergLocal('/var/lib')", "function icebergLocal"},
	{"dictionary", "SELECT * FROM dictionary('d')", "function dictionary"},
	{"dictGet", "SELECT dictGet('d', 'a', 1)", "function dictGet"},
	{"hasColumnInTable with host", "SELECT hasColumnInTable('127.0.0.1', 'system', 'one', 'dummy')", "function hasColumnInTable"},
	{"into outfile", "SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"},
	{"into outfile lower case", "select 1 into outfile '/tmp/x' format CSV", "INTO OUTFILE"},
	{"format clause", "SELECT 1 FORMAT JSON", "FORMAT clause"},
	{"heredoc", "SELECT $$ ' $$, file('x'), $$ ' $$", "'$'"},
	{"hash comment hiding a quote", "SELECT 1 # '\n, file('x') -- '", "function file"},
	{"nested comment", "SELECT 1 /* /* */ FROM file('/etc/passwd') -- */", "block comment inside"},
	{"unterminated comment", "SELECT 1 /* DROP", "unterminated block comment"},
	{"unterminated string", "SELECT 'abc", "unterminated string"},
	{"escaped closing quote", `SELECT 'abc\'`, "unterminated string"},
	{"unterminated identifier", "SELECT `abc", "unterminated quoted identifier"},
	{"nul hides suffix", "SELECT 1 --\x00\n", "NUL"},
	{"non-ascii outside strings", "SELECT 1 ＋ 1", "non-ASCII"},
	{"backslash outside strings", `SELECT 1 \ 2`, "character '\\'"},
	{"empty", "  -- nothing\n", "empty statement"},
	{"only semicolon", ";", "empty statement"},
}

func TestCheckReadOnlyRefuses(t *testing.T) {
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckReadOnly(tc.sql)
			if !errors.Is(err, ErrNotReadOnly) {
				t.Fatalf("CheckReadOnly(%q): got %v, want an error wrapping ErrNotReadOnly", tc.sql, err)
			}
			var re *ReadOnlyError
			if !errors.As(err, &re) {
				t.Fatalf("got %T, want *ReadOnlyError", err)
			}
			if !strings.Contains(re.Reason, tc.reason) {
				t.Errorf("reason: got %q, want it to contain %q", re.Reason, tc.reason)
			}
			if re.Offset < 0 || re.Offset > len(tc.sql) {
				t.Errorf("offset: got %d, want within [0, %d]", re.Offset, len(tc.sql))
			}
		})
	}
}

func TestCheckReadOnlyAccepts(t *testing.T) {
	tests := []struct {
		name, sql, stmt string
	}{
		{"select", "SELECT 1", "SELECT 1"},
		{"lower case", "select count() from requests", "select count() from requests"},
		{"trailing semicolon and comments", "  /* hi */ SELECT 1; -- done\n/* end */ ", "SELECT 1"},
		{"trailing line comment cut", "SELECT 1 -- a comment", "SELECT 1"},
		{"trailing hash comment cut", "SELECT 1 # a comment", "SELECT 1"},
		{"with", "WITH 1 AS x SELECT x", "WITH 1 AS x SELECT x"},
		{"parenthesised union", "(SELECT 1) UNION ALL (SELECT 2)", "(SELECT 1) UNION ALL (SELECT 2)"},
		{"show", "SHOW TABLES", "SHOW TABLES"},
		{"describe", "DESCRIBE TABLE requests", "DESCRIBE TABLE requests"},
		{"desc", "desc requests", "desc requests"},
		{"explain", "EXPLAIN SELECT 1", "EXPLAIN SELECT 1"},
		{"exists", "EXISTS TABLE requests", "EXISTS TABLE requests"},
		{"denied names inside strings", "SELECT 'file(1); DROP TABLE x', \"url(\" FROM requests WHERE model = 'INTO OUTFILE'", "SELECT 'file(1); DROP TABLE x', \"url(\" FROM requests WHERE model = 'INTO OUTFILE'"},
		{"denied names in comments", "SELECT 1 /* file('x'); DROP */ -- url('y')\n+ 1", "SELECT 1 /* file('x'); DROP */ -- url('y')\n+ 1"},
		{"column named like a function", "SELECT file, url FROM t", "SELECT file, url FROM t"},
		{"doubled and escaped quotes", `SELECT 'it''s', 'a\'b', "x""y"`, `SELECT 'it''s', 'a\'b', "x""y"`},
		{"unicode in strings", "SELECT 'Zürich ✓'", "SELECT 'Zürich ✓'"},
		{"format function", "SELECT format('{}-{}', 'a', 'b')", "SELECT format('{}-{}', 'a', 'b')"},
		{"numbers allowed by the lexer", "SELECT * FROM numbers(3)", "SELECT * FROM numbers(3)"},
		{"settings pass the lexer", "SELECT 1 SETTINGS readonly = 0", "SELECT 1 SETTINGS readonly = 0"},
		{"profile is not file", "SELECT profile(1)", "SELECT profile(1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkReadOnly(tc.sql)
			if err != nil {
				t.Fatalf("checkReadOnly(%q): got %v, want nil", tc.sql, err)
			}
			if got != tc.stmt {
				t.Errorf("statement: got %q, want %q", got, tc.stmt)
			}
		})
	}
}

func TestReadOnlyLimitsValidate(t *testing.T) {
	ok := DefaultReadOnlyLimits()
	tests := []struct {
		name    string
		mut     func(*ReadOnlyLimits)
		wantErr bool
	}{
		{"default", func(*ReadOnlyLimits) {}, false},
		{"sub-second time", func(l *ReadOnlyLimits) { l.MaxExecutionTime = time.Millisecond }, true},
		{"no rows", func(l *ReadOnlyLimits) { l.MaxRows = 0 }, true},
		{"no bytes", func(l *ReadOnlyLimits) { l.MaxBytes = 0 }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := ok
			tc.mut(&l)
			if err := l.Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate: got %v, want error %v", err, tc.wantErr)
			}
		})
	}
	if got := ok.settings(); got[len(got)-1] != (roSetting{"readonly", 1}) {
		t.Errorf("last setting: got %v, want readonly = 1 (nothing may change after it)", got[len(got)-1])
	}
}

// FuzzCheckReadOnly: the lexer never panics, an accepted statement has no
// top-level ';' left, starts with an allowed keyword and passes the check
// again unchanged, and every refusal wraps ErrNotReadOnly.
func FuzzCheckReadOnly(f *testing.F) {
	for _, tc := range attacks {
		f.Add(tc.sql)
	}
	for _, s := range []string{"SELECT 1", "SELECT 'a;b' -- c\n;", "WITH 1 AS x SELECT x /* ; */", "SHOW TABLES;", "select `a;b` from t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmt, err := checkReadOnly(sql)
		if err != nil {
			if !errors.Is(err, ErrNotReadOnly) {
				t.Fatalf("checkReadOnly(%q): got %v, want an error wrapping ErrNotReadOnly", sql, err)
			}
			return
		}
		toks, err := lexSQL(stmt)
		if err != nil {
			t.Fatalf("accepted %q, but its statement %q does not lex: %v", sql, stmt, err)
		}
		for _, tk := range toks {
			if tk.kind == tokPunct && tk.text == ";" {
				t.Fatalf("accepted %q with a ';' left in %q", sql, stmt)
			}
		}
		again, err := checkReadOnly(stmt)
		if err != nil || again != stmt {
			t.Fatalf("statement %q of %q: checked again got %q, %v; want itself, nil", stmt, sql, again, err)
		}
		if !strings.Contains(sql, stmt) {
			t.Fatalf("statement %q is not part of %q", stmt, sql)
		}
	})
}

// TestQueryReadOnly runs every attack on each backend through
// QueryReadOnly and sees it refused with the tables intact; then it shows
// that ClickHouse's readonly mode refuses the writes on its own, without
// the lexer.
func TestQueryReadOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		s := newStore(t, tb)
		ctx := context.Background()
		if err := s.WriteOutcomes(ctx, "readonly-test", outcomes(1, 0, 5)); err != nil {
			t.Fatal(err)
		}
		counts := func() map[string]int64 {
			out := map[string]int64{}
			for _, tbl := range []string{"requests", "attempts", "audit", "policies"} {
				out[tbl] = queryInt(t, s, "SELECT count() FROM "+s.Database()+"."+tbl)
			}
			return out
		}
		before := counts()
		if before["requests"] != 5 {
			t.Fatalf("requests before: got %d, want 5", before["requests"])
		}
		outfile := filepath.Join(t.TempDir(), "outfile")

		t.Run("accepted", func(t *testing.T) {
			for _, sql := range []string{
				"SELECT count() FROM requests",
				"/* analyst */ select count() AS n FROM requests WHERE model != 'file(x); DROP' ; -- done",
				"WITH 2 AS x SELECT x * 2",
				"SHOW TABLES",
				"DESCRIBE TABLE requests",
				"EXISTS TABLE requests",
			} {
				rows, err := s.QueryReadOnly(ctx, sql)
				if err != nil {
					t.Errorf("QueryReadOnly(%q): got %v, want nil", sql, err)
					continue
				}
				if rows.Len() == 0 {
					t.Errorf("QueryReadOnly(%q): got no rows, want some", sql)
				}
			}
		})

		t.Run("refused by the lexer", func(t *testing.T) {
			sqls := []string{"SELECT 1 INTO OUTFILE '" + outfile + "'"}
			for _, a := range attacks {
				sqls = append(sqls, a.sql)
			}
			for _, sql := range sqls {
				_, err := s.QueryReadOnly(ctx, sql)
				var re *ReadOnlyError
				if !errors.As(err, &re) || re.Offset < 0 {
					t.Errorf("QueryReadOnly(%q): got %v, want a refusal by the lexer", sql, err)
				}
			}
		})

		// Statements the lexer passes, which ClickHouse's readonly = 1
		// refuses: a SETTINGS clause cannot lift readonly (or change any
		// other setting).
		t.Run("refused by readonly", func(t *testing.T) {
			for _, sql := range []string{
				"SELECT count() FROM requests SETTINGS readonly = 0",
				"SELECT 1 SETTINGS max_threads = 1",
			} {
				_, err := s.QueryReadOnly(ctx, sql)
				var re *ReadOnlyError
				if !errors.As(err, &re) || re.Offset != -1 {
					t.Errorf("QueryReadOnly(%q): got %v, want a refusal by ClickHouse readonly mode", sql, err)
				}
			}
		})

		// Defence in depth: with the lexer bypassed, readonly = 1 alone
		// still refuses writes, DDL, setting changes and (except for
		// INTO OUTFILE on chDB, see below) the table functions that reach
		// out.
		t.Run("readonly without the lexer", func(t *testing.T) {
			for _, sql := range []string{
				"DROP TABLE requests",
				"TRUNCATE TABLE requests",
				"CREATE TABLE readonly_probe (a UInt8) ENGINE = Memory",
				"INSERT INTO audit (time_ms, actor, action, detail) SELECT 1, 'x', 'y', 'z'",
				"SELECT * FROM file('/etc/passwd', 'CSV', 'line String')",
				"SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')",
				"SELECT * FROM remote('127.0.0.1', system.one)",
				"SELECT 1 SETTINGS readonly = 0",
			} {
				_, err := s.runReadOnly(ctx, sql, DefaultReadOnlyLimits())
				if err == nil {
					t.Errorf("runReadOnly(%q): got nil, want an error", sql)
					continue
				}
				if !errors.Is(err, ErrNotReadOnly) {
					t.Errorf("runReadOnly(%q): got %v, want a refusal by ClickHouse readonly mode", sql, err)
				}
			}
			// clickhouse-local (chDB) writes INTO OUTFILE itself, readonly
			// or not; the server ignores it on the native protocol. This is
			// why the lexer refuses it.
			_, err := s.runReadOnly(ctx, "SELECT 1 INTO OUTFILE '"+outfile+"'", DefaultReadOnlyLimits())
			_, statErr := os.Stat(outfile)
			t.Logf("INTO OUTFILE without the lexer: err %v, file written %v", err, statErr == nil)
			if tb.backend == BackendServer && statErr == nil {
				t.Errorf("the server wrote INTO OUTFILE %s", outfile)
			}
			os.Remove(outfile)
		})

		t.Run("limits", func(t *testing.T) {
			lim := DefaultReadOnlyLimits()
			lim.MaxRows = 10
			_, err := s.QueryReadOnlyLimits(ctx, "SELECT number FROM system.numbers LIMIT 1000", lim)
			if err == nil {
				t.Errorf("1000 rows with MaxRows 10: got nil, want an error")
			}
			// Right after a failed statement: chDB once returned the failed
			// one's output here (see embeddedBackend.run).
			rows, err := s.QueryReadOnlyLimits(ctx, "SELECT number FROM system.numbers LIMIT 5", lim)
			if err != nil || rows.Len() != 5 {
				t.Errorf("5 rows with MaxRows 10: got %v, %v; want 5 rows", rows, err)
			}
		})

		if after := counts(); !equalCounts(before, after) {
			t.Errorf("row counts: got %v after the attacks, want %v as before", after, before)
		}
		if _, err := os.Stat(outfile); err == nil {
			t.Errorf("INTO OUTFILE wrote %s", outfile)
		}
	})
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
