#!/bin/sh
# Identity and trust on loopback, each user with its own HOME:
#   a) the key file: 0600 in a 0700 directory, --id prints it (44-character
#      base64, the same twice) and its fingerprint, a group- or
#      world-readable key is refused
#   b) known_peers: first contact recorded and announced, second contact
#      silent, a new key under a known name refused (exit 4, no byte out)
#   c) --peer-key: the right key and its fingerprint pass, another fails (4)
#   d) --allow: a listed caller passes, an unlisted one is refused, and
#      told so at once
#   e) passphrase mode: same secret connects whatever known_peers says,
#      a private secret file only, P2PCAT_SECRET, the secret never printed
#      nor put in the rendezvous; a wrong secret connects nothing, and
#      both sides say so at once
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/tests/peers.sh"
mode() { stat -c %a "$1"; }
# session_ok WHAT: both exited 0, both messages intact.
session_ok() {
	served "$1"
	cmp -s "$T/cin" "$T/l.out" || fail "$1: listener got \`$(cat "$T/l.out")'"
	cmp -s "$T/lin" "$T/c.out" || fail "$1: caller got \`$(cat "$T/c.out")'"
	echo "$1: ok"
}

printf 'from alice %s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$T/cin"
echo "from bob: the listener's data" > "$T/lin"

echo "== a) identity"
out=$(as alice "$P2PCAT" --id 2> "$T/err") || fail "--id: $(cat "$T/err")"
has "$T/err" "created a new key in \`$T/alice/.config/p2pcat/key'"
echo "$out" | grep -Eqx '[A-Za-z0-9+/]{43}=' || fail "--id printed \`$out'"
check_eq "--id lines" "$(echo "$out" | wc -l)" 1
check_eq "key file mode" "$(mode "$T/alice/.config/p2pcat/key")" 600
check_eq "key directory mode" "$(mode "$T/alice/.config/p2pcat")" 700
check_eq "key file size" "$(stat -c %s "$T/alice/.config/p2pcat/key")" 45
out2=$(as alice "$P2PCAT" --id 2> "$T/err") || fail "second --id: $(cat "$T/err")"
check_eq "--id a second time" "$out2" "$out"
# On stderr, only the fingerprint, the form messages show keys in: the
# SHA-256 of the key's 32 bytes, in base64 without padding.
fp=$(python3 -c 'import base64, hashlib, sys
k = base64.b64decode(sys.argv[1])
print("SHA256:" + base64.b64encode(hashlib.sha256(k).digest()).decode().rstrip("="))' "$out")
check_eq "second --id on stderr" "$(cat "$T/err")" "p2pcat: fingerprint $fp"
ALICE=$out
check_eq "-v --id fingerprint" "$(fp_of alice)" "$fp"
for m in 644 640 604; do
	chmod $m "$T/alice/.config/p2pcat/key"
	as alice "$P2PCAT" --id > "$T/out" 2> "$T/err"
	check_eq "--id with a key of mode $m" $? 1
	no_output "$T/out" "--id with a key of mode $m"
	has "$T/err" "\`$T/alice/.config/p2pcat/key'"
	as alice "$P2PCAT" -w 1 nobody < /dev/null > /dev/null 2> "$T/err"
	check_eq "calling with a key of mode $m" $? 1
	has "$T/err" "\`$T/alice/.config/p2pcat/key'"
done
chmod 600 "$T/alice/.config/p2pcat/key"
check_eq "--id after chmod 600" "$(key_of alice)" "$ALICE"
# A key file that is a symbolic link (to a good key) is refused too.
mkdir -p "$T/dave/.config/p2pcat"
ln -s "$T/alice/.config/p2pcat/key" "$T/dave/.config/p2pcat/key"
as dave "$P2PCAT" --id > "$T/out" 2> "$T/err"
check_eq "--id with a symbolic link as the key" $? 1
no_output "$T/out" "--id with a symbolic link as the key"
has "$T/err" "\`$T/dave/.config/p2pcat/key'"
BOB=$(key_of bob) BOBFP=$(fp_of bob)
BOB2=$(key_of bob2) MALLORY=$(key_of mallory) CAROL=$(key_of carol) CAROLFP=$(fp_of carol)
[ "$BOB" != "$BOB2" ] && [ "$BOB" != "$ALICE" ] || fail "two users got one key"
echo "identity: ok"

echo "== b) known_peers"
KP=$T/alice/.config/p2pcat/known_peers
listen bob bob
call alice bob
session_ok "first contact"
has "$T/c.err" "first contact with \`bob': trusting its key $BOBFP (added to \`$KP')"
check_eq "known_peers after the first contact" "$(cat "$KP")" "bob $BOB dir:$T/rv"
check_eq "known_peers mode" "$(mode "$KP")" 600

# Second contact, the caller named (P2PCAT_NAME): silent on the caller's
# side; the listener records the caller by that name, in known_callers:
# a name a caller claims is not one to call.
listen bob bob
CENV=P2PCAT_NAME=alice
call alice bob
CENV=
session_ok "second contact"
no_output "$T/c.err" "second contact on the caller's stderr"
check_eq "known_peers after the second contact" "$(cat "$KP")" "bob $BOB dir:$T/rv"
has "$T/l.err" "first contact with \`alice', the name a caller gave"
check_eq "bob's known_callers" "$(cat "$T/bob/.config/p2pcat/known_callers")" "alice $ALICE dir:$T/rv"
[ -e "$T/bob/.config/p2pcat/known_peers" ] && fail "a caller's name went into bob's known_peers"

# Someone else (another key) listens as bob: exit 4, nothing printed, and
# the listener gets nothing from us.
echo "from the impostor" > "$T/lin.imp"
cp "$T/lin" "$T/lin.bob"; cp "$T/lin.imp" "$T/lin"
listen bob2 -w 2 bob
call alice bob
check_eq "caller status on a changed key ($(cat "$T/c.err"))" $CRC 4
has "$T/c.err" "KEY MISMATCH"
has "$T/c.err" "\`$KP'"
no_output "$T/c.out" "caller on a changed key"
# The caller tells the listener, which gives up on it at once (not after
# its -w of 2 s: that would say "did not connect") and waits for the next.
wait_for 10 grep -q "the caller gave up: it does not accept our key" "$T/l.err" ||
	fail "listener: $(cat "$T/l.err")"
grep -q "did not connect" "$T/l.err" && fail "the listener waited out its -w: $(cat "$T/l.err")"
stop_listener
no_output "$T/l.out" "the impostor"
check_eq "known_peers after the mismatch" "$(cat "$KP")" "bob $BOB dir:$T/rv"
cp "$T/lin.bob" "$T/lin"
echo "known_peers: ok"

echo "== c) --peer-key"
listen bob bob
call carol --peer-key "$BOB" bob
session_ok "--peer-key with bob's key"
[ -e "$T/carol/.config/p2pcat/known_peers" ] && fail "--peer-key wrote known_peers"
listen bob bob
call carol --peer-key "$BOBFP" bob
session_ok "--peer-key with bob's fingerprint"
for k in "$MALLORY" "$CAROLFP"; do
	listen bob -w 2 bob
	call carol --peer-key "$k" bob
	check_eq "caller status with --peer-key $k ($(cat "$T/c.err"))" $CRC 4
	has "$T/c.err" "not the one given with --peer-key"
	no_output "$T/c.out" "caller with the wrong --peer-key"
	wait_for 10 grep -q "the caller gave up: it does not accept our key" "$T/l.err" ||
		fail "listener: $(cat "$T/l.err")"
	stop_listener
	no_output "$T/l.out" "listener of a caller with the wrong --peer-key"
done
for k in "${BOB%=}" "x$BOB" "SHA256:abc" "$BOB "; do
	as carol "$P2PCAT" --peer-key "$k" -w 1 bob < /dev/null > /dev/null 2> "$T/err"
	check_eq "status with --peer-key \`$k'" $? 1
	has "$T/err" "bad key"
done
echo "--peer-key: ok"

echo "== d) --allow"
printf '# who may call\n  %s  # alice\n%s\n\n' "$ALICE" "$CAROLFP" > "$T/allow"
listen bob --allow "$T/allow" bob
call alice bob
session_ok "--allow, a listed key"
listen bob --allow "$T/allow" bob
call carol bob
session_ok "--allow, a listed fingerprint"
# Mallory is not listed: the listener refuses her and, since a refused
# caller is no session served, goes on waiting (a stranger cannot end
# it); she is told at once (exit 4, well within her -w of 20 s).  Alice,
# listed, is served next.
listen bob --allow "$T/allow" bob
call mallory -w 20 bob
check_eq "unlisted caller status ($(cat "$T/c.err"))" $CRC 4
has "$T/c.err" "the listener refused us: it does not accept our key"
has "$T/l.err" "refusing the caller: key $(fp_of mallory) is not in \`$T/allow'"
kill -0 $LP 2>/dev/null || fail "the listener exited after refusing an unlisted caller"
no_output "$T/l.out" "listener of an unlisted caller"
no_output "$T/c.out" "unlisted caller"
call alice bob
session_ok "--allow, a listed caller after a refused one"
echo "--allow: ok"

echo "== e) passphrase mode"
SECRET='correct horse battery staple 7Qx'
printf '%s\n' "$SECRET" > "$T/secret"
chmod 600 "$T/secret"
cp "$T/secret" "$T/secret.b"
# bob2 now listens as bob: alice's known_peers says otherwise, but the
# passphrase is what authenticates.
listen bob2 --secret-file "$T/secret.b" bob
call alice --secret-file "$T/secret" bob
session_ok "same passphrase, another key than known_peers has"
grep -q "KEY MISMATCH" "$T/c.err" && fail "known_peers consulted in passphrase mode"
check_eq "known_peers after passphrase mode" "$(cat "$KP")" "bob $BOB dir:$T/rv"
# P2PCAT_SECRET on both sides, then one side each way; no trailing newline.
ESECRET='tr0ub4dor-and-3'
LENV=P2PCAT_SECRET=$ESECRET CENV=P2PCAT_SECRET=$ESECRET
listen bob2 bob
call alice bob
session_ok "P2PCAT_SECRET"
printf '%s\n' "$ESECRET" > "$T/esecret"; chmod 600 "$T/esecret"
LENV=
listen bob2 --secret-file "$T/esecret" bob
call alice bob
session_ok "P2PCAT_SECRET and the same passphrase in a file"
CENV=
# A secret file others can read is refused.
for m in 644 640; do
	cp "$T/secret" "$T/secret.$m"; chmod $m "$T/secret.$m"
	as alice "$P2PCAT" --secret-file "$T/secret.$m" -w 1 bob < /dev/null > "$T/out" 2> "$T/err"
	check_eq "status with a secret file of mode $m" $? 1
	has "$T/err" "\`$T/secret.$m'"
	grep -qF "$SECRET" "$T/err" && fail "the secret was printed"
done

# The secret in neither -v -v output nor the rendezvous: the caller is
# stopped once its offer is posted, so the answer stays in the directory
# long enough to be copied.
rm -rf "$T/rv"
env HOME="$T/alice" XDG_CONFIG_HOME="$T/alice/.config" "$P2PCAT" -v -v \
	--secret-file "$T/secret" bob < "$T/cin" > "$T/c.out" 2> "$T/c.err" & cp=$!
offer_file() { set -- "$T"/rv/inbox/bob/offers/*; [ -f "$1" ] && OFFER=$1; }
wait_for 10 offer_file || fail "no offer: $(cat "$T/c.err")"
kill -STOP $cp
cp "$OFFER" "$T/offer.copy"
listen bob2 -v -v --secret-file "$T/secret.b" bob
answer_file() { set -- "$T"/rv/inbox/bob/answers/*; [ -f "$1" ] && ANSWER=$1; }
wait_for 10 answer_file || { kill -CONT $cp; fail "no answer: $(cat "$T/l.err")"; }
cp "$ANSWER" "$T/answer.copy"
find "$T/rv" -type f -exec cat {} + > "$T/rv.copy"
kill -CONT $cp
wait_exit $cp 30 || fail "caller hung: $(cat "$T/c.err")"
CRC=$RC
session_ok "passphrase mode with -v -v"
head -n 1 "$T/offer.copy" | grep -qx "p2pcat-sig 1" || fail "offer copy: $(head -n 1 "$T/offer.copy")"
head -n 1 "$T/answer.copy" | grep -qx "p2pcat-sig 1" || fail "answer copy"
for f in "$T/c.err" "$T/l.err" "$T/offer.copy" "$T/answer.copy" "$T/rv.copy"; do
	[ -s "$f" ] || fail "$f is empty"
	grep -aqF "$SECRET" "$f" && fail "the secret is in $f"
	grep -aqF "horse battery" "$f" && fail "part of the secret is in $f"
done
grep -raqF "$SECRET" "$T/rv" && fail "the secret is in the rendezvous directory"
has "$T/c.err" "passphrase mode: the peer has key"
echo "secret kept: ok"

# Different passphrases: the listener refuses the caller and says so, the
# caller hears it at once (exit 4, not 2 after its -w of 20 s), and no
# byte crosses either way.
echo "wrong secret" > "$T/secret.w"; chmod 600 "$T/secret.w"
listen bob2 -w 20 --idle 2 --secret-file "$T/secret.b" bob
call alice -w 20 --secret-file "$T/secret.w" bob
check_eq "caller status with another passphrase ($(cat "$T/c.err"))" $CRC 4
has "$T/c.err" "the listener refused us: the passphrases differ"
no_output "$T/c.out" "caller with another passphrase"
no_output "$T/l.out" "listener of a caller with another passphrase"
# Documented (DESCRIPTION): "A caller that never connects is not a session
# served: the listener goes on waiting."  It says what it refused, and
# serves the next caller, who has the passphrase.
settled() { grep -q "refusing the caller: it failed the passphrase" "$T/l.err" || exited $LP; }
wait_for 15 settled || fail "listener neither gave up on the caller nor exited: $(cat "$T/l.err")"
exited $LP && { listener_done 1; fail "after a caller with another passphrase the listener exited $LRC instead of waiting: $(cat "$T/l.err")"; }
grep -q "connected" "$T/l.err" && fail "listener connected to a caller without the passphrase"
call alice --secret-file "$T/secret" bob
session_ok "the right passphrase after a wrong one"
echo "passphrase mode: ok"
echo "trust: ok"
