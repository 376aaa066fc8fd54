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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIG_MAX_BLOB	4096	/* bytes in an offer or answer */
#define SIG_MAX_NAME	64	/* a peer name: 1-64 of [A-Za-z0-9._-], not . or .. */
#define SIG_ID_LEN	32	/* an offer id: 32 lowercase hex digits */

struct sig;

struct sig_opts {
	int verbose;				/* -v count */
	unsigned poll_ms;			/* look this often; 0: the backend's default */
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
/* Say under -v the reads and writes billed since the last report (a -k
 * listener's idle time counts for the session that ends it), or with
 * total, all of them. */
void sig_report(struct sig *s, bool total);

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

/* The dir: backend's message file, exposed for tests/fuzz_dirfile.c: a
 * header of "key value" lines after the line "p2pcat-sig 1", ended by an
 * empty line within SIG_DIR_HDR_MAX bytes, then the blob. */
#define SIG_DIR_HDR_MAX	512

struct sig_dir_hdr {
	uint64_t expire;	/* Unix time, ms; never 0 */
	long pid;		/* the writer's, 1 to INT_MAX */
	char host[256];		/* the writer's host name; "" when not given */
};

/* Parse the n bytes at buf: 0 with h and m filled (m->id untouched); 1
 * when the header is valid (h filled) but the blob empty or larger than
 * SIG_MAX_BLOB; -1 when buf is not such a file. */
int sig_dir_parse(const void *buf, size_t n, struct sig_dir_hdr *h,
    struct sig_msg *m);
/* Write h as a header, empty line included, into buf: its length, or -1
 * when h is invalid or the header would not fit size or SIG_DIR_HDR_MAX. */
int sig_dir_header(char *buf, size_t size, const struct sig_dir_hdr *h);

/* Test hook (tests/unit_signal): how often the dir: backend's waits
 * have slept in poll(2) so far, 0 for other backends.  A wait that
 * spins shows as a count that grows without end. */
unsigned long sig_dir_naps(const struct sig *s);

/* Test hook (tests/fuzz_firestore; firestore.c says what it does). */
int fs_test_body(const char *body, size_t len, char *status, char *msg,
    struct sig_msg *m);
/* Test hook (tests/fuzz_firestore, tests/unit_firestore; firestore.c
 * says what it does), and the sizes of what it gives back. */
#define FS_TEST_TOKEN	8193
#define FS_TEST_UID	129
int fs_test_tokens(const char *body, size_t len, int refresh, char *idtok,
    char *reftok, char *uid, uint64_t *exp);
/* Test hook (tests/fuzz_firestore, tests/unit_firestore; firestore.c
 * says what it does), with fs_test_tokens' sizes; FS_TEST_CACHE is the
 * most of a cache file that the backend reads. */
#define FS_TEST_CACHE	24575
int fs_test_cache(const char *body, size_t len, char *idtok, char *reftok,
    char *uid, uint64_t *exp);

#endif
