/*
 * fuzz_firestore: libFuzzer target for what the Firestore backend reads
 * from the server (firestore.c, through its test hook fs_test_body): JSON
 * error bodies (Google's and OAuth's forms) and documents, listed or
 * fetched, with their names, fields, timestamps and base64 blobs.  What
 * comes out must be fit to print and within bounds, and never hold the
 * secrets the hook's backend carries.
 */
#include <stdint.h>
#include <string.h>

#include "signal.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* Printable ASCII only, NUL-terminated within cap. */
static void
check_text(const char *s, size_t cap)
{
	size_t i;

	for (i = 0; i < cap && s[i] != '\0'; i++)
		check(s[i] >= 0x20 && s[i] < 0x7f);
	check(i < cap);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char status[40], msg[256];
	struct sig_msg m;
	size_t i;
	int n;

	log_verbose = 2;	/* its messages quote the input too */
	memset(&m, 0, sizeof m);
	n = fs_test_body((const char *)data, size, status, msg, &m);
	if (n == -1)
		return 0;
	check_text(status, sizeof status);
	check_text(msg, sizeof msg);
	check(strstr(msg, "AIzaFuzzKey") == NULL);
	check(strstr(msg, "fuzz-id-token") == NULL);
	check(strstr(msg, "fuzz-refresh-token") == NULL);
	if (n > 0) {
		check(m.len <= SIG_MAX_BLOB);
		check(strlen(m.id) == SIG_ID_LEN);
		for (i = 0; i < SIG_ID_LEN; i++)
			check((m.id[i] >= '0' && m.id[i] <= '9') ||
			    (m.id[i] >= 'a' && m.id[i] <= 'f'));
	}
	return 0;
}
