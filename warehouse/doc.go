// Package warehouse is loopgate's ClickHouse: the schema and its
// migrations, the exactly-once writer for outcomes, policies and audit
// entries, and query access for analysts and tests. It runs on a ClickHouse
// server (native protocol, clickhouse-go/v2) or on chDB, the ClickHouse
// engine embedded in this process; the SQL is the same.
//
//	cfg := warehouse.DefaultConfig()            // embedded, database "loopgate"
//	cfg.Backend, cfg.Addr = warehouse.BackendServer, "clickhouse:9000"
//	st, err := warehouse.Open(ctx, cfg, deps.Deps{Logger: logger, Registerer: prometheus.DefaultRegisterer})
//	if err != nil { ... }                       // creates the database, migrates
//	defer st.Close()
//	err = st.WriteOutcomes(ctx, "outcomes/3/1200-1299", outs) // nil: durable, exactly once
//	err = st.WritePolicy(ctx, policy, encoded) // the bytes the optimizer published
//	rows, err := st.Query(ctx, "SELECT orchestrator, countMerge(attempts) FROM loopgate.attempts_1m GROUP BY orchestrator")
//
// # Schema
//
// The DDL lives in schema/NNNN_name.sql, embedded in the binary, one
// migration per file, applied in order on Open and recorded in
// schema_migrations (version, name, applied_at). Every statement is
// idempotent, so an interrupted migration simply runs again.
//
//	requests      one row per Outcome (all fields but the attempts, plus
//	              attempt_count and ingested_at); MergeTree, daily partitions,
//	              ORDER BY (start_time, id)
//	attempts      one row per attempt, with the request fields that define its
//	              demand class (capability, model, client_region, gateway_id,
//	              policy_version) and the score components flattened
//	              (score_share, score_latency_ms, ...); ORDER BY (start_time,
//	              request_id, attempt). What the optimizer learns from.
//	attempts_1m   per minute × orchestrator × capability × model × client
//	              region: AggregatingMergeTree of count/sum states (attempts,
//	              successes, failures by result, retries, hedges, billed
//	              attempts and cost, latency sum) and a quantilesTDigest state
//	              of latency (latency_tdigest; read it with
//	              quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)), fed by the
//	              materialized view attempts_1m_mv from attempts
//	attempts_10s  the optimizer's rollup: the same counts per 10 seconds, with
//	              the latency of successful attempts only
//	              (ok_latency_tdigest); kept FineRetentionDays. Read through
//	              AttemptStats.
//	policies      every published Policy: version, created time, lambda,
//	              window, producer, counts, and the policy as JSON
//	audit         time, actor, action, detail
//
// Times are kept twice on purpose: the wire's Unix milliseconds (start_ms,
// created_ms, time_ms, exact on every profile) and a derived time column
// (start_time, ...) that partitions, orders and expires the table. Tables
// are always named with their database in SQL; neither backend has a
// current database.
//
// # Profiles
//
// Open reads SELECT version() and picks a Profile (Config.Profile can force
// one). The SQL files are templates and the profile is the only thing that
// changes them:
//
//	                 modern (≥ 22.3, chDB 26)          legacy (18.16, Debian's server)
//	time column      DateTime64(3, 'UTC')              DateTime('UTC'); ms in the *_ms column
//	repeated text    LowCardinality(String)            String
//	codecs           Delta, ZSTD                       none
//	retention        TTL ... + INTERVAL n DAY,         none
//	                 ttl_only_drop_parts = 1
//	minute bucket    toStartOfInterval(t, 1 MINUTE)    toStartOfMinute(t)
//	insert dedup     non_replicated_deduplication_     none (18.16 deduplicates only
//	                 window = 1000 + per-insert token  replicated tables)
//
// The generated DDL of both profiles is checked against
// testdata/schema_{modern,legacy}.sql (go test -run Golden -update
// rewrites them). The legacy DDL also runs on modern engines, and the tests
// run it on chDB as well.
//
// # The write contract
//
// WriteOutcomes returns nil only when every row is stored, and writing
// outcomes that are already stored — the same batch again, an overlapping
// batch, the rest of a batch that failed half way, under any token — adds
// no rows: count() = uniqExact(id) in requests, and each (request_id,
// attempt) is once in attempts. That is what lets ingest commit Kafka
// offsets after the write and simply retry after a crash. It holds on both
// profiles because it does not rest on ClickHouse's insert deduplication:
// the writer removes repeated ids from the batch, asks the warehouse which
// of the batch's keys each table already holds (bounded by the batch's time
// range, so the primary key prunes; the ids travel as native external data
// or, in chDB, a temporary RowBinary file, rather than as an IN list of
// literals, which costs ~5 µs per id to parse and runs into 18.16's 256 KiB
// max_query_size), and inserts only the missing rows, requests first. The
// rollup is fed only by rows actually inserted, so it is not double counted
// either. On the modern profile every insert also carries an
// insert_deduplication_token derived from the caller's token, the table and
// the inserted keys, with deduplicate_blocks_in_dependent_materialized_views,
// so an insert retried after a lost acknowledgement is dropped by
// ClickHouse too, rollup included.
//
// Limits, honestly: the check and the insert are not atomic, so two writers
// inserting the same ids at the same moment can both succeed (one consumer
// per Kafka partition avoids that). Rows older than the raw retention have
// expired from requests and attempts, so replaying them stores them again
// (they expire again at once) and adds them to attempts_1m a second time.
// "Stored" means acknowledged by ClickHouse, which does not fsync each
// insert by default. WriteAudit has no identity to check, so a retried
// entry may be stored twice. Retention days are written into the DDL when a
// table is created; changing them later needs ALTER TABLE ... MODIFY TTL.
//
// # The cluster profile
//
// With Config.Cluster (warehouse.cluster: NAME, the servers'
// remote_servers name) the same migrations render for a cluster: each
// table becomes <table>_local, the Replicated variant of its engine
// (ZooKeeper path /clickhouse/tables/{shard}/<db>/<table>, replica
// {replica}, from each server's macros), with a Distributed table named as
// the single-node table over it, so every query, the stats, the analysts'
// SQL and the dashboards read the cluster as they read one node. Every
// statement runs ON CLUSTER, from whichever process opens the store first;
// the migrations are recorded in schema_migrations, itself replicated, so
// they run once per cluster and every later Open, on any node, skips them.
// The materialized views run on each node from attempts_local into the
// local rollups: a replica's rollup is fed by the inserts into that replica
// only, and replication copies parts without firing views, so a row is
// rolled up once. The sharding key keeps an outcome together:
// cityHash64(id) for requests and cityHash64(request_id) for attempts put
// a request and its attempts on one shard (the livepeer tables shard by
// event_id, policies and schema_migrations by version). The golden files
// testdata/schema_cluster_{modern,legacy}.sql show the DDL.
//
// Guarantees on a cluster, and why they hold. The write contract above
// holds across replicas and shards:
//
//   - every insert goes through the Distributed table with
//     insert_distributed_sync = 1, so it returns only once each shard's rows
//     are in a replica of that shard (never queued on the local disk of the
//     node written to, which "nil only when stored" cannot allow);
//   - the existence check reads <table>_local on every replica of every
//     shard (Open connects to each, at the addresses system.clusters names)
//     and takes the union: a row one replica holds and another has not
//     fetched yet — an insert acknowledged just before its replica died, or
//     one that failed after it was written — is seen wherever the writer
//     runs now, so a consumer that moved to another node (a rebalance, a
//     failover) skips what the first one stored. Reading one replica per
//     shard, as the Distributed table does, would not: TestClusterExactlyOnce
//     stores rows twice that way;
//   - so a replica that does not answer fails the check, and the write:
//     ingest retries without committing its offsets, and goes on once the
//     replica is back. Writes wait while a replica is down (routers and
//     Kafka are not affected; ingest catches up);
//   - the rollups' materialized views run on each node from attempts_local,
//     and replication copies parts without firing views, so each row is
//     rolled up once, on the replica it was inserted into;
//   - replicated deduplication (insert_deduplication_token on the modern
//     profile with replicated_deduplication_window = 1000; block checksums,
//     window 100, on 18.16) still drops a retried identical block, the
//     second line of defence it is on one node.
//
// What it costs and what it does not cover: an acknowledged insert is on
// one replica until the others fetch it (moments later); losing that
// replica's disk in between loses those rows, unless Config.InsertQuorum
// asks for more copies before the acknowledgement. A quorum has its own
// price on ClickHouse: quorum inserts into a table are sequential across
// the cluster (concurrent writers are refused with "quorum for previous
// write has not been satisfied yet" and retry), and a materialized view's
// insert into a rollup can be refused after its source rows landed, which
// leaves the rollup short (with a quorum of 2 and three ingest processes,
// TestCluster's raw counts were exact and its rollup check failed). Stats and analyst queries read
// one replica per shard, so they may lag an insert by the replication
// delay. WriteAudit, as on one node, may store a retried entry twice.
//
// # Backends
//
// The server backend uses the native protocol with LZ4 and sends every
// insert as a PrepareBatch/Append/Send batch with an explicit column list:
// with clickhouse-go v2.51, 18.16 refuses the HTTP protocol, fails a batch
// without a column list and hangs on Exec of INSERT ... VALUES.
//
// The embedded backend loads libchdb.so (the npm package
// @chdb/lib-linux-x64-gnu ships it) when it is opened, from Config.LibPath,
// else $LOOPGATE_CHDB_LIB, else $CHDB_LIB_PATH, and returns ErrNoChdb if it
// is missing. It binds the chdb_connect/chdb_query C API with purego itself
// rather than importing github.com/chdb-io/chdb-go, whose init() dlopens the
// library at program start and panics without it — which would crash every
// loopgate command on a machine that uses a ClickHouse server. libchdb runs
// one engine per process: one embedded Store may be open at a time
// (another Open returns ErrEngineInUse until it is closed), statements are
// serialised, and the data directory is locked against other processes
// (ErrDataDirInUse); several loopgate processes need the server backend.
// chDB cannot cancel a statement: when a context ends the call returns at
// once and the statement finishes in the background. Rows are inserted by
// writing RowBinary to a temporary file and INSERT ... SELECT FROM file():
// for batches of 10,000 outcomes (26,000 rows) that measured about 2.1×
// faster than sending TabSeparated text inline in the statement
// (BenchmarkEmbeddedInsertMethod: ~100 ms against ~210 ms per batch).
//
// # Metrics
//
//	loopgate_warehouse_rows_written_total{table}                 rows inserted
//	loopgate_warehouse_duplicate_rows_skipped_total{table,where} rows not inserted: already stored
//	                                                             (where="warehouse") or repeated in
//	                                                             the batch (where="batch")
//	loopgate_warehouse_insert_duration_seconds{table}            one insert, histogram
//	loopgate_warehouse_check_duration_seconds{table}             the existence check of one write,
//	                                                             histogram
//	loopgate_warehouse_errors_total{op}                          failures: check, insert, query
package warehouse
