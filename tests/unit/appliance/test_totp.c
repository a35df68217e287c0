/*
 * tests/unit/appliance/test_totp.c: appliance/totp.c: the RFC 4226
 * appendix D HOTP values and the RFC 6238 appendix B SHA-1 vectors (their
 * last 6 digits), the +-1 step window, replay refusal, malformed codes,
 * base32 both ways with its strictness, and the otpauth:// URI.
 *
 * The same program also serves tests/integration/appliance/
 * test_totp_oathtool.sh, which compares it with Debian's oathtool:
 *   test_totp --vectors FILE   checks every "BASE32 UNIXTIME CODE" line of
 *                              FILE (codes from oathtool) with totp_verify,
 *                              then that each is refused when replayed;
 *   test_totp --code BASE32 T  prints our code for time T.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/totp.h"

/* RFC 6238 appendix B: the SHA-1 seed "12345678901234567890". */
#define RFC_SEED "12345678901234567890"
#define RFC_SEED_B32 "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

static void
rfc_secret(struct sr_secret *s)
{
	assert_int_equal(sr_secret_set(s, RFC_SEED, 20), 0);
}

static void
test_hotp_rfc4226(void **state)
{
	static const char *const want[10] = { "755224", "287082", "359152",
		"969429", "338314", "254676", "287922", "162583", "399871",
		"520489" };
	struct sr_secret s = { 0 };
	char code[TOTP_DIGITS + 1];
	uint64_t i;

	(void)state;
	rfc_secret(&s);
	for (i = 0; i < 10; i++) {
		assert_int_equal(totp_code_at_step(&s, i, code), 0);
		assert_string_equal(code, want[i]);
	}
	sr_secret_free(&s);
}

static void
test_totp_rfc6238(void **state)
{
	static const struct {
		time_t t;
		uint64_t step;
		const char *code;
	} v[] = {
		{ 59, 1, "287082" },
		{ 1111111109, 0x23523EC, "081804" },
		{ 1111111111, 0x23523ED, "050471" },
		{ 1234567890, 0x273EF07, "005924" },
		{ 2000000000, 0x3F940AA, "279037" },
		{ 20000000000, 0x27BC86AA, "353130" },
	};
	struct sr_secret s = { 0 };
	char code[TOTP_DIGITS + 1];
	uint64_t accepted;
	size_t i;

	(void)state;
	rfc_secret(&s);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(totp_step(v[i].t), v[i].step);
		assert_int_equal(totp_code_at_step(&s, v[i].step, code), 0);
		assert_string_equal(code, v[i].code);
		assert_int_equal(
		    totp_verify(&s, v[i].code, v[i].t, 0, &accepted), 0);
		assert_int_equal(accepted, v[i].step);
	}
	sr_secret_free(&s);
}

static void
test_window_and_replay(void **state)
{
	struct sr_secret s = { 0 };
	char prev[7], cur[7], next[7], far[7];
	const time_t now = 1111111111;
	uint64_t step = totp_step(now), got;

	(void)state;
	rfc_secret(&s);
	assert_int_equal(totp_code_at_step(&s, step - 1, prev), 0);
	assert_int_equal(totp_code_at_step(&s, step, cur), 0);
	assert_int_equal(totp_code_at_step(&s, step + 1, next), 0);
	assert_int_equal(totp_code_at_step(&s, step + 2, far), 0);
	/* Each of the three steps is accepted, and says which it was. */
	assert_int_equal(totp_verify(&s, prev, now, 0, &got), 0);
	assert_int_equal(got, step - 1);
	assert_int_equal(totp_verify(&s, next, now, 0, &got), 0);
	assert_int_equal(got, step + 1);
	/* Two steps away is just wrong. */
	assert_int_equal(totp_verify(&s, far, now, 0, &got), APP_ETOTP);
	assert_int_equal(got, 0);
	/* Replay: the same code again, and an older one after a newer. */
	assert_int_equal(totp_verify(&s, cur, now, 0, &got), 0);
	assert_int_equal(got, step);
	assert_int_equal(
	    totp_verify(&s, cur, now + 5, step, &got), APP_ETOTPREPLAY);
	assert_int_equal(got, 0);
	assert_int_equal(
	    totp_verify(&s, prev, now, step, &got), APP_ETOTPREPLAY);
	/* A later code is still good after an earlier one was used. */
	assert_int_equal(totp_verify(&s, next, now, step, &got), 0);
	assert_int_equal(got, step + 1);
	assert_int_equal(
	    totp_verify(&s, next, now + 30, step + 1, &got), APP_ETOTPREPLAY);
	sr_secret_free(&s);
}

static void
test_malformed_codes(void **state)
{
	static const char *const bad[] = { "", "28708", "2870821", "28708a",
		" 287082", "287082 ", "-28708", "２８７０８２" };
	struct sr_secret s = { 0 }, empty = { 0 };
	char code[7];
	uint64_t got = 99;
	size_t i;

	(void)state;
	rfc_secret(&s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    totp_verify(&s, bad[i], 59, 0, &got), APP_ETOTP);
	assert_int_equal(totp_verify(&s, NULL, 59, 0, &got), APP_ETOTP);
	assert_int_equal(got, 0);
	/* The right code with a trailing byte is not the right code. */
	assert_int_equal(totp_verify(&s, "2870820", 59, 0, &got), APP_ETOTP);
	/* Step 0 has no previous step to look at (no underflow). */
	assert_int_equal(totp_code_at_step(&s, 0, code), 0);
	assert_int_equal(totp_verify(&s, code, 1, 0, &got), APP_ETOTPREPLAY);
	assert_int_equal(totp_step(-5), 0);
	/* An empty secret is unusable. */
	assert_int_equal(totp_code_at_step(&empty, 1, code), -EINVAL);
	assert_int_equal(totp_verify(&empty, "123456", 59, 0, &got), -EINVAL);
	sr_secret_free(&s);
}

static void
test_base32(void **state)
{
	static const char *const bad[] = { "", "G", "GEZ", "GEZDGN",
		"GEZDGNB=", "GEZDGNBV=", "GZ======", "GE=", "GE==", "GEZ1",
		"GEZD GNBV", "GEZDGNB8", "GEZDGNBVGY3TQOJQ!", "GF" };
	struct sr_secret s = { 0 };
	char out[TOTP_BASE32_MAX];
	size_t i;

	(void)state;
	/* RFC 4648 section 10 vectors, and the RFC 6238 seed. */
	assert_int_equal(
	    totp_base32_encode(out, sizeof(out), (const uint8_t *)"foobar", 6),
	    10);
	assert_string_equal(out, "MZXW6YTBOI");
	assert_int_equal(
	    totp_base32_encode(out, sizeof(out), (const uint8_t *)RFC_SEED, 20),
	    32);
	assert_string_equal(out, RFC_SEED_B32);
	assert_int_equal(
	    totp_base32_encode(out, 32, (const uint8_t *)RFC_SEED, 20),
	    -ENOSPC);
	assert_int_equal(totp_base32_decode(&s, RFC_SEED_B32), 0);
	assert_int_equal(sr_secret_len(&s), 20);
	assert_memory_equal(sr_secret_bytes(&s), RFC_SEED, 20);
	assert_int_equal(totp_base32_decode(&s, "mzxw6ytboi"), 0);
	assert_memory_equal(sr_secret_bytes(&s), "foobar", 6);
	assert_int_equal(totp_base32_decode(&s, "MZXW6YQ="), 0);
	assert_int_equal(sr_secret_len(&s), 4);
	assert_memory_equal(sr_secret_bytes(&s), "foob", 4);
	assert_int_equal(totp_base32_decode(&s, "MY======"), 0);
	assert_memory_equal(sr_secret_bytes(&s), "f", 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (totp_base32_decode(&s, bad[i]) != APP_EBASE32)
			fail_msg("'%s' decoded", bad[i]);
	/* Longer than TOTP_SECRET_MAX bytes. */
	memset(out, 'A', 104);
	out[104] = '\0';
	assert_int_equal(totp_base32_decode(&s, out), APP_EBASE32);
	sr_secret_free(&s);
}

static void
test_generate_round_trip(void **state)
{
	struct sr_secret a = { 0 }, b = { 0 }, back = { 0 };
	char text[TOTP_BASE32_MAX];

	(void)state;
	assert_int_equal(totp_secret_generate(&a), 0);
	assert_int_equal(totp_secret_generate(&b), 0);
	assert_int_equal(sr_secret_len(&a), TOTP_SECRET_BYTES);
	assert_false(sr_ct_equal(
	    sr_secret_bytes(&a), sr_secret_bytes(&b), TOTP_SECRET_BYTES));
	assert_int_equal(totp_base32_encode(text, sizeof(text),
	                     sr_secret_bytes(&a), sr_secret_len(&a)),
	    32);
	assert_int_equal(totp_base32_decode(&back, text), 0);
	assert_memory_equal(
	    sr_secret_bytes(&back), sr_secret_bytes(&a), TOTP_SECRET_BYTES);
	sr_secret_free(&a);
	sr_secret_free(&b);
	sr_secret_free(&back);
}

static void
test_uri(void **state)
{
	struct sr_secret s = { 0 };
	char uri[TOTP_URI_MAX];
	char account[300];

	(void)state;
	rfc_secret(&s);
	assert_true(totp_uri(uri, sizeof(uri), "alice@example.com", &s) > 0);
	assert_string_equal(uri,
	    "otpauth://totp/Strongroom:alice%40example.com?secret=" RFC_SEED_B32
	    "&issuer=Strongroom&algorithm=SHA1&digits=6&period=30");
	/* Blanks, '&', '?', ':', '/' and UTF-8 are escaped in the label. */
	assert_true(totp_uri(uri, sizeof(uri), "Zoë O'Neil&co ?:/", &s) > 0);
	assert_non_null(strstr(uri,
	    "totp/Strongroom:Zo%C3%AB%20O%27Neil%26co%20%3F%3A%2F?secret="));
	assert_int_equal(totp_uri(uri, 40, "alice", &s), -ENOSPC);
	assert_string_equal(uri, ""); /* nothing half-written kept */
	assert_int_equal(totp_uri(uri, sizeof(uri), "", &s), -EINVAL);
	memset(account, 'a', sizeof(account) - 1);
	account[sizeof(account) - 1] = '\0';
	assert_int_equal(totp_uri(uri, sizeof(uri), account, &s), -EINVAL);
	sr_secret_free(&s);
}

/* ---------------------------------------------------------------- */
/* The oathtool comparison's two helpers                              */
/* ---------------------------------------------------------------- */

static const char *vectors_path;

static void
test_oathtool_vectors(void **state)
{
	char b32[TOTP_BASE32_MAX], code[16], next[TOTP_DIGITS + 1];
	struct sr_secret s = { 0 };
	uint64_t got, again, want_step;
	long long t;
	size_t lines = 0;
	FILE *f;

	(void)state;
	f = fopen(vectors_path, "r");
	assert_non_null(f);
	while (fscanf(f, "%104s %lld %15s", b32, &t, code) == 3) {
		assert_int_equal(totp_base32_decode(&s, b32), 0);
		if (totp_verify(&s, code, (time_t)t, 0, &got) != 0)
			fail_msg(
			    "line %zu: %s at %lld refused", lines + 1, code, t);
		/* One code in a million repeats at the next step; then the
		 * later step is the one accepted (and remembered). */
		want_step = totp_step((time_t)t);
		assert_int_equal(totp_code_at_step(&s, want_step + 1, next), 0);
		if (strcmp(next, code) == 0)
			want_step++;
		if (got != want_step)
			fail_msg(
			    "line %zu: %s at %lld accepted at step %" PRIu64
			    ", not %" PRIu64,
			    lines + 1, code, t, got, want_step);
		assert_int_equal(totp_verify(&s, code, (time_t)t, got, &again),
		    APP_ETOTPREPLAY);
		lines++;
	}
	fclose(f);
	sr_secret_free(&s);
	print_message(
	    "%zu oathtool codes accepted, each refused on replay\n", lines);
	assert_true(lines > 0);
}

static int
print_code(const char *b32, const char *when)
{
	struct sr_secret s = { 0 };
	char code[TOTP_DIGITS + 1];
	int rc;

	rc = totp_base32_decode(&s, b32);
	if (rc == 0)
		rc =
		    totp_code_at_step(&s, totp_step((time_t)atoll(when)), code);
	sr_secret_free(&s);
	if (rc != 0) {
		fprintf(stderr, "test_totp: %s\n", sr_strerror(rc));
		return 1;
	}
	printf("%s\n", code);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hotp_rfc4226),
		cmocka_unit_test(test_totp_rfc6238),
		cmocka_unit_test(test_window_and_replay),
		cmocka_unit_test(test_malformed_codes),
		cmocka_unit_test(test_base32),
		cmocka_unit_test(test_generate_round_trip),
		cmocka_unit_test(test_uri),
	};
	const struct CMUnitTest oathtool[] = {
		cmocka_unit_test(test_oathtool_vectors),
	};

	if (argc == 3 && strcmp(argv[1], "--vectors") == 0) {
		vectors_path = argv[2];
		return cmocka_run_group_tests_name(
		    "appliance/totp-oathtool", oathtool, NULL, NULL);
	}
	if (argc == 4 && strcmp(argv[1], "--code") == 0)
		return print_code(argv[2], argv[3]);
	return cmocka_run_group_tests_name("appliance/totp", tests, NULL, NULL);
}
