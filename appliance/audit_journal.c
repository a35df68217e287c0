/*
 * appliance/audit_journal.c: the audit log's journal. A batch becomes
 * durable without growing a file: <dir>/audit.journal is a ring of whole
 * 4 KiB blocks, zero-filled once when it is created, and each batch is
 * written into it (a header, then exactly the bytes appended to the day's
 * file, padded to whole blocks) and fdatasync'd. On a file whose blocks
 * already exist that flushes the data only, no file-system metadata, which
 * is cheaper and faster than syncing a file that grew. The day's file gets
 * the same bytes through the page cache and is fdatasync'd only when the
 * ring is about to wrap, when the day changes and on close: each of those
 * starts a new lap at the ring's first block.
 *
 * At open, the last lap's records are compared with the day's file and
 * what a power cut took from it is written back (recovery), before the
 * chain is resumed. Never overwrites a byte of a day file that differs
 * from the journal unless that byte is zero (a file system's unwritten
 * tail): anything else is reported (-EBADMSG) for a person to look at.
 * Holds no secret: the records are the log's own lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "appliance/audit_impl.h"
#include "appliance/digest.h"

#define JBLOCK 4096u
#define JMAGIC "SRAJRNL1"
#define JFIELDS 48u /* magic, gen, lap, day, off, len, zero */
#define JHEAD (JFIELDS + 32u)

static const uint8_t zero_block[JBLOCK];

struct jrec {
	uint64_t gen, lap, off;
	int64_t day;
	uint32_t len;
};

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
blocks_for(size_t len)
{
	return ((uint64_t)JHEAD + len + JBLOCK - 1) / JBLOCK * JBLOCK;
}

/* Header fields of @p r into @p h (JFIELDS bytes). */
static void
head_fields(const struct jrec *r, uint8_t h[JFIELDS])
{
	memcpy(h, JMAGIC, 8);
	put_u64(h + 8, r->gen);
	put_u64(h + 16, r->lap);
	put_u64(h + 24, (uint64_t)r->day);
	put_u64(h + 32, r->off);
	put_u64(h + 40, r->len);
}

static int
sync_fd(int fd)
{
	return fdatasync(fd) == 0 ? 0 : -errno;
}

/* Zero the ring's first block: no lap to replay. */
static int
forget_lap(struct audit__journal *j)
{
	ssize_t w = pwrite(j->fd, zero_block, JBLOCK, 0);

	if (w != JBLOCK)
		return w < 0 ? -errno : -EIO;
	return sync_fd(j->fd);
}

/* Zero-fill a new ring of @p cap bytes: temp file, fsync, rename, fsync
 * the folder, so a crash never leaves a half-made journal. */
static int
journal_create(int dirfd, uint64_t cap)
{
	static const char tmp[] = AUDIT__JOURNAL ".tmp";
	uint8_t *z;
	uint64_t off;
	size_t step = 1u << 20;
	int fd, rc = 0;

	z = calloc(1, step);
	if (z == NULL)
		return -ENOMEM;
	fd = openat(dirfd, tmp,
	    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		rc = -errno;
	for (off = 0; rc == 0 && off < cap; off += step) {
		size_t n = cap - off < step ? (size_t)(cap - off) : step;
		ssize_t w = pwrite(fd, z, n, (off_t)off);

		if (w != (ssize_t)n)
			rc = w < 0 ? -errno : -ENOSPC;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && renameat(dirfd, tmp, dirfd, AUDIT__JOURNAL) != 0)
		rc = -errno;
	if (rc == 0)
		rc = audit__fsync_dir(dirfd);
	else
		unlinkat(dirfd, tmp, 0);
	free(z);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Recovery                                                             */
/* ------------------------------------------------------------------ */

/*
 * Read the record at @p pos: 1 with *r and *payload (malloc'd) when it is
 * whole and continues @p prev (NULL: the lap's first record), 0 when the
 * lap ends there, or -errno.
 */
static int
rec_read(int fd, uint64_t cap, uint64_t pos, const struct jrec *prev,
    struct jrec *r, uint8_t **payload)
{
	uint8_t h[JHEAD], d[32], *p;
	ssize_t got;

	*payload = NULL;
	got = pread(fd, h, JHEAD, (off_t)pos);
	if (got < 0)
		return -errno;
	if (got != JHEAD || memcmp(h, JMAGIC, 8) != 0)
		return 0;
	r->gen = get_u64(h + 8);
	r->lap = get_u64(h + 16);
	r->day = (int64_t)get_u64(h + 24);
	r->off = get_u64(h + 32);
	if (get_u64(h + 40) > cap - pos - JHEAD)
		return 0;
	r->len = (uint32_t)get_u64(h + 40);
	if (prev == NULL ? r->gen != r->lap
	                 : r->lap != prev->lap || r->gen != prev->gen + 1 ||
	            r->day != prev->day || r->off != prev->off + prev->len)
		return 0;
	p = malloc(r->len ? r->len : 1);
	if (p == NULL)
		return -ENOMEM;
	got = pread(fd, p, r->len, (off_t)(pos + JHEAD));
	if (got != (ssize_t)r->len) {
		free(p);
		return got < 0 ? -errno : 0;
	}
	digest_sha256_2(h, JFIELDS, p, r->len, d);
	if (memcmp(d, h + JFIELDS, 32) != 0) {
		free(p);
		return 0; /* torn: the batch it held was never acknowledged */
	}
	*payload = p;
	return 1;
}

/* The day's file the lap's first record names, opened for repair. */
static int
day_open(int dirfd, const struct jrec *r, char name[AUDIT__NAME_LEN + 1],
    char err[256])
{
	int fd, rc;

	audit__file_name(r->day, name);
	fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT && r->off == 0) {
		/* Made and synced before its first batch, so only a lost
		 * folder entry brings us here; its lines are all here. */
		fd = openat(dirfd, name,
		    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
		if (fd >= 0 && (rc = audit__fsync_dir(dirfd)) != 0) {
			close(fd);
			errno = -rc;
			fd = -1;
		}
	}
	if (fd < 0) {
		rc = -errno;
		snprintf(err, 256,
		    "%s: %s, but %s holds its bytes from %llu on; run "
		    "sr-audit verify",
		    name, sr_strerror(rc), AUDIT__JOURNAL,
		    (unsigned long long)r->off);
		return rc == -ENOENT ? -EBADMSG : rc;
	}
	return fd;
}

/* Make the day file's bytes [r->off, +len) equal to @p p. */
static int
rec_apply(int fd, const char *name, const struct jrec *r, const uint8_t *p,
    uint64_t *restored, char err[256])
{
	uint8_t buf[65536];
	uint64_t have, i, from = r->len;
	struct stat st;
	ssize_t got;
	size_t n, k;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (r->off > (uint64_t)st.st_size) {
		snprintf(err, 256,
		    "%s ends at byte %llu, before the journal's record %llu "
		    "(byte %llu): durable lines are missing; run sr-audit "
		    "verify",
		    name, (unsigned long long)st.st_size,
		    (unsigned long long)r->gen, (unsigned long long)r->off);
		return -EBADMSG;
	}
	have = (uint64_t)st.st_size - r->off;
	if (have > r->len)
		have = r->len;
	for (i = 0; i < have; i += n) {
		n = have - i < sizeof(buf) ? (size_t)(have - i) : sizeof(buf);
		got = pread(fd, buf, n, (off_t)(r->off + i));
		if (got != (ssize_t)n)
			return got < 0 ? -errno : -EIO;
		for (k = 0; k < n; k++) {
			if (buf[k] == p[i + k])
				continue;
			if (buf[k] != 0) {
				snprintf(err, 256,
				    "%s byte %llu differs from the journal's "
				    "record %llu (edited after it was "
				    "written?); run sr-audit verify",
				    name, (unsigned long long)(r->off + i + k),
				    (unsigned long long)r->gen);
				return -EBADMSG;
			}
			if (i + k < from)
				from = i + k;
		}
	}
	if (have < r->len && have < from)
		from = have;
	if (from < r->len) {
		got =
		    pwrite(fd, p + from, r->len - from, (off_t)(r->off + from));
		if (got != (ssize_t)(r->len - from))
			return got < 0 ? -errno : -EIO;
		*restored += r->len - from;
	}
	return 0;
}

/* Walk the last lap from block 0 and repair its day file. */
static int
recover(int dirfd, struct audit__journal *j, struct audit__replay *rep,
    char err[256])
{
	struct jrec prev, r;
	uint8_t *p;
	uint64_t pos = 0;
	int dayfd = -1, rc = 0, more;

	while (pos < j->cap) {
		more = rec_read(
		    j->fd, j->cap, pos, rep->records ? &prev : NULL, &r, &p);
		if (more <= 0) {
			rc = more;
			break;
		}
		if (dayfd < 0)
			dayfd = rc = day_open(dirfd, &r, rep->file, err);
		if (rc >= 0)
			rc = rec_apply(
			    dayfd, rep->file, &r, p, &rep->restored, err);
		free(p);
		if (rc < 0)
			break;
		rep->records++;
		if (r.gen >= j->gen)
			j->gen = r.gen + 1;
		prev = r;
		pos += blocks_for(r.len);
	}
	/* Whether or not bytes were written back, the day's file may still
	 * be only in the page cache (the process died, not the machine):
	 * make it durable before the journal forgets it. */
	if (rc >= 0 && dayfd >= 0 && (rc = sync_fd(dayfd)) != 0)
		snprintf(err, 256, "%s: %s", rep->file, sr_strerror(rc));
	else if (rc < 0 && err[0] == '\0')
		snprintf(err, 256, "%s: %s", AUDIT__JOURNAL, sr_strerror(rc));
	if (dayfd >= 0)
		close(dayfd);
	return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ */
/* API (audit_impl.h)                                                   */
/* ------------------------------------------------------------------ */

int
audit__journal_open(int dirfd, uint64_t cap, struct audit__journal *j,
    struct audit__replay *rep, char err[256])
{
	struct timespec now;
	struct stat st;
	int rc;

	memset(j, 0, sizeof(*j));
	memset(rep, 0, sizeof(*rep));
	j->fd = -1;
	cap = cap / JBLOCK * JBLOCK;
	if (cap < AUDIT__JOURNAL_MIN)
		cap = AUDIT__JOURNAL_MIN;
	j->fd = openat(dirfd, AUDIT__JOURNAL, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd < 0 && errno == ENOENT) {
		rc = journal_create(dirfd, cap);
		if (rc != 0) {
			snprintf(err, 256, "%s: creating: %s", AUDIT__JOURNAL,
			    sr_strerror(rc));
			return rc;
		}
		j->fd = openat(
		    dirfd, AUDIT__JOURNAL, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	}
	if (j->fd < 0 || fstat(j->fd, &st) != 0) {
		rc = -errno;
		snprintf(err, 256, "%s: %s", AUDIT__JOURNAL, sr_strerror(rc));
		audit__journal_close(j);
		return rc;
	}
	/* A ring keeps the size it was made with. */
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)AUDIT__JOURNAL_MIN ||
	    st.st_size % JBLOCK != 0) {
		snprintf(err, 256,
		    "%s: not a journal (%lld bytes; expected whole 4 KiB "
		    "blocks); move it aside to start",
		    AUDIT__JOURNAL, (long long)st.st_size);
		audit__journal_close(j);
		return -EBADMSG;
	}
	j->cap = (uint64_t)st.st_size;
	j->dev = st.st_dev;
	j->ino = st.st_ino;
	/* Record numbers go on from the clock, so a lap of this run never
	 * continues into blocks an earlier run left behind. */
	clock_gettime(CLOCK_REALTIME, &now);
	j->gen = (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
	rc = recover(dirfd, j, rep, err);
	/* Forget the lap just replayed: its lines are durable in the day's
	 * file now, and the writer's first lap starts at block 0. */
	if (rc == 0 && (rc = forget_lap(j)) != 0)
		snprintf(err, 256, "%s: %s", AUDIT__JOURNAL, sr_strerror(rc));
	if (rc != 0) {
		audit__journal_close(j);
		return rc;
	}
	j->pos = 0;
	j->lap = j->gen;
	return 0;
}

int
audit__journal_named(const struct audit__journal *j, int dirfd)
{
	struct stat st;

	if (j->fd < 0)
		return 0; /* none */
	if (fstatat(dirfd, AUDIT__JOURNAL, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    st.st_dev != j->dev || st.st_ino != j->ino)
		return -ENOENT;
	return 0;
}

int
audit__journal_restart(struct audit__journal *j, int day_fd)
{
	int rc = sync_fd(day_fd);

	if (rc == 0) {
		j->pos = 0;
		j->lap = j->gen;
	}
	return rc;
}

int
audit__journal_put(struct audit__journal *j, int day_fd, int64_t day,
    uint64_t off, const char *p, size_t len)
{
	struct jrec r = {
		.gen = j->gen, .off = off, .day = day, .len = (uint32_t)len
	};
	uint8_t h[JHEAD];
	uint64_t need = blocks_for(len);
	struct iovec iov[3];
	ssize_t w;
	int rc;

	if (need > j->cap || len > UINT32_MAX) {
		/* Larger than the whole ring: the day's file itself is made
		 * durable, which also ends the lap. */
		return audit__journal_restart(j, day_fd);
	}
	if (j->pos + need > j->cap && (rc = audit__journal_restart(j, day_fd)))
		return rc;
	r.gen = j->gen;
	r.lap = j->lap;
	head_fields(&r, h);
	digest_sha256_2(h, JFIELDS, p, len, h + JFIELDS);
	iov[0] = (struct iovec){ .iov_base = h, .iov_len = JHEAD };
	iov[1] = (struct iovec){ .iov_base = (void *)p, .iov_len = len };
	iov[2] = (struct iovec){ .iov_base = (void *)zero_block,
		.iov_len = (size_t)(need - JHEAD - len) };
	w = pwritev(j->fd, iov, 3, (off_t)j->pos);
	if (w != (ssize_t)need)
		return w < 0 ? -errno : -EIO;
	if ((rc = sync_fd(j->fd)) != 0)
		return rc;
	/* A failed write or sync leaves pos and gen as they were: the next
	 * batch overwrites that slot. */
	j->pos += need;
	j->gen++;
	return 0;
}

int
audit__journal_finish(struct audit__journal *j, int day_fd)
{
	int rc = day_fd >= 0 ? sync_fd(day_fd) : 0;

	if (rc == 0 && j->fd >= 0)
		rc = forget_lap(j);
	return rc;
}

void
audit__journal_close(struct audit__journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}
