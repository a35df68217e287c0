/*
 * inference/cuda/kernels.cu: the CUDA backend's layer kernels: embedding
 * lookup, RMSNorm (fp32, the sum of squares in double as on the CPU),
 * warp-per-row GEMV over 16-bit weights with 16-byte loads and fp32
 * accumulation for up to CU_GEMV_TOKENS tokens per pass (the fused QKV +
 * bias + RoPE + KV-cache write, the fused gate/up + SiLU, the plain and
 * residual forms), and the small element-wise kernels of the cuBLAS
 * prefill path. Every kernel checks its bounds; none may read a weight row
 * or a cache slot outside what its arguments describe.
 */
#include <math.h>

#include "inference/cuda/cu_common.cuh"

#define GEMV_WARPS 8 /* rows per 256-thread block */

/* ---------------------------------------------------------------- */
/* Conversions and element-wise kernels                              */
/* ---------------------------------------------------------------- */

template <typename W>
__global__ void
k_convert(const void *src, int from, size_t n, W *dst)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (; i < n; i += stride) {
		float v;

		if (from == CU_SRC_F32)
			v = ((const float *)src)[i];
		else if (from == CU_SRC_F16)
			v = __half2float(((const __half *)src)[i]);
		else
			v = __bfloat162float(((const __nv_bfloat16 *)src)[i]);
		store16(&dst[i], v);
	}
}

static int
grid_for(size_t n, int threads)
{
	size_t b = (n + threads - 1) / threads;

	return b < 1 ? 1 : b > 65536 ? 65536 : (int)b;
}

extern "C" cudaError_t
cu__convert(cudaStream_t st, const void *src, enum cu_src from, size_t n,
    enum cu_wtype wt, void *dst)
{
	if (n == 0)
		return cudaSuccess;
	if (wt == CU_BF16)
		k_convert<<<grid_for(n, 256), 256, 0, st>>>(
		    src, from, n, (__nv_bfloat16 *)dst);
	else
		k_convert<<<grid_for(n, 256), 256, 0, st>>>(
		    src, from, n, (__half *)dst);
	return cudaGetLastError();
}

template <typename W>
__global__ void
k_embed(const W *embed, int H, struct cu_tokens tk, float *x)
{
	int t = blockIdx.x;
	const W *row = embed + (size_t)tk.tok[t] * H;

	for (int d = threadIdx.x; d < H; d += blockDim.x)
		x[(size_t)t * H + d] = to_f32(row[d]);
}

extern "C" cudaError_t
cu__embed(cudaStream_t st, enum cu_wtype wt, const void *embed, int hidden,
    struct cu_tokens tk, int n_tokens, float *x)
{
	if (wt == CU_BF16)
		k_embed<<<n_tokens, 256, 0, st>>>(
		    (const __nv_bfloat16 *)embed, hidden, tk, x);
	else
		k_embed<<<n_tokens, 256, 0, st>>>(
		    (const __half *)embed, hidden, tk, x);
	return cudaGetLastError();
}

template <typename W>
__global__ void
k_rmsnorm(const float *x, const int32_t *rows, const float *w, int H, float eps,
    float *out, W *out16)
{
	int i = blockIdx.x, src = rows != NULL ? rows[i] : i;
	const float *xr = x + (size_t)src * H;
	double ss = 0;
	float scale;

	for (int d = threadIdx.x; d < H; d += blockDim.x)
		ss += (double)xr[d] * xr[d];
	ss = block_sum(ss);
	scale = 1.0f / sqrtf((float)(ss / H) + eps);
	for (int d = threadIdx.x; d < H; d += blockDim.x) {
		float v = w[d] * (xr[d] * scale);

		if (out != NULL)
			out[(size_t)i * H + d] = v;
		if (out16 != NULL)
			store16(&out16[(size_t)i * H + d], v);
	}
}

extern "C" cudaError_t
cu__rmsnorm(cudaStream_t st, const float *x, const int32_t *rows,
    const float *w, int hidden, float eps, int n, float *out, enum cu_wtype wt,
    void *out16)
{
	if (wt == CU_BF16)
		k_rmsnorm<<<n, 256, 0, st>>>(
		    x, rows, w, hidden, eps, out, (__nv_bfloat16 *)out16);
	else
		k_rmsnorm<<<n, 256, 0, st>>>(
		    x, rows, w, hidden, eps, out, (__half *)out16);
	return cudaGetLastError();
}

template <typename W>
__global__ void
k_swiglu_act(const float *gu, int T, int I, W *h)
{
	size_t n = (size_t)T * I;
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (; i < n; i += stride) {
		size_t t = i / I, r = i % I;
		const float *row = gu + t * 2 * I;

		store16(&h[i], silu_mul(row[r], row[I + r]));
	}
}

extern "C" cudaError_t
cu__swiglu_act(cudaStream_t st, const float *gu, int n_tokens, int inter,
    enum cu_wtype wt, void *h16)
{
	size_t n = (size_t)n_tokens * inter;

	if (wt == CU_BF16)
		k_swiglu_act<<<grid_for(n, 256), 256, 0, st>>>(
		    gu, n_tokens, inter, (__nv_bfloat16 *)h16);
	else
		k_swiglu_act<<<grid_for(n, 256), 256, 0, st>>>(
		    gu, n_tokens, inter, (__half *)h16);
	return cudaGetLastError();
}

template <typename W>
__global__ void
k_to16(const float *x, size_t n, W *out)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (; i < n; i += stride)
		store16(&out[i], x[i]);
}

extern "C" cudaError_t
cu__to16(cudaStream_t st, const float *x, size_t n, enum cu_wtype wt, void *out)
{
	if (n == 0)
		return cudaSuccess;
	if (wt == CU_BF16)
		k_to16<<<grid_for(n, 256), 256, 0, st>>>(
		    x, n, (__nv_bfloat16 *)out);
	else
		k_to16<<<grid_for(n, 256), 256, 0, st>>>(x, n, (__half *)out);
	return cudaGetLastError();
}

__global__ void
k_add_bias(float *x, const float *b, int T, int n)
{
	size_t total = (size_t)T * n;
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (; i < total; i += stride)
		x[i] += b[i % n];
}

extern "C" cudaError_t
cu__add_bias(cudaStream_t st, float *x, const float *b, int n_tokens, int n)
{
	k_add_bias<<<grid_for((size_t)n_tokens * n, 256), 256, 0, st>>>(
	    x, b, n_tokens, n);
	return cudaGetLastError();
}

/* ---------------------------------------------------------------- */
/* GEMV: one warp per output row (or row pair), all tokens of a step  */
/* ---------------------------------------------------------------- */

/*
 * acc[r][t] = dot(rows[r], x[t0 + t]) for t < nt, every lane getting the
 * sums. Lane l reads elements [8l + 256i, 8l + 256i + 8): 16 bytes of
 * each weight row and 32 bytes of each token's activations. cols must be
 * a multiple of 8 and x rows 16-byte aligned (the backend checks both).
 */
template <typename W, int NR>
static __device__ __forceinline__ void
warp_dots(const W *const *rows, int cols, const float *x, int t0, int nt,
    float acc[NR][CU_GEMV_TOKENS])
{
	int lane = threadIdx.x & 31;

#pragma unroll
	for (int r = 0; r < NR; r++)
#pragma unroll
		for (int t = 0; t < CU_GEMV_TOKENS; t++)
			acc[r][t] = 0.0f;
#pragma unroll 2
	for (int k = lane * 8; k < cols; k += 256) {
		float wv[NR][8];

#pragma unroll
		for (int r = 0; r < NR; r++)
			load8(rows[r] + k, wv[r]);
#pragma unroll
		for (int t = 0; t < CU_GEMV_TOKENS; t++) {
			if (t < nt) {
				const float4 *xp =
				    reinterpret_cast<const float4 *>(
				        x + (size_t)(t0 + t) * cols + k);
				float4 a = xp[0], b = xp[1];

#pragma unroll
				for (int r = 0; r < NR; r++)
					acc[r][t] += wv[r][0] * a.x +
					    wv[r][1] * a.y + wv[r][2] * a.z +
					    wv[r][3] * a.w + wv[r][4] * b.x +
					    wv[r][5] * b.y + wv[r][6] * b.z +
					    wv[r][7] * b.w;
			}
		}
	}
#pragma unroll
	for (int r = 0; r < NR; r++)
#pragma unroll
		for (int t = 0; t < CU_GEMV_TOKENS; t++)
			acc[r][t] = warp_sum(acc[r][t]);
}

template <typename W, bool ACC>
__global__ void __launch_bounds__(256) k_gemv(const W *w, int rows, int cols,
    const float *x, int T, const float *bias, float *y, int ldy)
{
	int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
	int lane = threadIdx.x & 31;
	const W *rp[1];
	float acc[1][CU_GEMV_TOKENS], b;

	if (row >= rows) /* whole warps leave together */
		return;
	rp[0] = w + (size_t)row * cols;
	b = bias != NULL ? bias[row] : 0.0f;
	for (int t0 = 0; t0 < T; t0 += CU_GEMV_TOKENS) {
		int nt = min(CU_GEMV_TOKENS, T - t0);

		warp_dots<W, 1>(rp, cols, x, t0, nt, acc);
#pragma unroll
		for (int t = 0; t < CU_GEMV_TOKENS; t++)
			if (t < nt && lane == t) {
				float *o = y + (size_t)(t0 + t) * ldy + row;
				float v = acc[0][t] + b;

				*o = ACC ? *o + v : v;
			}
	}
}

static int
gemv_blocks(int units)
{
	return (units + GEMV_WARPS - 1) / GEMV_WARPS;
}

extern "C" cudaError_t
cu__gemv(cudaStream_t st, enum cu_wtype wt, const void *w, int rows, int cols,
    const float *x, int n_tokens, const float *bias, float *y, int ldy,
    int accumulate)
{
	int g = gemv_blocks(rows);

	if (wt == CU_BF16 && accumulate)
		k_gemv<__nv_bfloat16, true>
		    <<<g, 256, 0, st>>>((const __nv_bfloat16 *)w, rows, cols, x,
		        n_tokens, bias, y, ldy);
	else if (wt == CU_BF16)
		k_gemv<__nv_bfloat16, false>
		    <<<g, 256, 0, st>>>((const __nv_bfloat16 *)w, rows, cols, x,
		        n_tokens, bias, y, ldy);
	else if (accumulate)
		k_gemv<__half, true><<<g, 256, 0, st>>>(
		    (const __half *)w, rows, cols, x, n_tokens, bias, y, ldy);
	else
		k_gemv<__half, false><<<g, 256, 0, st>>>(
		    (const __half *)w, rows, cols, x, n_tokens, bias, y, ldy);
	return cudaGetLastError();
}

template <typename W>
__global__ void __launch_bounds__(256)
    k_gemv_swiglu(const W *wgu, int I, int H, const float *x, int T, float *h)
{
	int row = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
	int lane = threadIdx.x & 31;
	const W *rp[2];
	float acc[2][CU_GEMV_TOKENS];

	if (row >= I)
		return;
	rp[0] = wgu + (size_t)row * H;
	rp[1] = wgu + ((size_t)I + row) * H;
	for (int t0 = 0; t0 < T; t0 += CU_GEMV_TOKENS) {
		int nt = min(CU_GEMV_TOKENS, T - t0);

		warp_dots<W, 2>(rp, H, x, t0, nt, acc);
#pragma unroll
		for (int t = 0; t < CU_GEMV_TOKENS; t++)
			if (t < nt && lane == t)
				h[(size_t)(t0 + t) * I + row] =
				    silu_mul(acc[0][t], acc[1][t]);
	}
}

extern "C" cudaError_t
cu__gemv_swiglu(cudaStream_t st, enum cu_wtype wt, const void *wgu, int inter,
    int hidden, const float *x, int n_tokens, float *h)
{
	int g = gemv_blocks(inter);

	if (wt == CU_BF16)
		k_gemv_swiglu<<<g, 256, 0, st>>>(
		    (const __nv_bfloat16 *)wgu, inter, hidden, x, n_tokens, h);
	else
		k_gemv_swiglu<<<g, 256, 0, st>>>(
		    (const __half *)wgu, inter, hidden, x, n_tokens, h);
	return cudaGetLastError();
}

/* ---------------------------------------------------------------- */
/* QKV: bias, RoPE (half-split, as HF), the cache write               */
/* ---------------------------------------------------------------- */

/*
 * Rows i and i + half of head `head` of the fused q|k|v output for token
 * t, bias already added: q and k heads are rotated by the token's angle
 * (fp32, cosf/sinf as the CPU computes them), q goes to q_out, k and v to
 * the token's cache at (layer, pos).
 */
static __device__ __forceinline__ void
qkv_store(float a, float b, int t, int head, int i, struct cu_shape sh,
    const float *inv_freq, struct cu_tokens tk, int layer, float *q_out)
{
	int hd = sh.head_dim, half = hd / 2, nh = sh.n_heads;
	int nkv = sh.n_kv_heads, p = tk.pos[t];
	size_t kvd = (size_t)nkv * hd, off;
	__half *dst;

	if (head < nh + nkv) {
		float ang = (float)p * inv_freq[i];
		float c = cosf(ang), s = sinf(ang);
		float ra = a * c - b * s, rb = b * c + a * s;

		a = ra;
		b = rb;
	}
	if (head < nh) {
		float *o = q_out + (size_t)t * nh * hd + (size_t)head * hd;

		o[i] = a;
		o[i + half] = b;
		return;
	}
	off = ((size_t)layer * tk.kvcap[t] + p) * kvd;
	if (head < nh + nkv)
		dst = (__half *)tk.kbase[t] + off + (size_t)(head - nh) * hd;
	else
		dst = (__half *)tk.vbase[t] + off +
		    (size_t)(head - nh - nkv) * hd;
	dst[i] = __float2half_rn(a);
	dst[i + half] = __float2half_rn(b);
}

template <typename W>
__global__ void __launch_bounds__(256) k_qkv_rope(const W *wqkv,
    const float *bias, const float *xn, int H, int T, struct cu_shape sh,
    const float *inv_freq, struct cu_tokens tk, int layer, float *q_out)
{
	int half = sh.head_dim / 2;
	int units = (sh.n_heads + 2 * sh.n_kv_heads) * half;
	int u = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
	int lane = threadIdx.x & 31, head, i, r0, r1;
	const W *rp[2];
	float acc[2][CU_GEMV_TOKENS];

	if (u >= units)
		return;
	head = u / half;
	i = u % half;
	r0 = head * sh.head_dim + i;
	r1 = r0 + half;
	rp[0] = wqkv + (size_t)r0 * H;
	rp[1] = wqkv + (size_t)r1 * H;
	for (int t0 = 0; t0 < T; t0 += CU_GEMV_TOKENS) {
		int nt = min(CU_GEMV_TOKENS, T - t0);

		warp_dots<W, 2>(rp, H, xn, t0, nt, acc);
#pragma unroll
		for (int t = 0; t < CU_GEMV_TOKENS; t++)
			if (t < nt && lane == t)
				qkv_store(acc[0][t] + (bias ? bias[r0] : 0.f),
				    acc[1][t] + (bias ? bias[r1] : 0.f), t0 + t,
				    head, i, sh, inv_freq, tk, layer, q_out);
	}
}

extern "C" cudaError_t
cu__qkv_rope(cudaStream_t st, enum cu_wtype wt, const void *wqkv,
    const float *bias, const float *xn, int hidden, int n_tokens,
    struct cu_shape sh, const float *inv_freq, struct cu_tokens tk, int layer,
    float *q_out)
{
	int units = (sh.n_heads + 2 * sh.n_kv_heads) * (sh.head_dim / 2);
	int g = gemv_blocks(units);

	if (wt == CU_BF16)
		k_qkv_rope<<<g, 256, 0, st>>>((const __nv_bfloat16 *)wqkv, bias,
		    xn, hidden, n_tokens, sh, inv_freq, tk, layer, q_out);
	else
		k_qkv_rope<<<g, 256, 0, st>>>((const __half *)wqkv, bias, xn,
		    hidden, n_tokens, sh, inv_freq, tk, layer, q_out);
	return cudaGetLastError();
}

__global__ void
k_rope_store(const float *qkv, const float *bias, int T, struct cu_shape sh,
    const float *inv_freq, struct cu_tokens tk, int layer, float *q_out)
{
	int half = sh.head_dim / 2;
	int units = (sh.n_heads + 2 * sh.n_kv_heads) * half;
	int ld = (sh.n_heads + 2 * sh.n_kv_heads) * sh.head_dim;
	size_t n = (size_t)T * units;
	size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;

	for (; j < n; j += stride) {
		int t = (int)(j / units), u = (int)(j % units);
		int head = u / half, i = u % half;
		int r0 = head * sh.head_dim + i, r1 = r0 + half;
		const float *row = qkv + (size_t)t * ld;

		qkv_store(row[r0] + (bias ? bias[r0] : 0.f),
		    row[r1] + (bias ? bias[r1] : 0.f), t, head, i, sh, inv_freq,
		    tk, layer, q_out);
	}
}

extern "C" cudaError_t
cu__rope_store(cudaStream_t st, const float *qkv, const float *bias,
    int n_tokens, struct cu_shape sh, const float *inv_freq,
    struct cu_tokens tk, int layer, float *q_out)
{
	size_t n = (size_t)n_tokens * (sh.n_heads + 2 * sh.n_kv_heads) *
	    (sh.head_dim / 2);

	k_rope_store<<<grid_for(n, 256), 256, 0, st>>>(
	    qkv, bias, n_tokens, sh, inv_freq, tk, layer, q_out);
	return cudaGetLastError();
}

/* ---------------------------------------------------------------- */
/* Streaming read (the benchmark's bandwidth anchor)                  */
/* ---------------------------------------------------------------- */

__global__ void __launch_bounds__(512)
    k_stream_read(const uint4 *p, size_t n, float *sink)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t stride = (size_t)gridDim.x * blockDim.x;
	uint32_t acc = 0;

	for (; i < n; i += stride) {
		uint4 v = __ldcs(p + i);

		acc ^= v.x ^ v.y ^ v.z ^ v.w;
	}
	if (acc == 0x9e3779b9u) /* practically never; keeps the loads */
		*sink = (float)acc;
}

extern "C" cudaError_t
cu__stream_read(
    cudaStream_t st, const void *buf, size_t n16, float *sink, int blocks)
{
	k_stream_read<<<blocks, 512, 0, st>>>((const uint4 *)buf, n16, sink);
	return cudaGetLastError();
}
