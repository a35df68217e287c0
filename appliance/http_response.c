/*
 * appliance/http_response.c: HTTP/1.1 responses: status line, the security
 * headers of internal.h on every response, streamed bodies framed for the
 * request's version (chunked, or ended by the close for HTTP/1.0), and
 * JSON errors built with yyjson; and the cut of a HEAD's answer to its
 * head (http_answer_fit).
 *
 * It must never copy a request's bytes into a response header, or let an
 * extra header a handler passes replace the framing headers
 * (Content-Length, Transfer-Encoding, Connection).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "appliance/http_impl.h"
#include "appliance/internal.h"

/* --- Responses --- */

static const struct {
	int code;
	const char *text;
} status_texts[] = { { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 204, "No Content" }, { 304, "Not Modified" }, { 400, "Bad Request" },
	{ 401, "Unauthorized" }, { 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
	{ 409, "Conflict" }, { 413, "Content Too Large" },
	{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" } };

const char *
http_status_text(int status)
{
	size_t i;

	for (i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++)
		if (status_texts[i].code == status)
			return status_texts[i].text;
	return "Unknown";
}

/* IMF-fixdate of now, formatted once a second per thread. */
static const char *
http_date(void)
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static _Thread_local time_t cached = (time_t)-1;
	static _Thread_local char text[40];
	time_t now = time(NULL);
	struct tm tm;

	if (now != cached && gmtime_r(&now, &tm) != NULL) {
		snprintf(text, sizeof(text),
		    "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
		    days + 3 * (tm.tm_wday % 7), tm.tm_mday,
		    months + 3 * (tm.tm_mon % 12), tm.tm_year + 1900,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached = now;
	}
	return text;
}

/* A caller's header gives its lengths, or 0 to mean strlen(). */
static size_t
field_len(const char *s, size_t given)
{
	return given != 0 ? given : strlen(s);
}

/* A token name that is not a framing header, and a value without control
 * bytes: no CR or LF, so no header injection. */
static int
extra_ok(const struct http_header *h)
{
	size_t i, nl;

	if (h->name == NULL || h->value == NULL)
		return 0;
	nl = field_len(h->name, h->name_len);
	if (nl == 0 || nl > 256 ||
	    http_ci_equal(h->name, nl, "content-length") ||
	    http_ci_equal(h->name, nl, "transfer-encoding") ||
	    http_ci_equal(h->name, nl, "connection"))
		return 0;
	for (i = 0; i < nl; i++)
		if (!http_is_tchar((unsigned char)h->name[i]))
			return 0;
	return field_len(h->value, h->value_len) <= 65536 &&
	    http_value_ok(h->value, field_len(h->value, h->value_len));
}

static int
overridden(const char *name, const struct http_header *extra, size_t nextra)
{
	size_t i;

	for (i = 0; i < nextra; i++)
		if (http_ci_equal(extra[i].name,
		        field_len(extra[i].name, extra[i].name_len), name))
			return 1;
	return 0;
}

/* "Name: value\r\n" with one reservation (no format parsing: this runs
 * for every answer). */
static int
put_field(struct buf *out, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	char *p;

	if (buf_reserve(out, nlen + vlen + 4) != 0)
		return -ENOMEM;
	p = (char *)out->data + out->len;
	memcpy(p, name, nlen);
	memcpy(p + nlen, ": ", 2);
	memcpy(p + nlen + 2, value, vlen);
	memcpy(p + nlen + 2 + vlen, "\r\n", 2);
	out->len += nlen + vlen + 4;
	return 0;
}

static int
write_head(struct buf *out, int status, const char *content_type,
    size_t content_length, int keep_alive, const struct http_header *extra,
    size_t nextra)
{
	int rc, nobody = status < 200 || status == 204 || status == 304;
	int chunked = content_length == HTTP_CHUNKED,
	    until_close = content_length == HTTP_UNTIL_CLOSE;
	char cl[24], line[64];
	const char *framing = nobody || until_close ? NULL
	    : chunked                               ? "chunked"
	                                            : cl;
	const char *text = http_status_text(status);
	/* In order; framing and Connection are never the caller's. */
	const struct {
		const char *name, *value;
		int fixed;
	} h[] = { { "Date", http_date(), 0 }, { "Server", "strongroom", 0 },
		{ "Content-Type", content_type, 0 },
		{ chunked ? "Transfer-Encoding" : "Content-Length", framing,
		    1 },
		{ "Connection", keep_alive ? "keep-alive" : "close", 1 },
		{ "Strict-Transport-Security",
		    "max-age=31536000; includeSubDomains", 0 },
		{ "X-Content-Type-Options", "nosniff", 0 },
		{ "X-Frame-Options", "DENY", 0 },
		{ "Referrer-Policy", "no-referrer", 0 },
		{ "Cache-Control", "no-store", 0 },
		{ "Content-Security-Policy", "default-src 'none'", 0 } };
	size_t i, n;

	cl[sr_u64_decimal(cl, content_length)] = '\0';
	/* "HTTP/1.1 200 OK\r\n": status is 100..599, the text is short. */
	memcpy(line, "HTTP/1.1 ", 9);
	n = 9 + sr_u64_decimal(line + 9, (uint64_t)status);
	line[n++] = ' ';
	i = strlen(text);
	if (i > sizeof(line) - n - 2)
		i = sizeof(line) - n - 2;
	memcpy(line + n, text, i);
	n += i;
	memcpy(line + n, "\r\n", 2);
	rc = buf_append(out, line, n + 2);
	for (i = 0; rc == 0 && i < sizeof(h) / sizeof(h[0]); i++)
		if (h[i].value != NULL &&
		    (h[i].fixed || !overridden(h[i].name, extra, nextra)))
			rc = put_field(out, h[i].name, strlen(h[i].name),
			    h[i].value, strlen(h[i].value));
	for (i = 0; rc == 0 && i < nextra; i++) /* lengths checked */
		rc = put_field(out, extra[i].name,
		    field_len(extra[i].name, extra[i].name_len), extra[i].value,
		    field_len(extra[i].value, extra[i].value_len));
	return rc != 0 ? rc : buf_append(out, "\r\n", 2);
}

int
http_response_head(struct buf *out, int status, const char *content_type,
    size_t content_length, int keep_alive, const struct http_header *extra,
    size_t nextra)
{
	size_t i, mark = out->len;
	int rc;

	if (status < 100 || status > 599 || (nextra != 0 && extra == NULL) ||
	    ((status < 200 || status == 204 || status == 304) &&
	        content_length != 0) ||
	    (content_length == HTTP_UNTIL_CLOSE && keep_alive) ||
	    (content_type != NULL &&
	        !http_value_ok(content_type, strlen(content_type))))
		return -EINVAL;
	for (i = 0; i < nextra; i++)
		if (!extra_ok(&extra[i]))
			return -EINVAL;
	rc = write_head(out, status, content_type, content_length, keep_alive,
	    extra, nextra);
	if (rc != 0)
		out->len = mark;
	return rc;
}

size_t
http_stream_framing(int version_minor)
{
	return version_minor == 0 ? HTTP_UNTIL_CLOSE : HTTP_CHUNKED;
}

int
http_body_part(struct buf *out, size_t framing, const void *data, size_t len)
{
	size_t mark = out->len;
	int rc;

	if (len == 0)
		return 0;
	if (framing == HTTP_UNTIL_CLOSE)
		return buf_append(out, data, len);
	if ((rc = buf_printf(out, "%zx\r\n", len)) != 0 ||
	    (rc = buf_append(out, data, len)) != 0 ||
	    (rc = buf_append(out, "\r\n", 2)) != 0)
		out->len = mark;
	return rc;
}

int
http_body_end(struct buf *out, size_t framing)
{
	return framing == HTTP_UNTIL_CLOSE ? 0
	                                   : buf_append(out, "0\r\n\r\n", 5);
}

int
http_response(struct buf *out, int status, const char *content_type,
    const void *body, size_t len, int keep_alive)
{
	size_t mark = out->len;
	int rc;

	rc = http_response_head(
	    out, status, content_type, len, keep_alive, NULL, 0);
	if (rc == 0 && (rc = buf_append(out, body, len)) != 0)
		out->len = mark;
	return rc;
}

/* {"error":{"code":..,"message":..}}, malloc'd; NULL when yyjson refuses
 * (no memory, or text that is not UTF-8). */
static char *
error_json(const char *code, const char *message, size_t *len)
{
	yyjson_mut_doc *doc;
	yyjson_mut_val *root, *err;
	char *json = NULL;

	if ((doc = yyjson_mut_doc_new(NULL)) == NULL)
		return NULL;
	if ((root = yyjson_mut_obj(doc)) != NULL &&
	    (err = yyjson_mut_obj_add_obj(doc, root, "error")) != NULL &&
	    yyjson_mut_obj_add_str(doc, err, "code", code) &&
	    yyjson_mut_obj_add_str(doc, err, "message", message)) {
		yyjson_mut_doc_set_root(doc, root);
		json = yyjson_mut_write(doc, YYJSON_WRITE_NOFLAG, len);
	}
	yyjson_mut_doc_free(doc);
	return json;
}

int
http_error(struct buf *out, int status, const char *code, const char *message,
    int keep_alive)
{
	return http_error_hdr(out, status, code, message, keep_alive, NULL, 0);
}

int
http_error_hdr(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, const struct http_header *extra,
    size_t nextra)
{
	char *json;
	size_t len = 0, mark = out->len;
	int rc;

	json = error_json(code != NULL ? code : "error",
	    message != NULL ? message : http_status_text(status), &len);
	if (json == NULL) /* not UTF-8: say less rather than fail */
		json = error_json("error", http_status_text(status), &len);
	if (json == NULL)
		return -ENOMEM;
	rc = http_response_head(
	    out, status, "application/json", len, keep_alive, extra, nextra);
	if (rc == 0 && (rc = buf_append(out, json, len)) != 0)
		out->len = mark;
	free(json);
	/* The status: routes return what this returns (a 0 would read as
	 * "answered later", ROUTE_PENDING). */
	return rc != 0 ? rc : status;
}

/* --- Fitting an answer to its request --- */

enum { FIT_HEAD, FIT_PASS, FIT_DROP };

/* Offset of "\r\n\r\n" in out->data[from, out->len), or out->len. */
static size_t
head_end(const struct buf *out, size_t from)
{
	size_t i;

	for (i = from; i + 4 <= out->len; i++)
		if (memcmp(out->data + i, "\r\n\r\n", 4) == 0)
			return i;
	return out->len;
}

void
http_answer_fit(struct buf *out, size_t from, struct http_fit *f)
{
	size_t end;

	if (from > out->len)
		return;
	if (f->state == FIT_HEAD) {
		if (!f->head) {
			f->state = FIT_PASS;
			return;
		}
		end = head_end(out, from);
		if (end == out->len) /* no head yet */
			return;
		f->state = FIT_DROP;
		from = end + 4;
	}
	if (f->state == FIT_DROP)
		out->len = from;
}
