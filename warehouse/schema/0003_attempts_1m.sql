-- Per-minute rollup of attempts per orchestrator × capability × model ×
-- client region. Read with the -Merge combinators, e.g.
--   SELECT countMerge(attempts), quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_tdigest)
--   FROM attempts_1m WHERE minute >= now() - INTERVAL 10 MINUTE GROUP BY orchestrator
CREATE TABLE IF NOT EXISTS {{table "attempts_1m"}}
(
    minute          DateTime('UTC'),
    orchestrator    {{lc}},
    capability      {{lc}},
    model           {{lc}},
    client_region   {{lc}},
    attempts        AggregateFunction(count),
    successes       AggregateFunction(sum, UInt64),
    errors          AggregateFunction(sum, UInt64),
    busy            AggregateFunction(sum, UInt64),
    refused         AggregateFunction(sum, UInt64),
    timeouts        AggregateFunction(sum, UInt64),
    client_errors   AggregateFunction(sum, UInt64),
    canceled        AggregateFunction(sum, UInt64),
    retries         AggregateFunction(sum, UInt64),
    hedges          AggregateFunction(sum, UInt64),
    billed_attempts AggregateFunction(sum, UInt64),
    billed_cost     AggregateFunction(sum, Float64),
    latency_sum_ms  AggregateFunction(sum, UInt64),
    latency_tdigest AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), UInt32)
)
ENGINE = {{engine "AggregatingMergeTree" "attempts_1m"}}
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, capability, model, client_region, orchestrator)
{{- ttl "minute" .RollupDays}}
{{- settings "ttl" "dedup"}}{{distributed "attempts_1m" "rand()"}};

-- Fed by every block inserted into attempts, and only by those: rows the
-- writer skips as duplicates never reach the rollup.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.attempts_1m_mv{{onCluster}} TO {{local "attempts_1m"}} AS
SELECT
    {{minute "start_time"}} AS minute,
    orchestrator,
    capability,
    model,
    client_region,
    countState() AS attempts,
    sumState(toUInt64(result = 'ok')) AS successes,
    sumState(toUInt64(result = 'error')) AS errors,
    sumState(toUInt64(result = 'busy')) AS busy,
    sumState(toUInt64(result = 'refused')) AS refused,
    sumState(toUInt64(result = 'timeout')) AS timeouts,
    sumState(toUInt64(result = 'client')) AS client_errors,
    sumState(toUInt64(result = 'canceled')) AS canceled,
    sumState(toUInt64(retry)) AS retries,
    sumState(toUInt64(hedged)) AS hedges,
    sumState(toUInt64(billed)) AS billed_attempts,
    sumState(if(billed = 1, cost, 0.)) AS billed_cost,
    sumState(toUInt64(latency_ms)) AS latency_sum_ms,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_tdigest
FROM {{local "attempts"}}
GROUP BY minute, orchestrator, capability, model, client_region;
