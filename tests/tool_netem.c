/*
 * tool_netem: a user-space stand-in for the netem qdisc, which this
 * kernel lacks.  It creates a TUN device, reads every IP packet the
 * kernel routes into it, and writes it back after a delay, or drops,
 * duplicates or reorders it.  The kernel then routes the packet again;
 * natlab.sh sends only packets that did not come from the TUN into it
 * (`ip rule add not iif nm0 lookup 100'), so there is no loop.
 *
 * Usage: tool_netem [-d delay_ms] [-D dup_pct] [-i ifname] [-j jitter_ms]
 *                   [-l loss_pct] [-q limit] [-R rate_kbit] [-r reorder_pct]
 *                   [-s seed]
 *
 * Semantics follow netem's: each packet is held delay +- jitter (uniform);
 * jitter lets a later packet overtake an earlier one.  A reordered packet
 * (-r) goes out at once while others wait.  -R serialises departures at
 * that rate.  Held packets sit in a min-heap keyed on their departure time
 * (CLOCK_MONOTONIC); the poll timeout is the earliest one.  Counters are
 * printed on stderr at exit (SIGTERM, SIGINT) and on SIGUSR1.
 * Exit status: 0 after a signal, 1 on misuse or a setup error.
 * The TUN device, the signals and the random numbers are tests/tun.c's.
 */
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

#include "tun.h"

struct pkt {
	uint64_t due;       /* ns on CLOCK_MONOTONIC */
	uint64_t seq;       /* FIFO among equal due times */
	uint16_t len;
	unsigned char data[TUN_SLOT];
};

static struct {
	uint64_t in, out, lost, dup, reordered, overflow, werr;
} st;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The heap of held packets and the pool of free slots. */
static struct pkt **heap, **freelist;
static size_t nheap, nfree, limit;

static bool before(const struct pkt *a, const struct pkt *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_push(struct pkt *p)
{
	size_t i = nheap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!before(p, heap[up]))
			break;
		heap[i] = heap[up];
		i = up;
	}
	heap[i] = p;
}

static struct pkt *heap_pop(void)
{
	struct pkt *top = heap[0], *last = heap[--nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= nheap)
			break;
		if (c + 1 < nheap && before(heap[c + 1], heap[c]))
			c++;
		if (!before(heap[c], last))
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheap > 0)
		heap[i] = last;
	return top;
}

/* Removes q, one of the last two free slots, from the free list. */
static void take(struct pkt *q)
{
	if (freelist[nfree - 1] != q)
		freelist[nfree - 2] = freelist[nfree - 1];
	nfree--;
}

static void put_out(int fd, const unsigned char *buf, size_t len)
{
	/* A TUN write never blocks; the kernel may drop under pressure. */
	if (write(fd, buf, len) == (ssize_t)len)
		st.out++;
	else
		st.werr++;
}

static void print_stats(void)
{
	fprintf(stderr, "netem: in %" PRIu64 " out %" PRIu64 " lost %" PRIu64
	    " dup %" PRIu64 " reordered %" PRIu64 " overflow %" PRIu64
	    " write_errors %" PRIu64 " held %zu\n", st.in, st.out, st.lost,
	    st.dup, st.reordered, st.overflow, st.werr, nheap);
}

/* Parses a number in [lo, hi] from optarg; exits on a bad one. */
static double num(const char *what, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "tool_netem: bad %s `%s' (want %g..%g)\n",
		    what, s, lo, hi);
		exit(1);
	}
	return v;
}

static void usage(FILE *f)
{
	fputs("usage: tool_netem [-d delay_ms] [-D dup_pct] [-i ifname] "
	    "[-j jitter_ms] [-l loss_pct]\n"
	    "                  [-q limit] [-R rate_kbit] [-r reorder_pct] "
	    "[-s seed]\n", f);
}

int main(int argc, char **argv)
{
	const char *ifname = "nm0";
	double delay_ms = 0, jitter_ms = 0, loss = 0, reorder = 0, dup = 0;
	double rate_kbit = 0;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	int c;

	limit = 20000;
	while ((c = getopt(argc, argv, "D:R:d:hi:j:l:q:r:s:")) != -1) {
		switch (c) {
		case 'D': dup = num("duplication %", optarg, 0, 100) / 100; break;
		case 'R': rate_kbit = num("rate", optarg, 0, 1e8); break;
		case 'd': delay_ms = num("delay", optarg, 0, 60000); break;
		case 'h': usage(stdout); return 0;
		case 'i': ifname = optarg; break;
		case 'j': jitter_ms = num("jitter", optarg, 0, 60000); break;
		case 'l': loss = num("loss %", optarg, 0, 100) / 100; break;
		case 'q': limit = (size_t)num("limit", optarg, 1, 1000000); break;
		case 'r': reorder = num("reorder %", optarg, 0, 100) / 100; break;
		case 's': seed = (uint64_t)num("seed", optarg, 0, 4294967295.0); break;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}

	/* One extra slot is the read buffer of the next packet. */
	struct pkt *pool = calloc(limit + 1, sizeof *pool);
	heap = calloc(limit, sizeof *heap);
	freelist = calloc(limit + 1, sizeof *freelist);
	if (!pool || !heap || !freelist) {
		fputs("tool_netem: out of memory\n", stderr);
		return 1;
	}
	for (size_t i = 0; i <= limit; i++)
		freelist[nfree++] = &pool[i];

	int fd = tun_start(ifname, seed);
	if (fd < 0)
		return 1;

	const uint64_t delay = (uint64_t)(delay_ms * 1e6);
	const uint64_t jitter = (uint64_t)(jitter_ms * 1e6);
	const double ns_per_byte = rate_kbit > 0 ? 8e6 / rate_kbit : 0;
	uint64_t seq = 0, link_free = 0;

	while (!tun_stop) {
		uint64_t now = now_ns();
		while (nheap > 0 && heap[0]->due <= now) {
			struct pkt *p = heap_pop();
			put_out(fd, p->data, p->len);
			freelist[nfree++] = p;
		}
		struct timespec ts, *tsp = NULL;
		if (nheap > 0) {
			uint64_t wait = heap[0]->due - now;
			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tsp = &ts;
		}
		int n = tun_wait(fd, tsp, print_stats);
		if (n < 0)
			return 1;
		if (n == 0)
			continue;
		now = now_ns();
		for (int b = 0; b < TUN_BATCH; b++) {
			struct pkt *p = freelist[nfree - 1];
			ssize_t len = tun_read(fd, p->data, sizeof p->data);
			if (len < 0)
				return 1;
			if (len == 0)
				break;
			st.in++;
			p->len = (uint16_t)len;
			if (tun_chance(loss)) {
				st.lost++;
				continue;
			}
			struct pkt *copy[2] = { p, NULL };
			int copies = 1;
			if (tun_chance(dup)) {
				st.dup++;
				if (nfree >= 2) {
					copy[1] = freelist[nfree - 2];
					memcpy(copy[1]->data, p->data, p->len);
					copy[1]->len = p->len;
					copies = 2;
				} else {
					st.overflow++;
				}
			}
			for (int k = 0; k < copies; k++) {
				struct pkt *q = copy[k];
				if (tun_chance(reorder)) {
					st.reordered++;
					put_out(fd, q->data, q->len);
					continue;
				}
				uint64_t due = now + delay;
				if (jitter > 0) {
					int64_t j = (int64_t)(tun_rand() % (2 * jitter + 1)) - (int64_t)jitter;
					due = (j < 0 && (uint64_t)-j > delay) ? now : due + (uint64_t)j;
				}
				if (ns_per_byte > 0) {
					if (due < link_free)
						due = link_free;
					link_free = due + (uint64_t)(q->len * ns_per_byte);
				}
				if (due <= now && nheap == 0) {
					put_out(fd, q->data, q->len);
					continue;
				}
				if (nheap >= limit) {
					st.overflow++;
					continue;
				}
				q->due = due;
				q->seq = seq++;
				take(q);
				heap_push(q);
			}
		}
	}
	print_stats();
	return 0;
}
