#!/bin/sh
# A lossy, reordering path: 100 MiB of random bytes both ways at once
# between two hosts whose every packet crosses tool_netem (5 % loss each
# way, reordering by jitter), intact, status 0 on both sides.
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables; do command -v $c >/dev/null || skip "$c is not installed"; done
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
[ -x "$SRCDIR/tests/tool_netem" ] || fail "tests/tool_netem is not built (make tests)"
. "$SRCDIR/tests/natlab.sh"
export P2PCAT_SIGNAL="dir:$T/rv"

lab_public a || fail "lab"
lab_public b || fail "lab"
# 1 ms delay with 1 ms jitter reorders; 5 % loss per crossing of the core.
LAB_SEED=$$ lab_netem 1 1 5 2 || fail "netem"

randfile "$T/a" 100
randfile "$T/b" 100
# Not lab_bg: an asynchronous command inside a function reads /dev/null.
lab_run a "$P2PCAT" -v -l lossy < "$T/b" > "$T/a.got" 2> "$T/l.err" & lp=$!
lab_run b "$P2PCAT" -v -w 20 lossy < "$T/a" > "$T/b.got" 2> "$T/c.err" & cp=$!
start=$(date +%s)
wait_exit $cp 600 || fail "caller hung: $(tail -5 "$T/c.err")"
crc=$RC
wait_exit $lp 60 || fail "listener hung: $(tail -5 "$T/l.err")"
check_eq "caller status ($(tail -3 "$T/c.err"))" $crc 0
check_eq "listener status ($(tail -3 "$T/l.err"))" $RC 0
check_eq "caller to listener sha256" "$(sha "$T/a.got")" "$(sha "$T/a")"
check_eq "listener to caller sha256" "$(sha "$T/b.got")" "$(sha "$T/b")"
lab_netem_off
echo "2 x 100 MiB over 5 % loss in $(( $(date +%s) - start )) s"
grep -h "retransmitted" "$T/c.err" "$T/l.err"
cat "$LAB_NETEM_LOG" 2>/dev/null | tail -3
# The path really was lossy: both sides retransmitted.
for f in "$T/c.err" "$T/l.err"; do
	r=$(sed -n 's/.*(\([0-9]*\) bytes retransmitted).*/\1/p' "$f")
	[ "${r:-0}" -gt 1000000 ] || fail "no retransmissions in $f: is the path lossy?"
done
