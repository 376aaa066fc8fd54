/* util.c: diagnostics and clocks shared by every module. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int log_verbose;
const char *log_tag;

/* The length (2 to 4) of the well-formed UTF-8 sequence of more than one
 * byte at s, with its code point in *cp; 0 if there is none there. */
static size_t
utf8_seq(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;	/* a NUL ends the string here too */
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Code points a terminal acts on or that reorder the text around them:
 * C1 controls (U+0080-U+009F; U+009B is a CSI to some terminals), line
 * and paragraph separators, and the bidirectional marks, embeddings,
 * overrides and isolates (Unicode UAX #9). */
static bool
unsafe_cp(uint32_t c)
{
	return c <= 0x9f || c == 0x200e || c == 0x200f || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069);
}

const char *
util_escape(const char *str, char *buf, size_t size)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t j = 0, cut = 0, n;
	char e[16];
	uint32_t cp;

	if (size == 0)
		return buf;
	for (; *s != '\0'; s += n) {
		const char *piece = e;
		size_t plen;

		n = 1;
		if (*s == '\n' || *s == '\r' || *s == '\t') {
			e[0] = '\\';
			e[1] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
			e[2] = '\0';
		} else if (*s >= 0x20 && *s < 0x7f) {
			e[0] = *s;
			e[1] = '\0';
		} else if (*s < 0x80 || (n = utf8_seq(s, &cp)) == 0) {
			n = 1;
			snprintf(e, sizeof e, "\\x%02x", *s);
		} else if (unsafe_cp(cp)) {
			snprintf(e, sizeof e, "\\u%04x", (unsigned)cp);
		} else {
			piece = (const char *)s;
		}
		plen = piece == e ? strlen(e) : n;
		if (j + 3 < size)
			cut = j;	/* "..." still fits after what is in */
		if (j + plen >= size) {
			j = cut;
			if (j + 3 < size)
				memcpy(buf + j, "...", 3), j += 3;
			break;
		}
		memcpy(buf + j, piece, plen);
		j += plen;
	}
	buf[j] = '\0';
	return buf;
}
/* log_status's line is on the terminal: a message goes over it. */
static bool status_shown;

static void
vlog(const char *fmt, va_list ap, int err)
{
	char msg[1024], safe[4 * sizeof msg];

	if (status_shown) {
		fputs("\r\033[K", stderr);
		status_shown = false;
	}
	vsnprintf(msg, sizeof msg, fmt, ap);
	util_escape(msg, safe, sizeof safe);
	if (err)
		fprintf(stderr, "p2pcat: %s%s%s: %s\n", log_tag ? log_tag : "",
		    log_tag ? ": " : "", safe, strerror(err));
	else
		fprintf(stderr, "p2pcat: %s%s%s\n", log_tag ? log_tag : "",
		    log_tag ? ": " : "", safe);
}

void
log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap, 0);
	va_end(ap);
}

void
log_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap, err);
	va_end(ap);
	errno = err;
}

void
log_v(int level, const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < level)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap, 0);
	va_end(ap);
}

void
log_status(bool tty, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (*msg == '\0') {
		if (status_shown)
			fputs("\r\033[K", stderr);
		status_shown = false;
	} else if (tty) {
		/* Back to the start of the line; then clear what the last
		 * one left beyond this one (ECMA-48 EL). */
		fprintf(stderr, "\rp2pcat: %s\033[K", msg);
		status_shown = true;
	} else {
		fprintf(stderr, "p2pcat: %s\n", msg);
	}
}

static const uint64_t *test_clock;

void
util_test_set_clock(const uint64_t *clock)
{
	test_clock = clock;
}

uint64_t
now_us(void)
{
	struct timespec ts;

	if (test_clock)
		return *test_clock;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

long
util_read_private(const char *path, const char *what, char *buf, size_t cap)
{
	struct stat st;
	ssize_t n = -1;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		log_errno("cannot read %s `%s'", what, path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		log_err("%s `%s' must be a regular file that only you can read "
		    "(chmod 600 it)", what, path);
		goto out;
	}
	if ((n = read(fd, buf, cap - 1)) < 0) {
		log_errno("cannot read %s `%s'", what, path);
		goto out;
	}
	while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
		n--;
	buf[n] = '\0';
	/* A file that fills buf may hold more than we read: too long. */
	if (n == 0 || (size_t)n > cap - 2) {
		log_err("%s `%s' must hold 1 to %zu bytes", what, path, cap - 2);
		n = -1;
	}
out:
	close(fd);
	return n;
}

/* Whether gid is uid's private group: its primary group, named as the
 * user, with no other members.  Only the user can write through it, as
 * Debian's OpenSSH (its user-group-modes patch) has it for ~/.ssh. */
static bool
private_group(uid_t uid, gid_t gid)
{
	struct passwd *pw;
	struct group *gr;

	if ((pw = getpwuid(uid)) == NULL || pw->pw_gid != gid ||
	    (gr = getgrgid(gid)) == NULL)
		return false;
	return strcmp(gr->gr_name, pw->pw_name) == 0 &&
	    (gr->gr_mem == NULL || gr->gr_mem[0] == NULL);
}

int
util_read_trusted(const char *path, const char *what, int nofollow, size_t max,
    char **buf, size_t *len)
{
	struct stat st;
	char *b = NULL;
	size_t n = 0;
	ssize_t r;
	int fd, ret = -1;

	*buf = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC |
	    (nofollow ? O_NOFOLLOW : 0))) == -1) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP && nofollow)
			log_err("%s `%s' is a symbolic link; refusing it", what, path);
		else
			log_errno("cannot read %s `%s'", what, path);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_errno("cannot read %s `%s'", what, path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s `%s' is %s", what, path, S_ISDIR(st.st_mode) ?
		    "a directory, not a file" : "not a regular file");
		goto out;
	}
	if ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 002) ||
	    ((st.st_mode & 020) && !private_group(st.st_uid, st.st_gid))) {
		log_err("%s `%s' may be changed by others (owner %u, mode %03o): it must "
		    "belong to you or root, and neither others nor a group other "
		    "than your own private one may write it (chmod go-w it)", what, path, (unsigned)st.st_uid,
		    (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if ((b = malloc(max + 1)) == NULL) {
		log_errno("malloc");
		goto out;
	}
	/* One byte more than max tells a file that is too large. */
	while (n <= max && (r = read(fd, b + n, max + 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_errno("cannot read %s `%s'", what, path);
			goto out;
		}
		n += (size_t)r;
	}
	if (n > max) {
		log_err("%s `%s' is larger than %zu bytes", what, path, max);
		goto out;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	ret = 1;
out:
	free(b);
	close(fd);
	return ret;
}

uint64_t
secs_us(double s)
{
	return (uint64_t)(s * 1e6);
}

int
timeout_ms(uint64_t t, uint64_t now)
{
	if (t == UINT64_MAX)
		return -1;
	if (t <= now)
		return 0;
	return (t - now + 999) / 1000 > INT_MAX ? INT_MAX : (int)((t - now + 999) / 1000);
}

void
util_mutex_lock(pthread_mutex_t *mu)
{
	if (pthread_mutex_lock(mu) == EOWNERDEAD)
		pthread_mutex_consistent(mu);
}
