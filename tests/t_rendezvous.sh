#!/bin/sh
# The dir: rendezvous: concurrent callers, -k, stale, malformed and
# odd files, a second listener, paths that are missing or symbolic links.
. "$(dirname "$0")/lib.sh"
rv=$T/rv
export P2PCAT_SIGNAL="dir:$rv"

# Two callers at once to a listener without -k: one session is served,
# the other caller gets status 2 (told the listener is busy, or after -w);
# nothing is left behind.
"$P2PCAT" -l --recv-only one > "$T/l.got" 2> "$T/l.err" & lp=$!
echo first | "$P2PCAT" -w 3 one > /dev/null 2> "$T/c1.err" & c1=$!
echo second | "$P2PCAT" -w 3 one > /dev/null 2> "$T/c2.err" & c2=$!
wait_exit $c1 15 || fail "caller 1 hung"
r1=$RC
wait_exit $c2 15 || fail "caller 2 hung"
r2=$RC
wait_exit $lp 10 || fail "listener hung"
check_eq "listener status" $RC 0
case "$r1 $r2" in
"0 2"|"2 0") ;;
*) fail "callers' statuses $r1 $r2, want one 0 and one 2 ($(cat "$T/c1.err" "$T/c2.err"))" ;;
esac
case "$(cat "$T/l.got")" in first|second) ;; *) fail "listener got \`$(cat "$T/l.got")'" ;; esac
check_eq "files left" "$(find "$rv" -type f | wc -l)" 0

# With -k both are served, one after the other.
"$P2PCAT" -l -k --recv-only many > "$T/k.got" 2> "$T/k.err" & lp=$!
echo alpha | "$P2PCAT" -w 10 many 2> "$T/c1.err" & c1=$!
echo beta | "$P2PCAT" -w 10 many 2> "$T/c2.err" & c2=$!
wait_exit $c1 20 || fail "caller 1 hung"
check_eq "caller 1 status ($(cat "$T/c1.err"))" $RC 0
wait_exit $c2 20 || fail "caller 2 hung"
check_eq "caller 2 status ($(cat "$T/c2.err"))" $RC 0
check_eq "sessions served" "$(sort "$T/k.got" | tr '\n' ' ')" "alpha beta "
kill -0 $lp 2>/dev/null || fail "-k listener exited"
kill -TERM $lp
wait_exit $lp 5 || fail "-k listener ignored SIGTERM"
check_eq "-k listener status after SIGTERM" $RC 143
check_eq "files left" "$(find "$rv" -type f | wc -l)" 0

# Stale offers of ours are removed; files that are not ours (malformed,
# misnamed) are reported once and left alone; a real offer works.
offers=$rv/inbox/stale/offers
mkdir -p "$offers"
now=$(date +%s%3N)
sh -c 'exit 0' & dead=$!
wait $dead
plant() { printf 'p2pcat-sig 1\nexpire %s\npid %s\nhost %s\n\n%s' "$2" "$3" "$(hostname)" "$4" > "$offers/$1"; }
plant 00000000000000000000000000000001 $((now - 1000)) $$ "expired offer"
plant 00000000000000000000000000000002 $((now + 600000)) $dead "offer of a dead process"
printf 'garbage\0\377' > "$offers/00000000000000000000000000000003"
plant 00000000000000000000000000000004 $((now + 600000)) $$ ""
plant NOT-AN-ID $((now + 600000)) $$ "misnamed"
head -c 100000 /dev/urandom > "$offers/0000000000000000000000000000000f"
"$P2PCAT" -l -v stale < /dev/null > "$T/s.got" 2> "$T/s.err" & lp=$!
wait_for 10 sh -c "[ \$(ls '$offers' | wc -l) -eq 3 ]" || fail "stale files not removed: $(ls "$offers")"
echo real | "$P2PCAT" -w 10 stale 2> "$T/c.err" || fail "real caller failed: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener status ($(cat "$T/s.err"))" $RC 0
check_eq "listener got" "$(cat "$T/s.got")" "real"
for why in "expired" "its writer has ended" "its message is empty or too long"; do
	grep -q "removed rendezvous file .*: $why" "$T/s.err" || fail "no \`$why' in: $(cat "$T/s.err")"
done
check_eq "files left" "$(ls "$offers" | tr '\n' ' ')" "00000000000000000000000000000003 0000000000000000000000000000000f NOT-AN-ID "
for f in 00000000000000000000000000000003 0000000000000000000000000000000f NOT-AN-ID; do
	check_eq "reports of $f" "$(grep -c "skipping .*/$f'" "$T/s.err")" 1
done
rm -f "$offers"/*

# A second listener under one name is warned; a killed one holds nothing.
"$P2PCAT" -l --recv-only twice > /dev/null 2> "$T/t1.err" & l1=$!
wait_for 10 test -d "$rv/inbox/twice/offers" || fail "first listener did not start"
"$P2PCAT" -l --recv-only twice > /dev/null 2> "$T/t2.err" & l2=$!
wait_for 10 grep -qs "another listener is listening as \`twice'" "$T/t2.err" ||
	fail "second listener not warned: $(cat "$T/t2.err")"
grep -q "another listener" "$T/t1.err" && fail "first listener warned: $(cat "$T/t1.err")"
kill -9 $l1 $l2
wait $l1 $l2 2>/dev/null
# The third one's first look at its offers, which follows its try for
# the lock, is marked by the line -v prints for a file not named like an
# offer (an empty look prints nothing): a warning would be out by then.
: > "$rv/inbox/twice/offers/looked"
"$P2PCAT" -l -v --recv-only twice > /dev/null 2> "$T/t3.err" & l3=$!
wait_for 10 grep -qs "skipping .*/looked': not named like an offer" "$T/t3.err" ||
	fail "third listener did not look: $(cat "$T/t3.err")"
kill -TERM $l3
wait $l3
grep -q "another listener" "$T/t3.err" && fail "a killed listener's lock held: $(cat "$T/t3.err")"
rm "$rv/inbox/twice/offers/looked"

# Only the last component of a dir: path is made, and never through a
# symbolic link below it.
timeout 10 "$P2PCAT" -S "dir:$T/no/such/dir" -l x < /dev/null > /dev/null 2> "$T/deep.err"
rc=$?
check_eq "status for a missing parent ($(cat "$T/deep.err"))" $rc 1
[ -e "$T/no" ] && fail "dir:$T/no/such/dir made $T/no"
grep -q "its parent directory does not exist" "$T/deep.err" || fail "message: $(cat "$T/deep.err")"

# A symlink in the rendezvous: nothing outside it is read or removed.
out=$T/outside
mkdir -p "$out" "$rv/inbox/victim"
echo precious > "$out/precious.txt"
plant() { printf 'p2pcat-sig 1\nexpire %s\npid %s\nhost %s\n\n%s' "$2" "$3" "$(hostname)" "$4" > "$out/$1"; }
plant 00000000000000000000000000000005 $((now - 1000)) $$ "expired, outside"
ln -s "$out" "$rv/inbox/victim/offers"
timeout 10 "$P2PCAT" -l -v victim < /dev/null > /dev/null 2> "$T/v.err"
rc=$?
check_eq "listener's status on a symlinked inbox ($(cat "$T/v.err"))" $rc 2
grep -q "is a symbolic link: not following it" "$T/v.err" || fail "message: $(cat "$T/v.err")"
check_eq "files outside" "$(ls "$out" | tr '\n' ' ')" "00000000000000000000000000000005 precious.txt "
echo data | "$P2PCAT" -w 2 victim > /dev/null 2> "$T/vc.err"
rc=$?
check_eq "caller's status on a symlinked inbox ($(cat "$T/vc.err"))" $rc 2
check_eq "files outside after the caller" "$(ls "$out" | tr '\n' ' ')" "00000000000000000000000000000005 precious.txt "
rm "$rv/inbox/victim/offers"

# A UNIX socket named like an offer neither stops the listener nor is
# reported more than once.
mkdir -p "$rv/inbox/sock/offers"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$rv/inbox/sock/offers/00000000000000000000000000000006" || fail "no socket"
"$P2PCAT" -l -v --recv-only sock > "$T/k.got" 2> "$T/k.err" & lp=$!
wait_for 10 grep -qs "skipping .*00000000000000000000000000000006" "$T/k.err" || fail "socket not reported: $(cat "$T/k.err")"
# A second look, over the whole directory (it holds no offer), marked by
# the report of a file that comes after the first: the socket is seen
# again there, and must not be reported again.
: > "$rv/inbox/sock/offers/later"
wait_for 10 grep -qs "skipping .*/later': not named like an offer" "$T/k.err" ||
	fail "the listener did not look again: $(cat "$T/k.err")"
echo after | "$P2PCAT" -w 10 sock 2> "$T/c.err" || fail "caller beside a socket: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener status beside a socket ($(cat "$T/k.err"))" $RC 0
check_eq "listener got" "$(cat "$T/k.got")" "after"
check_eq "socket reports" "$(grep -c 00000000000000000000000000000006 "$T/k.err")" 1
# It is reported without -v too: an entry that stays is the user's to remove.
"$P2PCAT" -l --recv-only sock > /dev/null 2> "$T/q.err" & lp=$!
wait_for 10 grep -qs "skipping .*00000000000000000000000000000006': not a regular file" "$T/q.err" ||
	fail "socket not reported without -v: $(cat "$T/q.err")"
kill $lp; wait $lp 2>/dev/null

echo "rendezvous: ok"
