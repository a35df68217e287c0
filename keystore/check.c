/*
 * keystore/check.c: keystore statistics, a key found by its name
 * (ks_find_named, over KS_OP_LIST), the "<id>.v<N>" name of a key version
 * (ks_version_name, ks_version_parse), and the full consistency walk: every
 * DEK record's MAC holds, every record's MAC holds and its material opens under
 * its DEK (which unwraps every DEK that seals anything), every version chain
 * and every index (names, serials) points at a record that agrees.
 *
 * It reads on one read transaction and never writes; it must never stop at
 * the first good record of a kind, since a crash test relies on it to prove
 * that no acknowledged record was lost or torn.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

struct check {
	struct ks *ks;
	MDB_txn *txn;
	struct ks__rec *r, *other;
	uint64_t n;
};

static int
check_deks(struct check *c)
{
	MDB_cursor *cur;
	MDB_val key, val;
	struct ks__dek d;
	int rc;

	rc = mdb_cursor_open(c->txn, c->ks->dbi[KS_DB_DEKS], &cur);
	if (rc != 0)
		return ks__mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		rc = ks__dek_decode(c->ks, &key, &val, &d);
		if (rc != 0)
			break;
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : (rc > 0 ? ks__mdb_error(rc) : rc);
}

static int
check_record(struct check *c, unsigned kind, MDB_val *key, MDB_val *val,
    uint32_t *prev_version, char *prev_id)
{
	struct ks__rec *r = c->r;
	uint8_t plain[KS_MATERIAL_MAX];
	size_t n;
	int rc;

	rc = ks__rec_decode(c->ks, kind, key, val, r);
	if (rc != 0)
		return rc;
	/* Versions of one id count up from 1 without holes. */
	if (memcmp(prev_id, r->m.id, KS_ID_LEN) == 0) {
		if (r->m.version != *prev_version + 1)
			return KS_EINTEGRITY;
	} else if (r->m.version != 1) {
		return KS_EINTEGRITY;
	}
	memcpy(prev_id, r->m.id, KS_ID_LEN);
	*prev_version = r->m.version;
	if (r->m.parent[0] != '\0' && !ks__id_valid(r->m.parent))
		return KS_EINTEGRITY;
	if (r->m.dek_version != 0) {
		rc = ks__open_rec(c->ks, r, plain, &n);
		sr_wipe(plain, sizeof(plain));
		if (rc != 0)
			return rc;
	}
	if (kind == KS_KIND_DEVICE && r->serial[0] == '\0')
		return KS_EINTEGRITY;
	c->n++;
	return 0;
}

static int
check_kind(struct check *c, unsigned kind)
{
	MDB_cursor *cur;
	MDB_val key, val;
	char prev_id[KS_ID_LEN] = { 0 };
	uint32_t prev_version = 0;
	int rc;

	rc = mdb_cursor_open(c->txn, c->ks->dbi[kind], &cur);
	if (rc != 0)
		return ks__mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		rc = check_record(c, kind, &key, &val, &prev_version, prev_id);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : (rc > 0 ? ks__mdb_error(rc) : rc);
}

/* names: kind || name -> id; serials: app || serial -> device id. */
static int
check_index(struct check *c, unsigned db)
{
	MDB_cursor *cur;
	MDB_val key, val;
	char id[KS_ID_LEN + 1];
	unsigned kind;
	int rc;

	rc = mdb_cursor_open(c->txn, c->ks->dbi[db], &cur);
	if (rc != 0)
		return ks__mdb_error(rc);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (val.mv_size != KS_ID_LEN || key.mv_size < 2) {
			rc = KS_EINTEGRITY;
			break;
		}
		memcpy(id, val.mv_data, KS_ID_LEN);
		id[KS_ID_LEN] = '\0';
		kind = db == KS_DB_NAMES ? ((uint8_t *)key.mv_data)[0]
		                         : KS_KIND_DEVICE;
		if (kind == 0 || kind >= KS_KIND_COUNT) {
			rc = KS_EINTEGRITY;
			break;
		}
		rc = ks__get_rec(c->ks, c->txn, kind, id, 0, c->other);
		if (rc == KS_ENOTFOUND)
			rc = KS_EINTEGRITY;
		if (rc == 0 && db == KS_DB_NAMES &&
		    (key.mv_size - 1 != strlen(c->other->m.name) ||
		        memcmp((uint8_t *)key.mv_data + 1, c->other->m.name,
		            key.mv_size - 1) != 0))
			rc = KS_EINTEGRITY;
		if (rc == 0 && db == KS_DB_SERIALS &&
		    (key.mv_size <= KS_ID_LEN ||
		        memcmp(key.mv_data, c->other->m.parent, KS_ID_LEN) !=
		            0 ||
		        key.mv_size - KS_ID_LEN != strlen(c->other->serial) ||
		        memcmp((uint8_t *)key.mv_data + KS_ID_LEN,
		            c->other->serial, key.mv_size - KS_ID_LEN) != 0))
			rc = KS_EINTEGRITY;
		if (rc != 0)
			break;
		c->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : (rc > 0 ? ks__mdb_error(rc) : rc);
}

int
ks__check(struct ks *ks, struct ks_stats *st)
{
	struct check c = { ks, NULL, NULL, NULL, 0 };
	unsigned k;
	int rc;

	c.r = malloc(sizeof(*c.r));
	c.other = malloc(sizeof(*c.other));
	if (c.r == NULL || c.other == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ks__mdb_error(mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &c.txn));
	if (rc != 0)
		goto out;
	rc = check_deks(&c);
	for (k = 1; rc == 0 && k < KS_KIND_COUNT; k++)
		rc = check_kind(&c, k);
	if (rc == 0)
		rc = check_index(&c, KS_DB_NAMES);
	if (rc == 0)
		rc = check_index(&c, KS_DB_SERIALS);
	mdb_txn_abort(c.txn);
	st->checked = c.n;
out:
	if (c.r != NULL)
		sr_wipe(c.r, sizeof(*c.r));
	if (c.other != NULL)
		sr_wipe(c.other, sizeof(*c.other));
	free(c.r);
	free(c.other);
	return rc;
}

int
ks__op_stats(struct ks *ks, struct ks_reply *rep)
{
	struct ks_stats *s = &rep->stats;
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	unsigned k;
	int rc;

	rc = ks__rd_begin(ks, &txn);
	if (rc != 0)
		return rc;
	for (k = 1; k < KS_KIND_COUNT && rc == 0; k++) {
		rc = ks__mdb_error(mdb_stat(txn, ks->dbi[k], &st));
		s->keys[k] = st.ms_entries;
	}
	ks__rd_end(ks, txn);
	if (rc != 0)
		return rc;
	mdb_env_info(ks->env, &info);
	mdb_env_stat(ks->env, &st);
	s->map_size = info.me_mapsize;
	s->map_used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	pthread_mutex_lock(&ks->dek_data_lock);
	s->dek_version = ks->dek.version;
	pthread_mutex_unlock(&ks->dek_data_lock);
	s->dek_encryptions = atomic_load(&ks->dek_uses);
	s->root_kek_version = ks->kek_version;
	s->root_kdk_version = ks->kdk_version;
	ks__vcache_counts(ks->vcache, &s->cache_hits, &s->cache_misses);
	s->commits = atomic_load(&ks->commits);
	s->committed_writes = atomic_load(&ks->committed);
	memcpy(s->appliance_id, ks->appliance_id, sizeof(s->appliance_id));
	return 0;
}

void
ks_version_name(char out[KS_VERSION_NAME_MAX], const char *id, uint32_t version)
{
	snprintf(out, KS_VERSION_NAME_MAX, "%s.v%u", id, (unsigned)version);
}

int
ks_version_parse(const char *text, char id[KS_ID_LEN + 1], uint32_t *version)
{
	const char *dot = strstr(text, ".v");
	size_t n = dot != NULL ? (size_t)(dot - text) : strlen(text);
	unsigned long v = 0;
	char *end;

	if (n == 0 || n > KS_ID_LEN)
		return KS_EREQUEST;
	if (dot != NULL) {
		errno = 0;
		v = strtoul(dot + 2, &end, 10);
		if (dot[2] < '1' || dot[2] > '9' || *end != '\0' ||
		    errno != 0 || v > UINT32_MAX)
			return KS_EREQUEST;
	}
	memcpy(id, text, n);
	id[n] = '\0';
	*version = (uint32_t)v;
	return 0;
}

int
ks_find_named(struct ks *ks, unsigned kind, const char *name,
    struct ks_reply *rep, struct ks_meta *out)
{
	struct ks_request q;
	uint32_t i;
	int rc, found = 0;

	ks_request_init(&q, KS_OP_LIST);
	q.u.list.kind = kind;
	q.u.list.limit = KS_LIST_MAX;
	for (;;) {
		ks_reply_init(rep);
		if ((rc = ks_call(ks, &q, rep)) != 0)
			return rc;
		for (i = 0; i < rep->count; i++) {
			if (strcmp(rep->list[i].name, name) != 0)
				continue;
			*out = rep->list[i];
			found = 1;
			if (out->state == KS_STATE_ACTIVE)
				return 0;
		}
		if (rep->next[0] == '\0')
			return found ? 0 : KS_ENOTFOUND;
		memcpy(q.u.list.after, rep->next, sizeof(q.u.list.after));
	}
}
