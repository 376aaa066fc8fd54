#!/bin/sh
# A caller who runs a modified p2pcat and names itself (the offer's NAME)
# with what p2pcat would refuse in P2PCAT_NAME: a newline followed by
# "carol KEY" (its own key), and terminal escape sequences.  The listener
# records callers by that name in known_callers (DESCRIPTION), a file of
# `name key store' lines (FILES), like the known_peers it trusts when it
# calls out: a name that is not a name must never add a line of its own
# to either, nor reach the terminal raw.  Then, when the listener's user calls carol and
# the attacker answers, that is a first contact, announced as one.
# The modified caller is built here from the sources, with the check of
# P2PCAT_NAME taken out: nothing else differs.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || skip "no cc or make"

mkdir "$T/evil"
cp -R "$SRCDIR"/*.c "$SRCDIR"/*.h "$SRCDIR"/Makefile "$SRCDIR"/proto "$T/evil/" ||
	fail "cannot copy the sources"
check='if (o->name \&\& !name_ok(o->name, "name", " in P2PCAT_NAME or the config"))'
grep -q "$check" "$T/evil/opts.c" ||
	fail "opts.c no longer checks P2PCAT_NAME as this test expects: update it"
sed -i "s/$check/if (0)/" "$T/evil/opts.c"
make -s -C "$T/evil" p2pcat > "$T/evil.log" 2>&1 ||
	fail "cannot build the modified caller: $(tail -n 3 "$T/evil.log")"
EVIL=$T/evil/p2pcat

as() {
	_u=$1; shift
	env HOME="$T/$_u" XDG_CONFIG_HOME="$T/$_u/.config" "$@"
}
MALLORY=$(as mallory "$P2PCAT" --id 2>/dev/null)
KP=$T/bob/.config/p2pcat/known_peers KC=$T/bob/.config/p2pcat/known_callers
echo "hello from mallory" > "$T/m.msg"
NL='
'
ESC=$(printf '\033')

n=0
for name in "x${NL}carol $MALLORY" "${ESC}]0;owned${ESC}\\${ESC}[2J${ESC}[31mdave"; do
	n=$((n + 1))
	env HOME="$T/bob" XDG_CONFIG_HOME="$T/bob/.config" "$P2PCAT" -w 3 -l bob \
		< /dev/null > "$T/l.out" 2> "$T/l.err" & lp=$!
	as mallory env P2PCAT_NAME="$name" "$EVIL" -w 5 bob < "$T/m.msg" > /dev/null 2> "$T/m.err" & mp=$!
	wait_exit $mp 20 || fail "modified caller $n hung: $(cat "$T/m.err")"
	mrc=$RC
	# The listener may take or refuse the call; either way it must end
	# or go on waiting, and never crash.
	settled() { exited $lp || grep -q "did not connect" "$T/l.err"; }
	wait_for 15 settled || fail "listener $n: $(cat -A "$T/l.err")"
	if exited $lp; then
		wait_exit $lp 1
	else
		kill -TERM $lp; wait_exit $lp 5 || fail "listener $n ignored SIGTERM"
	fi
	[ $RC -lt 128 ] || [ $RC -eq 143 ] || fail "listener $n: status $RC"
	echo "name $n: caller $mrc, listener $RC: $(cat -A "$T/l.err" | head -c 300)"
	if grep -q "$ESC" "$T/l.err"; then
		fail "PRODUCT BUG: the caller's name reached the listener's stderr with its escape sequences: $(cat -A "$T/l.err")"
	fi
	for f in "$KP" "$KC"; do
		[ -e "$f" ] || continue
		while IFS= read -r line; do
			echo "$line" | grep -Eqx "[A-Za-z0-9._-]{1,64} [A-Za-z0-9+/]{43}= dir:$T/rv" ||
				fail "PRODUCT BUG: the caller's name made this line of $f: \`$line' (whole file: $(cat -A "$f"))"
		done < "$f"
	done
done

# Bob calls carol; mallory answers as carol.  Nothing recorded carol, so
# this is a first contact and says so.
as mallory "$P2PCAT" -w 3 -l carol < "$T/m.msg" > /dev/null 2> "$T/m.err" & mp=$!
as bob "$P2PCAT" -w 5 carol < /dev/null > "$T/c.out" 2> "$T/c.err"
crc=$?
wait_exit $mp 10 || { kill -TERM $mp; wait $mp; }
grep -q "first contact with \`carol'" "$T/c.err" ||
	fail "PRODUCT BUG: bob called carol, mallory answered, and bob trusted her key without a first contact (status $crc): $(cat "$T/c.err")"
echo "attack_name: ok"
