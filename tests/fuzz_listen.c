/*
 * fuzz_listen: libFuzzer harness for fslisten.c's decoding and handling of
 * Listen answers (protobuf-c's ListenResponse decoder under them).  make
 * tests/fuzz_listen, then ./tests/fuzz_listen tests/fuzz/listen
 * -max_total_time=600.
 *
 * The input is a script: records of an opcode byte and a 2-byte
 * big-endian length, then that many bytes.  Opcode 0 feeds the bytes as
 * one ListenResponse; 1 ends the stream and starts another (resumed, or
 * fresh after an existence filter); 2 takes every document handed out.
 * Besides not crashing or leaking: documents handed out have a name as
 * the server sent it, fields within the bounds, and the billed reads
 * never go down.
 */
#include <stdlib.h>
#include <string.h>

#include "fslisten.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void
take_all(struct fsl *l)
{
	const struct fsl_doc *d;
	int i;

	while ((d = fsl_peek(l)) != NULL) {
		check(d->name != NULL && d->namelen > 0 &&
		    d->name[d->namelen] == '\0' &&
		    strlen((const char *)d->name) == d->namelen);
		for (i = 0; i < FSL_MAX_FIELDS; i++) {
			check(d->f[i].type >= FSL_ABSENT &&
			    d->f[i].type <= FSL_OTHER);
			if (d->f[i].type == FSL_STRING ||
			    d->f[i].type == FSL_BYTES)
				check(d->f[i].big ? d->f[i].p == NULL :
				    d->f[i].p != NULL && d->f[i].len <= 64);
		}
		fsl_pop(l);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static CURLM *m;
	struct fsl_conf c;
	struct fsl *l;
	unsigned long reads = 0;
	size_t off, n;

	if (m == NULL) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		m = curl_multi_init();
	}
	memset(&c, 0, sizeof c);
	/* Never performed: no connection is made. */
	c.url = "http://127.0.0.1:1/google.firestore.v1.Firestore/Listen";
	c.h2c = 1;
	c.database = "projects/p/databases/(default)";
	c.parent = "projects/p/databases/(default)/documents/inbox/bob";
	c.collection = "offers";
	c.limit = 8;
	c.fields[0] = "to";
	c.fields[1] = "blob";
	c.fields[2] = "expireAt";
	c.field_max = 64;
	c.what = "inbox/bob/offers";
	check((l = fsl_new(&c)) != NULL);
	check(fsl_start(l, m, NULL) == 0);
	for (off = 0; off + 3 <= len; off += 3 + n) {
		n = (size_t)buf[off + 1] << 8 | buf[off + 2];
		if (n > len - off - 3)
			n = len - off - 3;
		switch (buf[off] % 3) {
		case 0:
			if (fsl_state(l) == FSL_LIVE &&
			    fsl_feed(l, buf + off + 3, n) == -1)
				fsl_done(l, CURLE_WRITE_ERROR);
			break;
		case 1:
			fsl_stop(l, "fuzz");
			if (fsl_state(l) == FSL_IDLE)
				check(fsl_start(l, m, NULL) == 0);
			break;
		case 2:
			take_all(l);
			break;
		}
		check(fsl_reads(l) >= reads);
		reads = fsl_reads(l);
	}
	take_all(l);
	fsl_free(l);
	return 0;
}
