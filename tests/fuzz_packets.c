/*
 * fuzz_packets: libFuzzer target for raw datagrams, before decryption, on
 * the session's receive path (session.c, punch.c): two sessions in this
 * process, a caller and a listener that have traded offer and answer, get
 * fuzzed datagrams on their real sockets over loopback and take them with
 * sess_io, as p2pcat's loop does: STUN, TURN ChannelData, KNOCK, HELLO
 * (Noise message 3) and DATA packets, forged or replayed, from a third
 * address or from the peer's own.
 *
 * Connection ids are random, so the fuzzer could never guess one: a
 * datagram that starts with the p2pcat magic byte gets its target's id
 * written in, unless told otherwise.  The caller's id is in its offer;
 * the listener's is in the caller's first HELLO, read (without taking it)
 * from the listener's socket.
 *
 * Randomness and the clock are fixed (fuzzdet.h): every run makes the
 * same keys and ids, and the sessions see time move only as the records
 * say, so a run repeats exactly and never waits.
 *
 * Input: one setup byte, then records.
 *	setup	bit 0: passphrase mode; bit 1: the listener takes the real
 *		HELLO and both run until connected, so the datagrams meet
 *		sessions with keys and a stream
 *	record	ctl(1) len(2, big-endian) datagram[len]; ctl bit 0: to the
 *		listener (else the caller); bit 1: keep the datagram's own
 *		connection id; bit 2: sent from the other session's socket,
 *		not from a stranger's; bits 3-7: milliseconds the clock
 *		moves on before it is taken
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "fuzzdet.h"
#include "session.h"
#include "util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ID		"0123456789abcdef0123456789abcdef"
#define SECRET		"fuzz passphrase"
#define WAIT_MS		200	/* for a datagram over loopback: never, really */
#define PUMP_ROUNDS	200	/* of 1 ms, to get connected */

static struct crypto_identity ida, idb;
static int stranger = -1;

static int
trust(void *ctx, const char *name, const uint8_t pub[CRYPTO_KEY_LEN])
{
	(void)ctx;
	(void)name;
	(void)pub;
	return 0;
}

/* The loopback address of a session's socket. */
static struct sockaddr_in
addr_of(struct session *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof ss;

	if (getsockname(sess_fd(s), (struct sockaddr *)&ss, &len) == -1)
		__builtin_trap();
	a.sin_port = ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* The listener's connection id, from the caller's HELLO waiting on the
 * listener's socket: 0 when none came. */
static uint32_t
listener_cid(struct session *a, struct session *b)
{
	uint8_t buf[WIRE_MAX_PKT];
	struct pollfd p = { .fd = sess_fd(b), .events = POLLIN };
	ssize_t n;

	sess_io(a, fuzzdet_now);
	while (poll(&p, 1, WAIT_MS) == 1) {
		n = recv(p.fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
		if (n >= WIRE_HDR && buf[0] == WIRE_MAGIC && buf[1] == WIRE_HELLO)
			return get32(buf + 2);
		if (n >= 0)	/* something else first: take it */
			recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
	}
	return 0;
}

/* Run both until connected, or PUMP_ROUNDS ms. */
static void
pump(struct session *a, struct session *b)
{
	int i;

	for (i = 0; i < PUMP_ROUNDS && !(sess_connected(a) && sess_connected(b)); i++) {
		if (sess_io(a, fuzzdet_now) == -1 || sess_io(b, fuzzdet_now) == -1)
			return;
		fuzzdet_now += 1000;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t offer[4096], answer[4096], pkt[WIRE_MAX_PKT];
	struct sockaddr_in to;
	struct sess_conf ca, cb;
	struct session *a = NULL, *b = NULL, *s;
	size_t olen, alen, off = 1, len;
	uint32_t cid_a, cid_b;
	int fd;

	if (size < 1)
		return 0;
	if (stranger == -1) {
		fuzzdet_init();
		if (crypto_init() == -1 ||
		    (stranger = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
			__builtin_trap();
		fuzzdet_identity(&ida, 1);
		fuzzdet_identity(&idb, 2);
	}
	fuzzdet_reset();
	fuzzdet_conf(&ca, true, &ida, data[0] & 1 ? SECRET : NULL, trust);
	fuzzdet_conf(&cb, false, &idb, data[0] & 1 ? SECRET : NULL, trust);
	if ((a = sess_new(&ca)) == NULL || (b = sess_new(&cb)) == NULL ||
	    (olen = sess_offer(a, "bob", ID, offer, sizeof offer)) == 0 ||
	    (alen = sess_take_offer(b, "bob", ID, offer, olen, answer,
	    sizeof answer)) == 0 || sess_take_answer(a, answer, alen) == -1)
		__builtin_trap();
	/* The offer starts with the version and the caller's CID TLV. */
	if (olen < 8 || offer[1] != 1)
		__builtin_trap();
	cid_a = get32(offer + 4);
	cid_b = listener_cid(a, b);
	if (data[0] & 2)
		pump(a, b);
	else
		fuzzdet_drain(sess_fd(b));

	while (size - off >= 3) {
		uint8_t ctl = data[off];

		len = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;
		if (len > WIRE_MAX_PKT)
			len = WIRE_MAX_PKT;
		memcpy(pkt, data + off, len);
		off += len;
		s = ctl & 1 ? b : a;
		if (!(ctl & 2) && len >= WIRE_HDR && pkt[0] == WIRE_MAGIC)
			put32(pkt + 2, s == a ? cid_a : cid_b);
		fd = ctl & 4 ? sess_fd(s == a ? b : a) : stranger;
		to = addr_of(s);
		fuzzdet_now += (uint64_t)(ctl >> 3) * 1000;
		if (sendto(fd, pkt, len, 0, (struct sockaddr *)&to, sizeof to) == -1)
			continue;
		sess_io(s, fuzzdet_now);
	}
	/* What the sessions sent the stranger (a KNOCK makes the caller
	 * probe it). */
	fuzzdet_drain(stranger);
	sess_free(a);
	sess_free(b);
	return 0;
}
