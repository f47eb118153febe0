-- The optimizer's rollup: attempts per 10 seconds × orchestrator ×
-- capability × model × client region, with the latency of successful
-- attempts only (what an SLO is met by). Fine enough for a policy period of
-- seconds; kept for days, not months (attempts_1m is the long history).
CREATE TABLE IF NOT EXISTS {{table "attempts_10s"}}
(
    bucket             DateTime('UTC'),
    orchestrator       {{lc}},
    capability         {{lc}},
    model              {{lc}},
    client_region      {{lc}},
    attempts           AggregateFunction(count),
    successes          AggregateFunction(sum, UInt64),
    errors             AggregateFunction(sum, UInt64),
    busy               AggregateFunction(sum, UInt64),
    refused            AggregateFunction(sum, UInt64),
    timeouts           AggregateFunction(sum, UInt64),
    client_errors      AggregateFunction(sum, UInt64),
    canceled           AggregateFunction(sum, UInt64),
    billed_attempts    AggregateFunction(sum, UInt64),
    billed_cost        AggregateFunction(sum, Float64),
    ok_latency_tdigest AggregateFunction(quantilesTDigestIf(0.5, 0.9, 0.95, 0.99), UInt32, UInt8)
)
ENGINE = {{engine "AggregatingMergeTree" "attempts_10s"}}
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket, capability, model, client_region, orchestrator)
{{- ttl "bucket" .FineDays}}
{{- settings "ttl" "dedup"}}{{distributed "attempts_10s" "rand()"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{.DB}}.attempts_10s_mv{{onCluster}} TO {{local "attempts_10s"}} AS
SELECT
    {{tenSeconds "start_time"}} AS bucket,
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
    sumState(toUInt64(billed)) AS billed_attempts,
    sumState(if(billed = 1, cost, 0.)) AS billed_cost,
    quantilesTDigestIfState(0.5, 0.9, 0.95, 0.99)(latency_ms, toUInt8(result = 'ok')) AS ok_latency_tdigest
FROM {{local "attempts"}}
GROUP BY bucket, orchestrator, capability, model, client_region;
