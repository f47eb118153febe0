-- One row per attempt: what the optimizer learns from. Carries the request
-- fields that define the demand class, so stats need no join.
CREATE TABLE IF NOT EXISTS {{table "attempts"}}
(
    request_id       String{{codec "ZSTD(1)"}},
    attempt          UInt8,
    capability       {{lc}},
    model            {{lc}},
    client_region    {{lc}},
    gateway_id       {{lc}},
    policy_version   UInt64{{codec "Delta, ZSTD(1)"}},
    orchestrator     {{lc}},
    orch_region      {{lc}},
    start_ms         Int64{{codec "Delta, ZSTD(1)"}},
    start_time       {{time}} DEFAULT {{timeFromMs "start_ms"}}{{codec "Delta, ZSTD(1)"}},
    latency_ms       UInt32{{codec "ZSTD(1)"}},
    result           {{lc}},
    error_class      {{lc}},
    http_status      UInt16,
    retry            UInt8,
    hedged           UInt8,
    billed           UInt8,
    cost             Float64{{codec "ZSTD(1)"}},
    propensity       Float64{{codec "ZSTD(1)"}},
    score_share      Float64{{codec "ZSTD(1)"}},
    score_latency_ms Float64{{codec "ZSTD(1)"}},
    score_in_flight  UInt32,
    score_penalty    Float64{{codec "ZSTD(1)"}},
    score_weight     Float64{{codec "ZSTD(1)"}},
    ingested_at      {{time}} DEFAULT {{now}}{{codec "Delta, ZSTD(1)"}}
)
ENGINE = {{engine "MergeTree" "attempts"}}
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (start_time, request_id, attempt)
{{- ttl "start_time" .RawDays}}
{{- settings "ttl" "dedup"}}{{distributed "attempts" "cityHash64(request_id)"}};
