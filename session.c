/*
 * session.c: one connection to a peer.
 *
 * The rendezvous blob (offer or answer) is a version byte and TLVs:
 *
 *	1 CID   4 bytes		the sender's connection id
 *	2 EPH  32 bytes		the sender's ephemeral X25519 public key
 *	3 CAND  type(1) family(1: 4|6) port(2) address(4|16)
 *
 * Unknown TLVs are skipped, so later versions can add to it.  Both sides
 * compute K = BLAKE2b-256(key = X25519(own, peer's), offer || answer), so
 * the keys are bound to this rendezvous, and from K (crypto_kdf) the probe
 * key and one key per direction.  A data packet is
 *
 *	hdr(6) | pn(8) | ChaCha20-Poly1305(stream payload) | tag(16)
 *
 * with the packet number as nonce and hdr|pn as additional data.  An
 * authenticated packet from a new address with a higher packet number
 * moves the path there: the peer's NAT changed its port.
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

#include "punch.h"
#include "session.h"
#include "util.h"
#include "wire.h"

#define BLOB_VERSION	1
#define TLV_CID		1
#define TLV_EPH		2
#define TLV_CAND	3
#define KDF_CTX		"p2pcat01"	/* crypto_kdf context: 8 bytes */
#define KDF_PROBE	1
#define KDF_C2L		2		/* caller to listener */
#define KDF_L2C		3
#define PN_LEN		8
#define AEAD_TAG	crypto_aead_chacha20poly1305_ietf_ABYTES
#define DATA_OVERHEAD	(WIRE_HDR + PN_LEN + AEAD_TAG)
#define IO_BATCH	64		/* packets per direction per sess_io */

struct session {
	bool caller;
	int fd;
	uint32_t my_cid, peer_cid;
	uint8_t esk[32], epk[32];
	uint8_t ktx[32], krx[32];
	uint8_t blob[512];		/* our blob, for the key derivation */
	size_t bloblen;
	int nlocal;
	struct cand local[PUNCH_MAX_CANDS];
	struct punch *punch;
	struct stream *st;
	struct stream_conf sconf;
	bool connected;
	struct sockaddr_storage path;
	uint64_t rx_max_pn;
	bool rx_any;
	size_t pendlen;			/* a packet the socket refused (EAGAIN) */
	uint8_t pend[WIRE_MAX_PKT];
	unsigned long dropped;		/* packets that failed authentication */
};

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

struct session *
sess_new(const struct sess_conf *c)
{
	struct session *s;

	if ((s = calloc(1, sizeof *s)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	s->caller = c->caller;
	s->sconf = c->stream;
	if (s->sconf.mtu == 0)
		s->sconf.mtu = WIRE_MTU - DATA_OVERHEAD;
	if ((s->fd = punch_socket(c->port)) == -1) {
		free(s);
		return NULL;
	}
	s->nlocal = punch_gather(s->fd, s->local, PUNCH_MAX_CANDS);
	do
		s->my_cid = randombytes_random();
	while (s->my_cid == 0);
	crypto_box_keypair(s->epk, s->esk);
	return s;
}

void
sess_free(struct session *s)
{
	if (s == NULL)
		return;
	if (s->fd != -1)
		close(s->fd);
	punch_free(s->punch);
	stream_free(s->st);
	sodium_memzero(s, sizeof *s);
	free(s);
}

size_t
sess_blob(struct session *s, uint8_t *buf, size_t cap)
{
	uint8_t b[sizeof s->blob];
	size_t n = 0;
	int i;

	b[n++] = BLOB_VERSION;
	b[n++] = TLV_CID;
	b[n++] = 4;
	put32(b + n, s->my_cid);
	n += 4;
	b[n++] = TLV_EPH;
	b[n++] = 32;
	memcpy(b + n, s->epk, 32);
	n += 32;
	for (i = 0; i < s->nlocal; i++) {
		const struct sockaddr_storage *a = &s->local[i].addr;
		size_t alen = a->ss_family == AF_INET ? 4 : 16;

		if (n + 2 + 4 + alen > sizeof b)
			break;
		b[n++] = TLV_CAND;
		b[n++] = 4 + alen;
		b[n++] = s->local[i].type;
		if (alen == 4) {
			const struct sockaddr_in *s4 = (const void *)a;

			b[n++] = 4;
			memcpy(b + n, &s4->sin_port, 2);
			memcpy(b + n + 2, &s4->sin_addr, 4);
		} else {
			const struct sockaddr_in6 *s6 = (const void *)a;

			b[n++] = 6;
			memcpy(b + n, &s6->sin6_port, 2);
			memcpy(b + n + 2, &s6->sin6_addr, 16);
		}
		n += 2 + alen;
	}
	if (n > cap)
		return 0;
	memcpy(s->blob, b, n);
	s->bloblen = n;
	memcpy(buf, b, n);
	return n;
}

/* Parse one CAND value; 0, or -1 when malformed. */
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
	} else if (v[1] == 6 && len == 20) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addr;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_port, v + 2, 2);
		memcpy(&s6->sin6_addr, v + 4, 16);
	} else {
		return -1;
	}
	/* Port 0 and unspecified addresses cannot be probed. */
	if ((c->addr.ss_family == AF_INET &&
	    (((struct sockaddr_in *)&c->addr)->sin_port == 0 ||
	    ((struct sockaddr_in *)&c->addr)->sin_addr.s_addr == 0)) ||
	    (c->addr.ss_family == AF_INET6 &&
	    (((struct sockaddr_in6 *)&c->addr)->sin6_port == 0 ||
	    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&c->addr)->sin6_addr))))
		return -1;
	return 0;
}

/* Derive the probe key and both direction keys; 0 or -1. */
static int
derive(struct session *s, const uint8_t peer_epk[32], const uint8_t *peer,
    size_t len, uint8_t kprobe[32])
{
	uint8_t shared[32], k[32];
	crypto_generichash_state h;
	int ret = -1;

	/* Fails for a low-order point: the peer's key contributes nothing. */
	if (crypto_scalarmult(shared, s->esk, peer_epk) != 0)
		goto out;
	crypto_generichash_init(&h, shared, sizeof shared, sizeof k);
	if (s->caller) {
		crypto_generichash_update(&h, s->blob, s->bloblen);
		crypto_generichash_update(&h, peer, len);
	} else {
		crypto_generichash_update(&h, peer, len);
		crypto_generichash_update(&h, s->blob, s->bloblen);
	}
	crypto_generichash_final(&h, k, sizeof k);
	crypto_kdf_derive_from_key(kprobe, 32, KDF_PROBE, KDF_CTX, k);
	crypto_kdf_derive_from_key(s->caller ? s->ktx : s->krx, 32, KDF_C2L, KDF_CTX, k);
	crypto_kdf_derive_from_key(s->caller ? s->krx : s->ktx, 32, KDF_L2C, KDF_CTX, k);
	ret = 0;
out:
	sodium_memzero(shared, sizeof shared);
	sodium_memzero(k, sizeof k);
	sodium_memzero(&h, sizeof h);
	return ret;
}

int
sess_start(struct session *s, const uint8_t *peer, size_t len)
{
	struct cand cands[PUNCH_MAX_CANDS];
	uint8_t peer_epk[32], kprobe[32];
	int ncand = 0, have_cid = 0, have_eph = 0, i, ret = -1;
	size_t off = 1;

	if (s->bloblen == 0) {
		uint8_t tmp[sizeof s->blob];

		sess_blob(s, tmp, sizeof tmp);
	}
	if (len < 1 || peer[0] != BLOB_VERSION) {
		log_err("the peer speaks another protocol version (%d)", len ? peer[0] : -1);
		return -1;
	}
	while (off < len) {
		uint8_t t, l;

		if (len - off < 2 || len - off - 2 < peer[off + 1])
			goto bad;
		t = peer[off];
		l = peer[off + 1];
		off += 2;
		if (t == TLV_CID && l == 4) {
			s->peer_cid = get32(peer + off);
			have_cid = 1;
		} else if (t == TLV_EPH && l == 32) {
			memcpy(peer_epk, peer + off, 32);
			have_eph = 1;
		} else if (t == TLV_CAND) {
			if (ncand < PUNCH_MAX_CANDS && parse_cand(peer + off, l, &cands[ncand]) == 0)
				ncand++;
		} else if (t == TLV_CID || t == TLV_EPH) {
			goto bad;
		}
		off += l;
	}
	if (!have_cid || !have_eph || s->peer_cid == 0)
		goto bad;
	if (ncand == 0) {
		log_err("the peer sent no address to reach it at");
		return -1;
	}
	if (derive(s, peer_epk, peer, len, kprobe) == -1)
		goto bad;
	if ((s->punch = punch_new(s->fd, kprobe, s->my_cid, s->peer_cid)) == NULL) {
		log_errno("cannot start the session");
		goto out;
	}
	for (i = 0; i < ncand; i++)
		punch_add(s->punch, &cands[i]);
	ret = 0;
	goto out;
bad:
	log_err("malformed rendezvous message from the peer");
out:
	sodium_memzero(kprobe, sizeof kprobe);
	return ret;
}

int
sess_fd(const struct session *s)
{
	return s->fd;
}

short
sess_events(const struct session *s)
{
	return POLLIN | (s->pendlen ? POLLOUT : 0);
}

bool
sess_connected(const struct session *s)
{
	return s->connected;
}

struct stream *
sess_stream(struct session *s)
{
	return s->st;
}

const char *
sess_describe(const struct session *s, char *buf, size_t size)
{
	char a[64];

	snprintf(buf, size, "direct path to %s", punch_addrstr(&s->path, a, sizeof a));
	return buf;
}

static void
set_path(struct session *s, const struct sockaddr_storage *from, const char *why)
{
	char a[64];

	s->path = *from;
	log_v(1, "%s %s", why, punch_addrstr(from, a, sizeof a));
}

/* The first proof of a path: the stream starts now, so that its idle
 * timer does not count the time spent punching.  0 or -1. */
static int
connect_path(struct session *s, uint64_t now, const struct sockaddr_storage *from,
    const char *why)
{
	if ((s->st = stream_new(&s->sconf, now)) == NULL) {
		log_errno("cannot start the stream");
		return -1;
	}
	s->connected = true;
	set_path(s, from, why);
	return 0;
}

/* Open and deliver one DATA packet. */
static int
data_input(struct session *s, uint64_t now, const uint8_t *pkt, size_t len,
    const struct sockaddr_storage *from)
{
	uint8_t plain[WIRE_MAX_PKT], nonce[12] = { 0 };
	unsigned long long plen;
	uint64_t pn;

	if (len < DATA_OVERHEAD || s->punch == NULL || get32(pkt + 2) != s->my_cid)
		return 0;
	pn = get64(pkt + WIRE_HDR);
	memcpy(nonce + 4, pkt + WIRE_HDR, PN_LEN);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &plen, NULL,
	    pkt + WIRE_HDR + PN_LEN, len - WIRE_HDR - PN_LEN,
	    pkt, WIRE_HDR + PN_LEN, nonce, s->krx) != 0) {
		s->dropped++;
		return 0;
	}
	if (!s->connected) {
		if (connect_path(s, now, from, "peer reached us from") == -1)
			return -1;
	} else if (!punch_same_addr(from, &s->path) && (!s->rx_any || pn > s->rx_max_pn)) {
		set_path(s, from, "peer moved to");
	}
	if (!s->rx_any || pn > s->rx_max_pn)
		s->rx_max_pn = pn;
	s->rx_any = true;
	if (stream_input(s->st, now, pn, plain, plen) == -1)
		log_v(2, "dropped a malformed packet %llu", (unsigned long long)pn);
	return 0;
}

static int
recv_all(struct session *s, uint64_t now)
{
	struct sockaddr_storage from;
	uint8_t pkt[WIRE_MAX_PKT + 1];
	ssize_t n;
	int i;

	for (i = 0; i < IO_BATCH; i++) {
		if ((n = punch_recv(s->fd, pkt, sizeof pkt, &from)) == -1) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
				return 0;
			log_errno("recvfrom");
			return -1;
		}
		if (n < WIRE_HDR || n > WIRE_MAX_PKT || pkt[0] != WIRE_MAGIC)
			continue;
		switch (pkt[1]) {
		case WIRE_PROBE:
		case WIRE_PROBE_ACK:
			if (s->punch && punch_input(s->punch, now, pkt, n, &from) == 1 &&
			    !s->connected && connect_path(s, now, &from, "connected to") == -1)
				return -1;
			break;
		case WIRE_DATA:
			if (data_input(s, now, pkt, n, &from) == -1)
				return -1;
			break;
		}
	}
	return 0;
}

/* Send pkt on the path; 1 sent, 0 the socket is full (kept pending), -1 error. */
static int
send_pkt(struct session *s, const uint8_t *pkt, size_t len)
{
	if (punch_send(s->fd, pkt, len, &s->path) >= 0)
		return 1;
	if (errno == EAGAIN || errno == ENOBUFS) {
		memcpy(s->pend, pkt, len);
		s->pendlen = len;
		return 0;
	}
	/* The peer is briefly unreachable: the stream retransmits. */
	if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH ||
	    errno == EINTR)
		return 1;
	log_errno("sendto");
	return -1;
}

static int
send_all(struct session *s, uint64_t now)
{
	uint8_t pkt[WIRE_MAX_PKT], plain[WIRE_MAX_PKT], nonce[12] = { 0 };
	unsigned long long clen;
	uint64_t pn;
	size_t n;
	int i, r;

	if (s->punch)
		punch_output(s->punch, now);
	if (!s->connected)
		return 0;
	if (s->pendlen) {
		size_t len = s->pendlen;

		s->pendlen = 0;
		if ((r = send_pkt(s, s->pend, len)) != 1)
			return r;
	}
	for (i = 0; i < IO_BATCH; i++) {
		n = stream_output(s->st, now, &pn, plain, s->sconf.mtu);
		if (n == 0)
			break;
		pkt[0] = WIRE_MAGIC;
		pkt[1] = WIRE_DATA;
		put32(pkt + 2, s->peer_cid);
		put64(pkt + WIRE_HDR, pn);
		memcpy(nonce + 4, pkt + WIRE_HDR, PN_LEN);
		crypto_aead_chacha20poly1305_ietf_encrypt(pkt + WIRE_HDR + PN_LEN, &clen,
		    plain, n, pkt, WIRE_HDR + PN_LEN, NULL, nonce, s->ktx);
		if ((r = send_pkt(s, pkt, WIRE_HDR + PN_LEN + clen)) != 1)
			return r;
	}
	return 0;
}

int
sess_io(struct session *s, uint64_t now)
{
	if (recv_all(s, now) == -1)
		return -1;
	return send_all(s, now);
}

uint64_t
sess_deadline(const struct session *s)
{
	uint64_t t = s->punch ? punch_deadline(s->punch) : UINT64_MAX;

	if (s->connected && !s->pendlen) {
		uint64_t u = stream_deadline(s->st);

		if (u < t)
			t = u;
	}
	return t;
}
