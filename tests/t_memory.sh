#!/bin/sh
# Bounded memory: a fast sender and a reader that stops reading.  Flow
# control must stall the sender (it stops taking stdin), and neither side
# may hold more than 64 MiB resident; then everything arrives intact.
. "$(dirname "$0")/lib.sh"
[ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
export P2PCAT_SIGNAL="dir:$T/rv"
LIMIT_KB=65536

randfile "$T/src" 300
mkfifo "$T/out"
/usr/bin/time -f %M -o "$T/rss.l" "$P2PCAT" -l --recv-only m > "$T/out" 2> "$T/l.err" & lp=$!
/usr/bin/time -f %M -o "$T/rss.c" "$P2PCAT" --send-only m < "$T/src" 2> "$T/c.err" & cp=$!
cat "$T/out" > "$T/got" & rp=$!
# /usr/bin/time starts p2pcat: wait until it has.
wait_for 10 pgrep -P $cp p2pcat > /dev/null || fail "no caller process"
caller=$(pgrep -P $cp p2pcat)

# Let the transfer start, then freeze the reader.
wait_for 20 sh -c "[ \$(stat -c %s '$T/got' 2>/dev/null || echo 0) -gt 1048576 ]" ||
	fail "transfer did not start: $(cat "$T/c.err")"
kill -STOP $rp
# The caller's stdin position stops moving once the windows are full.
pos() { awk '/^pos:/ { print $2 }' "/proc/$caller/fdinfo/0" 2>/dev/null || echo done; }
stalled() {
	a=$(pos)
	sleep 0.5
	[ "$a" = "$(pos)" ] && [ "$a" != done ]
}
wait_for 30 stalled || fail "the sender never stalled: flow control does not hold it back"
held=$(pos)
echo "sender stalled after reading $held of $(stat -c %s "$T/src") bytes"
[ "$held" -lt 200000000 ] || fail "the sender read $held bytes before stalling"
kill -CONT $rp

wait_exit $cp 120 || fail "caller hung"
check_eq "caller status ($(cat "$T/c.err"))" $RC 0
wait_exit $lp 30 || fail "listener hung"
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
wait $rp
check_eq "sha256" "$(sha "$T/got")" "$(sha "$T/src")"
for side in l c; do
	kb=$(tail -n 1 "$T/rss.$side")
	echo "peak RSS ($side): $kb KiB"
	[ "$kb" -lt $LIMIT_KB ] || fail "peak RSS of $side is $kb KiB, over 64 MiB"
done
