/*
 * config.h: the configuration file, $XDG_CONFIG_HOME/p2pcat/config:
 * `key = value' lines.  `#' at the start of a line or after white space
 * begins a comment (so a value may hold a `#', as a password may); white
 * space around keys and values is dropped.  A key may be given once,
 * unless it is repeatable.  What the values mean is the caller's.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX	65536	/* bytes in a configuration file */

struct config_key {
	const char *name;
	bool repeat;		/* may be given more than once (stun) */
};

/* Takes one setting; where is "FILE:LINE", for messages.  0, or -1
 * after printing why. */
typedef int (*config_fn)(void *ctx, const char *key, const char *val,
    const char *where);

/* $XDG_CONFIG_HOME/p2pcat/file, or ~/.config/p2pcat/file, into buf: 0,
 * or -1 when neither variable holds an absolute path (or buf is too
 * small). */
int config_path(char *buf, size_t size, const char *file);

/* Parse text (len bytes; a NUL byte is an error) from the file named
 * name: fn is called for each setting, in order, with keys among keys
 * (terminated by a NULL name).  0, or -1 after printing why, with
 * "name:line". */
int config_parse(const char *name, const char *text, size_t len,
    const struct config_key *keys, config_fn fn, void *ctx);

/* Read the file at path into a NUL-terminated buffer that the caller
 * frees (*text, *len): 1; 0 when there is no such file; -1 after
 * printing why (not a regular file, unreadable, larger than
 * CONFIG_MAX, or one that others can change: owned by another user than
 * us or root, or writable by group or others). */
int config_read(const char *path, char **text, size_t *len);

#endif
