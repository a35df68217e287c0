/*
 * tests/unit/appliance/test_jwt.c: appliance/jwt.c and jwt_keys.c: ES256
 * tokens signed by a real P-256 key (PSA, in software, standing in for the
 * HSM signer) and verified; tampered header, payload and signature
 * refused; "none", "HS256" and other algorithms refused; expiry, not-before
 * and skew edges; audience, issuer and unknown kid; the 15-minute lifetime
 * on both sides; malformed tokens; base64url vectors and strictness; the
 * keyset's checks; and the JWKS document parsed back with x/y compared to
 * the key's public point. The keyset's memory of verified signatures and
 * PSA checking alone are in test_jwt_memory.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <psa/crypto.h>
#include <yyjson.h>

#include "tests/unit/appliance/jwttest.h"

static int
sign_fails(void *arg, const uint8_t digest[32], uint8_t rs[64])
{
	(void)arg;
	(void)digest;
	memset(rs, 0, 64);
	return P11_EDEVICE;
}

/* Sign arbitrary header and payload JSON with @p key, as an attacker with
 * the right key (or a buggy issuer) would. */
static void
craft(psa_key_id_t key, const char *header, const char *payload, char *out,
    size_t cap)
{
	uint8_t digest[32], rs[64];
	size_t used, n;
	int len;

	len = b64url_encode(out, cap, header, strlen(header));
	assert_true(len > 0);
	used = (size_t)len;
	out[used++] = '.';
	len = b64url_encode(out + used, cap - used, payload, strlen(payload));
	assert_true(len > 0);
	used += (size_t)len;
	assert_int_equal(
	    mbedtls_sha256((const unsigned char *)out, used, digest, 0), 0);
	assert_int_equal(psa_sign_hash(key, PSA_ALG_ECDSA(PSA_ALG_SHA_256),
	                     digest, 32, rs, 64, &n),
	    PSA_SUCCESS);
	out[used++] = '.';
	assert_true(b64url_encode(out + used, cap - used, rs, 64) > 0);
}

#define GOOD_HEADER "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"
#define K2_HEADER "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k2\"}"
#define NONE_HEADER "{\"alg\":\"none\",\"kid\":\"k1\"}"
#define GOOD_PAYLOAD(exp) \
	"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\"," \
	"\"iat\":1736942400,\"exp\":" exp ",\"jti\":\"j\"}"

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	char token[JWT_TOKEN_MAX], header[128];
	size_t len;
	int n;

	claims_init(&c);
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), &len), 0);
	assert_int_equal(f->sign_calls, 1);
	assert_int_equal(len, strlen(token));
	/* The header is exactly what RFC 7515 clients expect. */
	n = b64url_decode(header, sizeof(header) - 1, token,
	    (size_t)(strchr(token, '.') - token));
	assert_true(n > 0);
	header[n] = '\0';
	assert_string_equal(header, GOOD_HEADER);
	assert_int_equal(verify_at(f, token, NOW + 10, &out), 0);
	assert_string_equal(out.kid, "k1");
	assert_string_equal(out.iss, ISS);
	assert_string_equal(out.aud, AUD);
	assert_string_equal(out.sub, "app:billing");
	assert_string_equal(out.jti, "jti-0001");
	assert_string_equal(out.scope, "inference keys:read");
	assert_int_equal(out.scope_count, 2);
	assert_string_equal(out.scopes[0], "inference");
	assert_string_equal(out.scopes[1], "keys:read");
	assert_int_equal(out.iat, NOW);
	assert_int_equal(out.nbf, NOW);
	assert_int_equal(out.exp, NOW + 900);
	/* No scope: the claim is left out and comes back empty. */
	c.scope[0] = '\0';
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
	assert_int_equal(out.scope_count, 0);
	assert_null(strstr(token, "scope"));
	/* No key named: the claim is left out and comes back empty; named,
	 * it comes back as it went; one with a control byte is refused. */
	assert_string_equal(out.client_key, "");
	snprintf(c.client_key, sizeof(c.client_key), "AbCdEf012345");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
	assert_string_equal(out.client_key, "AbCdEf012345");
	c.client_key[3] = '\n';
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), -EINVAL);
}

static void
test_tampering(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	char token[JWT_TOKEN_MAX], forged[JWT_TOKEN_MAX], part[512];
	char *dot1, *dot2;
	int n;

	claims_init(&c);
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	dot1 = strchr(token, '.');
	dot2 = strchr(dot1 + 1, '.');
	/* Payload: a different subject, the original signature. */
	n = b64url_encode(part, sizeof(part), GOOD_PAYLOAD("1736943300"),
	    strlen(GOOD_PAYLOAD("1736943300")));
	assert_true(n > 0);
	snprintf(forged, sizeof(forged), "%.*s.%s%s", (int)(dot1 - token),
	    token, part, dot2);
	assert_int_equal(verify_at(f, forged, NOW, &out), APP_EJWTSIG);
	assert_string_equal(out.sub, ""); /* nothing leaks out on failure */
	/* Header: point it at the other key. */
	n = b64url_encode(part, sizeof(part), K2_HEADER, strlen(K2_HEADER));
	assert_true(n > 0);
	snprintf(forged, sizeof(forged), "%s%s", part, dot1);
	assert_int_equal(verify_at(f, forged, NOW, &out), APP_EJWTSIG);
	/* Signature: each of a few bytes flipped. */
	for (n = 0; n < 3; n++) {
		strcpy(forged, token);
		char *s = forged + (dot2 - token) + 1 + n * 20;
		*s = *s == 'A' ? 'B' : 'A';
		assert_int_equal(verify_at(f, forged, NOW, &out), APP_EJWTSIG);
	}
	/* The untouched token still verifies. */
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
}

static void
test_algorithms(void **state)
{
	struct fixture *f = *state;
	char token[JWT_TOKEN_MAX], h[256], p[512];
	struct jwt_claims out;
	static const char *const bad_alg[] = {
		"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}",
		"{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}",
		"{\"alg\":\"es256\",\"kid\":\"k1\"}",
		"{\"alg\":\"ES384\",\"kid\":\"k1\"}",
		"{\"alg\":\"ES256 \",\"kid\":\"k1\"}",
		"{\"alg\":\"ES256\\u0000\",\"kid\":\"k1\"}",
	};
	size_t i;

	(void)f;
	for (i = 0; i < sizeof(bad_alg) / sizeof(bad_alg[0]); i++) {
		craft(f->key, bad_alg[i], GOOD_PAYLOAD("1736943300"), token,
		    sizeof(token));
		assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTALG);
	}
	/* The classic "none" token: empty signature part. */
	b64url_encode(h, sizeof(h), NONE_HEADER, strlen(NONE_HEADER));
	b64url_encode(p, sizeof(p), GOOD_PAYLOAD("1736943300"),
	    strlen(GOOD_PAYLOAD("1736943300")));
	snprintf(token, sizeof(token), "%s.%s.", h, p);
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTALG);
	/* alg not a string, or missing. */
	craft(f->key, "{\"alg\":256,\"kid\":\"k1\"}",
	    GOOD_PAYLOAD("1736943300"), token, sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTFORMAT);
	craft(f->key, "{\"kid\":\"k1\"}", GOOD_PAYLOAD("1736943300"), token,
	    sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTFORMAT);
}

static void
test_header_strictness(void **state)
{
	struct fixture *f = *state;
	char token[JWT_TOKEN_MAX];
	struct jwt_claims out;
	static const char *const bad[] = {
		"{\"alg\":\"ES256\",\"kid\":\"k1\",\"jku\":\"https://x/\"}",
		"{\"alg\":\"ES256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}",
		"{\"alg\":\"ES256\",\"kid\":\"k1\",\"alg\":\"ES256\"}",
		"{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"JOSE\"}",
		/* a name is the whole name: "typ" with a NUL and more is
		 * an unknown parameter, not typ */
		"{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\\u0000x\":\"JWT\"}",
		"{\"alg\\u0000\":\"ES256\",\"kid\":\"k1\"}",
		"{\"alg\":\"ES256\"}",
		"{\"alg\":\"ES256\",\"kid\":\"\"}",
		"{\"alg\":\"ES256\",\"kid\":7}",
		"[\"ES256\"]",
		"{\"alg\":\"ES256\",\"kid\":\"k1\"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		craft(f->key, bad[i], GOOD_PAYLOAD("1736943300"), token,
		    sizeof(token));
		if (verify_at(f, token, NOW, &out) != APP_EJWTFORMAT)
			fail_msg("header accepted: %s", bad[i]);
	}
	/* typ is optional; the good header without it verifies. */
	craft(f->key, "{\"kid\":\"k1\",\"alg\":\"ES256\"}",
	    GOOD_PAYLOAD("1736943300"), token, sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
}

static void
test_times_and_audience(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	struct jwt_verify_opts o = { ISS, AUD, NOW, 0 };
	char token[JWT_TOKEN_MAX];

	claims_init(&c);
	c.nbf = NOW + 100;
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	/* exp is NOW+900; JWT_SKEW (60 s) either side. */
	assert_int_equal(verify_at(f, token, NOW + 959, &out), 0);
	assert_int_equal(verify_at(f, token, NOW + 960, &out), APP_EJWTEXPIRED);
	assert_int_equal(
	    verify_at(f, token, NOW + 100000, &out), APP_EJWTEXPIRED);
	assert_int_equal(verify_at(f, token, NOW + 40, &out), 0);
	assert_int_equal(verify_at(f, token, NOW + 39, &out), APP_EJWTNOTYET);
	/* iat in the future beyond the skew is not yet valid either. */
	craft(f->key, GOOD_HEADER, GOOD_PAYLOAD("1736943300"), token,
	    sizeof(token));
	assert_int_equal(verify_at(f, token, NOW - 61, &out), APP_EJWTNOTYET);
	assert_int_equal(verify_at(f, token, NOW - 60, &out), 0);
	/* Audience and issuer. */
	o.aud = "another-api";
	assert_int_equal(jwt_verify(f->ks, token, &o, &out), APP_EJWTAUD);
	o.aud = AUD;
	o.iss = "https://evil.example";
	assert_int_equal(jwt_verify(f->ks, token, &o, &out), APP_EJWTISS);
	/* aud as an array holding ours is accepted; without ours refused. */
	craft(f->key, GOOD_HEADER,
	    "{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":[\"x\",\"" AUD "\"],"
	    "\"iat\":1736942400,\"exp\":1736942500,\"jti\":\"j\"}",
	    token, sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
	assert_string_equal(out.aud, AUD);
	craft(f->key, GOOD_HEADER,
	    "{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":[\"x\"],"
	    "\"iat\":1736942400,\"exp\":1736942500,\"jti\":\"j\"}",
	    token, sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTAUD);
}

static void
test_kid(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	char token[JWT_TOKEN_MAX];

	claims_init(&c);
	strcpy(c.kid, "retired-2024");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTKID);
	/* The right kid for the other key: the signature decides. */
	strcpy(c.kid, "k2");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTSIG);
	/* A retired key: its tokens verify until its last moment, then
	 * not, whatever their own times say (the signature cache included). */
	strcpy(c.kid, "k1");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	assert_int_equal(jwt_keyset_retire(f->ks, "k1", NOW + 10), 0);
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
	assert_int_equal(verify_at(f, token, NOW + 10, &out), 0);
	assert_int_equal(verify_at(f, token, NOW + 11, &out), APP_EJWTKID);
	assert_int_equal(jwt_keyset_retire(f->ks, "nope", NOW), -ENOENT);
	assert_int_equal(jwt_keyset_retire(f->ks, "k1", 0), 0); /* undone */
	assert_int_equal(verify_at(f, token, NOW + 11, &out), 0);
	/* An empty keyset knows no kid. */
	{
		struct jwt_keyset *empty;
		struct jwt_verify_opts o = { ISS, AUD, NOW, 0 };

		assert_int_equal(jwt_keyset_new(&empty), 0);
		assert_int_equal(
		    jwt_verify(empty, token, &o, &out), APP_EJWTKID);
		jwt_keyset_free(empty);
	}
}

static void
test_lifetime(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	char token[JWT_TOKEN_MAX];

	claims_init(&c);
	c.exp = c.iat + JWT_MAX_LIFETIME + 1;
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL),
	    APP_EJWTLIFETIME);
	assert_string_equal(token, "");
	/* A validly signed token that claims 16 minutes is not trusted. */
	craft(f->key, GOOD_HEADER, GOOD_PAYLOAD("1736943301"), token,
	    sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTLIFETIME);
	craft(f->key, GOOD_HEADER, GOOD_PAYLOAD("1736942400"), token,
	    sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTLIFETIME);
	/* Bad claims at build time. */
	claims_init(&c);
	c.nbf = c.iat - 1;
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), -EINVAL);
	claims_init(&c);
	c.sub[0] = '\0';
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), -EINVAL);
	claims_init(&c);
	strcpy(c.sub, "line\nbreak");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), -EINVAL);
	/* A failing signer's code comes back; nothing is half-written. */
	claims_init(&c);
	assert_int_equal(
	    jwt_build(&c, sign_fails, f, token, sizeof(token), NULL),
	    P11_EDEVICE);
	assert_string_equal(token, "");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, 100, NULL), -ENOSPC);
}

static void
test_claims_strictness(void **state)
{
	struct fixture *f = *state;
	char token[JWT_TOKEN_MAX];
	struct jwt_claims out;
	static const char *const bad[] = {
		/* missing sub, jti, exp; wrong types; duplicates */
		"{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1736942400,"
		"\"exp\":1736942500,\"jti\":\"j\"}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"iat\":1736942400,\"exp\":1736942500}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"iat\":1736942400,\"jti\":\"j\"}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"iat\":1736942400,\"exp\":\"1736942500\",\"jti\":\"j\"}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"iat\":1736942400,\"exp\":1736942500.5,\"jti\":\"j\"}",
		"{\"iss\":\"" ISS
		"\",\"sub\":\"s\",\"sub\":\"root\",\"aud\":\"" AUD
		"\",\"iat\":1736942400,\"exp\":1736942500,\"jti\":\"j\"}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\\u0000x\",\"aud\":\"" AUD
		"\","
		"\"iat\":1736942400,\"exp\":1736942500,\"jti\":\"j\"}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"scope\":[\"a\"],\"iat\":1736942400,\"exp\":1736942500,"
		"\"jti\":\"j\"}",
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"iat\":-1,\"exp\":1736942500,\"jti\":\"j\"}",
		/* "jti" followed by a NUL is another claim: jti is missing */
		"{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
		"\"iat\":1736942400,\"exp\":1736942500,\"jti\\u0000\":\"j\"}",
		"\"just a string\"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		craft(f->key, GOOD_HEADER, bad[i], token, sizeof(token));
		if (verify_at(f, token, NOW, &out) != APP_EJWTFORMAT)
			fail_msg("payload accepted: %s", bad[i]);
	}
	/* Claims we do not use are ignored. */
	craft(f->key, GOOD_HEADER,
	    "{\"iss\":\"" ISS "\",\"sub\":\"s\",\"aud\":\"" AUD "\","
	    "\"iat\":1736942400,\"exp\":1736942500,\"jti\":\"j\","
	    "\"azp\":\"x\",\"extra\":{\"a\":[1,2]}}",
	    token, sizeof(token));
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
}

static void
test_malformed_tokens(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	char token[JWT_TOKEN_MAX], bad[JWT_TOKEN_MAX + 10];
	char *dot2;

	claims_init(&c);
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	dot2 = strrchr(token, '.');
	assert_int_equal(verify_at(f, "", NOW, &out), APP_EJWTFORMAT);
	assert_int_equal(verify_at(f, "a.b", NOW, &out), APP_EJWTFORMAT);
	assert_int_equal(verify_at(f, "..", NOW, &out), APP_EJWTFORMAT);
	snprintf(bad, sizeof(bad), "%s.", token);
	assert_int_equal(verify_at(f, bad, NOW, &out), APP_EJWTFORMAT);
	snprintf(bad, sizeof(bad), "%s=", token);
	assert_int_equal(verify_at(f, bad, NOW, &out), APP_EJWTFORMAT);
	snprintf(bad, sizeof(bad), " %s", token);
	assert_int_equal(verify_at(f, bad, NOW, &out), APP_EJWTFORMAT);
	/* A signature of the wrong length. */
	snprintf(bad, sizeof(bad), "%.*sAAAA", (int)(dot2 - token + 1), token);
	assert_int_equal(verify_at(f, bad, NOW, &out), APP_EJWTFORMAT);
	/* Standard base64 characters are not base64url. */
	strcpy(bad, token);
	bad[dot2 - token + 5] = '+';
	assert_int_equal(verify_at(f, bad, NOW, &out), APP_EJWTFORMAT);
	/* Too long. */
	memset(bad, 'A', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	assert_int_equal(verify_at(f, bad, NOW, &out), APP_EJWTFORMAT);
}

static void
test_base64url(void **state)
{
	static const struct {
		const char *raw;
		size_t len;
		const char *text;
	} v[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg" },
		{ "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" },
		{ "foob", 4, "Zm9vYg" },
		{ "fooba", 5, "Zm9vYmE" },
		{ "foobar", 6, "Zm9vYmFy" },
		{ "\xfb\xff\xbf", 3, "-_-_" },
	};
	static const char *const bad[] = { "Z", "Zm9vY", "Zg==", "Zg=", "Zm+v",
		"Zm/v", "Zm 9", "Zh", "Zm9", "Zm\n8" };
	char out[32];
	size_t i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = b64url_encode(out, sizeof(out), v[i].raw, v[i].len);
		assert_int_equal(n, (int)strlen(v[i].text));
		assert_string_equal(out, v[i].text);
		n = b64url_decode(
		    out, sizeof(out), v[i].text, strlen(v[i].text));
		assert_int_equal(n, (int)v[i].len);
		assert_memory_equal(out, v[i].raw, v[i].len);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (b64url_decode(out, sizeof(out), bad[i], strlen(bad[i])) !=
		    -EINVAL)
			fail_msg("'%s' decoded", bad[i]);
	assert_int_equal(b64url_encode(out, 8, "foobar", 6), -ENOSPC);
	assert_int_equal(b64url_decode(out, 5, "Zm9vYmFy", 8), -ENOSPC);
}

static void
test_keyset_and_jwks(void **state)
{
	struct fixture *f = *state;
	uint8_t bad_point[JWT_POINT_BYTES], xy[48];
	yyjson_doc *doc;
	yyjson_val *keys, *k;
	char *json;
	size_t len, i;
	const char *x;

	memcpy(bad_point, f->point, JWT_POINT_BYTES);
	bad_point[64] ^= 1; /* off the curve */
	assert_int_equal(jwt_keyset_add(f->ks, "k3", bad_point), -EINVAL);
	bad_point[0] = 0x02;
	assert_int_equal(jwt_keyset_add(f->ks, "k3", bad_point), -EINVAL);
	assert_int_equal(jwt_keyset_add(f->ks, "k1", f->other_point), -EEXIST);
	assert_int_equal(jwt_keyset_add(f->ks, "", f->point), -EINVAL);
	assert_int_equal(jwt_keyset_add(f->ks, "a b", f->point), -EINVAL);
	assert_int_equal(jwt_jwks_json(f->ks, NOW, &json, &len), 0);
	assert_int_equal(strlen(json), len);
	doc = yyjson_read(json, len, 0);
	assert_non_null(doc);
	keys = yyjson_obj_get(yyjson_doc_get_root(doc), "keys");
	assert_int_equal(yyjson_arr_size(keys), 2);
	for (i = 0; i < 2; i++) {
		const uint8_t *point = i == 0 ? f->point : f->other_point;

		k = yyjson_arr_get(keys, i);
		assert_string_equal(
		    yyjson_get_str(yyjson_obj_get(k, "kty")), "EC");
		assert_string_equal(
		    yyjson_get_str(yyjson_obj_get(k, "crv")), "P-256");
		assert_string_equal(
		    yyjson_get_str(yyjson_obj_get(k, "alg")), "ES256");
		assert_string_equal(
		    yyjson_get_str(yyjson_obj_get(k, "use")), "sig");
		assert_string_equal(yyjson_get_str(yyjson_obj_get(k, "kid")),
		    i == 0 ? "k1" : "k2");
		x = yyjson_get_str(yyjson_obj_get(k, "x"));
		assert_int_equal(
		    b64url_decode(xy, sizeof(xy), x, strlen(x)), 32);
		assert_memory_equal(xy, point + 1, 32);
		x = yyjson_get_str(yyjson_obj_get(k, "y"));
		assert_int_equal(
		    b64url_decode(xy, sizeof(xy), x, strlen(x)), 32);
		assert_memory_equal(xy, point + 33, 32);
	}
	yyjson_doc_free(doc);
	free(json);
}

/* The JWKS documents over time: a key retired at T is listed up to and
 * including T, and gone from T + 1; the last document serves forever. */
static void
test_jwks_docs(void **state)
{
	struct fixture *f = *state;
	struct jwt_keyset *ks = NULL;
	struct jwt_jwks_doc docs[JWT_KEYS_MAX];
	unsigned n = 0;
	static const struct {
		int64_t at;
		unsigned doc;
	} when[] = { { NOW, 0 }, { NOW + 10, 0 }, { NOW + 11, 1 },
		{ NOW + 20, 1 }, { NOW + 21, 2 }, { INT64_MAX, 2 } };
	size_t i;

	assert_int_equal(jwt_keyset_new(&ks), 0);
	assert_int_equal(jwt_keyset_add(ks, "cur", f->point), 0);
	assert_int_equal(jwt_keyset_add(ks, "old", f->other_point), 0);
	assert_int_equal(jwt_keyset_add(ks, "older", f->point), 0);
	assert_int_equal(jwt_keyset_retire(ks, "old", NOW + 20), 0);
	assert_int_equal(jwt_keyset_retire(ks, "older", NOW + 10), 0);
	assert_int_equal(jwt_jwks_docs(ks, NOW, docs, &n), 0);
	assert_int_equal(n, 3);
	assert_true(docs[0].until == NOW + 10 && docs[1].until == NOW + 20 &&
	    docs[2].until == INT64_MAX);
	assert_non_null(strstr(docs[0].json, "\"kid\":\"older\""));
	assert_non_null(strstr(docs[0].json, "\"kid\":\"old\""));
	assert_null(strstr(docs[1].json, "\"kid\":\"older\""));
	assert_non_null(strstr(docs[1].json, "\"kid\":\"old\""));
	assert_null(strstr(docs[2].json, "\"kid\":\"old"));
	for (i = 0; i < 3; i++) {
		assert_non_null(strstr(docs[i].json, "\"kid\":\"cur\""));
		assert_int_equal(strlen(docs[i].json), docs[i].len);
	}
	for (i = 0; i < sizeof(when) / sizeof(when[0]); i++)
		assert_ptr_equal(
		    jwt_jwks_doc_at(docs, n, when[i].at), &docs[when[i].doc]);
	jwt_jwks_docs_free(docs, n);
	/* Started after both retired: one document, the current key's. */
	assert_int_equal(jwt_jwks_docs(ks, NOW + 30, docs, &n), 0);
	assert_int_equal(n, 1);
	assert_null(strstr(docs[0].json, "\"kid\":\"old"));
	assert_ptr_equal(jwt_jwks_doc_at(docs, n, NOW), &docs[0]);
	jwt_jwks_docs_free(docs, n);
	jwt_keyset_free(ks);
}

static void
test_jti(void **state)
{
	char a[JWT_FIELD_MAX], b[JWT_FIELD_MAX];

	(void)state;
	assert_int_equal(jwt_new_jti(a), 0);
	assert_int_equal(jwt_new_jti(b), 0);
	assert_int_equal(strlen(a), 22);
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_algorithms),
		cmocka_unit_test(test_header_strictness),
		cmocka_unit_test(test_times_and_audience),
		cmocka_unit_test(test_kid),
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_claims_strictness),
		cmocka_unit_test(test_malformed_tokens),
		cmocka_unit_test(test_base64url),
		cmocka_unit_test(test_keyset_and_jwks),
		cmocka_unit_test(test_jwks_docs),
		cmocka_unit_test(test_jti),
	};

	return cmocka_run_group_tests_name(
	    "appliance/jwt", tests, setup, teardown);
}
