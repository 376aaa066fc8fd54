/*
 * opts.c: the settings of a run (opts.h).  The command line is parsed
 * with getopt_long, its messages our own; the environment and the
 * configuration file fill in the rest; then everything is checked that
 * can be before a wait begins, so that a mistake is one line and status
 * 1 at once, never a wait that ends in status 2.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "crypto.h"
#include "exec.h"
#include "opts.h"
#include "p2pcat.h"
#include "signal.h"
#include "trust.h"
#include "util.h"

#define P2PCAT_VERSION	"0.1"

#define DEF_WAIT_S	30.0	/* -w */
#define DEF_IDLE_S	30.0	/* --idle */
#define MAX_MAX_CONNS	1024
#define SECRET_MAX	1024
#define TURN_URL_MAX	600	/* user, password, host and port, with room */
#define SHOWN_MAX	64	/* bytes of a value quoted in a message */

/* Long options without a short one. */
enum {
	OPT_ALLOW = 256, OPT_ALLOW_ANY, OPT_ID, OPT_IDLE, OPT_MAX_CONNS, OPT_PEER_KEY,
	OPT_POLL, OPT_PROGRESS, OPT_RECV_ONLY, OPT_SECRET_FILE, OPT_SEND_ONLY, OPT_STUN,
	OPT_TURN, OPT_TURN_FILE, OPT_VERSION,
};

static const struct option longopts[] = {
	{ "allow",	required_argument,	NULL, OPT_ALLOW },
	{ "allow-any",	no_argument,		NULL, OPT_ALLOW_ANY },
	{ "exec",	required_argument,	NULL, 'e' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "id",		no_argument,		NULL, OPT_ID },
	{ "idle",	required_argument,	NULL, OPT_IDLE },
	{ "keep-open",	no_argument,		NULL, 'k' },
	{ "listen",	no_argument,		NULL, 'l' },
	{ "max-conns",	required_argument,	NULL, OPT_MAX_CONNS },
	{ "peer-key",	required_argument,	NULL, OPT_PEER_KEY },
	{ "poll",	required_argument,	NULL, OPT_POLL },
	{ "port",	required_argument,	NULL, 'p' },
	{ "progress",	no_argument,		NULL, OPT_PROGRESS },
	{ "recv-only",	no_argument,		NULL, OPT_RECV_ONLY },
	{ "secret-file", required_argument,	NULL, OPT_SECRET_FILE },
	{ "send-only",	no_argument,		NULL, OPT_SEND_ONLY },
	{ "sh-exec",	required_argument,	NULL, 'c' },
	{ "signal",	required_argument,	NULL, 'S' },
	{ "stun",	required_argument,	NULL, OPT_STUN },
	{ "turn",	required_argument,	NULL, OPT_TURN },
	{ "turn-file",	required_argument,	NULL, OPT_TURN_FILE },
	{ "udp",	no_argument,		NULL, 'u' },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "version",	no_argument,		NULL, OPT_VERSION },
	{ "wait",	required_argument,	NULL, 'w' },
	{ NULL,		0,			NULL, 0 }
};

/* The configuration file's keys. */
static const struct config_key config_keys[] = {
	{ "api-key-file", false },
	{ "idle", false },
	{ "name", false },
	{ "poll", false },
	{ "port", false },
	{ "signal", false },
	{ "stun", true },
	{ "turn", false },
	{ "turn-file", false },
	{ "wait", false },
	{ NULL, false }
};

/* The synopsis is the man page's (tests/t_man.sh compares them); then
 * one line for each option. */
static void
usage(FILE *f, bool full)
{
	fprintf(f,
	    "usage: p2pcat [-uv] [-c cmd | -e prog] [-p port] [-S url] [-w secs]\n"
	    "              [--idle secs] [--progress] [--stun host:port]\n"
	    "              [--turn url | --turn-file file] [--peer-key key]\n"
	    "              [--secret-file file] [--recv-only | --send-only] peer\n"
	    "       p2pcat -l [-kuv] [-c cmd | -e prog] [-p port] [-S url] [-w secs]\n"
	    "              [--idle secs] [--progress] [--stun host:port]\n"
	    "              [--turn url | --turn-file file] [--poll secs]\n"
	    "              [--allow file | --allow-any] [--peer-key key]\n"
	    "              [--max-conns n] [--secret-file file]\n"
	    "              [--recv-only | --send-only] [name]\n"
	    "       p2pcat --id\n"
	    "       p2pcat -h | --version\n");
	if (!full)
		return;
	fprintf(f, "\n"
	    "Call peer, or with -l listen as name, and copy stdin to the peer and its\n"
	    "data to stdout, end to end encrypted, through NATs.\n"
	    "\n"
	    "  -c, --sh-exec cmd       run `/bin/sh -c cmd' for the session, on its data\n"
	    "  -e, --exec prog         the same without a shell (words split at blanks)\n"
	    "  -h, --help              print this help and exit\n"
	    "  -k, --keep-open         with -l: serve one session after another\n"
	    "  -l, --listen            listen as name (or P2PCAT_NAME, or the config's)\n"
	    "  -p, --port port         use this local UDP port\n"
	    "  -S, --signal url        rendezvous: dir:[path] (default), firestore:project\n"
	    "  -u, --udp               datagrams, as nc -u: one read, one datagram\n"
	    "  -v, --verbose           say what happens on stderr (more with -vv)\n"
	    "  -w, --wait secs         give up connecting after secs seconds (default 30)\n"
	    "      --allow file        with -l: accept only the callers whose keys it lists\n"
	    "      --allow-any         with -l and -c or -e: run the command for anyone\n"
	    "      --id                print our public key and its fingerprint, and exit\n"
	    "      --idle secs         give up after secs seconds of silence (default 30)\n"
	    "      --max-conns n       with -l and -c or -e: at most n at once (default 16)\n"
	    "      --peer-key key      connect only to the peer with this key or fingerprint\n"
	    "      --poll secs         with -l: look for new offers every secs seconds\n"
	    "      --progress          show bytes, rates and time on stderr (-v: on a tty)\n"
	    "      --recv-only         only receive: do not read stdin\n"
	    "      --secret-file file  passphrase mode: both sides give the one in file\n"
	    "      --send-only         only send: drop what the peer sends\n"
	    "      --stun host:port    learn our public address from this STUN server\n"
	    "      --turn url          relay through turn://user:pass@host:port if need be\n"
	    "      --turn-file file    the same, the URL in file, out of sight of ps(1)\n"
	    "      --version           print the version and exit\n"
	    "\n"
	    "Exit status: 0 delivered, 1 usage, 2 no connection, 3 lost or failed,\n"
	    "4 key refused, 128+N signal N.  See p2pcat(1).\n");
}

const char *
opts_shown(const char *s, char buf[SHOWN_MAX + 4])
{
	size_t i, n = strlen(s), m = n > SHOWN_MAX ? SHOWN_MAX : n;

	for (i = 0; i < m; i++)
		buf[i] = s[i];
	strcpy(buf + m, n > m ? "..." : "");
	return buf;
}

/* Where a value came from, for a message: "" (the command line), or
 * "FILE:LINE: ". */
static const char *
from(const char *where, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", where ? where : "", where ? ": " : "");
	return buf;
}

/* Seconds in [lo, hi], decimal, fractions allowed (where: as for from);
 * -1 after printing why. */
static double
parse_secs(const char *where, const char *what, const char *s, double lo, double hi)
{
	char *end, b[SHOWN_MAX + 4], w[PATH_MAX + 32];
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* strtod also takes blanks first, hexadecimal, inf and nan. */
	if (strchr("0123456789.", *s) == NULL || *s == '\0' || strpbrk(s, "xX") ||
	    *end != '\0' || errno || !isfinite(v) || v < lo || v > hi) {
		log_err("%sbad %s `%s': want seconds from %g to %g", from(where, w, sizeof w),
		    what, opts_shown(s, b), lo, hi);
		return -1;
	}
	return v;
}

/* A decimal integer in [lo, hi]; -1 after printing why. */
static int
parse_count(const char *where, const char *what, const char *s, int lo, int hi)
{
	char *end, b[SHOWN_MAX + 4], w[PATH_MAX + 32];
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (strchr("0123456789", *s) == NULL || *s == '\0' || *end != '\0' || errno ||
	    v < lo || v > hi) {
		log_err("%sbad %s `%s': want a number from %d to %d", from(where, w, sizeof w),
		    what, opts_shown(s, b), lo, hi);
		return -1;
	}
	return (int)v;
}

/* A local UDP port, 0 for any; -1 after printing why. */
static int
parse_port(const char *where, const char *s)
{
	return parse_count(where, "port", s, 0, 65535);
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

/* Add a STUN server (where: as for from); 0 or -1. */
static int
add_stun(struct opts *o, const char *where, const char *hostport)
{
	char w[PATH_MAX + 32];

	if (o->nstun == PUNCH_MAX_STUN) {
		log_err("%sat most %d STUN servers", from(where, w, sizeof w), PUNCH_MAX_STUN);
		return -1;
	}
	o->stun[o->nstun++] = xstrdup(hostport);
	return 0;
}

/* Overwrite the password of a TURN URL in place: argv's strings are
 * what ps(1) shows. */
static void
hide_password(char *url)
{
	char *r = strstr(url, "://"), *colon, *at;

	r = r ? r + 3 : strncmp(url, "turn:", 5) == 0 ? url + 5 : url;
	if ((at = strrchr(r, '@')) != NULL && (colon = memchr(r, ':', at - r)) != NULL)
		memset(colon + 1, 'x', at - colon - 1);
}

void
opts_init(struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->wait_s = DEF_WAIT_S;
	o->idle_s = DEF_IDLE_S;
}

/* How many long options start with what s holds up to a `='. */
static int
prefixes(const char *s)
{
	size_t n = strcspn(s, "=");
	int i, count = 0;

	for (i = 0; longopts[i].name != NULL; i++)
		count += n > 0 && strncmp(longopts[i].name, s, n) == 0;
	return count;
}

/* getopt_long's complaint, as one line of ours; argv[optind - 1] is the
 * argument it was looking at. */
static void
bad_option(int ch, char *argv[])
{
	const char *arg = argv[optind - 1];
	char b[SHOWN_MAX + 4];

	if (ch == ':' && strncmp(arg, "--", 2) == 0)
		log_err("option `%s' needs a value", opts_shown(arg, b));
	else if (ch == ':')
		log_err("option `-%c' needs a value", optopt);
	else if (strncmp(arg, "--", 2) == 0 && optopt != 0)
		log_err("option `%.*s' takes no value", (int)strcspn(arg, "="),
		    opts_shown(arg, b));
	else if (strncmp(arg, "--", 2) == 0)
		log_err("%s option `%s' (p2pcat -h lists them)", prefixes(arg + 2) > 1 ?
		    "ambiguous" : "unknown", opts_shown(arg, b));
	else if (optopt >= 0x20 && optopt < 0x7f)
		log_err("unknown option `-%c' (p2pcat -h lists them)", optopt);
	else
		log_err("unknown option (p2pcat -h lists them)");
}

int
opts_parse(struct opts *o, int argc, char *argv[])
{
	char b[SHOWN_MAX + 4], b2[SHOWN_MAX + 4];
	int ch;

	/* The leading `:' makes a missing value `:', not `?'; opterr = 0
	 * keeps getopt's own messages, which start with argv[0], out. */
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":c:e:hklp:S:uvw:", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ALLOW:
			o->allow = optarg;
			break;
		case OPT_ALLOW_ANY:
			o->allow_any = true;
			break;
		case 'c':
		case 'e':
			if (o->cmd) {
				log_err("one command: -e or -c, once");
				return OPTS_BAD;
			}
			if (*optarg == '\0') {
				log_err("-%c wants a command, not an empty string", ch);
				return OPTS_BAD;
			}
			o->cmd = optarg;
			o->shell = ch == 'c';
			break;
		case 'h':
			usage(stdout, true);
			return OPTS_EXIT;
		case OPT_ID:
			o->show_id = true;
			break;
		case OPT_IDLE:
			if ((o->idle_s = parse_secs(NULL, "idle timeout", optarg, 1, 86400)) < 0)
				return OPTS_BAD;
			o->given.idle = true;
			break;
		case 'k':
			o->keep = true;
			break;
		case 'l':
			o->listen = true;
			break;
		case OPT_MAX_CONNS:
			if ((o->max_conns = parse_count(NULL, "--max-conns", optarg, 1,
			    MAX_MAX_CONNS)) < 0)
				return OPTS_BAD;
			break;
		case OPT_PEER_KEY:
			if (!trust_valid_key(optarg)) {
				log_err("bad key `%s': want what p2pcat --id prints, or a "
				    "SHA256: fingerprint", opts_shown(optarg, b));
				return OPTS_BAD;
			}
			o->peer_key = optarg;
			break;
		case OPT_POLL:
			if ((o->poll_s = parse_secs(NULL, "poll interval", optarg, 0.01, 3600)) < 0)
				return OPTS_BAD;
			o->given.poll = true;
			break;
		case 'p':
			if ((o->port = parse_port(NULL, optarg)) < 0)
				return OPTS_BAD;
			o->given.port = true;
			break;
		case OPT_PROGRESS:
			o->progress = true;
			break;
		case OPT_RECV_ONLY:
			o->recv_only = true;
			break;
		case 'S':
			free(o->signal);
			o->signal = xstrdup(optarg);
			o->given.signal = true;
			break;
		case OPT_SECRET_FILE:
			o->secret_file = optarg;
			break;
		case OPT_SEND_ONLY:
			o->send_only = true;
			break;
		case OPT_STUN:
			if (add_stun(o, NULL, optarg) == -1)
				return OPTS_BAD;
			o->given.stun = true;
			break;
		case OPT_TURN:
			if (o->turn)
				sodium_memzero(o->turn, strlen(o->turn));
			free(o->turn);
			o->turn = xstrdup(optarg);
			hide_password(optarg);
			o->given.turn = o->turn_argv = true;
			break;
		case OPT_TURN_FILE:
			free(o->turn_file);
			o->turn_file = xstrdup(optarg);
			o->given.turn = true;
			break;
		case 'u':
			o->udp = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_VERSION:
			printf("p2pcat %s\n", P2PCAT_VERSION);
			return OPTS_EXIT;
		case 'w':
			if ((o->wait_s = parse_secs(NULL, "wait", optarg, 0.1, 86400)) < 0)
				return OPTS_BAD;
			o->given.wait = true;
			break;
		default:
			bad_option(ch, argv);
			return OPTS_BAD;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1) {
		/* nc's `host port' habit, most likely. */
		log_err("one name, not `%s %s%s': a peer is called by its name "
		    "alone, with no port (-p sets our own UDP port)",
		    opts_shown(argv[0], b), opts_shown(argv[1], b2), argc > 2 ? " ..." : "");
		return OPTS_BAD;
	}
	if (argc == 1)
		o->peer = argv[0];
	if (o->show_id && (argc || o->listen)) {
		log_err("--id takes no other arguments");
		return OPTS_BAD;
	}
	if (!o->show_id && !o->listen && argc == 0) {
		usage(stderr, false);
		return OPTS_BAD;
	}
	if (o->send_only && o->recv_only) {
		log_err("--send-only and --recv-only exclude each other");
		return OPTS_BAD;
	}
	if (!o->listen && (o->keep || o->given.poll || o->allow || o->allow_any ||
	    o->max_conns)) {
		log_err("%s goes with -l", o->keep ? "-k" : o->given.poll ? "--poll" :
		    o->allow ? "--allow" : o->allow_any ? "--allow-any" : "--max-conns");
		return OPTS_BAD;
	}
	if (o->cmd == NULL && (o->allow_any || o->max_conns)) {
		log_err("%s goes with -e or -c", o->allow_any ? "--allow-any" : "--max-conns");
		return OPTS_BAD;
	}
	if (o->cmd && (o->send_only || o->recv_only)) {
		log_err("-e and -c connect both directions to the command: no %s",
		    o->send_only ? "--send-only" : "--recv-only");
		return OPTS_BAD;
	}
	if (o->allow && o->allow_any) {
		log_err("--allow and --allow-any exclude each other");
		return OPTS_BAD;
	}
	if (o->turn && o->turn_file) {
		log_err("--turn and --turn-file exclude each other");
		return OPTS_BAD;
	}
	return OPTS_RUN;
}

/* config_fn: one setting of the configuration file. */
static int
config_set(void *ctx, const char *key, const char *val, const char *where)
{
	struct opts *o = ctx;
	const struct opts_given *g = &o->given;
	double v;
	int p;

	if (strcmp(key, "name") == 0) {
		if (o->name == NULL)
			o->name = xstrdup(val);
	} else if (strcmp(key, "signal") == 0) {
		if (o->signal == NULL)
			o->signal = xstrdup(val);
	} else if (strcmp(key, "api-key-file") == 0) {
		free(o->api_key_file);
		o->api_key_file = xstrdup(val);
	} else if (strcmp(key, "wait") == 0) {
		if ((v = parse_secs(where, "wait", val, 0.1, 86400)) < 0)
			return -1;
		if (!g->wait)
			o->wait_s = v;
	} else if (strcmp(key, "idle") == 0) {
		if ((v = parse_secs(where, "idle", val, 1, 86400)) < 0)
			return -1;
		if (!g->idle)
			o->idle_s = v;
	} else if (strcmp(key, "poll") == 0) {
		if ((v = parse_secs(where, "poll", val, 0.01, 3600)) < 0)
			return -1;
		if (!g->poll)
			o->poll_s = v;
	} else if (strcmp(key, "stun") == 0) {
		if (!g->stun && add_stun(o, where, val) == -1)
			return -1;
	} else if (strcmp(key, "turn") == 0 || strcmp(key, "turn-file") == 0) {
		if (o->turn || o->turn_file) {
			if (g->turn)
				return 0;
			log_err("%s: turn and turn-file exclude each other", where);
			return -1;
		}
		if (strcmp(key, "turn") == 0)
			o->turn = xstrdup(val);
		else
			o->turn_file = xstrdup(val);
	} else if (strcmp(key, "port") == 0) {
		if ((p = parse_port(where, val)) < 0)
			return -1;
		if (!g->port)
			o->port = p;
	}
	return 0;
}

int
opts_config(struct opts *o, const char *name, const char *text, size_t len)
{
	return config_parse(name, text, len, config_keys, config_set, o);
}

/* $XDG_CONFIG_HOME/p2pcat/config, if there is one; 0 or -1. */
static int
read_config(struct opts *o)
{
	char path[PATH_MAX], *text;
	size_t len;
	int r;

	if (config_path(path, sizeof path, "config") == -1)
		return 0;
	if ((r = config_read(path, &text, &len)) <= 0)
		return r;
	r = opts_config(o, path, text, len);
	free(text);
	return r;
}

/* The secret in a private file (util_read_private) into *out, a copy
 * the caller wipes and frees: its length, or -1 after printing why. */
static long
read_private(const char *path, const char *what, char **out, size_t max)
{
	char *buf;
	long n;

	if ((buf = sodium_malloc(max + 2)) == NULL) {
		log_errno("sodium_malloc");
		return -1;
	}
	if ((n = util_read_private(path, what, buf, max + 2)) > 0 &&
	    (*out = malloc(n + 1)) == NULL) {
		log_errno("malloc");
		n = -1;
	} else if (n > 0) {
		memcpy(*out, buf, n + 1);
	}
	sodium_free(buf);
	return n;
}

/* The passphrase from --secret-file (a private file) or P2PCAT_SECRET; a
 * trailing newline is not part of it.  0 or -1. */
static int
read_secret(struct opts *o)
{
	const char *env = getenv("P2PCAT_SECRET");
	long n;

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
	if ((n = read_private(o->secret_file, "secret file", &o->secret, SECRET_MAX)) < 0)
		return -1;
	o->secretlen = n;
	return 0;
}

/* Whether name will do as a peer's or our own; what says whose, where
 * where it came from (or ""). */
static bool
name_ok(const char *name, const char *what, const char *where)
{
	char b[SHOWN_MAX + 4];

	if (sig_valid_name(name))
		return true;
	log_err("bad %s `%s'%s: want 1 to %d of A-Z a-z 0-9 . _ -, not starting with `.'",
	    what, opts_shown(name, b), where, SIG_MAX_NAME);
	return false;
}

/* The STUN and TURN servers: well formed, and their names resolve.  A
 * resolver that cannot be reached now is only said (each session asks
 * again): a LAN without DNS still works on host addresses.  0 or -1. */
static int
check_servers(const struct opts *o)
{
	int i;

	for (i = 0; i < o->nstun; i++)
		if (punch_check_server(o->stun[i], false, true) == -1)
			return -1;
	if (o->turn && punch_check_server(o->turn, true, true) == -1)
		return -1;
	return 0;
}

int
opts_settle(struct opts *o)
{
	const char *e;
	long n;
	int c;

	if (o->signal == NULL && (e = getenv("P2PCAT_SIGNAL")) != NULL && *e)
		o->signal = xstrdup(e);
	if ((e = getenv("P2PCAT_NAME")) != NULL && *e)
		o->name = xstrdup(e);
	if (!o->given.turn && (e = getenv("P2PCAT_TURN")) != NULL && *e) {
		o->turn = xstrdup(e);
		o->given.turn = true;
	}
	if ((e = getenv("P2PCAT_CIPHER")) != NULL && *e) {
		char b[SHOWN_MAX + 4];

		if ((c = crypto_cipher_by_label(e)) == 0) {
			log_err("bad P2PCAT_CIPHER `%s' (%s or %s)", opts_shown(e, b),
			    crypto_cipher_label(CRYPTO_CHACHAPOLY),
			    crypto_cipher_label(CRYPTO_AESGCM));
			return -1;
		}
		if (!crypto_cipher_available(c)) {
			log_err("P2PCAT_CIPHER is %s, but this CPU has no AES instructions", e);
			return -1;
		}
		o->cipher = c;
	}
	if (read_config(o) == -1)
		return -1;
	if (o->signal == NULL)
		o->signal = xstrdup("dir:");
	if (o->show_id)
		return 0;
	if (o->name && !name_ok(o->name, "name", " in P2PCAT_NAME or the config"))
		return -1;
	if (o->peer == NULL && o->listen && o->name == NULL) {
		log_err("no name to listen as: give one, or set P2PCAT_NAME or `name' in the config");
		return -1;
	}
	if (o->peer == NULL)
		o->peer = o->name;
	if (!name_ok(o->peer, o->listen ? "name" : "peer name", ""))
		return -1;
	if (read_secret(o) == -1)
		return -1;
	if (o->turn_file) {
		if ((n = read_private(o->turn_file, "TURN file", &o->turn, TURN_URL_MAX)) < 0)
			return -1;
	}
	/* A command for every caller is a shell for every caller: say who. */
	if (o->listen && o->cmd && !o->allow && !o->peer_key && !o->secret && !o->allow_any) {
		log_err("%s runs a command for every caller: restrict the callers "
		    "with --allow FILE, --peer-key KEY or a passphrase, or give "
		    "--allow-any to serve anyone", o->shell ? "-c" : "-e");
		return -1;
	}
	if (o->max_conns && o->port) {
		log_err("--max-conns cannot go with %s: one port is one socket, "
		    "which serves one session at a time",
		    o->given.port ? "-p" : "the port setting of the config");
		return -1;
	}
	if (o->cmd && !o->shell && exec_check(o->cmd) == -1)
		return -1;
	if (check_servers(o) == -1)
		return -1;
	if (o->turn_argv)
		log_err("warning: --turn shows the TURN password to every user of "
		    "this host (ps); use --turn-file or P2PCAT_TURN");
	return 0;
}

void
opts_free(struct opts *o)
{
	if (o->secret)
		sodium_memzero(o->secret, o->secretlen);
	free(o->secret);
	free(o->signal);
	free(o->name);
	free(o->api_key_file);
	while (o->nstun > 0)
		free(o->stun[--o->nstun]);
	if (o->turn)
		sodium_memzero(o->turn, strlen(o->turn));
	free(o->turn);
	free(o->turn_file);
}
