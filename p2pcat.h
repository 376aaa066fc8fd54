/* p2pcat.h: the exit status and the CLOSE codes, shared by the modules
 * that end a session (p2pcat.c, pump.c, serve.c). */
#ifndef P2PCAT_H
#define P2PCAT_H

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
#define CLOSE_BUSY	3	/* the listener serves as many as it may */

#endif
