/*
 * tests/unit/lib/test_util.c: the helpers of lib/util.c: hex encoding and
 * decoding, reading a secret file, writing a private file and the kernel's
 * random generator. File tests work in a fresh mkdtemp folder each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "lib/sr.h"

/* ---------------------------------------------------------------- */
/* Hex                                                                */
/* ---------------------------------------------------------------- */

static void
test_hex_encode_known(void **state)
{
	static const unsigned char in[] = { 0x00, 0x01, 0x7f, 0xab, 0xff };
	char out[2 * sizeof(in) + 1];

	(void)state;
	memset(out, 'x', sizeof(out));
	sr_hex_encode(out, in, sizeof(in));
	assert_string_equal(out, "00017fabff");

	memset(out, 'x', sizeof(out));
	sr_hex_encode(out, in, 0);
	assert_string_equal(out, "");
}

static void
test_hex_round_trip(void **state)
{
	unsigned char in[256], back[256];
	char hex[2 * sizeof(in) + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)i;
	sr_hex_encode(hex, in, sizeof(in));
	assert_int_equal(strlen(hex), 2 * sizeof(in));
	memset(back, 0, sizeof(back));
	assert_int_equal(sr_hex_decode(back, sizeof(back), hex, strlen(hex)),
	    (int)sizeof(in));
	assert_memory_equal(back, in, sizeof(in));
}

static void
test_hex_decode_upper_and_mixed(void **state)
{
	static const unsigned char want[] = { 0xde, 0xad, 0xbe, 0xef, 0x09 };
	unsigned char out[8];

	(void)state;
	memset(out, 0, sizeof(out));
	assert_int_equal(sr_hex_decode(out, sizeof(out), "DEADBEEF09", 10), 5);
	assert_memory_equal(out, want, sizeof(want));

	memset(out, 0, sizeof(out));
	assert_int_equal(sr_hex_decode(out, sizeof(out), "dEaDbEeF09", 10), 5);
	assert_memory_equal(out, want, sizeof(want));
}

static void
test_hex_decode_uses_hexlen(void **state)
{
	unsigned char out[4] = { 0x55, 0x55, 0x55, 0x55 };

	(void)state;
	/* Only the first 4 characters count; the rest is never read. */
	assert_int_equal(sr_hex_decode(out, sizeof(out), "a1b2zz", 4), 2);
	assert_int_equal(out[0], 0xa1);
	assert_int_equal(out[1], 0xb2);
	assert_int_equal(out[2], 0x55);
	assert_int_equal(sr_hex_decode(out, sizeof(out), "", 0), 0);
}

static void
test_hex_decode_odd(void **state)
{
	unsigned char out[8];

	(void)state;
	assert_int_equal(sr_hex_decode(out, sizeof(out), "abc", 3), -EINVAL);
	assert_int_equal(sr_hex_decode(out, sizeof(out), "a", 1), -EINVAL);
	/* Odd length is reported even when the output is also too small. */
	assert_int_equal(sr_hex_decode(out, 0, "abc", 3), -EINVAL);
}

static void
test_hex_decode_bad_char(void **state)
{
	static const char *const bad[] = {
		"zz",
		"0g",
		"g0",
		" 1",
		"1 ",
		"0x",
		"-1",
		"@@",
		"`f",
		"G0",
		":0",
		"/0",
	};
	unsigned char out[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    sr_hex_decode(out, sizeof(out), bad[i], 2), -EINVAL);
	/* A bad character late in the string is still caught. */
	assert_int_equal(sr_hex_decode(out, sizeof(out), "00112z", 6), -EINVAL);
}

static void
test_hex_decode_too_small(void **state)
{
	unsigned char out[4];

	(void)state;
	assert_int_equal(sr_hex_decode(out, 2, "001122", 6), -ENOSPC);
	assert_int_equal(sr_hex_decode(out, 0, "00", 2), -ENOSPC);
	assert_int_equal(sr_hex_decode(out, 3, "001122", 6), 3);
}

/* ---------------------------------------------------------------- */
/* Files                                                              */
/* ---------------------------------------------------------------- */

struct tmp {
	char dir[64];
};

static int
tmp_setup(void **state)
{
	struct tmp *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/sr-test-util.XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int
tmp_teardown(void **state)
{
	struct tmp *t = *state;
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	d = opendir(t->dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", t->dir, de->d_name);
		if (unlink(path) != 0 && rmdir(path) != 0)
			rc = -1;
	}
	closedir(d);
	if (rmdir(t->dir) != 0)
		rc = -1;
	free(t);
	return rc;
}

/* @p out gets "<dir>/<name>". */
static void
tmp_path(const struct tmp *t, const char *name, char *out, size_t outlen)
{
	int n;

	n = snprintf(out, outlen, "%s/%s", t->dir, name);
	assert_true(n > 0 && (size_t)n < outlen);
}

static void
put_file(const struct tmp *t, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	tmp_path(t, name, path, sizeof(path));
	f = fopen(path, "wb");
	assert_non_null(f);
	if (len > 0)
		assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Write @p data to a file, read it back as a secret, compare to @p want. */
static void
check_read(const struct tmp *t, const char *data, size_t len, const char *want,
    size_t wantlen)
{
	struct sr_secret s = { 0 };
	char path[PATH_MAX];

	put_file(t, "f", data, len);
	tmp_path(t, "f", path, sizeof(path));
	assert_int_equal(sr_secret_read_file(&s, path, 64), 0);
	assert_int_equal(sr_secret_len(&s), wantlen);
	if (wantlen > 0)
		assert_memory_equal(sr_secret_bytes(&s), want, wantlen);
	sr_secret_free(&s);
	assert_int_equal(unlink(path), 0);
}

#define CHECK_READ(t, data, want) \
	check_read((t), (data), sizeof(data) - 1, (want), sizeof(want) - 1)

static void
test_read_file_plain(void **state)
{
	const struct tmp *t = *state;

	CHECK_READ(t, "s3cret", "s3cret");
	CHECK_READ(t, "", "");
	CHECK_READ(t, "a\0b", "a\0b");
}

static void
test_read_file_strips_one_newline(void **state)
{
	const struct tmp *t = *state;

	CHECK_READ(t, "s3cret\n", "s3cret");
	CHECK_READ(t, "s3cret\r\n", "s3cret");
	CHECK_READ(t, "\n", "");
	CHECK_READ(t, "\r\n", "");
}

static void
test_read_file_strips_only_one(void **state)
{
	const struct tmp *t = *state;

	CHECK_READ(t, "s3cret\n\n", "s3cret\n");
	CHECK_READ(t, "s3cret\r\n\r\n", "s3cret\r\n");
	CHECK_READ(t, "s3cret\n\r\n", "s3cret\n");
	CHECK_READ(t, "s3cret\r\r\n", "s3cret\r");
	CHECK_READ(t, "a\nb", "a\nb");
	/* A lone trailing '\r' is not a line end: the secret keeps it. */
	CHECK_READ(t, "s3cret\r", "s3cret\r");
	CHECK_READ(t, "\r", "\r");
}

static void
test_read_file_max(void **state)
{
	const struct tmp *t = *state;
	struct sr_secret s = { 0 };
	char path[PATH_MAX];

	put_file(t, "f", "12345678", 8);
	tmp_path(t, "f", path, sizeof(path));
	assert_int_equal(sr_secret_read_file(&s, path, 8), 0);
	assert_int_equal(sr_secret_len(&s), 8);
	assert_memory_equal(sr_secret_bytes(&s), "12345678", 8);
	sr_secret_free(&s);

	assert_int_equal(sr_secret_read_file(&s, path, 7), -EFBIG);
	assert_null(sr_secret_bytes(&s));
	assert_int_equal(sr_secret_read_file(&s, path, 0), -EFBIG);
	assert_null(sr_secret_bytes(&s));
}

static void
test_read_file_huge_max(void **state)
{
	const struct tmp *t = *state;
	struct sr_secret s = { 0 };
	char path[PATH_MAX];
	int rc;

	put_file(t, "f", "abc\n", 4);
	tmp_path(t, "f", path, sizeof(path));
	/* Must never hand back a short buffer for a huge limit. */
	rc = sr_secret_read_file(&s, path, SIZE_MAX);
	if (rc == 0) {
		assert_int_equal(sr_secret_len(&s), 3);
		assert_memory_equal(sr_secret_bytes(&s), "abc", 3);
		sr_secret_free(&s);
	} else {
		assert_int_equal(rc, -ENOMEM);
		assert_null(sr_secret_bytes(&s));
	}
}

static void
test_read_file_missing(void **state)
{
	const struct tmp *t = *state;
	struct sr_secret s = { 0 };
	char path[PATH_MAX];

	tmp_path(t, "nope", path, sizeof(path));
	assert_int_equal(sr_secret_read_file(&s, path, 64), -ENOENT);
	assert_null(sr_secret_bytes(&s));
	assert_int_equal(sr_secret_len(&s), 0);
}

static void
test_read_file_refuses_symlink(void **state)
{
	const struct tmp *t = *state;
	char path[PATH_MAX], lnk[PATH_MAX];
	struct sr_secret s = { 0 };

	put_file(t, "target", "s3cret", 6);
	tmp_path(t, "target", path, sizeof(path));
	tmp_path(t, "link", lnk, sizeof(lnk));
	assert_int_equal(symlink(path, lnk), 0);
	assert_int_equal(sr_secret_read_file(&s, lnk, 64), -ELOOP);
	assert_null(sr_secret_bytes(&s));
	/* The target itself reads fine. */
	assert_int_equal(sr_secret_read_file(&s, path, 64), 0);
	assert_int_equal(sr_secret_len(&s), 6);
	sr_secret_free(&s);
}

static void
test_read_file_refuses_device(void **state)
{
	struct sr_secret s = { 0 };

	(void)state;
	/* Readable, but not a regular file: never a secret. */
	assert_true(sr_secret_read_file(&s, "/dev/null", 64) < 0);
	assert_null(sr_secret_bytes(&s));
}

static void
test_read_file_refuses_directory(void **state)
{
	const struct tmp *t = *state;
	struct sr_secret s = { 0 };
	char path[PATH_MAX];

	tmp_path(t, "sub", path, sizeof(path));
	assert_int_equal(mkdir(path, 0700), 0);
	assert_true(sr_secret_read_file(&s, path, 64) < 0);
	assert_null(sr_secret_bytes(&s));
	assert_true(sr_secret_read_file(&s, t->dir, 64) < 0);
	assert_null(sr_secret_bytes(&s));
}

/* Read a whole small file with plain stdio into @p buf; return its size. */
static size_t
slurp(const char *path, char *buf, size_t cap)
{
	size_t n;
	FILE *f;

	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, cap, f);
	assert_int_equal(fclose(f), 0);
	return n;
}

static void
test_write_private_file(void **state)
{
	const struct tmp *t = *state;
	char path[PATH_MAX], buf[64];
	struct stat st;
	mode_t old;
	int rc;

	tmp_path(t, "key", path, sizeof(path));
	/* The mode must not depend on a friendly umask. */
	old = umask(0);
	rc = sr_write_private_file(path, "wrapped\0key", 11);
	umask(old);
	assert_int_equal(rc, 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 11);
	assert_int_equal(slurp(path, buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "wrapped\0key", 11);
}

static void
test_write_private_file_empty(void **state)
{
	const struct tmp *t = *state;
	char path[PATH_MAX];
	struct stat st;

	tmp_path(t, "empty", path, sizeof(path));
	assert_int_equal(sr_write_private_file(path, NULL, 0), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void
test_write_private_file_no_overwrite(void **state)
{
	const struct tmp *t = *state;
	char path[PATH_MAX], buf[64];

	tmp_path(t, "key", path, sizeof(path));
	assert_int_equal(sr_write_private_file(path, "first", 5), 0);
	assert_int_equal(sr_write_private_file(path, "second!", 7), -EEXIST);
	/* The first content is still there, untouched. */
	assert_int_equal(slurp(path, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "first", 5);
}

static void
test_write_private_file_no_follow(void **state)
{
	const struct tmp *t = *state;
	char lnk[PATH_MAX], target[PATH_MAX];
	struct stat st;

	tmp_path(t, "target", target, sizeof(target));
	tmp_path(t, "link", lnk, sizeof(lnk));
	/* A dangling symlink must not be followed to create its target. */
	assert_int_equal(symlink(target, lnk), 0);
	assert_int_equal(sr_write_private_file(lnk, "x", 1), -EEXIST);
	assert_int_equal(lstat(target, &st), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_write_private_file_missing_dir(void **state)
{
	const struct tmp *t = *state;
	char path[PATH_MAX];

	tmp_path(t, "no/such/file", path, sizeof(path));
	assert_int_equal(sr_write_private_file(path, "x", 1), -ENOENT);
}

static void
test_write_then_read(void **state)
{
	const struct tmp *t = *state;
	struct sr_secret s = { 0 };
	char path[PATH_MAX];

	tmp_path(t, "pin", path, sizeof(path));
	assert_int_equal(sr_write_private_file(path, "1234\n", 5), 0);
	assert_int_equal(sr_secret_read_file(&s, path, 16), 0);
	assert_int_equal(sr_secret_len(&s), 4);
	assert_memory_equal(sr_secret_bytes(&s), "1234", 4);
	sr_secret_free(&s);
}

/* ---------------------------------------------------------------- */
/* Random                                                             */
/* ---------------------------------------------------------------- */

static void
test_os_random(void **state)
{
	unsigned char a[64], b[64], zero[64];

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(sr_os_random(a, sizeof(a)), 0);
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(sr_os_random(b, sizeof(b)), 0);
	assert_memory_not_equal(b, zero, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(sr_os_random(a, 0), 0);
}

/* xoshiro256** from state {1, 2, 3, 4}: the reference implementation's
 * first outputs (Blackman and Vigna's xoshiro256starstar.c). */
static void
test_xoshiro_known_answers(void **state)
{
	uint64_t s[4] = { 1, 2, 3, 4 };

	(void)state;
	assert_int_equal(sr_xoshiro_next(s), 11520);
	assert_int_equal(sr_xoshiro_next(s), 0);
	assert_int_equal(sr_xoshiro_next(s), 1509978240);
	assert_int_equal(sr_xoshiro_next(s), 1215971899390074240ull);
}

/* Decimal without printf: the edges and the longest value. */
static void
test_u64_decimal(void **state)
{
	char out[21];
	size_t n;

	(void)state;
	n = sr_u64_decimal(out, 0);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "0", 1);
	n = sr_u64_decimal(out, 10);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "10", 2);
	n = sr_u64_decimal(out, UINT64_MAX);
	assert_int_equal(n, 20);
	assert_memory_equal(out, "18446744073709551615", 20);
}

/* sr_strlcpy: what snprintf(dst, cap, "%s", src) writes, and its length;
 * never a byte past cap. */
static void
test_strlcpy(void **state)
{
	char out[8], want[8];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(sr_strlcpy(out, "abc", sizeof(out)), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(sr_strlcpy(out, "", sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(sr_strlcpy(out, "abcdefg", sizeof(out)), 7);
	assert_string_equal(out, "abcdefg");
	memset(out, 'x', sizeof(out));
	assert_int_equal(sr_strlcpy(out, "abcdefghijk", 5), 4);
	snprintf(want, 5, "%s", "abcdefghijk");
	assert_string_equal(out, want);
	assert_int_equal(out[5], 'x');
	assert_int_equal(sr_strlcpy(out, "abc", 1), 0);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define F(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)
		cmocka_unit_test(test_hex_encode_known),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_decode_upper_and_mixed),
		cmocka_unit_test(test_hex_decode_uses_hexlen),
		cmocka_unit_test(test_hex_decode_odd),
		cmocka_unit_test(test_hex_decode_bad_char),
		cmocka_unit_test(test_hex_decode_too_small),
		F(test_read_file_plain),
		F(test_read_file_strips_one_newline),
		F(test_read_file_strips_only_one),
		F(test_read_file_max),
		F(test_read_file_huge_max),
		F(test_read_file_missing),
		F(test_read_file_refuses_symlink),
		F(test_read_file_refuses_directory),
		cmocka_unit_test(test_read_file_refuses_device),
		F(test_write_private_file),
		F(test_write_private_file_empty),
		F(test_write_private_file_no_overwrite),
		F(test_write_private_file_no_follow),
		F(test_write_private_file_missing_dir),
		F(test_write_then_read),
		cmocka_unit_test(test_os_random),
		cmocka_unit_test(test_xoshiro_known_answers),
		cmocka_unit_test(test_u64_decimal),
		cmocka_unit_test(test_strlcpy),
#undef F
	};

	return cmocka_run_group_tests_name("lib/util", tests, NULL, NULL);
}
