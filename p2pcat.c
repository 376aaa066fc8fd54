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

#include "crypto.h"
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
#define EXIT_AUTH	4	/* the peer's key is not the one we trust */
#define EXIT_SIGNAL	128	/* + the signal: interrupted */

/* CLOSE codes on the wire. */
#define CLOSE_DONE	0	/* --send-only finished: bye */
#define CLOSE_SIGNAL	1	/* the user interrupted the peer */
#define CLOSE_IO	2	/* the peer's stdin or stdout failed */

#define DEF_WAIT_S	30.0	/* -w */
#define DEF_IDLE_S	30.0	/* --idle */
#define KEEPALIVE_US	15000000	/* well inside common NAT timeouts (30 s) */
#define IOBUF		65536
#define ABORT_LINGER_US	1000000	/* at most, after aborting */
#define ABORT_QUIET_US	100000	/* the peer silent this long: it heard us */
#define SECRET_MAX	1024
#define SNDBUF		(8 << 20)
#define RCVBUF		(16 << 20)

struct opts {
	bool listen, keep, send_only, recv_only, show_id, udp;
	int verbose, port;
	double wait_s, idle_s, poll_s;
	const char *peer;		/* caller: whom to call; listener: our name */
	char *signal;			/* rendezvous URL */
	char *name;			/* from P2PCAT_NAME or the config */
	char *api_key_file;
	int nstun;
	char *stun[PUNCH_MAX_STUN];	/* --stun HOST:PORT, repeatable */
	char *turn;			/* --turn turn://USER:PASS@HOST:PORT */
	const char *peer_key;		/* --peer-key: the key the peer must have */
	const char *allow;		/* --allow: file of callers' keys */
	const char *secret_file;	/* --secret-file */
	char *secret;			/* passphrase mode */
	size_t secretlen;
	int cipher;			/* P2PCAT_CIPHER; 0: the fastest both have */
};

static volatile sig_atomic_t stop_sig;
static bool stdin_eof;			/* stays at EOF across -k sessions */
static int stdout_flags = -1;		/* restored at exit */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: p2pcat [-uv] [-p port] [-S url] [-w secs] [--idle secs]\n"
	    "              [--stun host:port] [--turn url] [--peer-key key]\n"
	    "              [--secret-file file] [--recv-only | --send-only] peer\n"
	    "       p2pcat -l [-kuv] [-p port] [-S url] [-w secs] [--idle secs]\n"
	    "              [--stun host:port] [--turn url] [--poll secs]\n"
	    "              [--allow file] [--secret-file file]\n"
	    "              [--recv-only | --send-only] [name]\n"
	    "       p2pcat --id\n"
	    "       p2pcat -h | --version\n");
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
	bool signal, wait, idle, poll, port, stun, turn;
};

/* Add a STUN server; 0 or -1. */
static int
add_stun(struct opts *o, const char *hostport)
{
	if (o->nstun == PUNCH_MAX_STUN) {
		log_err("at most %d STUN servers", PUNCH_MAX_STUN);
		return -1;
	}
	o->stun[o->nstun++] = xstrdup(hostport);
	return 0;
}

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
	} else if (strcmp(key, "stun") == 0) {
		if (!g->stun && add_stun(o, val) == -1)
			return -1;
	} else if (strcmp(key, "turn") == 0) {
		if (!g->turn && o->turn == NULL)
			o->turn = xstrdup(val);
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
/* $XDG_CONFIG_HOME/p2pcat/file (or ~/.config/...) into buf: 0, or -1
 * when neither is set. */
static int
config_path(char *buf, size_t size, const char *file)
{
	const char *base = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (base && *base == '/')
		n = snprintf(buf, size, "%s/p2pcat/%s", base, file);
	else if (home && *home == '/')
		n = snprintf(buf, size, "%s/.config/p2pcat/%s", home, file);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static int
read_config(struct opts *o, const struct given *g)
{
	char path[PATH_MAX], line[1024];
	int lineno = 0, ret = 0;
	FILE *f;

	if (config_path(path, sizeof path, "config") == -1)
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
settle(struct opts *o, struct given *g)
{
	const char *e;

	if (o->signal == NULL && (e = getenv("P2PCAT_SIGNAL")) != NULL && *e)
		o->signal = xstrdup(e);
	if ((e = getenv("P2PCAT_NAME")) != NULL && *e)
		o->name = xstrdup(e);
	if (o->turn == NULL && (e = getenv("P2PCAT_TURN")) != NULL && *e) {
		o->turn = xstrdup(e);
		g->turn = true;
	}
	if ((e = getenv("P2PCAT_CIPHER")) != NULL && *e) {
		if (strcmp(e, "chacha20-poly1305") == 0) {
			o->cipher = CRYPTO_CHACHAPOLY;
		} else if (strcmp(e, "aes256-gcm") == 0) {
			o->cipher = CRYPTO_AESGCM;
			if (!crypto_cipher_available(o->cipher)) {
				log_err("P2PCAT_CIPHER is aes256-gcm, but this CPU has no AES instructions");
				return -1;
			}
		} else {
			log_err("bad P2PCAT_CIPHER `%s' (chacha20-poly1305 or aes256-gcm)", e);
			return -1;
		}
	}
	if (read_config(o, g) == -1)
		return -1;
	if (o->signal == NULL)
		o->signal = xstrdup("dir:");
	return 0;
}

/* The passphrase from --secret-file (a private file) or P2PCAT_SECRET; a
 * trailing newline is not part of it.  0 or -1. */
static int
read_secret(struct opts *o)
{
	const char *env = getenv("P2PCAT_SECRET");
	char buf[SECRET_MAX + 2];
	long n;
	int ret = -1;

	if (o->secret_file == NULL) {
		if (env == NULL || *env == '\0')
			return 0;
		if (strlen(env) > SECRET_MAX) {
			log_err("P2PCAT_SECRET is longer than %d bytes", SECRET_MAX);
			return -1;
		}
		o->secret = xstrdup(env);
		o->secretlen = strlen(env);
		return 0;
	}
	n = util_read_private(o->secret_file, "secret file", buf, sizeof buf);
	if (n > 0 && (o->secret = malloc(n + 1)) == NULL)
		log_errno("malloc");
	else if (n > 0) {
		memcpy(o->secret, buf, n + 1);
		o->secretlen = n;
		ret = 0;
	}
	sodium_memzero(buf, sizeof buf);
	return ret;
}

/* Whether file (an --allow list: one key or fingerprint a line, `#'
 * comments) names pub: 1 yes, 0 no, -1 unreadable. */
static int
allowed(const char *file, const uint8_t pub[CRYPTO_KEY_LEN])
{
	char line[256];
	int found = 0;
	FILE *f;

	if ((f = fopen(file, "re")) == NULL) {
		log_errno("cannot read `%s'", file);
		return -1;
	}
	while (!found && fgets(line, sizeof line, f) != NULL) {
		char *k = line + strspn(line, " \t");

		k[strcspn(k, " \t\r\n#")] = '\0';
		found = *k && crypto_key_matches(k, pub);
	}
	fclose(f);
	return found;
}

/* known_peers: `name key' lines.  Whether name is known there: 1 with its
 * key text in key, 0 not known, -1 unreadable. */
static int
known_lookup(const char *path, const char *name, char key[CRYPTO_KEY_B64_LEN + 1])
{
	char line[512];
	int found = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : (log_errno("cannot read `%s'", path), -1);
	while (!found && fgets(line, sizeof line, f) != NULL) {
		char *n = strtok(line, " \t\r\n"), *k = strtok(NULL, " \t\r\n");

		if (n && k && *n != '#' && strcmp(n, name) == 0 &&
		    strlen(k) == CRYPTO_KEY_B64_LEN) {
			memcpy(key, k, CRYPTO_KEY_B64_LEN + 1);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* Record name's key in known_peers (created 0600); 0 or -1. */
static int
known_add(const char *path, const char *name, const char *key)
{
	char dir[PATH_MAX], *slash;
	FILE *f;
	int fd;

	snprintf(dir, sizeof dir, "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		mkdir(dir, 0700);
	}
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1 || (f = fdopen(fd, "a")) == NULL) {
		log_errno("cannot write `%s'", path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(f, "%s %s\n", name, key);
	return fclose(f) == 0 ? 0 : -1;
}

/*
 * Trust, as ssh does it: a pinned key (--peer-key) or an allow list
 * (--allow) decides alone; otherwise known_peers maps names to keys, the
 * first contact is trusted and recorded, a later mismatch refused.  A
 * caller that gave no name is anonymous: without --allow any key will do.
 * In passphrase mode the passphrase authenticates the peer.
 */
static int
trust_peer(void *ctx, const char *name, const uint8_t pub[CRYPTO_KEY_LEN])
{
	const struct opts *o = ctx;
	char fp[CRYPTO_FP_LEN + 1], key[CRYPTO_KEY_B64_LEN + 1];
	char known[CRYPTO_KEY_B64_LEN + 1], path[PATH_MAX];
	const char *who = o->listen ? "the caller" : "the peer";
	int r;

	if (!o->listen)
		name = o->peer;
	crypto_fingerprint(pub, fp);
	crypto_key_to_text(pub, key);
	if (o->secret) {
		/* The passphrase is proved later, by the keys it went into. */
		log_v(1, "passphrase mode: %s has key %s", who, fp);
		return 0;
	}
	if (o->peer_key) {
		if (crypto_key_matches(o->peer_key, pub))
			return 0;
		log_err("%s `%s' has key %s, not the one given with --peer-key", who, name, fp);
		return -1;
	}
	if (o->allow) {
		if ((r = allowed(o->allow, pub)) == 1) {
			log_v(1, "%s %s is allowed by %s", who, fp, o->allow);
			return 0;
		}
		if (r == 0)
			log_err("refusing %s: key %s is not in `%s'", who, fp, o->allow);
		return -1;
	}
	if (*name == '\0') {
		log_v(1, "%s gave no name; its key is %s", who, fp);
		return 0;
	}
	if (config_path(path, sizeof path, "known_peers") == -1) {
		log_err("cannot find known_peers: set HOME or XDG_CONFIG_HOME");
		return -1;
	}
	if ((r = known_lookup(path, name, known)) == -1)
		return -1;
	if (r == 1) {
		if (crypto_key_matches(known, pub)) {
			log_v(1, "%s `%s' has its known key %s", who, name, fp);
			return 0;
		}
		log_err("KEY MISMATCH: `%s' is known by another key in `%s', now it "
		    "has %s.  Someone may be impersonating it, or its key changed: if "
		    "you know it did, remove its line from that file.", name, path, fp);
		return -1;
	}
	log_err("first contact with `%s': trusting its key %s (added to `%s')",
	    name, fp, path);
	return known_add(path, name, key);
}

/* A public key as `p2pcat --id' prints it, or its fingerprint. */
static bool
valid_key_text(const char *text)
{
	uint8_t k[CRYPTO_KEY_LEN];

	if (crypto_key_from_text(text, k) == 0)
		return true;
	return strncmp(text, "SHA256:", 7) == 0 && strlen(text) == CRYPTO_FP_LEN;
}

/* Our long-term key: created on first use under the config directory. */
static int
load_identity(struct crypto_identity *id)
{
	char path[PATH_MAX];
	bool created;

	if (config_path(path, sizeof path, "key") == -1) {
		log_err("cannot find the key: set HOME or XDG_CONFIG_HOME");
		return -1;
	}
	if (crypto_load_or_create_identity(path, id, &created) == -1)
		return -1;
	if (created)
		log_err("created a new key in `%s'", path);
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

/* Abort the session with code and return status.  The CLOSE may be lost
 * (the peer's socket full of our data): stay a little, answering what
 * still arrives with another CLOSE, until the peer falls silent. */
static int
abort_session(struct session *s, uint32_t code, int status)
{
	uint64_t end = now_us() + ABORT_LINGER_US, quiet = 0, now;
	struct pollfd pfd;

	if (!sess_connected(s))
		return status;
	stream_abort(sess_stream(s), code);
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

/* The exit status for a session that failed in sess_io. */
static int
sess_status(const struct session *s)
{
	if (sess_error(s) == SESS_AUTH)
		return EXIT_AUTH;
	return sess_connected(s) ? EXIT_LOST : EXIT_NOCONN;
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
		int n, ip = -1, op = -1;

		if (stop_sig)
			return abort_session(s, CLOSE_SIGNAL, EXIT_SIGNAL + stop_sig);
		if (!sess_connected(s) && now >= connect_deadline) {
			log_err("could not reach the peer: no path answered within %g s",
			    o->wait_s);
			return EXIT_NOCONN;
		}
		if (sess_io(s, now) == -1)
			return sess_status(s);

		if (sess_connected(s)) {
			bool in_done, out_done;
			int err;

			st = sess_stream(s);
			if (!started) {
				started = true;
				log_v(1, "connected: %s", sess_describe(s, desc, sizeof desc));
			}
			if (o->udp && inoff < inlen) {
				/* -u: one read, one datagram (reads are no longer). */
				if (stream_dgram_send(st, inbuf, inlen) != 0)
					inoff = inlen;
			}
			while (!o->udp && inoff < inlen) {
				size_t w = stream_write(st, inbuf + inoff, inlen - inoff);

				if (w == 0)
					break;
				inoff += w;
			}
			if ((stdin_eof || o->recv_only) && inoff == inlen && !wclosed) {
				stream_close_write(st);
				wclosed = true;
			}
			if (o->udp && outoff == outlen) {
				ssize_t d = stream_dgram_recv(st, outbuf, sizeof outbuf);

				outoff = 0;
				outlen = d > 0 ? (size_t)d : 0;
				if (o->send_only)
					outlen = 0;
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
		n++;
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
		if (ip != -1 && pfd[ip].revents) {
			ssize_t r = read(0, inbuf, o->udp ? stream_dgram_max(st) : sizeof inbuf);

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

static void
sess_setup(struct sess_conf *sc, const struct opts *o,
    const struct crypto_identity *id, bool caller)
{
	memset(sc, 0, sizeof *sc);
	sc->caller = caller;
	sc->self = caller ? o->name : NULL;
	sc->id = id;
	sc->secret = o->secret;
	sc->secretlen = o->secretlen;
	sc->cipher = o->cipher;
	sc->trust = trust_peer;
	sc->trust_ctx = (void *)o;
	sc->punch.port = o->port;
	sc->punch.caller = caller;
	sc->punch.nstun = o->nstun;
	memcpy(sc->punch.stun, o->stun, sizeof sc->punch.stun);
	sc->punch.turn = o->turn;
	sc->stream.sndbuf = SNDBUF;
	sc->stream.rcvbuf = RCVBUF;
	sc->stream.keepalive_us = KEEPALIVE_US;
	sc->stream.idle_us = secs_us(o->idle_s);
}

/* The store's reads and writes billed since the last report (a -k
 * listener's idle time counts for the session that ends it). */
static void
report_counts(const struct sig *sig)
{
	static unsigned long last_r, last_w;
	unsigned long r, w;

	sig_counts(sig, &r, &w);
	log_v(1, "rendezvous: %lu reads, %lu writes", r - last_r, w - last_w);
	last_r = r;
	last_w = w;
}

static void
report_session(const struct session *s)
{
	struct stream_stats st;
	struct stream *str = sess_stream((struct session *)s);

	if (str == NULL)
		return;
	stream_get_stats(str, &st);
	log_v(1, "sent %llu packets (%llu bytes retransmitted), received %llu; "
	    "rtt %.1f ms; payload %llu bytes a packet; %llu forged or replayed "
	    "packets dropped",
	    (unsigned long long)st.pkts_sent, (unsigned long long)st.bytes_retrans,
	    (unsigned long long)st.pkts_recv, st.srtt_us / 1000.0,
	    (unsigned long long)st.mtu, (unsigned long long)sess_dropped(s));
}

static int
caller(const struct opts *o, struct sig *sig, const struct crypto_identity *id)
{
	unsigned char blob[SIG_MAX_BLOB], rnd[SIG_ID_LEN / 2];
	uint64_t deadline = now_us() + secs_us(o->wait_s);
	uint64_t expire = unix_ms() + (uint64_t)(o->wait_s * 1000);
	char id_hex[SIG_ID_LEN + 1];
	struct session *s;
	struct sig_msg *ans = NULL;
	struct sess_conf sc;
	int ret = EXIT_NOCONN, r;
	size_t len;

	sess_setup(&sc, o, id, true);
	if ((s = sess_new(&sc)) == NULL)
		return EXIT_NOCONN;
	if ((ans = malloc(sizeof *ans)) == NULL) {
		log_errno("malloc");
		goto out;
	}
	randombytes_buf(rnd, sizeof rnd);
	sodium_bin2hex(id_hex, sizeof id_hex, rnd, sizeof rnd);
	if (sess_gather(s, deadline) == -1 ||
	    (len = sess_offer(s, o->peer, id_hex, blob, sizeof blob)) == 0)
		goto out;
	if (sig_offer(sig, o->peer, id_hex, blob, len, expire) == -1)
		goto out;
	log_v(1, "offer %s posted to `%s'", id_hex, o->peer);
	r = sig_wait_answer(sig, o->peer, id_hex, ans, expire);
	sig_withdraw(sig, o->peer, id_hex);
	if (stop_sig) {
		ret = EXIT_SIGNAL + stop_sig;
		goto out;
	}
	if (r == 1) {
		log_err("no answer from `%s' within %g s", o->peer, o->wait_s);
		goto out;
	}
	if (r == -1)
		goto out;
	if (sess_take_answer(s, ans->blob, ans->len) == -1) {
		ret = sess_status(s);
		goto out;
	}
	ret = run(s, o, deadline);
	report_session(s);
out:
	report_counts(sig);
	free(ans);
	sess_free(s);
	return ret;
}

static int
listener(const struct opts *o, struct sig *sig, const struct crypto_identity *id)
{
	unsigned char blob[SIG_MAX_BLOB];
	struct sig_msg *offer;
	struct sess_conf sc;
	struct punch_budget spray = { 0 };
	int ret = EXIT_NOCONN;

	if ((offer = malloc(sizeof *offer)) == NULL) {
		log_errno("malloc");
		return EXIT_NOCONN;
	}
	sess_setup(&sc, o, id, false);
	sc.punch.spray = &spray;	/* one budget for every offer we take */
	for (;;) {
		struct session *s;
		size_t len;
		int r;

		log_v(1, "listening as `%s'", o->peer);
		r = sig_wait_offer(sig, o->peer, offer, UINT64_MAX);
		if (stop_sig || r != 0) {
			ret = stop_sig ? EXIT_SIGNAL + stop_sig : EXIT_NOCONN;
			break;
		}
		log_v(1, "offer %s received", offer->id);
		/* Gather now, not before the wait: a NAT forgets an idle
		 * mapping within a minute, and with it our public address. */
		if ((s = sess_new(&sc)) == NULL)
			break;
		if (sess_gather(s, now_us() + secs_us(o->wait_s)) == -1) {
			sess_free(s);
			break;
		}
		if ((len = sess_take_offer(s, o->peer, offer->id, offer->blob, offer->len,
		    blob, sizeof blob)) == 0) {
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
		report_session(s);
		report_counts(sig);
		sess_free(s);
		if (stop_sig)
			break;
		/* A caller that never arrived, or that we refused, is no
		 * session served: a stranger cannot end the listener. */
		if (ret == EXIT_NOCONN || ret == EXIT_AUTH) {
			log_err("the caller of offer %s %s", offer->id,
			    ret == EXIT_AUTH ? "was refused" : "did not connect");
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
		{ "allow",	required_argument,	NULL, 'A' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "id",		no_argument,		NULL, 'D' },
		{ "idle",	required_argument,	NULL, 'I' },
		{ "keep-open",	no_argument,		NULL, 'k' },
		{ "listen",	no_argument,		NULL, 'l' },
		{ "poll",	required_argument,	NULL, 'P' },
		{ "peer-key",	required_argument,	NULL, 'K' },
		{ "port",	required_argument,	NULL, 'p' },
		{ "recv-only",	no_argument,		NULL, 'R' },
		{ "secret-file", required_argument,	NULL, 'F' },
		{ "send-only",	no_argument,		NULL, 'T' },
		{ "signal",	required_argument,	NULL, 'S' },
		{ "stun",	required_argument,	NULL, 'U' },
		{ "turn",	required_argument,	NULL, 'N' },
		{ "udp",	no_argument,		NULL, 'u' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "wait",	required_argument,	NULL, 'w' },
		{ NULL,		0,			NULL, 0 }
	};
	struct opts o = { .wait_s = DEF_WAIT_S, .idle_s = DEF_IDLE_S };
	struct given g = { 0 };
	struct sig_opts so = { 0 };
	struct crypto_identity id = { 0 };
	struct sigaction sa;
	struct sig *sig;
	int ch, ret = EXIT_USAGE;

	sanitize_fds();
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "hklp:S:uvw:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'A':
			o.allow = optarg;
			break;
		case 'D':
			o.show_id = true;
			break;
		case 'F':
			o.secret_file = optarg;
			break;
		case 'h':
			usage(stdout);
			ret = EXIT_OK;
			goto out;
		case 'K':
			if (!valid_key_text(optarg)) {
				log_err("bad key `%s': want what p2pcat --id prints, or a "
				    "SHA256: fingerprint", optarg);
				goto fail;
			}
			o.peer_key = optarg;
			break;
		case 'I':
			if ((o.idle_s = parse_secs("idle timeout", optarg, 1, 86400)) < 0)
				goto fail;
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
				goto fail;
			g.poll = true;
			break;
		case 'p':
			if ((o.port = parse_port(optarg)) < 0)
				goto fail;
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
		case 'U':
			if (add_stun(&o, optarg) == -1)
				goto fail;
			g.stun = true;
			break;
		case 'N':
			free(o.turn);
			o.turn = xstrdup(optarg);
			g.turn = true;
			break;
		case 'u':
			o.udp = true;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'V':
			printf("p2pcat %s\n", P2PCAT_VERSION);
			ret = EXIT_OK;
			goto out;
		case 'w':
			if ((o.wait_s = parse_secs("wait", optarg, 0.1, 86400)) < 0)
				goto fail;
			g.wait = true;
			break;
		default:
			usage(stderr);
			goto fail;
		}
	}
	argc -= optind;
	argv += optind;
	log_verbose = o.verbose;

	if (argc > 1) {
		usage(stderr);
		goto fail;
	}
	if (crypto_init() == -1)
		goto fail;
	if (o.show_id) {
		char key[CRYPTO_KEY_B64_LEN + 1], fp[CRYPTO_FP_LEN + 1];

		if (argc || o.listen) {
			log_err("--id takes no other arguments");
			goto fail;
		}
		if (load_identity(&id) == -1)
			goto fail;
		crypto_key_to_text(id.pub, key);
		crypto_fingerprint(id.pub, fp);
		crypto_identity_wipe(&id);
		printf("%s\n", key);
		log_v(1, "fingerprint %s", fp);
		ret = EXIT_OK;
		goto out;
	}
	if (o.send_only && o.recv_only) {
		log_err("--send-only and --recv-only exclude each other");
		goto fail;
	}
	if (!o.listen && (o.keep || g.poll || o.allow)) {
		log_err("%s goes with -l", o.keep ? "-k" : g.poll ? "--poll" : "--allow");
		goto fail;
	}
	if (o.listen && o.peer_key) {
		log_err("--peer-key is for calling; a listener takes --allow");
		goto fail;
	}
	if (settle(&o, &g) == -1)
		goto fail;
	if (argc == 1)
		o.peer = argv[0];
	else if (o.listen && o.name)
		o.peer = o.name;
	else if (o.listen) {
		log_err("no name to listen as: give one, or set P2PCAT_NAME or `name' in the config");
		goto fail;
	} else {
		usage(stderr);
		goto fail;
	}
	if (!sig_valid_name(o.peer)) {
		log_err("bad peer name `%s': want 1-%d of A-Z a-z 0-9 . _ -, not starting with `.'",
		    o.peer, SIG_MAX_NAME);
		goto fail;
	}
	if (o.name && !sig_valid_name(o.name)) {
		log_err("bad name `%s' in P2PCAT_NAME or the config", o.name);
		goto fail;
	}
	if (read_secret(&o) == -1 || load_identity(&id) == -1)
		goto fail;
	if (o.nstun == 0)
		log_v(1, "no STUN server: only this host's addresses are offered, "
		    "so no NAT is crossed; IPv6 ones may still meet through "
		    "firewalls (see --stun, and p2pcat.conf.example)");

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
		goto fail;
	stdout_nonblock();
	ret = o.listen ? listener(&o, sig, &id) : caller(&o, sig, &id);
	stdout_restore();
	sig_close(sig);
	goto out;
fail:
	ret = EXIT_USAGE;
out:
	crypto_identity_wipe(&id);
	if (o.secret)
		sodium_memzero(o.secret, o.secretlen);
	free(o.secret);
	free(o.signal);
	free(o.name);
	free(o.api_key_file);
	while (o.nstun > 0)
		free(o.stun[--o.nstun]);
	if (o.turn)
		sodium_memzero(o.turn, strlen(o.turn));
	free(o.turn);
	return ret;
}
