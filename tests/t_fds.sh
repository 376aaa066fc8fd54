#!/bin/sh
# Shared descriptors are left as p2pcat found them: a p2pcat killed
# outright (SIGKILL) while writing into a pipe leaves no O_NONBLOCK on
# that pipe for the next writer in the pipeline; a pipe p2pcat read or
# wrote (and grew, to move larger pieces) has its size back afterwards.
. "$(dirname "$0")/lib.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
randfile "$T/big" 32
"$P2PCAT" --id > /dev/null 2>&1 || fail "--id"

# flags: what the next writer sees on its stdout, the same pipe.
flags='import fcntl, os, sys
sys.stderr.write("nonblock\n" if fcntl.fcntl(1, fcntl.F_GETFL) & os.O_NONBLOCK else "blocking\n")'

"$P2PCAT" -l --send-only fd < "$T/big" 2> "$T/l.err" & lp=$!
{
	"$P2PCAT" --recv-only fd 2> "$T/c.err" & cp=$!
	echo $cp > "$T/cp"
	wait $cp
	python3 -c "$flags" 2> "$T/flags"
} | {
	# Read a little, then kill the caller while it writes.
	head -c 1048576 > /dev/null
	kill -9 "$(cat "$T/cp")"
	cat > /dev/null
}
kill $lp 2>/dev/null
wait $lp 2>/dev/null
check_eq "the pipe's flags after p2pcat was killed" "$(cat "$T/flags")" blocking

# size: the size of the pipe on stdin, after p2pcat read 8 MiB from it
# and ended (its writer still there, the pipe open here).
size='import fcntl, os, signal, subprocess, sys
signal.alarm(60)        # a caller that stops reading must not hang the test
r, w = os.pipe()
before = fcntl.fcntl(r, fcntl.F_GETPIPE_SZ)
p = subprocess.Popen([sys.argv[1], "--send-only", "fd2"], stdin=r,
    stdout=subprocess.DEVNULL)
with open(sys.argv[2], "rb") as f:
    data = f.read(8 << 20)
os.write(w, data)
os.close(w)
p.wait()
print(p.returncode, before, fcntl.fcntl(r, fcntl.F_GETPIPE_SZ))'
"$P2PCAT" -l --recv-only fd2 > "$T/fd2.out" 2> "$T/l2.err" & lp=$!
python3 -c "$size" "$P2PCAT" "$T/big" > "$T/size" 2> "$T/c2.err" || fail "size: $(cat "$T/c2.err")"
wait_exit $lp 30 || fail "fd2: listener hung"
read -r rc before after < "$T/size"
check_eq "the caller's status" "$rc" 0
check_eq "the pipe's size after p2pcat read it (before: $before)" "$after" "$before"
check_eq "fd2: bytes" "$(wc -c < "$T/fd2.out")" $((8 << 20))
# The pipe from a command (-c) is p2pcat's own, not a shared one: grown
# to be read in larger pieces, it is not given a size back at the end.
# A child of the command, which holds that pipe, looks once the session's
# process is gone.
if [ "$(cat /proc/sys/fs/pipe-max-size)" -ge 1048576 ] || [ "$(id -u)" -eq 0 ]; then
	"$P2PCAT" -l --allow-any -c "p=\$PPID; { while kill -0 \$p 2>/dev/null; do sleep 0.05; done
	    python3 -c 'import fcntl, sys; sys.stderr.write(str(fcntl.fcntl(1, fcntl.F_GETPIPE_SZ)))' 2> $T/cmdpipe; } &
	    echo started" fd3 2> "$T/l3.err" < /dev/null & lp=$!
	"$P2PCAT" fd3 < /dev/null > "$T/fd3.out" 2> "$T/c3.err" || fail "fd3: $(cat "$T/c3.err")"
	wait_exit $lp 10 || fail "fd3: listener hung"
	check_eq "fd3: what the command wrote" "$(cat "$T/fd3.out")" started
	wait_for 10 test -s "$T/cmdpipe" || fail "the command's child did not report"
	check_eq "the command's pipe after the session" "$(cat "$T/cmdpipe")" 1048576
else
	echo "fs.pipe-max-size under 1 MiB: the command's pipe not checked"
fi
# stdout: the pipe p2pcat writes is grown while it writes (its reader sees
# 1 MiB) and has its size back at the end, from a reader slower than
# p2pcat, which still holds most of a MiB when the data has all been sent.
if [ "$(cat /proc/sys/fs/pipe-max-size)" -ge 1048576 ] || [ "$(id -u)" -eq 0 ]; then
	reader='import fcntl, os, sys, time
signal = __import__("signal"); signal.alarm(60)
first = fcntl.fcntl(0, fcntl.F_GETPIPE_SZ)
open(sys.argv[1], "w").close()	# p2pcat starts now
most, n = first, 0
time.sleep(0.5)		# the pipe fills
while True:
	b = os.read(0, 16384)
	if not b:
		break
	n += len(b)
	most = max(most, fcntl.fcntl(0, fcntl.F_GETPIPE_SZ))
	time.sleep(0.001)
print(n, first, most, fcntl.fcntl(0, fcntl.F_GETPIPE_SZ))'
	"$P2PCAT" -l --send-only fd4 < "$T/big" 2> "$T/l4.err" & lp=$!
	{ wait_for 10 test -e "$T/ready"; "$P2PCAT" -vv --recv-only fd4 2> "$T/c4.err"
	  echo $? > "$T/c4.rc"; } | python3 -c "$reader" "$T/ready" > "$T/osize" ||
	    fail "stdout: the reader failed"
	wait_exit $lp 30 || fail "fd4: listener hung"
	read -r n first most last < "$T/osize"
	check_eq "stdout: the caller's status ($(cat "$T/c4.err"))" "$(cat "$T/c4.rc")" 0
	check_eq "stdout: bytes read" "$n" $((32 << 20))
	check_eq "stdout: the pipe's size while p2pcat wrote" "$most" 1048576
	check_eq "stdout: the pipe's size afterwards" "$last" "$first"
	grep -q "waiting for the reader of stdout" "$T/c4.err" ||
	    fail "stdout: p2pcat did not wait for its reader: $(tail -3 "$T/c4.err")"

	# A reader that reads nothing until p2pcat is gone: p2pcat waits for
	# it only so long (the data fits in the grown pipe), then ends well,
	# all of it delivered.
	late='import os, sys, time
pid = int(open(sys.argv[1]).read())
for _ in range(600):
	if not os.path.exists("/proc/%d" % pid):
		break
	time.sleep(0.05)
state = "running" if os.path.exists("/proc/%d" % pid) else "gone"
print(len(sys.stdin.buffer.read()), state)'
	head -c 300000 "$T/big" > "$T/small"
	"$P2PCAT" -l --send-only fd5 < "$T/small" 2> "$T/l5.err" & lp=$!
	{ "$P2PCAT" -v --recv-only fd5 2> "$T/c5.err" & echo $! > "$T/c5.pid"; wait $!
	  echo $? > "$T/c5.rc"; } | { wait_for 10 test -s "$T/c5.pid"; python3 -c "$late" "$T/c5.pid"; } > "$T/late"
	wait_exit $lp 30 || fail "fd5: listener hung"
	check_eq "late reader: what it read, and p2pcat" "$(cat "$T/late")" "300000 gone"
	check_eq "late reader: the caller's status ($(cat "$T/c5.err"))" "$(cat "$T/c5.rc")" 0
	grep -q "took nothing for 2 s" "$T/c5.err" || fail "late reader: not said: $(cat "$T/c5.err")"

	# A reader that goes away with most of it unread: as a write into
	# the old size would have found, the peer's data did not get
	# through (EPIPE), and the sender says so (status 3).
	"$P2PCAT" -l --send-only fd6 < "$T/small" 2> "$T/l6.err" & lp=$!
	"$P2PCAT" --recv-only fd6 2> "$T/c6.err" | { sleep 0.5; head -c 1 > /dev/null; }
	wait_exit $lp 30 || fail "fd6: listener hung"
	check_eq "gone reader: the sender's status ($(cat "$T/l6.err"))" "$RC" 3
	grep -q "could not write its output: Broken pipe" "$T/l6.err" ||
	    fail "gone reader: not said: $(cat "$T/l6.err")"
else
	echo "fs.pipe-max-size under 1 MiB: stdout's pipe not checked"
fi
echo "t_fds: ok"
