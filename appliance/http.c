/*
 * appliance/http.c: the HTTP/1.1 request parser and the response writer.
 *
 * The parser drives llhttp (HTTP_REQUEST, strict: no lenient flag is ever
 * set), copies the target and header names and values, NUL-terminated, into
 * a per-connection arena and de-chunks the body. It enforces the limits of
 * struct http_limits and the rules llhttp leaves to its user (HTTP/1.0 and
 * 1.1 only, one Host, one Content-Length, Transfer-Encoding exactly
 * "chunked", no control bytes), and pauses llhttp at the end of each request
 * so pipelined bytes stay with the caller. The writer adds the security
 * headers of internal.h to every response and builds JSON errors with yyjson.
 *
 * This file must never accept an ambiguous message framing (anything two
 * servers could read as different requests is refused), never read past
 * the bytes handed in, and never echo a request's bytes into a response
 * header.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>
#include <yyjson.h>

#include "appliance/internal.h"

#define CHUNK_EXT_MAX 1024  /* chunk-extension bytes per message */
#define BODY_KEEP_MAX 65536 /* body capacity kept between requests */
#define FRAMING_SLACK 65536 /* chunk lines and trailers, beyond 2x body */

/* A header while parsing: offsets, as the arena may move when it grows. */
struct hslot {
	size_t name, name_len, value, value_len;
};

/* What the current request has shown so far; zeroed between requests. */
struct http_msg {
	size_t span;       /* arena offset where the current item began */
	size_t target_len; /* bytes of the target */
	size_t head_bytes; /* request line and headers read so far */
	size_t wire_bytes; /* bytes of this message read so far */
	size_t ext_bytes;  /* chunk-extension bytes */
	size_t ver_len;    /* bytes of the version ("1.1") */
	size_t nslots;     /* headers */
	unsigned ntrailers, nhost, ncl, nte;
	int proto_checked, version_done, headers_done, complete, keep_alive;
	int status; /* set by a callback that refuses the request */
};

struct http_parser {
	llhttp_t ll;
	struct http_limits lim;
	size_t wire_cap;          /* bytes one framed message may take */
	struct buf arena;         /* target, names, values, path; with NULs */
	struct buf body;          /* the de-chunked body */
	struct hslot *slots;      /* per header, offsets; one allocation with */
	struct http_header *hdrs; /* the same as pointers, once complete */
	size_t capslots;
	int failed;          /* sticky: the status of the HTTP_ERROR */
	const uint8_t *base; /* start of the bytes llhttp is reading now */
	uint8_t tail[8];     /* the last bytes it read before those */
	struct http_msg m;
	struct http_request req;
};

/* --- Character classes, without the locale --- */

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* @p a (@p alen bytes) equals the NUL-terminated @p b, ignoring case. */
static int
ci_equal(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++)
		if (b[i] == '\0' ||
		    lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return b[alen] == '\0';
}

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
is_tchar(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field value bytes: VCHAR, obs-text, SP or HTAB. */
static int
value_ok(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < ' ' ? v[i] != '\t' : v[i] == 0x7f)
			return 0;
	return 1;
}

/* --- llhttp callbacks --- */

/* Refuse the request with @p status; the first reason given wins. */
static int
refuse(struct http_parser *p, int status)
{
	if (p->m.status == 0)
		p->m.status = status;
	return HPE_USER;
}

static int
stash(struct http_parser *p, const char *at, size_t len)
{
	return buf_append(&p->arena, at, len) == 0 ? 0 : refuse(p, 503);
}

/* End the arena item that began at m.span with a NUL: where, how long. */
static int
seal(struct http_parser *p, size_t *off, size_t *len)
{
	*off = p->m.span;
	*len = p->arena.len - p->m.span;
	if (buf_append(&p->arena, "", 1) != 0)
		return refuse(p, 503);
	p->m.span = p->arena.len;
	return 0;
}

static int
on_url(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = ll->data;
	size_t i;

	if (len > p->lim.max_url_bytes - p->m.target_len)
		return refuse(p, 414);
	for (i = 0; i < len; i++) /* no control byte belongs in a target */
		if ((unsigned char)at[i] <= ' ' || at[i] == 0x7f)
			return refuse(p, 400);
	p->m.target_len += len;
	return stash(p, at, len);
}

static int
on_url_complete(llhttp_t *ll)
{
	size_t off, len;

	return seal(ll->data, &off, &len);
}

/*
 * llhttp 9.2 also takes "RTSP/x.y" in a request line and has no callback
 * for the protocol name: look at the five bytes before the version, in the
 * current buffer or in the tail kept from the previous ones.
 */
static int
on_version(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = ll->data;
	size_t k = (size_t)((const uint8_t *)at - p->base), need;
	uint8_t proto[5];

	if (!p->m.proto_checked) {
		p->m.proto_checked = 1;
		need = k >= sizeof(proto) ? 0 : sizeof(proto) - k;
		memcpy(proto, p->tail + sizeof(p->tail) - need, need);
		memcpy(proto + need, at - (sizeof(proto) - need),
		    sizeof(proto) - need);
		if (memcmp(proto, "HTTP/", sizeof(proto)) != 0)
			return refuse(p, 400);
	}
	p->m.ver_len += len;
	return 0;
}

static int
on_version_complete(llhttp_t *ll)
{
	struct http_parser *p = ll->data;

	p->m.version_done = 1;
	return ll->http_major != 1 || ll->http_minor > 1 ? refuse(p, 505) : 0;
}

/* Header names and values; trailers are checked, counted and dropped. */
static int
on_field_data(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = ll->data;

	/* Strict llhttp stops NUL, bare CR and bare LF; DEL gets here. */
	if (!value_ok(at, len))
		return refuse(p, 400);
	return p->m.headers_done ? 0 : stash(p, at, len);
}

static int
on_header_field_complete(llhttp_t *ll)
{
	struct http_parser *p = ll->data;
	struct hslot *s;
	size_t cap;

	if (p->m.headers_done)
		return ++p->m.ntrailers > p->lim.max_headers ? refuse(p, 431)
		                                             : 0;
	if (p->m.nslots >= p->lim.max_headers)
		return refuse(p, 431);
	if (p->m.nslots == p->capslots) { /* slots and hdrs in one block */
		cap = p->capslots ? p->capslots * 2 : 16;
		cap = cap < p->lim.max_headers ? cap : p->lim.max_headers;
		s = realloc(p->slots, cap * (sizeof(*s) + sizeof(*p->hdrs)));
		if (s == NULL)
			return refuse(p, 503);
		p->slots = s;
		p->hdrs = (struct http_header *)(void *)(s + cap);
		p->capslots = cap;
	}
	s = &p->slots[p->m.nslots++];
	memset(s, 0, sizeof(*s));
	if (seal(p, &s->name, &s->name_len) != 0)
		return HPE_USER;
	return s->name_len == 0 ? refuse(p, 400) : 0;
}

/* The headers that decide framing and routing; each must be unique. */
static int
check_special(struct http_parser *p, const struct hslot *s)
{
	const char *name = (const char *)p->arena.data + s->name;
	const char *v = (const char *)p->arena.data + s->value;
	size_t i;

	if (ci_equal(name, s->name_len, "host")) {
		if (++p->m.nhost > 1)
			return refuse(p, 400);
		for (i = 0; i < s->value_len; i++) /* uri-host [":" port] */
			if (!is_alnum(v[i]) &&
			    !strchr("-._~!$&'()*+,;=%:[]", v[i]))
				return refuse(p, 400);
	} else if (ci_equal(name, s->name_len, "content-length")) {
		if (++p->m.ncl > 1 || s->value_len == 0)
			return refuse(p, 400);
		for (i = 0; i < s->value_len; i++)
			if (v[i] < '0' || v[i] > '9')
				return refuse(p, 400);
	} else if (ci_equal(name, s->name_len, "transfer-encoding")) {
		if (++p->m.nte > 1 || !ci_equal(v, s->value_len, "chunked"))
			return refuse(p, 400);
	}
	return 0;
}

static int
on_header_value_complete(llhttp_t *ll)
{
	struct http_parser *p = ll->data;
	struct hslot *s;

	if (p->m.headers_done)
		return 0;
	s = &p->slots[p->m.nslots - 1];
	/* llhttp drops leading OWS but keeps trailing OWS in the value. */
	while (p->arena.len > p->m.span &&
	    (p->arena.data[p->arena.len - 1] == ' ' ||
	        p->arena.data[p->arena.len - 1] == '\t'))
		p->arena.len--;
	if (seal(p, &s->value, &s->value_len) != 0)
		return HPE_USER;
	return check_special(p, s);
}

static int
on_headers_complete(llhttp_t *ll)
{
	struct http_parser *p = ll->data;
	const struct http_msg *m = &p->m;

	/* No version: an HTTP/0.9 request line. */
	if (!m->version_done || (m->ncl != 0 && m->nte != 0) ||
	    (m->nte != 0 && ll->http_minor == 0) ||
	    (ll->http_minor == 1 && m->nhost == 0) ||
	    !(ll->flags & F_CHUNKED) != (m->nte == 0) ||
	    !(ll->flags & F_CONTENT_LENGTH) != (m->ncl == 0))
		return refuse(p, 400);
	if (ll->method == HTTP_CONNECT)
		return refuse(p, 501);
	if ((ll->flags & F_CONTENT_LENGTH) &&
	    ll->content_length > p->lim.max_body_bytes)
		return refuse(p, 413);
	/* Upgrade: is only offered; answer the request itself in HTTP/1.1
	 * rather than let llhttp stop with HPE_PAUSED_UPGRADE. */
	ll->upgrade = 0;
	p->m.headers_done = 1;
	return 0;
}

static int
on_chunk_header(llhttp_t *ll)
{
	struct http_parser *p = ll->data;

	if (ll->content_length > p->lim.max_body_bytes - p->body.len)
		return refuse(p, 413);
	return 0;
}

static int
on_chunk_extension(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = ll->data;

	(void)at;
	if (len > CHUNK_EXT_MAX - p->m.ext_bytes)
		return refuse(p, 400);
	p->m.ext_bytes += len;
	return 0;
}

static int
on_body(llhttp_t *ll, const char *at, size_t len)
{
	struct http_parser *p = ll->data;

	if (len > p->lim.max_body_bytes - p->body.len)
		return refuse(p, 413);
	return buf_append(&p->body, at, len) == 0 ? 0 : refuse(p, 503);
}

static int
on_message_complete(llhttp_t *ll)
{
	struct http_parser *p = ll->data;

	p->m.complete = 1;
	p->m.keep_alive = llhttp_should_keep_alive(ll);
	return HPE_PAUSED; /* hand this request over before the next one */
}

static const llhttp_settings_t settings = {
	.on_url = on_url,
	.on_url_complete = on_url_complete,
	.on_version = on_version,
	.on_version_complete = on_version_complete,
	.on_header_field = on_field_data,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_field_data,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_chunk_header = on_chunk_header,
	.on_chunk_extension_name = on_chunk_extension,
	.on_chunk_extension_value = on_chunk_extension,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* --- The parser --- */

int
http_parser_new(const struct http_limits *lim, struct http_parser **out)
{
	struct http_parser *p;

	if (lim == NULL || out == NULL ||
	    lim->max_header_bytes > SIZE_MAX / 4 ||
	    lim->max_body_bytes > SIZE_MAX / 4)
		return -EINVAL;
	if ((*out = p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->lim = *lim;
	/* Chunk-size lines and trailers may not outweigh the body much. */
	p->wire_cap =
	    lim->max_header_bytes + 2 * lim->max_body_bytes + FRAMING_SLACK;
	llhttp_init(&p->ll, HTTP_REQUEST, &settings);
	p->ll.data = p;
	return 0;
}

void
http_parser_free(struct http_parser *p)
{
	if (p == NULL)
		return;
	buf_free(&p->arena);
	buf_free(&p->body);
	free(p->slots);
	free(p);
}

/* Keep the last bytes llhttp consumed, for on_version(). */
static void
keep_tail(struct http_parser *p, const uint8_t *d, size_t n)
{
	size_t k = n < sizeof(p->tail) ? n : sizeof(p->tail);

	memmove(p->tail, p->tail + k, sizeof(p->tail) - k);
	memcpy(p->tail + sizeof(p->tail) - k, d + n - k, k);
}

/* The status for an llhttp error; @p at: the offending byte if < @p end. */
static int
error_status(const struct http_parser *p, llhttp_errno_t err, const uint8_t *at,
    const uint8_t *end)
{
	if (p->m.status != 0)
		return p->m.status;
	switch (err) {
	case HPE_INVALID_METHOD:
		/* A token llhttp does not know is a method we do not
		 * implement; anything else is not a request line at all. */
		return at != NULL && at < end && is_tchar(*at) ? 501 : 400;
	case HPE_INVALID_VERSION: /* "HTTP/3.0", not "HTTP/1.x" */
		return !p->m.version_done && p->m.ver_len == 3 ? 505 : 400;
	default:
		return 400;
	}
}

/* The request is whole: resolve the arena offsets into pointers. */
static int
finish(struct http_parser *p)
{
	struct http_request *r = &p->req;
	size_t i, path_off = 0, path_len = p->m.target_len;
	const uint8_t *q;
	char *a;

	/* The target is the arena's first item. */
	if ((q = memchr(p->arena.data, '?', p->m.target_len)) != NULL) {
		path_len = (size_t)(q - p->arena.data);
		if (buf_reserve(&p->arena, path_len + 1) != 0)
			return -ENOMEM;
		path_off = p->arena.len;
		memcpy(p->arena.data + path_off, p->arena.data, path_len);
		p->arena.data[path_off + path_len] = '\0';
		p->arena.len += path_len + 1;
	}
	a = (char *)p->arena.data;
	r->method = llhttp_method_name((llhttp_method_t)p->ll.method);
	r->target = a;
	r->path = a + path_off;
	r->query = q != NULL ? a + path_len + 1 : a + p->m.target_len;
	r->version_minor = p->ll.http_minor;
	r->keep_alive = p->m.keep_alive;
	for (i = 0; i < p->m.nslots; i++) {
		p->hdrs[i].name = a + p->slots[i].name;
		p->hdrs[i].name_len = p->slots[i].name_len;
		p->hdrs[i].value = a + p->slots[i].value;
		p->hdrs[i].value_len = p->slots[i].value_len;
	}
	r->headers = p->m.nslots != 0 ? p->hdrs : NULL;
	r->nheaders = p->m.nslots;
	r->body = p->body.len != 0 ? p->body.data : (const uint8_t *)"";
	r->body_len = p->body.len;
	return 0;
}

static int
fail(struct http_parser *p, int status, int *out)
{
	*out = p->failed = status;
	return HTTP_ERROR;
}

int
http_parser_feed(struct http_parser *p, const uint8_t *data, size_t len,
    size_t *consumed, struct http_request **req, int *status)
{
	struct http_msg *m = &p->m;
	const uint8_t *at;
	llhttp_errno_t err;
	size_t off = 0, n;

	*consumed = 0;
	*req = NULL;
	*status = 0;
	if (p->failed)
		return fail(p, p->failed, status);
	if (m->complete) {
		*req = &p->req;
		return HTTP_READY;
	}
	while (off < len) {
		n = len - off;
		/* Never hand llhttp a head longer than the limit. */
		if (!m->headers_done &&
		    n > p->lim.max_header_bytes - m->head_bytes)
			n = p->lim.max_header_bytes - m->head_bytes;
		p->base = data + off;
		err = llhttp_execute(&p->ll, (const char *)data + off, n);
		at = (const uint8_t *)llhttp_get_error_pos(&p->ll);
		if (err == HPE_PAUSED && m->complete) {
			n = (size_t)(at - (data + off)); /* where it ended */
		} else if (err != HPE_OK) {
			*consumed = off;
			return fail(p, error_status(p, err, at, data + off + n),
			    status);
		}
		keep_tail(p, data + off, n);
		if (!m->headers_done)
			m->head_bytes += n;
		m->wire_bytes += n;
		*consumed = off += n;
		if (m->complete) {
			if (finish(p) != 0)
				return fail(p, 503, status);
			*req = &p->req;
			return HTTP_READY;
		}
		if (!m->headers_done &&
		    m->head_bytes >= p->lim.max_header_bytes)
			return fail(p, 431, status);
		if (m->wire_bytes > p->wire_cap)
			return fail(p, 413, status);
	}
	return HTTP_MORE;
}

void
http_parser_next(struct http_parser *p)
{
	if (!p->m.complete || p->failed)
		return;
	llhttp_resume(&p->ll);
	p->arena.len = 0;
	if (p->body.cap > BODY_KEEP_MAX)
		buf_free(&p->body);
	p->body.len = 0;
	memset(&p->m, 0, sizeof(p->m));
	memset(&p->req, 0, sizeof(p->req));
}

int
http_parser_idle(const struct http_parser *p)
{
	return p->m.wire_bytes == 0;
}

int
http_parser_head_done(const struct http_parser *p)
{
	return p->m.headers_done;
}

const char *
http_header_get(const struct http_request *r, const char *name)
{
	size_t i;

	for (i = 0; r != NULL && name != NULL && i < r->nheaders; i++)
		if (ci_equal(r->headers[i].name, r->headers[i].name_len, name))
			return r->headers[i].value;
	return NULL;
}

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
	if (nl == 0 || nl > 256 || ci_equal(h->name, nl, "content-length") ||
	    ci_equal(h->name, nl, "transfer-encoding") ||
	    ci_equal(h->name, nl, "connection"))
		return 0;
	for (i = 0; i < nl; i++)
		if (!is_tchar((unsigned char)h->name[i]))
			return 0;
	return field_len(h->value, h->value_len) <= 65536 &&
	    value_ok(h->value, field_len(h->value, h->value_len));
}

static int
overridden(const char *name, const struct http_header *extra, size_t nextra)
{
	size_t i;

	for (i = 0; i < nextra; i++)
		if (ci_equal(extra[i].name,
		        field_len(extra[i].name, extra[i].name_len), name))
			return 1;
	return 0;
}

static int
write_head(struct buf *out, int status, const char *content_type,
    size_t content_length, int keep_alive, const struct http_header *extra,
    size_t nextra)
{
	int rc, nobody = status < 200 || status == 204 || status == 304;
	int chunked = content_length == HTTP_CHUNKED;
	char cl[32];
	const char *framing = nobody ? NULL : chunked ? "chunked" : cl;
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
	size_t i;

	snprintf(cl, sizeof(cl), "%zu", content_length);
	rc = buf_printf(
	    out, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
	for (i = 0; rc == 0 && i < sizeof(h) / sizeof(h[0]); i++)
		if (h[i].value != NULL &&
		    (h[i].fixed || !overridden(h[i].name, extra, nextra)))
			rc = buf_printf(
			    out, "%s: %s\r\n", h[i].name, h[i].value);
	for (i = 0; rc == 0 && i < nextra; i++) /* lengths checked */
		rc = buf_printf(out, "%.*s: %.*s\r\n",
		    (int)field_len(extra[i].name, extra[i].name_len),
		    extra[i].name,
		    (int)field_len(extra[i].value, extra[i].value_len),
		    extra[i].value);
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
	    (content_type != NULL &&
	        !value_ok(content_type, strlen(content_type))))
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

int
http_response_chunk(struct buf *out, const void *data, size_t len)
{
	size_t mark = out->len;
	int rc;

	if (len == 0)
		return 0;
	if ((rc = buf_printf(out, "%zx\r\n", len)) != 0 ||
	    (rc = buf_append(out, data, len)) != 0 ||
	    (rc = buf_append(out, "\r\n", 2)) != 0)
		out->len = mark;
	return rc;
}

int
http_response_chunk_end(struct buf *out)
{
	return buf_append(out, "0\r\n\r\n", 5);
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
	char *json;
	size_t len = 0;
	int rc;

	json = error_json(code != NULL ? code : "error",
	    message != NULL ? message : http_status_text(status), &len);
	if (json == NULL) /* not UTF-8: say less rather than fail */
		json = error_json("error", http_status_text(status), &len);
	if (json == NULL)
		return -ENOMEM;
	rc = http_response(
	    out, status, "application/json", json, len, keep_alive);
	free(json);
	return rc;
}
