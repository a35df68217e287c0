/*
 * appliance/api_apps.c: the management API's JSON bodies. Every body is
 * read the same way (api_body_object): a JSON object, whose member names
 * are all ones the route takes, each given once, none holding a NUL; else
 * 400 naming the member, so a typo or a second value is never silently
 * ignored. Then what POST /api/apps and PATCH /api/apps/{id} accept,
 * checked once for both: the body's members one by one (a wrong type, a
 * bad network, a name or expiry out of range: 400 naming the member), and
 * the scope JSON to store built from the body and what the app had; the
 * scope list's rule is shared with users (api_scopes_check). A rate
 * limit above the daemon's per-key one is taken from an admin only (403).
 *
 * It must never accept a network the strict parser of cidr.c refuses (a
 * lenient parse widens access), never truncate a value to make it fit,
 * and never drop a member of an app's stored scope that the body did not
 * name.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <yyjson.h>

#include "appliance/api_impl.h"
#include "appliance/cidr.h"

#define APP_SCOPES_MAX 32 /* scopes per app */
#define APP_SCOPE_LEN 64  /* bytes of one scope */
#define APP_RATE_MAX 1e6  /* requests per second, and burst */

static int
refuse(struct api_req *r, const char *message)
{
	api_answer_error(r, 400, "invalid_request", message);
	return -EINVAL;
}

const char *
api_json_str(yyjson_val *v)
{
	const char *s = yyjson_get_str(v);

	return s != NULL && strlen(s) == yyjson_get_len(v) ? s : NULL;
}

int
api_body_object(struct api_req *r, const char *const *members, int optional,
    yyjson_doc **doc, yyjson_val **root)
{
	yyjson_val *k, *v, *seen;
	size_t i, n, j, m;
	char msg[200], names[120] = "";
	int known;

	*doc = NULL;
	*root = NULL;
	if (r->body_len == 0 && optional)
		return 0;
	if (r->body_len > 0)
		*doc = yyjson_read_opts(
		    (char *)r->body, r->body_len, 0, api_alc(), NULL);
	*root = yyjson_doc_get_root(*doc);
	if (!yyjson_is_obj(*root))
		return refuse(r, "the body must be a JSON object");
	for (j = 0, m = 0; members[j] != NULL; j++)
		m += (size_t)snprintf(names + m,
		    m < sizeof(names) ? sizeof(names) - m : 0, "%s%s",
		    j ? ", " : "", members[j]);
	yyjson_obj_foreach(*root, i, n, k, v)
	{
		/* A name with an escaped NUL ("name\u0000x") is no member
		 * we know, not the name before the NUL. */
		if (strlen(yyjson_get_str(k)) != yyjson_get_len(k))
			return refuse(r, "a member name holds a NUL (\\u0000)");
		for (j = 0, known = 0; members[j] != NULL && !known; j++)
			known = yyjson_equals_str(k, members[j]);
		if (!known) {
			snprintf(msg, sizeof(msg),
			    "unknown member \"%.40s\" (%s)", yyjson_get_str(k),
			    names);
			return refuse(r, msg);
		}
		/* Once: a second value would be read by one part and not by
		 * another (yyjson_obj_get takes the first). */
		seen = yyjson_obj_get(*root, yyjson_get_str(k));
		if (seen != v) {
			snprintf(msg, sizeof(msg),
			    "member \"%.40s\" given more than once",
			    yyjson_get_str(k));
			return refuse(r, msg);
		}
	}
	return 0;
}

/* 1..63 bytes, no control characters (the audit log and consoles show
 * it). */
static int
name_take(struct api_req *r, yyjson_val *v, struct api_app_body *b)
{
	const unsigned char *s = (const unsigned char *)yyjson_get_str(v);
	size_t i, n = yyjson_get_len(v);

	if (!yyjson_is_str(v) || n == 0 || n >= sizeof(b->name))
		return refuse(r, "\"name\": a string of 1 to 63 bytes");
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return refuse(r, "\"name\": no control characters");
	memcpy(b->name, s, n);
	b->name[n] = '\0';
	return 0;
}

/* One "ADDR/PREFIX" through cidr.c's strict parser into a key's form. */
static int
cidr_take(yyjson_val *v, struct ks_cidr *out)
{
	struct cidr_list l;
	const char *s = yyjson_get_str(v);
	int ok;

	if (!yyjson_is_str(v) || strchr(s, ',') != NULL ||
	    strlen(s) != yyjson_get_len(v))
		return 0;
	cidr_list_init(&l);
	ok = cidr_list_parse(&l, s, NULL) == 0 && l.count == 1;
	if (ok) {
		memset(out, 0, sizeof(*out));
		out->family = l.items[0].family == AF_INET ? 4 : 6;
		out->prefix = l.items[0].prefix;
		memcpy(out->addr, l.items[0].addr, out->family == 4 ? 4 : 16);
	}
	cidr_list_free(&l);
	return ok;
}

static int
cidrs_take(struct api_req *r, yyjson_val *arr, struct api_app_body *b)
{
	yyjson_val *v;
	size_t i, n;

	if (!yyjson_is_arr(arr) || yyjson_arr_size(arr) > KS_CIDR_MAX)
		return refuse(r, "\"cidrs\": an array of at most 8 networks");
	yyjson_arr_foreach(arr, i, n, v)
	{
		if (!cidr_take(v, &b->cidrs[i]))
			return refuse(r,
			    "\"cidrs\": each a network written ADDR/PREFIX, "
			    "host bits zero (\"10.1.0.0/16\", "
			    "\"2001:db8::/32\")");
	}
	return 0;
}

/* Scopes are space-separated in tokens and the policy: printable ASCII
 * without blanks, quotes or backslashes. */
int
api_scopes_check(struct api_req *r, yyjson_val *arr)
{
	yyjson_val *v;
	const char *s;
	size_t i, n, k;

	if (!yyjson_is_arr(arr) || yyjson_arr_size(arr) > APP_SCOPES_MAX)
		return refuse(r, "\"scopes\": an array of at most 32 strings");
	yyjson_arr_foreach(arr, i, n, v)
	{
		s = yyjson_get_str(v);
		if (!yyjson_is_str(v) || yyjson_get_len(v) == 0 ||
		    yyjson_get_len(v) > APP_SCOPE_LEN)
			return refuse(r, "\"scopes\": each 1 to 64 bytes");
		for (k = 0; k < yyjson_get_len(v); k++)
			if (s[k] <= ' ' || s[k] >= 0x7f || s[k] == '"' ||
			    s[k] == '\\')
				return refuse(r,
				    "\"scopes\": printable ASCII without "
				    "blanks, quotes or backslashes");
	}
	return 0;
}

static int
scopes_take(struct api_req *r, yyjson_val *arr, struct api_app_body *b)
{
	int rc = api_scopes_check(r, arr);

	if (rc == 0)
		b->scopes = arr;
	return rc;
}

/* {"rate":R,"burst":B}, either or both: positive numbers. */
static int
rate_take(struct api_req *r, yyjson_val *obj, struct api_app_body *b)
{
	yyjson_val *k, *v;
	size_t i, n;
	unsigned seen = 0, bit;
	double x, rate = 0, burst = 0;
	char msg[160];

	if (!yyjson_is_obj(obj) || yyjson_obj_size(obj) == 0)
		return refuse(r, "\"rate_limit\": {\"rate\":R,\"burst\":B}");
	yyjson_obj_foreach(obj, i, n, k, v)
	{
		x = yyjson_get_num(v);
		bit = yyjson_equals_str(k, "rate")  ? 1u
		    : yyjson_equals_str(k, "burst") ? 2u
		                                    : 0u;
		if (bit == 0 || !yyjson_is_num(v) || !isfinite(x) || x <= 0 ||
		    x > APP_RATE_MAX)
			return refuse(r,
			    "\"rate_limit\": \"rate\" and \"burst\", "
			    "numbers above 0 and at most 1000000");
		/* Each once, as at the top level: a second value is refused,
		 * never silently dropped. */
		if (seen & bit)
			return refuse(r,
			    bit == 1u ? "\"rate_limit\": member \"rate\" "
			                "given more than once"
			              : "\"rate_limit\": member \"burst\" "
			                "given more than once");
		seen |= bit;
		if (bit == 1u)
			rate = x;
		else
			burst = x;
	}
	/* The daemon's per-key limit is the operators' guard between
	 * tenants: only an admin may set an app above it. */
	if (!(r->roles & POLICY_ROLE_ADMIN) &&
	    (rate > r->api->rate_per_key ||
	        burst > r->api->rate_per_key_burst)) {
		snprintf(msg, sizeof(msg),
		    "\"rate_limit\": above this appliance's per-key limit "
		    "(rate %.0f, burst %.0f) only an admin may set",
		    r->api->rate_per_key, r->api->rate_per_key_burst);
		api_answer_error(r, 403, "forbidden", msg);
		return -EPERM;
	}
	b->rate_limit = obj;
	return 0;
}

static int
member_take(
    struct api_req *r, const char *key, yyjson_val *v, struct api_app_body *b)
{
	int64_t days;

	if (strcmp(key, "name") == 0) {
		b->set |= API_APP_NAME;
		return name_take(r, v, b);
	}
	if (strcmp(key, "cidrs") == 0) {
		b->set |= API_APP_CIDRS;
		return cidrs_take(r, v, b);
	}
	if (strcmp(key, "scopes") == 0) {
		b->set |= API_APP_SCOPES;
		return scopes_take(r, v, b);
	}
	if (strcmp(key, "rate_limit") == 0) {
		b->set |= API_APP_RATE;
		return rate_take(r, v, b);
	}
	if (strcmp(key, "expires_in_days") == 0) {
		b->set |= API_APP_EXPIRES;
		days = yyjson_get_sint(v);
		if (!yyjson_is_int(v) || days < 1 || days > 365)
			return refuse(
			    r, "\"expires_in_days\": an integer from 1 to 365");
		b->expires_at = (int64_t)time(NULL) + days * 86400;
		return 0;
	}
	return -ENOENT;
}

int
api_app_body_parse(struct api_req *r, int create, struct api_app_body *b)
{
	static const char *const members[] = { "name", "cidrs", "scopes",
		"expires_in_days", "rate_limit", NULL };
	yyjson_val *root, *k, *v;
	size_t i, n;
	int rc = 0;

	memset(b, 0, sizeof(*b));
	if ((rc = api_body_object(r, members, 0, &b->doc, &root)) != 0)
		return rc;
	yyjson_obj_foreach(root, i, n, k, v)
	{
		if ((rc = member_take(r, yyjson_get_str(k), v, b)) != 0)
			return rc;
	}
	if (create && !(b->set & API_APP_NAME))
		return refuse(r, "\"name\" is required");
	if (!create && b->set == 0)
		return refuse(r,
		    "nothing to change: give name, cidrs, scopes, "
		    "expires_in_days or rate_limit");
	/* Create's default: a year. */
	if (create && !(b->set & API_APP_EXPIRES))
		b->expires_at = (int64_t)time(NULL) + 365 * 86400LL;
	return 0;
}

void
api_app_body_free(struct api_app_body *b)
{
	yyjson_doc_free(b->doc);
	b->doc = NULL;
}

int
api_app_scope(struct api_req *r, const struct api_app_body *b,
    const char *current, char out[KS_SCOPE_MAX])
{
	yyjson_doc *cur = NULL;
	yyjson_mut_doc *d = yyjson_mut_doc_new(api_alc());
	yyjson_mut_val *o = NULL;
	char *text = NULL;
	int rc = 0;

	if (current != NULL && current[0] != '\0')
		cur = yyjson_read(current, strlen(current), 0);
	if (d != NULL && yyjson_is_obj(yyjson_doc_get_root(cur)))
		o = yyjson_val_mut_copy(d, yyjson_doc_get_root(cur));
	else if (d != NULL)
		o = yyjson_mut_obj(d);
	if (o == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	yyjson_mut_doc_set_root(d, o);
	/* Create: "scopes" always, [] when none was given. */
	if (b->scopes != NULL || yyjson_mut_obj_get(o, "scopes") == NULL) {
		yyjson_mut_obj_remove_key(o, "scopes");
		yyjson_mut_obj_add_val(d, o, "scopes",
		    b->scopes != NULL ? yyjson_val_mut_copy(d, b->scopes)
		                      : yyjson_mut_arr(d));
	}
	if (b->rate_limit != NULL) {
		yyjson_mut_obj_remove_key(o, "rate_limit");
		yyjson_mut_obj_add_val(
		    d, o, "rate_limit", yyjson_val_mut_copy(d, b->rate_limit));
	}
	text = yyjson_mut_write(d, 0, NULL);
	if (text == NULL)
		rc = -ENOMEM;
	else if (strlen(text) >= KS_SCOPE_MAX)
		rc = -E2BIG;
	else
		memcpy(out, text, strlen(text) + 1);
out:
	if (rc == -E2BIG)
		api_answer_error(r, 400, "invalid_request",
		    "scopes and rate_limit together are too long");
	else if (rc != 0)
		api_answer_error(r, 503, "unavailable", "out of memory");
	free(text);
	yyjson_mut_doc_free(d);
	yyjson_doc_free(cur);
	return rc;
}

void
api_app_cidrs_json(
    struct yyjson_mut_doc *d, struct yyjson_mut_val *o, const struct ks_meta *m)
{
	char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 5];
	yyjson_mut_val *arr = NULL;
	unsigned i;

	for (i = 0; i < KS_CIDR_MAX; i++) {
		const struct ks_cidr *c = &m->cidrs[i];

		if (c->family == 0 ||
		    inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr,
		        addr, sizeof(addr)) == NULL)
			continue;
		snprintf(text, sizeof(text), "%s/%u", addr, c->prefix);
		if (arr == NULL)
			arr = yyjson_mut_arr(d);
		yyjson_mut_arr_add_strcpy(d, arr, text);
	}
	if (arr != NULL)
		yyjson_mut_obj_add_val(d, o, "cidrs", arr);
}
