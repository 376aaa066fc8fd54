#!/bin/sh
# t_valgrind: loopback transfers with both ends under valgrind memcheck,
# 1 MiB each way: a plain one, one in passphrase mode, and one that meets
# through the firestore: rendezvous (tests/fsserver.py, with anonymous
# sign-in).  No invalid access, no use of uninitialised memory, no leak
# (definite, indirect or possible), and the data intact.
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null 2>&1 || skip "valgrind not installed"
# ASan and valgrind cannot watch one process together.
grep -qa __asan_init "$P2PCAT" && skip "a SANITIZE=1 build: ASan checks it instead"
export P2PCAT_SIGNAL="dir:$T/rv"
VG="valgrind -q --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible"

# transfer NAME [ENV=VALUE]: both ends under valgrind; a to the listener,
# b to the caller.
transfer() {
	_name=$1; shift
	env "$@" $VG --log-file="$T/$_name.l.vg" "$P2PCAT" -w 60 -l bob \
	    <"$T/b" >"$T/$_name.a.got" 2>"$T/$_name.l.err" & _lp=$!
	env "$@" $VG --log-file="$T/$_name.c.vg" "$P2PCAT" -w 60 bob \
	    <"$T/a" >"$T/$_name.b.got" 2>"$T/$_name.c.err" & _cp=$!
	wait_exit $_cp 300 || fail "$_name: caller hung: $(cat "$T/$_name.c.err")"
	_crc=$RC
	wait_exit $_lp 60 || fail "$_name: listener hung: $(cat "$T/$_name.l.err")"
	for _s in l c; do
		[ -s "$T/$_name.$_s.vg" ] && { cat "$T/$_name.$_s.vg" >&2; fail "$_name: valgrind found errors ($_s)"; }
	done
	check_eq "$_name: caller status ($(cat "$T/$_name.c.err"))" $_crc 0
	check_eq "$_name: listener status ($(cat "$T/$_name.l.err"))" $RC 0
	cmp -s "$T/a" "$T/$_name.a.got" || fail "$_name: caller to listener differs"
	cmp -s "$T/b" "$T/$_name.b.got" || fail "$_name: listener to caller differs"
}

randfile "$T/a" 1
randfile "$T/b" 1
transfer plain
transfer passphrase P2PCAT_SECRET="a shared passphrase"
command -v python3 >/dev/null || skip "no python3 for tests/fsserver.py"
fs_serve --auth issued --api-key AIzaTest-key_0123456789
transfer firestore P2PCAT_SIGNAL=firestore:p2pcat-test \
    P2PCAT_API_KEY=AIzaTest-key_0123456789 \
    FIREBASE_AUTH_EMULATOR_HOST="$FIRESTORE_EMULATOR_HOST"
n=$(python3 "$SRCDIR/tests/firestore_rest.py" count POST accounts:signUp)
[ "$n" -ge 1 ] || fail "firestore: no anonymous sign-in seen by the server"
echo "valgrind: three transfers of 1 MiB each way, clean"
