/*
 * tests/integration/pkcs11/test_fault.c: fault injection. The layer is
 * opened on tests/fault's PKCS#11 module, which forwards to SoftHSM2 and
 * fails the N-th call with a chosen CK_RV. For every N over a whole
 * workload (open, every operation, close) and each CK_RV the layer must
 * recover from, each failure must give a clean Strongroom error and the
 * same context must then work again. Run under ASan too, so a leak on any
 * error path fails the build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "tests/integration/pkcs11/fixture.h"

static struct p11_fixture fx;
static char uri[P11_URI_PATH_MAX + 600];
static void *fault;
static void (*arm)(unsigned long, unsigned long);
static void (*arm_sticky)(unsigned long, unsigned long, unsigned long);
static void (*fault_reset)(void);
static unsigned long (*calls)(void);
static unsigned long (*fired)(void);
static void (*hide)(unsigned long);

static int log_lines;

/* Recovery is logged; keep the lines off the test output but count them. */
static void
count_line(int level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	(void)line;
	log_lines++;
}

static int
setup(void **state)
{
	const char *so = getenv("SR_P11FAULT_SO");
	char path[PATH_MAX], err[256];
	struct p11_ctx *ctx;
	struct p11_key *k;
	int rc = 0;

	(void)state;
	if (realpath(so != NULL ? so : "build/lib/libsr_p11fault.so", path) ==
	    NULL) {
		fprintf(stderr, "fault module not found (SR_P11FAULT_SO)\n");
		return -1;
	}
	/* Holding our own reference keeps the counters alive across the
	 * layer's dlopen/dlclose. */
	fault = dlopen(path, RTLD_NOW);
	if (fault == NULL)
		return -1;
	*(void **)&arm = dlsym(fault, "sr_p11fault_arm");
	*(void **)&arm_sticky = dlsym(fault, "sr_p11fault_arm_sticky");
	*(void **)&fault_reset = dlsym(fault, "sr_p11fault_reset");
	*(void **)&calls = dlsym(fault, "sr_p11fault_calls");
	*(void **)&fired = dlsym(fault, "sr_p11fault_fired");
	*(void **)&hide = dlsym(fault, "sr_p11fault_hide_mechanism");
	if (!arm || !arm_sticky || !fault_reset || !calls || !fired || !hide)
		return -1;
	sr_log_set_sink(count_line, NULL);
	p11_fixture_setup(&fx, "fault");
	p11_fixture_uri_with_module(&fx, path, uri, sizeof(uri));

	/* The token keys the workload uses. */
	if (p11_open(uri, NULL, &ctx, err) != 0) {
		fprintf(stderr, "p11_open: %s\n", err);
		return -1;
	}
	rc |= p11_key_generate(
	    ctx, P11_KEY_AES, "f-kek", NULL, 0, 32, P11_KEY_TOKEN, &k);
	p11_key_free(k);
	rc |= p11_key_generate(
	    ctx, P11_KEY_HMAC, "f-kdk", NULL, 0, 32, P11_KEY_TOKEN, &k);
	p11_key_free(k);
	rc |= p11_key_generate(
	    ctx, P11_KEY_EC_P256, "f-sign", NULL, 0, 0, P11_KEY_TOKEN, &k);
	p11_key_free(k);
	p11_close(ctx);
	return rc == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	p11_fixture_teardown(&fx);
	/* The fault module stays loaded: it never unloads SoftHSM2. */
	return 0;
}

/* A clean error: ours or -errno, with a real message. */
static int
clean_error(int rc)
{
	if (rc >= 0)
		return 0;
	if (!(rc > -1000 || (rc <= -2000 && rc > -3000)))
		return 0;
	return strcmp(sr_strerror(rc), "unknown error") != 0;
}

#define STEP(expr) \
	do { \
		int rc_ = (expr); \
		if (rc_ != 0) { \
			if (!clean_error(rc_)) { \
				fprintf( \
				    stderr, "%s: unclean %d\n", #expr, rc_); \
				bad++; \
			} \
			errors++; \
		} \
	} while (0)

/*
 * Every operation the keystore uses, once. Returns the number of failed
 * steps; unclean failures are counted in *unclean.
 */
static int
workload(struct p11_ctx *ctx, int *unclean)
{
	struct p11_key *kek = NULL, *kdk = NULL, *sig = NULL, *tmp = NULL;
	struct sr_secret plain = { 0 };
	uint8_t buf[65], blob[40];
	size_t n = 0;
	int errors = 0, bad = 0;

	memset(buf, 0x5a, sizeof(buf));
	STEP(p11_key_find(ctx, P11_KEY_AES, "f-kek", NULL, 0, &kek));
	STEP(p11_key_find(ctx, P11_KEY_HMAC, "f-kdk", NULL, 0, &kdk));
	STEP(p11_key_find(ctx, P11_KEY_EC_P256, "f-sign", NULL, 0, &sig));
	if (kdk != NULL) {
		STEP(p11_hmac_sha256(ctx, kdk, buf, 64, buf));
		STEP(p11_kdf_sp800_108(ctx, kdk, "a", 1, "b", 1, buf, 64));
	}
	if (sig != NULL) {
		STEP(p11_ecdsa_p256_sign(ctx, sig, buf, 10, buf));
		STEP(p11_ec_public_get(ctx, sig, buf));
	}
	if (kek != NULL) {
		STEP(p11_wrap(ctx, kek, buf, 32, blob, sizeof(blob), &n));
		if (n == 40) {
			STEP(p11_unwrap(ctx, kek, blob, n, &plain));
			sr_secret_free(&plain);
		}
	}
	STEP(p11_random(ctx, buf, 32));
	STEP(p11_key_generate(ctx, P11_KEY_HMAC, "f-session", NULL, 0, 32,
	    P11_KEY_SESSION, &tmp));
	if (tmp != NULL)
		STEP(p11_key_destroy(ctx, tmp));
	p11_key_free(tmp);
	p11_key_free(kek);
	p11_key_free(kdk);
	p11_key_free(sig);
	*unclean += bad;
	return errors;
}

static const CK_RV fault_rvs[] = {
	CKR_DEVICE_ERROR,
	CKR_SESSION_HANDLE_INVALID,
	CKR_SESSION_CLOSED,
	CKR_DEVICE_REMOVED,
	CKR_OBJECT_HANDLE_INVALID,
	CKR_TOKEN_NOT_PRESENT,
	CKR_USER_NOT_LOGGED_IN,
	CKR_GENERAL_ERROR,
	CKR_HOST_MEMORY,
};

static void
test_every_call_fails_cleanly(void **state)
{
	struct p11_options opt = { .sessions = 2 };
	struct p11_ctx *ctx;
	unsigned long total, nth;
	size_t r;
	int unclean = 0, iterations = 0, rc;

	(void)state;
	/* Count the calls of one whole cycle. */
	fault_reset();
	assert_int_equal(p11_open(uri, &opt, &ctx, NULL), 0);
	assert_int_equal(workload(ctx, &unclean), 0);
	p11_close(ctx);
	total = calls();
	assert_true(total > 40);

	for (r = 0; r < sizeof(fault_rvs) / sizeof(fault_rvs[0]); r++) {
		for (nth = 1; nth <= total; nth++) {
			arm(nth, fault_rvs[r]);
			rc = p11_open(uri, &opt, &ctx, NULL);
			if (rc != 0) {
				assert_true(clean_error(rc));
				fault_reset();
				rc = p11_open(uri, &opt, &ctx, NULL);
				assert_int_equal(rc, 0);
			} else {
				workload(ctx, &unclean);
				if (fired() == 0) {
					/* The fault lies in close. */
					p11_close(ctx);
					assert_int_equal(fired(), 1);
					fault_reset();
					assert_int_equal(
					    p11_open(uri, &opt, &ctx, NULL), 0);
				}
				fault_reset();
			}
			/* Whatever failed, the same context works again. */
			if (workload(ctx, &unclean) != 0) {
				fprintf(stderr, "no recovery: call %lu, %s\n",
				    nth, p11_rv_name(fault_rvs[r]));
				fail();
			}
			p11_close(ctx);
			iterations++;
		}
	}
	assert_int_equal(unclean, 0);
	assert_true(log_lines > 0);
	fprintf(
	    stderr, "# %d fault runs over %lu calls each\n", iterations, total);
}

static void
test_device_down_for_a_while(void **state)
{
	struct p11_token_info ti;
	struct p11_ctx *ctx;
	int unclean = 0;

	(void)state;
	fault_reset();
	assert_int_equal(p11_open(uri, NULL, &ctx, NULL), 0);
	/* The module answers DEVICE_REMOVED to its next 25 calls. */
	arm_sticky(1, CKR_DEVICE_REMOVED, 25);
	assert_true(workload(ctx, &unclean) > 0);
	assert_int_equal(unclean, 0);
	assert_true(fired() > 0);
	fault_reset();
	assert_int_equal(workload(ctx, &unclean), 0);
	assert_int_equal(p11_token_info(ctx, &ti), 0);
	assert_true(ti.recoveries >= 1);
	p11_close(ctx);
}

static void
test_missing_mechanism_is_named(void **state)
{
	struct p11_ctx *ctx = NULL;
	char err[256];

	(void)state;
	fault_reset();
	hide(CKM_SHA256_HMAC);
	hide(CKM_AES_KEY_WRAP);
	assert_int_equal(p11_open(uri, NULL, &ctx, err), P11_EMECH);
	assert_non_null(strstr(err, "CKM_SHA256_HMAC"));
	assert_non_null(strstr(err, "CKM_AES_KEY_WRAP"));
	assert_null(strstr(err, "CKM_ECDSA"));
	hide((unsigned long)-1);
	assert_int_equal(p11_open(uri, NULL, &ctx, err), 0);
	p11_close(ctx);
}

/* Recovery while other threads are mid-call: every failure is clean, no
 * call deadlocks (an alarm ends a hung run), and the context works after. */
struct load_arg {
	struct p11_ctx *ctx;
	int errors, unclean;
};

static void *
load_worker(void *p)
{
	struct load_arg *a = p;
	int i;

	for (i = 0; i < 40; i++)
		a->errors += workload(a->ctx, &a->unclean);
	return NULL;
}

static void
test_recovery_under_load(void **state)
{
	struct p11_options opt = { .sessions = 3 };
	struct load_arg args[6];
	pthread_t th[6];
	struct p11_token_info ti;
	struct p11_ctx *ctx;
	int i, errors = 0, unclean = 0;

	(void)state;
	fault_reset();
	assert_int_equal(p11_open(uri, &opt, &ctx, NULL), 0);
	alarm(120);
	for (i = 0; i < 6; i++) {
		args[i] = (struct load_arg){ ctx, 0, 0 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, load_worker, &args[i]), 0);
	}
	/* A device error every few hundred calls while they run. */
	for (i = 0; i < 20; i++) {
		arm(150, CKR_DEVICE_ERROR);
		usleep(20000);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		errors += args[i].errors;
		unclean += args[i].unclean;
	}
	alarm(0);
	fault_reset();
	assert_int_equal(unclean, 0);
	assert_true(errors > 0);
	assert_int_equal(workload(ctx, &unclean), 0);
	assert_int_equal(p11_token_info(ctx, &ti), 0);
	assert_true(ti.recoveries >= 1);
	fprintf(stderr, "# %d clean errors, %lu recoveries under load\n",
	    errors, ti.recoveries);
	p11_close(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_mechanism_is_named),
		cmocka_unit_test(test_device_down_for_a_while),
		cmocka_unit_test(test_every_call_fails_cleanly),
		cmocka_unit_test(test_recovery_under_load),
	};

	return cmocka_run_group_tests_name(
	    "pkcs11/fault", tests, setup, teardown);
}
