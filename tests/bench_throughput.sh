#!/bin/sh
# make bench, throughput (issue 5): in the NAT lab's cone-cone topology,
# BENCH_MB (default 1024) MiB one way, p2pcat against netcat over TCP
# (through a port forward on the same routers) and iperf3 -u at full rate
# (the raw UDP ceiling); then with 25 ms each way and 1 % loss
# (BENCH_LOSSY_MB, default the same), p2pcat against netcat.  Also p2pcat's
# peak RSS and CPU seconds per GiB.  Prints a table; asserts nothing.
#
# Both tools read the same file from the page cache and write to
# /dev/null, and each time runs from starting the sender to the exit of
# both ends: netcat's includes its TCP handshake, p2pcat's its rendezvous,
# STUN gathering, punching and Noise handshake.  The runs alternate, nc
# then p2pcat, BENCH_ROUNDS times (default 3; BENCH_LOSSY_ROUNDS, default
# 1, on the lossy path); the table gives the median and the range, since
# this 2-core machine's scheduler alone moves a run by tens of percent.
. "$(dirname "$0")/lib.sh"
need_root
for c in nc iperf3 /usr/bin/time; do command -v $c >/dev/null || skip "$c is not installed"; done
. "$SRCDIR/tests/natlab.sh"
MB=${BENCH_MB:-1024}
LMB=${BENCH_LOSSY_MB:-$MB}
ROUNDS=${BENCH_ROUNDS:-3}
LROUNDS=${BENCH_LOSSY_ROUNDS:-1}
export P2PCAT_SIGNAL="dir:$T/rv"

lab_cone_cone || fail lab
B=$(lab_pubip b)
STUN="--stun $(lab_ip stun):3478"
# Port forwards on b's router for the TCP and UDP baselines.
for proto in tcp udp; do
	for port in 5001 5201; do lab_forward b $proto $port || fail "port forward"; done
done
head -c $((MB * 1048576)) /dev/urandom > "$T/data"
sync	# no write-back of the data under the runs

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f\n", b - a }'; }

# nc_run MB: netcat over TCP, b listening behind its port forward; its
# seconds.  -N sends the FIN at the end of stdin; the listener, whose
# stdin is empty, exits when it has read everything, and so does the
# sender (no -q: that would add its wait to the time).
nc_run() {
	lab_run b sh -c "nc -l -p 5001 > /dev/null" & sp=$!
	wait_for 5 sh -c "ip netns exec $LAB-b ss -Hltn 'sport = :5001' | grep -q ." ||
		fail "nc did not listen"
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a nc -N "$B" 5001 ||
		fail "nc failed"
	wait $sp
	since "$t0"
}

# p2p_run MB: p2pcat, a to b; its seconds.  Appends "RSS-KiB CPU-s" of
# each side to $T/time.a.all and $T/time.b.all.
p2p_run() {
	lab_run b /usr/bin/time -f "%M %U %S" -o "$T/time.b" "$P2PCAT" -v $STUN -l --recv-only bench \
	    > /dev/null 2> "$T/b.err" & lp=$!
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a /usr/bin/time -f "%M %U %S" \
	    -o "$T/time.a" "$P2PCAT" $STUN --send-only bench 2> "$T/a.err" ||
		fail "p2pcat failed: $(cat "$T/a.err")"
	wait $lp || fail "p2pcat listener failed: $(cat "$T/b.err")"
	since "$t0"
	for s in a b; do
		awk '{ print $1, $2 + $3 }' "$T/time.$s" >> "$T/time.$s.all"
	done
}

# median_range FILE: "median min-max" of the numbers in FILE.
median_range() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2f %.2f-%.2f", m, v[1], v[NR] }'
}

# row NAME FILE MB: a table row, the rate from the median.
row() {
	set -- "$1" $(median_range "$2") "$3"
	printf '%-30s %8s %12s %8s\n' "$1" "$2" "$3" \
	    "$(awk -v b="$(($4 * 1048576))" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }')"
}

# both MB ROUNDS: nc and p2pcat in turns, then their rows.
both() {
	: > "$T/nc.s"; : > "$T/p2p.s"; : > "$T/time.a.all"; : > "$T/time.b.all"
	i=0
	while [ $i -lt "$2" ]; do
		nc_run "$1" >> "$T/nc.s"
		p2p_run "$1" >> "$T/p2p.s"
		i=$((i + 1))
	done
	row "netcat (TCP, port forward)" "$T/nc.s" "$1"
	row "p2pcat" "$T/p2p.s" "$1"
}

# cost SIDE MB: peak RSS over the runs, median CPU seconds per GiB.
cost() {
	rss=$(sort -n "$T/time.$1.all" | tail -n 1 | cut -d' ' -f1)
	cut -d' ' -f2 "$T/time.$1.all" | awk -v m="$2" '{ print $1 * 1024 / m }' > "$T/cpu.$1"
	echo "peak RSS $rss KiB, $(median_range "$T/cpu.$1" | cut -d' ' -f1) CPU s/GiB"
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

echo "path: cone NAT to cone NAT through the lab core, $MB MiB one way, $ROUNDS runs each"
printf '%-30s %8s %12s %8s\n' "tool" "median s" "range s" "MB/s"
both "$MB" "$ROUNDS"
set -- $(iperf_udp)
printf '%-30s %8s %12s %8s\n' "iperf3 -u -l 1448 (received)" 5 "" "$1 ($2 % lost)"
echo "(iperf3 sends one datagram per system call; p2pcat sends runs of them"
echo " with UDP GSO and reads them coalesced with UDP GRO)"
echo "p2pcat sender:   $(cost a "$MB")"
echo "p2pcat receiver: $(cost b "$MB")"
echo "p2pcat $(grep -o 'record cipher: [a-z0-9-]*' "$T/b.err")"

lab_netem 25 0 1 || fail netem
echo
echo "the same path with 25 ms each way and 1 % loss (tool_netem), $LMB MiB, $LROUNDS run(s) each"
printf '%-30s %8s %12s %8s\n' "tool" "median s" "range s" "MB/s"
both "$LMB" "$LROUNDS"
lab_netem_off
