#!/bin/sh
# An attacker who can write the rendezvous store (dir: on loopback).  What
# it reads of a real session holds neither peer's static key nor data.
#   a) races the real bob with a forged answer: mallory listens as bob
#      with her own key.  The caller, who knows bob's key (known_peers or
#      --peer-key), exits 4 and prints nothing; mallory gets none of its
#      bytes, and the caller's cancel ends her attempt at once; in
#      passphrase mode, without the passphrase, she can only refuse the
#      caller (who exits 4: the passphrases differ).  With bob and
#      mallory both listening, every call either
#      reaches bob intact or fails with 4, and mallory still gets nothing.
#   b) plants garbage, truncated, bit-flipped, replayed and odd answers
#      and offers: neither side crashes, the caller fails with status 2
#      and a message, the listener ignores them and keeps serving, and a
#      real session right after works.
#   c) replays an old offer with a fresh expiry: the listener answers,
#      nothing authenticates (the caller's ephemeral key is gone), no byte
#      is written, and the listener gives up on it after -w and goes on
#      waiting (DESCRIPTION: a caller that never connects is not a session
#      served), then serves a real caller.
#   d) changes a live offer (another candidate port), or moves it and its
#      answer to another name: the handshake is bound to both (prologue),
#      so the caller refuses the answer (exit 2) and nothing crosses.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"
RV=$T/rv
export P2PCAT_SIGNAL="dir:$RV"
MUTATE="python3 $SRCDIR/tests/attack_mutate.py"
HOST=$(uname -n)

# as USER CMD...: CMD with USER's own keys, in the foreground.
as() {
	_u=$1; shift
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" "$@"
}
# bg USER IN OUT ERR ARGS...: p2pcat as USER in the background; sets BG.
bg() {
	_u=$1 _i=$2 _o=$3 _e=$4; shift 4
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" "$P2PCAT" "$@" < "$_i" > "$_o" 2> "$_e" &
	BG=$!
}
# fg USER IN OUT ERR ARGS...: the same in the foreground, at most 30 s; sets RC.
fg() {
	bg "$@"
	wait_exit $BG 30 || fail "p2pcat $* hung: $(cat "$4")"
}
no_output() { [ ! -s "$1" ] || fail "$2: \`$(head -c 200 "$1" | od -c | head -3)' was written"; }
has() { grep -qF -- "$2" "$1" || fail "no \`$2' in: $(cat "$1")"; }
# not_crashed WHAT STATUS: a status of a process that was not killed.
not_crashed() { [ "$2" -lt 128 ] || fail "$1: status $2 (killed by signal $(( $2 - 128 )))"; }
# interrupt PID ERR WHAT: a listener still waiting exits 143 on SIGTERM.
interrupt() {
	exited "$1" && { wait "$1"; fail "$3 exited ($?): $(cat "$2")"; }
	kill -TERM "$1"
	wait_exit "$1" 5 || fail "$3 ignored SIGTERM"
	[ $RC -eq 143 ] || fail "$3 status after SIGTERM: $RC, want 143: $(cat "$2")"
}
files_in() { set -- "$RV/inbox/bob/$1"/*; [ -f "$1" ]; }
first_file() { set -- "$RV/inbox/bob/$1"/*; echo "$1"; }
# plant KIND ID BLOB [EXPIRE_MS]: a message file the way signal.c writes
# one (written beside it, then renamed into place), from a live pid of
# this host, so that only its contents can make it go.
plant() {
	_d=$RV/inbox/bob/$1
	mkdir -p "$_d"
	{
		printf 'p2pcat-sig 1\nexpire %s\npid %s\nhost %s\n\n' \
			"${4:-$(( $(date +%s) * 1000 + 60000 ))}" $$ "$HOST"
		cat "$3"
	} > "$_d/.plant-$2"
	mv "$_d/.plant-$2" "$_d/$2"
}
newid() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

uniq_msg() { printf '%s %s\n' "$1" "$(newid)" > "$2"; }
uniq_msg "from alice" "$T/a.msg"
uniq_msg "from bob" "$T/b.msg"
uniq_msg "mallory's bait" "$T/m.msg"
BOB=$(as bob "$P2PCAT" --id 2>/dev/null)
as mallory "$P2PCAT" --id > /dev/null 2>&1

echo "== a first session, its offer and answer copied on the way"
# The caller is stopped once its offer is posted, so that bob's answer
# stays in the directory long enough to be copied.
bg alice "$T/a.msg" "$T/c.out" "$T/c.err" bob; cp=$BG
wait_for 10 files_in offers || fail "no offer: $(cat "$T/c.err")"
kill -STOP $cp
OLD_OFFER_ID=$(basename "$(first_file offers)")
cp "$(first_file offers)" "$T/offer.orig"
bg bob "$T/b.msg" "$T/l.out" "$T/l.err" -l bob; lp=$BG
wait_for 10 files_in answers || { kill -CONT $cp; fail "no answer: $(cat "$T/l.err")"; }
cp "$(first_file answers)" "$T/answer.orig"
kill -CONT $cp
wait_exit $cp 30 || fail "first caller hung"
check_eq "first caller status ($(cat "$T/c.err"))" $RC 0
wait_exit $lp 10 || fail "first listener hung"
check_eq "first listener status ($(cat "$T/l.err"))" $RC 0
cmp -s "$T/a.msg" "$T/l.out" && cmp -s "$T/b.msg" "$T/c.out" || fail "first session data"
has "$T/c.err" "first contact with \`bob'"
check_eq "files left" "$(find "$RV" -type f | wc -l)" 0
# The store sees ephemeral keys only: neither static key, nor the data.
ALICE=$(as alice "$P2PCAT" --id 2>/dev/null)
for f in "$T/offer.orig" "$T/answer.orig"; do
	python3 "$SRCDIR/tests/attack_find.py" "$f" -k "$ALICE" -k "$BOB" -w "$T/a.msg" -w "$T/b.msg" ||
		fail "the rendezvous shows the above"
done

echo "== a) a forged answer from mallory, listening as bob"
printf 'the real passphrase\n' > "$T/secret"
printf 'a guess\n' > "$T/guess"
chmod 600 "$T/secret" "$T/guess"
for how in known_peers peer-key passphrase; do
	if [ $how = passphrase ]; then
		bg mallory "$T/m.msg" "$T/m.out" "$T/m.err" -w 1 --secret-file "$T/guess" -l bob; mp=$BG
	else
		bg mallory "$T/m.msg" "$T/m.out" "$T/m.err" -w 1 -l bob; mp=$BG
	fi
	if [ $how = passphrase ]; then
		# Without the passphrase mallory can answer, but the caller's
		# proof of it fails at her end: all she can do is refuse.
		fg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 10 --secret-file "$T/secret" bob
		check_eq "caller status against mallory ($how; $(cat "$T/c.err"))" $RC 4
		has "$T/c.err" "the passphrases differ"
	elif [ $how = known_peers ]; then
		fg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 10 bob
		check_eq "caller status against mallory ($how; $(cat "$T/c.err"))" $RC 4
		has "$T/c.err" "KEY MISMATCH"
	else
		fg carol "$T/a.msg" "$T/c.out" "$T/c.err" -w 10 --peer-key "$BOB" bob
		check_eq "caller status against mallory ($how; $(cat "$T/c.err"))" $RC 4
		has "$T/c.err" "not the one given with --peer-key"
	fi
	no_output "$T/c.out" "caller answered by mallory ($how)"
	# Mallory's attempt ends at once: the caller cancelled it, or she
	# refused the caller.
	wait_for 10 grep -q "the caller gave up\|refusing the caller: it failed the passphrase" \
		"$T/m.err" || fail "mallory: $(cat "$T/m.err")"
	interrupt $mp "$T/m.err" mallory
	no_output "$T/m.out" "mallory ($how)"
	echo "$how: caller refused mallory's answer, nothing crossed"
done
[ -e "$T/carol/.config/p2pcat/known_peers" ] && fail "--peer-key wrote known_peers"

# Both listen as bob; whoever claims an offer first answers it.
bg mallory /dev/null "$T/m.out" "$T/m.err" -w 1 --recv-only -l bob; mp=$BG
bg bob /dev/null "$T/l.out" "$T/l.err" -k --recv-only -l bob; lp=$BG
won=0 lost=0 i=0
while [ $i -lt 8 ]; do
	i=$((i + 1))
	uniq_msg "call $i" "$T/call.msg"
	fg alice "$T/call.msg" "$T/c.out" "$T/c.err" -w 10 --send-only bob
	no_output "$T/c.out" "caller $i"
	case $RC in
	0)	wait_for 10 grep -qxF "$(cat "$T/call.msg")" "$T/l.out" ||
			fail "call $i: status 0, but bob did not get its data"
		won=$((won + 1)) ;;
	4)	has "$T/c.err" "KEY MISMATCH"
		grep -qF "$(cat "$T/call.msg")" "$T/l.out" && fail "call $i: status 4, but bob got the data"
		lost=$((lost + 1)) ;;
	*)	fail "call $i: status $RC: $(cat "$T/c.err")" ;;
	esac
done
interrupt $lp "$T/l.err" bob
interrupt $mp "$T/m.err" mallory
no_output "$T/m.out" "mallory racing bob"
check_eq "lines bob got" "$(wc -l < "$T/l.out")" $won
echo "race: $won calls reached bob, $lost were answered by mallory and refused"

echo "== b) hostile answers"
# Nobody listens: the attacker answers each offer as soon as it appears.
# Each one is from another session (another ephemeral key), modified.
n=0
for mode in keep flip flip flip fliptail fliptail trunc trunc trunc garbage \
    version tlvlen trailer soup soup; do
	n=$((n + 1))
	what=$($MUTATE $mode $n "$T/answer.orig" "$T/blob") || fail "attack_mutate.py $mode"
	bg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 5 bob; cp=$BG
	wait_for 10 files_in offers || fail "no offer: $(cat "$T/c.err")"
	plant answers "$(basename "$(first_file offers)")" "$T/blob"
	wait_exit $cp 15 || fail "caller hung on a hostile answer ($what)"
	not_crashed "caller given a hostile answer ($what)" $RC
	check_eq "caller status for a hostile answer ($what; $(cat "$T/c.err"))" $RC 2
	no_output "$T/c.out" "caller given a hostile answer ($what)"
	grep -Eq "malformed answer|does not check out|another protocol version|no address" "$T/c.err" ||
		fail "no clear message for a hostile answer ($what): $(cat "$T/c.err")"
	echo "answer $what: $(head -n 1 "$T/c.err")"
done
# Not a message at all at the answer's name: the caller does not take it,
# and gives up after -w.
for odd in dir fifo symlink header; do
	bg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 2 bob; cp=$BG
	wait_for 10 files_in offers || fail "no offer: $(cat "$T/c.err")"
	a=$RV/inbox/bob/answers/$(basename "$(first_file offers)")
	mkdir -p "$RV/inbox/bob/answers"
	case $odd in
	dir) mkdir "$a" ;;
	fifo) mkfifo "$a" ;;
	symlink) ln -s "$T/answer.orig" "$a" ;;
	header) printf 'p2pcat-sig 1\nexpire 99999999999999\npid 1\nhost %s\n\n' "$HOST" > "$a" ;;
	esac
	wait_exit $cp 15 || fail "caller hung on a $odd answer"
	check_eq "caller status for a $odd answer ($(cat "$T/c.err"))" $RC 2
	no_output "$T/c.out" "caller given a $odd answer"
	has "$T/c.err" "no answer from \`bob'"
	rm -rf "$a"
done
echo "hostile answers: refused"

echo "== b) hostile offers"
bg bob "$T/b.msg" "$T/l.out" "$T/l.err" -v -w 1 -l bob; lp=$BG
wait_for 10 grep -q "listening as" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
n=0
for mode in keep flip flip flip fliptail fliptail trunc trunc trunc garbage \
    version tlvlen trailer soup soup; do
	n=$((n + 1))
	what=$($MUTATE $mode $n "$T/offer.orig" "$T/blob") || fail "attack_mutate.py $mode"
	id=$(newid)
	plant offers "$id" "$T/blob"
	# The listener claims it, then ignores it or answers it and gives up
	# on it after -w.
	handled() {
		grep -q "ignoring offer $1" "$T/l.err" ||
			grep -q "the caller of offer $1 did not connect" "$T/l.err"
	}
	wait_for 10 handled "$id" || fail "listener did not handle offer $mode ($what): $(tail -n 5 "$T/l.err")"
	exited $lp && { wait $lp; fail "listener exited ($?) after a hostile offer ($what)"; }
	echo "offer $what: $(grep -E "ignoring offer $id|offer $id did not" "$T/l.err" | head -n 1)"
done
# Odd things where offers go: the listener skips them and stays.
mkdir "$RV/inbox/bob/offers/$(newid)"
mkfifo "$RV/inbox/bob/offers/$(newid)"
ln -s "$T/offer.orig" "$RV/inbox/bob/offers/$(newid)"
ln -s /dev/zero "$RV/inbox/bob/offers/$(newid)"
head -c 100000 /dev/urandom > "$RV/inbox/bob/offers/$(newid)"
printf 'p2pcat-sig 1\nexpire 1\npid %s\nhost %s\n\nx' $$ "$HOST" > "$RV/inbox/bob/offers/$(newid)"
echo junk > "$RV/inbox/bob/offers/not-an-id"
wait_for 10 grep -q "skipping .*/not-an-id'" "$T/l.err" ||
	fail "misnamed offer not reported: $(ls -la "$RV/inbox/bob/offers")"
[ -f "$RV/inbox/bob/offers/not-an-id" ] || fail "a file that is not ours was removed"
exited $lp && { wait $lp; fail "listener exited ($?) on odd offer files: $(tail -n 5 "$T/l.err")"; }
fg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 10 bob
check_eq "caller status after the hostile offers ($(cat "$T/c.err"))" $RC 0
wait_exit $lp 10 || fail "listener hung after the real caller: $(tail -n 5 "$T/l.err")"
check_eq "listener status after the hostile offers" $RC 0
cmp -s "$T/a.msg" "$T/l.out" || fail "listener got \`$(od -c "$T/l.out" | head -5)'"
cmp -s "$T/b.msg" "$T/c.out" || fail "caller got \`$(cat "$T/c.out")'"
rm -rf "$RV/inbox/bob/offers"
echo "hostile offers: ignored, then a real session worked"

echo "== c) an old offer replayed with a fresh expiry"
bg bob "$T/b.msg" "$T/l.out" "$T/l.err" -v -w 2 -l bob; lp=$BG
wait_for 10 grep -q "listening as" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
$MUTATE keep 0 "$T/offer.orig" "$T/offer.blob" > /dev/null
plant offers "$OLD_OFFER_ID" "$T/offer.blob"
# The listener cannot tell it from a new one and answers it ...
wait_for 10 grep -q "offer $OLD_OFFER_ID received" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
wait_for 10 test -f "$RV/inbox/bob/answers/$OLD_OFFER_ID" ||
	fail "listener did not answer the replayed offer: $(cat "$T/l.err")"
# ... but nobody can finish that handshake: after -w it gives up.
wait_for 10 grep -q "the caller of offer $OLD_OFFER_ID did not connect" "$T/l.err" ||
	fail "listener: $(cat "$T/l.err")"
grep -q "connected:" "$T/l.err" && fail "listener connected to a replayed offer: $(cat "$T/l.err")"
no_output "$T/l.out" "listener of a replayed offer"
exited $lp && { wait $lp; fail "listener exited ($?) after a replayed offer: $(cat "$T/l.err")"; }
[ -f "$RV/inbox/bob/answers/$OLD_OFFER_ID" ] && fail "answer to the replayed offer left behind"
# It still serves a real caller.
fg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 10 bob
check_eq "caller status after the replay ($(cat "$T/c.err"))" $RC 0
wait_exit $lp 10 || fail "listener hung after the real caller"
check_eq "listener status after the replay ($(tail -n 3 "$T/l.err"))" $RC 0
cmp -s "$T/a.msg" "$T/l.out" && cmp -s "$T/b.msg" "$T/c.out" || fail "session after the replay: data"
check_eq "files left" "$(find "$RV" -type f | wc -l)" 0
echo "replayed offer: answered, never connected, then a real session worked"

echo "== d) a live offer changed, or moved to another name"
for how in changed moved; do
	bg alice "$T/a.msg" "$T/c.out" "$T/c.err" -w 8 bob; cp=$BG
	wait_for 10 files_in offers || fail "no offer: $(cat "$T/c.err")"
	kill -STOP $cp
	f=$(first_file offers) id=$(basename "$(first_file offers)")
	if [ $how = changed ]; then
		what=$($MUTATE cand 0 "$f" "$T/blob") || fail "attack_mutate.py cand"
		plant offers "$id" "$T/blob"
		bg bob "$T/b.msg" "$T/l.out" "$T/l.err" -v -w 3 -l bob; lp=$BG
		wait_for 10 test -f "$RV/inbox/bob/answers/$id" || fail "no answer: $(cat "$T/l.err")"
	else
		what="offer and answer moved through carol's inbox"
		mkdir -p "$RV/inbox/carol/offers" "$RV/inbox/carol/answers"
		mv "$f" "$RV/inbox/carol/offers/$id"
		bg carol "$T/b.msg" "$T/l.out" "$T/l.err" -v -w 3 -l carol; lp=$BG
		wait_for 10 test -f "$RV/inbox/carol/answers/$id" || fail "no answer: $(cat "$T/l.err")"
		mkdir -p "$RV/inbox/bob/answers"
		mv "$RV/inbox/carol/answers/$id" "$RV/inbox/bob/answers/$id"
	fi
	kill -CONT $cp
	wait_exit $cp 15 || fail "caller hung ($what)"
	check_eq "caller status ($what; $(cat "$T/c.err"))" $RC 2
	has "$T/c.err" "does not check out"
	wait_for 10 grep -q "did not connect" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
	interrupt $lp "$T/l.err" "listener ($what)"
	no_output "$T/c.out" "caller ($what)"
	no_output "$T/l.out" "listener ($what)"
	echo "$what: refused"
done
echo "attack_store: ok"
