/*
 * appliance/audit_api.c: the audit log's front: producers render their
 * event and queue it for the writer (blocking or with a completion
 * callback), and the log is opened (options checked, the chain resumed,
 * the key file written, the writer started) and closed (drained, a final
 * checkpoint). The writer itself is audit.c.
 *
 * Never blocks a caller on disk except in audit_append/audit_checkpoint,
 * never renders a secret (struct audit_event has no field for one).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appliance/audit_impl.h"

static int64_t
clock_real(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Producers                                                            */
/* ------------------------------------------------------------------ */

static int
enqueue(struct audit *a, struct node *n)
{
	pthread_mutex_lock(&a->lock);
	if (a->stopping) {
		pthread_mutex_unlock(&a->lock);
		free(n);
		return -ESHUTDOWN;
	}
	audit__list_push(&a->queue, n);
	if (a->queue.head == n)
		pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

static int
make_node(const struct audit_event *ev, enum node_kind kind, audit_done_cb *cb,
    void *arg, struct node **out)
{
	char body[AUDIT__BODY_MAX];
	struct node *n;
	int len = 0;

	if (kind == NODE_EVENT && (len = audit__body_render(ev, body)) < 0)
		return len;
	n = malloc(sizeof(*n) + (size_t)len);
	if (n == NULL)
		return -ENOMEM;
	n->next = NULL;
	n->cb = cb;
	n->arg = arg;
	n->seq = 0;
	n->len = (uint32_t)len;
	n->kind = (uint8_t)kind;
	memcpy(n->body, body, (size_t)len);
	*out = n;
	return 0;
}

int
audit_append_async(
    struct audit *a, const struct audit_event *ev, audit_done_cb *cb, void *arg)
{
	struct node *n;
	int rc;

	if (a == NULL || cb == NULL)
		return -EINVAL;
	rc = make_node(ev, NODE_EVENT, cb, arg, &n);
	return rc != 0 ? rc : enqueue(a, n);
}

struct waiter {
	sem_t sem;
	int status;
	uint64_t seq;
};

static void
waiter_done(void *arg, int status, uint64_t seq)
{
	struct waiter *w = arg;

	w->status = status;
	w->seq = seq;
	sem_post(&w->sem);
}

static int
wait_for(struct audit *a, const struct audit_event *ev, enum node_kind kind,
    uint64_t *seq)
{
	struct waiter w;
	struct node *n;
	int rc;

	if (a == NULL)
		return -EINVAL;
	rc = make_node(ev, kind, waiter_done, &w, &n);
	if (rc != 0)
		return rc;
	sem_init(&w.sem, 0, 0);
	rc = enqueue(a, n);
	if (rc == 0) {
		while (sem_wait(&w.sem) != 0 && errno == EINTR)
			;
		rc = w.status;
		if (seq != NULL)
			*seq = w.seq;
	}
	sem_destroy(&w.sem);
	return rc;
}

int
audit_append(struct audit *a, const struct audit_event *ev, uint64_t *seq)
{
	return wait_for(a, ev, NODE_EVENT, seq);
}

int
audit_checkpoint(struct audit *a)
{
	return wait_for(a, NULL, NODE_CKPT, NULL);
}

void
audit_stats_get(struct audit *a, struct audit_stats *st)
{
	st->seq = atomic_load(&a->st_seq);
	st->events = atomic_load(&a->st_events);
	st->batches = atomic_load(&a->st_batches);
	st->checkpoints = atomic_load(&a->st_ckpts);
	st->refused = atomic_load(&a->st_refused);
	st->last_error = atomic_load(&a->st_err);
}

/* ------------------------------------------------------------------ */
/* Open and close                                                       */
/* ------------------------------------------------------------------ */

static int
options_check(const struct audit_options *o, char err[256])
{
	const char *what = NULL;

	if (o == NULL || o->dir == NULL || o->dir[0] == '\0' ||
	    strlen(o->dir) >= PATH_MAX - 64)
		what = "dir is missing or too long";
	else if (o->appliance_id == NULL ||
	    !audit__name_ok(o->appliance_id, 32, 0))
		what = "appliance_id must be 1..32 of [A-Za-z0-9_-]";
	else if (o->sign == NULL || o->sign_pubkey == NULL ||
	    o->sign_pubkey[0] != 0x04)
		what = "a signer and its public key (0x04||X||Y) are required";
	else if (o->sign_key_id == NULL ||
	    !audit__name_ok(o->sign_key_id, AUDIT_KEY_ID_MAX, 1))
		what = "sign_key_id must be 1..64 of [A-Za-z0-9._-]";
	if (what != NULL)
		snprintf(err, 256, "audit options: %s", what);
	return what != NULL ? -EINVAL : 0;
}

static int
setup(struct audit *a, const struct audit_options *o, char err[256])
{
	struct audit__replay rep;
	struct audit__tail t;
	char extra[256], hex[65];
	int rc;

	snprintf(a->dir, sizeof(a->dir), "%s", o->dir);
	snprintf(a->appid, sizeof(a->appid), "%s", o->appliance_id);
	snprintf(a->kid, sizeof(a->kid), "%s", o->sign_key_id);
	a->sign = o->sign;
	a->sign_arg = o->sign_arg;
	a->ckpt_events = o->checkpoint_events ? o->checkpoint_events : 10000;
	a->ckpt_ms =
	    1000LL * (o->checkpoint_seconds ? o->checkpoint_seconds : 60);
	a->retention_days = o->retention_days ? o->retention_days : 180;
	a->max_batch = o->max_batch ? o->max_batch : 4096;
	a->clock = o->clock ? o->clock : clock_real;
	a->clock_arg = o->clock_arg;
	a->on_commit = o->on_commit;
	a->on_commit_arg = o->on_commit_arg;
	if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, 256, "%s: %s", a->dir, sr_strerror(rc));
		return rc;
	}
	a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a->dirfd < 0) {
		rc = -errno;
		snprintf(err, 256, "%s: %s", a->dir, sr_strerror(rc));
		return rc;
	}
	rc = audit__pubkey_write(a->dir, a->kid, o->sign_pubkey, err);
	if (rc == 0)
		rc = audit__journal_open(a->dirfd,
		    o->journal_kib ? (uint64_t)o->journal_kib << 10
		                   : AUDIT__JOURNAL_DEFAULT,
		    &a->j, &rep, err);
	if (rc == 0)
		rc = audit__resume(a->dir, AUDIT__MAX_TORN, &t, err);
	if (rc != 0)
		return rc;
	if (rep.restored > 0) {
		snprintf(extra, sizeof(extra),
		    ",\"journal_records\":%llu,\"restored_bytes\":%llu",
		    (unsigned long long)rep.records,
		    (unsigned long long)rep.restored);
		audit__own_event(
		    a, "audit.journal_replay", rep.file, "repaired", extra);
		log_warnx("audit: %s/%s: wrote back %llu bytes of durable "
		          "lines from %s (the machine stopped before they "
		          "left the page cache)",
		    a->dir, rep.file, (unsigned long long)rep.restored,
		    AUDIT__JOURNAL);
	}
	a->seq = t.seq;
	memcpy(a->head, t.head, 32);
	a->day = t.day;
	a->retention_day = INT64_MIN;
	a->last_ckpt_ms = a->clock(a->clock_arg);
	atomic_store(&a->st_seq, a->seq);
	if (t.torn > 0) {
		sr_hex_encode(hex, t.torn_hash, 32);
		snprintf(extra, sizeof(extra),
		    ",\"torn_bytes\":%llu,\"torn_sha256\":\"%s\"",
		    (unsigned long long)t.torn, hex);
		audit__own_event(
		    a, "audit.torn_tail", t.torn_file, "repaired", extra);
		log_warnx(
		    "audit: %s/%s: cut %llu bytes of a batch a crash left "
		    "unfinished (never acknowledged)",
		    a->dir, t.torn_file, (unsigned long long)t.torn);
	}
	snprintf(extra, sizeof(extra), ",\"resumed_seq\":%llu",
	    (unsigned long long)t.seq);
	audit__own_event(a, "audit.start", a->dir, "ok", extra);
	return 0;
}

int
audit_open(const struct audit_options *o, struct audit **out, char err[256])
{
	pthread_condattr_t ca;
	char ebuf[256];
	struct audit *a;
	int rc;

	if (err == NULL)
		err = ebuf;
	err[0] = '\0';
	*out = NULL;
	rc = options_check(o, err);
	if (rc != 0)
		return rc;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->fd = a->dirfd = a->j.fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	/* The writer's idle wait reads CLOCK_MONOTONIC: a condition variable
	 * on the default (realtime) clock would see every such deadline as
	 * long past and spin a core while the log is idle. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = setup(a, o, err);
	if (rc == 0) {
		rc = -pthread_create(&a->thread, NULL, audit__writer_main, a);
		a->started = rc == 0;
	}
	/* The start events reach the disk before the daemon may serve. */
	if (rc == 0 &&
	    (rc = wait_for(a, NULL,
	         o->checkpoint_at_open ? NODE_CKPT : NODE_SYNC, NULL)) != 0)
		snprintf(
		    err, 256, "%s: first write: %s", a->dir, sr_strerror(rc));
	if (rc != 0) {
		audit_close(a);
		return rc;
	}
	*out = a;
	return 0;
}

void
audit_close(struct audit *a)
{
	struct node *n, *next;
	int rc;

	if (a == NULL)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stopping = 1;
		pthread_cond_signal(&a->wake);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	for (n = a->carry.head; n != NULL; n = next) {
		next = n->next;
		log_warnx("audit: closing with an own event unwritten");
		free(n);
	}
	if (a->j.fd >= 0 && (rc = audit__journal_finish(&a->j, a->fd)) != 0)
		log_warnx("audit: %s: closing: %s (the next start replays "
		          "%s)",
		    a->dir, sr_strerror(rc), AUDIT__JOURNAL);
	audit__journal_close(&a->j);
	if (a->fd >= 0)
		close(a->fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a->buf);
	free(a);
}
