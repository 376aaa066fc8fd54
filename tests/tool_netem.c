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
 * Counters are printed on stderr at exit (SIGTERM, SIGINT) and on
 * SIGUSR1: a line of totals, then one line per source address of what
 * was done to its packets:
 *   netem: in N out N lost N dup N reordered N overflow N write_errors N held N
 *   netem: from ADDR in N lost N dup N reordered N overtaken N max_dist N
 * overtaken: the source's packets held that reordered ones went ahead
 * of; max_dist: the most of the source's packets, in the order they
 * came, between a reordered one and the oldest it passed.
 * Exit status: 0 after a signal, 1 on misuse or a setup error.
 * The TUN device, the signals and the seed's default are tests/tun.c's.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netem.h"
#include "tun.h"

static struct netem *q;
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

/* The flow of an IP packet: its source address's number. */
static unsigned
flow_of(const unsigned char *p, size_t len)
{
	const unsigned char *a;
	int alen;
	unsigned i;

	if (len >= 20 && p[0] >> 4 == 4) {
		a = p + 12;
		alen = 4;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		a = p + 8;
		alen = 16;
	} else {
		return NETEM_FLOWS - 1;
	}
	for (i = 0; i < nsrc; i++)
		if (srclen[i] == alen && memcmp(src[i], a, alen) == 0)
			return i;
	if (nsrc == NETEM_FLOWS - 1)
		return NETEM_FLOWS - 1;
	memcpy(src[nsrc], a, alen);
	srclen[nsrc] = alen;
	return nsrc++;
}

static void
print_stats(void)
{
	struct netem_stats st;
	char addr[INET6_ADDRSTRLEN];
	unsigned i;

	netem_get_stats(q, &st);
	fprintf(stderr, "netem: in %" PRIu64 " out %" PRIu64 " lost %" PRIu64
	    " dup %" PRIu64 " reordered %" PRIu64 " overflow %" PRIu64
	    " write_errors %" PRIu64 " held %zu\n", st.in, st.out, st.lost,
	    st.dup, st.reordered, st.overflow, werr, netem_held(q));
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

int
main(int argc, char **argv)
{
	const char *ifname = "nm0";
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	unsigned char buf[TUN_SLOT];
	struct netem_conf conf;
	char *end;
	int c, fd;

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
	if ((q = netem_new(&conf, seed)) == NULL) {
		fputs("tool_netem: out of memory\n", stderr);
		return 1;
	}
	if ((fd = tun_start(ifname, seed)) < 0)
		return 1;

	while (!tun_stop) {
		uint64_t now = now_ns(), next;
		struct timespec ts, *tsp = NULL;
		size_t len;
		int n, b;

		while ((len = netem_dequeue(q, now, buf)) > 0) {
			/* A TUN write never blocks; the kernel may drop
			 * under pressure. */
			if (write(fd, buf, len) != (ssize_t)len)
				werr++;
		}
		if ((next = netem_next(q)) != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;

			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tsp = &ts;
		}
		if ((n = tun_wait(fd, tsp, print_stats)) < 0)
			return 1;
		if (n == 0)
			continue;
		now = now_ns();
		for (b = 0; b < TUN_BATCH; b++) {
			ssize_t r = tun_read(fd, buf, sizeof buf);

			if (r < 0)
				return 1;
			if (r == 0)
				break;
			netem_enqueue(q, now, buf, (size_t)r, flow_of(buf, (size_t)r));
			/* The kernel dequeues after every enqueue: a
			 * reordered packet leaves before the next comes in. */
			while ((len = netem_dequeue(q, now, buf)) > 0)
				if (write(fd, buf, len) != (ssize_t)len)
					werr++;
		}
	}
	print_stats();
	netem_free(q);
	return 0;
}
