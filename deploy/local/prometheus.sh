#!/usr/bin/env bash
# prometheus.sh — Prometheus and promtool for the test suite, from Debian 12's prometheus
# package (2.42). The tests start their own Prometheus processes on free ports with a
# throw-away config and data directory; this script only installs.
#
#   prometheus.sh install   apt-get install prometheus if prometheus or promtool is missing (root)
#   prometheus.sh path      print the prometheus and promtool paths
#
# The package's service is not started (no systemd here, and nothing should listen on 9090).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

do_install() { apt_package prometheus prometheus promtool; }

case "${1:-}" in
install) with_lock "$LOOPGATE_CACHE/prometheus.lock" do_install ;;
path)
	command -v prometheus
	command -v promtool
	;;
*)
	echo "usage: $PROG {install|path}" >&2
	exit 2
	;;
esac
