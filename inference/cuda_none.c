/*
 * inference/cuda_none.c: the CUDA backend of a build without nvcc (and of
 * the sanitizer build, which never links the CUDA runtime): the same
 * symbols, each saying that this build has no GPU support. It must never
 * pretend to load a model.
 *
 * inference/module.mk compiles it instead of inference/cuda/ when the
 * Makefile found no nvcc, and always into the sanitizer archive; callers
 * need no #ifdef: inf_cuda_available() tells them at run time, with the
 * reason, exactly as on a machine without a driver.
 */
#include <errno.h>
#include <stdio.h>

#include "inference/model_internal.h"

#define NO_CUDA \
	"this build has no CUDA backend (nvcc was not found at build time)"

/* Never available: callers (the tests, gpu-bench, a daemon choosing its
 * backend) print the reason and take the CPU path. */
int
inf_cuda_available(char *why, size_t n)
{
	snprintf(why, n, "%s", NO_CUDA);
	return 0;
}

/* No device to measure: INF_EBACKEND with the reason, *gbps 0. */
int
inf_cuda_bandwidth(
    size_t bytes, int iters, double *gbps, char *err, size_t errlen)
{
	(void)bytes;
	(void)iters;
	*gbps = 0;
	snprintf(err, errlen, "%s", NO_CUDA);
	return INF_EBACKEND;
}

/*
 * inf_model_open() with this backend fails here with the reason, so no
 * state is ever made and none of the functions below is reached through a
 * model; they exist so the table is complete and each still answers
 * INF_EBACKEND (or does nothing) if called directly.
 */
static int
none_load(const struct inf_model_info *info, const struct inf_weights *w,
    int threads, void **state, char *err, size_t errlen)
{
	(void)info;
	(void)w;
	(void)threads;
	*state = NULL;
	snprintf(err, errlen, "cuda backend: %s", NO_CUDA);
	return INF_EBACKEND;
}

static void
none_unload(void *state)
{
	(void)state;
}

static int
none_kv_alloc(void *state, int capacity, void **kv)
{
	(void)state;
	(void)capacity;
	*kv = NULL;
	return INF_EBACKEND;
}

static void
none_kv_free(void *state, void *kv)
{
	(void)state;
	(void)kv;
}

static int
none_forward(
    void *state, const struct inf_step_item *items, int n_items, float *out)
{
	(void)state;
	(void)items;
	(void)n_items;
	(void)out;
	return INF_EBACKEND;
}

const struct inf_backend_ops inf_backend_cuda = {
	.name = "cuda",
	.load = none_load,
	.unload = none_unload,
	.kv_alloc = none_kv_alloc,
	.kv_free = none_kv_free,
	.forward = none_forward,
};
