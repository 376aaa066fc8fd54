/*
 * stream.c: a reliable byte stream in each direction over datagrams, after
 * QUIC: RFC 9000 (frames, acknowledgements, flow control), RFC 9002 (loss
 * detection, RTT, PTO, pacing); the congestion controller is cc.c's.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc.h"
#include "stream.h"
#include "util.h"

#define FT_PADDING	0x00
#define FT_PING		0x01
#define FT_ACK		0x02
#define FT_STREAM	0x0e
#define FT_STREAM_FIN	0x0f
#define FT_MAX_DATA	0x10
/* RFC 9000 §19.17-18, each with 8 bytes of data; here they travel alone,
 * in packets that elicit no ACK (RFC 9002 §2 would count them as
 * ack-eliciting), are acknowledged only along with others, and are
 * neither tracked nor congestion controlled. */
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
/*
 * RFC 9002 §6.1: "Implementations ... MAY adapt" the thresholds; we do as
 * RACK (RFC 8985 §6.2) does.  A packet acknowledged after a later one
 * was shows that the path reorders (RACK.reordering_seen): from then on
 * only time says a packet is lost, since how many packets overtake one
 * grows with the rate.  A loss that was not one (the packet is
 * acknowledged after all: a spurious loss) widens the time threshold to
 * what would have avoided it, up to two RTTs.  RFC 8985 §6.2 step 4
 * keeps a widened window for 16 loss recoveries (reo_wnd_persist), then
 * goes back to the default: here, after 16 loss episodes without
 * reordering seen, both thresholds do.
 */
#define TIME_THRESH_8_MAX 16
#define REO_PERSIST	16
/* Round trips waiting to count (see on_ack), only while a packet is
 * missing.  One waits a loss delay, about a round trip, so 32 hold a
 * round trip's worth at up to 32 ACKs per round trip: with one ACK per
 * ACK_ELICIT_MAX packets, 320 packets, some 150 Mbit/s at 20 ms.
 * Faster, the oldest counts early (rttq_add): none is lost, and the
 * memory stays fixed (stream.h: nothing grows after stream_new). */
#define RTTQ_SLOTS	32
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
/* Ranges of received packet numbers we keep and acknowledge.  Each
 * packet that overtakes others opens a gap, so a fast path with a few
 * percent of reordering has hundreds at once; if a range had to go, the
 * packets that fill its gap would be dropped unacknowledged, and their
 * sender would take reordering for loss.  An ACK frame carries as many as
 * fit (its count is written as a two-byte varint). */
#define ACK_RANGES_MAX	1024
/* Acknowledged ACK frames (RFC 9000 §13.2.4) whose ranges wait out the
 * reordering window before they go (see prune).  Sixteen let the ranges
 * go in steps of a sixteenth of a loss delay while fewer of our ACKs
 * than that are acknowledged per loss delay; with more, the last slot
 * takes the newest (ack_acked) and the ranges go in larger steps, later,
 * never earlier.  Too few slots only make ACK frames longer, and
 * ACK_RANGES_MAX bounds those. */
#define PRUNE_SLOTS	16
/* A packet declared lost is remembered this many PTOs (RFC 9002 §6.2.1:
 * smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay) after it
 * was sent, for its acknowledgement to show the loss spurious
 * (find_spurious).  Reordering is taken to be at most what the widest
 * loss delay tolerates, two round trips (TIME_THRESH_8_MAX); the
 * acknowledgement of a packet reordered that far comes within that plus
 * the peer's ACK delay, which two PTOs cover with 8 rttvar as margin.
 * One acknowledged later still is ignored: its data has gone again. */
#define SPURIOUS_KEEP_PTOS 2
/* Packet records at most (128 MB with lostq): a million packets in
 * flight is more than any send buffer we would use; with more, sending
 * just waits. */
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

/* An acknowledged ACK frame's largest acknowledged, and when. */
struct prune_pt {
	uint64_t largest, at;
};

/* A round trip that counts unless, within a loss delay of at, a packet
 * of ours older than pn is acknowledged or one of the peer's older than
 * rx_pn (which carried the ACK) arrives; with the ACK's delay. */
struct rtt_cand {
	uint64_t rtt, ack_delay, pn, rx_pn, at;
};

/* An ack-eliciting packet we sent, in a ring indexed by packet number,
 * with what the congestion controller noted when it left.  A lost one
 * stays PKT_LOST until its slot is used again, in case its
 * acknowledgement still comes. */
struct sent {
	uint64_t pn, sent_us, off;	/* off..off+len: virtual bytes carried */
	uint64_t acked_to;		/* 1 + largest our ACK in it had, or 0 */
	struct cc_pkt cc;
	uint32_t len, size;
	uint8_t state, flags;
};

/* What a path learnt, kept when it is left (stream_path_move): its
 * controller (cc), RTT estimate, loss thresholds and path MTU search. */
struct path_kept {
	bool on;
	unsigned id;
	uint64_t left_us;
	struct cc *cc;
	uint64_t initial_rtt_us;
	bool have_rtt;
	uint64_t first_rtt_us, latest_rtt, min_rtt, srtt, rttvar, raw_min_rtt;
	uint64_t pkt_thresh, time_thresh8;
	unsigned reo_persist;
	size_t mtu, pmtu_hi, pmtu_try;
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
	/* Packets numbered below went on a path we have left (RFC 9000
	 * §9.4): tracked for loss and acknowledgement only. */
	uint64_t path_pn;
	struct path_kept kept;		/* of the path left last */
	uint64_t loss_time;		/* 0: no time-threshold loss pending */
	unsigned pto_count;
	int probes;

	/* RTT estimation, RFC 9002 §5, from round trips that overtook
	 * nothing: each waits in rttq for a loss delay (see on_ack). */
	bool have_rtt;
	uint64_t first_rtt_us;
	uint64_t latest_rtt, min_rtt, srtt, rttvar;
	uint64_t raw_min_rtt;		/* of every sample; 0: none */
	uint64_t min_fresh;		/* least counted since the last ACK; 0: none */
	struct rtt_cand rttq[RTTQ_SLOTS];
	unsigned rttq_n;
	uint64_t rx_pn, rx_max;		/* the peer's packet in hand, its newest */

	/* The congestion controller (cc.c). */
	struct cc *cc;

	/* Reordering: adapted loss thresholds; packet numbers declared
	 * lost lately, ascending, a queue of ring_mask + 1; loss episodes. */
	uint64_t pkt_thresh, time_thresh8;
	unsigned reo_persist;		/* episodes until the defaults are back */
	uint64_t *lostq;
	size_t lostq_head, lostq_n;
	uint64_t episode_pn;		/* a loss from here on: a new episode */

	/* Pacing: a token bucket that may go into debt by one packet. */
	double tokens;
	uint64_t pace_us;

	/* Receive side. */
	uint8_t *rbuf;
	uint64_t rbase;			/* the offset at rbuf[0]; see rbuf_at */
	uint64_t rcv_read;		/* below: read by the application */
	uint64_t rcv_nxt;		/* below: received in order */
	uint64_t rcv_high;		/* highest end of data received */
	uint64_t rcv_fin;		/* final size, or UINT64_MAX */
	uint64_t rcv_max;		/* offered to the peer */
	bool max_data_due;
	struct ivs ooo;			/* received above rcv_nxt */

	/* Datagrams. */
	struct dgq dtx, drx;

	/* Path MTU search (RFC 8899 DPLPMTUD): conf.mtu works, pmtu_hi may;
	 * base_mtu, stream_new's, works on any path. */
	size_t base_mtu;
	size_t pmtu_hi;			/* above: does not work */
	size_t pmtu_try;		/* next size to probe; 0: done */
	size_t pmtu_probe;		/* size in flight, or 0 */
	unsigned pmtu_fails;

	/* Acknowledgements we owe. */
	struct ivs rx;			/* packet numbers received */
	uint64_t rx_floor;		/* below: too old to tell, ignored */
	struct prune_pt prune[PRUNE_SLOTS];
	unsigned prune_n;
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
	return cc_pacing_rate(s->cc);
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

/* Whether r left on a path we have left since (stream_path_move): RFC
 * 9000 §9.4, "Packets sent on the old path MUST NOT contribute to
 * congestion control or RTT estimation for the new path."  Nor are they
 * in in_flight, the new path's bytes in flight. */
static bool
old_path(const struct stream *s, const struct sent *r)
{
	return r->pn < s->path_pn;
}

/* Room in the ring for one more ack-eliciting packet. */
static bool
ring_room(const struct stream *s)
{
	return s->next_pn - s->ring_lo <= s->ring_mask;
}

/* Where new data may end: the written bytes within the peer's window, and
 * the FIN once every byte before it may go and every datagram queued
 * before it has gone (a peer stops taking datagrams at the end). */
static uint64_t
send_limit(const struct stream *s)
{
	if (s->fin && s->snd_end <= s->peer_max && s->dtx.n == 0)
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

	/* RFC 9002 §5.2, §5.3; latest_rtt is set as each sample is taken
	 * (on_ack): in the loss delay, max(smoothed_rtt, latest_rtt), a
	 * sample that overtook others cannot lower it, and one that grew
	 * counts at once. */
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

/* Round trips waiting in rttq that overtook our packet pn (it was
 * acknowledged after them) or the peer's packet rx_pn (it arrived after
 * them) are no measure of the path: dropped. */
static void
rttq_overtaken(struct stream *s, uint64_t pn, uint64_t rx_pn)
{
	unsigned i;

	for (i = 0; i < s->rttq_n; i++) {
		if (s->rttq[i].pn > pn || s->rttq[i].rx_pn > rx_pn)
			s->rttq[i--] = s->rttq[--s->rttq_n];
	}
}

/* When a round trip waiting in rttq counts: a loss delay after it was
 * taken; until one has (the handshake's round trip, or 333 ms, stands
 * in), twice its own round trip if that is less. */
static uint64_t
rttq_due(const struct stream *s, const struct rtt_cand *c)
{
	uint64_t wait = loss_delay(s);

	return c->at + (s->have_rtt ? wait : umin(wait, 2 * c->rtt));
}

/* A round trip that counts (RFC 9002 §5), and is kept for the
 * congestion controller in min_fresh. */
static void
rtt_counts(struct stream *s, uint64_t rtt, uint64_t ack_delay, uint64_t now)
{
	rtt_sample(s, rtt, ack_delay, now);
	s->min_fresh = s->min_fresh ? umin(s->min_fresh, rtt) : rtt;
}

/* A round trip to wait in rttq.  When every slot is taken, the one that
 * has waited longest counts at once, to make room: it is the likeliest
 * to have waited unchallenged, and a round trip dropped (the highest, as
 * this did before) would bias smoothed_rtt and rttvar low. */
static void
rttq_add(struct stream *s, const struct rtt_cand *c, uint64_t now)
{
	unsigned i, old = 0;

	if (s->rttq_n == RTTQ_SLOTS) {
		struct rtt_cand o;

		for (i = 1; i < RTTQ_SLOTS; i++)
			if (s->rttq[i].at < s->rttq[old].at ||
			    (s->rttq[i].at == s->rttq[old].at &&
			    s->rttq[i].pn < s->rttq[old].pn))
				old = i;
		o = s->rttq[old];
		s->rttq[old] = s->rttq[--s->rttq_n];
		rtt_counts(s, o.rtt, o.ack_delay, now);
	}
	s->rttq[s->rttq_n++] = *c;
}

/* Round trips that waited unchallenged count. */
static void
rttq_settle(struct stream *s, uint64_t now)
{
	unsigned i;

	for (i = 0; i < s->rttq_n; i++) {
		struct rtt_cand c = s->rttq[i];

		if (now < rttq_due(s, &c))
			continue;
		s->rttq[i--] = s->rttq[--s->rttq_n];
		rtt_counts(s, c.rtt, c.ack_delay, now);
	}
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
 * our ACK frames small; a packet that old arriving later is ignored and
 * its sender, which long called it lost, has sent its data again.  So
 * that a packet merely overtaken still gets acknowledged, and its sender
 * learns the loss was spurious, the ranges go a loss delay (which
 * reordering widens) after the acknowledgement: ack_acked queues it,
 * prune_due prunes.
 */
static void
prune(struct stream *s, uint64_t largest)
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

/* Prunes the ranges whose wait is over. */
static void
prune_due(struct stream *s, uint64_t now)
{
	uint64_t wait = loss_delay(s);
	unsigned i;

	while (s->prune_n > 0 && now >= s->prune[0].at + wait) {
		prune(s, s->prune[0].largest);
		for (i = 1; i < s->prune_n; i++)
			s->prune[i - 1] = s->prune[i];
		s->prune_n--;
	}
}

/* The peer has our ACK frame whose largest acknowledged was largest.
 * With every slot taken, the last one takes it, and its wait starts
 * again from now: the ranges up to largest must wait their full loss
 * delay; those of the older ACK it held just wait longer. */
static void
ack_acked(struct stream *s, uint64_t largest, uint64_t now)
{
	if (s->prune_n > 0 && largest <= s->prune[s->prune_n - 1].largest)
		return;
	if (s->prune_n == PRUNE_SLOTS)
		s->prune[PRUNE_SLOTS - 1] = (struct prune_pt){ largest, now };
	else
		s->prune[s->prune_n++] = (struct prune_pt){ largest, now };
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
		cc_set_mss(s->cc, size);
		s->pmtu_fails = 0;
		s->pmtu_try = pmtu_mid(s);
		log_v(2, "stream: path MTU now %zu bytes of payload", size);
	} else if (++s->pmtu_fails >= PMTU_MAX_PROBES) {
		s->pmtu_hi = size - 1;
		s->pmtu_fails = 0;
		s->pmtu_try = pmtu_mid(s);
	}
}

/*
 * A packet of ours is acknowledged, whether it was outstanding
 * (pkt_acked) or declared lost before (spurious): what it carried has
 * arrived, and its bytes count as delivered for the congestion
 * controller's rate samples, lost before or not
 * (draft-cheng-iccrg-delivery-rate-estimation §3.2: "C.delivered" counts
 * every packet "(S)ACKed").  Both callers go through here so that
 * neither forgets a frame.
 */
static void
pkt_delivered(struct stream *s, struct sent *r, uint64_t now)
{
	r->state = PKT_ACKED;
	data_acked(s, r);
	if (r->acked_to > 0)
		ack_acked(s, r->acked_to - 1, now);
	if (r->flags & PF_DONE)
		s->done_acked = true;
	if (r->flags & PF_WRITTEN)
		s->written_acked = true;
	if (old_path(s, r))
		return;
	/* A probe's size is not the path's rate: it feeds no sample. */
	if (r->flags & PF_PMTU)
		pmtu_result(s, r->size, true);
	else
		cc_on_acked(s->cc, &r->cc, r->pn, r->size, r->sent_us, now);
}

/* A packet of ours that was outstanding is acknowledged. */
static void
pkt_acked(struct stream *s, struct sent *r, uint64_t now)
{
	if (!old_path(s, r))
		s->in_flight -= r->size;
	s->elicit_out--;
	pkt_delivered(s, r, now);
}

/* A packet of ours is declared lost: what it carried goes again. */
static void
pkt_lost(struct stream *s, struct sent *r, uint64_t now)
{
	bool episode;

	r->state = PKT_LOST;
	if (!old_path(s, r))
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
		if (!old_path(s, r))
			pmtu_result(s, r->size, false);
		return;
	}
	/* RFC 9002 §7.3.2: a loss of a packet sent after the last episode
	 * began starts a new one.  Sixteen without a spurious loss, and the
	 * reordering seen before is over.  A loss on a path we left (RFC
	 * 9000 §9.4) is none of this path's: it must not open an episode
	 * that this path's own losses would then fall into unannounced,
	 * leaving the controller no state to go back to if they prove
	 * spurious. */
	if (!old_path(s, r)) {
		episode = r->pn >= s->episode_pn;
		if (episode) {
			s->episode_pn = s->next_pn;
			if (s->reo_persist > 0 && --s->reo_persist == 0) {
				s->pkt_thresh = PKT_THRESHOLD;
				s->time_thresh8 = TIME_THRESH_8;
			}
		}
		cc_on_lost(s->cc, &r->cc, r->size, episode, now);
	}
	if (s->lostq_n == s->ring_mask + 1) {
		s->lostq_head = (s->lostq_head + 1) & s->ring_mask;
		s->lostq_n--;
	}
	s->lostq[(s->lostq_head + s->lostq_n++) & s->ring_mask] = r->pn;
}

/* Packet pn was acknowledged when a later one, prior, already had been:
 * the path reorders (see TIME_THRESH_8_MAX). */
static void
reordered(struct stream *s, uint64_t pn, uint64_t prior)
{
	s->pkt_thresh = UINT64_MAX;
	s->reo_persist = REO_PERSIST;
	s->st.reorder_dist = umax(s->st.reorder_dist, prior - pn);
}

/*
 * A packet we called lost was acknowledged after all (prior: the largest
 * acknowledged before): it was reordered.  Its data need not go again;
 * the thresholds widen (see TIME_THRESH_8_MAX) and the congestion
 * controller hears of it, then takes it as delivered (pkt_delivered).
 */
static void
spurious(struct stream *s, struct sent *r, uint64_t prior, uint64_t now)
{
	uint64_t late = (now - umin(now, r->sent_us)) * 8 / umax(umax(s->srtt,
	    s->latest_rtt), 1) + 1;

	s->st.pkts_spurious++;
	/* One from the old path came late: the paths differ, not reordering. */
	if (old_path(s, r)) {
		pkt_delivered(s, r, now);
		return;
	}
	reordered(s, r->pn, umax(prior, r->pn));
	s->time_thresh8 = umin(TIME_THRESH_8_MAX, umax(s->time_thresh8, late));
	rttq_overtaken(s, r->pn, UINT64_MAX);
	cc_on_spurious(s->cc, &r->cc, r->size, now);
	pkt_delivered(s, r, now);
}

/* The lostq entry i places from the head. */
static uint64_t
lostq_at(const struct stream *s, size_t i)
{
	return s->lostq[(s->lostq_head + i) & s->ring_mask];
}

/* Looks for packets we called lost in one acknowledged range [lo,hi]
 * (prior: the largest acknowledged before), forgetting losses too old to
 * be reordering (SPURIOUS_KEEP_PTOS) or settled. */
static void
find_spurious(struct stream *s, uint64_t lo, uint64_t hi, uint64_t prior,
    uint64_t now)
{
	uint64_t keep = SPURIOUS_KEEP_PTOS * pto_base(s);
	size_t a = 0, b;

	while (s->lostq_n > 0) {
		const struct sent *r = slot(s, lostq_at(s, 0));

		if (r->pn == lostq_at(s, 0) && r->state == PKT_LOST &&
		    now <= r->sent_us + keep)
			break;
		s->lostq_head = (s->lostq_head + 1) & s->ring_mask;
		s->lostq_n--;
	}
	b = s->lostq_n;
	while (a < b) {
		size_t mid = (a + b) / 2;

		if (lostq_at(s, mid) < lo)
			a = mid + 1;
		else
			b = mid;
	}
	for (; a < s->lostq_n && lostq_at(s, a) <= hi; a++) {
		struct sent *r = slot(s, lostq_at(s, a));

		if (r->pn == lostq_at(s, a) && r->state == PKT_LOST)
			spurious(s, r, prior, now);
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
		/* A packet of a path left (RFC 9000 §9.4: it MUST NOT
		 * contribute to congestion control on this one) neither
		 * starts nor extends a run, nor ends one. */
		if (!old_path(s, r)) {
			if (!run) {
				run = true;
				first = r->sent_us;
			}
			last = r->sent_us;
			/* "only ... packets sent after ... the first RTT
			 * sample" */
			if (s->have_rtt && first > s->first_rtt_us &&
			    last - first > persistent)
				collapse = true;
		}
		pkt_lost(s, r, now);
	}
	if (collapse)
		cc_on_persistent(s->cc);
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
			 * it, nor be done (its net_done) before it had our
			 * WRITTEN (sent once we had all its data) and we had
			 * its own.  A DONE before then would lift the idle
			 * limit (timers()) from a peer that could then go
			 * quiet for ever, the session never closable. */
			if (!s->fin || s->snd_nxt != s->snd_end + 1)
				return bad("DONE before our FIN was sent", pn);
			if (!s->written || !s->peer_written)
				return bad("DONE before both WRITTENs", pn);
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

/*
 * An ACK frame, already validated (RFC 9002 §A.7 OnAckReceived).
 *
 * RTT samples.  RFC 9002 §5.1 takes one only when the largest
 * acknowledged is newly acknowledged, "to avoid generating multiple RTT
 * samples for a single packet".  We take it from the newest packet the
 * frame newly acknowledges, which is just as unique: on a path where
 * some packets overtake the others (netem's reorder sends them past the
 * delay), the largest acknowledged is often one that overtook, and the
 * RFC's rule would sample mostly those.  The ACK delay is known only
 * for the largest.
 *
 * A round trip that overtook other packets, or whose ACK came in a
 * packet of the peer's that did, is shorter than the path's.  Taken in,
 * it drags smoothed_rtt below the path's (then the time threshold calls
 * every packet lost) and BBR's min_rtt, which sizes the window
 * (draft-ietf-ccwg-bbr §5.3.1), down for ten seconds.  Which packets
 * overtook shows only later, when the ones they passed arrive, within
 * the loss delay that reordering widens (RFC 9002 §6.1.2).  So a sample
 * waits that long in rttq before it counts, and is dropped if meanwhile
 * an older packet of ours is acknowledged or an older one of the peer's
 * arrives.  Where the older ones were lost, nothing challenges it: it
 * counts, a loss delay late.  Where none is missing (of ours, none
 * outstanding or lately lost; of the peer's, no gap), it counts at once.
 */
static void
on_ack(struct stream *s, const struct frames *f, uint64_t now)
{
	struct rd r = { f->ack_ranges, f->ack_end };
	uint64_t count, lo = 0, hi = f->ack_largest, pn;
	uint64_t prior_in_flight = s->in_flight, lowest = UINT64_MAX;
	uint64_t prior = s->have_acked ? s->largest_acked : 0;
	struct sent *newest = NULL;
	bool acked = false;
	int rc;

	cc_ack_begin(s->cc);
	if (!s->have_acked || f->ack_largest > s->largest_acked)
		s->largest_acked = f->ack_largest;
	get_varint(&r, &count);
	count++;
	for (rc = ack_next(&r, &count, &lo, &hi, true); rc == 0;
	    rc = ack_next(&r, &count, &lo, &hi, false)) {
		if (s->lostq_n > 0)
			find_spurious(s, lo, hi, prior, now);
		if (hi < s->ring_lo)
			continue;
		for (pn = umax(lo, s->ring_lo); pn <= hi; pn++) {
			struct sent *p = slot(s, pn);

			if (p->pn != pn || p->state != PKT_OUT)
				continue;
			pkt_acked(s, p, now);
			acked = true;
			/* The old path's packets give no round trip, and
			 * acknowledged after the new one's, they show only
			 * that the paths differ (RFC 9000 §9.4). */
			if (old_path(s, p))
				continue;
			if (newest == NULL || pn > newest->pn)
				newest = p;
			lowest = umin(lowest, pn);
		}
	}
	rttq_overtaken(s, lowest, UINT64_MAX);
	if (s->have_acked && lowest < prior)
		reordered(s, lowest, prior);
	s->have_acked = true;
	if (newest != NULL) {
		uint64_t delay = 0, latest = now - umin(now, newest->sent_us);

		if (newest->pn == f->ack_largest)
			delay = f->ack_delay > (UINT64_MAX >> ACK_DELAY_EXP) ?
			    UINT64_MAX : f->ack_delay << ACK_DELAY_EXP;
		latest = umax(latest, 1);
		s->latest_rtt = latest;
		s->raw_min_rtt = s->raw_min_rtt ? umin(s->raw_min_rtt, latest) :
		    latest;
		ring_advance(s);
		if (s->ring_lo > newest->pn && (s->lostq_n == 0 ||
		    lostq_at(s, 0) > newest->pn) && s->rx.n == 1)
			rtt_counts(s, latest, delay, now);
		else
			rttq_add(s, &(struct rtt_cand){ latest, delay,
			    newest->pn, s->rx_pn, now }, now);
	}
	/* RFC 9002 §6.2.1: "The PTO backoff factor is reset when an
	 * acknowledgment is received". */
	if (acked)
		s->pto_count = 0;
	rttq_settle(s, now);
	detect_lost(s, now);
	cc_ack_end(s->cc, &(struct cc_ack){ .now = now,
	    .prior_in_flight = prior_in_flight, .in_flight = s->in_flight,
	    .raw_min_rtt = s->raw_min_rtt, .latest_rtt = s->latest_rtt,
	    .rtt = s->min_fresh,
	    .init_rtt = s->conf.initial_rtt_us });
	s->min_fresh = 0;
}

/* Where stream offset off (at least rcv_read) lies in rbuf.  Offsets map
 * to the buffer from rbase, which moves only while the buffer is empty:
 * what the peer may send stays within rcvbuf of rcv_read (flow control),
 * so nothing unread is ever overwritten. */
static size_t
rbuf_at(const struct stream *s, uint64_t off)
{
	return (off - s->rbase) % s->conf.rcvbuf;
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
		size_t at = rbuf_at(s, a), n = end - a, first = umin(n, cap - at);

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
	s->lostq_n = 0;
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
	/* First, as stream.h promises, a malformed payload changes
	 * nothing.  parse looks at none of what is changed below, so a
	 * duplicate is parsed as it was the first time. */
	if (parse(s, pn, p, len, &f) == -1) {
		s->st.pkts_bad++;
		return -1;
	}
	prune_due(s, now);
	/* An older packet of the peer's than one already here, even one
	 * too old to take: whatever came before it overtook it.  (Only
	 * when it arrived matters here, not what it holds.) */
	if (pn < s->rx_max && !ivs_has(&s->rx, pn))
		rttq_overtaken(s, UINT64_MAX, pn);
	/* RFC 9000 §12.3: duplicates "MUST" be discarded; one too old to
	 * tell is treated as one: its sender resends what it carried. */
	if (pn < s->rx_floor || ivs_has(&s->rx, pn))
		return 0;
	if (!ivs_fits(&s->rx, pn, pn + 1) && pn < s->rx.lo[0])
		return 0;
	/* Out-of-order data that we cannot track is dropped unacknowledged,
	 * so the peer sends it again. */
	if (f.stream && f.off > s->rcv_nxt && f.len > 0 &&
	    !ivs_fits(&s->ooo, f.off, f.off + f.len))
		return 0;

	largest = s->rx.n > 0 ? s->rx.hi[s->rx.n - 1] - 1 : 0;
	s->rx_max = umax(s->rx_max, pn);
	s->rx_pn = pn;
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
	size_t n, len, ranges = 0;
	uint8_t *count;
	int i;

	if (s->rx.n == 0)
		return 0;
	i = (int)s->rx.n - 1;
	largest = s->rx.hi[i] - 1;
	delay = (now - umin(now, s->rx_largest_us)) >> ACK_DELAY_EXP;
	first = largest - s->rx.lo[i];
	len = 1 + varint_len(largest) + varint_len(delay) + 2 +
	    varint_len(first);
	if (len > room)
		return 0;
	p[0] = FT_ACK;
	n = 1;
	n += put_varint(p + n, largest);
	n += put_varint(p + n, delay);
	count = p + n;
	n += 2;
	n += put_varint(p + n, first);
	for (i--; i >= 0; i--) {
		uint64_t gap = s->rx.lo[i + 1] - s->rx.hi[i] - 1;
		uint64_t rlen = s->rx.hi[i] - 1 - s->rx.lo[i];

		if (n + varint_len(gap) + varint_len(rlen) > room)
			break;
		n += put_varint(p + n, gap);
		n += put_varint(p + n, rlen);
		ranges++;
	}
	count[0] = 0x40 | ranges >> 8;
	count[1] = ranges & 0xff;
	s->rx_elicit = 0;
	s->rx_new = false;
	s->ack_due = UINT64_MAX;
	return n;
}

/*
 * Writes a STREAM frame for as much of the virtual range [a,b) as fits in
 * room bytes, copying from the send buffer, or with tail (non-NULL) only
 * its header, the bytes being left in place as tail's *ntail pieces.
 * Returns the frame's length, bytes left in place included (0: nothing
 * fits), and sets *sent to the virtual bytes it carries.
 */
static size_t
put_stream(const struct stream *s, uint64_t a, uint64_t b, uint8_t *p,
    size_t room, uint64_t *sent, struct iovec *tail, int *ntail)
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
	if (tail) {
		*ntail = 0;
		if (first > 0)
			tail[(*ntail)++] = (struct iovec){ s->sbuf + at, first };
		if (n > first)
			tail[(*ntail)++] = (struct iovec){ s->sbuf, n - first };
	} else {
		memcpy(p + hdr, s->sbuf + at, first);
		memcpy(p + hdr + first, s->sbuf, n - first);
	}
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
	prune_due(s, now);
	rttq_settle(s, now);
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
	return (double)(s->in_flight + s->conf.mtu) <= cc_cwnd(s->cc);
}

/* With nothing we may send and room in the window, what we send is no
 * measure of the path: the congestion controller must know. */
static void
check_app_limited(struct stream *s)
{
	if (s->lost.n > 0 || s->dtx.n > 0 || s->snd_nxt < send_limit(s) ||
	    !cc_open(s))
		return;
	cc_app_limited(s->cc, s->in_flight, s->snd_nxt < s->snd_end + s->fin);
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

/* stream_output and stream_output_tail; tail NULL: the whole payload
 * into buf. */
static size_t
output(struct stream *s, uint64_t now, uint64_t *pn, uint8_t *buf, size_t cap,
    struct iovec *tail, int *ntail)
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
	check_app_limited(s);
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
		/* Last in the payload: what tail leaves in place comes after
		 * everything written into buf. */
		len = put_stream(s, a, b, buf + n, room - n, &sent, tail, ntail);
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
	cc_on_send(s->cc, &r->cc, r->size, s->in_flight, now);
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

size_t
stream_output(struct stream *s, uint64_t now, uint64_t *pn, uint8_t *buf, size_t cap)
{
	return output(s, now, pn, buf, cap, NULL, NULL);
}

size_t
stream_output_tail(struct stream *s, uint64_t now, uint64_t *pn, uint8_t *buf, size_t cap,
    struct iovec tail[STREAM_TAIL_MAX], int *ntail)
{
	*ntail = 0;
	return output(s, now, pn, buf, cap, tail, ntail);
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
	unsigned i;

	if (s->close_left > 0)
		return 0;
	if (s->err != STREAM_OK || s->closing)
		return UINT64_MAX;
	/* Once the peer is done it may leave, and silence is expected
	 * (timers() applies no idle limit then). */
	if (s->conf.idle_us > 0 && !s->peer_done)
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
	for (i = 0; i < s->rttq_n; i++)
		d = umin(d, rttq_due(s, &s->rttq[i]));
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

/* What a new path starts from (RFC 9002 Appendices A.4 and B.3 with
 * the controller cc_new or cc_reset made): the RTT estimate, the loss
 * thresholds, pacing credit, the path MTU search. */
static void
path_init(struct stream *s, uint64_t now)
{
	/* RFC 9002 §6.2.2: the initial RTT "SHOULD be set to 333
	 * milliseconds" when "no previous RTT is available"; the handshake's
	 * round trip is one, as QUIC's own handshake gives it. */
	s->srtt = s->conf.initial_rtt_us ? s->conf.initial_rtt_us : INITIAL_RTT_US;
	s->rttvar = s->srtt / 2;
	s->pkt_thresh = PKT_THRESHOLD;
	s->time_thresh8 = TIME_THRESH_8;
	s->tokens = cc_cwnd(s->cc);
	s->pace_us = now;
	/* Most paths carry a full Ethernet frame: try the top first. */
	if (s->conf.max_mtu > s->conf.mtu) {
		s->pmtu_hi = umin(s->conf.max_mtu, MAX_MTU);
		s->pmtu_try = s->pmtu_hi;
	}
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
	    (s->lostq = calloc(slots, sizeof *s->lostq)) == NULL ||
	    (s->cc = cc_new(conf->mtu, now)) == NULL ||
	    (s->kept.cc = cc_new(conf->mtu, now)) == NULL ||
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
	s->base_mtu = conf->mtu;
	path_init(s, now);
	s->last_send_us = s->last_recv_us = now;
	return s;
}

/* The state of the path s is on, left at now, into k as path id. */
static void
path_save(const struct stream *s, struct path_kept *k, unsigned id, uint64_t now)
{
	k->on = true;
	k->id = id;
	k->left_us = now;
	k->cc = s->cc;
	k->initial_rtt_us = s->conf.initial_rtt_us;
	k->have_rtt = s->have_rtt;
	k->first_rtt_us = s->first_rtt_us;
	k->latest_rtt = s->latest_rtt;
	k->min_rtt = s->min_rtt;
	k->srtt = s->srtt;
	k->rttvar = s->rttvar;
	k->raw_min_rtt = s->raw_min_rtt;
	k->pkt_thresh = s->pkt_thresh;
	k->time_thresh8 = s->time_thresh8;
	k->reo_persist = s->reo_persist;
	k->mtu = s->conf.mtu;
	k->pmtu_hi = s->pmtu_hi;
	k->pmtu_try = s->pmtu_try;
}

/* Back on the path k kept, at now: pacing starts from its usual burst,
 * not from a window's worth. */
static void
path_load(struct stream *s, const struct path_kept *k, uint64_t now)
{
	s->cc = k->cc;
	s->conf.initial_rtt_us = k->initial_rtt_us;
	s->have_rtt = k->have_rtt;
	s->first_rtt_us = k->first_rtt_us;
	s->latest_rtt = k->latest_rtt;
	s->min_rtt = k->min_rtt;
	s->srtt = k->srtt;
	s->rttvar = k->rttvar;
	s->raw_min_rtt = k->raw_min_rtt;
	s->pkt_thresh = k->pkt_thresh;
	s->time_thresh8 = k->time_thresh8;
	s->reo_persist = k->reo_persist;
	s->conf.mtu = k->mtu;
	s->pmtu_hi = k->pmtu_hi;
	s->pmtu_try = k->pmtu_try;
	s->tokens = pacing_burst(s);
	s->pace_us = now;
}

void
stream_path_move(struct stream *s, uint64_t now, unsigned from, unsigned to)
{
	struct path_kept left;
	bool back = s->kept.on && s->kept.id == to && now >= s->kept.left_us &&
	    now - s->kept.left_us <= STREAM_PATH_KEEP_US;

	path_save(s, &left, from, now);
	s->path_pn = s->next_pn;
	/* This path's first loss opens an episode of its own. */
	s->episode_pn = s->path_pn;
	s->in_flight = 0;
	/* Round trips waiting to count, and timers, are of packets sent
	 * before: none of them speaks for the path we go to. */
	s->min_fresh = 0;
	s->rttq_n = 0;
	s->pto_count = 0;
	s->probes = 0;
	s->pmtu_probe = 0;
	s->pmtu_fails = 0;
	if (back) {
		path_load(s, &s->kept, now);
	} else {
		/* The spare controller, kept's or stream_new's, starts over. */
		s->cc = s->kept.cc;
		s->conf.mtu = s->base_mtu;
		/* The handshake's round trip was the first path's. */
		s->conf.initial_rtt_us = 0;
		s->have_rtt = false;
		s->first_rtt_us = s->latest_rtt = s->min_rtt = 0;
		s->raw_min_rtt = 0;
		s->reo_persist = 0;
		cc_reset(s->cc, s->conf.mtu, now);
		path_init(s, now);
	}
	s->kept = left;
}

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	free(s->sbuf);
	free(s->rbuf);
	free(s->ring);
	free(s->lostq);
	cc_free(s->cc);
	cc_free(s->kept.cc);
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

size_t
stream_write_room(struct stream *s, void **p)
{
	size_t cap = s->conf.sndbuf, at = s->snd_end % cap;

	*p = s->sbuf + at;
	if (s->fin || s->closing || s->err != STREAM_OK)
		return 0;
	return umin(cap - (s->snd_end - s->snd_una), cap - at);
}

void
stream_wrote(struct stream *s, size_t n)
{
	void *p;

	s->snd_end += umin(n, stream_write_room(s, &p));
}

void
stream_close_write(struct stream *s)
{
	s->fin = true;
}

size_t
stream_read_peek(struct stream *s, const void **p)
{
	size_t size = s->conf.rcvbuf, at = rbuf_at(s, s->rcv_read);

	*p = s->rbuf + at;
	return umin(s->rcv_nxt - s->rcv_read, size - at);
}

void
stream_read_done(struct stream *s, size_t n)
{
	size_t size = s->conf.rcvbuf;

	s->rcv_read += umin(n, s->rcv_nxt - s->rcv_read);
	/* All read, nothing out of order: the next bytes go to the start of
	 * the buffer, which is still in the CPU's caches (a reader that keeps
	 * up touches only the first few packets' worth of it). */
	if (s->rcv_read == s->rcv_nxt && s->ooo.n == 0)
		s->rbase = s->rcv_read;
	/* RFC 9000 §4.2: send MAX_DATA before the peer runs out; a quarter
	 * of the buffer at a time keeps the updates few. */
	if (s->rcv_fin == UINT64_MAX &&
	    s->rcv_read + size - s->rcv_max >= size / 4)
		s->max_data_due = true;
}

size_t
stream_read(struct stream *s, void *buf, size_t cap)
{
	const void *p;
	size_t n = 0, k;

	while (n < cap && (k = stream_read_peek(s, &p)) > 0) {
		k = umin(k, cap - n);
		memcpy((uint8_t *)buf + n, p, k);
		stream_read_done(s, k);
		n += k;
	}
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
	st->cwnd = (uint64_t)cc_cwnd(s->cc);
	st->snd_buffered = s->snd_end - umin(s->snd_una, s->snd_end);
	st->rcv_buffered = s->rcv_high - s->rcv_read;
	st->mtu = s->conf.mtu;
	st->bw = (uint64_t)(cc_bw(s->cc) * 1e6);
	st->pacing_rate = (uint64_t)(pacing_rate(s) * 1e6);
	st->reorder_pkts = s->pkt_thresh == UINT64_MAX ? 0 : s->pkt_thresh;
	st->reorder_time8 = s->time_thresh8;
}

void
stream_ping(struct stream *s)
{
	s->ping_due = true;
}

size_t
stream_path_packet(struct stream *s, int type, const uint8_t data[STREAM_PATH_DATA],
    size_t size, uint64_t *pn, uint8_t *buf, size_t cap)
{
	size = umax(size, 1 + STREAM_PATH_DATA);
	if (cap < size || s->err != STREAM_OK ||
	    (type != STREAM_PATH_CHALLENGE && type != STREAM_PATH_RESPONSE))
		return 0;
	buf[0] = type == STREAM_PATH_CHALLENGE ? FT_PATH_CHALLENGE : FT_PATH_RESPONSE;
	memcpy(buf + 1, data, STREAM_PATH_DATA);
	/* RFC 9000 §19.1: PADDING frames "can be used to increase an
	 * initial client packet to the minimum required size, or to provide
	 * protection against traffic analysis"; parse skips them. */
	memset(buf + 1 + STREAM_PATH_DATA, FT_PADDING, size - 1 - STREAM_PATH_DATA);
	*pn = s->next_pn++;
	s->st.pkts_sent++;
	return size;
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
	/* The FIN waits for the datagrams queued before it: none after. */
	if (s->fin) {
		errno = EPIPE;
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
