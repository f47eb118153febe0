-- Operator and system actions: who changed what, when. Kept forever.
CREATE TABLE IF NOT EXISTS {{table "audit"}}
(
    time_ms Int64,
    time    {{time}} DEFAULT {{timeFromMs "time_ms"}},
    actor   {{lc}},
    action  {{lc}},
    detail  String{{codec "ZSTD(3)"}}
)
ENGINE = {{engine "MergeTree" "audit"}}
PARTITION BY toYYYYMM(time)
ORDER BY (time, actor)
{{- settings}}{{distributed "audit" "rand()"}};
