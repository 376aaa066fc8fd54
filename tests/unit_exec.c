/* unit_exec: -e's word splitting, against the cases of ncat's own test
 * (nmap's ncat/test/test-cmdline-split.c), and a command's start and
 * environment. */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "util.h"

static int fails, checks;

#define CHECK(c) do { checks++; if (!(c)) { fails++; \
	fprintf(stderr, "%s:%d: CHECK(%s) failed\\n", __FILE__, __LINE__, #c); } } while (0)

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
	char buf[128];
	size_t i;
	ssize_t n;
	int to, from, st;
	pid_t pid;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (!splits(cases[i].cmd, cases[i].words)) {
			fails++;
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

	/* The command sees its environment and our pipes, nothing else. */
	pid = exec_start("printf '%s|%s|%s|%s' \"$P2PCAT_PEER_NAME\" \"$P2PCAT_PEER_KEY\" "
	    "\"$P2PCAT_PATH\" $(ls /proc/self/fd | wc -l); cat >/dev/null",
	    true, &env, &to, &from);
	CHECK(pid > 0);
	close(to);	/* its stdin ends: cat exits */
	n = read(from, buf, sizeof buf - 1);
	CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	/* ls sees 0, 1, 2 and its own listing of /proc/self/fd. */
	CHECK(strcmp(buf, "carol|SHA256:x|relayed|4") == 0);
	close(from);
	exec_reap(pid, 5000000);
	CHECK(waitpid(pid, &st, WNOHANG) == -1);	/* reaped already */

	/* One that will not end is stopped. */
	pid = exec_start("sleep 30", false, &env, &to, &from);
	CHECK(pid > 0);
	exec_reap(pid, 100000);
	CHECK(kill(pid, 0) == -1);
	close(to);
	close(from);

	printf("unit_exec: %d checks, %d failed\n", checks + (int)i, fails);
	return fails ? 1 : 0;
}
