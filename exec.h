/*
 * exec.h: the command a session runs (-e, -c), as ncat runs them: its
 * standard input and output are the session, its standard error ours.
 */
#ifndef EXEC_H
#define EXEC_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A command that runs. */
struct exec_proc {
	pid_t pid;
	int pidfd;			/* readable once it has exited */
	int to_fd;			/* its stdin: ours to write, non-blocking */
	int from_fd;			/* its stdout: ours to read, non-blocking */
	bool reaped;			/* it has exited, with this wait status: */
	int status;
};

/* Start prog (-e; shell: /bin/sh -c prog, for -c) with its standard input
 * and output on pipes, in a process group of its own: 0, or -1 after
 * printing why, p->pid and p's descriptors -1 (nothing runs).  The
 * command dies with us (PR_SET_PDEATHSIG). */
int exec_start(const char *prog, bool shell, const struct exec_env *env,
    struct exec_proc *p);

/* Reap it if it has exited: its wait status, or -1 while it runs. */
int exec_poll(struct exec_proc *p);

/* Wait up to grace_us for it to end, then SIGTERM its process group, then
 * SIGKILL: its wait status; its descriptors are closed. */
int exec_reap(struct exec_proc *p, uint64_t grace_us);

/* How a command ended, in words that follow "the command", into buf
 * ("exited with status 3", "was killed by signal 9 (Killed)"): buf. */
const char *exec_status(int status, char *buf, size_t size);

#endif
