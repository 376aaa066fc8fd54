/*
 * session.c: one connection to a peer.
 *
 * The handshake is Noise_XX_25519_ChaChaPoly_BLAKE2b (crypto.c) spread
 * over the rendezvous and the path:
 *
 *	offer  (store)	version | CID | CAND... | CIPHERS | CANCEL | CPACE? |
 *			NOISE(msg 1: e)
 *	answer (store)	version | CPACE? | NOISE(msg 2: e, ee, s, es; payload
 *			CID | CAND... | CIPHER | IDLE | MODE)
 *	HELLO  (UDP)	hdr | caller's cid | msg 3 (s, se; payload NAME? | IDLE |
 *			MODE | CONFIRM?)
 *
 * Blobs are a version byte and TLVs (type 1 byte, length 2 bytes); NOISE
 * comes last.  The prologue is "p2pcat/1", the listener's name and the
 * offer id, NUL-separated, then every offer byte before its NOISE TLV:
 * the handshake fails if anyone changed the offer, moved it to another
 * name or replayed it under another id.  The listener's candidates ride
 * encrypted in message 2 and the caller's name in message 3, so the store
 * sees only ephemeral keys, the caller's addresses and ciphers, a hash
 * and ciphertext.  The caller sends message 3 in its probes, so the
 * handshake costs no extra trip through the store; the listener, once
 * message 3 checks out, answers with an authenticated packet, and only
 * authenticated packets choose a path.
 *
 * Each side tells the other its idle timeout (IDLE, ms) and whether it
 * wants datagrams (MODE): keepalives go at a third of the shorter
 * timeout, so that neither side's runs out while the session is quiet,
 * and a -u side never meets a stream side unnoticed.
 *
 * Neither side waits in the dark when the other refuses it.  A listener
 * that refuses a caller after message 3 (its key, its mode, or a failed
 * passphrase) sends REFUSE, hdr | why | BLAKE2b-128 MAC under a key from
 * the handshake's Split() before the passphrase goes in: only the
 * listener the caller authenticated can make it, and it works when the
 * passphrases differ.  A caller that refuses the answer (the listener's
 * key or mode) cannot authenticate anything without sending message 3,
 * which would show its identity to the listener it refused; it sends
 * CANCEL instead, hdr | why | a random token whose BLAKE2b hash its offer
 * carried (CANCEL): only the caller knew the token, and the offer is in
 * the prologue, so a cancel cannot be made for an offer or moved to
 * another.  Whoever sees the token on the way can change the reason shown
 * or cancel the same attempt again, no more: nothing a store that can
 * delete the offer could not do.
 *
 * The record layer's cipher is negotiated as TLS 1.3 negotiates its
 * suite: the offer lists the caller's (CIPHERS, in its order of
 * preference: AESGCM first where the CPU has AES instructions), the
 * listener takes the first it can use too and says which inside message
 * 2 (CIPHER).  The offer is in the prologue, so nobody can strip a cipher
 * from it unnoticed; an offer without CIPHERS means ChaChaPoly.
 *
 * In passphrase mode both sides also run CPace (shares in the CPACE TLVs,
 * the offer id as its session id) and mix its key into Split()'s keys:
 * without the passphrase nobody can make or read a packet, and the store
 * learns nothing to guess it with offline.  The caller proves the key
 * first, with CONFIRM in message 3 (a MAC of CPace's key), so that the
 * listener knows a wrong guess when it sees one and can slow the next
 * down; the listener gives nothing away before it has checked CONFIRM.
 *
 * A data packet is hdr(6) | pn(8) | sealed stream payload | tag(16), the
 * packet number being the AEAD nonce and hdr | pn the additional data
 * (crypto.h).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "punch.h"
#include "session.h"
#include "signal.h"
#include "util.h"
#include "wire.h"

/* 2: the caller's name in message 3, CONFIRM, IDLE, MODE and CANCEL,
 * which a listener of version 1 could not read or would not ask for. */
#define BLOB_VERSION	2
#define TLV_CID		1	/* 4 bytes */
#define TLV_CAND	2	/* type(1) family(1: 4|6) port(2) address(4|16) */
#define TLV_NAME	3	/* in message 3: the caller's name */
#define TLV_CPACE	4	/* CPace share */
#define TLV_NOISE	5	/* a Noise handshake message; last */
#define TLV_CIPHERS	6	/* the caller's record ciphers, 1 byte each */
#define TLV_CIPHER	7	/* in message 2: the one the listener chose */
#define TLV_IDLE	8	/* in messages 2 and 3: the idle timeout, ms, 4 bytes */
#define TLV_MODE	9	/* in messages 2 and 3: 1 datagrams (-u), 0 a stream */
#define TLV_CONFIRM	10	/* in message 3: MAC of the passphrase's key */
#define TLV_CANCEL	11	/* in the offer: the hash of the cancel token */
#define MAX_CIPHERS	8	/* in an offer */
#define HASH_LEN	32	/* BLAKE2b-256: CONFIRM, CANCEL, the refusal key */
#define TOKEN_LEN	16	/* the cancel token */
#define TAG_LEN		16	/* the refusal's MAC */
#define REFUSE_LEN	(WIRE_HDR + 1 + TAG_LEN)
#define CANCEL_LEN	(WIRE_HDR + 1 + TOKEN_LEN)
#define CANCEL_US	500000	/* the caller sends cancels this long */
#define LINGER_US	1000000	/* the listener repeats a refusal at most this long */
#define QUIET_US	300000	/* ... and until the caller has been silent this long */
#define REFUSE_MAX	16	/* refusals sent, at most */
/* Why a side refuses or gives up, in REFUSE and CANCEL. */
enum { WHY_KEY = 1, WHY_PASSPHRASE = 2, WHY_MODE = 3 };
#define PROLOGUE	"p2pcat/1"
#define PN_LEN		8
#define HDR_LEN		(WIRE_HDR + PN_LEN)	/* the AEAD's additional data */
#define DATA_OVERHEAD	(HDR_LEN + CRYPTO_TAG_LEN)
#define HELLO_HDR	(WIRE_HDR + 4)
#define IO_BATCH	64	/* packets per direction per sess_io */
_Static_assert(IO_BATCH <= PUNCH_MAX_RUNS, "a round's runs fit one punch_sendv");
#define BLOB_MAX	2048	/* our blobs; SIG_MAX_BLOB is larger */
/* Path MTU probing goes up to 1428-byte datagrams: what a TURN relay
 * still passes wrapped in a Data indication (punch.c drops larger ones),
 * and within a 1500-byte link's IPv6 datagram (1500 - 40 - 8). */
#define PMTU_MAX	1428
_Static_assert(PUNCH_CHALLENGE_LEN == STREAM_PATH_DATA, "the punch makes the stream's challenges");
/* RFC 9000 §8.2.1: "An endpoint MUST expand datagrams that contain a
 * PATH_CHALLENGE frame to at least the smallest allowed maximum datagram
 * size of 1200 bytes, unless the anti-amplification limit for the path
 * does not permit sending a datagram of this size"; §8.2.2 the same of
 * PATH_RESPONSE, never beyond that limit.  Where it is lower, they go
 * unpadded: one that filled the limit would leave no room for the
 * checks sent again when the first is lost. */
#define PATH_DGRAM	WIRE_MTU

struct session {
	bool caller;
	const struct sess_conf *conf;
	struct punch *punch;
	uint32_t my_cid, peer_cid;
	char peer_name[65];
	/* The peer's static key, once known (kept: Split() ends the
	 * handshake state); once trusted, have_peer_pub. */
	uint8_t peer_pub[CRYPTO_KEY_LEN];
	bool have_peer_pub;
	struct crypto_hs *hs;
	struct crypto_cpace *cpace;
	uint8_t isk[CRYPTO_CPACE_ISK_LEN];
	bool have_isk;
	/* Refusals: the caller's cancel token (and why it cancels), the
	 * listener's copy of its hash, the key of REFUSE's MAC (both), the
	 * refusal the listener sent and how often. */
	uint8_t token[TOKEN_LEN];
	int cancel_why;
	uint8_t token_hash[HASH_LEN];
	bool have_token_hash;
	uint8_t refuse_key[HASH_LEN];
	bool have_refuse_key;
	int refused;
	int nrefused;
	uint8_t msg3[256];		/* caller: sent in HELLOs; listener: as received */
	size_t msg3len;
	int cipher;			/* the record layer's, once agreed */
	uint8_t ciphers[MAX_CIPHERS];	/* caller: the ones offered */
	size_t nciphers;
	struct crypto_tx *tx;
	struct crypto_rx *rx;
	struct stream *st;
	struct stream_conf sconf;
	unsigned path_id;		/* punch_path_id when the stream last heard */
	int err;
	bool keyed;			/* Split() done */
	bool verified;			/* a data packet from the peer opened */
	uint64_t forged;		/* HELLOs that failed the handshake */
	uint64_t rx_max_pn;
	bool rx_any;
	/* Packets sealed in one round, back to back, as runs for the punch
	 * to send; runs [txfirst, ntx) wait for the socket (EAGAIN). */
	int txfirst, ntx;
	struct punch_run run[IO_BATCH];
	uint8_t txbuf[IO_BATCH * WIRE_MAX_PKT];
};

struct session *
sess_new(const struct sess_conf *c)
{
	struct session *s;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	s->caller = c->caller;
	s->conf = c;
	s->sconf = c->stream;
	if (s->sconf.mtu == 0)
		s->sconf.mtu = WIRE_MTU - DATA_OVERHEAD;
	if (s->sconf.max_mtu == 0)
		s->sconf.max_mtu = PMTU_MAX - DATA_OVERHEAD;
	if ((s->punch = punch_new(&c->punch)) == NULL) {
		free(s);
		return NULL;
	}
	do
		s->my_cid = randombytes_random();
	while (s->my_cid == 0);
	return s;
}

void
sess_free(struct session *s)
{
	if (s == NULL)
		return;
	punch_free(s->punch);
	crypto_hs_free(s->hs);
	crypto_cpace_free(s->cpace);
	crypto_tx_free(s->tx);
	crypto_rx_free(s->rx);
	stream_free(s->st);
	sodium_memzero(s, sizeof *s);
	free(s);
}

int
sess_gather(struct session *s, uint64_t deadline)
{
	return punch_gather(s->punch, deadline);
}

/* A blob being written: TLVs appended while they fit. */
struct wr {
	uint8_t *b;
	size_t n, cap;
	bool bad;
};

static void
wr_tlv(struct wr *w, int type, const void *v, size_t len)
{
	if (w->bad || len > 0xffff || w->cap - w->n < 3 + len) {
		w->bad = true;
		return;
	}
	w->b[w->n] = type;
	put16(w->b + w->n + 1, len);
	memcpy(w->b + w->n + 3, v, len);
	w->n += 3 + len;
}

/* Our connection id and candidates as TLVs. */
static void
put_cands(struct session *s, struct wr *w)
{
	struct cand c[PUNCH_MAX_CANDS];
	uint8_t cid[4], v[20];
	int i, nc = punch_local(s->punch, c, PUNCH_MAX_CANDS);

	put32(cid, s->my_cid);
	wr_tlv(w, TLV_CID, cid, 4);
	for (i = 0; i < nc; i++) {
		size_t alen = c[i].addr.ss_family == AF_INET ? 4 : 16;

		v[0] = c[i].type;
		if (alen == 4) {
			const struct sockaddr_in *s4 = (const void *)&c[i].addr;

			v[1] = 4;
			memcpy(v + 2, &s4->sin_port, 2);
			memcpy(v + 4, &s4->sin_addr, 4);
		} else {
			const struct sockaddr_in6 *s6 = (const void *)&c[i].addr;

			v[1] = 6;
			memcpy(v + 2, &s6->sin6_port, 2);
			memcpy(v + 4, &s6->sin6_addr, 16);
		}
		wr_tlv(w, TLV_CAND, v, 4 + alen);
	}
}

/* Parse one CAND value; 0, or -1 when malformed or unusable. */
static int
parse_cand(const uint8_t *v, size_t len, struct cand *c)
{
	memset(c, 0, sizeof *c);
	if (len < 4 || v[0] > CAND_PRFLX)
		return -1;
	c->type = v[0];
	if (v[1] == 4 && len == 8) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addr;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_port, v + 2, 2);
		memcpy(&s4->sin_addr, v + 4, 4);
		return s4->sin_port == 0 || s4->sin_addr.s_addr == 0 ? -1 : 0;
	}
	if (v[1] == 6 && len == 20) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addr;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_port, v + 2, 2);
		memcpy(&s6->sin6_addr, v + 4, 16);
		return s6->sin6_port == 0 || IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? -1 : 0;
	}
	return -1;
}

/* What a blob (or message 2's payload) holds. */
struct parsed {
	bool have_cid;
	uint32_t cid;
	int ncand;
	struct cand cand[PUNCH_MAX_CANDS];
	char name[65];
	const uint8_t *ciphers;		/* TLV_CIPHERS, or NULL */
	size_t nciphers;
	int cipher;			/* TLV_CIPHER, or 0 */
	bool have_idle;
	uint32_t idle_ms;		/* TLV_IDLE; 0: never */
	int mode;			/* TLV_MODE, or 0 */
	const uint8_t *confirm;		/* TLV_CONFIRM (HASH_LEN bytes), or NULL */
	const uint8_t *token_hash;	/* TLV_CANCEL (HASH_LEN bytes), or NULL */
	const uint8_t *cpace, *noise;
	size_t noiselen;
	size_t noise_at;		/* offset of the NOISE TLV */
};

/* Parse TLVs in b[off, len); 0, or -1 when malformed. */
static int
parse_tlvs(const uint8_t *b, size_t off, size_t len, struct parsed *p)
{
	memset(p, 0, sizeof *p);
	while (off < len) {
		size_t l;
		uint8_t t;

		if (len - off < 3 || len - off - 3 < (l = (size_t)b[off + 1] << 8 | b[off + 2]))
			return -1;
		t = b[off];
		if (p->noise)
			return -1;	/* NOISE is last */
		switch (t) {
		case TLV_CID:
			if (l != 4 || p->have_cid)
				return -1;
			p->cid = get32(b + off + 3);
			p->have_cid = p->cid != 0;
			if (!p->have_cid)
				return -1;
			break;
		case TLV_CAND:
			if (p->ncand < PUNCH_MAX_CANDS &&
			    parse_cand(b + off + 3, l, &p->cand[p->ncand]) == 0)
				p->ncand++;
			break;
		case TLV_NAME:
			/* The caller's own word, shown and written into
			 * known_callers: only what a name may be, else none. */
			if (l <= SIG_MAX_NAME) {
				memcpy(p->name, b + off + 3, l);
				p->name[l] = '\0';
				if (!sig_valid_name(p->name)) {
					log_v(1, "ignoring a malformed caller name");
					p->name[0] = '\0';
				}
			}
			break;
		case TLV_CPACE:
			if (l != CRYPTO_CPACE_SHARE_LEN || p->cpace)
				return -1;
			p->cpace = b + off + 3;
			break;
		case TLV_CIPHERS:
			if (l == 0 || l > MAX_CIPHERS || p->ciphers)
				return -1;
			p->ciphers = b + off + 3;
			p->nciphers = l;
			break;
		case TLV_CIPHER:
			if (l != 1 || p->cipher || b[off + 3] == 0)
				return -1;
			p->cipher = b[off + 3];
			break;
		case TLV_IDLE:
			if (l != 4 || p->have_idle)
				return -1;
			p->idle_ms = get32(b + off + 3);
			p->have_idle = true;
			break;
		case TLV_MODE:
			if (l != 1 || b[off + 3] > 1)
				return -1;
			p->mode = b[off + 3];
			break;
		case TLV_CONFIRM:
			if (l != HASH_LEN || p->confirm)
				return -1;
			p->confirm = b + off + 3;
			break;
		case TLV_CANCEL:
			if (l != HASH_LEN || p->token_hash)
				return -1;
			p->token_hash = b + off + 3;
			break;
		case TLV_NOISE:
			p->noise = b + off + 3;
			p->noiselen = l;
			p->noise_at = off;
			break;
		}
		off += 3 + l;
	}
	return 0;
}

/* The prologue: PROLOGUE, the listener's name and the offer id, then
 * head (the offer before its NOISE TLV).  Its length, or 0. */
static size_t
prologue(uint8_t *out, size_t cap, const char *name, const char *id,
    const uint8_t *head, size_t headlen)
{
	size_t n = sizeof PROLOGUE + strlen(name) + 1 + strlen(id) + 1;

	if (n + headlen > cap)
		return 0;
	snprintf((char *)out, cap, "%s%c%s%c%s", PROLOGUE, 0, name, 0, id);
	memcpy(out + n, head, headlen);
	return n + headlen;
}

/* Start CPace for offer id in passphrase mode; 0 or -1. */
static int
cpace_start(struct session *s, const char *name, const char *id,
    uint8_t share[CRYPTO_CPACE_SHARE_LEN])
{
	char ci[sizeof PROLOGUE + 65];

	snprintf(ci, sizeof ci, "%s %s", PROLOGUE, name);
	s->cpace = crypto_cpace_start(s->conf->secret, s->conf->secretlen, ci,
	    strlen(ci), id, strlen(id), share);
	return s->cpace ? 0 : -1;
}

/* May we use cipher c (conf->cipher 0: any this machine can)? */
static bool
cipher_ok(const struct session *s, int c)
{
	return crypto_cipher_available(c) && (s->conf->cipher == 0 || s->conf->cipher == c);
}

size_t
sess_offer(struct session *s, const char *to, const char *id, uint8_t *buf,
    size_t cap)
{
	uint8_t b[BLOB_MAX], pro[BLOB_MAX + 256], msg[256], share[CRYPTO_CPACE_SHARE_LEN];
	uint8_t h[HASH_LEN];
	struct wr w = { .b = b, .n = 1, .cap = sizeof b };
	size_t prolen, msglen;

	b[0] = BLOB_VERSION;
	put_cands(s, &w);
	/* Ours, the fastest first. */
	if (cipher_ok(s, CRYPTO_AESGCM))
		s->ciphers[s->nciphers++] = CRYPTO_AESGCM;
	if (cipher_ok(s, CRYPTO_CHACHAPOLY))
		s->ciphers[s->nciphers++] = CRYPTO_CHACHAPOLY;
	wr_tlv(&w, TLV_CIPHERS, s->ciphers, s->nciphers);
	randombytes_buf(s->token, sizeof s->token);
	crypto_generichash(h, sizeof h, s->token, sizeof s->token, NULL, 0);
	wr_tlv(&w, TLV_CANCEL, h, sizeof h);
	if (s->conf->secret) {
		if (cpace_start(s, to, id, share) == -1)
			return 0;
		wr_tlv(&w, TLV_CPACE, share, sizeof share);
	}
	if (w.bad || (prolen = prologue(pro, sizeof pro, to, id, b, w.n)) == 0) {
		log_err("too many candidates for the offer");
		return 0;
	}
	if ((s->hs = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, prolen,
	    s->conf->id->priv, NULL)) == NULL)
		return 0;
	if (crypto_hs_write(s->hs, NULL, 0, msg, sizeof msg, &msglen) == -1)
		goto fail;
	wr_tlv(&w, TLV_NOISE, msg, msglen);
	if (w.bad || w.n > cap)
		goto fail;
	memcpy(buf, b, w.n);
	return w.n;
fail:
	log_err("cannot make the offer");
	return 0;
}

/* Derive the record layer's keys from Split() and, in passphrase mode,
 * CPace's key; start the punch.  0 or -1. */
static int
split(struct session *s)
{
	uint8_t h[CRYPTO_HASH_MAX], ktx[CRYPTO_KEY_LEN], krx[CRYPTO_KEY_LEN];
	size_t hlen;
	int ret = -1;

	if (crypto_hs_split(s->hs, h, &hlen, ktx, krx) == -1)
		goto out;
	/* The refusal's key, from the listener's sending key before the
	 * passphrase goes in: a refusal must open when the passphrases
	 * differ, and only the listener may make one. */
	crypto_generichash(s->refuse_key, sizeof s->refuse_key,
	    (const uint8_t *)"p2pcat refuse", 13, s->caller ? krx : ktx, CRYPTO_KEY_LEN);
	s->have_refuse_key = true;
	if (s->have_isk) {
		crypto_generichash(ktx, sizeof ktx, ktx, sizeof ktx, s->isk, sizeof s->isk);
		crypto_generichash(krx, sizeof krx, krx, sizeof krx, s->isk, sizeof s->isk);
	}
	if ((s->tx = crypto_tx_new(s->cipher, ktx, now_us())) == NULL ||
	    (s->rx = crypto_rx_new(s->cipher, krx)) == NULL) {
		log_errno("cannot set up the keys");
		goto out;
	}
	log_v(1, "record cipher: %s", crypto_cipher_label(s->cipher));
	s->keyed = true;
	ret = 0;
out:
	sodium_memzero(h, sizeof h);
	sodium_memzero(ktx, sizeof ktx);
	sodium_memzero(krx, sizeof krx);
	return ret;
}

/* The caller's probe: a HELLO with message 3. */
static size_t
make_hello(void *ctx, uint8_t *buf, size_t cap)
{
	struct session *s = ctx;

	if (cap < HELLO_HDR + s->msg3len)
		return 0;
	buf[0] = WIRE_MAGIC;
	buf[1] = WIRE_HELLO;
	put32(buf + 2, s->peer_cid);
	put32(buf + WIRE_HDR, s->my_cid);
	memcpy(buf + HELLO_HDR, s->msg3, s->msg3len);
	return HELLO_HDR + s->msg3len;
}

/* Our idle timeout and mode, for the peer (messages 2 and 3). */
static void
put_prefs(struct session *s, struct wr *w)
{
	uint8_t v[4];

	put32(v, (uint32_t)(s->sconf.idle_us / 1000));
	wr_tlv(w, TLV_IDLE, v, 4);
	wr_tlv(w, TLV_MODE, &(uint8_t){ s->conf->dgram }, 1);
}

/* The peer's idle timeout, told in p: keepalives go at a third of the
 * shorter of the two (and never less often than the configuration says),
 * so a quiet session outlives both timeouts. */
static void
set_keepalive(struct session *s, const struct parsed *p)
{
	uint64_t idle = s->sconf.idle_us, peer = (uint64_t)p->idle_ms * 1000;

	if (p->have_idle && peer > 0 && (idle == 0 || peer < idle))
		idle = peer;
	if (idle > 0 && (s->sconf.keepalive_us == 0 || idle / 3 < s->sconf.keepalive_us))
		s->sconf.keepalive_us = idle / 3;
	log_v(2, "keepalive every %.1f s", s->sconf.keepalive_us / 1e6);
}

/* Say that the peer's mode is not ours. */
static void
mode_mismatch(const struct session *s)
{
	log_err("%s %s, and we %s: use -u on both sides or on neither",
	    s->caller ? "the listener" : "refusing the caller: it",
	    s->conf->dgram ? "streams" : "sends datagrams (-u)",
	    s->conf->dgram ? "send datagrams (-u)" : "stream");
}

/* Whether the peer's mode (p) is ours; says what differs when not. */
static bool
same_mode(const struct session *s, const struct parsed *p)
{
	if ((p->mode == 1) == s->conf->dgram)
		return true;
	mode_mismatch(s);
	return false;
}

/* CONFIRM: the caller's proof that it holds CPace's key. */
static void
confirm_mac(const struct session *s, uint8_t out[HASH_LEN])
{
	crypto_generichash(out, HASH_LEN, (const uint8_t *)"p2pcat confirm", 14, s->isk,
	    sizeof s->isk);
}

/* The caller's cancel, sent as its probe once it refuses the answer. */
static size_t
make_cancel(void *ctx, uint8_t *buf, size_t cap)
{
	struct session *s = ctx;

	if (cap < CANCEL_LEN)
		return 0;
	buf[0] = WIRE_MAGIC;
	buf[1] = WIRE_CANCEL;
	put32(buf + 2, s->peer_cid);
	buf[WIRE_HDR] = (uint8_t)s->cancel_why;
	memcpy(buf + WIRE_HDR + 1, s->token, TOKEN_LEN);
	return CANCEL_LEN;
}

/* The caller refuses an answer that checked out (p), for why: its cancel
 * goes to the listener's addresses (sess_cancel). */
static void
cancel_start(struct session *s, int why, const struct parsed *p)
{
	s->cancel_why = why;
	punch_start(s->punch, s->my_cid, s->peer_cid, p->cand, p->ncand, make_cancel, s);
}

void
sess_cancel(struct session *s)
{
	uint64_t end = now_us() + CANCEL_US, now;
	struct sockaddr_storage from;
	uint8_t *pkt;
	ssize_t n;
	size_t len;
	int via;

	if (s->cancel_why == 0)
		return;
	while ((now = now_us()) < end) {
		struct pollfd pfd = { .fd = punch_fd(s->punch), .events = POLLIN };
		uint64_t t = punch_deadline(s->punch);

		punch_output(s->punch, now);
		/* What comes in only feeds the punch: a KNOCK from the
		 * listener shows one more address to send the cancel to. */
		while ((n = punch_recv(s->punch, &pkt, &from)) >= 0) {
			len = n;
			if (len <= WIRE_MAX_PKT)
				punch_input(s->punch, now, pkt, &len, &from, &via);
		}
		poll(&pfd, 1, timeout_ms(t < end ? t : end, now_us()));
	}
}

/* The listener's REFUSE (why) to the caller, back the way its HELLO
 * came (to, via).  It is smaller than the HELLO: nothing to amplify. */
static void
send_refuse(struct session *s, uint64_t now, const struct sockaddr_storage *to, int via)
{
	uint8_t pkt[REFUSE_LEN];

	if (s->nrefused >= REFUSE_MAX)
		return;
	s->nrefused++;
	pkt[0] = WIRE_MAGIC;
	pkt[1] = WIRE_REFUSE;
	put32(pkt + 2, s->peer_cid);
	pkt[WIRE_HDR] = (uint8_t)s->refused;
	crypto_generichash(pkt + WIRE_HDR + 1, TAG_LEN, pkt, WIRE_HDR + 1, s->refuse_key,
	    sizeof s->refuse_key);
	punch_reply(s->punch, now, to, via, pkt, sizeof pkt);
}

/* The listener refuses the caller whose message 3 came from (from, via),
 * for why, with err; -1. */
static int
refuse(struct session *s, uint64_t now, int why, int err,
    const struct sockaddr_storage *from, int via)
{
	s->refused = why;
	s->err = err;
	send_refuse(s, now, from, via);
	return -1;
}

/* The caller hears that the listener refused it; -1 if so. */
static int
refuse_input(struct session *s, const uint8_t *pkt, size_t len)
{
	uint8_t tag[TAG_LEN];

	if (!s->caller || !s->have_refuse_key || s->verified || len != REFUSE_LEN)
		return 0;
	crypto_generichash(tag, sizeof tag, pkt, WIRE_HDR + 1, s->refuse_key,
	    sizeof s->refuse_key);
	if (sodium_memcmp(tag, pkt + WIRE_HDR + 1, TAG_LEN) != 0) {
		s->forged++;
		return 0;
	}
	s->err = SESS_AUTH;
	switch (pkt[WIRE_HDR]) {
	case WHY_PASSPHRASE:
		log_err("the listener refused us: the passphrases differ");
		break;
	case WHY_MODE:
		mode_mismatch(s);
		s->err = SESS_MODE;
		break;
	default:
		log_err("the listener refused us: it does not accept our key (it "
		    "lists the keys it takes, or knows the name we gave by another key)");
	}
	return -1;
}

/* The listener hears that the caller gave up; -1 if so. */
static int
cancel_input(struct session *s, const uint8_t *pkt, size_t len)
{
	uint8_t h[HASH_LEN];

	if (s->caller || !s->have_token_hash || s->keyed || len != CANCEL_LEN)
		return 0;
	crypto_generichash(h, sizeof h, pkt + WIRE_HDR + 1, TOKEN_LEN, NULL, 0);
	if (sodium_memcmp(h, s->token_hash, HASH_LEN) != 0) {
		s->forged++;
		return 0;
	}
	if (pkt[WIRE_HDR] == WHY_MODE) {
		mode_mismatch(s);
		s->err = SESS_MODE;
	} else {
		log_err("the caller gave up: it does not accept our key");
		s->err = SESS_CANCELLED;
	}
	return -1;
}

/* The peer's static key, from the handshake (before Split() wipes it),
 * into s->peer_pub; 0 or -1. */
static int
peer_key(struct session *s)
{
	if (crypto_hs_remote_static(s->hs, s->peer_pub) == -1) {
		log_err("the peer sent no key");
		s->err = SESS_AUTH;
		return -1;
	}
	return 0;
}

/* Ask whoever decides whether the peer's key s->peer_pub is trusted; 0
 * or -1. */
static int
check_peer(struct session *s, const char *name)
{
	int r = s->conf->trust ? s->conf->trust(s->conf->trust_ctx, name, s->peer_pub) : 0;

	if (r != 0) {
		s->err = r == SESS_TRUST_BROKEN ? SESS_CONFIG : SESS_AUTH;
		return -1;
	}
	s->have_peer_pub = true;
	return 0;
}

int
sess_take_answer(struct session *s, const uint8_t *blob, size_t len)
{
	uint8_t payload[BLOB_MAX], pay[sizeof s->msg3], mac[HASH_LEN];
	struct wr w = { .b = pay, .n = 0, .cap = sizeof pay };
	struct parsed a, p;
	size_t paylen;

	s->err = SESS_FAIL;
	if (len < 1 || blob[0] != BLOB_VERSION) {
		log_err("the peer speaks another protocol version (%d)", len ? blob[0] : -1);
		return -1;
	}
	if (parse_tlvs(blob, 1, len, &a) == -1 || a.noise == NULL) {
		log_err("malformed answer from the peer");
		return -1;
	}
	if (s->conf->secret) {
		if (a.cpace == NULL || crypto_cpace_finish(s->cpace, true, NULL, 0,
		    a.cpace, NULL, 0, s->isk) == -1) {
			log_err("the answer has no valid passphrase share");
			return -1;
		}
		s->have_isk = true;
	}
	if (crypto_hs_read(s->hs, a.noise, a.noiselen, payload, sizeof payload,
	    &paylen) == -1) {
		log_err("the answer does not check out: forged, or not for this offer");
		return -1;
	}
	if (parse_tlvs(payload, 0, paylen, &p) == -1 || !p.have_cid) {
		log_err("malformed answer from the peer");
		return -1;
	}
	if (p.ncand == 0) {
		log_err("the peer sent no address to reach it at");
		return -1;
	}
	s->cipher = p.cipher ? p.cipher : CRYPTO_CHACHAPOLY;
	if (memchr(s->ciphers, s->cipher, s->nciphers) == NULL) {
		log_err("the peer chose a cipher we did not offer (%d)", s->cipher);
		return -1;
	}
	s->peer_cid = p.cid;
	if (peer_key(s) == -1)
		return -1;
	/* Refused now, the listener would punch for its whole -w: cancel. */
	if (check_peer(s, "") == -1) {
		cancel_start(s, WHY_KEY, &p);
		return -1;
	}
	if (!same_mode(s, &p)) {
		s->err = SESS_MODE;
		cancel_start(s, WHY_MODE, &p);
		return -1;
	}
	set_keepalive(s, &p);
	if (s->conf->self)
		wr_tlv(&w, TLV_NAME, s->conf->self, strlen(s->conf->self));
	put_prefs(s, &w);
	if (s->have_isk) {
		confirm_mac(s, mac);
		wr_tlv(&w, TLV_CONFIRM, mac, sizeof mac);
	}
	if (w.bad || crypto_hs_write(s->hs, pay, w.n, s->msg3, sizeof s->msg3,
	    &s->msg3len) == -1 || split(s) == -1) {
		log_err("the handshake failed");
		return -1;
	}
	s->err = SESS_OK;
	punch_start(s->punch, s->my_cid, s->peer_cid, p.cand, p.ncand, make_hello, s);
	return 0;
}

size_t
sess_take_offer(struct session *s, const char *name, const char *id,
    const uint8_t *blob, size_t len, uint8_t *out, size_t cap)
{
	uint8_t pro[BLOB_MAX + 256], b[BLOB_MAX], pay[BLOB_MAX], msg[BLOB_MAX];
	uint8_t share[CRYPTO_CPACE_SHARE_LEN];
	struct wr w = { .b = b, .n = 1, .cap = sizeof b };
	struct wr pw = { .b = pay, .n = 0, .cap = sizeof pay };
	size_t prolen, paylen, msglen;
	struct parsed o;

	if (len < 1 || blob[0] != BLOB_VERSION) {
		log_err("the caller speaks another protocol version (%d)", len ? blob[0] : -1);
		return 0;
	}
	if (parse_tlvs(blob, 1, len, &o) == -1 || o.noise == NULL || !o.have_cid) {
		log_err("malformed offer");
		return 0;
	}
	if (o.ncand == 0) {
		log_err("the caller sent no address to reach it at");
		return 0;
	}
	if (o.token_hash) {
		memcpy(s->token_hash, o.token_hash, HASH_LEN);
		s->have_token_hash = true;
	}
	/* The caller's first choice that we can use too. */
	if (o.ciphers == NULL) {
		static const uint8_t chacha = CRYPTO_CHACHAPOLY;

		o.ciphers = &chacha;
		o.nciphers = 1;
	}
	for (size_t i = 0; i < o.nciphers && s->cipher == 0; i++)
		if (cipher_ok(s, o.ciphers[i]))
			s->cipher = o.ciphers[i];
	if (s->cipher == 0) {
		log_err("the caller offers no cipher we can use");
		return 0;
	}
	b[0] = BLOB_VERSION;
	if (s->conf->secret) {
		if (o.cpace == NULL) {
			log_err("the caller has no passphrase, but we want one");
			return 0;
		}
		if (cpace_start(s, name, id, share) == -1 ||
		    crypto_cpace_finish(s->cpace, false, NULL, 0, o.cpace, NULL, 0, s->isk) == -1) {
			log_err("the caller's passphrase share is invalid");
			return 0;
		}
		s->have_isk = true;
		wr_tlv(&w, TLV_CPACE, share, sizeof share);
	}
	if ((prolen = prologue(pro, sizeof pro, name, id, blob, o.noise_at)) == 0 ||
	    (s->hs = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, prolen,
	    s->conf->id->priv, NULL)) == NULL)
		return 0;
	if (crypto_hs_read(s->hs, o.noise, o.noiselen, msg, sizeof msg, &paylen) == -1) {
		log_err("malformed handshake in the offer");
		return 0;
	}
	s->peer_cid = o.cid;
	put_cands(s, &pw);
	wr_tlv(&pw, TLV_CIPHER, &(uint8_t){ (uint8_t)s->cipher }, 1);
	put_prefs(s, &pw);
	if (pw.bad || crypto_hs_write(s->hs, pay, pw.n, msg, sizeof msg, &msglen) == -1)
		goto fail;
	wr_tlv(&w, TLV_NOISE, msg, msglen);
	if (w.bad || w.n > cap)
		goto fail;
	memcpy(out, b, w.n);
	punch_start(s->punch, s->my_cid, s->peer_cid, o.cand, o.ncand, NULL, NULL);
	return w.n;
fail:
	log_err("cannot make the answer");
	return 0;
}

const char *
sess_peer_name(const struct session *s)
{
	return s->peer_name;
}

static int recv_all(struct session *s, uint64_t now);

void
sess_linger(struct session *s)
{
	uint64_t now = now_us(), end = now + LINGER_US, quiet = now + QUIET_US;
	int sent;

	if (!s->refused)
		return;
	while ((now = now_us()) < end && now < quiet) {
		struct pollfd pfd = { .fd = punch_fd(s->punch), .events = POLLIN };

		if (poll(&pfd, 1, timeout_ms(quiet < end ? quiet : end, now)) <= 0)
			continue;
		sent = s->nrefused;
		recv_all(s, now_us());
		if (s->nrefused != sent)
			quiet = now_us() + QUIET_US;
	}
}

int
sess_fd(const struct session *s)
{
	return punch_fd(s->punch);
}

short
sess_events(const struct session *s)
{
	return POLLIN | (s->txfirst < s->ntx ? POLLOUT : 0);
}

/* Connected once the peer has proved it holds the session keys (the
 * handshake alone does not show that in passphrase mode, where the keys
 * also depend on the passphrase), and there is a path to it. */
bool
sess_connected(const struct session *s)
{
	return s->verified && punch_ready(s->punch);
}

int
sess_error(const struct session *s)
{
	return s->err;
}

struct stream *
sess_stream(struct session *s)
{
	return s->st;
}

int
sess_peer_key(const struct session *s, uint8_t pub[CRYPTO_KEY_LEN])
{
	if (!s->have_peer_pub)
		return -1;
	memcpy(pub, s->peer_pub, CRYPTO_KEY_LEN);
	return 0;
}

bool
sess_relayed(const struct session *s)
{
	return punch_relayed(s->punch);
}

const char *
sess_describe(const struct session *s, char *buf, size_t size)
{
	return punch_describe(s->punch, buf, size);
}

int
sess_cipher(const struct session *s)
{
	return s->keyed ? s->cipher : 0;
}

uint64_t
sess_dropped(const struct session *s)
{
	struct crypto_rx_stats st;

	if (s->rx == NULL)
		return s->forged;
	crypto_rx_get_stats(s->rx, &st);
	return s->forged + st.auth + st.replay + st.old + st.malformed;
}

/* The stream starts with the first authenticated packet, so its idle
 * timer does not count the time spent punching.  0 or -1. */
static int
start_stream(struct session *s, uint64_t now)
{
	if (s->st)
		return 0;
	/* The caller's HELLO was answered: one round trip, at least 1 ms. */
	if (s->caller && punch_first_us(s->punch) > 0)
		s->sconf.initial_rtt_us = punch_first_us(s->punch) > 1000 ?
		    punch_first_us(s->punch) : 1000;
	if ((s->st = stream_new(&s->sconf, now)) == NULL) {
		log_errno("cannot start the stream");
		s->err = SESS_FAIL;
		return -1;
	}
	s->path_id = punch_path_id(s->punch);
	return 0;
}

/* A HELLO at the listener: message 3 completes the handshake. */
static int
hello_input(struct session *s, uint64_t now, const uint8_t *pkt, size_t len,
    const struct sockaddr_storage *from, int via)
{
	const uint8_t *m = pkt + HELLO_HDR;
	size_t mlen = len - HELLO_HDR;
	struct crypto_hs *try;
	uint8_t pay[sizeof s->msg3], mac[HASH_LEN];
	struct parsed p;
	size_t paylen;

	if (s->caller || len < HELLO_HDR || get32(pkt + WIRE_HDR) != s->peer_cid ||
	    s->hs == NULL)
		return 0;
	if (s->refused) {
		/* Refused: the caller has not heard it yet. */
		if (mlen == s->msg3len && sodium_memcmp(m, s->msg3, mlen) == 0)
			send_refuse(s, now, from, via);
		return 0;
	}
	if (s->keyed) {
		/* The caller has not heard us yet, maybe on this path. */
		if (mlen != s->msg3len || sodium_memcmp(m, s->msg3, mlen) != 0)
			return 0;
		if (!punch_ready(s->punch))
			punch_confirm(s->punch, now, from, via, len);
		stream_ping(s->st);
		return 0;
	}
	/* Anyone on the path can send a HELLO: read it on a copy of the
	 * handshake, so a forgery is dropped and the real one still works. */
	if (mlen > sizeof s->msg3 || (try = crypto_hs_dup(s->hs)) == NULL)
		return 0;
	if (crypto_hs_read(try, m, mlen, pay, sizeof pay, &paylen) == -1) {
		crypto_hs_free(try);
		s->forged++;
		log_v(1, "dropped a forged handshake message");
		return 0;
	}
	crypto_hs_free(s->hs);
	s->hs = try;
	memcpy(s->msg3, m, mlen);
	s->msg3len = mlen;
	if (parse_tlvs(pay, 0, paylen, &p) == -1) {
		log_err("malformed handshake from the caller");
		s->err = SESS_FAIL;
		return -1;
	}
	snprintf(s->peer_name, sizeof s->peer_name, "%s", p.name);
	if (peer_key(s) == -1 || split(s) == -1) {
		s->err = SESS_FAIL;
		return -1;
	}
	/* The passphrase first: a wrong one is what a guesser sends, and it
	 * is refused whatever the key. */
	if (s->have_isk) {
		confirm_mac(s, mac);
		if (p.confirm == NULL || sodium_memcmp(mac, p.confirm, HASH_LEN) != 0) {
			if (s->conf->guessed && s->err != SESS_PASSPHRASE)
				s->conf->guessed(s->conf->guessed_ctx);
			log_err("refusing the caller: it failed the passphrase");
			return refuse(s, now, WHY_PASSPHRASE, SESS_PASSPHRASE, from, via);
		}
	}
	if (!same_mode(s, &p))
		return refuse(s, now, WHY_MODE, SESS_MODE, from, via);
	if (check_peer(s, s->peer_name) == -1)
		return refuse(s, now, WHY_KEY, SESS_AUTH, from, via);
	set_keepalive(s, &p);
	if (start_stream(s, now) == -1) {
		s->err = SESS_FAIL;
		return -1;
	}
	punch_confirm(s->punch, now, from, via, len);
	stream_ping(s->st);
	return 0;
}

/* Seal the stream payload of n bytes as packet pn into pkt, header
 * included: the payload is at pkt + HDR_LEN, but for its last bytes when
 * the stream left them in its buffer (the ntail pieces of tail, as
 * stream_output_tail gives them).  The datagram's length, or 0 after
 * failing the session. */
static size_t
seal_pkt(struct session *s, uint64_t now, uint8_t *pkt, size_t n, uint64_t pn,
    const struct iovec *tail, int ntail)
{
	struct iovec iov[1 + STREAM_TAIL_MAX];
	int i;

	pkt[0] = WIRE_MAGIC;
	pkt[1] = WIRE_DATA;
	put32(pkt + 2, s->peer_cid);
	put64(pkt + WIRE_HDR, pn);
	iov[0].iov_base = pkt + HDR_LEN;
	iov[0].iov_len = n;
	for (i = 0; i < ntail; i++) {
		iov[0].iov_len -= tail[i].iov_len;
		iov[1 + i] = tail[i];
	}
	if (crypto_sealv(s->tx, now, pkt, HDR_LEN, pn, iov, 1 + ntail, pkt + HDR_LEN) == -1) {
		log_err("cannot seal packet %llu", (unsigned long long)pn);
		s->err = SESS_FAIL;
		return 0;
	}
	return HDR_LEN + n + CRYPTO_TAG_LEN;
}

/* A PATH_CHALLENGE (type) where the punch checks a path, or a
 * PATH_RESPONSE back to (to, via), which sent us the in bytes it
 * answers; PATH_DGRAM bytes where the anti-amplification limit allows
 * them, else unpadded.  0 or -1. */
static int
send_path(struct session *s, uint64_t now, int type, const uint8_t data[STREAM_PATH_DATA],
    const struct sockaddr_storage *to, int via, size_t in)
{
	uint8_t pkt[PATH_DGRAM];
	size_t n, room = type == STREAM_PATH_CHALLENGE ? punch_probe_room(s->punch) :
	    punch_reply_room(s->punch, to, via, in);
	uint64_t pn;

	/* Not even unpadded within the limit: nothing goes (RFC 9000
	 * §8.1; §8.2.2, "MUST NOT ... exceeds the anti-amplification
	 * limit"), and no packet number or count is spent on it.  For a
	 * response this is a guard: the challenge it answers added three
	 * times its own size to the room (punch_input counts it first). */
	if (room < DATA_OVERHEAD + 1 + STREAM_PATH_DATA) {
		if (type == STREAM_PATH_CHALLENGE)
			log_v(2, "no PATH_CHALLENGE: the address checked sent us too "
			    "little (RFC 9000 §8.1)");
		return 0;
	}
	if ((n = stream_path_packet(s->st, type, data,
	    room >= sizeof pkt ? sizeof pkt - DATA_OVERHEAD : 0, &pn, pkt + HDR_LEN,
	    sizeof pkt - DATA_OVERHEAD)) == 0)
		return 0;
	if ((n = seal_pkt(s, now, pkt, n, pn, NULL, 0)) == 0)
		return -1;
	if (type == STREAM_PATH_CHALLENGE)
		punch_probe(s->punch, now, pkt, n);
	else
		punch_reply(s->punch, now, to, via, pkt, n);
	return 0;
}

/* Open and deliver one DATA packet; 0, or -1 when the session failed. */
static int
data_input(struct session *s, uint64_t now, uint8_t *pkt, size_t len,
    const struct sockaddr_storage *from, int via)
{
	uint8_t plain[WIRE_MAX_PKT], data[STREAM_PATH_DATA];
	uint64_t pn;
	bool fresh;

	if (!s->keyed || s->refused || len < DATA_OVERHEAD)
		return 0;
	pn = get64(pkt + WIRE_HDR);
	if (crypto_open(s->rx, now, pkt, HDR_LEN, pn, pkt + HDR_LEN, len - HDR_LEN,
	    plain) == -1)
		return 0;	/* counted by the record layer */
	if ((fresh = !s->rx_any || pn > s->rx_max_pn))
		s->rx_max_pn = pn;
	s->rx_any = true;
	s->verified = true;
	if (start_stream(s, now) == -1)
		return -1;
	if (stream_input(s->st, now, pn, plain, len - DATA_OVERHEAD) == -1)
		log_v(2, "dropped a malformed packet %llu", (unsigned long long)pn);
	switch (stream_path_frame(s->st, data)) {
	case STREAM_PATH_CHALLENGE:
		/* The peer tests a path: answer that way.  It shows only
		 * that the way to us works, not where to send. */
		return send_path(s, now, STREAM_PATH_RESPONSE, data, from, via, len);
	case STREAM_PATH_RESPONSE:
		/* If it answers our challenge, the peer is where that went. */
		punch_response(s->punch, now, data);
		return 0;
	}
	if (fresh)
		punch_confirm(s->punch, now, from, via, len);
	return 0;
}

static int
recv_all(struct session *s, uint64_t now)
{
	struct sockaddr_storage from;
	uint8_t *pkt;
	ssize_t n;
	size_t len;
	int i, via, r = 0;

	for (i = 0; i < IO_BATCH && r == 0; i++) {
		if ((n = punch_recv(s->punch, &pkt, &from)) == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
				return 0;
			log_errno("recvfrom");
			s->err = SESS_FAIL;
			return -1;
		}
		len = n;
		if (len > WIRE_MAX_PKT || punch_input(s->punch, now, pkt, &len, &from, &via) != 1)
			continue;
		switch (pkt[1] & ~CRYPTO_HDR_PHASE) {
		case WIRE_HELLO:
			r = hello_input(s, now, pkt, len, &from, via);
			break;
		case WIRE_DATA:
			r = data_input(s, now, pkt, len, &from, via);
			break;
		case WIRE_REFUSE:
			r = refuse_input(s, pkt, len);
			break;
		case WIRE_CANCEL:
			r = cancel_input(s, pkt, len);
			break;
		}
	}
	return r;
}

/* Send the runs waiting: 1 all sent, 0 the socket is full, -1 error. */
static int
flush_runs(struct session *s)
{
	int k = punch_sendv(s->punch, s->run + s->txfirst, s->ntx - s->txfirst);

	if (k == -1) {
		s->err = SESS_FAIL;
		return -1;
	}
	s->txfirst += k;
	return s->txfirst == s->ntx;
}

/* Seal what the stream has to send, up to IO_BATCH packets back to back
 * in txbuf, as runs of equal-sized packets (the last of a run may be
 * shorter) for UDP GSO, and send them. */
static int
send_all(struct session *s, uint64_t now)
{
	uint8_t data[STREAM_PATH_DATA];
	struct punch_run *r = NULL;
	struct iovec tail[STREAM_TAIL_MAX];
	size_t n, len, off = 0;
	uint64_t pn;
	int i, ntail;

	punch_output(s->punch, now);
	if (s->st == NULL)
		return 0;
	/* RFC 9000 §9.4: on another network path, the congestion
	 * controller and RTT estimator start over, or go back to what they
	 * were on it if it is the one just left (stream_path_move). */
	if (punch_path_id(s->punch) != s->path_id) {
		log_v(2, "another network path: congestion control and RTT move");
		stream_path_move(s->st, now, s->path_id, punch_path_id(s->punch));
		s->path_id = punch_path_id(s->punch);
	}
	/* Also before the first path: it may be one being checked. */
	while (punch_challenge(s->punch, now, data))
		if (send_path(s, now, STREAM_PATH_CHALLENGE, data, NULL, 0, 0) == -1)
			return -1;
	if (!punch_ready(s->punch))
		return 0;
	if (s->txfirst < s->ntx && flush_runs(s) != 1)
		return s->err == SESS_OK ? 0 : -1;
	s->txfirst = s->ntx = 0;
	for (i = 0; i < IO_BATCH; i++) {
		uint8_t *pkt = s->txbuf + off;

		/* The stream's bytes are sealed from its buffer, not copied
		 * into the packet first. */
		n = stream_output_tail(s->st, now, &pn, pkt + HDR_LEN,
		    WIRE_MAX_PKT - DATA_OVERHEAD, tail, &ntail);
		if (n == 0)
			break;
		if ((len = seal_pkt(s, now, pkt, n, pn, tail, ntail)) == 0)
			return -1;
		off += len;
		/* Joins the run if no larger than its packets, the run has
		 * no short one yet, and the run stays within GSO's bounds. */
		if (r && len <= r->seg && r->len % r->seg == 0 &&
		    r->len + len <= PUNCH_RUN_BYTES && r->len / r->seg < PUNCH_RUN_SEGS) {
			r->len += len;
			continue;
		}
		r = &s->run[s->ntx++];
		r->buf = pkt;
		r->len = r->seg = len;
	}
	return s->ntx == 0 || flush_runs(s) != -1 ? 0 : -1;
}

int
sess_io(struct session *s, uint64_t now)
{
	if (s->err != SESS_OK || recv_all(s, now) == -1)
		return -1;
	return send_all(s, now);
}

uint64_t
sess_deadline(const struct session *s)
{
	uint64_t t = punch_deadline(s->punch);

	if (s->st && punch_ready(s->punch) && s->txfirst == s->ntx) {
		uint64_t u = stream_deadline(s->st);

		if (u < t)
			t = u;
	}
	return t;
}
