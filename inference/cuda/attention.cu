/*
 * inference/cuda/attention.cu: causal attention over each token's own
 * sequence cache, split along the context (flash-decoding): block (head,
 * token, split) scores its slice of keys with an online softmax in fp32
 * and writes (max, sum, weighted values); a second kernel combines the
 * splits. A token at position p sees keys 0..p of its sequence and never
 * another sequence's cache or a slot past p.
 */
#include <math.h>

#include "inference/cuda/cu_common.cuh"

#define ATT_THREADS 128
#define ATT_WARPS (ATT_THREADS / 32)

/*
 * HD / 8 lanes share one key (8 dims, one 16-byte load each of K and V),
 * so a warp takes 256 / HD keys at a time; each such lane group keeps its
 * own running max m, sum l and 8 accumulators. Every lane runs the same
 * number of iterations (the shuffles need the whole warp); a lane whose
 * key is past the slice only skips the update.
 */
template <int HD>
__global__ void
__launch_bounds__(ATT_THREADS) k_attn_split(const float *q, struct cu_shape sh,
    struct cu_tokens tk, int layer, int S, float *part)
{
	constexpr int LPK = HD / 8;        /* lanes per key */
	constexpr int KPW = 32 / LPK;      /* keys per warp step */
	constexpr int G = ATT_WARPS * KPW; /* lane groups per block */
	__shared__ float s_m[G], s_l[G], s_acc[G][HD];
	int h = blockIdx.x, t = blockIdx.y, s = blockIdx.z;
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	int sub = lane / LPK, part8 = (lane % LPK) * 8;
	int g = warp * KPW + sub;
	int nh = sh.n_heads, nkv = sh.n_kv_heads;
	int kvh = h / (nh / nkv);
	int ctx = tk.pos[t] + 1, chunk = (ctx + S - 1) / S;
	int j0 = s * chunk, j1 = min(ctx, j0 + chunk);
	size_t kvd = (size_t)nkv * HD;
	size_t base =
	    (size_t)layer * tk.kvcap[t] * kvd + (size_t)kvh * HD + part8;
	const __half *K = (const __half *)tk.kbase[t] + base;
	const __half *V = (const __half *)tk.vbase[t] + base;
	const float *qh = q + ((size_t)t * nh + h) * HD + part8;
	float scale = 1.0f / sqrtf((float)HD);
	float qv[8], acc[8], kv[8], m = -INFINITY, l = 0.0f;

#pragma unroll
	for (int d = 0; d < 8; d++) {
		qv[d] = qh[d];
		acc[d] = 0.0f;
	}
	for (int jb = j0 + warp * KPW; jb < j1; jb += ATT_WARPS * KPW) {
		int j = jb + sub;
		bool ok = j < j1;
		float dot = 0.0f;

		if (ok) {
			load8_kv(K + (size_t)j * kvd, kv);
#pragma unroll
			for (int d = 0; d < 8; d++)
				dot += qv[d] * kv[d];
		}
#pragma unroll
		for (int o = LPK / 2; o > 0; o >>= 1)
			dot += __shfl_xor_sync(FULL_MASK, dot, o);
		if (ok) {
			float sc = dot * scale;
			float mn = fmaxf(m, sc);
			float corr = expf(m - mn), p = expf(sc - mn);

			load8_kv(V + (size_t)j * kvd, kv);
			l = l * corr + p;
#pragma unroll
			for (int d = 0; d < 8; d++)
				acc[d] = acc[d] * corr + p * kv[d];
			m = mn;
		}
	}
#pragma unroll
	for (int d = 0; d < 8; d++)
		s_acc[g][part8 + d] = acc[d];
	if (lane % LPK == 0) {
		s_m[g] = m;
		s_l[g] = l;
	}
	__syncthreads();
	{
		float M = -INFINITY, L = 0.0f;
		size_t cell = ((size_t)t * nh + h) * S + s;
		float *out_ml = part + cell * 2;
		float *out_acc =
		    part + (size_t)gridDim.y * nh * S * 2 + cell * HD;

		for (int i = 0; i < G; i++)
			M = fmaxf(M, s_m[i]);
		if (M > -INFINITY)
			for (int i = 0; i < G; i++)
				L += s_l[i] * expf(s_m[i] - M);
		for (int d = threadIdx.x; d < HD; d += ATT_THREADS) {
			float a = 0.0f;

			if (M > -INFINITY)
				for (int i = 0; i < G; i++)
					a += s_acc[i][d] * expf(s_m[i] - M);
			out_acc[d] = a;
		}
		if (threadIdx.x == 0) {
			out_ml[0] = M;
			out_ml[1] = L;
		}
	}
}

/* out[t][h][d] = sum_s acc_s[d] e^(m_s - M) / sum_s l_s e^(m_s - M). Split
 * 0 always holds key 0, so M is finite and the sum positive. */
__global__ void
k_attn_combine(const float *part, int T, int nh, int S, int hd, float *out)
{
	int h = blockIdx.x, t = blockIdx.y;
	size_t cell0 = ((size_t)t * nh + h) * S;
	const float *ml = part + cell0 * 2;
	const float *acc = part + (size_t)T * nh * S * 2 + cell0 * hd;
	float M = -INFINITY, L = 0.0f;

	for (int s = 0; s < S; s++)
		M = fmaxf(M, ml[2 * s]);
	for (int s = 0; s < S; s++)
		if (ml[2 * s] > -INFINITY)
			L += ml[2 * s + 1] * expf(ml[2 * s] - M);
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float a = 0.0f;

		for (int s = 0; s < S; s++)
			if (ml[2 * s] > -INFINITY)
				a += acc[(size_t)s * hd + d] *
				    expf(ml[2 * s] - M);
		out[((size_t)t * nh + h) * hd + d] = a / L;
	}
}

extern "C" cudaError_t
cu__attention(cudaStream_t st, const float *q, int n_tokens, struct cu_shape sh,
    struct cu_tokens tk, int layer, int splits, float *part, float *out)
{
	dim3 grid(sh.n_heads, n_tokens, splits);
	dim3 cgrid(sh.n_heads, n_tokens);
	cudaError_t e;

	switch (sh.head_dim) {
	case 16:
		k_attn_split<16><<<grid, ATT_THREADS, 0, st>>>(
		    q, sh, tk, layer, splits, part);
		break;
	case 32:
		k_attn_split<32><<<grid, ATT_THREADS, 0, st>>>(
		    q, sh, tk, layer, splits, part);
		break;
	case 64:
		k_attn_split<64><<<grid, ATT_THREADS, 0, st>>>(
		    q, sh, tk, layer, splits, part);
		break;
	case 128:
		k_attn_split<128><<<grid, ATT_THREADS, 0, st>>>(
		    q, sh, tk, layer, splits, part);
		break;
	case 256:
		k_attn_split<256><<<grid, ATT_THREADS, 0, st>>>(
		    q, sh, tk, layer, splits, part);
		break;
	default:
		return cudaErrorInvalidValue;
	}
	if ((e = cudaGetLastError()) != cudaSuccess)
		return e;
	k_attn_combine<<<cgrid, 128, 0, st>>>(
	    part, n_tokens, sh.n_heads, splits, sh.head_dim, out);
	return cudaGetLastError();
}
