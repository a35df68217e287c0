/*
 * tests/unit/appliance/test_conncap.c: the per-address connection cap:
 * counts per address up to the cap, independent addresses, release, and
 * many addresses at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "appliance/internal.h"

static void
addr_of(uint8_t a[16], unsigned n)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = 10;
	a[13] = (uint8_t)(n >> 16);
	a[14] = (uint8_t)(n >> 8);
	a[15] = (uint8_t)n;
}

static void
test_cap_per_address(void **state)
{
	struct conncap *c;
	uint8_t a[16], b[16];
	int i;

	(void)state;
	assert_int_equal(conncap_new(3, 100, &c), 0);
	addr_of(a, 1);
	addr_of(b, 2);
	for (i = 0; i < 3; i++)
		assert_int_equal(conncap_acquire(c, a), 1);
	assert_int_equal(conncap_acquire(c, a), 0);
	/* Another address has its own count. */
	assert_int_equal(conncap_acquire(c, b), 1);
	conncap_release(c, a);
	assert_int_equal(conncap_acquire(c, a), 1);
	assert_int_equal(conncap_acquire(c, a), 0);
	conncap_free(c);
}

static void
test_many_addresses(void **state)
{
	struct conncap *c;
	uint8_t a[16];
	unsigned i, ok = 0;

	(void)state;
	assert_int_equal(conncap_new(1, 5000, &c), 0);
	for (i = 0; i < 5000; i++) {
		addr_of(a, i);
		ok += (unsigned)conncap_acquire(c, a);
	}
	assert_int_equal(ok, 5000);
	for (i = 0; i < 5000; i++) {
		addr_of(a, i);
		assert_int_equal(conncap_acquire(c, a), 0);
		conncap_release(c, a);
	}
	/* All released: every address gets its one place back. */
	for (i = 0; i < 5000; i++) {
		addr_of(a, i);
		assert_int_equal(conncap_acquire(c, a), 1);
	}
	conncap_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap_per_address),
		cmocka_unit_test(test_many_addresses),
	};

	return cmocka_run_group_tests_name(
	    "appliance/conncap", tests, NULL, NULL);
}
