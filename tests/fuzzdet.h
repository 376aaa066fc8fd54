/*
 * fuzzdet.h: what makes a fuzz target's run repeat exactly: libsodium's
 * randomness from a fixed seed (keys, ephemerals, connection ids, CPace
 * scalars), and a clock the target moves itself (util_test_set_clock).
 * A crash then reproduces from its input alone, and no input waits on
 * the real clock.
 */
#ifndef FUZZDET_H
#define FUZZDET_H

#include <stdint.h>

/* The clock now_us() reads once fuzzdet_init has run; the target adds
 * to it. */
extern uint64_t fuzzdet_now;

/* Before crypto_init (libsodium takes its randomness at sodium_init):
 * installs both. */
void fuzzdet_init(void);
/* At the start of each input: the seed and the clock start again. */
void fuzzdet_reset(void);

#endif
