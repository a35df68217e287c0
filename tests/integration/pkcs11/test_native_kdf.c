/*
 * tests/integration/pkcs11/test_native_kdf.c: the native
 * CKM_SP800_108_COUNTER_KDF path, on a module that has it (NSS softokn,
 * Debian's libnss3), gives the same known answer as the C_Sign
 * construction SoftHSM2 needs; and the x-init-args URI attribute carries
 * the C_Initialize string such modules require.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/integration/pkcs11/fixture.h"

#define SOFTOKN "/usr/lib/x86_64-linux-gnu/libsoftokn3.so"

/* NSS's internal crypto token, no databases, nothing written to disk. */
static const char *nss_uri =
    "pkcs11:token=NSS%20Generic%20Crypto%20Services"
    "?module-path=" SOFTOKN
    "&x-init-args=configdir=''%20certPrefix=''%20keyPrefix=''%20"
    "secmod=''%20flags=readOnly,noCertDB,noModDB,forceOpen,optimizeSpace";

static void
test_native_kdf_matches_vector(void **state)
{
	struct p11_options opt = { .required_mechs =
		                       (1u << P11_MECH_SHA256_HMAC) |
		    (1u << P11_MECH_SP800_108_COUNTER_KDF) };
	unsigned char kin[32], want[32], out[32], out2[64], viasign[64];
	struct p11_key *derive = NULL, *plain = NULL, *inside = NULL;
	struct p11_ctx *ctx = NULL;
	char err[256];
	size_t i;

	(void)state;
	assert_int_equal(p11_open(nss_uri, &opt, &ctx, err), 0);
	assert_true(p11_has_mech(ctx, P11_MECH_SP800_108_COUNTER_KDF));
	for (i = 0; i < sizeof(kin); i++)
		kin[i] = (unsigned char)i;
	p11_fixture_hex("77211a0077656c5804c6194ba4f147e6"
	                "d1b271e59e58e8ad4941c2185a59b23d",
	    want, 32);

	/* The bytes-out KDF gives the vector on this module too. */
	assert_int_equal(p11_key_import(ctx, P11_KEY_HMAC, "kdk-derive", NULL,
	                     0, kin, sizeof(kin), P11_KEY_DERIVE, &derive),
	    0);
	assert_int_equal(p11_kdf_sp800_108(ctx, derive, "device-key", 10,
	                     "sn-007-888-abc", 14, out, sizeof(out)),
	    0);
	assert_memory_equal(out, want, 32);

	/* The module's own KDF makes a key that stays inside; it equals the
	 * vector: HMAC under it matches HMAC under the vector imported. */
	assert_int_equal(p11_key_derive_sp800_108(ctx, derive, "device-key", 10,
	                     "sn-007-888-abc", 14, P11_KEY_HMAC, "derived", 32,
	                     P11_KEY_SESSION, &inside),
	    0);
	assert_int_equal(p11_key_import(ctx, P11_KEY_HMAC, "vector", NULL, 0,
	                     want, sizeof(want), P11_KEY_SESSION, &plain),
	    0);
	assert_int_equal(p11_hmac_sha256(ctx, inside, "abc", 3, out), 0);
	assert_int_equal(p11_hmac_sha256(ctx, plain, "abc", 3, viasign), 0);
	assert_memory_equal(out, viasign, 32);
	/* Another context gives another key. */
	p11_key_free(inside);
	assert_int_equal(p11_key_derive_sp800_108(ctx, derive, "device-key", 10,
	                     "sn-007-888-abd", 14, P11_KEY_HMAC, "derived-2",
	                     32, P11_KEY_SESSION, &inside),
	    0);
	assert_int_equal(p11_hmac_sha256(ctx, inside, "abc", 3, out2), 0);
	assert_memory_not_equal(out2, viasign, 32);
	p11_key_free(inside);

	p11_key_free(derive);
	p11_key_free(plain);
	p11_close(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_kdf_matches_vector),
	};

	return cmocka_run_group_tests_name(
	    "pkcs11/native-kdf", tests, NULL, NULL);
}
