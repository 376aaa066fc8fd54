/*
 * tests/unit_signal.c: the rendezvous front end (signal.c) and its local
 * "dir:" backend, each case in a fresh temporary directory:
 *
 *   names: sig_valid_name over lengths, dots and every byte value
 *   open: URL schemes, only the last component of a path made, the
 *	private default directory under XDG_RUNTIME_DIR (created 0700;
 *	refused when group/world accessible, a symlink or not a directory;
 *	XDG_RUNTIME_DIR itself never made), paths too long
 *   roundtrip: offer/answer blobs byte-equal (binary, SIG_MAX_BLOB, +1
 *	refused), the file format on disk, ids copied, no overwriting,
 *	bad ids and names refused
 *   consume, deadline: a taken offer is gone; timeouts not before their
 *	deadline, and before a 30 s guard with looks an hour apart; a
 *	deadline passed gives up without sleeping (sig_dir_naps)
 *   stale: expired, dead-writer and empty or oversized offers of ours
 *	removed; malformed and misnamed files, not ours, left alone; old
 *	leftover temporary files of ours swept, fresh ones kept
 *   race: forked listeners take every offer exactly once
 *   withdraw: sig_withdraw and sig_unanswer, also when nothing is there
 *   stop: the stop flag set from SIGALRM ends a wait not before it is
 *	set and before its 30 s deadline, looks up to an hour apart; set
 *	already, it ends one without sleeping
 *   counts: sig_counts
 *   notice: inotify ends a wait (looks set an hour apart, messages
 *	posted once it sleeps), also in an inbox removed and made anew
 *	during the wait; another offer's answer does not
 *   wake: sig_opts.wake_fd ends waits before their deadline, unread; an
 *	offer waiting comes first; a closed one neither wakes nor spins
 *	(counted in poll(2) calls, sig_dir_naps)
 *   symlink: inbox, inbox/NAME, offers or answers a symlink: errors, and
 *	nothing outside read, written or removed; a symlinked root works
 *   odd: a socket, FIFO, directory, symlink or unreadable file named
 *	like an offer: skipped, reported once, kept; good offers still taken
 *   lock: a second listener under a name is warned once; a killed
 *	one's lock is gone
 *   shared (root): two users with umask 077 through a sticky 1777
 *	directory and a setgid group one, either side first: modes,
 *	groups, data; an offer the listener cannot read; a directory that
 *	is not shared is an error at once
 *
 * `unit_signal NAME' runs one case.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "signal.h"
#include "util.h"

#define FUTURE_MS	60000	/* expiry of messages meant to stay valid */
#define HOUR_MS		3600000	/* a poll interval no test waits out */
/* A deadline no loaded machine reaches where a wake takes microseconds:
 * a wait that returns before it was ended by the mechanism under test. */
#define LONG_MS		30000
#define RACE_KIDS	4
#define RACE_OFFERS	200

static int checks, failures;
static const char *cur;		/* the running case, for messages */

static void
fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "FAIL %s (%s:%d): ", cur, file, line);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failures++;
}

/* CHECK records a failure and goes on; REQUIRE also leaves the case. */
#define CHECK(c, ...) do { \
	checks++; \
	if (!(c)) \
		fail(__FILE__, __LINE__, __VA_ARGS__); \
} while (0)
#define REQUIRE(c, ...) do { \
	checks++; \
	if (!(c)) { \
		fail(__FILE__, __LINE__, __VA_ARGS__); \
		return; \
	} \
} while (0)

/* Helpers. */

static volatile sig_atomic_t stop_flag;

static void
on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* SIGALRM, setting stop_flag, in ms; 0 disarms the timer and restores
 * SIGALRM's default.  A timer that cannot be set is a broken test: exit. */
static void
alarm_in(unsigned ms)
{
	struct itimerval it;
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ms ? on_alarm : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if ((ms && sigaction(SIGALRM, &sa, NULL) == -1) ||
	    setitimer(ITIMER_REAL, &it, NULL) == -1 ||
	    (!ms && sigaction(SIGALRM, &sa, NULL) == -1)) {
		perror("unit_signal: SIGALRM");
		exit(1);
	}
}

/* A path into buf; too long for it is a broken test: exit. */
static void __attribute__((format(printf, 3, 4)))
pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "unit_signal: path too long: %s\n", buf);
		exit(1);
	}
}

static uint64_t
mono_ms(void)
{
	return now_us() / 1000;
}

static struct sig_opts
opts(void)
{
	struct sig_opts o;

	memset(&o, 0, sizeof o);
	o.poll_ms = 10;
	o.stop = &stop_flag;
	return o;
}

/* A fresh valid id: 32 lowercase hex digits, unique in this run. */
static void
new_id(char id[SIG_ID_LEN + 1])
{
	static unsigned n;

	snprintf(id, SIG_ID_LEN + 1, "%08x%08x%08xdeadbeef",
	    (unsigned)getpid(), ++n, (unsigned)time(NULL));
}

/* "dir:PATH" for sig_open. */
static struct sig *
open_dir(const char *tmp)
{
	struct sig_opts o = opts();
	char url[PATH_MAX + 8];

	pathf(url, sizeof url, "dir:%s", tmp);
	return sig_open(url, &o);
}

/* sig_wait_offer to bob (id NULL), or sig_wait_answer for id, until end,
 * in a handle made with opts().  As a guard, SIGALRM sets the stop flag
 * after LONG_MS: a wait that returns with stop_flag still 0 ended, before
 * that, by something else.  The wait's result. */
static int
guarded_wait(struct sig *s, const char *id, struct sig_msg *m, uint64_t end)
{
	int r;

	stop_flag = 0;
	alarm_in(LONG_MS);
	r = id ? sig_wait_answer(s, "bob", id, m, end) : sig_wait_offer(s, "bob", m, end);
	alarm_in(0);
	return r;
}

/* TMP/inbox/NAME/KIND[/ENTRY] */
static void
box_path(char *buf, size_t size, const char *tmp, const char *name,
    const char *kind, const char *entry)
{
	if (entry)
		pathf(buf, size, "%s/inbox/%s/%s/%s", tmp, name, kind, entry);
	else
		pathf(buf, size, "%s/inbox/%s/%s", tmp, name, kind);
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* 1 when path exists within ms, else 0. */
static int
wait_exists(const char *path, int ms)
{
	for (; ms > 0; ms -= 10) {
		if (exists(path))
			return 1;
		poll(NULL, 0, 10);
	}
	return exists(path);
}

/* Entries of dir other than . and ..; -1 when it cannot be read. */
static int
count_entries(const char *dir)
{
	struct dirent *e;
	DIR *dp;
	int n = 0;

	if ((dp = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(dp)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(dp);
	return n;
}

/* Write len bytes to path, creating its parent directories; 0 or -1. */
static int
put_file(const char *path, const void *data, size_t len)
{
	char dir[PATH_MAX], *p;
	int fd, ok;

	pathf(dir, sizeof dir, "%s", path);
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len;
	return close(fd) == 0 && ok ? 0 : -1;
}

/* Read at most size bytes of path; the count or -1. */
static ssize_t
get_file(const char *path, void *buf, size_t size)
{
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

/* A message file in signal.c's format: header then blob; its length. */
static size_t
message(char *buf, size_t size, uint64_t expire, long pid, const char *host,
    const void *blob, size_t len)
{
	int n = snprintf(buf, size, "p2pcat-sig 1\nexpire %" PRIu64 "\npid %ld\nhost %s\n\n",
	    expire, pid, host);

	memcpy(buf + n, blob, len);
	return (size_t)n + len;
}

static void
hostname(char host[256])
{
	memset(host, 0, 256);
	if (gethostname(host, 255) == -1)
		strcpy(host, "?");
}

/* Set path's mtime to secs seconds ago; 0 or -1. */
static int
age(const char *path, time_t secs)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= secs;
	ts[1] = ts[0];
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

/* Cases. */

static void
case_names(const char *tmp)
{
	static const char *good[] = {
		"a", "Z", "0", "alice", "Bob-2", "a.b", "a..b", "a_b", "a-b",
		"-a", "_a", "a.", "a-", "Az09._-",
	};
	static const char *bad[] = {
		"", ".", "..", ".a", ".hidden", "a/b", "/", "/a", "a/", "../a",
		"a b", " a", "a ", "a\tb", "a\nb", "caf\xc3\xa9", "\xc3\xa9",
		"a\xff", "a\x7f", "a:b", "a@b", "a+b", "a~", "a*", "a\\b",
	};
	char name[SIG_MAX_NAME + 2];
	size_t i;
	int c;

	(void)tmp;
	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		CHECK(sig_valid_name(good[i]) == 1, "name `%s' refused", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(sig_valid_name(bad[i]) == 0, "name `%s' accepted", bad[i]);

	memset(name, 'x', SIG_MAX_NAME);
	name[SIG_MAX_NAME] = '\0';
	CHECK(sig_valid_name(name) == 1, "64-character name refused");
	name[SIG_MAX_NAME] = 'x';
	name[SIG_MAX_NAME + 1] = '\0';
	CHECK(sig_valid_name(name) == 0, "65-character name accepted");

	/* Every byte after a letter: only [A-Za-z0-9._-] may follow. */
	for (c = 1; c < 256; c++) {
		int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		name[0] = 'x';
		name[1] = (char)c;
		name[2] = '\0';
		CHECK(sig_valid_name(name) == want, "name x\\x%02x: got %d, want %d",
		    c, sig_valid_name(name), want);
		name[0] = (char)c;
		name[1] = 'x';
		want = want && c != '.';
		CHECK(sig_valid_name(name) == want, "name \\x%02xx: got %d, want %d",
		    c, sig_valid_name(name), want);
	}
}

/* sig_open("dir:") with XDG_RUNTIME_DIR=xdg: NULL or the handle. */
static struct sig *
open_default(const char *xdg)
{
	struct sig_opts o = opts();

	setenv("XDG_RUNTIME_DIR", xdg, 1);
	return sig_open("dir:", &o);
}

static void
case_open(const char *tmp)
{
	struct sig_opts o = opts();
	char path[PATH_MAX], sub[PATH_MAX], root[PATH_MAX], id[SIG_ID_LEN + 1];
	char *saved = getenv("XDG_RUNTIME_DIR");
	char *longurl;
	struct sig *s;
	struct stat st;

	saved = saved ? strdup(saved) : NULL;
	sig_close(NULL);	/* a no-op */

	CHECK(sig_open("nosuch:/tmp", &o) == NULL, "unknown scheme accepted");
	CHECK(sig_open("DIR:/tmp", &o) == NULL, "scheme `DIR' accepted");
	CHECK(sig_open("di:/tmp", &o) == NULL, "scheme `di' accepted");
	CHECK(sig_open("dirx:/tmp", &o) == NULL, "scheme `dirx' accepted");
	CHECK(sig_open(":/tmp", &o) == NULL, "empty scheme accepted");
	CHECK(sig_open(tmp, &o) == NULL, "URL without a colon accepted");
	CHECK(sig_open("dir", &o) == NULL, "`dir' without a colon accepted");
	CHECK(sig_open("", &o) == NULL, "empty URL accepted");

	/* dir:PATH creates its last component only: never a whole path. */
	pathf(sub, sizeof sub, "%s/a/b/c", tmp);
	pathf(path, sizeof path, "dir:%s", sub);
	s = sig_open(path, &o);
	CHECK(s == NULL, "sig_open(%s) made a whole path", path);
	sig_close(s);
	pathf(sub, sizeof sub, "%s/a", tmp);
	CHECK(!exists(sub), "sig_open(%s) made %s", path, sub);
	pathf(path, sizeof path, "dir:%s", sub);
	s = sig_open(path, &o);
	CHECK(s != NULL, "sig_open(%s) failed", path);
	CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "%s not created", sub);
	sig_close(s);
	/* The default's XDG_RUNTIME_DIR must exist: only p2pcat is made. */
	pathf(sub, sizeof sub, "%s/no/such/xdg", tmp);
	CHECK(open_default(sub) == NULL, "missing XDG_RUNTIME_DIR %s accepted", sub);
	pathf(sub, sizeof sub, "%s/no", tmp);
	CHECK(!exists(sub), "the default directory made %s", sub);

	/* Too long: PATH_MAX bytes of path cannot fit. */
	longurl = malloc(PATH_MAX + 64);
	REQUIRE(longurl != NULL, "malloc");
	memcpy(longurl, "dir:/", 5);
	memset(longurl + 5, 'p', PATH_MAX + 10);
	longurl[PATH_MAX + 15] = '\0';
	CHECK(sig_open(longurl, &o) == NULL, "over-long dir: path accepted");
	longurl[0] = '/';
	memset(longurl + 1, 'x', PATH_MAX - 5);
	longurl[PATH_MAX - 4] = '\0';
	CHECK(open_default(longurl) == NULL,
	    "over-long XDG_RUNTIME_DIR accepted");
	free(longurl);

	/* dir: alone: XDG_RUNTIME_DIR/p2pcat, created 0700 and usable. */
	pathf(sub, sizeof sub, "%s/xdg", tmp);
	pathf(root, sizeof root, "%s/p2pcat", sub);
	CHECK(mkdir(sub, 0755) == 0, "mkdir %s", sub);
	s = open_default(sub);
	CHECK(s != NULL, "dir: with XDG_RUNTIME_DIR=%s failed", sub);
	memset(&st, 0, sizeof st);
	CHECK(lstat(root, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & 07777) == 0700 && st.st_uid == geteuid(),
	    "%s: not a 0700 directory (mode %o)", root, (unsigned)st.st_mode);
	if (s) {
		new_id(id);
		CHECK(sig_offer(s, "bob", id, "x", 1, unix_ms() + FUTURE_MS) == 0,
		    "offer under the default directory failed");
		box_path(path, sizeof path, root, "bob", "offers", id);
		CHECK(exists(path), "offer not at %s", path);
		sig_close(s);
	}
	s = open_default(sub);	/* again: the existing private one is fine */
	CHECK(s != NULL, "reopening the default directory failed");
	sig_close(s);

	/* Refused: group or world access, a symlink, a plain file. */
	{
		static const mode_t modes[] = { 0750, 0770, 0705, 0701, 0710, 0777 };
		size_t i;

		for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
			pathf(sub, sizeof sub, "%s/xdg-mode-%o", tmp, (unsigned)modes[i]);
			pathf(path, sizeof path, "%s/p2pcat", sub);
			CHECK(mkdir(sub, 0700) == 0 && mkdir(path, 0700) == 0 &&
			    chmod(path, modes[i]) == 0, "set up %s", path);
			s = open_default(sub);
			CHECK(s == NULL, "default directory with mode %o accepted",
			    (unsigned)modes[i]);
			sig_close(s);
		}
	}
	pathf(sub, sizeof sub, "%s/xdg-link", tmp);
	pathf(path, sizeof path, "%s/real", sub);
	CHECK(mkdir(sub, 0700) == 0 && mkdir(path, 0700) == 0, "mkdir %s", path);
	pathf(path, sizeof path, "%s/p2pcat", sub);
	CHECK(symlink("real", path) == 0, "symlink %s", path);
	s = open_default(sub);
	CHECK(s == NULL, "symlinked default directory accepted");
	sig_close(s);

	pathf(sub, sizeof sub, "%s/xdg-file", tmp);
	pathf(path, sizeof path, "%s/p2pcat", sub);
	CHECK(mkdir(sub, 0700) == 0 && put_file(path, "", 0) == 0 &&
	    chmod(path, 0600) == 0, "set up %s", path);
	s = open_default(sub);
	CHECK(s == NULL, "a plain file as the default directory accepted");
	sig_close(s);

	if (saved)
		setenv("XDG_RUNTIME_DIR", saved, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
	free(saved);
}

/* Offer blob from a to b under a fresh id, take it, answer, take that. */
static void
roundtrip(struct sig *a, struct sig *b, const char *tmp, const void *blob,
    size_t len, const char *what)
{
	static struct sig_msg m;
	char id[SIG_ID_LEN + 1], path[PATH_MAX];
	uint64_t exp = unix_ms() + FUTURE_MS;

	new_id(id);
	REQUIRE(sig_offer(a, "bob", id, blob, len, exp) == 0, "%s: offer failed", what);
	box_path(path, sizeof path, tmp, "bob", "offers", id);
	CHECK(exists(path), "%s: offer file %s missing", what, path);
	memset(&m, 0xa5, sizeof m);
	REQUIRE(sig_wait_offer(b, "bob", &m, unix_ms() + 1000) == 0,
	    "%s: wait_offer did not get the offer", what);
	CHECK(strcmp(m.id, id) == 0, "%s: offer id `%.32s', want `%s'", what, m.id, id);
	CHECK(m.len == len, "%s: offer of %zu bytes, want %zu", what, m.len, len);
	CHECK(m.len == len && memcmp(m.blob, blob, len) == 0,
	    "%s: offer blob differs", what);
	CHECK(!exists(path), "%s: offer file left after it was taken", what);

	REQUIRE(sig_answer(b, "bob", id, blob, len, exp) == 0, "%s: answer failed", what);
	box_path(path, sizeof path, tmp, "bob", "answers", id);
	CHECK(exists(path), "%s: answer file %s missing", what, path);
	memset(&m, 0x5a, sizeof m);
	REQUIRE(sig_wait_answer(a, "bob", id, &m, unix_ms() + 1000) == 0,
	    "%s: wait_answer did not get the answer", what);
	CHECK(strcmp(m.id, id) == 0, "%s: answer id `%.32s', want `%s'", what, m.id, id);
	CHECK(m.len == len && memcmp(m.blob, blob, len) == 0,
	    "%s: answer blob differs (%zu bytes, want %zu)", what, m.len, len);
	CHECK(!exists(path), "%s: answer file left after it was taken", what);
	CHECK(sig_wait_answer(a, "bob", id, &m, unix_ms() + 50) == 1,
	    "%s: answer taken twice", what);
}

static void
case_roundtrip(const char *tmp)
{
	static unsigned char big[SIG_MAX_BLOB + 1], buf[8192];
	static struct sig_msg m;
	static const char *badids[] = {
		"", "0", "0123456789abcdef0123456789abcde",
		"0123456789abcdef0123456789abcdef0",
		"0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg",
		"0123456789abcdef 123456789abcdef", "../../../escape0123456789abcdef",
		"x/../0123456789abcdef0123456789a",
	};
	static const char *badnames[] = { "", ".", "..", "../bob", "a/b" };
	char id[SIG_ID_LEN + 1], path[PATH_MAX], host[256], want[600];
	struct sig *a = open_dir(tmp), *b = open_dir(tmp);
	uint64_t exp = unix_ms() + FUTURE_MS;
	unsigned char bin[512];
	size_t i, hl;
	ssize_t n;

	REQUIRE(a && b, "sig_open(dir:%s) failed", tmp);
	for (i = 0; i < sizeof bin; i++)
		bin[i] = (unsigned char)(i * 7 % 256);
	bin[0] = bin[100] = bin[511] = 0;
	for (i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i ^ (i >> 8));

	roundtrip(a, b, tmp, "hello", 5, "text");
	roundtrip(a, b, tmp, "\0", 1, "one NUL");
	roundtrip(a, b, tmp, "\n\n", 2, "blank line");
	roundtrip(a, b, tmp, bin, sizeof bin, "binary");
	roundtrip(a, b, tmp, big, SIG_MAX_BLOB, "SIG_MAX_BLOB bytes");

	/* The file on disk: the documented header, then the blob. */
	new_id(id);
	hostname(host);
	REQUIRE(sig_offer(a, "carol", id, bin, sizeof bin, exp) == 0, "offer to carol");
	box_path(path, sizeof path, tmp, "carol", "offers", id);
	n = get_file(path, buf, sizeof buf);
	hl = (size_t)snprintf(want, sizeof want,
	    "p2pcat-sig 1\nexpire %" PRIu64 "\npid %ld\nhost %s\n\n", exp, (long)getpid(), host);
	CHECK(n == (ssize_t)(hl + sizeof bin) && memcmp(buf, want, hl) == 0 &&
	    memcmp(buf + hl, bin, sizeof bin) == 0,
	    "offer file %s is not header+blob (%zd bytes)", path, n);
	box_path(path, sizeof path, tmp, "carol", "offers", NULL);
	CHECK(count_entries(path) == 1, "offer left temporary files in %s", path);
	sig_withdraw(a, "carol", id);

	/* One byte too many: refused, nothing written. */
	new_id(id);
	errno = 0;
	CHECK(sig_offer(a, "dave", id, big, SIG_MAX_BLOB + 1, exp) == -1 && errno == EMSGSIZE,
	    "offer of SIG_MAX_BLOB+1 bytes not refused with EMSGSIZE");
	box_path(path, sizeof path, tmp, "dave", "offers", id);
	CHECK(!exists(path), "oversized offer written to %s", path);
	errno = 0;
	CHECK(sig_answer(b, "dave", id, big, SIG_MAX_BLOB + 1, exp) == -1 && errno == EMSGSIZE,
	    "answer of SIG_MAX_BLOB+1 bytes not refused with EMSGSIZE");
	box_path(path, sizeof path, tmp, "dave", "answers", id);
	CHECK(!exists(path), "oversized answer written to %s", path);

	/* Never overwritten: the first offer and answer stay. */
	new_id(id);
	CHECK(sig_offer(a, "bob", id, "first", 5, exp) == 0, "first offer failed");
	errno = 0;
	CHECK(sig_offer(a, "bob", id, "second", 6, exp) == -1 && errno == EEXIST,
	    "second offer under one id: not -1/EEXIST (errno %d)", errno);
	CHECK(sig_offer(b, "bob", id, "third", 5, exp) == -1,
	    "offer under a taken id from another handle not refused");
	CHECK(sig_wait_offer(b, "bob", &m, unix_ms() + 1000) == 0 && m.len == 5 &&
	    memcmp(m.blob, "first", 5) == 0 && strcmp(m.id, id) == 0,
	    "first offer not intact after refused overwrites");
	CHECK(sig_answer(b, "bob", id, "ans1", 4, exp) == 0, "first answer failed");
	errno = 0;
	CHECK(sig_answer(b, "bob", id, "ans2!", 5, exp) == -1 && errno == EEXIST,
	    "second answer to one id: not -1/EEXIST (errno %d)", errno);
	CHECK(sig_wait_answer(a, "bob", id, &m, unix_ms() + 1000) == 0 && m.len == 4 &&
	    memcmp(m.blob, "ans1", 4) == 0, "first answer not intact after refused overwrite");
	box_path(path, sizeof path, tmp, "bob", "offers", NULL);
	CHECK(count_entries(path) == 0, "%s not empty", path);
	box_path(path, sizeof path, tmp, "bob", "answers", NULL);
	CHECK(count_entries(path) == 0, "%s not empty", path);

	/* Bad ids and names: refused, and nothing lands anywhere. */
	for (i = 0; i < sizeof badids / sizeof badids[0]; i++) {
		CHECK(sig_answer(b, "erin", badids[i], "x", 1, exp) == -1,
		    "answer with bad id `%s' accepted", badids[i]);
		CHECK(sig_wait_answer(a, "erin", badids[i], &m, unix_ms() + 10) == -1,
		    "wait_answer with bad id `%s' not an error", badids[i]);
		/* dir_offer checks the id as dir_answer does: nothing outside the inbox. */
		CHECK(sig_offer(a, "erin", badids[i], "x", 1, exp) == -1,
		    "offer with bad id `%s' accepted", badids[i]);
	}
	pathf(path, sizeof path, "%s/escape0123456789abcdef", tmp);
	CHECK(!exists(path), "an offer id wrote outside the inbox: %s", path);
	box_path(path, sizeof path, tmp, "erin", "offers", NULL);
	CHECK(count_entries(path) <= 0, "bad offer ids wrote into %s", path);
	box_path(path, sizeof path, tmp, "erin", "answers", NULL);
	CHECK(count_entries(path) <= 0, "bad answer ids wrote into %s", path);
	new_id(id);
	for (i = 0; i < sizeof badnames / sizeof badnames[0]; i++) {
		CHECK(sig_offer(a, badnames[i], id, "x", 1, exp) == -1,
		    "offer to bad name `%s' accepted", badnames[i]);
		CHECK(sig_answer(b, badnames[i], id, "x", 1, exp) == -1,
		    "answer from bad name `%s' accepted", badnames[i]);
		CHECK(sig_wait_offer(b, badnames[i], &m, unix_ms() + 10) == -1,
		    "wait_offer for bad name `%s' not an error", badnames[i]);
		CHECK(sig_wait_answer(a, badnames[i], id, &m, unix_ms() + 10) == -1,
		    "wait_answer from bad name `%s' not an error", badnames[i]);
	}
	pathf(path, sizeof path, "%s/offers", tmp);
	CHECK(!exists(path), "a bad name wrote into %s", tmp);
	pathf(path, sizeof path, "%s/inbox/offers", tmp);
	CHECK(!exists(path), "a bad name wrote into %s/inbox", tmp);

	sig_close(a);
	sig_close(b);
}

static void
case_consume(const char *tmp)
{
	static struct sig_msg m;
	struct sig_opts o = opts();
	char url[PATH_MAX + 8], id[SIG_ID_LEN + 1], path[PATH_MAX];
	unsigned long naps;
	uint64_t end;
	int64_t late;
	struct sig *s;
	int r;

	/* Looks an hour apart: a timeout before guarded_wait's guard came
	 * from the deadline, not from the next look. */
	o.poll_ms = HOUR_MS;
	pathf(url, sizeof url, "dir:%s", tmp);
	s = sig_open(url, &o);
	REQUIRE(s, "sig_open(%s) failed", url);
	new_id(id);
	REQUIRE(sig_offer(s, "bob", id, "one", 3, unix_ms() + FUTURE_MS) == 0, "offer");
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 1000) == 0 && strcmp(m.id, id) == 0,
	    "first wait did not take the offer");
	end = unix_ms() + 300;
	r = guarded_wait(s, NULL, &m, end);
	late = (int64_t)(unix_ms() - end);
	CHECK(r == 1 && late >= 0 && stop_flag == 0, "second wait (300 ms deadline, looking "
	    "every hour): %d, %" PRId64 " ms after its deadline%s", r, late,
	    stop_flag ? ", ended by the guard" : "");
	box_path(path, sizeof path, tmp, "bob", "offers", NULL);
	CHECK(count_entries(path) == 0, "%s not empty after the offer was taken", path);

	/* A deadline already past gives up after the look, without
	 * sleeping; an unanswered wait_answer times out. */
	naps = sig_dir_naps(s);
	r = guarded_wait(s, NULL, &m, 0);
	CHECK(r == 1 && sig_dir_naps(s) == naps, "past deadline: %d after %lu poll(2)s, "
	    "want 1 after none", r, sig_dir_naps(s) - naps);
	end = unix_ms() + 400;
	r = guarded_wait(s, id, &m, end);
	late = (int64_t)(unix_ms() - end);
	CHECK(r == 1 && late >= 0 && stop_flag == 0, "wait_answer with no answer (400 ms "
	    "deadline, looking every hour): %d, %" PRId64 " ms after its deadline%s", r,
	    late, stop_flag ? ", ended by the guard" : "");

	/* Several offers: each is taken once, then the inbox is empty. */
	{
		char ids[5][SIG_ID_LEN + 1];
		int got[5] = { 0 }, i, j;

		for (i = 0; i < 5; i++) {
			new_id(ids[i]);
			CHECK(sig_offer(s, "bob", ids[i], ids[i], SIG_ID_LEN,
			    unix_ms() + FUTURE_MS) == 0, "offer %d", i);
		}
		for (i = 0; i < 5; i++) {
			CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 1000) == 0,
			    "wait %d of 5 failed", i);
			for (j = 0; j < 5; j++)
				if (strcmp(m.id, ids[j]) == 0 && m.len == SIG_ID_LEN &&
				    memcmp(m.blob, ids[j], SIG_ID_LEN) == 0)
					got[j]++;
		}
		for (j = 0; j < 5; j++)
			CHECK(got[j] == 1, "offer %d taken %d times", j, got[j]);
		CHECK(guarded_wait(s, NULL, &m, unix_ms() + 100) == 1,
		    "a sixth offer appeared");
	}
	sig_close(s);
}

static void
case_stale(const char *tmp)
{
	static struct sig_msg m;
	static char buf[8192], big[SIG_MAX_BLOB + 100];
	char id[SIG_ID_LEN + 1], path[PATH_MAX], dir[PATH_MAX], host[256];
	char hdr[1400];
	struct sig *s = open_dir(tmp);
	uint64_t exp = unix_ms() + FUTURE_MS;
	pid_t kid;
	size_t n, i;

	REQUIRE(s, "sig_open(dir:%s) failed", tmp);
	hostname(host);
	box_path(dir, sizeof dir, tmp, "bob", "offers", NULL);

	/* Expired: already, and shortly after posting. */
	new_id(id);
	CHECK(sig_offer(s, "bob", id, "old", 3, unix_ms() - 1) == 0, "expired offer");
	new_id(id);
	CHECK(sig_offer(s, "bob", id, "old", 3, unix_ms() + 100) == 0, "short offer");
	poll(NULL, 0, 150);
	CHECK(count_entries(dir) == 2, "two expired offers not in place");
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 1, "expired offer taken");
	CHECK(count_entries(dir) == 0, "expired offers not removed from %s", dir);

	/* A dead writer on this host: removed.  On another host: kept. */
	kid = fork();
	REQUIRE(kid != -1, "fork");
	if (kid == 0)
		_exit(0);
	REQUIRE(waitpid(kid, NULL, 0) == kid, "waitpid");
	new_id(id);
	box_path(path, sizeof path, tmp, "bob", "offers", id);
	n = message(buf, sizeof buf, exp, (long)kid, host, "dead", 4);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 1,
	    "offer of dead pid %ld taken", (long)kid);
	CHECK(!exists(path), "offer of dead pid %ld not removed", (long)kid);

	n = message(buf, sizeof buf, exp, (long)kid, "elsewhere.invalid", "away", 4);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 0 && m.len == 4 &&
	    memcmp(m.blob, "away", 4) == 0 && strcmp(m.id, id) == 0,
	    "offer of a pid on another host not taken");

	/* The hand-made format is the real one: a live writer's is taken. */
	n = message(buf, sizeof buf, exp, (long)getpid(), host, "live\0!", 6);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 0 && m.len == 6 &&
	    memcmp(m.blob, "live\0!", 6) == 0 && strcmp(m.id, id) == 0,
	    "hand-written offer not taken");
	/* No host line: the pid cannot be judged; taken. */
	n = (size_t)snprintf(buf, sizeof buf, "p2pcat-sig 1\nexpire %" PRIu64 "\npid %ld\n\nnohost",
	    exp, (long)kid);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 0 && m.len == 6 &&
	    memcmp(m.blob, "nohost", 6) == 0, "offer without a host line not taken");

	/* Malformed contents under valid names: never taken.  Without a
	 * valid header a file may not be ours: it stays.  With one (an
	 * empty blob) it is ours, and removed. */
	{
		static const char *bad[] = {
			"",
			"garbage",
			"p2pcat-sig 1\n",
			"p2pcat-sig 1\n\nblob",
			"p2pcat-sig 2\nexpire 99999999999999\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 1\nhost h\nblob",
			"p2pcat-sig 1\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 0\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid -5\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 12x\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 4294967297\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid +1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999x\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire -99999999999999\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire  99999999999999\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire \npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 0\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 999999999999999999999999\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 18446744073709551616\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 1\nhostless\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\nexpire 99999999999999\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 1\npid 1\nhost h\n\nblob",
			"p2pcat-sig 1\nexpire 99999999999999\npid 1\nhost h\nhost i\n\nblob",
			"p2pcat-sig 1\n expire 99999999999999\npid 1\nhost h\n\nblob",
			"P2PCAT-SIG 1\nexpire 99999999999999\npid 1\nhost h\n\nblob",
		};
		char ids[sizeof bad / sizeof bad[0]][SIG_ID_LEN + 1];
		char ours[SIG_ID_LEN + 1];

		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			new_id(ids[i]);
			box_path(path, sizeof path, tmp, "bob", "offers", ids[i]);
			CHECK(put_file(path, bad[i], strlen(bad[i])) == 0, "write %s", path);
		}
		/* A header beyond DIR_HDR_MAX (512) bytes. */
		new_id(id);
		n = (size_t)snprintf(hdr, sizeof hdr, "p2pcat-sig 1\nexpire %" PRIu64
		    "\npid %ld\nhost %s\nx %600s\n\nblob", exp, (long)getpid(), host, "pad");
		box_path(path, sizeof path, tmp, "bob", "offers", id);
		CHECK(put_file(path, hdr, n) == 0, "write %s", path);
		/* A valid header and no blob: ours, and useless. */
		new_id(ours);
		n = message(buf, sizeof buf, exp, (long)getpid(), host, "", 0);
		box_path(path, sizeof path, tmp, "bob", "offers", ours);
		CHECK(put_file(path, buf, n) == 0, "write %s", path);
		CHECK(count_entries(dir) == (int)(sizeof bad / sizeof bad[0]) + 2,
		    "malformed offers not in place");
		CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 1,
		    "a malformed offer was taken (`%.*s')", (int)m.len, (char *)m.blob);
		CHECK(!exists(path), "an empty offer with a valid header left in place");
		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			box_path(path, sizeof path, tmp, "bob", "offers", ids[i]);
			CHECK(exists(path), "malformed file %zu (`%.20s') removed", i, bad[i]);
			unlink(path);
		}
		box_path(path, sizeof path, tmp, "bob", "offers", id);
		CHECK(exists(path), "file with an over-long header removed");
		unlink(path);
		CHECK(count_entries(dir) == 0, "%s not empty (%d)", dir, count_entries(dir));
	}

	/* Oversized by one byte: removed; exactly SIG_MAX_BLOB: taken. */
	memset(big, 'B', sizeof big);
	new_id(id);
	box_path(path, sizeof path, tmp, "bob", "offers", id);
	n = message(buf, sizeof buf, exp, (long)getpid(), host, big, SIG_MAX_BLOB + 1);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 1, "oversized offer taken");
	CHECK(!exists(path), "oversized offer not removed");
	n = message(buf, sizeof buf, exp, (long)getpid(), host, big, SIG_MAX_BLOB + 90);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 1, "oversized offer taken");
	CHECK(!exists(path), "much oversized offer not removed");
	n = message(buf, sizeof buf, exp, (long)getpid(), host, big, SIG_MAX_BLOB);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 0 && m.len == SIG_MAX_BLOB &&
	    memcmp(m.blob, big, SIG_MAX_BLOB) == 0, "offer of SIG_MAX_BLOB bytes not taken");

	/* Misnamed files: never ours, so left alone; a good offer beside
	 * them is taken. */
	{
		static const char *names[] = {
			"hello", "0123456789ABCDEF0123456789ABCDEF",
			"0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
			"0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef~",
			".hidden", ".tmp-x-0123456789abcdef0123456789abcdef",
			".tmp-1-0123456789abcdef0123456789abcdeX",
		};

		n = message(buf, sizeof buf, exp, (long)getpid(), host, "misnamed", 8);
		for (i = 0; i < sizeof names / sizeof names[0]; i++) {
			box_path(path, sizeof path, tmp, "bob", "offers", names[i]);
			CHECK(put_file(path, buf, n) == 0 && age(path, 3600) == 0,
			    "write %s", path);
		}
		new_id(id);
		REQUIRE(sig_offer(s, "bob", id, "good", 4, exp) == 0, "offer");
		CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == 0 &&
		    strcmp(m.id, id) == 0 && m.len == 4 && memcmp(m.blob, "good", 4) == 0,
		    "good offer among misnamed ones not taken");
		CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 100) == 1,
		    "a misnamed offer was taken");
		for (i = 0; i < sizeof names / sizeof names[0]; i++) {
			box_path(path, sizeof path, tmp, "bob", "offers", names[i]);
			CHECK(exists(path), "misnamed file `%s' removed", names[i]);
			unlink(path);
		}
		CHECK(count_entries(dir) == 0, "%s not empty", dir);
	}

	/* Leftovers of crashed writers and listeners: swept when old. */
	{
		static const char *names[][2] = {
			{ ".tmp-1-0123456789abcdef0123456789abcdef",
			  ".tmp-2-0123456789abcdef0123456789abcdef" },
			{ ".claimed-1-0123456789abcdef0123456789abcdef",
			  ".claimed-2-0123456789abcdef0123456789abcdef" },
		};
		char oldp[PATH_MAX], fresh[PATH_MAX];

		for (i = 0; i < sizeof names / sizeof names[0]; i++) {
			box_path(oldp, sizeof oldp, tmp, "bob", "offers", names[i][0]);
			box_path(fresh, sizeof fresh, tmp, "bob", "offers", names[i][1]);
			n = message(buf, sizeof buf, exp, (long)getpid(), host, "left", 4);
			CHECK(put_file(oldp, buf, n) == 0 && put_file(fresh, buf, n) == 0 &&
			    age(oldp, 11 * 60) == 0 && age(fresh, 60) == 0,
			    "set up %s", oldp);
			CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 100) == 1,
			    "leftover %s taken as an offer", names[i][0]);
			CHECK(!exists(oldp), "old leftover %s not swept", names[i][0]);
			CHECK(exists(fresh), "fresh leftover %s removed", names[i][1]);
			unlink(fresh);
		}
		/* An old dot-directory is not a leftover file. */
		box_path(oldp, sizeof oldp, tmp, "bob", "offers", ".tmp-dir");
		CHECK(mkdir(oldp, 0755) == 0 && age(oldp, 3600) == 0, "mkdir %s", oldp);
		CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 100) == 1, "wait");
		CHECK(exists(oldp), "old directory %s removed", oldp);
	}
	sig_close(s);
}

static void
case_deadline(const char *tmp)
{
	static struct sig_msg m;
	struct sig_opts o = opts();
	char url[PATH_MAX + 8];
	unsigned long naps;
	uint64_t end;
	int64_t late;
	struct sig *s;
	int ms, r;

	/* Poll intervals longer than the wait must not overshoot it: with
	 * looks an hour apart, only the deadline can end the wait before
	 * guarded_wait's guard.  A deadline now ends it without a sleep. */
	o.poll_ms = HOUR_MS;
	pathf(url, sizeof url, "dir:%s", tmp);
	s = sig_open(url, &o);
	REQUIRE(s, "sig_open(%s) failed", url);
	for (ms = 0; ms <= 600; ms += 300) {
		naps = sig_dir_naps(s);
		end = unix_ms() + (uint64_t)ms;
		r = guarded_wait(s, NULL, &m, end);
		late = (int64_t)(unix_ms() - end);
		CHECK(r == 1 && late >= 0 && stop_flag == 0, "%d ms deadline, looking every "
		    "hour: %d, %" PRId64 " ms after its deadline%s", ms, r, late,
		    stop_flag ? ", ended by the guard" : "");
		CHECK(ms > 0 || sig_dir_naps(s) == naps, "0 ms deadline: %lu poll(2)s, want none",
		    sig_dir_naps(s) - naps);
	}
	sig_close(s);
}

/* One racing listener: report each offer id taken on fd; exit status 0,
 * or 1 when a wait failed or an offer's blob was not its id. */
static void
race_kid(const char *tmp, int fd)
{
	static struct sig_msg m;
	struct sig *s = open_dir(tmp);
	int r = 0, bad = s == NULL;

	while (s && (r = sig_wait_offer(s, "bob", &m, unix_ms() + 1500)) == 0) {
		if (m.len != SIG_ID_LEN || memcmp(m.blob, m.id, SIG_ID_LEN) != 0)
			bad = 1;
		if (write(fd, m.id, SIG_ID_LEN + 1) != SIG_ID_LEN + 1)
			bad = 1;
	}
	if (s && r == -1)
		bad = 1;
	sig_close(s);
	_exit(bad);
}

static void
case_race(const char *tmp)
{
	static char ids[RACE_OFFERS][SIG_ID_LEN + 1];
	char got[SIG_ID_LEN + 1], dir[PATH_MAX];
	int seen[RACE_OFFERS] = { 0 };
	pid_t kids[RACE_KIDS];
	int fds[2], i, j, st, total = 0, dup = 0, stray = 0;
	struct sig *s = open_dir(tmp);

	REQUIRE(s, "sig_open(dir:%s) failed", tmp);
	REQUIRE(pipe(fds) == 0, "pipe");
	fflush(NULL);
	for (i = 0; i < RACE_KIDS; i++) {
		REQUIRE((kids[i] = fork()) != -1, "fork");
		if (kids[i] == 0) {
			close(fds[0]);
			race_kid(tmp, fds[1]);
		}
	}
	close(fds[1]);
	for (i = 0; i < RACE_OFFERS; i++) {
		new_id(ids[i]);
		CHECK(sig_offer(s, "bob", ids[i], ids[i], SIG_ID_LEN,
		    unix_ms() + FUTURE_MS) == 0, "race offer %d", i);
		if (i % 20 == 0)
			poll(NULL, 0, 5);
	}
	while (read(fds[0], got, sizeof got) == (ssize_t)sizeof got) {
		total++;
		for (j = 0; j < RACE_OFFERS; j++)
			if (strcmp(got, ids[j]) == 0)
				break;
		if (j == RACE_OFFERS)
			stray++;
		else if (seen[j]++)
			dup++;
	}
	close(fds[0]);
	for (i = 0; i < RACE_KIDS; i++) {
		CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) &&
		    WEXITSTATUS(st) == 0, "listener %d failed (status %#x)", i, st);
	}
	for (j = 0; j < RACE_OFFERS; j++)
		if (seen[j] == 0)
			break;
	CHECK(j == RACE_OFFERS, "offer %d never taken", j);
	CHECK(dup == 0, "%d offers taken twice", dup);
	CHECK(stray == 0, "%d unknown ids reported", stray);
	CHECK(total == RACE_OFFERS, "%d offers taken, want %d", total, RACE_OFFERS);
	box_path(dir, sizeof dir, tmp, "bob", "offers", NULL);
	CHECK(count_entries(dir) == 0, "%s not empty after the race (%d)", dir,
	    count_entries(dir));
	sig_close(s);
}

static void
case_withdraw(const char *tmp)
{
	static struct sig_msg m;
	char id[SIG_ID_LEN + 1], other[SIG_ID_LEN + 1], bad[128];
	char offer[PATH_MAX], answer[PATH_MAX], offer2[PATH_MAX], answer2[PATH_MAX];
	struct sig *s = open_dir(tmp);
	uint64_t exp = unix_ms() + FUTURE_MS;

	REQUIRE(s, "sig_open(dir:%s) failed", tmp);
	new_id(id);
	new_id(other);
	box_path(offer, sizeof offer, tmp, "bob", "offers", id);
	box_path(answer, sizeof answer, tmp, "bob", "answers", id);
	box_path(offer2, sizeof offer2, tmp, "bob", "offers", other);
	box_path(answer2, sizeof answer2, tmp, "bob", "answers", other);

	sig_withdraw(s, "bob", id);	/* nothing there: a no-op */
	sig_unanswer(s, "bob", id);
	sig_withdraw(s, "nobody", id);
	CHECK(sig_offer(s, "bob", id, "o", 1, exp) == 0 &&
	    sig_answer(s, "bob", id, "a", 1, exp) == 0 &&
	    sig_offer(s, "bob", other, "o2", 2, exp) == 0 &&
	    sig_answer(s, "bob", other, "a2", 2, exp) == 0, "set up offers and answers");

	sig_unanswer(s, "bob", id);
	CHECK(!exists(answer), "sig_unanswer left the answer");
	CHECK(exists(offer), "sig_unanswer removed the offer");
	sig_unanswer(s, "bob", id);	/* again: a no-op */
	CHECK(exists(offer), "second sig_unanswer removed the offer");
	CHECK(sig_wait_answer(s, "bob", id, &m, unix_ms() + 50) == 1,
	    "an unanswered answer was delivered");

	CHECK(sig_answer(s, "bob", id, "a", 1, exp) == 0, "answer again after unanswer");
	sig_withdraw(s, "bob", id);
	CHECK(!exists(offer) && !exists(answer), "sig_withdraw left files");
	sig_withdraw(s, "bob", id);	/* again: a no-op */
	sig_unanswer(s, "bob", id);
	CHECK(exists(offer2) && exists(answer2), "another offer's files were removed");

	sig_withdraw(s, "../x", other);	/* bad names: refused */
	sig_unanswer(s, "", other);
	CHECK(exists(offer2) && exists(answer2), "bad names removed files");

	/* An id must not climb out of the inbox. */
	pathf(bad, sizeof bad, "../offers/%s", other);
	sig_unanswer(s, "bob", bad);
	CHECK(exists(offer2), "sig_unanswer with bad id `%s' removed an offer", bad);
	pathf(bad, sizeof bad, "../answers/%s", other);
	sig_withdraw(s, "bob", bad);
	CHECK(exists(answer2), "sig_withdraw with bad id `%s' removed an answer", bad);
	sig_close(s);
}

static void
case_stop(const char *tmp)
{
	static struct sig_msg m;
	static const unsigned polls[] = { 0, 10, HOUR_MS };
	struct sig_opts o = opts();
	char url[PATH_MAX + 8], id[SIG_ID_LEN + 1];
	unsigned long naps;
	uint64_t t0, dt, end;
	int64_t late;
	struct sig *s;
	size_t i;
	int r;

	/* Nothing but the stop flag, set by SIGALRM at 200 ms, ends these
	 * waits before their deadline (LONG_MS): no message comes, there is
	 * no wake descriptor, and the longest interval between looks is an
	 * hour. */
	pathf(url, sizeof url, "dir:%s", tmp);
	new_id(id);
	for (i = 0; i < 2 * sizeof polls / sizeof polls[0]; i++) {
		int answer = i % 2;

		o.poll_ms = polls[i / 2];
		s = sig_open(url, &o);
		REQUIRE(s, "sig_open(%s) failed", url);
		stop_flag = 0;
		end = unix_ms() + LONG_MS;
		t0 = mono_ms();		/* before the timer starts: dt errs long */
		alarm_in(200);
		r = answer ? sig_wait_answer(s, "bob", id, &m, end) :
		    sig_wait_offer(s, "bob", &m, end);
		dt = mono_ms() - t0;
		late = (int64_t)(unix_ms() - end);
		alarm_in(0);
		CHECK(r == 1, "%s (poll %u ms): %d after stop, want 1",
		    answer ? "wait_answer" : "wait_offer", o.poll_ms, r);
		CHECK(stop_flag == 1 && dt >= 150 && late < 0, "%s (poll %u ms): returned %"
		    PRIu64 " ms after start, %" PRId64 " ms after its %d ms deadline, stop "
		    "flag %d (set at 200 ms)", answer ? "wait_answer" : "wait_offer",
		    o.poll_ms, dt, late, LONG_MS, (int)stop_flag);
		sig_close(s);
	}
	/* Already stopped: an empty inbox returns after the look, without
	 * sleeping. */
	o.poll_ms = HOUR_MS;
	s = sig_open(url, &o);
	REQUIRE(s, "sig_open(%s) failed", url);
	stop_flag = 1;
	naps = sig_dir_naps(s);
	r = sig_wait_offer(s, "bob", &m, unix_ms() + LONG_MS);
	CHECK(r == 1 && sig_dir_naps(s) == naps, "wait_offer when stopped: %d after %lu "
	    "poll(2)s, want 1 after none", r, sig_dir_naps(s) - naps);
	stop_flag = 0;
	sig_close(s);
}

static void
case_counts(const char *tmp)
{
	static struct sig_msg m;
	char id[SIG_ID_LEN + 1];
	struct sig *s = open_dir(tmp), *t = open_dir(tmp);
	uint64_t exp = unix_ms() + FUTURE_MS;
	unsigned long r0, w0, r1, w1;

	REQUIRE(s && t, "sig_open(dir:%s) failed", tmp);
	sig_counts(s, &r0, &w0);
	CHECK(r0 == 0 && w0 == 0, "fresh handle counts %lu reads %lu writes", r0, w0);
	new_id(id);
	CHECK(sig_offer(s, "bob", id, "x", 1, exp) == 0, "offer");
	sig_counts(s, &r1, &w1);
	CHECK(w1 == 1, "offer counted %lu writes, want 1", w1);
	CHECK(sig_offer(s, "bob", id, "x", 1, exp) == -1, "duplicate offer");
	sig_counts(s, &r1, &w1);
	CHECK(w1 == 1, "a refused offer counted as a write (%lu)", w1);
	sig_counts(t, &r0, &w0);
	CHECK(r0 == 0 && w0 == 0, "the other handle's counts moved");
	CHECK(sig_wait_offer(t, "bob", &m, unix_ms() + 500) == 0, "wait_offer");
	sig_counts(t, &r1, &w1);
	CHECK(r1 > r0 && w1 == 0, "wait_offer counted %lu reads %lu writes", r1, w1);
	r0 = r1;
	CHECK(sig_wait_offer(t, "bob", &m, unix_ms() + 100) == 1, "empty wait");
	sig_counts(t, &r1, &w1);
	CHECK(r1 > r0, "polling an empty inbox counted no reads (%lu)", r1);
	CHECK(sig_answer(t, "bob", id, "y", 1, exp) == 0, "answer");
	sig_counts(t, &r0, &w0);
	CHECK(w0 == 1, "answer counted %lu writes, want 1", w0);
	sig_counts(s, &r0, &w0);
	CHECK(sig_wait_answer(s, "bob", id, &m, unix_ms() + 500) == 0, "wait_answer");
	sig_counts(s, &r1, &w1);
	CHECK(r1 > r0 && w1 == w0, "wait_answer counted %lu reads", r1 - r0);
	sig_close(s);
	sig_close(t);
}

/* Standard error into a file for a while, to count what was said. */
static int saved_stderr = -1;

static void
capture_start(const char *tmp)
{
	char path[PATH_MAX];
	int fd;

	pathf(path, sizeof path, "%s/stderr", tmp);
	fflush(stderr);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    (saved_stderr = dup(2)) == -1 || dup2(fd, 2) == -1) {
		fprintf(stderr, "unit_signal: capture %s: %s\n", path, strerror(errno));
		exit(1);
	}
	close(fd);
}

/* The captured text (NUL-terminated, in a static buffer); stderr back. */
static const char *
capture_end(const char *tmp)
{
	static char text[65536];
	char path[PATH_MAX];
	ssize_t n;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	pathf(path, sizeof path, "%s/stderr", tmp);
	n = get_file(path, text, sizeof text - 1);
	text[n > 0 ? n : 0] = '\0';
	unlink(path);
	fputs(text, stderr);	/* still seen by whoever reads the log */
	return text;
}

/* How often needle occurs in hay. */
static int
occurs(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Wait, up to LONG_MS, until process pid sleeps.  Our parent sleeps
 * only in poll(2) in a wait, after the wait's first look: what a child
 * writes then can only be seen by what wakes the wait. */
static void
await_sleep(pid_t pid)
{
	char path[64], buf[512], *p;
	int ms;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	for (ms = 0; ms < LONG_MS; ms += 2) {
		n = get_file(path, buf, sizeof buf - 1);
		if (n <= 0) {
			poll(NULL, 0, 200);	/* no /proc: a guess */
			return;
		}
		buf[n] = '\0';
		/* "pid (comm) S ...": comm may hold spaces and parentheses. */
		if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] == 'S')
			return;
		poll(NULL, 0, 2);
	}
}

/* A child that posts, once we sleep in a wait, an offer (or, with
 * answer, an answer) to bob under id, in a handle of its own; it exits 0
 * when that worked. */
static pid_t
post_in_wait(const char *tmp, int answer, const char *id, const char *blob)
{
	struct sig *s;
	pid_t kid;
	int r;

	fflush(NULL);
	if ((kid = fork()) != 0)
		return kid;
	await_sleep(getppid());
	s = open_dir(tmp);
	r = s == NULL ? -1 : answer ?
	    sig_answer(s, "bob", id, blob, strlen(blob), unix_ms() + FUTURE_MS) :
	    sig_offer(s, "bob", id, blob, strlen(blob), unix_ms() + FUTURE_MS);
	sig_close(s);
	_exit(r == 0 ? 0 : 1);
}

static int
reaped_ok(pid_t kid)
{
	int st;

	return waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void
case_notice(const char *tmp)
{
	static struct sig_msg m;
	struct sig_opts o = opts();
	char url[PATH_MAX + 8], id[SIG_ID_LEN + 1], other[SIG_ID_LEN + 1];
	char dir[PATH_MAX];
	struct sigaction sa;
	unsigned long naps;
	uint64_t end;
	int64_t late;
	struct sig *s;
	pid_t kid;
	int r;

	/* Messages are posted once the wait sleeps after its first look
	 * (so it has slept when it takes them), and it looks again only
	 * after an hour: a message taken before the deadline was seen by
	 * inotify. */
	o.poll_ms = HOUR_MS;
	pathf(url, sizeof url, "dir:%s", tmp);
	s = sig_open(url, &o);
	REQUIRE(s, "sig_open(%s) failed", url);
	new_id(id);
	kid = post_in_wait(tmp, 0, id, "now");
	naps = sig_dir_naps(s);
	r = sig_wait_offer(s, "bob", &m, unix_ms() + LONG_MS);
	CHECK(r == 0 && strcmp(m.id, id) == 0 && m.len == 3 && memcmp(m.blob, "now", 3) == 0,
	    "wait_offer: %d, not the offer posted during the wait (looking every "
	    "hour, deadline %d ms): no inotify", r, LONG_MS);
	CHECK(sig_dir_naps(s) > naps, "the offer was posted before wait_offer slept");
	CHECK(reaped_ok(kid), "posting child failed");

	kid = post_in_wait(tmp, 1, id, "back");
	naps = sig_dir_naps(s);
	r = sig_wait_answer(s, "bob", id, &m, unix_ms() + LONG_MS);
	CHECK(r == 0 && m.len == 4 && memcmp(m.blob, "back", 4) == 0,
	    "wait_answer: %d, not the answer posted during the wait (looking every "
	    "hour, deadline %d ms): no inotify", r, LONG_MS);
	CHECK(sig_dir_naps(s) > naps, "the answer was posted before wait_answer slept");
	CHECK(reaped_ok(kid), "answering child failed");

	/* Another offer's answer is not ours: the wait goes on to its end. */
	new_id(other);
	kid = post_in_wait(tmp, 1, other, "other");
	end = unix_ms() + 600;
	r = sig_wait_answer(s, "bob", id, &m, end);
	late = (int64_t)(unix_ms() - end);
	CHECK(r == 1 && late >= 0, "wait_answer for %s: %d, %" PRId64 " ms after its "
	    "600 ms deadline, on an answer to another offer", id, r, late);
	CHECK(reaped_ok(kid), "answering child failed");
	sig_unanswer(s, "bob", other);

	/* The inbox removed while a listener waits: it makes a new one.  A
	 * child removes it once we wait, and stops the wait (SIGALRM) once
	 * it is back. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	REQUIRE(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
	stop_flag = 0;
	box_path(dir, sizeof dir, tmp, "bob", "offers", NULL);
	fflush(NULL);
	if ((kid = fork()) == 0) {
		await_sleep(getppid());
		r = rmdir(dir) == 0 && wait_exists(dir, LONG_MS);
		kill(getppid(), SIGALRM);
		_exit(r ? 0 : 1);
	}
	r = sig_wait_offer(s, "bob", &m, unix_ms() + 2 * LONG_MS);
	CHECK(r == 1 && stop_flag == 1, "wait on an inbox removed: %d, stop flag %d",
	    r, (int)stop_flag);
	CHECK(reaped_ok(kid), "rmdir %s failed, or the listener did not make it again "
	    "within %d ms", dir, LONG_MS);
	CHECK(exists(dir), "the listener did not make %s again", dir);
	stop_flag = 0;
	signal(SIGALRM, SIG_DFL);

	/* ... and notices an offer there at once. */
	new_id(id);
	kid = post_in_wait(tmp, 0, id, "again");
	naps = sig_dir_naps(s);
	r = sig_wait_offer(s, "bob", &m, unix_ms() + LONG_MS);
	CHECK(r == 0 && strcmp(m.id, id) == 0, "offer into a new inbox: %d (looking every "
	    "hour, deadline %d ms)", r, LONG_MS);
	CHECK(sig_dir_naps(s) > naps, "the offer was posted before wait_offer slept");
	CHECK(reaped_ok(kid), "posting child failed");
	sig_close(s);
}

/* A child that writes one byte to fd after ms. */
static pid_t
poke_later(int fd, int ms)
{
	pid_t kid;

	fflush(NULL);
	if ((kid = fork()) != 0)
		return kid;
	poll(NULL, 0, ms);
	_exit(write(fd, "x", 1) == 1 ? 0 : 1);
}

/* 1 when fd has something to read. */
static int
readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void
case_wake(const char *tmp)
{
	static struct sig_msg m;
	static const unsigned polls[] = { 10, HOUR_MS };
	struct sig_opts o = opts();
	char url[PATH_MAX + 8], id[SIG_ID_LEN + 1], c;
	uint64_t t0, dt, end;
	unsigned long naps;
	int64_t late;
	struct sig *s;
	size_t i;
	int p[2], r, answer;
	pid_t kid;

	/* Nothing else ends these waits before their deadline (LONG_MS):
	 * no message comes, the stop flag stays 0. */
	REQUIRE(pipe(p) == 0, "pipe");
	pathf(url, sizeof url, "dir:%s", tmp);
	new_id(id);
	for (i = 0; i < 2 * sizeof polls / sizeof polls[0]; i++) {
		answer = i % 2;
		o.poll_ms = polls[i / 2];
		o.wake_fd = p[0];
		s = sig_open(url, &o);
		REQUIRE(s, "sig_open(%s) failed", url);
		/* t0 before the fork: a slow fork only makes dt longer. */
		t0 = mono_ms();
		kid = poke_later(p[1], 200);
		end = unix_ms() + LONG_MS;
		r = answer ? sig_wait_answer(s, "bob", id, &m, end) :
		    sig_wait_offer(s, "bob", &m, end);
		dt = mono_ms() - t0;
		CHECK(r == 1 && unix_ms() < end && dt >= 150,
		    "%s (poll %u ms): %d after %" PRIu64 " ms, woken at 200 ms, deadline %d ms",
		    answer ? "wait_answer" : "wait_offer", o.poll_ms, r, dt, LONG_MS);
		CHECK(reaped_ok(kid), "poking child failed");
		CHECK(readable(p[0]) && read(p[0], &c, 1) == 1 && c == 'x',
		    "the wake descriptor was read from");
		sig_close(s);
	}

	/* Readable already, with an offer waiting: the offer comes first,
	 * then an empty inbox returns at once, long before the deadline
	 * and the next look. */
	o.poll_ms = HOUR_MS;
	s = sig_open(url, &o);
	REQUIRE(s, "sig_open(%s) failed", url);
	CHECK(write(p[1], "y", 1) == 1, "write");
	CHECK(sig_offer(s, "bob", id, "o", 1, unix_ms() + FUTURE_MS) == 0, "offer");
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + LONG_MS) == 0 && strcmp(m.id, id) == 0,
	    "an offer waiting beside a readable wake descriptor not taken");
	end = unix_ms() + LONG_MS;
	r = sig_wait_offer(s, "bob", &m, end);
	CHECK(r == 1 && unix_ms() < end, "readable wake descriptor: wait_offer %d, "
	    "not woken before its %d ms deadline", r, LONG_MS);
	CHECK(read(p[0], &c, 1) == 1 && c == 'y', "the wake descriptor was read from");

	/* The other end closed: end of file is readable too. */
	close(p[1]);
	end = unix_ms() + LONG_MS;
	r = sig_wait_answer(s, "bob", id, &m, end);
	CHECK(r == 1 && unix_ms() < end, "wake descriptor at end of file: wait_answer %d, "
	    "not woken before its %d ms deadline", r, LONG_MS);
	sig_close(s);

	/* A descriptor that is not open cannot wake a wait, nor make it
	 * spin: a 400 ms wait sleeps in poll(2) once on it (POLLNVAL),
	 * once more to its deadline, and at most a few times more on
	 * clock rounding; a spinning one polls thousands of times. */
	close(p[0]);
	o.wake_fd = p[0];
	s = sig_open(url, &o);
	REQUIRE(s, "sig_open(%s) failed", url);
	end = unix_ms() + 400;
	r = sig_wait_offer(s, "bob", &m, end);
	late = (int64_t)(unix_ms() - end);
	naps = sig_dir_naps(s);
	CHECK(r == 1 && late >= 0, "closed wake descriptor: %d, %" PRId64 " ms after its "
	    "400 ms deadline, want 1 at it or after", r, late);
	CHECK(naps >= 1 && naps <= 5, "closed wake descriptor: %lu poll(2)s in a 400 ms wait",
	    naps);
	sig_close(s);
}

/* Make the directories above path (not path itself); 0 or -1. */
static int
parents(const char *path)
{
	char dir[PATH_MAX], *p;

	pathf(dir, sizeof dir, "%s", path);
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

static void
case_symlink(const char *tmp)
{
	static struct sig_msg m;
	static const char *links[] = {
		"inbox", "inbox/bob", "inbox/bob/offers", "inbox/bob/answers",
	};
	static const char *files[] = {
		"victim.txt", "0123456789abcdef0123456789abcdef",
		"fedcba9876543210fedcba9876543210",
		".tmp-1-00112233445566778899aabbccddeeff",
	};
	static char buf[8192];
	char out[PATH_MAX], path[PATH_MAX], root[PATH_MAX], host[256];
	char id[SIG_ID_LEN + 1];
	uint64_t exp = unix_ms() + FUTURE_MS;
	struct sig *s;
	size_t i, j, n;

	/* Outside the rendezvous: files a listener must neither read nor
	 * remove, one a stale offer of ours and one an old temporary. */
	hostname(host);
	pathf(out, sizeof out, "%s/outside", tmp);
	REQUIRE(mkdir(out, 0755) == 0, "mkdir %s", out);
	pathf(path, sizeof path, "%s/%s", out, files[0]);
	REQUIRE(put_file(path, "precious", 8) == 0, "write %s", path);
	pathf(path, sizeof path, "%s/%s", out, files[1]);
	REQUIRE(put_file(path, "garbage", 7) == 0, "write %s", path);
	n = message(buf, sizeof buf, unix_ms() - 1000, (long)getpid(), host, "old", 3);
	pathf(path, sizeof path, "%s/%s", out, files[2]);
	REQUIRE(put_file(path, buf, n) == 0, "write %s", path);
	pathf(path, sizeof path, "%s/%s", out, files[3]);
	REQUIRE(put_file(path, buf, n) == 0 && age(path, 3600) == 0, "write %s", path);

	for (i = 0; i < sizeof links / sizeof links[0]; i++) {
		int offers = strcmp(links[i], "inbox/bob/answers") != 0;
		int answers = strcmp(links[i], "inbox/bob/offers") != 0;

		pathf(root, sizeof root, "%s/r%zu", tmp, i);
		pathf(path, sizeof path, "%s/%s", root, links[i]);
		REQUIRE(parents(path) == 0 && symlink(out, path) == 0, "symlink %s", path);
		s = open_dir(root);
		REQUIRE(s, "sig_open(dir:%s) failed", root);
		new_id(id);
		CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 200) == (offers ? -1 : 1),
		    "wait_offer through a symlinked %s: not %d", links[i], offers ? -1 : 1);
		CHECK(sig_offer(s, "bob", id, "x", 1, exp) == (offers ? -1 : 0),
		    "offer through a symlinked %s: not %d", links[i], offers ? -1 : 0);
		CHECK(sig_answer(s, "bob", id, "y", 1, exp) == (answers ? -1 : 0),
		    "answer through a symlinked %s: not %d", links[i], answers ? -1 : 0);
		CHECK(sig_wait_answer(s, "bob", files[2], &m, unix_ms() + 100) ==
		    (answers ? -1 : 1), "wait_answer through a symlinked %s", links[i]);
		sig_withdraw(s, "bob", files[1]);
		sig_withdraw(s, "bob", files[2]);
		sig_unanswer(s, "bob", files[1]);
		sig_close(s);
		for (j = 0; j < sizeof files / sizeof files[0]; j++) {
			pathf(path, sizeof path, "%s/%s", out, files[j]);
			CHECK(exists(path), "%s symlinked: %s outside was removed",
			    links[i], files[j]);
		}
		CHECK(count_entries(out) == (int)(sizeof files / sizeof files[0]),
		    "%s symlinked: something was written outside (%d entries)",
		    links[i], count_entries(out));
		pathf(path, sizeof path, "%s/%s", out, files[0]);
		CHECK(get_file(path, buf, sizeof buf) == 8 && memcmp(buf, "precious", 8) == 0,
		    "%s symlinked: %s changed", links[i], files[0]);
	}

	/* The root itself may be a symbolic link: the user chose it. */
	pathf(root, sizeof root, "%s/real", tmp);
	pathf(path, sizeof path, "%s/link", tmp);
	REQUIRE(mkdir(root, 0755) == 0 && symlink("real", path) == 0, "symlink %s", path);
	s = open_dir(path);
	REQUIRE(s, "a symlinked root refused");
	roundtrip(s, s, root, "via link", 8, "symlinked root");
	sig_close(s);
}

static void
case_odd(const char *tmp)
{
	static struct sig_msg m;
	static char buf[8192];
	enum { SOCK, FIFO, DIR_, LINK, UNREAD, NODD };
	static const char *what[NODD] = {
		"a socket", "a FIFO", "a directory", "a symlink", "an unreadable file",
	};
	char ids[NODD][SIG_ID_LEN + 1], path[PATH_MAX], target[PATH_MAX];
	char id[SIG_ID_LEN + 1], host[256];
	struct sockaddr_un sun;
	const char *said;
	struct sig *s = open_dir(tmp);
	int sock, i, odd = geteuid() == 0 ? UNREAD : NODD, r;
	size_t n;

	REQUIRE(s, "sig_open(dir:%s) failed", tmp);
	hostname(host);
	n = message(buf, sizeof buf, unix_ms() + FUTURE_MS, (long)getpid(), host, "odd", 3);
	pathf(target, sizeof target, "%s/target", tmp);
	REQUIRE(put_file(target, buf, n) == 0, "write %s", target);
	for (i = 0; i < odd; i++) {
		new_id(ids[i]);
		box_path(path, sizeof path, tmp, "bob", "offers", ids[i]);
		REQUIRE(parents(path) == 0, "mkdir for %s", path);
		switch (i) {
		case SOCK:
			memset(&sun, 0, sizeof sun);
			sun.sun_family = AF_UNIX;
			REQUIRE(strlen(path) < sizeof sun.sun_path, "socket path too long");
			strcpy(sun.sun_path, path);
			REQUIRE((sock = socket(AF_UNIX, SOCK_STREAM, 0)) != -1 &&
			    bind(sock, (struct sockaddr *)&sun, sizeof sun) == 0, "bind %s", path);
			close(sock);
			break;
		case FIFO:
			REQUIRE(mkfifo(path, 0644) == 0, "mkfifo %s", path);
			break;
		case DIR_:
			REQUIRE(mkdir(path, 0755) == 0, "mkdir %s", path);
			break;
		case LINK:
			REQUIRE(symlink(target, path) == 0, "symlink %s", path);
			break;
		case UNREAD:	/* only without root, which reads everything */
			REQUIRE(put_file(path, buf, n) == 0 && chmod(path, 0) == 0,
			    "write %s", path);
			break;
		}
	}
	if (odd < NODD)
		printf("     (root: no unreadable file)\n");

	/* Each is skipped and reported once, however often the inbox is
	 * read (every 10 ms here); the listener never gives up on them. */
	log_verbose = 1;
	capture_start(tmp);
	r = sig_wait_offer(s, "bob", &m, unix_ms() + 400);
	said = capture_end(tmp);
	log_verbose = 0;
	CHECK(r == 1, "wait_offer beside odd entries: %d, want 1 (timeout)", r);
	for (i = 0; i < odd; i++) {
		box_path(path, sizeof path, tmp, "bob", "offers", ids[i]);
		CHECK(exists(path), "%s named like an offer was removed", what[i]);
		CHECK(occurs(said, ids[i]) == 1, "%s named like an offer reported %d times, "
		    "want once", what[i], occurs(said, ids[i]));
	}
	CHECK(get_file(target, buf, sizeof buf) == (ssize_t)n, "symlink target changed");

	/* A good offer beside them is taken. */
	new_id(id);
	CHECK(sig_offer(s, "bob", id, "good", 4, unix_ms() + FUTURE_MS) == 0, "offer");
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 1000) == 0 && strcmp(m.id, id) == 0,
	    "a good offer beside odd entries not taken");
	/* One that changes is looked at again: a FIFO becomes an offer. */
	box_path(path, sizeof path, tmp, "bob", "offers", ids[FIFO]);
	CHECK(unlink(path) == 0 && put_file(path, buf, n) == 0, "replace %s", path);
	CHECK(sig_wait_offer(s, "bob", &m, unix_ms() + 1000) == 0 &&
	    strcmp(m.id, ids[FIFO]) == 0, "a FIFO replaced by an offer: not taken");
	sig_close(s);
}

static void
case_lock(const char *tmp)
{
	static struct sig_msg m;
	static const char *warn = "another listener";
	struct sig *a = open_dir(tmp), *b = open_dir(tmp), *c;
	const char *said;
	pid_t kid;

	REQUIRE(a && b, "sig_open(dir:%s) failed", tmp);
	capture_start(tmp);
	sig_wait_offer(a, "bob", &m, unix_ms() + 50);
	sig_wait_offer(a, "bob", &m, unix_ms() + 50);
	said = capture_end(tmp);
	CHECK(occurs(said, warn) == 0, "a lone listener was warned: %s", said);

	capture_start(tmp);
	sig_wait_offer(b, "bob", &m, unix_ms() + 50);
	sig_wait_offer(b, "bob", &m, unix_ms() + 50);
	said = capture_end(tmp);
	CHECK(occurs(said, warn) == 1 && occurs(said, "`bob'") == 1,
	    "a second listener as bob: warned %d times, want once: %s",
	    occurs(said, warn), said);

	capture_start(tmp);
	sig_wait_offer(b, "carol", &m, unix_ms() + 50);
	said = capture_end(tmp);
	CHECK(occurs(said, warn) == 0, "a listener of another name was warned: %s", said);

	/* The first one gone, or killed: nobody is warned. */
	sig_close(a);
	sig_close(b);
	fflush(NULL);
	if ((kid = fork()) == 0) {
		c = open_dir(tmp);
		sig_wait_offer(c, "bob", &m, unix_ms() + 10);
		raise(SIGKILL);
		_exit(1);
	}
	CHECK(waitpid(kid, NULL, 0) == kid, "waitpid");
	c = open_dir(tmp);
	REQUIRE(c, "sig_open(dir:%s) failed", tmp);
	capture_start(tmp);
	sig_wait_offer(c, "bob", &m, unix_ms() + 50);
	said = capture_end(tmp);
	CHECK(occurs(said, warn) == 0, "a killed listener's lock held: %s", said);
	sig_close(c);
}

/* case_shared: users who share a directory, run as children with their
 * own ids (root only). */
#define UID_A	64001
#define UID_B	64002
#define GID_G	64010

enum job_kind { JOB_CALL, JOB_TAKE, JOB_LISTEN, JOB_PLANT };

struct job {
	enum job_kind kind;
	uid_t uid;
	const char *root, *name, *id, *blob, *reply;
	int ms;			/* JOB_TAKE, JOB_LISTEN: how long to wait */
	int errfd;		/* stderr, or -1 */
	int go;			/* JOB_CALL: wait for a byte here, or -1 */
};

/* As uid (groups: its own and GID_G; umask 077):
 *   JOB_CALL: post an offer of blob to name under id, wait for a byte on
 *	go (the test looks at the files meanwhile), take the answer: reply;
 *   JOB_TAKE: take an offer to name within ms: it must be id's, blob;
 *	answer reply, and stay until the answer is taken;
 *   JOB_LISTEN: listen as name for ms, and get no offer;
 *   JOB_PLANT: write an offer file as an older p2pcat with umask 077 did.
 * Exits 0 when that happened as said. */
static void
job_run(const struct job *j)
{
	static struct sig_msg m;
	static char buf[8192];
	struct sig_opts o = opts();
	char url[PATH_MAX + 8], path[PATH_MAX], c;
	gid_t groups[1] = { GID_G };
	struct sig *s;
	uint64_t exp = unix_ms() + FUTURE_MS;
	int r = -1, fd;
	size_t n;

	if (j->errfd != -1)
		dup2(j->errfd, 2);
	if (setgroups(1, groups) == -1 || setresgid(j->uid, j->uid, j->uid) == -1 ||
	    setresuid(j->uid, j->uid, j->uid) == -1)
		_exit(3);
	umask(077);
	if (j->kind == JOB_PLANT) {
		n = message(buf, sizeof buf, exp, 1, "elsewhere.invalid", j->blob, strlen(j->blob));
		pathf(path, sizeof path, "%s/inbox/%s/offers/%s", j->root, j->name, j->id);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
		_exit(fd != -1 && write(fd, buf, n) == (ssize_t)n && close(fd) == 0 ? 0 : 1);
	}
	pathf(url, sizeof url, "dir:%s", j->root);
	if ((s = sig_open(url, &o)) == NULL)
		_exit(2);
	switch (j->kind) {
	case JOB_CALL:
		r = sig_offer(s, j->name, j->id, j->blob, strlen(j->blob), exp);
		if (r == 0 && j->go != -1 && read(j->go, &c, 1) != 1)
			r = 7;
		if (r == 0)
			r = sig_wait_answer(s, j->name, j->id, &m, unix_ms() + 3000);
		if (r == 0 && (m.len != strlen(j->reply) || memcmp(m.blob, j->reply, m.len) != 0))
			r = 4;
		break;
	case JOB_TAKE:
		r = sig_wait_offer(s, j->name, &m, unix_ms() + j->ms);
		if (r == 0 && (strcmp(m.id, j->id) != 0 || m.len != strlen(j->blob) ||
		    memcmp(m.blob, j->blob, m.len) != 0))
			r = 4;
		if (r == 0)
			r = sig_answer(s, j->name, j->id, j->reply, strlen(j->reply), exp);
		/* Alive until the caller has it, as a listener in a session
		 * is: a dead writer's answer is stale. */
		pathf(path, sizeof path, "%s/inbox/%s/answers/%s", j->root, j->name, j->id);
		for (n = 0; r == 0 && n < 300 && exists(path); n++)
			poll(NULL, 0, 10);
		break;
	case JOB_LISTEN:
		r = sig_wait_offer(s, j->name, &m, unix_ms() + j->ms) == 1 ? 0 : 5;
		break;
	case JOB_PLANT:
		break;
	}
	sig_close(s);
	_exit(r == 0 ? 0 : r == -1 ? 6 : r);
}

static pid_t
job_start(const struct job *j)
{
	pid_t kid;

	fflush(NULL);
	if ((kid = fork()) == 0)
		job_run(j);
	return kid;
}

/* The job's exit status (0: it went as planned). */
static int
job_end(pid_t kid)
{
	int st;

	if (waitpid(kid, &st, 0) != kid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int
job(const struct job *j)
{
	return job_end(job_start(j));
}

static void
mode_check(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;

	memset(&st, 0, sizeof st);
	lstat(path, &st);
	CHECK((st.st_mode & 07777) == mode && st.st_uid == uid && st.st_gid == gid,
	    "%s: mode %04o uid %u gid %u, want %04o %u %u", path,
	    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid,
	    (unsigned)mode, (unsigned)uid, (unsigned)gid);
}

/* What was written to fd so far, in buf; fd emptied. */
static const char *
drain(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	if (ftruncate(fd, 0) == -1)
		buf[0] = '\0';
	return buf;
}

/* Alice (A) calls name in root, bob (B) takes it and answers; the file
 * modes on the way: the directories dmode and lmode (offers, answers),
 * messages fmode, all of group gid (0: the writer's own). */
static void
share_call(const char *root, const char *name, mode_t dmode, mode_t lmode,
    mode_t fmode, gid_t gid)
{
	struct job a = { .uid = UID_A, .errfd = -1, .root = root, .name = name };
	struct job b = { .uid = UID_B, .errfd = -1, .go = -1, .root = root, .name = name };
	char id[SIG_ID_LEN + 1], path[PATH_MAX];
	int go[2], st;
	pid_t kid, take;

	new_id(id);
	REQUIRE(pipe(go) == 0, "pipe");
	a.kind = JOB_CALL, a.id = id, a.blob = "hi", a.reply = "hello", a.go = go[0];
	kid = job_start(&a);
	close(go[0]);
	pathf(path, sizeof path, "%s/inbox/%s/offers/%s", root, name, id);
	CHECK(wait_exists(path, 2000), "alice's offer to %s: no %s", name, path);
	mode_check(path, fmode, UID_A, gid ? gid : UID_A);
	pathf(path, sizeof path, "%s/inbox", root);
	mode_check(path, dmode, UID_A, gid ? gid : UID_A);
	pathf(path, sizeof path, "%s/inbox/%s", root, name);
	mode_check(path, dmode, UID_A, gid ? gid : UID_A);
	pathf(path, sizeof path, "%s/inbox/%s/offers", root, name);
	mode_check(path, lmode, UID_A, gid ? gid : UID_A);

	b.kind = JOB_TAKE, b.id = id, b.blob = "hi", b.reply = "hello", b.ms = 2000;
	take = job_start(&b);
	pathf(path, sizeof path, "%s/inbox/%s/answers/%s", root, name, id);
	CHECK(wait_exists(path, 2000), "bob's answer as %s: no %s", name, path);
	mode_check(path, fmode, UID_B, gid ? gid : UID_B);
	pathf(path, sizeof path, "%s/inbox/%s/answers", root, name);
	mode_check(path, lmode, UID_B, gid ? gid : UID_B);
	CHECK(write(go[1], "g", 1) == 1, "write");
	close(go[1]);
	CHECK((st = job_end(kid)) == 0, "alice did not take bob's answer as %s (%d)", name, st);
	CHECK((st = job_end(take)) == 0, "bob did not take alice's offer to %s (%d)", name, st);
	pathf(path, sizeof path, "%s/inbox/%s/answers/%s", root, name, id);
	CHECK(!exists(path), "bob's answer left after alice took it");
	pathf(path, sizeof path, "%s/inbox/%s/offers", root, name);
	CHECK(count_entries(path) == 0, "%s not empty", path);
}

static void
case_shared(const char *tmp)
{
	char root[PATH_MAX], path[PATH_MAX], errs[PATH_MAX], buf[4096];
	char id[SIG_ID_LEN + 1], id2[SIG_ID_LEN + 1];
	struct job a = { .uid = UID_A, .errfd = -1, .go = -1 };
	struct job b = { .uid = UID_B, .errfd = -1, .go = -1 };
	const char *said;
	pid_t kid, call;
	int errfd, st;

	if (geteuid() != 0) {
		printf("     (not root: no other users to share with)\n");
		return;
	}
	REQUIRE(chmod(tmp, 0711) == 0, "chmod %s", tmp);
	pathf(errs, sizeof errs, "%s/errs", tmp);
	REQUIRE((errfd = open(errs, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644)) != -1,
	    "open %s", errs);

	/* A sticky world-writable directory, as /tmp: directories open to
	 * all (sticky where names are, not where messages are), messages
	 * readable by all, though both users have umask 077. */
	pathf(root, sizeof root, "%s/world", tmp);
	REQUIRE(mkdir(root, 0) == 0 && chmod(root, 01777) == 0, "mkdir %s", root);
	share_call(root, "bob", 01777, 0777, 0644, 0);
	a.root = b.root = root;

	/* The listener first, this time; a second listener is warned. */
	new_id(id);
	b.kind = JOB_TAKE, b.name = "carol", b.id = id, b.blob = "hi carol";
	b.reply = "hi", b.ms = 4000;
	kid = job_start(&b);
	pathf(path, sizeof path, "%s/inbox/carol/offers", root);
	CHECK(wait_exists(path, 2000), "bob's listener made no %s", path);
	mode_check(path, 0777, UID_B, UID_B);
	a.kind = JOB_LISTEN, a.name = "carol", a.ms = 100, a.errfd = errfd;
	CHECK((st = job(&a)) == 0, "alice's listener as carol failed (%d)", st);
	said = drain(errfd, buf, sizeof buf);
	CHECK(occurs(said, "another listener") == 1, "no warning for a second listener: %s",
	    said);
	a.errfd = -1;
	a.kind = JOB_CALL, a.id = id, a.blob = "hi carol", a.reply = "hi";
	CHECK((st = job(&a)) == 0, "alice's call to carol failed (%d)", st);
	CHECK((st = job_end(kid)) == 0, "bob did not take alice's offer to carol (%d)", st);

	/* A file that bob cannot read (an older p2pcat's, with umask 077):
	 * skipped and reported once; bob takes the next offer. */
	new_id(id);
	new_id(id2);
	a.kind = JOB_PLANT, a.name = "bob", a.id = id, a.blob = "private";
	CHECK((st = job(&a)) == 0, "alice could not plant a private offer (%d)", st);
	pathf(path, sizeof path, "%s/inbox/bob/offers/%s", root, id);
	mode_check(path, 0600, UID_A, UID_A);
	b.kind = JOB_LISTEN, b.name = "bob", b.ms = 300, b.errfd = errfd;
	CHECK((st = job(&b)) == 0, "bob's listener failed beside an unreadable offer (%d)", st);
	b.errfd = -1;
	CHECK(exists(path), "the unreadable offer was removed");
	said = drain(errfd, buf, sizeof buf);
	CHECK(occurs(said, id) == 1, "unreadable offer %s reported %d times, want once: %s",
	    id, occurs(said, id), said);
	a.kind = JOB_CALL, a.id = id2, a.blob = "public", a.reply = "ok";
	call = job_start(&a);
	b.kind = JOB_TAKE, b.id = id2, b.blob = "public", b.reply = "ok", b.ms = 2000;
	CHECK((st = job(&b)) == 0, "bob stopped at an unreadable offer (%d)", st);
	CHECK((st = job_end(call)) == 0, "alice did not get bob's answer (%d)", st);

	/* A group's setgid directory: the group's alone. */
	pathf(root, sizeof root, "%s/group", tmp);
	REQUIRE(mkdir(root, 0) == 0 && chown(root, 0, GID_G) == 0 &&
	    chmod(root, 02770) == 0, "mkdir %s", root);
	share_call(root, "dave", 02770, 02770, 0640, GID_G);

	/* Alice's own directory, not shared: bob is told, not left waiting. */
	pathf(root, sizeof root, "%s/alices", tmp);
	REQUIRE(mkdir(root, 0755) == 0 && chown(root, UID_A, UID_A) == 0, "mkdir %s", root);
	a.root = b.root = root;
	new_id(id);
	a.kind = JOB_CALL, a.name = "erin", a.id = id, a.blob = "hi erin", a.reply = "-";
	call = job_start(&a);
	pathf(path, sizeof path, "%s/inbox/erin/offers/%s", root, id);
	CHECK(wait_exists(path, 2000), "alice's offer to erin: no %s", path);
	b.kind = JOB_TAKE, b.name = "erin", b.id = id, b.blob = "hi erin", b.reply = "no";
	b.ms = 1000, b.errfd = errfd;
	CHECK((st = job(&b)) == 6, "bob as erin in alice's directory: status %d, want "
	    "6 (an error)", st);
	said = drain(errfd, buf, sizeof buf);
	CHECK(occurs(said, root) >= 1, "bob's error does not name the directory: %s", said);
	CHECK((st = job_end(call)) == 1, "alice's call to erin: status %d, want 1 (no answer)",
	    st);
	close(errfd);
}

/* Test driver. */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static const struct {
	const char *name;
	void (*fn)(const char *tmp);
} cases[] = {
	{ "names", case_names },
	{ "open", case_open },
	{ "roundtrip", case_roundtrip },
	{ "consume", case_consume },
	{ "deadline", case_deadline },
	{ "stale", case_stale },
	{ "race", case_race },
	{ "withdraw", case_withdraw },
	{ "stop", case_stop },
	{ "counts", case_counts },
	{ "notice", case_notice },
	{ "wake", case_wake },
	{ "symlink", case_symlink },
	{ "odd", case_odd },
	{ "lock", case_lock },
	{ "shared", case_shared },
};

int
main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	char tmp[PATH_MAX];
	size_t i;
	int ran = 0;

	umask(022);
	if (base == NULL || *base == '\0')
		base = "/tmp";
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int before = failures;

		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		cur = cases[i].name;
		pathf(tmp, sizeof tmp, "%s/unit_signal.XXXXXX", base);
		if (mkdtemp(tmp) == NULL) {
			fprintf(stderr, "unit_signal: mkdtemp %s: %s\n", tmp, strerror(errno));
			return 1;
		}
		cases[i].fn(tmp);
		if (nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
			fprintf(stderr, "unit_signal: cannot remove %s\n", tmp);
		printf("%s %s\n", failures == before ? "ok  " : "FAIL", cur);
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "unit_signal: no case `%s'\n", argv[1]);
		return 1;
	}
	printf("unit_signal: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
