#!/bin/sh
# An offer can claim a symmetric NAT (two server-reflexive ports on one
# address), and the listener, behind a cone NAT, then sprays birthday
# probes at random ports of that address.  Anyone who can post offers
# names the address, so a listener kept busy with such offers would be a
# flood: its probes come from one budget, 8192 a minute over all the
# offers it takes.  Two offers from a symmetric NAT, each abandoned once
# posted (the caller is frozen), taken together: the probes that reach
# that NAT's WAN are counted; the two share one 8192 and what the budget
# refilled meanwhile (8192 a minute), not 8192 each.  (The
# callers are stopped, not killed: an offer of a dead process is void.)
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables turnserver; do
	command -v $c >/dev/null 2>&1 || skip "no $c"
done
. "$SRCDIR/tests/natlab.sh"
export P2PCAT_SIGNAL="dir:$T/rv"

lab_public stun
lab_turn stun || fail "coturn did not start"
lab_nat sv symmetric drop; lab_host sh sv
lab_nat lr cone accept; lab_host lh lr
STUN="--stun $(lab_ip stun):3478 --stun $(lab_ip2 stun):3478"
LIP=$(lab_pubip lh)
# Count every UDP datagram from the listener's public address that
# reaches the symmetric NAT, before any NAT or filter sees it.
ip netns exec "$LAB-sv" iptables -w -t raw -I PREROUTING -i wan -s "$LIP" -p udp ||
	fail "iptables"
counted() {
	ip netns exec "$LAB-sv" iptables -w -t raw -vxnL PREROUTING |
		awk -v s=" $LIP " 'index($0, s) { print $1 }'
}

# The offers first, each caller frozen once it has posted; then the
# listener, which takes both.  (A listener already waiting answered
# within milliseconds, and a caller not yet frozen could connect.)
for i in 1 2; do
	lab_bg sh "$P2PCAT" -vv $STUN bob > /dev/null 2> "$T/c$i.err" < /dev/null
	eval cp$i=\$LAB_PID
	wait_for 10 grep -q "posted to" "$T/c$i.err" || fail "offer $i: $(cat "$T/c$i.err")"
	kill -STOP $LAB_PID
done
at_exit "kill -9 $cp1 $cp2 2>/dev/null"
lab_bg lh "$P2PCAT" -v -k -w 8 $STUN -l bob > /dev/null 2> "$T/l.err" < /dev/null
lp=$LAB_PID
t0=$(date +%s)
grep -q "NAT: .*symmetric" "$T/c1.err" || fail "the caller's NAT is not seen as symmetric: $(cat "$T/c1.err")"
gave_up() { [ "$(grep -c "did not connect" "$T/l.err")" -ge 2 ]; }
wait_for 60 gave_up || fail "the listener did not take both offers: $(cat "$T/l.err")"
secs=$(( $(date +%s) - t0 ))
kill $lp
n=$(counted)
# At most the first 8192, what refilled in $secs s, and the ordinary
# probes of two sessions (a few dozen).
max=$((8192 + 8192 * (secs + 1) / 60 + 200))
echo "probes at the symmetric NAT: $n in $secs s (at most $max; 16384 without the budget)"
# The first offer's 8192 take 5.1 s at full speed; a loaded machine may
# send fewer within -w, but a spray must be seen.
[ "$n" -ge 2000 ] || fail "no spray seen: $n"
[ "$n" -le $max ] || fail "the budget did not hold: $n > $max"
grep -q "budget of 8192 probes a minute is spent" "$T/l.err" || fail "the spent budget was not reported"
