/*
 * tests/unit/keystore/test_seal.c: AES-256-GCM sealing of keystore/seal.c
 * (additional data layout, round trips, a known answer, tamper, wrong key
 * and wrong record detection, argument checks) and the DEK cache (lookup,
 * LRU eviction, replace, drop, concurrent use).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

#define OVERHEAD (KS_NONCE_LEN + KS_TAG_LEN)

static const uint8_t test_dek[KS_DEK_LEN] = { 0x00, 0x01, 0x02, 0x03, 0x04,
	0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
	0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c,
	0x1d, 0x1e, 0x1f };

/* Are all @p len bytes at @p p equal to @p v? */
static int
all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void
fill_pattern(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void
hex(uint8_t *out, size_t cap, const char *s, size_t want)
{
	assert_int_equal(sr_hex_decode(out, cap, s, strlen(s)), (int)want);
}

/* Seal @p len pattern bytes for a DATA key "AbCdEf012345" v3, DEK v7. */
static void
seal_sample(uint8_t *blob, size_t *blob_len, size_t len)
{
	struct ks__aad aad;
	uint8_t plain[KS_MATERIAL_MAX];

	fill_pattern(plain, sizeof(plain), 0x41);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 3, 7);
	assert_int_equal(
	    ks__seal(test_dek, &aad, plain, len, blob, blob_len), 0);
	assert_int_equal(*blob_len, len + OVERHEAD);
}

static void
test_aad_layout(void **state)
{
	static const uint8_t want[] = { 'S', 'R', 'K', '1', 5, 'A', 'b', 'C',
		'd', 'E', 'f', '0', '1', '2', '3', '4', '5', 0x01, 0x02, 0x03,
		0x04, 0xa0, 0xb0, 0xc0, 0xd0 };
	struct ks__aad aad;

	(void)state;
	assert_int_equal(sizeof(want), sizeof(aad.bytes));
	memset(&aad, 0x5a, sizeof(aad));
	ks__aad_make(
	    &aad, KS_KIND_DATA, "AbCdEf012345", 0x01020304u, 0xa0b0c0d0u);
	assert_int_equal(aad.len, sizeof(aad.bytes));
	assert_memory_equal(aad.bytes, want, sizeof(want));

	/* A longer string is cut at KS_ID_LEN; a shorter one is padded. */
	ks__aad_make(
	    &aad, KS_KIND_DATA, "AbCdEf012345XYZ", 0x01020304u, 0xa0b0c0d0u);
	assert_memory_equal(aad.bytes, want, sizeof(want));
	memset(&aad, 0x5a, sizeof(aad));
	ks__aad_make(&aad, KS_KIND_APP, "ab", 1, 2);
	assert_memory_equal(aad.bytes,
	    "SRK1\x01"
	    "ab",
	    7);
	assert_true(all_bytes(aad.bytes + 7, KS_ID_LEN - 2, 0));
	assert_memory_equal(aad.bytes + 5 + KS_ID_LEN, "\0\0\0\1\0\0\0\2", 8);
}

static void
test_round_trip(void **state)
{
	static const size_t lens[] = { 0, 1, 32, KS_MATERIAL_MAX };
	uint8_t want[KS_MATERIAL_MAX], blob[KS_SEALED_MAX];
	uint8_t plain[KS_MATERIAL_MAX];
	struct ks__aad aad;
	size_t i, blob_len, plain_len;

	(void)state;
	fill_pattern(want, sizeof(want), 0x41);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 3, 7);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		seal_sample(blob, &blob_len, lens[i]);
		if (lens[i] > 0)
			assert_memory_not_equal(
			    blob + KS_NONCE_LEN, want, lens[i]);
		memset(plain, 0xee, sizeof(plain));
		plain_len = 999;
		assert_int_equal(
		    ks__open(test_dek, &aad, blob, blob_len, plain, &plain_len),
		    0);
		assert_int_equal(plain_len, lens[i]);
		assert_memory_equal(plain, want, lens[i]);
	}
	/* An empty plaintext may come from and go to NULL. */
	assert_int_equal(ks__seal(test_dek, &aad, NULL, 0, blob, &blob_len), 0);
	assert_int_equal(blob_len, OVERHEAD);
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, blob_len, NULL, &plain_len), 0);
	assert_int_equal(plain_len, 0);
}

/*
 * Test Case 16 of McGrew and Viega, "The Galois/Counter Mode of Operation"
 * (AES-256, 96-bit IV, 20 bytes of additional data, 60 bytes of text).
 */
static void
test_known_answer(void **state)
{
	uint8_t key[KS_DEK_LEN], in[KS_SEALED_MAX], want[60];
	uint8_t plain[KS_MATERIAL_MAX];
	struct ks__aad aad;
	size_t plain_len;

	(void)state;
	hex(key, sizeof(key),
	    "feffe9928665731c6d6a8f9467308308"
	    "feffe9928665731c6d6a8f9467308308",
	    32);
	memset(&aad, 0, sizeof(aad));
	hex(aad.bytes, sizeof(aad.bytes),
	    "feedfacedeadbeeffeedfacedeadbeefabaddad2", 20);
	aad.len = 20;
	hex(in, KS_NONCE_LEN, "cafebabefacedbaddecaf888", KS_NONCE_LEN);
	hex(in + KS_NONCE_LEN, sizeof(in) - KS_NONCE_LEN,
	    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd"
	    "2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
	    "bcc9f662",
	    60);
	hex(in + KS_NONCE_LEN + 60, KS_TAG_LEN,
	    "76fc6ece0f4e1768cddf8853bb2d551b", KS_TAG_LEN);
	hex(want, sizeof(want),
	    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d"
	    "8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657"
	    "ba637b39",
	    60);
	assert_int_equal(
	    ks__open(key, &aad, in, OVERHEAD + 60, plain, &plain_len), 0);
	assert_int_equal(plain_len, 60);
	assert_memory_equal(plain, want, 60);

	/* The same blob with one bit of the AAD changed must not open. */
	aad.bytes[19] ^= 0x01;
	memset(plain, 0xaa, sizeof(plain));
	assert_int_equal(
	    ks__open(key, &aad, in, OVERHEAD + 60, plain, &plain_len),
	    KS_EINTEGRITY);
	assert_true(all_bytes(plain, 60, 0));
}

/* Every single-bit flip, in nonce, ciphertext or tag, is caught. */
static void
test_bit_flips(void **state)
{
	uint8_t blob[KS_SEALED_MAX], plain[KS_MATERIAL_MAX];
	struct ks__aad aad;
	size_t blob_len, plain_len, i;
	unsigned bit;

	(void)state;
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 3, 7);
	seal_sample(blob, &blob_len, 32);
	for (i = 0; i < blob_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			memset(plain, 0xaa, sizeof(plain));
			plain_len = 999;
			assert_int_equal(ks__open(test_dek, &aad, blob,
			                     blob_len, plain, &plain_len),
			    KS_EINTEGRITY);
			assert_true(all_bytes(plain, 32, 0));
			assert_int_equal(plain_len, 0);
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Unflipped, it still opens. */
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, blob_len, plain, &plain_len), 0);
	/* A truncated blob (tag cut short) does not open either. */
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, blob_len - 1, plain, &plain_len),
	    KS_EINTEGRITY);
	assert_true(all_bytes(plain, 31, 0));
}

static void
expect_integrity(const struct ks__aad *aad, const uint8_t *key,
    const uint8_t *blob, size_t blob_len)
{
	uint8_t plain[KS_MATERIAL_MAX];
	size_t plain_len;

	memset(plain, 0xaa, sizeof(plain));
	assert_int_equal(ks__open(key, aad, blob, blob_len, plain, &plain_len),
	    KS_EINTEGRITY);
	assert_true(all_bytes(plain, blob_len - OVERHEAD, 0));
}

static void
test_wrong_record(void **state)
{
	uint8_t blob[KS_SEALED_MAX];
	struct ks__aad aad;
	size_t blob_len;

	(void)state;
	seal_sample(blob, &blob_len, 32);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012346", 3, 7);
	expect_integrity(&aad, test_dek, blob, blob_len);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf01234", 3, 7);
	expect_integrity(&aad, test_dek, blob, blob_len);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 4, 7);
	expect_integrity(&aad, test_dek, blob, blob_len);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 3, 8);
	expect_integrity(&aad, test_dek, blob, blob_len);
	ks__aad_make(&aad, KS_KIND_SIGNING, "AbCdEf012345", 3, 7);
	expect_integrity(&aad, test_dek, blob, blob_len);
}

static void
test_wrong_key(void **state)
{
	uint8_t blob[KS_SEALED_MAX], key[KS_DEK_LEN];
	struct ks__aad aad;
	size_t blob_len;

	(void)state;
	seal_sample(blob, &blob_len, KS_MATERIAL_MAX);
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 3, 7);
	memcpy(key, test_dek, sizeof(key));
	key[KS_DEK_LEN - 1] ^= 0x80;
	expect_integrity(&aad, key, blob, blob_len);
	memset(key, 0, sizeof(key));
	expect_integrity(&aad, key, blob, blob_len);
}

static void
test_nonce_fresh(void **state)
{
	uint8_t a[KS_SEALED_MAX], b[KS_SEALED_MAX];
	size_t a_len, b_len;

	(void)state;
	seal_sample(a, &a_len, 32);
	seal_sample(b, &b_len, 32);
	assert_int_equal(a_len, b_len);
	assert_memory_not_equal(a, b, KS_NONCE_LEN);
	assert_memory_not_equal(a + KS_NONCE_LEN, b + KS_NONCE_LEN, 32);
	assert_memory_not_equal(
	    a + a_len - KS_TAG_LEN, b + b_len - KS_TAG_LEN, KS_TAG_LEN);
}

static void
test_bad_arguments(void **state)
{
	uint8_t plain[KS_MATERIAL_MAX + 1], blob[KS_SEALED_MAX + 1];
	struct ks__aad aad;
	size_t len;

	(void)state;
	memset(plain, 1, sizeof(plain));
	memset(blob, 0, sizeof(blob));
	ks__aad_make(&aad, KS_KIND_DATA, "AbCdEf012345", 3, 7);
	assert_int_equal(
	    ks__seal(test_dek, &aad, plain, KS_MATERIAL_MAX + 1, blob, &len),
	    -EINVAL);
	assert_int_equal(ks__seal(NULL, &aad, plain, 1, blob, &len), -EINVAL);
	assert_int_equal(
	    ks__seal(test_dek, NULL, plain, 1, blob, &len), -EINVAL);
	assert_int_equal(
	    ks__seal(test_dek, &aad, NULL, 1, blob, &len), -EINVAL);
	assert_int_equal(
	    ks__seal(test_dek, &aad, plain, 1, NULL, &len), -EINVAL);
	assert_int_equal(
	    ks__seal(test_dek, &aad, plain, 1, blob, NULL), -EINVAL);

	assert_int_equal(
	    ks__open(test_dek, &aad, blob, OVERHEAD - 1, plain, &len), -EINVAL);
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, 0, plain, &len), -EINVAL);
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, KS_SEALED_MAX + 1, plain, &len),
	    -EINVAL);
	assert_int_equal(
	    ks__open(NULL, &aad, blob, OVERHEAD, plain, &len), -EINVAL);
	assert_int_equal(
	    ks__open(test_dek, NULL, blob, OVERHEAD, plain, &len), -EINVAL);
	assert_int_equal(
	    ks__open(test_dek, &aad, NULL, OVERHEAD, plain, &len), -EINVAL);
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, OVERHEAD + 1, NULL, &len), -EINVAL);
	assert_int_equal(
	    ks__open(test_dek, &aad, blob, OVERHEAD, plain, NULL), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* DEK cache                                                            */
/* ------------------------------------------------------------------ */

/* The key of DEK @p version, so a reader can check what it got. */
static void
dek_of(uint32_t version, uint8_t key[KS_DEK_LEN])
{
	unsigned i;

	for (i = 0; i < KS_DEK_LEN; i++)
		key[i] = (uint8_t)(version * 37u + i * 11u + (version >> 8));
}

static void
put_v(struct ks__dek_cache *c, uint32_t version)
{
	uint8_t key[KS_DEK_LEN];

	dek_of(version, key);
	ks__dek_cache_put(c, version, key);
}

/* Whether @p version is cached, checking its bytes when it is. */
static int
has_v(struct ks__dek_cache *c, uint32_t version)
{
	uint8_t key[KS_DEK_LEN], want[KS_DEK_LEN];

	if (!ks__dek_cache_get(c, version, key))
		return 0;
	dek_of(version, want);
	assert_memory_equal(key, want, KS_DEK_LEN);
	return 1;
}

static void
test_cache_new_bad(void **state)
{
	struct ks__dek_cache *c = (void *)1;

	(void)state;
	assert_int_equal(ks__dek_cache_new(0, &c), -EINVAL);
	assert_null(c);
	assert_int_equal(ks__dek_cache_new(4097, &c), -EINVAL);
	assert_int_equal(ks__dek_cache_new(4, NULL), -EINVAL);
	assert_int_equal(ks__dek_cache_new(4096, &c), 0);
	assert_int_equal(ks__dek_cache_count(c), 0);
	ks__dek_cache_free(c);
	ks__dek_cache_free(NULL);
}

static void
test_cache_put_get(void **state)
{
	struct ks__dek_cache *c;
	uint8_t key[KS_DEK_LEN];

	(void)state;
	assert_int_equal(ks__dek_cache_new(4, &c), 0);
	memset(key, 0x77, sizeof(key));
	assert_int_equal(ks__dek_cache_get(c, 1, key), 0);
	assert_true(all_bytes(key, sizeof(key), 0x77));
	put_v(c, 1);
	put_v(c, 2);
	assert_int_equal(ks__dek_cache_count(c), 2);
	assert_true(has_v(c, 1));
	assert_true(has_v(c, 2));
	assert_false(has_v(c, 3));
	ks__dek_cache_free(c);
}

static void
test_cache_lru(void **state)
{
	struct ks__dek_cache *c;

	(void)state;
	assert_int_equal(ks__dek_cache_new(3, &c), 0);
	put_v(c, 1);
	put_v(c, 2);
	put_v(c, 3);
	assert_true(has_v(c, 1));
	put_v(c, 4);
	assert_int_equal(ks__dek_cache_count(c), 3);
	assert_false(has_v(c, 2));
	assert_true(has_v(c, 1));
	assert_true(has_v(c, 3));
	assert_true(has_v(c, 4));
	/* Now 1 is the least recently used (gets of 1, 3, 4 in order). */
	put_v(c, 5);
	assert_false(has_v(c, 1));
	assert_true(has_v(c, 3));
	assert_true(has_v(c, 4));
	assert_true(has_v(c, 5));
	ks__dek_cache_free(c);
}

static void
test_cache_replace(void **state)
{
	struct ks__dek_cache *c;
	uint8_t key[KS_DEK_LEN], got[KS_DEK_LEN];

	(void)state;
	assert_int_equal(ks__dek_cache_new(2, &c), 0);
	put_v(c, 1);
	put_v(c, 2);
	memset(key, 0xc3, sizeof(key));
	ks__dek_cache_put(c, 1, key);
	assert_int_equal(ks__dek_cache_count(c), 2);
	assert_int_equal(ks__dek_cache_get(c, 1, got), 1);
	assert_memory_equal(got, key, sizeof(key));
	/* Replacing refreshed 1, so 2 goes first. */
	put_v(c, 3);
	assert_false(has_v(c, 2));
	assert_int_equal(ks__dek_cache_get(c, 1, got), 1);
	assert_memory_equal(got, key, sizeof(key));
	ks__dek_cache_free(c);
}

static void
test_cache_drop(void **state)
{
	struct ks__dek_cache *c;

	(void)state;
	assert_int_equal(ks__dek_cache_new(4, &c), 0);
	put_v(c, 1);
	put_v(c, 2);
	put_v(c, 3);
	ks__dek_cache_drop(c, 1);
	assert_int_equal(ks__dek_cache_count(c), 2);
	assert_false(has_v(c, 1));
	assert_true(has_v(c, 2));
	assert_true(has_v(c, 3));
	ks__dek_cache_drop(c, 9); /* absent: nothing happens */
	assert_int_equal(ks__dek_cache_count(c), 2);
	ks__dek_cache_drop(c, 3);
	ks__dek_cache_drop(c, 2);
	assert_int_equal(ks__dek_cache_count(c), 0);
	put_v(c, 4);
	assert_true(has_v(c, 4));
	assert_int_equal(ks__dek_cache_count(c), 1);
	ks__dek_cache_free(c);
}

static void
test_cache_full_free(void **state)
{
	struct ks__dek_cache *c;
	uint32_t v;

	(void)state;
	assert_int_equal(ks__dek_cache_new(64, &c), 0);
	for (v = 1; v <= 200; v++)
		put_v(c, v);
	assert_int_equal(ks__dek_cache_count(c), 64);
	for (v = 137; v <= 200; v++)
		assert_true(has_v(c, v));
	assert_false(has_v(c, 136));
	ks__dek_cache_free(c);
}

#define THREADS 4
#define THREAD_OPS 10000
#define THREAD_VERSIONS 16

struct worker {
	pthread_t thread;
	struct ks__dek_cache *cache;
	unsigned seed;
	unsigned bad; /* gets that returned the wrong bytes */
	unsigned hits;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t key[KS_DEK_LEN], want[KS_DEK_LEN];
	uint32_t v;
	int i;

	for (i = 0; i < THREAD_OPS; i++) {
		v = 1 + (uint32_t)rand_r(&w->seed) % THREAD_VERSIONS;
		if (rand_r(&w->seed) % 2) {
			dek_of(v, key);
			ks__dek_cache_put(w->cache, v, key);
		} else if (ks__dek_cache_get(w->cache, v, key)) {
			dek_of(v, want);
			if (memcmp(key, want, KS_DEK_LEN) != 0)
				w->bad++;
			w->hits++;
		}
	}
	return NULL;
}

static void
test_cache_threads(void **state)
{
	struct worker w[THREADS];
	struct ks__dek_cache *c;
	unsigned i, hits = 0;
	uint32_t v;

	(void)state;
	assert_int_equal(ks__dek_cache_new(8, &c), 0);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].cache = c;
		w[i].seed = 0x5eed + i;
		assert_int_equal(
		    pthread_create(&w[i].thread, NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(w[i].thread, NULL), 0);
		assert_int_equal(w[i].bad, 0);
		hits += w[i].hits;
	}
	assert_true(hits > 0);
	assert_int_equal(ks__dek_cache_count(c), 8);
	for (v = 1, i = 0; v <= THREAD_VERSIONS; v++)
		i += (unsigned)has_v(c, v);
	assert_int_equal(i, 8);
	ks__dek_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aad_layout),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_wrong_record),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_nonce_fresh),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_cache_new_bad),
		cmocka_unit_test(test_cache_put_get),
		cmocka_unit_test(test_cache_lru),
		cmocka_unit_test(test_cache_replace),
		cmocka_unit_test(test_cache_drop),
		cmocka_unit_test(test_cache_full_free),
		cmocka_unit_test(test_cache_threads),
	};

	return cmocka_run_group_tests_name("keystore/seal", tests, NULL, NULL);
}
