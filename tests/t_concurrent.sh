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
check_eq "caller B's status ($(cat "$T/b.err"); listener: $(cat "$T/l.err"))" $? 0
wait_exit $lp 10 || fail "listener did not exit after B's session: $(cat "$T/l.err")"
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
cmp -s "$T/msg" "$T/got" || fail "the listener printed \`$(cat "$T/got")'"

# Nothing left: no process of the listener's, no rendezvous file of its.
pgrep -f -- "-l -w 30 $NAME" >/dev/null && fail "a listener process outlived it"
kill -9 $ap 2>/dev/null
wait $ap 2>/dev/null
check_eq "rendezvous files left" "$(find "$T/rv" -type f | wc -l)" 0
echo "t_concurrent: ok"
