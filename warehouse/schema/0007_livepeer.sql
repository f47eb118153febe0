-- Stock go-livepeer's own gateway events (-kafkaGatewayTopic), as the
-- ingest adapter decodes them. Every row is (event_id, idx): the event's id
-- and the row's index within it, which the writer checks before inserting,
-- so a replayed topic adds no rows. Wei amounts are exact decimals
-- (Decimal(76, s) on the modern profile, Decimal(38, s) on the legacy one);
-- the adapter refuses amounts of 10^28 wei or more on both.

-- create_new_payment: one row per payment (a batch of tickets).
CREATE TABLE IF NOT EXISTS {{table "livepeer_payments"}}
(
    event_id           String{{codec "ZSTD(1)"}},
    idx                UInt32,
    gateway            {{lc}},
    ts_ms              Int64{{codec "Delta, ZSTD(1)"}},
    event_time         {{time}} DEFAULT {{timeFromMs "ts_ms"}}{{codec "Delta, ZSTD(1)"}},
    request_id         String{{codec "ZSTD(1)"}},
    session_id         String{{codec "ZSTD(1)"}},
    manifest_id        String{{codec "ZSTD(1)"}},
    capability         {{lc}},
    orchestrator       {{lc}},
    recipient          {{lc}},
    sender             {{lc}},
    num_tickets        UInt32,
    face_value_wei     {{wei 0}},
    win_prob           Decimal(18, 10),
    ev_wei             {{wei 10}},
    price_per_unit_wei {{wei 3}},
    price_unit         {{lc}},
    ingested_at        {{time}} DEFAULT {{now}}{{codec "Delta, ZSTD(1)"}}
)
ENGINE = {{engine "MergeTree" "livepeer_payments"}}
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
{{- ttl "event_time" .RawDays}}
{{- settings "ttl" "dedup"}}{{distributed "livepeer_payments" "cityHash64(event_id)"}};

-- discovery_results: one row per orchestrator the gateway discovered, with
-- its GetOrchestratorInfo latency.
CREATE TABLE IF NOT EXISTS {{table "livepeer_discovery"}}
(
    event_id    String{{codec "ZSTD(1)"}},
    idx         UInt32,
    gateway     {{lc}},
    ts_ms       Int64{{codec "Delta, ZSTD(1)"}},
    event_time  {{time}} DEFAULT {{timeFromMs "ts_ms"}}{{codec "Delta, ZSTD(1)"}},
    address     {{lc}},
    url         {{lc}},
    latency_ms  UInt32{{codec "ZSTD(1)"}},
    ingested_at {{time}} DEFAULT {{now}}{{codec "Delta, ZSTD(1)"}}
)
ENGINE = {{engine "MergeTree" "livepeer_discovery"}}
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
{{- ttl "event_time" .RawDays}}
{{- settings "ttl" "dedup"}}{{distributed "livepeer_discovery" "cityHash64(event_id)"}};

-- network_capabilities: one row per orchestrator per snapshot, so the
-- newest row of an address is its current offer (argMax(..., ts_ms)).
CREATE TABLE IF NOT EXISTS {{table "livepeer_orchestrators"}}
(
    event_id            String{{codec "ZSTD(1)"}},
    idx                 UInt32,
    gateway             {{lc}},
    ts_ms               Int64{{codec "Delta, ZSTD(1)"}},
    event_time          {{time}} DEFAULT {{timeFromMs "ts_ms"}}{{codec "Delta, ZSTD(1)"}},
    address             {{lc}},
    local_address       {{lc}},
    orch_uri            {{lc}},
    price_per_unit_wei  {{wei 0}},
    pixels_per_unit     Int64,
    capabilities_prices String{{codec "ZSTD(3)"}},
    capabilities        String{{codec "ZSTD(3)"}},
    hardware            String{{codec "ZSTD(3)"}},
    ingested_at         {{time}} DEFAULT {{now}}{{codec "Delta, ZSTD(1)"}}
)
ENGINE = {{engine "MergeTree" "livepeer_orchestrators"}}
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
{{- ttl "event_time" .RawDays}}
{{- settings "ttl" "dedup"}}{{distributed "livepeer_orchestrators" "cityHash64(event_id)"}};

-- stream_trace, ai_stream_status and ai_stream_events of live pipelines.
-- First-segment latency is, per stream, the first
-- gateway_receive_first_processed_segment's data_ts_ms minus the
-- gateway_receive_stream_request's (docs/ANALYSTS.md has the query).
CREATE TABLE IF NOT EXISTS {{table "livepeer_streams"}}
(
    event_id     String{{codec "ZSTD(1)"}},
    idx          UInt32,
    gateway      {{lc}},
    ts_ms        Int64{{codec "Delta, ZSTD(1)"}},
    event_time   {{time}} DEFAULT {{timeFromMs "ts_ms"}}{{codec "Delta, ZSTD(1)"}},
    kind         {{lc}},
    type         {{lc}},
    stream_id    String{{codec "ZSTD(1)"}},
    request_id   String{{codec "ZSTD(1)"}},
    pipeline     {{lc}},
    pipeline_id  String{{codec "ZSTD(1)"}},
    orch_address {{lc}},
    orch_url     {{lc}},
    data_ts_ms   Int64{{codec "Delta, ZSTD(1)"}},
    message      String{{codec "ZSTD(3)"}},
    data         String{{codec "ZSTD(3)"}},
    ingested_at  {{time}} DEFAULT {{now}}{{codec "Delta, ZSTD(1)"}}
)
ENGINE = {{engine "MergeTree" "livepeer_streams"}}
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_time, event_id, idx)
{{- ttl "event_time" .RawDays}}
{{- settings "ttl" "dedup"}}{{distributed "livepeer_streams" "cityHash64(event_id)"}};
