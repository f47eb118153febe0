package dashboards

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// cookbook is the analysts' guide; every ```sql block in it is a query.
const cookbook = "../docs/ANALYSTS.md"

// TestCookbookQueries runs every query of docs/ANALYSTS.md on the embedded
// engine against the simulated run, with now() pinned to the run's end
// (the queries ask about "this hour", "today"). Each must return rows,
// unless its block says "-- rows: any".
func TestCookbookQueries(t *testing.T) {
	raw, err := os.ReadFile(cookbook)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	if len(blocks) < 12 {
		t.Fatalf("got %d queries in %s, want at least 12", len(blocks), cookbook)
	}
	st := simulatedStore(t)
	pinned := fmt.Sprintf("toDateTime64('%s', 3, 'UTC')", runEnd.UTC().Format("2006-01-02 15:04:05"))
	heading := regexp.MustCompile(`(?m)^### (.+)$`)
	for i, b := range blocks {
		sql := b[1]
		name := fmt.Sprintf("query %d", i+1)
		if hs := heading.FindAllStringSubmatchIndex(string(raw[:strings.Index(string(raw), b[0])]), -1); len(hs) > 0 {
			h := hs[len(hs)-1]
			name = string(raw[h[2]:h[3]])
		}
		t.Run(name, func(t *testing.T) {
			rows, err := st.Query(context.Background(), strings.ReplaceAll(sql, "now()", pinned))
			if err != nil {
				t.Fatalf("query: %v\n%s", err, sql)
			}
			if rows.Len() == 0 && !strings.Contains(sql, "-- rows: any") {
				t.Errorf("got 0 rows, want some\n%s", sql)
			}
		})
	}
}
