/*
 * exec.c: the command a session runs (-e PROG, -c CMD).
 *
 * As ncat does: -e splits PROG into words itself and runs it without a
 * shell, -c hands CMD to /bin/sh -c.  The command's standard input and
 * output are pipes to the session, its standard error is ours, and its
 * environment says who is on the other end.  It gets nothing else of
 * ours: no other descriptor, no ignored SIGPIPE.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"

#define SH		"/bin/sh"
#define TERM_GRACE_US	1000000	/* after SIGTERM, before SIGKILL */

char **
exec_split(const char *cmd)
{
	size_t n = strlen(cmd), words = 0, i;
	char **v, *out;
	bool inword = false;

	/* At most n / 2 + 1 words: room for the pointers, then the text. */
	if ((v = malloc((n / 2 + 2) * sizeof *v + n + 1)) == NULL)
		return NULL;
	out = (char *)(v + n / 2 + 2);
	for (i = 0; i < n; i++) {
		char ch = cmd[i];

		if (ch == ' ' || ch == '\t' || ch == '\n') {
			if (inword)
				*out++ = '\0';
			inword = false;
			continue;
		}
		if (ch == '\\') {
			if (++i == n)
				break;	/* a trailing backslash escapes nothing */
			ch = cmd[i];
		}
		if (!inword)
			v[words++] = out;
		inword = true;
		*out++ = ch;
	}
	*out = '\0';
	v[words] = NULL;
	if (words == 0) {
		free(v);
		return NULL;
	}
	return v;
}

/* Whether path is a regular file we may execute. */
static bool
runnable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int
exec_check(const char *prog)
{
	char **argv = exec_split(prog), path[PATH_MAX];
	const char *p, *dirs = getenv("PATH");
	int ret = -1;

	if (argv == NULL) {
		log_err("bad program `%s' for -e: no words", prog);
		return -1;
	}
	if (strchr(argv[0], '/')) {
		ret = runnable(argv[0]) ? 0 : -1;
	} else {
		/* As execvp(3) searches. */
		for (p = dirs ? dirs : "/bin:/usr/bin"; ret == -1 && p; ) {
			const char *colon = strchr(p, ':');
			int len = colon ? (int)(colon - p) : (int)strlen(p);

			if (snprintf(path, sizeof path, "%.*s/%s", len, len ? p : ".",
			    argv[0]) < (int)sizeof path && runnable(path))
				ret = 0;
			p = colon ? colon + 1 : NULL;
		}
	}
	if (ret == -1)
		log_err("cannot run `%s' for -e: not an executable file%s", argv[0],
		    strchr(argv[0], '/') ? "" : " in PATH");
	free(argv);
	return ret;
}

/* In the child, before exec: what the command must not inherit. */
static void
child_setup(int to, int from, const struct exec_env *env, pid_t parent)
{
	sigset_t none;

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
		_exit(127);
	if (dup2(to, 0) == -1 || dup2(from, 1) == -1)
		_exit(127);
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setenv("P2PCAT_PEER_NAME", env->peer_name, 1) == -1 ||
	    setenv("P2PCAT_PEER_KEY", env->peer_key, 1) == -1 ||
	    setenv("P2PCAT_PATH", env->path, 1) == -1)
		_exit(127);
}

pid_t
exec_start(const char *prog, bool shell, const struct exec_env *env,
    int *to_fd, int *from_fd)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char **argv = NULL;
	pid_t pid = -1, parent = getpid();

	if (!shell && (argv = exec_split(prog)) == NULL) {
		log_err("bad program `%s' for -e", prog);
		return -1;
	}
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1) {
		log_errno("pipe");
		goto fail;
	}
	if ((pid = fork()) == -1) {
		log_errno("fork");
		goto fail;
	}
	if (pid == 0) {
		child_setup(in[0], out[1], env, parent);
		if (shell)
			execl(SH, "sh", "-c", prog, (char *)NULL);
		else
			execvp(argv[0], argv);
		log_errno("cannot run `%s'", shell ? SH : argv[0]);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	fcntl(in[1], F_SETFL, O_NONBLOCK);	/* our own pipe, no one else's */
	*to_fd = in[1];
	*from_fd = out[0];
	free(argv);
	return pid;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] != -1)
			close(in[i]);
		if (out[i] != -1)
			close(out[i]);
	}
	free(argv);
	return -1;
}

/* Wait for pid until deadline (now_us() time): true once reaped. */
static bool
reaped_by(pid_t pid, uint64_t deadline)
{
	for (;;) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r == -1 && errno != EINTR))
			return true;
		if (now_us() >= deadline)
			return false;
		poll(NULL, 0, 10);
	}
}

void
exec_reap(pid_t pid, uint64_t grace_us)
{
	if (pid <= 0 || reaped_by(pid, now_us() + grace_us))
		return;
	kill(pid, SIGTERM);
	if (reaped_by(pid, now_us() + TERM_GRACE_US))
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}
