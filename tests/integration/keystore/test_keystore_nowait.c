/*
 * tests/integration/keystore/test_keystore_nowait.c: requests an event loop
 * makes with KS_REQ_NO_WAIT, on a real SoftHSM2 token and LMDB file: reads
 * from LMDB and the verification cache are answered, anything that needs
 * the HSM or a write is refused with KS_EMISS and leaves no trace, and an
 * unknown flag is a bad request. It must never sleep on a timer: every
 * answer here comes back at once or the keystore is wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/integration/keystore/kstest.h"

/* The request of this thread, flagged. */
static struct ks_request *
nowait_req(enum ks_op op)
{
	struct ks_request *q = kt_req(op);

	q->flags = KS_REQ_NO_WAIT;
	return q;
}

/* Reads come back as they would without the flag. */
static void
test_reads_answered(void **state)
{
	struct ks *ks = kt_main_ks();
	char app[KT_ID], user[KT_ID];
	struct ks_request *q;
	struct ks_stats s;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "nowait-app", NULL, 0, 0, app), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, "nowait-user", NULL, 0, 0, user), 0);
	q = nowait_req(KS_OP_GET);
	kt_setid(q->u.key.id, app);
	assert_int_equal(kt_run(ks), 0);
	assert_string_equal(KT_R->meta.id, app);
	assert_string_equal(KT_R->meta.name, "nowait-app");
	q = nowait_req(KS_OP_GET);
	kt_setid(q->u.key.id, "AAAAAAAAAAAA");
	assert_int_equal(kt_run(ks), KS_ENOTFOUND);
	q = nowait_req(KS_OP_LIST);
	q->u.list.kind = KS_KIND_USER;
	q->u.list.limit = KS_LIST_MAX;
	assert_int_equal(kt_run(ks), 0);
	assert_true(KT_R->count >= 1);
	q = nowait_req(KS_OP_EXPIRING);
	q->u.expiring.within = 72 * 3600;
	q->u.expiring.limit = 10;
	assert_int_equal(kt_run(ks), 0);
	nowait_req(KS_OP_STATS);
	assert_int_equal(kt_run(ks), 0);
	s = KT_R->stats;
	assert_true(s.keys[KS_KIND_APP] >= 1);
}

/* An API key: a miss is KS_EMISS (no LMDB lookup, no HSM), a hit after the
 * worker's full verification is answered, a wrong secret still refused. */
static void
test_verify_from_cache_only(void **state)
{
	struct ks *ks = kt_main_ks();
	char app[KT_ID], key[KS_APIKEY_LEN + 1];
	struct ks_request *q;
	int i;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "nowait-keys", NULL, 0, 0, app), 0);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	/* Twice: a miss does not look the key up and fill the cache. */
	for (i = 0; i < 2; i++) {
		q = nowait_req(KS_OP_APIKEY_VERIFY);
		snprintf(q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key),
		    "%s", key);
		assert_int_equal(kt_run(ks), KS_EMISS);
		assert_int_equal(KT_R->status, KS_EMISS);
		assert_string_equal(KT_R->meta.id, "");
	}
	/* The worker verifies once; the loop then answers from the cache. */
	assert_int_equal(kt_verify(ks, key), 0);
	q = nowait_req(KS_OP_APIKEY_VERIFY);
	snprintf(
	    q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key), "%s", key);
	assert_int_equal(kt_run(ks), 0);
	assert_string_equal(KT_R->meta.id, app);
	/* A wrong secret with a cached id is refused on the spot (its
	 * checksum), not sent to a worker as a miss. */
	key[KS_APIKEY_LEN - 8] = key[KS_APIKEY_LEN - 8] == 'a' ? 'b' : 'a';
	q = nowait_req(KS_OP_APIKEY_VERIFY);
	snprintf(
	    q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key), "%s", key);
	assert_int_equal(kt_run(ks), KS_EAPIKEY);
	assert_int_equal(KT_R->status, KS_EAPIKEY);
}

/* Writes and HSM work are refused untouched, then done without the flag. */
static void
test_writes_refused(void **state)
{
	static const enum ks_op refused[] = { KS_OP_CREATE, KS_OP_ROTATE,
		KS_OP_SUSPEND, KS_OP_REVOKE, KS_OP_DESTROY, KS_OP_MATERIAL,
		KS_OP_DEVICE_KEY, KS_OP_APIKEY_CREATE, KS_OP_SIGN,
		KS_OP_ROOT_ROTATE, KS_OP_CHECK, KS_OP_PUBLIC, KS_OP_CRED_GET,
		KS_OP_CRED_SET, KS_OP_APIKEY_RETIRE, KS_OP_UPDATE,
		KS_OP_USAGE_FLUSH };
	struct ks *ks = kt_main_ks();
	struct ks_stats before, after;
	struct ks_request *q;
	char data[KT_ID];
	size_t i;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, "nowait-data", NULL, 0, 0, data), 0);
	before = kt_stats(ks);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		q = nowait_req(refused[i]);
		kt_setid(q->u.key.id, data);
		assert_int_equal(kt_run(ks), KS_EMISS);
		assert_int_equal(KT_R->material_len, 0);
	}
	q = nowait_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_DATA;
	snprintf(q->u.create.name, sizeof(q->u.create.name), "never-made");
	assert_int_equal(kt_run(ks), KS_EMISS);
	after = kt_stats(ks);
	assert_memory_equal(after.keys, before.keys, sizeof(after.keys));
	assert_int_equal(after.committed_writes, before.committed_writes);
	/* Still there, still version 1: nothing above reached the record. */
	assert_int_equal(kt_key(ks, KS_OP_GET, data, 0), 0);
	assert_int_equal(KT_R->meta.version, 1);
	assert_int_equal(KT_R->meta.state, KS_STATE_ACTIVE);
	/* The flag is per request: the same thread's next call may wait. */
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, data, 0), 0);
	assert_int_equal(KT_R->meta.version, 2);
}

/* A flag the keystore does not know is a bad request, not ignored. */
static void
test_unknown_flag(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_request *q;

	(void)state;
	q = kt_req(KS_OP_STATS);
	q->flags = 2;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	q = kt_req(KS_OP_STATS);
	q->flags = KS_REQ_NO_WAIT | 0x80000000u;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	assert_int_equal(KT_R->status, KS_EREQUEST);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_answered),
		cmocka_unit_test(test_verify_from_cache_only),
		cmocka_unit_test(test_writes_refused),
		cmocka_unit_test(test_unknown_flag),
	};

	return cmocka_run_group_tests_name(
	    "keystore/nowait", tests, kt_group_setup, kt_group_teardown);
}
