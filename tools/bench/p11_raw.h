/*
 * tools/bench/p11_raw.h: the raw PKCS#11 anchor that p11_bench.c measures
 * the pkcs11 layer against. Only p11_bench.c includes it; it must never
 * expose a PKCS#11 type, so the benchmark itself stays free of <pkcs11.h>.
 */
#ifndef SR_TOOLS_BENCH_P11_RAW_H
#define SR_TOOLS_BENCH_P11_RAW_H

#include <stddef.h>
#include <stdint.h>

struct p11_raw;

/* Labels of the token keys the layer made; the anchor finds them. */
struct p11_raw_keys {
	const char *kek;  /* CKK_AES, wraps and unwraps */
	const char *kdk;  /* CKK_GENERIC_SECRET, HMAC and the KDF */
	const char *sign; /* CKK_EC private key, P-256 */
};

/*
 * Attach to the module, token and PIN a PKCS#11 URI names (while the layer
 * holds it open), open @p nsess sessions, log in and find the keys.
 * Returns 0, or a CK_RV (nonzero; ~0UL for a host-side failure) with a
 * message in @p err.
 */
unsigned long p11_raw_open(const char *uri, unsigned nsess,
    const struct p11_raw_keys *keys, struct p11_raw **out, char err[256]);

/* Close the anchor's sessions and drop its module reference; never
 * C_Finalize (the layer owns the module). Safe on NULL. */
void p11_raw_close(struct p11_raw *r);

/* One operation each, on session @p s (one per thread), doing the same
 * PKCS#11 calls as the layer. Each returns the first failing CK_RV, or 0. */
unsigned long p11_raw_hmac(struct p11_raw *r, unsigned s, const void *msg,
    size_t len, uint8_t mac[32]);
unsigned long p11_raw_kdf_block(struct p11_raw *r, unsigned s,
    const void *label, size_t label_len, const void *context,
    size_t context_len, uint8_t out[32]);
unsigned long p11_raw_ecdsa(struct p11_raw *r, unsigned s, const void *msg,
    size_t len, uint8_t sig[64]);
unsigned long p11_raw_wrap(struct p11_raw *r, unsigned s, const void *plain,
    size_t len, uint8_t *blob, size_t cap, size_t *blob_len);
unsigned long p11_raw_unwrap(struct p11_raw *r, unsigned s, const void *blob,
    size_t len, uint8_t *plain, size_t cap, size_t *plain_len);
unsigned long p11_raw_random(
    struct p11_raw *r, unsigned s, void *buf, size_t len);

#endif /* SR_TOOLS_BENCH_P11_RAW_H */
