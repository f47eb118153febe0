-- API keys made through the admin API (package gateway's Keys): one row
-- per change of a key (create, revoke, rotate), the newest version_ms per
-- id in force. record is event.APIKey as JSON: the SHA-256 of the secret,
-- never the secret. Every router reads it at start and every
-- gateway.key_sync_interval, so a key made on one router reaches the
-- others and survives restarts. Kept forever (a handful of rows per key).
CREATE TABLE IF NOT EXISTS {{table "api_keys"}}
(
    id         String,
    version_ms Int64,
    record     String
)
ENGINE = {{engine "MergeTree" "api_keys"}}
ORDER BY (id, version_ms)
{{- settings}}{{distributed "api_keys" "rand()"}};
