#!/bin/sh
# Spurious migration (RFC 9000 §9.3.2, §9.3.3; root, tests/natlab.sh):
# tests/tool_mitm in the lab's core sends a copy of each DATA packet
# toward one peer first, from a victim's address (a public host that runs
# no p2pcat and counts what reaches it).  The copy arrives first, so the
# original is a duplicate: that peer sees the other's packets come from
# the victim.  a listens and sends 8 MiB, b calls and sends 64 KiB; the
# copies race all, then half of what b sends a (after a took its path
# from b's HELLO), then 90 % of what a sends b, from a's first packet on
# (which would choose b's path):
#   - both exit 0 and both sha256 sums match (the copies carry real
#     packets, and the originals that win the race still arrive);
#   - the attacked peer's path is the other peer, never the victim;
#   - what reached the victim (UDP payload bytes: PATH_CHALLENGEs, which
#     find nobody there) is more than nothing and at most three times
#     what the attacker sent from its address (RFC 9000 §8.1, §9.3.1).
# (Copies of every packet from the very first would leave b no original
# to take a path from: it then gives up after -w, as against any attacker
# who can drop packets.)
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
lab_public vic
IPA=$(lab_ip a) IPB=$(lab_ip b) VIC=$(lab_ip vic) VPORT=9
# The victim drops what comes to its port without an ICMP error, and
# counts it.
lab_run vic iptables -w -A INPUT -p udp --dport $VPORT -j DROP || fail "iptables in vic"
# victim_bytes: UDP payload bytes that reached the victim's port.
victim_bytes() {
	lab_run vic iptables -w -nvxL INPUT | awk -v p="dpt:$VPORT" '
		$0 ~ p { print $2 - 28 * $1; exit }'
}

# mitm_on ARGS...: tool_mitm in the core, every packet crossing it
# through its TUN device; mitm_off stops it, which must go cleanly.
mitm_on() { lab_mitm "$@" || fail "lab_mitm $*"; }
mitm_off() { lab_mitm_off || fail "lab_mitm_off"; }
# spoofed DST: packets/bytes the attacker sent toward DST from the victim's address.
spoofed() {
	awk -v d="$1" '$2 == "dst" && $3 == d {
		for (i = 4; i < NF; i++) if ($i == "spoof") print $(i + 1) }' "$LAB_MITM_LOG"
}

randfile "$T/fa" 8
head -c 65536 /dev/urandom > "$T/fb"

for round in "a 100" "a 50" "b 90"; do
	set -- $round
	side=$1 pct=$2
	dst=$(lab_ip $side)
	if [ $side = a ]; then other=$IPB; else other=$IPA; fi
	echo "== copies of $pct % of the packets to $side raced from $VIC:$VPORT"
	lab_run vic iptables -w -Z INPUT
	mitm_on -s "${LAB_SEED:-1}" -S "$VIC:$VPORT" -D "$dst" -c $pct
	lab_bg a env XDG_CONFIG_HOME="$T/a" "$P2PCAT" -v -w 20 -l bob \
		< "$T/fa" > "$T/fb.got" 2> "$T/a.err"; lp=$LAB_PID
	lab_bg b env XDG_CONFIG_HOME="$T/b" "$P2PCAT" -v -w 20 bob \
		< "$T/fb" > "$T/fa.got" 2> "$T/b.err"; cp=$LAB_PID
	wait_exit $cp 120 || fail "caller hung: $(cat "$T/b.err")"
	CRC=$RC
	wait_exit $lp 30 || fail "listener hung: $(cat "$T/a.err")"
	LRC=$RC
	mitm_off
	cat "$LAB_MITM_LOG"
	got=$(victim_bytes)
	s=$(spoofed "$dst")
	sent=${s#*/}
	echo "the attacker sent ${s%/*} copies ($sent bytes) from the victim's address;" \
		"$got bytes reached the victim"
	[ -n "$got" ] && [ -n "$sent" ] || fail "no counts (victim \`$got', attacker \`$s')"
	[ "${s%/*}" -gt 0 ] || fail "the attacker raced no copy"
	[ "$got" -le $((3 * sent)) ] ||
		fail "the victim got $got bytes, more than 3 x the $sent the attacker sent: $(cat "$T/$side.err")"
	[ "$got" -gt 0 ] || fail "$side never checked the victim's address: $(cat "$T/$side.err")"
	grep -q "peer moved to $VIC\|path to the peer: $VIC" "$T/$side.err" &&
		fail "$side went to the victim: $(cat "$T/$side.err")"
	check_eq "caller status ($(cat "$T/b.err"))" $CRC 0
	check_eq "listener status ($(cat "$T/a.err"))" $LRC 0
	check_eq "a to b sha256" "$(sha "$T/fa.got")" "$(sha "$T/fa")"
	check_eq "b to a sha256" "$(sha "$T/fb.got")" "$(sha "$T/fb")"
	grep -q "connected: direct path to $other:" "$T/$side.err" ||
		fail "$side's path: $(cat "$T/$side.err")"
	grep "$VIC" "$T/$side.err" | sort | uniq -c
done
echo "attack_migrate: ok"
