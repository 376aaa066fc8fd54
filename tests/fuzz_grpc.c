/*
 * fuzz_grpc: libFuzzer harness for grpc.c's decoders: the answer's
 * message framing and its header and trailer lines.  make tests/fuzz_grpc,
 * then ./tests/fuzz_grpc tests/fuzz/grpc -max_total_time=600.
 *
 * The input, fed in chunks whose sizes its bytes choose, must frame into
 * the same messages as when fed at once, none over the bound; each of its
 * lines, as a header, must leave a status in range and a printable
 * message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"

#define MAX	4096

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct seen {
	size_t n, len[64];
	uint64_t sum[64];
};

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static int
take(void *arg, const unsigned char *msg, size_t len)
{
	struct seen *s = arg;
	uint64_t h = 0;
	size_t i;

	check(len <= MAX);
	for (i = 0; i < len; i++)
		h = h * 31 + msg[i];
	if (s->n < 64) {
		s->len[s->n] = len;
		s->sum[s->n] = h;
	}
	s->n++;
	/* A callback may end the stream: the 40th message does. */
	return s->n == 40 ? 7 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct grpc_dec a, b;
	struct grpc_resp r;
	struct seen sa = { 0 }, sb = { 0 };
	size_t off, k, i, j;
	int ra, rb = 0;

	grpc_dec_init(&a, MAX);
	ra = grpc_dec_feed(&a, buf, len, take, &sa);
	grpc_dec_init(&b, MAX);
	for (off = 0, i = 0; off < len && rb == 0; off += k, i++) {
		k = 1 + (buf[i % len] % 17) * (i % 3 == 2 ? 97 : 1);
		if (k > len - off)
			k = len - off;
		rb = grpc_dec_feed(&b, buf + off, k, take, &sb);
	}
	check(ra == rb);
	check(sa.n == sb.n);
	for (i = 0; i < sa.n && i < 64; i++)
		check(sa.len[i] == sb.len[i] && sa.sum[i] == sb.sum[i]);
	check(ra == 0 || ra == 7 || ra == GRPC_DEC_BIG ||
	    ra == GRPC_DEC_COMPRESSED);
	grpc_dec_free(&a);
	grpc_dec_free(&b);

	grpc_resp_init(&r);
	for (i = 0; i < len; i = j + 1) {
		for (j = i; j < len && buf[j] != '\n'; j++)
			;
		grpc_resp_header(&r, (const char *)buf + i, j - i);
		check(r.status >= -1 && r.status <= 999);
		check(r.http >= 0 && r.http <= 999);
		check(memchr(r.message, '\0', sizeof r.message) != NULL);
		for (k = 0; r.message[k] != '\0'; k++)
			check(r.message[k] >= 0x20 && r.message[k] < 0x7f);
	}
	return 0;
}
