/*
 * tools/sr-keys.c: the local admin command for the keystore. It creates,
 * lists, shows, rotates, suspends, revokes and destroys keys, issues API
 * keys, enrols devices, rotates the root keys and checks the store, all
 * through ks_call() on <state>/keystore, on the HSM sr-p11 would open.
 *
 * It must never print key material, with two exceptions: `apikey` prints a
 * new API key once (only its keyed hash is kept), and `device` prints a
 * device key in hex, which exists for factory debugging. Those two go out
 * with write(2), not through stdio's buffers, and every reply that held a
 * secret is wiped. It never echoes an argument that may be a secret.
 * Errors go to stderr; the exit status is 0, 1 (error) or 2 (usage).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore/keystore.h"
#include "pkcs11/p11.h"
#include "tools/ks_open.h"

#define B62 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#define HOURS_MAX (10 * 365 * 24) /* the keystore's EXPIRING limit */
#define TIME_MAX (100LL * 365 * 86400)

/* Options of the commands; getopt_long returns the index + 1. */
enum {
	O_PARENT,
	O_EXPIRES,
	O_NOT_BEFORE,
	O_SCOPE,
	O_CIDR,
	O_ALL,
	O_VERSION,
	O_REASON,
	O_COMPROMISED,
	O_WITHIN,
	O_COUNT
};
#define B(o) (1u << (o))

static const struct option cmd_options[O_COUNT] = {
	{ "parent", required_argument, NULL, 1 + O_PARENT },
	{ "expires-in", required_argument, NULL, 1 + O_EXPIRES },
	{ "not-before", required_argument, NULL, 1 + O_NOT_BEFORE },
	{ "scope", required_argument, NULL, 1 + O_SCOPE },
	{ "cidr", required_argument, NULL, 1 + O_CIDR },
	{ "all", no_argument, NULL, 1 + O_ALL },
	{ "version", required_argument, NULL, 1 + O_VERSION },
	{ "reason", required_argument, NULL, 1 + O_REASON },
	{ "compromised", no_argument, NULL, 1 + O_COMPROMISED },
	{ "within", required_argument, NULL, 1 + O_WITHIN },
};

/* A command line after parsing, before any conversion. */
struct args {
	const char *cmd;
	char **pos;
	int npos;
	const char *opt[O_COUNT]; /* NULL: not given; "" for a flag */
	const char *cidr[KS_CIDR_MAX];
	int ncidr;
};

/* run() returns 0, a negative code for main() to report, or an exit
 * status after reporting itself. */
struct cmd {
	const char *name;
	const char *synopsis;
	const char *help;
	unsigned opts;
	int min, max;
	enum ks_op op;
	int (*run)(const struct args *a);
};

/* The one request and reply of a run: large, so on the heap. */
static struct ks *ks;
static struct ks_request *req;
static struct ks_reply *rep;

static int
bad(const struct args *a, const char *msg)
{
	fprintf(stderr, "sr-keys: %s: %s\n", a->cmd, msg);
	return 2;
}

/* Decimal digits only, in [min, max]. */
static int
parse_num(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
		return -1;
	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Seconds, or a number with s, m, h or d; 1 s to 100 years. */
static int
parse_time(const char *s, int64_t *out)
{
	static const int64_t mult[] = { 1, 60, 3600, 86400 };
	const char *u;
	char buf[24];
	size_t n = strlen(s);
	int64_t m = 1;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	if ((u = strchr("smhd", buf[n - 1])) != NULL) {
		m = mult[u - "smhd"];
		buf[n - 1] = '\0';
	}
	if (parse_num(buf, 1, TIME_MAX / m, out) != 0)
		return -1;
	*out *= m;
	return 0;
}

static int
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* A key id: exactly KS_ID_LEN base62 characters. */
static int
copy_id(char dst[KS_ID_LEN + 1], const char *s)
{
	if (strlen(s) != KS_ID_LEN || strspn(s, B62) != KS_ID_LEN)
		return -1;
	memcpy(dst, s, KS_ID_LEN + 1);
	return 0;
}

static int
parse_kind(const char *s)
{
	unsigned k;

	for (k = 1; k < KS_KIND_COUNT; k++)
		if (strcmp(s, ks_kind_name(k)) == 0)
			return (int)k;
	return 0;
}

/* ADDR or ADDR/PREFIX, IPv4 or IPv6; host bits must be zero (-2). */
static int
parse_cidr(const char *s, struct ks_cidr *c)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	int64_t prefix, max;
	int i;

	memset(c, 0, sizeof(*c));
	if (n == 0 || n >= sizeof(addr))
		return -1;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, c->addr) == 1)
		c->family = 4;
	else if (inet_pton(AF_INET6, addr, c->addr) == 1)
		c->family = 6;
	else
		return -1;
	max = prefix = c->family == 4 ? 32 : 128;
	if (slash != NULL && parse_num(slash + 1, 0, max, &prefix) != 0)
		return -1;
	c->prefix = (uint8_t)prefix;
	for (i = (int)prefix; i < max; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			return -2;
	return 0;
}

/*
 * Turn the arguments of @p c into the request: 0, or 2 after a message.
 * An id argument is never echoed, in case an API key was pasted.
 */
static int
prepare(const struct cmd *c, const struct args *a)
{
	struct ks_create_req *cr = &req->u.create;
	struct ks_apikey_create_req *ar = &req->u.apikey_create;
	const char *o, *id = c->min > 0 ? a->pos[0] : NULL;
	char *idp = NULL;
	int64_t v = 0, now = (int64_t)time(NULL);
	int i, rc;

	ks_request_init(req, c->op);
	switch (c->op) {
	case KS_OP_CREATE:
		cr->kind = (uint8_t)parse_kind(a->pos[0]);
		if (cr->kind == KS_KIND_DEVICE || cr->kind == KS_KIND_APIKEY ||
		    cr->kind == 0)
			return bad(a, "KIND is app, user, data or signing");
		if (a->pos[1][0] == '\0' ||
		    copy_str(cr->name, KS_NAME_MAX, a->pos[1]) != 0)
			return bad(a, "NAME is 1 to 63 bytes");
		if ((o = a->opt[O_PARENT]) != NULL && copy_id(cr->parent, o))
			return bad(a, "--parent: not a key id");
		if ((o = a->opt[O_NOT_BEFORE]) != NULL &&
		    parse_num(o, 1, INT32_MAX * 4LL, &cr->not_before) != 0)
			return bad(a, "--not-before: Unix seconds");
		/* --expires-in counts from not_before, or from now. */
		if ((o = a->opt[O_EXPIRES]) != NULL && parse_time(o, &v) != 0)
			return bad(a, "--expires-in: seconds or N[smhd]");
		if (o != NULL)
			cr->expires_at =
			    v + (cr->not_before > now ? cr->not_before : now);
		if ((o = a->opt[O_SCOPE]) != NULL &&
		    copy_str(cr->scope, KS_SCOPE_MAX, o) != 0)
			return bad(a, "--scope: at most 511 bytes of JSON");
		for (i = 0; i < a->ncidr; i++)
			if ((rc = parse_cidr(a->cidr[i], &cr->cidrs[i])) != 0)
				return bad(a,
				    rc == -2 ? "--cidr: host bits set"
				             : "--cidr: not ADDR/N");
		break;
	case KS_OP_GET:
		if ((o = a->opt[O_VERSION]) != NULL &&
		    parse_num(o, 1, UINT32_MAX, &v) != 0)
			return bad(a, "--version: a number from 1");
		req->u.key.version = (uint32_t)v;
		/* FALLTHROUGH */
	case KS_OP_ROTATE:
	case KS_OP_SUSPEND:
	case KS_OP_RESUME:
	case KS_OP_DESTROY:
		idp = req->u.key.id;
		break;
	case KS_OP_REVOKE:
		if ((o = a->opt[O_REASON]) == NULL || o[0] == '\0' ||
		    copy_str(req->u.revoke.reason, KS_REASON_MAX, o) != 0)
			return bad(a, "--reason TEXT (1 to 127 bytes) needed");
		req->u.revoke.compromised = a->opt[O_COMPROMISED] != NULL;
		idp = req->u.revoke.id;
		break;
	case KS_OP_LIST:
		if ((req->u.list.kind = (uint8_t)parse_kind(a->pos[0])) == 0)
			return bad(
			    a, "KIND: app user device signing data apikey");
		if ((o = a->opt[O_PARENT]) != NULL &&
		    copy_id(req->u.list.parent, o) != 0)
			return bad(a, "--parent: not a key id");
		req->u.list.limit = KS_LIST_MAX;
		break;
	case KS_OP_EXPIRING:
		v = 72;
		if ((o = a->opt[O_WITHIN]) != NULL &&
		    parse_num(o, 1, HOURS_MAX, &v) != 0)
			return bad(a, "--within: hours, 1 to 87600");
		req->u.expiring.within = v * 3600;
		req->u.expiring.limit = KS_LIST_MAX;
		break;
	case KS_OP_APIKEY_CREATE:
		if ((o = a->opt[O_EXPIRES]) != NULL && parse_time(o, &v) != 0)
			return bad(a, "--expires-in: seconds or N[smhd]");
		ar->expires_at = o != NULL ? now + v : 0;
		if ((o = a->opt[O_SCOPE]) != NULL &&
		    copy_str(ar->scope, KS_SCOPE_MAX, o) != 0)
			return bad(a, "--scope: at most 511 bytes of JSON");
		idp = ar->owner;
		break;
	case KS_OP_DEVICE_KEY:
		o = a->pos[1];
		if (o[0] == '\0' || strspn(o, B62 "._:-") != strlen(o) ||
		    copy_str(req->u.device.serial, KS_SERIAL_MAX, o) != 0)
			return bad(a, "SERIAL: 1 to 63 of A-Z a-z 0-9 . _ : -");
		idp = req->u.device.app;
		break;
	default:
		break;
	}
	if (idp != NULL && copy_id(idp, id) != 0)
		return bad(a, "not a key id (12 letters and digits)");
	return 0;
}

static const char *
fmt_time(int64_t t, const char *zero, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0)
		return zero;
	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "@%lld", (long long)t);
	return buf;
}

/* Text from a record: control bytes and backslashes as \xHH; in a list
 * field also spaces, and "-" for an empty string. */
static void
put_text(const char *s, int field)
{
	const unsigned char *p = (const unsigned char *)s;

	if (field && *p == '\0')
		putchar('-');
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\' ||
		    (field && *p == ' '))
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

/* One line per key: id kind state vN name parent expires. */
static void
print_line(const struct ks_meta *m)
{
	char tb[32];

	printf("%s %s %s v%u ", m->id, ks_kind_name(m->kind),
	    ks_state_name(m->state), m->version);
	put_text(m->name, 1);
	putchar(' ');
	put_text(m->parent, 1);
	printf(" %s\n", fmt_time(m->expires_at, "never", tb));
}

static void
print_kv(const char *key, const char *value)
{
	printf("%s=", key);
	put_text(value, 0);
	putchar('\n');
}

static void
print_meta(const struct ks_meta *m)
{
	char tb[32], net[INET6_ADDRSTRLEN];
	unsigned i, n = 0;

	print_kv("id", m->id);
	print_kv("kind", ks_kind_name(m->kind));
	print_kv("name", m->name);
	print_kv("parent", m->parent);
	print_kv("state", ks_state_name(m->state));
	printf("compromised=%s\ndecrypt_only=%s\n",
	    m->flags & KS_FLAG_COMPROMISED ? "yes" : "no",
	    m->flags & KS_FLAG_DECRYPT_ONLY ? "yes" : "no");
	printf("version=%u\ncurrent_version=%u\nrecord_version=%llu\n",
	    m->version, m->current_version,
	    (unsigned long long)m->record_version);
	print_kv("origin", m->origin);
	printf("created_at=%s\n", fmt_time(m->created_at, "-", tb));
	printf("not_before=%s\n", fmt_time(m->not_before, "-", tb));
	printf("expires_at=%s\n", fmt_time(m->expires_at, "never", tb));
	printf("updated_at=%s\n", fmt_time(m->updated_at, "-", tb));
	printf("dek_version=%u\nroot_version=%u\n", m->dek_version,
	    m->root_version);
	print_kv("scope", m->scope);
	fputs("cidrs=", stdout);
	for (i = 0; i < KS_CIDR_MAX; i++)
		if (m->cidrs[i].family != 0 &&
		    inet_ntop(m->cidrs[i].family == 4 ? AF_INET : AF_INET6,
		        m->cidrs[i].addr, net, sizeof(net)) != NULL)
			printf(
			    "%s%s/%u", n++ ? "," : "", net, m->cidrs[i].prefix);
	putchar('\n');
	print_kv("reason", m->reason);
	if (m->kind == KS_KIND_APIKEY) {
		print_kv("apikey_prefix", m->apikey_prefix);
		printf("last_used=%s\n", fmt_time(m->last_used, "-", tb));
	}
	if (m->serial[0] != '\0')
		print_kv("serial", m->serial);
}

static void
print_stats(const struct ks_stats *s)
{
	unsigned k;

	printf("appliance_id=%s\n", s->appliance_id);
	for (k = 1; k < KS_KIND_COUNT; k++)
		printf("records.%s=%llu\n", ks_kind_name(k),
		    (unsigned long long)s->keys[k]);
	printf("root_kek_version=%u\nroot_kdk_version=%u\ndek_version=%u\n"
	       "dek_encryptions=%llu\ncache_hits=%llu\ncache_misses=%llu\n"
	       "commits=%llu\ncommitted_writes=%llu\nmap_size=%llu\n"
	       "map_used=%llu\n",
	    s->root_kek_version, s->root_kdk_version, s->dek_version,
	    (unsigned long long)s->dek_encryptions,
	    (unsigned long long)s->cache_hits,
	    (unsigned long long)s->cache_misses, (unsigned long long)s->commits,
	    (unsigned long long)s->committed_writes,
	    (unsigned long long)s->map_size, (unsigned long long)s->map_used);
}

/* A secret and a newline, straight to fd 1: no copy in stdio's buffer. */
static int
write_secret(const char *s, size_t len)
{
	char buf[2 * KS_MATERIAL_MAX + 2];
	size_t off = 0;
	ssize_t w;
	int rc = 0;

	if (len + 1 > sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len++] = '\n';
	fflush(stdout);
	while (off < len && rc == 0) {
		w = write(STDOUT_FILENO, buf + off, len - off);
		if (w > 0)
			off += (size_t)w;
		else if (w == 0 || errno != EINTR)
			rc = w == 0 ? -EIO : -errno;
	}
	sr_wipe(buf, sizeof(buf));
	return rc;
}

static int
call(void)
{
	ks_reply_init(rep);
	return ks_call(ks, req, rep);
}

/* One call; the reply as key=value lines, stats, or one list line. */
static int
run_one(const struct args *a)
{
	int rc = call();

	if (rc == 0 && req->op == KS_OP_ROOT_ROTATE) {
		ks_request_init(req, KS_OP_STATS);
		rc = call();
	}
	if (req->op == KS_OP_CHECK && rc == 0)
		printf(
		    "checked=%llu\n", (unsigned long long)rep->stats.checked);
	else if (req->op == KS_OP_CHECK)
		fprintf(stderr, "sr-keys: %s: %llu entries verified first\n",
		    a->cmd, (unsigned long long)rep->stats.checked);
	if (rc != 0 || req->op == KS_OP_CHECK)
		return rc;
	if (req->op == KS_OP_GET)
		print_meta(&rep->meta);
	else if (req->op == KS_OP_STATS)
		print_stats(&rep->stats);
	else
		print_line(&rep->meta);
	return 0;
}

/* list and expiring: every page, following the cursor. */
static int
run_list(const struct args *a)
{
	char *after =
	    req->op == KS_OP_LIST ? req->u.list.after : req->u.expiring.after;
	const struct ks_meta *m;
	unsigned i;
	int rc;

	for (;;) {
		rc = call();
		if (rc != 0)
			return rc;
		for (i = 0; i < rep->count; i++) {
			m = &rep->list[i];
			if (req->op != KS_OP_LIST || a->opt[O_ALL] != NULL ||
			    (m->state != KS_STATE_REVOKED &&
			        m->state != KS_STATE_DESTROYED))
				print_line(m);
		}
		if (rep->next[0] == '\0')
			return 0;
		memcpy(after, rep->next, KS_ID_LEN + 1);
	}
}

static int
run_apikey(const struct args *a)
{
	char tb[32], id[KS_ID_LEN + 1];
	int rc = call();

	if (rc != 0)
		return rc;
	rc = write_secret(rep->apikey, KS_APIKEY_LEN);
	ks_reply_wipe(rep);
	memcpy(id, rep->meta.id, sizeof(id));
	if (rc != 0) {
		/* Nobody saw it, so it must not stay valid. */
		fprintf(stderr, "sr-keys: %s: cannot write the key: %s\n",
		    a->cmd, sr_strerror(rc));
		ks_request_init(req, KS_OP_REVOKE);
		memcpy(req->u.revoke.id, id, sizeof(id));
		strcpy(req->u.revoke.reason, "sr-keys: never shown");
		fprintf(stderr, "sr-keys: %s: key %s %s\n", a->cmd, id,
		    call() == 0 ? "revoked" : "NOT REVOKED");
		return 1;
	}
	fprintf(stderr,
	    "sr-keys: warning: this API key is shown once and will not be "
	    "shown again (id %s, owner %s, expires %s)\n",
	    id, rep->meta.parent, fmt_time(rep->meta.expires_at, "never", tb));
	return 0;
}

static int
run_device(const struct args *a)
{
	char hex[2 * KS_MATERIAL_MAX + 1];
	int rc = call();

	(void)a;
	if (rc != 0)
		return rc;
	sr_hex_encode(hex, rep->material, rep->material_len);
	rc = write_secret(hex, strlen(hex));
	sr_wipe(hex, sizeof(hex));
	ks_reply_wipe(rep);
	if (rc == 0)
		fprintf(stderr,
		    "sr-keys: warning: the line above is secret key material "
		    "(device %s, serial %s, %s)\n",
		    rep->meta.id, req->u.device.serial,
		    rep->created ? "enrolled now" : "enrolled before");
	return rc;
}

static const struct cmd cmds[] = {
	{ "create",
	    "create app|user|data|signing NAME [--parent ID]\n"
	    "         [--expires-in TIME] [--not-before UNIX] [--scope JSON]\n"
	    "         [--cidr ADDR/N ...]",
	    "Create a key and print it as a list line (its id comes first).\n"
	    "--expires-in counts from --not-before (or now); an app is valid\n"
	    "365 days at most, and that is its default. --scope is a JSON\n"
	    "object; --cidr (up to 8, IPv4 or IPv6) binds source networks.\n",
	    B(O_PARENT) | B(O_EXPIRES) | B(O_NOT_BEFORE) | B(O_SCOPE) |
	        B(O_CIDR),
	    2, 2, KS_OP_CREATE, run_one },
	{ "list", "list KIND [--parent ID] [--all]",
	    "One line per key (newest version): id kind state vN name parent\n"
	    "expires. KIND: app, user, device, signing, data, apikey. --all\n"
	    "also shows revoked and destroyed keys.\n",
	    B(O_PARENT) | B(O_ALL), 1, 1, KS_OP_LIST, run_list },
	{ "show", "show ID [--version N]",
	    "One key's metadata as key=value lines (never its material).\n",
	    B(O_VERSION), 1, 1, KS_OP_GET, run_one },
	{ "rotate", "rotate ID",
	    "A new version of an app, user, data or signing key; older\n"
	    "versions become decrypt-only. The expiry does not move.\n",
	    0, 1, 1, KS_OP_ROTATE, run_one },
	{ "suspend", "suspend ID", "Make a key unusable until `resume`.\n", 0,
	    1, 1, KS_OP_SUSPEND, run_one },
	{ "resume", "resume ID", "Make a suspended key usable again.\n", 0, 1,
	    1, KS_OP_RESUME, run_one },
	{ "revoke", "revoke ID --reason TEXT [--compromised]",
	    "Make a key unusable for good; --compromised marks a leak.\n",
	    B(O_REASON) | B(O_COMPROMISED), 1, 1, KS_OP_REVOKE, run_one },
	{ "destroy", "destroy ID",
	    "Crypto-shred a revoked, suspended or pre-active key's material\n"
	    "(signing keys: the HSM key pair). Cannot be undone; a tombstone\n"
	    "with the metadata stays.\n",
	    0, 1, 1, KS_OP_DESTROY, run_one },
	{ "expiring", "expiring [--within HOURS]",
	    "Keys, not revoked or destroyed, that expire within HOURS (72).\n",
	    B(O_WITHIN), 0, 0, KS_OP_EXPIRING, run_list },
	{ "apikey", "apikey ID [--expires-in TIME] [--scope JSON]",
	    "Issue an API key for app or user ID and print it on stdout.\n"
	    "It is shown this once: only its keyed hash is stored.\n",
	    B(O_EXPIRES) | B(O_SCOPE), 1, 1, KS_OP_APIKEY_CREATE, run_apikey },
	{ "device", "device APP-ID SERIAL",
	    "Enrol SERIAL under app APP-ID (once) and print the device key in\n"
	    "hex. THIS PRINTS SECRET KEY MATERIAL; it exists for factory\n"
	    "debugging only. The same serial always gives the same key.\n",
	    0, 2, 2, KS_OP_DEVICE_KEY, run_device },
	{ "rotate-root", "rotate-root",
	    "New root KEK and KDK versions and a new DEK, then `stats`; older\n"
	    "DEKs are re-wrapped under the new KEK before sr-keys exits.\n",
	    0, 0, 0, KS_OP_ROOT_ROTATE, run_one },
	{ "check", "check",
	    "Verify every DEK, record and index entry; print how many.\n", 0, 0,
	    0, KS_OP_CHECK, run_one },
	{ "stats", "stats",
	    "Record counts (all versions), root and DEK versions, cache and\n"
	    "group-commit figures, map size, as key=value lines.\n",
	    0, 0, 0, KS_OP_STATS, run_one },
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out,
	    "usage: sr-keys [--state-dir DIR] [--uri URI] "
	    "COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < N_CMDS; i++)
		fprintf(out, "  %s\n", cmds[i].synopsis);
	fprintf(out,
	    "\n--state-dir defaults to build/state; the keystore is in "
	    "DIR/keystore.\nWithout --uri, the embedded SoftHSM2 token in "
	    "DIR/hsm is used.\nTIME is seconds, or a number with s, m, h or "
	    "d. `sr-keys COMMAND --help`\ndescribes a command. `apikey` "
	    "prints an API key once; `device` prints\nsecret key material "
	    "(factory debugging only). Exit status: 0; 1 on an\nerror; 2 on "
	    "a usage error.\n");
}

static void
cmd_usage(FILE *out, const struct cmd *c)
{
	fprintf(out, "usage: sr-keys [GLOBAL OPTIONS] %s\n\n%s", c->synopsis,
	    c->help);
}

/* The command's options and arguments: 0, 2 (usage), -1 (--help). */
static int
parse_cmd(const struct cmd *c, int argc, char **argv, struct args *a)
{
	struct option lo[O_COUNT + 2];
	int i, n = 0, ch;

	for (i = 0; i < O_COUNT; i++)
		if (c->opts & B(i))
			lo[n++] = cmd_options[i];
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };
	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (ch == 'h') {
			cmd_usage(stdout, c);
			return -1;
		}
		if (ch < 1 || ch > O_COUNT) {
			cmd_usage(stderr, c);
			return 2;
		}
		if (ch - 1 == O_CIDR && a->ncidr == KS_CIDR_MAX)
			return bad(a, "at most 8 --cidr");
		if (ch - 1 == O_CIDR)
			a->cidr[a->ncidr++] = optarg;
		a->opt[ch - 1] = optarg != NULL ? optarg : "";
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	if (a->npos < c->min || a->npos > c->max) {
		cmd_usage(stderr, c);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "uri", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = "build/state", *uri = NULL;
	const struct cmd *c = NULL;
	struct p11_ctx *ctx = NULL;
	struct args a;
	int ch, rc, lockfd = -1;
	unsigned long rv;
	size_t i;

	while ((ch = getopt_long(argc, argv, "+s:u:h", longopts, NULL)) != -1) {
		if (ch == 's')
			state = optarg;
		else if (ch == 'u')
			uri = optarg;
		else {
			usage(ch == 'h' ? stdout : stderr);
			return ch == 'h' ? 0 : 2;
		}
	}
	for (i = 0; optind < argc && i < N_CMDS && c == NULL; i++)
		if (strcmp(argv[optind], cmds[i].name) == 0)
			c = &cmds[i];
	if (c == NULL) {
		if (optind < argc)
			fprintf(stderr, "sr-keys: unknown command\n");
		usage(stderr);
		return 2;
	}
	memset(&a, 0, sizeof(a));
	a.cmd = c->name;
	rc = parse_cmd(c, argc - optind, argv + optind, &a);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	req = calloc(1, sizeof(*req));
	rep = calloc(1, sizeof(*rep));
	rc = req == NULL || rep == NULL ? 1 : prepare(c, &a);
	if (req == NULL || rep == NULL)
		fprintf(stderr, "sr-keys: %s\n", sr_strerror(-ENOMEM));
	if (rc == 0) {
		signal(SIGPIPE, SIG_IGN); /* a failed write returns EPIPE */
		sr_log_init(SR_LOG_WARN, "sr-keys");
		rc = tool_ks_open("sr-keys", state, uri, 1, &ctx, &ks, &lockfd);
	}
	if (rc == 0 && (rc = c->run(&a)) < 0) {
		fflush(stdout);
		rv = rc <= P11_EURI && rc > P11_EURI - 1000 ? p11_last_rv() : 0;
		fprintf(stderr, "sr-keys: %s: %s%s%s%s\n", c->name,
		    sr_strerror(rc), rv ? " (" : "", rv ? p11_rv_name(rv) : "",
		    rv ? ")" : "");
		if (rc == KS_EREQUEST && c->op == KS_OP_CREATE)
			fprintf(stderr,
			    "sr-keys: create: an app is valid 365 "
			    "days at most; a scope is a JSON object\n");
		rc = 1;
	}
	ks_close(ks); /* waits for a root rotation's re-wrap */
	p11_close(ctx);
	if (lockfd >= 0)
		close(lockfd);
	if (rep != NULL)
		ks_reply_wipe(rep);
	free(req);
	free(rep);
	return rc;
}
