/*
 * tools/sr-audit.c: the auditor's command for the audit log:
 *   sr-audit verify [--dir D] [--pubkey F]   is the log intact?
 *   sr-audit query  [--dir D] [--key K] [--actor A] [--action X]
 *                   [--since T] [--until T] [--checkpoints]
 * Both read the files only (appliance/audit.h) and never change them.
 * Exit status: 0 intact / query ran, 1 tampering found or error, 2 usage.
 * The log holds no secret, so printing its lines is safe.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/audit.h"

#define DEFAULT_DIR "build/state/audit"

static const char usage_text[] =
    "usage: sr-audit verify [--dir D] [--pubkey F]\n"
    "       sr-audit query [--dir D] [--key K] [--actor A] [--action X]\n"
    "                      [--since T] [--until T] [--checkpoints]\n"
    "\n"
    "verify   check every line's hash, the hash chain across the day\n"
    "         files, every checkpoint's signature, and that the log is\n"
    "         not cut before its last signed checkpoint, which must cover\n"
    "         it up to its last checkpoint. Names the file and line of\n"
    "         the first problem; exit 0 only when intact.\n"
    "query    print the lines that match every filter given, oldest\n"
    "         first.\n"
    "\n"
    "--dir D        the audit folder (default $SR_AUDIT_DIR, else " DEFAULT_DIR
    ")\n"
    "--pubkey F     trusted checkpoint public key (PEM); default: the\n"
    "               checkpoint-key-<id>.pub files beside the log\n"
    "--key K        lines whose key is K, or on K: resource K,\n"
    "               /api/keys/K or under it\n"
    "--actor A      actor is A (A* for a prefix)\n"
    "--action X     action is X (X* for a prefix, e.g. 'key.*')\n"
    "--since T      at or after T (UTC: 2025-06-01, 2025-06-01T12:00:00Z,\n"
    "               or Unix seconds)\n"
    "--until T      before T\n"
    "--checkpoints  include checkpoint lines\n";

enum {
	O_DIR = 1,
	O_PUBKEY,
	O_KEY,
	O_ACTOR,
	O_ACTION,
	O_SINCE,
	O_UNTIL,
	O_CKPT,
	O_HELP
};

static const struct option options[] = {
	{ "dir", required_argument, NULL, O_DIR },
	{ "pubkey", required_argument, NULL, O_PUBKEY },
	{ "key", required_argument, NULL, O_KEY },
	{ "actor", required_argument, NULL, O_ACTOR },
	{ "action", required_argument, NULL, O_ACTION },
	{ "since", required_argument, NULL, O_SINCE },
	{ "until", required_argument, NULL, O_UNTIL },
	{ "checkpoints", no_argument, NULL, O_CKPT },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int
usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "sr-audit: %s\n", why);
	fputs(usage_text, stderr);
	return 2;
}

static int
cmd_verify(const char *dir, const char *pubkey)
{
	struct audit_verify_result r;
	int rc = audit_verify(dir, pubkey, &r);

	if (rc == -EBADMSG) {
		printf("TAMPERED %s/%s:%llu: %s\n", dir, r.file,
		    (unsigned long long)r.line, r.problem);
		printf("checked before the problem: %llu lines, %llu "
		       "checkpoints\n",
		    (unsigned long long)r.lines,
		    (unsigned long long)r.checkpoints);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "sr-audit: %s\n",
		    r.problem[0] ? r.problem : sr_strerror(rc));
		return 1;
	}
	printf("intact: %llu files, %llu lines (seq %llu..%llu), %llu "
	       "signed checkpoints verified\n",
	    (unsigned long long)r.files, (unsigned long long)r.lines,
	    (unsigned long long)r.first_seq, (unsigned long long)r.last_seq,
	    (unsigned long long)r.checkpoints);
	if (r.unsigned_checkpoints > 0)
		printf("warning: %llu checkpoints were written unsigned (the "
		       "signer failed)\n",
		    (unsigned long long)r.unsigned_checkpoints);
	if (r.uncovered > 0)
		printf("note: the last %llu lines are chained but not yet "
		       "under a signed checkpoint\n",
		    (unsigned long long)r.uncovered);
	return 0;
}

int
main(int argc, char **argv)
{
	struct audit_query q;
	const char *dir = getenv("SR_AUDIT_DIR"), *pubkey = NULL, *cmd;
	char err[256];
	uint64_t matched = 0;
	int c, verify, rc;

	if (argc < 2)
		return usage(NULL);
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	verify = strcmp(cmd, "verify") == 0;
	if (!verify && strcmp(cmd, "query") != 0)
		return usage("unknown command (verify or query)");
	if (dir == NULL || dir[0] == '\0')
		dir = DEFAULT_DIR;
	memset(&q, 0, sizeof(q));
	optind = 2;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == O_HELP) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (c == '?')
			return usage(NULL);
		if (verify && c != O_DIR && c != O_PUBKEY)
			return usage("verify takes only --dir and --pubkey");
		if (!verify && c == O_PUBKEY)
			return usage("query does not take --pubkey");
		switch (c) {
		case O_DIR:
			dir = optarg;
			break;
		case O_PUBKEY:
			pubkey = optarg;
			break;
		case O_KEY:
			q.key = optarg;
			break;
		case O_ACTOR:
			q.actor = optarg;
			break;
		case O_ACTION:
			q.action = optarg;
			break;
		case O_SINCE:
			q.since = optarg;
			break;
		case O_UNTIL:
			q.until = optarg;
			break;
		case O_CKPT:
			q.with_checkpoints = 1;
			break;
		}
	}
	if (optind < argc)
		return usage("unexpected argument");
	if (verify)
		return cmd_verify(dir, pubkey);
	rc = audit_query_run(dir, &q, stdout, &matched, err);
	if (rc != 0) {
		fprintf(stderr, "sr-audit: %s\n", err);
		return rc == -EINVAL ? 2 : 1;
	}
	if (fflush(stdout) != 0) {
		perror("sr-audit: stdout");
		return 1;
	}
	fprintf(stderr, "%llu matching lines\n", (unsigned long long)matched);
	return 0;
}
