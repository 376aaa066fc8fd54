/*
 * fuzz_handshake: libFuzzer target for the rendezvous blobs and the
 * handshake messages inside them (session.c).  Four ways in:
 *
 *	offer	a fresh listener takes a fuzzed offer (the TLV parser,
 *		candidates, cipher list, cancel token, CPace share and
 *		Noise message 1, then the answer made from it);
 *	answer	a fresh caller that has just made its offer takes a fuzzed
 *		answer (its TLVs, CPace share and Noise message 2);
 *	msg 2	the same caller takes a real answer whose message 2 carries
 *		a fuzzed payload: this target plays the listener with the
 *		real handshake state (the offer's message 1 read, our
 *		static key), so the fuzzer gets through the AEAD to the
 *		answer's inner TLVs and all that follows them (cipher
 *		choice, trust, mode, keepalive, message 3, the punch's
 *		start or the cancel);
 *	msg 3	this target plays the caller: its own offer, the
 *		listener's real answer read, then a HELLO whose message 3
 *		carries a fuzzed payload goes to the listener over
 *		loopback, and the listener takes it (name, CONFIRM, mode,
 *		trust, the stream's start, its first packets back).
 *
 * Randomness and the clock are fixed (fuzzdet.h): a run repeats exactly.
 *
 * Input: one setup byte, then the blob or payload.  Setup bit 0:
 * passphrase mode; bit 1: the session is the caller (answer, msg 2),
 * else the listener (offer, msg 3); bit 2: the rest is the payload of
 * message 2 or 3, else a whole blob; bit 3: the session refuses the
 * peer's key; bit 4: it sends datagrams (-u); bit 5: in passphrase
 * mode, message 3 goes without the CONFIRM this target would add.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto.h"
#include "fuzzdet.h"
#include "punch.h"
#include "session.h"
#include "signal.h"
#include "util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ID	"0123456789abcdef0123456789abcdef"
#define NAME	"bob"
#define SECRET	"fuzz passphrase"
/* session.c's wire format, restated: a test of it must not share it. */
#define VERSION		2
#define PROLOGUE	"p2pcat/1"
#define T_CID		1
#define T_CAND		2
#define T_CPACE		4
#define T_NOISE		5
#define T_CIPHERS	6
#define T_CANCEL	11
#define T_CONFIRM	10
#define CONFIRM_LEN	32
#define MSG3_MAX	256	/* session.c's msg3 buffer */
#define MSG2_OVERHEAD	(2 * CRYPTO_KEY_LEN + 2 * CRYPTO_TAG_LEN)	/* e, s, tags */
#define MSG3_OVERHEAD	(CRYPTO_KEY_LEN + 2 * CRYPTO_TAG_LEN)	/* s, tags */
#define HELLO_HDR	(WIRE_HDR + 4)
#define OUR_CID		0x0c0c0c0c

static struct crypto_identity ida, idb;
static int peer_fd = -1;		/* the fake caller's socket */
static bool refuse_key;

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static int
trust(void *ctx, const char *name, const uint8_t pub[CRYPTO_KEY_LEN])
{
	(void)ctx;
	(void)pub;
	/* What a caller claims must be a valid name, or none. */
	check(name[0] == '\0' || sig_valid_name(name));
	return refuse_key ? -1 : 0;
}

static void
conf(struct sess_conf *c, bool caller, uint8_t setup)
{
	fuzzdet_conf(c, caller, caller ? &ida : &idb, setup & 1 ? SECRET : NULL, trust);
	c->dgram = setup & 16;
}

/* Append TLV (t, v[len]) to b at *n (cap checked by the caller). */
static void
tlv(uint8_t *b, size_t *n, int t, const void *v, size_t len)
{
	b[*n] = t;
	put16(b + *n + 1, len);
	memcpy(b + *n + 3, v, len);
	*n += 3 + len;
}

/* Find TLV t in blob b[off, len): its value and length, or NULL. */
static const uint8_t *
find(const uint8_t *b, size_t off, size_t len, int t, size_t *vlen, size_t *at)
{
	size_t l;

	for (; len - off >= 3; off += 3 + l) {
		l = get16(b + off + 1);
		if (l > len - off - 3)
			return NULL;
		if (b[off] == t) {
			*vlen = l;
			if (at)
				*at = off;
			return b + off + 3;
		}
	}
	return NULL;
}

/* The prologue for an offer whose NOISE TLV starts at head + headlen. */
static size_t
prologue(uint8_t *out, const uint8_t *head, size_t headlen)
{
	static const char fixed[] = PROLOGUE "\0" NAME "\0" ID;

	memcpy(out, fixed, sizeof fixed);
	memcpy(out + sizeof fixed, head, headlen);
	return sizeof fixed + headlen;
}

/* CPace as the session runs it for offer ID to NAME. */
static struct crypto_cpace *
cpace(uint8_t share[CRYPTO_CPACE_SHARE_LEN])
{
	static const char ci[] = PROLOGUE " " NAME;
	struct crypto_cpace *c;

	if ((c = crypto_cpace_start(SECRET, strlen(SECRET), ci, strlen(ci), ID,
	    strlen(ID), share)) == NULL)
		__builtin_trap();
	return c;
}

/* The caller s takes a real answer to its offer whose message 2 carries
 * pay: we play the listener. */
static void
msg2(struct session *s, uint8_t setup, const uint8_t *offer, size_t olen,
    const uint8_t *pay, size_t paylen)
{
	uint8_t pro[4096], m1[64], ans[4096], share[CRYPTO_CPACE_SHARE_LEN];
	const uint8_t *noise;
	struct crypto_cpace *cp = NULL;
	struct crypto_hs *hs;
	size_t nlen, at, prolen, m1len, alen = 1, mlen;

	if ((noise = find(offer, 1, olen, T_NOISE, &nlen, &at)) == NULL)
		__builtin_trap();
	prolen = prologue(pro, offer, at);
	if ((hs = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, prolen, idb.priv,
	    NULL)) == NULL || crypto_hs_read(hs, noise, nlen, m1, sizeof m1, &m1len) == -1)
		__builtin_trap();
	ans[0] = VERSION;
	if (setup & 1) {
		cp = cpace(share);
		tlv(ans, &alen, T_CPACE, share, sizeof share);
	}
	if (paylen > sizeof ans - alen - 3 - MSG2_OVERHEAD)
		paylen = sizeof ans - alen - 3 - MSG2_OVERHEAD;
	if (crypto_hs_write(hs, pay, paylen, ans + alen + 3, sizeof ans - alen - 3,
	    &mlen) == -1)
		__builtin_trap();
	ans[alen] = T_NOISE;
	put16(ans + alen + 1, mlen);
	alen += 3 + mlen;
	if (sess_take_answer(s, ans, alen) == 0)
		check(sess_cipher(s) != 0);
	else
		check(!sess_connected(s));
	crypto_cpace_free(cp);
	crypto_hs_free(hs);
}

/* The IPv4 loopback address of socket fd (the session's may be a
 * dual-stack IPv6 socket). */
static struct sockaddr_in
addr_of(int fd)
{
	struct sockaddr_storage ss;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		__builtin_trap();
	a.sin_port = ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* The listener s gets an offer from us, and then our HELLO whose message
 * 3 carries pay (and CONFIRM, unless told otherwise). */
static void
msg3(struct session *s, uint8_t setup, const uint8_t *pay, size_t paylen)
{
	uint8_t offer[512], ans[4096], pro[1024], m2[2048], p3[MSG3_MAX], pkt[WIRE_MAX_PKT];
	uint8_t share[CRYPTO_CPACE_SHARE_LEN], isk[CRYPTO_CPACE_ISK_LEN], v[8], h[32];
	struct sockaddr_in me = addr_of(peer_fd), to;
	struct crypto_cpace *cp = NULL;
	struct crypto_hs *hs;
	const uint8_t *noise, *peer_share, *cid;
	size_t olen = 1, prolen, alen, nlen, m2len, l, p3len, mlen;
	bool confirm = (setup & 1) && !(setup & 32);

	offer[0] = VERSION;
	put32(v, OUR_CID);
	tlv(offer, &olen, T_CID, v, 4);
	v[0] = CAND_HOST;
	v[1] = 4;
	memcpy(v + 2, &me.sin_port, 2);
	memcpy(v + 4, &me.sin_addr, 4);
	tlv(offer, &olen, T_CAND, v, 8);
	tlv(offer, &olen, T_CIPHERS, &(uint8_t){ CRYPTO_CHACHAPOLY }, 1);
	memset(h, 0x11, sizeof h);
	tlv(offer, &olen, T_CANCEL, h, sizeof h);
	if (setup & 1) {
		cp = cpace(share);
		tlv(offer, &olen, T_CPACE, share, sizeof share);
	}
	prolen = prologue(pro, offer, olen);
	if ((hs = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, prolen, ida.priv,
	    NULL)) == NULL || crypto_hs_write(hs, NULL, 0, offer + olen + 3,
	    sizeof offer - olen - 3, &mlen) == -1)
		__builtin_trap();
	offer[olen] = T_NOISE;
	put16(offer + olen + 1, mlen);
	olen += 3 + mlen;

	/* The listener's real answer, read as the caller reads it. */
	if ((alen = sess_take_offer(s, NAME, ID, offer, olen, ans, sizeof ans)) == 0 ||
	    (noise = find(ans, 1, alen, T_NOISE, &nlen, NULL)) == NULL ||
	    crypto_hs_read(hs, noise, nlen, m2, sizeof m2, &m2len) == -1 ||
	    (cid = find(m2, 0, m2len, T_CID, &l, NULL)) == NULL || l != 4)
		__builtin_trap();
	if (confirm) {
		if ((peer_share = find(ans, 1, alen, T_CPACE, &l, NULL)) == NULL ||
		    l != CRYPTO_CPACE_SHARE_LEN ||
		    crypto_cpace_finish(cp, true, NULL, 0, peer_share, NULL, 0, isk) == -1)
			__builtin_trap();
	}

	/* Message 3: the fuzzed TLVs, then CONFIRM. */
	p3len = MSG3_MAX - MSG3_OVERHEAD - (confirm ? 3 + CONFIRM_LEN : 0);
	if (paylen > p3len)
		paylen = p3len;
	memcpy(p3, pay, paylen);
	p3len = paylen;
	if (confirm) {
		crypto_generichash(h, sizeof h, (const uint8_t *)"p2pcat confirm", 14,
		    isk, sizeof isk);
		tlv(p3, &p3len, T_CONFIRM, h, sizeof h);
	}
	pkt[0] = WIRE_MAGIC;
	pkt[1] = WIRE_HELLO;
	memcpy(pkt + 2, cid, 4);
	put32(pkt + WIRE_HDR, OUR_CID);
	if (crypto_hs_write(hs, p3, p3len, pkt + HELLO_HDR, sizeof pkt - HELLO_HDR,
	    &mlen) == -1)
		__builtin_trap();
	to = addr_of(sess_fd(s));
	if (sendto(peer_fd, pkt, HELLO_HDR + mlen, 0, (struct sockaddr *)&to,
	    sizeof to) == -1)
		__builtin_trap();
	/* Taken, then what the listener sends back: its refusal, or its
	 * first packets. */
	if (sess_io(s, fuzzdet_now) == 0) {
		fuzzdet_now += 1000;
		sess_io(s, fuzzdet_now);
		check(sess_cipher(s) == CRYPTO_CHACHAPOLY);
	}
	fuzzdet_drain(peer_fd);
	sodium_memzero(isk, sizeof isk);
	crypto_cpace_free(cp);
	crypto_hs_free(hs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t offer[4096], answer[4096];
	struct sess_conf c;
	struct session *s;
	const char *name;
	size_t n;
	struct sockaddr_in lo = { .sin_family = AF_INET };

	if (size < 1)
		return 0;
	if (peer_fd == -1) {
		fuzzdet_init();
		lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (crypto_init() == -1 ||
		    (peer_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
		    bind(peer_fd, (struct sockaddr *)&lo, sizeof lo) == -1)
			__builtin_trap();
		fuzzdet_identity(&ida, 1);
		fuzzdet_identity(&idb, 2);
	}
	fuzzdet_reset();
	refuse_key = data[0] & 8;
	conf(&c, data[0] & 2, data[0]);
	if ((s = sess_new(&c)) == NULL)
		__builtin_trap();
	if ((data[0] & 6) == 6) {
		if ((n = sess_offer(s, NAME, ID, offer, sizeof offer)) == 0)
			__builtin_trap();
		msg2(s, data[0], offer, n, data + 1, size - 1);
	} else if (data[0] & 2) {
		if (sess_offer(s, NAME, ID, offer, sizeof offer) == 0)
			__builtin_trap();
		if (sess_take_answer(s, data + 1, size - 1) == 0)
			check(sess_cipher(s) != 0);
		else
			check(!sess_connected(s));
	} else if (data[0] & 4) {
		msg3(s, data[0], data + 1, size - 1);
	} else {
		n = sess_take_offer(s, NAME, ID, data + 1, size - 1, answer,
		    sizeof answer);
		check(n <= sizeof answer);
	}
	name = sess_peer_name(s);
	check(name[0] == '\0' || sig_valid_name(name));
	sess_free(s);
	return 0;
}
