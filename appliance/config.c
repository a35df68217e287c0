/*
 * appliance/config.c: the daemon's configuration: the defaults, one key
 * set from its text (validated against the key's type and range), and the
 * "key = value" file loader with its "PATH:LINE: problem" errors and the
 * checks between keys that only make sense once the whole file is read.
 *
 * It must never leave a half-applied file in the caller's configuration
 * (a file is applied whole or not at all), never accept a number that is
 * not plain decimal or lies out of its range, never overflow a field, and
 * never read more than one bounded line into memory at a time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "appliance/internal.h"

#define LINE_MAX_BYTES 8192

enum kind {
	K_LISTEN, /* HOST:PORT */
	K_PATH,   /* a path; may be empty when empty_ok */
	K_URI,    /* "" or a "pkcs11:" URI */
	K_BOOL,   /* int 0/1 */
	K_UINT,   /* unsigned or size_t (by the field's size), [lo, hi] */
	K_RATE,   /* double, (0, 1e7] */
	K_BURST,  /* double, [1, 1e9] */
};

struct key {
	const char *name;
	enum kind kind;
	size_t off, size;
	unsigned long long lo, hi;
	int empty_ok;
};

#define FIELD(f) \
	offsetof(struct app_config, f), sizeof(((struct app_config *)0)->f)
#define MS_LO 100ULL
#define MS_HI 3600000ULL

static const struct key keys[] = {
	{ "listen", K_LISTEN, FIELD(listen), 0, 0, 0 },
	{ "state_dir", K_PATH, FIELD(state_dir), 0, 0, 0 },
	{ "hsm_uri", K_URI, FIELD(hsm_uri), 0, 0, 1 },
	{ "cert_file", K_PATH, FIELD(cert_file), 0, 0, 1 },
	{ "key_file", K_PATH, FIELD(key_file), 0, 0, 1 },
	{ "tls12", K_BOOL, FIELD(tls12), 0, 1, 0 },
	{ "loops", K_UINT, FIELD(loops), 0, 256, 0 },
	{ "loop_spin_us", K_UINT, FIELD(loop_spin_us), 0, 1000, 0 },
	{ "max_conns", K_UINT, FIELD(max_conns), 1, 1000000, 0 },
	{ "max_conns_per_addr", K_UINT, FIELD(max_conns_per_addr), 1, 1000000,
	    0 },
	{ "max_header_bytes", K_UINT, FIELD(max_header_bytes), 1024, 1 << 20,
	    0 },
	{ "max_url_bytes", K_UINT, FIELD(max_url_bytes), 256, 1 << 20, 0 },
	{ "max_body_bytes", K_UINT, FIELD(max_body_bytes), 0, 1 << 30, 0 },
	{ "max_headers", K_UINT, FIELD(max_headers), 8, 1000, 0 },
	{ "handshake_timeout_ms", K_UINT, FIELD(handshake_timeout_ms), MS_LO,
	    MS_HI, 0 },
	{ "header_timeout_ms", K_UINT, FIELD(header_timeout_ms), MS_LO, MS_HI,
	    0 },
	{ "body_timeout_ms", K_UINT, FIELD(body_timeout_ms), MS_LO, MS_HI, 0 },
	{ "idle_timeout_ms", K_UINT, FIELD(idle_timeout_ms), MS_LO, MS_HI, 0 },
	{ "rate_global", K_RATE, FIELD(rate_global), 0, 0, 0 },
	{ "rate_global_burst", K_BURST, FIELD(rate_global_burst), 0, 0, 0 },
	{ "rate_per_addr", K_RATE, FIELD(rate_per_addr), 0, 0, 0 },
	{ "rate_per_addr_burst", K_BURST, FIELD(rate_per_addr_burst), 0, 0, 0 },
	{ "rate_per_key", K_RATE, FIELD(rate_per_key), 0, 0, 0 },
	{ "rate_per_key_burst", K_BURST, FIELD(rate_per_key_burst), 0, 0, 0 },
	{ "expiry_check_s", K_UINT, FIELD(expiry_check_s), 1, 86400, 0 },
	{ "ticket_rotate_s", K_UINT, FIELD(ticket_rotate_s), 60, 7 * 86400, 0 },
	{ "policy_file", K_PATH, FIELD(policy_file), 0, 0, 1 },
	{ "drain_timeout_ms", K_UINT, FIELD(drain_timeout_ms), MS_LO, MS_HI,
	    0 },
	{ "foreground", K_BOOL, FIELD(foreground), 0, 1, 0 },
	{ "core_dumps", K_BOOL, FIELD(core_dumps), 0, 1, 0 },
	{ "models", K_PATH, FIELD(models), 0, 0, 1 },
	{ "model_default", K_PATH, FIELD(model_default), 0, 0, 1 },
	{ "serve_max_batch", K_UINT, FIELD(serve_max_batch), 1, 256, 0 },
	{ "serve_batch_wait_ms", K_UINT, FIELD(serve_batch_wait_ms), 0, 1000,
	    0 },
	{ "serve_queue_max", K_UINT, FIELD(serve_queue_max), 1, 1000000, 0 },
	{ "serve_kv_budget_mb", K_UINT, FIELD(serve_kv_budget_mb), 1, 1 << 22,
	    0 },
	{ "serve_threads", K_UINT, FIELD(serve_threads), 0, 1024, 0 },
	{ "serve_backend", K_PATH, FIELD(serve_backend), 0, 0, 0 },
	{ "serve_key_concurrency", K_UINT, FIELD(serve_key_concurrency), 1,
	    1000000, 0 },
	{ "serve_key_tokens_per_s", K_RATE, FIELD(serve_key_tokens_per_s), 0, 0,
	    0 },
	{ "serve_key_tokens_burst", K_BURST, FIELD(serve_key_tokens_burst), 0,
	    0, 0 },
	{ "serve_cache_ttl_s", K_UINT, FIELD(serve_cache_ttl_s), 0, 86400, 0 },
	{ "serve_cache_entries", K_UINT, FIELD(serve_cache_entries), 0, 1000000,
	    0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void
app_config_defaults(struct app_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8443");
	snprintf(c->state_dir, sizeof(c->state_dir), "build/state");
	c->tls12 = 0;
	c->loops = 0;
	c->loop_spin_us = 20;
	c->max_conns = 10000;
	c->max_conns_per_addr = 256;
	c->max_header_bytes = 16384;
	c->max_url_bytes = 8192;
	c->max_body_bytes = 1 << 20;
	c->max_headers = 100;
	c->handshake_timeout_ms = 10000;
	c->header_timeout_ms = 10000;
	c->body_timeout_ms = 30000;
	c->idle_timeout_ms = 60000;
	c->rate_global = 1000;
	c->rate_global_burst = 2000;
	c->rate_per_addr = 100;
	c->rate_per_addr_burst = 200;
	c->rate_per_key = 50;
	c->rate_per_key_burst = 100;
	c->expiry_check_s = 60;
	c->ticket_rotate_s = 86400;
	c->drain_timeout_ms = 30000;
	c->foreground = 0;
	/* The tiny model that ships with the source, so `make run` serves
	 * something without a download; an appliance names its own. */
	snprintf(c->models, sizeof(c->models),
	    "tiny-qwen2=tests/fixtures/tiny-qwen2");
	snprintf(c->serve_backend, sizeof(c->serve_backend), "auto");
	c->serve_max_batch = 32;
	c->serve_batch_wait_ms = 50;
	c->serve_queue_max = 256;
	c->serve_kv_budget_mb = 2048;
	c->serve_key_concurrency = 64;
	c->serve_key_tokens_per_s = 100000;
	c->serve_key_tokens_burst = 200000;
	c->serve_cache_ttl_s = 300;
	c->serve_cache_entries = 4096;
}

static const struct key *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Plain decimal digits only. NULL when fine, else the reason. */
static const char *
parse_ull(const char *v, unsigned long long *out)
{
	unsigned long long n = 0;
	int over = 0;

	if (*v == '\0')
		return "empty value";
	for (; *v != '\0'; v++) {
		if (!is_digit(*v))
			return "not a decimal number";
		if (n > (~0ULL - 9) / 10)
			over = 1;
		else
			n = n * 10 + (unsigned long long)(*v - '0');
	}
	*out = over ? ~0ULL : n;
	return NULL;
}

/* DIGITS[.DIGITS]: no sign, exponent, hex, inf or nan. */
static const char *
parse_decimal(const char *v, double *out)
{
	const char *p = v;

	if (*p == '\0')
		return "empty value";
	while (is_digit(*p))
		p++;
	if (p == v)
		return "not a decimal number";
	if (*p == '.') {
		const char *frac = ++p;

		while (is_digit(*p))
			p++;
		if (p == frac)
			return "not a decimal number";
	}
	if (*p != '\0' || p - v > 32)
		return "not a decimal number";
	*out = strtod(v, NULL);
	return NULL;
}

static const char *
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	if (*v == '\0')
		return "empty value";
	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return NULL;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return NULL;
		}
	}
	return "not a boolean (true/false/yes/no/on/off/1/0)";
}

/* 0..65535, decimal, no sign; 0 asks the kernel for a free port (tests). */
static const char *
check_port(const char *p)
{
	unsigned long long n;

	if (parse_ull(p, &n) != NULL || n > 65535)
		return "port must be 0..65535";
	return NULL;
}

/*
 * HOST:PORT as the server binds it: an IPv4 address, an IPv6 address in
 * brackets, or nothing (all interfaces). Names are not resolved, so none
 * is accepted.
 */
static const char *
check_listen(const char *v)
{
	char host[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];
	const char *end, *colon;
	size_t hl;

	if (*v == '\0')
		return "empty value";
	if (*v == '[') {
		end = strchr(v, ']');
		if (end == NULL)
			return "missing ']' after the IPv6 address";
		hl = (size_t)(end - v - 1);
		if (hl == 0 || hl >= sizeof(host))
			return "bad IPv6 address";
		memcpy(host, v + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			return "bad IPv6 address";
		if (end[1] != ':')
			return "expected HOST:PORT";
		return check_port(end + 2);
	}
	colon = strrchr(v, ':');
	if (colon == NULL)
		return "expected HOST:PORT";
	hl = (size_t)(colon - v);
	if (memchr(v, ':', hl) != NULL)
		return "an IPv6 address needs brackets: [ADDR]:PORT";
	if (hl > 0) {
		if (hl >= sizeof(host))
			return "bad IPv4 address";
		memcpy(host, v, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, addr) != 1)
			return "bad IPv4 address";
	}
	return check_port(colon + 1);
}

static const char *
check_text(const struct key *k, const char *v)
{
	const unsigned char *p;

	if (*v == '\0' && !k->empty_ok)
		return "empty value";
	if (strlen(v) >= k->size)
		return "too long";
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "control character in value";
	if (strcmp(k->name, "serve_backend") == 0 && strcmp(v, "auto") != 0 &&
	    strcmp(v, "cpu") != 0 && strcmp(v, "cuda") != 0)
		return "not auto, cpu or cuda";
	if (k->kind == K_URI && *v != '\0' && strncmp(v, "pkcs11:", 7) != 0)
		return "not a pkcs11: URI";
	if (k->kind == K_LISTEN)
		return check_listen(v);
	return NULL;
}

/* Validate @p v for @p k and store it. NULL, or the reason (set into
 * @p why when it needs numbers). */
static const char *
apply(struct app_config *c, const struct key *k, const char *v, char *why,
    size_t whysz)
{
	unsigned char *field = (unsigned char *)c + k->off;
	unsigned long long n;
	const char *bad;
	double d;
	int b;

	switch (k->kind) {
	case K_LISTEN:
	case K_PATH:
	case K_URI:
		if ((bad = check_text(k, v)) != NULL)
			return bad;
		memcpy(field, v, strlen(v) + 1);
		return NULL;
	case K_BOOL:
		if ((bad = parse_bool(v, &b)) != NULL)
			return bad;
		memcpy(field, &b, sizeof(b));
		return NULL;
	case K_UINT:
		if ((bad = parse_ull(v, &n)) != NULL)
			return bad;
		if (n < k->lo || n > k->hi) {
			snprintf(why, whysz, "out of range (%llu..%llu)", k->lo,
			    k->hi);
			return why;
		}
		if (k->size == sizeof(size_t)) {
			size_t z = (size_t)n;

			memcpy(field, &z, sizeof(z));
		} else {
			unsigned u = (unsigned)n;

			memcpy(field, &u, sizeof(u));
		}
		return NULL;
	case K_RATE:
	case K_BURST:
		if ((bad = parse_decimal(v, &d)) != NULL)
			return bad;
		if (k->kind == K_RATE && !(d > 0 && d <= 1e7))
			return "out of range (> 0 and <= 10000000)";
		if (k->kind == K_BURST && !(d >= 1 && d <= 1e9))
			return "out of range (1..1000000000)";
		memcpy(field, &d, sizeof(d));
		return NULL;
	}
	return "unhandled key type";
}

int
app_config_set(
    struct app_config *c, const char *key, const char *value, char err[256])
{
	const struct key *k = find_key(key);
	const char *bad;
	char why[96];

	if (k == NULL) {
		snprintf(err, 256, "unknown key '%.64s'", key);
		return -EINVAL;
	}
	bad = apply(c, k, value, why, sizeof(why));
	if (bad != NULL) {
		snprintf(err, 256, "bad value for '%s': %s", k->name, bad);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* The file                                                            */
/* ------------------------------------------------------------------ */

static int
is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * Read one line (without its "\n" or "\r\n") into @p line, which holds
 * LINE_MAX_BYTES + 2 bytes. 1 with a line, 0 at the end of the file,
 * -EFBIG when longer than LINE_MAX_BYTES (the rest of it is skipped),
 * -EILSEQ on a NUL byte, -errno on a read error.
 */
static int
read_line(FILE *f, char *line, size_t *len)
{
	size_t n = 0;
	int ch, rc = 1;

	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (ch == '\0')
			rc = -EILSEQ;
		else if (n <= LINE_MAX_BYTES)
			line[n++] = (char)ch;
		else if (rc == 1)
			rc = -EFBIG;
	}
	if (ch == EOF && ferror(f))
		return errno != 0 ? -errno : -EIO;
	if (ch == EOF && n == 0 && rc == 1)
		return 0;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (n > LINE_MAX_BYTES && rc == 1)
		rc = -EFBIG;
	line[n] = '\0';
	*len = n;
	return rc;
}

/*
 * Split "key = value # comment" in place. NULL with *key and *value set,
 * *key NULL for a blank or comment line, or the problem.
 */
static const char *
split_line(char *line, char **key, char **value)
{
	char *p = line, *k, *v, *w;

	*key = NULL;
	while (is_space(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return NULL;
	k = p;
	while (*p != '\0' && *p != '=' && !is_space(*p))
		p++;
	if (p == k)
		return "missing key before '='";
	w = p;
	while (is_space(*p))
		p++;
	if (*p != '=')
		return "missing '='";
	*w = '\0';
	p++;
	while (is_space(*p))
		p++;
	if (*p == '"') {
		v = w = ++p;
		for (;; p++) {
			if (*p == '\0')
				return "unterminated quote";
			if (*p == '"')
				break;
			if (*p == '\\') {
				p++;
				if (*p != '"' && *p != '\\')
					return "bad escape in quoted value "
					       "(only \\\" and \\\\)";
			}
			*w++ = *p;
		}
		*w = '\0';
		p++;
		while (is_space(*p))
			p++;
		if (*p != '\0' && *p != '#')
			return "junk after the closing quote";
	} else {
		/* '#' starts a comment at the value's start or after a
		 * space; "a#b" is a value. */
		v = p;
		for (w = p; *p != '\0'; p++) {
			if (*p == '#' && (p == v || is_space(p[-1])))
				break;
			if (!is_space(*p))
				w = p + 1;
		}
		*w = '\0';
	}
	*key = k;
	*value = v;
	return NULL;
}

/* The later of the lines that set @p a and @p b (0 when neither did). */
static unsigned
later_line(const unsigned *seen, const char *a, const char *b)
{
	unsigned la = seen[find_key(a) - keys], lb = seen[find_key(b) - keys];

	return la > lb ? la : lb;
}

/* Checks between keys, reported on the line that broke them; @p seen:
 * where each key was set (0 = default). */
static int
cross_check(const struct app_config *c, const unsigned *seen, const char *path,
    char err[256])
{
	if (c->max_url_bytes > c->max_header_bytes) {
		snprintf(err, 256,
		    "%s:%u: max_url_bytes (%zu) exceeds max_header_bytes "
		    "(%zu)",
		    path, later_line(seen, "max_url_bytes", "max_header_bytes"),
		    c->max_url_bytes, c->max_header_bytes);
		return -EINVAL;
	}
	if (c->max_conns_per_addr > c->max_conns) {
		snprintf(err, 256,
		    "%s:%u: max_conns_per_addr (%u) exceeds max_conns (%u)",
		    path, later_line(seen, "max_conns_per_addr", "max_conns"),
		    c->max_conns_per_addr, c->max_conns);
		return -EINVAL;
	}
	return 0;
}

static int
load_file(
    struct app_config *c, FILE *f, const char *path, char *line, char err[256])
{
	unsigned seen[NKEYS] = { 0 }, lineno = 0;
	char *key, *value, sub[256];
	const struct key *k;
	const char *bad;
	size_t len;
	int rc;

	while ((rc = read_line(f, line, &len)) != 0) {
		lineno++;
		if (rc == -EFBIG) {
			snprintf(err, 256, "%s:%u: line longer than %d bytes",
			    path, lineno, LINE_MAX_BYTES);
			return -EINVAL;
		}
		if (rc == -EILSEQ) {
			snprintf(
			    err, 256, "%s:%u: NUL byte in line", path, lineno);
			return -EINVAL;
		}
		if (rc < 0) {
			snprintf(
			    err, 256, "%s:%u: %s", path, lineno, strerror(-rc));
			return rc;
		}
		if ((bad = split_line(line, &key, &value)) != NULL) {
			snprintf(err, 256, "%s:%u: %s", path, lineno, bad);
			return -EINVAL;
		}
		if (key == NULL)
			continue;
		if ((k = find_key(key)) == NULL) {
			snprintf(err, 256, "%s:%u: unknown key '%.64s'", path,
			    lineno, key);
			return -EINVAL;
		}
		if (seen[k - keys] != 0) {
			snprintf(err, 256,
			    "%s:%u: duplicate key '%s' (first on line %u)",
			    path, lineno, k->name, seen[k - keys]);
			return -EINVAL;
		}
		seen[k - keys] = lineno;
		if (app_config_set(c, key, value, sub) != 0) {
			snprintf(err, 256, "%s:%u: %s", path, lineno, sub);
			return -EINVAL;
		}
	}
	return cross_check(c, seen, path, err);
}

int
app_config_load(struct app_config *c, const char *path, char err[256])
{
	struct app_config *work;
	char *line;
	FILE *f;
	int rc;

	f = fopen(path, "re");
	if (f == NULL) {
		rc = -errno;
		snprintf(err, 256, "%s: %s", path, strerror(errno));
		return rc;
	}
	work = malloc(sizeof(*work));
	line = malloc(LINE_MAX_BYTES + 2);
	if (work == NULL || line == NULL) {
		snprintf(err, 256, "%s: out of memory", path);
		rc = -ENOMEM;
	} else {
		*work = *c;
		rc = load_file(work, f, path, line, err);
		if (rc == 0)
			*c = *work;
	}
	free(line);
	free(work);
	fclose(f);
	return rc;
}

int
app_config_compose(struct app_config *c, const char *path,
    const struct app_flags *flags, char err[256])
{
	int rc;

	app_config_defaults(c);
	if (path != NULL && (rc = app_config_load(c, path, err)) != 0)
		return rc;
	if (flags == NULL)
		return 0;
	/* Flags win over the file. */
	if ((flags->listen != NULL &&
	        (rc = app_config_set(c, "listen", flags->listen, err)) != 0) ||
	    (flags->state_dir != NULL &&
	        (rc = app_config_set(c, "state_dir", flags->state_dir, err)) !=
	            0) ||
	    (flags->hsm_uri != NULL &&
	        (rc = app_config_set(c, "hsm_uri", flags->hsm_uri, err)) != 0))
		return rc;
	return 0;
}

const char *
app_config_restart_key(const struct app_config *a, const struct app_config *b)
{
	if (strcmp(a->listen, b->listen) != 0)
		return "listen";
	if (strcmp(a->state_dir, b->state_dir) != 0)
		return "state_dir";
	if (strcmp(a->hsm_uri, b->hsm_uri) != 0)
		return "hsm_uri";
	if (a->loops != b->loops)
		return "loops";
	if (a->loop_spin_us != b->loop_spin_us)
		return "loop_spin_us";
	if (a->core_dumps != b->core_dumps)
		return "core_dumps";
	return NULL;
}
