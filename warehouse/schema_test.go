package warehouse

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
