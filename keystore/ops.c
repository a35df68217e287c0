/*
 * keystore/ops.c: the operations behind ks_call() that manage keys:
 * dispatch, request validation, creation, lookups and lists, lifecycle
 * transitions and rotation. Using keys (material, devices, signing, API
 * keys) is in use.c; statistics and the consistency walk in check.c.
 *
 * Every request is checked field by field before anything is read or
 * written, as if it had come over a socket. Writes run as jobs of the single
 * writer; reads run here on a read transaction. This file must never return
 * material of a key that is not active and valid, never store a device key
 * or an API key in clear, and never leave a half-made record behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

#define KS_APP_LABEL "strongroom/app/v1"

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

int
ks__str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

int
ks__opt_id_ok(const char *id)
{
	return id[0] == '\0' || ks__id_valid(id);
}

/* The state a reader sees: pre-active turns active at not_before. */
unsigned
ks__effective_state(const struct ks_meta *m, int64_t now)
{
	if (m->state == KS_STATE_PRE_ACTIVE && now >= m->not_before)
		return KS_STATE_ACTIVE;
	return m->state;
}

int
ks_meta_refusal(const struct ks_meta *m, int64_t now)
{
	switch (ks__effective_state(m, now)) {
	case KS_STATE_ACTIVE:
		break;
	case KS_STATE_PRE_ACTIVE:
		return KS_ENOTYET;
	case KS_STATE_SUSPENDED:
		return KS_ESUSPENDED;
	default: /* revoked, destroyed */
		return KS_EREVOKED;
	}
	if (m->expires_at != 0 && now >= m->expires_at)
		return KS_EEXPIRED;
	return 0;
}

int
ks__usable(const struct ks_meta *m, int64_t now)
{
	if (ks__effective_state(m, now) != KS_STATE_ACTIVE)
		return m->state == KS_STATE_PRE_ACTIVE ? KS_EEXPIRED
		                                       : KS_ESTATE;
	if (m->expires_at != 0 && now >= m->expires_at)
		return KS_EEXPIRED;
	return 0;
}

void
ks__put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */
/* ------------------------------------------------------------------ */

/* Reply metadata: the record's, with the key's newest version. */
void
ks__meta_out(
    const struct ks__rec *r, uint32_t newest, int64_t now, struct ks_meta *out)
{
	*out = r->m;
	memcpy(out->serial, r->serial, sizeof(out->serial));
	out->current_version = newest;
	out->state = (uint8_t)ks__effective_state(&r->m, now);
}

/* Read a key (any kind) at @p version; @p newest gets the newest one. */
int
ks__read_key(struct ks *ks, MDB_txn *txn, const char *id, uint32_t version,
    struct ks__rec *r, struct ks__rec *newest)
{
	unsigned kind;
	int rc = KS_ENOTFOUND;

	/* Ids are unique across kinds: the first kind that has it is it. */
	for (kind = 1; kind < KS_KIND_COUNT && rc == KS_ENOTFOUND; kind++)
		rc = ks__get_rec(ks, txn, kind, id, 0, newest);
	if (rc == 0 && r != NULL)
		rc = version == 0
		    ? (*r = *newest, 0)
		    : ks__get_rec(ks, txn, newest->m.kind, id, version, r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Create                                                               */
/* ------------------------------------------------------------------ */

struct create_job {
	struct ks__rec *r;
	uint8_t namekey[1 + KS_NAME_MAX];
	size_t namelen;
};

static int
create_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct create_job *j = arg;
	MDB_val k = { j->namelen, j->namekey }, v = { KS_ID_LEN, j->r->m.id };
	unsigned kind;
	int rc;

	if (j->r->m.parent[0] != '\0') {
		rc = ks__find_kind(ks, txn, j->r->m.parent, &kind);
		if (rc != 0)
			return rc;
	}
	if (j->namelen > 0) {
		rc = ks__mdb_error(mdb_put(
		    txn, ks->dbi[KS_DB_NAMES], &k, &v, MDB_NOOVERWRITE));
		if (rc != 0)
			return rc;
	}
	rc = ks__put_rec(ks, txn, j->r, MDB_NOOVERWRITE);
	if (rc == 0)
		rc = ks__dek_persist(ks, txn);
	return rc;
}

/* Make the material of version r->m.version and seal or store it. */
static int
make_material(struct ks *ks, struct ks__rec *r)
{
	uint8_t buf[KS_MATERIAL_MAX], ctx[KS_ID_LEN + 4];
	struct p11_key *kdk, *sk = NULL;
	char label[48];
	int rc;

	switch (r->m.kind) {
	case KS_KIND_APP:
		/* SP 800-108 from the root KDK; context: id ||
		 * ks__put_be32(ver).
		 */
		memcpy(ctx, r->m.id, KS_ID_LEN);
		ks__put_be32(ctx + KS_ID_LEN, r->m.version);
		rc = ks__root_kdk(ks, r->m.root_version, &kdk);
		if (rc == 0)
			rc = p11_kdf_sp800_108(ks->hsm, kdk, KS_APP_LABEL,
			    strlen(KS_APP_LABEL), ctx, sizeof(ctx), buf, 32);
		if (rc == 0)
			rc = ks__seal_rec(ks, r, buf, 32);
		break;
	case KS_KIND_USER:
	case KS_KIND_DATA:
		rc = ks__random(ks, buf, 32);
		if (rc == 0)
			rc = ks__seal_rec(ks, r, buf, 32);
		break;
	case KS_KIND_SIGNING:
		snprintf(label, sizeof(label), "sr-sign-%s-v%u", r->m.id,
		    r->m.version);
		rc = p11_key_generate(ks->hsm, P11_KEY_EC_P256, label, NULL, 0,
		    0, P11_KEY_TOKEN, &sk);
		if (rc == 0)
			rc = p11_ec_public_get(ks->hsm, sk, r->sealed);
		if (rc == 0)
			r->sealed_len = 65;
		else if (sk != NULL)
			p11_key_destroy(ks->hsm, sk);
		p11_key_free(sk);
		break;
	default:
		rc = KS_EREQUEST;
	}
	sr_wipe(buf, sizeof(buf));
	return rc;
}

/* Undo what make_material put in the HSM when the record failed. */
static void
unmake_material(struct ks *ks, const struct ks__rec *r)
{
	struct p11_key *sk;
	char label[48];

	if (r->m.kind != KS_KIND_SIGNING)
		return;
	snprintf(label, sizeof(label), "sr-sign-%s-v%u", r->m.id, r->m.version);
	if (p11_key_find(ks->hsm, P11_KEY_EC_P256, label, NULL, 0, &sk) == 0) {
		p11_key_destroy(ks->hsm, sk);
		p11_key_free(sk);
	}
}

void
ks__rec_init(struct ks *ks, struct ks__rec *r, unsigned kind, int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->m.kind = (uint8_t)kind;
	r->m.version = 1;
	r->m.record_version = 1;
	r->m.created_at = r->m.updated_at = now;
	r->m.not_before = now;
	r->m.state = KS_STATE_ACTIVE;
	memcpy(r->m.origin, ks->appliance_id, sizeof(r->m.origin));
	r->mac_version = ks->kdk_version;
	r->m.root_version = ks->kdk_version;
}

static int
op_create(struct ks *ks, const struct ks_create_req *q, struct ks_reply *rep)
{
	struct create_job j;
	struct ks__rec *r;
	int64_t now = ks__now();
	int rc;

	if ((q->kind != KS_KIND_APP && q->kind != KS_KIND_USER &&
	        q->kind != KS_KIND_SIGNING && q->kind != KS_KIND_DATA) ||
	    !ks__str_ok(q->parent, sizeof(q->parent)) ||
	    !ks__opt_id_ok(q->parent) ||
	    !ks__str_ok(q->name, sizeof(q->name)) ||
	    !ks__str_ok(q->scope, sizeof(q->scope)) ||
	    (q->scope[0] != '\0' && q->scope[0] != '{') ||
	    !ks__cidrs_ok(q->cidrs))
		return KS_EREQUEST;
	if ((q->kind == KS_KIND_APP || q->kind == KS_KIND_SIGNING) &&
	    q->name[0] == '\0')
		return KS_EREQUEST;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	ks__rec_init(ks, r, q->kind, now);
	if (q->not_before > now) {
		r->m.not_before = q->not_before;
		r->m.state = KS_STATE_PRE_ACTIVE;
	}
	r->m.expires_at = q->expires_at;
	/* Apps are valid one year at most. */
	if (q->kind == KS_KIND_APP && r->m.expires_at == 0)
		r->m.expires_at = r->m.not_before + KS_YEAR;
	rc = KS_EREQUEST;
	if ((q->kind == KS_KIND_APP &&
	        r->m.expires_at > r->m.not_before + KS_YEAR) ||
	    (r->m.expires_at != 0 && r->m.expires_at <= r->m.not_before))
		goto out;
	memcpy(r->m.parent, q->parent, sizeof(r->m.parent));
	memcpy(r->m.name, q->name, sizeof(r->m.name));
	memcpy(r->m.scope, q->scope, sizeof(r->m.scope));
	memcpy(r->m.cidrs, q->cidrs, sizeof(r->m.cidrs));
	rc = ks__new_id(ks, r->m.id);
	if (rc == 0)
		rc = make_material(ks, r);
	if (rc != 0)
		goto out;
	memset(&j, 0, sizeof(j));
	j.r = r;
	if (r->m.name[0] != '\0' &&
	    q->kind != KS_KIND_DATA) { /* app, user, signing: unique */
		j.namekey[0] = q->kind;
		j.namelen = 1 + strlen(r->m.name);
		memcpy(j.namekey + 1, r->m.name, j.namelen - 1);
	}
	rc = ks__write(ks, create_job, &j);
	if (rc != 0)
		unmake_material(ks, r);
	else
		ks__meta_out(r, 1, now, &rep->meta);
out:
	sr_wipe(r, sizeof(*r));
	free(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Get, list, expiring                                                  */
/* ------------------------------------------------------------------ */

static int
op_get(struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep)
{
	struct ks__two_recs *t;
	MDB_txn *txn;
	int rc;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id))
		return KS_EREQUEST;
	t = malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		rc =
		    ks__read_key(ks, txn, q->id, q->version, &t->r, &t->newest);
		ks__rd_end(ks, txn);
	}
	if (rc == 0) {
		ks__meta_out(&t->r, t->newest.m.version, ks__now(), &rep->meta);
		ks__usage_merge(ks, &rep->meta);
	}
	sr_wipe(t, sizeof(*t));
	free(t);
	return rc;
}

/*
 * Walk the newest version of every key of @p kind after @p after, calling
 * @p fn; stops when fn returns non-zero (1: page full, <0: error).
 */
typedef int walk_fn(struct ks__rec *r, void *arg);

static int
walk_newest(struct ks *ks, MDB_txn *txn, unsigned kind, const char *after,
    walk_fn *fn, void *arg)
{
	uint8_t kb[KS_ID_LEN + 4];
	MDB_val key = { sizeof(kb), kb }, val, nkey, nval;
	MDB_cursor *cur;
	struct ks__rec *r;
	int rc, more;

	r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rc = mdb_cursor_open(txn, ks->dbi[kind], &cur);
	if (rc != 0) {
		free(r);
		return ks__mdb_error(rc);
	}
	if (after != NULL && after[0] != '\0') {
		ks__reckey(kb, after, UINT32_MAX);
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	}
	while (rc == 0) {
		nkey = key;
		nval = val;
		more = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
		/* The last key of an id is its newest version. */
		if (more == 0 && key.mv_size == nkey.mv_size &&
		    memcmp(key.mv_data, nkey.mv_data, KS_ID_LEN) == 0) {
			rc = 0;
			continue;
		}
		rc = ks__rec_decode(ks, kind, &nkey, &nval, r);
		if (rc == 0)
			rc = fn(r, arg);
		if (rc != 0)
			break;
		rc = more;
	}
	mdb_cursor_close(cur);
	sr_wipe(r, sizeof(*r));
	free(r);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc > 0 ? 0 : rc;
}

struct page {
	struct ks *ks;
	struct ks_reply *rep;
	const char *parent;
	uint32_t limit;
	int64_t now, horizon; /* expiring: expires_at in (now, horizon] */
	int expiring;
};

static int
page_add(struct ks__rec *r, void *arg)
{
	struct page *p = arg;
	struct ks_reply *rep = p->rep;

	if (p->parent != NULL && p->parent[0] != '\0' &&
	    strcmp(r->m.parent, p->parent) != 0)
		return 0;
	if (p->expiring &&
	    (r->m.expires_at == 0 || r->m.expires_at <= p->now ||
	        r->m.expires_at > p->horizon ||
	        r->m.state == KS_STATE_REVOKED ||
	        r->m.state == KS_STATE_DESTROYED))
		return 0;
	if (rep->count == p->limit) {
		/* One more exists: the cursor is the last one given. */
		memcpy(rep->next, rep->list[rep->count - 1].id, KS_ID_LEN + 1);
		return 1;
	}
	ks__meta_out(r, r->m.version, p->now, &rep->list[rep->count]);
	ks__usage_merge(p->ks, &rep->list[rep->count++]);
	return 0;
}

static int
op_list(struct ks *ks, const struct ks_list_req *q, struct ks_reply *rep)
{
	struct page p = { ks, rep, q->parent, q->limit, ks__now(), 0, 0 };
	MDB_txn *txn;
	int rc;

	if (q->kind == 0 || q->kind >= KS_KIND_COUNT ||
	    !ks__str_ok(q->parent, sizeof(q->parent)) ||
	    !ks__opt_id_ok(q->parent) ||
	    !ks__str_ok(q->after, sizeof(q->after)) ||
	    !ks__opt_id_ok(q->after) || q->limit == 0 || q->limit > KS_LIST_MAX)
		return KS_EREQUEST;
	rc = ks__rd_begin(ks, &txn);
	if (rc != 0)
		return rc;
	rc = walk_newest(ks, txn, q->kind, q->after, page_add, &p);
	ks__rd_end(ks, txn);
	return rc;
}

static int
op_expiring(
    struct ks *ks, const struct ks_expiring_req *q, struct ks_reply *rep)
{
	struct page p = { ks, rep, NULL, q->limit, ks__now(), 0, 1 };
	const char *resume = q->after;
	MDB_txn *txn;
	unsigned kind;
	int rc = 0;

	if (q->within <= 0 || q->within > 10 * KS_YEAR ||
	    !ks__str_ok(q->after, sizeof(q->after)) ||
	    !ks__opt_id_ok(q->after) || q->limit == 0 || q->limit > KS_LIST_MAX)
		return KS_EREQUEST;
	p.horizon = p.now + q->within;
	rc = ks__rd_begin(ks, &txn);
	if (rc != 0)
		return rc;
	/* Kinds in order, ids in order; `after` resumes inside its kind. */
	kind = 1;
	if (q->after[0] != '\0') {
		rc = ks__find_kind(ks, txn, q->after, &kind);
		if (rc != 0)
			goto out;
	}
	for (; kind < KS_KIND_COUNT && rep->next[0] == '\0'; kind++) {
		rc = walk_newest(ks, txn, kind, resume, page_add, &p);
		resume = NULL;
		if (rc != 0)
			break;
	}
out:
	ks__rd_end(ks, txn);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

struct state_job {
	const char *id;
	uint32_t op;
	const struct ks_revoke_req *revoke;
	struct ks__rec r;      /* scratch */
	struct ks__rec newest; /* after the change, for the reply */
	unsigned kind;
	unsigned to; /* the new state */
	int64_t now;
};

static int
transition(uint32_t op, unsigned from, int64_t now, const struct ks_meta *m,
    unsigned *to)
{
	switch (op) {
	case KS_OP_SUSPEND:
		if (from != KS_STATE_ACTIVE && from != KS_STATE_PRE_ACTIVE)
			return KS_ESTATE;
		*to = KS_STATE_SUSPENDED;
		return 0;
	case KS_OP_RESUME:
		if (from != KS_STATE_SUSPENDED)
			return KS_ESTATE;
		*to = now >= m->not_before ? KS_STATE_ACTIVE
		                           : KS_STATE_PRE_ACTIVE;
		return 0;
	case KS_OP_REVOKE:
		if (from != KS_STATE_ACTIVE && from != KS_STATE_PRE_ACTIVE &&
		    from != KS_STATE_SUSPENDED)
			return KS_ESTATE;
		*to = KS_STATE_REVOKED;
		return 0;
	case KS_OP_DESTROY:
		/* An active key is revoked or suspended first. */
		if (from == KS_STATE_ACTIVE || from == KS_STATE_DESTROYED)
			return KS_ESTATE;
		*to = KS_STATE_DESTROYED;
		return 0;
	default:
		return KS_EREQUEST;
	}
}

/* One version of the key into its new state. */
static void
state_change(struct ks__rec *r, void *arg)
{
	struct state_job *j = arg;

	r->m.state = (uint8_t)j->to;
	r->m.updated_at = j->now;
	r->m.record_version++;
	if (j->op == KS_OP_REVOKE) {
		memcpy(r->m.reason, j->revoke->reason, sizeof(r->m.reason));
		if (j->revoke->compromised)
			r->m.flags |= KS_FLAG_COMPROMISED;
	}
	if (j->op == KS_OP_DESTROY && j->kind != KS_KIND_SIGNING) {
		/* Crypto-shred: the sealed material goes. */
		sr_wipe(r->sealed, sizeof(r->sealed));
		r->sealed_len = 0;
		r->m.dek_version = 0;
	}
}

static int
state_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct state_job *j = arg;
	int rc;

	j->now = ks__now();
	rc = ks__find_kind(ks, txn, j->id, &j->kind);
	if (rc == 0)
		rc = ks__get_rec(ks, txn, j->kind, j->id, 0, &j->newest);
	if (rc == 0)
		rc =
		    transition(j->op, ks__effective_state(&j->newest.m, j->now),
		        j->now, &j->newest.m, &j->to);
	if (rc != 0)
		return rc;
	return ks__rewrite_versions(ks, txn, j->kind, j->id,
	    j->newest.m.version, state_change, j, &j->r, &j->newest);
}

static int
op_state(struct ks *ks, uint32_t op, const char *id,
    const struct ks_revoke_req *revoke, struct ks_reply *rep)
{
	struct state_job *j;
	struct p11_key *sk;
	char label[48];
	uint32_t v;
	int rc;

	if (!ks__str_ok(id, KS_ID_LEN + 1) || !ks__id_valid(id))
		return KS_EREQUEST;
	if (revoke != NULL &&
	    (!ks__str_ok(revoke->reason, sizeof(revoke->reason)) ||
	        revoke->reason[0] == '\0' || revoke->compromised > 1))
		return KS_EREQUEST;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->id = id;
	j->op = op;
	j->revoke = revoke;
	rc = ks__write(ks, state_job, j);
	if (rc == 0) {
		ks__meta_out(
		    &j->newest, j->newest.m.version, ks__now(), &rep->meta);
		/* Effective at once for this process's verifiers. */
		if (j->kind == KS_KIND_APIKEY)
			ks__vcache_drop(ks->vcache, id);
		/* A destroyed signing key leaves the HSM too. */
		for (v = 1; op == KS_OP_DESTROY && j->kind == KS_KIND_SIGNING &&
		     v <= j->newest.m.version;
		     v++) {
			snprintf(label, sizeof(label), "sr-sign-%s-v%u", id, v);
			if (p11_key_find(ks->hsm, P11_KEY_EC_P256, label, NULL,
			        0, &sk) == 0) {
				p11_key_destroy(ks->hsm, sk);
				p11_key_free(sk);
			}
		}
	}
	sr_wipe(j, sizeof(*j));
	free(j);
	return rc;
}

struct rotate_job {
	struct ks__rec *next; /* the new version, sealed */
	struct ks__rec scratch;
};

static int
rotate_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct rotate_job *j = arg;
	struct ks__rec *n = j->next;
	uint32_t v;
	int rc;

	/* The key as committed now, not as op_rotate read it: a rotation or
	 * a revocation that committed in between wins (else a revoked key
	 * would come back active at its new version). */
	rc = ks__get_rec(ks, txn, n->m.kind, n->m.id, 0, &j->scratch);
	if (rc != 0)
		return rc;
	if (j->scratch.m.version + 1 != n->m.version)
		return KS_ESTATE;
	rc = ks__usable(&j->scratch.m, ks__now());
	if (rc != 0)
		return rc;
	/* Someone rotated first: the new version exists already. */
	rc = ks__put_rec(ks, txn, n, MDB_NOOVERWRITE);
	if (rc == KS_EEXISTS)
		return KS_ESTATE;
	if (rc != 0)
		return rc;
	for (v = 1; v < n->m.version; v++) {
		rc = ks__get_rec(ks, txn, n->m.kind, n->m.id, v, &j->scratch);
		if (rc == KS_ENOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		if (j->scratch.m.flags & KS_FLAG_DECRYPT_ONLY)
			continue;
		j->scratch.m.flags |= KS_FLAG_DECRYPT_ONLY;
		j->scratch.m.record_version++;
		j->scratch.m.updated_at = n->m.updated_at;
		j->scratch.mac_version = ks->kdk_version;
		rc = ks__put_rec(ks, txn, &j->scratch, 0);
		if (rc != 0)
			return rc;
	}
	return ks__dek_persist(ks, txn);
}

/* A signing key's version is made in the HSM as "sr-sign-<id>-v<n>": two
 * rotations racing would make that label twice, and neither could use it.
 * They run one at a time, each re-reading the key under this lock. */
static pthread_mutex_t sign_rotate_lock = PTHREAD_MUTEX_INITIALIZER;

static int
op_rotate(struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep)
{
	struct ks__two_recs *t;
	struct rotate_job *j;
	MDB_txn *txn;
	int64_t now = ks__now();
	uint32_t seen;
	int rc, locked = 0;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->version != 0)
		return KS_EREQUEST;
	t = calloc(1, sizeof(*t));
	j = calloc(1, sizeof(*j));
	if (t == NULL || j == NULL) {
		free(t);
		free(j);
		return -ENOMEM;
	}
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		rc = ks__read_key(ks, txn, q->id, 0, NULL, &t->newest);
		ks__rd_end(ks, txn);
	}
	if (rc == 0 &&
	    (t->newest.m.kind == KS_KIND_DEVICE ||
	        t->newest.m.kind == KS_KIND_APIKEY))
		rc = KS_EREQUEST;
	if (rc == 0 && t->newest.m.kind == KS_KIND_SIGNING) {
		pthread_mutex_lock(&sign_rotate_lock);
		locked = 1;
		seen = t->newest.m.version;
		rc = ks__rd_begin(ks, &txn);
		if (rc == 0) {
			rc = ks__read_key(ks, txn, q->id, 0, NULL, &t->newest);
			ks__rd_end(ks, txn);
		}
		if (rc == 0 && t->newest.m.version != seen)
			rc = KS_ESTATE;
	}
	if (rc == 0)
		rc = ks__usable(&t->newest.m, now);
	if (rc == 0) {
		t->r = t->newest;
		t->r.m.version++;
		t->r.m.record_version = 1;
		t->r.m.created_at = t->r.m.updated_at = now;
		t->r.m.flags &= ~KS_FLAG_DECRYPT_ONLY;
		t->r.m.root_version = ks->kdk_version;
		t->r.mac_version = ks->kdk_version;
		t->r.sealed_len = 0;
		rc = make_material(ks, &t->r);
	}
	if (rc == 0) {
		j->next = &t->r;
		rc = ks__write(ks, rotate_job, j);
		if (rc != 0)
			unmake_material(ks, &t->r);
	}
	if (locked)
		pthread_mutex_unlock(&sign_rotate_lock);
	if (rc == 0)
		ks__meta_out(&t->r, t->r.m.version, now, &rep->meta);
	sr_wipe(t, sizeof(*t));
	sr_wipe(j, sizeof(*j));
	free(t);
	free(j);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Statistics and dispatch                                              */
/* ------------------------------------------------------------------ */

int
ks__op(struct ks *ks, const struct ks_request *req, struct ks_reply *rep)
{
	switch (req->op) {
	case KS_OP_CREATE:
		return op_create(ks, &req->u.create, rep);
	case KS_OP_GET:
		return op_get(ks, &req->u.key, rep);
	case KS_OP_LIST:
		return op_list(ks, &req->u.list, rep);
	case KS_OP_ROTATE:
		return op_rotate(ks, &req->u.key, rep);
	case KS_OP_SUSPEND:
	case KS_OP_RESUME:
	case KS_OP_DESTROY:
		if (req->u.key.version != 0)
			return KS_EREQUEST;
		return op_state(ks, req->op, req->u.key.id, NULL, rep);
	case KS_OP_REVOKE:
		return op_state(
		    ks, req->op, req->u.revoke.id, &req->u.revoke, rep);
	case KS_OP_EXPIRING:
		return op_expiring(ks, &req->u.expiring, rep);
	case KS_OP_MATERIAL:
		return ks__op_material(ks, &req->u.key, rep);
	case KS_OP_DEVICE_KEY:
		return ks__op_device(ks, &req->u.device, rep);
	case KS_OP_APIKEY_CREATE:
		return ks__op_apikey_create(ks, &req->u.apikey_create, rep);
	case KS_OP_APIKEY_VERIFY:
		return ks__op_apikey_verify(ks, &req->u.apikey_verify, rep);
	case KS_OP_ROOT_ROTATE:
		return ks__root_rotate(ks);
	case KS_OP_STATS:
		return ks__op_stats(ks, rep);
	case KS_OP_SIGN:
		return ks__op_sign(ks, &req->u.sign, rep);
	case KS_OP_CHECK:
		return ks__check(ks, &rep->stats);
	case KS_OP_PUBLIC:
		return ks__op_public(ks, &req->u.key, rep);
	default:
		return ks__op_cred(ks, req, rep);
	}
}
