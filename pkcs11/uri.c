/*
 * pkcs11/uri.c: strict parser for RFC 7512 PKCS#11 URIs.
 *
 * Splits "pkcs11:" path;attributes?query&attributes, percent-decodes each
 * value into the fixed-size fields of struct p11_uri and checks every value
 * against the rules in p11.h. It works in one pass over the text, never
 * reads past its NUL, never writes past a field, and allocates nothing but
 * the pin-value secret.
 *
 * This file must never put the PIN (or any part of it) in an error message,
 * and must never leave a decoded copy of it anywhere but in the secret.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pkcs11/p11.h"

/* Longest pin-value accepted, after decoding. */
#define URI_PIN_MAX 256

/* Returned by uri_decode when the value does not fit; no message yet. */
#define URI_TOOLONG 1

enum uri_part {
	URI_PATH = 1,
	URI_QUERY = 2,
};

enum uri_attr_id {
	A_TOKEN,
	A_MANUF,
	A_SERIAL,
	A_MODEL,
	A_OBJECT,
	A_ID,
	A_TYPE,
	A_SLOT_ID,
	A_LIB_MANUF,
	A_LIB_DESC,
	A_LIB_VER,
	A_SLOT_DESC,
	A_SLOT_MANUF,
	A_MODULE_PATH,
	A_MODULE_NAME,
	A_PIN_SOURCE,
	A_PIN_VALUE,
	A_INIT_ARGS,
	A_COUNT,
	A_VENDOR = A_COUNT, /* an "x-" name we do not know: ignored */
};

struct uri_attr {
	const char *name;
	enum uri_part part;
};

static const struct uri_attr uri_attrs[A_COUNT] = {
	[A_TOKEN] = { "token", URI_PATH },
	[A_MANUF] = { "manufacturer", URI_PATH },
	[A_SERIAL] = { "serial", URI_PATH },
	[A_MODEL] = { "model", URI_PATH },
	[A_OBJECT] = { "object", URI_PATH },
	[A_ID] = { "id", URI_PATH },
	[A_TYPE] = { "type", URI_PATH },
	[A_SLOT_ID] = { "slot-id", URI_PATH },
	[A_LIB_MANUF] = { "library-manufacturer", URI_PATH },
	[A_LIB_DESC] = { "library-description", URI_PATH },
	[A_LIB_VER] = { "library-version", URI_PATH },
	[A_SLOT_DESC] = { "slot-description", URI_PATH },
	[A_SLOT_MANUF] = { "slot-manufacturer", URI_PATH },
	[A_MODULE_PATH] = { "module-path", URI_QUERY },
	[A_MODULE_NAME] = { "module-name", URI_QUERY },
	[A_PIN_SOURCE] = { "pin-source", URI_QUERY },
	[A_PIN_VALUE] = { "pin-value", URI_QUERY },
	[A_INIT_ARGS] = { "x-init-args", URI_QUERY },
};

static const struct {
	const char *name;
	enum p11_obj_type type;
} uri_types[] = {
	{ "public", P11_TYPE_PUBLIC },
	{ "private", P11_TYPE_PRIVATE },
	{ "cert", P11_TYPE_CERT },
	{ "secret-key", P11_TYPE_SECRET_KEY },
	{ "data", P11_TYPE_DATA },
};

/* The attribute being parsed, for messages. */
struct uri_cur {
	const char *name; /* not NUL-terminated */
	int name_len;
	enum uri_attr_id id;
	enum uri_part part;
	size_t vbeg, vend; /* the raw value: text[vbeg, vend) */
};

struct uri_parser {
	const char *text;
	struct p11_uri *out;
	char *err;
	unsigned seen; /* bit per enum uri_attr_id */
};

static void uri_err(struct uri_parser *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
uri_err(struct uri_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err, P11_URI_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* Whether @c may appear unencoded in a value of @part (besides '%'). */
static int
uri_raw_ok(unsigned char c, enum uri_part part)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '-':
	case '.':
	case '_':
	case '~':
	case ':':
	case '[':
	case ']':
	case '@':
	case '!':
	case '$':
	case '\'':
	case '(':
	case ')':
	case '*':
	case '+':
	case ',':
	case '=':
		return 1;
	case '&':
		return part == URI_PATH;
	case '/':
	case '?':
	case '|':
	case ';':
		return part == URI_QUERY;
	default:
		return 0;
	}
}

static int
uri_name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Percent-decode the current value into @dst (at most @cap bytes; @dst NULL
 * only checks it). Text values (@nul_ok 0) may not decode to a NUL byte.
 * Returns 0 with *@lenp set, P11_EURI with a message, or URI_TOOLONG with
 * no message. Nothing of a pin-value's content reaches the message.
 */
static int
uri_decode(struct uri_parser *p, const struct uri_cur *c, unsigned char *dst,
    size_t cap, int nul_ok, size_t *lenp)
{
	const unsigned char *t = (const unsigned char *)p->text;
	int secret = c->id == A_PIN_VALUE;
	size_t i, n = 0;
	unsigned char b;

	for (i = c->vbeg; i < c->vend; i++) {
		b = t[i];
		if (b == '%') {
			if (c->vend - i < 3 ||
			    sr_hex_decode(&b, 1, (const char *)t + i + 1, 2) !=
			        1) {
				uri_err(p,
				    "attribute '%.*s': bad percent-encoding "
				    "at offset %zu",
				    c->name_len, c->name, i);
				return P11_EURI;
			}
			if (b == 0 && !nul_ok) {
				uri_err(p,
				    "attribute '%.*s': NUL byte (%%00) at "
				    "offset %zu",
				    c->name_len, c->name, i);
				return P11_EURI;
			}
			i += 2;
		} else if (!uri_raw_ok(b, c->part)) {
			if (secret)
				uri_err(p,
				    "attribute '%.*s': a character at offset "
				    "%zu must be percent-encoded",
				    c->name_len, c->name, i);
			else if (b > 0x20 && b < 0x7f)
				uri_err(p,
				    "attribute '%.*s': character '%c' at "
				    "offset %zu must be percent-encoded",
				    c->name_len, c->name, b, i);
			else
				uri_err(p,
				    "attribute '%.*s': byte 0x%02x at offset "
				    "%zu must be percent-encoded",
				    c->name_len, c->name, b, i);
			return P11_EURI;
		}
		if (dst != NULL) {
			if (n == cap)
				return URI_TOOLONG;
			dst[n] = b;
		}
		n++;
	}
	*lenp = n;
	return 0;
}

/* Decode a text value into a NUL-terminated field of @size bytes. */
static int
uri_text(
    struct uri_parser *p, const struct uri_cur *c, char *field, size_t size)
{
	size_t len;
	int rc;

	rc = uri_decode(p, c, (unsigned char *)field, size - 1, 0, &len);
	if (rc == URI_TOOLONG) {
		uri_err(p, "attribute '%.*s': longer than %zu bytes",
		    c->name_len, c->name, size - 1);
		return P11_EURI;
	}
	if (rc != 0)
		return rc;
	field[len] = '\0';
	return 0;
}

static int
uri_type(struct uri_parser *p, const struct uri_cur *c)
{
	unsigned char buf[16];
	size_t i, len;
	int rc;

	rc = uri_decode(p, c, buf, sizeof(buf) - 1, 0, &len);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		buf[len] = '\0';
		for (i = 0; i < sizeof(uri_types) / sizeof(uri_types[0]); i++) {
			if (strcmp((char *)buf, uri_types[i].name) == 0) {
				p->out->type = uri_types[i].type;
				return 0;
			}
		}
	}
	uri_err(p,
	    "attribute 'type': unknown object type (want public, "
	    "private, cert, secret-key or data)");
	return P11_EURI;
}

static int
uri_slot_id(struct uri_parser *p, const struct uri_cur *c)
{
	unsigned char buf[32];
	unsigned long v = 0, d;
	size_t i, len;
	int rc;

	rc = uri_decode(p, c, buf, sizeof(buf), 0, &len);
	if (rc == URI_TOOLONG) {
		/* Judge by the raw text: all digits is a number too big. */
		for (i = c->vbeg; i < c->vend; i++)
			if (p->text[i] < '0' || p->text[i] > '9')
				break;
		uri_err(p, "attribute 'slot-id': %s",
		    i == c->vend ? "out of range" : "not a decimal number");
		return P11_EURI;
	}
	if (rc != 0)
		return rc;
	for (i = 0; i < len; i++) {
		if (buf[i] < '0' || buf[i] > '9') {
			uri_err(p, "attribute 'slot-id': not a decimal number");
			return P11_EURI;
		}
	}
	for (i = 0; i < len; i++) {
		d = (unsigned long)(buf[i] - '0');
		if (v > (ULONG_MAX - d) / 10) {
			uri_err(p, "attribute 'slot-id': out of range");
			return P11_EURI;
		}
		v = v * 10 + d;
	}
	p->out->slot_id = v;
	p->out->has_slot_id = 1;
	return 0;
}

static int
uri_pin_value(struct uri_parser *p, const struct uri_cur *c)
{
	unsigned char pin[URI_PIN_MAX];
	size_t len = 0;
	int rc;

	rc = uri_decode(p, c, pin, sizeof(pin), 0, &len);
	if (rc == URI_TOOLONG) {
		uri_err(p, "attribute 'pin-value': longer than %d bytes",
		    URI_PIN_MAX);
		rc = P11_EURI;
	}
	if (rc == 0 && sr_secret_set(&p->out->pin_value, pin, len) != 0) {
		uri_err(p, "attribute 'pin-value': out of memory");
		rc = -ENOMEM;
	}
	sr_wipe(pin, sizeof(pin));
	return rc;
}

/* Check and store the value of a known (or vendor) attribute. */
static int
uri_value(struct uri_parser *p, const struct uri_cur *c)
{
	struct p11_uri *o = p->out;
	size_t len;
	int rc;

	switch (c->id) {
	case A_TOKEN:
		return uri_text(p, c, o->token, sizeof(o->token));
	case A_MANUF:
		return uri_text(p, c, o->manufacturer, sizeof(o->manufacturer));
	case A_SERIAL:
		return uri_text(p, c, o->serial, sizeof(o->serial));
	case A_MODEL:
		return uri_text(p, c, o->model, sizeof(o->model));
	case A_OBJECT:
		return uri_text(p, c, o->object, sizeof(o->object));
	case A_ID:
		rc = uri_decode(p, c, o->id, sizeof(o->id), 1, &o->id_len);
		if (rc == URI_TOOLONG) {
			uri_err(p, "attribute 'id': longer than %d bytes",
			    P11_URI_ID_MAX);
			return P11_EURI;
		}
		if (rc == 0)
			o->has_id = 1;
		return rc;
	case A_TYPE:
		return uri_type(p, c);
	case A_SLOT_ID:
		return uri_slot_id(p, c);
	case A_MODULE_PATH:
		rc = uri_text(p, c, o->module_path, sizeof(o->module_path));
		if (rc == 0 && o->module_path[0] != '/') {
			uri_err(p,
			    "attribute 'module-path': not an absolute "
			    "path");
			return P11_EURI;
		}
		return rc;
	case A_MODULE_NAME:
		return uri_text(p, c, o->module_name, sizeof(o->module_name));
	case A_PIN_SOURCE:
		rc = uri_text(p, c, o->pin_source, sizeof(o->pin_source));
		if (rc == 0 && o->pin_source[0] != '/' &&
		    strncmp(o->pin_source, "file:/", 6) != 0) {
			uri_err(p,
			    "attribute 'pin-source': not an absolute "
			    "path or file:/ URI");
			return P11_EURI;
		}
		return rc;
	case A_PIN_VALUE:
		return uri_pin_value(p, c);
	case A_INIT_ARGS:
		return uri_text(p, c, o->init_args, sizeof(o->init_args));
	default:
		/* library-*, slot-description, slot-manufacturer, x-*:
		 * checked for well-formedness, then ignored. */
		return uri_decode(p, c, NULL, 0, 0, &len);
	}
}

/* Parse one "name=value" in text[beg, end) of @part. */
static int
uri_attr(struct uri_parser *p, size_t beg, size_t end, enum uri_part part)
{
	struct uri_cur c;
	size_t eq;
	int k;

	for (eq = beg; eq < end && p->text[eq] != '='; eq++)
		if (!uri_name_char_ok((unsigned char)p->text[eq])) {
			uri_err(p,
			    "bad character in attribute name at "
			    "offset %zu",
			    eq);
			return P11_EURI;
		}
	if (eq == beg) {
		uri_err(p, "empty attribute name at offset %zu", beg);
		return P11_EURI;
	}
	if (eq == end) {
		/* The name is not printed: it may be a stray value. */
		uri_err(p, "attribute at offset %zu has no '='", beg);
		return P11_EURI;
	}
	c.name = p->text + beg;
	c.name_len = eq - beg > 64 ? 64 : (int)(eq - beg);
	c.part = part;
	c.vbeg = eq + 1;
	c.vend = end;
	c.id = A_VENDOR;
	for (k = 0; k < A_COUNT; k++) {
		if (strlen(uri_attrs[k].name) == eq - beg &&
		    memcmp(uri_attrs[k].name, c.name, eq - beg) == 0) {
			c.id = (enum uri_attr_id)k;
			break;
		}
	}
	if (c.id == A_VENDOR) {
		if (eq - beg < 3 || c.name[0] != 'x' || c.name[1] != '-') {
			uri_err(
			    p, "unknown attribute '%.*s'", c.name_len, c.name);
			return P11_EURI;
		}
	} else {
		if (uri_attrs[c.id].part != part) {
			uri_err(p,
			    "attribute '%s' belongs in the %s, not the "
			    "%s",
			    uri_attrs[c.id].name,
			    part == URI_PATH ? "query" : "path",
			    part == URI_PATH ? "path" : "query");
			return P11_EURI;
		}
		if (p->seen & (1u << c.id)) {
			uri_err(p, "attribute '%s' given twice",
			    uri_attrs[c.id].name);
			return P11_EURI;
		}
		p->seen |= 1u << c.id;
		if ((p->seen & (1u << A_PIN_SOURCE)) &&
		    (p->seen & (1u << A_PIN_VALUE))) {
			uri_err(p,
			    "attributes 'pin-source' and 'pin-value' "
			    "are mutually exclusive");
			return P11_EURI;
		}
	}
	if (c.vbeg == c.vend) {
		uri_err(p, "attribute '%.*s': empty value", c.name_len, c.name);
		return P11_EURI;
	}
	return uri_value(p, &c);
}

/* Parse the attributes of one part, text[beg, end), split by @sep. */
static int
uri_parse_part(struct uri_parser *p, size_t beg, size_t end, enum uri_part part)
{
	char sep = part == URI_PATH ? ';' : '&';
	size_t s = beg, e;
	int rc;

	for (;;) {
		for (e = s; e < end && p->text[e] != sep; e++)
			;
		if (e == s) {
			uri_err(p, "empty attribute at offset %zu", s);
			return P11_EURI;
		}
		rc = uri_attr(p, s, e, part);
		if (rc != 0)
			return rc;
		if (e == end)
			return 0;
		s = e + 1;
	}
}

static int
uri_parse(struct uri_parser *p)
{
	static const char scheme[] = "pkcs11:";
	const char *t = p->text;
	size_t i, len, q;

	if (t == NULL) {
		uri_err(p, "missing 'pkcs11:' scheme");
		return P11_EURI;
	}
	/* Stops at the NUL: it never matches a scheme character. */
	for (i = 0; i < sizeof(scheme) - 1; i++) {
		char ch = t[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != scheme[i]) {
			uri_err(p, "missing 'pkcs11:' scheme");
			return P11_EURI;
		}
	}
	len = strlen(t);
	for (q = i; q < len && t[q] != '?'; q++)
		;
	if (q > i) {
		int rc = uri_parse_part(p, i, q, URI_PATH);

		if (rc != 0)
			return rc;
	}
	if (q < len)
		return uri_parse_part(p, q + 1, len, URI_QUERY);
	return 0;
}

int
p11_uri_parse(const char *text, struct p11_uri *out, char err[P11_URI_ERR_MAX])
{
	struct uri_parser p;
	int rc;

	if (err != NULL)
		err[0] = '\0';
	if (out == NULL) {
		if (err != NULL)
			snprintf(err, P11_URI_ERR_MAX, "no output given");
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	p.text = text;
	p.out = out;
	p.err = err;
	p.seen = 0;
	rc = uri_parse(&p);
	if (rc != 0)
		p11_uri_clear(out);
	return rc;
}

void
p11_uri_clear(struct p11_uri *uri)
{
	if (uri == NULL)
		return;
	sr_secret_free(&uri->pin_value);
	memset(uri, 0, sizeof(*uri));
}
