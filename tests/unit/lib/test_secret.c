/*
 * tests/unit/lib/test_secret.c: the secret-buffer type of lib/secret.c
 * (alloc, set, free), sr_wipe() and the constant-time sr_ct_equal().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "lib/sr.h"

/* Are all @p len bytes at @p p equal to @p v? */
static int
all_bytes(const unsigned char *p, size_t len, unsigned char v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

static void
assert_secret_empty(const struct sr_secret *s)
{
	assert_null(sr_secret_bytes(s));
	assert_int_equal(sr_secret_len(s), 0);
	assert_int_equal(s->_locked, 0);
}

static void
test_alloc_zero_filled(void **state)
{
	struct sr_secret s;

	(void)state;
	/* Garbage in the struct must not matter. */
	memset(&s, 0x5a, sizeof(s));
	assert_int_equal(sr_secret_alloc(&s, 64), 0);
	assert_non_null(sr_secret_bytes(&s));
	assert_int_equal(sr_secret_len(&s), 64);
	assert_true(all_bytes(sr_secret_bytes(&s), 64, 0));
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_alloc_len_zero(void **state)
{
	struct sr_secret s;

	(void)state;
	assert_int_equal(sr_secret_alloc(&s, 0), 0);
	assert_int_equal(sr_secret_len(&s), 0);
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_alloc_size_max(void **state)
{
	struct sr_secret s;

	(void)state;
	/* len + 1 would wrap to 0: must fail, not hand back a tiny buffer. */
	memset(&s, 0x5a, sizeof(s));
	assert_int_equal(sr_secret_alloc(&s, SIZE_MAX), -ENOMEM);
	assert_secret_empty(&s);
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_set_copies(void **state)
{
	unsigned char src[32];
	struct sr_secret s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 7 + 1);
	assert_int_equal(sr_secret_set(&s, src, sizeof(src)), 0);
	assert_int_equal(sr_secret_len(&s), sizeof(src));
	assert_ptr_not_equal(sr_secret_bytes(&s), src);
	assert_memory_equal(sr_secret_bytes(&s), src, sizeof(src));

	/* The secret owns a copy: changing the source leaves it alone. */
	memset(src, 0, sizeof(src));
	for (i = 0; i < sizeof(src); i++)
		assert_int_equal(
		    sr_secret_bytes(&s)[i], (unsigned char)(i * 7 + 1));
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_set_len_zero(void **state)
{
	struct sr_secret s;

	(void)state;
	assert_int_equal(sr_secret_set(&s, NULL, 0), 0);
	assert_int_equal(sr_secret_len(&s), 0);
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_free_twice(void **state)
{
	struct sr_secret s;

	(void)state;
	assert_int_equal(sr_secret_set(&s, "pin", 3), 0);
	assert_int_equal(sr_secret_len(&s), 3);
	sr_secret_free(&s);
	assert_secret_empty(&s);
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_free_zeroed(void **state)
{
	struct sr_secret s = { 0 };

	(void)state;
	sr_secret_free(&s);
	assert_secret_empty(&s);
}

static void
test_wipe_stack_buffer(void **state)
{
	unsigned char buf[48];

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	sr_wipe(buf, 32);
	assert_true(all_bytes(buf, 32, 0));
	/* Only the bytes asked for. */
	assert_true(all_bytes(buf + 32, 16, 0xaa));

	sr_wipe(buf + 32, 0);
	assert_true(all_bytes(buf + 32, 16, 0xaa));
	sr_wipe(NULL, 0);
	sr_wipe(buf, sizeof(buf));
	assert_true(all_bytes(buf, sizeof(buf), 0));
}

/* A call that leaves a credential-like marker in its frame and returns
 * where it was (reading a dead frame is what an attacker with the
 * process's memory does; here it is the test's only way to look). */
#define STACK_MARK "srk_stack_marker_left_by_a_finished_call"
#define STACK_MARK_COPIES 64

static __attribute__((noinline)) uintptr_t
leave_marker(void)
{
	volatile char zone[STACK_MARK_COPIES * 64];
	size_t i, j;

	for (i = 0; i < STACK_MARK_COPIES; i++)
		for (j = 0; j < sizeof(STACK_MARK); j++)
			zone[i * 64 + j] = STACK_MARK[j];
	return (uintptr_t)zone;
}

static int
marker_count(uintptr_t at)
{
	const volatile char *p = (const volatile char *)at;
	int n = 0;
	size_t i, j;

	for (i = 0; i < STACK_MARK_COPIES; i++) {
		for (j = 0;
		     j < sizeof(STACK_MARK) && p[i * 64 + j] == STACK_MARK[j];
		     j++)
			;
		n += j == sizeof(STACK_MARK);
	}
	return n;
}

static void *
stack_wipe_thread(void *arg)
{
	int *counts = arg;
	uintptr_t at = leave_marker();

	counts[0] = marker_count(at); /* the residue is there... */
	sr_stack_wipe(16 * 1024);
	counts[1] = marker_count(at); /* ...and gone */
	sr_stack_wipe(0);
	sr_stack_wipe((size_t)-1); /* capped at SR_STACK_WIPE_MAX */
	return NULL;
}

static void
test_stack_wipe(void **state)
{
	int counts[2] = { -1, -1 };
	pthread_t t;

	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	/* ASan keeps frames in its own places and poisons dead ones. */
	skip();
#endif
	assert_int_equal(
	    pthread_create(&t, NULL, stack_wipe_thread, counts), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(counts[0] > 0);
	assert_int_equal(counts[1], 0);
}

static void
test_ct_equal_equal(void **state)
{
	unsigned char a[33], b[33];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (unsigned char)(0xf0 ^ i);
	assert_int_equal(sr_ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(sr_ct_equal(a, a, sizeof(a)), 1);
}

static void
test_ct_equal_first_last(void **state)
{
	unsigned char a[16], b[16];

	(void)state;
	memset(a, 0x11, sizeof(a));
	memcpy(b, a, sizeof(b));
	b[0] ^= 0x80;
	assert_int_equal(sr_ct_equal(a, b, sizeof(a)), 0);
	/* The differing byte outside the compared length is not seen. */
	assert_int_equal(sr_ct_equal(a + 1, b + 1, sizeof(a) - 1), 1);

	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 1] ^= 0x01;
	assert_int_equal(sr_ct_equal(a, b, sizeof(a)), 0);
	assert_int_equal(sr_ct_equal(a, b, sizeof(a) - 1), 1);
}

static void
test_ct_equal_every_difference(void **state)
{
	unsigned char a[4] = { 0, 0, 0, 0 }, b[4];
	unsigned d;

	(void)state;
	/* Each of the 255 non-zero differences in one byte means unequal. */
	for (d = 1; d < 256; d++) {
		memcpy(b, a, sizeof(b));
		b[2] = (unsigned char)d;
		assert_int_equal(sr_ct_equal(a, b, sizeof(a)), 0);
	}
}

static void
test_ct_equal_len_zero(void **state)
{
	const unsigned char a[1] = { 1 }, b[1] = { 2 };

	(void)state;
	assert_int_equal(sr_ct_equal(a, b, 0), 1);
}

/* More small secrets than the locked arena holds: the rest come from the
 * heap, and every one is usable, distinct and freed. */
static void
test_many_small_secrets(void **state)
{
	enum { N = 3000 };
	static struct sr_secret many[N];
	size_t i;

	(void)state;
	for (i = 0; i < N; i++) {
		assert_int_equal(sr_secret_set(&many[i], &i, sizeof(i)), 0);
		assert_int_equal(sr_secret_len(&many[i]), sizeof(i));
	}
	for (i = 0; i < N; i++)
		assert_memory_equal(sr_secret_bytes(&many[i]), &i, sizeof(i));
	for (i = 0; i < N; i++)
		sr_secret_free(&many[i]);
	/* Slots come back: another round fits again. */
	for (i = 0; i < N; i++)
		assert_int_equal(sr_secret_alloc(&many[i], 32), 0);
	for (i = 0; i < N; i++)
		sr_secret_free(&many[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_small_secrets),
		cmocka_unit_test(test_alloc_zero_filled),
		cmocka_unit_test(test_alloc_len_zero),
		cmocka_unit_test(test_alloc_size_max),
		cmocka_unit_test(test_set_copies),
		cmocka_unit_test(test_set_len_zero),
		cmocka_unit_test(test_free_twice),
		cmocka_unit_test(test_free_zeroed),
		cmocka_unit_test(test_wipe_stack_buffer),
		cmocka_unit_test(test_stack_wipe),
		cmocka_unit_test(test_ct_equal_equal),
		cmocka_unit_test(test_ct_equal_first_last),
		cmocka_unit_test(test_ct_equal_every_difference),
		cmocka_unit_test(test_ct_equal_len_zero),
	};

	return cmocka_run_group_tests_name("lib/secret", tests, NULL, NULL);
}
