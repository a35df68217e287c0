/*
 * inference/cuda/topk.cu: the CU_TOPK highest logits of each row, on the
 * device, so a decode step copies back 512 bytes per sequence instead of
 * the vocabulary's logits. One block per row: a radix select over
 * order-preserving 32-bit keys finds the CU_TOPK-th largest value, one
 * pass gathers what lies above it and the ties it needs (lowest ids
 * first, as the CPU sampler orders them), and a rank sort orders the
 * result. It must never return an id outside the row or drop a tie's
 * lower id for a higher one.
 */
#include <math.h>

#include "inference/cuda/cu_common.cuh"

#define TOPK_THREADS 256

/* NaN counts as -inf and -0 as +0, as the CPU sampler compares them. */
static __device__ __forceinline__ float
clean(float f)
{
	if (isnan(f))
		return -INFINITY;
	return f == 0.0f ? 0.0f : f;
}

/* Larger float, larger key. */
static __device__ __forceinline__ uint32_t
okey(float f)
{
	uint32_t u = __float_as_uint(clean(f));

	return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void
__launch_bounds__(TOPK_THREADS)
    k_topk(const float *logits, int V, float *top_l, int32_t *top_id)
{
	__shared__ unsigned hist[256];
	__shared__ uint32_t s_prefix;
	__shared__ int s_need, s_eq_total, s_n, s_eq_done;
	__shared__ int warp_cnt[TOPK_THREADS / 32];
	__shared__ float c_l[CU_TOPK];
	__shared__ int c_id[CU_TOPK];
	const float *row = logits + (size_t)blockIdx.x * V;
	int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
	int K = V < CU_TOPK ? V : CU_TOPK;
	uint32_t prefix = 0, mask = 0;
	int need = K, n_gt;

	/* 1. the K-th largest key, 8 bits at a time from the top */
	for (int shift = 24; shift >= 0; shift -= 8) {
		hist[tid] = 0; /* TOPK_THREADS == 256 bins */
		__syncthreads();
		for (int base = 0; base < V; base += TOPK_THREADS) {
			int i = base + tid;
			uint32_t k = i < V ? okey(row[i]) : 0;
			int digit = i < V && (k & mask) == prefix
			    ? (int)((k >> shift) & 255u)
			    : 256;
			unsigned same = __match_any_sync(FULL_MASK, digit);

			/* one atomic per distinct digit in the warp */
			if (digit < 256 && lane == __ffs(same) - 1)
				atomicAdd(&hist[digit], (unsigned)__popc(same));
		}
		__syncthreads();
		if (tid == 0) {
			int d, above = 0;

			for (d = 255; d > 0; d--) {
				if (above + (int)hist[d] >= need)
					break;
				above += (int)hist[d];
			}
			s_prefix = prefix | ((uint32_t)d << shift);
			s_need = need - above;
			s_eq_total = (int)hist[d];
		}
		__syncthreads();
		prefix = s_prefix;
		need = s_need;
		mask |= 255u << shift;
		__syncthreads();
	}
	/* prefix is the K-th key; `need` of the keys equal to it are kept,
	 * and all n_gt = K - need keys above it */
	n_gt = K - need;
	if (tid == 0) {
		s_n = 0;
		s_eq_done = 0;
	}
	__syncthreads();
	/* 2. gather: above the key in any order (sorted below); the ties
	 * too when all of them are kept */
	for (int i = tid; i < V; i += TOPK_THREADS) {
		uint32_t k = okey(row[i]);

		if (k > prefix || (k == prefix && s_eq_total == need)) {
			int slot = atomicAdd(&s_n, 1);

			if (slot < K) {
				c_l[slot] = clean(row[i]);
				c_id[slot] = i;
			}
		}
	}
	__syncthreads();
	/* 3. otherwise the first `need` ties in id order */
	if (s_eq_total != need) {
		for (int base = 0; base < V; base += TOPK_THREADS) {
			int i = base + tid, before;
			bool eq = i < V && okey(row[i]) == prefix;
			unsigned ballot = __ballot_sync(FULL_MASK, eq);

			if (lane == 0)
				warp_cnt[wid] = __popc(ballot);
			__syncthreads();
			before = s_eq_done;
			for (int w = 0; w < wid; w++)
				before += warp_cnt[w];
			before += __popc(ballot & ((1u << lane) - 1u));
			if (eq && before < need) {
				c_l[n_gt + before] = clean(row[i]);
				c_id[n_gt + before] = i;
			}
			__syncthreads();
			if (tid == 0)
				for (int w = 0; w < TOPK_THREADS / 32; w++)
					s_eq_done += warp_cnt[w];
			__syncthreads();
			if (s_eq_done >= need)
				break;
		}
	}
	__syncthreads();
	/* 4. rank sort: higher logit first, lower id on a tie */
	if (tid < CU_TOPK) {
		float *ol = top_l + (size_t)blockIdx.x * CU_TOPK;
		int32_t *oi = top_id + (size_t)blockIdx.x * CU_TOPK;

		if (tid < K) {
			float v = c_l[tid];
			int id = c_id[tid], rank = 0;

			for (int j = 0; j < K; j++)
				rank +=
				    c_l[j] > v || (c_l[j] == v && c_id[j] < id);
			ol[rank] = v;
			oi[rank] = id;
		} else {
			ol[tid] = -INFINITY;
			oi[tid] = -1;
		}
	}
}

extern "C" cudaError_t
cu__topk(cudaStream_t st, const float *logits, int n_rows, int vocab,
    float *top_l, int32_t *top_id)
{
	k_topk<<<n_rows, TOPK_THREADS, 0, st>>>(logits, vocab, top_l, top_id);
	return cudaGetLastError();
}
