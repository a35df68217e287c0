/*
 * inference/cuda/upload.c: the CUDA backend's device checks and weight
 * upload: whether a usable GPU is there, whether the model's shapes suit
 * the kernels, and the one-time copy of every weight to the device in one
 * 16-bit type (BF16, or F16 when every matrix is F16; F32 is converted on
 * the device), with q|k|v and gate|up fused row-wise. It must never leave
 * device memory behind on a failed load, or accept a shape a kernel would
 * read out of bounds on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/cuda/cu_internal.h"

#define STAGING_BYTES (64u << 20)

int
cu__fail(struct cu_state *s, cudaError_t e, const char *what)
{
	int sticky = e != cudaErrorMemoryAllocation &&
	    e != cudaErrorInvalidValue && e != cudaErrorNotReady &&
	    e != cudaErrorInvalidConfiguration;

	/* after an illegal address or a launch failure the context is gone:
	 * every later call fails the same way */
	if (sticky && !s->capturing && cudaDeviceSynchronize() != cudaSuccess)
		s->poisoned = 1;
	snprintf(s->why, sizeof(s->why), "cuda: %s: %s%s", what,
	    cudaGetErrorString(e),
	    s->poisoned ? " (device context lost; restart the process)" : "");
	(void)cudaGetLastError(); /* clear a non-sticky error */
	return e == cudaErrorMemoryAllocation ? -ENOMEM : INF_EBACKEND;
}

int
inf_cuda_available(char *why, size_t n)
{
	struct cudaDeviceProp prop;
	cudaError_t e;
	int count = 0, dev = 0;

	e = cudaGetDeviceCount(&count);
	if (e != cudaSuccess) {
		snprintf(why, n, "no usable CUDA driver or device: %s",
		    cudaGetErrorString(e));
		return 0;
	}
	if (count < 1) {
		snprintf(why, n, "no CUDA device");
		return 0;
	}
	if ((e = cudaGetDevice(&dev)) != cudaSuccess ||
	    (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess) {
		snprintf(why, n, "cannot query the CUDA device: %s",
		    cudaGetErrorString(e));
		return 0;
	}
	if (prop.major < 9) {
		snprintf(why, n,
		    "%s has compute capability %d.%d; this build needs 9.0 "
		    "or newer",
		    prop.name, prop.major, prop.minor);
		return 0;
	}
	snprintf(why, n, "%s (compute capability %d.%d, %d SMs, %.1f GiB)",
	    prop.name, prop.major, prop.minor, prop.multiProcessorCount,
	    (double)prop.totalGlobalMem / (1u << 30));
	return 1;
}

int
inf_cuda_bandwidth(
    size_t bytes, int iters, double *gbps, char *err, size_t errlen)
{
	cudaStream_t st = NULL;
	cudaEvent_t a = NULL, b = NULL;
	void *buf = NULL;
	float *sink = NULL, ms, best = 0;
	struct cudaDeviceProp prop;
	cudaError_t e;
	int i, dev = 0, rc = 0;

	*gbps = 0;
	if (!inf_cuda_available(err, errlen))
		return INF_EBACKEND;
	bytes &= ~(size_t)15;
	if ((e = cudaGetDevice(&dev)) != cudaSuccess ||
	    (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess ||
	    (e = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking)) !=
	        cudaSuccess ||
	    (e = cudaEventCreate(&a)) != cudaSuccess ||
	    (e = cudaEventCreate(&b)) != cudaSuccess ||
	    (e = cudaMalloc(&buf, bytes)) != cudaSuccess ||
	    (e = cudaMalloc((void **)&sink, sizeof(float))) != cudaSuccess ||
	    (e = cudaMemsetAsync(buf, 1, bytes, st)) != cudaSuccess)
		goto fail;
	for (i = 0; i < iters + 1; i++) {
		/* 4 blocks of 512 threads per SM: reference/inference.md 0 */
		if ((e = cudaEventRecord(a, st)) != cudaSuccess ||
		    (e = cu__stream_read(st, buf, bytes / 16, sink,
		         prop.multiProcessorCount * 4)) != cudaSuccess ||
		    (e = cudaEventRecord(b, st)) != cudaSuccess ||
		    (e = cudaEventSynchronize(b)) != cudaSuccess ||
		    (e = cudaEventElapsedTime(&ms, a, b)) != cudaSuccess)
			goto fail;
		if (i > 0 && (best == 0 || ms < best)) /* the first warms */
			best = ms;
	}
	*gbps = best > 0 ? (double)bytes / (best * 1e-3) / 1e9 : 0;
	goto out;
fail:
	snprintf(
	    err, errlen, "cuda: bandwidth probe: %s", cudaGetErrorString(e));
	rc = e == cudaErrorMemoryAllocation ? -ENOMEM : INF_EBACKEND;
out:
	cudaFree(buf);
	cudaFree(sink);
	if (a != NULL)
		cudaEventDestroy(a);
	if (b != NULL)
		cudaEventDestroy(b);
	if (st != NULL)
		cudaStreamDestroy(st);
	return rc;
}

int
cu__check_shapes(const struct inf_model_info *in, char *err, size_t errlen)
{
	int hd = in->head_dim;

	if (hd != 16 && hd != 32 && hd != 64 && hd != 128 && hd != 256) {
		snprintf(err, errlen,
		    "cuda backend: head_dim %d is not supported (16, 32, 64, "
		    "128 or 256)",
		    hd);
		return INF_EUNSUPPORTED;
	}
	/* 16-byte loads: every row length a multiple of 8 elements */
	if (in->hidden_size % 8 != 0 || in->intermediate_size % 8 != 0) {
		snprintf(err, errlen,
		    "cuda backend: hidden_size %d and intermediate_size %d "
		    "must be multiples of 8",
		    in->hidden_size, in->intermediate_size);
		return INF_EUNSUPPORTED;
	}
	if (in->n_kv_heads < 1 || in->n_heads % in->n_kv_heads != 0) {
		snprintf(err, errlen,
		    "cuda backend: %d heads do not share %d KV heads evenly",
		    in->n_heads, in->n_kv_heads);
		return INF_EUNSUPPORTED;
	}
	return 0;
}

static enum cu_src
src_of(enum inf_dtype dt)
{
	return dt == INF_DT_F32 ? CU_SRC_F32
	    : dt == INF_DT_F16  ? CU_SRC_F16
	                        : CU_SRC_BF16;
}

/* Copy @p m into @p dst (rows * cols elements of the weight type). */
static int
upload_matrix(struct cu_state *s, void *dst, const struct inf_matrix *m,
    void *staging, const char *what)
{
	size_t n = (size_t)m->rows * m->cols, esz = inf__dtype_size(m->dtype);
	size_t per = STAGING_BYTES / esz, off, k;
	int same = (m->dtype == INF_DT_BF16 && s->wt == CU_BF16) ||
	    (m->dtype == INF_DT_F16 && s->wt == CU_F16);
	cudaError_t e;

	if (same) {
		e = cudaMemcpy(dst, m->data, n * 2, cudaMemcpyHostToDevice);
		return e == cudaSuccess ? 0 : cu__fail(s, e, what);
	}
	for (off = 0; off < n; off += k) {
		k = n - off < per ? n - off : per;
		if ((e = cudaMemcpyAsync(staging,
		         (const char *)m->data + off * esz, k * esz,
		         cudaMemcpyHostToDevice, s->stream)) != cudaSuccess ||
		    (e = cu__convert(s->stream, staging, src_of(m->dtype), k,
		         s->wt, (char *)dst + off * 2)) != cudaSuccess ||
		    (e = cudaStreamSynchronize(s->stream)) != cudaSuccess)
			return cu__fail(s, e, what);
	}
	return 0;
}

/* A device copy of @p n floats (NULL stays NULL). */
static int
upload_vec(struct cu_state *s, float **dst, const float *src, size_t n,
    size_t at, size_t total)
{
	cudaError_t e;

	if (src == NULL)
		return 0;
	if (*dst == NULL &&
	    (e = cudaMalloc((void **)dst, total * sizeof(float))) !=
	        cudaSuccess)
		return cu__fail(s, e, "cudaMalloc (vector)");
	e = cudaMemcpy(
	    *dst + at, src, n * sizeof(float), cudaMemcpyHostToDevice);
	return e == cudaSuccess ? 0 : cu__fail(s, e, "cudaMemcpy (vector)");
}

static int
alloc16(struct cu_state *s, void **p, size_t elems)
{
	cudaError_t e = cudaMalloc(p, elems * 2);

	return e == cudaSuccess ? 0 : cu__fail(s, e, "cudaMalloc (weights)");
}

static int
upload_layer(struct cu_state *s, const struct inf_layer *L, struct cu_layer *D,
    void *stg)
{
	size_t H = (size_t)s->hidden, I = (size_t)s->inter;
	size_t qd = (size_t)s->qd, kd = (size_t)s->kd;
	size_t rows = (size_t)s->qkv_rows;
	int rc;

	if ((rc = alloc16(s, &D->wqkv, rows * H)) ||
	    (rc = alloc16(s, &D->wo, H * qd)) ||
	    (rc = alloc16(s, &D->wgu, 2 * I * H)) ||
	    (rc = alloc16(s, &D->wdown, H * I)) ||
	    (rc = upload_matrix(s, D->wqkv, &L->q, stg, "upload q_proj")) ||
	    (rc = upload_matrix(s, (char *)D->wqkv + qd * H * 2, &L->k, stg,
	         "upload k_proj")) ||
	    (rc = upload_matrix(s, (char *)D->wqkv + (qd + kd) * H * 2, &L->v,
	         stg, "upload v_proj")) ||
	    (rc = upload_matrix(s, D->wo, &L->o, stg, "upload o_proj")) ||
	    (rc = upload_matrix(s, D->wgu, &L->gate, stg, "upload gate")) ||
	    (rc = upload_matrix(s, (char *)D->wgu + I * H * 2, &L->up, stg,
	         "upload up_proj")) ||
	    (rc = upload_matrix(s, D->wdown, &L->down, stg, "upload down")) ||
	    (rc = upload_vec(s, &D->attn_norm, L->attn_norm, H, 0, H)) ||
	    (rc = upload_vec(s, &D->mlp_norm, L->mlp_norm, H, 0, H)) ||
	    (rc = upload_vec(s, &D->bqkv, L->q_bias, qd, 0, rows)) ||
	    (rc = upload_vec(s, &D->bqkv, L->k_bias, kd, qd, rows)) ||
	    (rc = upload_vec(s, &D->bqkv, L->v_bias, kd, qd + kd, rows)) ||
	    (rc = upload_vec(s, &D->bo, L->o_bias, H, 0, H)))
		return rc;
	return 0;
}

int
cu__upload_weights(
    struct cu_state *s, const struct inf_weights *w, char *err, size_t errlen)
{
	const struct inf_model_info *in = s->info;
	size_t VH = (size_t)s->vocab * s->hidden;
	float *freqs = NULL;
	void *stg = NULL;
	cudaError_t e;
	int rc, i;

	s->layers = calloc((size_t)in->n_layers, sizeof(s->layers[0]));
	freqs = malloc((size_t)in->head_dim / 2 * sizeof(float));
	if (s->layers == NULL || freqs == NULL) {
		rc = -ENOMEM;
		snprintf(s->why, sizeof(s->why), "out of host memory");
		goto out;
	}
	s->n_layers = in->n_layers;
	if ((e = cudaMalloc(&stg, STAGING_BYTES)) != cudaSuccess) {
		rc = cu__fail(s, e, "cudaMalloc (staging)");
		goto out;
	}
	if ((rc = alloc16(s, &s->embed, VH)) != 0 ||
	    (rc = upload_matrix(s, s->embed, &w->embed, stg, "upload embed")))
		goto out;
	if (w->lm_head.data == w->embed.data) {
		s->lm_head = s->embed;
	} else if ((rc = alloc16(s, &s->lm_head, VH)) != 0 ||
	    (rc = upload_matrix(
	         s, s->lm_head, &w->lm_head, stg, "upload lm_head")) != 0)
		goto out;
	for (i = 0; i < in->n_layers; i++)
		if ((rc = upload_layer(s, &w->layers[i], &s->layers[i], stg)))
			goto out;
	inf__rope_freqs(in, freqs);
	if ((rc = upload_vec(s, &s->final_norm, w->final_norm,
	         (size_t)s->hidden, 0, (size_t)s->hidden)) != 0 ||
	    (rc = upload_vec(s, &s->inv_freq, freqs, (size_t)in->head_dim / 2,
	         0, (size_t)in->head_dim / 2)) != 0)
		goto out;
out:
	if (rc != 0)
		snprintf(err, errlen, "%s", s->why);
	cudaFree(stg);
	free(freqs);
	return rc;
}

void
cu__free_weights(struct cu_state *s)
{
	int i;

	for (i = 0; s->layers != NULL && i < s->n_layers; i++) {
		struct cu_layer *D = &s->layers[i];

		cudaFree(D->wqkv);
		cudaFree(D->wo);
		cudaFree(D->wgu);
		cudaFree(D->wdown);
		cudaFree(D->bqkv);
		cudaFree(D->bo);
		cudaFree(D->attn_norm);
		cudaFree(D->mlp_norm);
	}
	free(s->layers);
	s->layers = NULL;
	if (s->lm_head != s->embed)
		cudaFree(s->lm_head);
	cudaFree(s->embed);
	cudaFree(s->final_norm);
	cudaFree(s->inv_freq);
	s->embed = s->lm_head = NULL;
	s->final_norm = s->inv_freq = NULL;
}
