/*
 * tests/fuzz/fuzz_form.c: libFuzzer target for form and query decoding
 * (appliance/api_form.c), which reads the /oauth/token body (client
 * secrets among it) and every route's query string: bytes a stranger
 * chooses. The input is the form text; each name it holds, and a few
 * fixed ones, are looked up with output buffers of several exact sizes
 * (heap blocks of just that size, so ASan sees one byte too many).
 *
 * Each answer is checked against a second decoder written here the plain
 * way (decode everything, then decide): the result code is the one
 * api_impl.h promises (-EILSEQ when a NUL byte is decoded before the
 * buffer is full, else -E2BIG when the value does not fit, else 0), the
 * output is the decoded prefix and always NUL-terminated within the
 * buffer, and api_query_count() counts what a plain scan counts.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/api_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The whole value at @p v (up to '&' or the end) decoded into @p out
 * (room for strlen(v) bytes); its length. */
static size_t
reference_decode(const char *v, unsigned char *out)
{
	size_t n = 0;

	for (; *v != '\0' && *v != '&'; v++) {
		if (v[0] == '%' && isxdigit((unsigned char)v[1]) &&
		    isxdigit((unsigned char)v[2])) {
			char two[3] = { v[1], v[2], '\0' };

			out[n++] = (unsigned char)strtol(two, NULL, 16);
			v += 2;
		} else {
			out[n++] = *v == '+' ? ' ' : (unsigned char)*v;
		}
	}
	return n;
}

/* The first "name=" of @p form by a plain scan, and how many there are. */
static const char *
reference_find(const char *form, const char *name, unsigned *count)
{
	size_t n = strlen(name);
	const char *p = form, *first = NULL;

	*count = 0;
	for (;;) {
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			if (first == NULL)
				first = p + n + 1;
			(*count)++;
		}
		p = strchr(p, '&');
		if (p == NULL)
			return first;
		p++;
	}
}

static void
check_one(const char *form, const char *name, size_t cap, unsigned char *ref)
{
	const char *v;
	unsigned count;
	size_t len, k, want_len;
	int want, rc;
	char *out = malloc(cap);

	if (out == NULL)
		abort();
	rc = api_query_get(form, name, out, cap);
	v = reference_find(form, name, &count);
	if (api_query_count(form, name) != count)
		abort();
	len = v != NULL ? reference_decode(v, ref) : 0;
	for (k = 0; k < len && ref[k] != 0; k++)
		;
	/* The decoder stops at the first output position that holds a NUL
	 * or that would leave no room for the terminator. */
	if (k < len && k <= cap - 1) {
		want = -EILSEQ;
		want_len = k;
	} else if (len > cap - 1) {
		want = -E2BIG;
		want_len = cap - 1;
	} else {
		want = 0;
		want_len = len;
	}
	if (rc != want || strlen(out) != want_len ||
	    memcmp(out, ref, want_len) != 0)
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *fixed[] = { "client_id", "client_secret", "scope",
		"grant_type", "after", "a", "" };
	static const size_t caps[] = { 1, 2, 3, 13, 64, 256 };
	char *form, name[64];
	unsigned char *ref;
	const char *p;
	size_t i, j, n;

	form = malloc(size + 1);
	ref = malloc(size + 1);
	if (form == NULL || ref == NULL)
		abort();
	memcpy(form, data, size);
	form[size] = '\0'; /* text ends at its first NUL, as a body does */
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		for (j = 0; j < sizeof(caps) / sizeof(caps[0]); j++)
			check_one(form, fixed[i], caps[j], ref);
	/* Every name the form holds (up to 63 bytes), at every size. */
	for (p = form; p != NULL && *p != '\0';) {
		n = strcspn(p, "=&");
		if (p[n] == '=' && n < sizeof(name)) {
			memcpy(name, p, n);
			name[n] = '\0';
			for (j = 0; j < sizeof(caps) / sizeof(caps[0]); j++)
				check_one(form, name, caps[j], ref);
		}
		p = strchr(p, '&');
		p = p != NULL ? p + 1 : NULL;
	}
	free(form);
	free(ref);
	return 0;
}
