#!/bin/sh
# make bench, connect time (issue 4): in the NAT lab, per scenario, the
# time from starting the caller to the first byte at the listener, median
# and max of BENCH_RUNS (10) runs, minus the rendezvous polling delay:
# both sides poll the dir: rendezvous every POLL_MS (10 ms), so on
# average POLL_MS (two waits of half an interval) is spent there and
# subtracted.  The gathering (STUN, TTL probe, TURN Allocate) counts.
# Each scenario is a function; bench_connect runs them all.  Goals:
# direct paths under 1 s, relayed under 3 s.
. "$(dirname "$0")/lib.sh"
need_root
command -v turnserver >/dev/null 2>&1 || skip "no turnserver (coturn)"
. "$SRCDIR/tests/natlab.sh"
RUNS=${BENCH_RUNS:-10}
POLL_MS=10

nsecs() { date +%s%N; }

# p2p HOST ARGS...: p2pcat in HOST's namespace with its own HOME and
# config, which polls the rendezvous every POLL_MS.
p2p() {
	_h=$1; shift
	mkdir -p "$LAB_DIR/home/$_h/.config/p2pcat"
	echo "poll = 0.$(printf %02d $((POLL_MS / 10)))" > "$LAB_DIR/home/$_h/.config/p2pcat/config"
	lab_run "$_h" env XDG_CONFIG_HOME="$LAB_DIR/home/$_h/.config" \
		XDG_CACHE_HOME="$LAB_DIR/home/$_h/.cache" "$P2PCAT" "$@"
}

# connect_once LISTENER CALLER: one connection; prints "MS KIND".
connect_once() {
	_d=$T/c$$.$1.$2; rm -rf "$_d"; mkdir -p "$_d"
	_o="-v $CT_STUN $CT_TURN"
	: > "$_d/l.err"
	P2PCAT_SIGNAL="dir:$_d/rv" p2p "$1" $_o -l "ct$1" < /dev/null 2> "$_d/l.err" |
		{ head -c 1 > /dev/null; date +%s%N > "$_d/first"; cat > /dev/null; } &
	_lp=$!
	wait_for 10 grep -q "listening as" "$_d/l.err" || fail "listener did not start: $(cat "$_d/l.err")"
	_t0=$(nsecs)
	echo x | P2PCAT_SIGNAL="dir:$_d/rv" p2p "$2" $_o "ct$1" > /dev/null 2> "$_d/c.err" ||
		fail "caller failed: $(cat "$_d/c.err")"
	wait_exit $_lp 10 || fail "listener hung: $(cat "$_d/l.err")"
	[ -s "$_d/first" ] || fail "no byte at the listener"
	echo "$(( ($(cat "$_d/first") - _t0) / 1000000 - POLL_MS )) $(sed -n 's/.*connected: \([a-z]*\) path.*/\1/p' "$_d/c.err")"
}

# connect_row NAME LISTENER CALLER: RUNS connections, one table row.
connect_row() {
	: > "$T/times"
	_i=0
	while [ $_i -lt "$RUNS" ]; do
		connect_once "$2" "$3" >> "$T/times"
		_i=$((_i + 1))
		# Routers send about one ICMP error a second to a host (after
		# a burst of 6); faster runs would starve the hop count.
		sleep 1
	done
	sort -n "$T/times" | awk -v name="$1" '
		{ t[NR] = $1; k[$2]++ }
		END {
			med = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
			kinds = ""; for (x in k) kinds = kinds (kinds ? "," : "") x "(" k[x] ")"
			printf "%-22s %-16s %8.0f %8d\n", name, kinds, med, t[NR]
		}'
}

bench_connect() {
	lab_public stun
	lab_turn stun || fail "coturn did not start"
	CT_STUN="--stun $(lab_ip stun):3478 --stun $(lab_ip2 stun):3478"
	CT_TURN="--turn turn://u:p@$(lab_ip stun):3478"
	lab_nat ra cone accept; lab_host a ra
	lab_nat rb cone accept; lab_host b rb
	lab_nat rc cone drop; lab_host c rc
	lab_nat rd cone drop; lab_host d rd
	lab_nat ro cone accept; lab_nat ri cone accept via=ro; lab_host e ri
	lab_nat rs symmetric drop; lab_host s rs
	lab_nat rt symmetric drop; lab_host t rt
	lab_public p
	lab_nat rl cone drop; lab_host l1 rl; lab_host l2 rl
	echo "== connect time, ms from starting the caller to the first byte at the listener"
	echo "   (median and max of $RUNS, less $POLL_MS ms of rendezvous polling)"
	printf "%-22s %-16s %8s %8s\n" scenario "path(runs)" median max
	connect_row "same LAN" l1 l2
	connect_row "cone+public" a p
	connect_row "cone-cone, accepting" a b
	connect_row "cone-cone, dropping" c d
	connect_row "two layers + cone" e b
	connect_row "symmetric + cone" s c
	connect_row "symmetric both" s t
	lab_netem 40 5 2 1 || fail "lab_netem"
	connect_row "cone-cone, 40 ms, 2 %" c d
	lab_netem_off
	lab_cleanup
}

bench_connect
