/*
 * tests/unit/lib/test_err.c: sr_strerror() and sr_errname() from lib/err.c,
 * and the shape of SR_ERROR_MAP itself (distinct codes, each inside its
 * module's range, with a text and a name).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "lib/sr.h"

struct err_entry {
	int enum_value;
	int map_value;
	const char *name;
	const char *text;
};

static const struct err_entry err_table[] = {
#define ERR_ENTRY(name, value, text) { (name), (value), #name, (text) },
	SR_ERROR_MAP(ERR_ENTRY)
#undef ERR_ENTRY
};

#define ERR_COUNT (sizeof(err_table) / sizeof(err_table[0]))

struct err_range {
	const char *prefix;
	int lo;
	int hi;
};

static const struct err_range err_ranges[] = {
	{ "KS_", -1999, -1000 },
	{ "P11_", -2999, -2000 },
	{ "INF_", -3999, -3000 },
	{ "APP_", -4999, -4000 },
};

static void
test_map_not_empty(void **state)
{
	(void)state;
	assert_true(ERR_COUNT > 0);
}

static void
test_enum_matches_map(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ERR_COUNT; i++)
		assert_int_equal(
		    err_table[i].enum_value, err_table[i].map_value);
}

static void
test_codes_distinct(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < ERR_COUNT; i++)
		for (j = i + 1; j < ERR_COUNT; j++)
			assert_int_not_equal(
			    err_table[i].map_value, err_table[j].map_value);
}

static void
test_codes_in_module_range(void **state)
{
	const struct err_range *r;
	size_t i, k;
	int matched;

	(void)state;
	for (i = 0; i < ERR_COUNT; i++) {
		matched = 0;
		for (k = 0; k < sizeof(err_ranges) / sizeof(err_ranges[0]);
		     k++) {
			r = &err_ranges[k];
			if (strncmp(err_table[i].name, r->prefix,
			        strlen(r->prefix)) != 0)
				continue;
			matched = 1;
			assert_in_range(err_table[i].map_value, r->lo, r->hi);
		}
		if (!matched)
			fail_msg(
			    "%s has no known module prefix", err_table[i].name);
	}
}

static void
test_codes_text_and_name(void **state)
{
	const char *text, *name;
	size_t i;

	(void)state;
	for (i = 0; i < ERR_COUNT; i++) {
		assert_non_null(err_table[i].text);
		assert_true(err_table[i].text[0] != '\0');
		text = sr_strerror(err_table[i].map_value);
		assert_non_null(text);
		assert_string_equal(text, err_table[i].text);
		name = sr_errname(err_table[i].map_value);
		assert_non_null(name);
		assert_string_equal(name, err_table[i].name);
	}
}

static void
test_errno_codes(void **state)
{
	(void)state;
	assert_string_equal(sr_strerror(-ENOMEM), strerror(ENOMEM));
	assert_string_equal(sr_strerror(-EINVAL), strerror(EINVAL));
	assert_string_equal(sr_errname(-ENOMEM), "ENOMEM");
	assert_string_equal(sr_errname(-EINVAL), "EINVAL");
}

static void
test_success(void **state)
{
	(void)state;
	assert_string_equal(sr_strerror(0), "success");
	assert_string_equal(sr_errname(0), "OK");
}

static void
test_unknown_codes(void **state)
{
	static const int unknown[] = { -1500, -9999, 5, INT_MIN, INT_MAX };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_string_equal(sr_strerror(unknown[i]), "unknown error");
		assert_non_null(sr_errname(unknown[i]));
		assert_true(sr_errname(unknown[i])[0] != '\0');
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_not_empty),
		cmocka_unit_test(test_enum_matches_map),
		cmocka_unit_test(test_codes_distinct),
		cmocka_unit_test(test_codes_in_module_range),
		cmocka_unit_test(test_codes_text_and_name),
		cmocka_unit_test(test_errno_codes),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_unknown_codes),
	};

	return cmocka_run_group_tests_name("lib/err", tests, NULL, NULL);
}
