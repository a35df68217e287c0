/*
 * appliance/jwt.c: ES256 JWS compact tokens: building them over a signing
 * callback and verifying them strictly (API in appliance/jwt.h). The
 * keyset, the JWKS document and base64url live in jwt_keys.c.
 *
 * It must never accept an algorithm other than ES256, never let a token
 * choose its key other than by kid among keys we hold, never trust a claim
 * before the signature has verified, and never issue or accept a token
 * living longer than 15 minutes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "appliance/digest.h"
#include "appliance/jwt_impl.h"
#include "lib/sr.h"

/* The claims a token must carry, as check_claims() numbers them. */
#define JWT_REQUIRED (1u | 2u | 4u | 16u | 64u | 128u)

/* Header and payload sizes once decoded. */
#define JWT_HEADER_MAX 512
#define JWT_PAYLOAD_MAX 3072

/* A string claim: printable, no control bytes, fits a field. */
static int
field_ok(const char *s, size_t cap)
{
	size_t i, n = strnlen(s, cap);

	if (n == 0 || n >= cap)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Serialise @p doc and append its base64url to @p out. */
static int
append_b64_json(yyjson_mut_doc *doc, char *out, size_t cap, size_t *used)
{
	size_t len;
	char *json;
	int n;

	json = yyjson_mut_write(doc, 0, &len);
	if (json == NULL)
		return -ENOMEM;
	n = b64url_encode(out + *used, cap - *used, json, len);
	free(json);
	if (n < 0)
		return n;
	*used += (size_t)n;
	return 0;
}

int
jwt_build(const struct jwt_claims *c, jwt_sign_cb *sign, void *arg, char *out,
    size_t cap, size_t *outlen)
{
	yyjson_mut_doc *hdr = NULL, *pay = NULL;
	yyjson_mut_val *root;
	uint8_t digest[32], rs[64];
	size_t used = 0;
	int rc, n;

	if (cap > 0)
		out[0] = '\0';
	if (!field_ok(c->kid, JWT_FIELD_MAX) ||
	    !field_ok(c->iss, JWT_FIELD_MAX) ||
	    !field_ok(c->aud, JWT_FIELD_MAX) ||
	    !field_ok(c->sub, JWT_FIELD_MAX) ||
	    !field_ok(c->jti, JWT_FIELD_MAX) ||
	    (c->client_key[0] != '\0' &&
	        !field_ok(c->client_key, JWT_FIELD_MAX)) ||
	    (c->scope[0] != '\0' && !field_ok(c->scope, JWT_SCOPE_MAX)) ||
	    c->nbf < c->iat || c->exp <= c->iat || c->exp <= c->nbf)
		return -EINVAL;
	if (c->exp - c->iat > JWT_MAX_LIFETIME)
		return APP_EJWTLIFETIME;
	rc = -ENOMEM;
	hdr = yyjson_mut_doc_new(NULL);
	pay = yyjson_mut_doc_new(NULL);
	if (hdr == NULL || pay == NULL)
		goto out;
	root = yyjson_mut_obj(hdr);
	if (root == NULL ||
	    !yyjson_mut_obj_add_str(hdr, root, "alg", "ES256") ||
	    !yyjson_mut_obj_add_str(hdr, root, "typ", "JWT") ||
	    !yyjson_mut_obj_add_str(hdr, root, "kid", c->kid))
		goto out;
	yyjson_mut_doc_set_root(hdr, root);
	root = yyjson_mut_obj(pay);
	if (root == NULL || !yyjson_mut_obj_add_str(pay, root, "iss", c->iss) ||
	    !yyjson_mut_obj_add_str(pay, root, "sub", c->sub) ||
	    !yyjson_mut_obj_add_str(pay, root, "aud", c->aud) ||
	    (c->scope[0] != '\0' &&
	        !yyjson_mut_obj_add_str(pay, root, "scope", c->scope)) ||
	    !yyjson_mut_obj_add_int(pay, root, "iat", c->iat) ||
	    !yyjson_mut_obj_add_int(pay, root, "nbf", c->nbf) ||
	    !yyjson_mut_obj_add_int(pay, root, "exp", c->exp) ||
	    !yyjson_mut_obj_add_str(pay, root, "jti", c->jti) ||
	    (c->client_key[0] != '\0' &&
	        !yyjson_mut_obj_add_str(pay, root, "srk_key", c->client_key)))
		goto out;
	yyjson_mut_doc_set_root(pay, root);
	if ((rc = append_b64_json(hdr, out, cap, &used)) != 0)
		goto out;
	if (used + 2 > cap) {
		rc = -ENOSPC;
		goto out;
	}
	out[used++] = '.';
	if ((rc = append_b64_json(pay, out, cap, &used)) != 0)
		goto out;
	digest_sha256(out, used, digest);
	rc = sign(arg, digest, rs);
	if (rc != 0) {
		if (rc > 0)
			rc = -EIO;
		goto out;
	}
	if (used + 2 > cap) {
		rc = -ENOSPC;
		goto out;
	}
	out[used++] = '.';
	n = b64url_encode(out + used, cap - used, rs, sizeof(rs));
	if (n < 0) {
		rc = n;
		goto out;
	}
	used += (size_t)n;
	if (outlen != NULL)
		*outlen = used;
	rc = 0;
out:
	if (rc != 0 && cap > 0)
		out[0] = '\0';
	yyjson_mut_doc_free(hdr);
	yyjson_mut_doc_free(pay);
	return rc;
}

int
jwt_new_jti(char jti[static JWT_FIELD_MAX])
{
	uint8_t raw[16];
	int rc;

	rc = sr_os_random(raw, sizeof(raw));
	if (rc != 0)
		return rc;
	b64url_encode(jti, JWT_FIELD_MAX, raw, sizeof(raw));
	return 0;
}

/* ---------------------------------------------------------------- */
/* Verification                                                       */
/* ---------------------------------------------------------------- */

/* Copy a JSON string into a field; -1 if not a string, too long, empty
 * or holding a control byte (including an escaped NUL). */
static int
take_string(yyjson_val *v, char *dst, size_t cap)
{
	const char *s;
	size_t n;

	if (!yyjson_is_str(v))
		return -1;
	s = yyjson_get_str(v);
	n = yyjson_get_len(v);
	if (n == 0 || n >= cap || strlen(s) != n)
		return -1;
	memcpy(dst, s, n + 1);
	return field_ok(dst, cap) ? 0 : -1;
}

/* A member's name as C text, or NULL when it holds an escaped NUL
 * ("typ\u0000x"), which strcmp would otherwise read as "typ": JSON names
 * compare whole, as every other verifier of the same token reads them. */
static const char *
whole_name(yyjson_val *key)
{
	const char *k = yyjson_get_str(key);

	return k != NULL && strlen(k) == yyjson_get_len(key) ? k : NULL;
}

/* Parse the header: exactly alg (ES256), kid, and optionally typ (JWT). */
static int
check_header(const uint8_t *json, size_t len, struct jwt_claims *out)
{
	yyjson_doc *doc;
	yyjson_val *root, *key, *val;
	yyjson_obj_iter it;
	int rc = APP_EJWTFORMAT, seen_alg = 0, seen_kid = 0, seen_typ = 0;
	int alg_ok = 0;
	const char *k;

	doc = yyjson_read((const char *)json, len, 0);
	if (doc == NULL)
		return APP_EJWTFORMAT;
	root = yyjson_doc_get_root(doc);
	if (!yyjson_is_obj(root) || !yyjson_obj_iter_init(root, &it))
		goto out;
	while ((key = yyjson_obj_iter_next(&it)) != NULL) {
		val = yyjson_obj_iter_get_val(key);
		if ((k = whole_name(key)) == NULL)
			goto out; /* a name with a NUL is no name we know */
		if (strcmp(k, "alg") == 0 && !seen_alg++) {
			if (!yyjson_is_str(val))
				goto out;
			alg_ok = yyjson_get_len(val) == 5 &&
			    strcmp(yyjson_get_str(val), "ES256") == 0;
		} else if (strcmp(k, "kid") == 0 && !seen_kid++) {
			if (take_string(val, out->kid, sizeof(out->kid)) != 0)
				goto out;
		} else if (strcmp(k, "typ") == 0 && !seen_typ++) {
			if (!yyjson_is_str(val) ||
			    strcmp(yyjson_get_str(val), "JWT") != 0)
				goto out;
		} else {
			goto out; /* unknown or repeated parameter */
		}
	}
	if (!seen_alg)
		goto out;
	if (!alg_ok) {
		rc = APP_EJWTALG;
		goto out;
	}
	rc = seen_kid ? 0 : APP_EJWTFORMAT;
out:
	yyjson_doc_free(doc);
	return rc;
}

static int
take_time(yyjson_val *v, int64_t *t)
{
	if (!yyjson_is_int(v))
		return -1;
	if (yyjson_is_uint(v)) {
		if (yyjson_get_uint(v) > (uint64_t)INT64_MAX / 2)
			return -1;
		*t = (int64_t)yyjson_get_uint(v);
	} else {
		*t = yyjson_get_sint(v);
	}
	return *t >= 0 ? 0 : -1;
}

/* aud: our audience as a string, or inside an array of strings. */
static int
check_aud(yyjson_val *v, const char *want, char *dst, size_t cap)
{
	yyjson_arr_iter it;
	yyjson_val *item;
	int found = 0;

	if (yyjson_is_str(v)) {
		if (take_string(v, dst, cap) != 0)
			return APP_EJWTFORMAT;
		return strcmp(dst, want) == 0 ? 0 : APP_EJWTAUD;
	}
	if (!yyjson_is_arr(v) || !yyjson_arr_iter_init(v, &it))
		return APP_EJWTFORMAT;
	while ((item = yyjson_arr_iter_next(&it)) != NULL) {
		if (take_string(item, dst, cap) != 0)
			return APP_EJWTFORMAT;
		if (strcmp(dst, want) == 0)
			found = 1;
	}
	if (!found)
		return APP_EJWTAUD;
	memcpy(dst, want, strlen(want) + 1);
	return 0;
}

static int
split_scopes(struct jwt_claims *c)
{
	const char *p = c->scope;
	size_t len;

	c->scope_count = 0;
	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		len = strcspn(p, " ");
		if (len >= JWT_FIELD_MAX || c->scope_count == JWT_SCOPES_MAX)
			return APP_EJWTFORMAT;
		memcpy(c->scopes[c->scope_count], p, len);
		c->scopes[c->scope_count][len] = '\0';
		c->scope_count++;
		p += len;
	}
	return 0;
}

/* The claims, read only after the signature verified. */
static int
check_claims(const uint8_t *json, size_t len, const struct jwt_verify_opts *o,
    struct jwt_claims *c)
{
	yyjson_doc *doc;
	yyjson_val *root, *key, *val, *aud = NULL;
	yyjson_obj_iter it;
	unsigned seen = 0, bit;
	int rc = APP_EJWTFORMAT, bad;
	const char *k;

	doc = yyjson_read((const char *)json, len, 0);
	if (doc == NULL)
		return APP_EJWTFORMAT;
	root = yyjson_doc_get_root(doc);
	if (!yyjson_is_obj(root) || !yyjson_obj_iter_init(root, &it))
		goto out;
	while ((key = yyjson_obj_iter_next(&it)) != NULL) {
		val = yyjson_obj_iter_get_val(key);
		if ((k = whole_name(key)) == NULL)
			continue; /* not a claim we use: "jti\u0000" is not jti
			           */
		if (strcmp(k, "iss") == 0) {
			bit = 1;
			bad = take_string(val, c->iss, sizeof(c->iss));
		} else if (strcmp(k, "sub") == 0) {
			bit = 2;
			bad = take_string(val, c->sub, sizeof(c->sub));
		} else if (strcmp(k, "aud") == 0) {
			bit = 4;
			aud = val;
			bad = 0;
		} else if (strcmp(k, "scope") == 0) {
			/* A string; "" means no scopes. */
			bit = 8;
			bad = !yyjson_is_str(val) ||
			    (yyjson_get_len(val) > 0 &&
			        take_string(val, c->scope, sizeof(c->scope)));
		} else if (strcmp(k, "iat") == 0) {
			bit = 16;
			bad = take_time(val, &c->iat);
		} else if (strcmp(k, "nbf") == 0) {
			bit = 32;
			bad = take_time(val, &c->nbf);
		} else if (strcmp(k, "exp") == 0) {
			bit = 64;
			bad = take_time(val, &c->exp);
		} else if (strcmp(k, "jti") == 0) {
			bit = 128;
			bad = take_string(val, c->jti, sizeof(c->jti));
		} else if (strcmp(k, "srk_key") == 0) {
			bit = 256;
			bad = take_string(
			    val, c->client_key, sizeof(c->client_key));
		} else {
			continue; /* claims we do not use are ignored */
		}
		if (bad || (seen & bit))
			goto out;
		seen |= bit;
	}
	/* Required: iss sub aud iat exp jti; nbf defaults to iat. */
	if ((seen & JWT_REQUIRED) != JWT_REQUIRED)
		goto out;
	if (!(seen & 32))
		c->nbf = c->iat;
	if ((rc = split_scopes(c)) != 0)
		goto out;
	if (strcmp(c->iss, o->iss) != 0) {
		rc = APP_EJWTISS;
		goto out;
	}
	if ((rc = check_aud(aud, o->aud, c->aud, sizeof(c->aud))) != 0)
		goto out;
	if (c->exp <= c->iat || c->exp - c->iat > JWT_MAX_LIFETIME ||
	    c->nbf > c->exp) {
		rc = APP_EJWTLIFETIME;
		goto out;
	}
	if (o->now >= c->exp + JWT_SKEW) {
		rc = APP_EJWTEXPIRED;
		goto out;
	}
	if (o->now < c->nbf - JWT_SKEW || o->now < c->iat - JWT_SKEW) {
		rc = APP_EJWTNOTYET;
		goto out;
	}
	rc = 0;
out:
	yyjson_doc_free(doc);
	return rc;
}

int
jwt_verify(const struct jwt_keyset *ks, const char *token,
    const struct jwt_verify_opts *opts, struct jwt_claims *out)
{
	uint8_t header[JWT_HEADER_MAX], payload[JWT_PAYLOAD_MAX], sig[64];
	uint8_t digest[32];
	const char *dot1, *dot2;
	size_t len;
	int hlen, plen, slen, rc, verified_now = 0;
	struct jwt__cache *cache;
	int key;

	memset(out, 0, sizeof(*out));
	len = strnlen(token, JWT_TOKEN_MAX + 1);
	if (len > JWT_TOKEN_MAX)
		return APP_EJWTFORMAT;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL
	    ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))
	    : NULL;
	if (dot2 == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return APP_EJWTFORMAT;
	hlen = b64url_decode(
	    header, sizeof(header), token, (size_t)(dot1 - token));
	plen = b64url_decode(
	    payload, sizeof(payload), dot1 + 1, (size_t)(dot2 - dot1 - 1));
	slen = b64url_decode(
	    sig, sizeof(sig), dot2 + 1, len - (size_t)(dot2 + 1 - token));
	if (hlen <= 0 || plen <= 0)
		return APP_EJWTFORMAT;
	rc = check_header(header, (size_t)hlen, out);
	if (rc != 0)
		goto fail;
	if (slen != 64) {
		rc = APP_EJWTFORMAT;
		goto fail;
	}
	key = jwt__keyset_find(ks, out->kid);
	if (key < 0 || jwt__keyset_retired(ks, key, opts->now)) {
		rc = APP_EJWTKID;
		goto fail;
	}
	digest_sha256(token, (size_t)(dot2 - token), digest);
	cache = jwt__keyset_cache(ks);
	if (!jwt__cache_seen(cache, digest, sig, opts->now)) {
		if (opts->cached_only) {
			rc = -EAGAIN;
			goto fail;
		}
		rc = jwt__keyset_verify(ks, key, digest, sig);
		if (rc != 0)
			goto fail;
		verified_now = 1;
	}
	rc = check_claims(payload, (size_t)plen, opts, out);
	if (rc != 0)
		goto fail;
	if (verified_now)
		jwt__cache_add(
		    cache, digest, sig, out->exp + JWT_SKEW, opts->now);
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	return rc;
}
