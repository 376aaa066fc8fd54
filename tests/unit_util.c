/*
 * unit_util: util_escape, which every message goes through: what it
 * keeps, what it escapes and how, and where it cuts; and now_us's test
 * clock, which the fuzz targets' repeatable runs rest on.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int failures, checks;

static void
esc(const char *in, size_t size, const char *want)
{
	char buf[256];

	checks++;
	util_escape(in, buf, size);
	if (strcmp(buf, want) == 0)
		return;
	failures++;
	fprintf(stderr, "FAIL: util_escape(\"");
	for (; *in; in++)
		fprintf(stderr, "\\x%02x", (unsigned char)*in);
	fprintf(stderr, "\", %zu): got `%s', want `%s'\n", size, buf, want);
}

static void
expect(bool ok, const char *what)
{
	checks++;
	if (ok)
		return;
	failures++;
	fprintf(stderr, "FAIL: %s\n", what);
}

/* now_us reads the test clock while one is set, the real one after. */
static void
test_clock(void)
{
	uint64_t t = 1000000, real = now_us(), after;

	util_test_set_clock(&t);
	expect(now_us() == 1000000, "now_us reads the test clock");
	t += 4000;
	expect(now_us() == 1004000, "now_us follows the test clock");
	util_test_set_clock(NULL);
	after = now_us();
	expect(after >= real && after != 1004000, "now_us is real again");
}

int
main(void)
{
	test_clock();
	esc("plain name-1.x_y", 256, "plain name-1.x_y");
	esc("", 256, "");
	/* C0 controls and DEL; a backslash stays (quoting of its own). */
	esc("a\033[2Jb", 256, "a\\x1b[2Jb");
	esc("l1\nl2\r\t", 256, "l1\\nl2\\r\\t");
	esc("\x01\x7f", 256, "\\x01\\x7f");
	esc("back\\slash \\033", 256, "back\\slash \\033");
	/* UTF-8: kept when well-formed and harmless. */
	esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", 256, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
	/* C1 controls (CSI U+009B), bidi overrides and isolates, separators. */
	esc("x\xc2\x9b" "31m", 256, "x\\u009b31m");
	esc("\xe2\x80\xae" "txt.exe", 256, "\\u202etxt.exe");
	esc("\xe2\x81\xa6" "a", 256, "\\u2066a");
	esc("\xe2\x80\xa8", 256, "\\u2028");
	/* Not UTF-8: a raw C1 byte, overlong, surrogate, truncated, beyond
	 * U+10FFFF; each bad byte on its own. */
	esc("\x9b", 256, "\\x9b");
	esc("\xc0\xaf", 256, "\\xc0\\xaf");
	esc("\xed\xa0\x80", 256, "\\xed\\xa0\\x80");
	esc("\xe2\x82", 256, "\\xe2\\x82");
	esc("\xf4\x90\x80\x80", 256, "\\xf4\\x90\\x80\\x80");
	esc("\xff", 256, "\\xff");
	/* Cut short: "..." and never half an escape or half a character. */
	esc("abcdef", 7, "abcdef");
	esc("abcdefg", 7, "abc...");
	esc("ab\033cdefgh", 8, "ab...");
	esc("a\xc3\xa9\xc3\xa9\xc3\xa9xx", 8, "a\xc3\xa9...");
	esc("abc", 1, "");
	printf("unit_util: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
