/*
 * appliance/audit.c: the audit log's writer. Producers (any thread) render
 * their event's fields and queue it; one writer thread takes everything
 * queued, gives each line its seq, prev and hash in order, writes the batch
 * with one write() and one fdatasync(), then acknowledges every event of
 * the batch. It rotates files by UTC day, removes files past retention,
 * and signs a checkpoint of the chain head every N events or T seconds.
 *
 * Fail-closed: an event is acknowledged with 0 only once it is on disk; a
 * failed batch is cut back off the file and refused, and the chain goes on
 * from the last durable line. Never holds a secret, never forks, never
 * calls the keystore: signing goes through the caller's callback.
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

#define BATCH_BYTES (1u << 20) /* bodies taken per batch, at most */
#define MAX_TORN (4u << 20)    /* what a crash can leave half-written */

enum node_kind { NODE_EVENT, NODE_SYNC, NODE_CKPT };

struct node {
	struct node *next;
	audit_done_cb *cb; /* NULL for the writer's own events */
	void *arg;
	uint64_t seq;
	uint32_t len;
	uint8_t kind;
	char body[];
};

struct list {
	struct node *head, *tail;
};

struct audit {
	char dir[PATH_MAX];
	char appid[33];
	char kid[AUDIT_KEY_ID_MAX + 1];
	audit_sign_cb *sign;
	void *sign_arg;
	uint32_t ckpt_events, max_batch;
	int64_t ckpt_ms, retention_days;
	audit_clock_cb *clock;
	void *clock_arg;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct list queue; /* under lock */
	int stopping;      /* under lock */
	pthread_t thread;
	int started;

	/* Writer thread only. */
	int dirfd, fd, dirty;
	int64_t day, retention_day, last_ckpt_ms, fail_ms;
	uint64_t size, seq, since_ckpt, refused_run;
	uint8_t head[32];
	struct list carry; /* own events not yet durable */
	int failing;
	char *buf;
	size_t cap;

	_Atomic uint64_t st_seq, st_events, st_batches, st_ckpts, st_refused;
	_Atomic int st_err;
};

static int64_t
clock_real(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
day_of(int64_t ms)
{
	return ms >= 0 ? ms / AUDIT__DAY_MS
	               : (ms - AUDIT__DAY_MS + 1) / AUDIT__DAY_MS;
}

static void
list_push(struct list *l, struct node *n)
{
	n->next = NULL;
	if (l->tail != NULL)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
}

/* The writer's own event: ,"actor":"audit",... plus @p extra (raw JSON
 * members with a leading comma, or ""). Queued on the carry list. */
static void
own_event(struct audit *a, const char *action, const char *resource,
    const char *status, const char *extra)
{
	char body[AUDIT__BODY_MAX];
	struct node *n;
	size_t len;
	int cut = 0;

	len = (size_t)snprintf(body, sizeof(body),
	    ",\"actor\":\"" AUDIT__ACTOR "\",\"action\":\"%s\",\"resource\":\"",
	    action);
	len = audit__json_str(body, len, resource, 1024, &cut);
	len += (size_t)snprintf(body + len, sizeof(body) - len,
	    "\",\"status\":\"%s\",\"duration_ms\":0,\"src\":\"\"%s", status,
	    extra);
	n = malloc(sizeof(*n) + len);
	if (n == NULL) {
		log_warnx("audit: no memory to record %s %s", action, resource);
		return;
	}
	memset(n, 0, sizeof(*n));
	n->kind = NODE_EVENT;
	n->len = (uint32_t)len;
	memcpy(n->body, body, len);
	list_push(&a->carry, n);
}

/* ------------------------------------------------------------------ */
/* Files: the day's file, retention                                     */
/* ------------------------------------------------------------------ */

static int
open_day(struct audit *a, int64_t day)
{
	char name[AUDIT__NAME_LEN + 1];
	struct stat st;
	int fd, created, rc;

	audit__file_name(day, name);
	created = faccessat(a->dirfd, name, F_OK, 0) != 0;
	fd = openat(a->dirfd, name,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return rc;
	}
	if (created && (rc = audit__fsync_dir(a->dirfd)) != 0) {
		close(fd);
		return rc;
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	a->day = day;
	a->size = (uint64_t)st.st_size;
	a->dirty = 0;
	return 0;
}

/* Remove files older than the retention; each removal is an event that
 * also says where the log now starts (verify checks the start with it). */
static void
retention(struct audit *a, int64_t today)
{
	char name[AUDIT__NAME_LEN + 1], extra[256], hex[65];
	uint8_t prev[32];
	uint64_t first;
	int64_t *days = NULL;
	size_t n = 0, i, removed = 0;
	int rc;

	if (audit__list_days(a->dir, &days, &n) != 0)
		return;
	for (i = 0; i < n && days[i] < today - a->retention_days; i++)
		removed++;
	if (removed == 0)
		goto out;
	/* Where the log will start: the first line of the oldest file
	 * kept, or the next line written when none is left. */
	first = a->seq + 1;
	memcpy(prev, a->head, 32);
	for (i = removed; i < n; i++) {
		audit__file_name(days[i], name);
		if (audit__first_line(a->dirfd, name, &first, prev) == 0)
			break;
		first = a->seq + 1;
		memcpy(prev, a->head, 32);
	}
	sr_hex_encode(hex, prev, 32);
	for (i = 0; i < removed; i++) {
		audit__file_name(days[i], name);
		rc = unlinkat(a->dirfd, name, 0) == 0 ? 0 : -errno;
		snprintf(extra, sizeof(extra),
		    ",\"retention_days\":%lld,\"kept_from_seq\":%llu,"
		    "\"kept_from_prev\":\"%s\"%s%s%s",
		    (long long)a->retention_days, (unsigned long long)first,
		    hex, rc ? ",\"error\":\"" : "", rc ? sr_errname(rc) : "",
		    rc ? "\"" : "");
		own_event(a, "audit.retention.remove", name,
		    rc ? "failed" : "ok", extra);
		if (rc != 0)
			log_warnx("audit: retention: cannot remove %s/%s: %s",
			    a->dir, name, sr_strerror(rc));
	}
	audit__fsync_dir(a->dirfd);
out:
	free(days);
}

/* ------------------------------------------------------------------ */
/* One batch                                                            */
/* ------------------------------------------------------------------ */

static int
buf_room(struct audit *a, size_t len, size_t more)
{
	size_t cap = a->cap ? a->cap : 65536;
	char *p;

	while (cap < len + more)
		cap *= 2;
	if (cap == a->cap)
		return 0;
	p = realloc(a->buf, cap);
	if (p == NULL)
		return -ENOMEM;
	a->buf = p;
	a->cap = cap;
	return 0;
}

/* Append one sealed line for @p body; advances *seq and head. */
static int
put_line(struct audit *a, size_t *len, const char *ts, uint64_t *seq,
    uint8_t head[32], const char *body, size_t blen)
{
	size_t l = *len;
	int rc;

	rc = buf_room(a, l, blen + 256);
	if (rc != 0)
		return rc;
	(*seq)++;
	l += (size_t)sprintf(
	    a->buf + l, "{\"ts\":\"%s\",\"event_id\":\"%s-", ts, a->appid);
	l += audit__u64(a->buf + l, *seq);
	memcpy(a->buf + l, "\",\"seq\":", 8);
	l += 8;
	l += audit__u64(a->buf + l, *seq);
	memcpy(a->buf + l, body, blen);
	l += blen;
	memcpy(a->buf + l, ",\"prev\":\"", 9);
	sr_hex_encode(a->buf + l + 9, head, 32);
	a->buf[l + 73] = '"';
	l += 74;
	l = *len + audit__line_seal(a->buf + *len, l - *len, head);
	a->buf[l++] = '\n';
	*len = l;
	return 0;
}

/* The checkpoint line for the chain head (seq, head). */
static int
put_ckpt(struct audit *a, size_t *len, const char *ts, uint64_t *seq,
    uint8_t head[32], int *is_signed)
{
	char body[512], hex[65], sighex[129];
	uint8_t digest[32], sig[64];
	int n, rc;

	audit__ckpt_digest(*seq, head, digest);
	rc = a->sign(a->sign_arg, digest, sig);
	sr_hex_encode(hex, head, 32);
	if (rc == 0) {
		sr_hex_encode(sighex, sig, 64);
		n = snprintf(body, sizeof(body),
		    ",\"actor\":\"" AUDIT__ACTOR
		    "\",\"action\":\"" AUDIT__CKPT_ACTION
		    "\",\"resource\":\"\",\"status\":\"ok\",\"duration_ms\":0,"
		    "\"src\":\"\",\"head_seq\":%llu,\"head\":\"%s\","
		    "\"key_id\":\"%s\",\"sig\":\"%s\"",
		    (unsigned long long)*seq, hex, a->kid, sighex);
	} else {
		log_warnx("audit: checkpoint at seq %llu not signed: %s",
		    (unsigned long long)*seq, sr_strerror(rc));
		n = snprintf(body, sizeof(body),
		    ",\"actor\":\"" AUDIT__ACTOR
		    "\",\"action\":\"" AUDIT__CKPT_ACTION
		    "\",\"resource\":\"\",\"status\":\"failed\",\"duration_"
		    "ms\":0,"
		    "\"src\":\"\",\"head_seq\":%llu,\"head\":\"%s\","
		    "\"key_id\":\"%s\",\"error\":\"%s\"",
		    (unsigned long long)*seq, hex, a->kid, sr_errname(rc));
	}
	*is_signed = rc == 0;
	return put_line(a, len, ts, seq, head, body, (size_t)n);
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Make the lines in a->buf[0..len) durable in the day's file. */
static int
commit(struct audit *a, int64_t day, size_t len)
{
	int rc = 0;

	if (a->fd < 0 || day != a->day)
		rc = open_day(a, day);
	if (rc == 0 && a->dirty) {
		if (ftruncate(a->fd, (off_t)a->size) != 0)
			rc = -errno;
		else
			a->dirty = 0;
	}
	if (rc == 0)
		rc = write_all(a->fd, a->buf, len);
	if (rc == 0 && fdatasync(a->fd) != 0)
		rc = -errno;
	if (rc != 0 && a->fd >= 0 && day == a->day) {
		/* Cut any part of the batch that reached the file, so the
		 * next batch continues from the last durable line. After a
		 * failed fdatasync the page cache cannot be trusted either. */
		if (ftruncate(a->fd, (off_t)a->size) != 0)
			a->dirty = 1;
	}
	return rc;
}

static void
finish(struct node *n, int rc)
{
	struct node *next;

	for (; n != NULL; n = next) {
		next = n->next;
		if (n->cb != NULL)
			n->cb(n->arg, rc, rc == 0 ? n->seq : 0);
		free(n);
	}
}

static void
fail_batch(struct audit *a, struct node *all, int rc)
{
	struct node *n, *next, *acks = NULL, **tail = &acks;
	uint64_t refused = 0;

	a->carry.head = a->carry.tail = NULL;
	for (n = all; n != NULL; n = next) {
		next = n->next;
		if (n->cb == NULL) { /* own events wait for the next batch */
			list_push(&a->carry, n);
			continue;
		}
		refused += n->kind == NODE_EVENT;
		n->next = NULL;
		*tail = n;
		tail = &n->next;
	}
	if (!a->failing)
		log_warnx("audit: cannot write to %s: %s; refusing events "
		          "until it can (fail-closed)",
		    a->dir, sr_strerror(rc));
	a->failing = 1;
	a->refused_run += refused;
	atomic_fetch_add(&a->st_refused, refused);
	atomic_store(&a->st_err, rc);
	finish(acks, rc);
}

static void
run_batch(struct audit *a, struct node *taken, int final)
{
	char ts[25], extra[128];
	struct node *all, *n;
	int64_t now = a->clock(a->clock_arg), day = day_of(now);
	uint64_t seq = a->seq, since = a->since_ckpt, events = 0;
	uint8_t head[32];
	size_t len = 0;
	int rc = 0, force = 0, signed_ckpt = 0, ckpt;
	size_t ckpt_off = 0;

	if (day < a->day)
		day = a->day; /* never back into an older file */
	all = a->carry.head != NULL ? a->carry.head : taken;
	if (a->carry.tail != NULL)
		a->carry.tail->next = taken;
	a->carry.head = a->carry.tail = NULL;
	if (day > a->day && a->fd >= 0) {
		/* Leave yesterday's file clean: a failed batch's bytes must
		 * not stay behind it. */
		if (a->dirty && ftruncate(a->fd, (off_t)a->size) != 0) {
			a->fail_ms = now;
			fail_batch(a, all, -errno);
			return;
		}
		close(a->fd);
		a->fd = -1;
		a->dirty = 0;
	}
	if (day > a->retention_day) {
		retention(a, day); /* its events go first */
		a->retention_day = day;
		if (a->carry.tail != NULL) {
			a->carry.tail->next = all;
			all = a->carry.head;
			a->carry.head = a->carry.tail = NULL;
		}
	}
	memcpy(head, a->head, 32);
	audit__ts_format(now, ts);
	for (n = all; n != NULL && rc == 0; n = n->next) {
		force |= n->kind == NODE_CKPT;
		if (n->kind != NODE_EVENT)
			continue;
		rc = put_line(a, &len, ts, &seq, head, n->body, n->len);
		n->seq = seq;
		since++;
		events++;
	}
	ckpt = since > 0 &&
	    (force || since >= a->ckpt_events || final ||
	        now - a->last_ckpt_ms >= a->ckpt_ms);
	if (rc == 0 && ckpt) {
		ckpt_off = len;
		rc = put_ckpt(a, &len, ts, &seq, head, &signed_ckpt);
	}
	if (rc == 0 && len > 0)
		rc = commit(a, day, len);
	if (rc != 0) {
		a->fail_ms = now;
		fail_batch(a, all, rc);
		return;
	}
	if (len == 0) { /* nothing to write: a barrier or idle wake */
		finish(all, a->failing ? atomic_load(&a->st_err) : 0);
		return;
	}
	a->seq = seq;
	memcpy(a->head, head, 32);
	a->size += len;
	if (ckpt) {
		a->since_ckpt = 0;
		a->last_ckpt_ms = now;
		if (signed_ckpt) {
			atomic_fetch_add(&a->st_ckpts, 1);
			rc = audit__ckpt_last_write(
			    a->dirfd, a->buf + ckpt_off, len - ckpt_off - 1);
			if (rc != 0)
				log_warnx("audit: %s/%s not updated: %s",
				    a->dir, AUDIT__CKPT_LAST, sr_strerror(rc));
		}
	} else {
		a->since_ckpt = since;
	}
	atomic_store(&a->st_seq, seq);
	atomic_fetch_add(&a->st_events, events + ckpt);
	atomic_fetch_add(&a->st_batches, len > 0);
	atomic_store(&a->st_err, 0);
	if (a->failing) {
		snprintf(extra, sizeof(extra), ",\"refused\":%llu",
		    (unsigned long long)a->refused_run);
		own_event(a, "audit.recovered", a->dir, "ok", extra);
		log_warnx("audit: writing to %s again after refusing %llu "
		          "events",
		    a->dir, (unsigned long long)a->refused_run);
		a->failing = 0;
		a->refused_run = 0;
	}
	finish(all, 0);
}

/* ------------------------------------------------------------------ */
/* The writer thread                                                    */
/* ------------------------------------------------------------------ */

/* Whether the writer has work without any queued event. */
static int
due(struct audit *a)
{
	int64_t now = a->clock(a->clock_arg);

	/* After a failure the writer's own events wait a second between
	 * tries; producers' events are tried as they come. */
	return (a->carry.head != NULL &&
	           (!a->failing || now - a->fail_ms >= 1000)) ||
	    (a->since_ckpt > 0 && now - a->last_ckpt_ms >= a->ckpt_ms) ||
	    day_of(now) > a->retention_day;
}

static struct node *
take(struct audit *a)
{
	struct node *first = a->queue.head, *n = first, *last = NULL;
	uint32_t count = 0;
	size_t bytes = 0;

	while (n != NULL && count < a->max_batch && bytes < BATCH_BYTES) {
		bytes += n->len;
		count++;
		last = n;
		n = n->next;
	}
	if (last == NULL)
		return NULL;
	a->queue.head = n;
	if (n == NULL)
		a->queue.tail = NULL;
	last->next = NULL;
	return first;
}

static void *
writer_main(void *arg)
{
	struct audit *a = arg;
	struct timespec ts;
	struct node *batch;
	int final;

	sr_log_thread_tag("audit-writer");
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->queue.head == NULL && !a->stopping && !due(a)) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 200 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&a->wake, &a->lock, &ts);
		}
		batch = take(a);
		final = a->stopping && a->queue.head == NULL;
		pthread_mutex_unlock(&a->lock);
		run_batch(a, batch, final);
		pthread_mutex_lock(&a->lock);
		if (final && a->queue.head == NULL)
			break;
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
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
	list_push(&a->queue, n);
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
		rc = audit__resume(a->dir, MAX_TORN, &t, err);
	if (rc != 0)
		return rc;
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
		own_event(a, "audit.torn_tail", t.torn_file, "repaired", extra);
		log_warnx(
		    "audit: %s/%s: cut %llu bytes of a batch a crash left "
		    "unfinished (never acknowledged)",
		    a->dir, t.torn_file, (unsigned long long)t.torn);
	}
	snprintf(extra, sizeof(extra), ",\"resumed_seq\":%llu",
	    (unsigned long long)t.seq);
	own_event(a, "audit.start", a->dir, "ok", extra);
	return 0;
}

int
audit_open(const struct audit_options *o, struct audit **out, char err[256])
{
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
	a->fd = a->dirfd = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	rc = setup(a, o, err);
	if (rc == 0) {
		rc = -pthread_create(&a->thread, NULL, writer_main, a);
		a->started = rc == 0;
	}
	/* The start events reach the disk before the daemon may serve. */
	if (rc == 0 && (rc = wait_for(a, NULL, NODE_SYNC, NULL)) != 0)
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
	if (a->fd >= 0)
		close(a->fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a->buf);
	free(a);
}
