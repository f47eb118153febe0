#!/usr/bin/env bash
# helm.sh — the Helm CLI that `make deploy-check` lints and renders the chart with, built from
# source with the Go toolchain (the Go module proxy is reachable where release downloads are
# not) and cached; helm is not a dependency of loopgate's go.mod.
#
#   helm.sh install   go install helm.sh/helm/v3/cmd/helm@HELM_VERSION into $LOOPGATE_CACHE (once)
#   helm.sh path      install if needed, then print the absolute path of the helm binary on stdout
#   helm.sh ARGS...   install if needed, then run helm ARGS...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../local/common.sh"

HELM_VERSION=v3.22.0
HELM_HOME="$LOOPGATE_CACHE/helm-$HELM_VERSION"
HELM_BIN="$HELM_HOME/helm"

do_install_locked() {
	[[ -x "$HELM_BIN" ]] && return 0
	need go
	log "building helm $HELM_VERSION with go install (a few minutes, once)"
	local tmp="$HELM_HOME.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	# Outside any module, so the project's go.mod and GOFLAGS do not apply.
	if ! (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"); then
		rm -rf "$tmp"
		die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed (is the Go module proxy reachable?)"
	fi
	mkdir -p "$HELM_HOME"
	mv "$tmp/helm" "$HELM_BIN.tmp.$$"
	mv "$HELM_BIN.tmp.$$" "$HELM_BIN"
	rm -rf "$tmp"
	log "installed $HELM_BIN"
}

do_install() {
	with_lock "$LOOPGATE_CACHE/.helm.lock" do_install_locked
}

case "${1:-}" in
install) do_install ;;
path)
	do_install
	echo "$HELM_BIN"
	;;
"" | -h | --help)
	echo "usage: $PROG {install|path|HELM-ARGS...}" >&2
	exit 2
	;;
*)
	do_install
	exec "$HELM_BIN" "$@"
	;;
esac
