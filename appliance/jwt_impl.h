/*
 * appliance/jwt_impl.h: what jwt.c (tokens) and jwt_keys.c (keysets, JWKS,
 * base64url) share. Nothing outside those two files may include it;
 * everyone else uses appliance/jwt.h.
 */
#ifndef SR_APPLIANCE_JWT_IMPL_H
#define SR_APPLIANCE_JWT_IMPL_H

#include "appliance/jwt.h"

/* jwt_keys.c: the index of the key @p kid in the set, -1 when none. */
int jwt__keyset_find(const struct jwt_keyset *ks, const char *kid);

/* jwt_keys.c: 1 when key @p which was retired (jwt_keyset_retire) and
 * @p now is past its last moment; else 0. */
int jwt__keyset_retired(const struct jwt_keyset *ks, int which, int64_t now);

/* jwt_cache.c: signatures a keyset has verified (see there). */
struct jwt__cache;
int jwt__cache_new(struct jwt__cache **out); /* 0 or -ENOMEM */
void jwt__cache_free(struct jwt__cache *c);  /* safe on NULL */
/* 1 when this exact (digest of header.payload, signature) pair verified
 * under the cache's keyset and its entry lasts past @p now; else 0. */
int jwt__cache_seen(struct jwt__cache *c, const uint8_t digest[32],
    const uint8_t sig[64], int64_t now);
/* Remember a pair that has just verified, until @p until (exp + skew). */
void jwt__cache_add(struct jwt__cache *c, const uint8_t digest[32],
    const uint8_t sig[64], int64_t until, int64_t now);

/* jwt_keys.c: check an ES256 signature (r || s) over @p digest with the
 * key jwt__keyset_find() gave: 0; APP_EJWTKID for no such key;
 * APP_EJWTSIG when it does not verify. libcrypto checks it, PSA when
 * libcrypto cannot. */
int jwt__keyset_verify(const struct jwt_keyset *ks, int which,
    const uint8_t digest[32], const uint8_t sig[64]);

/* jwt_keys.c: the keyset's cache (NULL for none). */
struct jwt__cache *jwt__keyset_cache(const struct jwt_keyset *ks);

#endif /* SR_APPLIANCE_JWT_IMPL_H */
