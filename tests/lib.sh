# Sourced by the tests/t_*.sh scripts.  Each test runs in its own scratch
# directory with its own HOME and XDG dirs, so it never sees the user's
# keys, config or rendezvous.
set -u
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
P2PCAT=${P2PCAT:-$SRCDIR/p2pcat}
T=$(mktemp -d "${TMPDIR:-/tmp}/p2pcat-t.XXXXXX")
export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_CACHE_HOME=$T/home/.cache
export XDG_RUNTIME_DIR=$T/run
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
unset P2PCAT_SIGNAL P2PCAT_NAME P2PCAT_SECRET P2PCAT_API_KEY FIRESTORE_EMULATOR_HOST FIREBASE_AUTH_EMULATOR_HOST
CLEANUP=
# killtree PID: kill PID's descendants, deepest first.  The children are
# kept in this call's own positional parameters: a global loop variable
# would be overwritten by the recursion, and a child with grandchildren
# be left running.
killtree() {
	set -- $(pgrep -P "$1")
	for _c; do
		killtree "$_c"
	done
	[ $# -eq 0 ] || kill -9 "$@" 2>/dev/null
}
cleanup() {
	eval "$CLEANUP"
	# What we started and did not reap (a failed test), grandchildren too.
	killtree $$
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# at_exit CMD: run CMD (a string) when the test ends, before the scratch dir goes.
at_exit() { CLEANUP="$1; $CLEANUP"; }

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*" >&2; exit 77; }
need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# wait_for SECS CMD...: poll CMD every 50 ms until it succeeds; false after SECS.
wait_for() {
	_n=$(( $1 * 20 )); shift
	while [ $_n -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		_n=$((_n - 1))
	done
	return 1
}

# exited PID: PID is gone or a zombie (our child that has not been reaped).
exited() {
	[ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# wait_exit PID SECS: wait up to SECS for PID (our child) to exit; sets RC.
wait_exit() {
	wait_for "$2" exited "$1" || { kill -9 "$1" 2>/dev/null; RC=124; return 1; }
	wait "$1"; RC=$?
	return 0
}

# check_eq WHAT GOT WANT
check_eq() { [ "$2" = "$3" ] || fail "$1: got \`$2', want \`$3'"; }

# randfile PATH MIB: MIB mebibytes of random bytes.
randfile() { head -c $(( $2 * 1048576 )) /dev/urandom > "$1"; }

# size_over FILE BYTES: FILE exists and holds more than BYTES bytes.
size_over() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt "$2" ]; }

# errhas NAME TEXT: $T/NAME.err holds TEXT (a grep pattern); else it is
# shown and the test fails.
errhas() { grep -q -- "$2" "$T/$1.err" || { cat "$T/$1.err" >&2; fail "$1: no \`$2' in its stderr"; }; }

# reads_of FILE / writes_of FILE: the billed rendezvous reads (writes) of
# the last count in FILE, p2pcat -v's `rendezvous: N reads, M writes' or
# tests/unit_firestore's `reads N writes M'; empty when it has none.
reads_of() {
	sed -n 's/.*rendezvous: \([0-9]*\) reads*,.*/\1/p; s/^reads \([0-9]*\) writes.*/\1/p' "$1" | tail -1
}
writes_of() {
	sed -n 's/.*rendezvous: [0-9]* reads*, \([0-9]*\) writes*.*/\1/p; s/^reads [0-9]* writes \([0-9]*\).*/\1/p' "$1" | tail -1
}

# fs_serve ARGS...: a fresh tests/fsserver.py for project p2pcat-test, with
# ARGS, its stderr appended to $T/server.log; stops the one it started
# before.  Sets SPID, FS_PORT and FIRESTORE_EMULATOR_HOST (exported).
fs_serve() {
	if [ -n "${SPID:-}" ]; then
		kill "$SPID"; wait "$SPID"
	else
		at_exit '[ -n "${SPID:-}" ] && kill $SPID 2>/dev/null'
	fi
	rm -f "$T/port"
	python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port" \
	    --project p2pcat-test "$@" 2>>"$T/server.log" &
	SPID=$!
	wait_for 10 test -s "$T/port" || fail "fsserver.py did not start"
	FS_PORT=$(cat "$T/port")
	FIRESTORE_EMULATOR_HOST=127.0.0.1:$FS_PORT
	export FS_PORT FIRESTORE_EMULATOR_HOST
}

# emu_serve [ARGS...]: Google's Firestore emulator (package
# google-cloud-cli-firestore-emulator, Java) with ARGS (e.g. --rules FILE),
# on a free loopback port, its output in $T/emu.log; skips the test (77)
# where it is not installed.  Slow to start (seconds): once per script.
# Sets EPID, EMU_PORT and FIRESTORE_EMULATOR_HOST (exported).
emu_serve() {
	_emu=$(command -v cloud_firestore_emulator 2>/dev/null ||
	    dpkg -L google-cloud-cli-firestore-emulator 2>/dev/null |
	    grep '/cloud_firestore_emulator$' | head -1)
	[ -n "$_emu" ] && [ -x "$_emu" ] ||
	    skip "no Firestore emulator (google-cloud-cli-firestore-emulator)"
	command -v java >/dev/null || skip "no java for the Firestore emulator"
	EMU_PORT=$(python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$_emu" start --host=127.0.0.1 --port="$EMU_PORT" "$@" >"$T/emu.log" 2>&1 &
	EPID=$!
	at_exit 'killtree $EPID; kill $EPID 2>/dev/null'
	wait_for 60 emu_up || fail "the Firestore emulator did not start: $(tail -5 "$T/emu.log")"
	FIRESTORE_EMULATOR_HOST=127.0.0.1:$EMU_PORT
	export EMU_PORT FIRESTORE_EMULATOR_HOST
}
emu_up() {
	python3 -c 'import sys, urllib.request
sys.exit(urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=1).read() != b"Ok\n")' "$EMU_PORT" 2>/dev/null
}
# emu_reset PROJECT: the emulator forgets PROJECT's documents.
emu_reset() {
	python3 -c 'import sys, urllib.request
r = urllib.request.Request("http://127.0.0.1:%s/emulator/v1/projects/%s/databases/(default)/documents" % tuple(sys.argv[1:]), method="DELETE")
urllib.request.urlopen(r, timeout=10).read()' "$EMU_PORT" "$1"
}
