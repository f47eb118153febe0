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

do_install() { apt_package chromium chromium; }

case "${1:-}" in
install) with_lock "$LOOPGATE_CACHE/chromium.lock" do_install ;;
path) command -v chromium ;;
*)
	echo "usage: $PROG {install|path}" >&2
	exit 2
	;;
esac
