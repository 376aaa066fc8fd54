#!/bin/sh
# An attacker on the path (root; tests/natlab.sh): tests/tool_mitm sits in
# the lab's internet core, between two public hosts, and attacks p2pcat's
# packets: bit flips, truncations, forged packets with the observed
# connection ids (random bodies, and copies with a bad tag sent ahead of
# the real packet), replays (same source, another source port, reflected
# to the other peer).
#   a) 8 MiB of random data each way at once through it: both sides exit
#      0, both sha256 sums match (nothing forged was delivered), and each
#      peer's -v "N forged or replayed packets dropped" agrees with what
#      the attacker sent it that its record layer must count: N > 0, N no
#      more than that, and no less than 90 % of it (the rest the network
#      may lose: the kernel drops when a socket buffer is full).
#      What it saw holds none of the data and neither peer's public key.
#   b) the same between two hosts behind cone NATs, which learn their
#      public addresses from STUN (coturn; left out when not installed).
#   c) the same attacker also injects a bit-flipped copy of every HELLO
#      (Noise message 3) ahead of the real one: no byte is delivered that
#      was not sent, nothing crashes; either the session survives it, or
#      the caller finds no path (2, after -w) and the listener goes on
#      waiting (printed as a FINDING: one packet denies the session).
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables awk; do
	command -v $c >/dev/null 2>&1 || skip "no $c"
done
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
MITM=$SRCDIR/tests/tool_mitm
[ -x "$MITM" ] || fail "no $MITM: run make tests"
. "$SRCDIR/tests/natlab.sh"
export P2PCAT_SIGNAL="dir:$T/rv"

lab_public a
lab_public b
IPA=$(lab_ip a) IPB=$(lab_ip b)

# mitm_on ARGS...: tool_mitm in the core, every packet crossing it
# through its TUN device; mitm_off stops it, which must go cleanly.
mitm_on() { lab_mitm "$@" || fail "lab_mitm $*"; }
mitm_off() { lab_mitm_off || fail "lab_mitm_off"; }
# field NAME DST: the counter NAME of destination DST in the attacker's log
# (for C/U pairs, C).
field() {
	awk -v k="$1" -v d="$2" '$2 == "dst" && $3 == d {
		for (i = 4; i < NF; i++) if ($i == k) { split($(i + 1), v, "/"); print v[1] } }' "$LAB_MITM_LOG"
}
dropped() { sed -n 's/.* \([0-9]*\) forged or replayed packets dropped$/\1/p' "$1"; }

# session [LISTENER CALLER [ARGS...]]: LISTENER (a) listens as bob, CALLER
# (b) calls it, each sends its file, both with ARGS; sets LRC, CRC.
session() {
	_l=${1:-a} _c=${2:-b}
	[ $# -ge 2 ] && shift 2
	lab_bg $_l env XDG_CONFIG_HOME="$T/$_l" "$P2PCAT" -v -w 20 "$@" -l bob \
		< "$T/fa" > "$T/fb.got" 2> "$T/$_l.err"; lp=$LAB_PID
	lab_bg $_c env XDG_CONFIG_HOME="$T/$_c" "$P2PCAT" -v -w 20 "$@" bob \
		< "$T/fb" > "$T/fa.got" 2> "$T/$_c.err"; cp=$LAB_PID
	wait_exit $cp 180 || fail "caller hung: $(cat "$T/$_c.err")"
	CRC=$RC
	wait_exit $lp 30 || fail "listener hung: $(cat "$T/$_l.err")"
	LRC=$RC
}
# is_prefix GOT FULL: GOT is a prefix of FULL (nothing that was not sent).
is_prefix() {
	n=$(stat -c %s "$1")
	[ "$n" -le "$(stat -c %s "$2")" ] || fail "$1 is longer than $2"
	cmp -s -n "$n" "$1" "$2" || fail "$1 holds bytes that were not sent"
}

randfile "$T/fa" 8
randfile "$T/fb" 8

echo "== a) flips, truncations, forgeries and replays, 8 MiB each way"
mitm_on -s "${LAB_SEED:-1}" -f 1 -t 0.5 -b 1 -n 2 -r 2 -w "$T/wire"
session
mitm_off
cat "$LAB_MITM_LOG"
check_eq "caller status ($(cat "$T/b.err"))" $CRC 0
check_eq "listener status ($(cat "$T/a.err"))" $LRC 0
check_eq "b to a sha256" "$(sha "$T/fb.got")" "$(sha "$T/fb")"
check_eq "a to b sha256" "$(sha "$T/fa.got")" "$(sha "$T/fa")"
grep -q "connected: direct path to $IPB:" "$T/a.err" || fail "listener path: $(cat "$T/a.err")"
grep -q "connected: direct path to $IPA:" "$T/b.err" || fail "caller path: $(cat "$T/b.err")"
for side in a b; do
	ip=$(lab_ip $side)
	n=$(dropped "$T/$side.err")
	want=$(field counted "$ip")
	data=$(field data "$ip")
	[ -n "$n" ] && [ -n "$want" ] || fail "$side: no counts (peer: \`$n', attacker: \`$want')"
	echo "$side ($ip): dropped $n; the attacker sent $want it must count, among $data data packets"
	[ "$want" -gt 0 ] || fail "$side: the attacker did nothing to $data packets toward it"
	[ "$n" -gt 0 ] || fail "$side: dropped nothing"
	[ "$n" -le "$want" ] || fail "$side: dropped $n, more than the $want forged or replayed"
	[ $((n * 10)) -ge $((want * 9)) ] || fail "$side: dropped only $n of $want forged or replayed: $(cat "$T/$side.err")"
	for k in flip trunc badtag inject replay port; do
		[ "$(field $k "$ip")" -gt 0 ] || fail "$side: no $k attack: $(grep "$ip" "$LAB_MITM_LOG")"
	done
done
[ "$(field reflect "$IPA")$(field reflect "$IPB")" != 00 ] || fail "no reflected replays"

# What the attacker saw: neither file's bytes, nor either peer's public key
# (Noise XX sends static keys encrypted).
FIND="python3 $SRCDIR/tests/attack_find.py"
[ "$(stat -c %s "$T/wire")" -gt $((16 << 20)) ] || fail "captured only $(stat -c %s "$T/wire") bytes"
$FIND "$T/fa" -w "$T/fa" > /dev/null && fail "attack_find.py does not find a file in itself"
KA=$(lab_run a env XDG_CONFIG_HOME="$T/a" "$P2PCAT" --id) KB=$(lab_run b env XDG_CONFIG_HOME="$T/b" "$P2PCAT" --id)
$FIND "$T/wire" -k "$KA" -k "$KB" -w "$T/fa" -w "$T/fb" || fail "the wire shows the above"
echo "the wire ($(stat -c %s "$T/wire") bytes) shows no plaintext and no static key"

echo "== b) the same between two hosts behind cone NATs (STUN)"
# Replays from another source port die at the receiver's NAT (no mapping
# for that port), so they are not in what it must count; reflections look
# like the peer's packets to the NAT and reach the sender, which drops them
# for their connection id.
if command -v turnserver >/dev/null 2>&1; then
	lab_public stun
	lab_turn stun || fail "coturn did not start"
	lab_nat ra cone; lab_host ha ra
	lab_nat rb cone; lab_host hb rb
	mitm_on -s "${LAB_SEED:-1}" -f 1 -t 0.5 -b 1 -n 2 -r 2
	session ha hb --stun "$(lab_ip stun):3478" --stun "$(lab_ip2 stun):3478"
	mitm_off
	cat "$LAB_MITM_LOG"
	check_eq "caller status ($(cat "$T/hb.err"))" $CRC 0
	check_eq "listener status ($(cat "$T/ha.err"))" $LRC 0
	check_eq "hb to ha sha256" "$(sha "$T/fb.got")" "$(sha "$T/fb")"
	check_eq "ha to hb sha256" "$(sha "$T/fa.got")" "$(sha "$T/fa")"
	for side in ha hb; do
		grep -q "connected: direct path" "$T/$side.err" || fail "$side: not direct: $(cat "$T/$side.err")"
		ip=$(lab_pubip $side)
		n=$(dropped "$T/$side.err")
		want=$(( $(field counted "$ip") - $(field port "$ip") ))
		echo "$side (behind $ip): dropped $n; the attacker sent $want it must count"
		[ "$want" -gt 0 ] && [ "$n" -gt 0 ] || fail "$side: no attack counted"
		[ "$n" -le "$want" ] || fail "$side: dropped $n, more than the $want forged or replayed"
		[ $((n * 10)) -ge $((want * 9)) ] || fail "$side: dropped only $n of $want: $(cat "$T/$side.err")"
	done
else
	echo "no turnserver (coturn): no STUN server for the NAT case"
fi

echo "== c) a forged copy of every HELLO sent ahead of it"
mitm_on -s "${LAB_SEED:-1}" -H 100 -f 1 -n 2 -r 2
lab_bg a env XDG_CONFIG_HOME="$T/a" "$P2PCAT" -v -w 5 -l bob \
	< "$T/fa" > "$T/fb.got" 2> "$T/a.err"; lp=$LAB_PID
lab_bg b env XDG_CONFIG_HOME="$T/b" "$P2PCAT" -v -w 5 bob \
	< "$T/fb" > "$T/fa.got" 2> "$T/b.err"; cp=$LAB_PID
wait_exit $cp 180 || fail "caller hung: $(cat "$T/b.err")"
CRC=$RC
# A listener whose caller never connected goes on waiting (DESCRIPTION).
wait_for 30 sh -c "grep -q 'did not connect' '$T/a.err' || ! kill -0 $lp 2>/dev/null" || true
if exited $lp; then
	wait_exit $lp 1; LRC=$RC
else
	kill -TERM $lp; wait_exit $lp 5 || fail "listener ignored SIGTERM"; LRC=$RC
	check_eq "listener status after SIGTERM, waiting for a caller" $LRC 143
fi
mitm_off
cat "$LAB_MITM_LOG"
[ "$(field hello "$IPA")" -gt 0 ] || fail "no forged HELLO was sent to the listener"
[ $CRC -lt 128 ] || fail "caller killed by signal $((CRC - 128))"
is_prefix "$T/fa.got" "$T/fa"
is_prefix "$T/fb.got" "$T/fb"
# A forged HELLO is read on a copy of the handshake and dropped: the real
# one still completes it, and the session carries everything.
check_eq "caller status with forged HELLOs ($(tail -3 "$T/b.err"))" $CRC 0
check_eq "listener status" $LRC 0
check_eq "b to a sha256" "$(sha "$T/fb.got")" "$(sha "$T/fb")"
check_eq "a to b sha256" "$(sha "$T/fa.got")" "$(sha "$T/fa")"
grep -q "dropped a forged handshake message" "$T/a.err" ||
	fail "the listener never saw a forged HELLO: $(cat "$T/a.err")"
echo "forged HELLOs: dropped, the session survived them"
echo "attack_path: ok"
