package dashboards

// livepeer is the dashboard of stock go-livepeer's own gateway events, as
// the ingest adapter stores them (livepeer_payments, livepeer_discovery,
// livepeer_streams): what a gateway pays and how its orchestrators answer,
// before any request goes through loopgate's router.
func livepeer() Dashboard {
	return Dashboard{
		UID: "loopgate-livepeer", Title: "loopgate / go-livepeer", File: "livepeer.json",
		Description:    "Stock go-livepeer's gateway events (-kafkaGatewayTopic): expected value paid per orchestrator, discovery latency, live-stream first-segment latency. ClickHouse (livepeer_payments, livepeer_discovery, livepeer_streams).",
		DatasourceType: ClickHouseType,
		Panels: []Panel{
			{
				Title: "Expected value paid per orchestrator per hour", viz: vizBars, Unit: "short", Format: FormatTimeSeries,
				Description: "ETH of expected value (tickets × face value × win probability) paid to each orchestrator (ticket recipient) per hour. Summed exactly as Decimal in wei, shown in ETH.",
				SQL: "SELECT toStartOfHour(event_time) AS time, recipient AS orchestrator, toFloat64(sum(ev_wei)) / 1e18 AS ev_eth\n" +
					"FROM loopgate.livepeer_payments WHERE $__timeFilter(event_time)\nGROUP BY time, orchestrator ORDER BY time",
				Columns: []string{"time", "orchestrator", "ev_eth"},
			},
			{
				Title: "Discovery latency p50 by orchestrator", Unit: "ms", Format: FormatTimeSeries,
				Description: "Median GetOrchestratorInfo round trip per orchestrator, from go-livepeer's discovery_results.",
				SQL: "SELECT $__timeInterval(event_time) AS time, address AS orchestrator, quantile(0.5)(latency_ms) AS p50_ms\n" +
					"FROM loopgate.livepeer_discovery WHERE $__timeFilter(event_time)\nGROUP BY time, orchestrator ORDER BY time",
				Columns: []string{"time", "orchestrator", "p50_ms"},
			},
			{
				Title: "Live streams: first-segment latency and swaps by orchestrator", viz: vizTable, Unit: "short", Format: FormatTable, Width: 24,
				Description: "Per orchestrator that served a stream's first processed segment: streams, median and p95 time from the stream request to that segment, and orchestrator swaps (stream_trace).",
				ColumnUnits: map[string]string{"first_segment_p50_ms": "ms", "first_segment_p95_ms": "ms"},
				SQL: "SELECT orchestrator, count() AS streams, quantile(0.5)(first_ms) AS first_segment_p50_ms, quantile(0.95)(first_ms) AS first_segment_p95_ms, sum(swaps) AS swaps FROM (\n" +
					"  SELECT stream_id, argMaxIf(orch_address, data_ts_ms, type = 'gateway_receive_first_processed_segment') AS orchestrator,\n" +
					"    minIf(data_ts_ms, type = 'gateway_receive_first_processed_segment') - minIf(data_ts_ms, type = 'gateway_receive_stream_request') AS first_ms,\n" +
					"    countIf(type = 'orchestrator_swap') AS swaps\n" +
					"  FROM loopgate.livepeer_streams WHERE $__timeFilter(event_time) AND kind = 'stream_trace'\n" +
					"  GROUP BY stream_id\n" +
					"  HAVING countIf(type = 'gateway_receive_first_processed_segment') > 0 AND countIf(type = 'gateway_receive_stream_request') > 0)\n" +
					"GROUP BY orchestrator ORDER BY first_segment_p50_ms",
				Columns: []string{"orchestrator", "streams", "first_segment_p50_ms", "first_segment_p95_ms", "swaps"},
			},
		},
	}
}
