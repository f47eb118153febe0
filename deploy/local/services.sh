#!/usr/bin/env bash
# services.sh — everything the test suite needs outside Go, in one command.
#
#   services.sh up      install (cached) and start Kafka and ClickHouse, fetch libchdb.so,
#                       install Prometheus/promtool, Chromium and ZooKeeper (the tests start
#                       their own);
#                       then prints the same export lines as `env`
#   services.sh down    stop Kafka and ClickHouse (data stays in $LOOPGATE_VAR)
#   services.sh status  exit 0 when both servers run, 3 otherwise
#   services.sh env     print shell export lines for the tests:
#                         eval "$(deploy/local/services.sh env)"
#
# Ports and paths follow the same variables as kafka.sh, clickhouse.sh and chdb.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_PORT="${KAFKA_PORT:-19092}"
CLICKHOUSE_PORT="${CLICKHOUSE_PORT:-19000}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-18123}"

do_env() {
	local lib
	lib="$("$SCRIPT_DIR/chdb.sh" path)"
	printf 'export LOOPGATE_TEST_KAFKA=%q\n' "127.0.0.1:$KAFKA_PORT"
	printf 'export LOOPGATE_TEST_CLICKHOUSE=%q\n' "127.0.0.1:$CLICKHOUSE_PORT"
	printf 'export LOOPGATE_TEST_CLICKHOUSE_HTTP=%q\n' "127.0.0.1:$CLICKHOUSE_HTTP_PORT"
	printf 'export LOOPGATE_CHDB_LIB=%q\n' "$lib"
	printf 'export CHDB_LIB_PATH=%q\n' "$lib"
	# Where the services' pids are (benchmarks read them to count each process's CPU).
	printf 'export LOOPGATE_TEST_KAFKA_PIDFILE=%q\n' "$LOOPGATE_VAR/kafka/kafka.pid"
	printf 'export LOOPGATE_TEST_CLICKHOUSE_PIDFILE=%q\n' "$LOOPGATE_VAR/clickhouse/clickhouse.pid"
}

do_up() {
	local start=$SECONDS
	"$SCRIPT_DIR/kafka.sh" install
	"$SCRIPT_DIR/clickhouse.sh" install
	"$SCRIPT_DIR/chdb.sh" install
	"$SCRIPT_DIR/prometheus.sh" install
	"$SCRIPT_DIR/chromium.sh" install
	"$SCRIPT_DIR/zookeeper.sh" install # the cluster tests start their own (cluster.sh)
	"$SCRIPT_DIR/kafka.sh" start >/dev/null
	"$SCRIPT_DIR/clickhouse.sh" start >/dev/null
	log "up in $((SECONDS - start)) s: kafka 127.0.0.1:$KAFKA_PORT, clickhouse 127.0.0.1:$CLICKHOUSE_PORT (http $CLICKHOUSE_HTTP_PORT)"
	do_env
}

do_down() {
	local rc=0
	"$SCRIPT_DIR/kafka.sh" stop || rc=1
	"$SCRIPT_DIR/clickhouse.sh" stop || rc=1
	return "$rc"
}

do_status() {
	local rc=0
	"$SCRIPT_DIR/kafka.sh" status >/dev/null || rc=3
	"$SCRIPT_DIR/clickhouse.sh" status >/dev/null || rc=3
	return "$rc"
}

case "${1:-}" in
up) do_up ;;
down) do_down ;;
status) do_status ;;
env) do_env ;;
*)
	echo "usage: $PROG {up|down|status|env}" >&2
	exit 2
	;;
esac
