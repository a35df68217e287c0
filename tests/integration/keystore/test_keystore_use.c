/*
 * tests/integration/keystore/test_keystore_use.c: using keys through the
 * keystore's API on a real SoftHSM2 token: device keys (also under racing
 * enrolment), API keys and their cache, request validation, concurrent writers
 * (group commit), rotations racing a revocation and each other, and, last, a
 * scan proving that no secret any test saw reached an LMDB file or a log line.
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

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct enrol {
	struct ks *ks;
	const char *app, *serial;
	pthread_barrier_t *go;
	int rc, created;
	uint8_t key[32];
};

static void *
enrol_main(void *arg)
{
	struct enrol *e = arg;

	pthread_barrier_wait(e->go);
	e->rc = kt_device(e->ks, e->app, e->serial, e->key, &e->created);
	kt_c_free();
	return NULL;
}

/* 7. DEVICE_KEY: one key per (app, serial), whoever asks, whenever. */
static void
test_device_keys(void **state)
{
	struct ks *ks = kt_open("devices", NULL);
	char a[KT_ID], b[KT_ID], c[KT_ID], data[KT_ID], dev[KT_ID];
	char serial[KS_SERIAL_MAX + 1];
	uint8_t k1[32], k2[32], k3[32], x[32];
	struct enrol e[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t go;
	struct ks_request *q;
	struct ks_meta app;
	struct ks_stats s0, s1;
	int created, i, ncreated;

	(void)state;
	assert_int_equal(kt_create(ks, KS_KIND_APP, "dev-a", NULL, 0, 0, a), 0);
	app = KT_R->meta;
	assert_int_equal(kt_create(ks, KS_KIND_APP, "dev-b", NULL, 0, 0, b), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, data), 0);
	assert_int_equal(kt_device(ks, a, "sn-0001", k1, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(KT_R->meta.kind, KS_KIND_DEVICE);
	assert_string_equal(KT_R->meta.parent, a);
	assert_int_equal(KT_R->meta.expires_at, app.expires_at);
	kt_setid(dev, KT_R->meta.id);
	assert_int_equal(kt_device(ks, a, "sn-0001", x, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(x, k1, 32);
	assert_string_equal(KT_R->meta.id, dev);
	assert_int_equal(kt_device(ks, a, "sn-0002", k2, &created), 0);
	assert_int_equal(created, 1);
	assert_memory_not_equal(k2, k1, 32);
	assert_int_equal(kt_device(ks, b, "sn-0001", k3, &created), 0);
	assert_int_equal(created, 1);
	assert_memory_not_equal(k3, k1, 32);
	assert_memory_not_equal(k3, k2, 32);
	assert_int_equal(kt_device(ks, a, "Az09._:-", x, NULL), 0);
	memset(serial, 'x', 63);
	serial[63] = '\0';
	assert_int_equal(kt_device(ks, a, serial, x, NULL), 0);
	/* Serials: [A-Za-z0-9._:-], 1..63 bytes. */
	assert_int_equal(kt_device(ks, a, "", x, NULL), KS_EREQUEST);
	assert_int_equal(kt_device(ks, a, "sn 1", x, NULL), KS_EREQUEST);
	assert_int_equal(kt_device(ks, a, "sn/1", x, NULL), KS_EREQUEST);
	assert_int_equal(kt_device(ks, a, "sn\n1", x, NULL), KS_EREQUEST);
	assert_int_equal(kt_device(ks, a, "sn-\xc3\xa9", x, NULL), KS_EREQUEST);
	q = kt_req(KS_OP_DEVICE_KEY);
	kt_setid(q->u.device.app, a);
	memset(q->u.device.serial, 'x', sizeof(q->u.device.serial));
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	/* Apps: malformed, unknown, another kind, not usable. */
	assert_int_equal(kt_device(ks, "short", "sn-1", x, NULL), KS_EREQUEST);
	assert_int_equal(
	    kt_device(ks, "ZZZZZZZZZZZZ", "sn-1", x, NULL), KS_ENOTFOUND);
	assert_int_equal(kt_device(ks, data, "sn-1", x, NULL), KS_ENOTFOUND);
	assert_int_equal(kt_create(ks, KS_KIND_APP, "dev-c", NULL, 0, 0, c), 0);
	assert_int_equal(kt_device(ks, c, "sn-c", x, NULL), 0);
	assert_int_equal(kt_key(ks, KS_OP_SUSPEND, c, 0), 0);
	assert_int_equal(kt_device(ks, c, "sn-c", x, NULL), KS_ESTATE);
	assert_int_equal(kt_key(ks, KS_OP_RESUME, c, 0), 0);
	assert_int_equal(kt_device(ks, c, "sn-c", x, NULL), 0);
	assert_int_equal(kt_revoke(ks, c, "gone", 0), 0);
	assert_int_equal(kt_device(ks, c, "sn-c", x, NULL), KS_ESTATE);
	assert_int_equal(kt_device(ks, c, "sn-new", x, NULL), KS_ESTATE);
	assert_int_equal(kt_create(ks, KS_KIND_APP, "dev-later", NULL,
	                     kt_now() + 3600, 0, c),
	    0);
	assert_int_equal(kt_device(ks, c, "sn-1", x, NULL), KS_EEXPIRED);

	/* The same keys after a reopen. */
	ks_close(ks);
	ks = kt_open("devices", NULL);
	assert_int_equal(kt_device(ks, a, "sn-0001", x, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(x, k1, 32);
	assert_int_equal(kt_device(ks, a, "sn-0002", x, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(x, k2, 32);

	/* Eight threads enrol one new serial at once: one key, one record. */
	s0 = kt_stats(ks);
	pthread_barrier_init(&go, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		e[i] = (struct enrol){ ks, a, "sn-race", &go, -1, -1, { 0 } };
		assert_int_equal(
		    pthread_create(&th[i], NULL, enrol_main, &e[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	ncreated = 0;
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(e[i].rc, 0);
		assert_memory_equal(e[i].key, e[0].key, 32);
		ncreated += e[i].created;
	}
	assert_int_equal(ncreated, 1);
	s1 = kt_stats(ks);
	assert_int_equal(s1.keys[KS_KIND_DEVICE], s0.keys[KS_KIND_DEVICE] + 1);
	assert_int_equal(kt_device(ks, a, "sn-race", x, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(x, e[0].key, 32);
	/* Records: 4 apps, 1 data, 7 devices; names 4; serials 7; 1 DEK. */
	assert_int_equal(s1.keys[KS_KIND_DEVICE], 7);
	assert_int_equal(kt_check(ks, &s1.checked), 0);
	assert_int_equal(s1.checked, 1 + 4 + 1 + 7 + 4 + 7);
	ks_close(ks);
}

/* Verify until the answer is not 0: an owner's change reaches keys cached
 * before it within the cache's second. */
static int
verify_settled(struct ks *ks, const char *key)
{
	double t0 = kt_mono();
	int rc;

	while ((rc = kt_verify(ks, key)) == 0 && kt_mono() - t0 < 1.1) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	return rc;
}

/* 8b. Why a key whose secret matched is refused: one code per reason, from
 * the record and from the cache; cache-only verification never looks
 * further than the cache. */
static void
test_apikey_refusals(void **state)
{
	struct ks *ks = kt_main_ks();
	char app[KT_ID], later[KT_ID], id[KT_ID];
	char key[KS_APIKEY_LEN + 1], key2[KS_APIKEY_LEN + 1];
	struct ks_request *q;
	int64_t now = kt_now();

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "refusals", NULL, 0, 0, app), 0);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	assert_int_equal(ks_apikey_id(key, KS_APIKEY_LEN, id), 0);
	assert_memory_equal(id, key + 4, KS_ID_LEN);
	assert_int_equal(ks_apikey_id("srk_nonsense", 12, id), KS_EAPIKEY);
	/* The id is read from the shape alone; the checksum is the
	 * verification's (and ks_apikey_check's) to refuse. */
	memcpy(key2, key, sizeof(key2));
	key2[KS_APIKEY_LEN - 1] = key2[KS_APIKEY_LEN - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(ks_apikey_id(key2, KS_APIKEY_LEN, id), 0);
	assert_memory_equal(id, key + 4, KS_ID_LEN);
	assert_int_equal(ks_apikey_check(key2, KS_APIKEY_LEN), KS_EAPIKEY);
	assert_int_equal(kt_verify(ks, key2), KS_EAPIKEY);
	key2[KS_APIKEY_LEN - 1] = '-';
	assert_int_equal(ks_apikey_id(key2, KS_APIKEY_LEN, id), KS_EAPIKEY);
	/* From the cache only (an event loop's call): a miss says so and
	 * costs no lookup. */
	q = kt_req(KS_OP_APIKEY_VERIFY);
	snprintf(
	    q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key), "%s", key);
	q->flags = KS_REQ_NO_WAIT;
	assert_int_equal(kt_run(ks), KS_EMISS);
	assert_int_equal(kt_verify(ks, key), 0);
	q = kt_req(KS_OP_APIKEY_VERIFY);
	snprintf(
	    q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key), "%s", key);
	q->flags = KS_REQ_NO_WAIT;
	assert_int_equal(kt_run(ks), 0);
	assert_string_equal(KT_R->meta.id, app);
	/* The owner suspended, then resumed. */
	assert_int_equal(kt_key(ks, KS_OP_SUSPEND, app, 0), 0);
	assert_int_equal(verify_settled(ks, key), KS_ESUSPENDED);
	assert_int_equal(kt_key(ks, KS_OP_RESUME, app, 0), 0);
	assert_int_equal(kt_verify(ks, key), 0);
	/* An owner not valid yet gets no key at all. */
	assert_int_equal(kt_create(ks, KS_KIND_APP, "refusals-later", NULL,
	                     now + 3600, 0, later),
	    0);
	assert_int_equal(kt_apikey(ks, later, 0, key2), KS_EEXPIRED);
	/* A key of the owner's revoked: its own code, cached or not. */
	assert_int_equal(kt_revoke(ks, app, "retired", 0), 0);
	assert_int_equal(verify_settled(ks, key), KS_EREVOKED);
	/* A wrong secret says nothing about the key's state. */
	key[KS_APIKEY_LEN - 8] = key[KS_APIKEY_LEN - 8] == 'a' ? 'b' : 'a';
	assert_true(kt_verify(ks, key) == KS_EDENIED ||
	    kt_verify(ks, key) == KS_EAPIKEY);
}

/* 8. API keys: shown once, verified with a cache, refused as documented. */
static void
test_apikeys(void **state)
{
	struct ks *ks = kt_main_ks();
	char app[KT_ID], app2[KT_ID], user[KT_ID], data[KT_ID], id[KT_ID];
	char key[KS_APIKEY_LEN + 1], key2[KS_APIKEY_LEN + 1];
	char key3[KS_APIKEY_LEN + 1], bad[KS_APIKEY_LEN + 1];
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	struct ks_stats s0, s1, s2;
	struct ks_meta owner, m;
	int64_t now = kt_now();
	double t0;
	size_t i;
	int rc;

	(void)state;
	assert_int_equal(kt_create(ks, KS_KIND_APP, "api", NULL, 0, 0, app), 0);
	owner = KT_R->meta;
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	m = KT_R->meta;
	assert_int_equal(KT_R->material_len, 0);
	assert_memory_equal(key, "srk_", 4);
	assert_int_equal(ks_apikey_check(key, strlen(key)), 0);
	assert_int_equal(m.kind, KS_KIND_APIKEY);
	assert_string_equal(m.parent, app);
	assert_int_equal(m.expires_at, owner.expires_at);
	assert_memory_equal(key + 4, m.id, KS_ID_LEN);
	assert_int_equal(strlen(m.apikey_prefix), 8);
	assert_memory_equal(m.apikey_prefix, key, 8);
	kt_setid(id, m.id);
	/* Shown once: GET has the prefix, never the key. */
	kt_get_meta(ks, id, 0, &m);
	assert_memory_equal(m.apikey_prefix, key, 8);
	for (i = 0; i < sizeof(KT_R->apikey); i++)
		assert_int_equal(KT_R->apikey[i], 0);

	/* Verify: a miss, then a hit. */
	s0 = kt_stats(ks);
	assert_int_equal(kt_verify(ks, key), 0);
	assert_string_equal(KT_R->meta.id, app);
	assert_int_equal(KT_R->meta.kind, KS_KIND_APP);
	s1 = kt_stats(ks);
	assert_int_equal(s1.cache_misses, s0.cache_misses + 1);
	assert_int_equal(s1.cache_hits, s0.cache_hits);
	assert_int_equal(kt_verify(ks, key), 0);
	assert_string_equal(KT_R->meta.id, app);
	s2 = kt_stats(ks);
	assert_int_equal(s2.cache_hits, s1.cache_hits + 1);
	assert_int_equal(s2.cache_misses, s1.cache_misses);
	/* Typos cost no lookup: a wrong length or prefix not even a cache
	 * probe, a wrong checksum one probe (a hit would prove the key
	 * whole, so the checksum is checked on a miss) and no read. */
	memcpy(bad, key, sizeof(bad));
	bad[30] = bad[30] == 'a' ? 'b' : 'a';
	assert_int_equal(kt_verify(ks, bad), KS_EAPIKEY);
	bad[30] = key[30];
	bad[63] = '\0';
	assert_int_equal(kt_verify(ks, bad), KS_EAPIKEY);
	memcpy(bad, key, sizeof(bad));
	bad[2] = 'x';
	assert_int_equal(kt_verify(ks, bad), KS_EAPIKEY);
	s1 = kt_stats(ks);
	assert_int_equal(s1.cache_hits, s2.cache_hits);
	assert_int_equal(s1.cache_misses, s2.cache_misses + 1);
	/* Well-formed, right checksum, wrong secret or unknown id. */
	do {
		assert_int_equal(sr_os_random(rnd, sizeof(rnd)), 0);
		rc = ks__apikey_make(id, rnd, sizeof(rnd), bad);
	} while (rc == -EAGAIN);
	assert_int_equal(rc, 0);
	assert_int_equal(ks_apikey_check(bad, KS_APIKEY_LEN), 0);
	assert_memory_not_equal(bad, key, KS_APIKEY_LEN);
	assert_int_equal(kt_verify(ks, bad), KS_EDENIED);
	assert_int_equal(
	    ks__apikey_make("ZZZZZZZZZZZZ", rnd, sizeof(rnd), bad), 0);
	assert_int_equal(kt_verify(ks, bad), KS_EDENIED);
	assert_int_equal(kt_verify(ks, key), 0);
	/* Revoking the key itself: refused at once. */
	assert_int_equal(kt_revoke(ks, id, "rotated out", 0), 0);
	assert_int_equal(kt_verify(ks, key), KS_EREVOKED);
	assert_int_equal(kt_verify(ks, key), KS_EREVOKED);

	/* Revoking the owner: refused within the cache's second. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "api-2", NULL, 0, 0, app2), 0);
	assert_int_equal(kt_apikey(ks, app2, 0, key2), 0);
	assert_int_equal(kt_apikey(ks, app2, 0, key3), 0);
	assert_int_equal(kt_verify(ks, key2), 0);
	assert_int_equal(kt_revoke(ks, app2, "app retired", 0), 0);
	/* Not cached: refused at once. */
	assert_int_equal(kt_verify(ks, key3), KS_EREVOKED);
	t0 = kt_mono();
	while ((rc = kt_verify(ks, key2)) == 0 && kt_mono() - t0 < 3.0) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	assert_int_equal(rc, KS_EREVOKED);
	assert_true(kt_mono() - t0 <= 1.1);

	/* Expiry: never past the owner's. */
	assert_int_equal(kt_apikey(ks, app, owner.expires_at + 1000, key2), 0);
	assert_int_equal(KT_R->meta.expires_at, owner.expires_at);
	assert_int_equal(kt_apikey(ks, app, now + 3600, key2), 0);
	assert_int_equal(KT_R->meta.expires_at, now + 3600);
	assert_int_equal(kt_apikey(ks, app, now - 10, key2), KS_EREQUEST);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, NULL, NULL, 0, 0, user), 0);
	assert_int_equal(kt_apikey(ks, user, 0, key2), 0);
	assert_int_equal(KT_R->meta.expires_at, 0);
	assert_int_equal(kt_verify(ks, key2), 0);
	assert_int_equal(KT_R->meta.kind, KS_KIND_USER);
	/* Owners: apps and users that are usable. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, data), 0);
	assert_int_equal(kt_apikey(ks, data, 0, key2), KS_EREQUEST);
	assert_int_equal(kt_apikey(ks, "ZZZZZZZZZZZZ", 0, key2), KS_ENOTFOUND);
	assert_int_equal(kt_apikey(ks, app2, 0, key2), KS_ESTATE);
	assert_int_equal(kt_apikey(ks, id, 0, key2), KS_EREQUEST);
}

static void
stats_same(const struct ks_stats *a, const struct ks_stats *b)
{
	unsigned k;

	for (k = 1; k < KS_KIND_COUNT; k++)
		assert_int_equal(a->keys[k], b->keys[k]);
	assert_int_equal(a->commits, b->commits);
	assert_int_equal(a->committed_writes, b->committed_writes);
	assert_int_equal(a->dek_version, b->dek_version);
	assert_int_equal(a->dek_encryptions, b->dek_encryptions);
}

/* One malformed request: KS_EREQUEST, in the return and in the reply. */
static void
refused(struct ks *ks, int line)
{
	int rc = kt_run(ks);

	if (rc != KS_EREQUEST || KT_R->status != KS_EREQUEST)
		fail_msg("line %d: %s (reply %s), want KS_EREQUEST", line,
		    sr_errname(rc), sr_errname(KT_R->status));
}
#define REFUSED(ks) refused(ks, __LINE__)

/* 13. Malformed requests are refused before anything is read or written. */
static void
test_validation(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_request *q;
	struct ks_stats s0, s1;
	char id[KT_ID];
	uint32_t op;

	(void)state;
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, id), 0);
	s0 = kt_stats(ks);
	/* Sizes. */
	q = kt_req(KS_OP_GET);
	kt_setid(q->u.key.id, id);
	q->size = sizeof(*q) - 1;
	REFUSED(ks);
	q->size = 0;
	REFUSED(ks);
	q->size = sizeof(*q);
	KT_R->size = sizeof(*KT_R) - 1;
	assert_int_equal(ks_call(ks, q, KT_R), KS_EREQUEST);
	KT_R->size = 0;
	assert_int_equal(ks_call(ks, q, KT_R), KS_EREQUEST);
	KT_R->size = sizeof(*KT_R);
	assert_int_equal(ks_call(NULL, q, KT_R), KS_EREQUEST);
	assert_int_equal(KT_R->status, KS_EREQUEST);
	assert_int_equal(ks_call(ks, NULL, KT_R), KS_EREQUEST);
	assert_int_equal(ks_call(ks, q, NULL), KS_EREQUEST);
	/* Operations and kinds. */
	for (op = 0; op < 3; op++) {
		q = kt_req(KS_OP_CREATE);
		q->op = op == 0 ? 0 : op == 1 ? KS_OP_COUNT : UINT32_MAX;
		q->u.create.kind = KS_KIND_DATA;
		REFUSED(ks);
	}
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = 0;
	REFUSED(ks);
	q->u.create.kind = KS_KIND_COUNT;
	REFUSED(ks);
	q->u.create.kind = 255;
	REFUSED(ks);
	q = kt_req(KS_OP_LIST);
	q->u.list.limit = 1;
	REFUSED(ks);
	q->u.list.kind = KS_KIND_COUNT;
	REFUSED(ks);
	/* Strings that run to the end of their arrays. */
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_APP;
	memset(q->u.create.name, 'a', sizeof(q->u.create.name));
	REFUSED(ks);
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_DATA;
	memset(q->u.create.parent, 'a', sizeof(q->u.create.parent));
	REFUSED(ks);
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_DATA;
	q->u.create.scope[0] = '{';
	memset(q->u.create.scope + 1, 'a', sizeof(q->u.create.scope) - 1);
	REFUSED(ks);
	q = kt_req(KS_OP_GET);
	memset(q->u.key.id, 'a', sizeof(q->u.key.id));
	REFUSED(ks);
	q = kt_req(KS_OP_REVOKE);
	kt_setid(q->u.revoke.id, id);
	memset(q->u.revoke.reason, 'a', sizeof(q->u.revoke.reason));
	REFUSED(ks);
	q = kt_req(KS_OP_LIST);
	q->u.list.kind = KS_KIND_DATA;
	q->u.list.limit = 1;
	memset(q->u.list.after, 'a', sizeof(q->u.list.after));
	REFUSED(ks);
	q = kt_req(KS_OP_APIKEY_CREATE);
	memset(q->u.apikey_create.owner, 'a', sizeof(q->u.apikey_create.owner));
	REFUSED(ks);
	q = kt_req(KS_OP_APIKEY_VERIFY);
	memset(q->u.apikey_verify.key, 'a', sizeof(q->u.apikey_verify.key));
	REFUSED(ks);
	/* Bad ids and other fields. */
	q = kt_req(KS_OP_GET);
	kt_setid(q->u.key.id, "abc-defghijk");
	REFUSED(ks);
	kt_setid(q->u.key.id, "abcdefghijk");
	REFUSED(ks);
	kt_setid(q->u.key.id, "");
	REFUSED(ks);
	q = kt_req(KS_OP_MATERIAL);
	kt_setid(q->u.key.id, "abcdefghij\xc3\xa9");
	REFUSED(ks);
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_DATA;
	kt_setid(q->u.create.parent, "not an id!");
	REFUSED(ks);
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_DATA;
	snprintf(q->u.create.scope, sizeof(q->u.create.scope), "[1]");
	REFUSED(ks);
	q = kt_req(KS_OP_CREATE);
	q->u.create.kind = KS_KIND_DATA;
	q->u.create.cidrs[0] = (struct ks_cidr){ 4, 33, { 0 } };
	REFUSED(ks);
	q->u.create.cidrs[0] = (struct ks_cidr){ 5, 8, { 0 } };
	REFUSED(ks);
	q = kt_req(KS_OP_LIST);
	q->u.list.kind = KS_KIND_DATA;
	kt_setid(q->u.list.parent, "bad!");
	q->u.list.limit = 1;
	REFUSED(ks);
	/* Limits. */
	q = kt_req(KS_OP_LIST);
	q->u.list.kind = KS_KIND_DATA;
	q->u.list.limit = 0;
	REFUSED(ks);
	q->u.list.limit = KS_LIST_MAX + 1;
	REFUSED(ks);
	q = kt_req(KS_OP_EXPIRING);
	q->u.expiring.within = 3600;
	q->u.expiring.limit = 0;
	REFUSED(ks);
	q->u.expiring.limit = KS_LIST_MAX + 1;
	REFUSED(ks);
	q->u.expiring.limit = 1;
	q->u.expiring.within = 0;
	REFUSED(ks);
	q->u.expiring.within = -1;
	REFUSED(ks);
	/* Versions where only "current" makes sense. */
	for (op = KS_OP_ROTATE; op <= KS_OP_RESUME; op++) {
		q = kt_req(op);
		kt_setid(q->u.key.id, id);
		q->u.key.version = 1;
		REFUSED(ks);
	}
	q = kt_req(KS_OP_DESTROY);
	kt_setid(q->u.key.id, id);
	q->u.key.version = 1;
	REFUSED(ks);
	q = kt_req(KS_OP_REVOKE);
	kt_setid(q->u.revoke.id, id);
	snprintf(q->u.revoke.reason, sizeof(q->u.revoke.reason), "x");
	q->u.revoke.compromised = 2;
	REFUSED(ks);
	q = kt_req(KS_OP_SIGN);
	kt_setid(q->u.sign.id, id);
	q->u.sign.len = sizeof(q->u.sign.msg) + 1;
	REFUSED(ks);

	/* Nothing was written, nothing sealed. */
	s1 = kt_stats(ks);
	stats_same(&s0, &s1);
	assert_int_equal(kt_key(ks, KS_OP_GET, id, 0), 0);
	assert_int_equal(KT_R->meta.state, KS_STATE_ACTIVE);
	assert_int_equal(KT_R->meta.version, 1);
	assert_int_equal(KT_R->meta.record_version, 1);
}

struct writer {
	struct ks *ks;
	int ok, failed, first_rc;
	char (*ids)[KT_ID];
	uint8_t (*mat)[32];
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	int i, rc;

	for (i = 0; i < PER_THREAD; i++) {
		rc =
		    kt_create(w->ks, KS_KIND_DATA, NULL, NULL, 0, 0, w->ids[i]);
		if (rc == 0)
			rc = kt_material(w->ks, w->ids[i], 0, w->mat[i]);
		if (rc == 0) {
			w->ok++;
		} else if (w->failed++ == 0) {
			w->first_rc = rc;
		}
	}
	kt_c_free();
	return NULL;
}

static int
mat_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* 14. Concurrent writers: all acknowledged, committed in batches. */
static void
test_concurrency(void **state)
{
	static char ids[NTHREADS * PER_THREAD][KT_ID];
	static uint8_t mat[NTHREADS * PER_THREAD][32];
	struct ks *ks = kt_open("concurrent", NULL);
	struct writer w[NTHREADS];
	pthread_t th[NTHREADS];
	struct ks_stats s0, s1;
	uint8_t x[32];
	size_t i, n = NTHREADS * PER_THREAD;
	uint64_t checked;

	(void)state;
	s0 = kt_stats(ks);
	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct writer){ ks, 0, 0, 0, ids + i * PER_THREAD,
			mat + i * PER_THREAD };
		assert_int_equal(
		    pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NTHREADS; i++) {
		if (w[i].failed != 0)
			fail_msg("thread %zu: %d failed, first %s", i,
			    w[i].failed, sr_errname(w[i].first_rc));
		assert_int_equal(w[i].ok, PER_THREAD);
	}
	s1 = kt_stats(ks);
	assert_int_equal(s1.keys[KS_KIND_DATA], n);
	assert_int_equal(s1.committed_writes - s0.committed_writes, n);
	/* Group commit: fewer commits than writes. */
	assert_true(s1.commits - s0.commits <
	    s1.committed_writes - s0.committed_writes);
	assert_int_equal(kt_check(ks, &checked), 0);
	assert_int_equal(checked, n + s1.dek_version);
	/* Every id and every key distinct, each still reads the same. */
	for (i = 0; i < n; i += 7) {
		assert_int_equal(kt_material(ks, ids[i], 0, x), 0);
		assert_memory_equal(x, mat[i], 32);
	}
	qsort(ids, n, KT_ID, id_cmp);
	qsort(mat, n, 32, mat_cmp);
	for (i = 1; i < n; i++) {
		assert_true(strcmp(ids[i - 1], ids[i]) < 0);
		assert_memory_not_equal(mat[i - 1], mat[i], 32);
	}
	ks_close(ks);
}

struct racer {
	struct ks *ks;
	const char *id;
	uint32_t op;
	pthread_barrier_t *go;
	int rc;
	uint32_t version;
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = r->op == KS_OP_REVOKE ? kt_revoke(r->ks, r->id, "race", 0)
	                              : kt_key(r->ks, r->op, r->id, 0);
	r->version = KT_R->meta.version;
	kt_c_free();
	return NULL;
}

/* Start @p n racers on @p id at once; wait for them. */
static void
race(struct racer *r, unsigned n)
{
	pthread_t th[NTHREADS];
	pthread_barrier_t go;
	unsigned i;

	assert_true(n <= NTHREADS);
	pthread_barrier_init(&go, NULL, n);
	for (i = 0; i < n; i++) {
		r[i].go = &go;
		assert_int_equal(
		    pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
}

/* 14b. Rotations racing a revocation, and each other. */
static void
test_rotation_races(void **state)
{
	static const char msg[] = "race";
	struct ks *ks = kt_main_ks();
	struct racer r[NTHREADS];
	char id[KT_ID], label[48];
	uint8_t x[32], pub[65], sig[64];
	unsigned round, i, ok;
	struct ks_meta m;

	(void)state;
	/* A revocation that is acknowledged holds, whatever the rotation
	 * racing it did: no version of the key stays usable. */
	for (round = 0; round < 100; round++) {
		assert_int_equal(
		    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, id), 0);
		r[0] = (struct racer){ ks, id, KS_OP_ROTATE, NULL, -1, 0 };
		r[1] = (struct racer){ ks, id, KS_OP_REVOKE, NULL, -1, 0 };
		race(r, 2);
		assert_int_equal(r[1].rc, 0);
		if (r[0].rc != 0 && r[0].rc != KS_ESTATE)
			fail_msg(
			    "round %u: rotate %s", round, sr_errname(r[0].rc));
		kt_get_meta(ks, id, 0, &m);
		if (m.state != KS_STATE_REVOKED)
			fail_msg("round %u: rotate %s, v%u is %s after a "
			         "revocation",
			    round, sr_errname(r[0].rc), m.version,
			    ks_state_name(m.state));
		assert_int_equal(m.version, r[0].rc == 0 ? 2 : 1);
		assert_int_equal(kt_material(ks, id, 0, x), KS_ESTATE);
		assert_int_equal(kt_material(ks, id, 1, x), KS_ESTATE);
	}
	/* Eight rotations of one signing key: each that succeeds makes the
	 * next version, once, in the HSM; the rest are told KS_ESTATE. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_SIGNING, "race", NULL, 0, 0, id), 0);
	for (i = 0; i < NTHREADS; i++)
		r[i] = (struct racer){ ks, id, KS_OP_ROTATE, NULL, -1, 0 };
	race(r, NTHREADS);
	ok = 0;
	for (i = 0; i < NTHREADS; i++) {
		if (r[i].rc == 0)
			ok++;
		else if (r[i].rc != KS_ESTATE)
			fail_msg("rotation %u: %s", i, sr_errname(r[i].rc));
	}
	assert_true(ok >= 1);
	kt_get_meta(ks, id, 0, &m);
	assert_int_equal(m.version, 1 + ok);
	for (i = 1; i <= m.version; i++) {
		snprintf(label, sizeof(label), "sr-sign-%s-v%u", id, i);
		kt_hsm_has(P11_KEY_EC_P256, label, 0);
	}
	assert_int_equal(kt_sign(ks, id, msg, sig), 0);
	kt_public_of(id, m.version, pub);
	assert_int_equal(kt_ecdsa_verify(pub, msg, strlen(msg), sig), 0);
	assert_int_equal(kt_check(ks, NULL), 0);
}

/* 15. No secret any test saw is in an LMDB file or a log line. */
static void
test_secret_scan(void **state)
{
	(void)state;
	kt_scan_all(2 * NTHREADS * PER_THREAD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_keys),
		cmocka_unit_test(test_apikeys),
		cmocka_unit_test(test_apikey_refusals),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_concurrency),
		cmocka_unit_test(test_rotation_races),
		cmocka_unit_test(test_secret_scan),
	};

	return cmocka_run_group_tests_name(
	    "keystore/use", tests, kt_group_setup, kt_group_teardown);
}
