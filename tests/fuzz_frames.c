/*
 * fuzz_frames: libFuzzer target for the frames inside data packets, after
 * decryption.  Each fuzzed payload is sealed with a fixed key as the
 * session seals one (header, packet number as nonce), opened by the
 * record layer (crypto.c) and handed to the stream (stream.c), whose
 * answers are then drained as the session would: so the fuzzer reaches
 * the frame parser and the state behind it, which it could never do
 * through the AEAD.
 *
 * Input: one setup byte, then records.
 *	setup	bit 0: our side has 40 kB queued to send (so ACK frames
 *		have packets to acknowledge); bit 1: and its FIN (so DONE
 *		can be legal); bit 2: AES-256-GCM where available, else
 *		ChaCha20-Poly1305
 *	record	ctl(1) [pn(8, big-endian) if ctl bit 7] len(2,
 *		big-endian) payload[len]; ctl bits 4-6 are added to the
 *		packet number (0: the same number again), unless bit 7
 *		gives it whole (the peer chooses it freely: jumps, numbers
 *		near 2^62 and beyond); ctl's low nibble times 4 ms goes to
 *		the clock
 */
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

/* Everything the session does with the stream after a packet: send what
 * is due, read what arrived. */
static void
drain(struct stream *st, uint64_t now, uint64_t *last_pn)
{
	uint8_t buf[WIRE_MAX_PKT];
	uint64_t pn;
	size_t n;
	int i;

	for (i = 0; i < 64; i++) {
		if ((n = stream_output(st, now, &pn, buf, PAYLOAD_MAX)) == 0)
			break;
		check(n <= PAYLOAD_MAX);
		check(*last_pn == UINT64_MAX || pn > *last_pn);
		*last_pn = pn;
	}
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
	uint64_t now = 1000000000, pn = 0, sealed = UINT64_MAX, last_pn = UINT64_MAX;
	size_t off = 1, len;
	int cipher = CRYPTO_CHACHAPOLY;

	if (size < 1)
		return 0;
	if (crypto_init() == -1)
		__builtin_trap();
	if ((data[0] & 4) && crypto_cipher_available(CRYPTO_AESGCM))
		cipher = CRYPTO_AESGCM;
	if ((st = stream_new(&conf, now)) == NULL ||
	    (rx = crypto_rx_new(cipher, key)) == NULL)
		__builtin_trap();
	if (data[0] & 1)
		check(stream_write(st, src, sizeof src) == sizeof src);
	if (data[0] & 2)
		stream_close_write(st);
	drain(st, now, &last_pn);

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
		drain(st, now, &last_pn);
	}
	stream_get_stats(st, &stats);
	check(stats.snd_buffered <= conf.sndbuf);
	check(stats.rcv_buffered <= conf.rcvbuf);
	stream_free(st);
	crypto_tx_free(tx);
	crypto_rx_free(rx);
	return 0;
}
