/*
 * wire.h: the outer format of p2pcat's UDP packets.
 *
 *	0      1      2             6
 *	+------+------+-------------+--------------
 *	| 0xE1 | type | dst conn id | body ...
 *	+------+------+-------------+--------------
 *
 * The first byte is 0xE0 | version.  It keeps p2pcat's packets apart from
 * STUN (first byte 0-3) and TURN ChannelData (64-79) on one socket
 * (RFC 7983 §7).  The connection id is the receiver's: a session is found
 * by it, not by address, so it survives a NAT changing the peer's port.
 */
#ifndef WIRE_H
#define WIRE_H

#define WIRE_MAGIC	0xE1	/* 0xE0 | version 1 */
#define WIRE_HDR	6	/* magic, type, destination connection id */

enum wire_type {
	WIRE_HELLO = 1,		/* caller's probe: src cid, Noise message 3 */
	WIRE_KNOCK = 2,		/* listener's probe: src cid; opens its NAT */
	WIRE_DATA = 3,		/* packet number, sealed stream payload */
	WIRE_REFUSE = 4,	/* listener: the caller is refused; why, MAC */
	WIRE_CANCEL = 5,	/* caller: it gave up before message 3; why, token */
};

/* RFC 9000 §14: 1200-byte datagrams cross practically every path. */
#define WIRE_MTU	1200
#define WIRE_MAX_PKT	1500	/* largest datagram we accept */

#endif
