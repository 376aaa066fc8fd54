/* unit_exec: -e's word splitting, against the cases of ncat's own test
 * (nmap's ncat/test/test-cmdline-split.c), and a command's start and
 * environment. */
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "exec.h"
#include "util.h"

/* Whether cmd splits into exactly the words of want (NULL-terminated). */
static int
splits(const char *cmd, const char *const *want)
{
	char **v = exec_split(cmd);
	int i, ok = v != NULL;

	for (i = 0; ok && want[i]; i++)
		ok = v[i] && strcmp(v[i], want[i]) == 0;
	ok = ok && v[i] == NULL;
	free(v);
	return ok;
}

/* Whether pid is gone (or a zombie, for init to reap) within ms. */
static int
gone_within(pid_t pid, int ms)
{
	char path[64], stat[256];
	FILE *f;

	for (; ms > 0; ms -= 10) {
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		if ((f = fopen(path, "r")) == NULL)
			return 1;
		stat[0] = '\0';
		if (fgets(stat, sizeof stat, f) == NULL)
			stat[0] = '\0';
		fclose(f);
		if (strstr(stat, ") Z ") != NULL)
			return 1;
		poll(NULL, 0, 10);
	}
	return 0;
}

/* An empty element of PATH is the current directory, for exec_check as
 * for execvp(3): first, in the middle, last. */
static void
check_empty_path_element(void)
{
	static const char *const paths[] = { ":/nonexistent", "/nonexistent::/x", "/nonexistent:" };
	char dir[] = "/tmp/unit_exec.XXXXXX", *old = getenv("PATH"), *saved;
	int fd, cwd = open(".", O_RDONLY | O_DIRECTORY);
	size_t i;

	saved = old ? strdup(old) : NULL;
	CHECK(cwd != -1 && mkdtemp(dir) != NULL && chdir(dir) == 0);
	fd = open("p2pcat-unit-prog", O_WRONLY | O_CREAT | O_EXCL, 0755);
	CHECK(fd != -1 && write(fd, "#!/bin/sh\n", 10) == 10);
	close(fd);
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		setenv("PATH", paths[i], 1);
		if (exec_check("p2pcat-unit-prog") != 0) {
			failures++;
			fprintf(stderr, "PATH `%s': ./p2pcat-unit-prog not found\n", paths[i]);
		}
		checks++;
	}
	setenv("PATH", "/nonexistent", 1);
	CHECK(exec_check("p2pcat-unit-prog") == -1);
	if (saved)
		setenv("PATH", saved, 1);
	else
		unsetenv("PATH");
	free(saved);
	unlink("p2pcat-unit-prog");
	CHECK(fchdir(cwd) == 0 && rmdir(dir) == 0);
	close(cwd);
}

/* In a child whose pidfd_open(2) fails (EMFILE, as at the descriptor
 * limit; seccomp makes it so): exec_start fails, and leaves no command
 * behind for its caller to take for a running one.  Whether it did: 1,
 * 0, or -1 when seccomp is not to be had here. */
static int
start_unwatchable(const struct exec_env *env)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EMFILE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof f / sizeof f[0], f };
	struct exec_proc p;
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
			_exit(77);
		_exit(exec_start("sleep 30", false, env, &p) == -1 && p.pid == -1 &&
		    p.pidfd == -1 && p.to_fd == -1 && p.from_fd == -1 ? 0 : 1);
	}
	if (pid == -1 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 0;
	return WEXITSTATUS(st) == 77 ? -1 : WEXITSTATUS(st) == 0;
}

int
main(void)
{
	static const struct {
		const char *cmd;
		const char *words[8];
	} cases[] = {
		{ "ncat -l -k", { "ncat", "-l", "-k", NULL } },
		{ "ncat localhost 793", { "ncat", "localhost", "793", NULL } },
		{ "./ncat scanme.nmap.org 80", { "./ncat", "scanme.nmap.org", "80", NULL } },
		{ "t\\ p\\ s hello world how are you?",
		    { "t p s", "hello", "world", "how", "are", "you?", NULL } },
		{ "t\\ p\\ s hello world how\\ are you?",
		    { "t p s", "hello", "world", "how are", "you?", NULL } },
		{ "ncat\\", { "ncat", NULL } },
		{ "a\\nb", { "anb", NULL } },
		{ " ncat a ", { "ncat", "a", NULL } },
		{ "\\ncat \\a", { "ncat", "a", NULL } },
		{ "ncat\\\\ a", { "ncat\\", "a", NULL } },
		{ "ncat\\ \\", { "ncat ", NULL } },
		{ "a\tb", { "a", "b", NULL } },
		{ "'a b'", { "'a", "b'", NULL } },	/* no quotes, no shell */
	};
	struct exec_env env = { "carol", "SHA256:x", "relayed" };
	struct exec_proc p;
	struct pollfd pfd;
	char buf[128], want[128];
	size_t i;
	ssize_t n;
	int st, leak, grandchild;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!splits(cases[i].cmd, cases[i].words)) {
			failures++;
			fprintf(stderr, "split `%s' wrong\n", cases[i].cmd);
		}
	CHECK(exec_split("") == NULL);
	CHECK(exec_split(" \t ") == NULL);
	CHECK(exec_split("\\") == NULL);

	CHECK(exec_check("sh -c true") == 0);
	CHECK(exec_check("/bin/sh") == 0);
	CHECK(exec_check("/nonexistent/x") == -1);
	CHECK(exec_check("no-such-program-p2pcat") == -1);
	CHECK(exec_check("/etc/passwd") == -1);	/* not executable */
	check_empty_path_element();

	/* The command sees its environment and our pipes, nothing else:
	 * not even a descriptor of ours that lacks O_CLOEXEC. */
	leak = open("/dev/null", O_RDONLY);
	CHECK(leak > 2);
	CHECK(exec_start("printf '%s|%s|%s|%s' \"$P2PCAT_PEER_NAME\" \"$P2PCAT_PEER_KEY\" "
	    "\"$P2PCAT_PATH\" $(ls /proc/self/fd | wc -l); cat >/dev/null",
	    true, &env, &p) == 0);
	close(leak);
	close(p.to_fd);	/* its stdin ends: cat exits */
	p.to_fd = -1;
	pfd.fd = p.from_fd;
	pfd.events = POLLIN;
	n = 0;
	while (n < (ssize_t)sizeof buf - 1 && poll(&pfd, 1, 5000) == 1) {
		ssize_t r = read(p.from_fd, buf + n, sizeof buf - 1 - n);

		if (r <= 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	/* ls sees 0, 1, 2 and its own listing of /proc/self/fd. */
	CHECK(strcmp(buf, "carol|SHA256:x|relayed|4") == 0);
	st = exec_reap(&p, 5000000);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(p.reaped && exec_poll(&p) == st);

	/* Its exit status comes back as it is. */
	CHECK(exec_start("exit 3", true, &env, &p) == 0);
	st = exec_reap(&p, 5000000);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	CHECK(strcmp(exec_status(st, buf, sizeof buf), "exited with status 3") == 0);

	/* One that will not end is stopped, and what it started with it. */
	CHECK(exec_start("sleep 30 & echo $!; wait", true, &env, &p) == 0);
	pfd.fd = p.from_fd;
	CHECK(poll(&pfd, 1, 5000) == 1 && (n = read(p.from_fd, buf, sizeof buf - 1)) > 0);
	buf[n > 0 ? n : 0] = '\0';
	grandchild = atoi(buf);
	CHECK(grandchild > 0);
	st = exec_reap(&p, 100000);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	snprintf(want, sizeof want, "was killed by signal %d (%s)", SIGTERM, strsignal(SIGTERM));
	CHECK(strcmp(exec_status(st, buf, sizeof buf), want) == 0);
	CHECK(grandchild > 0 && gone_within(grandchild, 2000));

	/* A command that cannot be watched is not started. */
	if ((n = start_unwatchable(&env)) == -1)
		fprintf(stderr, "unit_exec: no seccomp here: a failed pidfd_open not tried\n");
	else
		CHECK(n == 1);

	printf("unit_exec: %d checks, %d failed\n", checks + (int)i, failures);
	return failures ? 1 : 0;
}
