/*
 * tools/sr-policy.c: the access policy at the operator's desk.
 *   sr-policy check  [FILE]   load a policy file as the daemon would and
 *                             say how many rules it has, or where it is
 *                             wrong (FILE:LINE: problem)
 *   sr-policy matrix [FILE]   every role against every management route:
 *                             "ROLE METHOD PATH ACTION allow|deny"
 * FILE defaults to the shipped appliance/policy.default. Exit status: 0,
 * 1 when the file does not load, 2 for a usage error.
 *
 * It must never change a file: it reads the policy and prints.
 */
#include <stdio.h>
#include <string.h>

#include "appliance/api.h"
#include "appliance/policy.h"

static const char usage_text[] =
    "usage: sr-policy check [FILE]\n"
    "       sr-policy matrix [FILE]\n"
    "check   load FILE (default appliance/policy.default) as strongroomd\n"
    "        would and print its rule count, or FILE:LINE: problem\n"
    "matrix  print ROLE METHOD PATH ACTION allow|deny for every role and\n"
    "        every management route that needs a caller; {id} is written\n"
    "        as zzzzzzzzzzzz, a key that does not exist\n";

static int
cmd_check(const char *file)
{
	struct policy *p = NULL;
	char err[512];
	int rc = policy_load_file(&p, file, err);

	if (rc != 0) {
		fprintf(stderr, "sr-policy: %s\n", err);
		return 1;
	}
	printf("%s: %zu rules, loads\n", file, policy_rule_count(p));
	policy_free(p);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *file = argc > 2 ? argv[2] : "appliance/policy.default";
	char err[512];

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
