/*
 * appliance/api_users.c: the people and service accounts of the management
 * API: create with roles, list, read, disable, delete, set a password
 * (Argon2id, parameters in appliance/password.h) and enrol TOTP (an
 * otpauth:// URI, the secret made in and sealed by the keystore). Each
 * handler runs on a worker with the caller already allowed by the policy.
 *
 * It must never echo, log or keep a password (the request body is wiped
 * as soon as it is parsed), never show a TOTP secret except in the one
 * enrolment answer, and never let a caller hand out the security-officer
 * role without holding it, nor change a security officer's password, TOTP,
 * API keys or state (api_officer_guard).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "appliance/api_impl.h"
#include "appliance/password.h"
#include "appliance/totp.h"

#define PASSWORD_MIN 12 /* bytes: NIST SP 800-63B asks 8 at least */

/* Names people type and log in with: 1..63 of [A-Za-z0-9._@-]. */
static int
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < KS_NAME_MAX &&
	    strspn(s,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789._@-") == n;
}

/* {"roles":[...],"scopes":[...]} from the body's lists, roles checked.
 * @return 0, or an error already answered. */
static int
user_scope(struct api_req *r, yyjson_val *root, char *out, size_t cap)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(api_alc());
	yyjson_mut_val *o = yyjson_mut_obj(d), *roles = yyjson_mut_arr(d);
	yyjson_val *arr = yyjson_obj_get(root, "roles"), *v;
	size_t i, n;
	char *text = NULL;
	int bit, rc = 0;

	yyjson_mut_doc_set_root(d, o);
	if (!yyjson_is_arr(arr) || yyjson_arr_size(arr) == 0) {
		api_answer_error(r, 400, "invalid_request",
		    "\"roles\": a list of one or more roles is required");
		rc = -EINVAL;
	}
	yyjson_arr_foreach(arr, i, n, v)
	{
		bit = yyjson_is_str(v)
		    ? policy_role_from_name(yyjson_get_str(v))
		    : -EINVAL;
		if (rc == 0 && bit <= 0) {
			api_answer_error(r, 400, "invalid_request",
			    "unknown role (security-officer, admin, developer, "
			    "auditor, factory, service, device)");
			rc = -EINVAL;
		} else if (rc == 0 && bit == POLICY_ROLE_SECURITY_OFFICER &&
		    !(r->roles & POLICY_ROLE_SECURITY_OFFICER)) {
			api_answer_error(r, 403, "forbidden",
			    "only a security officer may grant that role");
			rc = -EPERM;
		} else if (rc == 0) {
			yyjson_mut_arr_add_strcpy(d, roles, yyjson_get_str(v));
		}
	}
	yyjson_mut_obj_add_val(d, o, "roles", roles);
	arr = yyjson_obj_get(root, "scopes");
	if (rc == 0 && arr != NULL && api_scopes_check(r, arr) != 0)
		rc = -EINVAL;
	yyjson_mut_obj_add_val(d, o, "scopes",
	    yyjson_is_arr(arr) ? yyjson_val_mut_copy(d, arr)
	                       : yyjson_mut_arr(d));
	if (rc == 0 &&
	    ((text = yyjson_mut_write(d, 0, NULL)) == NULL ||
	        strlen(text) >= cap)) {
		api_answer_error(
		    r, 400, "invalid_request", "roles and scopes too long");
		rc = -E2BIG;
	}
	if (rc == 0)
		snprintf(out, cap, "%s", text);
	free(text);
	yyjson_mut_doc_free(d);
	return rc;
}

/* POST /api/users {"name","roles":[...],"scopes":[...]} */
void
api_users_create(struct api_req *r)
{
	static const char *const members[] = { "name", "roles", "scopes",
		NULL };
	struct ks_create_req *c = &r->kq.u.create;
	yyjson_doc *doc;
	yyjson_val *root;
	const char *name;
	int rc;

	ks_request_init(&r->kq, KS_OP_CREATE);
	c->kind = KS_KIND_USER;
	if (api_body_object(r, members, 0, &doc, &root) != 0)
		goto out;
	name = api_json_str(yyjson_obj_get(root, "name"));
	if (name == NULL || !name_ok(name)) {
		api_answer_error(r, 400, "invalid_request",
		    "\"name\": 1 to 63 of A-Z a-z 0-9 . _ @ -");
		goto out;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	if (user_scope(r, root, c->scope, sizeof(c->scope)) != 0)
		goto out;
	rc = api_ks(r);
	if (rc == KS_EEXISTS)
		api_answer_error(r, 409, "conflict", "that name is taken");
	else if (rc != 0)
		api_answer_ks_error(r, rc);
	else
		api_answer_meta(r, 201);
out:
	yyjson_doc_free(doc);
}

int
api_officer_guard(struct api_req *r, const struct ks_meta *user)
{
	if (user->kind != KS_KIND_USER ||
	    !(api_meta_roles(user) & POLICY_ROLE_SECURITY_OFFICER) ||
	    (r->roles & POLICY_ROLE_SECURITY_OFFICER))
		return 0;
	api_answer_error(r, 403, "forbidden",
	    "only a security officer may manage a security officer's "
	    "credentials");
	return -EPERM;
}

int
api_officer_guard_key(struct api_req *r, const struct ks_meta *key)
{
	int rc;

	if (key->parent[0] == '\0')
		return 0;
	ks_request_init(&r->kq, KS_OP_GET);
	snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", key->parent);
	if ((rc = api_ks(r)) != 0) {
		api_answer_ks_error(r, rc);
		return rc;
	}
	return api_officer_guard(r, &r->kr.meta);
}

void
api_users_list(struct api_req *r)
{
	api_list_op(r, KS_KIND_USER, "");
}

void
api_users_read(struct api_req *r)
{
	if (api_expect_kind(r, KS_KIND_USER) == 0)
		api_answer_meta(r, 200);
}

/* Disable (suspend) or delete (revoke) a user; either ends its sessions
 * and, through the keystore, refuses its API keys within a second. */
static void
user_state(struct api_req *r, enum ks_op op)
{
	int rc;

	if (api_expect_kind(r, KS_KIND_USER) != 0 ||
	    api_officer_guard(r, &r->kr.meta) != 0)
		return;
	ks_request_init(&r->kq, op);
	if (op == KS_OP_REVOKE) {
		snprintf(
		    r->kq.u.revoke.id, sizeof(r->kq.u.revoke.id), "%s", r->id);
		snprintf(r->kq.u.revoke.reason, sizeof(r->kq.u.revoke.reason),
		    "deleted");
	} else {
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", r->id);
	}
	rc = api_ks(r);
	api_sessions_end_user(r->api->sessions, r->id);
	if (rc != 0)
		api_answer_ks_error(r, rc);
	else
		api_answer_meta(r, 200);
}

void
api_users_disable(struct api_req *r)
{
	user_state(r, KS_OP_SUSPEND);
}

void
api_users_delete(struct api_req *r)
{
	user_state(r, KS_OP_REVOKE);
}

/* POST /api/users/{id}/password {"password": "..."} */
void
api_users_password(struct api_req *r)
{
	static const char *const members[] = { "password", NULL };
	yyjson_doc *doc;
	yyjson_val *root, *v = NULL;
	char phc[PW_PHC_MAX];
	int rc;

	rc = api_body_object(r, members, 0, &doc, &root);
	/* The password is in the body: gone before anything else runs. */
	if (r->body != NULL)
		sr_wipe(r->body, r->body_len);
	if (rc != 0)
		goto out;
	v = yyjson_obj_get(root, "password");
	if (!yyjson_is_str(v) || yyjson_get_len(v) < PASSWORD_MIN ||
	    yyjson_get_len(v) > PW_MAX_BYTES) {
		api_answer_error(r, 400, "invalid_password",
		    "\"password\": 12 to 1024 bytes");
		goto out;
	}
	/* Login reads the password as a C string: one with a NUL inside
	 * could be set but never typed. */
	if (api_json_str(v) == NULL) {
		api_answer_error(r, 400, "invalid_password",
		    "\"password\": no NUL character");
		goto out;
	}
	if (api_expect_kind(r, KS_KIND_USER) != 0 ||
	    api_officer_guard(r, &r->kr.meta) != 0)
		goto out;
	rc = pw_hash(phc, yyjson_get_str(v), yyjson_get_len(v));
	if (rc != 0) {
		api_answer_error(r, 503, "unavailable", sr_strerror(rc));
		goto out;
	}
	ks_request_init(&r->kq, KS_OP_CRED_SET);
	snprintf(r->kq.u.cred.id, sizeof(r->kq.u.cred.id), "%s", r->id);
	r->kq.u.cred.what = KS_CRED_PASSWORD;
	snprintf(r->kq.u.cred.phc, sizeof(r->kq.u.cred.phc), "%s", phc);
	rc = api_ks(r);
	if (rc != 0)
		api_answer_ks_error(r, rc);
	else
		api_answer_json(r, 200, "{\"password_set\":true}", 21);
out:
	yyjson_doc_free(doc); /* api_alc(): the password's copy is wiped */
}

/* POST /api/users/{id}/totp: a new secret (a re-enrolment replaces the
 * old one), shown once as an otpauth:// URI. */
void
api_users_totp(struct api_req *r)
{
	struct sr_secret secret = { 0 };
	char uri[TOTP_URI_MAX], name[KS_NAME_MAX], *body = NULL;
	int rc, n = 0;

	if (api_expect_kind(r, KS_KIND_USER) != 0 ||
	    api_officer_guard(r, &r->kr.meta) != 0)
		return;
	snprintf(name, sizeof(name), "%s", r->kr.meta.name);
	ks_request_init(&r->kq, KS_OP_CRED_SET);
	snprintf(r->kq.u.cred.id, sizeof(r->kq.u.cred.id), "%s", r->id);
	r->kq.u.cred.what = KS_CRED_TOTP_ENROL;
	rc = api_ks(r);
	if (rc != 0) {
		api_answer_ks_error(r, rc);
		return;
	}
	rc = sr_secret_set(&secret, r->kr.material, r->kr.material_len);
	ks_reply_wipe(&r->kr);
	if (rc == 0)
		rc =
		    totp_uri(uri, sizeof(uri), name[0] ? name : r->id, &secret);
	sr_secret_free(&secret);
	if (rc > 0 && (body = malloc(TOTP_URI_MAX + 64)) != NULL)
		n = snprintf(body, TOTP_URI_MAX + 64,
		    "{\"otpauth_uri\":\"%s\",\"digits\":%d,\"period\":%d}", uri,
		    TOTP_DIGITS, TOTP_PERIOD);
	if (n > 0)
		api_answer_json(r, 201, body, (size_t)n);
	else
		api_answer_error(r, 503, "unavailable", "enrolment failed");
	sr_wipe(uri, sizeof(uri));
	sr_free_wiped(body);
}
