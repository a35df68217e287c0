/*
 * keystore/ops.c: the operations behind ks_call(): request validation,
 * creation and derivation of keys, lifecycle transitions, lookups, API keys
 * and signing.
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

#define KS_YEAR (365LL * 24 * 3600)
#define KS_APP_LABEL "strongroom/app/v1"
#define KS_DEVICE_LABEL "strongroom/device/v1"

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

static int
str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int
opt_id_ok(const char *id)
{
	return id[0] == '\0' || ks__id_valid(id);
}

static int
cidrs_ok(const struct ks_cidr *c)
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

static int
serial_ok(const char *s)
{
	size_t n = strnlen(s, KS_SERIAL_MAX);
	size_t i;

	if (n == 0 || n >= KS_SERIAL_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* The state a reader sees: pre-active turns active at not_before. */
static unsigned
effective_state(const struct ks_meta *m, int64_t now)
{
	if (m->state == KS_STATE_PRE_ACTIVE && now >= m->not_before)
		return KS_STATE_ACTIVE;
	return m->state;
}

static int
usable(const struct ks_meta *m, int64_t now)
{
	if (effective_state(m, now) != KS_STATE_ACTIVE)
		return m->state == KS_STATE_PRE_ACTIVE ? KS_EEXPIRED
		                                       : KS_ESTATE;
	if (m->expires_at != 0 && now >= m->expires_at)
		return KS_EEXPIRED;
	return 0;
}

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */
/* ------------------------------------------------------------------ */

static int
rd_begin(struct ks *ks, MDB_txn **txn)
{
	return ks__rd_begin(ks, txn);
}

static void
rd_end(struct ks *ks, MDB_txn *txn)
{
	ks__rd_end(ks, txn);
}

/* Reply metadata: the record's, with the key's newest version. */
static void
meta_out(
    const struct ks__rec *r, uint32_t newest, int64_t now, struct ks_meta *out)
{
	*out = r->m;
	out->current_version = newest;
	out->state = (uint8_t)effective_state(&r->m, now);
}

/* Read a key (any kind) at @p version; @p newest gets the newest one. */
static int
read_key(struct ks *ks, MDB_txn *txn, const char *id, uint32_t version,
    struct ks__rec *r, struct ks__rec *newest)
{
	unsigned kind;
	int rc;

	rc = ks__find_kind(ks, txn, id, &kind);
	if (rc != 0)
		return rc;
	rc = ks__get_rec(ks, txn, kind, id, 0, newest);
	if (rc == 0 && r != NULL)
		rc = version == 0 ? (*r = *newest, 0)
		                  : ks__get_rec(ks, txn, kind, id, version, r);
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
		/* SP 800-108 from the root KDK; context: id || be32(ver). */
		memcpy(ctx, r->m.id, KS_ID_LEN);
		be32(ctx + KS_ID_LEN, r->m.version);
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

static void
rec_init(struct ks *ks, struct ks__rec *r, unsigned kind, int64_t now)
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
	    !str_ok(q->parent, sizeof(q->parent)) || !opt_id_ok(q->parent) ||
	    !str_ok(q->name, sizeof(q->name)) ||
	    !str_ok(q->scope, sizeof(q->scope)) ||
	    (q->scope[0] != '\0' && q->scope[0] != '{') || !cidrs_ok(q->cidrs))
		return KS_EREQUEST;
	if ((q->kind == KS_KIND_APP || q->kind == KS_KIND_SIGNING) &&
	    q->name[0] == '\0')
		return KS_EREQUEST;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rec_init(ks, r, q->kind, now);
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
	    (q->kind == KS_KIND_APP || q->kind == KS_KIND_SIGNING)) {
		j.namekey[0] = q->kind;
		j.namelen = 1 + strlen(r->m.name);
		memcpy(j.namekey + 1, r->m.name, j.namelen - 1);
	}
	rc = ks__write(ks, create_job, &j);
	if (rc != 0)
		unmake_material(ks, r);
	else
		meta_out(r, 1, now, &rep->meta);
out:
	sr_wipe(r, sizeof(*r));
	free(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Get, list, expiring                                                  */
/* ------------------------------------------------------------------ */

struct two_recs {
	struct ks__rec r, newest;
};

static int
op_get(struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep)
{
	struct two_recs *t;
	MDB_txn *txn;
	int rc;

	if (!str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id))
		return KS_EREQUEST;
	t = malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = rd_begin(ks, &txn);
	if (rc == 0) {
		rc = read_key(ks, txn, q->id, q->version, &t->r, &t->newest);
		rd_end(ks, txn);
	}
	if (rc == 0)
		meta_out(&t->r, t->newest.m.version, ks__now(), &rep->meta);
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
	meta_out(r, r->m.version, p->now, &rep->list[rep->count++]);
	return 0;
}

static int
op_list(struct ks *ks, const struct ks_list_req *q, struct ks_reply *rep)
{
	struct page p = { rep, q->parent, q->limit, ks__now(), 0, 0 };
	MDB_txn *txn;
	int rc;

	if (q->kind == 0 || q->kind >= KS_KIND_COUNT ||
	    !str_ok(q->parent, sizeof(q->parent)) || !opt_id_ok(q->parent) ||
	    !str_ok(q->after, sizeof(q->after)) || !opt_id_ok(q->after) ||
	    q->limit == 0 || q->limit > KS_LIST_MAX)
		return KS_EREQUEST;
	rc = rd_begin(ks, &txn);
	if (rc != 0)
		return rc;
	rc = walk_newest(ks, txn, q->kind, q->after, page_add, &p);
	rd_end(ks, txn);
	return rc;
}

static int
op_expiring(
    struct ks *ks, const struct ks_expiring_req *q, struct ks_reply *rep)
{
	struct page p = { rep, NULL, q->limit, ks__now(), 0, 1 };
	const char *resume = q->after;
	MDB_txn *txn;
	unsigned kind;
	int rc = 0;

	if (q->within <= 0 || q->within > 10 * KS_YEAR ||
	    !str_ok(q->after, sizeof(q->after)) || !opt_id_ok(q->after) ||
	    q->limit == 0 || q->limit > KS_LIST_MAX)
		return KS_EREQUEST;
	p.horizon = p.now + q->within;
	rc = rd_begin(ks, &txn);
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
	rd_end(ks, txn);
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

static int
state_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct state_job *j = arg;
	int64_t now = ks__now();
	uint32_t v, newest;
	unsigned to;
	int rc;

	rc = ks__find_kind(ks, txn, j->id, &j->kind);
	if (rc == 0)
		rc = ks__get_rec(ks, txn, j->kind, j->id, 0, &j->newest);
	if (rc == 0)
		rc = transition(j->op, effective_state(&j->newest.m, now), now,
		    &j->newest.m, &to);
	if (rc != 0)
		return rc;
	newest = j->newest.m.version;
	for (v = 1; v <= newest; v++) {
		rc = ks__get_rec(ks, txn, j->kind, j->id, v, &j->r);
		if (rc == KS_ENOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		j->r.m.state = (uint8_t)to;
		j->r.m.updated_at = now;
		j->r.m.record_version++;
		j->r.mac_version = ks->kdk_version;
		if (j->op == KS_OP_REVOKE) {
			memcpy(j->r.m.reason, j->revoke->reason,
			    sizeof(j->r.m.reason));
			if (j->revoke->compromised)
				j->r.m.flags |= KS_FLAG_COMPROMISED;
		}
		if (j->op == KS_OP_DESTROY && j->kind != KS_KIND_SIGNING) {
			/* Crypto-shred: the sealed material goes. */
			sr_wipe(j->r.sealed, sizeof(j->r.sealed));
			j->r.sealed_len = 0;
			j->r.m.dek_version = 0;
		}
		rc = ks__put_rec(ks, txn, &j->r, 0);
		if (rc != 0)
			return rc;
		if (v == newest)
			j->newest = j->r;
	}
	return 0;
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

	if (!str_ok(id, KS_ID_LEN + 1) || !ks__id_valid(id))
		return KS_EREQUEST;
	if (revoke != NULL &&
	    (!str_ok(revoke->reason, sizeof(revoke->reason)) ||
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
		meta_out(
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
	rc = usable(&j->scratch.m, ks__now());
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
	struct two_recs *t;
	struct rotate_job *j;
	MDB_txn *txn;
	int64_t now = ks__now();
	uint32_t seen;
	int rc, locked = 0;

	if (!str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->version != 0)
		return KS_EREQUEST;
	t = calloc(1, sizeof(*t));
	j = calloc(1, sizeof(*j));
	if (t == NULL || j == NULL) {
		free(t);
		free(j);
		return -ENOMEM;
	}
	rc = rd_begin(ks, &txn);
	if (rc == 0) {
		rc = read_key(ks, txn, q->id, 0, NULL, &t->newest);
		rd_end(ks, txn);
	}
	if (rc == 0 &&
	    (t->newest.m.kind == KS_KIND_DEVICE ||
	        t->newest.m.kind == KS_KIND_APIKEY))
		rc = KS_EREQUEST;
	if (rc == 0 && t->newest.m.kind == KS_KIND_SIGNING) {
		pthread_mutex_lock(&sign_rotate_lock);
		locked = 1;
		seen = t->newest.m.version;
		rc = rd_begin(ks, &txn);
		if (rc == 0) {
			rc = read_key(ks, txn, q->id, 0, NULL, &t->newest);
			rd_end(ks, txn);
		}
		if (rc == 0 && t->newest.m.version != seen)
			rc = KS_ESTATE;
	}
	if (rc == 0)
		rc = usable(&t->newest.m, now);
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
		meta_out(&t->r, t->r.m.version, now, &rep->meta);
	sr_wipe(t, sizeof(*t));
	sr_wipe(j, sizeof(*j));
	free(t);
	free(j);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Material, devices, signing                                           */
/* ------------------------------------------------------------------ */

static int
op_material(struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep)
{
	struct two_recs *t;
	MDB_txn *txn;
	int64_t now = ks__now();
	size_t n = 0;
	int rc;

	if (!str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id))
		return KS_EREQUEST;
	t = malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = rd_begin(ks, &txn);
	if (rc == 0) {
		rc = read_key(ks, txn, q->id, q->version, &t->r, &t->newest);
		rd_end(ks, txn);
	}
	if (rc == 0 && t->r.m.kind != KS_KIND_APP &&
	    t->r.m.kind != KS_KIND_USER && t->r.m.kind != KS_KIND_DATA)
		rc = KS_EREQUEST;
	/* Older versions (decrypt-only) share the key's state and times. */
	if (rc == 0)
		rc = usable(&t->r.m, now);
	if (rc == 0)
		rc = ks__open_rec(ks, &t->r, rep->material, &n);
	if (rc == 0) {
		rep->material_len = (uint32_t)n;
		meta_out(&t->r, t->newest.m.version, now, &rep->meta);
	}
	sr_wipe(t, sizeof(*t));
	free(t);
	return rc;
}

struct device_job {
	struct ks__rec r;
	uint8_t skey[KS_ID_LEN + KS_SERIAL_MAX];
	size_t sklen;
	char existing[KS_ID_LEN + 1];
};

static int
device_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct device_job *j = arg;
	MDB_val k = { j->sklen, j->skey }, v = { KS_ID_LEN, j->r.m.id };
	int rc;

	rc = mdb_put(txn, ks->dbi[KS_DB_SERIALS], &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		/* Enrolled by a racing request: that one is the key. */
		if (v.mv_size != KS_ID_LEN)
			return KS_EINTEGRITY;
		memcpy(j->existing, v.mv_data, KS_ID_LEN);
		j->existing[KS_ID_LEN] = '\0';
		return 0;
	}
	if (rc != 0)
		return ks__mdb_error(rc);
	return ks__put_rec(ks, txn, &j->r, MDB_NOOVERWRITE);
}

static int
op_device(struct ks *ks, const struct ks_device_req *q, struct ks_reply *rep)
{
	uint8_t ctx[KS_ID_LEN + 1 + KS_SERIAL_MAX];
	struct device_job *j;
	struct ks__rec *app;
	struct p11_key *kdk;
	MDB_val k, v;
	MDB_txn *txn;
	int64_t now = ks__now();
	size_t slen;
	int rc;

	if (!str_ok(q->app, sizeof(q->app)) || !ks__id_valid(q->app) ||
	    !serial_ok(q->serial))
		return KS_EREQUEST;
	slen = strlen(q->serial);
	j = calloc(1, sizeof(*j));
	app = malloc(sizeof(*app));
	if (j == NULL || app == NULL) {
		free(j);
		free(app);
		return -ENOMEM;
	}
	memcpy(j->skey, q->app, KS_ID_LEN);
	memcpy(j->skey + KS_ID_LEN, q->serial, slen);
	j->sklen = KS_ID_LEN + slen;
	rc = rd_begin(ks, &txn);
	if (rc != 0)
		goto out;
	rc = ks__get_rec(ks, txn, KS_KIND_APP, q->app, 0, app);
	if (rc == 0)
		rc = usable(&app->m, now);
	if (rc == 0) {
		k = (MDB_val){ j->sklen, j->skey };
		rc = mdb_get(txn, ks->dbi[KS_DB_SERIALS], &k, &v);
		if (rc == 0 && v.mv_size == KS_ID_LEN) {
			memcpy(j->existing, v.mv_data, KS_ID_LEN);
			rc = 0;
		} else {
			rc = rc == MDB_NOTFOUND || rc == 0 ? 0
			                                   : ks__mdb_error(rc);
		}
	}
	rd_end(ks, txn);
	if (rc != 0)
		goto out;
	if (j->existing[0] == '\0') {
		rec_init(ks, &j->r, KS_KIND_DEVICE, now);
		memcpy(j->r.m.parent, q->app, KS_ID_LEN + 1);
		memcpy(j->r.serial, q->serial, slen + 1);
		j->r.m.expires_at = app->m.expires_at;
		rc = ks__new_id(ks, j->r.m.id);
		if (rc == 0)
			rc = ks__write(ks, device_job, j);
		if (rc != 0)
			goto out;
		rep->created = j->existing[0] == '\0';
	}
	rc = rd_begin(ks, &txn);
	if (rc != 0)
		goto out;
	rc = ks__get_rec(ks, txn, KS_KIND_DEVICE,
	    j->existing[0] != '\0' ? j->existing : j->r.m.id, 0, &j->r);
	rd_end(ks, txn);
	if (rc == 0)
		rc = usable(&j->r.m, now);
	if (rc == 0 &&
	    (strcmp(j->r.serial, q->serial) != 0 ||
	        strcmp(j->r.m.parent, q->app) != 0))
		rc = KS_EINTEGRITY;
	/* The key itself is derived, never stored: SP 800-108 from the root
	 * KDK the device was enrolled under; context app || 0x00 || serial. */
	if (rc == 0)
		rc = ks__root_kdk(ks, j->r.m.root_version, &kdk);
	if (rc == 0) {
		memcpy(ctx, q->app, KS_ID_LEN);
		ctx[KS_ID_LEN] = 0;
		memcpy(ctx + KS_ID_LEN + 1, q->serial, slen);
		rc = p11_kdf_sp800_108(ks->hsm, kdk, KS_DEVICE_LABEL,
		    strlen(KS_DEVICE_LABEL), ctx, KS_ID_LEN + 1 + slen,
		    rep->material, 32);
	}
	if (rc == 0) {
		rep->material_len = 32;
		meta_out(&j->r, 1, now, &rep->meta);
	}
out:
	sr_wipe(j, sizeof(*j));
	sr_wipe(app, sizeof(*app));
	free(j);
	free(app);
	return rc;
}

static int
op_sign(struct ks *ks, const struct ks_sign_req *q, struct ks_reply *rep)
{
	struct ks__rec *r;
	struct p11_key *sk;
	MDB_txn *txn;
	char label[48];
	int rc;

	if (!str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->len > sizeof(q->msg))
		return KS_EREQUEST;
	r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rc = rd_begin(ks, &txn);
	if (rc == 0) {
		rc = ks__get_rec(ks, txn, KS_KIND_SIGNING, q->id, 0, r);
		rd_end(ks, txn);
	}
	if (rc == 0)
		rc = usable(&r->m, ks__now());
	if (rc == 0) {
		snprintf(label, sizeof(label), "sr-sign-%s-v%u", r->m.id,
		    r->m.version);
		rc =
		    p11_key_find(ks->hsm, P11_KEY_EC_P256, label, NULL, 0, &sk);
		if (rc == P11_ENOTFOUND)
			rc = KS_EINTEGRITY;
	}
	if (rc == 0) {
		rc = p11_ecdsa_p256_sign(
		    ks->hsm, sk, q->msg, q->len, rep->material);
		p11_key_free(sk);
	}
	if (rc == 0) {
		rep->material_len = 64;
		meta_out(r, r->m.version, ks__now(), &rep->meta);
	}
	free(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* API keys                                                             */
/* ------------------------------------------------------------------ */

static int
apikey_put_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	return ks__put_rec(ks, txn, arg, MDB_NOOVERWRITE);
}

static int
op_apikey_create(
    struct ks *ks, const struct ks_apikey_create_req *q, struct ks_reply *rep)
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	struct two_recs *t;
	MDB_txn *txn;
	int64_t now = ks__now();
	int rc, tries;

	if (!str_ok(q->owner, sizeof(q->owner)) || !ks__id_valid(q->owner) ||
	    !str_ok(q->scope, sizeof(q->scope)) ||
	    (q->scope[0] != '\0' && q->scope[0] != '{') ||
	    (q->expires_at != 0 && q->expires_at <= now))
		return KS_EREQUEST;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = rd_begin(ks, &txn);
	if (rc == 0) {
		rc = read_key(ks, txn, q->owner, 0, NULL, &t->newest);
		rd_end(ks, txn);
	}
	if (rc == 0 && t->newest.m.kind != KS_KIND_APP &&
	    t->newest.m.kind != KS_KIND_USER)
		rc = KS_EREQUEST;
	if (rc == 0)
		rc = usable(&t->newest.m, now);
	if (rc != 0)
		goto out;
	rec_init(ks, &t->r, KS_KIND_APIKEY, now);
	memcpy(t->r.m.parent, q->owner, KS_ID_LEN + 1);
	memcpy(t->r.m.scope, q->scope, sizeof(t->r.m.scope));
	/* Never longer than its owner. */
	t->r.m.expires_at = t->newest.m.expires_at;
	if (q->expires_at != 0 &&
	    (t->r.m.expires_at == 0 || q->expires_at < t->r.m.expires_at))
		t->r.m.expires_at = q->expires_at;
	rc = ks__new_id(ks, t->r.m.id);
	for (tries = 0; rc == 0 && tries < 4; tries++) {
		rc = ks__random(ks, rnd, sizeof(rnd));
		if (rc == 0)
			rc = ks__apikey_make(
			    t->r.m.id, rnd, sizeof(rnd), rep->apikey);
		if (rc != -EAGAIN)
			break;
	}
	sr_wipe(rnd, sizeof(rnd));
	/* Stored: only the keyed hash, computed by the HSM's pepper key. */
	if (rc == 0)
		rc = p11_hmac_sha256(ks->hsm, ks->pepper, rep->apikey,
		    KS_APIKEY_LEN, t->r.sealed);
	if (rc == 0) {
		t->r.sealed_len = 32;
		memcpy(t->r.m.apikey_prefix, rep->apikey, 8);
		rc = ks__write(ks, apikey_put_job, &t->r);
	}
	if (rc == 0)
		meta_out(&t->r, 1, now, &rep->meta);
out:
	sr_wipe(t, sizeof(*t));
	free(t);
	return rc;
}

static int
op_apikey_verify(
    struct ks *ks, const struct ks_apikey_verify_req *q, struct ks_reply *rep)
{
	char id[KS_ID_LEN + 1];
	uint8_t digest[32], mac[32];
	struct two_recs *t;
	MDB_txn *txn;
	int64_t now = ks__now(), until = 0;
	size_t len = strnlen(q->key, sizeof(q->key));
	int rc;

	/* Unterminated: a malformed request (keystore.h), not a bad key. */
	if (len == sizeof(q->key))
		return KS_EREQUEST;
	/* Format and checksum first: a typo costs no lookup. */
	if (ks__apikey_parse(q->key, len, id) != 0)
		return KS_EAPIKEY;
	/* The cache holds a keyed digest (CMAC under a key drawn at open),
	 * never the key and never a plain hash of it. */
	memset(digest, 0, sizeof(digest));
	ks__cmac(&ks->vc_mac, (const uint8_t *)q->key, len, digest);
	if (ks__vcache_check(ks->vcache, id, digest, &rep->meta, &until)) {
		if ((until != 0 && now >= until) ||
		    usable(&rep->meta, now) != 0) {
			memset(&rep->meta, 0, sizeof(rep->meta));
			return KS_EDENIED;
		}
		return 0;
	}
	t = malloc(sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = rd_begin(ks, &txn);
	if (rc == 0) {
		rc = ks__get_rec(ks, txn, KS_KIND_APIKEY, id, 0, &t->r);
		if (rc == 0)
			rc = read_key(
			    ks, txn, t->r.m.parent, 0, NULL, &t->newest);
		rd_end(ks, txn);
	}
	if (rc == KS_ENOTFOUND)
		rc = KS_EDENIED;
	if (rc == 0)
		rc = p11_hmac_sha256(ks->hsm, ks->pepper, q->key, len, mac);
	if (rc == 0 &&
	    (t->r.sealed_len != 32 || !sr_ct_equal(mac, t->r.sealed, 32) ||
	        usable(&t->r.m, now) != 0 || usable(&t->newest.m, now) != 0))
		rc = KS_EDENIED;
	if (rc == 0) {
		meta_out(&t->newest, t->newest.m.version, now, &rep->meta);
		ks__vcache_put(
		    ks->vcache, id, digest, &rep->meta, t->r.m.expires_at);
	}
	sr_wipe(mac, sizeof(mac));
	sr_wipe(t, sizeof(*t));
	free(t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Statistics and dispatch                                              */
/* ------------------------------------------------------------------ */

static int
op_stats(struct ks *ks, struct ks_reply *rep)
{
	struct ks_stats *s = &rep->stats;
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	unsigned k;
	int rc;

	rc = rd_begin(ks, &txn);
	if (rc != 0)
		return rc;
	for (k = 1; k < KS_KIND_COUNT && rc == 0; k++) {
		rc = ks__mdb_error(mdb_stat(txn, ks->dbi[k], &st));
		s->keys[k] = st.ms_entries;
	}
	rd_end(ks, txn);
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
		return op_material(ks, &req->u.key, rep);
	case KS_OP_DEVICE_KEY:
		return op_device(ks, &req->u.device, rep);
	case KS_OP_APIKEY_CREATE:
		return op_apikey_create(ks, &req->u.apikey_create, rep);
	case KS_OP_APIKEY_VERIFY:
		return op_apikey_verify(ks, &req->u.apikey_verify, rep);
	case KS_OP_ROOT_ROTATE:
		return ks__root_rotate(ks);
	case KS_OP_STATS:
		return op_stats(ks, rep);
	case KS_OP_SIGN:
		return op_sign(ks, &req->u.sign, rep);
	case KS_OP_CHECK:
		return ks__check(ks, &rep->stats);
	default:
		return KS_EREQUEST;
	}
}
