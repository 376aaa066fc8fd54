#!/bin/sh
# Raw REST behaviour of tests/fsserver.py (status codes and strings, value
# encoding, preconditions, runQuery/commit shapes, atomicity, limits, IDs,
# the auth emulator and the test-only switches): tests/t_fsserver_api.py.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port" 2>"$T/server.log" &
SRV=$!
at_exit "kill $SRV 2>/dev/null"
wait_for 10 test -s "$T/port" || { cat "$T/server.log" >&2; fail "fsserver did not start"; }
port=$(cat "$T/port")

timeout 300 python3 "$SRCDIR/tests/t_fsserver_api.py" "$SRV" 127.0.0.1 "$port" ||
	{ tail -n 20 "$T/server.log" >&2; fail "t_fsserver_api.py failed"; }

kill -TERM $SRV
wait_exit $SRV 10 || fail "fsserver ignored SIGTERM"
check_eq "fsserver exit status after SIGTERM" "$RC" 0
