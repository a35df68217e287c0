/*
 * appliance/serve_api.c: the serving routes and a request's life. /v1
 * (chat completions, completions, models) and /api/models (the admin
 * listing, load, default, unload) go through the access layer
 * (api_route_external: authentication, policy, the decision in the audit
 * log); then the request's steps run here: the /v1 work (serve_v1.c) or
 * the model administration, and at the end the usage line (tokens,
 * duration) is written before the answer or the stream's last chunk goes.
 *
 * It must never answer before the usage line is on disk, never keep a
 * sequence running for a client that has gone (the close callback cancels
 * it within a step), never free a request the scheduler may still post
 * to (it holds the pending request until it lets go), and never load a
 * model on a loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>
#include <yyjson.h>

#include "appliance/api.h"
#include "appliance/serve_impl.h"
#include "lib/sr.h"

enum route_kind { RK_CHAT, RK_COMPLETE, RK_MODELS, RK_ADMIN };

static int v1_error(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, unsigned retry_after_s);
static int route_start(struct app_pending *p, const struct api_caller *who,
    void **arg, struct buf *out, int *keep_alive);
static int route_step(
    struct app_pending *p, void *arg, struct buf *out, int *keep_alive);
static void route_closed(void *arg);

static const struct api_external ext_chat = { "inference.chat", v1_error,
	route_start, route_step, route_closed, 0 };
static const struct api_external ext_complete = { "inference.complete",
	v1_error, route_start, route_step, route_closed, 0 };
/* The listings read only, and answer through serve_req_end(), whose line
 * is on disk first: no admission line of their own. */
static const struct api_external ext_models = { "inference.models", v1_error,
	route_start, route_step, route_closed, 1 };
static const struct api_external ext_list = { "models.list", NULL, route_start,
	route_step, route_closed, 1 };
static const struct api_external ext_register = { "models.register", NULL,
	route_start, route_step, route_closed, 0 };
static const struct api_external ext_activate = { "models.activate", NULL,
	route_start, route_step, route_closed, 0 };
static const struct api_external ext_remove = { "models.remove", NULL,
	route_start, route_step, route_closed, 0 };

static int
v1_error(struct buf *out, int status, const char *code, const char *message,
    int keep_alive, unsigned retry_after_s)
{
	return serve_error(
	    out, status, code, NULL, message, keep_alive, retry_after_s);
}

int
serve_owns(const char *path)
{
	return strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0 ||
	    strcmp(path, "/api/models") == 0 ||
	    strncmp(path, "/api/models/", 12) == 0;
}

/* ------------------------------------------------------------------ */
/* The end of a request                                                 */
/* ------------------------------------------------------------------ */

static void
req_free(struct serve_req *r)
{
	if (r == NULL)
		return;
	sched_seq_release(r->seq);
	if (r->limited)
		serve_limits_done(r->s->limits, r->limit_key);
	serve_model_put(r->model);
	serve_model_put(r->loaded);
	serve_split_free(&r->split);
	inf_tok_text_free(&r->piece);
	inf_tok_text_free(&r->reason);
	inf_tok_text_free(&r->content);
	buf_free(&r->cache_key);
	buf_free(&r->answer);
	free(r);
}

static void
on_usage_audited(void *arg, int status, uint64_t seq)
{
	struct serve_req *r = arg;
	struct app_pending *p = r->p;

	(void)seq;
	r->audit_rc = status;
	atomic_store(&r->audit_done, 1);
	app_pending_release(p); /* r may be gone from here on */
}

static void
on_gone_audited(void *arg, int status, uint64_t seq)
{
	(void)arg;
	(void)status;
	(void)seq;
}

static void
usage_event(
    struct serve_req *r, struct audit_event *ev, char *status, char *resource)
{
	uint64_t ms = (uv_hrtime() - r->t0_ns) / 1000000;
	size_t n;

	status[sr_u64_decimal(status, (uint64_t)(r->status & 0xffff))] = '\0';
	n = sr_strlcpy(resource, r->path, 300);
	if (r->cache_hit)
		sr_strlcpy(resource + n, "#cache", 300 - n);
	ev->actor = r->actor;
	ev->action = r->action;
	ev->resource = resource;
	ev->key = r->key_id[0] != '\0' ? r->key_id : NULL;
	ev->status = status;
	ev->src = r->src;
	ev->duration_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	ev->input_tokens = (uint32_t)r->n_prompt;
	ev->output_tokens = (uint32_t)r->n_out;
}

int
serve_req_end(struct serve_req *r, int status)
{
	struct audit_event ev = { 0 };
	char st[8], resource[300];

	r->status = status;
	r->phase = SP_AUDIT;
	usage_event(r, &ev, st, resource);
	app_pending_hold(r->p); /* the writer's acknowledgement posts */
	if (api_audit(r->api, &ev, on_usage_audited, r) != 0) {
		r->audit_rc = -EIO;
		atomic_store(&r->audit_done, 1);
		app_pending_release(r->p);
	}
	return r->stream ? ROUTE_STREAM : ROUTE_PENDING;
}

int
serve_req_fail(struct serve_req *r, int status, const char *code,
    const char *param, const char *message, unsigned retry_after_s)
{
	r->answer.len = 0;
	r->stream = 0; /* nothing was streamed yet: a plain answer */
	serve_error(&r->answer, status, code, param, message, r->keep_alive,
	    retry_after_s);
	return serve_req_end(r, status);
}

/* The usage line is on disk (or refused): the answer goes out. */
static int
answer_now(struct serve_req *r, struct buf *out, int *keep_alive)
{
	int status = r->status;

	if (r->audit_rc != 0 && !r->stream) {
		serve_error(out, 503, "audit_unavailable", NULL,
		    "the audit log cannot be written; nothing was done", 0, 1);
		*keep_alive = 0;
		status = 503;
	} else if (r->audit_rc != 0) {
		serve_sse_error(out, r->framing, "audit_unavailable",
		    "the audit log cannot be written");
		serve_sse_done(out, r->framing);
		*keep_alive = 0;
		status = 503;
	} else {
		buf_append(out, r->answer.data, r->answer.len);
		*keep_alive = r->keep_alive;
	}
	req_free(r);
	return status;
}

/* ------------------------------------------------------------------ */
/* Model administration (admin only, by the policy)                     */
/* ------------------------------------------------------------------ */

static int
admin_answer(struct serve_req *r, int status, const char *json, size_t len)
{
	r->answer.len = 0;
	http_response(
	    &r->answer, status, "application/json", json, len, r->keep_alive);
	return serve_req_end(r, status);
}

static int
admin_error(struct serve_req *r, int status, const char *code, const char *m)
{
	r->answer.len = 0;
	http_error(&r->answer, status, code, m, r->keep_alive);
	return serve_req_end(r, status);
}

static int
admin_listing(struct serve_req *r, int status)
{
	size_t len = 0;
	char *text = serve_models_json(r->s, 1, &len);
	int rc;

	if (text == NULL)
		return admin_error(r, 503, "unavailable", "out of memory");
	rc = admin_answer(r, status, text, len);
	free(text);
	return rc;
}

/* A thread of its own (the pending request's worker hands its work the
 * access layer's request, not ours): load, then let the step run. */
static void *
load_thread(void *arg)
{
	struct serve_req *r = arg;
	struct app_pending *p = r->p;

	sr_log_thread_tag("model-load");
	r->load_rc =
	    serve_model_load(r->s, r->name, r->dir, &r->loaded, r->err);
	app_pending_release(p); /* r may be gone from here on */
	return NULL;
}

static int
admin_loaded(struct serve_req *r)
{
	if (r->load_rc != 0)
		return admin_error(r, 400, "model_not_loaded", r->err);
	if (serve_model_add(r->s, r->loaded, r->make_default) != 0)
		return admin_error(
		    r, 409, "conflict", "a model of that name is loaded");
	r->loaded = NULL; /* the registry's now */
	log_info("model %s loaded from %s", r->name, r->dir);
	return admin_listing(r, 201);
}

static int
admin_start(struct serve_req *r, const struct api_caller *who)
{
	const char *rest = r->path + strlen("/api/models");
	yyjson_doc *doc;
	yyjson_val *o;
	const char *name, *dir;
	pthread_t tid;

	if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
		return admin_listing(r, 200);
	if (strcmp(r->method, "POST") == 0 && *rest == '\0') {
		doc = yyjson_read((const char *)who->body, who->body_len, 0);
		o = yyjson_doc_get_root(doc);
		name = yyjson_get_str(yyjson_obj_get(o, "name"));
		dir = yyjson_get_str(yyjson_obj_get(o, "path"));
		if (name == NULL || dir == NULL || !serve_name_ok(name) ||
		    strlen(dir) >= sizeof(r->dir)) {
			yyjson_doc_free(doc);
			return admin_error(r, 400, "invalid_request",
			    "give {\"name\":\"[A-Za-z0-9._-]+\",\"path\":"
			    "\"model folder\"[,\"default\":true]}");
		}
		snprintf(r->name, sizeof(r->name), "%s", name);
		snprintf(r->dir, sizeof(r->dir), "%s", dir);
		r->make_default = yyjson_is_true(yyjson_obj_get(o, "default"));
		yyjson_doc_free(doc);
		r->phase = SP_LOAD;
		app_pending_hold(r->p);
		if (pthread_create(&tid, NULL, load_thread, r) != 0) {
			app_pending_release(r->p);
			return admin_error(
			    r, 503, "unavailable", "no thread available");
		}
		pthread_detach(tid);
		return ROUTE_PENDING;
	}
	if (*rest != '/')
		return admin_error(r, 404, "not_found", "no such route");
	snprintf(r->name, sizeof(r->name), "%.*s", (int)strcspn(rest + 1, "/"),
	    rest + 1);
	rest += 1 + strlen(r->name);
	if (strcmp(r->method, "POST") == 0 && strcmp(rest, "/default") == 0)
		return serve_model_set_default(r->s, r->name) == 0
		    ? admin_listing(r, 200)
		    : admin_error(r, 404, "not_found", "no such model");
	if (strcmp(r->method, "DELETE") == 0 && *rest == '\0')
		return serve_model_remove(r->s, r->name) == 0
		    ? admin_listing(r, 200)
		    : admin_error(r, 404, "not_found", "no such model");
	return admin_error(r, 404, "not_found", "no such route");
}

/* ------------------------------------------------------------------ */
/* The steps                                                            */
/* ------------------------------------------------------------------ */

static int
models_start(struct serve_req *r)
{
	const char *id = r->path + strlen("/v1/models");
	struct serve_model *m = NULL;
	size_t len = 0;
	char *text;

	if (*id == '/') { /* one model */
		if (id[1] == '\0' ||
		    (m = serve_model_get(r->s, id + 1)) == NULL)
			return serve_req_fail(r, 404, "model_not_found",
			    "model", "no such model", 0);
		r->answer.len = 0;
		buf_printf(&r->answer,
		    "{\"id\":\"%s\",\"object\":\"model\","
		    "\"created\":%lld,\"owned_by\":\"strongroom\","
		    "\"max_model_len\":%d}",
		    m->name, (long long)m->created, m->context);
		text = malloc(r->answer.len);
		if (text != NULL)
			memcpy(text, r->answer.data, r->answer.len);
		len = r->answer.len;
		serve_model_put(m);
	} else {
		text = serve_models_json(r->s, 0, &len);
	}
	if (text == NULL)
		return serve_req_fail(
		    r, 503, "unavailable", NULL, "out of memory", 1);
	r->answer.len = 0;
	http_response(
	    &r->answer, 200, "application/json", text, len, r->keep_alive);
	free(text);
	return serve_req_end(r, 200);
}

static int
route_start(struct app_pending *p, const struct api_caller *who, void **arg,
    struct buf *out, int *keep_alive)
{
	struct serve_req *r = *arg;
	size_t n;

	r->p = p;
	r->keep_alive = *keep_alive;

	sr_strlcpy(r->actor, who->actor, sizeof(r->actor));
	sr_strlcpy(r->tenant, who->id, sizeof(r->tenant));
	sr_strlcpy(r->key_id, who->key_id, sizeof(r->key_id));
	sr_strlcpy(r->src, who->src, sizeof(r->src));
	sr_strlcpy(r->method, who->method, sizeof(r->method));
	sr_strlcpy(r->path, who->path, sizeof(r->path));
	n = sr_strlcpy(r->limit_key, who->actor, sizeof(r->limit_key) - 1);
	r->limit_key[n++] = '|';
	sr_strlcpy(r->limit_key + n, who->key_id, sizeof(r->limit_key) - n);
	r->t0_ns = who->t0_ns;
	if (strncmp(r->path, "/api/models", 11) == 0)
		return admin_start(r, who);
	if (strncmp(r->path, "/v1/models", 10) == 0)
		return models_start(r);
	return serve_v1_start(r, who->body, who->body_len, out);
}

static int
route_step(struct app_pending *p, void *arg, struct buf *out, int *keep_alive)
{
	struct serve_req *r = arg;
	struct audit_event ev = { 0 };
	char st[8], resource[300];

	(void)p;
	if (out == NULL) { /* the client left; no hold remains */
		if (r->phase == SP_GEN) {
			r->status = 499; /* nginx's "client closed request" */
			usage_event(r, &ev, st, resource);
			api_audit(r->api, &ev, on_gone_audited, NULL);
		}
		req_free(r);
		return 0;
	}
	switch (r->phase) {
	case SP_GEN:
		return serve_v1_step(r, out);
	case SP_LOAD:
		return admin_loaded(r);
	case SP_AUDIT:
		if (!atomic_load(&r->audit_done))
			return r->stream ? ROUTE_STREAM : ROUTE_PENDING;
		return answer_now(r, out, keep_alive);
	default:
		break;
	}
	return r->stream ? ROUTE_STREAM : ROUTE_PENDING;
}

static void
route_closed(void *arg)
{
	struct serve_req *r = arg;

	if (r->seq != NULL)
		sched_seq_cancel(r->seq); /* it leaves at the next step */
}

/* ------------------------------------------------------------------ */
/* The entry                                                            */
/* ------------------------------------------------------------------ */

static int
pick(const char *method, const char *path, const struct api_external **ext,
    const char **allow)
{
	/* HEAD wherever GET (RFC 9110 9.3.2): the connection keeps the head
	 * of the answer only. */
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0,
	    post = strcmp(method, "POST") == 0;

	*ext = NULL;
	*allow = NULL;
	if (strcmp(path, "/v1/chat/completions") == 0)
		return post ? (*ext = &ext_chat, 0) : (*allow = "POST", 405);
	if (strcmp(path, "/v1/completions") == 0)
		return post ? (*ext = &ext_complete, 0)
		            : (*allow = "POST", 405);
	if (strcmp(path, "/v1/models") == 0 ||
	    (strncmp(path, "/v1/models/", 11) == 0 &&
	        strchr(path + 11, '/') == NULL))
		return get ? (*ext = &ext_models, 0)
		           : (*allow = "GET, HEAD", 405);
	if (strcmp(path, "/api/models") == 0)
		return get ? (*ext = &ext_list, 0)
		    : post ? (*ext = &ext_register, 0)
		           : (*allow = "GET, HEAD, POST", 405);
	if (strncmp(path, "/api/models/", 12) == 0) {
		const char *rest = strchr(path + 12, '/');

		if (rest == NULL)
			return strcmp(method, "DELETE") == 0
			    ? (*ext = &ext_remove, 0)
			    : (*allow = "DELETE", 405);
		if (strcmp(rest, "/default") == 0)
			return post ? (*ext = &ext_activate, 0)
			            : (*allow = "POST", 405);
	}
	return 404;
}

int
serve_route(struct serve *s, struct api *api, struct route_ctx *ctx)
{
	const struct http_request *q = ctx->req;
	const struct api_external *ext;
	struct serve_req *r;
	const char *allow;
	int v1 = strncmp(q->path, "/v1", 3) == 0, rc;

	ctx->route = MR_OTHER;
	rc = pick(q->method, q->path, &ext, &allow);
	if (rc != 0) {
		const char *m = rc == 404 ? "no such route"
		                          : "this route takes another method";
		const char *code =
		    rc == 404 ? "not_found" : "method_not_allowed";
		struct http_header h = { "Allow", allow, 5, 0 };

		return v1
		    ? serve_error_hdr(ctx->out, rc, code, NULL, m,
		          ctx->keep_alive, allow != NULL ? &h : NULL)
		    : http_error_hdr(ctx->out, rc, code, m, ctx->keep_alive,
		          allow != NULL ? &h : NULL, allow != NULL);
	}
	if (s == NULL || api == NULL)
		return v1
		    ? serve_error(ctx->out, 503, "model_not_ready", NULL,
		          "inference is not available", ctx->keep_alive, 5)
		    : http_error(ctx->out, 503, "unavailable",
		          "inference is not available", ctx->keep_alive);
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return serve_error(ctx->out, 503, "unavailable", NULL,
		    "out of memory", ctx->keep_alive, 1);
	r->s = s;
	r->api = api;
	r->cache_key.wipe = 1; /* the prompt's ids */
	r->answer.wipe = 1;
	r->action = ext->action;
	r->chat = ext == &ext_chat;
	r->ans.chat = r->chat;
	r->ans.created = (int64_t)time(NULL);
	r->framing = http_stream_framing(q->version_minor);
	{
		uint8_t id[12];
		int i;

		sr_os_random(id, sizeof(id));
		snprintf(r->ans.id, sizeof(r->ans.id), "%s",
		    r->chat ? "chatcmpl-" : "cmpl-");
		for (i = 0; i < 12; i++)
			snprintf(
			    r->ans.id + strlen(r->ans.id), 3, "%02x", id[i]);
	}
	/* the access layer hands r to route_start, or frees it through
	 * route_step when it refuses the caller */
	return api_route_external(api, ctx, ext, r);
}
