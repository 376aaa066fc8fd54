/*
 * unit_session: two sessions in one process, on loopback.  The handshake
 * through the blobs and HELLO, a transfer both ways; an offer moved to
 * another name or id, a refused key, another passphrase; the record
 * cipher's negotiation and a downgrade of it; refusals each side hears at
 * once (REFUSE, CANCEL) and forged ones it ignores; the modes and idle
 * timeouts exchanged; and every mutation of the blobs, which must be
 * refused, never crash, never connect.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "session.h"
#include "util.h"
#include "wire.h"

#define ID	"0123456789abcdef0123456789abcdef"

static int failures, checks;
static char dir[] = "/tmp/unit_session.XXXXXX";
static struct crypto_identity ida, idb;

static void
check(int ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok)
		return;
	failures++;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Which side refuses the other's key: 'a' the caller, 'b' the listener. */
static int refuse;
/* The record cipher each side may use (0: any), and the one a session
 * must agree on. */
static int cipher_a, cipher_b, want_cipher = CRYPTO_CHACHAPOLY;
/* Each side's mode and idle timeout. */
static bool dgram_a, dgram_b;
static uint64_t idle_a = 30000000, idle_b = 30000000;

static int
trust(void *ctx, const char *name, const uint8_t pub[CRYPTO_KEY_LEN])
{
	(void)name;
	(void)pub;
	return refuse == *(const char *)ctx ? -1 : 0;
}

static void
conf(struct sess_conf *c, bool caller, const char *secret)
{
	memset(c, 0, sizeof *c);
	c->caller = caller;
	c->self = caller ? "alice" : NULL;
	c->id = caller ? &ida : &idb;
	c->secret = secret;
	c->secretlen = secret ? strlen(secret) : 0;
	c->cipher = caller ? cipher_a : cipher_b;
	c->dgram = caller ? dgram_a : dgram_b;
	c->trust = trust;
	c->trust_ctx = caller ? "a" : "b";
	c->punch.caller = caller;
	c->stream.sndbuf = 1 << 20;
	c->stream.rcvbuf = 1 << 20;
	c->stream.keepalive_us = 15000000;
	c->stream.idle_us = caller ? idle_a : idle_b;
}

/* Run both sessions until cond(a, b) or ms pass; whether cond held. */
static bool
pump(struct session *a, struct session *b, int ms,
    bool (*cond)(struct session *, struct session *))
{
	uint64_t end = now_us() + (uint64_t)ms * 1000;
	struct pollfd p[2];

	while (now_us() < end) {
		if (sess_io(a, now_us()) == -1 || sess_io(b, now_us()) == -1)
			return false;
		if (cond(a, b))
			return true;
		p[0].fd = sess_fd(a);
		p[1].fd = sess_fd(b);
		p[0].events = p[1].events = POLLIN;
		poll(p, 2, 5);
	}
	return false;
}

static bool
both_connected(struct session *a, struct session *b)
{
	return sess_connected(a) && sess_connected(b);
}

static size_t got_a, got_b;
static uint8_t buf_a[300000], buf_b[300000];

static bool
both_read(struct session *a, struct session *b)
{
	got_a += stream_read(sess_stream(a), buf_a + got_a, sizeof buf_a - got_a);
	got_b += stream_read(sess_stream(b), buf_b + got_b, sizeof buf_b - got_b);
	return stream_eof(sess_stream(a)) && stream_eof(sess_stream(b));
}

/* A full session: offer, answer, HELLO, 300 kB each way.  name/id: what
 * the listener thinks the offer was for.  Returns 1 connected and
 * delivered, 0 refused or never connected. */
static int
session(const char *name, const char *id, const char *sa_secret,
    const char *sb_secret, bool expect_answer)
{
	static uint8_t src_a[300000], src_b[300000];
	uint8_t offer[4096], answer[4096];
	struct sess_conf ca, cb;
	struct session *a, *b;
	size_t olen, alen;
	int ok = 0;

	conf(&ca, true, sa_secret);
	conf(&cb, false, sb_secret);
	a = sess_new(&ca);
	b = sess_new(&cb);
	check(a && b, "sess_new");
	if (!a || !b)
		goto out;
	olen = sess_offer(a, "bob", ID, offer, sizeof offer);
	check(olen > 0, "sess_offer");
	/* The caller's name travels in message 3, not in the store. */
	check(memmem(offer, olen, "alice", 5) == NULL, "the caller's name is in the offer");
	alen = sess_take_offer(b, name, id, offer, olen, answer, sizeof answer);
	check(alen > 0, "sess_take_offer");
	check(strcmp(sess_peer_name(b), "") == 0, "caller's name `%s' before message 3",
	    sess_peer_name(b));
	if (sess_take_answer(a, answer, alen) == -1) {
		check(!expect_answer, "sess_take_answer refused a good answer");
		goto out;
	}
	check(expect_answer, "sess_take_answer took a bad answer");
	if (!pump(a, b, 2000, both_connected))
		goto out;
	check(strcmp(sess_peer_name(b), "alice") == 0, "caller's name `%s'",
	    sess_peer_name(b));
	check(sess_cipher(a) == want_cipher && sess_cipher(b) == want_cipher,
	    "cipher %d and %d, not %d", sess_cipher(a), sess_cipher(b), want_cipher);
	randombytes_buf(src_a, sizeof src_a);
	randombytes_buf(src_b, sizeof src_b);
	check(stream_write(sess_stream(a), src_a, sizeof src_a) == sizeof src_a, "write a");
	check(stream_write(sess_stream(b), src_b, sizeof src_b) == sizeof src_b, "write b");
	stream_close_write(sess_stream(a));
	stream_close_write(sess_stream(b));
	got_a = got_b = 0;
	check(pump(a, b, 10000, both_read), "transfer did not finish");
	check(got_b == sizeof src_a && memcmp(buf_b, src_a, got_b) == 0, "a to b");
	check(got_a == sizeof src_b && memcmp(buf_a, src_b, got_a) == 0, "b to a");
	ok = 1;
out:
	sess_free(a);
	sess_free(b);
	return ok;
}

/* Every single-byte change of a valid answer must be refused. */
static void
mutate_answer(void)
{
	uint8_t offer[4096], answer[4096], bad[4096];
	struct sess_conf ca, cb;
	struct session *a, *b;
	size_t olen, alen, i;
	int taken = 0;

	conf(&ca, true, NULL);
	conf(&cb, false, NULL);
	b = sess_new(&cb);
	a = sess_new(&ca);
	olen = sess_offer(a, "bob", ID, offer, sizeof offer);
	alen = sess_take_offer(b, "bob", ID, offer, olen, answer, sizeof answer);
	sess_free(a);
	for (i = 0; i < alen; i++) {
		/* A fresh caller each time: a failed read kills a handshake. */
		a = sess_new(&ca);
		olen = sess_offer(a, "bob", ID, offer, sizeof offer);
		sess_free(b);
		b = sess_new(&cb);
		alen = sess_take_offer(b, "bob", ID, offer, olen, answer, sizeof answer);
		memcpy(bad, answer, alen);
		bad[i] ^= 1 << (i % 8);
		taken += sess_take_answer(a, bad, alen) == 0;
		sess_free(a);
	}
	sess_free(b);
	check(taken == 0, "%d of %zu one-bit changes of an answer were taken", taken, alen);
	printf("answer: all %zu one-bit changes refused\n", alen);
}

/* Offers cut short, flipped, or random: refused or answered, never a crash. */
static void
mutate_offer(void)
{
	uint8_t offer[4096], bad[4096], answer[4096];
	struct sess_conf ca, cb;
	struct session *a, *b;
	size_t olen, i;
	int refused = 0, n = 0;

	conf(&ca, true, NULL);
	conf(&cb, false, NULL);
	a = sess_new(&ca);
	olen = sess_offer(a, "bob", ID, offer, sizeof offer);
	sess_free(a);
	for (i = 0; i < 3000; i++, n++) {
		size_t len = olen;

		memcpy(bad, offer, olen);
		if (i < olen) {
			len = i;			/* truncated */
		} else if (i < 2 * olen) {
			bad[i - olen] ^= 0xff;		/* one byte flipped */
		} else {
			len = randombytes_uniform(sizeof bad);
			randombytes_buf(bad, len);	/* noise */
			if (len > 0 && i % 2)
				bad[0] = 1;		/* ... with a valid version */
		}
		b = sess_new(&cb);
		refused += sess_take_offer(b, "bob", ID, bad, len, answer, sizeof answer) == 0;
		sess_free(b);
	}
	check(refused > n / 2, "only %d of %d broken offers refused", refused, n);
	printf("offer: %d broken offers, %d refused, the rest answered harmlessly\n",
	    n, refused);
}

/* Where the offer's TLV of type t starts (its type byte), or 0. */
static size_t
find_tlv(const uint8_t *b, size_t len, int t)
{
	size_t off = 1;

	while (off + 3 <= len) {
		if (b[off] == t)
			return off;
		off += 3 + ((size_t)b[off + 1] << 8 | b[off + 2]);
	}
	return 0;
}

/* The record cipher: the caller's first choice the listener can use, on
 * both sides; none in common, no session; and an offer whose list was
 * cut to ChaChaPoly on the way (a downgrade) is answered, but the answer
 * never checks out at the caller, whose list is in the prologue. */
static void
ciphers(void)
{
	uint8_t offer[4096], answer[4096];
	struct sess_conf ca, cb;
	struct session *a, *b;
	size_t olen, alen, at;
	bool aes = crypto_cipher_available(CRYPTO_AESGCM);

	cipher_a = cipher_b = CRYPTO_CHACHAPOLY;
	want_cipher = CRYPTO_CHACHAPOLY;
	check(session("bob", ID, NULL, NULL, true) == 1, "ChaChaPoly both sides");
	if (!aes) {
		printf("cipher: skip AESGCM: this CPU has no AES instructions\n");
		cipher_a = cipher_b = 0;
		return;
	}
	cipher_a = cipher_b = 0;
	want_cipher = CRYPTO_AESGCM;
	check(session("bob", ID, NULL, NULL, true) == 1, "AESGCM by default");
	check(session("bob", ID, "a secret", "a secret", true) == 1, "AESGCM, passphrase");
	cipher_b = CRYPTO_CHACHAPOLY;
	want_cipher = CRYPTO_CHACHAPOLY;
	check(session("bob", ID, NULL, NULL, true) == 1, "a listener without AESGCM");
	cipher_a = CRYPTO_CHACHAPOLY;
	cipher_b = 0;
	check(session("bob", ID, NULL, NULL, true) == 1, "a caller without AESGCM");

	/* Nothing in common: the listener does not answer. */
	cipher_a = CRYPTO_AESGCM;
	cipher_b = CRYPTO_CHACHAPOLY;
	conf(&ca, true, NULL);
	conf(&cb, false, NULL);
	a = sess_new(&ca);
	b = sess_new(&cb);
	olen = sess_offer(a, "bob", ID, offer, sizeof offer);
	check(olen > 0 && sess_take_offer(b, "bob", ID, offer, olen, answer,
	    sizeof answer) == 0, "answered with no cipher in common");
	sess_free(a);
	sess_free(b);

	/* The downgrade. */
	cipher_a = cipher_b = 0;
	conf(&ca, true, NULL);
	conf(&cb, false, NULL);
	a = sess_new(&ca);
	b = sess_new(&cb);
	olen = sess_offer(a, "bob", ID, offer, sizeof offer);
	at = find_tlv(offer, olen, 6);
	check(at > 0 && offer[at + 2] == 2 && offer[at + 3] == CRYPTO_AESGCM &&
	    offer[at + 4] == CRYPTO_CHACHAPOLY, "the offer lists AESGCM, ChaChaPoly");
	if (at > 0)
		offer[at + 3] = CRYPTO_CHACHAPOLY;
	alen = sess_take_offer(b, "bob", ID, offer, olen, answer, sizeof answer);
	check(alen > 0, "the listener refused the downgraded offer");
	check(sess_take_answer(a, answer, alen) == -1, "a downgraded offer connected");
	sess_free(a);
	sess_free(b);
	printf("cipher: AESGCM where both can, else ChaChaPoly; a downgrade is caught\n");
	want_cipher = CRYPTO_AESGCM;
}

/* Run b alone until it fails or ms pass: its sess_error, or -1. */
static int
run_one(struct session *b, int ms)
{
	uint64_t end = now_us() + (uint64_t)ms * 1000;
	struct pollfd p;

	while (now_us() < end) {
		if (sess_io(b, now_us()) == -1)
			return sess_error(b);
		p.fd = sess_fd(b);
		p.events = POLLIN;
		poll(&p, 1, 5);
	}
	return -1;
}

/* A datagram to b's socket on loopback, as if from the peer. */
static void
inject(struct session *b, const uint8_t *pkt, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (getsockname(sess_fd(b), (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			struct sockaddr_in s4 = { .sin_family = AF_INET,
			    .sin_port = s6->sin6_port, .sin_addr.s_addr = htonl(0x7f000001) };

			sendto(fd, pkt, len, 0, (struct sockaddr *)&s4, sizeof s4);
		} else {
			((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(0x7f000001);
			sendto(fd, pkt, len, 0, (struct sockaddr *)&ss, sl);
		}
	}
	close(fd);
}

/* The first datagram of type to reach s's socket within ms: its length
 * into pkt (cap bytes), or 0.  Every other datagram that came by then is
 * dropped, copies of that one included. */
static size_t
capture(struct session *s, int type, uint8_t *pkt, size_t cap, int ms)
{
	uint64_t end = now_us() + (uint64_t)ms * 1000;
	struct pollfd p = { .fd = sess_fd(s), .events = POLLIN };
	uint8_t junk[WIRE_MAX_PKT];
	size_t got = 0;
	ssize_t n;

	while (got == 0 && now_us() < end) {
		if (poll(&p, 1, 10) <= 0)
			continue;
		n = recv(sess_fd(s), pkt, cap, MSG_DONTWAIT);
		if (n > 1 && pkt[0] == WIRE_MAGIC && pkt[1] == type)
			got = n;
	}
	usleep(50000);
	while (recv(sess_fd(s), junk, sizeof junk, MSG_DONTWAIT) >= 0)
		;
	return got;
}

/* A caller and a listener after offer and answer. */
struct pair {
	struct sess_conf ca, cb;
	struct session *a, *b;
	int taken;			/* sess_take_answer's result */
};

static void
pair_start(struct pair *pp, const char *sa, const char *sb)
{
	uint8_t offer[4096], answer[4096];
	size_t olen, alen;

	conf(&pp->ca, true, sa);
	conf(&pp->cb, false, sb);
	pp->a = sess_new(&pp->ca);
	pp->b = sess_new(&pp->cb);
	olen = sess_offer(pp->a, "bob", ID, offer, sizeof offer);
	alen = sess_take_offer(pp->b, "bob", ID, offer, olen, answer, sizeof answer);
	pp->taken = sess_take_answer(pp->a, answer, alen);
}

static void
pair_end(struct pair *pp)
{
	sess_free(pp->a);
	sess_free(pp->b);
	refuse = 0;
	dgram_a = dgram_b = false;
}

/*
 * Refusals, heard at once by the side refused (issue 12.1):
 *  - the caller refuses the listener's key or mode: it cancels, and the
 *    listener gives up (SESS_CANCELLED, SESS_MODE), but not for a cancel
 *    with another token;
 *  - the listener refuses the caller's key, mode or passphrase: its REFUSE
 *    ends the caller's attempt (SESS_AUTH, SESS_MODE), but not a REFUSE
 *    with a wrong MAC.
 */
static void
refusals(void)
{
	uint8_t pkt[WIRE_MAX_PKT];
	struct pair pp;
	size_t n;
	int e;

	refuse = 'a';
	pair_start(&pp, NULL, NULL);
	check(pp.taken == -1 && sess_error(pp.a) == SESS_AUTH,
	    "the caller's refusal is not SESS_AUTH");
	sess_cancel(pp.a);
	check(sess_error(pp.a) == SESS_AUTH, "sess_cancel changed the caller's error to %d",
	    sess_error(pp.a));
	/* The cancel, with another token: ignored; as sent: heard. */
	n = capture(pp.b, WIRE_CANCEL, pkt, sizeof pkt, 500);
	check(n == WIRE_HDR + 1 + 16, "no cancel reached the listener");
	pkt[n - 1] ^= 1;
	inject(pp.b, pkt, n);
	check(run_one(pp.b, 200) == -1, "a forged cancel ended the listener's attempt");
	pkt[n - 1] ^= 1;
	inject(pp.b, pkt, n);
	e = run_one(pp.b, 500);
	check(e == SESS_CANCELLED, "the listener did not hear the cancel (%d)", e);
	pair_end(&pp);
	printf("cancel: a refused listener gives up at once, not on a forged cancel\n");

	dgram_a = true;
	pair_start(&pp, NULL, NULL);
	check(pp.taken == -1 && sess_error(pp.a) == SESS_MODE,
	    "a -u caller took a stream listener's answer (%d)", sess_error(pp.a));
	sess_cancel(pp.a);
	e = run_one(pp.b, 500);
	check(e == SESS_MODE, "the stream listener did not hear the -u caller (%d)", e);
	pair_end(&pp);
	dgram_b = true;
	pair_start(&pp, NULL, NULL);
	check(pp.taken == -1 && sess_error(pp.a) == SESS_MODE,
	    "a stream caller took a -u listener's answer");
	pair_end(&pp);
	dgram_a = dgram_b = true;
	pair_start(&pp, NULL, NULL);
	check(pp.taken == 0, "-u on both sides refused");
	pair_end(&pp);
	printf("mode: -u meets -u, a stream a stream, else both sides refuse\n");

	refuse = 'b';
	pair_start(&pp, NULL, NULL);
	check(pp.taken == 0, "the caller refused a good answer");
	check(!pump(pp.a, pp.b, 2000, both_connected), "a refused caller connected");
	check(sess_error(pp.b) == SESS_AUTH, "the listener's refusal: %d", sess_error(pp.b));
	/* The refusal, with a wrong MAC: ignored; as sent: heard. */
	n = capture(pp.a, WIRE_REFUSE, pkt, sizeof pkt, 500);
	check(n == WIRE_HDR + 1 + 16, "no refusal reached the caller");
	pkt[n - 1] ^= 1;
	inject(pp.a, pkt, n);
	check(run_one(pp.a, 200) == -1, "a forged refusal ended the caller's attempt");
	pkt[n - 1] ^= 1;
	inject(pp.a, pkt, n);
	e = run_one(pp.a, 500);
	check(e == SESS_AUTH, "the refused caller: %d", e);
	pair_end(&pp);
	pair_start(&pp, "one secret", "another secret");
	check(pp.taken == 0, "the caller refused an answer with another passphrase");
	check(!pump(pp.a, pp.b, 2000, both_connected), "different passphrases connected");
	check(sess_error(pp.b) == SESS_PASSPHRASE, "a failed passphrase at the listener: %d",
	    sess_error(pp.b));
	e = run_one(pp.a, 500);
	check(e == SESS_AUTH, "the caller told of another passphrase: %d", e);
	pair_end(&pp);
	printf("refuse: the listener's refusal (key, passphrase) reaches the caller\n");
}

/* Idle timeouts are exchanged: with 2 s at the listener and 30 s at the
 * caller, a quiet session lives on for 5 s (keepalives at a third of 2 s;
 * at a fixed 15 s the listener would give up after 2 s), and the caller
 * needs no keepalive of its own to learn of the listener. */
static void
idle(void)
{
	struct pair pp;
	uint64_t end;
	bool ok = true;

	idle_b = 2000000;
	pair_start(&pp, NULL, NULL);
	check(pp.taken == 0 && pump(pp.a, pp.b, 2000, both_connected), "idle: no session");
	end = now_us() + 5000000;
	while (ok && now_us() < end) {
		struct pollfd p[2] = { { .fd = sess_fd(pp.a), .events = POLLIN },
		    { .fd = sess_fd(pp.b), .events = POLLIN } };

		ok = sess_io(pp.a, now_us()) == 0 && sess_io(pp.b, now_us()) == 0 &&
		    stream_error(sess_stream(pp.a)) == STREAM_OK &&
		    stream_error(sess_stream(pp.b)) == STREAM_OK;
		poll(p, 2, 20);
	}
	check(ok, "idle: a quiet session with a 2 s idle timeout died (%d, %d)",
	    stream_error(sess_stream(pp.a)), stream_error(sess_stream(pp.b)));
	pair_end(&pp);
	idle_b = 30000000;
	printf("idle: the shorter timeout sets the keepalives of both\n");
}

/* A UDP socket on ip (text) and a new port, of like's family,
 * non-blocking: what a NAT gives a host that moves. */
static int
socket_at(int like, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int fd, off = 0;

	if (getsockname(like, (struct sockaddr *)&ss, &sl) == -1 ||
	    (fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	memset(&ss, 0, sizeof ss);
	if (sl == sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		char m[80];

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
		s6->sin6_family = AF_INET6;
		snprintf(m, sizeof m, "%s%s", strchr(ip, ':') ? "" : "::ffff:", ip);
		inet_pton(AF_INET6, m, &s6->sin6_addr);
	} else {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The peer's address in b's "direct path to ADDR:PORT (...)" or
 * "[ADDR]:PORT", into ip. */
static bool
path_ip(struct session *b, char *ip, size_t size)
{
	char d[256], *p, *q;

	sess_describe(b, d, sizeof d);
	if ((p = strstr(d, "direct path to ")) == NULL)
		return false;
	p += strlen("direct path to ");
	if (*p == '[')
		q = strchr(++p, ']');
	else
		q = strchr(p, ':');
	if (q == NULL)
		return false;
	snprintf(ip, size, "%.*s", (int)(q - p), p);
	return true;
}

/* Another address of this host's to reach one on loopback from: for
 * 127.0.0.1 127.0.0.2, for ::1 a global one of an interface that is
 * up; into ip, or false. */
static bool
other_ip(const char *old, char *ip, size_t size)
{
	struct ifaddrs *ifa, *i;
	bool ok = false;

	if (strchr(old, ':') == NULL) {
		snprintf(ip, size, "127.0.0.2");
		return true;
	}
	if (getifaddrs(&ifa) == -1)
		return false;
	for (i = ifa; i && !ok; i = i->ifa_next) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)i->ifa_addr;

		if (s6 == NULL || s6->sin6_family != AF_INET6 || !(i->ifa_flags & IFF_UP) ||
		    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
		    IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
			continue;
		ok = inet_ntop(AF_INET6, &s6->sin6_addr, ip, size) != NULL;
	}
	freeifaddrs(ifa);
	return ok;
}

static size_t want_a;

static bool
a_read(struct session *a, struct session *b)
{
	(void)b;
	got_a += stream_read(sess_stream(a), buf_a + got_a, sizeof buf_a - got_a);
	return got_a >= want_a;
}

static bool
b_read(struct session *a, struct session *b)
{
	(void)a;
	got_b += stream_read(sess_stream(b), buf_b + got_b, sizeof buf_b - got_b);
	return got_b >= want_a;
}

/* A pair whose listener has sent the caller len random bytes, into src,
 * so that it has measured the round trip: false (failed, as name) when
 * they did not connect.  pair_end(pp) either way. */
static bool
pair_warm(struct pair *pp, const char *name, uint8_t *src, size_t len)
{
	pair_start(pp, NULL, NULL);
	if (pp->taken == -1 || !pump(pp->a, pp->b, 2000, both_connected)) {
		check(0, "%s: no session", name);
		return false;
	}
	randombytes_buf(src, len);
	got_a = got_b = 0;
	want_a = len;
	stream_write(sess_stream(pp->b), src, len);
	check(pump(pp->a, pp->b, 5000, a_read), "%s: the first transfer did not finish", name);
	return true;
}

/* The caller's socket moves to ip (a new port) and sends len bytes of
 * src; both run until the listener's path moves (within 3 s): whether
 * it did, with the listener's stream's stats as it moved in st and its
 * path in d (empty when the socket could not move). */
static bool
move_caller(struct pair *pp, const char *ip, const uint8_t *src, size_t len,
    struct stream_stats *st, char *d, size_t size)
{
	char d0[256];
	uint64_t end;
	int fd;

	*d = '\0';
	sess_describe(pp->b, d0, sizeof d0);
	if ((fd = socket_at(sess_fd(pp->a), ip)) == -1 || dup2(fd, sess_fd(pp->a)) == -1) {
		check(0, "cannot move the caller's socket to %s", ip);
		return false;
	}
	close(fd);
	got_b = 0;
	want_a = len;
	stream_write(sess_stream(pp->a), src, len);
	/* Step by step: the stats are taken as the path moves, before the
	 * new path's first round trip. */
	for (end = now_us() + 3000000; now_us() < end; ) {
		struct pollfd p[2] = { { sess_fd(pp->a), POLLIN, 0 }, { sess_fd(pp->b), POLLIN, 0 } };

		if (sess_io(pp->a, now_us()) == -1 || sess_io(pp->b, now_us()) == -1)
			break;
		if (strcmp(sess_describe(pp->b, d, size), d0) != 0)
			break;
		poll(p, 2, 5);
	}
	stream_get_stats(sess_stream(pp->b), st);
	return strcmp(d, d0) != 0;
}

/* A new stream's stats on mtu (and a small buffer): what a path that
 * starts over must show. */
static void
fresh_stats(size_t mtu, struct stream_stats *fresh)
{
	struct stream_conf fc = { .mtu = mtu, .sndbuf = 1 << 16 };
	struct stream *f;

	if ((f = stream_new(&fc, now_us())) == NULL)
		abort();
	stream_get_stats(f, fresh);
	stream_free(f);
}

/*
 * The caller moves (RFC 9000 §9.4): its socket goes to another address
 * (new_ip) or only another port (a NAT rebinding), mid-session.  The
 * listener checks the new address (PATH_CHALLENGE) and moves there; on
 * another address its stream's window, pacing rate and RTT are a new
 * stream's at once, after a port change they are what they were; the
 * data goes on either way.
 */
static void
migrate(bool new_ip)
{
	static uint8_t src[200000];
	const char *what = new_ip ? "another address" : "another port";
	struct stream_stats st, fresh;
	struct pair pp;
	char ip[64], to[64], d[256];

	if (!pair_warm(&pp, "migrate", src, sizeof src))
		goto out;
	stream_get_stats(sess_stream(pp.b), &st);
	check(st.srtt_us < 100000, "migrate: srtt %llu us on loopback",
	    (unsigned long long)st.srtt_us);
	if (!path_ip(pp.b, ip, sizeof ip)) {
		check(0, "migrate: no direct path: %s", sess_describe(pp.b, d, sizeof d));
		goto out;
	}
	if (!new_ip)
		snprintf(to, sizeof to, "%s", ip);
	else if (!other_ip(ip, to, sizeof to)) {
		printf("migrate: to another address: skipped, this host has none but %s\n", ip);
		goto out;
	}
	if (!move_caller(&pp, to, src, sizeof src, &st, d, sizeof d)) {
		check(0, "migrate: to %s, the listener stayed: %s", what, d);
		goto out;
	}
	check(strstr(d, to) != NULL, "migrate: the listener's path: %s", d);
	fresh_stats(st.mtu, &fresh);
	if (new_ip)
		check(st.srtt_us == fresh.srtt_us && st.cwnd == fresh.cwnd &&
		    st.pacing_rate == fresh.pacing_rate && st.mtu < WIRE_MTU,
		    "migrate: to %s: srtt %llu us, cwnd %llu, pacing %llu B/s, mtu %llu; "
		    "a new stream's: %llu us, %llu, %llu B/s", what,
		    (unsigned long long)st.srtt_us, (unsigned long long)st.cwnd,
		    (unsigned long long)st.pacing_rate, (unsigned long long)st.mtu,
		    (unsigned long long)fresh.srtt_us, (unsigned long long)fresh.cwnd,
		    (unsigned long long)fresh.pacing_rate);
	else
		check(st.srtt_us < 100000, "migrate: to %s: srtt %llu us, reset", what,
		    (unsigned long long)st.srtt_us);
	check(pump(pp.a, pp.b, 5000, b_read) &&
	    memcmp(buf_b, src, sizeof src) == 0, "migrate: to %s, the data stopped", what);
	printf("migrate: to %s (%s): %s\n", what, d,
	    new_ip ? "congestion control and RTT start over" : "they stay");
out:
	pair_end(&pp);
}

/*
 * The caller's address goes A, B, A, C, as a forwarding attacker
 * (RFC 9000 §9.3.3) could make it: on B the listener's stream starts
 * over (§9.4); back on A, soon after, it has A's window and RTT again
 * at once (punch_path_id, stream_path_move), not a new stream's; on C,
 * a new stream's.
 */
static void
migrate_back(void)
{
	static uint8_t src[100000];
	struct stream_stats st, fresh;
	struct pair pp;
	char ip[64], to[64], d[256];

	if (!pair_warm(&pp, "migrate_back", src, sizeof src))
		goto out;
	if (!path_ip(pp.b, ip, sizeof ip)) {
		check(0, "migrate_back: no direct path: %s", sess_describe(pp.b, d, sizeof d));
		goto out;
	}
	if (!other_ip(ip, to, sizeof to)) {
		printf("migrate_back: skipped, this host has no address but %s\n", ip);
		goto out;
	}
	if (!move_caller(&pp, to, src, sizeof src, &st, d, sizeof d) ||
	    strstr(d, to) == NULL) {
		check(0, "migrate_back: the listener did not move to B: %s", d);
		goto out;
	}
	/* A new stream's, on the MTU every path starts from. */
	fresh_stats(st.mtu, &fresh);
	check(st.srtt_us == fresh.srtt_us && st.cwnd == fresh.cwnd,
	    "migrate_back: on B, srtt %llu us, cwnd %llu: not a new stream's",
	    (unsigned long long)st.srtt_us, (unsigned long long)st.cwnd);
	check(pump(pp.a, pp.b, 5000, b_read), "migrate_back: the data stopped on B");
	if (!move_caller(&pp, ip, src, sizeof src, &st, d, sizeof d) ||
	    strstr(d, ip) == NULL) {
		check(0, "migrate_back: the listener did not move back to A: %s", d);
		goto out;
	}
	check(st.srtt_us != fresh.srtt_us && st.srtt_us < 100000 && st.cwnd != fresh.cwnd,
	    "migrate_back: back on A, srtt %llu us, cwnd %llu; a new stream's: %llu us, %llu",
	    (unsigned long long)st.srtt_us, (unsigned long long)st.cwnd,
	    (unsigned long long)fresh.srtt_us, (unsigned long long)fresh.cwnd);
	printf("migrate_back: A, B, back on A (%s): srtt %llu us, cwnd %llu\n",
	    d, (unsigned long long)st.srtt_us, (unsigned long long)st.cwnd);
	check(pump(pp.a, pp.b, 5000, b_read), "migrate_back: the data stopped on A");
	if (strchr(ip, ':') != NULL) {
		printf("migrate_back: to a third address: skipped, IPv6 has none\n");
		goto out;
	}
	if (!move_caller(&pp, "127.0.0.3", src, sizeof src, &st, d, sizeof d) ||
	    strstr(d, "127.0.0.3") == NULL) {
		check(0, "migrate_back: the listener did not move to C: %s", d);
		goto out;
	}
	check(st.srtt_us == fresh.srtt_us && st.cwnd == fresh.cwnd,
	    "migrate_back: on C, srtt %llu us, cwnd %llu: not a new stream's",
	    (unsigned long long)st.srtt_us, (unsigned long long)st.cwnd);
	check(pump(pp.a, pp.b, 5000, b_read), "migrate_back: the data stopped on C");
	printf("migrate_back: then on C, a new stream's window and RTT\n");
out:
	pair_end(&pp);
}

/* Send pkt from fd to s's port at fd's own address, then run s until a
 * datagram comes back to fd (within 1 s): its length, into back, or 0. */
static size_t
bounce(int fd, struct session *s, const uint8_t *pkt, size_t len, uint8_t *back,
    size_t cap)
{
	struct sockaddr_storage me, to;
	socklen_t ml = sizeof me, tl = sizeof to;
	uint64_t end = now_us() + 1000000;
	ssize_t n;

	if (getsockname(fd, (struct sockaddr *)&me, &ml) == -1 ||
	    getsockname(sess_fd(s), (struct sockaddr *)&to, &tl) == -1)
		return 0;
	/* The same family: only the port differs. */
	if (me.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&me)->sin6_port = ((struct sockaddr_in6 *)&to)->sin6_port;
	else
		((struct sockaddr_in *)&me)->sin_port = ((struct sockaddr_in *)&to)->sin_port;
	sendto(fd, pkt, len, 0, (struct sockaddr *)&me, ml);
	while (now_us() < end) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { sess_fd(s), POLLIN, 0 } };

		if (sess_io(s, now_us()) == -1)
			return 0;
		if ((n = recv(fd, back, cap, MSG_DONTWAIT)) > 0)
			return n;
		poll(p, 2, 5);
	}
	return 0;
}

/* The smallest path validation datagram: header, packet number, the
 * PATH_CHALLENGE or PATH_RESPONSE frame, the AEAD tag. */
#define PATH_MIN	(WIRE_HDR + 8 + 1 + STREAM_PATH_DATA + CRYPTO_TAG_LEN)

/* Run s until a datagram comes to fd (within ms): its length, into
 * back, or 0. */
static size_t
await_dgram(int fd, struct session *s, uint8_t *back, size_t cap, int ms)
{
	uint64_t end = now_us() + (uint64_t)ms * 1000;
	ssize_t n;

	while (now_us() < end) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { sess_fd(s), POLLIN, 0 } };

		if (sess_io(s, now_us()) == -1)
			return 0;
		if ((n = recv(fd, back, cap, MSG_DONTWAIT)) > 0)
			return n;
		poll(p, 2, 5);
	}
	return 0;
}

/*
 * Path validation's datagrams (RFC 9000 §8.2.1-2): a copy of one of the
 * caller's packets, of L bytes, comes to the listener from an address
 * it does not know.  Its PATH_CHALLENGE there fills 1200 bytes when the
 * anti-amplification limit (3 L, §8.1) allows, else it goes unpadded,
 * so that the challenge sent again when none answers (a quarter of a
 * second later) still fits, and one that would not fit is neither sent
 * nor counted; the caller's PATH_RESPONSE to that challenge, sent from
 * there, likewise 1200 bytes or unpadded.  Once with a small packet,
 * once with a large one.
 */
static void
path_sizes(void)
{
	static uint8_t src[1000];
	uint8_t pkt[WIRE_MAX_PKT], ch[WIRE_MAX_PKT], again[WIRE_MAX_PKT];
	struct pair pp;
	size_t len, n, r, n2 = 0, n3, want, i, large = 0;
	char ip[64], d[256];
	int fd;

	pair_start(&pp, NULL, NULL);
	if (pp.taken == -1 || !pump(pp.a, pp.b, 2000, both_connected) ||
	    !path_ip(pp.b, ip, sizeof ip)) {
		check(0, "path_sizes: no session: %s", sess_describe(pp.b, d, sizeof d));
		goto out;
	}
	for (i = 0; i < 2; i++) {
		stream_write(sess_stream(pp.a), src, i == 0 ? 1 : sizeof src);
		sess_io(pp.a, now_us());
		if ((len = capture(pp.b, WIRE_DATA, pkt, sizeof pkt, 500)) == 0 ||
		    (fd = socket_at(sess_fd(pp.b), ip)) == -1) {
			check(0, "path_sizes: no packet of the caller's");
			goto out;
		}
		want = 3 * len >= WIRE_MTU ? WIRE_MTU : PATH_MIN;
		large += want == WIRE_MTU;
		n = bounce(fd, pp.b, pkt, len, ch, sizeof ch);
		check(n == want, "path_sizes: a PATH_CHALLENGE of %zu bytes after %zu came, "
		    "not %zu", n, len, want);
		if (i == 0) {
			struct stream_stats s0, s1;

			n2 = await_dgram(fd, pp.b, again, sizeof again, 1000);
			check(n2 == PATH_MIN, "path_sizes: the PATH_CHALLENGE sent again "
			    "after %zu bytes came: %zu bytes, not %d", len, n2, PATH_MIN);
			/* A third (half a second on) would pass the limit: it
			 * neither goes nor counts as sent. */
			stream_get_stats(sess_stream(pp.b), &s0);
			n3 = await_dgram(fd, pp.b, again, sizeof again, 700);
			stream_get_stats(sess_stream(pp.b), &s1);
			check(n3 == 0 && s1.pkts_sent == s0.pkts_sent,
			    "path_sizes: a third PATH_CHALLENGE of %zu bytes after %zu came; "
			    "%llu packets counted sent", n3, len,
			    (unsigned long long)(s1.pkts_sent - s0.pkts_sent));
		}
		want = 3 * n >= WIRE_MTU ? WIRE_MTU : PATH_MIN;
		r = n > 0 ? bounce(fd, pp.a, ch, n, pkt, sizeof pkt) : 0;
		check(r == want, "path_sizes: a PATH_RESPONSE of %zu bytes to a challenge "
		    "of %zu, not %zu", r, n, want);
		printf("path_sizes: %zu bytes came from a new address: PATH_CHALLENGE "
		    "%zu bytes%s, PATH_RESPONSE %zu\n", len, n,
		    i == 0 && n2 > 0 ? ", and again" : "", r);
		close(fd);
	}
	check(large == 1, "path_sizes: %zu of 2 challenges were allowed 1200 bytes", large);
out:
	pair_end(&pp);
}

static int
make_id(const char *name, struct crypto_identity *id)
{
	char path[256];
	bool created;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return crypto_load_or_create_identity(path, id, &created);
}

int
main(void)
{
	if (crypto_init() == -1 || mkdtemp(dir) == NULL ||
	    make_id("a", &ida) == -1 || make_id("b", &idb) == -1) {
		fprintf(stderr, "unit_session: setup failed\n");
		return 1;
	}
	if (crypto_cipher_available(CRYPTO_AESGCM))
		want_cipher = CRYPTO_AESGCM;
	ciphers();
	check(session("bob", ID, NULL, NULL, true) == 1, "a plain session");
	printf("session: handshake over the blobs and HELLO, 300 kB each way\n");
	check(session("carol", ID, NULL, NULL, false) == 0,
	    "an offer moved to another name connected");
	check(session("bob", "ffffffffffffffffffffffffffffffff", NULL, NULL, false) == 0,
	    "an offer replayed under another id connected");
	printf("binding: an offer moved to another name or id is refused\n");
	refusals();
	check(session("bob", ID, "same secret", "same secret", true) == 1,
	    "the same passphrase did not connect");
	check(session("bob", ID, "one secret", "another secret", true) == 0,
	    "different passphrases connected");
	printf("passphrase: the same connects, different ones never do\n");
	idle();
	migrate(false);
	migrate(true);
	migrate_back();
	path_sizes();
	mutate_answer();
	mutate_offer();
	crypto_identity_wipe(&ida);
	crypto_identity_wipe(&idb);
	{
		char cmd[64];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "unit_session: cannot remove %s\n", dir);
	}
	printf("unit_session: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
