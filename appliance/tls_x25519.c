/*
 * appliance/tls_x25519.c: the public half of an ephemeral X25519 key, as
 * mbedTLS's TLS 1.3 code asks for it (psa_export_public_key for the
 * ServerHello's key share), computed by the library's own fast X25519.
 *
 * PSA in mbedTLS 3.6 keeps only the private scalar of a generated key and
 * computes its public key on export with the generic Montgomery ladder
 * (about 640 us here), although the same library's Everest X25519 (built in
 * by tools/deps.sh, tools/mbedtls_config_extra.h) does a key agreement in
 * under 100 us. RFC 7748 section 6.1 defines the public key as X25519(k, 9),
 * the agreement with the base point's u-coordinate 9, so for an X25519 key
 * allowed to do ECDH the export is that agreement: the same 32 bytes.
 *
 * The daemon is linked with -Wl,--wrap=psa_export_public_key
 * (appliance/module.mk), which routes mbedTLS's calls here; every other key,
 * and every X25519 key whose policy does not allow ECDH, goes to the real
 * export unchanged. tls_x25519_selftest() compares both ways at start-up and
 * turns the fast path off if they ever differ.
 *
 * It must never implement any arithmetic itself, never change what is
 * exported, and never touch a key other than an X25519 key pair.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <psa/crypto.h>

#include "appliance/internal.h"

psa_status_t __real_psa_export_public_key(mbedtls_svc_key_id_t key,
    uint8_t *data, size_t data_size, size_t *data_length);
psa_status_t __wrap_psa_export_public_key(mbedtls_svc_key_id_t key,
    uint8_t *data, size_t data_size, size_t *data_length);

/* 1 until the self-test finds a difference. */
static atomic_int x25519_fast = 1;

/* 1 when @p key is an X25519 key pair that may do ECDH. */
static int
x25519_agreeing(mbedtls_svc_key_id_t key)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	int yes;

	if (psa_get_key_attributes(key, &a) != PSA_SUCCESS)
		return 0;
	yes = psa_get_key_type(&a) ==
	        PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY) &&
	    psa_get_key_bits(&a) == 255 &&
	    (psa_get_key_usage_flags(&a) & PSA_KEY_USAGE_DERIVE) != 0 &&
	    (psa_get_key_algorithm(&a) == PSA_ALG_ECDH ||
	        PSA_ALG_KEY_AGREEMENT_GET_BASE(psa_get_key_algorithm(&a)) ==
	            PSA_ALG_ECDH);
	psa_reset_key_attributes(&a);
	return yes;
}

psa_status_t
__wrap_psa_export_public_key(mbedtls_svc_key_id_t key, uint8_t *data,
    size_t data_size, size_t *data_length)
{
	/* u = 9, little-endian (RFC 7748 section 4.1). */
	static const uint8_t base_u[32] = { 9 };

	if (atomic_load_explicit(&x25519_fast, memory_order_relaxed) &&
	    data_size >= 32 && x25519_agreeing(key) &&
	    psa_raw_key_agreement(PSA_ALG_ECDH, key, base_u, sizeof(base_u),
	        data, data_size, data_length) == PSA_SUCCESS &&
	    *data_length == 32)
		return PSA_SUCCESS;
	return __real_psa_export_public_key(key, data, data_size, data_length);
}

int
tls_x25519_selftest(void)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	mbedtls_svc_key_id_t k;
	uint8_t fast[32], slow[32];
	size_t nf = 0, ns = 0;
	int i, bad = 0;

	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
	psa_set_key_algorithm(&a, PSA_ALG_ECDH);
	psa_set_key_type(
	    &a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
	psa_set_key_bits(&a, 255);
	for (i = 0; i < 4 && !bad; i++) {
		if (psa_generate_key(&a, &k) != PSA_SUCCESS)
			return -EIO;
		bad = __wrap_psa_export_public_key(
		          k, fast, sizeof(fast), &nf) != PSA_SUCCESS ||
		    __real_psa_export_public_key(k, slow, sizeof(slow), &ns) !=
		        PSA_SUCCESS ||
		    nf != ns || memcmp(fast, slow, ns) != 0;
		psa_destroy_key(k);
	}
	if (bad)
		atomic_store(&x25519_fast, 0);
	return bad ? -EPROTO : 0;
}
