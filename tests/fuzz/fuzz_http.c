/*
 * tests/fuzz/fuzz_http.c: libFuzzer target for the HTTP request path: the
 * parser fed in pieces the input chooses, then the response writer on what
 * it parsed. Checks the parser's promises: it never consumes more than it
 * is given, a ready request has a method, a path starting with '/', and a
 * body within the limit, and an error always names a status. ASan and
 * UBSan catch the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits lim = { 4096, 1024, 8192, 32 };
	struct http_parser *p;
	struct http_request *req;
	struct buf out = { 0 };
	size_t off = 1, used, piece;
	int rc, status, requests = 0;

	if (size < 1 || http_parser_new(&lim, &p) != 0)
		return 0;
	/* The first byte picks the piece size: split requests arrive in
	 * every way a TCP stream can cut them. */
	piece = (size_t)data[0] % 64 + 1;
	while (off < size && requests < 64) {
		size_t n = size - off < piece ? size - off : piece;

		rc = http_parser_feed(p, data + off, n, &used, &req, &status);
		if (used > n)
			abort();
		off += used;
		if (rc == HTTP_ERROR) {
			if (status < 400 || status > 599)
				abort();
			http_error(&out, status, "bad_request", "fuzz", 0);
			break;
		}
		if (rc == HTTP_READY) {
			if (req->method == NULL || req->path == NULL ||
			    req->path[0] == '\0' ||
			    req->body_len > lim.max_body_bytes)
				abort();
			http_response(&out, 200, "text/plain", req->body,
			    req->body_len, req->keep_alive);
			http_parser_next(p);
			requests++;
			out.len = 0;
			continue;
		}
		if (rc == HTTP_MORE && used != n)
			abort(); /* "more" means it took all it was given */
	}
	buf_free(&out);
	http_parser_free(p);
	return 0;
}
