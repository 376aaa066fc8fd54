/*
 * progress.c: the status line of a transfer, as pv(1) and curl(1) draw
 * theirs: bytes each way, the current rates and the time, redrawn in
 * place at most PROG_EVERY_US apart.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "progress.h"
#include "util.h"

#define PROG_EVERY_US	500000	/* two redraws a second, as a person reads */
#define PROG_SMOOTH_S	2.0	/* the rates' time constant */

const char *
prog_bytes(double n, char *buf, size_t size)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int i = 0;

	while (n >= 1024 && i < 5) {
		n /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, size, "%.0f B", n);
	else
		snprintf(buf, size, "%.*f %s", n < 10 ? 2 : n < 100 ? 1 : 0, n, unit[i]);
	return buf;
}

void
prog_start(struct progress *p, bool show, bool tty, uint64_t now)
{
	memset(p, 0, sizeof *p);
	p->show = show;
	p->tty = tty;
	p->start = p->last_us = now;
	p->next = now + PROG_EVERY_US;
}

/* A rate smoothed over PROG_SMOOTH_S: the new sample weighs by how long
 * it took. */
static double
smooth(double rate, double sample, double dt, bool first)
{
	double w = 1 - exp(-dt / PROG_SMOOTH_S);

	return first ? sample : rate + (sample - rate) * w;
}

uint64_t
prog_tick(struct progress *p, uint64_t now)
{
	char s[32], sr[32], r[32], rr[32];
	double dt;
	bool first;
	uint64_t t;

	if (!p->show)
		return UINT64_MAX;
	if (now < p->next)
		return p->next;
	dt = (now - p->last_us) / 1e6;
	first = p->last_us == p->start;
	p->rate_sent = smooth(p->rate_sent, (p->sent - p->last_sent) / dt, dt, first);
	p->rate_recv = smooth(p->rate_recv, (p->recv - p->last_recv) / dt, dt, first);
	p->last_us = now;
	p->last_sent = p->sent;
	p->last_recv = p->recv;
	t = (now - p->start) / 1000000;
	log_status(p->tty, "sent %s (%s/s), received %s (%s/s), %u:%02u:%02u",
	    prog_bytes(p->sent, s, sizeof s), prog_bytes(p->rate_sent, sr, sizeof sr),
	    prog_bytes(p->recv, r, sizeof r), prog_bytes(p->rate_recv, rr, sizeof rr),
	    (unsigned)(t / 3600), (unsigned)(t / 60 % 60), (unsigned)(t % 60));
	p->next = now + PROG_EVERY_US;
	return p->next;
}

void
prog_end(struct progress *p, uint64_t now)
{
	double secs = (now - p->start) / 1e6;
	char s[32], sr[32], r[32], rr[32];

	if (p->show)
		log_status(p->tty, "%s", "");
	if (secs <= 0)
		secs = 1e-6;
	log_v(1, "sent %llu bytes (%s, %s/s), received %llu bytes (%s, %s/s), "
	    "in %.2f s", (unsigned long long)p->sent, prog_bytes(p->sent, s, sizeof s),
	    prog_bytes(p->sent / secs, sr, sizeof sr), (unsigned long long)p->recv,
	    prog_bytes(p->recv, r, sizeof r), prog_bytes(p->recv / secs, rr, sizeof rr),
	    secs);
}
