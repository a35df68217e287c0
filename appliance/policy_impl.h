/*
 * appliance/policy_impl.h: the in-memory form of a loaded policy, shared
 * by policy.c (vocabulary and evaluation) and policy_parse.c (the file
 * format). Nothing outside those two files may include it; everyone else
 * uses appliance/policy.h.
 */
#ifndef SR_APPLIANCE_POLICY_IMPL_H
#define SR_APPLIANCE_POLICY_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "appliance/cidr.h"
#include "appliance/policy.h"
#include "lib/sr.h"

/* A resource glob, compiled: one token per pattern position. */
#define POLICY_GLOB_MAX 256
enum policy_glob_tok {
	POLICY_GLOB_CHAR = 0, /* the byte in ch[] */
	POLICY_GLOB_STAR,     /* "*": any run of bytes without '/' */
	POLICY_GLOB_ANY,      /* "**": any run of bytes */
};

struct policy_glob {
	uint8_t kind[POLICY_GLOB_MAX];
	char ch[POLICY_GLOB_MAX];
	uint16_t count;
	/* The pattern ends in '/' and "**": it also matches the path
	 * without that tail (the pattern for everything under /api/apps
	 * matches /api/apps itself). */
	uint8_t tail_any;
};

struct policy_rule {
	unsigned line;
	int deny;
	unsigned roles;   /* POLICY_ROLE_* bits */
	uint64_t actions; /* bit i = policy_action_name(i) */
	struct policy_glob *resources;
	size_t resource_count;
	/* Conditions; each absent one always holds. */
	int has_from;
	struct cidr_list from;
	char **scopes; /* any one of them must be held */
	size_t scope_count;
	uint8_t days; /* bit 0 = Sunday .. bit 6 = Saturday; 0 = any day */
	int has_hours;
	unsigned start_min, end_min; /* [start, end) in minutes of a UTC day;
	                                start > end wraps past midnight */
	int owner; /* the resource's owner must be the subject */
};

struct policy {
	char *name;
	struct policy_rule *rules;
	size_t rule_count;
};

/* policy.c: the action index for a name, or -1. */
int policy__action_index(const char *name);

/* policy.c: compile @p pattern; 0 or -EINVAL with @p why set. */
int policy__glob_compile(
    struct policy_glob *g, const char *pattern, const char **why);

/* policy.c: whether @p path matches @p g. */
int policy__glob_match(const struct policy_glob *g, const char *path);

/* policy.c: release what one rule owns. */
void policy__rule_free(struct policy_rule *r);

#endif /* SR_APPLIANCE_POLICY_IMPL_H */
