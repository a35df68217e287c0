/*
 * tests/unit/appliance/test_ratelimit.c: appliance/ratelimit.c: a token
 * bucket's burst, refusal with its retry hint, refill and its cap, costs
 * other than one; the daemon's limits per address and overall (with the
 * address's token given back when the global bucket refuses); eight
 * threads on one bucket and on the table; new rates from a reload; and the
 * table's reuse of its least recently seen slots once full. Time is passed in,
 * so most tests are exact; only the thread test reads the clock, and must never
 * depend on how fast the machine is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "appliance/internal.h"

static uint64_t
clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ::ffff:a.b.c.d for @p n. */
static void
addr_of(uint8_t a[16], uint32_t n)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = (uint8_t)(n >> 24);
	a[13] = (uint8_t)(n >> 16);
	a[14] = (uint8_t)(n >> 8);
	a[15] = (uint8_t)n;
}

/* ---------------------------------------------------------------- */
/* One bucket                                                         */
/* ---------------------------------------------------------------- */

static void
test_bucket_basic(void **state)
{
	struct rl_bucket b;
	unsigned retry = 0;
	int i;

	(void)state;
	rl_bucket_init(&b, 10, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(rl_bucket_take(&b, 0, 1, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 0, 1, &retry), 0);
	assert_int_equal(retry, 1);
	/* 100 ms at 10/s is one token. */
	assert_int_equal(rl_bucket_take(&b, 99, 1, &retry), 0);
	assert_int_equal(rl_bucket_take(&b, 100, 1, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 100, 1, &retry), 0);
	assert_int_equal(retry, 1);
	/* A long pause fills the bucket to its burst and no further. */
	for (i = 0; i < 5; i++)
		assert_int_equal(rl_bucket_take(&b, 3600000, 1, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 3600000, 1, &retry), 0);
	/* A clock a little behind (another thread's reading) is harmless. */
	assert_int_equal(rl_bucket_take(&b, 3599000, 1, &retry), 0);
	assert_int_equal(rl_bucket_take(&b, 3600100, 1, &retry), 1);
	/* NULL retry_after is allowed. */
	assert_int_equal(rl_bucket_take(&b, 3600100, 1, NULL), 0);
}

static void
test_bucket_costs(void **state)
{
	struct rl_bucket b;
	unsigned retry = 0;
	int i;

	(void)state;
	rl_bucket_init(&b, 10, 5);
	assert_int_equal(rl_bucket_take(&b, 1000, 3, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 1000, 3, &retry), 0);
	assert_int_equal(retry, 1);
	assert_int_equal(rl_bucket_take(&b, 1000, 2, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 1299, 3, &retry), 0);
	assert_int_equal(rl_bucket_take(&b, 1300, 3, &retry), 1);
	/* Cost 0 takes nothing; a negative cost is refused. */
	assert_int_equal(rl_bucket_take(&b, 1300, 0, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 1300, -1, &retry), 0);
	/* More than the burst can never be met. */
	assert_int_equal(rl_bucket_take(&b, 999999, 6, &retry), 0);
	assert_true(retry >= 1);
	/* Fractions add up: ten halves are five tokens. */
	rl_bucket_init(&b, 10, 5);
	for (i = 0; i < 10; i++)
		assert_int_equal(rl_bucket_take(&b, 0, 0.5, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 0, 0.5, &retry), 0);

	/* The retry hint counts whole seconds, rounded up. */
	rl_bucket_init(&b, 0.1, 1);
	assert_int_equal(rl_bucket_take(&b, 0, 1, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 0, 1, &retry), 0);
	assert_int_equal(retry, 10);
	assert_int_equal(rl_bucket_take(&b, 2500, 1, &retry), 0);
	assert_int_equal(retry, 8);
	assert_int_equal(rl_bucket_take(&b, 10000, 1, &retry), 1);

	/* A burst that is not a whole multiple of the period is still met
	 * exactly. */
	rl_bucket_init(&b, 7, 7);
	for (i = 0; i < 7; i++)
		assert_int_equal(rl_bucket_take(&b, 5, 1, &retry), 1);
	assert_int_equal(rl_bucket_take(&b, 5, 1, &retry), 0);
}

struct hammer {
	struct rl_bucket *b;
	uint64_t until;
	unsigned long allowed, tries;
};

static void *
hammer_run(void *arg)
{
	struct hammer *h = arg;
	uint64_t now;

	while ((now = clock_ms()) < h->until) {
		h->tries++;
		if (rl_bucket_take(h->b, now, 1, NULL))
			h->allowed++;
	}
	return NULL;
}

static void
test_bucket_threads(void **state)
{
	struct hammer h[8];
	pthread_t t[8];
	struct rl_bucket b;
	uint64_t t0, t1;
	unsigned long allowed = 0;
	int i;

	(void)state;
	rl_bucket_init(&b, 1000, 50);
	t0 = clock_ms();
	for (i = 0; i < 8; i++) {
		h[i] = (struct hammer){ &b, t0 + 200, 0, 0 };
		assert_int_equal(
		    pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		allowed += h[i].allowed;
	}
	t1 = clock_ms();
	/* Every now_ms used lies in [t0, t1]. */
	if (allowed > 50 + (t1 - t0))
		fail_msg("%lu allowed in %llu ms", allowed,
		    (unsigned long long)(t1 - t0));
	assert_true(allowed >= 50);
}

/* ---------------------------------------------------------------- */
/* The daemon's limits                                                */
/* ---------------------------------------------------------------- */

/* The leases of the loop the single-threaded tests play (their bursts
 * are small or their checks per address, so the limits stay exact). */
static struct rl_local loop;

/* A configuration with these limits (the rest the defaults). */
static struct app_config *
limits(struct app_config *c, double global, double global_burst, double per,
    double per_burst)
{
	app_config_defaults(c);
	c->rate_global = global;
	c->rate_global_burst = global_burst;
	c->rate_per_addr = per;
	c->rate_per_addr_burst = per_burst;
	return c;
}

static struct rl *
rl_with(double global, double global_burst, double per, double per_burst)
{
	struct app_config c;
	struct rl *r = NULL;

	assert_int_equal(
	    rl_new(limits(&c, global, global_burst, per, per_burst), &r), 0);
	assert_non_null(r);
	return r;
}

static void
test_rl_per_addr(void **state)
{
	struct rl *r = rl_with(1000, 2000, 1, 3);
	uint8_t a[16], b[16];
	unsigned retry = 0;
	int i;

	(void)state;
	addr_of(a, 0x0a000001);
	addr_of(b, 0x0a000002);
	for (i = 0; i < 3; i++)
		assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 0);
	assert_int_equal(retry, 1);
	/* Another address has its own bucket. */
	for (i = 0; i < 3; i++)
		assert_int_equal(rl_allow(r, &loop, b, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, b, 0, &retry), 0);
	/* One second later each has one more. */
	assert_int_equal(rl_allow(r, &loop, a, 1000, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 1000, &retry), 0);
	assert_int_equal(rl_allow(r, &loop, b, 1000, &retry), 1);
	rl_free(r);
	rl_free(NULL);
}

/* A reload's new rates apply to addresses already in the table and to
 * new ones, and what an address used before the reload still counts. */
static void
test_rl_configure(void **state)
{
	struct rl *r = rl_with(1000, 2000, 1, 3);
	struct app_config c;
	uint8_t a[16], b[16];
	unsigned retry = 0;
	int i;

	(void)state;
	addr_of(a, 0x0a000001);
	addr_of(b, 0x0a000002);
	for (i = 0; i < 3; i++)
		assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 0);
	rl_configure(r, limits(&c, 1000, 2000, 1, 5));
	/* a spent 3 of its new 5 already: 2 more now, then refused. */
	assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(rl_allow(r, &loop, b, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, b, 0, &retry), 0);
	/* The global bucket follows too. */
	c.rate_global = 1;
	c.rate_global_burst = 1;
	rl_configure(r, &c);
	assert_int_equal(rl_allow(r, &loop, a, 60000, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, b, 60000, &retry), 0);
	rl_free(r);
}

static void
test_rl_global(void **state)
{
	struct rl *r = rl_with(1, 10, 100, 100);
	uint8_t a[16], b[16];
	unsigned retry = 0;
	int i, allowed = 0;

	(void)state;
	for (i = 0; i < 20; i++) {
		addr_of(a, 0xc0a80000u + (uint32_t)i);
		allowed += rl_allow(r, &loop, a, 0, &retry);
	}
	assert_int_equal(allowed, 10);
	assert_int_equal(retry, 1);
	rl_free(r);

	/* A request the global bucket refuses costs its address nothing:
	 * B's only token (which takes 1000 s to come back) is still there
	 * once the global bucket refills. */
	r = rl_with(1, 1, 0.001, 1);
	addr_of(a, 1);
	addr_of(b, 2);
	assert_int_equal(rl_allow(r, &loop, a, 0, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, b, 0, &retry), 0);
	assert_int_equal(rl_allow(r, &loop, b, 500, &retry), 0);
	assert_int_equal(rl_allow(r, &loop, b, 1000, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, b, 5000, &retry), 0);
	assert_int_equal(retry, 996);
	/* And one its own bucket refuses leaves the global one alone. */
	assert_int_equal(rl_allow(r, &loop, a, 6000, &retry), 0);
	assert_int_equal(rl_allow(r, &loop, a, 6000, &retry), 0);
	addr_of(a, 3);
	assert_int_equal(rl_allow(r, &loop, a, 6000, &retry), 1);
	rl_free(r);
}

struct table_run {
	struct rl *r;
	uint32_t id;
	int allowed;
};

static void *
table_run(void *arg)
{
	struct table_run *t = arg;
	uint8_t a[16];
	int i;

	addr_of(a, t->id);
	for (i = 0; i < 1000; i++)
		t->allowed += rl_allow(t->r, NULL, a, 42, NULL);
	return NULL;
}

static void
test_rl_threads(void **state)
{
	struct table_run run[8];
	pthread_t t[8];
	int i, total = 0;

	(void)state;
	/* At one instant: each address gets its burst of 100 at most, and
	 * all of them together the global burst of 500, exactly. */
	run[0].r = rl_with(1, 500, 1, 100);
	for (i = 0; i < 8; i++) {
		run[i] = (struct table_run){ run[0].r, 0x01020300u + i, 0 };
		assert_int_equal(
		    pthread_create(&t[i], NULL, table_run, &run[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(run[i].allowed <= 100);
		total += run[i].allowed;
	}
	assert_int_equal(total, 500);
	rl_free(run[0].r);
}

static void
test_rl_table_reuse(void **state)
{
	struct rl *r = rl_with(1e7, 1e9, 0.001, 2);
	uint8_t a[16], x[16];
	unsigned retry = 0;
	uint32_t i, n = 200000;

	(void)state;
	addr_of(a, 0xfffffff0u);
	assert_int_equal(rl_allow(r, &loop, a, 1, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 1, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, a, 1, &retry), 0);
	/* Three times the table's 65536 slots of new addresses, with A
	 * seen all along: A keeps its slot and so its empty bucket. */
	for (i = 0; i < n; i++) {
		addr_of(x, i);
		assert_int_equal(rl_allow(r, &loop, x, 2 + i, &retry), 1);
		if (rl_allow(r, &loop, a, 2 + i, &retry) != 0)
			fail_msg("A was forgotten after %u addresses", i);
	}
	/* The most recent addresses are still known: their second token
	 * goes, the third is refused (a forgotten one would start full). */
	for (i = n - 100; i < n; i++) {
		addr_of(x, i);
		assert_int_equal(rl_allow(r, &loop, x, 2 + n, &retry), 1);
		assert_int_equal(rl_allow(r, &loop, x, 2 + n, &retry), 0);
	}
	/* The oldest are long gone: they start over with a full bucket. */
	addr_of(x, 0);
	assert_int_equal(rl_allow(r, &loop, x, 2 + n, &retry), 1);
	assert_int_equal(rl_allow(r, &loop, x, 2 + n, &retry), 1);
	rl_free(r);
}

/* Two loops drain one address's bucket at one instant through leases:
 * together they get exactly its burst, leases grew on the way, and no
 * token is made up or lost. */
static void
test_rl_leases_drain_exactly(void **state)
{
	struct rl *r = rl_with(1e9, 1e9, 0.001, 6400);
	static struct rl_local la, lb;
	uint8_t a[16];
	int allowed = 0, grew = 0, more_a = 1, more_b = 1, i;

	(void)state;
	addr_of(a, 0x0a000009);
	while (more_a || more_b) {
		if (more_a)
			more_a = rl_allow(r, &la, a, 0, NULL);
		if (more_b)
			more_b = rl_allow(r, &lb, a, 0, NULL);
		allowed += more_a + more_b;
		for (i = 0; i < RL_LOCAL_SLOTS; i++)
			grew |= la.addr[i].used && la.addr[i].held.size == 32;
	}
	assert_int_equal(allowed, 6400);
	assert_true(grew);
	rl_free(r);
}

/* What a lease has left goes back once RL_LEASE_MS has passed; a reload
 * drops the leases. Counted by draining the bucket without leases. */
static void
test_rl_lease_give_back(void **state)
{
	struct rl *r = rl_with(1e9, 1e9, 0.001, 6400);
	static struct rl_local la;
	struct app_config c;
	uint8_t a[16];
	int i, allowed = 0;

	(void)state;
	addr_of(a, 0x0a00000a);
	/* Leases of 1, 2, 4 and 8: 15 tokens taken, 10 spent, 5 held. */
	for (i = 0; i < 10; i++)
		assert_int_equal(rl_allow(r, &la, a, 0, NULL), 1);
	/* 100 ms later the 5 go back, and one more is taken and spent. */
	assert_int_equal(rl_allow(r, &la, a, 100, NULL), 1);
	while (rl_allow(r, NULL, a, 100, NULL))
		allowed++;
	assert_int_equal(allowed, 6400 - 11);
	rl_free(r);

	/* A reload drops what is held: 5 tokens gone with it. */
	r = rl_with(1e9, 1e9, 0.001, 6400);
	for (i = 0; i < 10; i++)
		assert_int_equal(rl_allow(r, &la, a, 0, NULL), 1);
	rl_configure(r, limits(&c, 1e9, 1e9, 0.001, 6400));
	assert_int_equal(rl_allow(r, &la, a, 0, NULL), 1);
	for (allowed = 0; rl_allow(r, NULL, a, 0, NULL);)
		allowed++;
	assert_int_equal(allowed, 6400 - 11 - 5);
	rl_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_basic),
		cmocka_unit_test(test_bucket_costs),
		cmocka_unit_test(test_bucket_threads),
		cmocka_unit_test(test_rl_per_addr),
		cmocka_unit_test(test_rl_configure),
		cmocka_unit_test(test_rl_global),
		cmocka_unit_test(test_rl_threads),
		cmocka_unit_test(test_rl_table_reuse),
		cmocka_unit_test(test_rl_leases_drain_exactly),
		cmocka_unit_test(test_rl_lease_give_back),
	};

	return cmocka_run_group_tests_name(
	    "appliance/ratelimit", tests, NULL, NULL);
}
