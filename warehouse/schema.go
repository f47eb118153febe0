package warehouse

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// dedupWindow is non_replicated_deduplication_window on the modern
// profile: how many recent insert blocks (tokens) each table remembers.
// A retry of an insert older than that many blocks is still caught by the
// existence check; the token is only the second line of defence.
const dedupWindow = 1000

// migration is one schema/NNNN_name.sql file rendered for a profile.
type migration struct {
	Version    int
	Name       string
	Statements []string
}

// schemaParams is what the .sql templates see.
type schemaParams struct {
	DB         string
	Cluster    string // "" for one node; else the cluster profile (see clusterFuncs)
	RawDays    int    // TTL of requests and attempts; 0 keeps them forever
	RollupDays int    // TTL of attempts_1m; 0 keeps it forever
	FineDays   int    // TTL of attempts_10s; 0 keeps it forever
}

// renderSchema renders every migration in version order. Version 0 is the
// schema_migrations table itself.
func renderSchema(p Profile, sp schemaParams) ([]migration, error) {
	files, err := fs.Glob(schemaFS, "schema/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list schema files: %w", err)
	}
	sort.Strings(files)
	funcs := p.templateFuncs()
	for name, fn := range clusterFuncs(p, sp) {
		funcs[name] = fn
	}
	var out []migration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("parse schema file name %s: want NNNN_name.sql", f)
		}
		src, err := schemaFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read schema file %s: %w", f, err)
		}
		t, err := template.New(base).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("parse schema template %s: %w", f, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, sp); err != nil {
			return nil, fmt.Errorf("render schema template %s: %w", f, err)
		}
		out = append(out, migration{Version: v, Name: name, Statements: splitStatements(buf.String())})
	}
	return out, nil
}

// splitStatements splits a rendered file at semicolons that end a line.
// The schema files are ours: no semicolons inside literals or comments.
func splitStatements(sql string) []string {
	var stmts []string
	for _, s := range strings.Split(sql, ";\n") {
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";"))
		if s == "" || onlyComments(s) {
			continue
		}
		stmts = append(stmts, s)
	}
	return stmts
}

func onlyComments(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
			return false
		}
	}
	return true
}

// clusterFuncs are the only places the DDL differs between one node and a
// cluster. On a cluster, table NAME is created ON CLUSTER as NAME_local
// with the Replicated variant of its engine (ZooKeeper path
// /clickhouse/tables/{shard}/DB/NAME, replica {replica}, from each
// server's macros), followed by a Distributed table NAME over it sharded
// by the given key; materialized views run on each node, from one local
// table into another, so each replica's rollup is fed only by inserts into
// that replica and replication does the rest. On one node every function
// renders what the files said before the cluster profile existed.
func clusterFuncs(p Profile, sp schemaParams) template.FuncMap {
	c := sp.Cluster
	onCluster := func() string {
		if c == "" {
			return ""
		}
		return " ON CLUSTER " + c
	}
	local := func(name string) string {
		if c == "" {
			return sp.DB + "." + name
		}
		return sp.DB + "." + name + "_local"
	}
	funcs := template.FuncMap{
		"onCluster": onCluster,
		"local":     local,
		// table is the name a CREATE TABLE creates: the local table on a cluster.
		"table": func(name string) string { return local(name) + onCluster() },
		// engine is a table engine; kind is MergeTree, ReplacingMergeTree, ...
		"engine": func(kind, name string) string {
			if c == "" {
				return kind + "()"
			}
			return fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}')", kind, sp.DB, name)
		},
		// distributed ends a CREATE TABLE and, on a cluster, adds the
		// Distributed table over it: a statement of its own.
		"distributed": func(name, key string) string {
			if c == "" {
				return ""
			}
			return fmt.Sprintf(";\n\nCREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s\nENGINE = Distributed(%s, %s, %s_local, %s)",
				sp.DB, name, c, local(name), c, sp.DB, name, key)
		},
	}
	if c != "" {
		base := p.templateFuncs()["settings"].(func(...string) string)
		// Replicated tables deduplicate inserts through ZooKeeper
		// (replicated_deduplication_window, default 100 blocks, on every
		// release): the modern profile widens it as it widens the
		// non-replicated window on one node.
		funcs["settings"] = func(opts ...string) string {
			s := base(opts...)
			return strings.Replace(s, "non_replicated_deduplication_window", "replicated_deduplication_window", 1)
		}
	}
	return funcs
}

// templateFuncs are the only places the DDL differs by profile.
func (p Profile) templateFuncs() template.FuncMap {
	return template.FuncMap{
		// lc is the type of a repetitive string column.
		"lc": func() string {
			if p.LowCardinality {
				return "LowCardinality(String)"
			}
			return "String"
		},
		// time is the type of a time column.
		"time": func() string {
			if p.DateTime64 {
				return "DateTime64(3, 'UTC')"
			}
			return "DateTime('UTC')"
		},
		"timeFromMs": p.timeFromMs,
		// wei is the type of an exact amount in wei with scale fractional
		// digits (see Profile.WideDecimal).
		"wei": func(scale int) string {
			if p.WideDecimal {
				return fmt.Sprintf("Decimal(76, %d)", scale)
			}
			return fmt.Sprintf("Decimal(38, %d)", scale)
		},
		"now": func() string {
			if p.DateTime64 {
				return "now64(3)"
			}
			return "now()"
		},
		// codec is a column's compression codec, or nothing.
		"codec": func(c string) string {
			if p.Codecs {
				return " CODEC(" + c + ")"
			}
			return ""
		},
		// minute truncates a time column to its minute, as DateTime.
		"minute": func(col string) string {
			if p.DateTime64 {
				return "toDateTime(toStartOfInterval(" + col + ", INTERVAL 1 MINUTE), 'UTC')"
			}
			return "toStartOfMinute(" + col + ")"
		},
		// tenSeconds truncates a time column to its 10-second bucket, as DateTime.
		"tenSeconds": func(col string) string {
			if p.DateTime64 {
				return "toDateTime(toStartOfInterval(" + col + ", INTERVAL 10 SECOND), 'UTC')"
			}
			return "toDateTime(intDiv(toUInt32(" + col + "), 10) * 10, 'UTC')"
		},
		// ttl is a table TTL clause on its own line, or nothing.
		"ttl": func(col string, days int) string {
			if !p.TTL || days <= 0 {
				return ""
			}
			return fmt.Sprintf("\nTTL toDateTime(%s) + INTERVAL %d DAY", col, days)
		},
		// settings is the table SETTINGS clause. Options: "ttl" for a table
		// with a TTL, "dedup" for one written with deduplication tokens.
		"settings": func(opts ...string) string {
			s := []string{"index_granularity = 8192"}
			for _, o := range opts {
				switch {
				case o == "ttl" && p.TTL:
					s = append(s, "ttl_only_drop_parts = 1")
				case o == "dedup" && p.InsertDedup:
					s = append(s, fmt.Sprintf("non_replicated_deduplication_window = %d", dedupWindow))
				}
			}
			return "\nSETTINGS " + strings.Join(s, ", ")
		},
	}
}
