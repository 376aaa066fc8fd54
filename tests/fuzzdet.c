/*
 * fuzzdet.c: deterministic randomness and clock for fuzz targets (see
 * fuzzdet.h).  Never linked into p2pcat: these "random" bytes are
 * splitmix64's, the same in every run.
 */
#include <sys/socket.h>

#include <string.h>

#include <sodium.h>

#include "fuzzdet.h"
#include "util.h"
#include "wire.h"

/* Far from 0, so that nothing counting back from now wraps. */
#define T0	(1000ULL * 1000000)
#define SEED	0x5032504341540001ULL	/* "P2PCAT" 1 */

uint64_t fuzzdet_now = T0;
static uint64_t state = SEED;

/* splitmix64 (Steele, Lea and Flood, 2014). */
static uint64_t
next(void)
{
	uint64_t z = (state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const char *
name(void)
{
	return "fuzzdet";
}

static uint32_t
random32(void)
{
	return (uint32_t)(next() >> 32);
}

static void
buf(void *const p, const size_t len)
{
	unsigned char *b = p;
	size_t i;
	uint64_t r;

	for (i = 0; i < len; i += sizeof r) {
		r = next();
		memcpy(b + i, &r, len - i < sizeof r ? len - i : sizeof r);
	}
}

/* uniform, stir and close left NULL: libsodium then uses its own
 * uniform over random32, and has nothing to stir or close. */
static struct randombytes_implementation impl = {
	.implementation_name = name,
	.random = random32,
	.buf = buf,
};

void
fuzzdet_init(void)
{
	if (randombytes_set_implementation(&impl) != 0)
		__builtin_trap();
	util_test_set_clock(&fuzzdet_now);
}

void
fuzzdet_reset(void)
{
	state = SEED;
	fuzzdet_now = T0;
}

void
fuzzdet_identity(struct crypto_identity *id, uint8_t seed)
{
	memset(id->priv, seed, sizeof id->priv);
	crypto_scalarmult_base(id->pub, id->priv);
}

void
fuzzdet_conf(struct sess_conf *c, bool caller, const struct crypto_identity *id,
    const char *secret, sess_trust_fn trust)
{
	memset(c, 0, sizeof *c);
	c->caller = caller;
	c->self = caller ? "alice" : NULL;
	c->id = id;
	c->secret = secret;
	c->secretlen = secret ? strlen(secret) : 0;
	c->trust = trust;
	c->punch.caller = caller;
	c->stream.sndbuf = 1 << 16;
	c->stream.rcvbuf = 1 << 16;
	c->stream.keepalive_us = 15000000;
	c->stream.idle_us = 30000000;
}

void
fuzzdet_drain(int fd)
{
	uint8_t buf[WIRE_MAX_PKT];

	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) >= 0)
		;
}
