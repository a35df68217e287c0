/*
 * tests/unit/appliance/test_tls_gcm.c: AES-GCM records as strongroomd is
 * linked (-Wl,--wrap for mbedtls_cipher_setkey, _auth_encrypt_ext,
 * _auth_decrypt_ext and _free; appliance/tls_gcm.c): the GCM paper's known
 * answers for AES-128 and AES-256 through the calls mbedTLS's TLS code
 * makes; byte for byte what mbedTLS alone makes for every length around
 * the block edges, in place as TLS does it; forged records refused with
 * nothing left of them; only AES-128/256-GCM contexts are taken, and
 * freeing or re-keying lets go; with a libcrypto that can do nothing
 * (nolibcrypto.h) the self-test says so and mbedTLS does the records;
 * and eight threads keying, sealing and freeing contexts at once (as the
 * loops do) each get their own key's records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/cipher.h>
#include <psa/crypto.h>

#include "appliance/internal.h"
#include "tests/unit/appliance/nolibcrypto.h"

int __real_mbedtls_cipher_auth_encrypt_ext(mbedtls_cipher_context_t *ctx,
    const unsigned char *iv, size_t iv_len, const unsigned char *ad,
    size_t ad_len, const unsigned char *input, size_t ilen,
    unsigned char *output, size_t output_len, size_t *olen, size_t tag_len);

static void
unhex(const char *h, uint8_t *out, size_t n)
{
	assert_int_equal(sr_hex_decode(out, n, h, strlen(h)), (int)n);
}

static void
keyed(mbedtls_cipher_context_t *c, mbedtls_cipher_type_t type,
    const uint8_t *key, int bits, mbedtls_operation_t op)
{
	mbedtls_cipher_init(c);
	assert_int_equal(
	    mbedtls_cipher_setup(c, mbedtls_cipher_info_from_type(type)), 0);
	assert_int_equal(mbedtls_cipher_setkey(c, key, bits, op), 0);
}

/* The GCM paper's test cases 4 (AES-128) and 16 (AES-256). */
static void
known_answer(int bits, const char *khex, const char *chex, const char *thex)
{
	static const char p_hex[] =
	    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
	mbedtls_cipher_type_t type = bits == 128 ? MBEDTLS_CIPHER_AES_128_GCM
	                                         : MBEDTLS_CIPHER_AES_256_GCM;
	uint8_t key[32], iv[12], ad[20], pt[60], want[76], rec[76], back[60];
	mbedtls_cipher_context_t enc, dec;
	size_t n = 0;

	unhex(khex, key, (size_t)bits / 8);
	unhex("cafebabefacedbaddecaf888", iv, 12);
	unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", ad, 20);
	unhex(p_hex, pt, 60);
	unhex(chex, want, 60);
	unhex(thex, want + 60, 16);
	keyed(&enc, type, key, bits, MBEDTLS_ENCRYPT);
	keyed(&dec, type, key, bits, MBEDTLS_DECRYPT);
	assert_int_equal(tls_gcm_twinned(&enc), tls_gcm_fast());
	assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&enc, iv, 12, ad, 20,
	                     pt, 60, rec, sizeof(rec), &n, 16),
	    0);
	assert_int_equal(n, 76);
	assert_memory_equal(rec, want, 76);
	assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12, ad, 20,
	                     rec, 76, back, sizeof(back), &n, 16),
	    0);
	assert_int_equal(n, 60);
	assert_memory_equal(back, pt, 60);
	mbedtls_cipher_free(&enc);
	mbedtls_cipher_free(&dec);
	assert_false(tls_gcm_twinned(&enc));
}

static void
test_known_answers(void **state)
{
	(void)state;
	known_answer(128, "feffe9928665731c6d6a8f9467308308",
	    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
	    "5bc94fbc3221a5db94fae95ae7121a47");
	known_answer(256,
	    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	    "76fc6ece0f4e1768cddf8853bb2d551b");
}

/* Every length around the block edges, in place (TLS's way): the wrapped
 * record equals mbedTLS's own, decrypts in place, and a changed byte
 * anywhere (text, tag, additional data) is refused and wiped. */
static void
test_same_as_mbedtls(void **state)
{
	uint8_t key[32], iv[12], ad[13], text[600], rec[616], ref[616];
	mbedtls_cipher_context_t enc, dec;
	size_t len, n, m;

	(void)state;
	assert_int_equal(sr_os_random(key, sizeof(key)), 0);
	assert_int_equal(sr_os_random(iv, sizeof(iv)), 0);
	assert_int_equal(sr_os_random(ad, sizeof(ad)), 0);
	assert_int_equal(sr_os_random(text, sizeof(text)), 0);
	keyed(&enc, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_ENCRYPT);
	keyed(&dec, MBEDTLS_CIPHER_AES_256_GCM, key, 256, MBEDTLS_DECRYPT);
	for (len = 0; len <= sizeof(text); len += len < 70 ? 1 : 53) {
		memcpy(rec, text, len);
		assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&enc, iv, 12,
		                     ad, 13, rec, len, rec, len + 16, &n, 16),
		    0);
		assert_int_equal(
		    __real_mbedtls_cipher_auth_encrypt_ext(
		        &enc, iv, 12, ad, 13, text, len, ref, len + 16, &m, 16),
		    0);
		assert_int_equal(n, len + 16);
		assert_int_equal(m, n);
		assert_memory_equal(rec, ref, n);
		memcpy(ref, rec, n);
		assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12,
		                     ad, 13, rec, n, rec, len, &m, 16),
		    0);
		assert_int_equal(m, len);
		assert_memory_equal(rec, text, len);
		ref[(len * 7) % n] ^= 0x20;
		memcpy(rec, ref, n);
		assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12,
		                     ad, 13, rec, n, rec, len, &m, 16),
		    MBEDTLS_ERR_CIPHER_AUTH_FAILED);
		for (m = 0; m < len; m++)
			assert_int_equal(rec[m], 0);
		ref[(len * 7) % n] ^= 0x20;
		ad[len % 13] ^= 1;
		memcpy(rec, ref, n);
		assert_int_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12,
		                     ad, 13, rec, n, rec, len, &m, 16),
		    MBEDTLS_ERR_CIPHER_AUTH_FAILED);
		ad[len % 13] ^= 1;
	}
	/* Too short for a tag, or no room: refused as mbedTLS refuses. */
	assert_int_not_equal(mbedtls_cipher_auth_decrypt_ext(&dec, iv, 12, ad,
	                         13, rec, 15, rec, 15, &m, 16),
	    0);
	assert_int_not_equal(mbedtls_cipher_auth_encrypt_ext(&enc, iv, 12, ad,
	                         13, text, 32, rec, 40, &n, 16),
	    0);
	mbedtls_cipher_free(&enc);
	mbedtls_cipher_free(&dec);
}

/* Only AES-128/256-GCM is taken; re-keying replaces, freeing lets go. */
static void
test_which_contexts(void **state)
{
	mbedtls_cipher_context_t c;
	uint8_t key[32] = { 1 }, iv[12] = { 2 }, out[48];
	size_t n = 0;

	(void)state;
	keyed(&c, MBEDTLS_CIPHER_AES_192_GCM, key, 192, MBEDTLS_ENCRYPT);
	assert_false(tls_gcm_twinned(&c));
	assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c, iv, 12, NULL, 0,
	                     key, 32, out, sizeof(out), &n, 16),
	    0);
	mbedtls_cipher_free(&c);
	keyed(&c, MBEDTLS_CIPHER_AES_128_CBC, key, 128, MBEDTLS_ENCRYPT);
	assert_false(tls_gcm_twinned(&c));
	mbedtls_cipher_free(&c);
	keyed(&c, MBEDTLS_CIPHER_AES_128_GCM, key, 128, MBEDTLS_ENCRYPT);
	assert_true(tls_gcm_twinned(&c));
	/* Another key on the same context: the new key's records. */
	key[0] = 9;
	assert_int_equal(
	    mbedtls_cipher_setkey(&c, key, 128, MBEDTLS_ENCRYPT), 0);
	assert_true(tls_gcm_twinned(&c));
	assert_int_equal(mbedtls_cipher_auth_encrypt_ext(&c, iv, 12, NULL, 0,
	                     key, 32, out, sizeof(out), &n, 16),
	    0);
	{
		uint8_t ref[48];
		size_t m = 0;

		assert_int_equal(
		    __real_mbedtls_cipher_auth_encrypt_ext(
		        &c, iv, 12, NULL, 0, key, 32, ref, sizeof(ref), &m, 16),
		    0);
		assert_memory_equal(out, ref, 48);
	}
	mbedtls_cipher_free(&c);
	assert_false(tls_gcm_twinned(&c));
}

#define RACE_THREADS 8
#define RACE_ROUNDS 400

/* One thread's rounds: a fresh context (heap addresses are reused across
 * threads, so twins come and go in shared buckets), its own key, a record
 * compared with mbedTLS's own; @return how many rounds differed. */
static void *
race_thread(void *arg)
{
	uintptr_t bad = 0;

	(void)arg;
	for (int r = 0; r < RACE_ROUNDS; r++) {
		mbedtls_cipher_context_t *c = malloc(sizeof(*c));
		uint8_t key[32], iv[12], text[64], rec[80], ref[80];
		size_t n = 0, m = 0;

		if (c == NULL || sr_os_random(key, sizeof(key)) != 0 ||
		    sr_os_random(iv, sizeof(iv)) != 0 ||
		    sr_os_random(text, sizeof(text)) != 0) {
			free(c);
			bad++;
			continue;
		}
		mbedtls_cipher_init(c);
		if (mbedtls_cipher_setup(c,
		        mbedtls_cipher_info_from_type(
		            MBEDTLS_CIPHER_AES_256_GCM)) != 0 ||
		    mbedtls_cipher_setkey(c, key, 256, MBEDTLS_ENCRYPT) != 0 ||
		    !tls_gcm_twinned(c) ||
		    mbedtls_cipher_auth_encrypt_ext(c, iv, 12, NULL, 0, text,
		        sizeof(text), rec, sizeof(rec), &n, 16) != 0 ||
		    __real_mbedtls_cipher_auth_encrypt_ext(c, iv, 12, NULL, 0,
		        text, sizeof(text), ref, sizeof(ref), &m, 16) != 0 ||
		    n != m || memcmp(rec, ref, n) != 0)
			bad++;
		mbedtls_cipher_free(c);
		if (tls_gcm_twinned(c))
			bad++;
		free(c);
	}
	return (void *)bad;
}

static void
test_threads(void **state)
{
	pthread_t t[RACE_THREADS];
	void *bad;

	(void)state;
	for (int i = 0; i < RACE_THREADS; i++)
		assert_int_equal(
		    pthread_create(&t[i], NULL, race_thread, NULL), 0);
	for (int i = 0; i < RACE_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((uintptr_t)bad, 0);
	}
}

/* The child of test_without_libcrypto (nolibcrypto.h). */
static int
child_main(void)
{
	if (tls_gcm_selftest() == 0)
		return 3;
	if (tls_gcm_fast())
		return 4;
	test_known_answers(NULL);
	test_same_as_mbedtls(NULL);
	return 0;
}

static void
test_without_libcrypto(void **state)
{
	(void)state;
	nolibcrypto_run();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_same_as_mbedtls),
		cmocka_unit_test(test_which_contexts),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_without_libcrypto),
	};

	if (psa_crypto_init() != PSA_SUCCESS)
		return 1;
	if (nolibcrypto_child())
		return child_main();
	if (tls_gcm_selftest() != 0 || !tls_gcm_fast())
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
