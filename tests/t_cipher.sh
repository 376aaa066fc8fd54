#!/bin/sh
# The record cipher, with the real binary on loopback: AES-256-GCM when
# both sides can, ChaCha20-Poly1305 when either side is held to it
# (P2PCAT_CIPHER), nothing when the two are held to different ones; data
# intact every time; and a bad P2PCAT_CIPHER is a usage error.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
randfile "$T/data" 8

P2PCAT_CIPHER=blowfish "$P2PCAT" -w 0.2 x > "$T/out" 2> "$T/err"
check_eq "status with a bad P2PCAT_CIPHER" $? 1
grep -q "bad P2PCAT_CIPHER \`blowfish'" "$T/err" || fail "bad P2PCAT_CIPHER: $(cat "$T/err")"
[ -s "$T/out" ] && fail "a bad P2PCAT_CIPHER wrote to stdout"

# pair CALLER-CIPHER LISTENER-CIPHER: one transfer; sets CRC, and RC
# when the caller succeeded; the listener's -v log is in $T/l.err.
pair() {
	P2PCAT_CIPHER=$2 "$P2PCAT" -v -l --recv-only bob > "$T/got" 2> "$T/l.err" & lp=$!
	P2PCAT_CIPHER=$1 "$P2PCAT" -w 3 --send-only bob < "$T/data" 2> "$T/c.err"
	CRC=$?
	if [ $CRC -eq 0 ]; then
		wait_exit $lp 20 || fail "listener hung: $(cat "$T/l.err")"
	else
		kill $lp; wait $lp
	fi
}

# used CALLER LISTENER WANT: the pair connects with cipher WANT.
used() {
	pair "$1" "$2"
	check_eq "caller status, $1/$2 ($(cat "$T/c.err"))" $CRC 0
	check_eq "listener status, $1/$2" $RC 0
	check_eq "sha256, $1/$2" "$(sha "$T/got")" "$(sha "$T/data")"
	got=$(sed -n 's/.*record cipher: //p' "$T/l.err")
	check_eq "cipher, caller ${1:-any}, listener ${2:-any}" "$got" "$3"
}

# -v names the cipher as P2PCAT_CIPHER does: one name everywhere.
used chacha20-poly1305 "" chacha20-poly1305
used "" chacha20-poly1305 chacha20-poly1305
if grep -qw aes /proc/cpuinfo && grep -qw pclmulqdq /proc/cpuinfo; then
	used "" "" aes256-gcm
	used aes256-gcm "" aes256-gcm
	used "" aes256-gcm aes256-gcm
	# Held to different ciphers: the listener says so and answers
	# nothing; the caller gives up after -w with status 2.
	pair aes256-gcm chacha20-poly1305
	check_eq "caller status, no cipher in common" $CRC 2
	grep -q "the caller offers no cipher we can use" "$T/l.err" ||
		fail "listener: $(cat "$T/l.err")"
	[ -s "$T/got" ] && fail "bytes delivered with no cipher in common"
	echo "aes256-gcm by default; chacha20-poly1305 when either side is held to it"
else
	used "" "" chacha20-poly1305
	P2PCAT_CIPHER=aes256-gcm "$P2PCAT" -w 0.2 x 2> "$T/err"
	check_eq "aes256-gcm on a CPU without AES" $? 1
	echo "this CPU has no AES instructions: chacha20-poly1305 only"
fi
