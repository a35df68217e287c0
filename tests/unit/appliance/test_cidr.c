/*
 * tests/unit/appliance/test_cidr.c: appliance/cidr.c: lists that parse and
 * their canonical form, every kind of malformed item refused with a
 * message naming it, matching of IPv4, IPv6 and IPv4-mapped IPv6 client
 * addresses at prefix boundaries, and the list-size limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/cidr.h"
#include "lib/sr.h"

/* A sockaddr_storage for a textual address (v4 or v6). */
static struct sockaddr_storage
addr_of(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(443);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	return ss;
}

static int
matches(const struct cidr_list *l, const char *text)
{
	struct sockaddr_storage ss = addr_of(text);

	return cidr_list_match(l, (struct sockaddr *)&ss);
}

static void
test_parse_and_format(void **state)
{
	struct cidr_list l;
	char err[256], out[512];

	(void)state;
	assert_int_equal(cidr_list_parse(&l,
	                     "10.0.0.0/8, 2001:db8::/32,127.0.0.2/32 ,"
	                     "\t0.0.0.0/0",
	                     err),
	    0);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.items[0].family, AF_INET);
	assert_int_equal(l.items[0].prefix, 8);
	assert_int_equal(l.items[1].family, AF_INET6);
	assert_int_equal(l.items[1].prefix, 32);
	assert_int_equal(cidr_list_format(&l, out, sizeof(out)),
	    (int)strlen("10.0.0.0/8, 2001:db8::/32, 127.0.0.2/32, 0.0.0.0/0"));
	assert_string_equal(
	    out, "10.0.0.0/8, 2001:db8::/32, 127.0.0.2/32, 0.0.0.0/0");
	/* Too small a buffer is reported, not overrun. */
	assert_int_equal(cidr_list_format(&l, out, 12), -ENOSPC);
	assert_int_equal(strlen(out) < 12, 1);
	cidr_list_free(&l);
	assert_null(l.items);
	assert_int_equal(l.count, 0);
	cidr_list_free(&l); /* twice is harmless */
	cidr_list_free(NULL);
}

static void
test_mapped_network_is_ipv4(void **state)
{
	struct cidr_list l;
	char out[64];

	(void)state;
	assert_int_equal(cidr_list_parse(&l, "::ffff:10.1.0.0/112", NULL), 0);
	assert_int_equal(l.items[0].family, AF_INET);
	assert_int_equal(l.items[0].prefix, 16);
	cidr_list_format(&l, out, sizeof(out));
	assert_string_equal(out, "10.1.0.0/16");
	assert_true(matches(&l, "10.1.2.3"));
	assert_true(matches(&l, "::ffff:10.1.200.1"));
	assert_false(matches(&l, "10.2.0.0"));
	cidr_list_free(&l);
}

struct bad_case {
	const char *text;
	const char *message; /* expected in err */
};

static void
test_malformed(void **state)
{
	static const struct bad_case bad[] = {
		{ "", "item 1 '': empty list" },
		{ "10.0.0.0/8,", "item 2 '': empty item" },
		{ "10.0.0.0/8,,::/0", "item 2 '': empty item" },
		{ "10.0.0.1/8",
		    "item 1 '10.0.0.1/8': host bits set below "
		    "the /8 prefix" },
		{ "::/0, 2001:db8::1/32",
		    "item 2 '2001:db8::1/32': host bits "
		    "set below the /32 prefix" },
		{ "10.0.0.0", "item 1 '10.0.0.0': no prefix length" },
		{ "10.0.0.0/33",
		    "item 1 '10.0.0.0/33': bad prefix length "
		    "(0 to 32 for IPv4)" },
		{ "::/129", "bad prefix length (0 to 128 for IPv6)" },
		{ "10.0.0.0/08", "item 1 '10.0.0.0/08': bad prefix length" },
		{ "10.0.0.0/-8", "bad prefix length" },
		{ "10.0.0.0/+8", "bad prefix length" },
		{ "10.0.0.0/", "bad prefix length" },
		{ "10.0.0.0/8/8", "bad prefix length" },
		{ "10.0.0.0/1000", "bad prefix length" },
		{ "010.0.0.0/8", "not an IPv4 or IPv6 address" },
		{ "10.0.0/24", "not an IPv4 or IPv6 address" },
		{ "256.0.0.0/8", "not an IPv4 or IPv6 address" },
		{ "example.com/32", "not an IPv4 or IPv6 address" },
		{ "10.0.0.0 /8", "not an IPv4 or IPv6 address" },
		{ "fe80::1%eth0/128", "not an IPv4 or IPv6 address" },
	};
	struct cidr_list l;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (cidr_list_parse(&l, bad[i].text, err) != APP_ECIDR)
			fail_msg("'%s' was accepted", bad[i].text);
		if (strstr(err, bad[i].message) == NULL)
			fail_msg("'%s': got '%s', want '%s'", bad[i].text, err,
			    bad[i].message);
		assert_null(l.items);
		assert_int_equal(l.count, 0);
	}
}

static void
test_match_boundaries(void **state)
{
	struct cidr_list l;

	(void)state;
	assert_int_equal(cidr_list_parse(&l,
	                     "192.168.4.0/22, 2001:db8:8000::/33, "
	                     "127.0.0.2/32, 10.128.0.0/9",
	                     NULL),
	    0);
	assert_true(matches(&l, "192.168.4.0"));
	assert_true(matches(&l, "192.168.7.255"));
	assert_false(matches(&l, "192.168.3.255"));
	assert_false(matches(&l, "192.168.8.0"));
	assert_true(matches(&l, "127.0.0.2"));
	assert_false(matches(&l, "127.0.0.3"));
	assert_false(matches(&l, "127.0.0.1"));
	assert_true(matches(&l, "10.128.0.1"));
	assert_false(matches(&l, "10.127.255.255"));
	assert_true(matches(&l, "2001:db8:8000::1"));
	assert_true(matches(&l, "2001:db8:ffff:ffff::1"));
	assert_false(matches(&l, "2001:db8:7fff::1"));
	/* IPv4-mapped client addresses are IPv4. */
	assert_true(matches(&l, "::ffff:127.0.0.2"));
	assert_false(matches(&l, "::ffff:127.0.0.3"));
	/* An IPv4 network does not match an IPv6 address with the same
	 * leading bytes, nor the reverse. */
	assert_false(matches(&l, "c0a8:0400::"));
	cidr_list_free(&l);
}

static void
test_match_everything_and_nothing(void **state)
{
	struct cidr_list l, empty;
	struct sockaddr_storage ss;

	(void)state;
	assert_int_equal(cidr_list_parse(&l, "0.0.0.0/0", NULL), 0);
	assert_true(matches(&l, "8.8.8.8"));
	assert_true(matches(&l, "::ffff:8.8.8.8"));
	assert_false(matches(&l, "::1"));
	cidr_list_free(&l);
	assert_int_equal(cidr_list_parse(&l, "::/0", NULL), 0);
	assert_true(matches(&l, "::1"));
	assert_false(matches(&l, "8.8.8.8"));
	/* Unknown families and NULL match nothing. */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_false(cidr_list_match(&l, (struct sockaddr *)&ss));
	assert_false(cidr_list_match(&l, NULL));
	cidr_list_free(&l);
	cidr_list_init(&empty);
	assert_false(matches(&empty, "127.0.0.1"));
}

static void
test_limits(void **state)
{
	struct cidr_list l;
	char err[256];
	char *text;
	size_t i, used = 0, cap = 1100 * 20;

	(void)state;
	text = malloc(cap);
	assert_non_null(text);
	for (i = 0; i < CIDR_LIST_MAX; i++)
		used += (size_t)snprintf(text + used, cap - used,
		    "%s10.%zu.%zu.0/24", i == 0 ? "" : ",", i / 256, i % 256);
	assert_int_equal(cidr_list_parse(&l, text, err), 0);
	assert_int_equal(l.count, CIDR_LIST_MAX);
	assert_true(matches(&l, "10.3.255.7"));
	assert_false(matches(&l, "10.4.0.1"));
	cidr_list_free(&l);
	snprintf(text + used, cap - used, ",11.0.0.0/8");
	assert_int_equal(cidr_list_parse(&l, text, err), APP_ECIDR);
	assert_non_null(strstr(err, "item 1025"));
	assert_non_null(strstr(err, "more than 1024 networks"));
	free(text);
	/* An item longer than any address. */
	assert_int_equal(cidr_list_parse(&l,
	                     "1111:2222:3333:4444:5555:6666:7777:8888:9999:"
	                     "aaaa:bbbb:cccc:dddd:eeee/128",
	                     err),
	    APP_ECIDR);
	assert_non_null(strstr(err, "item too long"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format),
		cmocka_unit_test(test_mapped_network_is_ipv4),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_match_boundaries),
		cmocka_unit_test(test_match_everything_and_nothing),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests_name("appliance/cidr", tests, NULL, NULL);
}
