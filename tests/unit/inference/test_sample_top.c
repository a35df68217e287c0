/*
 * tests/unit/inference/test_sample_top.c: sampling from forward_top's
 * candidates (the INF_TOP_K highest logits, sorted, lowest id first on a
 * tie) picks the same tokens as the CPU sampler over the whole row, for
 * greedy, top_k with and without top_p, ties and NaN, over many seeds; and
 * inf__sampler_top_ok() refuses the settings that need the whole row
 * (penalties, top-p alone, top_k too large). The candidates are made here
 * the way the device makes them. Runs on the CPU; never touches a GPU.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inference/model_internal.h"

#define V 1000

struct cand {
	float l;
	int32_t id;
};

static int
cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->l != y->l)
		return x->l > y->l ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* What cu__topk returns: NaN as -inf, highest first, lower id on a tie. */
static void
make_top(const float *logits, float *tl, int32_t *ti)
{
	static struct cand c[V];
	int i;

	for (i = 0; i < V; i++) {
		c[i].l = isnan(logits[i]) ? -INFINITY : logits[i];
		c[i].id = i;
	}
	qsort(c, V, sizeof(c[0]), cmp);
	for (i = 0; i < INF_TOP_K; i++) {
		tl[i] = c[i].l;
		ti[i] = c[i].id;
	}
}

static uint64_t rng = 88172645463325252ull;

static float
noise(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * 0x1p-53) * 8.0f - 4.0f;
}

/* 200 rows through both samplers (same seed): the same tokens. */
static void
same_tokens(const struct inf_sampling *p, int ties)
{
	struct inf_sampler *full, *top;
	float row[V], copy[V], tl[INF_TOP_K];
	int32_t ti[INF_TOP_K];
	int r, i;

	assert_int_equal(inf_sampler_new(p, V, &full), 0);
	assert_int_equal(inf_sampler_new(p, V, &top), 0);
	assert_true(inf__sampler_top_ok(top));
	for (r = 0; r < 200; r++) {
		for (i = 0; i < V; i++) {
			row[i] = noise();
			if (ties) /* few distinct values: many ties */
				row[i] = roundf(row[i]);
		}
		row[r % V] = NAN;
		memcpy(copy, row, sizeof(row));
		make_top(row, tl, ti);
		assert_int_equal(inf_sampler_next(full, copy),
		    inf__sampler_next_top(top, tl, ti, INF_TOP_K));
	}
	inf_sampler_free(full);
	inf_sampler_free(top);
}

static void
test_greedy(void **state)
{
	struct inf_sampling p;

	(void)state;
	inf_sampling_defaults(&p);
	same_tokens(&p, 0);
	same_tokens(&p, 1);
}

static void
test_top_k(void **state)
{
	struct inf_sampling p;
	int seed;

	(void)state;
	inf_sampling_defaults(&p);
	for (seed = 0; seed < 5; seed++) {
		p.seed = (uint64_t)seed;
		p.temperature = 0.7f;
		p.top_k = 40;
		same_tokens(&p, 0);
		p.top_k = 63;
		p.temperature = 1.3f;
		same_tokens(&p, 1);
	}
}

static void
test_top_k_top_p(void **state)
{
	struct inf_sampling p;

	(void)state;
	inf_sampling_defaults(&p);
	p.seed = 3;
	p.temperature = 0.6f;
	p.top_k = 20;
	p.top_p = 0.9f;
	same_tokens(&p, 0);
	same_tokens(&p, 1);
}

static void
test_refused_settings(void **state)
{
	struct inf_sampling p;
	struct inf_sampler *s;

	(void)state;
	inf_sampling_defaults(&p);
	p.temperature = 0.6f;
	p.top_p = 0.95f; /* top-p alone needs the whole row */
	assert_int_equal(inf_sampler_new(&p, V, &s), 0);
	assert_false(inf__sampler_top_ok(s));
	inf_sampler_free(s);
	p.top_k = INF_TOP_K; /* no margin left */
	assert_int_equal(inf_sampler_new(&p, V, &s), 0);
	assert_false(inf__sampler_top_ok(s));
	inf_sampler_free(s);
	inf_sampling_defaults(&p);
	p.repetition_penalty = 1.1f;
	assert_int_equal(inf_sampler_new(&p, V, &s), 0);
	assert_false(inf__sampler_top_ok(s));
	inf_sampler_free(s);
	inf_sampling_defaults(&p);
	p.presence_penalty = 0.5f;
	assert_int_equal(inf_sampler_new(&p, V, &s), 0);
	assert_false(inf__sampler_top_ok(s));
	inf_sampler_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greedy),
		cmocka_unit_test(test_top_k),
		cmocka_unit_test(test_top_k_top_p),
		cmocka_unit_test(test_refused_settings),
	};

	return cmocka_run_group_tests_name("sample_top", tests, NULL, NULL);
}
