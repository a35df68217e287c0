/*
 * tests/unit/appliance/test_http_response.c: the response writer of
 * appliance/http.c (exact bytes, the security headers, chunked framing,
 * JSON errors, extra headers, status texts) and struct buf of
 * appliance/buf.c, plain and wiping.
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

/* @p s inside the (not NUL-terminated) buffer, or NULL. */
static const char *
find(const struct buf *b, const char *s)
{
	return memmem(b->data, b->len, s, strlen(s));
}

static const char *
find_line(const struct buf *b, const char *prefix)
{
	const char *s = (const char *)b->data, *end = s + b->len;
	size_t n = strlen(prefix);

	while (s < end) {
		if ((size_t)(end - s) >= n && strncmp(s, prefix, n) == 0)
			return s;
		s = memchr(s, '\n', (size_t)(end - s));
		if (s == NULL)
			return NULL;
		s++;
	}
	return NULL;
}

static size_t
count_lines(const struct buf *b, const char *prefix)
{
	const char *s = (const char *)b->data;
	size_t n = 0, plen = strlen(prefix), off = 0;

	while (off < b->len) {
		if (b->len - off >= plen && strncmp(s + off, prefix, plen) == 0)
			n++;
		while (off < b->len && s[off] != '\n')
			off++;
		off++;
	}
	return n;
}

/* The Date line's value, checked for the IMF-fixdate shape. */
static void
get_date(const struct buf *b, char out[30])
{
	static const char *days = "Sun Mon Tue Wed Thu Fri Sat";
	const char *d = find_line(b, "Date: ");

	assert_non_null(d);
	d += 6;
	memcpy(out, d, 29);
	out[29] = '\0';
	assert_memory_equal(d + 29, "\r\n", 2);
	assert_non_null(strstr(days, (char[4]){ out[0], out[1], out[2], 0 }));
	assert_memory_equal(out + 3, ", ", 2);
	assert_string_equal(out + 25, " GMT");
	assert_true(out[7] == ' ' && out[11] == ' ' && out[16] == ' ');
	assert_true(out[19] == ':' && out[22] == ':');
}

static void
test_response_exact(void **state)
{
	struct buf b = { 0 };
	char date[30], want[1024];
	int n;

	(void)state;
	assert_int_equal(http_response(&b, 200, "text/plain", "hi", 2, 1), 0);
	get_date(&b, date);
	n = snprintf(want, sizeof(want),
	    "HTTP/1.1 200 OK\r\n"
	    "Date: %s\r\n"
	    "Server: strongroom\r\n"
	    "Content-Type: text/plain\r\n"
	    "Content-Length: 2\r\n"
	    "Connection: keep-alive\r\n"
	    "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "X-Frame-Options: DENY\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Cache-Control: no-store\r\n"
	    "Content-Security-Policy: default-src 'none'\r\n"
	    "\r\n"
	    "hi",
	    date);
	assert_int_equal(b.len, (size_t)n);
	assert_memory_equal(b.data, want, (size_t)n);

	/* Connection: close, and a 204 carries no framing header at all. */
	b.len = 0;
	assert_int_equal(http_response(&b, 204, NULL, NULL, 0, 0), 0);
	assert_non_null(find_line(&b, "HTTP/1.1 204 No Content\r\n"));
	assert_non_null(find_line(&b, "Connection: close\r\n"));
	assert_null(find_line(&b, "Content-Length"));
	assert_null(find_line(&b, "Content-Type"));
	assert_non_null(find_line(&b, "X-Frame-Options: DENY\r\n"));
	assert_int_equal(http_response(&b, 204, NULL, "x", 1, 0), -EINVAL);
	assert_int_equal(http_response(&b, 99, NULL, NULL, 0, 0), -EINVAL);
	buf_free(&b);
}

static void
test_response_chunked(void **state)
{
	char big[300];
	struct buf b = { 0 };
	const char *body;
	size_t head;

	(void)state;
	memset(big, 'z', sizeof(big));
	assert_int_equal(http_response_head(&b, 200, "application/x-ndjson",
	                     HTTP_CHUNKED, 1, NULL, 0),
	    0);
	assert_non_null(find_line(&b, "Transfer-Encoding: chunked\r\n"));
	assert_null(find_line(&b, "Content-Length"));
	head = b.len;
	assert_int_equal(http_body_part(&b, HTTP_CHUNKED, "hello", 5), 0);
	assert_int_equal(http_body_part(&b, HTTP_CHUNKED, "ignored", 0), 0);
	assert_int_equal(http_body_part(&b, HTTP_CHUNKED, big, sizeof(big)), 0);
	assert_int_equal(http_body_end(&b, HTTP_CHUNKED), 0);
	body = (const char *)b.data + head;
	assert_int_equal(b.len - head, 10 + 5 + sizeof(big) + 2 + 5);
	assert_memory_equal(body, "5\r\nhello\r\n12c\r\n", 15);
	assert_memory_equal(body + 15, big, sizeof(big));
	assert_memory_equal(body + 15 + sizeof(big), "\r\n0\r\n\r\n", 7);
	buf_free(&b);
}

static void
check_error_body(const struct buf *b, const char *code, const char *msg)
{
	const char *sep = find(b, "\r\n\r\n");
	yyjson_doc *doc;
	yyjson_val *err;
	size_t i, blen;
	char cl[64];

	assert_non_null(sep);
	sep += 4;
	blen = b->len - (size_t)(sep - (const char *)b->data);
	snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", blen);
	assert_non_null(find_line(b, cl));
	assert_non_null(find_line(b, "Content-Type: application/json\r\n"));
	for (i = 0; i < blen; i++)
		assert_true((unsigned char)sep[i] >= 0x20);
	doc = yyjson_read(sep, blen, 0);
	assert_non_null(doc);
	err = yyjson_obj_get(yyjson_doc_get_root(doc), "error");
	assert_true(yyjson_is_obj(err));
	assert_string_equal(yyjson_get_str(yyjson_obj_get(err, "code")), code);
	assert_string_equal(
	    yyjson_get_str(yyjson_obj_get(err, "message")), msg);
	yyjson_doc_free(doc);
}

static void
test_error_json(void **state)
{
	static const char msg[] = "say \"hi\"\n\tthen \x01\x1f </script> \\ ok";
	struct buf b = { 0 };

	(void)state;
	assert_int_equal(http_error(&b, 400, "bad_request", msg, 0), 400);
	assert_non_null(find_line(&b, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(find_line(&b, "Connection: close\r\n"));
	assert_non_null(find(&b, "\\\"hi\\\""));
	check_error_body(&b, "bad_request", msg);

	/* Not UTF-8: a valid body that says less. */
	b.len = 0;
	assert_int_equal(http_error(&b, 413, "too_large", "\xff\xfe", 1), 413);
	assert_non_null(find_line(&b, "HTTP/1.1 413 Content Too Large\r\n"));
	check_error_body(&b, "error", "Content Too Large");
	buf_free(&b);
}

static void
test_extra_headers(void **state)
{
	static const struct http_header extra[] = {
		{ "cache-control", "max-age=60", 0, 0 },
		{ "Content-Security-Policy", "default-src 'self'", 0, 0 },
		{ "X-Request-Id", "abc123", 12, 6 },
	};
	static const struct http_header framing[] = { { "Content-Length", "5",
	    0, 0 } };
	static const struct http_header inject[] = { { "X-A",
	    "a\r\nSet-Cookie: x", 0, 0 } };
	static const struct http_header badname[] = { { "Bad Name", "x", 0,
	    0 } };
	struct buf b = { 0 };

	(void)state;
	assert_int_equal(
	    http_response_head(&b, 200, "text/plain", 0, 1, extra, 3), 0);
	assert_int_equal(count_lines(&b, "Cache-Control:"), 0);
	assert_int_equal(count_lines(&b, "cache-control: max-age=60\r\n"), 1);
	assert_null(find(&b, "no-store"));
	assert_int_equal(count_lines(&b, "Content-Security-Policy:"), 1);
	assert_non_null(
	    find_line(&b, "Content-Security-Policy: default-src 'self'\r\n"));
	assert_non_null(find_line(&b, "X-Request-Id: abc123\r\n"));
	assert_non_null(find_line(&b, "X-Frame-Options: DENY\r\n"));
	assert_non_null(find_line(&b, "Referrer-Policy: no-referrer\r\n"));
	assert_non_null(find_line(&b, "Content-Length: 0\r\n"));
	assert_memory_equal(b.data + b.len - 4, "\r\n\r\n", 4);

	b.len = 0;
	assert_int_equal(
	    http_response_head(&b, 200, NULL, 0, 1, framing, 1), -EINVAL);
	assert_int_equal(
	    http_response_head(&b, 200, NULL, 0, 1, inject, 1), -EINVAL);
	assert_int_equal(
	    http_response_head(&b, 200, NULL, 0, 1, badname, 1), -EINVAL);
	assert_int_equal(
	    http_response_head(&b, 200, "a\r\nb", 0, 1, NULL, 0), -EINVAL);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_status_text(void **state)
{
	static const int codes[] = { 200, 201, 204, 400, 401, 403, 404, 405,
		408, 409, 413, 414, 429, 431, 500, 501, 503, 505 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		assert_string_not_equal(http_status_text(codes[i]), "Unknown");
	assert_string_equal(http_status_text(404), "Not Found");
	assert_string_equal(
	    http_status_text(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_text(799), "Unknown");
}

/* ------------------------------------------------------------------ */
/* struct buf                                                           */
/* ------------------------------------------------------------------ */

static void
buf_run(int wipe)
{
	struct buf b = { .wipe = wipe };
	size_t i;

	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(b.len, 10000);
	assert_true(b.cap >= b.len);
	assert_int_equal(buf_printf(&b, "%s-%d-%zu", "x", 5, (size_t)7), 0);
	assert_int_equal(b.len, 10005);
	assert_memory_equal(b.data + 10000, "x-5-7", 5);
	assert_int_equal(b.data[b.len], '\0');
	buf_consume(&b, 9995);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "56789x-5-7", 10);
	/* Appending from inside itself survives the reallocation. */
	for (i = 0; i < 12; i++)
		assert_int_equal(buf_append(&b, b.data, b.len), 0);
	assert_int_equal(b.len, (size_t)10 << 12);
	assert_memory_equal(b.data + b.len - 10, "56789x-5-7", 10);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - b.len + 1), -ENOMEM);
	buf_consume(&b, b.len + 1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	buf_free(&b);
}

static void
test_buf(void **state)
{
	(void)state;
	buf_run(0);
	buf_run(1); /* growth by copy and wipe keeps the same bytes */
}

static int
zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* A wiping buffer leaves nothing of what it dropped in its own block:
 * the bytes consumed from the front, and everything on buf_clear(). A
 * plain one (the default) does not spend the time. */
static void
test_buf_wipe(void **state)
{
	static const char secret[] =
	    "Authorization: Bearer srk_live_0123456789";
	const size_t n = sizeof(secret) - 1;
	struct buf b = { .wipe = 1 }, plain = { 0 };
	uint8_t *block;
	size_t cap;

	(void)state;
	assert_int_equal(buf_append(&b, secret, n), 0);
	assert_int_equal(buf_append(&b, secret, n), 0);
	block = b.data;
	cap = b.cap;
	buf_consume(&b, n + 7);
	assert_int_equal(b.len, n - 7);
	assert_memory_equal(b.data, secret + 7, n - 7);
	assert_true(zero(b.data + b.len, n + 7));
	buf_clear(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, block); /* the block is kept for reuse */
	assert_int_equal(b.cap, cap);
	assert_true(zero(b.data, 2 * n));
	assert_int_equal(buf_append(&b, secret, n), 0);
	buf_consume(&b, n + 1); /* past the end: all of it */
	assert_int_equal(b.len, 0);
	assert_true(zero(b.data, n));
	buf_free(&b);
	assert_null(b.data);

	assert_int_equal(buf_append(&plain, secret, n), 0);
	buf_clear(&plain);
	assert_memory_equal(plain.data, secret, n);
	buf_free(&plain);
}

/* A stream to an HTTP/1.0 client: no chunked coding (RFC 9112 7); the
 * close ends the body, so the head says close and the parts go bare. */
static void
test_response_until_close(void **state)
{
	struct buf b = { 0 };
	size_t head;

	(void)state;
	assert_int_equal(http_stream_framing(1), HTTP_CHUNKED);
	assert_int_equal(http_stream_framing(0), HTTP_UNTIL_CLOSE);
	/* Kept alive, the client could not tell where the body ends. */
	assert_int_equal(http_response_head(&b, 200, "text/event-stream",
	                     HTTP_UNTIL_CLOSE, 1, NULL, 0),
	    -EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(http_response_head(&b, 200, "text/event-stream",
	                     HTTP_UNTIL_CLOSE, 0, NULL, 0),
	    0);
	assert_null(find_line(&b, "Transfer-Encoding"));
	assert_null(find_line(&b, "Content-Length"));
	assert_non_null(find_line(&b, "Connection: close\r\n"));
	head = b.len;
	assert_int_equal(
	    http_body_part(&b, HTTP_UNTIL_CLOSE, "data: 1\n\n", 9), 0);
	assert_int_equal(http_body_part(&b, HTTP_UNTIL_CLOSE, "x", 0), 0);
	assert_int_equal(
	    http_body_part(&b, HTTP_UNTIL_CLOSE, "data: 22\n\n", 10), 0);
	assert_int_equal(http_body_end(&b, HTTP_UNTIL_CLOSE), 0);
	assert_int_equal(b.len, head + 19);
	assert_memory_equal(b.data + head, "data: 1\n\ndata: 22\n\n", 19);
	buf_free(&b);
}

/* http_answer_fit: a HEAD's answer is its head only, in one part or many;
 * any other answer passes untouched. */
static void
test_answer_fit(void **state)
{
	struct buf b = { 0 };
	struct http_fit f = { .head = 1 };
	size_t head, mark;

	(void)state;
	/* HEAD, whole answer: Content-Length kept, body gone. */
	assert_int_equal(
	    http_error(&b, 404, "not_found", "no such route", 1), 404);
	head = (size_t)((const uint8_t *)find(&b, "\r\n\r\n") - b.data) + 4;
	assert_true(head < b.len);
	http_answer_fit(&b, 0, &f);
	assert_int_equal(b.len, head);
	assert_non_null(find_line(&b, "Content-Length: 56\r\n"));
	assert_non_null(find_line(&b, "Connection: keep-alive\r\n"));
	/* A later part of a HEAD's answer sends nothing. */
	mark = b.len;
	assert_int_equal(http_body_part(&b, HTTP_CHUNKED, "more", 4), 0);
	http_answer_fit(&b, mark, &f);
	assert_int_equal(b.len, head);
	/* A HEAD whose head comes in two parts: cut once the head is whole. */
	b.len = 0;
	f = (struct http_fit){ .head = 1 };
	assert_int_equal(buf_append(&b, "HTTP/1.1 200 OK\r\n", 17), 0);
	http_answer_fit(&b, 0, &f);
	assert_int_equal(b.len, 17);
	mark = b.len;
	assert_int_equal(buf_append(&b, "A: b\r\n\r\nbody", 12), 0);
	http_answer_fit(&b, mark, &f);
	assert_int_equal(b.len, 17 + 8);
	/* Not HEAD: untouched, a stream's parts too. */
	b.len = 0;
	f = (struct http_fit){ 0 };
	assert_int_equal(http_error(&b, 404, "not_found", "x", 1), 404);
	mark = b.len;
	http_answer_fit(&b, 0, &f);
	assert_int_equal(b.len, mark);
	assert_int_equal(http_body_part(&b, HTTP_CHUNKED, "more", 4), 0);
	http_answer_fit(&b, mark, &f);
	assert_int_equal(b.len, mark + 9);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_exact),
		cmocka_unit_test(test_response_chunked),
		cmocka_unit_test(test_response_until_close),
		cmocka_unit_test(test_answer_fit),
		cmocka_unit_test(test_error_json),
		cmocka_unit_test(test_extra_headers),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_buf_wipe),
	};

	return cmocka_run_group_tests_name(
	    "appliance/http-response", tests, NULL, NULL);
}
