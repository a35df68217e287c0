/*
 * tests/integration/keystore/test_ks_fault.c: an HSM that fails in the
 * middle of a keystore operation. The keystore runs on tests/fault's
 * PKCS#11 module, which fails the N-th call with a chosen CK_RV; for every N
 * over a workload of creations, rotation, API keys and device enrolment,
 * each operation gives 0 or a clean error, a failed creation leaves no
 * record behind, the consistency walk still passes and the keystore serves
 * the next request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>

#include <p11-kit/pkcs11.h>

#include "keystore/keystore.h"
#include "tests/integration/pkcs11/fixture.h"

static struct p11_fixture fx;
static char uri[P11_URI_PATH_MAX + 600], ksdir[600];
static void (*arm)(unsigned long, unsigned long);
static void (*fault_reset)(void);
static unsigned long (*calls)(void);
static struct p11_ctx *hsm;
static struct ks *ks;
static struct ks_request *q;
static struct ks_reply *r;

static void
quiet(int level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

static int
setup(void **state)
{
	const char *so = getenv("SR_P11FAULT_SO");
	struct ks_options o = { 0 };
	char path[PATH_MAX], err[256];
	void *fault;

	(void)state;
	sr_log_set_sink(quiet, NULL);
	if (realpath(so != NULL ? so : "build/lib/libsr_p11fault.so", path) ==
	    NULL)
		return -1;
	fault = dlopen(path, RTLD_NOW);
	if (fault == NULL)
		return -1;
	*(void **)&arm = dlsym(fault, "sr_p11fault_arm");
	*(void **)&fault_reset = dlsym(fault, "sr_p11fault_reset");
	*(void **)&calls = dlsym(fault, "sr_p11fault_calls");
	if (!arm || !fault_reset || !calls)
		return -1;
	p11_fixture_setup(&fx, "ks-fault");
	p11_fixture_uri_with_module(&fx, path, uri, sizeof(uri));
	snprintf(ksdir, sizeof(ksdir), "%s/keystore", fx.dir);
	o.path = ksdir;
	q = malloc(sizeof(*q));
	r = malloc(sizeof(*r));
	if (q == NULL || r == NULL || p11_open(uri, NULL, &hsm, err) != 0 ||
	    ks_open(hsm, &o, &ks, err) != 0) {
		fprintf(stderr, "set-up: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fault_reset();
	ks_close(ks);
	p11_close(hsm);
	free(q);
	free(r);
	p11_fixture_teardown(&fx);
	return 0;
}

static int
clean(int rc)
{
	return rc == 0 || ((rc <= -1000 && rc > -3000) || rc > -1000)
	    ? strcmp(sr_strerror(rc), "unknown error") != 0
	    : 0;
}

static int
call(enum ks_op op)
{
	q->op = op;
	ks_reply_init(r);
	return ks_call(ks, q, r);
}

static uint64_t
records(void)
{
	uint64_t n = 0;
	unsigned k;

	ks_request_init(q, KS_OP_STATS);
	assert_int_equal(call(KS_OP_STATS), 0);
	for (k = 1; k < KS_KIND_COUNT; k++)
		n += r->stats.keys[k];
	return n;
}

/*
 * Create a key of each kind that uses the HSM, rotate one, make an API key
 * and enrol a device. Returns the clean failures (unclean ones fail the
 * test) and adds to *added the records the successful steps made.
 */
static int
workload(const char *app, unsigned serial, uint64_t *added)
{
	static const uint8_t kinds[] = { KS_KIND_APP, KS_KIND_DATA,
		KS_KIND_SIGNING };
	char id[KS_ID_LEN + 1] = "";
	int rc, failures = 0;
	unsigned i;

	for (i = 0; i < sizeof(kinds); i++) {
		ks_request_init(q, KS_OP_CREATE);
		q->u.create.kind = kinds[i];
		snprintf(q->u.create.name, sizeof(q->u.create.name), "w-%u-%u",
		    serial, i);
		rc = call(KS_OP_CREATE);
		assert_true(clean(rc));
		failures += rc != 0;
		*added += rc == 0;
		if (rc == 0 && kinds[i] == KS_KIND_DATA)
			memcpy(id, r->meta.id, sizeof(id));
	}
	if (id[0] != '\0') {
		ks_request_init(q, KS_OP_ROTATE);
		memcpy(q->u.key.id, id, sizeof(id));
		rc = call(KS_OP_ROTATE);
		assert_true(clean(rc));
		failures += rc != 0;
		*added += rc == 0;
	}
	ks_request_init(q, KS_OP_APIKEY_CREATE);
	memcpy(q->u.apikey_create.owner, app, KS_ID_LEN + 1);
	rc = call(KS_OP_APIKEY_CREATE);
	assert_true(clean(rc));
	failures += rc != 0;
	*added += rc == 0;
	ks_request_init(q, KS_OP_DEVICE_KEY);
	memcpy(q->u.device.app, app, KS_ID_LEN + 1);
	snprintf(
	    q->u.device.serial, sizeof(q->u.device.serial), "sn-%u", serial);
	rc = call(KS_OP_DEVICE_KEY);
	assert_true(clean(rc));
	failures += rc != 0;
	/* Enrolment is committed before the key is derived: a failure in
	 * the derivation leaves the (key-less) device record, and asking
	 * again returns the same key. */
	ks_reply_wipe(r);
	return failures;
}

static void
test_hsm_fails_mid_operation(void **state)
{
	static const unsigned long rvs[] = { CKR_DEVICE_ERROR,
		CKR_SESSION_HANDLE_INVALID, CKR_GENERAL_ERROR };
	char app[KS_ID_LEN + 1];
	unsigned long total, n;
	uint64_t before, after, added = 0, devices;
	unsigned serial = 0, i, failed_runs = 0;

	(void)state;
	ks_request_init(q, KS_OP_CREATE);
	q->u.create.kind = KS_KIND_APP;
	strcpy(q->u.create.name, "fault-app");
	assert_int_equal(call(KS_OP_CREATE), 0);
	memcpy(app, r->meta.id, sizeof(app));

	fault_reset();
	assert_int_equal(workload(app, serial++, &added), 0);
	total = calls();
	assert_true(total > 10);
	for (i = 0; i < sizeof(rvs) / sizeof(rvs[0]); i++) {
		for (n = 1; n <= total; n++) {
			before = records();
			devices = r->stats.keys[KS_KIND_DEVICE];
			added = 0;
			arm(n, rvs[i]);
			failed_runs += workload(app, serial++, &added) > 0;
			fault_reset();
			after = records();
			/* Each successful step added exactly its record and a
			 * failed one none: no partial record. Devices are
			 * counted apart (see workload). */
			assert_int_equal(after - r->stats.keys[KS_KIND_DEVICE],
			    before - devices + added);
			ks_request_init(q, KS_OP_CHECK);
			assert_int_equal(call(KS_OP_CHECK), 0);
			/* And the next request is served. */
			assert_int_equal(workload(app, serial++, &added), 0);
		}
	}
	fprintf(stderr, "# %u of %lu runs saw a clean failure\n", failed_runs,
	    total * (unsigned long)(sizeof(rvs) / sizeof(rvs[0])));
	assert_true(failed_runs > 0);
}

/* One process owns a keystore: a second open is refused, clearly. */
static void
test_second_owner_refused(void **state)
{
	struct ks_options o = { 0 };
	struct ks *other = NULL;
	char err[256];

	(void)state;
	fault_reset();
	o.path = ksdir;
	assert_int_equal(ks_open(hsm, &o, &other, err), KS_EBUSY);
	assert_null(other);
	assert_non_null(strstr(err, "in use"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hsm_fails_mid_operation),
		cmocka_unit_test(test_second_owner_refused),
	};

	return cmocka_run_group_tests_name(
	    "keystore/fault", tests, setup, teardown);
}
