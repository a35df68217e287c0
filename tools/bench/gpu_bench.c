/*
 * tools/bench/gpu_bench.c: `make bench-gpu`: in one run on one GPU, the
 * achievable streaming-read bandwidth (the anchor), then on random models
 * at the DeepSeek-R1-Distill-Qwen-1.5B and -Llama-8B shapes (sr-mkmodel,
 * made once under the folder given): batch-1 decode at context 128 and
 * 4096 as tokens/s, GB/s (decode_bytes plus the KV cache read) and % of
 * the anchor; aggregate decode at batch 1, 8, 32; prefill at 512 and 2048
 * tokens; time to first token for 512; load time from the page cache.
 * Without a GPU it says so and exits 0 ("skipped"). It never prints a
 * figure it did not measure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "inference/inference.h"

#define DECODE_STEPS 64

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
random_ids(int32_t *ids, int n, int vocab, unsigned salt)
{
	unsigned x = 2463534242u ^ salt;
	int i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		ids[i] = (int32_t)(x % (unsigned)vocab);
	}
}

static int
ensure_model(const char *bin, const char *dir, const char *shape)
{
	char path[4096], cmd[8192];
	struct stat st;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (stat(path, &st) == 0)
		return 0;
	printf("== writing a random %s model into %s (once)\n", shape, dir);
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "%s/sr-mkmodel --shape %s --out %s --force",
	    bin, shape, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
open_model(const char *dir, struct inf_model **m, double *secs)
{
	struct inf_open_opts o = { &inf_backend_cuda, 0 };
	char err[INF_ERR_MAX];
	double t0 = now();
	int rc = inf_model_open(dir, &o, m, err);

	*secs = now() - t0;
	if (rc != 0)
		fprintf(stderr, "gpu-bench: %s\n", err);
	return rc;
}

/* B generations with ctx-token prompts, then DECODE_STEPS batched steps:
 * aggregate tokens per second of the steps alone. */
static int
decode(struct inf_model *m, int B, int ctx, double *tok_s)
{
	const struct inf_model_info *in = inf_model_info(m);
	struct inf_seq *seqs[32] = { 0 };
	struct inf_gen *gens[32] = { 0 };
	struct inf_sampling sp;
	struct inf_stop stop = { 0 };
	int32_t *ids = malloc((size_t)ctx * sizeof(int32_t));
	double t0;
	int b, i, rc = -1;

	inf_sampling_defaults(&sp);
	stop.max_tokens = DECODE_STEPS + 1;
	stop.ignore_eos = 1;
	if (ids == NULL)
		return -1;
	for (b = 0; b < B; b++) {
		random_ids(ids, ctx, in->vocab_size, (unsigned)b);
		if (inf_seq_new(m, ctx + DECODE_STEPS + 2, &seqs[b]) != 0 ||
		    inf_gen_start(seqs[b], ids, ctx, &sp, &stop, &gens[b]) != 0)
			goto out;
	}
	t0 = now();
	for (i = 0; i < DECODE_STEPS; i++)
		if (inf_gen_step(gens, B) != 0)
			goto out;
	*tok_s = (double)B * DECODE_STEPS / (now() - t0);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "gpu-bench: decode failed: %s\n",
		    inf_model_backend_error(m));
	for (b = 0; b < B; b++) {
		inf_gen_free(gens[b]);
		inf_seq_free(seqs[b]);
	}
	free(ids);
	return rc;
}

/* KV bytes one token at context ctx reads: fp16 K and V of every layer. */
static double
kv_bytes(const struct inf_model_info *in, int ctx)
{
	return 2.0 * in->n_layers * in->n_kv_heads * in->head_dim * 2.0 * ctx;
}

static int
bench_batch1(struct inf_model *m, const char *name, double bw)
{
	const struct inf_model_info *in = inf_model_info(m);
	static const int ctxs[2] = { 128, 4096 };
	double tps, bytes;
	int i;

	for (i = 0; i < 2; i++) {
		if (decode(m, 1, ctxs[i], &tps) != 0)
			return -1;
		/* the average context over the timed steps */
		bytes = (double)in->decode_bytes +
		    kv_bytes(in, ctxs[i] + DECODE_STEPS / 2);
		printf("%-12s decode batch 1, ctx %4d: %8.1f tok/s  "
		       "%7.1f GB/s  %5.1f %% of measured bandwidth\n",
		    name, ctxs[i], tps, bytes * tps / 1e9,
		    100.0 * bytes * tps / 1e9 / bw);
	}
	return 0;
}

static int
bench_qwen_extra(struct inf_model *m)
{
	const struct inf_model_info *in = inf_model_info(m);
	static const int batches[3] = { 1, 8, 32 }, plens[2] = { 512, 2048 };
	float *logits = malloc((size_t)in->vocab_size * sizeof(float));
	int32_t ids[2048];
	struct inf_seq *s;
	double tps, t0;
	int i;

	if (logits == NULL)
		return -1;
	for (i = 0; i < 3; i++) {
		if (decode(m, batches[i], 128, &tps) != 0)
			goto fail;
		printf("qwen2-1.5b   decode batch %2d, ctx 128: %8.1f tok/s "
		       "aggregate\n",
		    batches[i], tps);
	}
	for (i = 0; i < 2; i++) {
		random_ids(ids, plens[i], in->vocab_size, 99u);
		if (inf_seq_new(m, plens[i], &s) != 0)
			goto fail;
		t0 = now();
		if (inf_prefill(s, ids, plens[i], logits) != 0) {
			inf_seq_free(s);
			goto fail;
		}
		tps = plens[i] / (now() - t0);
		inf_seq_free(s);
		printf("qwen2-1.5b   prefill %4d tokens: %9.1f tok/s\n",
		    plens[i], tps);
	}
	{
		struct inf_sampling sp;
		struct inf_stop stop = { 0 };
		struct inf_gen *g;

		inf_sampling_defaults(&sp);
		stop.max_tokens = 1;
		stop.ignore_eos = 1;
		random_ids(ids, 512, in->vocab_size, 7u);
		if (inf_seq_new(m, 520, &s) != 0)
			goto fail;
		t0 = now();
		if (inf_gen_start(s, ids, 512, &sp, &stop, &g) != 0) {
			inf_seq_free(s);
			goto fail;
		}
		printf("qwen2-1.5b   time to first token, 512-token prompt: "
		       "%.2f ms\n",
		    (now() - t0) * 1e3);
		inf_gen_free(g);
		inf_seq_free(s);
	}
	free(logits);
	return 0;
fail:
	fprintf(stderr, "gpu-bench: %s\n", inf_model_backend_error(m));
	free(logits);
	return -1;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "build/bench-models";
	const char *bin = argc > 2 ? argv[2] : "build/bin";
	char why[512], path[4096];
	struct inf_model *m;
	double bw, secs;

	if (!inf_cuda_available(why, sizeof(why))) {
		printf("gpu-bench: skipped: no GPU (%s)\n", why);
		return 0;
	}
	printf("== GPU: %s\n", why);
	if (inf_cuda_bandwidth((size_t)2 << 30, 10, &bw, why, sizeof(why))) {
		fprintf(stderr, "gpu-bench: %s\n", why);
		return 1;
	}
	printf("streaming read (2 GiB, best of 10): %.1f GB/s\n", bw);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/qwen2-1.5b", dir);
	if (ensure_model(bin, path, "qwen2-1.5b") != 0 ||
	    open_model(path, &m, &secs) != 0)
		return 1;
	inf_model_close(m); /* the first open fills the page cache */
	if (open_model(path, &m, &secs) != 0)
		return 1;
	printf("qwen2-1.5b   load from page cache: %.2f s (%.2f GB)\n", secs,
	    inf_model_info(m)->weight_bytes / 1e9);
	if (bench_batch1(m, "qwen2-1.5b", bw) != 0 || bench_qwen_extra(m))
		return 1;
	inf_model_close(m);
	snprintf(path, sizeof(path), "%s/llama-8b", dir);
	if (ensure_model(bin, path, "llama-8b") != 0 ||
	    open_model(path, &m, &secs) != 0)
		return 1;
	printf("llama-8b     load: %.2f s\n", secs);
	if (bench_batch1(m, "llama-8b", bw) != 0)
		return 1;
	inf_model_close(m);
	return 0;
}
