/*
 * tests/integration/pkcs11/test_ops.c: the pkcs11 layer against the real
 * SoftHSM2 module: opening by URI (and each way that fails), token keys and
 * their attributes, ECDSA signatures verified with mbedTLS, wrap/unwrap,
 * random, find by label, id and URI, destroy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <time.h>

#include <errno.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>

#include "tests/integration/pkcs11/fixture.h"

static struct p11_fixture fx;
static struct p11_ctx *ctx;

static int
setup(void **state)
{
	(void)state;
	p11_fixture_setup(&fx, "ops");
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

static void
test_open_reports_token(void **state)
{
	struct p11_token_info ti;
	char err[256];

	(void)state;
	assert_int_equal(p11_open(fx.uri, NULL, &ctx, err), 0);
	assert_int_equal(p11_token_info(ctx, &ti), 0);
	assert_string_equal(ti.token_label, "sr-test");
	assert_string_equal(ti.token_manufacturer, "SoftHSM project");
	assert_true(p11_has_mech(ctx, P11_MECH_SHA256_HMAC));
	assert_true(p11_has_mech(ctx, P11_MECH_AES_KEY_WRAP));
	/* SoftHSM2 2.6.1 has neither; the layer falls back for both. */
	assert_false(p11_has_mech(ctx, P11_MECH_ECDSA_SHA256));
	assert_false(p11_has_mech(ctx, P11_MECH_SP800_108_COUNTER_KDF));
}

static void
test_open_failures(void **state)
{
	char uri[P11_URI_PATH_MAX + 600], err[256];
	struct p11_ctx *c = NULL;
	struct p11_key *k = NULL;
	const char *pin = strstr(fx.uri, "&pin-source=");
	struct p11_options need_kdf = { .required_mechs = P11_MECHS_KEYSTORE |
		    (1u << P11_MECH_SP800_108_COUNTER_KDF) };

	(void)state;
	assert_int_equal(
	    p11_open("pkcs11:token=sr-test;slot-id=x", NULL, &c, err),
	    P11_EURI);
	assert_non_null(strstr(err, "slot-id"));
	assert_null(c);

	snprintf(uri, sizeof(uri), "pkcs11:token=nope?module-path=%s%s",
	    P11_SOFTHSM_DEFAULT_MODULE, pin);
	assert_int_equal(p11_open(uri, NULL, &c, err), P11_ETOKEN);
	assert_non_null(strstr(err, "nope"));

	snprintf(uri, sizeof(uri),
	    "pkcs11:token=sr-test?module-path=/nonexistent/lib.so%s", pin);
	assert_int_equal(p11_open(uri, NULL, &c, err), P11_EMODULE);
	assert_non_null(strstr(err, "/nonexistent/lib.so"));

	/* A library that is not a PKCS#11 module. */
	snprintf(uri, sizeof(uri),
	    "pkcs11:token=sr-test?module-path=/lib/x86_64-linux-gnu/libz.so.1");
	assert_int_equal(p11_open(uri, NULL, &c, err), P11_EMODULE);
	assert_non_null(strstr(err, "C_GetFunctionList"));

	snprintf(uri, sizeof(uri),
	    "pkcs11:token=sr-test?module-path=%s&pin-value=wrong-pin",
	    P11_SOFTHSM_DEFAULT_MODULE);
	assert_int_equal(p11_open(uri, NULL, &c, err), P11_EPIN);
	assert_null(strstr(err, "wrong-pin"));

	snprintf(uri, sizeof(uri),
	    "pkcs11:token=sr-test?module-path=%s&pin-source=file:/nonexistent",
	    P11_SOFTHSM_DEFAULT_MODULE);
	assert_int_equal(p11_open(uri, NULL, &c, err), P11_EPIN);

	/* Slot 0 is never assumed: a URI must name the token. */
	snprintf(uri, sizeof(uri), "pkcs11:?module-path=%s",
	    P11_SOFTHSM_DEFAULT_MODULE);
	assert_int_equal(p11_open(uri, NULL, &c, err), P11_EURI);

	/* Without a PIN the token opens, but a private token key cannot be
	 * made. */
	snprintf(uri, sizeof(uri), "pkcs11:token=sr-test?module-path=%s",
	    P11_SOFTHSM_DEFAULT_MODULE);
	assert_int_equal(p11_open(uri, NULL, &c, err), 0);
	assert_int_equal(p11_key_generate(c, P11_KEY_AES, "no-login", NULL, 0,
	                     32, P11_KEY_TOKEN, &k),
	    P11_EPIN);
	assert_null(k);
	p11_close(c);
	c = NULL;

	/* A required mechanism the module lacks is named. */
	assert_int_equal(p11_open(fx.uri, &need_kdf, &c, err), P11_EMECH);
	assert_non_null(strstr(err, "CKM_SP800_108_COUNTER_KDF"));
	assert_null(c);
}

static void
test_ecdsa_verifies(void **state)
{
	uint8_t pub[65], sig[64], hash[32];
	const char *msg = "header.payload";
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
	mbedtls_mpi r, s;
	struct p11_key *k = NULL;

	(void)state;
	assert_int_equal(p11_key_generate(ctx, P11_KEY_EC_P256, "jwt-sign-1",
	                     "\x01", 1, 0, P11_KEY_TOKEN, &k),
	    0);
	assert_int_equal(p11_ec_public_get(ctx, k, pub), 0);
	assert_int_equal(pub[0], 0x04);
	assert_int_equal(p11_ecdsa_p256_sign(ctx, k, msg, strlen(msg), sig), 0);

	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	assert_int_equal(
	    mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1), 0);
	assert_int_equal(mbedtls_ecp_point_read_binary(&grp, &q, pub, 65), 0);
	assert_int_equal(mbedtls_mpi_read_binary(&r, sig, 32), 0);
	assert_int_equal(mbedtls_mpi_read_binary(&s, sig + 32, 32), 0);
	assert_int_equal(
	    mbedtls_sha256((const unsigned char *)msg, strlen(msg), hash, 0),
	    0);
	assert_int_equal(mbedtls_ecdsa_verify(&grp, hash, 32, &q, &r, &s), 0);
	/* A changed message must not verify. */
	hash[0] ^= 1;
	assert_int_not_equal(
	    mbedtls_ecdsa_verify(&grp, hash, 32, &q, &r, &s), 0);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_group_free(&grp);
	p11_key_free(k);
}

static void
test_token_keys_find_and_destroy(void **state)
{
	struct p11_key *k = NULL, *f = NULL, *dup = NULL;
	uint8_t mac1[32], mac2[32], id[2] = { 0xbe, 0xef };
	char uri[300], err[P11_URI_ERR_MAX];

	(void)state;
	assert_int_equal(p11_key_generate(ctx, P11_KEY_HMAC, "root-kdk-v1", id,
	                     2, 32, P11_KEY_TOKEN, &k),
	    0);
	/* A second token key with the same label is refused. */
	assert_int_equal(p11_key_generate(ctx, P11_KEY_HMAC, "root-kdk-v1",
	                     NULL, 0, 32, P11_KEY_TOKEN, &dup),
	    P11_EEXISTS);
	assert_null(dup);
	/* HMAC keys shorter than SHA-256's output are refused up front. */
	assert_int_equal(p11_key_generate(ctx, P11_KEY_HMAC, "short", NULL, 0,
	                     16, P11_KEY_TOKEN, &dup),
	    P11_EKEY);

	assert_int_equal(p11_hmac_sha256(ctx, k, "abc", 3, mac1), 0);
	assert_int_equal(
	    p11_key_find(ctx, P11_KEY_HMAC, "root-kdk-v1", NULL, 0, &f), 0);
	assert_int_equal(p11_hmac_sha256(ctx, f, "abc", 3, mac2), 0);
	assert_memory_equal(mac1, mac2, 32);
	p11_key_free(f);
	/* SoftHSM2 2.6.1 has no native SP 800-108: said so, not faked. */
	assert_int_equal(p11_key_derive_sp800_108(ctx, k, "l", 1, "c", 1,
	                     P11_KEY_AES, "derived", 32, P11_KEY_SESSION, &f),
	    P11_EMECH);
	assert_int_equal(p11_key_find(ctx, P11_KEY_HMAC, NULL, id, 2, &f), 0);
	p11_key_free(f);
	snprintf(uri, sizeof(uri),
	    "pkcs11:object=root-kdk-v1;id=%%BE%%EF;type=secret-key");
	assert_int_equal(p11_key_find_uri(ctx, P11_KEY_HMAC, uri, &f, err), 0);
	p11_key_free(f);
	assert_int_equal(p11_key_find_uri(ctx, P11_KEY_HMAC,
	                     "pkcs11:object=root-kdk-v1;type=private", &f, err),
	    P11_EURI);
	/* The wrong kind under the same label is not a match. */
	assert_int_equal(
	    p11_key_find(ctx, P11_KEY_AES, "root-kdk-v1", NULL, 0, &f),
	    P11_ENOTFOUND);

	assert_int_equal(p11_key_destroy(ctx, k), 0);
	assert_int_equal(
	    p11_key_find(ctx, P11_KEY_HMAC, "root-kdk-v1", NULL, 0, &f),
	    P11_ENOTFOUND);
	assert_int_equal(
	    p11_hmac_sha256(ctx, k, "abc", 3, mac1), P11_ENOTFOUND);
	p11_key_free(k);
}

static void
test_wrap_roundtrip_token_kek(void **state)
{
	uint8_t dek[32], blob[40], blob2[40];
	struct sr_secret out = { 0 };
	struct p11_key *kek = NULL, *other = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(p11_key_generate(ctx, P11_KEY_AES, "root-kek-v1", NULL,
	                     0, 32, P11_KEY_TOKEN, &kek),
	    0);
	assert_int_equal(p11_key_generate(ctx, P11_KEY_AES, "root-kek-v2", NULL,
	                     0, 32, P11_KEY_TOKEN, &other),
	    0);
	assert_int_equal(p11_random(ctx, dek, sizeof(dek)), 0);
	assert_int_equal(
	    p11_wrap(ctx, kek, dek, 32, blob, sizeof(blob), &n), 0);
	assert_int_equal(n, 40);
	/* RFC 3394 is deterministic. */
	assert_int_equal(
	    p11_wrap(ctx, kek, dek, 32, blob2, sizeof(blob2), &n), 0);
	assert_memory_equal(blob, blob2, 40);
	assert_int_equal(p11_unwrap(ctx, kek, blob, 40, &out), 0);
	assert_memory_equal(sr_secret_bytes(&out), dek, 32);
	sr_secret_free(&out);
	/* Wrapped under another key: integrity failure, nothing returned. */
	assert_int_equal(
	    p11_unwrap(ctx, other, blob, 40, &out), P11_EINTEGRITY);
	assert_int_equal(p11_unwrap(ctx, kek, blob, 39, &out), -EINVAL);
	assert_int_equal(p11_wrap(ctx, kek, dek, 32, blob, 39, &n), -ENOSPC);
	/* Using a key of the wrong kind is a contract error. */
	assert_int_equal(p11_hmac_sha256(ctx, kek, "x", 1, blob), -EINVAL);
	p11_key_free(kek);
	p11_key_free(other);
}

static void
test_random(void **state)
{
	uint8_t a[32], b[32], big[65537];

	(void)state;
	assert_int_equal(p11_random(ctx, a, sizeof(a)), 0);
	assert_int_equal(p11_random(ctx, b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(p11_random(ctx, big, 0), -EINVAL);
	assert_int_equal(p11_random(ctx, big, sizeof(big)), -EINVAL);
}

static void
test_rv_translation(void **state)
{
	(void)state;
	assert_int_equal(p11_rv_to_error(0), 0);
	assert_int_equal(p11_rv_to_error(0x30), P11_EDEVICE);
	assert_int_equal(p11_rv_to_error(0xB3), P11_ESESSION);
	assert_int_equal(p11_rv_to_error(0xA0), P11_EPIN);
	assert_int_equal(p11_rv_to_error(0x40), P11_EINTEGRITY);
	assert_int_equal(p11_rv_to_error(0x12345), P11_EGENERAL);
	assert_string_equal(p11_rv_name(0x30), "CKR_DEVICE_ERROR");
	assert_string_equal(p11_rv_name(0x12345), "CKR_0x12345");
}

/* The timing hook hears every operation, with its duration, and nothing
 * once it is turned off. */
struct timing_seen {
	atomic_uint calls;
	atomic_ullong usec;
};

static void
timing_note(void *arg, uint64_t usec)
{
	struct timing_seen *t = arg;

	atomic_fetch_add(&t->calls, 1);
	atomic_fetch_add(&t->usec, usec);
}

static void
test_timing_hook(void **state)
{
	struct timing_seen t = { 0, 0 };
	uint8_t buf[32];
	struct timespec t0, t1;
	uint64_t wall;

	(void)state;
	p11_set_timing(ctx, timing_note, &t);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(p11_random(ctx, buf, sizeof(buf)), 0);
	assert_int_equal(p11_random(ctx, buf, sizeof(buf)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	wall = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u +
	    (uint64_t)(t1.tv_nsec - t0.tv_nsec) / 1000u;
	assert_int_equal(atomic_load(&t.calls), 2);
	assert_true(atomic_load(&t.usec) <= wall);
	p11_set_timing(ctx, NULL, NULL);
	assert_int_equal(p11_random(ctx, buf, sizeof(buf)), 0);
	assert_int_equal(atomic_load(&t.calls), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* Failures first: login state is per process, so a wrong PIN is
		 * only checked while no context is logged in. */
		cmocka_unit_test(test_open_failures),
		cmocka_unit_test(test_open_reports_token),
		cmocka_unit_test(test_ecdsa_verifies),
		cmocka_unit_test(test_token_keys_find_and_destroy),
		cmocka_unit_test(test_wrap_roundtrip_token_kek),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_rv_translation),
		cmocka_unit_test(test_timing_hook),
	};

	return cmocka_run_group_tests_name(
	    "pkcs11/ops", tests, setup, teardown);
}
