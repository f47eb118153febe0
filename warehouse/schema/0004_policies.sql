-- Every routing policy the optimizer published, one row per version.
-- ReplacingMergeTree collapses a version replayed from Kafka; the writer
-- also skips versions already present.
CREATE TABLE IF NOT EXISTS {{table "policies"}}
(
    version      UInt64,
    created_ms   Int64,
    created_time {{time}} DEFAULT {{timeFromMs "created_ms"}},
    lambda       Float64,
    window_s     UInt32,
    producer     {{lc}},
    classes      UInt32,
    ejections    UInt32,
    policy       String{{codec "ZSTD(3)"}},
    written_at   {{time}} DEFAULT {{now}}
)
ENGINE = {{engine "ReplacingMergeTree" "policies"}}
ORDER BY version
{{- settings}}{{distributed "policies" "version"}};
