/*
 * fuzz_dirfile: libFuzzer harness for the dir: rendezvous's message file
 * parser (sig_dir_parse in signal.c), which reads files that anyone who
 * may write the rendezvous directory can plant.  `make fuzz', then:
 *
 *	./tests/fuzz_dirfile -max_total_time=600 tests/fuzz/dirfile
 *
 * Besides not crashing: what parses keeps to the documented bounds, and
 * survives a rewrite: its header written again by sig_dir_header (the
 * writer's own code), with the same blob after it, parses to the same
 * header and blob.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "signal.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static char again[SIG_DIR_HDR_MAX + SIG_MAX_BLOB];
	static struct sig_msg m, m2;
	struct sig_dir_hdr h, h2;
	int r, r2, n;

	r = sig_dir_parse(buf, len, &h, &m);
	check(r >= -1 && r <= 1);
	if (r == -1)
		return 0;
	check(h.expire > 0 && h.pid > 0 && h.pid <= INT_MAX);
	check(memchr(h.host, '\0', sizeof h.host) != NULL && strchr(h.host, '\n') == NULL);
	if (r == 0)
		check(m.len >= 1 && m.len <= SIG_MAX_BLOB && m.len < len &&
		    memcmp(m.blob, buf + len - m.len, m.len) == 0);
	else
		check(m.len == 0);

	n = sig_dir_header(again, sizeof again, &h);
	check(n > 0 && n <= SIG_DIR_HDR_MAX);
	memcpy(again + n, m.blob, m.len);
	r2 = sig_dir_parse(again, (size_t)n + m.len, &h2, &m2);
	check(r2 == r && h2.expire == h.expire && h2.pid == h.pid &&
	    strcmp(h2.host, h.host) == 0 && m2.len == m.len &&
	    memcmp(m2.blob, m.blob, m.len) == 0);
	return 0;
}
