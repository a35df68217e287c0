/*
 * appliance/tls_gcm.c: AES-GCM record protection (TLS 1.3's and 1.2's
 * AEAD records, and session tickets) done by OpenSSL's libcrypto instead
 * of mbedTLS's AES-NI code.
 *
 * mbedTLS 3.6 multiplies in GHASH one 16-byte block at a time with a full
 * reduction each (mbedtls_aesni_gcm_mult) and runs AES and GHASH in two
 * passes: about 7 % of the daemon's CPU on small keep-alive requests
 * (perf). libcrypto's stitched AES-GCM does the same record in a fraction
 * of that, and Debian's libcrypto 3 is in this process anyway (SoftHSM2,
 * JWT checks). The protocol, the keys and the nonces stay mbedTLS's: only
 * the cipher's arithmetic moves.
 *
 * The daemon is linked with -Wl,--wrap for mbedtls_cipher_setkey,
 * mbedtls_cipher_auth_encrypt_ext, mbedtls_cipher_auth_decrypt_ext and
 * mbedtls_cipher_free (appliance/module.mk). A context keyed for AES-GCM
 * gets a libcrypto twin, found by the context's address; every other
 * cipher, every call with another IV or tag length, and every context
 * libcrypto could not take goes to mbedTLS unchanged (which is keyed too,
 * always). tls_gcm_selftest() compares both at start-up and turns this
 * path off if they ever differ.
 *
 * It must never implement arithmetic itself, never keep key bytes outside
 * the two libraries' contexts, and never accept a record mbedTLS would
 * refuse.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/cipher.h>
#include <mbedtls/platform_util.h>
#include <openssl/evp.h>

#include "appliance/internal.h"

typedef mbedtls_cipher_context_t mctx;

int __real_mbedtls_cipher_setkey(mctx *ctx, const unsigned char *key,
    int key_bitlen, const mbedtls_operation_t operation);
int __wrap_mbedtls_cipher_setkey(mctx *ctx, const unsigned char *key,
    int key_bitlen, const mbedtls_operation_t operation);
/* The parameters of mbedtls_cipher_auth_encrypt_ext and _decrypt_ext. */
#define AEAD_PARAMS \
	mctx *ctx, const unsigned char *iv, size_t iv_len, \
	    const unsigned char *ad, size_t ad_len, \
	    const unsigned char *input, size_t ilen, unsigned char *output, \
	    size_t output_len, size_t *olen, size_t tag_len
int __real_mbedtls_cipher_auth_encrypt_ext(AEAD_PARAMS);
int __wrap_mbedtls_cipher_auth_encrypt_ext(AEAD_PARAMS);
int __real_mbedtls_cipher_auth_decrypt_ext(AEAD_PARAMS);
int __wrap_mbedtls_cipher_auth_decrypt_ext(AEAD_PARAMS);
void __real_mbedtls_cipher_free(mctx *ctx);
void __wrap_mbedtls_cipher_free(mctx *ctx);

#define GCM_BUCKETS 4096 /* a power of two */
#define GCM_IV 12
#define GCM_TAG 16

/* A libcrypto twin of one mbedTLS context. */
struct twin {
	struct twin *next;
	const mctx *owner;
	EVP_CIPHER_CTX *evp;
};

/* 1 until the self-test finds a difference (or libcrypto cannot). */
static atomic_int gcm_fast = 1;
/* Bucket b is guarded by gcm_lock[b % GCM_LOCKS]. Every record looks up
 * its twin, so a single lock for the table would be taken by every loop
 * for every record; striped, two loops meet only when their contexts
 * fall in the same stripe. */
#define GCM_LOCKS 64
/* Initialised statically (a GNU range initialiser, as gcc and clang
 * take it): no once-check on every record. */
static pthread_mutex_t gcm_lock[GCM_LOCKS] = { [0 ... GCM_LOCKS - 1] =
	                                           PTHREAD_MUTEX_INITIALIZER };
static struct twin *gcm_table[GCM_BUCKETS];
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher[2]; /* AES-128-GCM, AES-256-GCM */

static void
gcm_fetch(void)
{
	gcm_cipher[0] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	gcm_cipher[1] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static size_t
bucket_of(const mctx *ctx)
{
	uintptr_t p = (uintptr_t)ctx;

	return (size_t)((p >> 4) ^ (p >> 16)) & (GCM_BUCKETS - 1);
}

/* The lock of @p ctx's bucket, taken. */
static pthread_mutex_t *
lock_of(const mctx *ctx)
{
	pthread_mutex_t *m = &gcm_lock[bucket_of(ctx) & (GCM_LOCKS - 1)];

	pthread_mutex_lock(m);
	return m;
}

/* Unlink and return @p ctx's twin (NULL: none). Under lock_of(ctx). */
static struct twin *
twin_take(const mctx *ctx)
{
	struct twin **pp = &gcm_table[bucket_of(ctx)], *t;

	for (; (t = *pp) != NULL; pp = &t->next)
		if (t->owner == ctx) {
			*pp = t->next;
			return t;
		}
	return NULL;
}

static EVP_CIPHER_CTX *
twin_find(const mctx *ctx)
{
	pthread_mutex_t *m = lock_of(ctx);
	EVP_CIPHER_CTX *evp = NULL;
	struct twin *t;

	for (t = gcm_table[bucket_of(ctx)]; t != NULL; t = t->next)
		if (t->owner == ctx) {
			evp = t->evp;
			break;
		}
	pthread_mutex_unlock(m);
	return evp;
}

static void
twin_free(struct twin *t)
{
	if (t != NULL) {
		EVP_CIPHER_CTX_free(t->evp); /* it wipes the key schedule */
		free(t);
	}
}

/* A twin keyed with @p key for @p ctx's cipher, or NULL. */
static struct twin *
twin_new(const mctx *ctx, const unsigned char *key, int key_bitlen, int enc)
{
	mbedtls_cipher_type_t type = mbedtls_cipher_get_type(ctx);
	EVP_CIPHER *c;
	struct twin *t;

	if (!(type == MBEDTLS_CIPHER_AES_128_GCM && key_bitlen == 128) &&
	    !(type == MBEDTLS_CIPHER_AES_256_GCM && key_bitlen == 256))
		return NULL;
	pthread_once(&gcm_once, gcm_fetch);
	c = gcm_cipher[key_bitlen == 256];
	if (c == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->owner = ctx;
	t->evp = EVP_CIPHER_CTX_new();
	if (t->evp == NULL ||
	    EVP_CipherInit_ex(t->evp, c, NULL, key, NULL, enc) != 1) {
		twin_free(t);
		return NULL;
	}
	return t;
}

int
__wrap_mbedtls_cipher_setkey(mctx *ctx, const unsigned char *key,
    int key_bitlen, const mbedtls_operation_t operation)
{
	int rc = __real_mbedtls_cipher_setkey(ctx, key, key_bitlen, operation);
	struct twin *old, *t = NULL;
	pthread_mutex_t *m;

	if (rc == 0 && atomic_load_explicit(&gcm_fast, memory_order_relaxed))
		t = twin_new(
		    ctx, key, key_bitlen, operation == MBEDTLS_ENCRYPT);
	m = lock_of(ctx);
	old = twin_take(ctx);
	if (t != NULL) {
		t->next = gcm_table[bucket_of(ctx)];
		gcm_table[bucket_of(ctx)] = t;
	}
	pthread_mutex_unlock(m);
	twin_free(old);
	return rc;
}

void
__wrap_mbedtls_cipher_free(mctx *ctx)
{
	pthread_mutex_t *m;
	struct twin *t;

	if (ctx == NULL)
		return;
	m = lock_of(ctx);
	t = twin_take(ctx);
	pthread_mutex_unlock(m);
	twin_free(t);
	__real_mbedtls_cipher_free(ctx);
}

int
__wrap_mbedtls_cipher_auth_encrypt_ext(mctx *ctx, const unsigned char *iv,
    size_t iv_len, const unsigned char *ad, size_t ad_len,
    const unsigned char *input, size_t ilen, unsigned char *output,
    size_t output_len, size_t *olen, size_t tag_len)
{
	EVP_CIPHER_CTX *e;
	int n, fin;

	if (iv_len != GCM_IV || tag_len != GCM_TAG || ilen > INT_MAX ||
	    ad_len > INT_MAX || output_len < ilen + GCM_TAG ||
	    !atomic_load_explicit(&gcm_fast, memory_order_relaxed) ||
	    (e = twin_find(ctx)) == NULL)
		return __real_mbedtls_cipher_auth_encrypt_ext(ctx, iv, iv_len,
		    ad, ad_len, input, ilen, output, output_len, olen, tag_len);
	/* Until the text is touched mbedTLS can still do it; after that (in
	 * place, the input is gone) a failure fails the record. */
	if (EVP_EncryptInit_ex(e, NULL, NULL, NULL, iv) != 1 ||
	    (ad_len > 0 &&
	        EVP_EncryptUpdate(e, NULL, &n, ad, (int)ad_len) != 1))
		return __real_mbedtls_cipher_auth_encrypt_ext(ctx, iv, iv_len,
		    ad, ad_len, input, ilen, output, output_len, olen, tag_len);
	if (EVP_EncryptUpdate(e, output, &n, input, (int)ilen) != 1 ||
	    EVP_EncryptFinal_ex(e, output + n, &fin) != 1 ||
	    (size_t)n + (size_t)fin != ilen ||
	    EVP_CIPHER_CTX_ctrl(
	        e, EVP_CTRL_AEAD_GET_TAG, GCM_TAG, output + ilen) != 1)
		return MBEDTLS_ERR_CIPHER_INVALID_CONTEXT;
	*olen = ilen + GCM_TAG;
	return 0;
}

int
__wrap_mbedtls_cipher_auth_decrypt_ext(mctx *ctx, const unsigned char *iv,
    size_t iv_len, const unsigned char *ad, size_t ad_len,
    const unsigned char *input, size_t ilen, unsigned char *output,
    size_t output_len, size_t *olen, size_t tag_len)
{
	unsigned char tag[GCM_TAG];
	EVP_CIPHER_CTX *e;
	size_t clen;
	int n, fin;

	if (iv_len != GCM_IV || tag_len != GCM_TAG || ilen < GCM_TAG ||
	    ilen > INT_MAX || ad_len > INT_MAX || output_len < ilen - GCM_TAG ||
	    !atomic_load_explicit(&gcm_fast, memory_order_relaxed) ||
	    (e = twin_find(ctx)) == NULL)
		return __real_mbedtls_cipher_auth_decrypt_ext(ctx, iv, iv_len,
		    ad, ad_len, input, ilen, output, output_len, olen, tag_len);
	clen = ilen - GCM_TAG;
	/* The tag first: in place, the output overwrites the input. */
	memcpy(tag, input + clen, GCM_TAG);
	if (EVP_DecryptInit_ex(e, NULL, NULL, NULL, iv) != 1 ||
	    (ad_len > 0 &&
	        EVP_DecryptUpdate(e, NULL, &n, ad, (int)ad_len) != 1))
		return __real_mbedtls_cipher_auth_decrypt_ext(ctx, iv, iv_len,
		    ad, ad_len, input, ilen, output, output_len, olen, tag_len);
	if (EVP_DecryptUpdate(e, output, &n, input, (int)clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_SET_TAG, GCM_TAG, tag) != 1) {
		mbedtls_platform_zeroize(output, clen);
		return MBEDTLS_ERR_CIPHER_INVALID_CONTEXT;
	}
	if (EVP_DecryptFinal_ex(e, output + n, &fin) != 1 ||
	    (size_t)n + (size_t)fin != clen) {
		/* As mbedTLS does: nothing of a forged record is left. */
		mbedtls_platform_zeroize(output, clen);
		return MBEDTLS_ERR_CIPHER_AUTH_FAILED;
	}
	*olen = clen;
	return 0;
}

/* One round both ways for a key of @p bits: 0 when libcrypto's record
 * equals mbedTLS's, its decryption gives the text back and a changed
 * byte is refused. */
static int
selftest_one(mbedtls_cipher_type_t type, int bits)
{
	unsigned char key[32], iv[GCM_IV], ad[13], text[300];
	unsigned char fast[sizeof(text) + GCM_TAG], slow[sizeof(fast)];
	unsigned char back[sizeof(text)];
	mctx enc, dec;
	size_t nf = 0, ns = 0, nb = 0;
	int bad;

	mbedtls_cipher_init(&enc);
	mbedtls_cipher_init(&dec);
	bad = sr_os_random(key, sizeof(key)) != 0 ||
	    sr_os_random(iv, sizeof(iv)) != 0 ||
	    sr_os_random(ad, sizeof(ad)) != 0 ||
	    sr_os_random(text, sizeof(text)) != 0 ||
	    mbedtls_cipher_setup(&enc, mbedtls_cipher_info_from_type(type)) ||
	    mbedtls_cipher_setup(&dec, mbedtls_cipher_info_from_type(type)) ||
	    __wrap_mbedtls_cipher_setkey(&enc, key, bits, MBEDTLS_ENCRYPT) ||
	    __wrap_mbedtls_cipher_setkey(&dec, key, bits, MBEDTLS_DECRYPT) ||
	    twin_find(&enc) == NULL || twin_find(&dec) == NULL;
	if (!bad)
		bad = __wrap_mbedtls_cipher_auth_encrypt_ext(&enc, iv,
		          sizeof(iv), ad, sizeof(ad), text, sizeof(text), fast,
		          sizeof(fast), &nf, GCM_TAG) != 0 ||
		    __real_mbedtls_cipher_auth_encrypt_ext(&enc, iv, sizeof(iv),
		        ad, sizeof(ad), text, sizeof(text), slow, sizeof(slow),
		        &ns, GCM_TAG) != 0 ||
		    nf != ns || memcmp(fast, slow, ns) != 0 ||
		    __wrap_mbedtls_cipher_auth_decrypt_ext(&dec, iv, sizeof(iv),
		        ad, sizeof(ad), fast, nf, back, sizeof(back), &nb,
		        GCM_TAG) != 0 ||
		    nb != sizeof(text) || memcmp(back, text, nb) != 0;
	if (!bad) {
		fast[7] ^= 1;
		bad =
		    __wrap_mbedtls_cipher_auth_decrypt_ext(&dec, iv, sizeof(iv),
		        ad, sizeof(ad), fast, nf, back, sizeof(back), &nb,
		        GCM_TAG) != MBEDTLS_ERR_CIPHER_AUTH_FAILED;
	}
	__wrap_mbedtls_cipher_free(&enc);
	__wrap_mbedtls_cipher_free(&dec);
	mbedtls_platform_zeroize(key, sizeof(key));
	return bad;
}

int
tls_gcm_selftest(void)
{
	int bad = selftest_one(MBEDTLS_CIPHER_AES_128_GCM, 128) ||
	    selftest_one(MBEDTLS_CIPHER_AES_256_GCM, 256);

	if (bad)
		atomic_store(&gcm_fast, 0);
	return bad ? -EPROTO : 0;
}

int
tls_gcm_fast(void)
{
	return atomic_load(&gcm_fast);
}

int
tls_gcm_twinned(const mbedtls_cipher_context_t *ctx)
{
	return twin_find(ctx) != NULL;
}
