#!/bin/sh
# make bench, Firestore (issue 3): how long a caller's first byte takes to
# reach a listener polling at the default interval (4.5 s), through the
# Firestore test server on loopback; against the bound poll + 1 s.  Also
# the reads and writes each call spent.  Prints a table; asserts nothing.
. "$(dirname "$0")/lib.sh"
N=${BENCH_FS_RUNS:-10}
POLL=4.5
rm -f "$T/port"
python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port" --project bench \
    2> "$T/server.log" & SPID=$!
at_exit "kill $SPID 2>/dev/null"
wait_for 10 test -s "$T/port" || fail "fsserver.py did not start"
export FIRESTORE_EMULATOR_HOST=127.0.0.1:$(cat "$T/port") P2PCAT_SIGNAL=firestore:bench

"$P2PCAT" -l -k --recv-only bench > "$T/got" 2> "$T/l.err" & lp=$!
at_exit "kill $lp 2>/dev/null"
now() { date +%s.%N; }
printf '%-6s %12s %8s %8s\n' "call" "first byte s" "reads" "writes"
i=0
while [ $i -lt $N ]; do
	i=$((i + 1))
	# A random phase against the listener's polls (the calls would
	# otherwise all start just after a poll: the worst case).
	sleep "$(awk -v s="$i$$" -v p=$POLL 'BEGIN { srand(s); printf "%.2f", rand() * p }')"
	t0=$(now)
	echo "call $i" | "$P2PCAT" -v bench 2> "$T/c.err" > /dev/null &
	cp=$!
	wait_for 30 grep -q "^call $i\$" "$T/got" || fail "call $i: nothing arrived: $(cat "$T/c.err")"
	t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	wait $cp
	set -- $(sed -n 's/.*rendezvous: \([0-9]*\) reads*, \([0-9]*\) writes*.*/\1 \2/p' "$T/c.err")
	printf '%-6s %12s %8s %8s\n' "$i" "$t" "${1:-?}" "${2:-?}"
	echo "$t" >> "$T/times"
done
sort -n "$T/times" | awk -v p=$POLL '{ t[NR] = $1 } END {
	m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
	printf "first byte: median %.2f s, max %.2f s; bound (poll %.1f s + 1 s) %.1f s: %s\n",
	    m, t[NR], p, p + 1, t[NR] <= p + 1 ? "met" : "NOT met" }'
