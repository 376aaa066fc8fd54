#!/bin/sh
# On loopback: a message, then 100 MiB of random bytes in both directions
# at once, intact, with status 0 on both sides and no rendezvous file left.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"

echo "hello, bob" > "$T/msg"
"$P2PCAT" -l bob < /dev/null > "$T/msg.got" 2> "$T/l.err" & lp=$!
"$P2PCAT" bob < "$T/msg" > "$T/empty.got" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener did not exit"
check_eq "listener status" $RC 0
cmp -s "$T/msg" "$T/msg.got" || fail "message: got \`$(cat "$T/msg.got")'"
[ -s "$T/empty.got" ] && fail "caller printed bytes nobody sent"

randfile "$T/a" 100
randfile "$T/b" 100
start=$(date +%s)
"$P2PCAT" -l bob < "$T/b" > "$T/a.got" 2> "$T/l.err" & lp=$!
"$P2PCAT" bob < "$T/a" > "$T/b.got" 2> "$T/c.err" & cp=$!
wait_exit $cp 300 || fail "caller hung: $(cat "$T/c.err")"
crc=$RC
wait_exit $lp 30 || fail "listener hung: $(cat "$T/l.err")"
check_eq "caller status ($(cat "$T/c.err"))" $crc 0
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
check_eq "caller to listener sha256" "$(sha "$T/a.got")" "$(sha "$T/a")"
check_eq "listener to caller sha256" "$(sha "$T/b.got")" "$(sha "$T/b")"
echo "2 x 100 MiB in $(( $(date +%s) - start )) s"
left=$(find "$T/rv" -type f | wc -l)
check_eq "rendezvous files left" "$left" 0
