/*
 * tools/sr-policy.c: the access policy at the operator's desk.
 *   sr-policy check  [FILE]   load a policy file as the daemon would and
 *                             say how many rules it has, or where it is
 *                             wrong (FILE:LINE: problem)
 *   sr-policy matrix [FILE]   every role against every management route:
 *                             "ROLE METHOD PATH ACTION allow|deny"
 *   sr-policy decide FILE ROLES ACTION PATH [from=ADDR] [scope=S] [owner]
 *                             one request: allow or deny and the deciding
 *                             line of FILE (what the audit trail cites)
 * Without FILE, check and matrix use the policy built into the program
 * (appliance/policy.default when it was built), as strongroomd does
 * without policy_file. Exit status: 0, 1 when the file does not load, 2
 * for a usage error.
 *
 * It must never change a file: it reads the policy and prints.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "appliance/api.h"
#include "appliance/policy.h"

static const char usage_text[] =
    "usage: sr-policy check [FILE]\n"
    "       sr-policy matrix [FILE]\n"
    "       sr-policy decide FILE ROLES ACTION PATH [from=ADDR] [scope=S] "
    "[owner]\n"
    "check   load FILE (default: the built-in policy) as strongroomd\n"
    "        would and print its rule count, or FILE:LINE: problem\n"
    "matrix  print ROLE METHOD PATH ACTION allow|deny for every role and\n"
    "        every management route that needs a caller; {id} is written\n"
    "        as zzzzzzzzzzzz, a key that does not exist\n"
    "decide  one request by comma-separated ROLES for ACTION on PATH, from\n"
    "        ADDR (default 127.0.0.1), holding scope S, on a resource the\n"
    "        caller owns (owner): allow|deny and the deciding line\n";

static int
cmd_check(const char *file)
{
	struct policy *p = NULL;
	char err[512];
	int rc = file != NULL ? policy_load_file(&p, file, err)
	                      : policy_load_default(&p, err);

	if (rc != 0) {
		fprintf(stderr, "sr-policy: %s\n", err);
		return 1;
	}
	printf("%s%s: %zu rules, loads\n",
	    file != NULL ? file : POLICY_DEFAULT_NAME,
	    file != NULL ? "" : " (built in)", policy_rule_count(p));
	policy_free(p);
	return 0;
}

/* ROLES ACTION PATH [from=ADDR] [scope=S] [owner] against FILE. */
static int
cmd_decide(const char *file, int argc, char **argv)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	struct policy_subject s = { "sr-policy", 0, NULL, NULL, time(NULL) };
	struct policy_request q = { argv[1], argv[2], NULL };
	struct policy_decision d;
	struct policy *p = NULL;
	char roles[256], *tok, *save = NULL, err[512];
	const char *from = "127.0.0.1";
	int i, bit;

	for (i = 3; i < argc; i++) {
		if (strncmp(argv[i], "from=", 5) == 0)
			from = argv[i] + 5;
		else if (strncmp(argv[i], "scope=", 6) == 0)
			s.scopes = argv[i] + 6;
		else if (strcmp(argv[i], "owner") == 0)
			q.owner = s.id;
		else
			return fprintf(stderr, "sr-policy: %s?\n", argv[i]), 2;
	}
	snprintf(roles, sizeof(roles), "%s", argv[0]);
	for (tok = strtok_r(roles, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if ((bit = policy_role_from_name(tok)) <= 0)
			return fprintf(stderr, "sr-policy: no role %s\n", tok),
			       2;
		s.roles |= (unsigned)bit;
	}
	if (inet_pton(AF_INET, from, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, from, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		return fprintf(stderr, "sr-policy: bad address %s\n", from), 2;
	s.addr = (const struct sockaddr *)&ss;
	if (policy_load_file(&p, file, err) != 0) {
		fprintf(stderr, "sr-policy: %s\n", err);
		return 1;
	}
	if (policy_evaluate(p, &s, &q, &d) != 0)
		printf("deny (malformed request: unknown action or path)\n");
	else if (d.line == 0)
		printf("%s (default deny)\n", d.allow ? "allow" : "deny");
	else
		printf("%s (%s:%u)\n", d.allow ? "allow" : "deny", d.source,
		    d.line);
	policy_free(p);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *file = argc > 2 ? argv[2] : NULL;
	char err[512];

	if (argc >= 6 && strcmp(argv[1], "decide") == 0)
		return cmd_decide(file, argc - 3, argv + 3);
	if (argc < 2 || argc > 3) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(file);
	if (strcmp(argv[1], "matrix") == 0) {
		if (api_authz_matrix(file, stdout, err) != 0) {
			fprintf(stderr, "sr-policy: %s\n", err);
			return 1;
		}
		return 0;
	}
	fputs(usage_text, stderr);
	return 2;
}
