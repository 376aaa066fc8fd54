#!/bin/sh
# The trust rules of trust.h on the real binary:
#   a) pins and allow lists hold in passphrase mode too (issue 10.1)
#   b) a name a caller claims never decides whom we reach when we call
#      that name (issue 10.4), and names are scoped by store
#   c) known_peers and --allow files: a line that does not read refuses
#      and names the line; a file others may change is refused; --allow is
#      read at startup (issues 10.8, 12.5)
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/tests/peers.sh"
ALICE=$(key_of alice) BOB=$(key_of bob) CAROL=$(key_of carol)
MALLORY=$(key_of mallory) MALLORYFP=$(fp_of mallory)
echo "hello" > "$T/cin"

echo "== a) pins and allow lists in passphrase mode"
P2PCAT_SECRET=one-shared-passphrase
export P2PCAT_SECRET
printf '%s\n' "$ALICE" > "$T/allow"
# Mallory knows the passphrase but is not in bob's --allow file.
listen bob -w 5 --allow "$T/allow" bob
call mallory -w 5 bob
exited $LP || { kill -TERM $LP; listener_done 5; }
grep -q "connected" "$T/l.err" && fail "an unlisted caller with the passphrase connected: $(cat "$T/l.err")"
[ "$CRC" -ne 0 ] || fail "an unlisted caller with the passphrase got status 0"
has "$T/l.err" "refusing the caller: key $MALLORYFP is not in \`$T/allow'"
no_output "$T/l.out" "the listener of an unlisted caller"
# Alice, listed, with the passphrase: served.
listen bob --allow "$T/allow" bob
call alice bob
served "a listed caller with the passphrase"
# Mallory listens as bob with the passphrase; carol pins bob's key.
listen mallory bob
call carol --peer-key "$BOB" bob
stop_listener
[ "$CRC" -eq 4 ] || fail "a pinned caller with the passphrase got status $CRC from an impostor: $(cat "$T/c.err")"
has "$T/c.err" "not the one given with --peer-key"
no_output "$T/l.out" "the impostor"
unset P2PCAT_SECRET
echo "passphrase mode: pins and allow lists hold"

echo "== b) names callers claim"
# Mallory calls bob as `carol'.  Later bob calls carol, the real one:
# that is a first contact, not a mismatch, and it connects.
listen bob bob
CENV=P2PCAT_NAME=carol
call mallory bob
CENV=
served "mallory calling herself carol"
has "$T/l.err" "first contact with \`carol', the name a caller gave"
check_eq "bob's known_callers" "$(cat "$(cfg bob)/known_callers")" "carol $MALLORY dir:$T/rv"
[ -e "$(cfg bob)/known_peers" ] && fail "mallory's claim went into bob's known_peers: $(cat "$(cfg bob)/known_peers")"
listen carol carol
call bob carol
served "bob calling the real carol"
has "$T/c.err" "first contact with \`carol': trusting its key"
check_eq "bob's known_peers" "$(cat "$(cfg bob)/known_peers")" "carol $CAROL dir:$T/rv"
# The claim still labels mallory's key only: another key calling itself
# carol is refused by bob (as a listener), and told so.
listen bob -w 5 bob
CENV=P2PCAT_NAME=carol
call alice -w 5 bob
CENV=
exited $LP || { kill -TERM $LP; listener_done 5; }
[ "$CRC" -ne 0 ] || fail "a second key calling itself carol was served"
has "$T/l.err" "it calls itself \`carol'"
# Scopes: alice knows bob in $T/rv (she just called him); in another
# store, bob is whoever answers there first.
check_eq "alice's known_peers" "$(cat "$(cfg alice)/known_peers")" "bob $BOB dir:$T/rv"
listen mallory -S "dir:$T/rv2" bob
call alice -S "dir:$T/rv2" bob
served "bob in another store"
has "$T/c.err" "first contact with \`bob'"
listen bob bob
call alice bob
served "bob in the first store"
check_eq "alice's known_peers" "$(cat "$(cfg alice)/known_peers")" "bob $BOB dir:$T/rv
bob $MALLORY dir:$T/rv2"
listen mallory bob
call alice bob
stop_listener
check_eq "mallory as bob in the first store" $CRC 4
has "$T/c.err" "KEY MISMATCH"
echo "claimed names: apart from the names we call, scoped by store"

echo "== c) the files"
KP=$(cfg alice)/known_peers
# A line that does not read: refused at startup, naming the line; nothing
# appended.
printf 'bob %s dir:%s\ncarol notakey\n' "$BOB" "$T/rv" > "$KP"
cp "$KP" "$T/kp.before"
call alice -w 3 carol
check_eq "status with a corrupt known_peers line" $CRC 1
has "$T/c.err" "$KP:2: want \`name key [rendezvous]'"
cmp -s "$KP" "$T/kp.before" || fail "known_peers changed: $(cat "$KP")"
# A file others may change.
printf 'bob %s dir:%s\n' "$BOB" "$T/rv" > "$KP"
chmod 602 "$KP"
call alice -w 3 bob
check_eq "status with a world-writable known_peers" $CRC 1
has "$T/c.err" "\`$KP' may be changed by others"
# A group's write bit counts unless the group is the owner's own private
# one (Debian's user private groups): root can give it another group.
if [ "$(id -u)" -eq 0 ]; then
	chmod 620 "$KP"
	chgrp 65534 "$KP"
	call alice -w 3 bob
	check_eq "status with a known_peers another group can write" $CRC 1
	has "$T/c.err" "\`$KP' may be changed by others"
	chgrp 0 "$KP"
fi
chmod 644 "$KP"
listen bob bob
call alice bob
served "known_peers readable by others"
# A line that stops reading once the caller has started (the file edited
# while it waits for its answer) is the same configuration error, status
# 1, not a verdict on the peer's key (4).
as alice "$P2PCAT" -v -w 20 bob < "$T/cin" > "$T/c.out" 2> "$T/c.err" & cp=$!
posted() { grep -q "posted to \`bob'" "$T/c.err"; }
wait_for 10 posted || fail "the caller posted no offer: $(cat "$T/c.err")"
printf 'carol notakey\n' >> "$KP"
listen bob bob
wait_exit $cp 30 || fail "the caller hung: $(cat "$T/c.err")"
check_eq "status with a known_peers line broken during the session" $RC 1
has "$T/c.err" "$KP:2: want \`name key [rendezvous]'"
exited $LP || { kill -TERM $LP; listener_done 5; }
printf 'bob %s dir:%s\n' "$BOB" "$T/rv" > "$KP"
# --allow: read at startup, so a listener with a bad one never starts.
for bad in /nonexistent "$T/allow.bad" "$T/allow.gw"; do
	printf '%s\nbob %s\n' "$ALICE" "$BOB" > "$T/allow.bad"
	printf '%s\n' "$ALICE" > "$T/allow.gw"; chmod 602 "$T/allow.gw"
	listen bob --allow "$bad" bob
	listener_done 5
	check_eq "listener status with --allow $bad" $LRC 1
	has "$T/l.err" "$bad"
done
has "$T/l.err" "may be changed by others"
echo "files: bad lines and writable files refused, --allow checked at startup"
echo "trust_rules: ok"
