/*
 * pump.c: a session's data loop, after nc's readwrite(): one buffer per
 * direction, poll(2) on the two local descriptors and the session's
 * socket, the timeout being the next deadline.
 *
 * The descriptors may be shared with other processes (the shell's stdin
 * and stdout): their file status flags are never changed, not even for a
 * moment, since a process killed before it could restore them would leave
 * the next writer in the pipeline with EAGAIN.  A slow reader must not
 * stall the loop (and our acknowledgements with it), so a pipe is
 * reopened through /proc/self/fd, which gives a file description of our
 * own that may be non-blocking; a socket is written with MSG_DONTWAIT.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "exec.h"
#include "p2pcat.h"
#include "progress.h"
#include "pump.h"
#include "session.h"
#include "stream.h"
#include "util.h"

#define IOBUF		65536
/* Written out at most a write into an output we write without blocking
 * (a pipe we reopened, a socket): as much as a grown pipe holds (below).
 * A tty or a file is written blocking, IOBUF at a time, so that a slow one
 * does not hold up the loop (and our acknowledgements) for longer. */
#define WRITE_MAX	(1 << 20)
/* A byte stream is read straight into the stream's send buffer, this much
 * at most a read: each read of a pipe whose writer waits for room wakes
 * that writer, so larger reads mean fewer reads and fewer wake-ups. */
#define READ_MAX	(1 << 20)
/* A pipe we read or write (stdin, stdout, a command's) is grown to this
 * (best effort: F_SETPIPE_SZ, Linux 2.6.35; an unprivileged user may have
 * up to /proc/sys/fs/pipe-max-size, 1 MiB by default): with the default
 * 64 KiB, a writer faster than its reader blocks and is woken every
 * 64 KiB, a context switch each way. */
#define PIPE_SIZE	(1 << 20)
#define ABORT_LINGER_US	1000000	/* at most, after aborting */
#define ABORT_QUIET_US	100000	/* the peer silent this long: it heard us */
#define CMD_GRACE_US	2000000	/* a command's time to exit once the session is over */
#define WAIT_RECHECK_US	50000	/* how often a waiting session asks again */
/* A grown stdout: try to give its size back first after DRAIN_RETRY_US,
 * then twice as long each time up to DRAIN_RETRY_MAX_US, for as long as
 * its reader takes something within DRAIN_STALL_US. */
#define DRAIN_RETRY_US	2000
#define DRAIN_RETRY_MAX_US 100000
#define DRAIN_STALL_US	2000000

/* Where the peer's bytes go. */
struct out {
	int fd;			/* what we write to */
	int orig;		/* the descriptor we were given */
	bool own;		/* fd is a file description of our own */
	bool sock;		/* a socket: send with MSG_DONTWAIT */
	bool fifo;		/* a pipe we could not reopen: PIPE_BUF at a time */
};

static void
out_open(struct out *o, int fd)
{
	struct stat st;
	char path[64];
	int nfd;

	memset(o, 0, sizeof *o);
	o->fd = o->orig = fd;
	if (fstat(fd, &st) == -1)
		return;
	if (S_ISSOCK(st.st_mode)) {
		o->sock = true;
	} else if (S_ISFIFO(st.st_mode)) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		if ((nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
			/* No /proc, or no reader left: a write of PIPE_BUF
			 * bytes cannot block once poll says there is room. */
			o->fifo = true;
			return;
		}
		o->fd = nfd;
		o->own = true;
	}
}

/* Write what fits now: the count, or -1 with errno (EAGAIN: nothing fit). */
static ssize_t
out_write(const struct out *o, const void *buf, size_t len)
{
	if (o->sock)
		return send(o->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (o->fifo && len > PIPE_BUF)
		len = PIPE_BUF;
	return write(o->fd, buf, len);
}

/* Let go of the output, so whoever reads it sees end-of-file now, while
 * our other direction may still be running.  A standard descriptor stays
 * open, on /dev/null.  0, or -1 with errno when close(2) said that what
 * we wrote did not all get through (a full disk or quota on NFS, EIO):
 * the peer must hear of it.  Closing it ourselves, not dup2 over it,
 * is what lets close(2) say so. */
static int
out_close(struct out *o)
{
	int fd, ret = 0, e = 0;

	if (o->own && close(o->fd) == -1 && errno != EINTR) {
		ret = -1;
		e = errno;
	}
	if (close(o->orig) == -1 && errno != EINTR && ret == 0) {
		ret = -1;
		e = errno;
	}
	/* open(2) takes the lowest free descriptor: the one just closed. */
	if (o->orig <= 2 && (fd = open("/dev/null", O_WRONLY)) != -1 && fd != o->orig) {
		dup2(fd, o->orig);
		close(fd);
	}
	o->fd = o->orig = -1;
	o->own = false;
	errno = e;
	return ret;
}

static void
out_release(struct out *o)
{
	if (o->own)
		close(o->fd);
	o->own = false;
}

/* Why the peer closed: its own words when it gave them, else what its
 * code means. */
static const char *
close_reason(const struct stream *st)
{
	if (*stream_close_why(st) != '\0')
		return stream_close_why(st);
	switch (stream_close_code(st)) {
	case CLOSE_SIGNAL:
		return "the peer was interrupted";
	case CLOSE_IO:
		return "the peer's input or output failed";
	case CLOSE_BUSY:
		return "the listener is busy: it serves as many sessions as it may";
	default:
		return "the peer aborted";
	}
}

/* Abort the session with code and return status; why (or NULL) tells
 * the peer in words ("the peer could not write its output: ...").  The CLOSE may
 * be lost (the peer's socket full of our data): stay a little, answering
 * what still arrives with another CLOSE, until the peer falls silent. */
static int
abort_session(struct session *s, uint32_t code, const char *why, int status)
{
	uint64_t end = now_us() + ABORT_LINGER_US, quiet = 0, now;
	struct pollfd pfd;

	/* Once keyed, the peer can be told, even before it has proved its
	 * keys to us: it may have seen ours, and would wait for the data. */
	if (sess_stream(s) == NULL)
		return status;
	stream_abort_why(sess_stream(s), code, why);
	while ((now = now_us()) < end && sess_io(s, now) == 0) {
		uint64_t t = end;

		if (stream_can_close(sess_stream(s), now) && !(sess_events(s) & POLLOUT)) {
			if (quiet == 0)
				quiet = now + ABORT_QUIET_US;
			if (now >= quiet)
				break;
			t = quiet;
		}
		pfd.fd = sess_fd(s);
		pfd.events = sess_events(s);
		if (poll(&pfd, 1, timeout_ms(t, now)) > 0)
			quiet = 0;	/* the peer still talks */
	}
	return status;
}

int
pump_status(const struct session *s)
{
	switch (sess_error(s)) {
	case SESS_AUTH:
	case SESS_PASSPHRASE:
	case SESS_CANCELLED:
		return EXIT_AUTH;
	case SESS_MODE:
	case SESS_CONFIG:
		return EXIT_USAGE;
	}
	return sess_connected(s) ? EXIT_LOST : EXIT_NOCONN;
}

void
pump_report(struct session *s)
{
	struct stream_stats st;
	struct stream *str = sess_stream(s);

	if (str == NULL)
		return;
	stream_get_stats(str, &st);
	log_v(1, "sent %llu packets (%llu bytes retransmitted), received %llu; "
	    "rtt %.1f ms; payload %llu bytes a packet; %llu forged or replayed "
	    "packets dropped",
	    (unsigned long long)st.pkts_sent, (unsigned long long)st.bytes_retrans,
	    (unsigned long long)st.pkts_recv, st.srtt_us / 1000.0,
	    (unsigned long long)st.mtu, (unsigned long long)sess_dropped(s));
	if (st.dgrams_sent + st.dgrams_recv + st.dgrams_dropped > 0)
		log_v(1, "datagrams: %llu sent, %llu received, %llu dropped on "
		    "arrival", (unsigned long long)st.dgrams_sent,
		    (unsigned long long)st.dgrams_recv,
		    (unsigned long long)st.dgrams_dropped);
	/* -u is unreliable, but loss of our own making is not silent. */
	if (st.dgrams_dropped > 0)
		log_err("%llu of the peer's datagrams were dropped on arrival: "
		    "our output took them slower than they came",
		    (unsigned long long)st.dgrams_dropped);
	log_v(2, "reordering: %llu packets declared lost arrived after all, "
	    "overtaken by up to %llu; loss thresholds now %llu packets (0: "
	    "time only) and %llu/8 RTT",
	    (unsigned long long)st.pkts_spurious,
	    (unsigned long long)st.reorder_dist,
	    (unsigned long long)st.reorder_pkts,
	    (unsigned long long)st.reorder_time8);
}

/* The peer is gone or broke the protocol (stream error err, not
 * STREAM_OK, nor a CLOSE_DONE): say so; the exit status. */
static int
peer_gone(struct session *s, const struct pump_conf *c, int err)
{
	struct stream *st = sess_stream(s);

	if (err == STREAM_ABORTED) {
		log_err("%s", close_reason(st));
		return stream_close_code(st) == CLOSE_BUSY ? EXIT_NOCONN : EXIT_LOST;
	}
	if (err == STREAM_IDLE) {
		log_err("connection lost: nothing from the peer for %g s", c->idle_s);
		return EXIT_LOST;
	}
	log_err("connection failed: the peer broke the protocol");
	return abort_session(s, CLOSE_IO, NULL, EXIT_LOST);
}

/* A session's command (-e, -c), once it is running.  Its exit, not the
 * end of its stdout, ends what it sends: a child of its own may hold
 * that open.  Its exit status is what the peer learns of its data. */
struct cmd {
	struct exec_proc p;		/* p.pid -1: none; p.status once p.reaped */
	bool eof;			/* its stdout has ended, or it has exited
					   and nothing is left in the pipe */
	bool gone;			/* its stdin is closed: drop what comes */
};

/* Start the session's command, which takes the place of in_fd and
 * out_fd: 0, or -1 after printing why. */
static int
cmd_start(struct session *s, struct pump_conf *c, struct cmd *cmd)
{
	char fp[CRYPTO_FP_LEN + 1] = "";
	uint8_t pub[CRYPTO_KEY_LEN];
	struct exec_env env;

	if (sess_peer_key(s, pub) == 0)
		crypto_fingerprint(pub, fp);
	env.peer_name = c->peer_name ? c->peer_name : sess_peer_name(s);
	env.peer_key = fp;
	env.path = sess_relayed(s) ? "relayed" : "direct";
	if (exec_start(c->cmd, c->shell, &env, &cmd->p) == -1)
		return -1;
	log_v(1, "running `%s' for the session (pid %ld)", c->cmd, (long)cmd->p.pid);
	c->out_fd = cmd->p.to_fd;
	c->in_fd = cmd->p.from_fd;
	c->in_eof = &cmd->eof;
	c->keep_out = false;
	return 0;
}

/* Abort because our input or output failed (errno): say so here, and
 * tell the peer in words. */
static int
io_failed(struct session *s, const struct cmd *cmd, bool output)
{
	char why[STREAM_REASON_MAX + 1];
	int e = errno;

	if (output)
		log_errno(cmd->p.pid > 0 ? "the command's input" : "stdout");
	else
		log_errno(cmd->p.pid > 0 ? "the command's output" : "stdin");
	snprintf(why, sizeof why, "the peer could not %s: %s", output ?
	    (cmd->p.pid > 0 ? "write to its command" : "write its output") :
	    (cmd->p.pid > 0 ? "read its command's output" : "read its input"),
	    strerror(e));
	return abort_session(s, CLOSE_IO, why, EXIT_LOST);
}

/* The command ended badly: say how here and to the peer. */
static int
cmd_failed(struct session *s, const struct cmd *cmd)
{
	char how[64], why[STREAM_REASON_MAX + 1];

	exec_status(cmd->p.status, how, sizeof how);
	log_err("the command %s", how);
	snprintf(why, sizeof why, "the peer's command %s", how);
	return abort_session(s, CLOSE_IO, why, EXIT_LOST);
}

/* A pipe on stdin or stdout, grown while we use it: its descriptor and its
 * size before.  The size is the pipe's, shared with whoever else holds it:
 * it is given back as it was (shared descriptors are left as they were
 * found). */
struct grown {
	int fd, size;
	const char *what;	/* "stdin", "stdout" */
	/* stdout, while it drains: the least it held, since when, and
	 * how long until the next try */
	int least;
	uint64_t since, wait;
};

/* Grow the pipe on fd, if it is one (PIPE_SIZE).  One we were given is
 * noted in g, to be given its size back; a command's (ours: true) is
 * ours alone, and closed with it. */
static void
grow_pipe(int fd, bool ours, struct grown *g)
{
	struct stat st;
	int size;

	if (g->fd == -1 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
	    (size = fcntl(fd, F_GETPIPE_SZ)) > 0 && size < PIPE_SIZE &&
	    fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE) != -1 && !ours) {
		g->fd = fd;
		g->size = size;
	}
}

/* Give the pipe its size back: best effort, since the kernel refuses
 * (EBUSY) while it holds more than that size (its writer wrote on and
 * we read no more).  Then it stays larger: it holds the same data. */
static void
shrink_pipe(struct grown *g)
{
	/* Only the size we set: one set since is another's choice. */
	if (g->fd != -1 && fcntl(g->fd, F_GETPIPE_SZ) == PIPE_SIZE &&
	    fcntl(g->fd, F_SETPIPE_SZ, g->size) == -1)
		log_v(1, "cannot give the pipe on %s its size back (%d bytes): %s",
		    g->what, g->size, strerror(errno));
	g->fd = -1;
}

enum { DRAIN_DONE, DRAIN_WAIT, DRAIN_GONE };

/*
 * Give the pipe we write its size back, before we let go of it.  The
 * kernel refuses (EBUSY) while the pipe holds more than the old size, so
 * this waits for the reader to take all but that much, as the last write
 * into a pipe of that size would have: DRAIN_WAIT, try again at *next.
 * DRAIN_GONE: the reader is gone with more than that unread, which a
 * write into the old size would have found (EPIPE).  DRAIN_DONE: given
 * back, or given up on a reader that took nothing for DRAIN_STALL_US
 * (the pipe stays larger then, holding what it holds).  Progress is the
 * pipe holding less than it ever did since the wait began, so that
 * another writer on it does not keep us waiting.
 */
static int
give_back_out(struct grown *g, uint64_t now, uint64_t *next)
{
	struct pollfd p = { .fd = g->fd, .events = 0 };
	int q;

	if (g->fd == -1)
		return DRAIN_DONE;
	if (fcntl(g->fd, F_GETPIPE_SZ) != PIPE_SIZE ||
	    fcntl(g->fd, F_SETPIPE_SZ, g->size) != -1 || errno != EBUSY) {
		shrink_pipe(g);		/* says why, if it failed */
		return DRAIN_DONE;
	}
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) {
		shrink_pipe(g);
		return DRAIN_GONE;
	}
	if (ioctl(g->fd, FIONREAD, &q) == -1)
		q = INT_MAX;
	if (g->since == 0) {
		log_v(2, "waiting for the reader of stdout to take all but "
		    "%d of its %d bytes", g->size, q);
		g->wait = DRAIN_RETRY_US;
	}
	if (g->since == 0 || q < g->least) {
		g->least = q;
		g->since = now;
	} else if (now - g->since >= DRAIN_STALL_US) {
		log_v(1, "the reader of stdout took nothing for %g s: its "
		    "pipe stays %d bytes", DRAIN_STALL_US / 1e6, PIPE_SIZE);
		g->fd = -1;
		return DRAIN_DONE;
	}
	*next = now + g->wait;
	if ((g->wait *= 2) > DRAIN_RETRY_MAX_US)
		g->wait = DRAIN_RETRY_MAX_US;
	return DRAIN_WAIT;
}

/* The loop proper; pump_run opens and releases the output around it. */
static int
loop(struct session *s, struct pump_conf *c, struct out *out, struct cmd *cmd,
    struct progress *prog, struct grown *grown, struct grown *ogrown,
    uint64_t connect_deadline)
{
	static unsigned char inbuf[IOBUF], outbuf[IOBUF];
	size_t inlen = 0, inoff = 0, outlen = 0, outoff = 0, late = 0;
	/* What goes out next, outp[outoff..outlen): a datagram in outbuf,
	 * or (ring) bytes in the stream's buffer, taken as they are written. */
	const unsigned char *outp = outbuf;
	bool ring = false;
	const void *peek;
	bool wclosed = false, started = false, oclosed = false, written = false;
	bool granted = false, waited = false;
	struct stream *st = NULL;
	struct pollfd pfd[4];
	char desc[128];
	void *room;

	for (;;) {
		uint64_t now = now_us(), t;
		uint64_t drain_at = 0;
		int n, ip = -1, op = -1, xp = -1, code;

		/* Busy first: a listener that settled on another session
		 * then ends this one's process too. */
		if (c->busy && *c->busy) {
			log_v(1, "the listener serves another session: ending this one");
			return abort_session(s, CLOSE_BUSY, NULL, EXIT_NOCONN);
		}
		if (c->stop && *c->stop)
			return abort_session(s, CLOSE_SIGNAL, NULL, EXIT_SIGNAL + *c->stop);
		if (!sess_connected(s) && now >= connect_deadline) {
			log_err("could not reach the peer: no path answered within %g s",
			    c->wait_s);
			return EXIT_NOCONN;
		}
		if (sess_io(s, now) == -1)
			return pump_status(s);

		if (sess_connected(s)) {
			bool in_done, out_done;
			int err;

			st = sess_stream(s);
			if (!started) {
				started = true;
				log_v(1, "connected: %s", sess_describe(s, desc, sizeof desc));
			}
			if (!granted) {
				code = c->on_connect ? c->on_connect(c->ctx, s, c) : 0;
				if (code == PUMP_WAIT) {
					if (!waited)
						log_v(1, "waiting for the session before ours to end");
					waited = true;
					if ((err = stream_error(st)) != STREAM_OK)
						return peer_gone(s, c, err);
					goto wait;
				}
				if (code != 0)
					return abort_session(s, code, NULL, EXIT_NOCONN);
				granted = true;
				if (c->cmd && cmd_start(s, c, cmd) == -1)
					return abort_session(s, CLOSE_IO,
					    "could not start its command", EXIT_LOST);
				prog_start(prog, c->progress, c->progress_tty, now);
				if (!c->recv_only)
					grow_pipe(c->in_fd, cmd->p.pid > 0, grown);
				if (c->out_fd != out->orig) {
					out_release(out);
					out_open(out, c->out_fd);
				}
				/* Not with -k: stdout outlives the session. */
				if (!c->send_only && !c->keep_out && !out->sock)
					grow_pipe(out->orig, cmd->p.pid > 0, ogrown);
			}
			if (c->udp && inoff < inlen) {
				/* -u: one read, one datagram (reads are no longer). */
				if (stream_dgram_send(st, inbuf, inlen) != 0) {
					prog->sent += inlen;
					inoff = inlen;
				}
			}
			if ((*c->in_eof || c->recv_only) && inoff == inlen && !wclosed) {
				stream_close_write(st);
				wclosed = true;
			}
			if (c->udp && outoff == outlen) {
				ssize_t d = stream_dgram_recv(st, outbuf, sizeof outbuf);

				outp = outbuf;
				ring = false;
				outoff = 0;
				outlen = d > 0 ? (size_t)d : 0;
				if (c->send_only)
					outlen = 0;
				/* After the end of the peer's data, which it sent
				 * after its last datagram: one the network held
				 * back has nowhere to go (with -k, stdout is the
				 * next session's). */
				if (d >= 0 && (oclosed || written)) {
					outlen = 0;
					if (late++ == 0)
						log_v(1, "a datagram came after the end of "
						    "the peer's data: dropped");
				}
			}
			/* Bytes are written out from where the stream keeps
			 * them: a copy of everything received is the cost of
			 * a bounce buffer. */
			while (outoff == outlen && (outlen = stream_read_peek(st, &peek)) > 0) {
				outp = peek;
				ring = true;
				outoff = 0;
				if (!c->send_only && !cmd->gone)
					break;
				/* --send-only, or the command stopped reading:
				 * received data is dropped. */
				stream_read_done(st, outlen);
				outlen = 0;
			}
			if (outlen == 0)
				outoff = 0;
			in_done = c->send_only || (stream_eof(st) && outoff == outlen);
			/* With -k, stdout carries one session after another:
			 * it stays open, and every write having worked is
			 * all there is to tell. */
			if (in_done && !oclosed && !c->send_only && !c->keep_out) {
				code = give_back_out(ogrown, now, &drain_at);
				if (code == DRAIN_WAIT) {
					in_done = false;	/* not yet */
				} else if (code == DRAIN_GONE) {
					errno = EPIPE;
					return io_failed(s, cmd, true);
				} else {
					oclosed = true;
					if (out_close(out) == -1)
						return io_failed(s, cmd, true);
				}
			}
			/* A command that failed ends the session, whether
			 * the peer's data has ended or not (the rest would go
			 * nowhere, and a peer at a terminal would wait for
			 * nothing): what it wrote reaches the peer first,
			 * then the failure.  Its exit is learnt from its
			 * pidfd, in the poll below. */
			if (cmd->p.reaped && cmd->p.status != 0) {
				if (wclosed && stream_send_done(st))
					return cmd_failed(s, cmd);
			} else if (in_done && !written && !c->send_only &&
			    (cmd->p.pid <= 0 || cmd->p.reaped)) {
				/* The peer's bytes are delivered: tell it
				 * (WRITTEN).  A command's input is delivered
				 * when it has exited well: what it did not
				 * read, it chose not to, as head(1) does. */
				stream_written(st);
				written = true;
			}
			/* Ours are, once the peer said so. */
			out_done = wclosed && stream_send_done(st) && stream_peer_written(st);
			err = stream_error(st);
			if (err == STREAM_ABORTED && stream_close_code(st) == CLOSE_DONE) {
				/* A --send-only peer is done: all it sent is
				 * here, only our output may still be draining. */
				if (in_done)
					return EXIT_OK;
				if (outoff == outlen && !stream_eof(st)) {
					log_err("the peer closed before its data ended");
					return EXIT_LOST;
				}
			} else if (err != STREAM_OK) {
				return peer_gone(s, c, err);
			} else if (in_done && c->send_only && out_done) {
				/* Tell the peer we are gone, not lost. */
				stream_abort(st, CLOSE_DONE);
			} else if (in_done && out_done && stream_can_close(st, now)) {
				return EXIT_OK;
			}
			if (c->send_only && out_done && stream_can_close(st, now))
				return EXIT_OK;
		}

wait:
		n = 0;
		pfd[n].fd = sess_fd(s);
		pfd[n].events = sess_events(s);
		n++;
		if (granted && !*c->in_eof && !c->recv_only && inoff == inlen &&
		    (c->udp || stream_write_room(st, &room) > 0)) {
			pfd[n].fd = c->in_fd;
			pfd[n].events = POLLIN;
			ip = n++;
		}
		if (granted && outoff < outlen) {
			pfd[n].fd = out->fd;
			pfd[n].events = POLLOUT;
			op = n++;
		}
		/* Waiting for the command to exit, which may come before the
		 * end of its stdout, and is the end of its input's. */
		if (cmd->p.pid > 0 && !cmd->p.reaped) {
			pfd[n].fd = cmd->p.pidfd;
			pfd[n].events = POLLIN;
			xp = n++;
		}
		t = sess_deadline(s);
		if (!sess_connected(s) && connect_deadline < t)
			t = connect_deadline;
		if (waited && !granted && now_us() + WAIT_RECHECK_US < t)
			t = now_us() + WAIT_RECHECK_US;
		if (granted && prog_tick(prog, now_us()) < t)
			t = prog->next;
		if (drain_at != 0 && drain_at < t)
			t = drain_at;
		if (poll(pfd, n, timeout_ms(t, now_us())) == -1) {
			if (errno == EINTR)
				continue;
			log_errno("poll");
			return abort_session(s, CLOSE_IO, NULL, EXIT_LOST);
		}
		if (xp != -1 && pfd[xp].revents)
			exec_poll(&cmd->p);
		/* Once the command has exited, its pipe is read until it is
		 * empty (non-blocking), whoever else still holds it.  A byte
		 * stream is read straight into the stream's buffer: a copy of
		 * everything sent is the cost of a bounce buffer. */
		if (ip != -1 && (pfd[ip].revents || cmd->p.reaped)) {
			size_t len = c->udp ? stream_dgram_max(st) :
			    stream_write_room(st, &room), max = c->udp ? IOBUF : READ_MAX;
			ssize_t r = read(c->in_fd, c->udp ? inbuf : room, len < max ? len : max);

			if (r > 0 && !c->udp) {
				stream_wrote(st, r);
				prog->sent += r;
			} else if (r > 0) {
				inlen = r;
				inoff = 0;
			} else if (r == 0 || (errno == EAGAIN && cmd->p.reaped)) {
				*c->in_eof = true;
			} else if (errno != EINTR && errno != EAGAIN) {
				return io_failed(s, cmd, false);
			}
		}
		if (op != -1 && pfd[op].revents) {
			size_t max = out->own || out->sock ? WRITE_MAX : IOBUF;
			ssize_t w = out_write(out, outp + outoff,
			    outlen - outoff < max ? outlen - outoff : max);

			if (w > 0) {
				outoff += w;
				prog->recv += w;
				if (ring)
					stream_read_done(st, w);
			} else if (w < 0 && errno == EPIPE && cmd->p.pid > 0) {
				/* The command is done with its input, as
				 * `head' is: not an error, the rest goes. */
				cmd->gone = true;
				outoff = outlen = 0;
			} else if (w < 0 && errno != EINTR && errno != EAGAIN) {
				return io_failed(s, cmd, true);
			}
		}
	}
}

int
pump_run(struct session *s, struct pump_conf *c, uint64_t connect_deadline)
{
	struct cmd cmd = { .p = { .pid = -1, .pidfd = -1, .to_fd = -1, .from_fd = -1 } };
	struct progress prog = { .start = 0 };
	struct grown grown = { .fd = -1, .what = "stdin" };
	struct grown ogrown = { .fd = -1, .what = "stdout" };
	struct out out;
	int ret;

	out_open(&out, c->out_fd);
	ret = loop(s, c, &out, &cmd, &prog, &grown, &ogrown, connect_deadline);
	shrink_pipe(&grown);
	shrink_pipe(&ogrown);	/* a session that ended early: one try */
	if (prog.start != 0)
		prog_end(&prog, now_us());
	if (cmd.p.pid > 0) {
		/* Its input ends, then it has a moment to exit after a
		 * session that went well; else it is stopped at once, with
		 * what it started. */
		if (out.fd != -1)
			out_close(&out);
		out_release(&out);
		cmd.p.to_fd = -1;	/* out_close closed it */
		exec_reap(&cmd.p, ret == EXIT_OK ? CMD_GRACE_US : 0);
	} else {
		out_release(&out);
	}
	sess_linger(s);
	return ret;
}
