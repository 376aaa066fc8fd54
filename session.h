/*
 * session.h: one connection to a peer.  It owns the UDP socket, makes the
 * blob that goes into the rendezvous (connection id, ephemeral key,
 * candidates), derives the session keys from both blobs, punches a path,
 * and moves the stream's packets sealed over it.
 */
#ifndef SESSION_H
#define SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

struct session;

struct sess_conf {
	bool caller;			/* we made the offer */
	int port;			/* local UDP port; 0: any */
	struct stream_conf stream;
};

/* A session with its socket and candidates, or NULL after printing why.
 * Freed (socket closed, keys wiped) by sess_free; sess_free(NULL) is a no-op. */
struct session *sess_new(const struct sess_conf *c);
void sess_free(struct session *s);

/* Our blob for the offer (caller) or answer (listener): its length, or 0
 * if cap is too small. */
size_t sess_blob(struct session *s, uint8_t *buf, size_t cap);
/* Take the peer's blob, derive keys and start punching: 0, or -1 after
 * printing what is wrong with it. */
int sess_start(struct session *s, const uint8_t *peer, size_t len);

int sess_fd(const struct session *s);
short sess_events(const struct session *s);	/* for poll(2) */
/* Receive what is waiting, then send what is due: 0, or -1 on a socket error. */
int sess_io(struct session *s, uint64_t now);
/* When sess_io must run next (CLOCK_MONOTONIC µs; UINT64_MAX: on input only). */
uint64_t sess_deadline(const struct session *s);
bool sess_connected(const struct session *s);
struct stream *sess_stream(struct session *s);
/* One line about the chosen path for -v, into buf. */
const char *sess_describe(const struct session *s, char *buf, size_t size);

#endif
