/*
 * netem.c: netem's model (net/sched/sch_netem.c, Linux 6.x), rule for
 * rule, and tc's parsing of its options (iproute2 tc/q_netem.c).
 *
 * For each packet, in this order, as netem_enqueue does:
 *  1. duplicate: a second copy if dup >= crandom(dup_corr) (not for a
 *     copy);
 *  2. loss: one copy fewer if loss >= crandom(loss_corr); none left:
 *     dropped;
 *  3. limit: with `limit' packets held, dropped (copy and all);
 *  4. the copy goes through all of this again by itself (its own loss,
 *     limit, reordering and delay), before the original;
 *  5. reorder: unless gap is 0 or fewer than gap-1 packets were delayed
 *     since the last reordered one, the packet is reordered if
 *     reorder >= crandom(reorder_corr): it goes to the head of the queue,
 *     due at once, ahead of every packet held (tc sets gap to 1 when
 *     reorder is given, and refuses reorder without a delay);
 *  6. otherwise it is due after latency + jitter: uniform in
 *     [latency - jitter, latency + jitter), from crandom(delay_corr);
 *     with a rate, it starts when the last packet held is due (less what
 *     that wait already covers) and takes len/rate more.  Held packets
 *     leave in order of the time they are due, ties in arrival order.
 *
 * crandom is netem's correlated random number: with rho = corr + 1,
 * next = (u * (2^32 - rho) + last * rho) >> 32, u uniform.  It pulls
 * values toward their mean, so a correlated probability is not the rate
 * one gets: at 50 % next = (u + last) / 2, whose law is that of the sum
 * of u_k / 2^(k+1), the Fabius function's, and P(next <= 5 %) = 1.62e-5,
 * so `reorder 5% 50%' reorders about one packet in 62 000 (2e9 draws of
 * this model: 1 in 61 900).  The stats say what was done.  The
 * kernel's PRNG is replaced by splitmix64, seeded by the caller, so runs
 * can be repeated.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netem.h"

/* tc-netem(8): "limit packets ... default is 1000". */
#define TC_LIMIT	1000

struct crnd {
	uint32_t last, rho;
};

struct pkt {
	int64_t due;		/* ns */
	uint64_t seq;		/* arrival order, for ties */
	uint64_t fseq;		/* the packet's place in its flow */
	uint16_t len;
	uint8_t flow;
	unsigned char data[NETEM_PKT];
};

struct netem {
	struct netem_conf c;
	struct crnd delay_cor, loss_cor, dup_cor, reorder_cor;
	uint64_t rng;
	uint32_t counter;		/* packets delayed since one was reordered */
	uint64_t seq, fseq[NETEM_FLOWS];
	struct pkt *pool, **freelist, **heap, **head;
	size_t nfree, nheap, nhead;	/* head: a stack, top at nhead - 1 */
	int64_t heap_last;		/* the latest due time in the heap */
	struct netem_stats st;
};

static uint32_t
rnd32(struct netem *q)
{
	uint64_t z = (q->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* get_crandom() */
static uint32_t
crandom(struct netem *q, struct crnd *s)
{
	uint64_t value, rho;

	if (s->rho == 0)
		return rnd32(q);
	value = rnd32(q);
	rho = (uint64_t)s->rho + 1;
	s->last = (uint32_t)((value * ((1ULL << 32) - rho) +
	    (uint64_t)s->last * rho) >> 32);
	return s->last;
}

/* a + b, and a - b, held at INT64_MAX or INT64_MIN: a delay near
 * INT64_MAX ns (292 years, which tc and the kernel take) then means
 * "never" instead of a wrapped time. */
static int64_t
add_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static int64_t
sub_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* tabledist() with no table: uniform, correlated. */
static int64_t
delay_of(struct netem *q)
{
	uint32_t sigma = (uint32_t)q->c.jitter_ns;

	if (sigma == 0)
		return q->c.latency_ns;
	return add_sat(q->c.latency_ns - (int64_t)sigma,
	    (int64_t)(crandom(q, &q->delay_cor) % (2 * sigma)));
}

static bool
before(const struct pkt *a, const struct pkt *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
heap_push(struct netem *q, struct pkt *p)
{
	size_t i = q->nheap++;

	while (i > 0 && before(p, q->heap[(i - 1) / 2])) {
		q->heap[i] = q->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->heap[i] = p;
	if (q->nheap == 1 || p->due > q->heap_last)
		q->heap_last = p->due;
}

static struct pkt *
heap_pop(struct netem *q)
{
	struct pkt *top = q->heap[0], *last = q->heap[--q->nheap];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < q->nheap) {
		if (c + 1 < q->nheap && before(q->heap[c + 1], q->heap[c]))
			c++;
		if (!before(q->heap[c], last))
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->nheap > 0)
		q->heap[i] = last;
	return top;
}

size_t
netem_held(const struct netem *q)
{
	return q->nheap + q->nhead;
}

/* What a packet of flow sent ahead passes: its flow's packets held. */
static void
count_overtaken(struct netem *q, const struct pkt *p)
{
	struct netem_flow *f = &q->st.flow[p->flow];
	uint64_t n = 0, oldest = p->fseq;
	size_t i;

	for (i = 0; i < q->nheap + q->nhead; i++) {
		const struct pkt *h = i < q->nheap ? q->heap[i] :
		    q->head[i - q->nheap];

		if (h->flow == p->flow) {
			n++;
			if (h->fseq < oldest)
				oldest = h->fseq;
		}
	}
	f->overtaken += n;
	if (p->fseq - oldest > f->max_dist)
		f->max_dist = p->fseq - oldest;
}

static int
enqueue(struct netem *q, int64_t now, const void *data, size_t len,
    unsigned flow, uint64_t fseq, bool copy)
{
	struct netem_flow *f = &q->st.flow[flow];
	struct pkt *p;
	int count = 1, queued = 0;

	if (q->c.dup && !copy && q->c.dup >= crandom(q, &q->dup_cor))
		count++;
	if (q->c.loss && q->c.loss >= crandom(q, &q->loss_cor))
		count--;
	if (count == 0) {
		q->st.lost++;
		f->lost++;
		return 0;
	}
	if (netem_held(q) >= q->c.limit) {
		q->st.overflow += count;
		f->overflow += count;
		return 0;
	}
	if (count > 1) {
		q->st.dup++;
		f->dup++;
		queued = enqueue(q, now, data, len, flow, fseq, true);
	}
	p = q->freelist[--q->nfree];
	memcpy(p->data, data, len);
	p->len = (uint16_t)len;
	p->flow = (uint8_t)flow;
	p->fseq = fseq;
	p->seq = q->seq++;
	if (q->c.gap == 0 || q->counter < q->c.gap - 1 ||
	    q->c.reorder < crandom(q, &q->reorder_cor)) {
		int64_t delay = delay_of(q), t = now;

		if (q->c.rate) {
			int64_t last = INT64_MIN;

			if (q->nhead > 0)
				last = q->head[0]->due;
			if (q->nheap > 0 && q->heap_last > last)
				last = q->heap_last;
			if (last != INT64_MIN) {
				delay = sub_sat(delay, sub_sat(last, t));
				if (delay < 0)
					delay = 0;
				t = last;
			}
			delay = add_sat(delay,
			    (int64_t)(len * 1000000000ULL / q->c.rate));
		}
		p->due = add_sat(t, delay);
		q->counter++;
		heap_push(q, p);
	} else {
		p->due = now;
		q->counter = 0;
		q->st.reordered++;
		f->reordered++;
		count_overtaken(q, p);
		q->head[q->nhead++] = p;
	}
	return queued + 1;
}

int
netem_enqueue(struct netem *q, uint64_t now, const void *pkt, size_t len,
    unsigned flow)
{
	if (flow >= NETEM_FLOWS)
		flow = NETEM_FLOWS - 1;
	if (len > NETEM_PKT)
		len = NETEM_PKT;
	q->st.in++;
	q->st.flow[flow].in++;
	return enqueue(q, (int64_t)now, pkt, len, flow, q->fseq[flow]++, false);
}

size_t
netem_dequeue(struct netem *q, uint64_t now, void *buf)
{
	struct pkt *p;

	if (q->nhead > 0)
		p = q->head[--q->nhead];
	else if (q->nheap > 0 && q->heap[0]->due <= (int64_t)now)
		p = heap_pop(q);
	else
		return 0;
	memcpy(buf, p->data, p->len);
	q->freelist[q->nfree++] = p;
	q->st.out++;
	return p->len;
}

uint64_t
netem_next(const struct netem *q)
{
	if (q->nhead > 0)
		return 0;
	if (q->nheap > 0)
		return q->heap[0]->due < 0 ? 0 : (uint64_t)q->heap[0]->due;
	return UINT64_MAX;
}

void
netem_get_stats(const struct netem *q, struct netem_stats *st)
{
	*st = q->st;
}

struct netem *
netem_new(const struct netem_conf *c, uint64_t seed)
{
	struct netem *q;
	size_t n = (size_t)c->limit + 1, i;

	if ((q = calloc(1, sizeof *q)) == NULL)
		return NULL;
	q->c = *c;
	q->rng = seed;
	/* A copy may be held beyond the limit, as in the kernel: the
	 * original passed the check before the copy went in. */
	q->pool = calloc(n, sizeof *q->pool);
	q->freelist = calloc(n, sizeof *q->freelist);
	q->heap = calloc(n, sizeof *q->heap);
	q->head = calloc(n, sizeof *q->head);
	if (!q->pool || !q->freelist || !q->heap || !q->head) {
		netem_free(q);
		return NULL;
	}
	for (i = 0; i < n; i++)
		q->freelist[q->nfree++] = &q->pool[i];
	/* init_crandom(): the first `last' is random too. */
	q->delay_cor = (struct crnd){ rnd32(q), c->delay_corr };
	q->loss_cor = (struct crnd){ rnd32(q), c->loss_corr };
	q->dup_cor = (struct crnd){ rnd32(q), c->dup_corr };
	q->reorder_cor = (struct crnd){ rnd32(q), c->reorder_corr };
	return q;
}

void
netem_free(struct netem *q)
{
	if (q == NULL)
		return;
	free(q->pool);
	free(q->freelist);
	free(q->heap);
	free(q->head);
	free(q);
}

/* tc's matches(): arg is a non-empty prefix of word. */
static bool
matches(const char *arg, const char *word)
{
	return *arg && strncmp(arg, word, strlen(arg)) == 0;
}

/* tc's NEXT_IS_NUMBER(): an optional argument follows. */
static bool
next_is_number(int i, int argc, char **argv)
{
	return i + 1 < argc && isdigit((unsigned char)argv[i + 1][0]);
}

/* tc's get_percent(): "5", "5%" or "0.5" (all percent), scaled to
 * 0..UINT32_MAX. */
static int
get_percent(uint32_t *v, const char *s)
{
	char *end;
	double p;

	errno = 0;
	p = strtod(s, &end);
	if (errno || end == s || (*end && strcmp(end, "%") != 0) ||
	    !(p >= 0 && p <= 100))
		return -1;
	*v = (uint32_t)rint(p / 100 * UINT32_MAX);
	return 0;
}

/*
 * tc's get_time64() (iproute2 >= 6.9, which sends netem 64-bit times): a
 * number and s, ms, us or ns (or sec, msec, usec, nsec, with or without a
 * trailing s, in any case); a bare number is nanoseconds.  Negative and
 * overflowing numbers are refused; the rest is truncated to whole ns, as
 * tc's assignment to an s64 does.  A value past INT64_MAX is refused
 * too: tc's conversion makes it negative on x86, which the kernel
 * refuses ("negative latency").  In ns.
 */
static int
get_time(int64_t *ns, const char *s)
{
	static const struct { const char *name; double scale; } unit[] = {
		{ "s", 1e9 }, { "sec", 1e9 }, { "secs", 1e9 },
		{ "ms", 1e6 }, { "msec", 1e6 }, { "msecs", 1e6 },
		{ "us", 1e3 }, { "usec", 1e3 }, { "usecs", 1e3 },
		{ "ns", 1 }, { "nsec", 1 }, { "nsecs", 1 },
		{ "", 1 },
	};
	char *end;
	double t;
	size_t i;

	errno = 0;
	t = strtod(s, &end);
	if (end == s || t < 0 || (t == HUGE_VAL && errno == ERANGE))
		return -1;
	for (i = 0; i < sizeof unit / sizeof unit[0]; i++) {
		if (strcasecmp(end, unit[i].name) == 0) {
			t *= unit[i].scale;
			if (!(t < 9223372036854775808.0))	/* 2^63; NaN */
				return -1;
			*ns = (int64_t)t;
			return 0;
		}
	}
	return -1;
}

/* tc's get_rate64(): bits per second, or with a unit (case does not
 * matter: bps is bytes); in bytes per second. */
static int
get_rate(uint64_t *rate, const char *s)
{
	static const struct { const char *name; double scale; } unit[] = {
		{ "", 1 }, { "bit", 1 }, { "kibit", 1024 }, { "kbit", 1e3 },
		{ "mibit", 1048576 }, { "mbit", 1e6 }, { "gibit", 1073741824.0 },
		{ "gbit", 1e9 }, { "bps", 8 }, { "kibps", 8 * 1024 },
		{ "kbps", 8e3 }, { "mibps", 8 * 1048576.0 }, { "mbps", 8e6 },
		{ "gibps", 8 * 1073741824.0 }, { "gbps", 8e9 },
	};
	char *end;
	double r;
	size_t i;

	errno = 0;
	r = strtod(s, &end);
	if (errno || end == s || !(r > 0))
		return -1;
	for (i = 0; i < sizeof unit / sizeof unit[0]; i++) {
		if (strcasecmp(end, unit[i].name) == 0) {
			r = r * unit[i].scale / 8;
			if (r < 1 || r > 1e15)
				return -1;
			*rate = (uint64_t)r;
			return 0;
		}
	}
	return -1;
}

static int
bad(const char *prog, const char *what, const char *arg)
{
	if (arg)
		fprintf(stderr, "%s: bad %s `%s'\n", prog, what, arg);
	else
		fprintf(stderr, "%s: %s\n", prog, what);
	return -1;
}

int
netem_parse(struct netem_conf *c, int argc, char **argv, const char *prog)
{
	bool have_reorder = false;
	int i;

	memset(c, 0, sizeof *c);
	c->limit = TC_LIMIT;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (i + 1 >= argc)
			return bad(prog, "missing value after", a);
		if (matches(a, "limit")) {
			unsigned long l;

			errno = 0;
			l = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || l == 0 ||
			    l > 1000000)
				return bad(prog, "limit", argv[i]);
			c->limit = (uint32_t)l;
		} else if (matches(a, "latency") || matches(a, "delay")) {
			if (get_time(&c->latency_ns, argv[++i]) == -1)
				return bad(prog, "delay", argv[i]);
			if (next_is_number(i, argc, argv)) {
				if (get_time(&c->jitter_ns, argv[++i]) == -1)
					return bad(prog, "jitter", argv[i]);
				if (next_is_number(i, argc, argv) &&
				    get_percent(&c->delay_corr, argv[++i]) == -1)
					return bad(prog, "delay correlation",
					    argv[i]);
			}
		} else if (matches(a, "loss") || matches(a, "drop")) {
			if (strcmp(argv[i + 1], "random") == 0 && ++i + 1 >= argc)
				return bad(prog, "missing value after", argv[i]);
			if (get_percent(&c->loss, argv[++i]) == -1)
				return bad(prog, "loss", argv[i]);
			if (next_is_number(i, argc, argv) &&
			    get_percent(&c->loss_corr, argv[++i]) == -1)
				return bad(prog, "loss correlation", argv[i]);
		} else if (matches(a, "duplicate")) {
			if (get_percent(&c->dup, argv[++i]) == -1)
				return bad(prog, "duplicate", argv[i]);
			if (next_is_number(i, argc, argv) &&
			    get_percent(&c->dup_corr, argv[++i]) == -1)
				return bad(prog, "duplicate correlation", argv[i]);
		} else if (matches(a, "reorder")) {
			if (get_percent(&c->reorder, argv[++i]) == -1)
				return bad(prog, "reorder", argv[i]);
			have_reorder = c->reorder > 0;
			if (next_is_number(i, argc, argv) &&
			    get_percent(&c->reorder_corr, argv[++i]) == -1)
				return bad(prog, "reorder correlation", argv[i]);
		} else if (matches(a, "gap")) {
			unsigned long g;

			errno = 0;
			g = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || g > UINT32_MAX)
				return bad(prog, "gap", argv[i]);
			c->gap = (uint32_t)g;
		} else if (matches(a, "rate")) {
			if (get_rate(&c->rate, argv[++i]) == -1)
				return bad(prog, "rate", argv[i]);
		} else {
			return bad(prog, "netem option", a);
		}
	}
	if (have_reorder) {
		if (c->latency_ns == 0)
			return bad(prog, "reordering not possible without "
			    "specifying some delay", NULL);
		if (c->gap == 0)
			c->gap = 1;
	} else if (c->gap > 0) {
		return bad(prog, "gap specified without reorder probability",
		    NULL);
	}
	/* netem_change(): "capping jitter to the range acceptable by
	 * tabledist()". */
	if (c->jitter_ns > INT32_MAX)
		c->jitter_ns = INT32_MAX;
	return 0;
}
