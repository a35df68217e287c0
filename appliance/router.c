/*
 * appliance/router.c: maps a request to its answer. Today: /health (the
 * process is alive), /ready (HSM, keystore and models, naming what is not
 * ready) and /metrics (Prometheus text format); anything else is a JSON
 * 404, and a wrong method a 405 with Allow.
 *
 * It runs on a loop thread, so it must never block: readiness comes from
 * atomics the control loop refreshes, never from a call to the HSM.
 */
#include <stdio.h>
#include <string.h>

#include "appliance/api.h"
#include "appliance/internal.h"
#include "appliance/serve.h"

static int
json(struct buf *out, int status, const char *body, int keep_alive)
{
	http_response(
	    out, status, "application/json", body, strlen(body), keep_alive);
	return status;
}

static int
route_ready(struct app *app, struct buf *out, int keep_alive)
{
	int hsm = atomic_load(&app->hsm_ready),
	    ks = atomic_load(&app->ks_ready), models;
	char body[256], mtext[64];

	/* No model configured is not a fault (a key-management-only
	 * appliance); configured models must be serving. */
	models = serve_ready(app->serve, mtext, sizeof(mtext)) ||
	    app->cfg.models[0] == '\0';
	snprintf(body, sizeof(body),
	    "{\"ready\":%s,\"hsm\":\"%s\",\"keystore\":\"%s\","
	    "\"models\":\"%s\"}",
	    hsm && ks && models ? "true" : "false", hsm ? "ready" : "not ready",
	    ks ? "ready" : "not ready",
	    app->serve == NULL && app->cfg.models[0] != '\0' ? "not ready"
	                                                     : mtext);
	return json(out, hsm && ks && models ? 200 : 503, body, keep_alive);
}

static int
route_metrics(struct app *app, struct buf *out, int keep_alive)
{
	struct buf text = { 0 };
	struct audit_stats st;
	int status = 200;

	if (app->api != NULL)
		api_audit_stats(app->api, &st);
	if (metrics_render(&text, &app->tls_stats) != 0 ||
	    (app->api != NULL && metrics_render_audit(&text, &st) != 0) ||
	    serve_metrics_render(app->serve, &text) != 0) {
		buf_free(&text);
		http_error(out, 500, "internal",
		    "metrics could not be rendered", keep_alive);
		return 500;
	}
	http_response(out, status, "text/plain; version=0.0.4; charset=utf-8",
	    text.data, text.len, keep_alive);
	buf_free(&text);
	return status;
}

int
route_request(struct route_ctx *ctx)
{
	struct app *app = ctx->app;
	const struct http_request *req = ctx->req;
	struct buf *out = ctx->out;
	int *keep_alive = &ctx->keep_alive;
	enum metric_route *route = &ctx->route;
	static const struct http_header allow = { "Allow", "GET, HEAD", 5, 9 };
	int get =
	    strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	int status;

	if (serve_owns(req->path))
		return serve_route(app->serve, app->api, ctx);
	if (app->api != NULL && api_owns(req->path))
		return api_route(app->api, ctx);
	if (strcmp(req->path, "/health") == 0)
		*route = MR_HEALTH;
	else if (strcmp(req->path, "/ready") == 0)
		*route = MR_READY;
	else if (strcmp(req->path, "/metrics") == 0)
		*route = MR_METRICS;
	else
		*route = MR_OTHER;
	if (*route == MR_OTHER) {
		http_error(out, 404, "not_found", "no such route", *keep_alive);
		return 404;
	}
	if (!get) {
		/* The body of a refused request is not read further. */
		static const char body[] =
		    "{\"error\":{\"code\":\"method_not_allowed\","
		    "\"message\":\"use GET or HEAD\"}}";

		http_response_head(out, 405, "application/json",
		    sizeof(body) - 1, *keep_alive, &allow, 1);
		buf_append(out, body, sizeof(body) - 1);
		return 405;
	}
	switch (*route) {
	case MR_HEALTH:
		status = json(out, 200, "{\"status\":\"ok\"}", *keep_alive);
		break;
	case MR_READY:
		status = route_ready(app, out, *keep_alive);
		break;
	default:
		status = route_metrics(app, out, *keep_alive);
		break;
	}
	/* HEAD: the connection sends the head only (http_answer_fit). */
	return status;
}
