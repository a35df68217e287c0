/*
 * tests/integration/pkcs11/test_threads.c: 16 threads share one context and
 * run thousands of mixed operations (HMAC, SP 800-108, ECDSA, wrap, unwrap,
 * random, find) on a pool smaller than the thread count; every one must
 * succeed and give the right answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "tests/integration/pkcs11/fixture.h"

#define THREADS 16
#define OPS_PER_THREAD 1000

static struct p11_fixture fx;
static struct p11_ctx *ctx;
static struct p11_key *kek, *kdk, *sig;
static uint8_t kdk_expect[32];
static atomic_int failures, done_ops;

static int
setup(void **state)
{
	struct p11_options opt = { .sessions = 6 };
	char err[256];

	(void)state;
	p11_fixture_setup(&fx, "threads");
	if (p11_open(fx.uri, &opt, &ctx, err) != 0) {
		fprintf(stderr, "p11_open: %s\n", err);
		return -1;
	}
	if (p11_key_generate(ctx, P11_KEY_AES, "t-kek", NULL, 0, 32,
	        P11_KEY_TOKEN, &kek) != 0 ||
	    p11_key_generate(ctx, P11_KEY_HMAC, "t-kdk", NULL, 0, 32,
	        P11_KEY_TOKEN, &kdk) != 0 ||
	    p11_key_generate(ctx, P11_KEY_EC_P256, "t-sign", NULL, 0, 0,
	        P11_KEY_TOKEN, &sig) != 0)
		return -1;
	if (p11_kdf_sp800_108(ctx, kdk, "app", 3, "ctx", 3, kdk_expect, 32))
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	p11_key_free(kek);
	p11_key_free(kdk);
	p11_key_free(sig);
	p11_close(ctx);
	p11_fixture_teardown(&fx);
	return 0;
}

static void
op_failed(const char *what, int rc)
{
	fprintf(stderr, "%s: %s (%s)\n", what, sr_strerror(rc),
	    p11_rv_name(p11_last_rv()));
	atomic_fetch_add(&failures, 1);
}

static void *
worker(void *arg)
{
	uint8_t buf[64], blob[40], out[32];
	struct sr_secret plain = { 0 };
	struct p11_key *found;
	unsigned seed = (unsigned)(uintptr_t)arg;
	size_t n;
	int i, rc;

	for (i = 0; i < OPS_PER_THREAD; i++) {
		switch ((seed + (unsigned)i) % 6) {
		case 0:
			rc = p11_hmac_sha256(ctx, kdk, buf, sizeof(buf), out);
			if (rc != 0)
				op_failed("hmac", rc);
			break;
		case 1:
			rc = p11_kdf_sp800_108(
			    ctx, kdk, "app", 3, "ctx", 3, out, 32);
			if (rc != 0)
				op_failed("kdf", rc);
			else if (memcmp(out, kdk_expect, 32) != 0)
				op_failed("kdf value", P11_EGENERAL);
			break;
		case 2:
			rc = p11_ecdsa_p256_sign(ctx, sig, buf, 32, buf);
			if (rc != 0)
				op_failed("sign", rc);
			break;
		case 3:
			rc = p11_random(ctx, buf, 32);
			if (rc == 0)
				rc = p11_wrap(
				    ctx, kek, buf, 32, blob, sizeof(blob), &n);
			if (rc == 0)
				rc = p11_unwrap(ctx, kek, blob, n, &plain);
			if (rc != 0)
				op_failed("wrap/unwrap", rc);
			else if (memcmp(sr_secret_bytes(&plain), buf, 32) != 0)
				op_failed("unwrap value", P11_EGENERAL);
			sr_secret_free(&plain);
			break;
		case 4:
			rc = p11_random(ctx, buf, sizeof(buf));
			if (rc != 0)
				op_failed("random", rc);
			break;
		default:
			rc = p11_key_find(
			    ctx, P11_KEY_HMAC, "t-kdk", NULL, 0, &found);
			if (rc != 0)
				op_failed("find", rc);
			else
				p11_key_free(found);
			break;
		}
		atomic_fetch_add(&done_ops, 1);
	}
	return NULL;
}

static void
test_sixteen_threads_mixed(void **state)
{
	pthread_t th[THREADS];
	struct p11_token_info ti;
	uintptr_t i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker, (void *)i), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&failures), 0);
	assert_int_equal(atomic_load(&done_ops), THREADS * OPS_PER_THREAD);
	/* Nothing needed repair under load. */
	assert_int_equal(p11_token_info(ctx, &ti), 0);
	assert_int_equal(ti.recoveries, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sixteen_threads_mixed),
	};

	return cmocka_run_group_tests_name(
	    "pkcs11/threads", tests, setup, teardown);
}
