#!/bin/sh
# make bench, Firestore (issue 9): how long a caller's first byte takes to
# reach a listener when both listen (Firestore's Listen) instead of polling,
# through the Firestore test server on loopback with 50 ms added to every
# REST request and every Listen message (latencyMs); 20 calls at random
# moments to one listener (-k).  Also the reads each call was billed and
# its writes.  Prints a table; asserts nothing.
. "$(dirname "$0")/lib.sh"
N=${BENCH_FS_RUNS:-20}
fs_serve --project bench --latency-ms 50
export P2PCAT_SIGNAL=firestore:bench

"$P2PCAT" -l -k --recv-only bench > "$T/got" 2> "$T/l.err" & lp=$!
at_exit "kill $lp 2>/dev/null"
now() { date +%s.%N; }
# arrived LINE: the listener's output holds LINE (checked every 10 ms).
arrived() {
	_n=3000
	while [ $_n -gt 0 ]; do
		grep -qx "$1" "$T/got" && return 0
		sleep 0.01
		_n=$((_n - 1))
	done
	return 1
}
printf '%-6s %12s %8s %8s\n' "call" "first byte s" "reads" "writes"
i=0
while [ $i -lt $N ]; do
	i=$((i + 1))
	# At a random moment, not in step with anything the listener does.
	sleep "$(awk -v s="$i$$" 'BEGIN { srand(s); printf "%.2f", rand() * 2 }')"
	t0=$(now)
	echo "call $i" | "$P2PCAT" -v bench 2> "$T/c.err" > /dev/null &
	cp=$!
	arrived "call $i" || fail "call $i: nothing arrived: $(cat "$T/c.err")"
	t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	wait $cp
	r=$(reads_of "$T/c.err")
	w=$(writes_of "$T/c.err")
	printf '%-6s %12s %8s %8s\n' "$i" "$t" "${r:-?}" "${w:-?}"
	echo "$t" >> "$T/times"
done
sort -n "$T/times" | awk '{ t[NR] = $1 } END {
	m = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
	printf "first byte over %d calls: median %.2f s, range %.2f-%.2f s (targets: median 0.8 s, max 1.5 s)\n",
	    NR, m, t[1], t[NR] }'
