/*
 * fuzz_config: libFuzzer target for the configuration file: its format
 * (config.c) and the settings it holds (opts.c's opts_config, with the
 * value parsers behind it).  `make tests/fuzz_config', then run it on
 * tests/fuzz/config/ (the shipped sample, and files of each kind).
 *
 * Besides not crashing or leaking: every setting handed over names a
 * known key, a key that is not repeatable comes once, and what a parse
 * that succeeds leaves in the settings is within the options' ranges.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static const struct config_key keys[] = {
	{ "a", false },
	{ "stun", true },
	{ "turn", false },
	{ NULL, false }
};

struct seen {
	int a, turn;
};

static int
count(void *ctx, const char *key, const char *val, const char *where)
{
	struct seen *s = ctx;

	check(key && val && where && strncmp(where, "fuzz:", 5) == 0);
	/* Keys and values come trimmed, without a comment. */
	check(*key != '\0' && strchr(key, '=') == NULL && strchr(key, '\n') == NULL);
	check(strchr(val, '\n') == NULL && strstr(val, " #") == NULL);
	if (strcmp(key, "a") == 0)
		s->a++;
	else if (strcmp(key, "turn") == 0)
		s->turn++;
	else
		check(strcmp(key, "stun") == 0);
	check(s->a <= 1 && s->turn <= 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct seen seen = { 0, 0 };
	struct opts o;
	char *text;

	if (len > CONFIG_MAX)
		return 0;
	/* The text as config_read hands it over: NUL-terminated. */
	if ((text = malloc(len + 1)) == NULL)
		return 0;
	memcpy(text, buf, len);
	text[len] = '\0';
	config_parse("fuzz", text, len, keys, count, &seen);

	opts_init(&o);
	if (opts_config(&o, "fuzz", text, len) == 0) {
		check(o.wait_s >= 0.1 && o.wait_s <= 86400);
		check(o.idle_s >= 1 && o.idle_s <= 86400);
		check(o.poll_s == 0 || (o.poll_s >= 0.01 && o.poll_s <= 3600));
		check(o.port >= 0 && o.port <= 65535);
		check(o.nstun >= 0 && o.nstun <= PUNCH_MAX_STUN);
		check(!(o.turn && o.turn_file));
	}
	opts_free(&o);
	free(text);
	return 0;
}
