/*
 * hash.c: SHA-1 (RFC 3174), MD5 (RFC 1321), HMAC-SHA1 (RFC 2104) and
 * CRC-32, small rather than fast: STUN hashes a few hundred bytes per
 * message.  SHA-1 and MD5 share the 64-byte block buffering and differ in
 * the compression function and the byte order of words and length.
 */
#include <string.h>

#include <sodium.h>

#include "hash.h"

/* RFC 2104 §2: "B=64" for both hashes; ipad 0x36 and opad 0x5C. */
#define BLOCK		64
#define HMAC_IPAD	0x36
#define HMAC_OPAD	0x5c
/* The reflected ISO-HDLC polynomial (as in zlib and Ethernet). */
#define CRC32_POLY	0xedb88320u

static uint32_t
rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void
sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80], a, b, c, d, e, f, k, t;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		t = rol(a, 5) + f + e + k + w[i];
		e = d, d = c, c = rol(b, 30), b = a, a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* RFC 1321 §3.4: T[i] = 4294967296 * abs(sin(i)), and the shifts per round. */
static const uint32_t md5_t[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
	0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
	0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
	0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
	0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
static const uint8_t md5_s[16] = {
	7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21,
};

static void
md5_block(uint32_t h[4], const uint8_t *p)
{
	uint32_t x[16], a, b, c, d, f, t;
	int i, g;

	for (i = 0; i < 16; i++)
		x[i] = p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		    (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	a = h[0], b = h[1], c = h[2], d = h[3];
	for (i = 0; i < 64; i++) {
		if (i < 16)
			f = (b & c) | (~b & d), g = i;
		else if (i < 32)
			f = (b & d) | (c & ~d), g = (5 * i + 1) % 16;
		else if (i < 48)
			f = b ^ c ^ d, g = (3 * i + 5) % 16;
		else
			f = c ^ (b | ~d), g = (7 * i) % 16;
		t = d, d = c, c = b;
		b += rol(a + f + md5_t[i] + x[g], md5_s[i / 16 * 4 + i % 4]);
		a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d;
}

void
hash_sha1_init(struct hash_ctx *c)
{
	static const uint32_t iv[5] = {
		0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0,
	};

	memset(c, 0, sizeof(*c));
	memcpy(c->h, iv, sizeof(iv));
}

void
hash_md5_init(struct hash_ctx *c)
{
	hash_sha1_init(c);	/* the same first four words */
	c->h[4] = 0;
	c->md5 = 1;
}

void
hash_update(struct hash_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t used, n;

	while (len > 0) {
		used = c->n % BLOCK;
		n = BLOCK - used < len ? BLOCK - used : len;
		memcpy(c->blk + used, p, n);
		c->n += n, p += n, len -= n;
		if (c->n % BLOCK == 0) {
			if (c->md5)
				md5_block(c->h, c->blk);
			else
				sha1_block(c->h, c->blk);
		}
	}
}

void
hash_final(struct hash_ctx *c, uint8_t *out)
{
	uint8_t pad[BLOCK + 8] = { 0x80 };
	uint64_t bits = c->n * 8;
	size_t padlen = BLOCK - (c->n + 8) % BLOCK;
	int i;

	/* RFC 3174 §4 / RFC 1321 §3.1-3.2: 0x80, zeros, 64-bit length. */
	for (i = 0; i < 8; i++)
		pad[padlen + i] = c->md5 ? bits >> (8 * i) : bits >> (56 - 8 * i);
	hash_update(c, pad, padlen + 8);
	for (i = 0; i < (c->md5 ? 4 : 5); i++) {
		if (c->md5) {
			out[4 * i] = c->h[i];
			out[4 * i + 1] = c->h[i] >> 8;
			out[4 * i + 2] = c->h[i] >> 16;
			out[4 * i + 3] = c->h[i] >> 24;
		} else {
			out[4 * i] = c->h[i] >> 24;
			out[4 * i + 1] = c->h[i] >> 16;
			out[4 * i + 2] = c->h[i] >> 8;
			out[4 * i + 3] = c->h[i];
		}
	}
	sodium_memzero(c, sizeof(*c));
}

void
hash_hmac_sha1_init(struct hash_hmac *m, const void *key, size_t keylen)
{
	uint8_t k[BLOCK] = { 0 };
	int i;

	/* RFC 2104 §2: keys longer than B are hashed first. */
	if (keylen > BLOCK) {
		hash_sha1_init(&m->in);
		hash_update(&m->in, key, keylen);
		hash_final(&m->in, k);
	} else if (keylen > 0)
		memcpy(k, key, keylen);
	for (i = 0; i < BLOCK; i++)
		k[i] ^= HMAC_IPAD;
	hash_sha1_init(&m->in);
	hash_update(&m->in, k, BLOCK);
	for (i = 0; i < BLOCK; i++)
		k[i] ^= HMAC_IPAD ^ HMAC_OPAD;
	hash_sha1_init(&m->out);
	hash_update(&m->out, k, BLOCK);
	sodium_memzero(k, sizeof(k));
}

void
hash_hmac_update(struct hash_hmac *m, const void *data, size_t len)
{
	hash_update(&m->in, data, len);
}

void
hash_hmac_final(struct hash_hmac *m, uint8_t out[HASH_SHA1_LEN])
{
	uint8_t inner[HASH_SHA1_LEN];

	hash_final(&m->in, inner);
	hash_update(&m->out, inner, sizeof(inner));
	hash_final(&m->out, out);
	sodium_memzero(inner, sizeof(inner));
}

uint32_t
hash_crc32(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	int k;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc >> 1 ^ (CRC32_POLY & -(crc & 1));
	}
	return ~crc;
}
