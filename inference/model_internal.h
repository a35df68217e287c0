/*
 * inference/model_internal.h: declarations shared by the model half of
 * inference/ (safetensors reader, config parser, loader, backends). Only
 * inference/ and its own tests include it; other modules use
 * inference/inference.h. Nothing here may be reached across modules.
 */
#ifndef SR_INFERENCE_MODEL_INTERNAL_H
#define SR_INFERENCE_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "inference/inference.h"

/* ------------------------------------------------------------------ */
/* safetensors (safetensors.c)                                          */
/* ------------------------------------------------------------------ */

#define INF_ST_MAX_HEADER 100000000ull /* the reference reader's bound */
#define INF_ST_MAX_DIMS 8

enum inf_dtype {
	INF_DT_UNKNOWN = 0,
	INF_DT_F32,
	INF_DT_F16,
	INF_DT_BF16,
	INF_DT_OTHER, /* a valid safetensors dtype the engine cannot use */
};

struct inf_st_tensor {
	const char *name;       /* owned by the file (its JSON document) */
	const char *dtype_name; /* "BF16" */
	enum inf_dtype dtype;
	int ndim;
	uint64_t shape[INF_ST_MAX_DIMS];
	uint64_t begin, end;       /* relative to the byte buffer */
	const unsigned char *data; /* into the file's bytes */
};

struct inf_st_file {
	char *path;                 /* owned; NULL for a parsed buffer */
	const unsigned char *bytes; /* the whole file */
	size_t size;
	void *_map; /* mmap of the file, or NULL when parsing a buffer */
	void *_doc; /* yyjson_doc holding names */
	struct inf_st_tensor *tensors; /* sorted by name */
	size_t n_tensors;
	size_t n_metadata; /* entries of __metadata__ */
};

/**
 * Parse and validate a safetensors file already in memory, as the
 * reference reader does. @p f must be zeroed first; @p bytes must outlive
 * it. The message says
 * what is wrong, without a file name (the caller prefixes it).
 * Returns 0, INF_EFORMAT or -ENOMEM; @p f is usable with inf__st_close
 * either way.
 */
int inf__st_parse(const unsigned char *bytes, size_t size,
    struct inf_st_file *f, char *err, size_t errlen);

/** Map and parse @p path; messages start with the path. */
int inf__st_open(
    const char *path, struct inf_st_file *f, char *err, size_t errlen);

void inf__st_close(struct inf_st_file *f);

/** The tensor called @p name, or NULL. */
const struct inf_st_tensor *inf__st_find(
    const struct inf_st_file *f, const char *name);

/** Bytes per element of a usable dtype (0 for others). */
size_t inf__dtype_size(enum inf_dtype dt);

/* ------------------------------------------------------------------ */
/* config.json and generation_config.json (config.c)                    */
/* ------------------------------------------------------------------ */

/**
 * Read @p dir's config.json and generation_config.json (optional) into
 * @p info. Returns 0, INF_EFORMAT (bad JSON, wrong types, bad values),
 * INF_EUNSUPPORTED, -errno (config.json unreadable), -ENOMEM.
 */
int inf__config_load(
    const char *dir, struct inf_model_info *info, char *err, size_t errlen);

/**
 * Read a JSON file whole and parse it; on a syntax error the message is
 * "PATH:LINE:COL: bad JSON: why". Returns a yyjson_doc (as void *) or NULL.
 * @p rc gets 0, INF_EFORMAT, -errno or -ENOMEM.
 */
void *inf__json_read(
    const char *path, size_t max, int *rc, char *err, size_t errlen);

/** RoPE inverse frequencies (head_dim / 2 of them), Llama-3 scaled when
 * configured, as Hugging Face computes them in float32. */
void inf__rope_freqs(const struct inf_model_info *info, float *inv_freq);

/* ------------------------------------------------------------------ */
/* Loaded weights (model.c), read by the backends                       */
/* ------------------------------------------------------------------ */

/* A matrix [rows, cols] in row-major order: y = W x takes dot products
 * with each row. The data belong to the mapped file. */
struct inf_matrix {
	const void *data;
	enum inf_dtype dtype;
	int rows, cols;
};

struct inf_layer {
	float *attn_norm, *mlp_norm; /* [hidden], fp32, owned */
	struct inf_matrix q, k, v, o, gate, up, down;
	float *q_bias, *k_bias, *v_bias, *o_bias; /* NULL when absent */
};

struct inf_weights {
	struct inf_matrix embed;   /* [vocab, hidden] */
	struct inf_matrix lm_head; /* embed when tied */
	float *final_norm;
	struct inf_layer *layers;
	int n_layers;
};

/** The model a sequence belongs to. */
struct inf_model *inf__seq_model(const struct inf_seq *s);

/**
 * inf_forward() through the backend's forward_top: every item wants
 * INF_LOGITS_LAST; @p top_logits / @p top_ids get INF_TOP_K entries per
 * item (fewer valid when vocab < INF_TOP_K: the rest are -inf / -1).
 * INF_EUNSUPPORTED when the backend has no forward_top (nothing ran).
 */
int inf__forward_top(struct inf_model *m, const struct inf_batch_item *items,
    int n_items, float *top_logits, int32_t *top_ids);

/** 1 when @p s's next token depends only on the INF_TOP_K highest logits
 * (greedy, or top_k below INF_TOP_K, and no penalties). */
int inf__sampler_top_ok(const struct inf_sampler *s);

/** inf_sampler_next() over forward_top's candidates (@p n of them,
 * sorted); the same token inf_sampler_next() picks from the full row. */
int32_t inf__sampler_next_top(struct inf_sampler *s, const float *top_logits,
    const int32_t *top_ids, int n);

/** Convert @p n stored elements to fp32. */
void inf__to_f32(float *out, const void *in, enum inf_dtype dt, size_t n);

/* ------------------------------------------------------------------ */
/* The CPU backend's internals (cpu_*.c)                                */
/* ------------------------------------------------------------------ */

struct cpu_pool;

typedef void cpu_task_fn(void *ctx, int index, int count);

/** A pool of @p n threads (the caller counts as one, so n-1 are made). */
int cpu__pool_new(int n, struct cpu_pool **out);
void cpu__pool_free(struct cpu_pool *p);
int cpu__pool_size(const struct cpu_pool *p);
/** Run fn(ctx, i, n) for i in 0..n-1, one per thread; returns when all
 * have finished. */
void cpu__pool_run(struct cpu_pool *p, cpu_task_fn *fn, void *ctx);

/** 1 while the portable kernels are forced (tests compare both paths). */
extern int cpu__force_portable;

/**
 * Y[t][r] = dot(X[t], W[r]) (+ bias[r]) for tokens t < T and rows
 * r in [r0, r1). X rows are W->cols floats apart; Y rows ldy apart.
 */
void cpu__matmul_rows(float *y, int ldy, const float *x, int n_tokens,
    const struct inf_matrix *w, const float *bias, int r0, int r1);

#endif /* SR_INFERENCE_MODEL_INTERNAL_H */
