#!/bin/sh
# Exit status 0 means the peer has the data: it wrote every byte to its
# output and closed that without error, or its command (-e, -c) read
# its input and exited 0.  Otherwise the sender exits 3 with the peer's
# reason, whatever the size and whichever side sends.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
head -c 100000 /dev/urandom > "$T/100k"
ENOSPC="the peer could not write its output: No space left on device"

# expect_peer_failed WHAT STATUS ERRFILE MESSAGE
expect_peer_failed() {
	check_eq "$1: status ($(cat "$3"))" "$2" 3
	grep -q "$4" "$3" || fail "$1: message: $(cat "$3")"
}

# A listener sends, the caller's stdout is /dev/full: 5 bytes and 100 kB.
for src in /dev/zero "$T/100k"; do
	head -c 5 "$src" > "$T/in"
	[ "$src" = /dev/zero ] || cp "$src" "$T/in"
	"$P2PCAT" -l --send-only bob < "$T/in" 2> "$T/l.err" & lp=$!
	"$P2PCAT" --recv-only bob > /dev/full 2> "$T/c.err"
	rc=$?
	check_eq "receiver's status ($(cat "$T/c.err"))" $rc 3
	grep -q "stdout: No space left on device" "$T/c.err" || fail "receiver: $(cat "$T/c.err")"
	wait_exit $lp 10 || fail "sender hung"
	expect_peer_failed "listener sending $(stat -c %s "$T/in") bytes" $RC "$T/l.err" "$ENOSPC"
done
echo "listener sends to a full disk: 3"

# The other way: the caller sends to a listener whose stdout is full.
"$P2PCAT" -l --recv-only bob > /dev/full 2> "$T/l.err" & lp=$!
head -c 5 /dev/zero | "$P2PCAT" --send-only bob 2> "$T/c.err"
expect_peer_failed "caller sending 5 bytes" $? "$T/c.err" "$ENOSPC"
wait_exit $lp 10 || fail "receiving listener hung"
check_eq "receiving listener's status" $RC 3

# Both ways at once (no --send-only or --recv-only): the caller's bytes
# are lost, so it fails; the listener's reached the caller: its status
# is the session's, 3 (the session was aborted).
"$P2PCAT" -l bob < /dev/null > /dev/full 2> "$T/l.err" & lp=$!
printf hello | "$P2PCAT" bob > "$T/got" 2> "$T/c.err"
expect_peer_failed "caller, both ways" $? "$T/c.err" "$ENOSPC"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener's status, both ways" $RC 3

# A reader that stops early (head): the receiver's write fails with
# EPIPE, and the sender hears it.
"$P2PCAT" -l --send-only bob < "$T/100k" 2> "$T/l.err" & lp=$!
"$P2PCAT" --recv-only bob 2> "$T/c.err" | head -c 10 > /dev/null
wait_exit $lp 10 || fail "sender hung"
expect_peer_failed "sender to a reader that stopped" $RC "$T/l.err" \
    "the peer could not write its output: Broken pipe"
echo "caller sends to a full disk, both ways, a reader gone: 3"

# -k: the listener's stdout stays open across sessions, each write must
# work.  Two callers in turn both hear of the full disk; the listener
# goes on.
"$P2PCAT" -l -k --recv-only bob > /dev/full 2> "$T/l.err" & lp=$!
for i in 1 2; do
	printf 'x' | "$P2PCAT" --send-only bob 2> "$T/c.err"
	expect_peer_failed "caller $i of a -k listener" $? "$T/c.err" "$ENOSPC"
done
kill -0 $lp 2>/dev/null || fail "the -k listener ended: $(cat "$T/l.err")"
kill $lp; wait $lp
echo "-k: 3 for each caller"

# Commands: the data is delivered when the command has read what it
# wanted and exited 0.  Once the caller exits 0 the file is complete.
"$P2PCAT" -l --allow-any -c "sleep 0.3; cat > $T/cfile" svc < /dev/null 2> "$T/l.err" & lp=$!
"$P2PCAT" svc < "$T/100k" > /dev/null 2> "$T/c.err"
rc=$?
check_eq "caller to a command that worked ($(cat "$T/c.err"))" $rc 0
cmp -s "$T/cfile" "$T/100k" || fail "the command's file was not complete when the caller exited"
wait_exit $lp 10 || fail "listener hung"
check_eq "the command's listener" $RC 0
# A command that fails: the caller exits 3 and says how.
"$P2PCAT" -l --allow-any -c "cat > /dev/full" svc < /dev/null 2> "$T/l.err" & lp=$!
"$P2PCAT" svc < "$T/100k" > /dev/null 2> "$T/c.err"
expect_peer_failed "caller to a failing command" $? "$T/c.err" \
    "the peer's command exited with status 1"
wait_exit $lp 10 || fail "listener hung"
check_eq "the failing command's listener ($(cat "$T/l.err"))" $RC 3
grep -q "the command exited with status 1" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
# The caller's command: the same the other way round.
"$P2PCAT" -l --send-only bob < "$T/100k" 2> "$T/l.err" & lp=$!
"$P2PCAT" -c "cat > /dev/full" bob 2> "$T/c.err"
check_eq "caller with a failing command" $? 3
wait_exit $lp 10 || fail "sender hung"
expect_peer_failed "listener sending to a failing command" $RC "$T/l.err" \
    "the peer's command exited with status 1"
# A command that reads nothing and exits 0 chose so, as head(1) does.
"$P2PCAT" -l --allow-any -c "true" svc < /dev/null 2> "$T/l.err" & lp=$!
"$P2PCAT" svc < "$T/100k" > /dev/null 2> "$T/c.err"
rc=$?
check_eq "caller to a command that read nothing ($(cat "$T/c.err"))" $rc 0
wait_exit $lp 10 || fail "listener hung"
echo "commands: 0 once the command exited 0, else 3"
echo "delivered: ok"
