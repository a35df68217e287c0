/*
 * tests/integration/keystore/test_keystore_usage.c: an API key's last use,
 * on a real SoftHSM2 token and LMDB file: noted by an accepted
 * verification and shown at once by GET and LIST, written to the record by
 * KS_OP_USAGE_FLUSH and by ks_close (it survives a reopen), never moved by
 * a refused verification, and leaving every record's MAC valid.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/integration/keystore/kstest.h"

static int
flush(struct ks *ks)
{
	kt_req(KS_OP_USAGE_FLUSH);
	return kt_run(ks);
}

static int64_t
last_used(struct ks *ks, const char *id)
{
	struct ks_meta m;

	kt_get_meta(ks, id, 0, &m);
	return m.last_used;
}

static void
test_last_used(void **state)
{
	struct ks *ks = kt_open("usage", NULL);
	char app[KT_ID], id[KT_ID], id2[KT_ID];
	char key[KS_APIKEY_LEN + 1], key2[KS_APIKEY_LEN + 1];
	struct ks_request *q;
	int64_t t0 = kt_now(), seen;
	uint64_t checked = 0;
	uint32_t i;
	int found = 0;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "usage-app", NULL, 0, 0, app), 0);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	assert_int_equal(kt_apikey(ks, app, 0, key2), 0);
	assert_int_equal(ks_apikey_id(key, KS_APIKEY_LEN, id), 0);
	assert_int_equal(ks_apikey_id(key2, KS_APIKEY_LEN, id2), 0);
	assert_int_equal(last_used(ks, id), 0); /* never used */
	/* A refused verification notes nothing. */
	key[KS_APIKEY_LEN - 8] ^= 1;
	assert_int_not_equal(kt_verify(ks, key), 0);
	key[KS_APIKEY_LEN - 8] ^= 1;
	assert_int_equal(last_used(ks, id), 0);
	/* Accepted: GET shows it before any write. */
	assert_int_equal(kt_verify(ks, key), 0);
	seen = last_used(ks, id);
	assert_true(seen >= t0 && seen <= kt_now());
	assert_int_equal(last_used(ks, id2), 0);
	/* So does LIST. */
	q = kt_req(KS_OP_LIST);
	q->u.list.kind = KS_KIND_APIKEY;
	kt_setid(q->u.list.parent, app);
	q->u.list.limit = KS_LIST_MAX;
	assert_int_equal(kt_run(ks), 0);
	for (i = 0; i < KT_R->count; i++)
		if (strcmp(KT_R->list[i].id, id) == 0) {
			assert_int_equal(KT_R->list[i].last_used, seen);
			found = 1;
		}
	assert_true(found);
	/* Again within KS_LAST_USED_STEP, from the cache: the same time. */
	assert_int_equal(kt_verify(ks, key), 0);
	assert_int_equal(last_used(ks, id), seen);
	/* Written, and still there after a reopen. */
	assert_int_equal(flush(ks), 0);
	assert_int_equal(flush(ks), 0); /* nothing left: no write */
	ks_close(ks);
	ks = kt_open("usage", NULL);
	assert_int_equal(last_used(ks, id), seen);
	/* ks_close writes what was noted since the last flush. */
	assert_int_equal(kt_verify(ks, key2), 0);
	ks_close(ks);
	ks = kt_open("usage", NULL);
	assert_true(last_used(ks, id2) >= t0);
	assert_int_equal(last_used(ks, id), seen);
	/* Every record still verifies, the rewritten ones included. */
	assert_int_equal(kt_check(ks, &checked), 0);
	assert_true(checked >= 3);
	/* A revoked key keeps its last use and is refused. */
	assert_int_equal(kt_revoke(ks, id, "retired", 0), 0);
	assert_int_not_equal(kt_verify(ks, key), 0);
	assert_int_equal(flush(ks), 0);
	assert_int_equal(last_used(ks, id), seen);
	ks_close(ks);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_last_used),
	};

	return cmocka_run_group_tests_name(
	    "keystore/usage", tests, kt_group_setup, kt_group_teardown);
}
