/*
 * tests/unit/inference/test_pool.c: the CPU backend's thread pool
 * (inference/cpu_pool.c). Every run calls each task index exactly once and
 * returns only after all of them finished, whether the threads meet while
 * spinning (runs back to back), after sleeping (pauses between runs longer
 * than the spin), or with the caller asleep (a worker's task outlasting the
 * spin). Counts are checked after every run, so a lost or doubled task, or
 * a run that returns early, fails at once; a lost wake-up hangs, and
 * tests/run.sh's timeout turns that into a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inference/model_internal.h"

#define THREADS 4

struct run_ctx {
	atomic_int calls[THREADS]; /* per task index */
	atomic_int finished;       /* tasks done in this run */
	int round;
	int slow_index; /* this index sleeps slow_us in its task; -1: none */
	long slow_us;
	int bad_count; /* a task saw a count other than THREADS */
};

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void
task(void *arg, int index, int count)
{
	struct run_ctx *c = arg;

	if (count != THREADS)
		c->bad_count = 1;
	if (index == c->slow_index)
		sleep_us(c->slow_us);
	atomic_fetch_add(&c->calls[index], 1);
	atomic_fetch_add(&c->finished, 1);
}

/* @p runs runs; pause_us between runs; every slow_every-th run has one
 * task (rotating over the indexes) take slow_us. */
static void
drive(struct cpu_pool *p, int runs, long pause_us, int slow_every, long slow_us)
{
	struct run_ctx c;
	int r, i;

	memset(&c, 0, sizeof(c));
	for (i = 0; i < THREADS; i++)
		atomic_init(&c.calls[i], 0);
	atomic_init(&c.finished, 0);
	for (r = 0; r < runs; r++) {
		c.slow_index =
		    slow_every > 0 && r % slow_every == 0 ? r % THREADS : -1;
		c.slow_us = slow_us;
		atomic_store(&c.finished, 0);
		cpu__pool_run(p, task, &c);
		/* everything finished before the run returned */
		if (atomic_load(&c.finished) != THREADS)
			fail_msg("run %d returned with %d of %d tasks done", r,
			    atomic_load(&c.finished), THREADS);
		for (i = 0; i < THREADS; i++)
			if (atomic_load(&c.calls[i]) != r + 1)
				fail_msg("run %d: task %d ran %d times", r, i,
				    atomic_load(&c.calls[i]));
		if (pause_us > 0)
			sleep_us(pause_us);
	}
	assert_int_equal(c.bad_count, 0);
}

static void
test_back_to_back(void **state)
{
	struct cpu_pool *p;

	(void)state;
	assert_int_equal(cpu__pool_new(THREADS, &p), 0);
	assert_int_equal(cpu__pool_size(p), THREADS);
	drive(p, 20000, 0, 0, 0);
	cpu__pool_free(p);
}

/* 200 us between runs is ten times the spin: workers go to sleep and must
 * be woken for every run. */
static void
test_sleeping_workers(void **state)
{
	struct cpu_pool *p;

	(void)state;
	assert_int_equal(cpu__pool_new(THREADS, &p), 0);
	drive(p, 300, 200, 0, 0);
	cpu__pool_free(p);
}

/* A task taking 300 us outlasts the caller's spin: the caller sleeps and
 * the last worker must wake it; index 0 is the caller itself. */
static void
test_sleeping_caller(void **state)
{
	struct cpu_pool *p;

	(void)state;
	assert_int_equal(cpu__pool_new(THREADS, &p), 0);
	drive(p, 400, 0, 2, 300);
	drive(p, 200, 150, 3, 300);
	cpu__pool_free(p);
}

static void
test_one_thread_and_free(void **state)
{
	struct cpu_pool *p;
	struct run_ctx c;

	(void)state;
	/* n < 1 means one: the caller alone, no threads */
	assert_int_equal(cpu__pool_new(0, &p), 0);
	assert_int_equal(cpu__pool_size(p), 1);
	memset(&c, 0, sizeof(c));
	c.slow_index = -1;
	cpu__pool_run(p, task, &c);
	assert_int_equal(atomic_load(&c.calls[0]), 1);
	cpu__pool_free(p);
	/* a pool freed right after it was made, and NULL */
	assert_int_equal(cpu__pool_new(THREADS, &p), 0);
	cpu__pool_free(p);
	cpu__pool_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_back_to_back),
		cmocka_unit_test(test_sleeping_workers),
		cmocka_unit_test(test_sleeping_caller),
		cmocka_unit_test(test_one_thread_and_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
