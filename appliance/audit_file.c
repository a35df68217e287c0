/*
 * appliance/audit_file.c: the audit log's files: per-day names, listing,
 * the resume at open (find the chain's last good line, cut a torn tail a
 * crash left, compare with checkpoint.last), the checkpoint key file and
 * checkpoint.last itself.
 *
 * Never cuts more than one batch off a file: anything larger is reported
 * (-EBADMSG) for a person to look at, never silently repaired.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <yyjson.h>

#include "appliance/audit_impl.h"

void
audit__file_name(int64_t day, char out[AUDIT__NAME_LEN + 1])
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, AUDIT__NAME_LEN + 1, "audit-%04d-%02d-%02d.jsonl",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday);
}

int
audit__file_day(const char *name, int64_t *day)
{
	char back[AUDIT__NAME_LEN + 1];
	struct tm tm;
	time_t t;
	int n = 0;

	memset(&tm, 0, sizeof(tm));
	if (strlen(name) != AUDIT__NAME_LEN ||
	    sscanf(name, "audit-%4d-%2d-%2d.jsonl%n", &tm.tm_year, &tm.tm_mon,
	        &tm.tm_mday, &n) != 3 ||
	    n != AUDIT__NAME_LEN)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t == (time_t)-1 || t % 86400 != 0)
		return -EINVAL;
	/* Only the canonical spelling of a real date. */
	audit__file_name((int64_t)t / 86400, back);
	if (strcmp(back, name) != 0)
		return -EINVAL;
	*day = (int64_t)t / 86400;
	return 0;
}

static int
day_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
audit__list_days(const char *dir, int64_t **days, size_t *n)
{
	struct dirent *de;
	int64_t *v = NULL, *nv, d;
	size_t cap = 0, k = 0;
	DIR *dp;

	*days = NULL;
	*n = 0;
	dp = opendir(dir);
	if (dp == NULL)
		return -errno;
	while ((de = readdir(dp)) != NULL) {
		if (audit__file_day(de->d_name, &d) != 0)
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(dp);
				return -ENOMEM;
			}
			v = nv;
		}
		v[k++] = d;
	}
	closedir(dp);
	if (k > 1)
		qsort(v, k, sizeof(*v), day_cmp);
	*days = v;
	*n = k;
	return 0;
}

int
audit__read_small(
    int dirfd, const char *name, size_t max, char **buf, size_t *len)
{
	struct stat st;
	ssize_t r;
	size_t got = 0;
	char *b;
	int fd, rc = 0;

	*buf = NULL;
	*len = 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, b + got, (size_t)st.st_size - got);
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			free(b);
			goto out;
		}
		got += (size_t)r;
	}
	b[got] = '\0';
	*buf = b;
	*len = got;
out:
	close(fd);
	return rc;
}

int
audit__fsync_dir(int dirfd)
{
	return fsync(dirfd) == 0 ? 0 : -errno;
}

/* seq and prev of a line (parsed as JSON; the line's own hash is the
 * caller's to check). 0 or -EBADMSG. */
static int
line_fields(const char *line, size_t len, uint64_t *seq, uint8_t prev[32])
{
	yyjson_doc *doc = yyjson_read(line, len, 0);
	yyjson_val *root = yyjson_doc_get_root(doc), *s, *p;
	int rc = -EBADMSG;

	s = yyjson_obj_get(root, "seq");
	p = yyjson_obj_get(root, "prev");
	if (yyjson_is_uint(s) && yyjson_is_str(p) && yyjson_get_len(p) == 64 &&
	    sr_hex_decode(prev, 32, yyjson_get_str(p), 64) == 32) {
		*seq = yyjson_get_uint(s);
		rc = 0;
	}
	yyjson_doc_free(doc);
	return rc;
}

int
audit__first_line(int dirfd, const char *name, uint64_t *seq, uint8_t prev[32])
{
	char buf[AUDIT__LINE_MAX], *nl;
	uint8_t h[32];
	ssize_t r;
	int fd, rc;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = pread(fd, buf, sizeof(buf), 0);
	rc = r < 0 ? -errno : 0;
	close(fd);
	if (rc != 0)
		return rc;
	nl = r > 0 ? memchr(buf, '\n', (size_t)r) : NULL;
	if (nl == NULL)
		return r == 0 ? -ENOENT : -EBADMSG;
	if (audit__line_check(buf, (size_t)(nl - buf), h) != 0)
		return -EBADMSG;
	return line_fields(buf, (size_t)(nl - buf), seq, prev);
}

/* The hex of a line's prev field, which ends the hashed prefix. */
static int
line_prev(const char *line, size_t len, uint8_t prev[32])
{
	const char *p;

	if (len < AUDIT__HASH_TAIL + 75)
		return -EBADMSG;
	p = line + len - AUDIT__HASH_TAIL - 74;
	if (memcmp(p, ",\"prev\":\"", 9) != 0 || p[73] != '"' ||
	    sr_hex_decode(prev, 32, p + 9, 64) != 32)
		return -EBADMSG;
	return 0;
}

/*
 * Walk the last @p w bytes of file @p fd (length @p size) line by line
 * from a line boundary: keep going while each line checks and links to
 * the one before. @return 0 with *good_end the end of the last good line
 * (after its newline; 0 if none) and that line's seq and hash.
 */
static int
tail_walk(int fd, uint64_t size, uint64_t w, uint64_t *good_end, uint64_t *seq,
    uint8_t head[32])
{
	uint64_t start = size - w;
	uint8_t h[32], prev[32], last[32];
	size_t off = 0, len;
	char *buf, *nl;
	int have = 0, rc = 0;
	ssize_t r;

	*good_end = 0;
	buf = malloc((size_t)w + 1);
	if (buf == NULL)
		return -ENOMEM;
	r = pread(fd, buf, (size_t)w, (off_t)start);
	if (r != (ssize_t)w) {
		rc = r < 0 ? -errno : -EIO;
		goto out;
	}
	if (start > 0) { /* start mid-line: skip to the next boundary */
		nl = memchr(buf, '\n', (size_t)w);
		if (nl == NULL)
			goto out;
		off = (size_t)(nl - buf) + 1;
	}
	while (off < w && (nl = memchr(buf + off, '\n', w - off)) != NULL) {
		len = (size_t)(nl - (buf + off));
		if (audit__line_check(buf + off, len, h) != 0)
			break;
		if (have &&
		    (line_prev(buf + off, len, prev) != 0 ||
		        memcmp(prev, last, 32) != 0))
			break;
		if (line_fields(buf + off, len, seq, prev) != 0)
			break;
		memcpy(last, h, 32);
		have = 1;
		off += len + 1;
		*good_end = start + off;
	}
	if (have)
		memcpy(head, last, 32);
out:
	free(buf);
	return rc;
}

/* Cut [good_end, size) off the file, hashing what goes. */
static int
tail_cut(int fd, uint64_t good_end, uint64_t size, uint8_t torn_hash[32])
{
	mbedtls_sha256_context c;
	char buf[65536];
	uint64_t off = good_end;
	ssize_t r;
	int rc = 0;

	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	while (off < size) {
		r = pread(fd, buf,
		    size - off < sizeof(buf) ? (size_t)(size - off)
		                             : sizeof(buf),
		    (off_t)off);
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			break;
		}
		mbedtls_sha256_update(&c, (const uint8_t *)buf, (size_t)r);
		off += (uint64_t)r;
	}
	mbedtls_sha256_finish(&c, torn_hash);
	mbedtls_sha256_free(&c);
	if (rc == 0 && (ftruncate(fd, (off_t)good_end) != 0 || fsync(fd) != 0))
		rc = -errno;
	return rc;
}

/* Compare the resumed end with checkpoint.last. */
static int
ckpt_last_check(int dirfd, const struct audit__tail *t, char err[256])
{
	uint8_t h[32], prev[32];
	uint64_t seq;
	size_t len;
	char *buf;
	int rc;

	rc = audit__read_small(
	    dirfd, AUDIT__CKPT_LAST, AUDIT__LINE_MAX, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0) {
		snprintf(err, 256, "%s: %s", AUDIT__CKPT_LAST, sr_strerror(rc));
		return rc;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	rc = -EBADMSG;
	if (audit__line_check(buf, len, h) != 0 ||
	    line_fields(buf, len, &seq, prev) != 0)
		snprintf(err, 256, "%s: damaged (its hash does not match)",
		    AUDIT__CKPT_LAST);
	else if (seq > t->seq)
		snprintf(err, 256,
		    "truncated: the log ends at seq %llu but %s records a "
		    "signed checkpoint at seq %llu; run sr-audit verify",
		    (unsigned long long)t->seq, AUDIT__CKPT_LAST,
		    (unsigned long long)seq);
	else if (seq == t->seq && memcmp(h, t->head, 32) != 0)
		snprintf(err, 256,
		    "the log's last line (seq %llu) is not the checkpoint "
		    "%s records; run sr-audit verify",
		    (unsigned long long)seq, AUDIT__CKPT_LAST);
	else
		rc = 0;
	free(buf);
	return rc;
}

int
audit__resume(
    const char *dir, uint64_t max_torn, struct audit__tail *t, char err[256])
{
	char name[AUDIT__NAME_LEN + 1];
	uint64_t good_end, w;
	int64_t *days = NULL;
	struct stat st;
	size_t n = 0, i;
	int dirfd = -1, fd = -1, rc;

	memset(t, 0, sizeof(*t));
	t->day = INT64_MIN;
	rc = audit__list_days(dir, &days, &n);
	if (rc == 0) {
		dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			rc = -errno;
	}
	if (rc != 0) {
		snprintf(err, 256, "%s: %s", dir, sr_strerror(rc));
		goto out;
	}
	for (i = n; i-- > 0;) {
		audit__file_name(days[i], name);
		fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) != 0) {
			rc = -errno;
			snprintf(
			    err, 256, "%s/%s: %s", dir, name, sr_strerror(rc));
			goto out;
		}
		if (i == n - 1) {
			t->day = days[i];
			t->size = (uint64_t)st.st_size;
		}
		w = (uint64_t)st.st_size;
		if (w > max_torn + 2 * AUDIT__LINE_MAX)
			w = max_torn + 2 * AUDIT__LINE_MAX;
		rc = w == 0 ? 0
		            : tail_walk(fd, (uint64_t)st.st_size, w, &good_end,
		                  &t->seq, t->head);
		if (rc != 0) {
			snprintf(
			    err, 256, "%s/%s: %s", dir, name, sr_strerror(rc));
			goto out;
		}
		if (w > 0 &&
		    ((good_end == 0 && w < (uint64_t)st.st_size) ||
		        (uint64_t)st.st_size - good_end > max_torn)) {
			rc = -EBADMSG;
			snprintf(err, 256,
			    "%s/%s: damaged tail from byte %llu (more than one "
			    "batch); run sr-audit verify",
			    dir, name, (unsigned long long)good_end);
			goto out;
		}
		if (good_end < (uint64_t)st.st_size) {
			/* A crash cut the last batch short: nothing in it
			 * was acknowledged, so it goes (and is recorded). */
			t->torn = (uint64_t)st.st_size - good_end;
			memcpy(t->torn_file, name, sizeof(name));
			rc = tail_cut(
			    fd, good_end, (uint64_t)st.st_size, t->torn_hash);
			if (rc != 0) {
				snprintf(err, 256,
				    "%s/%s: cutting torn tail: %s", dir, name,
				    sr_strerror(rc));
				goto out;
			}
			if (i == n - 1)
				t->size = good_end;
		}
		close(fd);
		fd = -1;
		if (good_end > 0)
			break;
	}
	rc = ckpt_last_check(dirfd, t, err);
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(days);
	return rc;
}

int
audit__pubkey_write(
    const char *dir, const char *key_id, const uint8_t pub[65], char err[256])
{
	char name[AUDIT_KEY_ID_MAX + 32], tmp[AUDIT_KEY_ID_MAX + 40];
	char pem[256], *old = NULL;
	size_t len, oldlen;
	int dirfd, fd = -1, rc;

	len = audit__pem_encode(pub, pem);
	snprintf(name, sizeof(name), "checkpoint-key-%s.pub", key_id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = -errno;
		goto out;
	}
	rc = audit__read_small(dirfd, name, 4096, &old, &oldlen);
	if (rc == 0) {
		rc = oldlen == len && memcmp(old, pem, len) == 0 ? 0 : -EEXIST;
		if (rc != 0)
			snprintf(err, 256,
			    "%s/%s holds another key than the signer's", dir,
			    name);
		goto out;
	}
	if (rc != -ENOENT)
		goto out;
	errno = 0;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, pem, len) != (ssize_t)len || fsync(fd) != 0 ||
	    renameat(dirfd, tmp, dirfd, name) != 0)
		rc = errno ? -errno : -EIO;
	else
		rc = audit__fsync_dir(dirfd);
out:
	if (rc != 0 && rc != -EEXIST)
		snprintf(err, 256, "%s/%s: %s", dir, name, sr_strerror(rc));
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(old);
	return rc;
}

int
audit__ckpt_last_write(int dirfd, const char *line, size_t len)
{
	static const char tmp[] = AUDIT__CKPT_LAST ".tmp";
	int fd, rc = 0;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fdatasync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && renameat(dirfd, tmp, dirfd, AUDIT__CKPT_LAST) != 0)
		rc = -errno;
	if (rc == 0)
		rc = audit__fsync_dir(dirfd);
	return rc;
}
