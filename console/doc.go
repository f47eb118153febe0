// Package console is the operator's console: one web page on the admin
// port that shows the cost/latency frontier the optimizer predicts, turns
// the λ knob with a preview and a confirmation, and shows traffic shares,
// limits, ejections, policy history and the audit log.
//
//	c, err := console.New(console.DefaultConfig(), deps.Deps{Logger: log})
//	if err != nil { ... }
//	c.Mount(srv) // srv is the process's *admin.Server
//	// then open http://<admin addr>/console/ and paste a token
//
// # What is served
//
//	GET /console/             index.html, console.js, console.css and the vendored uPlot (public)
//	GET /console/charts.json  poll intervals, the SLO, and each chart's SQL expanded for the last
//	                          Config.Window (read role)
//
// The page and its assets are public so that it loads before the login;
// they hold no data. The assets are embedded (assets/, go:embed): no CDN,
// no build step. The one library is uPlot, vendored from npm with its MIT
// licence (assets/vendor/uplot/README.md says which version and how to
// upgrade); the rest is plain JavaScript (assets/console.js) and CSS.
// Answers carry a Content-Security-Policy of the page's own origin and no
// framing, so another site can neither inject script nor put the Apply
// button under a user's click.
//
// # Login and the data it reads
//
// The operator pastes a token; the page keeps it in sessionStorage (this
// tab, until it closes) and sends "Authorization: Bearer <token>" on every
// call. Any 401 returns to the login box with the server's message. It
// polls, every Config.Poll: GET /frontier, /lambda, /policy and
// /orchestrators; every Config.ChartPoll: /console/charts.json, then each
// chart's SQL through GET /query (read-only SQL, see package warehouse). A
// route the process does not serve (404: an optimizer-only process has no
// /policy or /query) leaves its panel empty with that reason.
//
//	frontier plot    GET /frontier: x predicted cost per request, y predicted SLO
//	                 attainment, one point per λ of the sweep (hover: λ and p95); the
//	                 current point (GET /frontier/preview's "current") and the previewed one
//	knob             a slider over λ ∈ [0, 1]; each move asks GET /frontier/preview?lambda=x
//	                 and shows cost, SLO and p95 now → at x and the largest share move;
//	                 Apply opens a confirmation with the change and every share that would
//	                 move, then POST /lambda?lambda=x (admin role, audited as config.lambda;
//	                 the page is same-origin, so the admin server's Origin check passes)
//	orchestrators    GET /orchestrators and /policy: share, in flight, limit, the policy's
//	                 limit, latency, ejected by the router or the policy and why
//	charts, tables   SQL (Charts): SLO attainment per minute, cost per request per minute,
//	                 planned share by orchestrator, ejections with reasons, policy history,
//	                 largest share changes with reasons, the audit log
//
// # The charts' SQL
//
// Charts that have a Grafana panel use its SQL byte for byte (Chart.Panel
// names it; a test compares with package dashboards): SLO attainment by
// class (Overview; its slo_ms is Config.SLO, or with Config.ClassSLOs a
// per-class multiIf, so that a request is held to its own class's target as
// the frontier's predictions are; cmd fills them from the optimizer's
// catalog), Planned share by orchestrator
// and Largest share changes (The loop), Ejections with reasons
// (Orchestrators). The others are the console's own, in the same dialect:
// cost per request per minute (the Overview's money panel is per hour),
// policy history and the audit log (people's changes: the optimizer's
// policy.publish rows are the policy history). Macros are expanded for the window
// [now − Window, now] in Step buckets exactly as the Grafana ClickHouse
// plugin would (a test compares with dashboards.ExpandMacros), with every
// capability selected.
package console
