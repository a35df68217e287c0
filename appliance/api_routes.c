/*
 * appliance/api_routes.c: the management API's handlers and the route
 * table (the OAuth token endpoint is api_oauth.c). Each runs on a worker thread
 * with the caller already authenticated and allowed (api.c), calls the
 * keystore, and writes its JSON answer into the request; api.c records it in
 * the audit log before it is released.
 *
 * Last, the authorization matrix: every role's decision on every route of
 * the table under a policy file, for sr-policy and the generated test.
 *
 * It must never put a secret in an answer except the one place that shows
 * it once (a new API key, a new access token), and never trust a path id
 * or a body field without the keystore's own validation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yyjson.h>

#include "appliance/api_impl.h"
#include "pkcs11/p11.h"

/* Metadata as JSON: never material. */
void
api_meta_json(yyjson_mut_doc *d, yyjson_mut_val *o, const struct ks_meta *m)
{
	yyjson_mut_obj_add_strcpy(d, o, "id", m->id);
	yyjson_mut_obj_add_strcpy(d, o, "kind", ks_kind_name(m->kind));
	yyjson_mut_obj_add_strcpy(d, o, "name", m->name);
	yyjson_mut_obj_add_strcpy(d, o, "state", ks_state_name(m->state));
	if (m->parent[0] != '\0')
		yyjson_mut_obj_add_strcpy(d, o, "owner", m->parent);
	yyjson_mut_obj_add_int(d, o, "created_at", m->created_at);
	if (m->expires_at != 0)
		yyjson_mut_obj_add_int(d, o, "expires_at", m->expires_at);
	if (m->apikey_prefix[0] != '\0')
		yyjson_mut_obj_add_strcpy(d, o, "prefix", m->apikey_prefix);
	if (m->reason[0] != '\0')
		yyjson_mut_obj_add_strcpy(d, o, "reason", m->reason);
	if (m->last_used != 0)
		yyjson_mut_obj_add_int(d, o, "last_used", m->last_used);
	api_app_cidrs_json(d, o, m);
	if (m->scope[0] != '\0') {
		yyjson_doc *s = yyjson_read(m->scope, strlen(m->scope), 0);

		if (s != NULL) {
			yyjson_mut_obj_add_val(d, o, "attributes",
			    yyjson_val_mut_copy(d, yyjson_doc_get_root(s)));
			yyjson_doc_free(s);
		}
	}
}

void
api_answer_doc(struct api_req *r, int status, yyjson_mut_doc *d)
{
	size_t len;
	char *text = yyjson_mut_write_opts(d, 0, api_alc(), &len, NULL);

	if (text == NULL)
		api_answer_error(r, 500, "internal", "out of memory");
	else
		api_answer_json(r, status, text, len);
	sr_free_wiped(text); /* it may be a new key's only showing */
	yyjson_mut_doc_free(d);
}

/* One key's metadata from r->kr.meta. */
void
api_answer_meta(struct api_req *r, int status)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(api_alc());
	yyjson_mut_val *o = yyjson_mut_obj(d);

	yyjson_mut_doc_set_root(d, o);
	api_meta_json(d, o, &r->kr.meta);
	api_answer_doc(r, status, d);
}

/* A page of r->kr.list. */
static void
answer_list(struct api_req *r)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(api_alc());
	yyjson_mut_val *o = yyjson_mut_obj(d), *arr = yyjson_mut_arr(d), *e;
	uint32_t i;

	yyjson_mut_doc_set_root(d, o);
	for (i = 0; i < r->kr.count; i++) {
		e = yyjson_mut_obj(d);
		api_meta_json(d, e, &r->kr.list[i]);
		yyjson_mut_arr_append(arr, e);
	}
	yyjson_mut_obj_add_val(d, o, "data", arr);
	if (r->kr.next[0] != '\0')
		yyjson_mut_obj_add_strcpy(d, o, "next", r->kr.next);
	api_answer_doc(r, 200, d);
}

int
api_query_param(struct api_req *r, const char *query, const char *name,
    char *out, size_t cap)
{
	char msg[160];
	int rc = api_query_get(query, name, out, cap);

	if (rc == 0)
		return 0;
	if (rc == -E2BIG)
		snprintf(msg, sizeof(msg),
		    "%.40s: too long (at most %zu bytes)", name, cap - 1);
	else
		snprintf(
		    msg, sizeof(msg), "%.40s: holds an encoded NUL byte", name);
	api_answer_error(r, 400, "invalid_request", msg);
	return rc;
}

int
api_query_only(struct api_req *r, const char *const names[])
{
	char bad[33], list[128], msg[256];
	size_t len = 0;
	unsigned i;
	int why = api_query_stray(r->query, names, bad, sizeof(bad));

	if (why == 0)
		return 0;
	list[0] = '\0';
	for (i = 0; names[i] != NULL && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
		    i ? ", " : "", names[i]);
	/* A name is echoed only when it is a plain word: never a pasted
	 * secret or bytes a reader's terminal would act on. */
	if (bad[0] == '\0' ||
	    bad[strspn(bad,
	        "abcdefghijklmnopqrstuvwxyz"
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")] != '\0' ||
	    strlen(bad) > 24)
		snprintf(msg, sizeof(msg),
		    "a parameter this route does not take; "
		    "it takes %s",
		    list[0] ? list : "none");
	else if (why == API_QUERY_NO_VALUE)
		snprintf(msg, sizeof(msg), "%s: no value (%s=...)", bad, bad);
	else if (why == API_QUERY_REPEATED)
		snprintf(msg, sizeof(msg), "%s given more than once", bad);
	else
		snprintf(msg, sizeof(msg),
		    "unknown parameter \"%s\"; this route takes %s", bad,
		    list[0] ? list : "none");
	api_answer_error(r, 400, "invalid_request", msg);
	return -EINVAL;
}

int
api_expect_kind(struct api_req *r, unsigned kind)
{
	int rc = 0;

	if (r->res_read && strcmp(r->res_meta.id, r->id) == 0) {
		r->kr.meta = r->res_meta; /* read by authenticate() */
		r->res_read = 0;          /* once: what follows may change it */
	} else {
		ks_request_init(&r->kq, KS_OP_GET);
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", r->id);
		rc = api_ks(r);
	}
	if (rc == 0 && r->kr.meta.kind != kind)
		rc = KS_ENOTFOUND;
	if (rc != 0)
		api_answer_ks_error(r, rc);
	return rc;
}

/* An app's create or update as the answer; a taken name is a 409. */
static void
app_answer(struct api_req *r, int rc, int status)
{
	if (rc == KS_EEXISTS)
		api_answer_error(
		    r, 409, "conflict", "an app with that name exists");
	else if (rc != 0)
		api_answer_ks_error(r, rc);
	else
		api_answer_meta(r, status);
}

/* POST /api/apps {"name","cidrs":[...],"expires_in_days","scopes":[...],
 * "rate_limit":{...}}, checked by api_apps.c. */
static void
apps_create(struct api_req *r)
{
	struct ks_create_req *c = &r->kq.u.create;
	struct api_app_body b;

	ks_request_init(&r->kq, KS_OP_CREATE);
	c->kind = KS_KIND_APP;
	if (api_app_body_parse(r, 1, &b) != 0 ||
	    api_app_scope(r, &b, NULL, c->scope) != 0)
		goto out;
	memcpy(c->name, b.name, sizeof(c->name));
	memcpy(c->cidrs, b.cidrs, sizeof(c->cidrs));
	c->expires_at = b.expires_at;
	/* The developer who made the app owns it. */
	if (r->caller.kind == KS_KIND_USER)
		snprintf(c->parent, sizeof(c->parent), "%s", r->caller.id);
	app_answer(r, api_ks(r), 201);
out:
	api_app_body_free(&b);
}

/* The update of the app just read (r->kr.meta) with @p b's members: the
 * keystore's answer, or 1 when the answer (400, 503) is written. */
static int
app_update_once(struct api_req *r, const struct api_app_body *b)
{
	struct ks_update_req *u = &r->kq.u.update;
	char scope[KS_SCOPE_MAX];
	uint64_t seen = r->kr.meta.record_version;

	if ((b->set & (API_APP_SCOPES | API_APP_RATE)) &&
	    api_app_scope(r, b, r->kr.meta.scope, scope) != 0)
		return 1;
	ks_request_init(&r->kq, KS_OP_UPDATE);
	snprintf(u->id, sizeof(u->id), "%s", r->id);
	u->kind = KS_KIND_APP;
	u->record_version = seen; /* refused if it changed since */
	if (b->set & API_APP_NAME) {
		u->what |= KS_UPDATE_NAME;
		memcpy(u->name, b->name, sizeof(u->name));
	}
	if (b->set & API_APP_CIDRS) {
		u->what |= KS_UPDATE_CIDRS;
		memcpy(u->cidrs, b->cidrs, sizeof(u->cidrs));
	}
	if (b->set & (API_APP_SCOPES | API_APP_RATE)) {
		u->what |= KS_UPDATE_SCOPE;
		memcpy(u->scope, scope, sizeof(u->scope));
	}
	if (b->set & API_APP_EXPIRES) {
		u->what |= KS_UPDATE_EXPIRES;
		u->expires_at = b->expires_at;
	}
	return api_ks(r);
}

/* PATCH /api/apps/{id}: any of create's members, checked the same way;
 * what the body does not name stays. A disabled app may be changed and
 * stays disabled; a deleted one is gone (404). */
static void
apps_update(struct api_req *r)
{
	struct api_app_body b;
	int rc = KS_ESTATE, tries;

	if (api_app_body_parse(r, 0, &b) != 0)
		goto out;
	/* Read, merge, write unless the app changed in between. */
	for (tries = 0; tries < 3 && rc == KS_ESTATE; tries++) {
		if (api_expect_kind(r, KS_KIND_APP) != 0)
			goto out;
		if (r->kr.meta.state == KS_STATE_REVOKED ||
		    r->kr.meta.state == KS_STATE_DESTROYED) {
			api_answer_error(
			    r, 404, "not_found", "the app was deleted");
			goto out;
		}
		if ((rc = app_update_once(r, &b)) == 1)
			goto out;
	}
	if (rc == KS_ESTATE)
		api_answer_error(r, 409, "conflict",
		    "the app kept changing during the update: try again");
	else
		app_answer(r, rc, 200);
out:
	api_app_body_free(&b);
}

/* A page of keys of @p kind, under @p parent ("" for any), from ?after=. */
void
api_list_op(struct api_req *r, unsigned kind, const char *parent)
{
	static const char *const params[] = { "after", NULL };
	int rc;

	if (api_query_only(r, params) != 0)
		return;
	ks_request_init(&r->kq, KS_OP_LIST);
	r->kq.u.list.kind = (uint8_t)kind;
	r->kq.u.list.limit = KS_LIST_MAX;
	snprintf(
	    r->kq.u.list.parent, sizeof(r->kq.u.list.parent), "%s", parent);
	if (api_query_param(r, r->query, "after", r->kq.u.list.after,
	        sizeof(r->kq.u.list.after)) != 0)
		return;
	if ((rc = api_ks(r)) != 0)
		api_answer_ks_error(r, rc);
	else
		answer_list(r);
}

static void
apps_list(struct api_req *r)
{
	api_list_op(r, KS_KIND_APP, "");
}

/* {"reason":"...","compromised":bool}, both optional, into the revoke
 * request. 0, or an error already answered. */
static int
revoke_body(struct api_req *r)
{
	static const char *const members[] = { "reason", "compromised", NULL };
	yyjson_doc *doc;
	yyjson_val *root, *v;
	const char *reason = "revoked";
	size_t i;
	int rc;

	if ((rc = api_body_object(r, members, 1, &doc, &root)) != 0)
		goto out;
	rc = -EINVAL;
	if ((v = yyjson_obj_get(root, "reason")) != NULL) {
		reason = yyjson_get_str(v);
		if (!yyjson_is_str(v) || yyjson_get_len(v) == 0 ||
		    yyjson_get_len(v) >= KS_REASON_MAX) {
			api_answer_error(r, 400, "invalid_request",
			    "\"reason\": a string of 1 to 127 bytes");
			goto out;
		}
		for (i = 0; i < yyjson_get_len(v); i++)
			if ((unsigned char)reason[i] < 0x20 ||
			    reason[i] == 0x7f) {
				api_answer_error(r, 400, "invalid_request",
				    "\"reason\": no control characters");
				goto out;
			}
	}
	v = yyjson_obj_get(root, "compromised");
	if (v != NULL && !yyjson_is_bool(v)) {
		api_answer_error(r, 400, "invalid_request",
		    "\"compromised\": true or false");
		goto out;
	}
	snprintf(r->kq.u.revoke.id, sizeof(r->kq.u.revoke.id), "%s", r->id);
	snprintf(
	    r->kq.u.revoke.reason, sizeof(r->kq.u.revoke.reason), "%s", reason);
	r->kq.u.revoke.compromised = yyjson_is_true(v);
	rc = 0;
out:
	yyjson_doc_free(doc);
	return rc;
}

/* GET, state changes and revocation of the key named by the path. */
static void
key_op(struct api_req *r, enum ks_op op, int status)
{
	int rc;

	ks_request_init(&r->kq, op);
	if (op == KS_OP_REVOKE && revoke_body(r) != 0)
		return;
	if (op != KS_OP_REVOKE)
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", r->id);
	if ((rc = api_ks(r)) != 0)
		api_answer_ks_error(r, rc);
	else
		api_answer_meta(r, status);
}

static void
apps_read(struct api_req *r)
{
	if (api_expect_kind(r, KS_KIND_APP) == 0)
		api_answer_meta(r, 200);
}

/* Apps routes act on apps only: an id of any other record (a user, an
 * API key, the appliance's own signing keys) is 404. */
static void
apps_disable(struct api_req *r)
{
	if (api_expect_kind(r, KS_KIND_APP) == 0)
		key_op(r, KS_OP_SUSPEND, 200);
}

static void
apps_delete(struct api_req *r)
{
	if (api_expect_kind(r, KS_KIND_APP) == 0)
		key_op(r, KS_OP_REVOKE, 200);
}

/* API keys only; a security officer's own keys only by a security officer. */
static void
keys_revoke(struct api_req *r)
{
	if (api_expect_kind(r, KS_KIND_APIKEY) == 0 &&
	    api_officer_guard_key(r, &r->kr.meta) == 0)
		key_op(r, KS_OP_REVOKE, 200);
}

/* The owner named by /api/apps/{id}/keys or /api/users/{id}/keys must be
 * an app or a user, as the path says (404 otherwise); a security
 * officer's keys are a security officer's business. */
static unsigned
keys_owner_kind(const struct api_req *r)
{
	return strncmp(r->rt->pattern, "/api/users/", 11) == 0 ? KS_KIND_USER
	                                                       : KS_KIND_APP;
}

static int
keys_owner(struct api_req *r)
{
	if (api_expect_kind(r, keys_owner_kind(r)) != 0)
		return -ENOENT;
	return api_officer_guard(r, &r->kr.meta);
}

/* POST /api/{apps,users}/{id}/keys: the key is shown here and never
 * again. */
void
api_keys_create(struct api_req *r)
{
	yyjson_mut_doc *d;
	yyjson_mut_val *o;
	int rc;

	if (keys_owner(r) != 0)
		return;
	ks_request_init(&r->kq, KS_OP_APIKEY_CREATE);
	snprintf(r->kq.u.apikey_create.owner,
	    sizeof(r->kq.u.apikey_create.owner), "%s", r->id);
	if ((rc = api_ks(r)) != 0) {
		api_answer_ks_error(r, rc);
		return;
	}
	sr_strlcpy(r->made_key, r->kr.meta.id, sizeof(r->made_key));
	d = yyjson_mut_doc_new(api_alc());
	o = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, o);
	api_meta_json(d, o, &r->kr.meta);
	yyjson_mut_obj_add_strcpy(d, o, "key", r->kr.apikey);
	ks_reply_wipe(&r->kr);
	api_answer_doc(r, 201, d);
}

void
api_keys_list(struct api_req *r)
{
	if (api_expect_kind(r, keys_owner_kind(r)) == 0)
		api_list_op(r, KS_KIND_APIKEY, r->id);
}

static void
keys_expiring(struct api_req *r)
{
	static const char *const params[] = { "after", NULL };
	int rc;

	if (api_query_only(r, params) != 0)
		return;
	ks_request_init(&r->kq, KS_OP_EXPIRING);
	r->kq.u.expiring.within = 72 * 3600;
	r->kq.u.expiring.limit = KS_LIST_MAX;
	if (api_query_param(r, r->query, "after", r->kq.u.expiring.after,
	        sizeof(r->kq.u.expiring.after)) != 0)
		return;
	if ((rc = api_ks(r)) != 0)
		api_answer_ks_error(r, rc);
	else
		answer_list(r);
}

/* The module, the token and the mechanisms the HSM offers us: what an
 * operator checks against the vendor's sheet. No PIN, no key. */
static void
hsm_info_json(
    yyjson_mut_doc *d, yyjson_mut_val *o, const struct p11_token_info *info)
{
	yyjson_mut_val *m = yyjson_mut_obj_add_obj(d, o, "module");
	yyjson_mut_val *t = yyjson_mut_obj_add_obj(d, o, "token");
	yyjson_mut_val *mechs = yyjson_mut_obj_add_arr(d, o, "mechanisms");
	unsigned i;

	yyjson_mut_obj_add_strcpy(d, m, "path", info->module_path);
	yyjson_mut_obj_add_strcpy(
	    d, m, "description", info->library_description);
	yyjson_mut_obj_add_uint(d, m, "recoveries", info->recoveries);
	yyjson_mut_obj_add_strcpy(d, t, "label", info->token_label);
	yyjson_mut_obj_add_strcpy(d, t, "serial", info->token_serial);
	yyjson_mut_obj_add_strcpy(d, t, "model", info->token_model);
	yyjson_mut_obj_add_strcpy(
	    d, t, "manufacturer", info->token_manufacturer);
	yyjson_mut_obj_add_uint(d, t, "slot_id", info->slot_id);
	for (i = 0; i < P11_MECH_COUNT; i++)
		if (info->mechs & (1u << i))
			yyjson_mut_arr_add_str(d, mechs, p11_mech_name(i));
}

/* GET /api/hsm: the module, token, mechanisms, root key versions; never a
 * secret. */
static void
hsm_status(struct api_req *r)
{
	struct p11_token_info info;
	yyjson_mut_doc *d;
	yyjson_mut_val *o;
	int rc;

	ks_request_init(&r->kq, KS_OP_STATS);
	if ((rc = api_ks(r)) != 0) {
		api_answer_ks_error(r, rc);
		return;
	}
	d = yyjson_mut_doc_new(api_alc());
	o = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, o);
	yyjson_mut_obj_add_strcpy(d, o, "appliance", r->kr.stats.appliance_id);
	yyjson_mut_obj_add_uint(
	    d, o, "root_kek_version", r->kr.stats.root_kek_version);
	yyjson_mut_obj_add_uint(
	    d, o, "root_kdk_version", r->kr.stats.root_kdk_version);
	yyjson_mut_obj_add_uint(d, o, "dek_version", r->kr.stats.dek_version);
	if (r->api->hsm != NULL && p11_token_info(r->api->hsm, &info) == 0)
		hsm_info_json(d, o, &info);
	api_answer_doc(r, 200, d);
}

static const struct api_route routes[] = {
	{ "POST", "/oauth/token", "oauth.token", api_oauth_token, 1, 0,
	    api_oauth_error },
	{ "POST", "/api/apps", "apps.create", apps_create, 0, 0, NULL },
	{ "GET", "/api/apps", "apps.list", apps_list, 0, 1, NULL },
	{ "GET", "/api/apps/{id}", "apps.read", apps_read, 0, 1, NULL },
	{ "PATCH", "/api/apps/{id}", "apps.update", apps_update, 0, 0, NULL },
	{ "DELETE", "/api/apps/{id}", "apps.delete", apps_delete, 0, 0, NULL },
	{ "POST", "/api/apps/{id}/disable", "apps.disable", apps_disable, 0, 0,
	    NULL },
	{ "POST", "/api/apps/{id}/keys", "keys.create", api_keys_create, 0, 0,
	    NULL },
	{ "GET", "/api/apps/{id}/keys", "keys.list", api_keys_list, 0, 1,
	    NULL },
	{ "POST", "/api/users", "users.create", api_users_create, 0, 0, NULL },
	{ "GET", "/api/users", "users.list", api_users_list, 0, 1, NULL },
	{ "GET", "/api/users/{id}", "users.read", api_users_read, 0, 1, NULL },
	{ "DELETE", "/api/users/{id}", "users.delete", api_users_delete, 0, 0,
	    NULL },
	{ "POST", "/api/users/{id}/disable", "users.disable", api_users_disable,
	    0, 0, NULL },
	{ "POST", "/api/users/{id}/password", "users.password",
	    api_users_password, 0, 0, NULL },
	{ "POST", "/api/users/{id}/totp", "users.totp", api_users_totp, 0, 0,
	    NULL },
	{ "POST", "/api/users/{id}/keys", "keys.create", api_keys_create, 0, 0,
	    NULL },
	{ "GET", "/api/users/{id}/keys", "keys.list", api_keys_list, 0, 1,
	    NULL },
	{ "POST", "/api/keys/{id}/revoke", "keys.revoke", keys_revoke, 0, 0,
	    NULL },
	{ "POST", "/api/keys/{id}/rotate", "keys.rotate", api_keys_rotate, 0, 0,
	    NULL },
	{ "POST", "/api/keys/{id}/leak", "keys.revoke", api_keys_leak, 0, 0,
	    NULL },
	{ "GET", "/api/keys/expiring", "keys.expiring", keys_expiring, 0, 1,
	    NULL },
	{ "GET", "/api/audit", "audit.read", api_audit_read, 0, 0, NULL },
	{ "GET", "/api/hsm", "hsm.status", hsm_status, 0, 0, NULL },
	{ "POST", "/api/login", "session.login", api_login, 1, 0, NULL },
	{ "POST", "/api/logout", "session.logout", api_logout, 1, 0, NULL },
};

const struct api_route *
api_route_table(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

#define ID_CHARS \
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* @p path against @p pattern; "{id}" takes one 12-character key id of
 * base62 characters only: anything else can name no record, so such a
 * path is no route (404 not_found), never a keystore request error. */
static int
path_match(const char *pattern, const char *path, char id[KS_ID_LEN + 1])
{
	const char *brace = strstr(pattern, "{id}");
	size_t pre, n;

	if (brace == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(brace - pattern);
	if (strncmp(pattern, path, pre) != 0)
		return 0;
	n = strspn(path + pre, ID_CHARS);
	if (n != KS_ID_LEN || strcmp(brace + 4, path + pre + n) != 0)
		return 0;
	memcpy(id, path + pre, KS_ID_LEN);
	id[KS_ID_LEN] = '\0';
	return 1;
}

size_t
api_route_allow(const char *path, char *out, size_t cap)
{
	char id[KS_ID_LEN + 1];
	size_t i, n = 0, m;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_match(routes[i].pattern, path, id))
			continue;
		m = strlen(routes[i].method);
		if (n + m + 3 > cap)
			break;
		if (n != 0) {
			memcpy(out + n, ", ", 2);
			n += 2;
		}
		memcpy(out + n, routes[i].method, m + 1);
		n += m;
		/* A GET route answers HEAD too (RFC 9110 9.3.2). */
		if (strcmp(routes[i].method, "GET") == 0 && n + 9 <= cap) {
			memcpy(out + n, ", HEAD", 7);
			n += 6;
		}
	}
	return n;
}

const struct api_route *
api_route_find(const char *method, const char *path, char id[KS_ID_LEN + 1],
    int *method_ok)
{
	size_t i;
	int seen = 0;

	id[0] = '\0';
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_match(routes[i].pattern, path, id))
			continue;
		/* HEAD is answered as GET; the connection sends the head. */
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 &&
		        strcmp(routes[i].method, "GET") == 0))
			return &routes[i];
		seen = 1;
	}
	*method_ok = !seen;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The authorization matrix (sr-policy matrix; the generated test)      */
/* ------------------------------------------------------------------ */

#define MATRIX_ID "zzzzzzzzzzzz" /* a well-formed id that never exists */

/* @p pattern with "{id}" replaced by MATRIX_ID. */
static void
route_path(const char *pattern, char *out, size_t cap)
{
	const char *brace = strstr(pattern, "{id}");

	if (brace == NULL)
		snprintf(out, cap, "%s", pattern);
	else
		snprintf(out, cap, "%.*s%s%s", (int)(brace - pattern), pattern,
		    MATRIX_ID, brace + 4);
}

int
api_authz_matrix(const char *policy_file, FILE *out, char err[512])
{
	const struct api_route *rt;
	struct policy *p = NULL;
	struct policy_subject s = { 0 };
	struct policy_request q = { 0 };
	struct policy_decision d;
	struct sockaddr_in sin = { 0 };
	char path[256];
	size_t i, n;
	unsigned role;
	int rc;

	rc = policy_file != NULL && policy_file[0] != '\0'
	    ? policy_load_file(&p, policy_file, err)
	    : policy_load_default(&p, err);
	if (rc != 0)
		return rc;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s.id = "matrix-caller";
	s.addr = (const struct sockaddr *)&sin;
	s.now = time(NULL);
	rt = api_route_table(&n);
	for (i = 0; i < n; i++) {
		if (rt[i].public)
			continue;
		route_path(rt[i].pattern, path, sizeof(path));
		for (role = 0; role < POLICY_ROLE_COUNT; role++) {
			s.roles = 1u << role;
			q.action = rt[i].action;
			q.resource = path;
			q.owner = NULL;
			if (policy_evaluate(p, &s, &q, &d) != 0)
				d.allow = 0;
			fprintf(out, "%s %s %s %s %s\n",
			    policy_role_name(1u << role), rt[i].method, path,
			    rt[i].action, d.allow ? "allow" : "deny");
		}
	}
	policy_free(p);
	return ferror(out) ? -EIO : 0;
}
