/*
 * tests/integration/keystore/test_keystore_integrity.c: the keystore when
 * its storage is not what it wrote, or has no room left: records edited,
 * swapped, or re-sealed with a valid MAC under the claim of another DEK;
 * DEK records tampered with; a full LMDB map (nothing half-written, every
 * acknowledged key still there); and root rotation (new roots and DEK, old
 * keys and device keys unchanged, DEKs re-wrapped under the new root).
 * Records are edited directly in LMDB through the keystore's internals.
 * Ends with the secret scan of test_keystore.c over its own keystores.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/integration/keystore/kstest.h"

#define VAL_MAX 2048
#define FULL_MAX 8192

static int
setup(void **state)
{
	(void)state;
	return kt_setup("ks-integrity");
}

static int
teardown(void **state)
{
	(void)state;
	kt_teardown();
	return 0;
}

/* LMDB keys: a record's id || be32(version); a DEK's be32(version). */
static MDB_val
rec_key(uint8_t kb[KS_ID_LEN + 4], const char *id, uint32_t version)
{
	ks__reckey(kb, id, version);
	return (MDB_val){ KS_ID_LEN + 4, kb };
}

static MDB_val
dek_key(uint8_t kb[4], uint32_t version)
{
	kb[0] = (uint8_t)(version >> 24);
	kb[1] = (uint8_t)(version >> 16);
	kb[2] = (uint8_t)(version >> 8);
	kb[3] = (uint8_t)version;
	return (MDB_val){ 4, kb };
}

/* Copy the stored value of @p key in database @p db. @return its size. */
static size_t
raw_get(struct ks *ks, unsigned db, MDB_val key, uint8_t *buf)
{
	MDB_txn *txn;
	MDB_val val;

	assert_int_equal(mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, ks->dbi[db], &key, &val), 0);
	assert_true(val.mv_size <= VAL_MAX);
	memcpy(buf, val.mv_data, val.mv_size);
	mdb_txn_abort(txn);
	return val.mv_size;
}

/* Overwrite it behind the keystore's back. */
static void
raw_put(struct ks *ks, unsigned db, MDB_val key, const uint8_t *buf, size_t len)
{
	MDB_val val = { len, (void *)buf };
	MDB_txn *txn;

	assert_int_equal(mdb_txn_begin(ks->env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_put(txn, ks->dbi[db], &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

/* A DATA record re-encoded with a valid MAC after @p edit changed it. */
static void
reseal(struct ks *ks, const char *id, void (*edit)(struct ks__rec *, void *),
    void *arg)
{
	uint8_t kb[KS_ID_LEN + 4], buf[VAL_MAX];
	MDB_val key = rec_key(kb, id, 1), val = { 0, buf };
	struct ks__rec *r = calloc(1, sizeof(*r));
	size_t len;

	assert_non_null(r);
	val.mv_size = raw_get(ks, KS_DB_DATA, key, buf);
	assert_int_equal(ks__rec_decode(ks, KS_DB_DATA, &key, &val, r), 0);
	edit(r, arg);
	assert_int_equal(
	    ks__rec_encode(ks, KS_DB_DATA, &key, r, buf, sizeof(buf), &len), 0);
	raw_put(ks, KS_DB_DATA, key, buf, len);
	sr_wipe(r, sizeof(*r));
	free(r);
}

/* What a tampered record of @p id gives, while @p good stays readable. */
static void
record_refused(
    struct ks *ks, const char *id, const char *good, const uint8_t good_m[32])
{
	uint8_t x[32];

	assert_int_equal(kt_key(ks, KS_OP_GET, id, 0), KS_EINTEGRITY);
	assert_int_equal(kt_key(ks, KS_OP_GET, id, 1), KS_EINTEGRITY);
	assert_int_equal(kt_material(ks, id, 0, x), KS_EINTEGRITY);
	assert_int_equal(kt_check(ks, NULL), KS_EINTEGRITY);
	assert_int_equal(kt_material(ks, good, 0, x), 0);
	assert_memory_equal(x, good_m, 32);
}

/* 10a. One flipped byte anywhere in a record; then restored. */
static void
test_flipped_byte(void **state)
{
	struct ks *ks = kt_open("tamper", NULL);
	uint8_t kb[KS_ID_LEN + 4], orig[VAL_MAX], buf[VAL_MAX];
	uint8_t m1[32], m2[32], x[32];
	char d1[KT_ID], d2[KT_ID];
	size_t len, pos[6], i;
	MDB_val key;
	uint64_t n;

	(void)state;
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, d1), 0);
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, d2), 0);
	assert_int_equal(kt_material(ks, d1, 0, m1), 0);
	assert_int_equal(kt_material(ks, d2, 0, m2), 0);
	assert_int_equal(kt_check(ks, &n), 0);
	key = rec_key(kb, d1, 1);
	len = raw_get(ks, KS_DB_DATA, key, orig);
	/* Magic, kind, the middle, the sealed material, MAC version, MAC. */
	pos[0] = 0;
	pos[1] = 4;
	pos[2] = len / 2;
	pos[3] = len - KS_MAC_LEN - 4 - 20;
	pos[4] = len - KS_MAC_LEN - 1;
	pos[5] = len - 1;
	for (i = 0; i < 6; i++) {
		memcpy(buf, orig, len);
		buf[pos[i]] ^= 0x01;
		raw_put(ks, KS_DB_DATA, key, buf, len);
		record_refused(ks, d1, d2, m2);
	}
	/* Cut short, or one byte longer. */
	raw_put(ks, KS_DB_DATA, key, orig, len - 1);
	record_refused(ks, d1, d2, m2);
	memcpy(buf, orig, len);
	buf[len] = 0;
	raw_put(ks, KS_DB_DATA, key, buf, len + 1);
	record_refused(ks, d1, d2, m2);
	/* Restored: fine again. */
	raw_put(ks, KS_DB_DATA, key, orig, len);
	assert_int_equal(kt_key(ks, KS_OP_GET, d1, 0), 0);
	assert_int_equal(kt_material(ks, d1, 0, x), 0);
	assert_memory_equal(x, m1, 32);
	assert_int_equal(kt_check(ks, &n), 0);
	assert_int_equal(n, 3);
	ks_close(ks);
}

/* 10b. Two records' values swapped: both refused. */
static void
test_swapped_records(void **state)
{
	struct ks *ks = kt_open("tamper", NULL);
	uint8_t k1[KS_ID_LEN + 4], k2[KS_ID_LEN + 4];
	uint8_t v1[VAL_MAX], v2[VAL_MAX], m1[32], m2[32], m3[32], x[32];
	char d1[KT_ID], d2[KT_ID], d3[KT_ID];
	size_t l1, l2;

	(void)state;
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, d1), 0);
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, d2), 0);
	assert_int_equal(kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, d3), 0);
	assert_int_equal(kt_material(ks, d1, 0, m1), 0);
	assert_int_equal(kt_material(ks, d2, 0, m2), 0);
	assert_int_equal(kt_material(ks, d3, 0, m3), 0);
	l1 = raw_get(ks, KS_DB_DATA, rec_key(k1, d1, 1), v1);
	l2 = raw_get(ks, KS_DB_DATA, rec_key(k2, d2, 1), v2);
	raw_put(ks, KS_DB_DATA, rec_key(k1, d1, 1), v2, l2);
	raw_put(ks, KS_DB_DATA, rec_key(k2, d2, 1), v1, l1);
	record_refused(ks, d1, d3, m3);
	record_refused(ks, d2, d3, m3);
	raw_put(ks, KS_DB_DATA, rec_key(k1, d1, 1), v1, l1);
	raw_put(ks, KS_DB_DATA, rec_key(k2, d2, 1), v2, l2);
	assert_int_equal(kt_material(ks, d1, 0, x), 0);
	assert_memory_equal(x, m1, 32);
	assert_int_equal(kt_material(ks, d2, 0, x), 0);
	assert_memory_equal(x, m2, 32);
	assert_int_equal(kt_check(ks, NULL), 0);
	ks_close(ks);
}

/* A fresh keystore whose DEKs last 3 uses, with records under v1, v2. */
struct two_deks {
	const char *name;
	struct ks_options o;
	struct ks *ks;
	char old[KT_ID], cur[KT_ID]; /* sealed under DEK v1, v2 */
	uint8_t m_old[32], m_cur[32];
};

static void
two_deks_open(struct two_deks *t, const char *name)
{
	char id[KT_ID];
	uint32_t dek;
	int i;

	memset(t, 0, sizeof(*t));
	t->name = name;
	t->o.dek_max_uses = 3;
	t->ks = kt_open(name, &t->o);
	for (i = 0; i < 8 && t->cur[0] == '\0'; i++) {
		assert_int_equal(
		    kt_create(t->ks, KS_KIND_DATA, NULL, NULL, 0, 0, id), 0);
		dek = KT_R->meta.dek_version;
		if (dek == 1 && t->old[0] == '\0')
			kt_setid(t->old, id);
		if (dek == 2)
			kt_setid(t->cur, id);
	}
	assert_true(t->old[0] != '\0' && t->cur[0] != '\0');
	assert_true(kt_stats(t->ks).dek_version >= 2);
	assert_int_equal(kt_material(t->ks, t->old, 0, t->m_old), 0);
	assert_int_equal(kt_material(t->ks, t->cur, 0, t->m_cur), 0);
}

static void
claim_dek(struct ks__rec *r, void *arg)
{
	r->m.dek_version = *(uint32_t *)arg;
}

static void
graft_sealed(struct ks__rec *r, void *arg)
{
	const struct ks__rec *from = arg;

	r->m.dek_version = from->m.dek_version;
	r->sealed_len = from->sealed_len;
	memcpy(r->sealed, from->sealed, from->sealed_len);
}

/* 10c. A valid MAC over a false DEK claim: the GCM AAD refuses it. */
static void
test_false_dek_claim(void **state)
{
	uint8_t kb[KS_ID_LEN + 4], kb2[KS_ID_LEN + 4], orig[VAL_MAX];
	uint8_t buf[VAL_MAX], dorig2[VAL_MAX], dkb1[4], dkb2[4], x[32];
	struct ks__rec *cur = calloc(1, sizeof(*cur));
	struct ks__dek d1, d2;
	struct two_deks t;
	MDB_val key, key2, dkey2, val;
	size_t len, dlen2, n;
	uint32_t v;

	(void)state;
	assert_non_null(cur);
	two_deks_open(&t, "dek-claim");
	key = rec_key(kb, t.old, 1);
	len = raw_get(t.ks, KS_DB_DATA, key, orig);
	/* Sealed under DEK v1, claiming v2 (a real DEK): MAC fine, GCM not. */
	v = 2;
	reseal(t.ks, t.old, claim_dek, &v);
	assert_int_equal(kt_key(t.ks, KS_OP_GET, t.old, 0), 0);
	assert_int_equal(KT_R->meta.dek_version, 2);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), KS_EINTEGRITY);
	assert_int_equal(kt_check(t.ks, NULL), KS_EINTEGRITY);
	assert_int_equal(kt_material(t.ks, t.cur, 0, x), 0);
	assert_memory_equal(x, t.m_cur, 32);
	/* A DEK that never existed. */
	raw_put(t.ks, KS_DB_DATA, key, orig, len);
	v = 99;
	reseal(t.ks, t.old, claim_dek, &v);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), KS_EINTEGRITY);
	/* Another record's ciphertext and DEK, with a valid MAC. */
	raw_put(t.ks, KS_DB_DATA, key, orig, len);
	key2 = rec_key(kb2, t.cur, 1);
	val.mv_size = raw_get(t.ks, KS_DB_DATA, key2, buf);
	val.mv_data = buf;
	assert_int_equal(ks__rec_decode(t.ks, KS_DB_DATA, &key2, &val, cur), 0);
	reseal(t.ks, t.old, graft_sealed, cur);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), KS_EINTEGRITY);
	raw_put(t.ks, KS_DB_DATA, key, orig, len);
	/*
	 * The AAD alone: DEK record v2 made to hold v1's wrapping (valid
	 * MAC), so both versions unwrap to the same key; the record sealed
	 * under v1 and claiming v2 opens under the right key and is still
	 * refused, since its AAD named DEK v1.
	 */
	dkey2 = dek_key(dkb2, 2);
	dlen2 = raw_get(t.ks, KS_DB_DEKS, dkey2, dorig2);
	val.mv_size = raw_get(t.ks, KS_DB_DEKS, dek_key(dkb1, 1), buf);
	val.mv_data = buf;
	assert_int_equal(
	    ks__dek_decode(t.ks, &(MDB_val){ 4, dkb1 }, &val, &d1), 0);
	val.mv_size = dlen2;
	memcpy(buf, dorig2, dlen2);
	assert_int_equal(ks__dek_decode(t.ks, &dkey2, &val, &d2), 0);
	memcpy(d2.wrapped, d1.wrapped, sizeof(d2.wrapped));
	assert_int_equal(ks__dek_encode(t.ks, &d2, buf, sizeof(buf), &n), 0);
	raw_put(t.ks, KS_DB_DEKS, dkey2, buf, n);
	ks_close(t.ks);
	t.ks = kt_open(t.name, &t.o);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), 0);
	assert_memory_equal(x, t.m_old, 32);
	v = 2;
	reseal(t.ks, t.old, claim_dek, &v);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), KS_EINTEGRITY);
	/* Restored. */
	raw_put(t.ks, KS_DB_DEKS, dkey2, dorig2, dlen2);
	raw_put(t.ks, KS_DB_DATA, key, orig, len);
	ks_close(t.ks);
	t.ks = kt_open(t.name, &t.o);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), 0);
	assert_memory_equal(x, t.m_old, 32);
	assert_int_equal(kt_check(t.ks, NULL), 0);
	sr_wipe(cur, sizeof(*cur));
	sr_wipe(&d1, sizeof(d1));
	sr_wipe(&d2, sizeof(d2));
	free(cur);
	ks_close(t.ks);
}

/* Reopen (dropping the cache of unwrapped DEKs) and read both records. */
static void
dek_refused(struct two_deks *t)
{
	uint8_t x[32];

	ks_close(t->ks);
	t->ks = kt_open(t->name, &t->o);
	assert_int_equal(kt_material(t->ks, t->old, 0, x), KS_EINTEGRITY);
	assert_int_equal(kt_check(t->ks, NULL), KS_EINTEGRITY);
	assert_int_equal(kt_material(t->ks, t->cur, 0, x), 0);
	assert_memory_equal(x, t->m_cur, 32);
}

/* 10d. A DEK record tampered with: what it seals is refused. */
static void
test_tampered_dek(void **state)
{
	uint8_t kb[4], kb2[4], orig[VAL_MAX], buf[VAL_MAX], x[32];
	struct ks__dek d1, d2;
	struct two_deks t;
	MDB_val key, key2, val = { 0, buf };
	size_t len, n;

	(void)state;
	two_deks_open(&t, "dek-tamper");
	key = dek_key(kb, 1);
	len = raw_get(t.ks, KS_DB_DEKS, key, orig);
	/* A flipped byte: the DEK record's MAC fails. */
	memcpy(buf, orig, len);
	buf[len / 2] ^= 0x01;
	raw_put(t.ks, KS_DB_DEKS, key, buf, len);
	dek_refused(&t);
	/* A valid MAC over a damaged wrapping: the unwrap fails. */
	val.mv_size = len;
	memcpy(buf, orig, len);
	assert_int_equal(ks__dek_decode(t.ks, &key, &val, &d1), 0);
	assert_int_equal(d1.version, 1);
	d1.wrapped[3] ^= 0x01;
	assert_int_equal(ks__dek_encode(t.ks, &d1, buf, sizeof(buf), &n), 0);
	raw_put(t.ks, KS_DB_DEKS, key, buf, n);
	dek_refused(&t);
	/* A valid MAC over another real DEK's wrapping: GCM fails. */
	key2 = dek_key(kb2, 2);
	val.mv_size = raw_get(t.ks, KS_DB_DEKS, key2, buf);
	assert_int_equal(ks__dek_decode(t.ks, &key2, &val, &d2), 0);
	assert_int_equal(d2.root_version, d1.root_version);
	val.mv_size = len;
	memcpy(buf, orig, len);
	assert_int_equal(ks__dek_decode(t.ks, &key, &val, &d1), 0);
	memcpy(d1.wrapped, d2.wrapped, sizeof(d1.wrapped));
	assert_int_equal(ks__dek_encode(t.ks, &d1, buf, sizeof(buf), &n), 0);
	raw_put(t.ks, KS_DB_DEKS, key, buf, n);
	dek_refused(&t);
	/* Restored. */
	raw_put(t.ks, KS_DB_DEKS, key, orig, len);
	ks_close(t.ks);
	t.ks = kt_open(t.name, &t.o);
	assert_int_equal(kt_material(t.ks, t.old, 0, x), 0);
	assert_memory_equal(x, t.m_old, 32);
	assert_int_equal(kt_check(t.ks, NULL), 0);
	sr_wipe(&d1, sizeof(d1));
	sr_wipe(&d2, sizeof(d2));
	ks_close(t.ks);
}

/* 11. A full map: refused with KS_EFULL, nothing half-written or lost. */
static void
test_map_full(void **state)
{
	static char ids[FULL_MAX][KT_ID];
	static uint8_t mat[FULL_MAX][32];
	struct ks_options o = { .map_size = 256 * 1024 };
	struct ks *ks = kt_open("full", &o);
	struct ks_stats st;
	char name[32];
	size_t n = 0, apps = 0, tries, full = 0, i;
	uint64_t checked, again;
	unsigned kind;
	uint8_t x[32];
	int rc, in_a_row = 0;

	(void)state;
	/*
	 * Until 16 refusals in a row: a refusal is KS_EFULL and nothing else,
	 * and a create that still finds room in some page may succeed after
	 * one. Every fourth an app, so the names index fills up too.
	 */
	for (tries = 0; tries < FULL_MAX && in_a_row < 16; tries++) {
		kind = tries % 4 == 3 ? KS_KIND_APP : KS_KIND_DATA;
		snprintf(name, sizeof(name), "full-%zu", tries);
		rc = kt_create(ks, kind, kind == KS_KIND_APP ? name : NULL,
		    NULL, 0, 0, ids[n]);
		if (rc != 0 && rc != KS_EFULL)
			fail_msg("after %zu keys: %s", n, sr_errname(rc));
		if (rc == KS_EFULL) {
			full++;
			in_a_row++;
			continue;
		}
		in_a_row = 0;
		apps += kind == KS_KIND_APP;
		assert_int_equal(kt_material(ks, ids[n], 0, mat[n]), 0);
		n++;
	}
	assert_int_equal(in_a_row, 16);
	assert_true(full >= 16 && n > 100);
	st = kt_stats(ks);
	assert_int_equal(st.keys[KS_KIND_DATA] + st.keys[KS_KIND_APP], n);
	assert_int_equal(st.keys[KS_KIND_APP], apps);
	assert_true(st.map_used <= st.map_size);
	for (i = 0; i < n; i++) {
		assert_int_equal(kt_material(ks, ids[i], 0, x), 0);
		assert_memory_equal(x, mat[i], 32);
	}
	/* DEK, records, one name per app: every entry whole. */
	assert_int_equal(kt_check(ks, &checked), 0);
	assert_int_equal(checked, st.dek_version + n + apps);
	/* The same after a reopen. */
	ks_close(ks);
	ks = kt_open("full", &o);
	assert_int_equal(kt_check(ks, &again), 0);
	assert_int_equal(again, checked);
	assert_int_equal(kt_material(ks, ids[n - 1], 0, x), 0);
	assert_memory_equal(x, mat[n - 1], 32);
	ks_close(ks);
}

/* Every DEK record decodes and is wrapped under root @p root. */
static void
deks_under(struct ks *ks, uint32_t root, uint32_t count)
{
	MDB_cursor *cur;
	MDB_val key, val;
	MDB_txn *txn;
	struct ks__dek d;
	uint32_t n = 0;
	int rc;

	assert_int_equal(mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_cursor_open(txn, ks->dbi[KS_DB_DEKS], &cur), 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		assert_int_equal(ks__dek_decode(ks, &key, &val, &d), 0);
		assert_int_equal(d.version, ++n);
		if (d.root_version != root)
			fail_msg("DEK v%u under root v%u, want v%u", d.version,
			    d.root_version, root);
		assert_int_equal(d.mac_version, root);
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	assert_int_equal(n, count);
	sr_wipe(&d, sizeof(d));
}

/* Device key of (app, serial): @p want, not newly created. */
static void
same_device(
    struct ks *ks, const char *app, const char *serial, const uint8_t want[32])
{
	uint8_t x[32];
	int created;

	assert_int_equal(kt_device(ks, app, serial, x, &created), 0);
	assert_int_equal(created, 0);
	assert_memory_equal(x, want, 32);
}

static void
same_material(struct ks *ks, const char *id, uint32_t v, const uint8_t *want)
{
	uint8_t x[32];

	assert_int_equal(kt_material(ks, id, v, x), 0);
	assert_memory_equal(x, want, 32);
}

static void
root_rotate(struct ks *ks)
{
	kt_req(KS_OP_ROOT_ROTATE);
	assert_int_equal(kt_run(ks), 0);
}

/* 12. Root rotation: new roots and DEK; everything older unchanged. */
static void
test_root_rotation(void **state)
{
	struct ks *ks = kt_open("roots", NULL);
	char app[KT_ID], data[KT_ID], user[KT_ID], late[KT_ID];
	char key[KS_APIKEY_LEN + 1];
	uint8_t ma[32], md[32], mu[32], ml[32], d1[32], d2[32], d3[32];
	uint8_t ma2[32];
	struct ks_stats s0, s1, s2;
	struct p11_key *k;
	int created;

	(void)state;
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "roots", NULL, 0, 0, app), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, data), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, NULL, NULL, 0, 0, user), 0);
	assert_int_equal(kt_material(ks, app, 0, ma), 0);
	assert_int_equal(kt_material(ks, data, 0, md), 0);
	assert_int_equal(kt_material(ks, user, 0, mu), 0);
	assert_int_equal(kt_device(ks, app, "r-1", d1, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(kt_device(ks, app, "r-2", d2, &created), 0);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	s0 = kt_stats(ks);
	assert_int_equal(s0.root_kek_version, 1);
	assert_int_equal(s0.dek_version, 1);

	root_rotate(ks);
	s1 = kt_stats(ks);
	assert_int_equal(s1.root_kek_version, 2);
	assert_int_equal(s1.root_kdk_version, 2);
	assert_int_equal(s1.dek_version, s0.dek_version + 1);
	assert_int_equal(
	    p11_key_find(kt_hsm, P11_KEY_AES, "sr-root-kek-v2", NULL, 0, &k),
	    0);
	p11_key_free(k);
	assert_int_equal(
	    p11_key_find(kt_hsm, P11_KEY_HMAC, "sr-root-kdk-v2", NULL, 0, &k),
	    0);
	p11_key_free(k);
	same_material(ks, app, 0, ma);
	same_material(ks, data, 0, md);
	same_material(ks, user, 0, mu);
	/* Devices enrolled before derive under their enrolment's root. */
	same_device(ks, app, "r-1", d1);
	same_device(ks, app, "r-2", d2);
	assert_int_equal(KT_R->meta.root_version, 1);
	assert_int_equal(kt_device(ks, app, "r-3", d3, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(KT_R->meta.root_version, 2);
	same_device(ks, app, "r-3", d3);
	/* New work: the new DEK and root. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_DATA, NULL, NULL, 0, 0, late), 0);
	assert_int_equal(KT_R->meta.dek_version, s1.dek_version);
	assert_int_equal(KT_R->meta.root_version, 2);
	assert_int_equal(kt_material(ks, late, 0, ml), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, app, 0), 0);
	assert_int_equal(kt_material(ks, app, 0, ma2), 0);
	assert_memory_not_equal(ma2, ma, 32);
	same_material(ks, app, 1, ma);
	assert_int_equal(kt_verify(ks, key), 0);
	assert_int_equal(kt_check(ks, NULL), 0);

	/* Closed (joining the re-wrap) and reopened: all DEKs under v2. */
	ks_close(ks);
	ks = kt_open("roots", NULL);
	deks_under(ks, 2, s1.dek_version);
	s2 = kt_stats(ks);
	assert_int_equal(s2.root_kek_version, 2);
	assert_int_equal(s2.dek_version, s1.dek_version);
	assert_string_equal(s2.appliance_id, s0.appliance_id);
	same_material(ks, app, 1, ma);
	same_material(ks, app, 2, ma2);
	same_material(ks, data, 0, md);
	same_material(ks, user, 0, mu);
	same_material(ks, late, 0, ml);
	same_device(ks, app, "r-1", d1);
	same_device(ks, app, "r-3", d3);
	assert_int_equal(kt_check(ks, NULL), 0);

	/* Once more: v3, and still the same keys. */
	root_rotate(ks);
	ks_close(ks);
	ks = kt_open("roots", NULL);
	deks_under(ks, 3, s1.dek_version + 1);
	same_material(ks, data, 0, md);
	same_material(ks, late, 0, ml);
	same_device(ks, app, "r-2", d2);
	same_device(ks, app, "r-3", d3);
	assert_int_equal(kt_verify(ks, key), 0);
	assert_int_equal(kt_check(ks, NULL), 0);
	ks_close(ks);
}

/* 15. No secret any test here saw is in an LMDB file or a log line. */
static void
test_secret_scan(void **state)
{
	(void)state;
	kt_scan_all(200);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flipped_byte),
		cmocka_unit_test(test_swapped_records),
		cmocka_unit_test(test_false_dek_claim),
		cmocka_unit_test(test_tampered_dek),
		cmocka_unit_test(test_map_full),
		cmocka_unit_test(test_root_rotation),
		cmocka_unit_test(test_secret_scan),
	};

	return cmocka_run_group_tests_name(
	    "keystore/integrity", tests, setup, teardown);
}
