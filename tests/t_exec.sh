#!/bin/sh
# -e and -c: a command per session, on either side, with the peer in its
# environment; concurrent sessions up to --max-conns, the next caller told
# the listener is busy; access control; nothing left behind.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
"$P2PCAT" --id > /dev/null 2>&1 || fail "--id"
fp=$("$P2PCAT" -v --id 2>&1 >/dev/null | sed -n 's/^p2pcat: fingerprint //p')
[ -n "$fp" ] || fail "no fingerprint from -v --id"
ok() { echo "$1: ok"; }

# A command for every caller needs the callers restricted, or --allow-any.
"$P2PCAT" -l -c cat svc > /dev/null 2> "$T/err" < /dev/null
check_eq "status of -c with anyone allowed" $? 1
grep -q -- "--allow-any" "$T/err" || fail "message: $(cat "$T/err")"
"$P2PCAT" -l -e "/nonexistent/prog -x" --allow-any svc > /dev/null 2> "$T/err" < /dev/null
check_eq "status of -e with no such program" $? 1
grep -q "cannot run \`/nonexistent/prog'" "$T/err" || fail "message: $(cat "$T/err")"
"$P2PCAT" -e cat --send-only svc > /dev/null 2> "$T/err" < /dev/null
check_eq "status of -e with --send-only" $? 1
"$P2PCAT" -l --max-conns 3 svc > /dev/null 2> "$T/err" < /dev/null
check_eq "status of --max-conns without a command" $? 1
ok "refused settings"

# -e splits its words as ncat does (a backslash keeps a blank), no shell;
# the peer's EOF closes the command's stdin, its exit ends the session.
mkdir "$T/d x"
printf 'abc' > "$T/d x/f"
"$P2PCAT" -l --allow-any -e "sh -c cat\ \"\$0\"\ -\ |\ tr\ a-z\ A-Z $T/d\ x/f" svc 2> "$T/l.err" < /dev/null & lp=$!
printf 'hello' | "$P2PCAT" svc > "$T/got" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "the listener did not exit after one session"
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
check_eq "what -e made of the caller's bytes" "$(cat "$T/got")" "ABCHELLO"
ok "-e words, EOF both ways"

# The command learns who called: the name the caller gave, its key's
# fingerprint, the kind of path.
"$P2PCAT" -l --allow-any -c 'printf "%s|%s|%s" "$P2PCAT_PEER_NAME" "$P2PCAT_PEER_KEY" "$P2PCAT_PATH"' svc \
    2> "$T/l.err" < /dev/null & lp=$!
P2PCAT_NAME=alice "$P2PCAT" svc < /dev/null > "$T/got" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "the command's environment" "$(cat "$T/got")" "alice|$fp|direct"
ok "environment"

# On the caller's side: its command's output goes to the listener, the
# listener's data into the command.
echo "to the caller's command" > "$T/in"
"$P2PCAT" -l svc < "$T/in" > "$T/lgot" 2> "$T/l.err" & lp=$!
"$P2PCAT" -c "echo from the command; cat > $T/cgot; echo \"\$P2PCAT_PEER_NAME\" > $T/cname" svc \
    < /dev/null > "$T/cout" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "listener status ($(cat "$T/l.err"))" $RC 0
check_eq "the caller's command's output" "$(cat "$T/lgot")" "from the command"
cmp -s "$T/in" "$T/cgot" || fail "the caller's command read \`$(cat "$T/cgot")'"
check_eq "the caller's command's peer name" "$(cat "$T/cname")" svc
[ -s "$T/cout" ] && fail "the caller printed on its stdout: $(cat "$T/cout")"
ok "caller's command"

# An unlisted caller's key never reaches the command: no process starts,
# and the caller is told it was refused (status 4).
mkdir -p "$T/other"
HOME="$T/other" XDG_CONFIG_HOME="$T/other" "$P2PCAT" --id > "$T/allow" 2>/dev/null || fail "--id"
"$P2PCAT" -l -k -w 5 --allow "$T/allow" -c "touch $T/ran; cat" svc 2> "$T/l.err" < /dev/null & lp=$!
"$P2PCAT" -w 5 svc < /dev/null > /dev/null 2> "$T/c.err"
rc=$?
check_eq "an unlisted caller's status ($(cat "$T/c.err"))" $rc 4
[ -e "$T/ran" ] && fail "the command ran for an unlisted caller"
kill -0 $lp || fail "the listener is gone: $(cat "$T/l.err")"
kill $lp; wait $lp
ok "unlisted caller"

# Concurrent sessions, each with its command, up to --max-conns 2: a third
# caller is told the listener is busy (status 2) while the two go on.
"$P2PCAT" -l -k --allow-any --max-conns 2 -c 'sha256sum' svc 2> "$T/l.err" < /dev/null & lp=$!
at_exit "kill $lp 2>/dev/null"
# cmds: the commands the listener's sessions run.
cmds() { for k in $(pgrep -P $lp); do pgrep -P "$k"; done; }
# fds: the listener's open descriptors (the parent's: its children each
# have their own, and go).
fds() { ls /proc/$lp/fd | wc -l; }
# A first session, after which the listener holds all it will.
"$P2PCAT" svc < /dev/null > /dev/null 2> "$T/c0.err" || fail "caller: $(cat "$T/c0.err")"
fds0=$(fds)
randfile "$T/src1" 4
randfile "$T/src2" 4
mkfifo "$T/fifo1" "$T/fifo2"
# Each caller's input stays open until the test writes it.
"$P2PCAT" svc < "$T/fifo1" > "$T/sum1" 2> "$T/c1.err" & cp1=$!
exec 4> "$T/fifo1"
"$P2PCAT" svc < "$T/fifo2" > "$T/sum2" 2> "$T/c2.err" & cp2=$!
exec 5> "$T/fifo2"
two() { [ "$(cmds | wc -l)" -ge 2 ]; }
wait_for 20 two || fail "two sessions did not start: $(cat "$T/l.err")"
"$P2PCAT" -w 10 svc < /dev/null > "$T/sum3" 2> "$T/c3.err"
rc=$?
check_eq "the third caller's status ($(cat "$T/c3.err"))" $rc 2
grep -q "busy" "$T/c3.err" || fail "the third caller was not told: $(cat "$T/c3.err")"
cat "$T/src1" >&4; exec 4>&-
cat "$T/src2" >&5; exec 5>&-
wait $cp1
rc=$?
check_eq "caller 1 status ($(cat "$T/c1.err"))" $rc 0
wait $cp2
rc=$?
check_eq "caller 2 status ($(cat "$T/c2.err"))" $rc 0
for i in 1 2; do
	check_eq "session $i's command's answer" "$(cut -d' ' -f1 "$T/sum$i")" "$(sha "$T/src$i")"
done
# Four sessions came and went: nothing of theirs stays in the listener.
nokids() { [ -z "$(pgrep -P $lp)" ]; }
wait_for 10 nokids || fail "sessions' processes left: $(ps -o pid,stat,cmd --ppid $lp)"
check_eq "the listener's descriptors after the sessions" "$(fds)" "$fds0"
ok "--max-conns"

# A session killed outright leaves nothing: its command goes too, no
# zombie.
mkfifo "$T/fifo9"
"$P2PCAT" --idle 3 svc < "$T/fifo9" > /dev/null 2> "$T/c9.err" & cp9=$!
exec 6> "$T/fifo9"
one() { [ "$(cmds | wc -l)" -eq 1 ]; }
wait_for 20 one || fail "no session: $(cat "$T/c9.err")"
cmd=$(cmds)
kill -9 "$(pgrep -P $lp)"
gone() { ! kill -0 "$cmd" 2>/dev/null; }
wait_for 10 gone || fail "the command outlived its session"
nozombie() { ! ps -o stat= --ppid $lp | grep -q Z; }
wait_for 10 nozombie || fail "a zombie is left: $(ps -o pid,stat,cmd --ppid $lp)"
exec 6>&-
wait_exit $cp9 20 || fail "the caller of the killed session hung"
ok "killed session"

# An attempt killed before its caller took the answer: the answer is the
# listener's to delete.  The caller posts its offer and is stopped before
# the listener starts, so it never reads the answer.
kill $lp; wait $lp
check_eq "listener status after SIGTERM" $? 143
"$P2PCAT" -w 30 svc < /dev/null > /dev/null 2> "$T/c10.err" & cp10=$!
at_exit "kill -9 $cp10 2>/dev/null"
offered() { [ "$(find "$T/rv" -path '*offers*' -type f | wc -l)" -eq 1 ]; }
wait_for 10 offered || fail "no offer: $(cat "$T/c10.err")"
kill -STOP $cp10
"$P2PCAT" -l -k --allow-any -c cat svc 2> "$T/l.err" < /dev/null & lp=$!
answered() { [ "$(find "$T/rv" -path '*answers*' -type f | wc -l)" -eq 1 ]; }
wait_for 10 answered || fail "no answer to the stopped caller: $(cat "$T/l.err")"
kill -9 "$(pgrep -P $lp)"
noanswer() { [ "$(find "$T/rv" -path '*answers*' -type f | wc -l)" -eq 0 ]; }
wait_for 10 noanswer || fail "answers left: $(find "$T/rv" -type f)"
kill -9 $cp10
kill $lp; wait $lp
ok "answer of a killed attempt"

# A command that fails fails the session: both sides exit 3, though its
# output arrives.
"$P2PCAT" -l --allow-any -c 'printf partial; exit 3' svc 2> "$T/l.err" < /dev/null & lp=$!
"$P2PCAT" svc < /dev/null > "$T/got" 2> "$T/c.err"
rc=$?
check_eq "the caller's status when the command failed ($(cat "$T/c.err"))" $rc 3
wait_exit $lp 10 || fail "listener hung"
check_eq "the listener's status when its command failed" $RC 3
grep -q "the command exited with status 3" "$T/l.err" || fail "message: $(cat "$T/l.err")"
check_eq "what the failed command wrote" "$(cat "$T/got")" partial

# It ends the session when it fails, not when the caller's input ends:
# a caller whose stdin stays open (a terminal's would) is told at once,
# and one that streams does not stream on into the void.
mkfifo "$T/fifo_f"
"$P2PCAT" -l --allow-any -e 'sh -c exit\ 2' svc 2> "$T/l.err" < /dev/null & lp=$!
"$P2PCAT" svc < "$T/fifo_f" > "$T/got" 2> "$T/c.err" & cp=$!
exec 7> "$T/fifo_f"
wait_exit $cp 30 || fail "the caller, its input open, hung after the command failed: $(cat "$T/c.err")"
exec 7>&-
check_eq "the caller's status when the command failed, its input open ($(cat "$T/c.err"))" $RC 3
grep -q "the peer's command exited with status 2" "$T/c.err" || fail "message: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "listener hung"
check_eq "the listener's status when its command failed early" $RC 3
grep -q "the command exited with status 2" "$T/l.err" || fail "message: $(cat "$T/l.err")"
"$P2PCAT" -l --allow-any -c 'head -c 4; exit 2' svc 2> "$T/l.err" < /dev/null & lp=$!
yes | "$P2PCAT" svc > "$T/got" 2> "$T/c.err" & cp=$!
wait_exit $cp 30 || fail "the caller, streaming, hung after the command failed: $(cat "$T/c.err")"
check_eq "the streaming caller's status when the command failed ($(cat "$T/c.err"))" $RC 3
grep -q "the peer's command exited with status 2" "$T/c.err" || fail "message: $(cat "$T/c.err")"
check_eq "what the failed command wrote first" "$(cat "$T/got")" "y
y"
wait_exit $lp 10 || fail "listener hung"
check_eq "the listener's status when its command failed midstream" $RC 3

# A command that exits while a child of its own holds its stdout still
# ends the session when it exits.
"$P2PCAT" -l --allow-any -c 'echo done; sleep 60 &' svc 2> "$T/l.err" < /dev/null & lp=$!
"$P2PCAT" svc < /dev/null > "$T/got" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_exit $lp 10 || fail "the listener waited for its command's child"
check_eq "listener status" $RC 0
check_eq "what the command wrote" "$(cat "$T/got")" done
ok "command's exit"
echo "t_exec: ok"
