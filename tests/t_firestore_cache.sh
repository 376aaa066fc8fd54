#!/bin/sh
# t_firestore_cache.sh: the firestore: backend's token cache, against
# tests/fsserver.py's Auth emulator: a cache that cannot be written (no
# room: RLIMIT_FSIZE 0) is reported and leaves no descriptor and no
# temporary file behind.
. "$(dirname "$0")/lib.sh"
U=$SRCDIR/tests/unit_firestore
REST="python3 $SRCDIR/tests/firestore_rest.py"
[ -x "$U" ] || skip "tests/unit_firestore is not built"
command -v python3 >/dev/null || skip "no python3"

ID1=0123456789abcdef0123456789abcdef
KEY=AIzaTest-key_0123456789
CACHEDIR=$XDG_CACHE_HOME/p2pcat
fs_serve --auth issued --api-key "$KEY"
export FIREBASE_AUTH_EMULATOR_HOST=$FIRESTORE_EMULATOR_HOST
printf '%s\n' "$KEY" >"$T/key"
chmod 600 "$T/key"
errhas() { grep -q -- "$2" "$T/$1.err" || { cat "$T/$1.err" >&2; fail "$1: no \`$2' in its stderr"; }; }

# No room for the cache: write(2) fails with EFBIG (SIGXFSZ ignored, as
# the limit's signal would otherwise end the process).  stderr goes
# through a pipe, which the limit does not cover.
(trap '' XFSZ; ulimit -f 0; UNIT_FS_VERBOSE=1 exec "$U" -k "$T/key" \
    offer bob $ID1 01 60000 2>&1 >"$T/full.out") | cat >"$T/full.err"
errhas full "cannot write the token cache"
errhas full "File too large"
check_eq "descriptors left after a failed cache write" \
    "$(sed -n 's/^open fds //p' "$T/full.err")" 0
check_eq "files in the cache directory" "$(ls -A "$CACHEDIR" | wc -l)" 0
check_eq "offer despite the cache" "$($REST dump)" "inbox/bob/offers/$ID1"

echo "token cache: no room reported and cleaned up"
