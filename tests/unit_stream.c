/*
 * unit_stream: two streams joined by a simulated network with a virtual
 * clock and a seeded PRNG: one-way delay, a bottleneck with a bounded
 * queue, random loss, reordering and duplication.  Each scenario asserts
 * real outcomes and prints what it measured:
 *
 *   clean, lossy, reorder, dup, long, fast: MiBs both ways (or one way)
 *	at once arrive byte-identical with FIN/EOF, above a goodput floor;
 *	clean also bounds pacing bursts
 *   netem, reorder_decay: netem's reordering (packets that skip the
 *	delay), with and without loss: the reordering is learned, RTT
 *	estimates stay the path's, most of the link is used; and the loss
 *	thresholds come back once reordering stops
 *   ack_gap: ACKs go at once when a gap opens and when it fills
 *   spurious: a packet declared lost and acknowledged later counts as
 *	acknowledged in full (its WRITTEN, its bytes delivered)
 *   prune_full: with more acknowledged ACKs than the prune queue holds,
 *	an overtaken packet within a loss delay is still acknowledged
 *   cc_spurious: the congestion controller alone: a bandwidth probe
 *	that loses 10 % stops, whatever spurious losses came before
 *   bbr_lossy, bbr_queue, bbr_change: the congestion controller (BBR):
 *	goodput at 1 % and 3 % random loss on a 50 ms path, a bounded queue on a
 *	clean one, following a bottleneck that halves and doubles and a
 *	delay that triples (min_rtt expiry, ProbeRTT)
 *   garbage: refused payloads injected during a transfer change nothing
 *   bad_overtake: nor does one under the number of a packet that was
 *	overtaken, which drops the round trips that overtook it
 *   rttq_full: round trips waiting to count all count, even when more
 *	wait than the queue holds
 *   slow_reader: MAX_DATA holds the sender; buffers stay within bounds
 *   empty, linger: zero-length streams; short transfers at 20% loss where
 *	each side leaves as soon as stream_can_close allows
 *   keepalive, ping, idle, close: PING interval, stream_ping,
 *	STREAM_IDLE timing, CLOSE code
 *   path: PATH_CHALLENGE and PATH_RESPONSE packets, padded or not,
 *	acknowledged only with others, and broken ones
 *   path_reset: a move to a slower path mid-transfer starts congestion
 *	control, RTT and MTU over; the old path's ACKs feed neither
 *   path_keep: away to a relay and back (a forwarding attacker's moves):
 *	each path's state as left; a third path starts over
 *   path_persist: losses on a path left do not make persistent
 *     congestion on the path restored
 *   path_episode: the old path's losses open no loss episode on the
 *	new one, whose spurious losses are then taken back
 *   fuzz: hostile payloads into streams in mid-transfer: no crash
 *
 * Every run checks that packet numbers never repeat, that every payload
 * parses by the layout in stream.c, that no data goes beyond the reader's
 * window, and that stream_deadline never stays in the past.
 * `unit_stream NAME' runs one scenario.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc.h"
#include "stream.h"

#define MTU		1200
#define OVERHEAD	40	/* outer header, AEAD tag, UDP/IP per packet */
#define MAX_PKTS	200000	/* in the network at once */

static int failures;
static uint64_t pacing_worst;	/* the last transfer's largest burst */

static void
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

#define CHECK(cond, ...) do {				\
	if (!(cond)) {						\
		fail(__VA_ARGS__);				\
		return -1;					\
	}							\
} while (0)

/* splitmix64: deterministic and good enough for a network. */
static uint64_t rng_state;

static uint64_t
rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
rndf(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static void
rnd_fill(uint8_t *p, size_t n)
{
	uint64_t v;

	for (; n >= 8; p += 8, n -= 8) {
		v = rnd();
		memcpy(p, &v, 8);
	}
	v = rnd();
	memcpy(p, &v, n);
}

/* n random bytes, malloc'd (abort when out of memory). */
static uint8_t *
rnd_alloc(size_t n)
{
	uint8_t *p = malloc(n);

	if (p == NULL)
		abort();
	rnd_fill(p, n);
	return p;
}

/* What a payload holds, read with the layout documented in stream.c. */
struct scan {
	bool ok, ping, stream, fin, close, ack, done, written;
	uint64_t off, len;
	uint64_t ack_largest, ack_ranges;	/* ranges: 1 + the count */
	uint64_t ack_first;		/* the first range's length - 1 */
	uint32_t code;
	char why[64];		/* the CLOSE reason */
	size_t bounds[64];	/* frame boundaries */
	int nbounds;
};

static int
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	size_t n, i;

	if (*p >= end)
		return -1;
	n = (size_t)1 << (**p >> 6);
	if ((size_t)(end - *p) < n)
		return -1;
	*v = **p & 0x3f;
	for (i = 1; i < n; i++)
		*v = *v << 8 | (*p)[i];
	*p += n;
	return 0;
}

static void
scan(const uint8_t *buf, size_t len, struct scan *sc)
{
	const uint8_t *p = buf, *end = buf + len;
	uint64_t t, v, count, i;

	memset(sc, 0, sizeof *sc);
	while (p < end) {
		if (sc->nbounds < 64)
			sc->bounds[sc->nbounds++] = p - buf;
		if (varint(&p, end, &t) == -1)
			return;
		switch (t) {
		case 0x00:
			break;
		case 0x01:
			sc->ping = true;
			break;
		case 0x02:
			sc->ack = true;
			if (varint(&p, end, &sc->ack_largest) ||
			    varint(&p, end, &v) ||
			    varint(&p, end, &count) ||
			    varint(&p, end, &sc->ack_first))
				return;
			sc->ack_ranges = count + 1;
			for (i = 0; i < count; i++)
				if (varint(&p, end, &v) || varint(&p, end, &v))
					return;
			break;
		case 0x0e:
		case 0x0f:
			sc->stream = true;
			sc->fin = t == 0x0f;
			if (varint(&p, end, &sc->off) ||
			    varint(&p, end, &sc->len) ||
			    sc->len > (uint64_t)(end - p))
				return;
			p += sc->len;
			break;
		case 0x10:
			if (varint(&p, end, &v))
				return;
			break;
		case 0x1d:
			sc->done = true;
			break;
		case 0x1e:
			sc->written = true;
			break;
		case 0x1c:
			if (end - p < 4)
				return;
			sc->close = true;
			sc->code = (uint32_t)p[0] << 24 | p[1] << 16 |
			    p[2] << 8 | p[3];
			p += 4;
			if (varint(&p, end, &v) || v > (uint64_t)(end - p) ||
			    v >= sizeof sc->why)
				return;
			memcpy(sc->why, p, v);
			sc->why[v] = '\0';
			p += v;
			break;
		default:
			return;
		}
	}
	sc->ok = true;
}

/* One direction of the network. */
struct link {
	uint64_t delay_us;	/* one way, propagation */
	uint64_t bw;		/* bytes per second at the bottleneck */
	uint64_t queue;		/* bottleneck buffer, bytes */
	double loss, dup, reorder;	/* probabilities */
	uint64_t reorder_us;	/* extra delay of a reordered packet */
	double early;		/* chance to skip delay_us, as netem's reorder */
	bool cut;		/* drop everything */
	uint64_t free_ns;	/* bottleneck busy until, in ns */
	uint64_t sent, dropped, queued_out;
	uint64_t qwatch_us;	/* from then on... */
	uint64_t qmax_ns;	/* ...the longest wait in the queue */
};

struct pkt {
	uint64_t t, seq, pn;
	int to;
	size_t len;
	uint8_t data[MTU];
};

static struct pkt *heap[MAX_PKTS];
static int nheap;
static uint64_t seq;

static bool
before(const struct pkt *a, const struct pkt *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
heap_push(struct pkt *p)
{
	int i = nheap++;

	while (i > 0 && before(p, heap[(i - 1) / 2])) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = p;
}

static struct pkt *
heap_pop(void)
{
	struct pkt *top = heap[0], *last = heap[--nheap];
	int i = 0, c;

	while ((c = 2 * i + 1) < nheap) {
		if (c + 1 < nheap && before(heap[c + 1], heap[c]))
			c++;
		if (!before(heap[c], last))
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (nheap > 0)
		heap[i] = last;
	return top;
}

static void
heap_clear(void)
{
	while (nheap > 0)
		free(heap_pop());
}

static void
link_send(struct link *l, uint64_t now, int to, uint64_t pn,
    const uint8_t *buf, size_t len)
{
	uint64_t start, t;
	int copies, i;

	l->sent++;
	if (l->cut || rndf() < l->loss) {
		l->dropped++;
		return;
	}
	start = l->free_ns > now * 1000 ? l->free_ns : now * 1000;
	if ((double)(start - now * 1000) * l->bw / 1e9 > l->queue) {
		l->queued_out++;
		return;
	}
	if (l->qwatch_us != 0 && now >= l->qwatch_us &&
	    start - now * 1000 > l->qmax_ns)
		l->qmax_ns = start - now * 1000;
	l->free_ns = start + (len + OVERHEAD) * 1000000000 / l->bw;
	t = (l->free_ns + 999) / 1000;
	if (!(l->early > 0 && rndf() < l->early))
		t += l->delay_us;
	if (rndf() < l->reorder)
		t += rnd() % (l->reorder_us + 1);
	copies = rndf() < l->dup ? 2 : 1;
	for (i = 0; i < copies && nheap < MAX_PKTS; i++) {
		struct pkt *p = malloc(sizeof *p);

		if (p == NULL)
			abort();
		p->t = t + i * (rnd() % 2000);
		p->seq = seq++;
		p->pn = pn;
		p->to = to;
		p->len = len;
		memcpy(p->data, buf, len);
		heap_push(p);
	}
}

struct side {
	const char *name;
	struct stream *s;
	struct stream_conf conf;
	const uint8_t *src;	/* what this side sends */
	size_t src_len, written;
	bool fin_sent;
	uint8_t *dst;		/* what it receives */
	size_t dst_cap, got;
	size_t read_chunk;	/* 0: read everything at once */
	uint64_t read_every_us, next_read;
	uint64_t next_pn;	/* the packet number we expect next */
	uint64_t last_recv;	/* when a payload was last accepted */
	uint64_t last_send, max_gap, pings;
	uint64_t bad;		/* honest payloads refused: must stay 0 */
	uint64_t injected, refused;
	uint64_t err_at;
	uint64_t max_snd, max_rcv;
	bool gone;		/* exited as p2pcat does, on stream_can_close */
	bool hold_written;	/* the output is not done: no stream_written */
	uint64_t dones, writtens;	/* DONE and WRITTEN frames sent */
	char why[64];		/* the reason of the CLOSE it sent */
	uint64_t burst;		/* most packets sent at one instant */
};

struct sim {
	struct side side[2];
	struct link link[2];	/* link[i] carries side i's packets */
	uint64_t now, start;
	uint64_t limit_us;	/* give up after this much virtual time */
	double garbage;		/* chance to inject garbage with a packet */
	uint64_t abort_at;	/* side 0 aborts then; 0: never */
	uint64_t done_at;	/* when all data and both FINs were through */
};

static void
side_init(struct side *sd, const char *name, const struct stream_conf *conf,
    const uint8_t *src, size_t src_len, size_t dst_cap, uint64_t now)
{
	memset(sd, 0, sizeof *sd);
	sd->name = name;
	sd->conf = *conf;
	sd->src = src;
	sd->src_len = src_len;
	sd->dst_cap = dst_cap;
	if (dst_cap > 0 && (sd->dst = malloc(dst_cap)) == NULL)
		abort();
	if ((sd->s = stream_new(conf, now)) == NULL)
		abort();
	sd->last_recv = sd->last_send = now;
}

/* The next payload of side sd: A's through stream_output_tail, its
 * stream bytes gathered after what it wrote into buf, B's through
 * stream_output. */
static size_t
side_output(struct side *sd, uint64_t now, uint64_t *pn, uint8_t *buf, size_t cap)
{
	struct iovec tail[STREAM_TAIL_MAX];
	size_t n, t = 0;
	int i, ntail;

	if (sd->name[0] != 'A')
		return stream_output(sd->s, now, pn, buf, cap);
	n = stream_output_tail(sd->s, now, pn, buf, cap, tail, &ntail);
	CHECK(ntail >= 0 && ntail <= STREAM_TAIL_MAX, "A: %d pieces", ntail);
	for (i = 0; i < ntail; i++)
		t += tail[i].iov_len;
	CHECK(t <= n, "A: a tail of %zu bytes in a payload of %zu", t, n);
	if (t > n || n > cap)
		return 0;
	for (i = 0, t = n - t; i < ntail; t += tail[i].iov_len, i++)
		memcpy(buf + t, tail[i].iov_base, tail[i].iov_len);
	return n;
}

static void
side_free(struct side *sd)
{
	stream_free(sd->s);
	free(sd->dst);
}

/* The application: write what fits, read what may be read. */
static int
app(struct sim *m, struct side *sd)
{
	uint8_t tmp[65536];
	size_t n, want;
	struct stream_stats st;
	const void *peek;
	void *room;

	if (stream_error(sd->s) != STREAM_OK)
		return 0;
	/* A writes in place (stream_write_room), B through stream_write. */
	while (sd->name[0] == 'A' && sd->written < sd->src_len &&
	    (n = stream_write_room(sd->s, &room)) > 0) {
		n = n < sd->src_len - sd->written ? n : sd->src_len - sd->written;
		memcpy(room, sd->src + sd->written, n);
		stream_wrote(sd->s, n);
		sd->written += n;
	}
	if (sd->written < sd->src_len)
		sd->written += stream_write(sd->s, sd->src + sd->written,
		    sd->src_len - sd->written);
	if (sd->written == sd->src_len && !sd->fin_sent) {
		stream_close_write(sd->s);
		sd->fin_sent = true;
	}
	if (sd->read_chunk > 0 && m->now < sd->next_read)
		return 0;
	want = sd->read_chunk > 0 ? sd->read_chunk : SIZE_MAX;
	/* B reads in place (stream_read_peek), A through stream_read. */
	while (sd->name[0] == 'B' && want > 0 && (n = stream_read_peek(sd->s, &peek)) > 0) {
		n = n < want ? n : want;
		CHECK(sd->got + n <= sd->dst_cap, "%s: got more than was sent",
		    sd->name);
		if (sd->got + n > sd->dst_cap)
			break;
		memcpy(sd->dst + sd->got, peek, n);
		stream_read_done(sd->s, n);
		sd->got += n;
		want -= n;
	}
	while (want > 0 && (n = stream_read(sd->s, tmp,
	    want < sizeof tmp ? want : sizeof tmp)) > 0) {
		CHECK(sd->got + n <= sd->dst_cap, "%s: got more than was sent",
		    sd->name);
		memcpy(sd->dst + sd->got, tmp, n);
		sd->got += n;
		want -= n;
	}
	if (sd->read_chunk > 0)
		sd->next_read = m->now + sd->read_every_us;
	/* All of the peer's bytes are out: say so, as p2pcat does once its
	 * output has closed. */
	if (stream_eof(sd->s) && !sd->hold_written)
		stream_written(sd->s);
	stream_get_stats(sd->s, &st);
	if (st.snd_buffered > sd->max_snd)
		sd->max_snd = st.snd_buffered;
	if (st.rcv_buffered > sd->max_rcv)
		sd->max_rcv = st.rcv_buffered;
	CHECK(st.snd_buffered <= sd->conf.sndbuf, "%s: %" PRIu64
	    " bytes in a %zu byte send buffer", sd->name, st.snd_buffered,
	    sd->conf.sndbuf);
	CHECK(st.rcv_buffered <= sd->conf.rcvbuf, "%s: %" PRIu64
	    " bytes in a %zu byte receive buffer", sd->name, st.rcv_buffered,
	    sd->conf.rcvbuf);
	return 0;
}

/* Payloads that must be refused: each checked, none may harm. */
static int
inject(struct sim *m, struct side *to, const struct pkt *real,
    const struct side *from)
{
	uint8_t buf[MTU + 16];
	struct scan sc;
	size_t len = 0, cut;
	uint64_t pn = from->next_pn + 100000 + rnd() % 1000;
	int kind = rnd() % 5, i;

	switch (kind) {
	case 0:	/* unknown frame type */
		len = 1 + rnd() % 200;
		rnd_fill(buf, len);
		buf[0] = 0x03 + rnd() % 10;
		break;
	case 1:	/* the real payload cut inside a frame, same pn, before it */
		scan(real->data, real->len, &sc);
		if (real->len < 2)
			return 0;
		cut = 1 + rnd() % (real->len - 1);
		for (i = 0; i < sc.nbounds; i++)
			if (sc.bounds[i] == cut)
				return 0;
		memcpy(buf, real->data, cut);
		len = cut;
		pn = real->pn;
		break;
	case 2:	/* the real payload with a bad frame after it, same pn */
		memcpy(buf, real->data, real->len);
		len = real->len;
		buf[len++] = 0x3f;
		pn = real->pn;
		break;
	case 3:	/* an ACK of packets never sent */
		buf[0] = 0x02;
		buf[1] = 0x80 | 0x3f;	/* 4-byte varint: 0x3fffffff */
		buf[2] = buf[3] = buf[4] = 0xff;
		buf[5] = 0;
		buf[6] = 0;
		buf[7] = 0;
		len = 8;
		break;
	case 4:	/* data far beyond the window */
		buf[0] = 0x0e;
		buf[1] = 0x80 | 0x3f;
		buf[2] = buf[3] = buf[4] = 0xff;
		buf[5] = 4;
		memset(buf + 6, 'x', 4);
		len = 10;
		break;
	}
	to->injected++;
	CHECK(stream_input(to->s, m->now, pn, buf, len) == -1,
	    "%s: garbage of kind %d (%zu bytes) accepted", to->name, kind, len);
	to->refused++;
	return 0;
}

/* Sides exit once stream_can_close says so; packets to them are lost
 * from then on, which tests the linger.  True when both are gone. */
static bool
finished(struct sim *m)
{
	int i;

	if (m->done_at == 0 && stream_eof(m->side[0].s) &&
	    stream_eof(m->side[1].s) && stream_send_done(m->side[0].s) &&
	    stream_send_done(m->side[1].s))
		m->done_at = m->now;
	for (i = 0; i < 2; i++)
		if (stream_can_close(m->side[i].s, m->now))
			m->side[i].gone = true;
	return m->side[0].gone && m->side[1].gone;
}

/* Runs until both sides are gone: 0; 1 when limit_us passes first; -1
 * on a failure (said why). */
static int
run(struct sim *m)
{
	uint8_t buf[MTU];
	int i, spins = 0;

	for (;;) {
		uint64_t t = UINT64_MAX, pn;
		size_t n;

		if (finished(m))
			return 0;
		for (i = 0; i < 2; i++)
			if (!m->side[i].gone && app(m, &m->side[i]) == -1)
				return -1;
		if (m->abort_at != 0 && m->now >= m->abort_at) {
			stream_abort_why(m->side[0].s, 0xdeadbeef,
			    "could not write its output: \033[31m");
			m->abort_at = 0;
		}
		for (i = 0; i < 2; i++) {
			struct side *sd = &m->side[i];
			int err0 = stream_error(sd->s);

			uint64_t burst = 0;

			if (sd->gone)
				continue;
			/* A leaves its stream bytes in place, as the session
			 * does (stream_output_tail); B gets them copied. */
			while ((n = side_output(sd, m->now, &pn, buf, sizeof buf)) > 0) {
				struct scan sc;

				CHECK(n <= MTU, "%s: payload of %zu bytes",
				    sd->name, n);
				CHECK(pn == sd->next_pn, "%s: packet number %"
				    PRIu64 " after %" PRIu64, sd->name, pn,
				    sd->next_pn);
				sd->next_pn++;
				scan(buf, n, &sc);
				CHECK(sc.ok, "%s: sent a payload we cannot parse",
				    sd->name);
				/* Flow control: never beyond what the reader
				 * on the other side left room for. */
				CHECK(!sc.stream || sc.off + sc.len <=
				    m->side[!i].got + m->side[!i].conf.rcvbuf,
				    "%s: data up to %" PRIu64 " but the peer "
				    "has read only %zu", sd->name,
				    sc.off + sc.len, m->side[!i].got);
				if (m->now - sd->last_send > sd->max_gap)
					sd->max_gap = m->now - sd->last_send;
				sd->last_send = m->now;
				sd->pings += sc.ping;
				sd->dones += sc.done;
				sd->writtens += sc.written;
				if (sc.close)
					memcpy(sd->why, sc.why, sizeof sd->why);
				link_send(&m->link[i], m->now, !i, pn, buf, n);
				if (++burst > sd->burst)
					sd->burst = burst;
			}
			if (err0 == STREAM_OK && stream_error(sd->s) != STREAM_OK)
				sd->err_at = m->now;
			if (stream_deadline(sd->s) < t)
				t = stream_deadline(sd->s);
		}
		if (finished(m))
			return 0;
		for (i = 0; i < 2; i++) {
			struct side *sd = &m->side[i];

			/* A side that is gone reads no more. */
			if (!sd->gone && sd->read_chunk > 0 && sd->next_read < t)
				t = sd->next_read;
		}
		if (nheap > 0 && heap[0]->t < t)
			t = heap[0]->t;
		if (t > m->start + m->limit_us)
			t = m->start + m->limit_us;
		if (t <= m->now) {
			/* Output just said nothing is due now; a deadline in
			 * the past would make the session spin. */
			CHECK(++spins < 100, "stream_deadline stays in the past"
			    " at %" PRIu64 " us", m->now - m->start);
		} else {
			spins = 0;
			m->now = t;
		}
		if (m->now - m->start >= m->limit_us)
			return 1;
		while (nheap > 0 && heap[0]->t <= m->now) {
			struct pkt *p = heap_pop();
			struct side *to = &m->side[p->to];
			int rc, err0;

			if (to->gone) {
				free(p);
				continue;
			}
			if (m->garbage > 0 && rndf() < m->garbage &&
			    inject(m, to, p, &m->side[!p->to]) == -1) {
				free(p);
				return -1;
			}
			err0 = stream_error(to->s);
			rc = stream_input(to->s, m->now, p->pn, p->data, p->len);
			if (err0 == STREAM_OK && stream_error(to->s) != STREAM_OK)
				to->err_at = m->now;
			if (rc == -1)
				to->bad++;
			else
				to->last_recv = m->now;
			free(p);
			CHECK(rc == 0, "%s: refused an honest payload", to->name);
		}
	}
}

/* run() for a transfer that must end cleanly. */
static int
run_done(struct sim *m, const char *name)
{
	int rc = run(m);

	if (rc == 1) {
		fail("%s: not done after %" PRIu64 " simulated seconds: A got "
		    "%zu of %zu, eof %d, send_done %d, error %d, gone %d; B got "
		    "%zu of %zu, eof %d, send_done %d, error %d, gone %d", name,
		    m->limit_us / 1000000,
		    m->side[0].got, m->side[1].src_len, stream_eof(m->side[0].s),
		    stream_send_done(m->side[0].s), stream_error(m->side[0].s),
		    m->side[0].gone,
		    m->side[1].got, m->side[0].src_len, stream_eof(m->side[1].s),
		    stream_send_done(m->side[1].s), stream_error(m->side[1].s),
		    m->side[1].gone);
		return -1;
	}
	return rc;
}

static struct stream_conf
conf_default(void)
{
	struct stream_conf c = {
		.mtu = MTU,
		.sndbuf = 1 << 20,
		.rcvbuf = 1 << 20,
		.keepalive_us = 0,
		.idle_us = 30000000,
	};

	return c;
}

static void
sim_init(struct sim *m, const struct stream_conf *c0,
    const struct stream_conf *c1, const uint8_t *d0, size_t n0,
    const uint8_t *d1, size_t n1, const struct link *l)
{
	memset(m, 0, sizeof *m);
	m->now = m->start = 1000000;
	m->limit_us = 120000000;
	m->link[0] = m->link[1] = *l;
	side_init(&m->side[0], "A", c0, d0, n0, n1, m->now);
	side_init(&m->side[1], "B", c1, d1, n1, n0, m->now);
}

static void
sim_free(struct sim *m)
{
	side_free(&m->side[0]);
	side_free(&m->side[1]);
	heap_clear();
}

static void
report(const char *name, const struct sim *m, size_t bytes)
{
	double secs = (double)((m->done_at ? m->done_at : m->now) - m->start) / 1e6;
	int i;

	printf("%-24s %6.3f s simulated", name, secs);
	if (bytes > 0)
		printf(", goodput %.2f MB/s each way of %.2f MB/s",
		    bytes / secs / 1e6, m->link[0].bw / 1e6);
	printf("\n");
	for (i = 0; i < 2; i++) {
		struct stream_stats st;

		stream_get_stats(m->side[i].s, &st);
		printf("    %s: %" PRIu64 " pkts sent, %" PRIu64 " lost (net "
		    "dropped %" PRIu64 ", queue %" PRIu64 "), %" PRIu64
		    " bytes resent, srtt %.1f ms, cwnd %" PRIu64 ", buffers "
		    "%" PRIu64 "/%" PRIu64 ", burst %" PRIu64 " pkts\n",
		    m->side[i].name, st.pkts_sent, st.pkts_lost,
		    m->link[i].dropped, m->link[i].queued_out, st.bytes_retrans,
		    st.srtt_us / 1e3, st.cwnd, m->side[i].max_snd,
		    m->side[i].max_rcv, m->side[i].burst);
		if (st.pkts_spurious > 0)
			printf("       %" PRIu64 " spurious losses, overtaken by "
			    "up to %" PRIu64 ", thresholds %" PRIu64 " packets "
			    "and %" PRIu64 "/8 RTT, min_rtt %.1f ms\n",
			    st.pkts_spurious, st.reorder_dist, st.reorder_pkts,
			    st.reorder_time8, st.min_rtt_us / 1e3);
	}
}

static int
check_transfer(const struct sim *m)
{
	int i;

	for (i = 0; i < 2; i++) {
		const struct side *sd = &m->side[i], *peer = &m->side[!i];

		CHECK(stream_error(sd->s) == STREAM_OK, "%s: error %d",
		    sd->name, stream_error(sd->s));
		CHECK(sd->got == peer->src_len, "%s: got %zu of %zu bytes",
		    sd->name, sd->got, peer->src_len);
		CHECK(peer->src_len == 0 ||
		    memcmp(sd->dst, peer->src, peer->src_len) == 0,
		    "%s: bytes differ from what %s sent", sd->name, peer->name);
		CHECK(stream_eof(sd->s) && stream_send_done(sd->s),
		    "%s: eof %d send_done %d", sd->name, stream_eof(sd->s),
		    stream_send_done(sd->s));
		CHECK(sd->bad == 0, "%s: refused %" PRIu64 " honest payloads",
		    sd->name, sd->bad);
	}
	return 0;
}

static double
cpu_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Both directions at once over the given link (one way only when
 * one_way) with buffers of buf bytes.  Goodput must reach min_share of the
 * link rate. */
static int
transfer_buf(const char *name, const struct link *l, size_t bytes,
    double garbage, double min_share, size_t buf, bool one_way)
{
	struct stream_conf c = conf_default();
	double cpu;
	uint8_t *a = rnd_alloc(bytes), *b = rnd_alloc(bytes);
	struct sim m;
	int rc;
	double rate;

	c.sndbuf = c.rcvbuf = buf;
	sim_init(&m, &c, &c, a, bytes, b, one_way ? 0 : bytes, l);
	m.garbage = garbage;
	cpu = cpu_secs();
	rc = run_done(&m, name);
	cpu = cpu_secs() - cpu;
	if (rc == 0)
		rc = check_transfer(&m);
	report(name, &m, bytes);
	pacing_worst = m.side[0].burst > m.side[1].burst ? m.side[0].burst :
	    m.side[1].burst;
	printf("    CPU: %.2f s for both streams and the simulator, %.0f MB/s "
	    "of stream data per CPU second\n", cpu,
	    (one_way ? 1 : 2) * bytes / cpu / 1e6);
	rate = bytes / ((double)(m.done_at - m.start) / 1e6);
	if (rc == 0 && rate < min_share * l->bw) {
		fail("%s: goodput %.2f MB/s, below %.0f%% of the link", name,
		    rate / 1e6, min_share * 100);
		rc = -1;
	}
	if (rc == 0 && garbage > 0) {
		CHECK(m.side[0].refused > 100 && m.side[1].refused > 100,
		    "only %" PRIu64 "/%" PRIu64 " garbage payloads injected",
		    m.side[0].refused, m.side[1].refused);
		printf("    garbage refused: %" PRIu64 " and %" PRIu64 "\n",
		    m.side[0].refused, m.side[1].refused);
	}
	sim_free(&m);
	free(a);
	free(b);
	return rc;
}

static int
transfer(const char *name, const struct link *l, size_t bytes,
    double garbage, double min_share)
{
	return transfer_buf(name, l, bytes, garbage, min_share, 1 << 20,
	    false);
}

static const struct link lan = {
	.delay_us = 10000, .bw = 12500000, .queue = 250000,
};

/* Pacing: at 12.5 MB/s and a 20-30 ms RTT a window is 300-400 packets;
 * the sender may burst only what its rate earns in a millisecond (~20). */
static int
test_clean(void)
{
	uint64_t worst = 0;
	int rc;

	rc = transfer("clean", &lan, 8 << 20, 0, 0.7);
	worst = pacing_worst;
	if (rc == 0 && worst > 32) {
		fail("clean: a burst of %" PRIu64 " packets", worst);
		rc = -1;
	}
	return rc;
}

static int
test_lossy(void)
{
	struct link l = lan;

	l.loss = 0.05;
	l.reorder = 0.1;
	l.reorder_us = 5000;
	return transfer("5% loss + reorder", &l, 4 << 20, 0, 0.015);
}

static int
test_reorder(void)
{
	struct link l = lan;

	l.reorder = 0.2;
	l.reorder_us = 5000;
	return transfer("20% reordered by 5 ms", &l, 8 << 20, 0, 0.6);
}

/* 100 ms one way: the window must grow to 2.5 MB. */
static int
test_long(void)
{
	struct link l = lan;

	l.delay_us = 100000;
	l.queue = 2500000;
	return transfer_buf("200 ms RTT, 8 MiB bufs", &l, 32 << 20, 0, 0.4,
	    8 << 20, false);
}

/* 10 Gbit/s, 1 ms: what the stream code costs per byte. */
static int
test_fast(void)
{
	struct link l = lan;

	l.delay_us = 1000;
	l.bw = 1250000000;
	l.queue = 2500000;
	return transfer_buf("10 Gbit/s, 2 ms RTT", &l, 128 << 20, 0, 0.6,
	    8 << 20, true);
}

/*
 * BBR on the lossy path: 25 ms each way, 1 % random loss each
 * way, a queue of a BDP.  A loss-based controller is held near the
 * Mathis bound there (CUBIC moved 0.3 MB/s); random loss must not slow
 * BBR: at least 60 % of the link, at 12.5 MB/s both ways and at 100 MB/s,
 * and with 3 % loss (beyond BBRLossThresh) at least 55 % (48 % before
 * the loss allowed while probing was counted above the path's own).
 */
static int
test_bbr_lossy(void)
{
	struct link l = lan;

	l.delay_us = 25000;
	l.loss = 0.01;
	l.queue = 625000;
	if (transfer_buf("50 ms RTT, 1% loss", &l, 48 << 20, 0, 0.6, 4 << 20,
	    false) == -1)
		return -1;
	l.bw = 100000000;
	l.queue = 5000000;
	if (transfer_buf("50 ms RTT, 1% loss, 100 MB/s", &l, 256 << 20, 0,
	    0.6, 16 << 20, true) == -1)
		return -1;
	l.loss = 0.03;
	return transfer_buf("50 ms RTT, 3% loss, 100 MB/s", &l, 256 << 20, 0,
	    0.55, 16 << 20, true);
}

/*
 * A clean 10 ms RTT path with a deep queue (80 ms of it): BBR fills the
 * link, not the queue.  After Startup and Drain (the first second) the
 * longest wait in the queue each way, added, keeps the RTT below
 * max_ratio times the minimum.  One way 2.5; both ways at once 3, since
 * ACKs then wait behind the other direction's data and arrive in bursts,
 * which inflates rate samples until cwnd (2 BDP) is the limit.
 */
static int
queue_run(const char *name, const uint8_t *a, size_t bytes, bool both,
    double max_ratio)
{
	struct stream_conf c = conf_default();
	struct link l = lan;
	struct sim m;
	double rate, rtt_min, rtt_max;
	int rc;

	l.delay_us = 5000;
	l.queue = 1000000;
	c.sndbuf = c.rcvbuf = 4 << 20;
	sim_init(&m, &c, &c, a, bytes, a, both ? bytes : 0, &l);
	m.link[0].qwatch_us = m.link[1].qwatch_us = m.start + 1000000;
	rc = run_done(&m, name);
	if (rc == 0)
		rc = check_transfer(&m);
	report(name, &m, bytes);
	rate = bytes / ((double)(m.done_at - m.start) / 1e6);
	rtt_min = 2 * l.delay_us / 1e3;
	rtt_max = rtt_min + (m.link[0].qmax_ns + m.link[1].qmax_ns) / 1e6;
	printf("    RTT after the first second: at most %.1f ms (%.2f times "
	    "the minimum)\n", rtt_max, rtt_max / rtt_min);
	if (rc == 0 && rate < 0.9 * l.bw) {
		fail("%s: goodput %.2f MB/s, below 90%% of the link", name,
		    rate / 1e6);
		rc = -1;
	}
	if (rc == 0 && rtt_max >= max_ratio * rtt_min) {
		fail("%s: RTT up to %.1f ms, min %.1f ms", name, rtt_max,
		    rtt_min);
		rc = -1;
	}
	sim_free(&m);
	return rc;
}

static int
test_bbr_queue(void)
{
	size_t bytes = 64 << 20;
	uint8_t *a = rnd_alloc(bytes);
	int rc;

	rc = queue_run("10 ms RTT, deep queue", a, bytes, false, 2.5);
	if (rc == 0)
		rc = queue_run("the same both ways", a, bytes, true, 3.0);
	free(a);
	return rc;
}

/*
 * The bottleneck halves at 4 s and doubles back at 8 s (20 ms RTT): two
 * seconds after each change, goodput over the next two seconds is at
 * least 80 % of the new rate and the estimate of the rate follows it.
 */
static int
test_bbr_change(void)
{
	static const double rates[] = { 12500000, 6250000, 12500000 };
	struct stream_conf c = conf_default();
	struct link l = lan;
	size_t bytes = 160 << 20, got;
	uint8_t *a = rnd_alloc(bytes);
	struct stream_stats st;
	struct sim m;
	double rate;
	int i, rc = 0;

	c.sndbuf = c.rcvbuf = 4 << 20;
	sim_init(&m, &c, &c, a, bytes, NULL, 0, &l);
	for (i = 0; i < 3 && rc == 0; i++) {
		m.link[0].bw = rates[i];
		m.limit_us = (4 * i + 2) * 1000000;
		if (run(&m) != 1) {
			fail("change: ended early");
			rc = -1;
			break;
		}
		got = m.side[1].got;
		m.limit_us += 2000000;
		if (run(&m) != 1) {
			fail("change: ended early");
			rc = -1;
			break;
		}
		rate = (m.side[1].got - got) / 2.0;
		stream_get_stats(m.side[0].s, &st);
		printf("change: link %.2f MB/s from %d s: goodput %.2f MB/s in "
		    "%d..%d s, estimate %.2f MB/s, srtt %.1f ms\n",
		    rates[i] / 1e6, 4 * i, rate / 1e6, 4 * i + 2, 4 * i + 4,
		    st.bw / 1e6, st.srtt_us / 1e3);
		if (rate < 0.8 * rates[i] || st.bw < 0.7 * rates[i] ||
		    st.bw > 1.4 * rates[i]) {
			fail("change: at %.2f MB/s, goodput %.2f MB/s, estimate "
			    "%.2f MB/s", rates[i] / 1e6, rate / 1e6, st.bw / 1e6);
			rc = -1;
		}
	}
	sim_free(&m);
	free(a);
	return rc;
}

/*
 * The path's delay triples at 2 s (a route change: 20 ms RTT to 60 ms).
 * BBR's min_rtt (10 s) then holds the window to a third of the new BDP
 * until it expires and ProbeRTT measures again; from then on goodput is
 * back to 80 % of the link.
 */
static int
test_bbr_rtt(void)
{
	struct stream_conf c = conf_default();
	struct link l = lan;
	size_t bytes = 256 << 20, got;
	uint8_t *a = rnd_alloc(bytes);
	struct stream_stats st;
	struct sim m;
	double rate;
	int rc = 0;

	l.queue = 1000000;
	c.sndbuf = c.rcvbuf = 8 << 20;
	sim_init(&m, &c, &c, a, bytes, NULL, 0, &l);
	m.limit_us = 2000000;
	if (run(&m) != 1)
		rc = -1;
	m.link[0].delay_us = m.link[1].delay_us = 30000;
	m.limit_us = 14000000;
	if (rc == 0 && run(&m) != 1)
		rc = -1;
	got = m.side[1].got;
	m.limit_us = 16000000;
	if (rc == 0 && run(&m) != 1)
		rc = -1;
	if (rc == -1) {
		fail("rtt: ended early");
		sim_free(&m);
		free(a);
		return -1;
	}
	rate = (m.side[1].got - got) / 2.0;
	stream_get_stats(m.side[0].s, &st);
	printf("rtt: 20 ms RTT, 60 ms from 2 s: goodput %.2f MB/s in 14..16 s "
	    "of %.2f MB/s, srtt %.1f ms\n", rate / 1e6, l.bw / 1e6,
	    st.srtt_us / 1e3);
	if (rate < 0.8 * l.bw) {
		fail("rtt: goodput %.2f MB/s after the RTT grew", rate / 1e6);
		rc = -1;
	}
	sim_free(&m);
	free(a);
	return rc;
}

static int
test_dup(void)
{
	struct link l = lan;

	l.loss = 0.01;
	l.dup = 0.2;
	l.reorder = 0.05;
	l.reorder_us = 3000;
	return transfer("20% dup + 1% loss", &l, 4 << 20, 0, 0.05);
}

/*
 * netem's reordering (tests/netem.c): 5 % of packets skip the 40 ms
 * delay each way, so each overtakes 40 ms of packets and its round trip
 * is half the path's, or nothing when its ACK skips the delay too.
 * Without and with 2 % loss each way, 64 MiB one way at 25 MB/s: the
 * sender must learn that the path reorders (spurious losses, then loss
 * by time only), keep min_rtt at the path's 80 ms, and keep most of the
 * link (before, 0.56 MB/s: min_rtt fell to a fraction of a ms).
 */
static int
netem_run(const char *name, double loss, double min_share)
{
	struct stream_conf c = conf_default();
	struct link l = lan;
	size_t bytes = 64 << 20;
	uint8_t *a = rnd_alloc(bytes);
	struct stream_stats st;
	struct sim m;
	double rate;
	int rc;

	l.delay_us = 40000;
	l.bw = 25000000;
	l.queue = 2000000;
	l.early = 0.05;
	l.loss = loss;
	c.sndbuf = c.rcvbuf = 8 << 20;
	sim_init(&m, &c, &c, a, bytes, NULL, 0, &l);
	rc = run_done(&m, name);
	if (rc == 0)
		rc = check_transfer(&m);
	report(name, &m, bytes);
	rate = bytes / ((double)(m.done_at - m.start) / 1e6);
	stream_get_stats(m.side[0].s, &st);
	if (rc == 0 && rate < min_share * l.bw) {
		fail("%s: goodput %.2f MB/s, below %.0f%% of the link", name,
		    rate / 1e6, min_share * 100);
		rc = -1;
	}
	if (rc == 0 && (st.pkts_spurious == 0 || st.reorder_pkts != 0 ||
	    st.reorder_dist < 100)) {
		fail("%s: %" PRIu64 " spurious losses, overtaken by %" PRIu64
		    ", packet threshold %" PRIu64, name, st.pkts_spurious,
		    st.reorder_dist, st.reorder_pkts);
		rc = -1;
	}
	if (rc == 0 && (st.min_rtt_us < 80000 || st.min_rtt_us > 85000 ||
	    st.srtt_us < 78000)) {
		fail("%s: min_rtt %.1f ms, srtt %.1f ms for an 80 ms path",
		    name, st.min_rtt_us / 1e3, st.srtt_us / 1e3);
		rc = -1;
	}
	sim_free(&m);
	free(a);
	return rc;
}

static int
test_netem(void)
{
	if (netem_run("40 ms, 5% reordered", 0, 0.7) == -1)
		return -1;
	return netem_run("40 ms, 5% reordered, 2% loss", 0.02, 0.6);
}

/*
 * The thresholds go back when reordering stops (RFC 8985 §6.2 step 4):
 * 20 ms each way, 1 % loss throughout, 5 % of packets skipping the delay
 * for the first 3 s.  Then loss is by time only; 16 loss episodes
 * without a spurious loss later, the packet threshold is 3 again and the
 * time threshold 9/8, so real losses are found quickly again.
 */
static int
test_reorder_decay(void)
{
	struct stream_conf c = conf_default();
	struct link l = lan;
	size_t bytes = 256 << 20;
	uint8_t *a = rnd_alloc(bytes);
	struct stream_stats st;
	struct sim m;
	int rc = 0;

	l.delay_us = 20000;
	l.queue = 1000000;
	l.loss = 0.01;
	l.early = 0.05;
	c.sndbuf = c.rcvbuf = 4 << 20;
	sim_init(&m, &c, &c, a, bytes, NULL, 0, &l);
	m.limit_us = 3000000;
	if (run(&m) != 1)
		rc = -1;
	stream_get_stats(m.side[0].s, &st);
	printf("decay: reordering for 3 s: %" PRIu64 " spurious losses, "
	    "thresholds %" PRIu64 " packets, %" PRIu64 "/8 RTT\n",
	    st.pkts_spurious, st.reorder_pkts, st.reorder_time8);
	if (rc == 0 && (st.pkts_spurious == 0 || st.reorder_pkts != 0)) {
		fail("decay: reordering not learned");
		rc = -1;
	}
	m.link[0].early = m.link[1].early = 0;
	m.limit_us = 8000000;
	if (rc == 0 && run(&m) != 1)
		rc = -1;
	stream_get_stats(m.side[0].s, &st);
	printf("decay: 5 s later, without: %" PRIu64 " spurious losses, "
	    "%" PRIu64 " lost, thresholds %" PRIu64 " packets, %" PRIu64
	    "/8 RTT\n", st.pkts_spurious, st.pkts_lost, st.reorder_pkts,
	    st.reorder_time8);
	if (rc == 0 && (st.reorder_pkts != 3 || st.reorder_time8 != 9)) {
		fail("decay: the thresholds did not come back");
		rc = -1;
	}
	sim_free(&m);
	free(a);
	return rc;
}

static int
test_garbage(void)
{
	struct link l = lan;

	l.loss = 0.02;
	l.reorder = 0.05;
	l.reorder_us = 3000;
	return transfer("garbage injected", &l, 2 << 20, 0.1, 0.02);
}

/* A reader much slower than the link: MAX_DATA must hold the sender. */
static int
test_slow_reader(void)
{
	struct stream_conf ca = conf_default(), cb = conf_default();
	size_t bytes = 2 << 20;
	uint8_t *a = rnd_alloc(bytes);
	struct sim m;
	int rc;
	double rate;

	ca.sndbuf = 256 << 10;
	cb.rcvbuf = 128 << 10;
	sim_init(&m, &ca, &cb, a, bytes, NULL, 0, &lan);
	m.side[1].read_chunk = 16 << 10;
	m.side[1].read_every_us = 10000;	/* 1.6 MB/s */
	rc = run_done(&m, "slow reader");
	if (rc == 0)
		rc = check_transfer(&m);
	report("slow reader", &m, bytes);
	rate = bytes / ((double)(m.done_at - m.start) / 1e6);
	if (rc == 0 && (m.side[0].max_snd > ca.sndbuf ||
	    m.side[1].max_rcv > cb.rcvbuf || rate > 2.0e6 || rate < 1.0e6)) {
		fail("slow reader: buffers %" PRIu64 "/%" PRIu64 ", rate %.2f"
		    " MB/s", m.side[0].max_snd, m.side[1].max_rcv, rate / 1e6);
		rc = -1;
	}
	sim_free(&m);
	free(a);
	return rc;
}

/* FIN at offset 0 in both directions, and in one only. */
static int
test_empty(void)
{
	struct stream_conf c = conf_default();
	uint8_t one[1000];
	struct sim m;
	int rc;

	sim_init(&m, &c, &c, NULL, 0, NULL, 0, &lan);
	rc = run_done(&m, "zero-length");
	if (rc == 0)
		rc = check_transfer(&m);
	report("zero-length both ways", &m, 0);
	sim_free(&m);
	if (rc == -1)
		return -1;
	rnd_fill(one, sizeof one);
	sim_init(&m, &c, &c, one, sizeof one, NULL, 0, &lan);
	m.link[0].loss = m.link[1].loss = 0.3;
	rc = run_done(&m, "one way");
	if (rc == 0)
		rc = check_transfer(&m);
	report("1000 bytes / 0, 30% loss", &m, 0);
	sim_free(&m);
	return rc;
}

/*
 * Short transfers over a bad path, each side exiting as soon as
 * stream_can_close allows: the last ACK is often lost, and the side that
 * left first must have stayed long enough for the other to finish.
 */
static int
test_linger(void)
{
	struct stream_conf c = conf_default();
	uint8_t a[20000], b[5000];
	uint64_t linger = 0, worst = 0;
	int i, rc = 0;

	c.idle_us = 10000000;
	for (i = 0; i < 100 && rc == 0; i++) {
		struct sim m;
		struct link l = lan;

		l.loss = 0.2;
		rnd_fill(a, sizeof a);
		rnd_fill(b, sizeof b);
		sim_init(&m, &c, &c, a, sizeof a, b, i % 3 ? sizeof b : 0, &l);
		rc = run_done(&m, "linger");
		if (rc == 0)
			rc = check_transfer(&m);
		if (m.now - m.done_at > worst)
			worst = m.now - m.done_at;
		linger += m.now - m.done_at;
		sim_free(&m);
	}
	printf("linger: %d short transfers at 20%% loss all ended cleanly on "
	    "both sides; both gone %.0f ms after done on average, %.0f ms at "
	    "worst\n", i, linger / 1e3 / i, worst / 1e3);
	return rc;
}

/* Nothing to send: PINGs at the keepalive interval keep both alive. */
/* Two streams on the LAN that never finish (no side writes its FIN),
 * run for limit_us: 0, or -1 (freed) when the run failed. */
static int
open_pair(struct sim *m, const struct stream_conf *c, uint64_t limit_us)
{
	sim_init(m, c, c, NULL, 0, NULL, 0, &lan);
	m->side[0].fin_sent = m->side[1].fin_sent = true;
	m->limit_us = limit_us;
	if (run(m) != 1) {
		sim_free(m);
		return -1;
	}
	return 0;
}

static int
test_keepalive(void)
{
	struct stream_conf c = conf_default();
	struct sim m;
	int i, rc = 0;

	c.keepalive_us = 1000000;
	c.idle_us = 5000000;
	if (open_pair(&m, &c, 30000000) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		struct side *sd = &m.side[i];

		printf("keepalive %s: %" PRIu64 " PINGs in 30 s, longest "
		    "silence %.3f s\n", sd->name, sd->pings, sd->max_gap / 1e6);
		if (stream_error(sd->s) != STREAM_OK || sd->pings < 25 ||
		    sd->pings > 31 || sd->max_gap > c.keepalive_us) {
			fail("keepalive %s: error %d, %" PRIu64 " PINGs, gap %"
			    PRIu64 " us", sd->name, stream_error(sd->s),
			    sd->pings, sd->max_gap);
			rc = -1;
		}
	}
	sim_free(&m);
	return rc;
}

/* Move what a and b have to send to each other, in order, nothing lost,
 * every 100 us for dur us from now; but a's packets number skip to
 * skip + hold - 1 of this exchange are held back (into held).  Returns
 * the time after it. */
static uint64_t
exchange(struct stream *a, struct stream *b, uint64_t now, uint64_t dur, size_t skip,
    size_t hold, uint8_t (*held)[MTU], size_t *heldlen, uint64_t *heldpn, size_t *nheld)
{
	uint8_t buf[MTU];
	uint64_t pn, t;
	size_t n, k = 0;

	for (t = now; t < now + dur; t += 100) {
		while ((n = stream_output(a, t, &pn, buf, sizeof buf)) > 0) {
			if (k >= skip && k < skip + hold) {
				memcpy(held[*nheld], buf, n);
				heldlen[*nheld] = n;
				heldpn[(*nheld)++] = pn;
			} else {
				stream_input(b, t, pn, buf, n);
			}
			k++;
		}
		while ((n = stream_output(b, t, &pn, buf, sizeof buf)) > 0)
			stream_input(a, t, pn, buf, n);
	}
	return t;
}

/* A reader that keeps up reads each message from the start of its
 * receive buffer (what is there is still in the CPU's caches); bytes are
 * never moved while any are unread or out of order. */
static int
test_rbuf(void)
{
	struct stream_conf c = conf_default();
	struct stream *a = stream_new(&c, 0), *b = stream_new(&c, 0);
	uint8_t msg[8000], held[16][MTU];
	size_t heldlen[16], nheld = 0, n, got, i;
	uint64_t heldpn[16], now = 0;
	const void *p, *start = NULL;
	int rc = 0, round;

	if (a == NULL || b == NULL) {
		fail("rbuf: stream_new");
		return -1;
	}
	for (i = 0; i < 10; i++)	/* past the first round trips */
		now = exchange(a, b, now, 1000, 0, 0, held, heldlen, heldpn, &nheld);
	for (round = 0; round < 4 && rc == 0; round++) {
		memset(msg, 'a' + round, sizeof msg);
		if (stream_write(a, msg, sizeof msg) != sizeof msg) {
			fail("rbuf: write");
			rc = -1;
			break;
		}
		/* Round 2 holds back its second and third packets: the
		 * first is read, the rest waits out of order meanwhile (one
		 * step, before the sender could take them for lost). */
		now = exchange(a, b, now, round == 2 ? 100 : 1000, 1, round == 2 ? 2 : 0,
		    held, heldlen, heldpn, &nheld);
		n = stream_read_peek(b, &p);
		if (round == 0)
			start = p;
		if (p != start || (round != 2 && n != sizeof msg) ||
		    (round == 2 && (nheld != 2 || n == 0 || n >= sizeof msg)) ||
		    memcmp(p, msg, n) != 0) {
			fail("rbuf: round %d: %zu bytes at %+td from the start, %zu held",
			    round, n, (const uint8_t *)p - (const uint8_t *)start, nheld);
			rc = -1;
			break;
		}
		/* Read in two goes: nothing moves until all is read. */
		stream_read_done(b, n / 2);
		if (stream_read_peek(b, &p) != n - n / 2 ||
		    p != (const uint8_t *)start + n / 2) {
			fail("rbuf: round %d: the rest moved", round);
			rc = -1;
		}
		stream_read_done(b, n - n / 2);
		got = n;
		while (nheld > 0) {
			nheld--;
			stream_input(b, now, heldpn[nheld], held[nheld], heldlen[nheld]);
		}
		/* What waited out of order follows on where it lies. */
		if (got < sizeof msg) {
			n = stream_read_peek(b, &p);
			if (n != sizeof msg - got || p != (const uint8_t *)start + got ||
			    memcmp(p, msg, n) != 0) {
				fail("rbuf: round %d: %zu more bytes at %+td, want %zu at %+zu",
				    round, n, (const uint8_t *)p - (const uint8_t *)start,
				    sizeof msg - got, got);
				rc = -1;
			}
			stream_read_done(b, n);
		}
		for (i = 0; i < 3; i++)
			now = exchange(a, b, now, 1000, 0, 0, held, heldlen, heldpn, &nheld);
	}
	stream_free(a);
	stream_free(b);
	return rc;
}

/* The length of test datagram id: 4 to max bytes. */
static size_t
dg_len(unsigned id, size_t max)
{
	size_t len = 1 + id % (max - 4);

	return len < 4 ? 4 : len;
}

/* Datagrams: 2000 through a link that loses 5 % and reorders; each one
 * that arrives is intact and arrives once, none is sent twice, and the
 * size limit and the queue bound hold. */
static int
test_dgram(void)
{
	struct stream_conf c = conf_default();
	struct stream *a = stream_new(&c, 0), *b = stream_new(&c, 0);
	static uint8_t seen[2000];
	uint8_t buf[MTU], msg[MTU], held[8][MTU];
	size_t heldlen[8], nheld = 0, big = 0;
	uint64_t now = 0, pn, heldpn[8];
	struct stream_stats st;
	unsigned next = 0, got = 0, lost = 0;
	int rc = 0;
	ssize_t n;

	if (a == NULL || b == NULL) {
		fail("dgram: stream_new");
		return -1;
	}
	big = stream_dgram_max(a) + 1;
	if (stream_dgram_send(a, msg, big) != -1 || errno != EMSGSIZE) {
		fail("dgram: %zu bytes accepted, max is %zu", big, big - 1);
		rc = -1;
	}
	for (; now < 20000000; now += 500) {
		stream_get_stats(a, &st);
		if (st.dgrams_sent == 2000 && nheld == 0)
			break;
		/* The sender keeps its queue full; the queue must say no
		 * rather than grow. */
		while (next < 2000) {
			size_t len = dg_len(next, stream_dgram_max(a));

			memset(msg, next & 0xff, len);
			memcpy(msg, &next, sizeof next);
			if (stream_dgram_send(a, msg, len) == 0)
				break;
			next++;
		}
		while ((n = stream_output(a, now, &pn, buf, sizeof buf)) > 0) {
			if (rndf() < 0.05) {
				lost++;
				continue;
			}
			/* Hold a few and let them out in reverse: reordering. */
			memcpy(held[nheld], buf, n);
			heldlen[nheld] = n;
			heldpn[nheld++] = pn;
			if (nheld == 8)
				break;
		}
		while (nheld > 0) {
			nheld--;
			stream_input(b, now, heldpn[nheld], held[nheld], heldlen[nheld]);
		}
		while ((n = stream_output(b, now, &pn, buf, sizeof buf)) > 0)
			stream_input(a, now, pn, buf, n);
		while ((n = stream_dgram_recv(b, msg, sizeof msg)) >= 0) {
			unsigned id;
			ssize_t k;

			memcpy(&id, msg, sizeof id);
			if (n < 4 || id >= 2000 || seen[id]++) {
				fail("dgram: bad or repeated datagram %u", id);
				rc = -1;
				break;
			}
			for (k = 4; k < n; k++)
				if (msg[k] != (id & 0xff))
					break;
			if (k != n || (size_t)n != dg_len(id, stream_dgram_max(a))) {
				fail("dgram: datagram %u corrupted", id);
				rc = -1;
			}
			got++;
		}
	}
	stream_get_stats(a, &st);
	if (next != 2000 || got == 0 || got > 2000 || st.bytes_retrans != 0) {
		fail("dgram: sent %u, received %u, %llu bytes retransmitted", next,
		    got, (unsigned long long)st.bytes_retrans);
		rc = -1;
	}
	/* Every datagram the link did not drop arrived; some were dropped. */
	if (st.dgrams_sent != 2000 || got < 2000 - lost || got == 2000) {
		fail("dgram: %u of 2000 arrived with %u packets dropped", got, lost);
		rc = -1;
	}
	{
		struct stream_stats sb;

		stream_get_stats(b, &sb);
		printf("dgram: %u of 2000 datagrams arrived intact and once, %u packets "
		    "dropped by the link, 0 sent twice, %llu dropped by the receiver\n",
		    got, lost, (unsigned long long)sb.dgrams_dropped);
	}
	stream_free(a);
	stream_free(b);
	return rc;
}

/* The end of the data goes after every datagram queued before it (-u:
 * the peer stops taking datagrams at the end, so one that the FIN
 * overtook would be lost, or worse): ten small datagrams, then FIN, on a
 * loss-free path; B must have all ten when it sees the end. */
static int
test_dgram_fin(void)
{
	struct stream_conf c = conf_default();
	struct stream *a = stream_new(&c, 0), *b = stream_new(&c, 0);
	uint8_t buf[MTU], msg[100];
	uint64_t now = 0, pn;
	unsigned i, got = 0;
	int rc = 0;
	ssize_t n;

	if (a == NULL || b == NULL) {
		fail("dgram_fin: stream_new");
		return -1;
	}
	for (i = 0; i < 10; i++) {
		memset(msg, (int)i, sizeof msg);
		if (stream_dgram_send(a, msg, sizeof msg) != 1) {
			fail("dgram_fin: datagram %u not queued", i);
			rc = -1;
		}
	}
	stream_close_write(a);
	if (stream_dgram_send(a, msg, sizeof msg) != -1 || errno != EPIPE) {
		fail("dgram_fin: a datagram queued after the end of the data");
		rc = -1;
	}
	for (; now < 1000000 && !stream_eof(b); now += 100) {
		while (!stream_eof(b) && (n = stream_output(a, now, &pn, buf,
		    sizeof buf)) > 0) {
			stream_input(b, now, pn, buf, n);
			while (stream_dgram_recv(b, msg, sizeof msg) >= 0)
				got++;
			if (stream_eof(b) && got != 10) {
				fail("dgram_fin: the end of the data came after "
				    "%u of the 10 datagrams sent before it", got);
				rc = -1;
			}
		}
		while ((n = stream_output(b, now, &pn, buf, sizeof buf)) > 0)
			stream_input(a, now, pn, buf, n);
	}
	if (!stream_eof(b)) {
		fail("dgram_fin: no end of the data in 1 s");
		rc = -1;
	}
	stream_free(a);
	stream_free(b);
	return rc;
}

/* Path MTU: a link that drops payloads over 1300 bytes.  The search
 * (RFC 8899) settles within PMTU_STEP below it, starting from 1170 with
 * 1422 allowed; data sent meanwhile arrives intact. */
static int
test_pmtu(void)
{
	struct stream_conf c = conf_default();
	struct stream *a, *b;
	static uint8_t src[1 << 20], dst[1 << 20];
	uint8_t buf[2048];
	size_t put = 0, got = 0, big = 0;
	uint64_t now = 0, pn;
	struct stream_stats st;
	int rc = 0;
	size_t n;

	c.mtu = 1170;
	c.max_mtu = 1422;
	a = stream_new(&c, 0);
	b = stream_new(&c, 0);
	if (a == NULL || b == NULL) {
		fail("pmtu: stream_new");
		return -1;
	}
	rnd_fill(src, sizeof src);
	for (; now < 30000000 && got < sizeof src; now += 200) {
		put += stream_write(a, src + put, sizeof src - put);
		while ((n = stream_output(a, now, &pn, buf, sizeof buf)) > 0) {
			if (n > 1300) {
				big = n > big ? n : big;
				continue;	/* too big for the link */
			}
			stream_input(b, now, pn, buf, n);
		}
		while ((n = stream_output(b, now, &pn, buf, sizeof buf)) > 0)
			stream_input(a, now, pn, buf, n);
		got += stream_read(b, dst + got, sizeof dst - got);
	}
	stream_get_stats(a, &st);
	if (got != sizeof src || memcmp(src, dst, sizeof src) != 0) {
		fail("pmtu: %zu of %zu bytes arrived intact", got, sizeof src);
		rc = -1;
	}
	n = st.mtu;
	if (n < 1300 - 16 || n > 1300) {
		fail("pmtu: MTU %zu after the search, want 1284..1300", n);
		rc = -1;
	}
	if (big == 0) {
		fail("pmtu: never probed above the link's limit");
		rc = -1;
	}
	printf("pmtu: settled at %zu bytes (link 1300, probes up to %zu lost), "
	    "1 MiB intact, %llu bytes retransmitted\n", n, big,
	    (unsigned long long)st.bytes_retrans);
	stream_free(a);
	stream_free(b);
	return rc;
}

/* stream_ping on a quiet stream: an ack-eliciting packet at once, which
 * the peer acknowledges. */
static int
test_ping(void)
{
	struct stream_conf c = conf_default();
	struct stream_stats st0, st1;
	uint8_t buf[MTU];
	struct scan sc;
	struct sim m;
	uint64_t pn;
	size_t n;
	int rc = 0;

	if (open_pair(&m, &c, 1000000) == -1)
		return -1;
	stream_get_stats(m.side[1].s, &st0);
	stream_ping(m.side[0].s);
	n = stream_output(m.side[0].s, m.now, &pn, buf, sizeof buf);
	scan(buf, n, &sc);
	if (n == 0 || !sc.ping) {
		fail("ping: stream_output gave %zu bytes without PING", n);
		rc = -1;
	} else if (stream_output(m.side[0].s, m.now, &pn, buf,
	    sizeof buf) != 0) {
		fail("ping: more than one packet for one stream_ping");
		rc = -1;
	} else if (stream_input(m.side[1].s, m.now, pn, buf, n) != 0 ||
	    (stream_get_stats(m.side[1].s, &st1), st1.pkts_recv) !=
	    st0.pkts_recv + 1 || stream_deadline(m.side[1].s) >
	    m.now + 25000) {
		fail("ping: the peer does not acknowledge it within 25 ms");
		rc = -1;
	} else
		printf("ping: stream_ping sent a PING at once; the peer's ACK "
		    "is due within %.1f ms\n",
		    (stream_deadline(m.side[1].s) - m.now) / 1e3);
	sim_free(&m);
	return rc;
}

/*
 * RFC 9000 §13.2.1: an ACK goes at once when a packet leaves a gap and
 * when one fills it, so that the sender sees reordering as it is.  Three
 * PINGs arrive as 0, 2 (a gap: two ranges, at once), 1 (filled: one).
 */
static int
test_ack_gap(void)
{
	struct stream_conf c = conf_default();
	uint8_t pkt[3][MTU], buf[MTU];
	size_t len[3], n;
	uint64_t pn[3], t, p;
	struct scan sc;
	struct sim m;
	int i;

	if (open_pair(&m, &c, 1000000) == -1)
		return -1;
	for (i = 0; i < 3; i++) {
		stream_ping(m.side[0].s);
		len[i] = stream_output(m.side[0].s, m.now, &pn[i], pkt[i], MTU);
		CHECK(len[i] > 0, "ack_gap: no PING");
	}
	t = m.now + 1000;
	CHECK(stream_input(m.side[1].s, t, pn[0], pkt[0], len[0]) == 0 &&
	    stream_deadline(m.side[1].s) > t, "ack_gap: an in-order PING "
	    "acknowledged at once");
	t += 20000;
	CHECK((n = stream_output(m.side[1].s, t, &p, buf, sizeof buf)) > 0,
	    "ack_gap: no ACK within max_ack_delay");
	t += 1000;
	CHECK(stream_input(m.side[1].s, t, pn[2], pkt[2], len[2]) == 0 &&
	    stream_deadline(m.side[1].s) <= t, "ack_gap: a gap not "
	    "acknowledged at once");
	n = stream_output(m.side[1].s, t, &p, buf, sizeof buf);
	scan(buf, n, &sc);
	CHECK(sc.ack && sc.ack_largest == pn[2] && sc.ack_ranges == 2,
	    "ack_gap: after the gap, ACK of %" PRIu64 " with %" PRIu64
	    " ranges", sc.ack_largest, sc.ack_ranges);
	t += 1000;
	CHECK(stream_input(m.side[1].s, t, pn[1], pkt[1], len[1]) == 0 &&
	    stream_deadline(m.side[1].s) <= t, "ack_gap: a filled gap not "
	    "acknowledged at once");
	n = stream_output(m.side[1].s, t, &p, buf, sizeof buf);
	scan(buf, n, &sc);
	CHECK(sc.ack && sc.ack_largest == pn[2] && sc.ack_ranges == 1,
	    "ack_gap: after the fill, ACK of %" PRIu64 " with %" PRIu64
	    " ranges", sc.ack_largest, sc.ack_ranges);
	sim_free(&m);
	printf("ack_gap: packets 0, 2, 1: the gap and its filling were "
	    "acknowledged at once, as 2 ranges then 1\n");
	return 0;
}

/* A payload held in the test's hands, to deliver when it chooses. */
struct hpkt {
	uint8_t buf[MTU];
	size_t len;
	uint64_t pn;
};

/* Everything from's stream_output has at now, into h (at most max):
 * how many. */
static size_t
take(struct stream *from, uint64_t now, struct hpkt *h, size_t max)
{
	size_t n = 0;

	while (n < max && (h[n].len = stream_output(from, now, &h[n].pn,
	    h[n].buf, MTU)) > 0)
		n++;
	return n;
}

/* h[0..n) into to at now: how many it refused. */
static int
give(struct stream *to, uint64_t now, const struct hpkt *h, size_t n)
{
	int bad = 0;

	while (n-- > 0)
		bad += stream_input(to, now, h->pn, h->buf, h->len) != 0, h++;
	return bad;
}

/* Two streams at now that have exchanged 100 bytes each way with FIN
 * on a loss-free path and read them all, neither saying WRITTEN yet:
 * 0, or -1 (freed). */
static int
finished_pair(struct stream **a, struct stream **b, uint64_t *now)
{
	struct stream_conf c = conf_default();
	uint8_t msg[100], got[100], held[1][MTU];
	size_t heldlen[1], nheld = 0;
	uint64_t heldpn[1];
	int i;

	memset(msg, 'x', sizeof msg);
	*a = stream_new(&c, *now);
	*b = stream_new(&c, *now);
	if (*a == NULL || *b == NULL)
		abort();
	stream_write(*a, msg, sizeof msg);
	stream_write(*b, msg, sizeof msg);
	stream_close_write(*a);
	stream_close_write(*b);
	for (i = 0; i < 20; i++) {
		*now = exchange(*a, *b, *now, 1000, 0, 0, held, heldlen, heldpn,
		    &nheld);
		while (stream_read(*a, got, sizeof got) > 0 ||
		    stream_read(*b, got, sizeof got) > 0)
			;
	}
	if (!stream_eof(*a) || !stream_eof(*b) || !stream_send_done(*a) ||
	    !stream_send_done(*b)) {
		fail("finished_pair: the 100 bytes did not get through");
		stream_free(*a);
		stream_free(*b);
		return -1;
	}
	return 0;
}

/* Once the peer is done (its DONE is here) the idle limit no longer
 * applies (timers()), so stream_deadline must not keep giving it: p2pcat,
 * still writing its output out, polled without waiting, at full CPU. */
static int
test_done_idle(void)
{
	struct stream *a, *b;
	uint8_t held[1][MTU], buf[MTU];
	size_t heldlen[1], nheld = 0;
	uint64_t now = 0, heldpn[1], late, pn;
	int rc = 0;

	if (finished_pair(&a, &b, &now) == -1)
		return -1;
	stream_written(a);
	stream_written(b);
	now = exchange(a, b, now, 20000, 0, 0, held, heldlen, heldpn, &nheld);
	CHECK(stream_can_close(a, now) && stream_can_close(b, now),
	    "done_idle: not both done after WRITTEN and DONE");
	/* Long after the last packet in: no deadline, or one to come. */
	late = now + 2 * conf_default().idle_us;
	CHECK(stream_error(a) == STREAM_OK && stream_error(b) == STREAM_OK,
	    "done_idle: an error before the idle limit");
	/* Their timers run then, as the session's loop would run them. */
	while (stream_output(a, late, &pn, buf, sizeof buf) > 0 ||
	    stream_output(b, late, &pn, buf, sizeof buf) > 0)
		;
	CHECK(stream_deadline(a) > late && stream_deadline(b) > late,
	    "done_idle: deadlines %" PRId64 " and %" PRId64 " us from now, after "
	    "the peer was done", (int64_t)(stream_deadline(a) - late),
	    (int64_t)(stream_deadline(b) - late));
	stream_free(a);
	stream_free(b);
	return rc;
}

/* The second case of early_done: all data and FINs through, our WRITTEN
 * at the peer, then a DONE but never the peer's own WRITTEN. */
static int
early_done_unwritten(void)
{
	struct stream *a, *b;
	uint8_t held[1][MTU], buf[MTU], done = 0x1d;	/* FT_DONE */
	size_t heldlen[1], nheld = 0;
	uint64_t now = 0, heldpn[1], pn;
	int taken;

	if (finished_pair(&a, &b, &now) == -1)
		return -1;
	stream_written(a);
	now = exchange(a, b, now, 20000, 0, 0, held, heldlen, heldpn, &nheld);
	CHECK(stream_peer_written(b), "early_done: our WRITTEN did not arrive");
	taken = stream_input(a, now, 1000000, &done, 1);
	now += 2 * conf_default().idle_us;
	while (stream_output(a, now, &pn, buf, sizeof buf) > 0)
		;
	CHECK(taken == -1 && stream_error(a) == STREAM_IDLE, "early_done: a "
	    "DONE without the peer's WRITTEN %s, and %.0f s of silence later "
	    "the error is %d, not STREAM_IDLE", taken == -1 ? "refused" :
	    "taken", 2 * conf_default().idle_us / 1e6, stream_error(a));
	stream_free(a);
	stream_free(b);
	return 0;
}

/* A DONE that comes before the peer could be done (before both sides
 * said WRITTEN) is refused: taken, it lifted the idle limit, so a peer
 * (any caller of a -e service) could keep a session, and its slot, for
 * ever by going quiet after it. */
static int
test_early_done(void)
{
	struct stream_conf c = conf_default();
	struct stream *a = stream_new(&c, 0);
	uint8_t buf[MTU], msg[100] = { 0 }, done = 0x1d;	/* FT_DONE */
	uint64_t pn, now = 0;
	int rc = 0, taken;

	if (a == NULL) {
		fail("early_done: stream_new");
		return -1;
	}
	stream_write(a, msg, sizeof msg);
	stream_close_write(a);
	while (stream_output(a, now, &pn, buf, sizeof buf) > 0)
		;
	taken = stream_input(a, now, 0, &done, 1);
	/* Silence, long past the idle limit: the timers run. */
	now += 2 * c.idle_us;
	while (stream_output(a, now, &pn, buf, sizeof buf) > 0)
		;
	if (taken != -1 || stream_error(a) != STREAM_IDLE) {
		fail("early_done: a DONE before the peer's FIN %s, and %.0f s "
		    "of silence later the error is %d, not STREAM_IDLE",
		    taken == -1 ? "refused" : "taken", 2 * c.idle_us / 1e6,
		    stream_error(a));
		rc = -1;
	}
	stream_free(a);
	return rc == 0 ? early_done_unwritten() : rc;
}

/*
 * A packet declared lost and then acknowledged (spurious, RFC 9002
 * §6.1's reordering) counts as acknowledged in full: B's WRITTEN is
 * overtaken by three PINGs, so B calls it lost (kPacketThreshold) and
 * queues it again; then it arrives after all and the peer's ACK says so
 * (A, which has not said WRITTEN, cannot answer with DONE).  WRITTEN
 * is not sent again, and the congestion controller counts the
 * packet delivered (in Startup the window grows by what is delivered).
 */
static int
test_spurious(void)
{
	struct stream *a, *b;
	struct stream_stats st0, st1;
	struct hpkt w, p[4], ack[4];
	struct scan sc;
	uint64_t now = 0;
	size_t np, nack;
	int i, rc = 0;

	if (finished_pair(&a, &b, &now) == -1)
		return -1;
	stream_written(b);
	CHECK(take(b, now, &w, 1) == 1 && (scan(w.buf, w.len, &sc), sc.written),
	    "spurious: no WRITTEN from B");
	for (i = 0; i < 3; i++) {
		stream_ping(b);
		CHECK(take(b, now, &p[i], 1) == 1, "spurious: no PING");
	}
	give(a, now + 100, p, 3);
	nack = take(a, now + 100, ack, 4);
	stream_get_stats(b, &st0);
	give(b, now + 200, ack, nack);
	stream_get_stats(b, &st1);
	CHECK(st1.pkts_lost == st0.pkts_lost + 1, "spurious: the WRITTEN was "
	    "not declared lost (%" PRIu64 " lost)", st1.pkts_lost - st0.pkts_lost);
	/* It arrives; A acknowledges it; B hears so before it sends again. */
	give(a, now + 300, &w, 1);
	nack = take(a, now + 300, ack, 4);
	stream_get_stats(b, &st0);
	give(b, now + 400, ack, nack);
	stream_get_stats(b, &st1);
	CHECK(st1.pkts_spurious == st0.pkts_spurious + 1, "spurious: the "
	    "late WRITTEN not found spurious");
	np = take(b, now + 400, p, 4);
	for (i = 0; i < (int)np; i++) {
		scan(p[i].buf, p[i].len, &sc);
		if (sc.written) {
			fail("spurious: WRITTEN sent again after its packet "
			    "was acknowledged");
			rc = -1;
		}
	}
	if (st1.cwnd != st0.cwnd + w.len) {
		fail("spurious: the window went from %" PRIu64 " to %" PRIu64
		    " on the late ACK of %zu bytes: not counted delivered",
		    st0.cwnd, st1.cwnd, w.len);
		rc = -1;
	}
	if (rc == 0)
		printf("spurious: a WRITTEN called lost and then acknowledged "
		    "is not sent again; its %zu bytes counted delivered\n",
		    w.len);
	stream_free(a);
	stream_free(b);
	return rc;
}

/* A PING from one stream into another at now, with what else it has:
 * the packet number of the first payload. */
static uint64_t
ping_to(struct stream *from, struct stream *to, uint64_t now)
{
	struct hpkt h[4];
	size_t n;

	stream_ping(from);
	n = take(from, now, h, 4);
	give(to, now, h, n);
	return n > 0 ? h[0].pn : UINT64_MAX;
}

/*
 * RFC 9000 §13.2.4 lets B stop acknowledging what an acknowledged ACK of
 * its covered; B waits a loss delay (1 ms here) first, so that a packet
 * merely overtaken is still acknowledged.  Twenty ACKs of B's are
 * acknowledged within 0.2 ms, more than B keeps apart (PRUNE_SLOTS), so
 * later ones share the last slot.  Then A's packet 1 is overtaken by 2,
 * B's ACK of 2 is acknowledged at 0.9 ms, and 1 arrives at 1.3 ms:
 * within a loss delay of that, so B must take and acknowledge it.
 */
static int
test_prune_full(void)
{
	struct stream *a, *b;
	struct stream_stats st0, st1;
	struct hpkt h1[4], h2[4];
	uint64_t now = 0, t;
	size_t n1, n2;
	int i, rc = 0;

	if (finished_pair(&a, &b, &now) == -1)
		return -1;
	/* Quiet long enough that every wait is over. */
	now += 10000;
	ping_to(a, b, now);
	ping_to(b, a, now);
	for (i = 0, t = now + 10000; i < 20; i++, t += 10) {
		ping_to(a, b, t);
		ping_to(b, a, t);
	}
	t = now + 10900;
	stream_ping(a);
	n1 = take(a, t, h1, 4);
	stream_ping(a);
	n2 = take(a, t, h2, 4);
	CHECK(n1 == 1 && n2 == 1, "prune_full: %zu and %zu packets for a "
	    "PING", n1, n2);
	give(b, t, h2, n2);
	ping_to(b, a, t);		/* its ACK of 2 ... */
	ping_to(a, b, t);		/* ... acknowledged */
	stream_get_stats(b, &st0);
	t = now + 11300;
	if (give(b, t, h1, n1) != 0)
		rc = -1;
	stream_get_stats(b, &st1);
	if (rc == -1 || st1.pkts_recv != st0.pkts_recv + 1) {
		fail("prune_full: a packet overtaken 0.4 ms before it came "
		    "was dropped unacknowledged");
		rc = -1;
	} else
		printf("prune_full: with the prune queue full, a packet "
		    "overtaken by 0.4 ms was still taken\n");
	stream_free(a);
	stream_free(b);
	return rc;
}

/*
 * A round trip waits a loss delay before it counts, and is dropped if a
 * packet of the peer's older than the one that carried its ACK arrives
 * meanwhile (it overtook that one: see on_ack in stream.c).  A's PING
 * goes at 0 and its ACK comes back at 5 ms, in B's packet 3, after B's
 * packet 2 but not 1.  Then packet 1 arrives at 5.1 ms: real (forged is
 * false), which drops the 5 ms round trip; or a malformed payload
 * under its number, which stream.h says changes nothing: the round trip
 * then counts.  Returns A's smoothed RTT at 20 ms, in us.
 */
static uint64_t
overtake_rtt(bool forged)
{
	static const uint8_t junk[] = { 0x21 };	/* no such frame */
	struct stream *a, *b;
	struct stream_stats st;
	struct hpkt h1[4], h2[4], ha[4], h3[4];
	uint64_t now = 0, t;
	size_t n1, n2, na, n3;

	if (finished_pair(&a, &b, &now) == -1)
		return 0;
	t = now + 10000;
	stream_ping(b);
	n1 = take(b, t, h1, 4);
	stream_ping(b);
	n2 = take(b, t, h2, 4);
	give(a, t, h2, n2);
	stream_ping(a);
	na = take(a, t, ha, 4);
	give(b, t + 2500, ha, na);
	stream_ping(b);
	n3 = take(b, t + 2500, h3, 4);
	give(a, t + 5000, h3, n3);
	if (n1 != 1 || n2 != 1 || na == 0 || n3 != 1) {
		fail("overtake: packets %zu %zu %zu %zu", n1, n2, na, n3);
		stream_free(a);
		stream_free(b);
		return 0;
	}
	if (forged) {
		if (stream_input(a, t + 5100, h1[0].pn, junk, sizeof junk) != -1)
			fail("overtake: a malformed payload taken");
	} else
		give(a, t + 5100, h1, n1);
	take(a, t + 20000, ha, 4);
	stream_get_stats(a, &st);
	stream_free(a);
	stream_free(b);
	return st.srtt_us;
}

/* A malformed payload drops no round trip (stream.h: it "changes
 * nothing"); the real packet under its number does. */
static int
test_bad_overtake(void)
{
	uint64_t real = overtake_rtt(false), forged = overtake_rtt(true);

	if (real == 0 || forged == 0)
		return -1;
	if (real >= 500 || forged < 500) {
		fail("bad_overtake: smoothed RTT %" PRIu64 " us after the real "
		    "packet that was overtaken (want < 500), %" PRIu64 " us "
		    "after a malformed one under its number (want the 5 ms "
		    "round trip in it)", real, forged);
		return -1;
	}
	printf("bad_overtake: a 5 ms round trip overtaken by a packet is "
	    "dropped (srtt %" PRIu64 " us); a malformed payload under that "
	    "packet's number drops nothing (srtt %" PRIu64 " us)\n", real,
	    forged);
	return 0;
}

/*
 * Round trips wait in a queue of 32 (RTTQ_SLOTS) before they count (see
 * on_ack in stream.c); a gap in what A received keeps them there.  A
 * sends 32 PINGs whose ACKs come back 8 ms later, then 32 more whose
 * ACKs come 1 ms later, just behind: the queue overflows with nothing
 * due yet.  Every round trip must count all the same (RFC 9002 §5.3
 * smooths them all): the 8 ms ones as the 1 ms ones push them out, so
 * A's smoothed RTT comes near 8 ms before the 1 ms ones bring it down.
 */
static int
test_rttq_full(void)
{
	struct stream *a, *b;
	struct stream_stats st;
	struct hpkt hole, x, hi[32], lo[32], bh[32], bl[32], out[4];
	uint64_t now = 0, t0, srtt_max = 0;
	int i;

	if (finished_pair(&a, &b, &now) == -1)
		return -1;
	t0 = now + 10000;
	stream_ping(b);
	CHECK(take(b, t0, &hole, 1) == 1, "rttq_full: no PING");
	stream_ping(b);
	CHECK(take(b, t0, &x, 1) == 1, "rttq_full: no PING");
	give(a, t0, &x, 1);		/* the gap: hole never arrives */
	for (i = 0; i < 32; i++) {
		stream_ping(a);
		CHECK(take(a, t0 + i, &hi[i], 1) == 1, "rttq_full: no PING");
	}
	for (i = 0; i < 32; i++) {
		stream_ping(a);
		CHECK(take(a, t0 + 7100 + i, &lo[i], 1) == 1, "rttq_full: no PING");
	}
	for (i = 0; i < 32; i++) {
		give(b, t0 + 7600 + i, &hi[i], 1);
		stream_ping(b);
		CHECK(take(b, t0 + 7600 + i, &bh[i], 1) == 1, "rttq_full: no ACK");
	}
	for (i = 0; i < 32; i++) {
		give(b, t0 + 7700 + i, &lo[i], 1);
		stream_ping(b);
		CHECK(take(b, t0 + 7700 + i, &bl[i], 1) == 1, "rttq_full: no ACK");
	}
	for (i = 0; i < 64; i++) {
		if (i < 32)
			give(a, t0 + 8000 + i, &bh[i], 1);
		else
			give(a, t0 + 8100 + i - 32, &bl[i - 32], 1);
		stream_get_stats(a, &st);
		srtt_max = st.srtt_us > srtt_max ? st.srtt_us : srtt_max;
	}
	take(a, t0 + 30000, out, 4);
	stream_get_stats(a, &st);
	stream_free(a);
	stream_free(b);
	if (srtt_max < 6000 || st.srtt_us < 900) {
		fail("rttq_full: smoothed RTT at most %" PRIu64 " us, then %"
		    PRIu64 " us: the 8 ms round trips were not all counted",
		    srtt_max, st.srtt_us);
		return -1;
	}
	printf("rttq_full: 64 round trips through a queue of 32: smoothed "
	    "RTT up to %" PRIu64 " us with the 8 ms ones, then %" PRIu64
	    " us\n", srtt_max, st.srtt_us);
	return 0;
}

/*
 * The congestion controller alone (cc.h), driven a round at a time: a
 * BDP of CC_PKTS packets sent at once, one ACK frame a round trip later.
 * Some are declared lost there and found spurious in the next frame;
 * some are lost for good.
 */
#define CC_MSS		1200
#define CC_PKTS		100
#define CC_RTT		10000

struct ccd {
	struct cc *c;
	uint64_t now, pn;
	struct cc_pkt late[CC_PKTS];	/* declared lost, yet to arrive */
	uint64_t late_pn[CC_PKTS];
	unsigned nlate;
};

/* The pacing gain BBR is at now. */
static double
ccd_gain(const struct ccd *d)
{
	return cc_bw(d->c) > 0 ? cc_pacing_rate(d->c) / (cc_bw(d->c) * 0.99) : 0;
}

/* The packets declared lost in the round before are acknowledged. */
static void
ccd_late(struct ccd *d)
{
	unsigned i;

	for (i = 0; i < d->nlate; i++) {
		cc_on_spurious(d->c, &d->late[i], CC_MSS, d->now);
		cc_on_acked(d->c, &d->late[i], d->late_pn[i], CC_MSS,
		    d->now - CC_RTT, d->now);
	}
	d->nlate = 0;
}

/*
 * One round: of the packets sent, the first reorder are declared lost
 * (and found spurious in the next frame), the next lose lost for good.
 * The round before's spurious losses come first in the frame, as in
 * stream.c, or after its losses (late_last).  queue: the round trip
 * shows a queue (the round's packets do not count as cruising).
 */
static void
ccd_round(struct ccd *d, unsigned reorder, unsigned lose, bool queue, bool late_last)
{
	struct cc_pkt p[CC_PKTS];
	uint64_t sent = d->now, pn0 = d->pn;
	unsigned i;

	for (i = 0; i < CC_PKTS; i++)
		cc_on_send(d->c, &p[i], CC_MSS, CC_PKTS * CC_MSS, sent);
	d->pn += CC_PKTS;
	d->now += CC_RTT;
	cc_ack_begin(d->c);
	if (!late_last)
		ccd_late(d);
	for (i = reorder + lose; i < CC_PKTS; i++)
		cc_on_acked(d->c, &p[i], pn0 + i, CC_MSS, sent, d->now);
	for (i = 0; i < reorder + lose; i++)
		cc_on_lost(d->c, &p[i], CC_MSS, i == 0, d->now);
	if (late_last)
		ccd_late(d);
	for (i = 0; i < reorder; i++) {
		d->late[d->nlate] = p[i];
		d->late_pn[d->nlate++] = pn0 + i;
	}
	cc_ack_end(d->c, &(struct cc_ack){ .now = d->now,
	    .prior_in_flight = CC_PKTS * CC_MSS, .in_flight = 0,
	    .rtt = CC_RTT, .raw_min_rtt = CC_RTT,
	    .latest_rtt = queue ? CC_RTT * 3 / 2 : CC_RTT });
}

/*
 * Out of Startup into ProbeBW, then rounds with reorder packets
 * reordered each until BBR probes (a pacing gain of 1.25); that round
 * loses 10 % for good.  Returns the gain after that round, or -1.
 */
static double
ccd_probe(unsigned reorder, bool queue, bool late_last)
{
	struct ccd d = { .now = 1000000 };
	double gain;
	int i;

	if ((d.c = cc_new(CC_MSS, d.now)) == NULL)
		abort();
	for (i = 0; i < 8; i++)
		ccd_round(&d, 0, 0, false, false);
	for (i = 0; i < 40 && ccd_gain(&d) < 1.2; i++)
		ccd_round(&d, reorder, 0, queue, false);
	if (ccd_gain(&d) < 1.2) {
		fail("cc: no bandwidth probe in 40 rounds (gain %.2f)",
		    ccd_gain(&d));
		cc_free(d.c);
		return -1;
	}
	ccd_round(&d, 0, CC_PKTS / 10, queue, late_last);
	gain = ccd_gain(&d);
	cc_free(d.c);
	return gain;
}

/*
 * A probe that loses 10 % when the path's own loss is none is too high
 * (BBRLossThresh, 2 %): BBR stops probing (its gain of 1.25 goes).
 * Reordering that looked like 30 % loss every round and proved spurious
 * must not change that.  Its losses are taken out of the round they
 * were counted in, which has moved into the baseline by then
 * (spurious_base: the reordered packets were sent cruising); and they
 * must not be taken out of the losses since the probe's packets were
 * sent, which they were declared before (spurious_since: sent with a
 * queue in sight, so no baseline).  Without reordering, for reference,
 * the probe stops too.
 */
static int
test_cc_spurious(void)
{
	double plain = ccd_probe(0, false, false);
	double base = ccd_probe(30, false, true);
	double since = ccd_probe(30, true, false);
	int rc = 0;

	if (plain < 0 || base < 0 || since < 0)
		return -1;
	if (plain > 1.1) {
		fail("cc_spurious: a probe losing 10 %% went on (gain %.2f)",
		    plain);
		rc = -1;
	}
	if (base > 1.1) {
		fail("cc_spurious: spurious losses of cruising rounds left in "
		    "the baseline: a probe losing 10 %% went on (gain %.2f)",
		    base);
		rc = -1;
	}
	if (since > 1.1) {
		fail("cc_spurious: spurious losses declared before the probe "
		    "hid its own: a probe losing 10 %% went on (gain %.2f)",
		    since);
		rc = -1;
	}
	if (rc == 0)
		printf("cc_spurious: a probe losing 10 %% stops (gain %.2f); "
		    "so it does after 30 %% spurious losses a round, cruising "
		    "(%.2f) or not (%.2f)\n", plain, base, since);
	return rc;
}

/* PATH_CHALLENGE and PATH_RESPONSE (RFC 9000 §19.17-18): a packet of
 * each reaches the peer's stream_path_frame with its data, the next
 * packet shows none, and two path frames in one packet or a truncated
 * one are refused. */
static int
test_path(void)
{
	static const uint8_t data[STREAM_PATH_DATA] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct stream_conf c = conf_default();
	uint8_t buf[MTU], got[STREAM_PATH_DATA], two[2 * (1 + STREAM_PATH_DATA)];
	struct stream *a, *b;
	struct scan sc;
	struct sim m;
	uint64_t pn, ppn;
	size_t n;
	int type, rc = 0;

	if (open_pair(&m, &c, 1000000) == -1)
		return -1;
	a = m.side[0].s;
	b = m.side[1].s;
	for (type = STREAM_PATH_CHALLENGE; type <= STREAM_PATH_RESPONSE; type++) {
		n = stream_path_packet(a, type, data, 0, &pn, buf, sizeof buf);
		memset(got, 0, sizeof got);
		if (n != 1 + STREAM_PATH_DATA || stream_input(b, m.now, pn, buf, n) != 0 ||
		    stream_path_frame(b, got) != type || memcmp(got, data, sizeof got) != 0) {
			fail("path: a %s did not arrive as one", type == STREAM_PATH_CHALLENGE ?
			    "PATH_CHALLENGE" : "PATH_RESPONSE");
			rc = -1;
		}
		memcpy(two, buf, n);
		memcpy(two + n, buf, n);
	}
	/* Padded to a full datagram (RFC 9000 §8.2.1), the same challenge,
	 * and no larger than cap. */
	n = stream_path_packet(a, STREAM_PATH_CHALLENGE, data, sizeof buf, &pn, buf, sizeof buf);
	memset(got, 0, sizeof got);
	if (n != sizeof buf || buf[n - 1] != 0 || stream_input(b, m.now, pn, buf, n) != 0 ||
	    stream_path_frame(b, got) != STREAM_PATH_CHALLENGE ||
	    memcmp(got, data, sizeof got) != 0) {
		fail("path: a PATH_CHALLENGE padded to %zu bytes did not arrive as one", n);
		rc = -1;
	}
	if (stream_path_packet(a, STREAM_PATH_RESPONSE, data, sizeof buf + 1, &pn, buf,
	    sizeof buf) != 0) {
		fail("path: a packet padded beyond cap");
		rc = -1;
	}
	if (stream_path_packet(a, STREAM_PATH_CHALLENGE, data, 0, &pn, buf, 8) != 0) {
		fail("path: a packet built into 8 bytes");
		rc = -1;
	}
	stream_ping(a);
	n = stream_output(a, m.now, &pn, buf, sizeof buf);
	if (n == 0 || stream_input(b, m.now, pn, buf, n) != 0 ||
	    stream_path_frame(b, got) != STREAM_PATH_NONE) {
		fail("path: a PING is taken for a path frame");
		rc = -1;
	}
	stream_path_packet(a, STREAM_PATH_CHALLENGE, data, 0, &pn, buf, sizeof buf);
	if (stream_input(b, m.now, pn, two, sizeof two) != -1 ||
	    stream_path_frame(b, got) != STREAM_PATH_NONE) {
		fail("path: two path frames in one packet taken");
		rc = -1;
	}
	stream_path_packet(a, STREAM_PATH_CHALLENGE, data, 0, &pn, buf, sizeof buf);
	if (stream_input(b, m.now, pn, buf, STREAM_PATH_DATA) != -1 ||
	    stream_path_frame(b, got) != STREAM_PATH_NONE) {
		fail("path: a truncated PATH_CHALLENGE taken");
		rc = -1;
	}
	/* Not ack-eliciting, but acknowledged with what is. */
	while (stream_output(b, m.now + 50000, &pn, buf, sizeof buf) > 0)
		;
	n = stream_path_packet(a, STREAM_PATH_CHALLENGE, data, 0, &ppn, buf, sizeof buf);
	stream_input(b, m.now + 60000, ppn, buf, n);
	if (stream_output(b, m.now + 100000, &pn, buf, sizeof buf) != 0) {
		fail("path: a PATH_CHALLENGE alone elicited a packet");
		rc = -1;
	}
	stream_ping(a);
	n = stream_output(a, m.now + 100000, &pn, buf, sizeof buf);
	stream_input(b, m.now + 100000, pn, buf, n);
	n = stream_output(b, m.now + 200000, &pn, buf, sizeof buf);
	scan(buf, n, &sc);
	if (!sc.ack || sc.ack_largest < ppn || sc.ack_largest - sc.ack_first > ppn) {
		fail("path: the PATH_CHALLENGE was not acknowledged with the PING");
		rc = -1;
	}
	if (rc == 0)
		printf("path: PATH_CHALLENGE and PATH_RESPONSE arrive with their data, "
		    "padded or not; two in a packet, or a short one, refused; acknowledged with a PING\n");
	sim_free(&m);
	return rc;
}

/* A TURN relay, slower and longer than the LAN: where the path tests
 * move to. */
static const struct link relay = {
	.delay_us = 40000, .bw = 2500000, .queue = 250000,
};

/*
 * The start of the path tests: 24 MiB from A to B on the LAN, run until
 * 1.5 s of virtual time, so that the estimates are the LAN's.  Returns
 * the data A sends, for the caller to free after sim_free(m); or NULL
 * (m freed, the failure said) when the transfer ended before.
 */
static uint8_t *
lan_pair(struct sim *m, const struct stream_conf *c, const char *name)
{
	size_t bytes = 24 << 20;
	uint8_t *a = rnd_alloc(bytes);

	sim_init(m, c, c, a, bytes, NULL, 0, &lan);
	m->limit_us = 1500000;
	if (run(m) != 1) {
		fail("%s: ended early", name);
		sim_free(m);
		free(a);
		return NULL;
	}
	return a;
}

/* Runs m us longer: 0, or -1 (failed with the message why) when the
 * transfer ended before. */
static int
run_more(struct sim *m, uint64_t us, const char *why)
{
	m->limit_us += us;
	if (run(m) != 1) {
		fail("%s", why);
		return -1;
	}
	return 0;
}

/* A moves from path id from to path id to (stream_path_move), and l, a
 * fresh copy of it each way, carries the packets from then on. */
static void
move_to(struct sim *m, const struct link *l, unsigned from, unsigned to)
{
	m->link[0] = m->link[1] = *l;
	stream_path_move(m->side[0].s, m->now, from, to);
}

/* conf_default with an MTU to discover (MTU - 100 up to MTU), so that
 * a path starting over shows in its MTU too; *fresh: a new stream's
 * stats with it, what a path starting over must show. */
static struct stream_conf
mtu_conf(struct stream_stats *fresh)
{
	struct stream_conf c = conf_default();
	struct stream *f;

	c.max_mtu = MTU;
	c.mtu = MTU - 100;
	if ((f = stream_new(&c, 0)) == NULL)
		abort();
	stream_get_stats(f, fresh);
	stream_free(f);
	return c;
}

/*
 * The path moves mid-transfer from the LAN to a slower, longer one (a
 * TURN relay), and the session calls stream_path_move (RFC 9000 §9.4):
 * the window, pacing rate, bandwidth estimate, RTT and MTU are a new
 * stream's at once, and stay so while only the old path's packets are
 * acknowledged (they "MUST NOT contribute to congestion control or RTT
 * estimation for the new path"); what was in flight still arrives, and
 * the estimates become the new path's.
 */
static int
test_path_reset(void)
{
	struct stream_stats st, st0, fresh;
	struct stream_conf c = mtu_conf(&fresh);
	uint8_t *a;
	struct sim m;
	int i, rc = -1;

	if ((a = lan_pair(&m, &c, "path_reset")) == NULL)
		return -1;
	stream_get_stats(m.side[0].s, &st0);
	if (st0.srtt_us > 100000 || st0.bw < 5000000 || st0.mtu != MTU ||
	    st0.pacing_rate == fresh.pacing_rate) {
		fail("path_reset: on the LAN: srtt %.1f ms, estimate %.2f MB/s, MTU %" PRIu64,
		    st0.srtt_us / 1e3, st0.bw / 1e6, st0.mtu);
		goto out;
	}
	move_to(&m, &relay, 0, 1);
	/* Then again 30 ms on, with the old path's ACKs in: the new path's
	 * first round trip takes 80. */
	for (i = 0; i < 2; i++) {
		stream_get_stats(m.side[0].s, &st);
		if (st.srtt_us != fresh.srtt_us || st.min_rtt_us != 0 ||
		    st.cwnd != fresh.cwnd || st.pacing_rate != fresh.pacing_rate ||
		    st.bw != 0 || st.mtu != c.mtu) {
			fail("path_reset: %d ms after the move: srtt %.1f ms (new stream %.1f), "
			    "min_rtt %.1f ms, cwnd %" PRIu64 " (%" PRIu64 "), pacing %.2f MB/s "
			    "(%.2f), estimate %.2f MB/s, MTU %" PRIu64 " (%zu)", 30 * i,
			    st.srtt_us / 1e3, fresh.srtt_us / 1e3, st.min_rtt_us / 1e3,
			    st.cwnd, fresh.cwnd, st.pacing_rate / 1e6, fresh.pacing_rate / 1e6,
			    st.bw / 1e6, st.mtu, c.mtu);
			goto out;
		}
		m.limit_us += 30000;
		if (i == 0 && run(&m) != 1) {
			fail("path_reset: ended early");
			goto out;
		}
	}
	m.limit_us += 60000000;
	if (run_done(&m, "path_reset") == -1 || check_transfer(&m) == -1)
		goto out;
	stream_get_stats(m.side[0].s, &st);
	printf("path_reset: LAN (srtt %.1f ms, %.2f MB/s, MTU %" PRIu64 ") to a relay: "
	    "a new stream's window, rate, RTT and MTU until the relay's own "
	    "(srtt %.1f ms, %.2f MB/s, MTU %" PRIu64 "); 24 MiB intact\n",
	    st0.srtt_us / 1e3, st0.bw / 1e6, st0.mtu, st.srtt_us / 1e3, st.bw / 1e6, st.mtu);
	if (st.srtt_us < 80000 || st.srtt_us > 200000 || st.bw > 3000000) {
		fail("path_reset: on the relay, srtt %.1f ms, estimate %.2f MB/s",
		    st.srtt_us / 1e3, st.bw / 1e6);
		goto out;
	}
	rc = 0;
out:
	sim_free(&m);
	free(a);
	return rc;
}

/* Whether st is what want was: the window, the rates, the RTT, the MTU. */
static bool
same_path(const struct stream_stats *st, const struct stream_stats *want)
{
	return st->cwnd == want->cwnd && st->pacing_rate == want->pacing_rate &&
	    st->bw == want->bw && st->srtt_us == want->srtt_us &&
	    st->rttvar_us == want->rttvar_us && st->min_rtt_us == want->min_rtt_us &&
	    st->mtu == want->mtu;
}

/*
 * A forwarding attacker (RFC 9000 §9.3.3) moves the path to itself and
 * back at will; each move must not cost a fresh start.  The path moves
 * mid-transfer from the LAN (path 0) to a relay (1) and back within
 * STREAM_PATH_KEEP_US: the LAN's window, rates, RTT and MTU are back
 * at once, exactly as left (RFC 9000 §9.4: "reasonably sure that the
 * previous send rate is valid" for the same addresses), and the relay's
 * are kept in turn, back again on a move to it.  A third path (2) starts
 * over as a new stream; so does the LAN after it, no longer the path
 * left last.  The transfer ends intact.
 */
static int
test_path_keep(void)
{
	struct stream_stats st, lan0, relay0, fresh;
	struct stream_conf c = mtu_conf(&fresh);
	uint8_t *a;
	struct sim m;
	int rc = -1;

	if ((a = lan_pair(&m, &c, "path_keep")) == NULL)
		return -1;
	stream_get_stats(m.side[0].s, &lan0);
	move_to(&m, &relay, 0, 1);
	if (run_more(&m, 500000, "path_keep: ended early on the relay") == -1)
		goto out;
	stream_get_stats(m.side[0].s, &relay0);
	if (relay0.srtt_us < 80000 || same_path(&relay0, &fresh)) {
		fail("path_keep: on the relay, srtt %.1f ms", relay0.srtt_us / 1e3);
		goto out;
	}
	move_to(&m, &lan, 1, 0);
	stream_get_stats(m.side[0].s, &st);
	if (!same_path(&st, &lan0)) {
		fail("path_keep: back on the LAN: cwnd %" PRIu64 " (%" PRIu64 " when left), "
		    "srtt %.1f ms (%.1f), pacing %.2f MB/s (%.2f), MTU %" PRIu64 " (%" PRIu64 ")",
		    st.cwnd, lan0.cwnd, st.srtt_us / 1e3, lan0.srtt_us / 1e3,
		    st.pacing_rate / 1e6, lan0.pacing_rate / 1e6, st.mtu, lan0.mtu);
		goto out;
	}
	if (run_more(&m, 300000, "path_keep: ended early back on the LAN") == -1)
		goto out;
	move_to(&m, &relay, 0, 1);
	stream_get_stats(m.side[0].s, &st);
	if (!same_path(&st, &relay0)) {
		fail("path_keep: back on the relay: cwnd %" PRIu64 " (%" PRIu64 " when left), "
		    "srtt %.1f ms (%.1f)", st.cwnd, relay0.cwnd, st.srtt_us / 1e3,
		    relay0.srtt_us / 1e3);
		goto out;
	}
	if (run_more(&m, 300000, "path_keep: ended early back on the relay") == -1)
		goto out;
	/* The third path runs over the relay's link as it is. */
	stream_path_move(m.side[0].s, m.now, 1, 2);
	stream_get_stats(m.side[0].s, &st);
	if (st.srtt_us != fresh.srtt_us || st.cwnd != fresh.cwnd ||
	    st.pacing_rate != fresh.pacing_rate || st.mtu != c.mtu) {
		fail("path_keep: on a third path: cwnd %" PRIu64 " (new stream %" PRIu64 "), "
		    "srtt %.1f ms (%.1f)", st.cwnd, fresh.cwnd, st.srtt_us / 1e3,
		    fresh.srtt_us / 1e3);
		goto out;
	}
	if (run_more(&m, 300000, "path_keep: ended early on the third path") == -1)
		goto out;
	move_to(&m, &lan, 2, 0);
	stream_get_stats(m.side[0].s, &st);
	if (st.srtt_us != fresh.srtt_us || st.cwnd != fresh.cwnd) {
		fail("path_keep: on the LAN after a third path: cwnd %" PRIu64
		    " (new stream %" PRIu64 "), srtt %.1f ms (%.1f)", st.cwnd, fresh.cwnd,
		    st.srtt_us / 1e3, fresh.srtt_us / 1e3);
		goto out;
	}
	m.limit_us += 60000000;
	if (run_done(&m, "path_keep") == -1 || check_transfer(&m) == -1)
		goto out;
	printf("path_keep: LAN (cwnd %" PRIu64 ", srtt %.1f ms) to a relay (cwnd %" PRIu64
	    ", srtt %.1f ms) and back: each found as left; a third path and the LAN "
	    "after it start over; 24 MiB intact\n", lan0.cwnd, lan0.srtt_us / 1e3,
	    relay0.cwnd, relay0.srtt_us / 1e3);
	rc = 0;
out:
	sim_free(&m);
	free(a);
	return rc;
}

/* h[0..n) reach b at t, and what b then sends (its ACK) reaches a
 * 10 ms later. */
static void
deliver(struct stream *a, struct stream *b, uint64_t t, const struct hpkt *h, size_t n)
{
	static struct hpkt ack[8];

	give(b, t, h, n);
	give(a, t + 10000, ack, take(b, t, ack, 8));
}

/*
 * The old path's losses open no loss episode on the new one (RFC 9000
 * §9.4; RFC 9002 §7.3.2).  After a LAN transfer (BBR past Startup) the
 * path goes away and back at once (stream_path_move keeps the LAN's
 * controller), and the packets in flight before are never delivered.
 * A sends a few packets on the path it is back on; only the last 3
 * arrive, so the old packets, then the new ones before those 3, are
 * declared lost in one ACK.  Then the new ones arrive after all: every
 * loss of the path was spurious, and its controller takes the episode
 * back to the state it saved (draft-ietf-ccwg-bbr BBRSaveStateUponLoss):
 * its pacing rate is what it was, within 5 %.  When an old loss opened
 * that episode, nothing was saved: the controller stayed where the
 * losses put it (here 20 % slower), or went back to the zeroed state,
 * Startup.
 */
static int
test_path_episode(void)
{
	static struct hpkt nw[64];
	struct stream_conf c = conf_default();
	struct stream_stats st0, st1, st2;
	struct stream *a, *b;
	struct sim m;
	uint8_t *buf;
	uint64_t now;
	size_t n;
	int rc = -1;

	if ((buf = lan_pair(&m, &c, "path_episode")) == NULL)
		return -1;
	a = m.side[0].s;
	b = m.side[1].s;
	now = m.now;
	stream_path_move(a, now, 0, 1);
	stream_path_move(a, now, 1, 0);
	now += 1000;
	n = take(a, now, nw, 64);
	stream_get_stats(a, &st0);
	if (n < 4) {
		fail("path_episode: %zu packets back on the LAN", n);
		goto out;
	}
	deliver(a, b, now + 10000, nw + n - 3, 3);
	stream_get_stats(a, &st1);
	deliver(a, b, now + 30000, nw, n - 3);
	stream_get_stats(a, &st2);
	printf("path_episode: %" PRIu64 " old and %zu new packets lost, the new ones "
	    "spurious (%" PRIu64 "): pacing %.2f MB/s before, %.2f after\n",
	    st1.pkts_lost - st0.pkts_lost - (n - 3), n - 3,
	    st2.pkts_spurious - st1.pkts_spurious, st0.pacing_rate / 1e6,
	    st2.pacing_rate / 1e6);
	if (st1.pkts_lost - st0.pkts_lost <= n - 3 ||
	    st2.pkts_spurious - st1.pkts_spurious != n - 3 ||
	    st2.pacing_rate < st0.pacing_rate * 0.95 ||
	    st2.pacing_rate > st0.pacing_rate * 1.05) {
		fail("path_episode: %" PRIu64 " lost, %" PRIu64 " spurious (of %zu new); "
		    "pacing %.2f MB/s, %.2f before", st1.pkts_lost - st0.pkts_lost,
		    st2.pkts_spurious - st1.pkts_spurious, n - 3,
		    st2.pacing_rate / 1e6, st0.pacing_rate / 1e6);
		goto out;
	}
	rc = 0;
out:
	sim_free(&m);
	free(buf);
	return rc;
}

/* Back on a kept path, packets lost on the path between, over a span
 * far longer than persistent congestion's (RFC 9002 §7.6.2), do not
 * collapse the restored controller: they were sent on another path. */
static int
test_path_persist(void)
{
	static struct hpkt nw[64], mid[4];
	struct stream_conf c = conf_default();
	struct stream_stats st0, st1;
	struct stream *a, *b;
	struct sim m;
	uint8_t *buf;
	uint64_t now;
	size_t n, nm = 0;
	int rc = -1;

	if ((buf = lan_pair(&m, &c, "path_persist")) == NULL)
		return -1;
	a = m.side[0].s;
	b = m.side[1].s;
	now = m.now;
	stream_get_stats(a, &st0);
	/* Away on path 1 for 400 ms: two packets early, two late, none of
	 * them ever arrives. */
	stream_path_move(a, now, 0, 1);
	nm += take(a, now, mid + nm, 2);
	nm += take(a, now + 400000, mid + nm, 2);
	now += 400000;
	stream_path_move(a, now, 1, 0);
	now += 1000;
	n = take(a, now, nw, 64);
	if (nm < 3 || n < 4) {
		fail("path_persist: %zu packets on path 1, %zu back", nm, n);
		goto out;
	}
	deliver(a, b, now + 10000, nw, n);
	stream_get_stats(a, &st1);
	printf("path_persist: %zu packets lost on the path between, over 400 ms: "
	    "cwnd %" PRIu64 " before, %" PRIu64 " after\n", nm, st0.cwnd, st1.cwnd);
	if (st1.pkts_lost - st0.pkts_lost < nm || st1.cwnd < st0.cwnd / 2) {
		fail("path_persist: %" PRIu64 " lost (of %zu); cwnd %" PRIu64
		    ", %" PRIu64 " before", st1.pkts_lost - st0.pkts_lost, nm,
		    st1.cwnd, st0.cwnd);
		goto out;
	}
	rc = 0;
out:
	sim_free(&m);
	free(buf);
	return rc;
}

/* The peer goes silent in the middle of a transfer. */
static int
test_idle(void)
{
	struct stream_conf c = conf_default();
	size_t bytes = 4 << 20;
	uint8_t *a = rnd_alloc(bytes);
	struct sim m;
	int i, rc = 0;

	c.idle_us = 2000000;
	c.keepalive_us = 500000;
	sim_init(&m, &c, &c, a, bytes, NULL, 0, &lan);
	m.limit_us = 300000;
	if (run(&m) != 1) {
		sim_free(&m);
		free(a);
		return -1;
	}
	m.link[0].cut = m.link[1].cut = true;
	m.limit_us = 10000000;
	if (run_done(&m, "idle") == -1) {
		sim_free(&m);
		free(a);
		return -1;
	}
	for (i = 0; i < 2; i++) {
		struct side *sd = &m.side[i];

		printf("idle %s: STREAM_IDLE %.3f s after the last packet "
		    "arrived (idle_us %.3f s)\n", sd->name,
		    (sd->err_at - sd->last_recv) / 1e6, c.idle_us / 1e6);
		if (stream_error(sd->s) != STREAM_IDLE ||
		    sd->err_at - sd->last_recv != c.idle_us ||
		    !stream_can_close(sd->s, m.now)) {
			fail("idle %s: error %d after %" PRIu64 " us", sd->name,
			    stream_error(sd->s), sd->err_at - sd->last_recv);
			rc = -1;
		}
	}
	sim_free(&m);
	free(a);
	return rc;
}

/* WRITTEN: with 10 % loss both ways, B has all of A's bytes but holds
 * back its WRITTEN (its output has not closed).  Neither side may finish
 * or say DONE; A hears nothing of delivery.  Once B says it, WRITTEN
 * gets through the loss and both leave. */
static int
test_written(void)
{
	struct stream_conf c = conf_default();
	size_t bytes = 256 << 10;
	uint8_t *a = rnd_alloc(bytes), *b = rnd_alloc(bytes);
	struct sim m;
	int rc = 0, r;

	sim_init(&m, &c, &c, a, bytes, b, bytes, &lan);
	m.link[0].loss = m.link[1].loss = 0.1;
	m.side[1].hold_written = true;
	m.limit_us = 5000000;
	if ((r = run(&m)) != 1 || m.side[0].gone || m.side[1].gone ||
	    m.side[1].got != bytes || m.side[0].got != bytes ||
	    stream_peer_written(m.side[0].s) || !stream_peer_written(m.side[1].s) ||
	    m.side[0].dones + m.side[1].dones != 0 || m.side[1].writtens != 0 ||
	    m.side[0].writtens == 0) {
		fail("written: held for 5 s: run %d, gone %d/%d, got %zu/%zu, "
		    "peer_written %d/%d, DONEs %" PRIu64 "/%" PRIu64 ", WRITTENs %"
		    PRIu64 "/%" PRIu64, r, m.side[0].gone, m.side[1].gone,
		    m.side[0].got, m.side[1].got, stream_peer_written(m.side[0].s),
		    stream_peer_written(m.side[1].s), m.side[0].dones,
		    m.side[1].dones, m.side[0].writtens, m.side[1].writtens);
		rc = -1;
		goto out;
	}
	m.side[1].hold_written = false;
	m.limit_us = 60000000;
	if (run_done(&m, "written") == -1) {
		rc = -1;
	} else if (!stream_peer_written(m.side[0].s) || m.side[1].writtens == 0 ||
	    stream_error(m.side[0].s) != STREAM_OK ||
	    stream_error(m.side[1].s) != STREAM_OK) {
		fail("written: A peer_written %d, B sent %" PRIu64 " WRITTEN",
		    stream_peer_written(m.side[0].s), m.side[1].writtens);
		rc = -1;
	} else {
		printf("written: held 5 s, nobody left; then both left %.3f s "
		    "later (WRITTEN frames sent: A %" PRIu64 ", B %" PRIu64 ")\n",
		    (m.now - m.start) / 1e6 - 5, m.side[0].writtens,
		    m.side[1].writtens);
	}
out:
	sim_free(&m);
	free(a);
	free(b);
	return rc;
}

/* One side aborts mid-transfer: the other learns the code, and the
 * reason with what a terminal would act on replaced. */
static int
test_close(void)
{
	struct stream_conf c = conf_default();
	size_t bytes = 4 << 20;
	uint8_t *a = rnd_alloc(bytes), *b = rnd_alloc(bytes);
	struct sim m;
	int rc = 0;

	sim_init(&m, &c, &c, a, bytes, b, bytes, &lan);
	m.link[0].loss = m.link[1].loss = 0.1;
	m.abort_at = m.now + 200000;
	if (run_done(&m, "close") == -1)
		rc = -1;
	else if (stream_error(m.side[1].s) != STREAM_ABORTED ||
	    stream_close_code(m.side[1].s) != 0xdeadbeef ||
	    strcmp(m.side[0].why, "could not write its output: \033[31m") != 0 ||
	    strcmp(stream_close_why(m.side[1].s),
	    "could not write its output: ?[31m") != 0 ||
	    !stream_can_close(m.side[0].s, m.now) ||
	    stream_write(m.side[0].s, "x", 1) != 0) {
		fail("close: B error %d code %#x reason `%s' (sent `%s')",
		    stream_error(m.side[1].s), stream_close_code(m.side[1].s),
		    stream_close_why(m.side[1].s), m.side[0].why);
		rc = -1;
	} else
		printf("close: B saw CLOSE %#x %.3f s after A aborted\n",
		    stream_close_code(m.side[1].s),
		    (m.side[1].err_at - m.start - 200000) / 1e6);
	sim_free(&m);
	free(a);
	free(b);
	return rc;
}

/*
 * Hostile input into a stream in mid-transfer: random bytes, real
 * payloads with flipped bits or cut short, random packet numbers.  Some of
 * it is valid and may change the stream (only the session's AEAD can tell
 * forgeries); what must hold is no crash, no overflow, no growth.
 */
static int
test_fuzz(void)
{
	struct stream_conf c = conf_default();
	size_t bytes = 4 << 20;
	uint8_t *a = rnd_alloc(bytes), buf[MTU], out[MTU];
	struct pkt saved[64];
	uint64_t pn, total = 0, refused = 0, ended = 0, i;
	int round, nsaved, rc = 0;

	/* A fresh pair every round: valid forgeries pile up in a victim
	 * (acknowledged packet numbers, a CLOSE) and would hide the rest. */
	for (round = 0; round < 40 && rc == 0; round++) {
		struct sim m;

		sim_init(&m, &c, &c, a, bytes, a, bytes, &lan);
		m.limit_us = 50000 + rnd() % 100000;	/* mid-transfer */
		if (run(&m) != 1) {
			sim_free(&m);
			rc = -1;
			break;
		}
		for (nsaved = 0; nheap > 0 && nsaved < 64; nsaved++) {
			struct pkt *p = heap_pop();

			saved[nsaved] = *p;
			free(p);
		}
		for (i = 0; i < 5000; i++) {
			struct stream *s = m.side[i & 1].s;
			size_t len;

			if (nsaved > 0 && rnd() % 2) {
				const struct pkt *p = &saved[rnd() % nsaved];

				len = p->len;
				memcpy(buf, p->data, len);
				if (rnd() % 2)
					len = rnd() % (len + 1);
				else
					buf[rnd() % len] ^= 1 << (rnd() % 8);
			} else {
				len = rnd() % 64;
				rnd_fill(buf, len);
			}
			/* Mostly numbers the stream has not seen, so it must
			 * parse the payload. */
			switch (rnd() % 4) {
			case 0:
				pn = rnd();
				break;
			case 1:
				pn = rnd() % 100000;
				break;
			default:
				pn = m.side[!(i & 1)].next_pn + rnd() % 100000;
			}
			total++;
			if (stream_input(s, m.now, pn, buf, len) == -1)
				refused++;
			if (i % 97 == 0) {
				while (stream_output(s, m.now, &pn, out,
				    sizeof out) > 0)
					;
				stream_read(s, out, sizeof out);
				stream_deadline(s);
				m.now += 1000;
			}
		}
		ended += stream_error(m.side[0].s) != STREAM_OK;
		ended += stream_error(m.side[1].s) != STREAM_OK;
		sim_free(&m);
	}
	printf("fuzz: %" PRIu64 " of %" PRIu64 " hostile payloads refused, %"
	    PRIu64 " of 80 streams ended by a forged CLOSE, no crash\n",
	    refused, total, ended);
	if (rc == 0 && refused < total / 3) {
		fail("fuzz: only %" PRIu64 " refused", refused);
		rc = -1;
	}
	free(a);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(void);
	} tests[] = {
		{ "clean", test_clean },
		{ "lossy", test_lossy },
		{ "dup", test_dup },
		{ "reorder", test_reorder },
		{ "netem", test_netem },
		{ "reorder_decay", test_reorder_decay },
		{ "long", test_long },
		{ "fast", test_fast },
		{ "bbr_lossy", test_bbr_lossy },
		{ "bbr_queue", test_bbr_queue },
		{ "bbr_change", test_bbr_change },
		{ "bbr_rtt", test_bbr_rtt },
		{ "garbage", test_garbage },
		{ "slow_reader", test_slow_reader },
		{ "empty", test_empty },
		{ "linger", test_linger },
		{ "keepalive", test_keepalive },
		{ "ping", test_ping },
		{ "ack_gap", test_ack_gap },
		{ "path", test_path },
		{ "path_reset", test_path_reset },
		{ "path_keep", test_path_keep },
		{ "path_episode", test_path_episode },
		{ "path_persist", test_path_persist },
		{ "dgram", test_dgram },
		{ "dgram_fin", test_dgram_fin },
		{ "done_idle", test_done_idle },
		{ "early_done", test_early_done },
		{ "rbuf", test_rbuf },
		{ "pmtu", test_pmtu },
		{ "idle", test_idle },
		{ "written", test_written },
		{ "close", test_close },
		{ "fuzz", test_fuzz },
		{ "spurious", test_spurious },
		{ "prune_full", test_prune_full },
		{ "cc_spurious", test_cc_spurious },
		{ "bad_overtake", test_bad_overtake },
		{ "rttq_full", test_rttq_full },
	};
	size_t i;

	for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		rng_state = 0x5eed0000 + i;
		if (tests[i].fn() == -1 && failures == 0)
			fail("%s", tests[i].name);
	}
	if (failures > 0) {
		fprintf(stderr, "unit_stream: %d failure(s)\n", failures);
		return 1;
	}
	printf("unit_stream: all passed\n");
	return 0;
}
