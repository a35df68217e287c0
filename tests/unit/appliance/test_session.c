/*
 * tests/unit/appliance/test_session.c: appliance/session.c directly, on a
 * clock the test moves: sessions opened, looked up and their CSRF token
 * compared; the idle (15 min) and absolute (8 h) timeouts to the second;
 * logout and the end of a user's sessions; a full table giving up its
 * least recently used session (a free slot first); and the login back-off:
 * its growth per account and per address up to the cap, the reset after a
 * success, one address never locking an account out for anyone else, and
 * many addresses still holding the account back.
 *
 * It never sleeps and never reads the wall clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/session.h"

#define T0 1750000000LL /* 2025-06-15, any fixed second will do */

static int64_t
test_clock(void *arg)
{
	return *(const int64_t *)arg;
}

struct fixture {
	int64_t now;
	struct api_sessions *s;
	struct api_backoff *b;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->now = T0;
	assert_int_equal(api_sessions_new(&f->s), 0);
	assert_int_equal(api_backoff_new(&f->b), 0);
	api_sessions_clock(f->s, test_clock, &f->now);
	api_backoff_clock(f->b, test_clock, &f->now);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	api_sessions_free(f->s);
	api_backoff_free(f->b);
	free(f);
	return 0;
}

/* api_session_check() without CSRF; the user it names in @p user. */
static int
check(struct fixture *f, const char *id, char user[KS_ID_LEN + 1])
{
	char scratch[KS_ID_LEN + 1];

	return api_session_check(
	    f->s, id, NULL, 0, user != NULL ? user : scratch);
}

/* ---------------------------------------------------------------- */
/* Sessions                                                           */
/* ---------------------------------------------------------------- */

static void
test_open_and_lookup(void **state)
{
	struct fixture *f = *state;
	char id[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX];
	char id2[API_SESSION_TOKEN_MAX], csrf2[API_SESSION_TOKEN_MAX];
	char user[KS_ID_LEN + 1] = "";

	assert_int_equal(api_session_open(f->s, "AAAAuser0001", id, csrf), 0);
	assert_int_equal(api_session_open(f->s, "BBBBuser0002", id2, csrf2), 0);
	/* 32 random bytes each, base64url without padding. */
	assert_int_equal(strlen(id), 43);
	assert_int_equal(strlen(csrf), 43);
	assert_int_equal(
	    strspn(id,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789-_"),
	    43);
	assert_string_not_equal(id, csrf);
	assert_string_not_equal(id, id2);
	assert_string_not_equal(csrf, csrf2);

	assert_int_equal(check(f, id, user), 0);
	assert_string_equal(user, "AAAAuser0001");
	assert_int_equal(check(f, id2, user), 0);
	assert_string_equal(user, "BBBBuser0002");
	/* Neither an unknown id, nor the CSRF token, nor "" is a session. */
	assert_int_equal(check(f, "x", NULL), -ENOENT);
	assert_int_equal(check(f, csrf, NULL), -ENOENT);
	assert_int_equal(check(f, "", NULL), -ENOENT);
	id[42] = id[42] == 'A' ? 'B' : 'A';
	assert_int_equal(check(f, id, NULL), -ENOENT);
}

static void
test_csrf(void **state)
{
	struct fixture *f = *state;
	char id[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX];
	char id2[API_SESSION_TOKEN_MAX], csrf2[API_SESSION_TOKEN_MAX];
	char user[KS_ID_LEN + 1];

	assert_int_equal(api_session_open(f->s, "AAAAuser0001", id, csrf), 0);
	assert_int_equal(api_session_open(f->s, "BBBBuser0002", id2, csrf2), 0);
	assert_int_equal(api_session_check(f->s, id, csrf, 1, user), 0);
	/* Missing, wrong, another session's, or the session id itself. */
	assert_int_equal(api_session_check(f->s, id, NULL, 1, user), -EPERM);
	assert_int_equal(api_session_check(f->s, id, "", 1, user), -EPERM);
	assert_int_equal(api_session_check(f->s, id, csrf2, 1, user), -EPERM);
	assert_int_equal(api_session_check(f->s, id, id, 1, user), -EPERM);
	csrf[0] = csrf[0] == 'A' ? 'B' : 'A';
	assert_int_equal(api_session_check(f->s, id, csrf, 1, user), -EPERM);
	/* A safe method needs none, whatever is sent. */
	assert_int_equal(api_session_check(f->s, id, NULL, 0, user), 0);
	assert_int_equal(api_session_check(f->s, id, csrf, 0, user), 0);
	/* An unknown session is -ENOENT before any CSRF question. */
	assert_int_equal(
	    api_session_check(f->s, "nope", csrf2, 1, user), -ENOENT);
}

static void
test_idle_expiry(void **state)
{
	struct fixture *f = *state;
	char id[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX];
	char user[KS_ID_LEN + 1];
	int i;

	assert_int_equal(api_session_open(f->s, "AAAAuser0001", id, csrf), 0);
	/* Each use restarts the 15 minutes. */
	for (i = 0; i < 5; i++) {
		f->now += API_SESSION_IDLE - 1;
		assert_int_equal(check(f, id, NULL), 0);
	}
	/* A refused CSRF check is no use: it does not restart them. */
	f->now += API_SESSION_IDLE - 1;
	assert_int_equal(api_session_check(f->s, id, NULL, 1, user), -EPERM);
	f->now += 1;
	assert_int_equal(check(f, id, NULL), -ENOENT);
	/* Gone for good: going back in time does not revive it. */
	f->now -= 10;
	assert_int_equal(check(f, id, NULL), -ENOENT);
}

static void
test_absolute_expiry(void **state)
{
	struct fixture *f = *state;
	char id[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX];
	char user[KS_ID_LEN + 1];
	int64_t opened = f->now;

	assert_int_equal(api_session_open(f->s, "AAAAuser0001", id, csrf), 0);
	/* Used every 10 minutes, it still ends 8 hours after login. */
	for (f->now = opened + 600; f->now < opened + API_SESSION_ABSOLUTE;
	     f->now += 600)
		assert_int_equal(check(f, id, NULL), 0);
	f->now = opened + API_SESSION_ABSOLUTE - 1;
	assert_int_equal(api_session_check(f->s, id, csrf, 1, user), 0);
	f->now = opened + API_SESSION_ABSOLUTE;
	assert_int_equal(check(f, id, NULL), -ENOENT);
}

static void
test_logout(void **state)
{
	struct fixture *f = *state;
	char a1[API_SESSION_TOKEN_MAX], a2[API_SESSION_TOKEN_MAX];
	char b1[API_SESSION_TOKEN_MAX], c[API_SESSION_TOKEN_MAX];

	assert_int_equal(api_session_open(f->s, "AAAAuser0001", a1, c), 0);
	assert_int_equal(api_session_open(f->s, "AAAAuser0001", a2, c), 0);
	assert_int_equal(api_session_open(f->s, "BBBBuser0002", b1, c), 0);
	/* Logout ends that one session only, once. */
	assert_int_equal(api_session_end(f->s, a1), 0);
	assert_int_equal(check(f, a1, NULL), -ENOENT);
	assert_int_equal(api_session_end(f->s, a1), -ENOENT);
	assert_int_equal(api_session_end(f->s, "nope"), -ENOENT);
	assert_int_equal(check(f, a2, NULL), 0);
	assert_int_equal(check(f, b1, NULL), 0);
	/* A disabled or deleted user loses all of theirs, nobody else's. */
	assert_int_equal(api_session_open(f->s, "AAAAuser0001", a1, c), 0);
	api_sessions_end_user(f->s, "AAAAuser0001");
	assert_int_equal(check(f, a1, NULL), -ENOENT);
	assert_int_equal(check(f, a2, NULL), -ENOENT);
	assert_int_equal(check(f, b1, NULL), 0);
	/* A timed-out session cannot be ended either. */
	f->now += API_SESSION_IDLE;
	assert_int_equal(api_session_end(f->s, b1), -ENOENT);
}

static void
test_table_full(void **state)
{
	struct fixture *f = *state;
	char(*ids)[API_SESSION_TOKEN_MAX] =
	    calloc(API_SESSIONS_MAX, API_SESSION_TOKEN_MAX);
	char x[API_SESSION_TOKEN_MAX], y[API_SESSION_TOKEN_MAX];
	char c[API_SESSION_TOKEN_MAX], user[KS_ID_LEN + 1], name[16];
	size_t i;

	assert_non_null(ids);
	for (i = 0; i < API_SESSIONS_MAX; i++) {
		snprintf(name, sizeof(name), "u%011zu", i);
		assert_int_equal(api_session_open(f->s, name, ids[i], c), 0);
	}
	/* All live, all used at T0; session 0 is used again later. */
	f->now += 1;
	assert_int_equal(check(f, ids[0], NULL), 0);
	f->now += 1;
	assert_int_equal(api_session_open(f->s, "newcomer0001", x, c), 0);
	/* The least recently used one made room; the others stayed. */
	assert_int_equal(check(f, ids[1], NULL), -ENOENT);
	assert_int_equal(check(f, ids[0], user), 0);
	assert_string_equal(user, "u00000000000");
	assert_int_equal(check(f, x, user), 0);
	assert_string_equal(user, "newcomer0001");
	assert_int_equal(check(f, ids[API_SESSIONS_MAX - 1], NULL), 0);
	/* A slot freed by logout is taken before any live session goes:
	 * session 2 is now the least recently used, and survives. */
	assert_int_equal(api_session_end(f->s, ids[7]), 0);
	f->now += 1;
	assert_int_equal(api_session_open(f->s, "newcomer0002", y, c), 0);
	assert_int_equal(check(f, y, NULL), 0);
	assert_int_equal(check(f, ids[2], user), 0);
	assert_string_equal(user, "u00000000002");
	/* Then every session not used since T0 times out, and one of
	 * those slots is taken: no live session goes, not even the least
	 * recently used ones (session 0, the first newcomer, the last). */
	f->now = T0 + API_SESSION_IDLE;
	assert_int_equal(api_session_open(f->s, "newcomer0003", c, c), 0);
	assert_int_equal(check(f, c, user), 0);
	assert_string_equal(user, "newcomer0003");
	assert_int_equal(check(f, ids[0], NULL), 0);
	assert_int_equal(check(f, x, NULL), 0);
	assert_int_equal(check(f, ids[API_SESSIONS_MAX - 1], NULL), 0);
	assert_int_equal(check(f, y, NULL), 0);
	free(ids);
}

/* ---------------------------------------------------------------- */
/* Back-off                                                           */
/* ---------------------------------------------------------------- */

static const unsigned growth[] = { 5, 10, 20, 40, 80, 160, 320, 640, 900, 900,
	900 };

static void
test_backoff_account(void **state)
{
	struct fixture *f = *state;
	size_t i;

	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 0);
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 0);
	/* The 3rd failure brings the first wait. */
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 5);
	/* It holds this account from this address only. */
	assert_int_equal(api_backoff_wait(f->b, "bob", "192.0.2.1"), 0);
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.2"), 0);
	/* It runs down with the clock. */
	f->now += 3;
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 2);
	f->now += 2;
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 0);
	/* Each further failure doubles it, up to 15 minutes. */
	for (i = 1; i < sizeof(growth) / sizeof(growth[0]); i++) {
		api_backoff_failed(f->b, "alice", "192.0.2.1");
		assert_int_equal(
		    api_backoff_wait(f->b, "alice", "192.0.2.1"), growth[i]);
		f->now += growth[i];
	}
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 0);
	/* Names and addresses are compared whole: another name from there
	 * waits only for the address's own count (14 failures: 80 s). */
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 900);
	assert_int_equal(api_backoff_wait(f->b, "alic", "192.0.2.1"), 80);
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.10"), 0);
}

static void
test_backoff_address(void **state)
{
	struct fixture *f = *state;
	char name[16];
	size_t i;

	/* One failure each on ten accounts: the 10th brings the address's
	 * first wait, for every name tried from it. */
	for (i = 0; i < 9; i++) {
		snprintf(name, sizeof(name), "user%zu", i);
		api_backoff_failed(f->b, name, "198.51.100.7");
	}
	assert_int_equal(api_backoff_wait(f->b, "zed", "198.51.100.7"), 0);
	api_backoff_failed(f->b, "user9", "198.51.100.7");
	assert_int_equal(api_backoff_wait(f->b, "zed", "198.51.100.7"), 5);
	assert_int_equal(api_backoff_wait(f->b, "user0", "198.51.100.7"), 5);
	/* Other addresses, the same names: free. */
	assert_int_equal(api_backoff_wait(f->b, "zed", "198.51.100.8"), 0);
	assert_int_equal(api_backoff_wait(f->b, "user0", "2001:db8::7"), 0);
	/* Doubling per further failure, on fresh names, up to the cap. */
	for (i = 1; i < sizeof(growth) / sizeof(growth[0]); i++) {
		f->now += growth[i - 1];
		snprintf(name, sizeof(name), "other%zu", i);
		assert_int_equal(
		    api_backoff_wait(f->b, name, "198.51.100.7"), 0);
		api_backoff_failed(f->b, name, "198.51.100.7");
		assert_int_equal(
		    api_backoff_wait(f->b, "zed", "198.51.100.7"), growth[i]);
	}
}

static void
test_backoff_reset(void **state)
{
	struct fixture *f = *state;
	char name[16];
	int i;

	api_backoff_failed(f->b, "alice", "192.0.2.1");
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	api_backoff_succeeded(f->b, "alice", "192.0.2.1");
	/* Counting starts again: two more are still free, the third not. */
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 0);
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 5);
	/* A success after the wait clears a grown back-off too. */
	f->now += 5;
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	f->now += 10;
	api_backoff_succeeded(f->b, "alice", "192.0.2.1");
	api_backoff_failed(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 0);

	/* A success never clears the address's count: logging in to one's
	 * own account between guesses at others buys nothing. That address
	 * has 7 failures so far (all on alice). */
	api_backoff_succeeded(f->b, "alice", "192.0.2.1");
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "guess%d", i);
		api_backoff_failed(f->b, name, "192.0.2.1");
		api_backoff_succeeded(f->b, "alice", "192.0.2.1");
	}
	assert_int_equal(api_backoff_wait(f->b, "carol", "192.0.2.1"), 0);
	api_backoff_failed(f->b, "guess9", "192.0.2.1");
	api_backoff_succeeded(f->b, "alice", "192.0.2.1");
	assert_int_equal(api_backoff_wait(f->b, "carol", "192.0.2.1"), 5);
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.1"), 5);
}

static void
test_backoff_one_address_no_lockout(void **state)
{
	struct fixture *f = *state;
	unsigned w;
	int i;

	/* An attacker at one address keeps failing on alice for days,
	 * trying again the moment each wait ends. */
	for (i = 0; i < 300; i++) {
		assert_int_equal(
		    api_backoff_wait(f->b, "alice", "203.0.113.66"), 0);
		api_backoff_failed(f->b, "alice", "203.0.113.66");
		w = api_backoff_wait(f->b, "alice", "203.0.113.66");
		/* It holds the attacker back... */
		assert_true(i < 2 ? w == 0 : w >= 5);
		/* ...and never alice at her own address. */
		assert_int_equal(
		    api_backoff_wait(f->b, "alice", "192.0.2.10"), 0);
		f->now += w;
	}
	assert_true(f->now - T0 > 3 * 86400);
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.11"), 0);
}

static void
test_backoff_many_addresses(void **state)
{
	struct fixture *f = *state;
	char addr[32];
	int i, k;

	/* Three addresses, three failures each: 9 on the account. */
	for (i = 1; i <= 3; i++) {
		snprintf(addr, sizeof(addr), "10.0.0.%d", i);
		for (k = 0; k < 3; k++)
			api_backoff_failed(f->b, "alice", addr);
		/* More from the same address add nothing to the account. */
		f->now += 5;
		api_backoff_failed(f->b, "alice", addr);
	}
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.10"), 0);
	/* The 10th from a 4th address: the account waits, everywhere. */
	api_backoff_failed(f->b, "alice", "10.0.0.4");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.10"), 5);
	assert_int_equal(api_backoff_wait(f->b, "alice", "10.0.0.3"), 10);
	assert_int_equal(api_backoff_wait(f->b, "bob", "10.0.0.4"), 0);
	f->now += 5;
	api_backoff_failed(f->b, "alice", "10.0.0.5");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.10"), 10);
	/* A success (after the wait) clears the account's count. */
	f->now += 10;
	api_backoff_succeeded(f->b, "alice", "192.0.2.10");
	api_backoff_failed(f->b, "alice", "10.0.0.6");
	assert_int_equal(api_backoff_wait(f->b, "alice", "192.0.2.10"), 0);
}

/* The source a back-off counts: an IPv4 address itself, an IPv6
 * address's /64, so a host cannot spread its guesses over its /64. */
static void
test_backoff_source(void **state)
{
	static const uint8_t v4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff, 192, 0, 2, 7 };
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xaa, 0xbb, 0xcc,
		0xdd, 1, 2, 3, 4 };
	char s1[API_BACKOFF_SOURCE_MAX], s2[API_BACKOFF_SOURCE_MAX];
	struct api_backoff *b;
	int i;

	(void)state;
	assert_string_equal(api_backoff_source(v4, s1), "192.0.2.7");
	assert_string_equal(api_backoff_source(a, s1), "2001:db8:1:2::/64");
	a[15] ^= 0x5a; /* another address of the same /64 */
	assert_string_equal(api_backoff_source(a, s2), s1);
	a[7] ^= 1; /* another /64 */
	assert_string_not_equal(api_backoff_source(a, s2), s1);
	/* Failures from two addresses of one /64 add up on one counter. */
	assert_int_equal(api_backoff_new(&b), 0);
	a[7] ^= 1;
	for (i = 0; i < API_BACKOFF_FREE_PAIR; i++) {
		a[15] = (uint8_t)i;
		api_backoff_failed(b, "carol", api_backoff_source(a, s1));
	}
	a[15] = 0x77;
	assert_true(
	    api_backoff_wait(b, "carol", api_backoff_source(a, s1)) > 0);
	api_backoff_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_open_and_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csrf, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_idle_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_absolute_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logout, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_account, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_address, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_one_address_no_lockout, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_many_addresses, setup, teardown),
		cmocka_unit_test(test_backoff_source),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
