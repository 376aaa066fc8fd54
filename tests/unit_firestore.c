/*
 * unit_firestore: the firestore: rendezvous backend.
 *
 * Without arguments it runs the checks that need no server (URL and key
 * validation, an unreachable emulator) and exits 0 or 1.  With arguments it
 * is a small client that tests/t_firestore.sh drives against
 * tests/fsserver.py (FIRESTORE_EMULATOR_HOST must be set):
 *
 *	unit_firestore [-p POLL_MS] [-k KEYFILE] CMD ARGS
 *	  offer TO ID HEX TTL_MS	post an offer; exit 0 or 1
 *	  listen NAME WAIT_MS		wait for an offer, print "ID HEX"; exit
 *					0 got one, 1 timed out, 2 error
 *	  answer NAME ID HEX TTL_MS	post an answer; exit 0 or 1
 *	  waitans TO ID WAIT_MS		wait for the answer, print "HEX"; exit
 *					as listen
 *	  withdraw TO ID, unanswer NAME ID
 *	  roundtrip NAME		a listener (forked) and a caller meet;
 *					prints the caller's reads and writes
 *	  dup TO			the same id offered twice: the second
 *					must fail and leave the first intact
 *	  take NAME N WAIT_MS		wait for N offers, one sig_wait_offer
 *					each, printing "ID HEX" for each; exit
 *					0 when all came, 1 if not
 *	  wake listen|answer MS		wait for an offer to wake-test (or an
 *					answer to it) with a wake_fd that
 *					becomes readable after MS: prints the
 *					wait's result and its ms; exit 0
 *
 * Every command ends by printing "reads N writes M" on stderr, and after
 * closing the store "open fds N": how many more descriptors are open than
 * at the start.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "signal.h"
#include "util.h"

static volatile sig_atomic_t stop;

static char capfile[] = "/tmp/unit_firestore.XXXXXX";
static int capfd = -1, saved2 = -1;

/* Send stderr to a file until capture_end, which returns what was
 * written (static buffer). */
static void
capture_begin(void)
{
	fflush(stderr);
	if (capfd == -1 && (capfd = mkstemp(capfile)) == -1) {
		perror("mkstemp");
		exit(1);
	}
	ftruncate(capfd, 0);
	lseek(capfd, 0, SEEK_SET);
	saved2 = dup(2);
	dup2(capfd, 2);
}

static const char *
capture_end(void)
{
	static char buf[8192];
	ssize_t n;

	fflush(stderr);
	dup2(saved2, 2);
	close(saved2);
	n = pread(capfd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "%s", buf);
	return buf;
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
unhex(const char *s, unsigned char *out, size_t max, size_t *len)
{
	size_t n = strlen(s), i;
	unsigned v;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	*len = n / 2;
	return 0;
}

static void
hexout(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("%02x", p[i]);
}

static void
counts(struct sig *s)
{
	unsigned long r, w;

	sig_counts(s, &r, &w);
	fprintf(stderr, "reads %lu writes %lu\n", r, w);
}

/* How many descriptors are open: the same at the end as at the start
 * once the store is closed, whatever failed on the way. */
static int
count_fds(void)
{
	struct dirent *e;
	DIR *d;
	int n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL) {
		perror("/proc/self/fd");
		exit(2);
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			n++;
	closedir(d);
	return n;
}

/* A port on 127.0.0.1 where nothing listens. */
static int
dead_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == -1) {
		perror("socket");
		exit(1);
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void
offline(void)
{
	struct sig_opts o = { .verbose = 0, .stop = &stop };
	struct sig *s;
	struct sig_msg m;
	const char *err;
	char env[64], aenv[64], want[96];
	char keyfile[] = "/tmp/unit_firestore_key.XXXXXX";
	unsigned char blob[16] = "hello";
	uint64_t t0;
	int fd;

	unsetenv("P2PCAT_API_KEY");
	unsetenv("FIREBASE_AUTH_EMULATOR_HOST");
	snprintf(env, sizeof env, "127.0.0.1:%d", dead_port());
	setenv("FIRESTORE_EMULATOR_HOST", env, 1);

	/* Bad project and database strings are refused, quoted. */
	capture_begin();
	s = sig_open("firestore:", &o);
	err = capture_end();
	CHECK(s == NULL && strstr(err, "bad project `'") != NULL);
	capture_begin();
	s = sig_open("firestore:My_Project", &o);
	err = capture_end();
	CHECK(s == NULL && strstr(err, "`My_Project'") != NULL);
	capture_begin();
	s = sig_open("firestore:proj/Bad DB", &o);
	err = capture_end();
	CHECK(s == NULL && strstr(err, "bad database `Bad DB'") != NULL);
	capture_begin();
	s = sig_open("firestore:proj/", &o);
	err = capture_end();
	CHECK(s == NULL && strstr(err, "bad database") != NULL);

	/* A bad emulator address. */
	setenv("FIRESTORE_EMULATOR_HOST", "http://x/y", 1);
	capture_begin();
	s = sig_open("firestore:proj", &o);
	err = capture_end();
	CHECK(s == NULL && strstr(err, "FIRESTORE_EMULATOR_HOST `http://x/y'"));
	setenv("FIRESTORE_EMULATOR_HOST", env, 1);

	/* A key file others can read is refused, without printing the key. */
	if ((fd = mkstemp(keyfile)) == -1 ||
	    write(fd, "AIzaSECRETKEY123\n", 17) != 17) {
		perror(keyfile);
		exit(1);
	}
	close(fd);
	chmod(keyfile, 0644);
	o.api_key_file = keyfile;
	capture_begin();
	s = sig_open("firestore:proj", &o);
	err = capture_end();
	CHECK(s == NULL && strstr(err, "only you can read") != NULL &&
	    strstr(err, "SECRETKEY") == NULL);
	chmod(keyfile, 0600);
	s = sig_open("firestore:proj", &o);
	CHECK(s != NULL);
	sig_close(s);
	unlink(keyfile);
	o.api_key_file = NULL;

	/* Nothing listens: "cannot reach", within a few seconds. */
	CHECK((s = sig_open("firestore:proj/db-1", &o)) != NULL);
	if (s != NULL) {
		t0 = unix_ms();
		capture_begin();
		CHECK(sig_offer(s, "bob", "0123456789abcdef0123456789abcdef",
		    blob, 5, unix_ms() + 60000) == -1);
		err = capture_end();
		CHECK(strstr(err, "cannot reach 127.0.0.1:") != NULL);
		CHECK(unix_ms() - t0 < 10000);
		capture_begin();
		CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 2000) == -1);
		err = capture_end();
		CHECK(strstr(err, "cannot reach") != NULL);
		/* Names outside the contract are refused before any request. */
		capture_begin();
		CHECK(sig_offer(s, "../x", "0123456789abcdef0123456789abcdef",
		    blob, 5, unix_ms() + 60000) == -1);
		CHECK(sig_offer(s, "bob", "0123456789ABCDEF0123456789abcdef",
		    blob, 5, unix_ms() + 60000) == -1);
		err = capture_end();
		CHECK(strstr(err, "cannot reach") == NULL);
		sig_close(s);
	}
	/* Sign-in goes to the Auth emulator: "cannot reach" names it. */
	snprintf(aenv, sizeof aenv, "127.0.0.1:%d", dead_port());
	setenv("FIREBASE_AUTH_EMULATOR_HOST", aenv, 1);
	setenv("P2PCAT_API_KEY", "AIzaSECRETKEY123", 1);
	CHECK((s = sig_open("firestore:proj", &o)) != NULL);
	if (s != NULL) {
		capture_begin();
		log_verbose = 2;	/* and the key is not in -v output */
		CHECK(sig_offer(s, "bob", "0123456789abcdef0123456789abcdef",
		    blob, 5, unix_ms() + 60000) == -1);
		log_verbose = 0;
		err = capture_end();
		snprintf(want, sizeof want, "cannot reach %s:", aenv);
		CHECK(strstr(err, want) != NULL);
		CHECK(strstr(err, "SECRETKEY") == NULL);
		sig_close(s);
	}
	unsetenv("P2PCAT_API_KEY");
	unsetenv("FIREBASE_AUTH_EMULATOR_HOST");

	/* A stop flag ends a wait at once. */
	stop = 1;
	CHECK((s = sig_open("firestore:proj", &o)) != NULL);
	if (s != NULL) {
		t0 = unix_ms();
		CHECK(sig_wait_offer(s, "bob", &m, UINT64_MAX) == 1);
		CHECK(unix_ms() - t0 < 1000);
		sig_close(s);
	}
	stop = 0;
	unlink(capfile);
}

/* Sign-in and refresh answers (fs_test_tokens): what is taken, what is
 * refused, and the ID token, which goes into an Authorization header as it
 * is, never holds what could end that header and start another. */
static void
tokens(void)
{
	static char idtok[FS_TEST_TOKEN], reftok[FS_TEST_TOKEN];
	static const char signin[] = "{\"kind\":\"identitytoolkit#Signup"
	    "NewUserResponse\",\"idToken\":\"eyJh.eyJ1.\",\"refreshToken\":"
	    "\"AMf-vB_x\",\"expiresIn\":\"3600\",\"localId\":\"Uid01\"}";
	static const char refresh[] = "{\"access_token\":\"eyJh.eyJ2.\","
	    "\"expires_in\":\"60\",\"token_type\":\"Bearer\",\"refresh_token"
	    "\":\"AMf-vB_y\",\"id_token\":\"eyJh.eyJ2.\",\"user_id\":"
	    "\"Uid01\",\"project_id\":\"p\"}";
	static const char *const refused[] = {
		/* CR LF, LF, a space, a NUL: each would reach the header. */
		"{\"idToken\":\"a.b\\r\\nX-Injected: 1\",\"refreshToken\":"
		    "\"r\",\"expiresIn\":\"3600\",\"localId\":\"u\"}",
		"{\"idToken\":\"a.b\\nX-Injected: 1\",\"refreshToken\":"
		    "\"r\",\"expiresIn\":\"3600\",\"localId\":\"u\"}",
		"{\"idToken\":\"a b\",\"refreshToken\":\"r\",\"expiresIn\":"
		    "\"3600\",\"localId\":\"u\"}",
		"{\"idToken\":\"a\\u0000b\",\"refreshToken\":\"r\","
		    "\"expiresIn\":\"3600\",\"localId\":\"u\"}",
		"{\"idToken\":\"=a\",\"refreshToken\":\"r\",\"expiresIn\":"
		    "\"3600\",\"localId\":\"u\"}",
		/* A number, a member missing, an empty one. */
		"{\"idToken\":\"a\",\"refreshToken\":\"r\",\"expiresIn\":"
		    "3600,\"localId\":\"u\"}",
		"{\"idToken\":\"a\",\"expiresIn\":\"3600\",\"localId\":"
		    "\"u\"}",
		"{\"idToken\":\"a\",\"refreshToken\":\"r\",\"expiresIn\":"
		    "\"3600\",\"localId\":\"\"}",
		"[]", "null", "{",
	};
	char uid[FS_TEST_UID];
	uint64_t t0, exp;
	size_t i;

	t0 = unix_ms();
	CHECK(fs_test_tokens(signin, strlen(signin), 0, idtok, reftok, uid,
	    &exp) == 0);
	CHECK(strcmp(idtok, "eyJh.eyJ1.") == 0);
	CHECK(strcmp(reftok, "AMf-vB_x") == 0 && strcmp(uid, "Uid01") == 0);
	/* An hour, renewed 2 minutes early. */
	CHECK(exp >= t0 + 3480000 && exp <= unix_ms() + 3480000);
	/* The sign-in form is not the refresh form. */
	CHECK(fs_test_tokens(signin, strlen(signin), 1, idtok, reftok, uid,
	    &exp) == 1);
	t0 = unix_ms();
	CHECK(fs_test_tokens(refresh, strlen(refresh), 1, idtok, reftok, uid,
	    &exp) == 0);
	CHECK(strcmp(idtok, "eyJh.eyJ2.") == 0);
	CHECK(strcmp(reftok, "AMf-vB_y") == 0 && strcmp(uid, "Uid01") == 0);
	/* A minute, renewed at 3/4 of it. */
	CHECK(exp >= t0 + 45000 && exp <= unix_ms() + 45000);
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		CHECK(fs_test_tokens(refused[i], strlen(refused[i]), 0, idtok,
		    reftok, uid, &exp) == 1);
		/* The earlier tokens are forgotten, the uid kept. */
		CHECK(idtok[0] == '\0' && reftok[0] == '\0' && exp == 0);
		CHECK(strcmp(uid, "fuzz-uid") == 0);
	}
}

/* Token cache files (fs_test_cache): one as fs_cache_save writes it is
 * taken whole; an expiry no token of ours has is taken as "renew now";
 * one without a member, or with one of the wrong type or size, or an ID
 * token no header can carry, or more than is read, is refused, and
 * nothing of it kept, not even a uid that came before what is wrong. */
static void
cache(void)
{
	static char idtok[FS_TEST_TOKEN], reftok[FS_TEST_TOKEN], big[30000];
	static const char *const refused[] = {
		"{\"idToken\":\"a.b\\r\\nX-Injected: 1\",\"refreshToken\":"
		    "\"r\",\"expiresAt\":1,\"uid\":\"u\"}",
		"{\"idToken\":\"a\",\"refreshToken\":\"r\",\"expiresAt\":"
		    "\"1\",\"uid\":\"u\"}",
		"{\"idToken\":\"a\",\"refreshToken\":\"r\",\"uid\":\"u\"}",
		"{\"idToken\":\"a\",\"expiresAt\":1,\"uid\":\"u\"}",
		"{\"idToken\":\"a\",\"refreshToken\":\"r\",\"expiresAt\":1,"
		    "\"uid\":7}",
		"{\"idToken\":\"a\",\"refreshToken\":\"\",\"expiresAt\":1,"
		    "\"uid\":\"u\"}",
		"[]", "", "{",
	};
	static const char *const far[] = { "-5", "1e300", "-1e300",
	    "1.8446744073709552e19" };
	char uid[FS_TEST_UID], body[256];
	uint64_t exp;
	size_t i;
	int n;

	n = snprintf(body, sizeof body, "{\"idToken\":\"eyJh.eyJ1.c2ln\","
	    "\"refreshToken\":\"AMf-vB_x\",\"expiresAt\":%llu,\"uid\":"
	    "\"Uid01\"}", (unsigned long long)unix_ms() + 3480000);
	CHECK(fs_test_cache(body, (size_t)n, idtok, reftok, uid, &exp) == 0);
	CHECK(strcmp(idtok, "eyJh.eyJ1.c2ln") == 0);
	CHECK(strcmp(reftok, "AMf-vB_x") == 0 && strcmp(uid, "Uid01") == 0);
	CHECK(exp > unix_ms() + 3400000 && exp <= unix_ms() + 3480000);
	/* Too far away, before 1970, past a uint64_t: renewed now, the
	 * tokens and uid kept for it. */
	for (i = 0; i < sizeof far / sizeof far[0]; i++) {
		n = snprintf(body, sizeof body, "{\"idToken\":\"a\","
		    "\"refreshToken\":\"r\",\"expiresAt\":%s,\"uid\":"
		    "\"u\"}", far[i]);
		CHECK(fs_test_cache(body, (size_t)n, idtok, reftok, uid,
		    &exp) == 0);
		CHECK(exp == 0 && strcmp(idtok, "a") == 0 &&
		    strcmp(reftok, "r") == 0 && strcmp(uid, "u") == 0);
	}
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		CHECK(fs_test_cache(refused[i], strlen(refused[i]), idtok,
		    reftok, uid, &exp) == 1);
		CHECK(idtok[0] == '\0' && reftok[0] == '\0' && exp == 0);
		CHECK(uid[0] == '\0');
	}
	/* A uid of 129 bytes does not fit; 128 does. */
	n = snprintf(body, sizeof body, "{\"idToken\":\"a\",\"refreshToken"
	    "\":\"r\",\"expiresAt\":1,\"uid\":\"%0129d\"}", 0);
	CHECK(fs_test_cache(body, (size_t)n, idtok, reftok, uid, &exp) == 1);
	n = snprintf(body, sizeof body, "{\"idToken\":\"a\",\"refreshToken"
	    "\":\"r\",\"expiresAt\":1,\"uid\":\"%0128d\"}", 0);
	CHECK(fs_test_cache(body, (size_t)n, idtok, reftok, uid, &exp) == 0);
	CHECK(strlen(uid) == 128 && exp == 1);
	/* More than fs_cache_load reads (24,575 bytes) is not taken. */
	memset(big, ' ', sizeof big);
	CHECK(FS_TEST_CACHE == 24575);
	CHECK(fs_test_cache(big, 24575, idtok, reftok, uid, &exp) == 1);
	CHECK(fs_test_cache(big, 24576, idtok, reftok, uid, &exp) == -1);
}

/* Wait for one offer to name; print it, or (answer) answer it with the
 * blob reversed.  Exit status as the listen command's. */
static int
listen_once(const char *url, struct sig_opts *o, const char *name,
    uint64_t wait_ms, int answer)
{
	unsigned char a[SIG_MAX_BLOB];
	struct sig *s;
	struct sig_msg m;
	size_t i;
	int r;

	if ((s = sig_open(url, o)) == NULL)
		return 2;
	r = sig_wait_offer(s, name, &m, unix_ms() + wait_ms);
	if (r == 0 && !answer) {
		printf("%s ", m.id);
		hexout(m.blob, m.len);
		printf("\n");
	} else if (r == 0) {
		for (i = 0; i < m.len; i++)
			a[i] = m.blob[m.len - 1 - i];
		if (sig_answer(s, name, m.id, a, m.len, unix_ms() + 30000) != 0)
			r = -1;
	}
	counts(s);
	sig_close(s);
	return r == -1 ? 2 : r;
}

static int
roundtrip(const char *url, struct sig_opts *o, const char *name)
{
	const char *id = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
	unsigned char blob[SIG_MAX_BLOB];
	struct sig_msg ans;
	struct sig *s;
	pid_t pid;
	size_t i;
	int st, r, ok = 1;

	for (i = 0; i < sizeof blob; i++)
		blob[i] = (unsigned char)(i * 7 + 3);
	/* The listener waits first, in a child. */
	if ((pid = fork()) == 0)
		_exit(listen_once(url, o, name, 20000, 1));
	if ((s = sig_open(url, o)) == NULL)
		return 1;
	usleep(300000);
	if (sig_offer(s, name, id, blob, sizeof blob, unix_ms() + 60000) != 0) {
		ok = 0;
		goto out;
	}
	r = sig_wait_answer(s, name, id, &ans, unix_ms() + 20000);
	if (r != 0 || ans.len != sizeof blob || strcmp(ans.id, id) != 0) {
		fprintf(stderr, "roundtrip: wait_answer %d len %zu\n", r,
		    r == 0 ? ans.len : 0);
		ok = 0;
	} else
		for (i = 0; i < ans.len; i++)
			if (ans.blob[i] != blob[sizeof blob - 1 - i]) {
				fprintf(stderr, "roundtrip: answer differs at "
				    "%zu\n", i);
				ok = 0;
				break;
			}
out:
	sig_withdraw(s, name, id);
	counts(s);
	sig_close(s);
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "roundtrip: listener failed\n");
		ok = 0;
	}
	if (ok)
		printf("roundtrip ok\n");
	return !ok;
}

static int
take(const char *url, struct sig_opts *o, const char *name, unsigned n,
    uint64_t wait_ms)
{
	struct sig *s;
	struct sig_msg m;
	uint64_t deadline = unix_ms() + wait_ms;
	unsigned got = 0;

	if ((s = sig_open(url, o)) == NULL)
		return 2;
	while (got < n && sig_wait_offer(s, name, &m, deadline) == 0) {
		printf("%s ", m.id);
		hexout(m.blob, m.len);
		printf("\n");
		fflush(stdout);
		got++;
	}
	counts(s);
	sig_close(s);
	return got == n ? 0 : 1;
}

/* A wait that a pipe becoming readable after ms ends: prints "r ELAPSED". */
static int
wake(const char *url, struct sig_opts *o, const char *what, unsigned ms)
{
	const char *id = "0123456789abcdef0123456789abcdef";
	struct sig *s;
	struct sig_msg m;
	uint64_t t0;
	int p[2], r = -1;
	pid_t pid;

	if (pipe(p) == -1) {
		perror("pipe");
		return 2;
	}
	o->wake_fd = p[0];
	if ((s = sig_open(url, o)) == NULL)
		return 2;
	if (strcmp(what, "answer") == 0 &&
	    sig_offer(s, "waker", id, "x", 1, unix_ms() + 60000) != 0)
		return 2;
	if ((pid = fork()) == 0) {
		usleep(ms * 1000);
		(void)!write(p[1], "w", 1);
		_exit(0);
	}
	t0 = unix_ms();
	if (strcmp(what, "listen") == 0)
		r = sig_wait_offer(s, "waker", &m, unix_ms() + 30000);
	else
		r = sig_wait_answer(s, "waker", id, &m, unix_ms() + 30000);
	printf("%d %llu\n", r, (unsigned long long)(unix_ms() - t0));
	waitpid(pid, NULL, 0);
	if (strcmp(what, "answer") == 0)
		sig_withdraw(s, "waker", id);
	counts(s);
	sig_close(s);
	return 0;
}

static int
dup_offer(const char *url, struct sig_opts *o, const char *to)
{
	const char *id = "00112233445566778899aabbccddeeff";
	struct sig *s;
	int ok;

	if ((s = sig_open(url, o)) == NULL)
		return 1;
	ok = sig_offer(s, to, id, "first", 5, unix_ms() + 60000) == 0 &&
	    sig_offer(s, to, id, "second", 6, unix_ms() + 60000) == -1;
	counts(s);
	sig_close(s);
	return !ok;
}

static void
usage(void)
{
	fprintf(stderr, "usage: unit_firestore [-p poll_ms] [-k keyfile] "
	    "[-u url] cmd args\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sig_opts o = { .verbose = 0, .stop = &stop };
	struct sigaction sa;
	struct sig *s;
	struct sig_msg m;
	const char *url = "firestore:p2pcat-test";
	unsigned char blob[SIG_MAX_BLOB];
	size_t len;
	int c, r, fds0 = count_fds();

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (getenv("UNIT_FS_VERBOSE") != NULL)
		log_verbose = o.verbose = atoi(getenv("UNIT_FS_VERBOSE"));
	while ((c = getopt(argc, argv, "k:p:u:")) != -1) {
		switch (c) {
		case 'k':
			o.api_key_file = optarg;
			break;
		case 'p':
			o.poll_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'u':
			url = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		offline();
		tokens();
		cache();
		if (failures)
			fprintf(stderr, "%d failures\n", failures);
		else
			fprintf(stderr, "unit_firestore: ok\n");
		return failures != 0;
	}
	if (strcmp(argv[0], "listen") == 0 && argc == 3)
		return listen_once(url, &o, argv[1], strtoull(argv[2], NULL, 10),
		    0);
	if (strcmp(argv[0], "roundtrip") == 0 && argc == 2)
		return roundtrip(url, &o, argv[1]);
	if (strcmp(argv[0], "dup") == 0 && argc == 2)
		return dup_offer(url, &o, argv[1]);
	if (strcmp(argv[0], "take") == 0 && argc == 4)
		return take(url, &o, argv[1], (unsigned)strtoul(argv[2], NULL,
		    10), strtoull(argv[3], NULL, 10));
	if (strcmp(argv[0], "wake") == 0 && argc == 3)
		return wake(url, &o, argv[1], (unsigned)strtoul(argv[2], NULL,
		    10));
	if ((s = sig_open(url, &o)) == NULL)
		return 2;
	r = 2;
	if ((strcmp(argv[0], "offer") == 0 || strcmp(argv[0], "answer") == 0) &&
	    argc == 5) {
		if (unhex(argv[3], blob, sizeof blob, &len) == -1)
			usage();
		r = (argv[0][0] == 'o' ? sig_offer : sig_answer)(s, argv[1],
		    argv[2], blob, len, unix_ms() + strtoull(argv[4], NULL,
		    10)) == 0 ? 0 : 1;
	} else if (strcmp(argv[0], "waitans") == 0 && argc == 4) {
		r = sig_wait_answer(s, argv[1], argv[2], &m, unix_ms() +
		    strtoull(argv[3], NULL, 10));
		if (r == 0) {
			hexout(m.blob, m.len);
			printf("\n");
		}
		r = r == -1 ? 2 : r;
	} else if (strcmp(argv[0], "withdraw") == 0 && argc == 3) {
		sig_withdraw(s, argv[1], argv[2]);
		r = 0;
	} else if (strcmp(argv[0], "unanswer") == 0 && argc == 3) {
		sig_unanswer(s, argv[1], argv[2]);
		r = 0;
	} else
		usage();
	counts(s);
	sig_close(s);
	fprintf(stderr, "open fds %d\n", count_fds() - fds0);
	return r;
}
