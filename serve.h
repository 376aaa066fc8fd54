/*
 * serve.h: the listener.  It waits on the rendezvous for offers to its
 * name and works on each in a child process of its own, so that an offer
 * that is bogus, refused or abandoned never delays the next caller.
 */
#ifndef SERVE_H
#define SERVE_H

#include <stdbool.h>

#include "pump.h"
#include "session.h"

#define SERVE_HANDSHAKES	16	/* offers worked on at once besides sessions */

struct sig;
struct serve;

struct serve_conf {
	const char *name;		/* we listen as */
	bool keep;			/* -k: serve one session after another */
	int max_kids;			/* offers worked on at once (processes) */
	int max_sessions;		/* of them connected at once (slots) */
	double wait_s;			/* -w, for each offer */
	const struct sess_conf *sess;	/* its punch.spray is replaced */
	const struct pump_conf *pump;	/* in_fd/out_fd: stdin and stdout */
	const volatile sig_atomic_t *stop;
};

/* A listener, or NULL after printing why; freed by serve_free (a no-op
 * on NULL).  Its wake descriptor is for sig_opts.wake_fd: the rendezvous
 * must be opened with it, so that a wait for offers ends when a child
 * has something to say or has exited. */
struct serve *serve_new(const struct serve_conf *c);
int serve_wake_fd(const struct serve *sv);
void serve_free(struct serve *sv);

/* From a signal handler (async-signal-safe): wake the listener, so that
 * it sees the flag the handler set. */
void serve_notify(void);

/* Serve until done (one session without -k), the rendezvous fails or a
 * signal stops us: the exit status (p2pcat.h). */
int serve_run(struct serve *sv, struct sig *sig);

#endif
