# Sourced after lib.sh by tests that run several users, each with its own
# HOME and keys, on the dir: rendezvous $T/rv.
export P2PCAT_SIGNAL="dir:$T/rv"

# as USER CMD...: run CMD as USER (in the foreground).
as() {
	_u=$1; shift
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" "$@"
}
key_of() { as "$1" "$P2PCAT" --id 2>/dev/null; }
fp_of() { as "$1" "$P2PCAT" -v --id 2>&1 >/dev/null | sed -n 's/^p2pcat: fingerprint //p'; }
cfg() { echo "$T/$1/.config/p2pcat"; }

# Extra VAR=VALUE words of environment for the next listeners (LENV) and
# callers (CENV).
LENV= CENV=
# listen USER ARGS... NAME: USER listens in the background, stdin $T/lin
# (or empty), stdout $T/l.out, stderr $T/l.err; sets LP.
listen() {
	_u=$1; shift
	[ -e "$T/lin" ] || : > "$T/lin"
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" $LENV "$P2PCAT" -l "$@" \
		< "$T/lin" > "$T/l.out" 2> "$T/l.err" &
	LP=$!
}
# call USER ARGS... NAME: USER calls, stdin $T/cin, at most 30 s; sets CRC
# and CSECS (how long it took, whole seconds).
call() {
	_u=$1; shift
	[ -e "$T/cin" ] || : > "$T/cin"
	_t0=$(date +%s)
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" $CENV "$P2PCAT" "$@" \
		< "$T/cin" > "$T/c.out" 2> "$T/c.err" &
	wait_exit $! 30 || fail "caller $_u $* hung: $(cat "$T/c.err")"
	CRC=$RC
	CSECS=$(( $(date +%s) - _t0 ))
}
# listener_done SECS: the listener exits within SECS; sets LRC.
listener_done() {
	wait_exit $LP "$1" || fail "listener did not exit: $(cat "$T/l.err"); caller: $(cat "$T/c.err")"
	LRC=$RC
}
# stop_listener: a listener still waiting for callers is interrupted.
stop_listener() {
	exited $LP && fail "the listener exited: $(cat "$T/l.err")"
	kill -TERM $LP
	listener_done 5
	check_eq "listener status after SIGTERM ($(cat "$T/l.err"))" $LRC 143
}
# served WHAT: both exited 0.
served() {
	listener_done 10
	check_eq "$1: caller status ($(cat "$T/c.err"))" $CRC 0
	check_eq "$1: listener status ($(cat "$T/l.err"))" $LRC 0
}
no_output() { [ ! -s "$1" ] || fail "$2: \`$(head -c 200 "$1")' was written"; }
has() { grep -qF -- "$2" "$1" || fail "no \`$2' in: $(cat "$1")"; }
hasnt() { ! grep -qF -- "$2" "$1" || fail "\`$2' in: $(cat "$1")"; }
