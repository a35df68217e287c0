/*
 * tools/bench/tls_ceiling.c: the handshake ceiling mbedTLS's own arithmetic
 * allows on this machine, the anchor for strongroomd's new-connection
 * figure. It makes exactly the public-key calls mbedTLS 3.6's TLS 1.3
 * server makes in a full handshake with our ECDSA P-256 certificate and a
 * client that sends an X25519 key share (what curl, OpenSSL and browsers
 * send first):
 *
 *   psa_generate_key        the server's ephemeral X25519 key
 *   psa_export_public_key   its public half for the ServerHello key share
 *                           (PSA keeps only the private scalar, so this
 *                           computes d*G)
 *   psa_raw_key_agreement   the shared secret with the client's share
 *   mbedtls_pk_sign_ext     CertificateVerify, ECDSA P-256 with SHA-256,
 *                           through the same pk context type the daemon
 *                           loads its key into
 *
 * It prints CPU microseconds per call, the mbedTLS build's relevant options
 * (which ECDH implementation X25519 goes through, the ECP window size) and
 * handshakes per second per core = 1 / (sum of the four), once with
 * mbedTLS's own calls and once as strongroomd makes them: the export as
 * the agreement with u = 9 (appliance/tls_x25519.c; checked equal here on
 * every round) and the signature by Debian's libcrypto
 * (appliance/tls_ecdsa.c, the same EVP calls; each one verified here by
 * mbedTLS). The second is the ceiling http_bench.sh compares the daemon
 * with.
 * With the same mbedTLS the daemon links, so a change of mbedTLS build
 * shows here first.
 *
 * It only measures; it must never be mistaken for a handshake benchmark
 * (no record layer, no certificate parsing, no network).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <psa/crypto.h>

#if defined(MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED)
#define ECDH_X25519 "Everest (HACL* X25519)"
#else
#define ECDH_X25519 "mbedTLS ECP (Montgomery ladder)"
#endif

/* The four calls, timed separately, and the export and the signature as
 * strongroomd makes them (appliance/tls_x25519.c: the agreement with
 * u = 9; appliance/tls_ecdsa.c: libcrypto's ECDSA). */
enum {
	OP_GENERATE,
	OP_EXPORT,
	OP_AGREE,
	OP_SIGN,
	OP_EXPORT9,
	OP_SIGN_LIBCRYPTO,
	OP_COUNT
};

static const char *const op_name[OP_COUNT] = {
	"psa_generate_key (X25519)",
	"psa_export_public_key (X25519)",
	"psa_raw_key_agreement (ECDH X25519)",
	"mbedtls_pk_sign_ext (ECDSA P-256)",
	"export as agreement with u=9",
	"ECDSA P-256 by libcrypto (EVP)",
};

/* CPU time of this thread: the figure is per core, and others' load on a
 * shared machine only stretches the wall time of the run. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The client's side: one X25519 public key, as its key share carries it. */
static int
peer_share(unsigned char *pub, size_t size, size_t *len)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	mbedtls_svc_key_id_t k;
	psa_status_t st;

	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
	psa_set_key_algorithm(&a, PSA_ALG_ECDH);
	psa_set_key_type(
	    &a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
	psa_set_key_bits(&a, 255);
	if (psa_generate_key(&a, &k) != PSA_SUCCESS)
		return -1;
	st = psa_export_public_key(k, pub, size, len);
	psa_destroy_key(k);
	return st == PSA_SUCCESS ? 0 : -1;
}

/* libcrypto's copy of @p pk's private key, as appliance/tls_ecdsa.c
 * makes it, or NULL. */
static EVP_PKEY *
libcrypto_key(mbedtls_pk_context *pk)
{
	unsigned char der[512];
	const unsigned char *p;
	EVP_PKEY *key = NULL;
	int n = mbedtls_pk_write_key_der(pk, der, sizeof(der));

	if (n > 0) {
		p = der + sizeof(der) - (size_t)n;
		key = d2i_AutoPrivateKey(NULL, &p, n);
	}
	mbedtls_platform_zeroize(der, sizeof(der));
	return key;
}

/* The signature as strongroomd makes it, checked by mbedTLS. */
static int
libcrypto_sign(
    EVP_PKEY *key, mbedtls_pk_context *pk, const unsigned char *hash, double *t)
{
	unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t n = sizeof(sig);
	double t0 = now_s();
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	int ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
	    EVP_PKEY_sign(c, sig, &n, hash, 32) == 1;

	EVP_PKEY_CTX_free(c);
	*t += now_s() - t0;
	return ok &&
	        mbedtls_pk_verify(pk, MBEDTLS_MD_SHA256, hash, 32, sig, n) == 0
	    ? 0
	    : -1;
}

/* One handshake's public-key work, each call's time added to t[]. */
static int
handshake_ops(mbedtls_pk_context *pk, EVP_PKEY *key,
    mbedtls_ctr_drbg_context *drbg, const unsigned char *peer, size_t peer_len,
    double *t)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	mbedtls_svc_key_id_t k;
	static const unsigned char base_u[32] = { 9 };
	unsigned char pub[PSA_EXPORT_PUBLIC_KEY_MAX_SIZE], pub2[32];
	unsigned char secret[32];
	unsigned char hash[32] = { 1 };
	unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t len, len2 = 0;
	double t0, t1;
	int bad = 0;

	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
	psa_set_key_algorithm(&a, PSA_ALG_ECDH);
	psa_set_key_type(
	    &a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
	psa_set_key_bits(&a, 255);
	t0 = now_s();
	if (psa_generate_key(&a, &k) != PSA_SUCCESS)
		return -1;
	t1 = now_s();
	t[OP_GENERATE] += t1 - t0;
	bad |= psa_export_public_key(k, pub, sizeof(pub), &len) != PSA_SUCCESS;
	t0 = now_s();
	t[OP_EXPORT] += t0 - t1;
	bad |= psa_raw_key_agreement(PSA_ALG_ECDH, k, base_u, sizeof(base_u),
	           pub2, sizeof(pub2), &len2) != PSA_SUCCESS ||
	    len2 != len || memcmp(pub, pub2, len) != 0;
	t1 = now_s();
	t[OP_EXPORT9] += t1 - t0;
	t0 = t1;
	bad |= psa_raw_key_agreement(PSA_ALG_ECDH, k, peer, peer_len, secret,
	           sizeof(secret), &len) != PSA_SUCCESS;
	t1 = now_s();
	t[OP_AGREE] += t1 - t0;
	psa_destroy_key(k);
	mbedtls_platform_zeroize(secret, sizeof(secret));
	t0 = now_s();
	bad |= mbedtls_pk_sign_ext(MBEDTLS_PK_ECDSA, pk, MBEDTLS_MD_SHA256,
	           hash, sizeof(hash), sig, sizeof(sig), &len,
	           mbedtls_ctr_drbg_random, drbg) != 0;
	t[OP_SIGN] += now_s() - t0;
	bad |= libcrypto_sign(key, pk, hash, &t[OP_SIGN_LIBCRYPTO]) != 0;
	return bad ? -1 : 0;
}

int
main(void)
{
	const double slice = getenv("SR_BENCH_SECONDS") != NULL
	    ? atof(getenv("SR_BENCH_SECONDS"))
	    : 1.0;
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context pk;
	EVP_PKEY *key = NULL;
	unsigned char peer[PSA_EXPORT_PUBLIC_KEY_MAX_SIZE];
	size_t peer_len = 0;
	double t[OP_COUNT], t0, sum;
	long n;
	int i, rc = 0;

	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_pk_init(&pk);
	if (psa_crypto_init() != PSA_SUCCESS ||
	    mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) !=
	        0 ||
	    mbedtls_pk_setup(
	        &pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
	        mbedtls_ctr_drbg_random, &drbg) != 0 ||
	    peer_share(peer, sizeof(peer), &peer_len) != 0 ||
	    (key = libcrypto_key(&pk)) == NULL) {
		fprintf(stderr, "tls_ceiling: set-up failed\n");
		return 1;
	}
	memset(t, 0, sizeof(t));
	/* One untimed round first: the P-256 comb table, PSA's key slots. */
	rc |= handshake_ops(&pk, key, &drbg, peer, peer_len, t);
	memset(t, 0, sizeof(t));
	for (n = 0, t0 = now_s(); now_s() - t0 < slice && rc == 0; n++)
		rc |= handshake_ops(&pk, key, &drbg, peer, peer_len, t);
	if (rc != 0 || n == 0) {
		fprintf(stderr, "tls_ceiling: a PSA or pk call failed\n");
		return 1;
	}
	printf("mbedTLS %s on this machine: X25519 through %s, "
	       "MBEDTLS_ECP_WINDOW_SIZE %d, %ld rounds\n",
	    MBEDTLS_VERSION_STRING, ECDH_X25519, MBEDTLS_ECP_WINDOW_SIZE, n);
	for (i = 0, sum = 0; i < OP_COUNT; i++) {
		printf(
		    "  %-38s %8.1f us\n", op_name[i], t[i] / (double)n * 1e6);
		if (i != OP_EXPORT9 && i != OP_SIGN_LIBCRYPTO)
			sum += t[i] / (double)n;
	}
	printf("  %-38s %8.1f us\n", "public-key work per handshake (library)",
	    sum * 1e6);
	printf("library export: %.0f full TLS 1.3 handshakes/s per core\n",
	    1 / sum);
	sum += (t[OP_EXPORT9] - t[OP_EXPORT]) / (double)n;
	printf("  %-38s %8.1f us\n", "... with the export as strongroomd's",
	    sum * 1e6);
	printf("mbedTLS arithmetic: %.0f full TLS 1.3 handshakes/s per core\n",
	    1 / sum);
	sum += (t[OP_SIGN_LIBCRYPTO] - t[OP_SIGN]) / (double)n;
	printf("  %-38s %8.1f us\n", "... as strongroomd links it", sum * 1e6);
	printf("handshake ceiling: %.0f full TLS 1.3 handshakes/s per core "
	       "(export as agreement with u=9, signature by libcrypto, as "
	       "strongroomd does)\n",
	    1 / sum);
	EVP_PKEY_free(key);
	mbedtls_pk_free(&pk);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	mbedtls_psa_crypto_free();
	return 0;
}
