/*
 * lib/util.c: small helpers: hex, private-file reading and writing, the
 * kernel's random generator.
 *
 * Files written here are created new with mode 0600 and synced; this file
 * must never overwrite an existing file or follow a symlink when reading a
 * secret.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/sr.h"

void
sr_hex_encode(char *out, const void *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

size_t
sr_u64_decimal(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

size_t
sr_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

static int
sr_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sr_hex_decode(void *out, size_t cap, const char *hex, size_t hexlen)
{
	unsigned char *o = out;
	size_t i;
	int hi, lo;

	if (hexlen % 2 != 0)
		return -EINVAL;
	if (hexlen / 2 > cap)
		return -ENOSPC;
	if (hexlen / 2 > INT_MAX)
		return -EINVAL;
	for (i = 0; i < hexlen / 2; i++) {
		hi = sr_hexval(hex[2 * i]);
		lo = sr_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		o[i] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(hexlen / 2);
}

int
sr_secret_read_file(struct sr_secret *out, const char *path, size_t max)
{
	struct sr_secret buf = { 0 };
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, rc;

	/* O_NONBLOCK so a FIFO planted at the path cannot hang the open. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	rc = sr_secret_alloc(&buf, max);
	if (rc != 0)
		goto out;
	for (;;) {
		n = read(fd, sr_secret_bytes(&buf) + got, max - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == max) {
			char extra;
			if (read(fd, &extra, 1) > 0) {
				rc = -EFBIG;
				goto out;
			}
			break;
		}
	}
	/* Drop one "\n" or "\r\n"; a lone trailing '\r' is data. */
	if (got > 0 && sr_secret_bytes(&buf)[got - 1] == '\n') {
		got--;
		if (got > 0 && sr_secret_bytes(&buf)[got - 1] == '\r')
			got--;
	}
	rc = sr_secret_set(out, sr_secret_bytes(&buf), got);
out:
	sr_secret_free(&buf);
	close(fd);
	return rc;
}

int
sr_write_private_file(const char *path, const void *data, size_t len)
{
	const unsigned char *p = data;
	char dir[PATH_MAX];
	ssize_t n;
	int fd, dfd, rc = 0;

	fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0) {
		unlink(path);
		return rc;
	}
	if (strlen(path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, strlen(path) + 1);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) != 0)
			rc = -errno;
		close(dfd);
	}
	return rc;
}

int
sr_os_random(void *buf, size_t len)
{
	unsigned char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static inline uint64_t
rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
sr_xoshiro_next(uint64_t s[4])
{
	uint64_t r = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return r;
}
