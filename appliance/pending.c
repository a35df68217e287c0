/*
 * appliance/pending.c: requests answered after work off the loop. A
 * handler that needs the HSM, an LMDB write, a password hash, the audit
 * writer's acknowledgement or the inference scheduler takes an
 * app_pending; its steps run on the connection's loop, between them the
 * work runs on libuv's worker threads or on whichever thread posts the
 * next step. A step may also stream: send part of the answer and wait for
 * the next post (Server-Sent Events of generated tokens).
 *
 * It must never run a step on any thread but the connection's loop, never
 * free a connection while one of its requests is pending (the pending
 * request holds it), never free a pending request another thread still
 * holds (app_pending_hold), and never lose a step: a connection that
 * closes meanwhile still sees its last step, with no place to answer.
 */
#include <errno.h>
#include <stdlib.h>

#include "appliance/conn.h"
#include "appliance/internal.h"

struct app_pending {
	struct app_pending *next; /* the loop's posted queue */
	struct app_loop *l;
	struct conn *c; /* NULL once the request has ended */
	app_step_fn step;
	void *arg;
	void (*work)(void *arg);
	void (*on_close)(void *arg);
	uv_work_t w;
	enum metric_route route;
	uint64_t t0_ns;
	int keep_alive;
	struct http_fit fit; /* HEAD: head only */
	unsigned deadline_ms;
	/* under l->posted_mu: */
	int queued;     /* in the posted queue */
	unsigned holds; /* other threads that will still post */
	int ended;      /* answered or abandoned; freed at the last hold */
};

struct app_pending *
app_pending_new(struct route_ctx *ctx, app_step_fn step, void *arg)
{
	struct conn *c = ctx->conn;
	struct app_pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->l = c->l;
	p->c = c;
	p->step = step;
	p->arg = arg;
	p->route = ctx->route;
	p->t0_ns = ctx->t0_ns;
	p->keep_alive = ctx->keep_alive;
	p->fit.head = ctx->req->head;
	p->deadline_ms = c->gen->cfg.idle_timeout_ms;
	p->w.data = p;
	c->pending = p;
	c->handles++; /* held until the last step */
	c->l->npending++;
	ctx->pending = p;
	return p;
}

void
app_pending_deadline(struct app_pending *p, unsigned ms)
{
	p->deadline_ms = ms;
	if (p->c != NULL)
		conn_rearm(p->c);
}

unsigned
pending_deadline(const struct app_pending *p)
{
	return p->deadline_ms;
}

void
app_pending_on_close(struct app_pending *p, void (*fn)(void *arg))
{
	p->on_close = fn;
}

void
pending_conn_closed(struct app_pending *p)
{
	void (*fn)(void *) = p->on_close;

	p->on_close = NULL; /* once */
	if (fn != NULL)
		fn(p->arg);
}

/* Free @p p once it has ended, nobody holds it and it is not queued. */
static void
pending_maybe_free(struct app_pending *p)
{
	struct app_loop *l = p->l;
	int last;

	pthread_mutex_lock(&l->posted_mu);
	last = p->ended && p->holds == 0 && !p->queued;
	pthread_mutex_unlock(&l->posted_mu);
	if (!last)
		return;
	l->npending--;
	free(p);
	if (atomic_load(&l->app->draining))
		loop_finish(l);
}

static void
pending_end(struct app_pending *p)
{
	struct conn *c = p->c;

	c->pending = NULL;
	c->streaming = 0;
	p->c = NULL;
	conn_release(c);
	pthread_mutex_lock(&p->l->posted_mu);
	p->ended = 1;
	pthread_mutex_unlock(&p->l->posted_mu);
	pending_maybe_free(p);
}

static unsigned
pending_holds(struct app_pending *p)
{
	unsigned h;

	pthread_mutex_lock(&p->l->posted_mu);
	h = p->holds;
	pthread_mutex_unlock(&p->l->posted_mu);
	return h;
}

static void
run_step(struct app_pending *p)
{
	struct conn *c = p->c;
	size_t mark;
	int status;

	if (p->ended) {
		pending_maybe_free(p); /* a holder's last release */
		return;
	}
	if (c->state == C_CLOSING) {
		/* The last step sees the loss once no other thread holds
		 * the request (the on_close callback told them). */
		if (pending_holds(p) > 0)
			return;
		p->step(p, p->arg, NULL, NULL);
		pending_end(p);
		return;
	}
	mark = c->out.len;
	status = p->step(p, p->arg, &c->out, &p->keep_alive);
	/* Every part of the answer as its request may receive it: a HEAD's
	 * head only. (A stream is framed for the request's version by its
	 * producer: http_stream_framing.) */
	http_answer_fit(&c->out, mark, &p->fit);
	if (status == ROUTE_PENDING)
		return;
	if (status == ROUTE_STREAM) {
		c->streaming = 1;
		conn_resume(c); /* sends what the step wrote; reads nothing */
		return;
	}
	conn_answered(c, p->route, status, p->t0_ns, p->keep_alive);
	pending_end(p);
	if (c->state != C_CLOSING)
		conn_resume(c);
}

static void
on_work(uv_work_t *w)
{
	static _Thread_local int tagged;
	struct app_pending *p = w->data;

	if (!tagged) { /* libuv's pool threads: tag each once */
		sr_log_thread_tag("worker");
		tagged = 1;
	}
	p->work(p->arg);
	/* The step may have held a credential (a key's HMAC in SoftHSM2, a
	 * password in Argon2): nothing of it stays on this thread's stack. */
	sr_stack_wipe(SRV_STACK_WIPE);
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
	return uv_queue_work(&p->l->loop, &p->w, on_work, on_work_done);
}

/* Queue @p p for its loop unless it already is. Under l->posted_mu. */
static void
pending_queue_locked(struct app_pending *p)
{
	struct app_loop *l = p->l;

	if (p->queued)
		return;
	p->queued = 1;
	p->next = NULL;
	if (l->posted_tail != NULL)
		l->posted_tail->next = p;
	else
		l->posted_head = p;
	l->posted_tail = p;
	/* Sent under the lock: the loop cannot close the handle between
	 * the queueing and the send (it closes only with nothing pending,
	 * and this request is pending). */
	uv_async_send(&l->posted);
}

void
app_pending_post(struct app_pending *p)
{
	struct app_loop *l = p->l;

	pthread_mutex_lock(&l->posted_mu);
	pending_queue_locked(p);
	pthread_mutex_unlock(&l->posted_mu);
}

void
app_pending_hold(struct app_pending *p)
{
	pthread_mutex_lock(&p->l->posted_mu);
	p->holds++;
	pthread_mutex_unlock(&p->l->posted_mu);
}

void
app_pending_release(struct app_pending *p)
{
	struct app_loop *l = p->l;

	pthread_mutex_lock(&l->posted_mu);
	p->holds--;
	pending_queue_locked(p);
	pthread_mutex_unlock(&l->posted_mu);
}

static void
on_posted(uv_async_t *a)
{
	struct app_loop *l = a->data;
	struct app_pending *p, *last;

	/* One at a time, each unqueued as it is taken (a post during its
	 * step queues it again, behind); up to the request that was last
	 * when the wake-up came, so a busy producer cannot keep us here. */
	pthread_mutex_lock(&l->posted_mu);
	last = l->posted_tail;
	pthread_mutex_unlock(&l->posted_mu);
	while (last != NULL) {
		pthread_mutex_lock(&l->posted_mu);
		p = l->posted_head;
		l->posted_head = p->next;
		if (l->posted_head == NULL)
			l->posted_tail = NULL;
		p->queued = 0;
		pthread_mutex_unlock(&l->posted_mu);
		if (p == last)
			last = NULL;
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
