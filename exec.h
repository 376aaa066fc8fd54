/*
 * exec.h: the command a session runs (-e, -c), as ncat runs them: its
 * standard input and output are the session, its standard error ours.
 */
#ifndef EXEC_H
#define EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Who the command talks to, for its environment (P2PCAT_PEER_NAME,
 * P2PCAT_PEER_KEY, P2PCAT_PATH). */
struct exec_env {
	const char *peer_name;		/* "" when the caller gave none */
	const char *peer_key;		/* its fingerprint */
	const char *path;		/* "direct" or "relayed" */
};

/* cmd split into words as ncat splits -e: at blanks, a backslash taking
 * the next character literally, no quotes, no shell.  A NULL-terminated
 * vector in one allocation (free it), or NULL when cmd has no word (or
 * memory ran out). */
char **exec_split(const char *cmd);

/* Whether prog (-e) names a program that can be run: 0, or -1 after
 * printing why. */
int exec_check(const char *prog);

/* Start prog (-e; shell: /bin/sh -c prog, for -c) with its standard input
 * and output on pipes: its pid, with *to_fd (its stdin, ours to write,
 * non-blocking) and *from_fd (its stdout, ours to read); -1 after
 * printing why.  The command dies with us (PR_SET_PDEATHSIG). */
pid_t exec_start(const char *prog, bool shell, const struct exec_env *env,
    int *to_fd, int *from_fd);

/* Wait up to grace_us for pid to end, then SIGTERM it, then SIGKILL:
 * it is reaped when this returns. */
void exec_reap(pid_t pid, uint64_t grace_us);

#endif
