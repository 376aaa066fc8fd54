#!/bin/sh
# Reordering and loss through two cone NATs (issue 11): 8 MiB each way at
# once with netem's 40 ms each way, 2 % loss and 5 % of packets reordered
# (sent at once, past the 40 ms queue), intact, status 0 on both sides.
# Each side, as a sender, must have learned the reordering the tool says
# it injected into its packets: from -vv, "reordering: N packets declared
# lost arrived after all, overtaken by up to D; loss thresholds now P
# packets (0: time only) and T/8 RTT", against tool_netem's "from ADDR
# ... reordered R overtaken O max_dist M" for its public address:
#   N <= O  every spurious loss is a packet a reordered one overtook;
#   0 < D <= M  it saw its packets overtaken, no further than they were;
#   P = 0, 9 <= T <= 16  loss by time only, the threshold in its bounds.
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables turnserver; do
	command -v $c >/dev/null 2>&1 || skip "$c is not installed"
done
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
[ -x "$SRCDIR/tests/tool_netem" ] || fail "tests/tool_netem is not built (make tests)"
. "$SRCDIR/tests/natlab.sh"
export P2PCAT_SIGNAL="dir:$T/rv"

lab_cone_cone || fail "lab"
STUN="--stun $(lab_ip stun):3478"
LAB_SEED=$$ lab_netem delay 40ms loss 2% reorder 5% || fail "netem"

randfile "$T/a" 8
randfile "$T/b" 8
lab_run b "$P2PCAT" -vv $STUN -l reo < "$T/b" > "$T/a.got" 2> "$T/b.err" & lp=$!
lab_run a "$P2PCAT" -vv $STUN -w 20 reo < "$T/a" > "$T/b.got" 2> "$T/a.err" & cp=$!
wait_exit $cp 300 || fail "caller hung: $(tail -5 "$T/a.err")"
crc=$RC
wait_exit $lp 60 || fail "listener hung: $(tail -5 "$T/b.err")"
check_eq "caller status ($(tail -3 "$T/a.err"))" $crc 0
check_eq "listener status ($(tail -3 "$T/b.err"))" $RC 0
check_eq "caller to listener sha256" "$(sha "$T/a.got")" "$(sha "$T/a")"
check_eq "listener to caller sha256" "$(sha "$T/b.got")" "$(sha "$T/b")"
lab_netem_off
cat "$LAB_NETEM_LOG"

# check SIDE: SIDE's report against what the tool did to its packets.
check() {
	r=$(grep "reordering:" "$T/$1.err") || fail "$1: no reordering report"
	echo "$1: $r"
	set -- "$1" $(echo "$r" | sed -n 's/.*reordering: \([0-9]*\) packets .* up to \([0-9]*\); .* now \([0-9]*\) packets .* and \([0-9]*\)\/8 RTT.*/\1 \2 \3 \4/p')
	[ $# -eq 5 ] || fail "$1: cannot read \`$r'"
	t=$(grep "netem: from $(lab_pubip "$1") " "$LAB_NETEM_LOG") ||
		fail "$1: the tool saw nothing from $(lab_pubip "$1")"
	reo=$(echo "$t" | sed -n 's/.* reordered \([0-9]*\) .*/\1/p')
	over=$(echo "$t" | sed -n 's/.* overtaken \([0-9]*\) .*/\1/p')
	dist=$(echo "$t" | sed -n 's/.* max_dist \([0-9]*\).*/\1/p')
	[ "$reo" -gt 50 ] || fail "$1: the tool reordered only $reo packets"
	[ "$2" -le "$over" ] || fail "$1: $2 spurious losses, but only $over packets overtaken"
	[ "$3" -gt 0 ] && [ "$3" -le "$dist" ] ||
		fail "$1: overtaken by up to $3 packets, the tool says up to $dist"
	check_eq "$1: packet threshold (0: time only)" "$4" 0
	[ "$5" -ge 9 ] && [ "$5" -le 16 ] || fail "$1: time threshold $5/8 RTT"
}
check a
check b
