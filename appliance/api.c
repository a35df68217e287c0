/*
 * appliance/api.c: the management API's dispatch (/api/..., /oauth/token,
 * /.well-known/jwks.json: api_route finds the route in the table) and the
 * life of an authenticated request, which the routes other parts of the
 * daemon serve share (api_external.c takes them from the decision on).
 * On the loop: the route is found and the request copied; the
 * credential's format is checked (a typo costs no lookup) and the caller
 * found (api_auth.c): on the loop when the keystore answers from memory
 * (an API key in its cache, a session), else on a worker (a full API-key
 * or JWT check and the owner of the resource). On the loop again: the
 * source network of an app's key, the rate limit, the roles, the
 * policy's decision. Then the handler: on the loop for a route that only
 * reads (reads_only) while the keystore need not wait, else on a worker;
 * then the audit line (the writer's thread), and only when the line is
 * on disk is the answer released; when it cannot be written the caller
 * gets 503 instead. A state-changing route (any method but GET and HEAD)
 * first puts its decision on disk ("allowed"), so a change is never made
 * that the log does not hold: when that line cannot be written, nothing
 * is done. Also the answers' helpers and the API's wiping JSON allocator.
 *
 * It must never answer before the audit line is durable, never change
 * state before its decision is durable, never log or
 * audit a credential (key ids and prefixes only), never say why a key
 * was refused unless its secret matched, and never block a loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <uv.h>
#include <yyjson.h>

#include "appliance/api_impl.h"

static const yyjson_alc wiping_alc = { sr_alc_malloc, sr_alc_realloc,
	sr_alc_free, NULL };

const struct yyjson_alc *
api_alc(void)
{
	return &wiping_alc;
}

void
api_req_free(struct api_req *r)
{
	if (r == NULL)
		return;
	if (r->ext != NULL && r->ext_arg != NULL) /* refused before start */
		r->ext->step(r->p, r->ext_arg, NULL, NULL);
	sr_free_wiped(r->body); /* a password or client secret, perhaps */
	buf_free(&r->answer);
	ks_reply_wipe(&r->kr);
	sr_wipe(r, API_REQ_CLEAR);
	free(r);
}

/* A request with everything but the keystore reply's list zeroed: the
 * list is written by the keystore before anything reads it. */
struct api_req *
api_req_new(void)
{
	struct api_req *r = malloc(sizeof(*r));

	if (r != NULL) {
		memset(r, 0, API_REQ_CLEAR);
		r->answer.wipe = 1; /* it can hold a new API key or token */
	}
	return r;
}

int
api_ks(struct api_req *r)
{
	int rc;

	ks_reply_init(&r->kr);
	if (r->kq.op != KS_OP_GET) /* it may change the record kept */
		r->res_read = 0;
	if (r->on_loop)
		r->kq.flags |= KS_REQ_NO_WAIT;
	rc = ks_call(r->api->ks, &r->kq, &r->kr);
	if (rc == KS_EMISS && r->on_loop)
		r->loop_miss = 1;
	return rc;
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
	api_answer_retry(r, status, code, message, 0);
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
	char secs[16];
	struct http_header h = { "Retry-After", secs, 11, 0 };

	r->answer.len = 0;
	r->status = status;
	h.value_len = (size_t)snprintf(secs, sizeof(secs), "%u", retry_after);
	/* The route's format, or (without one, or out of memory) ours. */
	if (r->error_fmt == NULL ||
	    r->error_fmt(&r->answer, status, code, message, r->keep_alive,
	        retry_after) < 0)
		http_error_hdr(&r->answer, status, code, message, r->keep_alive,
		    &h, retry_after != 0);
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

/* Loop: a route that only reads the keystore, answered here unless the
 * keystore would have to wait (then 0 is not returned: use a worker). */
static int
handler_on_loop(struct api_req *r)
{
	r->on_loop = 1;
	r->rt->work(r);
	r->on_loop = 0;
	if (!r->loop_miss)
		return 0;
	r->loop_miss = 0;
	r->answer.len = 0;
	r->status = 0;
	return -EAGAIN;
}

/* ------------------------------------------------------------------ */
/* Audit, then the answer                                               */
/* ------------------------------------------------------------------ */

void
api_on_audited(void *arg, int status, uint64_t seq)
{
	struct api_req *r = arg;

	(void)seq;
	r->audit_rc = status;
	app_pending_post(r->p);
}

/* The fail-closed answer: 503 with Retry-After, in the route's format. */
void
api_answer_audit_unavailable(struct api_req *r, struct buf *out)
{
	static const struct http_header ra = { "Retry-After", "1", 11, 1 };
	const char *msg = r->intent_done
	    ? "the audit log cannot be written; the request was carried out "
	      "and its start is recorded, but not its outcome"
	    : "the audit log cannot be written; nothing was done";

	r->keep_alive = 0;
	if (r->error_fmt != NULL)
		r->error_fmt(out, 503, "audit_unavailable", msg, 0, 1);
	else
		http_error_hdr(out, 503, "audit_unavailable", msg, 0, &ra, 1);
}

/* The line of a request at its end, or ("allowed") before a state change. */
static int
audit_line(struct api_req *r, const char *status)
{
	char action[AUDIT_ACTION_MAX];
	char resource[sizeof(r->path) + KS_ID_LEN + 2];
	struct audit_event ev = { 0 };
	uint64_t ms = (uv_hrtime() - r->t0_ns) / 1000000;

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
	if (r->made_key[0] != '\0' && r->phase == PH_AUDIT) {
		/* the key it made, so that ?key=ID finds its making */
		snprintf(
		    resource, sizeof(resource), "%s#%s", r->path, r->made_key);
		ev.resource = resource;
	}
	ev.key = r->key_id[0] != '\0' ? r->key_id : NULL;
	ev.status = status;
	ev.src = r->src;
	ev.duration_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	if (audit_append_async(r->api->audit, &ev, api_on_audited, r) != 0) {
		r->audit_rc = -EIO;
		app_pending_post(r->p);
	}
	return ROUTE_PENDING;
}

/* Record what happened; the answer waits for the line to be on disk. */
static int
audit_then_answer(struct api_req *r)
{
	char status[8];

	snprintf(status, sizeof(status), "%d", r->status);
	r->phase = PH_AUDIT;
	return audit_line(r, status);
}

/* GET and HEAD read; every other method may change something. */
static int
changes_state(const struct api_req *r)
{
	return strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0;
}

/* Loop: the route found no handler for the path (404) or the method (405);
 * recorded like any other answer, with the caller when one was shown. */
static int
answer_no_route(struct api_req *r)
{
	struct http_header allow = { "Allow", r->allow, 5, strlen(r->allow) };

	r->answer.len = 0;
	if (r->not_found == 404) {
		api_answer_error(r, 404, "not_found", "no such route");
	} else {
		r->status = 405;
		http_error_hdr(&r->answer, 405, "method_not_allowed",
		    "this route takes another method", r->keep_alive, &allow,
		    1);
	}
	return audit_then_answer(r);
}

static void
handler_work(void *arg)
{
	struct api_req *r = arg;

	r->rt->work(r);
}

/* Loop: the caller is known (or not); decide, then run the handler. */
static int
after_auth(struct api_req *r)
{
	struct policy_subject s = { 0 };
	struct policy_request q = { 0 };
	struct policy_decision d;
	struct sockaddr_storage ss;
	unsigned retry = 1;

	if (r->not_found)
		return answer_no_route(r);
	if (r->auth_rc != 0) {
		api_answer_error(r, r->auth_status ? r->auth_status : 401,
		    r->auth_code,
		    r->auth_status == 403
		        ? "a state-changing call needs the session's "
		          "X-CSRF-Token header"
		        : "the credential was not accepted");
		return audit_then_answer(r);
	}
	if (!api_from_bound_network(r)) {
		api_answer_error(r, 401, "address_not_allowed",
		    "this key is not accepted from your network");
		return audit_then_answer(r);
	}
	/* An API key's bucket, the one a JWT was issued for, or (a
	 * session) the user's. */
	if (!api_keyrate_take(r->api,
	        r->key_id[0] != '\0' ? r->key_id : r->actor, r->rate, r->burst,
	        &retry)) {
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
		return api_external_admit(r);
	if (changes_state(r)) {
		r->phase = PH_INTENT;
		return audit_line(r, "allowed");
	}
	r->phase = PH_WORK;
	if (r->rt->reads_only && handler_on_loop(r) == 0)
		return audit_then_answer(r);
	if (app_pending_work(r->p, handler_work) != 0) {
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	return ROUTE_PENDING;
}

int
api_step(struct app_pending *p, void *arg, struct buf *out, int *keep_alive)
{
	struct api_req *r = arg;
	int status;

	(void)p;
	if (r->phase == PH_EXTERNAL || r->phase == PH_EXT_AUDIT)
		return api_external_step(r, out, keep_alive);
	/* The connection went away: every step's work has finished
	 * (steps run only then), so nothing else holds r. */
	if (out == NULL) {
		api_req_free(r);
		return 0;
	}
	switch (r->phase) {
	case PH_AUTH:
		return after_auth(r);
	case PH_INTENT:
		if (r->audit_rc != 0)
			break; /* not recorded: not done */
		r->intent_done = 1;
		r->phase = PH_WORK;
		if (app_pending_work(r->p, handler_work) == 0)
			return ROUTE_PENDING;
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	case PH_WORK:
		return audit_then_answer(r);
	default:
		break;
	}
	if (r->audit_rc != 0) {
		/* Fail closed: nothing is answered unrecorded. */
		api_answer_audit_unavailable(r, out);
		*keep_alive = 0;
		api_req_free(r);
		return 503;
	}
	buf_append(out, r->answer.data, r->answer.len);
	*keep_alive = r->keep_alive;
	status = r->status;
	api_req_free(r);
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

/* Dotted quad of @p a into @p out (16 bytes): inet_ntop without its
 * sprintf, once per request. */
static void
ipv4_text(const uint8_t a[4], char out[16])
{
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		if (i > 0)
			out[n++] = '.';
		n += sr_u64_decimal(out + n, a[i]);
	}
	out[n] = '\0';
}

int
api_req_copy(struct api_req *r, const struct route_ctx *ctx)
{
	const struct http_request *q = ctx->req;
	const char *auth = http_header_get(q, "authorization"), *cookie;
	int v4;

	if (strlen(q->path) >= sizeof(r->path) ||
	    strlen(q->query) >= sizeof(r->query))
		return -ENAMETOOLONG;
	sr_strlcpy(r->method, q->method, sizeof(r->method));
	sr_strlcpy(r->path, q->path, sizeof(r->path));
	sr_strlcpy(r->query, q->query, sizeof(r->query));
	if (q->body_len > 0) {
		if ((r->body = malloc(q->body_len + 1)) == NULL)
			return -ENOMEM;
		memcpy(r->body, q->body, q->body_len);
		r->body[q->body_len] = '\0';
		r->body_len = q->body_len;
	}
	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		sr_strlcpy(r->bearer, auth + 7, sizeof(r->bearer));
	else if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0)
		sr_strlcpy(r->basic, auth + 6, sizeof(r->basic));
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
	cookie = http_header_get(q, "content-type");
	r->form_body = cookie != NULL &&
	    strncasecmp(cookie, "application/x-www-form-urlencoded", 33) == 0 &&
	    (cookie[33] == '\0' || cookie[33] == ';' || cookie[33] == ' ');
	if ((cookie = http_header_get(q, "x-csrf-token")) != NULL)
		sr_strlcpy(r->csrf, cookie, sizeof(r->csrf));
	memcpy(r->addr, ctx->addr, 16);
	v4 = memcmp(r->addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
	if (v4)
		ipv4_text(r->addr + 12, r->src);
	else
		inet_ntop(AF_INET6, r->addr, r->src, sizeof(r->src));
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
	if (api_auth_on_loop(r) == 0)
		return after_auth(r);
	if (app_pending_work(r->p, api_auth_work) != 0) {
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	return ROUTE_PENDING;
}

/* Loop: a Bearer credential's form first (a typo or a guess costs no
 * lookup and no HSM), then its record: from the cache on the loop, else on a
 * worker. */
int
api_bearer_authenticate(struct api_req *r)
{
	if (r->bearer[0] == '\0') {
		r->auth_rc = -EACCES;
		r->auth_code = "unauthenticated";
		return after_auth(r);
	}
	/* The key's shape and id; its checksum is the keystore's first
	 * step (a typo is refused there before any lookup). */
	if (strncmp(r->bearer, "srk_", 4) == 0 &&
	    ks_apikey_id(r->bearer, strlen(r->bearer), r->key_id) != 0) {
		sr_wipe(r->bearer, sizeof(r->bearer));
		r->key_id[0] = '\0';
		r->auth_rc = KS_EAPIKEY;
		r->auth_code = "invalid_api_key";
		return after_auth(r);
	}
	if (api_auth_on_loop(r) == 0)
		return after_auth(r);
	if (app_pending_work(r->p, api_auth_work) != 0) {
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
	struct http_header allow = { "Allow", NULL, 5, 0 };
	const struct api_route *rt;

	ctx->route = MR_OTHER;
	if (strcmp(q->path, "/.well-known/jwks.json") == 0) {
		/* Public, and not recorded: the keys anyone may fetch. */
		if (strcmp(q->method, "GET") == 0 ||
		    strcmp(q->method, "HEAD") == 0) {
			const struct jwt_jwks_doc *d = jwt_jwks_doc_at(
			    a->jwks_doc, a->njwks_doc, (int64_t)time(NULL));

			http_response(ctx->out, 200, "application/json",
			    d->json, d->len, ctx->keep_alive);
			return 200;
		}
		allow.value = "GET, HEAD";
		allow.value_len = 9;
		return http_error_hdr(ctx->out, 405, "method_not_allowed",
		    "this route takes another method", ctx->keep_alive, &allow,
		    1);
	}
	rt = api_route_find(q->method, q->path, id, &method_ok);
	if ((r = api_req_new()) == NULL)
		return http_error(ctx->out, 503, "unavailable", "out of memory",
		    ctx->keep_alive);
	if ((rc = api_req_copy(r, ctx)) != 0) {
		api_req_free(r);
		return http_error(ctx->out, rc == -ENOMEM ? 503 : 414,
		    rc == -ENOMEM ? "unavailable" : "uri_too_long",
		    "the request could not be taken", ctx->keep_alive);
	}
	r->api = a;
	r->rt = rt;
	if (rt == NULL) {
		/* Answered after the caller is known, so that the line
		 * names it. */
		r->not_found = method_ok ? 404 : 405;
		if (!method_ok)
			api_route_allow(q->path, r->allow, sizeof(r->allow));
	} else {
		snprintf(r->id, sizeof(r->id), "%s", id);
		r->error_fmt = rt->error;
	}
	r->phase = PH_AUTH;
	if ((r->p = app_pending_new(ctx, api_step, r)) == NULL) {
		api_req_free(r);
		return http_error(ctx->out, 503, "unavailable", "out of memory",
		    ctx->keep_alive);
	}
	if (rt != NULL &&
	    rt->public) { /* the token endpoint checks its own client */
		r->phase = PH_WORK;
		if (app_pending_work(r->p, handler_work) == 0)
			return ROUTE_PENDING;
		api_answer_error(r, 503, "unavailable", "no worker available");
		return audit_then_answer(r);
	}
	if (r->bearer[0] == '\0' && r->session[0] != '\0')
		return session_auth(r);
	return api_bearer_authenticate(r);
}

void
api_audit_stats(struct api *a, struct audit_stats *st)
{
	audit_stats_get(a->audit, st);
}
