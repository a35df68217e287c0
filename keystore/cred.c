/*
 * keystore/cred.c: a user's console credentials (the Argon2id PHC string
 * of the password, a TOTP secret from the HSM sealed under the DEK, the
 * last accepted TOTP step) in their own database, one MAC'd record per
 * user; and the retirement of an API key (its validity cut short, the
 * rotation grace period).
 *
 * It must never store a password (only the hash the appliance computed),
 * never return the TOTP secret except in the reply's material field, and
 * never accept a TOTP step that is not later than the last one recorded:
 * the compare-and-set runs inside the single writer, so two logins racing
 * with one code cannot both pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

/* The version number the TOTP secret's AAD carries: it can never be a
 * real version of the user's own key, so neither ciphertext opens as the
 * other. */
#define CRED_TOTP_VERSION 0xFFFFFF01u

/* One stored record (native layout: records never leave the appliance
 * unencoded; replication will encode them like ks__rec). */
struct cred_rec {
	char phc[KS_PHC_MAX];
	uint64_t totp_step;
	uint32_t totp_dek_version;
	uint32_t totp_sealed_len;
	uint8_t totp_sealed[KS_SEALED_MAX];
	uint32_t mac_version;
	uint8_t mac[KS_MAC_LEN];
};

/* CMAC over db || user id || the record up to its MAC. */
static int
cred_mac(struct ks *ks, const char *id, const struct cred_rec *c,
    uint8_t mac[KS_MAC_LEN])
{
	const struct ks__mac *m;
	uint8_t msg[1 + KS_ID_LEN + offsetof(struct cred_rec, mac)];
	int rc;

	if ((rc = ks__mac_ctx(ks, c->mac_version, &m)) != 0)
		return rc;
	msg[0] = KS_DB_CREDS;
	memcpy(msg + 1, id, KS_ID_LEN);
	memcpy(msg + 1 + KS_ID_LEN, c, offsetof(struct cred_rec, mac));
	ks__cmac(m, msg, sizeof(msg), mac);
	sr_wipe(msg, sizeof(msg));
	return 0;
}

/* The user's record, or an empty one (rc 0, nothing set) when none. */
static int
cred_read(struct ks *ks, MDB_txn *txn, const char *id, struct cred_rec *c)
{
	MDB_val key = { KS_ID_LEN, (void *)id }, val;
	uint8_t mac[KS_MAC_LEN];
	int rc;

	memset(c, 0, sizeof(*c));
	rc = mdb_get(txn, ks->dbi[KS_DB_CREDS], &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return ks__mdb_error(rc);
	if (val.mv_size != sizeof(*c))
		return KS_EINTEGRITY;
	memcpy(c, val.mv_data, sizeof(*c));
	rc = cred_mac(ks, id, c, mac);
	if (rc == 0 && !sr_ct_equal(mac, c->mac, KS_MAC_LEN))
		rc = KS_EINTEGRITY;
	if (rc == 0 &&
	    (memchr(c->phc, '\0', sizeof(c->phc)) == NULL ||
	        c->totp_sealed_len > sizeof(c->totp_sealed)))
		rc = KS_EINTEGRITY;
	if (rc != 0)
		sr_wipe(c, sizeof(*c));
	return rc;
}

static int
cred_write(struct ks *ks, MDB_txn *txn, const char *id, struct cred_rec *c)
{
	MDB_val key = { KS_ID_LEN, (void *)id }, val = { sizeof(*c), c };
	int rc;

	c->mac_version = ks->kdk_version;
	if ((rc = cred_mac(ks, id, c, c->mac)) != 0)
		return rc;
	return ks__mdb_error(mdb_put(txn, ks->dbi[KS_DB_CREDS], &key, &val, 0));
}

/* The user record @p id, which must be a usable (not revoked) user. */
static int
user_get(struct ks *ks, MDB_txn *txn, const char *id, struct ks__rec *u)
{
	int rc = ks__get_rec(ks, txn, KS_DB_USER, id, 0, u);

	if (rc == 0 &&
	    (u->m.state == KS_STATE_REVOKED ||
	        u->m.state == KS_STATE_DESTROYED))
		rc = KS_ESTATE;
	return rc;
}

/* Seal or open the TOTP secret through a scratch record of the user. */
static int
totp_seal(struct ks *ks, const char *id, const uint8_t *secret,
    struct cred_rec *c, struct ks__rec *scratch)
{
	int rc;

	ks__rec_init(ks, scratch, KS_KIND_USER, ks__now());
	memcpy(scratch->m.id, id, KS_ID_LEN + 1);
	scratch->m.version = CRED_TOTP_VERSION;
	rc = ks__seal_rec(ks, scratch, secret, KS_TOTP_SECRET_LEN);
	if (rc == 0) {
		c->totp_dek_version = scratch->m.dek_version;
		c->totp_sealed_len = scratch->sealed_len;
		memcpy(c->totp_sealed, scratch->sealed, scratch->sealed_len);
	}
	return rc;
}

static int
totp_open(struct ks *ks, const char *id, const struct cred_rec *c,
    struct ks__rec *scratch, struct ks_reply *rep)
{
	size_t len = 0;
	int rc;

	ks__rec_init(ks, scratch, KS_KIND_USER, ks__now());
	memcpy(scratch->m.id, id, KS_ID_LEN + 1);
	scratch->m.version = CRED_TOTP_VERSION;
	scratch->m.dek_version = c->totp_dek_version;
	scratch->sealed_len = c->totp_sealed_len;
	memcpy(scratch->sealed, c->totp_sealed, c->totp_sealed_len);
	rc = ks__open_rec(ks, scratch, rep->material, &len);
	if (rc == 0 && len != KS_TOTP_SECRET_LEN)
		rc = KS_EINTEGRITY;
	rep->material_len = rc == 0 ? (uint32_t)len : 0;
	return rc;
}

struct cred_job {
	const struct ks_cred_req *q;
	struct ks__rec user, scratch;
	struct cred_rec c, sealed; /* sealed: ENROL's new secret */
};

static int
cred_set_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct cred_job *j = arg;
	int rc;

	if ((rc = user_get(ks, txn, j->q->id, &j->user)) != 0 ||
	    (rc = cred_read(ks, txn, j->q->id, &j->c)) != 0)
		return rc;
	switch (j->q->what) {
	case KS_CRED_PASSWORD:
		memcpy(j->c.phc, j->q->phc, sizeof(j->c.phc));
		break;
	case KS_CRED_TOTP_ENROL:
		j->c.totp_dek_version = j->sealed.totp_dek_version;
		j->c.totp_sealed_len = j->sealed.totp_sealed_len;
		memcpy(j->c.totp_sealed, j->sealed.totp_sealed,
		    sizeof(j->c.totp_sealed));
		j->c.totp_step = 0;
		break;
	default: /* KS_CRED_TOTP_USE */
		if (j->c.totp_sealed_len == 0)
			return KS_ESTATE;
		if (j->q->step <= j->c.totp_step)
			return KS_ESTATE; /* a replayed code */
		j->c.totp_step = j->q->step;
		break;
	}
	if (rc == 0)
		rc = cred_write(ks, txn, j->q->id, &j->c);
	if (rc == 0)
		rc = ks__dek_persist(ks, txn);
	return rc;
}

static void
cred_out(const struct cred_rec *c, struct ks_reply *rep)
{
	memcpy(rep->cred.phc, c->phc, sizeof(rep->cred.phc));
	rep->cred.totp_step = c->totp_step;
	rep->cred.totp_enrolled = c->totp_sealed_len > 0;
}

static int
op_cred_set(struct ks *ks, const struct ks_cred_req *q, struct ks_reply *rep)
{
	uint8_t secret[KS_TOTP_SECRET_LEN];
	struct cred_job *j;
	int rc = 0;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->what < KS_CRED_PASSWORD || q->what >= KS_CRED_COUNT ||
	    !ks__str_ok(q->phc, sizeof(q->phc)) ||
	    (q->what == KS_CRED_PASSWORD &&
	        strncmp(q->phc, "$argon2id$", 10) != 0))
		return KS_EREQUEST;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -ENOMEM;
	j->q = q;
	/* Sealed before the writer's job: sealing may rotate the DEK, which
	 * waits for the writer. */
	if (q->what == KS_CRED_TOTP_ENROL &&
	    (rc = ks__random(ks, secret, sizeof(secret))) == 0)
		rc = totp_seal(ks, q->id, secret, &j->sealed, &j->scratch);
	if (rc == 0)
		rc = ks__write(ks, cred_set_job, j);
	if (rc == 0) {
		ks__meta_out(
		    &j->user, j->user.m.version, ks__now(), &rep->meta);
		cred_out(&j->c, rep);
		if (q->what == KS_CRED_TOTP_ENROL) {
			memcpy(rep->material, secret, sizeof(secret));
			rep->material_len = sizeof(secret);
		}
	}
	sr_wipe(secret, sizeof(secret));
	sr_wipe(j, sizeof(*j));
	free(j);
	return rc;
}

/* By id, or by the unique user name. */
static int
op_cred_get(struct ks *ks, const struct ks_cred_req *q, struct ks_reply *rep)
{
	uint8_t namekey[1 + KS_NAME_MAX];
	MDB_val key = { 0, namekey }, val;
	char id[KS_ID_LEN + 1];
	struct cred_job *j;
	MDB_txn *txn;
	int rc;

	if (!ks__str_ok(q->id, sizeof(q->id)) ||
	    !ks__str_ok(q->name, sizeof(q->name)) ||
	    (q->id[0] != '\0' ? !ks__id_valid(q->id) : q->name[0] == '\0'))
		return KS_EREQUEST;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -ENOMEM;
	if ((rc = ks__rd_begin(ks, &txn)) != 0)
		goto out;
	snprintf(id, sizeof(id), "%s", q->id);
	if (id[0] == '\0') {
		namekey[0] = KS_KIND_USER;
		key.mv_size = 1 + strlen(q->name);
		memcpy(namekey + 1, q->name, key.mv_size - 1);
		rc = ks__mdb_error(
		    mdb_get(txn, ks->dbi[KS_DB_NAMES], &key, &val));
		if (rc == 0 && val.mv_size != KS_ID_LEN)
			rc = KS_EINTEGRITY;
		if (rc == 0)
			snprintf(id, sizeof(id), "%.*s", KS_ID_LEN,
			    (const char *)val.mv_data);
	}
	if (rc == 0)
		rc = ks__get_rec(ks, txn, KS_DB_USER, id, 0, &j->user);
	if (rc == 0)
		rc = cred_read(ks, txn, id, &j->c);
	if (rc == 0 && j->c.totp_sealed_len > 0)
		rc = totp_open(ks, id, &j->c, &j->scratch, rep);
	ks__rd_end(ks, txn);
	if (rc == 0) {
		ks__meta_out(
		    &j->user, j->user.m.version, ks__now(), &rep->meta);
		cred_out(&j->c, rep);
	}
out:
	sr_wipe(j, sizeof(*j));
	free(j);
	return rc;
}

struct retire_job {
	const struct ks_retire_req *q;
	struct ks__rec r;
};

static int
retire_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct retire_job *j = arg;
	int rc = ks__get_rec(ks, txn, KS_DB_APIKEY, j->q->id, 0, &j->r);

	if (rc != 0)
		return rc;
	if (j->r.m.state == KS_STATE_REVOKED ||
	    j->r.m.state == KS_STATE_DESTROYED)
		return KS_ESTATE;
	/* Never extends a key's life. */
	if (j->r.m.expires_at == 0 || j->q->expires_at < j->r.m.expires_at)
		j->r.m.expires_at = j->q->expires_at;
	j->r.m.flags |= KS_FLAG_RETIRED;
	j->r.m.updated_at = ks__now();
	j->r.m.record_version++;
	j->r.mac_version = ks->kdk_version;
	return ks__put_rec(ks, txn, &j->r, 0);
}

static int
op_retire(struct ks *ks, const struct ks_retire_req *q, struct ks_reply *rep)
{
	struct retire_job *j;
	int rc;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->expires_at < ks__now())
		return KS_EREQUEST;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -ENOMEM;
	j->q = q;
	rc = ks__write(ks, retire_job, j);
	if (rc == 0) {
		ks__meta_out(&j->r, j->r.m.version, ks__now(), &rep->meta);
		/* The cached verdict knows the old end; drop it now. */
		ks__vcache_drop(ks->vcache, q->id);
	}
	sr_wipe(j, sizeof(*j));
	free(j);
	return rc;
}

int
ks__op_cred(struct ks *ks, const struct ks_request *req, struct ks_reply *rep)
{
	switch (req->op) {
	case KS_OP_CRED_GET:
		return op_cred_get(ks, &req->u.cred, rep);
	case KS_OP_CRED_SET:
		return op_cred_set(ks, &req->u.cred, rep);
	case KS_OP_APIKEY_RETIRE:
		return op_retire(ks, &req->u.retire, rep);
	case KS_OP_UPDATE:
		return ks__op_update(ks, &req->u.update, rep);
	case KS_OP_USAGE_FLUSH:
		return ks__usage_flush(ks);
	default:
		return KS_EREQUEST;
	}
}
