/*
 * inference/cuda/cu_common.cuh: device helpers the backend's kernels
 * share: 16-byte loads of eight 16-bit values converted to fp32, 16-bit
 * stores, warp and block sums. Header-only device code; it must never
 * hold state or launch anything.
 */
#ifndef SR_INFERENCE_CUDA_CU_COMMON_CUH
#define SR_INFERENCE_CUDA_CU_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "inference/cuda/cu_internal.h"

#define FULL_MASK 0xffffffffu

/* Eight consecutive 16-bit values (16-byte aligned) as fp32. The element
 * at the lower address is the low half of each 32-bit word. */
static __device__ __forceinline__ void
load8(const __nv_bfloat16 *p, float f[8])
{
	uint4 r = __ldg(reinterpret_cast<const uint4 *>(p));
	uint32_t u[4] = { r.x, r.y, r.z, r.w };

#pragma unroll
	for (int i = 0; i < 4; i++) {
		f[2 * i] = __uint_as_float(u[i] << 16);
		f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
	}
}

static __device__ __forceinline__ void
load8(const __half *p, float f[8])
{
	uint4 r = __ldg(reinterpret_cast<const uint4 *>(p));
	uint32_t u[4] = { r.x, r.y, r.z, r.w };

#pragma unroll
	for (int i = 0; i < 4; i++) {
		f[2 * i] = __half2float(
		    __ushort_as_half((unsigned short)(u[i] & 0xffffu)));
		f[2 * i + 1] = __half2float(
		    __ushort_as_half((unsigned short)(u[i] >> 16)));
	}
}

/* The same for the KV cache, written during the step: no __ldg (the
 * read-only path may not see this kernel's or this step's writes). */
static __device__ __forceinline__ void
load8_kv(const __half *p, float f[8])
{
	uint4 r = *reinterpret_cast<const uint4 *>(p);
	uint32_t u[4] = { r.x, r.y, r.z, r.w };

#pragma unroll
	for (int i = 0; i < 4; i++) {
		f[2 * i] = __half2float(
		    __ushort_as_half((unsigned short)(u[i] & 0xffffu)));
		f[2 * i + 1] = __half2float(
		    __ushort_as_half((unsigned short)(u[i] >> 16)));
	}
}

static __device__ __forceinline__ float
to_f32(__nv_bfloat16 v)
{
	return __bfloat162float(v);
}

static __device__ __forceinline__ float
to_f32(__half v)
{
	return __half2float(v);
}

static __device__ __forceinline__ void
store16(__nv_bfloat16 *p, float v)
{
	*p = __float2bfloat16_rn(v);
}

static __device__ __forceinline__ void
store16(__half *p, float v)
{
	*p = __float2half_rn(v);
}

static __device__ __forceinline__ float
warp_sum(float v)
{
#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

/* The sum over the block (blockDim.x a multiple of 32, at most 1024),
 * returned to every thread. Uses 33 doubles of shared memory. */
static __device__ __forceinline__ double
block_sum(double v)
{
	__shared__ double part[33];
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	int nw = blockDim.x >> 5;

#pragma unroll
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(FULL_MASK, v, o);
	if (lane == 0)
		part[warp] = v;
	__syncthreads();
	if (warp == 0) {
		v = lane < nw ? part[lane] : 0.0;
#pragma unroll
		for (int o = 16; o > 0; o >>= 1)
			v += __shfl_xor_sync(FULL_MASK, v, o);
		if (lane == 0)
			part[32] = v;
	}
	__syncthreads();
	return part[32];
}

static __device__ __forceinline__ float
silu_mul(float g, float u)
{
	return g / (1.0f + expf(-g)) * u; /* as the CPU backend */
}

#endif /* SR_INFERENCE_CUDA_CU_COMMON_CUH */
