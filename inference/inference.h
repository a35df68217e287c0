/*
 * inference/inference.h: the inference module's public API: open a Hugging
 * Face model folder, run its forward pass on a backend (the CPU now, CUDA
 * later) over sequences that each keep a KV cache, sample tokens and drive
 * generation with stop conditions. The tokenizer and chat templates have
 * their own header (inference/tokenizer.h); this part works on token ids.
 *
 * It must never learn about keys, TLS or HTTP, and never guess at a model
 * it does not understand: anything unsupported or broken is refused with a
 * message naming the file, the key or tensor, and the value.
 *
 * Caveats
 * - Models are Llama and Qwen2 causal LMs (LlamaForCausalLM,
 *   Qwen2ForCausalLM) in safetensors with BF16, F16 or F32 weights; the
 *   weights are memory-mapped read-only and computed on in fp32.
 * - A model and everything made from it (sequences, generations) belong to
 *   one thread at a time: the scheduler thread. Different models may run
 *   in different threads. The backend's own worker threads are internal.
 * - Errors are 0 or a negative code (lib/sr.h). Functions that can fail on
 *   input also write a NUL-terminated message into @p err (INF_ERR_MAX
 *   bytes), naming the file, tensor or key and the value:
 *     INF_EFORMAT       a file is malformed (JSON, safetensors header,
 *                       offsets, sizes): the model folder is damaged;
 *                       re-copy it. Not retryable.
 *     INF_EUNSUPPORTED  the model needs something this engine does not do
 *                       (architecture, sliding window, rope type, dtype):
 *                       choose another model. Not retryable.
 *     INF_EMODEL        files disagree (tensor missing, shape unlike the
 *                       config, shard missing): the folder is incomplete.
 *     INF_ECONTEXT      a sequence would grow past its capacity: finish
 *                       the request with "length", or open a bigger one.
 *     INF_EPARAM        a caller's argument is out of range (token id,
 *                       sampling parameter, sequence of another model):
 *                       a caller bug or a bad client request (answer 400).
 *     INF_EBACKEND      the backend failed (device lost): fail the batch,
 *                       not the daemon.
 *     -ENOMEM, -errno   allocation or file errors.
 */
#ifndef SR_INFERENCE_INFERENCE_H
#define SR_INFERENCE_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/sr.h"

#define INF_ERR_MAX 512 /* bytes of an error message, NUL included */
#define INF_EOS_MAX 8   /* end-of-sequence ids kept from the configs */

struct inf_model;
struct inf_seq;
struct inf_sampler;
struct inf_gen;
struct inf_weights; /* the loaded tensors; backends see model_internal.h */

enum inf_arch { INF_ARCH_LLAMA = 1, INF_ARCH_QWEN2 };

/* What config.json and generation_config.json said, after validation. */
struct inf_model_info {
	enum inf_arch arch;
	char architecture[32]; /* "Qwen2ForCausalLM" */
	char dtype[16];        /* config's dtype: "bfloat16", ... */
	int vocab_size, hidden_size, intermediate_size, n_layers;
	int n_heads, n_kv_heads, head_dim, max_position_embeddings;
	float rms_norm_eps;
	double rope_theta;
	int rope_llama3; /* Llama-3 frequency scaling, with: */
	double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
	int rope_original_max_position_embeddings;
	int tied_embeddings; /* lm_head is embed_tokens */
	int qkv_bias, o_bias;
	int bos_id; /* -1 when none */
	int eos_ids[INF_EOS_MAX];
	int n_eos;
	/* generation_config.json's sampling defaults (absent: greedy) */
	int gen_do_sample;
	float gen_temperature, gen_top_p, gen_repetition_penalty;
	int gen_top_k;
	uint64_t weight_bytes; /* bytes of all tensors used */
	uint64_t decode_bytes; /* bytes one decode step reads (no embed) */
	const char *backend;   /* the backend's name, static */
	int threads;           /* backend worker threads in use */
};

/* ------------------------------------------------------------------ */
/* Backends: the function table a compute backend implements (calm)     */
/* ------------------------------------------------------------------ */

/* One entry of a forward step: tokens appended to one sequence. */
struct inf_step_item {
	void *kv;              /* the sequence's cache (backend's kv_alloc) */
	int pos;               /* position of tokens[0] in the sequence */
	const int32_t *tokens; /* n_tokens ids, checked < vocab_size */
	int n_tokens;
	int logits; /* enum inf_logits: which rows of logits it wants */
};

enum inf_logits { INF_LOGITS_NONE = 0, INF_LOGITS_LAST, INF_LOGITS_ALL };

/*
 * A backend. The model validates every argument before a call, so a
 * backend may trust them. forward() runs one step over several sequences
 * (prefill, batched decode, or both mixed), writes each item's K/V into
 * its cache, and writes the wanted logits rows in item order (vocab floats
 * each). Calls on one state never overlap. Errors: -ENOMEM, INF_EBACKEND.
 */
struct inf_backend_ops {
	const char *name;
	int (*load)(const struct inf_model_info *info,
	    const struct inf_weights *w, int threads, void **state, char *err,
	    size_t errlen);
	void (*unload)(void *state);
	int (*kv_alloc)(void *state, int capacity, void **kv);
	void (*kv_free)(void *state, void *kv);
	int (*forward)(void *state, const struct inf_step_item *items,
	    int n_items, float *logits);
	/*
	 * Optional (NULL: absent). forward() whose every item wants
	 * INF_LOGITS_LAST, returning per item only its INF_TOP_K highest
	 * logits and their ids (highest first, the lower id first on a tie,
	 * NaN as -inf) instead of vocab floats, so a device backend copies
	 * back almost nothing. generate.c samples from them when the
	 * sampler's settings depend on the top INF_TOP_K alone.
	 */
	int (*forward_top)(void *state, const struct inf_step_item *items,
	    int n_items, float *top_logits, int32_t *top_ids);
	/* Optional: the last failure's reason ("" when none), static. */
	const char *(*last_error)(void *state);
};

#define INF_TOP_K 64 /* candidates per row that forward_top returns */

/** The CPU backend: fp32 compute, a pthread pool split over matrix rows. */
extern const struct inf_backend_ops inf_backend_cpu;

/**
 * The CUDA backend (inference/cuda/): 16-bit weights on one NVIDIA GPU
 * (compute capability 9.0 or newer), fp32 accumulation, CUDA graphs for
 * decode steps, cuBLAS for prefill, top-k on the device. It always
 * exists; in a build without nvcc, or on a machine without a driver or
 * device, its load() fails with INF_EBACKEND and the reason. Check first
 * with inf_cuda_available(). A failed device call fails that step with
 * INF_EBACKEND (-ENOMEM when out of device memory); after a fault that
 * poisons the CUDA context (an illegal address) every later step fails
 * with INF_EBACKEND until the process restarts.
 */
extern const struct inf_backend_ops inf_backend_cuda;

/**
 * @brief Whether inf_backend_cuda can load here.
 * @param[out] why  the device's name when available, else the reason
 *        ("built without nvcc", "no CUDA driver: ..."); NUL-terminated.
 * @return 1 or 0. @note Any thread; cheap after the first call.
 */
int inf_cuda_available(char *why, size_t n);

/**
 * @brief Measure the GPU's achievable streaming-read bandwidth (a kernel
 * reading @p bytes, best of @p iters runs), for benchmarks.
 * @return 0 with *gbps (1e9 bytes/s), INF_EBACKEND (no device; @p err
 *         says why), -ENOMEM (the buffer did not fit).
 */
int inf_cuda_bandwidth(
    size_t bytes, int iters, double *gbps, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Models                                                               */
/* ------------------------------------------------------------------ */

struct inf_open_opts {
	const struct inf_backend_ops *backend; /* NULL: the CPU backend */
	int threads; /* backend threads; 0: one per online CPU */
};

/**
 * @brief Open a model folder: config.json, generation_config.json
 * (optional), model.safetensors or model.safetensors.index.json's shards.
 * @param[in] dir   the folder; copied.
 * @param[in] opts  NULL for defaults.
 * @param[out] out  the model on success, NULL on failure.
 * @param[out] err  the reason on failure ("DIR/config.json: ...").
 * @return 0, INF_EFORMAT, INF_EUNSUPPORTED, INF_EMODEL, -ENOMEM, -errno.
 * @note Any thread. The caller owns the model: inf_model_close() it after
 *       every sequence and generation made from it is freed.
 */
int inf_model_open(const char *dir, const struct inf_open_opts *opts,
    struct inf_model **out, char err[static INF_ERR_MAX]);

/** @brief Unmap and free; safe on NULL. */
void inf_model_close(struct inf_model *m);

/** @brief The model's description, owned by the model, valid until close. */
const struct inf_model_info *inf_model_info(const struct inf_model *m);

/**
 * @brief Why the backend's last step failed ("" when it has not, or the
 * backend keeps no reason). Owned by the model; valid until the next step.
 */
const char *inf_model_backend_error(const struct inf_model *m);

/* ------------------------------------------------------------------ */
/* Sequences and the forward pass                                       */
/* ------------------------------------------------------------------ */

/**
 * @brief A new, empty sequence with room for @p capacity tokens of KV
 * cache (0: the model's max_position_embeddings).
 * @return 0, INF_EPARAM (capacity < 0 or above the model's maximum),
 *         -ENOMEM.
 * @note Owned by the caller; free with inf_seq_free() before the model.
 */
int inf_seq_new(struct inf_model *m, int capacity, struct inf_seq **out);

/** @brief Free a sequence and its cache; safe on NULL. */
void inf_seq_free(struct inf_seq *s);

/** @brief Tokens in the sequence's cache. */
int inf_seq_length(const struct inf_seq *s);

/** @brief Tokens the sequence can hold. */
int inf_seq_capacity(const struct inf_seq *s);

/**
 * @brief Forget the cache after the first @p length tokens (0 empties it),
 * so a shared prefix can be kept. @return 0 or INF_EPARAM.
 */
int inf_seq_truncate(struct inf_seq *s, int length);

/** One sequence's part of inf_forward(). */
struct inf_batch_item {
	struct inf_seq *seq;
	const int32_t *tokens; /* borrowed for the call */
	int n_tokens;          /* >= 1 */
	enum inf_logits logits;
};

/**
 * @brief Append tokens to several sequences in one step of the backend
 * (whole-prompt prefill, batched decode, or both).
 * @param[out] logits  rows of vocab_size floats, in item order: none, the
 *        last token's, or every token's, as each item asks.
 * @return 0; INF_EPARAM (a token outside the vocabulary, an empty item,
 *         a sequence twice or of another model), INF_ECONTEXT (an item
 *         would pass its capacity; nothing was run), INF_EBACKEND,
 *         -ENOMEM. On failure no sequence has grown.
 */
int inf_forward(struct inf_model *m, const struct inf_batch_item *items,
    int n_items, float *logits);

/** @brief Prefill one sequence; the last position's logits (may be NULL). */
int inf_prefill(
    struct inf_seq *s, const int32_t *tokens, int n, float *logits_last);

/**
 * @brief One decode step for @p n sequences of one model, token i to
 * sequence i; logits is n rows of vocab_size floats.
 */
int inf_decode(
    struct inf_seq *const *seqs, const int32_t *tokens, int n, float *logits);

/* ------------------------------------------------------------------ */
/* Sampling                                                             */
/* ------------------------------------------------------------------ */

/*
 * Order: penalties, temperature, top-k, top-p, then a draw. Temperature 0
 * is greedy (the highest logit, lowest id on a tie). repetition_penalty
 * (1: off) divides positive and multiplies negative logits of every token
 * seen in the prompt or output (HF); frequency_penalty and
 * presence_penalty (0: off) subtract count*f and p from the logits of
 * tokens in the output (OpenAI). The same seed and inputs give the same
 * tokens on every machine (xoshiro256**).
 */
struct inf_sampling {
	float temperature;        /* 0 .. 100 */
	int top_k;                /* 0: off */
	float top_p;              /* (0, 1]; 1: off */
	float repetition_penalty; /* (0, 100]; 1: off */
	float frequency_penalty;  /* -2 .. 2 */
	float presence_penalty;   /* -2 .. 2 */
	uint64_t seed;
};

/** @brief Greedy, no penalties, seed 0. Cannot fail. */
void inf_sampling_defaults(struct inf_sampling *p);

/** @brief The model's generation_config.json defaults (greedy if none). */
void inf_sampling_from_model(struct inf_sampling *p, const struct inf_model *m);

/**
 * @brief Check ranges. @return 0 or INF_EPARAM with @p err naming the
 * parameter and its value ("top_p 1.5 is outside (0, 1]").
 */
int inf_sampling_check(
    const struct inf_sampling *p, char err[static INF_ERR_MAX]);

/**
 * @brief A sampler over @p vocab logits with its own PRNG and counts.
 * @return 0, INF_EPARAM (bad parameters or vocab < 1), -ENOMEM.
 * @note Owned by the caller (inf_sampler_free); one thread at a time.
 */
int inf_sampler_new(
    const struct inf_sampling *p, int vocab, struct inf_sampler **out);
void inf_sampler_free(struct inf_sampler *s);

/** @brief Record prompt tokens (for repetition_penalty). Ids out of range
 * are ignored. */
void inf_sampler_prompt(struct inf_sampler *s, const int32_t *ids, int n);

/**
 * @brief Pick the next token from @p logits (vocab floats; modified in
 * place) and record it as output.
 * @return the token id (>= 0).
 */
int32_t inf_sampler_next(struct inf_sampler *s, float *logits);

/* ------------------------------------------------------------------ */
/* Generation                                                           */
/* ------------------------------------------------------------------ */

/*
 * A stop check sees the output so far (ids, n); it returns 1 to stop
 * (the caller decodes text and looks for stop strings) and sets *drop to
 * how many trailing tokens should not be shown (0 if all). Called after
 * every token, in the thread that runs the generation.
 */
typedef int inf_stop_cb(const int32_t *ids, int n, int *drop, void *arg);

struct inf_stop {
	int max_tokens;         /* >= 1; the output never holds more */
	int ignore_eos;         /* 1: do not stop on the model's EOS ids */
	const int32_t *eos_ids; /* NULL: the model's */
	int n_eos;
	const int32_t *const *stop_seqs; /* token sequences ending output */
	const int *stop_lens;
	int n_stop_seqs;
	inf_stop_cb *check;
	void *check_arg;
};

enum inf_finish {
	INF_FINISH_NONE = 0, /* still running */
	INF_FINISH_EOS,      /* an EOS id (not kept in the output) */
	INF_FINISH_STOP,     /* a stop sequence or the check callback */
	INF_FINISH_LENGTH,   /* max_tokens, or the sequence is full */
};

/**
 * @brief Start a generation on an empty or truncated sequence: prefill
 * @p prompt and pick the first token.
 * @param[in] s, p, stop  borrowed: they (and the arrays stop points to)
 *        must outlive the generation.
 * @return 0, INF_EPARAM (empty prompt, bad sampling, max_tokens < 1),
 *         INF_ECONTEXT (the prompt does not fit), inf_forward's errors.
 * @note Owned by the caller: inf_gen_free() before the sequence.
 */
int inf_gen_start(struct inf_seq *s, const int32_t *prompt, int n,
    const struct inf_sampling *p, const struct inf_stop *stop,
    struct inf_gen **out);

/**
 * @brief One batched decode step: every unfinished generation in @p gens
 * (of one model) gets its next token. Finished ones are skipped.
 * @return 0 or inf_forward's errors (then no generation advanced).
 */
int inf_gen_step(struct inf_gen *const *gens, int n);

/** @brief INF_FINISH_NONE while running, else why it ended. */
enum inf_finish inf_gen_finish(const struct inf_gen *g);

/**
 * @brief The output so far: ids owned by @p g, valid until the next step
 * or free. A matched stop sequence (or the check's drop) is left out.
 */
int inf_gen_output(const struct inf_gen *g, const int32_t **ids);

void inf_gen_free(struct inf_gen *g);

/* Called once per new token with the output so far; return 1 to stop. */
typedef int inf_token_cb(const int32_t *ids, int n, void *arg);

/**
 * @brief Generate to the end: start, then steps until finished, calling
 * @p cb (may be NULL) after each token.
 * @param[out] finish  why it ended. @return as inf_gen_start/step.
 */
int inf_generate(struct inf_seq *s, const int32_t *prompt, int n,
    const struct inf_sampling *p, const struct inf_stop *stop, inf_token_cb *cb,
    void *arg, int32_t *out, int out_cap, int *n_out, enum inf_finish *finish);

#endif /* SR_INFERENCE_INFERENCE_H */
