/*
 * unit_config: the configuration file's format (config.c): comments,
 * white space, keys given twice, repeatable keys, malformed lines, and
 * what config_read refuses (a directory, a FIFO, a file too large).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static int failures;

#define CHECK(c, ...) do { if (!(c)) { failures++; printf("FAIL %s:%d: ", \
	__FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static const struct config_key keys[] = {
	{ "name", false },
	{ "stun", true },
	{ "turn", false },
	{ "wait", false },
	{ NULL, false }
};

/* What config_parse handed over: "key=val|key=val|...". */
struct got {
	char s[1024];
	int calls;
	const char *refuse;	/* a value the callback refuses */
};

static int
collect(void *ctx, const char *key, const char *val, const char *where)
{
	struct got *g = ctx;
	size_t n = strlen(g->s);

	(void)where;
	g->calls++;
	if (g->refuse && strcmp(val, g->refuse) == 0)
		return -1;
	snprintf(g->s + n, sizeof g->s - n, "%s%s=%s", n ? "|" : "", key, val);
	return 0;
}

/* Parse text: config_parse's result; what was taken in g. */
static int
parse(const char *text, struct got *g)
{
	memset(g, 0, sizeof *g);
	return config_parse("test", text, strlen(text), keys, collect, g);
}

static void
accepts(const char *text, const char *want)
{
	struct got g;
	int r = parse(text, &g);

	CHECK(r == 0 && strcmp(g.s, want) == 0, "`%s': %d, `%s', want `%s'", text, r,
	    g.s, want);
}

static void
refuses(const char *text, int calls)
{
	struct got g;
	int r = parse(text, &g);

	CHECK(r == -1 && g.calls == calls, "`%s': %d after %d calls, want -1 after %d",
	    text, r, g.calls, calls);
}

static void
test_parse(void)
{
	accepts("", "");
	accepts("\n\n   \n\t\n", "");
	accepts("# only a comment\n  # and another\n", "");
	accepts("name = bob\n", "name=bob");
	accepts("name=bob", "name=bob");			/* no final newline */
	accepts("  name   =\tbob  \t\n", "name=bob");
	accepts("name = bob\r\nwait = 5\r\n", "name=bob|wait=5");	/* CRLF */
	/* `#' after white space is a comment; inside a value it is not. */
	accepts("wait = 5  # seconds\n", "wait=5");
	accepts("wait = 5\t# seconds\n", "wait=5");
	accepts("turn = turn://u:pa#ss@h:3478\n", "turn=turn://u:pa#ss@h:3478");
	accepts("name = bob#1\n", "name=bob#1");
	/* An `=' in the value belongs to it. */
	accepts("turn = turn://u:a=b@h\n", "turn=turn://u:a=b@h");
	accepts("name =\n", "name=");
	/* Repeatable keys, in order. */
	accepts("stun = a:1\nstun = b:2\nname = x\nstun = c:3\n",
	    "stun=a:1|stun=b:2|name=x|stun=c:3");

	/* Given twice: refused at the second, after the first was taken. */
	refuses("name = a\nname = b\n", 1);
	refuses("wait = 1\nstun = s\nwait = 1\n", 2);
	/* Unknown keys, lines without `=', keys that differ in case. */
	refuses("bogus = 1\n", 0);
	refuses("name = a\nnonsense\n", 1);
	refuses("Name = a\n", 0);
	refuses("= value\n", 0);
	refuses("# name = a\n  wait # = 3\n", 0);
	/* A NUL byte anywhere: not a text file. */
	{
		struct got g = { .calls = 0 };
		static const char bin[] = "name = a\0b\n";

		CHECK(config_parse("test", bin, sizeof bin - 1, keys, collect, &g) == -1 &&
		    g.calls == 0, "a NUL byte accepted");
	}
	/* The callback's refusal ends the parse. */
	{
		struct got g;

		memset(&g, 0, sizeof g);
		g.refuse = "bad";
		CHECK(config_parse("test", "wait = bad\nname = x\n", 20, keys, collect, &g) == -1 &&
		    g.calls == 1, "the callback's refusal: %d calls", g.calls);
	}
	/* Control characters in a key; a line as long as a file may be. */
	refuses("na\033[2Jme = x\n", 0);
	{
		char *big = malloc(CONFIG_MAX + 1);
		struct got g;

		memset(big, 'x', CONFIG_MAX);
		big[CONFIG_MAX] = '\0';
		refuses(big, 0);
		memcpy(big, "name = ", 7);
		CHECK(parse(big, &g) == 0 && g.calls == 1, "a long value");
		free(big);
	}
}

static void
test_read(const char *dir)
{
	char path[4096], *text;
	size_t len;
	FILE *f;
	int i;

	snprintf(path, sizeof path, "%s/missing", dir);
	CHECK(config_read(path, &text, &len) == 0 && text == NULL, "a missing file");
	/* A directory is an error, not an empty file. */
	CHECK(config_read(dir, &text, &len) == -1, "a directory accepted");
	snprintf(path, sizeof path, "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0, "mkfifo: %s", strerror(errno));
	CHECK(config_read(path, &text, &len) == -1, "a FIFO accepted (or it blocked)");
	snprintf(path, sizeof path, "%s/ok", dir);
	f = fopen(path, "w");
	fputs("name = bob\n", f);
	fclose(f);
	CHECK(config_read(path, &text, &len) == 1 && len == 11 &&
	    strcmp(text, "name = bob\n") == 0, "a small file");
	free(text);
	/* CONFIG_MAX bytes will do, one more will not. */
	f = fopen(path, "w");
	for (i = 0; i < CONFIG_MAX; i++)
		fputc(i % 64 == 63 ? '\n' : '#', f);
	fclose(f);
	CHECK(config_read(path, &text, &len) == 1 && len == CONFIG_MAX, "CONFIG_MAX bytes");
	free(text);
	f = fopen(path, "a");
	fputc('\n', f);
	fclose(f);
	CHECK(config_read(path, &text, &len) == -1, "CONFIG_MAX + 1 bytes accepted");
	/* Settings that others can change are not ours (the store, the
	 * servers, the API key's file): as ssh's config is checked. */
	f = fopen(path, "w");
	fputs("name = bob\n", f);
	fclose(f);
	if (geteuid() == 0) {
		/* A group other than the owner's private one may not write
		 * it; root's own group (root, no members) may, as a user's
		 * private group may. */
		chmod(path, 0664);
		CHECK(chown(path, 0, 65534) == 0, "chown: %s", strerror(errno));
		CHECK(config_read(path, &text, &len) == -1,
		    "a file another group can write accepted");
		CHECK(chown(path, 0, 0) == 0, "chown: %s", strerror(errno));
		CHECK(config_read(path, &text, &len) == 1,
		    "a file only its owner's private group can write refused");
		free(text);
	}
	chmod(path, 0646);
	CHECK(config_read(path, &text, &len) == -1, "a file others can write accepted");
	chmod(path, 0644);
	CHECK(config_read(path, &text, &len) == 1, "a file others can read refused");
	free(text);
	if (geteuid() == 0) {
		CHECK(chown(path, 65534, 65534) == 0, "chown: %s", strerror(errno));
		CHECK(config_read(path, &text, &len) == -1, "another user's file accepted");
	}
	if (geteuid() != 0) {
		chmod(path, 0);
		CHECK(config_read(path, &text, &len) == -1, "an unreadable file");
	}
}

static void
test_path(void)
{
	char buf[64];

	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	setenv("HOME", "/home/u", 1);
	CHECK(config_path(buf, sizeof buf, "config") == 0 &&
	    strcmp(buf, "/x/cfg/p2pcat/config") == 0, "XDG_CONFIG_HOME: %s", buf);
	/* Relative or empty XDG_CONFIG_HOME is ignored, as the spec says. */
	setenv("XDG_CONFIG_HOME", "rel", 1);
	CHECK(config_path(buf, sizeof buf, "key") == 0 &&
	    strcmp(buf, "/home/u/.config/p2pcat/key") == 0, "HOME: %s", buf);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("HOME");
	CHECK(config_path(buf, sizeof buf, "key") == -1, "neither set");
	setenv("HOME", "/a/very/long/home/directory/that/will/not/fit/in/the/buffer", 1);
	CHECK(config_path(buf, sizeof buf, "key") == -1, "too long for buf");
}

int
main(void)
{
	char dir[] = "/tmp/unit_config.XXXXXX";
	char cmd[64];

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_parse();
	test_read(dir);
	test_path();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		failures++;
	printf("unit_config: %s\n", failures ? "FAILED" : "all passed");
	return failures != 0;
}
