/*
 * tests/fuzz/fuzz_jwt.c: libFuzzer target for bearer tokens, the one
 * credential a stranger's bytes reach the JWT code with. The first byte
 * picks what the rest is:
 *   0: a whole token, verified as it stands (and again with cached_only);
 *   1: a header and a payload (split at the first 0xff byte, which no
 *      JSON text holds), each base64url-coded and signed with the target's
 *      own P-256 key, so the claims checks behind the signature are
 *      reached; the token is then verified twice, the second time from
 *      the keyset's memory of verified signatures;
 *   2: base64url text, decoded; whatever decodes must encode back to the
 *      same text (one spelling per value).
 * Checks jwt.h's promises: a refusal leaves the claims zeroed; a token
 * accepted has our issuer and audience, a lifetime within the limit, times
 * around "now" within the skew and NUL-terminated fields; the memory of
 * verified signatures answers exactly as the full check did. ASan and
 * UBSan catch the rest. The key is software, made at start: a stand-in
 * for the HSM signer, never a secret of the product.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "appliance/digest.h"
#include "appliance/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISS "https://strongroom.test"
#define AUD "strongroom"
#define NOW 1700000000

static struct jwt_keyset *keys;
static EVP_PKEY *signer;

static void
setup(void)
{
	uint8_t point[JWT_POINT_BYTES];
	size_t len = 0;

	signer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (signer == NULL ||
	    EVP_PKEY_get_octet_string_param(signer, OSSL_PKEY_PARAM_PUB_KEY,
	        point, sizeof(point), &len) != 1 ||
	    len != JWT_POINT_BYTES || jwt_keyset_new(&keys) != 0 ||
	    jwt_keyset_add(keys, "k1", point) != 0)
		abort();
}

/* r || s of an ECDSA signature over @p digest with the target's key. */
static void
sign(const uint8_t digest[32], uint8_t rs[64])
{
	unsigned char der[80];
	const unsigned char *p = der;
	size_t len = sizeof(der);
	const BIGNUM *r, *s;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(signer, NULL);
	ECDSA_SIG *sig;

	if (c == NULL || EVP_PKEY_sign_init(c) != 1 ||
	    EVP_PKEY_sign(c, der, &len, digest, 32) != 1 ||
	    (sig = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL)
		abort();
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, rs, 32) != 32 || BN_bn2binpad(s, rs + 32, 32) != 32)
		abort();
	ECDSA_SIG_free(sig);
	EVP_PKEY_CTX_free(c);
}

static int
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static int
terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* What an accepted token must be, and a refusal must leave. */
static void
check_outcome(int rc, const struct jwt_claims *c)
{
	if (rc != 0) {
		if (!all_zero(c, sizeof(*c)))
			abort();
		return;
	}
	if (strcmp(c->iss, ISS) != 0 || strcmp(c->aud, AUD) != 0 ||
	    strcmp(c->kid, "k1") != 0 || c->sub[0] == '\0' ||
	    c->jti[0] == '\0' || c->exp <= c->iat ||
	    c->exp - c->iat > JWT_MAX_LIFETIME || c->nbf > c->exp ||
	    NOW >= c->exp + JWT_SKEW || NOW < c->nbf - JWT_SKEW ||
	    NOW < c->iat - JWT_SKEW || c->scope_count > JWT_SCOPES_MAX ||
	    !terminated(c->sub, sizeof(c->sub)) ||
	    !terminated(c->jti, sizeof(c->jti)) ||
	    !terminated(c->scope, sizeof(c->scope)) ||
	    !terminated(c->client_key, sizeof(c->client_key)))
		abort();
	for (size_t i = 0; i < c->scope_count; i++)
		if (c->scopes[i][0] == '\0' || strchr(c->scopes[i], ' ') ||
		    !terminated(c->scopes[i], sizeof(c->scopes[i])))
			abort();
}

static void
verify_twice(const char *token)
{
	struct jwt_verify_opts o = { ISS, AUD, NOW, 0 };
	static struct jwt_claims a, b;
	int rc, again;

	rc = jwt_verify(keys, token, &o, &a);
	check_outcome(rc, &a);
	o.cached_only = 1;
	again = jwt_verify(keys, token, &o, &b);
	check_outcome(again, &b);
	/* Verified once, remembered: the same answer without ECDSA. */
	if (rc == 0 && (again != 0 || memcmp(&a, &b, sizeof(a)) != 0))
		abort();
}

static void
whole_token(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1);

	if (token == NULL)
		return;
	memcpy(token, data, size);
	token[size] = '\0';
	verify_twice(token);
	free(token);
}

static void
signed_parts(const uint8_t *data, size_t size)
{
	static char token[2 * JWT_TOKEN_MAX];
	const uint8_t *cut = memchr(data, 0xff, size);
	size_t hlen = cut != NULL ? (size_t)(cut - data) : size;
	size_t plen = cut != NULL ? size - hlen - 1 : 0;
	uint8_t digest[32], rs[64];
	int h, p, s;

	if (hlen > JWT_TOKEN_MAX / 2 || plen > JWT_TOKEN_MAX / 2)
		return;
	h = b64url_encode(token, sizeof(token), data, hlen);
	if (h < 0)
		return;
	token[h] = '.';
	p = b64url_encode(token + h + 1, sizeof(token) - (size_t)h - 1,
	    cut != NULL ? cut + 1 : data, plen);
	if (p < 0)
		return;
	digest_sha256(token, (size_t)h + 1 + (size_t)p, digest);
	sign(digest, rs);
	token[h + 1 + p] = '.';
	s = b64url_encode(token + h + 2 + p,
	    sizeof(token) - (size_t)(h + 2 + p), rs, sizeof(rs));
	if (s < 0)
		return;
	verify_twice(token);
}

static void
base64url(const uint8_t *data, size_t size)
{
	static uint8_t bin[8192];
	static char text[16384];
	int n, m;

	if (size > sizeof(bin))
		return;
	n = b64url_decode(bin, sizeof(bin), (const char *)data, size);
	if (n >= 0) {
		m = b64url_encode(text, sizeof(text), bin, (size_t)n);
		if (m < 0 || (size_t)m != size || memcmp(text, data, size) != 0)
			abort();
	}
	m = b64url_encode(text, sizeof(text), data, size);
	if (m < 0 ||
	    b64url_decode(bin, sizeof(bin), text, (size_t)m) != (int)size ||
	    memcmp(bin, data, size) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (keys == NULL)
		setup();
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		whole_token(data + 1, size - 1);
		break;
	case 1:
		signed_parts(data + 1, size - 1);
		break;
	default:
		base64url(data + 1, size - 1);
		break;
	}
	return 0;
}
