/*
 * inference/cuda/backend.c: the CUDA backend behind struct
 * inf_backend_ops: per-sequence fp16 KV caches in device memory, and the
 * forward step over a ragged batch. Steps of up to CU_GRAPH_TOKENS tokens
 * (decode, batched decode, short prompts) run warp-per-row GEMV kernels
 * replayed from a CUDA graph captured per (tokens, output rows, attention
 * splits); longer steps run cuBLAS GEMMs (16-bit in, fp32 out). Only
 * logits, or with forward_top only the top CU_TOPK candidates, come back.
 * It must never abort the process on a device error: each CUDA and cuBLAS
 * call is checked and the step fails with INF_EBACKEND or -ENOMEM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/cuda/cu_internal.h"

struct cu_kv {
	void *k, *v; /* fp16 [layer][capacity][kd] */
	int capacity;
};

#define CK(call, what) \
	do { \
		cudaError_t e_ = (call); \
		if (e_ != cudaSuccess) \
			return cu__fail(s, e_, what); \
	} while (0)

static int
blas_fail(struct cu_state *s, cublasStatus_t st, const char *what)
{
	snprintf(
	    s->why, sizeof(s->why), "cublas: %s: status %d", what, (int)st);
	return st == CUBLAS_STATUS_ALLOC_FAILED ? -ENOMEM : INF_EBACKEND;
}

/* ---------------------------------------------------------------- */
/* Per-step buffers                                                   */
/* ---------------------------------------------------------------- */

static void
drop_graphs(struct cu_state *s)
{
	int i;

	for (i = 0; i < CU_GRAPHS; i++)
		if (s->graphs[i].exec != NULL) {
			cudaGraphExecDestroy(s->graphs[i].exec);
			s->graphs[i].exec = NULL;
		}
}

static void
free_tokens(struct cu_state *s)
{
	void **p[] = { (void **)&s->x, (void **)&s->xn, (void **)&s->q,
		(void **)&s->att, (void **)&s->qkv, (void **)&s->gu,
		(void **)&s->hbuf, (void **)&s->part, &s->act16, &s->tk_dev };
	size_t i;

	drop_graphs(s);
	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		cudaFree(*p[i]);
		*p[i] = NULL;
	}
	cudaFreeHost(s->tk_host);
	s->tk_host = NULL;
	s->cap_tokens = 0;
}

static void
free_out(struct cu_state *s)
{
	drop_graphs(s);
	cudaFree(s->logits);
	cudaFree(s->top_l_dev);
	cudaFree(s->top_id_dev);
	cudaFreeHost(s->top_l_host);
	cudaFreeHost(s->top_id_host);
	s->logits = s->top_l_dev = s->top_l_host = NULL;
	s->top_id_dev = s->top_id_host = NULL;
	s->cap_out = 0;
}

/* Attention partials: (hd + 2) floats per token, head and split, for
 * at least 1024 token-splits (choose_splits keeps within that). */
static size_t
part_floats(const struct cu_state *s, int cap)
{
	size_t cells = (size_t)(cap > 1024 ? cap : 1024) * s->sh.n_heads;

	return cells * (size_t)(s->sh.head_dim + 2);
}

static int
grow_tokens(struct cu_state *s, int T)
{
	size_t H = (size_t)s->hidden, I = (size_t)s->inter, cap, w16;
	size_t off;
	int n;

	if (T <= s->cap_tokens)
		return 0;
	free_tokens(s);
	n = T < CU_GRAPH_TOKENS ? CU_GRAPH_TOKENS : T;
	cap = (size_t)n;
	w16 = H > I ? H : I;
	if ((size_t)s->qd > w16)
		w16 = (size_t)s->qd;
	/* tok, pos, kvcap, rows (int32), then kbase, vbase (pointers) */
	s->tk_bytes = cap * 4 * sizeof(int32_t) + 2 * cap * sizeof(void *);
	CK(cudaMalloc((void **)&s->x, cap * H * 4), "cudaMalloc (x)");
	CK(cudaMalloc((void **)&s->xn, cap * H * 4), "cudaMalloc (xn)");
	CK(cudaMalloc((void **)&s->q, cap * s->qd * 4), "cudaMalloc (q)");
	CK(cudaMalloc((void **)&s->att, cap * s->qd * 4), "cudaMalloc (att)");
	CK(cudaMalloc((void **)&s->qkv, cap * s->qkv_rows * 4),
	    "cudaMalloc (qkv)");
	CK(cudaMalloc((void **)&s->gu, cap * 2 * I * 4), "cudaMalloc (gu)");
	CK(cudaMalloc((void **)&s->hbuf, cap * I * 4), "cudaMalloc (h)");
	CK(cudaMalloc((void **)&s->part, part_floats(s, n) * 4),
	    "cudaMalloc (attention partials)");
	CK(cudaMalloc(&s->act16, cap * w16 * 2), "cudaMalloc (act16)");
	CK(cudaMalloc(&s->tk_dev, s->tk_bytes), "cudaMalloc (tokens)");
	CK(cudaMallocHost(&s->tk_host, s->tk_bytes), "cudaMallocHost");
	s->cap_tokens = n;
	off = 0;
	s->tk.tok = (const int32_t *)((char *)s->tk_dev + off);
	off += cap * sizeof(int32_t);
	s->tk.pos = (const int32_t *)((char *)s->tk_dev + off);
	off += cap * sizeof(int32_t);
	s->tk.kvcap = (const int32_t *)((char *)s->tk_dev + off);
	off += cap * sizeof(int32_t);
	s->tk.rows = (const int32_t *)((char *)s->tk_dev + off);
	off += cap * sizeof(int32_t);
	s->tk.kbase = (void *const *)((char *)s->tk_dev + off);
	off += cap * sizeof(void *);
	s->tk.vbase = (void *const *)((char *)s->tk_dev + off);
	return 0;
}

static int
grow_out(struct cu_state *s, int n_out)
{
	size_t n;

	if (n_out <= s->cap_out)
		return 0;
	free_out(s);
	n = (size_t)(n_out < CU_GRAPH_TOKENS ? CU_GRAPH_TOKENS : n_out);
	CK(cudaMalloc((void **)&s->logits, n * s->vocab * 4),
	    "cudaMalloc (logits)");
	CK(cudaMalloc((void **)&s->top_l_dev, n * CU_TOPK * 4),
	    "cudaMalloc (top)");
	CK(cudaMalloc((void **)&s->top_id_dev, n * CU_TOPK * 4),
	    "cudaMalloc (top)");
	CK(cudaMallocHost((void **)&s->top_l_host, n * CU_TOPK * 4),
	    "cudaMallocHost (top)");
	CK(cudaMallocHost((void **)&s->top_id_host, n * CU_TOPK * 4),
	    "cudaMallocHost (top)");
	s->cap_out = (int)n;
	return 0;
}

/* Fill the token arrays for @p items (T tokens) and send them; returns
 * the number of output rows. */
static int
send_tokens(struct cu_state *s, const struct inf_step_item *items, int n_items,
    int *n_out)
{
	size_t cap = (size_t)s->cap_tokens;
	int32_t *tok = s->tk_host, *pos = tok + cap, *kvcap = pos + cap;
	int32_t *rows = kvcap + cap;
	void **kb = (void **)(rows + cap), **vb = kb + cap;
	int i, j, t = 0, o = 0;

	for (i = 0; i < n_items; i++) {
		const struct cu_kv *kv = items[i].kv;

		for (j = 0; j < items[i].n_tokens; j++, t++) {
			tok[t] = items[i].tokens[j];
			pos[t] = items[i].pos + j;
			kvcap[t] = kv->capacity;
			kb[t] = kv->k;
			vb[t] = kv->v;
			if (items[i].logits == INF_LOGITS_ALL ||
			    (items[i].logits == INF_LOGITS_LAST &&
			        j == items[i].n_tokens - 1))
				rows[o++] = t;
		}
	}
	*n_out = o;
	CK(cudaMemcpyAsync(s->tk_dev, s->tk_host, s->tk_bytes,
	       cudaMemcpyHostToDevice, s->stream),
	    "cudaMemcpyAsync (tokens)");
	return 0;
}

/*
 * Context splits for attention: about 256 keys per block, a power of two
 * (graphs are keyed on it) from 1 to 32, with at most 1024 token-splits
 * (the partials buffer).
 */
static int
choose_splits(int T, int max_ctx)
{
	int S = 1;

	while (S < 32 && S * 256 < max_ctx)
		S *= 2;
	while (S > 1 && S * T > 1024)
		S /= 2;
	return S;
}

/* ---------------------------------------------------------------- */
/* The layers                                                         */
/* ---------------------------------------------------------------- */

#define EQ(call, what) \
	do { \
		cudaError_t e_ = (call); \
		if (e_ != cudaSuccess) \
			return cu__fail(s, e_, what); \
	} while (0)

/* The GEMV path: everything a step of T <= CU_GRAPH_TOKENS does, on the
 * stream (captured into a graph by the caller). */
static int
enqueue_gemv_step(struct cu_state *s, int T, int n_out, int S)
{
	const struct inf_model_info *in = s->info;
	cudaStream_t st = s->stream;
	int H = s->hidden, I = s->inter, l;
	float eps = in->rms_norm_eps;

	EQ(cu__embed(st, s->wt, s->embed, H, s->tk, T, s->x), "embed");
	for (l = 0; l < s->n_layers; l++) {
		const struct cu_layer *L = &s->layers[l];

		EQ(cu__rmsnorm(st, s->x, NULL, L->attn_norm, H, eps, T, s->xn,
		       s->wt, NULL),
		    "rmsnorm");
		EQ(cu__qkv_rope(st, s->wt, L->wqkv, L->bqkv, s->xn, H, T, s->sh,
		       s->inv_freq, s->tk, l, s->q),
		    "qkv");
		EQ(cu__attention(
		       st, s->q, T, s->sh, s->tk, l, S, s->part, s->att),
		    "attention");
		EQ(cu__gemv(st, s->wt, L->wo, H, s->qd, s->att, T, L->bo, s->x,
		       H, 1),
		    "o_proj");
		EQ(cu__rmsnorm(st, s->x, NULL, L->mlp_norm, H, eps, T, s->xn,
		       s->wt, NULL),
		    "rmsnorm");
		EQ(cu__gemv_swiglu(st, s->wt, L->wgu, I, H, s->xn, T, s->hbuf),
		    "gate_up");
		EQ(cu__gemv(
		       st, s->wt, L->wdown, H, I, s->hbuf, T, NULL, s->x, H, 1),
		    "down_proj");
	}
	if (n_out > 0) {
		EQ(cu__rmsnorm(st, s->x, s->tk.rows, s->final_norm, H, eps,
		       n_out, s->xn, s->wt, NULL),
		    "final norm");
		EQ(cu__gemv(st, s->wt, s->lm_head, s->vocab, H, s->xn, n_out,
		       NULL, s->logits, s->vocab, 0),
		    "lm_head");
	}
	return 0;
}

/* Y[t][r] = X16[t] . W[r] (+ beta Y): rows x T, fp32 out and compute. */
static int
gemm(struct cu_state *s, const void *w, int rows, int k, const void *x16, int T,
    float *y, float beta, const char *what)
{
	cudaDataType_t dt = s->wt == CU_BF16 ? CUDA_R_16BF : CUDA_R_16F;
	float alpha = 1.0f;
	cublasStatus_t st;

	st = cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, T, k, &alpha,
	    w, dt, k, x16, dt, k, &beta, y, CUDA_R_32F, rows,
	    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
	return st == CUBLAS_STATUS_SUCCESS ? 0 : blas_fail(s, st, what);
}

/* The cuBLAS path, for long steps (prefill): run eagerly. */
static int
run_gemm_step(struct cu_state *s, int T, int n_out, int S)
{
	const struct inf_model_info *in = s->info;
	cudaStream_t st = s->stream;
	int H = s->hidden, I = s->inter, l, rc;
	float eps = in->rms_norm_eps;

	EQ(cu__embed(st, s->wt, s->embed, H, s->tk, T, s->x), "embed");
	for (l = 0; l < s->n_layers; l++) {
		const struct cu_layer *L = &s->layers[l];

		EQ(cu__rmsnorm(st, s->x, NULL, L->attn_norm, H, eps, T, NULL,
		       s->wt, s->act16),
		    "rmsnorm");
		if ((rc = gemm(s, L->wqkv, s->qkv_rows, H, s->act16, T, s->qkv,
		         0.0f, "qkv")) != 0)
			return rc;
		EQ(cu__rope_store(st, s->qkv, L->bqkv, T, s->sh, s->inv_freq,
		       s->tk, l, s->q),
		    "rope");
		EQ(cu__attention(
		       st, s->q, T, s->sh, s->tk, l, S, s->part, s->att),
		    "attention");
		EQ(cu__to16(st, s->att, (size_t)T * s->qd, s->wt, s->act16),
		    "to16");
		if ((rc = gemm(s, L->wo, H, s->qd, s->act16, T, s->x, 1.0f,
		         "o_proj")) != 0)
			return rc;
		if (L->bo != NULL)
			EQ(cu__add_bias(st, s->x, L->bo, T, H), "o bias");
		EQ(cu__rmsnorm(st, s->x, NULL, L->mlp_norm, H, eps, T, NULL,
		       s->wt, s->act16),
		    "rmsnorm");
		if ((rc = gemm(s, L->wgu, 2 * I, H, s->act16, T, s->gu, 0.0f,
		         "gate_up")) != 0)
			return rc;
		EQ(cu__swiglu_act(st, s->gu, T, I, s->wt, s->act16), "swiglu");
		if ((rc = gemm(s, L->wdown, H, I, s->act16, T, s->x, 1.0f,
		         "down_proj")) != 0)
			return rc;
	}
	if (n_out == 0)
		return 0;
	if (n_out <= CU_GRAPH_TOKENS) {
		EQ(cu__rmsnorm(st, s->x, s->tk.rows, s->final_norm, H, eps,
		       n_out, s->xn, s->wt, NULL),
		    "final norm");
		EQ(cu__gemv(st, s->wt, s->lm_head, s->vocab, H, s->xn, n_out,
		       NULL, s->logits, s->vocab, 0),
		    "lm_head");
		return 0;
	}
	EQ(cu__rmsnorm(st, s->x, s->tk.rows, s->final_norm, H, eps, n_out, NULL,
	       s->wt, s->act16),
	    "final norm");
	return gemm(s, s->lm_head, s->vocab, H, s->act16, n_out, s->logits,
	    0.0f, "lm_head");
}

/* The cached graph for this key, captured on a miss (the least recently
 * used one is replaced). */
static int
graph_for(struct cu_state *s, int T, int n_out, int S, cudaGraphExec_t *out)
{
	struct cu_graph *g = NULL, *lru = &s->graphs[0];
	cudaGraph_t graph = NULL;
	cudaError_t e;
	int i, rc;

	*out = NULL;
	for (i = 0; i < CU_GRAPHS; i++) {
		struct cu_graph *c = &s->graphs[i];

		if (c->exec != NULL && c->n_tokens == T && c->n_out == n_out &&
		    c->splits == S)
			g = c;
		if (c->exec == NULL || c->used < lru->used)
			lru = c;
	}
	if (g == NULL) {
		g = lru;
		if (g->exec != NULL)
			cudaGraphExecDestroy(g->exec);
		g->exec = NULL;
		CK(cudaStreamBeginCapture(
		       s->stream, cudaStreamCaptureModeThreadLocal),
		    "cudaStreamBeginCapture");
		s->capturing = 1;
		rc = enqueue_gemv_step(s, T, n_out, S);
		e = cudaStreamEndCapture(s->stream, &graph);
		s->capturing = 0;
		if (rc != 0) {
			if (graph != NULL)
				cudaGraphDestroy(graph);
			return rc;
		}
		if (e != cudaSuccess)
			return cu__fail(s, e, "cudaStreamEndCapture");
		e = cudaGraphInstantiate(&g->exec, graph, 0);
		cudaGraphDestroy(graph);
		if (e != cudaSuccess) {
			g->exec = NULL;
			return cu__fail(s, e, "cudaGraphInstantiate");
		}
		g->n_tokens = T;
		g->n_out = n_out;
		g->splits = S;
	}
	g->used = ++s->clock;
	*out = g->exec;
	return 0;
}

/* Everything up to logits on the device for @p n_out rows. */
static int
run_step(struct cu_state *s, const struct inf_step_item *items, int n_items,
    int *n_out)
{
	cudaGraphExec_t exec;
	int i, T = 0, max_ctx = 0, S, rc;

	if (s->poisoned)
		return INF_EBACKEND;
	s->why[0] = '\0';
	for (i = 0; i < n_items; i++) {
		T += items[i].n_tokens;
		if (items[i].pos + items[i].n_tokens > max_ctx)
			max_ctx = items[i].pos + items[i].n_tokens;
	}
	if ((rc = grow_tokens(s, T)) != 0 || (rc = grow_out(s, T)) != 0 ||
	    (rc = send_tokens(s, items, n_items, n_out)) != 0)
		return rc;
	S = choose_splits(T, max_ctx);
	if (T > CU_GRAPH_TOKENS)
		return run_gemm_step(s, T, *n_out, S);
	if ((rc = graph_for(s, T, *n_out, S, &exec)) != 0)
		return rc;
	CK(cudaGraphLaunch(exec, s->stream), "cudaGraphLaunch");
	return 0;
}

static int
cu_forward(
    void *state, const struct inf_step_item *items, int n_items, float *logits)
{
	struct cu_state *s = state;
	int n_out, rc;

	if ((rc = run_step(s, items, n_items, &n_out)) != 0)
		return rc;
	if (n_out > 0)
		CK(cudaMemcpyAsync(logits, s->logits,
		       (size_t)n_out * s->vocab * sizeof(float),
		       cudaMemcpyDeviceToHost, s->stream),
		    "cudaMemcpyAsync (logits)");
	CK(cudaStreamSynchronize(s->stream), "forward step");
	return 0;
}

static int
cu_forward_top(void *state, const struct inf_step_item *items, int n_items,
    float *top_l, int32_t *top_id)
{
	struct cu_state *s = state;
	size_t bytes;
	int n_out, rc;

	if ((rc = run_step(s, items, n_items, &n_out)) != 0)
		return rc;
	bytes = (size_t)n_out * CU_TOPK * 4;
	CK(cu__topk(s->stream, s->logits, n_out, s->vocab, s->top_l_dev,
	       s->top_id_dev),
	    "top-k");
	CK(cudaMemcpyAsync(s->top_l_host, s->top_l_dev, bytes,
	       cudaMemcpyDeviceToHost, s->stream),
	    "cudaMemcpyAsync (top)");
	CK(cudaMemcpyAsync(s->top_id_host, s->top_id_dev, bytes,
	       cudaMemcpyDeviceToHost, s->stream),
	    "cudaMemcpyAsync (top)");
	CK(cudaStreamSynchronize(s->stream), "forward step");
	memcpy(top_l, s->top_l_host, bytes);
	memcpy(top_id, s->top_id_host, bytes);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Sequences, load, unload                                            */
/* ---------------------------------------------------------------- */

static int
cu_kv_alloc(void *state, int capacity, void **out)
{
	struct cu_state *s = state;
	size_t bytes = (size_t)s->n_layers * capacity * s->kd * 2;
	struct cu_kv *kv;
	cudaError_t e;

	*out = NULL;
	if (s->poisoned)
		return INF_EBACKEND;
	if ((kv = calloc(1, sizeof(*kv))) == NULL)
		return -ENOMEM;
	kv->capacity = capacity;
	if ((e = cudaMalloc(&kv->k, bytes > 0 ? bytes : 16)) != cudaSuccess ||
	    (e = cudaMalloc(&kv->v, bytes > 0 ? bytes : 16)) != cudaSuccess) {
		cudaFree(kv->k);
		free(kv);
		return cu__fail(s, e, "cudaMalloc (KV cache)");
	}
	*out = kv;
	return 0;
}

static void
cu_kv_free(void *state, void *p)
{
	struct cu_kv *kv = p;

	(void)state;
	if (kv == NULL)
		return;
	cudaFree(kv->k);
	cudaFree(kv->v);
	free(kv);
}

static const char *
cu_last_error(void *state)
{
	const struct cu_state *s = state;

	return s->why;
}

static void
cu_unload(void *state)
{
	struct cu_state *s = state;

	if (s == NULL)
		return;
	if (s->stream != NULL)
		cudaStreamSynchronize(s->stream);
	free_tokens(s);
	free_out(s);
	cu__free_weights(s);
	if (s->blas != NULL)
		cublasDestroy(s->blas);
	if (s->stream != NULL)
		cudaStreamDestroy(s->stream);
	free(s);
}

/* BF16 on the device unless every matrix is stored as F16. */
static enum cu_wtype
weight_type(const struct inf_weights *w)
{
	int i;

	if (w->embed.dtype != INF_DT_F16 || w->lm_head.dtype != INF_DT_F16)
		return CU_BF16;
	for (i = 0; i < w->n_layers; i++) {
		const struct inf_layer *L = &w->layers[i];

		if (L->q.dtype != INF_DT_F16 || L->k.dtype != INF_DT_F16 ||
		    L->v.dtype != INF_DT_F16 || L->o.dtype != INF_DT_F16 ||
		    L->gate.dtype != INF_DT_F16 || L->up.dtype != INF_DT_F16 ||
		    L->down.dtype != INF_DT_F16)
			return CU_BF16;
	}
	return CU_F16;
}

static int
cu_load(const struct inf_model_info *info, const struct inf_weights *w,
    int threads, void **state, char *err, size_t errlen)
{
	struct cu_state *s;
	cublasStatus_t bst;
	cudaError_t e;
	char why[CU_WHY];
	int rc;

	(void)threads;
	*state = NULL;
	if (!inf_cuda_available(why, sizeof(why))) {
		snprintf(err, errlen, "cuda backend: %s", why);
		return INF_EBACKEND;
	}
	if ((rc = cu__check_shapes(info, err, errlen)) != 0)
		return rc;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "cuda backend: out of memory");
		return -ENOMEM;
	}
	s->info = info;
	s->wt = weight_type(w);
	s->sh.n_heads = info->n_heads;
	s->sh.n_kv_heads = info->n_kv_heads;
	s->sh.head_dim = info->head_dim;
	s->hidden = info->hidden_size;
	s->inter = info->intermediate_size;
	s->vocab = info->vocab_size;
	s->qd = info->n_heads * info->head_dim;
	s->kd = info->n_kv_heads * info->head_dim;
	s->qkv_rows = s->qd + 2 * s->kd;
	if ((e = cudaStreamCreateWithFlags(
	         &s->stream, cudaStreamNonBlocking)) != cudaSuccess) {
		rc = cu__fail(s, e, "cudaStreamCreate");
		goto fail;
	}
	if ((bst = cublasCreate(&s->blas)) != CUBLAS_STATUS_SUCCESS ||
	    (bst = cublasSetStream(s->blas, s->stream)) !=
	        CUBLAS_STATUS_SUCCESS) {
		rc = blas_fail(s, bst, "cublasCreate");
		goto fail;
	}
	if ((rc = cu__upload_weights(s, w, err, errlen)) != 0)
		goto fail;
	if ((rc = grow_tokens(s, CU_GRAPH_TOKENS)) != 0 ||
	    (rc = grow_out(s, CU_GRAPH_TOKENS)) != 0)
		goto fail;
	*state = s;
	return 0;
fail:
	if (s->why[0] != '\0')
		snprintf(err, errlen, "cuda backend: %s", s->why);
	cu_unload(s);
	return rc;
}

const struct inf_backend_ops inf_backend_cuda = {
	.name = "cuda",
	.load = cu_load,
	.unload = cu_unload,
	.kv_alloc = cu_kv_alloc,
	.kv_free = cu_kv_free,
	.forward = cu_forward,
	.forward_top = cu_forward_top,
	.last_error = cu_last_error,
};
