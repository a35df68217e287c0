/*
 * tests/integration/keystore/test_keystore_update.c: KS_OP_UPDATE through
 * the keystore's message API on a real SoftHSM2 token and real LMDB files:
 * an app's name, scope, networks and expiry changed alone and together on
 * every version of it (state, owner, material and versions untouched);
 * unique names (a taken one refused, the old one freed); the record MACs
 * and the names index intact after a reopen (the consistency walk passes,
 * an edited byte of an updated record is still refused and an update of it
 * writes nothing); unknown keys, the wrong kind, revoked apps, a stale
 * record_version and malformed requests refused; and an API key's cached
 * verification dropped at once, so the next one carries the new networks
 * and scope.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "tests/integration/keystore/kstest.h"

#define DAY 86400LL

/* A network for request and comparison: "10.1.0.0", 16. */
static struct ks_cidr
net(const char *addr, unsigned prefix)
{
	struct ks_cidr c;

	memset(&c, 0, sizeof(c));
	c.family = strchr(addr, ':') != NULL ? 6 : 4;
	c.prefix = (uint8_t)prefix;
	assert_int_equal(
	    inet_pton(c.family == 4 ? AF_INET : AF_INET6, addr, c.addr), 1);
	return c;
}

/* An app with a scope, one network and an expiry 30 days out. */
static void
make_app(struct ks *ks, const char *name, char id[KT_ID])
{
	struct ks_request *q = kt_req(KS_OP_CREATE);

	q->u.create.kind = KS_KIND_APP;
	snprintf(q->u.create.name, sizeof(q->u.create.name), "%s", name);
	snprintf(q->u.create.scope, sizeof(q->u.create.scope), "%s",
	    "{\"scopes\":[\"inference\",\"audit\"]}");
	q->u.create.cidrs[0] = net("10.1.0.0", 16);
	q->u.create.expires_at = kt_now() + 30 * DAY;
	assert_int_equal(kt_run(ks), 0);
	kt_setid(id, KT_R->meta.id);
}

/* This thread's UPDATE request for @p id (kind APP), to be filled. */
static struct ks_update_req *
upd(const char *id, uint32_t what)
{
	struct ks_request *q = kt_req(KS_OP_UPDATE);

	kt_setid(q->u.update.id, id);
	q->u.update.kind = KS_KIND_APP;
	q->u.update.what = what;
	return &q->u.update;
}

static void
set_name(struct ks_update_req *u, const char *name)
{
	snprintf(u->name, sizeof(u->name), "%s", name);
}

static void
set_scope(struct ks_update_req *u, const char *scope)
{
	snprintf(u->scope, sizeof(u->scope), "%s", scope);
}

/* 1. Each field alone, then all together; the rest stays as it was. */
static void
test_fields(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_update_req *u;
	struct ks_meta before, after;
	char app[KT_ID];
	int64_t exp;

	(void)state;
	make_app(ks, "fields", app);
	kt_get_meta(ks, app, 0, &before);

	u = upd(app, KS_UPDATE_SCOPE);
	set_scope(u, "{\"scopes\":[\"inference\"]}");
	assert_int_equal(kt_run(ks), 0);
	/* The reply is the key after the change. */
	assert_string_equal(KT_R->meta.scope, "{\"scopes\":[\"inference\"]}");
	kt_get_meta(ks, app, 0, &after);
	assert_string_equal(after.scope, "{\"scopes\":[\"inference\"]}");
	assert_string_equal(after.name, "fields");
	assert_memory_equal(after.cidrs, before.cidrs, sizeof(after.cidrs));
	assert_int_equal(after.expires_at, before.expires_at);
	assert_int_equal(after.record_version, before.record_version + 1);
	assert_int_equal(after.state, KS_STATE_ACTIVE);
	assert_int_equal(after.version, 1);
	assert_int_equal(after.created_at, before.created_at);

	u = upd(app, KS_UPDATE_CIDRS);
	u->cidrs[0] = net("192.0.2.0", 24);
	u->cidrs[1] = net("2001:db8::", 32);
	assert_int_equal(kt_run(ks), 0);
	kt_get_meta(ks, app, 0, &after);
	assert_int_equal(after.cidrs[0].family, 4);
	assert_int_equal(after.cidrs[0].prefix, 24);
	assert_memory_equal(
	    after.cidrs[1].addr, net("2001:db8::", 32).addr, 16);
	assert_int_equal(after.cidrs[2].family, 0);
	assert_string_equal(after.scope, "{\"scopes\":[\"inference\"]}");

	/* No networks: the app is bound to none (any address). */
	u = upd(app, KS_UPDATE_CIDRS);
	assert_int_equal(kt_run(ks), 0);
	kt_get_meta(ks, app, 0, &after);
	assert_int_equal(after.cidrs[0].family, 0);

	exp = kt_now() + 300 * DAY;
	u = upd(app, KS_UPDATE_EXPIRES);
	u->expires_at = exp;
	assert_int_equal(kt_run(ks), 0);
	kt_get_meta(ks, app, 0, &after);
	assert_int_equal(after.expires_at, exp);

	u = upd(app, KS_UPDATE_ALL);
	set_name(u, "fields-2");
	set_scope(u, "");
	u->cidrs[0] = net("127.0.0.2", 32);
	u->expires_at = kt_now() + 2 * DAY;
	assert_int_equal(kt_run(ks), 0);
	kt_get_meta(ks, app, 0, &after);
	assert_string_equal(after.name, "fields-2");
	assert_string_equal(after.scope, "");
	assert_int_equal(after.cidrs[0].prefix, 32);
	assert_true(after.expires_at <= kt_now() + 2 * DAY);
	assert_int_equal(after.record_version, before.record_version + 5);
	assert_string_equal(after.parent, before.parent);
	assert_int_equal(after.kind, KS_KIND_APP);
}

/* 2. Every version changes; material and the version chain do not. */
static void
test_versions(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_update_req *u;
	struct ks_meta m;
	uint8_t m1[32], m2[32], x[32];
	char app[KT_ID];

	(void)state;
	make_app(ks, "versions", app);
	assert_int_equal(kt_material(ks, app, 1, m1), 0);
	assert_int_equal(kt_key(ks, KS_OP_ROTATE, app, 0), 0);
	assert_int_equal(kt_material(ks, app, 2, m2), 0);
	u = upd(app, KS_UPDATE_NAME | KS_UPDATE_CIDRS);
	set_name(u, "versions-renamed");
	u->cidrs[0] = net("198.51.100.0", 24);
	assert_int_equal(kt_run(ks), 0);
	assert_int_equal(KT_R->meta.version, 2);
	assert_int_equal(KT_R->meta.current_version, 2);
	kt_get_meta(ks, app, 1, &m);
	assert_string_equal(m.name, "versions-renamed");
	assert_int_equal(m.cidrs[0].prefix, 24);
	assert_true(m.flags & KS_FLAG_DECRYPT_ONLY);
	kt_get_meta(ks, app, 2, &m);
	assert_string_equal(m.name, "versions-renamed");
	assert_false(m.flags & KS_FLAG_DECRYPT_ONLY);
	assert_int_equal(kt_material(ks, app, 1, x), 0);
	assert_memory_equal(x, m1, 32);
	assert_int_equal(kt_material(ks, app, 2, x), 0);
	assert_memory_equal(x, m2, 32);
	assert_int_equal(kt_check(ks, NULL), 0);
}

/* 3. Names stay unique: a taken one is refused, the old one is freed. */
static void
test_names(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_meta m;
	char a[KT_ID], b[KT_ID], c[KT_ID];

	(void)state;
	make_app(ks, "name-a", a);
	make_app(ks, "name-b", b);
	set_name(upd(a, KS_UPDATE_NAME | KS_UPDATE_SCOPE), "name-b");
	assert_int_equal(kt_run(ks), KS_EEXISTS);
	/* Nothing of the refused update was written. */
	kt_get_meta(ks, a, 0, &m);
	assert_string_equal(m.name, "name-a");
	assert_string_equal(m.scope, "{\"scopes\":[\"inference\",\"audit\"]}");
	/* Its own name again is no change. */
	set_name(upd(a, KS_UPDATE_NAME), "name-a");
	assert_int_equal(kt_run(ks), 0);
	set_name(upd(a, KS_UPDATE_NAME), "name-c");
	assert_int_equal(kt_run(ks), 0);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "name-c", NULL, 0, 0, c), KS_EEXISTS);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "name-a", NULL, 0, 0, c), 0);
	/* Names are per kind: a user may be called name-b. */
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, "name-b", NULL, 0, 0, NULL), 0);
	/* A revoked app keeps its name taken. */
	assert_int_equal(kt_revoke(ks, b, "gone", 0), 0);
	set_name(upd(a, KS_UPDATE_NAME), "name-b");
	assert_int_equal(kt_run(ks), KS_EEXISTS);
	assert_int_equal(kt_check(ks, NULL), 0);
}

/* 4. Refusals: nothing is written by any of them. */
static void
test_refusals(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_update_req *u;
	struct ks_meta before, m;
	char app[KT_ID], user[KT_ID], gone[KT_ID];
	uint64_t rv;

	(void)state;
	make_app(ks, "refusals", app);
	kt_get_meta(ks, app, 0, &before);
	/* Unknown id; an id of another kind. */
	set_name(upd("zzzzzzzzzzzz", KS_UPDATE_NAME), "x");
	assert_int_equal(kt_run(ks), KS_ENOTFOUND);
	assert_int_equal(
	    kt_create(ks, KS_KIND_USER, "refusals-u", NULL, 0, 0, user), 0);
	set_name(upd(user, KS_UPDATE_NAME), "x");
	assert_int_equal(kt_run(ks), KS_ENOTFOUND);
	/* Only apps may be updated; the caller says so. */
	u = upd(user, KS_UPDATE_NAME);
	set_name(u, "x");
	u->kind = KS_KIND_USER;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	/* Malformed: no field, an unknown bit, an empty name, a scope that
	 * is not an object, a bad network, a bad id. */
	upd(app, 0);
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	upd(app, 0x10);
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	upd(app, KS_UPDATE_NAME);
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	set_scope(upd(app, KS_UPDATE_SCOPE), "[\"inference\"]");
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	u = upd(app, KS_UPDATE_CIDRS);
	u->cidrs[0] = net("10.0.0.0", 8);
	u->cidrs[0].prefix = 33;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	u = upd(app, KS_UPDATE_NAME);
	memset(u->name, 'n', sizeof(u->name)); /* unterminated */
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	set_name(upd("bad id", KS_UPDATE_NAME), "x");
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	/* Expiry: not in the past, at most a year from now for an app. */
	u = upd(app, KS_UPDATE_EXPIRES);
	u->expires_at = kt_now() - 1;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	u = upd(app, KS_UPDATE_EXPIRES);
	u->expires_at = kt_now() + KT_YEAR + DAY;
	assert_int_equal(kt_run(ks), KS_EREQUEST);
	u = upd(app, KS_UPDATE_EXPIRES);
	u->expires_at = kt_now() + KT_YEAR - 60;
	assert_int_equal(kt_run(ks), 0);
	rv = KT_R->meta.record_version;
	/* A stale record_version: changed since it was read. */
	u = upd(app, KS_UPDATE_SCOPE);
	u->record_version = rv - 1;
	assert_int_equal(kt_run(ks), KS_ESTATE);
	u = upd(app, KS_UPDATE_SCOPE);
	u->record_version = rv;
	assert_int_equal(kt_run(ks), 0);
	kt_get_meta(ks, app, 0, &m);
	assert_string_equal(m.scope, "");
	assert_string_equal(m.name, before.name);
	/* A revoked app's metadata is frozen. */
	make_app(ks, "refusals-gone", gone);
	assert_int_equal(kt_revoke(ks, gone, "deleted", 0), 0);
	set_scope(upd(gone, KS_UPDATE_SCOPE), "{}");
	assert_int_equal(kt_run(ks), KS_ESTATE);
	kt_get_meta(ks, gone, 0, &m);
	assert_string_equal(m.scope, "{\"scopes\":[\"inference\",\"audit\"]}");
}

/* 5. A suspended app is updated and stays suspended; an expired one can
 * be given a new expiry and is usable again. */
static void
test_suspended_and_expired(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_update_req *u;
	struct ks_meta m;
	uint8_t x[32];
	char app[KT_ID], old[KT_ID];

	(void)state;
	make_app(ks, "suspended", app);
	assert_int_equal(kt_key(ks, KS_OP_SUSPEND, app, 0), 0);
	set_scope(upd(app, KS_UPDATE_SCOPE), "{\"scopes\":[]}");
	assert_int_equal(kt_run(ks), 0);
	kt_get_meta(ks, app, 0, &m);
	assert_int_equal(m.state, KS_STATE_SUSPENDED);
	assert_string_equal(m.scope, "{\"scopes\":[]}");

	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "expiring", NULL, 0, kt_now() + 2, old),
	    0);
	kt_wait_until(kt_now() + 3);
	assert_int_equal(kt_material(ks, old, 0, x), KS_EEXPIRED);
	u = upd(old, KS_UPDATE_EXPIRES);
	u->expires_at = kt_now() + DAY;
	assert_int_equal(kt_run(ks), 0);
	assert_int_equal(kt_material(ks, old, 0, x), 0);
}

/* 6. Updated records are MACed and survive a reopen; an edited byte of
 * one is refused, and updating it writes nothing. */
static void
test_integrity_after_reopen(void **state)
{
	struct ks *ks = kt_open("reopen", NULL);
	struct ks_update_req *u;
	struct ks_meta m;
	uint8_t kb[KS_ID_LEN + 4], m1[32], x[32];
	MDB_val key = { sizeof(kb), kb }, val;
	MDB_txn *txn;
	uint8_t saved[2048], *p;
	size_t len;
	char app[KT_ID];
	uint64_t checked = 0;

	(void)state;
	make_app(ks, "reopen", app);
	assert_int_equal(kt_material(ks, app, 0, m1), 0);
	u = upd(app, KS_UPDATE_ALL);
	set_name(u, "reopened");
	set_scope(u, "{\"scopes\":[\"inference\"]}");
	u->cidrs[0] = net("203.0.113.0", 24);
	u->expires_at = kt_now() + 100 * DAY;
	assert_int_equal(kt_run(ks), 0);
	ks_close(ks);

	ks = kt_open("reopen", NULL);
	kt_get_meta(ks, app, 0, &m);
	assert_string_equal(m.name, "reopened");
	assert_string_equal(m.scope, "{\"scopes\":[\"inference\"]}");
	assert_int_equal(m.cidrs[0].prefix, 24);
	assert_int_equal(m.record_version, 2);
	assert_int_equal(kt_material(ks, app, 0, x), 0);
	assert_memory_equal(x, m1, 32);
	assert_int_equal(kt_check(ks, &checked), 0);
	assert_true(checked >= 2); /* the record and its name */
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "reopened", NULL, 0, 0, NULL),
	    KS_EEXISTS);
	assert_int_equal(
	    kt_create(ks, KS_KIND_APP, "reopen", NULL, 0, 0, NULL), 0);

	/* One byte of the updated record's name, flipped behind its back. */
	ks__reckey(kb, app, 1);
	assert_int_equal(mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_get(txn, ks->dbi[KS_DB_APP], &key, &val), 0);
	len = val.mv_size;
	assert_true(len <= sizeof(saved));
	memcpy(saved, val.mv_data, len);
	mdb_txn_abort(txn);
	p = memmem(saved, len, "reopened", 8);
	assert_non_null(p);
	p[0] ^= 0x01;
	val = (MDB_val){ len, saved };
	assert_int_equal(mdb_txn_begin(ks->env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_put(txn, ks->dbi[KS_DB_APP], &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	assert_int_equal(kt_key(ks, KS_OP_GET, app, 0), KS_EINTEGRITY);
	set_scope(upd(app, KS_UPDATE_SCOPE), "{}");
	assert_int_equal(kt_run(ks), KS_EINTEGRITY);
	/* Restored: the update above wrote nothing. */
	p[0] ^= 0x01;
	assert_int_equal(mdb_txn_begin(ks->env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_put(txn, ks->dbi[KS_DB_APP], &key, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	kt_get_meta(ks, app, 0, &m);
	assert_string_equal(m.scope, "{\"scopes\":[\"inference\"]}");
	assert_int_equal(kt_check(ks, NULL), 0);
	ks_close(ks);
}

/* 7. An API key's cached verification goes with the update: the next
 * verification, at once, carries the app's new networks and scope. */
static void
test_cache_dropped(void **state)
{
	struct ks *ks = kt_main_ks();
	struct ks_update_req *u;
	struct ks_stats s0, s1;
	struct ks_meta owner;
	char app[KT_ID], key[KS_APIKEY_LEN + 1];

	(void)state;
	make_app(ks, "cached", app);
	assert_int_equal(kt_apikey(ks, app, 0, key), 0);
	assert_int_equal(kt_verify(ks, key), 0);
	assert_int_equal(KT_R->meta.cidrs[0].prefix, 16);
	/* Cached now: the second verification is a hit. */
	s0 = kt_stats(ks);
	assert_int_equal(kt_verify(ks, key), 0);
	s1 = kt_stats(ks);
	assert_int_equal(s1.cache_hits, s0.cache_hits + 1);

	u = upd(app, KS_UPDATE_CIDRS | KS_UPDATE_SCOPE);
	u->cidrs[0] = net("127.0.0.3", 32);
	set_scope(u, "{\"scopes\":[\"audit\"]}");
	assert_int_equal(kt_run(ks), 0);
	s0 = kt_stats(ks);
	assert_int_equal(kt_verify(ks, key), 0);
	owner = KT_R->meta;
	s1 = kt_stats(ks);
	/* A miss, within the cache's second: the entry was dropped. */
	assert_int_equal(s1.cache_hits, s0.cache_hits);
	assert_int_equal(s1.cache_misses, s0.cache_misses + 1);
	assert_int_equal(owner.cidrs[0].prefix, 32);
	assert_memory_equal(owner.cidrs[0].addr, net("127.0.0.3", 32).addr, 4);
	assert_string_equal(owner.scope, "{\"scopes\":[\"audit\"]}");
	/* And cached again with the new metadata. */
	assert_int_equal(kt_verify(ks, key), 0);
	assert_string_equal(KT_R->meta.scope, "{\"scopes\":[\"audit\"]}");
}

/* 8. No key material or API key reached the LMDB files or the log. */
static void
test_secret_scan(void **state)
{
	(void)state;
	kt_scan_all(4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_suspended_and_expired),
		cmocka_unit_test(test_integrity_after_reopen),
		cmocka_unit_test(test_cache_dropped),
		cmocka_unit_test(test_secret_scan),
	};

	return cmocka_run_group_tests_name(
	    "keystore/update", tests, kt_group_setup, kt_group_teardown);
}
