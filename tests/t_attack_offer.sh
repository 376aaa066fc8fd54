#!/bin/sh
# A forged offer that turns a listener's probes on others (root; tests/
# natlab.sh).  Nothing in an offer is authenticated before message 3,
# which comes over the path, so anyone who can write the rendezvous
# chooses the addresses listed in it.  tests/attack_offer.py lists 32:
# loopback (IPv4, IPv6, and IPv4 inside IPv6), both of the listener's own
# addresses, multicast, broadcast, then 23 host, one server-reflexive and
# one relayed candidate in 192.0.2.0/24 (which the lab's core does not
# route; iptables in the listener's namespace counts what goes to each
# address).
# The listener (-w 5) must:
#   - send nothing to loopback, to its own addresses, to multicast or
#     broadcast;
#   - probe at most 16 of the addresses, the server-reflexive and the
#     relayed one among them;
#   - send at most a first round of 3 for each and then one every 50 ms
#     (ICE's Ta): 48 + 20 a second for the -w 5 s it waits, plus a second;
#   - then give up on that caller and serve a real one.
. "$(dirname "$0")/lib.sh"
need_root
for c in ip iptables ip6tables awk python3; do
	command -v $c >/dev/null 2>&1 || skip "no $c"
done
. "$SRCDIR/tests/natlab.sh"
export P2PCAT_SIGNAL="dir:$T/rv"
HOST=$(uname -n)
W=5

lab_public l
lab_public c
IPL=$(lab_ip l) IPL2=$(lab_ip2 l)
# count DEST: an iptables (or ip6tables, for an IPv6 DEST) rule in l's
# OUTPUT that counts UDP to DEST.
count() {
	case $1 in *:*) _t=ip6tables ;; *) _t=iptables ;; esac
	lab_run l $_t -w -A OUTPUT -p udp -d "$1" || fail "$_t in l"
}
# sent DEST: the UDP datagrams counted to DEST.
sent() {
	case $1 in *:*) _t=ip6tables ;; *) _t=iptables ;; esac
	lab_run l $_t -w -nvxL OUTPUT | awk -v d="$1" '$8 == d || $7 == d { print $1; exit }'
}
LOCAL="127.0.0.0/8 $IPL $IPL2 224.0.0.0/4 255.255.255.255 ::1"
TESTNET=
for i in $(seq 1 23) 100 200; do TESTNET="$TESTNET 192.0.2.$i"; done
for d in $LOCAL $TESTNET; do count "$d"; done

set -- "127.0.0.1:7" "[::1]:7" "[::ffff:127.0.0.2]:7" "$IPL:22" "$IPL2:53" \
	"224.0.0.251:5353" "255.255.255.255:9"
for i in $(seq 1 23); do set -- "$@" "192.0.2.$i:9"; done
set -- "$@" "192.0.2.100:9/srflx" "192.0.2.200:9/relay"
check_eq "candidates in the forged offer" $# 32
python3 "$SRCDIR/tests/attack_offer.py" "$T/blob" "$@" || fail "attack_offer.py"

lab_bg l env XDG_CONFIG_HOME="$T/l" "$P2PCAT" -v -w $W -k -l bob < /dev/null \
	> "$T/l.out" 2> "$T/l.err"; lp=$LAB_PID
wait_for 10 grep -q "listening as" "$T/l.err" || fail "listener: $(cat "$T/l.err")"
# The offer file as signal.c writes one, from a live pid of this host.
id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$T/rv/inbox/bob/offers"
{
	printf 'p2pcat-sig 1\nexpire %s\npid %s\nhost %s\n\n' \
		"$(( $(date +%s) * 1000 + 60000 ))" $$ "$HOST"
	cat "$T/blob"
} > "$T/rv/inbox/bob/offers/.plant"
mv "$T/rv/inbox/bob/offers/.plant" "$T/rv/inbox/bob/offers/$id"
wait_for $((W + 10)) grep -q "the caller of offer $id did not connect" "$T/l.err" ||
	fail "the listener did not give up on the forged offer: $(cat "$T/l.err")"
exited $lp && fail "the listener exited: $(cat "$T/l.err")"

for d in $LOCAL; do
	check_eq "datagrams to $d ($(cat "$T/l.err"))" "$(sent "$d")" 0
done
total=0 dests=0
for d in $TESTNET; do
	n=$(sent "$d")
	total=$((total + n))
	[ "$n" -gt 0 ] && dests=$((dests + 1))
done
echo "the listener sent $total KNOCKs to $dests addresses of the 32 listed," \
	"srflx $(sent 192.0.2.100), relay $(sent 192.0.2.200)"
[ $dests -le 16 ] || fail "probed $dests addresses, more than 16"
[ "$(sent 192.0.2.100)" -gt 0 ] || fail "the server-reflexive candidate was not probed"
[ "$(sent 192.0.2.200)" -gt 0 ] || fail "the relayed candidate was not probed"
max=$((3 * 16 + 20 * (W + 1)))
[ $total -le $max ] || fail "sent $total KNOCKs in $W s, more than $max"
grep -q "not probing the caller's candidate 127.0.0.1:7" "$T/l.err" ||
	fail "no word about loopback: $(cat "$T/l.err")"

echo "== a real caller after it"
echo "from c $id" > "$T/c.msg"
lab_run c env XDG_CONFIG_HOME="$T/c" "$P2PCAT" -v -w 10 bob < "$T/c.msg" \
	> "$T/c.out" 2> "$T/c.err" || fail "caller: $(cat "$T/c.err")"
wait_for 10 grep -qxF "from c $id" "$T/l.out" || fail "the listener did not get it: $(cat "$T/l.err")"
kill -TERM $lp
wait_exit $lp 5 || fail "listener ignored SIGTERM"
check_eq "listener status after SIGTERM" $RC 143
echo "attack_offer: ok"
