/*
 * tests/unit_crypto.c: crypto.c against the published Noise test vectors
 * in tests/noise_vectors.txt and the CPace draft's ristretto255 vectors,
 * then the record layer with each cipher (tampering, replay, reordering,
 * rekeying, and that it is Noise's ENCRYPT and REKEY) and the
 * identity key file and text forms.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "crypto.h"

/* Noise vectors. */

#define VEC_MAX_MSGS	16
#define VEC_MAX_BYTES	1024

struct bytes {
	uint8_t b[VEC_MAX_BYTES];
	size_t len;
	int set;
};

struct vector {
	char name[64];
	struct bytes iprologue, istatic, ieph, iremote;
	struct bytes rprologue, rstatic, reph;
	struct bytes payload[VEC_MAX_MSGS], ct[VEC_MAX_MSGS];
	size_t nmsg;
};

static int
unhex(const char *s, struct bytes *out)
{
	size_t n = strlen(s), i;
	unsigned v;

	if (n % 2 || n / 2 > sizeof out->b)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out->b[i] = (uint8_t)v;
	}
	out->len = n / 2;
	out->set = 1;
	return 0;
}

/* Run one vector with both sides in this process: every handshake
 * message and every transport message must match byte for byte. */
static void
run_vector(const struct vector *v)
{
	struct crypto_hs *ini, *res, *snd, *rcv;
	uint8_t buf[VEC_MAX_BYTES + 128], pl[VEC_MAX_BYTES + 128], pub[32], rs[32];
	uint8_t is[32], ir[32], rsend[32], rrecv[32], hi[64], hr[64];
	size_t n, m, hil, hrl, i;
	uint64_t ni = 0, nr = 0, *ctr;
	int bad = failures;
	int c = strstr(v->name, "_AESGCM_") ? CRYPTO_AESGCM : CRYPTO_CHACHAPOLY;

	ini = crypto_hs_new(v->name, true, v->iprologue.b, v->iprologue.len,
	    v->istatic.set ? v->istatic.b : NULL, v->iremote.set ? v->iremote.b : NULL);
	res = crypto_hs_new(v->name, false, v->rprologue.b, v->rprologue.len,
	    v->rstatic.set ? v->rstatic.b : NULL, NULL);
	CHECK(ini && res);
	if (!ini || !res)
		goto out;
	CHECK(crypto_test_set_ephemeral(ini, v->ieph.b) == 0);
	CHECK(crypto_test_set_ephemeral(res, v->reph.b) == 0);

	for (i = 0; i < v->nmsg && !crypto_hs_done(ini); i++) {
		snd = i % 2 ? res : ini;
		rcv = i % 2 ? ini : res;
		CHECK(crypto_hs_our_turn(snd) && !crypto_hs_our_turn(rcv));
		CHECK(crypto_hs_write(snd, v->payload[i].b, v->payload[i].len, buf,
		    sizeof buf, &n) == 0);
		CHECK(n == v->ct[i].len && memcmp(buf, v->ct[i].b, n) == 0);
		CHECK(crypto_hs_read(rcv, buf, n, pl, sizeof pl, &m) == 0);
		CHECK(m == v->payload[i].len && memcmp(pl, v->payload[i].b, m) == 0);
	}
	CHECK(crypto_hs_done(ini) && crypto_hs_done(res));
	if (v->istatic.set) {
		crypto_scalarmult_base(pub, v->istatic.b);
		CHECK(crypto_hs_remote_static(res, rs) == 0 && crypto_key_equal(rs, pub));
	}
	if (v->rstatic.set) {
		crypto_scalarmult_base(pub, v->rstatic.b);
		CHECK(crypto_hs_remote_static(ini, rs) == 0 && crypto_key_equal(rs, pub));
	}
	CHECK(crypto_hs_split(ini, hi, &hil, is, ir) == 0);
	CHECK(crypto_hs_split(res, hr, &hrl, rsend, rrecv) == 0);
	CHECK(hil == hrl && memcmp(hi, hr, hil) == 0);
	CHECK(memcmp(is, rrecv, 32) == 0 && memcmp(ir, rsend, 32) == 0);

	/* Transport messages: ENCRYPT(k, n, empty ad) with Split()'s keys,
	 * through the functions the record layer uses. */
	for (; i < v->nmsg; i++) {
		const uint8_t *ks = i % 2 ? rsend : is, *kr = i % 2 ? ir : rrecv;

		ctr = i % 2 ? &nr : &ni;
		crypto_encrypt(c, ks, *ctr, NULL, 0, v->payload[i].b, v->payload[i].len, buf);
		n = v->payload[i].len + 16;
		CHECK(n == v->ct[i].len && memcmp(buf, v->ct[i].b, n) == 0);
		CHECK(crypto_decrypt(c, kr, *ctr, NULL, 0, v->ct[i].b, v->ct[i].len, pl) == 0);
		CHECK(memcmp(pl, v->payload[i].b, v->payload[i].len) == 0);
		(*ctr)++;
	}
out:
	crypto_hs_free(ini);
	crypto_hs_free(res);
	printf("%s %s (%zu messages)\n", failures == bad ? "pass" : "FAIL", v->name,
	    v->nmsg);
}

static FILE *
open_vectors(const char *argv0)
{
	const char *srcdir = getenv("SRCDIR");
	char path[4096];
	const char *slash;
	FILE *f;

	if (srcdir) {
		snprintf(path, sizeof path, "%s/tests/noise_vectors.txt", srcdir);
	} else {
		slash = strrchr(argv0, '/');
		snprintf(path, sizeof path, "%.*s/noise_vectors.txt",
		    slash ? (int)(slash - argv0) : 1, slash ? argv0 : ".");
	}
	if (!(f = fopen(path, "r")))
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
	return f;
}

/* Returns how many vectors ran. */
static int
test_vectors(const char *argv0)
{
	static struct vector v;
	char line[8192], key[64], val[4096], val2[4096];
	struct bytes *b;
	FILE *f;
	int count = 0, lineno = 0;

	if (!(f = open_vectors(argv0))) {
		failures++;
		return 0;
	}
	while (fgets(line, sizeof line, f)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%63s", key) != 1)
			continue;
		if (strcmp(key, "name") == 0) {
			memset(&v, 0, sizeof v);
			if (sscanf(line, "name %63s", v.name) != 1)
				goto bad;
			continue;
		}
		if (strcmp(key, "end") == 0) {
			if (strstr(v.name, "_AESGCM_") && !crypto_cipher_available(CRYPTO_AESGCM)) {
				printf("skip %s: this CPU has no AES instructions\n", v.name);
				continue;
			}
			run_vector(&v);
			count++;
			continue;
		}
		if (strcmp(key, "msg") == 0) {
			if (v.nmsg == VEC_MAX_MSGS ||
			    sscanf(line, "msg %4095s %4095s", val, val2) != 2 ||
			    unhex(val, &v.payload[v.nmsg]) < 0 || unhex(val2, &v.ct[v.nmsg]) < 0)
				goto bad;
			v.nmsg++;
			continue;
		}
		if (sscanf(line, "%63s %4095s", key, val) != 2)
			goto bad;
		b = strcmp(key, "init_prologue") == 0 ? &v.iprologue :
		    strcmp(key, "init_static") == 0 ? &v.istatic :
		    strcmp(key, "init_ephemeral") == 0 ? &v.ieph :
		    strcmp(key, "init_remote_static") == 0 ? &v.iremote :
		    strcmp(key, "resp_prologue") == 0 ? &v.rprologue :
		    strcmp(key, "resp_static") == 0 ? &v.rstatic :
		    strcmp(key, "resp_ephemeral") == 0 ? &v.reph : NULL;
		if (!b || unhex(val, b) < 0)
			goto bad;
	}
	fclose(f);
	return count;
bad:
	fprintf(stderr, "noise_vectors.txt:%d: cannot parse\n", lineno);
	failures++;
	fclose(f);
	return count;
}

/* A handshake between two fresh parties, with tampering. */
static void
test_handshake(void)
{
	uint8_t si[32], sr[32], pi[32], pr[32], got[32], m1[256], m2[256], m3[256], pl[256];
	uint8_t h1[64], h2[64], a1[32], a2[32], b1[32], b2[32];
	struct crypto_hs *ini, *res;
	size_t l1, l2, l3, n, hl1, hl2, j;
	const char pro[] = "p2pcat test prologue";

	randombytes_buf(si, 32);
	randombytes_buf(sr, 32);
	crypto_scalarmult_base(pi, si);
	crypto_scalarmult_base(pr, sr);

	/* Wrong key arguments for the pattern. */
	CHECK(!crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, NULL, NULL));
	CHECK(!crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, si, pr));
	CHECK(!crypto_hs_new("Noise_IK_25519_ChaChaPoly_BLAKE2b", true, pro, sizeof pro, si, NULL));
	CHECK(!crypto_hs_new("Noise_XX_25519_ChaChaPoly_BLAKE2s", true, pro, sizeof pro, si, NULL));
	CHECK(!crypto_hs_new("Noise_XX_25519_ChaChaPoly_BLAKE2b ", true, pro, sizeof pro, si, NULL));

	ini = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, si, NULL);
	res = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
	CHECK(ini && res);
	if (!ini || !res)
		goto out;
	CHECK(crypto_hs_read(res, m1, 0, pl, sizeof pl, &n) < 0);
	crypto_hs_free(res);
	res = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
	CHECK(crypto_hs_write(ini, "hi", 2, m1, sizeof m1, &l1) == 0 && l1 == 34);
	CHECK(crypto_hs_remote_static(ini, got) < 0);
	CHECK(crypto_hs_read(res, m1, l1, pl, sizeof pl, &n) == 0 && n == 2);
	CHECK(crypto_hs_write(res, "", 0, m2, sizeof m2, &l2) == 0 && l2 == 32 + 48 + 16);
	CHECK(crypto_hs_write(res, "", 0, m2, sizeof m2, &l2) < 0);	/* out of turn: dead */
	crypto_hs_free(res);

	/* Every single-bit change of message 2 is refused. */
	for (j = 0; j < l2; j++) {
		struct crypto_hs *i2, *r2;
		uint8_t e[32], bad[256];
		size_t bl;

		i2 = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, si, NULL);
		r2 = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
		randombytes_buf(e, 32);
		crypto_test_set_ephemeral(i2, e);
		crypto_hs_write(i2, NULL, 0, m1, sizeof m1, &l1);
		crypto_hs_read(r2, m1, l1, pl, sizeof pl, &n);
		crypto_hs_write(r2, NULL, 0, bad, sizeof bad, &bl);
		bad[j] ^= 0x40;
		CHECK(crypto_hs_read(i2, bad, bl, pl, sizeof pl, &n) < 0);
		CHECK(crypto_hs_write(i2, NULL, 0, m3, sizeof m3, &l3) < 0);
		crypto_hs_free(i2);
		crypto_hs_free(r2);
	}

	/* A clean run; the prologue must match. */
	crypto_hs_free(ini);
	ini = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, si, NULL);
	res = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
	CHECK(crypto_hs_write(ini, NULL, 0, m1, sizeof m1, &l1) == 0);
	CHECK(crypto_hs_read(res, m1, l1, pl, sizeof pl, &n) == 0 && n == 0);
	CHECK(crypto_hs_write(res, "cand", 4, m2, 50, &l2) < 0);	/* too small */
	crypto_hs_free(res);
	res = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
	CHECK(crypto_hs_read(res, m1, l1, pl, sizeof pl, &n) == 0);
	CHECK(crypto_hs_write(res, "cand", 4, m2, sizeof m2, &l2) == 0);
	CHECK(crypto_hs_read(ini, m2, l2, pl, 3, &n) < 0);		/* payload too big */
	crypto_hs_free(ini);
	ini = NULL;

	{
		struct crypto_hs *i2 = crypto_hs_new(CRYPTO_PROTOCOL, true, "other", 5, si, NULL);
		struct crypto_hs *r2 = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);

		crypto_hs_write(i2, NULL, 0, m1, sizeof m1, &l1);
		CHECK(crypto_hs_read(r2, m1, l1, pl, sizeof pl, &n) == 0);
		crypto_hs_write(r2, NULL, 0, m2, sizeof m2, &l2);
		CHECK(crypto_hs_read(i2, m2, l2, pl, sizeof pl, &n) < 0);
		crypto_hs_free(i2);
		crypto_hs_free(r2);
	}

	/* A low-order ephemeral key (zero) makes the DH, and the handshake, fail. */
	crypto_hs_free(res);
	res = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
	memset(m1, 0, 32);
	CHECK(crypto_hs_read(res, m1, 32, pl, sizeof pl, &n) == 0);
	CHECK(crypto_hs_write(res, NULL, 0, m2, sizeof m2, &l2) < 0);

	crypto_hs_free(res);
	ini = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, si, NULL);
	res = crypto_hs_new(CRYPTO_PROTOCOL, false, pro, sizeof pro, sr, NULL);
	CHECK(crypto_hs_split(ini, h1, &hl1, a1, a2) < 0);		/* not done: dead */
	crypto_hs_free(ini);
	ini = crypto_hs_new(CRYPTO_PROTOCOL, true, pro, sizeof pro, si, NULL);
	CHECK(crypto_hs_write(ini, NULL, 0, m1, sizeof m1, &l1) == 0);
	CHECK(crypto_hs_read(res, m1, l1, pl, sizeof pl, &n) == 0);
	CHECK(crypto_hs_write(res, "cand", 4, m2, sizeof m2, &l2) == 0);
	CHECK(crypto_hs_read(ini, m2, l2, pl, sizeof pl, &n) == 0 && n == 4 &&
	    memcmp(pl, "cand", 4) == 0);
	CHECK(crypto_hs_remote_static(ini, got) == 0 && crypto_key_equal(got, pr));
	CHECK(crypto_hs_remote_static(res, got) < 0);
	CHECK(crypto_hs_write(ini, "ok", 2, m3, sizeof m3, &l3) == 0 && l3 == 48 + 18);
	CHECK(crypto_hs_read(res, m3, l3, pl, sizeof pl, &n) == 0 && n == 2);
	CHECK(crypto_hs_remote_static(res, got) == 0 && crypto_key_equal(got, pi));
	CHECK(crypto_hs_split(ini, h1, &hl1, a1, a2) == 0 && hl1 == 64);
	CHECK(crypto_hs_split(res, h2, &hl2, b1, b2) == 0 && hl2 == 64);
	CHECK(memcmp(h1, h2, 64) == 0 && crypto_key_equal(a1, b2) && crypto_key_equal(a2, b1));
	CHECK(!crypto_key_equal(a1, a2));
	CHECK(crypto_hs_remote_static(ini, got) < 0);			/* wiped */
out:
	crypto_hs_free(ini);
	crypto_hs_free(res);
}

/* Record layer. */

/* wire.h's data packet: magic, type, connection id, packet number. */
#define HDR	14

static void
put_hdr(uint8_t *p, uint64_t pn)
{
	int i;

	p[0] = 0xe1;
	p[1] = 3;
	memcpy(p + 2, "\x12\x34\x56\x78", 4);
	for (i = 0; i < 8; i++)
		p[6 + i] = (uint8_t)(pn >> (56 - 8 * i));
}

static uint64_t
get_pn(const uint8_t *p)
{
	uint64_t pn = 0;
	int i;

	for (i = 0; i < 8; i++)
		pn = pn << 8 | p[6 + i];
	return pn;
}

static int
phase_of(const uint8_t *p)
{
	return (p[CRYPTO_HDR_PHASE_BYTE] & CRYPTO_HDR_PHASE) ? 1 : 0;
}

/* Seal plain as pn into pkt; returns the packet length, 0 on failure. */
static size_t
seal(struct crypto_tx *tx, uint64_t now, uint64_t pn, const void *plain, size_t len,
    uint8_t *pkt)
{
	put_hdr(pkt, pn);
	if (crypto_seal(tx, now, pkt, HDR, pn, plain, len, pkt + HDR) < 0)
		return 0;
	return HDR + len + CRYPTO_TAG_LEN;
}

static int
open_pkt(struct crypto_rx *rx, uint64_t now, const uint8_t *pkt, size_t len, uint8_t *out)
{
	return crypto_open(rx, now, pkt, HDR, get_pn(pkt), pkt + HDR, len - HDR, out);
}

static void
test_record(int c)
{
	uint8_t key[32], key2[32], pkt[256], copy[256], out[256], msg[64];
	uint8_t store[40][128];
	size_t len, lens[40], j;
	struct crypto_tx *tx;
	struct crypto_rx *rx;
	struct crypto_rx_stats st;
	uint64_t now = 1000000, auth = 0, pn;
	int bit, i;
	static const int order[] = { 13, 10, 19, 11, 12, 17, 14, 15, 16, 18 };

	randombytes_buf(key, 32);
	randombytes_buf(msg, sizeof msg);
	tx = crypto_tx_new(c, key, now);
	rx = crypto_rx_new(c, key);
	CHECK(tx && rx);
	if (!tx || !rx)
		goto out;

	/* Round trip, in place on the receiving side. */
	len = seal(tx, now, 5, msg, sizeof msg, pkt);
	CHECK(len == HDR + sizeof msg + 16);
	CHECK(phase_of(pkt) == 0 && pkt[0] == 0xe1 && pkt[1] == 3);
	memcpy(copy, pkt, len);

	/* Every bit of header, ciphertext and tag is authenticated; the
	 * window does not move for forgeries. */
	for (j = 0; j < len; j++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(pkt, copy, len);
			pkt[j] ^= (uint8_t)(1 << bit);
			CHECK(open_pkt(rx, now, pkt, len, out) < 0);
			auth++;
		}
	crypto_rx_get_stats(rx, &st);
	CHECK(st.auth == auth && st.ok == 0 && st.replay == 0 && st.old == 0);
	memcpy(pkt, copy, len);
	CHECK(open_pkt(rx, now, pkt, len, pkt + HDR) == 0);
	CHECK(memcmp(pkt + HDR, msg, sizeof msg) == 0);

	/* Replay. */
	CHECK(open_pkt(rx, now, copy, len, out) < 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.ok == 1 && st.replay == 1);

	/* Truncated: shorter than a tag. */
	CHECK(crypto_open(rx, now, copy, HDR, 5, copy + HDR, 15, out) < 0);
	CHECK(crypto_open(rx, now, copy, 1, 5, copy + HDR, len - HDR, out) < 0);
	CHECK(crypto_open(rx, now, copy, HDR, UINT64_MAX, copy + HDR, len - HDR, out) < 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.malformed == 3);

	/* Nonces never repeat: pn must grow. */
	CHECK(seal(tx, now, 5, msg, 8, pkt) == 0);
	CHECK(seal(tx, now, 4, msg, 8, pkt) == 0);
	CHECK(seal(tx, now, UINT64_MAX, msg, 8, pkt) == 0);
	CHECK(crypto_seal(tx, now, pkt, 1, 6, msg, 8, out) < 0);

	/* Reordering inside the window: each accepted once. */
	for (i = 10; i < 20; i++)
		CHECK((lens[i] = seal(tx, now, (uint64_t)i, msg, 16, store[i])) != 0);
	for (j = 0; j < sizeof order / sizeof order[0]; j++)
		CHECK(open_pkt(rx, now, store[order[j]], lens[order[j]], out) == 0);
	for (i = 10; i < 20; i++)
		CHECK(open_pkt(rx, now, store[i], lens[i], out) < 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.ok == 11 && st.replay == 11);

	/* The window's edge: 2048 behind the top is too old, 2047 is not. */
	CHECK((lens[0] = seal(tx, now, 1000, msg, 16, store[0])) != 0);
	CHECK((lens[1] = seal(tx, now, 1001, msg, 16, store[1])) != 0);
	CHECK((lens[2] = seal(tx, now, 1000 + CRYPTO_REPLAY_WINDOW, msg, 16, store[2])) != 0);
	CHECK(open_pkt(rx, now, store[2], lens[2], out) == 0);
	CHECK(open_pkt(rx, now, store[0], lens[0], out) < 0);
	CHECK(open_pkt(rx, now, store[1], lens[1], out) == 0);
	CHECK(open_pkt(rx, now, store[1], lens[1], out) < 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.ok == 13 && st.old == 1 && st.replay == 12);

	/* A jump far ahead clears the whole window. */
	pn = 1000000;
	CHECK((lens[3] = seal(tx, now, pn, msg, 16, store[3])) != 0);
	CHECK((lens[4] = seal(tx, now, pn + 1, msg, 16, store[4])) != 0);
	CHECK(open_pkt(rx, now, store[4], lens[4], out) == 0);
	CHECK(open_pkt(rx, now, store[3], lens[3], out) == 0);
	CHECK(open_pkt(rx, now, store[2], lens[2], out) < 0);

	/* Wrong key: authentication failure. */
	randombytes_buf(key2, 32);
	crypto_rx_free(rx);
	rx = crypto_rx_new(c, key2);
	CHECK(open_pkt(rx, now, store[4], lens[4], out) < 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.auth == 1 && st.ok == 0);
out:
	crypto_tx_free(tx);
	crypto_rx_free(rx);
}

static void
test_rekey(int c)
{
	uint8_t key[32], msg[100], pkts[40][160], out[160];
	size_t lens[40];
	struct crypto_tx *tx;
	struct crypto_rx *rx;
	struct crypto_rx_stats st;
	uint64_t now = 5000000;
	int i;

	randombytes_buf(key, 32);
	randombytes_buf(msg, sizeof msg);

	/* By packets: a new key every 5 packets, followed in order. */
	tx = crypto_tx_new(c, key, now);
	rx = crypto_rx_new(c, key);
	crypto_test_set_limits(tx, 5, CRYPTO_REKEY_BYTES, CRYPTO_REKEY_US);
	for (i = 0; i < 20; i++) {
		CHECK((lens[i] = seal(tx, now, (uint64_t)i, msg, 10, pkts[i])) != 0);
		CHECK(phase_of(pkts[i]) == (i / 5) % 2 && (pkts[i][1] & 0x7f) == 3);
		CHECK(open_pkt(rx, now, pkts[i], lens[i], out) == 0 &&
		    memcmp(out, msg, 10) == 0);
	}
	crypto_rx_get_stats(rx, &st);
	CHECK(crypto_tx_rekeys(tx) == 3 && st.rekeys == 3 && st.ok == 20);
	crypto_tx_free(tx);
	crypto_rx_free(rx);

	/* Reordered across a key change: the old key is kept a while. */
	tx = crypto_tx_new(c, key, now);
	rx = crypto_rx_new(c, key);
	crypto_test_set_limits(tx, 5, CRYPTO_REKEY_BYTES, CRYPTO_REKEY_US);
	for (i = 0; i < 15; i++)
		CHECK((lens[i] = seal(tx, now, (uint64_t)i, msg, 10, pkts[i])) != 0);
	for (i = 0; i < 3; i++)
		CHECK(open_pkt(rx, now, pkts[i], lens[i], out) == 0);
	for (i = 6; i < 9; i++)					/* phase 1 */
		CHECK(open_pkt(rx, now, pkts[i], lens[i], out) == 0);
	CHECK(open_pkt(rx, now, pkts[3], lens[3], out) == 0);	/* phase 0, late */
	CHECK(open_pkt(rx, now, pkts[5], lens[5], out) == 0);	/* phase 1, late */
	CHECK(open_pkt(rx, now, pkts[3], lens[3], out) < 0);	/* replay */
	/* After CRYPTO_PREV_KEY_US the old key is gone. */
	CHECK(open_pkt(rx, now + CRYPTO_PREV_KEY_US, pkts[4], lens[4], out) < 0);
	CHECK(open_pkt(rx, now + CRYPTO_PREV_KEY_US, pkts[9], lens[9], out) == 0);
	CHECK(open_pkt(rx, now + CRYPTO_PREV_KEY_US, pkts[12], lens[12], out) == 0);
	CHECK(open_pkt(rx, now + CRYPTO_PREV_KEY_US, pkts[10], lens[10], out) == 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.ok == 11 && st.auth == 1 && st.replay == 1 && st.rekeys == 2);
	/* A forged packet claiming the next phase changes nothing. */
	memcpy(out, pkts[14], lens[14]);
	out[CRYPTO_HDR_PHASE_BYTE] ^= CRYPTO_HDR_PHASE;
	CHECK(open_pkt(rx, now, out, lens[14], pkts[39]) < 0);
	CHECK(open_pkt(rx, now, pkts[14], lens[14], out) == 0);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.rekeys == 2 && st.auth == 2);
	crypto_tx_free(tx);
	crypto_rx_free(rx);

	/* By bytes: 100-byte packets, a new key after 250 bytes. */
	tx = crypto_tx_new(c, key, now);
	rx = crypto_rx_new(c, key);
	crypto_test_set_limits(tx, CRYPTO_REKEY_PKTS, 250, CRYPTO_REKEY_US);
	for (i = 0; i < 9; i++) {
		CHECK((lens[i] = seal(tx, now, (uint64_t)i, msg, 100, pkts[i])) != 0);
		CHECK(open_pkt(rx, now, pkts[i], lens[i], out) == 0);
	}
	CHECK(crypto_tx_rekeys(tx) == 4);
	crypto_tx_free(tx);
	crypto_rx_free(rx);

	/* By time, with the default limits. */
	tx = crypto_tx_new(c, key, now);
	rx = crypto_rx_new(c, key);
	for (i = 0; i < 6; i++) {
		uint64_t t = now + (uint64_t)i * (CRYPTO_REKEY_US / 2);

		CHECK((lens[i] = seal(tx, t, (uint64_t)i, msg, 10, pkts[i])) != 0);
		CHECK(open_pkt(rx, t, pkts[i], lens[i], out) == 0);
	}
	CHECK(crypto_tx_rekeys(tx) == 2);
	crypto_rx_get_stats(rx, &st);
	CHECK(st.rekeys == 2 && st.ok == 6);
	crypto_tx_free(tx);
	crypto_rx_free(rx);
}

/*
 * The record layer is Noise's ENCRYPT(k, pn, header) with cipher c (the
 * function the vectors checked), and its rekeying is Noise's REKEY(k);
 * a packet does not open under the other cipher with the same key.
 */
static void
test_record_cipher(int c)
{
	uint8_t key[32], k2[32], zeros[32] = { 0 }, tmp[48], msg[200], pkt[256], want[256];
	uint8_t out[256], first[256];
	struct crypto_tx *tx = NULL;
	struct crypto_rx *rx = NULL;
	int other = c == CRYPTO_AESGCM ? CRYPTO_CHACHAPOLY : CRYPTO_AESGCM;
	size_t len, flen;

	randombytes_buf(key, 32);
	randombytes_buf(msg, sizeof msg);
	tx = crypto_tx_new(c, key, 0);
	CHECK(tx != NULL);
	if (!tx)
		return;
	crypto_test_set_limits(tx, 1, CRYPTO_REKEY_BYTES, CRYPTO_REKEY_US);
	CHECK((flen = seal(tx, 0, 0x0102030405060708ULL, msg, sizeof msg, first)) != 0);
	crypto_encrypt(c, key, 0x0102030405060708ULL, first, HDR, msg, sizeof msg, want);
	CHECK(memcmp(first + HDR, want, sizeof msg + 16) == 0);
	/* The second packet goes under REKEY(key), with the phase bit set. */
	crypto_encrypt(c, key, UINT64_MAX, NULL, 0, zeros, 32, tmp);
	memcpy(k2, tmp, 32);
	CHECK((len = seal(tx, 0, 0x0102030405060709ULL, msg, 50, pkt)) != 0);
	CHECK(phase_of(pkt) == 1);
	crypto_encrypt(c, k2, 0x0102030405060709ULL, pkt, HDR, msg, 50, want);
	CHECK(memcmp(pkt + HDR, want, 50 + 16) == 0);
	if (crypto_cipher_available(other)) {
		rx = crypto_rx_new(other, key);
		CHECK(rx && open_pkt(rx, 0, first, flen, out) < 0);
		crypto_rx_free(rx);
	}
	rx = crypto_rx_new(c, key);
	CHECK(rx && open_pkt(rx, 0, first, flen, out) == 0 && memcmp(out, msg, sizeof msg) == 0);
	CHECK(rx && open_pkt(rx, 0, pkt, len, out) == 0 && memcmp(out, msg, 50) == 0);
	crypto_rx_free(rx);
	crypto_tx_free(tx);
}

/*
 * crypto_sealv: a plaintext sealed from pieces (the first in place, as
 * the session does, the others from elsewhere; empty ones and odd
 * lengths across GCM's 16-byte blocks) is the packet crypto_seal makes
 * of it whole, i.e. Noise's ENCRYPT, and opens.
 */
static void
test_sealv(int c)
{
	static const size_t cuts[][3] = {
		{ 1398, 0, 0 }, { 5, 1393, 0 }, { 17, 700, 681 }, { 0, 1398, 0 },
		{ 16, 0, 1382 }, { 1397, 1, 0 }, { 0, 0, 0 },
	};
	uint8_t key[32], msg[1398], want[1500], pkt[1500], out[1500];
	struct crypto_tx *tx = NULL, *tx2 = NULL;
	struct crypto_rx *rx = NULL;
	struct iovec iov[3];
	size_t i, j, off, len;

	randombytes_buf(key, 32);
	randombytes_buf(msg, sizeof msg);
	tx = crypto_tx_new(c, key, 0);
	tx2 = crypto_tx_new(c, key, 0);
	rx = crypto_rx_new(c, key);
	CHECK(tx && tx2 && rx);
	if (!tx || !tx2 || !rx)
		goto out;
	for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		len = cuts[i][0] + cuts[i][1] + cuts[i][2];
		CHECK(seal(tx, 0, 100 + i, msg, len, want) == HDR + len + CRYPTO_TAG_LEN);
		put_hdr(pkt, 100 + i);
		/* The first piece in place, the rest from msg. */
		memcpy(pkt + HDR, msg, cuts[i][0]);
		for (j = 0, off = 0; j < 3; off += cuts[i][j], j++) {
			iov[j].iov_base = j == 0 ? pkt + HDR : msg + off;
			iov[j].iov_len = cuts[i][j];
		}
		CHECK(crypto_sealv(tx2, 0, pkt, HDR, 100 + i, iov, 3, pkt + HDR) == 0);
		CHECK(memcmp(pkt, want, HDR + len + CRYPTO_TAG_LEN) == 0);
		CHECK(open_pkt(rx, 0, pkt, HDR + len + CRYPTO_TAG_LEN, out) == 0 &&
		    memcmp(out, msg, len) == 0);
	}
	/* No pieces at all: the empty plaintext. */
	CHECK(seal(tx, 0, 200, msg, 0, want) == HDR + CRYPTO_TAG_LEN);
	put_hdr(pkt, 200);
	CHECK(crypto_sealv(tx2, 0, pkt, HDR, 200, NULL, 0, pkt + HDR) == 0);
	CHECK(memcmp(pkt, want, HDR + CRYPTO_TAG_LEN) == 0);
out:
	crypto_tx_free(tx);
	crypto_tx_free(tx2);
	crypto_rx_free(rx);
}

/* CPace, against draft-irtf-cfrg-cpace-21 appendix B.3 (ristretto255,
 * SHA-512). */

static void
from_hex(const char *s, uint8_t *out, size_t len)
{
	struct bytes b;

	if (unhex(s, &b) < 0 || b.len != len) {
		fprintf(stderr, "bad hex in the test: %s\n", s);
		failures++;
		memset(out, 0, len);
		return;
	}
	memcpy(out, b.b, len);
}

static void
test_cpace(void)
{
	static const uint8_t ci[] = "\x0b" "A_initiator" "\x0b" "B_responder";
	uint8_t sid[16], ya[32], yb[32], Ya[32], Yb[32], isk[64], sa[32], sb[32];
	uint8_t ia[64], ib[64], bad[32];
	struct crypto_cpace *a, *b;

	from_hex("7e4b4791d6a8ef019b936c79fb7f2c57", sid, 16);
	from_hex("da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08", ya, 32);
	from_hex("d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d", yb, 32);
	from_hex("d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157", Ya, 32);
	from_hex("3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258", Yb, 32);
	from_hex("b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dcae7b35cd"
	    "2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c3fa2068af7900447", isk, 64);

	a = crypto_cpace_start("Password", 8, ci, sizeof ci - 1, sid, sizeof sid, sa);
	b = crypto_cpace_start("Password", 8, ci, sizeof ci - 1, sid, sizeof sid, sb);
	CHECK(a && b);
	if (!a || !b)
		goto out;
	CHECK(crypto_test_cpace_set_scalar(a, ya, sa) == 0 && memcmp(sa, Ya, 32) == 0);
	CHECK(crypto_test_cpace_set_scalar(b, yb, sb) == 0 && memcmp(sb, Yb, 32) == 0);
	CHECK(crypto_cpace_finish(a, true, "ADa", 3, sb, "ADb", 3, ia) == 0);
	CHECK(crypto_cpace_finish(b, false, "ADb", 3, sa, "ADa", 3, ib) == 0);
	CHECK(memcmp(ia, isk, 64) == 0 && memcmp(ib, isk, 64) == 0);
	CHECK(crypto_cpace_finish(a, true, "ADa", 3, sb, "ADb", 3, ia) < 0);	/* once */
	crypto_cpace_free(a);
	crypto_cpace_free(b);

	/* B.3.11: an invalid encoding and the identity are refused. */
	a = crypto_cpace_start("Password", 8, ci, sizeof ci - 1, sid, sizeof sid, sa);
	from_hex("2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c", bad, 32);
	CHECK(crypto_cpace_finish(a, true, "", 0, bad, "", 0, ia) < 0);
	crypto_cpace_free(a);
	a = crypto_cpace_start("Password", 8, ci, sizeof ci - 1, sid, sizeof sid, sa);
	memset(bad, 0, 32);
	CHECK(crypto_cpace_finish(a, true, "", 0, bad, "", 0, ia) < 0);
	crypto_cpace_free(a);

	/* Random scalars: the same password agrees, another one does not. */
	a = crypto_cpace_start("correct horse", 13, "ci", 2, sid, 0, sa);
	b = crypto_cpace_start("correct horse", 13, "ci", 2, sid, 0, sb);
	CHECK(crypto_cpace_finish(a, true, "x", 1, sb, "", 0, ia) == 0);
	CHECK(crypto_cpace_finish(b, false, "", 0, sa, "x", 1, ib) == 0);
	CHECK(memcmp(ia, ib, 64) == 0);
	crypto_cpace_free(a);
	crypto_cpace_free(b);
	a = crypto_cpace_start("correct horse", 13, "ci", 2, sid, 0, sa);
	b = crypto_cpace_start("correct horsf", 13, "ci", 2, sid, 0, sb);
	CHECK(crypto_cpace_finish(a, true, "", 0, sb, "", 0, ia) == 0);
	CHECK(crypto_cpace_finish(b, false, "", 0, sa, "", 0, ib) == 0);
	CHECK(memcmp(ia, ib, 64) != 0);
	CHECK(!crypto_cpace_start("p", 1, "", 0, sid, CRYPTO_CPACE_SID_MAX + 1, sa));
out:
	crypto_cpace_free(a);
	crypto_cpace_free(b);
}

/* Identity file and text forms. */

static void
test_identity(void)
{
	char dir[] = "/tmp/unit_crypto.XXXXXX", path[256], link[256], text[CRYPTO_KEY_B64_LEN + 1];
	char fp[CRYPTO_FP_LEN + 1], bad[64];
	struct crypto_identity id, id2;
	uint8_t key[32], pub[32];
	struct stat st;
	bool created;
	int fd;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		failures++;
		return;
	}
	snprintf(path, sizeof path, "%s/a/b/key", dir);
	CHECK(crypto_load_or_create_identity(path, &id, &created) == 0 && created);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
	CHECK(st.st_size == CRYPTO_KEY_B64_LEN + 1);
	snprintf(link, sizeof link, "%s/a/b", dir);
	CHECK(stat(link, &st) == 0 && (st.st_mode & 0777) == 0700);
	crypto_scalarmult_base(pub, id.priv);
	CHECK(crypto_key_equal(pub, id.pub));

	CHECK(crypto_load_or_create_identity(path, &id2, &created) == 0 && !created);
	CHECK(crypto_key_equal(id.priv, id2.priv) && crypto_key_equal(id.pub, id2.pub));

	CHECK(chmod(path, 0644) == 0);
	CHECK(crypto_load_or_create_identity(path, &id2, &created) < 0);
	CHECK(chmod(path, 0640) == 0);
	CHECK(crypto_load_or_create_identity(path, &id2, &created) < 0);
	CHECK(chmod(path, 0600) == 0);
	snprintf(link, sizeof link, "%s/link", dir);
	CHECK(symlink(path, link) == 0);
	CHECK(crypto_load_or_create_identity(link, &id2, &created) < 0);
	CHECK(crypto_load_or_create_identity(link, &id2, &created) < 0);
	/* A directory is not a key file either. */
	snprintf(link, sizeof link, "%s/a", dir);
	CHECK(crypto_load_or_create_identity(link, &id2, &created) < 0);

	/* Malformed contents. */
	snprintf(link, sizeof link, "%s/bad", dir);
	fd = open(link, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, "not a key\n", 10) == 10);
	close(fd);
	CHECK(crypto_load_or_create_identity(link, &id2, &created) < 0);
	/* Without the final newline it is fine; with extra lines it is not. */
	crypto_key_to_text(id.priv, text);
	unlink(link);
	fd = open(link, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, text, CRYPTO_KEY_B64_LEN) == CRYPTO_KEY_B64_LEN);
	close(fd);
	CHECK(crypto_load_or_create_identity(link, &id2, &created) == 0 && !created &&
	    crypto_key_equal(id2.pub, id.pub));
	fd = open(link, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, "\n\n", 2) == 2);
	close(fd);
	CHECK(crypto_load_or_create_identity(link, &id2, &created) < 0);
	unlink(link);

	/* Public key text: round trip and strictness. */
	crypto_key_to_text(id.pub, text);
	CHECK(strlen(text) == CRYPTO_KEY_B64_LEN && text[43] == '=');
	CHECK(crypto_key_from_text(text, key) == 0 && crypto_key_equal(key, id.pub));
	CHECK(crypto_key_from_text("", key) < 0);
	snprintf(bad, sizeof bad, "%.43s", text);
	CHECK(crypto_key_from_text(bad, key) < 0);
	snprintf(bad, sizeof bad, "%s\n", text);
	CHECK(crypto_key_from_text(bad, key) < 0);
	snprintf(bad, sizeof bad, " %.43s", text);
	CHECK(crypto_key_from_text(bad, key) < 0);
	snprintf(bad, sizeof bad, "%s", text);
	bad[10] = '-';
	CHECK(crypto_key_from_text(bad, key) < 0);
	snprintf(bad, sizeof bad, "%s", text);
	bad[43] = 'A';
	CHECK(crypto_key_from_text(bad, key) < 0);
	/* Non-zero padding bits: 'B' in the last position decodes to the
	 * same first bytes as 'A' with a leftover bit. */
	memset(key, 0, 32);
	crypto_key_to_text(key, bad);
	CHECK(strcmp(bad, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == 0);
	bad[42] = 'B';
	CHECK(crypto_key_from_text(bad, key) < 0);

	/* Fingerprints and matching. */
	crypto_fingerprint(id.pub, fp);
	CHECK(strlen(fp) == CRYPTO_FP_LEN && strncmp(fp, "SHA256:", 7) == 0);
	CHECK(crypto_key_matches(fp, id.pub));
	CHECK(crypto_key_matches(text, id.pub));
	CHECK(!crypto_key_matches(fp, key));
	CHECK(!crypto_key_matches(text, key));
	fp[20] ^= 1;
	CHECK(!crypto_key_matches(fp, id.pub));
	CHECK(!crypto_key_matches("SHA256:", id.pub));
	/* A known value: the all-zero key. */
	memset(key, 0, 32);
	crypto_fingerprint(key, fp);
	CHECK(strcmp(fp, "SHA256:Zmh6rfhivXdsj8GLjp+OIAiXFIVu4jOzkCpZHQ1fKSU") == 0);

	crypto_identity_wipe(&id);
	crypto_identity_wipe(&id2);
	CHECK(unlink(path) == 0);
	snprintf(link, sizeof link, "%s/a/b", dir);
	CHECK(rmdir(link) == 0);
	snprintf(link, sizeof link, "%s/a", dir);
	CHECK(rmdir(link) == 0);
	snprintf(link, sizeof link, "%s/link", dir);
	CHECK(unlink(link) == 0);
	CHECK(rmdir(dir) == 0);
}

int
main(int argc, char **argv)
{
	bool aes;
	int n, c;

	(void)argc;
	if (crypto_init() < 0)
		return 1;
	fprintf(stderr, "(the diagnostics below come from inputs refused on purpose)\n");
	aes = crypto_cipher_available(CRYPTO_AESGCM);
	n = test_vectors(argv[0]);
	printf("%d Noise vectors\n", n);
	CHECK(n == (aes ? 35 : 17));
	test_handshake();
	for (c = CRYPTO_CHACHAPOLY; c <= CRYPTO_AESGCM; c++) {
		if (!crypto_cipher_available(c)) {
			printf("skip the record layer with %s: this CPU has no AES instructions\n",
			    crypto_cipher_name(c));
			continue;
		}
		test_record(c);
		test_rekey(c);
		test_record_cipher(c);
		test_sealv(c);
		printf("record layer with %s: done\n", crypto_cipher_name(c));
	}
	CHECK(!crypto_cipher_available(0) && !crypto_cipher_available(3));
	/* One name for users, both ways. */
	CHECK(crypto_cipher_by_label("aes256-gcm") == CRYPTO_AESGCM);
	CHECK(crypto_cipher_by_label("chacha20-poly1305") == CRYPTO_CHACHAPOLY);
	CHECK(crypto_cipher_by_label("AESGCM") == 0 && crypto_cipher_by_label("") == 0);
	CHECK(strcmp(crypto_cipher_label(CRYPTO_AESGCM), "aes256-gcm") == 0);
	CHECK(crypto_cipher_label(3) == NULL);
	CHECK(crypto_tx_new(7, (uint8_t[32]){ 0 }, 0) == NULL && errno == EINVAL);
	test_cpace();
	test_identity();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("all passed\n");
	return 0;
}
