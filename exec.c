/*
 * exec.c: the command a session runs (-e PROG, -c CMD).
 *
 * As ncat does: -e splits PROG into words itself and runs it without a
 * shell, -c hands CMD to /bin/sh -c.  The command's standard input and
 * output are pipes to the session, its standard error is ours, and its
 * environment says who is on the other end.  It gets nothing else of
 * ours: no other descriptor, no ignored SIGPIPE.
 */
#include <sys/pidfd.h>
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

			/* An empty element is the current directory. */
			if (snprintf(path, sizeof path, "%.*s/%s", len ? len : 1,
			    len ? p : ".", argv[0]) < (int)sizeof path && runnable(path))
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
	/* A group of its own, so that what it starts ends with it. */
	if (setpgid(0, 0) == -1 || dup2(to, 0) == -1 || dup2(from, 1) == -1)
		_exit(127);
	if (close_range(3, ~0U, 0) == -1)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setenv("P2PCAT_PEER_NAME", env->peer_name, 1) == -1 ||
	    setenv("P2PCAT_PEER_KEY", env->peer_key, 1) == -1 ||
	    setenv("P2PCAT_PATH", env->path, 1) == -1)
		_exit(127);
}

int
exec_start(const char *prog, bool shell, const struct exec_env *env,
    struct exec_proc *p)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char **argv = NULL;
	pid_t pid, parent = getpid();

	memset(p, 0, sizeof *p);
	p->pid = p->pidfd = p->to_fd = p->from_fd = -1;
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
	/* Ours too, against the race with its own setpgid. */
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	p->pid = pid;
	p->to_fd = in[1];
	p->from_fd = out[0];
	free(argv);
	/* Our own pipes, no one else's: non-blocking is ours to set. */
	if (fcntl(p->to_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(p->from_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    (p->pidfd = pidfd_open(pid, 0)) == -1) {
		log_errno("cannot watch the command");
		exec_reap(p, 0);
		/* Not a command that runs: its caller keeps its own
		 * descriptors. */
		p->pid = -1;
		return -1;
	}
	return 0;
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

int
exec_poll(struct exec_proc *p)
{
	int st;
	pid_t r;

	if (p->reaped || p->pid <= 0)
		return p->reaped ? p->status : -1;
	while ((r = waitpid(p->pid, &st, WNOHANG)) == -1 && errno == EINTR)
		;
	if (r != p->pid)
		return -1;
	p->reaped = true;
	p->status = st;
	return st;
}

/* Wait until deadline (now_us() time) for it to exit: its wait status,
 * or -1. */
static int
wait_until(struct exec_proc *p, uint64_t deadline)
{
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
	int st;

	while ((st = exec_poll(p)) == -1 && now_us() < deadline && p->pidfd != -1)
		if (poll(&pfd, 1, timeout_ms(deadline, now_us())) == -1 && errno != EINTR)
			break;
	return st;
}

int
exec_reap(struct exec_proc *p, uint64_t grace_us)
{
	int st = -1;

	if (p->to_fd != -1)
		close(p->to_fd);
	if (p->from_fd != -1)
		close(p->from_fd);
	p->to_fd = p->from_fd = -1;
	/* Its group is signalled while it is not yet reaped, so that the
	 * group's number cannot have gone to someone else. */
	if (p->pid > 0 && (st = wait_until(p, now_us() + grace_us)) == -1) {
		kill(-p->pid, SIGTERM);
		if ((st = wait_until(p, now_us() + TERM_GRACE_US)) == -1) {
			kill(-p->pid, SIGKILL);
			while (waitpid(p->pid, &st, 0) == -1 && errno == EINTR)
				;
			p->reaped = true;
			p->status = st;
		}
	}
	if (p->pidfd != -1)
		close(p->pidfd);
	p->pidfd = -1;
	return p->reaped ? p->status : st;
}

const char *
exec_status(int st, char *buf, size_t size)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	else
		snprintf(buf, size, "ended with wait status %#x", (unsigned)st);
	return buf;
}
