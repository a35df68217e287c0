/*
 * appliance/serve_v1.c: the work of POST /v1/chat/completions and
 * /v1/completions: the JSON body checked parameter by parameter (OpenAI's
 * names and ranges; n > 1, tools, images and log probabilities refused
 * by name), the prompt built with the model's chat template or its
 * tokenizer, the response cache asked for temperature 0, the per-key
 * limits, the request queued on the model's scheduler, and its text
 * handed back whole or as Server-Sent Events.
 *
 * It must never let message text become control tokens (chat prompts go
 * through inf_chat_encode(), plain prompts are encoded without special
 * tokens), never queue a prompt longer than the context, never refuse a
 * request for a max_tokens it did not ask for (the default is what the
 * context and the KV budget leave), and never serve one tenant's cached
 * answer to another (the tenant leads the cache key).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "appliance/serve_impl.h"
#include "lib/sr.h"

#define STOP_MAX 4
#define MSG_MAX 256

struct params {
	const char *model;
	int max_tokens; /* -1: as much as the context and KV budget allow */
	struct inf_sampling sp;
	const char *stop[STOP_MAX];
	int n_stop;
};

/* A refusal of the request's body: 400 with the parameter's name. */
#define BAD(param, msg) \
	serve_req_fail(r, 400, "invalid_request_error", param, msg, 0)

static int
get_number(yyjson_val *o, const char *key, double lo, double hi, double *out,
    int *given)
{
	yyjson_val *v = yyjson_obj_get(o, key);

	*given = 0;
	if (v == NULL || yyjson_is_null(v))
		return 0;
	if (!yyjson_is_num(v) || !isfinite(yyjson_get_num(v)) ||
	    yyjson_get_num(v) < lo || yyjson_get_num(v) > hi)
		return -1;
	*out = yyjson_get_num(v);
	*given = 1;
	return 0;
}

/* A JSON number equal to 1 (1 or 1.0, as OpenAI takes it). */
static int
one(yyjson_val *v)
{
	return yyjson_is_num(v) && yyjson_get_num(v) == 1.0;
}

/* Parameters no engine here can honour, refused rather than ignored. */
static const char *
unsupported(yyjson_val *o, const char **param)
{
	yyjson_val *v;

	if ((v = yyjson_obj_get(o, "n")) != NULL && !yyjson_is_null(v) &&
	    !one(v))
		return *param = "n", "only n=1 is supported";
	if ((v = yyjson_obj_get(o, "best_of")) != NULL && !yyjson_is_null(v) &&
	    !one(v))
		return *param = "best_of", "only best_of=1 is supported";
	if (((v = yyjson_obj_get(o, "tools")) != NULL && !yyjson_is_null(v)) ||
	    ((v = yyjson_obj_get(o, "functions")) != NULL &&
	        !yyjson_is_null(v)))
		return *param = "tools",
		       "tools and function calling are not "
		       "supported";
	if ((v = yyjson_obj_get(o, "logprobs")) != NULL && !yyjson_is_null(v) &&
	    !yyjson_is_false(v))
		return *param = "logprobs",
		       "log probabilities are not supported";
	if ((v = yyjson_obj_get(o, "echo")) != NULL && yyjson_is_true(v))
		return *param = "echo", "echo is not supported";
	if ((v = yyjson_obj_get(o, "suffix")) != NULL && !yyjson_is_null(v))
		return *param = "suffix", "suffix is not supported";
	return NULL;
}

/* The sampling and stop parameters; a message for the first bad one. */
static const char *
parse_params(
    struct serve_req *r, yyjson_val *o, struct params *pa, const char **param)
{
	yyjson_val *v, *it;
	double d;
	int given, mt;
	size_t i, n;

	inf_sampling_from_model(&pa->sp, r->model->m);
	pa->max_tokens = -1;
	for (mt = 0; mt < 2; mt++) {
		*param = mt ? "max_completion_tokens" : "max_tokens";
		if (get_number(o, *param, 1, 1e9, &d, &given) != 0 ||
		    (given && d != floor(d)))
			return "must be a whole number of at least 1";
		if (given)
			pa->max_tokens = (int)d;
	}
	*param = "temperature";
	if (get_number(o, *param, 0, 2, &d, &given) != 0)
		return "must be a number from 0 to 2";
	if (given)
		pa->sp.temperature = (float)d;
	*param = "top_p";
	if (get_number(o, *param, 0, 1, &d, &given) != 0 || (given && d == 0))
		return "must be a number in (0, 1]";
	if (given)
		pa->sp.top_p = (float)d;
	*param = "presence_penalty";
	if (get_number(o, *param, -2, 2, &d, &given) != 0)
		return "must be a number from -2 to 2";
	if (given)
		pa->sp.presence_penalty = (float)d;
	*param = "frequency_penalty";
	if (get_number(o, *param, -2, 2, &d, &given) != 0)
		return "must be a number from -2 to 2";
	if (given)
		pa->sp.frequency_penalty = (float)d;
	*param = "seed";
	v = yyjson_obj_get(o, "seed");
	if (v != NULL && !yyjson_is_null(v) && !yyjson_is_int(v))
		return "must be an integer";
	if (v != NULL && yyjson_is_int(v))
		pa->sp.seed = (uint64_t)yyjson_get_sint(v);
	else if (sr_os_random(&pa->sp.seed, sizeof(pa->sp.seed)) != 0)
		pa->sp.seed = (uint64_t)time(NULL);
	*param = "stop";
	v = yyjson_obj_get(o, "stop");
	if (yyjson_is_str(v)) {
		pa->stop[pa->n_stop++] = yyjson_get_str(v);
	} else if (yyjson_is_arr(v)) {
		if (yyjson_arr_size(v) > STOP_MAX)
			return "at most 4 stop sequences";
		yyjson_arr_foreach(v, i, n, it)
		{
			if (!yyjson_is_str(it))
				return "must be a string or a list of strings";
			pa->stop[pa->n_stop++] = yyjson_get_str(it);
		}
	} else if (v != NULL && !yyjson_is_null(v)) {
		return "must be a string or a list of strings";
	}
	*param = "user";
	v = yyjson_obj_get(o, "user");
	if (v != NULL && !yyjson_is_null(v) && !yyjson_is_str(v))
		return "must be a string";
	*param = "stream";
	v = yyjson_obj_get(o, "stream");
	if (v != NULL && !yyjson_is_null(v) && !yyjson_is_bool(v))
		return "must be true or false";
	r->stream = yyjson_is_true(v);
	*param = "stream_options";
	v = yyjson_obj_get(o, "stream_options");
	if (v != NULL && !yyjson_is_null(v) && !yyjson_is_obj(v))
		return "must be an object";
	if (v != NULL && !yyjson_is_null(v) && !r->stream)
		return "only allowed when stream is true";
	r->include_usage =
	    yyjson_is_true(yyjson_obj_get(v, "include_usage")) && r->stream;
	return NULL;
}

/* One message's text: a string, or a list of text parts. */
static const char *
message_text(
    yyjson_val *content, struct buf *joined, const char **text, size_t *len)
{
	yyjson_val *part, *type;
	size_t i, n;

	if (content == NULL || yyjson_is_null(content)) {
		*text = "";
		*len = 0;
		return NULL;
	}
	if (yyjson_is_str(content)) {
		*text = yyjson_get_str(content);
		*len = yyjson_get_len(content);
		return NULL;
	}
	if (!yyjson_is_arr(content))
		return "content must be a string or a list of parts";
	yyjson_arr_foreach(content, i, n, part)
	{
		type = yyjson_obj_get(part, "type");
		if (!yyjson_equals_str(type, "text"))
			return "only text content is supported (no images, "
			       "audio or files)";
		if (!yyjson_is_str(yyjson_obj_get(part, "text")))
			return "a text part needs its text";
		buf_append(joined, yyjson_get_str(yyjson_obj_get(part, "text")),
		    yyjson_get_len(yyjson_obj_get(part, "text")));
	}
	*text = joined->data != NULL ? (const char *)joined->data : "";
	*len = joined->len;
	return NULL;
}

/* The chat prompt's ids; a message for what is wrong, with rc. */
static const char *
chat_prompt(
    struct serve_req *r, yyjson_val *o, struct inf_tok_ids *ids, int *rc)
{
	struct inf_chat_msg msgs[MSG_MAX];
	struct buf joined[MSG_MAX];
	yyjson_val *arr = yyjson_obj_get(o, "messages"), *m;
	const char *role, *why = NULL;
	size_t i, n = yyjson_arr_size(arr);

	*rc = 0;
	if (!yyjson_is_arr(arr) || n == 0)
		return "messages must be a non-empty list";
	if (n > MSG_MAX)
		return "at most 256 messages";
	if (r->model->family == INF_CHAT_UNKNOWN)
		return "this model has no chat template: use /v1/completions";
	memset(joined, 0, sizeof(joined));
	for (i = 0; i < n; i++)
		joined[i].wipe = 1; /* a prompt is the caller's data */
	for (i = 0; i < n && why == NULL; i++) {
		m = yyjson_arr_get(arr, i);
		role = yyjson_get_str(yyjson_obj_get(m, "role"));
		if (role == NULL)
			why = "every message needs a role";
		else if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0)
			msgs[i].role = INF_CHAT_SYSTEM;
		else if (strcmp(role, "user") == 0)
			msgs[i].role = INF_CHAT_USER;
		else if (strcmp(role, "assistant") == 0)
			msgs[i].role = INF_CHAT_ASSISTANT;
		else
			why = "roles are system, developer, user and "
			      "assistant (no tool messages)";
		if (why == NULL)
			why = message_text(yyjson_obj_get(m, "content"),
			    &joined[i], &msgs[i].content, &msgs[i].content_len);
	}
	if (why == NULL &&
	    (*rc = inf_chat_encode(
	         r->model->tok, r->model->family, msgs, n, 1, ids)) != 0)
		why = *rc == -EILSEQ ? "messages are not valid UTF-8"
		                     : "messages could not be encoded";
	for (i = 0; i < n; i++)
		buf_free(&joined[i]);
	return why;
}

static const char *
completion_prompt(
    struct serve_req *r, yyjson_val *o, struct inf_tok_ids *ids, int *rc)
{
	yyjson_val *v = yyjson_obj_get(o, "prompt");
	unsigned flags = inf_tok_add_bos(r->model->tok) ? INF_TOK_ADD_BOS : 0;

	*rc = 0;
	if (yyjson_is_arr(v) && yyjson_arr_size(v) == 1)
		v = yyjson_arr_get(v, 0);
	if (!yyjson_is_str(v))
		return "prompt must be a string (one prompt per request)";
	if ((*rc = inf_tok_encode(r->model->tok, yyjson_get_str(v),
	         yyjson_get_len(v), flags, ids)) != 0)
		return *rc == -EILSEQ ? "prompt is not valid UTF-8"
		                      : "prompt could not be encoded";
	return NULL;
}

/* The key of a cached answer: tenant first, then everything that shapes
 * the output, then the prompt's ids. */
static int
cache_key(
    struct serve_req *r, const struct params *pa, const struct inf_tok_ids *ids)
{
	struct buf *k = &r->cache_key;
	int i, rc;

	/* the load's id, not only the name: a model replaced under the same
	 * name never answers from its predecessor's entries */
	rc = buf_printf(k, "%s%c%s%c%llu%c%d%c%d%c%.9g%c%.9g%c%.9g%c%d%c",
	    r->tenant, 0, r->model->name, 0,
	    (unsigned long long)r->model->load_id, 0, r->chat, 0,
	    pa->max_tokens, 0, (double)pa->sp.top_p, 0,
	    (double)pa->sp.presence_penalty, 0,
	    (double)pa->sp.frequency_penalty, 0, pa->n_stop, 0);
	/* each stop string with its length: no two lists give one key */
	for (i = 0; i < pa->n_stop && rc == 0; i++)
		rc = buf_printf(
		    k, "%zu%c%s", strlen(pa->stop[i]), 0, pa->stop[i]);
	if (rc == 0)
		rc = buf_append(k, ids->ids, ids->len * sizeof(int32_t));
	return rc;
}

static void
post_step(void *p)
{
	app_pending_post(p);
}

static void
release_hold(void *p)
{
	app_pending_release(p);
}

/* Whole text: the answer after the split. For the cache and the end. */
static int
answer_whole(struct serve_req *r)
{
	const char *fin = serve_finish_name(r->finish);

	r->answer.len = 0;
	if (r->stream) {
		serve_sse_delta(
		    &r->answer, r->framing, &r->ans, NULL, NULL, NULL, fin);
		if (r->include_usage)
			serve_sse_usage(&r->answer, r->framing, &r->ans,
			    r->n_prompt, r->n_out);
		serve_sse_done(&r->answer, r->framing);
	} else {
		serve_answer_json(&r->answer, &r->ans, &r->reason, &r->content,
		    fin, r->n_prompt, r->n_out, r->keep_alive);
	}
	return serve_req_end(r, 200);
}

/* New text: split it and, when streaming, send it as one event. */
static int
emit(struct serve_req *r, struct buf *out, const char *p, size_t n, int final)
{
	int rc;

	if (r->stream) {
		r->reason.len = 0;
		r->content.len = 0;
	}
	rc = serve_split_feed(&r->split, p, n, final, &r->reason, &r->content);
	if (rc == 0 && r->stream &&
	    (!r->role_sent || r->reason.len > 0 || r->content.len > 0))
		rc = serve_sse_delta(out, r->framing, &r->ans,
		    r->role_sent ? NULL : "assistant", &r->reason, &r->content,
		    NULL);
	r->role_sent = 1;
	return rc;
}

/* The stream's head. A stream to an HTTP/1.0 client ends with the
 * connection, whatever keep-alive it asked for. */
static void
stream_head(struct serve_req *r, struct buf *out)
{
	if (r->framing == HTTP_UNTIL_CLOSE)
		r->keep_alive = 0;
	serve_sse_head(out, r->framing, r->keep_alive);
}

static int
from_cache(struct serve_req *r, struct buf *out, struct serve_cached *hit)
{
	atomic_fetch_add(&r->model->mx.cache_hits, 1);
	r->cache_hit = 1;
	r->n_out = hit->n_tokens;
	r->finish = hit->finish;
	if (r->stream)
		stream_head(r, out);
	emit(r, out, hit->text, hit->len, 1);
	free(hit->text);
	return answer_whole(r);
}

static int
submit(struct serve_req *r, const struct params *pa,
    const struct inf_tok_ids *ids, struct buf *out)
{
	struct sched_req q = { 0 };
	unsigned retry = 1;
	int rc;

	rc = serve_limits_enter(r->s->limits, r->limit_key,
	    (double)(r->n_prompt + pa->max_tokens), &retry);
	if (rc != 0)
		return serve_req_fail(r, 429, "rate_limit_exceeded", NULL,
		    rc == -EBUSY ? "too many requests in flight for this key"
		                 : "token rate limit reached for this key",
		    retry);
	r->limited = 1;
	q.prompt = ids->ids;
	q.n_prompt = (int)ids->len;
	q.sampling = pa->sp;
	q.max_tokens = pa->max_tokens;
	q.stop = pa->stop;
	q.n_stop = pa->n_stop;
	q.t0_ns = r->t0_ns;
	q.notify = post_step;
	q.on_done = release_hold;
	q.notify_arg = r->p;
	app_pending_hold(r->p); /* the scheduler posts until on_done */
	if ((rc = sched_submit(r->model->sched, &q, &r->seq)) != 0) {
		app_pending_release(r->p);
		if (rc == -EAGAIN)
			return serve_req_fail(r, 429, "queue_full", NULL,
			    "the model's queue is full; retry shortly", 1);
		if (rc == -E2BIG || rc == INF_ECONTEXT)
			return serve_req_fail(r, 413, "context_length_exceeded",
			    "max_tokens",
			    "the prompt and max_tokens do not fit the model's "
			    "memory",
			    0);
		if (rc == INF_EPARAM)
			return BAD(
			    NULL, "a sampling parameter is out of range");
		return serve_req_fail(r, 503, "unavailable", NULL,
		    "the model is not serving now", 1);
	}
	r->phase = SP_GEN;
	if (!r->stream)
		return ROUTE_PENDING;
	stream_head(r, out);
	if (r->chat)
		emit(r, out, NULL, 0, 0); /* the role, at once */
	return ROUTE_STREAM;
}

int
serve_v1_start(
    struct serve_req *r, const uint8_t *body, size_t len, struct buf *out)
{
	/* The prompt's copies in the document are wiped when it is freed. */
	yyjson_doc *doc = yyjson_read_opts(
	    (char *)(uintptr_t)body, len, 0, &serve_wiping_alc, NULL);
	yyjson_val *o = yyjson_doc_get_root(doc);
	struct params pa = { 0 };
	struct inf_tok_ids ids;
	struct serve_cached hit;
	const char *why, *param = NULL;
	int rc, room, status;

	inf_tok_ids_init(&ids);
	if (!yyjson_is_obj(o)) {
		status = BAD(NULL, "the body must be a JSON object");
		goto out;
	}
	if ((why = unsupported(o, &param)) != NULL) {
		status = BAD(param, why);
		goto out;
	}
	pa.model = yyjson_get_str(yyjson_obj_get(o, "model"));
	if (yyjson_obj_get(o, "model") != NULL && pa.model == NULL) {
		status = BAD("model", "model must be a string");
		goto out;
	}
	if (pa.model != NULL && pa.model[0] == '\0')
		pa.model = NULL; /* "": the default, as when omitted */
	if ((r->model = serve_model_get(r->s, pa.model)) == NULL) {
		status = pa.model != NULL
		    ? serve_req_fail(r, 404, "model_not_found", "model",
		          "no such model; GET /v1/models lists them", 0)
		    : serve_req_fail(r, 503, "model_not_ready", "model",
		          "no model is loaded", 5);
		goto out;
	}
	r->ans.model = r->model->name;
	if ((why = parse_params(r, o, &pa, &param)) != NULL) {
		status = BAD(param, why);
		goto out;
	}
	why = r->chat ? chat_prompt(r, o, &ids, &rc)
	              : completion_prompt(r, o, &ids, &rc);
	if (why != NULL) {
		status = rc == -ENOMEM
		    ? serve_req_fail(r, 503, "unavailable", NULL, why, 1)
		    : BAD(r->chat ? "messages" : "prompt", why);
		goto out;
	}
	r->n_prompt = (int)ids.len;
	if (r->n_prompt == 0) {
		status = BAD(r->chat ? "messages" : "prompt",
		    "the prompt is empty: give it some text");
		goto out;
	}
	if (r->n_prompt >= r->model->context) {
		status = serve_req_fail(r, 413, "context_length_exceeded",
		    r->chat ? "messages" : "prompt",
		    "the prompt is longer than the model's context", 0);
		goto out;
	}
	/* Omitted: what both the context and the KV budget leave (the rate
	 * limits are charged the same); asked for: cut to the context, and
	 * refused (413) when it cannot fit the KV budget, before the limits
	 * are charged. */
	room = sched_room(r->model->sched, r->n_prompt);
	if (room < 1) {
		status = serve_req_fail(r, 413, "context_length_exceeded",
		    r->chat ? "messages" : "prompt",
		    "the prompt does not fit the model's memory", 0);
		goto out;
	}
	if (pa.max_tokens < 0)
		pa.max_tokens = room;
	else if (pa.max_tokens > r->model->context - r->n_prompt)
		pa.max_tokens = r->model->context - r->n_prompt;
	if (pa.max_tokens > room) {
		status = serve_req_fail(r, 413, "context_length_exceeded",
		    "max_tokens",
		    "the prompt and max_tokens do not fit the model's memory",
		    0);
		goto out;
	}
	serve_split_init(&r->split, r->chat && r->model->reasoning);
	r->cacheable = pa.sp.temperature == 0 && cache_key(r, &pa, &ids) == 0;
	if (r->cacheable &&
	    serve_cache_get(
	        r->s->cache, r->cache_key.data, r->cache_key.len, &hit) == 1) {
		status = from_cache(r, out, &hit);
		goto out;
	}
	if (r->cacheable)
		atomic_fetch_add(&r->model->mx.cache_misses, 1);
	status = submit(r, &pa, &ids, out);
out:
	inf_tok_ids_free(&ids);
	yyjson_doc_free(doc);
	return status;
}

int
serve_v1_step(struct serve_req *r, struct buf *out)
{
	struct sched_progress pr;
	size_t from = r->piece.len; /* piece keeps the whole raw text */
	int done;

	if (sched_seq_take(r->seq, &r->piece, &pr) != 0)
		return r->stream ? ROUTE_STREAM : ROUTE_PENDING; /* next post */
	done = pr.finish != SCHED_RUNNING;
	r->n_out = pr.n_tokens;
	if (r->piece.len > from || done)
		emit(r, out, r->piece.text + from, r->piece.len - from, done);
	if (!done)
		return r->stream ? ROUTE_STREAM : ROUTE_PENDING;
	r->finish = pr.finish;
	if (pr.finish == SCHED_ERROR || pr.finish == SCHED_ABORT) {
		r->answer.len = 0;
		if (!r->stream)
			return serve_req_fail(r, 503, "engine_error", NULL,
			    pr.finish == SCHED_ERROR
			        ? "the inference engine failed this batch"
			        : "the server is stopping",
			    1);
		serve_sse_error(&r->answer, r->framing, "engine_error",
		    "the generation ended early");
		serve_sse_done(&r->answer, r->framing);
		return serve_req_end(r, 503);
	}
	if (r->cacheable) {
		struct serve_cached v = { r->piece.text, r->piece.len, r->n_out,
			r->finish };

		serve_cache_put(
		    r->s->cache, r->cache_key.data, r->cache_key.len, &v);
	}
	return answer_whole(r);
}
