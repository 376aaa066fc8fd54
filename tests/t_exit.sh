#!/bin/sh
# Exit status: no listener; a listener killed or interrupted mid-transfer
# (the caller never prints bytes that were not sent); SIGINT.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
randfile "$T/big" 8
# A source that sends big, then stays open: the transfer is never over
# when the test interrupts it.
mkfifo "$T/hold"
exec 4<>"$T/hold"
# start_source FIFO: feed FIFO from the background (a job of its own, so
# that waiting for p2pcat never waits for it).
start_source() { rm -f "$1"; mkfifo "$1"; cat "$T/big" "$T/hold" > "$1" & }

# is_prefix GOT FULL: GOT is a prefix of FULL.
is_prefix() {
	n=$(stat -c %s "$1")
	[ "$n" -le "$(stat -c %s "$2")" ] || fail "$1 is longer than $2"
	cmp -s -n "$n" "$1" "$2" || fail "$1 holds bytes that were not sent"
}

# Nobody listening: status 2 after -w, and the offer is withdrawn.
s=$(date +%s)
"$P2PCAT" -w 1 nobody < /dev/null > "$T/out" 2> "$T/err"
check_eq "status with no listener" $? 2
grep -q "no answer from \`nobody' within 1 s" "$T/err" || fail "message: $(cat "$T/err")"
[ $(( $(date +%s) - s )) -le 5 ] || fail "-w 1 took $(( $(date +%s) - s )) s"
check_eq "files left" "$(find "$T/rv" -type f | wc -l)" 0

# SIGINT while waiting for an answer: 130, offer withdrawn.
"$P2PCAT" -w 30 nobody < /dev/null 2> "$T/err" & cp=$!
wait_for 5 sh -c "find '$T/rv' -type f | grep -q offers" || fail "no offer posted"
kill -INT $cp
wait_exit $cp 5 || fail "caller ignored SIGINT"
check_eq "status after SIGINT" $RC 130
check_eq "files left after SIGINT" "$(find "$T/rv" -type f | wc -l)" 0

# The listener is killed (SIGKILL) while sending: the caller notices after
# --idle, exits 3, and what it printed is a prefix of what was sent.
rm -f "$T/got"	# the last scenario's output must not count as progress
start_source "$T/src"
"$P2PCAT" -l k < "$T/src" 2> "$T/l.err" & lp=$!
"$P2PCAT" --idle 2 --recv-only k > "$T/got" 2> "$T/c.err" & cp=$!
wait_for 30 size_over "$T/got" 1048576 || fail "transfer did not start: $(cat "$T/c.err")"
kill -KILL $lp
wait_exit $cp 15 || fail "caller hung after the listener died"
check_eq "caller status after the listener died ($(cat "$T/c.err"))" $RC 3
grep -q "connection lost" "$T/c.err" || fail "message: $(cat "$T/c.err")"
is_prefix "$T/got" "$T/big"

# The listener is interrupted (SIGTERM): it exits 143, the caller 3 at once.
rm -f "$T/got"	# the last scenario's output must not count as progress
start_source "$T/src"
"$P2PCAT" -l t < "$T/src" 2> "$T/l.err" & lp=$!
"$P2PCAT" --recv-only t > "$T/got" 2> "$T/c.err" & cp=$!
wait_for 30 size_over "$T/got" 1048576 || fail "transfer did not start: $(cat "$T/c.err")"
kill -TERM $lp
wait_exit $lp 5 || fail "listener ignored SIGTERM"
check_eq "listener status after SIGTERM" $RC 143
wait_exit $cp 5 || fail "caller did not notice the interrupted peer"
check_eq "caller status after the peer's SIGTERM" $RC 3
grep -q "the peer was interrupted" "$T/c.err" || fail "message: $(cat "$T/c.err")"
is_prefix "$T/got" "$T/big"

# The caller is interrupted (SIGINT) mid-transfer: 130, the listener 3.
rm -f "$T/got"	# the last scenario's output must not count as progress
"$P2PCAT" -l i --recv-only > "$T/got" 2> "$T/l.err" & lp=$!
start_source "$T/src"
"$P2PCAT" i < "$T/src" 2> "$T/c.err" & cp=$!
wait_for 30 size_over "$T/got" 1048576 || fail "transfer did not start"
kill -INT $cp
wait_exit $cp 5 || fail "caller ignored SIGINT"
check_eq "caller status after SIGINT" $RC 130
wait_exit $lp 5 || fail "listener did not notice"
check_eq "listener status after the caller's SIGINT" $RC 3
is_prefix "$T/got" "$T/big"
check_eq "files left" "$(find "$T/rv" -type f | wc -l)" 0
echo "exit: ok"
