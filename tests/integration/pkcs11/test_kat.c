/*
 * tests/integration/pkcs11/test_kat.c: the known-answer vectors of
 * reference/devices-and-ceremonies.md section 5 and RFC 3394, computed
 * through the real SoftHSM2 module by the pkcs11 layer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include <mbedtls/base64.h>

#include "tests/integration/pkcs11/fixture.h"

static struct p11_fixture fx;
static struct p11_ctx *ctx;

static int
setup(void **state)
{
	char err[256];

	(void)state;
	p11_fixture_setup(&fx, "kat");
	if (p11_open(fx.uri, NULL, &ctx, err) != 0) {
		fprintf(stderr, "p11_open: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	p11_close(ctx);
	p11_fixture_teardown(&fx);
	return 0;
}

/* Azure DPS group derivation: base64(HMAC-SHA256(groupKey, regId)). */
static void
test_dps_group_derivation(void **state)
{
	const char *group = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG"
	                    "1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
	const char *reg = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6";
	unsigned char key[64], mac[32];
	unsigned char b64[64];
	size_t n = 0;
	struct p11_key *k = NULL;

	(void)state;
	assert_int_equal(mbedtls_base64_decode(key, sizeof(key), &n,
	                     (const unsigned char *)group, strlen(group)),
	    0);
	assert_int_equal(n, 64);
	assert_int_equal(p11_key_import(ctx, P11_KEY_HMAC, "dps-group", NULL, 0,
	                     key, n, P11_KEY_SESSION, &k),
	    0);
	assert_int_equal(p11_hmac_sha256(ctx, k, reg, strlen(reg), mac), 0);
	assert_int_equal(
	    mbedtls_base64_encode(b64, sizeof(b64), &n, mac, sizeof(mac)), 0);
	assert_string_equal(
	    (char *)b64, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
	assert_int_equal(p11_key_destroy(ctx, k), 0);
	p11_key_free(k);
}

/* SP 800-108 counter KDF, HMAC-SHA256, r = 32, L = 256. */
static void
test_sp800_108(void **state)
{
	unsigned char kin[32], out[32], want[32];
	struct p11_key *k = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kin); i++)
		kin[i] = (unsigned char)i;
	p11_fixture_hex("77211a0077656c5804c6194ba4f147e6"
	                "d1b271e59e58e8ad4941c2185a59b23d",
	    want, 32);
	assert_int_equal(p11_key_import(ctx, P11_KEY_HMAC, "kdk-kat", NULL, 0,
	                     kin, sizeof(kin), P11_KEY_SESSION, &k),
	    0);
	assert_int_equal(p11_kdf_sp800_108(ctx, k, "device-key", 10,
	                     "sn-007-888-abc", 14, out, sizeof(out)),
	    0);
	assert_memory_equal(out, want, 32);
	/* A different context must give a different key. */
	assert_int_equal(p11_kdf_sp800_108(ctx, k, "device-key", 10,
	                     "sn-007-888-abd", 14, out, sizeof(out)),
	    0);
	assert_memory_not_equal(out, want, 32);
	p11_key_destroy(ctx, k);
	p11_key_free(k);
}

/* Output longer than one block: blocks 1 and 2 with [L] = 512. */
static void
test_sp800_108_two_blocks(void **state)
{
	unsigned char kin[32], out[64], again[64];
	struct p11_key *k = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kin); i++)
		kin[i] = (unsigned char)(0xa0 + i);
	assert_int_equal(p11_key_import(ctx, P11_KEY_HMAC, "kdk-2", NULL, 0,
	                     kin, sizeof(kin), P11_KEY_SESSION, &k),
	    0);
	assert_int_equal(
	    p11_kdf_sp800_108(ctx, k, "app", 3, "ctx", 3, out, 64), 0);
	assert_int_equal(
	    p11_kdf_sp800_108(ctx, k, "app", 3, "ctx", 3, again, 64), 0);
	assert_memory_equal(out, again, 64);
	assert_memory_not_equal(out, out + 32, 32);
	/* [L] is part of the input: a 32-byte request is not a prefix. */
	assert_int_equal(
	    p11_kdf_sp800_108(ctx, k, "app", 3, "ctx", 3, again, 32), 0);
	assert_memory_not_equal(out, again, 32);
	assert_int_equal(
	    p11_kdf_sp800_108(ctx, k, "app", 3, "ctx", 3, out, 0), -EINVAL);
	p11_key_destroy(ctx, k);
	p11_key_free(k);
}

/* RFC 3394 section 4.3 and 4.6: 256-bit KEK, 128- and 256-bit data. */
static void
test_rfc3394(void **state)
{
	unsigned char kek[32], data[32], want[40], blob[48];
	struct sr_secret plain = { 0 };
	struct p11_key *k = NULL;
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < sizeof(kek); i++)
		kek[i] = (unsigned char)i;
	assert_int_equal(p11_key_import(ctx, P11_KEY_AES, "kek-kat", NULL, 0,
	                     kek, sizeof(kek), P11_KEY_SESSION, &k),
	    0);

	p11_fixture_hex("00112233445566778899aabbccddeeff", data, 16);
	p11_fixture_hex("64e8c3f9ce0f5ba263e9777905818a2a"
	                "93c8191e7d6e8ae7",
	    want, 24);
	assert_int_equal(p11_wrap(ctx, k, data, 16, blob, sizeof(blob), &n), 0);
	assert_int_equal(n, 24);
	assert_memory_equal(blob, want, 24);

	p11_fixture_hex("00112233445566778899aabbccddeeff"
	                "000102030405060708090a0b0c0d0e0f",
	    data, 32);
	p11_fixture_hex("28c9f404c4b810f4cbccb35cfb87f826"
	                "3f5786e2d80ed326cbc7f0e71a99f43b"
	                "fb988b9b7a02dd21",
	    want, 40);
	assert_int_equal(p11_wrap(ctx, k, data, 32, blob, sizeof(blob), &n), 0);
	assert_int_equal(n, 40);
	assert_memory_equal(blob, want, 40);

	assert_int_equal(p11_unwrap(ctx, k, want, 40, &plain), 0);
	assert_int_equal(sr_secret_len(&plain), 32);
	assert_memory_equal(sr_secret_bytes(&plain), data, 32);
	sr_secret_free(&plain);

	/* An altered blob fails its integrity check and returns nothing. */
	want[5] ^= 1;
	assert_int_equal(p11_unwrap(ctx, k, want, 40, &plain), P11_EINTEGRITY);
	assert_null(sr_secret_bytes(&plain));
	/* Lengths RFC 3394 cannot take without padding are refused here,
	 * never sent to the buggy 0x210A path. */
	assert_int_equal(
	    p11_wrap(ctx, k, data, 20, blob, sizeof(blob), &n), -EINVAL);
	p11_key_destroy(ctx, k);
	p11_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dps_group_derivation),
		cmocka_unit_test(test_sp800_108),
		cmocka_unit_test(test_sp800_108_two_blocks),
		cmocka_unit_test(test_rfc3394),
	};

	return cmocka_run_group_tests_name(
	    "pkcs11/kat", tests, setup, teardown);
}
