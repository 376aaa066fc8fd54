#!/bin/sh
# fuzz.sh SECONDS TARGET...: run each libFuzzer target (tests/fuzz_NAME)
# for SECONDS on its seed corpus tests/fuzz/NAME/, one after the other.
# What a target learns goes to $FUZZ_WORK/NAME (default under $TMPDIR;
# kept, so later runs start from it), never into the seeds.  A crash, a
# leak, a sanitizer report or an input slower than FUZZ_TIMEOUT seconds
# fails the run: the input is left in $FUZZ_WORK/NAME-crash-* (-leak-*,
# -timeout-*), to go into the seeds once fixed.  A target without its
# seed corpus tests/fuzz/NAME/ fails too.  The last line is
# `N targets, M failed'.
set -u
[ $# -ge 1 ] || { echo "usage: fuzz.sh SECONDS TARGET..." >&2; exit 1; }
cd "$(dirname "$0")/.." || exit 1
secs=$1
shift
WORK=${FUZZ_WORK:-${TMPDIR:-/tmp}/p2pcat-fuzz}
mkdir -p "$WORK" || exit 1
n=0 failed=
for t in "$@"; do
	name=${t##*/fuzz_}
	n=$((n + 1))
	mkdir -p "$WORK/$name"
	seeds=tests/fuzz/$name
	if ! [ -d "$seeds" ]; then
		# Every target has its seeds: without them a run proves little.
		failed="$failed fuzz_$name"
		echo "FAIL fuzz_$name: no seed corpus $seeds"
		continue
	fi
	log=$WORK/$name.log
	# Only the first directory is written to: the work corpus.  stderr
	# (the targets' diagnostics) is closed; reports still get through.
	"./$t" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
	    -close_fd_mask=2 -print_final_stats=1 \
	    -artifact_prefix="$WORK/$name-" "$WORK/$name" $seeds \
	    >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "PASS fuzz_$name: ${runs:-?} runs in ${secs}s, $cov"
	else
		failed="$failed fuzz_$name"
		echo "FAIL fuzz_$name (exit $rc); its log: $log"
		grep -E '^(==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' "$log" |
		    head -n 20 | sed 's/^/    /'
	fi
done
nf=$(echo $failed | wc -w)
echo "$n targets, $nf failed${failed:+:$failed}"
[ -z "$failed" ]
