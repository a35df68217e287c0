/*
 * tests/unit/appliance/test_tls_ecdsa.c: the TLS server key's ECDSA
 * signatures as strongroomd is linked (-Wl,--wrap=mbedtls_pk_sign_ext and
 * mbedtls_pk_sign, appliance/tls_ecdsa.c): an attached key's signatures
 * come from libcrypto and verify with mbedTLS; every key, digest or
 * buffer that is not ours goes to mbedTLS unchanged.
 *
 * mbedTLS signs deterministically (RFC 6979: the same digest gives the
 * same signature), libcrypto with a random nonce, so two signatures of one
 * digest tell which library made them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <psa/crypto.h>

#include "appliance/internal.h"

int __real_mbedtls_pk_sign_ext(mbedtls_pk_type_t pk_type,
    mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len,
    int (*f_rng)(void *, unsigned char *, size_t), void *p_rng);

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;

static void
make_ec_key(mbedtls_pk_context *pk, mbedtls_ecp_group_id curve)
{
	mbedtls_pk_init(pk);
	assert_int_equal(
	    mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)),
	    0);
	assert_int_equal(mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(*pk),
	                     mbedtls_ctr_drbg_random, &drbg),
	    0);
}

/* A signature as TLS 1.3's CertificateVerify asks for it. */
static size_t
sign13(mbedtls_pk_context *pk, mbedtls_md_type_t md, const uint8_t *hash,
    size_t hash_len, uint8_t *sig, size_t cap)
{
	size_t n = 0;

	assert_int_equal(
	    mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, pk, md, hash, hash_len, sig,
	        cap, &n, mbedtls_ctr_drbg_random, &drbg),
	    0);
	assert_true(n > 0 && n <= cap);
	assert_int_equal(mbedtls_pk_verify(pk, md, hash, hash_len, sig, n), 0);
	return n;
}

/* 1 when two signatures of one digest are byte for byte the same. */
static int
same_twice(mbedtls_pk_context *pk, mbedtls_md_type_t md, size_t hash_len)
{
	uint8_t hash[64], a[MBEDTLS_ECDSA_MAX_LEN], b[MBEDTLS_ECDSA_MAX_LEN];
	size_t na, nb;

	memset(hash, 0x5a, sizeof(hash));
	na = sign13(pk, md, hash, hash_len, a, sizeof(a));
	nb = sign13(pk, md, hash, hash_len, b, sizeof(b));
	return na == nb && memcmp(a, b, na) == 0;
}

static void
test_attached_key_signs_by_libcrypto(void **state)
{
	mbedtls_pk_context pk;
	uint8_t hash[32] = { 1, 2, 3 }, sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t n = 0;
	int i;

	(void)state;
	make_ec_key(&pk, MBEDTLS_ECP_DP_SECP256R1);
	assert_true(same_twice(&pk, MBEDTLS_MD_SHA256, 32)); /* mbedTLS */
	assert_int_equal(tls_ecdsa_attach(&pk), 0);
	assert_false(same_twice(&pk, MBEDTLS_MD_SHA256, 32)); /* libcrypto */
	for (i = 0; i < 64; i++) {
		hash[0] = (uint8_t)i;
		sign13(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig,
		    sizeof(sig));
	}
	/* TLS 1.2's ServerKeyExchange goes through mbedtls_pk_sign. */
	assert_int_equal(
	    mbedtls_pk_sign(&pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig,
	        sizeof(sig), &n, mbedtls_ctr_drbg_random, &drbg),
	    0);
	assert_int_equal(
	    mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, hash, 32, sig, n), 0);
	/* Attaching again replaces, never duplicates. */
	assert_int_equal(tls_ecdsa_attach(&pk), 0);
	assert_false(same_twice(&pk, MBEDTLS_MD_SHA256, 32));
	tls_ecdsa_detach(&pk);
	assert_true(same_twice(&pk, MBEDTLS_MD_SHA256, 32));
	mbedtls_pk_free(&pk);
}

/* P-384 with SHA-384, and P-256 with a longer digest (TLS 1.2 allows it):
 * both libraries truncate the digest the same way (SEC 1). */
static void
test_other_curves_and_digests(void **state)
{
	mbedtls_pk_context p384, p256;

	(void)state;
	make_ec_key(&p384, MBEDTLS_ECP_DP_SECP384R1);
	make_ec_key(&p256, MBEDTLS_ECP_DP_SECP256R1);
	assert_int_equal(tls_ecdsa_attach(&p384), 0);
	assert_int_equal(tls_ecdsa_attach(&p256), 0);
	assert_false(same_twice(&p384, MBEDTLS_MD_SHA384, 48));
	assert_false(same_twice(&p256, MBEDTLS_MD_SHA384, 48));
	assert_false(same_twice(&p256, MBEDTLS_MD_SHA512, 64));
	tls_ecdsa_detach(&p384);
	tls_ecdsa_detach(&p256);
	mbedtls_pk_free(&p384);
	mbedtls_pk_free(&p256);
}

/* What is not ours goes to mbedTLS: another key, a digest whose length
 * is not its algorithm's, no algorithm at all, a buffer too small. */
static void
test_everything_else_goes_to_mbedtls(void **state)
{
	mbedtls_pk_context ours, other;
	uint8_t hash[32] = { 9 }, sig[MBEDTLS_ECDSA_MAX_LEN], small[16];
	uint8_t ref[MBEDTLS_ECDSA_MAX_LEN];
	size_t n = 0, nr = 0;

	(void)state;
	make_ec_key(&ours, MBEDTLS_ECP_DP_SECP256R1);
	make_ec_key(&other, MBEDTLS_ECP_DP_SECP256R1);
	assert_int_equal(tls_ecdsa_attach(&ours), 0);
	assert_true(same_twice(&other, MBEDTLS_MD_SHA256, 32));
	/* 20 bytes called SHA-256: mbedTLS's own answer, byte for byte. */
	assert_int_equal(
	    mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, &ours, MBEDTLS_MD_SHA256,
	        hash, 20, sig, sizeof(sig), &n, mbedtls_ctr_drbg_random, &drbg),
	    0);
	assert_int_equal(__real_mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, &ours,
	                     MBEDTLS_MD_SHA256, hash, 20, ref, sizeof(ref), &nr,
	                     mbedtls_ctr_drbg_random, &drbg),
	    0);
	assert_int_equal(n, nr);
	assert_memory_equal(sig, ref, n);
	/* No digest algorithm and no length: mbedTLS refuses, so do we. */
	assert_int_not_equal(
	    mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, &ours, MBEDTLS_MD_NONE, hash,
	        0, sig, sizeof(sig), &n, mbedtls_ctr_drbg_random, &drbg),
	    0);
	/* Too small for any signature: mbedTLS's error, nothing written
	 * past the buffer (ASan watches). */
	assert_int_not_equal(
	    mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, &ours, MBEDTLS_MD_SHA256,
	        hash, 32, small, sizeof(small), &n, mbedtls_ctr_drbg_random,
	        &drbg),
	    0);
	tls_ecdsa_detach(&ours);
	tls_ecdsa_detach(NULL); /* harmless */
	mbedtls_pk_free(&ours);
	mbedtls_pk_free(&other);
}

static void
test_rsa_key_is_not_taken(void **state)
{
	mbedtls_pk_context rsa;

	(void)state;
	mbedtls_pk_init(&rsa);
	assert_int_equal(
	    mbedtls_pk_setup(&rsa, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)),
	    0);
	assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(rsa),
	                     mbedtls_ctr_drbg_random, &drbg, 1024, 65537),
	    0);
	assert_int_equal(tls_ecdsa_attach(&rsa), -ENOTSUP);
	assert_int_equal(tls_ecdsa_attach(NULL), -EINVAL);
	mbedtls_pk_free(&rsa);
}

/* Loops sign at once while a reload attaches and detaches another key. */
struct signer {
	mbedtls_pk_context *pk;
	int bad;
};

static void *
sign_many(void *arg)
{
	struct signer *s = arg;
	uint8_t hash[32], sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t n;
	int i;

	for (i = 0; i < 200; i++) {
		memset(hash, i, sizeof(hash));
		n = 0;
		/* The wrapper never touches the RNG it is given. */
		if (mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, s->pk,
		        MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, sizeof(sig),
		        &n, NULL, NULL) != 0 ||
		    mbedtls_pk_verify(
		        s->pk, MBEDTLS_MD_SHA256, hash, 32, sig, n) != 0)
			s->bad++;
	}
	return NULL;
}

static void
test_concurrent_signers(void **state)
{
	mbedtls_pk_context pk, next;
	struct signer s[3];
	pthread_t t[3];
	int i, j;

	(void)state;
	make_ec_key(&pk, MBEDTLS_ECP_DP_SECP256R1);
	make_ec_key(&next, MBEDTLS_ECP_DP_SECP256R1);
	assert_int_equal(tls_ecdsa_attach(&pk), 0);
	for (i = 0; i < 3; i++) {
		s[i].pk = &pk;
		s[i].bad = 0;
		assert_int_equal(
		    pthread_create(&t[i], NULL, sign_many, &s[i]), 0);
	}
	for (j = 0; j < 20; j++) {
		assert_int_equal(tls_ecdsa_attach(&next), 0);
		tls_ecdsa_detach(&next);
	}
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(s[i].bad, 0);
	}
	tls_ecdsa_detach(&pk);
	mbedtls_pk_free(&pk);
	mbedtls_pk_free(&next);
}

static int
setup(void **state)
{
	(void)state;
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	return psa_crypto_init() == PSA_SUCCESS &&
	        mbedtls_ctr_drbg_seed(
	            &drbg, mbedtls_entropy_func, &entropy, NULL, 0) == 0
	    ? 0
	    : -1;
}

static int
teardown(void **state)
{
	(void)state;
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	mbedtls_psa_crypto_free();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attached_key_signs_by_libcrypto),
		cmocka_unit_test(test_other_curves_and_digests),
		cmocka_unit_test(test_everything_else_goes_to_mbedtls),
		cmocka_unit_test(test_rsa_key_is_not_taken),
		cmocka_unit_test(test_concurrent_signers),
	};

	return cmocka_run_group_tests_name(
	    "appliance/tls_ecdsa", tests, setup, teardown);
}
