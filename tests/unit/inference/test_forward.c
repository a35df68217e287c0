/*
 * tests/unit/inference/test_forward.c: the CPU forward pass and greedy
 * generation against the fixtures' reference.json (transformers, fp32):
 * for every prompt of tiny-qwen2 and tiny-llama, the top-5 ids at every
 * position exact, the last logits within 1e-3, greedy_24 exact; the same
 * through the portable kernels; batched decode of three sequences equal to
 * one at a time; a batched ragged prefill, a chunked long step, truncation
 * and the argument checks of inf_forward. Reads the fixtures from the repo
 * root and never writes anywhere.
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

#include <yyjson.h>

#include "inference/model_internal.h"

#define MAX_PROMPTS 16
#define MAX_IDS 64

struct prompt {
	int32_t ids[MAX_IDS];
	int n;
	int32_t top5[MAX_IDS][5];
	int32_t greedy[24];
	float *last_logits;
};

struct fixture {
	const char *dir;
	struct inf_model *model;
	struct prompt prompts[MAX_PROMPTS];
	int n_prompts;
	int vocab;
};

static void
read_ids(yyjson_val *arr, int32_t *out, int max, int *n)
{
	size_t i, cnt;
	yyjson_val *v;

	assert_true(yyjson_is_arr(arr));
	cnt = yyjson_arr_size(arr);
	assert_true(cnt <= (size_t)max);
	for (i = 0; i < cnt; i++) {
		v = yyjson_arr_get(arr, i);
		out[i] = (int32_t)yyjson_get_sint(v);
	}
	if (n != NULL)
		*n = (int)cnt;
}

static int
fixture_setup(void **state, const char *dir)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[256], err[INF_ERR_MAX];
	yyjson_read_err jerr;
	yyjson_doc *doc;
	yyjson_val *prompts, *p;
	struct inf_open_opts opts = { NULL, 2 };
	size_t i, j;
	int n;

	assert_non_null(f);
	f->dir = dir;
	if (inf_model_open(dir, &opts, &f->model, err) != 0)
		fail_msg("%s", err);
	f->vocab = inf_model_info(f->model)->vocab_size;
	snprintf(path, sizeof(path), "%s/reference.json", dir);
	doc = yyjson_read_file(path, 0, NULL, &jerr);
	if (doc == NULL)
		fail_msg("%s: %s", path, jerr.msg);
	prompts = yyjson_obj_get(yyjson_doc_get_root(doc), "prompts");
	assert_true(yyjson_arr_size(prompts) <= MAX_PROMPTS);
	f->n_prompts = (int)yyjson_arr_size(prompts);
	for (i = 0; i < (size_t)f->n_prompts; i++) {
		struct prompt *pr = &f->prompts[i];
		yyjson_val *top5, *ll;

		p = yyjson_arr_get(prompts, i);
		read_ids(yyjson_obj_get(p, "input_ids_with_bos"), pr->ids,
		    MAX_IDS, &pr->n);
		read_ids(yyjson_obj_get(p, "greedy_24"), pr->greedy, 24, &n);
		assert_int_equal(n, 24);
		top5 = yyjson_obj_get(p, "top5_per_position");
		assert_int_equal(yyjson_arr_size(top5), pr->n);
		for (j = 0; j < (size_t)pr->n; j++)
			read_ids(yyjson_arr_get(top5, j), pr->top5[j], 5, NULL);
		ll = yyjson_obj_get(p, "last_logits");
		assert_int_equal(yyjson_arr_size(ll), f->vocab);
		pr->last_logits = malloc((size_t)f->vocab * sizeof(float));
		assert_non_null(pr->last_logits);
		for (j = 0; j < (size_t)f->vocab; j++)
			pr->last_logits[j] =
			    (float)yyjson_get_num(yyjson_arr_get(ll, j));
	}
	yyjson_doc_free(doc);
	assert_true(f->n_prompts >= 3);
	*state = f;
	return 0;
}

static int
setup_qwen2(void **state)
{
	return fixture_setup(state, "tests/fixtures/tiny-qwen2");
}

static int
setup_llama(void **state)
{
	return fixture_setup(state, "tests/fixtures/tiny-llama");
}

static int
fixture_teardown(void **state)
{
	struct fixture *f = *state;
	int i;

	cpu__force_portable = 0;
	for (i = 0; i < f->n_prompts; i++)
		free(f->prompts[i].last_logits);
	inf_model_close(f->model);
	free(f);
	return 0;
}

/* The five highest ids of a row, highest first (lower id on a tie). */
static void
top5(const float *row, int n, int32_t out[5])
{
	int i, k, j;

	for (k = 0; k < 5; k++)
		out[k] = -1;
	for (i = 0; i < n; i++) {
		for (k = 0; k < 5; k++)
			if (out[k] < 0 || row[i] > row[out[k]])
				break;
		if (k == 5)
			continue;
		for (j = 4; j > k; j--)
			out[j] = out[j - 1];
		out[k] = i;
	}
}

static void
check_prompt_logits(struct fixture *f, const struct prompt *pr, int index)
{
	size_t V = (size_t)f->vocab;
	float *logits = malloc((size_t)pr->n * V * sizeof(float));
	struct inf_seq *s;
	struct inf_batch_item it;
	int32_t got[5];
	double worst = 0;
	int t, k;

	assert_non_null(logits);
	assert_int_equal(inf_seq_new(f->model, 256, &s), 0);
	it = (struct inf_batch_item){ s, pr->ids, pr->n, INF_LOGITS_ALL };
	assert_int_equal(inf_forward(f->model, &it, 1, logits), 0);
	assert_int_equal(inf_seq_length(s), pr->n);
	for (t = 0; t < pr->n; t++) {
		top5(logits + (size_t)t * V, f->vocab, got);
		for (k = 0; k < 5; k++)
			if (got[k] != pr->top5[t][k])
				fail_msg("%s prompt %d position %d: top5[%d] "
				         "is %d, reference %d",
				    f->dir, index, t, k, got[k],
				    pr->top5[t][k]);
	}
	for (k = 0; k < f->vocab; k++) {
		double d = fabs((double)logits[(size_t)(pr->n - 1) * V + k] -
		    pr->last_logits[k]);

		if (d > worst)
			worst = d;
	}
	if (worst > 1e-3)
		fail_msg("%s prompt %d: last logits differ by %g", f->dir,
		    index, worst);
	inf_seq_free(s);
	free(logits);
}

static void
check_greedy(struct fixture *f, const struct prompt *pr, int index)
{
	struct inf_sampling sp;
	struct inf_stop stop = { 0 };
	enum inf_finish fin;
	struct inf_seq *s;
	int32_t out[24];
	int n, k;

	inf_sampling_defaults(&sp);
	stop.max_tokens = 24;
	stop.ignore_eos = 1;
	assert_int_equal(inf_seq_new(f->model, 0, &s), 0);
	assert_int_equal(inf_generate(s, pr->ids, pr->n, &sp, &stop, NULL, NULL,
	                     out, 24, &n, &fin),
	    0);
	assert_int_equal(n, 24);
	assert_int_equal(fin, INF_FINISH_LENGTH);
	for (k = 0; k < 24; k++)
		if (out[k] != pr->greedy[k])
			fail_msg("%s prompt %d: greedy token %d is %d, "
			         "reference %d",
			    f->dir, index, k, out[k], pr->greedy[k]);
	inf_seq_free(s);
}

static void
test_reference(void **state)
{
	struct fixture *f = *state;
	int i;

	for (i = 0; i < f->n_prompts; i++) {
		check_prompt_logits(f, &f->prompts[i], i);
		check_greedy(f, &f->prompts[i], i);
	}
}

static void
test_reference_portable(void **state)
{
	cpu__force_portable = 1;
	test_reference(state);
	cpu__force_portable = 0;
}

/* Three sequences prefilled in one ragged step, then decoded together:
 * the same tokens as greedy_24, and the same logits as one at a time. */
static void
test_batched_decode(void **state)
{
	struct fixture *f = *state;
	size_t V = (size_t)f->vocab;
	struct inf_seq *seqs[3], *solo;
	struct inf_batch_item items[3];
	float *logits = malloc(3 * V * sizeof(float));
	float *one = malloc(V * sizeof(float));
	int32_t toks[3];
	int i, step;

	assert_non_null(logits);
	assert_non_null(one);
	for (i = 0; i < 3; i++) {
		assert_int_equal(inf_seq_new(f->model, 128, &seqs[i]), 0);
		items[i] = (struct inf_batch_item){ seqs[i], f->prompts[i].ids,
			f->prompts[i].n, INF_LOGITS_LAST };
	}
	assert_int_equal(inf_forward(f->model, items, 3, logits), 0);
	assert_int_equal(inf_seq_new(f->model, 128, &solo), 0);
	assert_int_equal(
	    inf_prefill(solo, f->prompts[1].ids, f->prompts[1].n, one), 0);
	for (step = 0; step < 24; step++) {
		for (i = 0; i < 3; i++)
			toks[i] = f->prompts[i].greedy[step];
		for (i = 0; i < 3; i++) {
			int32_t best[5];

			top5(logits + i * V, f->vocab, best);
			if (best[0] != f->prompts[i].greedy[step])
				fail_msg("batched seq %d step %d: %d, "
				         "reference %d",
				    i, step, best[0],
				    f->prompts[i].greedy[step]);
		}
		/* the batch's logits for sequence 1 equal its solo run */
		for (i = 0; i < f->vocab; i++)
			assert_float_equal(logits[V + i], one[i], 1e-5);
		assert_int_equal(inf_decode(seqs, toks, 3, logits), 0);
		assert_int_equal(inf_decode(&solo, &toks[1], 1, one), 0);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(inf_seq_length(seqs[i]), f->prompts[i].n + 24);
		inf_seq_free(seqs[i]);
	}
	inf_seq_free(solo);
	free(logits);
	free(one);
}

/* A step above the chunk size (two prompts of 300 tokens) gives the same
 * last logits as each prompt alone; truncating and re-feeding a suffix
 * gives them again. */
static void
test_long_step_and_truncate(void **state)
{
	struct fixture *f = *state;
	size_t V = (size_t)f->vocab;
	int32_t ids[2][300];
	struct inf_seq *a, *b;
	struct inf_batch_item items[2];
	float *both = malloc(2 * V * sizeof(float)), *solo = malloc(V * 4);
	int i, k;

	assert_non_null(both);
	assert_non_null(solo);
	for (i = 0; i < 300; i++) {
		ids[0][i] = f->prompts[0].ids[i % f->prompts[0].n];
		ids[1][i] = (int32_t)((i * 7 + 3) % f->vocab);
	}
	assert_int_equal(inf_seq_new(f->model, 300, &a), 0);
	assert_int_equal(inf_seq_new(f->model, 300, &b), 0);
	items[0] = (struct inf_batch_item){ a, ids[0], 300, INF_LOGITS_LAST };
	items[1] = (struct inf_batch_item){ b, ids[1], 300, INF_LOGITS_LAST };
	assert_int_equal(inf_forward(f->model, items, 2, both), 0);
	assert_int_equal(inf_seq_length(a), 300);
	for (k = 0; k < 2; k++) {
		struct inf_seq *s = k == 0 ? a : b;

		assert_int_equal(inf_seq_truncate(s, 0), 0);
		assert_int_equal(inf_prefill(s, ids[k], 300, solo), 0);
		for (i = 0; i < f->vocab; i++)
			assert_float_equal(both[k * V + i], solo[i], 1e-4);
		/* keep 200, feed the last 100 again */
		assert_int_equal(inf_seq_truncate(s, 200), 0);
		assert_int_equal(inf_prefill(s, ids[k] + 200, 100, solo), 0);
		for (i = 0; i < f->vocab; i++)
			assert_float_equal(both[k * V + i], solo[i], 1e-4);
	}
	/* full: one more token does not fit, and nothing grew */
	assert_int_equal(inf_prefill(a, ids[0], 1, solo), INF_ECONTEXT);
	assert_int_equal(inf_seq_length(a), 300);
	inf_seq_free(a);
	inf_seq_free(b);
	free(both);
	free(solo);
}

static void
test_forward_refusals(void **state)
{
	struct fixture *f = *state;
	struct inf_seq *s, *big;
	struct inf_batch_item items[2];
	int32_t bad = f->vocab, neg = -1, ok[2] = { 1, 2 };
	float *logits = malloc(2 * (size_t)f->vocab * sizeof(float));

	assert_non_null(logits);
	assert_int_equal(inf_seq_new(f->model, -1, &s), INF_EPARAM);
	assert_int_equal(
	    inf_seq_new(f->model,
	        inf_model_info(f->model)->max_position_embeddings + 1, &big),
	    INF_EPARAM);
	assert_null(big);
	assert_int_equal(inf_seq_new(f->model, 4, &s), 0);
	assert_int_equal(inf_seq_capacity(s), 4);
	assert_int_equal(inf_prefill(s, &bad, 1, logits), INF_EPARAM);
	assert_int_equal(inf_prefill(s, &neg, 1, logits), INF_EPARAM);
	assert_int_equal(inf_prefill(s, ok, 0, logits), INF_EPARAM);
	items[0] = (struct inf_batch_item){ s, ok, 1, INF_LOGITS_LAST };
	items[1] = items[0];
	assert_int_equal(inf_forward(f->model, items, 2, logits), INF_EPARAM);
	assert_int_equal(inf_forward(f->model, items, 1, NULL), INF_EPARAM);
	assert_int_equal(inf_seq_length(s), 0);
	assert_int_equal(inf_prefill(s, ok, 2, NULL), 0);
	assert_int_equal(inf_seq_truncate(s, 3), INF_EPARAM);
	assert_int_equal(inf_prefill(s, ok, 2, logits), 0);
	assert_int_equal(inf_decode(&s, ok, 1, logits), INF_ECONTEXT);
	assert_int_equal(inf_seq_length(s), 4);
	inf_seq_free(s);
	free(logits);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_reference, setup_qwen2, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_reference, setup_llama, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_reference_portable, setup_qwen2, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_reference_portable, setup_llama, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batched_decode, setup_qwen2, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_batched_decode, setup_llama, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_long_step_and_truncate, setup_qwen2, fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_forward_refusals, setup_llama, fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
