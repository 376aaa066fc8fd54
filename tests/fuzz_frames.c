/*
 * fuzz_frames: libFuzzer target for the frames inside data packets, after
 * decryption.  Each fuzzed payload is sealed with a fixed key as the
 * session seals one (header, packet number as nonce), opened by the
 * record layer (crypto.c) and handed to the stream (stream.c), whose
 * answers are then drained as the session would: so the fuzzer reaches
 * the frame parser and the state behind it, which it could never do
 * through the AEAD.
 *
 * What the stream sends goes out as session.c sends it, too, when told:
 * left in the stream's buffer (stream_output_tail), sealed from there
 * (crypto_sealv), then opened again and compared.  The reader may take
 * what arrived in pieces (stream_read_peek, a partial stream_read_done),
 * or stall, so that the window fills.
 *
 * Input: one setup byte, then records.
 *	setup	bit 0: our side has 40 kB queued to send (so ACK frames
 *		have packets to acknowledge); bit 1: and its FIN (so DONE
 *		can be legal); bit 2: AES-256-GCM where available, else
 *		ChaCha20-Poly1305; bit 3: output through stream_output_tail
 *		and crypto_sealv, checked; bit 4: read in pieces, in place;
 *		bit 5: read nothing
 *	record	ctl(1) [pn(8, big-endian) if ctl bit 7] len(2,
 *		big-endian) payload[len]; ctl bits 4-6 are added to the
 *		packet number (0: the same number again), unless bit 7
 *		gives it whole (the peer chooses it freely: jumps, numbers
 *		near 2^62 and beyond); ctl's low nibble times 4 ms goes to
 *		the clock
 */
#include <sys/uio.h>

#include <stdint.h>
#include <string.h>

#include "crypto.h"
#include "stream.h"
#include "util.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define HDR_LEN		(WIRE_HDR + 8)	/* as session.c: header, packet number */
#define PAYLOAD_MAX	(WIRE_MAX_PKT - HDR_LEN - CRYPTO_TAG_LEN)
#define SEND_BYTES	40000

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* Our sending side: what seals our output (mode bit 3), and what opens
 * it again to check it. */
struct out {
	uint8_t setup;
	uint64_t last_pn;
	struct crypto_tx *tx;
	struct crypto_rx *rx;
};

/* One payload from stream_output_tail, sealed from where it lies as
 * session.c's seal_pkt does, opened and compared; its length. */
static size_t
output_sealed(struct stream *st, uint64_t now, struct out *o, uint64_t *pn)
{
	uint8_t pkt[WIRE_MAX_PKT], want[WIRE_MAX_PKT], plain[WIRE_MAX_PKT];
	struct iovec tail[STREAM_TAIL_MAX], iov[1 + STREAM_TAIL_MAX];
	size_t n, at;
	int i, ntail;

	if ((n = stream_output_tail(st, now, pn, pkt + HDR_LEN, PAYLOAD_MAX, tail,
	    &ntail)) == 0)
		return 0;
	check(ntail >= 0 && ntail <= STREAM_TAIL_MAX);
	iov[0].iov_base = pkt + HDR_LEN;
	iov[0].iov_len = n;
	for (i = 0; i < ntail; i++) {
		check(tail[i].iov_len <= iov[0].iov_len);
		iov[0].iov_len -= tail[i].iov_len;
		iov[1 + i] = tail[i];
	}
	for (at = 0, i = 0; i < 1 + ntail; at += iov[i].iov_len, i++)
		memcpy(want + at, iov[i].iov_base, iov[i].iov_len);
	pkt[0] = WIRE_MAGIC;
	pkt[1] = WIRE_DATA;
	put32(pkt + 2, 0x05060708);
	put64(pkt + WIRE_HDR, *pn);
	check(crypto_sealv(o->tx, now, pkt, HDR_LEN, *pn, iov, 1 + ntail,
	    pkt + HDR_LEN) == 0);
	check(crypto_open(o->rx, now, pkt, HDR_LEN, *pn, pkt + HDR_LEN,
	    n + CRYPTO_TAG_LEN, plain) == 0);
	check(memcmp(plain, want, n) == 0);
	return n;
}

/* Take what arrived in place, in pieces: half of what lies in one
 * piece each time. */
static void
read_pieces(struct stream *st)
{
	const void *p;
	size_t n;

	while ((n = stream_read_peek(st, &p)) > 0) {
		check(p != NULL);
		stream_read_done(st, n > 1 ? n / 2 : 1);
	}
}

/* Everything the session does with the stream after a packet: send what
 * is due, read what arrived. */
static void
drain(struct stream *st, uint64_t now, struct out *o)
{
	uint8_t buf[WIRE_MAX_PKT];
	uint64_t pn;
	size_t n;
	int i;

	for (i = 0; i < 64; i++) {
		if (o->setup & 8)
			n = output_sealed(st, now, o, &pn);
		else
			n = stream_output(st, now, &pn, buf, PAYLOAD_MAX);
		if (n == 0)
			break;
		check(n <= PAYLOAD_MAX);
		check(o->last_pn == UINT64_MAX || pn > o->last_pn);
		o->last_pn = pn;
	}
	if (o->setup & 16)
		read_pieces(st);
	else if (!(o->setup & 32))
		while (stream_read(st, buf, sizeof buf) > 0)
			;
	while (stream_dgram_recv(st, buf, sizeof buf) >= 0)
		;
	stream_deadline(st);
	stream_can_close(st, now);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[CRYPTO_KEY_LEN] = "fuzz_frames: a fixed test key..";
	static const uint8_t okey[CRYPTO_KEY_LEN] = "fuzz_frames: our sending key....";
	static uint8_t src[SEND_BYTES];
	struct stream_conf conf = {
		.mtu = WIRE_MTU - HDR_LEN - CRYPTO_TAG_LEN,
		.max_mtu = 1428 - HDR_LEN - CRYPTO_TAG_LEN,
		.sndbuf = 1 << 16,
		.rcvbuf = 1 << 16,
		.keepalive_us = 15000000,
		.idle_us = 30000000,
	};
	uint8_t pkt[WIRE_MAX_PKT], plain[WIRE_MAX_PKT], pd[STREAM_PATH_DATA];
	struct stream_stats stats;
	struct crypto_tx *tx = NULL;
	struct crypto_rx *rx;
	struct stream *st;
	uint64_t now = 1000000000, pn = 0, sealed = UINT64_MAX;
	struct out o = { .last_pn = UINT64_MAX };
	size_t off = 1, len;
	int cipher = CRYPTO_CHACHAPOLY;

	if (size < 1)
		return 0;
	if (crypto_init() == -1)
		__builtin_trap();
	if ((data[0] & 4) && crypto_cipher_available(CRYPTO_AESGCM))
		cipher = CRYPTO_AESGCM;
	o.setup = data[0];
	if ((st = stream_new(&conf, now)) == NULL ||
	    (rx = crypto_rx_new(cipher, key)) == NULL ||
	    (o.tx = crypto_tx_new(cipher, okey, now)) == NULL ||
	    (o.rx = crypto_rx_new(cipher, okey)) == NULL)
		__builtin_trap();
	if (data[0] & 1)
		check(stream_write(st, src, sizeof src) == sizeof src);
	if (data[0] & 2)
		stream_close_write(st);
	drain(st, now, &o);

	while (size - off >= 3) {
		uint8_t ctl = data[off++];

		if (ctl & 0x80) {
			if (size - off < 8 + 2)
				break;
			pn = get64(data + off);
			off += 8;
		} else {
			pn += (ctl >> 4) & 7;
		}
		/* Any number but the one crypto_seal refuses (adding may
		 * wrap: then it is an old number). */
		if (pn == UINT64_MAX)
			pn--;
		len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		if (len > PAYLOAD_MAX)
			len = PAYLOAD_MAX;
		now += (uint64_t)(ctl & 15) * 4000;

		/* As session.c's seal_pkt: hdr | pn | sealed payload | tag.  A
		 * sender takes only rising numbers; the fuzzer may repeat
		 * one, and then gets a fresh sender. */
		pkt[0] = WIRE_MAGIC;
		pkt[1] = WIRE_DATA;
		put32(pkt + 2, 0x01020304);
		put64(pkt + WIRE_HDR, pn);
		if (tx != NULL && sealed != UINT64_MAX && pn <= sealed) {
			crypto_tx_free(tx);
			tx = NULL;
		}
		if (tx == NULL && (tx = crypto_tx_new(cipher, key, now)) == NULL)
			__builtin_trap();
		check(crypto_seal(tx, now, pkt, HDR_LEN, pn, data + off, len,
		    pkt + HDR_LEN) == 0);
		sealed = pn;
		off += len;

		/* As data_input: open, then the stream takes it. */
		if (crypto_open(rx, now, pkt, HDR_LEN, pn, pkt + HDR_LEN,
		    len + CRYPTO_TAG_LEN, plain) == 0) {
			check(memcmp(plain, data + off - len, len) == 0);
			stream_input(st, now, pn, plain, len);
			stream_path_frame(st, pd);
		}
		drain(st, now, &o);
	}
	stream_get_stats(st, &stats);
	check(stats.snd_buffered <= conf.sndbuf);
	check(stats.rcv_buffered <= conf.rcvbuf);
	stream_free(st);
	crypto_tx_free(tx);
	crypto_rx_free(rx);
	crypto_tx_free(o.tx);
	crypto_rx_free(o.rx);
	return 0;
}
