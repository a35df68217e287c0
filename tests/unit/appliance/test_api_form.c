/*
 * tests/unit/appliance/test_api_form.c: appliance/api_form.c, the form and
 * query decoding under /oauth/token and every query string: percent and
 * '+' decoding, a '%' without two hex digits left as it is, the exact
 * buffer boundary (a value of cap - 1 bytes fits, cap bytes is -E2BIG), an
 * encoded NUL refused wherever it is (-EILSEQ, before any overflow),
 * names matched whole and as sent, the first of repeated names, and the
 * count. tests/fuzz/fuzz_form.c checks the same promises on random input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "appliance/api_impl.h"

static void
test_decode(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(
	    api_form_decode("a+b%2Bc%2fd", 11, out, sizeof(out)), 0);
	assert_string_equal(out, "a b+c/d");
	/* A '%' without two hex digits stays, as browsers' parser keeps it. */
	assert_int_equal(api_form_decode("100%", 4, out, sizeof(out)), 0);
	assert_string_equal(out, "100%");
	assert_int_equal(api_form_decode("%4g%4", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "%4g%4");
	/* Only @p len bytes are read. */
	assert_int_equal(api_form_decode("abc%41", 4, out, sizeof(out)), 0);
	assert_string_equal(out, "abc%");
	/* Bytes above 0x7f decode as they are. */
	assert_int_equal(api_form_decode("%C3%A9", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "\xc3\xa9");
}

static void
test_boundary(void **state)
{
	char out[4];

	(void)state;
	assert_int_equal(api_form_decode("abc", 3, out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
	/* One byte more is refused, never cut. */
	assert_int_equal(api_form_decode("abcd", 4, out, sizeof(out)), -E2BIG);
	assert_int_equal(strlen(out), 3);
	assert_int_equal(api_form_decode("%41%42%43", 9, out, sizeof(out)), 0);
	assert_string_equal(out, "ABC");
	assert_int_equal(
	    api_form_decode("%41%42%43%44", 12, out, sizeof(out)), -E2BIG);
	assert_int_equal(api_form_decode("x", 1, out, 1), -E2BIG);
	assert_string_equal(out, "");
	assert_int_equal(api_form_decode("", 0, out, 1), 0);
	assert_int_equal(api_form_decode("x", 1, out, 0), -E2BIG);
}

static void
test_nul(void **state)
{
	char out[8];

	(void)state;
	/* "KEY%00junk" must not read as KEY. */
	assert_int_equal(
	    api_form_decode("ab%00cd", 7, out, sizeof(out)), -EILSEQ);
	assert_string_equal(out, "ab");
	assert_int_equal(api_form_decode("%00", 3, out, sizeof(out)), -EILSEQ);
	/* A NUL within reach is named before a value too long for it. */
	assert_int_equal(
	    api_form_decode("abc%00defghijkl", 15, out, sizeof(out)), -EILSEQ);
	/* "%0" and "%0g" are no NUL. */
	assert_int_equal(api_form_decode("%0%0g", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "%0%0g");
}

static void
test_query(void **state)
{
	const char *q =
	    "scope=a+b&client_id=ID1&client_id=ID2&xclient_id=no&after=%00";
	char out[16];

	(void)state;
	assert_int_equal(api_query_get(q, "scope", out, sizeof(out)), 0);
	assert_string_equal(out, "a b");
	/* The first of repeated names; names match whole. */
	assert_int_equal(api_query_get(q, "client_id", out, sizeof(out)), 0);
	assert_string_equal(out, "ID1");
	assert_int_equal(api_query_count(q, "client_id"), 2);
	assert_int_equal(api_query_count(q, "xclient_id"), 1);
	assert_int_equal(api_query_count(q, "id"), 0);
	/* Absent: "" and 0. */
	assert_int_equal(api_query_get(q, "grant_type", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(api_query_count(q, "grant_type"), 0);
	assert_int_equal(api_query_get(q, "after", out, sizeof(out)), -EILSEQ);
	/* Names are matched as sent, not decoded. */
	assert_int_equal(
	    api_query_get("client%5Fid=x", "client_id", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* An empty value, and one that ends the text. */
	assert_int_equal(api_query_get("a=&b=2", "a", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(api_query_get("a=&b=2", "b", out, sizeof(out)), 0);
	assert_string_equal(out, "2");
	assert_int_equal(api_query_get("a=12345", "a", out, 5), -E2BIG);
}

static void
test_stray(void **state)
{
	static const char *const names[] = { "key", "from", "to", NULL };
	static const struct {
		const char *query;
		int why;
		const char *bad; /* the name reported, cut to 7 bytes */
	} cases[] = {
		/* Every parameter known, once each, empty ones skipped. */
		{ "", 0, NULL },
		{ "key=K&&from=&to=2&", 0, NULL },
		/* A mistyped filter, a prefix of a name, a longer name. */
		{ "key=K&since=2025-06-01", API_QUERY_UNKNOWN, "since" },
		{ "ke=K", API_QUERY_UNKNOWN, "ke" },
		{ "keys=K", API_QUERY_UNKNOWN, "keys" },
		/* A known name with no '=' would be dropped by api_query_get.
		 */
		{ "from=1&key", API_QUERY_NO_VALUE, "key" },
		/* Given twice: only the first would be used. */
		{ "to=1&key=A&key=B", API_QUERY_REPEATED, "key" },
		/* Names as sent, not decoded; a long one cut to the buffer. */
		{ "k%65y=K", API_QUERY_UNKNOWN, "k%65y" },
		{ "averyverylongname=1", API_QUERY_UNKNOWN, "averyve" },
	};
	char bad[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad[0] = '\0';
		assert_int_equal(
		    api_query_stray(cases[i].query, names, bad, sizeof(bad)),
		    cases[i].why);
		if (cases[i].bad != NULL)
			assert_string_equal(bad, cases[i].bad);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_stray),
	};

	return cmocka_run_group_tests_name(
	    "appliance/api_form", tests, NULL, NULL);
}
