/*
 * appliance/pending.c: requests answered after work off the loop. A
 * handler that needs the HSM, an LMDB write, a password hash or the audit
 * writer's acknowledgement takes an app_pending; its steps run on the
 * connection's loop, between them the work runs on libuv's worker threads
 * or on whichever thread posts the next step (the audit writer).
 *
 * It must never run a step on any thread but the connection's loop, never
 * free a connection while one of its requests is pending (the pending
 * request holds it), and never lose a step: a connection that closes
 * meanwhile still sees its last step, with no place to answer.
 */
#include <errno.h>
#include <stdlib.h>

#include "appliance/conn.h"
#include "appliance/internal.h"

struct app_pending {
	struct app_pending *next; /* the loop's posted queue */
	struct conn *c;
	app_step_fn step;
	void *arg;
	void (*work)(void *arg);
	uv_work_t w;
	enum metric_route route;
	uint64_t t0_ns;
	int keep_alive;
};

struct app_pending *
app_pending_new(struct route_ctx *ctx, app_step_fn step, void *arg)
{
	struct conn *c = ctx->conn;
	struct app_pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->c = c;
	p->step = step;
	p->arg = arg;
	p->route = ctx->route;
	p->t0_ns = ctx->t0_ns;
	p->keep_alive = ctx->keep_alive;
	p->w.data = p;
	c->pending = p;
	c->handles++; /* held until the last step */
	c->l->npending++;
	ctx->pending = p;
	return p;
}

static void
pending_end(struct app_pending *p)
{
	struct conn *c = p->c;
	struct app_loop *l = c->l;

	c->pending = NULL;
	l->npending--;
	free(p);
	conn_release(c);
	if (atomic_load(&l->app->draining))
		loop_finish(l);
}

static void
run_step(struct app_pending *p)
{
	struct conn *c = p->c;
	int status;

	if (c->state == C_CLOSING) {
		p->step(p, p->arg, NULL, NULL);
		pending_end(p);
		return;
	}
	status = p->step(p, p->arg, &c->out, &p->keep_alive);
	if (status == ROUTE_PENDING)
		return;
	conn_answered(c, p->route, status, p->t0_ns, p->keep_alive);
	pending_end(p);
	if (c->state != C_CLOSING)
		conn_resume(c);
}

static void
on_work(uv_work_t *w)
{
	struct app_pending *p = w->data;

	p->work(p->arg);
}

static void
on_work_done(uv_work_t *w, int status)
{
	(void)status; /* never cancelled: uv_cancel is not used */
	run_step(w->data);
}

int
app_pending_work(struct app_pending *p, void (*work)(void *arg))
{
	p->work = work;
	return uv_queue_work(&p->c->l->loop, &p->w, on_work, on_work_done);
}

void
app_pending_post(struct app_pending *p)
{
	struct app_loop *l = p->c->l;

	p->next = NULL;
	pthread_mutex_lock(&l->posted_mu);
	if (l->posted_tail != NULL)
		l->posted_tail->next = p;
	else
		l->posted_head = p;
	l->posted_tail = p;
	/* Sent under the lock: the loop cannot close the handle between
	 * the queueing and the send (it closes only with nothing pending,
	 * and this request is pending). */
	uv_async_send(&l->posted);
	pthread_mutex_unlock(&l->posted_mu);
}

static void
on_posted(uv_async_t *a)
{
	struct app_loop *l = a->data;
	struct app_pending *p, *next;

	pthread_mutex_lock(&l->posted_mu);
	p = l->posted_head;
	l->posted_head = l->posted_tail = NULL;
	pthread_mutex_unlock(&l->posted_mu);
	for (; p != NULL; p = next) {
		next = p->next;
		run_step(p);
	}
}

int
pending_loop_init(struct app_loop *l)
{
	int rc = -pthread_mutex_init(&l->posted_mu, NULL);

	if (rc != 0)
		return rc;
	l->posted.data = l;
	return uv_async_init(&l->loop, &l->posted, on_posted);
}

static void
on_posted_closed(uv_handle_t *h)
{
	struct app_loop *l = h->data;

	pthread_mutex_destroy(&l->posted_mu);
}

void
pending_loop_close(struct app_loop *l)
{
	uv_close((uv_handle_t *)&l->posted, on_posted_closed);
}
