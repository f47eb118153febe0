package dashboards

import "sort"

// SQL pieces shared by the ClickHouse panels. Tables are named with their
// database (loopgate, the default); the panels never rely on a current
// database.
const (
	// classOf is the demand class as event.Outcome.Class writes it.
	classOf = "if(model = '', capability, concat(capability, '/', model))"
	// capFilter applies the capability variable; All turns it into 1=1.
	capFilter = "$__conditionalAll(capability IN (${capability:singlequote}), $capability)"
	// custFilter applies the customer variable.
	custFilter = "$__conditionalAll(customer IN (${customer:singlequote}), $customer)"
	// quantiles must repeat the rollups' parameters exactly: a -Merge
	// combinator only reads states of the same function.
	quantiles = "quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)"
)

var capabilityVar = Variable{
	Name: "capability", Label: "Capability",
	Description: "Pipelines to show (All: every capability seen in the time range).",
	Query:       "SELECT DISTINCT capability FROM loopgate.requests WHERE $__timeFilter(start_time) ORDER BY capability",
}

func overview() Dashboard {
	return Dashboard{
		UID: "loopgate-overview", Title: "loopgate / Overview", File: "overview.json",
		Description:    "What clients get from the gateway: traffic, success, SLO attainment, latency, money and errors per demand class. ClickHouse (requests, attempts_1m).",
		DatasourceType: ClickHouseType,
		Variables: []Variable{capabilityVar, {
			Name: "slo_ms", Label: "SLO (ms)", Default: "2000",
			Description: "Latency target for the SLO attainment panel: a request meets it when it succeeded within this many milliseconds.",
		}},
		Panels: []Panel{
			{
				Title: "Requests", viz: vizStat, Unit: "short", Width: 6, Format: FormatTable,
				Description: "Client requests that ended in the time range, every status.",
				SQL:         "SELECT count() AS requests FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter,
				Columns:     []string{"requests"},
			},
			{
				Title: "Success rate", viz: vizStat, Unit: "percentunit", Width: 6, Format: FormatTable,
				Description: "Share of requests answered successfully (status ok), after retries and hedges.",
				SQL:         "SELECT countIf(status = 'ok') / count() AS success FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter,
				Columns:     []string{"success"},
			},
			{
				Title: "SLO attainment", viz: vizStat, Unit: "percentunit", Width: 6, Format: FormatTable,
				Description: "Share of requests that succeeded within $slo_ms ms.",
				SQL:         "SELECT countIf(status = 'ok' AND latency_ms <= $slo_ms) / count() AS attainment FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter,
				Columns:     []string{"attainment"},
			},
			{
				Title: "Margin", viz: vizStat, Unit: "currencyUSD", Width: 6, Format: FormatTable,
				Description: "Charged to customers minus paid to orchestrators, USD, in the time range.",
				SQL:         "SELECT sum(charge) - sum(cost) AS margin FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter,
				Columns:     []string{"margin"},
			},
			{
				Title: "Request rate by class", Unit: "reqps", Format: FormatTimeSeries,
				Description: "Client requests per second per demand class (capability/model), by the time each request started.",
				SQL: "SELECT $__timeInterval(start_time) AS time, " + classOf + " AS class, count() / $__interval_s AS rps\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + "\nGROUP BY time, class ORDER BY time",
				Columns: []string{"time", "class", "rps"},
			},
			{
				Title: "Success rate by class", Unit: "percentunit", Format: FormatTimeSeries,
				Description: "Share of each class's requests answered successfully.",
				SQL: "SELECT $__timeInterval(start_time) AS time, " + classOf + " AS class, countIf(status = 'ok') / count() AS success\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + "\nGROUP BY time, class ORDER BY time",
				Columns: []string{"time", "class", "success"},
			},
			{
				Title: "SLO attainment by class", Unit: "percentunit", Format: FormatTimeSeries,
				Description: "Share of each class's requests that succeeded within $slo_ms ms (client-side latency, every attempt included).",
				SQL: "SELECT $__timeInterval(start_time) AS time, " + classOf + " AS class, countIf(status = 'ok' AND latency_ms <= $slo_ms) / count() AS attainment\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + "\nGROUP BY time, class ORDER BY time",
				Columns: []string{"time", "class", "attainment"},
			},
			{
				Title: "Attempt latency p50 / p95 / p99 by class", Unit: "ms", Format: FormatTimeSeries,
				Description: "Quantiles of attempt latency per class from the per-minute tdigest rollup (attempts_1m, every attempt result), merged over each interval.",
				SQL: "SELECT time, class, q[1] AS p50, q[3] AS p95, q[4] AS p99 FROM (\n" +
					"  SELECT $__timeInterval(minute) AS time, " + classOf + " AS class, " + quantiles + "(latency_tdigest) AS q\n" +
					"  FROM loopgate.attempts_1m WHERE $__timeFilter(minute) AND " + capFilter + "\n  GROUP BY time, class)\nORDER BY time",
				Columns: []string{"time", "class", "p50", "p95", "p99"},
			},
			{
				Title: "Cost, charge and margin per hour", viz: vizBars, Unit: "currencyUSD", Format: FormatTimeSeries,
				Description: "USD per hour: cost paid to orchestrators (every billed attempt), charge billed to customers, and the margin between them.",
				SQL: "SELECT toStartOfHour(start_time) AS time, sum(cost) AS paid, sum(charge) AS charged, charged - paid AS margin\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + "\nGROUP BY time ORDER BY time",
				Columns: []string{"time", "paid", "charged", "margin"},
			},
			{
				Title: "Failed requests by status", Unit: "reqps", Format: FormatTimeSeries,
				Description: "Requests per second that did not succeed, by status and the HTTP status the client got.",
				SQL: "SELECT $__timeInterval(start_time) AS time, concat(toString(status), ' ', toString(http_status)) AS outcome, count() / $__interval_s AS rps\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND status != 'ok' AND " + capFilter + "\nGROUP BY time, outcome ORDER BY time",
				Columns: []string{"time", "outcome", "rps"},
			},
			{
				Title: "Errors by class and status", viz: vizTable, Unit: "short", Format: FormatTable,
				Description: "Failed requests per class, status, HTTP status and error class, with their share of the class's requests.",
				ColumnUnits: map[string]string{"share": "percentunit"},
				SQL: "SELECT class, status, http_status, error_class, n AS requests, n / total AS share FROM (\n" +
					"  SELECT " + classOf + " AS class, status, http_status, error_class, count() AS n,\n" +
					"    sum(n) OVER (PARTITION BY class) AS total, status = 'ok' AS ok\n" +
					"  FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + "\n" +
					"  GROUP BY class, status, http_status, error_class)\nWHERE NOT ok ORDER BY requests DESC LIMIT 50",
				Columns: []string{"class", "status", "http_status", "error_class", "requests", "share"},
			},
			{
				Title: "Refused before any attempt", Unit: "reqps", Format: FormatTimeSeries,
				Description: "Requests answered without trying an orchestrator (status rejected: no orchestrator, admission, shed), per second by error class. Shed and queued requests appear here once shaping lands.",
				SQL: "SELECT $__timeInterval(start_time) AS time, toString(error_class) AS reason, count() / $__interval_s AS rps\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND status = 'rejected' AND " + capFilter + "\nGROUP BY time, reason ORDER BY time",
				Columns: []string{"time", "reason", "rps"},
			},
		},
	}
}

func orchestrators() Dashboard {
	return Dashboard{
		UID: "loopgate-orchestrators", Title: "loopgate / Orchestrators", File: "orchestrators.json",
		Description:    "How each orchestrator serves: its share of attempts, success, latency, price, ejections, and a ranking by loss per request. ClickHouse (attempts_1m, policies).",
		DatasourceType: ClickHouseType,
		Variables:      []Variable{capabilityVar},
		Panels: []Panel{
			{
				Title: "Traffic share by orchestrator", Unit: "percentunit", Format: FormatTimeSeries,
				Description: "Each orchestrator's fraction of all attempts in each interval (rollup attempts_1m), retries and hedges included.",
				SQL: "SELECT time, orchestrator, n / sum(n) OVER (PARTITION BY time) AS share FROM (\n" +
					"  SELECT $__timeInterval(minute) AS time, orchestrator, countMerge(attempts) AS n\n" +
					"  FROM loopgate.attempts_1m WHERE $__timeFilter(minute) AND " + capFilter + "\n  GROUP BY time, orchestrator)\nORDER BY time",
				Columns: []string{"time", "orchestrator", "share"},
			},
			{
				Title: "Attempt success by orchestrator", Unit: "percentunit", Format: FormatTimeSeries,
				Description: "Share of each orchestrator's attempts that succeeded (rollup attempts_1m).",
				SQL: "SELECT $__timeInterval(minute) AS time, orchestrator, sumMerge(successes) / countMerge(attempts) AS success\n" +
					"FROM loopgate.attempts_1m WHERE $__timeFilter(minute) AND " + capFilter + "\nGROUP BY time, orchestrator ORDER BY time",
				Columns: []string{"time", "orchestrator", "success"},
			},
			{
				Title: "Attempt latency p95 by orchestrator", Unit: "ms", Format: FormatTimeSeries,
				Description: "95th percentile of attempt latency per orchestrator, from the tdigest states of attempts_1m.",
				SQL: "SELECT $__timeInterval(minute) AS time, orchestrator, " + quantiles + "(latency_tdigest)[3] AS p95\n" +
					"FROM loopgate.attempts_1m WHERE $__timeFilter(minute) AND " + capFilter + "\nGROUP BY time, orchestrator ORDER BY time",
				Columns: []string{"time", "orchestrator", "p95"},
			},
			{
				Title: "Price per billed attempt by orchestrator", Unit: "currencyUSD", Format: FormatTimeSeries,
				Description: "USD paid per billed attempt (attempts that started service), per orchestrator (rollup attempts_1m).",
				SQL: "SELECT $__timeInterval(minute) AS time, orchestrator, sumMerge(billed_cost) / sumMerge(billed_attempts) AS price\n" +
					"FROM loopgate.attempts_1m WHERE $__timeFilter(minute) AND " + capFilter + "\nGROUP BY time, orchestrator HAVING sumMerge(billed_attempts) > 0 ORDER BY time",
				Columns: []string{"time", "orchestrator", "price"},
			},
			{
				Title: "Orchestrators ranked by loss per request", viz: vizTable, Unit: "short", Format: FormatTable, Width: 24,
				Description: "Loss per request = price per attempt + failure rate × mean charge per request: what routing one request there pays, plus the revenue it puts at risk when it fails. Highest loss first (rollup attempts_1m).",
				ColumnUnits: map[string]string{"success": "percentunit", "p50_ms": "ms", "p95_ms": "ms", "p99_ms": "ms", "price": "currencyUSD", "loss_per_request": "currencyUSD"},
				SQL: "WITH (SELECT avg(charge) FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + capFilter + ") AS value\n" +
					"SELECT orchestrator, n AS attempts, ok / n AS success, q[1] AS p50_ms, q[3] AS p95_ms, q[4] AS p99_ms, paid / n AS price,\n" +
					"  price + (1 - success) * value AS loss_per_request FROM (\n" +
					"  SELECT orchestrator, countMerge(attempts) AS n, sumMerge(successes) AS ok, sumMerge(billed_cost) AS paid, " + quantiles + "(latency_tdigest) AS q\n" +
					"  FROM loopgate.attempts_1m WHERE $__timeFilter(minute) AND " + capFilter + "\n  GROUP BY orchestrator)\nORDER BY loss_per_request DESC",
				Columns: []string{"orchestrator", "attempts", "success", "p50_ms", "p95_ms", "p99_ms", "price", "loss_per_request"},
			},
			{
				Title: "Ejections with reasons", viz: vizTable, Unit: "short", Format: FormatTable, Width: 24,
				Description: "Orchestrators the optimizer ejected, from the published policies: why, the first and last policy that carried the ejection, and until when it runs.",
				ColumnUnits: map[string]string{"first_seen": "dateTimeAsIso", "last_seen": "dateTimeAsIso", "until": "dateTimeAsIso"},
				SQL: "SELECT JSONExtractString(e, 'orchestrator') AS orchestrator, JSONExtractString(e, 'reason') AS reason,\n" +
					"  min(created_time) AS first_seen, max(created_time) AS last_seen, count() AS policies, max(fromUnixTimestamp64Milli(JSONExtractInt(e, 'until_ms'))) AS until\n" +
					"FROM loopgate.policies ARRAY JOIN JSONExtractArrayRaw(policy, 'ejections') AS e\n" +
					"WHERE $__timeFilter(created_time)\nGROUP BY orchestrator, reason ORDER BY last_seen DESC LIMIT 100",
				Columns: []string{"orchestrator", "reason", "first_seen", "last_seen", "policies", "until"},
			},
		},
	}
}

func customers() Dashboard {
	return Dashboard{
		UID: "loopgate-customers", Title: "loopgate / Customers", File: "customers.json",
		Description:    "Who uses the gateway and what they pay: requests, spend, charge and margin per customer and API key, top keys by cost, errors per key. ClickHouse (requests).",
		DatasourceType: ClickHouseType,
		Variables: []Variable{{
			Name: "customer", Label: "Customer",
			Description: "Customers to show (All: every customer seen in the time range).",
			Query:       "SELECT DISTINCT customer FROM loopgate.requests WHERE $__timeFilter(start_time) ORDER BY customer",
		}},
		Panels: []Panel{
			{
				Title: "Requests by customer", Unit: "reqps", Format: FormatTimeSeries,
				Description: "Client requests per second per customer.",
				SQL: "SELECT $__timeInterval(start_time) AS time, customer, count() / $__interval_s AS rps\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + custFilter + "\nGROUP BY time, customer ORDER BY time",
				Columns: []string{"time", "customer", "rps"},
			},
			{
				Title: "Charge by customer per hour", viz: vizBars, Unit: "currencyUSD", Format: FormatTimeSeries,
				Description: "USD billed to each customer per hour.",
				SQL: "SELECT toStartOfHour(start_time) AS time, customer, sum(charge) AS charged\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + custFilter + "\nGROUP BY time, customer ORDER BY time",
				Columns: []string{"time", "customer", "charged"},
			},
			{
				Title: "Spend, charge and margin by customer and key", viz: vizTable, Unit: "currencyUSD", Format: FormatTable, Width: 24,
				Description: "Per customer and API key id (never the key): requests, USD paid to orchestrators for them, USD charged, the margin and its share of the charge.",
				ColumnUnits: map[string]string{"requests": "short", "margin_ratio": "percentunit"},
				SQL: "SELECT customer, toString(api_key_id) AS api_key, count() AS requests, sum(cost) AS paid, sum(charge) AS charged,\n" +
					"  charged - paid AS margin, if(charged = 0, 0, margin / charged) AS margin_ratio\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + custFilter + "\nGROUP BY customer, api_key ORDER BY charged DESC LIMIT 100",
				Columns: []string{"customer", "api_key", "requests", "paid", "charged", "margin", "margin_ratio"},
			},
			{
				Title: "Top keys by cost", viz: vizBarGauge, Unit: "currencyUSD", Format: FormatTable,
				Description: "The ten API keys whose requests cost the most to serve (USD paid to orchestrators) in the time range.",
				SQL: "SELECT concat(toString(customer), ' / ', toString(api_key_id)) AS api_key, sum(cost) AS paid\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + custFilter + "\nGROUP BY api_key ORDER BY paid DESC LIMIT 10",
				Columns: []string{"api_key", "paid"},
			},
			{
				Title: "Errors by key", viz: vizTable, Unit: "short", Format: FormatTable,
				Description: "Per API key: requests, those that did not succeed, their share, and the most frequent error class.",
				ColumnUnits: map[string]string{"error_rate": "percentunit"},
				SQL: "SELECT toString(api_key_id) AS api_key, any(customer) AS owner, count() AS requests, countIf(status != 'ok') AS failed,\n" +
					"  failed / requests AS error_rate, toString(topKIf(1)(error_class, status != 'ok')[1]) AS top_error\n" +
					"FROM loopgate.requests WHERE $__timeFilter(start_time) AND " + custFilter + "\nGROUP BY api_key ORDER BY failed DESC, requests DESC LIMIT 50",
				Columns: []string{"api_key", "owner", "requests", "failed", "error_rate", "top_error"},
			},
		},
	}
}

// policyShares unnests every share of every class of the policies in the
// time range: time, version, class (with its client region), orchestrator,
// share, reason.
const policyShares = "SELECT created_time AS time, version,\n" +
	"    concat(JSONExtractString(c, 'capability'), if(JSONExtractString(c, 'model') = '', '', concat('/', JSONExtractString(c, 'model'))),\n" +
	"      if(JSONExtractString(c, 'client_region') = '', '', concat(' @', JSONExtractString(c, 'client_region')))) AS class,\n" +
	"    JSONExtractString(s, 'orchestrator') AS orchestrator, JSONExtractFloat(s, 'share') AS share, JSONExtractString(s, 'reason') AS reason\n" +
	"  FROM loopgate.policies ARRAY JOIN JSONExtractArrayRaw(policy, 'classes') AS c ARRAY JOIN JSONExtractArrayRaw(c, 'shares') AS s\n" +
	"  WHERE $__timeFilter(created_time)"

func theLoop() Dashboard {
	return Dashboard{
		UID: "loopgate-loop", Title: "loopgate / The loop", File: "loop.json",
		Description:    "The slow loop at work: policy versions, the λ knob, the planned shares and their largest changes with reasons, and how long traffic took to move after an orchestrator started failing. ClickHouse (policies, attempts_10s).",
		DatasourceType: ClickHouseType,
		Panels: []Panel{
			{
				Title: "Policy version", Unit: "none", Format: FormatTimeSeries,
				Description: "Version of each policy the optimizer published, at the time it was computed. A flat line means no new policy.",
				SQL:         "SELECT created_time AS time, version FROM loopgate.policies WHERE $__timeFilter(created_time) ORDER BY time",
				Columns:     []string{"time", "version"},
			},
			{
				Title: "λ (cost ↔ latency)", Unit: "none", Format: FormatTimeSeries,
				Description: "The operator's knob each policy was computed with: 0 minimises what is paid, 1 the value lost to SLO misses.",
				SQL:         "SELECT created_time AS time, `lambda` AS knob FROM loopgate.policies WHERE $__timeFilter(created_time) ORDER BY time",
				Columns:     []string{"time", "knob"},
			},
			{
				Title: "Planned share by orchestrator", Unit: "percentunit", Format: FormatTimeSeries,
				Description: "Each orchestrator's traffic share in the published policies, averaged over the classes (and client regions) that list it.",
				SQL:         "SELECT time, orchestrator, avg(share) AS planned FROM (\n  " + policyShares + ")\nGROUP BY time, orchestrator ORDER BY time",
				Columns:     []string{"time", "orchestrator", "planned"},
			},
			{
				Title: "Attempt success by orchestrator, 10 s", Unit: "percentunit", Format: FormatTimeSeries,
				Description: "Share of attempts that succeeded per orchestrator, from the optimizer's own 10-second rollup (attempts_10s): the signal the loop reacts to.",
				SQL: "SELECT $__timeInterval(bucket) AS time, orchestrator, sumMerge(successes) / countMerge(attempts) AS success\n" +
					"FROM loopgate.attempts_10s WHERE $__timeFilter(bucket)\nGROUP BY time, orchestrator ORDER BY time",
				Columns: []string{"time", "orchestrator", "success"},
			},
			{
				Title: "Largest share changes", viz: vizTable, Unit: "percentunit", Format: FormatTable, Width: 24,
				Description: "The biggest moves of an orchestrator's share within a class from one policy to the next it appears in, with the optimizer's reason.",
				ColumnUnits: map[string]string{"time": "dateTimeAsIso", "version": "none"},
				SQL: "SELECT time, version, class, orchestrator, before, share AS after, after - before AS change, reason FROM (\n" +
					"  SELECT *, lagInFrame(share) OVER w AS before, row_number() OVER w AS n FROM (\n  " + policyShares + ")\n" +
					"  WINDOW w AS (PARTITION BY class, orchestrator ORDER BY version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))\n" +
					"WHERE n > 1 AND before != after ORDER BY abs(change) DESC, version DESC LIMIT 20",
				Columns: []string{"time", "version", "class", "orchestrator", "before", "after", "change", "reason"},
			},
			{
				Title: "Time from fault to traffic moving", viz: vizTable, Unit: "s", Format: FormatTable, Width: 24,
				Description: "For each orchestrator whose attempt success fell below 50% in a 10 s bucket (at least 5 attempts; attempts_10s): when that first happened, the first policy after it that cut its total share to under half of what the last earlier policy gave it, and the seconds in between. Empty moved_at: the traffic has not moved.",
				ColumnUnits: map[string]string{"fault_at": "dateTimeAsIso", "moved_at": "dateTimeAsIso"},
				SQL: "WITH faults AS (\n" +
					"  SELECT orchestrator, min(bucket) AS fault_at FROM (\n" +
					"    SELECT bucket, orchestrator, countMerge(attempts) AS n, sumMerge(successes) AS ok\n" +
					"    FROM loopgate.attempts_10s WHERE $__timeFilter(bucket) GROUP BY bucket, orchestrator)\n" +
					"  WHERE n >= 5 AND ok / n < 0.5 GROUP BY orchestrator),\n" +
					"planned AS (\n" +
					"  SELECT f.orchestrator AS orchestrator, f.fault_at AS fault_at, p.created_time AS t,\n" +
					"    arraySum(arrayMap(c -> arraySum(arrayMap(s -> if(JSONExtractString(s, 'orchestrator') = f.orchestrator, JSONExtractFloat(s, 'share'), 0.),\n" +
					"      JSONExtractArrayRaw(c, 'shares'))), JSONExtractArrayRaw(p.policy, 'classes'))) AS share\n" +
					"  FROM faults AS f CROSS JOIN (SELECT created_time, policy FROM loopgate.policies WHERE $__timeFilter(created_time)) AS p)\n" +
					"SELECT orchestrator, fault_at, moved_at, dateDiff('millisecond', fault_at, moved_at) / 1000 AS seconds FROM (\n" +
					"  SELECT orchestrator, fault_at, argMaxIf(share, t, t < fault_at) AS before,\n" +
					"    arraySort(groupArrayIf((t, share), t >= fault_at)) AS after,\n" +
					"    arrayFirstIndex(x -> x.2 < before / 2, after) AS k,\n" +
					"    if(k = 0, NULL, after[k].1) AS moved_at\n" +
					"  FROM planned GROUP BY orchestrator, fault_at)\nORDER BY fault_at",
				Columns: []string{"orchestrator", "fault_at", "moved_at", "seconds"},
			},
		},
	}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
