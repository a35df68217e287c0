/*
 * tests/unit/appliance/test_http_head.c: what the request parser of
 * appliance/http.c tells the connection beyond the request itself: that
 * it is a HEAD (whose answer goes without a body, even when the parser
 * refuses it), where an absolute-form target's path and query are, and
 * when a 100 Continue is owed (Expect: 100-continue). The rest of the
 * parser is in test_http.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "appliance/internal.h"
#include "tests/unit/appliance/httptest.h"

/* One request, whole: its path, query and whether it is a HEAD. */
static void
expect_target(const char *text, const char *path, const char *query, int head)
{
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed = 0;
	int status = -1;

	assert_int_equal(feed_str(p, text, &consumed, &r, &status), HTTP_READY);
	assert_string_equal(r->path, path);
	assert_string_equal(r->query, query);
	assert_int_equal(r->head, head);
	assert_int_equal(http_parser_is_head(p), head);
	http_parser_free(p);
}

static void
test_head_and_absolute_form(void **state)
{
	(void)state;
	expect_target(
	    "HEAD /api/apps HTTP/1.1\r\nHost: h\r\n\r\n", "/api/apps", "", 1);
	expect_target(
	    "GET /health HTTP/1.1\r\nHost: h\r\n\r\n", "/health", "", 0);
	/* RFC 9112 3.2.2: absolute-form, routed on its path and query. */
	expect_target(
	    "GET https://localhost/health HTTP/1.1\r\nHost: x\r\n\r\n",
	    "/health", "", 0);
	expect_target("GET HTTP://h:8443/v1/models?a=1 HTTP/1.1\r\nHost: h\r\n"
	              "\r\n",
	    "/v1/models", "a=1", 0);
	expect_target(
	    "HEAD http://h?q=2 HTTP/1.1\r\nHost: h\r\n\r\n", "/", "q=2", 1);
	expect_target("GET http://h HTTP/1.0\r\n\r\n", "/", "", 0);
	/* Not a scheme: an origin-form-ish path, left to the router. */
	expect_target("GET httpx://h/a HTTP/1.1\r\nHost: h\r\n\r\n",
	    "httpx://h/a", "", 0);
	/* A HEAD the parser refuses is still known as a HEAD. */
	{
		struct http_parser *p = new_parser(NULL);
		struct http_request *r = NULL;
		size_t consumed;
		int status = 0;

		assert_int_equal(feed_str(p,
		                     "HEAD / HTTP/1.1\r\nHost: h\r\n"
		                     "Content-Length: 99999999\r\n\r\n",
		                     &consumed, &r, &status),
		    HTTP_ERROR);
		assert_int_equal(status, 413);
		assert_true(http_parser_is_head(p));
		http_parser_free(p);
	}
}

static void
test_expect_continue(void **state)
{
	static const char head[] = "POST /oauth/token HTTP/1.1\r\nHost: h\r\n"
	                           "Expect: 100-Continue\r\n"
	                           "Content-Length: 5\r\n\r\n";
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed;
	int status = 0;

	(void)state;
	assert_int_equal(http_parser_continue(p), 0);
	assert_int_equal(feed_str(p, head, &consumed, &r, &status), HTTP_MORE);
	assert_int_equal(http_parser_continue(p), 1); /* once */
	assert_int_equal(http_parser_continue(p), 0);
	assert_int_equal(
	    feed_str(p, "a=b&c", &consumed, &r, &status), HTTP_READY);
	assert_int_equal(r->body_len, 5);
	http_parser_next(p);
	/* Body already here: nothing owed. */
	assert_int_equal(feed_str(p,
	                     "POST /a HTTP/1.1\r\nHost: h\r\nExpect: "
	                     "100-continue\r\nContent-Length: 1\r\n\r\nx",
	                     &consumed, &r, &status),
	    HTTP_READY);
	assert_int_equal(http_parser_continue(p), 0);
	http_parser_next(p);
	/* No body to come, or HTTP/1.0: no 100. */
	assert_int_equal(feed_str(p,
	                     "POST /a HTTP/1.1\r\nHost: h\r\nExpect: "
	                     "100-continue\r\nContent-Length: 0\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_READY);
	assert_int_equal(http_parser_continue(p), 0);
	http_parser_next(p);
	assert_int_equal(feed_str(p,
	                     "POST /a HTTP/1.0\r\nExpect: 100-continue\r\n"
	                     "Content-Length: 3\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_MORE);
	assert_int_equal(http_parser_continue(p), 0);
	http_parser_free(p);
	/* Too large: the final status at once, no 100. */
	p = new_parser(NULL);
	assert_int_equal(feed_str(p,
	                     "POST /a HTTP/1.1\r\nHost: h\r\nExpect: "
	                     "100-continue\r\nContent-Length: 99999999\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_ERROR);
	assert_int_equal(status, 413);
	assert_int_equal(http_parser_continue(p), 0);
	http_parser_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_and_absolute_form),
		cmocka_unit_test(test_expect_continue),
	};

	return cmocka_run_group_tests_name(
	    "appliance/http_head", tests, NULL, NULL);
}
