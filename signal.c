/*
 * signal.c: the rendezvous front end and the local "dir:" backend.
 *
 * dir:PATH keeps every message in a file, so any processes that share
 * PATH (one host, or a shared file system) can meet:
 *
 *	PATH/inbox/NAME/offers/ID	an offer to NAME
 *	PATH/inbox/NAME/answers/ID	NAME's answer to offer ID
 *
 * NAME's listener flock(2)s PATH/inbox/NAME, so that a second one is told.
 *
 * A file is a short text header and the blob (sig_dir_parse):
 *
 *	p2pcat-sig 1\n expire MS\n pid PID\n host HOSTNAME\n \n BLOB
 *
 * Files are written under a dot name and link(2)ed into place, which fails
 * when the name exists, so nothing is ever overwritten; a listener claims
 * an offer by rename(2)ing it away, so two listeners never take the same
 * one.
 *
 * Others may write PATH too.  Everything below PATH is reached from
 * PATH's descriptor with *at() calls that never follow a symbolic link,
 * so nothing outside PATH is read or removed.  Only p2pcat's own files
 * are removed: an offer or answer with a valid header that has expired,
 * or whose writer (on this host) is dead, and our dot-temporaries left
 * by a crash.  Anything else is reported once and left alone.
 *
 * A wait is woken by inotify(7) at once, and looks anyway every
 * DIR_SAFETY_MS, since another host's write to a network file system
 * raises no event here; without inotify it looks every DIR_POLL_MS.
 */
#include <sys/file.h>
#include <sys/inotify.h>
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
#define DIR_POLL_MS	50		/* without inotify: local looks are cheap */
#define DIR_SAFETY_MS	1000		/* with it: for other hosts' writes */
#define DIR_SWEEP_MS	600000		/* age of a leftover temporary file */
#define DIR_NOTES_MAX	4096		/* entries reported and left alone */
/* What makes a waiting listener or caller look again: a name appears (a
 * link, a rename, a file written in place or made readable), or the
 * directory itself goes. */
#define DIR_EVENTS	(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB | \
			 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

struct sig {
	const struct sig_backend *be;
	void *b;
	unsigned long reported_r, reported_w;	/* at the last sig_report */
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

void
sig_report(struct sig *s, bool total)
{
	unsigned long r, w;

	sig_counts(s, &r, &w);
	if (total)
		s->reported_r = s->reported_w = 0;
	log_v(1, "rendezvous: %lu read%s, %lu write%s%s", r - s->reported_r,
	    r - s->reported_r == 1 ? "" : "s", w - s->reported_w,
	    w - s->reported_w == 1 ? "" : "s", total ? " in all" : "");
	s->reported_r = r;
	s->reported_w = w;
}

/* The dir: backend. */

/* An entry reported once and left alone until it changes. */
struct dir_note {
	dev_t dev;
	ino_t ino, dir;		/* the entry, and the directory it is in */
	uint64_t name;		/* a hash of its name */
	struct timespec ctime;
	off_t size;
	unsigned gen;		/* the last full look that saw it */
};

struct sig_dir {
	char root[PATH_MAX];	/* as given: for messages and inotify */
	int rootfd;
	char host[256];
	unsigned poll_ms;	/* look this often without inotify ... */
	unsigned safety_ms;	/* ... and with it */
	int inotify;		/* -1: none */
	int said_nowatch;
	int wake_fd;		/* 0: none */
	const volatile sig_atomic_t *stop;
	unsigned long reads, writes;
	unsigned long naps;	/* poll(2)s in dir_nap: see sig_dir_naps */
	struct dir_note *notes;
	size_t nnotes, cap, cursor;
	unsigned gen;
	int said_full;
	int lockfd;		/* inbox/lockname, flock()ed, or -1 */
	char lockname[SIG_MAX_NAME + 1];
	int locked, warned;
};

/* One directory being looked through. */
struct dir_scan {
	int fd;
	const char *where;	/* its path, for messages */
	struct stat st;
};

/* The decimal number of len digits at p, 1 to max, into *v: 0 or -1. */
static int
parse_num(const char *p, size_t len, uint64_t max, uint64_t *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < len; i++) {
		unsigned dg = (unsigned char)p[i] - '0';

		if (dg > 9 || *v > (max - dg) / 10)
			return -1;
		*v = *v * 10 + dg;
	}
	return len > 0 && *v > 0 ? 0 : -1;
}

int
sig_dir_parse(const void *buf, size_t n, struct sig_dir_hdr *h, struct sig_msg *m)
{
	const char *p = buf, *end, *line, *eol, *sp;
	size_t ml = sizeof DIR_MAGIC - 1;
	unsigned seen = 0;
	uint64_t v;

	memset(h, 0, sizeof *h);
	m->len = 0;
	if (n < ml || memcmp(p, DIR_MAGIC, ml) != 0 ||
	    (end = memmem(p, n < SIG_DIR_HDR_MAX ? n : SIG_DIR_HDR_MAX, "\n\n", 2)) == NULL)
		return -1;
	/* The lines after the magic; end is the newline of the last. */
	for (line = p + ml; line <= end; line = eol + 1) {
		const char *val;
		size_t klen, vlen;

		eol = memchr(line, '\n', (size_t)(end - line) + 1);
		if (memchr(line, '\0', (size_t)(eol - line)) != NULL ||
		    (sp = memchr(line, ' ', (size_t)(eol - line))) == NULL || sp == line)
			return -1;
		klen = (size_t)(sp - line);
		val = sp + 1;
		vlen = (size_t)(eol - val);
		/* Each key once; keys we do not know are a later version's. */
		if (klen == 6 && memcmp(line, "expire", 6) == 0) {
			if ((seen & 1) || parse_num(val, vlen, UINT64_MAX, &v) == -1)
				return -1;
			h->expire = v;
			seen |= 1;
		} else if (klen == 3 && memcmp(line, "pid", 3) == 0) {
			if ((seen & 2) || parse_num(val, vlen, INT_MAX, &v) == -1)
				return -1;
			h->pid = (long)v;
			seen |= 2;
		} else if (klen == 4 && memcmp(line, "host", 4) == 0) {
			if ((seen & 4) || vlen >= sizeof h->host)
				return -1;
			memcpy(h->host, val, vlen);
			h->host[vlen] = '\0';
			seen |= 4;
		}
	}
	if ((seen & 3) != 3)
		return -1;
	p = end + 2;
	n -= (size_t)(p - (const char *)buf);
	if (n == 0 || n > SIG_MAX_BLOB)
		return 1;
	m->len = n;
	memcpy(m->blob, p, n);
	return 0;
}

int
sig_dir_header(char *buf, size_t size, const struct sig_dir_hdr *h)
{
	int n;

	if (h->expire == 0 || h->pid <= 0 || h->pid > INT_MAX ||
	    memchr(h->host, '\0', sizeof h->host) == NULL || strchr(h->host, '\n') != NULL)
		return -1;
	n = snprintf(buf, size, DIR_MAGIC "expire %" PRIu64 "\npid %ld\nhost %s\n\n",
	    h->expire, h->pid, h->host);
	if (n < 0 || (size_t)n >= size || n > SIG_DIR_HDR_MAX)
		return -1;
	return n;
}

/* A file name for a message: bytes other than printable ASCII as \ooo,
 * since anyone who can write the directory chose it.  In buf. */
static const char *
shown(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	for (; *s && o + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\%03o", c);
	}
	buf[o] = '\0';
	return buf;
}

/* FNV-1a, to tell notes apart by name. */
static uint64_t
name_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void
note_drop(struct sig_dir *d, size_t i)
{
	d->notes[i] = d->notes[--d->nnotes];
}

/* The note of entry st, named name, in sc; or NULL.  The search starts
 * after the last one found: a directory lists its entries in the same
 * order each time, so a look through many costs no more than one each. */
static struct dir_note *
note_find(struct sig_dir *d, const struct dir_scan *sc, const struct stat *st,
    const char *name)
{
	uint64_t h = name_hash(name);
	size_t i, k;

	for (k = 0; k < d->nnotes; k++) {
		struct dir_note *n;

		i = (d->cursor + k) % d->nnotes;
		n = &d->notes[i];
		if (n->ino == st->st_ino && n->dev == st->st_dev &&
		    n->dir == sc->st.st_ino && n->name == h) {
			d->cursor = i + 1;
			return n;
		}
	}
	return NULL;
}

/* Leave entry name of sc (st: its lstat) alone, and say why, once until
 * it changes: as an error (level 0) or under -v. */
static void
dir_leave(struct sig_dir *d, const struct dir_scan *sc, const char *name,
    const struct stat *st, int level, const char *why)
{
	struct dir_note *n;
	char b[1024];

	if (level == 0)
		log_err("skipping `%s/%s': %s", sc->where, shown(name, b, sizeof b), why);
	else
		log_v(level, "skipping `%s/%s': %s", sc->where, shown(name, b, sizeof b), why);
	if (d->nnotes == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;

		if (cap > DIR_NOTES_MAX || (n = realloc(d->notes, cap * sizeof *n)) == NULL) {
			if (!d->said_full)
				log_v(1, "more than %zu entries to skip: each is reported "
				    "every time it is seen", d->nnotes);
			d->said_full = 1;
			return;
		}
		d->notes = n;
		d->cap = cap;
	}
	n = &d->notes[d->nnotes++];
	n->dev = st->st_dev;
	n->ino = st->st_ino;
	n->dir = sc->st.st_ino;
	n->name = name_hash(name);
	n->ctime = st->st_ctim;
	n->size = st->st_size;
	n->gen = d->gen;
}

/* Forget the notes of entries of sc that its last full look did not see. */
static void
note_sweep(struct sig_dir *d, const struct dir_scan *sc)
{
	size_t i = 0;

	while (i < d->nnotes) {
		if (d->notes[i].dir == sc->st.st_ino && d->notes[i].gen != d->gen)
			note_drop(d, i);
		else
			i++;
	}
}

/* lstat entry name of sc into st: 0, or 1 when it is gone, or was
 * reported and has not changed since (leave it alone quietly). */
static int
dir_stat(struct sig_dir *d, const struct dir_scan *sc, const char *name, struct stat *st)
{
	struct dir_note *n;

	if (fstatat(sc->fd, name, st, AT_SYMLINK_NOFOLLOW) == -1)
		return 1;
	if ((n = note_find(d, sc, st, name)) == NULL)
		return 0;
	if (n->ctime.tv_sec == st->st_ctim.tv_sec && n->ctime.tv_nsec == st->st_ctim.tv_nsec &&
	    n->size == st->st_size) {
		n->gen = d->gen;
		return 1;
	}
	note_drop(d, (size_t)(n - d->notes));
	return 0;
}

/* Remove our file name from sc if it is still the one st describes. */
static void
dir_remove(struct sig_dir *d, const struct dir_scan *sc, const char *name,
    const struct stat *st, const char *why)
{
	char b[1024], msg[256];
	struct stat now;

	if (fstatat(sc->fd, name, &now, AT_SYMLINK_NOFOLLOW) == -1 ||
	    now.st_ino != st->st_ino || now.st_dev != st->st_dev)
		return;		/* gone or replaced: the next look sees to it */
	if (unlinkat(sc->fd, name, 0) == 0) {
		log_v(1, "removed rendezvous file `%s/%s': %s", sc->where,
		    shown(name, b, sizeof b), why);
		return;
	}
	snprintf(msg, sizeof msg, "%s, but cannot remove it: %s", why, strerror(errno));
	dir_leave(d, sc, name, st, 1, msg);
}

/* Read the message file name of sc (st: its lstat): 0 with m filled but
 * for its id; 1 when there is none to take there: it went, or was
 * removed as stale, or is not ours and was left alone. */
static int
dir_read(struct sig_dir *d, const struct dir_scan *sc, const char *name,
    const struct stat *st, struct sig_msg *m)
{
	char buf[SIG_DIR_HDR_MAX + SIG_MAX_BLOB + 1], why[128];
	struct sig_dir_hdr h;
	struct stat fst;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	if (!S_ISREG(st->st_mode)) {
		dir_leave(d, sc, name, st, 0, S_ISLNK(st->st_mode) ? "a symbolic link" :
		    S_ISDIR(st->st_mode) ? "a directory" : "not a regular file");
		return 1;
	}
	if ((fd = openat(sc->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(why, sizeof why, "cannot read it: %s", strerror(errno));
		dir_leave(d, sc, name, st, 0, why);
		return 1;
	}
	d->reads++;
	if (fstat(fd, &fst) == -1 || fst.st_ino != st->st_ino || fst.st_dev != st->st_dev) {
		close(fd);
		return 1;	/* replaced since: the next look sees to it */
	}
	while (got < sizeof buf && (n = read(fd, buf + got, sizeof buf - got)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, sizeof why, "cannot read it: %s", strerror(errno));
			close(fd);
			dir_leave(d, sc, name, st, 0, why);
			return 1;
		}
		got += (size_t)n;
	}
	close(fd);
	/* Only a file with our header is ours to remove. */
	if ((r = sig_dir_parse(buf, got, &h, m)) == -1) {
		dir_leave(d, sc, name, st, 1, "not a p2pcat message");
		return 1;
	}
	if (r == 1) {
		dir_remove(d, sc, name, st, "its message is empty or too long");
		return 1;
	}
	if (h.expire <= unix_ms()) {
		dir_remove(d, sc, name, st, "expired");
		return 1;
	}
	if (strcmp(h.host, d->host) == 0 && kill((pid_t)h.pid, 0) == -1 && errno == ESRCH) {
		dir_remove(d, sc, name, st, "its writer has ended");
		return 1;
	}
	return 0;
}

/* Give fd, just made in directory pst, pst's group and mode (the umask
 * notwithstanding); 0 or -1. */
static int
dir_share(int fd, const struct stat *pst, mode_t mode)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_uid != geteuid())
		return 0;	/* not the one we made */
	if (st.st_gid != pst->st_gid && fchown(fd, (uid_t)-1, pst->st_gid) == -1 &&
	    errno != EPERM)
		return -1;
	return fchmod(fd, mode);
}

/* Make directory comp in pfd.  In a directory that group or others may
 * write (shared by users), it takes the parent's group and permissions,
 * so that every user of the parent can use it; where messages are (leaf)
 * without the sticky bit, since a listener claims another user's offer
 * by renaming it and a caller removes the listener's answer.  0 or -1. */
static int
dir_mkdir(int pfd, const char *comp, int leaf)
{
	struct stat pst;
	mode_t mode, mask;
	int fd, ret;

	if (fstat(pfd, &pst) == -1)
		return -1;
	if ((pst.st_mode & 022) == 0)
		return mkdirat(pfd, comp, 0777);
	/* Made with its mode at once, not chmod(2)ed after: another user
	 * may open it in between.  The group follows when the parent is
	 * setgid; else dir_share sets it. */
	mode = pst.st_mode & (leaf ? 02777 : 07777);
	mask = umask(0);
	ret = mkdirat(pfd, comp, mode & 01777);
	umask(mask);
	if (ret == -1)
		return -1;
	if ((fd = openat(pfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	ret = dir_share(fd, &pst, mode);
	close(fd);
	return ret;
}

/* Open inbox/NAME, or inbox/NAME/KIND, from the root, one component at a
 * time and never through a symbolic link; with create, make what is
 * missing.  The directory's descriptor, or -1: quietly with errno ENOENT
 * when something is missing and !create, else after printing why. */
static int
dir_box(struct sig_dir *d, const char *name, const char *kind, int create)
{
	const char *comp[3] = { "inbox", name, kind };
	int n = kind ? 3 : 2, fd = d->rootfd, next = -1, i, err = 0, made = 0;
	char where[PATH_MAX];
	struct stat st;

	for (i = 0; i < n; i++) {
		/* Components on the way need only be passed through. */
		int flags = (i < n - 1 ? O_PATH : O_RDONLY) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

		next = openat(fd, comp[i], flags);
		if (next == -1 && errno == ENOENT && create) {
			made = dir_mkdir(fd, comp[i], i == 2) == 0 || errno == EEXIST;
			if (made)
				next = openat(fd, comp[i], flags);
		}
		if (next == -1)
			break;
		if (fd != d->rootfd)
			close(fd);
		fd = next;
	}
	if (next != -1)
		return next;
	err = errno;
	/* O_DIRECTORY turns a symbolic link's ELOOP into ENOTDIR. */
	if (err == ENOTDIR && fstatat(fd, comp[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		err = ELOOP;
	if (fd != d->rootfd)
		close(fd);
	if (err == ENOENT && !create) {
		errno = err;
		return -1;
	}
	if (snprintf(where, sizeof where, "%s/inbox%s%s%s%s", d->root, i > 0 ? "/" : "",
	    i > 0 ? name : "", i > 1 ? "/" : "", i > 1 ? kind : "") < 0)
		where[0] = '\0';
	if (err == ELOOP)
		log_err("rendezvous directory `%s' is a symbolic link: not following it", where);
	else if (err == ENOTDIR)
		log_err("rendezvous directory `%s' is not a directory", where);
	else
		log_err("cannot %s rendezvous directory `%s': %s%s", made || !create ? "open" :
		    "create", where, strerror(err), err == EACCES || err == EPERM ?
		    " (see SHARED DIRECTORIES in p2pcat(1))" : "");
	errno = err;
	return -1;
}

/* PATH/inbox/NAME/KIND into buf, for messages and inotify; 0 or -1. */
static int
dir_path(const struct sig_dir *d, char *buf, size_t size, const char *name,
    const char *kind)
{
	int n;

	if (!sig_valid_name(name)) {
		log_err("bad peer name `%s'", name);
		return -1;
	}
	n = snprintf(buf, size, "%s/inbox/%s/%s", d->root, name, kind);
	/* Room for a file name after it, as the kernel counts paths. */
	if (n < 0 || (size_t)n + 1 + NAME_MAX >= size) {
		log_err("rendezvous path under `%s' is too long", d->root);
		return -1;
	}
	return 0;
}

/* Open name's kind directory for sc, making it when missing: 0 or -1. */
static int
dir_scan_open(struct sig_dir *d, struct dir_scan *sc, const char *name,
    const char *kind, const char *where)
{
	sc->where = where;
	if ((sc->fd = dir_box(d, name, kind, 1)) == -1)
		return -1;
	if (fstat(sc->fd, &sc->st) == -1) {
		log_errno("rendezvous directory `%s'", where);
		close(sc->fd);
		return -1;
	}
	return 0;
}

/* write(2) all of buf; 0 or -1. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write message id into sc without overwriting: 0, or -1 (errno EEXIST
 * when the name is taken).  Readable by whoever may list sc. */
static int
dir_put(struct sig_dir *d, const struct dir_scan *sc, const char *id,
    const void *blob, size_t len, uint64_t expire_ms)
{
	struct sig_dir_hdr h = { .expire = expire_ms, .pid = (long)getpid() };
	char tmp[64], hdr[SIG_DIR_HDR_MAX + 1];
	int fd, ret = -1, n, err;

	if (len == 0 || len > SIG_MAX_BLOB) {
		log_err("rendezvous message of %zu bytes: want 1 to %d", len, SIG_MAX_BLOB);
		errno = EMSGSIZE;
		return -1;
	}
	snprintf(h.host, sizeof h.host, "%s", d->host);
	if ((n = sig_dir_header(hdr, sizeof hdr, &h)) == -1) {
		log_err("cannot make a rendezvous message expiring at %" PRIu64 " from `%s'",
		    expire_ms, d->host);
		errno = EINVAL;
		return -1;
	}
	snprintf(tmp, sizeof tmp, ".tmp-%ld-%s", (long)getpid(), id);
	if ((fd = openat(sc->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1) {
		log_errno("cannot create `%s/%s'", sc->where, tmp);
		return -1;
	}
	if (dir_share(fd, &sc->st, 0600 | (sc->st.st_mode & 0044)) == -1 ||
	    write_all(fd, hdr, (size_t)n) == -1 || write_all(fd, blob, len) == -1) {
		log_errno("cannot write `%s/%s'", sc->where, tmp);
		close(fd);
		goto out;
	}
	if (close(fd) == -1) {
		log_errno("cannot write `%s/%s'", sc->where, tmp);
		goto out;
	}
	if (linkat(sc->fd, tmp, sc->fd, id, 0) == -1) {
		if (errno != EEXIST)
			log_errno("cannot create `%s/%s'", sc->where, id);
		goto out;
	}
	d->writes++;
	ret = 0;
out:
	err = errno;
	unlinkat(sc->fd, tmp, 0);
	errno = err;
	return ret;
}

/* Read what inotify has queued: 1 when something is worth a look (a name
 * without a leading dot, or want's when given; the directory went; the
 * queue overflowed), else 0. */
static int
dir_events(struct sig_dir *d, const char *want)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	int look = 0;
	ssize_t n;
	char *p;

	if (d->inotify == -1)
		return 0;
	while ((n = read(d->inotify, buf, sizeof buf)) > 0) {
		for (p = buf; p < buf + n; p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				look = 1;
			else if (ev->len > 0 && (want ? strcmp(ev->name, want) == 0 :
			    ev->name[0] != '.'))
				look = 1;
		}
	}
	return look;
}

/* Watch where with inotify; wd is its watch so far (-1: none), dropped
 * when where is another directory now.  The watch, or -1 (then the wait
 * polls). */
static int
dir_watch(struct sig_dir *d, const char *where, int wd)
{
	int now;

	if (d->inotify == -1)
		return -1;
	if ((now = inotify_add_watch(d->inotify, where, DIR_EVENTS)) == -1 && !d->said_nowatch) {
		log_v(1, "cannot watch `%s' (%s): looking every %u ms", where,
		    strerror(errno), d->poll_ms);
		d->said_nowatch = 1;
	}
	if (wd != -1 && wd != now)
		inotify_rm_watch(d->inotify, wd);
	return now;
}

/* Sleep until there is reason to look again (an event for want, see
 * dir_events, or the poll interval: safety_ms with the watch wd, else
 * poll_ms): 0.  1 to give up: the deadline passed, the stop flag is set,
 * or wake_fd became readable.  -1 on error. */
static int
dir_nap(struct sig_dir *d, int wd, const char *want, uint64_t deadline_ms)
{
	uint64_t start = now_us() / 1000, every = wd != -1 ? d->safety_ms : d->poll_ms;
	struct pollfd pfd[2];

	for (;;) {
		uint64_t now = unix_ms(), gone = now_us() / 1000 - start, ms;
		int n = 0, in = -1, wk = -1;

		if ((d->stop && *d->stop) || now >= deadline_ms)
			return 1;
		if (gone >= every)
			return 0;
		ms = every - gone;
		if (deadline_ms - now < ms)
			ms = deadline_ms - now;
		if (wd != -1) {
			pfd[n].fd = d->inotify;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			in = n++;
		}
		if (d->wake_fd > 0) {
			pfd[n].fd = d->wake_fd;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			wk = n++;
		}
		d->naps++;
		if (poll(pfd, (nfds_t)n, (int)ms) == -1 && errno != EINTR) {
			log_errno("poll");
			return -1;
		}
		if (wk != -1 && (pfd[wk].revents & (POLLIN | POLLHUP | POLLERR)))
			return 1;
		if (wk != -1 && (pfd[wk].revents & POLLNVAL)) {
			/* It cannot wake us; polling it would spin. */
			log_err("rendezvous wake descriptor %d is not open", d->wake_fd);
			d->wake_fd = 0;
		}
		if (in != -1 && (pfd[in].revents & POLLIN) && dir_events(d, want))
			return 0;
	}
}

/* 1 when name is one of our temporaries: .tmp-PID-ID or .claimed-PID-ID. */
static int
our_temp(const char *name)
{
	const char *p;

	if (strncmp(name, ".tmp-", 5) == 0)
		p = name + 5;
	else if (strncmp(name, ".claimed-", 9) == 0)
		p = name + 9;
	else
		return 0;
	if (!isdigit((unsigned char)*p))
		return 0;
	while (isdigit((unsigned char)*p))
		p++;
	return *p == '-' && valid_id(p + 1);
}

/* Look through the offers in sc (closing its descriptor) for one to take:
 * claim it by renaming it to a name of ours, so that no other listener
 * takes it too, and read it.  0 with m, 1 when there is none, -1 on
 * error. */
static int
dir_claim(struct sig_dir *d, struct dir_scan *sc, struct sig_msg *m)
{
	char claimed[64], why[128];
	struct dirent *e;
	struct stat st;
	DIR *dp;
	int ret = 1;

	if ((dp = fdopendir(sc->fd)) == NULL) {
		log_errno("cannot read `%s'", sc->where);
		close(sc->fd);
		return -1;
	}
	d->reads++;
	d->gen++;
	while (ret == 1 && (e = readdir(dp)) != NULL) {
		const char *name = e->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    dir_stat(d, sc, name, &st) != 0)
			continue;
		if (name[0] == '.') {
			/* A crashed process's; its pid may be another host's,
			 * so age is the test. */
			if (!our_temp(name))
				dir_leave(d, sc, name, &st, 1, "not a p2pcat file");
			else if (S_ISREG(st.st_mode) &&
			    (uint64_t)st.st_mtime * 1000 + DIR_SWEEP_MS < unix_ms())
				dir_remove(d, sc, name, &st, "left over by a process that ended");
			continue;
		}
		if (!valid_id(name)) {
			dir_leave(d, sc, name, &st, 1, "not named like an offer");
			continue;
		}
		/* Checked before it is claimed, so stale ones go in place. */
		if (dir_read(d, sc, name, &st, m) != 0)
			continue;
		if (snprintf(claimed, sizeof claimed, ".claimed-%ld-%s", (long)getpid(),
		    name) >= (int)sizeof claimed)
			continue;
		if (renameat(sc->fd, name, sc->fd, claimed) == -1) {
			if (errno != ENOENT) {	/* ENOENT: another listener took it */
				snprintf(why, sizeof why, "cannot claim it: %s", strerror(errno));
				dir_leave(d, sc, name, &st, 0, why);
			}
			continue;
		}
		if (fstatat(sc->fd, claimed, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    dir_read(d, sc, claimed, &st, m) == 0) {
			memcpy(m->id, name, sizeof m->id);	/* valid_id: 32 + NUL */
			ret = 0;
		}
		unlinkat(sc->fd, claimed, 0);
	}
	if (ret == 1)
		note_sweep(d, sc);
	closedir(dp);
	return ret;
}

/* Take the message id in sc, if it is there: 0 with m, else 1. */
static int
dir_take(struct sig_dir *d, struct dir_scan *sc, const char *id, struct sig_msg *m)
{
	struct stat st;

	if (dir_stat(d, sc, id, &st) != 0 || dir_read(d, sc, id, &st, m) != 0)
		return 1;
	unlinkat(sc->fd, id, 0);
	memcpy(m->id, id, sizeof m->id);
	return 0;
}

/* Wait until deadline_ms in name's kind directory for the message id, or
 * (id NULL) for any offer to claim, and consume it into m: 0 got it, 1
 * timed out, stopped or woken, -1 error. */
static int
dir_wait(struct sig_dir *d, const char *name, const char *kind, const char *id,
    struct sig_msg *m, uint64_t deadline_ms)
{
	char where[PATH_MAX];
	struct dir_scan sc;
	int wd = -1, r;

	if (dir_path(d, where, sizeof where, name, kind) == -1)
		return -1;
	dir_events(d, NULL);	/* what earlier waits left queued */
	for (;;) {
		if (dir_scan_open(d, &sc, name, kind, where) == -1) {
			r = -1;
			break;
		}
		/* Claiming an offer renames it, taking an answer removes it. */
		if (faccessat(sc.fd, ".", W_OK | X_OK, 0) == -1) {
			log_errno("cannot take %s from `%s' (see SHARED DIRECTORIES in p2pcat(1))",
			    kind, where);
			close(sc.fd);
			r = -1;
			break;
		}
		/* Watched before the look, so that nothing written after it
		 * goes unnoticed. */
		wd = dir_watch(d, where, wd);
		if (id) {
			r = dir_take(d, &sc, id, m);
			close(sc.fd);
		} else {
			r = dir_claim(d, &sc, m);
		}
		if (r != 1 || (r = dir_nap(d, wd, id, deadline_ms)) != 0)
			break;
	}
	if (wd != -1)
		inotify_rm_watch(d->inotify, wd);
	return r;
}

/* Lock name's directory nfd (kept open for the lock, else closed) as
 * its listener, and warn once when another process holds it: offers to
 * name then go to either of them.  The lock goes with its holder, so a
 * dead listener's is never stale.  A store without locks (some network
 * file systems) is no error. */
static void
dir_lock(struct sig_dir *d, int nfd, const char *name)
{
	if (d->lockfd != -1 && strcmp(d->lockname, name) != 0) {
		close(d->lockfd);
		d->lockfd = -1;
		d->locked = d->warned = 0;
	}
	if (d->lockfd == -1) {
		d->lockfd = nfd;
		snprintf(d->lockname, sizeof d->lockname, "%s", name);
	} else {
		close(nfd);
	}
	if (d->locked)
		return;
	if (flock(d->lockfd, LOCK_EX | LOCK_NB) == 0)
		d->locked = 1;
	else if (errno == EWOULDBLOCK && !d->warned) {
		log_err("warning: another listener is listening as `%s' in `%s': each "
		    "offer goes to one of them", name, d->root);
		d->warned = 1;
	} else if (errno != EWOULDBLOCK) {
		log_v(2, "no listener lock in `%s/inbox/%s': %s", d->root, name, strerror(errno));
	}
}

static void *
dir_open(const char *rest, const struct sig_opts *o)
{
	struct sig_dir *d;
	struct stat st;
	const char *rt;
	int private = 0;

	if ((d = calloc(1, sizeof *d)) == NULL) {
		log_errno("calloc");
		return NULL;
	}
	d->rootfd = d->inotify = d->lockfd = -1;
	d->stop = o->stop;
	d->wake_fd = o->wake_fd;
	d->poll_ms = o->poll_ms ? o->poll_ms : DIR_POLL_MS;
	d->safety_ms = o->poll_ms ? o->poll_ms : DIR_SAFETY_MS;
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
	/* Only the last component is made: a mistyped path must not grow a
	 * tree, and the default's parent is the user's to provide. */
	if (mkdir(d->root, private ? 0700 : 0777) == -1 && errno != EEXIST) {
		if (errno == ENOENT)
			log_err("cannot create rendezvous directory `%s': its parent "
			    "directory does not exist", d->root);
		else
			log_errno("cannot create rendezvous directory `%s'", d->root);
		goto fail;
	}
	/* The root may be a symbolic link the user chose; the default may
	 * not, as another user could have planted it. */
	if ((d->rootfd = open(d->root, O_PATH | O_DIRECTORY | O_CLOEXEC |
	    (private ? O_NOFOLLOW : 0))) == -1 || fstat(d->rootfd, &st) == -1) {
		if (private && (errno == ELOOP || errno == ENOTDIR))
			goto notprivate;
		log_errno("cannot open rendezvous directory `%s'", d->root);
		goto fail;
	}
	if (private && (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)))
		goto notprivate;
	if (gethostname(d->host, sizeof d->host - 1) == -1)
		strcpy(d->host, "?");
	if ((d->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		log_v(1, "no inotify (%s): looking for rendezvous messages every %u ms",
		    strerror(errno), d->poll_ms);
	else
		log_v(2, "rendezvous directory %s: waiting with inotify, and looking "
		    "every %u ms for writes from other hosts", d->root, d->safety_ms);
	return d;
notprivate:
	log_err("rendezvous directory `%s' is not a private directory of this user", d->root);
	goto fail;
toolong:
	log_err("rendezvous path `%s' is too long", *rest ? rest : getenv("XDG_RUNTIME_DIR"));
fail:
	if (d->rootfd != -1)
		close(d->rootfd);
	free(d);
	return NULL;
}

static void
dir_close(void *b)
{
	struct sig_dir *d = b;

	if (d->inotify != -1)
		close(d->inotify);
	if (d->lockfd != -1)
		close(d->lockfd);
	close(d->rootfd);
	free(d->notes);
	free(d);
}

/* Post blob as name's kind/id (an offer or an answer: what), never
 * overwriting; 0 or -1. */
static int
dir_post(struct sig_dir *d, const char *name, const char *kind,
    const char *what, const char *id, const void *blob, size_t len,
    uint64_t expire_ms)
{
	char where[PATH_MAX];
	struct dir_scan sc;
	int r;

	if (!valid_id(id)) {
		log_err("bad offer id `%s'", id);
		return -1;
	}
	if (dir_path(d, where, sizeof where, name, kind) == -1 ||
	    dir_scan_open(d, &sc, name, kind, where) == -1)
		return -1;
	r = dir_put(d, &sc, id, blob, len, expire_ms);
	close(sc.fd);
	if (r == -1 && errno == EEXIST)
		log_err("%s `%s' exists already", what, id);
	return r;
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
	if (!valid_id(id)) {
		log_err("bad offer id `%s'", id);
		return -1;
	}
	return dir_wait(b, to, "answers", id, ans, deadline_ms);
}

/* Remove name's kind/id, best effort. */
static void
dir_unlink(struct sig_dir *d, const char *name, const char *kind, const char *id)
{
	char where[PATH_MAX];
	int fd;

	if (!valid_id(id) || dir_path(d, where, sizeof where, name, kind) == -1 ||
	    (fd = dir_box(d, name, kind, 0)) == -1)
		return;
	if (unlinkat(fd, id, 0) == 0)
		log_v(2, "removed %s/%s", where, id);
	close(fd);
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

static int
dir_wait_offer(void *b, const char *name, struct sig_msg *offer,
    uint64_t deadline_ms)
{
	struct sig_dir *d = b;
	int fd;

	if (!sig_valid_name(name)) {
		log_err("bad peer name `%s'", name);
		return -1;
	}
	if ((fd = dir_box(d, name, NULL, 1)) == -1)
		return -1;
	dir_lock(d, fd, name);
	return dir_wait(d, name, "offers", NULL, offer, deadline_ms);
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

unsigned long
sig_dir_naps(const struct sig *s)
{
	return s->be == &sig_dir_backend ? ((const struct sig_dir *)s->b)->naps : 0;
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
