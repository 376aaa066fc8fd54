/*
 * tool_netem: a user-space netem qdisc, which this kernel lacks.  It
 * creates a TUN device, reads every IP packet the kernel routes into it,
 * runs it through netem's model (tests/netem.c) and writes it back when
 * it is due.  The kernel then routes the packet again; natlab.sh sends
 * only packets that did not come from the TUN into it (`ip rule add not
 * iif nm0 lookup 100'), so there is no loop.
 *
 * Usage: tool_netem [-i ifname] [-s seed] NETEM-OPTIONS...
 * where the options are tc's: `tool_netem delay 40ms 5ms loss 2%
 * reorder 5% 50%' does what `tc qdisc add dev X root netem delay 40ms
 * 5ms loss 2% reorder 5% 50%' would (tests/netem.h lists them).
 *
 * Linux has one netem qdisc per egress interface, so a router with netem
 * on every interface delays each direction of a path in its own queue:
 * this tool keeps one netem (queue, limit, rate, gap counter,
 * correlations, all netem_new's) per interface the kernel routes a
 * packet out of once written back, which it asks the kernel for
 * (RTM_GETROUTE from the packet's source, iif the TUN: `ip route get DST
 * from SRC iif nm0') the first time it sees a destination, then reuses.
 * A packet with no route (the kernel will drop it) shares a queue with
 * the others without one.  Each netem's random stream is seeded from the
 * seed and its interface's index.
 *
 * Counters are printed on stderr at exit (SIGTERM, SIGINT) and on
 * SIGUSR1: a line of totals, one line per egress interface, then one
 * line per source address of what was done to its packets:
 *   netem: in N out N lost N dup N reordered N overflow N write_errors N held N
 *   netem: dev IFNAME in N out N lost N dup N reordered N overflow N held N
 *   netem: from ADDR in N lost N dup N reordered N overtaken N max_dist N
 * overtaken: the source's packets held that reordered ones went ahead
 * of; max_dist: the most of the source's packets, in the order they
 * came, between a reordered one and the oldest it passed.
 * Exit status: 0 after a signal, 1 on misuse or a setup error.
 * The TUN device, the signals and the seed's default are tests/tun.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include "netem.h"
#include "tun.h"

/* One netem per egress interface (oif 0: no route). */
struct dir {
	unsigned oif;
	struct netem *q;
};
/* A destination already routed, and its direction. */
struct route {
	unsigned char addr[16];
	int alen;
	size_t dir;
};

static struct netem_conf conf;
static uint64_t seed;
static struct dir *dirs;
static size_t ndirs;
static struct route *routes;
static size_t nroutes;
static int nl = -1;		/* rtnetlink socket */
static unsigned tun_index;
static uint64_t werr;
/* Source addresses by flow number; the last flow is every other one. */
static unsigned char src[NETEM_FLOWS][16];
static int srclen[NETEM_FLOWS];
static unsigned nsrc;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An IP packet's source and destination addresses: their length (4 or
 * 16), or 0 when it is neither IPv4 nor IPv6. */
static int
addrs_of(const unsigned char *p, size_t len, const unsigned char **src,
    const unsigned char **dst)
{
	if (len >= 20 && p[0] >> 4 == 4) {
		*src = p + 12;
		*dst = p + 16;
		return 4;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		*src = p + 8;
		*dst = p + 24;
		return 16;
	}
	return 0;
}

/* The flow of an IP packet: its source address's number. */
static unsigned
flow_of(const unsigned char *p, size_t len)
{
	const unsigned char *a, *d;
	int alen;
	unsigned i;

	if ((alen = addrs_of(p, len, &a, &d)) == 0)
		return NETEM_FLOWS - 1;
	for (i = 0; i < nsrc; i++)
		if (srclen[i] == alen && memcmp(src[i], a, alen) == 0)
			return i;
	if (nsrc == NETEM_FLOWS - 1)
		return NETEM_FLOWS - 1;
	memcpy(src[nsrc], a, alen);
	srclen[nsrc] = alen;
	return nsrc++;
}

/* Append attribute type to the netlink message in msg (room enough). */
static void
add_attr(unsigned char *msg, unsigned short type, const void *data,
    unsigned short len)
{
	struct nlmsghdr *n = (struct nlmsghdr *)msg;
	struct rtattr *rta = (struct rtattr *)(msg +
	    NLMSG_ALIGN(n->nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* The interface the kernel sends a packet from src to dst (alen bytes
 * each) out of when it comes in on the TUN: its index, or 0 (no route,
 * or the lookup failed). */
static unsigned
route_oif(const unsigned char *src, const unsigned char *dst, int alen)
{
	static uint32_t seq;
	union {
		struct nlmsghdr n;
		unsigned char b[NLMSG_SPACE(sizeof(struct rtmsg)) +
		    3 * RTA_SPACE(16)];
	} req;
	struct rtmsg *rt = NLMSG_DATA(&req.n);
	union {
		struct nlmsghdr n;
		unsigned char b[4096];
	} ans;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct rtattr *rta;
	ssize_t r;
	int len;

	memset(&req, 0, sizeof req);
	req.n.nlmsg_len = NLMSG_LENGTH(sizeof *rt);
	req.n.nlmsg_type = RTM_GETROUTE;
	req.n.nlmsg_flags = NLM_F_REQUEST;
	req.n.nlmsg_seq = ++seq;
	rt->rtm_family = alen == 4 ? AF_INET : AF_INET6;
	rt->rtm_dst_len = rt->rtm_src_len = (unsigned char)(alen * 8);
	add_attr(req.b, RTA_DST, dst, (unsigned short)alen);
	add_attr(req.b, RTA_SRC, src, (unsigned short)alen);
	add_attr(req.b, RTA_IIF, &tun_index, sizeof tun_index);
	if (sendto(nl, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&kernel,
	    sizeof kernel) < 0)
		return 0;
	do {
		r = recv(nl, &ans, sizeof ans, 0);
	} while ((r < 0 && errno == EINTR) || (r >= (ssize_t)NLMSG_HDRLEN &&
	    ans.n.nlmsg_seq != seq));
	if (r < (ssize_t)NLMSG_LENGTH(sizeof(struct rtmsg)) ||
	    !NLMSG_OK(&ans.n, (size_t)r) || ans.n.nlmsg_type != RTM_NEWROUTE)
		return 0;
	len = (int)RTM_PAYLOAD(&ans.n);
	for (rta = RTM_RTA(NLMSG_DATA(&ans.n)); RTA_OK(rta, len);
	    rta = RTA_NEXT(rta, len))
		if (rta->rta_type == RTA_OIF &&
		    RTA_PAYLOAD(rta) >= sizeof(uint32_t)) {
			uint32_t oif;

			memcpy(&oif, RTA_DATA(rta), sizeof oif);
			return oif;
		}
	return 0;
}

/* The netem of interface oif, made on first use: its index in dirs, or
 * -1 (out of memory). */
static ssize_t
dir_of_oif(unsigned oif)
{
	struct dir *d;
	size_t i;

	for (i = 0; i < ndirs; i++)
		if (dirs[i].oif == oif)
			return (ssize_t)i;
	if ((d = realloc(dirs, (ndirs + 1) * sizeof *dirs)) == NULL)
		return -1;
	dirs = d;
	d[ndirs].oif = oif;
	if ((d[ndirs].q = netem_new(&conf, seed +
	    oif * 0x9e3779b97f4a7c15ULL)) == NULL)
		return -1;
	return (ssize_t)ndirs++;
}

/* The netem a packet goes through: its index in dirs, or -1 (out of
 * memory).  A destination's route is asked for once it is known. */
static ssize_t
dir_of(const unsigned char *p, size_t len)
{
	const unsigned char *src, *dst;
	struct route *r;
	unsigned oif;
	ssize_t d;
	size_t i;
	int alen;

	if ((alen = addrs_of(p, len, &src, &dst)) == 0)
		return dir_of_oif(0);
	for (i = 0; i < nroutes; i++)
		if (routes[i].alen == alen &&
		    memcmp(routes[i].addr, dst, alen) == 0)
			return (ssize_t)routes[i].dir;
	oif = route_oif(src, dst, alen);
	if ((d = dir_of_oif(oif)) < 0 || oif == 0)
		return d;	/* no route now: maybe one later */
	if ((r = realloc(routes, (nroutes + 1) * sizeof *routes)) == NULL)
		return -1;
	routes = r;
	memcpy(r[nroutes].addr, dst, alen);
	r[nroutes].alen = alen;
	r[nroutes++].dir = (size_t)d;
	return d;
}

static void
print_stats(void)
{
	struct netem_stats st, one;
	char addr[INET6_ADDRSTRLEN], name[IF_NAMESIZE];
	size_t held = 0, d;
	unsigned i;

	memset(&st, 0, sizeof st);
	for (d = 0; d < ndirs; d++) {
		netem_get_stats(dirs[d].q, &one);
		held += netem_held(dirs[d].q);
		st.in += one.in;
		st.out += one.out;
		st.lost += one.lost;
		st.dup += one.dup;
		st.reordered += one.reordered;
		st.overflow += one.overflow;
		for (i = 0; i < NETEM_FLOWS; i++) {
			st.flow[i].in += one.flow[i].in;
			st.flow[i].lost += one.flow[i].lost;
			st.flow[i].dup += one.flow[i].dup;
			st.flow[i].reordered += one.flow[i].reordered;
			st.flow[i].overflow += one.flow[i].overflow;
			st.flow[i].overtaken += one.flow[i].overtaken;
			if (one.flow[i].max_dist > st.flow[i].max_dist)
				st.flow[i].max_dist = one.flow[i].max_dist;
		}
	}
	fprintf(stderr, "netem: in %" PRIu64 " out %" PRIu64 " lost %" PRIu64
	    " dup %" PRIu64 " reordered %" PRIu64 " overflow %" PRIu64
	    " write_errors %" PRIu64 " held %zu\n", st.in, st.out, st.lost,
	    st.dup, st.reordered, st.overflow, werr, held);
	for (d = 0; d < ndirs; d++) {
		netem_get_stats(dirs[d].q, &one);
		if (dirs[d].oif == 0 || if_indextoname(dirs[d].oif, name) == NULL)
			snprintf(name, sizeof name, dirs[d].oif ? "if%u" :
			    "none", dirs[d].oif);
		fprintf(stderr, "netem: dev %s in %" PRIu64 " out %" PRIu64
		    " lost %" PRIu64 " dup %" PRIu64 " reordered %" PRIu64
		    " overflow %" PRIu64 " held %zu\n", name, one.in, one.out,
		    one.lost, one.dup, one.reordered, one.overflow,
		    netem_held(dirs[d].q));
	}
	for (i = 0; i < NETEM_FLOWS; i++) {
		const struct netem_flow *f = &st.flow[i];

		if (f->in == 0)
			continue;
		if (i < nsrc)
			inet_ntop(srclen[i] == 4 ? AF_INET : AF_INET6, src[i],
			    addr, sizeof addr);
		else
			snprintf(addr, sizeof addr, "other");
		fprintf(stderr, "netem: from %s in %" PRIu64 " lost %" PRIu64
		    " dup %" PRIu64 " reordered %" PRIu64 " overtaken %" PRIu64
		    " max_dist %" PRIu64 "\n", addr, f->in, f->lost, f->dup,
		    f->reordered, f->overtaken, f->max_dist);
	}
}

static void
usage(FILE *f)
{
	fputs("usage: tool_netem [-i ifname] [-s seed] [limit PACKETS]\n"
	    "         [delay TIME [JITTER [CORRELATION]]] "
	    "[loss [random] PERCENT [CORRELATION]]\n"
	    "         [duplicate PERCENT [CORRELATION]] "
	    "[reorder PERCENT [CORRELATION]] [gap DISTANCE]\n"
	    "         [rate RATE]\n", f);
}

/* Write back what q has due at now. */
static void
send_due(struct netem *q, uint64_t now, int fd, unsigned char *buf)
{
	size_t len;

	/* A TUN write never blocks; the kernel may drop under pressure. */
	while ((len = netem_dequeue(q, now, buf)) > 0)
		if (write(fd, buf, len) != (ssize_t)len)
			werr++;
}

int
main(int argc, char **argv)
{
	const char *ifname = "nm0";
	unsigned char buf[TUN_SLOT];
	char *end;
	int c, fd;
	size_t d;

	seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/* '+': the netem options that follow are not ours. */
	while ((c = getopt(argc, argv, "+hi:s:")) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'i':
			ifname = optarg;
			break;
		case 's':
			seed = strtoull(optarg, &end, 10);
			if (*end || end == optarg) {
				fprintf(stderr, "tool_netem: bad seed `%s'\n", optarg);
				return 1;
			}
			break;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (netem_parse(&conf, argc - optind, argv + optind, "tool_netem") == -1)
		return 1;
	if ((fd = tun_start(ifname, seed)) < 0)
		return 1;
	if ((tun_index = if_nametoindex(ifname)) == 0 ||
	    (nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_ROUTE)) < 0) {
		fprintf(stderr, "tool_netem: %s: %s\n", ifname, strerror(errno));
		return 1;
	}

	while (!tun_stop) {
		uint64_t now = now_ns(), next = UINT64_MAX;
		struct timespec ts, *tsp = NULL;
		int n, b;

		for (d = 0; d < ndirs; d++) {
			send_due(dirs[d].q, now, fd, buf);
			if (netem_next(dirs[d].q) < next)
				next = netem_next(dirs[d].q);
		}
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;

			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tsp = &ts;
		}
		if ((n = tun_wait(fd, tsp, print_stats)) < 0)
			return 1;
		if (n == 0)
			continue;
		for (b = 0; b < TUN_BATCH; b++) {
			ssize_t r = tun_read(fd, buf, sizeof buf), dd;

			if (r < 0)
				return 1;
			if (r == 0)
				break;
			/* A packet arrives when it is read, not when the
			 * batch began: one read later in the batch (after a
			 * route lookup, or a pause under load) would
			 * otherwise leave that much early. */
			now = now_ns();
			if ((dd = dir_of(buf, (size_t)r)) < 0) {
				fputs("tool_netem: out of memory\n", stderr);
				return 1;
			}
			netem_enqueue(dirs[dd].q, now, buf, (size_t)r,
			    flow_of(buf, (size_t)r));
			/* The kernel dequeues after every enqueue: a
			 * reordered packet leaves before the next comes in. */
			send_due(dirs[dd].q, now, fd, buf);
		}
	}
	print_stats();
	for (d = 0; d < ndirs; d++)
		netem_free(dirs[d].q);
	free(dirs);
	free(routes);
	close(nl);
	return 0;
}
