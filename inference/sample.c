/*
 * inference/sample.c: turns logits into the next token: repetition,
 * frequency and presence penalties, temperature, top-k, top-p, and a draw
 * from the project's own PRNG (xoshiro256**, seeded through splitmix64)
 * so a seed gives the same tokens on every machine and every run. It must
 * never return an id outside the vocabulary, whatever the logits hold
 * (NaN and infinities included).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/model_internal.h"

/* Temperatures below this are greedy: dividing float logits by a tiny
 * (or denormal) temperature overflows to infinity, and no draw at such a
 * temperature could differ from the argmax anyway. */
#define GREEDY_BELOW 1e-4f

struct cand {
	float logit;
	int32_t id;
};

struct inf_sampler {
	struct inf_sampling p;
	int vocab;
	uint64_t rng[4];
	uint32_t *out_count; /* times each id was output */
	uint8_t *seen;       /* 1 when in the prompt or output */
	struct cand *cand;
};

void
inf_sampling_defaults(struct inf_sampling *p)
{
	memset(p, 0, sizeof(*p));
	p->top_p = 1.0f;
	p->repetition_penalty = 1.0f;
}

void
inf_sampling_from_model(struct inf_sampling *p, const struct inf_model *m)
{
	const struct inf_model_info *in = inf_model_info(m);

	inf_sampling_defaults(p);
	if (in->gen_do_sample) {
		p->temperature = in->gen_temperature;
		p->top_p = in->gen_top_p;
		p->top_k = in->gen_top_k;
	}
	p->repetition_penalty = in->gen_repetition_penalty;
}

int
inf_sampling_check(const struct inf_sampling *p, char err[static INF_ERR_MAX])
{
	const char *what = NULL;
	double v = 0;

	if (!(p->temperature >= 0 && p->temperature <= 100))
		what = "temperature", v = p->temperature;
	else if (p->top_k < 0)
		what = "top_k", v = p->top_k;
	else if (!(p->top_p > 0 && p->top_p <= 1))
		what = "top_p", v = p->top_p;
	else if (!(p->repetition_penalty > 0 && p->repetition_penalty <= 100))
		what = "repetition_penalty", v = p->repetition_penalty;
	else if (!(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
		what = "frequency_penalty", v = p->frequency_penalty;
	else if (!(p->presence_penalty >= -2 && p->presence_penalty <= 2))
		what = "presence_penalty", v = p->presence_penalty;
	if (what == NULL) {
		err[0] = '\0';
		return 0;
	}
	snprintf(err, INF_ERR_MAX, "%s %g is out of range (%s)", what, v,
	    strcmp(what, "temperature") == 0              ? "0 to 100"
	        : strcmp(what, "top_k") == 0              ? "0 or more"
	        : strcmp(what, "top_p") == 0              ? "above 0, at most 1"
	        : strcmp(what, "repetition_penalty") == 0 ? "above 0, at most "
	                                                    "100"
	                                                  : "-2 to 2");
	return INF_EPARAM;
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 bits. */
static double
rng_unit(uint64_t s[4])
{
	return (double)(sr_xoshiro_next(s) >> 11) * 0x1p-53;
}

int
inf_sampler_new(
    const struct inf_sampling *p, int vocab, struct inf_sampler **out)
{
	char err[INF_ERR_MAX];
	struct inf_sampler *s;
	uint64_t seed = p->seed;
	int i;

	*out = NULL;
	if (vocab < 1 || inf_sampling_check(p, err) != 0)
		return INF_EPARAM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->p = *p;
	s->vocab = vocab;
	s->out_count = calloc((size_t)vocab, sizeof(s->out_count[0]));
	s->seen = calloc((size_t)vocab, 1);
	s->cand = malloc((size_t)vocab * sizeof(s->cand[0]));
	if (s->out_count == NULL || s->seen == NULL || s->cand == NULL) {
		inf_sampler_free(s);
		return -ENOMEM;
	}
	for (i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&seed);
	*out = s;
	return 0;
}

void
inf_sampler_free(struct inf_sampler *s)
{
	if (s == NULL)
		return;
	free(s->out_count);
	free(s->seen);
	free(s->cand);
	free(s);
}

void
inf_sampler_prompt(struct inf_sampler *s, const int32_t *ids, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (ids[i] >= 0 && ids[i] < s->vocab)
			s->seen[ids[i]] = 1;
}

static void
penalize(const struct inf_sampler *s, float *logits)
{
	const struct inf_sampling *p = &s->p;
	int i;

	for (i = 0; i < s->vocab; i++) {
		if (!s->seen[i])
			continue;
		if (p->repetition_penalty != 1.0f)
			logits[i] = logits[i] > 0
			    ? logits[i] / p->repetition_penalty
			    : logits[i] * p->repetition_penalty;
		if (s->out_count[i] > 0)
			logits[i] -=
			    (float)s->out_count[i] * p->frequency_penalty +
			    p->presence_penalty;
	}
}

/* Higher logit first; the lower id wins a tie, so order is total. */
static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->logit != y->logit)
		return x->logit > y->logit ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t
argmax(const float *logits, int n)
{
	int32_t best = 0;
	int i;

	for (i = 1; i < n; i++)
		if (logits[i] > logits[best] || isnan(logits[best]))
			best = i;
	return best;
}

/* Sort the candidates that can matter: the top k, or, for top-p alone,
 * those above the nucleus's smallest possible member (llama2.c's
 * cut-off: below (1 - top_p) / (n - 1) of the mass a token cannot be
 * needed). Returns how many are sorted at the front. */
static int
candidates(struct inf_sampler *s, const float *logits, int32_t best, float mx,
    double sum)
{
	const struct inf_sampling *p = &s->p;
	double cut = 0;
	int i, n = 0;

	if (p->top_k == 0 && p->top_p < 1.0f && s->vocab > 1)
		cut = (1.0 - p->top_p) / (s->vocab - 1);
	for (i = 0; i < s->vocab; i++) {
		if (!(logits[i] > -INFINITY))
			continue;
		if (cut > 0 && i != best &&
		    exp((double)logits[i] - mx) / sum < cut)
			continue;
		s->cand[n].logit = logits[i];
		s->cand[n].id = i;
		n++;
	}
	qsort(s->cand, (size_t)n, sizeof(s->cand[0]), cand_cmp);
	if (p->top_k > 0 && p->top_k < n)
		n = p->top_k;
	return n;
}

/* The draw over the first @p n sorted candidates (scaled logits, the
 * highest @p mx): renormalize, cut to the nucleus, pick with the PRNG.
 * -1 when the weights are not finite numbers (scaled logits that
 * overflowed): the caller keeps the most likely token. */
static int32_t
draw(struct inf_sampler *s, int n, float mx)
{
	const struct inf_sampling *p = &s->p;
	double sum, cum, u;
	int32_t tok;
	int i;

	for (sum = 0, i = 0; i < n; i++)
		sum += exp((double)s->cand[i].logit - mx);
	if (n < 1 || !isfinite(sum) || !(sum > 0))
		return -1;
	if (p->top_p < 1.0f) {
		for (cum = 0, i = 0; i < n; i++) {
			cum += exp((double)s->cand[i].logit - mx) / sum;
			if (cum >= p->top_p) {
				n = i + 1;
				break;
			}
		}
		for (sum = 0, i = 0; i < n; i++)
			sum += exp((double)s->cand[i].logit - mx);
	}
	u = rng_unit(s->rng) * sum;
	tok = s->cand[n - 1].id;
	for (cum = 0, i = 0; i < n; i++) {
		cum += exp((double)s->cand[i].logit - mx);
		if (u < cum) {
			tok = s->cand[i].id;
			break;
		}
	}
	return tok;
}

int32_t
inf_sampler_next(struct inf_sampler *s, float *logits)
{
	const struct inf_sampling *p = &s->p;
	double sum = 0;
	float mx;
	int32_t tok;
	int i, n;

	for (i = 0; i < s->vocab; i++)
		if (isnan(logits[i]))
			logits[i] = -INFINITY;
	penalize(s, logits);
	tok = argmax(logits, s->vocab);
	if (p->temperature < GREEDY_BELOW || !(logits[tok] > -INFINITY))
		goto done;
	mx = logits[tok];
	for (i = 0; i < s->vocab; i++) {
		logits[i] /= p->temperature;
		sum += exp((double)logits[i] - mx / p->temperature);
	}
	mx /= p->temperature;
	n = candidates(s, logits, tok, mx, sum);
	if ((i = draw(s, n, mx)) >= 0)
		tok = i;
done:
	s->out_count[tok]++;
	s->seen[tok] = 1;
	return tok;
}

int
inf__sampler_top_ok(const struct inf_sampler *s)
{
	const struct inf_sampling *p = &s->p;

	if (p->repetition_penalty != 1.0f || p->frequency_penalty != 0 ||
	    p->presence_penalty != 0)
		return 0;
	/* top_k below INF_TOP_K leaves a margin for logits that tie only
	 * after the division by the temperature */
	return p->temperature < GREEDY_BELOW ||
	    (p->top_k > 0 && p->top_k < INF_TOP_K);
}

/*
 * As inf_sampler_next(): with no penalties and top_k set, the kept
 * candidates are the top_k of the scaled logits, which are among the
 * INF_TOP_K highest raw ones; they are re-sorted here after scaling, as
 * candidates() sorts them. The first entry is the argmax (lowest id on a
 * tie), as argmax() picks it.
 */
int32_t
inf__sampler_next_top(struct inf_sampler *s, const float *top_logits,
    const int32_t *top_ids, int n)
{
	const struct inf_sampling *p = &s->p;
	float mx;
	int32_t tok;
	int i, k = 0;

	if (n > s->vocab)
		n = s->vocab;
	tok =
	    n > 0 && top_ids[0] >= 0 && top_ids[0] < s->vocab ? top_ids[0] : 0;
	if (n < 1 || p->temperature < GREEDY_BELOW ||
	    !(top_logits[0] > -INFINITY))
		goto done;
	mx = top_logits[0] / p->temperature;
	for (i = 0; i < n; i++) {
		if (!(top_logits[i] > -INFINITY) || top_ids[i] < 0 ||
		    top_ids[i] >= s->vocab)
			continue;
		s->cand[k].logit = top_logits[i] / p->temperature;
		s->cand[k].id = top_ids[i];
		k++;
	}
	qsort(s->cand, (size_t)k, sizeof(s->cand[0]), cand_cmp);
	if (p->top_k > 0 && p->top_k < k)
		k = p->top_k;
	if ((i = draw(s, k, mx)) >= 0)
		tok = i;
done:
	s->out_count[tok]++;
	s->seen[tok] = 1;
	return tok;
}
