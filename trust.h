/*
 * trust.h: whether to talk to a peer, given its static key.  One function
 * decides (trust_decide), by these rules, in this order:
 *
 *  1. With --peer-key, only that key (a caller's peer, a listener's
 *     callers).
 *  2. A listener with --allow talks only to the keys its file lists.
 *  3. In passphrase mode the passphrase authenticates the peer (the
 *     session proves it): nothing else is asked, nothing recorded.
 *  4. Otherwise, trust on first use, as ssh does.  A caller looks up the
 *     name it called in known_peers; a listener looks up the name a caller
 *     claims in known_callers, a file of its own, since anyone may claim
 *     any name; a caller that claims none is taken as it is.  A name seen
 *     for the first time is recorded with its key and trusted; a name
 *     recorded with another key is refused.  Each record is scoped to the
 *     rendezvous store it was made in, since each store has its own
 *     names.  A line that cannot be read refuses the session, naming the
 *     line.
 *
 * Pins and allow lists hold in every mode.
 *
 * Files of names and keys: `name key [store]' lines, `#' starting a
 * comment line; a line without a store (as p2pcat 0.1 wrote them) holds
 * for every store.  An --allow file: one key or SHA256: fingerprint a
 * line, `#' starting a comment.  Both are read with util_read_trusted's
 * rules (others may read them, nobody else may change them).
 */
#ifndef TRUST_H
#define TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define TRUST_FILE_MAX	(1 << 20)	/* bytes in a file of keys */

struct trust_conf {
	bool listener;
	const char *called;		/* caller: the name we call */
	const char *store;		/* the rendezvous URL, as given */
	const char *pin;		/* --peer-key: a key or fingerprint, or NULL */
	const char *allow;		/* --allow: the file, or NULL */
	bool passphrase;
	const char *known_peers;	/* paths of the two files; NULL: none */
	const char *known_callers;
};

/* Whether text is a public key as `p2pcat --id' prints it, or a SHA256:
 * fingerprint of one. */
bool trust_valid_key(const char *text);

/* At startup: the files this run will read (the --allow file, and
 * known_peers or known_callers when they exist) are ours to trust and
 * every line of them reads.  0, or -1 after printing why. */
int trust_check(const struct trust_conf *c);

/* Decide whether to talk to the peer whose static key is pub.  claimed:
 * the name a caller gave ("" for none); unused by a caller.  Records a
 * first contact.  0 talk, -1 refuse, TRUST_BROKEN when a file of ours
 * cannot be used (unreadable, a line that does not read, others may
 * change it, it cannot be written): no verdict on the key, a
 * configuration error.  Why is printed, in one line. */
#define TRUST_BROKEN	(-2)
int trust_decide(const struct trust_conf *c, const char *claimed,
    const uint8_t pub[CRYPTO_KEY_LEN]);

/* The parsers, on a file's text (len bytes; what names it in messages).
 * trust_allow_parse: 1 pub is listed (pub NULL: never), 0 not, -1 a line
 * is not a key (printed, with its number).  trust_known_parse: looks name
 * up for store (pub NULL: only checks the lines); *line is set to the
 * number of the line that decided, or 0. */
enum trust_known { TRUST_UNKNOWN, TRUST_KNOWN, TRUST_MISMATCH };
int trust_allow_parse(const char *buf, size_t len, const char *what,
    const uint8_t *pub);
int trust_known_parse(const char *buf, size_t len, const char *what,
    const char *name, const char *store, const uint8_t *pub, int *line);

/* The scope of store URL url into buf: the URL with `firestore:P/(default)'
 * written `firestore:P', trailing slashes of a dir: path dropped and a
 * relative one made absolute from the working directory.  -1 when it
 * does not fit or holds control characters. */
int trust_scope(const char *url, char *buf, size_t size);

#endif
