/*
 * appliance/api_external.c: the access layer of the routes other parts of
 * the daemon serve (api.h's api_route_external: the inference API's /v1).
 * Such a request goes through api.c's pipeline like a management call: a
 * Bearer credential (API key or JWT), the key's bound networks, the rate
 * limit and the policy's decision on the route's action. Once allowed,
 * the decision ("allowed") is written to the audit log and the route's
 * own steps start only when it is on disk (unless the route records its
 * own line before it answers anything); then its steps run, until it
 * frees its argument. Refusals are answered in the route's error format.
 * Also api_audit, through which such a route records its own lines.
 *
 * It must never start a route before its decision is durable (or, for a
 * route that records its own line, before the caller is allowed), never
 * answer when the decision could not be written (503, nothing done),
 * never free the route's argument twice or not at all, and never hand
 * the route a credential (the caller's ids only).
 */
#include <errno.h>
#include <stdint.h>

#include <uv.h>

#include "appliance/api_impl.h"

/* Loop: allowed; the decision goes on disk before the route starts,
 * unless the route records its own line before answering anything. */
int
api_external_admit(struct api_req *r)
{
	struct audit_event ev = { 0 };
	uint64_t ms = (uv_hrtime() - r->t0_ns) / 1000000;

	if (r->ext->answers_after_own_line) {
		r->phase = PH_EXT_AUDIT; /* as if its line were on disk */
		r->audit_rc = 0;
		app_pending_post(r->p);
		return ROUTE_PENDING;
	}

	ev.actor = r->actor;
	ev.action = r->ext->action;
	ev.resource = r->path;
	ev.key = r->key_id[0] != '\0' ? r->key_id : NULL;
	ev.status = "allowed";
	ev.src = r->src;
	ev.duration_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	r->phase = PH_EXT_AUDIT;
	if (audit_append_async(r->api->audit, &ev, api_on_audited, r) != 0) {
		r->audit_rc = -EIO;
		app_pending_post(r->p);
	}
	return ROUTE_PENDING;
}

int
api_external_step(struct api_req *r, struct buf *out, int *keep_alive)
{
	struct api_caller who = { 0 };
	int status;

	if (r->phase == PH_EXT_AUDIT && out != NULL && r->audit_rc != 0) {
		api_answer_audit_unavailable(r, out);
		*keep_alive = 0;
		api_req_free(r);
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
		status = 0; /* gone before the start: api_req_free frees arg */
	} else {
		status = r->ext->step(r->p, r->ext_arg, out, keep_alive);
	}
	if (r->phase == PH_EXTERNAL &&
	    (out == NULL ||
	        (status != ROUTE_PENDING && status != ROUTE_STREAM)))
		r->ext_arg = NULL; /* the route freed it */
	if (out == NULL || (status != ROUTE_PENDING && status != ROUTE_STREAM))
		api_req_free(r);
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
	return api_bearer_authenticate(r);
}

static int
external_refuse(const struct api_external *ext, struct buf *out, int status,
    const char *code, const char *message, int keep_alive)
{
	if (ext->error != NULL)
		return ext->error(out, status, code, message, keep_alive, 0);
	return http_error(out, status, code, message, keep_alive);
}

int
api_route_external(struct api *a, struct route_ctx *ctx,
    const struct api_external *ext, void *arg)
{
	struct api_req *r;
	int rc;

	ctx->route = MR_OTHER;
	if ((r = api_req_new()) == NULL) {
		ext->step(NULL, arg, NULL, NULL);
		return external_refuse(ext, ctx->out, 503, "unavailable",
		    "out of memory", ctx->keep_alive);
	}
	r->ext = ext;
	r->ext_arg = arg;
	r->error_fmt = ext->error;
	if ((rc = api_req_copy(r, ctx)) != 0) {
		api_req_free(r);
		return external_refuse(ext, ctx->out, rc == -ENOMEM ? 503 : 414,
		    rc == -ENOMEM ? "unavailable" : "uri_too_long",
		    "the request could not be taken", ctx->keep_alive);
	}
	r->api = a;
	r->phase = PH_AUTH;
	if ((r->p = app_pending_new(ctx, api_step, r)) == NULL) {
		api_req_free(r);
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
