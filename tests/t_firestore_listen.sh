#!/bin/sh
# t_firestore_listen.sh: the firestore: backend's Listen client (fslisten.c,
# grpc.c) against tests/fsserver.py, which breaks streams in the ways its
# /_test/listen switch offers: the server ends a stream (GOAWAY,
# RST_STREAM, grpc-status UNAVAILABLE or DEADLINE_EXCEEDED, silence), the
# connection drops, the store is gone for a minute; it sends junk (a message
# too large, one that is not protobuf, changes without end, changes for
# targets never added, an existence filter that disagrees).  Each time the
# listener starts a stream again and an offer written after the fault is
# still taken; junk costs bounded memory and time.  Where Listen cannot be
# used (UNIMPLEMENTED, no HTTP/2, an HTTP/1.1 proxy in the way) the backend
# polls, saying so once; -p
# (--poll) polls with Listen there.  wake_fd ends a wait at once in both
# ways; what p2pcat counts as billed is what the server bills.
. "$(dirname "$0")/lib.sh"
U=$SRCDIR/tests/unit_firestore
REST="python3 $SRCDIR/tests/firestore_rest.py"
command -v python3 >/dev/null || skip "no python3"
[ -x "$U" ] && [ -x "$P2PCAT" ] || fail "not built: run make all tests"
[ -x /usr/bin/time ] || skip "no /usr/bin/time (package time)"

act() { $REST control POST listen "$1" > /dev/null; }
# streams: Listen streams open on the server now.
streams() { $REST control GET listen | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["streams"]))'; }
listening() { [ "$(streams)" -ge "${1:-1}" ]; }
docs() { $REST dump | wc -l | tr -d ' '; }
# newid: a fresh document id.  (Not a counter: $(newid) runs in a subshell,
# so a counter never moved, and an offer written while one with the same id
# was still there was refused.)
newid() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# The silent stream takes its watchdog's 2 minutes: on a server of its
# own, from the start, checked at the end.
FS2=$T/fs2
python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port2" --project p2pcat-test \
    2>> "$T/server2.log" & SPID2=$!
at_exit 'kill $SPID2 2>/dev/null'
wait_for 10 test -s "$T/port2" || fail "second fsserver.py did not start"
P2=$(cat "$T/port2")
FIRESTORE_EMULATOR_HOST=127.0.0.1:$P2 UNIT_FS_VERBOSE=2 "$U" take quiet 1 200000 \
    > "$T/silent.out" 2> "$T/silent.err" & SILENT=$!
FS_PORT=$P2 wait_for 10 listening || fail "silent: no stream"
FS_PORT=$P2 $REST control POST listen '{"action":"silent"}' > /dev/null
SID=$(newid)
FIRESTORE_EMULATOR_HOST=127.0.0.1:$P2 "$U" offer quiet $SID 5150 120000 2>/dev/null || fail "silent: offer"

fs_serve
export P2PCAT_SIGNAL=firestore:p2pcat-test

# fault NAME JSON: a listener waits; the server does JSON to its stream;
# an offer written then must still be taken, in 20 s, in bounded memory.
fault() {
	$REST control POST reset '{}'
	UNIT_FS_VERBOSE=2 /usr/bin/time -f "maxrss %M" "$U" take bob 1 30000 \
	    > "$T/$1.out" 2> "$T/$1.err" & _p=$!
	wait_for 10 listening || fail "$1: no stream: $(cat "$T/$1.err")"
	act "$2"
	_id=$(newid)
	"$U" offer bob $_id abcd 60000 2> /dev/null || fail "$1: offer"
	wait_exit $_p 20 || fail "$1: offer not taken in 20 s: $(tail -5 "$T/$1.err")"
	check_eq "$1: listener ($(tail -3 "$T/$1.err"))" $RC 0
	check_eq "$1: offer taken" "$(cat "$T/$1.out")" "$_id abcd"
	check_eq "$1: documents left" "$(docs)" 0
	# One write, the claim: nothing else was taken for an offer.
	check_eq "$1: writes" "$(sed -n 's/^reads [0-9]* writes \([0-9]*\)$/\1/p' "$T/$1.err")" 1
	_kb=$(sed -n 's/^maxrss //p' "$T/$1.err")
	[ "$_kb" -le 65536 ] || fail "$1: $_kb KiB resident"
	grep -q "polling instead" "$T/$1.err" && fail "$1: fell back to polling"
	echo "$1: taken; $_kb KiB; $(grep -c 'listening to' "$T/$1.err") streams"
}
# ended NAME TEXT: the listener said its stream ended, and why.
ended() {
	grep -q "ended ($2" "$T/$1.err" || fail "$1: no \`ended ($2' in: $(cat "$T/$1.err")"
	grep -q "listening to inbox/bob/offers (resumed)" "$T/$1.err" ||
	    fail "$1: not resumed: $(cat "$T/$1.err")"
}
fault goaway '{"action":"goaway"}'
ended goaway "HTTP/2 stream"
fault rst '{"action":"rst"}'
ended rst "HTTP/2 stream 1 was not closed cleanly: INTERNAL_ERROR"
fault unavailable '{"action":"status","code":14}'
ended unavailable "grpc-status 14"
fault deadline '{"action":"status","code":4}'
ended deadline "grpc-status 4"
fault drop '{"action":"drop"}'
ended drop "HTTP/2 stream"
fault oversized '{"action":"oversized","bytes":67108864,"junk":262144}'
ended oversized "a message too large"
fault malformed '{"action":"malformed"}'
ended malformed "an undecodable message"
fault flood '{"action":"flood","count":-1}'
ended flood "more documents than a listener keeps"
fault wrong_target '{"action":"wrong_target"}'
grep -q "ended" "$T/wrong_target.err" && fail "wrong_target: the stream ended: $(cat "$T/wrong_target.err")"
fault filter '{"action":"filter"}'
[ "$(grep -c '^p2pcat: firestore: listening to inbox/bob/offers$' "$T/filter.err")" -eq 2 ] ||
    fail "filter: not listened anew without the token: $(cat "$T/filter.err")"

# Hostile documents in the inbox come by Listen too: each is skipped (and
# deleted: it is in our inbox), and the valid offer among them is taken.
$REST control POST reset '{}'
D=inbox
FUTURE='{"timestampValue": "2099-01-01T00:00:00.5Z"}'
BLOB='"blob":{"bytesValue":"AQ=="}'
TO='"to":{"stringValue":"dave"}'
EXP="\"expireAt\":$FUTURE"
plant_bad() {
	$REST plant $D/dave/offers "$(printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%02d' "$1")" "$2"
}
long() { head -c "$2" /dev/zero | tr '\0' "$1"; }
plant_bad 1 "{\"to\":{\"integerValue\":\"7\"},$BLOB,$EXP}"
plant_bad 2 "{$TO,\"blob\":{\"stringValue\":\"AQ==\"},$EXP}"
plant_bad 3 "{$TO,$BLOB,\"expireAt\":{\"stringValue\":\"2099-01-01T00:00:00Z\"}}"
plant_bad 4 "{$TO,$EXP}"
plant_bad 5 "{\"to\":{\"stringValue\":\"eve\"},$BLOB,$EXP}"
plant_bad 6 "{\"to\":{\"stringValue\":\"dave\\u0000\\u00ff\"},$BLOB,$EXP}"
plant_bad 7 "{\"to\":{\"mapValue\":{\"fields\":{\"x\":{\"stringValue\":\"dave\"}}}},$BLOB,$EXP}"
{ printf '{"to":{"stringValue":"'; long x 300000; printf '"},%s,%s}' "$BLOB" "$EXP"; } | plant_bad 8 -
plant_bad 9 "{$TO,\"blob\":{\"bytesValue\":\"$(head -c 5000 /dev/zero | base64 -w0)\"},$EXP}"
plant_bad 10 "{$TO,$BLOB,\"expireAt\":{\"timestampValue\":\"2020-01-01T00:00:00Z\"}}"
{ printf '{"to":{"stringValue":"eve"},%s,%s,"junk":{"stringValue":"' "$BLOB" "$EXP"; long y 900000; printf '"}}'; } | plant_bad 11 -
$REST plant $D/dave/offers notanofferid "{$TO,$BLOB,$EXP}"
ID9=ffffffffffffffffffffffffffffffff
$REST plant $D/dave/offers $ID9 "{$TO,\"blob\":{\"bytesValue\":\"q80=\"},$EXP}"
UNIT_FS_VERBOSE=1 "$U" take dave 1 10000 > "$T/h1.out" 2> "$T/h1.err" ||
    fail "hostile: the valid offer not taken: $(cat "$T/h1.err")"
check_eq "hostile: taken" "$(cat "$T/h1.out")" "$ID9 abcd"
# ... and what is left of the junk goes at the next listen.
UNIT_FS_VERBOSE=1 "$U" take dave 1 3000 >> "$T/h1.out" 2>> "$T/h1.err" &&
    fail "hostile: junk taken: $(cat "$T/h1.out")"
for w in "field to is not" "no valid blob" "no valid expireAt" "expired, deleting" "notanofferid': bad id"; do
	grep -q -- "$w" "$T/h1.err" || fail "hostile: no \`$w': $(cat "$T/h1.err")"
done
check_eq "hostile: junk left" "$(docs)" 0

# A sign-in token that expires: the stream is started anew with a fresh
# one before it does; one the server stops taking is renewed at once.
KEY=AIzaListen-key_0123456789
fs_serve --auth issued --api-key "$KEY" --token-lifetime 8
export FIREBASE_AUTH_EMULATOR_HOST=$FIRESTORE_EMULATOR_HOST
P2PCAT_API_KEY=$KEY UNIT_FS_VERBOSE=2 "$U" take bob 1 40000 > "$T/tok.out" 2> "$T/tok.err" & P=$!
wait_for 10 listening || fail "token: no stream: $(cat "$T/tok.err")"
wait_for 20 grep -q "renewing the token" "$T/tok.err" || fail "token: not renewed: $(cat "$T/tok.err")"
wait_for 10 listening || fail "token: no stream after the renewal: $(cat "$T/tok.err")"
_id=$(newid)
P2PCAT_API_KEY=$KEY "$U" offer bob $_id 0a 60000 2> /dev/null || fail "token: offer"
wait_exit $P 20 || fail "token: offer not taken: $(cat "$T/tok.err")"
check_eq "token: taken after the renewal" "$(cat "$T/tok.out")" "$_id 0a"
# Tokens for an hour; then the server forgets them under a live stream.
$REST control POST config '{"tokenLifetime":3600}'
$REST control POST expire_tokens '{}'
P2PCAT_API_KEY=$KEY UNIT_FS_VERBOSE=2 "$U" take bob 1 60000 > "$T/tok2.out" 2> "$T/tok2.err" & P=$!
wait_for 10 listening || fail "token: no stream: $(cat "$T/tok2.err")"
$REST control POST expire_tokens '{}'
act '{"action":"goaway"}'
# (UNAUTHENTICATED comes before our request: libcurl 7.88 may lose it, and
# then the stream is one with no answer after 10 s.)
wait_for 20 grep -q "grpc-status 16\|no answer within" "$T/tok2.err" ||
    fail "token: refusal not seen: $(cat "$T/tok2.err")"
_id=$(newid)
P2PCAT_API_KEY=$KEY "$U" offer bob $_id 0b 60000 2> /dev/null || fail "token: second offer"
wait_exit $P 30 || fail "token: offer after the refusal not taken: $(cat "$T/tok2.err")"
check_eq "token: taken after the refusal" "$(cat "$T/tok2.out")" "$_id 0b"
grep -q "polling instead" "$T/tok.err" "$T/tok2.err" && fail "token: fell back to polling"
unset FIREBASE_AUTH_EMULATOR_HOST
fs_serve

# The store gone for a minute (connections refused) under a p2pcat
# listener that was in sync: it says so once, keeps trying, says when the
# store is back, and an offer written while it was away is answered.
echo "hello, bob" > "$T/to-bob"
echo "hello, alice" > "$T/to-alice"
$REST control POST reset '{}'
"$P2PCAT" -l bob < "$T/to-alice" > "$T/bob.got" 2> "$T/l.err" & LP=$!
wait_for 10 listening || fail "outage: no stream"
kill "$SPID"; wait "$SPID"; SPID=
wait_for 30 grep -q "the store does not answer" "$T/l.err" ||
    fail "outage: not said: $(cat "$T/l.err")"
sleep 60	# the outage is the condition
exited $LP && fail "outage: the listener gave up: $(cat "$T/l.err")"
fs_serve --port "$FS_PORT"
"$P2PCAT" -v bob < "$T/to-bob" > "$T/alice.got" 2> "$T/c.err" & CP=$!
wait_exit $CP 60 || fail "outage: caller hung: $(tail -5 "$T/c.err")"
check_eq "outage: caller status ($(tail -3 "$T/c.err"))" $RC 0
wait_exit $LP 30 || fail "outage: listener hung: $(cat "$T/l.err")"
check_eq "outage: listener status ($(cat "$T/l.err"))" $RC 0
check_eq "outage: to bob" "$(cat "$T/bob.got")" "hello, bob"
check_eq "outage: to alice" "$(cat "$T/alice.got")" "hello, alice"
check_eq "outage: said once" "$(grep -c "the store does not answer" "$T/l.err")" 1
check_eq "outage: recovery said once" "$(grep -c "the store answers again" "$T/l.err")" 1

# What p2pcat counts is what the server bills: a call, both sides.
$REST control POST reset '{}'
"$P2PCAT" -v -l bob < "$T/to-alice" > "$T/bob.got" 2> "$T/l.err" & LP=$!
wait_for 10 listening || fail "billing: no stream"
"$P2PCAT" -v bob < "$T/to-bob" > "$T/alice.got" 2> "$T/c.err" || fail "billing: call"
wait_exit $LP 30 || fail "billing: listener hung"
rc=$(reads_of "$T/c.err")
rl=$(reads_of "$T/l.err")
check_eq "billed reads: p2pcat's ($rc + $rl) against the server's" $((rc + rl)) "$($REST reads /)"
[ "$rc" -le 10 ] && [ "$rl" -le 10 ] || fail "a call's reads: caller $rc, listener $rl (want 10 at most)"
echo "a call: caller $rc billed reads, listener $rl"

# Listen answers UNIMPLEMENTED, or there is no HTTP/2: polling, said once.
for mode in unimplemented no_h2; do
	$REST control POST reset '{}'
	$REST control POST config "{\"listen\":\"$mode\"}"
	UNIT_FS_VERBOSE=1 "$U" take bob 2 60000 > "$T/$mode.out" 2> "$T/$mode.err" & P=$!
	"$U" offer bob "$(newid)" 01 60000 2> /dev/null || fail "$mode: first offer"
	wait_for 30 grep -q "polling instead" "$T/$mode.err" || fail "$mode: no fallback said: $(cat "$T/$mode.err")"
	"$U" offer bob "$(newid)" 02 60000 2> /dev/null || fail "$mode: second offer"
	wait_exit $P 30 || fail "$mode: offers not taken by polling: $(cat "$T/$mode.err")"
	check_eq "$mode: taken" "$(cut -c34- "$T/$mode.out" | sort | tr '\n' ' ')" "01 02 "
	check_eq "$mode: said once" "$(grep -c 'polling instead' "$T/$mode.err")" 1
done
$REST control POST reset '{}'
# An HTTP/1.1 proxy in the way (http_proxy): polling through it, said once.
python3 "$SRCDIR/tests/httpproxy.py" "$T/proxyport" & PXP=$!
at_exit 'kill $PXP 2>/dev/null'
wait_for 10 test -s "$T/proxyport" || fail "httpproxy.py did not start"
http_proxy=http://127.0.0.1:$(cat "$T/proxyport") UNIT_FS_VERBOSE=1 "$U" take bob 1 20000 \
    > "$T/proxy.out" 2> "$T/proxy.err" & P=$!
wait_for 10 grep -q "polling instead" "$T/proxy.err" || fail "proxy: no fallback said: $(cat "$T/proxy.err")"
_id=$(newid)
"$U" offer bob $_id 03 60000 2> /dev/null || fail "proxy: offer"
wait_exit $P 20 || fail "proxy: offer not taken: $(cat "$T/proxy.err")"
check_eq "proxy: taken" "$(cat "$T/proxy.out")" "$_id 03"
check_eq "proxy: said once" "$(grep -c 'polling instead' "$T/proxy.err")" 1
kill $PXP

# -p (--poll) polls, with Listen there: no stream, lists on the server.
# listed N: the server has had N more lists of bob's offers than at $L0.
listed() { [ "$($REST count GET /inbox/bob/offers)" -ge $((L0 + $1)) ]; }
L0=$($REST count GET /inbox/bob/offers)
"$U" -p 300 take bob 1 3000 > /dev/null 2> "$T/poll.err" & P=$!
wait_for 10 listed 3 || fail "the polling listener did not list"
check_eq "streams of a polling listener" "$(streams)" 0
wait_exit $P 10
L0=$($REST count GET /inbox/bob/offers)
"$P2PCAT" -l --poll 0.3 bob < /dev/null > /dev/null 2>&1 & P=$!
wait_for 10 listed 3 || fail "p2pcat -l --poll did not list"
check_eq "streams of p2pcat -l --poll" "$(streams)" 0
kill $P; wait $P 2>/dev/null

# wake_fd ends a wait at once (the pipe is written after 1 s), by Listen
# and by polling, for an offer and for an answer.
for poll in "" "-p 4500"; do
	for w in listen answer; do
		"$U" $poll wake $w 1000 > "$T/wake.out" 2> "$T/wake.err" ||
		    fail "wake $w $poll: $(cat "$T/wake.err")"
		set -- $(cat "$T/wake.out")
		check_eq "wake $w $poll: result" "$1" 1
		[ "$2" -ge 1000 ] && [ "$2" -lt 2500 ] || fail "wake $w $poll: after $2 ms"
	done
done

# The silent stream: after its 2 minutes it is listened to anew, and the
# offer written into the silence is taken.
wait_exit $SILENT 200 || fail "silent: offer not taken: $(cat "$T/silent.err")"
check_eq "silent: listener" $RC 0
check_eq "silent: offer taken" "$(cat "$T/silent.out")" "$SID 5150"
grep -q "silent for 1[2-9][0-9] s, listening anew" "$T/silent.err" ||
    fail "silent: no watchdog: $(cat "$T/silent.err")"
exit 0
