#!/usr/bin/env bash
# chdb.sh — libchdb.so (the embedded ClickHouse engine), fetched from the npm registry package
# @chdb/lib-linux-x64-gnu, since chdb's GitHub release downloads are not reachable here.
#
#   chdb.sh install   npm pack the package into $LOOPGATE_CACHE and extract libchdb.so (once)
#   chdb.sh path      install if needed, then print the absolute path of libchdb.so on stdout
#
# loopgate's embedded warehouse backend loads the library when the store opens, from
# warehouse.lib_path, else $LOOPGATE_CHDB_LIB, else $CHDB_LIB_PATH, else this script's cached
# copy (CHDB_LIB below; warehouse.ChdbVersion must equal CHDB_NPM_VERSION, a test checks it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CHDB_NPM_PACKAGE=@chdb/lib-linux-x64-gnu
CHDB_NPM_VERSION=26.7.3-stable.1
CHDB_HOME="$LOOPGATE_CACHE/chdb-$CHDB_NPM_VERSION"
CHDB_LIB="$CHDB_HOME/libchdb.so"

do_install_locked() {
	[[ -f "$CHDB_LIB" ]] && return 0
	[[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] || die "only linux x86_64 is handled (package $CHDB_NPM_PACKAGE)"
	need npm tar
	log "fetching $CHDB_NPM_PACKAGE@$CHDB_NPM_VERSION with npm pack"
	local tmp="$CHDB_HOME.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	local tgz
	if ! tgz="$(cd "$tmp" && npm pack --silent "$CHDB_NPM_PACKAGE@$CHDB_NPM_VERSION" 2>"$tmp/npm.log" | tail -n1)" || [[ ! -f "$tmp/$tgz" ]]; then
		cat "$tmp/npm.log" >&2
		rm -rf "$tmp"
		die "npm pack $CHDB_NPM_PACKAGE@$CHDB_NPM_VERSION failed (is the npm registry reachable?)"
	fi
	tar -xzf "$tmp/$tgz" -C "$tmp" package/libchdb.so ||
		{ rm -rf "$tmp"; die "$tgz has no package/libchdb.so"; }
	mkdir -p "$CHDB_HOME"
	mv "$tmp/package/libchdb.so" "$CHDB_LIB.tmp.$$"
	chmod 0755 "$CHDB_LIB.tmp.$$"
	mv "$CHDB_LIB.tmp.$$" "$CHDB_LIB"
	rm -rf "$tmp"
	log "installed $CHDB_LIB ($(du -h "$CHDB_LIB" | cut -f1))"
}

do_install() {
	with_lock "$LOOPGATE_CACHE/.chdb.lock" do_install_locked
}

case "${1:-}" in
install) do_install ;;
path)
	do_install
	echo "$CHDB_LIB"
	;;
*)
	echo "usage: $PROG {install|path}" >&2
	exit 2
	;;
esac
