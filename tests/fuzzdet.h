/*
 * fuzzdet.h: what makes a fuzz target's run repeat exactly: libsodium's
 * randomness from a fixed seed (keys, ephemerals, connection ids, CPace
 * scalars), a clock the target moves itself (util_test_set_clock), and
 * for the session targets fixed static keys and one configuration.
 * A crash then reproduces from its input alone, and no input waits on
 * the real clock.
 */
#ifndef FUZZDET_H
#define FUZZDET_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

/* The clock now_us() reads once fuzzdet_init has run; the target adds
 * to it. */
extern uint64_t fuzzdet_now;

/* Before crypto_init (libsodium takes its randomness at sodium_init):
 * installs both. */
void fuzzdet_init(void);
/* At the start of each input: the seed and the clock start again. */
void fuzzdet_reset(void);
/* A static key whose private bytes are all seed (after crypto_init). */
void fuzzdet_identity(struct crypto_identity *id, uint8_t seed);
/* A session's configuration as the session targets fuzz it: the caller
 * ("alice") or the listener, with static key id, passphrase secret (NULL:
 * none) and trust; 64 KiB stream buffers, 15 s keepalive, 30 s idle;
 * every other field 0.  id and secret must outlive the session. */
void fuzzdet_conf(struct sess_conf *c, bool caller, const struct crypto_identity *id,
    const char *secret, sess_trust_fn trust);
/* Read and drop every datagram waiting on fd (non-blocking). */
void fuzzdet_drain(int fd);

#endif
