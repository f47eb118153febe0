package dashboards

func pipelineHealth() Dashboard {
	rate := func(m string) string { return "sum by (instance) (rate(" + m + "[$__rate_interval]))" }
	return Dashboard{
		UID: "loopgate-pipeline", Title: "loopgate / Pipeline health", File: "pipeline.json",
		Description:    "The event path and the serving side from Prometheus: the outcome publisher's queue, spill and drops; ingest lag, rows/s and dead letters; the router's in-flight requests, refusals and retry budget; the optimizer's rounds.",
		DatasourceType: PrometheusType,
		Panels: []Panel{
			{
				Title: "Publisher queue", Unit: "short", Width: 8,
				Description: "Outcome events held in memory by the publisher (including a batch in flight) before Kafka acknowledges them.",
				Prom:        []PromTarget{{Expr: "sum by (instance) (loopgate_eventlog_publisher_queue_depth)", Legend: "{{instance}}"}},
			},
			{
				Title: "Publisher spill", Unit: "short", Width: 8,
				Description: "Events waiting in the local spill file because Kafka was unreachable; they are replayed when it returns. Non-zero means Kafka trouble.",
				Prom:        []PromTarget{{Expr: "sum by (instance) (loopgate_eventlog_publisher_spill_events)", Legend: "{{instance}}"}},
			},
			{
				Title: "Publisher drops and refusals", Unit: "ops", Width: 8,
				Description: "Events lost per second because the spill was full or failing (dropped), and events Kafka refused for good (rejected). Both should be zero.",
				Prom: []PromTarget{
					{Expr: rate("loopgate_eventlog_publisher_dropped_total"), Legend: "dropped {{instance}}"},
					{Expr: rate("loopgate_eventlog_publisher_rejected_total"), Legend: "rejected {{instance}}"},
				},
			},
			{
				Title: "Ingest lag", Unit: "short", Width: 8,
				Description: "Outcome messages between the consumer group's committed offsets and the ends of the partitions. Grows while ClickHouse is down.",
				Prom:        []PromTarget{{Expr: "sum by (instance) (loopgate_ingest_consumer_lag)", Legend: "{{instance}}"}},
			},
			{
				Title: "Ingest rows written", Unit: "ops", Width: 8,
				Description: "Outcomes per second the warehouse accepted from ingest, and failed warehouse writes per second (each is retried).",
				Prom: []PromTarget{
					{Expr: rate("loopgate_ingest_rows_written_total"), Legend: "rows {{instance}}"},
					{Expr: rate("loopgate_ingest_write_errors_total"), Legend: "write errors {{instance}}"},
				},
			},
			{
				Title: "Dead letters", Unit: "ops", Width: 8,
				Description: "Outcome messages per second sent to the dead-letter topic, by reason (malformed, schema_version, too_large, invalid).",
				Prom:        []PromTarget{{Expr: "sum by (reason) (rate(loopgate_ingest_dead_letters_total[$__rate_interval]))", Legend: "{{reason}}"}},
			},
			{
				Title: "Router in-flight requests", Unit: "short", Width: 8,
				Description: "Client requests being served by each router.",
				Prom:        []PromTarget{{Expr: "sum by (instance) (loopgate_router_in_flight_requests)", Legend: "{{instance}}"}},
			},
			{
				Title: "Router refusals", Unit: "reqps", Width: 8,
				Description: "Requests per second answered without an attempt, by reason (auth, limits, no orchestrator, ...).",
				Prom:        []PromTarget{{Expr: "sum by (reason) (rate(loopgate_router_rejected_total[$__rate_interval]))", Legend: "{{reason}}"}},
			},
			{
				Title: "Retries and retry budget", Unit: "ops", Width: 8,
				Description: "Retries per second, and retries not made because the retry budget was spent.",
				Prom: []PromTarget{
					{Expr: "sum(rate(loopgate_router_retries_total[$__rate_interval]))", Legend: "retries"},
					{Expr: "sum(rate(loopgate_router_retry_budget_exhausted_total[$__rate_interval]))", Legend: "budget exhausted"},
				},
			},
			{
				Title: "Policy version: published and applied", Unit: "none", Width: 12,
				Description: "The optimizer's last published policy version and the version each router applies; the routers should follow within a period.",
				Prom: []PromTarget{
					{Expr: "max(loopgate_optimizer_policy_version)", Legend: "published"},
					{Expr: "loopgate_router_policy_version", Legend: "applied {{instance}}"},
				},
			},
			{
				Title: "Optimizer rounds", Unit: "ops", Width: 12,
				Description: "Optimization rounds per second by result (ok, stats_error, publish_error, invalid).",
				Prom:        []PromTarget{{Expr: "sum by (result) (rate(loopgate_optimizer_runs_total[$__rate_interval]))", Legend: "{{result}}"}},
			},
		},
	}
}
