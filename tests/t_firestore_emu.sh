#!/bin/sh
# t_firestore_emu.sh: p2pcat over the firestore: rendezvous against Google's
# own Firestore emulator, where offers and answers come by Listen: calls in
# both directions, an offer written before its listener started, many
# offers at once, a listener idle for minutes.  Each time the data intact,
# the store left empty and the reads billed within the budgets (10 a
# connection attempt on each side).  Skipped without the emulator.
. "$(dirname "$0")/lib.sh"
U=$SRCDIR/tests/unit_firestore
command -v python3 >/dev/null || skip "no python3"
[ -x "$P2PCAT" ] && [ -x "$U" ] || fail "not built: run make all tests"
emu_serve
# A cold emulator was seen to answer the first change under a fresh listen
# with an empty RESET (the document missing, and no change after): round
# trips first, until one gets through (CI saw the first one fail too).  The
# warm-up asserts nothing; three failures in a row mean the emulator does
# not work here at all.
w=1
until UNIT_FS_VERBOSE=2 "$U" roundtrip warmup$w > "$T/warm.out" 2> "$T/warm.err"; do
	echo "warm-up round trip $w failed: $(grep -e "Listen on" -e roundtrip "$T/warm.err" | tail -4)"
	[ $w -lt 3 ] || fail "the emulator's first three round trips failed"
	w=$((w + 1))
done
export P2PCAT_SIGNAL=firestore:p2pcat-emu
PROJ=p2pcat-emu

# left: how many offers and answers the store holds.
left() {
	python3 -c 'import json, sys, urllib.request
n = 0
for c in ("offers", "answers"):
    q = {"structuredQuery": {"from": [{"collectionId": c, "allDescendants": True}]}}
    r = urllib.request.Request("http://127.0.0.1:%s/v1/projects/%s/databases/(default)/documents:runQuery" % tuple(sys.argv[1:]),
        data=json.dumps(q).encode(), headers={"Authorization": "Bearer owner", "Content-Type": "application/json"})
    n += sum(1 for x in json.load(urllib.request.urlopen(r, timeout=10)) if "document" in x)
print(n)' "$EMU_PORT" "$PROJ"
}
# budget WHAT FILE: FILE's last billed reads are 1..10.
budget() {
	_r=$(reads_of "$2")
	[ -n "$_r" ] && [ "$_r" -ge 1 ] && [ "$_r" -le 10 ] ||
	    fail "$1: billed reads \`$_r' (want 1..10): $(tail -3 "$2")"
}

# The idle listener first: it listens while the rest runs, for minutes.
echo "idle" > "$T/idle.in"
"$P2PCAT" -v -l idler < "$T/idle.in" > "$T/idle.got" 2> "$T/idle.err" & IDLE=$!
T0=$(date +%s)

# call NAME TAG: a listener for NAME and a caller, "TAG to NAME" one way
# and "TAG from NAME" back; both exit 0 with the data intact, within budget.
# Google's emulator now and then (about one call in 100 here, more under
# load) leaves a document out of a Listen snapshot: with a RESET that
# shows nothing and no change after (firebase-tools #3867), or with the
# document sent and at once said deleted (DOCUMENT_DELETE) though nobody
# deleted it, seen on the answer right after the offer of the same id was
# deleted.  The listener never hears the offer the store took, or the
# caller the answer.  -vv shows each document a stream delivers and each
# deletion; when the one that matters was not there in sync, the call is
# made once more, and said so.
call() {
	_tries=0
	while :; do
		_tries=$((_tries + 1))
		call_once "$@" && break
		[ $_tries -lt 2 ] || fail "$2: the emulator lost a document twice"
		echo "$2: Google's emulator lost a document; once more"
		check_eq "$2: documents left after the lost one" "$(left)" 0
	done
	check_eq "$2: caller status ($(tail -3 "$T/c.err"))" $_crc 0
	check_eq "$2: listener status ($(tail -3 "$T/l.err"))" $_lrc 0
	check_eq "$2: to $1" "$(cat "$T/l.got")" "$2 to $1"
	check_eq "$2: from $1" "$(cat "$T/c.got")" "$2 from $1"
	budget "$2: caller" "$T/c.err"
	budget "$2: listener" "$T/l.err"
	grep -q "polling instead" "$T/c.err" "$T/l.err" && fail "$2: Listen fell back to polling"
	check_eq "$2: documents left" "$(left)" 0
	echo "$2: caller $(reads_of "$T/c.err") reads, listener $(reads_of "$T/l.err") reads"
}
# lost_in FILE STREAM: the stream was in sync, and each document it sent
# it also said deleted.
lost_in() {
	grep -q "Listen on $2: in sync" "$1" &&
	    [ "$(grep -c "Listen on $2: a document changed" "$1")" -le \
	      "$(grep -c "Listen on $2: a document was deleted" "$1")" ]
}
# call_once NAME TAG: the call; 1 when the emulator lost the offer or the
# answer (the caller timed out, and the stream that should have brought
# it was in sync without it), else 0 with $_crc and $_lrc the statuses.
call_once() {
	echo "$2 to $1" > "$T/c.in"
	echo "$2 from $1" > "$T/l.in"
	"$P2PCAT" -vv -l "$1" < "$T/l.in" > "$T/l.got" 2> "$T/l.err" & _lp=$!
	"$P2PCAT" -vv "$1" < "$T/c.in" > "$T/c.got" 2> "$T/c.err" & _cp=$!
	wait_exit $_cp 60 || fail "$2: caller hung: $(tail -5 "$T/c.err")"
	_crc=$RC
	if [ $_crc -eq 2 ] && grep -q "^p2pcat: no answer from \`$1' within" "$T/c.err" &&
	    grep -q "^p2pcat: offer [0-9a-f]* posted to \`$1'" "$T/c.err" &&
	    { { lost_in "$T/l.err" "inbox/$1/offers" &&
	        ! grep -q "POST .*/inbox/$1/answers?documentId=" "$T/l.err"; } ||
	      { grep -q "POST .*/inbox/$1/answers?documentId=" "$T/l.err" &&
	        lost_in "$T/c.err" "inbox/$1/answers"; }; }; then
		kill $_lp 2> /dev/null
		wait_exit $_lp 10 || fail "$2: listener hung after SIGTERM"
		return 1
	fi
	wait_exit $_lp 30 || fail "$2: listener hung: $(tail -12 "$T/l.err"); caller: $(tail -5 "$T/c.err")"
	_lrc=$RC
	return 0
}
call bob "one way"
call alice "the other way"

# An offer written before its listener started is taken, once.
ID1=0123456789abcdef0123456789abcdef
"$U" offer bob $ID1 c0ffee 60000 2>/dev/null || fail "offer"
"$U" take bob 1 10000 > "$T/t1.out" 2> "$T/t1.err" || fail "early offer not taken: $(cat "$T/t1.err")"
check_eq "early offer" "$(cat "$T/t1.out")" "$ID1 c0ffee"
"$U" take bob 1 3000 > "$T/t2.out" 2> "$T/t2.err" && fail "an offer taken twice: $(cat "$T/t2.out")"
check_eq "documents after the early offer" "$(left)" 0

# Many offers at once, more than a listener lists (8): each taken once.
i=10
while [ $i -lt 22 ]; do
	"$U" offer carol "$(printf '%032x' $i)" "$(printf '%02x' $i)" 60000 2>/dev/null || fail "offer $i"
	i=$((i + 1))
done
"$U" take carol 12 30000 > "$T/many.out" 2> "$T/many.err" ||
    fail "12 offers: $(wc -l < "$T/many.out") taken: $(tail -3 "$T/many.err")"
check_eq "12 offers, each once" "$(sort -u "$T/many.out" | wc -l | tr -d ' ')" 12
i=10
while [ $i -lt 22 ]; do
	grep -qx "$(printf '%032x %02x' $i $i)" "$T/many.out" || fail "offer $i not taken as posted"
	i=$((i + 1))
done
check_eq "documents after 12 offers" "$(left)" 0
# ... and callers at once to one listener (-k): each gets through.
"$P2PCAT" -l -k dave < /dev/null > "$T/dave.got" 2> "$T/dave.err" & DAVE=$!
for k in 1 2 3 4; do
	echo "caller $k" | "$P2PCAT" -w 60 dave > /dev/null 2> "$T/dave$k.err" & eval "C$k=\$!"
done
for k in 1 2 3 4; do
	eval "wait_exit \$C$k 90" || fail "caller $k hung: $(tail -3 "$T/dave$k.err")"
	check_eq "caller $k of 4 ($(tail -2 "$T/dave$k.err"))" $RC 0
done
for k in 1 2 3 4; do
	grep -qx "caller $k" "$T/dave.got" || fail "caller $k's data did not arrive"
done
kill $DAVE; wait $DAVE 2>/dev/null
check_eq "documents after 4 callers" "$(left)" 0

# The idle listener, minutes later (its stream silent, since the emulator
# never heartbeats): it answers at once, having spent a read a stream.
sleep $(( T0 + 150 - $(date +%s) > 0 ? T0 + 150 - $(date +%s) : 0 ))	# idleness is the condition
exited $IDLE && fail "idle listener gone: $(cat "$T/idle.err")"
t1=$(date +%s)
echo "wake up" | "$P2PCAT" -v idler > "$T/idlec.got" 2> "$T/idlec.err" || fail "call to the idle listener: $(tail -3 "$T/idlec.err")"
wait_exit $IDLE 30 || fail "idle listener hung"
check_eq "idle listener status" $RC 0
check_eq "to the idle listener" "$(cat "$T/idle.got")" "wake up"
r=$(reads_of "$T/idle.err")
[ -n "$r" ] && [ "$r" -ge 2 ] && [ "$r" -le 5 ] || fail "idle listener billed \`$r' reads in $((t1 - T0)) s (want 2..5)"
echo "idle listener: $r billed reads in $((t1 - T0)) s of listening, then a call"
exit 0
