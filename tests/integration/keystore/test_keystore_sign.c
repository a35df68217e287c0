/*
 * tests/integration/keystore/test_keystore_sign.c: signing through the
 * keystore on a real SoftHSM2 token: ES256 signatures over messages and
 * over digests that mbedTLS verifies against the key's public point, and
 * the refusals of keys that may not sign. (It sees no secret material, so
 * it has no secret scan of its own; test_keystore_use has one.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>

#include "tests/integration/keystore/kstest.h"

/* SIGN: an ES256 signature that mbedTLS verifies. */
static void
test_sign(void **state)
{
	static const char msg[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0";
	struct ks *ks = kt_main_ks();
	uint8_t pub1[65], pub2[65], sig[64], sig2[64];
	char id[KT_ID], tampered[sizeof(msg)];
	struct ks_request *q;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "jwt", NULL, 0, 0, id), 0);
	assert_int_equal(kt_sign(ks, id, msg, sig), 0);
	assert_string_equal(KT_R->meta.id, id);
	kt_public_of(id, 1, pub1);
	assert_int_equal(kt_ecdsa_verify(pub1, msg, strlen(msg), sig), 0);
	memcpy(tampered, msg, sizeof(msg));
	tampered[5] ^= 1;
	assert_int_not_equal(
	    kt_ecdsa_verify(pub1, tampered, strlen(tampered), sig), 0);
	assert_int_equal(kt_sign(ks, id, msg, sig2), 0);
	assert_memory_not_equal(sig, sig2, 64); /* a fresh k each time */
	assert_int_equal(kt_ecdsa_verify(pub1, msg, strlen(msg), sig2), 0);
	sig2[40] ^= 1;
	assert_int_not_equal(kt_ecdsa_verify(pub1, msg, strlen(msg), sig2), 0);
	q = kt_req(KS_OP_SIGN);
	kt_setid(q->u.sign.id, id);
	q->u.sign.len = sizeof(q->u.sign.msg) + 1;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	/* The public point without the HSM, as the HSM has it. */
	assert_int_equal(kt_key(ks, KS_OP_PUBLIC, id, 0), 0);
	assert_int_equal(KT_R->material_len, 65);
	assert_memory_equal(KT_R->material, pub1, 65);
	assert_int_equal(
	    kt_key(ks, KS_OP_PUBLIC, "AAAAAAAAAAAA", 0), KS_ENOTFOUND);
	/* Pre-hashed: the signer hashed "msg" itself (JWS); the signature
	 * verifies over msg. */
	q = kt_req(KS_OP_SIGN);
	kt_setid(q->u.sign.id, id);
	q->u.sign.prehashed = 1;
	q->u.sign.len = 32;
	assert_int_equal(
	    mbedtls_sha256((const uint8_t *)msg, strlen(msg), q->u.sign.msg, 0),
	    0);
	assert_int_equal(kt_run(ks), 0);
	assert_int_equal(KT_R->material_len, 64);
	memcpy(sig2, KT_R->material, 64);
	assert_int_equal(kt_ecdsa_verify(pub1, msg, strlen(msg), sig2), 0);
	q = kt_req(KS_OP_SIGN);
	kt_setid(q->u.sign.id, id);
	q->u.sign.prehashed = 1;
	q->u.sign.len = 31;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	/* After rotation the new version signs. */
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, id, 0), 0);
	assert_int_equal(kt_sign(ks, id, msg, sig), 0);
	assert_int_equal(KT_R->meta.version, 2);
	kt_public_of(id, 2, pub2);
	assert_int_equal(kt_ecdsa_verify(pub2, msg, strlen(msg), sig), 0);
	assert_int_not_equal(kt_ecdsa_verify(pub1, msg, strlen(msg), sig), 0);
	assert_int_equal(kt_key(ks, KS_OP_SUSPEND, id, 0), 0);
	assert_int_equal(kt_sign(ks, id, msg, sig), KS_ESTATE);
}

/* Only signing keys sign. */
static void
test_sign_refusals(void **state)
{
	static const char msg[] = "payload";
	struct ks *ks = kt_main_ks();
	uint8_t sig[64];
	char data[KT_ID];
	int rc;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, "not-a-signer", NULL, 0, 0, data), 0);
	rc = kt_sign(ks, data, msg, sig);
	/* A data key is no signing key: the signer finds none by that id. */
	assert_int_equal(rc, KS_ENOTFOUND);
	assert_int_equal(kt_sign(ks, "AAAAAAAAAAAA", msg, sig), KS_ENOTFOUND);
}

/* More signing keys than the keystore keeps HSM references for: every one
 * still signs with its own key, twice (kept or found per call). */
static void
test_sign_many_keys(void **state)
{
	static const char msg[] = "many";
	struct ks *ks = kt_main_ks();
	char ids[KS__SIGN_KEYS + 3][KT_ID], name[32];
	uint8_t pub[65], sig[64];
	size_t i, round;

	(void)state;
	for (i = 0; i < KS__SIGN_KEYS + 3; i++) {
		snprintf(name, sizeof(name), "many-%zu", i);
		assert_int_equal(
		    kt_create(ks, KS_KIND_SIGNING, name, NULL, 0, 0, ids[i]),
		    0);
	}
	for (round = 0; round < 2; round++)
		for (i = 0; i < KS__SIGN_KEYS + 3; i++) {
			assert_int_equal(kt_sign(ks, ids[i], msg, sig), 0);
			kt_public_of(ids[i], 1, pub);
			assert_int_equal(
			    kt_ecdsa_verify(pub, msg, strlen(msg), sig), 0);
		}
	/* A revoked key is refused though its reference is kept. */
	assert_int_equal(kt_revoke(ks, ids[0], "retired", 0), 0);
	assert_int_not_equal(kt_sign(ks, ids[0], msg, sig), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_sign_refusals),
		cmocka_unit_test(test_sign_many_keys),
	};

	return cmocka_run_group_tests_name(
	    "keystore/sign", tests, kt_group_setup, kt_group_teardown);
}
