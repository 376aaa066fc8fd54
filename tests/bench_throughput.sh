#!/bin/sh
# make bench, throughput (issue 5): in the NAT lab's cone-cone topology,
# BENCH_MB (default 1024) MiB one way, p2pcat against netcat over TCP
# (through a port forward on the same routers) and iperf3 -u at full rate
# (the raw UDP ceiling); then with 25 ms each way and 1 % loss
# (BENCH_LOSSY_MB, default the same), p2pcat against netcat.  Also p2pcat's
# peak RSS and CPU seconds per GiB.  Prints a table; asserts nothing.
. "$(dirname "$0")/lib.sh"
need_root
for c in nc iperf3 /usr/bin/time; do command -v $c >/dev/null || skip "$c is not installed"; done
. "$SRCDIR/tests/natlab.sh"
MB=${BENCH_MB:-1024}
LMB=${BENCH_LOSSY_MB:-$MB}
export P2PCAT_SIGNAL="dir:$T/rv"

lab_public stun && lab_turn stun || fail lab
lab_nat ra cone drop && lab_nat rb cone drop && lab_host a ra && lab_host b rb || fail lab
lab_wait_udp stun 3478 || fail "coturn did not start"
B=$(lab_pubip b)
STUN="--stun $(lab_ip stun):3478"
# Port forwards on b's router for the TCP and UDP baselines.
for proto in tcp udp; do
	for port in 5001 5201; do
		ip netns exec "$LAB-rb" iptables -w -t nat -A PREROUTING -i wan -p $proto \
		    --dport $port -j DNAT --to-destination "$(lab_ip b):$port"
		ip netns exec "$LAB-rb" iptables -w -A FORWARD -i wan -o lan -p $proto \
		    --dport $port -j ACCEPT
	done
done
head -c $((MB * 1048576)) /dev/urandom > "$T/data"

# mbps BYTES SECONDS
rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# nc_run MB: netcat over TCP, b listening behind its port forward.
nc_run() {
	lab_run b sh -c "nc -l -p 5001 > /dev/null" & sp=$!
	wait_for 5 sh -c "ip netns exec $LAB-b ss -Hltn 'sport = :5001' | grep -q ." ||
		fail "nc did not listen"
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a nc -N -q 1 "$B" 5001 ||
		fail "nc failed"
	wait $sp
	since "$t0"
}

# p2p_run MB: p2pcat, a to b; prints seconds, then RSS KiB and CPU s.
p2p_run() {
	lab_run b /usr/bin/time -f "%M %U %S" -o "$T/time.b" "$P2PCAT" $STUN -l --recv-only bench \
	    > /dev/null 2> "$T/b.err" & lp=$!
	t0=$(now)
	head -c $(($1 * 1048576)) "$T/data" | lab_run a /usr/bin/time -f "%M %U %S" \
	    -o "$T/time.a" "$P2PCAT" $STUN --send-only bench 2> "$T/a.err" ||
		fail "p2pcat failed: $(cat "$T/a.err")"
	wait $lp || fail "p2pcat listener failed: $(cat "$T/b.err")"
	since "$t0"
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

echo "path: cone NAT to cone NAT through the lab core, $MB MiB one way"
printf '%-34s %10s %10s\n' "tool" "seconds" "MB/s"
s=$(nc_run "$MB"); printf '%-34s %10s %10s\n' "netcat (TCP, port forward)" "$s" "$(rate $((MB * 1048576)) "$s")"
set -- $(iperf_udp); printf '%-34s %10s %10s\n' "iperf3 -u -l 1448 (received)" "5" "$1 ($2 % lost)"
s=$(p2p_run "$MB"); printf '%-34s %10s %10s\n' "p2pcat" "$s" "$(rate $((MB * 1048576)) "$s")"
set -- $(cat "$T/time.a"); sa="$1 KiB, $(awk -v u="$2" -v s="$3" -v m="$MB" 'BEGIN { printf "%.2f", (u + s) * 1024 / m }') CPU s/GiB"
set -- $(cat "$T/time.b"); sb="$1 KiB, $(awk -v u="$2" -v s="$3" -v m="$MB" 'BEGIN { printf "%.2f", (u + s) * 1024 / m }') CPU s/GiB"
echo "(iperf3 sends one datagram per system call; p2pcat sends runs of them"
echo " with UDP GSO and reads them coalesced with UDP GRO)"
echo "p2pcat sender:   peak RSS $sa"
echo "p2pcat receiver: peak RSS $sb"

lab_netem 25 0 1 || fail netem
echo
echo "the same path with 25 ms each way and 1 % loss (tool_netem), $LMB MiB"
printf '%-34s %10s %10s\n' "tool" "seconds" "MB/s goodput"
s=$(nc_run "$LMB"); printf '%-34s %10s %10s\n' "netcat (TCP, port forward)" "$s" "$(rate $((LMB * 1048576)) "$s")"
s=$(p2p_run "$LMB"); printf '%-34s %10s %10s\n' "p2pcat" "$s" "$(rate $((LMB * 1048576)) "$s")"
lab_netem_off
