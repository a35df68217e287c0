/*
 * appliance/serve_sched.c: the scheduler thread of one model: iteration-
 * level (continuous) batching. Each step runs one forward pass over every
 * running sequence's next token plus the prompts of the requests admitted
 * for this step, samples each sequence's token, checks its stop conditions
 * and hands the decoded text to its consumer; finished and cancelled
 * sequences leave at once, a cancelled waiter the queue at its cancel. New
 * requests wait at most batch_wait_ms to be gathered, and only while
 * nothing else runs.
 *
 * It must never block a loop (consumers only take a short per-sequence
 * lock), never stall running decodes to wait for arrivals, never admit a
 * sequence whose KV cache does not fit the budget, never count a
 * cancelled request as waiting, and never let an engine error take down
 * more than the batch it failed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "appliance/serve_impl.h"
#include "lib/sr.h"

#define SCHED_STOP_MAX 4

struct sched_seq {
	struct sched *s;
	struct sched_seq *next, *prev; /* the waiting queue, under s->mu */
	int queued;                    /* in it, under s->mu */
	/* the request, immutable after submit */
	int32_t *prompt;
	int n_prompt, max_tokens, capacity;
	struct inf_sampling sp;
	char *stop[SCHED_STOP_MAX];
	size_t stop_len[SCHED_STOP_MAX];
	int n_stop;
	uint64_t t0_ns, t_queued_ns, t_last_ns, kv_bytes;
	void (*notify)(void *arg);
	void (*on_done)(void *arg);
	void *notify_arg;
	/* the scheduler's own */
	struct inf_seq *seq;
	struct inf_sampler *sampler;
	struct inf_tok_stream dec;
	struct inf_tok_text held; /* decoded, not yet released (stop check) */
	int32_t last;
	int32_t *ids;
	int n_ids;
	enum sched_finish done;
	int done_error;
	atomic_int cancel;
	/* shared with the consumer, under mu */
	pthread_mutex_t mu;
	struct inf_tok_text out;
	int n_out, error, refs, released, notified;
	enum sched_finish finish;
};

struct sched {
	struct inf_model *m;
	const struct inf_tok *tok;
	struct sched_opts o;
	struct serve_metrics *mx;
	const struct inf_model_info *info;
	uint64_t kv_per_token;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_int refs; /* sched_stop()'s and each sequence's */
	struct sched_seq *wait_head, *wait_tail;
	int nwait, nrun, stopping;
	unsigned arrivals;
	uint64_t kv_used;
	/* the scheduler thread's own */
	struct sched_seq **run;
	struct inf_batch_item *items;
	float *logits;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
sched_kv_bytes_per_token(const struct inf_model *m)
{
	const struct inf_model_info *in = inf_model_info(m);

	return 2u * (uint64_t)in->n_layers * (uint64_t)in->n_kv_heads *
	    (uint64_t)in->head_dim * sizeof(float);
}

static int
text_append(struct inf_tok_text *t, const char *p, size_t n)
{
	size_t cap;
	char *nt;

	if (t->len + n + 1 > t->cap) {
		cap = t->cap < 64 ? 64 : t->cap;
		while (cap < t->len + n + 1)
			cap *= 2;
		if ((nt = realloc(t->text, cap)) == NULL)
			return -ENOMEM;
		t->text = nt;
		t->cap = cap;
	}
	memcpy(t->text + t->len, p, n);
	t->len += n;
	t->text[t->len] = '\0';
	return 0;
}

/* The last reference frees the scheduler's lock and itself: a consumer
 * may cancel or release its sequence after sched_stop(). */
static void
sched_unref(struct sched *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void
seq_free(struct sched_seq *q)
{
	struct sched *s = q->s;
	int i;

	inf_sampler_free(q->sampler);
	inf_seq_free(q->seq);
	inf_tok_text_free(&q->held);
	inf_tok_text_free(&q->out);
	/* The prompt, its tokens and the stop strings are the caller's
	 * data: nothing of them stays in the heap. */
	for (i = 0; i < q->n_stop; i++)
		sr_free_wiped(q->stop[i]);
	sr_free_wiped(q->prompt);
	sr_free_wiped(q->ids);
	pthread_mutex_destroy(&q->mu);
	free(q);
	sched_unref(s);
}

static void
seq_unref(struct sched_seq *q)
{
	int refs;

	pthread_mutex_lock(&q->mu);
	refs = --q->refs;
	pthread_mutex_unlock(&q->mu);
	if (refs == 0)
		seq_free(q);
}

/* The scheduler lets go of @p q: no notify follows. */
static void
let_go(struct sched_seq *q)
{
	if (q->on_done != NULL)
		q->on_done(q->notify_arg);
	seq_unref(q);
}

/* Take @p q out of the waiting queue (s->mu held). */
static void
unqueue(struct sched *s, struct sched_seq *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		s->wait_head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	else
		s->wait_tail = q->prev;
	q->next = q->prev = NULL;
	q->queued = 0;
	s->nwait--;
}

static void finish(struct sched_seq *q, enum sched_finish why, int error);

/* A cancelled sequence still waiting leaves the queue now, not when
 * admit() reaches it: a head that does not fit would keep it counted
 * against queue_max. Once out, the scheduler's reference is ours. */
static void
leave_queue(struct sched_seq *q)
{
	struct sched *s = q->s;
	int was;

	pthread_mutex_lock(&s->mu);
	if ((was = q->queued) != 0) {
		unqueue(s, q);
		atomic_store(&s->mx->waiting, s->nwait);
	}
	pthread_mutex_unlock(&s->mu);
	if (!was)
		return;
	finish(q, SCHED_ABORT, 0);
	let_go(q);
}

/* ------------------------------------------------------------------ */
/* Consumers (any thread)                                               */
/* ------------------------------------------------------------------ */

int
sched_room(const struct sched *s, int n_prompt)
{
	uint64_t fit = s->o.kv_budget_bytes / s->kv_per_token;
	int64_t room = s->info->max_position_embeddings;

	if ((uint64_t)room > fit)
		room = (int64_t)fit;
	room -= n_prompt;
	return room > 0 ? (int)room : 0;
}

int
sched_submit(struct sched *s, const struct sched_req *r, struct sched_seq **out)
{
	char err[INF_ERR_MAX];
	struct sched_seq *q;
	int i, rc = -ENOMEM;

	*out = NULL;
	if (r->n_prompt < 1 || r->max_tokens < 1 || r->n_stop < 0 ||
	    r->n_stop > SCHED_STOP_MAX ||
	    inf_sampling_check(&r->sampling, err) != 0)
		return INF_EPARAM;
	for (i = 0; i < r->n_prompt; i++)
		if (r->prompt[i] < 0 || r->prompt[i] >= s->info->vocab_size)
			return INF_EPARAM;
	if ((int64_t)r->n_prompt + r->max_tokens >
	    s->info->max_position_embeddings)
		return INF_ECONTEXT;
	if ((uint64_t)(r->n_prompt + r->max_tokens) * s->kv_per_token >
	    s->o.kv_budget_bytes)
		return -E2BIG;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&q->mu, NULL);
	q->s = s;
	atomic_fetch_add(&s->refs, 1);
	q->n_prompt = r->n_prompt;
	q->max_tokens = r->max_tokens;
	q->capacity = r->n_prompt + r->max_tokens;
	q->kv_bytes = (uint64_t)q->capacity * s->kv_per_token;
	q->sp = r->sampling;
	q->t0_ns = r->t0_ns != 0 ? r->t0_ns : now_ns();
	q->notify = r->notify;
	q->on_done = r->on_done;
	q->notify_arg = r->notify_arg;
	q->refs = 2; /* the consumer and the scheduler */
	q->prompt = malloc((size_t)r->n_prompt * sizeof(int32_t));
	q->ids = malloc((size_t)r->max_tokens * sizeof(int32_t));
	if (q->prompt == NULL || q->ids == NULL)
		goto fail;
	memcpy(q->prompt, r->prompt, (size_t)r->n_prompt * sizeof(int32_t));
	for (i = 0; i < r->n_stop; i++) {
		if (r->stop[i] == NULL || r->stop[i][0] == '\0')
			continue;
		if ((q->stop[q->n_stop] = strdup(r->stop[i])) == NULL)
			goto fail;
		q->stop_len[q->n_stop] = strlen(r->stop[i]);
		q->n_stop++;
	}
	inf_tok_stream_init(&q->dec, s->tok, 0);
	pthread_mutex_lock(&s->mu);
	if (s->stopping || s->nwait >= s->o.queue_max) {
		rc = s->stopping ? -ESHUTDOWN : -EAGAIN;
		pthread_mutex_unlock(&s->mu);
		goto fail;
	}
	q->t_queued_ns = now_ns();
	q->prev = s->wait_tail;
	if (s->wait_tail != NULL)
		s->wait_tail->next = q;
	else
		s->wait_head = q;
	s->wait_tail = q;
	q->queued = 1;
	s->nwait++;
	s->arrivals++;
	atomic_store(&s->mx->waiting, s->nwait);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	*out = q;
	return 0;
fail:
	seq_free(q);
	return rc;
}

int
sched_seq_take(
    struct sched_seq *q, struct inf_tok_text *text, struct sched_progress *pr)
{
	int rc = 0;

	pthread_mutex_lock(&q->mu);
	q->notified = 0;
	if (q->out.len > 0) {
		rc = text_append(text, q->out.text, q->out.len);
		if (rc == 0)
			q->out.len = 0;
	}
	pr->finish = q->finish;
	pr->n_tokens = q->n_out;
	pr->error = q->error;
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int
sched_seq_ids(struct sched_seq *q, const int32_t **ids)
{
	int n;

	pthread_mutex_lock(&q->mu);
	n = q->n_out;
	*ids = q->ids;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void
sched_seq_cancel(struct sched_seq *q)
{
	atomic_store(&q->cancel, 1);
	leave_queue(q);
}

void
sched_seq_release(struct sched_seq *q)
{
	if (q == NULL)
		return;
	atomic_store(&q->cancel, 1);
	pthread_mutex_lock(&q->mu);
	q->released = 1;
	pthread_mutex_unlock(&q->mu);
	leave_queue(q);
	seq_unref(q);
}

void
sched_load(struct sched *s, int *running, int *waiting)
{
	pthread_mutex_lock(&s->mu);
	*running = s->nrun;
	*waiting = s->nwait;
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ */
/* The scheduler thread                                                 */
/* ------------------------------------------------------------------ */

/* Hand what the sequence released to its consumer, and wake it once. */
static void
deliver(struct sched_seq *q, const char *p, size_t n)
{
	pthread_mutex_lock(&q->mu);
	if (!q->released && n > 0 && text_append(&q->out, p, n) != 0) {
		q->done = SCHED_ERROR;
		q->done_error = -ENOMEM;
	}
	q->n_out = q->n_ids;
	q->finish = q->done;
	q->error = q->done_error;
	if (!q->released && !q->notified && q->notify != NULL) {
		q->notified = 1;
		q->notify(q->notify_arg);
	}
	pthread_mutex_unlock(&q->mu);
}

/* End a sequence: flush the decoder and release what is held. */
static void
finish_as(struct sched_seq *q, enum sched_finish why, int error,
    int stopped_by_string)
{
	struct serve_metrics *mx = q->s->mx;
	static const int slot[] = { 0, 0, 1, 2, 3 };

	q->done = why;
	q->done_error = error;
	/* Bytes of a character cut short become U+FFFD, as a whole decode
	 * would make them; a stop string's cut keeps nothing after it. */
	if (why == SCHED_LENGTH || (why == SCHED_STOP && !stopped_by_string))
		inf_tok_stream_flush(&q->dec, &q->held);
	deliver(q, q->held.text, why == SCHED_ABORT ? 0 : q->held.len);
	q->held.len = 0;
	atomic_fetch_add_explicit(
	    &mx->finished[slot[why]], 1, memory_order_relaxed);
	serve_hist_observe(&mx->e2e, (now_ns() - q->t0_ns) / 1000);
}

static void
finish(struct sched_seq *q, enum sched_finish why, int error)
{
	finish_as(q, why, error, 0);
}

/* Bytes at the end of @p t that could start a stop string. */
static size_t
stop_tail(const struct sched_seq *q, const struct inf_tok_text *t)
{
	size_t best = 0, k;
	int i;

	for (i = 0; i < q->n_stop; i++)
		for (k = q->stop_len[i] - 1; k > best; k--)
			if (k <= t->len &&
			    memcmp(t->text + t->len - k, q->stop[i], k) == 0) {
				best = k;
				break;
			}
	return best;
}

/* Release all held text but a possible stop string's start, without
 * cutting a UTF-8 character. */
static void
release_held(struct sched_seq *q)
{
	size_t keep = stop_tail(q, &q->held), n = q->held.len - keep;

	while (n > 0 && n < q->held.len &&
	    ((unsigned char)q->held.text[n] & 0xC0) == 0x80)
		n--;
	if (n == 0)
		return;
	deliver(q, q->held.text, n);
	memmove(q->held.text, q->held.text + n, q->held.len - n);
	q->held.len -= n;
}

static int
is_eos(const struct sched *s, int32_t tok)
{
	int i;

	for (i = 0; i < s->info->n_eos; i++)
		if (s->info->eos_ids[i] == tok)
			return 1;
	return tok == inf_tok_eos(s->tok);
}

/* A sampled token: stop on EOS, a stop string, max_tokens or a full
 * cache; otherwise release its text. */
static void
accept_token(struct sched *s, struct sched_seq *q, int32_t tok)
{
	uint64_t t = now_ns();
	char *hit = NULL, *at;
	int i;

	serve_hist_observe(q->n_ids == 0 ? &s->mx->ttft : &s->mx->itl,
	    (t - (q->n_ids == 0 ? q->t0_ns : q->t_last_ns)) / 1000);
	q->t_last_ns = t;
	if (is_eos(s, tok)) {
		finish(q, SCHED_STOP, 0);
		return;
	}
	q->ids[q->n_ids++] = tok;
	q->last = tok;
	atomic_fetch_add_explicit(
	    &s->mx->generation_tokens, 1, memory_order_relaxed);
	if (inf_tok_stream_push(&q->dec, tok, &q->held) != 0) {
		finish(q, SCHED_ERROR, -ENOMEM);
		return;
	}
	for (i = 0; i < q->n_stop && q->held.text != NULL; i++) {
		at = memmem(
		    q->held.text, q->held.len, q->stop[i], q->stop_len[i]);
		if (at != NULL && (hit == NULL || at < hit))
			hit = at;
	}
	if (hit != NULL) {
		q->held.len = (size_t)(hit - q->held.text);
		finish_as(q, SCHED_STOP, 0, 1);
	} else if (q->n_ids >= q->max_tokens ||
	    inf_seq_length(q->seq) >= q->capacity) {
		finish(q, SCHED_LENGTH, 0);
	} else {
		release_held(q);
	}
}

/* Admit waiting requests into this step (s->mu held). */
static int
admit(struct sched *s, struct sched_seq **fresh)
{
	struct sched_seq *q;
	int n = 0, tokens = 0;

	while ((q = s->wait_head) != NULL && s->nrun + n < s->o.max_batch) {
		if (!atomic_load(&q->cancel) &&
		    (s->kv_used + q->kv_bytes > s->o.kv_budget_bytes ||
		        (n > 0 && tokens + q->n_prompt > s->o.prefill_tokens)))
			break; /* waits, in order, for room */
		unqueue(s, q);
		if (!atomic_load(&q->cancel)) {
			s->kv_used += q->kv_bytes;
			tokens += q->n_prompt;
		} else {
			q->kv_bytes = 0;
		}
		fresh[n++] = q;
	}
	return n;
}

/* Gather arrivals for a prefill batch while nothing runs (s->mu held):
 * until max_batch wait, batch_wait_ms passed since the oldest arrived,
 * or 1 ms went by without a new one. */
static void
gather(struct sched *s)
{
	uint64_t deadline, now, until;
	struct timespec ts;
	unsigned seen;

	deadline =
	    s->wait_head->t_queued_ns + (uint64_t)s->o.batch_wait_ms * 1000000u;
	while (!s->stopping && s->nwait < s->o.max_batch) {
		now = now_ns();
		if (now >= deadline)
			break;
		until = now + 1000000u < deadline ? now + 1000000u : deadline;
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		seen = s->arrivals;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		if (s->arrivals == seen)
			break;
	}
}

/* Drop the finished and cancelled from the running set. */
static void
sweep(struct sched *s)
{
	struct sched_seq *q;
	uint64_t freed = 0;
	int i, k = 0;

	for (i = 0; i < s->nrun; i++) {
		q = s->run[i];
		if (q->done == SCHED_RUNNING && atomic_load(&q->cancel))
			finish(q, SCHED_ABORT, 0);
		if (q->done == SCHED_RUNNING) {
			s->run[k++] = q;
			continue;
		}
		freed += q->kv_bytes;
		inf_seq_free(q->seq);
		q->seq = NULL;
		inf_sampler_free(q->sampler);
		q->sampler = NULL;
		let_go(q);
	}
	pthread_mutex_lock(&s->mu);
	s->nrun = k;
	s->kv_used -= freed;
	atomic_store(&s->mx->running, k);
	atomic_store(&s->mx->waiting, s->nwait);
	atomic_store(&s->mx->kv_used, s->kv_used);
	pthread_mutex_unlock(&s->mu);
}

/* Make the new sequences' caches and samplers; those that fail end. */
static void
prepare(struct sched *s, struct sched_seq **fresh, int n)
{
	struct sched_seq *q;
	int i, rc;

	for (i = 0; i < n; i++) {
		q = fresh[i];
		s->run[s->nrun++] = q;
		if (atomic_load(&q->cancel)) {
			finish(q, SCHED_ABORT, 0);
			continue;
		}
		rc = inf_seq_new(s->m, q->capacity, &q->seq);
		if (rc == 0)
			rc = inf_sampler_new(
			    &q->sp, s->info->vocab_size, &q->sampler);
		if (rc != 0) {
			finish(q, SCHED_ERROR, rc);
			continue;
		}
		inf_sampler_prompt(q->sampler, q->prompt, q->n_prompt);
		atomic_fetch_add_explicit(&s->mx->prompt_tokens,
		    (unsigned long long)q->n_prompt, memory_order_relaxed);
	}
}

static void
observe_batch(struct serve_metrics *mx, int n)
{
	static const int bound[SERVE_BATCH_BOUNDS] = { 1, 2, 4, 8, 16, 32, 64 };
	int i = 0;

	while (i < SERVE_BATCH_BOUNDS && n > bound[i])
		i++;
	atomic_fetch_add_explicit(&mx->batch[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &mx->batch_sum, (unsigned long long)n, memory_order_relaxed);
	atomic_fetch_add_explicit(&mx->steps, 1, memory_order_relaxed);
}

/* One forward pass over every running sequence. */
static void
step(struct sched *s)
{
	struct inf_batch_item *it;
	struct sched_seq *q;
	size_t V = (size_t)s->info->vocab_size;
	int i, n = 0, rc;

	for (i = 0; i < s->nrun; i++) {
		q = s->run[i];
		if (q->done != SCHED_RUNNING)
			continue;
		it = &s->items[n++];
		it->seq = q->seq;
		it->logits = INF_LOGITS_LAST;
		if (inf_seq_length(q->seq) == 0) {
			it->tokens = q->prompt;
			it->n_tokens = q->n_prompt;
		} else {
			it->tokens = &q->last;
			it->n_tokens = 1;
		}
	}
	if (n == 0)
		return;
	observe_batch(s->mx, n);
	rc = inf_forward(s->m, s->items, n, s->logits);
	for (i = 0, n = 0; i < s->nrun; i++) {
		q = s->run[i];
		if (q->done != SCHED_RUNNING)
			continue;
		if (rc != 0)
			finish(
			    q, SCHED_ERROR, rc); /* the batch, not the daemon */
		else
			accept_token(s, q,
			    inf_sampler_next(q->sampler, s->logits + V * n));
		n++;
	}
	if (rc != 0)
		log_warnx("inference step failed for %d sequence(s): %s", n,
		    sr_strerror(rc));
}

static void *
sched_main(void *arg)
{
	struct sched *s = arg;
	struct sched_seq **fresh =
	    malloc((size_t)s->o.max_batch * sizeof(*fresh));
	struct sched_seq *q;
	int n, i;

	sr_log_thread_tag("sched");
	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (!s->stopping && s->nrun == 0 && s->wait_head == NULL)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stopping)
			break;
		if (s->nrun == 0 && s->wait_head != NULL &&
		    s->o.batch_wait_ms > 0)
			gather(s);
		n = fresh != NULL ? admit(s, fresh) : 0;
		atomic_store(&s->mx->waiting, s->nwait);
		pthread_mutex_unlock(&s->mu);
		prepare(s, fresh, n);
		sweep(s); /* the cancelled leave before the step */
		step(s);
		sweep(s); /* the finished leave after it */
	}
	/* Stopping (s->mu held): everything still here is aborted. */
	while ((q = s->wait_head) != NULL) {
		unqueue(s, q);
		finish(q, SCHED_ABORT, 0);
		let_go(q);
	}
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->nrun; i++)
		sched_seq_cancel(s->run[i]);
	sweep(s);
	free(fresh);
	return NULL;
}

int
sched_start(struct inf_model *m, const struct inf_tok *tok,
    const struct sched_opts *o, struct serve_metrics *metrics,
    struct sched **out)
{
	struct sched *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	s->m = m;
	s->tok = tok;
	s->o = *o;
	if (s->o.max_batch < 1)
		s->o.max_batch = 1;
	if (s->o.prefill_tokens < 1)
		s->o.prefill_tokens = 2048;
	s->mx = metrics;
	s->info = inf_model_info(m);
	s->kv_per_token = sched_kv_bytes_per_token(m);
	atomic_store(&metrics->kv_budget, s->o.kv_budget_bytes);
	s->run = calloc((size_t)s->o.max_batch, sizeof(*s->run));
	s->items = calloc((size_t)s->o.max_batch, sizeof(*s->items));
	s->logits = malloc((size_t)s->o.max_batch *
	    (size_t)s->info->vocab_size * sizeof(float));
	if (s->run == NULL || s->items == NULL || s->logits == NULL)
		goto fail;
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->refs, 1);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if ((rc = -pthread_create(&s->thread, NULL, sched_main, s)) != 0) {
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	free(s->run);
	free(s->items);
	free(s->logits);
	free(s);
	return rc;
}

void
sched_stop(struct sched *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	free(s->run);
	free(s->items);
	free(s->logits);
	sched_unref(s);
}
