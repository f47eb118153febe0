# common.sh — helpers sourced by the deploy/local/*.sh scripts. Not executable on its own.
#
# Sets, for the sourcing script:
#   PROG            script name, used as the message prefix
#   REPO_ROOT       root of this clone
#   LOOPGATE_CACHE  downloads and installs shared by every clone (default $HOME/.cache/loopgate)
#   LOOPGATE_VAR    runtime data of this clone: logs, data dirs, pid files (default $REPO_ROOT/.var)

PROG="$(basename "$0")"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
LOOPGATE_CACHE="${LOOPGATE_CACHE:-$HOME/.cache/loopgate}"
LOOPGATE_VAR="${LOOPGATE_VAR:-$REPO_ROOT/.var}"

log() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: error: $*" >&2; exit 1; }

need() {
	local cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found on PATH"
	done
}

# with_lock FILE CMD... runs CMD while holding an exclusive lock on FILE, so two clones or two
# concurrent `make` runs don't install into the shared cache at the same time.
with_lock() {
	local lockfile="$1"
	shift
	mkdir -p "$(dirname "$lockfile")"
	(
		flock -w 600 9 || die "timed out waiting for lock $lockfile"
		"$@"
	) 9>"$lockfile"
}

# port_open HOST PORT succeeds when something accepts TCP connections on HOST:PORT.
port_open() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# proc_alive PID succeeds while PID exists and is not a zombie (PID 1 in a container may not reap).
proc_alive() {
	local state
	state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
	[[ -n "$state" && "$state" != Z ]]
}

# pid_alive PIDFILE PATTERN succeeds when PIDFILE names a live process whose command line
# contains PATTERN (guards against a stale pid file whose pid was reused).
pid_alive() {
	local pidfile="$1" pattern="$2" pid
	[[ -s "$pidfile" ]] || return 1
	pid="$(cat "$pidfile")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	proc_alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# stop_pid PIDFILE PATTERN NAME sends SIGTERM, waits up to 20 s, then SIGKILL.
stop_pid() {
	local pidfile="$1" pattern="$2" name="$3" pid i
	if ! pid_alive "$pidfile" "$pattern"; then
		rm -f "$pidfile"
		log "$name is not running"
		return 0
	fi
	pid="$(cat "$pidfile")"
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		proc_alive "$pid" || break
		sleep 0.1
	done
	if proc_alive "$pid"; then
		log "$name did not exit after 20 s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			proc_alive "$pid" || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
	log "$name stopped"
}

# report_status PID_FILE PROC_MARK ADDR: print the address and return 0 when
# the service runs, else return 3 (the `status` of every service script).
report_status() {
	if pid_alive "$1" "$2"; then
		log "running (pid $(cat "$1"))"
		echo "$3"
		return 0
	fi
	log "not running"
	return 3
}

# apt_package PACKAGE CMD... installs Debian's PACKAGE with apt-get unless every CMD is already
# on PATH (needs root; retries once after apt-get update, for a machine whose package lists are
# stale or missing). The caller holds a lock (with_lock) so two clones do not run apt at once.
apt_package() {
	local pkg="$1" cmd
	shift
	_apt_have() {
		for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || return 1; done
	}
	_apt_have "$@" && return 0
	[[ "$(id -u)" == 0 ]] || die "$pkg is not installed and installing it needs root: apt-get install $pkg"
	need apt-get
	log "installing $pkg with apt-get (once per machine)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >&2; then
		log "install failed; running apt-get update and retrying"
		apt-get update -q >&2 || die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >&2 ||
			die "apt-get could not install $pkg"
	fi
	_apt_have "$@" || die "$* still not on PATH after apt-get install $pkg"
}
