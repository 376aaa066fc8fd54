#!/bin/sh
# The listener works on offers concurrently: an abandoned attempt, which
# keeps the listener's side punching for its whole -w, never delays the
# next caller; the children are reaped and nothing is left behind.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
NAME=conc$$

echo "from the second caller" > "$T/msg"
"$P2PCAT" --id > /dev/null 2>&1 || fail "--id"	# one key, made before they race

# Caller A posts an offer and is then stopped, before any listener runs:
# the listener takes A's offer, answers, and punches towards A for its -w
# of 30 s.
"$P2PCAT" -w 60 "$NAME" < /dev/null > /dev/null 2> "$T/a.err" & ap=$!
at_exit "kill -9 $ap 2>/dev/null"
wait_for 10 sh -c "find '$T/rv' -path '*offers*' -type f 2>/dev/null | grep -q ." ||
	fail "caller A posted no offer: $(cat "$T/a.err")"
kill -STOP $ap
"$P2PCAT" -l -w 30 "$NAME" < /dev/null > "$T/got" 2> "$T/l.err" & lp=$!
wait_for 10 sh -c "find '$T/rv' -path '*answers*' -type f | grep -q ." ||
	fail "the listener did not answer caller A: $(cat "$T/l.err")"

# Caller B has 10 s, a third of A's attempt: a listener that worked on one
# offer at a time would leave B's offer in the store until A's attempt ran
# out, and B would exit 2.
"$P2PCAT" -w 10 "$NAME" < "$T/msg" > /dev/null 2> "$T/b.err"
rc=$?
check_eq "caller B's status ($(cat "$T/b.err"); listener: $(cat "$T/l.err"))" $rc 0
wait_exit $lp 10 || fail "listener did not exit after B's session: $(cat "$T/l.err")"
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
cmp -s "$T/msg" "$T/got" || fail "the listener printed \`$(cat "$T/got")'"

# Nothing left: no process of the listener's, no rendezvous file of its.
pgrep -f -- "-l -w 30 $NAME" >/dev/null && fail "a listener process outlived it"
kill -9 $ap 2>/dev/null
wait $ap 2>/dev/null
check_eq "rendezvous files left" "$(find "$T/rv" -type f | wc -l)" 0

# Offers cost nothing to forge: twenty abandoned ones (callers stopped
# once their offers are in) fill every place the listener has for offers,
# and the oldest are given up for newer ones, so a real caller still gets
# through within its -w.
stopped=
for i in $(seq 1 20); do
	"$P2PCAT" -w 60 "$NAME" < /dev/null > /dev/null 2>> "$T/s.err" & sp=$!
	stopped="$stopped $sp"
done
at_exit "kill -9 $stopped 2>/dev/null"
offers() { [ "$(find "$T/rv" -path '*offers*' -type f | wc -l)" -eq 20 ]; }
wait_for 20 offers || fail "20 offers were not posted: $(cat "$T/s.err")"
kill -STOP $stopped
"$P2PCAT" -l -k -w 15 "$NAME" < /dev/null > "$T/got" 2> "$T/l2.err" & lp=$!
at_exit "kill $lp 2>/dev/null"
busy() { [ "$(pgrep -P $lp | wc -l)" -ge 17 ]; }
wait_for 20 busy || fail "the listener did not take the abandoned offers: $(pgrep -P $lp | wc -l) at work"
echo "through a full house" > "$T/msg2"
"$P2PCAT" -w 10 "$NAME" < "$T/msg2" > /dev/null 2> "$T/b2.err"
rc=$?
check_eq "the real caller's status ($(cat "$T/b2.err"))" $rc 0
wait_for 5 sh -c "grep -q 'full house' '$T/got'" || fail "the listener printed \`$(cat "$T/got")'"

# The store fails while a session runs (a listener that runs a command
# per session goes on waiting for offers while it runs): no more offers
# are taken, the session ends as it would, then the listener exits 2.
kill $lp; wait $lp
kill -9 $stopped 2>/dev/null
"$P2PCAT" -l -k --allow-any -c cat "$NAME" < /dev/null 2> "$T/l3.err" & lp=$!
mkfifo "$T/feed"
"$P2PCAT" -w 10 "$NAME" < "$T/feed" > "$T/echo" 2> "$T/b3.err" & bp=$!
exec 5> "$T/feed"
echo "before" >&5
wait_for 10 sh -c "grep -q before '$T/echo'" || fail "no session: $(cat "$T/b3.err")"
# The offers' directory becomes a symbolic link, atomically
# (renameat2's RENAME_EXCHANGE): the dir: store refuses to follow it.
ln -s /nonexistent "$T/rv/inbox/$NAME/lnk"
python3 -c 'import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0)' \
    "$T/rv/inbox/$NAME/lnk" "$T/rv/inbox/$NAME/offers" || fail "renameat2"
echo "after the store went" >&5
exec 5>&-
wait_exit $bp 20 || fail "the caller hung after the store went"
check_eq "the caller's status after the store went ($(cat "$T/b3.err"))" $RC 0
check_eq "the session's echo" "$(cat "$T/echo" | tr '\n' ' ')" "before after the store went "
wait_exit $lp 20 || fail "the listener went on without its store"
check_eq "the listener's status without its store" $RC 2
grep -q "no more offers taken: waiting for 1 session to end" "$T/l3.err" ||
	fail "message: $(cat "$T/l3.err")"
echo "t_concurrent: ok"
