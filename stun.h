/*
 * stun.h: the STUN (RFC 8489) and TURN (RFC 8656) message codec: build a
 * message into a fixed buffer, index a received one, and frame TURN
 * ChannelData.  Pure functions over bytes: no sockets, no clocks.
 */
#ifndef STUN_H
#define STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define STUN_HEADER_LEN	20
#define STUN_TXID_LEN	12
/* The largest message we build: a TURN Send indication that carries one
 * of our largest datagrams (1428 bytes: punch.c's DGRAM_MAX) to an IPv6
 * peer, 20 + 24 + 4 + 1428 bytes.  Our requests stay well within the
 * 1280 that RFC 8489 §6.1 allows where the path MTU is unknown. */
#define STUN_MSG_MAX	1476

/* Methods (RFC 8489 §18.2, RFC 8656 §17) and classes (RFC 8489 §5). */
#define STUN_BINDING		0x001
#define STUN_ALLOCATE		0x003
#define STUN_REFRESH		0x004
#define STUN_SEND		0x006
#define STUN_DATA		0x007
#define STUN_CREATE_PERMISSION	0x008
#define STUN_CHANNEL_BIND	0x009
#define STUN_REQUEST		0x0000
#define STUN_INDICATION		0x0010
#define STUN_SUCCESS		0x0100
#define STUN_ERROR		0x0110
/* The message type: the class bits C0, C1 interleaved with the method's. */
#define STUN_TYPE(method, cls) \
	(((method) & 0x000f) | ((method) & 0x0070) << 1 | \
	    ((method) & 0x0f80) << 2 | (cls))

/* Attributes (RFC 8489 §18.3, RFC 8656 §18). */
#define STUN_ATTR_MAPPED_ADDRESS	0x0001
#define STUN_ATTR_USERNAME		0x0006
#define STUN_ATTR_MESSAGE_INTEGRITY	0x0008
#define STUN_ATTR_ERROR_CODE		0x0009
#define STUN_ATTR_UNKNOWN_ATTRIBUTES	0x000a
#define STUN_ATTR_CHANNEL_NUMBER	0x000c	/* number << 16 */
#define STUN_ATTR_LIFETIME		0x000d	/* seconds */
#define STUN_ATTR_XOR_PEER_ADDRESS	0x0012
#define STUN_ATTR_DATA			0x0013
#define STUN_ATTR_REALM			0x0014
#define STUN_ATTR_NONCE			0x0015
#define STUN_ATTR_XOR_RELAYED_ADDRESS	0x0016
#define STUN_ATTR_REQUESTED_TRANSPORT	0x0019	/* protocol << 24 */
#define STUN_ATTR_DONT_FRAGMENT		0x001a	/* empty */
#define STUN_ATTR_MESSAGE_INTEGRITY_SHA256 0x001c
#define STUN_ATTR_XOR_MAPPED_ADDRESS	0x0020
#define STUN_ATTR_SOFTWARE		0x8022
#define STUN_ATTR_FINGERPRINT		0x8028
/* RFC 8656 §18.6: "17 (UDP)" in REQUESTED-TRANSPORT. */
#define STUN_TRANSPORT_UDP	(17u << 24)
/* RFC 8656 §12: channel numbers 0x4000 through 0x4FFF. */
#define STUN_CHANNEL_MIN	0x4000
#define STUN_CHANNEL_MAX	0x4fff

/* RFC 8489 §6.2.1: initial RTO 500 ms, doubled after each of at most
 * Rc = 7 transmissions; after the last the client waits Rm = 16 RTOs. */
#define STUN_RTO_US	500000
#define STUN_RC		7
#define STUN_RM		16

#define STUN_MAX_ATTRS		32	/* more attributes: the message is refused */
#define STUN_MAX_UNKNOWN	8
#define STUN_LT_KEY_LEN		16

/* stun_finish() flags. */
#define STUN_FINGERPRINT	0x1	/* append FINGERPRINT */
#define STUN_SHA256		0x2	/* MESSAGE-INTEGRITY-SHA256, not -INTEGRITY */

/* A message being built: buf[0..len) is ready to send after stun_finish. */
struct stun_msg {
	uint8_t		buf[STUN_MSG_MAX];
	size_t		len;
	uint8_t		pad;	/* padding byte (any value is legal), 0 */
	bool		err;	/* an add failed; stun_finish will fail */
};

/* A parsed message; points into the caller's buffer. */
struct stun_view {
	const uint8_t	*buf;
	size_t		 len;
	uint16_t	 method, cls;
	const uint8_t	*txid;		/* STUN_TXID_LEN bytes */
	int		 nattr;		/* first occurrences, in order */
	struct {
		uint16_t type, len;
		uint32_t off;		/* of the value, from buf */
	}		 attr[STUN_MAX_ATTRS];
	int		 nunknown;	/* comprehension-required ones not
					   understood, the first few */
	uint16_t	 unknown[STUN_MAX_UNKNOWN];
};

/* The transaction id of a message being built, to match responses. */
static inline const uint8_t *
stun_txid(const struct stun_msg *m)
{
	return m->buf + 8;
}

/* Header test for demultiplexing a datagram. */
bool stun_is_message(const uint8_t *buf, size_t len);

/* Building.  txid NULL picks a random one.  Each add returns 0, or -1
 * when the buffer is full or the value malformed (and marks msg->err). */
void stun_init(struct stun_msg *, uint16_t type, const uint8_t *txid);
int stun_add(struct stun_msg *, uint16_t attr, const void *val, size_t len);
int stun_add_u32(struct stun_msg *, uint16_t attr, uint32_t val);
int stun_add_addr(struct stun_msg *, uint16_t attr, const struct sockaddr *);
int stun_add_error(struct stun_msg *, int code, const char *reason);
int stun_add_unknown(struct stun_msg *, const uint16_t *types, int n);
/* Appends MESSAGE-INTEGRITY(-SHA256) when key is set, then FINGERPRINT
 * if asked; returns 0, or -1 if the message does not fit or an add failed. */
int stun_finish(struct stun_msg *, const uint8_t *key, size_t keylen, int flags);

/* Parsing: returns 0, or -1 if buf is not one well-formed message. */
int stun_parse(const uint8_t *buf, size_t len, struct stun_view *);
/* The first attr's value and its length, or NULL if absent. */
const uint8_t *stun_get(const struct stun_view *, uint16_t attr, size_t *len);
/* These return 0, or -1 if the attribute is absent or malformed. */
int stun_get_u32(const struct stun_view *, uint16_t attr, uint32_t *);
int stun_get_addr(const struct stun_view *, uint16_t attr,
    struct sockaddr_storage *);
int stun_get_error(const struct stun_view *, int *code, const char **reason,
    size_t *reasonlen);
/* Copies at most max types; returns how many the attribute has, or -1. */
int stun_get_unknown(const struct stun_view *, uint16_t *types, int max);
/* 0 if MESSAGE-INTEGRITY-SHA256, or else MESSAGE-INTEGRITY, is present
 * and matches key (compared in constant time); else -1. */
int stun_check_integrity(const struct stun_view *, const uint8_t *key,
    size_t keylen);
/* 0 if FINGERPRINT is present and matches; else -1. */
int stun_check_fingerprint(const struct stun_view *);

/* RFC 8489 §9.2.2: key = MD5(username ":" OpaqueString(realm) ":"
 * OpaqueString(password)).  The OpaqueString (formerly SASLprep) step is
 * left out: it is the identity for printable ASCII, so callers pass
 * ASCII or strings already prepared.  0, or -1 when libcrypto gives no
 * MD5 (a FIPS policy refuses it). */
int stun_lt_key(uint8_t key[STUN_LT_KEY_LEN], const char *user,
    const char *realm, const char *pass);

/* TURN ChannelData (RFC 8656 §12.4), padded to 4 bytes; data may
 * already sit at out + 4.  Returns the frame's length, or -1. */
ssize_t stun_channel_frame(uint8_t *out, size_t outlen, uint16_t channel,
    const void *data, size_t len);
/* Returns 0 with the channel and payload, or -1 if not ChannelData. */
int stun_channel_parse(const uint8_t *buf, size_t len, uint16_t *channel,
    const uint8_t **data, size_t *datalen);

/* Retransmission (RFC 8489 §6.2.1), times from the first transmission:
 * when transmission attempt (0 = first) has gone unanswered, the next one
 * is due at stun_retrans_deadline(attempt, rto); once attempt reaches
 * STUN_RC - 1 it is the time the transaction fails (79 RTOs, 39.5 s). */
uint64_t stun_retrans_deadline(int attempt, uint64_t rto_us);

#endif
