/* util.c: diagnostics and clocks shared by every module. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int log_verbose;
const char *log_tag;

static void
vlog(const char *fmt, va_list ap, int err)
{
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (err)
		fprintf(stderr, "p2pcat: %s%s%s: %s\n", log_tag ? log_tag : "",
		    log_tag ? ": " : "", msg, strerror(err));
	else
		fprintf(stderr, "p2pcat: %s%s%s\n", log_tag ? log_tag : "",
		    log_tag ? ": " : "", msg);
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

uint64_t
now_us(void)
{
	struct timespec ts;

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
