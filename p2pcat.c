/*
 * p2pcat: netcat for hosts behind NAT.
 *
 * This file holds the key and the caller; the settings are in opts.c,
 * the configuration file in config.c, the trust rules in trust.c.  The
 * listener
 * is in serve.c, the loop that moves stdin to the peer and the peer's
 * bytes to stdout in pump.c, the rendezvous in signal.c, the path in
 * session.c and punch.c, the byte stream in stream.c.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "crypto.h"
#include "opts.h"
#include "p2pcat.h"
#include "pump.h"
#include "serve.h"
#include "session.h"
#include "signal.h"
#include "trust.h"
#include "util.h"

#define DEF_MAX_CONNS	16	/* --max-conns */
#define KEEPALIVE_US	15000000	/* well inside common NAT timeouts (30 s) */
#define SNDBUF		(8 << 20)
#define RCVBUF		(16 << 20)

static volatile sig_atomic_t stop_sig;
static bool stdin_eof;

static void
on_signal(int sig)
{
	stop_sig = sig;
	serve_notify();		/* a listener may be waiting on its children */
}

/* What trust.c decides by, and the files it reads. */
static struct trust_conf trust;
static char known_peers[PATH_MAX], known_callers[PATH_MAX];

/* Set up trust.c from the settings, its files checked now rather than
 * when a peer is there; 0 or -1. */
static int
trust_setup(const struct opts *o)
{
	trust.listener = o->listen;
	trust.called = o->peer;
	trust.store = o->signal;
	trust.pin = o->peer_key;
	trust.allow = o->allow;
	trust.passphrase = o->secret != NULL;
	if (config_path(known_peers, sizeof known_peers, "known_peers") == 0)
		trust.known_peers = known_peers;
	if (config_path(known_callers, sizeof known_callers, "known_callers") == 0)
		trust.known_callers = known_callers;
	return trust_check(&trust);
}

/* sess_trust_fn: trust.c decides. */
static int
trust_peer(void *ctx, const char *name, const uint8_t pub[CRYPTO_KEY_LEN])
{
	int r = trust_decide(ctx, name, pub);

	return r == TRUST_BROKEN ? SESS_TRUST_BROKEN : r;
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

/* What -h, --version and --id print is their whole job: an output that
 * could not take it (a full disk) is an error, not status 0.  0 or -1. */
static int
flush_stdout(void)
{
	if (fflush(stdout) == EOF) {
		log_errno("cannot write to stdout");
		return -1;
	}
	if (ferror(stdout)) {
		log_err("cannot write to stdout");
		return -1;
	}
	return 0;
}

static void
sess_setup(struct sess_conf *sc, const struct opts *o,
    const struct crypto_identity *id, bool caller)
{
	memset(sc, 0, sizeof *sc);
	sc->caller = caller;
	sc->dgram = o->udp;
	sc->self = caller ? o->name : NULL;
	sc->id = id;
	sc->secret = o->secret;
	sc->secretlen = o->secretlen;
	sc->cipher = o->cipher;
	sc->trust = trust_peer;
	sc->trust_ctx = &trust;
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

/* Whether to show the transfer's progress: asked for, or -v with a
 * terminal for it that the data does not use, in the foreground. */
static bool
want_progress(const struct opts *o)
{
	if (o->progress)
		return true;
	return o->verbose && !o->cmd && isatty(2) && !isatty(0) && !isatty(1) &&
	    tcgetpgrp(2) == getpgrp();
}

static void
pump_setup(struct pump_conf *pc, const struct opts *o)
{
	memset(pc, 0, sizeof *pc);
	pc->in_fd = 0;
	pc->out_fd = 1;
	pc->udp = o->udp;
	pc->send_only = o->send_only;
	pc->recv_only = o->recv_only;
	pc->keep_out = o->keep;
	pc->wait_s = o->wait_s;
	pc->idle_s = o->idle_s;
	pc->stop = &stop_sig;
	pc->in_eof = &stdin_eof;
	pc->cmd = o->cmd;
	pc->shell = o->shell;
	/* The caller names whom it called; a listener's command learns the
	 * name its caller gave. */
	pc->peer_name = o->listen ? NULL : o->peer;
	pc->progress = want_progress(o);
	pc->progress_tty = isatty(2);
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
	struct pump_conf pc;
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
		sess_cancel(s);
		ret = pump_status(s);
		goto out;
	}
	pump_setup(&pc, o);
	ret = pump_run(s, &pc, deadline);
	pump_report(s);
out:
	sig_report(sig, true);
	free(ans);
	sess_free(s);
	return ret;
}

/* Serve offers; the exit status.  sv was made before the rendezvous was
 * opened (its wake descriptor goes with it). */
static int
listener(struct sig *sig, struct serve *sv)
{
	int ret = serve_run(sv, sig);

	sig_report(sig, true);
	return ret;
}

int
main(int argc, char *argv[])
{
	static const int stops[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM };
	struct opts o;
	struct sig_opts so = { 0 };
	struct crypto_identity id = { 0 };
	struct serve_conf svc = { 0 };
	struct serve *sv = NULL;
	struct sess_conf sc;
	struct pump_conf pc;
	struct sigaction sa;
	struct sig *sig;
	size_t i;
	int ret = EXIT_USAGE;

	sanitize_fds();
	signal(SIGPIPE, SIG_IGN);
	opts_init(&o);
	switch (opts_parse(&o, argc, argv)) {
	case OPTS_EXIT:
		ret = flush_stdout() == -1 ? EXIT_USAGE : EXIT_OK;
		goto out;
	case OPTS_BAD:
		goto out;
	}
	log_verbose = o.verbose;
	if (crypto_init() == -1 || opts_settle(&o) == -1)
		goto out;
	if (o.show_id) {
		char key[CRYPTO_KEY_B64_LEN + 1], fp[CRYPTO_FP_LEN + 1];

		if (load_identity(&id) == -1)
			goto out;
		crypto_key_to_text(id.pub, key);
		crypto_fingerprint(id.pub, fp);
		crypto_identity_wipe(&id);
		printf("%s\n", key);
		/* The form messages show keys in: a user compares these. */
		if (flush_stdout() == -1)
			goto out;
		log_err("fingerprint %s", fp);
		ret = EXIT_OK;
		goto out;
	}
	if (trust_setup(&o) == -1 || load_identity(&id) == -1)
		goto out;
	if (o.nstun == 0)
		log_v(1, "no STUN server: only this host's addresses are offered, "
		    "so no NAT is crossed; IPv6 ones may still meet through "
		    "firewalls (see --stun, and p2pcat.conf.example)");

	/* Each ends the session as SIGTERM does: offers withdrawn, the
	 * peer told (a closed terminal's SIGHUP too). */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof stops / sizeof stops[0]; i++)
		sigaction(stops[i], &sa, NULL);

	/* A port taken is the user's to fix (status 1), before any
	 * rendezvous, a caller's as a listener's. */
	if (o.port && punch_port_check(o.port) == -1)
		goto out;
	so.verbose = o.verbose;
	so.poll_ms = (unsigned)(o.poll_s * 1000);
	so.stop = &stop_sig;
	so.api_key_file = o.api_key_file;
	if (o.listen) {
		sess_setup(&sc, &o, &id, false);
		pump_setup(&pc, &o);
		svc.name = o.peer;
		svc.keep = o.keep;
		/* Our port is one socket: one offer at a time on it. */
		svc.max_sessions = o.cmd ? (o.max_conns ? o.max_conns : DEF_MAX_CONNS) : 1;
		svc.max_kids = o.port ? 1 : svc.max_sessions + SERVE_HANDSHAKES;
		if (o.port)
			svc.max_sessions = 1;
		svc.wait_s = o.wait_s;
		svc.sess = &sc;
		svc.pump = &pc;
		svc.stop = &stop_sig;
		if ((sv = serve_new(&svc)) == NULL)
			goto out;
		so.wake_fd = serve_wake_fd(sv);
	}
	if ((sig = sig_open(o.signal, &so)) == NULL)
		goto out;
	ret = o.listen ? listener(sig, sv) : caller(&o, sig, &id);
	sig_close(sig);
out:
	serve_free(sv);
	crypto_identity_wipe(&id);
	opts_free(&o);
	return ret;
}
