/*
 * trust.c: whether to talk to a peer (trust.h has the rules).
 *
 * The names in known_peers are names we called: whoever answered for a
 * name in that store had that key then.  The names in known_callers are
 * names callers gave about themselves, which nobody checked: they label a
 * key, and keep a label from moving to another key, but never say whom a
 * name we call should be.  They were one file once, so that any caller
 * could claim to be carol and then be "carol" when we called her.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "signal.h"
#include "trust.h"
#include "util.h"

#define SCOPE_MAX	PATH_MAX	/* a store's URL, as it is written down */

static bool
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

bool
trust_valid_key(const char *text)
{
	uint8_t k[CRYPTO_KEY_LEN];
	const char *end;
	size_t n;

	if (crypto_key_from_text(text, k) == 0)
		return true;
	/* "SHA256:" and the unpadded base64 of 32 bytes. */
	return strncmp(text, "SHA256:", 7) == 0 && strlen(text) == CRYPTO_FP_LEN &&
	    sodium_base642bin(k, sizeof k, text + 7, CRYPTO_FP_LEN - 7, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL_NO_PADDING) == 0 && n == sizeof k &&
	    end == text + CRYPTO_FP_LEN;
}

/* A control character in s[0..n), which no line of a trust file may hold. */
static bool
has_control(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

int
trust_scope(const char *url, char *buf, size_t size)
{
	char cwd[PATH_MAX];
	size_t n = strlen(url);
	int r;

	if (has_control(url, n))
		return -1;
	while (n > 0 && blank(url[n - 1]))
		n--;
	if (strncmp(url, "firestore:", 10) == 0 && n > 10 + 10 &&
	    memcmp(url + n - 10, "/(default)", 10) == 0) {
		n -= 10;
	} else if (strncmp(url, "dir:", 4) == 0) {
		while (n > 5 && url[n - 1] == '/')
			n--;
		/* A relative path is another store in another directory. */
		if (n > 4 && url[4] != '/') {
			if (getcwd(cwd, sizeof cwd) == NULL)
				return -1;
			r = snprintf(buf, size, "dir:%s%s%.*s", cwd,
			    cwd[strlen(cwd) - 1] == '/' ? "" : "/", (int)(n - 4), url + 4);
			return r < 0 || (size_t)r >= size || has_control(buf, (size_t)r) ? -1 : 0;
		}
	}
	if (n >= size)
		return -1;
	memcpy(buf, url, n);
	buf[n] = '\0';
	return 0;
}

/* A file's lines: [at, at + len) for each, without its newline. */
struct lines {
	const char *buf, *end, *at;
	size_t len;
	int no;
};

static bool
next_line(struct lines *l)
{
	const char *nl;

	l->at = l->at == NULL ? l->buf : l->at + l->len + 1;
	if (l->at >= l->end)
		return false;
	nl = memchr(l->at, '\n', l->end - l->at);
	l->len = (nl ? nl : l->end) - l->at;
	l->no++;
	return true;
}

/* The next word of s[0, n) from *off: its length (0: none left), its
 * start in *w. */
static size_t
word(const char *s, size_t n, size_t *off, const char **w)
{
	size_t k = 0;

	while (*off < n && blank(s[*off]))
		(*off)++;
	*w = s + *off;
	while (*off + k < n && !blank(s[*off + k]))
		k++;
	*off += k;
	return k;
}

/* Copy word w (n bytes) into out (size bytes) as a string: false when
 * it does not fit or holds a NUL. */
static bool
copy_word(char *out, size_t size, const char *w, size_t n)
{
	if (n >= size || memchr(w, '\0', n) != NULL)
		return false;
	memcpy(out, w, n);
	out[n] = '\0';
	return true;
}

int
trust_allow_parse(const char *buf, size_t len, const char *what, const uint8_t *pub)
{
	struct lines l = { .buf = buf, .end = buf + len };
	char text[CRYPTO_FP_LEN + 1];
	int found = 0;

	while (next_line(&l)) {
		const char *hash = memchr(l.at, '#', l.len), *w;
		size_t n = hash ? (size_t)(hash - l.at) : l.len, off = 0, k;

		/* A comment may follow the key, even without a blank. */
		if ((k = word(l.at, n, &off, &w)) == 0)
			continue;
		if (!copy_word(text, sizeof text, w, k) || !trust_valid_key(text) ||
		    word(l.at, n, &off, &w) != 0) {
			log_err("%s:%d: want a public key or a SHA256: fingerprint, then "
			    "at most a `#' comment", what, l.no);
			return -1;
		}
		if (pub && crypto_key_matches(text, pub))
			found = 1;
	}
	return found;
}

int
trust_known_parse(const char *buf, size_t len, const char *what, const char *name,
    const char *store, const uint8_t *pub, int *line)
{
	struct lines l = { .buf = buf, .end = buf + len };
	char n[SIG_MAX_NAME + 1], k[CRYPTO_KEY_B64_LEN + 1];
	uint8_t key[CRYPTO_KEY_LEN];
	int ret = TRUST_UNKNOWN;

	*line = 0;
	while (next_line(&l)) {
		const char *w, *s;
		size_t off = 0, wn, sn;

		if ((wn = word(l.at, l.len, &off, &w)) == 0 || *w == '#')
			continue;
		if (!copy_word(n, sizeof n, w, wn) || !sig_valid_name(n))
			goto bad;
		if ((wn = word(l.at, l.len, &off, &w)) == 0 ||
		    !copy_word(k, sizeof k, w, wn) || crypto_key_from_text(k, key) == -1)
			goto bad;
		/* The rest is the store, which may hold blanks (a path). */
		while (off < l.len && blank(l.at[off]))
			off++;
		s = l.at + off;
		for (sn = l.len - off; sn > 0 && blank(s[sn - 1]); sn--)
			;
		if (has_control(s, sn))
			goto bad;
		if (name == NULL || strcmp(n, name) != 0 ||
		    (sn > 0 && (strlen(store) != sn || memcmp(s, store, sn) != 0)))
			continue;
		if (pub == NULL)
			continue;
		if (!crypto_key_equal(key, pub)) {
			if (ret != TRUST_MISMATCH)
				*line = l.no;
			ret = TRUST_MISMATCH;
		} else if (ret == TRUST_UNKNOWN) {
			*line = l.no;
			ret = TRUST_KNOWN;
		}
	}
	sodium_memzero(key, sizeof key);
	return ret;
bad:
	*line = l.no;
	log_err("%s:%d: want `name key [rendezvous]': nobody is trusted by this file "
	    "until that line is fixed or removed", what, l.no);
	return -1;
}

/* Read and parse an --allow file: as trust_allow_parse, -1 also when it
 * cannot be read (printed). */
static int
allow_file(const char *path, const uint8_t *pub)
{
	char *buf;
	size_t len;
	int r;

	if ((r = util_read_trusted(path, "--allow file", 0, TRUST_FILE_MAX, &buf, &len)) != 1) {
		if (r == 0)
			log_err("cannot read --allow file `%s': it does not exist", path);
		return -1;
	}
	r = trust_allow_parse(buf, len, path, pub);
	free(buf);
	return r;
}

/* The file of names and keys at path (what: its name), looked up for name
 * (NULL: only checked) in the store's scope.  With lock, the file is
 * created if need be and kept locked (flock) through *fd, so that a first
 * contact is recorded once; else *fd is -1.  A trust_known, or -1 after
 * printing why. */
static int
known_file(const char *path, const char *what, const char *name, const char *scope,
    const uint8_t *pub, int *line, bool lock, int *fd, bool *nl_missing)
{
	char dir[PATH_MAX], *slash, *buf;
	size_t len;
	int r;

	*fd = -1;
	*nl_missing = false;
	if (lock) {
		snprintf(dir, sizeof dir, "%s", path);
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
				log_errno("cannot create `%s'", dir);
				return -1;
			}
		}
		if ((*fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0600)) == -1 || flock(*fd, LOCK_EX) == -1) {
			log_errno("cannot open %s `%s'", what, path);
			goto fail;
		}
	}
	if ((r = util_read_trusted(path, what, 1, TRUST_FILE_MAX, &buf, &len)) == -1)
		goto fail;
	if (r == 0)
		return TRUST_UNKNOWN;
	*nl_missing = len > 0 && buf[len - 1] != '\n';
	r = trust_known_parse(buf, len, path, name, scope, pub, line);
	free(buf);
	if (r != -1)
		return r;
fail:
	if (*fd != -1)
		close(*fd);
	*fd = -1;
	return -1;
}

/* Trust on first use of name, in the file at path. */
static int
tofu(const struct trust_conf *c, const char *name, const uint8_t pub[CRYPTO_KEY_LEN],
    const char *fp)
{
	const char *path = c->listener ? c->known_callers : c->known_peers;
	const char *what = c->listener ? "known_callers" : "known_peers";
	char scope[SCOPE_MAX], key[CRYPTO_KEY_B64_LEN + 1], rec[SIG_MAX_NAME + sizeof key + SCOPE_MAX + 4];
	bool nl_missing;
	int r, fd, line, n, ret = -1;

	if (path == NULL) {
		log_err("cannot find %s: set HOME or XDG_CONFIG_HOME", what);
		return TRUST_BROKEN;
	}
	if (trust_scope(c->store, scope, sizeof scope) == -1) {
		log_err("the rendezvous `%s' cannot be written in %s", c->store, what);
		return TRUST_BROKEN;
	}
	if ((r = known_file(path, what, name, scope, pub, &line, true, &fd, &nl_missing)) == -1)
		return TRUST_BROKEN;
	switch (r) {
	case TRUST_KNOWN:
		log_v(1, "%s `%s' has its known key %s (%s line %d)",
		    c->listener ? "the caller" : "the peer", name, fp, what, line);
		ret = 0;
		break;
	case TRUST_MISMATCH:
		if (c->listener)
			log_err("refusing the caller: it calls itself `%s', which line %d of "
			    "`%s' knows by another key; it has %s.  If that caller's key "
			    "changed, remove that line.", name, line, path, fp);
		else
			log_err("KEY MISMATCH: `%s' is known by another key in `%s' (line "
			    "%d), now it has %s.  Someone may be impersonating it, or its "
			    "key changed: if you know it did, remove that line.", name,
			    path, line, fp);
		break;
	default:
		crypto_key_to_text(pub, key);
		n = snprintf(rec, sizeof rec, "%s%s %s %s\n", nl_missing ? "\n" : "",
		    name, key, scope);
		if (n < 0 || (size_t)n >= sizeof rec || write(fd, rec, n) != n) {
			log_errno("cannot write `%s'", path);
			ret = TRUST_BROKEN;
			break;
		}
		if (c->listener)
			log_err("first contact with `%s', the name a caller gave (nobody "
			    "checked it): its key %s, added to `%s'", name, fp, path);
		else
			log_err("first contact with `%s': trusting its key %s (added to `%s')",
			    name, fp, path);
		ret = 0;
	}
	close(fd);
	return ret;
}

int
trust_decide(const struct trust_conf *c, const char *claimed,
    const uint8_t pub[CRYPTO_KEY_LEN])
{
	char fp[CRYPTO_FP_LEN + 1];
	int r;

	crypto_fingerprint(pub, fp);
	if (c->pin) {
		if (crypto_key_matches(c->pin, pub)) {
			log_v(1, "%s has the key given with --peer-key",
			    c->listener ? "the caller" : "the peer");
			return 0;
		}
		if (c->listener)
			log_err("refusing the caller: key %s is not the one given with "
			    "--peer-key", fp);
		else
			log_err("the peer `%s' has key %s, not the one given with --peer-key",
			    c->called, fp);
		return -1;
	}
	if (c->listener && c->allow) {
		if ((r = allow_file(c->allow, pub)) == 1) {
			log_v(1, "the caller %s is allowed by %s", fp, c->allow);
			return 0;
		}
		if (r == 0)
			log_err("refusing the caller: key %s is not in `%s'", fp, c->allow);
		else
			log_err("refusing the caller %s: `%s' cannot be used", fp, c->allow);
		return r == 0 ? -1 : TRUST_BROKEN;
	}
	if (c->passphrase) {
		/* The session proves the passphrase, by the keys it went into. */
		log_v(1, "passphrase mode: %s has key %s",
		    c->listener ? "the caller" : "the peer", fp);
		return 0;
	}
	if (c->listener && *claimed == '\0') {
		log_v(1, "the caller gave no name; its key is %s", fp);
		return 0;
	}
	return tofu(c, c->listener ? claimed : c->called, pub, fp);
}

int
trust_check(const struct trust_conf *c)
{
	const char *path = c->listener ? c->known_callers : c->known_peers;
	const char *what = c->listener ? "known_callers" : "known_peers";
	char scope[SCOPE_MAX];
	bool nl_missing;
	int fd, line;

	if (c->allow)
		return allow_file(c->allow, NULL) == -1 ? -1 : 0;
	if (c->pin || c->passphrase)
		return 0;
	if (trust_scope(c->store, scope, sizeof scope) == -1) {
		log_err("the rendezvous `%s' cannot be written in %s", c->store, what);
		return -1;
	}
	if (path == NULL)
		return 0;	/* said when a peer must be looked up */
	return known_file(path, what, NULL, scope, NULL, &line, false, &fd,
	    &nl_missing) == -1 ? -1 : 0;
}
