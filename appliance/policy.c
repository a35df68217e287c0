/*
 * appliance/policy.c: the product's access vocabulary (roles and actions)
 * and the evaluation of a loaded policy against one request (API in
 * appliance/policy.h; the file format is parsed in policy_parse.c).
 *
 * It must never allow by default: anything unknown, malformed or not
 * matched is a deny, and a matching deny rule beats every allow. It never
 * allocates or blocks while deciding, so loops may call it inline.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "appliance/policy_impl.h"

/*
 * The actions, "noun.verb". Appending is safe; the order is the bit order
 * of policy_rule.actions, so at most 64. Each is what one route does; the
 * route's resource path is matched separately.
 */
static const char *const policy_actions[] = {
	/* apps (services) */
	"apps.create",
	"apps.list",
	"apps.read",
	"apps.update",
	"apps.disable",
	"apps.delete",
	/* API keys of apps and users */
	"keys.create",
	"keys.list",
	"keys.rotate",
	"keys.revoke",
	"keys.expiring",
	/* people */
	"users.create",
	"users.list",
	"users.read",
	"users.update",
	"users.disable",
	"users.delete",
	"users.password",
	"users.totp",
	/* devices */
	"devices.enroll",
	"devices.list",
	"devices.read",
	"devices.revoke",
	/* model administration */
	"models.list",
	"models.register",
	"models.activate",
	"models.remove",
	/* the OpenAI-compatible endpoint */
	"inference.chat",
	"inference.complete",
	"inference.models",
	/* audit log */
	"audit.read",
	"audit.verify",
	/* HSM and key ceremonies */
	"hsm.status",
	"ceremony.init",
	"ceremony.rotate",
	"ceremony.backup",
	"ceremony.clone",
	/* operations */
	"metrics.read",
};

#define POLICY_ACTION_COUNT (sizeof(policy_actions) / sizeof(policy_actions[0]))
_Static_assert(POLICY_ACTION_COUNT <= 64, "actions are bits of a uint64_t");

static const char *const policy_roles[POLICY_ROLE_COUNT] = {
	"security-officer",
	"admin",
	"developer",
	"auditor",
	"factory",
	"service",
	"device",
};

size_t
policy_action_count(void)
{
	return POLICY_ACTION_COUNT;
}

const char *
policy_action_name(size_t i)
{
	return i < POLICY_ACTION_COUNT ? policy_actions[i] : NULL;
}

int
policy__action_index(const char *name)
{
	size_t i;

	for (i = 0; i < POLICY_ACTION_COUNT; i++)
		if (strcmp(policy_actions[i], name) == 0)
			return (int)i;
	return -1;
}

const char *
policy_role_name(unsigned role)
{
	unsigned i;

	for (i = 0; i < POLICY_ROLE_COUNT; i++)
		if (role == 1u << i)
			return policy_roles[i];
	return NULL;
}

int
policy_role_from_name(const char *name)
{
	unsigned i;

	for (i = 0; i < POLICY_ROLE_COUNT; i++)
		if (strcmp(policy_roles[i], name) == 0)
			return (int)(1u << i);
	return -EINVAL;
}

int
policy_scope_has(const char *scopes, const char *scope)
{
	size_t n = strlen(scope);
	const char *p = scopes;

	if (scopes == NULL || n == 0)
		return 0;
	while (*p != '\0') {
		size_t len;

		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == n && memcmp(p, scope, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

void
policy_scopes_keep(char *scopes, const char *allowed)
{
	char *w = scopes, *p = scopes, save;
	size_t len;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		if (len == 0)
			break;
		save = p[len];
		p[len] = '\0';
		if (policy_scope_has(allowed, p)) {
			if (w != scopes)
				*w++ = ' ';
			memmove(w, p, len);
			w += len;
		}
		p[len] = save;
		p += len;
	}
	*w = '\0';
}

/* ---------------------------------------------------------------- */
/* Resource globs                                                     */
/* ---------------------------------------------------------------- */

int
policy__glob_compile(
    struct policy_glob *g, const char *pattern, const char **why)
{
	size_t i, n = strlen(pattern);

	memset(g, 0, sizeof(*g));
	if (pattern[0] != '/') {
		*why = "a resource must start with '/'";
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pattern[i];

		if (g->count == POLICY_GLOB_MAX) {
			*why = "resource pattern longer than 256 bytes";
			return -EINVAL;
		}
		if (c <= ' ' || c >= 0x7f) {
			*why = "resource pattern has a blank or non-ASCII byte";
			return -EINVAL;
		}
		if (c != '*') {
			g->kind[g->count] = POLICY_GLOB_CHAR;
			g->ch[g->count++] = (char)c;
			continue;
		}
		if (pattern[i + 1] == '*') {
			if (pattern[i + 2] == '*') {
				*why = "'***' in a resource pattern";
				return -EINVAL;
			}
			g->kind[g->count++] = POLICY_GLOB_ANY;
			i++;
		} else {
			g->kind[g->count++] = POLICY_GLOB_STAR;
		}
	}
	g->tail_any = g->count >= 2 &&
	    g->kind[g->count - 1] == POLICY_GLOB_ANY &&
	    g->kind[g->count - 2] == POLICY_GLOB_CHAR &&
	    g->ch[g->count - 2] == '/';
	return 0;
}

/* Add state @p i and, through stars (which may match nothing), the
 * states after it. */
static void
glob_enter(const struct policy_glob *g, uint8_t *set, unsigned i)
{
	for (;;) {
		set[i] = 1;
		if (i >= g->count || g->kind[i] == POLICY_GLOB_CHAR)
			return;
		i++;
	}
}

/*
 * A position set walk over the pattern (a small NFA): time is
 * O(path length x pattern length) whatever the stars, so no pattern can
 * make matching explode.
 */
int
policy__glob_match(const struct policy_glob *g, const char *path)
{
	uint8_t cur[POLICY_GLOB_MAX + 1], next[POLICY_GLOB_MAX + 1];
	unsigned i, n = g->count;
	const char *c;
	int any;

	memset(cur, 0, n + 1);
	glob_enter(g, cur, 0);
	for (c = path; *c != '\0'; c++) {
		memset(next, 0, n + 1);
		any = 0;
		for (i = 0; i < n; i++) {
			if (!cur[i])
				continue;
			switch (g->kind[i]) {
			case POLICY_GLOB_CHAR:
				if (g->ch[i] == *c) {
					glob_enter(g, next, i + 1);
					any = 1;
				}
				break;
			case POLICY_GLOB_STAR:
				if (*c != '/') {
					glob_enter(g, next, i);
					any = 1;
				}
				break;
			default:
				glob_enter(g, next, i);
				any = 1;
				break;
			}
		}
		if (!any)
			return 0;
		memcpy(cur, next, n + 1);
	}
	return cur[n] || (g->tail_any && cur[n - 2]);
}

/* ---------------------------------------------------------------- */
/* Evaluation                                                         */
/* ---------------------------------------------------------------- */

/* An absolute path with no empty, "." or ".." segment (a trailing '/'
 * aside). */
static int
policy_path_ok(const char *p)
{
	const char *seg;
	size_t len;

	if (p == NULL || p[0] != '/' || strlen(p) > 8192)
		return 0;
	seg = p + 1;
	for (;;) {
		len = strcspn(seg, "/");
		if (seg[len] == '\0')
			return !((len == 1 && seg[0] == '.') ||
			    (len == 2 && seg[0] == '.' && seg[1] == '.'));
		if (len == 0 || (len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		seg += len + 1;
	}
}

static int
policy_time_ok(const struct policy_rule *r, time_t now)
{
	struct tm tm;
	unsigned m;

	if (r->days == 0 && !r->has_hours)
		return 1;
	if (gmtime_r(&now, &tm) == NULL)
		return 0;
	if (r->days != 0 && !(r->days & (1u << tm.tm_wday)))
		return 0;
	if (!r->has_hours)
		return 1;
	m = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
	if (r->start_min < r->end_min)
		return m >= r->start_min && m < r->end_min;
	return m >= r->start_min || m < r->end_min;
}

static int
policy_rule_matches(const struct policy_rule *r, const struct policy_subject *s,
    const struct policy_request *q, int action)
{
	size_t i;
	int hit = 0;

	if (!(r->roles & s->roles) || !(r->actions & (1ULL << action)))
		return 0;
	for (i = 0; i < r->resource_count && !hit; i++)
		hit = policy__glob_match(&r->resources[i], q->resource);
	if (!hit)
		return 0;
	if (r->has_from && !cidr_list_match(&r->from, s->addr))
		return 0;
	if (r->scope_count > 0) {
		hit = 0;
		for (i = 0; i < r->scope_count && !hit; i++)
			hit = policy_scope_has(s->scopes, r->scopes[i]);
		if (!hit)
			return 0;
	}
	if (r->owner &&
	    (s->id == NULL || q->owner == NULL || s->id[0] == '\0' ||
	        strcmp(s->id, q->owner) != 0))
		return 0;
	return policy_time_ok(r, s->now);
}

int
policy_evaluate(const struct policy *p, const struct policy_subject *s,
    const struct policy_request *r, struct policy_decision *d)
{
	const struct policy_rule *allow = NULL;
	int action;
	size_t i;

	d->allow = 0;
	d->line = 0;
	d->source = p != NULL ? p->name : "";
	if (p == NULL || s == NULL || r == NULL || r->action == NULL)
		return -EINVAL;
	action = policy__action_index(r->action);
	if (action < 0 || !policy_path_ok(r->resource))
		return -EINVAL;
	for (i = 0; i < p->rule_count; i++) {
		const struct policy_rule *rule = &p->rules[i];

		if (!rule->deny && allow != NULL)
			continue;
		if (!policy_rule_matches(rule, s, r, action))
			continue;
		if (rule->deny) {
			d->line = rule->line;
			return 0;
		}
		allow = rule;
	}
	if (allow != NULL) {
		d->allow = 1;
		d->line = allow->line;
	}
	return 0;
}

size_t
policy_rule_count(const struct policy *p)
{
	return p != NULL ? p->rule_count : 0;
}

void
policy__rule_free(struct policy_rule *r)
{
	size_t i;

	free(r->resources);
	cidr_list_free(&r->from);
	for (i = 0; i < r->scope_count; i++)
		free(r->scopes[i]);
	free(r->scopes);
	memset(r, 0, sizeof(*r));
}

void
policy_free(struct policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->rule_count; i++)
		policy__rule_free(&p->rules[i]);
	free(p->rules);
	free(p->name);
	free(p);
}
