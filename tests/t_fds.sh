#!/bin/sh
# Shared descriptors are left as p2pcat found them: a p2pcat killed
# outright (SIGKILL) while writing into a pipe leaves no O_NONBLOCK on
# that pipe for the next writer in the pipeline.
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
echo "t_fds: ok"
