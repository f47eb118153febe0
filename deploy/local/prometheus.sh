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

installed() {
	command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
}

do_install() {
	installed && return 0
	[[ "$(id -u)" == 0 ]] || die "prometheus is not installed and installing it needs root: apt-get install prometheus"
	need apt-get
	log "installing prometheus (and promtool) with apt-get"
	if ! apt_install >&2; then
		log "install failed; running apt-get update and retrying"
		apt-get update -q >&2 || die "apt-get update failed"
		apt_install >&2 || die "apt-get could not install prometheus"
	fi
	installed || die "prometheus/promtool still not on PATH after apt-get install"
}

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
