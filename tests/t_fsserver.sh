#!/bin/sh
# Fidelity of tests/fsserver.py checked with Google's own web client:
# tests/fidelity/fidelity.mjs drives it with firebase/firestore/lite (the REST
# transport) pinned in tests/fidelity/package-lock.json.  Needs node >= 18 and
# npm (the npm registry) the first time; skips (77) without them.
. "$(dirname "$0")/lib.sh"

FID=$SRCDIR/tests/fidelity
command -v python3 >/dev/null || skip "python3 not installed"
command -v node >/dev/null || skip "node not installed"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || skip "node does not run"
[ "$major" -ge 18 ] || skip "node $major is older than 18"

# Install the pinned client once; reinstall when the lock file names another version.
want=$(node -p 'require(process.argv[1]).packages["node_modules/firebase"].version' "$FID/package-lock.json")
have=$(node -p 'require(process.argv[1]).version' "$FID/node_modules/firebase/package.json" 2>/dev/null || echo none)
if [ "$want" != "$have" ]; then
	command -v npm >/dev/null || skip "npm not installed (needed once to fetch firebase@$want)"
	( cd "$FID" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts ) >"$T/npm.log" 2>&1 ||
		{ tail -n 5 "$T/npm.log" >&2; skip "npm ci failed (is the npm registry reachable?)"; }
fi

python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port" 2>"$T/server.log" &
SRV=$!
at_exit "kill $SRV 2>/dev/null"
wait_for 10 test -s "$T/port" || { cat "$T/server.log" >&2; fail "fsserver did not start"; }
port=$(cat "$T/port")

timeout 120 node "$FID/fidelity.mjs" 127.0.0.1 "$port" || { tail -n 20 "$T/server.log" >&2; fail "fidelity.mjs failed"; }

# The server stops cleanly on SIGTERM.
kill -TERM $SRV
wait_exit $SRV 10 || fail "fsserver ignored SIGTERM"
check_eq "fsserver exit status after SIGTERM" "$RC" 0
echo "t_fsserver: ok"
