-- One row per client request (event.Outcome without its attempts).
-- start_ms/end_ms keep the exact wire values; start_time is derived from
-- start_ms for partitioning, ordering and TTL.
CREATE TABLE IF NOT EXISTS {{table "requests"}}
(
    id             String{{codec "ZSTD(1)"}},
    schema         UInt16,
    gateway_id     {{lc}},
    gateway_region {{lc}},
    client_region  {{lc}},
    api_key_id     {{lc}},
    customer       {{lc}},
    capability     {{lc}},
    model          {{lc}},
    units          Int64{{codec "ZSTD(1)"}},
    unit_kind      {{lc}},
    start_ms       Int64{{codec "Delta, ZSTD(1)"}},
    end_ms         Int64{{codec "Delta, ZSTD(1)"}},
    start_time     {{time}} DEFAULT {{timeFromMs "start_ms"}}{{codec "Delta, ZSTD(1)"}},
    status         {{lc}},
    error_class    {{lc}},
    http_status    UInt16,
    latency_ms     UInt32{{codec "ZSTD(1)"}},
    ttfb_ms        UInt32{{codec "ZSTD(1)"}},
    bytes_in       UInt64{{codec "ZSTD(1)"}},
    bytes_out      UInt64{{codec "ZSTD(1)"}},
    price_per_unit Float64{{codec "ZSTD(1)"}},
    cost           Float64{{codec "ZSTD(1)"}},
    charge         Float64{{codec "ZSTD(1)"}},
    policy_version UInt64{{codec "Delta, ZSTD(1)"}},
    attempt_count  UInt8,
    ingested_at    {{time}} DEFAULT {{now}}{{codec "Delta, ZSTD(1)"}}
)
ENGINE = {{engine "MergeTree" "requests"}}
PARTITION BY toYYYYMMDD(start_time)
ORDER BY (start_time, id)
{{- ttl "start_time" .RawDays}}
{{- settings "ttl" "dedup"}}{{distributed "requests" "cityHash64(id)"}};
