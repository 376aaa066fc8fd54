/*
 * grpc.c: one gRPC call over a libcurl HTTP/2 stream.
 *
 * The wire format is grpc's doc/PROTOCOL-HTTP2.md: a POST to
 * /package.Service/Method with content-type application/grpc and
 * "te: trailers"; each message in either direction is a compressed flag
 * byte, a 4-byte big-endian length and the message; the answer's status is
 * grpc-status (and grpc-message, percent-encoded) in its trailers, or in
 * its headers when it carries no message at all ("Trailers-Only").
 *
 * libcurl 7.88 carries a bidirectional stream: the read callback hands over
 * the one request message, then pauses the upload for good (unpausing an
 * HTTP/2 upload has had bugs), and answer messages keep arriving through
 * the write callback; trailers reach the header callback.  With the upload
 * paused, libcurl reports a transfer done when the stream breaks (RST_STREAM,
 * GOAWAY, a closed connection), but not when it ends cleanly: the owner
 * ends the call itself once grpc-status has come (grpc_call_resp).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "grpc.h"
#include "util.h"

#define GRPC_CT		"application/grpc"

struct grpc_call {
	CURLM *m;
	CURL *e;
	struct curl_slist *hdrs;
	unsigned char *req;		/* the framed request message */
	size_t reqlen, sent;
	struct grpc_dec dec;
	struct grpc_resp resp;
	grpc_msg_cb cb;
	void *arg;
	int abort;			/* why a callback ended the call */
	char err[CURL_ERROR_SIZE];
};

void
grpc_dec_init(struct grpc_dec *d, size_t max)
{
	memset(d, 0, sizeof *d);
	d->max = max;
}

void
grpc_dec_free(struct grpc_dec *d)
{
	free(d->msg);
	memset(d, 0, sizeof *d);
}

int
grpc_dec_feed(struct grpc_dec *d, const unsigned char *p, size_t n,
    grpc_msg_cb cb, void *arg)
{
	unsigned char *q;
	size_t k, cap;
	int r;

	while (n > 0) {
		if (d->hlen < GRPC_PREFIX) {
			k = GRPC_PREFIX - d->hlen < n ? GRPC_PREFIX - d->hlen : n;
			memcpy(d->hdr + d->hlen, p, k);
			d->hlen += k;
			p += k;
			n -= k;
			if (d->hlen < GRPC_PREFIX)
				break;
			/* We send no grpc-accept-encoding: the server may
			 * compress nothing. */
			if (d->hdr[0] != 0)
				return GRPC_DEC_COMPRESSED;
			d->need = get32(d->hdr + 1);
			if (d->need > d->max)
				return GRPC_DEC_BIG;
			d->len = 0;
		}
		k = d->need - d->len < n ? d->need - d->len : n;
		if (d->len + k > d->cap) {
			/* Grow with what has arrived, not with the claim. */
			cap = d->cap ? d->cap : 4096;
			while (cap < d->len + k)
				cap *= 2;
			if (cap > d->need)
				cap = d->need;
			if ((q = realloc(d->msg, cap)) == NULL)
				return GRPC_DEC_NOMEM;
			d->msg = q;
			d->cap = cap;
		}
		if (k > 0)
			memcpy(d->msg + d->len, p, k);
		d->len += k;
		p += k;
		n -= k;
		if (d->len < d->need)
			break;
		d->hlen = 0;
		if ((r = cb(arg, d->msg, d->len)) != 0)
			return r;
		/* Keep a small buffer; let a big one go. */
		if (d->cap > 65536) {
			free(d->msg);
			d->msg = NULL;
			d->cap = 0;
		}
	}
	return 0;
}

void
grpc_resp_init(struct grpc_resp *r)
{
	memset(r, 0, sizeof *r);
	r->status = -1;
}

static int
grpc_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode grpc-message's percent-encoding into r->message, keeping
 * printable ASCII only. */
static void
grpc_message(struct grpc_resp *r, const char *v, size_t n)
{
	size_t i, j = 0;
	int c;

	for (i = 0; i < n && j + 1 < sizeof r->message; i++) {
		c = (unsigned char)v[i];
		if (c == '%' && i + 2 < n && grpc_hex(v[i + 1]) >= 0 &&
		    grpc_hex(v[i + 2]) >= 0) {
			c = grpc_hex(v[i + 1]) << 4 | grpc_hex(v[i + 2]);
			i += 2;
		}
		r->message[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	r->message[j] = '\0';
}

void
grpc_resp_header(struct grpc_resp *r, const char *line, size_t n)
{
	size_t k, i;
	const char *v;
	int st;

	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		n--;
	if (n == 0) {
		r->headers = 1;
		return;
	}
	if (n > 5 && memcmp(line, "HTTP/", 5) == 0) {
		/* A status line starts a header block: "HTTP/2 200". */
		r->h2 = line[5] == '2';
		r->http = 0;
		for (i = 5; i < n && line[i] != ' '; i++)
			;
		for (i++, k = 0; i < n && k < 3 && line[i] >= '0' &&
		    line[i] <= '9'; i++, k++)
			r->http = r->http * 10 + (line[i] - '0');
		if (k != 3)
			r->http = 0;
		return;
	}
	if ((v = memchr(line, ':', n)) == NULL)
		return;
	k = (size_t)(v - line);
	for (v++; v < line + n && (*v == ' ' || *v == '\t'); v++)
		;
	i = (size_t)(line + n - v);
	if (k == 12 && strncasecmp(line, "content-type", 12) == 0)
		r->grpc = i >= strlen(GRPC_CT) &&
		    strncasecmp(v, GRPC_CT, strlen(GRPC_CT)) == 0 &&
		    (i == strlen(GRPC_CT) || v[strlen(GRPC_CT)] == '+' ||
		    v[strlen(GRPC_CT)] == ';');
	else if (k == 11 && strncasecmp(line, "grpc-status", 11) == 0) {
		/* A number (doc/statuscodes.md); anything else is UNKNOWN. */
		for (st = 0, k = 0; k < i && k < 3 && v[k] >= '0' &&
		    v[k] <= '9'; k++)
			st = st * 10 + (v[k] - '0');
		r->status = k > 0 && k == i ? st : 2;
	} else if (k == 12 && strncasecmp(line, "grpc-message", 12) == 0)
		grpc_message(r, v, i);
}

static size_t
grpc_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct grpc_call *c = arg;
	size_t n = size * nitems, k = c->reqlen - c->sent;

	if (k == 0)
		return CURL_READFUNC_PAUSE;
	if (k > n)
		k = n;
	memcpy(buf, c->req + c->sent, k);
	c->sent += k;
	return k;
}

static size_t
grpc_header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct grpc_call *c = arg;

	grpc_resp_header(&c->resp, buf, size * nitems);
	return size * nitems;
}

/* libcurl's trace of the call, for the one thing it alone shows: whether
 * the request left as HTTP/2 ("POST /path HTTP/2") or not. */
static int
grpc_debug_cb(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
	struct grpc_call *c = arg;
	const char *eol;

	(void)e;
	if (type != CURLINFO_HEADER_OUT ||
	    (eol = memchr(data, '\r', size)) == NULL)
		return 0;
	if (eol - data >= 9 && memcmp(eol - 9, " HTTP/1.", 8) == 0)
		c->resp.h1 = 1;
	return 0;
}

static size_t
grpc_write_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct grpc_call *c = arg;
	int r;

	if (!c->resp.h2 || !c->resp.grpc || c->resp.http != 200) {
		c->abort = GRPC_NOT_GRPC;
		return 0;
	}
	if ((r = grpc_dec_feed(&c->dec, (unsigned char *)buf, size * nitems,
	    c->cb, c->arg)) != 0) {
		c->abort = r;
		return 0;
	}
	return size * nitems;
}

static int
grpc_add(struct curl_slist **l, const char *s)
{
	struct curl_slist *n = curl_slist_append(*l, s);

	if (n == NULL)
		return -1;
	*l = n;
	return 0;
}

struct grpc_call *
grpc_call_new(CURLM *m, const struct grpc_req *q)
{
	struct grpc_call *c;
	const char *const *md;

	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->req = malloc(GRPC_PREFIX + q->len)) == NULL) {
		log_err("grpc: out of memory");
		free(c);
		return NULL;
	}
	c->m = m;
	c->cb = q->cb;
	c->arg = q->arg;
	grpc_dec_init(&c->dec, q->max);
	grpc_resp_init(&c->resp);
	c->req[0] = 0;
	put32(c->req + 1, (uint32_t)q->len);
	if (q->len > 0)
		memcpy(c->req + GRPC_PREFIX, q->msg, q->len);
	c->reqlen = GRPC_PREFIX + q->len;
	/* No "Expect: 100-continue" wait before the message. */
	if (grpc_add(&c->hdrs, "content-type: " GRPC_CT) == -1 ||
	    grpc_add(&c->hdrs, "te: trailers") == -1 ||
	    grpc_add(&c->hdrs, "Expect:") == -1)
		goto nomem;
	for (md = q->md; md != NULL && *md != NULL; md++)
		if (grpc_add(&c->hdrs, *md) == -1)
			goto nomem;
	if ((c->e = curl_easy_init()) == NULL)
		goto nomem;
	curl_easy_setopt(c->e, CURLOPT_URL, q->url);
	curl_easy_setopt(c->e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->e, CURLOPT_HTTP_VERSION, q->h2c ?
	    (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : (long)CURL_HTTP_VERSION_2TLS);
	/* A connection of its own, closed with the call: libcurl 7.88 can
	 * trip over a connection whose stream ended with the upload paused. */
	curl_easy_setopt(c->e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(c->e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c->e, CURLOPT_POST, 1L);
	curl_easy_setopt(c->e, CURLOPT_READFUNCTION, grpc_read_cb);
	curl_easy_setopt(c->e, CURLOPT_READDATA, c);
	curl_easy_setopt(c->e, CURLOPT_HEADERFUNCTION, grpc_header_cb);
	curl_easy_setopt(c->e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->e, CURLOPT_WRITEFUNCTION, grpc_write_cb);
	curl_easy_setopt(c->e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, c->hdrs);
	curl_easy_setopt(c->e, CURLOPT_USERAGENT, "p2pcat");
	curl_easy_setopt(c->e, CURLOPT_ERRORBUFFER, c->err);
	curl_easy_setopt(c->e, CURLOPT_DEBUGFUNCTION, grpc_debug_cb);
	curl_easy_setopt(c->e, CURLOPT_DEBUGDATA, c);
	curl_easy_setopt(c->e, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(c->e, CURLOPT_CONNECTTIMEOUT_MS, q->connect_ms);
	/* A connection whose peer vanished is found by TCP keepalive, at no
	 * cost in reads. */
	curl_easy_setopt(c->e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->e, CURLOPT_TCP_KEEPIDLE, 60L);
	curl_easy_setopt(c->e, CURLOPT_TCP_KEEPINTVL, 15L);
	if (curl_multi_add_handle(m, c->e) != CURLM_OK) {
		log_err("grpc: cannot start a call");
		goto fail;
	}
	return c;
nomem:
	log_err("grpc: out of memory");
fail:
	curl_easy_cleanup(c->e);
	c->e = NULL;
	grpc_call_free(c);
	return NULL;
}

CURL *
grpc_call_easy(const struct grpc_call *c)
{
	return c->e;
}

const struct grpc_resp *
grpc_call_resp(const struct grpc_call *c)
{
	return &c->resp;
}

int
grpc_call_abort(const struct grpc_call *c)
{
	return c->abort;
}

int
grpc_call_connected(const struct grpc_call *c)
{
	curl_off_t t = 0;

	return curl_easy_getinfo(c->e, CURLINFO_APPCONNECT_TIME_T, &t) ==
	    CURLE_OK && t > 0 ? 1 : curl_easy_getinfo(c->e,
	    CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK && t > 0;
}

const char *
grpc_call_error(const struct grpc_call *c)
{
	return c->err;
}

void
grpc_call_free(struct grpc_call *c)
{
	struct curl_slist *h;

	if (c == NULL)
		return;
	if (c->e != NULL) {
		curl_multi_remove_handle(c->m, c->e);
		curl_easy_cleanup(c->e);
	}
	for (h = c->hdrs; h != NULL; h = h->next)
		sodium_memzero(h->data, strlen(h->data));
	curl_slist_free_all(c->hdrs);
	grpc_dec_free(&c->dec);
	free(c->req);
	free(c);
}
