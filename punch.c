/*
 * punch.c: candidates, paths and hole punching.
 *
 * Every candidate of the peer is probed at once; each probe that leaves
 * opens our NAT for the answer.  The caller's probes are HELLOs made by
 * the session (they carry the last handshake message, so they are
 * authenticated); the listener's are KNOCKs,
 *
 *	hdr(6) | src conn id(4)
 *
 * which carry nothing to trust: they only open the listener's NAT, and a
 * KNOCK from an address we did not know teaches the caller a
 * peer-reflexive candidate (RFC 8445 §7.3.1.3) to send HELLOs to.  A path
 * is chosen only when the session has authenticated a packet that came
 * over it; the latest such address wins, so the session follows a peer
 * whose NAT changed its port.
 */#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "punch.h"
#include "util.h"
#include "wire.h"

#define KNOCK_LEN	(WIRE_HDR + 4)
#define PROBE_FAST	10		/* probes sent at the fast interval */
#define PROBE_FAST_US	50000		/* first probes: quick on a LAN */
#define PROBE_SLOW_US	250000		/* then: enough to keep NATs open */
#define PROBE_MAX	(WIRE_MAX_PKT)
#define SOCK_BUF	(4 << 20)	/* room for a window of packets */

struct pair {
	struct cand c;
	uint64_t next;		/* when to probe next */
	unsigned sent;
};

struct punch {
	int fd;
	bool caller;
	int nlocal;
	struct cand local[PUNCH_MAX_CANDS];
	uint32_t my_cid, peer_cid;
	punch_probe_fn probe;
	void *ctx;
	bool started;
	int n;
	struct pair pairs[PUNCH_MAX_CANDS];
	bool ready;
	struct sockaddr_storage path;
};

/* The socket's family: IPv4 addresses go out v4-mapped on an IPv6 socket. */
static int sock_af = AF_INET;

static int
make_socket(int port)
{
	struct sockaddr_storage ss;
	int fd, off = 0, buf = SOCK_BUF;
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

ssize_t
punch_recv(int fd, void *buf, size_t cap, struct sockaddr_storage *from)
{
	socklen_t len = sizeof *from;
	ssize_t n;

	n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &len);
	if (n >= 0)
		normalize(from);
	return n;
}

static ssize_t
send_to(int fd, const void *buf, size_t len, const struct sockaddr_storage *to)
{
	struct sockaddr_in6 m;

	if (to->ss_family == AF_INET && sock_af == AF_INET6) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)to;

		memset(&m, 0, sizeof m);
		m.sin6_family = AF_INET6;
		m.sin6_port = s4->sin_port;
		m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&m.sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		return sendto(fd, buf, len, 0, (struct sockaddr *)&m, sizeof m);
	}
	if (to->ss_family == AF_INET6 && sock_af == AF_INET) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	return sendto(fd, buf, len, 0, (const struct sockaddr *)to,
	    to->ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6));
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

struct punch *
punch_new(const struct punch_conf *c)
{
	struct punch *p;

	if ((p = calloc(1, sizeof *p)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	p->caller = c->caller;
	if ((p->fd = make_socket(c->port)) == -1) {
		free(p);
		return NULL;
	}
	p->nlocal = gather_host(p->fd, p->local, PUNCH_MAX_CANDS);
	return p;
}

void
punch_free(struct punch *p)
{
	if (p == NULL)
		return;
	close(p->fd);
	free(p);
}

int
punch_gather(struct punch *p, uint64_t deadline)
{
	(void)p;
	(void)deadline;
	return 0;
}

int
punch_fd(const struct punch *p)
{
	return p->fd;
}

int
punch_local(const struct punch *p, struct cand *c, int max)
{
	int n = p->nlocal < max ? p->nlocal : max;

	memcpy(c, p->local, n * sizeof *c);
	return n;
}

static void
add_pair(struct punch *p, const struct cand *c)
{
	char a[64];
	int i;

	if (c->addr.ss_family == AF_INET6 && sock_af != AF_INET6)
		return;
	for (i = 0; i < p->n; i++)
		if (punch_same_addr(&p->pairs[i].c.addr, &c->addr))
			return;
	if (p->n == PUNCH_MAX_CANDS)
		return;
	memset(&p->pairs[p->n], 0, sizeof p->pairs[p->n]);
	p->pairs[p->n].c = *c;
	p->n++;
	log_v(2, "peer candidate %s (%s)", punch_addrstr(&c->addr, a, sizeof a),
	    c->type == CAND_PRFLX ? "peer-reflexive" : c->type == CAND_SRFLX ?
	    "server-reflexive" : c->type == CAND_RELAY ? "relayed" : "host");
}

void
punch_start(struct punch *p, uint32_t my_cid, uint32_t peer_cid,
    const struct cand *remote, int n, punch_probe_fn fn, void *ctx)
{
	int i;

	p->my_cid = my_cid;
	p->peer_cid = peer_cid;
	p->probe = fn;
	p->ctx = ctx;
	p->started = true;
	for (i = 0; i < n; i++)
		add_pair(p, &remote[i]);
}

static void
put32(uint8_t *b, uint32_t v)
{
	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
}

static uint32_t
get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int
punch_input(struct punch *p, uint64_t now, uint8_t *buf, size_t *len,
    struct sockaddr_storage *from, int *via)
{
	*via = 0;
	if (*len < WIRE_HDR || buf[0] != WIRE_MAGIC || !p->started)
		return 0;
	if (get32(buf + 2) != p->my_cid)
		return 0;
	if ((buf[1] & 0x7f) != WIRE_KNOCK)
		return 1;
	/* A KNOCK: the listener's NAT is open towards us from there. */
	if (p->caller && *len == KNOCK_LEN && get32(buf + WIRE_HDR) == p->peer_cid &&
	    !p->ready) {
		struct cand c = { .type = CAND_PRFLX, .addr = *from };
		int before = p->n;

		add_pair(p, &c);
		if (p->n != before)
			punch_output(p, now);
	}
	return 0;
}

void
punch_confirm(struct punch *p, uint64_t now, const struct sockaddr_storage *from,
    int via)
{
	char a[64];

	(void)now;
	(void)via;
	if (p->ready && punch_same_addr(from, &p->path))
		return;
	log_v(1, "%s %s", p->ready ? "peer moved to" : "path to the peer:",
	    punch_addrstr(from, a, sizeof a));
	p->path = *from;
	p->ready = true;
}

int
punch_send(struct punch *p, const uint8_t *pkt, size_t len)
{
	if (!p->ready || send_to(p->fd, pkt, len, &p->path) >= 0)
		return 1;
	if (errno == EAGAIN || errno == ENOBUFS)
		return 0;
	/* ICMP errors while a path opens or a NAT forgets: UDP may lose. */
	if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ||
	    errno == EINTR)
		return 1;
	log_errno("sendto");
	return -1;
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

void
punch_output(struct punch *p, uint64_t now)
{
	uint8_t pkt[PROBE_MAX];
	size_t len = 0;
	int i;

	if (!p->started || p->ready)
		return;
	for (i = 0; i < p->n; i++) {
		struct pair *x = &p->pairs[i];

		if (x->next > now)
			continue;
		if (len == 0)
			len = p->probe ? p->probe(p->ctx, pkt, sizeof pkt) : make_knock(p, pkt);
		if (len == 0)
			return;
		/* ECONNREFUSED (an ICMP error while the path opens) is normal. */
		send_to(p->fd, pkt, len, &x->c.addr);
		x->sent++;
		x->next = now + (x->sent < PROBE_FAST ? PROBE_FAST_US : PROBE_SLOW_US);
	}
}

uint64_t
punch_deadline(const struct punch *p)
{
	uint64_t t = UINT64_MAX;
	int i;

	if (!p->started || p->ready)
		return t;
	for (i = 0; i < p->n; i++)
		if (p->pairs[i].next < t)
			t = p->pairs[i].next;
	return t;
}

bool
punch_ready(const struct punch *p)
{
	return p->ready;
}

const char *
punch_describe(const struct punch *p, char *buf, size_t size)
{
	char a[64];

	snprintf(buf, size, "direct path to %s", punch_addrstr(&p->path, a, sizeof a));
	return buf;
}
