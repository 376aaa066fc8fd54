/*
 * opts.h: the settings of a run, from the command line, then the
 * environment, then the configuration file (config.h), each checked
 * before anything waits: values, conflicts, the files they name, the
 * STUN and TURN servers.
 */
#ifndef OPTS_H
#define OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "punch.h"

/* Settings the command line gave, which beat the environment and the
 * configuration file. */
struct opts_given {
	bool signal, wait, idle, poll, port, stun, turn;
};

struct opts {
	bool listen, keep, send_only, recv_only, show_id, udp, progress;
	int verbose, port;
	double wait_s, idle_s, poll_s;
	const char *peer;		/* caller: whom to call; listener: our name */
	char *signal;			/* rendezvous URL */
	char *name;			/* from P2PCAT_NAME or the config */
	char *api_key_file;
	int nstun;
	char *stun[PUNCH_MAX_STUN];	/* --stun HOST:PORT, repeatable */
	char *turn;			/* turn://USER:PASS@HOST:PORT (a secret) */
	char *turn_file;		/* --turn-file, or turn-file in the config */
	bool turn_argv;			/* --turn: the password was in argv */
	const char *peer_key;		/* --peer-key: the key the peer must have */
	const char *allow;		/* --allow: file of callers' keys */
	const char *secret_file;	/* --secret-file */
	char *secret;			/* passphrase mode */
	size_t secretlen;
	int cipher;			/* P2PCAT_CIPHER; 0: the fastest both have */
	const char *cmd;		/* -e PROG or -c CMD */
	bool shell;			/* it was -c */
	bool allow_any;			/* --allow-any */
	int max_conns;			/* --max-conns; 0: not given */
	struct opts_given given;
};

enum { OPTS_RUN, OPTS_EXIT, OPTS_BAD };

/* Defaults into o (which opts_free frees). */
void opts_init(struct opts *o);
/* The command line (getopt_long; its own messages, each one line): what
 * to do, OPTS_RUN; OPTS_EXIT once -h or --version printed on stdout;
 * OPTS_BAD after printing why.  Strings may point into argv, and a TURN
 * password there is overwritten, so that ps(1) shows it no longer. */
int opts_parse(struct opts *o, int argc, char *argv[]);
/* The environment and the configuration file fill in what the command
 * line left; then the names, the files named (passphrase, TURN) and the
 * command are checked, and the servers resolved.  0, or -1 after
 * printing why.  Nothing here waits, or sends a packet but the DNS
 * queries of the servers' names. */
int opts_settle(struct opts *o);
/* Settings from the configuration file's text (config.h), what the
 * command line gave winning: 0, or -1 after printing why. */
int opts_config(struct opts *o, const char *name, const char *text, size_t len);
/* s for a message: at most 64 bytes of it, in buf (68 bytes); messages
 * escape what is not printable (util.h). */
const char *opts_shown(const char *s, char buf[68]);
/* Wipe the secrets, free what o owns. */
void opts_free(struct opts *o);

#endif
