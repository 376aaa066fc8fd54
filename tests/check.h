/*
 * check.h: the unit tests' CHECK, which counts a check and, when it fails,
 * says where and what on stderr.  A test ends with its counts:
 *	printf("unit_NAME: %d checks, %d failed\n", checks, failures);
 *	return failures != 0;
 */
#ifndef P2PCAT_TESTS_CHECK_H
#define P2PCAT_TESTS_CHECK_H

#include <stdio.h>

static int failures, checks;

#define CHECK(c) do { \
	checks++; \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); \
		failures++; \
	} \
} while (0)

#endif
