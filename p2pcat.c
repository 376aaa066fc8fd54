/*
 * p2pcat: netcat for hosts behind NAT.
 *
 * This file holds the options, the exit status and the event loop that
 * moves stdin to the peer and the peer's bytes to stdout.  The rendezvous
 * is in signal.c, the path in session.c and punch.c, the byte stream in
 * stream.c.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "session.h"
#include "signal.h"
#include "stream.h"
#include "util.h"

#define P2PCAT_VERSION	"0.1"

/* Exit status: documented in p2pcat(1), EXIT STATUS. */
#define EXIT_OK		0	/* both directions delivered */
#define EXIT_USAGE	1	/* bad option or configuration */
#define EXIT_NOCONN	2	/* could not connect */
#define EXIT_LOST	3	/* connection lost, or the peer aborted */
#define EXIT_SIGNAL	128	/* + the signal: interrupted */

/* CLOSE codes on the wire. */
#define CLOSE_DONE	0	/* --send-only finished: bye */
#define CLOSE_SIGNAL	1	/* the user interrupted the peer */
#define CLOSE_IO	2	/* the peer's stdin or stdout failed */

#define DEF_WAIT_S	30.0	/* -w */
#define DEF_IDLE_S	30.0	/* --idle */
#define KEEPALIVE_US	15000000	/* well inside common NAT timeouts (30 s) */
#define IOBUF		65536
#define SNDBUF		(8 << 20)
#define RCVBUF		(16 << 20)

struct opts {
	bool listen, keep, send_only, recv_only;
	int verbose, port;
	double wait_s, idle_s, poll_s;
	const char *peer;		/* caller: whom to call; listener: our name */
	char *signal;			/* rendezvous URL */
	char *name;			/* from P2PCAT_NAME or the config */
	char *api_key_file;
};

static volatile sig_atomic_t stop_sig;
static bool stdin_eof;			/* stays at EOF across -k sessions */
static int stdout_flags = -1;		/* restored at exit */

static void __attribute__((noreturn))
usage(int status)
{
	FILE *f = status ? stderr : stdout;

	fprintf(f,
	    "usage: p2pcat [-v] [-p port] [-S url] [-w secs] [--idle secs]\n"
	    "              [--recv-only | --send-only] peer\n"
	    "       p2pcat -l [-kv] [-p port] [-S url] [-w secs] [--idle secs]\n"
	    "              [--poll secs] [--recv-only | --send-only] [name]\n"
	    "       p2pcat -h | --version\n");
	exit(status);
}

static void
on_signal(int sig)
{
	stop_sig = sig;
}

/* Seconds in [lo, hi], fractions allowed; -1 after printing why. */
static double
parse_secs(const char *what, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno || !isfinite(v) || v < lo || v > hi) {
		log_err("bad %s `%s': want seconds from %g to %g", what, s, lo, hi);
		return -1;
	}
	return v;
}

static int
parse_port(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v < 0 || v > 65535) {
		log_err("bad port `%s'", s);
		return -1;
	}
	return (int)v;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		log_errno("strdup");
		exit(EXIT_USAGE);
	}
	return p;
}

/* Settings given on the command line, which beat the environment and the
 * config file. */
struct given {
	bool signal, wait, idle, poll, port;
};

/* Apply one config file setting unless the command line gave it; 0 or -1. */
static int
config_set(struct opts *o, const struct given *g, const char *key, const char *val)
{
	double v;

	if (strcmp(key, "name") == 0) {
		if (o->name == NULL)
			o->name = xstrdup(val);
	} else if (strcmp(key, "signal") == 0) {
		if (o->signal == NULL)
			o->signal = xstrdup(val);
	} else if (strcmp(key, "api-key-file") == 0) {
		if (o->api_key_file == NULL)
			o->api_key_file = xstrdup(val);
	} else if (strcmp(key, "wait") == 0) {
		if ((v = parse_secs("wait", val, 0.1, 86400)) < 0)
			return -1;
		if (!g->wait)
			o->wait_s = v;
	} else if (strcmp(key, "idle") == 0) {
		if ((v = parse_secs("idle", val, 1, 86400)) < 0)
			return -1;
		if (!g->idle)
			o->idle_s = v;
	} else if (strcmp(key, "poll") == 0) {
		if ((v = parse_secs("poll", val, 0.01, 3600)) < 0)
			return -1;
		if (!g->poll)
			o->poll_s = v;
	} else if (strcmp(key, "port") == 0) {
		int p = parse_port(val);

		if (p < 0)
			return -1;
		if (!g->port)
			o->port = p;
	} else {
		log_err("unknown setting `%s'", key);
		return -1;
	}
	return 0;
}

/* Read $XDG_CONFIG_HOME/p2pcat/config (or ~/.config/...): lines of
 * `key = value', `#' comments.  A missing file is fine; 0 or -1. */
static int
read_config(struct opts *o, const struct given *g)
{
	char path[PATH_MAX], line[1024];
	const char *base = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int lineno = 0, ret = 0;
	FILE *f;

	if (base && *base == '/')
		snprintf(path, sizeof path, "%s/p2pcat/config", base);
	else if (home && *home == '/')
		snprintf(path, sizeof path, "%s/.config/p2pcat/config", home);
	else
		return 0;
	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		log_errno("cannot read `%s'", path);
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *k = line, *eq, *v, *e;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			log_err("%s:%d: line too long", path, lineno);
			ret = -1;
			break;
		}
		while (*k == ' ' || *k == '\t')
			k++;
		if (*k == '#' || *k == '\n' || *k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			log_err("%s:%d: want `key = value'", path, lineno);
			ret = -1;
			break;
		}
		for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && strchr(" \t\r\n", e[-1]); e--)
			;
		*e = '\0';
		if (config_set(o, g, k, v) == -1) {
			log_err("in %s:%d", path, lineno);
			ret = -1;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* The environment, then the config file, fill what the command line left. */
static int
settle(struct opts *o, const struct given *g)
{
	const char *e;

	if (o->signal == NULL && (e = getenv("P2PCAT_SIGNAL")) != NULL && *e)
		o->signal = xstrdup(e);
	if ((e = getenv("P2PCAT_NAME")) != NULL && *e)
		o->name = xstrdup(e);
	if (read_config(o, g) == -1)
		return -1;
	if (o->signal == NULL)
		o->signal = xstrdup("dir:");
	return 0;
}

/* Make sure fds 0-2 are open, so no socket or file of ours becomes one. */
static void
sanitize_fds(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

/* A pipe or socket on stdout goes non-blocking, so a slow reader cannot
 * stall the loop (and with it our acknowledgements); restored at exit. */
static void
stdout_nonblock(void)
{
	struct stat st;

	if (fstat(1, &st) == -1 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return;
	if ((stdout_flags = fcntl(1, F_GETFL)) != -1)
		fcntl(1, F_SETFL, stdout_flags | O_NONBLOCK);
}

static void
stdout_restore(void)
{
	if (stdout_flags != -1)
		fcntl(1, F_SETFL, stdout_flags);
	stdout_flags = -1;
}

/* The peer's data has ended: let go of stdout, so whoever reads it sees
 * end-of-file now, while our other direction may still be running.  fd 1
 * stays open on /dev/null. */
static void
stdout_close(void)
{
	int fd;

	stdout_restore();
	if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		return;
	dup2(fd, 1);
	close(fd);
}

static uint64_t
secs_us(double s)
{
	return (uint64_t)(s * 1e6);
}

/* The poll timeout to reach deadline t (µs) from now, rounded up. */
static int
timeout_ms(uint64_t t, uint64_t now)
{
	if (t == UINT64_MAX)
		return -1;
	if (t <= now)
		return 0;
	return (t - now + 999) / 1000 > INT_MAX ? INT_MAX : (int)((t - now + 999) / 1000);
}

static const char *
close_reason(uint32_t code)
{
	switch (code) {
	case CLOSE_SIGNAL:
		return "the peer was interrupted";
	case CLOSE_IO:
		return "the peer's input or output failed";
	default:
		return "the peer aborted";
	}
}

/* Abort the session with code, give the CLOSE a chance to leave, and
 * return status. */
static int
abort_session(struct session *s, uint32_t code, int status)
{
	if (sess_connected(s)) {
		stream_abort(sess_stream(s), code);
		sess_io(s, now_us());
	}
	return status;
}

/*
 * The session's event loop, after nc's readwrite(): one buffer per
 * direction, poll(2) on stdin, stdout and the socket, the timeout is the
 * next deadline.  Returns the exit status.
 */
static int
run(struct session *s, const struct opts *o, uint64_t connect_deadline)
{
	static unsigned char inbuf[IOBUF], outbuf[IOBUF];
	size_t inlen = 0, inoff = 0, outlen = 0, outoff = 0;
	bool wclosed = false, started = false, oclosed = false;
	struct stream *st = NULL;
	struct pollfd pfd[3];
	char desc[128];

	for (;;) {
		uint64_t now = now_us(), t;
		int n, ip = -1, op = -1, sp;

		if (stop_sig)
			return abort_session(s, CLOSE_SIGNAL, EXIT_SIGNAL + stop_sig);
		if (!sess_connected(s) && now >= connect_deadline) {
			log_err("could not reach the peer: no path answered within %g s",
			    o->wait_s);
			return EXIT_NOCONN;
		}
		if (sess_io(s, now) == -1)
			return sess_connected(s) ? EXIT_LOST : EXIT_NOCONN;

		if (sess_connected(s)) {
			bool in_done, out_done;
			int err;

			st = sess_stream(s);
			if (!started) {
				started = true;
				log_v(1, "connected: %s", sess_describe(s, desc, sizeof desc));
			}
			while (inoff < inlen) {
				size_t w = stream_write(st, inbuf + inoff, inlen - inoff);

				if (w == 0)
					break;
				inoff += w;
			}
			if ((stdin_eof || o->recv_only) && inoff == inlen && !wclosed) {
				stream_close_write(st);
				wclosed = true;
			}
			while (outoff == outlen && (outlen = stream_read(st, outbuf, sizeof outbuf)) > 0) {
				outoff = 0;
				if (!o->send_only)
					break;
				outlen = 0;	/* --send-only: received data is dropped */
			}
			if (outlen == 0)
				outoff = 0;
			in_done = o->send_only || (stream_eof(st) && outoff == outlen);
			/* With -k, stdout carries one session after another. */
			if (in_done && !oclosed && !o->send_only && !o->keep) {
				stdout_close();
				oclosed = true;
			}
			out_done = wclosed && stream_send_done(st);
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
			} else if (err == STREAM_ABORTED) {
				log_err("%s", close_reason(stream_close_code(st)));
				return EXIT_LOST;
			} else if (err == STREAM_IDLE) {
				log_err("connection lost: nothing from the peer for %g s", o->idle_s);
				return EXIT_LOST;
			} else if (err != STREAM_OK) {
				log_err("connection failed: the peer broke the protocol");
				return abort_session(s, CLOSE_IO, EXIT_LOST);
			} else if (in_done && o->send_only && out_done) {
				/* Tell the peer we are gone, not lost. */
				stream_abort(st, CLOSE_DONE);
			} else if (in_done && out_done && stream_can_close(st, now)) {
				return EXIT_OK;
			}
			if (o->send_only && out_done && stream_can_close(st, now))
				return EXIT_OK;
		}

		n = 0;
		pfd[n].fd = sess_fd(s);
		pfd[n].events = sess_events(s);
		sp = n++;
		if (st && !stdin_eof && !o->recv_only && inoff == inlen) {
			pfd[n].fd = 0;
			pfd[n].events = POLLIN;
			ip = n++;
		}
		if (st && outoff < outlen) {
			pfd[n].fd = 1;
			pfd[n].events = POLLOUT;
			op = n++;
		}
		t = sess_deadline(s);
		if (!sess_connected(s) && connect_deadline < t)
			t = connect_deadline;
		if (poll(pfd, n, timeout_ms(t, now_us())) == -1) {
			if (errno == EINTR)
				continue;
			log_errno("poll");
			return abort_session(s, CLOSE_IO, EXIT_LOST);
		}
		(void)sp;
		if (ip != -1 && pfd[ip].revents) {
			ssize_t r = read(0, inbuf, sizeof inbuf);

			if (r > 0) {
				inlen = r;
				inoff = 0;
			} else if (r == 0) {
				stdin_eof = true;
			} else if (errno != EINTR && errno != EAGAIN) {
				log_errno("stdin");
				return abort_session(s, CLOSE_IO, EXIT_LOST);
			}
		}
		if (op != -1 && pfd[op].revents) {
			ssize_t w = write(1, outbuf + outoff, outlen - outoff);

			if (w > 0) {
				outoff += w;
			} else if (w < 0 && errno != EINTR && errno != EAGAIN) {
				log_errno("stdout");
				return abort_session(s, CLOSE_IO, EXIT_LOST);
			}
		}
	}
}

static struct stream_conf
stream_conf(const struct opts *o)
{
	struct stream_conf c = {
		.mtu = 0,
		.sndbuf = SNDBUF,
		.rcvbuf = RCVBUF,
		.keepalive_us = KEEPALIVE_US,
		.idle_us = secs_us(o->idle_s),
	};

	return c;
}

static void
report_counts(const struct sig *sig)
{
	unsigned long r, w;

	sig_counts(sig, &r, &w);
	log_v(1, "rendezvous: %lu reads, %lu writes", r, w);
}

static int
caller(const struct opts *o, struct sig *sig)
{
	struct sess_conf sc = { .caller = true, .port = o->port, .stream = stream_conf(o) };
	unsigned char blob[SIG_MAX_BLOB], rnd[SIG_ID_LEN / 2];
	uint64_t deadline = now_us() + secs_us(o->wait_s);
	uint64_t expire = unix_ms() + (uint64_t)(o->wait_s * 1000);
	char id[SIG_ID_LEN + 1];
	struct session *s;
	struct sig_msg *ans = NULL;
	int ret = EXIT_NOCONN, r;
	size_t len;

	if ((s = sess_new(&sc)) == NULL)
		return EXIT_NOCONN;
	if ((ans = malloc(sizeof *ans)) == NULL) {
		log_errno("malloc");
		goto out;
	}
	len = sess_blob(s, blob, sizeof blob);
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(id, sizeof id, rnd, sizeof rnd);
	if (sig_offer(sig, o->peer, id, blob, len, expire) == -1)
		goto out;
	log_v(1, "offer %s posted to `%s'", id, o->peer);
	r = sig_wait_answer(sig, o->peer, id, ans, expire);
	sig_withdraw(sig, o->peer, id);
	if (stop_sig) {
		ret = EXIT_SIGNAL + stop_sig;
		goto out;
	}
	if (r == 1) {
		log_err("no answer from `%s' within %g s", o->peer, o->wait_s);
		goto out;
	}
	if (r == -1 || sess_start(s, ans->blob, ans->len) == -1)
		goto out;
	ret = run(s, o, deadline);
out:
	report_counts(sig);
	free(ans);
	sess_free(s);
	return ret;
}

static int
listener(const struct opts *o, struct sig *sig)
{
	struct sess_conf sc = { .caller = false, .port = o->port, .stream = stream_conf(o) };
	unsigned char blob[SIG_MAX_BLOB];
	struct sig_msg *offer;
	int ret = EXIT_NOCONN;

	if ((offer = malloc(sizeof *offer)) == NULL) {
		log_errno("malloc");
		return EXIT_NOCONN;
	}
	for (;;) {
		struct session *s;
		size_t len;
		int r;

		if ((s = sess_new(&sc)) == NULL)
			break;
		len = sess_blob(s, blob, sizeof blob);
		log_v(1, "listening as `%s'", o->peer);
		r = sig_wait_offer(sig, o->peer, offer, UINT64_MAX);
		if (stop_sig || r != 0) {
			ret = stop_sig ? EXIT_SIGNAL + stop_sig : EXIT_NOCONN;
			sess_free(s);
			break;
		}
		log_v(1, "offer %s received", offer->id);
		if (sess_start(s, offer->blob, offer->len) == -1) {
			log_err("ignoring offer %s", offer->id);
			sess_free(s);
			continue;
		}
		if (sig_answer(sig, o->peer, offer->id, blob, len,
		    unix_ms() + (uint64_t)(o->wait_s * 1000)) == -1) {
			sess_free(s);
			continue;
		}
		ret = run(s, o, now_us() + secs_us(o->wait_s));
		sig_unanswer(sig, o->peer, offer->id);
		report_counts(sig);
		sess_free(s);
		if (stop_sig)
			break;
		/* A caller that never arrived is no session served. */
		if (ret == EXIT_NOCONN) {
			log_err("the caller of offer %s did not connect", offer->id);
			continue;
		}
		if (!o->keep)
			break;
	}
	free(offer);
	return ret;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help",	no_argument,		NULL, 'h' },
		{ "idle",	required_argument,	NULL, 'I' },
		{ "keep-open",	no_argument,		NULL, 'k' },
		{ "listen",	no_argument,		NULL, 'l' },
		{ "poll",	required_argument,	NULL, 'P' },
		{ "port",	required_argument,	NULL, 'p' },
		{ "recv-only",	no_argument,		NULL, 'R' },
		{ "send-only",	no_argument,		NULL, 'T' },
		{ "signal",	required_argument,	NULL, 'S' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "wait",	required_argument,	NULL, 'w' },
		{ NULL,		0,			NULL, 0 }
	};
	struct opts o = { .wait_s = DEF_WAIT_S, .idle_s = DEF_IDLE_S };
	struct given g = { 0 };
	struct sig_opts so = { 0 };
	struct sigaction sa;
	struct sig *sig;
	int ch, ret;

	sanitize_fds();
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "hklp:S:vw:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(EXIT_OK);
		case 'I':
			if ((o.idle_s = parse_secs("idle timeout", optarg, 1, 86400)) < 0)
				return EXIT_USAGE;
			g.idle = true;
			break;
		case 'k':
			o.keep = true;
			break;
		case 'l':
			o.listen = true;
			break;
		case 'P':
			if ((o.poll_s = parse_secs("poll interval", optarg, 0.01, 3600)) < 0)
				return EXIT_USAGE;
			g.poll = true;
			break;
		case 'p':
			if ((o.port = parse_port(optarg)) < 0)
				return EXIT_USAGE;
			g.port = true;
			break;
		case 'R':
			o.recv_only = true;
			break;
		case 'S':
			free(o.signal);
			o.signal = xstrdup(optarg);
			g.signal = true;
			break;
		case 'T':
			o.send_only = true;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'V':
			printf("p2pcat %s\n", P2PCAT_VERSION);
			return EXIT_OK;
		case 'w':
			if ((o.wait_s = parse_secs("wait", optarg, 0.1, 86400)) < 0)
				return EXIT_USAGE;
			g.wait = true;
			break;
		default:
			usage(EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	log_verbose = o.verbose;

	if (argc > 1)
		usage(EXIT_USAGE);
	if (o.send_only && o.recv_only) {
		log_err("--send-only and --recv-only exclude each other");
		return EXIT_USAGE;
	}
	if (!o.listen && (o.keep || g.poll)) {
		log_err("%s goes with -l", o.keep ? "-k" : "--poll");
		return EXIT_USAGE;
	}
	if (settle(&o, &g) == -1)
		return EXIT_USAGE;
	if (argc == 1)
		o.peer = argv[0];
	else if (o.listen && o.name)
		o.peer = o.name;
	else if (o.listen) {
		log_err("no name to listen as: give one, or set P2PCAT_NAME or `name' in the config");
		return EXIT_USAGE;
	} else
		usage(EXIT_USAGE);
	if (!sig_valid_name(o.peer)) {
		log_err("bad peer name `%s': want 1-%d of A-Z a-z 0-9 . _ -, not starting with `.'",
		    o.peer, SIG_MAX_NAME);
		return EXIT_USAGE;
	}
	if (sodium_init() < 0) {
		log_err("cannot initialise libsodium");
		return EXIT_USAGE;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	so.verbose = o.verbose;
	so.poll_ms = (unsigned)(o.poll_s * 1000);
	so.stop = &stop_sig;
	so.api_key_file = o.api_key_file;
	if ((sig = sig_open(o.signal, &so)) == NULL)
		return EXIT_USAGE;
	stdout_nonblock();
	ret = o.listen ? listener(&o, sig) : caller(&o, sig);
	stdout_restore();
	sig_close(sig);
	free(o.signal);
	free(o.name);
	free(o.api_key_file);
	return ret;
}
