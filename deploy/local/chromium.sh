#!/usr/bin/env bash
# chromium.sh — a headless Chromium for the console's browser test (console/browser_test.go,
# driven by chromedp), from Debian 12's chromium package. The test starts its own browser,
# headless, on 127.0.0.1, with --no-sandbox when it runs as root; this script only installs.
#
#   chromium.sh install   apt-get install chromium if it is missing (root)
#   chromium.sh path      print the chromium path
#
# Installed once per machine, like prometheus.sh: later runs find the binary on PATH and return.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

installed() {
	command -v chromium >/dev/null 2>&1
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
}

do_install() {
	installed && return 0
	[[ "$(id -u)" == 0 ]] || die "chromium is not installed and installing it needs root: apt-get install chromium"
	need apt-get
	log "installing chromium with apt-get (once per machine)"
	if ! apt_install >&2; then
		log "install failed; running apt-get update and retrying"
		apt-get update -q >&2 || die "apt-get update failed"
		apt_install >&2 || die "apt-get could not install chromium"
	fi
	installed || die "chromium still not on PATH after apt-get install"
}

case "${1:-}" in
install) with_lock "$LOOPGATE_CACHE/chromium.lock" do_install ;;
path) command -v chromium ;;
*)
	echo "usage: $PROG {install|path}" >&2
	exit 2
	;;
esac
