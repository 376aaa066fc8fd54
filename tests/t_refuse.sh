#!/bin/sh
# Refusals are said at once, on both sides, in one line each:
#   a) a -u caller and a stream listener (and the reverse) refuse each
#      other in the handshake, status 1, instead of both exiting 0 having
#      exchanged nothing (issue 12.3)
#   b) a caller that fails the passphrase is refused and told so; the
#      listener says "a caller failed the passphrase" and takes no offer
#      for 1 s, then 2 s, ...; a caller that connects starts the count
#      again (issues 10.6, 12.1)
#   c) the caller's name is not in the store: it travels encrypted in the
#      handshake, and the listener still learns it (issue 10.8)
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/tests/peers.sh"
echo "from the caller" > "$T/cin"
echo "from the listener" > "$T/lin"

echo "== a) -u and a stream"
for side in caller listener; do
	if [ $side = caller ]; then lu=; cu=-u; else lu=-u; cu=; fi
	listen bob -w 20 $lu bob
	call alice -w 20 $cu bob
	check_eq "status of the caller ($side has -u): $(cat "$T/c.err")" $CRC 1
	has "$T/c.err" "use -u on both sides or on neither"
	wait_for 10 grep -q "refusing the caller: it" "$T/l.err" ||
		fail "the listener ($side has -u) did not say it refused: $(cat "$T/l.err")"
	has "$T/l.err" "use -u on both sides or on neither"
	no_output "$T/c.out" "the caller ($side has -u)"
	no_output "$T/l.out" "the listener ($side has -u)"
	stop_listener
done
grep -q "refusing the caller: it streams, and we send datagrams (-u)" "$T/l.err" ||
	fail "the -u listener: $(cat "$T/l.err")"
echo "modes: both sides refuse"

echo "== b) a failed passphrase"
echo right > "$T/right"; echo wrong > "$T/wrong"; chmod 600 "$T/right" "$T/wrong"
listen bob -k -w 20 --secret-file "$T/right" bob
for n in 1 2; do
	call alice -w 20 --secret-file "$T/wrong" bob
	check_eq "status of wrong caller $n ($(cat "$T/c.err"))" $CRC 4
	has "$T/c.err" "the listener refused us: the passphrases differ"
	wait_for 10 grep -q "($n in a row)" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
done
has "$T/l.err" "a caller failed the passphrase (1 in a row): taking no offer for 1 s"
has "$T/l.err" "a caller failed the passphrase (2 in a row): taking no offer for 2 s"
check_eq "refusals said" "$(grep -c "refusing the caller: it failed the passphrase" "$T/l.err")" 2
# The right passphrase is served once the pause is over, and the count
# starts again.
call alice -w 20 --secret-file "$T/right" bob
check_eq "status with the right passphrase ($(cat "$T/c.err"))" $CRC 0
call alice -w 20 --secret-file "$T/wrong" bob
check_eq "status of the third wrong caller" $CRC 4
three() { [ "$(grep -c "a caller failed the passphrase" "$T/l.err")" -ge 3 ]; }
wait_for 10 three || fail "the third failure not said: $(cat "$T/l.err")"
check_eq "counts restarted after a session" \
	"$(grep -c "a caller failed the passphrase (1 in a row)" "$T/l.err")" 2
grep -q "(3 in a row)" "$T/l.err" && fail "the count went on after a session: $(cat "$T/l.err")"
stop_listener
echo "passphrase: refused, said, slowed down"

echo "== c) the caller's name"
rm -rf "$T/rv"
CENV=P2PCAT_NAME=zebra-caller-$$
env HOME="$T/alice" XDG_CONFIG_HOME="$T/alice/.config" $CENV "$P2PCAT" -w 20 bob \
	< "$T/cin" > "$T/c.out" 2> "$T/c.err" & cp=$!
offer_file() { set -- "$T"/rv/inbox/bob/offers/*; [ -f "$1" ] && OFFER=$1; }
wait_for 10 offer_file || fail "no offer: $(cat "$T/c.err")"
kill -STOP $cp
cp "$OFFER" "$T/offer"
kill -CONT $cp
grep -aq "zebra-caller" "$T/offer" && fail "the caller's name is in its offer, in the clear"
grep -aq "zebra-caller" "$T/rv" -r && fail "the caller's name is in the store"
listen bob bob
wait_exit $cp 30 || fail "caller hung"
CRC=$RC
served "a named caller"
has "$T/l.err" "first contact with \`zebra-caller-$$'"
echo "name: not in the store, known to the listener"

echo "== d) a guess counts though its process is ended for a newer offer"
# With -p the listener works on one offer at a time, so the next offer
# ends the process that refused a guess while it still lingers: the guess
# is counted before the caller is told, not when that process exits.
rm -rf "$T/rv"
CENV=
port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])')
listen bob -k -p "$port" -w 20 --secret-file "$T/right" bob
call alice -w 20 --secret-file "$T/wrong" bob
check_eq "status of the first guess ($(cat "$T/c.err"))" $CRC 4
call alice -w 20 --secret-file "$T/wrong" bob
check_eq "status of the second guess ($(cat "$T/c.err"))" $CRC 4
wait_for 10 grep -q "(2 in a row)" "$T/l.err" || fail "two guesses, counted: $(cat "$T/l.err")"
stop_listener
echo "guesses: each counted"

echo "== e) a failed passphrase does not stop the intake while sessions run"
# -c: sessions run side by side.  After a guess, the listener takes one
# offer at a time, but a session that runs is no offer in the works.
rm -rf "$T/rv"
listen bob -k -w 20 --secret-file "$T/right" -c cat bob
mkfifo "$T/afifo"
env HOME="$T/alice" XDG_CONFIG_HOME="$T/alice/.config" "$P2PCAT" -w 20 \
	--secret-file "$T/right" bob < "$T/afifo" > "$T/a.out" 2> "$T/a.err" & ap=$!
exec 7> "$T/afifo"
echo "session a" >&7
wait_for 20 grep -q "session a" "$T/a.out" || fail "session a: $(cat "$T/a.err"); $(cat "$T/l.err")"
call alice -w 20 --secret-file "$T/wrong" bob
check_eq "status of the guess ($(cat "$T/c.err"))" $CRC 4
wait_for 10 grep -q "(1 in a row)" "$T/l.err" || fail "the guess not counted: $(cat "$T/l.err")"
echo "session b" > "$T/cin"
call alice -w 20 --secret-file "$T/right" bob
check_eq "status of session b, while a runs ($(cat "$T/c.err"); $(cat "$T/l.err"))" $CRC 0
check_eq "session b's data, echoed" "$(cat "$T/c.out")" "session b"
exited $ap && fail "session a ended: $(cat "$T/a.err")"
exec 7>&-
wait_exit $ap 20 || fail "session a hung"
check_eq "status of session a ($(cat "$T/a.err"))" $RC 0
check_eq "session a's data, echoed" "$(cat "$T/a.out")" "session a"
stop_listener
echo "a guess while sessions run: intake goes on"
echo "refuse: ok"
