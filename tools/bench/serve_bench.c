/*
 * tools/bench/serve_bench.c: the anchor of the serving benchmark: the
 * scheduler driven in-process, with no TLS, HTTP, authentication or
 * audit, on the same model and the same request mix the HTTPS client
 * sends (tools/bench/serve_bench.sh). Prints one line per concurrency:
 * requests/s, generated tokens/s, TTFT p50/p99.
 *
 * It must never report a figure it did not measure: a failed request
 * stops the run with a message and exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "appliance/serve_impl.h"

#define MAX_C 256

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct slot {
	struct sched_seq *q;
	uint64_t t0, ttft;
	int index;
};

/* Keep @p c requests in flight until @p total have finished. */
static int
run(struct sched *s, const struct inf_tok_ids *prompt, int c, int total,
    int max_tokens)
{
	struct slot sl[MAX_C];
	uint64_t *ttft = calloc((size_t)total, sizeof(uint64_t)), t0;
	struct inf_tok_text text;
	struct sched_progress pr;
	struct sched_req r = { 0 };
	long long tokens = 0;
	int started = 0, done = 0, i, rc;
	double secs;

	inf_tok_text_init(&text);
	inf_sampling_defaults(&r.sampling);
	r.sampling.temperature = 0.8f;
	r.prompt = prompt->ids;
	r.n_prompt = (int)prompt->len;
	r.max_tokens = max_tokens;
	memset(sl, 0, sizeof(sl));
	t0 = now_ns();
	while (done < total) {
		for (i = 0; i < c; i++) {
			if (sl[i].q == NULL && started < total) {
				r.sampling.seed = (uint64_t)started;
				sl[i].t0 = now_ns();
				sl[i].ttft = 0;
				sl[i].index = started++;
				if ((rc = sched_submit(s, &r, &sl[i].q)) != 0) {
					fprintf(stderr, "submit: %d\n", rc);
					return 1;
				}
			}
			if (sl[i].q == NULL)
				continue;
			text.len = 0;
			sched_seq_take(sl[i].q, &text, &pr);
			if (sl[i].ttft == 0 && pr.n_tokens > 0)
				sl[i].ttft = now_ns() - sl[i].t0;
			if (pr.finish == SCHED_RUNNING)
				continue;
			if (pr.finish != SCHED_STOP &&
			    pr.finish != SCHED_LENGTH) {
				fprintf(
				    stderr, "request ended: %d\n", pr.finish);
				return 1;
			}
			tokens += pr.n_tokens;
			ttft[sl[i].index] = sl[i].ttft;
			sched_seq_release(sl[i].q);
			sl[i].q = NULL;
			done++;
		}
		usleep(200);
	}
	secs = (double)(now_ns() - t0) / 1e9;
	qsort(ttft, (size_t)total, sizeof(uint64_t), cmp_u64);
	printf("engine  c=%-3d %4d req  %8.1f req/s  %9.1f tok/s  TTFT p50 "
	       "%7.1f ms  p99 %7.1f ms\n",
	    c, total, total / secs, (double)tokens / secs,
	    (double)ttft[total / 2] / 1e6,
	    (double)ttft[(total * 99) / 100 < total ? (total * 99) / 100
	                                            : total - 1] /
	        1e6);
	free(ttft);
	inf_tok_text_free(&text);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/fixtures/tiny-qwen2";
	int max_tokens = argc > 2 ? atoi(argv[2]) : 64;
	static const int conc[] = { 1, 8, 32 };
	struct sched_opts o = { 32, 50, 1024, 1ull << 31, 4096 };
	struct serve_metrics mx;
	struct inf_model *m;
	struct inf_tok *tok;
	struct inf_tok_ids ids;
	struct sched *s;
	char err[INF_ERR_MAX];
	static const char text[] =
	    "Tell me about the keys the strongroom keeps.";
	size_t i;
	int rc = 0;

	memset(&mx, 0, sizeof(mx));
	if (inf_model_open(dir, NULL, &m, err) != 0 ||
	    inf_tok_load(dir, &tok, err) != 0) {
		fprintf(stderr, "serve-bench: %s\n", err);
		return 1;
	}
	inf_tok_ids_init(&ids);
	if (inf_tok_encode(tok, text, strlen(text), INF_TOK_ADD_BOS, &ids) !=
	        0 ||
	    sched_start(m, tok, &o, &mx, &s) != 0) {
		fprintf(stderr, "serve-bench: cannot start\n");
		return 1;
	}
	for (i = 0; i < sizeof(conc) / sizeof(conc[0]) && rc == 0; i++)
		rc = run(s, &ids, conc[i], conc[i] < 4 ? 16 : conc[i] * 4,
		    max_tokens);
	sched_stop(s);
	inf_tok_ids_free(&ids);
	inf_tok_free(tok);
	inf_model_close(m);
	return rc;
}
