#!/bin/sh
# The test runner: every tests/unit_* binary and tests/t_*.sh script.
# A test exits 0 (pass), 77 (skip, with its reason on stderr) or anything
# else (fail).  The last line is `N passed, M failed, K skipped'.
set -u
cd "$(dirname "$0")/.." || exit 1
SRCDIR=$(pwd)
P2PCAT=$SRCDIR/p2pcat
export SRCDIR P2PCAT
LOGDIR=${TMPDIR:-/tmp}/p2pcat-tests.$$
mkdir -p "$LOGDIR"
pass=0 fail=0 skip=0
failed=

# Optional filter: run.sh PATTERN runs only tests whose name contains it.
filter=${1:-}

# In a SANITIZE=1 build, ASan, LSan and UBSan reports go to files here, so
# that one from any process a test starts fails the test, even where the
# test expects that process to fail, or ignores it.
SANDIR=$LOGDIR/sanitizer
mkdir -p "$SANDIR"
chmod 1777 "$SANDIR"	# processes that tests run as other users report too
chmod 0711 "$LOGDIR"
san="log_path=$SANDIR/report:exitcode=86"
export ASAN_OPTIONS="$san:detect_leaks=1:print_legend=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="$san:print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

for t in tests/unit_* tests/t_*.sh; do
	case $t in *.c|*.d|*.o) continue ;; esac
	[ -x "$t" ] || [ "${t%.sh}" != "$t" ] || continue
	name=${t#tests/}
	case $name in *"$filter"*) ;; *) continue ;; esac
	start=$(date +%s)
	case $t in
	*.sh) timeout -k 10 900 sh "$t" >"$LOGDIR/$name.log" 2>&1 ;;
	*)    timeout -k 10 300 "./$t" >"$LOGDIR/$name.log" 2>&1 ;;
	esac
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ -n "$(ls "$SANDIR")" ]; then
		{ cat "$SANDIR"/*; echo "FAIL: sanitizer reports above:"
		  grep -h '^SUMMARY' "$SANDIR"/*; } >>"$LOGDIR/$name.log"
		rm -f "$SANDIR"/*
		rc=86
	fi
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "PASS $name (${secs}s)"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$LOGDIR/$name.log")"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL $name (exit $rc, ${secs}s); last lines of its log:"
		tail -n 25 "$LOGDIR/$name.log" | sed 's/^/    /'
	fi
done
[ -n "$failed" ] && echo "failed:$failed (logs in $LOGDIR)"
[ -z "$failed" ] && rm -rf "$LOGDIR"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
