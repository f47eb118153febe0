package console

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Chart is one chart or table of the page whose data is SQL, run through
// the admin port's read-only /query.
type Chart struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Kind is "series" (long rows: time, label, value; one line per label)
	// or "table".
	Kind string `json:"kind"`
	// Unit of a series' values: "percent" (a fraction shown as %),
	// "usd" or "share".
	Unit string `json:"unit,omitempty"`
	// Empty is what a table says when the query returns no rows.
	Empty string `json:"empty,omitempty"`
	// Panel names the Grafana panel whose SQL this is, "dashboard uid /
	// panel title", or is empty for the console's own queries; a test
	// keeps the two equal.
	Panel string `json:"panel,omitempty"`
	// SQL uses the Grafana ClickHouse plugin's macros ($__timeFilter,
	// $__timeInterval, $__interval_s, $__conditionalAll) and the
	// variable $slo_ms, as the dashboards do; expand fills them in.
	SQL string `json:"-"`
}

// Charts returns the page's SQL charts, in the order the page lays them out.
func Charts() []Chart {
	return []Chart{
		{
			ID: "slo", Title: "SLO attainment per minute", Kind: "series", Unit: "percent",
			Panel: "loopgate-overview / SLO attainment by class",
			SQL: "SELECT $__timeInterval(start_time) AS time, " + classOf + " AS class, countIf(status = 'ok' AND latency_ms <= $slo_ms) / count() AS attainment\n" +
				"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + "\nGROUP BY time, class ORDER BY time",
		},
		{
			// The Overview's money panel is per hour and in total; the
			// frontier's x axis is cost per request, so this is that, per
			// minute, in the panels' dialect.
			ID: "cost", Title: "Cost per request per minute", Kind: "series", Unit: "usd",
			SQL: "SELECT $__timeInterval(start_time) AS time, " + classOf + " AS class, sum(cost) / count() AS cost_per_request\n" +
				"FROM loopgate.requests WHERE $__timeFilter(start_time)\nGROUP BY time, class ORDER BY time",
		},
		{
			ID: "share", Title: "Planned traffic share by orchestrator", Kind: "series", Unit: "share",
			Panel: "loopgate-loop / Planned share by orchestrator",
			SQL:   "SELECT time, orchestrator, avg(share) AS planned FROM (\n  " + policyShares + ")\nGROUP BY time, orchestrator ORDER BY time",
		},
		{
			ID: "ejections", Title: "Ejections with reasons", Kind: "table", Empty: "no ejection in the window",
			Panel: "loopgate-orchestrators / Ejections with reasons",
			SQL: "SELECT JSONExtractString(e, 'orchestrator') AS orchestrator, JSONExtractString(e, 'reason') AS reason,\n" +
				"  min(created_time) AS first_seen, max(created_time) AS last_seen, count() AS policies, max(fromUnixTimestamp64Milli(JSONExtractInt(e, 'until_ms'))) AS until\n" +
				"FROM loopgate.policies ARRAY JOIN JSONExtractArrayRaw(policy, 'ejections') AS e\n" +
				"WHERE $__timeFilter(created_time)\nGROUP BY orchestrator, reason ORDER BY last_seen DESC LIMIT 100",
		},
		{
			ID: "policies", Title: "Policy history", Kind: "table", Empty: "no policy published yet",
			SQL: "SELECT version, created_time AS time, `lambda`, classes, ejections,\n" +
				"  arrayStringConcat(arrayMap(e -> concat(JSONExtractString(e, 'orchestrator'), ': ', JSONExtractString(e, 'reason')), JSONExtractArrayRaw(policy, 'ejections')), '; ') AS ejected\n" +
				"FROM loopgate.policies ORDER BY version DESC LIMIT 30",
		},
		{
			ID: "changes", Title: "Largest share changes, with the optimizer's reasons", Kind: "table", Empty: "no share changed in the window",
			Panel: "loopgate-loop / Largest share changes",
			SQL: "SELECT time, version, class, orchestrator, before, share AS after, after - before AS change, reason FROM (\n" +
				"  SELECT *, lagInFrame(share) OVER w AS before, row_number() OVER w AS n FROM (\n  " + policyShares + ")\n" +
				"  WINDOW w AS (PARTITION BY class, orchestrator ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))\n" +
				"WHERE n > 1 AND before != after ORDER BY abs(change) DESC, version DESC LIMIT 20",
		},
		{
			ID: "audit", Title: "Audit log", Kind: "table", Empty: "no change made yet",
			// Every published policy has an audit row too (actor optimizer,
			// action policy.publish), one per round: they would bury the
			// people's changes, and Policy history lists them already.
			SQL: "SELECT time, actor, action, detail FROM loopgate.audit WHERE action != 'policy.publish' ORDER BY time_ms DESC LIMIT 50",
		},
	}
}

// SQL pieces as the dashboards write them (dashboards/clickhouse.go).
const (
	classOf   = "if(model = '', capability, concat(capability, '/', model))"
	capFilter = "$__conditionalAll(capability IN (${capability:singlequote}), $capability)"

	policyShares = "SELECT created_time AS time, version,\n" +
		"    concat(JSONExtractString(c, 'capability'), if(JSONExtractString(c, 'model') = '', '', concat('/', JSONExtractString(c, 'model'))),\n" +
		"      if(JSONExtractString(c, 'client_region') = '', '', concat(' @', JSONExtractString(c, 'client_region')))) AS class,\n" +
		"    JSONExtractString(s, 'orchestrator') AS orchestrator, JSONExtractFloat(s, 'share') AS share, JSONExtractString(s, 'reason') AS reason\n" +
		"  FROM loopgate.policies ARRAY JOIN JSONExtractArrayRaw(policy, 'classes') AS c ARRAY JOIN JSONExtractArrayRaw(c, 'shares') AS s\n" +
		"  WHERE $__timeFilter(created_time)"
)

// window is what a chart's SQL is expanded for.
type window struct {
	From, To time.Time
	Step     time.Duration
	SLO      string // what $slo_ms becomes: milliseconds, or a per-class expression (sloExpr)
}

var (
	timeFilterRe   = regexp.MustCompile(`\$__timeFilter\(\s*([^()]*?)\s*\)`)
	timeIntervalRe = regexp.MustCompile(`\$__timeInterval\(\s*([^()]*?)\s*\)`)
	intervalSRe    = regexp.MustCompile(`\$__interval_s\b`)
	sloRe          = regexp.MustCompile(`\$\{slo_ms\}|\$slo_ms\b`)
)

// expand fills in the macros and variables the charts use, with the
// output of the Grafana ClickHouse plugin (dashboards.ExpandMacros, which a
// test compares): $__timeFilter(col) is col >= toDateTime(from) AND col <=
// toDateTime(to), $__timeInterval(col) buckets by Step, $__interval_s is
// Step in seconds, $__conditionalAll(cond, $var) is 1=1 (the console shows
// every capability, Grafana's All) and $slo_ms is w.SLO. Anything else left
// starting with $ is an error.
func expand(sql string, w window) (string, error) {
	sql = conditionalAllToTrue(sql)
	step := int(w.Step / time.Second)
	sql = timeFilterRe.ReplaceAllStringFunc(sql, func(m string) string {
		col := timeFilterRe.FindStringSubmatch(m)[1]
		return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", col, w.From.Unix(), col, w.To.Unix())
	})
	sql = timeIntervalRe.ReplaceAllStringFunc(sql, func(m string) string {
		col := timeIntervalRe.FindStringSubmatch(m)[1]
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", col, step)
	})
	sql = intervalSRe.ReplaceAllLiteralString(sql, strconv.Itoa(step))
	sql = sloRe.ReplaceAllLiteralString(sql, w.SLO)
	if i := strings.IndexByte(sql, '$'); i >= 0 {
		end := min(len(sql), i+24)
		return "", fmt.Errorf("unexpanded %q", sql[i:end])
	}
	return sql, nil
}

// conditionalAllToTrue replaces every $__conditionalAll(...) call, whose
// parentheses may nest, with 1=1.
func conditionalAllToTrue(sql string) string {
	const macro = "$__conditionalAll("
	for {
		i := strings.Index(sql, macro)
		if i < 0 {
			return sql
		}
		depth, j := 0, i+len(macro)-1
		for ; j < len(sql); j++ {
			if sql[j] == '(' {
				depth++
			} else if sql[j] == ')' {
				if depth--; depth == 0 {
					break
				}
			}
		}
		if j == len(sql) {
			return sql // unbalanced: left for expand's check to report
		}
		sql = sql[:i] + "1=1" + sql[j+1:]
	}
}

// sloExpr is what the SLO chart's $slo_ms becomes: cfg.SLO in
// milliseconds, or, with ClassSLOs, multiIf(capability = 'c' AND model =
// 'm', ms, ..., cfg.SLO) over the requests table's columns, so that each
// request is held to its own class's target.
func sloExpr(cfg Config) string {
	def := strconv.FormatInt(cfg.SLO.Milliseconds(), 10)
	if len(cfg.ClassSLOs) == 0 {
		return def
	}
	var b strings.Builder
	b.WriteString("multiIf(")
	for _, cs := range cfg.ClassSLOs {
		b.WriteString("capability = " + quote(cs.Capability))
		if cs.Model != "" {
			b.WriteString(" AND model = " + quote(cs.Model))
		}
		b.WriteString(", " + strconv.FormatInt(cs.SLO.Milliseconds(), 10) + ", ")
	}
	b.WriteString(def + ")")
	return b.String()
}

// sloNote says in words what sloExpr holds requests to.
func sloNote(cfg Config) string {
	if len(cfg.ClassSLOs) == 0 {
		return fmt.Sprintf("within %d ms (the Overview dashboard's slo_ms)", cfg.SLO.Milliseconds())
	}
	parts := make([]string, 0, len(cfg.ClassSLOs)+1)
	for _, cs := range cfg.ClassSLOs {
		name := cs.Capability
		if cs.Model != "" {
			name += "/" + cs.Model
		}
		parts = append(parts, fmt.Sprintf("%s %d ms", name, cs.SLO.Milliseconds()))
	}
	parts = append(parts, fmt.Sprintf("others %d ms", cfg.SLO.Milliseconds()))
	return "within each class's SLO, as the frontier predicts: " + strings.Join(parts, ", ")
}

// quote is s as a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
