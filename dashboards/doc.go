// Package dashboards is loopgate's Grafana dashboards, written in Go with
// github.com/grafana/grafana-foundation-sdk/go, and everything that proves
// them: the ClickHouse plugin's macro expansion, so the tests can run every
// panel's SQL exactly as Grafana would send it, dashboard-linter's rules,
// and checks of the Prometheus alert rules and the Grafana provisioning
// under deploy/.
//
// Start here:
//
//	make dashboards                 # go generate ./dashboards: rewrite json/*.json from the code
//	go test ./dashboards            # JSON matches the code, lint, every panel's SQL on chDB,
//	                                # promtool, a real Prometheus scraping loopgate dev
//	deploy/grafana/README.md        # point a Grafana at ClickHouse and Prometheus
//
// A dashboard is a Dashboard value (overview, orchestrators, customers,
// theLoop in clickhouse.go; pipelineHealth in prometheus.go): panels with a
// title, a description, a unit and one query; for ClickHouse panels, the SQL
// and the columns it returns. Build turns it into the SDK's model; ClickHouse
// targets use the SDK's unknown-dataquery variant:
//
//	{"datasource": {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"},
//	 "editorType": "sql", "rawSql": "...", "format": 0}   // 0 time series, 1 table
//
// Every dashboard has exactly one datasource variable, named datasource,
// and no datasource uid anywhere; time filters use the plugin's macros
// ($__timeFilter(col), $__timeInterval(col), $__interval_s), never now().
// The generated JSON is committed under json/ and TestCommittedJSONIsGenerated
// fails when it differs from the code.
//
// # The dashboards
//
// loopgate / Overview (overview.json; ClickHouse: requests, attempts_1m):
// Requests, Success rate, SLO attainment, Margin (stats); Request rate by
// class; Success rate by class; SLO attainment by class (the slo_ms
// variable); Attempt latency p50 / p95 / p99 by class (tdigest rollup);
// Cost, charge and margin per hour; Failed requests by status; Errors by
// class and status; Refused before any attempt (where shed and queued
// requests will show once shaping lands).
//
// loopgate / Orchestrators (orchestrators.json; attempts_1m, policies):
// Traffic share by orchestrator; Attempt success by orchestrator; Attempt
// latency p95 by orchestrator; Price per billed attempt by orchestrator;
// Orchestrators ranked by loss per request (price + failure rate × mean
// charge); Ejections with reasons.
//
// loopgate / Customers (customers.json; requests): Requests by customer;
// Charge by customer per hour; Spend, charge and margin by customer and key;
// Top keys by cost; Errors by key. Budget use comes when budgets land.
//
// loopgate / The loop (loop.json; policies, attempts_10s): Policy version;
// λ (cost ↔ latency); Planned share by orchestrator; Attempt success by
// orchestrator, 10 s; Largest share changes; Time from fault to traffic
// moving.
//
// loopgate / go-livepeer (livepeer.json; livepeer_payments,
// livepeer_discovery, livepeer_streams: stock go-livepeer's own gateway
// events): Expected value paid per orchestrator per hour; Discovery latency
// p50 by orchestrator; Live streams: first-segment latency and swaps by
// orchestrator.
//
// loopgate / Pipeline health (pipeline.json; Prometheus): Publisher queue;
// Publisher spill; Publisher drops and refusals; Ingest lag; Ingest rows
// written; Dead letters; Router in-flight requests; Router refusals;
// Retries and retry budget; Policy version: published and applied;
// Optimizer rounds.
//
// # ClickHouse versions
//
// The dashboards target a current ClickHouse (≥ 22.3: toStartOfInterval,
// window functions, JSON functions, the plugin's macros); the tests run them
// on chDB (ClickHouse 26). The 18.16 server that `make test` starts is for
// the event path only (ingest, the writer's legacy profile): the dashboards
// do not run on it.
//
// # Macros
//
// ExpandMacros is the plugin's server side (grafana-clickhouse-datasource
// pkg/macros): $__timeFilter, $__timeFilter_ms, $__dateFilter, $__fromTime,
// $__toTime (and _ms), $__timeFrom, $__timeTo, $__timeInterval,
// $__timeInterval_ms, $__interval_s, $__interval, $__interval_ms, with the
// plugin's output byte for byte: comments are blanked first, names match
// longest first, unknown macros stay. ConditionalAll is the plugin's
// frontend $__conditionalAll(condition, $var): 1=1 when All is selected.
// Grafana's own variable interpolation between the two is not part of the
// package; the tests carry the small subset the panels use.
//
// # What the tests prove
//
// TestPanelsReturnRows fills the embedded warehouse with a simulated run
// (traffic_test.go: 20 minutes, three classes, four API keys, five
// orchestrators, a policy every 10 s, one orchestrator failing from minute
// 8 and then cut and ejected) and runs every ClickHouse panel's committed
// SQL — $__conditionalAll, variables, macros, in Grafana's order — with All
// and with one value selected, checking rows come back with the declared
// columns and a time column first in time series. Panels that aggregate
// attempts read attempts_1m or attempts_10s (TestRollupPanelsReadRollups).
// TestLint ports dashboard-linter's template-datasource,
// template-on-time-change-reload, uneditable-dashboard,
// panel-title-description, panel-units, panel-no-targets,
// panel-datasource, target-rate-interval and target-promql rules, plus
// loopgate's target-clickhouse rule. TestAlertRules runs promtool check
// rules and promtool test rules on deploy/prometheus.
// TestPrometheusFindsEveryMetric builds loopgate, runs `loopgate dev` on
// free ports, starts Debian's Prometheus scraping its admin port (with a
// bearer token from LOOPGATE_METRICS_TOKEN when set) and asks its HTTP API
// for every metric a dashboard or alert names. TestCookbookQueries runs
// every query of docs/ANALYSTS.md.
//
// Tools the tests need come from the project's scripts: libchdb
// (deploy/local/chdb.sh) and prometheus/promtool
// (deploy/local/prometheus.sh, Debian's prometheus package); without them
// the tests skip, and under CI=true they fail.
package dashboards

//go:generate go run ./internal/export json
