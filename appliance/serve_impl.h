/*
 * appliance/serve_impl.h: what the serving files share: the scheduler
 * (serve_sched.c), the loaded models and their metrics (serve_models.c),
 * the response cache (serve_cache.c), the /v1 handlers (serve_api.c) and
 * the OpenAI wire format (serve_stream.c). Nothing outside appliance/
 * serve*.c and their own tests includes it.
 *
 * Threading: a scheduler owns its model on its own thread; everything
 * else here is called from loop threads and is safe from any thread
 * unless a comment says otherwise.
 */
#ifndef SR_APPLIANCE_SERVE_IMPL_H
#define SR_APPLIANCE_SERVE_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "appliance/serve.h"
#include "inference/inference.h"
#include "inference/tokenizer.h"

/* ------------------------------------------------------------------ */
/* Per-model metrics (serve_models.c renders them)                      */
/* ------------------------------------------------------------------ */

#define SERVE_HIST_BOUNDS 14
struct serve_hist {
	atomic_ullong bucket[SERVE_HIST_BOUNDS + 1]; /* own observations */
	atomic_ullong sum_us;
};
#define SERVE_BATCH_BOUNDS 7
struct serve_metrics {
	struct serve_hist ttft, itl, e2e;
	atomic_ullong batch[SERVE_BATCH_BOUNDS + 1], batch_sum, steps;
	atomic_ullong prompt_tokens, generation_tokens;
	atomic_ullong finished[4]; /* stop, length, abort, error */
	atomic_ullong cache_hits, cache_misses;
	atomic_int running, waiting;
	atomic_ullong kv_used, kv_budget; /* bytes */
};

/** Observe @p usec in @p h (relaxed atomics; any thread). */
void serve_hist_observe(struct serve_hist *h, uint64_t usec);

/** Render every family for @p n models (names and metrics side by side)
 * into @p out; nothing when n is 0. @return 0 or -ENOMEM. */
int serve_metrics_write(struct buf *out, const char *const *names,
    struct serve_metrics *const *mx, int n);

/* ------------------------------------------------------------------ */
/* The scheduler (serve_sched.c)                                        */
/* ------------------------------------------------------------------ */

struct sched;
struct sched_seq;

struct sched_opts {
	int max_batch;            /* sequences per step, 1..256 */
	int batch_wait_ms;        /* longest wait to gather a prefill batch */
	int queue_max;            /* waiting requests before -EAGAIN */
	uint64_t kv_budget_bytes; /* KV memory of all running sequences */
	int prefill_tokens;       /* prompt tokens admitted per step */
};

enum sched_finish {
	SCHED_RUNNING = 0,
	SCHED_STOP,   /* EOS or a stop string */
	SCHED_LENGTH, /* max_tokens or the context is full */
	SCHED_ABORT,  /* cancelled (client gone, server stopping) */
	SCHED_ERROR,  /* the engine failed this batch */
};

/* A request as submitted; everything is copied by sched_submit(). */
struct sched_req {
	const int32_t *prompt;
	int n_prompt;
	struct inf_sampling sampling;
	int max_tokens;             /* >= 1 */
	const char *const *stop;    /* stop strings (not shown in the output) */
	int n_stop;                 /* <= 4 */
	uint64_t t0_ns;             /* arrival (uv_hrtime), for TTFT */
	void (*notify)(void *arg);  /* any thread: new output or the end */
	void (*on_done)(void *arg); /* once, when the scheduler lets go: no
	                              notify follows (may be NULL) */
	void *notify_arg;           /* both callbacks' argument */
};

/* What a consumer learns from sched_seq_take(). */
struct sched_progress {
	enum sched_finish finish;
	int n_tokens; /* generated so far */
	int error;    /* with SCHED_ERROR: the engine's code */
};

/**
 * @brief Start a scheduler thread that owns @p m for its whole life.
 * @param[in] m, tok  borrowed: they outlive sched_stop().
 * @param[in] metrics borrowed likewise; the scheduler counts into it.
 * @return 0, -ENOMEM, -errno from pthread_create.
 */
int sched_start(struct inf_model *m, const struct inf_tok *tok,
    const struct sched_opts *o, struct serve_metrics *metrics,
    struct sched **out);

/**
 * @brief Abort every sequence (consumers see SCHED_ABORT), join the
 * thread and free. Safe on NULL. Consumers still holding sequences keep
 * them valid until they release them.
 */
void sched_stop(struct sched *s);

/**
 * @brief Queue a request; it joins the running batch at the next step.
 * @return 0 with *out (release it with sched_seq_release());
 *         -EAGAIN   the queue is full: answer 429 with Retry-After;
 *         -E2BIG    its KV cache would never fit the budget: 413;
 *         INF_ECONTEXT  the prompt and max_tokens exceed the context;
 *         INF_EPARAM    bad sampling parameters;
 *         -ESHUTDOWN the scheduler is stopping; -ENOMEM.
 * @note Any thread. notify may be called before this returns.
 */
int sched_submit(
    struct sched *s, const struct sched_req *r, struct sched_seq **out);

/**
 * @brief The most tokens one sequence with a prompt of @p n_prompt may
 * ask for: what both the context and the KV budget leave after the
 * prompt (0 when the prompt alone does not fit). A request without
 * max_tokens gets this, so that it is never refused for a default.
 */
int sched_room(const struct sched *s, int n_prompt);

/**
 * @brief Move the text made since the last call to the end of @p text
 * (whole UTF-8 characters only) and say where the sequence stands.
 * @return 0 or -ENOMEM (nothing moved; try again).
 * @note The consumer's thread; re-arms notify.
 */
int sched_seq_take(
    struct sched_seq *q, struct inf_tok_text *text, struct sched_progress *pr);

/** @brief The generated ids (owned by @p q, complete once finished). */
int sched_seq_ids(struct sched_seq *q, const int32_t **ids);

/** @brief Ask for the sequence to end; a running one leaves at the next
 * step, a waiting one the queue at once (it ends SCHED_ABORT, and its
 * notify and on_done run on the caller's thread). Any thread, any number
 * of times, also after sched_stop(). */
void sched_seq_cancel(struct sched_seq *q);

/** @brief The consumer is done: cancel if still running or waiting (as
 * sched_seq_cancel(), without notify); notify is never called again;
 * freed once the scheduler lets go too. Safe on NULL. */
void sched_seq_release(struct sched_seq *q);

/** @brief Running and waiting sequences (a snapshot; any thread). */
void sched_load(struct sched *s, int *running, int *waiting);

/** @brief KV bytes one token takes on @p m (K and V, all layers, fp32). */
uint64_t sched_kv_bytes_per_token(const struct inf_model *m);

/* ------------------------------------------------------------------ */
/* Models (serve_models.c)                                              */
/* ------------------------------------------------------------------ */

#define SERVE_NAME_MAX 64

/* A loaded model with its tokenizer and scheduler. Reference-counted:
 * the registry holds one while it is listed, each request one. */
struct serve_model {
	char name[SERVE_NAME_MAX];
	char dir[PATH_MAX];
	struct inf_model *m;
	struct inf_tok *tok;
	enum inf_chat_family family;
	int reasoning;    /* DeepSeek-R1: text before </think> is reasoning */
	int context;      /* max_position_embeddings */
	uint64_t load_id; /* unique per load: a model replaced under its
	                     name is another model (the cache key) */
	int64_t created;
	struct sched *sched;
	struct serve_metrics mx;
	atomic_int refs;
	struct serve_model *next; /* the registry's list */
};

struct serve_cache;
struct serve_limits;

struct serve {
	struct sched_opts so;
	int threads;
	const struct inf_backend_ops *backend; /* serve_backend's choice */
	pthread_mutex_t mu;                    /* the list and the default */
	struct serve_model *models;
	char default_name[SERVE_NAME_MAX];
	struct serve_cache *cache;
	struct serve_limits *limits;
};

/** @brief Whether @p name is a valid model name ([A-Za-z0-9._-]{1,63}). */
int serve_name_ok(const char *name);

/**
 * @brief Open a model folder, its tokenizer and chat family, and start its
 * scheduler. Blocking (start-up or a worker thread).
 * @return 0, INF_E*, -errno; @p err says what failed.
 */
int serve_model_load(struct serve *s, const char *name, const char *dir,
    struct serve_model **out, char err[256]);

/** @brief List @p m (the registry takes the caller's reference).
 * @return 0 or -EEXIST (the caller still owns @p m). */
int serve_model_add(struct serve *s, struct serve_model *m, int make_default);

/** @brief The model called @p name (NULL or "": the default), with a
 * reference taken; NULL when there is none. Any thread. */
struct serve_model *serve_model_get(struct serve *s, const char *name);

/** @brief Drop a reference; the last stops the scheduler and frees.
 * NULL is fine. */
void serve_model_put(struct serve_model *m);

/** @brief Unlist @p name (requests in flight finish on it). @return 0 or
 * -ENOENT. */
int serve_model_remove(struct serve *s, const char *name);

/** @brief Make @p name the default. @return 0 or -ENOENT. */
int serve_model_set_default(struct serve *s, const char *name);

/** @brief The registry as JSON text (malloc'd): the OpenAI model list
 * (@p admin 0) or the admin listing (1). NULL when out of memory. */
char *serve_models_json(struct serve *s, int admin, size_t *len);

/* ------------------------------------------------------------------ */
/* Per-key limits (serve_limits.c)                                      */
/* ------------------------------------------------------------------ */

/**
 * @brief Make the per-key table: @p concurrency requests at once and
 * @p tokens_per_s (prompt plus max_tokens) with a bucket of @p burst.
 */
int serve_limits_new(unsigned concurrency, double tokens_per_s, double burst,
    struct serve_limits **out);
void serve_limits_free(struct serve_limits *l);

/**
 * @brief Admit one request of @p tokens for @p key.
 * @return 0 admitted (call serve_limits_done() at its end); -EBUSY too
 *         many at once; -EAGAIN over the token rate (*retry_after_s set).
 */
int serve_limits_enter(struct serve_limits *l, const char *key, double tokens,
    unsigned *retry_after_s);
void serve_limits_done(struct serve_limits *l, const char *key);

/* ------------------------------------------------------------------ */
/* The response cache (serve_cache.c)                                   */
/* ------------------------------------------------------------------ */

/* What a cached answer holds. */
struct serve_cached {
	char *text; /* malloc'd, NUL-terminated */
	size_t len;
	int n_tokens;
	enum sched_finish finish;
};

int serve_cache_new(unsigned ttl_s, unsigned max_entries, size_t max_bytes,
    struct serve_cache **out);
void serve_cache_free(struct serve_cache *c);

/**
 * @brief Find an answer for exactly this key (@p key: the tenant, model,
 * prompt ids and every parameter, serialized by the caller).
 * @return 1 with @p out filled (the caller frees out->text), 0 when none
 *         (or expired), -ENOMEM.
 */
int serve_cache_get(struct serve_cache *c, const void *key, size_t key_len,
    struct serve_cached *out);

/** @brief Store an answer (copied); the oldest entries leave when full. */
void serve_cache_put(struct serve_cache *c, const void *key, size_t key_len,
    const struct serve_cached *v);

/* ------------------------------------------------------------------ */
/* The OpenAI wire format (serve_stream.c)                              */
/* ------------------------------------------------------------------ */

/* DeepSeek-R1 reasoning: text before "</think>" is reasoning_content, the
 * rest content. Text that could be the start of "</think>" waits. */
struct serve_split {
	int thinking;             /* still before "</think>" */
	struct inf_tok_text hold; /* a possible "</think>" start */
};

/** @brief Start: @p reasoning 0 sends everything to content. */
void serve_split_init(struct serve_split *sp, int reasoning);
/** @brief Feed text (@p final: the end, release what waits); append the
 * parts to @p reason and @p content. @return 0 or -ENOMEM. */
int serve_split_feed(struct serve_split *sp, const char *p, size_t n, int final,
    struct inf_tok_text *reason, struct inf_tok_text *content);
void serve_split_free(struct serve_split *sp);

/* What every answer of one request repeats. */
struct serve_answer {
	char id[48];
	int64_t created;
	const char *model;
	int chat; /* chat.completion(.chunk), else text_completion */
};

/** @brief "stop", "length", "abort", "error". */
const char *serve_finish_name(enum sched_finish f);

/**
 * @brief An OpenAI error: {"error":{"message","type","param","code"}},
 * the type from the status; a Retry-After header when @p retry_after_s.
 * @return @p status.
 */
int serve_error(struct buf *out, int status, const char *code,
    const char *param, const char *message, int keep_alive,
    unsigned retry_after_s);
/** @brief The same with one extra header field, or none (@p extra NULL):
 * a 405's Allow. */
int serve_error_hdr(struct buf *out, int status, const char *code,
    const char *param, const char *message, int keep_alive,
    const struct http_header *extra);

/** @brief The JSON allocator for prompts and answers (serve_stream.c):
 * what it frees or grows is wiped first (sr_alc_*). */
extern const struct yyjson_alc serve_wiping_alc;

/** @brief The whole non-streamed answer (head and JSON body). */
int serve_answer_json(struct buf *out, const struct serve_answer *a,
    const struct inf_tok_text *reason, const struct inf_tok_text *content,
    const char *finish, int n_prompt, int n_out, int keep_alive);

/**
 * @brief The head of a stream (200, text/event-stream) framed by
 * @p framing (http_stream_framing of the request: HTTP_CHUNKED, or
 * HTTP_UNTIL_CLOSE with @p keep_alive 0). Every event of the stream and
 * its end take the same @p framing.
 */
int serve_sse_head(struct buf *out, size_t framing, int keep_alive);

/**
 * @brief One SSE event as a part of the body: a chunk object with the role
 * (when @p role), reasoning and content deltas (for completions the text
 * is @p content), and @p finish (NULL: null).
 */
int serve_sse_delta(struct buf *out, size_t framing,
    const struct serve_answer *a, const char *role,
    const struct inf_tok_text *reason, const struct inf_tok_text *content,
    const char *finish);

/** @brief The usage chunk (choices empty) of stream_options.include_usage. */
int serve_sse_usage(struct buf *out, size_t framing,
    const struct serve_answer *a, int n_prompt, int n_out);

/** @brief An error event, for a stream that cannot go on. */
int serve_sse_error(
    struct buf *out, size_t framing, const char *code, const char *message);

/** @brief "data: [DONE]" and the end of the body. */
int serve_sse_done(struct buf *out, size_t framing);

/* ------------------------------------------------------------------ */
/* One request's life (serve_api.c) and the /v1 work (serve_v1.c)       */
/* ------------------------------------------------------------------ */

enum serve_phase {
	SP_START, /* being parsed */
	SP_GEN,   /* the scheduler makes its tokens */
	SP_LOAD,  /* an admin load on a worker */
	SP_AUDIT, /* its usage line is being written */
};

/* A request handed over by the access layer; loop thread only, except
 * the fields marked atomic. Freed by its last step. */
struct serve_req {
	struct serve *s;
	struct api *api;
	struct app_pending *p;
	enum serve_phase phase;
	const char *action;
	char actor[64], tenant[64], key_id[64], src[64], path[256];
	char method[8];
	uint64_t t0_ns;
	int keep_alive;
	size_t framing; /* a stream's: http_stream_framing of the request */
	/* inference */
	struct serve_model *model;
	struct serve_answer ans;
	int chat, stream, include_usage, cacheable, cache_hit, role_sent;
	char limit_key[160];
	int limited; /* holds a place in the per-key limits */
	struct sched_seq *seq;
	struct serve_split split;
	struct inf_tok_text piece, reason, content; /* piece: all text */
	int n_prompt, n_out;
	enum sched_finish finish;
	struct buf cache_key;
	/* the end: the answer (or the stream's tail) waits for its line */
	int status;
	struct buf answer;
	atomic_int audit_done;
	int audit_rc;
	/* admin */
	char name[SERVE_NAME_MAX], dir[PATH_MAX], err[256];
	int make_default, load_rc;
	struct serve_model *loaded;
};

/**
 * @brief Record the usage line, then answer: r->answer holds the bytes
 * still to send (the whole answer, or the stream's tail) and @p status
 * the request's status. @return what the step returns now
 * (ROUTE_STREAM when streaming, else ROUTE_PENDING).
 */
int serve_req_end(struct serve_req *r, int status);

/** @brief Refuse with an OpenAI error as the whole answer, recorded
 * first. @return as serve_req_end(). */
int serve_req_fail(struct serve_req *r, int status, const char *code,
    const char *param, const char *message, unsigned retry_after_s);

/** @brief Start a chat or completion request (r->chat says which) from
 * its JSON body. @return as a step. */
int serve_v1_start(
    struct serve_req *r, const uint8_t *body, size_t len, struct buf *out);

/** @brief A later step while the scheduler generates. */
int serve_v1_step(struct serve_req *r, struct buf *out);

#endif /* SR_APPLIANCE_SERVE_IMPL_H */
