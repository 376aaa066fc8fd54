/*
 * pump.h: a session's data loop, after nc's readwrite(): what is read
 * from one local descriptor goes to the peer, what the peer sends is
 * written to another, until both directions have ended.
 */
#ifndef PUMP_H
#define PUMP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct session;
struct pump_conf;

/* Called when the session is connected (the peer proved its keys), before
 * any data moves: 0 to go on, a CLOSE code to abort the session with (the
 * peer is told), or PUMP_WAIT to be asked again in a moment, the session
 * kept alive meanwhile.  It may set c->in_fd and c->out_fd. */
#define PUMP_WAIT	(-1)
typedef int (*pump_connect_fn)(void *ctx, struct session *s, struct pump_conf *c);

struct pump_conf {
	int in_fd, out_fd;		/* read for the peer; its data written here */
	bool udp;			/* -u: one read, one datagram */
	bool send_only, recv_only;
	bool keep_out;			/* hold on to out_fd at the peer's EOF (-k) */
	double wait_s, idle_s;		/* -w and --idle, for messages */
	const volatile sig_atomic_t *stop;	/* the signal that ends us, or 0 */
	/* Set when a listener that serves one session has settled on
	 * another: end this one, telling the peer we are busy; or NULL. */
	const volatile sig_atomic_t *busy;
	bool *in_eof;			/* in_fd is at EOF (stays so, for -k) */
	pump_connect_fn on_connect;	/* or NULL */
	void *ctx;
	/* -e PROG or -c CMD (shell): run it once connected, and move its
	 * stdout to the peer and the peer's data to its stdin, instead of
	 * in_fd and out_fd.  Its environment names the peer: peer_name,
	 * or else the name the caller gave. */
	const char *cmd;
	bool shell;
	const char *peer_name;
	/* The status line of the transfer (progress.h), in place on a
	 * terminal (progress_tty). */
	bool progress, progress_tty;
};

/* Run the session until both directions have ended, it fails, or *stop is
 * set; connect_deadline (now_us() time) bounds the wait for a path.
 * Returns the exit status (p2pcat.h). */
int pump_run(struct session *s, struct pump_conf *c, uint64_t connect_deadline);

/* The exit status for a session that failed before or in pump_run. */
int pump_status(const struct session *s);

/* The path, rates and drops of a session, for -v; datagrams dropped
 * on arrival (-u), always. */
void pump_report(struct session *s);

#endif
