/*
 * appliance/api.c: the life of an authenticated request. On the loop: the
 * route is found and the request copied; the credential's format is
 * checked (a typo costs no lookup) and an API key found in the keystore's
 * cache is accepted at once. On a worker: a full API-key or JWT check and
 * the owner of the resource. On the loop again: the source network of an
 * app's key, the roles, the policy's decision. Then the handler (worker),
 * then the audit line (the writer's thread), and only when the line is on
 * disk is the answer released; when it cannot be written the caller gets
 * 503 instead.
 *
 * It must never answer before the audit line is durable, never log or
 * audit a credential (key ids and prefixes only), never say why a key
 * was refused unless its secret matched, and never block a loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <uv.h>
#include <yyjson.h>

#include "appliance/api_impl.h"

static void
req_free(struct api_req *r)
{
	if (r == NULL)
		return;
	if (r->ext != NULL && r->ext_arg != NULL) /* refused before start */
		r->ext->step(r->p, r->ext_arg, NULL, NULL);
	free(r->body);
	buf_free(&r->answer);
	ks_reply_wipe(&r->kr);
	sr_wipe(r, sizeof(*r));
	free(r);
}

int
api_ks(struct api_req *r)
{
	ks_reply_init(&r->kr);
	return ks_call(r->api->ks, &r->kq, &r->kr);
}

void
api_answer_json(struct api_req *r, int status, const char *json, size_t len)
{
	r->answer.len = 0;
	r->status = status;
	http_response(
	    &r->answer, status, "application/json", json, len, r->keep_alive);
}

void
api_answer_error(
    struct api_req *r, int status, const char *code, const char *message)
{
	r->answer.len = 0;
	r->status = status;
	if (r->ext != NULL && r->ext->error != NULL)
		r->ext->error(&r->answer, status, code, message, r->keep_alive);
	else
		http_error(&r->answer, status, code, message, r->keep_alive);
}

void
api_answer_json_hdr(struct api_req *r, int status, const char *json, size_t len,
    const struct http_header *extra, size_t nextra)
{
	r->answer.len = 0;
	r->status = status;
	if (http_response_head(&r->answer, status, "application/json", len,
	        r->keep_alive, extra, nextra) < 0 ||
	    buf_append(&r->answer, json, len) < 0) {
		r->answer.len = 0;
		http_error(&r->answer, 500, "internal", "out of memory",
		    r->keep_alive);
		r->status = 500;
	}
}

void
api_answer_retry(struct api_req *r, int status, const char *code,
    const char *message, unsigned retry_after)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(NULL);
	yyjson_mut_val *o = yyjson_mut_obj(d), *e = yyjson_mut_obj(d);
	struct http_header h = { "Retry-After", NULL, 11, 0 };
	char secs[16], *text;
	size_t len;

	yyjson_mut_doc_set_root(d, o);
	yyjson_mut_obj_add_str(d, e, "code", code);
	yyjson_mut_obj_add_str(d, e, "message", message);
	yyjson_mut_obj_add_val(d, o, "error", e);
	text = yyjson_mut_write(d, 0, &len);
	h.value_len = (size_t)snprintf(secs, sizeof(secs), "%u", retry_after);
	h.value = secs;
	if (text != NULL)
		api_answer_json_hdr(r, status, text, len, &h, 1);
	else
		api_answer_error(r, 500, "internal", "out of memory");
	free(text);
	yyjson_mut_doc_free(d);
}

void
api_answer_ks_error(struct api_req *r, int rc)
{
	switch (rc) {
	case KS_ENOTFOUND:
		api_answer_error(r, 404, "not_found", sr_strerror(rc));
		break;
	case KS_EEXISTS:
	case KS_ESTATE:
		api_answer_error(r, 409, "conflict", sr_strerror(rc));
		break;
	case KS_EREQUEST:
	case KS_EEXPIRED:
		api_answer_error(r, 400, "invalid_request", sr_strerror(rc));
		break;
	default:
		api_answer_error(r, 503, "unavailable", sr_strerror(rc));
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Authentication                                                       */
/* ------------------------------------------------------------------ */

/* What an API key's refusal is called, once its secret matched. */
static const char *
refusal_code(int rc)
{
	switch (rc) {
	case KS_EREVOKED:
		return "key_revoked";
	case KS_ESUSPENDED:
		return "key_suspended";
	case KS_EEXPIRED:
		return "key_expired";
	case KS_ENOTYET:
		return "key_not_yet_valid";
	default:
		return "invalid_api_key";
	}
}

/* Roles and scopes from a caller's record: apps are services; a user's
 * roles are in its scope JSON ({"roles":[...],"scopes":[...]}). */
static void
caller_from_meta(struct api_req *r, const struct ks_meta *m)
{
	yyjson_doc *doc;
	yyjson_val *arr, *v;
	size_t i, n;
	int bit;

	r->caller = *m;
	r->roles = 0;
	r->scopes[0] = '\0';
	snprintf(r->actor, sizeof(r->actor), "%s:%s",
	    m->kind == KS_KIND_USER ? "user" : "app", m->id);
	if (m->kind == KS_KIND_APP)
		r->roles = POLICY_ROLE_SERVICE;
	doc = yyjson_read(m->scope, strlen(m->scope), 0);
	if (doc == NULL)
		return;
	arr = yyjson_obj_get(yyjson_doc_get_root(doc), "roles");
	if (m->kind == KS_KIND_USER)
		yyjson_arr_foreach(arr, i, n, v)
		{
			bit = yyjson_is_str(v)
			    ? policy_role_from_name(yyjson_get_str(v))
			    : -EINVAL;
			if (bit > 0)
				r->roles |= (unsigned)bit;
		}
	/* {"rate_limit":{"rate":R,"burst":B}}: the caller's own limit. */
	v = yyjson_obj_get(yyjson_doc_get_root(doc), "rate_limit");
	if (yyjson_is_num(yyjson_obj_get(v, "rate")))
		r->rate = yyjson_get_num(yyjson_obj_get(v, "rate"));
	if (yyjson_is_num(yyjson_obj_get(v, "burst")))
		r->burst = yyjson_get_num(yyjson_obj_get(v, "burst"));
	arr = yyjson_obj_get(yyjson_doc_get_root(doc), "scopes");
	yyjson_arr_foreach(arr, i, n, v)
	{
		size_t used = strlen(r->scopes);

		if (yyjson_is_str(v))
			snprintf(r->scopes + used, sizeof(r->scopes) - used,
			    "%s%s", used ? " " : "", yyjson_get_str(v));
	}
	yyjson_doc_free(doc);
}

/* Worker: the whole check of the credential, and the resource's owner. */
static void
auth_work(void *arg)
{
	struct api_req *r = arg;
	struct jwt_claims *cl;
	struct jwt_verify_opts vo;
	int rc;

	if (r->session_user[0] != '\0') {
		/* A console session: the user must still be active. */
		ks_request_init(&r->kq, KS_OP_GET);
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s",
		    r->session_user);
		rc = api_ks(r);
		if (rc == 0 &&
		    (r->kr.meta.kind != KS_KIND_USER ||
		        r->kr.meta.state != KS_STATE_ACTIVE))
			rc = KS_ESUSPENDED;
		r->auth_rc = rc;
		if (rc == 0)
			caller_from_meta(r, &r->kr.meta);
		else
			r->auth_code = "invalid_session";
	} else if (strncmp(r->bearer, "srk_", 4) == 0) {
		r->is_apikey = 1;
		ks_request_init(&r->kq, KS_OP_APIKEY_VERIFY);
		snprintf(r->kq.u.apikey_verify.key,
		    sizeof(r->kq.u.apikey_verify.key), "%s", r->bearer);
		rc = api_ks(r);
		sr_wipe(&r->kq, sizeof(r->kq));
		r->auth_rc = rc;
		if (rc == 0)
			caller_from_meta(r, &r->kr.meta);
		else
			r->auth_code = refusal_code(rc);
	} else {
		cl = calloc(1, sizeof(*cl));
		vo = (struct jwt_verify_opts){ r->api->issuer, r->api->issuer,
			(int64_t)time(NULL) };
		rc = cl == NULL ? -ENOMEM
		                : jwt_verify(r->api->jwks, r->bearer, &vo, cl);
		if (rc == 0) {
			/* The client must still be usable: revoking an app
			 * ends its tokens too. */
			ks_request_init(&r->kq, KS_OP_GET);
			snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s",
			    cl->sub);
			rc = api_ks(r);
			if (rc == 0 && r->kr.meta.state != KS_STATE_ACTIVE)
				rc = r->kr.meta.state == KS_STATE_SUSPENDED
				    ? KS_ESUSPENDED
				    : KS_EREVOKED;
			if (rc == 0) {
				caller_from_meta(r, &r->kr.meta);
				/* A token carries the scopes it was issued
				 * with, never more than its client has now
				 * (an app's scopes narrowed since). */
				policy_scopes_keep(cl->scope, r->scopes);
				snprintf(r->scopes, sizeof(r->scopes), "%s",
				    cl->scope);
				snprintf(r->key_id, sizeof(r->key_id), "%.12s",
				    cl->kid);
			}
		}
		r->auth_rc = rc;
		if (rc != 0)
			r->auth_code = rc == KS_EREVOKED || rc == KS_ESUSPENDED
			    ? refusal_code(rc)
			    : "invalid_token";
		free(cl);
	}
	if (r->auth_rc == 0 && r->id[0] != '\0') {
		ks_request_init(&r->kq, KS_OP_GET);
		snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s", r->id);
		if (api_ks(r) == 0) {
			/* An API key's owner is its app's or user's owner. */
			snprintf(r->owner, sizeof(r->owner), "%s",
			    r->kr.meta.kind == KS_KIND_APP ||
			            r->kr.meta.kind == KS_KIND_APIKEY
			        ? r->kr.meta.parent
			        : r->kr.meta.id);
			/* An app key: the app's owner, one level up. */
			ks_request_init(&r->kq, KS_OP_GET);
			snprintf(r->kq.u.key.id, sizeof(r->kq.u.key.id), "%s",
			    r->owner);
			if (r->kr.meta.kind == KS_KIND_APIKEY &&
			    r->owner[0] != '\0' && api_ks(r) == 0 &&
			    r->kr.meta.kind == KS_KIND_APP)
				snprintf(r->owner, sizeof(r->owner), "%s",
				    r->kr.meta.parent);
		}
	}
	sr_wipe(r->bearer, sizeof(r->bearer));
}

/* The app's key is good only from its bound networks. */
static int
from_bound_network(const struct api_req *r)
{
	const struct ks_cidr *c;
	size_t i, bits, n;
	int any = 0,
	    v4 = memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;

	for (i = 0; i < KS_CIDR_MAX; i++) {
		c = &r->caller.cidrs[i];
		if (c->family == 0)
			continue;
		any = 1;
		if ((c->family == 4) != v4)
			continue;
		bits = c->prefix;
		const uint8_t *a = v4 ? r->addr + 12 : r->addr;
		n = bits / 8;
		if (memcmp(a, c->addr, n) != 0)
			continue;
		if (bits % 8 != 0 &&
		    ((a[n] ^ c->addr[n]) & (uint8_t)(0xff << (8 - bits % 8))))
			continue;
		return 1;
	}
	return !any;
}

/* ------------------------------------------------------------------ */
/* Audit, then the answer                                               */
/* ------------------------------------------------------------------ */

static void
on_audited(void *arg, int status, uint64_t seq)
{
	struct api_req *r = arg;

	(void)seq;
	r->audit_rc = status;
	app_pending_post(r->p);
}

/* Record what happened; the answer waits for the line to be on disk. */
static int
audit_then_answer(struct api_req *r)
{
	char status[8], action[AUDIT_ACTION_MAX];
	struct audit_event ev = { 0 };
	uint64_t ms = (uv_hrtime() - r->t0_ns) / 1000000;

	snprintf(status, sizeof(status), "%d", r->status);
	ev.actor = r->actor[0] != '\0' ? r->actor : "anonymous";
	ev.action = r->ext != NULL ? r->ext->action
	    : r->rt != NULL        ? r->rt->action
	                           : "http.request";
	/* "audit.*" names the log's own events: a read of the log is
	 * recorded as "auditlog.read". */
	if (strncmp(ev.action, "audit.", 6) == 0) {
		snprintf(action, sizeof(action), "auditlog.%s", ev.action + 6);
		ev.action = action;
	}
	ev.resource = r->path;
	ev.key = r->key_id[0] != '\0' ? r->key_id : NULL;
	ev.status = status;
	ev.src = r->src;
	ev.duration_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	r->phase = PH_AUDIT;
	if (audit_append_async(r->api->audit, &ev, on_audited, r) != 0) {
		r->audit_rc = -EIO;
		app_pending_post(r->p);
	}
	return ROUTE_PENDING;
}

static void
handler_work(void *arg)
{
	struct api_req *r = arg;

	r->rt->work(r);
}

static int external_admit(struct api_req *r);

/* Loop: the caller is known (or not); decide, then run the handler. */
static int
after_auth(struct api_req *r)
{
	struct policy_subject s = { 0 };
	struct policy_request q = { 0 };
	struct policy_decision d;
	struct sockaddr_storage ss;
	unsigned retry = 1;

	if (r->auth_rc != 0) {
		api_answer_error(r, r->auth_status ? r->auth_status : 401,
		    r->auth_code,
		    r->auth_status == 403
		        ? "a state-changing call needs the session's "
		          "X-CSRF-Token header"
		        : "the credential was not accepted");
		return audit_then_answer(r);
	}
	if (!from_bound_network(r)) {
		api_answer_error(r, 401, "address_not_allowed",
		    "this key is not accepted from your network");
		return audit_then_answer(r);
	}
	if (!api_keyrate_take(r->api, r->is_apikey ? r->key_id : r->actor,
	        r->rate, r->burst, &retry)) {
		metrics_ratelimited();
		api_answer_retry(r, 429, "rate_limited",
		    "this key's request rate is over its limit", retry);
		return audit_then_answer(r);
	}
	memset(&ss, 0, sizeof(ss));
	if (memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, r->addr + 12, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, r->addr, 16);
	}
	s.id = r->caller.id;
	s.roles = r->roles;
	s.scopes = r->scopes;
	s.addr = (struct sockaddr *)&ss;
	s.now = time(NULL);
	q.action = r->ext != NULL ? r->ext->action : r->rt->action;
	q.resource = r->path;
	q.owner = r->owner[0] != '\0' ? r->owner : NULL;
	if (policy_evaluate(r->api->policy, &s, &q, &d) != 0 || !d.allow) {
		api_answer_error(r, 403, "forbidden",
		    "the access policy does not allow this");
		return audit_then_answer(r);
	}
	if (r->ext != NULL)
		return external_admit(r);
	r->phase = PH_WORK;
	if (app_pending_work(r->p, handler_work) != 0) {
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	return ROUTE_PENDING;
}

static int external_step(struct api_req *r, struct buf *out, int *keep_alive);

static int
api_step(struct app_pending *p, void *arg, struct buf *out, int *keep_alive)
{
	struct api_req *r = arg;
	int status;

	(void)p;
	if (r->phase == PH_EXTERNAL || r->phase == PH_EXT_AUDIT)
		return external_step(r, out, keep_alive);
	/* The connection went away: every step's work has finished
	 * (steps run only then), so nothing else holds r. */
	if (out == NULL) {
		req_free(r);
		return 0;
	}
	switch (r->phase) {
	case PH_AUTH:
		return after_auth(r);
	case PH_WORK:
		return audit_then_answer(r);
	default:
		break;
	}
	if (r->audit_rc != 0) {
		/* Fail closed: nothing is answered unrecorded. */
		r->answer.len = 0;
		r->keep_alive = 0;
		http_error(out, 503, "audit_unavailable",
		    "the audit log cannot be written; nothing was done", 0);
		*keep_alive = 0;
		req_free(r);
		return 503;
	}
	buf_append(out, r->answer.data, r->answer.len);
	*keep_alive = r->keep_alive;
	status = r->status;
	req_free(r);
	return status;
}

/* ------------------------------------------------------------------ */
/* The entry                                                            */
/* ------------------------------------------------------------------ */

int
api_owns(const char *path)
{
	return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0 ||
	    strcmp(path, "/oauth/token") == 0 ||
	    strcmp(path, "/.well-known/jwks.json") == 0;
}

static int
copy_request(struct api_req *r, const struct route_ctx *ctx)
{
	const struct http_request *q = ctx->req;
	const char *auth = http_header_get(q, "authorization"), *cookie;
	int v4;

	if (strlen(q->path) >= sizeof(r->path) ||
	    strlen(q->query) >= sizeof(r->query))
		return -ENAMETOOLONG;
	snprintf(r->method, sizeof(r->method), "%s", q->method);
	snprintf(r->path, sizeof(r->path), "%s", q->path);
	snprintf(r->query, sizeof(r->query), "%s", q->query);
	if (q->body_len > 0) {
		if ((r->body = malloc(q->body_len + 1)) == NULL)
			return -ENOMEM;
		memcpy(r->body, q->body, q->body_len);
		r->body[q->body_len] = '\0';
		r->body_len = q->body_len;
	}
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		snprintf(r->bearer, sizeof(r->bearer), "%s", auth + 7);
	else if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0)
		snprintf(r->basic, sizeof(r->basic), "%s", auth + 6);
	cookie = http_header_get(q, "cookie");
	while (cookie != NULL && *cookie != '\0') {
		cookie += strspn(cookie, " ;");
		if (strncmp(cookie, API_SESSION_COOKIE "=",
		        sizeof(API_SESSION_COOKIE)) == 0) {
			cookie += sizeof(API_SESSION_COOKIE);
			snprintf(r->session, sizeof(r->session), "%.*s",
			    (int)strcspn(cookie, "; "), cookie);
			break;
		}
		cookie = strchr(cookie, ';');
	}
	if ((cookie = http_header_get(q, "x-csrf-token")) != NULL)
		snprintf(r->csrf, sizeof(r->csrf), "%s", cookie);
	memcpy(r->addr, ctx->addr, 16);
	v4 = memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
	inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? r->addr + 12 : r->addr, r->src,
	    sizeof(r->src));
	r->keep_alive = ctx->keep_alive;
	r->t0_ns = ctx->t0_ns;
	return 0;
}

/* A console session cookie: checked here (memory only), the user's
 * record on a worker; state-changing methods need the CSRF header. */
static int
session_auth(struct api_req *r)
{
	int safe =
	    strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	int rc = api_session_check(r->api->sessions, r->session,
	    r->csrf[0] != '\0' ? r->csrf : NULL, !safe, r->session_user);

	sr_wipe(r->session, sizeof(r->session));
	if (rc != 0) {
		r->session_user[0] = '\0';
		r->auth_rc = rc;
		r->auth_status = rc == -EPERM ? 403 : 401;
		r->auth_code =
		    rc == -EPERM ? "csrf_required" : "invalid_session";
		return after_auth(r);
	}
	if (app_pending_work(r->p, auth_work) != 0) {
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	return ROUTE_PENDING;
}

/* Loop: a Bearer credential's form first (a typo or a guess costs no
 * lookup and no HSM), then its record on a worker (auth_work). */
static int
bearer_authenticate(struct api_req *r)
{
	if (r->bearer[0] == '\0') {
		r->auth_rc = -EACCES;
		r->auth_code = "unauthenticated";
		return after_auth(r);
	}
	if (strncmp(r->bearer, "srk_", 4) == 0 &&
	    ks_apikey_check(r->bearer, strlen(r->bearer)) != 0) {
		sr_wipe(r->bearer, sizeof(r->bearer));
		r->auth_rc = KS_EAPIKEY;
		r->auth_code = "invalid_api_key";
		return after_auth(r);
	}
	if (strncmp(r->bearer, "srk_", 4) == 0)
		ks_apikey_id(r->bearer, strlen(r->bearer), r->key_id);
	if (app_pending_work(r->p, auth_work) != 0) {
		sr_wipe(r->bearer, sizeof(r->bearer));
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	return ROUTE_PENDING;
}

int
api_route(struct api *a, struct route_ctx *ctx)
{
	const struct http_request *q = ctx->req;
	struct api_req *r;
	int method_ok = 1, rc;
	char id[KS_ID_LEN + 1];
	const struct api_route *rt;

	ctx->route = MR_OTHER;
	if (strcmp(q->path, "/.well-known/jwks.json") == 0 &&
	    strcmp(q->method, "GET") == 0) {
		http_response(ctx->out, 200, "application/json", a->jwks_json,
		    a->jwks_len, ctx->keep_alive);
		return 200;
	}
	rt = api_route_find(q->method, q->path, id, &method_ok);
	if (rt == NULL)
		return method_ok
		    ? http_error(ctx->out, 404, "not_found", "no such route",
		          ctx->keep_alive)
		    : http_error(ctx->out, 405, "method_not_allowed",
		          "this route takes another method", ctx->keep_alive);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return http_error(ctx->out, 503, "unavailable", "out of memory",
		    ctx->keep_alive);
	if ((rc = copy_request(r, ctx)) != 0) {
		req_free(r);
		return http_error(ctx->out, rc == -ENOMEM ? 503 : 414,
		    rc == -ENOMEM ? "unavailable" : "uri_too_long",
		    "the request could not be taken", ctx->keep_alive);
	}
	r->api = a;
	r->rt = rt;
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->phase = PH_AUTH;
	if ((r->p = app_pending_new(ctx, api_step, r)) == NULL) {
		req_free(r);
		return http_error(ctx->out, 503, "unavailable", "out of memory",
		    ctx->keep_alive);
	}
	if (rt->public) { /* the token endpoint checks its own client */
		r->phase = PH_WORK;
		if (app_pending_work(r->p, handler_work) == 0)
			return ROUTE_PENDING;
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	if (r->bearer[0] == '\0' && r->session[0] != '\0')
		return session_auth(r);
	return bearer_authenticate(r);
}

/* ------------------------------------------------------------------ */
/* External routes (inference): the same authentication, policy and     */
/* audit, then the route's own steps                                    */
/* ------------------------------------------------------------------ */

/* Loop: allowed; the decision goes on disk before the route starts. */
static int
external_admit(struct api_req *r)
{
	struct audit_event ev = { 0 };
	uint64_t ms = (uv_hrtime() - r->t0_ns) / 1000000;

	ev.actor = r->actor;
	ev.action = r->ext->action;
	ev.resource = r->path;
	ev.key = r->key_id[0] != '\0' ? r->key_id : NULL;
	ev.status = "allowed";
	ev.src = r->src;
	ev.duration_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	r->phase = PH_EXT_AUDIT;
	if (audit_append_async(r->api->audit, &ev, on_audited, r) != 0) {
		r->audit_rc = -EIO;
		app_pending_post(r->p);
	}
	return ROUTE_PENDING;
}

static int
external_step(struct api_req *r, struct buf *out, int *keep_alive)
{
	struct api_caller who = { 0 };
	int status;

	if (r->phase == PH_EXT_AUDIT && out != NULL && r->audit_rc != 0) {
		r->keep_alive = 0;
		api_answer_error(r, 503, "audit_unavailable",
		    "the audit log cannot be written; nothing was done");
		buf_append(out, r->answer.data, r->answer.len);
		*keep_alive = 0;
		req_free(r);
		return 503;
	}
	if (r->phase == PH_EXT_AUDIT && out != NULL) {
		r->phase = PH_EXTERNAL;
		who = (struct api_caller){ r->actor, r->caller.id, r->key_id,
			r->src, r->roles, r->method, r->path, r->query, r->body,
			r->body_len, r->t0_ns };
		*keep_alive = r->keep_alive;
		status =
		    r->ext->start(r->p, &who, &r->ext_arg, out, keep_alive);
	} else if (r->phase == PH_EXT_AUDIT) {
		status = 0; /* gone before the start: req_free frees arg */
	} else {
		status = r->ext->step(r->p, r->ext_arg, out, keep_alive);
	}
	if (r->phase == PH_EXTERNAL &&
	    (out == NULL ||
	        (status != ROUTE_PENDING && status != ROUTE_STREAM)))
		r->ext_arg = NULL; /* the route freed it */
	if (out == NULL || (status != ROUTE_PENDING && status != ROUTE_STREAM))
		req_free(r);
	return status;
}

static void
external_closed(void *arg)
{
	struct api_req *r = arg;

	if (r->phase == PH_EXTERNAL && r->ext->on_close != NULL)
		r->ext->on_close(r->ext_arg);
}

/* Loop: as api_route() does for its own routes. */
static int
external_authenticate(struct api_req *r)
{
	return bearer_authenticate(r);
}

static int
external_refuse(const struct api_external *ext, struct buf *out, int status,
    const char *code, const char *message, int keep_alive)
{
	if (ext->error != NULL)
		return ext->error(out, status, code, message, keep_alive);
	return http_error(out, status, code, message, keep_alive);
}

int
api_route_external(struct api *a, struct route_ctx *ctx,
    const struct api_external *ext, void *arg)
{
	struct api_req *r;
	int rc;

	ctx->route = MR_OTHER;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		ext->step(NULL, arg, NULL, NULL);
		return external_refuse(ext, ctx->out, 503, "unavailable",
		    "out of memory", ctx->keep_alive);
	}
	r->ext = ext;
	r->ext_arg = arg;
	if ((rc = copy_request(r, ctx)) != 0) {
		req_free(r);
		return external_refuse(ext, ctx->out, rc == -ENOMEM ? 503 : 414,
		    rc == -ENOMEM ? "unavailable" : "uri_too_long",
		    "the request could not be taken", ctx->keep_alive);
	}
	r->api = a;
	r->phase = PH_AUTH;
	if ((r->p = app_pending_new(ctx, api_step, r)) == NULL) {
		req_free(r);
		return external_refuse(ext, ctx->out, 503, "unavailable",
		    "out of memory", ctx->keep_alive);
	}
	app_pending_on_close(r->p, external_closed);
	return external_authenticate(r);
}

int
api_audit(
    struct api *a, const struct audit_event *ev, audit_done_cb *cb, void *arg)
{
	return audit_append_async(a->audit, ev, cb, arg);
}
