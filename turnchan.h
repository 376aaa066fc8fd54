/*
 * turnchan.h: the channels of a TURN allocation (RFC 8656 §12) as
 * bookkeeping: which channel number is bound to which peer, when to bind
 * it again, when it may take another peer.  No sockets and no clock: the
 * caller sends the ChannelBind requests and says what time it is.
 *
 * A channel is bound for the peer the session's path goes to, and kept
 * only while it carries datagrams: one idle since its last ChannelBind is
 * not bound again, so the server lets it expire, and once RFC 8656's
 * five minutes after that have passed its number may go to another peer.
 * At most TCHAN_MAX are in use; without one, datagrams go in Send
 * indications.
 */
#ifndef TURNCHAN_H
#define TURNCHAN_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stdint.h>

#define TCHAN_MAX	8

enum tchan_state { TCHAN_FREE, TCHAN_BINDING, TCHAN_BOUND, TCHAN_GONE };

struct tchan {
	uint16_t num;
	int state;			/* enum tchan_state */
	struct sockaddr_storage peer;	/* all but FREE */
	uint64_t sent;			/* the last ChannelBind for it went */
	bool asking;			/* and is not answered yet */
	bool refused;			/* GONE: the server refused it */
	uint64_t expires;		/* BOUND: the server forgets it then */
	uint64_t used;			/* the last datagram through it */
	uint64_t free_at;		/* GONE: it may take another peer then */
};

/* Zeroed is empty. */
struct tchan_table {
	struct tchan c[TCHAN_MAX];
};

/* The channel that carries datagrams to and from peer now, or NULL. */
struct tchan *tchan_find(struct tchan_table *t, const struct sockaddr_storage *peer,
    uint64_t now);
/* The channel of the datagrams the server sends as number num, or NULL. */
struct tchan *tchan_by_num(struct tchan_table *t, uint16_t num);
/* Datagrams go to peer often: the channel to send a ChannelBind for now
 * (one new, or peer's own that lapsed), or NULL (peer has one, or none
 * is free). */
struct tchan *tchan_want(struct tchan_table *t, const struct sockaddr_storage *peer,
    uint64_t now);
/* The server answered the ChannelBind for c: bound, or refused (also:
 * no answer came).  A refused number waits as if the server had bound
 * it (it may have, if its answer was lost). */
void tchan_answer(struct tchan *c, bool bound, uint64_t now);
/* A channel to send a ChannelBind for now, to keep it: one that carried
 * something since its last ChannelBind (the caller sets used), a minute
 * before it expires; or NULL.  Each call also moves the channels whose
 * time has come on (BOUND ones that expired become GONE, GONE ones FREE). */
struct tchan *tchan_due(struct tchan_table *t, uint64_t now);
/* When tchan_due has something to do next (UINT64_MAX: never). */
uint64_t tchan_deadline(const struct tchan_table *t);

#endif
