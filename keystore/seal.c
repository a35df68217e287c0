/*
 * keystore/seal.c: sealing of key material under a data-encryption key
 * (AES-256-GCM with a random 96-bit nonce and additional data that binds a
 * ciphertext to its record), and the bounded cache of unwrapped DEKs.
 *
 * A sealed blob is nonce || ciphertext || tag. The additional data is
 * "SRK1" || kind || id || be32(version) || be32(dek_version), so a blob
 * moved to another record, version or DEK fails to open.
 *
 * This file must never leave plaintext or key bytes in memory it frees, nor
 * plaintext in an output buffer after a failed open; the cipher context is
 * freed (which wipes its key schedule) on every path. It must never reuse a
 * nonce on purpose: every seal draws a fresh one from the kernel's CSPRNG.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/gcm.h>

#include "keystore/internal.h"

#define KS_DEK_CACHE_MAX 4096

static void
ks__be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void
ks__aad_make(struct ks__aad *aad, unsigned kind, const char *id,
    uint32_t version, uint32_t dek_version)
{
	uint8_t *p = aad->bytes;
	size_t n = 0;

	memset(aad->bytes, 0, sizeof(aad->bytes));
	memcpy(p, "SRK1", 4);
	p += 4;
	*p++ = (uint8_t)kind;
	if (id != NULL)
		n = strnlen(id, KS_ID_LEN);
	memcpy(p, id != NULL ? id : "", n);
	p += KS_ID_LEN; /* the rest of the id stays zero */
	ks__be32(p, version);
	p += 4;
	ks__be32(p, dek_version);
	aad->len = sizeof(aad->bytes);
}

int
ks__seal(const uint8_t dek[KS_DEK_LEN], const struct ks__aad *aad,
    const uint8_t *plain, size_t len, uint8_t *out, size_t *out_len)
{
	static const uint8_t none[1];
	mbedtls_gcm_context gcm;
	int rc;

	if (dek == NULL || aad == NULL || out == NULL || out_len == NULL ||
	    len > KS_MATERIAL_MAX || (plain == NULL && len > 0) ||
	    aad->len > sizeof(aad->bytes))
		return -EINVAL;
	if (plain == NULL)
		plain = none;
	rc = sr_os_random(out, KS_NONCE_LEN);
	if (rc != 0)
		return rc;
	mbedtls_gcm_init(&gcm);
	rc = mbedtls_gcm_setkey(
	    &gcm, MBEDTLS_CIPHER_ID_AES, dek, KS_DEK_LEN * 8);
	if (rc == 0)
		rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len,
		    out, KS_NONCE_LEN, aad->bytes, aad->len, plain,
		    out + KS_NONCE_LEN, KS_TAG_LEN, out + KS_NONCE_LEN + len);
	mbedtls_gcm_free(&gcm);
	if (rc != 0) {
		/* A half-done encryption may hold keystream or plaintext. */
		sr_wipe(out, KS_NONCE_LEN + len + KS_TAG_LEN);
		return -EIO;
	}
	*out_len = KS_NONCE_LEN + len + KS_TAG_LEN;
	return 0;
}

int
ks__open(const uint8_t dek[KS_DEK_LEN], const struct ks__aad *aad,
    const uint8_t *in, size_t in_len, uint8_t *plain, size_t *plain_len)
{
	uint8_t scratch[1];
	mbedtls_gcm_context gcm;
	size_t len;
	int rc;

	if (dek == NULL || aad == NULL || in == NULL || plain_len == NULL ||
	    in_len < KS_NONCE_LEN + KS_TAG_LEN || in_len > KS_SEALED_MAX ||
	    aad->len > sizeof(aad->bytes))
		return -EINVAL;
	len = in_len - KS_NONCE_LEN - KS_TAG_LEN;
	if (plain == NULL && len > 0)
		return -EINVAL;
	if (plain == NULL)
		plain = scratch;
	mbedtls_gcm_init(&gcm);
	rc = mbedtls_gcm_setkey(
	    &gcm, MBEDTLS_CIPHER_ID_AES, dek, KS_DEK_LEN * 8);
	if (rc == 0)
		rc = mbedtls_gcm_auth_decrypt(&gcm, len, in, KS_NONCE_LEN,
		    aad->bytes, aad->len, in + in_len - KS_TAG_LEN, KS_TAG_LEN,
		    in + KS_NONCE_LEN, plain);
	mbedtls_gcm_free(&gcm);
	if (rc != 0) {
		/* mbedTLS zeroes the output on a bad tag; make sure of it. */
		sr_wipe(plain, len);
		*plain_len = 0;
		return rc == MBEDTLS_ERR_GCM_AUTH_FAILED ? KS_EINTEGRITY : -EIO;
	}
	*plain_len = len;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The DEK cache                                                        */
/* ------------------------------------------------------------------ */

struct ks__dek_entry {
	uint64_t used; /* tick of the last get or put */
	uint32_t version;
	uint8_t key[KS_DEK_LEN];
};

/*
 * Entries 0 .. count-1 are in use, in no order. The entry array lives in a
 * struct sr_secret, so it is locked in RAM where the system allows and
 * wiped when freed.
 */
struct ks__dek_cache {
	pthread_mutex_t lock;
	struct sr_secret mem;
	struct ks__dek_entry *e;
	unsigned capacity;
	unsigned count;
	uint64_t tick;
};

int
ks__dek_cache_new(unsigned capacity, struct ks__dek_cache **out)
{
	struct ks__dek_cache *c;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (capacity < 1 || capacity > KS_DEK_CACHE_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	rc = sr_secret_alloc(&c->mem, capacity * sizeof(struct ks__dek_entry));
	if (rc != 0) {
		free(c);
		return rc;
	}
	rc = pthread_mutex_init(&c->lock, NULL);
	if (rc != 0) {
		sr_secret_free(&c->mem);
		free(c);
		return -rc;
	}
	c->e = (struct ks__dek_entry *)(void *)sr_secret_bytes(&c->mem);
	c->capacity = capacity;
	*out = c;
	return 0;
}

void
ks__dek_cache_free(struct ks__dek_cache *c)
{
	if (c == NULL)
		return;
	sr_wipe(c->e, (size_t)c->capacity * sizeof(*c->e));
	sr_secret_free(&c->mem);
	pthread_mutex_destroy(&c->lock);
	sr_wipe(c, sizeof(*c));
	free(c);
}

/* The index of @p version's entry, or -1. The caller holds the lock. */
static int
ks__dek_find(const struct ks__dek_cache *c, uint32_t version)
{
	unsigned i;

	for (i = 0; i < c->count; i++)
		if (c->e[i].version == version)
			return (int)i;
	return -1;
}

/* Wipe entry @p i and fill its slot with the last one. Lock held. */
static void
ks__dek_remove(struct ks__dek_cache *c, unsigned i)
{
	unsigned last = c->count - 1;

	if (i != last)
		memcpy(&c->e[i], &c->e[last], sizeof(c->e[i]));
	sr_wipe(&c->e[last], sizeof(c->e[last]));
	c->count--;
}

int
ks__dek_cache_get(
    struct ks__dek_cache *c, uint32_t version, uint8_t dek[KS_DEK_LEN])
{
	int i;

	if (c == NULL || dek == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	i = ks__dek_find(c, version);
	if (i >= 0) {
		memcpy(dek, c->e[i].key, KS_DEK_LEN);
		c->e[i].used = ++c->tick;
	}
	pthread_mutex_unlock(&c->lock);
	return i >= 0;
}

void
ks__dek_cache_put(
    struct ks__dek_cache *c, uint32_t version, const uint8_t dek[KS_DEK_LEN])
{
	unsigned j, lru;
	int i;

	if (c == NULL || dek == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	i = ks__dek_find(c, version);
	if (i < 0 && c->count == c->capacity) {
		lru = 0;
		for (j = 1; j < c->count; j++)
			if (c->e[j].used < c->e[lru].used)
				lru = j;
		ks__dek_remove(c, lru);
	}
	if (i < 0)
		i = (int)c->count++;
	else
		sr_wipe(c->e[i].key, KS_DEK_LEN);
	c->e[i].version = version;
	memcpy(c->e[i].key, dek, KS_DEK_LEN);
	c->e[i].used = ++c->tick;
	pthread_mutex_unlock(&c->lock);
}

void
ks__dek_cache_drop(struct ks__dek_cache *c, uint32_t version)
{
	int i;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	i = ks__dek_find(c, version);
	if (i >= 0)
		ks__dek_remove(c, (unsigned)i);
	pthread_mutex_unlock(&c->lock);
}

unsigned
ks__dek_cache_count(struct ks__dek_cache *c)
{
	unsigned n;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}
