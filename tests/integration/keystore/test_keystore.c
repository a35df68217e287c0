/*
 * tests/integration/keystore/test_keystore.c: the keystore through its
 * message-shaped API on a real SoftHSM2 token: first start and reopen,
 * creation of every kind, listing and expiry search, material, rotation,
 * every lifecycle transition, and, last, a scan proving that no secret any
 * test saw reached an LMDB file or a log line. Using keys (devices, API
 * keys, signing), validation and concurrency are in test_keystore_use.c;
 * tampering, a full map and root rotation in test_keystore_integrity.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>

#include "tests/integration/keystore/kstest.h"

#define NTHREADS 8
#define PER_THREAD 200

/* 1. First start makes roots and a DEK; a reopen keeps everything. */
static void
test_first_start_and_reopen(void **state)
{
	struct ks *ks;
	char app[KT_ID], data[KT_ID], user[KT_ID], sig[KT_ID];
	char key[KS_APIKEY_LEN + 1];
	uint8_t m_app[32], m_data[32], m_user[32], m_dev[32], again[32];
	struct ks_stats st, st2;
	struct ks_meta before, after;
	uint64_t n, n2;
	unsigned k;
	int created;

	(void)state;
	/* The first keystore on this token makes the roots. */
	if (kt_npaths == 0) {
		kt_hsm_has(P11_KEY_AES, "sr-root-kek-v1", P11_ENOTFOUND);
		kt_hsm_has(P11_KEY_HMAC, "sr-root-kdk-v1", P11_ENOTFOUND);
		kt_hsm_has(P11_KEY_HMAC, "sr-apikey-pepper-v1", P11_ENOTFOUND);
	}
	ks = kt_open("first", NULL);
	st = kt_stats(ks);
	assert_int_equal(st.dek_version, 1);
	assert_int_equal(st.root_kek_version, 1);
	assert_int_equal(st.root_kdk_version, 1);
	for (k = 1; k < KS_KIND_COUNT; k++)
		assert_int_equal(st.keys[k], 0);
	assert_int_equal(strlen(st.appliance_id), 3 + KS_ID_LEN);
	assert_memory_equal(st.appliance_id, "sr-", 3);
	assert_int_equal(kt_check(ks, &n), 0);
	assert_int_equal(n, 1); /* the DEK */
	kt_hsm_has(P11_KEY_AES, "sr-root-kek-v1", 0);
	kt_hsm_has(P11_KEY_HMAC, "sr-root-kdk-v1", 0);
	kt_hsm_has(P11_KEY_HMAC, "sr-apikey-pepper-v1", 0);

	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "first", NULL, 0, 0, app), 0);
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, app, 0, 0, data), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, NULL, NULL, 0, 0, user), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "first", NULL, 0, 0, sig), 0);
	assert_int_equal(kt_device(ks, app, "first-1", m_dev, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	assert_int_equal(kt_material(ks, app, 0, m_app), 0);
	assert_int_equal(kt_material(ks, data, 0, m_data), 0);
	assert_int_equal(kt_material(ks, user, 0, m_user), 0);
	kt_get_meta(ks, data, 0, &before);
	/* DEK, six records, two names (app, signing), one serial. */
	assert_int_equal(kt_check(ks, &n), 0);
	assert_int_equal(n, 10);

	ks_close(ks);
	ks = kt_open("first", NULL);
	st2 = kt_stats(ks);
	assert_string_equal(st2.appliance_id, st.appliance_id);
	assert_int_equal(st2.dek_version, 1);
	assert_int_equal(st2.root_kek_version, 1);
	for (k = 1; k < KS_KIND_COUNT; k++)
		assert_int_equal(st2.keys[k], 1);
	kt_get_meta(ks, data, 0, &after);
	assert_string_equal(after.id, before.id);
	assert_string_equal(after.parent, app);
	assert_string_equal(after.origin, st.appliance_id);
	assert_int_equal(after.created_at, before.created_at);
	assert_int_equal(after.record_version, before.record_version);
	assert_int_equal(after.dek_version, before.dek_version);
	assert_int_equal(kt_material(ks, app, 0, again), 0);
	assert_memory_equal(again, m_app, 32);
	assert_int_equal(kt_material(ks, data, 0, again), 0);
	assert_memory_equal(again, m_data, 32);
	assert_int_equal(kt_material(ks, user, 0, again), 0);
	assert_memory_equal(again, m_user, 32);
	assert_int_equal(kt_device(ks, app, "first-1", again, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(again, m_dev, 32);
	assert_int_equal(kt_verify(ks, key), 0);
	assert_string_equal(KT_R->meta.id, app);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "first", NULL, 0, 0, NULL), KS_EEXISTS);
	assert_int_equal(kt_check(ks, &n2), 0);
	assert_int_equal(n2, n);
	ks_close(ks);
}

/* 2. CREATE of every kind, its refusals, and what GET returns. */
static void
test_create_and_get(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_stats s0 = kt_stats(ks), s1;
	char app[KT_ID], id[KT_ID], sig[KT_ID];
	int64_t now = kt_now();
	struct ks_meta m;

	(void)state;
	/* APP: a name is required; at most a year, one year by default. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "", NULL, 0, 0, id), KS_EREQUEST);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "billing", NULL, 0, 0, app), 0);
	m = KT_R->meta;
	assert_int_equal(KT_R->material_len, 0);
	assert_int_equal(m.kind, KS_KIND_APP);
	assert_int_equal(m.state, KS_STATE_ACTIVE);
	assert_true(m.not_before >= now && m.not_before <= now + 5);
	assert_int_equal(m.expires_at, m.not_before + KT_YEAR);
	assert_string_equal(m.name, "billing");
	assert_int_equal(kt_create(ks, KS_KIND_APP, "billing-2", NULL, 0,
	                     now + KT_YEAR + 3600, id),
	    KS_EREQUEST);
	assert_int_equal(kt_create(ks, KS_KIND_APP, "later", NULL, now + 7200,
	                     now + 7200 + KT_YEAR + 60, id),
	    KS_EREQUEST);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "later", NULL, now + 7200, 0, id), 0);
	assert_int_equal(KT_R->meta.state, KS_STATE_PRE_ACTIVE);
	assert_int_equal(KT_R->meta.not_before, now + 7200);
	assert_int_equal(KT_R->meta.expires_at, now + 7200 + KT_YEAR);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "short", NULL, 0, now + 86400, id), 0);
	assert_int_equal(KT_R->meta.expires_at, now + 86400);
	/* An expiry before the start is refused for any kind. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, now - 10, id),
	    KS_EREQUEST);
	/* Names are unique per kind. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "billing", NULL, 0, 0, id), KS_EEXISTS);
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "billing", NULL, 0, 0, sig), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "billing", NULL, 0, 0, id),
	    KS_EEXISTS);
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "", NULL, 0, 0, id), KS_EREQUEST);
	/* USER and DATA need no name; a parent must exist. */
	assert_int_equal(kt_create(ks, KS_KIND_USER, NULL, NULL, 0, 0, id), 0);
	assert_int_equal(kt_create(ks, KS_KIND_USER, NULL, app, 0, 0, id), 0);
	assert_int_equal(kt_create(ks, KS_KIND_DATA, "x", app, 0, 0, id), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, "AAAAAAAAAAAA", 0, 0, NULL),
	    KS_ENOTFOUND);
	/* Devices and API keys have operations of their own. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_DEVICE, "d", app, 0, 0, NULL), KS_EREQUEST);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APIKEY, "k", app, 0, 0, NULL), KS_EREQUEST);

	/* GET: metadata only. */
	kt_get_meta(ks, id, 0, &m);
	assert_string_equal(m.id, id);
	assert_string_equal(m.parent, app);
	assert_string_equal(m.name, "x");
	assert_int_equal(m.kind, KS_KIND_DATA);
	assert_int_equal(m.state, KS_STATE_ACTIVE);
	assert_string_equal(m.origin, s0.appliance_id);
	assert_int_equal(m.version, 1);
	assert_int_equal(m.current_version, 1);
	assert_int_equal(m.record_version, 1);
	assert_int_equal(m.root_version, 1);
	assert_true(m.dek_version >= 1);
	assert_int_equal(m.expires_at, 0);
	kt_get_meta(ks, id, 1, &m);
	assert_string_equal(m.id, id);
	kt_get_meta(ks, sig, 0, &m);
	assert_int_equal(m.kind, KS_KIND_SIGNING);
	assert_int_equal(m.dek_version, 0);
	assert_string_equal(m.origin, s0.appliance_id);
	assert_int_equal(kt_key(ks, KS_OP_GET, id, 2), KS_ENOTFOUND);
	assert_int_equal(
	    kt_key(ks, KS_OP_GET, "ZZZZZZZZZZZZ", 0), KS_ENOTFOUND);

	/* Exactly the acknowledged creations were stored. */
	s1 = kt_stats(ks);
	assert_int_equal(s1.keys[KS_KIND_APP], s0.keys[KS_KIND_APP] + 3);
	assert_int_equal(
	    s1.keys[KS_KIND_SIGNING], s0.keys[KS_KIND_SIGNING] + 1);
	assert_int_equal(s1.keys[KS_KIND_USER], s0.keys[KS_KIND_USER] + 2);
	assert_int_equal(s1.keys[KS_KIND_DATA], s0.keys[KS_KIND_DATA] + 1);
	assert_int_equal(s1.keys[KS_KIND_DEVICE], s0.keys[KS_KIND_DEVICE]);
	assert_int_equal(s1.keys[KS_KIND_APIKEY], s0.keys[KS_KIND_APIKEY]);
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Versions of what list_all() saw last. */
static uint32_t listed_version[80];

/* Page through LIST; the ids in order into @p out. @return pages. */
static unsigned
list_all(struct ks *ks, unsigned kind, const char *parent, uint32_t limit,
    char (*out)[KT_ID], size_t cap, size_t *n, uint32_t *counts)
{
	char after[KT_ID] = "";
	struct ks_request *q;
	unsigned pages = 0, i;

	*n = 0;
	do {
		q = kt_req(KS_OP_LIST);
		q->u.list.kind = (uint8_t)kind;
		kt_setid(q->u.list.parent, parent);
		kt_setid(q->u.list.after, after);
		q->u.list.limit = limit;
		assert_int_equal(kt_run(ks), 0);
		assert_true(KT_R->count <= limit);
		counts[pages++] = KT_R->count;
		for (i = 0; i < KT_R->count; i++) {
			assert_true(*n < cap && *n < 80);
			assert_int_equal(KT_R->list[i].kind, kind);
			listed_version[*n] = KT_R->list[i].version;
			if (parent != NULL)
				assert_string_equal(
				    KT_R->list[i].parent, parent);
			kt_setid(out[(*n)++], KT_R->list[i].id);
		}
		if (KT_R->next[0] != '\0')
			assert_string_equal(
			    KT_R->next, KT_R->list[KT_R->count - 1].id);
		kt_setid(after, KT_R->next);
	} while (after[0] != '\0');
	return pages;
}

static int
expiring(struct ks *ks, int64_t within, const char *after, uint32_t limit)
{
	struct ks_request *q = kt_req(KS_OP_EXPIRING);

	q->u.expiring.within = within;
	kt_setid(q->u.expiring.after, after);
	q->u.expiring.limit = limit;
	return kt_run(ks);
}

/* 3. LIST pages by kind and parent; EXPIRING finds what ends soon. */
static void
test_list_and_expiring(void **state)
{
	struct ks *ks = kt_open("list", NULL);
	static char ids[70][KT_ID], seen[80][KT_ID];
	char app[KT_ID], e1[KT_ID], e2[KT_ID], after[KT_ID];
	uint32_t counts[16];
	int64_t now = kt_now();
	size_t n, i, total;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "list", NULL, 0, 0, app), 0);
	for (i = 0; i < 70; i++)
		assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL,
		                     i % 5 == 0 ? app : NULL, 0, 0, ids[i]),
		    0);
	assert_int_equal(
	    list_all(ks, KS_KIND_DATA, NULL, 32, seen, 80, &n, counts), 3);
	assert_int_equal(counts[0], 32);
	assert_int_equal(counts[1], 32);
	assert_int_equal(counts[2], 6);
	assert_int_equal(n, 70);
	/* In id order, so no duplicates; and every id is there. */
	for (i = 1; i < n; i++)
		assert_true(strcmp(seen[i - 1], seen[i]) < 0);
	for (i = 0; i < 70; i++)
		assert_non_null(bsearch(ids[i], seen, n, KT_ID, id_cmp));
	/* By parent. */
	assert_int_equal(
	    list_all(ks, KS_KIND_DATA, app, 32, seen, 80, &n, counts), 1);
	assert_int_equal(n, 14);
	assert_int_equal(
	    list_all(ks, KS_KIND_DATA, app, 5, seen, 80, &n, counts), 3);
	assert_int_equal(counts[0], 5);
	assert_int_equal(counts[1], 5);
	assert_int_equal(counts[2], 4);
	assert_int_equal(n, 14);
	assert_int_equal(
	    list_all(ks, KS_KIND_APP, NULL, 32, seen, 80, &n, counts), 1);
	assert_int_equal(n, 1);
	assert_string_equal(seen[0], app);
	assert_int_equal(
	    list_all(ks, KS_KIND_USER, NULL, 32, seen, 80, &n, counts), 1);
	assert_int_equal(n, 0);
	/* A rotated key is listed once, at its newest version. */
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, ids[3], 0), 0);
	assert_int_equal(
	    list_all(ks, KS_KIND_DATA, NULL, 32, seen, 80, &n, counts), 3);
	assert_int_equal(n, 70);
	for (i = 0; i < n; i++)
		assert_int_equal(
		    listed_version[i], strcmp(seen[i], ids[3]) == 0 ? 2 : 1);

	/* EXPIRING: within 72 h only the key that ends in an hour. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, now + 3600, e1), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, now + 10 * 86400, e2),
	    0);
	assert_int_equal(expiring(ks, 72 * 3600, NULL, 32), 0);
	assert_int_equal(KT_R->count, 1);
	assert_string_equal(KT_R->list[0].id, e1);
	assert_string_equal(KT_R->next, "");
	assert_int_equal(expiring(ks, 11 * 86400, NULL, 32), 0);
	assert_int_equal(KT_R->count, 2);
	/* Two years: the app too; one per page, across kinds, no repeats. */
	kt_setid(after, "");
	total = 0;
	do {
		assert_int_equal(expiring(ks, 2 * KT_YEAR, after, 1), 0);
		assert_true(KT_R->count <= 1);
		for (i = 0; i < KT_R->count; i++) {
			assert_true(total < 3);
			kt_setid(seen[total++], KT_R->list[i].id);
		}
		kt_setid(after, KT_R->next);
	} while (after[0] != '\0');
	assert_int_equal(total, 3);
	assert_string_equal(seen[0], app); /* apps come first */
	assert_true(strcmp(seen[1], seen[2]) != 0);
	assert_true(strcmp(seen[1], e1) == 0 || strcmp(seen[2], e1) == 0);
	assert_true(strcmp(seen[1], e2) == 0 || strcmp(seen[2], e2) == 0);
	/* A revoked key no longer needs renewing. */
	assert_int_equal(kt_revoke(ks, e1, "retired", 0), 0);
	assert_int_equal(expiring(ks, 72 * 3600, NULL, 32), 0);
	assert_int_equal(KT_R->count, 0);
	ks_close(ks);
}

/* 4. MATERIAL: which kinds give it, and only inside their validity. */
static void
test_material(void **state)
{
	struct ks *ks = kt_main_ks();
	char app[KT_ID], user[KT_ID], data[KT_ID], sig[KT_ID], dev[KT_ID];
	char api[KT_ID], pre[KT_ID], far[KT_ID], exp[KT_ID];
	char key[KS_APIKEY_LEN + 1];
	uint8_t a[32], u[32], d[32], again[32];
	int64_t now;

	(void)state;
	assert_int_equal(kt_create(ks, KS_KIND_APP, "mat", NULL, 0, 0, app), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, NULL, NULL, 0, 0, user), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, data), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "mat", NULL, 0, 0, sig), 0);
	assert_int_equal(kt_material(ks, app, 0, a), 0);
	assert_int_equal(KT_R->meta.kind, KS_KIND_APP);
	assert_int_equal(kt_material(ks, user, 0, u), 0);
	assert_int_equal(kt_material(ks, data, 0, d), 0);
	assert_memory_not_equal(a, u, 32);
	assert_memory_not_equal(a, d, 32);
	assert_memory_not_equal(u, d, 32);
	assert_int_equal(kt_material(ks, app, 1, again), 0);
	assert_memory_equal(again, a, 32);
	assert_int_equal(kt_material(ks, user, 0, again), 0);
	assert_memory_equal(again, u, 32);
	assert_int_equal(kt_material(ks, data, 0, again), 0);
	assert_memory_equal(again, d, 32);
	/* No material for signing keys, devices or API keys. */
	assert_int_equal(kt_material(ks, sig, 0, again), KS_EREQUEST);
	assert_int_equal(kt_device(ks, app, "mat-1", again, NULL), 0);
	kt_setid(dev, KT_R->meta.id);
	assert_int_equal(kt_material(ks, dev, 0, again), KS_EREQUEST);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	kt_setid(api, KT_R->meta.id);
	assert_int_equal(kt_material(ks, api, 0, again), KS_EREQUEST);
	assert_int_equal(
	    kt_material(ks, "ZZZZZZZZZZZZ", 0, again), KS_ENOTFOUND);
	assert_int_equal(kt_material(ks, data, 7, again), KS_ENOTFOUND);

	/* Before not_before and after expires_at: KS_EEXPIRED. */
	now = kt_now();
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, now + 2, now + 3600, pre),
	    0);
	assert_int_equal(KT_R->meta.state, KS_STATE_PRE_ACTIVE);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, now + 3600, 0, far), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, now + 2, exp), 0);
	assert_int_equal(kt_material(ks, pre, 0, again), KS_EEXPIRED);
	assert_int_equal(kt_material(ks, far, 0, again), KS_EEXPIRED);
	kt_wait_until(now + 2);
	assert_int_equal(kt_material(ks, exp, 0, again), KS_EEXPIRED);
	assert_int_equal(kt_material(ks, far, 0, again), KS_EEXPIRED);
	/* Pre-active turns active at not_before. */
	assert_int_equal(kt_material(ks, pre, 0, again), 0);
	assert_int_equal(KT_R->meta.state, KS_STATE_ACTIVE);
}

/* 5. ROTATE: a new version; older ones stay readable, decrypt-only. */
static void
test_rotate(void **state)
{
	struct ks *ks = kt_main_ks();
	char data[KT_ID], app[KT_ID], dev[KT_ID], api[KT_ID];
	char key[KS_APIKEY_LEN + 1];
	uint8_t m1[32], m2[32], m3[32], x[32];
	struct ks_meta m;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, data), 0);
	assert_int_equal(kt_material(ks, data, 0, m1), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, data, 0), 0);
	m = KT_R->meta;
	assert_int_equal(m.version, 2);
	assert_int_equal(m.current_version, 2);
	assert_int_equal(m.record_version, 1);
	assert_int_equal(m.flags & KS_FLAG_DECRYPT_ONLY, 0);
	assert_int_equal(kt_material(ks, data, 0, m2), 0);
	assert_int_equal(KT_R->meta.version, 2);
	assert_memory_not_equal(m1, m2, 32);
	assert_int_equal(kt_material(ks, data, 2, x), 0);
	assert_memory_equal(x, m2, 32);
	assert_int_equal(kt_material(ks, data, 1, x), 0);
	assert_memory_equal(x, m1, 32);
	assert_true(KT_R->meta.flags & KS_FLAG_DECRYPT_ONLY);
	assert_int_equal(KT_R->meta.current_version, 2);
	kt_get_meta(ks, data, 1, &m);
	assert_int_equal(m.version, 1);
	assert_true(m.flags & KS_FLAG_DECRYPT_ONLY);
	assert_int_equal(m.current_version, 2);
	assert_int_equal(m.record_version, 2);
	kt_get_meta(ks, data, 0, &m);
	assert_int_equal(m.version, 2);
	assert_int_equal(m.flags & KS_FLAG_DECRYPT_ONLY, 0);
	/* Again: version 3; 1 and 2 both decrypt-only and readable. */
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, data, 0), 0);
	assert_int_equal(KT_R->meta.version, 3);
	assert_int_equal(kt_material(ks, data, 0, m3), 0);
	assert_memory_not_equal(m3, m2, 32);
	kt_get_meta(ks, data, 2, &m);
	assert_true(m.flags & KS_FLAG_DECRYPT_ONLY);
	assert_int_equal(m.current_version, 3);
	assert_int_equal(kt_material(ks, data, 1, x), 0);
	assert_memory_equal(x, m1, 32);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, data, 1), KS_EREQUEST);
	/* An app's material is derived per version. */
	assert_int_equal(kt_create(ks, KS_KIND_APP, "rot", NULL, 0, 0, app), 0);
	assert_int_equal(kt_material(ks, app, 0, m1), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, app, 0), 0);
	assert_int_equal(kt_material(ks, app, 0, m2), 0);
	assert_memory_not_equal(m1, m2, 32);
	assert_int_equal(kt_material(ks, app, 1, x), 0);
	assert_memory_equal(x, m1, 32);
	/* A suspended key does not rotate; resumed, it does. */
	assert_int_equal(kt_key(ks, KS_OP_SUSPEND, data, 0), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, data, 0), KS_ESTATE);
	kt_get_meta(ks, data, 0, &m);
	assert_int_equal(m.version, 3);
	assert_int_equal(kt_key(ks, KS_OP_RESUME, data, 0), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, data, 0), 0);
	assert_int_equal(KT_R->meta.version, 4);
	/* Devices and API keys do not rotate. */
	assert_int_equal(kt_device(ks, app, "rot-1", x, NULL), 0);
	kt_setid(dev, KT_R->meta.id);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, dev, 0), KS_EREQUEST);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	kt_setid(api, KT_R->meta.id);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, api, 0), KS_EREQUEST);
	assert_int_equal(kt_check(ks, NULL), 0);
}

static const char *
op_name(uint32_t op)
{
	switch (op) {
	case KS_OP_ROTATE:
		return "rotate";
	case KS_OP_SUSPEND:
		return "suspend";
	case KS_OP_RESUME:
		return "resume";
	case KS_OP_REVOKE:
		return "revoke";
	case KS_OP_DESTROY:
		return "destroy";
	default:
		return "?";
	}
}

static int
state_op(struct ks *ks, uint32_t op, const char *id)
{
	if (op == KS_OP_REVOKE)
		return kt_revoke(ks, id, "state test", 0);
	return kt_key(ks, op, id, 0);
}

static void
make_in_state(struct ks *ks, unsigned st, char id[KT_ID])
{
	int64_t nb = st == KS_STATE_PRE_ACTIVE ? kt_now() + 3600 : 0;
	struct ks_meta m;

	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, nb, 0, id), 0);
	if (st == KS_STATE_SUSPENDED)
		assert_int_equal(kt_key(ks, KS_OP_SUSPEND, id, 0), 0);
	if (st == KS_STATE_REVOKED || st == KS_STATE_DESTROYED)
		assert_int_equal(kt_revoke(ks, id, "setup", 0), 0);
	if (st == KS_STATE_DESTROYED)
		assert_int_equal(kt_key(ks, KS_OP_DESTROY, id, 0), 0);
	kt_get_meta(ks, id, 0, &m);
	assert_int_equal(m.state, st);
}

/* 6. Every transition, allowed and refused; revoke and destroy details. */
static void
test_state_machine(void **state)
{
	enum {
		A = KS_STATE_ACTIVE,
		S = KS_STATE_SUSPENDED,
		R = KS_STATE_REVOKED,
		D = KS_STATE_DESTROYED,
		P = KS_STATE_PRE_ACTIVE
	};
	static const struct {
		uint8_t from;
		uint32_t op;
		int rc;
		uint8_t to;
	} t[] = {
		{ A, KS_OP_SUSPEND, 0, S },
		{ A, KS_OP_RESUME, KS_ESTATE, A },
		{ A, KS_OP_DESTROY, KS_ESTATE, A },
		{ A, KS_OP_REVOKE, 0, R },
		{ A, KS_OP_ROTATE, 0, A },
		{ S, KS_OP_RESUME, 0, A },
		{ S, KS_OP_SUSPEND, KS_ESTATE, S },
		{ S, KS_OP_REVOKE, 0, R },
		{ S, KS_OP_DESTROY, 0, D },
		{ S, KS_OP_ROTATE, KS_ESTATE, S },
		{ R, KS_OP_SUSPEND, KS_ESTATE, R },
		{ R, KS_OP_RESUME, KS_ESTATE, R },
		{ R, KS_OP_REVOKE, KS_ESTATE, R },
		{ R, KS_OP_ROTATE, KS_ESTATE, R },
		{ R, KS_OP_DESTROY, 0, D },
		{ D, KS_OP_SUSPEND, KS_ESTATE, D },
		{ D, KS_OP_RESUME, KS_ESTATE, D },
		{ D, KS_OP_REVOKE, KS_ESTATE, D },
		{ D, KS_OP_DESTROY, KS_ESTATE, D },
		{ D, KS_OP_ROTATE, KS_ESTATE, D },
		{ P, KS_OP_SUSPEND, 0, S },
		{ P, KS_OP_REVOKE, 0, R },
		{ P, KS_OP_DESTROY, 0, D },
		{ P, KS_OP_RESUME, KS_ESTATE, P },
		{ P, KS_OP_ROTATE, KS_EEXPIRED, P },
	};
	struct ks *ks = kt_main_ks();
	char id[KT_ID], sig[KT_ID], label[48];
	uint8_t x[32];
	struct ks_meta m0, m;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		make_in_state(ks, t[i].from, id);
		kt_get_meta(ks, id, 0, &m0);
		rc = state_op(ks, t[i].op, id);
		if (rc != t[i].rc)
			fail_msg("case %zu: %s from %s: %s, want %s", i,
			    op_name(t[i].op), ks_state_name(t[i].from),
			    sr_errname(rc), sr_errname(t[i].rc));
		kt_get_meta(ks, id, 0, &m);
		if (m.state != t[i].to)
			fail_msg("case %zu: state %s, want %s", i,
			    ks_state_name(m.state), ks_state_name(t[i].to));
		if (rc != 0)
			assert_int_equal(m.record_version, m0.record_version);
	}
	/* A suspended pre-active key resumes to pre-active. */
	make_in_state(ks, KS_STATE_PRE_ACTIVE, id);
	assert_int_equal(kt_key(ks, KS_OP_SUSPEND, id, 0), 0);
	assert_int_equal(kt_key(ks, KS_OP_RESUME, id, 0), 0);
	assert_int_equal(KT_R->meta.state, KS_STATE_PRE_ACTIVE);

	/* Revoke needs a reason; compromise is a flag; the reason stays. */
	make_in_state(ks, KS_STATE_ACTIVE, id);
	assert_int_equal(kt_revoke(ks, id, "", 0), KS_EREQUEST);
	assert_int_equal(kt_revoke(ks, id, "why", 2), KS_EREQUEST);
	kt_get_meta(ks, id, 0, &m);
	assert_int_equal(m.state, KS_STATE_ACTIVE);
	assert_int_equal(kt_revoke(ks, id, "leaked in a log", 1), 0);
	assert_int_equal(KT_R->meta.state, KS_STATE_REVOKED);
	kt_get_meta(ks, id, 0, &m);
	assert_true(m.flags & KS_FLAG_COMPROMISED);
	assert_string_equal(m.reason, "leaked in a log");
	assert_int_equal(kt_material(ks, id, 0, x), KS_ESTATE);
	/* Destroyed: the tombstone keeps its metadata, not its material. */
	assert_int_equal(kt_key(ks, KS_OP_DESTROY, id, 0), 0);
	kt_get_meta(ks, id, 0, &m);
	assert_int_equal(m.state, KS_STATE_DESTROYED);
	assert_string_equal(m.reason, "leaked in a log");
	assert_true(m.flags & KS_FLAG_COMPROMISED);
	assert_int_equal(m.dek_version, 0);
	assert_int_equal(kt_material(ks, id, 0, x), KS_ESTATE);
	make_in_state(ks, KS_STATE_ACTIVE, id);
	assert_int_equal(kt_revoke(ks, id, "retired", 0), 0);
	assert_int_equal(KT_R->meta.flags & KS_FLAG_COMPROMISED, 0);
	assert_string_equal(KT_R->meta.reason, "retired");
	/* A state change covers every version. */
	make_in_state(ks, KS_STATE_ACTIVE, id);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, id, 0), 0);
	assert_int_equal(kt_revoke(ks, id, "all versions", 0), 0);
	assert_int_equal(kt_material(ks, id, 1, x), KS_ESTATE);
	assert_int_equal(kt_key(ks, KS_OP_DESTROY, id, 0), 0);
	kt_get_meta(ks, id, 1, &m);
	assert_int_equal(m.state, KS_STATE_DESTROYED);
	assert_int_equal(m.dek_version, 0);
	/* A destroyed signing key leaves the HSM, every version of it. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "st", NULL, 0, 0, sig), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, sig, 0), 0);
	snprintf(label, sizeof(label), "sr-sign-%s-v1", sig);
	kt_hsm_has(P11_KEY_EC_P256, label, 0);
	snprintf(label, sizeof(label), "sr-sign-%s-v2", sig);
	kt_hsm_has(P11_KEY_EC_P256, label, 0);
	assert_int_equal(kt_revoke(ks, sig, "done", 0), 0);
	assert_int_equal(kt_key(ks, KS_OP_DESTROY, sig, 0), 0);
	kt_hsm_has(P11_KEY_EC_P256, label, P11_ENOTFOUND);
	snprintf(label, sizeof(label), "sr-sign-%s-v1", sig);
	kt_hsm_has(P11_KEY_EC_P256, label, P11_ENOTFOUND);
	kt_get_meta(ks, sig, 0, &m);
	assert_int_equal(m.state, KS_STATE_DESTROYED);
	assert_int_equal(
	    kt_key(ks, KS_OP_SUSPEND, "ZZZZZZZZZZZZ", 0), KS_ENOTFOUND);
	assert_int_equal(kt_check(ks, NULL), 0);
}

/* 15. No secret any test saw is in an LMDB file or a log line. */
static void
test_secret_scan(void **state)
{
	(void)state;
	kt_scan_all(1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_start_and_reopen),
		cmocka_unit_test(test_create_and_get),
		cmocka_unit_test(test_list_and_expiring),
		cmocka_unit_test(test_material),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_secret_scan),
	};

	return cmocka_run_group_tests_name(
	    "keystore/keystore", tests, kt_group_setup, kt_group_teardown);
}
