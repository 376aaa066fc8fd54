/*
 * fuzz_turn: libFuzzer target for what a TURN server sends (punch.c):
 * the answers to Allocate, Refresh, CreatePermission and ChannelBind
 * (401 and 438 with REALM and NONCE, other errors, successes signed
 * with the long-term key), Data indications and ChannelData, and the
 * answers to the Bindings sent to it while gathering.  A punch is set
 * up with a TURN server (and, if asked, a STUN server) at a loopback
 * socket this target owns; every datagram from that socket comes from
 * the records.
 *
 * Gathering (punch_gather) runs its own poll loop: this target is
 * linked with -Wl,--wrap=poll, and each of that loop's polls is the
 * server's turn: it reads the requests the punch sent, sends the next
 * record's datagram, and moves the clock as the record says, or, with
 * no records left, as far as the poll would have waited.  After
 * gathering, the punch starts on fixed candidates of the peer (the
 * caller's are at 0.0.0.0 and :: (a host and a relayed one), which are
 * this host: a permission for them is asked for, and nothing leaves) and the rest of the
 * records go to it as p2pcat's loop would hand them over.  This target
 * plays the session: a packet punch_input returns is taken as
 * authenticated (punch_confirm), so the path may go through the relay
 * and bind a channel; one of WIRE_HDR + 8 bytes is the PATH_RESPONSE to
 * the last PATH_CHALLENGE; once a path is chosen, a datagram is sent on
 * it after each record (a Send indication or ChannelData, on the relay).
 *
 * Transaction ids are random: a response or error is given the id of
 * a request of its method that the punch sent (the oldest unanswered
 * one, or the newest), and signed again with the long-term key of the
 * USERNAME and REALM that request carried (the password is PASS), and
 * its FINGERPRINT made again, unless told to keep the datagram as it
 * is.  Connection ids are fixed: ours is MY_CID, the peer's PEER_CID.
 *
 * Randomness and the clock are fixed (fuzzdet.h).
 *
 * Input: one setup byte, then records.
 *	setup	bit 0: we are the caller (else the listener); bit 1: the
 *		server is our STUN server too
 *	record	ctl(1) len(2, big-endian) datagram[len]; ctl bit 0: keep
 *		the datagram as it is; bit 1: from a stranger's socket,
 *		not the server's; bit 2: the newest request of its method,
 *		not the oldest unanswered; bits 3-7: e, the clock moves
 *		2^e - 1 ms first.  An empty datagram is not sent: the clock
 *		moves on to when the punch has something to do.
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
#include "punch.h"
#include "stun.h"
#include "util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int __real_poll(struct pollfd *, nfds_t, int);
int __wrap_poll(struct pollfd *, nfds_t, int);

#define USER		"fuzz"
#define PASS		"fuzzpass"
#define MY_CID		0x50325043u	/* "P2PC" */
#define PEER_CID	0x54555246u	/* "TURF" */
#define MAX_REQ		64
#define SEND_LEN	100		/* what goes on the path after a record */

/* A request the punch sent the server. */
struct req {
	uint16_t method;
	bool answered;
	uint8_t txid[STUN_TXID_LEN];
};

static int server = -1, stranger = -1, peer = -1;
static struct sockaddr_storage punch_addr;
static struct req reqs[MAX_REQ];
static int nreq;
static uint8_t key[STUN_LT_KEY_LEN];
static bool keyed;
/* The records, while punch_gather's polls take them. */
static const uint8_t *in;
static size_t in_left;
static bool gathering;

/* A socket on loopback (any: on every address, for the peer); its port. */
static int
udp_socket(int af, bool any, in_port_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int fd, off = 0;

	memset(&ss, 0, sizeof ss);
	ss.ss_family = af;
	if (af == AF_INET && !any)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (af == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	if (bind(fd, (struct sockaddr *)&ss, af == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd);
		return -1;
	}
	*port = af == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port;
	return fd;
}

/* The requests the punch sent the server: remembered (once each), and
 * the long-term key of the last one signed. */
static void
take_requests(void)
{
	uint8_t buf[STUN_MSG_MAX + 1], user[257], realm[257];
	struct stun_view v;
	const uint8_t *s;
	ssize_t n;
	size_t len;
	int i;

	while ((n = recv(server, buf, sizeof buf, MSG_DONTWAIT)) >= 0) {
		if (stun_parse(buf, n, &v) == -1 || v.cls != STUN_REQUEST)
			continue;
		for (i = 0; i < nreq && memcmp(reqs[i].txid, v.txid, STUN_TXID_LEN); i++)
			;
		if (i == nreq) {
			if (nreq == MAX_REQ)
				memmove(reqs, reqs + 1, --nreq * sizeof *reqs);
			reqs[nreq].method = v.method;
			reqs[nreq].answered = false;
			memcpy(reqs[nreq++].txid, v.txid, STUN_TXID_LEN);
		}
		if ((s = stun_get(&v, STUN_ATTR_USERNAME, &len)) == NULL || len >= sizeof user)
			continue;
		memcpy(user, s, len);
		user[len] = '\0';
		if ((s = stun_get(&v, STUN_ATTR_REALM, &len)) == NULL || len >= sizeof realm)
			continue;
		memcpy(realm, s, len);
		realm[len] = '\0';
		keyed = stun_lt_key(key, (char *)user, (char *)realm, PASS) == 0;
	}
}

/* Give a response or error the id of a request of its method, and sign
 * it again (and its FINGERPRINT) after that; its new length. */
static size_t
patch(uint8_t *pkt, size_t len, bool newest)
{
	struct stun_msg m;
	struct stun_view v;
	size_t cut = len;
	int i, r = -1, flags = 0;
	bool mi = false;

	if (stun_parse(pkt, len, &v) == -1 || (v.cls != STUN_SUCCESS && v.cls != STUN_ERROR))
		return len;
	for (i = 0; i < nreq && (r == -1 || newest); i++)
		if (reqs[i].method == v.method && (newest || !reqs[i].answered))
			r = i;
	if (r == -1)
		return len;
	reqs[r].answered = true;
	memcpy(pkt + 8, reqs[r].txid, STUN_TXID_LEN);
	/* MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT are the last ones. */
	for (i = 0; i < v.nattr; i++) {
		uint16_t t = v.attr[i].type;

		if (t == STUN_ATTR_MESSAGE_INTEGRITY || t == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
			mi = true;
		if (t == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
			flags |= STUN_SHA256;
		if (t == STUN_ATTR_FINGERPRINT)
			flags |= STUN_FINGERPRINT;
		if ((mi || (flags & STUN_FINGERPRINT)) && v.attr[i].off - 4 < cut)
			cut = v.attr[i].off - 4;
	}
	if (cut == len || (mi && !keyed))
		return len;
	memcpy(m.buf, pkt, cut);
	m.len = cut;
	m.pad = 0;
	m.err = false;
	put16(m.buf + 2, cut - STUN_HEADER_LEN);
	if (stun_finish(&m, mi ? key : NULL, sizeof key, flags) == -1)
		return len;
	memcpy(pkt, m.buf, m.len);
	return m.len;
}

/* Send the record's datagram to the punch, or, when it is empty, say so:
 * false. */
static bool
send_record(uint8_t ctl, const uint8_t *d, size_t len)
{
	uint8_t pkt[STUN_MSG_MAX + WIRE_MAX_PKT];

	if (len == 0)
		return false;
	memcpy(pkt, d, len);
	if (!(ctl & 1))
		len = patch(pkt, len, ctl & 4);
	sendto(ctl & 2 ? stranger : server, pkt, len, 0, (struct sockaddr *)&punch_addr,
	    punch_addr.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6));
	return true;
}

/* The next record: its control byte and datagram, or false at the end. */
static bool
next_record(uint8_t *ctl, const uint8_t **d, size_t *len)
{
	if (in_left < 3)
		return false;
	*ctl = in[0];
	*len = (size_t)in[1] << 8 | in[2];
	in += 3;
	in_left -= 3;
	if (*len > in_left)
		*len = in_left;
	if (*len > WIRE_MAX_PKT)
		*len = WIRE_MAX_PKT;
	*d = in;
	in += *len;
	in_left -= *len;
	fuzzdet_now += ((1ULL << (*ctl >> 3)) - 1) * 1000;
	return true;
}

/* punch_gather's polls: the server's turn (see the top), then a look
 * at what is there now, without waiting. */
int
__wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	const uint8_t *d;
	size_t len;
	uint8_t ctl;

	if (!gathering)
		return __real_poll(fds, nfds, timeout);
	take_requests();
	if ((!next_record(&ctl, &d, &len) || !send_record(ctl, d, len)) && timeout > 0)
		fuzzdet_now += (uint64_t)timeout * 1000;
	return __real_poll(fds, nfds, 0);
}

static size_t
probe(void *ctx, uint8_t *buf, size_t cap)
{
	(void)ctx;
	if (cap < WIRE_HDR + 4)
		return 0;
	buf[0] = WIRE_MAGIC;
	buf[1] = WIRE_HELLO;
	put32(buf + 2, PEER_CID);
	put32(buf + WIRE_HDR, MY_CID);
	return WIRE_HDR + 4;
}

/* Take what waits on the punch's socket, as the session would. */
static void
take(struct punch *p, uint8_t challenge[PUNCH_CHALLENGE_LEN], bool *challenged)
{
	struct sockaddr_storage from;
	uint8_t *pkt;
	ssize_t n;
	size_t len;
	int via;

	while ((n = punch_recv(p, &pkt, &from)) >= 0) {
		len = n;
		if (punch_input(p, fuzzdet_now, pkt, &len, &from, &via) != 1)
			continue;
		if (len == WIRE_HDR + PUNCH_CHALLENGE_LEN && *challenged)
			punch_response(p, fuzzdet_now, challenge);
		else
			punch_confirm(p, fuzzdet_now, &from, via, len);
	}
}

/* What the punch does after each record: its timers, its checks of a
 * new path, a datagram on the path. */
static void
step(struct punch *p, uint8_t challenge[PUNCH_CHALLENGE_LEN], bool *challenged)
{
	uint8_t buf[SEND_LEN];
	struct punch_run r = { .buf = buf, .len = sizeof buf, .seg = sizeof buf };

	punch_output(p, fuzzdet_now);
	if (punch_challenge(p, fuzzdet_now, challenge)) {
		*challenged = true;
		memset(buf, 0, sizeof buf);
		buf[0] = WIRE_MAGIC;
		buf[1] = WIRE_DATA;
		put32(buf + 2, PEER_CID);
		memcpy(buf + WIRE_HDR, challenge, PUNCH_CHALLENGE_LEN);
		if (punch_probe_room(p) >= WIRE_HDR + PUNCH_CHALLENGE_LEN)
			punch_probe(p, fuzzdet_now, buf, WIRE_HDR + PUNCH_CHALLENGE_LEN);
	}
	if (punch_ready(p)) {
		memset(buf, 0, sizeof buf);
		buf[0] = WIRE_MAGIC;
		buf[1] = WIRE_DATA;
		put32(buf + 2, PEER_CID);
		punch_sendv(p, &r, 1);
	}
	take_requests();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char turn[64], stun[32];
	static in_port_t sport, xport, pport;
	uint8_t challenge[PUNCH_CHALLENGE_LEN], ctl;
	struct punch_conf c;
	struct punch *p;
	struct cand remote[2];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	const uint8_t *d;
	bool challenged = false;
	size_t len;
	uint64_t t;

	if (size < 1)
		return 0;
	if (server == -1) {
		fuzzdet_init();
		if (crypto_init() == -1 ||
		    (server = udp_socket(AF_INET, false, &sport)) == -1 ||
		    (stranger = udp_socket(AF_INET, false, &xport)) == -1 ||
		    ((peer = udp_socket(AF_INET6, true, &pport)) == -1 &&
		    (peer = udp_socket(AF_INET, true, &pport)) == -1))
			__builtin_trap();
		snprintf(turn, sizeof turn, "turn://" USER ":" PASS "@127.0.0.1:%u",
		    ntohs(sport));
		snprintf(stun, sizeof stun, "127.0.0.1:%u", ntohs(sport));
	}
	fuzzdet_reset();
	nreq = 0;
	keyed = false;
	memset(&c, 0, sizeof c);
	c.caller = data[0] & 1;
	c.turn = turn;
	if (data[0] & 2) {
		c.nstun = 1;
		c.stun[0] = stun;
	}
	if ((p = punch_new(&c)) == NULL)
		__builtin_trap();
	if (getsockname(punch_fd(p), (struct sockaddr *)&ss, &sl) == -1)
		__builtin_trap();
	memset(&punch_addr, 0, sizeof punch_addr);
	punch_addr.ss_family = AF_INET;
	((struct sockaddr_in *)&punch_addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	((struct sockaddr_in *)&punch_addr)->sin_port = ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port;

	in = data + 1;
	in_left = size - 1;
	gathering = true;
	punch_gather(p, fuzzdet_now + 10000000);
	gathering = false;

	/* The peer's candidates: this host, on the peer socket's port. */
	memset(remote, 0, sizeof remote);
	remote[0].type = CAND_HOST;
	remote[0].addr.ss_family = AF_INET;
	((struct sockaddr_in *)&remote[0].addr)->sin_port = pport;
	remote[1].type = CAND_RELAY;
	remote[1].addr.ss_family = AF_INET6;
	((struct sockaddr_in6 *)&remote[1].addr)->sin6_port = pport;
	punch_start(p, MY_CID, PEER_CID, remote, 2, c.caller ? probe : NULL, NULL);
	step(p, challenge, &challenged);

	while (next_record(&ctl, &d, &len)) {
		if (!send_record(ctl, d, len) && (t = punch_deadline(p)) != UINT64_MAX &&
		    t > fuzzdet_now)
			fuzzdet_now = t;
		take(p, challenge, &challenged);
		step(p, challenge, &challenged);
	}
	punch_free(p);
	fuzzdet_drain(server);
	fuzzdet_drain(stranger);
	fuzzdet_drain(peer);
	return 0;
}
