/*
 * fuzz_trust: libFuzzer harness for the parsers of the files that say
 * whom to trust: known_peers and known_callers (`name key [store]'
 * lines), --allow files (keys and fingerprints), the store scopes, and
 * util_escape, which every message quoting such a file goes through.
 * `make fuzz' builds it; run it as
 *
 *	./tests/fuzz_trust -close_fd_mask=2 -max_total_time=600 tests/fuzz/trust
 *
 * (-close_fd_mask=2: the parsers' diagnostics, not libFuzzer's, are muted).
 *
 * Besides not crashing: results stay in range, a decision names a line
 * that exists, a file that reads for one name reads for every name, and
 * escaped text holds nothing a terminal acts on.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "trust.h"
#include "util.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint8_t pub[CRYPTO_KEY_LEN];

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (crypto_init() == -1)
		abort();
	/* The key of the seeds' `bob' and first --allow line. */
	check(crypto_key_from_text("AnX/WoWQnqPkEI5qgbLGZ8YzamX9Pju7cXRm5JCFjHs=", pub) == 0);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *buf = (const char *)data;
	char *s, out[256], scope[128];
	size_t lines = 1, i;
	int r, r2, line;

	for (i = 0; i < len; i++)
		lines += data[i] == '\n';
	r = trust_allow_parse(buf, len, "fuzz", pub);
	check(r >= -1 && r <= 1);
	check(trust_allow_parse(buf, len, "fuzz", NULL) == (r == -1 ? -1 : 0));

	r = trust_known_parse(buf, len, "fuzz", "bob", "dir:/srv/meet", pub, &line);
	check(r >= -1 && r <= TRUST_MISMATCH);
	check(line >= 0 && (size_t)line <= lines);
	check(r == TRUST_UNKNOWN || line > 0);
	r2 = trust_known_parse(buf, len, "fuzz", NULL, "dir:/srv/meet", NULL, &line);
	check((r == -1) == (r2 == -1) && (r2 == -1 || r2 == TRUST_UNKNOWN));

	if ((s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if (trust_scope(s, scope, sizeof scope) == 0) {
		check(strlen(scope) < sizeof scope);
		for (i = 0; scope[i]; i++)
			check((unsigned char)scope[i] >= 0x20 && scope[i] != 0x7f);
	}
	trust_valid_key(s);
	util_escape(s, out, sizeof out);
	check(strlen(out) < sizeof out);
	for (i = 0; out[i]; i++)
		check((unsigned char)out[i] >= 0x20 && out[i] != 0x7f &&
		    ((unsigned char)out[i] != 0xc2 || (unsigned char)out[i + 1] >= 0xa0));
	free(s);
	return 0;
}
