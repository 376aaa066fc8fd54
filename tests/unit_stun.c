/*
 * unit_stun: the STUN/TURN codec against published vectors (RFC 5769:
 * HMAC-SHA1 integrity, FINGERPRINT's CRC-32 and the long-term key's MD5
 * all take part), round trips of every attribute, ChannelData framing, the
 * retransmission schedule, and a mutation fuzz loop (run it under
 * `make SANITIZE=1').
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stun.h"

/* The same, uncounted, for the fuzz loop's invariants. */
#define FUZZ_CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: fuzz: failed: %s\n", __FILE__, __LINE__, #c); \
		failures++; \
	} \
} while (0)

static void
unhex(uint8_t *out, const char *hex)
{
	unsigned int b;

	while (*hex != '\0' && sscanf(hex, "%2x", &b) == 1) {
		*out++ = b;
		hex += 2;
	}
}

static int
digest_is(const uint8_t *got, const char *hex, size_t len)
{
	uint8_t want[64];

	unhex(want, hex);
	return memcmp(got, want, len) == 0;
}

/* RFC 5769 §2.1-2.4, with their passwords, names and addresses. */
static const uint8_t rfc5769_request[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
	0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
	0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
	0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20,
	0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,
	0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
	0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};
static const uint8_t rfc5769_ipv4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
	0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};
static const uint8_t rfc5769_ipv6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};
static const uint8_t rfc5769_longterm[] = {
	0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42,
	0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
	0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83,
	0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00,
	0x00, 0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39,
	0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46,
	0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73, 0x41,
	0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
	0x6f, 0x72, 0x67, 0x00,
	0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e,
	0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
};
#define RFC5769_PASSWORD	"VOkJxbRl1RmTxUk/WvJxBt"
#define RFC5769_LT_USER		"\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9"
#define RFC5769_LT_PASSWORD	"TheMatrIX"	/* after SASLprep */
#define RFC5769_LT_NONCE	"f//499k954d6OL34oL9FSTvy64sA"
#define RFC5769_LT_REALM	"example.org"

static const struct {
	const uint8_t	*buf;
	size_t		 len;
} seeds[] = {
	{ rfc5769_request, sizeof(rfc5769_request) },
	{ rfc5769_ipv4, sizeof(rfc5769_ipv4) },
	{ rfc5769_ipv6, sizeof(rfc5769_ipv6) },
	{ rfc5769_longterm, sizeof(rfc5769_longterm) },
};

/* Zeros, for payloads longer than anything allowed. */
static const uint8_t payload[70000];

static int
attr_is(const struct stun_view *v, uint16_t attr, const char *want)
{
	const uint8_t *p;
	size_t len;

	return (p = stun_get(v, attr, &len)) != NULL && len == strlen(want) &&
	    memcmp(p, want, len) == 0;
}

static struct sockaddr_storage
addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	return ss;
}

static int
addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port &&
	    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void
test_rfc5769(void)
{
	static const uint8_t txid[] = {
		0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
	};
	struct sockaddr_storage ss, want;
	struct stun_view v;
	struct stun_msg m;
	uint8_t key[STUN_LT_KEY_LEN];
	const uint8_t *p;
	size_t len;

	/* §2.1: sample request, short-term credentials. */
	CHECK(stun_is_message(rfc5769_request, sizeof(rfc5769_request)));
	CHECK(stun_parse(rfc5769_request, sizeof(rfc5769_request), &v) == 0);
	CHECK(v.method == STUN_BINDING && v.cls == STUN_REQUEST);
	CHECK(memcmp(v.txid, txid, STUN_TXID_LEN) == 0);
	CHECK(v.nattr == 6);
	CHECK(attr_is(&v, STUN_ATTR_SOFTWARE, "STUN test client"));
	CHECK(attr_is(&v, STUN_ATTR_USERNAME, "evtj:h6vY"));
	/* PRIORITY (0x0024) is comprehension-required and not ours. */
	CHECK(v.nunknown == 1 && v.unknown[0] == 0x0024);
	CHECK(stun_check_integrity(&v, (const uint8_t *)RFC5769_PASSWORD,
	    strlen(RFC5769_PASSWORD)) == 0);
	CHECK(stun_check_integrity(&v, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBT",
	    22) == -1);
	CHECK(stun_check_fingerprint(&v) == 0);
	/* Rebuilt byte for byte; the RFC pads with spaces. */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), txid);
	CHECK(memcmp(stun_txid(&m), txid, STUN_TXID_LEN) == 0);
	m.pad = ' ';
	stun_add(&m, STUN_ATTR_SOFTWARE, "STUN test client", 16);
	p = stun_get(&v, 0x0024, &len);
	CHECK(p != NULL && len == 4);
	stun_add(&m, 0x0024, p, len);
	p = stun_get(&v, 0x8029, &len);
	CHECK(p != NULL && len == 8);
	stun_add(&m, 0x8029, p, len);
	stun_add(&m, STUN_ATTR_USERNAME, "evtj:h6vY", 9);
	CHECK(stun_finish(&m, (const uint8_t *)RFC5769_PASSWORD,
	    strlen(RFC5769_PASSWORD), STUN_FINGERPRINT) == 0);
	CHECK(m.len == sizeof(rfc5769_request) &&
	    memcmp(m.buf, rfc5769_request, m.len) == 0);

	/* §2.2: IPv4 response, 192.0.2.1 port 32853. */
	CHECK(stun_parse(rfc5769_ipv4, sizeof(rfc5769_ipv4), &v) == 0);
	CHECK(v.method == STUN_BINDING && v.cls == STUN_SUCCESS);
	CHECK(v.nunknown == 0);
	CHECK(attr_is(&v, STUN_ATTR_SOFTWARE, "test vector"));
	want = addr("192.0.2.1", 32853);
	CHECK(stun_get_addr(&v, STUN_ATTR_XOR_MAPPED_ADDRESS, &ss) == 0);
	CHECK(addr_eq(&ss, &want));
	CHECK(stun_check_integrity(&v, (const uint8_t *)RFC5769_PASSWORD,
	    strlen(RFC5769_PASSWORD)) == 0);
	CHECK(stun_check_fingerprint(&v) == 0);
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_SUCCESS), txid);
	m.pad = ' ';
	stun_add(&m, STUN_ATTR_SOFTWARE, "test vector", 11);
	stun_add_addr(&m, STUN_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&want);
	CHECK(stun_finish(&m, (const uint8_t *)RFC5769_PASSWORD,
	    strlen(RFC5769_PASSWORD), STUN_FINGERPRINT) == 0);
	CHECK(m.len == sizeof(rfc5769_ipv4) &&
	    memcmp(m.buf, rfc5769_ipv4, m.len) == 0);

	/* §2.3: IPv6 response, 2001:db8:1234:5678:11:2233:4455:6677 port 32853. */
	CHECK(stun_parse(rfc5769_ipv6, sizeof(rfc5769_ipv6), &v) == 0);
	want = addr("2001:db8:1234:5678:11:2233:4455:6677", 32853);
	CHECK(stun_get_addr(&v, STUN_ATTR_XOR_MAPPED_ADDRESS, &ss) == 0);
	CHECK(addr_eq(&ss, &want));
	CHECK(stun_check_integrity(&v, (const uint8_t *)RFC5769_PASSWORD,
	    strlen(RFC5769_PASSWORD)) == 0);
	CHECK(stun_check_fingerprint(&v) == 0);
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_SUCCESS), txid);
	m.pad = ' ';
	stun_add(&m, STUN_ATTR_SOFTWARE, "test vector", 11);
	stun_add_addr(&m, STUN_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&want);
	CHECK(stun_finish(&m, (const uint8_t *)RFC5769_PASSWORD,
	    strlen(RFC5769_PASSWORD), STUN_FINGERPRINT) == 0);
	CHECK(m.len == sizeof(rfc5769_ipv6) &&
	    memcmp(m.buf, rfc5769_ipv6, m.len) == 0);

	/* §2.4: request with long-term credentials, no FINGERPRINT. */
	CHECK(stun_lt_key(key, RFC5769_LT_USER, RFC5769_LT_REALM,
	    RFC5769_LT_PASSWORD) == 0);
	CHECK(digest_is(key, "e8ca7ad59d5eb0518e312911d2dab2a9", sizeof(key)));
	CHECK(stun_parse(rfc5769_longterm, sizeof(rfc5769_longterm), &v) == 0);
	CHECK(v.method == STUN_BINDING && v.cls == STUN_REQUEST);
	CHECK(attr_is(&v, STUN_ATTR_USERNAME, RFC5769_LT_USER));
	CHECK(attr_is(&v, STUN_ATTR_NONCE, RFC5769_LT_NONCE));
	CHECK(attr_is(&v, STUN_ATTR_REALM, RFC5769_LT_REALM));
	CHECK(stun_check_integrity(&v, key, sizeof(key)) == 0);
	CHECK(stun_check_fingerprint(&v) == -1);	/* absent */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), v.txid);
	stun_add(&m, STUN_ATTR_USERNAME, RFC5769_LT_USER, strlen(RFC5769_LT_USER));
	stun_add(&m, STUN_ATTR_NONCE, RFC5769_LT_NONCE, strlen(RFC5769_LT_NONCE));
	stun_add(&m, STUN_ATTR_REALM, RFC5769_LT_REALM, strlen(RFC5769_LT_REALM));
	CHECK(stun_finish(&m, key, sizeof(key), 0) == 0);
	CHECK(m.len == sizeof(rfc5769_longterm) &&
	    memcmp(m.buf, rfc5769_longterm, m.len) == 0);
}

static void
test_types(void)
{
	struct stun_view v;
	struct stun_msg m;
	static const uint16_t cls[] = {
		STUN_REQUEST, STUN_INDICATION, STUN_SUCCESS, STUN_ERROR,
	};
	uint8_t txid[STUN_TXID_LEN];
	int method, c, ok = 1;

	/* RFC 8489 §5 and RFC 8656 §17 wire values. */
	CHECK(STUN_TYPE(STUN_BINDING, STUN_REQUEST) == 0x0001);
	CHECK(STUN_TYPE(STUN_BINDING, STUN_SUCCESS) == 0x0101);
	CHECK(STUN_TYPE(STUN_BINDING, STUN_ERROR) == 0x0111);
	CHECK(STUN_TYPE(STUN_ALLOCATE, STUN_REQUEST) == 0x0003);
	CHECK(STUN_TYPE(STUN_ALLOCATE, STUN_SUCCESS) == 0x0103);
	CHECK(STUN_TYPE(STUN_ALLOCATE, STUN_ERROR) == 0x0113);
	CHECK(STUN_TYPE(STUN_REFRESH, STUN_REQUEST) == 0x0004);
	CHECK(STUN_TYPE(STUN_SEND, STUN_INDICATION) == 0x0016);
	CHECK(STUN_TYPE(STUN_DATA, STUN_INDICATION) == 0x0017);
	CHECK(STUN_TYPE(STUN_CREATE_PERMISSION, STUN_REQUEST) == 0x0008);
	CHECK(STUN_TYPE(STUN_CHANNEL_BIND, STUN_SUCCESS) == 0x0109);
	CHECK(STUN_TYPE(0xfff, STUN_ERROR) == 0x3fff);
	/* Without one, the transaction id is random. */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
	memcpy(txid, stun_txid(&m), STUN_TXID_LEN);
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
	CHECK(memcmp(txid, stun_txid(&m), STUN_TXID_LEN) != 0);
	/* Every method and class survives a build and a parse. */
	for (method = 0; method <= 0xfff; method++) {
		for (c = 0; c < 4; c++) {
			stun_init(&m, STUN_TYPE(method, cls[c]), NULL);
			if (stun_finish(&m, NULL, 0, 0) != 0 ||
			    stun_parse(m.buf, m.len, &v) != 0 ||
			    v.method != method || v.cls != cls[c])
				ok = 0;
		}
	}
	CHECK(ok);
}

static void
test_attributes(void)
{
	static const uint16_t unknown[] = { 0x0024, 0x7fff, 0x0001 };
	static const uint8_t data[] = { 0xe1, 0x00, 0x40, 0xff, 0x00 };
	struct sockaddr_storage a4 = addr("203.0.113.7", 1), a6 = addr("2001:db8::1", 65535);
	struct sockaddr_storage p4 = addr("198.51.100.9", 40000), r6 = addr("::ffff:10.0.0.1", 3478);
	struct sockaddr_storage ss;
	const uint8_t key[] = "a short-term password";
	struct stun_view v;
	struct stun_msg m;
	const uint8_t *p;
	const char *reason;
	uint16_t types[8];
	uint32_t u;
	size_t len;
	int code, flags;

	for (flags = 0; flags < 4; flags++) {
		stun_init(&m, STUN_TYPE(STUN_ALLOCATE, STUN_ERROR), NULL);
		CHECK(stun_add_addr(&m, STUN_ATTR_MAPPED_ADDRESS, (struct sockaddr *)&a4) == 0);
		CHECK(stun_add_addr(&m, STUN_ATTR_XOR_MAPPED_ADDRESS, (struct sockaddr *)&a6) == 0);
		CHECK(stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS, (struct sockaddr *)&p4) == 0);
		CHECK(stun_add_addr(&m, STUN_ATTR_XOR_RELAYED_ADDRESS, (struct sockaddr *)&r6) == 0);
		CHECK(stun_add(&m, STUN_ATTR_USERNAME, "user", 4) == 0);
		CHECK(stun_add(&m, STUN_ATTR_REALM, "realm.example", 13) == 0);
		CHECK(stun_add(&m, STUN_ATTR_NONCE, "nonce-1", 7) == 0);
		CHECK(stun_add(&m, STUN_ATTR_SOFTWARE, "p2pcat", 6) == 0);
		CHECK(stun_add_error(&m, 438, "Stale Nonce") == 0);
		CHECK(stun_add_unknown(&m, unknown, 3) == 0);
		CHECK(stun_add_u32(&m, STUN_ATTR_LIFETIME, 600) == 0);
		CHECK(stun_add_u32(&m, STUN_ATTR_REQUESTED_TRANSPORT, STUN_TRANSPORT_UDP) == 0);
		CHECK(stun_add_u32(&m, STUN_ATTR_CHANNEL_NUMBER, 0x4001u << 16) == 0);
		CHECK(stun_add(&m, STUN_ATTR_DATA, data, sizeof(data)) == 0);
		CHECK(stun_add(&m, STUN_ATTR_DONT_FRAGMENT, NULL, 0) == 0);
		CHECK(stun_finish(&m, flags & 2 ? key : NULL, sizeof(key) - 1,
		    flags & 1 ? STUN_FINGERPRINT : 0) == 0);
		CHECK(m.len % 4 == 0 && !m.err);
		CHECK(stun_is_message(m.buf, m.len));

		CHECK(stun_parse(m.buf, m.len, &v) == 0);
		CHECK(v.method == STUN_ALLOCATE && v.cls == STUN_ERROR);
		CHECK(v.nunknown == 0);
		CHECK(v.nattr == 15 + !!(flags & 1) + !!(flags & 2));
		CHECK(stun_get_addr(&v, STUN_ATTR_MAPPED_ADDRESS, &ss) == 0 && addr_eq(&ss, &a4));
		/* Plain MAPPED-ADDRESS carries the address as it is. */
		p = stun_get(&v, STUN_ATTR_MAPPED_ADDRESS, &len);
		CHECK(p != NULL && len == 8 && p[2] == 0 && p[3] == 1 && p[4] == 203);
		CHECK(stun_get_addr(&v, STUN_ATTR_XOR_MAPPED_ADDRESS, &ss) == 0 && addr_eq(&ss, &a6));
		CHECK(stun_get_addr(&v, STUN_ATTR_XOR_PEER_ADDRESS, &ss) == 0 && addr_eq(&ss, &p4));
		CHECK(stun_get_addr(&v, STUN_ATTR_XOR_RELAYED_ADDRESS, &ss) == 0 && addr_eq(&ss, &r6));
		p = stun_get(&v, STUN_ATTR_XOR_PEER_ADDRESS, &len);
		CHECK(p != NULL && len == 8 && p[4] != 198);	/* xored */
		CHECK(attr_is(&v, STUN_ATTR_USERNAME, "user"));
		CHECK(attr_is(&v, STUN_ATTR_REALM, "realm.example"));
		CHECK(attr_is(&v, STUN_ATTR_NONCE, "nonce-1"));
		CHECK(attr_is(&v, STUN_ATTR_SOFTWARE, "p2pcat"));
		CHECK(stun_get_error(&v, &code, &reason, &len) == 0);
		CHECK(code == 438 && len == 11 && memcmp(reason, "Stale Nonce", 11) == 0);
		CHECK(stun_get_unknown(&v, types, 8) == 3);
		CHECK(types[0] == 0x0024 && types[1] == 0x7fff && types[2] == 0x0001);
		CHECK(stun_get_unknown(&v, types, 1) == 3);
		CHECK(stun_get_u32(&v, STUN_ATTR_LIFETIME, &u) == 0 && u == 600);
		CHECK(stun_get_u32(&v, STUN_ATTR_REQUESTED_TRANSPORT, &u) == 0 && u >> 24 == 17);
		CHECK(stun_get_u32(&v, STUN_ATTR_CHANNEL_NUMBER, &u) == 0 && u >> 16 == 0x4001);
		p = stun_get(&v, STUN_ATTR_DATA, &len);
		CHECK(p != NULL && len == sizeof(data) && memcmp(p, data, len) == 0);
		p = stun_get(&v, STUN_ATTR_DONT_FRAGMENT, &len);
		CHECK(p != NULL && len == 0);
		CHECK(stun_get(&v, STUN_ATTR_NONCE + 0x100, NULL) == NULL);
		CHECK(stun_get_u32(&v, STUN_ATTR_REALM, &u) == -1);
		CHECK(stun_get_addr(&v, STUN_ATTR_USERNAME, &ss) == -1);
		CHECK(stun_check_fingerprint(&v) == (flags & 1 ? 0 : -1));
		CHECK(stun_check_integrity(&v, key, sizeof(key) - 1) == (flags & 2 ? 0 : -1));
		CHECK(stun_check_integrity(&v, key, sizeof(key) - 2) == -1);
		if (flags == 3) {
			/* One flipped bit anywhere breaks both checks. */
			m.buf[30] ^= 0x10;
			CHECK(stun_parse(m.buf, m.len, &v) == 0);
			CHECK(stun_check_fingerprint(&v) == -1);
			CHECK(stun_check_integrity(&v, key, sizeof(key) - 1) == -1);
		}
	}

	/* MESSAGE-INTEGRITY-SHA256, alone and followed by FINGERPRINT. */
	for (flags = 0; flags < 2; flags++) {
		stun_init(&m, STUN_TYPE(STUN_REFRESH, STUN_REQUEST), NULL);
		stun_add_u32(&m, STUN_ATTR_LIFETIME, 0);
		CHECK(stun_finish(&m, key, sizeof(key) - 1, STUN_SHA256 | flags) == 0);
		CHECK(m.len == 20 + 8 + 36 + (flags ? 8 : 0));
		CHECK(stun_parse(m.buf, m.len, &v) == 0);
		CHECK(stun_get(&v, STUN_ATTR_MESSAGE_INTEGRITY, NULL) == NULL);
		CHECK(stun_check_integrity(&v, key, sizeof(key) - 1) == 0);
		CHECK(stun_check_integrity(&v, key, 3) == -1);
		CHECK(stun_check_fingerprint(&v) == (flags ? 0 : -1));
	}

	/* Error codes: every class, and the bounds. */
	for (code = 300; code < 700; code += 37) {
		stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_ERROR), NULL);
		stun_add_error(&m, code, "");
		CHECK(stun_finish(&m, NULL, 0, 0) == 0);
		CHECK(stun_parse(m.buf, m.len, &v) == 0);
		CHECK(stun_get_error(&v, &flags, &reason, &len) == 0 &&
		    flags == code && len == 0);
	}
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_ERROR), NULL);
	CHECK(stun_add_error(&m, 299, "x") == -1);
	CHECK(stun_finish(&m, NULL, 0, 0) == -1);	/* the failure sticks */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_ERROR), NULL);
	CHECK(stun_add_error(&m, 700, "x") == -1);

	/* A Send indication with the largest datagram p2pcat sends (1428
	 * bytes: punch.c's DGRAM_MAX) to an IPv6 peer fits, and reads back. */
	{
		struct sockaddr_in6 peer = { .sin6_family = AF_INET6,
		    .sin6_port = htons(50000) };
		struct sockaddr_storage got;
		uint8_t dg[1428];
		const uint8_t *d;
		size_t dlen, i;

		for (i = 0; i < sizeof dg; i++)
			dg[i] = (uint8_t)(i * 7 + 1);
		inet_pton(AF_INET6, "2001:db8::7", &peer.sin6_addr);
		stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
		CHECK(stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)&peer) == 0);
		CHECK(stun_add(&m, STUN_ATTR_DATA, dg, sizeof dg) == 0);
		CHECK(stun_finish(&m, NULL, 0, 0) == 0 && m.len == 20 + 24 + 4 + 1428);
		CHECK(stun_parse(m.buf, m.len, &v) == 0);
		CHECK(stun_get_addr(&v, STUN_ATTR_XOR_PEER_ADDRESS, &got) == 0 &&
		    memcmp(&((struct sockaddr_in6 *)&got)->sin6_addr, &peer.sin6_addr, 16) == 0 &&
		    ((struct sockaddr_in6 *)&got)->sin6_port == peer.sin6_port);
		CHECK((d = stun_get(&v, STUN_ATTR_DATA, &dlen)) != NULL && dlen == sizeof dg &&
		    memcmp(d, dg, dlen) == 0);
	}

	/* The buffer's end: the last attribute that fits, then refusal. */
	stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
	CHECK(stun_add(&m, STUN_ATTR_DATA, payload, STUN_MSG_MAX - 20 - 4 - 8) == 0);
	CHECK(stun_finish(&m, NULL, 0, STUN_FINGERPRINT) == 0 && m.len == STUN_MSG_MAX);
	stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
	CHECK(stun_add(&m, STUN_ATTR_DATA, payload, STUN_MSG_MAX - 20 - 4 - 7) == 0);
	CHECK(stun_finish(&m, NULL, 0, STUN_FINGERPRINT) == -1);
	stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
	CHECK(stun_add(&m, STUN_ATTR_DATA, payload, 70000) == -1);
	CHECK(stun_add_u32(&m, STUN_ATTR_LIFETIME, 1) == -1);
}

/* A message with the given attribute bytes after a Binding request header. */
static size_t
raw(uint8_t *buf, const uint8_t *attrs, size_t len)
{
	static const uint8_t hdr[] = {
		0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
	};

	memcpy(buf, hdr, 20);
	if (len > 0)
		memcpy(buf + 20, attrs, len);
	buf[2] = len >> 8;
	buf[3] = len;
	return 20 + len;
}

static void
test_parse_refusals(void)
{
	static const struct {
		const char *what;
		uint8_t attrs[16];
		size_t len;
		int ok;
	} bad[] = {
		{ "empty", { 0 }, 0, 0 },
		{ "attr past the end", { 0x00, 0x06, 0x00, 0x05, 'a', 'b', 'c', 'd' }, 8, -1 },
		{ "padding past the end", { 0x00, 0x06, 0x00, 0x05, 'a', 'b', 'c', 'd', 'e' }, 9, -1 },
		{ "odd padding bytes", { 0x00, 0x06, 0x00, 0x01, 'a', 0xff, 0xff, 0xff }, 8, 0 },
		{ "xor addr length 12", { 0x00, 0x20, 0x00, 0x0c, 0, 1 }, 16, -1 },
		{ "xor addr family 3", { 0x00, 0x20, 0x00, 0x08, 0, 3 }, 12, -1 },
		{ "xor addr v6 as v4 length", { 0x00, 0x20, 0x00, 0x08, 0, 2 }, 12, -1 },
		{ "lifetime length 2", { 0x00, 0x0d, 0x00, 0x02, 0, 1 }, 8, -1 },
		{ "dont-fragment with value", { 0x00, 0x1a, 0x00, 0x04 }, 8, -1 },
		{ "error class 2", { 0x00, 0x09, 0x00, 0x04, 0, 0, 2, 0 }, 8, -1 },
		{ "error number 100", { 0x00, 0x09, 0x00, 0x04, 0, 0, 4, 100 }, 8, -1 },
		{ "error too short", { 0x00, 0x09, 0x00, 0x02, 0, 0 }, 8, -1 },
		{ "unknown-attributes odd", { 0x00, 0x0a, 0x00, 0x03, 0, 1, 0 }, 8, -1 },
		{ "integrity length 16", { 0x00, 0x08, 0x00, 0x10 }, 20, -1 },
		{ "integrity-sha256 length 12", { 0x00, 0x1c, 0x00, 0x0c }, 16, -1 },
		{ "integrity-sha256 length 18", { 0x00, 0x1c, 0x00, 0x12 }, 24, -1 },
		{ "fingerprint length 8", { 0x80, 0x28, 0x00, 0x08 }, 12, -1 },
		{ "attr after fingerprint", { 0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0, 0x00, 0x1a, 0x00, 0x00 }, 12, -1 },
		{ "unknown optional", { 0x80, 0x99, 0x00, 0x02, 1, 2 }, 8, 0 },
	};
	uint8_t buf[2048], attrs[1024];
	struct stun_view v;
	struct stun_msg m;
	size_t i, len;
	int n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = raw(buf, bad[i].attrs, bad[i].len);
		if (stun_parse(buf, len, &v) != bad[i].ok) {
			fprintf(stderr, "parse of `%s' did not return %d\n",
			    bad[i].what, bad[i].ok);
			failures++;
		}
		checks++;
	}

	/* Headers that are not STUN, or not consistent. */
	len = raw(buf, NULL, 0);
	CHECK(stun_is_message(buf, len) && stun_parse(buf, len, &v) == 0);
	CHECK(!stun_is_message(buf, 19) && stun_parse(buf, 19, &v) == -1);
	buf[0] = 0xe1;		/* a p2pcat packet */
	CHECK(!stun_is_message(buf, len));
	buf[0] = 0x40;		/* TURN ChannelData */
	CHECK(!stun_is_message(buf, len));
	buf[0] = 0x80;		/* RTP */
	CHECK(!stun_is_message(buf, len));
	buf[0] = 0;
	buf[7] = 0x43;		/* cookie */
	CHECK(!stun_is_message(buf, len) && stun_parse(buf, len, &v) == -1);
	buf[7] = 0x42;
	len = raw(buf, (const uint8_t *)"\x00\x1a\x00\x00", 4);
	CHECK(stun_parse(buf, len, &v) == 0);
	CHECK(stun_parse(buf, len + 4, &v) == -1);	/* trailing bytes */
	CHECK(stun_parse(buf, len - 2, &v) == -1);	/* truncated */
	buf[3] = 2;					/* length not a multiple of 4 */
	CHECK(stun_parse(buf, 22, &v) == -1);

	/* STUN_MAX_ATTRS attributes, then one too many. */
	for (n = 0; n < STUN_MAX_ATTRS + 1; n++)
		memcpy(attrs + 4 * n, "\x80\x99\x00\x00", 4);
	len = raw(buf, attrs, 4 * STUN_MAX_ATTRS);
	CHECK(stun_parse(buf, len, &v) == 0 && v.nattr == 1);
	len = raw(buf, attrs, 4 * (STUN_MAX_ATTRS + 1));
	CHECK(stun_parse(buf, len, &v) == -1);

	/* Duplicates: the first counts. */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
	stun_add(&m, STUN_ATTR_USERNAME, "first", 5);
	stun_add(&m, STUN_ATTR_USERNAME, "second", 6);
	stun_add(&m, 0x0030, "x", 1);
	stun_add(&m, 0x0030, "y", 1);
	stun_add(&m, 0x0031, "z", 1);
	CHECK(stun_finish(&m, NULL, 0, 0) == 0);
	CHECK(stun_parse(m.buf, m.len, &v) == 0 && v.nattr == 3);
	CHECK(attr_is(&v, STUN_ATTR_USERNAME, "first"));
	CHECK(v.nunknown == 2 && v.unknown[0] == 0x0030 && v.unknown[1] == 0x0031);

	/* After MESSAGE-INTEGRITY only -SHA256 and FINGERPRINT count. */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
	stun_add(&m, STUN_ATTR_REALM, "r", 1);
	CHECK(stun_finish(&m, (const uint8_t *)"k", 1, 0) == 0);
	stun_add(&m, STUN_ATTR_USERNAME, "late", 4);
	stun_add(&m, 0x0030, "unknown", 7);
	CHECK(stun_finish(&m, NULL, 0, STUN_FINGERPRINT) == 0);
	CHECK(stun_parse(m.buf, m.len, &v) == 0);
	CHECK(stun_get(&v, STUN_ATTR_USERNAME, NULL) == NULL && v.nunknown == 0);
	CHECK(stun_check_integrity(&v, (const uint8_t *)"k", 1) == 0);
	CHECK(stun_check_fingerprint(&v) == 0);
}

static void
test_channeldata(void)
{
	uint8_t buf[64];
	const uint8_t *data;
	uint16_t ch;
	size_t len;

	/* 4-byte header, payload, zero padding to 4 bytes. */
	CHECK(stun_channel_frame(buf, sizeof(buf), 0x4000, "hello", 5) == 12);
	CHECK(memcmp(buf, "\x40\x00\x00\x05hello\0\0\0", 12) == 0);
	CHECK(!stun_is_message(buf, 12));
	CHECK(stun_channel_parse(buf, 12, &ch, &data, &len) == 0);
	CHECK(ch == 0x4000 && len == 5 && data == buf + 4);
	CHECK(stun_channel_parse(buf, 9, &ch, &data, &len) == 0);	/* unpadded */
	CHECK(stun_channel_parse(buf, 8, &ch, &data, &len) == -1);	/* short */
	CHECK(stun_channel_parse(buf, 13, &ch, &data, &len) == -1);	/* past padding */
	CHECK(stun_channel_parse(buf, 3, &ch, &data, &len) == -1);
	/* In place, with the payload already after the header's room. */
	memcpy(buf + 4, "abcdefgh", 8);
	CHECK(stun_channel_frame(buf, sizeof(buf), 0x4fff, buf + 4, 8) == 12);
	CHECK(memcmp(buf, "\x4f\xff\x00\x08" "abcdefgh", 12) == 0);
	CHECK(stun_channel_frame(buf, sizeof(buf), 0x4001, NULL, 0) == 4);
	CHECK(stun_channel_parse(buf, 4, &ch, &data, &len) == 0 && len == 0);
	CHECK(stun_channel_frame(buf, sizeof(buf), 0x3fff, "x", 1) == -1);
	CHECK(stun_channel_frame(buf, sizeof(buf), 0x5000, "x", 1) == -1);
	CHECK(stun_channel_frame(buf, 11, 0x4000, "hello", 5) == -1);
	CHECK(stun_channel_frame(buf, sizeof(buf), 0x4000, payload, 65536) == -1);
	memcpy(buf, "\x50\x00\x00\x00", 4);
	CHECK(stun_channel_parse(buf, 4, &ch, &data, &len) == -1);
	memcpy(buf, "\x3f\xff\x00\x00", 4);
	CHECK(stun_channel_parse(buf, 4, &ch, &data, &len) == -1);
	CHECK(stun_channel_parse(rfc5769_ipv4, sizeof(rfc5769_ipv4), &ch, &data, &len) == -1);
}

static void
test_retrans(void)
{
	/* RFC 8489 §6.2.1: sent at 0, 500, 1500, 3500, 7500, 15500 and
	 * 31500 ms; timed out at 39500 ms. */
	static const uint64_t want_ms[STUN_RC] = {
		500, 1500, 3500, 7500, 15500, 31500, 39500,
	};
	int i;

	for (i = 0; i < STUN_RC; i++)
		CHECK(stun_retrans_deadline(i, STUN_RTO_US) == want_ms[i] * 1000);
	CHECK(stun_retrans_deadline(STUN_RC, STUN_RTO_US) == 39500000);
	CHECK(stun_retrans_deadline(0, 100000) == 100000);
	CHECK(stun_retrans_deadline(STUN_RC - 1, 100000) == 7900000);
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng >> 11;
}

/* Everything a receiver might do with a datagram; returns whether it
 * parsed as STUN. */
static int
exercise(const uint8_t *buf, size_t len)
{
	static const uint16_t types[] = {
		STUN_ATTR_MAPPED_ADDRESS, STUN_ATTR_XOR_MAPPED_ADDRESS,
		STUN_ATTR_XOR_PEER_ADDRESS, STUN_ATTR_XOR_RELAYED_ADDRESS,
		STUN_ATTR_LIFETIME, STUN_ATTR_CHANNEL_NUMBER, STUN_ATTR_USERNAME,
	};
	struct sockaddr_storage ss;
	struct stun_view v;
	const uint8_t *data;
	const char *reason;
	uint16_t u16[4];
	uint32_t u;
	size_t i, n;
	int code;

	if (stun_channel_parse(buf, len, &u16[0], &data, &n) == 0)
		FUZZ_CHECK(data + n <= buf + len);
	if (stun_parse(buf, len, &v) != 0)
		return 0;
	FUZZ_CHECK(v.nattr <= STUN_MAX_ATTRS && v.nunknown <= STUN_MAX_UNKNOWN);
	for (i = 0; i < (size_t)v.nattr; i++)
		FUZZ_CHECK(v.attr[i].off + v.attr[i].len <= len);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		stun_get_addr(&v, types[i], &ss);
		stun_get_u32(&v, types[i], &u);
	}
	if (stun_get_error(&v, &code, &reason, &n) == 0)
		FUZZ_CHECK(code >= 300 && code < 700 && reason + n <= (const char *)buf + len);
	stun_get_unknown(&v, u16, 4);
	stun_check_integrity(&v, (const uint8_t *)RFC5769_PASSWORD, 22);
	stun_check_fingerprint(&v);
	return 1;
}

static void
test_fuzz(void)
{
	enum { ROUNDS = 1000000 };
	struct stun_msg m;
	uint8_t *buf, tmp[STUN_MSG_MAX];
	size_t len, i, k;
	int r, seeds_n, parsed = 0;
	struct sockaddr_storage a6 = addr("2001:db8::2", 9);

	/* One more seed with every kind of attribute. */
	stun_init(&m, STUN_TYPE(STUN_ALLOCATE, STUN_ERROR),
	    (const uint8_t *)"fuzz-txid-12");
	stun_add_addr(&m, STUN_ATTR_XOR_RELAYED_ADDRESS, (struct sockaddr *)&a6);
	stun_add_error(&m, 401, "Unauthorized");
	stun_add_unknown(&m, (const uint16_t[]){ 1, 2, 3 }, 3);
	stun_add_u32(&m, STUN_ATTR_LIFETIME, 77);
	stun_add(&m, STUN_ATTR_DONT_FRAGMENT, NULL, 0);
	CHECK(stun_finish(&m, (const uint8_t *)"k", 1, STUN_SHA256 | STUN_FINGERPRINT) == 0);
	seeds_n = sizeof(seeds) / sizeof(seeds[0]);

	for (r = 0; r < ROUNDS; r++) {
		k = rnd() % (seeds_n + 2);
		if (k < (size_t)seeds_n) {
			len = seeds[k].len;
			memcpy(tmp, seeds[k].buf, len);
		} else if (k == (size_t)seeds_n) {
			len = m.len;
			memcpy(tmp, m.buf, len);
		} else {
			/* Random attributes behind a valid header. */
			len = 20 + 4 * (rnd() % 40);
			for (i = 0; i < len; i++)
				tmp[i] = rnd() % 4 ? rnd() : 0;
			raw(tmp, tmp + 20, len - 20);
		}
		/* A few mutations: bytes, lengths, truncation, growth. */
		for (i = rnd() % 5; i > 0; i--) {
			switch (rnd() % 6) {
			case 0:
				tmp[rnd() % len] = rnd();
				break;
			case 1:
				tmp[rnd() % len] ^= 1 << (rnd() % 8);
				break;
			case 2:	/* an attribute length, kept 4-aligned */
				k = 20 + 4 * (rnd() % ((len - 20) / 4 + 1));
				if (k + 4 <= len)
					tmp[k + 3] = rnd() % 2 ? rnd() : tmp[k + 3] + rnd() % 8;
				break;
			case 3:
				len = 1 + rnd() % len;
				break;
			case 4:
				if (len + 4 <= sizeof(tmp))
					len += 4;
				break;
			default:	/* make the header agree with len */
				if (len >= 20) {
					tmp[2] = (len - 20) >> 8;
					tmp[3] = len - 20;
				}
			}
		}
		/* An exact-size copy so any over-read trips ASan. */
		buf = malloc(len);
		memcpy(buf, tmp, len);
		parsed += exercise(buf, len);
		free(buf);
	}
	checks++;
	printf("fuzz: %d inputs, %d parsed as STUN\n", ROUNDS, parsed);
}

int
main(void)
{
	test_rfc5769();
	test_types();
	test_attributes();
	test_parse_refusals();
	test_channeldata();
	test_retrans();
	test_fuzz();
	printf("unit_stun: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
