/*
 * tool_mitm: an attacker on the path, for tests.  Like tool_netem it
 * creates a TUN device, reads every IP packet the kernel routes into it
 * and writes it back (natlab.sh-style policy routing sends only packets
 * that did not come from the TUN into it, so there is no loop).  Packets
 * are forwarded at once; IPv4 UDP datagrams whose payload starts with
 * p2pcat's magic byte 0xE1 are attacked:
 *
 *   DATA packets (type 3, either key phase), each independently of the
 *   others, with the given percentages:
 *     -f  flip 1 to 3 random bits anywhere in the payload (header, packet
 *         number, ciphertext, tag); the flipped copy replaces the original
 *     -t  truncate to a random length; it replaces the original
 *     -b  send, just before the original, a copy whose tag is random
 *         (same packet number: the forgery arrives first)
 *     -n  inject a forged packet toward the same destination, from the
 *         same source: the observed connection id, a packet number near
 *         the flow's latest, either key phase, random bytes
 *     -r  replay an earlier packet of the same flow (kept in a history of
 *         the last HIST): to the same destination from the same source
 *         (half), from another source port (a quarter), or back toward
 *         the sender, to the other direction's source port (a quarter)
 *   HELLO and KNOCK packets (the path's handshake):
 *     -r  replayed like DATA packets, to the same destination
 *     -H  send, just before the original, a copy with 1 to 3 bits flipped
 *         in its Noise message (default 0: the handshake is left alone)
 *
 *   DATA packets, raced from a spoofed source (RFC 9000 §9.3.2: a copy that
 *   arrives first makes the original a duplicate):
 *     -S ADDR:PORT  with the -c percentage (default 100), a DATA packet
 *         toward -D ADDR (toward any address without -D) is sent first as
 *         a copy from ADDR:PORT, then as itself
 *
 * With -w FILE every p2pcat payload seen (as it arrived, before any
 * attack) is appended to FILE: what an eavesdropper gets, for tests that
 * look for plaintext or identities in it.
 *
 * Every attack is counted per destination address, split into what the
 * receiver's record layer sees and must count as "forged or replayed"
 * (a DATA packet for its connection id at least 30 bytes long: header,
 * packet number, tag) and what it drops before (bad magic, type or
 * connection id, too short, or a reflection).  Counters go to stderr at
 * exit (SIGTERM, SIGINT) and on SIGUSR1, one line per destination:
 *
 *   mitm: dst ADDR data N flip C/U trunc C/U badtag N inject C/U
 *         replay N port N reflect N hello N spoof N/B counted N
 *
 * (C/U: counted, uncounted; counted = what the receiver should count,
 * less what the network loses; spoof: copies from -S and their UDP
 * payload bytes, which the receiver drops as replays only when the
 * original wins the race).
 *
 * Usage: tool_mitm [-b pct] [-c pct] [-D addr] [-f pct] [-H pct]
 *                  [-i ifname] [-n pct] [-r pct] [-S addr:port]
 *                  [-s seed] [-t pct] [-w file]
 * Exit status: 0 after a signal, 1 on misuse or a setup error.
 * The TUN device, the signals and the random numbers are tests/tun.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tun.h"

#define HIST		4096	/* packets kept per flow for replays */
#define MAX_FLOWS	16
#define MAX_DSTS	16
#define MAGIC		0xE1	/* wire.h */
#define T_HELLO		1
#define T_KNOCK		2
#define T_DATA		3
#define PHASE		0x80	/* crypto.h: key phase bit of the type byte */
#define HDR		6	/* magic, type, connection id */
#define PN_END		14	/* header and packet number */
#define TAG		16
#define COUNTED_MIN	(PN_END + TAG)	/* session.c's DATA_OVERHEAD */
#define PAYLOAD_MAX	1452	/* session.c's PMTU_MAX */

/* One direction of one UDP conversation. */
struct flow {
	uint32_t sip, dip;
	uint16_t sport, dport;
	uint8_t cid[4];
	uint64_t pn;		/* latest DATA packet number seen */
	bool have_pn;
	size_t nhist, next;
	uint16_t hlen[HIST];
	unsigned char (*hist)[TUN_SLOT];	/* whole IP packets */
};

struct dst {
	uint32_t ip;
	uint64_t data, flip_c, flip_u, trunc_c, trunc_u, badtag, inj_c, inj_u;
	uint64_t replay, port, reflect, hello, spoof, spoof_bytes;
};

static struct flow flows[MAX_FLOWS];
static size_t nflows;
static struct dst dsts[MAX_DSTS];
static size_t ndsts;
static uint64_t st_in, st_out, st_werr;
static int tun;
static FILE *capture;

/* A uniform number in [lo, hi]. */
static uint64_t between(uint64_t lo, uint64_t hi)
{
	return lo + tun_rand() % (hi - lo + 1);
}

static void fill(unsigned char *p, size_t n)
{
	while (n--)
		*p++ = (unsigned char)tun_rand();
}

/* The Internet checksum's running sum of p (n bytes) added to s. */
static uint32_t sum16(uint32_t s, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(unsigned char *p, uint16_t v) { p[0] = v >> 8; p[1] = (unsigned char)v; }
static void put32(unsigned char *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, (uint16_t)v); }
static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }
static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* An IPv4 UDP packet: its header length and UDP payload, or false. */
static bool parse(const unsigned char *pkt, size_t len, size_t *ihl,
    const unsigned char **pay, size_t *plen)
{
	if (len < 20 || pkt[0] >> 4 != 4 || pkt[9] != 17)
		return false;
	*ihl = (size_t)(pkt[0] & 15) * 4;
	if (*ihl < 20 || len < *ihl + 8 || get16(pkt + 2) != len ||
	    (get16(pkt + 6) & 0x3fff) != 0)	/* fragments are left alone */
		return false;
	*pay = pkt + *ihl + 8;
	*plen = len - *ihl - 8;
	return get16(pkt + *ihl + 4) == *plen + 8;
}

/* Make pkt (IP header ihl bytes, then UDP) consistent after its payload
 * became plen bytes or its addresses changed: lengths, a fresh IP id,
 * both checksums (a packet with a bad UDP checksum would never reach the
 * receiver's record layer).  Returns the packet length. */
static size_t fixup(unsigned char *pkt, size_t ihl, size_t plen)
{
	size_t len = ihl + 8 + plen;
	unsigned char pseudo[12];
	uint16_t c;

	put16(pkt + 2, (uint16_t)len);
	put16(pkt + 4, (uint16_t)tun_rand());
	put16(pkt + 10, 0);
	put16(pkt + 10, fold(sum16(0, pkt, ihl)));
	put16(pkt + ihl + 4, (uint16_t)(plen + 8));
	put16(pkt + ihl + 6, 0);
	memcpy(pseudo, pkt + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	put16(pseudo + 10, (uint16_t)(plen + 8));
	c = fold(sum16(sum16(0, pseudo, sizeof pseudo), pkt + ihl, plen + 8));
	put16(pkt + ihl + 6, c ? c : 0xffff);
	return len;
}

static void put_out(const unsigned char *buf, size_t len)
{
	/* A TUN write never blocks; the kernel may drop under pressure. */
	if (write(tun, buf, len) == (ssize_t)len)
		st_out++;
	else
		st_werr++;
}

static struct dst *dst_of(uint32_t ip)
{
	for (size_t i = 0; i < ndsts; i++)
		if (dsts[i].ip == ip)
			return &dsts[i];
	if (ndsts == MAX_DSTS)
		return NULL;
	dsts[ndsts].ip = ip;
	return &dsts[ndsts++];
}

static struct flow *flow_of(const unsigned char *pkt, size_t ihl)
{
	uint32_t sip = get32(pkt + 12), dip = get32(pkt + 16);
	uint16_t sport = get16(pkt + ihl), dport = get16(pkt + ihl + 2);
	struct flow *f;

	for (size_t i = 0; i < nflows; i++) {
		f = &flows[i];
		if (f->sip == sip && f->dip == dip && f->sport == sport && f->dport == dport)
			return f;
	}
	if (nflows == MAX_FLOWS)
		return NULL;
	f = &flows[nflows];
	if ((f->hist = calloc(HIST, TUN_SLOT)) == NULL)
		return NULL;
	nflows++;
	f->sip = sip, f->dip = dip, f->sport = sport, f->dport = dport;
	return f;
}

static void remember(struct flow *f, const unsigned char *pkt, size_t len)
{
	memcpy(f->hist[f->next], pkt, len);
	f->hlen[f->next] = (uint16_t)len;
	f->next = (f->next + 1) % HIST;
	if (f->nhist < HIST)
		f->nhist++;
}

/* Whether the receiver's record layer gets to check payload p (len
 * bytes), sent for connection id cid: the ones it must count. */
static bool counted(const unsigned char *p, size_t len, const uint8_t cid[4])
{
	return len >= COUNTED_MIN && p[0] == MAGIC && (p[1] & ~PHASE) == T_DATA &&
	    memcmp(p + 2, cid, 4) == 0;
}

static void flip_bits(unsigned char *p, size_t from, size_t len)
{
	int n = (int)between(1, 3);
	while (n--) {
		size_t bit = between(from * 8, len * 8 - 1);
		p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
}

static struct {
	double flip, trunc, badtag, inject, replay, hello, spoof;
	bool spoofing;
	uint32_t spoof_ip, spoof_dst;		/* spoof_dst 0: any */
	uint16_t spoof_port;
} opt = { .spoof = 1 };

/* Replay an earlier packet of flow f. */
static void replay(struct flow *f, struct dst *d, bool data)
{
	unsigned char buf[TUN_SLOT];
	size_t i, len, ihl;
	const unsigned char *pay;
	size_t plen;

	if (f->nhist == 0)
		return;
	i = (f->next + HIST - 1 - between(0, f->nhist - 1)) % HIST;
	len = f->hlen[i];
	memcpy(buf, f->hist[i], len);
	if (!parse(buf, len, &ihl, &pay, &plen))
		return;
	uint64_t how = data ? tun_rand() % 4 : 0;
	if (how <= 1) {
		d->replay++;
		put_out(buf, len);
	} else if (how == 2) {
		/* The same packet from another port of the sender's address:
		 * it must not move the path. */
		put16(buf + ihl, (uint16_t)(get16(buf + ihl) ^ 0x2000));
		d->port++;
		put_out(buf, fixup(buf, ihl, plen));
	} else {
		/* Back to the sender, at its source port. */
		unsigned char a[4];
		uint16_t p = get16(buf + ihl);
		struct dst *back = dst_of(get32(buf + 12));

		memcpy(a, buf + 12, 4);
		memcpy(buf + 12, buf + 16, 4);
		memcpy(buf + 16, a, 4);
		put16(buf + ihl, get16(buf + ihl + 2));
		put16(buf + ihl + 2, p);
		if (back)
			back->reflect++;
		put_out(buf, fixup(buf, ihl, plen));
	}
}

/* Attack (or forward) one packet read from the TUN. */
static void handle(unsigned char *pkt, size_t len)
{
	unsigned char buf[TUN_SLOT];
	const unsigned char *pay;
	size_t ihl, plen;
	struct flow *f;
	struct dst *d;

	if (!parse(pkt, len, &ihl, &pay, &plen) || plen < HDR || pay[0] != MAGIC ||
	    (f = flow_of(pkt, ihl)) == NULL || (d = dst_of(get32(pkt + 16))) == NULL) {
		put_out(pkt, len);
		return;
	}
	if (capture && fwrite(pay, 1, plen, capture) != plen) {
		perror("tool_mitm: capture");
		exit(1);
	}
	unsigned type = pay[1] & ~PHASE;
	if (type == T_HELLO || type == T_KNOCK) {
		if (type == T_HELLO && plen > HDR + 4 && tun_chance(opt.hello)) {
			memcpy(buf, pkt, len);
			flip_bits(buf + ihl + 8, HDR + 4, plen);
			d->hello++;
			put_out(buf, fixup(buf, ihl, plen));
		}
		put_out(pkt, len);
		remember(f, pkt, len);
		if (tun_chance(opt.replay))
			replay(f, d, false);
		return;
	}
	if (type != T_DATA || plen < PN_END) {
		put_out(pkt, len);
		return;
	}
	d->data++;
	memcpy(f->cid, pay + 2, 4);
	uint64_t pn = get64(pay + HDR);
	if (!f->have_pn || pn > f->pn)
		f->pn = pn;
	f->have_pn = true;

	if (opt.spoofing && (opt.spoof_dst == 0 || opt.spoof_dst == get32(pkt + 16)) &&
	    tun_chance(opt.spoof)) {
		memcpy(buf, pkt, len);
		put32(buf + 12, opt.spoof_ip);
		put16(buf + ihl, opt.spoof_port);
		d->spoof++;
		d->spoof_bytes += plen;
		put_out(buf, fixup(buf, ihl, plen));
	}

	if (tun_chance(opt.inject)) {
		/* Mostly long enough to be checked, some not. */
		size_t n = tun_chance(0.1) ? between(HDR, COUNTED_MIN - 1) :
		    between(COUNTED_MIN, PAYLOAD_MAX);
		unsigned char *p = buf + ihl + 8;
		int64_t delta = (int64_t)between(0, 6000) - 3000;

		memcpy(buf, pkt, ihl + 8);
		fill(p, n);
		p[0] = MAGIC;
		p[1] = (unsigned char)(T_DATA | (tun_chance(0.5) ? PHASE : 0));
		memcpy(p + 2, f->cid, 4);
		if (n >= PN_END)
			put64(p + HDR, delta < 0 && (uint64_t)-delta > f->pn ? 0 : f->pn + delta);
		if (counted(p, n, f->cid))
			d->inj_c++;
		else
			d->inj_u++;
		put_out(buf, fixup(buf, ihl, n));
	}
	if (tun_chance(opt.flip)) {
		memcpy(buf, pkt, len);
		flip_bits(buf + ihl + 8, 0, plen);
		if (counted(buf + ihl + 8, plen, f->cid))
			d->flip_c++;
		else
			d->flip_u++;
		put_out(buf, fixup(buf, ihl, plen));
	} else if (tun_chance(opt.trunc)) {
		size_t n = between(1, plen - 1);

		memcpy(buf, pkt, len);
		if (counted(buf + ihl + 8, n, f->cid))
			d->trunc_c++;
		else
			d->trunc_u++;
		put_out(buf, fixup(buf, ihl, n));
	} else {
		if (plen >= COUNTED_MIN && tun_chance(opt.badtag)) {
			memcpy(buf, pkt, len);
			fill(buf + len - TAG, TAG);
			d->badtag++;
			put_out(buf, fixup(buf, ihl, plen));
		}
		put_out(pkt, len);
		remember(f, pkt, len);
	}
	if (tun_chance(opt.replay))
		replay(f, d, true);
}

static void print_stats(void)
{
	fprintf(stderr, "mitm: in %" PRIu64 " out %" PRIu64 " write_errors %" PRIu64 "\n",
	    st_in, st_out, st_werr);
	for (size_t i = 0; i < ndsts; i++) {
		const struct dst *d = &dsts[i];
		struct in_addr a = { .s_addr = htonl(d->ip) };

		if (d->data + d->reflect + d->hello == 0)
			continue;
		fprintf(stderr, "mitm: dst %s data %" PRIu64 " flip %" PRIu64 "/%" PRIu64
		    " trunc %" PRIu64 "/%" PRIu64 " badtag %" PRIu64 " inject %" PRIu64
		    "/%" PRIu64 " replay %" PRIu64 " port %" PRIu64 " reflect %" PRIu64
		    " hello %" PRIu64 " spoof %" PRIu64 "/%" PRIu64 " counted %" PRIu64 "\n",
		    inet_ntoa(a), d->data, d->flip_c, d->flip_u, d->trunc_c, d->trunc_u,
		    d->badtag, d->inj_c, d->inj_u, d->replay, d->port, d->reflect, d->hello,
		    d->spoof, d->spoof_bytes,
		    d->flip_c + d->trunc_c + d->badtag + d->inj_c + d->replay + d->port);
	}
	fflush(stderr);
}

/* Parses a percentage from optarg into 0..1; exits on a bad one. */
static double pct(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 100)) {
		fprintf(stderr, "tool_mitm: bad percentage `%s' (want 0..100)\n", s);
		exit(1);
	}
	return v / 100;
}

static void usage(FILE *f)
{
	fputs("usage: tool_mitm [-b pct] [-c pct] [-D addr] [-f pct] [-H pct]\n"
	    "                 [-i ifname] [-n pct] [-r pct] [-S addr:port]\n"
	    "                 [-s seed] [-t pct] [-w file]\n", f);
}

/* An IPv4 address (with :port when port is not NULL) from s, in host
 * order; exits on a bad one. */
static void addr(const char *s, uint32_t *ip, uint16_t *port)
{
	char host[INET_ADDRSTRLEN], *colon = NULL, *end = NULL;
	struct in_addr a;
	unsigned long v = 1;
	bool ok = strlen(s) < sizeof host;

	if (ok) {
		strcpy(host, s);
		colon = strrchr(host, ':');
		ok = (colon != NULL) == (port != NULL);
	}
	if (ok && colon) {
		*colon = '\0';
		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		ok = errno == 0 && end != colon + 1 && *end == '\0' && v > 0 && v <= 65535;
	}
	if (!ok || inet_pton(AF_INET, host, &a) != 1) {
		fprintf(stderr, "tool_mitm: bad address `%s' (want a.b.c.d%s)\n", s,
		    port ? ":port" : "");
		exit(1);
	}
	*ip = ntohl(a.s_addr);
	if (port)
		*port = (uint16_t)v;
}

int main(int argc, char **argv)
{
	const char *ifname = "mt0";
	uint64_t seed = 1;
	int c;

	while ((c = getopt(argc, argv, "b:c:D:f:H:hi:n:r:S:s:t:w:")) != -1) {
		switch (c) {
		case 'b': opt.badtag = pct(optarg); break;
		case 'c': opt.spoof = pct(optarg); break;
		case 'D': addr(optarg, &opt.spoof_dst, NULL); break;
		case 'f': opt.flip = pct(optarg); break;
		case 'H': opt.hello = pct(optarg); break;
		case 'h': usage(stdout); return 0;
		case 'i': ifname = optarg; break;
		case 'n': opt.inject = pct(optarg); break;
		case 'r': opt.replay = pct(optarg); break;
		case 'S':
			addr(optarg, &opt.spoof_ip, &opt.spoof_port);
			opt.spoofing = true;
			break;
		case 's': seed = strtoull(optarg, NULL, 10); break;
		case 't': opt.trunc = pct(optarg); break;
		case 'w':
			if ((capture = fopen(optarg, "ae")) == NULL) {
				perror(optarg);
				return 1;
			}
			break;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if ((tun = tun_start(ifname, seed)) < 0)
		return 1;
	unsigned char pkt[TUN_SLOT];

	while (!tun_stop) {
		int n = tun_wait(tun, NULL, print_stats);
		if (n < 0)
			return 1;
		if (n == 0)
			continue;
		for (int b = 0; b < TUN_BATCH; b++) {
			ssize_t len = tun_read(tun, pkt, sizeof pkt);
			if (len < 0)
				return 1;
			if (len == 0)
				break;
			st_in++;
			handle(pkt, (size_t)len);
		}
	}
	print_stats();
	if (capture && fclose(capture) != 0) {
		perror("tool_mitm: capture");
		return 1;
	}
	return 0;
}
