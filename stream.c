/*
 * stream.c: a reliable byte stream in each direction over datagrams, after
 * QUIC: RFC 9000 (frames, acknowledgements, flow control), RFC 9002 (loss
 * detection, RTT, PTO, pacing) and BBR congestion control
 * (draft-ietf-ccwg-bbr, with the delivery rate estimation it builds on).
 *
 * Payload layout.  The session carries the packet number outside the
 * payload; a payload is a sequence of frames.  (v) is a QUIC
 * variable-length integer (RFC 9000 §16): the two high bits of the first
 * byte say whether it is 1, 2, 4 or 8 bytes long, the rest is the value,
 * big-endian.
 *
 *   PADDING   0x00
 *   PING      0x01
 *   ACK       0x02 largest(v) delay(v) count(v) first(v) count*[gap(v) len(v)]
 *             As RFC 9000 §19.3: delay is in units of 8 us; the first range
 *             is [largest-first, largest]; each further range ends gap+2
 *             below the start of the one before and spans len+1 packets.
 *   STREAM    0x0e offset(v) length(v) data[length]
 *   STREAM    0x0f the same, and the stream ends at offset+length (FIN)
 *             (RFC 9000 §19.8 with the OFF and LEN bits always set)
 *   MAX_DATA  0x10 maximum(v)  the peer may send bytes below this offset
 *   CLOSE     0x1c code(32 bits, big-endian) length(v) reason[length]
 *             abort: stop at once; the reason (printable ASCII, perhaps
 *             empty) says why, as RFC 9000 §19.19's reason phrase does
 *   DONE      0x1d  we have the whole stream up to the peer's FIN and the
 *             peer has acknowledged all of ours: both directions are
 *             finished, so the peer may take all it sent as acknowledged
 *             and leave as soon as it has acknowledged this
 *   WRITTEN   0x1e  all of the peer's stream, up to its FIN, is in our
 *             application's output, which ended without error: the
 *             peer's bytes are delivered, not only received.  Neither
 *             side says DONE before both have said this.
 *   DATAGRAM  0x31 length(v) data[length]  an unreliable message (RFC 9221
 *             §4, the form with a length): ack-eliciting and congestion
 *             controlled, but never sent again when lost
 *
 * A payload holds at least one frame, at most one ACK, one STREAM and
 * one DATAGRAM frame; anything else, a truncated frame, an ACK of a packet never
 * sent or data beyond the offered window makes the payload malformed.
 *
 * Inside, the FIN counts as one virtual byte at the final offset, so that
 * acknowledging, losing and resending the FIN is the same as for data.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "util.h"

#define FT_PADDING	0x00
#define FT_PING		0x01
#define FT_ACK		0x02
#define FT_STREAM	0x0e
#define FT_STREAM_FIN	0x0f
#define FT_MAX_DATA	0x10
/* RFC 9000 §19.17-18, each with 8 bytes of data; here they travel alone,
 * in packets that are neither acknowledged nor congestion controlled. */
#define FT_PATH_CHALLENGE	0x1a
#define FT_PATH_RESPONSE	0x1b
#define FT_CLOSE	0x1c
#define FT_DONE		0x1d
#define FT_WRITTEN	0x1e
#define FT_DATAGRAM	0x31

/* RFC 9000 §16: varints encode "values up to 2^62-1". */
#define VARINT_MAX	((1ULL << 62) - 1)

/* RFC 9002 §6.1.1: "The RECOMMENDED initial value for the packet
 * reordering threshold (kPacketThreshold) is 3". */
#define PKT_THRESHOLD	3
/* RFC 9002 §6.1.2: "The RECOMMENDED time threshold (kTimeThreshold),
 * expressed as an RTT multiplier, is 9/8."  In eighths. */
#define TIME_THRESH_8	9
/* RFC 9002 §6.1: "Implementations ... MAY adapt" the thresholds: after
 * a loss that was not one (the packet is acknowledged later) both grow to
 * what would have avoided it, up to these. */
#define PKT_THRESHOLD_MAX 256
#define TIME_THRESH_8_MAX 16
/* Losses remembered to notice late acknowledgements of them. */
#define LOSS_HISTORY	64
/* RFC 9002 §6.1.2: "The RECOMMENDED value of the timer granularity
 * (kGranularity) is 1 millisecond." */
#define GRANULARITY_US	1000
/* RFC 9002 §6.2.2: "When no previous RTT is available, the initial RTT
 * SHOULD be set to 333 milliseconds." */
#define INITIAL_RTT_US	333000
/* RFC 9000 §18.2 max_ack_delay: "If this value is absent, a default of
 * 25 milliseconds is assumed."  Both ends run this code, so ours is the
 * peer's too, as if sent as a transport parameter; less than the default
 * keeps small windows (lossy paths) and tail loss recovery quicker. */
#define MAX_ACK_DELAY_US 10000
/* RFC 9000 §18.2 ack_delay_exponent: "a default value of 3 is assumed
 * (indicating a multiplier of 8)". */
#define ACK_DELAY_EXP	3
/* RFC 9000 §13.2.2: "A receiver SHOULD send an ACK frame after receiving
 * at least two ack-eliciting packets. ... Knowledge of network conditions
 * ... might suggest alternative acknowledgment strategies with better
 * performance characteristics."  We ack every 2nd packet while fewer than
 * 16 arrive per min_rtt, then up to every 10th (an eighth of a window):
 * at hundreds of MB/s an ACK per two packets costs the receiver a
 * send and the sender a receive for every two data packets. */
#define ACK_ELICIT_THRESHOLD 2
#define ACK_ELICIT_MAX	10
#define ACK_WINDOW_SHARE 8
/* RFC 9002 §6.2.1: "When a PTO timer expires, the PTO backoff MUST be
 * increased, resulting in the PTO period being set to twice its current
 * value."  The doubling stops here so that the shift stays defined. */
#define PTO_BACKOFF_MAX	16
/* RFC 9002 §6.2.4: "An endpoint MAY send up to two full-sized datagrams
 * containing ack-eliciting packets" when the PTO expires. */
#define PTO_PROBES	2
/* RFC 9002 §7.2: "Endpoints SHOULD use an initial congestion window of
 * ten times the maximum datagram size (max_datagram_size), while limiting
 * the window to the larger of 14,720 bytes or twice the maximum datagram
 * size." */
#define INITIAL_WINDOW_PKTS 10
#define INITIAL_WINDOW_BYTES 14720
/* RFC 9002 §7.2: "The RECOMMENDED value is 2 * max_datagram_size." */
#define MIN_WINDOW_PKTS	2
/* RFC 9002 §7.6.1: "The RECOMMENDED value for
 * kPersistentCongestionThreshold is 3". */
#define PERSISTENT_THRESHOLD 3
/* RFC 9002 §7.7: "Senders SHOULD limit bursts to the initial congestion
 * window ... A sender with knowledge that the network path to the receiver
 * can absorb larger bursts MAY use a higher limit."  We allow the larger
 * of a few packets and what the rate earns in a millisecond, the
 * resolution of the session's poll(2): a path that carries the rate
 * absorbs that. */
#define PACING_BURST_PKTS 4
#define PACING_BURST_US	1000
/*
 * BBR (draft-ietf-ccwg-bbr, "BBR Congestion Control").  Its model of the
 * path is the bottleneck bandwidth (the most delivered per unit of time
 * lately) and the round-trip propagation time (the least RTT lately); it
 * paces at gain * bandwidth and keeps about cwnd_gain * BDP in flight.
 * Random losses do not shrink it: only a loss rate above BBR_LOSS_THRESH
 * while probing bounds what it keeps in flight.
 *
 * "BBRStartupPacingGain = 4*ln(2) = 2.77": the least gain that still
 * doubles the sending rate every round trip in Startup.
 */
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
/* "BBRLossThresh = 2%": the loss rate the path is allowed while probing;
 * above it, what was in flight is too much. */
#define BBR_LOSS_THRESH	0.02
/* "BBRStartupFullLossCnt = 6": Startup also ends after a round that lost
 * more than BBR_LOSS_THRESH in at least this many packets. */
#define BBR_STARTUP_LOSS_CNT 6
/* Rounds in a row that must be that lossy: see bbr_check_full_pipe. */
#define BBR_STARTUP_LOSS_ROUNDS 2
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
/* The send quantum is the rate of a millisecond, between 2 packets and
 * 64 KB; cwnd allows three of them more, for ACKs that come in bursts
 * (ours acknowledge up to ACK_ELICIT_MAX packets at once). */
#define BBR_QUANTUM_US	1000
#define BBR_QUANTUM_MAX	65536
#define BBR_QUANTA	3
/* ProbeBW's gain cycle, as BBRv1: a round probing for more bandwidth at
 * 1.25, one draining the queue that made at 0.75, six cruising at 1. */
#define BBR_CYCLE_LEN	8
static const double bbr_cycle_gain[BBR_CYCLE_LEN] = {
	1.25, 0.75, 1, 1, 1, 1, 1, 1
};
/* RFC 9000 §10.2: the closing and draining states "SHOULD persist for at
 * least three times the current PTO interval". */
#define LINGER_PTOS	3
/* CLOSE is not acknowledged (RFC 9002 §2 does not count it as
 * ack-eliciting); a few copies make its loss unlikely. */
#define CLOSE_COPIES	3
/* A CLOSE's type, code and reason length (a varint of 2 bytes at most:
 * reasons are short). */
#define CLOSE_HDR	7
/* What a sender may send before the peer's first MAX_DATA arrives: our
 * stand-in for QUIC's initial_max_data transport parameter.  Every
 * receive buffer is at least this big. */
#define INITIAL_MAX_DATA 65536
/* Ranges of received packet numbers we keep and acknowledge: a bound on
 * the ACK frame's size (the count fits a one-byte varint). */
#define ACK_RANGES_MAX	63
/* Packet records at most (88 MB): a million packets in flight is more
 * than any send buffer we would use; with more, sending just waits. */
#define RING_MAX	(1 << 20)
#define MIN_MTU		64
#define MAX_MTU		65535

/* Half-open intervals [lo, hi), sorted, neither overlapping nor touching,
 * at most cap of them: lo[0..n) and hi[0..n) are a window at off into
 * base, so the first can go in O(1). */
struct ivs {
	size_t n, cap, off;
	uint64_t *lo, *hi, *base;
};

enum { PKT_FREE, PKT_OUT, PKT_ACKED, PKT_LOST };
#define PF_MAX_DATA 0x01
#define PF_DONE	0x02
#define PF_PMTU	0x04	/* a path MTU probe */
#define PF_APP_LIMITED 0x08	/* sent while the sender was app-limited */
#define PF_PROBING 0x10	/* sent while BBR probed for bandwidth */
#define PF_WRITTEN 0x20
/* RFC 8899 §5.1.2: "MAX_PROBES: The MAX_PROBES is the maximum value of
 * the PROBE_COUNT counter ... The default value of MAX_PROBES is 3." */
#define PMTU_MAX_PROBES	3
/* The search stops when the interval left is narrower than this. */
#define PMTU_STEP	16
/* Datagrams queued to send and received but not yet read: a bound on the
 * memory they take, and on how far the sender runs ahead of the path. */
#define DGRAM_TX_SLOTS	64
#define DGRAM_RX_SLOTS	256

/* A queue of datagrams, each in a slot of the stream's first mtu bytes
 * (the MTU may grow later; datagrams stay as large as at the start). */
struct dgq {
	uint8_t *buf;
	uint16_t *len;
	size_t slot;
	unsigned slots, head, n;
};

/* An ack-eliciting packet we sent, in a ring indexed by packet number,
 * with the connection's delivery state when it left (delivery rate
 * estimation, draft-cheng-iccrg-delivery-rate-estimation). */
struct sent {
	uint64_t pn, sent_us, off;	/* off..off+len: virtual bytes carried */
	uint64_t acked_to;		/* 1 + largest our ACK in it had, or 0 */
	uint64_t delivered, delivered_us, first_sent_us, lost;
	uint64_t tx_in_flight;		/* bytes in flight with it */
	uint32_t len, size;
	uint8_t state, flags;
};

/* A packet declared lost, in case its acknowledgement still comes. */
struct lossrec {
	uint64_t pn, sent_us, largest;	/* largest acknowledged back then */
	uint64_t round;			/* BBR's round count back then */
	uint32_t size;
};

/* A delivery rate sample: what one ACK tells of the path, taken from the
 * last sent of the packets it newly acknowledges. */
struct rate_sample {
	bool have, app_limited, probing;
	uint64_t pn, prior_delivered, send_elapsed, ack_elapsed;
	uint64_t tx_in_flight, prior_lost, rtt;
	uint64_t newly_acked;
};

enum { BBR_STARTUP, BBR_DRAIN, BBR_PROBE_BW, BBR_PROBE_RTT };

/* BBR's state, names as in the draft; bandwidths in bytes per us. */
struct bbr {
	int state;
	double pacing_gain, cwnd_gain, pacing_rate;
	/* Delivery rate estimation: bytes delivered and lost so far, when
	 * the last delivery and the send of the last one acked happened;
	 * app_limited is the delivered count that ends an app-limited
	 * stretch, or 0. */
	uint64_t delivered, delivered_us, first_sent_us, lost, app_limited;
	struct rate_sample rs;
	uint64_t round_count, next_round_delivered;
	bool round_start;
	uint64_t round_lost, round_lost_pkts, round_delivered0;
	unsigned lossy_rounds;		/* in a row, in Startup */
	double bw[BBR_BW_ROUNDS];	/* max of each recent round */
	uint64_t bw_round[BBR_BW_ROUNDS];
	double max_bw;
	uint64_t min_rtt, min_rtt_us;	/* UINT64_MAX: none yet */
	uint64_t stale_min_rtt;		/* min_rtt before it last expired */
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
};

struct stream {
	struct stream_conf conf;
	int err;
	uint32_t peer_code;
	bool closing;			/* stream_abort was called */
	int close_left;			/* CLOSE copies still to send */
	bool done_sent;			/* we finished first and said DONE */
	bool done_due;			/* DONE to send (again) */
	bool done_acked;
	uint64_t last_done_us;
	bool peer_done;			/* the peer said DONE */
	uint32_t close_code;
	char close_why[STREAM_REASON_MAX + 1];	/* ours */
	char peer_why[STREAM_REASON_MAX + 1];	/* the peer's CLOSE reason */
	bool written;			/* stream_written was called */
	bool written_due;		/* WRITTEN to send (again) */
	bool written_acked;
	bool peer_written;		/* the peer said WRITTEN */

	/* Send side: virtual offsets; snd_end+1 is the FIN once fin is set. */
	uint8_t *sbuf;
	uint64_t snd_una;		/* below: acknowledged */
	uint64_t snd_nxt;		/* below: sent at least once */
	uint64_t snd_end;		/* below: written */
	bool fin;
	uint64_t peer_max;		/* the peer's MAX_DATA */
	struct ivs acked;		/* acknowledged above snd_una */
	struct ivs lost;		/* to send again */

	/* Sent packets. */
	struct sent *ring;
	uint64_t ring_mask;
	uint64_t next_pn;
	uint64_t ring_lo;		/* below: no packet outstanding */
	uint64_t largest_acked;
	bool have_acked;
	uint64_t in_flight, elicit_out;	/* bytes, ack-eliciting packets */
	uint64_t last_elicit_us;
	uint64_t loss_time;		/* 0: no time-threshold loss pending */
	unsigned pto_count;
	int probes;

	/* RTT estimation, RFC 9002 §5. */
	bool have_rtt;
	uint64_t first_rtt_us;
	uint64_t latest_rtt, min_rtt, srtt, rttvar;

	/* Congestion control: the window in bytes, and BBR. */
	double cwnd;
	struct bbr bbr;

	/* Reordering: adapted loss thresholds, recent losses. */
	uint64_t pkt_thresh, time_thresh8;
	struct lossrec hist[LOSS_HISTORY];
	unsigned hist_first, hist_n;

	/* Pacing: a token bucket that may go into debt by one packet. */
	double tokens;
	uint64_t pace_us;

	/* Receive side. */
	uint8_t *rbuf;
	uint64_t rcv_read;		/* below: read by the application */
	uint64_t rcv_nxt;		/* below: received in order */
	uint64_t rcv_high;		/* highest end of data received */
	uint64_t rcv_fin;		/* final size, or UINT64_MAX */
	uint64_t rcv_max;		/* offered to the peer */
	bool max_data_due;
	struct ivs ooo;			/* received above rcv_nxt */

	/* Datagrams. */
	struct dgq dtx, drx;

	/* Path MTU search (RFC 8899 DPLPMTUD): conf.mtu works, pmtu_hi may. */
	size_t pmtu_hi;			/* above: does not work */
	size_t pmtu_try;		/* next size to probe; 0: done */
	size_t pmtu_probe;		/* size in flight, or 0 */
	unsigned pmtu_fails;

	/* Acknowledgements we owe. */
	struct ivs rx;			/* packet numbers received */
	uint64_t rx_floor;		/* below: too old to tell, ignored */
	uint64_t rx_largest_us;
	int rx_elicit;			/* ack-eliciting since our last ACK */
	uint64_t ack_every;		/* ACK after this many of them */
	uint64_t rate_us, rate_pkts;	/* counting them per min_rtt */
	bool rx_new;			/* anything since our last ACK */
	uint64_t ack_due;

	uint64_t last_send_us, last_recv_us, last_output_us;
	bool ping_due;			/* stream_ping was called */
	int path_frame;			/* in the last input: enum stream_path */
	uint8_t path_data[STREAM_PATH_DATA];
	struct stream_stats st;
};

/* A parsed, validated payload. */
struct frames {
	bool elicit, ping;
	bool ack;
	uint64_t ack_largest, ack_delay;
	const uint8_t *ack_ranges, *ack_end;	/* count, first, pairs */
	bool stream, fin;
	uint64_t off, len;
	const uint8_t *data;
	bool max_data;
	uint64_t max;
	bool close, done, written;
	uint32_t code;
	const uint8_t *why;		/* the CLOSE reason, whylen bytes */
	uint64_t whylen;
	bool dgram;
	uint64_t dglen;
	const uint8_t *dg;
	int path;			/* enum stream_path */
	const uint8_t *path_data;
};

struct rd {
	const uint8_t *p, *end;
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

/* Varints, RFC 9000 §16.  get returns 0, or -1 when truncated. */
static int
get_varint(struct rd *r, uint64_t *v)
{
	size_t n, i;

	if (r->p >= r->end)
		return -1;
	n = (size_t)1 << (*r->p >> 6);
	if ((size_t)(r->end - r->p) < n)
		return -1;
	*v = *r->p & 0x3f;
	for (i = 1; i < n; i++)
		*v = *v << 8 | r->p[i];
	r->p += n;
	return 0;
}

static size_t
varint_len(uint64_t v)
{
	if (v < 64)
		return 1;
	if (v < 16384)
		return 2;
	if (v < 1073741824)
		return 4;
	return 8;
}

/* Writes v (at most VARINT_MAX) and returns its length. */
static size_t
put_varint(uint8_t *p, uint64_t v)
{
	size_t n = varint_len(v), i;
	static const uint8_t prefix[9] = {
		0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0
	};

	for (i = n; i > 0; i--) {
		p[i - 1] = v & 0xff;
		v >>= 8;
	}
	p[0] |= prefix[n];
	return n;
}

/* An empty set for cap intervals: 0, or -1 when out of memory. */
static int
ivs_init(struct ivs *v, size_t cap)
{
	memset(v, 0, sizeof *v);
	if ((v->base = calloc(cap, 2 * sizeof v->base[0])) == NULL)
		return -1;
	v->cap = cap;
	v->lo = v->base;
	v->hi = v->base + cap;
	return 0;
}

static void
ivs_free(struct ivs *v)
{
	free(v->base);
}

/* The first interval that ends at or after a (so touches or follows it). */
static size_t
ivs_find(const struct ivs *v, uint64_t a)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v->hi[mid] < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
ivs_has(const struct ivs *v, uint64_t x)
{
	size_t i = ivs_find(v, x + 1);

	return i < v->n && v->lo[i] <= x;
}

/* Whether [a,b) can be added without dropping anything. */
static bool
ivs_fits(const struct ivs *v, uint64_t a, uint64_t b)
{
	size_t i = ivs_find(v, a);

	return v->n < v->cap || (i < v->n && v->lo[i] <= b);
}

static void
ivs_setoff(struct ivs *v, size_t off)
{
	v->off = off;
	v->lo = v->base + off;
	v->hi = v->base + v->cap + off;
}

/* Drops the first interval: O(1), the set is a deque. */
static void
ivs_pop(struct ivs *v)
{
	v->n--;
	ivs_setoff(v, v->n > 0 ? v->off + 1 : 0);
}

/* Makes room for a new interval at index i (n < cap), moving the shorter
 * side: additions at either end are O(1). */
static void
ivs_open(struct ivs *v, size_t i)
{
	if (v->off > 0 && (i < v->n / 2 || v->off + v->n == v->cap)) {
		ivs_setoff(v, v->off - 1);
		memmove(v->lo, v->lo + 1, i * sizeof v->lo[0]);
		memmove(v->hi, v->hi + 1, i * sizeof v->hi[0]);
	} else {
		memmove(v->lo + i + 1, v->lo + i, (v->n - i) * sizeof v->lo[0]);
		memmove(v->hi + i + 1, v->hi + i, (v->n - i) * sizeof v->hi[0]);
	}
	v->n++;
}

/*
 * Adds [a,b), a < b.  Returns 0, or -1 when the set is full and [a,b)
 * touches nothing in it; with force it then widens a neighbour to cover
 * [a,b) instead (a set of ranges to resend may grow, never shrink).
 */
static int
ivs_add(struct ivs *v, uint64_t a, uint64_t b, bool force)
{
	size_t i = ivs_find(v, a), j;

	if (i < v->n && v->lo[i] <= b) {
		for (j = i + 1; j < v->n && v->lo[j] <= b; j++)
			;
		v->lo[i] = umin(v->lo[i], a);
		v->hi[i] = umax(v->hi[j - 1], b);
		if (j > i + 1) {
			memmove(v->lo + i + 1, v->lo + j,
			    (v->n - j) * sizeof v->lo[0]);
			memmove(v->hi + i + 1, v->hi + j,
			    (v->n - j) * sizeof v->hi[0]);
			v->n -= j - i - 1;
		}
		return 0;
	}
	if (v->n == v->cap) {
		if (!force)
			return -1;
		if (i == v->n)
			v->hi[i - 1] = b;
		else
			v->lo[i] = a;
		return 0;
	}
	ivs_open(v, i);
	v->lo[i] = a;
	v->hi[i] = b;
	return 0;
}

static double
mss(const struct stream *s)
{
	return (double)s->conf.mtu;
}

/* RFC 9002 §6.2.1: PTO = smoothed_rtt + max(4*rttvar, kGranularity) +
 * max_ack_delay, without the backoff. */
static uint64_t
pto_base(const struct stream *s)
{
	return s->srtt + umax(4 * s->rttvar, GRANULARITY_US) + MAX_ACK_DELAY_US;
}

static uint64_t
pto_deadline(const struct stream *s)
{
	return s->last_elicit_us +
	    (pto_base(s) << umin(s->pto_count, PTO_BACKOFF_MAX));
}

/* RFC 9002 §6.1.2: max(kTimeThreshold * max(smoothed_rtt, latest_rtt),
 * kGranularity). */
static uint64_t
loss_delay(const struct stream *s)
{
	uint64_t d = umax(s->srtt, s->latest_rtt) * s->time_thresh8 / 8;

	return umax(d, GRANULARITY_US);
}

/* BBR's pacing rate, bytes per microsecond. */
static double
pacing_rate(const struct stream *s)
{
	return s->bbr.pacing_rate;
}

static double
pacing_burst(const struct stream *s)
{
	double b = pacing_rate(s) * PACING_BURST_US;

	return b > PACING_BURST_PKTS * mss(s) ? b : PACING_BURST_PKTS * mss(s);
}

static struct sent *
slot(const struct stream *s, uint64_t pn)
{
	return &s->ring[pn & s->ring_mask];
}

/* Whether pn is an ack-eliciting packet neither acknowledged nor lost. */
static bool
outstanding(const struct stream *s, uint64_t pn)
{
	const struct sent *r = slot(s, pn);

	return r->pn == pn && r->state == PKT_OUT;
}

/* Room in the ring for one more ack-eliciting packet. */
static bool
ring_room(const struct stream *s)
{
	return s->next_pn - s->ring_lo <= s->ring_mask;
}

/* Where new data may end: the written bytes within the peer's window, and
 * the FIN once every byte before it may go. */
static uint64_t
send_limit(const struct stream *s)
{
	if (s->fin && s->snd_end <= s->peer_max)
		return s->snd_end + 1;
	return umin(s->snd_end, s->peer_max);
}

/*
 * The next range to send again, clipped to what is not known to have
 * arrived: true with [*a,*b), false when nothing is left.  Drops whatever
 * has been acknowledged since it was queued.
 */
static bool
next_lost(struct stream *s, uint64_t *a, uint64_t *b)
{
	while (s->lost.n > 0) {
		size_t i;

		*a = umax(s->lost.lo[0], s->snd_una);
		*b = s->lost.hi[0];
		if (*a >= *b) {
			ivs_pop(&s->lost);
			continue;
		}
		i = ivs_find(&s->acked, *a);
		if (i < s->acked.n && s->acked.hi[i] == *a)
			i++;
		if (i < s->acked.n && s->acked.lo[i] <= *a) {
			s->lost.lo[0] = s->acked.hi[i];
			continue;
		}
		s->lost.lo[0] = *a;
		if (i < s->acked.n)
			*b = umin(*b, s->acked.lo[i]);
		return true;
	}
	return false;
}

/* Skips packet numbers with nothing outstanding. */
static void
ring_advance(struct stream *s)
{
	while (s->ring_lo < s->next_pn && !outstanding(s, s->ring_lo))
		s->ring_lo++;
}

/* Keeps what stream_deadline looks at exact. */
static void
tidy(struct stream *s)
{
	uint64_t a, b;

	next_lost(s, &a, &b);
	ring_advance(s);
}

static void
rtt_sample(struct stream *s, uint64_t latest, uint64_t ack_delay,
    uint64_t now)
{
	uint64_t adjusted = latest, diff;

	/* RFC 9002 §5.2, §5.3. */
	s->latest_rtt = latest;
	if (!s->have_rtt) {
		s->have_rtt = true;
		s->first_rtt_us = now;
		s->min_rtt = s->srtt = latest;
		s->rttvar = latest / 2;
		return;
	}
	s->min_rtt = umin(s->min_rtt, latest);
	/* "MUST use the lesser of the acknowledgment delay and the peer's
	 * max_ack_delay" */
	ack_delay = umin(ack_delay, MAX_ACK_DELAY_US);
	/* "MUST NOT subtract the acknowledgment delay from the RTT sample if
	 * the resulting value is smaller than the min_rtt." */
	if (latest >= s->min_rtt + ack_delay)
		adjusted = latest - ack_delay;
	diff = s->srtt > adjusted ? s->srtt - adjusted : adjusted - s->srtt;
	s->rttvar = (3 * s->rttvar + diff) / 4;
	s->srtt = (7 * s->srtt + adjusted) / 8;
}

/* BBR's minimum window: BBR_MIN_PIPE_PKTS packets. */
static double
bbr_min_pipe(const struct stream *s)
{
	return BBR_MIN_PIPE_PKTS * mss(s);
}

/* A number from a small PRNG (xorshift64), for ProbeBW's random start:
 * flows that started together should not probe in step. */
static uint64_t
bbr_random(struct stream *s)
{
	uint64_t x = s->bbr.rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return s->bbr.rng = x;
}

/* gain * the estimated BDP, in bytes; the initial window while there is
 * no estimate ("if (BBR.min_rtt == Inf) return InitialCwnd"). */
static double
bbr_bdp(const struct stream *s, double gain, double init)
{
	if (s->bbr.min_rtt == UINT64_MAX || s->bbr.max_bw == 0)
		return init;
	return gain * s->bbr.max_bw * (double)s->bbr.min_rtt;
}

/* The send quantum: a millisecond at the pacing rate, within bounds. */
static double
bbr_quantum(const struct stream *s)
{
	double q = s->bbr.pacing_rate * BBR_QUANTUM_US;

	if (q > BBR_QUANTUM_MAX)
		q = BBR_QUANTUM_MAX;
	return q > 2 * mss(s) ? q : 2 * mss(s);
}

/* "BBR.pacing_rate = pacing_gain * bw", less the margin. */
static void
bbr_set_pacing(struct stream *s)
{
	struct bbr *b = &s->bbr;
	double rate = b->pacing_gain * b->max_bw * (1.0 - BBR_PACING_MARGIN);

	/* "if (BBR.filled_pipe || rate > BBR.pacing_rate)": Startup never
	 * slows down on a low early sample. */
	if (b->max_bw > 0 && (b->filled_pipe || rate > b->pacing_rate))
		b->pacing_rate = rate;
}

static void
bbr_enter_startup(struct stream *s)
{
	s->bbr.state = BBR_STARTUP;
	s->bbr.pacing_gain = BBR_STARTUP_PACING_GAIN;
	s->bbr.cwnd_gain = BBR_CWND_GAIN;
}

/* ProbeBW phase i of the gain cycle. */
static void
bbr_cycle_to(struct stream *s, unsigned i, uint64_t now)
{
	s->bbr.cycle_idx = i % BBR_CYCLE_LEN;
	s->bbr.cycle_us = now;
	s->bbr.pacing_gain = bbr_cycle_gain[s->bbr.cycle_idx];
}

/* Enters ProbeBW at a random phase other than the draining one, as BBRv1
 * does, so that flows sharing a bottleneck probe at different times. */
static void
bbr_enter_probe_bw(struct stream *s, uint64_t now)
{
	s->bbr.state = BBR_PROBE_BW;
	s->bbr.cwnd_gain = BBR_CWND_GAIN;
	bbr_cycle_to(s, 2 + bbr_random(s) % (BBR_CYCLE_LEN - 1), now);
}

/* In ProbeBW's 1.25 phase BBR probes for bandwidth: losses of what it
 * sends then tell whether the flight was too high.  (Startup's losses are
 * judged per round, in bbr_check_full_pipe.) */
static bool
bbr_probing(const struct stream *s)
{
	return s->bbr.state == BBR_PROBE_BW && s->bbr.pacing_gain > 1;
}

/*
 * The loss rate of what was sent with a packet is too high: bound the
 * flight (BBR.inflight_hi) at what was in flight when the rate crossed
 * BBR_LOSS_THRESH, and at least BBR_BETA of the BDP; stop probing.  Only
 * losses of packets sent while probing count: a random loss elsewhere
 * says nothing about how much the path holds.
 */
static void
bbr_too_high(struct stream *s, double inflight, uint64_t now)
{
	struct bbr *b = &s->bbr;
	double floor = BBR_BETA * bbr_bdp(s, 1.0, s->cwnd);

	b->inflight_hi = inflight > floor ? inflight : floor;
	if (bbr_probing(s))
		bbr_cycle_to(s, b->cycle_idx + 1, now);
}

/* Bytes lost since the count was mark (spurious losses are taken out,
 * so it may be less). */
static uint64_t
bbr_lost_since(const struct stream *s, uint64_t mark)
{
	return s->bbr.lost - umin(s->bbr.lost, mark);
}

/* The delivery state a packet leaves with. */
static void
bbr_on_send(struct stream *s, struct sent *r)
{
	struct bbr *b = &s->bbr;

	/* "If there are no packets in flight yet, then we can start the
	 * delivery rate interval at the current time." */
	if (s->in_flight == 0)
		b->first_sent_us = b->delivered_us = r->sent_us;
	r->delivered = b->delivered;
	r->delivered_us = b->delivered_us;
	r->first_sent_us = b->first_sent_us;
	r->lost = b->lost;
	r->tx_in_flight = s->in_flight + r->size;
	if (b->app_limited != 0)
		r->flags |= PF_APP_LIMITED;
	if (bbr_probing(s))
		r->flags |= PF_PROBING;
}

/*
 * Marks the sender app-limited when it has nothing to send and room in
 * the window: rate samples until what is in flight now is delivered say
 * how much we sent, not what the path carries.  The peer's flow control
 * window limits us like the application does, except with a BDP in
 * flight already: the path is full then, so its samples do measure it
 * (and Startup, which ignores app-limited rounds, can see the pipe full).
 */
static void
bbr_check_app_limited(struct stream *s)
{
	if (s->lost.n > 0 || s->dtx.n > 0 || s->snd_nxt < send_limit(s) ||
	    (double)(s->in_flight + s->conf.mtu) > s->cwnd)
		return;
	if (s->snd_nxt < s->snd_end + s->fin &&
	    (double)s->in_flight >= bbr_bdp(s, 1.0, INFINITY))
		return;
	s->bbr.app_limited = umax(s->bbr.delivered + s->in_flight, 1);
}

/* A packet newly acknowledged: delivered, and perhaps the sample's. */
static void
bbr_on_acked(struct stream *s, const struct sent *r, uint64_t now)
{
	struct bbr *b = &s->bbr;
	struct rate_sample *rs = &b->rs;

	b->delivered += r->size;
	b->delivered_us = now;
	rs->newly_acked += r->size;
	if (rs->have && r->pn < rs->pn)
		return;
	rs->have = true;
	rs->pn = r->pn;
	rs->prior_delivered = r->delivered;
	rs->app_limited = r->flags & PF_APP_LIMITED;
	rs->probing = r->flags & PF_PROBING;
	rs->send_elapsed = r->sent_us - umin(r->sent_us, r->first_sent_us);
	rs->ack_elapsed = now - umin(now, r->delivered_us);
	rs->tx_in_flight = r->tx_in_flight;
	rs->prior_lost = r->lost;
	rs->rtt = umax(now - umin(now, r->sent_us), 1);
	b->first_sent_us = r->sent_us;
}

/*
 * A packet declared lost.  Per round, counted for Startup's exit; per
 * packet sent while probing, the draft's IsInflightTooHigh: more than
 * BBR_LOSS_THRESH of what was in flight with it lost since it was sent.
 * The flight at which the rate crossed the threshold is estimated as
 * BBRInflightHiFromLostPacket does.
 */
static void
bbr_on_lost(struct stream *s, const struct sent *r, uint64_t now)
{
	struct bbr *b = &s->bbr;
	double lost, prev, lost_prev, prefix;

	b->lost += r->size;
	b->round_lost += r->size;
	b->round_lost_pkts++;
	lost = (double)bbr_lost_since(s, r->lost);
	if (!(r->flags & PF_PROBING) ||
	    lost <= BBR_LOSS_THRESH * (double)r->tx_in_flight)
		return;
	prev = (double)r->tx_in_flight - r->size;
	lost_prev = lost - r->size;
	prefix = (BBR_LOSS_THRESH * prev - lost_prev) / (1.0 - BBR_LOSS_THRESH);
	bbr_too_high(s, prev + (prefix > 0 ? prefix : 0), now);
}

/* The windowed max filter: rate is a sample of this round. */
static void
bbr_update_max_bw(struct stream *s, double rate)
{
	struct bbr *b = &s->bbr;
	unsigned i = b->round_count % BBR_BW_ROUNDS;

	if (b->bw_round[i] != b->round_count) {
		b->bw_round[i] = b->round_count;
		b->bw[i] = 0;
	}
	if (rate > b->bw[i])
		b->bw[i] = rate;
	b->max_bw = 0;
	for (i = 0; i < BBR_BW_ROUNDS; i++)
		if (b->bw_round[i] + BBR_BW_ROUNDS > b->round_count &&
		    b->bw[i] > b->max_bw)
			b->max_bw = b->bw[i];
}

/*
 * The end of a round in Startup: is the pipe full?  Either the bandwidth
 * stopped growing, or the loss rate was too high.  The draft ends Startup
 * after one such round; we wait for two in a row, because with 1 %
 * random loss a round of a few hundred packets loses more than 2 % by
 * chance now and then, while a queue that overflows keeps losing.
 */
static void
bbr_check_full_pipe(struct stream *s)
{
	struct bbr *b = &s->bbr;
	uint64_t sent = b->delivered - b->round_delivered0 + b->round_lost;
	bool lossy = b->round_lost_pkts >= BBR_STARTUP_LOSS_CNT &&
	    (double)b->round_lost > BBR_LOSS_THRESH * (double)sent;

	if (b->filled_pipe)
		return;
	b->lossy_rounds = lossy ? b->lossy_rounds + 1 : 0;
	if (b->lossy_rounds >= BBR_STARTUP_LOSS_ROUNDS) {
		/* "BBR.inflight_hi = max(BBRBDPMultiple(1.0),
		 * BBR.inflight_latest)" */
		double bdp = bbr_bdp(s, 1.0, s->cwnd);
		double latest = (double)(b->delivered - b->round_delivered0);

		b->inflight_hi = bdp > latest ? bdp : latest;
		b->filled_pipe = true;
		return;
	}
	if (b->rs.app_limited)
		return;
	if (b->max_bw >= b->full_bw * BBR_FULL_BW_THRESH) {
		b->full_bw = b->max_bw;
		b->full_bw_cnt = 0;
		return;
	}
	if (++b->full_bw_cnt >= BBR_FULL_BW_CNT)
		b->filled_pipe = true;
}

/* ProbeBW: the next phase of the gain cycle when this one is over.  A
 * phase lasts a min_rtt; probing goes on until the flight reaches
 * 1.25 BDP (or loss stops it), draining ends early once the queue is
 * gone. */
static void
bbr_cycle(struct stream *s, uint64_t prior_in_flight, uint64_t now)
{
	struct bbr *b = &s->bbr;
	bool next = now - b->cycle_us > b->min_rtt;

	if (b->pacing_gain > 1)
		next = next && (double)prior_in_flight >=
		    bbr_bdp(s, b->pacing_gain, s->cwnd);
	else if (b->pacing_gain < 1)
		next = next || (double)s->in_flight <= bbr_bdp(s, 1.0, s->cwnd);
	if (next)
		bbr_cycle_to(s, b->cycle_idx + 1, now);
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
bbr_probe_rtt(struct stream *s, bool expired, uint64_t now)
{
	struct bbr *b = &s->bbr;

	if (b->state != BBR_PROBE_RTT) {
		if (!expired)
			return;
		b->prior_cwnd = s->cwnd;
		b->state = BBR_PROBE_RTT;
		b->pacing_gain = 1;
		b->probe_rtt_done_us = 0;
	}
	if (b->probe_rtt_done_us == 0) {
		double low = bbr_bdp(s, BBR_PROBE_RTT_CWND_GAIN, 0);

		if (low < bbr_min_pipe(s))
			low = bbr_min_pipe(s);
		if ((double)s->in_flight <= low) {
			b->probe_rtt_done_us = now + BBR_PROBE_RTT_US;
			b->probe_rtt_round_done = false;
			b->next_round_delivered = b->delivered;
		}
		return;
	}
	if (b->round_start)
		b->probe_rtt_round_done = true;
	if (!b->probe_rtt_round_done || now < b->probe_rtt_done_us)
		return;
	b->min_rtt_us = now;
	if (s->cwnd < b->prior_cwnd)
		s->cwnd = b->prior_cwnd;
	if ((double)b->min_rtt > BBR_CWND_GAIN * (double)b->stale_min_rtt +
	    GRANULARITY_US) {
		b->filled_pipe = false;
		b->full_bw = 0;
		b->full_bw_cnt = b->lossy_rounds = 0;
		b->inflight_hi = INFINITY;
	}
	if (b->filled_pipe)
		bbr_enter_probe_bw(s, now);
	else
		bbr_enter_startup(s);
}

/* The window: growing by what was acknowledged up to cwnd_gain BDP plus
 * the quanta, then bounded by ProbeRTT and by inflight_hi. */
static void
bbr_set_cwnd(struct stream *s)
{
	struct bbr *b = &s->bbr;
	double init = INITIAL_WINDOW_PKTS * mss(s);
	double max = bbr_bdp(s, b->cwnd_gain, init) + BBR_QUANTA *
	    bbr_quantum(s), cap;

	if (b->filled_pipe) {
		s->cwnd += b->rs.newly_acked;
		if (s->cwnd > max)
			s->cwnd = max;
	} else if (s->cwnd < max || (double)b->delivered < init)
		s->cwnd += b->rs.newly_acked;
	if (s->cwnd < bbr_min_pipe(s))
		s->cwnd = bbr_min_pipe(s);
	if (b->state == BBR_PROBE_RTT) {
		cap = bbr_bdp(s, BBR_PROBE_RTT_CWND_GAIN, 0);
		if (cap < bbr_min_pipe(s))
			cap = bbr_min_pipe(s);
		if (s->cwnd > cap)
			s->cwnd = cap;
	}
	/* Probing may go above the bound from loss, to the probe's own
	 * target; it is raised again by what gets through. */
	cap = b->inflight_hi;
	if (bbr_probing(s) && cap < bbr_bdp(s, b->pacing_gain, 0) +
	    BBR_QUANTA * bbr_quantum(s))
		cap = bbr_bdp(s, b->pacing_gain, 0) + BBR_QUANTA *
		    bbr_quantum(s);
	if (cap < bbr_min_pipe(s))
		cap = bbr_min_pipe(s);
	if (s->cwnd > cap)
		s->cwnd = cap;
}

/*
 * After an ACK's acknowledgements and losses (the draft's
 * BBRUpdateOnACK): the rate sample, rounds, the bandwidth and min_rtt
 * filters, the state machine, then the pacing rate and the window.
 * prior_in_flight is what was in flight before the ACK.
 */
static void
bbr_on_ack(struct stream *s, uint64_t prior_in_flight, uint64_t now)
{
	struct bbr *b = &s->bbr;
	struct rate_sample *rs = &b->rs;
	uint64_t interval;
	bool expired;

	if (!rs->have)
		return;
	if (b->app_limited != 0 && b->delivered > b->app_limited)
		b->app_limited = 0;
	b->round_start = rs->prior_delivered >= b->next_round_delivered;
	if (b->round_start) {
		if (b->state == BBR_STARTUP)
			bbr_check_full_pipe(s);
		b->next_round_delivered = b->delivered;
		b->round_count++;
		b->round_lost = b->round_lost_pkts = 0;
		b->round_delivered0 = b->delivered;
	}
	/* "the delivery rate ... over the longer of the send and ACK
	 * intervals"; one shorter than min_rtt is compressed, not real. */
	interval = umax(rs->send_elapsed, rs->ack_elapsed);
	if (interval > 0 && (!s->have_rtt || interval >= s->min_rtt)) {
		double rate = (double)(b->delivered - rs->prior_delivered) /
		    (double)interval;

		if (!rs->app_limited || rate >= b->max_bw)
			bbr_update_max_bw(s, rate);
	}
	/* An ACK whose loss rate stayed below the threshold raises the
	 * bound from loss to what it had in flight. */
	if ((double)bbr_lost_since(s, rs->prior_lost) <= BBR_LOSS_THRESH *
	    (double)rs->tx_in_flight) {
		if (!rs->app_limited && rs->probing &&
		    (double)rs->tx_in_flight > b->inflight_hi)
			b->inflight_hi = (double)rs->tx_in_flight;
	} else if (rs->probing && !rs->app_limited)
		bbr_too_high(s, (double)rs->tx_in_flight, now);

	expired = now > b->min_rtt_us + BBR_MIN_RTT_US;
	if (expired && b->state != BBR_PROBE_RTT) {
		b->stale_min_rtt = b->min_rtt;
		b->min_rtt = rs->rtt;
		b->min_rtt_us = now;
	} else if (rs->rtt < b->min_rtt) {
		b->min_rtt = rs->rtt;
		b->min_rtt_us = now;
	}

	if (b->state == BBR_STARTUP && b->filled_pipe) {
		b->state = BBR_DRAIN;
		b->pacing_gain = BBR_DRAIN_PACING_GAIN;
		b->cwnd_gain = BBR_CWND_GAIN;
	}
	if (b->state == BBR_DRAIN &&
	    (double)s->in_flight <= bbr_bdp(s, 1.0, s->cwnd))
		bbr_enter_probe_bw(s, now);
	if (b->state == BBR_PROBE_BW)
		bbr_cycle(s, prior_in_flight, now);
	bbr_probe_rtt(s, expired, now);

	bbr_set_pacing(s);
	bbr_set_cwnd(s);
}

/* RFC 9002 §7.6.2 persistent congestion: "the sender's congestion window
 * MUST be reduced to the minimum congestion window"; BBR's model stays,
 * so the window grows back within a few rounds if the path is fine. */
static void
bbr_persistent(struct stream *s)
{
	s->cwnd = bbr_min_pipe(s);
}

/* The virtual bytes a packet carried have arrived. */
static void
data_acked(struct stream *s, const struct sent *r)
{
	uint64_t a = umax(r->off, s->snd_una), b = r->off + r->len;

	if (a >= b)
		return;
	/* A range we cannot remember as acknowledged is sent again. */
	if (ivs_add(&s->acked, a, b, false) == -1)
		ivs_add(&s->lost, a, b, true);
	while (s->acked.n > 0 && s->acked.lo[0] <= s->snd_una) {
		s->snd_una = umax(s->snd_una, s->acked.hi[0]);
		ivs_pop(&s->acked);
	}
}

/*
 * RFC 9000 §13.2.4: "When a packet containing an ACK frame is
 * acknowledged, the receiver can stop acknowledging packets less than or
 * equal to the Largest Acknowledged field in the sent ACK frame."  Keeps
 * our ACK frames small; a packet that old arriving now is ignored and its
 * sender, which long called it lost, has sent its data again.
 */
static void
ack_pruned(struct stream *s, uint64_t largest)
{
	while (s->rx.n > 0 && s->rx.hi[0] - 1 <= largest) {
		s->rx_floor = umax(s->rx_floor, s->rx.hi[0]);
		ivs_pop(&s->rx);
	}
	if (s->rx.n > 0 && s->rx.lo[0] <= largest) {
		s->rx.lo[0] = largest + 1;
		s->rx_floor = umax(s->rx_floor, largest + 1);
	}
	/* What was received late, in an old gap, goes unacknowledged. */
	if (s->rx.n == 0) {
		s->rx_elicit = 0;
		s->rx_new = false;
		s->ack_due = UINT64_MAX;
	}
}

/* The middle of what is left to search, or 0 when it is narrow enough. */
static size_t
pmtu_mid(const struct stream *s)
{
	if (s->pmtu_hi < s->conf.mtu + PMTU_STEP)
		return 0;
	return (s->conf.mtu + s->pmtu_hi + 1) / 2;
}

/* A probe of size bytes was acknowledged (ok) or lost: raise the MTU, or
 * after PMTU_MAX_PROBES losses lower the ceiling; then search on. */
static void
pmtu_result(struct stream *s, size_t size, bool ok)
{
	if (size != s->pmtu_probe)
		return;
	s->pmtu_probe = 0;
	if (ok) {
		s->conf.mtu = size;
		s->pmtu_fails = 0;
		s->pmtu_try = pmtu_mid(s);
		log_v(2, "stream: path MTU now %zu bytes of payload", size);
	} else if (++s->pmtu_fails >= PMTU_MAX_PROBES) {
		s->pmtu_hi = size - 1;
		s->pmtu_fails = 0;
		s->pmtu_try = pmtu_mid(s);
	}
}

/* A packet of ours is newly acknowledged. */
static void
pkt_acked(struct stream *s, struct sent *r, uint64_t now)
{
	r->state = PKT_ACKED;
	s->in_flight -= r->size;
	s->elicit_out--;
	data_acked(s, r);
	if (r->acked_to > 0)
		ack_pruned(s, r->acked_to - 1);
	if (r->flags & PF_DONE)
		s->done_acked = true;
	if (r->flags & PF_WRITTEN)
		s->written_acked = true;
	/* A probe's size is not the path's rate: it feeds no sample. */
	if (r->flags & PF_PMTU)
		pmtu_result(s, r->size, true);
	else
		bbr_on_acked(s, r, now);
}

/* A packet of ours is declared lost: what it carried goes again. */
static void
pkt_lost(struct stream *s, struct sent *r, uint64_t now)
{
	r->state = PKT_LOST;
	s->in_flight -= r->size;
	s->elicit_out--;
	s->st.pkts_lost++;
	if (r->len > 0 && r->off + r->len > s->snd_una)
		ivs_add(&s->lost, umax(r->off, s->snd_una), r->off + r->len,
		    true);
	if (r->flags & PF_MAX_DATA)
		s->max_data_due = true;
	if (r->flags & PF_DONE)
		s->done_due = true;
	if (r->flags & PF_WRITTEN)
		s->written_due = true;
	/* RFC 8899 §3: "Loss of a probe packet ... SHOULD NOT be treated as
	 * an indication of congestion". */
	if (r->flags & PF_PMTU) {
		pmtu_result(s, r->size, false);
		return;
	}
	bbr_on_lost(s, r, now);
	if (s->hist_n == LOSS_HISTORY) {
		s->hist_first = (s->hist_first + 1) % LOSS_HISTORY;
		s->hist_n--;
	}
	s->hist[(s->hist_first + s->hist_n++) % LOSS_HISTORY] =
	    (struct lossrec){ r->pn, r->sent_us, s->largest_acked,
	    s->bbr.round_count, r->size };
}

/*
 * A packet we called lost was acknowledged after all: it was reordered,
 * and RFC 9002 §6.1 lets the thresholds adapt.  BBR took nothing from
 * the window for it; it is taken out of the loss counts, so that a
 * reordering path does not look lossy.
 */
static void
spurious(struct stream *s, const struct lossrec *l, uint64_t now)
{
	uint64_t late = (now - umin(now, l->sent_us)) * 8 / umax(umax(s->srtt,
	    s->latest_rtt), 1) + 1;

	s->pkt_thresh = umin(PKT_THRESHOLD_MAX,
	    umax(s->pkt_thresh, l->largest - l->pn + 1));
	s->time_thresh8 = umin(TIME_THRESH_8_MAX, umax(s->time_thresh8, late));
	s->bbr.lost -= umin(s->bbr.lost, l->size);
	if (l->round == s->bbr.round_count) {
		s->bbr.round_lost -= umin(s->bbr.round_lost, l->size);
		s->bbr.round_lost_pkts -= umin(s->bbr.round_lost_pkts, 1);
	}
}

/* Looks for packets we called lost in one acknowledged range, forgetting
 * losses too old to be reordering. */
static void
find_spurious(struct stream *s, uint64_t lo, uint64_t hi, uint64_t now)
{
	uint64_t keep = 2 * pto_base(s);
	unsigned i;

	while (s->hist_n > 0 && now > s->hist[s->hist_first].sent_us + keep) {
		s->hist_first = (s->hist_first + 1) % LOSS_HISTORY;
		s->hist_n--;
	}
	for (i = 0; i < s->hist_n; i++) {
		struct lossrec *l =
		    &s->hist[(s->hist_first + i) % LOSS_HISTORY];

		if (l->pn >= lo && l->pn <= hi) {
			struct sent *r = slot(s, l->pn);

			/* Its data need not go again. */
			if (r->pn == l->pn && r->state == PKT_LOST) {
				r->state = PKT_ACKED;
				data_acked(s, r);
			}
			spurious(s, l, now);
			l->pn = UINT64_MAX;
		}
	}
}

/*
 * RFC 9002 §6.1: a packet is lost once one sent kPacketThreshold later is
 * acknowledged, or once it is older than the loss delay and a later one is
 * acknowledged.  Both only grow with the packet number, so walking from
 * the oldest outstanding packet and stopping at the first that is not
 * lost visits each packet once.
 */
static void
detect_lost(struct stream *s, uint64_t now)
{
	uint64_t delay = loss_delay(s), first = 0, last = 0;
	uint64_t persistent;
	bool run = false, collapse = false;

	s->loss_time = 0;
	/* RFC 9002 §7.6.1: persistent congestion is a run of lost packets
	 * spanning (smoothed_rtt + max(4*rttvar, kGranularity) +
	 * max_ack_delay) * kPersistentCongestionThreshold. */
	persistent = pto_base(s) * PERSISTENT_THRESHOLD;
	for (; s->ring_lo < s->next_pn; s->ring_lo++) {
		struct sent *r = slot(s, s->ring_lo);

		if (!outstanding(s, s->ring_lo)) {
			if (r->pn == s->ring_lo && r->state == PKT_ACKED)
				run = false;
			continue;
		}
		if (!s->have_acked || r->pn > s->largest_acked)
			break;
		if (s->largest_acked - r->pn < s->pkt_thresh &&
		    now < r->sent_us + delay) {
			s->loss_time = r->sent_us + delay;
			break;
		}
		if (!run) {
			run = true;
			first = r->sent_us;
		}
		last = r->sent_us;
		/* "only ... packets sent after ... the first RTT sample" */
		if (s->have_rtt && first > s->first_rtt_us &&
		    last - first > persistent)
			collapse = true;
		pkt_lost(s, r, now);
	}
	if (collapse)
		bbr_persistent(s);
}

/* Says why a payload is refused (with -v -v only: forgeries are the
 * session's business) and returns -1. */
static int
bad(const char *why, uint64_t pn)
{
	log_v(2, "stream: packet %llu ignored: %s", (unsigned long long)pn,
	    why);
	return -1;
}

/* The ACK frame's ranges, highest first: 0 with [*lo,*hi], 1 at the end,
 * -1 when malformed. */
static int
ack_next(struct rd *r, uint64_t *left, uint64_t *lo, uint64_t *hi,
    bool first)
{
	uint64_t gap, len;

	if (*left == 0)
		return 1;
	(*left)--;
	if (first) {
		if (get_varint(r, &len) == -1 || len > *hi)
			return -1;
		*lo = *hi - len;
		return 0;
	}
	if (get_varint(r, &gap) == -1 || get_varint(r, &len) == -1 ||
	    *lo < gap + 2 || len > *lo - gap - 2)
		return -1;
	*hi = *lo - gap - 2;
	*lo = *hi - len;
	return 0;
}

/* Parses and checks a payload against our state.  0, or -1 (said why). */
static int
parse(const struct stream *s, uint64_t pn, const uint8_t *p, size_t len,
    struct frames *f)
{
	struct rd r = { p, p + len };
	uint64_t type, v, count, lo, hi, limit, end;
	int rc;

	memset(f, 0, sizeof *f);
	if (len == 0)
		return bad("empty", pn);
	while (r.p < r.end) {
		if (get_varint(&r, &type) == -1)
			return bad("truncated", pn);
		switch (type) {
		case FT_PADDING:
			break;
		case FT_PING:
			f->ping = f->elicit = true;
			break;
		case FT_ACK:
			if (f->ack)
				return bad("two ACK frames", pn);
			f->ack = true;
			if (get_varint(&r, &f->ack_largest) == -1 ||
			    get_varint(&r, &f->ack_delay) == -1)
				return bad("truncated ACK", pn);
			f->ack_ranges = r.p;
			if (get_varint(&r, &count) == -1)
				return bad("truncated ACK", pn);
			if (f->ack_largest >= s->next_pn)
				return bad("ACK of a packet never sent", pn);
			count++;
			hi = f->ack_largest;
			lo = 0;
			for (rc = ack_next(&r, &count, &lo, &hi, true); rc == 0;
			    rc = ack_next(&r, &count, &lo, &hi, false))
				;
			if (rc == -1)
				return bad("bad ACK range", pn);
			f->ack_end = r.p;
			break;
		case FT_STREAM:
		case FT_STREAM_FIN:
			if (f->stream)
				return bad("two STREAM frames", pn);
			f->stream = f->elicit = true;
			f->fin = type == FT_STREAM_FIN;
			if (get_varint(&r, &f->off) == -1 ||
			    get_varint(&r, &f->len) == -1 ||
			    f->len > (uint64_t)(r.end - r.p))
				return bad("truncated STREAM", pn);
			f->data = r.p;
			r.p += f->len;
			end = f->off + f->len;
			limit = umax(s->rcv_max, INITIAL_MAX_DATA);
			/* RFC 9000 §4.1: "A receiver MUST close the connection
			 * with an error of type FLOW_CONTROL_ERROR if the sender
			 * violates the advertised connection or stream data
			 * limits" */
			if (end > limit)
				return bad("data beyond MAX_DATA", pn);
			/* RFC 9000 §4.5: the final size must not change and no
			 * data may lie beyond it. */
			if (s->rcv_fin != UINT64_MAX && (end > s->rcv_fin ||
			    (f->fin && end != s->rcv_fin)))
				return bad("final size changed", pn);
			if (f->fin && end < s->rcv_high)
				return bad("final size below data", pn);
			break;
		case FT_MAX_DATA:
			if (get_varint(&r, &v) == -1)
				return bad("truncated MAX_DATA", pn);
			f->max_data = f->elicit = true;
			f->max = umax(f->max, v);
			break;
		case FT_CLOSE:
			if (r.end - r.p < 4)
				return bad("truncated CLOSE", pn);
			f->close = true;
			f->code = (uint32_t)r.p[0] << 24 |
			    (uint32_t)r.p[1] << 16 | (uint32_t)r.p[2] << 8 |
			    r.p[3];
			r.p += 4;
			if (get_varint(&r, &f->whylen) == -1 ||
			    f->whylen > (uint64_t)(r.end - r.p))
				return bad("truncated CLOSE", pn);
			f->why = r.p;
			r.p += f->whylen;
			break;
		case FT_DATAGRAM:
			if (f->dgram)
				return bad("two DATAGRAM frames", pn);
			if (get_varint(&r, &f->dglen) == -1 ||
			    f->dglen > (uint64_t)(r.end - r.p))
				return bad("truncated DATAGRAM", pn);
			f->dgram = f->elicit = true;
			f->dg = r.p;
			r.p += f->dglen;
			break;
		case FT_PATH_CHALLENGE:
		case FT_PATH_RESPONSE:
			if (f->path)
				return bad("two path frames", pn);
			if (r.end - r.p < STREAM_PATH_DATA)
				return bad("truncated path frame", pn);
			f->path = type == FT_PATH_CHALLENGE ? STREAM_PATH_CHALLENGE :
			    STREAM_PATH_RESPONSE;
			f->path_data = r.p;
			r.p += STREAM_PATH_DATA;
			break;
		case FT_DONE:
			/* The peer cannot have all of ours before we sent
			 * it. */
			if (!s->fin || s->snd_nxt != s->snd_end + 1)
				return bad("DONE before our FIN was sent", pn);
			f->done = f->elicit = true;
			break;
		case FT_WRITTEN:
			/* The same: the peer cannot have written what we
			 * have not finished sending. */
			if (!s->fin || s->snd_nxt != s->snd_end + 1)
				return bad("WRITTEN before our FIN was sent", pn);
			f->written = f->elicit = true;
			break;
		default:
			return bad("unknown frame type", pn);
		}
	}
	return 0;
}

/* An ACK frame, already validated (RFC 9002 §A.7 OnAckReceived). */
static void
on_ack(struct stream *s, const struct frames *f, uint64_t now)
{
	struct rd r = { f->ack_ranges, f->ack_end };
	uint64_t count, lo = 0, hi = f->ack_largest, pn, delay;
	uint64_t prior_in_flight = s->in_flight;
	bool newly = false;
	int rc;

	memset(&s->bbr.rs, 0, sizeof s->bbr.rs);
	/* RFC 9002 §5.1: an RTT sample when the largest acknowledged packet
	 * is newly acknowledged and ack-eliciting. */
	if (outstanding(s, f->ack_largest) &&
	    now >= slot(s, f->ack_largest)->sent_us) {
		delay = f->ack_delay > (UINT64_MAX >> ACK_DELAY_EXP) ?
		    UINT64_MAX : f->ack_delay << ACK_DELAY_EXP;
		rtt_sample(s, now - slot(s, f->ack_largest)->sent_us, delay,
		    now);
	}
	if (!s->have_acked || f->ack_largest > s->largest_acked)
		s->largest_acked = f->ack_largest;
	s->have_acked = true;
	get_varint(&r, &count);
	count++;
	for (rc = ack_next(&r, &count, &lo, &hi, true); rc == 0;
	    rc = ack_next(&r, &count, &lo, &hi, false)) {
		if (s->hist_n > 0)
			find_spurious(s, lo, hi, now);
		if (hi < s->ring_lo)
			continue;
		for (pn = umax(lo, s->ring_lo); pn <= hi; pn++) {
			if (outstanding(s, pn)) {
				pkt_acked(s, slot(s, pn), now);
				newly = true;
			}
		}
	}
	/* RFC 9002 §6.2.1: "The PTO backoff factor is reset when an
	 * acknowledgment is received". */
	if (newly)
		s->pto_count = 0;
	detect_lost(s, now);
	bbr_on_ack(s, prior_in_flight, now);
}

/* A STREAM frame, already validated: stored, and the in-order end
 * advanced over what it joins. */
static void
on_stream(struct stream *s, const struct frames *f)
{
	uint64_t end = f->off + f->len, a = umax(f->off, s->rcv_nxt);
	size_t cap = s->conf.rcvbuf;

	if (f->fin)
		s->rcv_fin = end;
	s->rcv_high = umax(s->rcv_high, end);
	if (a >= end)
		return;
	{
		size_t at = a % cap, n = end - a, first = umin(n, cap - at);

		memcpy(s->rbuf + at, f->data + (a - f->off), first);
		memcpy(s->rbuf, f->data + (a - f->off) + first, n - first);
	}
	if (a > s->rcv_nxt) {
		ivs_add(&s->ooo, a, end, false);
		return;
	}
	s->rcv_nxt = end;
	while (s->ooo.n > 0 && s->ooo.lo[0] <= s->rcv_nxt) {
		s->rcv_nxt = umax(s->rcv_nxt, s->ooo.hi[0]);
		ivs_pop(&s->ooo);
	}
}

/* Both directions are finished in the network's view, and each side
 * has said that it wrote the other's stream out (WRITTEN); the reader
 * may still be behind. */
static bool
net_done(const struct stream *s)
{
	return stream_send_done(s) && s->rcv_nxt == s->rcv_fin &&
	    s->written_acked && s->peer_written;
}

/* The peer has everything we sent: nothing of ours is outstanding. */
static void
on_done(struct stream *s)
{
	uint64_t pn;

	s->peer_done = true;
	s->written_acked = true;	/* DONE comes after WRITTEN */
	s->snd_una = s->snd_end + 1;
	s->acked.n = s->lost.n = 0;
	ivs_setoff(&s->acked, 0);
	ivs_setoff(&s->lost, 0);
	for (pn = s->ring_lo; pn < s->next_pn; pn++)
		if (outstanding(s, pn))
			slot(s, pn)->state = PKT_ACKED;
	s->in_flight = s->elicit_out = 0;
	s->loss_time = 0;
	s->probes = 0;
	s->hist_n = 0;
}

/* A DATAGRAM frame: queued for the reader, or dropped when the queue is
 * full (it is unreliable: the reader is too slow). */
static void
on_dgram(struct stream *s, const struct frames *f)
{
	struct dgq *q = &s->drx;

	if (q->n == q->slots || f->dglen > q->slot) {
		s->st.dgrams_dropped++;
		return;
	}
	memcpy(q->buf + (size_t)((q->head + q->n) % q->slots) * q->slot, f->dg,
	    f->dglen);
	q->len[(q->head + q->n) % q->slots] = f->dglen;
	q->n++;
	s->st.dgrams_recv++;
}

int
stream_input(struct stream *s, uint64_t now, uint64_t pn, const uint8_t *p,
    size_t len)
{
	struct frames f;
	uint64_t largest;

	s->path_frame = STREAM_PATH_NONE;
	if (s->err != STREAM_OK || s->closing)
		return 0;
	if (pn > VARINT_MAX)
		return bad("packet number too large", pn);
	/* RFC 9000 §12.3: duplicates "MUST" be discarded; one too old to
	 * tell is treated as one: its sender resends what it carried. */
	if (pn < s->rx_floor || ivs_has(&s->rx, pn))
		return 0;
	if (!ivs_fits(&s->rx, pn, pn + 1) && pn < s->rx.lo[0])
		return 0;
	if (parse(s, pn, p, len, &f) == -1) {
		s->st.pkts_bad++;
		return -1;
	}
	/* Out-of-order data that we cannot track is dropped unacknowledged,
	 * so the peer sends it again. */
	if (f.stream && f.off > s->rcv_nxt && f.len > 0 &&
	    !ivs_fits(&s->ooo, f.off, f.off + f.len))
		return 0;

	largest = s->rx.n > 0 ? s->rx.hi[s->rx.n - 1] - 1 : 0;
	if (!ivs_fits(&s->rx, pn, pn + 1)) {
		s->rx_floor = s->rx.hi[0];
		ivs_pop(&s->rx);
	}
	if (s->rx.n == 0 || pn > largest)
		s->rx_largest_us = now;
	/* RFC 9000 §13.2.1: acknowledge at once a packet that arrives out
	 * of order or leaves a gap; else within max_ack_delay, or at once
	 * after the second ack-eliciting packet (§13.2.2). */
	if (f.elicit) {
		s->rx_elicit++;
		s->rate_pkts++;
		if (s->have_rtt && now >= s->rate_us + s->min_rtt) {
			s->ack_every = umax(ACK_ELICIT_THRESHOLD, umin(
			    ACK_ELICIT_MAX, s->rate_pkts / ACK_WINDOW_SHARE));
			s->rate_us = now;
			s->rate_pkts = 0;
		}
		/* The peer leaves once DONE is acknowledged: no delay. */
		if (f.done || (s->rx.n > 0 && pn != largest + 1))
			s->ack_due = now;
		else if ((uint64_t)s->rx_elicit >= s->ack_every)
			s->ack_due = now;
		else
			s->ack_due = umin(s->ack_due, now + MAX_ACK_DELAY_US);
	}
	ivs_add(&s->rx, pn, pn + 1, false);
	s->rx_new = true;
	s->last_recv_us = now;
	s->st.pkts_recv++;

	if (f.close) {
		size_t i, n = umin(f.whylen, STREAM_REASON_MAX);

		s->err = STREAM_ABORTED;
		s->peer_code = f.code;
		/* Outside text, for a terminal: printable ASCII only. */
		for (i = 0; i < n; i++)
			s->peer_why[i] = f.why[i] >= 0x20 && f.why[i] < 0x7f ?
			    (char)f.why[i] : '?';
		s->peer_why[n] = '\0';
		log_v(1, "stream: peer closed with code %u", f.code);
		return 0;
	}
	if (f.path) {
		s->path_frame = f.path;
		memcpy(s->path_data, f.path_data, STREAM_PATH_DATA);
	}
	if (f.ack)
		on_ack(s, &f, now);
	if (f.max_data)
		s->peer_max = umax(s->peer_max, f.max);
	if (f.stream)
		on_stream(s, &f);
	if (f.dgram)
		on_dgram(s, &f);
	if (f.written)
		s->peer_written = true;
	if (f.done)
		on_done(s);
	/* Like a closing endpoint (RFC 9000 §10.2.1), answer what still
	 * arrives: the peer has not heard our DONE. */
	if (s->done_sent && !s->done_acked && !s->peer_done)
		s->done_due = true;
	tidy(s);
	return 0;
}

/* Writes an ACK of everything in rx into at most room bytes: its length,
 * or 0 when it does not fit. */
static size_t
put_ack(struct stream *s, uint64_t now, uint8_t *p, size_t room)
{
	uint64_t largest, delay, first;
	size_t n, len;
	uint8_t *count;
	int i;

	if (s->rx.n == 0)
		return 0;
	i = (int)s->rx.n - 1;
	largest = s->rx.hi[i] - 1;
	delay = (now - umin(now, s->rx_largest_us)) >> ACK_DELAY_EXP;
	first = largest - s->rx.lo[i];
	len = 1 + varint_len(largest) + varint_len(delay) + 1 +
	    varint_len(first);
	if (len > room)
		return 0;
	p[0] = FT_ACK;
	n = 1;
	n += put_varint(p + n, largest);
	n += put_varint(p + n, delay);
	count = p + n++;
	n += put_varint(p + n, first);
	*count = 0;
	for (i--; i >= 0; i--) {
		uint64_t gap = s->rx.lo[i + 1] - s->rx.hi[i] - 1;
		uint64_t rlen = s->rx.hi[i] - 1 - s->rx.lo[i];

		if (n + varint_len(gap) + varint_len(rlen) > room)
			break;
		n += put_varint(p + n, gap);
		n += put_varint(p + n, rlen);
		(*count)++;
	}
	s->rx_elicit = 0;
	s->rx_new = false;
	s->ack_due = UINT64_MAX;
	return n;
}

/*
 * Writes a STREAM frame for as much of the virtual range [a,b) as fits in
 * room bytes, copying from the send buffer.  Returns the frame's length
 * (0: nothing fits) and sets *sent to the virtual bytes it carries.
 */
static size_t
put_stream(const struct stream *s, uint64_t a, uint64_t b, uint8_t *p,
    size_t room, uint64_t *sent)
{
	uint64_t d = umin(b, s->snd_end), n;
	size_t hdr = 1 + varint_len(a) + varint_len(umin(d - a, room));
	size_t cap = s->conf.sndbuf, at, first;
	bool fin;

	if (hdr > room)
		return 0;
	n = umin(d - a, room - hdr);
	fin = n == d - a && b > s->snd_end;
	if (n == 0 && !fin)
		return 0;
	p[0] = fin ? FT_STREAM_FIN : FT_STREAM;
	hdr = 1 + put_varint(p + 1, a);
	hdr += put_varint(p + hdr, n);
	at = a % cap;
	first = umin(n, cap - at);
	memcpy(p + hdr, s->sbuf + at, first);
	memcpy(p + hdr + first, s->sbuf, n - first);
	*sent = n + fin;
	return hdr + n;
}

/* What time alone changes: the idle limit, loss by time, PTO, pacing
 * credit. */
static void
timers(struct stream *s, uint64_t now)
{
	if (s->conf.idle_us > 0 && !s->peer_done &&
	    now >= s->last_recv_us + s->conf.idle_us) {
		s->err = STREAM_IDLE;
		log_v(1, "stream: nothing heard for %llu ms",
		    (unsigned long long)(s->conf.idle_us / 1000));
		return;
	}
	if (s->loss_time != 0 && now >= s->loss_time)
		detect_lost(s, now);
	else if (s->elicit_out > 0 && now >= pto_deadline(s)) {
		/* RFC 9002 §6.2.4: "When a PTO timer expires, a sender MUST
		 * send at least one ack-eliciting packet". */
		s->pto_count++;
		s->probes = PTO_PROBES;
	}
	if (s->tokens < pacing_burst(s)) {
		s->tokens += (double)(now - umin(now, s->pace_us)) *
		    pacing_rate(s);
		if (s->tokens > pacing_burst(s))
			s->tokens = pacing_burst(s);
	}
	s->pace_us = s->last_output_us = now;
	tidy(s);
}

/* Whether the congestion window has room for another full packet. */
static bool
cc_open(const struct stream *s)
{
	return (double)(s->in_flight + s->conf.mtu) <= s->cwnd;
}

/* The data for the next packet: true with the virtual range [*a,*b) and
 * whether it is sent again. */
static bool
pick_data(struct stream *s, bool probe, uint64_t *a, uint64_t *b,
    bool *again)
{
	uint64_t lim = send_limit(s);

	if (!probe && (!cc_open(s) || s->tokens <= 0))
		return false;
	*again = true;
	if (!(probe && s->snd_nxt < lim) && next_lost(s, a, b))
		return true;
	if (s->snd_nxt < lim) {
		*again = false;
		*a = s->snd_nxt;
		*b = lim;
		return true;
	}
	if (probe && s->ring_lo < s->next_pn) {
		/* RFC 9002 §6.2.4: "Previously sent data MAY be sent if no
		 * new data can be sent." */
		const struct sent *r = slot(s, s->ring_lo);

		*a = umax(r->off, s->snd_una);
		*b = r->off + r->len;
		return *a < *b;
	}
	return false;
}

/* A DONE of ours waits to go out. */
static bool
done_pending(const struct stream *s)
{
	return s->done_due && s->done_sent && !s->done_acked && !s->peer_done;
}

/* A WRITTEN of ours waits to go out. */
static bool
written_pending(const struct stream *s)
{
	return s->written_due && !s->written_acked && !s->peer_done;
}

/* A path MTU probe, PING and PADDING up to the size being tried, when
 * one is due and the window has room: its length, or 0.  Probes go out
 * only while there is data waiting for the larger packets. */
static size_t
pmtu_output(struct stream *s, uint64_t now, uint64_t *pn, uint8_t *buf,
    size_t cap)
{
	size_t size = s->pmtu_try;
	struct sent *r;

	if (size == 0 || s->pmtu_probe || size > cap || !ring_room(s) ||
	    !s->have_rtt || !cc_open(s) || s->tokens <= 0 ||
	    (s->snd_nxt >= s->snd_end && s->dtx.n == 0))
		return 0;
	buf[0] = FT_PING;
	memset(buf + 1, FT_PADDING, size - 1);
	*pn = s->next_pn++;
	s->last_send_us = now;
	s->st.pkts_sent++;
	r = slot(s, *pn);
	r->pn = *pn;
	r->sent_us = now;
	r->off = r->len = 0;
	r->size = size;
	r->state = PKT_OUT;
	r->flags = PF_PMTU;
	r->acked_to = 0;
	s->in_flight += size;
	s->elicit_out++;
	s->last_elicit_us = now;
	s->tokens -= size;
	s->pmtu_probe = size;
	return size;
}

size_t
stream_output(struct stream *s, uint64_t now, uint64_t *pn, uint8_t *buf,
    size_t cap)
{
	size_t room = umin(cap, s->conf.mtu), n = 0, len;
	bool probe, ping, max_data, data, ack, done, wrote, dgram, again = false;
	uint64_t a = 0, b = 0, sent = 0, acked_to = 0;
	struct sent *r;

	if (s->close_left > 0) {
		size_t why = umin(strlen(s->close_why), room - umin(room, CLOSE_HDR));

		if (room < CLOSE_HDR)
			return 0;
		buf[0] = FT_CLOSE;
		buf[1] = s->close_code >> 24;
		buf[2] = s->close_code >> 16;
		buf[3] = s->close_code >> 8;
		buf[4] = s->close_code;
		n = 5 + put_varint(buf + 5, why);
		memcpy(buf + n, s->close_why, why);
		s->close_left--;
		*pn = s->next_pn++;
		s->st.pkts_sent++;
		return n + why;
	}
	if (s->err != STREAM_OK || s->closing)
		return 0;
	timers(s, now);
	if (s->err != STREAM_OK)
		return 0;
	if (!s->done_sent && !s->peer_done && net_done(s))
		s->done_sent = s->done_due = true;

	ring_advance(s);
	bbr_check_app_limited(s);
	if ((n = pmtu_output(s, now, pn, buf, cap)) > 0)
		return n;
	probe = s->probes > 0 && ring_room(s);
	ping = ring_room(s) && (probe || s->ping_due ||
	    (s->conf.keepalive_us > 0 &&
	    now >= s->last_send_us + s->conf.keepalive_us));
	max_data = ring_room(s) && (s->max_data_due || probe);
	data = ring_room(s) && pick_data(s, probe, &a, &b, &again);
	done = ring_room(s) && (done_pending(s) || (probe && s->done_sent &&
	    !s->done_acked && !s->peer_done));
	wrote = ring_room(s) && (written_pending(s) || (probe && s->written &&
	    !s->written_acked && !s->peer_done));
	dgram = ring_room(s) && s->dtx.n > 0 && (probe || (cc_open(s) && s->tokens > 0));
	ack = s->rx_elicit > 0 && now >= s->ack_due;
	if (!probe && !ping && !max_data && !data && !ack && !done && !wrote && !dgram)
		return 0;

	if (s->rx_new && (n = put_ack(s, now, buf,
	    ack && !data ? room : room / 2)) > 0)
		acked_to = s->rx.hi[s->rx.n - 1];
	if (max_data) {
		uint64_t m = s->rcv_read + s->conf.rcvbuf;

		if (n + 1 + varint_len(m) <= room) {
			buf[n++] = FT_MAX_DATA;
			n += put_varint(buf + n, m);
			s->rcv_max = umax(s->rcv_max, m);
			s->max_data_due = false;
		} else
			max_data = false;
	}
	if (done) {
		if (n < room) {
			buf[n++] = FT_DONE;
			s->done_due = false;
			s->last_done_us = now;
		} else
			done = false;
	}
	if (wrote) {
		if (n < room) {
			buf[n++] = FT_WRITTEN;
			s->written_due = false;
		} else
			wrote = false;
	}
	if (dgram) {
		const uint8_t *d = s->dtx.buf + (size_t)s->dtx.head * s->dtx.slot;
		size_t dl = s->dtx.len[s->dtx.head];

		if (n + 1 + varint_len(dl) + dl <= room) {
			buf[n++] = FT_DATAGRAM;
			n += put_varint(buf + n, dl);
			memcpy(buf + n, d, dl);
			n += dl;
			s->dtx.head = (s->dtx.head + 1) % s->dtx.slots;
			s->dtx.n--;
			s->st.dgrams_sent++;
		} else
			dgram = false;
	}
	if (data) {
		len = put_stream(s, a, b, buf + n, room - n, &sent);
		n += len;
		data = len > 0;
	}
	if ((probe || ping) && !data && !max_data && !done && !wrote && !dgram && n < room)
		buf[n++] = FT_PING;
	else
		ping = false;
	if (n == 0)
		return 0;

	*pn = s->next_pn++;
	s->last_send_us = now;
	s->st.pkts_sent++;
	if (!data && !max_data && !ping && !done && !wrote && !dgram)
		return n;

	/* Ack-eliciting: tracked until acknowledged or lost.  Any such
	 * packet answers stream_ping. */
	s->ping_due = false;
	r = slot(s, *pn);
	r->pn = *pn;
	r->sent_us = now;
	r->off = data ? a : 0;
	r->len = data ? sent : 0;
	r->size = n;
	r->state = PKT_OUT;
	r->flags = (max_data ? PF_MAX_DATA : 0) | (done ? PF_DONE : 0) |
	    (wrote ? PF_WRITTEN : 0);
	r->acked_to = acked_to;
	bbr_on_send(s, r);
	s->in_flight += n;
	s->elicit_out++;
	s->last_elicit_us = now;
	if (probe)
		s->probes--;
	else
		s->tokens -= n;
	if (data) {
		uint64_t bytes = sent - (a + sent > s->snd_end);

		s->st.bytes_sent += bytes;
		if (again) {
			s->st.bytes_retrans += bytes;
			if (s->lost.n > 0 && s->lost.lo[0] == a)
				s->lost.lo[0] = a + sent;
		} else
			s->snd_nxt = umax(s->snd_nxt, a + sent);
	}
	tidy(s);
	return n;
}

/*
 * When we may leave without an acknowledgement of our DONE: three PTOs
 * after the last packet in or DONE out.  DONE goes again on every PTO and
 * whenever the peer, not having it, sends anything.
 */
static uint64_t
linger_end(const struct stream *s)
{
	return umax(s->last_recv_us, s->last_done_us) +
	    LINGER_PTOS * pto_base(s);
}

bool
stream_can_close(const struct stream *s, uint64_t now)
{
	if (s->close_left > 0)
		return false;
	if (s->err != STREAM_OK || s->closing)
		return true;
	if (!stream_eof(s) || !net_done(s) || s->rx_elicit > 0)
		return false;
	return s->peer_done || (s->done_sent && !done_pending(s) &&
	    (s->done_acked || now >= linger_end(s)));
}

uint64_t
stream_deadline(const struct stream *s)
{
	uint64_t d = UINT64_MAX;

	if (s->close_left > 0)
		return 0;
	if (s->err != STREAM_OK || s->closing)
		return UINT64_MAX;
	if (s->conf.idle_us > 0)
		d = umin(d, s->last_recv_us + s->conf.idle_us);
	if (s->ping_due && ring_room(s))
		return 0;
	if (s->conf.keepalive_us > 0 && ring_room(s))
		d = umin(d, s->last_send_us + s->conf.keepalive_us);
	if (s->loss_time != 0)
		d = umin(d, s->loss_time);
	else if (s->elicit_out > 0)
		d = umin(d, pto_deadline(s));
	if (s->rx_elicit > 0)
		d = umin(d, s->ack_due);
	if (ring_room(s)) {
		if (s->max_data_due || s->probes > 0)
			return 0;
		if (cc_open(s) && (s->lost.n > 0 || s->dtx.n > 0 ||
		    s->snd_nxt < send_limit(s))) {
			if (s->tokens > 0)
				return 0;
			d = umin(d, s->pace_us + 1 +
			    (uint64_t)(-s->tokens / pacing_rate(s)));
		}
	}
	if (ring_room(s) && (done_pending(s) || written_pending(s) ||
	    (!s->done_sent && !s->peer_done && net_done(s))))
		return 0;
	/* The moment stream_can_close turns true, unless stream_output has
	 * been called since. */
	if (s->done_sent && !s->done_acked && !s->peer_done &&
	    linger_end(s) > s->last_output_us)
		d = umin(d, linger_end(s));
	return d;
}

static int
dgq_init(struct dgq *q, unsigned slots, size_t mtu)
{
	q->slots = slots;
	q->slot = mtu;
	if ((q->buf = malloc(slots * mtu)) == NULL ||
	    (q->len = calloc(slots, sizeof *q->len)) == NULL)
		return -1;
	return 0;
}

struct stream *
stream_new(const struct stream_conf *conf, uint64_t now)
{
	struct stream *s;
	uint64_t slots = 1024;
	size_t i;

	if (conf->mtu < MIN_MTU || conf->mtu > MAX_MTU || conf->sndbuf == 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->conf = *conf;
	if (s->conf.rcvbuf < INITIAL_MAX_DATA)
		s->conf.rcvbuf = INITIAL_MAX_DATA;
	/* Enough packet records for the whole send buffer in small packets
	 * plus control packets. */
	while (slots < 4 * (conf->sndbuf / conf->mtu) + 1024 &&
	    slots < RING_MAX)
		slots *= 2;
	/* Every range in these sets is a packet's worth or more, except
	 * where a peer sends small frames: twice the packets a buffer holds
	 * is plenty; beyond it we resend or drop, never grow. */
	if ((s->sbuf = malloc(s->conf.sndbuf)) == NULL ||
	    (s->rbuf = malloc(s->conf.rcvbuf)) == NULL ||
	    (s->ring = calloc(slots, sizeof *s->ring)) == NULL ||
	    ivs_init(&s->acked, 2 * s->conf.sndbuf / conf->mtu + 64) == -1 ||
	    ivs_init(&s->lost, 2 * s->conf.sndbuf / conf->mtu + 64) == -1 ||
	    ivs_init(&s->ooo, 2 * s->conf.rcvbuf / conf->mtu + 64) == -1 ||
	    ivs_init(&s->rx, ACK_RANGES_MAX) == -1 ||
	    dgq_init(&s->dtx, DGRAM_TX_SLOTS, conf->mtu) == -1 ||
	    dgq_init(&s->drx, DGRAM_RX_SLOTS, conf->mtu) == -1) {
		stream_free(s);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < slots; i++)
		s->ring[i].pn = UINT64_MAX;
	s->ring_mask = slots - 1;
	s->peer_max = INITIAL_MAX_DATA;
	s->rcv_fin = UINT64_MAX;
	s->max_data_due = true;
	s->ack_due = UINT64_MAX;
	s->ack_every = ACK_ELICIT_THRESHOLD;
	/* RFC 9002 §6.2.2: the initial RTT "SHOULD be set to 333
	 * milliseconds" when "no previous RTT is available"; the handshake's
	 * round trip is one, as QUIC's own handshake gives it. */
	s->srtt = conf->initial_rtt_us ? conf->initial_rtt_us : INITIAL_RTT_US;
	s->rttvar = s->srtt / 2;
	s->cwnd = umin(INITIAL_WINDOW_PKTS * conf->mtu,
	    umax(INITIAL_WINDOW_BYTES, MIN_WINDOW_PKTS * conf->mtu));
	bbr_enter_startup(s);
	/* BBRInitPacingRate: "nominal_bandwidth = InitialCwnd / (SRTT ?
	 * SRTT : 1ms)", times the Startup gain. */
	s->bbr.pacing_rate = BBR_STARTUP_PACING_GAIN * s->cwnd / 1000.0;
	s->bbr.min_rtt = s->bbr.stale_min_rtt = UINT64_MAX;
	s->bbr.min_rtt_us = s->bbr.delivered_us = s->bbr.first_sent_us = now;
	s->bbr.inflight_hi = INFINITY;
	s->bbr.rng = now ^ 0x9e3779b97f4a7c15ULL;
	s->pkt_thresh = PKT_THRESHOLD;
	s->time_thresh8 = TIME_THRESH_8;
	s->tokens = s->cwnd;
	s->pace_us = s->last_send_us = s->last_recv_us = now;
	/* Most paths carry a full Ethernet frame: try the top first. */
	if (conf->max_mtu > conf->mtu) {
		s->pmtu_hi = umin(conf->max_mtu, MAX_MTU);
		s->pmtu_try = s->pmtu_hi;
	}
	return s;
}

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	free(s->sbuf);
	free(s->rbuf);
	free(s->ring);
	ivs_free(&s->acked);
	ivs_free(&s->lost);
	ivs_free(&s->ooo);
	ivs_free(&s->rx);
	free(s->dtx.buf);
	free(s->dtx.len);
	free(s->drx.buf);
	free(s->drx.len);
	free(s);
}

size_t
stream_write(struct stream *s, const void *buf, size_t len)
{
	size_t cap = s->conf.sndbuf, used, at, first;

	if (s->fin || s->closing || s->err != STREAM_OK)
		return 0;
	used = s->snd_end - s->snd_una;
	len = umin(len, cap - used);
	at = s->snd_end % cap;
	first = umin(len, cap - at);
	memcpy(s->sbuf + at, buf, first);
	memcpy(s->sbuf, (const uint8_t *)buf + first, len - first);
	s->snd_end += len;
	return len;
}

void
stream_close_write(struct stream *s)
{
	s->fin = true;
}

size_t
stream_read(struct stream *s, void *buf, size_t cap)
{
	size_t size = s->conf.rcvbuf, n, at, first;

	n = umin(cap, s->rcv_nxt - s->rcv_read);
	at = s->rcv_read % size;
	first = umin(n, size - at);
	memcpy(buf, s->rbuf + at, first);
	memcpy((uint8_t *)buf + first, s->rbuf, n - first);
	s->rcv_read += n;
	/* RFC 9000 §4.2: send MAX_DATA before the peer runs out; a quarter
	 * of the buffer at a time keeps the updates few. */
	if (s->rcv_fin == UINT64_MAX &&
	    s->rcv_read + size - s->rcv_max >= size / 4)
		s->max_data_due = true;
	return n;
}

bool
stream_eof(const struct stream *s)
{
	return s->rcv_fin != UINT64_MAX && s->rcv_read == s->rcv_fin;
}

bool
stream_send_done(const struct stream *s)
{
	return s->fin && s->snd_una == s->snd_end + 1;
}

void
stream_abort(struct stream *s, uint32_t code)
{
	stream_abort_why(s, code, NULL);
}

void
stream_abort_why(struct stream *s, uint32_t code, const char *why)
{
	if (s->closing || s->err != STREAM_OK)
		return;
	s->closing = true;
	s->close_code = code;
	s->close_left = CLOSE_COPIES;
	snprintf(s->close_why, sizeof s->close_why, "%s", why ? why : "");
}

void
stream_written(struct stream *s)
{
	if (s->written || !stream_eof(s))
		return;
	s->written = s->written_due = true;
}

bool
stream_peer_written(const struct stream *s)
{
	return s->peer_written;
}

int
stream_error(const struct stream *s)
{
	return s->err;
}

uint32_t
stream_close_code(const struct stream *s)
{
	return s->peer_code;
}

const char *
stream_close_why(const struct stream *s)
{
	return s->peer_why;
}

void
stream_get_stats(const struct stream *s, struct stream_stats *st)
{
	*st = s->st;
	st->srtt_us = s->srtt;
	st->rttvar_us = s->rttvar;
	st->min_rtt_us = s->min_rtt;
	st->cwnd = (uint64_t)s->cwnd;
	st->snd_buffered = s->snd_end - umin(s->snd_una, s->snd_end);
	st->rcv_buffered = s->rcv_high - s->rcv_read;
	st->mtu = s->conf.mtu;
	st->bw = (uint64_t)(s->bbr.max_bw * 1e6);
	st->pacing_rate = (uint64_t)(pacing_rate(s) * 1e6);
}

void
stream_ping(struct stream *s)
{
	s->ping_due = true;
}

size_t
stream_path_packet(struct stream *s, int type, const uint8_t data[STREAM_PATH_DATA],
    uint64_t *pn, uint8_t *buf, size_t cap)
{
	if (cap < 1 + STREAM_PATH_DATA || s->err != STREAM_OK ||
	    (type != STREAM_PATH_CHALLENGE && type != STREAM_PATH_RESPONSE))
		return 0;
	buf[0] = type == STREAM_PATH_CHALLENGE ? FT_PATH_CHALLENGE : FT_PATH_RESPONSE;
	memcpy(buf + 1, data, STREAM_PATH_DATA);
	*pn = s->next_pn++;
	s->st.pkts_sent++;
	return 1 + STREAM_PATH_DATA;
}

int
stream_path_frame(const struct stream *s, uint8_t data[STREAM_PATH_DATA])
{
	if (s->path_frame != STREAM_PATH_NONE)
		memcpy(data, s->path_data, STREAM_PATH_DATA);
	return s->path_frame;
}

int
stream_dgram_send(struct stream *s, const void *buf, size_t len)
{
	struct dgq *q = &s->dtx;
	size_t at;

	if (len > stream_dgram_max(s)) {
		errno = EMSGSIZE;
		return -1;
	}
	if (q->n == q->slots || s->closing || s->err != STREAM_OK)
		return 0;
	at = (q->head + q->n) % q->slots;
	memcpy(q->buf + at * q->slot, buf, len);
	q->len[at] = len;
	q->n++;
	return 1;
}

/* The frame must fit the first packet size: type, length, data. */
size_t
stream_dgram_max(const struct stream *s)
{
	return s->dtx.slot - 1 - varint_len(s->dtx.slot);
}

ssize_t
stream_dgram_recv(struct stream *s, void *buf, size_t cap)
{
	struct dgq *q = &s->drx;
	size_t len;

	if (q->n == 0)
		return -1;
	len = umin(cap, q->len[q->head]);
	memcpy(buf, q->buf + (size_t)q->head * q->slot, len);
	q->head = (q->head + 1) % q->slots;
	q->n--;
	return len;
}
