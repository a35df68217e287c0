/*
 * tools/sr-audit.c: the auditor's command for the audit log:
 *   sr-audit verify [--dir D] [--pubkey F]...  is the log intact?
 *   sr-audit query  [--dir D] [--key K] [--actor A] [--action X]
 *                   [--since T] [--until T] [--checkpoints]
 *   sr-audit pubkey [--state-dir S] [--uri U] [--key-id ID]
 * verify and query read the files only (appliance/audit.h) and never
 * change them; pubkey prints the checkpoint key's public key (PEM) from
 * the keystore, the way sr-keys reaches it, and never anything secret.
 * Exit status: 0 intact / query ran, 1 tampering found or error, 2 usage.
 * The log holds no secret, so printing its lines is safe.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/audit_impl.h"
#include "tools/ks_open.h"

#define DEFAULT_DIR "build/state/audit"
#define DEFAULT_STATE "build/state"
#define CKPT_KEY_NAME "audit-checkpoint" /* the daemon's signing key */

static const char usage_text[] =
    "usage: sr-audit verify [--dir D] [--pubkey F]...\n"
    "       sr-audit query [--dir D] [--key K] [--actor A] [--action X]\n"
    "                      [--since T] [--until T] [--checkpoints]\n"
    "       sr-audit pubkey [--state-dir S] [--uri U] [--key-id ID]\n"
    "\n"
    "verify   check every line's hash, the hash chain across the day\n"
    "         files, every checkpoint's signature, and that the log is\n"
    "         not cut before its last signed checkpoint, which must cover\n"
    "         it up to its last checkpoint. Names the file and line of\n"
    "         the first problem; exit 0 only when intact.\n"
    "query    print the lines that match every filter given, oldest\n"
    "         first.\n"
    "pubkey   print the checkpoint key's public key (PEM) from the\n"
    "         keystore, for verify --pubkey, and its key_id (ID.vN) on\n"
    "         stderr; with the daemon stopped.\n"
    "\n"
    "--dir D        the audit folder (default $SR_AUDIT_DIR, else " DEFAULT_DIR
    ")\n"
    "--pubkey F     trusted checkpoint public key (PEM); give it once per\n"
    "               key the log was signed with (after the checkpoint\n"
    "               key was replaced: the old and the new; at most 16).\n"
    "               Each checkpoint's key_id is matched to one of them;\n"
    "               a checkpoint none of them verifies fails, naming its\n"
    "               line and key_id. Default: the checkpoint-key-<id>.pub\n"
    "               files beside the log\n"
    "--key K        lines whose key is K, or on K: resource K,\n"
    "               /api/keys/K or under it\n"
    "--actor A      actor is A (A* for a prefix)\n"
    "--action X     action is X (X* for a prefix, e.g. 'key.*')\n"
    "--since T      at or after T (UTC: 2025-06-01, 2025-06-01T12:00:00Z,\n"
    "               or Unix seconds)\n"
    "--until T      before T\n"
    "--checkpoints  include checkpoint lines\n"
    "--state-dir S  the daemon's state folder (default " DEFAULT_STATE ")\n"
    "--uri U        the HSM (PKCS#11 URI); default: the SoftHSM2 token\n"
    "               under S, as sr-keys\n"
    "--key-id ID    that signing key's current version, or ID.vN for\n"
    "               version N (a checkpoint's key_id); default: the\n"
    "               active key named " CKPT_KEY_NAME "\n";

enum {
	O_DIR = 1,
	O_PUBKEY,
	O_KEY,
	O_ACTOR,
	O_ACTION,
	O_SINCE,
	O_UNTIL,
	O_CKPT,
	O_STATE,
	O_URI,
	O_KEYID,
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
	{ "state-dir", required_argument, NULL, O_STATE },
	{ "uri", required_argument, NULL, O_URI },
	{ "key-id", required_argument, NULL, O_KEYID },
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
cmd_verify(const char *dir, const char *const *pubkeys, size_t npubkeys)
{
	struct audit_verify_result r;
	int rc = audit_verify_keys(dir, pubkeys, npubkeys, &r);

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

/* The id of the active signing key named CKPT_KEY_NAME, into @p id. */
static int
find_key(struct ks *ks, struct ks_reply *r, char *id)
{
	struct ks_meta m;
	int rc = ks_find_named(ks, KS_KIND_SIGNING, CKPT_KEY_NAME, r, &m);

	if (rc == 0 && m.state != KS_STATE_ACTIVE)
		rc = KS_ENOTFOUND;
	if (rc == 0)
		memcpy(id, m.id, KS_ID_LEN + 1);
	return rc;
}

static int
cmd_pubkey(const char *state, const char *uri, const char *key_id)
{
	struct ks_request *q = calloc(1, sizeof(*q));
	struct ks_reply *r = calloc(1, sizeof(*r));
	struct p11_ctx *ctx = NULL;
	struct ks *ks = NULL;
	char id[KS_ID_LEN + 1] = "", pem[256], name[KS_VERSION_NAME_MAX];
	uint32_t version = 0;
	int rc = 1, e = 0, lockfd = -1;

	if (key_id != NULL && ks_version_parse(key_id, id, &version) != 0) {
		free(q);
		free(r);
		return usage("--key-id: not a key id (ID or ID.vN)");
	}
	if (q == NULL || r == NULL) {
		fprintf(stderr, "sr-audit: %s\n", sr_strerror(-ENOMEM));
		goto out;
	}
	sr_log_init(SR_LOG_WARN, "sr-audit");
	if (tool_ks_open("sr-audit", state, uri, 0, &ctx, &ks, &lockfd) != 0)
		goto out;
	if (key_id == NULL)
		e = find_key(ks, r, id);
	if (e == 0) {
		ks_request_init(q, KS_OP_PUBLIC);
		memcpy(q->u.key.id, id, sizeof(q->u.key.id));
		q->u.key.version = version;
		ks_reply_init(r);
		e = ks_call(ks, q, r);
	}
	if (e != 0) {
		fprintf(stderr, "sr-audit: %s %s: %s\n",
		    key_id != NULL ? "key" : "no active signing key named",
		    key_id != NULL ? key_id : CKPT_KEY_NAME, sr_strerror(e));
		goto out;
	}
	fwrite(pem, 1, audit__pem_encode(r->material, pem), stdout);
	if (fflush(stdout) != 0) {
		perror("sr-audit: stdout");
		goto out;
	}
	ks_version_name(name, id, r->meta.version);
	fprintf(stderr,
	    "checkpoint key %s (the key_id of the checkpoints it signed)\n",
	    name);
	rc = 0;
out:
	ks_close(ks);
	p11_close(ctx);
	if (lockfd >= 0)
		close(lockfd);
	free(q);
	free(r);
	return rc;
}

int
main(int argc, char **argv)
{
	struct audit_query q;
	const char *dir = getenv("SR_AUDIT_DIR"), *cmd;
	const char *pubkeys[AUDIT_VERIFY_KEYS_MAX];
	size_t npubkeys = 0;
	const char *state = DEFAULT_STATE, *uri = NULL, *key_id = NULL;
	char err[256];
	uint64_t matched = 0;
	int c, verify, keycmd, rc;

	if (argc < 2)
		return usage(NULL);
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	verify = strcmp(cmd, "verify") == 0;
	keycmd = strcmp(cmd, "pubkey") == 0;
	if (!verify && !keycmd && strcmp(cmd, "query") != 0)
		return usage("unknown command (verify, query or pubkey)");
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
		if (!verify && !keycmd && c == O_PUBKEY)
			return usage("query does not take --pubkey");
		if (keycmd != (c == O_STATE || c == O_URI || c == O_KEYID))
			return usage(keycmd ? "pubkey takes only --state-dir, "
			                      "--uri and --key-id"
			                    : "--state-dir, --uri and --key-id "
			                      "are for pubkey");
		switch (c) {
		case O_DIR:
			dir = optarg;
			break;
		case O_PUBKEY:
			if (npubkeys == AUDIT_VERIFY_KEYS_MAX)
				return usage("--pubkey: at most 16 keys");
			pubkeys[npubkeys++] = optarg;
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
		case O_STATE:
			state = optarg;
			break;
		case O_URI:
			uri = optarg;
			break;
		case O_KEYID:
			key_id = optarg;
			break;
		}
	}
	if (optind < argc)
		return usage("unexpected argument");
	if (verify)
		return cmd_verify(dir, pubkeys, npubkeys);
	if (keycmd)
		return cmd_pubkey(state, uri, key_id);
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
