#!/bin/sh
# The dir: rendezvous: concurrent callers, -k, stale and malformed files.
. "$(dirname "$0")/lib.sh"
rv=$T/rv
export P2PCAT_SIGNAL="dir:$rv"

# Two callers at once to a listener without -k: one session is served,
# the other caller gets status 2 after -w; nothing is left behind.
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

# Stale and malformed offers are ignored and removed; a real one works.
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
wait_for 10 sh -c "[ \$(ls '$offers' | wc -l) -eq 0 ]" || fail "stale files not removed: $(ls "$offers")"
echo real | "$P2PCAT" -w 10 stale 2> "$T/c.err" || fail "real caller failed: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener status ($(cat "$T/s.err"))" $RC 0
check_eq "listener got" "$(cat "$T/s.got")" "real"
for why in "expired" "left by a dead process" "malformed" "misnamed" "empty or too large"; do
	grep -q "removing $why rendezvous file" "$T/s.err" || fail "no \`$why' in: $(cat "$T/s.err")"
done
check_eq "files left" "$(find "$rv" -type f | wc -l)" 0

echo "rendezvous: ok"
