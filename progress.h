/*
 * progress.h: how a session's transfer goes, as pv(1) shows it: bytes
 * each way, their rates and the time, on a status line of standard error
 * (--progress, or -v on a terminal), and in one line at the end (-v).
 */
#ifndef PROGRESS_H
#define PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct progress {
	bool show;			/* draw the status line */
	bool tty;			/* in place, on a terminal */
	uint64_t sent, recv;		/* bytes: our input to the peer, the
					 * peer's to our output; the caller
					 * adds to them */
	uint64_t start, next;		/* now_us() time */
	uint64_t last_us, last_sent, last_recv;
	double rate_sent, rate_recv;	/* bytes a second, smoothed */
};

/* Start counting at now. */
void prog_start(struct progress *p, bool show, bool tty, uint64_t now);
/* Redraw the line if it is due: when it is next due (now_us() time), or
 * UINT64_MAX when it is not shown. */
uint64_t prog_tick(struct progress *p, uint64_t now);
/* Clear the line, and with -v say what moved, how fast. */
void prog_end(struct progress *p, uint64_t now);
/* n bytes for people ("0 B", "1023 B", "1.50 GiB"): buf. */
const char *prog_bytes(double n, char *buf, size_t size);

#endif
