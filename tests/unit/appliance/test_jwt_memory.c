/*
 * tests/unit/appliance/test_jwt_memory.c: appliance/jwt_cache.c through
 * jwt_verify(): the keyset's memory of verified signatures takes only the
 * exact pair that verified, checks claims and time on every use, forgets
 * at exp plus the skew, never remembers a refused token and belongs to
 * its keyset; threads verify and remember at once. Also jwt_keys.c's
 * fallback: with libcrypto unable to take a key (nolibcrypto.h), PSA
 * checks the signatures alone, with the same answers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "tests/unit/appliance/jwttest.h"
#include "tests/unit/appliance/nolibcrypto.h"

/* The child of test_verify_without_libcrypto (nolibcrypto.h): libcrypto
 * can take no key, so PSA checks the signatures alone, with the same
 * answers. Its exit code names the step that failed. */
static int
psa_only_main(void)
{
	struct fixture f = { 0 };
	struct jwt_claims c, out;
	struct jwt_keyset *ks;
	char token[JWT_TOKEN_MAX];
	struct jwt_verify_opts o = { ISS, AUD, NOW, 0 };
	EVP_KEYMGMT *probe;
	char *sig;

	probe = EVP_KEYMGMT_fetch(NULL, "EC", NULL);
	if (probe != NULL) {
		EVP_KEYMGMT_free(probe);
		return 3; /* the fault was not injected */
	}
	if (psa_crypto_init() != PSA_SUCCESS)
		return 4;
	f.key = new_p256(f.point);
	if (jwt_keyset_new(&ks) != 0 || jwt_keyset_add(ks, "k1", f.point) != 0)
		return 5;
	claims_init(&c);
	if (jwt_build(&c, sign_with, &f, token, sizeof(token), NULL) != 0 ||
	    jwt_verify(ks, token, &o, &out) != 0)
		return 6;
	strcpy(c.jti, "jti-other");
	if (jwt_build(&c, sign_with, &f, token, sizeof(token), NULL) != 0)
		return 7;
	sig = strrchr(token, '.') + 5;
	*sig = *sig == 'A' ? 'B' : 'A';
	if (jwt_verify(ks, token, &o, &out) != APP_EJWTSIG)
		return 8;
	jwt_keyset_free(ks);
	psa_destroy_key(f.key);
	return 0;
}

static void
test_verify_without_libcrypto(void **state)
{
	(void)state;
	nolibcrypto_run();
}

static int
verify_cached(const struct jwt_keyset *ks, const char *token, int64_t now,
    const char *aud, struct jwt_claims *out)
{
	struct jwt_verify_opts o = { ISS, aud, now, 1 };

	return jwt_verify(ks, token, &o, out);
}

/* The keyset's memory of verified signatures: only an exact pair that
 * verified is taken without the ECDSA check, and everything else about the
 * token is checked on every use. */
static void
test_verified_memory(void **state)
{
	struct fixture *f = *state;
	struct jwt_claims c, out;
	struct jwt_keyset *fresh;
	char token[JWT_TOKEN_MAX], forged[JWT_TOKEN_MAX], *sig;
	size_t i;

	claims_init(&c);
	strcpy(c.jti, "jti-memory");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	/* Never verified: the loop's question gets -EAGAIN, nothing else. */
	assert_int_equal(verify_cached(f->ks, token, NOW, AUD, &out), -EAGAIN);
	assert_string_equal(out.sub, "");
	assert_int_equal(verify_at(f, token, NOW, &out), 0);
	/* Verified once: taken without the check, with the same claims. */
	memset(&out, 0x55, sizeof(out));
	assert_int_equal(verify_cached(f->ks, token, NOW + 5, AUD, &out), 0);
	assert_string_equal(out.sub, "app:billing");
	assert_string_equal(out.jti, "jti-memory");
	assert_int_equal(out.scope_count, 2);
	assert_int_equal(out.exp, NOW + 900);
	/* The same signed part with any other signature is not the pair
	 * that verified: a full check, which refuses it. */
	sig = strrchr(token, '.') + 1;
	/* Not the last character: some of its bits are padding, and a
	 * change there is a format error, not another signature. */
	for (i = 0; i + 1 < strlen(sig); i += 17) {
		strcpy(forged, token);
		forged[sig - token + i] = sig[i] == 'A' ? 'B' : 'A';
		assert_int_equal(
		    verify_cached(f->ks, forged, NOW, AUD, &out), -EAGAIN);
		assert_int_equal(verify_at(f, forged, NOW, &out), APP_EJWTSIG);
	}
	/* Claims and time are checked on a hit too. */
	assert_int_equal(verify_cached(f->ks, token, NOW, "someone-else", &out),
	    APP_EJWTAUD);
	assert_string_equal(out.sub, "");
	assert_int_equal(
	    verify_cached(f->ks, token, NOW + 900 + JWT_SKEW - 1, AUD, &out),
	    0);
	/* Past exp + skew the memory has nothing; the full check says why. */
	assert_int_equal(
	    verify_cached(f->ks, token, NOW + 900 + JWT_SKEW, AUD, &out),
	    -EAGAIN);
	assert_int_equal(
	    verify_at(f, token, NOW + 900 + JWT_SKEW, &out), APP_EJWTEXPIRED);
	/* A token refused for its claims is not remembered. */
	c.nbf = NOW + 300;
	strcpy(c.jti, "jti-later");
	assert_int_equal(
	    jwt_build(&c, sign_with, f, token, sizeof(token), NULL), 0);
	assert_int_equal(verify_at(f, token, NOW, &out), APP_EJWTNOTYET);
	assert_int_equal(
	    verify_cached(f->ks, token, NOW + 300, AUD, &out), -EAGAIN);
	assert_int_equal(verify_at(f, token, NOW + 300, &out), 0);
	assert_int_equal(verify_cached(f->ks, token, NOW + 301, AUD, &out), 0);
	/* Another keyset with the same keys remembers nothing of this one. */
	assert_int_equal(jwt_keyset_new(&fresh), 0);
	assert_int_equal(jwt_keyset_add(fresh, "k1", f->point), 0);
	assert_int_equal(
	    verify_cached(fresh, token, NOW + 301, AUD, &out), -EAGAIN);
	jwt_keyset_free(fresh);
}

#define MEMORY_THREADS 4
#define MEMORY_TOKENS 40

struct memory_run {
	const struct jwt_keyset *ks;
	char (*tokens)[JWT_TOKEN_MAX];
	int seed, fails;
};

static void *
memory_thread(void *arg)
{
	struct memory_run *m = arg;
	struct jwt_claims *out = malloc(sizeof(*out));
	struct jwt_verify_opts o = { ISS, AUD, NOW, 0 };
	int i, k, rc;

	if (out == NULL) {
		m->fails++;
		return NULL;
	}
	for (i = 0; i < 4 * MEMORY_TOKENS; i++) {
		k = (i * 7 + m->seed) % MEMORY_TOKENS;
		o.cached_only = i % 2;
		rc = jwt_verify(m->ks, m->tokens[k], &o, out);
		if (rc != 0 && !(rc == -EAGAIN && o.cached_only))
			m->fails++;
	}
	free(out);
	return NULL;
}

/* Threads verifying and remembering the same tokens at once. */
static void
test_verified_memory_threads(void **state)
{
	struct fixture *f = *state;
	struct memory_run run[MEMORY_THREADS];
	pthread_t tid[MEMORY_THREADS];
	char(*tokens)[JWT_TOKEN_MAX] = calloc(MEMORY_TOKENS, JWT_TOKEN_MAX);
	struct jwt_claims c, out;
	int i;

	assert_non_null(tokens);
	claims_init(&c);
	for (i = 0; i < MEMORY_TOKENS; i++) {
		snprintf(c.jti, sizeof(c.jti), "jti-thread-%d", i);
		assert_int_equal(
		    jwt_build(&c, sign_with, f, tokens[i], JWT_TOKEN_MAX, NULL),
		    0);
	}
	for (i = 0; i < MEMORY_THREADS; i++) {
		run[i] = (struct memory_run){ f->ks, tokens, i * 3, 0 };
		assert_int_equal(
		    pthread_create(&tid[i], NULL, memory_thread, &run[i]), 0);
	}
	for (i = 0; i < MEMORY_THREADS; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(run[i].fails, 0);
	}
	/* Every token verified by now is remembered. */
	for (i = 0; i < MEMORY_TOKENS; i++)
		assert_int_equal(
		    verify_cached(f->ks, tokens[i], NOW, AUD, &out), 0);
	free(tokens);
}

int
main(void)
{
	if (nolibcrypto_child())
		return psa_only_main();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_without_libcrypto),
		cmocka_unit_test(test_verified_memory),
		cmocka_unit_test(test_verified_memory_threads),
	};

	return cmocka_run_group_tests_name(
	    "appliance/jwt_memory", tests, setup, teardown);
}
