/*
 * appliance/api_form.c: application/x-www-form-urlencoded text, the
 * /oauth/token body and every route's query string: finding a parameter
 * by name, percent-decoding its value ('+' is a blank), counting how often
 * it is given, and finding the first parameter a route does not take.
 *
 * A value is decoded whole or refused: one that does not fit the caller's
 * buffer is -E2BIG, not cut (a cut filter or scope would silently be a
 * different one), and one that decodes to a NUL byte is -EILSEQ (a C
 * string would end there, so "KEY%00junk" would read as KEY). A '%' not
 * followed by two hex digits stays as it is, as the WHATWG form parser
 * that browsers use leaves it. Names are matched as sent, not decoded.
 *
 * Pure functions of their arguments: no allocation, no state, any thread.
 * It must never read past a value's '&' or the string's end, and never
 * write more than @p cap bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "appliance/api_impl.h"

int
api_form_decode(const char *v, size_t len, char *out, size_t cap)
{
	const char *end = v + len;
	size_t o = 0;
	uint8_t byte;
	int c;

	if (cap == 0)
		return -E2BIG;
	for (; v < end; v++) {
		if (*v == '%' && end - v >= 3 &&
		    sr_hex_decode(&byte, 1, v + 1, 2) == 1) {
			c = byte;
			v += 2;
		} else {
			c = *v == '+' ? ' ' : (unsigned char)*v;
		}
		if (c == 0) {
			out[o] = '\0';
			return -EILSEQ;
		}
		if (o + 1 >= cap) {
			out[o] = '\0';
			return -E2BIG;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* The value of the first "name=" parameter of @p query, or NULL. */
static const char *
find(const char *query, const char *name)
{
	size_t n = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == '=')
			return p + n + 1;
		p = strchr(p, '&');
		p = p != NULL ? p + 1 : NULL;
	}
	return NULL;
}

int
api_query_get(const char *query, const char *name, char *out, size_t cap)
{
	const char *v = find(query, name);

	if (cap == 0)
		return -E2BIG;
	out[0] = '\0';
	return v == NULL ? 0 : api_form_decode(v, strcspn(v, "&"), out, cap);
}

unsigned
api_query_count(const char *query, const char *name)
{
	const char *v = find(query, name), *amp;
	unsigned count = 0;

	for (; v != NULL; count++) {
		amp = strchr(v, '&');
		v = amp != NULL ? find(amp + 1, name) : NULL;
	}
	return count;
}

/* 1 when the parameter at @p p (its name @p n bytes long) is @p name. */
static int
name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncmp(p, name, n) == 0;
}

int
api_query_stray(
    const char *query, const char *const names[], char *bad, size_t cap)
{
	const char *p, *q, *amp;
	size_t n, len;
	unsigned i;
	int why = 0;

	for (p = query; why == 0 && p != NULL && *p != '\0'; p = amp) {
		amp = strchr(p, '&');
		len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		amp = amp != NULL ? amp + 1 : NULL;
		if (len == 0) /* "a=1&&b=2", a trailing '&' */
			continue;
		n = strcspn(p, "=&");
		for (i = 0; names[i] != NULL && !name_is(p, n, names[i]); i++)
			;
		if (names[i] == NULL)
			why = API_QUERY_UNKNOWN;
		else if (n == len)
			why = API_QUERY_NO_VALUE;
		else
			for (q = query; q < p && why == 0;
			     q += strcspn(q, "&") + 1)
				if (strncmp(q, names[i], n) == 0 && q[n] == '=')
					why = API_QUERY_REPEATED;
		if (why != 0 && cap > 0) {
			n = n < cap - 1 ? n : cap - 1;
			memcpy(bad, p, n);
			bad[n] = '\0';
		}
	}
	return why;
}
