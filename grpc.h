/*
 * grpc.h: one gRPC call over a libcurl HTTP/2 stream (grpc's
 * doc/PROTOCOL-HTTP2.md): the request headers, one request message, the
 * length-prefixed messages of the answer, and the status from its headers
 * or trailers.  The request side stays open (paused) after its one message,
 * as a bidirectional call that never sends a second one.
 */
#ifndef GRPC_H
#define GRPC_H

#include <stddef.h>

#include <curl/curl.h>

/* Status codes (grpc doc/statuscodes.md) that p2pcat acts on. */
#define GRPC_OK			0
#define GRPC_INVALID_ARGUMENT	3
#define GRPC_DEADLINE_EXCEEDED	4
#define GRPC_NOT_FOUND		5
#define GRPC_PERMISSION_DENIED	7
#define GRPC_RESOURCE_EXHAUSTED	8
#define GRPC_FAILED_PRECONDITION 9
#define GRPC_UNIMPLEMENTED	12
#define GRPC_UNAVAILABLE	14
#define GRPC_UNAUTHENTICATED	16

#define GRPC_PREFIX	5	/* compressed flag, 4-byte big-endian length */

/* Called with each whole message of the answer; nonzero ends the call. */
typedef int (*grpc_msg_cb)(void *arg, const unsigned char *msg, size_t len);

/* The answer's framing: bytes in, whole messages out, none larger than max
 * (a message is buffered as its bytes arrive, never by its announced
 * length). */
struct grpc_dec {
	unsigned char hdr[GRPC_PREFIX];
	size_t hlen;			/* prefix bytes so far */
	unsigned char *msg;
	size_t len, need, cap;		/* message bytes so far, announced, allocated */
	size_t max;
};

#define GRPC_DEC_BIG		(-1)	/* a message longer than max */
#define GRPC_DEC_COMPRESSED	(-2)	/* compressed, though we accept none */
#define GRPC_DEC_NOMEM		(-3)

void grpc_dec_init(struct grpc_dec *d, size_t max);
/* Feed n bytes; cb gets each message they complete.  0, a GRPC_DEC_ error,
 * or cb's nonzero return. */
int grpc_dec_feed(struct grpc_dec *d, const unsigned char *p, size_t n,
    grpc_msg_cb cb, void *arg);
void grpc_dec_free(struct grpc_dec *d);

/* What the answer's headers and trailers said. */
struct grpc_resp {
	long http;		/* status code, 0 before the status line */
	int h2;			/* the answer came over HTTP/2 */
	int grpc;		/* content-type application/grpc[+proto] */
	int headers;		/* the first header block has ended */
	int h1;			/* the request went out as HTTP/1 (a proxy, or
				   ALPN without h2): no gRPC answer will come */
	int status;		/* grpc-status, -1 none yet */
	char message[128];	/* grpc-message, decoded, printable ASCII */
};

void grpc_resp_init(struct grpc_resp *r);
/* Take one header line as libcurl's header callback passes it. */
void grpc_resp_header(struct grpc_resp *r, const char *line, size_t n);

struct grpc_req {
	const char *url;		/* https://host/package.Service/Method */
	int h2c;			/* http:// with HTTP/2 prior knowledge */
	const char *const *md;		/* "name: value" lines, NULL-terminated */
	const void *msg;		/* the request message, unframed */
	size_t len;
	size_t max;			/* largest answer message accepted */
	grpc_msg_cb cb;
	void *arg;
	long connect_ms;
};

struct grpc_call;

/* Start a call in multi m; NULL after printing why.  The metadata is
 * copied (and wiped when the call is freed: it may hold a token). */
struct grpc_call *grpc_call_new(CURLM *m, const struct grpc_req *q);
/* The call's easy handle (to match curl_multi_info_read's). */
CURL *grpc_call_easy(const struct grpc_call *c);
/* What the answer said so far. */
const struct grpc_resp *grpc_call_resp(const struct grpc_call *c);
/* Why the call's callbacks ended it, 0 if they did not: a GRPC_DEC_
 * error, the message callback's return, or GRPC_NOT_GRPC. */
int grpc_call_abort(const struct grpc_call *c);
#define GRPC_NOT_GRPC	(-10)	/* the answer is not gRPC over HTTP/2 */
/* 1 when the call's connection to the server stands (TCP, and TLS). */
int grpc_call_connected(const struct grpc_call *c);
/* libcurl's error text for the call, or "". */
const char *grpc_call_error(const struct grpc_call *c);
/* Remove the call from its multi (resetting the stream) and free it; a
 * no-op on NULL. */
void grpc_call_free(struct grpc_call *c);

#endif
