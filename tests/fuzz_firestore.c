/*
 * fuzz_firestore: libFuzzer target for what the Firestore backend reads
 * from the server (firestore.c, through its test hook fs_test_body): JSON
 * error bodies (Google's and OAuth's forms) and documents, listed or
 * fetched, with their names, fields, timestamps and base64 blobs.  What
 * comes out must be fit to print and within bounds, and never hold the
 * secrets the hook's backend carries.  Each body is also a sign-in answer
 * and a token refresh answer (fs_test_tokens): taken only when its four
 * strings are, each copied whole and the ID token fit for a header, its
 * life clamped; refused, with the earlier tokens forgotten, otherwise.
 * And each is a token cache file (fs_test_cache, what fs_cache_load reads
 * from $XDG_CACHE_HOME/p2pcat): taken only when its three strings and
 * its number are, the strings whole and the ID token fit for a header,
 * the expiry the file's or 0 (renew now), never over a week away;
 * refused with nothing kept, not even the uid, otherwise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

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

/* 1 when s is a b64token (RFC 6750 section 2.1), which an Authorization
 * header carries as it is: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
 * "+" / "/" ) *"=". */
static int
bearer(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-._~+/");

	return n > 0 && s[n + strspn(s + n, "=")] == '\0';
}

/* 1 when s can go into an HTTP header as it is, whatever the token
 * grammar: not empty, and no control byte, space or byte beyond ASCII
 * that would end the header or start another (RFC 9110 section 5.5). */
static int
header_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/* 1 when the body's member k is a string of 1 to cap - 1 bytes. */
static int
fits(const cJSON *j, const char *k, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

	return cJSON_IsString(v) && v->valuestring[0] != '\0' &&
	    strlen(v->valuestring) < cap;
}

/* The body as a sign-in answer (refresh 0) or a refresh answer (1).  j is
 * the body as parsed here, NULL when it is no JSON or holds \u0000 (the
 * backend reads that as \u0001, so no member compares). */
static void
tokens(const uint8_t *data, size_t size, int refresh, const cJSON *j)
{
	static char idtok[FS_TEST_TOKEN], reftok[FS_TEST_TOKEN];
	const char *kid = refresh ? "id_token" : "idToken";
	const char *kref = refresh ? "refresh_token" : "refreshToken";
	const char *kexp = refresh ? "expires_in" : "expiresIn";
	const char *kuid = refresh ? "user_id" : "localId";
	char uid[FS_TEST_UID];
	const char *e;
	uint64_t t0, t1, exp, secs, slack;
	int r;

	t0 = unix_ms();
	r = fs_test_tokens((const char *)data, size, refresh, idtok, reftok,
	    uid, &exp);
	t1 = unix_ms();
	if (r == -1)
		return;
	check(memchr(idtok, '\0', sizeof idtok) != NULL);
	check(memchr(reftok, '\0', sizeof reftok) != NULL);
	check(memchr(uid, '\0', sizeof uid) != NULL);
	if (r == 1) {
		/* Refused: the earlier tokens are gone, the uid kept. */
		check(idtok[0] == '\0' && reftok[0] == '\0' && exp == 0);
		check(strcmp(uid, "fuzz-uid") == 0);
		check(j == NULL || !fits(j, kid, FS_TEST_TOKEN) ||
		    !fits(j, kref, FS_TEST_TOKEN) || !fits(j, kexp, 32) ||
		    !fits(j, kuid, FS_TEST_UID) ||
		    !bearer(cJSON_GetObjectItemCaseSensitive(j, kid)->valuestring));
		return;
	}
	/* Taken: an ID token fit for a header, every string whole. */
	check(idtok[0] != '\0' && header_safe(idtok) && bearer(idtok));
	check(reftok[0] != '\0' && uid[0] != '\0');
	if (j != NULL) {
		check(fits(j, kid, FS_TEST_TOKEN) && strcmp(idtok,
		    cJSON_GetObjectItemCaseSensitive(j, kid)->valuestring) == 0);
		check(fits(j, kref, FS_TEST_TOKEN) && strcmp(reftok,
		    cJSON_GetObjectItemCaseSensitive(j, kref)->valuestring) == 0);
		check(fits(j, kuid, FS_TEST_UID) && strcmp(uid,
		    cJSON_GetObjectItemCaseSensitive(j, kuid)->valuestring) == 0);
	}
	/* Renewed 2 minutes before it expires, or at 3/4 of a shorter life,
	 * which is 1 s to 7 days: a life in plain digits out of those, or
	 * one without a digit, is an hour. */
	check(exp > t0);
	secs = 0;
	if (j != NULL && fits(j, kexp, 32)) {
		e = cJSON_GetObjectItemCaseSensitive(j, kexp)->valuestring;
		if (strspn(e, "0123456789") == strlen(e)) {
			e += strspn(e, "0");
			secs = strlen(e) <= 6 ? strtoul(e, NULL, 10) : 0;
			if (secs < 1 || secs > 604800)
				secs = 3600;
		} else if (strpbrk(e, "0123456789") == NULL)
			secs = 3600;
	}
	if (secs != 0) {
		slack = secs * 250 < 120000 ? secs * 250 : 120000;
		check(exp >= t0 + secs * 1000 - slack &&
		    exp <= t1 + secs * 1000 - slack);
	} else
		check(exp >= t0 + 750 && exp <= t1 + 604800000 - 120000);
}

/* The input as a token cache file (fs_test_cache), read by a backend
 * that holds nothing yet.  The backend reads it up to a NUL, as c is. */
static void
cache(const uint8_t *data, size_t size)
{
	static char idtok[FS_TEST_TOKEN], reftok[FS_TEST_TOKEN];
	static char c[FS_TEST_CACHE + 1];
	const uint64_t week = 7 * 86400 * 1000ULL;
	const cJSON *v;
	cJSON *j;
	char uid[FS_TEST_UID];
	uint64_t t0, t1, exp;
	double d;
	int r;

	t0 = unix_ms();
	r = fs_test_cache((const char *)data, size, idtok, reftok, uid, &exp);
	t1 = unix_ms();
	if (r == -1) {
		check(size > FS_TEST_CACHE);
		return;
	}
	check(memchr(idtok, '\0', sizeof idtok) != NULL);
	check(memchr(reftok, '\0', sizeof reftok) != NULL);
	check(memchr(uid, '\0', sizeof uid) != NULL);
	memcpy(c, data, size);
	c[size] = '\0';
	j = cJSON_Parse(c);
	v = cJSON_GetObjectItemCaseSensitive(j, "expiresAt");
	if (r == 1) {
		/* Refused: nothing of it kept, and for a reason. */
		check(idtok[0] == '\0' && reftok[0] == '\0' && uid[0] == '\0');
		check(exp == 0);
		check(j == NULL || !fits(j, "idToken", FS_TEST_TOKEN) ||
		    !fits(j, "refreshToken", FS_TEST_TOKEN) ||
		    !fits(j, "uid", FS_TEST_UID) || !cJSON_IsNumber(v) ||
		    !bearer(cJSON_GetObjectItemCaseSensitive(j,
		    "idToken")->valuestring));
		cJSON_Delete(j);
		return;
	}
	/* Taken: an ID token fit for a header, every string whole, an
	 * expiry of at most a week from now, the file's when it is one. */
	check(j != NULL && cJSON_IsNumber(v));
	check(idtok[0] != '\0' && header_safe(idtok) && bearer(idtok));
	check(reftok[0] != '\0' && uid[0] != '\0');
	check(fits(j, "idToken", FS_TEST_TOKEN) && strcmp(idtok,
	    cJSON_GetObjectItemCaseSensitive(j, "idToken")->valuestring) == 0);
	check(fits(j, "refreshToken", FS_TEST_TOKEN) && strcmp(reftok,
	    cJSON_GetObjectItemCaseSensitive(j, "refreshToken")->valuestring) ==
	    0);
	check(fits(j, "uid", FS_TEST_UID) && strcmp(uid,
	    cJSON_GetObjectItemCaseSensitive(j, "uid")->valuestring) == 0);
	check(exp <= t1 + week);
	d = v->valuedouble;
	if (d >= 0 && d <= (double)(t0 + week))
		check(exp == (uint64_t)d);
	else if (!(d >= 0 && d <= (double)(t1 + week)))
		check(exp == 0);
	cJSON_Delete(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char status[40], msg[256];
	struct sig_msg m;
	cJSON *j = NULL;
	size_t i;
	int n;

	log_verbose = 2;	/* its messages quote the input too */
	if (memmem(data, size, "\\u0000", 6) == NULL)
		j = cJSON_ParseWithLength((const char *)data, size);
	tokens(data, size, 0, j);
	tokens(data, size, 1, j);
	cJSON_Delete(j);
	cache(data, size);
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
