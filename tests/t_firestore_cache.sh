#!/bin/sh
# t_firestore_cache.sh: the firestore: backend's token cache, against
# tests/fsserver.py's Auth emulator: a cache that cannot be written (no
# room: RLIMIT_FSIZE 0) is reported and leaves no descriptor and no
# temporary file behind; a cache written by a process whose real and
# effective uids differ is its own, read back by the next one.  A cached
# ID token that an Authorization header could not carry as it is (one
# that an older p2pcat took from a hostile answer) is ignored.  An expiry
# no token of ours can have is not believed: the token is refreshed.
. "$(dirname "$0")/lib.sh"
U=$SRCDIR/tests/unit_firestore
REST="python3 $SRCDIR/tests/firestore_rest.py"
[ -x "$U" ] || fail "tests/unit_firestore is not built: run make tests"
command -v python3 >/dev/null || skip "no python3"

ID1=0123456789abcdef0123456789abcdef
ID2=fedcba9876543210fedcba9876543210
ID3=00000000000000000000000000000003
ID4=00000000000000000000000000000004
ID5=00000000000000000000000000000005
ID6=00000000000000000000000000000006
KEY=AIzaTest-key_0123456789
CACHEDIR=$XDG_CACHE_HOME/p2pcat
fs_serve --auth issued --api-key "$KEY"
export FIREBASE_AUTH_EMULATOR_HOST=$FIRESTORE_EMULATOR_HOST
printf '%s\n' "$KEY" >"$T/key"
chmod 600 "$T/key"

# No room for the cache: write(2) fails with EFBIG (SIGXFSZ ignored, as
# the limit's signal would otherwise end the process).  stderr goes
# through a pipe, which the limit does not cover: in a SANITIZE=1 build
# the sanitizers report there too (no file could take it), and the
# status is kept.
(trap '' XFSZ; ulimit -f 0
 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=stderr" \
 UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=stderr" \
 UNIT_FS_VERBOSE=1 "$U" -k "$T/key" offer bob $ID1 01 60000 2>&1 >"$T/full.out"
 echo "status $?") | cat >"$T/full.err"
grep -q "Sanitizer" "$T/full.err" && fail "full: a sanitizer report: $(cat "$T/full.err")"
check_eq "full: status" "$(sed -n 's/^status //p' "$T/full.err")" 0
errhas full "cannot write the token cache"
errhas full "File too large"
check_eq "descriptors left after a failed cache write" \
    "$(sed -n 's/^open fds //p' "$T/full.err")" 0
check_eq "files in the cache directory" "$(ls -A "$CACHEDIR" | wc -l)" 0
check_eq "offer despite the cache" "$($REST dump)" "inbox/bob/offers/$ID1"

# A CR LF in the cached ID token would start a header of its own: the
# cache is ignored and the next offer signs in anew.
UNIT_FS_VERBOSE=1 "$U" -k "$T/key" offer bob $ID4 01 60000 \
    >"$T/crlf1.out" 2>"$T/crlf1.err" || { cat "$T/crlf1.err" >&2; fail "crlf: first offer"; }
set -- "$CACHEDIR"/firestore-*.json
[ -f "$1" ] || fail "crlf: no token cache in $CACHEDIR"
python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
j["idToken"] += "\r\nX-Injected: 1"
open(sys.argv[1], "w").write(json.dumps(j))' "$1"
UNIT_FS_VERBOSE=1 "$U" -k "$T/key" offer bob $ID5 01 60000 \
    >"$T/crlf2.out" 2>"$T/crlf2.err" || { cat "$T/crlf2.err" >&2; fail "crlf: second offer"; }
errhas crlf2 "ignoring the token cache"
errhas crlf2 "signed in anonymously"
rm -f "$1"

# An expiry that no token of ours has (too far away, or before 1970;
# 1e300 is also past what a uint64_t holds) is not believed: the refresh
# token renews the ID token, and the uid is kept.  Before, -5 was cast
# to a uint64_t (undefined; here the token was never renewed before a
# request was refused) and the date 8 days away was believed.
UNIT_FS_VERBOSE=1 "$U" -k "$T/key" offer bob $ID6 01 60000 \
    >"$T/exp0.out" 2>"$T/exp0.err" || { cat "$T/exp0.err" >&2; fail "expiry: first offer"; }
set -- "$CACHEDIR"/firestore-*.json
[ -f "$1" ] || fail "expiry: no token cache in $CACHEDIR"
uid=$(sed -n 's/.*signed in anonymously as uid //p' "$T/exp0.err")
[ -n "$uid" ] || fail "expiry: no uid: $(cat "$T/exp0.err")"
n=0
for exp in -5 "$(( ($(date +%s) + 8 * 86400) * 1000 ))" 1e300; do
	n=$((n + 1))
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
j["expiresAt"] = json.loads(sys.argv[2])
open(sys.argv[1], "w").write(json.dumps(j))' "$1" "$exp"
	UNIT_FS_VERBOSE=1 "$U" -k "$T/key" offer bob 0000000000000000000000000000001$n \
	    01 60000 >"$T/exp$n.out" 2>"$T/exp$n.err" ||
	    { cat "$T/exp$n.err" >&2; fail "expiry $exp: offer"; }
	errhas exp$n "token refreshed"
	errhas exp$n "expiry is not believable"
	errhas exp$n "cached sign-in as uid $uid"
	! grep -q "signed in anonymously" "$T/exp$n.err" ||
	    fail "expiry $exp: signed in anew, losing uid $uid"
done
rm -f "$1"

# Real uid nobody, effective uid root: the cache is created by, and
# belongs to, the effective uid, which is the one that must own it.
[ "$(id -u)" -eq 0 ] || skip "the real/effective uid case needs root (setpriv)"
command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
n=0
for id in $ID2 $ID3; do
	n=$((n + 1))
	UNIT_FS_VERBOSE=1 setpriv --ruid 65534 "$U" -k "$T/key" \
	    offer bob $id 01 60000 >"$T/ruid$n.out" 2>"$T/ruid$n.err" ||
	    { cat "$T/ruid$n.err" >&2; fail "offer $n with real uid 65534"; }
done
errhas ruid1 "signed in anonymously"
errhas ruid2 "cached sign-in as uid"
! grep -q "ignoring the token cache" "$T/ruid2.err" ||
    fail "the cache our effective uid wrote was refused: $(cat "$T/ruid2.err")"
echo "token cache: no room reported and cleaned up; euid owns it"
