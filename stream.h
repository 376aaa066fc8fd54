/*
 * stream.h: a reliable, ordered, flow-controlled byte stream in each
 * direction over an unreliable datagram path.
 *
 * The design follows QUIC (RFC 9000 frames and varints, RFC 9002 loss
 * detection): every payload has a packet number, ACK frames carry ranges
 * of packet numbers, lost data is sent again in new packets.  The stream
 * knows nothing of sockets, addresses or encryption: the session hands it
 * the payloads it receives and asks it for payloads to send.  Times are
 * microseconds from CLOCK_MONOTONIC.
 */
#ifndef STREAM_H
#define STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>
#include <sys/uio.h>

struct stream;

struct stream_conf {
	size_t mtu;		/* largest payload that surely gets through */
	size_t max_mtu;		/* probe up to this (RFC 8899); 0: no probing */
	uint64_t initial_rtt_us;	/* measured by the handshake; 0: unknown */
	size_t sndbuf;		/* our bytes kept until acknowledged */
	size_t rcvbuf;		/* bytes the peer may send ahead of our reader;
				 * at least 64 KiB, the window a peer assumes
				 * before our first MAX_DATA arrives */
	uint64_t keepalive_us;	/* PING after this long without sending; 0: never */
	uint64_t idle_us;	/* fail after this long without receiving; 0: never */
};

enum stream_err {
	STREAM_OK = 0,
	STREAM_IDLE,		/* nothing heard from the peer for idle_us */
	STREAM_ABORTED,		/* the peer sent CLOSE */
	STREAM_PROTO,		/* the peer broke the protocol */
};

struct stream_stats {
	uint64_t pkts_sent, pkts_recv, pkts_lost, bytes_sent, bytes_retrans;
	uint64_t srtt_us, rttvar_us, min_rtt_us, cwnd;
	uint64_t pkts_bad;		/* payloads stream_input refused */
	uint64_t snd_buffered;		/* bytes held for sending, <= sndbuf */
	uint64_t rcv_buffered;		/* span held for the reader, <= rcvbuf */
	uint64_t dgrams_sent, dgrams_recv;	/* datagrams (-u) */
	uint64_t dgrams_dropped;	/* received with the reader's queue full */
	uint64_t mtu;			/* payload bytes per packet now (RFC 8899) */
	uint64_t bw;			/* congestion control's estimate of the
					 * bottleneck rate, bytes per second */
	uint64_t pacing_rate;		/* bytes per second */
	uint64_t pkts_spurious;		/* declared lost, acknowledged later */
	uint64_t reorder_dist;		/* the furthest a packet was acknowledged
					 * behind a later one, in packet numbers */
	uint64_t reorder_pkts;		/* loss thresholds now (RFC 9002 §6.1): */
	uint64_t reorder_time8;		/* packets (0: time only) and eighths
					 * of an RTT */
};

/* A new stream, or NULL (errno ENOMEM, or EINVAL when mtu is outside
 * 64..65535 or sndbuf is 0).  All its memory is allocated here, sized by
 * conf; nothing grows later.  Freed by stream_free. */
struct stream *stream_new(const struct stream_conf *conf, uint64_t now);
void stream_free(struct stream *s);

/* Application side.  stream_write copies and returns how many bytes it
 * took (0 when the send buffer is full); stream_read returns in-order bytes
 * ready for the reader. */
size_t stream_write(struct stream *s, const void *buf, size_t len);
/* stream_write without the copy, for a reader that reads into place:
 * stream_write_room tells where the next bytes go (*p) and how many fit
 * there in one piece (0 when the buffer is full or the stream is not
 * writable); stream_wrote then takes the first n of them. */
size_t stream_write_room(struct stream *s, void **p);
void stream_wrote(struct stream *s, size_t n);
void stream_close_write(struct stream *s);
size_t stream_read(struct stream *s, void *buf, size_t cap);
/* stream_read without the copy, for a writer that writes from place:
 * stream_read_peek tells where the next in-order bytes are (*p) and how
 * many lie there in one piece (0: none yet); they stay put until
 * stream_read_done takes the first n of them. */
size_t stream_read_peek(struct stream *s, const void **p);
void stream_read_done(struct stream *s, size_t n);
bool stream_eof(const struct stream *s);		/* peer's FIN and all bytes read */
bool stream_send_done(const struct stream *s);	/* everything and our FIN acked */
void stream_abort(struct stream *s, uint32_t code);	/* send CLOSE, stop */
/* The same, with a reason for the peer to print (truncated to
 * STREAM_REASON_MAX bytes, and to what fits in a packet). */
#define STREAM_REASON_MAX	120
void stream_abort_why(struct stream *s, uint32_t code, const char *why);
/* Delivery: once stream_eof, the application calls stream_written when
 * it has written all the peer's bytes out and its output ended without
 * error; the peer learns it (WRITTEN), and neither side can finish
 * (stream_can_close) before both have said it.  stream_peer_written:
 * the peer said it of our bytes. */
void stream_written(struct stream *s);
bool stream_peer_written(const struct stream *s);
/* Datagrams (RFC 9221): unreliable, unordered messages on the same
 * packets, congestion controlled but never sent again.
 * stream_dgram_send queues one: 1 queued, 0 the queue is full (try after
 * output), -1 (EMSGSIZE) larger than stream_dgram_max, -1 (EPIPE) after
 * stream_close_write (the FIN goes after the datagrams queued before
 * it).  stream_dgram_recv takes the next received one (truncated to
 * cap): its length, or -1 when none is waiting. */
int stream_dgram_send(struct stream *s, const void *buf, size_t len);
size_t stream_dgram_max(const struct stream *s);
ssize_t stream_dgram_recv(struct stream *s, void *buf, size_t cap);

/* Send an ack-eliciting packet at the next stream_output, even with no
 * data: the session uses it to answer a handshake. */
void stream_ping(struct stream *s);
/* Path validation (RFC 9000 §8.2), for the session, which knows the
 * paths.  stream_path_packet builds a payload holding only a
 * PATH_CHALLENGE or PATH_RESPONSE (type) with data, then PADDING up to
 * size bytes (RFC 9000 §8.2.1 has such datagrams expanded; a smaller
 * size: none), and its packet number: its length, or 0 (cap too small,
 * or the stream has failed).
 * Such packets elicit no ACK (RFC 9002 §2 would count them as
 * ack-eliciting): the peer acknowledges them only along with others.
 * They are not tracked for loss, not congestion controlled and never
 * sent again: the session sends each on the path it tests.
 * stream_path_frame tells what the payload of the last stream_input call
 * held, the data in data. */
#define STREAM_PATH_DATA	8
enum stream_path { STREAM_PATH_NONE, STREAM_PATH_CHALLENGE, STREAM_PATH_RESPONSE };
size_t stream_path_packet(struct stream *s, int type, const uint8_t data[STREAM_PATH_DATA],
    size_t size, uint64_t *pn, uint8_t *buf, size_t cap);
int stream_path_frame(const struct stream *s, uint8_t data[STREAM_PATH_DATA]);
/* The session moved from one network path to another (RFC 9000 §9.4:
 * the peer's address, not just its port, or a relay instead of the
 * direct way), each named by a number (punch_path_id): congestion
 * control, the RTT estimate (RFC 9002 §6.2.2's initial RTT, without the
 * handshake's), the loss thresholds and the path MTU (conf.mtu, searched
 * again) start over as on a new stream, unless to is the path left last,
 * lately (STREAM_PATH_KEEP_US): then they are what they were when it was
 * left, and from's are kept in turn.  Packets already sent are still
 * acknowledged or declared lost, and what they carried is sent again
 * when lost, but they count for neither the congestion controller nor
 * the RTT. */
void stream_path_move(struct stream *s, uint64_t now, unsigned from, unsigned to);
/* How long a path's state is kept after it was left: BBR's
 * MinRTTFilterLen (draft-ietf-ccwg-bbr, 10 s), beyond which the
 * controller itself would no longer trust what it measured.  Within it,
 * RFC 9000 §9.4's "reasonably sure that the previous send rate is valid"
 * holds for the same addresses: an attacker that forwards the peer's
 * packets (§9.3.3) and moves the path away and back at will costs at
 * most one fresh start per 10 s it holds the path elsewhere. */
#define STREAM_PATH_KEEP_US	10000000
int stream_error(const struct stream *s);		/* enum stream_err */
uint32_t stream_close_code(const struct stream *s);	/* the peer's CLOSE code */
/* The peer's CLOSE reason, printable ASCII, "" when it gave none. */
const char *stream_close_why(const struct stream *s);
void stream_get_stats(const struct stream *s, struct stream_stats *st);

/* Network side.  stream_input takes one received payload with its packet
 * number: 0, or -1 when it is malformed (it is then ignored as a whole and
 * changes nothing; the stream carries on, since only the session knows
 * whether the payload was authentic).  Duplicates are ignored.
 * stream_output fills buf (cap should be at least mtu) with the next
 * payload to send and its packet number, and returns its length, or 0
 * when nothing is due now: call it until it returns 0.  Packet numbers go
 * 0, 1, 2... and never repeat, so they can serve as AEAD nonces.
 * stream_deadline is when stream_output must be called again at the
 * latest (0: now; UINT64_MAX: only after input or a write); pacing makes
 * it sub-millisecond at high rates, so a poll(2) timeout should round it
 * up, not down. */
int stream_input(struct stream *s, uint64_t now, uint64_t pn,
    const uint8_t *p, size_t len);
size_t stream_output(struct stream *s, uint64_t now, uint64_t *pn,
    uint8_t *buf, size_t cap);
uint64_t stream_deadline(const struct stream *s);
/* stream_output that leaves the stream's bytes where the send buffer
 * holds them, for the session to seal them from there: the payload is
 * buf's first (returned length - the tail's) bytes, then the *ntail
 * pieces of tail (none when it carries no stream bytes).  They stay put
 * until the next stream_input, stream_write or stream_wrote. */
#define STREAM_TAIL_MAX	2
size_t stream_output_tail(struct stream *s, uint64_t now, uint64_t *pn, uint8_t *buf,
    size_t cap, struct iovec tail[STREAM_TAIL_MAX], int *ntail);

/*
 * Whether the session may stop calling stream_input/stream_output and
 * exit.  True at once after an error, and after stream_abort once its
 * CLOSE copies are out.  After a clean end (stream_send_done,
 * stream_eof, and WRITTEN said both ways) the side that finishes first
 * sends DONE ("I have all of yours and you have all of mine") until it
 * is acknowledged; the other side takes DONE as the acknowledgement of
 * everything it sent and may leave as soon as it has acknowledged it.
 * The first side may leave once
 * DONE is acknowledged, or after lingering three PTOs (RFC 9000 §10.2)
 * since the last packet in or DONE out: the peer cannot finish without
 * our acknowledgements, so leaving earlier could make it time out.  So:
 * keep calling stream_input/stream_output until this is true, then exit
 * at once; stream_deadline includes the moment it becomes true.
 */
bool stream_can_close(const struct stream *s, uint64_t now);

#endif
