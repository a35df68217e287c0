/*
 * inference/cpu_pool.c: the CPU backend's small persistent thread pool.
 * The calling thread runs task 0 and n-1 workers run the others; a run
 * returns only when all have finished, so the forward pass can hand out
 * matrix rows per step without creating threads. It must never run a task
 * twice or return before every worker is done with the caller's context.
 *
 * A decode step makes about five runs per layer, each a few microseconds
 * to a millisecond long, so waking sleeping threads through a condition
 * variable every time (a futex call and a scheduler round trip each way)
 * costs more than the work on small models. Both sides therefore spin on
 * atomics for a bounded time first and sleep only when nothing comes:
 * a worker waits for the next round, the caller for the last worker.
 * After the first few polls the spin yields the core between polls: on a
 * machine shared with other work, a pure spin holds the core the other
 * side of the pool needs to finish (measured: ten times slower). The
 * sleeping side announces itself (sleepers, caller_sleeping) before it
 * checks the condition under the lock, and the waking side checks for it
 * after it changed the condition, both sequentially consistent, so at
 * least one of them sees the other and no wake-up is lost.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sched.h>
#include <time.h>

#include "inference/model_internal.h"

/* How long a thread spins before it sleeps (20 us): long enough to cover
 * the serial code between two runs of one step (norms, RoPE, the
 * residual), short enough that idle workers leave the cores to others
 * (100 us measured slower on a shared machine). */
#define SPIN_NS 20000L
#define SPIN_CHECK 64 /* polls between two looks at the clock */

struct cpu_pool {
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	pthread_t *threads;
	int n;                  /* tasks per run, caller included */
	int started;            /* workers created */
	_Atomic uint64_t round; /* bumped per run; workers wait for a new one */
	atomic_int pending;     /* workers still running this round */
	atomic_int sleepers;    /* workers asleep (or about to be) on go */
	atomic_int caller_sleeping; /* the caller asleep on done */
	atomic_int stop;
	cpu_task_fn *fn; /* written before round is bumped */
	void *ctx;
};

struct cpu_worker_arg {
	struct cpu_pool *pool;
	int index;
};

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spin until round differs from seen (or stop); 1 if it came in time. */
static int
spin_for_round(struct cpu_pool *p, uint64_t seen)
{
	long deadline = 0;
	int i;

	for (;;) {
		for (i = 0; i < SPIN_CHECK; i++) {
			if (atomic_load_explicit(
			        &p->round, memory_order_acquire) != seen ||
			    atomic_load_explicit(
			        &p->stop, memory_order_relaxed))
				return 1;
			cpu_relax();
		}
		if (deadline == 0)
			deadline = now_ns() + SPIN_NS;
		else if (now_ns() > deadline)
			return 0;
		else
			sched_yield();
	}
}

static void *
cpu_worker(void *arg)
{
	struct cpu_worker_arg *wa = arg;
	struct cpu_pool *p = wa->pool;
	int index = wa->index;
	uint64_t seen = 0;

	free(wa);
	sr_log_thread_tag("inf-cpu");
	for (;;) {
		if (!spin_for_round(p, seen)) {
			pthread_mutex_lock(&p->lock);
			atomic_fetch_add(&p->sleepers, 1);
			while (atomic_load(&p->round) == seen &&
			    !atomic_load(&p->stop))
				pthread_cond_wait(&p->go, &p->lock);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->lock);
		}
		if (atomic_load(&p->stop))
			break;
		seen = atomic_load_explicit(&p->round, memory_order_acquire);
		p->fn(p->ctx, index, p->n);
		if (atomic_fetch_sub(&p->pending, 1) == 1 &&
		    atomic_load(&p->caller_sleeping)) {
			pthread_mutex_lock(&p->lock);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->lock);
		}
	}
	return NULL;
}

int
cpu__pool_new(int n, struct cpu_pool **out)
{
	struct cpu_pool *p;
	struct cpu_worker_arg *wa;
	int i;

	*out = NULL;
	if (n < 1)
		n = 1;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->threads = calloc((size_t)n, sizeof(p->threads[0]));
	if (p->threads == NULL) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	atomic_init(&p->round, 0);
	atomic_init(&p->pending, 0);
	atomic_init(&p->sleepers, 0);
	atomic_init(&p->caller_sleeping, 0);
	atomic_init(&p->stop, 0);
	p->n = n;
	for (i = 1; i < n; i++) {
		wa = malloc(sizeof(*wa));
		if (wa == NULL)
			break;
		wa->pool = p;
		wa->index = i;
		if (pthread_create(&p->threads[i], NULL, cpu_worker, wa) != 0) {
			free(wa);
			break;
		}
		p->started++;
	}
	if (p->started != n - 1) {
		cpu__pool_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void
cpu__pool_free(struct cpu_pool *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->lock);
	for (i = 1; i <= p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}

int
cpu__pool_size(const struct cpu_pool *p)
{
	return p->n;
}

/* Spin until every worker is done; 1 if they were in time. */
static int
spin_for_workers(struct cpu_pool *p)
{
	long deadline = 0;
	int i;

	for (;;) {
		for (i = 0; i < SPIN_CHECK; i++) {
			if (atomic_load_explicit(
			        &p->pending, memory_order_acquire) == 0)
				return 1;
			cpu_relax();
		}
		if (deadline == 0)
			deadline = now_ns() + SPIN_NS;
		else if (now_ns() > deadline)
			return 0;
		else
			sched_yield();
	}
}

void
cpu__pool_run(struct cpu_pool *p, cpu_task_fn *fn, void *ctx)
{
	if (p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	p->fn = fn;
	p->ctx = ctx;
	atomic_store(&p->pending, p->n - 1);
	atomic_fetch_add(&p->round, 1); /* publishes fn and ctx */
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->lock);
		pthread_cond_broadcast(&p->go);
		pthread_mutex_unlock(&p->lock);
	}
	fn(ctx, 0, p->n);
	if (spin_for_workers(p))
		return;
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->caller_sleeping, 1);
	while (atomic_load(&p->pending) > 0)
		pthread_cond_wait(&p->done, &p->lock);
	atomic_store(&p->caller_sleeping, 0);
	pthread_mutex_unlock(&p->lock);
}
