/*
 * inference/cuda/cu_internal.h: what the CUDA backend's host half
 * (backend.c, upload.c: C11) and its kernels (the .cu files) share:
 * device-side descriptions of a step and the launch wrappers; then, for
 * the C files only, the backend's state. Each wrapper enqueues its
 * kernels on @p st and returns cudaGetLastError(), so a bad launch is seen
 * by the caller; none synchronizes or allocates. Nothing outside
 * inference/cuda/ includes this file.
 */
#ifndef SR_INFERENCE_CUDA_CU_INTERNAL_H
#define SR_INFERENCE_CUDA_CU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The 16-bit type every weight matrix has on the device. */
enum cu_wtype { CU_BF16 = 0, CU_F16 = 1 };
/* A stored dtype to convert from (upload.c). */
enum cu_src { CU_SRC_F32 = 0, CU_SRC_F16 = 1, CU_SRC_BF16 = 2 };

#define CU_TOPK 64       /* = INF_TOP_K */
#define CU_GEMV_TOKENS 8 /* tokens per pass over a weight row */

/*
 * One step's tokens, as device arrays of cap_tokens entries at fixed
 * addresses (so a captured graph reads each step's values): token id,
 * position, its sequence's KV capacity and K/V bases (fp16, laid out
 * [layer][capacity][n_kv_heads * head_dim]), and for each output row the
 * index of its token.
 */
struct cu_tokens {
	const int32_t *tok, *pos, *kvcap, *rows;
	void *const *kbase;
	void *const *vbase;
};

struct cu_shape {
	int n_heads, n_kv_heads, head_dim; /* head_dim 16, 32, 64, 128, 256 */
};

cudaError_t cu__convert(cudaStream_t st, const void *src, enum cu_src from,
    size_t n, enum cu_wtype wt, void *dst);
cudaError_t cu__embed(cudaStream_t st, enum cu_wtype wt, const void *embed,
    int hidden, struct cu_tokens tk, int n_tokens, float *x);
/* out[i] = rmsnorm(x[rows ? rows[i] : i]) for i < n; either output may be
 * NULL (out16 in the weight type, for cuBLAS). */
cudaError_t cu__rmsnorm(cudaStream_t st, const float *x, const int32_t *rows,
    const float *w, int hidden, float eps, int n, float *out, enum cu_wtype wt,
    void *out16);
/* y[t][r] (+)= dot(W[r], x[t]) + bias[r], r < rows, t < n_tokens; x rows
 * are cols floats apart, y rows ldy. */
cudaError_t cu__gemv(cudaStream_t st, enum cu_wtype wt, const void *w, int rows,
    int cols, const float *x, int n_tokens, const float *bias, float *y,
    int ldy, int accumulate);
/* h[t][r] = silu(gate[r] . x[t]) * (up[r] . x[t]); wgu is gate's rows
 * then up's, inter each. */
cudaError_t cu__gemv_swiglu(cudaStream_t st, enum cu_wtype wt, const void *wgu,
    int inter, int hidden, const float *x, int n_tokens, float *h);
/* The fused decode QKV: wqkv (q, k, v rows) times xn, bias, RoPE, K and V
 * written to each token's cache at its position, q to q_out [T][qd]. */
cudaError_t cu__qkv_rope(cudaStream_t st, enum cu_wtype wt, const void *wqkv,
    const float *bias, const float *xn, int hidden, int n_tokens,
    struct cu_shape sh, const float *inv_freq, struct cu_tokens tk, int layer,
    float *q_out);
/* The same epilogue over a cuBLAS result qkv [T][qd + 2 kd]. */
cudaError_t cu__rope_store(cudaStream_t st, const float *qkv, const float *bias,
    int n_tokens, struct cu_shape sh, const float *inv_freq,
    struct cu_tokens tk, int layer, float *q_out);
/* Causal attention of each token over its sequence's cache up to its
 * position, in @p splits parts (flash-decoding) combined at the end;
 * part holds n_tokens * splits * n_heads * (head_dim + 2) floats. */
cudaError_t cu__attention(cudaStream_t st, const float *q, int n_tokens,
    struct cu_shape sh, struct cu_tokens tk, int layer, int splits, float *part,
    float *out);
/* h16[t][r] = silu(gu[t][r]) * gu[t][inter + r] in the weight type. */
cudaError_t cu__swiglu_act(cudaStream_t st, const float *gu, int n_tokens,
    int inter, enum cu_wtype wt, void *h16);
cudaError_t cu__to16(
    cudaStream_t st, const float *x, size_t n, enum cu_wtype wt, void *out);
/* x[t][r] += b[r] */
cudaError_t cu__add_bias(
    cudaStream_t st, float *x, const float *b, int n_tokens, int n);
/* Per row: the CU_TOPK highest logits (NaN as -inf) and ids, highest
 * first, the lower id first on ties; rows of CU_TOPK entries, padded with
 * -inf / -1 when vocab < CU_TOPK. */
cudaError_t cu__topk(cudaStream_t st, const float *logits, int n_rows,
    int vocab, float *top_l, int32_t *top_id);
/* Reads n16 16-byte words; writes one float that depends on all. */
cudaError_t cu__stream_read(
    cudaStream_t st, const void *buf, size_t n16, float *sink, int blocks);

#ifdef __cplusplus
}
#endif

/* ---------------------------------------------------------------- */
/* The host side (backend.c, upload.c): C only                        */
/* ---------------------------------------------------------------- */
#ifndef __cplusplus
#include <cublas_v2.h>

#include "inference/model_internal.h"

/* Captured decode graphs kept (LRU), and the longest step that runs as
 * GEMV kernels in a graph; longer ones run cuBLAS. */
#define CU_GRAPHS 32
#define CU_GRAPH_TOKENS 32
#define CU_WHY 256

struct cu_layer {
	void *wqkv, *wo, *wgu, *wdown; /* 16-bit, row-major */
	float *bqkv, *bo;              /* NULL when the model has none */
	float *attn_norm, *mlp_norm;
};

struct cu_graph {
	int n_tokens, n_out, splits; /* the key */
	cudaGraphExec_t exec;
	unsigned long long used; /* LRU clock */
};

struct cu_state {
	const struct inf_model_info *info;
	enum cu_wtype wt;
	struct cu_shape sh;
	int hidden, inter, vocab, qd, kd, qkv_rows;
	void *embed, *lm_head; /* lm_head == embed when tied */
	float *final_norm, *inv_freq;
	struct cu_layer *layers;
	int n_layers;
	cudaStream_t stream;
	cublasHandle_t blas;
	/* per-step buffers for cap_tokens tokens and cap_out output rows */
	int cap_tokens, cap_out;
	float *x, *xn, *q, *att, *qkv, *gu, *hbuf, *part, *logits;
	void *act16;
	void *tk_dev, *tk_host; /* the cu_tokens arrays; host is pinned */
	size_t tk_bytes;
	struct cu_tokens tk;
	float *top_l_dev, *top_l_host;
	int32_t *top_id_dev, *top_id_host;
	struct cu_graph graphs[CU_GRAPHS];
	unsigned long long clock;
	int poisoned;  /* a sticky device error: every step fails */
	int capturing; /* a graph capture is open on the stream */
	char why[CU_WHY];
};

/* Record a CUDA failure of @p what: -ENOMEM for out-of-memory, else
 * INF_EBACKEND; marks the state poisoned when the context is lost. */
int cu__fail(struct cu_state *s, cudaError_t e, const char *what);

/* Weights and vectors to the device (upload.c). */
int cu__upload_weights(
    struct cu_state *s, const struct inf_weights *w, char *err, size_t errlen);
void cu__free_weights(struct cu_state *s);

/* The model's shapes the kernels handle; 0 or INF_EUNSUPPORTED. */
int cu__check_shapes(const struct inf_model_info *in, char *err, size_t errlen);
#endif /* !__cplusplus */

#endif /* SR_INFERENCE_CUDA_CU_INTERNAL_H */
