/*
 * tool_stunc: a STUN/TURN client over the stun.c codec, to check it
 * against a real server on loopback.
 *
 *	tool_stunc PORT USER PASSWORD
 *
 * Sends a Binding request to 127.0.0.1:PORT and prints the mapped
 * address; then, as TURN, Allocates with long-term credentials (401,
 * then again with REALM and NONCE), CreatePermission for a local peer
 * socket, relays a Send indication and a Data indication, a Send
 * indication as large as p2pcat's largest datagram, ChannelBinds
 * and relays ChannelData both ways, and ends with Refresh (lifetime 0).
 * Every response must be a success whose MESSAGE-INTEGRITY matches.
 * One line per step on stdout; exit 0 when all passed, 1 otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stun.h"
#include "util.h"

#define CHANNEL		0x4000
#define RECV_TIMEOUT_US	2000000

static int fd = -1, peer = -1;
static uint8_t key[STUN_LT_KEY_LEN];
static char realm[256], nonce[256];
static const char *user;

static const char *
addrstr(const struct sockaddr_storage *ss)
{
	static char s[INET6_ADDRSTRLEN + 8];
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const void *)ss;

	if (ss->ss_family != AF_INET)
		return "(not IPv4)";
	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(s, sizeof(s), "%s:%u", ip, ntohs(sin->sin_port));
	return s;
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

	return a->ss_family == AF_INET && b->ss_family == AF_INET &&
	    x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* Waits up to timeout_us for a datagram on s; returns its length or -1. */
static ssize_t
recv_until(int s, uint8_t *buf, size_t size, uint64_t timeout_us,
    struct sockaddr_storage *from)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	socklen_t fromlen = sizeof(*from);
	uint64_t end = now_us() + timeout_us, now;
	ssize_t n;

	while ((now = now_us()) < end) {
		if (poll(&pfd, 1, (int)((end - now + 999) / 1000)) <= 0)
			continue;
		n = recvfrom(s, buf, size, 0, (struct sockaddr *)from, &fromlen);
		if (n >= 0)
			return n;
		if (errno != EINTR && errno != EAGAIN)
			return -1;
	}
	return -1;
}

/* Sends req with the RFC 8489 retransmission schedule until a response
 * with its transaction id arrives; returns 0 with it parsed into v. */
static int
transact(const struct stun_msg *req, uint8_t *buf, size_t size,
    struct stun_view *v)
{
	struct sockaddr_storage from;
	uint64_t start = now_us();
	int attempt = 0;
	ssize_t n;

	if (send(fd, req->buf, req->len, 0) != (ssize_t)req->len)
		return -1;
	for (;;) {
		uint64_t due = start + stun_retrans_deadline(attempt, STUN_RTO_US);
		uint64_t now = now_us();

		if (now >= due) {
			if (++attempt == STUN_RC) {
				log_err("no response in %llu ms",
				    (unsigned long long)(now - start) / 1000);
				return -1;
			}
			if (send(fd, req->buf, req->len, 0) != (ssize_t)req->len)
				return -1;
			continue;
		}
		if ((n = recv_until(fd, buf, size, due - now, &from)) < 0)
			continue;
		/* RFC 8489 §7.3: a FINGERPRINT that does not match means
		 * the datagram is not STUN. */
		if (stun_parse(buf, n, v) == 0 &&
		    (stun_get(v, STUN_ATTR_FINGERPRINT, NULL) == NULL ||
		    stun_check_fingerprint(v) == 0) &&
		    memcmp(v->txid, stun_txid(req), STUN_TXID_LEN) == 0 &&
		    v->cls != STUN_REQUEST && v->cls != STUN_INDICATION)
			return 0;
	}
}

static int
copy_text(const struct stun_view *v, uint16_t attr, char *out, size_t size)
{
	const uint8_t *p;
	size_t len;

	if ((p = stun_get(v, attr, &len)) == NULL || len >= size)
		return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static void
add_auth(struct stun_msg *m)
{
	stun_add(m, STUN_ATTR_USERNAME, user, strlen(user));
	stun_add(m, STUN_ATTR_REALM, realm, strlen(realm));
	stun_add(m, STUN_ATTR_NONCE, nonce, strlen(nonce));
}

/* An authenticated TURN request: attrs adds the method's attributes.
 * Retries once on 438 (Stale Nonce).  Returns 0 on an authenticated
 * success response in v. */
static int
request(const char *what, uint16_t method,
    void (*attrs)(struct stun_msg *, const void *), const void *arg,
    uint8_t *buf, size_t size, struct stun_view *v)
{
	struct stun_msg m;
	const char *reason;
	size_t rlen;
	int code, tries;

	for (tries = 0; tries < 2; tries++) {
		stun_init(&m, STUN_TYPE(method, STUN_REQUEST), NULL);
		attrs(&m, arg);
		add_auth(&m);
		if (stun_finish(&m, key, sizeof(key), STUN_FINGERPRINT) != 0 ||
		    transact(&m, buf, size, v) != 0)
			return -1;
		if (v->method != method) {
			log_err("%s: response of method %#x", what, v->method);
			return -1;
		}
		/* Error responses to a failed authentication are unsigned
		 * (RFC 8489 §9.2.4); successes must be signed. */
		if (v->cls == STUN_SUCCESS) {
			if (stun_check_integrity(v, key, sizeof(key)) == 0)
				return 0;
			log_err("%s: success without valid MESSAGE-INTEGRITY",
			    what);
			return -1;
		}
		if (stun_get_error(v, &code, &reason, &rlen) != 0) {
			log_err("%s: error response without ERROR-CODE", what);
			return -1;
		}
		if (code != 438 || copy_text(v, STUN_ATTR_NONCE, nonce,
		    sizeof(nonce)) != 0) {
			log_err("%s: error %d %.*s", what, code, (int)rlen, reason);
			return -1;
		}
	}
	log_err("%s: nonce stale twice", what);
	return -1;
}

static void
allocate_attrs(struct stun_msg *m, const void *arg)
{
	(void)arg;
	stun_add_u32(m, STUN_ATTR_REQUESTED_TRANSPORT, STUN_TRANSPORT_UDP);
	stun_add(m, STUN_ATTR_DONT_FRAGMENT, NULL, 0);
}

static void
peer_attrs(struct stun_msg *m, const void *arg)
{
	stun_add_addr(m, STUN_ATTR_XOR_PEER_ADDRESS, arg);
}

static void
bind_attrs(struct stun_msg *m, const void *arg)
{
	stun_add_u32(m, STUN_ATTR_CHANNEL_NUMBER, (uint32_t)CHANNEL << 16);
	stun_add_addr(m, STUN_ATTR_XOR_PEER_ADDRESS, arg);
}

static void
refresh_attrs(struct stun_msg *m, const void *arg)
{
	(void)arg;
	stun_add_u32(m, STUN_ATTR_LIFETIME, 0);
}

static int
udp_socket(struct sockaddr_storage *local)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(*local);
	int s;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(s, (struct sockaddr *)local, &len) == -1) {
		log_errno("UDP socket");
		exit(1);
	}
	return s;
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage local, peer_addr, mapped, relayed, from;
	struct sockaddr_in server = { .sin_family = AF_INET };
	uint8_t buf[2048], big[1428];
	struct stun_view v;
	struct stun_msg m;
	const uint8_t *data;
	uint32_t lifetime;
	uint16_t ch;
	size_t len, i;
	ssize_t n;
	char *end;
	long port;

	if (argc != 4 || (port = strtol(argv[1], &end, 10)) < 1 ||
	    port > 65535 || *end != '\0') {
		fprintf(stderr, "usage: tool_stunc PORT USER PASSWORD\n");
		return 1;
	}
	user = argv[2];
	server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	server.sin_port = htons(port);
	fd = udp_socket(&local);
	peer = udp_socket(&peer_addr);
	if (connect(fd, (struct sockaddr *)&server, sizeof(server)) == -1) {
		log_errno("connect");
		return 1;
	}

	/* Binding: the mapped address on loopback is our own. */
	stun_init(&m, STUN_TYPE(STUN_BINDING, STUN_REQUEST), NULL);
	stun_add(&m, STUN_ATTR_SOFTWARE, "p2pcat tool_stunc", 17);
	if (stun_finish(&m, NULL, 0, STUN_FINGERPRINT) != 0 ||
	    transact(&m, buf, sizeof(buf), &v) != 0)
		return 1;
	if (v.method != STUN_BINDING || v.cls != STUN_SUCCESS ||
	    stun_get_addr(&v, STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) != 0 ||
	    !same_addr(&mapped, &local)) {
		log_err("Binding: no success with our address %s", addrstr(&local));
		return 1;
	}
	printf("binding mapped %s%s\n", addrstr(&mapped),
	    stun_get(&v, STUN_ATTR_FINGERPRINT, NULL) ? " fingerprint" : "");

	/* Allocate without credentials: 401 with the realm and a nonce. */
	stun_init(&m, STUN_TYPE(STUN_ALLOCATE, STUN_REQUEST), NULL);
	allocate_attrs(&m, NULL);
	if (stun_finish(&m, NULL, 0, STUN_FINGERPRINT) != 0 ||
	    transact(&m, buf, sizeof(buf), &v) != 0)
		return 1;
	{
		const char *reason;
		size_t rlen;
		int code;

		if (v.cls != STUN_ERROR ||
		    stun_get_error(&v, &code, &reason, &rlen) != 0 || code != 401 ||
		    copy_text(&v, STUN_ATTR_REALM, realm, sizeof(realm)) != 0 ||
		    copy_text(&v, STUN_ATTR_NONCE, nonce, sizeof(nonce)) != 0) {
			log_err("Allocate: no 401 with REALM and NONCE");
			return 1;
		}
		printf("allocate 401 realm %s\n", realm);
	}
	if (stun_lt_key(key, user, realm, argv[3]) == -1) {
		log_err("no MD5 for the long-term key");
		return 1;
	}

	if (request("Allocate", STUN_ALLOCATE, allocate_attrs, NULL, buf,
	    sizeof(buf), &v) != 0)
		return 1;
	if (stun_get_addr(&v, STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed) != 0 ||
	    stun_get_addr(&v, STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped) != 0 ||
	    !same_addr(&mapped, &local) ||
	    stun_get_u32(&v, STUN_ATTR_LIFETIME, &lifetime) != 0) {
		log_err("Allocate: success without relayed/mapped address, lifetime");
		return 1;
	}
	printf("allocate relayed %s lifetime %u\n", addrstr(&relayed), lifetime);

	if (request("CreatePermission", STUN_CREATE_PERMISSION, peer_attrs,
	    &peer_addr, buf, sizeof(buf), &v) != 0)
		return 1;
	printf("permission %s\n", addrstr(&peer_addr));

	/* Send indication out through the relay, Data indication back. */
	stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
	stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS, (struct sockaddr *)&peer_addr);
	stun_add(&m, STUN_ATTR_DATA, "send-indication", 15);
	if (stun_finish(&m, NULL, 0, STUN_FINGERPRINT) != 0 ||
	    send(fd, m.buf, m.len, 0) != (ssize_t)m.len)
		return 1;
	if ((n = recv_until(peer, buf, sizeof(buf), RECV_TIMEOUT_US, &from)) != 15 ||
	    memcmp(buf, "send-indication", 15) != 0 || !same_addr(&from, &relayed)) {
		log_err("Send: the peer did not get the data from the relay");
		return 1;
	}
	if (sendto(peer, "data-indication", 15, 0, (struct sockaddr *)&relayed,
	    sizeof(struct sockaddr_in)) != 15 ||
	    (n = recv_until(fd, buf, sizeof(buf), RECV_TIMEOUT_US, &from)) < 0 ||
	    stun_parse(buf, n, &v) != 0 || v.method != STUN_DATA ||
	    v.cls != STUN_INDICATION ||
	    stun_get_addr(&v, STUN_ATTR_XOR_PEER_ADDRESS, &from) != 0 ||
	    !same_addr(&from, &peer_addr) ||
	    (data = stun_get(&v, STUN_ATTR_DATA, &len)) == NULL || len != 15 ||
	    memcmp(data, "data-indication", 15) != 0) {
		log_err("Data: no Data indication with the peer's data");
		return 1;
	}
	printf("send and data indications relayed\n");

	/* The largest datagram p2pcat sends (punch.c's DGRAM_MAX) fits a Send
	 * indication, and the peer gets all of it. */
	for (i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + 1);
	stun_init(&m, STUN_TYPE(STUN_SEND, STUN_INDICATION), NULL);
	stun_add_addr(&m, STUN_ATTR_XOR_PEER_ADDRESS, (struct sockaddr *)&peer_addr);
	stun_add(&m, STUN_ATTR_DATA, big, sizeof big);
	if (stun_finish(&m, NULL, 0, 0) != 0 || send(fd, m.buf, m.len, 0) != (ssize_t)m.len) {
		log_err("Send: a %zu-byte datagram does not fit a Send indication", sizeof big);
		return 1;
	}
	if ((n = recv_until(peer, buf, sizeof(buf), RECV_TIMEOUT_US, &from)) != (ssize_t)sizeof big ||
	    memcmp(buf, big, sizeof big) != 0 || !same_addr(&from, &relayed)) {
		log_err("Send: the peer did not get the %zu-byte datagram", sizeof big);
		return 1;
	}
	printf("send indication of %zu bytes relayed\n", sizeof big);

	if (request("ChannelBind", STUN_CHANNEL_BIND, bind_attrs, &peer_addr,
	    buf, sizeof(buf), &v) != 0)
		return 1;
	printf("channel %#x bound\n", CHANNEL);

	/* ChannelData both ways; the odd length exercises padding. */
	if ((n = stun_channel_frame(buf, sizeof(buf), CHANNEL, "channel-out", 11)) < 0 ||
	    send(fd, buf, n, 0) != n ||
	    (n = recv_until(peer, buf, sizeof(buf), RECV_TIMEOUT_US, &from)) != 11 ||
	    memcmp(buf, "channel-out", 11) != 0 || !same_addr(&from, &relayed)) {
		log_err("ChannelData: the peer did not get the data");
		return 1;
	}
	if (sendto(peer, "channel-in", 10, 0, (struct sockaddr *)&relayed,
	    sizeof(struct sockaddr_in)) != 10 ||
	    (n = recv_until(fd, buf, sizeof(buf), RECV_TIMEOUT_US, &from)) < 0 ||
	    stun_channel_parse(buf, n, &ch, &data, &len) != 0 ||
	    ch != CHANNEL || len != 10 || memcmp(data, "channel-in", 10) != 0) {
		log_err("ChannelData: no ChannelData with the peer's data");
		return 1;
	}
	printf("channel data relayed\n");

	if (request("Refresh", STUN_REFRESH, refresh_attrs, NULL, buf,
	    sizeof(buf), &v) != 0)
		return 1;
	printf("refresh lifetime 0: deallocated\n");
	close(fd);
	close(peer);
	return 0;
}
