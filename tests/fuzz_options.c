/*
 * fuzz_options: libFuzzer target for the command line: the input, split
 * at NUL bytes, is argv (after "p2pcat"), parsed as opts_parse does it
 * (getopt_long, every option's value parser, the conflicts between
 * options); and each argument also goes through the STUN and TURN
 * syntax checks (punch_check_server without DNS) and opts_shown.
 * `make tests/fuzz_options', then run it on tests/fuzz/options/.
 *
 * Besides not crashing or leaking: a command line that parses holds
 * values in their ranges and no two options that exclude each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "punch.h"

#define ARGS_MAX	32

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* -h and --version print on stdout: away with it. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (freopen("/dev/null", "w", stdout) == NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	char *copy, *argv[ARGS_MAX + 2], shown[68];
	struct opts o;
	size_t off = 0;
	int argc = 0, i, r;

	if ((copy = malloc(len + 1)) == NULL)
		return 0;
	memcpy(copy, buf, len);
	copy[len] = '\0';
	argv[argc++] = "p2pcat";
	while (off <= len && argc <= ARGS_MAX) {
		argv[argc++] = copy + off;
		off += strlen(copy + off) + 1;
	}
	argv[argc] = NULL;
	for (i = 1; i < argc; i++) {
		punch_check_server(argv[i], false, false);
		punch_check_server(argv[i], true, false);
		check(strlen(opts_shown(argv[i], shown)) <= 67);
	}

	opts_init(&o);
	r = opts_parse(&o, argc, argv);
	check(r == OPTS_RUN || r == OPTS_EXIT || r == OPTS_BAD);
	if (r == OPTS_RUN) {
		check(o.wait_s >= 0.1 && o.wait_s <= 86400);
		check(o.idle_s >= 1 && o.idle_s <= 86400);
		check(o.port >= 0 && o.port <= 65535);
		check(o.max_conns >= 0 && o.max_conns <= 1024);
		check(o.nstun <= PUNCH_MAX_STUN);
		check(!(o.send_only && o.recv_only) && !(o.allow && o.allow_any));
		check(!(o.turn && o.turn_file));
		check(o.show_id || o.listen || o.peer != NULL);
		check(!o.keep || o.listen);
	}
	opts_free(&o);
	free(copy);
	return 0;
}
