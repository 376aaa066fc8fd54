/*
 * fslisten.c: a Firestore Listen stream on one target.
 *
 * The protocol (google/firestore/v1/firestore.proto, and how Google's SDKs
 * read it, e.g. nodejs-firestore's watch.ts): the client sends one
 * ListenRequest adding the target; the server answers with TargetChange ADD,
 * the documents of the target as DocumentChange messages, CURRENT once they
 * are all sent, and then a NO_CHANGE with no target ids and a read_time:
 * only then is the snapshot consistent.  Later changes come the same way
 * (DocumentChange, DocumentDelete, DocumentRemove, each followed by a
 * consistent NO_CHANGE); RESET means "forget the target's documents, here
 * they all come again" (Google's emulator sends one on every change);
 * an ExistenceFilter whose count differs from ours means we missed a
 * removal: we listen anew without the resume token.  Resume tokens come in
 * TargetChanges (ours, or all targets' with no ids: the server's periodic
 * heartbeat) and are kept from the consistent snapshots.
 *
 * Documents are handed out at consistent snapshots, each version once: one
 * that comes again unchanged (after a RESET, or from a fresh query after a
 * reconnect) is not handed out again.
 *
 * Billing, by the Firestore pricing page ("Listening to query results",
 * "Minimum charge for queries"): a read for each document added to or
 * changed in the result set, and for one removed from it because it
 * changed (DocumentRemove); none for a deleted document; at least one read
 * per query even when nothing matches, which we count for every stream's
 * target, a resumed one too (Google may bill that one less).  A listener
 * disconnected more than 30 minutes is billed as a brand-new query, every
 * document again: after 30 minutes without a word from the server we
 * listen without the resume token, and count exactly that.  Documents that
 * a RESET sends again unchanged are not counted: they neither enter nor
 * change the result set.
 *
 * What the timers cost an idle listener, a stream's one read each: Google
 * ends streams about hourly and tokens live an hour (firestore.c starts a
 * stream anew before its token expires): about 25 streams a day.  Google's
 * server heartbeats about once a minute (firebase-js-sdk #1052), so a
 * stream silent for FSL_SILENT_MS (the idle timeout of Google's Node SDK)
 * is dead: it is ended and started again; when the new one is silent too,
 * the server does not heartbeat (the emulator) and the limit doubles, to
 * an hour: at most 29 more streams a day.  Streams that break sooner than
 * FSL_LONG_MS start again after a backoff doubling to FSL_RETRY_MAX_MS;
 * connections that fail cost nothing (no query runs).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "google/firestore/v1/listen.pb-c.h"
#include "fslisten.h"
#include "grpc.h"
#include "util.h"

#define FSL_TARGET_ID	0x7032	/* "p2": any positive id (firestore.proto) */
#define FSL_MAX_MSG	(1536 * 1024)	/* a document is at most 1 MiB */
#define FSL_ARENA	(16 << 20)	/* bytes one message may decode into */
#define FSL_MAX_DOCS	32	/* documents tracked (offers are listed 8 at most) */
#define FSL_MAX_NAME	6144	/* a document name is at most 6 KiB */
#define FSL_MAX_TOKEN	4096	/* resume token bytes kept */
#define FSL_MAX_CHANGES	1024	/* changes between two consistent snapshots */
#define FSL_CONNECT_MS	10000
#define FSL_SYNC_MS	20000	/* a stream's first snapshot comes within this */
#define FSL_HEADERS_MS	10000	/* its answer's headers within this */
/* Silence that ends a stream: Google's Node SDK's WATCH_IDLE_TIMEOUT_MS
 * (watch.ts); doubling, for a server that never heartbeats, to the max. */
#define FSL_SILENT_MS	120000
#define FSL_SILENT_MAX_MS 3600000
#define FSL_LONG_MS	600000	/* a stream that lived this long ended normally */
#define FSL_RETRY_MS	1000	/* backoff after a short stream, x2 ... */
#define FSL_RETRY_MAX_MS 300000	/* ... to this */
#define FSL_CONN_MS	500	/* backoff after a failed connection, x1.5 ... */
#define FSL_CONN_MAX_MS	15000	/* ... to this */
#define FSL_RESUME_MS	1800000	/* resume tokens are billed as such for 30 min */
#define FSL_PROTO_FAILS	2	/* HTTP/2 failures in a row that mean "no HTTP/2" */

struct fsl_ent {
	unsigned char *name;
	size_t namelen;
	int64_t ver;		/* update_time (µs) in the result set, -1 none */
	int pending;		/* changed since the last consistent snapshot */
	int64_t pver;		/* ... to this version, -1 removed */
	int pbilled;		/* ... a removal that is billed */
	int seen;		/* sent since the last RESET */
	struct fsl_doc pdoc;	/* the pending version's fields */
	struct fsl_doc doc;	/* the version handed out */
	int ready;
	uint64_t seq;
};

struct fsl {
	struct fsl_conf c;	/* strings owned */
	int state, end;
	char why[160];
	struct grpc_call *call;
	/* The stream. */
	uint64_t started, rx, synced_at;	/* monotonic ms */
	int acked;		/* the server answered about the target */
	int current;		/* CURRENT since the start or RESET */
	int synced;		/* a consistent snapshot on this stream */
	int fresh;		/* listened without a resume token */
	int resetting;		/* everything comes again (RESET, fresh) */
	int min_done;		/* the query's minimum read is counted */
	unsigned long qdocs;	/* documents billed for the query */
	unsigned changes;	/* since the last snapshot */
	unsigned char *ptoken;	/* resume token of the next snapshot */
	size_t ptokenlen;
	/* Across streams. */
	int ever;
	unsigned char *token;
	size_t tokenlen;
	uint64_t token_rx;	/* the server's last word, for the 30 minutes */
	uint64_t due;
	unsigned short_streams, conn_fails, proto_fails, unauth;
	uint64_t silent_ms;
	int watchdog;		/* the last stream was ended for silence */
	struct fsl_ent ents[FSL_MAX_DOCS];
	int nents;
	uint64_t seq;
	unsigned long reads, queries, docs;
	int warned;
};

/* protobuf-c allocations of one message, bounded. */
struct fsl_arena {
	size_t used;
};

union fsl_hdr {
	size_t n;
	max_align_t align;
};

static void *
fsl_alloc(void *arg, size_t n)
{
	struct fsl_arena *a = arg;
	union fsl_hdr *h;

	if (n > FSL_ARENA - a->used ||
	    (h = malloc(sizeof *h + n)) == NULL)
		return NULL;
	h->n = n;
	a->used += n;
	return h + 1;
}

static void
fsl_free_mem(void *arg, void *p)
{
	struct fsl_arena *a = arg;
	union fsl_hdr *h;

	if (p == NULL)
		return;
	h = (union fsl_hdr *)p - 1;
	a->used -= h->n;
	free(h);
}

static uint64_t
fsl_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t
fsl_now(void)
{
	return now_us() / 1000;
}

/* d scaled by a random factor in [0.5, 1.5). */
static uint64_t
fsl_jitter(uint64_t d)
{
	return d / 2 + randombytes_uniform((uint32_t)(d < UINT32_MAX ? d :
	    UINT32_MAX));
}

/* Free d's values (its name is its entry's). */
static void
fsl_doc_clear(struct fsl_doc *d)
{
	int i;

	for (i = 0; i < FSL_MAX_FIELDS; i++)
		free(d->f[i].p);
	memset(d, 0, sizeof *d);
}

static void
fsl_ent_clear(struct fsl_ent *e)
{
	free(e->name);
	fsl_doc_clear(&e->pdoc);
	fsl_doc_clear(&e->doc);
	memset(e, 0, sizeof *e);
}

static void fsl_compact(struct fsl *);

static char *
fsl_strdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

struct fsl *
fsl_new(const struct fsl_conf *c)
{
	struct fsl *l;
	int i, bad = 0;

	if ((l = calloc(1, sizeof *l)) == NULL) {
		log_err("firestore: out of memory");
		return NULL;
	}
	l->c = *c;
	l->c.url = fsl_strdup(c->url);
	l->c.database = fsl_strdup(c->database);
	l->c.parent = fsl_strdup(c->parent);
	l->c.collection = fsl_strdup(c->collection);
	l->c.document = fsl_strdup(c->document);
	l->c.what = fsl_strdup(c->what);
	bad = l->c.url == NULL || l->c.database == NULL || l->c.what == NULL ||
	    (c->parent != NULL && l->c.parent == NULL) ||
	    (c->collection != NULL && l->c.collection == NULL) ||
	    (c->document != NULL && l->c.document == NULL);
	for (i = 0; i < FSL_MAX_FIELDS; i++) {
		l->c.fields[i] = fsl_strdup(c->fields[i]);
		bad |= c->fields[i] != NULL && l->c.fields[i] == NULL;
	}
	if (bad) {
		log_err("firestore: out of memory");
		fsl_free(l);
		return NULL;
	}
	l->silent_ms = FSL_SILENT_MS;
	l->due = fsl_now();
	return l;
}

/* The query's minimum read, when it has not been billed for documents. */
static void
fsl_bill_query(struct fsl *l)
{
	if (l->min_done || !l->acked)
		return;
	l->min_done = 1;
	l->queries++;
	if (l->qdocs == 0)
		l->reads++;
}

static void
fsl_close_call(struct fsl *l)
{
	fsl_bill_query(l);
	grpc_call_free(l->call);
	l->call = NULL;
	free(l->ptoken);
	l->ptoken = NULL;
	l->ptokenlen = 0;
}

void
fsl_free(struct fsl *l)
{
	int i;

	if (l == NULL)
		return;
	fsl_close_call(l);
	if (l->queries > 0)
		log_v(1, "firestore: Listen on %s was billed %lu reads "
		    "(%lu queries, %lu documents)", l->c.what, l->reads,
		    l->queries, l->docs);
	for (i = 0; i < l->nents; i++)
		fsl_ent_clear(&l->ents[i]);
	free(l->token);
	free((char *)l->c.url);
	free((char *)l->c.database);
	free((char *)l->c.parent);
	free((char *)l->c.collection);
	free((char *)l->c.document);
	free((char *)l->c.what);
	for (i = 0; i < FSL_MAX_FIELDS; i++)
		free((char *)l->c.fields[i]);
	free(l);
}

/* The ListenRequest adding our target, packed into a malloc'd buffer. */
static unsigned char *
fsl_request(struct fsl *l, size_t *len)
{
	Google__Firestore__V1__ListenRequest req;
	Google__Firestore__V1__Target t;
	Google__Firestore__V1__Target__QueryTarget qt;
	Google__Firestore__V1__Target__DocumentsTarget dt;
	Google__Firestore__V1__StructuredQuery sq;
	Google__Firestore__V1__StructuredQuery__CollectionSelector cs, *csp = &cs;
	Google__Protobuf__Int32Value lim;
	char *doc = (char *)l->c.document;
	unsigned char *p;

	google__firestore__v1__listen_request__init(&req);
	google__firestore__v1__target__init(&t);
	req.database = (char *)l->c.database;
	req.target_change_case =
	    GOOGLE__FIRESTORE__V1__LISTEN_REQUEST__TARGET_CHANGE_ADD_TARGET;
	req.add_target = &t;
	t.target_id = FSL_TARGET_ID;
	if (l->c.document != NULL) {
		google__firestore__v1__target__documents_target__init(&dt);
		dt.n_documents = 1;
		dt.documents = &doc;
		t.target_type_case =
		    GOOGLE__FIRESTORE__V1__TARGET__TARGET_TYPE_DOCUMENTS;
		t.documents = &dt;
	} else {
		google__firestore__v1__target__query_target__init(&qt);
		google__firestore__v1__structured_query__init(&sq);
		google__firestore__v1__structured_query__collection_selector__init(&cs);
		google__protobuf__int32_value__init(&lim);
		cs.collection_id = (char *)l->c.collection;
		sq.n_from = 1;
		sq.from = &csp;
		lim.value = l->c.limit;
		if (l->c.limit > 0)
			sq.limit = &lim;
		qt.parent = (char *)l->c.parent;
		qt.query_type_case =
		    GOOGLE__FIRESTORE__V1__TARGET__QUERY_TARGET__QUERY_TYPE_STRUCTURED_QUERY;
		qt.structured_query = &sq;
		t.target_type_case = GOOGLE__FIRESTORE__V1__TARGET__TARGET_TYPE_QUERY;
		t.query = &qt;
	}
	if (!l->fresh) {
		t.resume_type_case =
		    GOOGLE__FIRESTORE__V1__TARGET__RESUME_TYPE_RESUME_TOKEN;
		t.resume_token.data = l->token;
		t.resume_token.len = l->tokenlen;
	}
	*len = google__firestore__v1__listen_request__get_packed_size(&req);
	if ((p = malloc(*len ? *len : 1)) != NULL)
		google__firestore__v1__listen_request__pack(&req, p);
	return p;
}

/* grpc.c's message callback: FSL_ABORT when fsl_feed ends the stream. */
#define FSL_ABORT	1

static int
fsl_cb(void *arg, const unsigned char *msg, size_t len)
{
	return fsl_feed(arg, msg, len) == -1 ? FSL_ABORT : 0;
}

int
fsl_start(struct fsl *l, CURLM *m, const char *const *md)
{
	const char *lines[8];
	char prefix[512], params[1024], *esc = NULL;
	struct grpc_req q;
	unsigned char *req;
	size_t len, n = 0;
	int i;

	fsl_close_call(l);
	if (l->state == FSL_FALLBACK || l->state == FSL_DENIED)
		return -1;
	/* After 30 minutes a resumed query costs a new one: listen anew,
	 * so that what we count is what is billed. */
	l->fresh = l->token == NULL || fsl_now() - l->token_rx > FSL_RESUME_MS;
	if ((req = fsl_request(l, &len)) == NULL) {
		log_err("firestore: out of memory");
		return -1;
	}
	/* Routing metadata, as Google's SDKs send it. */
	snprintf(prefix, sizeof prefix, "google-cloud-resource-prefix: %s",
	    l->c.database);
	if ((esc = curl_easy_escape(NULL, l->c.database, 0)) != NULL)
		snprintf(params, sizeof params,
		    "x-goog-request-params: database=%s", esc);
	curl_free(esc);
	lines[n++] = prefix;
	if (esc != NULL)
		lines[n++] = params;
	for (i = 0; md != NULL && md[i] != NULL && n + 1 < sizeof lines /
	    sizeof lines[0]; i++)
		lines[n++] = md[i];
	lines[n] = NULL;
	memset(&q, 0, sizeof q);
	q.url = l->c.url;
	q.h2c = l->c.h2c;
	q.md = lines;
	q.msg = req;
	q.len = len;
	q.max = FSL_MAX_MSG;
	q.cb = fsl_cb;
	q.arg = l;
	q.connect_ms = FSL_CONNECT_MS;
	l->call = grpc_call_new(m, &q);
	free(req);
	if (l->call == NULL)
		return -1;
	l->state = FSL_LIVE;
	l->end = FSL_END_NONE;
	l->started = l->rx = fsl_now();
	l->acked = l->current = l->synced = l->min_done = 0;
	l->qdocs = 0;
	l->changes = 0;
	/* Changes no snapshot confirmed are gone with their stream; a fresh
	 * query sends every document again. */
	l->resetting = l->fresh;
	for (i = 0; i < l->nents; i++) {
		l->ents[i].seen = 0;
		l->ents[i].pending = 0;
		fsl_doc_clear(&l->ents[i].pdoc);
	}
	fsl_compact(l);
	log_v(2, "firestore: listening to %s%s", l->c.what, l->fresh ? "" :
	    " (resumed)");
	return 0;
}

void
fsl_stop(struct fsl *l, const char *why)
{
	if (l->state != FSL_LIVE)
		return;
	log_v(2, "firestore: Listen on %s: %s", l->c.what, why);
	fsl_close_call(l);
	l->state = FSL_IDLE;
	l->end = FSL_END_STOPPED;
	snprintf(l->why, sizeof l->why, "%s", why);
	l->due = fsl_now();
}

int
fsl_owns(const struct fsl *l, const CURL *e)
{
	return l != NULL && l->call != NULL && grpc_call_easy(l->call) == e;
}

int
fsl_state(const struct fsl *l)
{
	return l->state;
}

int
fsl_end(const struct fsl *l)
{
	return l->end;
}

const char *
fsl_why(const struct fsl *l)
{
	return l->why;
}

int
fsl_synced(const struct fsl *l)
{
	return l->state == FSL_LIVE && l->synced;
}

int
fsl_ever_synced(const struct fsl *l)
{
	return l->ever;
}

unsigned long
fsl_reads(const struct fsl *l)
{
	return l->reads + (!l->min_done && l->acked && l->qdocs == 0);
}

unsigned long
fsl_queries(const struct fsl *l)
{
	return l->queries + (!l->min_done && l->acked);
}

/* How long the live stream may stay silent. */
static uint64_t
fsl_silence(const struct fsl *l)
{
	return l->synced ? l->silent_ms : FSL_SYNC_MS;
}

uint64_t
fsl_due(const struct fsl *l)
{
	uint64_t t;

	if (l->state == FSL_LIVE) {
		t = l->rx + fsl_silence(l);
		if (grpc_call_resp(l->call)->status >= 0 ||
		    grpc_call_resp(l->call)->h1)
			return 0;
		if (grpc_call_resp(l->call)->http == 0)
			t = fsl_min(t, l->started + FSL_HEADERS_MS);
		return t;
	}
	if (l->state == FSL_IDLE)
		return l->due;
	return UINT64_MAX;
}

void
fsl_tick(struct fsl *l)
{
	uint64_t now = fsl_now();
	char why[80];
	int conn;

	if (l->state != FSL_LIVE)
		return;
	/* The status has come: the call is over (libcurl would wait for
	 * the paused upload). */
	if (grpc_call_resp(l->call)->status >= 0) {
		fsl_done(l, CURLE_OK);
		return;
	}
	if (grpc_call_resp(l->call)->h1 && grpc_call_resp(l->call)->http == 0) {
		fsl_close_call(l);
		l->state = FSL_FALLBACK;
		l->end = FSL_END_FALLBACK;
		snprintf(l->why, sizeof l->why, "the request went as HTTP/1: "
		    "a proxy in the way, or no HTTP/2");
		return;
	}
	if (grpc_call_resp(l->call)->http == 0 &&
	    now - l->started >= FSL_HEADERS_MS) {
		/* Connected, and no HTTP/2 answer: a server without HTTP/2
		 * may just wait for more of a request it cannot parse. */
		conn = grpc_call_connected(l->call);
		fsl_close_call(l);
		l->state = FSL_IDLE;
		snprintf(l->why, sizeof l->why, "no answer within %llu s%s",
		    (unsigned long long)(now - l->started) / 1000, conn ?
		    " on an open connection: no HTTP/2 there?" : "");
		if (conn && !l->ever && ++l->proto_fails >= FSL_PROTO_FAILS) {
			l->state = FSL_FALLBACK;
			l->end = FSL_END_FALLBACK;
			return;
		}
		/* A server that refuses a call at once (Trailers-Only) and
		 * resets the stream, as gRPC servers do, can beat our request
		 * message: libcurl 7.88 then loses the answer.  It may have
		 * been UNAUTHENTICATED. */
		l->end = conn ? FSL_END_NOANSWER : FSL_END_UNREACHABLE;
		l->due = now + fsl_jitter(FSL_RETRY_MS);
		log_v(1, "firestore: Listen on %s: %s", l->c.what, l->why);
		return;
	}
	if (now < l->rx + fsl_silence(l))
		return;
	if (!l->synced) {
		/* No snapshot in time: a broken stream, retried later. */
		fsl_close_call(l);
		l->state = FSL_IDLE;
		l->end = FSL_END_LOST;
		snprintf(l->why, sizeof l->why, "no snapshot within %d s",
		    FSL_SYNC_MS / 1000);
		l->short_streams++;
		l->due = now + fsl_jitter(FSL_RETRY_MS);
		log_v(1, "firestore: Listen on %s: %s", l->c.what, l->why);
		return;
	}
	snprintf(why, sizeof why, "silent for %llu s, listening anew",
	    (unsigned long long)((now - l->rx) / 1000));
	/* Silent again after the last restart: the server does not
	 * heartbeat; wait longer next time. */
	if (l->watchdog && l->silent_ms < FSL_SILENT_MAX_MS)
		l->silent_ms = l->silent_ms * 2 < FSL_SILENT_MAX_MS ?
		    l->silent_ms * 2 : FSL_SILENT_MAX_MS;
	fsl_stop(l, why);
	l->watchdog = 1;
}

/* The entry for name, or NULL; add: create it (NULL when full). */
static struct fsl_ent *
fsl_find(struct fsl *l, const unsigned char *name, size_t n, int add)
{
	struct fsl_ent *e;
	int i;

	for (i = 0; i < l->nents; i++)
		if (l->ents[i].namelen == n && memcmp(l->ents[i].name, name, n) == 0)
			return &l->ents[i];
	if (!add || l->nents == FSL_MAX_DOCS)
		return NULL;
	e = &l->ents[l->nents];
	if ((e->name = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(e->name, name, n);
	e->name[n] = '\0';
	e->namelen = n;
	e->ver = e->pver = -1;
	l->nents++;
	return e;
}

/* Drop entries that are in no result set and hand nothing out. */
static void
fsl_compact(struct fsl *l)
{
	int i, j;

	for (i = j = 0; i < l->nents; i++) {
		if (l->ents[i].ver < 0 && !l->ents[i].pending &&
		    !l->ents[i].ready) {
			fsl_ent_clear(&l->ents[i]);
			continue;
		}
		if (i != j) {
			l->ents[j] = l->ents[i];
			memset(&l->ents[i], 0, sizeof l->ents[i]);
		}
		j++;
	}
	l->nents = j;
}

static int
fsl_has(const int32_t *ids, size_t n, int32_t id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

static int64_t
fsl_us(const Google__Protobuf__Timestamp *t)
{
	if (t == NULL || t->seconds < 0 || t->seconds > 253402300799LL ||
	    t->nanos < 0 || t->nanos > 999999999)
		return 0;
	return t->seconds * 1000000 + t->nanos / 1000;
}

/* Copy the fields we keep of d into out (cleared first); 0 or -1. */
static int
fsl_take_fields(const struct fsl *l, const Google__Firestore__V1__Document *d,
    struct fsl_doc *out)
{
	const Google__Firestore__V1__Value *v;
	struct fsl_val *o;
	const ProtobufCBinaryData *b;
	size_t i, k, klen;
	int64_t us;

	fsl_doc_clear(out);
	for (k = 0; k < FSL_MAX_FIELDS && l->c.fields[k] != NULL; k++) {
		o = &out->f[k];
		klen = strlen(l->c.fields[k]);
		v = NULL;
		/* A map on the wire: the last entry of a key wins. */
		for (i = 0; i < d->n_fields; i++)
			if (d->fields[i] != NULL &&
			    d->fields[i]->key.len == klen &&
			    memcmp(d->fields[i]->key.data, l->c.fields[k],
			    klen) == 0)
				v = d->fields[i]->value;
		if (v == NULL)
			continue;
		b = NULL;
		switch (v->value_type_case) {
		case GOOGLE__FIRESTORE__V1__VALUE__VALUE_TYPE_STRING_VALUE:
			o->type = FSL_STRING;
			b = &v->string_value;
			break;
		case GOOGLE__FIRESTORE__V1__VALUE__VALUE_TYPE_BYTES_VALUE:
			o->type = FSL_BYTES;
			b = &v->bytes_value;
			break;
		case GOOGLE__FIRESTORE__V1__VALUE__VALUE_TYPE_TIMESTAMP_VALUE:
			us = fsl_us(v->timestamp_value);
			o->type = us > 0 ? FSL_TIME : FSL_OTHER;
			o->ms = (uint64_t)us / 1000;
			break;
		default:
			o->type = FSL_OTHER;
			break;
		}
		if (b == NULL)
			continue;
		o->len = b->len;
		if (b->len > l->c.field_max) {
			o->big = 1;
			continue;
		}
		if ((o->p = malloc(b->len + 1)) == NULL)
			return -1;
		if (b->len > 0)
			memcpy(o->p, b->data, b->len);
		o->p[b->len] = '\0';
	}
	return 0;
}

/* A stream error: say why, end the stream (fsl_done follows). */
static int
fsl_bad(struct fsl *l, const char *why)
{
	snprintf(l->why, sizeof l->why, "%s", why);
	return -1;
}

static int
fsl_change(struct fsl *l, const Google__Firestore__V1__Document *d)
{
	struct fsl_ent *e;

	if (d == NULL || d->name.len == 0 || d->name.len > FSL_MAX_NAME ||
	    memchr(d->name.data, '\0', d->name.len) != NULL) {
		if (!l->warned++)
			log_v(1, "firestore: Listen on %s: skipping a document "
			    "without a usable name", l->c.what);
		return 0;
	}
	if ((e = fsl_find(l, d->name.data, d->name.len, 1)) == NULL) {
		fsl_compact(l);
		if ((e = fsl_find(l, d->name.data, d->name.len, 1)) == NULL)
			return fsl_bad(l, "more documents than a listener keeps");
	}
	e->pending = 1;
	e->pver = fsl_us(d->update_time);
	e->pbilled = 0;
	e->seen = 1;
	if (fsl_take_fields(l, d, &e->pdoc) == -1)
		return fsl_bad(l, "out of memory");
	return 0;
}

static void
fsl_removal(struct fsl *l, const ProtobufCBinaryData *name, int billed)
{
	struct fsl_ent *e;

	if ((e = fsl_find(l, name->data, name->len, 0)) == NULL)
		return;
	e->pending = 1;
	e->pver = -1;
	e->pbilled = billed;
	fsl_doc_clear(&e->pdoc);
}

/* A consistent snapshot: apply what changed since the last one. */
static void
fsl_snapshot(struct fsl *l)
{
	struct fsl_ent *e;
	int i, first = !l->synced;
	unsigned long billed = 0;

	for (i = 0; i < l->nents; i++) {
		e = &l->ents[i];
		if (l->resetting && !e->seen && !e->pending) {
			/* Not sent again: no longer there. */
			e->pending = 1;
			e->pver = -1;
			e->pbilled = 0;
		}
		if (!e->pending)
			continue;
		e->pending = 0;
		if (e->pver < 0) {
			billed += e->pbilled && e->ver >= 0;
			e->ver = -1;
			e->ready = 0;
			fsl_doc_clear(&e->doc);
			continue;
		}
		if (e->pver != e->ver || (l->fresh && first))
			billed++;
		if (e->pver != e->ver) {
			fsl_doc_clear(&e->doc);
			e->doc = e->pdoc;
			memset(&e->pdoc, 0, sizeof e->pdoc);
			e->doc.name = e->name;
			e->doc.namelen = e->namelen;
			e->ready = 1;
			e->seq = ++l->seq;
			e->ver = e->pver;
		}
		fsl_doc_clear(&e->pdoc);
	}
	l->reads += billed;
	l->docs += billed;
	if (first)
		l->qdocs += billed;
	l->resetting = 0;
	l->changes = 0;
	if (first) {
		l->synced = 1;
		l->ever = 1;
		l->unauth = 0;
		l->synced_at = fsl_now();
		fsl_bill_query(l);
		log_v(2, "firestore: Listen on %s: in sync", l->c.what);
	}
	if (l->ptoken != NULL) {
		free(l->token);
		l->token = l->ptoken;
		l->tokenlen = l->ptokenlen;
		l->ptoken = NULL;
		l->ptokenlen = 0;
	}
	fsl_compact(l);
}

/* A TargetChange's type, for -vv. */
static const char *
fsl_tc_name(int type)
{
	switch (type) {
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__NO_CHANGE:
		return "NO_CHANGE";
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__ADD:
		return "ADD";
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__REMOVE:
		return "REMOVE";
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__CURRENT:
		return "CURRENT";
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__RESET:
		return "RESET";
	default:
		return "of an unknown type";
	}
}

static int
fsl_target_change(struct fsl *l, const Google__Firestore__V1__TargetChange *tc)
{
	int all = tc->n_target_ids == 0;
	const char *msg;
	unsigned char *t;
	if (!all && !fsl_has(tc->target_ids, tc->n_target_ids, FSL_TARGET_ID))
		return 0;	/* another target's: not ours */
	if (tc->resume_token.len > 0 && tc->resume_token.len <= FSL_MAX_TOKEN) {
		if ((t = malloc(tc->resume_token.len)) == NULL)
			return fsl_bad(l, "out of memory");
		memcpy(t, tc->resume_token.data, tc->resume_token.len);
		free(l->ptoken);
		l->ptoken = t;
		l->ptokenlen = tc->resume_token.len;
	}
	if (tc->target_change_type !=
	    GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__NO_CHANGE || !all)
		log_v(2, "firestore: Listen on %s: target change %s%s",
		    l->c.what, fsl_tc_name(tc->target_change_type),
		    all ? " (all targets)" : "");
	switch (tc->target_change_type) {
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__NO_CHANGE:
		if (all && tc->read_time != NULL && l->current)
			fsl_snapshot(l);
		break;
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__ADD:
		l->acked = 1;
		break;
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__REMOVE:
		msg = tc->cause != NULL && tc->cause->message != NULL ?
		    tc->cause->message : "";
		snprintf(l->why, sizeof l->why, "the server removed the "
		    "target (status %d%s%.100s)", tc->cause != NULL ?
		    tc->cause->code : 0, msg[0] ? ": " : "", msg);
		l->end = tc->cause != NULL &&
		    tc->cause->code == GRPC_PERMISSION_DENIED ? FSL_END_DENIED :
		    tc->cause != NULL && tc->cause->code == GRPC_NOT_FOUND ?
		    FSL_END_NOTFOUND : FSL_END_LOST;
		return -1;
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__CURRENT:
		l->acked = 1;
		l->current = 1;
		break;
	case GOOGLE__FIRESTORE__V1__TARGET_CHANGE__TARGET_CHANGE_TYPE__RESET: {
		int i;

		l->acked = 1;
		l->current = 0;
		l->resetting = 1;
		for (i = 0; i < l->nents; i++) {
			l->ents[i].seen = 0;
			l->ents[i].pending = 0;
			fsl_doc_clear(&l->ents[i].pdoc);
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

int
fsl_feed(struct fsl *l, const unsigned char *msg, size_t len)
{
	struct fsl_arena a = { 0 };
	ProtobufCAllocator al = { fsl_alloc, fsl_free_mem, &a };
	Google__Firestore__V1__ListenResponse *r;
	const Google__Firestore__V1__DocumentChange *dc;
	const Google__Firestore__V1__ExistenceFilter *f;
	uint64_t now = fsl_now();
	int ret = 0, i, n;

	if ((r = google__firestore__v1__listen_response__unpack(&al, len,
	    msg)) == NULL)
		return fsl_bad(l, "an undecodable message");
	/* Anything after the first snapshot shows the server alive. */
	if (l->synced) {
		l->watchdog = 0;
		l->silent_ms = FSL_SILENT_MS;
	}
	l->rx = now;
	l->token_rx = now;
	switch (r->response_type_case) {
	case GOOGLE__FIRESTORE__V1__LISTEN_RESPONSE__RESPONSE_TYPE_TARGET_CHANGE:
		ret = fsl_target_change(l, r->target_change);
		break;
	case GOOGLE__FIRESTORE__V1__LISTEN_RESPONSE__RESPONSE_TYPE_DOCUMENT_CHANGE:
		dc = r->document_change;
		if (++l->changes > FSL_MAX_CHANGES) {
			ret = fsl_bad(l, "changes without end");
			break;
		}
		if (fsl_has(dc->target_ids, dc->n_target_ids, FSL_TARGET_ID)) {
			log_v(2, "firestore: Listen on %s: a document changed",
			    l->c.what);
			l->acked = 1;
			ret = fsl_change(l, dc->document);
		} else if (dc->document != NULL &&
		    fsl_has(dc->removed_target_ids, dc->n_removed_target_ids,
		    FSL_TARGET_ID)) {
			log_v(2, "firestore: Listen on %s: a document left "
			    "the target", l->c.what);
			fsl_removal(l, &dc->document->name, 1);
		}
		break;
	case GOOGLE__FIRESTORE__V1__LISTEN_RESPONSE__RESPONSE_TYPE_DOCUMENT_DELETE:
		if (fsl_has(r->document_delete->removed_target_ids,
		    r->document_delete->n_removed_target_ids, FSL_TARGET_ID)) {
			log_v(2, "firestore: Listen on %s: a document was "
			    "deleted", l->c.what);
			fsl_removal(l, &r->document_delete->document, 0);
		}
		break;
	case GOOGLE__FIRESTORE__V1__LISTEN_RESPONSE__RESPONSE_TYPE_DOCUMENT_REMOVE:
		if (fsl_has(r->document_remove->removed_target_ids,
		    r->document_remove->n_removed_target_ids, FSL_TARGET_ID)) {
			log_v(2, "firestore: Listen on %s: a document left "
			    "the target", l->c.what);
			fsl_removal(l, &r->document_remove->document, 1);
		}
		break;
	case GOOGLE__FIRESTORE__V1__LISTEN_RESPONSE__RESPONSE_TYPE_FILTER:
		f = r->filter;
		if (f->target_id != FSL_TARGET_ID)
			break;
		for (i = n = 0; i < l->nents; i++)
			n += l->ents[i].pending ? l->ents[i].pver >= 0 :
			    l->ents[i].ver >= 0;
		if (f->count != n) {
			/* We missed a removal: listen anew, no token. */
			free(l->token);
			l->token = NULL;
			l->tokenlen = 0;
			snprintf(l->why, sizeof l->why, "the server counts %d "
			    "documents, we %d: listening anew", f->count, n);
			l->end = FSL_END_STOPPED;
			ret = -1;
		}
		break;
	default:
		break;
	}
	google__firestore__v1__listen_response__free_unpacked(r, &al);
	return ret;
}

/* Classify how the stream ended, into l->end and l->why. */
static void
fsl_classify(struct fsl *l, CURLcode cc)
{
	const struct grpc_resp *r = grpc_call_resp(l->call);
	int ab = grpc_call_abort(l->call);
	const char *err = grpc_call_error(l->call);

	if (l->end != FSL_END_NONE)
		return;		/* fsl_feed decided */
	l->end = FSL_END_LOST;
	if (ab == FSL_ABORT)
		return;		/* fsl_feed said why */
	if (ab == GRPC_DEC_BIG || ab == GRPC_DEC_COMPRESSED ||
	    ab == GRPC_DEC_NOMEM) {
		snprintf(l->why, sizeof l->why, "%s",
		    ab == GRPC_DEC_BIG ? "a message too large" :
		    ab == GRPC_DEC_COMPRESSED ? "a compressed message" :
		    "out of memory");
		return;
	}
	if (r->status >= 0) {
		snprintf(l->why, sizeof l->why, "grpc-status %d%s%s",
		    r->status, r->message[0] ? ": " : "", r->message);
		switch (r->status) {
		case GRPC_UNIMPLEMENTED:
		case GRPC_INVALID_ARGUMENT:
		case GRPC_FAILED_PRECONDITION:
			l->end = FSL_END_FALLBACK;
			break;
		case GRPC_PERMISSION_DENIED:
			l->end = FSL_END_DENIED;
			break;
		case GRPC_NOT_FOUND:
			l->end = FSL_END_NOTFOUND;
			break;
		case GRPC_UNAUTHENTICATED:
			l->end = FSL_END_UNAUTH;
			break;
		}
		return;
	}
	if (r->headers && (!r->h2 || !r->grpc || r->http != 200)) {
		snprintf(l->why, sizeof l->why, "the server answered HTTP/%s "
		    "%ld, %s", r->h2 ? "2" : "1", r->http, r->grpc ? "gRPC" :
		    "not gRPC");
		/* A gRPC front end that is busy says so; anything else
		 * there is not gRPC: a proxy, an HTTP/1 server. */
		if (r->http != 429 && r->http != 502 && r->http != 503 &&
		    r->http != 504)
			l->end = FSL_END_FALLBACK;
		return;
	}
	snprintf(l->why, sizeof l->why, "%s", err[0] ? err :
	    curl_easy_strerror(cc));
	if (r->http != 0)
		return;		/* broke after the server answered */
	if (!grpc_call_connected(l->call))
		l->end = FSL_END_UNREACHABLE;
	else if (!l->ever && ++l->proto_fails >= FSL_PROTO_FAILS)
		/* The connection stood, and broke before any answer, again:
		 * a server or proxy without HTTP/2 (it answered our preface
		 * with HTTP/1 and closed).  Once Listen has worked here,
		 * only a plain answer makes us give it up. */
		l->end = FSL_END_FALLBACK;
}

void
fsl_done(struct fsl *l, CURLcode cc)
{
	uint64_t now = fsl_now(), d;
	int end;

	if (l->call == NULL)
		return;
	fsl_classify(l, cc);
	if (l->acked || grpc_call_resp(l->call)->http != 0)
		l->proto_fails = 0;
	fsl_close_call(l);
	end = l->end;
	if (end == FSL_END_FALLBACK) {
		l->state = FSL_FALLBACK;
		return;
	}
	/* Refused again with a token just renewed: as a REST 401 is. */
	if (end == FSL_END_DENIED || end == FSL_END_NOTFOUND ||
	    (end == FSL_END_UNAUTH && l->unauth > 0)) {
		l->state = FSL_DENIED;
		return;
	}
	l->state = FSL_IDLE;
	if (end == FSL_END_STOPPED) {
		l->due = now;
		return;
	}
	if (end == FSL_END_UNREACHABLE) {
		d = FSL_CONN_MS;
		for (unsigned i = 0; i < l->conn_fails && d < FSL_CONN_MAX_MS; i++)
			d = d * 3 / 2;
		l->conn_fails++;
		d = d < FSL_CONN_MAX_MS ? d : FSL_CONN_MAX_MS;
	} else if (end == FSL_END_UNAUTH) {
		/* At once, with a new token (firestore.c renews it). */
		l->unauth++;
		d = 0;
	} else if (l->synced && now - l->synced_at >= FSL_LONG_MS) {
		/* A stream that served its while (Google ends them about
		 * hourly): again at once. */
		l->short_streams = 0;
		l->conn_fails = 0;
		d = 0;
	} else {
		d = FSL_RETRY_MS;
		for (unsigned i = 0; i < l->short_streams && d < FSL_RETRY_MAX_MS; i++)
			d *= 2;
		l->short_streams++;
		d = d < FSL_RETRY_MAX_MS ? d : FSL_RETRY_MAX_MS;
	}
	if (end != FSL_END_UNREACHABLE)
		l->conn_fails = 0;
	if (end != FSL_END_UNAUTH)
		l->unauth = 0;
	if (d > 0)
		d = fsl_min(fsl_jitter(d), end == FSL_END_UNREACHABLE ?
		    FSL_CONN_MAX_MS : FSL_RETRY_MAX_MS);
	l->due = now + d;
	log_v(1, "firestore: Listen on %s ended (%s); again in %.1f s",
	    l->c.what, l->why, d / 1000.0);
}

const struct fsl_doc *
fsl_peek(const struct fsl *l)
{
	const struct fsl_ent *best = NULL;
	int i;

	for (i = 0; i < l->nents; i++)
		if (l->ents[i].ready && (best == NULL ||
		    l->ents[i].seq < best->seq))
			best = &l->ents[i];
	return best != NULL ? &best->doc : NULL;
}

void
fsl_pop(struct fsl *l)
{
	const struct fsl_doc *d = fsl_peek(l);
	struct fsl_ent *e;
	int i;

	for (i = 0; i < l->nents; i++) {
		e = &l->ents[i];
		if (&e->doc != d)
			continue;
		e->ready = 0;
		fsl_doc_clear(&e->doc);
		break;
	}
	fsl_compact(l);
}
