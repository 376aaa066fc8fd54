#!/bin/sh
# t_firestore_rules.sh: the sample firestore.rules, loaded into Google's
# Firestore emulator, allow what p2pcat does and refuse another user.
# Users sign in anonymously with a Web API key at tests/fsserver.py's Auth
# emulator (unsigned ID tokens, as Firebase's Auth emulator issues them,
# whose claims the Firestore emulator evaluates the rules with); each user
# is a HOME of its own, so an account of its own.  Skipped without the
# emulator.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "no python3"
[ -x "$P2PCAT" ] || fail "not built: run make"
KEY=AIzaRules-key_0123456789
fs_serve --auth issued --api-key "$KEY"
export FIREBASE_AUTH_EMULATOR_HOST=127.0.0.1:$FS_PORT P2PCAT_API_KEY=$KEY
emu_serve --rules "$SRCDIR/firestore.rules"
export P2PCAT_SIGNAL=firestore:p2pcat-rules
PROJ=p2pcat-rules

# as USER CMD...: CMD as USER (a HOME, so keys and a sign-in, of its own).
as() {
	_u=$1; shift
	mkdir -p "$T/$_u"
	HOME=$T/$_u XDG_CONFIG_HOME=$T/$_u/.config XDG_CACHE_HOME=$T/$_u/.cache "$@"
}
uid_of() {
	python3 -c 'import glob, json, sys
print(json.load(open(glob.glob(sys.argv[1] + "/p2pcat/firestore-*.json")[0]))["uid"])' "$T/$1/.cache"
}
# owner METHOD PATH [JSON]: REST as the emulator's owner (rules bypassed).
owner() {
	python3 -c 'import sys, urllib.request
r = urllib.request.Request("http://127.0.0.1:%s/v1/projects/%s/databases/(default)/documents/%s" % tuple(sys.argv[1:4]),
    method=sys.argv[4], data=sys.argv[5].encode() if len(sys.argv) > 5 else None,
    headers={"Authorization": "Bearer owner", "Content-Type": "application/json"})
print(urllib.request.urlopen(r, timeout=10).read().decode())' "$EMU_PORT" "$PROJ" "$2" "$1" ${3:+"$3"}
}
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

# call WHAT: user a listens as bob, user b calls bob; both get through.
call() {
	echo "$1 to bob" > "$T/c.in"
	echo "$1 from bob" > "$T/l.in"
	as a "$P2PCAT" -v -l bob < "$T/l.in" > "$T/l.got" 2> "$T/l.err" & _lp=$!
	as b "$P2PCAT" -v bob < "$T/c.in" > "$T/c.got" 2> "$T/c.err" & _cp=$!
	wait_exit $_cp 60 || fail "$1: caller hung: $(tail -5 "$T/c.err")"
	_crc=$RC
	wait_exit $_lp 30 || fail "$1: listener hung: $(tail -5 "$T/l.err")"
	check_eq "$1: caller status ($(tail -3 "$T/c.err"))" $_crc 0
	check_eq "$1: listener status ($(tail -3 "$T/l.err"))" $RC 0
	check_eq "$1: to bob" "$(cat "$T/l.got")" "$1 to bob"
	check_eq "$1: from bob" "$(cat "$T/c.got")" "$1 from bob"
	grep -q "polling instead" "$T/c.err" "$T/l.err" && fail "$1: Listen fell back to polling"
	check_eq "$1: documents left" "$(left)" 0
}

# A cold emulator (see t_firestore_emu.sh): a first call to warm it.
as a "$P2PCAT" -l warm < /dev/null > /dev/null 2>&1 & WP=$!
as b "$P2PCAT" -w 60 warm < /dev/null > /dev/null 2>&1 || fail "warm-up call"
wait_exit $WP 30

# The rules allow a listener and a caller, each signed in as itself.
call "open name"
ua=$(uid_of a)
ub=$(uid_of b)
[ -n "$ua" ] && [ -n "$ub" ] && [ "$ua" != "$ub" ] || fail "two users, two uids: \`$ua' \`$ub'"

# bob reserved to user a: user c may not listen as bob ...
owner PATCH names/bob "{\"fields\":{\"uid\":{\"stringValue\":\"$ua\"}}}" > /dev/null ||
    fail "cannot reserve bob"
as c "$P2PCAT" -l bob < /dev/null > /dev/null 2> "$T/x.err" & XP=$!
wait_exit $XP 30 || fail "the other user's listener hung: $(cat "$T/x.err")"
[ $RC -ne 0 ] || fail "the other user listened as bob"
grep -q "security rules refuse list in \`inbox/bob/offers'" "$T/x.err" ||
    fail "no refusal said: $(cat "$T/x.err")"
# ... nor read the store's offers by REST (the rules, not p2pcat, refuse).
as c "$SRCDIR/tests/unit_firestore" -p 200 -u firestore:$PROJ listen bob 2000 > /dev/null 2> "$T/y.err"
check_eq "the other user's listing of bob's offers" $? 2
grep -q "security rules refuse list" "$T/y.err" || fail "REST refusal: $(cat "$T/y.err")"
# ... but user a still may, and user b still call.
call "reserved name"
echo "rules: users $ua and $ub allowed, a third refused"
exit 0
