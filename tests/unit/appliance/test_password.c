/*
 * tests/unit/appliance/test_password.c: appliance/password.c: a hash with
 * the documented defaults (m=64 MiB, t=3, p=1) verifies and is a PHC
 * string with those parameters; wrong, empty and over-long passwords get
 * their distinct codes; salts differ per hash; a hash from libargon2's own
 * reference vector (RFC 9106 style PHC) verifies; malformed and
 * too-costly stored strings are refused before any hashing; the dummy
 * verify always refuses; pw_needs_rehash. Most cases use small costs
 * (pw_hash_with) to keep the test quick; the defaults are exercised once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/password.h"
#include "lib/sr.h"

static const struct pw_params small = { 64, 1, 1 };

static void
test_default_parameters(void **state)
{
	char phc[PW_PHC_MAX];

	(void)state;
	assert_int_equal(pw_hash(phc, "correct horse", 13), 0);
	assert_true(strncmp(phc, "$argon2id$v=19$m=65536,t=3,p=1$", 31) == 0);
	assert_int_equal(pw_verify(phc, "correct horse", 13), 0);
	assert_int_equal(pw_verify(phc, "correct horsf", 13), APP_EPWMISMATCH);
	assert_int_equal(pw_verify(phc, "correct hors", 12), APP_EPWMISMATCH);
	assert_int_equal(pw_needs_rehash(phc), 0);
}

static void
test_salts_differ(void **state)
{
	char a[PW_PHC_MAX], b[PW_PHC_MAX];

	(void)state;
	assert_int_equal(pw_hash_with(a, "same", 4, &small), 0);
	assert_int_equal(pw_hash_with(b, "same", 4, &small), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(pw_verify(a, "same", 4), 0);
	assert_int_equal(pw_verify(b, "same", 4), 0);
	/* Small parameters are not the defaults: re-hash at next login. */
	assert_int_equal(pw_needs_rehash(a), 1);
}

static void
test_lengths(void **state)
{
	char phc[PW_PHC_MAX], *big;

	(void)state;
	big = malloc(PW_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, 'p', PW_MAX_BYTES + 1);
	assert_int_equal(pw_hash_with(phc, "", 0, &small), APP_EPWEMPTY);
	assert_string_equal(phc, "");
	assert_int_equal(
	    pw_hash_with(phc, big, PW_MAX_BYTES + 1, &small), APP_EPWLONG);
	/* Exactly the limit is fine, and binary bytes are just bytes. */
	assert_int_equal(pw_hash_with(phc, big, PW_MAX_BYTES, &small), 0);
	assert_int_equal(pw_verify(phc, big, PW_MAX_BYTES), 0);
	assert_int_equal(pw_verify(phc, big, 0), APP_EPWEMPTY);
	assert_int_equal(pw_verify(phc, big, PW_MAX_BYTES + 1), APP_EPWLONG);
	assert_int_equal(pw_hash_with(phc, "a\0b", 3, &small), 0);
	assert_int_equal(pw_verify(phc, "a\0b", 3), 0);
	assert_int_equal(pw_verify(phc, "a\0c", 3), APP_EPWMISMATCH);
	assert_int_equal(pw_verify(phc, "a", 1), APP_EPWMISMATCH);
	free(big);
}

static void
test_reference_hash(void **state)
{
	/* Made by the argon2 command-line tool of the reference
	 * implementation: echo -n password | argon2 somesalt -id -t 2
	 * -k 65536 -p 1 -l 32 (its test.sh expectation). */
	static const char ref[] =
	    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ"
	    "$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

	(void)state;
	assert_int_equal(pw_verify(ref, "password", 8), 0);
	assert_int_equal(pw_verify(ref, "Password", 8), APP_EPWMISMATCH);
	assert_int_equal(pw_needs_rehash(ref), 1);
}

static void
test_bad_stored_strings(void **state)
{
	static const char *const bad[] = {
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2d$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=64,t=0,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=4,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		/* Costs a stored string must not impose: 2 GiB, 65 passes,
		 * 17 lanes, a number past 32 bits. */
		"$argon2id$v=19$m=2097152,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=64,t=65,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=256,t=1,p=17$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=4294967360,t=1,p=1$c29tZXNhbHQ$aGFzaA",
		/* Well-formed head, broken tail. */
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$aGFzaA",
	};
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = pw_verify(bad[i], "password", 8);
		if (rc != APP_EPWHASH)
			fail_msg("'%s': %s", bad[i], sr_errname(rc));
		assert_int_equal(pw_needs_rehash(bad[i]), 1);
	}
	assert_int_equal(pw_verify(NULL, "password", 8), APP_EPWHASH);
	assert_int_equal(pw_needs_rehash(NULL), 1);
}

static void
test_bad_parameters(void **state)
{
	static const struct pw_params bad[] = {
		{ 64, 0, 1 },
		{ 64, 1, 0 },
		{ 7, 1, 1 },
		{ 64, 1, 17 },
		{ 2u * 1024 * 1024, 1, 1 },
		{ 64, 65, 1 },
	};
	char phc[PW_PHC_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pw_hash_with(phc, "x", 1, &bad[i]), -EINVAL);
}

static void
test_dummy_verify(void **state)
{
	(void)state;
	assert_int_equal(pw_verify_dummy("anything", 8), APP_EPWMISMATCH);
	assert_int_equal(pw_verify_dummy("anything else", 13), APP_EPWMISMATCH);
	assert_int_equal(pw_verify_dummy("", 0), APP_EPWEMPTY);
	assert_int_equal(pw_verify_dummy("x", PW_MAX_BYTES + 1), APP_EPWLONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_parameters),
		cmocka_unit_test(test_salts_differ),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_reference_hash),
		cmocka_unit_test(test_bad_stored_strings),
		cmocka_unit_test(test_bad_parameters),
		cmocka_unit_test(test_dummy_verify),
	};

	return cmocka_run_group_tests_name(
	    "appliance/password", tests, NULL, NULL);
}
