package warehouse

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSchemaGolden checks the DDL each profile generates, on one node and
// on a cluster, against testdata/schema_<name>.sql. Run `go test
// ./warehouse -run Golden -update` after changing a schema file, and review
// the diff.
func TestSchemaGolden(t *testing.T) {
	tests := []struct {
		name    string
		profile Profile
		cluster string
	}{
		{"modern", ModernProfile(), ""},
		{"legacy", LegacyProfile(), ""},
		{"cluster_modern", ModernProfile(), "loopgate"},
		{"cluster_legacy", LegacyProfile(), "loopgate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderGolden(t, tt.profile, tt.cluster)
			file := filepath.Join("testdata", "schema_"+tt.name+".sql")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("generated DDL differs from %s (run with -update and review the diff):\n%s", file, got)
			}
		})
	}
}

func renderGolden(t *testing.T, p Profile, cluster string) string {
	t.Helper()
	cfg := DefaultConfig()
	migs, err := renderSchema(p, schemaParams{DB: cfg.Database, Cluster: cluster, RawDays: cfg.RawRetentionDays, RollupDays: cfg.RollupRetentionDays, FineDays: cfg.FineRetentionDays})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range migs {
		for i, s := range m.Statements {
			fmt.Fprintf(&b, "-- migration %04d %s, statement %d\n%s;\n\n", m.Version, m.Name, i+1, s)
		}
	}
	return b.String()
}

func TestSchemaVersions(t *testing.T) {
	migs, err := renderSchema(ModernProfile(), schemaParams{DB: "db", RawDays: 1, RollupDays: 1, FineDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migs {
		if m.Version != i {
			t.Errorf("migration %s: got version %d, want %d (contiguous from 0)", m.Name, m.Version, i)
		}
		if len(m.Statements) == 0 {
			t.Errorf("migration %04d_%s: no statements", m.Version, m.Name)
		}
		for _, s := range m.Statements {
			if !strings.Contains(s, "IF NOT EXISTS") {
				t.Errorf("migration %04d_%s: statement is not idempotent:\n%s", m.Version, m.Name, s)
			}
		}
	}
}

// TestClusterSchemaShape checks what the cluster profile promises of every
// statement, on both profiles: each runs ON CLUSTER; each table is created
// as <name>_local with a Replicated engine and has a Distributed <name>
// over it; views read and write local tables only (so replication never
// feeds a rollup twice); and an outcome's request and attempts share a
// sharding key, the hash of the outcome id.
func TestClusterSchemaShape(t *testing.T) {
	createLocal := regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS db\.(\w+)_local ON CLUSTER c\n`)
	createDist := regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS db\.(\w+) ON CLUSTER c AS db\.(\w+)_local\nENGINE = Distributed\(c, db, (\w+)_local, (.+)\)$`)
	createView := regexp.MustCompile(`^CREATE MATERIALIZED VIEW IF NOT EXISTS db\.\w+ ON CLUSTER c TO db\.(\w+) AS`)
	for _, p := range []Profile{ModernProfile(), LegacyProfile()} {
		t.Run(p.Name, func(t *testing.T) {
			migs, err := renderSchema(p, schemaParams{DB: "db", Cluster: "c", RawDays: 1, RollupDays: 1, FineDays: 1})
			if err != nil {
				t.Fatal(err)
			}
			locals, keys := map[string]bool{}, map[string]string{}
			for _, m := range migs {
				for _, s := range m.Statements {
					s = withoutComments(s)
					switch {
					case createLocal.MatchString(s):
						name := createLocal.FindStringSubmatch(s)[1]
						if !strings.Contains(s, "ENGINE = Replicated") || !strings.Contains(s, "'/clickhouse/tables/{shard}/db/"+name+"', '{replica}'") {
							t.Errorf("%s_local: want a Replicated engine at /clickhouse/tables/{shard}/db/%s:\n%s", name, name, s)
						}
						locals[name] = true
					case createDist.MatchString(s):
						g := createDist.FindStringSubmatch(s)
						if g[1] != g[2] || g[1] != g[3] {
							t.Errorf("Distributed %s over %s_local / %s_local, want its own local table", g[1], g[2], g[3])
						}
						keys[g[1]] = g[4]
					case createView.MatchString(s):
						if to := createView.FindStringSubmatch(s)[1]; !strings.HasSuffix(to, "_local") {
							t.Errorf("view writes to %s, want a local table:\n%s", to, s)
						}
						if !regexp.MustCompile(`FROM db\.\w+_local\n`).MatchString(s) {
							t.Errorf("view does not read a local table:\n%s", s)
						}
					default:
						t.Errorf("migration %04d: statement neither a local table, a Distributed table nor a view:\n%s", m.Version, s)
					}
				}
			}
			for name := range locals {
				if _, ok := keys[name]; !ok {
					t.Errorf("%s_local has no Distributed table over it", name)
				}
			}
			if keys["requests"] != "cityHash64(id)" || keys["attempts"] != "cityHash64(request_id)" {
				t.Errorf("got sharding keys %q (requests) and %q (attempts), want the hash of the outcome id for both", keys["requests"], keys["attempts"])
			}
		})
	}
}

// withoutComments drops a statement's leading comment lines.
func withoutComments(s string) string {
	for s = strings.TrimSpace(s); strings.HasPrefix(s, "--"); s = strings.TrimSpace(s) {
		_, s, _ = strings.Cut(s, "\n")
	}
	return s
}
