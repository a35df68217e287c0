/*
 * appliance/tls_ecdsa.c: the TLS server key's ECDSA signatures (TLS 1.3's
 * CertificateVerify, TLS 1.2's ServerKeyExchange) made by OpenSSL's
 * libcrypto instead of mbedTLS's generic bignum code.
 *
 * A full TLS 1.3 handshake costs one signature with the server's key. In
 * mbedTLS 3.6 a P-256 signature takes about 340 us on this hardware, two
 * thirds of a handshake's public-key work (tools/bench/tls_ceiling.c);
 * libcrypto's constant-time P-256 code takes about 28 us. Debian's
 * libcrypto 3 is on every appliance anyway (SoftHSM2 runs on it, in this
 * very process). The TLS protocol stays mbedTLS's: only the arithmetic of
 * this one signature moves.
 *
 * The daemon is linked with -Wl,--wrap=mbedtls_pk_sign_ext and
 * --wrap=mbedtls_pk_sign (appliance/module.mk), which routes mbedTLS's
 * calls here. A key is served by libcrypto only after tls_ecdsa_attach()
 * loaded it there and a signature libcrypto made verified with mbedTLS
 * against the key's own public half; every other key, every other
 * algorithm, and any call libcrypto fails goes to mbedTLS unchanged.
 *
 * It must never implement arithmetic itself, never log or keep key bytes
 * outside the two libraries' key objects (the DER copy is wiped), and
 * never fail a signature that mbedTLS alone would have made.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "appliance/internal.h"

typedef int tls_rng_fn(void *, unsigned char *, size_t);

int __real_mbedtls_pk_sign_ext(mbedtls_pk_type_t pk_type,
    mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len, tls_rng_fn *f_rng, void *p_rng);
int __wrap_mbedtls_pk_sign_ext(mbedtls_pk_type_t pk_type,
    mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len, tls_rng_fn *f_rng, void *p_rng);
int __real_mbedtls_pk_sign(mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len, tls_rng_fn *f_rng, void *p_rng);
int __wrap_mbedtls_pk_sign(mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len, tls_rng_fn *f_rng, void *p_rng);

/* Keys served by libcrypto: a configuration and the one a reload is
 * building, with room to spare. Read on every handshake, written at
 * start-up and reload only. */
#define TLS_ECDSA_SLOTS 8
static struct {
	const mbedtls_pk_context *pk;
	EVP_PKEY *key;
} slots[TLS_ECDSA_SLOTS];
static pthread_rwlock_t slots_lock = PTHREAD_RWLOCK_INITIALIZER;

/* An ECDSA signature of @p hash by libcrypto's copy of the key, DER as
 * mbedTLS writes it. 0, or -1 when libcrypto could not make it. */
static int
ossl_sign(EVP_PKEY *key, const unsigned char *hash, size_t hash_len,
    unsigned char *sig, size_t sig_size, size_t *sig_len)
{
	unsigned char der[MBEDTLS_ECDSA_MAX_LEN];
	size_t n = sizeof(der);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	int ok;

	ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
	    EVP_PKEY_sign(c, der, &n, hash, hash_len) == 1 && n <= sig_size;
	EVP_PKEY_CTX_free(c);
	if (!ok)
		return -1;
	memcpy(sig, der, n);
	*sig_len = n;
	return 0;
}

/* 0 when libcrypto signed for @p ctx; -1: let mbedTLS do it. */
static int
fast_sign(const mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len)
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(md_alg);
	EVP_PKEY *key = NULL;
	int i, rc = -1;

	/* A digest of the size its algorithm names; nothing else is ours. */
	if (md == NULL || hash == NULL || hash_len == 0 ||
	    hash_len != mbedtls_md_get_size(md) || sig == NULL ||
	    sig_len == NULL)
		return -1;
	/* The lock covers the lookup only: the signature runs on a
	 * reference of its own, so a reload never waits for one. */
	pthread_rwlock_rdlock(&slots_lock);
	for (i = 0; i < TLS_ECDSA_SLOTS; i++)
		if (slots[i].pk == ctx) {
			if (EVP_PKEY_up_ref(slots[i].key) == 1)
				key = slots[i].key;
			break;
		}
	pthread_rwlock_unlock(&slots_lock);
	if (key != NULL) {
		rc = ossl_sign(key, hash, hash_len, sig, sig_size, sig_len);
		EVP_PKEY_free(key);
	}
	return rc;
}

int
__wrap_mbedtls_pk_sign_ext(mbedtls_pk_type_t pk_type, mbedtls_pk_context *ctx,
    mbedtls_md_type_t md_alg, const unsigned char *hash, size_t hash_len,
    unsigned char *sig, size_t sig_size, size_t *sig_len, tls_rng_fn *f_rng,
    void *p_rng)
{
	if ((pk_type == MBEDTLS_PK_ECDSA || pk_type == MBEDTLS_PK_ECKEY) &&
	    fast_sign(ctx, md_alg, hash, hash_len, sig, sig_size, sig_len) == 0)
		return 0;
	return __real_mbedtls_pk_sign_ext(pk_type, ctx, md_alg, hash, hash_len,
	    sig, sig_size, sig_len, f_rng, p_rng);
}

int
__wrap_mbedtls_pk_sign(mbedtls_pk_context *ctx, mbedtls_md_type_t md_alg,
    const unsigned char *hash, size_t hash_len, unsigned char *sig,
    size_t sig_size, size_t *sig_len, tls_rng_fn *f_rng, void *p_rng)
{
	if (fast_sign(ctx, md_alg, hash, hash_len, sig, sig_size, sig_len) == 0)
		return 0;
	return __real_mbedtls_pk_sign(
	    ctx, md_alg, hash, hash_len, sig, sig_size, sig_len, f_rng, p_rng);
}

/* libcrypto's copy of @p pk's private key, or NULL. */
static EVP_PKEY *
ossl_key(mbedtls_pk_context *pk)
{
	unsigned char der[512]; /* a P-521 key is 223 bytes of DER */
	const unsigned char *p;
	EVP_PKEY *key = NULL;
	int n;

	/* mbedtls_pk_write_key_der writes at the end of the buffer. */
	n = mbedtls_pk_write_key_der(pk, der, sizeof(der));
	if (n > 0) {
		p = der + sizeof(der) - (size_t)n;
		key = d2i_AutoPrivateKey(NULL, &p, n);
	}
	sr_wipe(der, sizeof(der));
	if (key != NULL && EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	return key;
}

/* A libcrypto signature over a fixed digest, checked by mbedTLS with the
 * key's public half: 0 when it verifies. */
static int
ossl_key_matches(mbedtls_pk_context *pk, EVP_PKEY *key)
{
	static const unsigned char digest[32] =
	    "strongroom tls ecdsa self-test";
	unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t n = 0;

	if (ossl_sign(key, digest, sizeof(digest), sig, sizeof(sig), &n) != 0)
		return -1;
	return mbedtls_pk_verify(
	           pk, MBEDTLS_MD_SHA256, digest, sizeof(digest), sig, n) == 0
	    ? 0
	    : -1;
}

int
tls_ecdsa_attach(mbedtls_pk_context *pk)
{
	EVP_PKEY *key;
	int i, rc = -ENOSPC;

	if (pk == NULL)
		return -EINVAL;
	if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECDSA))
		return -ENOTSUP;
	if ((key = ossl_key(pk)) == NULL)
		return -ENOTSUP;
	if (ossl_key_matches(pk, key) != 0) {
		EVP_PKEY_free(key);
		return -EPROTO;
	}
	pthread_rwlock_wrlock(&slots_lock);
	for (i = 0; i < TLS_ECDSA_SLOTS; i++)
		if (slots[i].pk == NULL || slots[i].pk == pk) {
			EVP_PKEY_free(slots[i].key);
			slots[i].pk = pk;
			slots[i].key = key;
			rc = 0;
			break;
		}
	pthread_rwlock_unlock(&slots_lock);
	if (rc != 0)
		EVP_PKEY_free(key);
	return rc;
}

void
tls_ecdsa_detach(const mbedtls_pk_context *pk)
{
	int i;

	pthread_rwlock_wrlock(&slots_lock);
	for (i = 0; i < TLS_ECDSA_SLOTS; i++)
		if (slots[i].pk == pk && pk != NULL) {
			EVP_PKEY_free(slots[i].key);
			slots[i].pk = NULL;
			slots[i].key = NULL;
		}
	pthread_rwlock_unlock(&slots_lock);
}
