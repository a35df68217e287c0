/*
 * appliance/serve_metrics.c: the serving metrics of each model, counted
 * with relaxed atomics from the scheduler and the loops, and rendered in
 * the Prometheus text format: time to first token, inter-token latency
 * and end-to-end latency histograms, running and waiting gauges, prompt
 * and generation token counters, KV cache use, response cache hits and
 * the batch size histogram, each with a model label.
 *
 * It must never block or allocate while counting, and never emit a
 * family twice or without its HELP and TYPE lines. The model label is an
 * operator-chosen name checked to [A-Za-z0-9._-], never request data.
 */
#include <errno.h>
#include <stdio.h>

#include "appliance/serve_impl.h"

/* Seconds, as vLLM's TTFT edges, in microseconds; then +Inf. */
static const uint64_t bound_us[SERVE_HIST_BOUNDS] = { 1000, 5000, 10000, 20000,
	40000, 60000, 80000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	10000000 };
static const char *const bound_le[SERVE_HIST_BOUNDS + 1] = { "0.001", "0.005",
	"0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "1",
	"2.5", "5", "10", "+Inf" };
static const char *const batch_le[SERVE_BATCH_BOUNDS + 1] = { "1", "2", "4",
	"8", "16", "32", "64", "+Inf" };
static const char *const finish_name[4] = { "stop", "length", "abort",
	"error" };

void
serve_hist_observe(struct serve_hist *h, uint64_t usec)
{
	size_t i = 0;

	while (i < SERVE_HIST_BOUNDS && usec > bound_us[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, usec, memory_order_relaxed);
}

static unsigned long long
get(atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static int
family(struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(out,
	    "# HELP strongroom_inference_%s %s\n"
	    "# TYPE strongroom_inference_%s %s\n",
	    name, help, name, type);
}

static int
hist(struct buf *out, const char *name, const char *model, struct serve_hist *h)
{
	unsigned long long cum = 0;
	int i, rc = 0;

	for (i = 0; i <= SERVE_HIST_BOUNDS && rc == 0; i++) {
		cum += get(&h->bucket[i]);
		rc = buf_printf(out,
		    "strongroom_inference_%s_bucket{model=\"%s\",le=\"%s\"} "
		    "%llu\n",
		    name, model, bound_le[i], cum);
	}
	if (rc == 0)
		rc = buf_printf(out,
		    "strongroom_inference_%s_sum{model=\"%s\"} %.6f\n"
		    "strongroom_inference_%s_count{model=\"%s\"} %llu\n",
		    name, model, (double)get(&h->sum_us) / 1e6, name, model,
		    cum);
	return rc;
}

static int
batch_hist(struct buf *out, const char *model, struct serve_metrics *m)
{
	unsigned long long cum = 0;
	int i, rc = 0;

	for (i = 0; i <= SERVE_BATCH_BOUNDS && rc == 0; i++) {
		cum += get(&m->batch[i]);
		rc = buf_printf(out,
		    "strongroom_inference_batch_size_bucket{model=\"%s\","
		    "le=\"%s\"} %llu\n",
		    model, batch_le[i], cum);
	}
	if (rc == 0)
		rc = buf_printf(out,
		    "strongroom_inference_batch_size_sum{model=\"%s\"} %llu\n"
		    "strongroom_inference_batch_size_count{model=\"%s\"} "
		    "%llu\n",
		    model, get(&m->batch_sum), model, cum);
	return rc;
}

enum fam {
	F_TTFT,
	F_ITL,
	F_E2E,
	F_BATCH,
	F_RUNNING,
	F_WAITING,
	F_PROMPT,
	F_GEN,
	F_FINISHED,
	F_KV,
	F_KV_RATIO,
	F_HITS,
	F_MISSES,
	F_COUNT
};

static const struct {
	const char *name, *type, *help;
} fams[F_COUNT] = {
	{ "time_to_first_token_seconds", "histogram",
	    "From the request's arrival to its first generated token." },
	{ "inter_token_latency_seconds", "histogram",
	    "Between consecutive generated tokens of one request." },
	{ "e2e_request_latency_seconds", "histogram",
	    "From arrival to the end of generation." },
	{ "batch_size", "histogram",
	    "Sequences in one forward step of the scheduler." },
	{ "requests_running", "gauge", "Sequences in the running batch." },
	{ "requests_waiting", "gauge", "Requests queued for admission." },
	{ "prompt_tokens_total", "counter", "Prompt tokens prefilled." },
	{ "generation_tokens_total", "counter", "Tokens generated." },
	{ "requests_finished_total", "counter",
	    "Finished sequences by reason (stop, length, abort, error)." },
	{ "kv_cache_used_bytes", "gauge",
	    "KV cache memory held by running sequences." },
	{ "kv_cache_usage_ratio", "gauge",
	    "KV cache memory in use over the configured budget." },
	{ "response_cache_hits_total", "counter",
	    "Requests answered from the response cache." },
	{ "response_cache_misses_total", "counter",
	    "Cacheable (temperature 0) requests not in the response cache." },
};

static int
series(struct buf *out, enum fam f, const char *model, struct serve_metrics *m)
{
	const char *n = fams[f].name;
	unsigned long long budget;
	int i, rc = 0;

	switch (f) {
	case F_TTFT:
		return hist(out, n, model, &m->ttft);
	case F_ITL:
		return hist(out, n, model, &m->itl);
	case F_E2E:
		return hist(out, n, model, &m->e2e);
	case F_BATCH:
		return batch_hist(out, model, m);
	case F_FINISHED:
		for (i = 0; i < 4 && rc == 0; i++)
			rc = buf_printf(out,
			    "strongroom_inference_%s{model=\"%s\","
			    "reason=\"%s\"} %llu\n",
			    n, model, finish_name[i], get(&m->finished[i]));
		return rc;
	case F_KV_RATIO:
		budget = get(&m->kv_budget);
		return buf_printf(out,
		    "strongroom_inference_%s{model=\"%s\"} %.6f\n", n, model,
		    budget ? (double)get(&m->kv_used) / (double)budget : 0.0);
	default:
		break;
	}
	return buf_printf(out, "strongroom_inference_%s{model=\"%s\"} %llu\n",
	    n, model,
	    f == F_RUNNING       ? (unsigned long long)atomic_load(&m->running)
	        : f == F_WAITING ? (unsigned long long)atomic_load(&m->waiting)
	        : f == F_PROMPT  ? get(&m->prompt_tokens)
	        : f == F_GEN     ? get(&m->generation_tokens)
	        : f == F_KV      ? get(&m->kv_used)
	        : f == F_HITS    ? get(&m->cache_hits)
	                         : get(&m->cache_misses));
}

int
serve_metrics_write(struct buf *out, const char *const *names,
    struct serve_metrics *const *mx, int n)
{
	int f, i, rc = 0;

	if (n <= 0)
		return 0;
	for (f = 0; f < F_COUNT && rc == 0; f++) {
		rc = family(out, fams[f].name, fams[f].type, fams[f].help);
		for (i = 0; i < n && rc == 0; i++)
			rc = series(out, (enum fam)f, names[i], mx[i]);
	}
	return rc == 0 ? 0 : -ENOMEM;
}
