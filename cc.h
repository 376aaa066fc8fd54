/*
 * cc.h: congestion control for the stream (stream.c), behind a small
 * interface: the stream tells it what it sends, what each ACK frame
 * acknowledges and declares lost, which losses were not (spurious), and
 * asks it for the congestion window and the pacing rate.  cc.c is BBR
 * (draft-ietf-ccwg-bbr); another controller would implement the same
 * functions.  Sizes are bytes, times microseconds from CLOCK_MONOTONIC,
 * rates bytes per microsecond.
 */
#ifndef CC_H
#define CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cc;

/* What the controller notes about each packet it is told of (the
 * delivery state when it left, for the rate it is delivered at); the
 * stream keeps it with the packet and hands it back. */
struct cc_pkt {
	uint64_t delivered, delivered_us, first_sent_us, lost, tx_in_flight;
	uint64_t lost_round, lost_episode;	/* when it was declared lost, */
	uint64_t lost_at;		/* and the bytes lost before it then */
	uint8_t flags;
};

/* An ACK frame, after its acknowledgements and losses went in. */
struct cc_ack {
	uint64_t now;
	uint64_t prior_in_flight;	/* bytes in flight before the frame */
	uint64_t in_flight;		/* and after */
	uint64_t rtt;			/* a round trip that overtook nothing, fit
					 * for the path's minimum; 0: none */
	uint64_t raw_min_rtt;		/* the least of any round trip; 0: none */
	uint64_t latest_rtt;		/* the last round trip sampled; 0: none */
	uint64_t init_rtt;		/* the handshake's round trip; 0: none */
};

/* A controller for packets of mss bytes, or NULL (out of memory).  Freed
 * by cc_free, a no-op on NULL. */
struct cc *cc_new(size_t mss, uint64_t now);
void cc_free(struct cc *c);
/* Back to what cc_new made, for packets of mss bytes: the path moved
 * (RFC 9000 §9.4), and nothing learnt of the old one holds. */
void cc_reset(struct cc *c, size_t mss, uint64_t now);
/* The path's packets grew (RFC 8899): windows counted in packets follow. */
void cc_set_mss(struct cc *c, size_t mss);

/* A packet of size bytes leaves with in_flight bytes in flight before it. */
void cc_on_send(struct cc *c, struct cc_pkt *p, uint64_t size,
    uint64_t in_flight, uint64_t now);
/* The sender has nothing it may send and room in the window: what it
 * sends is not what the path would carry.  flow_blocked: data waits, held
 * back by the peer's flow control window. */
void cc_app_limited(struct cc *c, uint64_t in_flight, bool flow_blocked);

/* One ACK frame: cc_ack_begin, cc_on_acked for each packet it newly
 * acknowledges (pn, size, when sent), cc_on_lost for each packet declared
 * lost meanwhile (episode: the first of a new loss episode, RFC 9002
 * §7.3.2), then cc_ack_end. */
void cc_ack_begin(struct cc *c);
void cc_on_acked(struct cc *c, const struct cc_pkt *p, uint64_t pn,
    uint64_t size, uint64_t sent_us, uint64_t now);
void cc_on_lost(struct cc *c, struct cc_pkt *p, uint64_t size, bool episode,
    uint64_t now);
void cc_ack_end(struct cc *c, const struct cc_ack *a);
/* A packet declared lost (p, as cc_on_lost left it) was acknowledged
 * after all: the loss is taken back.  The stream calls it within the ACK
 * frame, before cc_on_acked for the same packet, which counts it
 * delivered. */
void cc_on_spurious(struct cc *c, const struct cc_pkt *p, uint64_t size,
    uint64_t now);
/* RFC 9002 §7.6: persistent congestion. */
void cc_on_persistent(struct cc *c);

double cc_cwnd(const struct cc *c);		/* bytes */
double cc_pacing_rate(const struct cc *c);
double cc_bw(const struct cc *c);		/* the bottleneck rate, estimated */

#endif
