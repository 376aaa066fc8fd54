#!/bin/sh
# Text from outside reaches the terminal escaped (every message goes
# through util_escape): a key given on the command line, a file name
# that another user put in a shared rendezvous directory, a C1 control
# and a bidirectional override in UTF-8; well-formed UTF-8 stays as is.
. "$(dirname "$0")/lib.sh"
ESC=$(printf '\033')
no_esc() { ! grep -q "$ESC" "$1" || fail "$2: a raw ESC reached stderr: $(cat -A "$1")"; }
has() { grep -qF -- "$2" "$1" || fail "no \`$2' in: $(cat -A "$1")"; }

# a) A key on the command line.
"$P2PCAT" --peer-key "x${ESC}[2Jy" -w 1 bob < /dev/null > "$T/out" 2> "$T/err"
check_eq "status with a bad --peer-key" $? 1
no_esc "$T/err" "--peer-key"
has "$T/err" 'x\x1b[2Jy'

# b) A file name in a shared rendezvous: the listener reports the file it
# skips, quoting the name (signal.c shows such bytes as \ooo itself).
mkdir -p "$T/rv/inbox/bob/offers"
bad="$T/rv/inbox/bob/offers/${ESC}]0;owned${ESC}\\${ESC}[31mred"
: > "$bad"
"$P2PCAT" -v -S "dir:$T/rv" -l bob < /dev/null > "$T/out" 2> "$T/err" & lp=$!
wait_for 10 grep -q "owned" "$T/err" || { kill $lp; fail "the listener never named the file: $(cat -A "$T/err")"; }
kill -TERM $lp
wait_exit $lp 5 || fail "the listener ignored SIGTERM"
no_esc "$T/err" "a file name in the rendezvous"

# c) C1 controls and bidirectional overrides, though well-formed UTF-8.
"$P2PCAT" --peer-key "$(printf 'a\302\233b\342\200\256c')" bob < /dev/null > "$T/out" 2> "$T/err"
check_eq "status with a C1 --peer-key" $? 1
has "$T/err" 'a\u009bb\u202ec'
grep -q "$(printf '\302\233')" "$T/err" && fail "U+009B reached stderr"

# d) Plain UTF-8 (a user's file name) is shown as it is.
"$P2PCAT" --secret-file "$T/caf$(printf '\303\251')" bob < /dev/null > "$T/out" 2> "$T/err"
check_eq "status with a missing secret file" $? 1
has "$T/err" "caf$(printf '\303\251')'"
echo "escape: ok"
