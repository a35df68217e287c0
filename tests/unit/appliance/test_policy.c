/*
 * tests/unit/appliance/test_policy.c: appliance/policy.c and
 * policy_parse.c: the shipped appliance/policy.default checked as a matrix
 * of every role x every action the daemon knows (expected outcomes from the
 * declarative table below, written from the product's rules, never from
 * the evaluator), then each rule feature on small policies: deny beats
 * allow, default deny, networks, scopes, time windows, ownership, resource
 * globs, malformed requests, and the loader's "NAME:LINE: problem" errors.
 * Run from the repository root (the default policy is read from there).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/policy.h"
#include "lib/sr.h"

#define DEFAULT_POLICY "appliance/policy.default"

/* Wednesday 2025-01-15 12:00:00 UTC. */
#define WED_NOON ((time_t)1736942400)

#define SO POLICY_ROLE_SECURITY_OFFICER
#define AD POLICY_ROLE_ADMIN
#define DV POLICY_ROLE_DEVELOPER
#define AU POLICY_ROLE_AUDITOR
#define FA POLICY_ROLE_FACTORY
#define SE POLICY_ROLE_SERVICE
#define DE POLICY_ROLE_DEVICE
#define ALL_ROLES (SO | AD | DV | AU | FA | SE | DE)

/*
 * What the product promises (DESIGN "Access", issue 6): model
 * administration admin-only; key ceremonies security-officer-only (and
 * only from the appliance's console); auditors read only; developers
 * manage their own apps and keys and call the model; services and devices
 * only inference (with a key scoped "inference"); the factory only
 * enrolls devices. `owner_only` roles get the action only on a resource
 * they own.
 */
struct expect {
	const char *action;
	const char *resource;
	unsigned allowed;
	unsigned owner_only;
};

static const struct expect matrix[] = {
	{ "apps.create", "/api/apps", AD | DV, 0 },
	{ "apps.list", "/api/apps", AD | DV | AU, 0 },
	{ "apps.read", "/api/apps/a1", AD | DV | AU, DV },
	{ "apps.update", "/api/apps/a1", AD | DV, DV },
	{ "apps.disable", "/api/apps/a1/disable", AD | DV, DV },
	{ "apps.delete", "/api/apps/a1", AD | DV, DV },
	{ "keys.create", "/api/apps/a1/keys", AD | DV, DV },
	{ "keys.list", "/api/apps/a1/keys", AD | DV | AU, DV },
	{ "keys.rotate", "/api/keys/k1/rotate", AD | DV, DV },
	{ "keys.revoke", "/api/keys/k1/revoke", AD | DV, DV },
	{ "keys.expiring", "/api/keys/expiring", AD | AU, 0 },
	{ "users.create", "/api/users", AD, 0 },
	{ "users.list", "/api/users", AD | AU, 0 },
	{ "users.read", "/api/users/u1", AD | AU | DV, DV },
	{ "users.update", "/api/users/u1", AD, 0 },
	{ "users.disable", "/api/users/u1/disable", AD, 0 },
	{ "users.delete", "/api/users/u1", AD, 0 },
	{ "users.password", "/api/users/u1/password", AD | DV, DV },
	{ "users.totp", "/api/users/u1/totp", AD | DV, DV },
	{ "devices.enroll", "/api/devices/enroll", FA, 0 },
	{ "devices.list", "/api/devices", AD | AU, 0 },
	{ "devices.read", "/api/devices/SN0001", AD | AU, 0 },
	{ "devices.revoke", "/api/devices/SN0001/revoke", AD, 0 },
	{ "models.list", "/api/models", AD | AU | DV, 0 },
	{ "models.register", "/api/models", AD, 0 },
	{ "models.activate", "/api/models/qwen-1.5b/activate", AD, 0 },
	{ "models.remove", "/api/models/qwen-1.5b", AD, 0 },
	{ "inference.chat", "/v1/chat/completions", AD | DV | SE | DE, 0 },
	{ "inference.complete", "/v1/completions", AD | DV | SE | DE, 0 },
	{ "inference.models", "/v1/models", AD | DV | SE | DE, 0 },
	{ "audit.read", "/api/audit", AD | AU, 0 },
	{ "audit.verify", "/api/audit/verify", AD | AU, 0 },
	{ "hsm.status", "/api/hsm", SO | AD | AU, 0 },
	{ "ceremony.init", "/api/ceremony/init", SO, 0 },
	{ "ceremony.rotate", "/api/ceremony/rotate", SO, 0 },
	{ "ceremony.backup", "/api/ceremony/backup", SO, 0 },
	{ "ceremony.clone", "/api/ceremony/clone", SO, 0 },
	{ "metrics.read", "/metrics", AD | AU, 0 },
};

#define MATRIX_SIZE (sizeof(matrix) / sizeof(matrix[0]))

static struct sockaddr_storage
addr_of(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	return ss;
}

static struct policy *
load_default(void)
{
	struct policy *p = NULL;
	char err[512];
	int rc;

	rc = policy_load_default(&p, err);
	if (rc != 0)
		fail_msg("the built-in policy: %s", err);
	return p;
}

/* The built-in policy is the shipped file as built: same rules, same
 * decisions citing the same lines. */
static void
test_builtin_is_the_file(void **state)
{
	struct policy *file = NULL, *builtin = load_default();
	struct policy_subject s = { 0 };
	struct policy_request q = { 0 };
	struct policy_decision a, b;
	struct sockaddr_storage ss = addr_of("127.0.0.1");
	char err[512];

	(void)state;
	assert_int_equal(policy_load_file(&file, DEFAULT_POLICY, err), 0);
	assert_int_equal(policy_rule_count(file), policy_rule_count(builtin));
	s.id = "u1";
	s.addr = (const struct sockaddr *)&ss;
	s.now = 1700000000;
	for (unsigned role = 0; role < POLICY_ROLE_COUNT; role++) {
		s.roles = 1u << role;
		q.action = "apps.read";
		q.resource = "/api/apps/x";
		assert_int_equal(policy_evaluate(file, &s, &q, &a), 0);
		assert_int_equal(policy_evaluate(builtin, &s, &q, &b), 0);
		assert_int_equal(a.allow, b.allow);
		assert_int_equal(a.line, b.line);
		assert_string_equal(a.source, b.source);
	}
	policy_free(file);
	policy_free(builtin);
}

/* One decision; fails the test on an evaluation error. */
static int
decide(const struct policy *p, unsigned roles, const char *id,
    const char *scopes, const char *addr, time_t now, const char *action,
    const char *resource, const char *owner, unsigned *line)
{
	struct sockaddr_storage ss = addr_of(addr);
	struct policy_subject s = { id, roles, scopes,
		(const struct sockaddr *)&ss, now };
	struct policy_request r = { action, resource, owner };
	struct policy_decision d;

	assert_int_equal(policy_evaluate(p, &s, &r, &d), 0);
	if (line != NULL)
		*line = d.line;
	if (d.allow)
		assert_true(d.line > 0);
	return d.allow;
}

/* ---------------------------------------------------------------- */
/* The shipped policy                                                 */
/* ---------------------------------------------------------------- */

static void
test_matrix_covers_every_action(void **state)
{
	size_t i, k;
	int found;

	(void)state;
	assert_int_equal(policy_action_count(), MATRIX_SIZE);
	for (i = 0; i < policy_action_count(); i++) {
		found = 0;
		for (k = 0; k < MATRIX_SIZE; k++)
			found |= strcmp(matrix[k].action,
			             policy_action_name(i)) == 0;
		if (!found)
			fail_msg("action %s has no row in the matrix",
			    policy_action_name(i));
	}
	assert_null(policy_action_name(policy_action_count()));
}

static void
test_default_matrix(void **state)
{
	struct policy *p = load_default();
	unsigned role, want, line;
	size_t i, failures = 0;
	int got, owner;
	const char *name;

	(void)state;
	for (i = 0; i < MATRIX_SIZE; i++) {
		for (role = 1; role & ALL_ROLES; role <<= 1) {
			name = policy_role_name(role);
			for (owner = 1; owner >= 0; owner--) {
				want = matrix[i].allowed;
				if (!owner)
					want &= ~matrix[i].owner_only;
				got = decide(p, role, "u1", "inference",
				    "127.0.0.1", WED_NOON, matrix[i].action,
				    matrix[i].resource, owner ? "u1" : "u2",
				    &line);
				if (got == !!(want & role))
					continue;
				print_error(
				    "%s %s %s (%s): got %s by line %u\n", name,
				    matrix[i].action, matrix[i].resource,
				    owner ? "owner" : "not owner",
				    got ? "allow" : "deny", line);
				failures++;
			}
		}
	}
	policy_free(p);
	assert_int_equal(failures, 0);
}

static void
test_default_attributes(void **state)
{
	struct policy *p = load_default();

	(void)state;
	/* Ceremonies only from the console (loopback). */
	assert_true(decide(p, SO, "o1", NULL, "::1", WED_NOON, "ceremony.init",
	    "/api/ceremony/init", NULL, NULL));
	assert_false(decide(p, SO, "o1", NULL, "10.0.0.5", WED_NOON,
	    "ceremony.init", "/api/ceremony/init", NULL, NULL));
	/* A person holding admin and security-officer is refused ceremonies:
	 * the deny for admins wins (separation of duties). */
	assert_false(decide(p, SO | AD, "o1", NULL, "127.0.0.1", WED_NOON,
	    "ceremony.rotate", "/api/ceremony/rotate", NULL, NULL));
	/* Services need the inference scope, exactly. */
	assert_false(decide(p, SE, "app1", "keys:read", "10.1.1.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	assert_false(decide(p, SE, "app1", "inferencex", "10.1.1.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	assert_false(decide(p, DE, "d1", NULL, "10.1.1.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	assert_true(decide(p, SE, "app1", "keys:read inference", "10.1.1.1",
	    WED_NOON, "inference.chat", "/v1/chat/completions", NULL, NULL));
	/* Inference actions outside /v1 are nobody's. */
	assert_false(decide(p, SE, "app1", "inference", "10.1.1.1", WED_NOON,
	    "inference.chat", "/api/apps", NULL, NULL));
	/* A developer cannot create keys for an app of unknown owner. */
	assert_false(decide(p, DV, "u1", NULL, "10.1.1.1", WED_NOON,
	    "keys.create", "/api/apps/a9/keys", NULL, NULL));
	/* No role at all: nothing. */
	assert_false(decide(p, 0, "u1", "inference", "127.0.0.1", WED_NOON,
	    "inference.models", "/v1/models", "u1", NULL));
	policy_free(p);
}

/* ---------------------------------------------------------------- */
/* Rule features                                                      */
/* ---------------------------------------------------------------- */

static struct policy *
load_text(const char *text)
{
	struct policy *p = NULL;
	char err[512];

	if (policy_load_string(&p, "t.policy", text, err) != 0)
		fail_msg("policy did not load: %s", err);
	return p;
}

static void
test_deny_wins_and_default_deny(void **state)
{
	struct policy *p;
	unsigned line;

	(void)state;
	p = load_text("# comment line\n"
	              "\n"
	              "deny developer apps.delete /api/apps/locked/**\n"
	              "allow developer apps.* /api/apps/**   # all\n"
	              "allow developer apps.read /api/apps/**\n"
	              "deny * apps.update /api/apps/frozen\n");
	assert_int_equal(policy_rule_count(p), 4);
	assert_true(decide(p, DV, "u", NULL, "10.0.0.1", WED_NOON, "apps.read",
	    "/api/apps/x", NULL, &line));
	assert_int_equal(line, 4); /* the first allow that matches */
	/* A deny above or below the allow wins. */
	assert_false(decide(p, DV, "u", NULL, "10.0.0.1", WED_NOON,
	    "apps.delete", "/api/apps/locked", NULL, &line));
	assert_int_equal(line, 3);
	assert_false(decide(p, DV, "u", NULL, "10.0.0.1", WED_NOON,
	    "apps.update", "/api/apps/frozen", NULL, &line));
	assert_int_equal(line, 6);
	/* No rule: default deny, line 0. */
	assert_false(decide(p, AD, "u", NULL, "10.0.0.1", WED_NOON, "apps.read",
	    "/api/apps/x", NULL, &line));
	assert_int_equal(line, 0);
	assert_false(decide(p, DV, "u", NULL, "10.0.0.1", WED_NOON, "keys.list",
	    "/api/apps/x", NULL, &line));
	assert_int_equal(line, 0);
	policy_free(p);
	/* An empty policy denies everything. */
	p = load_text("version 1\n# nothing\n");
	assert_int_equal(policy_rule_count(p), 0);
	assert_false(decide(p, ALL_ROLES, "u", "inference", "127.0.0.1",
	    WED_NOON, "inference.chat", "/v1/chat/completions", NULL, NULL));
	policy_free(p);
}

static void
test_networks(void **state)
{
	struct policy *p;
	struct policy_subject s = { "u", AD, NULL, NULL, WED_NOON };
	struct policy_request r = { "users.list", "/api/users", NULL };
	struct policy_decision d;

	(void)state;
	p = load_text("network office 10.20.0.0/16,2001:db8:20::/48\n"
	              "network lab 192.168.7.0/24\n"
	              "allow admin users.* /api/users/** from=office,lab\n"
	              "allow auditor users.list /api/users "
	              "from=127.0.0.2/32,::1/128\n");
	assert_true(decide(p, AD, "u", NULL, "10.20.3.4", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	assert_true(decide(p, AD, "u", NULL, "::ffff:10.20.3.4", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	assert_true(decide(p, AD, "u", NULL, "2001:db8:20:ff::9", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	assert_true(decide(p, AD, "u", NULL, "192.168.7.200", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	assert_false(decide(p, AD, "u", NULL, "10.21.0.1", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	assert_true(decide(p, AU, "u", NULL, "127.0.0.2", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	assert_false(decide(p, AU, "u", NULL, "127.0.0.3", WED_NOON,
	    "users.list", "/api/users", NULL, NULL));
	/* An unknown source address never satisfies from=. */
	assert_int_equal(policy_evaluate(p, &s, &r, &d), 0);
	assert_false(d.allow);
	policy_free(p);
}

static void
test_scopes(void **state)
{
	struct policy *p;

	(void)state;
	assert_true(policy_scope_has("a b  c", "c"));
	assert_true(policy_scope_has(" a", "a"));
	assert_false(policy_scope_has("ab", "a"));
	assert_false(policy_scope_has("a", "ab"));
	assert_false(policy_scope_has(NULL, "a"));
	assert_false(policy_scope_has("a", ""));
	{
		char t[64];

		snprintf(t, sizeof(t), "%s", " inference  audit x ");
		policy_scopes_keep(t, "x inference");
		assert_string_equal(t, "inference x");
		snprintf(t, sizeof(t), "%s", "inference audit");
		policy_scopes_keep(t, "");
		assert_string_equal(t, "");
		snprintf(t, sizeof(t), "%s", "inference:chat inference");
		policy_scopes_keep(t, "inference");
		assert_string_equal(t, "inference");
		snprintf(t, sizeof(t), "%s", "");
		policy_scopes_keep(t, "a");
		assert_string_equal(t, "");
	}
	p = load_text("allow service inference.* /v1/** "
	              "scope=inference,inference:chat\n");
	assert_true(decide(p, SE, "s", "inference:chat", "10.0.0.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	assert_true(decide(p, SE, "s", "x inference", "10.0.0.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	assert_false(decide(p, SE, "s", "inference:embed", "10.0.0.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	assert_false(decide(p, SE, "s", "", "10.0.0.1", WED_NOON,
	    "inference.chat", "/v1/chat/completions", NULL, NULL));
	policy_free(p);
}

static void
test_time_windows(void **state)
{
	struct policy *p;
	const time_t day = 86400, hour = 3600;
	/* Sunday 2025-01-12 00:00 UTC. */
	const time_t sun = WED_NOON - 3 * day - 12 * hour;

	(void)state;
	p = load_text("allow admin users.list /api/users days=mon-fri "
	              "hours=08:00-18:00\n"
	              "allow admin users.read /api/users/** hours=22:00-06:00\n"
	              "allow admin users.create /api/users days=fri-mon\n"
	              "allow admin users.update /api/users/** days=sat,sun "
	              "hours=12:30-24:00\n");
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON, "users.list",
	    "/api/users", NULL, NULL));
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", sun + day + 8 * hour,
	    "users.list", "/api/users", NULL, NULL)); /* Mon 08:00 */
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", sun + day + 18 * hour,
	    "users.list", "/api/users", NULL,
	    NULL)); /* Mon 18:00, end exclusive */
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1",
	    sun + day + 8 * hour - 1, "users.list", "/api/users", NULL, NULL));
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", sun + 12 * hour,
	    "users.list", "/api/users", NULL, NULL)); /* Sunday */
	/* Across midnight. */
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", sun + 23 * hour,
	    "users.read", "/api/users/x", NULL, NULL));
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", sun + 5 * hour + 3599,
	    "users.read", "/api/users/x", NULL, NULL));
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", sun + 6 * hour,
	    "users.read", "/api/users/x", NULL, NULL));
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON,
	    "users.read", "/api/users/x", NULL, NULL));
	/* A day range that wraps the week: fri sat sun mon. */
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", sun, "users.create",
	    "/api/users", NULL, NULL));
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", sun + 5 * day,
	    "users.create", "/api/users", NULL, NULL));
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON,
	    "users.create", "/api/users", NULL, NULL));
	/* 24:00 as the end of the day. */
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", sun + day - 1,
	    "users.update", "/api/users/x", NULL, NULL));
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", sun + 12 * hour,
	    "users.update", "/api/users/x", NULL, NULL));
	policy_free(p);
}

static void
test_owner(void **state)
{
	struct policy *p;

	(void)state;
	p = load_text("allow developer apps.read /api/apps/* owner\n");
	assert_true(decide(p, DV, "dev1", NULL, "10.0.0.1", WED_NOON,
	    "apps.read", "/api/apps/a", "dev1", NULL));
	assert_false(decide(p, DV, "dev1", NULL, "10.0.0.1", WED_NOON,
	    "apps.read", "/api/apps/a", "dev2", NULL));
	assert_false(decide(p, DV, "dev1", NULL, "10.0.0.1", WED_NOON,
	    "apps.read", "/api/apps/a", NULL, NULL));
	assert_false(decide(p, DV, NULL, NULL, "10.0.0.1", WED_NOON,
	    "apps.read", "/api/apps/a", "dev1", NULL));
	assert_false(decide(p, DV, "", NULL, "10.0.0.1", WED_NOON, "apps.read",
	    "/api/apps/a", "", NULL));
	policy_free(p);
}

static void
test_resource_globs(void **state)
{
	struct policy *p;
	static const struct {
		const char *path;
		int allow;
	} cases[] = {
		{ "/api/apps", 1 }, /* the tail rule: the tail may be empty */
		{ "/api/apps/", 1 },
		{ "/api/apps/a/keys/k/rotate", 1 },
		{ "/api/appsx", 0 },
		{ "/api/users/u/keys", 1 },
		{ "/api/users/u/keys/k", 1 },
		{ "/api/users/u/v/keys", 0 }, /* "*" is one segment */
		{ "/api/users/keys", 0 },
		{ "/v1/models", 1 },
		{ "/v1/models/x", 0 },
		{ "/v1/model", 0 },
		{ "/x/a-b.json", 1 },
		{ "/x/a.json/b.json", 0 },
	};
	size_t i;

	(void)state;
	p = load_text("allow admin apps.read /api/apps/**,/api/users/*/keys/**,"
	              "/v1/models,/x/*.json\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON, "apps.read",
		        cases[i].path, NULL, NULL) != cases[i].allow)
			fail_msg("%s: expected %s", cases[i].path,
			    cases[i].allow ? "allow" : "deny");
	policy_free(p);
}

static void
test_glob_no_blowup(void **state)
{
	char path[8200];
	struct policy *p;

	(void)state;
	/* Backtracking matchers take exponential time on this; the position
	 * set walk takes path x pattern steps. */
	p = load_text("allow admin apps.read /**a**a**a**a**a**a**a**a**a**a"
	              "**a**a**a**a**a**a**a**a**a**a**b\n");
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[8192] = '\0';
	assert_false(decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON, "apps.read",
	    path, NULL, NULL));
	path[8191] = 'b';
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON, "apps.read",
	    path, NULL, NULL));
	policy_free(p);
}

static void
test_bad_requests(void **state)
{
	static const char *const bad_paths[] = { "api/apps", "", "/api//apps",
		"/api/./apps", "/api/../api/apps", "/api/apps/..",
		"/api/apps/." };
	struct sockaddr_storage ss = addr_of("127.0.0.1");
	struct policy_subject s = { "a", ALL_ROLES, "inference",
		(const struct sockaddr *)&ss, WED_NOON };
	struct policy_request r = { "apps.read", NULL, NULL };
	struct policy_decision d;
	struct policy *p;
	size_t i;

	(void)state;
	p = load_text("allow * * /**\n");
	r.resource = "/anything/at/all";
	assert_int_equal(policy_evaluate(p, &s, &r, &d), 0);
	assert_true(d.allow);
	assert_string_equal(d.source, "t.policy");
	for (i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		r.resource = bad_paths[i];
		assert_int_equal(policy_evaluate(p, &s, &r, &d), -EINVAL);
		assert_false(d.allow);
	}
	r.resource = NULL;
	assert_int_equal(policy_evaluate(p, &s, &r, &d), -EINVAL);
	r.resource = "/api/apps";
	r.action = "apps.explode";
	assert_int_equal(policy_evaluate(p, &s, &r, &d), -EINVAL);
	assert_false(d.allow);
	r.action = NULL;
	assert_int_equal(policy_evaluate(p, &s, &r, &d), -EINVAL);
	assert_int_equal(policy_evaluate(NULL, &s, &r, &d), -EINVAL);
	assert_false(d.allow);
	policy_free(p);
	policy_free(NULL);
}

static void
test_vocabulary(void **state)
{
	unsigned role;
	size_t n = 0;

	(void)state;
	for (role = 1; role & ALL_ROLES; role <<= 1) {
		assert_non_null(policy_role_name(role));
		assert_int_equal(
		    policy_role_from_name(policy_role_name(role)), (int)role);
		n++;
	}
	assert_int_equal(n, POLICY_ROLE_COUNT);
	assert_string_equal(policy_role_name(SO), "security-officer");
	assert_null(policy_role_name(AD | DV));
	assert_null(policy_role_name(0));
	assert_int_equal(policy_role_from_name("Admin"), -EINVAL);
	assert_int_equal(policy_role_from_name("root"), -EINVAL);
}

struct parse_case {
	const char *text;
	const char *message;
};

static void
test_parse_errors(void **state)
{
	static const struct parse_case cases[] = {
		{ "allow admin apps.read\n",
		    "t.policy:1: 'allow' needs ROLES "
		    "ACTIONS RESOURCES" },
		{ "\n\nallow root apps.read /x\n",
		    "t.policy:3: unknown role 'root'" },
		{ "allow admin aps.* /x\n",
		    "t.policy:1: unknown action "
		    "'aps.*'" },
		{ "allow admin apps.reed /x\n", "unknown action 'apps.reed'" },
		{ "allow admin apps.read x\n",
		    "t.policy:1: resource 'x': a "
		    "resource must start with '/'" },
		{ "allow admin apps.read /a/***\n", "'***'" },
		{ "allow admin apps.read /x from=office\n",
		    "t.policy:1: unknown network 'office'" },
		{ "allow admin apps.read /x from=10.0.0.1/8\n",
		    "t.policy:1: from=: item 1 '10.0.0.1/8': host bits set" },
		{ "allow admin apps.read /x from=10.0.0.1\n",
		    "no prefix length" },
		{ "network a 10.0.0.0/8\nnetwork a ::/0\n",
		    "t.policy:2: network 'a' declared twice" },
		{ "network A 10.0.0.0/8\n", "bad network name 'A'" },
		{ "network a 10.0.0.0/8, ::/0\n",
		    "t.policy:1: 'network' needs NAME CIDR" },
		{ "allow admin apps.read /x hours=8:00-18:00\n",
		    "t.policy:1: bad hours= '8:00-18:00' (HH:MM-HH:MM, UTC)" },
		{ "allow admin apps.read /x hours=08:00-08:00\n",
		    "is an empty window" },
		{ "allow admin apps.read /x hours=08:60-09:00\n",
		    "bad hours=" },
		{ "allow admin apps.read /x hours=24:00-02:00\n",
		    "bad hours=" },
		{ "allow admin apps.read /x days=mon-fry\n",
		    "t.policy:1: bad day 'mon-fry'" },
		{ "allow admin apps.read /x days=\n", "days= has no value" },
		{ "allow admin apps.read /x when=now\n",
		    "unknown condition 'when='" },
		{ "allow admin apps.read /x ownr\n",
		    "unknown condition 'ownr'" },
		{ "allow admin apps.read /x owner owner\n",
		    "'owner' given twice" },
		{ "allow admin apps.read /x scope=a scope=b\n",
		    "scope= given twice" },
		{ "allow admin apps.read /x scope=a,,b\n", "bad scope= list" },
		{ "allow admin,,developer apps.read /x\n", "bad role list" },
		{ "permit admin apps.read /x\n",
		    "t.policy:1: unknown statement 'permit'" },
		{ "allow admin apps.read /x\nversion 1\n",
		    "t.policy:2: 'version' must come first" },
		{ "version 2\n", "unsupported version" },
	};
	struct policy *p;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = (struct policy *)&err; /* must be reset to NULL */
		err[0] = '\0';
		if (policy_load_string(&p, "t.policy", cases[i].text, err) !=
		    APP_EPOLICY)
			fail_msg("accepted: %s", cases[i].text);
		assert_null(p);
		if (strstr(err, cases[i].message) == NULL)
			fail_msg("%s: got '%s', want '%s'", cases[i].text, err,
			    cases[i].message);
	}
}

static void
test_parse_limits_and_files(void **state)
{
	char dir[] = "/tmp/sr-policy-XXXXXX", path[512], err[512];
	struct policy *p;
	char *text;
	FILE *f;

	(void)state;
	/* A line over the limit names its line. */
	text = malloc(POLICY_LINE_MAX + 64);
	assert_non_null(text);
	snprintf(text, 64, "# ok\nallow admin apps.read /");
	memset(text + strlen(text), 'a', POLICY_LINE_MAX);
	text[POLICY_LINE_MAX + 20] = '\0';
	assert_int_equal(policy_load_string(&p, "t", text, err), APP_EPOLICY);
	assert_non_null(strstr(err, "t:2: line longer than 4096 bytes"));
	free(text);
	/* Files: missing, a folder, a NUL byte, and a good one. */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/absent", dir);
	assert_int_equal(policy_load_file(&p, path, err), -ENOENT);
	assert_null(p);
	assert_non_null(strstr(err, "absent: "));
	assert_int_equal(policy_load_file(&p, dir, err), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(path, sizeof(path), "%s/nul.policy", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("allow admin apps.read /x\n\0\n", 1, 27, f);
	fclose(f);
	assert_int_equal(policy_load_file(&p, path, err), APP_EPOLICY);
	assert_non_null(strstr(err, "NUL byte"));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("version 1\r\nallow admin apps.read /x\r\n", f);
	fclose(f);
	assert_int_equal(policy_load_file(&p, path, err), 0);
	assert_int_equal(policy_rule_count(p), 1);
	assert_true(decide(p, AD, "a", NULL, "10.0.0.1", WED_NOON, "apps.read",
	    "/x", NULL, NULL));
	policy_free(p);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_is_the_file),
		cmocka_unit_test(test_matrix_covers_every_action),
		cmocka_unit_test(test_default_matrix),
		cmocka_unit_test(test_default_attributes),
		cmocka_unit_test(test_deny_wins_and_default_deny),
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_time_windows),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_resource_globs),
		cmocka_unit_test(test_glob_no_blowup),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_vocabulary),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_limits_and_files),
	};

	return cmocka_run_group_tests_name(
	    "appliance/policy", tests, NULL, NULL);
}
