/*
 * inference/cpu_kernels.c: the CPU backend's matrix kernels: stored
 * BF16/F16/F32 weights times fp32 activations with fp32 accumulation, for
 * a range of weight rows and every token of a step (so prefill is a
 * matrix-matrix product that reads each weight row once per step). An
 * AVX2+FMA path is chosen at run time; the portable path is the reference
 * and the fallback. Nothing here rounds activations to 16 bits.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "inference/model_internal.h"

int cpu__force_portable;

static inline float
bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline float
f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f;
	uint32_t mant = h & 0x3ff, u;
	float f;

	if (e == 0x1f) {
		u = sign | 0x7f800000u | (mant << 13);
	} else if (e != 0) {
		u = sign | ((e + 112) << 23) | (mant << 13);
	} else if (mant == 0) {
		u = sign;
	} else { /* subnormal: value is mant * 2^-24 */
		f = (float)mant * 0x1p-24f;
		return sign ? -f : f;
	}
	memcpy(&f, &u, sizeof(f));
	return f;
}

void
inf__to_f32(float *out, const void *in, enum inf_dtype dt, size_t n)
{
	const uint16_t *h = in;
	size_t i;

	switch (dt) {
	case INF_DT_F32:
		memcpy(out, in, n * sizeof(float));
		break;
	case INF_DT_BF16:
		for (i = 0; i < n; i++)
			out[i] = bf16_to_f32(h[i]);
		break;
	case INF_DT_F16:
		for (i = 0; i < n; i++)
			out[i] = f16_to_f32(h[i]);
		break;
	default:
		memset(out, 0, n * sizeof(float));
	}
}

static inline float
load_one(const void *row, enum inf_dtype dt, int k)
{
	switch (dt) {
	case INF_DT_BF16:
		return bf16_to_f32(((const uint16_t *)row)[k]);
	case INF_DT_F16:
		return f16_to_f32(((const uint16_t *)row)[k]);
	default:
		return ((const float *)row)[k];
	}
}

static const void *
row_ptr(const struct inf_matrix *w, int r)
{
	return (const char *)w->data +
	    (size_t)r * (size_t)w->cols * inf__dtype_size(w->dtype);
}

/* The reference: one row at a time, eight partial sums per dot. */
static void
matmul_portable(float *y, int ldy, const float *x, int nt,
    const struct inf_matrix *w, const float *bias, int r0, int r1)
{
	int n = w->cols, r, t, k, j;
	float wrow[256], acc[8];

	for (r = r0; r < r1; r++) {
		const void *row = row_ptr(w, r);

		for (t = 0; t < nt; t++) {
			const float *xt = x + (size_t)t * n;
			float sum = 0;

			memset(acc, 0, sizeof(acc));
			for (k = 0; k < n; k += 256) {
				int m = n - k < 256 ? n - k : 256;

				for (j = 0; j < m; j++)
					wrow[j] =
					    load_one(row, w->dtype, k + j);
				for (j = 0; j < m; j++)
					acc[j & 7] += wrow[j] * xt[k + j];
			}
			for (j = 0; j < 8; j++)
				sum += acc[j];
			y[(size_t)t * ldy + r] = sum + (bias ? bias[r] : 0);
		}
	}
}

#if defined(__x86_64__)
#define AVX2 __attribute__((target("avx2,fma,f16c")))

static inline AVX2 __m256
load8(const void *row, enum inf_dtype dt, int k)
{
	if (dt == INF_DT_BF16) {
		__m128i h = _mm_loadu_si128(
		    (const __m128i *)((const uint16_t *)row + k));
		return _mm256_castsi256_ps(
		    _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	}
	if (dt == INF_DT_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128(
		    (const __m128i *)((const uint16_t *)row + k)));
	return _mm256_loadu_ps((const float *)row + k);
}

static inline AVX2 float
hsum8(__m256 v)
{
	__m128 s =
	    _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/*
 * 4 weight rows x NT tokens (NT <= 3): 12 accumulators, the weights
 * converted in registers. Inlined with constant dt and nt so each
 * combination compiles to its own unrolled loop.
 */
static inline __attribute__((always_inline)) AVX2 void
kern(const void *const w[4], enum inf_dtype dt, const float *const x[3], int nt,
    int n, float out[4][3])
{
	__m256 acc[4][3], wv[4];
	int r, t, k, n8 = n & ~7;

	for (r = 0; r < 4; r++)
		for (t = 0; t < 3; t++)
			acc[r][t] = _mm256_setzero_ps();
	for (k = 0; k < n8; k += 8) {
		for (r = 0; r < 4; r++)
			wv[r] = load8(w[r], dt, k);
		for (t = 0; t < nt; t++) {
			__m256 xv = _mm256_loadu_ps(x[t] + k);

			for (r = 0; r < 4; r++)
				acc[r][t] =
				    _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
		}
	}
	for (r = 0; r < 4; r++)
		for (t = 0; t < nt; t++) {
			float s = hsum8(acc[r][t]);

			for (k = n8; k < n; k++)
				s += load_one(w[r], dt, k) * x[t][k];
			out[r][t] = s;
		}
}

#define KERN_CASE(DT) \
	switch (nt) { \
	case 1: \
		kern(w, DT, x, 1, n, out); \
		break; \
	case 2: \
		kern(w, DT, x, 2, n, out); \
		break; \
	default: \
		kern(w, DT, x, 3, n, out); \
	}

static AVX2 void
kern_dispatch(const void *const w[4], enum inf_dtype dt,
    const float *const x[3], int nt, int n, float out[4][3])
{
	switch (dt) {
	case INF_DT_BF16:
		KERN_CASE(INF_DT_BF16);
		break;
	case INF_DT_F16:
		KERN_CASE(INF_DT_F16);
		break;
	default:
		KERN_CASE(INF_DT_F32);
	}
}

static AVX2 void
matmul_avx2(float *y, int ldy, const float *x, int nt_all,
    const struct inf_matrix *w, const float *bias, int r0, int r1)
{
	int n = w->cols, r, t, i, j, nr, nt;
	const void *rows[4];
	const float *xs[3];
	float out[4][3];

	for (r = r0; r < r1; r += 4) {
		nr = r1 - r < 4 ? r1 - r : 4;
		/* a short block repeats its last row; the copies are dropped */
		for (i = 0; i < 4; i++)
			rows[i] = row_ptr(w, r + (i < nr ? i : nr - 1));
		for (t = 0; t < nt_all; t += 3) {
			nt = nt_all - t < 3 ? nt_all - t : 3;
			for (j = 0; j < 3; j++)
				xs[j] = x + (size_t)(t + (j < nt ? j : 0)) * n;
			kern_dispatch(rows, w->dtype, xs, nt, n, out);
			for (i = 0; i < nr; i++)
				for (j = 0; j < nt; j++)
					y[(size_t)(t + j) * ldy + r + i] =
					    out[i][j] +
					    (bias ? bias[r + i] : 0);
		}
	}
}

/* Asked from every pool thread at once: an atomic, so the first callers
 * racing to fill it in is harmless (they all store the same answer). */
static int
have_avx2(void)
{
	static atomic_int cached = -1;
	int v = atomic_load_explicit(&cached, memory_order_relaxed);

	if (v < 0) {
		__builtin_cpu_init();
		v = __builtin_cpu_supports("avx2") &&
		    __builtin_cpu_supports("fma") &&
		    __builtin_cpu_supports("f16c");
		atomic_store_explicit(&cached, v, memory_order_relaxed);
	}
	return v;
}
#endif

/*
 * Tokens are taken in chunks whose activations fit in L2 beside the
 * weight rows being read, so a long prefill streams the weights a few
 * times instead of thrashing the cache once per token.
 */
void
cpu__matmul_rows(float *y, int ldy, const float *x, int n_tokens,
    const struct inf_matrix *w, const float *bias, int r0, int r1)
{
	size_t row_bytes = (size_t)w->cols * sizeof(float);
	int chunk = (int)((256u << 10) / (row_bytes ? row_bytes : 1));
	int t, nt;

	if (chunk < 3)
		chunk = 3;
	chunk -= chunk % 3;
	for (t = 0; t < n_tokens; t += chunk) {
		nt = n_tokens - t < chunk ? n_tokens - t : chunk;
#if defined(__x86_64__)
		if (!cpu__force_portable && have_avx2()) {
			matmul_avx2(y + (size_t)t * ldy, ldy,
			    x + (size_t)t * w->cols, nt, w, bias, r0, r1);
			continue;
		}
#endif
		matmul_portable(y + (size_t)t * ldy, ldy,
		    x + (size_t)t * w->cols, nt, w, bias, r0, r1);
	}
}
