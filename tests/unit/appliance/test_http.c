/*
 * tests/unit/appliance/test_http.c: the HTTP/1.1 request parser of
 * appliance/http.c: good requests (queries, Content-Length and chunked
 * bodies, keep-alive rules, pipelining, byte-by-byte feeding) and a hostile
 * corpus in which every case must end in HTTP_ERROR with one exact status,
 * fed whole and one byte at a time. The response writer and struct buf are
 * in test_http_response.c.
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

#include <yyjson.h>

#include "appliance/internal.h"
#include "tests/unit/appliance/httptest.h"

/* Feed one byte at a time until the parser answers something else than
 * HTTP_MORE; *total: the bytes it consumed. */
static int
feed_bytewise(struct http_parser *p, const uint8_t *d, size_t len,
    size_t *total, struct http_request **req, int *status)
{
	size_t i, c;
	int rc = HTTP_MORE;

	*total = 0;
	for (i = 0; i < len; i++) {
		rc = http_parser_feed(p, d + i, 1, &c, req, status);
		*total += c;
		if (rc != HTTP_MORE)
			break;
		assert_int_equal(c, 1);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Good requests                                                        */
/* ------------------------------------------------------------------ */

static void
test_get_with_query(void **state)
{
	static const char req_text[] = "GET /v1/models?x=1&y=2 HTTP/1.1\r\n"
	                               "Host: appliance.local:8443\r\n"
	                               "Accept: */*\r\n"
	                               "X-Spaced:   padded value \t \r\n"
	                               "X-Empty:\r\n"
	                               "\r\n";
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed = 0;
	int status = -1;

	(void)state;
	assert_true(http_parser_idle(p));
	assert_int_equal(
	    feed_str(p, req_text, &consumed, &r, &status), HTTP_READY);
	assert_int_equal(consumed, strlen(req_text));
	assert_non_null(r);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->target, "/v1/models?x=1&y=2");
	assert_string_equal(r->path, "/v1/models");
	assert_string_equal(r->query, "x=1&y=2");
	assert_int_equal(r->version_minor, 1);
	assert_int_equal(r->keep_alive, 1);
	assert_int_equal(r->nheaders, 4);
	assert_string_equal(r->headers[0].name, "Host");
	assert_int_equal(r->headers[0].name_len, 4);
	assert_string_equal(http_header_get(r, "host"), "appliance.local:8443");
	assert_string_equal(http_header_get(r, "ACCEPT"), "*/*");
	assert_string_equal(http_header_get(r, "x-spaced"), "padded value");
	assert_int_equal(r->headers[2].value_len, strlen("padded value"));
	assert_string_equal(http_header_get(r, "X-Empty"), "");
	assert_null(http_header_get(r, "Content-Length"));
	assert_null(http_header_get(r, "Hos"));
	assert_int_equal(r->body_len, 0);
	assert_non_null(r->body);
	assert_false(http_parser_idle(p));
	http_parser_next(p);
	assert_true(http_parser_idle(p));
	http_parser_free(p);
}

static void
test_path_without_query(void **state)
{
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed;
	int status;

	(void)state;
	assert_int_equal(feed_str(p, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_READY);
	assert_string_equal(r->path, "/healthz");
	assert_string_equal(r->query, "");
	http_parser_next(p);
	assert_int_equal(feed_str(p, "GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_READY);
	assert_string_equal(r->path, "/a");
	assert_string_equal(r->query, "");
	assert_string_equal(r->target, "/a?");
	http_parser_next(p);
	assert_int_equal(feed_str(p, "GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_READY);
	assert_string_equal(r->path, "/a");
	assert_string_equal(r->query, "b?c");
	http_parser_next(p);
	/* One byte of the next request: no longer idle. */
	assert_int_equal(feed_str(p, "G", &consumed, &r, &status), HTTP_MORE);
	assert_int_equal(consumed, 1);
	assert_false(http_parser_idle(p));
	http_parser_free(p);
}

static void
test_post_content_length(void **state)
{
	static const char req_text[] = "POST /v1/infer HTTP/1.1\r\n"
	                               "Host: h\r\n"
	                               "Content-Type: application/json\r\n"
	                               "Content-Length: 13\r\n"
	                               "\r\n"
	                               "{\"prompt\":42}";
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed;
	int status;

	(void)state;
	/* Head and part of the body first: more is needed. */
	assert_int_equal(http_parser_feed(p, (const uint8_t *)req_text,
	                     sizeof(req_text) - 6, &consumed, &r, &status),
	    HTTP_MORE);
	assert_int_equal(consumed, sizeof(req_text) - 6);
	assert_null(r);
	assert_int_equal(
	    http_parser_feed(p, (const uint8_t *)req_text + consumed, 5,
	        &consumed, &r, &status),
	    HTTP_READY);
	assert_int_equal(consumed, 5);
	assert_string_equal(r->method, "POST");
	assert_int_equal(r->body_len, 13);
	assert_memory_equal(r->body, "{\"prompt\":42}", 13);
	assert_string_equal(http_header_get(r, "content-length"), "13");
	/* Feeding again before http_parser_next() hands the same request. */
	assert_int_equal(http_parser_feed(p, (const uint8_t *)"x", 1, &consumed,
	                     &r, &status),
	    HTTP_READY);
	assert_int_equal(consumed, 0);
	http_parser_free(p);
}

/* PATCH (the management API's partial update) with its body. */
static void
test_patch_body(void **state)
{
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed;
	int status;

	(void)state;
	assert_int_equal(
	    feed_str(p,
	        "PATCH /api/apps/4Fq0c1xZb2Ya HTTP/1.1\r\nHost: h\r\n"
	        "Content-Length: 12\r\n\r\n{\"name\":\"x\"}",
	        &consumed, &r, &status),
	    HTTP_READY);
	assert_string_equal(r->method, "PATCH");
	assert_string_equal(r->path, "/api/apps/4Fq0c1xZb2Ya");
	assert_int_equal(r->body_len, 12);
	assert_memory_equal(r->body, "{\"name\":\"x\"}", 12);
	http_parser_free(p);
}

static const char chunked_req[] = "POST /upload HTTP/1.1\r\n"
                                  "Host: h\r\n"
                                  "Transfer-Encoding: Chunked\r\n"
                                  "\r\n"
                                  "5\r\nhello\r\n"
                                  "1\r\n \r\n"
                                  "A\r\nworld, 10!\r\n"
                                  "00\r\n"
                                  "X-Checksum: 1\r\n"
                                  "\r\n";

static void
check_chunked(const struct http_request *r)
{
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, "/upload");
	assert_int_equal(r->body_len, 16);
	assert_memory_equal(r->body, "hello world, 10!", 16);
	assert_int_equal(r->nheaders, 2); /* the trailer is dropped */
	assert_null(http_header_get(r, "X-Checksum"));
	assert_int_equal(r->keep_alive, 1);
}

static void
test_chunked_body(void **state)
{
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed;
	int status;

	(void)state;
	assert_int_equal(
	    feed_str(p, chunked_req, &consumed, &r, &status), HTTP_READY);
	assert_int_equal(consumed, strlen(chunked_req));
	check_chunked(r);
	http_parser_free(p);
}

static void
test_bytewise_same_result(void **state)
{
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t total;
	int status;

	(void)state;
	assert_int_equal(feed_bytewise(p, (const uint8_t *)chunked_req,
	                     strlen(chunked_req), &total, &r, &status),
	    HTTP_READY);
	assert_int_equal(total, strlen(chunked_req));
	check_chunked(r);
	assert_string_equal(http_header_get(r, "transfer-encoding"), "Chunked");
	http_parser_next(p);
	assert_int_equal(
	    feed_bytewise(p, (const uint8_t *)"GET /q?a=b HTTP/1.0\r\n\r\n", 24,
	        &total, &r, &status),
	    HTTP_READY);
	assert_string_equal(r->query, "a=b");
	assert_int_equal(r->version_minor, 0);
	assert_int_equal(r->keep_alive, 0);
	http_parser_free(p);
}

static void
test_keep_alive_rules(void **state)
{
	static const struct {
		const char *text;
		int keep_alive, minor;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1, 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0,
		    1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", 0,
		    1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
		    1, 1 },
		{ "GET / HTTP/1.0\r\n\r\n", 0, 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, 0 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1, 0 },
		{ "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", 0, 0 },
		/* RFC 9110 5.5 and 7.6.1: the value is a list of tokens,
		 * without the OWS around it, compared without case. */
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\t\r\n\r\n", 0,
		    1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: close  \r\n\r\n", 0,
		    1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection:\tclose \t\r\n\r\n",
		    0, 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n"
		  "Connection: keep-alive, close\r\n\r\n",
		    0, 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\n"
		  "Connection: Upgrade ,\tCLOSE\t,x\r\n\r\n",
		    0, 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: ,,close,\r\n\r\n",
		    0, 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\n"
		  "Connection: close \r\n\r\n",
		    0, 1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 1,
		    1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-close\r\n\r\n", 1,
		    1 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n", 1,
		    1 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\t \r\n\r\n", 1, 0 },
		{ "GET / HTTP/1.0\r\nConnection: TE, Keep-Alive\r\n\r\n", 1,
		    0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0,
		    0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", 0, 0 },
	};
	struct http_request *r;
	size_t i, consumed;
	int status;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_parser *p = new_parser(NULL);

		r = NULL;
		assert_int_equal(
		    feed_str(p, cases[i].text, &consumed, &r, &status),
		    HTTP_READY);
		if (r->keep_alive != cases[i].keep_alive)
			fail_msg("case %zu: keep_alive %d", i, r->keep_alive);
		assert_int_equal(r->version_minor, cases[i].minor);
		/* A connection kept open reads the next request. */
		if (cases[i].keep_alive) {
			http_parser_next(p);
			assert_int_equal(
			    feed_str(p, "GET /n HTTP/1.1\r\nHost: h\r\n\r\n",
			        &consumed, &r, &status),
			    HTTP_READY);
			assert_string_equal(r->path, "/n");
		}
		http_parser_free(p);
	}
}

static void
test_pipelining(void **state)
{
	static const char first[] = "POST /a HTTP/1.1\r\nHost: h\r\n"
	                            "Content-Length: 3\r\n\r\nabc";
	static const char second[] = "GET /b?z HTTP/1.1\r\nHost: h\r\n\r\n";
	char both[sizeof(first) + sizeof(second) + 2];
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed, n;
	int status;

	(void)state;
	n = (size_t)snprintf(both, sizeof(both), "%s\r\n%s", first, second);
	assert_int_equal(http_parser_feed(p, (const uint8_t *)both, n,
	                     &consumed, &r, &status),
	    HTTP_READY);
	assert_int_equal(consumed, strlen(first));
	assert_string_equal(r->path, "/a");
	assert_memory_equal(r->body, "abc", 3);
	assert_true(r->keep_alive);
	http_parser_next(p);
	assert_int_equal(http_parser_feed(p, (const uint8_t *)both + consumed,
	                     n - consumed, &consumed, &r, &status),
	    HTTP_READY);
	assert_int_equal(consumed, strlen(second) + 2); /* with the CRLF */
	assert_string_equal(r->path, "/b");
	assert_string_equal(r->query, "z");
	assert_int_equal(r->body_len, 0);
	http_parser_next(p);
	assert_true(http_parser_idle(p));
	http_parser_free(p);
}

static void
test_upgrade_ignored(void **state)
{
	static const char text[] = "GET /ws HTTP/1.1\r\nHost: h\r\n"
	                           "Connection: Upgrade\r\n"
	                           "Upgrade: websocket\r\n\r\n"
	                           "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed, off;
	int status;

	(void)state;
	assert_int_equal(feed_str(p, text, &consumed, &r, &status), HTTP_READY);
	assert_string_equal(r->path, "/ws");
	off = consumed;
	http_parser_next(p);
	assert_int_equal(
	    feed_str(p, text + off, &consumed, &r, &status), HTTP_READY);
	assert_string_equal(r->path, "/next");
	assert_int_equal(off + consumed, strlen(text));
	http_parser_free(p);
}

static void
test_garbage_after_request(void **state)
{
	static const char text[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	                           "\x01\x02junk\r\n\r\n";
	struct http_parser *p = new_parser(NULL);
	struct http_request *r = NULL;
	size_t consumed, first;
	int status = 0;

	(void)state;
	assert_int_equal(feed_str(p, text, &consumed, &r, &status), HTTP_READY);
	first = strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(consumed, first);
	assert_string_equal(r->path, "/");
	http_parser_next(p);
	assert_int_equal(
	    feed_str(p, text + first, &consumed, &r, &status), HTTP_ERROR);
	assert_int_equal(status, 400);
	assert_null(r);
	/* The error sticks. */
	status = 0;
	assert_int_equal(feed_str(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	                     &consumed, &r, &status),
	    HTTP_ERROR);
	assert_int_equal(status, 400);
	http_parser_free(p);
}

/* Limits land exactly: a head of max_header_bytes is fine, one more byte
 * is not; likewise the body, the URL and the header count. */
static void
test_limit_boundaries(void **state)
{
	static const struct http_limits small = {
		.max_header_bytes = 64,
		.max_url_bytes = 16,
		.max_body_bytes = 8,
		.max_headers = 2,
	};
	static const struct {
		const char *text;
		int rc, status;
	} cases[] = {
		/* 64 bytes of head */
		{ "GET /0123456789abcde HTTP/1.1\r\nHost: h\r\nX: "
		  "0123456789abcdefg"
		  "\r\n\r\n",
		    HTTP_READY, 0 },
		{ "GET /0123456789abcde HTTP/1.1\r\nHost: h\r\nX: "
		  "0123456789abcdefgh"
		  "\r\n\r\n",
		    HTTP_ERROR, 431 },
		{ "GET /0123456789abcdef HTTP/1.1\r\nHost: h\r\n\r\n",
		    HTTP_ERROR, 414 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", HTTP_READY, 0 },
		{ "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n",
		    HTTP_ERROR, 431 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n"
		  "12345678",
		    HTTP_READY, 0 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n",
		    HTTP_ERROR, 413 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
		  "\r\n\r\n4\r\n1234\r\n4\r\n5678\r\n0\r\n\r\n",
		    HTTP_READY, 0 },
		{ "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
		  "\r\n\r\n4\r\n1234\r\n5\r\n",
		    HTTP_ERROR, 413 },
	};
	struct http_request *r;
	size_t i, consumed;
	int status, bytewise;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (bytewise = 0; bytewise < 2; bytewise++) {
			struct http_parser *p = new_parser(&small);
			int rc;

			status = 0;
			r = NULL;
			rc = bytewise
			    ? feed_bytewise(p, (const uint8_t *)cases[i].text,
			          strlen(cases[i].text), &consumed, &r, &status)
			    : feed_str(
			          p, cases[i].text, &consumed, &r, &status);
			if (rc != cases[i].rc || status != cases[i].status)
				fail_msg("case %zu (%s): rc %d status %d", i,
				    bytewise ? "bytewise" : "whole", rc,
				    status);
			http_parser_free(p);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The hostile corpus                                                   */
/* ------------------------------------------------------------------ */

struct hostile {
	const char *name;
	const char *data;
	size_t len;
	int status;
};

#define CASE(n, lit, st) \
	{ \
		(n), (lit), sizeof(lit) - 1, (st) \
	}
#define RL "POST / HTTP/1.1\r\nHost: h\r\n"
#define GL "GET / HTTP/1.1\r\n"

static const struct hostile corpus[] = {
	CASE("no target or version", "GET\r\n\r\n", 400),
	CASE("HTTP/0.9 request line", "GET /\r\n\r\n", 400),
	CASE("space after version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
	CASE("not HTTP", "GET / FOO/1.1\r\nHost: h\r\n\r\n", 400),
	CASE("RTSP", "GET / RTSP/1.0\r\n\r\n", 400),
	CASE("no method", "/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
	CASE("bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n", 400),
	CASE("TLS on plaintext", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 400),
	CASE("lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
	CASE("unknown method", "BREW / HTTP/1.1\r\nHost: h\r\n\r\n", 501),
	CASE("RTSP method", "DESCRIBE / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
	CASE("CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 501),
	CASE("HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
	CASE("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
	CASE("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505),
	CASE("HTTP/3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
	CASE("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505),
	CASE("HTTP/1.x", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400),
	CASE("CL and TE",
	    RL "Content-Length: 5\r\nTransfer-Encoding: "
	       "chunked\r\n\r\n0\r\n\r\n",
	    400),
	CASE("TE and CL",
	    RL "Transfer-Encoding: chunked\r\nContent-Length: "
	       "5\r\n\r\n0\r\n\r\n",
	    400),
	CASE("two CL equal",
	    RL "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400),
	CASE("CL with sign", RL "Content-Length: +1\r\n\r\nx", 400),
	CASE("CL negative", RL "Content-Length: -1\r\n\r\nx", 400),
	CASE("CL inner space", RL "Content-Length: 1 0\r\n\r\nx", 400),
	CASE("CL hex", RL "Content-Length: 0x1\r\n\r\nx", 400),
	CASE("CL list", RL "Content-Length: 1, 1\r\n\r\nx", 400),
	CASE("CL empty", RL "Content-Length: \r\n\r\n", 400),
	CASE("CL over max body", RL "Content-Length: 1048577\r\n\r\n", 413),
	CASE("TE gzip, chunked",
	    RL "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
	CASE("TE chunked, chunked",
	    RL "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
	CASE("TE gzip", RL "Transfer-Encoding: gzip\r\n\r\n", 400),
	CASE("TE twice",
	    RL "Transfer-Encoding: chunked\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    400),
	CASE("TE in HTTP/1.0",
	    "POST / HTTP/1.0\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n0\r\n\r\n",
	    400),
	CASE("chunk size zz", RL "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
	    400),
	CASE("chunk size negative",
	    RL "Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
	CASE("chunk size overflow",
	    RL "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 400),
	CASE("chunk size huge",
	    RL "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", 413),
	CASE("chunk over max body",
	    RL "Transfer-Encoding: chunked\r\n\r\n100001\r\n", 413),
	CASE("space after chunk size",
	    RL "Transfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n", 400),
	CASE("chunk data too long",
	    RL "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", 400),
	CASE("chunk ext with bare LF",
	    RL "Transfer-Encoding: chunked\r\n\r\n1;a\nb\r\nx\r\n0\r\n\r\n",
	    400),
	CASE("NUL in value", GL "Host: h\r\nX: a\0b\r\n\r\n", 400),
	CASE("bare CR in value", GL "Host: h\r\nX: a\rb\r\n\r\n", 400),
	CASE("bare LF in value", GL "Host: h\r\nX: a\nY: b\r\n\r\n", 400),
	CASE("DEL in value",
	    GL "Host: h\r\nX: a\x7f"
	       "b\r\n\r\n",
	    400),
	CASE("obs-fold", GL "Host: h\r\nX: a\r\n b\r\n\r\n", 400),
	CASE("obs-fold with tab", GL "Host: h\r\nX: a\r\n\tb\r\n\r\n", 400),
	CASE("space before colon", GL "Host : h\r\n\r\n", 400),
	CASE("tab before colon", GL "Host\t: h\r\n\r\n", 400),
	CASE("header without colon", GL "Host: h\r\nnocolon\r\n\r\n", 400),
	CASE("empty header name", GL "Host: h\r\n: x\r\n\r\n", 400),
	CASE("missing Host in 1.1", GL "Accept: */*\r\n\r\n", 400),
	CASE("two Host headers", GL "Host: a\r\nHost: a\r\n\r\n", 400),
	CASE("two Authorization headers",
	    GL "Host: h\r\nAuthorization: Bearer a\r\n"
	       "authorization: Bearer b\r\n\r\n",
	    400),
	CASE("two Cookie headers",
	    GL "Host: h\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", 400),
	CASE("two Content-Type headers",
	    RL "Content-Type: a/b\r\nContent-Type: c/d\r\n"
	       "Content-Length: 0\r\n\r\n",
	    400),
	CASE("two X-CSRF-Token headers",
	    GL "Host: h\r\nX-CSRF-Token: a\r\nX-Csrf-Token: a\r\n\r\n", 400),
	CASE("Host with a space", GL "Host: a b\r\n\r\n", 400),
	CASE("Host with a slash", GL "Host: a/b\r\n\r\n", 400),
	CASE("NUL in target", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
	CASE("TAB in target", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400),
	CASE("raw UTF-8 in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
	    400),
};

static void
expect_error(const struct http_limits *lim, const char *name,
    const uint8_t *data, size_t len, int want)
{
	struct http_request *r;
	size_t consumed;
	int bytewise, rc, status;

	for (bytewise = 0; bytewise < 2; bytewise++) {
		struct http_parser *p = new_parser(lim);

		r = NULL;
		status = 0;
		rc = bytewise
		    ? feed_bytewise(p, data, len, &consumed, &r, &status)
		    : http_parser_feed(p, data, len, &consumed, &r, &status);
		if (rc != HTTP_ERROR || status != want)
			fail_msg("%s (%s): rc %d status %d, want %d", name,
			    bytewise ? "bytewise" : "whole", rc, status, want);
		assert_null(r);
		assert_true(consumed <= len);
		http_parser_free(p);
	}
}

static void
test_hostile_corpus(void **state)
{
	size_t i;

	(void)state;
	assert_true(sizeof(corpus) / sizeof(corpus[0]) >= 30);
	for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++)
		expect_error(NULL, corpus[i].name,
		    (const uint8_t *)corpus[i].data, corpus[i].len,
		    corpus[i].status);
}

static void
pad(struct buf *b, char c, size_t n)
{
	assert_int_equal(buf_reserve(b, n), 0);
	memset(b->data + b->len, c, n);
	b->len += n;
}

static void
test_hostile_generated(void **state)
{
	struct buf b = { 0 };
	int i;

	(void)state;
	/* A 17 KiB header. */
	assert_int_equal(buf_printf(&b, GL "Host: h\r\nX-Big: "), 0);
	pad(&b, 'a', 17 * 1024);
	assert_int_equal(buf_printf(&b, "\r\n\r\n"), 0);
	expect_error(NULL, "17 KiB header", b.data, b.len, 431);
	b.len = 0;

	/* 200 headers. */
	assert_int_equal(buf_printf(&b, GL "Host: h\r\n"), 0);
	for (i = 0; i < 200; i++)
		assert_int_equal(buf_printf(&b, "X-H%d: v\r\n", i), 0);
	assert_int_equal(buf_printf(&b, "\r\n"), 0);
	expect_error(NULL, "200 headers", b.data, b.len, 431);
	b.len = 0;

	/* A 9 KiB URL. */
	assert_int_equal(buf_printf(&b, "GET /"), 0);
	pad(&b, 'u', 9 * 1024);
	assert_int_equal(buf_printf(&b, " HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
	expect_error(NULL, "9 KiB URL", b.data, b.len, 414);
	b.len = 0;

	/* Empty lines forever before a request. */
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_append(&b, "\r\n", 2), 0);
	expect_error(NULL, "CRLF flood", b.data, b.len, 431);
	b.len = 0;

	/* Chunk extensions past any use. */
	assert_int_equal(
	    buf_printf(&b, RL "Transfer-Encoding: chunked\r\n\r\n1;x="), 0);
	pad(&b, 'e', 2000);
	assert_int_equal(buf_printf(&b, "\r\na\r\n0\r\n\r\n"), 0);
	expect_error(NULL, "chunk extension abuse", b.data, b.len, 400);
	b.len = 0;

	/* Chunks each under the limit, adding up over it. */
	assert_int_equal(
	    buf_printf(&b, RL "Transfer-Encoding: chunked\r\n\r\n80000\r\n"),
	    0);
	pad(&b, 'c', 0x80000);
	assert_int_equal(buf_printf(&b, "\r\n80001\r\n"), 0);
	expect_error(NULL, "chunks adding up", b.data, b.len, 413);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */
/* ------------------------------------------------------------------ */

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_with_query),
		cmocka_unit_test(test_path_without_query),
		cmocka_unit_test(test_post_content_length),
		cmocka_unit_test(test_patch_body),
		cmocka_unit_test(test_chunked_body),
		cmocka_unit_test(test_bytewise_same_result),
		cmocka_unit_test(test_keep_alive_rules),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_upgrade_ignored),
		cmocka_unit_test(test_garbage_after_request),
		cmocka_unit_test(test_limit_boundaries),
		cmocka_unit_test(test_hostile_corpus),
		cmocka_unit_test(test_hostile_generated),
	};

	return cmocka_run_group_tests_name("appliance/http", tests, NULL, NULL);
}
