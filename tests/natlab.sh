# natlab.sh: real NATs in network namespaces, for tests run as root.
# Source it after tests/lib.sh (or alone: it then sets its own traps).
#
# Every namespace is named "$LAB-NAME" with LAB=p2p<pid> by default, so
# parallel runs never collide; lab_cleanup (run on exit, also after a
# failure or SIGINT/SIGTERM) kills every process inside them and deletes
# them.  Nothing outside these namespaces is touched: no root-namespace
# interface, route, sysctl or iptables rule.  Interfaces are created
# directly inside the namespaces, so their names only need to be unique
# per namespace.
#
# Topology: one "inet" namespace is the core router of the public
# internet.  Each public host and each outermost NAT router hangs off it
# on its own point-to-point link, so inet is one routed hop:
#   public host: 198.51.100.(8k+2)/29 on eth0, a second address 8k+3
#                (for a STUN server that needs two), gateway 8k+1 (inet)
#   NAT router:  WAN "wan" 203.0.113.(4k+2)/30, gateway 4k+1 (inet);
#                LAN bridge "lan" 10.N.0.1/24, one veth port per host;
#                a router may instead sit on another router's LAN
#                (two NAT layers)
#   host:        eth0 10.N.0.M/24 on its router's LAN, gateway 10.N.0.1
# Names (NAME) are 1-8 characters [a-z0-9].
#
# API (all return non-zero and print "natlab: ..." on failure):
#   lab_public NAME             public host, no NAT
#   lab_nat NAME [cone|symmetric] [accept|drop] [via=ROUTER]
#                               NAT router; cone = MASQUERADE (keeps the
#                               source port: same public port toward every
#                               destination), symmetric = MASQUERADE
#                               --random-fully (new port per destination);
#                               accept = INPUT accepts unsolicited inbound
#                               packets (the netfilter port clash case),
#                               drop = INPUT drops them (default);
#                               FORWARD passes WAN->LAN only
#                               ESTABLISHED,RELATED; via= puts it behind
#                               ROUTER (default: on inet); ipv6 also
#                               routes 2001:db8:N::/64 to its LAN, no
#                               NAT66, behind a stateful ip6tables
#                               firewall of the same accept/drop policy
#                               (a home router; on inet only)
#   lab_host NAME ROUTER        host on ROUTER's LAN (several may share one)
#   lab_router NAME             the router NAME sits behind ("inet" if none)
#   lab_ip NAME                 address of a host (LAN address behind a NAT),
#                               or a router's WAN address
#   lab_ip2 NAME                second address of a public host
#   lab_ip6 NAME                IPv6 address of a host on an ipv6 router
#   lab_pubip NAME              the address the internet sees for NAME (its
#                               outermost router's WAN address)
#   lab_depth NAME              NAT layers between NAME and inet (0 public)
#   lab_hops NAME               hops from NAME to the inet core = depth + 1:
#                               a packet sent with this TTL opens every NAT of
#                               its own side and dies at inet, before the
#                               peer's NAT (the low-TTL punch).  The peer's
#                               outermost router is hop depth + 2.
#   lab_run NAME CMD...         run CMD in NAME's namespace with its own HOME
#   lab_bg NAME CMD...          the same in the background; sets LAB_PID
#   lab_wait_udp NAME PORT [S]  wait up to S s (5) for a UDP listener
#   lab_cone_cone               the benches' topology: coturn on public host
#                               stun, hosts a and b behind cone NATs ra and
#                               rb that drop unsolicited packets
#   lab_forward HOST PROTO PORT a port forward on HOST's router: PROTO
#                               (tcp|udp) to PORT of its WAN address goes
#                               to HOST:PORT
#   lab_turn NAME               coturn (STUN on 3478 and TURN, user u:p,
#                               realm r) on both addresses of public host
#                               NAME; sets LAB_PID
#   lab_conntrack ROUTER [ARGS] conntrack -L ARGS in ROUTER's namespace
#   lab_flush ROUTER            conntrack -F: every mapping forgotten; a
#                               symmetric NAT then picks new ports, a cone
#                               NAT keeps a port that is still free
#   lab_rebind ROUTER           force NEW public ports: move MASQUERADE to a
#                               fresh port range (--to-ports), then flush
#   lab_netem NETEM-OPTIONS...  every packet crossing inet goes through
#                               tests/tool_netem (user-space netem: this
#                               kernel has no netem qdisc) with tc's netem
#                               options, e.g. delay 40ms loss 2% reorder 5%,
#                               so a round trip between two sites is delayed
#                               twice; one netem per interface of inet (as
#                               if on each), so each direction has its own
#                               queue, limit, rate and gap count; limit
#                               20000 unless given; seed from LAB_SEED
#                               (default 1)
#   lab_netem DELAY_MS JITTER_MS LOSS_PCT [REORDER_PCT [DUP_PCT [RATE_KBIT [LIMIT]]]]
#                               the same, short: delay DELAY_MS ms JITTER_MS
#                               ms loss LOSS_PCT % ... rate RATE_KBIT kbit
#                               limit LIMIT (zeros left out)
#   lab_netem_off               stop it; its counters are in $LAB_NETEM_LOG
#                               (tool_netem's report: totals, then what was
#                               done to each source address's packets)
#   lab_loss PCT / lab_loss_off pure random loss in inet's FORWARD with
#                               iptables -m statistic --mode random
#                               --probability (PCT per crossing of inet,
#                               also when tool_netem runs: the rule skips
#                               the detour into nm0)
#   lab_mitm TOOL-MITM-ARGS...  every packet crossing inet goes through
#                               tests/tool_mitm (an attacker on the path),
#                               wired as tool_netem is (not both at once);
#                               its report in $LAB_MITM_LOG
#   lab_mitm_off                stop it: its route and rule go, it must
#                               exit 0 on SIGTERM within 5 s
#   lab_cleanup                 kill and delete everything (runs on exit)
#
# Examples (P=tests/tool_udpprobe, or p2pcat):
#   same host:          lab_public h; lab_bg h P echo 198.51.100.2:7;
#                       lab_run h P ping 198.51.100.2:7
#   same LAN, one NAT:  lab_nat r; lab_host a r; lab_host b r
#                       (b reaches a at $(lab_ip a): there is no hairpin)
#   cone both sides, routers accepting (the clash) / dropping:
#                       lab_nat ra cone accept; lab_nat rb cone accept
#                       lab_nat ra cone drop;   lab_nat rb cone drop
#                       lab_host a ra; lab_host b rb
#   cone and public:    lab_nat ra; lab_host a ra; lab_public b
#   two NAT layers:     lab_nat ro; lab_nat ri via=ro; lab_host a ri
#                       (lab_hops a = 3)
#   symmetric + cone:   lab_nat ra symmetric; lab_nat rb cone
#   STUN/TURN, rendezvous: lab_public stun; lab_turn stun
#                       lab_public fs; lab_bg fs python3 tests/fsserver.py
#                       --host $(lab_ip fs) --port 0 --port-file F
#   40 ms, 2 % loss, reordering: lab_netem delay 40ms 5ms loss 2% reorder 1%
#                       (a packet between two sites crosses inet once:
#                       40 +- 5 ms, 2 % lost, 1 % sent at once past the
#                       queue; RTT about 80 ms); short: lab_netem 40 5 2 1
#   rebinding mid-transfer: lab_bg a p2pcat ...; (wait for progress);
#                       lab_rebind ra (or lab_flush ra)
#
# tool_netem is wired with policy routing in inet: "ip rule not iif nm0
# lookup 100" and "default dev nm0 table 100" send every packet that did
# not come out of the TUN into it; what the tool writes back arrives with
# iif nm0 and is routed by the main table.

LAB=${LAB:-p2p$$}
# Another PID namespace may have used our pid: then add a random suffix.
while ip netns list 2>/dev/null | grep -q "^$LAB-"; do
	LAB=p2p$$r$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
done
LAB_SRC=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
LAB_NETEM=${LAB_NETEM:-$LAB_SRC/tests/tool_netem}
LAB_MITM=${LAB_MITM:-$LAB_SRC/tests/tool_mitm}
if [ -n "${T:-}" ]; then
	LAB_DIR=$T/lab
	mkdir -p "$LAB_DIR"
else
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/natlab.XXXXXX")
fi
LAB_NETEM_LOG=$LAB_DIR/netem.log
LAB_MITM_LOG=$LAB_DIR/mitm.log
LAB_PID=
_lab_nlink=0 _lab_npub=0 _lab_nlan=0 _lab_netem_pid= _lab_mitm_pid= _lab_loss= _lab_rebinds=0

_lab_err() { echo "natlab: $*" >&2; return 1; }
_lab_get() { eval "echo \"\${_lab_${1}_$2:-}\""; }
_lab_set() { eval "_lab_${1}_$2=\$3"; }

# _lab_in NAME CMD...: CMD in NAME's namespace (dash has no ${@:2}).
_lab_in() {
	_n=$1; shift
	ip netns exec "$LAB-$_n" "$@"
}

# _lab_poll SECS CMD...: like lib.sh's wait_for, which we may not have.
_lab_poll() {
	_t=$(( $1 * 20 )); shift
	while [ $_t -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		_t=$((_t - 1))
	done
	return 1
}

_lab_name_ok() {
	case $1 in
	''|*[!a-z0-9]*) _lab_err "bad name \`$1' (want [a-z0-9], 1-8 chars)" ;;
	?????????*) _lab_err "bad name \`$1' (want [a-z0-9], 1-8 chars)" ;;
	*) [ -z "$(_lab_get kind "$1")" ] || _lab_err "\`$1' exists" ;;
	esac
}

# _lab_mkns NAME: a namespace with lo up, rp_filter off, no forwarding.
_lab_mkns() {
	ip netns add "$LAB-$1" || return 1
	mkdir -p "$LAB_DIR/home/$1"
	_lab_in "$1" ip link set lo up
	_lab_in "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 >/dev/null
	# No duplicate address detection: a link-local address would be
	# tentative for a second or two, and IPv6 not routed meanwhile.
	_lab_in "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 >/dev/null 2>&1
}

# The core router, made on first use.
_lab_inet() {
	[ -n "$(_lab_get kind inet)" ] && return 0
	_lab_mkns inet || return 1
	_lab_in inet sysctl -qw net.ipv4.ip_forward=1 >/dev/null
	_lab_set kind inet core
	_lab_set depth inet 0
}

lab_public() {
	_lab_name_ok "$1" || return 1
	_lab_inet || return 1
	[ $_lab_npub -lt 32 ] || { _lab_err "too many public hosts"; return 1; }
	_b=$((_lab_npub * 8)); _lab_npub=$((_lab_npub + 1))
	_lab_mkns "$1" || return 1
	ip -n "$LAB-inet" link add "v-$1" type veth peer name eth0 netns "$LAB-$1" || return 1
	ip -n "$LAB-inet" addr add "198.51.100.$((_b + 1))/29" dev "v-$1"
	ip -n "$LAB-inet" link set "v-$1" up
	ip -n "$LAB-$1" addr add "198.51.100.$((_b + 2))/29" dev eth0
	ip -n "$LAB-$1" addr add "198.51.100.$((_b + 3))/29" dev eth0
	ip -n "$LAB-$1" link set eth0 up
	ip -n "$LAB-$1" route add default via "198.51.100.$((_b + 1))"
	_lab_set kind "$1" public
	_lab_set ip "$1" "198.51.100.$((_b + 2))"
	_lab_set ip2 "$1" "198.51.100.$((_b + 3))"
	_lab_set depth "$1" 0
	_lab_set top "$1" "$1"
	_lab_set up "$1" inet
}

# _lab_lanport ROUTER NAME: a veth from ROUTER's LAN bridge to NAME's eth0
# (or wan); sets _addr and _gw.
_lab_lanport() {
	_r=$1 _h=$2 _dev=$3
	_net=$(_lab_get lan "$_r")
	_m=$(_lab_get nhost "$_r")
	[ "$_m" -lt 250 ] || { _lab_err "LAN of \`$_r' is full"; return 1; }
	_m=$((_m + 1)); _lab_set nhost "$_r" $_m
	ip -n "$LAB-$_r" link add "p-$_h" type veth peer name "$_dev" netns "$LAB-$_h" || return 1
	ip -n "$LAB-$_r" link set "p-$_h" master lan up
	_addr=$_net.$_m _gw=$_net.1
	ip -n "$LAB-$_h" addr add "$_addr/24" dev "$_dev"
	ip -n "$LAB-$_h" link set "$_dev" up
	ip -n "$LAB-$_h" route add default via "$_gw"
}

lab_nat() {
	_name=$1; shift
	_lab_name_ok "$_name" || return 1
	_mode=cone _input=drop _via=inet _v6=
	for _a; do
		case $_a in
		cone|symmetric) _mode=$_a ;;
		accept|drop) _input=$_a ;;
		via=*) _via=${_a#via=} ;;
		ipv6) _v6=1 ;;
		*) _lab_err "lab_nat: bad argument \`$_a'"; return 1 ;;
		esac
	done
	if [ -n "$_v6" ] && [ "$_via" != inet ]; then
		_lab_err "lab_nat: ipv6 only on inet"; return 1
	fi
	_lab_inet || return 1
	if [ "$_via" != inet ] && [ "$(_lab_get kind "$_via")" != nat ]; then
		_lab_err "lab_nat: \`$_via' is not a router"; return 1
	fi
	[ $_lab_nlan -lt 250 ] || { _lab_err "too many routers"; return 1; }
	_lab_nlan=$((_lab_nlan + 1))
	_lab_mkns "$_name" || return 1
	_lab_in "$_name" sysctl -qw net.ipv4.ip_forward=1 >/dev/null
	if [ "$_via" = inet ]; then
		[ $_lab_nlink -lt 64 ] || { _lab_err "too many routers on inet"; return 1; }
		_b=$((_lab_nlink * 4)); _lab_nlink=$((_lab_nlink + 1))
		ip -n "$LAB-inet" link add "v-$_name" type veth peer name wan netns "$LAB-$_name" || return 1
		ip -n "$LAB-inet" addr add "203.0.113.$((_b + 1))/30" dev "v-$_name"
		ip -n "$LAB-inet" link set "v-$_name" up
		ip -n "$LAB-$_name" addr add "203.0.113.$((_b + 2))/30" dev wan
		ip -n "$LAB-$_name" link set wan up
		ip -n "$LAB-$_name" route add default via "203.0.113.$((_b + 1))"
		_lab_set ip "$_name" "203.0.113.$((_b + 2))"
		_lab_set depth "$_name" 0
		_lab_set top "$_name" "$_name"
	else
		_lab_lanport "$_via" "$_name" wan || return 1
		_lab_set ip "$_name" "$_addr"
		_lab_set depth "$_name" $(( $(_lab_get depth "$_via") + 1 ))
		_lab_set top "$_name" "$(_lab_get top "$_via")"
	fi
	ip -n "$LAB-$_name" link add lan type bridge || return 1
	ip -n "$LAB-$_name" addr add "10.$_lab_nlan.0.1/24" dev lan
	ip -n "$LAB-$_name" link set lan up
	_lab_set lan "$_name" "10.$_lab_nlan.0"
	_lab_set nhost "$_name" 1
	_lab_set kind "$_name" nat
	_lab_set up "$_name" "$_via"
	_lab_set mode "$_name" "$_mode"

	_lab_ipt() { _lab_in "$_name" iptables -w "$@"; }
	if [ "$_mode" = symmetric ]; then
		_lab_ipt -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully || return 1
	else
		_lab_ipt -t nat -A POSTROUTING -o wan -j MASQUERADE || return 1
	fi
	_lab_ipt -P FORWARD DROP
	# br_netfilter: frames bridged between LAN ports also cross FORWARD.
	_lab_ipt -A FORWARD -i lan -o lan -j ACCEPT
	_lab_ipt -A FORWARD -i lan -o wan -j ACCEPT
	_lab_ipt -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	if [ "$_input" = drop ]; then
		_lab_ipt -P INPUT DROP
		_lab_ipt -A INPUT -i lo -j ACCEPT
		_lab_ipt -A INPUT -i lan -j ACCEPT
		_lab_ipt -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	fi
	[ -z "$_v6" ] || _lab_nat6 "$_name" "$_lab_nlan" "$((_lab_nlink - 1))" "$_input"
}

# _lab_nat6 ROUTER N LINK INPUT: IPv6 for router N on inet link LINK:
# 2001:db8:ffff:LINK::/64 on the WAN, 2001:db8:N::/64 on the LAN, a
# stateful firewall between them.
_lab_nat6() {
	_r=$1 _w=2001:db8:ffff:$3 _p=2001:db8:$2
	if [ -z "$(_lab_get v6 inet)" ]; then
		_lab_in inet sysctl -qw net.ipv6.conf.all.forwarding=1 >/dev/null || return 1
		_lab_set v6 inet 1
	fi
	_lab_in "$_r" sysctl -qw net.ipv6.conf.all.forwarding=1 >/dev/null || return 1
	ip -n "$LAB-inet" addr add "$_w::1/64" dev "v-$_r" nodad || return 1
	ip -n "$LAB-inet" -6 route add "$_p::/64" via "$_w::2" || return 1
	ip -n "$LAB-$_r" addr add "$_w::2/64" dev wan nodad || return 1
	ip -n "$LAB-$_r" -6 route add default via "$_w::1" || return 1
	ip -n "$LAB-$_r" addr add "$_p::1/64" dev lan nodad || return 1
	_lab_set lan6 "$_r" "$_p"
	_lab_ip6t() { _lab_in "$_r" ip6tables -w "$@"; }
	_lab_ip6t -P FORWARD DROP
	_lab_ip6t -A FORWARD -i lan -o lan -j ACCEPT
	_lab_ip6t -A FORWARD -i lan -o wan -j ACCEPT
	_lab_ip6t -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	if [ "$4" = drop ]; then
		_lab_ip6t -P INPUT DROP
		_lab_ip6t -A INPUT -i lo -j ACCEPT
		_lab_ip6t -A INPUT -i lan -j ACCEPT
		_lab_ip6t -A INPUT -p ipv6-icmp -j ACCEPT	# neighbour discovery
		_lab_ip6t -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
	fi
}

lab_host() {
	_lab_name_ok "$1" || return 1
	[ "$(_lab_get kind "$2")" = nat ] || { _lab_err "lab_host: \`$2' is not a router"; return 1; }
	_lab_mkns "$1" || return 1
	_lab_lanport "$2" "$1" eth0 || return 1
	_lab_set kind "$1" host
	_lab_set up "$1" "$2"
	_lab_set ip "$1" "$_addr"
	_p=$(_lab_get lan6 "$2")
	if [ -n "$_p" ]; then
		ip -n "$LAB-$1" addr add "$_p::${_addr##*.}/64" dev eth0 nodad || return 1
		ip -n "$LAB-$1" -6 route add default via "$_p::1" || return 1
		_lab_set ip6 "$1" "$_p::${_addr##*.}"
	fi
	_lab_set depth "$1" $(( $(_lab_get depth "$2") + 1 ))
	_lab_set top "$1" "$(_lab_get top "$2")"
}

lab_router() { _lab_get up "$1"; }
lab_ip() { _lab_get ip "$1"; }
lab_ip2() { _lab_get ip2 "$1"; }
lab_ip6() { _lab_get ip6 "$1"; }
lab_pubip() { _lab_get ip "$(_lab_get top "$1")"; }
lab_depth() { _lab_get depth "$1"; }
lab_hops() { echo $(( $(_lab_get depth "$1") + 1 )); }

lab_run() {
	_n=$1; shift
	ip netns exec "$LAB-$_n" env HOME="$LAB_DIR/home/$_n" "$@"
}

lab_bg() {
	_n=$1; shift
	# An asynchronous command reads /dev/null unless its stdin is
	# redirected (POSIX), and dash applies that even to `<&0': hand the
	# function's stdin over on fd 9, so `lab_bg a cmd < file' works.
	exec 9<&0
	ip netns exec "$LAB-$_n" env HOME="$LAB_DIR/home/$_n" "$@" <&9 9<&- &
	LAB_PID=$!
	exec 9<&-
}

_lab_udp_listening() { [ -n "$(_lab_in "$1" ss -Hlun "sport = :$2")" ]; }
lab_wait_udp() { _lab_poll "${3:-5}" _lab_udp_listening "$1" "$2"; }

lab_cone_cone() {
	lab_public stun && lab_turn stun &&
	lab_nat ra cone drop && lab_nat rb cone drop && lab_host a ra && lab_host b rb
}

lab_forward() {
	_r=$(_lab_get up "$1")
	[ "$(_lab_get kind "$_r")" = nat ] || { _lab_err "lab_forward: \`$1' is not behind a router"; return 1; }
	_lab_in "$_r" iptables -w -t nat -A PREROUTING -i wan -p "$2" --dport "$3" \
		-j DNAT --to-destination "$(lab_ip "$1"):$3" &&
	_lab_in "$_r" iptables -w -A FORWARD -i wan -o lan -p "$2" --dport "$3" -j ACCEPT
}

lab_turn() {
	[ "$(_lab_get kind "$1")" = public ] || { _lab_err "lab_turn: \`$1' is not a public host"; return 1; }
	_d=$LAB_DIR/turn-$1
	mkdir -p "$_d"
	lab_bg "$1" turnserver -n --lt-cred-mech --user=u:p --realm=r \
		--no-tls --no-dtls --no-cli --listening-port=3478 \
		--listening-ip="$(lab_ip "$1")" --listening-ip="$(lab_ip2 "$1")" \
		--relay-ip="$(lab_ip "$1")" --min-port=49152 --max-port=49999 \
		--pidfile="$_d/pid" --db="$_d/db" --log-file="$_d/log" \
		--simple-log --no-stdout-log >/dev/null 2>&1
	lab_wait_udp "$1" 3478 10 || { _lab_err "coturn did not start on \`$1'"; return 1; }
}

lab_conntrack() {
	_n=$1; shift
	_lab_in "$_n" conntrack -L "$@" 2>/dev/null
}

lab_flush() { _lab_in "$1" conntrack -F >/dev/null 2>&1; }

lab_rebind() {
	[ "$(_lab_get kind "$1")" = nat ] || { _lab_err "lab_rebind: \`$1' is not a router"; return 1; }
	_lab_rebinds=$((_lab_rebinds + 1))
	_lo=$((20000 + (_lab_rebinds % 40) * 1000))
	_fully=
	[ "$(_lab_get mode "$1")" = symmetric ] && _fully=--random-fully
	_lab_in "$1" iptables -w -t nat -F POSTROUTING
	_lab_in "$1" iptables -w -t nat -A POSTROUTING -o wan -p udp -j MASQUERADE --to-ports "$_lo-$((_lo + 999))" $_fully
	_lab_in "$1" iptables -w -t nat -A POSTROUTING -o wan -p tcp -j MASQUERADE --to-ports "$_lo-$((_lo + 999))" $_fully
	_lab_in "$1" iptables -w -t nat -A POSTROUTING -o wan -j MASQUERADE $_fully
	lab_flush "$1"
}

_lab_nm_up() { _lab_in inet ip link show nm0 up 2>/dev/null | grep -q UP; }

lab_netem() {
	[ -x "$LAB_NETEM" ] || { _lab_err "no $LAB_NETEM (make tests)"; return 1; }
	case ${1:-} in
	[0-9]*)
		[ $# -ge 3 ] || { _lab_err "usage: lab_netem DELAY_MS JITTER_MS LOSS_PCT [REORDER_PCT [DUP_PCT [RATE_KBIT [LIMIT]]]]"; return 1; }
		_o="delay $1ms $2ms"
		[ "$3" != 0 ] && _o="$_o loss $3%"
		[ "${4:-0}" != 0 ] && _o="$_o reorder $4%"
		[ "${5:-0}" != 0 ] && _o="$_o duplicate $5%"
		[ "${6:-0}" != 0 ] && _o="$_o rate ${6}kbit"
		[ -n "${7:-}" ] && _o="$_o limit $7"
		set -- $_o ;;
	'') _lab_err "usage: lab_netem NETEM-OPTIONS..."; return 1 ;;
	esac
	_lab_inet || return 1
	lab_netem_off
	ip netns exec "$LAB-inet" "$LAB_NETEM" -i nm0 -s "${LAB_SEED:-1}" limit 20000 "$@" \
		2>"$LAB_NETEM_LOG" &
	_lab_netem_pid=$!
	_lab_poll 5 _lab_nm_up || { _lab_err "tool_netem did not start: $(cat "$LAB_NETEM_LOG")"; return 1; }
	_lab_in inet ip route add default dev nm0 table 100 &&
	_lab_in inet ip rule add pref 100 not iif nm0 lookup 100
}

lab_netem_off() {
	[ -n "$_lab_netem_pid" ] || return 0
	_lab_in inet ip rule del pref 100 2>/dev/null
	kill "$_lab_netem_pid" 2>/dev/null
	wait "$_lab_netem_pid" 2>/dev/null
	_lab_netem_pid=
}

_lab_mt_up() { _lab_in inet ip link show mt0 up 2>/dev/null | grep -q UP; }
# _lab_exited PID: PID is gone or a zombie (as lib.sh's exited).
_lab_exited() {
	[ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

lab_mitm() {
	[ -x "$LAB_MITM" ] || { _lab_err "no $LAB_MITM (make tests)"; return 1; }
	[ -z "$_lab_netem_pid" ] || { _lab_err "lab_mitm: tool_netem holds table 100"; return 1; }
	_lab_inet || return 1
	lab_mitm_off || return 1
	ip netns exec "$LAB-inet" "$LAB_MITM" -i mt0 "$@" 2>"$LAB_MITM_LOG" &
	_lab_mitm_pid=$!
	_lab_poll 5 _lab_mt_up || { _lab_err "tool_mitm did not start: $(cat "$LAB_MITM_LOG")"; return 1; }
	_lab_in inet ip route add default dev mt0 table 100 &&
	_lab_in inet ip rule add pref 100 not iif mt0 lookup 100 ||
	    { _lab_err "cannot route through mt0"; return 1; }
}

# lab_mitm_off: the rule and the route go first (the route would go with
# mt0 when tool_mitm exits, but a mitm started next must find table 100
# empty whatever the kernel does), then tool_mitm; non-zero unless it
# exited 0 on SIGTERM within 5 s.
lab_mitm_off() {
	[ -n "$_lab_mitm_pid" ] || return 0
	_p=$_lab_mitm_pid
	_lab_mitm_pid=
	_lab_in inet ip rule del pref 100 2>/dev/null
	_lab_in inet ip route del default dev mt0 table 100 2>/dev/null
	kill -TERM "$_p" 2>/dev/null
	_lab_poll 5 _lab_exited "$_p" ||
	    { kill -9 "$_p" 2>/dev/null; _lab_err "tool_mitm ignored SIGTERM"; return 1; }
	wait "$_p"
	_rc=$?
	[ $_rc -eq 0 ] || { _lab_err "tool_mitm exited $_rc: $(tail -3 "$LAB_MITM_LOG")"; return 1; }
}

lab_loss() {
	_lab_inet || return 1
	lab_loss_off
	_lab_loss=$(awk -v p="$1" 'BEGIN { printf "%.6f", p / 100 }')
	_lab_in inet iptables -w -I FORWARD ! -o nm0 -m statistic --mode random --probability "$_lab_loss" -j DROP
}

lab_loss_off() {
	[ -n "$_lab_loss" ] || return 0
	_lab_in inet iptables -w -D FORWARD ! -o nm0 -m statistic --mode random --probability "$_lab_loss" -j DROP
	_lab_loss=
}

# Our namespaces: every name with our prefix.
_lab_list() { ip netns list 2>/dev/null | awk -v p="$LAB-" 'index($1, p) == 1 { print $1 }'; }
_lab_no_pids() { [ -z "$(for _s in $(_lab_list); do ip netns pids "$_s"; done)" ]; }

lab_cleanup() {
	_lab_netem_pid= _lab_mitm_pid=
	for _sig in TERM KILL; do
		for _s in $(_lab_list); do
			for _p in $(ip netns pids "$_s" 2>/dev/null); do
				kill -s "$_sig" "$_p" 2>/dev/null
			done
		done
		_lab_poll 2 _lab_no_pids && break
	done
	for _s in $(_lab_list); do
		ip netns del "$_s" 2>/dev/null
	done
	case $LAB_DIR in "${T:-/nonexistent}"/lab) ;; *) rm -rf "$LAB_DIR" ;; esac
}

if command -v at_exit >/dev/null 2>&1; then
	at_exit lab_cleanup
else
	trap lab_cleanup EXIT
	trap 'exit 1' INT TERM
fi
