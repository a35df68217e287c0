/*
 * appliance/digest.h: SHA-256 for the daemon's hot paths (the audit
 * chain, JWT signing input, console session tokens), computed by Debian's
 * libcrypto, whose SHA-256 uses the CPU's SHA extensions where it has
 * them: about four times mbedTLS's portable code here (0.4 us against
 * 1.5 us for a 350-byte audit line).
 *
 * The result is always the SHA-256 of the input: should libcrypto fail
 * (no memory, no provider), the call is answered by mbedTLS instead, so
 * these functions cannot fail and callers need no error path.
 *
 * Threading: any thread, no shared state but libcrypto's digest object,
 * fetched once.
 */
#ifndef SR_APPLIANCE_DIGEST_H
#define SR_APPLIANCE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/** @brief out = SHA-256(p[0..n)); @p p may be NULL when @p n is 0. */
void digest_sha256(const void *p, size_t n, uint8_t out[32]);

/** @brief out = SHA-256(a[0..an) || b[0..bn)), without copying them
 * together. */
void digest_sha256_2(
    const void *a, size_t an, const void *b, size_t bn, uint8_t out[32]);

#endif /* SR_APPLIANCE_DIGEST_H */
