/*
 * tests/unit/appliance/jwttest.h: what the JWT tests share: a keyset of
 * two real P-256 keys (PSA, in software, standing in for the HSM), the
 * signer callback over the first, standard claims and a verify at a given
 * time. Header-only, after cmocka.h.
 *
 * It must never stand in for the code under test: tokens are built and
 * verified by appliance/jwt.c itself.
 */
#ifndef SR_TEST_JWTTEST_H
#define SR_TEST_JWTTEST_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <psa/crypto.h>

#include "appliance/jwt.h"
#include "lib/sr.h"

#define NOW 1736942400LL
#define ISS "https://strongroom.example"
#define AUD "strongroom-api"

struct fixture {
	psa_key_id_t key, other;
	uint8_t point[JWT_POINT_BYTES], other_point[JWT_POINT_BYTES];
	struct jwt_keyset *ks;
	int sign_calls;
};

static psa_key_id_t
new_p256(uint8_t point[JWT_POINT_BYTES])
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	psa_key_id_t id;
	size_t n;

	psa_set_key_type(&a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
	psa_set_key_bits(&a, 256);
	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_SIGN_HASH);
	psa_set_key_algorithm(&a, PSA_ALG_ECDSA(PSA_ALG_SHA_256));
	assert_int_equal(psa_generate_key(&a, &id), PSA_SUCCESS);
	assert_int_equal(
	    psa_export_public_key(id, point, JWT_POINT_BYTES, &n), PSA_SUCCESS);
	assert_int_equal(n, JWT_POINT_BYTES);
	return id;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(psa_crypto_init(), PSA_SUCCESS);
	f->key = new_p256(f->point);
	f->other = new_p256(f->other_point);
	assert_int_equal(jwt_keyset_new(&f->ks), 0);
	assert_int_equal(jwt_keyset_add(f->ks, "k1", f->point), 0);
	assert_int_equal(jwt_keyset_add(f->ks, "k2", f->other_point), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	jwt_keyset_free(f->ks);
	psa_destroy_key(f->key);
	psa_destroy_key(f->other);
	free(f);
	return 0;
}

/* The signer callback: the "HSM" is a PSA software key. */
static int
sign_with(void *arg, const uint8_t digest[32], uint8_t rs[64])
{
	struct fixture *f = arg;
	size_t n;

	f->sign_calls++;
	if (psa_sign_hash(f->key, PSA_ALG_ECDSA(PSA_ALG_SHA_256), digest, 32,
	        rs, 64, &n) != PSA_SUCCESS ||
	    n != 64)
		return -EIO;
	return 0;
}

static void
claims_init(struct jwt_claims *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->kid, "k1");
	strcpy(c->iss, ISS);
	strcpy(c->aud, AUD);
	strcpy(c->sub, "app:billing");
	strcpy(c->scope, "inference keys:read");
	strcpy(c->jti, "jti-0001");
	c->iat = NOW;
	c->nbf = NOW;
	c->exp = NOW + 900;
}

static int
verify_at(const struct fixture *f, const char *token, int64_t now,
    struct jwt_claims *out)
{
	struct jwt_verify_opts o = { ISS, AUD, now, 0 };

	return jwt_verify(f->ks, token, &o, out);
}

#endif /* SR_TEST_JWTTEST_H */
