/*
 * appliance/audit.c: the audit log's writer. Producers (audit_api.c, any
 * thread) render their event's fields and queue it; this one writer thread
 * takes everything queued, gives each line its seq, prev and hash in order,
 * appends the batch to the day's file with one write() and makes it
 * durable with one journal record and fdatasync() (audit_journal.c), then
 * acknowledges every event of the batch. It rotates files by UTC day, removes
 * files past retention, and signs a checkpoint of the chain head every N events
 * or T seconds.
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "appliance/audit_impl.h"

static int64_t
day_of(int64_t ms)
{
	return ms >= 0 ? ms / AUDIT__DAY_MS
	               : (ms - AUDIT__DAY_MS + 1) / AUDIT__DAY_MS;
}

/* The writer's own event: ,"actor":"audit",... plus @p extra (raw JSON
 * members with a leading comma, or ""). Queued on the carry list. */
void
audit__own_event(struct audit *a, const char *action, const char *resource,
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
	audit__list_push(&a->carry, n);
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
	if (a->fd >= 0 && (rc = audit__journal_restart(&a->j, a->fd)) != 0) {
		close(fd);
		return rc;
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	a->fd_dev = st.st_dev;
	a->fd_ino = st.st_ino;
	a->day = day;
	a->size = a->kicked = (uint64_t)st.st_size;
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
		audit__own_event(a, "audit.retention.remove", name,
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
	l += sr_u64_decimal(a->buf + l, *seq);
	memcpy(a->buf + l, "\",\"seq\":", 8);
	l += 8;
	l += sr_u64_decimal(a->buf + l, *seq);
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

#define AUDIT__KICK_BYTES (1u << 20)

/*
 * The open day's file and the journal must still be the files the folder
 * names: lines written to a file that was removed (or the folder with it)
 * or replaced would be acknowledged and lost. -ENOENT until they are back.
 */
static int
files_still_named(struct audit *a)
{
	char name[AUDIT__NAME_LEN + 1];
	struct stat st;

	audit__file_name(a->day, name);
	if (fstatat(a->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    st.st_dev != a->fd_dev || st.st_ino != a->fd_ino ||
	    audit__journal_named(&a->j, a->dirfd) != 0) {
		if (!a->failing)
			log_warnx("audit: %s/%s or its journal was removed or "
			          "replaced while open; the lines since its "
			          "last check may be lost",
			    a->dir, name);
		return -ENOENT;
	}
	return 0;
}

/* Make the lines in a->buf[0..len) durable: appended to the day's file
 * (page cache) and recorded in the journal (audit_journal.c). */
static int
commit(struct audit *a, int64_t day, size_t len)
{
	int rc = 0;

	if (a->fd < 0 || day != a->day)
		rc = open_day(a, day);
	else
		rc = files_still_named(a);
	if (rc == 0 && a->dirty) {
		if (ftruncate(a->fd, (off_t)a->size) != 0)
			rc = -errno;
		else
			a->dirty = 0;
	}
	if (rc == 0)
		rc = write_all(a->fd, a->buf, len);
	if (rc == 0)
		rc = audit__journal_put(
		    &a->j, a->fd, a->day, a->size, a->buf, len);
	if (rc == 0 && a->size + len - a->kicked >= AUDIT__KICK_BYTES) {
		/* Start write-back of the day's file now, so the fdatasync
		 * that ends a journal lap finds little left to write. */
		(void)sync_file_range(a->fd, (off_t)a->kicked,
		    (off_t)(a->size + len - a->kicked), SYNC_FILE_RANGE_WRITE);
		a->kicked = a->size + len;
	}
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
			audit__list_push(&a->carry, n);
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
	struct timespec t0, t1;
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
		/* Leave yesterday's file clean (a failed batch's bytes must
		 * not stay behind it) and durable, so the journal's new lap
		 * holds the new day only. */
		rc = a->dirty && ftruncate(a->fd, (off_t)a->size) != 0
		    ? -errno
		    : audit__journal_restart(&a->j, a->fd);
		if (rc != 0) {
			a->fail_ms = now;
			fail_batch(a, all, rc);
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
	if (rc == 0 && len > 0) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = commit(a, day, len);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	}
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
	if (a->on_commit != NULL)
		a->on_commit(a->on_commit_arg,
		    (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
		        (t1.tv_nsec - t0.tv_nsec) / 1000),
		    (uint32_t)(events + ckpt));
	if (a->failing) {
		snprintf(extra, sizeof(extra), ",\"refused\":%llu",
		    (unsigned long long)a->refused_run);
		audit__own_event(a, "audit.recovered", a->dir, "ok", extra);
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

	while (
	    n != NULL && count < a->max_batch && bytes < AUDIT__BATCH_BYTES) {
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

void *
audit__writer_main(void *arg)
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
