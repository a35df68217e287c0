/*
 * appliance/jwt.h: the session tokens of POST /oauth/token: JWS compact
 * tokens (RFC 7515/7519) signed with ES256 (ECDSA P-256, SHA-256), their
 * strict verification, the JWKS document that publishes the public keys,
 * and the base64url coding (RFC 4648 section 5, no padding) they use.
 *
 * Signing goes through a callback so the private key can stay in the HSM:
 * the daemon passes one that runs the keystore's KS_OP_SIGN; tests pass a
 * software key. Verification accepts exactly one algorithm, ES256, names
 * the key by the header's "kid" among a set of P-256 public points, and
 * accepts no header parameter it does not know (no "jku", "x5u", "crit"),
 * so no token can pick its own key or algorithm.
 *
 * Lifetimes: a token lives at most JWT_MAX_LIFETIME (15 minutes) from
 * iat to exp; jwt_build() refuses longer ones and jwt_verify() refuses to
 * trust one that claims longer. Time checks allow JWT_SKEW seconds of
 * clock difference.
 *
 * A keyset remembers the signatures it has verified (the digest of the
 * signed part and the exact signature, until the token's exp plus the
 * skew), so a token presented again skips only the ECDSA check (about
 * 80 us through libcrypto, 1.3 ms through mbedTLS, which checks only when
 * libcrypto cannot); its header, kid and claims are checked again every
 * time. Nothing that could be presented as a credential is kept.
 *
 * Threading: jwt_build(), jwt_verify() and the base64url functions may run
 * on any thread. A keyset is built once (jwt_keyset_add) and then only
 * read: any number of threads may verify with it at once (its memory of
 * verified signatures has its own locks), but adding and freeing must not
 * overlap a verify. Rotate by building a new keyset and swapping the
 * pointer the loops read; the new keyset starts with an empty memory.
 */
#ifndef SR_APPLIANCE_JWT_H
#define SR_APPLIANCE_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_LIFETIME 900 /* seconds, iat to exp */
#define JWT_SKEW 60          /* seconds of clock difference tolerated */
#define JWT_TOKEN_MAX 4096   /* the longest token built or read */
#define JWT_FIELD_MAX 256    /* iss, aud, sub, kid, jti, each + NUL */
#define JWT_SCOPE_MAX 1024   /* the scope claim + NUL */
#define JWT_SCOPES_MAX 32    /* scopes in one token */
#define JWT_KEYS_MAX 16      /* keys in one keyset */
#define JWT_POINT_BYTES 65   /* uncompressed P-256 point: 04 || x || y */

/* The claims we issue and read. Strings are NUL-terminated. */
struct jwt_claims {
	char kid[JWT_FIELD_MAX]; /* from the header */
	char iss[JWT_FIELD_MAX];
	char aud[JWT_FIELD_MAX];
	char sub[JWT_FIELD_MAX];
	char jti[JWT_FIELD_MAX];
	/* "srk_key": the id of the API key the token was issued for, so its
	 * requests are that key's and its revocation ends them; "" none */
	char client_key[JWT_FIELD_MAX];
	char scope[JWT_SCOPE_MAX]; /* space-separated, as OAuth sends it */
	int64_t iat, nbf, exp;     /* seconds since 1970, UTC */
	/* Filled by jwt_verify(): the scope claim split at blanks. */
	size_t scope_count;
	char scopes[JWT_SCOPES_MAX][JWT_FIELD_MAX];
};

/**
 * @brief The signer: ECDSA P-256 over a SHA-256 digest.
 * @param[in]  digest  SHA-256 of "BASE64URL(header).BASE64URL(payload)".
 * @param[out] rs      the signature as r || s, 32 bytes each, big-endian.
 * @return 0, or a negative code that jwt_build() passes back unchanged.
 * @note Called synchronously, once, on the caller's thread.
 */
typedef int jwt_sign_cb(void *arg, const uint8_t digest[32], uint8_t rs[64]);

/**
 * @brief Build and sign a token for @p c (kid, iss, aud, sub, jti, scope,
 * iat, nbf, exp; scope may be empty and is then left out).
 * @param[out] out     the token, NUL-terminated.
 * @param[out] outlen  its length; may be NULL.
 * @return 0; -EINVAL for a missing field, a field with control bytes, or
 *         nbf/exp before iat; APP_EJWTLIFETIME when exp - iat is over
 *         JWT_MAX_LIFETIME; -ENOSPC when @p cap is too small (JWT_TOKEN_MAX
 *         always suffices); -ENOMEM; or the signer's own code.
 */
int jwt_build(const struct jwt_claims *c, jwt_sign_cb *sign, void *arg,
    char *out, size_t cap, size_t *outlen);

/**
 * @brief A fresh random token id (128 bits, base64url, 22 characters).
 * @return 0 or -errno from the CSPRNG.
 */
int jwt_new_jti(char jti[static JWT_FIELD_MAX]);

struct jwt_keyset; /* opaque: kid -> P-256 public key */

/**
 * @brief A new empty keyset.
 * @return 0 or -ENOMEM; APP_EJWTSIG if the crypto library cannot start.
 * @note The caller owns *out and frees it with jwt_keyset_free().
 */
int jwt_keyset_new(struct jwt_keyset **out);

/**
 * @brief Add a public key under @p kid (1 to JWT_FIELD_MAX - 1 bytes of
 * printable ASCII, not already present).
 * @param[in] point  the uncompressed point, 04 || x || y; copied.
 * @return 0; -EINVAL for a point not on the curve, a bad kid or a full
 *         set; -EEXIST for a kid already there; -ENOMEM.
 */
int jwt_keyset_add(struct jwt_keyset *ks, const char *kid,
    const uint8_t point[static JWT_POINT_BYTES]);

/**
 * @brief Accept tokens under @p kid only until @p not_after (Unix seconds,
 * compared with jwt_verify_opts.now): the last moment a token that key
 * signed can be valid, for a key that no longer signs. Its JWKS entry
 * goes then too (jwt_jwks_json); jwt_verify() answers APP_EJWTKID for it after
 * that moment, whatever the token's own times say, and before the signature
 * cache is consulted. Call before the keyset is shared.
 * @return 0; -ENOENT for a kid not in the set.
 */
int jwt_keyset_retire(
    struct jwt_keyset *ks, const char *kid, int64_t not_after);

/** @brief Free a keyset and its keys; safe on NULL. */
void jwt_keyset_free(struct jwt_keyset *ks);

/**
 * @brief The JWKS document of a keyset as it stands at @p now: {"keys":[{
 * "kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"use":"sig",
 * "alg":"ES256"},..]}, without the keys retired by then
 * (jwt_keyset_retire).
 * @param[out] out  malloc'd, NUL-terminated; the caller frees it.
 * @return 0 or -ENOMEM.
 */
int jwt_jwks_json(
    const struct jwt_keyset *ks, int64_t now, char **out, size_t *len);

/* One JWKS document and the last second it is the one to serve. */
struct jwt_jwks_doc {
	int64_t until; /* INT64_MAX: from then on */
	char *json;    /* malloc'd, NUL-terminated */
	size_t len;
};

/**
 * @brief Every JWKS document a keyset will need from @p now on: one per
 * span of time in which no listed key retires, the next starting the
 * second after a retirement. Built once, they can be served from any
 * thread without a lock (jwt_jwks_doc_at).
 * @param[out] docs  filled with *@p n documents (at most JWT_KEYS_MAX);
 *                   free them with jwt_jwks_docs_free().
 * @return 0 or -ENOMEM (nothing to free then).
 */
int jwt_jwks_docs(const struct jwt_keyset *ks, int64_t now,
    struct jwt_jwks_doc docs[JWT_KEYS_MAX], unsigned *n);

/** @brief The document of @p docs (@p n >= 1) to serve at @p now. */
const struct jwt_jwks_doc *jwt_jwks_doc_at(
    const struct jwt_jwks_doc *docs, unsigned n, int64_t now);

/** @brief Free what jwt_jwks_docs() made; safe with @p n 0. */
void jwt_jwks_docs_free(struct jwt_jwks_doc *docs, unsigned n);

/* What a token must satisfy. */
struct jwt_verify_opts {
	const char *iss; /* required issuer */
	const char *aud; /* required audience */
	int64_t now;     /* the current time */
	/* 1: never run an ECDSA check; a token whose signature the keyset
	 * has not verified before is answered -EAGAIN (an event loop asks
	 * this way and hands the rest to a worker). */
	int cached_only;
};

/**
 * @brief Verify a token and return its claims.
 * @return 0 with @p out filled; otherwise @p out is zeroed and:
 *   APP_EJWTFORMAT   not three base64url parts, bad JSON, a missing or
 *                    mistyped claim, an unknown header parameter;
 *   APP_EJWTALG      alg is not exactly "ES256" ("none", "HS256", ...);
 *   APP_EJWTKID      no key with the header's kid (a token from a retired
 *                    key, or forged);
 *   APP_EJWTSIG      the signature does not verify;
 *   APP_EJWTISS      another issuer;  APP_EJWTAUD  another audience;
 *   APP_EJWTLIFETIME exp - iat over JWT_MAX_LIFETIME, or exp before iat;
 *   APP_EJWTEXPIRED  now >= exp + JWT_SKEW;
 *   APP_EJWTNOTYET   now < nbf - JWT_SKEW (or iat in the future);
 *   -EAGAIN          only with opts->cached_only: the signature would
 *                    have to be checked; call again without it;
 *   -ENOMEM.
 * Answer all with 401 (invalid_token); the code goes to the audit log.
 * Signature is checked before the claims are trusted; revocation of the
 * client (sub) and of the jti is the caller's next step.
 */
int jwt_verify(const struct jwt_keyset *ks, const char *token,
    const struct jwt_verify_opts *opts, struct jwt_claims *out);

/**
 * @brief base64url without padding.
 * @return the text length (NUL not counted), or -ENOSPC.
 */
int b64url_encode(char *out, size_t cap, const void *in, size_t len);

/**
 * @brief Strict base64url decode: alphabet A-Z a-z 0-9 - _ only, no '=',
 * no blanks, no length of 1 mod 4, unused trailing bits zero (one
 * spelling per value).
 * @return the number of bytes, -EINVAL for bad text, -ENOSPC.
 */
int b64url_decode(void *out, size_t cap, const char *in, size_t len);

#endif /* SR_APPLIANCE_JWT_H */
