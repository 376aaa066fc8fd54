/* util.h: diagnostics and clocks shared by every module. */
#ifndef UTIL_H
#define UTIL_H

#include <stdint.h>

/* How much -v was given; diagnostics above it are not printed. */
extern int log_verbose;

/* "p2pcat: message" on stderr, for errors: always printed. */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with ": strerror(errno)" appended. */
void log_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only when -v was given at least level times. */
void log_v(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Microseconds on CLOCK_MONOTONIC, for every timer. */
uint64_t now_us(void);
/* Milliseconds since the Unix epoch, for expiry times shared with peers. */
uint64_t unix_ms(void);

#endif
