/*
 * signal.c: the rendezvous front end and the local "dir:" backend.
 *
 * dir:PATH keeps every message in a file, so any processes that share
 * PATH (one host, or a shared file system) can meet:
 *
 *	PATH/inbox/NAME/offers/ID	an offer to NAME
 *	PATH/inbox/NAME/answers/ID	NAME's answer to offer ID
 *
 * A file is a short text header and the blob:
 *
 *	p2pcat-sig 1\n expire MS\n pid PID\n host HOSTNAME\n \n BLOB
 *
 * Files are written under a dot name and link(2)ed into place, which fails
 * when the name exists, so nothing is ever overwritten; a listener claims
 * an offer by rename(2)ing it away, so two listeners never take the same
 * one.  A file that has expired, or whose writer (on this host) is dead,
 * is stale: it is removed when seen.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signal.h"
#include "util.h"

#define DIR_MAGIC	"p2pcat-sig 1\n"
#define DIR_HDR_MAX	512		/* header bytes before the blob */
#define DIR_POLL_MS	50		/* local polling is cheap */
#define DIR_SWEEP_MS	600000		/* age of a leftover temporary file */

struct sig {
	const struct sig_backend *be;
	void *b;
};

struct sig_dir {
	char root[PATH_MAX];
	char host[256];
	unsigned poll_ms;
	const volatile sig_atomic_t *stop;
	int wake_fd;			/* sig_opts.wake_fd */
	unsigned long reads, writes;
};

static const struct sig_backend *backends[] = {
	&sig_dir_backend,
	&sig_firestore_backend,
};

int
sig_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > SIG_MAX_NAME || name[0] == '.')
		return 0;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && !strchr("._-", *name))
			return 0;
	return 1;
}

/* 1 when id is SIG_ID_LEN lowercase hex digits. */
static int
valid_id(const char *id)
{
	size_t i;

	for (i = 0; i < SIG_ID_LEN; i++)
		if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
			return 0;
	return id[i] == '\0';
}

struct sig *
sig_open(const char *url, const struct sig_opts *o)
{
	const char *colon = strchr(url, ':');
	struct sig *s;
	size_t i;

	if (colon == NULL) {
		log_err("bad rendezvous `%s': want dir:PATH or firestore:PROJECT", url);
		return NULL;
	}
	for (i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		const struct sig_backend *be = backends[i];

		if (strlen(be->scheme) != (size_t)(colon - url) ||
		    strncmp(be->scheme, url, colon - url) != 0)
			continue;
		if ((s = calloc(1, sizeof *s)) == NULL) {
			log_errno("calloc");
			return NULL;
		}
		s->be = be;
		if ((s->b = be->open(colon + 1, o)) == NULL) {
			free(s);
			return NULL;
		}
		return s;
	}
	log_err("unknown rendezvous `%.*s:' in `%s'", (int)(colon - url), url, url);
	return NULL;
}

void
sig_close(struct sig *s)
{
	if (s == NULL)
		return;
	s->be->close(s->b);
	free(s);
}

int
sig_offer(struct sig *s, const char *to, const char *id, const void *blob,
    size_t len, uint64_t expire_ms)
{
	return s->be->offer(s->b, to, id, blob, len, expire_ms);
}

int
sig_wait_answer(struct sig *s, const char *to, const char *id,
    struct sig_msg *ans, uint64_t deadline_ms)
{
	return s->be->wait_answer(s->b, to, id, ans, deadline_ms);
}

void
sig_withdraw(struct sig *s, const char *to, const char *id)
{
	s->be->withdraw(s->b, to, id);
}

int
sig_wait_offer(struct sig *s, const char *name, struct sig_msg *offer,
    uint64_t deadline_ms)
{
	return s->be->wait_offer(s->b, name, offer, deadline_ms);
}

int
sig_answer(struct sig *s, const char *name, const char *id, const void *blob,
    size_t len, uint64_t expire_ms)
{
	return s->be->answer(s->b, name, id, blob, len, expire_ms);
}

void
sig_unanswer(struct sig *s, const char *name, const char *id)
{
	s->be->unanswer(s->b, name, id);
}

void
sig_counts(const struct sig *s, unsigned long *reads, unsigned long *writes)
{
	s->be->counts(s->b, reads, writes);
}

/* The dir: backend. */

/* mkdir -p for the part of path below an existing directory; 0 or -1. */
static int
mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* The default rendezvous directory is private: refuse one that another
 * user could have planted. */
static int
check_private_dir(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1) {
		log_errno("rendezvous directory `%s'", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		log_err("rendezvous directory `%s' is not a private directory "
		    "of this user", path);
		return -1;
	}
	return 0;
}

static void *
dir_open(const char *rest, const struct sig_opts *o)
{
	struct sig_dir *d;
	const char *rt;
	int private = 0;

	if ((d = calloc(1, sizeof *d)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	d->stop = o->stop;
	d->wake_fd = o->wake_fd;
	d->poll_ms = o->poll_ms ? o->poll_ms : DIR_POLL_MS;
	if (*rest != '\0') {
		if (snprintf(d->root, sizeof d->root, "%s", rest) >= (int)sizeof d->root)
			goto toolong;
	} else if ((rt = getenv("XDG_RUNTIME_DIR")) != NULL && *rt == '/') {
		if (snprintf(d->root, sizeof d->root, "%s/p2pcat", rt) >= (int)sizeof d->root)
			goto toolong;
		private = 1;
	} else {
		snprintf(d->root, sizeof d->root, "/tmp/p2pcat-%u", (unsigned)geteuid());
		private = 1;
	}
	if (mkdirs(d->root, private ? 0700 : 0777) == -1) {
		log_errno("cannot create rendezvous directory `%s'", d->root);
		goto fail;
	}
	if (private && check_private_dir(d->root) == -1)
		goto fail;
	if (gethostname(d->host, sizeof d->host - 1) == -1)
		strcpy(d->host, "?");
	log_v(2, "rendezvous directory %s", d->root);
	return d;
toolong:
	log_err("rendezvous path `%s' is too long", *rest ? rest : getenv("XDG_RUNTIME_DIR"));
fail:
	free(d);
	return NULL;
}

static void
dir_close(void *b)
{
	free(b);
}

/* PATH/inbox/NAME/KIND[/ID] into buf; 0 or -1. */
static int
dir_path(const struct sig_dir *d, char *buf, size_t size, const char *name,
    const char *kind, const char *id)
{
	int n;

	if (!sig_valid_name(name)) {
		log_err("bad peer name `%s'", name);
		return -1;
	}
	if (id)
		n = snprintf(buf, size, "%s/inbox/%s/%s/%s", d->root, name, kind, id);
	else
		n = snprintf(buf, size, "%s/inbox/%s/%s", d->root, name, kind);
	if (n < 0 || (size_t)n >= size) {
		log_err("rendezvous path under `%s' is too long", d->root);
		return -1;
	}
	return 0;
}

/* Write a message file at path without overwriting: 0, or -1 (errno
 * EEXIST when the name is taken). */
static int
dir_put(struct sig_dir *d, const char *path, const void *blob, size_t len,
    uint64_t expire_ms)
{
	char tmp[PATH_MAX + 64], hdr[DIR_HDR_MAX], dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd = -1, ret = -1, n;
	size_t dirlen = slash - path;

	if (len == 0 || len > SIG_MAX_BLOB) {
		log_err("rendezvous message of %zu bytes: want 1 to %d", len, SIG_MAX_BLOB);
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(dir, path, dirlen);
	dir[dirlen] = '\0';
	if (mkdirs(dir, 0777) == -1) {
		log_errno("cannot create `%s'", dir);
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-%s", dir, (long)getpid(), slash + 1);
	n = snprintf(hdr, sizeof hdr, DIR_MAGIC "expire %" PRIu64 "\npid %ld\nhost %s\n\n",
	    expire_ms, (long)getpid(), d->host);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) == -1) {
		log_errno("cannot create `%s'", tmp);
		return -1;
	}
	if (write(fd, hdr, n) != n || write(fd, blob, len) != (ssize_t)len) {
		log_errno("cannot write `%s'", tmp);
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		log_errno("cannot write `%s'", tmp);
		goto out;
	}
	fd = -1;
	if (link(tmp, path) == -1) {
		if (errno != EEXIST)
			log_errno("cannot create `%s'", path);
		goto out;
	}
	d->writes++;
	ret = 0;
out:
	if (fd != -1)
		close(fd);
	n = errno;
	unlink(tmp);
	errno = n;
	return ret;
}

/* Parse a message file's contents; 0, or -1 with *why set. */
static int
dir_parse(char *buf, size_t n, struct sig_msg *m, uint64_t *expire,
    long *pid, char *host, size_t hostsize, const char **why)
{
	char *end = memmem(buf, n < DIR_HDR_MAX ? n : DIR_HDR_MAX, "\n\n", 2);
	char *line, *next;

	*why = "malformed";
	if (n < sizeof DIR_MAGIC - 1 || memcmp(buf, DIR_MAGIC, sizeof DIR_MAGIC - 1) != 0 ||
	    end == NULL)
		return -1;
	*end = '\0';
	*expire = 0;
	*pid = 0;
	host[0] = '\0';
	for (line = buf + sizeof DIR_MAGIC - 1; line < end; line = next) {
		char *sp, *ep;

		next = strchr(line, '\n');
		next = next ? next + 1 : end;
		if (next[-1] == '\n')
			next[-1] = '\0';
		if ((sp = strchr(line, ' ')) == NULL)
			return -1;
		*sp++ = '\0';
		errno = 0;
		if (strcmp(line, "expire") == 0) {
			unsigned long long v = strtoull(sp, &ep, 10);

			if (*ep || errno || *sp < '0' || *sp > '9')
				return -1;
			*expire = v;
		} else if (strcmp(line, "pid") == 0) {
			long v = strtol(sp, &ep, 10);

			if (*ep || errno || v <= 0)
				return -1;
			*pid = v;
		} else if (strcmp(line, "host") == 0) {
			snprintf(host, hostsize, "%s", sp);
		}
	}
	if (*expire == 0 || *pid == 0)
		return -1;
	m->len = n - (end + 2 - buf);
	if (m->len == 0 || m->len > SIG_MAX_BLOB) {
		*why = "empty or too large";
		return -1;
	}
	memmove(m->blob, end + 2, m->len);
	return 0;
}

/* Read the message at path.  0 with m filled; 1 when it is absent; 2 when
 * it is stale or malformed (and has been removed); -1 on error. */
static int
dir_get(struct sig_dir *d, const char *path, struct sig_msg *m)
{
	char buf[DIR_HDR_MAX + SIG_MAX_BLOB + 1], host[256];
	const char *why = NULL;
	uint64_t expire;
	ssize_t n;
	long pid;
	int fd;

	struct stat st;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) == -1) {
		if (errno == ENOENT)
			return 1;
		if (errno == ELOOP) {
			why = "symbolic link";
			goto stale;
		}
		log_errno("cannot read `%s'", path);
		return -1;
	}
	d->reads++;
	/* Anyone who can write the directory could plant other things:
	 * they must not stop the listener. */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		log_v(1, "skipping `%s': not a regular file", path);
		return 2;
	}
	n = read(fd, buf, sizeof buf);
	close(fd);
	if (n < 0) {
		log_errno("cannot read `%s'", path);
		return -1;
	}
	if (dir_parse(buf, n, m, &expire, &pid, host, sizeof host, &why) == -1)
		goto stale;
	why = "expired";
	if (expire <= unix_ms())
		goto stale;
	why = "left by a dead process";
	if (strcmp(host, d->host) == 0 && kill(pid, 0) == -1 && errno == ESRCH)
		goto stale;
	return 0;
stale:
	log_v(1, "removing %s rendezvous file `%s'", why, path);
	unlink(path);
	return 2;
}

/* Sleep one poll interval; 1 when it is time to give up (the deadline,
 * a stop or the wake descriptor), else 0. */
static int
dir_nap(const struct sig_dir *d, uint64_t deadline_ms)
{
	struct pollfd pfd = { .fd = d->wake_fd ? d->wake_fd : -1, .events = POLLIN };
	uint64_t now = unix_ms();
	uint64_t ms = d->poll_ms;

	if ((d->stop && *d->stop) || now >= deadline_ms)
		return 1;
	if (deadline_ms - now < ms)
		ms = deadline_ms - now;
	if (poll(&pfd, 1, (int)ms) == 1 && pfd.revents)
		return 1;
	return d->stop && *d->stop;
}

/* Post blob as name's kind/id (an offer or an answer: what), never
 * overwriting; 0 or -1. */
static int
dir_post(struct sig_dir *d, const char *name, const char *kind,
    const char *what, const char *id, const void *blob, size_t len,
    uint64_t expire_ms)
{
	char path[PATH_MAX];

	if (!valid_id(id)) {
		log_err("bad offer id `%s'", id);
		return -1;
	}
	if (dir_path(d, path, sizeof path, name, kind, id) == -1)
		return -1;
	if (dir_put(d, path, blob, len, expire_ms) == -1) {
		if (errno == EEXIST)
			log_err("%s `%s' exists already", what, id);
		return -1;
	}
	return 0;
}

static int
dir_offer(void *b, const char *to, const char *id, const void *blob,
    size_t len, uint64_t expire_ms)
{
	return dir_post(b, to, "offers", "offer", id, blob, len, expire_ms);
}

static int
dir_wait_answer(void *b, const char *to, const char *id, struct sig_msg *ans,
    uint64_t deadline_ms)
{
	struct sig_dir *d = b;
	char path[PATH_MAX];
	int r;

	if (!valid_id(id)) {
		log_err("bad offer id `%s'", id);
		return -1;
	}
	if (dir_path(d, path, sizeof path, to, "answers", id) == -1)
		return -1;
	for (;;) {
		if ((r = dir_get(d, path, ans)) == 0) {
			unlink(path);
			memcpy(ans->id, id, sizeof ans->id);
			return 0;
		}
		if (r == -1)
			return -1;
		if (dir_nap(d, deadline_ms))
			return 1;
	}
}

static void
dir_unlink(struct sig_dir *d, const char *name, const char *kind, const char *id)
{
	char path[PATH_MAX];

	if (valid_id(id) && dir_path(d, path, sizeof path, name, kind, id) == 0 &&
	    unlink(path) == 0)
		log_v(2, "removed %s", path);
}

static void
dir_withdraw(void *b, const char *to, const char *id)
{
	dir_unlink(b, to, "offers", id);
	dir_unlink(b, to, "answers", id);
}

static void
dir_unanswer(void *b, const char *name, const char *id)
{
	dir_unlink(b, name, "answers", id);
}

/* Remove a temporary or claimed file that a crashed process left behind.
 * Its pid may belong to another host, so age is the test. */
static void
sweep(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_mtime * 1000 + DIR_SWEEP_MS < unix_ms()) {
		log_v(1, "removing leftover rendezvous file `%s'", path);
		unlink(path);
	}
}

/* Claim one offer in dir: rename it to a private name and read it.
 * 0 with an offer, 1 when there is none, -1 on error. */
static int
dir_claim(struct sig_dir *d, const char *dir, struct sig_msg *m)
{
	char path[PATH_MAX + 64], claimed[PATH_MAX + 64];
	struct dirent *e;
	DIR *dp;
	int ret = 1, r;

	if ((dp = opendir(dir)) == NULL)
		return errno == ENOENT ? 1 : (log_errno("cannot read `%s'", dir), -1);
	d->reads++;
	while (ret == 1 && (e = readdir(dp)) != NULL) {
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
			continue;
		if (e->d_name[0] == '.') {
			sweep(path);
			continue;
		}
		if (!valid_id(e->d_name)) {
			log_v(1, "removing misnamed rendezvous file `%s'", path);
			unlink(path);
			continue;
		}
		/* Check before claiming, so stale offers are removed in place. */
		if ((r = dir_get(d, path, m)) != 0) {
			if (r == -1)
				ret = -1;
			continue;
		}
		if (snprintf(claimed, sizeof claimed, "%s/.claimed-%ld-%s", dir,
		    (long)getpid(), e->d_name) >= (int)sizeof claimed ||
		    rename(path, claimed) == -1)
			continue;	/* another listener took it */
		r = dir_get(d, claimed, m);
		unlink(claimed);
		if (r == 0) {
			memcpy(m->id, e->d_name, sizeof m->id);	/* valid_id: 32 + NUL */
			ret = 0;
		}
	}
	closedir(dp);
	return ret;
}

static int
dir_wait_offer(void *b, const char *name, struct sig_msg *offer,
    uint64_t deadline_ms)
{
	struct sig_dir *d = b;
	char dir[PATH_MAX];
	int r;

	if (dir_path(d, dir, sizeof dir, name, "offers", NULL) == -1)
		return -1;
	for (;;) {
		if ((r = dir_claim(d, dir, offer)) != 1)
			return r;
		if (dir_nap(d, deadline_ms))
			return 1;
	}
}

static int
dir_answer(void *b, const char *name, const char *id, const void *blob,
    size_t len, uint64_t expire_ms)
{
	return dir_post(b, name, "answers", "answer", id, blob, len, expire_ms);
}

static void
dir_counts(const void *b, unsigned long *reads, unsigned long *writes)
{
	const struct sig_dir *d = b;

	*reads = d->reads;
	*writes = d->writes;
}

const struct sig_backend sig_dir_backend = {
	.scheme = "dir",
	.open = dir_open,
	.close = dir_close,
	.offer = dir_offer,
	.wait_answer = dir_wait_answer,
	.withdraw = dir_withdraw,
	.wait_offer = dir_wait_offer,
	.answer = dir_answer,
	.unanswer = dir_unanswer,
	.counts = dir_counts,
};
