/*
 * config.c: the configuration file's format (config.h), read whole and
 * parsed line by line.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define KEYS_MAX	32	/* keys a table may name */
#define LINE_SHOWN	40	/* bytes of a bad line quoted in a message */

int
config_path(char *buf, size_t size, const char *file)
{
	const char *base = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (base && *base == '/')
		n = snprintf(buf, size, "%s/p2pcat/%s", base, file);
	else if (home && *home == '/')
		n = snprintf(buf, size, "%s/.config/p2pcat/%s", home, file);
	else
		return -1;
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static bool
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* s (n bytes) for a message: at most LINE_SHOWN bytes, what is not
 * printable ASCII as `?'. */
static const char *
shown(const char *s, size_t n, char buf[LINE_SHOWN + 4])
{
	size_t i, m = n > LINE_SHOWN ? LINE_SHOWN : n;

	for (i = 0; i < m; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	strcpy(buf + m, n > m ? "..." : "");
	return buf;
}

int
config_parse(const char *name, const char *text, size_t len,
    const struct config_key *keys, config_fn fn, void *ctx)
{
	int seen[KEYS_MAX] = { 0 };	/* the line each key was first on */
	char *line = NULL, where[300], show[LINE_SHOWN + 4];
	size_t off = 0, n;
	int lineno = 0, ret = -1, k;

	if (memchr(text, '\0', len) != NULL) {
		log_err("%s: a NUL byte: not a text file", name);
		return -1;
	}
	if ((line = malloc(len + 1)) == NULL) {
		log_errno("malloc");
		return -1;
	}
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		char *key, *val, *eq, *e;

		n = nl ? (size_t)(nl - text - off) : len - off;
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + 1;
		lineno++;
		snprintf(where, sizeof where, "%s:%d", name, lineno);
		/* A comment: `#' first, or after white space. */
		for (e = line; *e != '\0'; e++)
			if (*e == '#' && (e == line || blank(e[-1])))
				break;
		*e = '\0';
		for (key = line; blank(*key); key++)
			;
		if (*key == '\0')
			continue;
		if ((eq = strchr(key, '=')) == NULL || eq == key) {
			log_err("%s: want `key = value', not `%s'", where,
			    shown(key, strlen(key), show));
			goto out;
		}
		for (e = eq; e > key && blank(e[-1]); e--)
			;
		*e = '\0';
		for (val = eq + 1; blank(*val); val++)
			;
		for (e = val + strlen(val); e > val && blank(e[-1]); e--)
			;
		*e = '\0';
		for (k = 0; keys[k].name != NULL && strcmp(keys[k].name, key) != 0; k++)
			;
		if (keys[k].name == NULL || k >= KEYS_MAX) {
			log_err("%s: unknown setting `%s'", where, shown(key, strlen(key), show));
			goto out;
		}
		if (seen[k] && !keys[k].repeat) {
			log_err("%s: `%s' was given already, on line %d: give "
			    "each setting once", where, key, seen[k]);
			goto out;
		}
		if (!seen[k])
			seen[k] = lineno;
		if (fn(ctx, key, val, where) == -1)
			goto out;
	}
	ret = 0;
out:
	free(line);
	return ret;
}

int
config_read(const char *path, char **text, size_t *len)
{
	return util_read_trusted(path, "the configuration file", 0, CONFIG_MAX,
	    text, len);
}
