/*
 * keystore/update.c: KS_OP_UPDATE, a key's attributes changed in place
 * (an app's name, scope, bound networks and expiry), and the check of
 * bound networks that creation shares with it.
 *
 * The change is one write job: every version of the key is read (its MAC
 * checked), changed and written back with a new MAC, and the names index
 * follows a new name, all in the writer's one transaction, so a reader
 * sees the key wholly before or wholly after. After the commit, cached
 * verifications of the key's API keys are dropped. This file must never
 * change a key's state, owner, material or versions, never touch a
 * revoked or destroyed key, and never leave a name pointing at the wrong
 * key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

int
ks__cidrs_ok(const struct ks_cidr *c)
{
	unsigned i;

	for (i = 0; i < KS_CIDR_MAX; i++) {
		if (c[i].family == 0)
			continue;
		if ((c[i].family != 4 || c[i].prefix > 32) &&
		    (c[i].family != 6 || c[i].prefix > 128))
			return 0;
	}
	return 1;
}

struct update_job {
	const struct ks_update_req *q;
	int64_t now;
	struct ks__rec r;      /* scratch: each version in turn */
	struct ks__rec newest; /* after the change, for the reply */
};

/* The names index: @p name of @p kind now names @p id, and @p old no
 * longer does (when it named this key). */
static int
rename_key(struct ks *ks, MDB_txn *txn, unsigned kind, const char *id,
    const char *old, const char *name)
{
	uint8_t kb[1 + KS_NAME_MAX];
	MDB_val k = { 1 + strlen(name), kb }, v = { KS_ID_LEN, (void *)id };
	int rc;

	kb[0] = (uint8_t)kind;
	memcpy(kb + 1, name, k.mv_size - 1);
	rc = ks__mdb_error(
	    mdb_put(txn, ks->dbi[KS_DB_NAMES], &k, &v, MDB_NOOVERWRITE));
	if (rc != 0 || old[0] == '\0')
		return rc;
	k.mv_size = 1 + strlen(old);
	memcpy(kb + 1, old, k.mv_size - 1);
	rc = mdb_get(txn, ks->dbi[KS_DB_NAMES], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return ks__mdb_error(rc);
	if (v.mv_size != KS_ID_LEN || memcmp(v.mv_data, id, KS_ID_LEN) != 0)
		return 0; /* someone else's: left alone */
	return ks__mdb_error(mdb_del(txn, ks->dbi[KS_DB_NAMES], &k, NULL));
}

/* The requested fields onto one version's record. */
static void
apply(const struct ks_update_req *q, int64_t now, struct ks__rec *r)
{
	if (q->what & KS_UPDATE_NAME)
		memcpy(r->m.name, q->name, sizeof(r->m.name));
	if (q->what & KS_UPDATE_SCOPE)
		memcpy(r->m.scope, q->scope, sizeof(r->m.scope));
	if (q->what & KS_UPDATE_CIDRS)
		memcpy(r->m.cidrs, q->cidrs, sizeof(r->m.cidrs));
	if (q->what & KS_UPDATE_EXPIRES)
		r->m.expires_at = q->expires_at;
	r->m.updated_at = now;
	r->m.record_version++;
}

static void
apply_job(struct ks__rec *r, void *arg)
{
	struct update_job *j = arg;

	apply(j->q, j->now, r);
}

static int
update_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct update_job *j = arg;
	const struct ks_update_req *q = j->q;
	int64_t start;
	unsigned kind;
	int rc;

	rc = ks__find_kind(ks, txn, q->id, &kind);
	if (rc == 0 && kind != q->kind)
		rc = KS_ENOTFOUND;
	if (rc == 0)
		rc = ks__get_rec(ks, txn, kind, q->id, 0, &j->newest);
	if (rc != 0)
		return rc;
	if (j->newest.m.state == KS_STATE_REVOKED ||
	    j->newest.m.state == KS_STATE_DESTROYED ||
	    (q->record_version != 0 &&
	        q->record_version != j->newest.m.record_version))
		return KS_ESTATE;
	/* Validity: after now and not_before; an app's, one year at most
	 * from whichever is later (create's rule, from the change). */
	start =
	    j->newest.m.not_before > j->now ? j->newest.m.not_before : j->now;
	if ((q->what & KS_UPDATE_EXPIRES) &&
	    (q->expires_at <= start ||
	        (kind == KS_KIND_APP && q->expires_at > start + KS_YEAR)))
		return KS_EREQUEST;
	if ((q->what & KS_UPDATE_NAME) &&
	    strcmp(q->name, j->newest.m.name) != 0) {
		rc =
		    rename_key(ks, txn, kind, q->id, j->newest.m.name, q->name);
		if (rc != 0)
			return rc;
	}
	return ks__rewrite_versions(ks, txn, kind, q->id, j->newest.m.version,
	    apply_job, j, &j->r, &j->newest);
}

int
ks__op_update(
    struct ks *ks, const struct ks_update_req *q, struct ks_reply *rep)
{
	struct update_job *j;
	int rc;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->kind != KS_KIND_APP || q->what == 0 ||
	    (q->what & ~KS_UPDATE_ALL) != 0 ||
	    !ks__str_ok(q->name, sizeof(q->name)) ||
	    !ks__str_ok(q->scope, sizeof(q->scope)) || !ks__cidrs_ok(q->cidrs))
		return KS_EREQUEST;
	if (((q->what & KS_UPDATE_NAME) && q->name[0] == '\0') ||
	    ((q->what & KS_UPDATE_SCOPE) && q->scope[0] != '\0' &&
	        q->scope[0] != '{'))
		return KS_EREQUEST;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -ENOMEM;
	j->q = q;
	j->now = ks__now();
	rc = ks__write(ks, update_job, j);
	if (rc == 0) {
		ks__meta_out(
		    &j->newest, j->newest.m.version, ks__now(), &rep->meta);
		/* Cached verdicts of its API keys carry the old networks and
		 * scope: the next verification of each reads the new ones. */
		ks__vcache_drop_owner(ks->vcache, q->id);
	}
	sr_wipe(j, sizeof(*j));
	free(j);
	return rc;
}
