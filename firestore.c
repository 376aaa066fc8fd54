/*
 * firestore.c: the "firestore:PROJECT[/DATABASE]" rendezvous backend, over
 * the Cloud Firestore v1 REST API (libcurl and cJSON), with news of offers
 * and answers pushed by Firestore's Listen (fslisten.c, over gRPC: grpc.c).
 *
 * Store layout, D = projects/PROJECT/databases/DATABASE/documents:
 *
 *	D/inbox/NAME/offers/ID		an offer to NAME, by its caller
 *	D/inbox/NAME/answers/ID		NAME's answer to offer ID, by the listener
 *
 * Offer fields:  to (string, = NAME), blob (bytes), expireAt (timestamp),
 *                uid (string, the writer's Firebase uid; only when signed in)
 * Answer fields: name (string, = NAME), blob, expireAt, uid
 *
 * Per-name inbox subcollections let security rules tie a list to its path
 * (rules are not filters); answers are only ever fetched by ID (get, never
 * list), so the 128-bit offer ID is what lets the caller read its answer
 * (see firestore.rules).  Documents are created with POST ...?documentId=ID,
 * which fails with ALREADY_EXISTS instead of overwriting.  A listener
 * learns of its offers by listening to inbox/NAME/offers (a query limited
 * to FS_PAGE, as a REST list is) and claims one by deleting it with
 * currentDocument.exists=true, so two listeners never take the same offer;
 * the caller listens to its answer's document from the moment its offer is
 * posted.  Every document carries expireAt (for a TTL policy), but TTL
 * deletion lags by up to a day: clients check expireAt themselves and
 * delete what has expired.  Each side deletes what it wrote and what it
 * consumed.  Where Listen cannot be used (no HTTP/2, a proxy in the way,
 * UNIMPLEMENTED: said once under -v), or with --poll, both sides poll by
 * REST as before Listen.
 *
 * Cost: Listen is billed a read per document added or changed in a
 * stream's result set and at least one per stream (fslisten.c has the
 * rules and the model): an idle listener about 25 reads a day, a
 * connection attempt a read or two a side, never more than FS_LISTEN_READS
 * for the caller.  Polling, every poll is a billed read (a list returning
 * N documents costs N, at least 1): an idle listener polls every
 * FS_POLL_MS, under 20,000 reads a day; a caller polls for its answer fast
 * at first, then backing off, and never spends more than FS_CONNECT_READS
 * reads on one connection attempt.
 *
 * Authentication: with FIRESTORE_EMULATOR_HOST, "Bearer owner" as Google's
 * SDKs send; with a Web API key (P2PCAT_API_KEY, or the api-key-file), an
 * anonymous Identity Toolkit account whose tokens are cached 0600 under
 * $XDG_CACHE_HOME/p2pcat/; otherwise none (open rules).  A Listen stream
 * carries the token it started with, and is started anew before that
 * expires.  The emulator takes REST on HTTP/1.1 and Listen on plain-text
 * HTTP/2 (it answers non-gRPC HTTP/2 with 415): each on its own handle.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "fslisten.h"
#include "signal.h"
#include "util.h"

#define FS_HOST		"https://firestore.googleapis.com"
#define FS_IDT_HOST	"https://identitytoolkit.googleapis.com"
#define FS_STS_HOST	"https://securetoken.googleapis.com"
#define FS_POLL_MS	4500	/* 86,400 s / 4.5 s = 19,200 reads a day */
#define FS_READS_DAY	20000	/* an idle listener's budget */
#define FS_CONNECT_READS 60	/* a connection attempt's read budget */
#define FS_ANS_FIRST_MS	250	/* caller's first answer poll interval */
#define FS_ANS_MAX_MS	5000	/* ... growing x1.5 up to this */
#define FS_PAGE		8	/* offers listed per poll */
#define FS_MAX_BODY	(1536 * 1024)	/* response bytes parsed */
#define FS_RETRY_MS	100	/* first backoff; Google's clients: 0.1 s, x1.3 */
#define FS_RETRY_MAX_MS	5000	/* backoff cap (theirs is 60 s; we have deadlines) */
#define FS_UNREACH_MS	3000	/* how long "cannot connect" is retried */
/* A listener whose store stops answering (the network is down) keeps
 * listening: it tries again after a poll interval, doubling up to this. */
#define FS_OUTAGE_MAX_MS 60000
#define FS_CONNECT_TO_MS 5000	/* curl connect timeout */
#define FS_REQ_TO_MS	30000	/* curl total timeout */
#define FS_OP_MS	20000	/* deadline of offer/answer */
#define FS_CLEAN_MS	5000	/* deadline of best-effort deletes */
#define FS_MIN_REQ_MS	3000	/* a poll request near the deadline gets this */
#define FS_TOKEN_SLACK_MS 120000 /* refresh tokens this long before expiry */
#define FS_TOKEN_MAX_S	(86400 * 7) /* the longest token life believed, s */
#define FS_MAX_ID	128	/* project or database id */
#define FS_MAX_KEY	256	/* Web API key */
#define FS_MAX_TOKEN	8192	/* id or refresh token */
#define FS_MAX_UID	128
#define FS_CACHE_MAX	(3 * FS_MAX_TOKEN - 1) /* token cache bytes read */
#define FS_B64_MAX	(((SIG_MAX_BLOB + 2) / 3) * 4)
#define FS_LISTEN	"google.firestore.v1.Firestore/Listen"
/* A connection attempt's reads when both sides listen: the caller's answer
 * stream costs 1 (its query) + 1 (the answer), the listener 1 (the offer);
 * the rest is room for a stream that breaks and starts again. */
#define FS_LISTEN_READS	10
#define FS_LISTEN_STALL_MS 3000	/* an answer stream not started in this: poll */

_Static_assert(86400000 / FS_POLL_MS <= FS_READS_DAY,
    "an idle listener's default polling must fit its daily read budget");

enum { FS_AUTH_NONE, FS_AUTH_OWNER, FS_AUTH_KEY };
enum { FS_READ, FS_WRITE, FS_AUTHREQ };
#define FS_ERR		(-1)	/* request failed; diagnostic printed */
#define FS_STOPPED	(-2)	/* opts->stop was set */
#define FS_WOKEN	(-3)	/* opts->wake_fd became readable */
#define FS_FALLBACK	(-4)	/* Listen cannot be used: poll */

struct fs_buf {
	char *p;
	size_t len, cap;
	int over;
};

struct fs {
	CURL *curl;
	char project[FS_MAX_ID + 1];
	char database[FS_MAX_ID + 1];
	char *base;			/* ".../v1/" */
	char *docs;			/* "projects/P/databases/D/documents" */
	char *idt;			/* ".../identitytoolkit.googleapis.com/v1/" */
	char *sts;			/* ".../securetoken.googleapis.com/v1/" */
	unsigned poll_ms;
	int page;			/* offers listed per poll */
	const volatile sig_atomic_t *stop;
	int auth;
	char key[FS_MAX_KEY + 1];
	char *cache;			/* token cache path */
	int cache_loaded;
	char idtok[FS_MAX_TOKEN + 1];
	char reftok[FS_MAX_TOKEN + 1];
	uint64_t tok_exp;		/* renew it then, Unix ms */
	char uid[FS_MAX_UID + 1];
	unsigned long reads, writes, reads0;
	struct fs_buf resp;
	long http;			/* last HTTP status */
	char status[40];		/* its error status, "" if none */
	char msg[256];			/* its error message, cleaned */
	int attempts;			/* of the last request */
	int unsure;			/* an earlier attempt may have landed */
	int lost;			/* the last request failed on the way:
					   no answer, or only "try later" */
	int quiet;			/* say such failures with -v only */
	int polled;			/* an inbox poll has worked */
	uint64_t req_deadline;		/* for the progress callback */
	int wake_fd;			/* opts->wake_fd, 0 none */
	int wake_ok;			/* requests may end when it wakes */
	/* Listen (fslisten.c), unless polling is forced (--poll) or Listen
	 * proved unusable here (said once). */
	int force_poll, listen_off;
	CURLM *multi;
	char *listen_url;
	char *db;			/* "projects/P/databases/D" */
	int h2c;			/* the emulator: plain-text HTTP/2 */
	struct fsl *lo;			/* the listener's inbox */
	char lo_name[SIG_MAX_NAME + 1];
	uint64_t lo_tok;		/* its stream's token expires (Unix ms) */
	struct fsl *la;			/* the caller's answer */
	char la_path[SIG_MAX_NAME + 64];
	uint64_t la_tok;
	unsigned long lreads;		/* reads billed to streams now gone */
	uint64_t down;			/* the store stopped answering then */
	int repoll;			/* a claim failed on the way: list */
};

static pthread_once_t fs_once = PTHREAD_ONCE_INIT;
static CURLcode fs_global_rc;

static void
fs_global(void)
{
	fs_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Copy src to dst (size n) for quoting in a diagnostic: printable ASCII
 * only, truncated with "...". */
static const char *
fs_q(char *dst, size_t n, const char *src)
{
	size_t i, j;

	for (i = j = 0; src[i] != '\0' && j + 4 < n; i++)
		dst[j++] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	if (src[i] != '\0' && n >= 4)
		memcpy(dst + j, "...", 3), j += 3;
	dst[j] = '\0';
	return dst;
}

/* Remove every occurrence of secret from s (in place). */
static void
fs_redact(char *s, const char *secret)
{
	size_t n = strlen(secret);
	char *p;

	if (n < 4)
		return;
	while ((p = strstr(s, secret)) != NULL) {
		memcpy(p, "[secret]", n < 8 ? n : 8);
		memmove(p + (n < 8 ? n : 8), p + n, strlen(p + n) + 1);
	}
}

static void
fs_wipe_json(cJSON *j)
{
	for (; j != NULL; j = j->next) {
		if (j->valuestring != NULL)
			sodium_memzero(j->valuestring, strlen(j->valuestring));
		fs_wipe_json(j->child);
	}
}

static void
fs_free_json_secret(cJSON *j)
{
	fs_wipe_json(j);
	cJSON_Delete(j);
}

static char *
fs_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
fs_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		log_err("firestore: out of memory");
		return NULL;
	}
	return s;
}

/* 1 when s is 32 lowercase hex digits. */
static int
fs_valid_id(const char *s)
{
	size_t i;

	for (i = 0; i < SIG_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

/* Format Unix ms as RFC 3339 UTC with milliseconds. */
static void
fs_fmt_time(char *dst, size_t n, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(dst, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

static int
fs_digits(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* Parse an RFC 3339 timestamp ("2026-01-02T03:04:05.123456789Z" or with a
 * +hh:mm offset) into Unix ms; 0 or -1. */
static int
fs_parse_time(const char *s, uint64_t *ms)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, oh, om, frac = 0, i;
	long long t;
	const char *p;

	if (strlen(s) < 20 || strlen(s) > 40 ||
	    fs_digits(s, 4, &y) || s[4] != '-' || fs_digits(s + 5, 2, &mo) ||
	    s[7] != '-' || fs_digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || fs_digits(s + 11, 2, &h) ||
	    s[13] != ':' || fs_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    fs_digits(s + 17, 2, &sec))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	p = s + 19;
	if (*p == '.') {
		for (i = 0, p++; *p >= '0' && *p <= '9'; p++, i++) {
			if (i >= 9)
				return -1;
			if (i < 3)
				frac = frac * 10 + (*p - '0');
		}
		if (i == 0)
			return -1;
		for (; i < 3; i++)
			frac *= 10;
	}
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (long long)timegm(&tm);
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		;
	else if ((*p == '+' || *p == '-') && strlen(p) == 6 &&
	    !fs_digits(p + 1, 2, &oh) && p[3] == ':' && !fs_digits(p + 4, 2, &om))
		t -= (*p == '+' ? 1 : -1) * (oh * 3600LL + om * 60);
	else
		return -1;
	if (t < 0)
		return -1;
	*ms = (uint64_t)t * 1000 + (uint64_t)frac;
	return 0;
}

/*
 * HTTP.
 */

static size_t
fs_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fs_buf *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (n > FS_MAX_BODY || b->len + n > FS_MAX_BODY) {
		b->over = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = malloc(cap)) == NULL)
			return 0;
		if (b->len)
			memcpy(p, b->p, b->len);
		if (b->p != NULL) {
			sodium_memzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static void
fs_buf_clear(struct fs_buf *b)
{
	if (b->p != NULL) {
		sodium_memzero(b->p, b->len);
		b->p[0] = '\0';
	}
	b->len = 0;
	b->over = 0;
}

/* 1 when the wake descriptor is readable. */
static int
fs_woken(const struct fs *b)
{
	struct pollfd p;

	if (b->wake_fd <= 0)
		return 0;
	p.fd = b->wake_fd;
	p.events = POLLIN;
	p.revents = 0;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP));
}

static int
fs_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct fs *b = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return (b->stop != NULL && *b->stop) || (b->wake_ok && fs_woken(b));
}

/* Sleep until Unix ms `until', waking for opts->stop and, when b->wake_ok,
 * for the wake descriptor: 0, FS_STOPPED or FS_WOKEN. */
static int
fs_sleep(struct fs *b, uint64_t until)
{
	struct pollfd p;
	uint64_t now, d;

	for (;;) {
		if (b->stop != NULL && *b->stop)
			return FS_STOPPED;
		if ((now = unix_ms()) >= until)
			return 0;
		d = until - now;
		if (d > 100)
			d = 100;
		p.fd = b->wake_ok && b->wake_fd > 0 ? b->wake_fd : -1;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, (int)d) == 1 && (p.revents & (POLLIN | POLLHUP)))
			return FS_WOKEN;
	}
}

/* A wait's sleep, which the wake descriptor ends: as fs_sleep. */
static int
fs_pause(struct fs *b, uint64_t until)
{
	int r;

	b->wake_ok = b->wake_fd > 0;
	r = fs_sleep(b, until);
	b->wake_ok = 0;
	return r;
}

/*
 * Parse the answer body.  cJSON ends a string at a \u0000 escape, which
 * would make "dave\u0000junk" equal "dave": such escapes become \u0001
 * first (in place), which no name, id or base64 blob holds.
 */
static cJSON *
fs_parse_body(struct fs *b)
{
	char *p = b->resp.p;
	size_t i, n = b->resp.len;

	if (p == NULL || n == 0)
		return NULL;
	for (i = 0; i + 1 < n; i++) {
		if (p[i] != '\\')
			continue;
		if (p[i + 1] == 'u' && i + 5 < n &&
		    memcmp(p + i + 2, "0000", 4) == 0)
			p[i + 5] = '1';
		i++;
	}
	return cJSON_ParseWithLength(p, n);
}

/* Fill b->status and b->msg from an error body. */
static void
fs_parse_error(struct fs *b)
{
	cJSON *j, *e, *v;

	b->status[0] = b->msg[0] = '\0';
	if ((j = fs_parse_body(b)) == NULL)
		return;
	e = cJSON_IsArray(j) ? cJSON_GetArrayItem(j, 0) : j;
	e = cJSON_GetObjectItemCaseSensitive(e, "error");
	if (cJSON_IsString(e))		/* OAuth style: {"error":"..."} */
		fs_q(b->msg, sizeof b->msg, e->valuestring);
	v = cJSON_GetObjectItemCaseSensitive(e, "status");
	if (cJSON_IsString(v))
		fs_q(b->status, sizeof b->status, v->valuestring);
	v = cJSON_GetObjectItemCaseSensitive(e, "message");
	if (cJSON_IsString(v))
		fs_q(b->msg, sizeof b->msg, v->valuestring);
	if (b->key[0] != '\0')
		fs_redact(b->msg, b->key);
	if (b->idtok[0] != '\0')
		fs_redact(b->msg, b->idtok);
	if (b->reftok[0] != '\0')
		fs_redact(b->msg, b->reftok);
	fs_free_json_secret(j);
}

/* 1 when HTTP answer code/status is worth retrying. */
static int
fs_retryable(long code, const char *status)
{
	if (strcmp(status, "UNAVAILABLE") == 0 ||
	    strcmp(status, "RESOURCE_EXHAUSTED") == 0 ||
	    strcmp(status, "INTERNAL") == 0 ||
	    strcmp(status, "DEADLINE_EXCEEDED") == 0 ||
	    strcmp(status, "ABORTED") == 0)
		return 1;
	if (status[0] != '\0')
		return 0;
	return code == 429 || code == 500 || code == 502 || code == 503 ||
	    code == 504;
}

static int fs_token(struct fs *, int, uint64_t);

/* 1 when curl could not get to the server at all. */
static int
fs_unreachable(CURLcode cc)
{
	return cc == CURLE_COULDNT_RESOLVE_HOST ||
	    cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_COULDNT_CONNECT;
}

/* The URL as -v may print it: without its query when it holds a key. */
static void
fs_log_url(const char *method, const char *url)
{
	const char *q = strchr(url, '?');

	if (q != NULL && strstr(q, "key=") != NULL)
		log_v(2, "firestore: %s %.*s", method, (int)(q - url), url);
	else
		log_v(2, "firestore: %s %s", method, url);
}

/* The host[:port] of url, into dst. */
static void
fs_url_host(char *dst, size_t n, const char *url)
{
	const char *p = strstr(url, "://"), *e;

	p = p != NULL ? p + 3 : url;
	e = p + strcspn(p, "/?#");
	snprintf(dst, n, "%.*s", (int)(e - p), p);
}

/*
 * One REST call with retries until deadline (Unix ms).  kind says how it is
 * billed (FS_READ, FS_WRITE) or that it is a sign-in (FS_AUTHREQ: no
 * Firestore token).  Returns the HTTP status of the last answer (the body
 * in b->resp, an error's status and message in b->status and b->msg), or
 * FS_ERR after printing why, or FS_STOPPED.  b->unsure is set when an
 * earlier attempt may have been carried out.
 */
static int
fs_call(struct fs *b, const char *method, const char *url, const char *ctype,
    const char *body, int kind, uint64_t deadline)
{
	struct curl_slist *h = NULL, *n;
	char hdr[FS_MAX_TOKEN + 64], err[CURL_ERROR_SIZE], host[300];
	uint64_t now, first = unix_ms(), delay = FS_RETRY_MS, left, d;
	int ret = FS_ERR, refreshed = 0, rc;
	CURLcode cc;

	b->attempts = 0;
	b->unsure = 0;
	b->lost = 0;
	fs_url_host(host, sizeof host, url);
	for (;;) {
		if (b->stop != NULL && *b->stop) {
			ret = FS_STOPPED;
			goto out;
		}
		if (kind != FS_AUTHREQ && b->auth == FS_AUTH_KEY &&
		    (rc = fs_token(b, 0, deadline)) != 0) {
			ret = rc;
			goto out;
		}
		now = unix_ms();
		left = deadline > now ? deadline - now : 0;
		if (left == 0) {
			log_err("firestore: %s %s: timed out", method,
			    host);
			goto out;
		}
		curl_easy_reset(b->curl);
		fs_buf_clear(&b->resp);
		b->http = 0;
		b->status[0] = b->msg[0] = '\0';
		err[0] = '\0';
		h = NULL;
		if (ctype != NULL) {
			snprintf(hdr, sizeof hdr, "Content-Type: %s", ctype);
			h = curl_slist_append(h, hdr);
		}
		if (kind != FS_AUTHREQ && b->auth == FS_AUTH_OWNER)
			h = curl_slist_append(h, "Authorization: Bearer owner");
		else if (kind != FS_AUTHREQ && b->auth == FS_AUTH_KEY) {
			snprintf(hdr, sizeof hdr, "Authorization: Bearer %s",
			    b->idtok);
			h = curl_slist_append(h, hdr);
			sodium_memzero(hdr, sizeof hdr);
		}
		h = curl_slist_append(h, "Expect:");
		curl_easy_setopt(b->curl, CURLOPT_URL, url);
		curl_easy_setopt(b->curl, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(b->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(b->curl, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(b->curl, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(b->curl, CURLOPT_USERAGENT, "p2pcat");
		curl_easy_setopt(b->curl, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(b->curl, CURLOPT_ERRORBUFFER, err);
		curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, fs_write_cb);
		curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, &b->resp);
		curl_easy_setopt(b->curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(b->curl, CURLOPT_XFERINFOFUNCTION,
		    fs_progress_cb);
		curl_easy_setopt(b->curl, CURLOPT_XFERINFODATA, b);
		curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT_MS,
		    (long)(left < FS_CONNECT_TO_MS ? left : FS_CONNECT_TO_MS));
		curl_easy_setopt(b->curl, CURLOPT_TIMEOUT_MS,
		    (long)(left < FS_REQ_TO_MS ? left : FS_REQ_TO_MS));
		if (body != NULL) {
			curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE,
			    (long)strlen(body));
		} else if (strcmp(method, "GET") != 0) {
			curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, "");
			curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE, 0L);
		}
		if (strcmp(method, "GET") == 0)
			curl_easy_setopt(b->curl, CURLOPT_HTTPGET, 1L);
		fs_log_url(method, url);
		b->attempts++;
		cc = curl_easy_perform(b->curl);
		for (n = h; n != NULL; n = n->next)
			sodium_memzero(n->data, strlen(n->data));
		curl_slist_free_all(h);
		h = NULL;
		if (cc == CURLE_ABORTED_BY_CALLBACK ||
		    (b->stop != NULL && *b->stop)) {
			ret = b->stop != NULL && *b->stop ? FS_STOPPED :
			    FS_WOKEN;
			goto out;
		}
		if (cc == CURLE_WRITE_ERROR && b->resp.over) {
			log_v(1, "firestore: %s %s: answer larger than %d "
			    "bytes, ignored", method, host, FS_MAX_BODY);
			b->http = 0;
			ret = 0;	/* the caller sees an unusable answer */
			goto out;
		}
		if (cc == CURLE_OK) {
			curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE,
			    &b->http);
			if (b->http >= 300)
				fs_parse_error(b);
			if (b->http > 0 && b->http < 500 && kind == FS_READ)
				b->reads++;
			else if (b->http > 0 && b->http < 500 &&
			    kind == FS_WRITE)
				b->writes++;
			log_v(2, "firestore: -> %ld %s", b->http, b->status);
			if (b->http == 401 && kind != FS_AUTHREQ &&
			    b->auth == FS_AUTH_KEY && !refreshed) {
				refreshed = 1;
				log_v(1, "firestore: token refused, "
				    "refreshing it");
				if ((rc = fs_token(b, 1, deadline)) != 0) {
					ret = rc;
					goto out;
				}
				continue;
			}
			if (!fs_retryable(b->http, b->status)) {
				ret = (int)b->http;
				goto out;
			}
			log_v(1, "firestore: %s %s: HTTP %ld %s, retrying",
			    method, host, b->http, b->status);
			b->unsure = 1;
		} else if (fs_unreachable(cc)) {
			if (unix_ms() - first >= FS_UNREACH_MS ||
			    unix_ms() + delay * 3 / 2 >= deadline) {
				b->lost = 1;
				log_v(b->quiet ? 1 : 0, "firestore: cannot reach %s: %s",
				    host, err[0] ? err :
				    curl_easy_strerror(cc));
				goto out;
			}
			log_v(1, "firestore: cannot reach %s: %s, retrying",
			    host, err[0] ? err : curl_easy_strerror(cc));
		} else if (cc == CURLE_OPERATION_TIMEDOUT ||
		    cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
		    cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
		    cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM ||
		    cc == CURLE_SSL_CONNECT_ERROR) {
			log_v(1, "firestore: %s %s: %s, retrying", method,
			    host, err[0] ? err : curl_easy_strerror(cc));
			b->unsure = 1;
		} else {
			log_err("firestore: %s %s: %s", method, host,
			    err[0] ? err : curl_easy_strerror(cc));
			goto out;
		}
		d = delay / 2 + randombytes_uniform((uint32_t)delay + 1);
		if (unix_ms() + d >= deadline) {
			b->lost = 1;
			if (b->http != 0) {
				ret = (int)b->http;
				goto out;
			}
			log_v(b->quiet ? 1 : 0, "firestore: %s %s: %s%s", fs_unreachable(cc) ?
			    "cannot reach" : method, host, err[0] ? err :
			    curl_easy_strerror(cc), fs_unreachable(cc) ? "" :
			    "; gave up at the deadline");
			goto out;
		}
		if ((rc = fs_sleep(b, unix_ms() + d)) != 0) {
			ret = rc;
			goto out;
		}
		delay = delay * 13 / 10;
		if (delay > FS_RETRY_MAX_MS)
			delay = FS_RETRY_MAX_MS;
	}
out:
	sodium_memzero(hdr, sizeof hdr);
	return ret;
}

/* Print why a Firestore answer `code' failed `what' (e.g. "create") on
 * collection `coll'. */
static void
fs_http_err(struct fs *b, int code, const char *what, const char *coll)
{
	if (code == 0)
		log_err("firestore: %s in `%s': unusable answer", what, coll);
	else if (code == 401 || strcmp(b->status, "UNAUTHENTICATED") == 0)
		log_err("firestore: %s in `%s': not authenticated (%s)", what,
		    coll, b->msg);
	else if (code == 403 || strcmp(b->status, "PERMISSION_DENIED") == 0)
		log_err("firestore: the security rules refuse %s in `%s'%s",
		    what, coll, b->auth == FS_AUTH_NONE ?
		    " (no API key given, so no sign-in)" : "");
	else if (code == 404 || strcmp(b->status, "NOT_FOUND") == 0)
		log_err("firestore: project `%s' or its database `%s' does "
		    "not exist (%s)", b->project, b->database, b->msg);
	else
		log_err("firestore: %s in `%s' failed: HTTP %d %s%s%s", what,
		    coll, code, b->status, b->msg[0] ? ": " : "", b->msg);
}

/* A 404 from a get: 1 when it is the document that is missing, not the
 * database ("The database (default) does not exist for project X"). */
static int
fs_doc_missing(struct fs *b)
{
	return strstr(b->msg, "does not exist") == NULL;
}

/*
 * Authentication: anonymous sign-in with a Web API key.
 */

static int
fs_read_key_file(struct fs *b, const char *path)
{
	char buf[FS_MAX_KEY + 2];
	long n;

	n = util_read_private(path, "firestore: api key file", buf, sizeof buf);
	if (n > 0)
		memcpy(b->key, buf, (size_t)n + 1);
	sodium_memzero(buf, sizeof buf);
	return n > 0 ? 0 : -1;
}

/* 1 when s looks like a Web API key: [A-Za-z0-9_-]. */
static int
fs_valid_key(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '-'))
			return 0;
	return i > 0 && i <= FS_MAX_KEY;
}

/*
 * 1 when s is a Bearer token's b64token (RFC 6750 section 2.1):
 * 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".  The ID
 * token goes into an Authorization header as it is, and libcurl sends a
 * header as given: a CR or LF in a token from a hostile answer would add
 * headers of its own.
 */
static int
fs_valid_bearer(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-._~+/");

	return n > 0 && s[n + strspn(s + n, "=")] == '\0';
}

static void
fs_forget_tokens(struct fs *b)
{
	sodium_memzero(b->idtok, sizeof b->idtok);
	sodium_memzero(b->reftok, sizeof b->reftok);
	b->tok_exp = 0;
}

/* Copy a JSON string member to dst (size n); 0, or -1 if missing/too long. */
static int
fs_json_str(const cJSON *o, const char *k, char *dst, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' ||
	    strlen(v->valuestring) >= n)
		return -1;
	memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
	return 0;
}

static void
fs_cache_save(struct fs *b)
{
	cJSON *j = NULL;
	char *s = NULL, *tmp = NULL, *dir, *p, q[80];
	int fd = -1, made = 0, rc;
	ssize_t n;
	size_t len;

	if (b->cache == NULL)
		return;
	/* mkdir -p the cache directory, 0700. */
	if ((dir = strdup(b->cache)) == NULL)
		return;
	for (p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			log_v(1, "firestore: cannot create `%s': %s",
			    fs_q(q, sizeof q, dir), strerror(errno));
			free(dir);
			return;
		}
		*p = '/';
	}
	free(dir);
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "idToken", b->idtok) == NULL ||
	    cJSON_AddStringToObject(j, "refreshToken", b->reftok) == NULL ||
	    cJSON_AddNumberToObject(j, "expiresAt", (double)b->tok_exp) == NULL ||
	    cJSON_AddStringToObject(j, "uid", b->uid) == NULL ||
	    (s = cJSON_PrintUnformatted(j)) == NULL ||
	    (tmp = fs_asprintf("%s.%ld.tmp", b->cache, (long)getpid())) == NULL)
		goto out;
	len = strlen(s);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1)
		goto fail;
	made = 1;
	if ((n = write(fd, s, len)) != (ssize_t)len) {
		if (n >= 0)
			errno = ENOSPC;	/* a short write: out of room */
		goto fail;
	}
	if (fsync(fd) == -1)
		goto fail;
	rc = close(fd);
	fd = -1;
	if (rc == 0 && rename(tmp, b->cache) == 0)
		goto out;
fail:
	log_v(1, "firestore: cannot write the token cache `%s': %s",
	    fs_q(q, sizeof q, b->cache), strerror(errno));
	if (fd != -1)
		close(fd);
	if (made)
		unlink(tmp);
out:
	if (s != NULL) {
		sodium_memzero(s, strlen(s));
		free(s);
	}
	free(tmp);
	if (j != NULL)
		fs_free_json_secret(j);
}

/*
 * Take the token cache's text buf (NUL-terminated): its tokens, uid and
 * expiry when they are all there and fit, the ID token fit for a header,
 * and the expiry believable.  Returns 0 taken, or -1 with the tokens
 * and uid forgotten.  fs_cache_load reads the file; fs_test_cache tests
 * this.
 */
static int
fs_cache_take(struct fs *b, const char *buf)
{
	cJSON *j, *v;
	char q[80];
	double d, lim;
	int ret = -1;

	j = cJSON_Parse(buf);
	v = cJSON_GetObjectItemCaseSensitive(j, "expiresAt");
	if (j == NULL || fs_json_str(j, "idToken", b->idtok, sizeof b->idtok) ||
	    fs_json_str(j, "refreshToken", b->reftok, sizeof b->reftok) ||
	    fs_json_str(j, "uid", b->uid, sizeof b->uid) || !cJSON_IsNumber(v) ||
	    !fs_valid_bearer(b->idtok)) {
		log_v(1, "firestore: ignoring the token cache `%s': "
		    "unreadable", fs_q(q, sizeof q, b->cache));
		/* Its uid too, copied before a later member was found
		 * wanting: the backend held none before. */
		fs_forget_tokens(b);
		sodium_memzero(b->uid, sizeof b->uid);
	} else {
		/* No token we took lives longer than FS_TOKEN_MAX_S.  An
		 * expiry further away (the clock set back since, or a cache
		 * not written by us), or before the epoch, is not believed:
		 * the refresh token renews the ID token, and the uid stays. */
		d = v->valuedouble;
		lim = (double)(unix_ms() + (uint64_t)FS_TOKEN_MAX_S * 1000);
		if (d >= 0 && d <= lim)
			b->tok_exp = (uint64_t)d;
		else {
			b->tok_exp = 0;
			log_v(1, "firestore: the token cache's expiry is not "
			    "believable: renewing the token");
		}
		log_v(1, "firestore: cached sign-in as uid %s",
		    fs_q(q, sizeof q, b->uid));
		ret = 0;
	}
	if (j != NULL)
		fs_free_json_secret(j);
	return ret;
}

/* Read the token cache b->cache, once, when it is a private file of ours,
 * and take what it holds (fs_cache_take). */
static void
fs_cache_load(struct fs *b)
{
	struct stat st;
	char buf[FS_CACHE_MAX + 1], q[80];
	ssize_t n;
	int fd;

	b->cache_loaded = 1;
	if (b->cache == NULL ||
	    (fd = open(b->cache, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077)) {
		log_v(1, "firestore: ignoring the token cache `%s': not a "
		    "private file of ours", fs_q(q, sizeof q, b->cache));
		close(fd);
		return;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	fs_cache_take(b, buf);
	sodium_memzero(buf, sizeof buf);
}

/* Take tokens from a sign-up (camelCase) or refresh (snake_case) answer;
 * 0 or -1. */
static int
fs_take_tokens(struct fs *b, int refresh)
{
	cJSON *j;
	char exp[32];
	long secs;
	int ret = -1;

	if ((j = fs_parse_body(b)) == NULL)
		goto out;
	if (fs_json_str(j, refresh ? "id_token" : "idToken", b->idtok,
	    sizeof b->idtok) || fs_json_str(j, refresh ? "refresh_token" :
	    "refreshToken", b->reftok, sizeof b->reftok) ||
	    fs_json_str(j, refresh ? "expires_in" : "expiresIn", exp,
	    sizeof exp) || !fs_valid_bearer(b->idtok) ||
	    fs_json_str(j, refresh ? "user_id" : "localId", b->uid,
	    sizeof b->uid))
		goto out;
	errno = 0;
	secs = strtol(exp, NULL, 10);
	if (errno || secs < 1 || secs > FS_TOKEN_MAX_S)
		secs = 3600;
	/* Renew it FS_TOKEN_SLACK_MS before it expires, or at 3/4 of a
	 * shorter life. */
	b->tok_exp = unix_ms() + (uint64_t)secs * 1000 -
	    ((uint64_t)secs * 250 < FS_TOKEN_SLACK_MS ? (uint64_t)secs * 250 :
	    FS_TOKEN_SLACK_MS);
	ret = 0;
out:
	if (j != NULL)
		fs_free_json_secret(j);
	fs_buf_clear(&b->resp);
	if (ret == -1)
		fs_forget_tokens(b);
	return ret;
}

/*
 * Make sure b->idtok is a token valid for a while (force: renew it, after a
 * 401).  Returns 0, FS_ERR after printing why, or FS_STOPPED.
 */
static int
fs_token(struct fs *b, int force, uint64_t deadline)
{
	char *url = NULL, *body = NULL, *esc = NULL, q[80];
	int code, ret = FS_ERR;

	if (!b->cache_loaded)
		fs_cache_load(b);
	if (!force && b->idtok[0] != '\0' && unix_ms() < b->tok_exp)
		return 0;
	if (b->reftok[0] != '\0') {
		if ((esc = curl_easy_escape(b->curl, b->reftok, 0)) == NULL ||
		    (url = fs_asprintf("%stoken?key=%s", b->sts, b->key)) ==
		    NULL || (body = fs_asprintf("grant_type=refresh_token&"
		    "refresh_token=%s", esc)) == NULL)
			goto out;
		code = fs_call(b, "POST", url,
		    "application/x-www-form-urlencoded", body, FS_AUTHREQ,
		    deadline);
		if (code < 0) {
			ret = code;
			goto out;
		}
		if (code == 200 && fs_take_tokens(b, 1) == 0) {
			log_v(1, "firestore: token refreshed");
			fs_cache_save(b);
			ret = 0;
			goto out;
		}
		log_v(1, "firestore: token refresh refused (HTTP %d %s), "
		    "signing in anew", code, b->msg);
		fs_forget_tokens(b);
		sodium_memzero(url, strlen(url));
		free(url);
		url = NULL;
	}
	if ((url = fs_asprintf("%saccounts:signUp?key=%s", b->idt, b->key)) ==
	    NULL)
		goto out;
	code = fs_call(b, "POST", url, "application/json",
	    "{\"returnSecureToken\":true}", FS_AUTHREQ, deadline);
	if (code < 0) {
		ret = code;
		goto out;
	}
	if (code != 200) {
		log_err("firestore: anonymous sign-in refused: HTTP %d %s "
		    "(is the API key right and anonymous sign-in enabled?)",
		    code, b->msg);
		goto out;
	}
	if (fs_take_tokens(b, 0) == -1) {
		log_err("firestore: anonymous sign-in: unusable answer");
		goto out;
	}
	log_v(1, "firestore: signed in anonymously as uid %s",
	    fs_q(q, sizeof q, b->uid));
	fs_cache_save(b);
	ret = 0;
out:
	if (url != NULL) {
		sodium_memzero(url, strlen(url));
		free(url);
	}
	if (body != NULL) {
		sodium_memzero(body, strlen(body));
		free(body);
	}
	if (esc != NULL) {
		sodium_memzero(esc, strlen(esc));
		curl_free(esc);
	}
	return ret;
}

/*
 * Documents.
 */

/* The JSON body of a document: {"fields":{field: name, blob, expireAt,
 * uid}}, malloc'd, or NULL. */
static char *
fs_doc_body(struct fs *b, const char *field, const char *name,
    const void *blob, size_t len, uint64_t expire_ms)
{
	cJSON *j, *f, *v;
	char b64[FS_B64_MAX + 1], ts[80], *s = NULL;

	sodium_bin2base64(b64, sizeof b64, blob, len,
	    sodium_base64_VARIANT_ORIGINAL);
	fs_fmt_time(ts, sizeof ts, expire_ms);
	if ((j = cJSON_CreateObject()) == NULL ||
	    (f = cJSON_AddObjectToObject(j, "fields")) == NULL ||
	    (v = cJSON_AddObjectToObject(f, field)) == NULL ||
	    cJSON_AddStringToObject(v, "stringValue", name) == NULL ||
	    (v = cJSON_AddObjectToObject(f, "blob")) == NULL ||
	    cJSON_AddStringToObject(v, "bytesValue", b64) == NULL ||
	    (v = cJSON_AddObjectToObject(f, "expireAt")) == NULL ||
	    cJSON_AddStringToObject(v, "timestampValue", ts) == NULL)
		goto out;
	if (b->uid[0] != '\0' && ((v = cJSON_AddObjectToObject(f, "uid")) ==
	    NULL || cJSON_AddStringToObject(v, "stringValue", b->uid) == NULL))
		goto out;
	s = cJSON_PrintUnformatted(j);
out:
	if (s == NULL)
		log_err("firestore: out of memory");
	cJSON_Delete(j);
	return s;
}

/* The value of field k of type t ("stringValue"...) in fields f, or NULL. */
static const char *
fs_field(const cJSON *f, const char *k, const char *t)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, k);

	if (!cJSON_IsObject(v))
		return NULL;
	v = cJSON_GetObjectItemCaseSensitive(v, t);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/*
 * The checks of a document found under prefix ("D/inbox/NAME/offers/"),
 * from REST or from Listen: its full name docname, its id, field `field'
 * (fval, flen bytes; NULL when missing or not a string) equal to want,
 * expireAt (exp, when has_exp), the blob (already in m, when blob_ok).
 * Fills m and *expout.  Returns 0 valid, 1 expired, -1 bad (deletable:
 * *id set), -2 bad and not ours to delete.  Warnings at -v.
 */
static int
fs_check(const char *docname, const char *prefix, const char *field,
    const char *want, const char *fval, size_t flen, int has_exp,
    uint64_t exp, int blob_ok, struct sig_msg *m, uint64_t *expout,
    char *id, size_t idlen)
{
	const char *rest;
	char q[80];
	size_t plen = strlen(prefix);

	id[0] = '\0';
	if (strncmp(docname, prefix, plen) != 0 ||
	    (rest = docname + plen)[0] == '\0' ||
	    strchr(rest, '/') != NULL || strlen(rest) >= idlen) {
		log_v(1, "firestore: skipping document `%s': not in `%s'",
		    fs_q(q, sizeof q, docname), prefix);
		return -2;
	}
	memcpy(id, rest, strlen(rest) + 1);
	if (!fs_valid_id(rest)) {
		log_v(1, "firestore: skipping document `%s': bad id",
		    fs_q(q, sizeof q, rest));
		return -1;
	}
	if (fval == NULL || flen != strlen(want) || memcmp(fval, want, flen) != 0) {
		log_v(1, "firestore: skipping document %s: field %s is not "
		    "\"%s\"", id, field, want);
		return -1;
	}
	if (!has_exp) {
		log_v(1, "firestore: skipping document %s: no valid expireAt",
		    id);
		return -1;
	}
	if (!blob_ok) {
		log_v(1, "firestore: skipping document %s: no valid blob "
		    "(at most %d bytes)", id, SIG_MAX_BLOB);
		return -1;
	}
	*expout = exp;
	memcpy(m->id, id, SIG_ID_LEN + 1);
	if (exp <= unix_ms()) {
		log_v(1, "firestore: document %s expired, deleting it", id);
		return 1;
	}
	return 0;
}

/* fs_check of a REST document d (JSON). */
static int
fs_doc_check(const cJSON *d, const char *prefix,
    const char *field, const char *name, struct sig_msg *m, uint64_t *exp,
    char *id, size_t idlen)
{
	const cJSON *nm, *f;
	const char *s, *fv;
	size_t b64len, n = 0;
	uint64_t t = 0;
	int has_exp, blob_ok;

	id[0] = '\0';
	nm = cJSON_GetObjectItemCaseSensitive(d, "name");
	if (!cJSON_IsString(nm)) {
		log_v(1, "firestore: skipping a document without a name");
		return -2;
	}
	f = cJSON_GetObjectItemCaseSensitive(d, "fields");
	fv = fs_field(f, field, "stringValue");
	has_exp = (s = fs_field(f, "expireAt", "timestampValue")) != NULL &&
	    fs_parse_time(s, &t) == 0;
	blob_ok = (s = fs_field(f, "blob", "bytesValue")) != NULL &&
	    (b64len = strlen(s)) <= FS_B64_MAX + 8 &&
	    sodium_base642bin(m->blob, sizeof m->blob, s, b64len, "\r\n", &n,
	    NULL, sodium_base64_VARIANT_ORIGINAL) == 0;
	m->len = n;
	return fs_check(nm->valuestring, prefix, field, name, fv,
	    fv != NULL ? strlen(fv) : 0, has_exp, t, blob_ok, m, exp, id,
	    idlen);
}

/* fs_check of a document from Listen, with the fields FS_LISTEN_FIELDS. */
static int
fs_listen_check(const struct fsl_doc *d, const char *prefix,
    const char *field, const char *name, struct sig_msg *m, uint64_t *exp,
    char *id, size_t idlen)
{
	const struct fsl_val *fv = &d->f[0], *blob = &d->f[1], *ts = &d->f[2];
	int str = fv->type == FSL_STRING && !fv->big;
	int blob_ok = blob->type == FSL_BYTES && !blob->big &&
	    blob->len <= sizeof m->blob;

	m->len = blob_ok ? blob->len : 0;
	if (blob_ok && blob->len > 0)
		memcpy(m->blob, blob->p, blob->len);
	return fs_check((const char *)d->name, prefix, field, name,
	    str ? (const char *)fv->p : NULL, str ? fv->len : 0,
	    ts->type == FSL_TIME, ts->ms, blob_ok, m, exp, id, idlen);
}

/* DELETE D/PATH (path already escaped), with a precondition if pre; the
 * HTTP status, FS_ERR or FS_STOPPED. */
static int
fs_delete(struct fs *b, const char *path, int pre, uint64_t deadline)
{
	char *url;
	int code;

	if ((url = fs_asprintf("%s%s/%s%s", b->base, b->docs, path,
	    pre ? "?currentDocument.exists=true" : "")) == NULL)
		return FS_ERR;
	code = fs_call(b, "DELETE", url, NULL, NULL, FS_WRITE, deadline);
	free(url);
	return code;
}

/*
 * Create D/COLL/ID (coll e.g. "inbox/bob/offers") with fields; 0 or -1.
 * A create retried after a lost answer may find its own document: that is
 * success.
 */
static int
fs_create(struct fs *b, const char *coll, const char *id, const char *field,
    const char *name, const void *blob, size_t len, uint64_t expire_ms)
{
	struct sig_msg m;
	cJSON *j = NULL;
	char *url = NULL, *body = NULL, prefix[600], got[SIG_ID_LEN + 2];
	uint64_t deadline = unix_ms() + FS_OP_MS, exp;
	int code, ret = -1;

	/* Sign in first: the document carries our uid. */
	if (b->auth == FS_AUTH_KEY && fs_token(b, 0, deadline) != 0)
		goto out;
	if ((body = fs_doc_body(b, field, name, blob, len, expire_ms)) == NULL ||
	    (url = fs_asprintf("%s%s/%s?documentId=%s", b->base, b->docs,
	    coll, id)) == NULL)
		goto out;
	code = fs_call(b, "POST", url, "application/json", body, FS_WRITE,
	    deadline);
	if (code < 0)
		goto out;
	if (code == 200) {
		ret = 0;
		goto out;
	}
	if (code != 409 || strcmp(b->status, "ALREADY_EXISTS") != 0) {
		fs_http_err(b, code, "create", coll);
		goto out;
	}
	if (b->unsure) {
		/* Is it the document our lost first try made? */
		free(url);
		if ((url = fs_asprintf("%s%s/%s/%s", b->base, b->docs, coll,
		    id)) == NULL)
			goto out;
		code = fs_call(b, "GET", url, NULL, NULL, FS_READ, deadline);
		snprintf(prefix, sizeof prefix, "%s/%s/", b->docs, coll);
		if (code == 200 && (j = fs_parse_body(b)) != NULL &&
		    fs_doc_check(j, prefix, field, name, &m, &exp, got,
		    sizeof got) >= 0 && m.len == len &&
		    (len == 0 || memcmp(m.blob, blob, len) == 0) &&
		    exp == expire_ms) {
			log_v(1, "firestore: %s/%s: our earlier try had "
			    "created it", coll, id);
			ret = 0;
			goto out;
		}
	}
	log_err("firestore: `%s/%s' already exists", coll, id);
out:
	cJSON_Delete(j);
	free(url);
	free(body);
	return ret;
}

static int fs_poll_offers(struct fs *, const char *, const char *,
    const char *, struct sig_msg *, uint64_t);

/*
 * Listen (fslisten.c): the store pushes offers and answers.
 */

/* Every read billed so far: REST calls and Listen streams. */
static unsigned long
fs_total_reads(const struct fs *b)
{
	return b->reads + b->lreads + (b->lo != NULL ? fsl_reads(b->lo) : 0) +
	    (b->la != NULL ? fsl_reads(b->la) : 0);
}

/* Let stream *l go, keeping what it was billed. */
static void
fs_listen_free(struct fs *b, struct fsl **l)
{
	if (*l == NULL)
		return;
	b->lreads += fsl_reads(*l);
	fsl_free(*l);
	*l = NULL;
}

/* Start stream l, with the token it needs; *tok is when that token
 * expires.  0, FS_ERR (said why) or FS_STOPPED. */
static int
fs_listen_start(struct fs *b, struct fsl *l, uint64_t *tok)
{
	char line[FS_MAX_TOKEN + 64];
	const char *md[2] = { line, NULL };
	uint64_t deadline = unix_ms() + FS_OP_MS;
	int rc = 0;

	line[0] = '\0';
	if (b->auth == FS_AUTH_OWNER)
		snprintf(line, sizeof line, "authorization: Bearer owner");
	else if (b->auth == FS_AUTH_KEY) {
		/* The server refused the last one (or may have): a new
		 * token. */
		if ((rc = fs_token(b, fsl_end(l) == FSL_END_UNAUTH ||
		    fsl_end(l) == FSL_END_NOANSWER, deadline)) != 0)
			goto out;
		snprintf(line, sizeof line, "authorization: Bearer %s",
		    b->idtok);
	}
	*tok = b->auth == FS_AUTH_KEY ? b->tok_exp : UINT64_MAX;
	rc = fsl_start(l, b->multi, line[0] != '\0' ? md : NULL) == 0 ? 0 :
	    FS_ERR;
out:
	sodium_memzero(line, sizeof line);
	return rc;
}

/* Listen is unusable here: say so once, and poll from now on. */
static int
fs_listen_fallback(struct fs *b, struct fsl **l)
{
	if (!b->listen_off)
		log_v(1, "firestore: Listen cannot be used (%s); polling "
		    "instead", fsl_why(*l));
	b->listen_off = 1;
	fs_listen_free(b, l);
	return FS_FALLBACK;
}

/* The server refused stream l (what, e.g. "list", in coll): say why. */
static int
fs_listen_denied(struct fs *b, struct fsl *l, const char *what,
    const char *coll)
{
	if (fsl_end(l) == FSL_END_NOTFOUND)
		log_err("firestore: project `%s' or its database `%s' does "
		    "not exist (%s)", b->project, b->database, fsl_why(l));
	else if (fsl_end(l) == FSL_END_UNAUTH)
		log_err("firestore: %s in `%s': not authenticated (%s)", what,
		    coll, fsl_why(l));
	else
		log_err("firestore: the security rules refuse %s in `%s'%s",
		    what, coll, b->auth == FS_AUTH_NONE ?
		    " (no API key given, so no sign-in)" : "");
	return -1;
}

/* Unix ms when stream l next needs attention. */
static uint64_t
fs_listen_due(const struct fsl *l)
{
	uint64_t due = fsl_due(l), now = now_us() / 1000;

	if (due == UINT64_MAX)
		return UINT64_MAX;
	return unix_ms() + (due > now ? due - now : 0);
}

/* Carry the streams until Unix ms until (a second at most): 0, FS_STOPPED
 * or FS_WOKEN. */
static int
fs_listen_drive(struct fs *b, uint64_t until)
{
	struct curl_waitfd w;
	CURLMsg *msg;
	CURLcode cc;
	CURL *e;
	uint64_t now = unix_ms(), t = until > now ? until - now : 0;
	int n;

	memset(&w, 0, sizeof w);
	w.fd = b->wake_fd;
	w.events = CURL_WAIT_POLLIN;
	curl_multi_poll(b->multi, &w, b->wake_fd > 0 ? 1 : 0,
	    (int)(t < 1000 ? t : 1000), NULL);
	if (b->stop != NULL && *b->stop)
		return FS_STOPPED;
	if (b->wake_fd > 0 && ((w.revents & CURL_WAIT_POLLIN) || fs_woken(b)))
		return FS_WOKEN;
	curl_multi_perform(b->multi, &n);
	while ((msg = curl_multi_info_read(b->multi, &n)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		e = msg->easy_handle;
		cc = msg->data.result;
		if (fsl_owns(b->lo, e))
			fsl_done(b->lo, cc);
		else if (fsl_owns(b->la, e))
			fsl_done(b->la, cc);
	}
	if (b->lo != NULL)
		fsl_tick(b->lo);
	if (b->la != NULL)
		fsl_tick(b->la);
	return 0;
}

static uint64_t
fs_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * The listener: offers to name come as the inbox's snapshots change; each
 * is checked and claimed as fs_poll_offers does.  0 took one, 1 timed out,
 * stopped or woken, -1 error, FS_FALLBACK.
 */
static int
fs_listen_offer(struct fs *b, const char *name, struct sig_msg *offer,
    uint64_t deadline)
{
	char coll[SIG_MAX_NAME + 32], prefix[600], parent[600], got[130],
	    path[SIG_MAX_NAME + 200], host[300], *esc;
	const struct fsl_doc *d;
	struct fsl_conf c;
	uint64_t exp, first_fail = 0;
	int r, code;

	snprintf(coll, sizeof coll, "inbox/%s/offers", name);
	snprintf(prefix, sizeof prefix, "%s/%s/", b->docs, coll);
	if (b->lo != NULL && strcmp(b->lo_name, name) != 0)
		fs_listen_free(b, &b->lo);
	if (b->lo == NULL) {
		memset(&c, 0, sizeof c);
		snprintf(parent, sizeof parent, "%s/inbox/%s", b->docs, name);
		c.url = b->listen_url;
		c.h2c = b->h2c;
		c.database = b->db;
		c.parent = parent;
		c.collection = "offers";
		c.limit = FS_PAGE;	/* the sample rules allow no more */
		c.fields[0] = "to";
		c.fields[1] = "blob";
		c.fields[2] = "expireAt";
		c.field_max = SIG_MAX_BLOB;
		c.what = coll;
		if ((b->lo = fsl_new(&c)) == NULL)
			return -1;
		snprintf(b->lo_name, sizeof b->lo_name, "%s", name);
	}
	for (;;) {
		if (b->stop != NULL && *b->stop)
			return 1;
		if (fsl_synced(b->lo)) {
			b->polled = 1;
			if (b->down != 0) {
				log_err("firestore: the store answers again, "
				    "after %llu s", (unsigned long long)
				    ((unix_ms() - b->down + 500) / 1000));
				b->down = 0;
			}
		}
		/* What the last snapshots brought. */
		while ((d = fsl_peek(b->lo)) != NULL) {
			r = fs_listen_check(d, prefix, "to", name, offer, &exp,
			    got, sizeof got);
			fsl_pop(b->lo);
			if (r == -2 ||
			    (esc = curl_easy_escape(b->curl, got, 0)) == NULL)
				continue;
			snprintf(path, sizeof path, "%s/%s", coll, esc);
			curl_free(esc);
			code = fs_delete(b, path, r == 0, unix_ms() + FS_OP_MS);
			if (code == FS_STOPPED)
				return 1;
			if (r != 0)
				continue;
			if (code == 200 || (code == 404 && b->unsure))
				return 0;
			if (code == 404 || code == 400 || code == 409)
				log_v(1, "firestore: offer %s was taken by "
				    "another listener", got);
			else if (code == FS_ERR || code >= 500)
				/* Not claimed, not gone: list the inbox
				 * until it is one or the other. */
				b->repoll = 1;
			else {
				fs_http_err(b, code, "delete", coll);
				return -1;
			}
		}
		if (b->repoll) {
			b->quiet = 1;
			r = fs_poll_offers(b, name, coll, prefix, offer,
			    unix_ms() + FS_OP_MS);
			b->quiet = 0;
			if (r == FS_STOPPED)
				return 1;
			if (r == 0 || r == 1 || r == 2)
				b->repoll = 0;
			if (r == 0)
				return 0;
			if (r == FS_ERR && !b->lost)
				return -1;
		}
		switch (fsl_state(b->lo)) {
		case FSL_FALLBACK:
			return fs_listen_fallback(b, &b->lo);
		case FSL_DENIED:
			return fs_listen_denied(b, b->lo, "list", coll);
		case FSL_IDLE:
			if (fsl_end(b->lo) == FSL_END_UNREACHABLE) {
				if (first_fail == 0)
					first_fail = unix_ms();
				if (!fsl_ever_synced(b->lo) && !b->polled &&
				    unix_ms() - first_fail >= FS_UNREACH_MS) {
					fs_url_host(host, sizeof host,
					    b->listen_url);
					log_err("firestore: cannot reach %s: %s",
					    host, fsl_why(b->lo));
					return -1;
				}
				if ((fsl_ever_synced(b->lo) || b->polled) &&
				    b->down == 0) {
					b->down = unix_ms();
					log_err("firestore: the store does not "
					    "answer; still listening, and "
					    "trying again");
				}
			}
			if (fsl_end(b->lo) == FSL_END_UNAUTH &&
			    b->auth != FS_AUTH_KEY)
				return fs_listen_denied(b, b->lo, "list", coll);
			if (fs_listen_due(b->lo) > unix_ms())
				break;
			if ((r = fs_listen_start(b, b->lo, &b->lo_tok)) ==
			    FS_STOPPED)
				return 1;
			if (r != 0 && !(b->lost && (b->polled || b->down)))
				return -1;
			break;
		case FSL_LIVE:
			/* A stream carries the token it started with. */
			if (unix_ms() >= b->lo_tok)
				fsl_stop(b->lo, "renewing the token");
			fsl_tick(b->lo);
			break;
		}
		/* A store that cannot be reached is given FS_UNREACH_MS,
		 * whatever the deadline, to say so; a stream not in sync
		 * saw nothing: look once by REST. */
		if (unix_ms() >= deadline && (first_fail == 0 || b->polled ||
		    fsl_ever_synced(b->lo)))
			return fsl_synced(b->lo) ? 1 : FS_FALLBACK;
		if ((r = fs_listen_drive(b, fs_min(fs_min(deadline,
		    fs_listen_due(b->lo)), b->lo_tok))) != 0)
			return 1;
	}
}

/* The caller's answer stream, on D/inbox/TO/answers/ID; 0 or -1. */
static int
fs_listen_answer_new(struct fs *b, const char *to, const char *id)
{
	char path[SIG_MAX_NAME + 64], doc[700], what[SIG_MAX_NAME + 64];
	struct fsl_conf c;

	snprintf(path, sizeof path, "inbox/%s/answers/%s", to, id);
	if (b->la != NULL && strcmp(b->la_path, path) == 0)
		return 0;
	fs_listen_free(b, &b->la);
	snprintf(doc, sizeof doc, "%s/%s", b->docs, path);
	snprintf(what, sizeof what, "inbox/%s/answers", to);
	memset(&c, 0, sizeof c);
	c.url = b->listen_url;
	c.h2c = b->h2c;
	c.database = b->db;
	c.document = doc;
	c.fields[0] = "name";
	c.fields[1] = "blob";
	c.fields[2] = "expireAt";
	c.field_max = SIG_MAX_BLOB;
	c.what = what;
	if ((b->la = fsl_new(&c)) == NULL)
		return -1;
	snprintf(b->la_path, sizeof b->la_path, "%s", path);
	return 0;
}

/*
 * The caller: its answer comes on the stream fs_offer opened.  0 got it,
 * 1 timed out, stopped or woken, -1 error, FS_FALLBACK (poll for it).
 */
static int
fs_listen_answer(struct fs *b, const char *to, const char *id,
    struct sig_msg *ans, uint64_t deadline)
{
	char coll[SIG_MAX_NAME + 32], prefix[600], got[130];
	const struct fsl_doc *d;
	uint64_t exp, t0 = unix_ms();
	int r;

	snprintf(coll, sizeof coll, "inbox/%s/answers", to);
	snprintf(prefix, sizeof prefix, "%s/%s/", b->docs, coll);
	if (fs_listen_answer_new(b, to, id) == -1)
		return -1;
	for (;;) {
		if (b->stop != NULL && *b->stop)
			return 1;
		while ((d = fsl_peek(b->la)) != NULL) {
			r = fs_listen_check(d, prefix, "name", to, ans, &exp,
			    got, sizeof got);
			fsl_pop(b->la);
			if (r == -2 || strcmp(got, id) != 0)
				continue;
			fs_delete(b, b->la_path, 0, unix_ms() + FS_CLEAN_MS);
			if (r == 0) {
				fs_listen_free(b, &b->la);
				return 0;
			}
		}
		switch (fsl_state(b->la)) {
		case FSL_FALLBACK:
			return fs_listen_fallback(b, &b->la);
		case FSL_DENIED:
			return fs_listen_denied(b, b->la, "get", coll);
		case FSL_IDLE:
			/* The store took the offer, but no stream: poll. */
			if (fsl_end(b->la) == FSL_END_UNREACHABLE)
				return FS_FALLBACK;
			if (fsl_end(b->la) == FSL_END_UNAUTH &&
			    b->auth != FS_AUTH_KEY)
				return fs_listen_denied(b, b->la, "get", coll);
			if (fs_listen_due(b->la) > unix_ms())
				break;
			if ((r = fs_listen_start(b, b->la, &b->la_tok)) ==
			    FS_STOPPED)
				return 1;
			if (r != 0)
				return FS_FALLBACK;
			break;
		case FSL_LIVE:
			if (!fsl_synced(b->la) &&
			    unix_ms() - t0 >= FS_LISTEN_STALL_MS) {
				log_v(1, "firestore: the answer stream is not "
				    "in sync after %d s; polling for the "
				    "answer", FS_LISTEN_STALL_MS / 1000);
				return FS_FALLBACK;
			}
			if (unix_ms() >= b->la_tok)
				fsl_stop(b->la, "renewing the token");
			fsl_tick(b->la);
			break;
		}
		if (fs_total_reads(b) - b->reads0 + 1 >= FS_LISTEN_READS) {
			log_v(1, "firestore: the answer stream spent %d reads; "
			    "giving up", FS_LISTEN_READS - 1);
			return 1;
		}
		/* A stream never in sync saw nothing: look once by REST. */
		if (unix_ms() >= deadline)
			return fsl_synced(b->la) ? 1 : FS_FALLBACK;
		if (fs_listen_drive(b, fs_min(fs_min(deadline,
		    fs_listen_due(b->la)), b->la_tok)) != 0)
			return 1;
	}
}

/*
 * The backend.
 */

static void fs_close(void *);

static void *
fs_open(const char *rest, const struct sig_opts *o)
{
	struct fs *b;
	const char *slash, *emu, *aemu, *env, *cache_home, *home;
	char q[160], hash[crypto_generichash_BYTES_MIN], hex[2 * sizeof hash + 1];
	crypto_generichash_state st;
	size_t plen, i;

	if ((b = calloc(1, sizeof *b)) == NULL) {
		log_err("firestore: out of memory");
		return NULL;
	}
	b->stop = o->stop;
	b->poll_ms = o->poll_ms ? o->poll_ms : FS_POLL_MS;
	b->force_poll = o->poll_ms != 0;
	b->wake_fd = o->wake_fd;
	b->page = FS_PAGE;
	slash = strchr(rest, '/');
	plen = slash ? (size_t)(slash - rest) : strlen(rest);
	for (i = 0; i < plen; i++)
		if (!((rest[i] >= 'a' && rest[i] <= 'z') ||
		    (rest[i] >= '0' && rest[i] <= '9') || rest[i] == '-' ||
		    rest[i] == '.' || rest[i] == ':'))
			break;
	if (plen == 0 || plen > FS_MAX_ID || i < plen) {
		log_err("firestore: bad project `%s' (want firestore:PROJECT "
		    "or firestore:PROJECT/DATABASE)", fs_q(q, sizeof q, rest));
		goto fail;
	}
	memcpy(b->project, rest, plen);
	if (slash == NULL)
		strcpy(b->database, "(default)");
	else {
		for (i = 1; slash[i] != '\0'; i++)
			if (!((slash[i] >= 'a' && slash[i] <= 'z') ||
			    (slash[i] >= '0' && slash[i] <= '9') ||
			    slash[i] == '-') || i > 63)
				break;
		if (strcmp(slash + 1, "(default)") != 0 &&
		    (slash[i] != '\0' || i == 1 || slash[1] < 'a' ||
		    slash[1] > 'z')) {
			log_err("firestore: bad database `%s' in `%s'",
			    fs_q(q, sizeof q, slash + 1),
			    fs_q(q + 80, sizeof q - 80, rest));
			goto fail;
		}
		strcpy(b->database, slash + 1);
	}

	emu = getenv("FIRESTORE_EMULATOR_HOST");
	aemu = getenv("FIREBASE_AUTH_EMULATOR_HOST");
	if ((emu != NULL && (emu[0] == '\0' || strlen(emu) > 255 ||
	    strpbrk(emu, "/?#@ \t\r\n") != NULL)) ||
	    (aemu != NULL && (aemu[0] == '\0' || strlen(aemu) > 255 ||
	    strpbrk(aemu, "/?#@ \t\r\n") != NULL))) {
		log_err("firestore: bad %s `%s' (want host:port)",
		    emu != NULL && (emu[0] == '\0' || strlen(emu) > 255 ||
		    strpbrk(emu, "/?#@ \t\r\n") != NULL) ?
		    "FIRESTORE_EMULATOR_HOST" : "FIREBASE_AUTH_EMULATOR_HOST",
		    fs_q(q, sizeof q, emu != NULL && (emu[0] == '\0' ||
		    strlen(emu) > 255 || strpbrk(emu, "/?#@ \t\r\n") != NULL) ?
		    emu : aemu));
		goto fail;
	}
	if (emu != NULL) {
		b->base = fs_asprintf("http://%s/v1/", emu);
		b->listen_url = fs_asprintf("http://%s/" FS_LISTEN, emu);
		b->h2c = 1;
	} else {
		b->base = fs_asprintf("%s/v1/", FS_HOST);
		b->listen_url = fs_asprintf("%s/" FS_LISTEN, FS_HOST);
	}
	if (aemu != NULL) {
		b->idt = fs_asprintf("http://%s/identitytoolkit.googleapis.com/v1/",
		    aemu);
		b->sts = fs_asprintf("http://%s/securetoken.googleapis.com/v1/",
		    aemu);
	} else {
		b->idt = fs_asprintf("%s/v1/", FS_IDT_HOST);
		b->sts = fs_asprintf("%s/v1/", FS_STS_HOST);
	}
	b->docs = fs_asprintf("projects/%s/databases/%s/documents", b->project,
	    b->database);
	b->db = fs_asprintf("projects/%s/databases/%s", b->project,
	    b->database);
	if (b->base == NULL || b->idt == NULL || b->sts == NULL ||
	    b->docs == NULL || b->db == NULL || b->listen_url == NULL)
		goto fail;

	if ((env = getenv("P2PCAT_API_KEY")) != NULL && env[0] != '\0') {
		if (strlen(env) > FS_MAX_KEY) {
			log_err("firestore: P2PCAT_API_KEY is not a Web API "
			    "key");
			goto fail;
		}
		memcpy(b->key, env, strlen(env) + 1);
	} else if (o->api_key_file != NULL &&
	    fs_read_key_file(b, o->api_key_file) == -1)
		goto fail;
	if (b->key[0] != '\0' && !fs_valid_key(b->key)) {
		log_err("firestore: the API key is not a Web API key "
		    "(letters, digits, - and _)");
		goto fail;
	}
	if (b->key[0] != '\0')
		b->auth = FS_AUTH_KEY;
	else if (emu != NULL)
		b->auth = FS_AUTH_OWNER;
	else
		b->auth = FS_AUTH_NONE;

	if (b->auth == FS_AUTH_KEY) {
		/* One cache per project, key and auth endpoint; the name
		 * tells nothing about the key. */
		crypto_generichash_init(&st, NULL, 0, sizeof hash);
		crypto_generichash_update(&st, (const unsigned char *)b->project,
		    strlen(b->project) + 1);
		crypto_generichash_update(&st, (const unsigned char *)b->idt,
		    strlen(b->idt) + 1);
		crypto_generichash_update(&st, (const unsigned char *)b->key,
		    strlen(b->key));
		crypto_generichash_final(&st, (unsigned char *)hash, sizeof hash);
		sodium_bin2hex(hex, sizeof hex, (unsigned char *)hash,
		    sizeof hash);
		if ((cache_home = getenv("XDG_CACHE_HOME")) != NULL &&
		    cache_home[0] == '/')
			b->cache = fs_asprintf("%s/p2pcat/firestore-%s.json",
			    cache_home, hex);
		else if ((home = getenv("HOME")) != NULL && home[0] == '/')
			b->cache = fs_asprintf("%s/.cache/p2pcat/"
			    "firestore-%s.json", home, hex);
	}

	if (pthread_once(&fs_once, fs_global) != 0 || fs_global_rc != CURLE_OK ||
	    sodium_init() < 0 || (b->curl = curl_easy_init()) == NULL ||
	    (b->multi = curl_multi_init()) == NULL) {
		log_err("firestore: cannot initialise libcurl");
		goto fail;
	}
	log_v(1, "firestore: project %s, database %s, at %s, %s", b->project,
	    b->database, b->base, b->auth == FS_AUTH_KEY ? "anonymous "
	    "sign-in with an API key" : b->auth == FS_AUTH_OWNER ?
	    "emulator owner" : "no authentication");
	return b;
fail:
	fs_close(b);
	return NULL;
}

static void
fs_close(void *v)
{
	struct fs *b = v;

	if (b == NULL)
		return;
	fsl_free(b->lo);
	fsl_free(b->la);
	if (b->multi != NULL)
		curl_multi_cleanup(b->multi);
	if (b->curl != NULL)
		curl_easy_cleanup(b->curl);
	if (b->resp.p != NULL) {
		sodium_memzero(b->resp.p, b->resp.cap);
		free(b->resp.p);
	}
	free(b->base);
	free(b->listen_url);
	free(b->db);
	free(b->docs);
	free(b->idt);
	free(b->sts);
	free(b->cache);
	sodium_memzero(b, sizeof *b);
	free(b);
}

static int
fs_offer(void *v, const char *to, const char *id, const void *blob,
    size_t len, uint64_t expire_ms)
{
	struct fs *b = v;
	char coll[SIG_MAX_NAME + 32], q[80];
	int running;

	if (!sig_valid_name(to) || !fs_valid_id(id) || len > SIG_MAX_BLOB) {
		log_err("firestore: bad offer to `%s'", fs_q(q, sizeof q, to));
		return -1;
	}
	b->reads0 = fs_total_reads(b);
	snprintf(coll, sizeof coll, "inbox/%s/offers", to);
	if (fs_create(b, coll, id, "to", to, blob, len, expire_ms) == -1)
		return -1;
	/* Listen for the answer now: it is pushed the moment it is
	 * written, and the stream is in sync long before. */
	if (!b->force_poll && !b->listen_off &&
	    fs_listen_answer_new(b, to, id) == 0 &&
	    fs_listen_start(b, b->la, &b->la_tok) == 0)
		curl_multi_perform(b->multi, &running);
	return 0;
}

/*
 * The interval before the caller's next answer poll: FS_ANS_FIRST_MS, x1.5
 * per poll up to FS_ANS_MAX_MS (9 polls in the first 12 s); from then on
 * at least the time left over the reads left, so an attempt never spends
 * more than FS_CONNECT_READS, whatever its deadline.  Two reads are kept
 * for a get after a lost create answer.
 */
static uint64_t
fs_answer_interval(struct fs *b, unsigned k, uint64_t deadline)
{
	uint64_t iv = FS_ANS_FIRST_MS, now = unix_ms(), left, spent, n;
	unsigned i;

	for (i = 0; i < k && iv < FS_ANS_MAX_MS; i++)
		iv = iv * 3 / 2;
	spent = fs_total_reads(b) - b->reads0;
	left = deadline > now ? deadline - now : 0;
	if (spent + 2 >= FS_CONNECT_READS)
		return left + 1;
	if (iv < FS_ANS_MAX_MS)
		return iv;
	n = FS_CONNECT_READS - 2 - spent;
	return left / n > FS_ANS_MAX_MS ? left / n : FS_ANS_MAX_MS;
}

static int
fs_wait_answer(void *v, const char *to, const char *id, struct sig_msg *ans,
    uint64_t deadline_ms)
{
	struct fs *b = v;
	char *url = NULL, coll[SIG_MAX_NAME + 32], prefix[600],
	    got[SIG_ID_LEN + 2], path[SIG_MAX_NAME + 64], q[80];
	cJSON *j = NULL;
	uint64_t exp, iv, rdl;
	unsigned k;
	int code, r, ret = -1;

	if (!sig_valid_name(to) || !fs_valid_id(id)) {
		log_err("firestore: bad answer name `%s'", fs_q(q, sizeof q, to));
		return -1;
	}
	if (!b->force_poll && !b->listen_off &&
	    (r = fs_listen_answer(b, to, id, ans, deadline_ms)) != FS_FALLBACK)
		return r;
	snprintf(coll, sizeof coll, "inbox/%s/answers", to);
	snprintf(path, sizeof path, "%s/%s", coll, id);
	snprintf(prefix, sizeof prefix, "%s/%s/", b->docs, coll);
	if ((url = fs_asprintf("%s%s/%s", b->base, b->docs, path)) == NULL)
		return -1;
	for (k = 0;; k++) {
		rdl = unix_ms() + FS_MIN_REQ_MS;
		b->wake_ok = b->wake_fd > 0;
		code = fs_call(b, "GET", url, NULL, NULL, FS_READ,
		    deadline_ms > rdl ? deadline_ms : rdl);
		b->wake_ok = 0;
		if (code == FS_STOPPED || code == FS_WOKEN) {
			ret = 1;
			goto out;
		}
		if (code < 0)
			goto out;
		if (code == 200) {
			cJSON_Delete(j);
			if ((j = fs_parse_body(b)) == NULL)
				log_v(1, "firestore: answer %s: invalid JSON",
				    id);
			else if ((r = fs_doc_check(j, prefix, "name", to,
			    ans, &exp, got, sizeof got)) == 0 &&
			    strcmp(got, id) == 0) {
				fs_delete(b, path, 0, unix_ms() + FS_CLEAN_MS);
				ret = 0;
				goto out;
			} else if (r == 1 || r == -1)
				fs_delete(b, path, 0, unix_ms() + FS_CLEAN_MS);
		} else if (code == 0)	/* too large to be ours */
			fs_delete(b, path, 0, unix_ms() + FS_CLEAN_MS);
		else if (code != 404 || !fs_doc_missing(b)) {
			fs_http_err(b, code, "get", coll);
			goto out;
		}
		if (unix_ms() >= deadline_ms) {
			ret = 1;
			goto out;
		}
		iv = fs_answer_interval(b, k, deadline_ms);
		if (unix_ms() + iv >= deadline_ms) {
			/* One last look at the deadline, if reads are left. */
			if (fs_pause(b, deadline_ms) != 0 ||
			    fs_total_reads(b) - b->reads0 + 2 >=
			    FS_CONNECT_READS) {
				ret = 1;
				goto out;
			}
		} else if (fs_pause(b, unix_ms() + iv) != 0) {
			ret = 1;
			goto out;
		}
	}
out:
	cJSON_Delete(j);
	free(url);
	return ret;
}

static void
fs_withdraw(void *v, const char *to, const char *id)
{
	struct fs *b = v;
	char path[SIG_MAX_NAME + 64];

	if (!sig_valid_name(to) || !fs_valid_id(id))
		return;
	fs_listen_free(b, &b->la);
	snprintf(path, sizeof path, "inbox/%s/offers/%s", to, id);
	fs_delete(b, path, 0, unix_ms() + FS_CLEAN_MS);
	snprintf(path, sizeof path, "inbox/%s/answers/%s", to, id);
	fs_delete(b, path, 0, unix_ms() + FS_CLEAN_MS);
}

/*
 * One look at the inbox: 0 took an offer, 1 none, 2 none but it deleted
 * junk (look again soon), FS_ERR, FS_STOPPED.
 */
static int
fs_poll_offers(struct fs *b, const char *name, const char *coll,
    const char *prefix, struct sig_msg *offer, uint64_t deadline)
{
	cJSON *j = NULL, *docs, *d;
	char *url = NULL, *esc, path[SIG_MAX_NAME + 200], got[130];
	uint64_t exp;
	int code, r, ret = FS_ERR, n, junk = 0;

	/* Only our fields: junk in others is not even downloaded. */
	if ((url = fs_asprintf("%s%s/%s?pageSize=%d&mask.fieldPaths=to&"
	    "mask.fieldPaths=blob&mask.fieldPaths=expireAt", b->base, b->docs,
	    coll, b->page)) == NULL)
		goto out;
	b->wake_ok = b->wake_fd > 0;
	code = fs_call(b, "GET", url, NULL, NULL, FS_READ, deadline);
	b->wake_ok = 0;
	if (code < 0) {
		ret = code;
		goto out;
	}
	if (code == 0) {
		/* Too large: look at one document at a time, to delete the
		 * big ones (a document is at most 1 MiB). */
		ret = b->page > 1 ? 2 : 1;
		b->page = 1;
		goto out;
	}
	if (code != 200) {
		if (b->lost && b->quiet)
			log_v(1, "firestore: list of `%s': HTTP %d", coll, code);
		else
			fs_http_err(b, code, "list", coll);
		goto out;
	}
	if ((j = fs_parse_body(b)) == NULL || !cJSON_IsObject(j)) {
		log_v(1, "firestore: list of `%s': not a JSON object, ignored",
		    coll);
		ret = 1;
		goto out;
	}
	docs = cJSON_GetObjectItemCaseSensitive(j, "documents");
	if (docs != NULL && !cJSON_IsArray(docs)) {
		log_v(1, "firestore: list of `%s': documents is not an array, "
		    "ignored", coll);
		ret = 1;
		goto out;
	}
	/* A list returning N documents costs N reads. */
	if ((n = cJSON_GetArraySize(docs)) > 1)
		b->reads += (unsigned long)n - 1;
	ret = 1;
	cJSON_ArrayForEach(d, docs) {
		r = fs_doc_check(d, prefix, "to", name, offer, &exp, got,
		    sizeof got);
		if (r == -2)
			continue;
		if ((esc = curl_easy_escape(b->curl, got, 0)) == NULL)
			continue;
		snprintf(path, sizeof path, "%s/%s", coll, esc);
		curl_free(esc);
		code = fs_delete(b, path, r == 0, deadline);
		if (code == FS_STOPPED) {
			ret = code;
			goto out;
		}
		if (r != 0) {
			/* Look again at once only if it went: junk we may
			 * not delete must not multiply the polls. */
			junk |= code == 200;
			continue;
		}
		if (code == 200 || (code == 404 && b->unsure)) {
			ret = 0;
			goto out;
		}
		if (code == 404 || code == 400 || code == 409)
			log_v(1, "firestore: offer %s was taken by another "
			    "listener", got);
		else if (code >= 0) {
			fs_http_err(b, code, "delete", coll);
			ret = FS_ERR;
			goto out;
		}
	}
	if (junk)
		ret = 2;
	else
		b->page = FS_PAGE;
out:
	cJSON_Delete(j);
	free(url);
	return ret;
}

static int
fs_wait_offer(void *v, const char *name, struct sig_msg *offer,
    uint64_t deadline_ms)
{
	struct fs *b = v;
	char coll[SIG_MAX_NAME + 32], prefix[600], q[80];
	uint64_t rdl, next, t0, wait = 0;
	int r, again = 0;

	if (!sig_valid_name(name)) {
		log_err("firestore: bad name `%s'", fs_q(q, sizeof q, name));
		return -1;
	}
	if (!b->force_poll && !b->listen_off &&
	    (r = fs_listen_offer(b, name, offer, deadline_ms)) != FS_FALLBACK)
		return r;
	snprintf(coll, sizeof coll, "inbox/%s/offers", name);
	snprintf(prefix, sizeof prefix, "%s/%s/", b->docs, coll);
	for (;;) {
		t0 = unix_ms();
		rdl = t0 + FS_MIN_REQ_MS;
		/* Once the store has answered, a failure on the way is the
		 * network's, not our setup's: a listener rides it out. */
		b->quiet = b->polled;
		r = fs_poll_offers(b, name, coll, prefix, offer,
		    deadline_ms > rdl ? deadline_ms : rdl);
		b->quiet = 0;
		if (r == FS_ERR && b->polled && b->lost) {
			if (b->down == 0) {
				b->down = t0;
				wait = b->poll_ms;
				log_err("firestore: the store does not answer; "
				    "still listening, and trying again");
			} else if ((wait = wait ? wait * 2 : b->poll_ms) >
			    FS_OUTAGE_MAX_MS) {
				wait = FS_OUTAGE_MAX_MS;
			}
			next = unix_ms() + wait;
			if (fs_pause(b, next < deadline_ms ? next : deadline_ms) != 0 ||
			    next > deadline_ms)
				return 1;
			continue;
		}
		if (r == FS_STOPPED || r == FS_WOKEN)
			return 1;
		if (r == FS_ERR)
			return -1;
		b->polled = 1;
		if (b->down) {
			log_err("firestore: the store answers again, after %llu s",
			    (unsigned long long)((unix_ms() - b->down + 500) / 1000));
			b->down = 0;
		}
		if (r == 0)
			return 0;
		if (r == 2 && again++ < 4)
			continue;
		again = 0;
		if (unix_ms() >= deadline_ms)
			return 1;
		next = unix_ms() + b->poll_ms;
		if (fs_pause(b, next < deadline_ms ? next : deadline_ms) != 0)
			return 1;
		if (next > deadline_ms)
			return 1;
	}
}

static int
fs_answer(void *v, const char *name, const char *id, const void *blob,
    size_t len, uint64_t expire_ms)
{
	struct fs *b = v;
	char coll[SIG_MAX_NAME + 32], q[80];

	if (!sig_valid_name(name) || !fs_valid_id(id) || len > SIG_MAX_BLOB) {
		log_err("firestore: bad answer from `%s'",
		    fs_q(q, sizeof q, name));
		return -1;
	}
	snprintf(coll, sizeof coll, "inbox/%s/answers", name);
	return fs_create(b, coll, id, "name", name, blob, len, expire_ms);
}

static void
fs_unanswer(void *v, const char *name, const char *id)
{
	struct fs *b = v;
	char path[SIG_MAX_NAME + 64];

	if (!sig_valid_name(name) || !fs_valid_id(id))
		return;
	snprintf(path, sizeof path, "inbox/%s/answers/%s", name, id);
	fs_delete(b, path, 0, unix_ms() + FS_CLEAN_MS);
}

static void
fs_counts(const void *v, unsigned long *reads, unsigned long *writes)
{
	const struct fs *b = v;

	*reads = fs_total_reads(b);
	*writes = b->writes;
}

const struct sig_backend sig_firestore_backend = {
	.scheme = "firestore",
	.open = fs_open,
	.close = fs_close,
	.offer = fs_offer,
	.wait_answer = fs_wait_answer,
	.withdraw = fs_withdraw,
	.wait_offer = fs_wait_offer,
	.answer = fs_answer,
	.unanswer = fs_unanswer,
	.counts = fs_counts,
};

/* For the test hooks: what backend b kept of its tokens. */
static void
fs_test_kept(const struct fs *b, char *idtok, char *reftok, char *uid,
    uint64_t *exp)
{
	memcpy(idtok, b->idtok, sizeof b->idtok);
	memcpy(reftok, b->reftok, sizeof b->reftok);
	memcpy(uid, b->uid, sizeof b->uid);
	*exp = b->tok_exp;
}

/*
 * Test hook (tests/fuzz_firestore, tests/unit_firestore): a body of len
 * bytes, taken by fs_take_tokens as a sign-in answer (refresh 0) or a
 * token refresh answer (1), by a backend that holds earlier tokens and
 * uid.  The backend's ID and refresh tokens and uid after it go to idtok,
 * reftok (FS_TEST_TOKEN bytes each) and uid (FS_TEST_UID), when they are
 * to be renewed (Unix ms, 0 none) to *exp.  Returns 0 taken, 1 refused,
 * -1 a body larger than the backend takes, or out of memory.
 */
_Static_assert(FS_TEST_TOKEN == FS_MAX_TOKEN + 1 &&
    FS_TEST_UID == FS_MAX_UID + 1, "fs_test_tokens' sizes");
int
fs_test_tokens(const char *body, size_t len, int refresh, char *idtok,
    char *reftok, char *uid, uint64_t *exp)
{
	struct fs *b;
	int ret;

	if ((b = calloc(1, sizeof *b)) == NULL)
		return -1;
	snprintf(b->idtok, sizeof b->idtok, "fuzz-id-token");
	snprintf(b->reftok, sizeof b->reftok, "fuzz-refresh-token");
	snprintf(b->uid, sizeof b->uid, "fuzz-uid");
	b->tok_exp = 1;
	if (fs_write_cb((char *)body, 1, len, &b->resp) != len) {
		ret = -1;
		goto out;
	}
	ret = fs_take_tokens(b, refresh) == 0 ? 0 : 1;
	fs_test_kept(b, idtok, reftok, uid, exp);
out:
	fs_buf_clear(&b->resp);
	free(b->resp.p);
	sodium_memzero(b, sizeof *b);
	free(b);
	return ret;
}

/*
 * Test hook (tests/fuzz_firestore, tests/unit_firestore): a token cache
 * file of len bytes, taken by fs_cache_take as fs_cache_load takes what
 * it reads, by a backend that holds no tokens yet, as fs_cache_load's
 * does.  The ID and refresh tokens and uid kept go to idtok, reftok
 * (FS_TEST_TOKEN bytes each) and uid (FS_TEST_UID), when the ID token is
 * to be renewed (Unix ms, 0 now) to *exp.  Returns 0 taken, 1 refused,
 * -1 a file larger than fs_cache_load reads, or out of memory.
 */
_Static_assert(FS_TEST_CACHE == FS_CACHE_MAX, "fs_test_cache's size");
int
fs_test_cache(const char *body, size_t len, char *idtok, char *reftok,
    char *uid, uint64_t *exp)
{
	char path[] = "fuzz/firestore-cache.json";
	struct fs *b;
	char *buf;
	int ret;

	if (len > FS_CACHE_MAX || (buf = malloc(len + 1)) == NULL)
		return -1;
	if ((b = calloc(1, sizeof *b)) == NULL) {
		free(buf);
		return -1;
	}
	memcpy(buf, body, len);
	buf[len] = '\0';
	b->cache = path;
	ret = fs_cache_take(b, buf) == 0 ? 0 : 1;
	fs_test_kept(b, idtok, reftok, uid, exp);
	sodium_memzero(buf, len + 1);
	free(buf);
	sodium_memzero(b, sizeof *b);
	free(b);
	return ret;
}

/*
 * Test hook (tests/fuzz_firestore): a response body of len bytes, read as
 * the backend reads one.  As an error (fs_parse_error): its status and
 * message, quoted and with our secrets redacted, into status (40 bytes)
 * and msg (256).  As a list of offers to "bob" (fs_poll_offers) and as
 * bob's answer fetched by id (fs_wait_answer): each document fs_doc_check
 * finds valid goes to *m.  Returns how many did, or -1 (a body larger
 * than the backend takes, or out of memory).
 */
int
fs_test_body(const char *body, size_t len, char *status, char *msg,
    struct sig_msg *m)
{
	static const char docs[] = "projects/p/databases/(default)/documents";
	char prefix[sizeof docs + 40], got[130];
	cJSON *j, *d, *list;
	struct fs *b;
	uint64_t exp;
	int n = 0;

	if ((b = calloc(1, sizeof *b)) == NULL)
		return -1;
	snprintf(b->key, sizeof b->key, "AIzaFuzzKey");
	snprintf(b->idtok, sizeof b->idtok, "fuzz-id-token");
	snprintf(b->reftok, sizeof b->reftok, "fuzz-refresh-token");
	if (fs_write_cb((char *)body, 1, len, &b->resp) != len) {
		n = -1;
		goto out;
	}
	fs_parse_error(b);
	memcpy(status, b->status, sizeof b->status);
	memcpy(msg, b->msg, sizeof b->msg);
	if ((j = fs_parse_body(b)) == NULL)
		goto out;
	list = cJSON_GetObjectItemCaseSensitive(j, "documents");
	snprintf(prefix, sizeof prefix, "%s/inbox/bob/offers/", docs);
	if (cJSON_IsObject(j) && cJSON_IsArray(list))
		cJSON_ArrayForEach(d, list)
			n += fs_doc_check(d, prefix, "to", "bob", m, &exp, got,
			    sizeof got) == 0;
	snprintf(prefix, sizeof prefix, "%s/inbox/bob/answers/", docs);
	n += fs_doc_check(j, prefix, "name", "bob", m, &exp, got,
	    sizeof got) == 0;
	cJSON_Delete(j);
out:
	fs_buf_clear(&b->resp);
	free(b->resp.p);
	sodium_memzero(b, sizeof *b);
	free(b);
	return n;
}
