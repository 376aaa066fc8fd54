#!/bin/sh
# p2pcat itself over the firestore: rendezvous, against tests/fsserver.py:
# a message each way through the emulator (owner token), then through
# anonymous sign-in with an API key named in the config file.  Each time:
# the data intact, status 0, the store left empty, the caller's reads
# within a connection attempt's budget, and no secret in -v -v output.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "no python3"
[ -f "$SRCDIR/tests/fsserver.py" ] || skip "no tests/fsserver.py"
[ -x "$P2PCAT" ] || fail "no $P2PCAT: run make"
REST="python3 $SRCDIR/tests/firestore_rest.py"

# transfer WHAT: "hello, bob" to a listener and "hello, alice" back.
transfer() {
	echo "hello, bob" > "$T/to-bob"
	echo "hello, alice" > "$T/to-alice"
	"$P2PCAT" -v -v -l --poll 0.2 bob < "$T/to-alice" > "$T/bob.got" \
	    2> "$T/l.err" & lp=$!
	"$P2PCAT" -v -v bob < "$T/to-bob" > "$T/alice.got" 2> "$T/c.err" & cp=$!
	wait_exit $cp 60 || fail "$1: caller hung: $(tail -5 "$T/c.err")"
	crc=$RC
	wait_exit $lp 30 || fail "$1: listener hung: $(tail -5 "$T/l.err")"
	check_eq "$1: caller status ($(tail -3 "$T/c.err"))" $crc 0
	check_eq "$1: listener status ($(tail -3 "$T/l.err"))" $RC 0
	check_eq "$1: to bob" "$(cat "$T/bob.got")" "hello, bob"
	check_eq "$1: to alice" "$(cat "$T/alice.got")" "hello, alice"
	check_eq "$1: documents left" "$($REST dump | wc -l | tr -d ' ')" 0
	r=$(reads_of "$T/c.err")
	[ -n "$r" ] && [ "$r" -ge 1 ] && [ "$r" -le 60 ] ||
	    fail "$1: caller's reads \`$r' (want 1..60)"
}

export P2PCAT_SIGNAL=firestore:p2pcat-test
fs_serve
transfer "emulator"
grep -q "emulator owner" "$T/c.err" || fail "emulator: owner token not used"

# The store goes away under a listener that has polled it (the server
# stops: connections refused) and comes back on the same port: the
# listener says both, once each, keeps listening, then serves a caller.
"$P2PCAT" -l --poll 0.2 bob < "$T/to-alice" > "$T/bob.got" 2> "$T/l.err" & lp=$!
polled() { $REST control GET log | grep -q '"GET".*inbox/bob/offers'; }
wait_for 10 polled || fail "outage: the listener did not poll: $(cat "$T/l.err")"
kill "$SPID"; wait "$SPID"; SPID=
wait_for 30 grep -q "the store does not answer" "$T/l.err" ||
	fail "outage: not reported: $(cat "$T/l.err")"
exited $lp && fail "outage: the listener gave up: $(cat "$T/l.err")"
fs_serve --port "$FS_PORT"
wait_for 60 grep -q "the store answers again" "$T/l.err" ||
	fail "outage: recovery not reported: $(cat "$T/l.err")"
"$P2PCAT" bob < "$T/to-bob" > "$T/alice.got" 2> "$T/c.err" & cp=$!
wait_exit $cp 60 || fail "outage: caller hung: $(tail -5 "$T/c.err")"
check_eq "outage: caller status ($(cat "$T/c.err"))" $RC 0
wait_exit $lp 30 || fail "outage: listener hung: $(cat "$T/l.err")"
check_eq "outage: listener status ($(cat "$T/l.err"))" $RC 0
check_eq "outage: to bob" "$(cat "$T/bob.got")" "hello, bob"
check_eq "outage: to alice" "$(cat "$T/alice.got")" "hello, alice"
check_eq "outage: lines on the listener's stderr" "$(wc -l < "$T/l.err" | tr -d ' ')" 2
echo "outage: $(tr '\n' ' ' < "$T/l.err")"

# API key from the config file; the server accepts only its own tokens.
unset P2PCAT_SIGNAL
KEY=AIzaE2e-key_9876543210
fs_serve --auth issued --api-key "$KEY"
export FIREBASE_AUTH_EMULATOR_HOST=$FIRESTORE_EMULATOR_HOST
mkdir -p "$XDG_CONFIG_HOME/p2pcat"
printf '%s\n' "$KEY" > "$XDG_CONFIG_HOME/p2pcat/firebase-key"
chmod 600 "$XDG_CONFIG_HOME/p2pcat/firebase-key"
printf 'signal = firestore:p2pcat-test\napi-key-file = %s\n' \
    "$XDG_CONFIG_HOME/p2pcat/firebase-key" > "$XDG_CONFIG_HOME/p2pcat/config"
transfer "api key"
grep -q "signed in anonymously\|cached sign-in" "$T/c.err" || fail "api key: no sign-in"
for tok in "$KEY" $(python3 -c 'import json,sys
for f in sys.argv[1:]:
    d = json.load(open(f)); print(d["idToken"]); print(d["refreshToken"])' \
    "$XDG_CACHE_HOME"/p2pcat/firestore-*.json); do
	! grep -qF -- "$tok" "$T/c.err" "$T/l.err" || fail "a secret in -v -v output"
done
check_eq "owner tokens used" "$($REST control GET log | grep -c '"auth": "owner"')" 0
exit 0
