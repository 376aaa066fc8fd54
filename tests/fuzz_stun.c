/*
 * fuzz_stun: libFuzzer target for the STUN/TURN parser (stun.c) and
 * TURN ChannelData framing.  `make fuzz' runs it on tests/fuzz/stun/ (the
 * RFC 5769 vectors and one message of each TURN kind we take).
 *
 * Besides not crashing, a message that parses must survive a rebuild:
 * its indexed attributes, added again in order to a fresh message with
 * the same type and transaction id, parse back to the same values.
 */
#include <string.h>

#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static const uint16_t addrs[] = {
		STUN_ATTR_MAPPED_ADDRESS, STUN_ATTR_XOR_MAPPED_ADDRESS,
		STUN_ATTR_XOR_PEER_ADDRESS, STUN_ATTR_XOR_RELAYED_ADDRESS,
	};
	struct sockaddr_storage a, b;
	struct stun_view v, w;
	struct stun_msg m;
	const uint8_t *data, *p, *q;
	const char *reason;
	uint16_t types[8], ch;
	size_t n, plen, qlen, i;
	uint32_t u;
	int code;

	if (stun_channel_parse(buf, len, &ch, &data, &n) == 0)
		check(ch >= STUN_CHANNEL_MIN && ch <= STUN_CHANNEL_MAX &&
		    data + n <= buf + len);
	if (stun_parse(buf, len, &v) != 0)
		return 0;
	check(stun_is_message(buf, len));
	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		stun_get_addr(&v, addrs[i], &a);
	stun_get_u32(&v, STUN_ATTR_LIFETIME, &u);
	if (stun_get_error(&v, &code, &reason, &n) == 0)
		check(code >= 300 && code < 700);
	stun_get_unknown(&v, types, 8);
	stun_check_integrity(&v, (const uint8_t *)"key", 3);
	stun_check_fingerprint(&v);

	stun_init(&m, STUN_TYPE(v.method, v.cls), v.txid);
	for (i = 0; i < (size_t)v.nattr; i++)
		stun_add(&m, v.attr[i].type, buf + v.attr[i].off, v.attr[i].len);
	if (stun_finish(&m, NULL, 0, 0) != 0)
		return 0;	/* larger than STUN_MSG_MAX */
	check(stun_parse(m.buf, m.len, &w) == 0);
	check(w.method == v.method && w.cls == v.cls && w.nattr <= v.nattr);
	for (i = 0; i < (size_t)w.nattr; i++) {
		p = stun_get(&v, w.attr[i].type, &plen);
		q = stun_get(&w, w.attr[i].type, &qlen);
		check(p != NULL && plen == qlen && memcmp(p, q, plen) == 0);
	}
	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		if (stun_get_addr(&w, addrs[i], &b) == 0) {
			check(stun_get_addr(&v, addrs[i], &a) == 0);
			check(memcmp(&a, &b, sizeof(a)) == 0);
		}
	}
	return 0;
}
