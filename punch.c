/*
 * punch.c: candidates, paths and hole punching.
 *
 * Gathering (punch_gather) asks every STUN server for our public address
 * (RFC 8489 Binding, FINGERPRINT checked): two servers that see one port
 * mean an endpoint-independent mapping (a "cone" NAT), two ports a
 * symmetric one.  The same Binding is also sent with TTL 1, 2, ... and
 * the ICMP time-exceeded errors name the routers on the way: the first
 * one with a public address is the hop past our outermost NAT, and
 * that hop count is the TTL of our first punches.  A TURN server, if
 * given, lends us a relayed address (RFC 8656 Allocate with long-term
 * credentials).  STUN, TURN and p2pcat share the one socket, told apart
 * by their first byte (RFC 7983 §7).
 *
 * Every candidate of the peer is then probed at once; each probe that
 * leaves opens our NAT for the answer.  The caller's probes are HELLOs
 * made by the session (they carry the last handshake message, so they
 * are authenticated); the listener's are KNOCKs,
 *
 *	hdr(6) | src conn id(4)
 *
 * which carry nothing to trust: they only open the listener's NAT, and a
 * KNOCK from an address we did not know teaches the caller a
 * peer-reflexive candidate (RFC 8445 §7.3.1.3) to send HELLOs to.
 *
 * The netfilter port clash: the listener learns the caller's address
 * first, so its packets could reach the caller's NAT before the caller
 * has sent anything; a Linux NAT whose router accepts them then gives the
 * caller's own packets another public port, and nothing matches.  So the
 * listener's KNOCKs leave with the low TTL (they open its NATs and die
 * before the caller's), and so do the caller's first HELLOs; later
 * probes have the full TTL.
 *
 * A symmetric NAT facing a cone one: birthday-paradox probing.  The
 * symmetric side opens BDAY_SOCKS more sockets, each sending low-TTL
 * probes to the peer's public address (each gets its own public port,
 * and none reaches the peer's NAT), while the cone side sprays probes at
 * random ports of the symmetric side's public address; each has a
 * BDAY_SOCKS / 64512 chance to hit a mapping.  punch_fd is then an epoll
 * fd over every socket, until a path is chosen.  A side learns that the
 * peer's NAT is symmetric from its candidates: two server-reflexive
 * ports on one address.
 *
 * The peer's relayed candidate is probed only after RELAY_DELAY_US (at
 * once when both sides are behind symmetric NATs, after BDAY_RELAY_US
 * when one is), so a direct path wins when there is one.  Our own
 * relayed address needs no probing: the peer's probes reach us through
 * it, once we have installed a permission for each of the peer's
 * addresses.
 *
 * The first path is the first one over which the session authenticated
 * a packet.  Later, the peer's packets may come from elsewhere: its NAT
 * gave it another port, or it moved to a relay, or an attacker who sees
 * them sent a copy from another address that arrived first (RFC 9000
 * §9.3.2, §9.3.3; the original is then a duplicate).  Such a packet
 * proves only that it was made by the peer, not that the peer is there,
 * so the path does not move yet: a PATH_CHALLENGE goes to the new
 * address, no more than three times the bytes that came from it (RFC
 * 9000 §8.1), and the path moves there when its PATH_RESPONSE comes
 * back, one round trip later.  Meanwhile everything else still goes
 * the old way (the old path stays usable, as §9.3.2 asks of a failed
 * validation).  A relayed packet does not even start a check while the
 * direct path worked a moment ago.  A direct path that stays silent
 * while we send (the peer's NAT filters our new port) is left for the
 * peer's relayed candidate after FAILOVER_US.
 */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "punch.h"
#include "stun.h"
#include "turnchan.h"
#include "util.h"
#include "wire.h"

#define KNOCK_LEN	(WIRE_HDR + 4)
#define PROBE_FAST	10		/* probes sent at the fast interval */
#define PROBE_FAST_US	50000		/* first probes: quick on a LAN */
#define PROBE_SLOW_US	250000		/* then: enough to keep NATs open */
#define PROBE_MAX	(WIRE_MAX_PKT)
#define SOCK_BUF	(4 << 20)	/* room for a window of packets */
/* Batched receiving: recvmmsg(2) into RX_SLOTS buffers, each large enough
 * for what UDP GRO coalesces by default (segments of one flow, at most
 * 64 KB; a larger gro_max_size loses what does not fit a slot). */
#define RX_SLOTS	8
#define RX_SLOT		65536
#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif
#ifndef UDP_GRO
#define UDP_GRO		104
#endif

/* Gathering: STUN answers within this, TURN's two round trips a bit more. */
#define GATHER_STUN_US	1500000
#define GATHER_TURN_US	2500000
/* The TTL probes: hops 1..TTL_MAX.  Routers nearer than the STUN server
 * answer before it does, so ICMP errors still missing once the Bindings
 * are answered are waited for only this long (routers rate-limit them:
 * Linux sends about one a second to a host, after a burst of 6). */
#define TTL_MAX		8
#define TTL_WAIT_US	30000
/* Hops still unknown are probed again this often, this many times in
 * all: a busy host may have spent its ICMP budget (Linux: 1000 a second
 * for all its namespaces, in bursts of 50). */
#define TTL_ROUNDS	3
#define TTL_ROUND_US	20000
/* Without a measurement (no STUN server, no ICMP): one NAT, as at home. */
#define TTL_DEFAULT	2
/* The caller's first HELLOs per pair that use the low TTL; the listener
 * sends LISTENER_LOW low-TTL KNOCKs, then one every LISTENER_LOW_EVERY_US
 * until LISTENER_LOW_US, then full and low ones in turn.  Each low-TTL
 * packet costs the router where it dies an ICMP error, and routers
 * ration those per host: a stream of them would starve our hop count
 * next time. */
#define CALLER_LOW	1
#define LISTENER_LOW	3
#define LISTENER_LOW_EVERY_US	1000000
#define LISTENER_LOW_US	3000000
/* An offer is nobody's word until message 3 arrives, over the path:
 * whoever can write the rendezvous chooses where a listener sends its
 * KNOCKs.  So a listener takes at most OFFER_CANDS of an offer's
 * candidates (RFC 8445 §6.1.2.5 bounds an ICE agent's checks by
 * bounding its candidate pairs, 100 by default; we pair one socket, and
 * a caller has a few addresses): relayed ones first, at most
 * OFFER_RELAY (we use one TURN server), then server-reflexive ones, at
 * most OFFER_SRFLX (one per STUN server and the TURN server's), then
 * host ones.  Its KNOCKs come from a token bucket: a first LISTENER_LOW
 * for every candidate at once, then one every KNOCK_TA_US (ICE paces
 * its checks one per Ta, 50 ms: §14.2), KNOCK_MAX in all (ICE's 100
 * pairs, a check each, a check being a STUN transaction of at most Rc = 7
 * requests, RFC 8489 §6.2.1). */
#define OFFER_CANDS	16
#define OFFER_RELAY	1
#define OFFER_SRFLX	(PUNCH_MAX_STUN + 1)
#define KNOCK_TA_US	50000
#define KNOCK_MAX	700
/* The peer's relayed candidate is probed this long after the start. */
#define RELAY_DELAY_US	1000000
/* Birthday probing: sockets on the symmetric side, each probing every
 * BDAY_REPEAT_US; the cone side sprays SPRAY_BURST random ports every
 * SPRAY_US, at most SPRAY_MAX.  The relay waits BDAY_RELAY_US. */
#define BDAY_SOCKS	256
#define BDAY_REPEAT_US	5000000
#define SPRAY_BURST	16
#define SPRAY_US	10000
#define SPRAY_MAX	8192
/* A process's sprays refill at SPRAY_MAX a minute (struct punch_budget). */
#define SPRAY_REFILL_US	60000000
#define BDAY_RELAY_US	2000000
#define PORT_MIN	1024
/* A relayed packet does not replace a direct path confirmed this recently. */
#define DIRECT_HOLD_US	2000000
/* A direct path on which we have sent for this long without an
 * authenticated answer is dead (a NAT changed its port and the other
 * NAT filters the new one): the session moves to the peer's relay. */
#define FAILOVER_US	3000000
/* On a relay, the direct path that worked before is tried again, after
 * RECHECK_US and then at doubling intervals up to RECHECK_MAX_US: the
 * session sends a PATH_CHALLENGE there (RFC 9000 §8.2; ICE's checks go on
 * after nomination for the same reason, RFC 8445 §8.1), and only the
 * PATH_RESPONSE that comes back (the peer answers the way a challenge
 * came), which proves the path works both ways, moves it back
 * (punch_response).  A packet the peer sent
 * there proves only the way to us. */
#define RECHECK_US	1000000
#define RECHECK_MAX_US	16000000
/* A new address of the peer's is checked with a PATH_CHALLENGE, sent
 * again after CHECK_US and then at doubling intervals, in case one is
 * lost, until CHECK_END_US: RFC 9000 §8.2.4 recommends three PTOs, and
 * a PTO without a measured round trip is about 1 s (RFC 9002 §6.2.2:
 * kInitialRtt 333 ms, and four times half of it).  Until it answers,
 * what goes there is at most CHECK_FACTOR times what came from there
 * (RFC 9000 §8.1's anti-amplification limit). */
#define CHECK_US	250000
#define CHECK_END_US	3000000
#define CHECK_FACTOR	3

/* RFC 8656 §3.7: allocations live 600 s by default; §9: "permissions
 * ... expire after 5 minutes".  Each is refreshed a minute early.
 * Channels (§12) are turnchan.c's. */
#define TURN_LIFETIME_S		600
#define TURN_EARLY_US		60000000ULL
#define TURN_PERM_US		(300000000ULL - TURN_EARLY_US)
#define TURN_MAX_PERM		PUNCH_MAX_CANDS
/* RFC 8489 §9.2.5: 438 Stale Nonce: retry with the new NONCE. */
#define STUN_ERR_UNAUTH		401
#define STUN_ERR_STALE		438

#define MAX_TXN		48

/* The largest datagram we send: one that still fits a 1500-byte link
 * when a TURN server relays it as a Data indication (RFC 8656 §11: 36
 * bytes more, 8 for a FINGERPRINT the server may add, and 28 of IPv4 and
 * UDP; coturn drops 1436-byte ones, relays 1430).  A path may move to a
 * relay at any time, and fragments rarely survive NATs: larger ones
 * count as lost, so the stream's path MTU search (RFC 8899) stops here. */
#define DGRAM_MAX	(1500 - 28 - 36 - 8)
/* Until a channel is bound, such a datagram goes in a Send indication:
 * header, XOR-PEER-ADDRESS (IPv6), DATA. */
_Static_assert(STUN_HEADER_LEN + 4 + 20 + 4 + DGRAM_MAX <= STUN_MSG_MAX,
    "a Send indication holds our largest datagram");

/* How a packet travels: from our socket, through our TURN allocation,
 * or from birthday socket i (VIA_BDAY + i). */
#define VIA_DIRECT	0
#define VIA_RELAY	1
#define VIA_BDAY	2

enum tx_kind { TX_BIND, TX_TTL, TX_ALLOC, TX_REFRESH, TX_PERM, TX_CHAN };

/* A STUN transaction in flight (RFC 8489 §6.2.1 retransmissions). */
struct txn {
	bool live;
	uint8_t kind;			/* enum tx_kind */
	int arg;			/* server, TTL, permission or channel index */
	int attempt;
	uint64_t start, next;
	struct sockaddr_storage to;
	struct stun_msg m;
};

struct pair {
	struct cand c;
	int sock;		/* -1: the main socket, else a birthday socket */
	uint64_t next;		/* when to probe next */
	unsigned sent;
};

struct turn {
	struct sockaddr_storage server;
	char hostport[300];		/* for messages: no credentials */
	char user[256], pass[256], realm[256], nonce[256];
	uint8_t key[STUN_LT_KEY_LEN];
	bool keyed;
	int state;			/* TS_* */
	struct sockaddr_storage relayed, mapped;
	uint64_t refresh;		/* when to refresh the allocation */
	int nperm;
	struct sockaddr_storage perm[TURN_MAX_PERM];	/* ports ignored */
	uint64_t perm_refresh;
	struct tchan_table chans;
};
enum { TS_NONE, TS_ALLOCATING, TS_READY, TS_FAILED };

/* A PATH_CHALLENGE's target (RFC 9000 §8.2.1): the same data goes with
 * every copy, so the answer to any of them will do. */
struct check {
	bool on;
	struct sockaddr_storage to;
	int via;
	uint8_t data[PUNCH_CHALLENGE_LEN];
	uint64_t next, gap, end;	/* next copy, then after gap; give up at end */
	uint64_t in, out;		/* bytes from and to it */
};
enum { CHECK_NONE, CHECK_MOVE, CHECK_BACK };

/* Datagrams read in one batch, handed out one at a time. */
struct rxq {
	uint8_t *buf;			/* RX_SLOTS * RX_SLOT */
	int n, i;			/* messages read, the one being handed out */
	size_t off;			/* how far into message i */
	int sock;			/* where they came from: -1 main, else birthday */
	size_t len[RX_SLOTS], seg[RX_SLOTS];	/* seg: GRO segment size, or 0 */
	struct sockaddr_storage from[RX_SLOTS];
};

struct punch {
	uint64_t first_us;	/* from punch_start to the first path */
	int rx_sock;		/* where punch_recv's datagram came from:
				 * -1 the main socket, else a birthday one */
	struct rxq rx;
	bool gso;		/* UDP_SEGMENT works on this path */
	int fd;
	bool caller;
	int nlocal;
	struct cand local[PUNCH_MAX_CANDS];
	/* STUN */
	int nstun;
	struct sockaddr_storage stun[PUNCH_MAX_STUN];
	char stun_name[PUNCH_MAX_STUN][256];
	bool mapped_ok[PUNCH_MAX_STUN];
	struct sockaddr_storage mapped[PUNCH_MAX_STUN];
	int nat;			/* NAT_* */
	int ttl_answered;		/* lowest TTL a Binding came back for */
	struct sockaddr_storage hop[TTL_MAX + 1];	/* ICMP senders by TTL */
	int low_ttl;
	bool have_turn;
	struct turn turn;
	struct txn tx[MAX_TXN];
	/* punching */
	uint32_t my_cid, peer_cid;
	punch_probe_fn probe;
	void *ctx;
	bool started;
	uint64_t start;
	bool peer_symmetric;
	int n;
	struct pair pairs[PUNCH_MAX_CANDS];
	/* birthday probing */
	int ep;				/* epoll fd over every socket, or -1 */
	int nb;
	int bsock[BDAY_SOCKS];
	uint64_t bday_next;
	int nrdy;			/* sockets epoll said were readable */
	int rdy[64];			/* -1 main, else birthday index */
	struct sockaddr_storage spray_to;
	struct punch_budget *budget;	/* the process's, or NULL */
	int spray_left;
	uint64_t spray_next;
	/* the listener's KNOCKs: the token bucket, the pair served next */
	unsigned knock_tokens, knock_cap, knocks;
	uint64_t knock_at;
	int knock_rr;
	bool spray_spent;		/* the budget ran dry (said once) */
	bool ready;
	struct sockaddr_storage path;
	int path_via;
	uint64_t last_direct;		/* last confirmed direct packet */
	uint64_t unanswered;		/* first send since the last confirm */
	bool have_direct;		/* on a relay, with a direct path to retry: */
	struct sockaddr_storage direct;
	int direct_via;
	uint64_t recheck;		/* when to send there next */
	uint64_t recheck_us;		/* and how long after that */
	struct check move;		/* the peer's new address, being checked */
	struct check back;		/* the direct path, being rechecked */
	int probing;			/* CHECK_*: where punch_probe sends */
	/* punch_path_id: the network path's, and the one left last, to
	 * know it again. */
	unsigned path_id, path_ids;
	bool have_left;
	struct sockaddr_storage left;
	int left_via;
	unsigned left_id;
	char why[96];
};
enum { NAT_UNKNOWN, NAT_NONE, NAT_CONE, NAT_SYMMETRIC };

/* The socket's family: IPv4 addresses go out v4-mapped on an IPv6 socket. */
static int sock_af = AF_INET;

static int
make_socket(int port)
{
	struct sockaddr_storage ss;
	int fd, off = 0, one = 1, buf = SOCK_BUF;
	int v4 = IP_PMTUDISC_PROBE, v6 = IPV6_PMTUDISC_PROBE;
	socklen_t len;

	memset(&ss, 0, sizeof ss);
	if ((fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) != -1 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_any;
		len = sizeof *s6;
		sock_af = AF_INET6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		if (fd != -1)
			close(fd);
		if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
			log_errno("socket");
			return -1;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof *s4;
		sock_af = AF_INET;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		log_errno("cannot bind UDP port %d", port);
		close(fd);
		return -1;
	}
	/* Best effort: a larger buffer rides out bursts at high rates. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	/* Don't fragment, and ignore what the kernel thinks the path MTU is:
	 * the stream finds it by probing (RFC 8899), which needs DF set. */
	setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v4, sizeof v4);
	if (sock_af == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v6, sizeof v6);
	/* Let the kernel hand over runs of datagrams at once (Linux 5.0);
	 * punch_recv splits them. */
	setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
	return fd;
}

/* Unwrap a v4-mapped IPv6 address into plain AF_INET. */
static void
normalize(struct sockaddr_storage *a)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;
	struct sockaddr_in s4;

	if (a->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(a, 0, sizeof *a);
	memcpy(a, &s4, sizeof s4);
}

/* Read a batch of datagrams from socket sock (-1: the main one) into
 * the queue: how many, or -1 with errno (EAGAIN: none waiting). */
static int
rx_fill(struct punch *p, int sock)
{
	struct rxq *q = &p->rx;
	struct mmsghdr mm[RX_SLOTS];
	struct iovec iov[RX_SLOTS];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl[RX_SLOTS];
	struct cmsghdr *cm;
	int i, n;

	memset(mm, 0, sizeof mm);
	for (i = 0; i < RX_SLOTS; i++) {
		iov[i].iov_base = q->buf + (size_t)i * RX_SLOT;
		iov[i].iov_len = RX_SLOT;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &q->from[i];
		mm[i].msg_hdr.msg_namelen = sizeof q->from[i];
		mm[i].msg_hdr.msg_control = ctl[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
	}
	q->n = q->i = 0;
	q->off = 0;
	if ((n = recvmmsg(sock == -1 ? p->fd : p->bsock[sock], mm, RX_SLOTS, 0, NULL)) <= 0)
		return n == 0 ? (errno = EAGAIN, -1) : -1;
	for (i = 0; i < n; i++) {
		q->len[i] = mm[i].msg_len;
		q->seg[i] = 0;
		for (cm = CMSG_FIRSTHDR(&mm[i].msg_hdr); cm; cm = CMSG_NXTHDR(&mm[i].msg_hdr, cm)) {
			int seg;

			if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO ||
			    cm->cmsg_len < CMSG_LEN(sizeof seg))
				continue;
			memcpy(&seg, CMSG_DATA(cm), sizeof seg);
			if (seg > 0)
				q->seg[i] = seg;
		}
		/* Truncated: a datagram larger than UDP carries is not ours;
		 * of a coalesced run, the whole segments that fit are kept. */
		if (mm[i].msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
			q->len[i] = q->seg[i] && !(mm[i].msg_hdr.msg_flags & MSG_CTRUNC) ?
			    RX_SLOT - RX_SLOT % q->seg[i] : 0;
		normalize(&q->from[i]);
	}
	q->n = n;
	q->sock = sock;
	return n;
}

/* Are datagrams read but not handed out yet?  poll(2) cannot see them. */
static bool
rx_pending(const struct punch *p)
{
	const struct rxq *q = &p->rx;
	int i;

	for (i = q->i; i < q->n; i++)
		if ((i == q->i ? q->off : 0) < q->len[i])
			return true;
	return false;
}

/* The next datagram in the queue, or 0 when it is empty. */
static size_t
rx_next(struct punch *p, uint8_t **pkt, struct sockaddr_storage *from)
{
	struct rxq *q = &p->rx;
	size_t k;

	for (; q->i < q->n; q->i++, q->off = 0) {
		if (q->off >= q->len[q->i])
			continue;
		k = q->len[q->i] - q->off;
		if (q->seg[q->i] && k > q->seg[q->i])
			k = q->seg[q->i];
		*pkt = q->buf + (size_t)q->i * RX_SLOT + q->off;
		*from = q->from[q->i];
		q->off += k;
		p->rx_sock = q->sock;
		return k;
	}
	return 0;
}

/* Refill the queue from whichever socket epoll finds readable. */
static int
rx_fill_any(struct punch *p)
{
	struct epoll_event ev[64];
	int i, k;

	for (;;) {
		if (p->nrdy == 0) {
			if ((k = epoll_wait(p->ep, ev, 64, 0)) <= 0) {
				errno = EAGAIN;
				return -1;
			}
			for (i = 0; i < k; i++)
				p->rdy[p->nrdy++] = (int)ev[i].data.u32 - 1;
		}
		if (rx_fill(p, p->rdy[p->nrdy - 1]) > 0)
			return 0;
		if (errno != EINTR)
			p->nrdy--;	/* drained, or an ICMP error: next one */
	}
}

ssize_t
punch_recv(struct punch *p, uint8_t **pkt, struct sockaddr_storage *from)
{
	int fd, i, sock = -1;
	bool filled = false;
	size_t n;

	p->rx_sock = -1;
	for (;; filled = true) {
		if ((n = rx_next(p, pkt, from)) > 0)
			return n;
		/* A batch of nothing but empty or truncated datagrams: a flood
		 * of them must not keep the caller here (EAGAIN; poll says
		 * when there is more). */
		if (filled) {
			errno = EAGAIN;
			return -1;
		}
		fd = punch_fd(p);
		if (p->ep != -1 && fd == p->ep) {
			if (rx_fill_any(p) == -1)
				return -1;
			continue;
		}
		for (i = 0; i < p->nb; i++)
			if (p->bsock[i] == fd)
				sock = i;
		if (rx_fill(p, sock) == -1)
			return -1;
	}
}

/* The destination as the socket wants it: v4-mapped on an IPv6 socket;
 * its length, or 0 (an IPv6 address and an IPv4 socket). */
static socklen_t
sock_addr(const struct sockaddr_storage *to, struct sockaddr_storage *out)
{
	if (to->ss_family == AF_INET && sock_af == AF_INET6) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)to;
		struct sockaddr_in6 *m = (struct sockaddr_in6 *)out;

		memset(out, 0, sizeof *out);
		m->sin6_family = AF_INET6;
		m->sin6_port = s4->sin_port;
		m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&m->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		return sizeof *m;
	}
	if (to->ss_family == AF_INET6 && sock_af == AF_INET)
		return 0;
	*out = *to;
	return to->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
}

static ssize_t
send_to(int fd, const void *buf, size_t len, const struct sockaddr_storage *to)
{
	struct sockaddr_storage a;
	socklen_t alen = sock_addr(to, &a);

	if (alen == 0) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	return sendto(fd, buf, len, 0, (struct sockaddr *)&a, alen);
}

bool
punch_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

const char *
punch_addrstr(const struct sockaddr_storage *a, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)a;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		snprintf(buf, size, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)a;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		snprintf(buf, size, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, size, "?");
	}
	return buf;
}

static int
add_unique(struct cand *c, int n, int max, const struct cand *x)
{
	int i;

	if (n >= max)
		return n;
	for (i = 0; i < n; i++)
		if (punch_same_addr(&c[i].addr, &x->addr))
			return n;
	c[n] = *x;
	return n + 1;
}

static int
gather_host(int fd, struct cand *c, int max)
{
	struct sockaddr_storage me;
	struct ifaddrs *ifa, *i;
	socklen_t len = sizeof me;
	in_port_t port;
	int n = 0, pass;

	if (getsockname(fd, (struct sockaddr *)&me, &len) == -1) {
		log_errno("getsockname");
		return 0;
	}
	port = me.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&me)->sin6_port :
	    ((struct sockaddr_in *)&me)->sin_port;
	if (getifaddrs(&ifa) == -1) {
		log_errno("getifaddrs");
		return 0;
	}
	/* Loopback last: it only reaches a peer on this very host. */
	for (pass = 0; pass < 2; pass++) {
		for (i = ifa; i; i = i->ifa_next) {
			struct cand x;

			if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP) ||
			    !!(i->ifa_flags & IFF_LOOPBACK) != pass)
				continue;
			memset(&x, 0, sizeof x);
			x.type = CAND_HOST;
			if (i->ifa_addr->sa_family == AF_INET) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)&x.addr;

				memcpy(s4, i->ifa_addr, sizeof *s4);
				s4->sin_port = port;
			} else if (i->ifa_addr->sa_family == AF_INET6 && sock_af == AF_INET6) {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&x.addr;

				memcpy(s6, i->ifa_addr, sizeof *s6);
				/* Link-local needs a scope the peer cannot know. */
				if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
					continue;
				s6->sin6_port = port;
				s6->sin6_scope_id = 0;
				s6->sin6_flowinfo = 0;
			} else {
				continue;
			}
			n = add_unique(c, n, max, &x);
		}
	}
	freeifaddrs(ifa);
	return n;
}

static bool
same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* Private, shared (CGNAT), link-local or loopback: not the internet. */
static bool
is_private(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET) {
		uint32_t x = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);

		return (x >> 24) == 10 || (x >> 20) == (172 << 4 | 1) ||
		    (x >> 16) == (192 << 8 | 168) || (x >> 22) == (100 << 2 | 1) ||
		    (x >> 16) == (169 << 8 | 254) || (x >> 24) == 127;
	}
	if (a->ss_family == AF_INET6) {
		const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;

		return IN6_IS_ADDR_LINKLOCAL(x) || IN6_IS_ADDR_LOOPBACK(x) ||
		    (x->s6_addr[0] & 0xfe) == 0xfc;
	}
	return true;
}

/* Set the TTL (or hop limit) for packets to family af; -1: the default. */
static void
set_ttl(int fd, int af, int ttl)
{
	if (af == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
	else
		setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
}

/* "host:port", "[v6addr]:port", or "host" for defport, into host and
 * port: 0, or -1 after printing why (what names it). */
static int
split_hostport(const char *what, const char *hostport, int defport,
    char host[256], char port[8])
{
	const char *colon, *h = hostport;
	size_t hl;
	char *end;
	long v;

	if (*h == '[' && (colon = strchr(h, ']')) != NULL) {
		hl = colon - h - 1;
		h++;
		if (colon[1] != ':' && colon[1] != '\0')
			hl = 0;
		colon = colon[1] == ':' ? colon + 1 : NULL;
	} else {
		colon = strrchr(h, ':');
		hl = colon ? (size_t)(colon - h) : strlen(h);
		/* An IPv6 address wants brackets, for its port. */
		if (colon && memchr(h, ':', hl) != NULL)
			hl = 0;
	}
	if (hl == 0 || hl >= 256) {
		log_err("bad %s `%s': want HOST:PORT, or [IPV6]:PORT", what, hostport);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (colon == NULL) {
		snprintf(port, 8, "%d", defport);
		return 0;
	}
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno || v < 1 || v > 65535) {
		log_err("bad %s `%s': want a port from 1 to 65535", what, hostport);
		return -1;
	}
	snprintf(port, 8, "%ld", v);
	return 0;
}

/* "host:port" into an address of family af (AF_UNSPEC: any; IPv4
 * first: NATs are an IPv4 affair): 0; 1 when the resolver could not
 * be reached (EAI_AGAIN); -1 otherwise; said why, either way. */
static int
resolve_af(const char *what, const char *hostport, int defport, int af,
    struct sockaddr_storage *out)
{
	char host[256], port[8];
	struct addrinfo hints, *res, *ai;
	int e;

	if (split_hostport(what, hostport, defport, host, port) == -1)
		return -1;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	hints.ai_family = af;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_err("cannot resolve %s `%s': %s", what, hostport, gai_strerror(e));
		return e == EAI_AGAIN ? 1 : -1;
	}
	for (ai = res; ai && ai->ai_family != AF_INET; ai = ai->ai_next)
		;
	if (ai == NULL)
		ai = res;
	memset(out, 0, sizeof *out);
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* "host:port" into an address of a family our socket can reach; 0 or -1
 * after printing why. */
static int
resolve(const char *what, const char *hostport, int defport, struct sockaddr_storage *out)
{
	return resolve_af(what, hostport, defport, sock_af == AF_INET6 ? AF_UNSPEC : AF_INET,
	    out) == 0 ? 0 : -1;
}

/* "turn://user:pass@host:port" into t's credentials and hostport: 0 or
 * -1 after printing why (never the credentials). */
static int
split_turn(struct turn *t, const char *url)
{
	const char *r = url, *at, *colon;

	if (strncmp(r, "turn://", 7) == 0)
		r += 7;
	else if (strncmp(r, "turn:", 5) == 0)
		r += 5;
	if ((at = strrchr(r, '@')) == NULL || (colon = memchr(r, ':', at - r)) == NULL ||
	    (size_t)(colon - r) >= sizeof t->user ||
	    (size_t)(at - colon - 1) >= sizeof t->pass || colon == r ||
	    strlen(at + 1) >= sizeof t->hostport) {
		log_err("bad TURN URL (want turn://USER:PASS@HOST:PORT)");
		return -1;
	}
	memcpy(t->user, r, colon - r);
	t->user[colon - r] = '\0';
	memcpy(t->pass, colon + 1, at - colon - 1);
	t->pass[at - colon - 1] = '\0';
	snprintf(t->hostport, sizeof t->hostport, "%s", at + 1);
	return 0;
}

/* The TURN server of url: 0 or -1 after printing why. */
static int
parse_turn(struct turn *t, const char *url)
{
	if (split_turn(t, url) == -1)
		return -1;
	return resolve("TURN server", t->hostport, 3478, &t->server);
}

int
punch_check_server(const char *spec, bool turn, bool lookup)
{
	struct sockaddr_storage ss;
	char host[256], port[8];
	struct turn *t;
	int ret = -1;

	if (!turn) {
		if (!lookup)
			return split_hostport("STUN server", spec, 3478, host, port);
		return resolve_af("STUN server", spec, 3478, AF_UNSPEC, &ss);
	}
	/* Credentials: wiped, whatever happens. */
	if ((t = calloc(1, sizeof *t)) == NULL) {
		log_errno("calloc");
		return -1;
	}
	if (split_turn(t, spec) == 0)
		ret = lookup ? resolve_af("TURN server", t->hostport, 3478, AF_UNSPEC, &ss) :
		    split_hostport("TURN server", t->hostport, 3478, host, port);
	sodium_memzero(t, sizeof *t);
	free(t);
	return ret;
}

int
punch_port_check(int port)
{
	int fd = make_socket(port);

	if (fd == -1)
		return -1;
	close(fd);
	return 0;
}

struct punch *
punch_new(const struct punch_conf *c)
{
	struct punch *p;
	int i;

	if ((p = calloc(1, sizeof *p)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	p->caller = c->caller;
	p->budget = c->spray;
	p->low_ttl = TTL_DEFAULT;
	p->ep = -1;
	if ((p->rx.buf = malloc((size_t)RX_SLOTS * RX_SLOT)) == NULL) {
		log_errno("malloc");
		free(p);
		return NULL;
	}
	if ((p->fd = make_socket(c->port)) == -1) {
		free(p->rx.buf);
		free(p);
		return NULL;
	}
	/* UDP GSO (Linux 4.18): the option is there to be read. */
	{
		int seg = 0;
		socklen_t sl = sizeof seg;

		p->gso = getsockopt(p->fd, SOL_UDP, UDP_SEGMENT, &seg, &sl) == 0;
	}
	p->nlocal = gather_host(p->fd, p->local, PUNCH_MAX_CANDS);
	for (i = 0; i < c->nstun && p->nstun < PUNCH_MAX_STUN; i++) {
		if (resolve("STUN server", c->stun[i], 3478, &p->stun[p->nstun]) == -1)
			continue;	/* said why; the others may do */
		snprintf(p->stun_name[p->nstun], sizeof p->stun_name[0], "%s", c->stun[i]);
		p->nstun++;
	}
	if (c->turn && parse_turn(&p->turn, c->turn) == 0)
		p->have_turn = true;
	p->rx_sock = -1;
	p->rx.sock = -1;
	return p;
}

/* Close the birthday sockets but keep (the winner), and the epoll fd. */
static void
bday_close(struct punch *p, int keep)
{
	int i, n = 0;

	for (i = 0; i < p->nb; i++) {
		if (i == keep)
			p->bsock[n++] = p->bsock[i];
		else
			close(p->bsock[i]);
	}
	p->nb = n;
	if (p->ep != -1)
		close(p->ep);
	p->ep = -1;
	p->nrdy = 0;
	/* Datagrams still queued: the winner is now socket 0; those of the
	 * sockets gone are dropped, as a full socket buffer would. */
	if (p->rx.sock != -1 && p->rx.sock == keep)
		p->rx.sock = 0;
	else if (p->rx.sock != -1)
		p->rx.n = p->rx.i = 0;
}

void
punch_free(struct punch *p)
{
	if (p == NULL)
		return;
	bday_close(p, -1);
	close(p->fd);
	sodium_memzero(&p->turn, sizeof p->turn);
	free(p->rx.buf);
	free(p);
}

/* --- STUN transactions --- */

static struct txn *
tx_find(struct punch *p, const uint8_t *txid)
{
	int i;

	for (i = 0; i < MAX_TXN; i++)
		if (p->tx[i].live && memcmp(stun_txid(&p->tx[i].m), txid, STUN_TXID_LEN) == 0)
			return &p->tx[i];
	return NULL;
}

/* Send m to `to' as a new transaction; the slot, or NULL when full. */
static struct txn *
tx_start(struct punch *p, uint64_t now, int kind, int arg,
    const struct sockaddr_storage *to, const struct stun_msg *m)
{
	struct txn *t = NULL;
	int i;

	for (i = 0; i < MAX_TXN && !t; i++)
		if (!p->tx[i].live)
			t = &p->tx[i];
	if (t == NULL || m->err)
		return NULL;
	t->live = true;
	t->kind = kind;
	t->arg = arg;
	t->attempt = 0;
	t->start = now;
	t->next = now + stun_retrans_deadline(0, STUN_RTO_US);
	t->to = *to;
	t->m = *m;
	if (kind == TX_TTL) {
		set_ttl(p->fd, to->ss_family, arg);
		t->next = now + GATHER_STUN_US;
	}
	/* With IP_RECVERR on, sendto reports an earlier ICMP error instead
	 * of sending: try again. */
	for (i = 0; i < 4 && send_to(p->fd, m->buf, m->len, to) == -1 &&
	    (errno == EHOSTUNREACH || errno == ENETUNREACH || errno == ECONNREFUSED ||
	    errno == EHOSTDOWN); i++)
		;
	/* Gathering waits for these answers before the offer or answer can
	 * go: a second copy at once means one lost packet costs nothing
	 * instead of an RTO of 500 ms (RFC 8489 §6.2.1).  The duplicate's
	 * answer comes after the transaction ended and is ignored. */
	if (kind == TX_BIND || kind == TX_ALLOC)
		send_to(p->fd, m->buf, m->len, to);
	if (kind == TX_TTL)
		set_ttl(p->fd, to->ss_family, -1);
	return t;
}

static void turn_failed(struct punch *p, const char *why);

/* Retransmit what is due; give up on what has run out of attempts. */
static void
tx_output(struct punch *p, uint64_t now)
{
	int i;

	for (i = 0; i < MAX_TXN; i++) {
		struct txn *t = &p->tx[i];

		if (!t->live || t->next > now)
			continue;
		if (t->kind == TX_TTL || t->attempt >= STUN_RC - 1) {
			t->live = false;
			if (t->kind == TX_ALLOC)
				turn_failed(p, "no answer");
			else if (t->kind == TX_REFRESH)
				log_v(1, "TURN: no answer to Refresh");
			else if (t->kind == TX_CHAN)
				tchan_answer(&p->turn.chans.c[t->arg], false, now);
			continue;
		}
		t->attempt++;
		t->next = t->start + stun_retrans_deadline(t->attempt, STUN_RTO_US);
		send_to(p->fd, t->m.buf, t->m.len, &t->to);
	}
}

static uint64_t
tx_deadline(const struct punch *p)
{
	uint64_t d = UINT64_MAX;
	int i;

	for (i = 0; i < MAX_TXN; i++)
		if (p->tx[i].live && p->tx[i].next < d)
			d = p->tx[i].next;
	return d;
}

static bool
tx_pending(const struct punch *p, int kind)
{
	int i;

	for (i = 0; i < MAX_TXN; i++)
		if (p->tx[i].live && p->tx[i].kind == kind)
			return true;
	return false;
}

/* --- TURN (RFC 8656) --- */

static void
turn_failed(struct punch *p, const char *why)
{
	if (p->turn.state != TS_FAILED)
		log_v(1, "TURN server %s: %s; no relay", p->turn.hostport, why);
	p->turn.state = TS_FAILED;
}

static int
copy_text(const struct stun_view *v, uint16_t attr, char *out, size_t size)
{
	const uint8_t *s;
	size_t len;

	if ((s = stun_get(v, attr, &len)) == NULL || len >= size)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* Build and send a TURN request of kind (with arg) as a new transaction. */
static void
turn_request(struct punch *p, uint64_t now, int kind, int arg)
{
	struct turn *t = &p->turn;
	struct stun_msg m;
	static const uint16_t method[] = {
		[TX_ALLOC] = STUN_ALLOCATE, [TX_REFRESH] = STUN_REFRESH,
		[TX_PERM] = STUN_CREATE_PERMISSION, [TX_CHAN] = STUN_CHANNEL_BIND,
	};

	stun_init(&m, STUN_TYPE(method[kind], STUN_REQUEST), NULL);
	switch (kind) {
	case TX_ALLOC:
		stun_add_u32(&m, STUN_ATTR_REQUESTED_TRANSPORT, STUN_TRANSPORT_UDP);
		stun_add(&m, STUN_ATTR_DONT_FRAGMENT, NULL, 0);
		break;
	case TX_REFRESH:
		stun_add_u32(&m, STUN_ATTR_LIFETIME, TURN_LIFETIME_S);
		break;
	case TX_PERM:
		stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)&t->perm[arg]);
		break;
	case TX_CHAN:
		stun_add_u32(&m, STUN_ATTR_CHANNEL_NUMBER, (uint32_t)t->chans.c[arg].num << 16);
		stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)&t->chans.c[arg].peer);
		break;
	}
	if (t->keyed) {
		stun_add(&m, STUN_ATTR_USERNAME, t->user, strlen(t->user));
		stun_add(&m, STUN_ATTR_REALM, t->realm, strlen(t->realm));
		stun_add(&m, STUN_ATTR_NONCE, t->nonce, strlen(t->nonce));
	}
	if (stun_finish(&m, t->keyed ? t->key : NULL, sizeof t->key, STUN_FINGERPRINT) == -1 ||
	    tx_start(p, now, kind, arg, &t->server, &m) == NULL)
		log_v(1, "TURN: cannot send a request");
}

/* A response to one of our TURN requests. */
static void
turn_response(struct punch *p, uint64_t now, struct txn *x, const struct stun_view *v)
{
	struct turn *t = &p->turn;
	const char *reason = "";
	size_t rlen = 0;
	uint32_t life = TURN_LIFETIME_S;
	char a[64];
	int code = 0;

	x->live = false;
	if (v->cls == STUN_ERROR) {
		stun_get_error(v, &code, &reason, &rlen);
		if ((code == STUN_ERR_UNAUTH && !t->keyed) || code == STUN_ERR_STALE) {
			if (copy_text(v, STUN_ATTR_NONCE, t->nonce, sizeof t->nonce) == -1 ||
			    (code == STUN_ERR_UNAUTH &&
			    copy_text(v, STUN_ATTR_REALM, t->realm, sizeof t->realm) == -1)) {
				turn_failed(p, "401 without REALM or NONCE");
				return;
			}
			if (!t->keyed) {
				if (stun_lt_key(t->key, t->user, t->realm,
				    t->pass) == -1) {
					turn_failed(p, "no MD5 for the long-term "
					    "key (libcrypto refuses it)");
					return;
				}
				t->keyed = true;
			}
			turn_request(p, now, x->kind, x->arg);
			return;
		}
		if (x->kind == TX_ALLOC) {
			char why[160];

			snprintf(why, sizeof why, "error %d %.*s", code, (int)rlen, reason);
			turn_failed(p, why);
		} else {
			if (x->kind == TX_CHAN)
				tchan_answer(&t->chans.c[x->arg], false, now);
			log_v(1, "TURN: request %d refused: %d %.*s", x->kind, code,
			    (int)rlen, reason);
		}
		return;
	}
	/* RFC 8489 §9.2.4: a success to a signed request must be signed. */
	if (!t->keyed || stun_check_integrity(v, t->key, sizeof t->key) == -1) {
		if (x->kind == TX_ALLOC)
			turn_failed(p, "a response without valid MESSAGE-INTEGRITY");
		return;
	}
	stun_get_u32(v, STUN_ATTR_LIFETIME, &life);
	switch (x->kind) {
	case TX_ALLOC:
		if (stun_get_addr(v, STUN_ATTR_XOR_RELAYED_ADDRESS, &t->relayed) == -1) {
			turn_failed(p, "no XOR-RELAYED-ADDRESS");
			return;
		}
		normalize(&t->relayed);
		if (stun_get_addr(v, STUN_ATTR_XOR_MAPPED_ADDRESS, &t->mapped) == 0)
			normalize(&t->mapped);
		t->state = TS_READY;
		t->refresh = now + (life > 120 ? life * 1000000ULL - TURN_EARLY_US :
		    life * 500000ULL);
		log_v(1, "TURN: relayed address %s (lifetime %u s)",
		    punch_addrstr(&t->relayed, a, sizeof a), life);
		break;
	case TX_REFRESH:
		t->refresh = now + (life > 120 ? life * 1000000ULL - TURN_EARLY_US :
		    life * 500000ULL);
		break;
	case TX_CHAN:
		tchan_answer(&t->chans.c[x->arg], true, now);
		log_v(2, "TURN: channel %#x bound to %s", t->chans.c[x->arg].num,
		    punch_addrstr(&t->chans.c[x->arg].peer, a, sizeof a));
		break;
	}
}

/* Install a permission for the IP of addr (RFC 8656 §9), once. */
static void
turn_permit(struct punch *p, uint64_t now, const struct sockaddr_storage *addr)
{
	struct turn *t = &p->turn;
	int i;

	/* coturn refuses loopback peers, and one refusal fails a request. */
	if (t->state != TS_READY || addr->ss_family != t->relayed.ss_family ||
	    (addr->ss_family == AF_INET &&
	    ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24 == 127))
		return;
	for (i = 0; i < t->nperm; i++)
		if (same_ip(&t->perm[i], addr))
			return;
	if (t->nperm == TURN_MAX_PERM)
		return;
	t->perm[t->nperm] = *addr;
	turn_request(p, now, TX_PERM, t->nperm++);
	t->perm_refresh = now + TURN_PERM_US;
}

/* Datagrams go to peer through our relay often (the path goes there):
 * bind it a channel, unless it has one or none is free. */
static void
turn_channel(struct punch *p, uint64_t now, const struct sockaddr_storage *peer)
{
	struct turn *t = &p->turn;
	struct tchan *c;

	if (t->state == TS_READY && (c = tchan_want(&t->chans, peer, now)) != NULL)
		turn_request(p, now, TX_CHAN, (int)(c - t->chans.c));
}

/* Keep the allocation, permissions and channels in use alive. */
static void
turn_output(struct punch *p, uint64_t now)
{
	struct turn *t = &p->turn;
	struct tchan *c;
	int i;

	if (t->state != TS_READY)
		return;
	if (now >= t->refresh && !tx_pending(p, TX_REFRESH)) {
		t->refresh = now + TURN_EARLY_US;	/* until the answer */
		turn_request(p, now, TX_REFRESH, 0);
	}
	if (t->nperm && now >= t->perm_refresh) {
		t->perm_refresh = now + TURN_PERM_US;
		for (i = 0; i < t->nperm; i++)
			turn_request(p, now, TX_PERM, i);
	}
	while ((c = tchan_due(&t->chans, now)) != NULL)
		turn_request(p, now, TX_CHAN, (int)(c - t->chans.c));
}

static uint64_t
turn_deadline(const struct punch *p)
{
	const struct turn *t = &p->turn;
	uint64_t d = UINT64_MAX;

	if (t->state != TS_READY)
		return d;
	d = t->refresh;
	if (t->nperm && t->perm_refresh < d)
		d = t->perm_refresh;
	if (tchan_deadline(&t->chans) < d)
		d = tchan_deadline(&t->chans);
	return d;
}

/* Send pkt to peer through our allocation: ChannelData when a channel
 * is bound, else a Send indication.  As sendto(2). */
static ssize_t
turn_send(struct punch *p, uint64_t now, const struct sockaddr_storage *peer,
    const uint8_t *pkt, size_t len)
{
	struct tchan *c = tchan_find(&p->turn.chans, peer, now);
	struct stun_msg m;

	if (c) {
		uint8_t frame[WIRE_MAX_PKT + 8];
		ssize_t n = stun_channel_frame(frame, sizeof frame, c->num, pkt, len);

		if (n < 0)
			return -1;
		c->used = now;
		return send_to(p->fd, frame, n, &p->turn.server);
	}
	stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
	stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS, (const struct sockaddr *)peer);
	stun_add(&m, STUN_ATTR_DATA, pkt, len);
	if (stun_finish(&m, NULL, 0, 0) == -1) {
		errno = EMSGSIZE;
		return -1;
	}
	return send_to(p->fd, m.buf, m.len, &p->turn.server);
}

/* --- gathering --- */

/* A STUN message arrived (from, buf[0, len)).  If it is a Data
 * indication, its payload is moved to buf[0, *inner) with the peer in
 * *from and 1 returned; else 0. */
static int
stun_input(struct punch *p, uint64_t now, uint8_t *buf, size_t len,
    struct sockaddr_storage *from, size_t *inner)
{
	struct stun_view v;
	struct txn *x;
	const uint8_t *d;
	size_t dlen;

	if (stun_parse(buf, len, &v) == -1)
		return 0;
	/* RFC 8489 §7.3: a FINGERPRINT that does not match: not STUN. */
	if (stun_get(&v, STUN_ATTR_FINGERPRINT, NULL) && stun_check_fingerprint(&v) == -1)
		return 0;
	if (v.cls == STUN_INDICATION && v.method == STUN_DATA && p->have_turn &&
	    punch_same_addr(from, &p->turn.server)) {
		struct sockaddr_storage peer;

		if (stun_get_addr(&v, STUN_ATTR_XOR_PEER_ADDRESS, &peer) == -1 ||
		    (d = stun_get(&v, STUN_ATTR_DATA, &dlen)) == NULL)
			return 0;
		normalize(&peer);
		memmove(buf, d, dlen);
		*inner = dlen;
		*from = peer;
		return 1;
	}
	if ((v.cls != STUN_SUCCESS && v.cls != STUN_ERROR) ||
	    (x = tx_find(p, v.txid)) == NULL || !punch_same_addr(from, &x->to))
		return 0;
	switch (x->kind) {
	case TX_BIND:
	case TX_TTL:
		x->live = false;
		if (v.cls != STUN_SUCCESS)
			return 0;
		if (x->kind == TX_TTL) {
			if (p->ttl_answered == 0 || x->arg < p->ttl_answered)
				p->ttl_answered = x->arg;
			return 0;
		}
		if (stun_get_addr(&v, STUN_ATTR_XOR_MAPPED_ADDRESS, &p->mapped[x->arg]) == 0 ||
		    stun_get_addr(&v, STUN_ATTR_MAPPED_ADDRESS, &p->mapped[x->arg]) == 0) {
			normalize(&p->mapped[x->arg]);
			p->mapped_ok[x->arg] = true;
		}
		return 0;
	default:
		turn_response(p, now, x, &v);
		return 0;
	}
}

/* ICMP errors queued on the socket (IP_RECVERR): time-exceeded answers
 * to our TTL probes tell which router is at which hop. */
static void
read_errqueue(struct punch *p)
{
	uint8_t data[STUN_MSG_MAX], cbuf[512];
	struct sockaddr_storage name;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *c;
	int i;

	for (;;) {
		memset(&mh, 0, sizeof mh);
		iov.iov_base = data;
		iov.iov_len = sizeof data;
		mh.msg_name = &name;
		mh.msg_namelen = sizeof name;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		ssize_t n = recvmsg(p->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);

		if (n < 0)
			return;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			struct sock_extended_err *ee;
			struct sockaddr_storage off;
			struct txn *x;

			if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
			    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
				continue;
			ee = (struct sock_extended_err *)CMSG_DATA(c);
			/* ICMP time exceeded is type 11; ICMPv6's is 3. */
			if (!((ee->ee_origin == SO_EE_ORIGIN_ICMP && ee->ee_type == 11) ||
			    (ee->ee_origin == SO_EE_ORIGIN_ICMP6 && ee->ee_type == 3)))
				continue;
			if (n < STUN_HEADER_LEN || (x = tx_find(p, data + 8)) == NULL ||
			    x->kind != TX_TTL)
				continue;
			memset(&off, 0, sizeof off);
			i = SO_EE_OFFENDER(ee)->sa_family == AF_INET ?
			    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
			memcpy(&off, SO_EE_OFFENDER(ee), i);
			normalize(&off);
			p->hop[x->arg] = off;
			x->live = false;
		}
	}
}

static void
set_recverr(int fd, int on)
{
	setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
	if (sock_af == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
}

/* The low TTL: the first hop with a public address is past our NATs.
 * Routers rate-limit ICMP errors (Linux: about one a second to a host,
 * after a burst of 6), so some hops may be unknown: then one past the
 * last hop known to be private.  It never reaches the STUN server's hop.
 * A host with no NAT has nothing to open: 1.  Behind a NAT, 1 would die
 * on our own router before it maps anything: at least 2. */
static int
find_low_ttl(const struct punch *p)
{
	int h, last = 0;

	if (p->nat == NAT_NONE)
		return 1;
	for (h = 1; h <= TTL_MAX; h++) {
		if (p->hop[h].ss_family && !is_private(&p->hop[h]))
			break;
		if (p->hop[h].ss_family)
			last = h;
	}
	if (h > TTL_MAX)
		h = last + 1;
	if (p->ttl_answered && h >= p->ttl_answered)
		h = p->ttl_answered - 1;
	return h < 2 ? 2 : h;
}

/* Whether the hops past our NATs are known: a public one answered, or
 * every one before the server did. */
static bool
ttl_known(const struct punch *p)
{
	int h;

	for (h = 1; h <= TTL_MAX; h++)
		if (p->hop[h].ss_family && !is_private(&p->hop[h]))
			return true;
	if (p->ttl_answered == 0)
		return false;
	for (h = 1; h < p->ttl_answered; h++)
		if (p->hop[h].ss_family == 0)
			return false;
	return true;
}

static bool
binds_done(const struct punch *p)
{
	return !tx_pending(p, TX_BIND);
}

static void
gather_report(struct punch *p)
{
	char a[64], b[64];
	int i, first = -1, second = -1;

	for (i = 0; i < p->nstun; i++) {
		if (!p->mapped_ok[i]) {
			log_v(1, "STUN server %s did not answer", p->stun_name[i]);
			continue;
		}
		log_v(2, "STUN server %s sees us at %s", p->stun_name[i],
		    punch_addrstr(&p->mapped[i], a, sizeof a));
		if (first == -1)
			first = i;
		else if (second == -1 && !punch_same_addr(&p->stun[i], &p->stun[first]))
			second = i;
	}
	p->nat = NAT_UNKNOWN;
	if (first != -1) {
		for (i = 0; i < p->nlocal; i++)
			if (p->local[i].type == CAND_HOST &&
			    punch_same_addr(&p->local[i].addr, &p->mapped[first]))
				p->nat = NAT_NONE;
	}
	if (p->nat == NAT_NONE)
		log_v(1, "NAT: none (our address is public)");
	else if (second != -1 && punch_same_addr(&p->mapped[first], &p->mapped[second]))
		p->nat = NAT_CONE;
	else if (second != -1)
		p->nat = NAT_SYMMETRIC;
	if (p->nat == NAT_CONE)
		log_v(1, "NAT: endpoint-independent mapping (cone): %s for two servers",
		    punch_addrstr(&p->mapped[first], a, sizeof a));
	else if (p->nat == NAT_SYMMETRIC)
		log_v(1, "NAT: address-dependent mapping (symmetric): %s and %s",
		    punch_addrstr(&p->mapped[first], a, sizeof a),
		    punch_addrstr(&p->mapped[second], b, sizeof b));
	else if (first != -1 && p->nat == NAT_UNKNOWN)
		log_v(1, "NAT: mapping unknown (one STUN server answered); public address %s",
		    punch_addrstr(&p->mapped[first], a, sizeof a));
	p->low_ttl = find_low_ttl(p);
	if (log_verbose >= 2) {
		char hops[TTL_MAX * 24] = "", *e = hops;

		for (i = 1; i <= TTL_MAX && (!p->ttl_answered || i < p->ttl_answered); i++)
			e += snprintf(e, hops + sizeof hops - e, " %d:%s", i,
			    p->hop[i].ss_family ? punch_addrstr(&p->hop[i], a, sizeof a) : "?");
		log_v(2, "NAT: routers on the way (TTL:address):%s; server at TTL %d",
		    hops, p->ttl_answered);
	}
	if (p->nstun)
		log_v(1, "NAT: first punches with TTL %d%s", p->low_ttl,
		    ttl_known(p) ? "" : " (hop count not measured)");
}

int
punch_gather(struct punch *p, uint64_t deadline)
{
	uint64_t now = now_us(), stun_end, turn_end, binds_at = 0, round_at = now;
	int rounds = 0;
	uint8_t *pkt;
	struct stun_msg m;
	int i;

	if (p->nstun == 0 && !p->have_turn)
		return 0;
	stun_end = now + GATHER_STUN_US < deadline ? now + GATHER_STUN_US : deadline;
	turn_end = now + GATHER_TURN_US < deadline ? now + GATHER_TURN_US : deadline;
	set_recverr(p->fd, 1);
	for (i = 0; i < p->nstun; i++) {
		stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
		stun_finish(&m, NULL, 0, STUN_FINGERPRINT);
		tx_start(p, now, TX_BIND, i, &p->stun[i], &m);
	}
	if (p->have_turn) {
		p->turn.state = TS_ALLOCATING;
		turn_request(p, now, TX_ALLOC, 0);
	}
	for (;;) {
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		struct sockaddr_storage from;
		uint64_t t, end;
		ssize_t n;
		size_t inner;

		now = now_us();
		if (rounds < TTL_ROUNDS && now >= round_at && !ttl_known(p)) {
			/* A traceroute to the first server: which hop is past
			 * our NATs (hops not yet heard from). */
			for (i = 1; i <= TTL_MAX && (!p->ttl_answered || i < p->ttl_answered); i++) {
				if (p->hop[i].ss_family)
					continue;
				stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
				stun_finish(&m, NULL, 0, STUN_FINGERPRINT);
				tx_start(p, now, TX_TTL, i, p->nstun ? &p->stun[0] :
				    &p->turn.server, &m);
			}
			rounds++;
			round_at = now + TTL_ROUND_US;
		}
		if (binds_done(p) && binds_at == 0)
			binds_at = now;
		end = p->turn.state == TS_ALLOCATING ? turn_end : stun_end;
		if ((binds_done(p) && (ttl_known(p) || (now >= binds_at + TTL_WAIT_US &&
		    (rounds == TTL_ROUNDS && now >= round_at))) &&
		    p->turn.state != TS_ALLOCATING) || now >= end)
			break;
		tx_output(p, now);
		t = tx_deadline(p);
		if (t > end)
			t = end;
		/* Only times still to come: one gone by while the
		 * allocation is pending would make poll spin. */
		if (binds_at && binds_at + TTL_WAIT_US > now && binds_at + TTL_WAIT_US < t)
			t = binds_at + TTL_WAIT_US;
		if (round_at > now && round_at < t)
			t = round_at;
		poll(&pfd, 1, t > now ? (int)((t - now + 999) / 1000) : 0);
		read_errqueue(p);
		while ((n = punch_recv(p, &pkt, &from)) >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK)) {
			if (n < 0) {
				read_errqueue(p);
				continue;
			}
			if (n > 0 && pkt[0] < 4)
				stun_input(p, now, pkt, n, &from, &inner);
		}
	}
	/* What did not answer by now will not help this session. */
	for (i = 0; i < MAX_TXN; i++)
		if (p->tx[i].kind == TX_BIND || p->tx[i].kind == TX_TTL)
			p->tx[i].live = false;
	if (p->turn.state == TS_ALLOCATING) {
		for (i = 0; i < MAX_TXN; i++)
			if (p->tx[i].kind == TX_ALLOC)
				p->tx[i].live = false;
		turn_failed(p, "no answer in time");
	}
	set_recverr(p->fd, 0);
	read_errqueue(p);
	for (i = 0; i < p->nstun; i++) {
		struct cand c = { .type = CAND_SRFLX, .addr = p->mapped[i] };

		if (p->mapped_ok[i])
			p->nlocal = add_unique(p->local, p->nlocal, PUNCH_MAX_CANDS, &c);
	}
	if (p->turn.state == TS_READY) {
		struct cand c = { .type = CAND_SRFLX, .addr = p->turn.mapped };

		if (c.addr.ss_family)
			p->nlocal = add_unique(p->local, p->nlocal, PUNCH_MAX_CANDS, &c);
		c.type = CAND_RELAY;
		c.addr = p->turn.relayed;
		p->nlocal = add_unique(p->local, p->nlocal, PUNCH_MAX_CANDS, &c);
	}
	gather_report(p);
	return 0;
}

int
punch_fd(const struct punch *p)
{
	if (p->ep != -1)
		return p->ep;
	if (p->ready && p->path_via >= VIA_BDAY && p->nb == 1)
		return p->bsock[0];
	return p->fd;
}

/* The socket a packet for path via leaves from. */
static int
via_fd(const struct punch *p, int via)
{
	if (via < VIA_BDAY)
		return p->fd;
	if (p->ep == -1)
		return p->bsock[0];	/* the winner, once the others are gone */
	return p->bsock[via - VIA_BDAY];
}

int
punch_local(const struct punch *p, struct cand *c, int max)
{
	int n = p->nlocal < max ? p->nlocal : max;

	memcpy(c, p->local, n * sizeof *c);
	return n;
}

static const char *
cand_kind(int type)
{
	return type == CAND_PRFLX ? "peer-reflexive" : type == CAND_SRFLX ?
	    "server-reflexive" : type == CAND_RELAY ? "relayed" : "host";
}

static void
add_pair(struct punch *p, const struct cand *c, int sock, uint64_t next)
{
	char a[64];
	int i;

	if (c->addr.ss_family == AF_INET6 && sock_af != AF_INET6)
		return;
	for (i = 0; i < p->n; i++)
		if (punch_same_addr(&p->pairs[i].c.addr, &c->addr) && p->pairs[i].sock == sock)
			return;
	if (p->n == PUNCH_MAX_CANDS)
		return;
	memset(&p->pairs[p->n], 0, sizeof p->pairs[p->n]);
	p->pairs[p->n].c = *c;
	p->pairs[p->n].sock = sock;
	p->pairs[p->n].next = next;
	p->n++;
	log_v(2, "peer candidate %s (%s)", punch_addrstr(&c->addr, a, sizeof a),
	    cand_kind(c->type));
}

/* Open the birthday sockets (as many as we can, up to BDAY_SOCKS) and
 * the epoll fd over them and the main socket. */
static void
bday_open(struct punch *p, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, ttl = p->low_ttl;

	if ((p->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		log_errno("epoll_create1");
		return;
	}
	ev.data.u32 = 0;
	epoll_ctl(p->ep, EPOLL_CTL_ADD, p->fd, &ev);
	while (p->nb < BDAY_SOCKS && (fd = make_socket(0)) != -1) {
		/* Their probes only open our NAT: low TTL until they hit. */
		setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
		ev.data.u32 = p->nb + 1;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			break;
		}
		p->bsock[p->nb++] = fd;
	}
	p->bday_next = now;
}

/* Whether a is an address to KNOCK at: not one of this host's (nor
 * loopback), not multicast or broadcast, not IPv4 inside IPv6 (which
 * the socket would send to that IPv4 address).  A KNOCK only opens a
 * NAT on the way out, and between two sockets of one host there is
 * none: a caller on this host reaches us with its HELLOs, which we
 * answer the way they came.  So there is no need to tell a caller on
 * this host from one that only claims our addresses. */
static bool
knockable(const struct punch *p, const struct sockaddr_storage *a)
{
	int i;

	if (a->ss_family == AF_INET) {
		uint32_t x = ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr);

		/* 0/8 "this network", 127/8 loopback, 224/4 multicast,
		 * 240/4 reserved and the broadcast address */
		if (x >> 24 == 0 || x >> 24 == 127 || x >> 28 >= 14)
			return false;
	} else {
		const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(x) || IN6_IS_ADDR_UNSPECIFIED(x) ||
		    IN6_IS_ADDR_MULTICAST(x) || IN6_IS_ADDR_V4MAPPED(x) ||
		    IN6_IS_ADDR_V4COMPAT(x))
			return false;
	}
	for (i = 0; i < p->nlocal; i++)
		if (p->local[i].type == CAND_HOST && same_ip(&p->local[i].addr, a))
			return false;
	return true;
}

/* The candidates of an offer that a listener probes, into out: how many.
 * Relayed ones first, then server-reflexive, then host (OFFER_CANDS). */
static int
offer_cands(const struct punch *p, const struct cand *c, int n, struct cand *out)
{
	static const struct { uint8_t type; int max; } take[] = {
		{ CAND_RELAY, OFFER_RELAY }, { CAND_SRFLX, OFFER_SRFLX },
		{ CAND_HOST, OFFER_CANDS },
	};
	char a[64];
	int i, k, m, nout = 0, skipped = 0;

	for (i = 0; i < n; i++)
		if (!knockable(p, &c[i].addr))
			log_v(1, "not probing the caller's candidate %s: this host's, "
			    "loopback, multicast or broadcast",
			    punch_addrstr(&c[i].addr, a, sizeof a));
	for (k = 0; k < (int)(sizeof take / sizeof take[0]); k++)
		for (i = m = 0; i < n; i++) {
			if (c[i].type != take[k].type || !knockable(p, &c[i].addr))
				continue;
			if (m < take[k].max && nout < OFFER_CANDS) {
				out[nout++] = c[i];
				m++;
			} else {
				skipped++;
			}
		}
	if (skipped)
		log_v(1, "not probing %d more of the caller's candidates (at most %d "
		    "relayed, %d server-reflexive, %d in all)", skipped, OFFER_RELAY,
		    OFFER_SRFLX, OFFER_CANDS);
	return nout;
}

void
punch_start(struct punch *p, uint32_t my_cid, uint32_t peer_cid,
    const struct cand *remote, int n, punch_probe_fn fn, void *ctx)
{
	uint64_t now = now_us(), relay_at;
	struct cand take[PUNCH_MAX_CANDS];
	int i, j;

	if (!p->caller) {
		n = offer_cands(p, remote, n < PUNCH_MAX_CANDS ? n : PUNCH_MAX_CANDS, take);
		remote = take;
		p->knock_cap = p->knock_tokens = LISTENER_LOW * (n ? n : 1);
		p->knock_at = now;
	}

	p->my_cid = my_cid;
	p->peer_cid = peer_cid;
	p->probe = fn;
	p->ctx = ctx;
	p->started = true;
	p->start = now;
	/* Two server-reflexive ports on one address: the peer's NAT is
	 * symmetric (it asked two servers). */
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (remote[i].type == CAND_SRFLX && remote[j].type == CAND_SRFLX &&
			    same_ip(&remote[i].addr, &remote[j].addr) &&
			    !punch_same_addr(&remote[i].addr, &remote[j].addr))
				p->peer_symmetric = true;
	relay_at = now + RELAY_DELAY_US;
	if (p->nat == NAT_SYMMETRIC && p->peer_symmetric) {
		log_v(1, "both NATs are symmetric: trying the relay at once");
		relay_at = now;
	} else if (p->nat == NAT_SYMMETRIC) {
		log_v(1, "our NAT is symmetric: birthday probing from %d sockets",
		    BDAY_SOCKS);
		bday_open(p, now);
		relay_at = now + BDAY_RELAY_US;
	} else if (p->peer_symmetric) {
		for (i = 0; i < n && remote[i].type != CAND_SRFLX; i++)
			;
		p->spray_to = remote[i].addr;
		p->spray_left = SPRAY_MAX;
		p->spray_next = now;
		log_v(1, "the peer's NAT is symmetric: birthday probing, up to %d ports",
		    SPRAY_MAX);
		relay_at = now + BDAY_RELAY_US;
	}
	for (i = 0; i < n; i++) {
		add_pair(p, &remote[i], -1, remote[i].type == CAND_RELAY ? relay_at : now);
		turn_permit(p, now, &remote[i].addr);
	}
}

/* Whether (a, via) is the path being checked by c. */
static bool
check_is(const struct check *c, const struct sockaddr_storage *a, int via)
{
	return c->on && c->via == via && punch_same_addr(&c->to, a);
}

/* Which of the peer's candidates addr is: its type, or -1. */
static int
pair_type(const struct punch *p, const struct sockaddr_storage *addr)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (punch_same_addr(&p->pairs[i].c.addr, addr))
			return p->pairs[i].c.type;
	return -1;
}

int
punch_input(struct punch *p, uint64_t now, uint8_t *buf, size_t *len,
    struct sockaddr_storage *from, int *via)
{
	int sock = p->rx_sock;

	p->rx_sock = -1;
	*via = sock == -1 ? VIA_DIRECT : VIA_BDAY + sock;
	if (*len == 0)
		return 0;
	if (sock != -1 && buf[0] != WIRE_MAGIC)
		return 0;	/* STUN and TURN use the main socket */
	if (buf[0] < 4) {
		if (stun_input(p, now, buf, *len, from, len) != 1)
			return 0;
		*via = VIA_RELAY;
	} else if (buf[0] >= 0x40 && buf[0] <= 0x4f) {
		const uint8_t *d;
		struct tchan *c;
		uint16_t ch;
		size_t dlen;

		if (!p->have_turn || !punch_same_addr(from, &p->turn.server) ||
		    stun_channel_parse(buf, *len, &ch, &d, &dlen) == -1 ||
		    (c = tchan_by_num(&p->turn.chans, ch)) == NULL)
			return 0;
		c->used = now;
		memmove(buf, d, dlen);
		*len = dlen;
		*from = c->peer;
		*via = VIA_RELAY;
	}
	if (*len < WIRE_HDR || buf[0] != WIRE_MAGIC || !p->started)
		return 0;
	if (get32(buf + 2) != p->my_cid)
		return 0;
	/* What a new address sent us, for what we may send it. */
	if (check_is(&p->move, from, *via))
		p->move.in += *len;
	if ((buf[1] & 0x7f) != WIRE_KNOCK)
		return 1;
	/* A KNOCK: the listener's NAT is open towards us from there (to
	 * that birthday socket, if it came in on one). */
	if (p->caller && *via != VIA_RELAY && *len == KNOCK_LEN &&
	    get32(buf + WIRE_HDR) == p->peer_cid && !p->ready) {
		struct cand c = { .type = CAND_PRFLX, .addr = *from };
		int before = p->n;

		if (sock != -1) {
			int ttl = -1;

			setsockopt(p->bsock[sock], IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
		}
		add_pair(p, &c, sock, now);
		if (p->n != before)
			punch_output(p, now);
	}
	return 0;
}

/* Whether (addr, via) goes through a TURN relay, ours or the peer's. */
static bool
relayed(const struct punch *p, const struct sockaddr_storage *addr, int via)
{
	return via == VIA_RELAY || pair_type(p, addr) == CAND_RELAY;
}

/* Whether (a, av) and (b, bv) are one network path: another address
 * of the peer's, or through our relay instead of not or back, is
 * another; another port alone is NAT rebinding (RFC 9000 §9.4). */
static bool
same_net(const struct sockaddr_storage *a, int av, const struct sockaddr_storage *b,
    int bv)
{
	return same_ip(a, b) && (av == VIA_RELAY) == (bv == VIA_RELAY);
}

/* The path is about to become (to, via): leaving a direct path for a
 * relay, remember it to try again; back on a direct one, stop.  On
 * another network path, it takes the id of the one left last when it
 * is that one again, else a new one (punch_path_id). */
static void
path_change(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via)
{
	char a[64];

	if (p->ready && !same_net(to, via, &p->path, p->path_via)) {
		unsigned id = p->have_left && same_net(to, via, &p->left, p->left_via) ?
		    p->left_id : ++p->path_ids;

		p->have_left = true;
		p->left = p->path;
		p->left_via = p->path_via;
		p->left_id = p->path_id;
		p->path_id = id;
	}

	if (!relayed(p, to, via)) {
		if (p->have_direct && p->ready && relayed(p, &p->path, p->path_via))
			log_v(1, "back on a direct path, to %s",
			    punch_addrstr(to, a, sizeof a));
		p->have_direct = false;
	} else if (p->ready && !relayed(p, &p->path, p->path_via)) {
		p->have_direct = true;
		p->direct = p->path;
		p->direct_via = p->path_via;
		p->recheck_us = RECHECK_US;
		p->recheck = now + p->recheck_us;
	}
}

/* The path becomes (to, via). */
static void
path_set(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via)
{
	char a[64];

	log_v(1, "%s %s%s", p->ready ? "peer moved to" : "path to the peer:",
	    punch_addrstr(to, a, sizeof a),
	    via == VIA_RELAY ? " (through our TURN relay)" : "");
	if (via >= VIA_BDAY) {
		int ttl = -1;	/* the winner carries the session now */

		setsockopt(via_fd(p, via), IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
	}
	path_change(p, now, to, via);
	p->path = *to;
	p->path_via = via;
	p->ready = true;
	/* RFC 9000 §9.3: checks of other addresses may end. */
	p->move.on = false;
	if (via == VIA_RELAY)
		turn_channel(p, now, to);
}

/* Check (to, via), which sent us len bytes, before taking it as the
 * path (RFC 9000 §8.2): punch_challenge sends there. */
static void
check_start(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via,
    size_t len)
{
	char a[64];
	/* Said once for an address checked again and again. */
	bool again = p->move.via == via && punch_same_addr(&p->move.to, to);

	memset(&p->move, 0, sizeof p->move);
	p->move.on = true;
	p->move.to = *to;
	p->move.via = via;
	p->move.in = len;
	p->move.next = now;
	p->move.gap = CHECK_US;
	p->move.end = now + CHECK_END_US;
	randombytes_buf(p->move.data, sizeof p->move.data);
	log_v(again ? 2 : 1, "the peer's packets %s %s%s: checking that it is there",
	    p->ready ? "now come from" : "come from", punch_addrstr(to, a, sizeof a),
	    via == VIA_RELAY ? " (through our TURN relay)" : "");
}

/* The first path: (to, via), and why, for -v. */
static void
first_path(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via)
{
	uint64_t ms = (now - p->start) / 1000;
	int type = pair_type(p, to);

	if (via == VIA_RELAY)
		snprintf(p->why, sizeof p->why, "the peer reached our TURN relay after %llu ms",
		    (unsigned long long)ms);
	else if (type == CAND_RELAY)
		snprintf(p->why, sizeof p->why, "the peer's TURN relay answered after %llu ms",
		    (unsigned long long)ms);
	else if (via >= VIA_BDAY || p->spray_to.ss_family)
		snprintf(p->why, sizeof p->why, "birthday probing hit after %llu ms",
		    (unsigned long long)ms);
	else
		snprintf(p->why, sizeof p->why, "%s candidate, answered first after %llu ms",
		    type == -1 ? "peer-reflexive" : cand_kind(type), (unsigned long long)ms);
	path_set(p, now, to, via);
}

void
punch_confirm(struct punch *p, uint64_t now, const struct sockaddr_storage *from,
    int via, size_t len)
{
	int type;

	if (via != VIA_RELAY)
		p->last_direct = now;
	p->unanswered = 0;
	if (!p->ready) {
		/* The caller's HELLO was answered: a round trip. */
		if (p->first_us == 0)
			p->first_us = now - p->start;
		/* One of the peer's own candidates (authenticated with the
		 * handshake), or through our relay, whose permissions let
		 * only those in: the path.  Anything else (a NAT's new
		 * port, or an attacker's copy of the packet, sent from a
		 * victim's address ahead of it) is checked first. */
		type = pair_type(p, from);
		if (via == VIA_RELAY || (type != -1 && type != CAND_PRFLX))
			first_path(p, now, from, via);
		else if (!check_is(&p->move, from, via))
			check_start(p, now, from, via, len);
		return;
	}
	/* Once the birthday sockets are gone, only the winner is left;
	 * before, the others are about to go. */
	if (via >= VIA_BDAY && p->ep == -1)
		via = p->path_via;
	if (via >= VIA_BDAY && via != p->path_via)
		return;
	if (punch_same_addr(from, &p->path) && via == p->path_via) {
		/* The peer is still where we send: a check of another
		 * address came from an attacker's copy or from a move the
		 * peer went back on (RFC 9000 §9.3.2). */
		p->move.on = false;
		return;
	}
	/* The relay echoes what the direct path carried a moment ago. */
	if (via == VIA_RELAY && p->path_via != VIA_RELAY &&
	    now - p->last_direct < DIRECT_HOLD_US)
		return;
	/* A new address: check it before moving there. */
	if (!check_is(&p->move, from, via))
		check_start(p, now, from, via, len);
}

/* The direct path went silent: send to the peer's relayed candidate,
 * whose permissions cover our address on any port; the peer follows
 * once our packets reach it through there. */
static void
failover(struct punch *p, uint64_t now)
{
	char a[64];
	int i;

	p->unanswered = now;
	if (p->path_via == VIA_RELAY || pair_type(p, &p->path) == CAND_RELAY)
		return;
	for (i = 0; i < p->n && p->pairs[i].c.type != CAND_RELAY; i++)
		;
	if (i == p->n)
		return;
	log_v(1, "no answer on the direct path for %d s: moving to the peer's TURN relay %s",
	    FAILOVER_US / 1000000, punch_addrstr(&p->pairs[i].c.addr, a, sizeof a));
	path_change(p, now, &p->pairs[i].c.addr, VIA_DIRECT);
	p->path = p->pairs[i].c.addr;
	p->path_via = VIA_DIRECT;
	snprintf(p->why, sizeof p->why, "the direct path went silent");
}

/* What a failed send means: 1 the datagram is gone (UDP may lose it),
 * 0 the socket is full, -1 a real error (said). */
static int
send_failed(void)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
		return 0;
	/* ICMP errors while a path opens or a NAT forgets: UDP may lose.
	 * EMSGSIZE: a path MTU probe larger than the link, lost as such. */
	if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ||
	    errno == EINTR || errno == EMSGSIZE)
		return 1;
	log_errno("cannot send to the peer");
	return -1;
}

/* Send run r one datagram at a time, from where it stands: 1 all of it
 * went, 0 the socket filled (r advanced past what went), -1 error. */
static int
send_each(struct punch *p, uint64_t now, struct punch_run *r)
{
	while (r->len > 0) {
		size_t k = r->len < r->seg ? r->len : r->seg;
		ssize_t n;
		int f;

		if (k > DGRAM_MAX)
			n = k;		/* larger than any path we use: lost */
		else if (p->path_via == VIA_RELAY)
			n = turn_send(p, now, &p->path, r->buf, k);
		else
			n = send_to(via_fd(p, p->path_via), r->buf, k, &p->path);
		if (n < 0 && (f = send_failed()) != 1)
			return f;
		r->buf += k;
		r->len -= k;
	}
	return 1;
}

/*
 * Send the runs with UDP GSO: sendmmsg(2), one message per run, each
 * cut into r->seg-byte datagrams by the kernel (or the NIC), so a run
 * costs the stack about what one datagram does.  Returns the runs sent.
 */
static int
send_gso(struct punch *p, uint64_t now, struct punch_run *r, int n)
{
	struct mmsghdr mm[PUNCH_MAX_RUNS];
	struct iovec iov[PUNCH_MAX_RUNS];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[PUNCH_MAX_RUNS];
	struct sockaddr_storage to;
	socklen_t tolen = sock_addr(&p->path, &to);
	int fd = via_fd(p, p->path_via), i, k, done = 0, f;

	if (tolen == 0) {
		errno = EAFNOSUPPORT;
		return send_failed();
	}
	memset(mm, 0, sizeof mm);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)r[i].buf;
		iov[i].iov_len = r[i].len;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &to;
		mm[i].msg_hdr.msg_namelen = tolen;
		if (r[i].len > r[i].seg) {
			struct cmsghdr *cm;
			uint16_t seg = r[i].seg;

			/* The kernel reads all of it, padding included. */
			memset(ctl[i].buf, 0, sizeof ctl[i].buf);
			mm[i].msg_hdr.msg_control = ctl[i].buf;
			mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
			cm = CMSG_FIRSTHDR(&mm[i].msg_hdr);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof seg);
			memcpy(CMSG_DATA(cm), &seg, sizeof seg);
		}
	}
	while (done < n) {
		if ((k = sendmmsg(fd, mm + done, n - done, 0)) > 0) {
			done += k;
			continue;
		}
		if (errno == EIO || errno == EINVAL || errno == EMSGSIZE || errno == EOPNOTSUPP) {
			/* GSO refused this run: a segment too large for the
			 * link (a path MTU probe), or no checksum offload
			 * (EIO: none for this socket from now on).  Send its
			 * datagrams one by one, each with its own fate. */
			if ((errno == EIO || errno == EOPNOTSUPP) && p->gso) {
				log_v(2, "UDP GSO refused (%s): sending datagrams one by one",
				    strerror(errno));
				p->gso = false;
			}
			if ((f = send_each(p, now, &r[done])) != 1)
				return f == 0 ? done : -1;
			done++;
			continue;
		}
		if ((f = send_failed()) != 1)
			return f == 0 ? done : -1;
		r[done].len = 0;	/* lost, as UDP may */
		done++;
	}
	return done;
}

/* Send buf to `to' over via (through our relay: VIA_RELAY).  As sendto(2). */
static ssize_t
send_via(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via,
    const uint8_t *buf, size_t len)
{
	if (via == VIA_RELAY)
		return turn_send(p, now, to, buf, len);
	return send_to(via_fd(p, via), buf, len, to);
}

bool
punch_challenge(struct punch *p, uint64_t now, uint8_t data[PUNCH_CHALLENGE_LEN])
{
	struct check *c = &p->move;
	char a[64], b[64];

	p->probing = CHECK_NONE;
	if (c->on && now >= c->end) {
		if (p->ready)
			log_v(1, "no answer from %s: the peer stays at %s",
			    punch_addrstr(&c->to, a, sizeof a),
			    punch_addrstr(&p->path, b, sizeof b));
		else
			log_v(1, "no answer from %s", punch_addrstr(&c->to, a, sizeof a));
		c->on = false;
	}
	if (c->on && now >= c->next) {
		c->next = now + c->gap;
		c->gap *= 2;
		p->probing = CHECK_MOVE;
	} else if (p->ready && p->have_direct && now >= p->recheck) {
		c = &p->back;
		memset(c, 0, sizeof *c);
		c->on = true;
		c->to = p->direct;
		c->via = p->direct_via;
		randombytes_buf(c->data, sizeof c->data);
		p->recheck = now + p->recheck_us;
		if ((p->recheck_us *= 2) > RECHECK_MAX_US)
			p->recheck_us = RECHECK_MAX_US;
		p->probing = CHECK_BACK;
	} else {
		return false;
	}
	memcpy(data, c->data, sizeof c->data);
	return true;
}

/* What the anti-amplification limit (RFC 9000 §8.1) still lets go to
 * c's address. */
static size_t
check_room(const struct check *c)
{
	return c->out < CHECK_FACTOR * c->in ? CHECK_FACTOR * c->in - c->out : 0;
}

size_t
punch_probe_room(const struct punch *p)
{
	if (p->probing == CHECK_MOVE)
		return check_room(&p->move);
	return SIZE_MAX;	/* the direct path worked before */
}

size_t
punch_reply_room(const struct punch *p, const struct sockaddr_storage *to, int via,
    size_t in)
{
	if (p->ready && via == p->path_via && punch_same_addr(to, &p->path))
		return SIZE_MAX;
	if (p->have_direct && via == p->direct_via && punch_same_addr(to, &p->direct))
		return SIZE_MAX;
	if (check_is(&p->move, to, via))
		return check_room(&p->move);
	return CHECK_FACTOR * in;
}

void
punch_probe(struct punch *p, uint64_t now, const uint8_t *buf, size_t len)
{
	struct check *c = p->probing == CHECK_MOVE ? &p->move : &p->back;
	char a[64];

	if (p->probing == CHECK_NONE || !c->on)
		return;
	p->probing = CHECK_NONE;
	/* The direct path worked before; a new address gets no more than
	 * its share. */
	if (c == &p->move && c->out + len > CHECK_FACTOR * c->in) {
		log_v(2, "no PATH_CHALLENGE to %s: it sent us only %llu bytes",
		    punch_addrstr(&c->to, a, sizeof a), (unsigned long long)c->in);
		return;
	}
	c->out += len;
	send_via(p, now, &c->to, c->via, buf, len);
}

void
punch_response(struct punch *p, uint64_t now, const uint8_t data[PUNCH_CHALLENGE_LEN])
{
	struct check *c;

	if (p->move.on && sodium_memcmp(data, p->move.data, sizeof p->move.data) == 0)
		c = &p->move;
	else if (p->back.on && p->have_direct &&
	    sodium_memcmp(data, p->back.data, sizeof p->back.data) == 0)
		c = &p->back;
	else
		return;
	c->on = false;
	if (p->ready)
		path_set(p, now, &c->to, c->via);
	else
		first_path(p, now, &c->to, c->via);
}

void
punch_reply(struct punch *p, uint64_t now, const struct sockaddr_storage *to, int via,
    const uint8_t *buf, size_t len)
{
	if (check_is(&p->move, to, via))
		p->move.out += len;
	send_via(p, now, to, via, buf, len);
}

int
punch_sendv(struct punch *p, struct punch_run *r, int n)
{
	uint64_t now = now_us();
	int i, f;

	if (!p->ready)
		return n;
	if (p->unanswered == 0)
		p->unanswered = now;
	else if (now - p->unanswered > FAILOVER_US)
		failover(p, now);
	if (p->path_via == VIA_RELAY)
		turn_channel(p, now, &p->path);	/* one that lapsed, or was refused */
	for (i = 0; i < n && r[i].seg <= DGRAM_MAX; i++)
		;
	if (p->gso && p->path_via != VIA_RELAY && i == n) {
		for (i = 0; i < n; i += f) {
			int k = n - i < PUNCH_MAX_RUNS ? n - i : PUNCH_MAX_RUNS;

			if ((f = send_gso(p, now, r + i, k)) < k)
				return f < 0 ? -1 : i + f;
		}
		return n;
	}
	for (i = 0; i < n; i++)
		if ((f = send_each(p, now, &r[i])) != 1)
			return f == 0 ? i : -1;
	return n;
}

/* One probe from the budget b, under its lock: true if it may go.  A
 * process's budget: its sessions share it (a listener's children too). */
static bool
budget_take(struct punch *p, struct punch_budget *b, uint64_t now)
{
	if (!b->init) {
		b->init = true;
		b->tokens = SPRAY_MAX;
		b->at = now;
	}
	/* Another process may have taken from it after our `now'. */
	if (now > b->at) {
		b->tokens += (double)(now - b->at) * SPRAY_MAX / SPRAY_REFILL_US;
		if (b->tokens > SPRAY_MAX)
			b->tokens = SPRAY_MAX;
		b->at = now;
	}
	/* Dry: go on at the rate it refills, as the tokens come. */
	if (b->tokens < 1) {
		if (!p->spray_spent)
			log_v(1, "birthday probing: this process's budget of %d probes "
			    "a minute is spent; going on as it refills", SPRAY_MAX);
		p->spray_spent = true;
		return false;
	}
	b->tokens -= 1;
	return true;
}

/* One probe from the process's spray budget: true if it may go. */
static bool
spray_take(struct punch *p, uint64_t now)
{
	struct punch_budget *b = p->budget;
	bool ok;

	if (b == NULL)
		return true;
	if (b->lock)
		util_mutex_lock(b->lock);
	ok = budget_take(p, b, now);
	if (b->lock)
		pthread_mutex_unlock(b->lock);
	return ok;
}

/* One KNOCK from the listener's bucket: true if it may go. */
static bool
knock_take(struct punch *p, uint64_t now)
{
	uint64_t k = (now - p->knock_at) / KNOCK_TA_US;

	if (k > 0) {
		p->knock_tokens = p->knock_tokens + k < p->knock_cap ?
		    p->knock_tokens + k : p->knock_cap;
		p->knock_at += k * KNOCK_TA_US;
	}
	if (p->knocks >= KNOCK_MAX || p->knock_tokens == 0)
		return false;
	p->knock_tokens--;
	if (++p->knocks == KNOCK_MAX)
		log_v(1, "sent the %d KNOCKs an offer gets", KNOCK_MAX);
	return true;
}

static size_t
make_knock(const struct punch *p, uint8_t *buf)
{
	buf[0] = WIRE_MAGIC;
	buf[1] = WIRE_KNOCK;
	put32(buf + 2, p->peer_cid);
	put32(buf + WIRE_HDR, p->my_cid);
	return KNOCK_LEN;
}

/* Whether this probe to pair x leaves with the low TTL. */
static bool
low_ttl(const struct punch *p, const struct pair *x, uint64_t now)
{
	if (x->c.type == CAND_RELAY || x->sock != -1)
		return false;	/* a TURN server clashes with nothing; a
				   birthday socket that was hit is open */
	if (p->caller)
		return x->sent < CALLER_LOW;
	return now - p->start < LISTENER_LOW_US || x->sent % 2 == 0;
}

void
punch_output(struct punch *p, uint64_t now)
{
	uint8_t pkt[PROBE_MAX];
	bool denied = false;
	size_t len = 0;
	int i, j;

	tx_output(p, now);
	turn_output(p, now);
	if (p->ready && p->ep != -1) {
		/* The path is chosen: the birthday sockets are done. */
		bday_close(p, p->path_via >= VIA_BDAY ? p->path_via - VIA_BDAY : -1);
		if (p->path_via >= VIA_BDAY)
			p->path_via = VIA_BDAY;
	}
	if (!p->started || p->ready)
		return;
	/* The listener's pairs take turns at its KNOCKs, starting with the
	 * one the bucket last turned away. */
	for (j = 0; j < p->n; j++) {
		struct pair *x = &p->pairs[(i = (p->knock_rr + j) % p->n)];
		int fd = x->sock == -1 ? p->fd : p->bsock[x->sock];
		bool low;

		if (x->next > now)
			continue;
		if (!p->caller && !knock_take(p, now)) {
			if (!denied)
				p->knock_rr = i;
			denied = true;
			x->next = p->knocks >= KNOCK_MAX ? UINT64_MAX : p->knock_at + KNOCK_TA_US;
			continue;
		}
		if (len == 0)
			len = p->probe ? p->probe(p->ctx, pkt, sizeof pkt) : make_knock(p, pkt);
		if (len == 0)
			return;
		if ((low = low_ttl(p, x, now)))
			set_ttl(fd, x->c.addr.ss_family, p->low_ttl);
		/* ECONNREFUSED (an ICMP error while the path opens) is normal. */
		send_to(fd, pkt, len, &x->c.addr);
		if (low)
			set_ttl(fd, x->c.addr.ss_family, -1);
		x->sent++;
		x->next = now + (x->sent < PROBE_FAST ? PROBE_FAST_US : PROBE_SLOW_US);
		if (low && !p->caller && x->sent >= LISTENER_LOW &&
		    now - p->start < LISTENER_LOW_US)
			x->next = now + LISTENER_LOW_EVERY_US;
	}
	if (((p->ep != -1 && now >= p->bday_next) ||
	    (p->spray_left > 0 && now >= p->spray_next)) && len == 0 &&
	    (len = p->probe ? p->probe(p->ctx, pkt, sizeof pkt) : make_knock(p, pkt)) == 0)
		return;
	if (p->ep != -1 && now >= p->bday_next) {
		/* Each birthday socket opens a mapping towards the peer's
		 * public addresses (the sockets keep the low TTL). */
		p->bday_next = now + BDAY_REPEAT_US;
		for (i = 0; i < p->n; i++) {
			int k;

			if (p->pairs[i].c.type != CAND_SRFLX || p->pairs[i].sock != -1)
				continue;
			for (k = 0; k < p->nb; k++)
				send_to(p->bsock[k], pkt, len, &p->pairs[i].c.addr);
		}
	}
	if (p->spray_left > 0 && now >= p->spray_next) {
		/* Random ports of the symmetric side's public address. */
		struct sockaddr_storage to = p->spray_to;

		p->spray_next = now + SPRAY_US;
		for (i = 0; i < SPRAY_BURST && p->spray_left > 0 && spray_take(p, now);
		    i++, p->spray_left--) {
			in_port_t port = htons(PORT_MIN + randombytes_uniform(65536 - PORT_MIN));

			if (to.ss_family == AF_INET)
				((struct sockaddr_in *)&to)->sin_port = port;
			else
				((struct sockaddr_in6 *)&to)->sin6_port = port;
			send_to(p->fd, pkt, len, &to);
		}
	}
}

uint64_t
punch_deadline(const struct punch *p)
{
	uint64_t t = tx_deadline(p), u = turn_deadline(p);
	int i;

	if (rx_pending(p))
		return 0;	/* datagrams wait in the queue */
	if (u < t)
		t = u;
	if (p->ready && p->ep != -1)
		return 0;	/* close the birthday sockets */
	if (p->ready && p->have_direct && p->recheck < t)
		t = p->recheck;
	if (p->move.on && p->move.next < t)
		t = p->move.next;
	if (p->move.on && p->move.end < t)
		t = p->move.end;
	if (!p->started || p->ready)
		return t;
	for (i = 0; i < p->n; i++)
		if (p->pairs[i].next < t)
			t = p->pairs[i].next;
	if (p->ep != -1 && p->bday_next < t)
		t = p->bday_next;
	if (p->spray_left > 0 && p->spray_next < t)
		t = p->spray_next;
	return t;
}

uint64_t
punch_first_us(const struct punch *p)
{
	return p->first_us;
}

unsigned
punch_path_id(const struct punch *p)
{
	return p->path_id;
}

bool
punch_ready(const struct punch *p)
{
	return p->ready;
}

bool
punch_relayed(const struct punch *p)
{
	return p->path_via == VIA_RELAY || pair_type(p, &p->path) == CAND_RELAY;
}

const char *
punch_describe(const struct punch *p, char *buf, size_t size)
{
	char a[64];

	if (p->path_via == VIA_RELAY)
		snprintf(buf, size, "relayed path to %s through our TURN server %s (%s)",
		    punch_addrstr(&p->path, a, sizeof a), p->turn.hostport, p->why);
	else if (pair_type(p, &p->path) == CAND_RELAY)
		snprintf(buf, size, "relayed path through the peer's TURN relay %s (%s)",
		    punch_addrstr(&p->path, a, sizeof a), p->why);
	else
		snprintf(buf, size, "direct path to %s (%s)",
		    punch_addrstr(&p->path, a, sizeof a), p->why);
	return buf;
}
