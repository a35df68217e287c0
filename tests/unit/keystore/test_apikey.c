/*
 * tests/unit/keystore/test_apikey.c: key ids and API keys (keystore/
 * apikey.c): ids from known bytes, rejection sampling, API-key layout, the
 * checksum against zlib's crc32 and against a known answer, detection of
 * every single substitution and adjacent transposition, and refusal of
 * malformed keys without reading past their length.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "keystore/internal.h"

static const char alphabet[] = "0123456789"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz";

/* An id and a key computed outside this code base (Python's zlib.crc32)
 * from the buffers fill_id() and fill_key() make. */
#define GOLDEN_ID "Eh2VyRuNqJm7"
#define GOLDEN_KEY \
	"srk_Eh2VyRuNqJm7BmNyZAlEpQ1cDoHsT4fGrKvW7iJuNyZAlMxQ1cDoPT0cwmD0"

static void
fill_id(uint8_t rnd[KS_RANDOM_FOR_ID])
{
	size_t i;

	for (i = 0; i < KS_RANDOM_FOR_ID; i++)
		rnd[i] = (uint8_t)(i * 29 + 200);
}

/* Three of these bytes are >= 248, so the draw skips some. */
static void
fill_key(uint8_t rnd[KS_RANDOM_FOR_APIKEY], unsigned mul, unsigned add)
{
	size_t i;

	for (i = 0; i < KS_RANDOM_FOR_APIKEY; i++)
		rnd[i] = (uint8_t)(i * mul + add);
}

static int
all_base62(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL)
			return 0;
	return 1;
}

/* Write the base62 of zlib's crc32 over the first 58 characters into
 * the last six, most-significant digit first. */
static void
zlib_checksum(const char *key, char out[KS_APIKEY_CHECK_LEN])
{
	unsigned long crc;
	int i;

	crc = crc32(0L, (const Bytef *)key, KS_APIKEY_LEN - 6);
	for (i = KS_APIKEY_CHECK_LEN - 1; i >= 0; i--) {
		out[i] = alphabet[crc % 62];
		crc /= 62;
	}
}

/* Parse and check must agree on every input; returns parse's answer. */
static int
parse_both(const char *key, size_t len, char id[KS_ID_LEN + 1])
{
	int rc = ks__apikey_parse(key, len, id);

	assert_int_equal(ks_apikey_check(key, len), rc);
	return rc;
}

static void
make_golden(char key[KS_APIKEY_LEN + 1])
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];

	fill_key(rnd, 37, 11);
	assert_int_equal(ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), key), 0);
}

/* ---------------------------------------------------------------- */
/* Ids                                                                */
/* ---------------------------------------------------------------- */

static void
test_id_known(void **state)
{
	uint8_t rnd[KS_RANDOM_FOR_ID];
	char id[KS_ID_LEN + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)i;
	assert_int_equal(ks__id_make(rnd, sizeof(rnd), id), 0);
	assert_string_equal(id, "0123456789AB");

	fill_id(rnd);
	assert_int_equal(ks__id_make(rnd, sizeof(rnd), id), 0);
	assert_string_equal(id, GOLDEN_ID);

	/* Exactly twelve usable bytes are enough. */
	assert_int_equal(ks__id_make(rnd, KS_ID_LEN, id), 0);
	assert_string_equal(id, GOLDEN_ID);
}

static void
test_id_rejection(void **state)
{
	static const uint8_t rnd[] = { 248, 0, 249, 61, 255, 62, 123, 124, 186,
		247, 250, 10, 36, 200, 251, 1, 35 };
	char id[KS_ID_LEN + 1];

	(void)state;
	assert_int_equal(ks__id_make(rnd, sizeof(rnd), id), 0);
	assert_string_equal(id, "0z0z00zAaE1Z");
	/* One byte short once the five rejected ones are skipped. */
	assert_int_equal(ks__id_make(rnd, sizeof(rnd) - 1, id), -EAGAIN);
}

static void
test_id_short(void **state)
{
	uint8_t rnd[64];
	char id[KS_ID_LEN + 1];

	(void)state;
	memset(rnd, 7, sizeof(rnd));
	assert_int_equal(ks__id_make(rnd, KS_ID_LEN - 1, id), -EAGAIN);
	assert_int_equal(ks__id_make(rnd, 0, id), -EAGAIN);
	assert_int_equal(ks__id_make(NULL, 0, id), -EAGAIN);
	memset(rnd, 0xff, sizeof(rnd));
	assert_int_equal(ks__id_make(rnd, sizeof(rnd), id), -EAGAIN);
	memset(rnd, 248, sizeof(rnd));
	assert_int_equal(ks__id_make(rnd, sizeof(rnd), id), -EAGAIN);
	/* 247 is the largest byte kept: 247 % 62 = 61, 'z'. */
	memset(rnd, 247, sizeof(rnd));
	assert_int_equal(ks__id_make(rnd, sizeof(rnd), id), 0);
	assert_string_equal(id, "zzzzzzzzzzzz");
}

static void
test_id_valid(void **state)
{
	uint8_t rnd[KS_RANDOM_FOR_ID];
	char id[KS_ID_LEN + 1];
	char bad[KS_ID_LEN + 2];
	static const char odd[] = "-_+/ .\t\x80\xff";
	size_t i, j;

	(void)state;
	assert_int_equal(ks__id_valid("0123456789AB"), 1);
	assert_int_equal(ks__id_valid("zzzzzzzzzzzz"), 1);
	assert_int_equal(ks__id_valid(GOLDEN_ID), 1);
	assert_int_equal(ks__id_valid(NULL), 0);
	assert_int_equal(ks__id_valid(""), 0);
	assert_int_equal(ks__id_valid("0123456789A"), 0);
	assert_int_equal(ks__id_valid("0123456789ABC"), 0);
	for (i = 0; i < KS_ID_LEN; i++) {
		for (j = 0; j < sizeof(odd) - 1; j++) {
			memcpy(bad, "0123456789AB", KS_ID_LEN + 1);
			bad[i] = odd[j];
			assert_int_equal(ks__id_valid(bad), 0);
		}
	}
	for (i = 0; i < 16; i++) {
		memset(rnd, 0, sizeof(rnd));
		assert_int_equal(sr_os_random(rnd, sizeof(rnd)), 0);
		if (ks__id_make(rnd, sizeof(rnd), id) == 0)
			assert_int_equal(ks__id_valid(id), 1);
	}
}

/* ---------------------------------------------------------------- */
/* Making API keys                                                    */
/* ---------------------------------------------------------------- */

static void
test_apikey_layout(void **state)
{
	char key[KS_APIKEY_LEN + 1], id[KS_ID_LEN + 1];

	(void)state;
	make_golden(key);
	assert_int_equal(strlen(key), KS_APIKEY_LEN);
	assert_memory_equal(key, "srk_", KS_APIKEY_PREFIX_LEN);
	assert_memory_equal(key + KS_APIKEY_PREFIX_LEN, GOLDEN_ID, KS_ID_LEN);
	assert_true(all_base62(
	    key + KS_APIKEY_PREFIX_LEN, KS_APIKEY_LEN - KS_APIKEY_PREFIX_LEN));
	memset(id, 'x', sizeof(id));
	assert_int_equal(parse_both(key, KS_APIKEY_LEN, id), 0);
	assert_string_equal(id, GOLDEN_ID);
	assert_string_equal(key, GOLDEN_KEY);
	sr_wipe(key, sizeof(key));
}

static void
test_apikey_checksum_zlib(void **state)
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	char key[KS_APIKEY_LEN + 1], want[KS_APIKEY_CHECK_LEN + 1];
	int k;

	(void)state;
	for (k = 0; k < 64; k++) {
		assert_int_equal(sr_os_random(rnd, sizeof(rnd)), 0);
		if (k == 0)
			fill_key(rnd, 37, 11);
		assert_int_equal(
		    ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), key), 0);
		zlib_checksum(key, want);
		want[KS_APIKEY_CHECK_LEN] = '\0';
		assert_string_equal(key + KS_APIKEY_LEN - 6, want);
	}
	sr_wipe(key, sizeof(key));
}

static void
test_apikey_make_errors(void **state)
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	char key[KS_APIKEY_LEN + 1];
	const char short_id[KS_ID_LEN + 1] = "short";
	size_t i;

	(void)state;
	fill_key(rnd, 37, 11);
	assert_int_equal(ks__apikey_make(NULL, rnd, sizeof(rnd), key), -EINVAL);
	assert_int_equal(
	    ks__apikey_make(short_id, rnd, sizeof(rnd), key), -EINVAL);
	assert_int_equal(
	    ks__apikey_make("0123456789A-", rnd, sizeof(rnd), key), -EINVAL);
	assert_int_equal(
	    ks__apikey_make("0123456789ABC", rnd, sizeof(rnd), key), -EINVAL);

	/* Random runs out: -EAGAIN, and nothing of the secret is left. */
	memset(key, 'x', sizeof(key));
	assert_int_equal(
	    ks__apikey_make(GOLDEN_ID, rnd, KS_APIKEY_SECRET_LEN, key),
	    -EAGAIN);
	for (i = 0; i < sizeof(key); i++)
		assert_int_equal(key[i], 0);
	memset(rnd, 0xff, sizeof(rnd));
	assert_int_equal(
	    ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), key), -EAGAIN);
	assert_int_equal(ks__apikey_make(GOLDEN_ID, NULL, 0, key), -EAGAIN);

	/* Exactly 42 usable bytes are enough. */
	memset(rnd, 1, sizeof(rnd));
	assert_int_equal(
	    ks__apikey_make(GOLDEN_ID, rnd, KS_APIKEY_SECRET_LEN, key), 0);
	assert_int_equal(parse_both(key, KS_APIKEY_LEN, NULL), 0);
	sr_wipe(key, sizeof(key));
}

static void
test_apikey_secret_differs(void **state)
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	char a[KS_APIKEY_LEN + 1], b[KS_APIKEY_LEN + 1];
	char keys[16][KS_APIKEY_LEN + 1], id[KS_ID_LEN + 1];
	size_t i, j, differ = 0;
	const size_t off = KS_APIKEY_PREFIX_LEN + KS_ID_LEN;

	(void)state;
	fill_key(rnd, 37, 11);
	assert_int_equal(ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), a), 0);
	fill_key(rnd, 101, 7);
	assert_int_equal(ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), b), 0);
	assert_memory_equal(a, b, off);
	for (i = off; i < off + KS_APIKEY_SECRET_LEN; i++)
		differ += a[i] != b[i];
	assert_true(differ >= 30);

	/* The same bytes give the same key. */
	fill_key(rnd, 37, 11);
	assert_int_equal(ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), b), 0);
	assert_string_equal(a, b);

	for (i = 0; i < 16; i++) {
		assert_int_equal(sr_os_random(rnd, sizeof(rnd)), 0);
		assert_int_equal(
		    ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), keys[i]), 0);
		assert_int_equal(parse_both(keys[i], KS_APIKEY_LEN, id), 0);
		assert_string_equal(id, GOLDEN_ID);
		for (j = 0; j < i; j++)
			assert_int_not_equal(
			    memcmp(keys[i] + off, keys[j] + off,
			        KS_APIKEY_SECRET_LEN),
			    0);
	}
	sr_wipe(a, sizeof(a));
	sr_wipe(b, sizeof(b));
	sr_wipe(keys, sizeof(keys));
}

/* ---------------------------------------------------------------- */
/* Parsing: errors the checksum catches                               */
/* ---------------------------------------------------------------- */

static void
test_parse_substitution(void **state)
{
	char key[KS_APIKEY_LEN + 1], bad[KS_APIKEY_LEN + 1];
	char id[KS_ID_LEN + 1];
	const char *p;
	size_t i, caught = 0;

	(void)state;
	make_golden(key);
	for (i = KS_APIKEY_PREFIX_LEN; i < KS_APIKEY_LEN; i++) {
		memcpy(bad, key, sizeof(bad));
		p = strchr(alphabet, key[i]);
		assert_non_null(p);
		bad[i] = p[1] != '\0' ? p[1] : alphabet[0];
		memset(id, 'x', sizeof(id));
		if (parse_both(bad, KS_APIKEY_LEN, id) == KS_EAPIKEY) {
			caught++;
			assert_memory_equal(
			    id, "\0\0\0\0\0\0\0\0\0\0\0\0", sizeof(id));
		}
	}
	assert_int_equal(caught, KS_APIKEY_LEN - KS_APIKEY_PREFIX_LEN);

	/* Control: with the checksum recomputed, the changed key is good. */
	for (i = KS_APIKEY_PREFIX_LEN; i < KS_APIKEY_LEN - 6; i++) {
		memcpy(bad, key, sizeof(bad));
		p = strchr(alphabet, key[i]);
		bad[i] = p[1] != '\0' ? p[1] : alphabet[0];
		zlib_checksum(bad, bad + KS_APIKEY_LEN - 6);
		assert_int_equal(parse_both(bad, KS_APIKEY_LEN, id), 0);
		assert_memory_equal(id, bad + KS_APIKEY_PREFIX_LEN, KS_ID_LEN);
	}
	sr_wipe(key, sizeof(key));
	sr_wipe(bad, sizeof(bad));
}

static void
test_parse_transposition(void **state)
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	char key[KS_APIKEY_LEN + 1], bad[KS_APIKEY_LEN + 1];
	char c;
	size_t i, tried = 0, caught = 0;
	int k;

	(void)state;
	for (k = 0; k < 8; k++) {
		if (k == 0)
			fill_key(rnd, 37, 11);
		else
			assert_int_equal(sr_os_random(rnd, sizeof(rnd)), 0);
		assert_int_equal(
		    ks__apikey_make(GOLDEN_ID, rnd, sizeof(rnd), key), 0);
		for (i = KS_APIKEY_PREFIX_LEN; i + 1 < KS_APIKEY_LEN; i++) {
			if (key[i] == key[i + 1])
				continue;
			memcpy(bad, key, sizeof(bad));
			c = bad[i];
			bad[i] = bad[i + 1];
			bad[i + 1] = c;
			tried++;
			if (parse_both(bad, KS_APIKEY_LEN, NULL) == KS_EAPIKEY)
				caught++;
		}
	}
	assert_true(tried > 8 * 50);
	assert_int_equal(caught, tried);
	sr_wipe(key, sizeof(key));
	sr_wipe(bad, sizeof(bad));
}

/* ---------------------------------------------------------------- */
/* Parsing: malformed keys                                            */
/* ---------------------------------------------------------------- */

static void
test_parse_malformed(void **state)
{
	char key[KS_APIKEY_LEN + 1], bad[KS_APIKEY_LEN + 2];
	char id[KS_ID_LEN + 1];
	static const char odd[] = "-_+/ .=\t\x80\xff";
	static const char *prefixes[] = { "SRK_", "srk-", "srx_", "sk_0" };
	size_t i, j;

	(void)state;
	make_golden(key);

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		memcpy(bad, key, sizeof(key));
		memcpy(bad, prefixes[i], KS_APIKEY_PREFIX_LEN);
		assert_int_equal(
		    parse_both(bad, KS_APIKEY_LEN, id), KS_EAPIKEY);
	}

	/* Lengths 63 and 65, a trailing newline, a leading space. */
	assert_int_equal(parse_both(key, KS_APIKEY_LEN - 1, id), KS_EAPIKEY);
	memcpy(bad, key, KS_APIKEY_LEN);
	bad[KS_APIKEY_LEN] = '0';
	bad[KS_APIKEY_LEN + 1] = '\0';
	assert_int_equal(parse_both(bad, KS_APIKEY_LEN + 1, id), KS_EAPIKEY);
	bad[KS_APIKEY_LEN] = '\n';
	assert_int_equal(parse_both(bad, KS_APIKEY_LEN + 1, id), KS_EAPIKEY);
	bad[0] = ' ';
	memcpy(bad + 1, key, KS_APIKEY_LEN);
	assert_int_equal(parse_both(bad, KS_APIKEY_LEN + 1, id), KS_EAPIKEY);

	/* A NUL or a non-base62 byte at every position after the prefix. */
	for (i = KS_APIKEY_PREFIX_LEN; i < KS_APIKEY_LEN; i++) {
		memcpy(bad, key, sizeof(key));
		bad[i] = '\0';
		assert_int_equal(
		    parse_both(bad, KS_APIKEY_LEN, id), KS_EAPIKEY);
		for (j = 0; j < sizeof(odd) - 1; j++) {
			bad[i] = odd[j];
			assert_int_equal(
			    parse_both(bad, KS_APIKEY_LEN, id), KS_EAPIKEY);
		}
	}

	/* The same with the checksum made to match: only the character
	 * check can refuse these. */
	for (i = KS_APIKEY_PREFIX_LEN; i < KS_APIKEY_LEN - 6; i++) {
		for (j = 0; j < sizeof(odd); j++) {
			memcpy(bad, key, sizeof(key));
			bad[i] = odd[j]; /* odd[sizeof(odd) - 1] is the NUL */
			zlib_checksum(bad, bad + KS_APIKEY_LEN - 6);
			assert_int_equal(
			    parse_both(bad, KS_APIKEY_LEN, id), KS_EAPIKEY);
		}
	}

	assert_int_equal(parse_both("", 0, id), KS_EAPIKEY);
	assert_int_equal(parse_both(NULL, 0, id), KS_EAPIKEY);
	assert_int_equal(parse_both(NULL, KS_APIKEY_LEN, id), KS_EAPIKEY);
	assert_int_equal(parse_both("srk_", 4, id), KS_EAPIKEY);
	sr_wipe(key, sizeof(key));
	sr_wipe(bad, sizeof(bad));
}

/* Keys in heap buffers of exactly their length: under AddressSanitizer a
 * read of key[len] would fail the test. */
static void
test_parse_no_overread(void **state)
{
	char key[KS_APIKEY_LEN + 1], id[KS_ID_LEN + 1];
	char *exact;
	size_t len;

	(void)state;
	make_golden(key);
	for (len = KS_APIKEY_LEN - 1; len <= KS_APIKEY_LEN; len++) {
		exact = malloc(len);
		assert_non_null(exact);
		memcpy(exact, key, len);
		assert_int_equal(parse_both(exact, len, id),
		    len == KS_APIKEY_LEN ? 0 : KS_EAPIKEY);
		sr_wipe(exact, len);
		free(exact);
	}
	assert_string_equal(id, GOLDEN_ID);
	sr_wipe(key, sizeof(key));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_known),
		cmocka_unit_test(test_id_rejection),
		cmocka_unit_test(test_id_short),
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_apikey_layout),
		cmocka_unit_test(test_apikey_checksum_zlib),
		cmocka_unit_test(test_apikey_make_errors),
		cmocka_unit_test(test_apikey_secret_differs),
		cmocka_unit_test(test_parse_substitution),
		cmocka_unit_test(test_parse_transposition),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_no_overread),
	};

	return cmocka_run_group_tests_name(
	    "keystore/apikey", tests, NULL, NULL);
}
