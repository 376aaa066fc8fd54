#!/bin/sh
# A dir: rendezvous shared by two users (root runs them with setpriv):
# a sticky world-writable directory, as /tmp, and a group's setgid one,
# each with both users' umask at 077, listener first and caller first; an
# offer file the listener cannot read is skipped, once; a directory that
# is not shared is a clear error at once, not a silent wait.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || skip "needs root (to run as two users)"
command -v setpriv >/dev/null || skip "no setpriv"
A=64101 B=64102 G=64110
chmod 711 "$T"
for u in alice bob; do
	mkdir -p "$T/$u/run"
	chmod 700 "$T/$u/run"
done
chown -R $A:$A "$T/alice"
chown -R $B:$B "$T/bob"

# as USER CMD...: CMD as USER (uid, home, umask 077, member of G).
as() {
	_u=$1; shift
	case $_u in alice) _id=$A ;; bob) _id=$B ;; esac
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" XDG_RUNTIME_DIR="$T/$_u/run" \
	    setpriv --reuid=$_id --regid=$_id --groups=$G sh -c 'umask 077; exec "$@"' sh "$@"
}
mode() { stat -c %a "$1"; }

# call ROOT NAME ORDER: bob listens as NAME in ROOT, alice calls NAME,
# the listener first or the caller first (ORDER); the data must arrive.
call() {
	_rv=$1 _name=$2
	echo "hello $_name $(od -An -N8 -tx1 /dev/urandom | tr -d ' ')" > "$T/msg"
	chmod 644 "$T/msg"
	: > "$T/got"
	chown $B "$T/got"
	if [ "$3" = listener-first ]; then
		as bob "$P2PCAT" -S "dir:$_rv" -l -v --recv-only "$_name" > "$T/got" 2> "$T/l.err" & lp=$!
		wait_for 10 grep -qs "listening as" "$T/l.err" || fail "listener did not start: $(cat "$T/l.err")"
		as alice "$P2PCAT" -S "dir:$_rv" -w 10 "$_name" < "$T/msg" 2> "$T/c.err" & cp=$!
	else
		as alice "$P2PCAT" -S "dir:$_rv" -w 10 "$_name" < "$T/msg" 2> "$T/c.err" & cp=$!
		wait_for 10 sh -c "ls '$_rv/inbox/$_name/offers' 2>/dev/null | grep -q ." ||
			fail "caller posted no offer: $(cat "$T/c.err")"
		as bob "$P2PCAT" -S "dir:$_rv" -l -v --recv-only "$_name" > "$T/got" 2> "$T/l.err" & lp=$!
	fi
	wait_exit $cp 20 || fail "caller hung ($3): $(cat "$T/c.err")"
	check_eq "caller's status ($3, $_rv; $(cat "$T/c.err"))" $RC 0
	wait_exit $lp 10 || fail "listener hung ($3)"
	check_eq "listener's status ($3, $_rv; $(cat "$T/l.err"))" $RC 0
	cmp -s "$T/msg" "$T/got" || fail "listener got \`$(cat "$T/got")' ($3)"
}

echo "== a sticky directory open to all, as /tmp"
meet=$T/meet
mkdir -m 1777 "$meet"
call "$meet" bob listener-first
call "$meet" carol caller-first
check_eq "modes of inbox, inbox/bob, its offers and answers" \
	"$(mode "$meet/inbox") $(mode "$meet/inbox/bob") $(mode "$meet/inbox/bob/offers") $(mode "$meet/inbox/bob/answers")" \
	"1777 1777 777 777"

echo "== an offer bob cannot read, left by an older p2pcat with umask 077"
id=00000000000000000000000000000abc
as alice sh -c "printf 'p2pcat-sig 1\nexpire 99999999999999\npid 1\nhost elsewhere.invalid\n\nx' > '$meet/inbox/bob/offers/$id'"
check_eq "its mode" "$(mode "$meet/inbox/bob/offers/$id")" 600
call "$meet" bob listener-first
check_eq "reports of the unreadable offer ($(cat "$T/l.err"))" "$(grep -c "$id.*cannot read it" "$T/l.err")" 1
[ -f "$meet/inbox/bob/offers/$id" ] || fail "the unreadable offer was removed"
rm -f "$meet/inbox/bob/offers/$id"

echo "== a group's setgid directory"
grp=$T/group
mkdir -m 2770 "$grp"
chgrp $G "$grp"
call "$grp" dave caller-first
call "$grp" dave listener-first
check_eq "modes and groups of inbox/dave and its offers" \
	"$(stat -c '%a %g' "$grp/inbox/dave" "$grp/inbox/dave/offers" | tr '\n' ' ')" \
	"2770 $G 2770 $G "

echo "== alice's own directory, not shared: bob is told at once"
own=$T/alices
mkdir -m 755 "$own"
chown $A "$own"
as alice "$P2PCAT" -S "dir:$own" -w 3 erin < /dev/null 2> "$T/c.err" & cp=$!
wait_for 10 test -d "$own/inbox/erin/offers" || fail "caller posted no offer: $(cat "$T/c.err")"
as bob timeout 10 "$P2PCAT" -S "dir:$own" -l erin < /dev/null > /dev/null 2> "$T/l.err"
check_eq "listener's status in another user's directory" $? 2
grep -q "rendezvous directory \`$own/inbox.*Permission denied (see SHARED DIRECTORIES" "$T/l.err" ||
	fail "listener's message: $(cat "$T/l.err")"
wait_exit $cp 10 || fail "caller hung"
echo "shared: ok"
