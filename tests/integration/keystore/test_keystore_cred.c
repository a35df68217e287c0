/*
 * tests/integration/keystore/test_keystore_cred.c: console credentials and
 * API-key retirement through the keystore's message API on a real SoftHSM2
 * token: unique user names, a password hash stored and read back by id and
 * by name, a TOTP secret enrolled from the HSM, sealed (never in the LMDB
 * file in clear) and surviving a reopen, the one-time-use compare-and-set
 * of TOTP steps (a replayed or older step refused), refusals of malformed
 * requests and of revoked users, and a retired API key that works until its
 * new end and is refused after it, never living longer than before.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/integration/keystore/kstest.h"

#define PHC "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA"

static int
cred_set(struct ks *ks, const char *id, unsigned what, const char *phc,
    uint64_t step)
{
	struct ks_request *q = kt_req(KS_OP_CRED_SET);

	kt_setid(q->u.cred.id, id);
	q->u.cred.what = (uint8_t)what;
	if (phc != NULL)
		snprintf(q->u.cred.phc, sizeof(q->u.cred.phc), "%s", phc);
	q->u.cred.step = step;
	return kt_run(ks);
}

static int
cred_get(struct ks *ks, const char *id, const char *name)
{
	struct ks_request *q = kt_req(KS_OP_CRED_GET);

	kt_setid(q->u.cred.id, id);
	if (name != NULL)
		snprintf(q->u.cred.name, sizeof(q->u.cred.name), "%s", name);
	return kt_run(ks);
}

/* 1. Names are unique; a password hash and a TOTP secret round-trip. */
static void
test_credentials(void **state)
{
	struct ks *ks = kt_open("cred", NULL);
	char user[KT_ID], other[KT_ID];
	uint8_t secret[KS_TOTP_SECRET_LEN];

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, "carol", NULL, 0, 0, user), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, "carol", NULL, 0, 0, other),
	    KS_EEXISTS);
	/* Nothing set yet: empty credentials, found by name too. */
	assert_int_equal(cred_get(ks, NULL, "carol"), 0);
	assert_string_equal(KT_R->meta.id, user);
	assert_string_equal(KT_R->cred.phc, "");
	assert_int_equal(KT_R->cred.totp_enrolled, 0);
	assert_int_equal(cred_get(ks, NULL, "nobody"), KS_ENOTFOUND);
	assert_int_equal(cred_get(ks, NULL, NULL), KS_EREQUEST);
	/* Only an Argon2id PHC string is stored. */
	assert_int_equal(
	    cred_set(ks, user, KS_CRED_PASSWORD, "plain", 0), KS_EREQUEST);
	assert_int_equal(cred_set(ks, user, 0, PHC, 0), KS_EREQUEST);
	assert_int_equal(cred_set(ks, user, KS_CRED_PASSWORD, PHC, 0), 0);
	/* No TOTP enrolled: no step can be used. */
	assert_int_equal(
	    cred_set(ks, user, KS_CRED_TOTP_USE, NULL, 10), KS_ESTATE);
	assert_int_equal(cred_set(ks, user, KS_CRED_TOTP_ENROL, NULL, 0), 0);
	assert_int_equal(KT_R->material_len, KS_TOTP_SECRET_LEN);
	memcpy(secret, KT_R->material, sizeof(secret));
	kt_secret_bytes(secret, sizeof(secret), "totp secret");
	ks_reply_wipe(KT_R);
	ks_close(ks);

	/* After a reopen: the same hash and secret, by id. */
	ks = kt_open("cred", NULL);
	assert_int_equal(cred_get(ks, user, NULL), 0);
	assert_string_equal(KT_R->cred.phc, PHC);
	assert_int_equal(KT_R->cred.totp_enrolled, 1);
	assert_int_equal(KT_R->material_len, KS_TOTP_SECRET_LEN);
	assert_memory_equal(KT_R->material, secret, sizeof(secret));
	ks_reply_wipe(KT_R);

	/* Steps are used once and only forwards. */
	assert_int_equal(cred_set(ks, user, KS_CRED_TOTP_USE, NULL, 100), 0);
	assert_int_equal(KT_R->cred.totp_step, 100);
	assert_int_equal(
	    cred_set(ks, user, KS_CRED_TOTP_USE, NULL, 100), KS_ESTATE);
	assert_int_equal(
	    cred_set(ks, user, KS_CRED_TOTP_USE, NULL, 99), KS_ESTATE);
	assert_int_equal(cred_set(ks, user, KS_CRED_TOTP_USE, NULL, 101), 0);
	/* A new enrolment: a new secret, the step count restarts. */
	assert_int_equal(cred_set(ks, user, KS_CRED_TOTP_ENROL, NULL, 0), 0);
	assert_memory_not_equal(KT_R->material, secret, sizeof(secret));
	kt_secret_bytes(KT_R->material, KS_TOTP_SECRET_LEN, "totp secret 2");
	ks_reply_wipe(KT_R);
	assert_int_equal(cred_get(ks, user, NULL), 0);
	assert_int_equal(KT_R->cred.totp_step, 0);
	ks_reply_wipe(KT_R);

	/* Not a user, or a revoked one: refused. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "cred-app", NULL, 0, 0, other), 0);
	assert_int_equal(
	    cred_set(ks, other, KS_CRED_PASSWORD, PHC, 0), KS_ENOTFOUND);
	assert_int_equal(kt_revoke(ks, user, "deleted", 0), 0);
	assert_int_equal(
	    cred_set(ks, user, KS_CRED_PASSWORD, PHC, 0), KS_ESTATE);
	ks_close(ks);
}

static int
verify(struct ks *ks, const char *key)
{
	struct ks_request *q = kt_req(KS_OP_APIKEY_VERIFY);

	snprintf(
	    q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key), "%s", key);
	return kt_run(ks);
}

/* 2. A retired key works until its new end, then is expired. */
static void
test_retire(void **state)
{
	struct ks *ks = kt_open("cred", NULL);
	char app[KT_ID], id[KT_ID], key[KS_APIKEY_LEN + 1];
	struct ks_request *q;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "retire-app", NULL, 0, 0, app), 0);
	assert_int_equal(kt_apikey(ks, app, now + 3600, key), 0);
	assert_int_equal(ks_apikey_id(key, strlen(key), id), 0);
	assert_int_equal(verify(ks, key), 0); /* now in the cache */
	q = kt_req(KS_OP_APIKEY_RETIRE);
	kt_setid(q->u.retire.id, id);
	q->u.retire.expires_at = now - 10; /* the past: refused */
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	q = kt_req(KS_OP_APIKEY_RETIRE);
	kt_setid(q->u.retire.id, app); /* not an API key */
	q->u.retire.expires_at = now + 2;
	assert_int_equal(kt_run(ks), KS_ENOTFOUND);
	q = kt_req(KS_OP_APIKEY_RETIRE);
	kt_setid(q->u.retire.id, id);
	q->u.retire.expires_at = now + 2;
	assert_int_equal(kt_run(ks), 0);
	assert_int_equal(KT_R->meta.expires_at, now + 2);
	/* Marked, so that it is never rotated (or reported) twice. */
	assert_true(KT_R->meta.flags & KS_FLAG_RETIRED);
	/* Never longer than before. */
	q = kt_req(KS_OP_APIKEY_RETIRE);
	kt_setid(q->u.retire.id, id);
	q->u.retire.expires_at = now + 7200;
	assert_int_equal(kt_run(ks), 0);
	assert_int_equal(KT_R->meta.expires_at, now + 2);
	assert_int_equal(verify(ks, key), 0);
	sleep(3);
	assert_int_equal(verify(ks, key), KS_EEXPIRED);
	ks_close(ks);
}

/* 3. No TOTP secret, key or material reached the LMDB files or the log. */
static void
test_secret_scan(void **state)
{
	(void)state;
	kt_scan_all(3);
}

static int
setup(void **state)
{
	(void)state;
	return kt_setup("cred");
}

static int
teardown(void **state)
{
	(void)state;
	kt_teardown();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_retire),
		cmocka_unit_test(test_secret_scan),
	};

	return cmocka_run_group_tests_name(
	    "keystore/cred", tests, setup, teardown);
}
