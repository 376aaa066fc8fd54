#!/bin/sh
# Listen fidelity: Google's own Node client (@google-cloud/firestore, whose
# onSnapshot speaks Listen over gRPC), pinned in tests/fidelity_listen/
# package-lock.json, against tests/fsserver.py: the initial snapshot, adds,
# updates and deletes, a listener on an empty collection, reconnect and
# resume (billed reads checked in the server's log), the server's fault
# switches.  t_fsserver_listen_emu.sh runs the same checks against Google's
# Firestore emulator (MODE=emulator), so the two can be seen to agree.
# Needs node >= 18 and npm (the npm registry) the first time; skips (77)
# without them.
. "$(dirname "$0")/lib.sh"

MODE=${MODE:-fsserver}
FID=$SRCDIR/tests/fidelity_listen
command -v node >/dev/null || skip "node not installed"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || skip "node does not run"
[ "$major" -ge 18 ] || skip "node $major is older than 18"

if [ "$MODE" = emulator ]; then
	emu=$(command -v cloud_firestore_emulator 2>/dev/null ||
		dpkg -L google-cloud-cli-firestore-emulator 2>/dev/null | grep '/cloud_firestore_emulator$' | head -n 1)
	[ -n "$emu" ] && [ -x "$emu" ] || skip "Google's Firestore emulator is not installed (google-cloud-cli-firestore-emulator)"
	command -v java >/dev/null || skip "java not installed (the emulator needs it)"
fi
command -v python3 >/dev/null || skip "python3 not installed"

# Install the pinned client once; reinstall when the lock file names another version.
want=$(node -p 'require(process.argv[1]).packages["node_modules/@google-cloud/firestore"].version' "$FID/package-lock.json")
have=$(node -p 'require(process.argv[1]).version' "$FID/node_modules/@google-cloud/firestore/package.json" 2>/dev/null || echo none)
if [ "$want" != "$have" ]; then
	command -v npm >/dev/null || skip "npm not installed (needed once to fetch @google-cloud/firestore@$want)"
	( cd "$FID" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts ) >"$T/npm.log" 2>&1 ||
		{ tail -n 5 "$T/npm.log" >&2; skip "npm ci failed (is the npm registry reachable?)"; }
fi

if [ "$MODE" = emulator ]; then
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$emu" start --host=127.0.0.1 --port="$port" >"$T/server.log" 2>&1 &
	SRV=$!
	at_exit "killtree $SRV; kill $SRV 2>/dev/null"
	ready() {
		python3 -c 'import sys, urllib.request
sys.exit(urllib.request.urlopen(sys.argv[1], timeout=1).read().strip() != b"Ok")' "http://127.0.0.1:$port/" 2>/dev/null
	}
	wait_for 60 ready || { tail -n 20 "$T/server.log" >&2; fail "the emulator did not start on $port"; }
else
	python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port" 2>"$T/server.log" &
	SRV=$!
	at_exit "kill $SRV 2>/dev/null"
	wait_for 10 test -s "$T/port" || { cat "$T/server.log" >&2; fail "fsserver did not start"; }
	port=$(cat "$T/port")
fi

# The SDK must not look for a GCE metadata server off this machine.
METADATA_SERVER_DETECTION=none GCE_METADATA_HOST=127.0.0.1:9 GCE_METADATA_IP=127.0.0.1:9 \
	timeout 180 node "$FID/listen.mjs" 127.0.0.1 "$port" "$MODE" 2>"$T/node.err" ||
	{ cat "$T/node.err" >&2; tail -n 20 "$T/server.log" >&2; fail "listen.mjs ($MODE) failed"; }
echo "t_fsserver_listen ($MODE): ok"
