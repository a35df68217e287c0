/*
 * appliance/api_matrix.c: the expected answer of every role on every
 * management route under a policy file, computed by the same evaluator the
 * daemon runs, from the daemon's own route table: what the generated
 * authorization test checks real HTTPS answers against (through the
 * sr-policy tool), and what an operator reads to review a policy edit.
 *
 * It must never contact the keystore or the network: the policy file and
 * the route table are all it reads.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "appliance/api_impl.h"

#define MATRIX_ID "zzzzzzzzzzzz" /* a well-formed id that never exists */

/* @p pattern with "{id}" replaced by MATRIX_ID. */
static void
route_path(const char *pattern, char *out, size_t cap)
{
	const char *brace = strstr(pattern, "{id}");

	if (brace == NULL)
		snprintf(out, cap, "%s", pattern);
	else
		snprintf(out, cap, "%.*s%s%s", (int)(brace - pattern), pattern,
		    MATRIX_ID, brace + 4);
}

int
api_authz_matrix(const char *policy_file, FILE *out, char err[512])
{
	const struct api_route *rt;
	struct policy *p = NULL;
	struct policy_subject s = { 0 };
	struct policy_request q = { 0 };
	struct policy_decision d;
	struct sockaddr_in sin = { 0 };
	char path[256];
	size_t i, n;
	unsigned role;
	int rc;

	rc = policy_load_file(&p,
	    policy_file != NULL ? policy_file : "appliance/policy.default",
	    err);
	if (rc != 0)
		return rc;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s.id = "matrix-caller";
	s.addr = (const struct sockaddr *)&sin;
	s.now = time(NULL);
	rt = api_route_table(&n);
	for (i = 0; i < n; i++) {
		if (rt[i].public)
			continue;
		route_path(rt[i].pattern, path, sizeof(path));
		for (role = 0; role < POLICY_ROLE_COUNT; role++) {
			s.roles = 1u << role;
			q.action = rt[i].action;
			q.resource = path;
			q.owner = NULL;
			if (policy_evaluate(p, &s, &q, &d) != 0)
				d.allow = 0;
			fprintf(out, "%s %s %s %s %s\n",
			    policy_role_name(1u << role), rt[i].method, path,
			    rt[i].action, d.allow ? "allow" : "deny");
		}
	}
	policy_free(p);
	return ferror(out) ? -EIO : 0;
}
