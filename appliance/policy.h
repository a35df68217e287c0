/*
 * appliance/policy.h: the access policy: who may do what, where, from
 * where and when. One policy file (format in docs/access.md, the shipped
 * one in appliance/policy.default) maps roles to permitted actions on
 * resources, with attribute conditions: source network, key scope, UTC time
 * window and resource ownership.
 *
 * Decisions: default deny. A request is allowed only when at least one
 * `allow` rule matches it and no `deny` rule does; a matching `deny` wins
 * wherever it stands in the file. The decision names the rule that decided
 * it (its line), so the audit log can say why.
 *
 * Vocabulary: the roles and the actions are fixed by the product (the
 * tables behind policy_role_name() and policy_action_name()); a policy
 * naming anything else does not load, so a typo cannot silently grant or
 * remove access. Resources are request paths matched by globs.
 *
 * Caveats: the resource passed to policy_evaluate() must be the decoded,
 * normalised request path without its query string; a path with "//",
 * "/./" or "/../" is refused (-EINVAL, deny) rather than matched, so a
 * router that forgot to normalise fails closed.
 *
 * Threading: a loaded policy is immutable. policy_evaluate() may run on any
 * number of threads at once; reload by loading a new policy and swapping
 * the pointer the loops read (the old one is freed once no loop uses it).
 */
#ifndef SR_APPLIANCE_POLICY_H
#define SR_APPLIANCE_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

/* Roles, as bits of policy_subject.roles. */
enum policy_role {
	POLICY_ROLE_SECURITY_OFFICER = 1u << 0,
	POLICY_ROLE_ADMIN = 1u << 1,
	POLICY_ROLE_DEVELOPER = 1u << 2,
	POLICY_ROLE_AUDITOR = 1u << 3,
	POLICY_ROLE_FACTORY = 1u << 4,
	POLICY_ROLE_SERVICE = 1u << 5,
	POLICY_ROLE_DEVICE = 1u << 6,
};
#define POLICY_ROLE_COUNT 7

/* The longest line the policy file may have, and the largest file. */
#define POLICY_LINE_MAX 4096
#define POLICY_FILE_MAX (1024 * 1024)

struct policy; /* opaque; a loaded policy */

/* Who is asking. Every pointer is borrowed for the duration of the call. */
struct policy_subject {
	const char *id;     /* user, app or device id; NULL when none */
	unsigned roles;     /* POLICY_ROLE_* bits the caller holds */
	const char *scopes; /* space-separated scopes of the key or token
	                       ("inference keys:read"); NULL = none */
	const struct sockaddr *addr; /* source address; NULL = unknown */
	time_t now;                  /* the request's time (UTC seconds) */
};

/* What is asked. Every pointer is borrowed for the duration of the call. */
struct policy_request {
	const char *action;   /* one of policy_action_name(), "apps.create" */
	const char *resource; /* normalised path, "/api/apps/a1/keys" */
	const char *owner;    /* id owning the resource (the app's developer,
	                         the user themself); NULL = none/not known */
};

/* The answer. */
struct policy_decision {
	int allow;          /* 1 allowed, 0 denied */
	unsigned line;      /* the deciding rule's line; 0 = default deny */
	const char *source; /* the policy's name (file path), owned by the
	                       policy and valid until policy_free() */
};

/**
 * @brief Load a policy file.
 * @param[out] out   the new policy on success, NULL on failure.
 * @param[in]  path  read once, not kept open; copied as the policy's name.
 * @param[out] err   on failure "PATH:LINE: problem" (or "PATH: problem"
 *                   when the file cannot be read); may be NULL.
 * @return 0; APP_EPOLICY for a syntax or vocabulary error (show @p err to
 *         the operator; keep running on the old policy, or refuse to start
 *         if there is none); -errno when the file cannot be read (-ENOENT,
 *         -EACCES, -EFBIG over POLICY_FILE_MAX); -ENOMEM.
 * @note Any thread. The caller owns *out and frees it with policy_free().
 */
int policy_load_file(struct policy **out, const char *path, char err[512]);

/* What the built-in policy is called in messages and decisions: the file
 * it is compiled from, whose line numbers it keeps. */
#define POLICY_DEFAULT_NAME "appliance/policy.default"

/**
 * @brief Load the shipped policy, appliance/policy.default as it was when
 * the program was built (compiled in: no file is read, so the working
 * folder does not matter). As policy_load_string(); it fails only with
 * -ENOMEM (the build checks the text: tests/unit/appliance/test_policy.c).
 */
int policy_load_default(struct policy **out, char err[512]);

/**
 * @brief Load a policy from text; as policy_load_file(), with @p name
 * standing for the path in messages and decisions.
 * @param[in] text  NUL-terminated; not kept.
 */
int policy_load_string(
    struct policy **out, const char *name, const char *text, char err[512]);

/**
 * @brief Decide one request.
 * @param[out] d  always filled; on any error it is a default deny.
 * @return 0 (look at d->allow); -EINVAL when the request itself is bad: an
 *         unknown action, or a resource that is not a normalised absolute
 *         path (a routing bug: answer 403 and log it).
 * @note Any thread; no allocation; work linear in the number of rules.
 */
int policy_evaluate(const struct policy *p, const struct policy_subject *s,
    const struct policy_request *r, struct policy_decision *d);

/** @brief The number of rules loaded (allow and deny). */
size_t policy_rule_count(const struct policy *p);

/** @brief Free a policy; safe on NULL. Nothing may evaluate it any more. */
void policy_free(struct policy *p);

/**
 * @brief The actions the product knows, for tests and tooling: @p i from 0
 * to policy_action_count() - 1. Names are "noun.verb" ("models.register").
 * @return a static string, or NULL when @p i is out of range.
 */
size_t policy_action_count(void);
const char *policy_action_name(size_t i);

/**
 * @brief Role names: "security-officer", "admin", "developer", "auditor",
 * "factory", "service", "device".
 * @param[in] role  one POLICY_ROLE_* bit.
 * @return a static string, or NULL for anything but a single known bit.
 */
const char *policy_role_name(unsigned role);

/**
 * @brief The POLICY_ROLE_* bit for a role name (exact, lower case).
 * @return the bit (> 0), or -EINVAL for an unknown name.
 */
int policy_role_from_name(const char *name);

/**
 * @brief Whether the space-separated @p scopes holds @p scope exactly.
 * @return 1 or 0 (0 for NULL @p scopes).
 */
int policy_scope_has(const char *scopes, const char *scope);

/**
 * @brief Keep in the space-separated @p scopes only those that @p allowed
 * also holds, in place, in their order, single-spaced ("" when none): a
 * token's scopes narrowed to what its client holds now.
 * @note Any thread; @p allowed must not overlap @p scopes.
 */
void policy_scopes_keep(char *scopes, const char *allowed);

#endif /* SR_APPLIANCE_POLICY_H */
