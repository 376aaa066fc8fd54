/*
 * crypto.c: the Noise handshake (Noise Protocol Framework, revision 34,
 * sections 5 and 7), the record layer for transport packets, and the
 * identity key file.  See crypto.h for the formats.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "crypto.h"
#include "util.h"

/* Noise section 12.1: DHLEN of 25519. */
#define DHLEN		32
/* Noise section 5.1: nonce 2^64-1 is reserved, for Rekey(). */
#define NONCE_MAX	UINT64_MAX
/* Noise sections 12.3 and 12.4: both ciphers take a 96-bit nonce. */
#define NONCE_LEN	crypto_aead_chacha20poly1305_ietf_NPUBBYTES
_Static_assert(NONCE_LEN == crypto_aead_aes256gcm_NPUBBYTES, "one nonce size");
_Static_assert(CRYPTO_KEY_LEN == crypto_aead_aes256gcm_KEYBYTES &&
    CRYPTO_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "one key size");
_Static_assert(CRYPTO_TAG_LEN == crypto_aead_aes256gcm_ABYTES &&
    CRYPTO_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "one tag size");

/* Noise section 12.5: the hash functions, with libcrypto's names of
 * them for HMAC. */
enum hash_id { HASH_BLAKE2B, HASH_SHA256, HASH_SHA512 };

struct hash_alg {
	const char *name;
	enum hash_id id;
	size_t len;		/* HASHLEN */
	const char *md;		/* libcrypto's name of it, for HMAC */
};

static const struct hash_alg hashes[] = {
	{ "BLAKE2b", HASH_BLAKE2B, 64, "BLAKE2B-512" },
	{ "SHA256", HASH_SHA256, 32, "SHA2-256" },
	{ "SHA512", HASH_SHA512, 64, "SHA2-512" },
};

union hash_state {
	crypto_generichash_state b2;
	crypto_hash_sha256_state s256;
	crypto_hash_sha512_state s512;
};

/* Noise section 7: the handshake patterns we implement. */
enum token { TOK_END, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE, TOK_SS };

#define PATTERN_MSGS	3
#define PATTERN_TOKENS	5

struct pattern {
	const char *name;
	bool pre_rs;		/* "<- s" before the first message */
	unsigned nmsg;
	uint8_t msg[PATTERN_MSGS][PATTERN_TOKENS];
};

static const struct pattern patterns[] = {
	{ "NN", false, 2, { { TOK_E }, { TOK_E, TOK_EE } } },
	{ "IK", true, 2, { { TOK_E, TOK_ES, TOK_S, TOK_SS }, { TOK_E, TOK_EE, TOK_SE } } },
	{ "XX", false, 3, { { TOK_E }, { TOK_E, TOK_EE, TOK_S, TOK_ES }, { TOK_S, TOK_SE } } },
};

/*
 * A key of the record layer.  AESGCM's seals and opens through OpenSSL's
 * libcrypto, in a context that holds the key schedule (computed once per
 * key, not once per packet): its AES-GCM (with VAES and VPCLMULQDQ where
 * the CPU has them) takes a 1400-byte packet in about 60 % of the time
 * libsodium's does, and sealing and opening were half the CPU time of a
 * transfer.  The handshake's AEAD stays libsodium's.  A key owns its
 * context (which libcrypto wipes when it frees it): key_free frees it,
 * and moving a key moves it.
 */
struct aead_key {
	EVP_CIPHER_CTX *aes;		/* AESGCM only; NULL: none yet */
	uint8_t k[CRYPTO_KEY_LEN];
};

/* Noise section 5.1. */
struct cipher {
	uint8_t k[CRYPTO_KEY_LEN];
	bool has_k;
	uint64_t n;
};

struct crypto_hs {
	const struct hash_alg *hash;
	int cipher;		/* enum crypto_cipher */
	const struct pattern *pat;
	bool initiator;
	bool dead;		/* failed, or split: every call fails */
	unsigned msg;		/* index of the next message */
	/* Noise section 5.2 */
	uint8_t ck[CRYPTO_HASH_MAX];
	uint8_t h[CRYPTO_HASH_MAX];
	struct cipher cs;
	/* Noise section 5.3 */
	uint8_t s[DHLEN], s_pub[DHLEN];
	uint8_t e[DHLEN], e_pub[DHLEN];
	uint8_t rs[DHLEN], re[DHLEN];
	bool has_s, has_e, has_rs, has_re;
};

/* Replay window: a ring of 64-bit words, one more than the window needs
 * so that whole words can be cleared as the top moves (RFC 6479). */
#define WINDOW_WORDS	(CRYPTO_REPLAY_WINDOW / 64 + 1)

struct crypto_tx {
	struct aead_key key;
	int cipher;
	unsigned phase;
	bool sealed;		/* last_pn is valid */
	uint64_t last_pn;
	uint64_t pkts, bytes, since;	/* under the current key */
	uint64_t lim_pkts, lim_bytes, lim_us;
	uint64_t rekeys;
};

struct crypto_rx {
	struct aead_key cur, prev, next;
	int cipher;
	bool has_prev, has_next;
	unsigned phase;		/* of cur */
	uint64_t cur_min_pn;	/* lowest pn opened with cur; 0 before any rekey */
	uint64_t prev_since;	/* when cur replaced prev */
	bool any;		/* top is valid */
	uint64_t top;		/* highest authentic pn */
	uint64_t bitmap[WINDOW_WORDS];
	struct crypto_rx_stats st;
};

int
crypto_init(void)
{
	if (sodium_init() < 0) {
		log_err("cannot initialise libsodium");
		return -1;
	}
	return 0;
}

/* Hash functions. */

static void
hash_init(const struct hash_alg *a, union hash_state *st)
{
	switch (a->id) {
	case HASH_BLAKE2B:
		crypto_generichash_init(&st->b2, NULL, 0, a->len);
		break;
	case HASH_SHA256:
		crypto_hash_sha256_init(&st->s256);
		break;
	case HASH_SHA512:
		crypto_hash_sha512_init(&st->s512);
		break;
	}
}

static void
hash_update(const struct hash_alg *a, union hash_state *st, const uint8_t *p, size_t len)
{
	if (len == 0)
		return;
	switch (a->id) {
	case HASH_BLAKE2B:
		crypto_generichash_update(&st->b2, p, len);
		break;
	case HASH_SHA256:
		crypto_hash_sha256_update(&st->s256, p, len);
		break;
	case HASH_SHA512:
		crypto_hash_sha512_update(&st->s512, p, len);
		break;
	}
}

static void
hash_final(const struct hash_alg *a, union hash_state *st, uint8_t *out)
{
	switch (a->id) {
	case HASH_BLAKE2B:
		crypto_generichash_final(&st->b2, out, a->len);
		break;
	case HASH_SHA256:
		crypto_hash_sha256_final(&st->s256, out);
		break;
	case HASH_SHA512:
		crypto_hash_sha512_final(&st->s512, out);
		break;
	}
	sodium_memzero(st, sizeof *st);
}

int
crypto_hmac(const char *md, const uint8_t *key, size_t keylen, const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen, uint8_t *out, size_t outlen)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *c = NULL;
	EVP_MAC *mac;
	size_t len;
	int ret = -1;

	if ((mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL)) != NULL &&
	    (c = EVP_MAC_CTX_new(mac)) != NULL &&
	    EVP_MAC_init(c, key, keylen, params) == 1 &&
	    (alen == 0 || EVP_MAC_update(c, a, alen) == 1) &&
	    (blen == 0 || EVP_MAC_update(c, b, blen) == 1) &&
	    EVP_MAC_final(c, out, &len, outlen) == 1 && len == outlen)
		ret = 0;
	EVP_MAC_CTX_free(c);	/* wipes the keyed state */
	EVP_MAC_free(mac);
	return ret;
}

/* Noise section 4.3: HKDF(chaining_key, ikm) with two outputs, on
 * HMAC-HASH (RFC 2104 with the hash's block length, for BLAKE2b too,
 * not its keyed mode); 0, or -1 when libcrypto fails. */
static int
hkdf2(const struct hash_alg *a, const uint8_t *ck, const uint8_t *ikm, size_t ikmlen,
    uint8_t *out1, uint8_t *out2)
{
	static const uint8_t one = 1, two = 2;
	uint8_t tk[CRYPTO_HASH_MAX], o1[CRYPTO_HASH_MAX];
	int ret = -1;

	if (crypto_hmac(a->md, ck, a->len, ikm, ikmlen, NULL, 0, tk, a->len) == 0 &&
	    crypto_hmac(a->md, tk, a->len, &one, 1, NULL, 0, o1, a->len) == 0 &&
	    crypto_hmac(a->md, tk, a->len, o1, a->len, &two, 1, out2, a->len) == 0) {
		memcpy(out1, o1, a->len);
		ret = 0;
	}
	sodium_memzero(tk, sizeof tk);
	sodium_memzero(o1, sizeof o1);
	return ret;
}

/* Cipher functions (Noise section 12.3, ChaChaPoly; 12.4, AESGCM). */

bool
crypto_cipher_available(int c)
{
	return c == CRYPTO_CHACHAPOLY || (c == CRYPTO_AESGCM && crypto_aead_aes256gcm_is_available());
}

const char *
crypto_cipher_name(int c)
{
	return c == CRYPTO_CHACHAPOLY ? "ChaChaPoly" : c == CRYPTO_AESGCM ? "AESGCM" : NULL;
}

const char *
crypto_cipher_label(int c)
{
	return c == CRYPTO_CHACHAPOLY ? "chacha20-poly1305" : c == CRYPTO_AESGCM ?
	    "aes256-gcm" : NULL;
}

int
crypto_cipher_by_label(const char *label)
{
	int c;

	for (c = CRYPTO_CHACHAPOLY; c <= CRYPTO_AESGCM; c++)
		if (strcmp(label, crypto_cipher_label(c)) == 0)
			return c;
	return 0;
}

/* The 96-bit nonce: 32 zero bits, then n, little-endian for ChaChaPoly
 * and big-endian for AESGCM. */
static void
nonce_bytes(int c, uint8_t nonce[NONCE_LEN], uint64_t n)
{
	int i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[c == CRYPTO_AESGCM ? 11 - i : 4 + i] = (uint8_t)(n >> (8 * i));
}

void
crypto_encrypt(int c, const uint8_t k[CRYPTO_KEY_LEN], uint64_t n, const uint8_t *ad,
    size_t adlen, const uint8_t *pt, size_t len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];

	nonce_bytes(c, nonce, n);
	if (c == CRYPTO_AESGCM)
		crypto_aead_aes256gcm_encrypt(out, NULL, pt, len, ad, adlen, NULL, nonce, k);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, adlen,
		    NULL, nonce, k);
}

int
crypto_decrypt(int c, const uint8_t k[CRYPTO_KEY_LEN], uint64_t n, const uint8_t *ad,
    size_t adlen, const uint8_t *ct, size_t len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];

	if (len < CRYPTO_TAG_LEN)
		return -1;
	nonce_bytes(c, nonce, n);
	if (c == CRYPTO_AESGCM)
		return crypto_aead_aes256gcm_decrypt(out, NULL, NULL, ct, len, ad, adlen,
		    nonce, k) == 0 ? 0 : -1;
	return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len,
	    ad, adlen, nonce, k) == 0 ? 0 : -1;
}

/* The record layer's keys: ENCRYPT and DECRYPT with the key schedule
 * computed once.  key_set: 0, or -1 (out of memory). */
static int
key_set(int c, struct aead_key *ak, const uint8_t k[CRYPTO_KEY_LEN])
{
	memcpy(ak->k, k, CRYPTO_KEY_LEN);
	if (c != CRYPTO_AESGCM)
		return 0;
	if (ak->aes == NULL && (ak->aes = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	return EVP_CipherInit_ex(ak->aes, EVP_aes_256_gcm(), NULL, k, NULL, 1) == 1 ?
	    0 : -1;
}

static void
key_free(struct aead_key *ak)
{
	EVP_CIPHER_CTX_free(ak->aes);
	sodium_memzero(ak, sizeof *ak);
}

/* Seal the plaintext made of the n pieces of pt in turn into out (their
 * total length, then the tag).  pt[0] may be out itself; no other piece
 * may overlap out.  0, or -1 when libcrypto fails (it does not on valid
 * input). */
static int
key_seal(int c, const struct aead_key *ak, uint64_t seq, const uint8_t *ad, size_t adlen,
    const struct iovec *pt, int n, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];
	size_t len = 0;
	int i, l;

	if (c != CRYPTO_AESGCM) {
		/* libsodium's AEADs take the plaintext whole. */
		for (i = 0; i < n; i++) {
			memmove(out + len, pt[i].iov_base, pt[i].iov_len);
			len += pt[i].iov_len;
		}
		crypto_encrypt(c, ak->k, seq, ad, adlen, out, len, out);
		return 0;
	}
	nonce_bytes(c, nonce, seq);
	if (adlen > INT_MAX || EVP_EncryptInit_ex(ak->aes, NULL, NULL, NULL, nonce) != 1 ||
	    (adlen > 0 && EVP_EncryptUpdate(ak->aes, NULL, &l, ad, (int)adlen) != 1))
		return -1;
	/* GCM takes the pieces as they come. */
	for (i = 0; i < n; i++) {
		if (pt[i].iov_len > INT_MAX ||
		    EVP_EncryptUpdate(ak->aes, out + len, &l, pt[i].iov_base,
		    (int)pt[i].iov_len) != 1)
			return -1;
		len += (size_t)l;
	}
	if (EVP_EncryptFinal_ex(ak->aes, out + len, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ak->aes, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN,
	    out + len + l) != 1)
		return -1;
	return 0;
}

static int
key_open(int c, const struct aead_key *ak, uint64_t n, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN], tag[CRYPTO_TAG_LEN];
	int l, f;

	if (c != CRYPTO_AESGCM)
		return crypto_decrypt(c, ak->k, n, ad, adlen, ct, len, out);
	if (len < CRYPTO_TAG_LEN || len > INT_MAX || adlen > INT_MAX)
		return -1;
	nonce_bytes(c, nonce, n);
	len -= CRYPTO_TAG_LEN;
	memcpy(tag, ct + len, CRYPTO_TAG_LEN);
	if (EVP_DecryptInit_ex(ak->aes, NULL, NULL, NULL, nonce) != 1 ||
	    (adlen > 0 && EVP_DecryptUpdate(ak->aes, NULL, &l, ad, (int)adlen) != 1) ||
	    EVP_DecryptUpdate(ak->aes, out, &l, ct, (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ak->aes, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(ak->aes, out + l, &f) != 1)
		return -1;
	return 0;
}

/* Noise section 4.2: REKEY(k), the first 32 bytes of ENCRYPT(k, 2^64-1,
 * empty, 32 zero bytes).  0, or -1. */
static int
key_rekey(int c, struct aead_key *ak)
{
	uint8_t zeros[CRYPTO_KEY_LEN] = { 0 }, out[CRYPTO_KEY_LEN + CRYPTO_TAG_LEN];
	int ret;

	ret = key_seal(c, ak, NONCE_MAX, NULL, 0,
	    &(struct iovec){ .iov_base = zeros, .iov_len = sizeof zeros }, 1, out) == 0 &&
	    key_set(c, ak, out) == 0 ? 0 : -1;
	sodium_memzero(out, sizeof out);
	return ret;
}

/* SymmetricState (Noise section 5.2). */

static void
mix_hash(struct crypto_hs *hs, const uint8_t *data, size_t len)
{
	union hash_state st;

	hash_init(hs->hash, &st);
	hash_update(hs->hash, &st, hs->h, hs->hash->len);
	hash_update(hs->hash, &st, data, len);
	hash_final(hs->hash, &st, hs->h);
}

/* MixKey; 0, or -1 when libcrypto fails. */
static int
mix_key(struct crypto_hs *hs, const uint8_t *ikm, size_t len)
{
	uint8_t tk[CRYPTO_HASH_MAX];

	if (hkdf2(hs->hash, hs->ck, ikm, len, hs->ck, tk) == -1)
		return -1;
	/* Section 5.2: a 64-byte temp_k is truncated to 32 bytes. */
	memcpy(hs->cs.k, tk, CRYPTO_KEY_LEN);
	hs->cs.has_k = true;
	hs->cs.n = 0;
	sodium_memzero(tk, sizeof tk);
	return 0;
}

/* EncryptAndHash: writes len (+ tag once there is a key) bytes to out. */
static int
encrypt_and_hash(struct crypto_hs *hs, const uint8_t *pt, size_t len, uint8_t *out,
    size_t *outlen)
{
	if (!hs->cs.has_k) {
		if (len > 0)
			memmove(out, pt, len);
		*outlen = len;
	} else {
		if (hs->cs.n == NONCE_MAX)
			return -1;
		crypto_encrypt(hs->cipher, hs->cs.k, hs->cs.n++, hs->h, hs->hash->len,
		    pt, len, out);
		*outlen = len + CRYPTO_TAG_LEN;
	}
	mix_hash(hs, out, *outlen);
	return 0;
}

/* DecryptAndHash: ct is len bytes (with the tag once there is a key);
 * out must not overlap ct.  0 or -1. */
static int
decrypt_and_hash(struct crypto_hs *hs, const uint8_t *ct, size_t len, uint8_t *out)
{
	if (!hs->cs.has_k) {
		if (len > 0)
			memcpy(out, ct, len);
	} else {
		if (len < CRYPTO_TAG_LEN || hs->cs.n == NONCE_MAX)
			return -1;
		if (crypto_decrypt(hs->cipher, hs->cs.k, hs->cs.n, hs->h, hs->hash->len,
		    ct, len, out) < 0) {
			sodium_memzero(out, len - CRYPTO_TAG_LEN);
			return -1;
		}
		hs->cs.n++;
	}
	mix_hash(hs, ct, len);
	return 0;
}

/* HandshakeState (Noise section 5.3). */

static void
keypair(uint8_t priv[DHLEN], uint8_t pub[DHLEN])
{
	randombytes_buf(priv, DHLEN);
	crypto_scalarmult_base(pub, priv);
}

/* MixKey(DH(priv, pub)); -1 when the result is all zeros (a low-order
 * public key, section 12.1 allows aborting) or libcrypto fails. */
static int
mix_dh(struct crypto_hs *hs, const uint8_t priv[DHLEN], const uint8_t pub[DHLEN])
{
	uint8_t shared[DHLEN];
	int ret = -1;

	if (crypto_scalarmult(shared, priv, pub) == 0)
		ret = mix_key(hs, shared, sizeof shared);
	sodium_memzero(shared, sizeof shared);
	return ret;
}

/* The DH of token t from our side; 0 or -1. */
static int
token_dh(struct crypto_hs *hs, enum token t)
{
	bool ours_e, theirs_e;

	switch (t) {
	case TOK_EE:
		ours_e = theirs_e = true;
		break;
	case TOK_ES:
		ours_e = hs->initiator;
		theirs_e = !hs->initiator;
		break;
	case TOK_SE:
		ours_e = !hs->initiator;
		theirs_e = hs->initiator;
		break;
	case TOK_SS:
		ours_e = theirs_e = false;
		break;
	default:
		return -1;
	}
	if ((ours_e ? !hs->has_e : !hs->has_s) || (theirs_e ? !hs->has_re : !hs->has_rs))
		return -1;
	return mix_dh(hs, ours_e ? hs->e : hs->s, theirs_e ? hs->re : hs->rs);
}

/* Does our side of pattern p need a static key (to send it, or as the
 * pre-message's)? */
static bool
needs_static(const struct pattern *p, bool initiator)
{
	unsigned m, t;

	if (p->pre_rs && !initiator)
		return true;
	for (m = initiator ? 0 : 1; m < p->nmsg; m += 2)
		for (t = 0; t < PATTERN_TOKENS && p->msg[m][t] != TOK_END; t++)
			if (p->msg[m][t] == TOK_S)
				return true;
	return false;
}

struct crypto_hs *
crypto_hs_new(const char *protocol, bool initiator, const void *prologue,
    size_t prologue_len, const uint8_t s[CRYPTO_KEY_LEN], const uint8_t rs[CRYPTO_KEY_LEN])
{
	struct crypto_hs *hs = NULL;
	const struct hash_alg *a = NULL;
	const struct pattern *p = NULL;
	char name[64];
	size_t i, j, len;
	int c, cipher = 0;

	for (i = 0; i < sizeof patterns / sizeof patterns[0] && !a; i++)
		for (j = 0; j < sizeof hashes / sizeof hashes[0] && !a; j++)
			for (c = CRYPTO_CHACHAPOLY; c <= CRYPTO_AESGCM && !a; c++) {
				snprintf(name, sizeof name, "Noise_%s_25519_%s_%s",
				    patterns[i].name, crypto_cipher_name(c), hashes[j].name);
				if (strcmp(name, protocol) == 0) {
					p = &patterns[i];
					a = &hashes[j];
					cipher = c;
				}
			}
	if (!a) {
		log_err("unsupported Noise protocol `%s'", protocol);
		return NULL;
	}
	if (!crypto_cipher_available(cipher)) {
		log_err("%s: this CPU has no AES instructions", protocol);
		return NULL;
	}
	if (needs_static(p, initiator) != (s != NULL)) {
		log_err("%s: the %s %s a static key", protocol,
		    initiator ? "initiator" : "responder", s ? "has no use for" : "needs");
		return NULL;
	}
	if ((p->pre_rs && initiator) != (rs != NULL)) {
		log_err("%s: the %s %s the responder's static key in advance", protocol,
		    initiator ? "initiator" : "responder", rs ? "cannot use" : "needs");
		return NULL;
	}
	if (!(hs = sodium_malloc(sizeof *hs))) {
		log_errno("sodium_malloc");
		return NULL;
	}
	memset(hs, 0, sizeof *hs);
	hs->hash = a;
	hs->cipher = cipher;
	hs->pat = p;
	hs->initiator = initiator;

	/* InitializeSymmetric(protocol_name) */
	len = strlen(protocol);
	if (len <= a->len) {
		memcpy(hs->h, protocol, len);
	} else {
		union hash_state st;

		hash_init(a, &st);
		hash_update(a, &st, (const uint8_t *)protocol, len);
		hash_final(a, &st, hs->h);
	}
	memcpy(hs->ck, hs->h, a->len);
	mix_hash(hs, prologue, prologue_len);

	if (s) {
		memcpy(hs->s, s, DHLEN);
		crypto_scalarmult_base(hs->s_pub, hs->s);
		hs->has_s = true;
	}
	if (rs) {
		memcpy(hs->rs, rs, DHLEN);
		hs->has_rs = true;
	}
	/* Pre-message "<- s": both sides hash the responder's static key. */
	if (p->pre_rs)
		mix_hash(hs, initiator ? hs->rs : hs->s_pub, DHLEN);
	return hs;
}

struct crypto_hs *
crypto_hs_dup(const struct crypto_hs *hs)
{
	struct crypto_hs *d;

	if ((d = sodium_malloc(sizeof *d)) == NULL)
		return NULL;
	memcpy(d, hs, sizeof *d);	/* flat: its pointers are to constants */
	return d;
}

void
crypto_hs_free(struct crypto_hs *hs)
{
	if (hs)
		sodium_free(hs);	/* wipes */
}

int
crypto_test_set_ephemeral(struct crypto_hs *hs, const uint8_t e[CRYPTO_KEY_LEN])
{
	if (hs->dead || hs->has_e)
		return -1;
	memcpy(hs->e, e, DHLEN);
	crypto_scalarmult_base(hs->e_pub, hs->e);
	hs->has_e = true;
	return 0;
}

bool
crypto_hs_our_turn(const struct crypto_hs *hs)
{
	return !hs->dead && hs->msg < hs->pat->nmsg && (hs->msg % 2 == 0) == hs->initiator;
}

bool
crypto_hs_done(const struct crypto_hs *hs)
{
	return hs->msg == hs->pat->nmsg;
}

/* Kill the handshake: wipe its secrets, fail every further call.  -1. */
static int
hs_kill(struct crypto_hs *hs)
{
	const struct hash_alg *a = hs->hash;
	const struct pattern *p = hs->pat;
	bool initiator = hs->initiator;
	unsigned msg = hs->msg;
	int cipher = hs->cipher;

	sodium_memzero(hs, sizeof *hs);
	hs->hash = a;
	hs->cipher = cipher;
	hs->pat = p;
	hs->initiator = initiator;
	hs->msg = msg;
	hs->dead = true;
	return -1;
}

int
crypto_hs_write(struct crypto_hs *hs, const void *payload, size_t len, uint8_t *out,
    size_t cap, size_t *outlen)
{
	const uint8_t *tok;
	size_t pos = 0, n, tag;
	unsigned t;

	if (!crypto_hs_our_turn(hs))
		return hs_kill(hs);
	if (cap > CRYPTO_MSG_MAX)
		cap = CRYPTO_MSG_MAX;
	tok = hs->pat->msg[hs->msg];
	for (t = 0; t < PATTERN_TOKENS && tok[t] != TOK_END; t++) {
		switch (tok[t]) {
		case TOK_E:
			if (cap - pos < DHLEN)
				return hs_kill(hs);
			if (!hs->has_e) {
				keypair(hs->e, hs->e_pub);
				hs->has_e = true;
			}
			memcpy(out + pos, hs->e_pub, DHLEN);
			mix_hash(hs, hs->e_pub, DHLEN);
			pos += DHLEN;
			break;
		case TOK_S:
			tag = hs->cs.has_k ? CRYPTO_TAG_LEN : 0;
			if (cap - pos < DHLEN + tag ||
			    encrypt_and_hash(hs, hs->s_pub, DHLEN, out + pos, &n) < 0)
				return hs_kill(hs);
			pos += n;
			break;
		default:
			if (token_dh(hs, tok[t]) < 0)
				return hs_kill(hs);
			break;
		}
	}
	tag = hs->cs.has_k ? CRYPTO_TAG_LEN : 0;
	if (cap - pos < tag || cap - pos - tag < len ||
	    encrypt_and_hash(hs, payload, len, out + pos, &n) < 0)
		return hs_kill(hs);
	*outlen = pos + n;
	hs->msg++;
	return 0;
}

int
crypto_hs_read(struct crypto_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload,
    size_t cap, size_t *paylen)
{
	const uint8_t *tok;
	size_t pos = 0, n, tag;
	unsigned t;

	if (hs->dead || hs->msg >= hs->pat->nmsg || crypto_hs_our_turn(hs) ||
	    len > CRYPTO_MSG_MAX)
		return hs_kill(hs);
	tok = hs->pat->msg[hs->msg];
	for (t = 0; t < PATTERN_TOKENS && tok[t] != TOK_END; t++) {
		switch (tok[t]) {
		case TOK_E:
			if (len - pos < DHLEN || hs->has_re)
				return hs_kill(hs);
			memcpy(hs->re, msg + pos, DHLEN);
			hs->has_re = true;
			mix_hash(hs, hs->re, DHLEN);
			pos += DHLEN;
			break;
		case TOK_S:
			n = DHLEN + (hs->cs.has_k ? CRYPTO_TAG_LEN : 0);
			if (len - pos < n || hs->has_rs ||
			    decrypt_and_hash(hs, msg + pos, n, hs->rs) < 0)
				return hs_kill(hs);
			hs->has_rs = true;
			pos += n;
			break;
		default:
			if (token_dh(hs, tok[t]) < 0)
				return hs_kill(hs);
			break;
		}
	}
	tag = hs->cs.has_k ? CRYPTO_TAG_LEN : 0;
	n = len - pos;
	if (n < tag || n - tag > cap || decrypt_and_hash(hs, msg + pos, n, payload) < 0)
		return hs_kill(hs);
	*paylen = n - tag;
	hs->msg++;
	return 0;
}

int
crypto_hs_remote_static(const struct crypto_hs *hs, uint8_t rs[CRYPTO_KEY_LEN])
{
	if (hs->dead || !hs->has_rs)
		return -1;
	memcpy(rs, hs->rs, DHLEN);
	return 0;
}

int
crypto_hs_split(struct crypto_hs *hs, uint8_t h[CRYPTO_HASH_MAX], size_t *hlen,
    uint8_t send[CRYPTO_KEY_LEN], uint8_t recv[CRYPTO_KEY_LEN])
{
	uint8_t k1[CRYPTO_HASH_MAX], k2[CRYPTO_HASH_MAX];

	if (hs->dead || !crypto_hs_done(hs))
		return hs_kill(hs);
	if (hkdf2(hs->hash, hs->ck, NULL, 0, k1, k2) == -1) {
		sodium_memzero(k2, sizeof k2);
		return hs_kill(hs);
	}
	/* Section 5.2: the initiator sends with the first key. */
	memcpy(send, hs->initiator ? k1 : k2, CRYPTO_KEY_LEN);
	memcpy(recv, hs->initiator ? k2 : k1, CRYPTO_KEY_LEN);
	memcpy(h, hs->h, hs->hash->len);
	*hlen = hs->hash->len;
	sodium_memzero(k1, sizeof k1);
	sodium_memzero(k2, sizeof k2);
	hs_kill(hs);
	return 0;
}

/* Record layer. */

struct crypto_tx *
crypto_tx_new(int cipher, const uint8_t key[CRYPTO_KEY_LEN], uint64_t now)
{
	struct crypto_tx *tx;

	if (!crypto_cipher_available(cipher)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(tx = sodium_malloc(sizeof *tx)))
		return NULL;
	memset(tx, 0, sizeof *tx);
	tx->cipher = cipher;
	if (key_set(cipher, &tx->key, key) == -1) {
		crypto_tx_free(tx);
		errno = ENOMEM;
		return NULL;
	}
	tx->since = now;
	tx->lim_pkts = CRYPTO_REKEY_PKTS;
	tx->lim_bytes = CRYPTO_REKEY_BYTES;
	tx->lim_us = CRYPTO_REKEY_US;
	return tx;
}

void
crypto_tx_free(struct crypto_tx *tx)
{
	if (tx == NULL)
		return;
	key_free(&tx->key);
	sodium_free(tx);
}

void
crypto_test_set_limits(struct crypto_tx *tx, uint64_t pkts, uint64_t bytes, uint64_t us)
{
	tx->lim_pkts = pkts;
	tx->lim_bytes = bytes;
	tx->lim_us = us;
}

uint64_t
crypto_tx_rekeys(const struct crypto_tx *tx)
{
	return tx->rekeys;
}

int
crypto_sealv(struct crypto_tx *tx, uint64_t now, uint8_t *hdr, size_t hdrlen, uint64_t pn,
    const struct iovec *iov, int iovcnt, uint8_t *out)
{
	size_t len = 0;
	int i;

	/* The nonce is pn: it must never repeat under one key. */
	if (hdrlen <= CRYPTO_HDR_PHASE_BYTE || pn == NONCE_MAX || iovcnt < 0 ||
	    (tx->sealed && pn <= tx->last_pn))
		return -1;
	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (tx->pkts > 0 && (tx->pkts >= tx->lim_pkts || len > tx->lim_bytes - tx->bytes ||
	    (now > tx->since && now - tx->since >= tx->lim_us))) {
		if (key_rekey(tx->cipher, &tx->key) == -1)
			return -1;
		tx->phase ^= 1;
		tx->pkts = tx->bytes = 0;
		tx->since = now;
		tx->rekeys++;
	}
	hdr[CRYPTO_HDR_PHASE_BYTE] &= (uint8_t)~CRYPTO_HDR_PHASE;
	if (tx->phase)
		hdr[CRYPTO_HDR_PHASE_BYTE] |= CRYPTO_HDR_PHASE;
	if (key_seal(tx->cipher, &tx->key, pn, hdr, hdrlen, iov, iovcnt, out) == -1)
		return -1;
	tx->pkts++;
	tx->bytes = len > tx->lim_bytes - tx->bytes ? tx->lim_bytes : tx->bytes + len;
	tx->last_pn = pn;
	tx->sealed = true;
	return 0;
}

int
crypto_seal(struct crypto_tx *tx, uint64_t now, uint8_t *hdr, size_t hdrlen, uint64_t pn,
    const uint8_t *plain, size_t len, uint8_t *out)
{
	struct iovec iov = { .iov_base = (void *)plain, .iov_len = len };

	return crypto_sealv(tx, now, hdr, hdrlen, pn, &iov, 1, out);
}

struct crypto_rx *
crypto_rx_new(int cipher, const uint8_t key[CRYPTO_KEY_LEN])
{
	struct crypto_rx *rx;

	if (!crypto_cipher_available(cipher)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(rx = sodium_malloc(sizeof *rx)))
		return NULL;
	memset(rx, 0, sizeof *rx);
	rx->cipher = cipher;
	if (key_set(cipher, &rx->cur, key) == -1) {
		crypto_rx_free(rx);
		errno = ENOMEM;
		return NULL;
	}
	return rx;
}

void
crypto_rx_free(struct crypto_rx *rx)
{
	if (rx == NULL)
		return;
	key_free(&rx->cur);
	key_free(&rx->prev);
	key_free(&rx->next);
	sodium_free(rx);
}

void
crypto_rx_get_stats(const struct crypto_rx *rx, struct crypto_rx_stats *st)
{
	*st = rx->st;
}

enum { WIN_OK, WIN_REPLAY, WIN_OLD };

/* Is pn new and inside the window?  Changes nothing. */
static int
window_check(const struct crypto_rx *rx, uint64_t pn)
{
	if (!rx->any || pn > rx->top)
		return WIN_OK;
	if (rx->top - pn >= CRYPTO_REPLAY_WINDOW)
		return WIN_OLD;
	if (rx->bitmap[(pn / 64) % WINDOW_WORDS] & (1ULL << (pn % 64)))
		return WIN_REPLAY;
	return WIN_OK;
}

/* Record authentic pn, moving the top (and clearing the words it passes)
 * when pn is beyond it. */
static void
window_commit(struct crypto_rx *rx, uint64_t pn)
{
	uint64_t w, from, to;

	if (!rx->any || pn > rx->top) {
		/* Words after the top's, up to pn's, hold stale bits. */
		from = rx->any ? rx->top / 64 + 1 : 0;
		to = pn / 64;
		if (!rx->any || (to >= from && to - from >= WINDOW_WORDS))
			memset(rx->bitmap, 0, sizeof rx->bitmap);
		else
			for (w = from; w <= to; w++)
				rx->bitmap[w % WINDOW_WORDS] = 0;
		rx->top = pn;
		rx->any = true;
	}
	rx->bitmap[(pn / 64) % WINDOW_WORDS] |= 1ULL << (pn % 64);
}

int
crypto_open(struct crypto_rx *rx, uint64_t now, const uint8_t *hdr, size_t hdrlen,
    uint64_t pn, const uint8_t *ct, size_t len, uint8_t *out)
{
	enum { KEY_CUR, KEY_PREV, KEY_NEXT } which;
	const struct aead_key *key;
	unsigned phase;

	if (hdrlen <= CRYPTO_HDR_PHASE_BYTE || len < CRYPTO_TAG_LEN || pn == NONCE_MAX) {
		rx->st.malformed++;
		return -1;
	}
	switch (window_check(rx, pn)) {
	case WIN_REPLAY:
		rx->st.replay++;
		return -1;
	case WIN_OLD:
		rx->st.old++;
		return -1;
	}
	if (rx->has_prev && now > rx->prev_since &&
	    now - rx->prev_since >= CRYPTO_PREV_KEY_US) {
		key_free(&rx->prev);
		rx->has_prev = false;
	}

	/*
	 * The phase bit tells the current key from the other one; packets
	 * sent before the sender's last rekey have lower numbers than any
	 * sent after it, so the other phase below cur_min_pn is the previous
	 * key, and above it the next key.
	 */
	phase = (hdr[CRYPTO_HDR_PHASE_BYTE] & CRYPTO_HDR_PHASE) ? 1 : 0;
	if (phase == rx->phase) {
		which = KEY_CUR;
		key = &rx->cur;
	} else if (pn < rx->cur_min_pn) {
		if (!rx->has_prev) {
			rx->st.auth++;
			return -1;
		}
		which = KEY_PREV;
		key = &rx->prev;
	} else {
		if (!rx->has_next) {
			if (key_set(rx->cipher, &rx->next, rx->cur.k) == -1 ||
			    key_rekey(rx->cipher, &rx->next) == -1) {
				rx->st.auth++;
				return -1;
			}
			rx->has_next = true;
		}
		which = KEY_NEXT;
		key = &rx->next;
	}
	if (key_open(rx->cipher, key, pn, hdr, hdrlen, ct, len, out) < 0) {
		rx->st.auth++;
		return -1;
	}
	window_commit(rx, pn);
	rx->st.ok++;
	if (which == KEY_NEXT) {
		key_free(&rx->prev);
		rx->prev = rx->cur;
		rx->cur = rx->next;
		memset(&rx->next, 0, sizeof rx->next);	/* moved, not freed */
		rx->has_next = false;
		rx->has_prev = true;
		rx->prev_since = now;
		rx->phase ^= 1;
		rx->cur_min_pn = pn;
		rx->st.rekeys++;
	} else if (which == KEY_CUR && pn < rx->cur_min_pn) {
		rx->cur_min_pn = pn;
	}
	return 0;
}

/* CPace (draft-irtf-cfrg-cpace-21, sections 7 and 8.3, appendix A). */

/* Section 8.3: G_Ristretto255.DSI; SHA-512's input block (H.s_in_bytes). */
#define CPACE_DSI	"CPaceRistretto255"
#define CPACE_DSI_ISK	"CPaceRistretto255_ISK"
#define CPACE_BLOCK	128

struct crypto_cpace {
	uint8_t g[CRYPTO_CPACE_SHARE_LEN];	/* generator, from the password */
	uint8_t y[crypto_core_ristretto255_SCALARBYTES];
	uint8_t share[CRYPTO_CPACE_SHARE_LEN];
	bool used;
	size_t sidlen;
	uint8_t sid[CRYPTO_CPACE_SID_MAX];
};

/* Appendix A.1: the length of prepend_len(): LEB128 of len, then len. */
static size_t
leb128_len(size_t len)
{
	size_t n = 1;

	while (len >= 128) {
		len >>= 7;
		n++;
	}
	return n;
}

/* Hash prepend_len(data): its LEB128 length, then the data. */
static void
sha512_lv(crypto_hash_sha512_state *st, const void *data, size_t len)
{
	uint8_t b[10];
	size_t n = 0, v = len;

	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	crypto_hash_sha512_update(st, b, n);
	if (len > 0)
		crypto_hash_sha512_update(st, data, len);
}

/* A fresh scalar and share (section 8.3's sample_scalar: 32 random bytes
 * with the bits above group_size_bits, 252, cleared).  0 or -1. */
static int
cpace_share(struct crypto_cpace *c, const uint8_t *y)
{
	if (y)
		memcpy(c->y, y, sizeof c->y);
	else
		randombytes_buf(c->y, sizeof c->y);
	c->y[31] &= 0x0f;
	return crypto_scalarmult_ristretto255(c->share, c->y, c->g) == 0 ? 0 : -1;
}

struct crypto_cpace *
crypto_cpace_start(const void *prs, size_t prslen, const void *ci, size_t cilen,
    const void *sid, size_t sidlen, uint8_t share[CRYPTO_CPACE_SHARE_LEN])
{
	static const uint8_t zeros[CPACE_BLOCK];
	crypto_hash_sha512_state st;
	uint8_t h[crypto_hash_sha512_BYTES];
	struct crypto_cpace *c;
	size_t used, zpad;

	if (sidlen > CRYPTO_CPACE_SID_MAX) {
		log_err("CPace session id too long (%zu bytes)", sidlen);
		return NULL;
	}
	if (!(c = sodium_malloc(sizeof *c))) {
		log_errno("sodium_malloc");
		return NULL;
	}
	memset(c, 0, sizeof *c);
	memcpy(c->sid, sid, sidlen);
	c->sidlen = sidlen;

	/* Section 8.1: generator_string = lv_cat(DSI, PRS, zero_bytes(len_zpad),
	 * CI, sid), the padding filling SHA-512's first block. */
	used = leb128_len(prslen) + prslen + leb128_len(strlen(CPACE_DSI)) +
	    strlen(CPACE_DSI) + 1;
	zpad = used < CPACE_BLOCK ? CPACE_BLOCK - used : 0;
	crypto_hash_sha512_init(&st);
	sha512_lv(&st, CPACE_DSI, strlen(CPACE_DSI));
	sha512_lv(&st, prs, prslen);
	sha512_lv(&st, zeros, zpad);
	sha512_lv(&st, ci, cilen);
	sha512_lv(&st, sid, sidlen);
	crypto_hash_sha512_final(&st, h);
	crypto_core_ristretto255_from_hash(c->g, h);
	sodium_memzero(h, sizeof h);
	sodium_memzero(&st, sizeof st);

	if (cpace_share(c, NULL) < 0) {
		log_err("CPace: no valid share");
		sodium_free(c);
		return NULL;
	}
	memcpy(share, c->share, CRYPTO_CPACE_SHARE_LEN);
	return c;
}

int
crypto_test_cpace_set_scalar(struct crypto_cpace *c, const uint8_t y[32],
    uint8_t share[CRYPTO_CPACE_SHARE_LEN])
{
	if (c->used || cpace_share(c, y) < 0)
		return -1;
	memcpy(share, c->share, CRYPTO_CPACE_SHARE_LEN);
	return 0;
}

int
crypto_cpace_finish(struct crypto_cpace *c, bool initiator, const void *ad, size_t adlen,
    const uint8_t peer_share[CRYPTO_CPACE_SHARE_LEN], const void *peer_ad,
    size_t peer_adlen, uint8_t isk[CRYPTO_CPACE_ISK_LEN])
{
	crypto_hash_sha512_state st;
	uint8_t k[CRYPTO_CPACE_SHARE_LEN];

	if (c->used)
		return -1;
	c->used = true;
	/* scalar_mult_vfy: libsodium fails on an invalid encoding and on the
	 * identity, and section 7.2 says to abort on both. */
	if (crypto_scalarmult_ristretto255(k, c->y, peer_share) < 0) {
		sodium_memzero(c->y, sizeof c->y);
		return -1;
	}
	/* ISK = H(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb, ADb)) */
	crypto_hash_sha512_init(&st);
	sha512_lv(&st, CPACE_DSI_ISK, strlen(CPACE_DSI_ISK));
	sha512_lv(&st, c->sid, c->sidlen);
	sha512_lv(&st, k, sizeof k);
	sha512_lv(&st, initiator ? c->share : peer_share, CRYPTO_CPACE_SHARE_LEN);
	sha512_lv(&st, initiator ? ad : peer_ad, initiator ? adlen : peer_adlen);
	sha512_lv(&st, initiator ? peer_share : c->share, CRYPTO_CPACE_SHARE_LEN);
	sha512_lv(&st, initiator ? peer_ad : ad, initiator ? peer_adlen : adlen);
	crypto_hash_sha512_final(&st, isk);
	sodium_memzero(k, sizeof k);
	sodium_memzero(c->y, sizeof c->y);
	return 0;
}

void
crypto_cpace_free(struct crypto_cpace *c)
{
	if (c)
		sodium_free(c);
}

/* Identity and text forms. */

void
crypto_key_to_text(const uint8_t key[CRYPTO_KEY_LEN], char out[CRYPTO_KEY_B64_LEN + 1])
{
	sodium_bin2base64(out, CRYPTO_KEY_B64_LEN + 1, key, CRYPTO_KEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
}

int
crypto_key_from_text(const char *text, uint8_t key[CRYPTO_KEY_LEN])
{
	uint8_t tmp[CRYPTO_KEY_LEN];
	const char *end;
	size_t n;
	int ret = -1;

	if (strlen(text) != CRYPTO_KEY_B64_LEN)
		return -1;
	/* libsodium rejects bad characters, bad padding and non-zero
	 * trailing bits, so every key has exactly one text form. */
	if (sodium_base642bin(tmp, sizeof tmp, text, CRYPTO_KEY_B64_LEN, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && n == CRYPTO_KEY_LEN &&
	    end == text + CRYPTO_KEY_B64_LEN) {
		memcpy(key, tmp, CRYPTO_KEY_LEN);
		ret = 0;
	}
	sodium_memzero(tmp, sizeof tmp);
	return ret;
}

void
crypto_fingerprint(const uint8_t pub[CRYPTO_KEY_LEN], char out[CRYPTO_FP_LEN + 1])
{
	uint8_t d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, pub, CRYPTO_KEY_LEN);
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, CRYPTO_FP_LEN + 1 - 7, d, sizeof d,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

bool
crypto_key_equal(const uint8_t a[CRYPTO_KEY_LEN], const uint8_t b[CRYPTO_KEY_LEN])
{
	return sodium_memcmp(a, b, CRYPTO_KEY_LEN) == 0;
}

bool
crypto_key_matches(const char *text, const uint8_t pub[CRYPTO_KEY_LEN])
{
	char fp[CRYPTO_FP_LEN + 1];
	uint8_t key[CRYPTO_KEY_LEN];

	if (strncmp(text, "SHA256:", 7) == 0) {
		if (strlen(text) != CRYPTO_FP_LEN)
			return false;
		crypto_fingerprint(pub, fp);
		return sodium_memcmp(fp, text, CRYPTO_FP_LEN) == 0;
	}
	return crypto_key_from_text(text, key) == 0 && crypto_key_equal(key, pub);
}

void
crypto_identity_wipe(struct crypto_identity *id)
{
	sodium_memzero(id, sizeof *id);
}

/* mkdir -p of the directory part of path, each new one 0700; 0 or -1. */
static int
make_parent(const char *path)
{
	char *dir, *p, c;
	int ret = -1;

	if (!(dir = strdup(path))) {
		log_errno("strdup");
		return -1;
	}
	if (!(p = strrchr(dir, '/')) || p == dir) {
		ret = 0;
		goto out;
	}
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			log_errno("cannot create directory `%s'", dir);
			goto out;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	ret = 0;
out:
	free(dir);
	return ret;
}

/* Read the key file at path: 1 loaded, 0 it does not exist, -1 error. */
static int
load_identity(const char *path, struct crypto_identity *id)
{
	char *buf = NULL;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, ret = -1;
	enum { CAP = CRYPTO_KEY_B64_LEN + 2 };

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			log_err("key file `%s' is a symbolic link; refusing it", path);
		else
			log_errno("cannot open key file `%s'", path);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		log_errno("cannot stat key file `%s'", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("key file `%s' is not a regular file; refusing it", path);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		log_err("key file `%s' is not owned by us; refusing it", path);
		goto out;
	}
	if (st.st_mode & 077) {
		log_err("key file `%s' is accessible by others (mode %03o); refusing it "
		    "(chmod 600 it)", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (!(buf = sodium_malloc(CAP + 1))) {
		log_errno("sodium_malloc");
		goto out;
	}
	while (len < CAP && (n = read(fd, buf + len, CAP - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_errno("cannot read key file `%s'", path);
			goto out;
		}
		len += (size_t)n;
	}
	/* One line: 44 characters and a newline (which may be missing). */
	if (len > CRYPTO_KEY_B64_LEN && buf[CRYPTO_KEY_B64_LEN] == '\n')
		len--;
	buf[len] = '\0';
	if (len != CRYPTO_KEY_B64_LEN || crypto_key_from_text(buf, id->priv) < 0) {
		log_err("key file `%s' does not hold one base64 private key", path);
		goto out;
	}
	crypto_scalarmult_base(id->pub, id->priv);
	ret = 1;
out:
	if (buf)
		sodium_free(buf);
	close(fd);
	return ret;
}

/* Create a new key file at path: 1 created, 0 someone else just created
 * it, -1 error. */
static int
create_identity(const char *path, struct crypto_identity *id)
{
	char text[CRYPTO_KEY_B64_LEN + 2], tmp[4096];
	size_t off = 0;
	ssize_t n;
	int fd, ret = -1;

	if (make_parent(path) < 0)
		return -1;
	/* Written aside and linked into place, so that another p2pcat
	 * starting now never reads a half-written key. */
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= sizeof tmp) {
		log_err("key file path `%s' is too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_errno("cannot create key file `%s'", tmp);
		return -1;
	}
	keypair(id->priv, id->pub);
	crypto_key_to_text(id->priv, text);
	text[CRYPTO_KEY_B64_LEN] = '\n';
	while (off < sizeof text - 1) {
		n = write(fd, text + off, sizeof text - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_errno("cannot write key file `%s'", tmp);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		log_errno("cannot write key file `%s'", tmp);
		goto out;
	}
	ret = 1;
out:
	sodium_memzero(text, sizeof text);
	if (close(fd) < 0 && ret == 1) {
		log_errno("cannot write key file `%s'", tmp);
		ret = -1;
	}
	if (ret == 1 && link(tmp, path) < 0) {
		if (errno == EEXIST) {
			ret = 0;	/* another p2pcat was first: use its key */
		} else {
			log_errno("cannot create key file `%s'", path);
			ret = -1;
		}
	}
	unlink(tmp);
	if (ret <= 0)
		crypto_identity_wipe(id);
	return ret;
}

int
crypto_load_or_create_identity(const char *path, struct crypto_identity *id, bool *created)
{
	int tries, r;

	/* A second round covers another p2pcat creating the file meanwhile. */
	for (tries = 0; tries < 2; tries++) {
		if ((r = load_identity(path, id)) != 0) {
			*created = false;
			return r < 0 ? -1 : 0;
		}
		if ((r = create_identity(path, id)) != 0) {
			*created = true;
			return r < 0 ? -1 : 0;
		}
	}
	log_err("key file `%s' keeps appearing and vanishing", path);
	return -1;
}
