/*
 * tun.h: what the TUN test tools (tool_netem, tool_mitm) share: the TUN
 * device they read every routed packet from and write it back to, their
 * signals, and a random stream reproducible from a seed.  Diagnostics
 * start with the program's name.
 */
#ifndef TUN_H
#define TUN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define TUN_MTU 1500	/* what tun_start sets */
#define TUN_SLOT 2048	/* > TUN_MTU, so a read never truncates */
#define TUN_BATCH 64	/* packets read per wakeup */

/* Set by SIGTERM or SIGINT, once tun_start has run: time to stop. */
extern volatile sig_atomic_t tun_stop;

/* Seed the random stream; catch SIGTERM, SIGINT and SIGUSR1, blocked but
 * while tun_wait waits; create the TUN device name (no packet
 * information), set its MTU and queue length and bring it up: its fd
 * (non-blocking), or -1. */
int tun_start(const char *name, uint64_t seed);

/* Call report if SIGUSR1 came since the last time, then wait, at most
 * timeout (NULL: no limit), until fd has a packet to read: 1 when it has,
 * 0 when not (the time is up or a signal came), -1 on an error. */
int tun_wait(int fd, const struct timespec *timeout, void (*report)(void));

/* Read fd's next packet into buf (size bytes): its length, 0 when none
 * is waiting (or it was empty), or -1 on an error. */
ssize_t tun_read(int fd, void *buf, size_t size);

/* splitmix64 from tun_start's seed: small, fast, and reproducible. */
uint64_t tun_rand(void);
/* True with probability p (0..1). */
bool tun_chance(double p);

#endif
