/*
 * tests/unit/inference/test_generate.c: inference/generate.c on the
 * tiny-qwen2 fixture, whose greedy output for its first prompt is known
 * (reference.json's greedy_24): stopping on an EOS id, on a stop token
 * sequence (left out of the output), on the caller's check with its drop,
 * on max_tokens, on a full sequence, on the streaming callback; several
 * generations stepped together each stopping at its own point; seeded
 * sampling reproducible through the whole loop; and argument refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "inference/inference.h"

struct fx {
	struct inf_model *m;
	int32_t prompt[64];
	int n;
	int32_t greedy[24];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[INF_ERR_MAX];
	yyjson_doc *doc;
	yyjson_val *p, *a;
	size_t i;

	assert_non_null(f);
	if (inf_model_open("tests/fixtures/tiny-qwen2", NULL, &f->m, err) != 0)
		fail_msg("%s", err);
	doc = yyjson_read_file(
	    "tests/fixtures/tiny-qwen2/reference.json", 0, NULL, NULL);
	assert_non_null(doc);
	p = yyjson_arr_get(
	    yyjson_obj_get(yyjson_doc_get_root(doc), "prompts"), 0);
	a = yyjson_obj_get(p, "input_ids_with_bos");
	f->n = (int)yyjson_arr_size(a);
	for (i = 0; i < (size_t)f->n; i++)
		f->prompt[i] = (int32_t)yyjson_get_sint(yyjson_arr_get(a, i));
	a = yyjson_obj_get(p, "greedy_24");
	for (i = 0; i < 24; i++)
		f->greedy[i] = (int32_t)yyjson_get_sint(yyjson_arr_get(a, i));
	yyjson_doc_free(doc);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	inf_model_close(f->m);
	free(f);
	return 0;
}

/* Run one generation; returns the tokens shown. */
static int
run(struct fx *f, const struct inf_sampling *sp, const struct inf_stop *st,
    int capacity, int32_t *out, enum inf_finish *fin)
{
	struct inf_seq *s;
	int n = -1;

	assert_int_equal(inf_seq_new(f->m, capacity, &s), 0);
	assert_int_equal(inf_generate(s, f->prompt, f->n, sp, st, NULL, NULL,
	                     out, 24, &n, fin),
	    0);
	inf_seq_free(s);
	return n;
}

static int
check_four(const int32_t *ids, int n, int *drop, void *arg)
{
	(void)ids;
	(void)arg;
	*drop = 1;
	return n == 4;
}

static int
cb_two(const int32_t *ids, int n, void *arg)
{
	int *calls = arg;

	(void)ids;
	(*calls)++;
	return n == 2;
}

static void
test_stop_conditions(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_stop st = { 0 };
	enum inf_finish fin;
	int32_t out[24], eos, seq[2];
	const int32_t *seqs[1] = { seq };
	int lens[1] = { 2 }, n, calls = 0;
	struct inf_seq *s;

	inf_sampling_defaults(&sp);
	st.max_tokens = 24;
	/* EOS: the sixth greedy token as the only EOS id */
	eos = f->greedy[5];
	st.eos_ids = &eos;
	st.n_eos = 1;
	n = run(f, &sp, &st, 0, out, &fin);
	assert_int_equal(fin, INF_FINISH_EOS);
	assert_true(n <= 5);
	assert_memory_equal(out, f->greedy, (size_t)n * sizeof(int32_t));
	/* ignore_eos runs to max_tokens */
	st.ignore_eos = 1;
	st.max_tokens = 7;
	n = run(f, &sp, &st, 0, out, &fin);
	assert_int_equal(fin, INF_FINISH_LENGTH);
	assert_int_equal(n, 7);
	assert_memory_equal(out, f->greedy, 7 * sizeof(int32_t));
	/* a stop sequence: tokens 9 and 10 end it and are not shown */
	st.max_tokens = 24;
	seq[0] = f->greedy[9];
	seq[1] = f->greedy[10];
	st.stop_seqs = seqs;
	st.stop_lens = lens;
	st.n_stop_seqs = 1;
	n = run(f, &sp, &st, 0, out, &fin);
	assert_int_equal(fin, INF_FINISH_STOP);
	assert_true(n <= 9);
	assert_memory_equal(out, f->greedy, (size_t)n * sizeof(int32_t));
	/* the caller's check stops at 4 and drops the last */
	st.n_stop_seqs = 0;
	st.check = check_four;
	n = run(f, &sp, &st, 0, out, &fin);
	assert_int_equal(fin, INF_FINISH_STOP);
	assert_int_equal(n, 3);
	/* a full sequence: room for the prompt and 3 more */
	st.check = NULL;
	n = run(f, &sp, &st, f->n + 3, out, &fin);
	assert_int_equal(fin, INF_FINISH_LENGTH);
	assert_int_equal(n, 4);
	assert_memory_equal(out, f->greedy, 4 * sizeof(int32_t));
	/* the streaming callback sees each token and can stop */
	assert_int_equal(inf_seq_new(f->m, 0, &s), 0);
	assert_int_equal(inf_generate(s, f->prompt, f->n, &sp, &st, cb_two,
	                     &calls, out, 24, &n, &fin),
	    0);
	assert_int_equal(fin, INF_FINISH_STOP);
	assert_int_equal(n, 2);
	assert_int_equal(calls, 2);
	inf_seq_free(s);
}

/* Three generations stepped together, stopping at 3, 24 and 10 tokens,
 * each equal to the lone greedy run. */
static void
test_batched_generations(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_stop st[3] = { { 0 } };
	struct inf_seq *s[3];
	struct inf_gen *g[3];
	const int32_t *ids;
	int i, steps = 0, max[3] = { 3, 24, 10 };

	inf_sampling_defaults(&sp);
	for (i = 0; i < 3; i++) {
		st[i].max_tokens = max[i];
		st[i].ignore_eos = 1;
		assert_int_equal(inf_seq_new(f->m, 64, &s[i]), 0);
		assert_int_equal(
		    inf_gen_start(s[i], f->prompt, f->n, &sp, &st[i], &g[i]),
		    0);
	}
	while (inf_gen_finish(g[1]) == INF_FINISH_NONE) {
		assert_int_equal(inf_gen_step(g, 3), 0);
		steps++;
	}
	assert_int_equal(steps, 23);
	for (i = 0; i < 3; i++) {
		assert_int_equal(inf_gen_finish(g[i]), INF_FINISH_LENGTH);
		assert_int_equal(inf_gen_output(g[i], &ids), max[i]);
		assert_memory_equal(
		    ids, f->greedy, (size_t)max[i] * sizeof(int32_t));
		/* a finished generation's sequence did not move on */
		assert_int_equal(inf_seq_length(s[i]), f->n + max[i] - 1);
	}
	/* stepping only finished generations is a no-op */
	assert_int_equal(inf_gen_step(g, 3), 0);
	for (i = 0; i < 3; i++) {
		inf_gen_free(g[i]);
		inf_seq_free(s[i]);
	}
}

static void
test_seeded_generation(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_stop st = { 0 };
	enum inf_finish fin;
	int32_t a[24], b[24], c[24];
	int na, nb, nc;

	inf_sampling_defaults(&sp);
	sp.temperature = 1.0f;
	sp.top_p = 0.95f;
	sp.seed = 2024;
	st.max_tokens = 24;
	st.ignore_eos = 1;
	na = run(f, &sp, &st, 0, a, &fin);
	nb = run(f, &sp, &st, 0, b, &fin);
	sp.seed = 2025;
	nc = run(f, &sp, &st, 0, c, &fin);
	assert_int_equal(na, 24);
	assert_int_equal(nb, 24);
	assert_int_equal(nc, 24);
	assert_memory_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, c, sizeof(a));
}

static void
test_refusals(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_stop st = { 0 };
	struct inf_seq *s;
	struct inf_gen *g;

	inf_sampling_defaults(&sp);
	assert_int_equal(inf_seq_new(f->m, 8, &s), 0);
	assert_int_equal(inf_gen_start(s, f->prompt, f->n, &sp, &st, &g),
	    INF_EPARAM); /* max_tokens 0 */
	assert_null(g);
	st.max_tokens = 4;
	assert_int_equal(
	    inf_gen_start(s, f->prompt, 0, &sp, &st, &g), INF_EPARAM);
	assert_int_equal(
	    inf_gen_start(s, f->prompt, 9, &sp, &st, &g), INF_ECONTEXT);
	sp.top_p = 0;
	assert_int_equal(
	    inf_gen_start(s, f->prompt, 2, &sp, &st, &g), INF_EPARAM);
	assert_int_equal(inf_seq_length(s), 0);
	inf_seq_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_conditions),
		cmocka_unit_test(test_batched_generations),
		cmocka_unit_test(test_seeded_generation),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
