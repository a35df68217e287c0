/*
 * tests/integration/appliance/test_audit_hsm.c: the audit log with its
 * checkpoints signed by a real HSM-held key: a keystore on a scratch
 * SoftHSM2 token, a KS_KIND_SIGNING key, the signer callback wired to
 * KS_OP_SIGN; checkpoints verified with mbedTLS by `sr-audit verify` (the
 * real binary) with the key beside the log and with --pubkey; the same
 * tool finding an edited, deleted, reordered and inserted line and a cut
 * log at the right file and line; `sr-audit query` and its errors; and no
 * secret the test created (an API key, its secret part) in any audit file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "appliance/audit_impl.h"
#include "tests/integration/keystore/kstest.h"
#include "tests/unit/appliance/audittest.h"

struct hsm_signer {
	struct ks *ks;
	char id[KT_ID];
	atomic_int calls;
};

static struct hsm_signer hs;
static uint8_t hsm_pub[65];
static char logdir[600], kid[64];
static char day_name[AUDIT__NAME_LEN + 1];

/* audit_sign_cb over the keystore: ES256 of the 32-byte message. */
static int
ks_sign(void *arg, const uint8_t digest[32], uint8_t sig[64])
{
	struct hsm_signer *s = arg;
	struct ks_request *q = calloc(1, sizeof(*q));
	struct ks_reply *r = calloc(1, sizeof(*r));
	int rc = -ENOMEM;

	if (q != NULL && r != NULL) {
		ks_request_init(q, KS_OP_SIGN);
		memcpy(q->u.sign.id, s->id, KT_ID);
		q->u.sign.len = 32;
		memcpy(q->u.sign.msg, digest, 32);
		ks_reply_init(r);
		rc = ks_call(s->ks, q, r);
		if (rc == 0 && r->material_len != 64)
			rc = -EPROTO;
		if (rc == 0)
			memcpy(sig, r->material, 64);
		atomic_fetch_add(&s->calls, 1);
	}
	free(q);
	free(r);
	return rc;
}

static void
hsm_options(struct audit_options *o)
{
	memset(o, 0, sizeof(*o));
	o->dir = logdir;
	o->appliance_id = "ap1";
	o->sign = ks_sign;
	o->sign_arg = &hs;
	o->sign_key_id = kid;
	o->sign_pubkey = hsm_pub;
	o->checkpoint_events = 100;
}

static void
write_file(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The newest day file of the log. */
static void
newest_file(const char *dir, char name[AUDIT__NAME_LEN + 1])
{
	int64_t *days = NULL;
	size_t n = 0;

	assert_int_equal(audit__list_days(dir, &days, &n), 0);
	assert_true(n > 0);
	audit__file_name(days[n - 1], name);
	free(days);
}

/* Run sr-audit with @p args; its output into @p out. Returns the exit
 * status. */
static int
sr_audit(const char *args, char *out, size_t cap)
{
	const char *b = getenv("BUILD");
	char cmd[2048];
	size_t n = 0, r;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/bin/sr-audit %s 2>&1",
	    b != NULL ? b : "build", args);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
group_setup(void **state)
{
	(void)state;
	if (kt_setup("audit") != 0)
		return -1;
	hs.ks = kt_main_ks();
	assert_int_equal(kt_create(hs.ks, KS_KIND_SIGNING, "audit-checkpoints",
	                     NULL, 0, 0, hs.id),
	    0);
	kt_public_of(hs.id, 1, hsm_pub);
	snprintf(kid, sizeof(kid), "%s.v1", hs.id);
	snprintf(logdir, sizeof(logdir), "%s/audit", kt_fx.dir);
	return 0;
}

static int
group_teardown(void **state)
{
	return kt_group_teardown(state);
}

/* 1. Events from 4 threads, checkpoints signed by the HSM every 100;
 * the real sr-audit verifies them, with and without --pubkey. */
static void *
appender(void *arg)
{
	struct audit *a = arg;
	struct audit_event ev;
	int i;

	memset(&ev, 0, sizeof(ev));
	ev.actor = "app:AAAABBBBCCCC";
	ev.action = "inference";
	ev.resource = "/v1/completions";
	ev.status = "200";
	ev.src = "10.1.2.3";
	ev.input_tokens = 5;
	ev.output_tokens = 7;
	for (i = 0; i < 300; i++)
		if (audit_append(a, &ev, NULL) != 0)
			return (void *)1;
	return NULL;
}

static void
test_hsm_checkpoints(void **state)
{
	struct audit_verify_result r;
	struct audit_options o;
	struct audit_stats st;
	pthread_t th[4];
	struct audit *a = NULL;
	char out[4096], args[1400], pem[256], path[700], err[256];
	void *ret;
	size_t n;
	int i;

	(void)state;
	hsm_options(&o);
	assert_int_equal(audit_open(&o, &a, err), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, appender, a), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	audit_stats_get(a, &st);
	audit_close(a);
	assert_true(st.checkpoints >= 11);
	assert_true(atomic_load(&hs.calls) >= 12);
	assert_int_equal(audit_verify(logdir, NULL, &r), 0);
	assert_int_equal(r.checkpoints, atomic_load(&hs.calls));
	assert_int_equal(r.uncovered, 0);
	newest_file(logdir, day_name);

	snprintf(args, sizeof(args), "verify --dir '%s'", logdir);
	assert_int_equal(sr_audit(args, out, sizeof(out)), 0);
	snprintf(path, sizeof(path), "%llu lines (seq 1..%llu), %llu signed",
	    (unsigned long long)r.lines, (unsigned long long)r.lines,
	    (unsigned long long)r.checkpoints);
	if (strstr(out, path) == NULL)
		fail_msg("sr-audit said: %s", out);
	n = audit__pem_encode(hsm_pub, pem);
	snprintf(path, sizeof(path), "%s/trusted.pem", kt_fx.dir);
	write_file(path, pem, n);
	snprintf(args, sizeof(args), "verify --dir '%s' --pubkey '%s'", logdir,
	    path);
	assert_int_equal(sr_audit(args, out, sizeof(out)), 0);
	/* Another HSM key is not the checkpoints' key. */
	{
		char other[KT_ID];
		uint8_t pub2[65];

		assert_int_equal(kt_create(hs.ks, KS_KIND_SIGNING, "other",
		                     NULL, 0, 0, other),
		    0);
		kt_public_of(other, 1, pub2);
		n = audit__pem_encode(pub2, pem);
		write_file(path, pem, n);
	}
	assert_int_equal(sr_audit(args, out, sizeof(out)), 1);
	if (strstr(out, "which is not among the trusted keys") == NULL)
		fail_msg("sr-audit said: %s", out);
}

/* 2. The real tool on tampered copies: exit 1 and the right file:line. */
static void
tamper_case(
    const char *what, void (*edit)(char **v, size_t *n), size_t want_line)
{
	char copy[700], cmd[1600], out[4096], want[800], path[800], **v;
	size_t n, i;
	FILE *f;

	snprintf(copy, sizeof(copy), "%s/tamper-%s", kt_fx.dir, what);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", copy,
	    logdir, copy);
	assert_int_equal(system(cmd), 0);
	n = at_lines(copy, day_name, &v);
	edit(v, &n);
	snprintf(path, sizeof(path), "%s/%s", copy, day_name);
	f = fopen(path, "w");
	assert_non_null(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", v[i]);
	assert_int_equal(fclose(f), 0);
	free(v);
	snprintf(cmd, sizeof(cmd), "verify --dir '%s'", copy);
	assert_int_equal(sr_audit(cmd, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "TAMPERED %s/%s:%zu: ", copy, day_name,
	    want_line);
	if (strstr(out, want) == NULL)
		fail_msg("%s: want \"%s\", sr-audit said: %s", what, want, out);
}

static void
edit_byte(char **v, size_t *n)
{
	char *p = strstr(v[40], "10.1.2.3");

	(void)n;
	assert_non_null(p);
	p[7] = '4';
}

static void
delete_line(char **v, size_t *n)
{
	memmove(&v[99], &v[100], (*n - 100) * sizeof(*v));
	(*n)--;
}

static void
reorder(char **v, size_t *n)
{
	char *t = v[500];

	(void)n;
	v[500] = v[501];
	v[501] = t;
}

static char forged[2048];

static void
insert_forged(char **v, size_t *n)
{
	uint8_t h[32];
	char hex[65];
	uint64_t seq = at_u64(v[699], "seq") + 1;
	size_t len;

	mbedtls_sha256((const uint8_t *)v[699], strlen(v[699]), h, 0);
	sr_hex_encode(hex, h, 32);
	len = (size_t)snprintf(forged, sizeof(forged),
	    "{\"ts\":\"2025-06-01T12:11:00.000Z\",\"event_id\":\"ap1-%llu\","
	    "\"seq\":%llu,\"actor\":\"user:mallory\",\"action\":"
	    "\"key.revoke\",\"resource\":\"K1\",\"status\":\"200\","
	    "\"duration_ms\":1,\"src\":\"192.0.2.66\",\"prev\":\"%s\"",
	    (unsigned long long)seq, (unsigned long long)seq, hex);
	forged[audit__line_seal(forged, len, h)] = '\0';
	memmove(&v[701], &v[700], (*n - 700) * sizeof(*v));
	v[700] = forged;
	(*n)++;
}

static void
truncate_end(char **v, size_t *n)
{
	(void)v;
	*n -= 5;
}

static void
test_cli_tamper(void **state)
{
	char **v;
	size_t n;

	(void)state;
	n = at_lines(logdir, day_name, &v);
	free(v);
	assert_true(n > 800);
	tamper_case("edit", edit_byte, 41);
	tamper_case("delete", delete_line, 100);
	tamper_case("reorder", reorder, 501);
	tamper_case("insert", insert_forged, 701);
	tamper_case("truncate", truncate_end, n - 5);
}

/* 3. sr-audit query and its errors. */
static void
test_cli_query(void **state)
{
	char args[1400], out[8192];

	(void)state;
	snprintf(args, sizeof(args),
	    "query --dir '%s' --action audit.start --actor audit", logdir);
	assert_int_equal(sr_audit(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"action\":\"audit.start\""));
	assert_non_null(strstr(out, "1 matching lines"));
	snprintf(args, sizeof(args), "query --dir '%s' --since soon", logdir);
	assert_int_equal(sr_audit(args, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--since \"soon\": not a UTC time"));
	assert_int_equal(sr_audit("--help", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "usage: sr-audit verify"));
	assert_int_equal(sr_audit("frobnicate", out, sizeof(out)), 2);
	assert_int_equal(
	    sr_audit("verify --dir /nonexistent", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no audit log here"));
	assert_int_equal(sr_audit("verify --bogus", out, sizeof(out)), 2);
}

/* 4. An app with an API key makes requests; the audit records them by
 * key id and prefix; neither the key nor its secret part is anywhere in
 * the audit folder or the log lines. */
static void
test_no_secret(void **state)
{
	struct kt_prefix *ix;
	struct audit_options o;
	struct audit_event ev;
	struct audit *a;
	struct dirent *de;
	char app[KT_ID], key[KS_APIKEY_LEN + 1], keyid[KT_ID], prefix[16];
	char path[900], planted[200];
	uint8_t *buf;
	size_t len, i, hits = 0, files = 0;
	DIR *d;
	int j;

	(void)state;
	assert_int_equal(
	    kt_create(hs.ks, KS_KIND_APP, "billing", NULL, 0, 0, app), 0);
	assert_int_equal(kt_apikey(hs.ks, app, 0, key), 0);
	snprintf(keyid, sizeof(keyid), "%s", KT_R->meta.id);
	snprintf(prefix, sizeof(prefix), "%s", KT_R->meta.apikey_prefix);
	assert_int_equal(kt_verify(hs.ks, key), 0);
	hsm_options(&o);
	a = NULL;
	assert_int_equal(audit_open(&o, &a, NULL), 0);
	for (j = 0; j < 50; j++) {
		memset(&ev, 0, sizeof(ev));
		ev.actor = app;
		ev.action = j % 2 ? "auth.apikey" : "inference";
		ev.resource = j % 2 ? keyid : "/v1/chat/completions";
		ev.key = prefix;
		ev.status = "200";
		ev.src = "127.0.0.2";
		assert_int_equal(audit_append(a, &ev, NULL), 0);
	}
	audit_close(a);

	ix = calloc(kt_nneedles, sizeof(*ix));
	assert_non_null(ix);
	for (i = 0; i < kt_nneedles; i++) {
		memcpy(&ix[i].v, kt_needles[i].b, 8);
		ix[i].i = i;
	}
	qsort(ix, kt_nneedles, sizeof(*ix), kt_prefix_cmp);
	/* The scan finds a needle that is there. */
	memset(planted, '.', sizeof(planted));
	memcpy(planted + 50, key, KS_APIKEY_LEN);
	assert_true(kt_scan(ix, kt_nneedles, (uint8_t *)planted,
	                sizeof(planted), NULL) >= 2);
	d = opendir(logdir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", logdir, de->d_name);
		buf = kt_read_file(path, &len);
		if (buf == NULL)
			continue;
		hits += kt_scan(ix, kt_nneedles, buf, len, path);
		files++;
		free(buf);
	}
	closedir(d);
	pthread_mutex_lock(&kt_log_lock);
	hits += kt_scan(
	    ix, kt_nneedles, (const uint8_t *)kt_log, kt_log_len, "the log");
	pthread_mutex_unlock(&kt_log_lock);
	free(ix);
	assert_true(files >= 3); /* day file, key file, checkpoint.last */
	assert_int_equal(hits, 0);
	sr_wipe(key, sizeof(key));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hsm_checkpoints),
		cmocka_unit_test(test_cli_tamper),
		cmocka_unit_test(test_cli_query),
		cmocka_unit_test(test_no_secret),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
