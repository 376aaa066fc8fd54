#!/bin/sh
# make bench, throughput (issues 5 and 11): in the NAT lab's cone-cone
# topology, one way a to b, p2pcat against TCP on four paths, each
# impairment by tool_netem (netem's model) at the core, both directions:
#   (a) delay 40ms loss 2% reorder 5%      BENCH_A_MB (8) MiB
#   (b) delay 40ms reorder 5%              BENCH_B_MB (8) MiB
#   (c) delay 25ms loss 1%                 BENCH_C_MB (256) MiB
#   (d) the clean path, no tool_netem      BENCH_MB (1024) MiB
# TCP is netcat through a port forward on the same routers, with the
# sending namespace's default congestion control (the table's head names
# it; BBR here), and a Python sender that sets TCP_CONGESTION to cubic (a
# namespace may not pick CUBIC as its default) and otherwise does what
# netcat does (64 KiB reads of stdin, each sent whole), netcat receiving;
# CUBIC runs stop after BENCH_CUBIC_SECS (30) s and count what was sent
# by then, since on (c) it would need minutes.  Plus iperf3 -u at full
# rate on the clean path, the raw UDP ceiling.  Prints a table; asserts
# only that every run delivered every byte it sent.
#
# Every sender reads the same file from the page cache, and every
# receiver writes into the same sink: a pipe to a small reader that
# counts the bytes and notes when the last one came.  A run whose count
# is not what its sender sent fails the bench: a short transfer must not
# pass for a fast one.  Every time is taken the same way: from starting
# the sender's command, once the receiver is ready (netcat's socket
# listening; p2pcat -l running and listening on the rendezvous, its
# `listening as'), to the last byte in the sink.  So netcat's includes
# its TCP handshake, CUBIC's also the Python start-up, and p2pcat's its
# rendezvous, STUN gathering, hole punching and Noise handshake.  On each
# path the tools run BENCH_ROUNDS rounds (3; BENCH_IMPAIRED_ROUNDS,
# default the same, on (a)-(c)), in an order that rotates each round
# (netcat, CUBIC, p2pcat; CUBIC, p2pcat, netcat; p2pcat, netcat, CUBIC),
# so no tool always runs first or last; the table gives the median rate
# and the range, since this 2-core machine's scheduler alone moves a run
# by tens of percent, the CPU seconds per GiB at each end (median, user
# and system, as /usr/bin/time counts them) of p2pcat and of netcat, and
# p2pcat's peak RSS.  p2pcat/nc is the ratio of the medians.  System
# time includes the softirq work (forwarding, NAT, the other end's
# receive path) that the kernel happens to run in a process's context,
# so the two tools' CPU figures are comparable with each other more
# than with anything else.
. "$(dirname "$0")/lib.sh"
need_root
for c in nc iperf3 python3 /usr/bin/time; do command -v $c >/dev/null || skip "$c is not installed"; done
. "$SRCDIR/tests/natlab.sh"
MB=${BENCH_MB:-1024}
ROUNDS=${BENCH_ROUNDS:-3}
IROUNDS=${BENCH_IMPAIRED_ROUNDS:-$ROUNDS}
CUBIC_SECS=${BENCH_CUBIC_SECS:-30}
export P2PCAT_SIGNAL="dir:$T/rv"

lab_cone_cone || fail lab
B=$(lab_pubip b)
STUN="--stun $(lab_ip stun):3478"
# Port forwards on b's router for the TCP and UDP baselines.
for proto in tcp udp; do
	for port in 5001 5201; do lab_forward b $proto $port || fail "port forward"; done
done
max=$MB
for m in ${BENCH_A_MB:-8} ${BENCH_B_MB:-8} ${BENCH_C_MB:-256}; do
	[ "$m" -gt "$max" ] && max=$m
done
head -c $((max * 1048576)) /dev/urandom > "$T/data"
sync	# no write-back of the data under the runs

# A TCP sender with its own congestion control: ADDR PORT CC SECS sends
# stdin, for SECS at most; prints the bytes sent.
cat > "$T/tcpsend.py" <<'PY'
import os, socket, sys, time
end = time.monotonic() + float(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[3].encode())
s.connect((sys.argv[1], int(sys.argv[2])))
sent = 0
while time.monotonic() < end:
    b = os.read(0, 65536)
    if not b:
        break
    s.sendall(b)
    sent += len(b)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(sent)
PY

# The sink of every receiver: counts stdin's bytes; prints the count and
# when the last byte came, in ns of CLOCK_REALTIME, date(1)'s clock.
cat > "$T/sink.py" <<'PY'
import time
buf = bytearray(1 << 20)
n = last = 0
with open(0, "rb", buffering=0) as f:
    while True:
        k = f.readinto(buf)
        if not k:
            break
        n += k
        last = time.time_ns()
print(n, last)
PY

now() { date +%s%N; }

# rx ERR CMD...: the receiver CMD in b, stdin empty, stderr to ERR, its
# stdout into the sink; its exit status goes to $T/rx.rc, the sink's
# count and time to $T/rx.sink.  Sets RX (the sink's pid) and RXERR.
rx() {
	RXERR=$1
	shift
	rm -f "$T/rx.rc" "$T/rx.sink"
	{ lab_run b "$@" < /dev/null 2> "$RXERR"; echo $? > "$T/rx.rc"; } |
	    python3 "$T/sink.py" > "$T/rx.sink" &
	RX=$!
}

# rx_done WHAT BYTES T0: waits for the receiver; fails unless it exited 0
# and its sink counted BYTES; prints the MB/s from T0 (ns) to the last byte.
rx_done() {
	wait "$RX" || fail "$1: the sink failed"
	[ "$(cat "$T/rx.rc" 2>/dev/null)" = 0 ] ||
		fail "$1: the receiver exited $(cat "$T/rx.rc" 2>/dev/null): $(cat "$RXERR")"
	read -r got last < "$T/rx.sink"
	[ "$got" = "$2" ] || fail "$1: the receiver got $got bytes of $2 sent"
	awk -v b="$2" -v ns=$((last - $3)) 'BEGIN { printf "%.3f\n", b / ns * 1e3 }'
}

# keep_time NAME: appends "RSS-KiB CPU-s" of each side's last run, from
# /usr/bin/time's $T/NAME.a and $T/NAME.b, to $T/NAME.a.all and .b.all.
keep_time() {
	for s in a b; do
		tail -n 1 "$T/$1.$s" | awk '{ print $1, $2 + $3 }' >> "$T/$1.$s.all"
	done
}

nc_ready() {
	wait_for 5 sh -c "ip netns exec $LAB-b ss -Hltn 'sport = :5001' | grep -q ." ||
		fail "nc did not listen: $(cat "$RXERR")"
}

# nc_run MB: netcat over TCP, b listening behind its port forward; its
# MB/s.  -N sends the FIN at the end of stdin; the listener, whose stdin
# is empty, exits when it has read everything, and so does the sender.
nc_run() {
	rx "$T/nc.err" /usr/bin/time -f "%M %U %S" -o "$T/ntime.b" nc -l -p 5001
	nc_ready
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a /usr/bin/time -f "%M %U %S" \
	    -o "$T/ntime.a" nc -N "$B" 5001 > /dev/null || fail "nc failed"
	rx_done nc $(($1 * 1048576)) "$t0"
	keep_time ntime
}

# cubic_run MB: TCP CUBIC, netcat receiving; its MB/s.
cubic_run() {
	rx "$T/nc.err" nc -l -p 5001
	nc_ready
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a python3 "$T/tcpsend.py" \
	    "$B" 5001 cubic "$CUBIC_SECS" > "$T/cubic.out" || fail "the TCP sender failed"
	rx_done "TCP CUBIC" "$(cat "$T/cubic.out")" "$t0"
}

# p2p_run MB: p2pcat, a to b; its MB/s.  Appends "RSS-KiB CPU-s" of each
# side to $T/time.a.all and $T/time.b.all.
p2p_run() {
	rx "$T/b.err" /usr/bin/time -f "%M %U %S" -o "$T/time.b" "$P2PCAT" -v $STUN -l --recv-only bench
	wait_for 10 grep -qs "listening as" "$T/b.err" ||
		fail "p2pcat did not listen: $(cat "$T/b.err")"
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a /usr/bin/time -f "%M %U %S" \
	    -o "$T/time.a" "$P2PCAT" $STUN --send-only bench > /dev/null 2> "$T/a.err" ||
		fail "p2pcat failed: $(cat "$T/a.err")"
	rx_done p2pcat $(($1 * 1048576)) "$t0"
	keep_time time
}

# turns ROUND: the tools in ROUND's order, each round one step further.
turns() {
	case $(($1 % 3)) in
	0) echo nc cubic p2p ;;
	1) echo cubic p2p nc ;;
	2) echo p2p nc cubic ;;
	esac
}

# median FILE / range FILE: of the numbers in FILE.
median() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
range() { sort -n "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }

# cpu FILE MB: the median CPU seconds per GiB of the runs in FILE
# ("RSS-KiB CPU-s" lines).
cpu() {
	cut -d' ' -f2 "$1" | awk -v m="$2" '{ print $1 * 1024 / m }' > "$T/cpu"
	median "$T/cpu"
}

# path NAME MB ROUNDS [NETEM-OPTIONS...]: the tools in turns, one row.
path() {
	name=$1 mb=$2 rounds=$3
	shift 3
	if [ $# -gt 0 ]; then
		lab_netem "$@" || fail netem
	else
		lab_netem_off
	fi
	: > "$T/nc.r"; : > "$T/cubic.r"; : > "$T/p2p.r"
	: > "$T/time.a.all"; : > "$T/time.b.all"; : > "$T/ntime.a.all"; : > "$T/ntime.b.all"
	i=0
	while [ $i -lt "$rounds" ]; do
		for tool in $(turns $i); do
			${tool}_run "$mb" >> "$T/$tool.r"
		done
		i=$((i + 1))
	done
	printf '%-30s %5s %-23s %-23s %-23s %5.2fx %5s %5s %5s %5s\n' "$name" "$mb" \
	    "$(median "$T/p2p.r") ($(range "$T/p2p.r"))" \
	    "$(median "$T/nc.r") ($(range "$T/nc.r"))" \
	    "$(median "$T/cubic.r") ($(range "$T/cubic.r"))" \
	    "$(awk -v p="$(median "$T/p2p.r")" -v n="$(median "$T/nc.r")" 'BEGIN { print p / n }')" \
	    "$(cpu "$T/time.a.all" "$mb")" "$(cpu "$T/time.b.all" "$mb")" \
	    "$(cpu "$T/ntime.a.all" "$mb")" "$(cpu "$T/ntime.b.all" "$mb")"
	sort -n "$T/time.a.all" "$T/time.b.all" | tail -n 1 | cut -d' ' -f1 >> "$T/rss"
}

iperf_udp() {
	lab_run b iperf3 -s -1 -p 5201 > /dev/null 2>&1 & sp=$!
	wait_for 5 sh -c "ip netns exec $LAB-b ss -Hltn 'sport = :5201' | grep -q ." ||
		fail "iperf3 did not listen"
	lab_run a iperf3 -u -b 0 -l 1448 -t 5 -p 5201 -c "$B" -J > "$T/iperf.json" 2>&1
	wait $sp
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
s=d["end"]["sum"]; print("%.0f %.1f" % (s["bytes"]*(100-s["lost_percent"])/100/s["seconds"]/1e6, s["lost_percent"]))' "$T/iperf.json"
}

echo "one way a to b, cone NAT to cone NAT; MB/s, median (range) of $IROUNDS runs on (a)-(c), $ROUNDS on (d),"
echo "  the tools' order rotating each round; each time from starting the sender (the receiver"
echo "  listening) to the last byte in the receiver's counting sink: p2pcat's includes its"
echo "  rendezvous, STUN gathering, hole punching and handshake, CUBIC's the Python start-up"
echo "load before: $(uptime)"
printf '%-30s %5s %-23s %-23s %-23s %6s %11s %11s\n' "path" "MiB" "p2pcat" \
    "nc (TCP $(lab_run a sysctl -n net.ipv4.tcp_congestion_control))" \
    "TCP CUBIC (<= ${CUBIC_SECS} s)" "p2p/nc" "p2pcat CPU" "nc CPU"
printf '%-30s %5s %-23s %-23s %-23s %6s %5s %5s %5s %5s\n' "" "" "" "" "" "" "send" "recv" "send" "recv"
path "(a) 40 ms, 2% loss, 5% reord." "${BENCH_A_MB:-8}" "$IROUNDS" delay 40ms loss 2% reorder 5%
path "(b) 40 ms, 5% reordered" "${BENCH_B_MB:-8}" "$IROUNDS" delay 40ms reorder 5%
path "(c) 25 ms, 1% loss" "${BENCH_C_MB:-256}" "$IROUNDS" delay 25ms loss 1%
path "(d) clean" "$MB" "$ROUNDS"
set -- $(iperf_udp)
echo "iperf3 -u -l 1448 on (d): $1 MB/s received ($2 % lost); it sends one datagram per"
echo "  system call, p2pcat runs of them with UDP GSO and reads them coalesced with UDP GRO"
echo "p2pcat: peak RSS $(sort -n "$T/rss" | tail -n 1) KiB; $(grep -o 'record cipher: [A-Za-z0-9-]*' "$T/b.err")"
echo "load after: $(uptime)"
