#!/bin/sh
# --idle works at any value it accepts (issue 12.2): the two sides tell
# each other their idle timeouts and send keepalives at a third of the
# shorter, so a session that is quiet for longer than either timeout
# lives on.  With keepalives at a fixed 15 s, a listener with --idle 2
# gave up on a healthy session after 2 s of quiet.
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/tests/peers.sh"
: > "$T/lin"
for side in listener caller; do
	if [ $side = listener ]; then li="--idle 2"; ci=; else li=; ci="--idle 2"; fi
	listen bob $li --recv-only bob
	# A word, 5 s of quiet (more than twice the shorter timeout), a word.
	{ echo before; sleep 5; echo after; } |
		env HOME="$T/alice" XDG_CONFIG_HOME="$T/alice/.config" "$P2PCAT" $ci \
		--send-only bob > "$T/c.out" 2> "$T/c.err" & cp=$!
	wait_exit $cp 30 || fail "the caller hung: $(cat "$T/c.err")"
	CRC=$RC
	served "5 s of quiet, --idle 2 at the $side"
	check_eq "what the listener got" "$(cat "$T/l.out")" "before
after"
	hasnt "$T/l.err" "connection lost"
	hasnt "$T/c.err" "connection lost"
	echo "--idle 2 at the $side: the quiet session lived"
done
echo "idle: ok"
