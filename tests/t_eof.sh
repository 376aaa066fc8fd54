#!/bin/sh
# EOF semantics: zero-length input; a half-close delivers EOF to the peer
# while the other direction stays open; exit only when both have ended.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"

# Nothing either way.
"$P2PCAT" -l z < /dev/null > "$T/l.got" 2> "$T/l.err" & lp=$!
"$P2PCAT" z < /dev/null > "$T/c.got" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener status" $RC 0
[ -s "$T/l.got" ] || [ -s "$T/c.got" ] && fail "bytes appeared from nowhere"

# Half-close.  The listener's stdin is a FIFO we hold open.
mkfifo "$T/fifo"
exec 3<>"$T/fifo"
"$P2PCAT" -l h < "$T/fifo" 2> "$T/l.err" 3>&- | { cat > "$T/l.got"; touch "$T/l.eof"; } 3>&- & lp=$!
printf 'caller data' | "$P2PCAT" h > "$T/c.got" 2> "$T/c.err" 3>&- & cp=$!
# The listener's stdout reaches EOF (its reader finishes) while both
# processes still run: the caller waits for the listener's direction.
wait_for 10 test -e "$T/l.eof" || fail "listener never saw EOF: $(cat "$T/l.err")"
check_eq "listener got" "$(cat "$T/l.got")" "caller data"
kill -0 $cp 2>/dev/null || fail "caller exited before the listener's direction ended"
printf 'listener reply' >&3
exec 3>&-
wait_exit $cp 10 || fail "caller did not exit after the listener's EOF"
check_eq "caller status ($(cat "$T/c.err"))" $RC 0
check_eq "caller got" "$(cat "$T/c.got")" "listener reply"
wait_exit $lp 10 || fail "listener did not exit"
check_eq "listener pipeline status" $RC 0

# --recv-only and --send-only.
head -c 300000 /dev/urandom > "$T/r"
"$P2PCAT" -l --recv-only r > "$T/r.got" 2> "$T/l.err" & lp=$!
"$P2PCAT" --send-only r < "$T/r" > "$T/c.got" 2> "$T/c.err" || fail "send-only: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "recv-only listener hung"
check_eq "recv-only status ($(cat "$T/l.err"))" $RC 0
cmp -s "$T/r" "$T/r.got" || fail "recv-only: data differs"
# --send-only discards what the peer sends.
"$P2PCAT" -l r < "$T/r" > "$T/r2.got" 2> "$T/l.err" & lp=$!
printf x | "$P2PCAT" --send-only r > "$T/c.got" 2> "$T/c.err" || fail "send-only 2: $(cat "$T/c.err")"
[ -s "$T/c.got" ] && fail "--send-only wrote the peer's data"
wait_exit $lp 10 || fail "listener hung after a --send-only caller"
check_eq "listener status after --send-only caller ($(cat "$T/l.err"))" $RC 0
check_eq "listener got" "$(cat "$T/r2.got")" "x"
echo "eof: ok"
