/*
 * pkcs11/session.c: the session pool and the recovery logic around every
 * operation.
 *
 * An operation checks out one persistent session (p11__op_begin) and hands
 * it back with the call's CK_RV (p11__op_end), which decides what broke: a
 * session (reopen it, log in again) or the device (C_Finalize, C_Initialize,
 * find the token, reopen everything). The caller then sees one clear error.
 * This file must never retry an operation on the caller's behalf and never
 * let the slot's session count drop to zero outside p11_close (the anchor
 * session stays open: SoftHSMv2#464).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkcs11/internal.h"

int
p11__pool_open(struct p11_ctx *ctx)
{
	CK_RV rv;
	unsigned i;

	ctx->sessions = calloc(ctx->nsessions, sizeof(*ctx->sessions));
	if (ctx->sessions == NULL)
		return -ENOMEM;
	for (i = 0; i < ctx->nsessions; i++) {
		rv = ctx->f->C_OpenSession(ctx->slot,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		    &ctx->sessions[i].handle);
		if (rv != CKR_OK) {
			p11__set_last_rv(rv);
			return p11_rv_to_error(rv);
		}
		ctx->sessions[i].open = 1;
	}
	return 0;
}

void
p11__pool_close(struct p11_ctx *ctx)
{
	free(ctx->sessions);
	ctx->sessions = NULL;
	ctx->nsessions = 0;
}

/*
 * Re-initialise the module. Called with every session of the pool checked
 * out, so no other call is in flight. Returns 0 when the context is usable
 * again.
 */
static int
p11_reinit(struct p11_ctx *ctx)
{
	char err[256];
	unsigned i;
	CK_RV rv;
	int rc;

	p11__module_stop(ctx);
	rc = p11__module_start(ctx, err, sizeof(err));
	if (rc != 0) {
		log_warnx("%s: HSM still unavailable: %s", __func__, err);
		/* Leave it finalized so the next attempt starts clean. */
		p11__module_stop(ctx);
		return rc == P11_EPIN ? P11_EPIN : P11_ERECOVER;
	}
	for (i = 0; i < ctx->nsessions; i++) {
		rv = ctx->f->C_OpenSession(ctx->slot,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		    &ctx->sessions[i].handle);
		/* A session that fails to open is retried at checkout. */
		ctx->sessions[i].open = rv == CKR_OK;
	}
	atomic_fetch_add(&ctx->epoch, 1);
	atomic_fetch_add(&ctx->recoveries, 1);
	log_info("%s: HSM re-initialised (recovery %lu)", __func__,
	    atomic_load(&ctx->recoveries));
	return 0;
}

/*
 * Session checkout, which is also what keeps recovery away from calls in
 * flight: a call holds its session from p11__op_begin to p11__op_end, and
 * recovery first checks out every session of the pool, so it starts only
 * when no call is running and none can start.
 *
 * Each thread first tries the session it used last with one atomic
 * exchange, so a thread that keeps its session (a fixed set of worker
 * threads no larger than the pool) takes no lock. Other threads, and every
 * thread while recovery drains the pool, wait on pool_cond; `pool_waiters`
 * is raised before they scan, so a checkin that frees a slot after their
 * scan always sees them and wakes them (no lost wake-up).
 */
static _Thread_local const struct p11_ctx *p11_tl_ctx;
static _Thread_local unsigned p11_tl_slot;

static int
p11_try_take(struct p11_ctx *ctx, unsigned i)
{
	return atomic_load_explicit(
	           &ctx->sessions[i].inuse, memory_order_relaxed) == 0 &&
	    atomic_exchange(&ctx->sessions[i].inuse, 1) == 0;
}

static struct p11__session *
p11_checkout(struct p11_ctx *ctx)
{
	unsigned i, k, start;

	/* A context freed and another allocated at the same address must
	 * not send us past the end of its pool. */
	start =
	    p11_tl_ctx == ctx && p11_tl_slot < ctx->nsessions ? p11_tl_slot : 0;
	if (p11_tl_ctx == ctx && !atomic_load(&ctx->draining) &&
	    p11_try_take(ctx, start))
		return &ctx->sessions[start];
	pthread_mutex_lock(&ctx->pool_lock);
	atomic_fetch_add(&ctx->pool_waiters, 1);
	for (;;) {
		for (i = 0; !atomic_load(&ctx->draining) && i < ctx->nsessions;
		     i++) {
			k = (start + i) % ctx->nsessions;
			if (p11_try_take(ctx, k)) {
				atomic_fetch_sub(&ctx->pool_waiters, 1);
				pthread_mutex_unlock(&ctx->pool_lock);
				p11_tl_ctx = ctx;
				p11_tl_slot = k;
				return &ctx->sessions[k];
			}
		}
		pthread_cond_wait(&ctx->pool_cond, &ctx->pool_lock);
	}
}

static void
p11_checkin(struct p11_ctx *ctx, struct p11__session *s)
{
	atomic_store(&s->inuse, 0);
	if (atomic_load(&ctx->pool_waiters) > 0) {
		pthread_mutex_lock(&ctx->pool_lock);
		pthread_cond_broadcast(&ctx->pool_cond);
		pthread_mutex_unlock(&ctx->pool_lock);
	}
}

/*
 * Repair, unless another thread already did: stop new checkouts, wait
 * until every session is back, re-initialise, and reopen the pool. The
 * caller holds no session.
 */
static int
p11_recover(struct p11_ctx *ctx)
{
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&ctx->recover_lock);
	if (!atomic_load(&ctx->broken))
		goto out;
	atomic_store(&ctx->draining, 1);
	pthread_mutex_lock(&ctx->pool_lock);
	atomic_fetch_add(&ctx->pool_waiters, 1);
	for (i = 0; i < ctx->nsessions; i++)
		while (!p11_try_take(ctx, i))
			pthread_cond_wait(&ctx->pool_cond, &ctx->pool_lock);
	atomic_fetch_sub(&ctx->pool_waiters, 1);
	pthread_mutex_unlock(&ctx->pool_lock);

	rc = p11_reinit(ctx);
	if (rc == 0)
		atomic_store(&ctx->broken, 0);

	atomic_store(&ctx->draining, 0);
	for (i = 0; i < ctx->nsessions; i++)
		atomic_store(&ctx->sessions[i].inuse, 0);
	pthread_mutex_lock(&ctx->pool_lock);
	pthread_cond_broadcast(&ctx->pool_cond);
	pthread_mutex_unlock(&ctx->pool_lock);
out:
	pthread_mutex_unlock(&ctx->recover_lock);
	return rc;
}

/* Open a session that a failure closed; the caller holds it. */
static CK_RV
p11_session_reopen(struct p11_ctx *ctx, struct p11__session *s)
{
	CK_RV rv;

	if (s->open)
		ctx->f->C_CloseSession(s->handle);
	s->open = 0;
	rv = ctx->f->C_OpenSession(ctx->slot,
	    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s->handle);
	if (rv != CKR_OK)
		return rv;
	s->open = 1;
	return CKR_OK;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Tell the timing hook how long @p op held its session. */
static void
op_timed(const struct p11__op *op)
{
	if (op->ctx->timing != NULL && op->t0_ns != 0)
		op->ctx->timing(
		    op->ctx->timing_arg, (mono_ns() - op->t0_ns) / 1000);
}

int
p11__op_begin(struct p11_ctx *ctx, struct p11__op *op)
{
	CK_RV rv;
	int rc, tries;

	op->ctx = ctx;
	op->s = NULL;
	op->t0_ns = 0;
	for (tries = 0;; tries++) {
		if (atomic_load(&ctx->broken)) {
			/* Waits for a repair another thread has begun. */
			rc = p11_recover(ctx);
			if (rc != 0)
				return rc == P11_EPIN ? P11_EPIN : P11_ERECOVER;
		}
		op->s = p11_checkout(ctx);
		if (!atomic_load(&ctx->broken))
			break;
		/* Broken between the check and the checkout: hand the
		 * session back so the repair can run, then try again. */
		p11_checkin(ctx, op->s);
		op->s = NULL;
		if (tries == 2)
			return P11_ERECOVER;
	}
	op->epoch = atomic_load(&ctx->epoch);
	op->t0_ns = ctx->timing != NULL ? mono_ns() : 0;
	if (!op->s->open) {
		rv = p11_session_reopen(ctx, op->s);
		if (rv != CKR_OK)
			return p11__op_end(op, rv);
	}
	return 0;
}

/*
 * Hand the session back. Any failure resets the session (close and
 * reopen), because a fault may have left an operation active inside the
 * module; session objects the caller must keep live on the anchor session,
 * which is never reset. Device-level failures mark the context broken and
 * re-initialise it before returning.
 */
int
p11__op_end(struct p11__op *op, CK_RV rv)
{
	struct p11_ctx *ctx = op->ctx;
	CK_RV rv2 = CKR_OK;
	int rc, device;

	if (rv == CKR_OK) {
		p11_checkin(ctx, op->s);
		op_timed(op);
		return 0;
	}
	p11__set_last_rv(rv);
	rc = p11_rv_to_error(rv);
	device = p11__rv_is_device_loss(rv);
	if (!device) {
		rv2 = p11_session_reopen(ctx, op->s);
		if (rv2 == CKR_OK && rv == CKR_USER_NOT_LOGGED_IN &&
		    p11__login(ctx, op->s->handle) != 0)
			rv2 = p11_last_rv();
		if (rv2 != CKR_OK)
			device = p11__rv_is_device_loss(rv2);
	}
	if (device)
		atomic_store(&ctx->broken, 1);
	p11_checkin(ctx, op->s);
	if (device) {
		log_warnx("%s: %s; re-initialising the HSM module", __func__,
		    p11_rv_name(rv2 != CKR_OK ? rv2 : rv));
		p11_recover(ctx);
		if (rc != P11_EDEVICE && rc != P11_ESESSION)
			rc = P11_EDEVICE;
	}
	p11__set_last_rv(rv);
	op_timed(op);
	return rc;
}

void
p11_set_timing(struct p11_ctx *ctx, p11_timing_fn *fn, void *arg)
{
	ctx->timing = fn;
	ctx->timing_arg = arg;
}
