#!/usr/bin/env bash
# env.sh — write deploy/compose/.env with fresh random secrets for compose.yaml (once; an
# existing .env is kept). The file is git-ignored and mode 0600:
#   LOOPGATE_ADMIN_TOKEN         the admin port's admin token (id "ops"): λ, the console, queries
#   LOOPGATE_METRICS_TOKEN       a read token (id "prometheus") Prometheus scrapes /metrics with
#   CLICKHOUSE_PASSWORD          ClickHouse user loopgate (the components)
#   GRAFANA_CLICKHOUSE_PASSWORD  ClickHouse user grafana (readonly = 1)
#   GRAFANA_ADMIN_PASSWORD       Grafana's admin user
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ -e .env ]]; then
	echo "env.sh: .env exists; delete it to make new secrets" >&2
	exit 0
fi
secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
umask 077
cat >.env <<EOT
LOOPGATE_ADMIN_TOKEN=$(secret)
LOOPGATE_METRICS_TOKEN=$(secret)
CLICKHOUSE_PASSWORD=$(secret)
GRAFANA_CLICKHOUSE_PASSWORD=$(secret)
GRAFANA_ADMIN_PASSWORD=$(secret)
EOT
echo "env.sh: wrote $(pwd)/.env; the admin token is LOOPGATE_ADMIN_TOKEN in it" >&2
