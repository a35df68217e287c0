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
#include <time.h>

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
 * what to do. On success rep->meta is the current version's (version,
 * created_at) and @p point its public key. */
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

/* Sign with the current version of @p key, which must be version @p want,
 * the one the kid or key_id beside the signature names. A start finds the
 * current version and the daemon holds the keystore's lock, so another
 * version signing means the store changed under it: the signature is not
 * given out under a name that does not verify it. */
static int
ks_sign(struct api *a, const char *key, uint32_t want, const uint8_t digest[32],
    int prehashed, uint8_t rs[64])
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
		if (rc == 0 && rep->meta.version != want) {
			log_warnx("signing key %s signs as version %u, not v%u "
			          "(rotated under the running daemon?): "
			          "signature withheld; restart the daemon",
			    key, (unsigned)rep->meta.version, (unsigned)want);
			rc = KS_ESTATE;
		}
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

	return ks_sign(a, a->jwt_key, a->jwt_version, digest, 1, rs);
}

/* Audit checkpoints: ES256 over the 32-byte chain head (hashed again by
 * the HSM's signer, as audit.h says). */
static int
audit_sign(void *arg, const uint8_t digest[32], uint8_t sig[64])
{
	struct api *a = arg;

	return ks_sign(a, a->audit_key, a->audit_version, digest, 0, sig);
}

/* The verification keyset and JWKS of the OAuth key: its current version
 * (@p cur, @p point) and each older one whose last token can still be
 * valid, each listed in the JWKS until then. Version v signed until version v+1
 * was made, so its last token expires by created_at(v+1) + API_TOKEN_TTL, and
 * is accepted JWT_SKEW longer. */
static int
jwks_open(struct api *a, const struct ks_meta *cur, const uint8_t point[65],
    struct ks_reply *rep)
{
	struct ks_request q;
	char kid[KS_VERSION_NAME_MAX];
	int64_t now = (int64_t)time(NULL), until;
	uint32_t v;
	int rc;

	if ((rc = jwt_keyset_new(&a->jwks)) != 0 ||
	    (rc = jwt_keyset_add(a->jwks, a->jwt_kid, point)) != 0)
		return rc;
	until = cur->created_at + API_TOKEN_TTL + JWT_SKEW;
	for (v = cur->version - 1;
	     v >= 1 && now < until && cur->version - v < JWT_KEYS_MAX; v--) {
		ks_request_init(&q, KS_OP_PUBLIC);
		snprintf(q.u.key.id, sizeof(q.u.key.id), "%s", cur->id);
		q.u.key.version = v;
		ks_reply_init(rep);
		rc = ks_call(a->ks, &q, rep);
		if (rc == KS_ENOTFOUND || rc == KS_ESTATE)
			break; /* destroyed: nothing it signed verifies */
		ks_version_name(kid, cur->id, v);
		if (rc != 0 ||
		    (rc = jwt_keyset_add(a->jwks, kid, rep->material)) != 0 ||
		    (rc = jwt_keyset_retire(a->jwks, kid, until)) != 0)
			return rc;
		until = rep->meta.created_at + API_TOKEN_TTL + JWT_SKEW;
	}
	return jwt_jwks_docs(a->jwks, now, a->jwks_doc, &a->njwks_doc);
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
	struct ks_meta cur;
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
	if ((rc = signing_key(ks, "audit-checkpoint", a->audit_key, audit_pub,
	         rep, err)) != 0)
		goto fail;
	a->audit_version = rep->meta.version;
	ks_version_name(a->audit_kid, a->audit_key, a->audit_version);
	if ((rc = signing_key(
	         ks, "oauth-jwt", a->jwt_key, jwt_pub, rep, err)) != 0)
		goto fail;
	cur = rep->meta;
	a->jwt_version = cur.version;
	ks_version_name(a->jwt_kid, a->jwt_key, a->jwt_version);
	if ((rc = jwks_open(a, &cur, jwt_pub, rep)) != 0) {
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
	ao.sign_key_id = a->audit_kid;
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
	jwt_jwks_docs_free(a->jwks_doc, a->njwks_doc);
	policy_free(a->policy);
	api_sessions_free(a->sessions);
	api_backoff_free(a->backoff);
	api_keyrate_free(a->keyrate);
	api_expiry_free(a->expiry);
	free(a);
}
