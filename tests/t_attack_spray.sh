#!/bin/sh
# Hostile datagrams at both peers' sockets while a real session runs on
# loopback (no root): random datagrams, 0xE1 with every type byte,
# truncated headers, and, at the caller, whose connection id the
# rendezvous shows, DATA packets for its id with random ciphertext, old
# and far-ahead packet numbers, both key phases.  The session completes
# with both directions (32 MiB each) intact (sha256), and the caller's -v
# reports the forged packets it dropped: at least half of those that were
# long enough to be checked (loopback may lose some), at most all of them.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"
command -v ss >/dev/null 2>&1 || skip "no ss"
export P2PCAT_SIGNAL="dir:$T/rv"
SPRAY="python3 $SRCDIR/tests/attack_spray.py"

randfile "$T/a" 32
randfile "$T/b" 32
# Each side sends its file, then holds stdin open until the spray is over
# ($T/over exists), so that the session is still running while it lasts.
# (It also stops when the scratch directory has gone: a failed run.)
source_of() { cat "$1"; while [ ! -e "$T/over" ] && [ -d "$T" ]; do sleep 0.05; done; }

# The caller first: its offer (connection id, port) is read before the
# listener claims it.
source_of "$T/a" | env HOME="$T/alice" XDG_CONFIG_HOME="$T/alice/.config" \
	"$P2PCAT" -v bob > "$T/b.got" 2> "$T/c.err" & cp=$!
offer() { set -- "$T"/rv/inbox/bob/offers/*; [ -f "$1" ] && cp "$1" "$T/offer" 2>/dev/null; }
wait_for 10 offer || fail "no offer: $(cat "$T/c.err")"
set -- $($SPRAY -p "$T/offer") || fail "cannot read the offer"
CID=$1 CPORT=$2
source_of "$T/b" | env HOME="$T/bob" XDG_CONFIG_HOME="$T/bob/.config" \
	"$P2PCAT" -v -l bob > "$T/a.got" 2> "$T/l.err" & lp=$!
# The listener's port, from ss.
# The socket is its child's, which works on the offer.
lport() {
	for p in $(pgrep -P $lp); do
		LPORT=$(ss -Hulpn | awk -v p="pid=$p," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
		[ -n "$LPORT" ] && return 0
	done
	return 1
}
wait_for 10 lport || fail "no UDP socket of the listener in ss -ulpn"
wait_for 30 grep -q "connected:" "$T/c.err" || fail "not connected: $(cat "$T/c.err")"
echo "caller: cid $CID port $CPORT; listener port $LPORT"

$SPRAY -c "$CID" -d 3 -s 1 "127.0.0.1:$CPORT" > "$T/spray.c" & s1=$!
$SPRAY -d 3 -s 2 "127.0.0.1:$LPORT" > "$T/spray.l" & s2=$!
wait_exit $s1 30 || fail "spray at the caller hung"
check_eq "spray at the caller" $RC 0
wait_exit $s2 30 || fail "spray at the listener hung"
check_eq "spray at the listener" $RC 0
echo "at the caller: $(cat "$T/spray.c"); at the listener: $(cat "$T/spray.l")"
exited $cp && fail "the caller exited during the spray: $(cat "$T/c.err")"
exited $lp && fail "the listener exited during the spray: $(cat "$T/l.err")"
touch "$T/over"

wait_exit $cp 120 || fail "caller hung: $(cat "$T/c.err")"
crc=$RC
wait_exit $lp 30 || fail "listener hung: $(cat "$T/l.err")"
check_eq "caller status ($(cat "$T/c.err"))" $crc 0
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
check_eq "caller to listener sha256" "$(sha "$T/a.got")" "$(sha "$T/a")"
check_eq "listener to caller sha256" "$(sha "$T/b.got")" "$(sha "$T/b")"

sent=$(awk '{ print $4 }' "$T/spray.c")
dropped=$(sed -n 's/.* \([0-9]*\) forged or replayed packets dropped$/\1/p' "$T/c.err")
[ -n "$dropped" ] || fail "no drop count in the caller's -v: $(cat "$T/c.err")"
echo "caller dropped $dropped forged packets of $sent authenticable ones sprayed"
# Loopback may lose some under load (full socket buffers), not half.
[ "$dropped" -ge $(( (sent + 1) / 2 )) ] || fail "the caller counted only $dropped of the $sent forged packets"
[ "$dropped" -le "$sent" ] || fail "the caller counted $dropped forged packets, but only $sent were sent"
echo "attack_spray: ok"
