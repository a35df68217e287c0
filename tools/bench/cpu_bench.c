/*
 * tools/bench/cpu_bench.c: the CPU backend's speed on a model folder,
 * against this machine's memory-bandwidth roofline measured in the same
 * run: a streaming read over a buffer far larger than the caches gives
 * bytes/s, and bytes/s divided by the bytes one decode step reads is the
 * most tokens/s batch-1 decode could reach. Prints decode tokens/s (and
 * its share of the roofline), batched decode and prefill tokens/s.
 *
 * Driven with token ids only; it must never need a tokenizer, and it
 * reports figures rather than judging them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "inference/inference.h"

#define STREAM_BYTES ((size_t)512 << 20) /* 16x a 32 MB L3 */

struct stream_arg {
	const uint64_t *p;
	size_t n;
	uint64_t sum;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *
stream_part(void *arg)
{
	struct stream_arg *a = arg;
	uint64_t s[8] = { 0 };
	size_t i, j;

	for (i = 0; i + 8 <= a->n; i += 8)
		for (j = 0; j < 8; j++)
			s[j] += a->p[i + j];
	for (j = 0; j < 8; j++)
		a->sum += s[j];
	return NULL;
}

/* Bytes/s of @p threads threads reading disjoint parts of one buffer;
 * the best of three passes after a warm-up. */
static double
stream_bandwidth(int threads)
{
	size_t n = STREAM_BYTES / sizeof(uint64_t), per;
	uint64_t *buf = malloc(STREAM_BYTES), sink = 0;
	struct stream_arg args[64];
	pthread_t tids[64];
	double best = 0, t0, dt;
	int pass, i;

	if (buf == NULL)
		return 0;
	if (threads > 64)
		threads = 64;
	for (i = 0; (size_t)i < n; i++)
		buf[i] = (uint64_t)i * 0x9e3779b97f4a7c15ull;
	per = n / (size_t)threads;
	for (pass = 0; pass < 4; pass++) {
		t0 = now();
		for (i = 0; i < threads; i++) {
			args[i] = (struct stream_arg){ buf + (size_t)i * per,
				per, 0 };
			pthread_create(&tids[i], NULL, stream_part, &args[i]);
		}
		for (i = 0; i < threads; i++) {
			pthread_join(tids[i], NULL);
			sink += args[i].sum;
		}
		dt = now() - t0;
		if (pass > 0 && (double)(per * threads * 8) / dt > best)
			best = (double)(per * threads * 8) / dt;
	}
	free(buf);
	if (sink == 42)
		printf("(checksum %llu)\n", (unsigned long long)sink);
	return best;
}

static int
argmax(const float *l, int n)
{
	int i, b = 0;

	for (i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return b;
}

static int
bench(struct inf_model *m, int decode_tokens, int prefill_tokens, int batch,
    double bw)
{
	const struct inf_model_info *in = inf_model_info(m);
	struct inf_seq *seqs[16] = { NULL };
	int32_t prompt[4096], toks[16];
	float *logits = malloc((size_t)in->vocab_size * 16 * sizeof(float));
	double t0, dt, tps, roof;
	int i, k, rc = 0;
	/* the first sequence takes the prompt, then both decode runs */
	int cap = prefill_tokens + 2 * decode_tokens + 16;

	if (logits == NULL || batch > 16 || prefill_tokens > 4096)
		return -ENOMEM;
	if (cap > in->max_position_embeddings) {
		fprintf(stderr,
		    "cpu-bench: PREFILL + 2 x DECODE + 16 = %d tokens is more "
		    "than the model's %d positions\n",
		    cap, in->max_position_embeddings);
		free(logits);
		return INF_EPARAM;
	}
	for (i = 0; i < prefill_tokens; i++)
		prompt[i] = (int32_t)((i * 7919 + 13) % in->vocab_size);
	for (k = 0; k < batch && rc == 0; k++)
		rc = inf_seq_new(m, cap, &seqs[k]);
	if (rc != 0)
		goto out;
	/* warm-up: one short prefill touches every weight once */
	if ((rc = inf_prefill(seqs[0], prompt, 4, logits)) != 0)
		goto out;
	inf_seq_truncate(seqs[0], 0);

	t0 = now();
	rc = inf_prefill(seqs[0], prompt, prefill_tokens, logits);
	dt = now() - t0;
	if (rc != 0)
		goto out;
	printf("  prefill, %d tokens in one step:  %8.1f tokens/s\n",
	    prefill_tokens, prefill_tokens / dt);

	toks[0] = (int32_t)argmax(logits, in->vocab_size);
	t0 = now();
	for (i = 0; i < decode_tokens && rc == 0; i++) {
		rc = inf_decode(&seqs[0], toks, 1, logits);
		toks[0] = (int32_t)argmax(logits, in->vocab_size);
	}
	dt = now() - t0;
	if (rc != 0)
		goto out;
	tps = decode_tokens / dt;
	roof = bw / (double)in->decode_bytes;
	printf("  decode, batch 1:                 %8.1f tokens/s = %5.1f %% "
	       "of the roofline (%.1f tokens/s = %.2f GB/s / %.3f GB per "
	       "token)\n",
	    tps, 100 * tps / roof, roof, bw / 1e9,
	    (double)in->decode_bytes / 1e9);
	if (batch > 1) {
		for (k = 1; k < batch && rc == 0; k++)
			rc = inf_prefill(seqs[k], prompt, 8, logits);
		for (k = 0; k < batch; k++)
			toks[k] = (int32_t)((k * 31 + 5) % in->vocab_size);
		t0 = now();
		for (i = 0; i < decode_tokens && rc == 0; i++)
			rc = inf_decode(seqs, toks, batch, logits);
		dt = now() - t0;
		if (rc != 0)
			goto out;
		printf("  decode, batch %d:                 %8.1f tokens/s "
		       "(%.2fx batch 1)\n",
		    batch, batch * decode_tokens / dt,
		    batch * decode_tokens / dt / tps);
	}
out:
	for (k = 0; k < batch; k++)
		inf_seq_free(seqs[k]);
	free(logits);
	return rc;
}

int
main(int argc, char **argv)
{
	struct inf_open_opts opts = { NULL, 0 };
	struct inf_model *m;
	char err[INF_ERR_MAX];
	int decode = 32, prefill = 64, batch = 4, rc;
	double t0, bw, opened;

	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
		    "usage: cpu-bench MODEL_DIR [DECODE_TOKENS [PREFILL_TOKENS "
		    "[BATCH]]]\n"
		    "CPU decode and prefill tokens/s of a model folder against "
		    "this machine's\nmemory-bandwidth roofline measured in the "
		    "same run.\n");
		return argc < 2 ? 2 : 0;
	}
	if (argc > 2)
		decode = atoi(argv[2]);
	if (argc > 3)
		prefill = atoi(argv[3]);
	if (argc > 4)
		batch = atoi(argv[4]);
	if (decode < 1 || prefill < 1 || prefill > 4096 || batch < 1 ||
	    batch > 16) {
		fprintf(stderr,
		    "cpu-bench: decode >= 1, prefill 1..4096, "
		    "batch 1..16\n");
		return 2;
	}
	t0 = now();
	if ((rc = inf_model_open(argv[1], &opts, &m, err)) != 0) {
		fprintf(stderr, "cpu-bench: %s\n", err);
		return 1;
	}
	opened = now() - t0;
	bw = stream_bandwidth(inf_model_info(m)->threads);
	printf("  %s, %s: %d layers, hidden %d, %.3f GB of weights, opened "
	       "in %.2f s; %d threads; streaming read %.2f GB/s\n",
	    argv[1], inf_model_info(m)->architecture,
	    inf_model_info(m)->n_layers, inf_model_info(m)->hidden_size,
	    (double)inf_model_info(m)->weight_bytes / 1e9, opened,
	    inf_model_info(m)->threads, bw / 1e9);
	if ((double)inf_model_info(m)->decode_bytes < 64e6)
		printf("  (the weights fit in the caches: the roofline "
		       "understates what decode can reach)\n");
	rc = bench(m, decode, prefill, batch, bw);
	if (rc != 0)
		fprintf(stderr, "cpu-bench: %s\n", sr_strerror(rc));
	inf_model_close(m);
	return rc == 0 ? 0 : 1;
}
