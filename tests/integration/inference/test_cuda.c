/*
 * tests/integration/inference/test_cuda.c: the CUDA backend against the
 * CPU backend, on tiny-qwen2, tiny-llama and a random model at the
 * DeepSeek-R1-Distill-Qwen-1.5B shape (sr-mkmodel, into SR_TEST_TMP):
 * logits of a prompt (GEMV + graph path) and of a 100-token prompt (the
 * cuBLAS path) and of 64 teacher-forced decode steps within the stated
 * bf16 tolerance, top-5 ids equal at every position, greedy generation
 * (device top-k) equal for 64 tokens, three sequences decoded in one batch
 * equal to each alone, and top_k=1 sampling equal to greedy.
 *
 * Two outputs may differ only where the CPU's own logits are within the
 * tolerance of each other (a near tie, where 16-bit rounding decides);
 * such places are printed. Without a GPU (or in a build without nvcc)
 * every test is reported SKIPPED with the reason, never as passed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inference/model_internal.h"

#define N_GEN 64
#define MAX_V 160000
/*
 * Tolerance on |gpu - cpu| per logit, relative to max(1, max |cpu|): the
 * decode path keeps activations in fp32 (weights are the same BF16 on
 * both sides; the KV cache is fp16); the prefill path rounds activations
 * to bf16 before each GEMM (8 bits of mantissa).
 */
#define TOL_DECODE 2e-2
#define TOL_PREFILL 6e-2

static char why[512];
static int have_gpu;
static char big_dir[4096];

struct pair {
	struct inf_model *cpu, *gpu;
	int vocab;
};

static void
open_pair(const char *dir, struct pair *p)
{
	struct inf_open_opts gpu_opts = { &inf_backend_cuda, 0 };
	char err[INF_ERR_MAX];
	int rc;

	rc = inf_model_open(dir, NULL, &p->cpu, err);
	if (rc != 0)
		fail_msg("cpu open %s: %s", dir, err);
	rc = inf_model_open(dir, &gpu_opts, &p->gpu, err);
	if (rc != 0)
		fail_msg("cuda open %s: %s", dir, err);
	assert_string_equal(inf_model_info(p->gpu)->backend, "cuda");
	p->vocab = inf_model_info(p->cpu)->vocab_size;
}

static void
close_pair(struct pair *p)
{
	inf_model_close(p->cpu);
	inf_model_close(p->gpu);
}

static int
argmax(const float *x, int n)
{
	int i, b = 0;

	for (i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

static void
top5(const float *x, int n, int out[5])
{
	int r, i, j;

	for (r = 0; r < 5; r++) {
		int b = -1;

		for (i = 0; i < n; i++) {
			for (j = 0; j < r && out[j] != i; j++)
				;
			if (j == r && (b < 0 || x[i] > x[b]))
				b = i;
		}
		out[r] = b;
	}
}

/* One row: the logits within tol, the top-5 ids equal but for near
 * ties. Returns the CPU's gap between its first and second logit. */
static double
compare_row(const float *c, const float *g, int V, double tol, const char *at)
{
	double mx = 1, diff = 0;
	int tc[5], tg[5], i;

	for (i = 0; i < V; i++) {
		if (fabs(c[i]) > mx)
			mx = fabs(c[i]);
		if (fabs((double)c[i] - g[i]) > diff)
			diff = fabs((double)c[i] - g[i]);
	}
	if (!(diff <= tol * mx))
		fail_msg("%s: max |gpu - cpu| %g above %g", at, diff, tol * mx);
	top5(c, V, tc);
	top5(g, V, tg);
	for (i = 0; i < 5; i++)
		if (tc[i] != tg[i]) {
			if (fabs((double)c[tc[i]] - c[tg[i]]) > tol * mx)
				fail_msg("%s: top-5 rank %d: cpu %d, gpu %d",
				    at, i, tc[i], tg[i]);
			printf("# %s: rank %d near tie (%d / %d)\n", at, i,
			    tc[i], tg[i]);
		}
	return (double)c[tc[0]] - c[tc[1]];
}

static void
prompt_ids(int32_t *ids, int n, int V, int salt)
{
	int i;

	for (i = 0; i < n; i++)
		ids[i] = (int32_t)((i * 37 + salt * 101 + 5) % V);
}

/* Prefill @p n ids with all logits on both, compare each row; then
 * N_GEN greedy steps teacher-forced with the CPU's token, comparing each.
 * The CPU's tokens and gaps go to @p toks / @p gaps. */
static void
check_teacher_forced(
    struct pair *p, int n, double tol_prefill, int32_t *toks, double *gaps)
{
	int V = p->vocab, i;
	int32_t ids[128];
	float *c = malloc((size_t)n * V * sizeof(float));
	float *g = malloc((size_t)n * V * sizeof(float));
	struct inf_seq *sc, *sg;
	struct inf_batch_item it;
	char at[64];

	assert_non_null(c);
	assert_non_null(g);
	prompt_ids(ids, n, V, 0);
	assert_int_equal(inf_seq_new(p->cpu, n + N_GEN + 1, &sc), 0);
	assert_int_equal(inf_seq_new(p->gpu, n + N_GEN + 1, &sg), 0);
	it = (struct inf_batch_item){ sc, ids, n, INF_LOGITS_ALL };
	assert_int_equal(inf_forward(p->cpu, &it, 1, c), 0);
	it.seq = sg;
	assert_int_equal(inf_forward(p->gpu, &it, 1, g), 0);
	for (i = 0; i < n; i++) {
		snprintf(at, sizeof(at), "prefill %d, row %d", n, i);
		compare_row(
		    c + (size_t)i * V, g + (size_t)i * V, V, tol_prefill, at);
	}
	toks[0] = argmax(c + (size_t)(n - 1) * V, V);
	for (i = 0; i < N_GEN; i++) {
		assert_int_equal(inf_decode(&sc, &toks[i], 1, c), 0);
		assert_int_equal(inf_decode(&sg, &toks[i], 1, g), 0);
		snprintf(at, sizeof(at), "decode step %d", i);
		gaps[i] = compare_row(c, g, V, TOL_DECODE, at);
		if (i + 1 < N_GEN)
			toks[i + 1] = argmax(c, V);
	}
	inf_seq_free(sc);
	inf_seq_free(sg);
	free(c);
	free(g);
}

/* The GPU's output equals the CPU's, or leaves it at a near tie. */
static void
check_same_tokens(const int32_t *cpu, const int32_t *gpu, int n,
    const double *gaps, double tol, const char *what)
{
	int i;

	for (i = 0; i < n; i++)
		if (cpu[i] != gpu[i]) {
			/* gaps[i - 1]: the step that produced token i */
			double gap = i > 0 ? gaps[i - 1] : 0;

			if (i > 0 && !(gap <= tol))
				fail_msg("%s: token %d: cpu %d, gpu %d (gap "
				         "%g)",
				    what, i, cpu[i], gpu[i], gap);
			printf("# %s: diverges at token %d on a near tie\n",
			    what, i);
			return;
		}
}

static void
generate(struct inf_model *m, const int32_t *ids, int n,
    const struct inf_sampling *sp, int32_t *out)
{
	struct inf_stop stop = { 0 };
	enum inf_finish fin;
	struct inf_seq *s;
	int n_out;

	stop.max_tokens = N_GEN;
	stop.ignore_eos = 1;
	assert_int_equal(inf_seq_new(m, n + N_GEN + 1, &s), 0);
	assert_int_equal(inf_generate(s, ids, n, sp, &stop, NULL, NULL, out,
	                     N_GEN, &n_out, &fin),
	    0);
	assert_int_equal(n_out, N_GEN);
	inf_seq_free(s);
}

/* Three generations stepped together on the GPU equal each alone on the
 * CPU (prompts of 5, 9 and 17 tokens, so positions differ). */
static void
check_batched(struct pair *p)
{
	static const int lens[3] = { 5, 9, 17 };
	struct inf_sampling sp;
	struct inf_stop stop = { 0 };
	struct inf_seq *seqs[3];
	struct inf_gen *gens[3];
	int32_t ids[3][32], want[N_GEN];
	const int32_t *got;
	int i, j, n;

	inf_sampling_defaults(&sp);
	stop.max_tokens = 24;
	stop.ignore_eos = 1;
	for (i = 0; i < 3; i++) {
		prompt_ids(ids[i], lens[i], p->vocab, i + 1);
		assert_int_equal(inf_seq_new(p->gpu, 64, &seqs[i]), 0);
		assert_int_equal(inf_gen_start(seqs[i], ids[i], lens[i], &sp,
		                     &stop, &gens[i]),
		    0);
	}
	for (j = 1; j < 24; j++)
		assert_int_equal(inf_gen_step(gens, 3), 0);
	for (i = 0; i < 3; i++) {
		struct inf_seq *s;
		enum inf_finish fin;
		int n_want;

		assert_int_equal(inf_seq_new(p->cpu, 64, &s), 0);
		assert_int_equal(inf_generate(s, ids[i], lens[i], &sp, &stop,
		                     NULL, NULL, want, N_GEN, &n_want, &fin),
		    0);
		inf_seq_free(s);
		n = inf_gen_output(gens[i], &got);
		assert_int_equal(n, n_want);
		for (j = 0; j < n && got[j] == want[j]; j++)
			;
		if (j < n)
			printf("# batched sequence %d differs from token %d "
			       "(cpu %d, gpu %d)\n",
			    i, j, want[j], got[j]);
		/* at least the first 8 tokens: later ones may part at a
		 * near tie, which check_same_tokens covers for one
		 * sequence */
		assert_true(j >= 8);
		inf_gen_free(gens[i]);
		inf_seq_free(seqs[i]);
	}
}

static void
check_model(const char *dir)
{
	struct pair p;
	struct inf_sampling sp;
	int32_t cpu_toks[N_GEN], gpu_toks[N_GEN], ids[16];
	double gaps[N_GEN], mx_tol;

	if (!have_gpu)
		skip();
	open_pair(dir, &p);
	/* 16 tokens: the graph path; 100: the cuBLAS path */
	check_teacher_forced(&p, 100, TOL_PREFILL, cpu_toks, gaps);
	check_teacher_forced(&p, 16, TOL_DECODE, cpu_toks, gaps);
	/* greedy through forward_top: only ids come back */
	inf_sampling_defaults(&sp);
	prompt_ids(ids, 16, p.vocab, 0);
	generate(p.gpu, ids, 16, &sp, gpu_toks);
	mx_tol = TOL_DECODE * 10; /* logits of these models are below 10 */
	check_same_tokens(cpu_toks, gpu_toks, N_GEN, gaps, mx_tol, "greedy");
	/* top_k 1 at temperature 1: the sampling branch, same tokens */
	sp.temperature = 1.0f;
	sp.top_k = 1;
	sp.seed = 7;
	generate(p.gpu, ids, 16, &sp, cpu_toks);
	assert_memory_equal(cpu_toks, gpu_toks, sizeof(cpu_toks));
	check_batched(&p);
	close_pair(&p);
}

static void
test_tiny_qwen2(void **state)
{
	(void)state;
	check_model("tests/fixtures/tiny-qwen2");
}

static void
test_tiny_llama(void **state)
{
	(void)state;
	check_model("tests/fixtures/tiny-llama");
}

static void
test_random_qwen_1_5b(void **state)
{
	char cmd[8192];
	const char *build = getenv("BUILD");
	struct stat st;

	(void)state;
	if (!have_gpu)
		skip();
	if (stat(big_dir, &st) != 0) {
		snprintf(cmd, sizeof(cmd),
		    "%s/bin/sr-mkmodel --shape qwen2-1.5b --out %s "
		    ">/dev/null",
		    build != NULL ? build : "build", big_dir);
		assert_int_equal(system(cmd), 0);
	}
	check_model(big_dir);
}

static int
group_setup(void **state)
{
	const char *tmp = getenv("SR_TEST_TMP");

	(void)state;
	snprintf(big_dir, sizeof(big_dir), "%s/cuda-qwen2-1.5b",
	    tmp != NULL ? tmp : "/tmp");
	have_gpu = inf_cuda_available(why, sizeof(why));
	if (have_gpu)
		printf("# GPU: %s\n", why);
	else
		printf("SKIPPED: no GPU (%s)\n", why);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_qwen2),
		cmocka_unit_test(test_tiny_llama),
		cmocka_unit_test(test_random_qwen_1_5b),
	};

	return cmocka_run_group_tests_name("cuda", tests, group_setup, NULL);
}
