/*
 * stun.c: STUN (RFC 8489) and TURN (RFC 8656) messages.  The builder
 * writes into a fixed buffer and keeps the header's length current, so
 * MESSAGE-INTEGRITY and FINGERPRINT are computed over the buffer as it
 * stands.  The parser trusts nothing: every length is checked against
 * what is left before it is used, and the view only points into the
 * caller's buffer.
 */
#include <string.h>
#include <netinet/in.h>

#include <openssl/evp.h>
#include <sodium.h>
#include <zlib.h>

#include "crypto.h"
#include "stun.h"
#include "util.h"

/* RFC 8489 §5: "The magic cookie field MUST contain the fixed value
 * 0x2112A442 in network byte order." */
#define MAGIC_COOKIE		0x2112a442u
/* RFC 8489 §5: "The most significant 2 bits of every STUN message MUST
 * be zeroes." */
#define TYPE_TOP_BITS		0xc0
#define TYPE_MASK		0x3fff
/* RFC 8489 §14: "Each STUN attribute MUST end on a 32-bit boundary." */
#define PAD4(n)			(((n) + 3) & ~(size_t)3)
#define ATTR_HEADER_LEN		4
/* RFC 8489 §14.7: the CRC-32 "XOR'ed with the 32-bit value 0x5354554e". */
#define FINGERPRINT_XOR		0x5354554eu
#define FINGERPRINT_LEN		4
/* RFC 8489 §14.5: HMAC-SHA1 "will be 20 bytes"; §14.6: HMAC-SHA256
 * truncated to "at least 16 bytes", a multiple of 4, at most 32. */
#define MI_LEN			20
#define MI256_MIN		16
#define MI256_MAX		crypto_auth_hmacsha256_BYTES
/* RFC 8489 §14.1: family 0x01 is IPv4, 0x02 is IPv6. */
#define FAMILY_IPV4		0x01
#define FAMILY_IPV6		0x02
/* RFC 8489 §14.3: USERNAME "MUST contain a UTF-8-encoded sequence of
 * fewer than 509 bytes" (RFC 5389: "less than 513 bytes"; the larger is
 * accepted).  REALM, NONCE, SOFTWARE and the ERROR-CODE reason are
 * "fewer than 128 characters (which can be as long as 509 bytes when
 * encoding them and as long as 763 bytes when decoding them)". */
#define USERNAME_MAX		512
#define TEXT_MAX		763
/* RFC 8489 §14.8: "The Class represents the hundreds digit of the error
 * code.  The value MUST be between 3 and 6.  The Number represents the
 * binary encoding of the error code modulo 100". */
#define ERROR_CLASS_MIN		3
#define ERROR_CLASS_MAX		6
/* RFC 8489 §14: 0x0000-0x7FFF are comprehension-required. */
#define COMPREHENSION_OPTIONAL	0x8000

static bool
is_xor_addr(uint16_t attr)
{
	return attr == STUN_ATTR_XOR_MAPPED_ADDRESS ||
	    attr == STUN_ATTR_XOR_PEER_ADDRESS ||
	    attr == STUN_ATTR_XOR_RELAYED_ADDRESS;
}

bool
stun_is_message(const uint8_t *buf, size_t len)
{
	return len >= STUN_HEADER_LEN && (buf[0] & TYPE_TOP_BITS) == 0 &&
	    get32(buf + 4) == MAGIC_COOKIE && get16(buf + 2) % 4 == 0 &&
	    (size_t)get16(buf + 2) + STUN_HEADER_LEN == len;
}

void
stun_init(struct stun_msg *m, uint16_t type, const uint8_t *txid)
{
	put16(m->buf, type & TYPE_MASK);
	put16(m->buf + 2, 0);
	put32(m->buf + 4, MAGIC_COOKIE);
	if (txid != NULL)
		memcpy(m->buf + 8, txid, STUN_TXID_LEN);
	else
		randombytes_buf(m->buf + 8, STUN_TXID_LEN);
	m->len = STUN_HEADER_LEN;
	m->pad = 0;
	m->err = false;
}

/* Appends an attribute header and padding and updates the message
 * length; returns where its len bytes of value go, or NULL when full. */
static uint8_t *
put_attr(struct stun_msg *m, uint16_t type, size_t len)
{
	uint8_t *p;

	if (m->err)
		return NULL;
	if (len > UINT16_MAX ||
	    ATTR_HEADER_LEN + PAD4(len) > sizeof(m->buf) - m->len) {
		log_err("STUN attribute 0x%04x of %zu bytes does not fit",
		    type, len);
		m->err = true;
		return NULL;
	}
	p = m->buf + m->len;
	put16(p, type);
	put16(p + 2, len);
	memset(p + ATTR_HEADER_LEN + len, m->pad, PAD4(len) - len);
	m->len += ATTR_HEADER_LEN + PAD4(len);
	put16(m->buf + 2, m->len - STUN_HEADER_LEN);
	return p + ATTR_HEADER_LEN;
}

int
stun_add(struct stun_msg *m, uint16_t attr, const void *val, size_t len)
{
	uint8_t *p;

	if ((p = put_attr(m, attr, len)) == NULL)
		return -1;
	if (len > 0)
		memcpy(p, val, len);
	return 0;
}

int
stun_add_u32(struct stun_msg *m, uint16_t attr, uint32_t val)
{
	uint8_t *p;

	if ((p = put_attr(m, attr, 4)) == NULL)
		return -1;
	put32(p, val);
	return 0;
}

int
stun_add_addr(struct stun_msg *m, uint16_t attr, const struct sockaddr *sa)
{
	const uint8_t *mask = m->buf + 4;	/* cookie, then txid */
	const uint8_t *ip;
	uint8_t *p;
	size_t i, iplen;
	uint16_t port;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		ip = (const uint8_t *)&sin->sin_addr;
		iplen = 4;
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		ip = (const uint8_t *)&sin6->sin6_addr;
		iplen = 16;
		port = ntohs(sin6->sin6_port);
	} else {
		log_err("STUN address of family %d", sa->sa_family);
		m->err = true;
		return -1;
	}
	if ((p = put_attr(m, attr, 4 + iplen)) == NULL)
		return -1;
	p[0] = 0;
	p[1] = iplen == 4 ? FAMILY_IPV4 : FAMILY_IPV6;
	/* RFC 8489 §14.2: X-Port is the port XOR the cookie's top 16 bits;
	 * X-Address is the address XOR the cookie (IPv4) or cookie||txid. */
	put16(p + 2, port ^ (is_xor_addr(attr) ? MAGIC_COOKIE >> 16 : 0));
	for (i = 0; i < iplen; i++)
		p[4 + i] = ip[i] ^ (is_xor_addr(attr) ? mask[i] : 0);
	return 0;
}

int
stun_add_error(struct stun_msg *m, int code, const char *reason)
{
	size_t rlen = strlen(reason);
	uint8_t *p;

	if (code < ERROR_CLASS_MIN * 100 || code >= (ERROR_CLASS_MAX + 1) * 100 ||
	    rlen > TEXT_MAX) {
		log_err("bad STUN error `%d %s'", code, reason);
		m->err = true;
		return -1;
	}
	if ((p = put_attr(m, STUN_ATTR_ERROR_CODE, 4 + rlen)) == NULL)
		return -1;
	p[0] = p[1] = 0;
	p[2] = code / 100;
	p[3] = code % 100;
	memcpy(p + 4, reason, rlen);
	return 0;
}

int
stun_add_unknown(struct stun_msg *m, const uint16_t *types, int n)
{
	uint8_t *p;
	int i;

	if (n < 0 || (p = put_attr(m, STUN_ATTR_UNKNOWN_ATTRIBUTES,
	    2 * (size_t)n)) == NULL) {
		m->err = true;
		return -1;
	}
	for (i = 0; i < n; i++)
		put16(p + 2 * i, types[i]);
	return 0;
}

int
stun_finish(struct stun_msg *m, const uint8_t *key, size_t keylen, int flags)
{
	size_t at = m->len;
	uint8_t *p;

	/* RFC 8489 §14.5: the HMAC covers the message up to the attribute,
	 * with the header's length already counting it. */
	if (key != NULL && (flags & STUN_SHA256)) {
		crypto_auth_hmacsha256_state st;

		if ((p = put_attr(m, STUN_ATTR_MESSAGE_INTEGRITY_SHA256,
		    MI256_MAX)) == NULL)
			return -1;
		crypto_auth_hmacsha256_init(&st, key, keylen);
		crypto_auth_hmacsha256_update(&st, m->buf, at);
		crypto_auth_hmacsha256_final(&st, p);
	} else if (key != NULL) {
		if ((p = put_attr(m, STUN_ATTR_MESSAGE_INTEGRITY, MI_LEN)) == NULL ||
		    crypto_hmac("SHA1", key, keylen, m->buf, at, NULL, 0, p, MI_LEN) == -1)
			return -1;
	}
	at = m->len;
	if (flags & STUN_FINGERPRINT) {
		if ((p = put_attr(m, STUN_ATTR_FINGERPRINT,
		    FINGERPRINT_LEN)) == NULL)
			return -1;
		put32(p, crc32_z(0, m->buf, at) ^ FINGERPRINT_XOR);
	}
	return m->err ? -1 : 0;
}

/* Returns 1 if the attribute is understood and well formed, 0 if it is
 * not understood, -1 if it is understood and malformed. */
static int
check_attr(uint16_t type, const uint8_t *val, size_t len)
{
	switch (type) {
	case STUN_ATTR_MAPPED_ADDRESS:
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
	case STUN_ATTR_XOR_PEER_ADDRESS:
	case STUN_ATTR_XOR_RELAYED_ADDRESS:
		return (len == 8 && val[1] == FAMILY_IPV4) ||
		    (len == 20 && val[1] == FAMILY_IPV6) ? 1 : -1;
	case STUN_ATTR_USERNAME:
		return len <= USERNAME_MAX ? 1 : -1;
	case STUN_ATTR_REALM:
	case STUN_ATTR_NONCE:
	case STUN_ATTR_SOFTWARE:
		return len <= TEXT_MAX ? 1 : -1;
	case STUN_ATTR_ERROR_CODE:
		return len >= 4 && len - 4 <= TEXT_MAX &&
		    (val[2] & 7) >= ERROR_CLASS_MIN &&
		    (val[2] & 7) <= ERROR_CLASS_MAX && val[3] < 100 ? 1 : -1;
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
		return len % 2 == 0 ? 1 : -1;
	case STUN_ATTR_CHANNEL_NUMBER:
	case STUN_ATTR_LIFETIME:
	case STUN_ATTR_REQUESTED_TRANSPORT:
		return len == 4 ? 1 : -1;
	case STUN_ATTR_DATA:
		return 1;
	case STUN_ATTR_DONT_FRAGMENT:
		return len == 0 ? 1 : -1;
	case STUN_ATTR_MESSAGE_INTEGRITY:
		return len == MI_LEN ? 1 : -1;
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
		return len >= MI256_MIN && len <= MI256_MAX && len % 4 == 0 ?
		    1 : -1;
	case STUN_ATTR_FINGERPRINT:
		return len == FINGERPRINT_LEN ? 1 : -1;
	default:
		return 0;
	}
}

static int
bad(const char *why)
{
	log_v(2, "STUN message refused: %s", why);
	return -1;
}

int
stun_parse(const uint8_t *buf, size_t len, struct stun_view *v)
{
	bool integrity = false, sha256 = false, fingerprint = false;
	size_t off, alen;
	uint16_t type, t;
	int n = 0, ok;

	memset(v, 0, sizeof(*v));
	if (!stun_is_message(buf, len))
		return bad("not a STUN header");
	t = get16(buf);
	v->buf = buf;
	v->len = len;
	v->method = (t & 0x000f) | (t & 0x00e0) >> 1 | (t & 0x3e00) >> 2;
	v->cls = t & STUN_ERROR;
	v->txid = buf + 8;
	/* off and len are multiples of 4 (stun_is_message), so an
	 * attribute header is always whole. */
	for (off = STUN_HEADER_LEN; off < len;
	    off += ATTR_HEADER_LEN + PAD4(alen)) {
		type = get16(buf + off);
		alen = get16(buf + off + 2);
		if (PAD4(alen) > len - off - ATTR_HEADER_LEN)
			return bad("attribute past the end");
		if (++n > STUN_MAX_ATTRS)
			return bad("too many attributes");
		/* RFC 8489 §14.7: "the FINGERPRINT attribute MUST be the last
		 * attribute in the message". */
		if (fingerprint)
			return bad("attribute after FINGERPRINT");
		/* RFC 8489 §14.5: "agents MUST ignore all other attributes that
		 * follow MESSAGE-INTEGRITY, with the exception of the
		 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT attributes"; §14.6
		 * the same after MESSAGE-INTEGRITY-SHA256 but for FINGERPRINT. */
		if (type == STUN_ATTR_FINGERPRINT)
			fingerprint = true;
		else if (sha256 || (integrity &&
		    type != STUN_ATTR_MESSAGE_INTEGRITY_SHA256))
			continue;
		else if (type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
			sha256 = true;
		else if (type == STUN_ATTR_MESSAGE_INTEGRITY)
			integrity = true;
		if ((ok = check_attr(type, buf + off + ATTR_HEADER_LEN, alen)) < 0)
			return bad("malformed attribute");
		/* RFC 8489 §14: "only the first occurrence needs to be
		 * processed". */
		if (stun_get(v, type, NULL) != NULL)
			continue;
		v->attr[v->nattr].type = type;
		v->attr[v->nattr].len = alen;
		v->attr[v->nattr].off = off + ATTR_HEADER_LEN;
		v->nattr++;
		if (!ok && type < COMPREHENSION_OPTIONAL &&
		    v->nunknown < STUN_MAX_UNKNOWN)
			v->unknown[v->nunknown++] = type;
	}
	return 0;
}

const uint8_t *
stun_get(const struct stun_view *v, uint16_t attr, size_t *len)
{
	int i;

	for (i = 0; i < v->nattr; i++) {
		if (v->attr[i].type == attr) {
			if (len != NULL)
				*len = v->attr[i].len;
			return v->buf + v->attr[i].off;
		}
	}
	return NULL;
}

int
stun_get_u32(const struct stun_view *v, uint16_t attr, uint32_t *val)
{
	const uint8_t *p;
	size_t len;

	if ((p = stun_get(v, attr, &len)) == NULL || len != 4)
		return -1;
	*val = get32(p);
	return 0;
}

int
stun_get_addr(const struct stun_view *v, uint16_t attr,
    struct sockaddr_storage *ss)
{
	const uint8_t *mask = v->buf + 4;	/* cookie, then txid */
	const uint8_t *p;
	uint8_t *ip;
	size_t len, i, iplen;
	uint16_t port;

	if ((p = stun_get(v, attr, &len)) == NULL || len < 4)
		return -1;
	port = get16(p + 2) ^ (is_xor_addr(attr) ? MAGIC_COOKIE >> 16 : 0);
	memset(ss, 0, sizeof(*ss));
	if (p[1] == FAMILY_IPV4 && len == 8) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		ip = (uint8_t *)&sin->sin_addr;
		iplen = 4;
	} else if (p[1] == FAMILY_IPV6 && len == 20) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		ip = (uint8_t *)&sin6->sin6_addr;
		iplen = 16;
	} else
		return -1;
	for (i = 0; i < iplen; i++)
		ip[i] = p[4 + i] ^ (is_xor_addr(attr) ? mask[i] : 0);
	return 0;
}

int
stun_get_error(const struct stun_view *v, int *code, const char **reason,
    size_t *reasonlen)
{
	const uint8_t *p;
	size_t len;

	if ((p = stun_get(v, STUN_ATTR_ERROR_CODE, &len)) == NULL || len < 4)
		return -1;
	*code = (p[2] & 7) * 100 + p[3];
	*reason = (const char *)p + 4;
	*reasonlen = len - 4;
	return 0;
}

int
stun_get_unknown(const struct stun_view *v, uint16_t *types, int max)
{
	const uint8_t *p;
	size_t len;
	int i;

	if ((p = stun_get(v, STUN_ATTR_UNKNOWN_ATTRIBUTES, &len)) == NULL ||
	    len % 2 != 0)
		return -1;
	for (i = 0; i < (int)(len / 2) && i < max; i++)
		types[i] = get16(p + 2 * i);
	return len / 2;
}

int
stun_check_integrity(const struct stun_view *v, const uint8_t *key,
    size_t keylen)
{
	uint8_t hdr[4], mac[MI256_MAX];
	const uint8_t *want;
	size_t len, at;
	bool sha256;
	int ret;

	sha256 = (want = stun_get(v, STUN_ATTR_MESSAGE_INTEGRITY_SHA256,
	    &len)) != NULL;
	if (!sha256 && (want = stun_get(v, STUN_ATTR_MESSAGE_INTEGRITY,
	    &len)) == NULL)
		return -1;
	at = (size_t)(want - v->buf) - ATTR_HEADER_LEN;
	/* The header as it was when the sender computed the HMAC: its
	 * length ending with this attribute. */
	memcpy(hdr, v->buf, 2);
	put16(hdr + 2, at + ATTR_HEADER_LEN + len - STUN_HEADER_LEN);
	if (sha256) {
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st, key, keylen);
		crypto_auth_hmacsha256_update(&st, hdr, sizeof(hdr));
		crypto_auth_hmacsha256_update(&st, v->buf + 4, at - 4);
		crypto_auth_hmacsha256_final(&st, mac);
	} else if (crypto_hmac("SHA1", key, keylen, hdr, sizeof(hdr), v->buf + 4, at - 4,
	    mac, MI_LEN) == -1)
		return -1;
	ret = sodium_memcmp(mac, want, len) == 0 ? 0 : -1;
	sodium_memzero(mac, sizeof(mac));
	return ret;
}

int
stun_check_fingerprint(const struct stun_view *v)
{
	const uint8_t *p;
	size_t len;

	/* stun_parse made sure it is last, so the header's length is the
	 * one the sender had when computing it. */
	if ((p = stun_get(v, STUN_ATTR_FINGERPRINT, &len)) == NULL ||
	    len != FINGERPRINT_LEN)
		return -1;
	return get32(p) == (crc32_z(0, v->buf, (size_t)(p - v->buf) -
	    ATTR_HEADER_LEN) ^ FINGERPRINT_XOR) ? 0 : -1;
}

int
stun_lt_key(uint8_t key[STUN_LT_KEY_LEN], const char *user, const char *realm,
    const char *pass)
{
	EVP_MD_CTX *c;
	unsigned int len;
	int ret = -1;

	if ((c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1 &&
	    EVP_DigestUpdate(c, user, strlen(user)) == 1 &&
	    EVP_DigestUpdate(c, ":", 1) == 1 &&
	    EVP_DigestUpdate(c, realm, strlen(realm)) == 1 &&
	    EVP_DigestUpdate(c, ":", 1) == 1 &&
	    EVP_DigestUpdate(c, pass, strlen(pass)) == 1 &&
	    EVP_DigestFinal_ex(c, key, &len) == 1 && len == STUN_LT_KEY_LEN)
		ret = 0;
	EVP_MD_CTX_free(c);	/* wipes what it held */
	return ret;
}

ssize_t
stun_channel_frame(uint8_t *out, size_t outlen, uint16_t channel,
    const void *data, size_t len)
{
	size_t total = 4 + PAD4(len);

	if (channel < STUN_CHANNEL_MIN || channel > STUN_CHANNEL_MAX ||
	    len > UINT16_MAX || total > outlen)
		return -1;
	if (len > 0)
		memmove(out + 4, data, len);
	put16(out, channel);
	put16(out + 2, len);
	memset(out + 4 + len, 0, total - 4 - len);
	return total;
}

int
stun_channel_parse(const uint8_t *buf, size_t len, uint16_t *channel,
    const uint8_t **data, size_t *datalen)
{
	size_t n;

	if (len < 4)
		return -1;
	*channel = get16(buf);
	n = get16(buf + 2);
	/* RFC 8656 §12.5: over UDP "the padding is not required but MAY be
	 * included"; §12.6: a datagram shorter than 4 + length is
	 * discarded.  Anything beyond the padding is refused too. */
	if (*channel < STUN_CHANNEL_MIN || *channel > STUN_CHANNEL_MAX ||
	    n > len - 4 || len > 4 + PAD4(n))
		return -1;
	*data = buf + 4;
	*datalen = n;
	return 0;
}

uint64_t
stun_retrans_deadline(int attempt, uint64_t rto_us)
{
	/* RFC 8489 §6.2.1: "requests would be sent at times 0 ms, 500 ms,
	 * 1500 ms, 3500 ms, 7500 ms, 15500 ms, and 31500 ms.  If the client
	 * has not received a response after 39500 ms, the client will
	 * consider the transaction to have timed out." */
	if (attempt >= STUN_RC - 1)
		return (((uint64_t)1 << (STUN_RC - 1)) - 1 + STUN_RM) * rto_us;
	return (((uint64_t)1 << (attempt + 1)) - 1) * rto_us;
}
