/*
 * keystore/use.c: the operations that use keys rather than manage them:
 * material of a key version, device enrolment and device-key derivation,
 * signing with an HSM-held key, and API keys (creation and verification).
 *
 * It must never return material of a key that is not active and valid,
 * never store a device key or an API key in clear, and never leave a
 * half-made record behind. Records read here hold metadata and ciphertext
 * only, so the hot paths do not wipe them; plaintext lives in the reply
 * (wiped by the caller) and in local buffers wiped before return.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

#define KS_DEVICE_LABEL "strongroom/device/v1"

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

/* ------------------------------------------------------------------ */
/* Material, devices, signing */
/* ------------------------------------------------------------------ */

int
ks__op_material(struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep)
{
	struct ks__two_recs two, *t = &two;
	MDB_txn *txn;
	int64_t now = ks__now();
	size_t n = 0;
	int rc;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id))
		return KS_EREQUEST;
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		rc =
		    ks__read_key(ks, txn, q->id, q->version, &t->r, &t->newest);
		ks__rd_end(ks, txn);
	}
	if (rc == 0 && t->r.m.kind != KS_KIND_APP &&
	    t->r.m.kind != KS_KIND_USER && t->r.m.kind != KS_KIND_DATA)
		rc = KS_EREQUEST;
	/* Older versions (decrypt-only) share the key's state and
	 * times. */
	if (rc == 0)
		rc = ks__usable(&t->r.m, now);
	if (rc == 0)
		rc = ks__open_rec(ks, &t->r, rep->material, &n);
	if (rc == 0) {
		rep->material_len = (uint32_t)n;
		ks__meta_out(&t->r, t->newest.m.version, now, &rep->meta);
	}
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

int
ks__op_device(
    struct ks *ks, const struct ks_device_req *q, struct ks_reply *rep)
{
	uint8_t ctx[KS_ID_LEN + 1 + KS_SERIAL_MAX];
	struct device_job job, *j = &job;
	struct ks__rec apprec, *app = &apprec;
	struct p11_key *kdk;
	int have = 0;
	MDB_val k, v;
	MDB_txn *txn;
	int64_t now = ks__now();
	size_t slen;
	int rc;

	if (!ks__str_ok(q->app, sizeof(q->app)) || !ks__id_valid(q->app) ||
	    !serial_ok(q->serial))
		return KS_EREQUEST;
	slen = strlen(q->serial);
	memset(j, 0, sizeof(*j));
	memcpy(j->skey, q->app, KS_ID_LEN);
	memcpy(j->skey + KS_ID_LEN, q->serial, slen);
	j->sklen = KS_ID_LEN + slen;
	rc = ks__rd_begin(ks, &txn);
	if (rc != 0)
		goto out;
	rc = ks__get_rec(ks, txn, KS_KIND_APP, q->app, 0, app);
	if (rc == 0)
		rc = ks__usable(&app->m, now);
	if (rc == 0) {
		k = (MDB_val){ j->sklen, j->skey };
		rc = mdb_get(txn, ks->dbi[KS_DB_SERIALS], &k, &v);
		if (rc == 0 && v.mv_size == KS_ID_LEN) {
			/* Enrolled before (the common case): read the device
			 * in the same transaction. */
			memcpy(j->existing, v.mv_data, KS_ID_LEN);
			rc = ks__get_rec(
			    ks, txn, KS_KIND_DEVICE, j->existing, 1, &j->r);
			have = rc == 0;
		} else {
			rc = rc == MDB_NOTFOUND || rc == 0 ? 0
			                                   : ks__mdb_error(rc);
		}
	}
	ks__rd_end(ks, txn);
	if (rc != 0)
		goto out;
	if (j->existing[0] == '\0') {
		ks__rec_init(ks, &j->r, KS_KIND_DEVICE, now);
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
	if (!have) {
		rc = ks__rd_begin(ks, &txn);
		if (rc != 0)
			goto out;
		rc = ks__get_rec(ks, txn, KS_KIND_DEVICE,
		    j->existing[0] != '\0' ? j->existing : j->r.m.id, 1, &j->r);
		ks__rd_end(ks, txn);
	}
	if (rc == 0)
		rc = ks__usable(&j->r.m, now);
	if (rc == 0 &&
	    (strcmp(j->r.serial, q->serial) != 0 ||
	        strcmp(j->r.m.parent, q->app) != 0))
		rc = KS_EINTEGRITY;
	/* The key itself is derived, never stored: SP 800-108 from the
	 * root KDK the device was enrolled under; context app || 0x00
	 * || serial. */
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
		ks__meta_out(&j->r, 1, now, &rep->meta);
	}
out:
	return rc;
}

/* The public point was stored in the record when the pair was made in
 * the HSM; publishing it (JWKS, audit checkpoints) needs no HSM call. Any
 * state but destroyed: verifiers need old keys until their last token or
 * checkpoint is checked. */
int
ks__op_public(struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep)
{
	struct ks__rec *r;
	MDB_txn *txn;
	int rc;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id))
		return KS_EREQUEST;
	r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		rc =
		    ks__get_rec(ks, txn, KS_KIND_SIGNING, q->id, q->version, r);
		ks__rd_end(ks, txn);
	}
	if (rc == 0 &&
	    (r->m.state == KS_STATE_DESTROYED || r->sealed_len != 65))
		rc = KS_ESTATE;
	if (rc == 0) {
		memcpy(rep->material, r->sealed, 65);
		rep->material_len = 65;
		ks__meta_out(r, r->m.version, ks__now(), &rep->meta);
	}
	free(r);
	return rc;
}

/* The HSM reference of the signing-key version @p label: kept in struct ks
 * (*@p owned 0: do not free) or, when that table is full, found for this
 * call only (*@p owned 1: the caller frees it). */
static int
sign_key_get(struct ks *ks, const char *label, struct p11_key **out, int *owned)
{
	struct p11_key *k;
	unsigned i;
	int rc;

	*owned = 0;
	pthread_mutex_lock(&ks->sign_lock);
	for (i = 0; i < ks->nsign_keys; i++)
		if (strcmp(ks->sign_keys[i].label, label) == 0) {
			*out = ks->sign_keys[i].key;
			pthread_mutex_unlock(&ks->sign_lock);
			return 0;
		}
	pthread_mutex_unlock(&ks->sign_lock);
	rc = p11_key_find(ks->hsm, P11_KEY_EC_P256, label, NULL, 0, &k);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&ks->sign_lock);
	for (i = 0; i < ks->nsign_keys; i++) /* another thread was first */
		if (strcmp(ks->sign_keys[i].label, label) == 0)
			break;
	if (i < ks->nsign_keys) {
		p11_key_free(k);
		k = ks->sign_keys[i].key;
	} else if (i < KS__SIGN_KEYS &&
	    strlen(label) < sizeof(ks->sign_keys[i].label)) {
		snprintf(ks->sign_keys[i].label, sizeof(ks->sign_keys[i].label),
		    "%s", label);
		ks->sign_keys[i].key = k;
		ks->nsign_keys++;
	} else {
		*owned = 1;
	}
	pthread_mutex_unlock(&ks->sign_lock);
	*out = k;
	return 0;
}

void
ks__sign_keys_free(struct ks *ks)
{
	unsigned i;

	for (i = 0; i < ks->nsign_keys; i++)
		p11_key_free(ks->sign_keys[i].key);
	ks->nsign_keys = 0;
}

int
ks__op_sign(struct ks *ks, const struct ks_sign_req *q, struct ks_reply *rep)
{
	struct ks__rec *r;
	struct p11_key *sk;
	MDB_txn *txn;
	char label[48];
	int rc, owned = 0;

	if (!ks__str_ok(q->id, sizeof(q->id)) || !ks__id_valid(q->id) ||
	    q->len > sizeof(q->msg) || q->prehashed > 1 ||
	    (q->prehashed && q->len != 32))
		return KS_EREQUEST;
	r = malloc(sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		rc = ks__get_rec(ks, txn, KS_KIND_SIGNING, q->id, 0, r);
		ks__rd_end(ks, txn);
	}
	if (rc == 0)
		rc = ks__usable(&r->m, ks__now());
	if (rc == 0) {
		snprintf(label, sizeof(label), "sr-sign-%s-v%u", r->m.id,
		    r->m.version);
		rc = sign_key_get(ks, label, &sk, &owned);
		if (rc == P11_ENOTFOUND)
			rc = KS_EINTEGRITY;
	}
	if (rc == 0) {
		rc = q->prehashed ? p11_ecdsa_p256_sign_digest(
		                        ks->hsm, sk, q->msg, rep->material)
		                  : p11_ecdsa_p256_sign(ks->hsm, sk, q->msg,
		                        q->len, rep->material);
		if (owned)
			p11_key_free(sk);
		if (rc == P11_ENOTFOUND) /* gone from the HSM since kept */
			rc = KS_EINTEGRITY;
	}
	if (rc == 0) {
		rep->material_len = 64;
		ks__meta_out(r, r->m.version, ks__now(), &rep->meta);
	}
	free(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* API keys */
/* ------------------------------------------------------------------ */

static int
apikey_put_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	return ks__put_rec(ks, txn, arg, MDB_NOOVERWRITE);
}

int
ks__op_apikey_create(
    struct ks *ks, const struct ks_apikey_create_req *q, struct ks_reply *rep)
{
	uint8_t rnd[KS_RANDOM_FOR_APIKEY];
	struct ks__two_recs *t;
	MDB_txn *txn;
	int64_t now = ks__now();
	int rc, tries;

	if (!ks__str_ok(q->owner, sizeof(q->owner)) ||
	    !ks__id_valid(q->owner) ||
	    !ks__str_ok(q->scope, sizeof(q->scope)) ||
	    (q->scope[0] != '\0' && q->scope[0] != '{') ||
	    (q->expires_at != 0 && q->expires_at <= now))
		return KS_EREQUEST;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		rc = ks__read_key(ks, txn, q->owner, 0, NULL, &t->newest);
		ks__rd_end(ks, txn);
	}
	if (rc == 0 && t->newest.m.kind != KS_KIND_APP &&
	    t->newest.m.kind != KS_KIND_USER)
		rc = KS_EREQUEST;
	if (rc == 0)
		rc = ks__usable(&t->newest.m, now);
	if (rc != 0)
		goto out;
	ks__rec_init(ks, &t->r, KS_KIND_APIKEY, now);
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
	/* Stored: only the keyed hash, computed by the HSM's pepper
	 * key. */
	if (rc == 0)
		rc = p11_hmac_sha256(ks->hsm, ks->pepper, rep->apikey,
		    KS_APIKEY_LEN, t->r.sealed);
	if (rc == 0) {
		t->r.sealed_len = 32;
		memcpy(t->r.m.apikey_prefix, rep->apikey, 8);
		rc = ks__write(ks, apikey_put_job, &t->r);
	}
	if (rc == 0)
		ks__meta_out(&t->r, 1, now, &rep->meta);
out:
	sr_wipe(t, sizeof(*t));
	free(t);
	return rc;
}

int
ks__op_apikey_verify(
    struct ks *ks, const struct ks_apikey_verify_req *q, struct ks_reply *rep)
{
	char id[KS_ID_LEN + 1];
	uint8_t digest[32], mac[32];
	struct ks__two_recs two, *t = &two;
	MDB_txn *txn;
	int64_t now = ks__now(), until = 0;
	size_t len = strnlen(q->key, sizeof(q->key));
	int rc;

	/* Unterminated: a malformed request (keystore.h), not a bad
	 * key. */
	if (len == sizeof(q->key))
		return KS_EREQUEST;
	/* Format first; the checksum only on a miss: a hit matches the
	 * digest of a key that passed it, so it would only cost time. */
	if (ks__apikey_id(q->key, len, id) != 0)
		return KS_EAPIKEY;
	/* The cache holds a keyed digest (CMAC under a key drawn at
	 * open), never the key and never a plain hash of it. */
	memset(digest, 0, sizeof(digest));
	ks__cmac(&ks->vc_mac, (const uint8_t *)q->key, len, digest);
	if (ks__vcache_check(ks->vcache, id, digest, &rep->meta, &until)) {
		rc = until != 0 && now >= until
		    ? KS_EEXPIRED
		    : ks_meta_refusal(&rep->meta, now);
		if (rc != 0)
			memset(&rep->meta, 0, sizeof(rep->meta));
		else
			ks__usage_touch(ks, id, now);
		return rc;
	}
	/* A typo costs no lookup and no trip to a worker. */
	if (ks__apikey_parse(q->key, len, NULL) != 0)
		return KS_EAPIKEY;
	if (ks__no_wait)
		return KS_EMISS;
	rc = ks__rd_begin(ks, &txn);
	if (rc == 0) {
		/* Devices and API keys never rotate: version 1 is the only one,
		 * read without a cursor. */
		rc = ks__get_rec(ks, txn, KS_KIND_APIKEY, id, 1, &t->r);
		if (rc == 0)
			rc = ks__read_key(
			    ks, txn, t->r.m.parent, 0, NULL, &t->newest);
		ks__rd_end(ks, txn);
	}
	if (rc == KS_ENOTFOUND)
		rc = KS_EDENIED;
	if (rc == 0)
		rc = p11_hmac_sha256(ks->hsm, ks->pepper, q->key, len, mac);
	if (rc == 0 &&
	    (t->r.sealed_len != 32 || !sr_ct_equal(mac, t->r.sealed, 32)))
		rc = KS_EDENIED;
	/* The secret matched: say why the key or its owner is refused (the
	 * caller holds the key, so this tells them nothing new). */
	if (rc == 0 && (rc = ks_meta_refusal(&t->r.m, now)) == 0)
		rc = ks_meta_refusal(&t->newest.m, now);
	if (rc == 0) {
		ks__meta_out(&t->newest, t->newest.m.version, now, &rep->meta);
		ks__vcache_put(
		    ks->vcache, id, digest, &rep->meta, t->r.m.expires_at);
		ks__usage_touch(ks, id, now);
	}
	sr_wipe(mac, sizeof(mac));
	return rc;
}
