#!/bin/sh
# Progress: --progress shows bytes each way, rates and time on stderr,
# at most twice a second (a line each when stderr is no terminal); -v on
# a terminal draws it in place and clears it; -v ends with the exact
# bytes each way.  Data goes untouched.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
randfile "$T/a" 1
randfile "$T/b" 1
# trickle: a, a pause, b: a transfer that lasts over a second.
trickle() { cat "$T/a"; sleep 1.5; cat "$T/b"; }
cat "$T/a" "$T/b" > "$T/ab"

"$P2PCAT" -l --recv-only -v p > "$T/got" 2> "$T/l.err" & lp=$!
start=$(date +%s.%N)
trickle | "$P2PCAT" --progress -v --send-only p 2> "$T/c.err"
rc=$?
check_eq "sender's status ($(cat "$T/c.err"))" $rc 0
end=$(date +%s.%N)
wait_exit $lp 10 || fail "receiver hung"
check_eq "receiver's status" $RC 0
cmp -s "$T/got" "$T/ab" || fail "data differs"
# The status lines: a line each here, stderr being a file.
grep -E '^p2pcat: sent [0-9.]+ (B|KiB|MiB) \([0-9.]+ (B|KiB|MiB)/s\), received 0 B \(0 B/s\), 0:00:0[0-9]$' \
    "$T/c.err" > "$T/lines" || fail "no status line: $(cat "$T/c.err")"
n=$(wc -l < "$T/lines")
max=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%d", 2 * (e - s) + 1 }')
[ "$n" -ge 2 ] && [ "$n" -le "$max" ] || fail "$n status lines in $(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }') s"
grep -q "sent 2097152 bytes (2.00 MiB, " "$T/c.err" || fail "sender's summary: $(cat "$T/c.err")"
grep -q "received 0 bytes (0 B, 0 B/s)" "$T/c.err" || fail "sender's summary: $(cat "$T/c.err")"
grep -q "received 2097152 bytes (2.00 MiB, " "$T/l.err" || fail "receiver's summary: $(cat "$T/l.err")"
# -v alone, stderr a file: no status line.
grep -Eq "^p2pcat: ([0-9a-f]{8}: )?sent [0-9.]* [KMG]*i*B \(" "$T/l.err" && fail "the receiver drew a status line: $(cat "$T/l.err")"
echo "--progress: $n lines in $(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }') s, bytes exact"

# -v with stderr on a terminal (script(1) makes one) and the data on
# pipes: in place (CR, then erase to the end of the line), cleared
# before the last messages.
"$P2PCAT" -l --recv-only p > "$T/got" 2> "$T/l.err" & lp=$!
export T P2PCAT
script -qec 'sh -c '"'"'{ cat "$T/a"; sleep 1.5; cat "$T/b"; } | "$P2PCAT" -v --send-only p > /dev/null'"'" \
    "$T/typescript" > /dev/null < /dev/null || fail "the sender under script failed: $(cat "$T/typescript")"
wait_exit $lp 10 || fail "receiver hung"
cmp -s "$T/got" "$T/ab" || fail "data differs (terminal)"
python3 - "$T/typescript" <<'PY' || fail "terminal output: $(cat -v "$T/typescript")"
import re, sys
t = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
drawn = re.findall(r"\rp2pcat: sent [^\r\n]*\x1b\[K", t)
assert len(drawn) >= 2, "status line drawn %d times" % len(drawn)
# Cleared (CR, erase) before the summary, which is a line of its own.
assert re.search(r"\r\x1b\[Kp2pcat: sent 2097152 bytes", t), "not cleared before the summary"
print("-v on a terminal: drawn %d times in place, then cleared" % len(drawn))
PY
echo "progress: ok"
