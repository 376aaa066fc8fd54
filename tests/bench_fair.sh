#!/bin/sh
# make bench, fairness: two bulk flows at once, a to b, through one
# bottleneck in the NAT lab's cone-cone topology (tool_netem at inet:
# FAIR_MBIT, default 100 Mbit/s, 10 ms each way, a queue of FAIR_QUEUE
# packets, default 400, about two bandwidth-delay products).  Each pair
# runs FAIR_SECS (default 20) s; the rates are what each receiver got
# after the first 5 s (start-up left out).  Pairs: p2pcat + p2pcat, then
# p2pcat + TCP with CUBIC, and with BBR (a Python sender, netcat
# receiving), and TCP CUBIC + TCP BBR for reference; each mixed pair in
# both orders, since the flow that starts first may keep more than its
# share and neither tool should always have that start.  Jain's index: 1 is
# an even split, 0.5 one flow taking everything.  Prints a table;
# asserts nothing.
. "$(dirname "$0")/lib.sh"
need_root
for c in nc python3; do command -v $c >/dev/null || skip "$c is not installed"; done
. "$SRCDIR/tests/natlab.sh"
MBIT=${FAIR_MBIT:-100}
QUEUE=${FAIR_QUEUE:-400}
SECS=${FAIR_SECS:-20}
WARM=5
export P2PCAT_SIGNAL="dir:$T/rv"

lab_cone_cone || fail lab
B=$(lab_pubip b)
STUN="--stun $(lab_ip stun):3478"
for port in 5001 5002; do lab_forward b tcp $port || fail "port forward"; done
lab_netem 10 0 0 0 0 $((MBIT * 1000)) "$QUEUE" || fail netem

size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# A TCP sender with its own congestion control (TCP_CONGESTION: root
# may pick any, where a namespace's default may only be set to the
# allowed ones): zeros to ADDR PORT until killed.
cat > "$T/tcpsend.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[3].encode())
s.connect((sys.argv[1], int(sys.argv[2])))
b = bytes(65536)
while True:
    s.sendall(b)
PY

# flow KIND N: start flow N (p2pcat, or cubic or bbr for TCP) a to b,
# received into $T/got.N; its processes' pids are added to FLOWS.
flow() {
	if [ "$1" = p2pcat ]; then
		lab_run b "$P2PCAT" $STUN -l --recv-only "f$2" > "$T/got.$2" 2>/dev/null &
		FLOWS="$FLOWS $!"
		head -c 100G /dev/zero | lab_run a "$P2PCAT" $STUN --send-only "f$2" 2>/dev/null &
		FLOWS="$FLOWS $!"
	else
		lab_run b sh -c "exec nc -l -p 500$2 > $T/got.$2" &
		FLOWS="$FLOWS $!"
		wait_for 5 sh -c "ip netns exec $LAB-b ss -Hltn 'sport = :500$2' | grep -q ." ||
			fail "nc did not listen"
		lab_run a python3 "$T/tcpsend.py" "$B" 500$2 "$1" 2>/dev/null &
		FLOWS="$FLOWS $!"
	fi
}

# pair KIND1 KIND2 LABEL: both flows for SECS s; prints a table row.
pair() {
	rm -f "$T"/got.*
	FLOWS=
	flow "$1" 1
	flow "$2" 2
	started() { [ "$(size "$T/got.1")" -gt 0 ] && [ "$(size "$T/got.2")" -gt 0 ]; }
	wait_for 20 started || fail "$3: the flows did not start"
	sleep $WARM	# a measurement window, not a wait for a condition
	s1=$(size "$T/got.1") s2=$(size "$T/got.2")
	sleep $((SECS - WARM))
	e1=$(size "$T/got.1") e2=$(size "$T/got.2")
	for p in $FLOWS; do
		killtree "$p"
		kill -9 "$p" 2>/dev/null
	done
	for p in $FLOWS; do
		wait "$p" 2>/dev/null
	done
	awk -v a=$((e1 - s1)) -v b=$((e2 - s2)) -v t=$((SECS - WARM)) -v l="$3" 'BEGIN {
		x = a / t / 1e6; y = b / t / 1e6
		j = (x + y) ^ 2 / (2 * (x * x + y * y))
		printf "%-30s %10.2f %10.2f %8.3f\n", l, x, y, j }'
}

echo "two flows a to b through $MBIT Mbit/s, 10 ms each way, $QUEUE-packet queue; MB/s over $((SECS - WARM)) s"
printf '%-30s %10s %10s %8s\n' "flows" "first" "second" "Jain"
pair p2pcat p2pcat "p2pcat + p2pcat"
pair p2pcat cubic "p2pcat + TCP CUBIC"
pair cubic p2pcat "TCP CUBIC + p2pcat"
pair p2pcat bbr "p2pcat + TCP BBR"
pair bbr p2pcat "TCP BBR + p2pcat"
pair cubic bbr "TCP CUBIC + TCP BBR (reference)"
pair bbr cubic "TCP BBR + TCP CUBIC (reference)"
lab_netem_off
