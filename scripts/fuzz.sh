#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module, each for FUZZTIME (default
# 30s). Targets are discovered, not listed: every `func FuzzXxx(f *testing.F)`
# in a _test.go file under the module, found with `go test -list`. `make fuzz`
# runs it; a target that finds a failure stops the run with its input saved
# under the package's testdata/fuzz, as go test does.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

n=0
for pkg in $("$GO" list ./...); do
	# -list prints the names of the tests and fuzz targets matching the pattern, then "ok".
	targets=$("$GO" test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for target in $targets; do
		n=$((n + 1))
		echo "fuzz: $pkg $target for $FUZZTIME"
		"$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
if [ "$n" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $n targets ran for $FUZZTIME each"
