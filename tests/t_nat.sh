#!/bin/sh
# t_nat: the real p2pcat across real NATs (tests/natlab.sh), one function
# per scenario.  Each sends 8 MiB of random bytes both ways at once with
# both peers in their own namespace and HOME, checks both sha256 sums and
# both exit statuses, and where it matters the kind of path chosen (from
# -v: "connected: direct path ..." or "connected: relayed path ...").
# coturn on the public host "stun" serves STUN on two addresses and TURN.
#   t_nat.sh [SCENARIO...]   default: all of them
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables conntrack ss awk turnserver; do
	command -v $c >/dev/null 2>&1 || skip "no $c"
done
. "$SRCDIR/tests/natlab.sh"

MIB=${NAT_MIB:-8}
randfile "$T/a" "$MIB"
randfile "$T/b" "$MIB"
lab_public stun
lab_turn stun || fail "coturn did not start"
STUN="--stun $(lab_ip stun):3478 --stun $(lab_ip2 stun):3478"
TURN="--turn turn://u:p@$(lab_ip stun):3478"
N=0

# pathkind FILE: direct or relayed, from a -v log.
pathkind() {
	sed -n 's/.*connected: \([a-z]*\) path.*/\1/p' "$1" | head -n 1
}

# p2p HOST ARGS...: p2pcat in HOST's namespace with its own HOME and config.
p2p() {
	_h=$1; shift
	lab_run "$_h" env XDG_CONFIG_HOME="$LAB_DIR/home/$_h/.config" \
		XDG_CACHE_HOME="$LAB_DIR/home/$_h/.cache" "$P2PCAT" "$@"
}

# tfail MSG: both logs, then fail.
tfail() {
	echo "--- listener:"; cat "$_d/l.err"; echo "--- caller:"; cat "$_d/c.err"
	fail "$*"
}

tcheck() { [ "$2" = "$3" ] || tfail "$1: got \`$2', want \`$3'"; }

# transfer NAME LISTENER CALLER [WANT_KIND] [HOOK]: both ways at once;
# HOOK (a function) runs once half of each side's input has gone out,
# and the rest is held back until it returns.
transfer() {
	_name=$1 _l=$2 _c=$3 _want=${4:-} _hook=${5:-}
	N=$((N + 1))
	_d=$T/$N; mkdir -p "$_d"
	_rv="dir:$_d/rv"
	_half=$((MIB * 524288))
	feed() {	# feed FILE: the first half, then the rest after the hook
		if [ -n "$_hook" ]; then
			head -c $_half "$1"
			wait_for 60 test -e "$_d/go" || return 1
			tail -c +$((_half + 1)) "$1"
		else
			cat "$1"
		fi
	}
	feed "$T/b" | P2PCAT_SIGNAL="$_rv" p2p "$_l" -vv -w 20 $STUN $TURN \
		-l "p$N" > "$_d/a.got" 2> "$_d/l.err" &
	_lp=$!
	feed "$T/a" | P2PCAT_SIGNAL="$_rv" p2p "$_c" -vv -w 20 $STUN $TURN \
		"p$N" > "$_d/b.got" 2> "$_d/c.err" &
	_cp=$!
	if [ -n "$_hook" ]; then
		half() { [ "$(stat -c %s "$_d/a.got")" -ge $_half ] &&
			[ "$(stat -c %s "$_d/b.got")" -ge $_half ]; }
		wait_for 60 half || fail "$_name: the first halves did not arrive"
		$_hook
		touch "$_d/go"
	fi
	wait_exit $_cp 120 || tfail "$_name: caller hung"
	_crc=$RC
	wait_exit $_lp 30 || tfail "$_name: listener hung"
	tcheck "$_name: caller status ($(cat "$_d/c.err"))" $_crc 0
	tcheck "$_name: listener status ($(cat "$_d/l.err"))" $RC 0
	tcheck "$_name: caller to listener sha256" "$(sha "$_d/a.got")" "$(sha "$T/a")"
	tcheck "$_name: listener to caller sha256" "$(sha "$_d/b.got")" "$(sha "$T/b")"
	_kc=$(pathkind "$_d/c.err") _kl=$(pathkind "$_d/l.err")
	if [ -n "$_want" ]; then
		tcheck "$_name: caller's path ($(grep connected: "$_d/c.err"))" "$_kc" "$_want"
		tcheck "$_name: listener's path ($(grep connected: "$_d/l.err"))" "$_kl" "$_want"
	fi
	echo "ok $_name: $(grep 'NAT:' "$_d/c.err" | head -n 1 | sed 's/.*NAT: //')" \
		"| caller $(sed -n 's/.*connected: //p' "$_d/c.err")" \
		"| listener $(sed -n 's/.*connected: //p' "$_d/l.err")"
}

s_samehost() {
	lab_public sh
	transfer samehost sh sh
}

s_lan() {
	lab_nat lr cone accept; lab_host la lr; lab_host lb lr
	transfer lan la lb direct
}

s_cone_accept() {
	lab_nat caa cone accept; lab_host ca caa
	lab_nat cab cone accept; lab_host cb cab
	transfer cone-accept ca cb direct
}

s_cone_drop() {
	lab_nat cda cone drop; lab_host cd cda
	lab_nat cdb cone drop; lab_host ce cdb
	transfer cone-drop cd ce direct
}

s_cone_public() {
	lab_nat cpa cone accept; lab_host cp cpa
	lab_public pp
	transfer cone-public cp pp direct
	transfer public-cone pp cp direct
}

s_two_layers() {
	lab_nat tlo cone accept; lab_nat tli cone accept via=tlo; lab_host tl tli
	lab_nat tlp cone accept; lab_host tp tlp
	transfer two-layers tl tp direct
	transfer two-layers-caller tp tl direct
}

s_sym_cone() {
	lab_nat sca symmetric accept; lab_host sc sca
	lab_nat scb cone accept; lab_host sd scb
	transfer symmetric-cone sc sd direct
	transfer cone-symmetric sd sc direct
}

s_sym_sym() {
	lab_nat ssa symmetric drop; lab_host ss ssa
	lab_nat ssb symmetric accept; lab_host st ssb
	transfer symmetric-symmetric ss st relayed
}

s_netem() {
	lab_nat nea cone accept; lab_host ne nea
	lab_nat neb cone accept; lab_host nf neb
	lab_netem 40 5 2 1 || fail "lab_netem"
	transfer netem ne nf direct
	lab_netem_off
}

s_rebind() {
	lab_nat rba cone accept; lab_host rb rba
	lab_public rp
	rebind() { lab_rebind rba; }
	# The public side must have followed the NAT side to its new port.
	transfer rebind-caller rp rb direct rebind
	grep -q "peer moved to $(lab_pubip rb):2" "$T/$N/l.err" || tfail "rebind-caller: not followed"
	transfer rebind-listener rb rp direct rebind
	grep -q "peer moved to $(lab_pubip rb):2" "$T/$N/c.err" || tfail "rebind-listener: not followed"
	lab_flush rba
}

# A conntrack flush mid-transfer between two cone NATs whose routers drop
# unsolicited packets: the NAT maps the port again when our next packet
# leaves (it is free), and the path carries on.
s_flush() {
	lab_nat fla cone drop; lab_host fa fla
	lab_nat flb cone drop; lab_host fb flb
	flush() { lab_flush fla; lab_flush flb; }
	transfer flush fa fb direct flush
}

# The same with a new public port (lab_rebind): the other NAT filters it,
# so the direct path dies; after 3 s without answers the session moves
# to a TURN relay and carries on.
s_rebind_nat() {
	lab_nat rna cone drop; lab_host ra1 rna
	lab_nat rnb cone drop; lab_host rb1 rnb
	rebind() { lab_rebind rna; }
	transfer rebind-two-nats ra1 rb1 direct rebind
	grep -q "moving to the peer's TURN relay" "$T/$N/l.err" "$T/$N/c.err" ||
		tfail "rebind-two-nats: no move to the relay"
}

# Servers that do not answer (a public host with nothing on 3478) cost
# at most the gathering bound and are reported; the session goes on.
s_deadserver() {
	lab_public dead
	lab_nat dsa cone drop; lab_host da dsa
	lab_nat dsb cone drop; lab_host db dsb
	_stun=$STUN _turn=$TURN
	STUN="--stun $(lab_ip dead):3478 $STUN" TURN="--turn turn://u:p@$(lab_ip dead):3478"
	transfer deadserver da db direct
	STUN=$_stun TURN=$_turn
	for f in l c; do
		grep -q "STUN server $(lab_ip dead):3478 did not answer" "$T/$N/$f.err" &&
			grep -q "TURN server $(lab_ip dead):3478: no answer in time; no relay" "$T/$N/$f.err" ||
			tfail "deadserver: not reported"
	done
}

# Routers that forget a UDP mapping after 20 s without packets (Linux
# keeps one 30 s, or 120 s once it has seen both ways), and 45 s of
# silence mid-transfer: only keepalives keep the path, direct or relayed.
s_idle() {
	lab_nat ida cone drop; lab_host ia ida
	lab_nat idb cone drop; lab_host ib idb
	lab_nat idc symmetric drop; lab_host ic idc
	lab_nat idd symmetric drop; lab_host id idd
	for r in ida idb idc idd; do
		ip netns exec "$LAB-$r" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=20 \
			net.netfilter.nf_conntrack_udp_timeout_stream=20 || fail "sysctl in $r"
	done
	silence() { sleep 45; }
	transfer idle-direct ia ib direct silence
	transfer idle-relayed ic id relayed silence
}

# A host whose link carries at most 1300-byte IP packets: its own larger
# datagrams fail at sendmsg (EMSGSIZE, and UDP GSO runs holding a path
# MTU probe are refused whole), the peer's vanish on the way in.  Both
# path MTU searches (RFC 8899, 16-byte steps) must end within a step
# below the 1272 bytes of UDP payload that fit, less the 30 bytes of
# header and tag a packet carries.
s_mtu() {
	lab_nat mua cone drop; lab_host mu mua
	lab_nat mub cone drop; lab_host mv mub
	ip -n "$LAB-mu" link set eth0 mtu 1300 || fail "mtu"
	ip -n "$LAB-mua" link set p-mu mtu 1300 || fail "mtu"
	transfer mtu mu mv direct
	for f in l c; do
		_p=$(sed -n 's/.*payload \([0-9]*\) bytes a packet.*/\1/p' "$T/$N/$f.err")
		[ -n "$_p" ] && [ "$_p" -le 1242 ] && [ "$_p" -gt $((1242 - 16)) ] ||
			tfail "mtu: $f's payload a packet is \`$_p', want 1227-1242"
	done
	echo "   payload a packet: $_p bytes"
}

# IPv6 behind home routers: global addresses, no NAT66, stateful
# firewalls dropping what was not asked for.  Without STUN or TURN only
# the IPv6 host candidates can meet, through both firewalls (each opens
# for the other's probes once its own went out); with them, the IPv4
# NATs offer paths too and either family may win.
s_ipv6() {
	lab_nat v6a cone drop ipv6; lab_host v6h v6a
	lab_nat v6b cone drop ipv6; lab_host v6i v6b
	_stun=$STUN _turn=$TURN
	STUN= TURN=
	transfer ipv6 v6h v6i direct
	STUN=$_stun TURN=$_turn
	for f in l c; do
		grep -q "connected: direct path to \[2001:db8:" "$T/$N/$f.err" ||
			tfail "ipv6: not over IPv6"
	done
	grep -q "connected: direct path to \[$(lab_ip6 v6h)\]:" "$T/$N/c.err" ||
		tfail "ipv6: the caller is not at the listener's address"
	transfer ipv6-dual v6h v6i direct
}

# trickle_start NAME LISTENER CALLER: both peers at once in a new $_d,
# each sending a numbered line every 20 ms until $_d/stop, then its
# file; returns once both are on a direct path.  trickle_end NAME: stop
# the lines; both must exit 0 with everything delivered.
trickle_start() {
	N=$((N + 1)); _d=$T/$N; mkdir -p "$_d"
	trickle() {
		_i=0
		# (or until $_d has gone with a failed run)
		while [ ! -e "$_d/stop" ] && [ -d "$_d" ]; do
			echo "line $_i"; _i=$((_i + 1)); sleep 0.02
		done
		cat "$1"
	}
	trickle "$T/b" | tee "$_d/b.sent" | P2PCAT_SIGNAL="dir:$_d/rv" p2p "$2" -vv -w 20 \
		$STUN $TURN -l "$1" > "$_d/a.got" 2> "$_d/l.err" &
	_lp=$!
	trickle "$T/a" | tee "$_d/a.sent" | P2PCAT_SIGNAL="dir:$_d/rv" p2p "$3" -vv -w 20 \
		$STUN $TURN "$1" > "$_d/b.got" 2> "$_d/c.err" &
	_cp=$!
	wait_for 20 both "connected: direct path" || tfail "$1: no direct path"
}
both() { grep -q "$1" "$_d/l.err" && grep -q "$1" "$_d/c.err"; }
trickle_end() {
	touch "$_d/stop"
	wait_exit $_cp 60 || tfail "$1: caller hung"
	_crc=$RC
	wait_exit $_lp 30 || tfail "$1: listener hung"
	tcheck "$1: caller status" $_crc 0
	tcheck "$1: listener status" $RC 0
	tcheck "$1: caller to listener sha256" "$(sha "$_d/a.got")" "$(sha "$_d/a.sent")"
	tcheck "$1: listener to caller sha256" "$(sha "$_d/b.got")" "$(sha "$_d/b.sent")"
}

# An outage of the direct path only (inet drops what the two NATs send
# each other; the TURN server stays reachable): after 3 s without answers
# both sides move to a relay; once the path is back, a PATH_CHALLENGE
# sent there and its PATH_RESPONSE bring both back to it.  Data trickles
# both ways throughout, so each side has something to send; both
# streams must arrive whole.
s_heal() {
	lab_nat hla cone drop; lab_host hl hla
	lab_nat hlb cone drop; lab_host hm hlb
	A=$(lab_pubip hl) B=$(lab_pubip hm)
	trickle_start heal hl hm
	outage() {
		ip netns exec "$LAB-inet" iptables -w "$1" FORWARD -s "$A" -d "$B" -j DROP &&
		ip netns exec "$LAB-inet" iptables -w "$1" FORWARD -s "$B" -d "$A" -j DROP
	}
	outage -I || fail "heal: iptables"
	wait_for 20 both "peer moved to .*(through our TURN relay)\|moving to the peer's TURN relay" ||
		tfail "heal: did not move to a relay"
	outage -D || fail "heal: iptables"
	wait_for 20 both "back on a direct path" || tfail "heal: did not come back"
	trickle_end heal
	echo "ok heal: $(grep -h "back on a direct path" "$_d/l.err" "$_d/c.err" | tr '\n' ' ')"
}

# One direction of the direct path dies (inet drops what one NAT sends
# the other; the TURN server and the other direction stay): the side
# whose packets vanish must move to a relay even though the peer's
# packets, and its rechecks of the direct path, still reach it there,
# and neither may go back to that path; both streams must arrive whole
# with the drop still in place.
s_oneway() {
	lab_nat owa cone drop; lab_host ow owa
	lab_nat owb cone drop; lab_host ox owb
	for dir in caller listener; do
		trickle_start oneway ow ox
		if [ $dir = caller ]; then
			_rule="FORWARD -s $(lab_pubip ox) -d $(lab_pubip ow) -j DROP"
		else
			_rule="FORWARD -s $(lab_pubip ow) -d $(lab_pubip ox) -j DROP"
		fi
		# shellcheck disable=SC2086
		ip netns exec "$LAB-inet" iptables -w -I $_rule || fail "oneway: iptables"
		_s1=$(stat -c %s "$_d/a.got") _s2=$(stat -c %s "$_d/b.got")
		# Lines still arrive both ways, through a relay.
		grown() { [ "$(stat -c %s "$_d/a.got")" -gt $((_s1 + 2000)) ] &&
			[ "$(stat -c %s "$_d/b.got")" -gt $((_s2 + 2000)) ]; }
		wait_for 20 grown || tfail "oneway ($dir to listener dead): the data stopped"
		trickle_end "oneway ($dir to listener dead)"
		# shellcheck disable=SC2086
		ip netns exec "$LAB-inet" iptables -w -D $_rule
		# Only a PATH_RESPONSE brings a side back, and none can come.
		grep -q "back on a direct path" "$_d/l.err" "$_d/c.err" &&
			tfail "oneway: back on a path that works one way only"
		echo "ok oneway, the $dir's direction dead:" \
		    "$(grep -h "moving to the peer's TURN relay\|through our TURN relay" "$_d/l.err" "$_d/c.err" | sort -u | tr '\n' ' ')"
	done
}

ALL="samehost lan cone_accept cone_drop cone_public two_layers sym_cone sym_sym netem rebind rebind_nat flush deadserver idle mtu ipv6 heal oneway"
for s in ${*:-$ALL}; do
	start=$(date +%s)
	"s_$s"
	echo "   ($s: $(( $(date +%s) - start )) s)"
done
