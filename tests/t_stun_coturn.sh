#!/bin/sh
# t_stun_coturn: the STUN/TURN codec (through tests/tool_stunc) against a
# real coturn on 127.0.0.1: Binding, Allocate with long-term credentials
# (401, then signed), CreatePermission, Send and Data indications, a
# Send indication with a 1428-byte datagram (p2pcat's largest),
# ChannelBind and ChannelData both ways, Refresh to lifetime 0; then a
# wrong password must be refused with 401.
. "$(dirname "$0")/lib.sh"
command -v turnserver >/dev/null 2>&1 || skip "turnserver (coturn) not installed"
command -v ss >/dev/null 2>&1 || skip "ss (iproute2) not installed"
STUNC=$SRCDIR/tests/tool_stunc
[ -x "$STUNC" ] || fail "tests/tool_stunc is not built (make tests)"

udp_listening() { ss -Hlun "sport = :$1" | grep -q .; }
PORT=
for _ in 1 2 3 4 5 6 7 8 9 10; do
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
	udp_listening $p || { PORT=$p; break; }
done
[ -n "$PORT" ] || fail "no free UDP port on loopback"

# --pidfile, --db and --log-file keep coturn out of /var.
turnserver -n --lt-cred-mech --user=alice:s3cret --realm=p2pcat.test \
	--no-tls --no-dtls --no-cli --listening-ip=127.0.0.1 \
	--relay-ip=127.0.0.1 --listening-port=$PORT --allow-loopback-peers \
	--pidfile="$T/turn.pid" --db="$T/turndb" \
	--log-file="$T/turn.log" --simple-log >"$T/turn.out" 2>&1 &
TURN=$!
at_exit "kill $TURN 2>/dev/null; wait $TURN 2>/dev/null"
wait_for 10 udp_listening $PORT || { tail "$T/turn.out"; fail "turnserver did not start"; }

"$STUNC" $PORT alice s3cret >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] || { cat "$T/out" "$T/err"; fail "tool_stunc exited $rc"; }
cat "$T/out"
expect() { grep -Eqx "$1" "$T/out" || fail "no line matching \`$1'"; }
expect 'binding mapped 127\.0\.0\.1:[0-9]+ fingerprint'
expect 'allocate 401 realm p2pcat\.test'
expect 'allocate relayed 127\.0\.0\.1:[0-9]+ lifetime [0-9]+'
expect 'permission 127\.0\.0\.1:[0-9]+'
expect 'send and data indications relayed'
expect 'send indication of 1428 bytes relayed'
expect 'channel 0x4000 bound'
expect 'channel data relayed'
expect 'refresh lifetime 0: deallocated'
check_eq "steps" "$(wc -l <"$T/out")" 9

"$STUNC" $PORT alice wrong >"$T/out" 2>"$T/err" && fail "a wrong password was accepted"
grep -q 'Allocate: error 401' "$T/err" || { cat "$T/err"; fail "a wrong password: no 401"; }
echo "coturn $(turnserver --version 2>&1 | head -n 1): all steps passed"
exit 0
