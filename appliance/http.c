/*
 * appliance/http.c: the HTTP/1.1 request parser.
 *
 * The parser drives llhttp (HTTP_REQUEST, strict: no lenient flag is ever
 * set), copies the target and header names and values, NUL-terminated, into
 * a per-connection arena and de-chunks the body. It enforces the limits of
 * struct http_limits and the rules llhttp leaves to its user (HTTP/1.0 and
 * 1.1 only, one Host, one Content-Length, Transfer-Encoding exactly
 * "chunked", one each of Authorization, Cookie, Content-Type and
 * X-CSRF-Token, no control bytes), reads the Connection field's tokens
 * itself to decide keep-alive, and pauses llhttp at the end of each request
 * so pipelined bytes stay with the caller. It routes an absolute-form
 * target ("https://host/p?q") on its path and query, remembers whether the
 * request is a HEAD (its answer goes without a body) and whether it owes
 * the client a 100 Continue. The response writer is http_response.c.
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

#include "appliance/http_impl.h"
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
	unsigned single; /* bit i: single_fields[i] seen */
	int proto_checked, version_done, headers_done, complete, keep_alive;
	int head;   /* the method is HEAD: the answer is its head only */
	int expect; /* 1: owes a 100 Continue; 2: sent or not owed */
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
int
http_ci_equal(const char *a, size_t alen, const char *b)
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

int
http_is_tchar(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field value bytes: VCHAR, obs-text, SP or HTAB. */
int
http_value_ok(const char *v, size_t len)
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

	p->m.head = ll->method == HTTP_HEAD; /* the method is known now */
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
	if (!http_value_ok(at, len))
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

/* Fields beyond framing that may appear once: with two, a proxy in front
 * and this daemon could each read a different one (which credential
 * authenticates, which CSRF token, which type the body is), and the
 * readers (http_header_get) would see only the first. */
static const char *const single_fields[] = { "authorization", "cookie",
	"content-type", "x-csrf-token" };

/* The headers that decide framing, routing and who is asking; each must
 * be unique. */
static int
check_special(struct http_parser *p, const struct hslot *s)
{
	const char *name = (const char *)p->arena.data + s->name;
	const char *v = (const char *)p->arena.data + s->value;
	size_t i;

	for (i = 0; i < sizeof(single_fields) / sizeof(single_fields[0]); i++)
		if (http_ci_equal(name, s->name_len, single_fields[i])) {
			if (p->m.single & (1u << i))
				return refuse(p, 400);
			p->m.single |= 1u << i;
			return 0;
		}

	if (http_ci_equal(name, s->name_len, "host")) {
		if (++p->m.nhost > 1)
			return refuse(p, 400);
		for (i = 0; i < s->value_len; i++) /* uri-host [":" port] */
			if (!is_alnum(v[i]) &&
			    !strchr("-._~!$&'()*+,;=%:[]", v[i]))
				return refuse(p, 400);
	} else if (http_ci_equal(name, s->name_len, "content-length")) {
		if (++p->m.ncl > 1 || s->value_len == 0)
			return refuse(p, 400);
		for (i = 0; i < s->value_len; i++)
			if (v[i] < '0' || v[i] > '9')
				return refuse(p, 400);
	} else if (http_ci_equal(name, s->name_len, "transfer-encoding")) {
		if (++p->m.nte > 1 ||
		    !http_ci_equal(v, s->value_len, "chunked"))
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

/* Whether the request carries "Expect: 100-continue". */
static int
expects_continue(const struct http_parser *p)
{
	const struct hslot *s;
	size_t i;

	for (i = 0; i < p->m.nslots; i++) {
		s = &p->slots[i];
		if (http_ci_equal((const char *)p->arena.data + s->name,
		        s->name_len, "expect") &&
		    http_ci_equal((const char *)p->arena.data + s->value,
		        s->value_len, "100-continue"))
			return 1;
	}
	return 0;
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
	/* Expect: 100-continue on HTTP/1.1 with a body to come: the client
	 * waits for a 100 before it sends the body (http_parser_continue). */
	if (ll->http_minor == 1 && expects_continue(p) &&
	    ((ll->flags & F_CHUNKED) ||
	        ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > 0)))
		p->m.expect = 1;
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

/* Whether a Connection field holds @p token: each value is a list of
 * tokens, compared without case, with OWS around each element (RFC 9110
 * 5.6.1 and 7.6.1). llhttp's own flags miss "close" followed by a tab. */
static int
connection_has(const struct http_parser *p, const char *token)
{
	const char *v;
	size_t i, j, b, e;

	for (i = 0; i < p->m.nslots; i++) {
		if (!http_ci_equal(
		        (const char *)p->arena.data + p->slots[i].name,
		        p->slots[i].name_len, "connection"))
			continue;
		v = (const char *)p->arena.data + p->slots[i].value;
		for (j = 0; j < p->slots[i].value_len; j++) {
			b = j;
			while (j < p->slots[i].value_len && v[j] != ',')
				j++;
			e = j;
			while (b < e && (v[b] == ' ' || v[b] == '\t'))
				b++;
			while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
				e--;
			if (e > b && http_ci_equal(v + b, e - b, token))
				return 1;
		}
	}
	return 0;
}

static int
on_message_complete(llhttp_t *ll)
{
	struct http_parser *p = ll->data;
	int ka;

	p->m.complete = 1;
	/* HTTP/1.1 persists unless "close"; HTTP/1.0 only with
	 * "keep-alive" and no "close" (RFC 9112 9.3). */
	ka = !connection_has(p, "close") &&
	    (ll->http_minor == 1 || connection_has(p, "keep-alive"));
	/* llhttp decides from these flags whether it reads on after this
	 * message: make them say what was decided here. */
	ll->flags &= ~(F_CONNECTION_CLOSE | F_CONNECTION_KEEP_ALIVE);
	ll->flags |= ka ? F_CONNECTION_KEEP_ALIVE : F_CONNECTION_CLOSE;
	p->m.keep_alive = ka;
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
	/* Headers hold credentials (Authorization, Cookie) and bodies
	 * passwords and client secrets: none is left in freed memory. */
	p->arena.wipe = p->body.wipe = 1;
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
		return at != NULL && at < end && http_is_tchar(*at) ? 501 : 400;
	case HPE_INVALID_VERSION: /* "HTTP/3.0", not "HTTP/1.x" */
		return !p->m.version_done && p->m.ver_len == 3 ? 505 : 400;
	default:
		return 400;
	}
}

/* Where the path begins in an absolute-form target ("https://host/p?q",
 * RFC 9112 3.2.2: routed on its path and query); 0 for origin-form. */
static size_t
origin_start(const char *t, size_t n)
{
	size_t i;

	if (n >= 7 && http_ci_equal(t, 7, "http://"))
		i = 7;
	else if (n >= 8 && http_ci_equal(t, 8, "https://"))
		i = 8;
	else
		return 0;
	while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
		i++;
	return i;
}

/* The request is whole: resolve the arena offsets into pointers. */
static int
finish(struct http_parser *p)
{
	struct http_request *r = &p->req;
	size_t i, path_off = 0, path_len, tlen = p->m.target_len, o, pe;
	const uint8_t *q;
	char *a;

	/* The target is the arena's first item; the path is a copy of its
	 * own when the target has a query or an authority before it. */
	o = origin_start((const char *)p->arena.data, tlen);
	q = memchr(p->arena.data + o, '?', tlen - o);
	pe = q != NULL ? (size_t)(q - p->arena.data) : tlen;
	path_len = pe - o;
	if (o != 0 || q != NULL) {
		if (buf_reserve(&p->arena, path_len + 2) != 0)
			return -ENOMEM;
		path_off = p->arena.len;
		if (path_len == 0) /* "http://host": the root */
			p->arena.data[path_off + path_len++] = '/';
		else
			memcpy(p->arena.data + path_off, p->arena.data + o,
			    path_len);
		p->arena.data[path_off + path_len] = '\0';
		p->arena.len += path_len + 1;
	}
	a = (char *)p->arena.data;
	r->method = llhttp_method_name((llhttp_method_t)p->ll.method);
	r->target = a;
	r->path = a + path_off;
	r->query = q != NULL ? a + pe + 1 : a + tlen;
	r->head = p->m.head;
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
	buf_clear(&p->arena);
	if (p->body.cap > BODY_KEEP_MAX)
		buf_free(&p->body);
	buf_clear(&p->body);
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

int
http_parser_is_head(const struct http_parser *p)
{
	return p->m.head;
}

int
http_parser_continue(struct http_parser *p)
{
	if (p->m.expect != 1 || p->m.complete || p->failed)
		return 0;
	p->m.expect = 2;
	return 1;
}

const char *
http_header_get(const struct http_request *r, const char *name)
{
	size_t i;

	for (i = 0; r != NULL && name != NULL && i < r->nheaders; i++)
		if (http_ci_equal(
		        r->headers[i].name, r->headers[i].name_len, name))
			return r->headers[i].value;
	return NULL;
}
