-- migration 0000 schema_migrations, statement 1
-- Which migrations have run. Written last by each migration, so a crash in
-- the middle re-runs it; every statement is idempotent (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS loopgate.schema_migrations_local ON CLUSTER loopgate
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/loopgate/schema_migrations', '{replica}')
ORDER BY version;

-- migration 0000 schema_migrations, statement 2
CREATE TABLE IF NOT EXISTS loopgate.schema_migrations ON CLUSTER loopgate AS loopgate.schema_migrations_local
ENGINE = Distributed(loopgate, loopgate, schema_migrations_local, version);

-- migration 0001 requests, statement 1
-- One row per client request (event.Outcome without its attempts).
-- start_ms/end_ms keep the exact wire values; start_time is derived from
-- start_ms for partitioning, ordering and TTL.
CREATE TABLE IF NOT EXISTS loopgate.requests_local ON CLUSTER loopgate
(
    id             String CODEC(ZSTD(1)),
    schema         UInt16,
    gateway_id     LowCardinality(String),
    gateway_region LowCardinality(String),
    client_region  LowCardinality(String),
    api_key_id     LowCardinality(String),
    customer       LowCardinality(String),
    capability     LowCardinality(String),
    model          LowCardinality(String),
    units          Int64 CODEC(ZSTD(1)),
    unit_kind      LowCardinality(String),
    start_ms       Int64 CODEC(Delta, ZSTD(1)),
    end_ms         Int64 CODEC(Delta, ZSTD(1)),
    start_time     DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(start_ms, 'UTC') CODEC(Delta, ZSTD(1)),
    status         LowCardinality(String),
    error_class    LowCardinality(String),
    http_status    UInt16,
    latency_ms     UInt32 CODEC(ZSTD(1)),
    ttfb_ms        UInt32 CODEC(ZSTD(1)),
    bytes_in       UInt64 CODEC(ZSTD(1)),
    bytes_out      UInt64 CODEC(ZSTD(1)),
    price_per_unit Float64 CODEC(ZSTD(1)),
    cost           Float64 CODEC(ZSTD(1)),
    charge         Float64 CODEC(ZSTD(1)),
    policy_version UInt64 CODEC(Delta, ZSTD(1)),
    attempt_count  UInt8,
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/requests', '{replica}')
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (start_time, id)
TTL toDateTime(start_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0001 requests, statement 2
CREATE TABLE IF NOT EXISTS loopgate.requests ON CLUSTER loopgate AS loopgate.requests_local
ENGINE = Distributed(loopgate, loopgate, requests_local, cityHash64(id));

-- migration 0002 attempts, statement 1
-- One row per attempt: what the optimizer learns from. Carries the request
-- fields that define the demand class, so stats need no join.
CREATE TABLE IF NOT EXISTS loopgate.attempts_local ON CLUSTER loopgate
(
    request_id       String CODEC(ZSTD(1)),
    attempt          UInt8,
    capability       LowCardinality(String),
    model            LowCardinality(String),
    client_region    LowCardinality(String),
    gateway_id       LowCardinality(String),
    policy_version   UInt64 CODEC(Delta, ZSTD(1)),
    orchestrator     LowCardinality(String),
    orch_region      LowCardinality(String),
    start_ms         Int64 CODEC(Delta, ZSTD(1)),
    start_time       DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(start_ms, 'UTC') CODEC(Delta, ZSTD(1)),
    latency_ms       UInt32 CODEC(ZSTD(1)),
    result           LowCardinality(String),
    error_class      LowCardinality(String),
    http_status      UInt16,
    retry            UInt8,
    hedged           UInt8,
    billed           UInt8,
    cost             Float64 CODEC(ZSTD(1)),
    propensity       Float64 CODEC(ZSTD(1)),
    score_share      Float64 CODEC(ZSTD(1)),
    score_latency_ms Float64 CODEC(ZSTD(1)),
    score_in_flight  UInt32,
    score_penalty    Float64 CODEC(ZSTD(1)),
    score_weight     Float64 CODEC(ZSTD(1)),
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/attempts', '{replica}')
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (start_time, request_id, attempt)
TTL toDateTime(start_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0002 attempts, statement 2
CREATE TABLE IF NOT EXISTS loopgate.attempts ON CLUSTER loopgate AS loopgate.attempts_local
ENGINE = Distributed(loopgate, loopgate, attempts_local, cityHash64(request_id));

-- migration 0003 attempts_1m, statement 1
-- Per-minute rollup of attempts per orchestrator × capability × model ×
-- client region. Read with the -Merge combinators, e.g.
--   SELECT countMerge(attempts), quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_tdigest)
--   FROM attempts_1m WHERE minute >= now() - INTERVAL 10 MINUTE GROUP BY orchestrator
CREATE TABLE IF NOT EXISTS loopgate.attempts_1m_local ON CLUSTER loopgate
(
    minute          DateTime('UTC'),
    orchestrator    LowCardinality(String),
    capability      LowCardinality(String),
    model           LowCardinality(String),
    client_region   LowCardinality(String),
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/loopgate/attempts_1m', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, capability, model, client_region, orchestrator)
TTL toDateTime(minute) + INTERVAL 400 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0003 attempts_1m, statement 2
CREATE TABLE IF NOT EXISTS loopgate.attempts_1m ON CLUSTER loopgate AS loopgate.attempts_1m_local
ENGINE = Distributed(loopgate, loopgate, attempts_1m_local, rand());

-- migration 0003 attempts_1m, statement 3
-- Fed by every block inserted into attempts, and only by those: rows the
-- writer skips as duplicates never reach the rollup.
CREATE MATERIALIZED VIEW IF NOT EXISTS loopgate.attempts_1m_mv ON CLUSTER loopgate TO loopgate.attempts_1m_local AS
SELECT
    toDateTime(toStartOfInterval(start_time, INTERVAL 1 MINUTE), 'UTC') AS minute,
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
FROM loopgate.attempts_local
GROUP BY minute, orchestrator, capability, model, client_region;

-- migration 0004 policies, statement 1
-- Every routing policy the optimizer published, one row per version.
-- ReplacingMergeTree collapses a version replayed from Kafka; the writer
-- also skips versions already present.
CREATE TABLE IF NOT EXISTS loopgate.policies_local ON CLUSTER loopgate
(
    version      UInt64,
    created_ms   Int64,
    created_time DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(created_ms, 'UTC'),
    lambda       Float64,
    window_s     UInt32,
    producer     LowCardinality(String),
    classes      UInt32,
    ejections    UInt32,
    policy       String CODEC(ZSTD(3)),
    written_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/loopgate/policies', '{replica}')
ORDER BY version
SETTINGS index_granularity = 8192;

-- migration 0004 policies, statement 2
CREATE TABLE IF NOT EXISTS loopgate.policies ON CLUSTER loopgate AS loopgate.policies_local
ENGINE = Distributed(loopgate, loopgate, policies_local, version);

-- migration 0005 audit, statement 1
-- Operator and system actions: who changed what, when. Kept forever.
CREATE TABLE IF NOT EXISTS loopgate.audit_local ON CLUSTER loopgate
(
    time_ms Int64,
    time    DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(time_ms, 'UTC'),
    actor   LowCardinality(String),
    action  LowCardinality(String),
    detail  String CODEC(ZSTD(3))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/audit', '{replica}')
PARTITION BY toYYYYMM(time)
ORDER BY (time, actor)
SETTINGS index_granularity = 8192;

-- migration 0005 audit, statement 2
CREATE TABLE IF NOT EXISTS loopgate.audit ON CLUSTER loopgate AS loopgate.audit_local
ENGINE = Distributed(loopgate, loopgate, audit_local, rand());

-- migration 0006 attempts_10s, statement 1
-- The optimizer's rollup: attempts per 10 seconds × orchestrator ×
-- capability × model × client region, with the latency of successful
-- attempts only (what an SLO is met by). Fine enough for a policy period of
-- seconds; kept for days, not months (attempts_1m is the long history).
CREATE TABLE IF NOT EXISTS loopgate.attempts_10s_local ON CLUSTER loopgate
(
    bucket             DateTime('UTC'),
    orchestrator       LowCardinality(String),
    capability         LowCardinality(String),
    model              LowCardinality(String),
    client_region      LowCardinality(String),
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
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/loopgate/attempts_10s', '{replica}')
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket, capability, model, client_region, orchestrator)
TTL toDateTime(bucket) + INTERVAL 7 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0006 attempts_10s, statement 2
CREATE TABLE IF NOT EXISTS loopgate.attempts_10s ON CLUSTER loopgate AS loopgate.attempts_10s_local
ENGINE = Distributed(loopgate, loopgate, attempts_10s_local, rand());

-- migration 0006 attempts_10s, statement 3
CREATE MATERIALIZED VIEW IF NOT EXISTS loopgate.attempts_10s_mv ON CLUSTER loopgate TO loopgate.attempts_10s_local AS
SELECT
    toDateTime(toStartOfInterval(start_time, INTERVAL 10 SECOND), 'UTC') AS bucket,
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
FROM loopgate.attempts_local
GROUP BY bucket, orchestrator, capability, model, client_region;

-- migration 0007 livepeer, statement 1
-- the adapter refuses amounts of 10^28 wei or more on both.

-- create_new_payment: one row per payment (a batch of tickets).
CREATE TABLE IF NOT EXISTS loopgate.livepeer_payments_local ON CLUSTER loopgate
(
    event_id           String CODEC(ZSTD(1)),
    idx                UInt32,
    gateway            LowCardinality(String),
    ts_ms              Int64 CODEC(Delta, ZSTD(1)),
    event_time         DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC') CODEC(Delta, ZSTD(1)),
    request_id         String CODEC(ZSTD(1)),
    session_id         String CODEC(ZSTD(1)),
    manifest_id        String CODEC(ZSTD(1)),
    capability         LowCardinality(String),
    orchestrator       LowCardinality(String),
    recipient          LowCardinality(String),
    sender             LowCardinality(String),
    num_tickets        UInt32,
    face_value_wei     Decimal(76, 0),
    win_prob           Decimal(18, 10),
    ev_wei             Decimal(76, 10),
    price_per_unit_wei Decimal(76, 3),
    price_unit         LowCardinality(String),
    ingested_at        DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/livepeer_payments', '{replica}')
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0007 livepeer, statement 2
CREATE TABLE IF NOT EXISTS loopgate.livepeer_payments ON CLUSTER loopgate AS loopgate.livepeer_payments_local
ENGINE = Distributed(loopgate, loopgate, livepeer_payments_local, cityHash64(event_id));

-- migration 0007 livepeer, statement 3
-- discovery_results: one row per orchestrator the gateway discovered, with
-- its GetOrchestratorInfo latency.
CREATE TABLE IF NOT EXISTS loopgate.livepeer_discovery_local ON CLUSTER loopgate
(
    event_id    String CODEC(ZSTD(1)),
    idx         UInt32,
    gateway     LowCardinality(String),
    ts_ms       Int64 CODEC(Delta, ZSTD(1)),
    event_time  DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC') CODEC(Delta, ZSTD(1)),
    address     LowCardinality(String),
    url         LowCardinality(String),
    latency_ms  UInt32 CODEC(ZSTD(1)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/livepeer_discovery', '{replica}')
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0007 livepeer, statement 4
CREATE TABLE IF NOT EXISTS loopgate.livepeer_discovery ON CLUSTER loopgate AS loopgate.livepeer_discovery_local
ENGINE = Distributed(loopgate, loopgate, livepeer_discovery_local, cityHash64(event_id));

-- migration 0007 livepeer, statement 5
-- network_capabilities: one row per orchestrator per snapshot, so the
-- newest row of an address is its current offer (argMax(..., ts_ms)).
CREATE TABLE IF NOT EXISTS loopgate.livepeer_orchestrators_local ON CLUSTER loopgate
(
    event_id            String CODEC(ZSTD(1)),
    idx                 UInt32,
    gateway             LowCardinality(String),
    ts_ms               Int64 CODEC(Delta, ZSTD(1)),
    event_time          DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC') CODEC(Delta, ZSTD(1)),
    address             LowCardinality(String),
    local_address       LowCardinality(String),
    orch_uri            LowCardinality(String),
    price_per_unit_wei  Decimal(76, 0),
    pixels_per_unit     Int64,
    capabilities_prices String CODEC(ZSTD(3)),
    capabilities        String CODEC(ZSTD(3)),
    hardware            String CODEC(ZSTD(3)),
    ingested_at         DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/livepeer_orchestrators', '{replica}')
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0007 livepeer, statement 6
CREATE TABLE IF NOT EXISTS loopgate.livepeer_orchestrators ON CLUSTER loopgate AS loopgate.livepeer_orchestrators_local
ENGINE = Distributed(loopgate, loopgate, livepeer_orchestrators_local, cityHash64(event_id));

-- migration 0007 livepeer, statement 7
-- stream_trace, ai_stream_status and ai_stream_events of live pipelines.
-- First-segment latency is, per stream, the first
-- gateway_receive_first_processed_segment's data_ts_ms minus the
-- gateway_receive_stream_request's (docs/ANALYSTS.md has the query).
CREATE TABLE IF NOT EXISTS loopgate.livepeer_streams_local ON CLUSTER loopgate
(
    event_id     String CODEC(ZSTD(1)),
    idx          UInt32,
    gateway      LowCardinality(String),
    ts_ms        Int64 CODEC(Delta, ZSTD(1)),
    event_time   DateTime64(3, 'UTC') DEFAULT fromUnixTimestamp64Milli(ts_ms, 'UTC') CODEC(Delta, ZSTD(1)),
    kind         LowCardinality(String),
    type         LowCardinality(String),
    stream_id    String CODEC(ZSTD(1)),
    request_id   String CODEC(ZSTD(1)),
    pipeline     LowCardinality(String),
    pipeline_id  String CODEC(ZSTD(1)),
    orch_address LowCardinality(String),
    orch_url     LowCardinality(String),
    data_ts_ms   Int64 CODEC(Delta, ZSTD(1)),
    message      String CODEC(ZSTD(3)),
    data         String CODEC(ZSTD(3)),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/livepeer_streams', '{replica}')
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
TTL toDateTime(event_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, replicated_deduplication_window = 1000;

-- migration 0007 livepeer, statement 8
CREATE TABLE IF NOT EXISTS loopgate.livepeer_streams ON CLUSTER loopgate AS loopgate.livepeer_streams_local
ENGINE = Distributed(loopgate, loopgate, livepeer_streams_local, cityHash64(event_id));

-- migration 0008 spend_1h, statement 1
-- Hourly spend and margin per customer × API key × class × router: what
-- analysts read for margin per customer, class and day, and what budgets
-- are counted against. Summed from every request (refused and failed ones
-- included: a failure may have been paid for). Margin is sum(charge) −
-- sum(cost).
-- Read with sum(), e.g.
--   SELECT toDate(hour) AS day, customer, sum(charge) - sum(cost) AS margin
--   FROM spend_1h GROUP BY day, customer
CREATE TABLE IF NOT EXISTS loopgate.spend_1h_local ON CLUSTER loopgate
(
    hour        DateTime('UTC'),
    customer    LowCardinality(String),
    api_key_id  LowCardinality(String),
    capability  LowCardinality(String),
    model       LowCardinality(String),
    gateway_id  LowCardinality(String),
    requests    UInt64,
    ok_requests UInt64,
    units       Int64,
    cost        Float64,
    charge      Float64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/loopgate/spend_1h', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, customer, api_key_id, capability, model, gateway_id)
SETTINGS index_granularity = 8192, replicated_deduplication_window = 1000;

-- migration 0008 spend_1h, statement 2
CREATE TABLE IF NOT EXISTS loopgate.spend_1h ON CLUSTER loopgate AS loopgate.spend_1h_local
ENGINE = Distributed(loopgate, loopgate, spend_1h_local, rand());

-- migration 0008 spend_1h, statement 3
-- Fed by every block inserted into requests, and only by those: rows the
-- writer skips as duplicates never reach the rollup.
CREATE MATERIALIZED VIEW IF NOT EXISTS loopgate.spend_1h_mv ON CLUSTER loopgate TO loopgate.spend_1h_local AS
SELECT
    toStartOfHour(toDateTime(toStartOfInterval(start_time, INTERVAL 1 MINUTE), 'UTC')) AS hour,
    customer,
    api_key_id,
    capability,
    model,
    gateway_id,
    count() AS requests,
    sum(toUInt64(status = 'ok')) AS ok_requests,
    sum(if(status = 'ok', units, 0)) AS units,
    sum(cost) AS cost,
    sum(charge) AS charge
FROM loopgate.requests_local
GROUP BY hour, customer, api_key_id, capability, model, gateway_id;

-- migration 0009 api_keys, statement 1
-- API keys made through the admin API (package gateway's Keys): one row
-- per change of a key (create, revoke, rotate), the newest version_ms per
-- id in force. record is event.APIKey as JSON: the SHA-256 of the secret,
-- never the secret. Every router reads it at start and every
-- gateway.key_sync_interval, so a key made on one router reaches the
-- others and survives restarts. Kept forever (a handful of rows per key).
CREATE TABLE IF NOT EXISTS loopgate.api_keys_local ON CLUSTER loopgate
(
    id         String,
    version_ms Int64,
    record     String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/loopgate/api_keys', '{replica}')
ORDER BY (id, version_ms)
SETTINGS index_granularity = 8192;

-- migration 0009 api_keys, statement 2
CREATE TABLE IF NOT EXISTS loopgate.api_keys ON CLUSTER loopgate AS loopgate.api_keys_local
ENGINE = Distributed(loopgate, loopgate, api_keys_local, rand());

