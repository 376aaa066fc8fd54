#!/bin/sh
# t_firestore.sh: the firestore: rendezvous backend (firestore.c) over REST
# against the local Firestore stand-in tests/fsserver.py, through
# tests/unit_firestore (a small client of the sig_* API; -p forces REST
# polling, which Listen falls back to) and tests/firestore_rest.py (raw REST
# and the server's /_test/ switches).  Listen has t_firestore_listen.sh.
. "$(dirname "$0")/lib.sh"
U=$SRCDIR/tests/unit_firestore
REST="python3 $SRCDIR/tests/firestore_rest.py"
[ -x "$U" ] || skip "tests/unit_firestore is not built"
command -v python3 >/dev/null || skip "no python3"
[ -f "$SRCDIR/tests/fsserver.py" ] || skip "no tests/fsserver.py"

ID1=0123456789abcdef0123456789abcdef
ID2=fedcba9876543210fedcba9876543210
ID3=00000000000000000000000000000003
ID9=ffffffffffffffffffffffffffffffff
D=inbox

docs() { $REST dump | wc -l | tr -d ' '; }
reset() { $REST control POST reset '{}'; }
fault() { $REST control POST faults "$1"; }
# run NAME CMD...: run the client, stdout to $T/NAME.out, stderr to $T/NAME.err; RC.
run() {
	_n=$1; shift
	UNIT_FS_VERBOSE=${V:-0} "$U" "$@" >"$T/$_n.out" 2>"$T/$_n.err"; RC=$?
}

fs_serve

# The long one first, on a server of its own: a caller's 280 s wait.
python3 "$SRCDIR/tests/fsserver.py" --port 0 --port-file "$T/port2" \
    2>>"$T/server2.log" &
SPID2=$!
at_exit 'kill $SPID2 2>/dev/null'
wait_for 10 test -s "$T/port2" || fail "second fsserver.py did not start"
FIRESTORE_EMULATOR_HOST=127.0.0.1:$(cat "$T/port2") \
    "$U" -p 4500 waitans bob $ID3 280000 >"$T/budget.out" 2>"$T/budget.err" &
BUDGET_PID=$!

# The offline checks (bad URLs, no server listening -> "cannot reach").
run offline
[ $RC -eq 0 ] || { cat "$T/offline.err" >&2; fail "offline checks"; }
errhas offline "cannot reach 127.0.0.1:"

# Round trip: a listener (forked) and a caller meet; the store ends empty.
reset
run rt -p 200 roundtrip bob
[ $RC -eq 0 ] || { cat "$T/rt.err" >&2; fail "round trip"; }
check_eq "round trip" "$(cat "$T/rt.out")" "roundtrip ok"
check_eq "documents after a round trip" "$(docs)" 0

# Offer, then the listener consumes it: store empty.  Blob is binary-clean.
reset
run o1 offer bob $ID1 00ff10fe 60000
[ $RC -eq 0 ] || fail "offer"
check_eq "store after an offer" "$($REST dump)" "$D/bob/offers/$ID1"
check_eq "offer's to" "$($REST field $D/bob/offers/$ID1 to)" '{"stringValue": "bob"}'
check_eq "offer's blob" "$($REST field $D/bob/offers/$ID1 blob)" '{"bytesValue": "AP8Q/g=="}'
$REST field $D/bob/offers/$ID1 expireAt | grep -q '"timestampValue": "20' ||
    fail "offer without expireAt"
run l1 -p 200 listen bob 5000
[ $RC -eq 0 ] || fail "listen: exit $RC"
check_eq "offer taken" "$(cat "$T/l1.out")" "$ID1 00ff10fe"
check_eq "store after consuming" "$(docs)" 0

# Answer, then the caller takes it: store empty.
run a1 answer bob $ID1 c0ffee 60000
[ $RC -eq 0 ] || fail "answer"
check_eq "store after an answer" "$($REST dump)" "$D/bob/answers/$ID1"
check_eq "answer's name" "$($REST field $D/bob/answers/$ID1 name)" '{"stringValue": "bob"}'
run w1 -p 4500 waitans bob $ID1 5000
[ $RC -eq 0 ] || fail "waitans: exit $RC"
check_eq "answer taken" "$(cat "$T/w1.out")" "c0ffee"
check_eq "store after taking the answer" "$(docs)" 0

# Withdraw and unanswer delete what was written.
run o2 offer bob $ID2 01 60000
run a2 answer bob $ID2 02 60000
check_eq "two documents" "$(docs)" 2
run wd withdraw bob $ID2
check_eq "store after withdraw" "$(docs)" 0
run a3 answer carol $ID3 03 60000
run ua unanswer carol $ID3
check_eq "store after unanswer" "$(docs)" 0

# Creation never overwrites: the second offer with an id fails cleanly.
reset
run dup dup carol
[ $RC -eq 0 ] || { cat "$T/dup.err" >&2; fail "dup"; }
errhas dup "already exists"
check_eq "first offer kept" \
    "$($REST field $D/carol/offers/00112233445566778899aabbccddeeff blob)" \
    '{"bytesValue": "Zmlyc3Q="}'
run wd2 withdraw carol 00112233445566778899aabbccddeeff
check_eq "store after dup" "$(docs)" 0

# Expired offers are ignored and deleted; a live one next to them is taken.
reset
PAST='{"timestampValue": "2020-01-01T00:00:00Z"}'
FUTURE='{"timestampValue": "2099-01-01T00:00:00.5Z"}'
$REST plant $D/dave/offers $ID1 "{\"to\":{\"stringValue\":\"dave\"},\"blob\":{\"bytesValue\":\"AQ==\"},\"expireAt\":$PAST}"
run l2 -p 200 listen dave 1000
check_eq "listen with only an expired offer" "$RC" 1
check_eq "expired offer deleted" "$(docs)" 0

# Hostile documents: each is skipped (and deleted: it is in our inbox),
# and the valid offer planted next to them is still taken.
reset
# plant_bad N FIELDS: a bad offer with id aaa...N (FIELDS - from stdin).
plant_bad() {
	$REST plant $D/dave/offers "$(printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%02d' "$1")" "$2"
}
# long STR N: STR repeated N times.
long() { head -c "$2" /dev/zero | tr '\0' "$1"; }
BLOB='"blob":{"bytesValue":"AQ=="}'
TO='"to":{"stringValue":"dave"}'
EXP="\"expireAt\":$FUTURE"
plant_bad 1 "{\"to\":{\"integerValue\":\"7\"},$BLOB,$EXP}"		# wrong type
plant_bad 2 "{$TO,\"blob\":{\"stringValue\":\"AQ==\"},$EXP}"		# blob not bytes
plant_bad 3 "{$TO,$BLOB,\"expireAt\":{\"stringValue\":\"2099-01-01T00:00:00Z\"}}"
plant_bad 4 "{$TO,$EXP}"							# no blob
plant_bad 5 "{\"to\":{\"stringValue\":\"eve\"},$BLOB,$EXP}"		# someone else's
plant_bad 6 "{\"to\":{\"stringValue\":\"dave\\u0000\\u00ff\"},$BLOB,$EXP}"	# binary string
plant_bad 7 "{\"to\":{\"mapValue\":{\"fields\":{\"x\":{\"stringValue\":\"dave\"}}}},$BLOB,$EXP}"
{ printf '{"to":{"stringValue":"'; long x 300000; printf '"},%s,%s}' "$BLOB" "$EXP"; } | plant_bad 8 - # huge
plant_bad 9 "{$TO,\"blob\":{\"bytesValue\":\"$(head -c 5000 /dev/zero | base64 -w0)\"},$EXP}" # blob too big
plant_bad 10 "{$TO,$BLOB,\"expireAt\":{\"timestampValue\":\"2020-01-01T00:00:00Z\"}}" # expired
{ printf '{"to":{"stringValue":"eve"},%s,%s,"junk":{"stringValue":"' "$BLOB" "$EXP"; long y 900000; printf '"}}'; } | plant_bad 11 - # big, masked away
$REST plant $D/dave/offers notanofferid "{$TO,$BLOB,$EXP}"		# bad id
$REST plant $D/dave/offers $ID9 "{$TO,\"blob\":{\"bytesValue\":\"q80=\"},$EXP}"
V=1 run l3 -p 200 listen dave 5000
[ $RC -eq 0 ] || { cat "$T/l3.err" >&2; fail "listen among hostile documents: exit $RC"; }
check_eq "offer taken among hostile documents" "$(cat "$T/l3.out")" "$ID9 abcd"
for w in "field to is not" "no valid blob" "no valid expireAt" "expired, deleting"; do
	errhas l3 "$w"
done
V=1 run l4 -p 200 listen dave 1000
check_eq "listen when only junk is left" "$RC" 1
errhas l4 "notanofferid': bad id"
check_eq "junk deleted from the inbox" "$(docs)" 0

# Faults.  503 and 429 bursts are retried and succeed.
reset
fault '{"mode":"error","status":503,"count":3,"method":"POST","match":"/offers"}'
run f1 offer bob $ID1 01 60000
check_eq "offer through 503s" "$RC" 0
check_eq "503 burst" "$($REST statuses /inbox/bob/offers)" "503 503 503 200"
fault '{"mode":"error","status":"RESOURCE_EXHAUSTED","count":2,"method":"GET","match":"/offers"}'
run f2 -p 200 listen bob 5000
check_eq "listen through 429s" "$(cat "$T/f2.out")" "$ID1 01"
# ABORTED (409) is retried, unlike ALREADY_EXISTS.
fault '{"mode":"error","status":"ABORTED","count":1,"method":"POST","match":"/answers"}'
run f3 answer bob $ID1 02 60000
check_eq "answer through ABORTED" "$RC" 0
# Dropped connections are retried.
fault '{"mode":"drop","count":2,"method":"GET","match":"/answers/"}'
run f4 -p 4500 waitans bob $ID1 5000
check_eq "answer through dropped connections" "$(cat "$T/f4.out")" "02"
check_eq "store after the fault round" "$(docs)" 0
# A create whose reply is lost finds its own document: done.
$REST control DELETE log
fault '{"mode":"lose_reply","count":1,"method":"POST","match":"/offers"}'
V=1 run f5 offer bob $ID2 0a0b 60000
check_eq "offer through a lost reply" "$RC" 0
errhas f5 "our earlier try had created it"
check_eq "store after a lost reply" "$($REST dump)" "$D/bob/offers/$ID2"
check_eq "creates tried" "$($REST count POST /inbox/bob/offers)" 2
# ... but someone else's document under the id is not ours.
fault '{"mode":"drop","count":1,"method":"POST","match":"/offers"}'
run f6 offer bob $ID2 0c0d 60000
check_eq "offer onto another's document" "$RC" 1
errhas f6 "already exists"
check_eq "other offer untouched" "$($REST field $D/bob/offers/$ID2 blob)" '{"bytesValue": "Cgs="}'
run wd3 withdraw bob $ID2
# 403: the rules refuse, and the message names the collection.
reset
$REST control POST config '{"deny":["offers"]}'
run f7 offer bob $ID1 01 60000
check_eq "offer refused" "$RC" 1
errhas f7 "security rules refuse create in \`inbox/bob/offers'"
run f8 -p 200 listen bob 2000
check_eq "listen refused" "$RC" 2
errhas f8 "security rules refuse list in \`inbox/bob/offers'"
# 404 on the project.
reset
fault '{"mode":"error","status":"NOT_FOUND","count":-1,"match":"/projects/nope/","message":"The database (default) does not exist for project nope"}'
run f9 -u firestore:nope offer bob $ID1 01 60000
check_eq "offer to a missing project" "$RC" 1
errhas f9 "project \`nope' or its database \`(default)' does not exist"
run f10 -p 4500 -u firestore:nope waitans bob $ID1 3000
check_eq "wait in a missing project" "$RC" 2
errhas f10 "project \`nope'"
# UNAVAILABLE until the deadline: given up, saying why, soon after it.
reset
fault '{"mode":"error","status":503,"count":-1,"match":"/answers/"}'
t0=$(date +%s)
run f11 -p 4500 waitans bob $ID1 2000
check_eq "wait through endless 503s" "$RC" 2
errhas f11 "HTTP 503 UNAVAILABLE"
[ $(( $(date +%s) - t0 )) -le 8 ] || fail "endless 503s: not bounded by the deadline"

# SIGINT ends a wait promptly (the stop flag, also inside a request).
reset
fault '{"mode":"delay","delayMs":20000,"count":-1,"method":"GET","match":"/offers"}'
"$U" -p 4500 listen bob 60000 >"$T/int.out" 2>"$T/int.err" &
P=$!
wait_for 10 sh -c "[ \$($REST count GET /inbox/bob/offers) -ge 1 ]" || fail "no poll"
kill -INT $P
wait_exit $P 2 || fail "SIGINT did not end a listener inside a slow request"
check_eq "listener stopped" "$RC" 1

# Broken answers (not JSON, wrong shapes, a document from elsewhere, too
# large) are skipped with a warning; the valid offer and answer that follow
# are still taken.
python3 "$SRCDIR/tests/firestore_junk.py" "$T/port3" &
JPID=$!
at_exit 'kill $JPID 2>/dev/null'
wait_for 10 test -s "$T/port3" || fail "firestore_junk.py did not start"
FIRESTORE_EMULATOR_HOST=127.0.0.1:$(cat "$T/port3") V=1 run j1 -p 100 listen bob 10000
[ $RC -eq 0 ] || { cat "$T/j1.err" >&2; fail "listen through junk answers: exit $RC"; }
check_eq "offer after junk" "$(cat "$T/j1.out")" "$ID1 abcd"
for w in "not a JSON object" "documents is not an array" "without a name" \
    "field to is not" "larger than" "not in \`projects/p2pcat-test/"; do
	errhas j1 "$w"
done
FIRESTORE_EMULATOR_HOST=127.0.0.1:$(cat "$T/port3") V=1 run j2 -p 4500 waitans bob $ID1 10000
[ $RC -eq 0 ] || { cat "$T/j2.err" >&2; fail "answer through junk: exit $RC"; }
check_eq "answer after junk" "$(cat "$T/j2.out")" "0102"
errhas j2 "invalid JSON"
errhas j2 "larger than"
kill $JPID

# Cost.  An idle listener at the default interval: 3 lists in 13 s means
# polls more than 4.33 s apart, so at most 86,400 / 4.33 < 20,000 reads a day.
reset
run idle -p 4500 listen nobody 13000
check_eq "idle listener" "$RC" 1
check_eq "idle listener's reads" "$(reads_of "$T/idle.err")" 3
check_eq "idle listener's lists (server)" "$($REST count GET /inbox/nobody/offers)" 3
check_eq "idle listener's billed reads (server)" "$($REST reads /inbox/nobody/offers)" 3

# API-key mode against the server's Auth emulator: anonymous sign-up, the
# token cached 0600, refreshed after a 401 and before it expires.
KEY=AIzaTest-key_0123456789
fs_serve --auth issued --api-key "$KEY"
export FIREBASE_AUTH_EMULATOR_HOST=$FIRESTORE_EMULATOR_HOST
printf '%s\n' "$KEY" >"$T/key"
chmod 600 "$T/key"
V=2 run k1 -k "$T/key" offer bob $ID1 01 60000
[ $RC -eq 0 ] || { cat "$T/k1.err" >&2; fail "offer with an API key"; }
errhas k1 "signed in anonymously as uid"
set -- "$XDG_CACHE_HOME"/p2pcat/firestore-*.json
[ $# -eq 1 ] && [ -f "$1" ] || fail "no token cache under $XDG_CACHE_HOME/p2pcat"
CACHE=$1
check_eq "token cache mode" "$(stat -c %a "$CACHE")" 600
tok() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$CACHE" "$1"; }
check_eq "offer's uid" "$($REST field $D/bob/offers/$ID1 uid)" "{\"stringValue\": \"$(tok uid)\"}"
check_eq "auth of the create" "$($REST control GET log | grep -c '"auth": "owner"')" 0
# The listener, with the key from the environment, uses the cached token.
P2PCAT_API_KEY=$KEY V=2 run k2 -p 200 listen bob 5000
check_eq "listen with an API key" "$(cat "$T/k2.out")" "$ID1 01"
check_eq "sign-ups" "$($REST count POST accounts:signUp)" 1
# A 401 (the server forgot the token) refreshes it once, then succeeds.
$REST control POST expire_tokens '{}'
V=2 run k3 -k "$T/key" answer bob $ID1 02 60000
check_eq "answer after a 401" "$RC" 0
errhas k3 "token refused, refreshing"
check_eq "refreshes" "$($REST count POST securetoken.googleapis.com/v1/token)" 1
check_eq "sign-ups after a refresh" "$($REST count POST accounts:signUp)" 1
# A short-lived token is renewed before it expires: no 401 on the way.
$REST control POST config '{"tokenLifetime":4}'
$REST control POST expire_tokens '{}'
V=2 run k4 -p 4500 -k "$T/key" waitans bob $ID1 5000
check_eq "answer taken with an API key" "$(cat "$T/k4.out")" "02"
$REST control DELETE log
sleep 4		# the token's 4 s life is the condition
V=2 run k5 -k "$T/key" withdraw bob $ID1
check_eq "refreshed before expiry" "$($REST count POST securetoken.googleapis.com/v1/token)" 1
check_eq "no 401 with a renewed token" "$($REST statuses /documents/ | grep -c 401)" 0
check_eq "store after the API-key round" "$(docs)" 0
# A wrong key: sign-in refused, said so.
P2PCAT_API_KEY=AIzaWrongKey run k6 -u firestore:other offer bob $ID1 01 60000
check_eq "offer with a wrong key" "$RC" 1
errhas k6 "anonymous sign-in refused"
# Secrets never appear in -v output.
for f in k1 k2 k3 k4 k5 k6; do
	for s in "$KEY" "$(tok idToken)" "$(tok refreshToken)"; do
		! grep -qF -- "$s" "$T/$f.err" || fail "$f: a secret in -v output"
	done
	! grep -q 'key=' "$T/$f.err" || fail "$f: key= in -v output"
done
unset FIREBASE_AUTH_EMULATOR_HOST

# A connection attempt spends at most 60 reads, whatever its deadline: the
# caller waiting 280 s for an answer that never comes (started first).
wait_exit $BUDGET_PID 300 || fail "the 280 s wait did not end"
check_eq "long wait" "$RC" 1
r=$(reads_of "$T/budget.err")
[ "$r" -le 58 ] && [ "$r" -ge 45 ] || fail "a 280 s answer wait spent $r reads (want 45..58)"
n=$(FS_PORT=$(cat "$T/port2") $REST count GET /answers/)
[ "$n" -le 60 ] || fail "server saw $n answer polls"
echo "connect attempt: $r reads in 280 s; idle listener: 3 polls in 13 s"
exit 0
