/*
 * hash.h: the digests STUN needs and libsodium lacks: SHA-1 (RFC 3174),
 * HMAC-SHA1 (RFC 2104), MD5 (RFC 1321) and the CRC-32 of ISO-HDLC
 * (RFC 8489 FINGERPRINT).  They serve old wire formats only: do not use
 * them for anything new.
 */
#ifndef HASH_H
#define HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_SHA1_LEN	20
#define HASH_MD5_LEN	16

/* Incremental SHA-1 or MD5: init, any number of updates, final. */
struct hash_ctx {
	uint32_t	h[5];
	uint64_t	n;		/* bytes hashed so far */
	uint8_t		blk[64];
	int		md5;
};
void hash_sha1_init(struct hash_ctx *);
void hash_md5_init(struct hash_ctx *);
void hash_update(struct hash_ctx *, const void *, size_t);
/* Writes HASH_SHA1_LEN or HASH_MD5_LEN bytes and wipes the context. */
void hash_final(struct hash_ctx *, uint8_t *out);

/* Incremental HMAC-SHA1. */
struct hash_hmac {
	struct hash_ctx	in, out;
};
void hash_hmac_sha1_init(struct hash_hmac *, const void *key, size_t keylen);
void hash_hmac_update(struct hash_hmac *, const void *, size_t);
void hash_hmac_final(struct hash_hmac *, uint8_t out[HASH_SHA1_LEN]);

/* CRC-32 of the buffer, continuing from crc (0 to start). */
uint32_t hash_crc32(uint32_t crc, const void *, size_t);

#endif
