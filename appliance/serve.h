/*
 * appliance/serve.h: serving the model: the OpenAI-compatible /v1 API
 * (chat completions, completions, models; streamed as Server-Sent Events
 * or whole), the model administration API (/api/models), one continuous-
 * batching scheduler thread per loaded model, a per-app response cache
 * for temperature-0 requests, per-key limits and the per-model metrics.
 *
 * Every /v1 and /api/models request is authenticated, authorized and
 * audited by the access layer (api.h's api_route_external()); the serving
 * part only ever sees an allowed caller, and writes the usage line (input
 * and output tokens, duration) to the audit log before the end of every
 * answer.
 *
 * Ownership: one struct serve per daemon, made by serve_open() at
 * start-up and freed by serve_close() after the loops have ended. Models
 * are reference-counted: a request holds the model it started on, so
 * unloading or switching the default never drops one in flight.
 *
 * Threading: serve_route() runs on a loop thread and never blocks;
 * schedulers run on their own threads and hand text back through
 * app_pending_post(); model loading runs on libuv's worker threads.
 *
 * Errors: serve_open() returns 0 or a negative code with a message for
 * the operator (a model folder that does not load names the file and the
 * problem). Requests get OpenAI-shaped errors
 * {"error":{"message","type","param","code"}}: 400 invalid_request_error,
 * 401/403 from the access layer, 404 model_not_found, 413 the prompt is
 * longer than the context, 429 queue or per-key limits (Retry-After),
 * 503 no model ready or the audit log unavailable.
 */
#ifndef SR_APPLIANCE_SERVE_H
#define SR_APPLIANCE_SERVE_H

#include "appliance/internal.h"

struct serve;
struct api;

/**
 * @brief Load the configured models (cfg->models, "NAME=DIR,..."), start
 * their schedulers and make the cache and limit tables.
 * @param[in] cfg  read during the call only.
 * @param[out] out the serving part; serve_close() it.
 * @param[out] err the first model that failed and why.
 * @return 0; -EINVAL (a malformed models list or unknown default);
 *         INF_E* from inference.h or -errno from the tokenizer for a
 *         model that does not load; -ENOMEM.
 * @note Start-up only.
 */
int serve_open(const struct app_config *cfg, struct serve **out, char err[256]);

/** @brief Stop every scheduler (sequences still running are aborted) and
 * free. Safe on NULL. No request may be pending any more. */
void serve_close(struct serve *s);

/** @brief Whether @p path is served here: /v1/... and /api/models... */
int serve_owns(const char *path);

/**
 * @brief Route one request (as route_request()): authenticated through
 * @p api, then answered whole, streamed, or refused.
 * @param[in] api  borrowed; NULL answers 503 (no access layer).
 * @note Loop thread.
 */
int serve_route(struct serve *s, struct api *api, struct route_ctx *ctx);

/**
 * @brief For /ready: 1 when at least one model serves (and the default
 * exists), else 0; @p text gets "ready", "none configured" or what is
 * missing. @note Any thread.
 */
int serve_ready(struct serve *s, char *text, size_t len);

/** @brief Append the per-model metrics (Prometheus text) to @p out.
 * @return 0 or -ENOMEM. @note Any thread. */
int serve_metrics_render(struct serve *s, struct buf *out);

#endif /* SR_APPLIANCE_SERVE_H */
