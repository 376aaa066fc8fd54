/*
 * unit_trust: each rule of trust_decide (trust.h) on real files in a
 * scratch directory, the startup check, the parsers' line numbers, and
 * the store scopes.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "trust.h"
#include "util.h"

static int failures, checks;
static char dir[] = "/tmp/unit_trust.XXXXXX";
static char kp[256], kc[256], allow[256];
static uint8_t alice[CRYPTO_KEY_LEN], bob[CRYPTO_KEY_LEN], mallory[CRYPTO_KEY_LEN];
static char alice_t[CRYPTO_KEY_B64_LEN + 1], bob_t[CRYPTO_KEY_B64_LEN + 1];
static char mallory_t[CRYPTO_KEY_B64_LEN + 1], bob_fp[CRYPTO_FP_LEN + 1];

static void
check(int ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok)
		return;
	failures++;
	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
put(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF || fclose(f) == EOF) {
		fprintf(stderr, "unit_trust: cannot write %s\n", path);
		exit(1);
	}
	chmod(path, mode);
}

/* The file's text ("" when it does not exist), in a static buffer. */
static const char *
get(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static struct trust_conf
caller_conf(const char *called)
{
	struct trust_conf c = {
		.called = called, .store = "dir:/srv/meet",
		.known_peers = kp, .known_callers = kc,
	};

	return c;
}

static struct trust_conf
listener_conf(void)
{
	struct trust_conf c = {
		.listener = true, .store = "dir:/srv/meet",
		.known_peers = kp, .known_callers = kc,
	};

	return c;
}

static void
key(uint8_t pub[CRYPTO_KEY_LEN], char text[CRYPTO_KEY_B64_LEN + 1])
{
	uint8_t priv[CRYPTO_KEY_LEN];

	randombytes_buf(priv, sizeof priv);
	crypto_scalarmult_base(pub, priv);
	crypto_key_to_text(pub, text);
}

/* Rule 1: --peer-key decides alone, in every mode. */
static void
pin(void)
{
	struct trust_conf c = caller_conf("bob");
	char line[256];

	unlink(kp);
	c.pin = bob_t;
	check(trust_decide(&c, "", bob) == 0, "pin: bob's key refused");
	check(trust_decide(&c, "", mallory) == -1, "pin: another key taken");
	c.pin = bob_fp;
	check(trust_decide(&c, "", bob) == 0, "pin: bob's fingerprint refused");
	check(trust_decide(&c, "", mallory) == -1, "pin: another key taken by fingerprint");
	check(access(kp, F_OK) == -1, "pin: known_peers written");
	/* known_peers says otherwise: the pin wins. */
	snprintf(line, sizeof line, "bob %s\n", mallory_t);
	put(kp, line, 0600);
	check(trust_decide(&c, "", bob) == 0, "pin: known_peers overrode the pin");
	/* Passphrase mode: the pin still holds (issue 10.1). */
	c.passphrase = true;
	check(trust_decide(&c, "", mallory) == -1, "pin: passphrase mode took another key");
	check(trust_decide(&c, "", bob) == 0, "pin: passphrase mode refused the pinned key");
	unlink(kp);
	/* A listener's --peer-key: that caller only, whatever name it gives. */
	{
		struct trust_conf l = listener_conf();

		l.pin = bob_t;
		check(trust_decide(&l, "", bob) == 0, "pin: a listener refused the pinned caller");
		check(trust_decide(&l, "bob", mallory) == -1, "pin: a listener took another caller");
		check(access(kc, F_OK) == -1, "pin: a listener wrote known_callers");
	}
	printf("pin: the key or its fingerprint, nothing else, in every mode\n");
}

/* Rule 2: --allow decides alone, in every mode. */
static void
allow_list(void)
{
	struct trust_conf c = listener_conf();
	char text[512];

	snprintf(text, sizeof text, "# callers\n\n  %s  # alice\n%s#bob\n", alice_t, bob_fp);
	put(allow, text, 0644);	/* others may read it */
	c.allow = allow;
	check(trust_check(&c) == 0, "allow: a good file refused at startup");
	check(trust_decide(&c, "", alice) == 0, "allow: a listed key refused");
	check(trust_decide(&c, "bob", bob) == 0, "allow: a listed fingerprint refused");
	check(trust_decide(&c, "", mallory) == -1, "allow: an unlisted key taken");
	check(trust_decide(&c, "alice", mallory) == -1, "allow: an unlisted key taken by name");
	c.passphrase = true;
	check(trust_decide(&c, "", mallory) == -1, "allow: passphrase mode took an unlisted key");
	check(trust_decide(&c, "", alice) == 0, "allow: passphrase mode refused a listed key");
	c.passphrase = false;
	check(access(kc, F_OK) == -1, "allow: known_callers written");

	/* A line that is not a key: refused at startup, and every caller. */
	snprintf(text, sizeof text, "%s\nalice %s\n", alice_t, alice_t);
	put(allow, text, 0600);
	check(trust_check(&c) == -1, "allow: a `name key' line passed the startup check");
	check(trust_decide(&c, "", alice) == TRUST_BROKEN, "allow: a malformed file let alice in");
	snprintf(text, sizeof text, "%s extra\n", alice_t);
	put(allow, text, 0600);
	check(trust_check(&c) == -1, "allow: words after the key passed");
	/* Others may not change it; it must exist. */
	snprintf(text, sizeof text, "%s\n", alice_t);
	put(allow, text, 0602);
	check(trust_check(&c) == -1, "allow: a file others can write passed");
	check(trust_decide(&c, "", alice) == TRUST_BROKEN, "allow: a file others can write let alice in");
	/* A group's write bit counts unless it is the owner's private group
	 * (util_read_trusted): root can give it another. */
	if (geteuid() == 0) {
		put(allow, text, 0620);
		check(chown(allow, 0, 65534) == 0, "chown");
		check(trust_check(&c) == -1, "allow: a file another group can write passed");
		check(trust_decide(&c, "", alice) == TRUST_BROKEN,
		    "allow: a file another group can write let alice in");
	}
	put(allow, text, 0602);
	check(trust_check(&c) == -1, "allow: a world-writable file passed");
	unlink(allow);
	check(trust_check(&c) == -1, "allow: a missing file passed the startup check");
	check(trust_decide(&c, "", alice) == TRUST_BROKEN, "allow: a missing file let alice in");
	printf("allow: listed keys and fingerprints only, in every mode; a bad, "
	    "missing or writable file refuses\n");
}

/* Rule 3: the passphrase replaces trust on first use. */
static void
passphrase(void)
{
	struct trust_conf c = caller_conf("bob");
	char line[256];

	snprintf(line, sizeof line, "bob %s dir:/srv/meet\n", mallory_t);
	put(kp, line, 0600);
	c.passphrase = true;
	check(trust_decide(&c, "", bob) == 0, "passphrase: refused by known_peers");
	check(strcmp(get(kp), line) == 0, "passphrase: known_peers changed");
	unlink(kp);
	check(trust_decide(&c, "", bob) == 0, "passphrase: refused a new peer");
	check(access(kp, F_OK) == -1, "passphrase: known_peers written");
	printf("passphrase: no first contact, no known_peers\n");
}

/* Rule 4, the caller: known_peers, scoped by store. */
static void
caller_tofu(void)
{
	struct trust_conf c = caller_conf("bob"), other = caller_conf("bob");
	char want[512], line[256];

	unlink(kp);
	check(trust_decide(&c, "", bob) == 0, "tofu: first contact refused");
	snprintf(want, sizeof want, "bob %s dir:/srv/meet\n", bob_t);
	check(strcmp(get(kp), want) == 0, "tofu: recorded `%s'", get(kp));
	check(trust_decide(&c, "", bob) == 0, "tofu: second contact refused");
	check(trust_decide(&c, "", mallory) == -1, "tofu: another key taken");
	check(strcmp(get(kp), want) == 0, "tofu: a refusal changed known_peers");
	/* The store as given: a trailing slash is the same directory. */
	c.store = "dir:/srv/meet/";
	check(trust_decide(&c, "", mallory) == -1, "tofu: dir:/srv/meet/ is another store");
	/* Another store has its own bob. */
	other.store = "firestore:proj";
	check(trust_decide(&other, "", mallory) == 0, "tofu: bob of another store refused");
	snprintf(want + strlen(want), sizeof want - strlen(want), "bob %s firestore:proj\n",
	    mallory_t);
	check(strcmp(get(kp), want) == 0, "tofu: second store recorded `%s'", get(kp));
	other.store = "firestore:proj/(default)";
	check(trust_decide(&other, "", mallory) == 0, "tofu: firestore:proj/(default) "
	    "is not firestore:proj");
	check(trust_decide(&other, "", bob) == -1, "tofu: bob's key taken in firestore:proj");
	/* A line without a store (p2pcat 0.1) holds in every store. */
	snprintf(line, sizeof line, "# old\nbob %s\n", bob_t);
	put(kp, line, 0600);
	check(trust_decide(&other, "", mallory) == -1, "tofu: a store-less line ignored");
	check(trust_decide(&other, "", bob) == 0, "tofu: a store-less line refused its key");
	/* A path with blanks as the store. */
	unlink(kp);
	other.store = "dir:/srv/our meet";
	check(trust_decide(&other, "", bob) == 0, "tofu: a store with a blank refused");
	check(trust_decide(&other, "", bob) == 0, "tofu: a store with a blank not found again");
	check(trust_decide(&other, "", mallory) == -1, "tofu: a store with a blank ignored");
	/* A file without its last newline: the record goes on a line of its own. */
	snprintf(line, sizeof line, "carol %s dir:/srv/meet", alice_t);
	put(kp, line, 0600);
	check(trust_decide(&c, "", bob) == 0, "tofu: first contact after a cut line");
	snprintf(want, sizeof want, "%s\nbob %s dir:/srv/meet\n", line, bob_t);
	check(strcmp(get(kp), want) == 0, "tofu: appended to a cut line: `%s'", get(kp));
	unlink(kp);
	printf("tofu: first contact recorded with its store, a mismatch refused, "
	    "stores apart\n");
}

/* A line that cannot be read refuses, and changes nothing (issue 10.8). */
static void
corrupt(void)
{
	struct trust_conf c = caller_conf("bob");
	static const char *bad[] = {
		"bob notakey\n", "bob\n", "bob/x %s\n", "b@b %s\n", ".bob %s\n",
		"bob %s dir:/a\001b\n", "bob %s=\n",
	};
	char line[256], text[512];
	size_t i;
	int n;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(line, sizeof line, bad[i], bob_t);
		snprintf(text, sizeof text, "# ok\ncarol %s\n%s", alice_t, line);
		put(kp, text, 0600);
		check(trust_check(&c) == -1, "corrupt: `%s' passed the startup check", line);
		check(trust_decide(&c, "", bob) == TRUST_BROKEN, "corrupt: `%s' let bob in", line);
		check(strcmp(get(kp), text) == 0, "corrupt: `%s' appended to", line);
		check(trust_known_parse(text, strlen(text), "kp", "bob", "dir:/srv/meet", bob,
		    &n) == -1 && n == 3, "corrupt: `%s' on line %d, not 3", line, n);
	}
	/* A corrupt line about someone else refuses too: the file is broken. */
	snprintf(text, sizeof text, "bob %s\ncarol junk\n", bob_t);
	put(kp, text, 0600);
	check(trust_decide(&c, "", bob) == TRUST_BROKEN, "corrupt: another name's bad line ignored");
	/* Others may read known_peers, nobody else change it; a link is refused. */
	snprintf(text, sizeof text, "bob %s\n", bob_t);
	put(kp, text, 0644);
	check(trust_decide(&c, "", bob) == 0, "mode: a 0644 known_peers refused");
	chmod(kp, 0646);
	check(trust_check(&c) == -1, "mode: a known_peers others can write passed");
	check(trust_decide(&c, "", bob) == TRUST_BROKEN, "mode: a known_peers others can write used");
	if (geteuid() == 0) {
		chmod(kp, 0664);
		check(chown(kp, 0, 65534) == 0, "chown");
		check(trust_check(&c) == -1, "mode: a known_peers another group can write passed");
		check(trust_decide(&c, "", bob) == TRUST_BROKEN,
		    "mode: a known_peers another group can write used");
		check(chown(kp, 0, 0) == 0, "chown");
	}
	chmod(kp, 0600);
	{
		char real[300];

		snprintf(real, sizeof real, "%s.real", kp);
		rename(kp, real);
		check(symlink(real, kp) == 0, "symlink");
		check(trust_decide(&c, "", bob) == TRUST_BROKEN, "mode: a symbolic link used");
		unlink(kp);
		unlink(real);
	}
	printf("corrupt: a bad line refuses, names its line, appends nothing; "
	    "a writable file or a link refuses\n");
}

/* Rule 4, the listener: names callers claim, in known_callers only. */
static void
claimed(void)
{
	struct trust_conf l = listener_conf(), c = caller_conf("carol");
	char want[256];

	unlink(kp);
	unlink(kc);
	check(trust_decide(&l, "", mallory) == 0, "claimed: an anonymous caller refused");
	check(access(kc, F_OK) == -1, "claimed: an anonymous caller recorded");
	/* Mallory calls herself carol (issue 10.4). */
	check(trust_decide(&l, "carol", mallory) == 0, "claimed: first contact refused");
	snprintf(want, sizeof want, "carol %s dir:/srv/meet\n", mallory_t);
	check(strcmp(get(kc), want) == 0, "claimed: recorded `%s'", get(kc));
	check(access(kp, F_OK) == -1, "claimed: the claim went into known_peers");
	check(trust_decide(&l, "carol", alice) == -1, "claimed: another key took the name");
	check(trust_decide(&l, "carol", mallory) == 0, "claimed: the same key refused");
	/* We call carol: the claim says nothing about her. */
	check(trust_decide(&c, "", alice) == 0, "claimed: calling carol is no first contact");
	snprintf(want, sizeof want, "carol %s dir:/srv/meet\n", alice_t);
	check(strcmp(get(kp), want) == 0, "claimed: known_peers is `%s'", get(kp));
	check(trust_decide(&c, "", mallory) == -1, "claimed: the impostor answered for carol");
	unlink(kp);
	unlink(kc);
	printf("claimed: callers' names in known_callers, never used to call\n");
}

static void
scopes(void)
{
	static const struct {
		const char *url, *want;
	} v[] = {
		{ "dir:", "dir:" },
		{ "dir:/", "dir:/" },
		{ "dir:/srv/meet", "dir:/srv/meet" },
		{ "dir:/srv/meet//", "dir:/srv/meet" },
		{ "dir:rel/x/", "dir:/usr/rel/x" },	/* run in /usr */
		{ "firestore:p", "firestore:p" },
		{ "firestore:p/(default)", "firestore:p" },
		{ "firestore:p/db2", "firestore:p/db2" },
		{ "dir:/a b ", "dir:/a b" },
		{ "dir:/a\nb", NULL },
		{ "dir:/a\033b", NULL },
	};
	char buf[64], here[PATH_MAX];
	size_t i;

	if (getcwd(here, sizeof here) == NULL || chdir("/usr") == -1) {
		perror("scopes: chdir");
		exit(1);
	}
	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		int r = trust_scope(v[i].url, buf, sizeof buf);

		if (v[i].want == NULL)
			check(r == -1, "scope of a URL with a control character");
		else
			check(r == 0 && strcmp(buf, v[i].want) == 0, "scope of `%s': `%s'",
			    v[i].url, r == 0 ? buf : "(error)");
	}
	check(chdir("/") == 0 && trust_scope("dir:meet", buf, sizeof buf) == 0 &&
	    strcmp(buf, "dir:/meet") == 0, "scope of dir:meet in /: `%s'", buf);
	if (chdir(here) == -1) {
		perror("scopes: chdir back");
		exit(1);
	}
	check(trust_valid_key(bob_t) && trust_valid_key(bob_fp), "valid_key: bob");
	check(!trust_valid_key("SHA256:abc") && !trust_valid_key("") &&
	    !trust_valid_key("SHA256:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"),
	    "valid_key: bad ones");
	printf("scope: %zu store URLs\n", sizeof v / sizeof v[0]);
}

int
main(void)
{
	if (crypto_init() == -1 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "unit_trust: setup failed\n");
		return 1;
	}
	snprintf(kp, sizeof kp, "%s/cfg/known_peers", dir);
	snprintf(kc, sizeof kc, "%s/cfg/known_callers", dir);
	snprintf(allow, sizeof allow, "%s/allow", dir);
	key(alice, alice_t);
	key(bob, bob_t);
	key(mallory, mallory_t);
	crypto_fingerprint(bob, bob_fp);
	caller_tofu();
	pin();
	allow_list();
	passphrase();
	corrupt();
	claimed();
	scopes();
	{
		char cmd[64];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "unit_trust: cannot remove %s\n", dir);
	}
	printf("unit_trust: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
