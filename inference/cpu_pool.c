/*
 * inference/cpu_pool.c: the CPU backend's small persistent thread pool.
 * The calling thread runs task 0 and n-1 workers run the others; a task
 * returns only when all have finished, so the forward pass can hand out
 * matrix rows per step without creating threads. It must never run a task
 * twice or return before every worker is done with the caller's context.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "inference/model_internal.h"

struct cpu_pool {
	pthread_mutex_t lock;
	pthread_cond_t go, done;
	pthread_t *threads;
	int n;          /* tasks per run, caller included */
	int started;    /* workers created */
	uint64_t round; /* bumped per run; workers wait for a new one */
	int pending;    /* workers still running this round */
	int stop;
	cpu_task_fn *fn;
	void *ctx;
};

struct cpu_worker_arg {
	struct cpu_pool *pool;
	int index;
};

static void *
cpu_worker(void *arg)
{
	struct cpu_worker_arg *wa = arg;
	struct cpu_pool *p = wa->pool;
	int index = wa->index;
	uint64_t seen = 0;

	free(wa);
	sr_log_thread_tag("inf-cpu");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->round == seen && !p->stop)
			pthread_cond_wait(&p->go, &p->lock);
		if (p->stop)
			break;
		seen = p->round;
		pthread_mutex_unlock(&p->lock);
		p->fn(p->ctx, index, p->n);
		pthread_mutex_lock(&p->lock);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
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
	p->stop = 1;
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

void
cpu__pool_run(struct cpu_pool *p, cpu_task_fn *fn, void *ctx)
{
	if (p->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->ctx = ctx;
	p->pending = p->n - 1;
	p->round++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->lock);
	fn(ctx, 0, p->n);
	pthread_mutex_lock(&p->lock);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->lock);
	pthread_mutex_unlock(&p->lock);
}
