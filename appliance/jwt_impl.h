/*
 * appliance/jwt_impl.h: what jwt.c (tokens) and jwt_keys.c (keysets, JWKS,
 * base64url) share. Nothing outside those two files may include it;
 * everyone else uses appliance/jwt.h.
 */
#ifndef SR_APPLIANCE_JWT_IMPL_H
#define SR_APPLIANCE_JWT_IMPL_H

#include <psa/crypto.h>

#include "appliance/jwt.h"

/* jwt_keys.c: the PSA key for @p kid, or 0 when the set has none. */
psa_key_id_t jwt__keyset_find(const struct jwt_keyset *ks, const char *kid);

#endif /* SR_APPLIANCE_JWT_IMPL_H */
