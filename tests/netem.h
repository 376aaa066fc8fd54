/*
 * netem.h: the Linux netem qdisc's model of a path (net/sched/sch_netem.c),
 * in user space: what tool_netem runs every packet through, and what
 * unit_netem tests with a virtual clock.
 *
 * netem_parse takes tc's netem syntax (tc-netem(8)): limit PACKETS,
 * delay TIME [JITTER [CORRELATION]], loss [random] PERCENT [CORRELATION],
 * duplicate PERCENT [CORRELATION], reorder PERCENT [CORRELATION],
 * gap DISTANCE, rate RATE.  Times are tc's get_time64(): s, ms, us or ns
 * (sec, msec...), and without a unit nanoseconds (tc since iproute2 6.9;
 * older tc read microseconds there, so give a unit); rates without one
 * are bits per second, percentages may omit the `%', keywords may be
 * abbreviated, all as tc takes them.  The delay is 64-bit (`delay 3s'
 * holds 3 s); jitter is capped at INT_MAX ns, as the kernel caps it.
 *
 * Each packet is tagged with a flow (a small number the caller derives,
 * say from the source address), so that what reordering did is counted
 * per flow: how many packets went ahead, how many of that flow's held
 * packets they overtook, and how far in that flow's packet order.
 */
#ifndef NETEM_H
#define NETEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETEM_FLOWS	16	/* flows counted apart; more share the last */
#define NETEM_PKT	2048	/* largest packet held */

struct netem_conf {
	uint32_t limit;			/* packets held at most (tc: 1000) */
	int64_t latency_ns, jitter_ns;	/* jitter <= INT32_MAX */
	uint32_t delay_corr;		/* probabilities and correlations */
	uint32_t loss, loss_corr;	/* as the kernel holds them: */
	uint32_t dup, dup_corr;		/* 0..UINT32_MAX for 0..100 % */
	uint32_t reorder, reorder_corr;
	uint32_t gap;
	uint64_t rate;			/* bytes per second; 0: unlimited */
};

struct netem_flow {
	uint64_t in, lost, dup, reordered, overflow;
	uint64_t overtaken;		/* held packets of the flow passed */
	uint64_t max_dist;		/* most packets of the flow passed at once */
};

struct netem_stats {
	uint64_t in, out, lost, dup, reordered, overflow;
	struct netem_flow flow[NETEM_FLOWS];
};

struct netem;

/* Parse tc netem arguments into c: 0, or -1 after printing why on
 * stderr (prog: the name to start the message with). */
int netem_parse(struct netem_conf *c, int argc, char **argv, const char *prog);

/* A queue for c with the random stream seeded by seed, or NULL (out of
 * memory).  Freed by netem_free. */
struct netem *netem_new(const struct netem_conf *c, uint64_t seed);
void netem_free(struct netem *q);

/* One packet (len <= NETEM_PKT) of flow entering at now (ns): dropped,
 * held, or sent at once (reordered: to the head of the queue), maybe
 * twice (duplicated).  Returns the copies queued (0, 1 or 2). */
int netem_enqueue(struct netem *q, uint64_t now, const void *pkt, size_t len,
    unsigned flow);
/* The next packet due at now into buf (NETEM_PKT bytes): its length, or
 * 0 when none is due. */
size_t netem_dequeue(struct netem *q, uint64_t now, void *buf);
/* When the next held packet is due (ns), UINT64_MAX when none is held. */
uint64_t netem_next(const struct netem *q);
size_t netem_held(const struct netem *q);
void netem_get_stats(const struct netem *q, struct netem_stats *st);

#endif
