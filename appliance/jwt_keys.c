/*
 * appliance/jwt_keys.c: the verification keyset (kid -> P-256 public key
 * held as a PSA key, and as a libcrypto key that checks signatures about
 * sixteen times faster), the JWKS document that publishes it, and strict
 * base64url (API in appliance/jwt.h).
 *
 * It must never hold a private key, never accept a point that is not on
 * the curve, and never decode more than one spelling of a value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <psa/crypto.h>
#include <yyjson.h>

#include "appliance/jwt_impl.h"
#include "lib/sr.h"

struct jwt_key {
	char kid[JWT_FIELD_MAX];
	uint8_t point[JWT_POINT_BYTES];
	psa_key_id_t id;
	/* The same public key in libcrypto, which checks a P-256 signature
	 * in about 60 us where mbedTLS takes about 1.3 ms; NULL: PSA checks. */
	EVP_PKEY *evp;
	int64_t not_after; /* 0: none; else tokens refused past it */
};

struct jwt_keyset {
	size_t count;
	struct jwt_key keys[JWT_KEYS_MAX];
	struct jwt__cache *verified; /* jwt_cache.c */
};

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
b64url_encode(char *out, size_t cap, const void *in, size_t len)
{
	const uint8_t *p = in;
	size_t need = (len * 4 + 2) / 3, i, o = 0;
	uint32_t v;

	if (cap < need + 1)
		return -ENOSPC;
	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64url_alphabet[(v >> 18) & 63];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = b64url_alphabet[(v >> 18) & 63];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64url_alphabet[(v >> 18) & 63];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return (int)o;
}

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
b64url_decode(void *out, size_t cap, const char *in, size_t len)
{
	uint8_t *o = out;
	size_t i, n = 0, need;
	uint32_t acc = 0;
	unsigned bits = 0;
	int v;

	if (len % 4 == 1)
		return -EINVAL;
	need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	if (need > cap)
		return -ENOSPC;
	for (i = 0; i < len; i++) {
		v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			return -EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			o[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero: one spelling per value. */
	if (acc != 0)
		return -EINVAL;
	return (int)n;
}

int
jwt_keyset_new(struct jwt_keyset **out)
{
	*out = NULL;
	if (psa_crypto_init() != PSA_SUCCESS)
		return APP_EJWTSIG;
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	if (jwt__cache_new(&(*out)->verified) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

void
jwt_keyset_free(struct jwt_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->count; i++) {
		psa_destroy_key(ks->keys[i].id);
		EVP_PKEY_free(ks->keys[i].evp);
	}
	jwt__cache_free(ks->verified);
	free(ks);
}

struct jwt__cache *
jwt__keyset_cache(const struct jwt_keyset *ks)
{
	return ks != NULL ? ks->verified : NULL;
}

static int
kid_ok(const char *kid)
{
	size_t i, n = strnlen(kid, JWT_FIELD_MAX);

	if (n == 0 || n >= JWT_FIELD_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (kid[i] <= ' ' || kid[i] >= 0x7f || kid[i] == '"' ||
		    kid[i] == '\\')
			return 0;
	return 1;
}

/* libcrypto's copy of a public point already accepted by PSA; NULL when
 * libcrypto cannot take it (PSA then verifies alone). */
static EVP_PKEY *
evp_from_point(const uint8_t point[JWT_POINT_BYTES])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(
		    OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
		    (void *)(uintptr_t)point, JWT_POINT_BYTES),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;

	if (c == NULL || EVP_PKEY_fromdata_init(c) != 1 ||
	    EVP_PKEY_fromdata(c, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(c);
	return key;
}

int
jwt_keyset_add(struct jwt_keyset *ks, const char *kid,
    const uint8_t point[static JWT_POINT_BYTES])
{
	psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
	struct jwt_key *k;

	if (!kid_ok(kid) || ks->count == JWT_KEYS_MAX || point[0] != 0x04)
		return -EINVAL;
	if (jwt__keyset_find(ks, kid) >= 0)
		return -EEXIST;
	k = &ks->keys[ks->count];
	psa_set_key_type(
	    &attr, PSA_KEY_TYPE_ECC_PUBLIC_KEY(PSA_ECC_FAMILY_SECP_R1));
	psa_set_key_bits(&attr, 256);
	psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_VERIFY_HASH);
	psa_set_key_algorithm(&attr, PSA_ALG_ECDSA(PSA_ALG_SHA_256));
	switch (psa_import_key(&attr, point, JWT_POINT_BYTES, &k->id)) {
	case PSA_SUCCESS:
		break;
	case PSA_ERROR_INSUFFICIENT_MEMORY:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
	memcpy(k->point, point, JWT_POINT_BYTES);
	memcpy(k->kid, kid, strlen(kid) + 1);
	k->evp = evp_from_point(point);
	ks->count++;
	return 0;
}

int
jwt_keyset_retire(struct jwt_keyset *ks, const char *kid, int64_t not_after)
{
	int i = jwt__keyset_find(ks, kid);

	if (i < 0)
		return -ENOENT;
	ks->keys[i].not_after = not_after;
	return 0;
}

int
jwt__keyset_retired(const struct jwt_keyset *ks, int which, int64_t now)
{
	int64_t t = ks->keys[which].not_after;

	return t != 0 && now > t;
}

/* 1: the signature verifies; 0: it does not; -1: libcrypto could not
 * say (then PSA is asked). */
static int
evp_verify(EVP_PKEY *key, const uint8_t digest[32], const uint8_t sig[64])
{
	unsigned char der[80], *p = der;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL),
	       *s = BN_bin2bn(sig + 32, 32, NULL);
	EVP_PKEY_CTX *c = NULL;
	int len = -1, rc = -1;

	if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s)) {
		r = s = NULL; /* owned by es now */
		if (i2d_ECDSA_SIG(es, NULL) <= (int)sizeof(der))
			len = i2d_ECDSA_SIG(es, &p);
	}
	if (len > 0 &&
	    (c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) != NULL &&
	    EVP_PKEY_verify_init(c) == 1) {
		/* r or s zero or not below the order: 0, as from PSA. */
		rc = EVP_PKEY_verify(c, der, (size_t)len, digest, 32);
		rc = rc == 1 ? 1 : rc == 0 ? 0 : -1;
	}
	EVP_PKEY_CTX_free(c);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	return rc;
}

int
jwt__keyset_verify(const struct jwt_keyset *ks, int which,
    const uint8_t digest[32], const uint8_t sig[64])
{
	const struct jwt_key *k;
	int ok = -1;

	if (ks == NULL || which < 0 || (size_t)which >= ks->count)
		return APP_EJWTKID;
	k = &ks->keys[which];
	if (k->evp != NULL)
		ok = evp_verify(k->evp, digest, sig);
	if (ok < 0)
		ok = psa_verify_hash(k->id, PSA_ALG_ECDSA(PSA_ALG_SHA_256),
		         digest, 32, sig, 64) == PSA_SUCCESS;
	return ok == 1 ? 0 : APP_EJWTSIG;
}

int
jwt__keyset_find(const struct jwt_keyset *ks, const char *kid)
{
	size_t i;

	for (i = 0; ks != NULL && i < ks->count; i++)
		if (strcmp(ks->keys[i].kid, kid) == 0)
			return (int)i;
	return -1;
}

int
jwt_jwks_json(const struct jwt_keyset *ks, int64_t now, char **out, size_t *len)
{
	yyjson_mut_doc *doc;
	yyjson_mut_val *root, *keys, *key;
	char x[48], y[48];
	size_t i, n;
	int rc = -ENOMEM;

	*out = NULL;
	doc = yyjson_mut_doc_new(NULL);
	if (doc == NULL)
		return -ENOMEM;
	root = yyjson_mut_obj(doc);
	keys = yyjson_mut_arr(doc);
	if (root == NULL || keys == NULL ||
	    !yyjson_mut_obj_add_val(doc, root, "keys", keys))
		goto out;
	yyjson_mut_doc_set_root(doc, root);
	for (i = 0; i < ks->count; i++) {
		if (jwt__keyset_retired(ks, (int)i, now))
			continue;
		b64url_encode(x, sizeof(x), ks->keys[i].point + 1, 32);
		b64url_encode(y, sizeof(y), ks->keys[i].point + 33, 32);
		key = yyjson_mut_arr_add_obj(doc, keys);
		if (key == NULL ||
		    !yyjson_mut_obj_add_str(doc, key, "kty", "EC") ||
		    !yyjson_mut_obj_add_str(doc, key, "crv", "P-256") ||
		    !yyjson_mut_obj_add_strcpy(doc, key, "x", x) ||
		    !yyjson_mut_obj_add_strcpy(doc, key, "y", y) ||
		    !yyjson_mut_obj_add_str(doc, key, "kid", ks->keys[i].kid) ||
		    !yyjson_mut_obj_add_str(doc, key, "use", "sig") ||
		    !yyjson_mut_obj_add_str(doc, key, "alg", "ES256"))
			goto out;
	}
	*out = yyjson_mut_write(doc, 0, &n);
	if (*out == NULL)
		goto out;
	if (len != NULL)
		*len = n;
	rc = 0;
out:
	yyjson_mut_doc_free(doc);
	return rc;
}

int
jwt_jwks_docs(const struct jwt_keyset *ks, int64_t now,
    struct jwt_jwks_doc docs[JWT_KEYS_MAX], unsigned *n)
{
	int64_t at = now, next;
	size_t i;
	int rc;

	for (*n = 0; *n < JWT_KEYS_MAX; at = next + 1) {
		rc = jwt_jwks_json(ks, at, &docs[*n].json, &docs[*n].len);
		if (rc != 0) {
			jwt_jwks_docs_free(docs, *n);
			*n = 0;
			return rc;
		}
		next = INT64_MAX; /* the first retirement from @p at on */
		for (i = 0; i < ks->count; i++)
			if (ks->keys[i].not_after >= at &&
			    ks->keys[i].not_after < next)
				next = ks->keys[i].not_after;
		docs[(*n)++].until = next;
		if (next == INT64_MAX)
			break;
	}
	return 0;
}

const struct jwt_jwks_doc *
jwt_jwks_doc_at(const struct jwt_jwks_doc *docs, unsigned n, int64_t now)
{
	unsigned i;

	for (i = 0; i + 1 < n && now > docs[i].until; i++)
		;
	return &docs[i];
}

void
jwt_jwks_docs_free(struct jwt_jwks_doc *docs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		free(docs[i].json);
		docs[i].json = NULL;
	}
}
