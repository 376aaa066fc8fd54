/*
 * turnchan.c: the channels of a TURN allocation (RFC 8656 §12).
 *
 * Channel i always has number STUN_CHANNEL_MIN + i.  RFC 8656 §12: "A
 * channel binding lasts for 10 minutes unless refreshed", there is no
 * way to delete one, and "the client MUST wait 5 minutes after the
 * channel binding expires before attempting to bind the channel number
 * to a different transport address or the transport address to a
 * different channel number".  Binding the same number to the same peer
 * again is a refresh, allowed at any time.
 */
#include <stddef.h>

#include "punch.h"
#include "stun.h"
#include "turnchan.h"

#define LIFETIME_US	600000000ULL	/* §12: 10 minutes */
#define EARLY_US	60000000ULL	/* refreshed a minute before */
#define QUIET_US	300000000ULL	/* §12: 5 minutes after expiry */

static uint64_t
umax(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/*
 * When the number of c, GONE, may go to another peer: §12's 5 minutes
 * after the binding expires at the server, and it may have bound or
 * refreshed it with the last ChannelBind we sent, answered or not (the
 * answer lost, or our patience shorter than its retransmissions), so
 * that may be 10 minutes after that went.  An answered one set expires
 * to just that.
 */
static uint64_t
free_at(const struct tchan *c)
{
	return c->sent + LIFETIME_US + QUIET_US;
}

/* Move c on to what the time makes it: a binding the server has
 * forgotten is GONE, and FREE once the quiet time is over. */
static void
age(struct tchan *c, uint64_t now)
{
	/* A ChannelBind never answered (the caller gave up without saying
	 * so): the server may have bound it then. */
	if (c->state == TCHAN_BINDING && now >= c->sent + LIFETIME_US) {
		c->state = TCHAN_GONE;
		c->free_at = free_at(c);
	}
	/* Ours to use until expires; the server may keep it longer if a
	 * refresh got no answer. */
	if (c->state == TCHAN_BOUND && now >= c->expires) {
		c->state = TCHAN_GONE;
		c->free_at = free_at(c);
	}
	if (c->state == TCHAN_GONE && now >= c->free_at)
		c->state = TCHAN_FREE;
}

struct tchan *
tchan_find(struct tchan_table *t, const struct sockaddr_storage *peer, uint64_t now)
{
	int i;

	for (i = 0; i < TCHAN_MAX; i++) {
		struct tchan *c = &t->c[i];

		age(c, now);
		if (c->state == TCHAN_BOUND && punch_same_addr(&c->peer, peer))
			return c;
	}
	return NULL;
}

struct tchan *
tchan_by_num(struct tchan_table *t, uint16_t num)
{
	int i = num - STUN_CHANNEL_MIN;

	/* §12: the server may use a channel once it has bound it, which
	 * can be before its answer reaches us. */
	if (i < 0 || i >= TCHAN_MAX ||
	    (t->c[i].state != TCHAN_BINDING && t->c[i].state != TCHAN_BOUND))
		return NULL;
	return &t->c[i];
}

struct tchan *
tchan_want(struct tchan_table *t, const struct sockaddr_storage *peer, uint64_t now)
{
	struct tchan *c = NULL;
	int i;

	for (i = 0; i < TCHAN_MAX; i++) {
		age(&t->c[i], now);
		if (t->c[i].state != TCHAN_FREE && punch_same_addr(&t->c[i].peer, peer)) {
			c = &t->c[i];
			break;
		}
	}
	if (c && (c->state != TCHAN_GONE || c->refused))
		return NULL;	/* bound, being bound, or refused lately */
	/* A peer whose channel lapsed gets the same number back; another
	 * takes a free one. */
	for (i = 0; i < TCHAN_MAX && c == NULL; i++)
		if (t->c[i].state == TCHAN_FREE) {
			c = &t->c[i];
			c->num = STUN_CHANNEL_MIN + i;
			c->peer = *peer;
		}
	if (c == NULL)
		return NULL;
	c->state = TCHAN_BINDING;
	c->asking = true;
	c->refused = false;
	c->sent = now;
	c->used = 0;
	return c;
}

void
tchan_answer(struct tchan *c, bool bound, uint64_t now)
{
	c->asking = false;
	if (bound && c->state != TCHAN_FREE) {
		/* The server's 10 minutes started after we sent it. */
		c->state = TCHAN_BOUND;
		c->expires = c->sent + LIFETIME_US;
	} else if (!bound && c->state == TCHAN_BINDING) {
		/* Refused, or never answered (the caller does not tell them
		 * apart; the server may then have bound it): not again until
		 * the number is free for anyone, and 5 minutes at least. */
		c->state = TCHAN_GONE;
		c->refused = true;
		c->free_at = umax(free_at(c), now + QUIET_US);
	}
	/* A refresh refused: the binding lasts until it expires. */
}

struct tchan *
tchan_due(struct tchan_table *t, uint64_t now)
{
	int i;

	for (i = 0; i < TCHAN_MAX; i++) {
		struct tchan *c = &t->c[i];

		age(c, now);
		if (c->state == TCHAN_BOUND && !c->asking && c->used >= c->sent &&
		    now >= c->expires - EARLY_US) {
			c->asking = true;
			c->sent = now;
			return c;
		}
	}
	return NULL;
}

uint64_t
tchan_deadline(const struct tchan_table *t)
{
	uint64_t d = UINT64_MAX, u;
	int i;

	for (i = 0; i < TCHAN_MAX; i++) {
		const struct tchan *c = &t->c[i];

		switch (c->state) {
		case TCHAN_BINDING:
			u = c->sent + LIFETIME_US;
			break;
		case TCHAN_BOUND:
			u = !c->asking && c->used >= c->sent ? c->expires - EARLY_US :
			    c->expires;
			break;
		case TCHAN_GONE:
			u = c->free_at;
			break;
		default:
			continue;
		}
		if (u < d)
			d = u;
	}
	return d;
}
