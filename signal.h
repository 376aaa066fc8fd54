/*
 * signal.h: the rendezvous.  A caller posts an offer addressed to a name
 * and waits for the answer to it; a listener waits for offers to its name
 * and answers each.  Offers and answers are opaque blobs that expire; each
 * side removes what it wrote and what it consumed.
 *
 * Backends: "dir:PATH" (signal.c) and "firestore:PROJECT[/DATABASE]"
 * (firestore.c).  Functions print one diagnostic where a problem is found.
 */
#ifndef SIGNAL_H
#define SIGNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define SIG_MAX_BLOB	4096	/* bytes in an offer or answer */
#define SIG_MAX_NAME	64	/* a peer name: 1-64 of [A-Za-z0-9._-], not . or .. */
#define SIG_ID_LEN	32	/* an offer id: 32 lowercase hex digits */

struct sig;

struct sig_opts {
	int verbose;				/* -v count */
	unsigned poll_ms;			/* listener's poll interval; 0: default */
	const volatile sig_atomic_t *stop;	/* set by SIGINT/SIGTERM: give up */
	const char *api_key_file;		/* Web API key file (config), or NULL */
	/* A descriptor that ends a wait early when it becomes readable
	 * (sig_wait_offer and sig_wait_answer then return 1, reading
	 * nothing from it), or 0 for none: fd 0 is stdin, never a wake
	 * descriptor.  A listener that serves several sessions wakes on
	 * its children this way. */
	int wake_fd;
};

struct sig_msg {
	char id[SIG_ID_LEN + 1];
	size_t len;
	unsigned char blob[SIG_MAX_BLOB];
};

/* Open the rendezvous named by url, or NULL after printing why.
 * Freed by sig_close (which is a no-op on NULL). */
struct sig *sig_open(const char *url, const struct sig_opts *o);
void sig_close(struct sig *s);

/* 1 when name is a valid peer name, else 0. */
int sig_valid_name(const char *name);

/* Caller.  sig_offer posts blob to `to' under the fresh id (never
 * overwriting), valid until expire_ms (Unix time, ms); 0 or -1.
 * sig_wait_answer waits until deadline_ms (Unix time) for the answer to
 * id and consumes it: 0 got it, 1 timed out, stopped or woken, -1 error.
 * sig_withdraw deletes the offer and any answer to it, best effort. */
int sig_offer(struct sig *s, const char *to, const char *id,
    const void *blob, size_t len, uint64_t expire_ms);
int sig_wait_answer(struct sig *s, const char *to, const char *id,
    struct sig_msg *ans, uint64_t deadline_ms);
void sig_withdraw(struct sig *s, const char *to, const char *id);

/* Listener.  sig_wait_offer waits until deadline_ms (UINT64_MAX: forever)
 * for an unexpired offer to name and consumes it: 0 got one, 1 timed out,
 * stopped or woken (wake_fd), -1 error.  sig_answer posts the answer to offer id; 0 or -1.
 * sig_unanswer deletes that answer if the caller never took it. */
int sig_wait_offer(struct sig *s, const char *name, struct sig_msg *offer,
    uint64_t deadline_ms);
int sig_answer(struct sig *s, const char *name, const char *id,
    const void *blob, size_t len, uint64_t expire_ms);
void sig_unanswer(struct sig *s, const char *name, const char *id);

/* Counters for -v: the reads the store bills so far (as Firestore bills
 * them: see fslisten.c) and the writes. */
void sig_counts(const struct sig *s, unsigned long *reads, unsigned long *writes);

/* For backends: signal.c dispatches to one of these by URL scheme. */
struct sig_backend {
	const char *scheme;		/* "dir", "firestore" */
	void *(*open)(const char *rest, const struct sig_opts *o);
	void (*close)(void *b);
	int (*offer)(void *b, const char *to, const char *id,
	    const void *blob, size_t len, uint64_t expire_ms);
	int (*wait_answer)(void *b, const char *to, const char *id,
	    struct sig_msg *ans, uint64_t deadline_ms);
	void (*withdraw)(void *b, const char *to, const char *id);
	int (*wait_offer)(void *b, const char *name, struct sig_msg *offer,
	    uint64_t deadline_ms);
	int (*answer)(void *b, const char *name, const char *id,
	    const void *blob, size_t len, uint64_t expire_ms);
	void (*unanswer)(void *b, const char *name, const char *id);
	void (*counts)(const void *b, unsigned long *reads, unsigned long *writes);
};

extern const struct sig_backend sig_dir_backend, sig_firestore_backend;

#endif
