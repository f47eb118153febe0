-- Which migrations have run. Written last by each migration, so a crash in
-- the middle re-runs it; every statement is idempotent (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS {{table "schema_migrations"}}
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = {{engine "ReplacingMergeTree" "schema_migrations"}}
ORDER BY version{{distributed "schema_migrations" "version"}};
