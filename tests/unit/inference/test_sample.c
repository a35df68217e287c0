/*
 * tests/unit/inference/test_sample.c: inference/sample.c on hand-made
 * logits: a seed reproduces its tokens and another seed does not; top-k 1
 * equals greedy; top-p keeps exactly the nucleus and its proportions;
 * temperature flattens as exp(d/T) says; the repetition penalty touches
 * prompt and output tokens, frequency and presence only output ones; bad
 * parameters are named; NaN never wins; a temperature below 1e-4 is
 * greedy and scaled logits that overflow keep the most likely token.
 * Frequencies are checked with wide margins over thousands of draws of a fixed
 * seed, so they cannot flake.
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

#include "inference/inference.h"

#define V 1000

static struct inf_sampler *
sampler(float temperature, int top_k, float top_p, uint64_t seed)
{
	struct inf_sampling p;
	struct inf_sampler *s;

	inf_sampling_defaults(&p);
	p.temperature = temperature;
	p.top_k = top_k;
	p.top_p = top_p;
	p.seed = seed;
	assert_int_equal(inf_sampler_new(&p, V, &s), 0);
	return s;
}

static void
flat(float *l)
{
	int i;

	for (i = 0; i < V; i++)
		l[i] = 0;
}

/* Draw @p n tokens with the same logits each time. */
static void
draws(struct inf_sampler *s, const float *logits, int n, int32_t *out)
{
	float l[V];
	int i;

	for (i = 0; i < n; i++) {
		memcpy(l, logits, sizeof(l));
		out[i] = inf_sampler_next(s, l);
		assert_true(out[i] >= 0 && out[i] < V);
	}
}

static void
test_seed_reproducible(void **state)
{
	float l[V];
	int32_t a[64], b[64], c[64];
	struct inf_sampler *s1 = sampler(1, 0, 1, 42),
	                   *s2 = sampler(1, 0, 1, 42);
	struct inf_sampler *s3 = sampler(1, 0, 1, 43);

	(void)state;
	flat(l);
	draws(s1, l, 64, a);
	draws(s2, l, 64, b);
	draws(s3, l, 64, c);
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, c, sizeof(a));
	inf_sampler_free(s1);
	inf_sampler_free(s2);
	inf_sampler_free(s3);
}

static void
test_top_k_one_is_greedy(void **state)
{
	struct inf_sampler *g = sampler(0, 0, 1, 1),
	                   *k1 = sampler(1.5f, 1, 1, 7);
	float l1[V], l2[V];
	unsigned x = 12345;
	int round, i;

	(void)state;
	for (round = 0; round < 200; round++) {
		for (i = 0; i < V; i++) {
			x = x * 1103515245u + 12345u;
			l1[i] = l2[i] = (float)(x >> 8) / (float)(1 << 24) * 8;
		}
		assert_int_equal(
		    inf_sampler_next(k1, l2), inf_sampler_next(g, l1));
	}
	inf_sampler_free(g);
	inf_sampler_free(k1);
}

static void
test_top_p_nucleus(void **state)
{
	float l[V];
	int32_t out[4000];
	int i, zero = 0;
	struct inf_sampler *s = sampler(1, 0, 0.75f, 9);
	struct inf_sampler *s1 = sampler(1, 0, 0.5f, 9);

	(void)state;
	/* probabilities 0.5, 0.3, 0.1 and 0.1 spread over the rest */
	for (i = 0; i < V; i++)
		l[i] = logf(0.1f / (V - 3));
	l[0] = logf(0.5f);
	l[1] = logf(0.3f);
	l[2] = logf(0.1f);
	draws(s, l, 4000, out);
	for (i = 0; i < 4000; i++) {
		assert_true(out[i] == 0 || out[i] == 1);
		zero += out[i] == 0;
	}
	/* renormalized over the nucleus: 0.5 / 0.8 = 0.625 */
	assert_true(zero > 4000 * 0.58 && zero < 4000 * 0.67);
	draws(s1, l, 500, out);
	for (i = 0; i < 500; i++)
		assert_int_equal(out[i], 0);
	inf_sampler_free(s);
	inf_sampler_free(s1);
}

static void
test_top_k_and_temperature(void **state)
{
	float l[V];
	int32_t out[4000];
	int i, hi = 0;
	struct inf_sampler *k2 = sampler(1, 2, 1, 3), *t1 = sampler(1, 0, 1, 5);
	struct inf_sampler *t2 = sampler(2, 0, 1, 5);

	(void)state;
	for (i = 0; i < V; i++)
		l[i] = -1e9f;
	l[10] = logf(3);
	l[20] = 0;
	l[30] = -0.5f;
	draws(k2, l, 2000, out);
	for (i = 0; i < 2000; i++)
		assert_true(out[i] == 10 || out[i] == 20);
	/* T = 1: p(10) = 3/4 of the two; T = 2: sqrt(3) / (1 + sqrt(3)) */
	l[30] = -1e9f;
	draws(t1, l, 4000, out);
	for (i = 0; i < 4000; i++)
		hi += out[i] == 10;
	assert_true(hi > 4000 * 0.71 && hi < 4000 * 0.79);
	draws(t2, l, 4000, out);
	for (hi = 0, i = 0; i < 4000; i++)
		hi += out[i] == 10;
	assert_true(hi > 4000 * 0.59 && hi < 4000 * 0.68);
	inf_sampler_free(k2);
	inf_sampler_free(t1);
	inf_sampler_free(t2);
}

static void
test_penalties(void **state)
{
	struct inf_sampling p;
	struct inf_sampler *s;
	int32_t prompt[2] = { 3, 4 };
	float l[V];

	(void)state;
	inf_sampling_defaults(&p);
	p.repetition_penalty = 2.0f;
	p.frequency_penalty = 0.5f;
	p.presence_penalty = 1.0f;
	assert_int_equal(inf_sampler_new(&p, V, &s), 0);
	inf_sampler_prompt(s, prompt, 2);
	flat(l);
	l[3] = 4;
	l[4] = -1;
	l[5] = 3;
	/* 3 falls to 2 (prompt: repetition only), so 5 wins */
	assert_int_equal(inf_sampler_next(s, l), 5);
	assert_true(l[3] == 2.0f && l[4] == -2.0f && l[5] == 3.0f);
	assert_true(l[6] == 0.0f);
	/* 5 is output once: 3 / 2 - (1 * 0.5 + 1) = 0 */
	flat(l);
	l[3] = 4;
	l[5] = 3;
	assert_int_equal(inf_sampler_next(s, l), 3);
	assert_true(l[5] == 0.0f);
	/* 3 and 5 are each output once: 4 / 2 - 1.5 and 3 / 2 - 1.5 */
	flat(l);
	l[3] = 4;
	l[5] = 3;
	l[7] = 0.25f;
	assert_int_equal(inf_sampler_next(s, l), 3);
	assert_true(l[3] == 0.5f && l[5] == 0.0f && l[7] == 0.25f);
	inf_sampler_free(s);
}

static void
test_parameter_checks(void **state)
{
	struct inf_sampling p;
	struct inf_sampler *s;
	char err[INF_ERR_MAX];

	(void)state;
	inf_sampling_defaults(&p);
	assert_int_equal(inf_sampling_check(&p, err), 0);
	p.top_p = 1.5f;
	assert_int_equal(inf_sampling_check(&p, err), INF_EPARAM);
	assert_string_equal(err,
	    "top_p 1.5 is out of range (above 0, at most "
	    "1)");
	assert_int_equal(inf_sampler_new(&p, V, &s), INF_EPARAM);
	assert_null(s);
	inf_sampling_defaults(&p);
	p.temperature = -1;
	assert_int_equal(inf_sampling_check(&p, err), INF_EPARAM);
	assert_non_null(strstr(err, "temperature -1"));
	inf_sampling_defaults(&p);
	p.temperature = NAN;
	assert_int_equal(inf_sampling_check(&p, err), INF_EPARAM);
	inf_sampling_defaults(&p);
	p.frequency_penalty = 3;
	assert_int_equal(inf_sampling_check(&p, err), INF_EPARAM);
	assert_non_null(strstr(err, "frequency_penalty 3 is out of range"));
	inf_sampling_defaults(&p);
	p.top_k = -2;
	assert_int_equal(inf_sampling_check(&p, err), INF_EPARAM);
	inf_sampling_defaults(&p);
	assert_int_equal(inf_sampler_new(&p, 0, &s), INF_EPARAM);
}

static void
test_nan_and_infinities(void **state)
{
	struct inf_sampler *g = sampler(0, 0, 1, 0),
	                   *r = sampler(1, 0, 0.9f, 1);
	float l[V];
	int i;

	(void)state;
	for (i = 0; i < V; i++)
		l[i] = NAN;
	l[17] = 1;
	assert_int_equal(inf_sampler_next(g, l), 17);
	for (i = 0; i < V; i++)
		l[i] = NAN;
	l[18] = 1;
	assert_int_equal(inf_sampler_next(r, l), 18);
	for (i = 0; i < V; i++)
		l[i] = -INFINITY;
	i = inf_sampler_next(r, l);
	assert_true(i >= 0 && i < V);
	inf_sampler_free(g);
	inf_sampler_free(r);
}

/* A tiny or denormal temperature is greedy, not a division overflow. */
static void
test_tiny_temperature_is_greedy(void **state)
{
	static const float temps[] = { 1e-42f, 1e-45f, 5e-5f };
	struct inf_sampler *s;
	float l[V];
	int i, j, t;

	(void)state;
	for (t = 0; t < 3; t++) {
		s = sampler(temps[t], 0, 0.95f, 7 + (uint64_t)t);
		for (j = 0; j < 50; j++) {
			for (i = 0; i < V; i++)
				l[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
			l[123] = 0.75f;
			assert_int_equal(inf_sampler_next(s, l), 123);
		}
		inf_sampler_free(s);
	}
}

/* Scaled logits that overflow to infinity: the most likely token, never
 * the least likely as a NaN sum once gave. */
static void
test_overflow_keeps_most_likely(void **state)
{
	struct inf_sampler *s = sampler(1e-3f, 0, 1, 3),
	                   *p = sampler(1e-3f, 0, 0.5f, 4);
	float l[V];
	int i, j;

	(void)state;
	for (j = 0; j < 20; j++) {
		for (i = 0; i < V; i++)
			l[i] = (float)(i % 7);
		l[5] = 3e38f;
		l[9] = 2e38f;
		assert_int_equal(inf_sampler_next(s, l), 5);
		for (i = 0; i < V; i++)
			l[i] = (float)(i % 7);
		l[5] = 3e38f;
		l[9] = 2e38f;
		assert_int_equal(inf_sampler_next(p, l), 5);
	}
	inf_sampler_free(s);
	inf_sampler_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_reproducible),
		cmocka_unit_test(test_top_k_one_is_greedy),
		cmocka_unit_test(test_top_p_nucleus),
		cmocka_unit_test(test_top_k_and_temperature),
		cmocka_unit_test(test_penalties),
		cmocka_unit_test(test_parameter_checks),
		cmocka_unit_test(test_nan_and_infinities),
		cmocka_unit_test(test_tiny_temperature_is_greedy),
		cmocka_unit_test(test_overflow_keeps_most_likely),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
