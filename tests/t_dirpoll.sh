#!/bin/sh
# The dir: rendezvous where inotify cannot be had (here: a user namespace
# allowed no inotify instances): the listener says so under -v, looks
# every 50 ms instead, and a call goes through.
. "$(dirname "$0")/lib.sh"
command -v unshare >/dev/null || skip "no unshare"
unshare -U -r sh -c 'echo 0 > /proc/sys/user/max_inotify_instances' 2>/dev/null ||
	skip "cannot limit inotify in a user namespace here"
export P2PCAT_SIGNAL="dir:$T/rv"
unshare -U -r sh -c 'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"' sh \
    "$P2PCAT" -l -v --recv-only bob > "$T/got" 2> "$T/l.err" & lp=$!
wait_for 10 grep -qs "listening as" "$T/l.err" || fail "listener did not start: $(cat "$T/l.err")"
grep -q "no inotify (.*): looking for rendezvous messages every 50 ms" "$T/l.err" ||
	fail "no word of polling: $(cat "$T/l.err")"
echo polled | "$P2PCAT" -w 10 bob 2> "$T/c.err" || fail "caller failed: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener's status ($(cat "$T/l.err"))" $RC 0
check_eq "listener got" "$(cat "$T/got")" polled

# With inotify, -v -v says how often it looks anyway.
"$P2PCAT" -l -v -v --recv-only carol > /dev/null 2> "$T/i.err" & lp=$!
wait_for 10 grep -qs "listening as" "$T/i.err" || fail "listener did not start: $(cat "$T/i.err")"
grep -q "no inotify" "$T/i.err" && fail "inotify missing here: $(cat "$T/i.err")"
grep -q "inotify, and looking every 1000 ms" "$T/i.err" || fail "no word of inotify: $(cat "$T/i.err")"
kill -TERM $lp
wait $lp
echo "dirpoll: ok"
