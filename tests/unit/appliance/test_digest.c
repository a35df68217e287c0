/*
 * tests/unit/appliance/test_digest.c: appliance/digest.c: SHA-256 from
 * libcrypto equals mbedTLS's for every length around the block edges and
 * every split of a two-part input, the FIPS 180-2 vectors hold, and with
 * libcrypto unable to hash (tests/unit/appliance/nolibcrypto.h) the
 * answers are still right, from the mbedTLS fallback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <openssl/evp.h>

#include "appliance/digest.h"
#include "lib/sr.h"
#include "tests/unit/appliance/nolibcrypto.h"

#define INPUT_MAX 4200

static uint8_t input[INPUT_MAX];

static void
fill_input(void)
{
	size_t i;

	for (i = 0; i < sizeof(input); i++)
		input[i] = (uint8_t)(i * 131u + 7u);
}

/* 0 when every length and split agrees with mbedTLS; else the length. */
static size_t
first_mismatch(void)
{
	static const size_t lens[] = { 0, 1, 3, 55, 56, 57, 63, 64, 65, 119,
		120, 127, 128, 129, 350, 1000, 4096, INPUT_MAX };
	uint8_t want[32], got[32];
	size_t i, cut;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		mbedtls_sha256(input, lens[i], want, 0);
		digest_sha256(input, lens[i], got);
		if (memcmp(want, got, 32) != 0)
			return lens[i] + 1;
		for (cut = 0; cut <= lens[i]; cut += 1 + lens[i] / 9) {
			digest_sha256_2(
			    input, cut, input + cut, lens[i] - cut, got);
			if (memcmp(want, got, 32) != 0)
				return lens[i] + 1;
		}
	}
	return 0;
}

static void
test_fips_vectors(void **state)
{
	static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223"
	                              "b00361a396177a9cb410ff61f20015ad";
	static const char empty_hex[] = "e3b0c44298fc1c149afbf4c8996fb924"
	                                "27ae41e4649b934ca495991b7852b855";
	uint8_t got[32];
	char hex[65];

	(void)state;
	digest_sha256("abc", 3, got);
	sr_hex_encode(hex, got, 32);
	assert_string_equal(hex, abc_hex);
	digest_sha256_2("a", 1, "bc", 2, got);
	sr_hex_encode(hex, got, 32);
	assert_string_equal(hex, abc_hex);
	digest_sha256(NULL, 0, got);
	sr_hex_encode(hex, got, 32);
	assert_string_equal(hex, empty_hex);
}

static void
test_matches_mbedtls(void **state)
{
	(void)state;
	assert_int_equal(first_mismatch(), 0);
}

/* The child of test_fallback_without_libcrypto (nolibcrypto.h). */
static int
fallback_child_main(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA2-256", NULL);

	if (md != NULL) {
		EVP_MD_free(md);
		return 3; /* the fault was not injected */
	}
	fill_input();
	return first_mismatch() == 0 ? 0 : 4;
}

static void
test_fallback_without_libcrypto(void **state)
{
	(void)state;
	nolibcrypto_run();
}

int
main(void)
{
	if (nolibcrypto_child())
		return fallback_child_main();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fallback_without_libcrypto),
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_matches_mbedtls),
	};

	fill_input();
	return cmocka_run_group_tests_name(
	    "appliance/digest", tests, NULL, NULL);
}
