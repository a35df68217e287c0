/*
 * tests/unit/appliance/httptest.h: what the request parser's tests share:
 * the default limits, a parser made with them (or others), and feeding a
 * C string. Header-only, after cmocka.h and appliance/internal.h.
 *
 * It must never hide a parser failure: every helper asserts.
 */
#ifndef SR_TEST_HTTPTEST_H
#define SR_TEST_HTTPTEST_H

#include <string.h>

static const struct http_limits default_limits = {
	.max_header_bytes = 16384,
	.max_url_bytes = 8192,
	.max_body_bytes = 1048576,
	.max_headers = 100,
};

static inline struct http_parser *
new_parser(const struct http_limits *lim)
{
	struct http_parser *p = NULL;

	assert_int_equal(
	    http_parser_new(lim != NULL ? lim : &default_limits, &p), 0);
	assert_non_null(p);
	return p;
}

static inline int
feed_str(struct http_parser *p, const char *s, size_t *consumed,
    struct http_request **req, int *status)
{
	return http_parser_feed(
	    p, (const uint8_t *)s, strlen(s), consumed, req, status);
}

#endif /* SR_TEST_HTTPTEST_H */
