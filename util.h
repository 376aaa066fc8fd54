/* util.h: diagnostics and clocks shared by every module. */
#ifndef UTIL_H
#define UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How much -v was given; diagnostics above it are not printed. */
extern int log_verbose;
/* A tag after "p2pcat: " on every message, or NULL: a listener's child
 * names the offer it works on. */
extern const char *log_tag;

/* "p2pcat: message" on stderr, for errors: always printed. */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with ": strerror(errno)" appended. */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only when -v was given at least level times. */
void log_v(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A status line (progress): on a terminal (tty) drawn in place over the
 * last one, and cleared by the next message or by an empty one; else
 * one line each. */
void log_status(bool tty, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read the secret in the private file path (what names it in messages)
 * into buf (cap bytes, NUL-terminated), trailing white space dropped: its
 * length (1 to cap - 2), or -1 after printing why.  A symbolic link, a
 * file that is not regular, or one that group or others may access is
 * refused.  The caller wipes buf. */
long util_read_private(const char *path, const char *what, char *buf, size_t cap);

/* Read a file that says whom to trust (known_peers, an --allow list)
 * into *buf (malloc'd, NUL-terminated; *len bytes, at most max; the
 * caller frees it): 1, 0 when it does not exist, or -1 after printing
 * why, naming it by what.  Others may read such a file, but nobody else
 * may change it: refused unless it is a regular file owned by us or by
 * root that group and others cannot write, as ssh treats authorized_keys.
 * nofollow: a symbolic link is refused too (for files p2pcat writes). */
int util_read_trusted(const char *path, const char *what, int nofollow, size_t max,
    char **buf, size_t *len);

/* Text from outside (names, keys and lines from files, file names in
 * the store, servers' messages) made safe to show on a terminal, into
 * buf: printable ASCII and well-formed UTF-8 stay; control characters
 * (C0, DEL, C1), bidirectional overrides and bytes that are not UTF-8
 * become C escapes (\n, \x1b, \u202e).  A backslash stays as it is: the
 * point is a terminal that nothing acts on, and text a module quoted its
 * own way (signal.c's \ooo) stays readable.  Cut short with "..." when
 * buf is full.  Returns buf.  Every message goes through it (log_err and
 * the others), so a caller never needs to. */
const char *util_escape(const char *s, char *buf, size_t size);

/* Lock a robust mutex; one whose holder died is taken over (what it
 * guards is a few counters, consistent enough for that). */
void util_mutex_lock(pthread_mutex_t *mu);

/* Microseconds on CLOCK_MONOTONIC, for every timer. */
uint64_t now_us(void);
/* Test hook (fuzz targets): now_us() reads *clock instead, while clock
 * is not NULL, so that a run repeats exactly.  Loops that wait for the
 * clock (sess_cancel, punch_gather) must not run meanwhile. */
void util_test_set_clock(const uint64_t *clock);
/* Milliseconds since the Unix epoch, for expiry times shared with peers. */
uint64_t unix_ms(void);
/* Seconds (non-negative) as microseconds. */
uint64_t secs_us(double s);
/* The poll(2) timeout to reach deadline t from now (both now_us() time),
 * rounded up; -1 for t == UINT64_MAX. */
int timeout_ms(uint64_t t, uint64_t now);

/* Big-endian (network order) integers in byte buffers. */
static inline uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static inline void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void
put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline void
put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}

#endif
