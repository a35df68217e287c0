/*
 * tests/unit/appliance/test_tls_x25519.c: the export of an X25519 key's
 * public half that mbedTLS's TLS 1.3 server makes, as strongroomd is linked
 * (-Wl,--wrap=psa_export_public_key, appliance/tls_x25519.c): byte for byte
 * what mbedTLS's own export gives, for every kind of key, and what a peer
 * needs (both sides of an agreement reach the same secret with it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <psa/crypto.h>

#include "appliance/internal.h"

psa_status_t __real_psa_export_public_key(mbedtls_svc_key_id_t key,
    uint8_t *data, size_t data_size, size_t *data_length);

static mbedtls_svc_key_id_t
make_key(psa_key_type_t type, size_t bits, psa_key_usage_t usage,
    psa_algorithm_t alg)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	mbedtls_svc_key_id_t k;

	psa_set_key_usage_flags(&a, usage);
	psa_set_key_algorithm(&a, alg);
	psa_set_key_type(&a, type);
	psa_set_key_bits(&a, bits);
	assert_int_equal(psa_generate_key(&a, &k), PSA_SUCCESS);
	return k;
}

/* The wrapped export (what mbedTLS calls) against the library's own. */
static void
assert_same_export(mbedtls_svc_key_id_t k)
{
	uint8_t fast[PSA_EXPORT_PUBLIC_KEY_MAX_SIZE];
	uint8_t slow[PSA_EXPORT_PUBLIC_KEY_MAX_SIZE];
	size_t nf = 0, ns = 0;

	assert_int_equal(
	    psa_export_public_key(k, fast, sizeof(fast), &nf), PSA_SUCCESS);
	assert_int_equal(
	    __real_psa_export_public_key(k, slow, sizeof(slow), &ns),
	    PSA_SUCCESS);
	assert_int_equal(nf, ns);
	assert_memory_equal(fast, slow, ns);
}

static void
test_x25519_ecdh_keys(void **state)
{
	const psa_key_type_t x =
	    PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY);
	mbedtls_svc_key_id_t k, peer;
	uint8_t pk[32], ppk[32], s1[32], s2[32];
	size_t n;
	int i;

	(void)state;
	assert_int_equal(tls_x25519_selftest(), 0);
	for (i = 0; i < 64; i++) {
		k = make_key(x, 255, PSA_KEY_USAGE_DERIVE, PSA_ALG_ECDH);
		assert_same_export(k);
		psa_destroy_key(k);
	}
	/* A TLS exchange's two ends agree through the exported halves. */
	k = make_key(x, 255, PSA_KEY_USAGE_DERIVE, PSA_ALG_ECDH);
	peer = make_key(x, 255, PSA_KEY_USAGE_DERIVE, PSA_ALG_ECDH);
	assert_int_equal(psa_export_public_key(k, pk, sizeof(pk), &n), 0);
	assert_int_equal(n, 32);
	assert_int_equal(psa_export_public_key(peer, ppk, sizeof(ppk), &n), 0);
	assert_int_equal(
	    psa_raw_key_agreement(PSA_ALG_ECDH, k, ppk, 32, s1, sizeof(s1), &n),
	    PSA_SUCCESS);
	assert_int_equal(psa_raw_key_agreement(
	                     PSA_ALG_ECDH, peer, pk, 32, s2, sizeof(s2), &n),
	    PSA_SUCCESS);
	assert_memory_equal(s1, s2, 32);
	psa_destroy_key(k);
	psa_destroy_key(peer);
}

/* Keys the fast path must leave to mbedTLS: not allowed to agree, not
 * X25519, and an output buffer too small (the library's own error). */
static void
test_other_keys(void **state)
{
	const psa_key_type_t x =
	    PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY);
	mbedtls_svc_key_id_t k;
	uint8_t small[16];
	size_t n = 0;

	(void)state;
	k = make_key(x, 255, PSA_KEY_USAGE_EXPORT, PSA_ALG_ECDH);
	assert_same_export(k);
	psa_destroy_key(k);
	k = make_key(PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1), 256,
	    PSA_KEY_USAGE_DERIVE, PSA_ALG_ECDH);
	assert_same_export(k);
	psa_destroy_key(k);
	k = make_key(x, 255, PSA_KEY_USAGE_DERIVE, PSA_ALG_ECDH);
	assert_int_equal(psa_export_public_key(k, small, sizeof(small), &n),
	    PSA_ERROR_BUFFER_TOO_SMALL);
	psa_destroy_key(k);
	assert_int_not_equal(
	    psa_export_public_key(
	        mbedtls_svc_key_id_make(0, 0x7ffe), small, sizeof(small), &n),
	    PSA_SUCCESS);
}

static int
setup(void **state)
{
	(void)state;
	return psa_crypto_init() == PSA_SUCCESS ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	mbedtls_psa_crypto_free();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x25519_ecdh_keys),
		cmocka_unit_test(test_other_keys),
	};

	return cmocka_run_group_tests_name(
	    "appliance/tls_x25519", tests, setup, teardown);
}
