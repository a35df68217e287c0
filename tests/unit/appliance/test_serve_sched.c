/*
 * tests/unit/appliance/test_serve_sched.c: the continuous-batching
 * scheduler (appliance/serve_sched.c) on the real tiny-qwen2 model: a
 * request's tokens equal inf_generate()'s for the same prompt; 40
 * requests of different lengths, greedy and seeded, submitted together
 * and staggered, each get exactly their solo tokens; a cancelled request
 * leaves within a step and frees its KV memory; stop strings cut the
 * text; the queue bound, the KV budget and the context are enforced, and
 * sched_room() gives a request without max_tokens what both leave; a
 * waiting request that is cancelled or released leaves the queue at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/serve_impl.h"

#define FIXTURE "tests/fixtures/tiny-qwen2"

struct fx {
	struct inf_model *m;
	struct inf_tok *tok;
	struct serve_metrics mx;
	struct sched *s;
	struct inf_tok_ids prompt;
};

static struct sched_opts
opts(void)
{
	return (struct sched_opts){ .max_batch = 32,
		.batch_wait_ms = 50,
		.queue_max = 256,
		.kv_budget_bytes = 1ull << 30,
		.prefill_tokens = 4096 };
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[INF_ERR_MAX];
	struct sched_opts o = opts();
	static const char text[] =
	    "The strongroom keeps its keys in a hardware module, and the "
	    "model answers questions about them.";

	assert_non_null(f);
	if (inf_model_open(FIXTURE, NULL, &f->m, err) != 0)
		fail_msg("%s", err);
	if (inf_tok_load(FIXTURE, &f->tok, err) != 0)
		fail_msg("%s", err);
	inf_tok_ids_init(&f->prompt);
	assert_int_equal(inf_tok_encode(f->tok, text, strlen(text),
	                     INF_TOK_ADD_BOS, &f->prompt),
	    0);
	assert_int_equal(sched_start(f->m, f->tok, &o, &f->mx, &f->s), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	sched_stop(f->s);
	inf_tok_ids_free(&f->prompt);
	inf_tok_free(f->tok);
	inf_model_close(f->m);
	free(f);
	return 0;
}

/* What the engine alone makes for the prompt's first n ids. */
static int
solo(struct fx *f, int n, const struct inf_sampling *sp, int max_tokens,
    int32_t *out)
{
	struct inf_stop st = { .max_tokens = max_tokens };
	struct inf_seq *seq;
	enum inf_finish fin;
	int n_out = 0;

	assert_int_equal(inf_seq_new(f->m, n + max_tokens, &seq), 0);
	assert_int_equal(inf_generate(seq, f->prompt.ids, n, sp, &st, NULL,
	                     NULL, out, max_tokens, &n_out, &fin),
	    0);
	inf_seq_free(seq);
	return n_out;
}

static struct sched_seq *
submit(struct fx *f, int n, const struct inf_sampling *sp, int max_tokens,
    const char *stop)
{
	struct sched_req r = { .prompt = f->prompt.ids,
		.n_prompt = n,
		.sampling = *sp,
		.max_tokens = max_tokens,
		.stop = &stop,
		.n_stop = stop != NULL };
	struct sched_seq *q;
	int rc = sched_submit(f->s, &r, &q);

	if (rc != 0)
		fail_msg("submit: %d", rc);
	return q;
}

/* Wait for the end; the text made is in @p text. */
static struct sched_progress
wait_end(struct sched_seq *q, struct inf_tok_text *text)
{
	struct sched_progress pr;
	int i;

	for (i = 0; i < 60000; i++) {
		assert_int_equal(sched_seq_take(q, text, &pr), 0);
		if (pr.finish != SCHED_RUNNING)
			return pr;
		usleep(1000);
	}
	fail_msg("the sequence never finished");
	return pr;
}

static void
test_equals_generate(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_tok_text text, want;
	struct sched_progress pr;
	const int32_t *ids;
	int32_t ref[48];
	int n_ref, n;
	struct sched_seq *q;

	inf_sampling_defaults(&sp);
	n_ref = solo(f, (int)f->prompt.len, &sp, 48, ref);
	inf_tok_text_init(&text);
	inf_tok_text_init(&want);
	q = submit(f, (int)f->prompt.len, &sp, 48, NULL);
	pr = wait_end(q, &text);
	n = sched_seq_ids(q, &ids);
	assert_int_equal(n, n_ref);
	assert_int_equal(pr.n_tokens, n_ref);
	assert_memory_equal(ids, ref, (size_t)n * sizeof(int32_t));
	assert_int_equal(pr.finish, n_ref == 48 ? SCHED_LENGTH : SCHED_STOP);
	/* The streamed text is the whole decode of the same ids. */
	assert_int_equal(
	    inf_tok_decode(f->tok, ref, (size_t)n_ref, 0, &want), 0);
	assert_int_equal(text.len, want.len);
	assert_memory_equal(text.text, want.text, want.len);
	sched_seq_release(q);
	inf_tok_text_free(&text);
	inf_tok_text_free(&want);
}

#define MANY 40

static void
test_many_concurrent(void **state)
{
	struct fx *f = *state;
	struct sched_seq *q[MANY];
	struct inf_sampling sp[MANY];
	int32_t ref[MANY][40];
	int n_ref[MANY], i, n, len[MANY], max[MANY];
	const int32_t *ids;
	struct inf_tok_text text;
	unsigned long long steps0 = atomic_load(&f->mx.steps),
	                   tokens0 = atomic_load(&f->mx.batch_sum);

	for (i = 0; i < MANY; i++) {
		inf_sampling_defaults(&sp[i]);
		if (i % 3 == 1) { /* seeded sampling must batch alike too */
			sp[i].temperature = 0.9f;
			sp[i].top_p = 0.95f;
			sp[i].seed = 1000u + (uint64_t)i;
		}
		if (i % 5 == 2)
			sp[i].frequency_penalty = 0.5f;
		len[i] = 3 + (i * 7) % ((int)f->prompt.len - 3);
		max[i] = 8 + (i * 13) % 32;
		n_ref[i] = solo(f, len[i], &sp[i], max[i], ref[i]);
	}
	for (i = 0; i < MANY; i++) {
		q[i] = submit(f, len[i], &sp[i], max[i], NULL);
		if (i % 8 == 7)
			usleep(3000); /* some join a batch already running */
	}
	inf_tok_text_init(&text);
	for (i = 0; i < MANY; i++) {
		wait_end(q[i], &text);
		n = sched_seq_ids(q[i], &ids);
		assert_int_equal(n, n_ref[i]);
		assert_memory_equal(ids, ref[i], (size_t)n * sizeof(int32_t));
		sched_seq_release(q[i]);
	}
	inf_tok_text_free(&text);
	/* Batched: far fewer steps than sequences times tokens. */
	assert_true(atomic_load(&f->mx.batch_sum) - tokens0 >
	    2 * (atomic_load(&f->mx.steps) - steps0));
	assert_int_equal(atomic_load(&f->mx.running), 0);
	assert_int_equal(atomic_load(&f->mx.kv_used), 0);
}

static void
test_cancel_frees(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_tok_text text;
	struct sched_progress pr;
	struct sched_seq *q;
	int i;

	inf_sampling_defaults(&sp);
	inf_tok_text_init(&text);
	q = submit(f, (int)f->prompt.len, &sp, 400, NULL);
	for (i = 0; i < 5000; i++) {
		sched_seq_take(q, &text, &pr);
		if (pr.n_tokens >= 2)
			break;
		usleep(1000);
	}
	assert_true(pr.n_tokens >= 2);
	assert_true(atomic_load(&f->mx.kv_used) > 0);
	sched_seq_cancel(q);
	pr = wait_end(q, &text);
	assert_int_equal(pr.finish, SCHED_ABORT);
	assert_true(pr.n_tokens < 400);
	for (i = 0; i < 1000 && atomic_load(&f->mx.kv_used) != 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&f->mx.kv_used), 0);
	assert_int_equal(atomic_load(&f->mx.running), 0);
	assert_true(atomic_load(&f->mx.finished[2]) >= 1);
	/* Released without waiting: the scheduler lets go on its own. */
	sched_seq_release(q);
	q = submit(f, (int)f->prompt.len, &sp, 300, NULL);
	sched_seq_release(q);
	for (i = 0; i < 2000 &&
	     (atomic_load(&f->mx.kv_used) != 0 ||
	         atomic_load(&f->mx.running) != 0);
	     i++)
		usleep(1000);
	assert_int_equal(atomic_load(&f->mx.kv_used), 0);
	inf_tok_text_free(&text);
}

static void
test_stop_string(void **state)
{
	struct fx *f = *state;
	struct inf_sampling sp;
	struct inf_tok_text text, whole;
	struct sched_progress pr;
	struct sched_seq *q;
	int32_t ref[32];
	int n;
	char stop[8];

	inf_sampling_defaults(&sp);
	n = solo(f, (int)f->prompt.len, &sp, 32, ref);
	inf_tok_text_init(&whole);
	inf_tok_text_init(&text);
	inf_tok_decode(f->tok, ref, (size_t)n, 0, &whole);
	assert_true(whole.len > 12);
	/* Three bytes from the middle (ASCII there or not, a byte string). */
	memcpy(stop, whole.text + whole.len / 2, 3);
	stop[3] = '\0';
	q = submit(f, (int)f->prompt.len, &sp, 32, stop);
	pr = wait_end(q, &text);
	assert_int_equal(pr.finish, SCHED_STOP);
	assert_non_null(strstr(whole.text, stop));
	assert_int_equal(
	    text.len, (size_t)(strstr(whole.text, stop) - whole.text));
	assert_memory_equal(text.text, whole.text, text.len);
	sched_seq_release(q);
	inf_tok_text_free(&text);
	inf_tok_text_free(&whole);
}

static void
test_limits(void **state)
{
	struct fx *f = *state;
	struct sched_opts o = opts();
	struct inf_sampling sp;
	struct sched_req r = { 0 };
	struct sched *small;
	struct sched_seq *q[4];
	uint64_t per = sched_kv_bytes_per_token(f->m);
	int i;

	inf_sampling_defaults(&sp);
	r.prompt = f->prompt.ids;
	r.n_prompt = (int)f->prompt.len;
	r.sampling = sp;
	/* Past the 512-token context. */
	r.max_tokens = 510;
	assert_int_equal(sched_submit(f->s, &r, &q[0]), INF_ECONTEXT);
	/* Room for one request of 300 tokens, and a queue of two. */
	o.kv_budget_bytes = per * 320;
	o.queue_max = 2;
	assert_int_equal(sched_start(f->m, f->tok, &o, &f->mx, &small), 0);
	r.max_tokens = 400;
	assert_int_equal(sched_submit(small, &r, &q[0]), -E2BIG);
	r.max_tokens = 300 - r.n_prompt;
	assert_int_equal(sched_submit(small, &r, &q[0]), 0);
	for (i = 0; i < 2000 && atomic_load(&f->mx.running) == 0; i++)
		usleep(1000);
	assert_int_equal(sched_submit(small, &r, &q[1]), 0);
	assert_int_equal(sched_submit(small, &r, &q[2]), 0);
	assert_int_equal(sched_submit(small, &r, &q[3]), -EAGAIN);
	r.max_tokens = 0;
	assert_int_equal(sched_submit(small, &r, &q[3]), INF_EPARAM);
	/* The room a request without max_tokens gets: what the KV budget
	 * (320 tokens) leaves here, the context (512) on the large budget;
	 * it is always admitted, one more is not. */
	assert_int_equal(sched_room(small, r.n_prompt), 320 - r.n_prompt);
	assert_int_equal(sched_room(f->s, r.n_prompt), 512 - r.n_prompt);
	assert_int_equal(sched_room(small, 320), 0);
	assert_int_equal(sched_room(small, 400), 0);
	r.max_tokens = sched_room(small, r.n_prompt) + 1;
	assert_int_equal(sched_submit(small, &r, &q[3]), -E2BIG);
	/* Stopping ends the running and the waiting alike. */
	sched_stop(small);
	for (i = 0; i < 3; i++) {
		struct inf_tok_text t;
		struct sched_progress pr;

		inf_tok_text_init(&t);
		sched_seq_take(q[i], &t, &pr);
		assert_int_not_equal(pr.finish, SCHED_RUNNING);
		sched_seq_release(q[i]);
		inf_tok_text_free(&t);
	}
}

/* A notify that holds the scheduler thread in its step until opened, so
 * that the waiting queue stays as the test makes it. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int entered, open;
};

static void
gate_notify(void *arg)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->mu);
	g->entered = 1;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
test_cancel_waiting(void **state)
{
	struct fx *f = *state;
	struct sched_opts o = opts();
	struct gate g = { .mu = PTHREAD_MUTEX_INITIALIZER,
		.cv = PTHREAD_COND_INITIALIZER };
	struct sched_req r = { 0 };
	struct sched_progress pr;
	struct inf_tok_text t;
	struct sched *small;
	struct sched_seq *run, *q[4], *extra;
	uint64_t per = sched_kv_bytes_per_token(f->m);
	int running, waiting, i;

	/* Room for one request of 300 tokens, and a queue of two. */
	o.kv_budget_bytes = per * 320;
	o.queue_max = 2;
	assert_int_equal(sched_start(f->m, f->tok, &o, &f->mx, &small), 0);
	inf_tok_text_init(&t);
	inf_sampling_defaults(&r.sampling);
	r.prompt = f->prompt.ids;
	r.n_prompt = (int)f->prompt.len;
	r.max_tokens = 300 - r.n_prompt;
	r.notify = gate_notify;
	r.notify_arg = &g;
	assert_int_equal(sched_submit(small, &r, &run), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.entered)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	/* It runs and holds the budget; two wait behind it, a third is
	 * refused. */
	r.notify = NULL;
	assert_int_equal(sched_submit(small, &r, &q[0]), 0);
	assert_int_equal(sched_submit(small, &r, &q[1]), 0);
	assert_int_equal(sched_submit(small, &r, &extra), -EAGAIN);
	sched_load(small, &running, &waiting);
	assert_int_equal(running, 1);
	assert_int_equal(waiting, 2);
	/* The second waiter's client goes: it ends and leaves the queue at
	 * once, though the head cannot be admitted; a new request is taken. */
	sched_seq_cancel(q[1]);
	assert_int_equal(sched_seq_take(q[1], &t, &pr), 0);
	assert_int_equal(pr.finish, SCHED_ABORT);
	assert_int_equal(pr.n_tokens, 0);
	sched_load(small, &running, &waiting);
	assert_int_equal(waiting, 1);
	assert_int_equal(atomic_load(&f->mx.waiting), 1);
	assert_int_equal(sched_submit(small, &r, &q[2]), 0);
	assert_int_equal(sched_submit(small, &r, &extra), -EAGAIN);
	/* The head's client goes without waiting (released): the same. */
	sched_seq_release(q[0]);
	sched_load(small, &running, &waiting);
	assert_int_equal(waiting, 1);
	assert_int_equal(sched_submit(small, &r, &q[3]), 0);
	sched_load(small, &running, &waiting);
	assert_int_equal(waiting, 2);
	/* The rest run once the first has ended. */
	sched_seq_cancel(run);
	pthread_mutex_lock(&g.mu);
	g.open = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	wait_end(run, &t);
	sched_seq_release(run);
	sched_seq_release(q[1]);
	for (i = 2; i < 4; i++) {
		assert_int_not_equal(wait_end(q[i], &t).finish, SCHED_ABORT);
		sched_seq_release(q[i]);
	}
	sched_load(small, &running, &waiting);
	assert_int_equal(waiting, 0);
	sched_stop(small);
	inf_tok_text_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_equals_generate, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_many_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cancel_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stop_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cancel_waiting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
