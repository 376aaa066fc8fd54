/*
 * session.h: one connection to a peer.  It makes and takes the rendezvous
 * blobs (a Noise XX handshake, candidates, connection ids), checks the
 * peer's key, and moves the stream's packets sealed over the path the
 * punch finds.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "punch.h"
#include "stream.h"

struct session;

/* Decides whether to talk to the peer whose static key is pub (name: the
 * name it was called by, or the name a caller gave; may be ""): 0 yes,
 * -1 no, SESS_TRUST_BROKEN when it cannot tell, its own files failing
 * (after printing why). */
#define SESS_TRUST_BROKEN	(-2)
typedef int (*sess_trust_fn)(void *ctx, const char *name,
    const uint8_t pub[CRYPTO_KEY_LEN]);

struct sess_conf {
	bool caller;			/* we make the offer */
	bool dgram;			/* -u: datagrams; the peer must agree */
	const char *self;		/* our name, told to the listener; may be NULL */
	const struct crypto_identity *id;	/* our static key */
	const char *secret;		/* passphrase mode: the shared secret, or NULL */
	int cipher;			/* the only record cipher to use; 0: any */
	size_t secretlen;
	sess_trust_fn trust;
	void *trust_ctx;
	/* A listener's caller failed the passphrase (an online guess):
	 * called once, before the caller is told, so that a guess is
	 * counted even if the session ends at once; or NULL. */
	void (*guessed)(void *ctx);
	void *guessed_ctx;
	struct punch_conf punch;
	struct stream_conf stream;
};

/* How a session failed.  SESS_AUTH: a key was refused, ours by the peer
 * (who said so) or the peer's by us, or the passphrases differ (the
 * caller, told by the listener).  SESS_MODE: one side wants datagrams
 * (-u), the other a stream.  SESS_PASSPHRASE: the listener's caller
 * failed the passphrase.  SESS_CANCELLED: the listener's caller gave up
 * before it finished the handshake (it said why).  SESS_CONFIG: the
 * caller could not tell whether to trust the listener (SESS_TRUST_BROKEN). */
enum sess_err {
	SESS_OK = 0, SESS_AUTH, SESS_FAIL, SESS_MODE, SESS_PASSPHRASE, SESS_CANCELLED,
	SESS_CONFIG
};

/* A session with its socket and candidates, or NULL after printing why.
 * Freed (socket closed, keys wiped) by sess_free, a no-op on NULL. */
struct session *sess_new(const struct sess_conf *c);
void sess_free(struct session *s);
/* Gather STUN/TURN candidates until deadline (now_us() time): 0 or -1. */
int sess_gather(struct session *s, uint64_t deadline);

/* Caller: the offer to `to' under offer id into buf; its length, or 0
 * after printing why.  Then the answer: 0, or -1 after printing why
 * (sess_error() tells whether the peer's key was refused).  When we
 * refuse an answer that checks out (the listener's key, or its mode),
 * sess_cancel tells the listener, so that it gives up at once: it sends
 * the cancel the offer committed to, to the listener's addresses, for a
 * fraction of a second (blocking), and is a no-op otherwise. */
size_t sess_offer(struct session *s, const char *to, const char *id,
    uint8_t *buf, size_t cap);
int sess_take_answer(struct session *s, const uint8_t *blob, size_t len);
void sess_cancel(struct session *s);

/* Listener: take the offer made to name under id and make the answer into
 * out; its length, or 0 after printing why. */
size_t sess_take_offer(struct session *s, const char *name, const char *id,
    const uint8_t *blob, size_t len, uint8_t *out, size_t cap);
/* The name the caller gave, once its handshake is done ("" if none). */
const char *sess_peer_name(const struct session *s);
/* Listener, after refusing a caller (sess_io failed): answer the caller's
 * repeated HELLOs with the refusal for a moment (blocking), in case the
 * first was lost.  A no-op otherwise. */
void sess_linger(struct session *s);

int sess_fd(const struct session *s);
short sess_events(const struct session *s);	/* for poll(2) */
/* Receive what is waiting, then send what is due: 0, or -1 when the
 * session failed (sess_error says how). */
int sess_io(struct session *s, uint64_t now);
/* When sess_io must run next (CLOCK_MONOTONIC µs; UINT64_MAX: on input only). */
uint64_t sess_deadline(const struct session *s);
bool sess_connected(const struct session *s);
int sess_error(const struct session *s);		/* enum sess_err */
struct stream *sess_stream(struct session *s);
/* The peer's static key, once the handshake has shown it: 0, or -1. */
int sess_peer_key(const struct session *s, uint8_t pub[CRYPTO_KEY_LEN]);
/* true when the path goes through a TURN relay. */
bool sess_relayed(const struct session *s);
/* One line about the path for -v, into buf. */
const char *sess_describe(const struct session *s, char *buf, size_t size);
/* The record cipher agreed on (enum crypto_cipher), 0 before. */
int sess_cipher(const struct session *s);
/* Packets dropped because they failed authentication or were replayed. */
uint64_t sess_dropped(const struct session *s);

#endif
