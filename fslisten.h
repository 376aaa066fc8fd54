/*
 * fslisten.h: one Firestore Listen stream (google.firestore.v1.Firestore/
 * Listen over gRPC, grpc.h) on one target: a query on one collection, or
 * one document.  It follows the server's snapshots, hands out each document
 * that a consistent snapshot adds or changes (once), keeps the resume
 * token, counts the reads Firestore bills for all this, and says when to
 * start the stream again.  The caller owns the curl multi handle and the
 * token, and drives it (see firestore.c).
 */
#ifndef FSLISTEN_H
#define FSLISTEN_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#define FSL_MAX_FIELDS	4

struct fsl_conf {
	const char *url;	/* "http[s]://host/google.firestore.v1.Firestore/Listen" */
	int h2c;		/* plain-text HTTP/2 with prior knowledge (the emulator) */
	const char *database;	/* "projects/P/databases/D" */
	const char *parent;	/* a query target: ".../documents/inbox/NAME", */
	const char *collection;	/* its collection id ("offers") */
	int limit;		/* and its limit; */
	const char *document;	/* or a document target: its full name */
	const char *fields[FSL_MAX_FIELDS];	/* fields kept of each document */
	size_t field_max;	/* bytes kept of a string or bytes value */
	const char *what;	/* the target in messages: "inbox/bob/offers" */
};

/* A field of a document handed out. */
#define FSL_ABSENT	0
#define FSL_STRING	1
#define FSL_BYTES	2
#define FSL_TIME	3
#define FSL_OTHER	4	/* another type, or a timestamp out of range */

struct fsl_val {
	int type;
	int big;		/* longer than field_max: p is NULL */
	unsigned char *p;	/* string or bytes, len bytes */
	size_t len;
	uint64_t ms;		/* a timestamp, Unix ms */
};

struct fsl_doc {
	unsigned char *name;	/* the full name, namelen bytes, NUL-terminated */
	size_t namelen;
	struct fsl_val f[FSL_MAX_FIELDS];	/* as fsl_conf.fields */
};

/* States (fsl_state). */
#define FSL_IDLE	0	/* no stream; fsl_due says when to start one */
#define FSL_LIVE	1	/* a stream is open */
#define FSL_FALLBACK	2	/* Listen cannot be used here (fsl_why) */
#define FSL_DENIED	3	/* the server refused the target (fsl_why) */

/* Why the last stream ended (fsl_end). */
#define FSL_END_NONE	0
#define FSL_END_UNREACHABLE 1	/* no connection to the server */
#define FSL_END_LOST	2	/* the stream ended or broke; it starts again */
#define FSL_END_UNAUTH	3	/* UNAUTHENTICATED: renew the token, start again;
				   twice in a row: FSL_DENIED */
#define FSL_END_STOPPED	4	/* fsl_stop, or a listen anew without the token */
#define FSL_END_FALLBACK 5	/* no gRPC, no HTTP/2, UNIMPLEMENTED: FSL_FALLBACK */
#define FSL_END_DENIED	6	/* PERMISSION_DENIED: FSL_DENIED */
#define FSL_END_NOTFOUND 7	/* NOT_FOUND (no such database): FSL_DENIED */
#define FSL_END_NOANSWER 8	/* connected, no answer: maybe a refusal that
				   libcurl 7.88 lost (see fslisten.c) */

struct fsl;

/* NULL after printing why.  Freed by fsl_free (a no-op on NULL). */
struct fsl *fsl_new(const struct fsl_conf *c);
void fsl_free(struct fsl *l);

/* Open a stream in multi m, with the metadata lines md (NULL-terminated:
 * the authorization; fslisten adds Google's routing headers); 0 or -1. */
int fsl_start(struct fsl *l, CURLM *m, const char *const *md);
/* End the stream now (why: for -v); fsl_due is then at once. */
void fsl_stop(struct fsl *l, const char *why);
/* 1 when e is the stream's easy handle. */
int fsl_owns(const struct fsl *l, const CURL *e);
/* The stream's transfer is done (curl_multi_info_read), with result cc. */
void fsl_done(struct fsl *l, CURLcode cc);
/* Check the timers (a stream that stays silent is ended). */
void fsl_tick(struct fsl *l);

int fsl_state(const struct fsl *l);
int fsl_end(const struct fsl *l);
/* What ended the last stream, or why Listen cannot be used. */
const char *fsl_why(const struct fsl *l);
/* Monotonic ms (now_us() / 1000) when fsl_start or fsl_tick is due. */
uint64_t fsl_due(const struct fsl *l);
/* 1 once the current stream has reached a consistent snapshot. */
int fsl_synced(const struct fsl *l);
/* 1 once any stream of l has reached one. */
int fsl_ever_synced(const struct fsl *l);

/* The oldest document that a consistent snapshot added or changed and
 * that was not taken yet, or NULL; fsl_pop takes it. */
const struct fsl_doc *fsl_peek(const struct fsl *l);
void fsl_pop(struct fsl *l);

/* Reads Firestore bills for l's streams so far (see fslisten.c), and of
 * them how many were a query's minimum charge. */
unsigned long fsl_reads(const struct fsl *l);
unsigned long fsl_queries(const struct fsl *l);

/* Process one ListenResponse message; 0, or -1 when the stream must end
 * (fsl_why says why).  grpc.c's callback, and the fuzzer's entry. */
int fsl_feed(struct fsl *l, const unsigned char *msg, size_t len);

#endif
