/*
 * fuzz_handshake: libFuzzer target for the rendezvous blobs (session.c):
 * an offer as a fresh listener takes it (the TLV parser, candidates,
 * cipher list, cancel token, CPace share and Noise message 1, then the
 * answer made from it), or an answer as a fresh caller that has just made
 * its offer takes it (its TLVs, CPace share and Noise message 2).  Noise
 * message 1 is an ephemeral key in the clear, so the fuzzer gets through
 * a whole sess_take_offer; message 2 is encrypted, so an answer's inner
 * TLVs are the offer parser's, reached here through offers.
 *
 * Input: one setup byte, then the blob.  Setup bit 0: passphrase mode;
 * bit 1: the blob is an answer, else an offer.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto.h"
#include "session.h"
#include "signal.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ID	"0123456789abcdef0123456789abcdef"
#define SECRET	"fuzz passphrase"

static struct crypto_identity ida, idb;
static bool ready;

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static int
trust(void *ctx, const char *name, const uint8_t pub[CRYPTO_KEY_LEN])
{
	(void)ctx;
	(void)pub;
	/* What a caller claims must be a valid name, or none. */
	check(name[0] == '\0' || sig_valid_name(name));
	return 0;
}

static void
conf(struct sess_conf *c, bool caller, bool secret)
{
	memset(c, 0, sizeof *c);
	c->caller = caller;
	c->self = caller ? "alice" : NULL;
	c->id = caller ? &ida : &idb;
	c->secret = secret ? SECRET : NULL;
	c->secretlen = secret ? strlen(SECRET) : 0;
	c->trust = trust;
	c->punch.caller = caller;
	c->stream.sndbuf = 1 << 16;
	c->stream.rcvbuf = 1 << 16;
}

static void
identity(struct crypto_identity *id, uint8_t seed)
{
	memset(id->priv, seed, sizeof id->priv);
	crypto_scalarmult_base(id->pub, id->priv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t offer[4096], answer[4096];
	struct sess_conf c;
	struct session *s;
	const char *name;
	size_t n;

	if (size < 1)
		return 0;
	if (!ready) {
		if (crypto_init() == -1)
			__builtin_trap();
		identity(&ida, 1);
		identity(&idb, 2);
		ready = true;
	}
	if (data[0] & 2) {
		conf(&c, true, data[0] & 1);
		if ((s = sess_new(&c)) == NULL ||
		    sess_offer(s, "bob", ID, offer, sizeof offer) == 0)
			__builtin_trap();
		if (sess_take_answer(s, data + 1, size - 1) == 0)
			check(sess_cipher(s) != 0);
		else
			check(!sess_connected(s));
	} else {
		conf(&c, false, data[0] & 1);
		if ((s = sess_new(&c)) == NULL)
			__builtin_trap();
		n = sess_take_offer(s, "bob", ID, data + 1, size - 1, answer,
		    sizeof answer);
		check(n <= sizeof answer);
		name = sess_peer_name(s);
		check(name[0] == '\0' || sig_valid_name(name));
	}
	sess_free(s);
	return 0;
}
