/*
 * unit_netem: tests/netem.c, the netem model tool_netem runs, against
 * netem's documented behaviour (tc-netem(8), sch_netem.c), on a virtual
 * clock:
 *   parse: tc's syntax, units, defaults and refusals
 *   times: tc's get_time64, unit by unit; jitter capped as the kernel does
 *   long: delay 3s, and a delay near 2^63 ns that must not wrap
 *   delay, jitter: when packets leave; jitter's delays fill
 *	[delay - jitter, delay + jitter) uniformly, and reorder
 *   loss, duplicate: the rates, within 5 sigma
 *   gap: `reorder 100% gap 5' sends every 5th packet at once, ahead of
 *	the 4 (then 8) held, and the per-flow counts say so exactly
 *   reorder: a reordered packet overtakes every packet held, at the rate
 *	asked for; with correlation, netem's rule clusters them, and at
 *	`reorder 5% 50%' leaves almost none (1 in 62000)
 *   rate, limit: serialisation at the rate; packets beyond the limit
 *	dropped
 *   pace: offered above the rate, packets leave exactly one
 *	serialisation time apart; below it, each waits only for itself
 *   ratedelay: delay with rate, netem's rule for the wait behind a
 *	held packet, due times exact
 *   seed: the same seed, the same decisions
 * `unit_netem NAME' runs one.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netem.h"

#define MS	1000000ULL	/* ns */
#define T0	(1000 * MS)	/* the virtual clock starts here */

static int failures;

static void
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

#define CHECK(cond, ...) do {				\
	if (!(cond)) {						\
		fail(__VA_ARGS__);				\
		return -1;					\
	}							\
} while (0)

/* A queue from a tc-style string of options. */
static struct netem *
make(const char *opts, uint64_t seed)
{
	struct netem_conf c;
	char buf[256], *argv[32], *tok;
	int argc = 0;

	snprintf(buf, sizeof buf, "%s", opts);
	for (tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	if (netem_parse(&c, argc, argv, "unit_netem") == -1)
		return NULL;
	return netem_new(&c, seed);
}

static int
parse_ok(const char *opts, struct netem_conf *c)
{
	char buf[256], *argv[32], *tok;
	int argc = 0;

	snprintf(buf, sizeof buf, "%s", opts);
	for (tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	return netem_parse(c, argc, argv, "unit_netem (expected)");
}

/* Packets carry their number in their first 4 bytes. */
static void
put(struct netem *q, uint64_t now, uint32_t id, unsigned flow, size_t len)
{
	unsigned char p[NETEM_PKT];

	memset(p, 0, len);
	memcpy(p, &id, sizeof id);
	netem_enqueue(q, now, p, len, flow);
}

/* The next packet due by now: its number, or -1. */
static int64_t
get(struct netem *q, uint64_t now)
{
	unsigned char p[NETEM_PKT];
	uint32_t id;

	if (netem_dequeue(q, now, p) == 0)
		return -1;
	memcpy(&id, p, sizeof id);
	return id;
}

static int
test_parse(void)
{
	struct netem_conf c;
	const uint32_t pct = UINT32_MAX / 100;	/* 1 % */

	CHECK(parse_ok("delay 40ms 5ms loss 2% reorder 5% 50%", &c) == 0,
	    "the issue's netem line refused");
	CHECK(c.latency_ns == 40 * (int64_t)MS && c.jitter_ns == 5 * (int64_t)MS,
	    "delay 40ms 5ms: %" PRId64 " %" PRId64, c.latency_ns, c.jitter_ns);
	CHECK(c.loss > 2 * pct - 100 && c.loss < 2 * pct + 100, "loss 2%%: %u",
	    c.loss);
	CHECK(c.reorder > 5 * pct - 100 && c.reorder < 5 * pct + 100 &&
	    c.reorder_corr > 50 * pct - 100 && c.reorder_corr < 50 * pct + 100,
	    "reorder 5%% 50%%: %u %u", c.reorder, c.reorder_corr);
	CHECK(c.gap == 1, "reorder sets gap 1, got %u", c.gap);
	CHECK(c.limit == 1000, "default limit %u", c.limit);
	/* tc: a bare percentage is a percentage, a bare rate bits per
	 * second; keywords may be abbreviated. */
	CHECK(parse_ok("del 40ms lim 7 dup 1 rate 8000", &c) == 0 &&
	    c.latency_ns == 40 * (int64_t)MS && c.limit == 7 &&
	    c.dup > pct - 100 && c.dup < pct + 100 && c.rate == 1000,
	    "bare numbers: %" PRId64 " %u %u %" PRIu64, c.latency_ns, c.limit,
	    c.dup, c.rate);
	CHECK(parse_ok("rate 100mbit", &c) == 0 && c.rate == 12500000,
	    "100mbit: %" PRIu64, c.rate);
	CHECK(parse_ok("rate 2MBps", &c) == 0 && c.rate == 2000000,
	    "2MBps: %" PRIu64, c.rate);
	CHECK(parse_ok("loss random 1.5% 25%", &c) == 0 &&
	    c.loss > (uint32_t)(1.5 * pct) - 100 && c.loss_corr > 25 * pct - 100,
	    "loss random 1.5%% 25%%: %u %u", c.loss, c.loss_corr);
	CHECK(parse_ok("delay 1s 10us 30", &c) == 0 && c.latency_ns ==
	    1000000000 && c.jitter_ns == 10000 && c.delay_corr > 30 * pct - 100,
	    "delay 1s 10us 30: %" PRId64 " %" PRId64, c.latency_ns, c.jitter_ns);
	CHECK(parse_ok("delay 10ms reorder 25% gap 5", &c) == 0 && c.gap == 5,
	    "gap 5: %u", c.gap);
	/* Refused, as tc refuses them, or nonsense. */
	CHECK(parse_ok("reorder 5%", &c) == -1, "reorder without delay taken");
	CHECK(parse_ok("delay 10ms gap 5", &c) == -1, "gap without reorder taken");
	CHECK(parse_ok("delay", &c) == -1, "delay without a time taken");
	CHECK(parse_ok("delay 10parsecs", &c) == -1, "bad unit taken");
	CHECK(parse_ok("loss 101%", &c) == -1, "loss 101%% taken");
	CHECK(parse_ok("loss -1", &c) == -1, "negative loss taken");
	CHECK(parse_ok("rate 10furlongs", &c) == -1, "bad rate taken");
	CHECK(parse_ok("limit 0", &c) == -1, "limit 0 taken");
	CHECK(parse_ok("corrupt 1%", &c) == -1, "an option we lack taken");
	printf("parse: tc's syntax, units and refusals\n");
	return 0;
}

/* One delay through get_time: its ns, or -1 when refused. */
static int64_t
time_of(const char *t)
{
	struct netem_conf c;
	char opts[128];

	snprintf(opts, sizeof opts, "delay %s", t);
	return parse_ok(opts, &c) == -1 ? -1 : c.latency_ns;
}

/*
 * tc's get_time64() (iproute2 6.9 on): a bare number is ns; s, ms, us, ns
 * and their long forms, in any case; negative or overflowing refused;
 * truncated to whole ns.  The kernel's 64-bit latency takes `delay 3s'
 * and more; netem_change() caps jitter at INT_MAX ns, silently.
 */
static int
test_times(void)
{
	static const struct { const char *in; int64_t ns; } t[] = {
		{ "100", 100 }, { "2.9", 2 }, { "0", 0 },
		{ "3s", 3000000000 }, { "3sec", 3000000000 },
		{ "3secs", 3000000000 }, { "3S", 3000000000 },
		{ "40ms", 40000000 }, { "40msec", 40000000 },
		{ "40MSecs", 40000000 }, { "1.5us", 1500 }, { "7usec", 7000 },
		{ "7usecs", 7000 }, { "25ns", 25 }, { "25nsec", 25 },
		{ "25NSECS", 25 }, { "0.5s", 500000000 }, { "1e3us", 1000000 },
		{ "3600s", 3600000000000 },
		{ "9223372036s", 9223372036000000000 },
		{ "-1ms", -1 }, { "-0.5", -1 }, { "ms", -1 },
		{ "10m", -1 }, { "10parsecs", -1 },
		{ "1e400", -1 }, { "10000000000s", -1 },
		{ "9223372036854775807", -1 },	/* a double: 2^63 */
	};
	struct netem_conf c;
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		CHECK(time_of(t[i].in) == t[i].ns, "delay `%s': %" PRId64
		    " ns, want %" PRId64, t[i].in, time_of(t[i].in), t[i].ns);
	CHECK(parse_ok("delay 3s 1s", &c) == 0 && c.latency_ns == 3000000000 &&
	    c.jitter_ns == 1000000000, "delay 3s 1s: %" PRId64 " %" PRId64,
	    c.latency_ns, c.jitter_ns);
	CHECK(parse_ok("delay 10s 5s 25%", &c) == 0 &&
	    c.jitter_ns == 2147483647 && c.delay_corr > 0,
	    "jitter 5s not capped at INT_MAX ns: %" PRId64, c.jitter_ns);
	CHECK(parse_ok("delay 1s 5", &c) == 0 && c.jitter_ns == 5,
	    "bare jitter: %" PRId64, c.jitter_ns);
	CHECK(parse_ok("delay 1s -5ms", &c) == -1, "negative jitter taken");
	printf("times: tc's get_time64 units, refusals, 64-bit delay, "
	    "jitter capped\n");
	return 0;
}

/* `delay 3s': held 3 s; a delay near 2^63 ns, with jitter, is never due
 * (the sum is held at INT64_MAX, not wrapped into the past). */
static int
test_long(void)
{
	struct netem *q = make("delay 3s", 11);

	CHECK(q, "no queue");
	put(q, T0, 1, 0, 100);
	CHECK(get(q, T0 + 3000 * MS - 1) == -1 && get(q, T0 + 3000 * MS) == 1,
	    "delay 3s: not due at 3 s");
	netem_free(q);
	q = make("delay 9223372036854774000ns 2s", 12);
	CHECK(q, "no queue for a 292-year delay");
	put(q, T0, 2, 0, 100);
	CHECK(netem_next(q) == INT64_MAX && get(q, T0 + 3600000 * MS) == -1,
	    "292 years with jitter: due at %" PRIu64, netem_next(q));
	netem_free(q);
	printf("long: delay 3s held 3 s; 2^63 ns never due\n");
	return 0;
}

static int
test_delay(void)
{
	struct netem *q = make("delay 40ms limit 100", 1);
	uint32_t i;
	int64_t id;

	CHECK(q, "no queue");
	for (i = 0; i < 10; i++)
		put(q, T0 + i * MS, i, 0, 100);
	CHECK(get(q, T0 + 40 * MS - 1) == -1, "a packet left before 40 ms");
	for (i = 0; i < 10; i++) {
		CHECK(netem_next(q) == T0 + (40 + i) * MS, "packet %u due at %"
		    PRIu64, i, netem_next(q) - T0);
		CHECK((id = get(q, T0 + (40 + i) * MS)) == i,
		    "packet %" PRId64 " left as the %u-th", id, i);
	}
	CHECK(netem_next(q) == UINT64_MAX, "something still held");
	netem_free(q);
	printf("delay: each packet leaves 40 ms after it came, in order\n");
	return 0;
}

static bool near(uint64_t got, uint64_t n, double p);

static int
test_jitter(void)
{
	struct netem *q = make("delay 20ms 10ms limit 100000", 2);
	uint64_t n = 20000, i, lo = UINT64_MAX, hi = 0, sum = 0, late = 0;
	uint64_t bin[10] = { 0 };	/* 2 ms wide, from 10 ms */
	uint64_t t;
	int64_t id, last = -1;
	uint64_t *sent = malloc(n * sizeof *sent);

	CHECK(q && sent, "no queue");
	for (i = 0; i < n; i++) {
		sent[i] = T0 + i * 100000;	/* one every 0.1 ms */
		put(q, sent[i], (uint32_t)i, 0, 100);
	}
	for (t = T0; netem_held(q) > 0; t = netem_next(q)) {
		while ((id = get(q, t)) >= 0) {
			uint64_t d = t - sent[id];

			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			sum += d;
			if (d >= 10 * MS && d < 30 * MS)
				bin[(d - 10 * MS) / (2 * MS)]++;
			late += id < last;
			if (id > last)
				last = id;
		}
	}
	free(sent);
	netem_free(q);
	printf("jitter: delays %.2f..%.2f ms, mean %.2f ms, %" PRIu64
	    " of %" PRIu64 " packets behind a later one\n", lo / 1e6, hi / 1e6,
	    sum / (double)n / 1e6, late, n);
	CHECK(lo >= 10 * MS && hi < 30 * MS, "delays outside 10..30 ms");
	/* Uniform over [10, 30) ms: that 20000 draws miss the last 0.1 ms
	 * at one end has P = 0.995^20000 = 3e-44. */
	CHECK(lo < 10 * MS + MS / 10 && hi >= 30 * MS - MS / 10,
	    "delays do not fill 10..30 ms: %.3f..%.3f", lo / 1e6, hi / 1e6);
	for (i = 0; i < 10; i++)
		CHECK(near(bin[i], n, 0.1), "delays not uniform: %" PRIu64
		    " of %" PRIu64 " in %" PRIu64 "..%" PRIu64 " ms", bin[i], n,
		    10 + 2 * i, 12 + 2 * i);
	CHECK(fabs(sum / (double)n / 1e6 - 20) < 0.2, "mean delay off");
	CHECK(late > n / 2, "jitter of 10 ms at 0.1 ms spacing reorders most");
	return 0;
}

/* n packets through opts at one per ms, all drained: the stats. */
static int
run_n(const char *opts, uint64_t seed, uint64_t n, struct netem_stats *st,
    uint64_t *out)
{
	struct netem *q = make(opts, seed);
	uint64_t i, t;

	CHECK(q, "no queue for %s", opts);
	*out = 0;
	for (i = 0; i < n; i++) {
		t = T0 + i * MS;
		put(q, t, (uint32_t)i, 0, 100);
		while (get(q, t) >= 0)
			(*out)++;
	}
	for (t = netem_next(q); t != UINT64_MAX; t = netem_next(q))
		while (get(q, t) >= 0)
			(*out)++;
	netem_get_stats(q, st);
	netem_free(q);
	return 0;
}

/* |got - p n| within 5 standard deviations of a binomial. */
static bool
near(uint64_t got, uint64_t n, double p)
{
	return fabs((double)got - p * n) <= 5 * sqrt(n * p * (1 - p)) + 1;
}

static int
test_loss(void)
{
	struct netem_stats st;
	uint64_t n = 200000, out;

	if (run_n("loss 2%", 3, n, &st, &out) == -1)
		return -1;
	printf("loss 2%%: %" PRIu64 " of %" PRIu64 " lost, %" PRIu64 " out\n",
	    st.lost, n, out);
	CHECK(near(st.lost, n, 0.02), "loss 2%%: %" PRIu64 " lost", st.lost);
	CHECK(out + st.lost == n && st.flow[0].lost == st.lost,
	    "loss: %" PRIu64 " out + %" PRIu64 " lost != %" PRIu64, out,
	    st.lost, n);
	if (run_n("duplicate 5% delay 1ms", 4, n, &st, &out) == -1)
		return -1;
	printf("duplicate 5%%: %" PRIu64 " copies, %" PRIu64 " out\n", st.dup,
	    out);
	CHECK(near(st.dup, n, 0.05) && out == n + st.dup,
	    "duplicate 5%%: %" PRIu64 " copies, %" PRIu64 " out", st.dup, out);
	return 0;
}

/* `reorder 100% gap 5': every 5th packet goes at once (tc-netem(8)). */
static int
test_gap(void)
{
	struct netem *q = make("delay 100ms reorder 100% gap 5", 5);
	struct netem_stats st;
	uint32_t i;
	int64_t id;

	CHECK(q, "no queue");
	for (i = 0; i < 10; i++) {
		put(q, T0 + i * MS, i, 3, 100);
		id = get(q, T0 + i * MS);
		CHECK(id == ((i % 5 == 4) ? (int64_t)i : -1),
		    "gap 5: packet %u: %" PRId64 " left at once", i, id);
	}
	netem_get_stats(q, &st);
	/* Packet 4 passed 0-3; packet 9 passed 0-3 and 5-8. */
	CHECK(st.reordered == 2 && st.flow[3].reordered == 2 &&
	    st.flow[3].overtaken == 12 && st.flow[3].max_dist == 9,
	    "gap 5: reordered %" PRIu64 " overtaken %" PRIu64 " max_dist %"
	    PRIu64, st.flow[3].reordered, st.flow[3].overtaken,
	    st.flow[3].max_dist);
	for (i = 0; i < 10; i++)
		if (i % 5 != 4)
			CHECK(get(q, T0 + (100 + i) * MS) == i, "gap 5: held "
			    "packet %u out of order", i);
	netem_free(q);
	printf("gap: reorder 100%% gap 5 sent packets 4 and 9 at once, past "
	    "12 held, 9 apart at most\n");
	return 0;
}

static int correlated(uint64_t n, double p, double lo, double hi,
    double after_min);

/*
 * reorder 5%, 40 ms, two flows interleaved: about 5 % of each flow goes
 * at once, and each leaves before every packet held; then the same
 * with 50 % correlation.
 */
static int
test_reorder(void)
{
	struct netem *q = make("delay 40ms reorder 5% limit 100000", 6);
	struct netem_stats st;
	uint64_t n = 200000, i, early = 0, overtook = 0;
	CHECK(q, "no queue");
	for (i = 0; i < n; i++) {
		uint64_t t = T0 + i * 100000;	/* 400 held */
		int64_t id;

		while (get(q, t) >= 0)
			;
		put(q, t, (uint32_t)i, i % 2, 100);
		id = get(q, t);
		if (id >= 0) {
			CHECK(id == (int64_t)i, "packet %" PRId64 " left at %"
			    PRIu64, id, i);
			early++;
			overtook += netem_held(q);
		}
	}
	netem_get_stats(q, &st);
	netem_free(q);
	printf("reorder 5%%: %" PRIu64 " of %" PRIu64 " sent at once, each "
	    "past %.0f held, %.0f of its flow; flows: %" PRIu64 "/%" PRIu64
	    " reordered, max distance %" PRIu64 "/%" PRIu64 "\n", early, n,
	    early ? (double)overtook / early : 0, early ? (double)
	    (st.flow[0].overtaken + st.flow[1].overtaken) / early : 0,
	    st.flow[0].reordered, st.flow[1].reordered, st.flow[0].max_dist,
	    st.flow[1].max_dist);
	CHECK(near(early, n, 0.05) && st.reordered == early, "reorder 5%%: %"
	    PRIu64 " reordered", early);
	CHECK(st.flow[0].reordered + st.flow[1].reordered == early &&
	    near(st.flow[0].reordered, n / 2, 0.05), "per flow: %" PRIu64
	    " + %" PRIu64, st.flow[0].reordered, st.flow[1].reordered);
	/* 40 ms at 10 packets a ms: 399 held, 199 or 200 of the same flow
	 * (less the few reordered), all passed, 199 apart in its order. */
	CHECK(st.flow[0].overtaken + st.flow[1].overtaken >= 185 * early &&
	    st.flow[0].overtaken + st.flow[1].overtaken <= 200 * early &&
	    st.flow[0].max_dist == 199 && st.flow[1].max_dist == 199,
	    "overtaken %" PRIu64 "+%" PRIu64 " max_dist %" PRIu64,
	    st.flow[0].overtaken, st.flow[1].overtaken, st.flow[0].max_dist);

	return correlated(n, 0.5, 0.49, 0.51, 0.6) == -1 ||
	    correlated(n, 0.05, 0, 0.001, 0) == -1 ? -1 : 0;
}

/*
 * `reorder P% 50%': netem's crandom x = (u + x') / 2 is symmetric about
 * 1/2, so at P = 50 % half the packets still go ahead, but clustered
 * (a low x' makes a low x likely); at P = 5 % the law of x, the sum of
 * u_k / 2^(k+1), leaves almost nothing below 0.05.  The share reordered
 * must lie in [lo, hi], and the share right after another above after.
 */
static int
correlated(uint64_t n, double p, double lo, double hi, double after_min)
{
	char opts[64];
	struct netem *q;
	uint64_t i, early = 0, after = 0;
	double rate;
	bool prev = false;

	snprintf(opts, sizeof opts, "delay 40ms reorder %g%% 50%% limit 100000",
	    100 * p);
	q = make(opts, 7);
	CHECK(q, "no queue");
	for (i = 0; i < n; i++) {
		uint64_t t = T0 + i * 100000;
		bool now;

		while (get(q, t) >= 0)
			;
		put(q, t, (uint32_t)i, 0, 100);
		now = get(q, t) >= 0;
		early += now;
		after += now && prev;
		prev = now;
	}
	netem_free(q);
	rate = (double)early / n;
	printf("%s: %" PRIu64 " of %" PRIu64 " (%.3f %%) sent at once, %.0f %% "
	    "of them right after another\n", opts, early, n, 100 * rate,
	    early ? 100.0 * after / early : 0);
	CHECK(rate >= lo && rate <= hi, "%s: %.3f %% reordered", opts,
	    100 * rate);
	CHECK(after_min == 0 || (double)after / early > after_min,
	    "%s: no clustering: %" PRIu64 " of %" PRIu64 " followed another",
	    opts, after, early);
	return 0;
}

static int
test_rate(void)
{
	struct netem *q = make("rate 8mbit limit 10", 8);
	struct netem_stats st;
	uint32_t i;

	CHECK(q, "no queue");
	/* 1 MB/s: a 1000-byte packet takes 1 ms. */
	for (i = 0; i < 20; i++)
		put(q, T0, i, 0, 1000);
	netem_get_stats(q, &st);
	CHECK(netem_held(q) == 10 && st.overflow == 10, "limit 10: %zu held, %"
	    PRIu64 " dropped", netem_held(q), st.overflow);
	for (i = 0; i < 10; i++) {
		CHECK(get(q, T0 + (i + 1) * MS - 1) == -1, "packet %u early", i);
		CHECK(get(q, T0 + (i + 1) * MS) == i, "packet %u late", i);
	}
	netem_free(q);
	printf("rate: 8mbit serialises 1000-byte packets 1 ms apart; limit 10 "
	    "dropped the other 10\n");
	return 0;
}

/* n packets of len bytes offered every gap ns from start, each sent when
 * due: 0 if packet k left at exactly start + first + k * step ns, else
 * -1 after saying which did not. */
static int
paced(struct netem *q, uint64_t start, uint64_t n, uint64_t gap, size_t len,
    uint64_t first, uint64_t step)
{
	uint64_t k, left = 0, t, want;
	int64_t id;

	for (k = 0; k <= n; k++) {
		uint64_t arrive = k < n ? start + k * gap : UINT64_MAX;

		while ((t = netem_next(q)) <= arrive && t != UINT64_MAX) {
			want = start + first + left * step;
			CHECK((id = get(q, t)) == (int64_t)left && t == want,
			    "packet %" PRId64 " left at +%" PRIu64 " ns, want "
			    "packet %" PRIu64 " at +%" PRIu64, id, t - start, left,
			    want - start);
			left++;
		}
		if (k < n)
			put(q, arrive, (uint32_t)k, 0, len);
	}
	CHECK(left == n, "%" PRIu64 " of %" PRIu64 " packets left", left, n);
	return 0;
}

/*
 * rate 80mbit is 10 MB/s: a 1500-byte packet takes 150 us.  Offered at
 * 120 Mbit/s (one every 100 us), packet k leaves at (k + 1) * 150 us, no
 * sooner: the queue grows and the link carries 80 Mbit/s, no more, no
 * less.  Offered at 40 Mbit/s (one every 300 us) each leaves 150 us after
 * it came, waiting for no other.
 */
static int
test_pace(void)
{
	struct netem *q = make("rate 80mbit limit 100000", 13);
	uint64_t n = 10000;

	CHECK(q, "no queue");
	if (paced(q, T0, n, 100000, 1500, 150000, 150000) == -1 ||
	    paced(q, T0 + 2000 * MS, n, 300000, 1500, 150000, 300000) == -1) {
		netem_free(q);
		return -1;
	}
	netem_free(q);
	printf("pace: rate 80mbit, 1500-byte packets offered every 100 us "
	    "left every 150 us (%.1f Mbit/s); every 300 us, 150 us after "
	    "they came\n", 1500 * 8 / 150e-6 / 1e6);
	return 0;
}

/*
 * delay 10ms with rate 8mbit (1000 bytes: 1 ms): a packet behind a held
 * one starts when that one is due, less the part of its delay that wait
 * already covered (sch_netem.c netem_enqueue, "time bonus"), then takes
 * its 1 ms; a packet into an empty queue gets delay and 1 ms.
 */
static int
test_ratedelay(void)
{
	static const struct { uint64_t at, due; } p[] = {
		{ 0, 11 },	/* empty queue: 10 + 1 */
		{ 0, 12 },	/* behind it, wait 11 > 10: 11 + 1 */
		{ 5, 16 },	/* behind 12: 10 - 7 = 3 left, 12 + 3 + 1 */
		{ 5, 17 },	/* behind 16: 16 + 1 */
		{ 100, 111 },	/* empty again */
	};
	struct netem *q = make("delay 10ms rate 8mbit", 14);
	const uint32_t n = sizeof p / sizeof p[0];
	uint32_t i, left = 0;
	uint64_t t;
	int64_t id;

	CHECK(q, "no queue");
	for (i = 0; i <= n; i++) {
		uint64_t arrive = i < n ? T0 + p[i].at * MS : UINT64_MAX;

		while ((t = netem_next(q)) <= arrive && t != UINT64_MAX) {
			CHECK((id = get(q, t)) == left && t == T0 + p[left].due * MS,
			    "packet %" PRId64 " left at %.3f ms, want packet %u "
			    "at %" PRIu64 " ms", id, (t - T0) / 1e6, left,
			    p[left].due);
			left++;
		}
		if (i < n)
			put(q, arrive, i, 0, 1000);
	}
	netem_free(q);
	CHECK(left == n, "%u of %u packets left", left, n);
	printf("ratedelay: delay 10ms rate 8mbit: due at 11, 12, 16, 17 and "
	    "111 ms, as netem counts the wait against the delay\n");
	return 0;
}

static int
test_seed(void)
{
	struct netem_stats a, b, c;
	uint64_t oa, ob, oc;

	if (run_n("delay 1ms 1ms loss 10% duplicate 10% reorder 10%", 9, 10000,
	    &a, &oa) == -1 ||
	    run_n("delay 1ms 1ms loss 10% duplicate 10% reorder 10%", 9, 10000,
	    &b, &ob) == -1 ||
	    run_n("delay 1ms 1ms loss 10% duplicate 10% reorder 10%", 10, 10000,
	    &c, &oc) == -1)
		return -1;
	CHECK(a.lost == b.lost && a.dup == b.dup && a.reordered == b.reordered &&
	    oa == ob, "the same seed gave different runs");
	CHECK(a.lost != c.lost || a.dup != c.dup || a.reordered != c.reordered,
	    "another seed gave the same run");
	printf("seed: repeatable\n");
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "parse", test_parse }, { "times", test_times },
	{ "long", test_long }, { "delay", test_delay },
	{ "jitter", test_jitter }, { "loss", test_loss }, { "gap", test_gap },
	{ "reorder", test_reorder }, { "rate", test_rate },
	{ "pace", test_pace }, { "ratedelay", test_ratedelay },
	{ "seed", test_seed },
};

int
main(int argc, char **argv)
{
	size_t i;
	int ran = 0;

	for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		ran++;
		tests[i].fn();
	}
	if (ran == 0) {
		fprintf(stderr, "unit_netem: no test `%s'\n", argv[1]);
		return 1;
	}
	if (failures) {
		printf("unit_netem: %d failed\n", failures);
		return 1;
	}
	printf("unit_netem: all passed\n");
	return 0;
}
