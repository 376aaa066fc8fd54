#!/bin/sh
# HTTP/2 (RFC 9113), HPACK (RFC 7541), gRPC and Listen in tests/fsserver.py,
# frame by frame: tests/t_fsserver_h2.py.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 not installed"
python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port" 2>"$T/server.log" &
SRV=$!
at_exit "kill $SRV 2>/dev/null"
wait_for 10 test -s "$T/port" || { cat "$T/server.log" >&2; fail "fsserver did not start"; }
port=$(cat "$T/port")

timeout 300 python3 "$SRCDIR/tests/t_fsserver_h2.py" 127.0.0.1 "$port" ||
	{ tail -n 20 "$T/server.log" >&2; fail "t_fsserver_h2.py failed"; }

kill -TERM $SRV
wait_exit $SRV 10 || fail "fsserver ignored SIGTERM"
check_eq "fsserver exit status after SIGTERM" "$RC" 0
