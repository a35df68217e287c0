/*
 * appliance/digest.c: SHA-256 through libcrypto with mbedTLS as the
 * fallback (API and reasons in appliance/digest.h).
 *
 * It must never return anything but the true digest, and never hash
 * anything itself: both halves are the libraries' own code.
 */
#include <pthread.h>

#include <mbedtls/sha256.h>
#include <openssl/evp.h>

#include "appliance/digest.h"

static pthread_once_t digest_once = PTHREAD_ONCE_INIT;
static EVP_MD *digest_md; /* fetched once, kept for the process's life */

static void
digest_fetch(void)
{
	/* An explicit fetch: EVP_sha256() would look the implementation up
	 * again on every call. */
	digest_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

/* 1 when libcrypto computed @p out. */
static int
digest_evp(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
	EVP_MD_CTX *c;
	unsigned int len = 0;
	int ok;

	pthread_once(&digest_once, digest_fetch);
	if (digest_md == NULL || (c = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestInit_ex2(c, digest_md, NULL) == 1 &&
	    (an == 0 || EVP_DigestUpdate(c, a, an) == 1) &&
	    (bn == 0 || EVP_DigestUpdate(c, b, bn) == 1) &&
	    EVP_DigestFinal_ex(c, out, &len) == 1 && len == 32;
	EVP_MD_CTX_free(c);
	return ok;
}

void
digest_sha256_2(
    const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
	mbedtls_sha256_context c;

	if (digest_evp(a, an, b, bn, out))
		return;
	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	if (an > 0)
		mbedtls_sha256_update(&c, a, an);
	if (bn > 0)
		mbedtls_sha256_update(&c, b, bn);
	mbedtls_sha256_finish(&c, out);
	mbedtls_sha256_free(&c);
}

void
digest_sha256(const void *p, size_t n, uint8_t out[32])
{
	digest_sha256_2(p, n, NULL, 0, out);
}
