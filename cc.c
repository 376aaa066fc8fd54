/*
 * cc.c: BBR congestion control (draft-ietf-ccwg-bbr, "BBR Congestion
 * Control"), with the delivery rate estimation it builds on
 * (draft-cheng-iccrg-delivery-rate-estimation).
 *
 * Its model of the path is the bottleneck bandwidth (the most delivered
 * per unit of time lately) and the round-trip propagation time (the
 * least RTT lately); it paces at gain * bandwidth and keeps about
 * cwnd_gain * BDP in flight.  Random losses do not shrink it: only a loss
 * rate above BBR_LOSS_THRESH while probing bounds what it keeps in
 * flight, and only the loss beyond what the path loses anyway.
 *
 * Random loss is not congestion.  A path that drops a few percent of
 * packets at random (radio links, a policed or faulty hop) drops as many
 * whether we send more or less; a queue that overflows drops only what
 * goes beyond it.  PCC (Dong et al., "PCC: Re-architecting Congestion
 * Control for Consistent High Performance", NSDI 2015, §2) tells them
 * apart by comparing the loss at a higher and a lower rate: loss that
 * does not grow with the rate is not the rate's doing.  BBR's probing is
 * such a comparison: it sends more for a round (1.25), then cruises
 * (1.0).  So the loss rate of packets sent while cruising over the last
 * BBR_BASE_ROUNDS rounds is the path's own (the baseline), and a probe
 * is too high when its loss rate exceeds the baseline by BBR_LOSS_THRESH
 * (in Startup, whose rate doubles each round, the baseline is the loss
 * rate of the rounds before).  Cruising counts only while the round trip
 * shows no queue (within BBR_QUEUE_SHARE of min_rtt): where others fill
 * a shared queue, loss while cruising is congestion too, as TCP Veno
 * (Fu and Liew, IEEE JSAC 21(2), 2003) tells random loss from congestion
 * loss by the backlog the RTT shows.  So where loss is congestion the
 * baseline stays about 0 and this is the draft's rule; where it is
 * random, probing goes on as in Linux's BBR, which ignores loss below
 * 20 % (its long-term "policer" detector).
 */
#include <math.h>
#include <stdlib.h>

#include "cc.h"

/* RFC 9002 §7.2: "Endpoints SHOULD use an initial congestion window of
 * ten times the maximum datagram size (max_datagram_size), while limiting
 * the window to the larger of 14,720 bytes or twice the maximum datagram
 * size." */
#define INITIAL_WINDOW_PKTS 10
#define INITIAL_WINDOW_BYTES 14720
#define MIN_WINDOW_PKTS	2
/* "BBRStartupPacingGain = 4*ln(2) = 2.77": the least gain that still
 * doubles the sending rate every round trip in Startup. */
#define BBR_STARTUP_PACING_GAIN	2.77
/* "BBRStartupCwndGain = 2", and "BBRDefaultCwndGain = 2" afterwards. */
#define BBR_CWND_GAIN	2.0
/* "BBRDrainPacingGain = 0.35" (draft -01; any gain up to 1/cwnd_gain
 * works): Drain empties in about a round the queue Startup built. */
#define BBR_DRAIN_PACING_GAIN 0.35
/* "BBRPacingMarginPercent = 1": pace a little below the estimate so that
 * the bottleneck queue drains. */
#define BBR_PACING_MARGIN 0.01
/* BBRCheckFullBWReached: Startup ends after three rounds in a row in
 * which the bandwidth grew by less than 25 %. */
#define BBR_FULL_BW_THRESH 1.25
#define BBR_FULL_BW_CNT	3
/* "BBRLossThresh = 2%": the loss rate the path is allowed while probing,
 * here above the baseline; beyond it, what was in flight is too much. */
#define BBR_LOSS_THRESH	0.02
/* Rounds of cruising whose loss rate is the baseline: a gain cycle's;
 * and the queue, as a share of min_rtt, below which cruising counts
 * (larger than the pacing gain's 1.25 - 1 and the jitter of most paths). */
#define BBR_BASE_ROUNDS	8
#define BBR_QUEUE_SHARE	0.25
/* Spurious losses remembered for lost_since: a loss taken back must
 * not count as lost since a packet sent after it was declared, so each
 * is kept with where it stood in the count of bytes lost.  Losses prove
 * spurious within about a round trip of being declared (stream.c drops
 * them after two PTOs), so only the latest matter to the packets in
 * flight; this holds a round's worth at 5 % reordering of 1,000 packets
 * a round trip, and one forgotten only makes lost_since count more. */
#define BBR_SPURIOUS_KEPT 64
/* "BBRStartupFullLossCnt = 6": Startup also ends after a round that lost
 * more than BBR_LOSS_THRESH in at least this many packets. */
#define BBR_STARTUP_LOSS_CNT 6
/* Rounds in a row that must be that lossy: see check_full_pipe. */
#define BBR_STARTUP_LOSS_ROUNDS 2
/* A Startup that ended for loss (check_full_pipe) goes on if those
 * losses prove spurious (cc_on_spurious), for this many rounds after
 * it ended; the draft's BBRHandleSpuriousLossDetection sets no limit.
 * The losses judged are of the BBR_STARTUP_LOSS_ROUNDS rounds before
 * the end, declared within a loss delay (at most two round trips,
 * stream.c's TIME_THRESH_8_MAX) of being sent; a reordered one is
 * acknowledged within about the same: four rounds cover both rounds'
 * packets.  Later, Drain and ProbeBW have acted on the bound from loss,
 * and a Startup taken up again would double the rate on old evidence. */
#define BBR_LOSS_EXIT_ROUNDS 4
/* A round lasts at least min_rtt less 1/BBR_ROUND_SLACK of it (ours; the
 * draft has no such floor).  A packet that overtook the others (netem's
 * reordering sends it without the one-way delay) is delivered after
 * about half a round trip, so the floor is well above a half; a quarter
 * short of min_rtt leaves room for ACKs that come early or late by the
 * peer's ACK delay and the jitter of the path. */
#define BBR_ROUND_SLACK	4
/* "BBRBeta = 0.7": when loss says the flight was too high, the bound on
 * it is at least this share of the BDP. */
#define BBR_BETA	0.7
/* "BBRMinPipeCwnd = 4 * SMSS". */
#define BBR_MIN_PIPE_PKTS 4
/* BBRv1's windowed max filter of the bandwidth spans 10 round trips:
 * longer than a ProbeBW gain cycle, so it keeps the last probe's result. */
#define BBR_BW_ROUNDS	10
/* "MinRTTFilterLen = 10 seconds", "ProbeRTTDuration = 200 ms",
 * "BBRProbeRTTCwndGain = 0.5". */
#define BBR_MIN_RTT_US	10000000
#define BBR_PROBE_RTT_US 200000
#define BBR_PROBE_RTT_CWND_GAIN 0.5
/* RFC 9002 §6.1.2: "The RECOMMENDED value of the timer granularity
 * (kGranularity) is 1 millisecond." */
#define GRANULARITY_US	1000
/* The send quantum is the rate of a millisecond, between 2 packets and
 * 64 KB; cwnd allows three of them more, for ACKs that come in bursts
 * (ours acknowledge up to 10 packets at once). */
#define BBR_QUANTUM_US	1000
#define BBR_QUANTUM_MAX	65536
#define BBR_QUANTA	3
/* ProbeBW's gain cycle, as BBRv1: a round probing for more bandwidth at
 * 1.25, one draining the queue that made at 0.75, six cruising at 1. */
#define BBR_CYCLE_LEN	8
static const double cycle_gain[BBR_CYCLE_LEN] = {
	1.25, 0.75, 1, 1, 1, 1, 1, 1
};

/* cc_pkt.flags */
#define PF_APP_LIMITED	0x01	/* sent while the sender was app-limited */
#define PF_PROBING	0x02	/* sent while BBR probed for bandwidth */
#define PF_CRUISING	0x04	/* sent in ProbeBW at a gain of 1 or less,
				 * with no queue in sight */

/* A delivery rate sample: what one ACK tells of the path, taken from the
 * last sent of the packets it newly acknowledges. */
struct rate_sample {
	bool have, app_limited, probing;
	uint64_t pn, prior_delivered, send_elapsed, ack_elapsed;
	uint64_t tx_in_flight, prior_lost;
	uint64_t newly_acked;
};

enum { BBR_STARTUP, BBR_DRAIN, BBR_PROBE_BW, BBR_PROBE_RTT };

/* BBR's state, names as in the draft; bandwidths in bytes per us. */
struct cc {
	double mss, cwnd;
	uint64_t in_flight;		/* as of the ACK being processed */
	int state;
	double pacing_gain, cwnd_gain, pacing_rate;
	/* Delivery rate estimation: bytes delivered and lost so far, when
	 * the last delivery and the send of the last one acked happened;
	 * app_limited is the delivered count that ends an app-limited
	 * stretch, or 0. */
	uint64_t delivered, delivered_us, first_sent_us, lost, app_limited;
	/* Bytes of losses that proved spurious: all of them, and the
	 * latest with the count of bytes lost before each (cc_pkt.lost_at).
	 * lost counts every loss declared, spurious or not. */
	uint64_t spurious;
	struct {
		uint64_t at, size;
	} spur[BBR_SPURIOUS_KEPT];
	unsigned spur_n;
	struct rate_sample rs;
	uint64_t round_count, next_round_delivered, round_us;
	bool round_start;
	uint64_t round_lost, round_lost_pkts, round_delivered0, round_lost0;
	/* Bytes lost and lost or delivered of cruising packets, for the
	 * last BBR_BASE_ROUNDS rounds (by round count) and this one. */
	uint64_t base_lost[BBR_BASE_ROUNDS], base_sent[BBR_BASE_ROUNDS];
	uint64_t cruise_lost, cruise_sent;
	unsigned lossy_rounds;		/* in a row, in Startup */
	/* The last two rounds check_full_pipe judged, their losses kept
	 * up to date with the spurious ones, and whether Startup ended for
	 * them (with the bound from loss before). */
	struct {
		uint64_t round, lost, pkts, sent;
		double base;
	} judged[BBR_STARTUP_LOSS_ROUNDS];
	bool loss_exit;
	uint64_t loss_exit_round;
	double loss_exit_hi;
	double bw[BBR_BW_ROUNDS];	/* max of each recent round */
	uint64_t bw_round[BBR_BW_ROUNDS];
	double max_bw;
	uint64_t min_rtt, min_rtt_us;	/* UINT64_MAX: none yet */
	uint64_t latest_rtt;		/* as of the last ACK; 0: none */
	uint64_t stale_min_rtt;		/* min_rtt before it last expired */
	bool min_rtt_stale;		/* expired: the next sample replaces it */
	bool filled_pipe;
	double full_bw;
	unsigned full_bw_cnt;
	double inflight_hi;		/* INFINITY: no bound from loss */
	unsigned cycle_idx;
	uint64_t cycle_us;
	uint64_t probe_rtt_done_us;	/* 0: not yet low enough */
	bool probe_rtt_round_done;
	double prior_cwnd;
	uint64_t rng;
	/* draft-ietf-ccwg-bbr-05 §5.5.11.1 BBRSaveStateUponLoss: the state
	 * before the current loss episode, to go back to if its losses
	 * were none (spurious). */
	uint64_t episode;		/* episodes so far */
	uint64_t ep_lost, ep_spurious;	/* packets of the current one */
	struct {
		int state;
		unsigned cycle_idx;
		double inflight_hi, cwnd;
	} undo;
};

static uint64_t
umin(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t
umax(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* BBR's minimum window: BBR_MIN_PIPE_PKTS packets. */
static double
min_pipe(const struct cc *c)
{
	return BBR_MIN_PIPE_PKTS * c->mss;
}

/* A number from a small PRNG (xorshift64), for ProbeBW's random start:
 * flows that started together should not probe in step. */
static uint64_t
random64(struct cc *c)
{
	uint64_t x = c->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return c->rng = x;
}

/* gain * the estimated BDP, in bytes; the initial window while there is
 * no estimate ("if (BBR.min_rtt == Inf) return InitialCwnd"). */
static double
bdp(const struct cc *c, double gain, double init)
{
	if (c->min_rtt == UINT64_MAX || c->max_bw == 0)
		return init;
	return gain * c->max_bw * (double)c->min_rtt;
}

/* The send quantum: a millisecond at the pacing rate, within bounds. */
static double
quantum(const struct cc *c)
{
	double q = c->pacing_rate * BBR_QUANTUM_US;

	if (q > BBR_QUANTUM_MAX)
		q = BBR_QUANTUM_MAX;
	return q > 2 * c->mss ? q : 2 * c->mss;
}

/* "BBR.pacing_rate = pacing_gain * bw", less the margin. */
static void
set_pacing(struct cc *c)
{
	double rate = c->pacing_gain * c->max_bw * (1.0 - BBR_PACING_MARGIN);

	/* "if (BBR.filled_pipe || rate > BBR.pacing_rate)": Startup never
	 * slows down on a low early sample. */
	if (c->max_bw > 0 && (c->filled_pipe || rate > c->pacing_rate))
		c->pacing_rate = rate;
}

static void
enter_startup(struct cc *c)
{
	c->state = BBR_STARTUP;
	c->pacing_gain = BBR_STARTUP_PACING_GAIN;
	c->cwnd_gain = BBR_CWND_GAIN;
}

/* ProbeBW phase i of the gain cycle. */
static void
cycle_to(struct cc *c, unsigned i, uint64_t now)
{
	c->cycle_idx = i % BBR_CYCLE_LEN;
	c->cycle_us = now;
	c->pacing_gain = cycle_gain[c->cycle_idx];
}

/* Enters ProbeBW at a random phase other than the draining one, as BBRv1
 * does, so that flows sharing a bottleneck probe at different times. */
static void
enter_probe_bw(struct cc *c, uint64_t now)
{
	c->state = BBR_PROBE_BW;
	c->cwnd_gain = BBR_CWND_GAIN;
	cycle_to(c, 2 + random64(c) % (BBR_CYCLE_LEN - 1), now);
}

/* In ProbeBW's 1.25 phase BBR probes for bandwidth: losses of what it
 * sends then tell whether the flight was too high.  (Startup's losses are
 * judged per round, in check_full_pipe.) */
static bool
probing(const struct cc *c)
{
	return c->state == BBR_PROBE_BW && c->pacing_gain > 1;
}

/*
 * The loss rate of what was sent with a packet is too high: bound the
 * flight (BBR.inflight_hi) at what was in flight when the rate crossed
 * BBR_LOSS_THRESH, and at least BBR_BETA of the BDP; stop probing.  Only
 * losses of packets sent while probing count: a random loss elsewhere
 * says nothing about how much the path holds.
 */
static void
too_high(struct cc *c, double inflight, uint64_t now)
{
	double floor = BBR_BETA * bdp(c, 1.0, c->cwnd);

	c->inflight_hi = inflight > floor ? inflight : floor;
	if (probing(c))
		cycle_to(c, c->cycle_idx + 1, now);
}

/* Bytes lost since the count was mark (a cc_pkt's lost: when it was
 * sent), less the losses declared since then that proved spurious.  A
 * spurious loss declared before mark is in neither. */
static uint64_t
lost_since(const struct cc *c, uint64_t mark)
{
	uint64_t lost = c->lost - umin(c->lost, mark), taken = 0;
	unsigned i;

	for (i = 0; i < c->spur_n; i++)
		if (c->spur[i].at >= mark)
			taken += c->spur[i].size;
	return lost - umin(lost, taken);
}

/* A loss that counted at lost_at proved spurious: remembered for
 * lost_since, in place of the one that stood earliest when all
 * BBR_SPURIOUS_KEPT are taken. */
static void
spurious_keep(struct cc *c, uint64_t lost_at, uint64_t size)
{
	unsigned i, lo = 0;

	c->spurious += size;
	if (c->spur_n < BBR_SPURIOUS_KEPT) {
		c->spur[c->spur_n].at = lost_at;
		c->spur[c->spur_n++].size = size;
		return;
	}
	for (i = 1; i < BBR_SPURIOUS_KEPT; i++)
		if (c->spur[i].at < c->spur[lo].at)
			lo = i;
	if (lost_at > c->spur[lo].at) {
		c->spur[lo].at = lost_at;
		c->spur[lo].size = size;
	}
}

void
cc_on_send(struct cc *c, struct cc_pkt *p, uint64_t size, uint64_t in_flight,
    uint64_t now)
{
	/* "If there are no packets in flight yet, then we can start the
	 * delivery rate interval at the current time." */
	if (in_flight == 0)
		c->first_sent_us = c->delivered_us = now;
	p->delivered = c->delivered;
	p->delivered_us = c->delivered_us;
	p->first_sent_us = c->first_sent_us;
	p->lost = c->lost;
	p->tx_in_flight = in_flight + size;
	p->lost_round = 0;
	p->flags = 0;
	if (c->app_limited != 0)
		p->flags |= PF_APP_LIMITED;
	if (probing(c))
		p->flags |= PF_PROBING;
	else if (c->state == BBR_PROBE_BW && c->latest_rtt != 0 &&
	    c->min_rtt != UINT64_MAX && (double)c->latest_rtt <=
	    (1 + BBR_QUEUE_SHARE) * (double)c->min_rtt)
		p->flags |= PF_CRUISING;
}

/* The path's own loss rate: of what was sent cruising lately, 0 when
 * nothing was. */
static double
baseline(const struct cc *c)
{
	uint64_t lost = c->cruise_lost, sent = c->cruise_sent;
	unsigned i;

	for (i = 0; i < BBR_BASE_ROUNDS; i++) {
		lost += c->base_lost[i];
		sent += c->base_sent[i];
	}
	return sent > 0 ? (double)lost / (double)sent : 0;
}

/* The loss rate beyond which a flight is too high. */
static double
loss_thresh(const struct cc *c)
{
	return BBR_LOSS_THRESH + baseline(c);
}

/*
 * Rate samples until what is in flight now is delivered say how much we
 * sent, not what the path carries.  The peer's flow control window limits
 * us like the application does, except with a BDP in flight already: the
 * path is full then, so its samples do measure it (and Startup, which
 * ignores app-limited rounds, can see the pipe full).
 */
void
cc_app_limited(struct cc *c, uint64_t in_flight, bool flow_blocked)
{
	if (flow_blocked && (double)in_flight >= bdp(c, 1.0, INFINITY))
		return;
	c->app_limited = umax(c->delivered + in_flight, 1);
}

void
cc_ack_begin(struct cc *c)
{
	c->rs = (struct rate_sample){ 0 };
}

void
cc_on_acked(struct cc *c, const struct cc_pkt *p, uint64_t pn, uint64_t size,
    uint64_t sent_us, uint64_t now)
{
	struct rate_sample *rs = &c->rs;

	c->delivered += size;
	c->delivered_us = now;
	if (p->flags & PF_CRUISING)
		c->cruise_sent += size;
	rs->newly_acked += size;
	if (rs->have && pn < rs->pn)
		return;
	rs->have = true;
	rs->pn = pn;
	rs->prior_delivered = p->delivered;
	rs->app_limited = p->flags & PF_APP_LIMITED;
	rs->probing = p->flags & PF_PROBING;
	rs->send_elapsed = sent_us - umin(sent_us, p->first_sent_us);
	rs->ack_elapsed = now - umin(now, p->delivered_us);
	rs->tx_in_flight = p->tx_in_flight;
	rs->prior_lost = p->lost;
	c->first_sent_us = sent_us;
}

/*
 * A packet declared lost.  Per round, counted for Startup's exit; per
 * packet sent while probing, the draft's IsInflightTooHigh: more than
 * BBR_LOSS_THRESH of what was in flight with it lost since it was sent.
 * The flight at which the rate crossed the threshold is estimated as
 * BBRInflightHiFromLostPacket does.
 */
void
cc_on_lost(struct cc *c, struct cc_pkt *p, uint64_t size, bool episode,
    uint64_t now)
{
	double lost, prev, lost_prev, prefix, thresh = loss_thresh(c);

	if (episode) {
		c->episode++;
		c->ep_lost = c->ep_spurious = 0;
		c->undo.state = c->state;
		c->undo.cycle_idx = c->cycle_idx;
		c->undo.inflight_hi = c->inflight_hi;
		c->undo.cwnd = c->cwnd;
	}
	c->ep_lost++;
	p->lost_episode = c->episode;
	p->lost_round = c->round_count;
	p->lost_at = c->lost;
	c->lost += size;
	c->round_lost += size;
	c->round_lost_pkts++;
	if (p->flags & PF_CRUISING) {
		c->cruise_lost += size;
		c->cruise_sent += size;
	}
	lost = (double)lost_since(c, p->lost);
	if (!(p->flags & PF_PROBING) || lost <= thresh * (double)p->tx_in_flight)
		return;
	prev = (double)p->tx_in_flight - size;
	lost_prev = lost - size;
	prefix = (thresh * prev - lost_prev) / (1.0 - thresh);
	too_high(c, prev + (prefix > 0 ? prefix : 0), now);
}

/* Whether Startup's round judged[i] lost too much: more than
 * BBR_STARTUP_LOSS_CNT packets, and BBR_LOSS_THRESH above the rounds
 * before. */
static bool
judged_lossy(const struct cc *c, unsigned i)
{
	return c->judged[i].pkts >= BBR_STARTUP_LOSS_CNT &&
	    (double)c->judged[i].lost > (BBR_LOSS_THRESH + c->judged[i].base) *
	    (double)c->judged[i].sent;
}

/*
 * It was reordered: taken out of the loss counts, so that a reordering
 * path does not look lossy.  Once every loss of the current loss episode
 * has proved spurious (as TCP undoes a recovery once every retransmission
 * in it proved needless: RFC 3708's DSACK test, Linux's undo_retrans),
 * what the episode did is undone (draft-ietf-ccwg-bbr-05 §5.5.11.2
 * BBRHandleSpuriousLossDetection): the bound from loss and the window
 * come back, the full-bandwidth detector starts over, and a Startup or a
 * bandwidth probe that the losses ended goes on.
 */
void
cc_on_spurious(struct cc *c, const struct cc_pkt *p, uint64_t size,
    uint64_t now)
{
	uint64_t *lost = NULL, *sent = NULL;
	unsigned i;

	spurious_keep(c, p->lost_at, size);
	/* Out of the cruising counts of the round it was lost in (this
	 * one, or one of the baseline's while it is still there); and out
	 * of what was sent then, since cc_on_acked counts it sent again, as
	 * delivered. */
	if (p->lost_round == c->round_count) {
		lost = &c->cruise_lost;
		sent = &c->cruise_sent;
	} else if (c->round_count - p->lost_round <= BBR_BASE_ROUNDS) {
		lost = &c->base_lost[p->lost_round % BBR_BASE_ROUNDS];
		sent = &c->base_sent[p->lost_round % BBR_BASE_ROUNDS];
	}
	if ((p->flags & PF_CRUISING) && lost != NULL) {
		*lost -= umin(*lost, size);
		*sent -= umin(*sent, size);
	}
	if (p->lost_round == c->round_count) {
		c->round_lost -= umin(c->round_lost, size);
		c->round_lost_pkts -= umin(c->round_lost_pkts, 1);
	}
	/* A Startup that ended for rounds that, without this loss, were
	 * not lossy goes on. */
	for (i = 0; i < BBR_STARTUP_LOSS_ROUNDS; i++) {
		if (c->judged[i].round != p->lost_round)
			continue;
		c->judged[i].lost -= umin(c->judged[i].lost, size);
		c->judged[i].pkts -= umin(c->judged[i].pkts, 1);
		if (c->loss_exit && !judged_lossy(c, i) &&
		    c->state != BBR_PROBE_RTT) {
			c->loss_exit = false;
			c->filled_pipe = false;
			c->lossy_rounds = 0;
			c->full_bw = 0;
			c->full_bw_cnt = 0;
			if (c->loss_exit_hi > c->inflight_hi)
				c->inflight_hi = c->loss_exit_hi;
			enter_startup(c);
		}
	}
	/* A packet sent while probing, delivered with what was in flight
	 * with it: that flight was not too high after all, unless others
	 * were lost (the ACK's rule, in cc_ack_end, applied late). */
	if ((p->flags & PF_PROBING) && (double)lost_since(c, p->lost) <=
	    loss_thresh(c) * (double)p->tx_in_flight &&
	    (double)p->tx_in_flight > c->inflight_hi)
		c->inflight_hi = (double)p->tx_in_flight;
	if (p->lost_episode != c->episode || ++c->ep_spurious != c->ep_lost)
		return;
	c->lossy_rounds = 0;
	c->full_bw = 0;
	c->full_bw_cnt = 0;
	if (c->undo.inflight_hi > c->inflight_hi)
		c->inflight_hi = c->undo.inflight_hi;
	if (c->undo.cwnd > c->cwnd)
		c->cwnd = c->undo.cwnd;
	if (c->state == BBR_PROBE_RTT)
		return;
	if (c->undo.state == BBR_STARTUP && c->state != BBR_STARTUP) {
		c->filled_pipe = false;
		enter_startup(c);
	} else if (c->undo.state == BBR_PROBE_BW && c->state == BBR_PROBE_BW &&
	    cycle_gain[c->undo.cycle_idx] > 1 && !probing(c))
		cycle_to(c, c->undo.cycle_idx, now);
}

/* The windowed max filter: rate is a sample of this round. */
static void
update_max_bw(struct cc *c, double rate)
{
	unsigned i = c->round_count % BBR_BW_ROUNDS;

	if (c->bw_round[i] != c->round_count) {
		c->bw_round[i] = c->round_count;
		c->bw[i] = 0;
	}
	if (rate > c->bw[i])
		c->bw[i] = rate;
	c->max_bw = 0;
	for (i = 0; i < BBR_BW_ROUNDS; i++)
		if (c->bw_round[i] + BBR_BW_ROUNDS > c->round_count &&
		    c->bw[i] > c->max_bw)
			c->max_bw = c->bw[i];
}

/*
 * The end of a round in Startup: is the pipe full?  Either the bandwidth
 * stopped growing, or the loss rate was too high: above the loss rate of
 * the rounds before, which sent half as much or less, by BBR_LOSS_THRESH.
 * The draft ends Startup after one such round; we wait for two in a row,
 * because a round of a few hundred packets loses more than its share by
 * chance now and then, while a queue that overflows keeps losing.
 */
static void
check_full_pipe(struct cc *c)
{
	uint64_t before = c->round_delivered0 + c->round_lost0;
	unsigned i = c->round_count % BBR_STARTUP_LOSS_ROUNDS;

	if (c->filled_pipe)
		return;
	c->judged[i].round = c->round_count;
	c->judged[i].lost = c->round_lost;
	c->judged[i].pkts = c->round_lost_pkts;
	c->judged[i].sent = c->delivered - c->round_delivered0 + c->round_lost;
	c->judged[i].base = before > 0 ? (double)c->round_lost0 /
	    (double)before : 0;
	c->lossy_rounds = judged_lossy(c, i) ? c->lossy_rounds + 1 : 0;
	if (c->lossy_rounds >= BBR_STARTUP_LOSS_ROUNDS) {
		/* "BBR.inflight_hi = max(BBRBDPMultiple(1.0),
		 * BBR.inflight_latest)" */
		double b = bdp(c, 1.0, c->cwnd);
		double latest = (double)(c->delivered - c->round_delivered0);

		c->loss_exit = true;
		c->loss_exit_round = c->round_count;
		c->loss_exit_hi = c->inflight_hi;
		c->inflight_hi = b > latest ? b : latest;
		c->filled_pipe = true;
		return;
	}
	if (c->rs.app_limited)
		return;
	if (c->max_bw >= c->full_bw * BBR_FULL_BW_THRESH) {
		c->full_bw = c->max_bw;
		c->full_bw_cnt = 0;
		return;
	}
	if (++c->full_bw_cnt >= BBR_FULL_BW_CNT)
		c->filled_pipe = true;
}

/* ProbeBW: the next phase of the gain cycle when this one is over.  A
 * phase lasts a min_rtt; probing goes on until the flight reaches
 * 1.25 BDP (or loss stops it), draining ends early once the queue is
 * gone. */
static void
cycle(struct cc *c, uint64_t prior_in_flight, uint64_t now)
{
	bool next = now - c->cycle_us > c->min_rtt;

	if (c->pacing_gain > 1)
		next = next && (double)prior_in_flight >=
		    bdp(c, c->pacing_gain, c->cwnd);
	else if (c->pacing_gain < 1)
		next = next || (double)c->in_flight <= bdp(c, 1.0, c->cwnd);
	if (next)
		cycle_to(c, c->cycle_idx + 1, now);
}

/*
 * ProbeRTT: enter when min_rtt has not been seen for BBR_MIN_RTT_US, hold
 * the flight at BBR_PROBE_RTT_CWND_GAIN BDP for BBR_PROBE_RTT_US and a
 * round, then go back.  When the path's delay has grown beyond what
 * cwnd_gain covers (a new route; by more than the timer granularity, so
 * that jitter on a sub-millisecond path does not count), the window was
 * too small for it ever since, so the bandwidth measured meanwhile is no
 * measure of the path: search again from Startup rather than probe up
 * 25 % at a time.
 */
static void
probe_rtt(struct cc *c, bool expired, uint64_t now)
{
	if (c->state != BBR_PROBE_RTT) {
		if (!expired)
			return;
		c->prior_cwnd = c->cwnd;
		c->state = BBR_PROBE_RTT;
		c->pacing_gain = 1;
		c->probe_rtt_done_us = 0;
	}
	if (c->probe_rtt_done_us == 0) {
		double low = bdp(c, BBR_PROBE_RTT_CWND_GAIN, 0);

		if (low < min_pipe(c))
			low = min_pipe(c);
		if ((double)c->in_flight <= low) {
			c->probe_rtt_done_us = now + BBR_PROBE_RTT_US;
			c->probe_rtt_round_done = false;
			c->next_round_delivered = c->delivered;
		}
		return;
	}
	if (c->round_start)
		c->probe_rtt_round_done = true;
	if (!c->probe_rtt_round_done || now < c->probe_rtt_done_us)
		return;
	c->min_rtt_us = now;
	if (c->cwnd < c->prior_cwnd)
		c->cwnd = c->prior_cwnd;
	if ((double)c->min_rtt > BBR_CWND_GAIN * (double)c->stale_min_rtt +
	    GRANULARITY_US) {
		c->filled_pipe = false;
		c->full_bw = 0;
		c->full_bw_cnt = c->lossy_rounds = 0;
		c->inflight_hi = INFINITY;
	}
	if (c->filled_pipe)
		enter_probe_bw(c, now);
	else
		enter_startup(c);
}

/* The window: growing by what was acknowledged up to cwnd_gain BDP plus
 * the quanta, then bounded by ProbeRTT and by inflight_hi. */
static void
set_cwnd(struct cc *c)
{
	double init = INITIAL_WINDOW_PKTS * c->mss;
	double max = bdp(c, c->cwnd_gain, init) + BBR_QUANTA * quantum(c), cap;

	if (c->filled_pipe) {
		c->cwnd += c->rs.newly_acked;
		if (c->cwnd > max)
			c->cwnd = max;
	} else if (c->cwnd < max || (double)c->delivered < init)
		c->cwnd += c->rs.newly_acked;
	if (c->cwnd < min_pipe(c))
		c->cwnd = min_pipe(c);
	if (c->state == BBR_PROBE_RTT) {
		cap = bdp(c, BBR_PROBE_RTT_CWND_GAIN, 0);
		if (cap < min_pipe(c))
			cap = min_pipe(c);
		if (c->cwnd > cap)
			c->cwnd = cap;
	}
	/* Probing may go above the bound from loss, to the probe's own
	 * target; it is raised again by what gets through. */
	cap = c->inflight_hi;
	if (probing(c) && cap < bdp(c, c->pacing_gain, 0) +
	    BBR_QUANTA * quantum(c))
		cap = bdp(c, c->pacing_gain, 0) + BBR_QUANTA * quantum(c);
	if (cap < min_pipe(c))
		cap = min_pipe(c);
	if (c->cwnd > cap)
		c->cwnd = cap;
}

/*
 * After an ACK's acknowledgements and losses (the draft's
 * BBRUpdateOnACK): the rate sample, rounds, the bandwidth and min_rtt
 * filters, the state machine, then the pacing rate and the window.
 */
void
cc_ack_end(struct cc *c, const struct cc_ack *a)
{
	struct rate_sample *rs = &c->rs;
	uint64_t interval, now = a->now;
	bool expired;

	c->in_flight = a->in_flight;
	c->latest_rtt = a->latest_rtt;
	if (!rs->have)
		return;
	if (c->app_limited != 0 && c->delivered > c->app_limited)
		c->app_limited = 0;
	/* A round ends with the delivery of a packet sent after it began
	 * (the draft's BBRUpdateRound), but not sooner than BBR_ROUND_SLACK
	 * allows: a packet that overtook the others would end it early,
	 * and Startup, counting rounds without growth, would end at a
	 * fraction of the path's rate. */
	c->round_start = rs->prior_delivered >= c->next_round_delivered &&
	    (c->min_rtt == UINT64_MAX || now - umin(now, c->round_us) >=
	    c->min_rtt - c->min_rtt / BBR_ROUND_SLACK);
	if (c->round_start) {
		c->round_us = now;
		if (c->state == BBR_STARTUP)
			check_full_pipe(c);
		c->next_round_delivered = c->delivered;
		c->base_lost[c->round_count % BBR_BASE_ROUNDS] = c->cruise_lost;
		c->base_sent[c->round_count % BBR_BASE_ROUNDS] = c->cruise_sent;
		c->cruise_lost = c->cruise_sent = 0;
		c->round_count++;
		if (c->round_count > c->loss_exit_round + BBR_LOSS_EXIT_ROUNDS)
			c->loss_exit = false;
		c->round_lost = c->round_lost_pkts = 0;
		c->round_delivered0 = c->delivered;
		c->round_lost0 = c->lost - c->spurious;
	}
	/* "the delivery rate ... over the longer of the send and ACK
	 * intervals"; one shorter than any round trip seen is compressed,
	 * not real (draft-cheng-iccrg-delivery-rate-estimation §3.3).  Any:
	 * where some packets overtake the others, the delivery of one that
	 * did ends intervals as short as its round trip. */
	interval = umax(rs->send_elapsed, rs->ack_elapsed);
	if (interval > 0 && interval >= a->raw_min_rtt) {
		double rate = (double)(c->delivered - rs->prior_delivered) /
		    (double)interval;

		if (!rs->app_limited || rate >= c->max_bw)
			update_max_bw(c, rate);
	}
	/* An ACK whose loss rate stayed below the threshold raises the
	 * bound from loss to what it had in flight. */
	if ((double)lost_since(c, rs->prior_lost) <= loss_thresh(c) *
	    (double)rs->tx_in_flight) {
		if (!rs->app_limited && rs->probing &&
		    (double)rs->tx_in_flight > c->inflight_hi)
			c->inflight_hi = (double)rs->tx_in_flight;
	} else if (rs->probing && !rs->app_limited)
		too_high(c, (double)rs->tx_in_flight, now);

	/* The min_rtt filter, fed only round trips that overtook nothing
	 * (stream.c's on_ack says why), which come a round trip late: until
	 * the first, the handshake's (or any) stands in.  An expired or
	 * standing-in one stays until the next sample replaces it. */
	if (c->min_rtt == UINT64_MAX && (a->init_rtt || a->raw_min_rtt)) {
		c->min_rtt = a->init_rtt ? a->init_rtt : a->raw_min_rtt;
		c->min_rtt_stale = true;
	}
	expired = now > c->min_rtt_us + BBR_MIN_RTT_US;
	if (expired && c->state != BBR_PROBE_RTT && !c->min_rtt_stale) {
		c->stale_min_rtt = c->min_rtt;
		c->min_rtt_stale = true;
		c->min_rtt_us = now;
	}
	if (a->rtt != 0 && (c->min_rtt_stale || a->rtt < c->min_rtt)) {
		c->min_rtt = a->rtt;
		c->min_rtt_us = now;
		c->min_rtt_stale = false;
	}

	if (c->state == BBR_STARTUP && c->filled_pipe) {
		c->state = BBR_DRAIN;
		c->pacing_gain = BBR_DRAIN_PACING_GAIN;
		c->cwnd_gain = BBR_CWND_GAIN;
	}
	if (c->state == BBR_DRAIN &&
	    (double)c->in_flight <= bdp(c, 1.0, c->cwnd))
		enter_probe_bw(c, now);
	if (c->state == BBR_PROBE_BW)
		cycle(c, a->prior_in_flight, now);
	probe_rtt(c, expired, now);

	set_pacing(c);
	set_cwnd(c);
}

/* RFC 9002 §7.6.2 persistent congestion: "the sender's congestion window
 * MUST be reduced to the minimum congestion window"; BBR's model stays,
 * so the window grows back within a few rounds if the path is fine. */
void
cc_on_persistent(struct cc *c)
{
	c->cwnd = min_pipe(c);
}

double
cc_cwnd(const struct cc *c)
{
	return c->cwnd;
}

double
cc_pacing_rate(const struct cc *c)
{
	return c->pacing_rate;
}

double
cc_bw(const struct cc *c)
{
	return c->max_bw;
}

void
cc_set_mss(struct cc *c, size_t mss)
{
	c->mss = (double)mss;
}

void
cc_reset(struct cc *c, size_t mss, uint64_t now)
{
	*c = (struct cc){ 0 };
	c->mss = (double)mss;
	c->cwnd = (double)umin(INITIAL_WINDOW_PKTS * mss,
	    umax(INITIAL_WINDOW_BYTES, MIN_WINDOW_PKTS * mss));
	enter_startup(c);
	/* BBRInitPacingRate: "nominal_bandwidth = InitialCwnd / (SRTT ?
	 * SRTT : 1ms)", times the Startup gain. */
	c->pacing_rate = BBR_STARTUP_PACING_GAIN * c->cwnd / 1000.0;
	c->min_rtt = c->stale_min_rtt = UINT64_MAX;
	c->min_rtt_us = c->delivered_us = c->first_sent_us = now;
	c->inflight_hi = INFINITY;
	c->rng = now ^ 0x9e3779b97f4a7c15ULL;
}

struct cc *
cc_new(size_t mss, uint64_t now)
{
	struct cc *c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	cc_reset(c, mss, now);
	return c;
}

void
cc_free(struct cc *c)
{
	free(c);
}
