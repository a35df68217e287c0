/*
 * appliance/api_boot.c: start-up and shut-down of the authenticated part:
 * the policy file, the OAuth signing key and its JWKS, the audit log with
 * checkpoints signed in the HSM, and on first start the "admin" user whose
 * API key the operator finds in <state_dir>/admin.key.
 *
 * It must never print or log a key (the bootstrap key goes to a 0600 file
 * only) and never start serving without an audit log it can write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "appliance/api_impl.h"

/* The operator's way out when signing key @p name exists but is not
 * active (its name stays taken: a new key of that name cannot be made). */
static int
signing_key_unusable(const char *name, const struct ks_meta *m, char err[256])
{
	if (m->state == KS_STATE_SUSPENDED)
		snprintf(err, 256,
		    "signing key \"%s\" (%s) is suspended; resume it with "
		    "`sr-keys resume %s` and start again",
		    name, m->id, m->id);
	else
		snprintf(err, 256,
		    "signing key \"%s\" (%s) is %s and cannot be used or "
		    "replaced under its name; restore the keystore from a "
		    "backup taken before that",
		    name, m->id, ks_state_name(m->state));
	return KS_ESTATE;
}

/* Find a signing key by name, or make it when none has the name. One that
 * exists but is not active stops the start with @p err saying which and
 * what to do. */
static int
signing_key(struct ks *ks, const char *name, char id[KS_ID_LEN + 1],
    uint8_t point[65], struct ks_reply *rep, char err[256])
{
	struct ks_request q;
	struct ks_meta found;
	int rc;

	id[0] = '\0';
	rc = ks_find_named(ks, KS_KIND_SIGNING, name, rep, &found);
	if (rc != 0 && rc != KS_ENOTFOUND)
		goto fail;
	if (rc == 0 && found.state != KS_STATE_ACTIVE)
		return signing_key_unusable(name, &found, err);
	if (rc == 0) {
		snprintf(id, KS_ID_LEN + 1, "%s", found.id);
	} else {
		ks_request_init(&q, KS_OP_CREATE);
		q.u.create.kind = KS_KIND_SIGNING;
		snprintf(q.u.create.name, sizeof(q.u.create.name), "%s", name);
		ks_reply_init(rep);
		if ((rc = ks_call(ks, &q, rep)) != 0)
			goto fail;
		snprintf(id, KS_ID_LEN + 1, "%s", rep->meta.id);
	}
	ks_request_init(&q, KS_OP_PUBLIC);
	snprintf(q.u.key.id, sizeof(q.u.key.id), "%s", id);
	ks_reply_init(rep);
	if ((rc = ks_call(ks, &q, rep)) != 0)
		goto fail;
	memcpy(point, rep->material, 65);
	return 0;
fail:
	snprintf(err, 256, "signing key \"%s\": %s", name, sr_strerror(rc));
	return rc;
}

static int
ks_sign(struct api *a, const char *key, const uint8_t digest[32], int prehashed,
    uint8_t rs[64])
{
	struct ks_request *q = malloc(sizeof(*q));
	struct ks_reply *rep = malloc(sizeof(*rep));
	int rc = -ENOMEM;

	if (q != NULL && rep != NULL) {
		ks_request_init(q, KS_OP_SIGN);
		snprintf(q->u.sign.id, sizeof(q->u.sign.id), "%s", key);
		q->u.sign.prehashed = (uint8_t)prehashed;
		q->u.sign.len = 32;
		memcpy(q->u.sign.msg, digest, 32);
		ks_reply_init(rep);
		rc = ks_call(a->ks, q, rep);
		if (rc == 0)
			memcpy(rs, rep->material, 64);
	}
	free(q);
	free(rep);
	return rc;
}

int
api_jwt_sign(void *arg, const uint8_t digest[32], uint8_t rs[64])
{
	struct api *a = arg;

	return ks_sign(a, a->jwt_key, digest, 1, rs);
}

/* Audit checkpoints: ES256 over the 32-byte chain head (hashed again by
 * the HSM's signer, as audit.h says). */
static int
audit_sign(void *arg, const uint8_t digest[32], uint8_t sig[64])
{
	struct api *a = arg;

	return ks_sign(a, a->audit_key, digest, 0, sig);
}

/* First start: an "admin" user with the admin and security-officer roles
 * and one API key, in <state>/admin.key (0600) for the operator. */
static int
bootstrap_admin(
    struct api *a, const char *state, struct ks_reply *rep, char err[256])
{
	struct ks_request q;
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (snprintf(path, sizeof(path), "%s/admin.key", state) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (stat(path, &st) == 0)
		return 0;
	ks_request_init(&q, KS_OP_CREATE);
	q.u.create.kind = KS_KIND_USER;
	snprintf(q.u.create.name, sizeof(q.u.create.name), "admin");
	snprintf(q.u.create.scope, sizeof(q.u.create.scope),
	    "{\"roles\":[\"admin\",\"security-officer\"]}");
	ks_reply_init(rep);
	rc = ks_call(a->ks, &q, rep);
	if (rc == KS_EEXISTS)
		return 0; /* made before; its key file was removed on purpose */
	if (rc != 0) {
		snprintf(
		    err, 256, "creating the admin user: %s", sr_strerror(rc));
		return rc;
	}
	ks_request_init(&q, KS_OP_APIKEY_CREATE);
	snprintf(q.u.apikey_create.owner, sizeof(q.u.apikey_create.owner), "%s",
	    rep->meta.id);
	ks_reply_init(rep);
	rc = ks_call(a->ks, &q, rep);
	if (rc == 0)
		rc = sr_write_private_file(
		    path, rep->apikey, strlen(rep->apikey));
	ks_reply_wipe(rep);
	if (rc != 0)
		snprintf(err, 256, "writing %s: %s", path, sr_strerror(rc));
	else
		log_info("first start: the admin API key is in %s", path);
	return rc;
}

int
api_open(
    struct ks *ks, const struct api_options *o, struct api **out, char err[256])
{
	struct api *a = calloc(1, sizeof(*a));
	struct ks_reply *rep = malloc(sizeof(*rep));
	struct audit_options ao = { 0 };
	struct ks_request q;
	uint8_t jwt_pub[65], audit_pub[65];
	char dir[PATH_MAX], perr[512], appid[KS_APPLIANCE_ID_LEN + 1];
	int rc;

	*out = NULL;
	if (a == NULL || rep == NULL) {
		free(a);
		free(rep);
		return -ENOMEM;
	}
	a->ks = ks;
	a->hsm = o->hsm;
	a->rate_per_key = o->rate_per_key > 0 ? o->rate_per_key : 50;
	a->rate_per_key_burst = o->rate_per_key_burst >= 1
	    ? o->rate_per_key_burst
	    : 2 * a->rate_per_key;
	if ((rc = api_sessions_new(&a->sessions)) != 0 ||
	    (rc = api_backoff_new(&a->backoff)) != 0 ||
	    (rc = api_keyrate_new(&a->keyrate)) != 0 ||
	    (rc = api_expiry_new(&a->expiry)) != 0) {
		snprintf(err, 256, "out of memory");
		goto fail;
	}
	snprintf(a->issuer, sizeof(a->issuer), "%s",
	    o->issuer != NULL ? o->issuer : "strongroom");
	rc = o->policy_file != NULL && o->policy_file[0] != '\0'
	    ? policy_load_file(&a->policy, o->policy_file, perr)
	    : policy_load_default(&a->policy, perr);
	if (rc != 0) {
		snprintf(err, 256, "policy: %s", perr);
		goto fail;
	}
	if ((rc = signing_key(
	         ks, "oauth-jwt", a->jwt_key, jwt_pub, rep, err)) != 0 ||
	    (rc = signing_key(ks, "audit-checkpoint", a->audit_key, audit_pub,
	         rep, err)) != 0)
		goto fail;
	if ((rc = jwt_keyset_new(&a->jwks)) != 0 ||
	    (rc = jwt_keyset_add(a->jwks, a->jwt_key, jwt_pub)) != 0 ||
	    (rc = jwt_jwks_json(a->jwks, &a->jwks_json, &a->jwks_len)) != 0) {
		snprintf(err, 256, "JWKS: %s", sr_strerror(rc));
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s/audit", o->state_dir);
	snprintf(a->audit_dir, sizeof(a->audit_dir), "%s", dir);
	ao.dir = dir;
	/* event_id is <appliance id>-<seq>: unique across appliances whose
	 * logs meet in one place */
	ks_request_init(&q, KS_OP_STATS);
	ks_reply_init(rep);
	if ((rc = ks_call(ks, &q, rep)) != 0) {
		snprintf(err, 256, "keystore: %s", sr_strerror(rc));
		goto fail;
	}
	snprintf(appid, sizeof(appid), "%s", rep->stats.appliance_id);
	ao.appliance_id = appid;
	ao.sign = audit_sign;
	ao.sign_arg = a;
	ao.sign_key_id = a->audit_key;
	ao.sign_pubkey = audit_pub;
	ao.on_commit = metrics_audit_commit;
	ao.checkpoint_at_open = 1;
	if ((rc = audit_open(&ao, &a->audit, err)) != 0)
		goto fail;
	if ((rc = bootstrap_admin(a, o->state_dir, rep, err)) != 0)
		goto fail;
	free(rep);
	*out = a;
	return 0;
fail:
	free(rep);
	api_close(a);
	return rc;
}

void
api_close(struct api *a)
{
	if (a == NULL)
		return;
	audit_close(a->audit);
	jwt_keyset_free(a->jwks);
	free(a->jwks_json);
	policy_free(a->policy);
	api_sessions_free(a->sessions);
	api_backoff_free(a->backoff);
	api_keyrate_free(a->keyrate);
	api_expiry_free(a->expiry);
	free(a);
}
