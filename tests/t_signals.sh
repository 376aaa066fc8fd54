#!/bin/sh
# SIGHUP and SIGQUIT end a session as SIGTERM and SIGINT do: offers
# withdrawn, the peer told at once, status 128 + the signal; a
# listener's sessions in child processes too.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
randfile "$T/big" 4
mkfifo "$T/hold"
exec 4<>"$T/hold"
# start_source FIFO: big, then a source that stays open.
start_source() { rm -f "$1"; mkfifo "$1"; cat "$T/big" "$T/hold" > "$1" & }
offers() { find "$T/rv" -type f 2>/dev/null | wc -l; }

# A caller waiting for an answer: its offer goes with it.
for s in HUP:1 QUIT:3; do
	sig=${s%:*} num=${s#*:}
	"$P2PCAT" -w 30 nobody < /dev/null 2> "$T/err" & cp=$!
	wait_for 5 sh -c "find '$T/rv' -type f 2>/dev/null | grep -q offers" || fail "no offer posted"
	kill -$sig $cp
	wait_exit $cp 5 || fail "caller ignored SIG$sig"
	check_eq "caller's status after SIG$sig" $RC $((128 + num))
	check_eq "rendezvous files left after SIG$sig" "$(offers)" 0
done
echo "a waiting caller: offer withdrawn"

# A listener in a session: the caller hears at once (its --idle is 60 s).
for s in HUP:1 QUIT:3; do
	sig=${s%:*} num=${s#*:}
	start_source "$T/src"
	"$P2PCAT" -l s < "$T/src" 2> "$T/l.err" & lp=$!
	rm -f "$T/got"
	"$P2PCAT" --idle 60 --recv-only s > "$T/got" 2> "$T/c.err" & cp=$!
	wait_for 30 size_over "$T/got" 1048576 || fail "transfer did not start: $(cat "$T/c.err")"
	kill -$sig $lp
	wait_exit $lp 5 || fail "listener ignored SIG$sig"
	check_eq "listener's status after SIG$sig" $RC $((128 + num))
	wait_exit $cp 10 || fail "the caller was not told of the listener's SIG$sig"
	check_eq "caller's status after the listener's SIG$sig" $RC 3
	grep -q "the peer was interrupted" "$T/c.err" || fail "caller: $(cat "$T/c.err")"
	check_eq "rendezvous files left" "$(offers)" 0
done
echo "a listener in a session: the caller told at once"

# A caller in a session, the other way round.
start_source "$T/src"
rm -f "$T/got"
"$P2PCAT" -l --idle 60 --recv-only c > "$T/got" 2> "$T/l.err" & lp=$!
"$P2PCAT" c < "$T/src" 2> "$T/c.err" & cp=$!
wait_for 30 size_over "$T/got" 1048576 || fail "transfer did not start: $(cat "$T/l.err")"
kill -HUP $cp
wait_exit $cp 5 || fail "caller ignored SIGHUP"
check_eq "caller's status after SIGHUP" $RC 129
wait_exit $lp 10 || fail "the listener was not told of the caller's SIGHUP"
check_eq "listener's status after the caller's SIGHUP" $RC 3
echo "a caller in a session: the listener told at once"

# A -k listener with a command per session: SIGHUP to the listener
# reaches its sessions (child processes), whose callers are told.
mkfifo "$T/ping"
exec 5<>"$T/ping"
"$P2PCAT" -l -k --allow-any -c 'cat' svc < /dev/null 2> "$T/l.err" & lp=$!
"$P2PCAT" --idle 60 svc < "$T/ping" > "$T/got" 2> "$T/c.err" & cp=$!
printf 'ping\n' >&5
wait_for 30 grep -q ping "$T/got" || fail "no echo from the command: $(cat "$T/c.err" "$T/l.err")"
kids=$(pgrep -P $lp)
[ -n "$kids" ] || fail "no session process"
kill -HUP $lp
wait_exit $lp 5 || fail "listener ignored SIGHUP"
check_eq "-k listener's status after SIGHUP" $RC 129
wait_exit $cp 10 || fail "the caller of a -k listener was not told"
check_eq "caller's status" $RC 3
grep -q "the peer was interrupted" "$T/c.err" || fail "caller: $(cat "$T/c.err")"
for k in $kids; do
	[ -e "/proc/$k" ] && fail "session process $k outlived its listener"
done
echo "signals: ok"
