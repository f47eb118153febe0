-- Which migrations have run. Written last by each migration, so a crash in
-- the middle re-runs it; every statement is idempotent (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS {{.DB}}.schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
ORDER BY version;
