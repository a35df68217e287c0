/*
 * appliance/policy_parse.c: reads the policy file format (docs/access.md)
 * into the rules policy.c evaluates:
 *
 *   version 1
 *   network NAME CIDR[,CIDR...]
 *   allow|deny ROLES ACTIONS RESOURCES [from=..] [scope=..] [days=..]
 *                                      [hours=..] [owner]
 *
 * It must never load a policy it had to guess about: every unknown word,
 * role, action, network, duplicate condition or malformed value stops the
 * load with "NAME:LINE: problem", and nothing half-built escapes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appliance/policy_impl.h"

#define POLICY_TOKENS_MAX 64
#define POLICY_NETWORKS_MAX 256
#define POLICY_NAME_MAX 64

struct policy_network {
	char name[POLICY_NAME_MAX];
	char *cidrs; /* canonical text, for from= to re-parse */
};

struct policy_parser {
	struct policy *p;
	const char *name;
	unsigned line;
	char *err;
	struct policy_network nets[POLICY_NETWORKS_MAX];
	size_t net_count;
	size_t rule_cap;
};

static int parse_fail(struct policy_parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
parse_fail(struct policy_parser *ps, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (ps->err != NULL) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		snprintf(ps->err, 512, "%s:%u: %s", ps->name, ps->line, msg);
	}
	return APP_EPOLICY;
}

/* A name for networks: lower-case letters, digits, '-' and '_'. */
static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= POLICY_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		        s[i] == '_'))
			return 0;
	return 1;
}

/* Split @p list at commas in place; an empty item is an error. */
static int
split_commas(char *list, char **items, size_t max, size_t *count)
{
	size_t n = 0;
	char *p = list, *comma;

	for (;;) {
		if (n == max)
			return -1;
		comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		if (*p == '\0')
			return -1;
		items[n++] = p;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	*count = n;
	return 0;
}

static int
parse_roles(struct policy_parser *ps, char *list, unsigned *roles)
{
	char *items[POLICY_ROLE_COUNT + 1];
	size_t n, i;
	int bit;

	*roles = 0;
	if (strcmp(list, "*") == 0) {
		*roles = (1u << POLICY_ROLE_COUNT) - 1;
		return 0;
	}
	if (split_commas(list, items, POLICY_ROLE_COUNT, &n) != 0)
		return parse_fail(ps, "bad role list (names, comma-separated)");
	for (i = 0; i < n; i++) {
		bit = policy_role_from_name(items[i]);
		if (bit < 0)
			return parse_fail(ps, "unknown role '%s'", items[i]);
		*roles |= (unsigned)bit;
	}
	return 0;
}

/* "apps.create", "apps.*" or "*": the bits of the actions it names. */
static int
parse_actions(struct policy_parser *ps, char *list, uint64_t *actions)
{
	char *items[64];
	size_t n, i, k, len;
	uint64_t bits;

	*actions = 0;
	if (split_commas(list, items, 64, &n) != 0)
		return parse_fail(
		    ps, "bad action list (names, comma-separated)");
	for (i = 0; i < n; i++) {
		bits = 0;
		len = strlen(items[i]);
		for (k = 0; k < policy_action_count(); k++) {
			const char *a = policy_action_name(k);

			if (strcmp(items[i], "*") == 0 ||
			    strcmp(items[i], a) == 0 ||
			    (len > 2 && strcmp(items[i] + len - 2, ".*") == 0 &&
			        strncmp(items[i], a, len - 1) == 0))
				bits |= 1ULL << k;
		}
		if (bits == 0)
			return parse_fail(ps, "unknown action '%s'", items[i]);
		*actions |= bits;
	}
	return 0;
}

static int
parse_resources(struct policy_parser *ps, char *list, struct policy_rule *r)
{
	char *items[32];
	const char *why;
	size_t n, i;

	if (split_commas(list, items, 32, &n) != 0)
		return parse_fail(ps,
		    "bad resource list (paths, "
		    "comma-separated, at most 32)");
	r->resources = calloc(n, sizeof(*r->resources));
	if (r->resources == NULL)
		return -ENOMEM;
	r->resource_count = n;
	for (i = 0; i < n; i++)
		if (policy__glob_compile(&r->resources[i], items[i], &why) != 0)
			return parse_fail(
			    ps, "resource '%s': %s", items[i], why);
	return 0;
}

static const struct policy_network *
find_network(const struct policy_parser *ps, const char *name)
{
	size_t i;

	for (i = 0; i < ps->net_count; i++)
		if (strcmp(ps->nets[i].name, name) == 0)
			return &ps->nets[i];
	return NULL;
}

/* from=NAME|CIDR[,...]: network names expand to their CIDRs. */
static int
parse_from(struct policy_parser *ps, char *list, struct policy_rule *r)
{
	char *items[CIDR_LIST_MAX];
	char cerr[256];
	size_t n, i, used = 0, cap = 0;
	char *text = NULL, *grown;
	const struct policy_network *net;
	const char *piece;
	int rc;

	if (split_commas(list, items, CIDR_LIST_MAX, &n) != 0)
		return parse_fail(ps,
		    "bad from= list (network names or "
		    "CIDRs, comma-separated)");
	for (i = 0; i < n; i++) {
		net = find_network(ps, items[i]);
		piece = net != NULL ? net->cidrs : items[i];
		if (net == NULL && strchr(items[i], '/') == NULL &&
		    name_ok(items[i])) {
			free(text);
			return parse_fail(ps,
			    "unknown network '%s' (declare it with a "
			    "'network' line first)",
			    items[i]);
		}
		if (used + strlen(piece) + 3 > cap) {
			cap = (used + strlen(piece) + 3) * 2;
			grown = realloc(text, cap);
			if (grown == NULL) {
				free(text);
				return -ENOMEM;
			}
			text = grown;
		}
		used += (size_t)sprintf(
		    text + used, "%s%s", i == 0 ? "" : ",", piece);
	}
	rc = cidr_list_parse(&r->from, text, cerr);
	free(text);
	if (rc == APP_ECIDR)
		return parse_fail(ps, "from=: %s", cerr);
	if (rc != 0)
		return rc;
	r->has_from = 1;
	return 0;
}

static int
parse_scopes(struct policy_parser *ps, char *list, struct policy_rule *r)
{
	char *items[32];
	size_t n, i, k;

	if (split_commas(list, items, 32, &n) != 0)
		return parse_fail(ps,
		    "bad scope= list (at most 32, "
		    "comma-separated)");
	r->scopes = calloc(n, sizeof(*r->scopes));
	if (r->scopes == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		for (k = 0; items[i][k] != '\0'; k++)
			if (items[i][k] <= ' ' || items[i][k] >= 0x7f ||
			    items[i][k] == '"' || items[i][k] == '\\')
				return parse_fail(
				    ps, "bad scope '%s'", items[i]);
		r->scopes[i] = strdup(items[i]);
		if (r->scopes[i] == NULL)
			return -ENOMEM;
		r->scope_count++;
	}
	return 0;
}

static int
day_index(const char *s, size_t len)
{
	static const char days[] = "sunmontuewedthufrisat";
	int i;

	if (len != 3)
		return -1;
	for (i = 0; i < 7; i++)
		if (strncmp(days + 3 * i, s, 3) == 0)
			return i;
	return -1;
}

/* days=mon-fri,sun: names and ranges (a range may wrap: fri-mon). */
static int
parse_days(struct policy_parser *ps, char *list, struct policy_rule *r)
{
	char *items[7];
	size_t n, i;
	char *dash;
	int a, b;

	if (split_commas(list, items, 7, &n) != 0)
		return parse_fail(ps,
		    "bad days= list ('mon-fri' or "
		    "'sat,sun')");
	for (i = 0; i < n; i++) {
		dash = strchr(items[i], '-');
		a = day_index(items[i],
		    dash != NULL ? (size_t)(dash - items[i])
		                 : strlen(items[i]));
		b = dash != NULL ? day_index(dash + 1, strlen(dash + 1)) : a;
		if (a < 0 || b < 0)
			return parse_fail(ps,
			    "bad day '%s' (sun mon tue wed thu fri sat)",
			    items[i]);
		for (;;) {
			r->days |= (uint8_t)(1u << a);
			if (a == b)
				break;
			a = (a + 1) % 7;
		}
	}
	return 0;
}

/* "HH:MM" (00:00 to 24:00) into minutes. */
static int
parse_clock(const char *s, size_t len, unsigned *min)
{
	unsigned h, m;

	if (len != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' ||
	    s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
		return -1;
	h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
	if (h > 24 || (h == 24 && m != 0))
		return -1;
	*min = h * 60 + m;
	return 0;
}

static int
parse_hours(struct policy_parser *ps, const char *v, struct policy_rule *r)
{
	const char *dash = strchr(v, '-');

	if (dash == NULL ||
	    parse_clock(v, (size_t)(dash - v), &r->start_min) != 0 ||
	    parse_clock(dash + 1, strlen(dash + 1), &r->end_min) != 0 ||
	    r->start_min == 24 * 60)
		return parse_fail(ps, "bad hours= '%s' (HH:MM-HH:MM, UTC)", v);
	if (r->start_min == r->end_min)
		return parse_fail(ps, "hours= '%s' is an empty window", v);
	if (r->end_min == 24 * 60)
		r->end_min = 0;
	r->has_hours = 1;
	return 0;
}

static int
parse_condition(struct policy_parser *ps, char *tok, struct policy_rule *r)
{
	char *eq = strchr(tok, '=');
	const char *key = tok;

	if (strcmp(tok, "owner") == 0) {
		if (r->owner)
			return parse_fail(ps, "'owner' given twice");
		r->owner = 1;
		return 0;
	}
	if (eq == NULL)
		return parse_fail(ps,
		    "unknown condition '%s' (from=, scope=, days=, hours=, "
		    "owner)",
		    tok);
	*eq = '\0';
	if (eq[1] == '\0')
		return parse_fail(ps, "%s= has no value", key);
	if (strcmp(key, "from") == 0) {
		if (r->has_from)
			return parse_fail(ps, "from= given twice");
		return parse_from(ps, eq + 1, r);
	}
	if (strcmp(key, "scope") == 0) {
		if (r->scope_count > 0)
			return parse_fail(ps, "scope= given twice");
		return parse_scopes(ps, eq + 1, r);
	}
	if (strcmp(key, "days") == 0) {
		if (r->days != 0)
			return parse_fail(ps, "days= given twice");
		return parse_days(ps, eq + 1, r);
	}
	if (strcmp(key, "hours") == 0) {
		if (r->has_hours)
			return parse_fail(ps, "hours= given twice");
		return parse_hours(ps, eq + 1, r);
	}
	return parse_fail(ps,
	    "unknown condition '%s=' (from=, scope=, days=, hours=, owner)",
	    key);
}

static int
parse_rule(struct policy_parser *ps, char **tok, size_t n)
{
	struct policy_rule *r, *grown;
	size_t i;
	int rc;

	if (n < 4)
		return parse_fail(
		    ps, "'%s' needs ROLES ACTIONS RESOURCES", tok[0]);
	if (ps->p->rule_count == ps->rule_cap) {
		size_t cap = ps->rule_cap == 0 ? 16 : ps->rule_cap * 2;

		grown = realloc(ps->p->rules, cap * sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		ps->p->rules = grown;
		ps->rule_cap = cap;
	}
	r = &ps->p->rules[ps->p->rule_count];
	memset(r, 0, sizeof(*r));
	cidr_list_init(&r->from);
	r->line = ps->line;
	r->deny = strcmp(tok[0], "deny") == 0;
	if ((rc = parse_roles(ps, tok[1], &r->roles)) != 0 ||
	    (rc = parse_actions(ps, tok[2], &r->actions)) != 0 ||
	    (rc = parse_resources(ps, tok[3], r)) != 0)
		goto bad;
	for (i = 4; i < n; i++)
		if ((rc = parse_condition(ps, tok[i], r)) != 0)
			goto bad;
	ps->p->rule_count++;
	return 0;
bad:
	policy__rule_free(r);
	return rc;
}

static int
parse_network(struct policy_parser *ps, char **tok, size_t n)
{
	struct policy_network *net;
	struct cidr_list l;
	char cerr[256], *canon;
	int rc;

	if (n != 3)
		return parse_fail(ps,
		    "'network' needs NAME CIDR[,CIDR...] "
		    "(no blanks inside the list)");
	if (!name_ok(tok[1]))
		return parse_fail(
		    ps, "bad network name '%s' (a-z 0-9 - _)", tok[1]);
	if (find_network(ps, tok[1]) != NULL)
		return parse_fail(ps, "network '%s' declared twice", tok[1]);
	if (ps->net_count == POLICY_NETWORKS_MAX)
		return parse_fail(ps, "more than 256 networks");
	rc = cidr_list_parse(&l, tok[2], cerr);
	if (rc == APP_ECIDR)
		return parse_fail(ps, "network '%s': %s", tok[1], cerr);
	if (rc != 0)
		return rc;
	/* Each item formats to at most 44 bytes plus ", ". */
	canon = malloc(l.count * 48 + 1);
	if (canon == NULL) {
		cidr_list_free(&l);
		return -ENOMEM;
	}
	rc = cidr_list_format(&l, canon, l.count * 48 + 1);
	cidr_list_free(&l);
	if (rc < 0) {
		free(canon);
		return parse_fail(ps, "network '%s' too long", tok[1]);
	}
	net = &ps->nets[ps->net_count];
	net->cidrs = canon;
	snprintf(net->name, sizeof(net->name), "%s", tok[1]);
	ps->net_count++;
	return 0;
}

static int
parse_line(struct policy_parser *ps, char *line, int *seen_rule)
{
	char *tok[POLICY_TOKENS_MAX];
	size_t n = 0;
	char *p, *hash;

	hash = strchr(line, '#');
	if (hash != NULL)
		*hash = '\0';
	for (p = line; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (n == POLICY_TOKENS_MAX)
			return parse_fail(ps, "more than 64 words on a line");
		tok[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
	}
	if (n == 0)
		return 0;
	if (strcmp(tok[0], "version") == 0) {
		if (*seen_rule || ps->net_count > 0)
			return parse_fail(ps, "'version' must come first");
		if (n != 2 || strcmp(tok[1], "1") != 0)
			return parse_fail(ps,
			    "unsupported version (this "
			    "daemon reads 'version 1')");
		return 0;
	}
	if (strcmp(tok[0], "network") == 0) {
		*seen_rule = 1;
		return parse_network(ps, tok, n);
	}
	if (strcmp(tok[0], "allow") == 0 || strcmp(tok[0], "deny") == 0) {
		*seen_rule = 1;
		return parse_rule(ps, tok, n);
	}
	return parse_fail(ps,
	    "unknown statement '%s' (version, network, allow, deny)", tok[0]);
}

int
policy_load_string(
    struct policy **out, const char *name, const char *text, char err[512])
{
	struct policy_parser ps;
	char line[POLICY_LINE_MAX + 1];
	const char *p = text, *nl;
	size_t len, i;
	int rc = 0, seen_rule = 0;

	*out = NULL;
	if (err != NULL)
		err[0] = '\0';
	memset(&ps, 0, sizeof(ps));
	ps.name = name;
	ps.err = err;
	ps.p = calloc(1, sizeof(*ps.p));
	if (ps.p == NULL)
		return -ENOMEM;
	ps.p->name = strdup(name);
	if (ps.p->name == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (*p != '\0') {
		ps.line++;
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > POLICY_LINE_MAX) {
			rc = parse_fail(
			    &ps, "line longer than %d bytes", POLICY_LINE_MAX);
			goto out;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		rc = parse_line(&ps, line, &seen_rule);
		if (rc != 0)
			goto out;
		p += len + (nl != NULL);
	}
out:
	for (i = 0; i < ps.net_count; i++)
		free(ps.nets[i].cidrs);
	if (rc == -ENOMEM && err != NULL)
		snprintf(err, 512, "%s: out of memory", name);
	if (rc != 0) {
		policy_free(ps.p);
		return rc;
	}
	*out = ps.p;
	return 0;
}

/* appliance/policy.default as one string literal, made by the build
 * (appliance/module.mk). */
static const char policy_default_text[] =
#include "policy_default.inc"
    ;

int
policy_load_default(struct policy **out, char err[512])
{
	return policy_load_string(
	    out, POLICY_DEFAULT_NAME, policy_default_text, err);
}

int
policy_load_file(struct policy **out, const char *path, char err[512])
{
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto fail;
	}
	if (st.st_size > POLICY_FILE_MAX) {
		rc = -EFBIG;
		goto fail;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto fail;
		}
		got += (size_t)n;
	}
	text[got] = '\0';
	close(fd);
	fd = -1;
	if (strlen(text) != got) {
		if (err != NULL)
			snprintf(err, 512, "%s: NUL byte in the file", path);
		free(text);
		return APP_EPOLICY;
	}
	rc = policy_load_string(out, path, text, err);
	free(text);
	return rc;
fail:
	if (err != NULL)
		snprintf(err, 512, "%s: %s", path,
		    rc == -EINVAL ? "not a regular file" : sr_strerror(rc));
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}
