#!/usr/bin/env bash
# soak.sh runs the whole loop (`loopgate dev`: router, ingest, optimizer,
# embedded Kafka and ClickHouse, the simulated fleet and its load) at steady
# load for SOAK_FOR (default 10m), samples the process's resident memory
# and goroutine count every SOAK_EVERY (default 30s) from its /metrics, and
# rewrites the part of docs/BENCHMARKS.md between <!-- soak:begin --> and
# <!-- soak:end --> with the series (appended at the end if missing).
# `make soak` runs it. A leak shows as a series that keeps growing.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FOR=${SOAK_FOR:-10m}
EVERY=${SOAK_EVERY:-30}
DOC=${DOC:-docs/BENCHMARKS.md}
SCENARIO=${SOAK_SCENARIO:-steady-heterogeneous}
begin='<!-- soak:begin -->'
end='<!-- soak:end -->'

"$GO" build -o bin/loopgate ./cmd/loopgate
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
admin="127.0.0.1:$(free_port)"
router="127.0.0.1:$(free_port)"
cat >"$work/loopgate.yaml" <<YAML
data_dir: $work/var
router_addr: $router
admin:
  addr: $admin
kafka:
  embedded_port: 0
YAML
bin/loopgate dev --config "$work/loopgate.yaml" --scenario "$SCENARIO" --for "$FOR" >"$work/dev.out" 2>"$work/dev.err" &
pid=$!
token_file="$work/var/admin-token"
for _ in $(seq 1 100); do [ -s "$token_file" ] && break; sleep 0.2; done
token=$(cat "$token_file" 2>/dev/null || true)
[ -n "$token" ] || { echo "soak: loopgate dev wrote no admin token; its log:" >&2; tail -20 "$work/dev.err" >&2; exit 1; }

metric() { # metric NAME: its value from /metrics, empty if the port is down
	{ curl -fsS -H "Authorization: Bearer $token" "http://$admin/metrics" 2>/dev/null || true; } |
		awk -v n="$1" '$1 == n { print $2; exit }'
}
rows=()
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
	rss=$(metric process_resident_memory_bytes)
	gor=$(metric go_goroutines)
	if [ -n "$rss" ] && [ -n "$gor" ]; then
		t=$(( $(date +%s) - start ))
		rows+=("| ${t} | $(awk -v b="$rss" 'BEGIN { printf "%.1f", b / 1048576 }') | ${gor} |")
		echo "soak: t=${t}s rss=${rss} goroutines=${gor}" >&2
	fi
	sleep "$EVERY"
done
wait "$pid" || true
summary=$(grep -E 'load generator|every answered|warehouse:' "$work/dev.out" | sed 's/^ *//')

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)
tmp=$(mktemp)
{
	echo "$begin"
	echo
	echo "## Soak: memory and goroutines at steady load"
	echo
	echo "\`make soak\` (scripts/soak.sh): \`loopgate dev\` on \`$SCENARIO\` for $FOR, sampled every ${EVERY} s"
	echo "from its own /metrics (\`process_resident_memory_bytes\`, \`go_goroutines\`); one process holds the"
	echo "router, ingest, optimizer, the embedded broker and ClickHouse, the fleet and the load. Date: $(date -u +%Y-%m-%d);"
	echo "machine: $(nproc) vCPU ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)."
	echo
	echo "| t (s) | RSS (MiB) | goroutines |"
	echo "|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "At the end:"
	echo
	echo '```'
	echo "$summary"
	echo '```'
	echo
	echo "$end"
} >"$tmp"
if grep -qF "$begin" "$DOC"; then
	awk -v b="$begin" -v e="$end" -v f="$tmp" '
		$0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
		$0 == e { skip = 0; next }
		!skip { print }' "$DOC" >"$DOC.new" && mv "$DOC.new" "$DOC"
else
	{ echo; cat "$tmp"; } >>"$DOC"
fi
rm -f "$tmp"
echo "soak: wrote the series to $DOC" >&2
