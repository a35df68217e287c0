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
	int max_tokens;            /* >= 1 */
	const char *const *stop;   /* stop strings (not shown in the output) */
	int n_stop;                /* <= 4 */
	uint64_t t0_ns;            /* arrival (uv_hrtime), for TTFT */
	void (*notify)(void *arg); /* any thread: new output or the end */
	void *notify_arg;
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
 * @brief Move the text made since the last call to the end of @p text
 * (whole UTF-8 characters only) and say where the sequence stands.
 * @return 0 or -ENOMEM (nothing moved; try again).
 * @note The consumer's thread; re-arms notify.
 */
int sched_seq_take(
    struct sched_seq *q, struct inf_tok_text *text, struct sched_progress *pr);

/** @brief The generated ids (owned by @p q, complete once finished). */
int sched_seq_ids(struct sched_seq *q, const int32_t **ids);

/** @brief Ask for the sequence to end; it leaves at the next step. Any
 * thread, any number of times. */
void sched_seq_cancel(struct sched_seq *q);

/** @brief The consumer is done: cancel if still running; notify is never
 * called again; freed once the scheduler lets go too. Safe on NULL. */
void sched_seq_release(struct sched_seq *q);

/** @brief Running and waiting sequences (a snapshot; any thread). */
void sched_load(struct sched *s, int *running, int *waiting);

/** @brief KV bytes one token takes on @p m (K and V, all layers, fp32). */
uint64_t sched_kv_bytes_per_token(const struct inf_model *m);

#endif /* SR_APPLIANCE_SERVE_IMPL_H */
