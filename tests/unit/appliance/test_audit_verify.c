/*
 * tests/unit/appliance/test_audit_verify.c: appliance/audit_verify.c: a
 * clean two-day log verifies; then on copies of it, one tampering each
 * (a byte edited, a line deleted, two lines swapped, a forged line
 * inserted with a valid hash, a line edited with the whole chain after it
 * recomputed, the log cut before its last checkpoint, the oldest file
 * deleted, checkpoint.last removed) is found at the right file and line;
 * a wrong trusted key fails the checkpoints; a log whose checkpoint key
 * was replaced verifies with both keys trusted, and with one names the
 * first checkpoint of the other key; checkpoints downgraded to
 * unsigned, a log cut before its first checkpoint and a forged retention
 * event are refused; a forgery inserted after a genuine line is the one
 * blamed; the query's filters, and --key finding operations on a key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/appliance/audittest.h"

static struct at_signer signer;
static char base[512]; /* the clean log */
static char day0[AUDIT__NAME_LEN + 1], day1[AUDIT__NAME_LEN + 1];

/* Two days, 40 events each, a checkpoint every 10 events; actors alice
 * and bob, actions key.create and auth.apikey, keys K1/K2. */
static int
group_setup(void **state)
{
	struct audit_options o;
	struct audit_event ev;
	struct audit *a;
	int day, i;

	(void)state;
	sr_log_init(SR_LOG_WARN, "test_audit_verify");
	at_signer_init(&signer);
	at_mkdtemp("audit-verify", base);
	at_options(&o, base, &signer, 1);
	o.checkpoint_events = 10;
	/* Only the count places checkpoints: the fake clock moves a minute
	 * an event, and a time-based one would land wherever the writer
	 * thread happened to look at it. */
	o.checkpoint_seconds = 86400;
	for (day = 0; day < 2; day++) {
		atomic_store(&at_now_ms, AT_T0 + day * AT_DAY);
		a = at_open(&o);
		for (i = 0; i < 40; i++) {
			atomic_store(
			    &at_now_ms, AT_T0 + day * AT_DAY + i * 60 * 1000);
			ev = at_event(i % 2 ? "user:alice" : "user:bob",
			    i % 4 < 2 ? "key.create" : "auth.apikey", "/api");
			ev.key = i % 3 ? "K1" : "K2";
			assert_int_equal(audit_append(a, &ev, NULL), 0);
		}
		audit_close(a);
	}
	audit__file_name(AT_T0 / AT_DAY, day0);
	audit__file_name(AT_T0 / AT_DAY + 1, day1);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	at_rmrf(base);
	at_signer_free(&signer);
	return 0;
}

/* A copy of the clean log to tamper with; @p out of 512 bytes. */
static void
copy_log(char out[512])
{
	char cmd[1200];

	at_mkdtemp("audit-tamper", out);
	snprintf(cmd, sizeof(cmd), "cp -a '%s'/. '%s'/", base, out);
	assert_int_equal(system(cmd), 0);
}

static void
test_clean(void **state)
{
	struct audit_verify_result r;
	char pem[256], path[600];
	size_t n;

	(void)state;
	at_verify(base, NULL, 0, NULL, 0, &r);
	assert_int_equal(r.files, 2);
	assert_int_equal(r.first_seq, 1);
	assert_true(r.checkpoints >= 8);
	assert_int_equal(r.lines, r.last_seq);
	/* With the trusted key given, and with another key. */
	n = audit__pem_encode(signer.pub, pem);
	snprintf(path, sizeof(path), "%s-good.pem", base);
	at_write("", path, pem, n);
	at_verify(base, path, 0, NULL, 0, NULL);
	remove(path);
}

static void
test_wrong_key(void **state)
{
	struct audit_verify_result r;
	struct at_signer other;
	char pem[256], path[600], **v;
	size_t n, i;

	(void)state;
	at_signer_init(&other);
	n = audit__pem_encode(other.pub, pem);
	snprintf(path, sizeof(path), "%s-other.pem", base);
	at_write("", path, pem, n);
	n = at_lines(base, day0, &v);
	for (i = 0; i < n && !at_str_is(v[i], "action", "audit.checkpoint");
	     i++)
		;
	assert_true(i < n);
	at_verify(base, path, -EBADMSG, day0, i + 1, &r);
	assert_non_null(strstr(r.problem, "signature"));
	free(v);
	remove(path);
	at_signer_free(&other);
	assert_int_equal(audit_verify(base, "/nonexistent.pem", &r), -ENOENT);
}

static void
test_edit_byte(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v, *p;
	size_t n;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day0, &v);
	p = strstr(v[6], "user:");
	assert_non_null(p);
	p[5] ^= 1; /* alice -> `lice or bob -> cob */
	at_put_lines(dir, day0, v, n);
	free(v);
	at_verify(dir, NULL, -EBADMSG, day0, 7, &r);
	assert_non_null(strstr(r.problem, "edited"));
	at_rmrf(dir);
}

static void
test_delete_line(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v;
	size_t n;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day1, &v);
	memmove(&v[9], &v[10], (n - 10) * sizeof(*v));
	at_put_lines(dir, day1, v, n - 1);
	free(v);
	at_verify(dir, NULL, -EBADMSG, day1, 10, &r);
	assert_non_null(strstr(r.problem, "deleted"));
	at_rmrf(dir);
}

static void
test_reorder(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v, *t;
	size_t n;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day0, &v);
	t = v[20];
	v[20] = v[21];
	v[21] = t;
	at_put_lines(dir, day0, v, n);
	free(v);
	at_verify(dir, NULL, -EBADMSG, day0, 21, &r);
	at_rmrf(dir);
}

/* Day 0's @p n lines @p v with @p forged put in after the first @p at of
 * them, written back; verify must name the forgery, line @p at + 1, as
 * inserted. Frees @p v. */
static void
expect_inserted(const char *dir, char **v, size_t n, size_t at, char *forged)
{
	struct audit_verify_result r;
	char **w = calloc(n + 1, sizeof(*w));

	assert_non_null(w);
	memcpy(w, v, at * sizeof(*v));
	w[at] = forged;
	memcpy(w + at + 1, v + at, (n - at) * sizeof(*v));
	at_put_lines(dir, day0, w, n + 1);
	free(w);
	free(v);
	at_verify(dir, NULL, -EBADMSG, day0, at + 1, &r);
	if (strstr(r.problem, "inserted") == NULL)
		fail_msg("problem: %s", r.problem);
}

/* A forged line between lines 12 and 13: the next seq, a prev that links
 * to line 12, and its own hash recomputed. Found as line 13. */
static void
test_insert_forged(void **state)
{
	char dir[512], **v, forged[2048], hex[65];
	uint8_t h[32];
	uint64_t seq;
	size_t n, len;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day0, &v);
	seq = at_u64(v[11], "seq") + 1;
	mbedtls_sha256((const uint8_t *)v[11], strlen(v[11]), h, 0);
	sr_hex_encode(hex, h, 32);
	len = (size_t)snprintf(forged, sizeof(forged),
	    "{\"ts\":\"2025-06-01T12:11:00.000Z\",\"event_id\":\"ap1-%llu\","
	    "\"seq\":%llu,\"actor\":\"user:mallory\",\"action\":\"key.get\","
	    "\"resource\":\"K1\",\"status\":\"200\",\"duration_ms\":1,"
	    "\"src\":\"192.0.2.66\",\"prev\":\"%s\"",
	    (unsigned long long)seq, (unsigned long long)seq, hex);
	forged[audit__line_seal(forged, len, h)] = '\0';
	expect_inserted(dir, v, n, 12, forged);
	at_rmrf(dir);
}

/* Line 15 edited and every line after it re-chained (own hash, prev, a
 * checkpoint's head): only the next checkpoint's signature can tell. */
static void
test_edit_rechained(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v, *lines[200], hex[65], *p;
	uint8_t h[32];
	size_t n, i, len, ckpt = 0;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day0, &v);
	assert_true(n < 200);
	p = strstr(v[14], "\"status\":\"200\"");
	assert_non_null(p);
	p[11] = '4'; /* 200 -> 400 */
	mbedtls_sha256((const uint8_t *)v[13], strlen(v[13]), h, 0);
	for (i = 14; i < n; i++) {
		len = strlen(v[i]) - AUDIT__HASH_TAIL - 74;
		lines[i] = malloc(len + 256);
		assert_non_null(lines[i]);
		memcpy(lines[i], v[i], len);
		lines[i][len] = '\0';
		sr_hex_encode(hex, h, 32);
		if ((p = strstr(lines[i], "\"head\":\"")) != NULL) {
			memcpy(p + 8, hex, 64);
			if (ckpt == 0)
				ckpt = i + 1;
		}
		len += (size_t)sprintf(lines[i] + len, ",\"prev\":\"%s\"", hex);
		len = audit__line_seal(lines[i], len, h);
		lines[i][len] = '\0';
		v[i] = lines[i];
	}
	at_put_lines(dir, day0, v, n);
	for (i = 14; i < n; i++)
		free(lines[i]);
	free(v);
	assert_true(ckpt > 15);
	at_verify(dir, NULL, -EBADMSG, day0, ckpt, &r);
	assert_non_null(strstr(r.problem, "signature does not verify"));
	at_rmrf(dir);
}

/* The newest file cut before its last checkpoint: checkpoint.last
 * shows it; the report names the last line left. */
static void
test_truncate(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v;
	size_t n;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day1, &v);
	assert_true(at_str_is(v[n - 1], "action", "audit.checkpoint"));
	at_put_lines(dir, day1, v, n - 3);
	free(v);
	at_verify(dir, NULL, -EBADMSG, day1, n - 3, &r);
	assert_non_null(strstr(r.problem, "truncated"));
	/* And without checkpoint.last, the log cannot be vouched for. */
	assert_int_equal(
	    unlinkat(AT_FDCWD, strcat(strcat(dir, "/"), AUDIT__CKPT_LAST), 0),
	    0);
	*strrchr(dir, '/') = '\0';
	at_verify(dir, NULL, -EBADMSG, day1, n - 3, &r);
	assert_non_null(strstr(r.problem, AUDIT__CKPT_LAST));
	at_rmrf(dir);
}

/* Lines v[from..n) re-chained from @p prev (own hash, prev, a checkpoint's
 * head); with @p downgrade, their checkpoints rewritten as unsigned
 * ("status":"failed", no sig) the way a forger who cannot sign would. The
 * lines are malloc'ed into v. */
static void
rechain(char **v, size_t n, size_t from, uint8_t h[32], int downgrade)
{
	char hex[65], *line, *p, *q;
	size_t i, len;

	for (i = from; i < n; i++) {
		len = strlen(v[i]) - AUDIT__HASH_TAIL - 74;
		line = malloc(len + 256);
		assert_non_null(line);
		memcpy(line, v[i], len);
		line[len] = '\0';
		sr_hex_encode(hex, h, 32);
		if ((p = strstr(line, "\"head\":\"")) != NULL)
			memcpy(p + 8, hex, 64);
		if (downgrade && (p = strstr(line, ",\"sig\":\"")) != NULL) {
			memmove(p, p + 137, strlen(p + 137) + 1);
			q = strstr(line, "\"status\":\"ok\"");
			assert_non_null(q);
			memmove(q + 16, q + 12, strlen(q + 12) + 1);
			memcpy(q + 10, "failed", 6);
			len = strlen(line);
			len +=
			    (size_t)sprintf(line + len, ",\"error\":\"EIO\"");
		}
		len = strlen(line);
		len += (size_t)sprintf(line + len, ",\"prev\":\"%s\"", hex);
		len = audit__line_seal(line, len, h);
		line[len] = '\0';
		v[i] = line;
	}
}

/* A checkpoint at @p seq after line @p before, signed with the test
 * signer; malloc'ed. */
static char *
signed_ckpt(const char *before, uint64_t seq)
{
	char *line = malloc(1024), hex[65], sighex[129];
	uint8_t h[32], digest[32], sig[64];
	size_t len;

	assert_non_null(line);
	mbedtls_sha256((const uint8_t *)before, strlen(before), h, 0);
	sr_hex_encode(hex, h, 32);
	audit__ckpt_digest(seq - 1, h, digest);
	assert_int_equal(at_sign(&signer, digest, sig), 0);
	sr_hex_encode(sighex, sig, 64);
	len = (size_t)snprintf(line, 1024,
	    "{\"ts\":\"2025-06-02T13:00:01.000Z\",\"event_id\":\"ap1-%llu\","
	    "\"seq\":%llu,\"actor\":\"audit\",\"action\":"
	    "\"audit.checkpoint\",\"resource\":\"\",\"status\":\"ok\","
	    "\"duration_ms\":0,\"src\":\"\",\"head_seq\":%llu,\"head\":"
	    "\"%s\",\"key_id\":\"%s\",\"sig\":\"%s\",\"prev\":\"%s\"",
	    (unsigned long long)seq, (unsigned long long)seq,
	    (unsigned long long)seq - 1, hex, "test-key.v1", sighex, hex);
	line[audit__line_seal(line, len, h)] = '\0';
	return line;
}

static void
unlink_in(const char *dir, const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(unlink(path), 0);
}

/* A line of the newest file edited (200 -> 401), the rest of it
 * re-chained and its checkpoints downgraded to unsigned, checkpoint.last
 * removed: no signed checkpoint covers the end, with or without the
 * trusted key. Then every checkpoint downgraded: none is signed at all. */
static void
test_downgrade(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v, pem[256], path[600];
	uint8_t h[32];
	size_t n, i, last_ckpt = 0;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day1, &v);
	assert_non_null(strstr(v[14], "\"status\":\"200\""));
	memcpy(strstr(v[14], "\"status\":\"200\"") + 10, "401", 3);
	mbedtls_sha256((const uint8_t *)v[13], strlen(v[13]), h, 0);
	rechain(v, n, 14, h, 1);
	for (i = 0; i < n; i++)
		if (at_str_is(v[i], "action", "audit.checkpoint"))
			last_ckpt = i + 1;
	assert_true(at_str_is(v[last_ckpt - 1], "status", "failed"));
	at_put_lines(dir, day1, v, n);
	for (i = 14; i < n; i++)
		free(v[i]);
	free(v);
	unlink_in(dir, AUDIT__CKPT_LAST);
	at_verify(dir, NULL, -EBADMSG, day1, last_ckpt, &r);
	if (strstr(r.problem, "no signed checkpoint covers") == NULL)
		fail_msg("problem: %s", r.problem);
	assert_true(r.unsigned_checkpoints > 0);
	n = audit__pem_encode(signer.pub, pem);
	snprintf(path, sizeof(path), "%s-trusted.pem", dir);
	at_write("", path, pem, n);
	at_verify(dir, path, -EBADMSG, day1, last_ckpt, &r);
	assert_non_null(strstr(r.problem, "no signed checkpoint covers"));
	/* Every checkpoint of both files unsigned, the chain recomputed. */
	n = at_lines(dir, day0, &v);
	memset(h, 0, 32);
	rechain(v, n, 0, h, 1);
	at_put_lines(dir, day0, v, n);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	n = at_lines(dir, day1, &v);
	rechain(v, n, 0, h, 1);
	at_put_lines(dir, day1, v, n);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	at_verify(dir, path, -EBADMSG, day1, last_ckpt, &r);
	if (strstr(r.problem, "covers lines 1..") == NULL)
		fail_msg("problem: %s", r.problem);
	assert_int_equal(r.checkpoints, 0);
	remove(path);
	at_rmrf(dir);
}

/* The line (1-based) of the first checkpoint in @p name of @p dir. */
static size_t
first_ckpt(const char *dir, const char *name)
{
	char **v;
	size_t n = at_lines(dir, name, &v), i, at = 0;

	for (i = 0; i < n && at == 0; i++)
		if (at_str_is(v[i], "action", "audit.checkpoint"))
			at = i + 1;
	free(v);
	assert_true(at > 0);
	return at;
}

/* The checkpoint key replaced between the two days (key_id test-key.v1,
 * then test-key.v2): with both keys trusted the log verifies, in either
 * order and whatever the key files beside it say; with one, the first
 * checkpoint signed by the other fails, naming its line and key_id. */
static void
test_key_rotation(void **state)
{
	struct audit_verify_result r;
	struct at_signer second;
	struct audit_options o;
	struct audit_event ev;
	struct audit *a;
	char dir[512], pem[256], p1[600], p2[600], f1[600], f2[600];
	const char *keys[AUDIT_VERIFY_KEYS_MAX + 1];
	size_t n, i;
	int day;

	(void)state;
	at_signer_init(&second);
	at_mkdtemp("audit-rotate", dir);
	for (day = 0; day < 2; day++) {
		at_options(&o, dir, day ? &second : &signer, 1);
		o.sign_key_id = day ? "test-key.v2" : "test-key.v1";
		o.checkpoint_events = 10;
		o.checkpoint_seconds = 86400;
		atomic_store(&at_now_ms, AT_T0 + day * AT_DAY);
		a = at_open(&o);
		for (i = 0; i < 20; i++) {
			atomic_store(&at_now_ms,
			    AT_T0 + day * AT_DAY + (int64_t)i * 60 * 1000);
			ev = at_event("user:alice", "key.create", "/api");
			assert_int_equal(audit_append(a, &ev, NULL), 0);
		}
		audit_close(a);
	}
	n = audit__pem_encode(signer.pub, pem);
	snprintf(p1, sizeof(p1), "%s-v1.pem", dir);
	at_write("", p1, pem, n);
	n = audit__pem_encode(second.pub, pem);
	snprintf(p2, sizeof(p2), "%s-v2.pem", dir);
	at_write("", p2, pem, n);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	keys[0] = p1;
	keys[1] = p2;
	assert_int_equal(audit_verify_keys(dir, keys, 2, &r), 0);
	assert_true(r.checkpoints >= 4);
	/* Only the first key: the second key's first checkpoint is named. */
	at_verify(dir, p1, -EBADMSG, day1, first_ckpt(dir, day1), &r);
	if (strstr(r.problem, "\"test-key.v2\"") == NULL ||
	    strstr(r.problem, "not among the trusted keys") == NULL)
		fail_msg("problem: %s", r.problem);
	assert_true(r.checkpoints >= 2);
	/* Only the second: the log's first checkpoint. */
	assert_int_equal(audit_verify_keys(dir, keys + 1, 1, &r), -EBADMSG);
	assert_string_equal(r.file, day0);
	assert_int_equal(r.line, first_ckpt(dir, day0));
	assert_non_null(strstr(r.problem, "\"test-key.v1\""));
	/* The key files beside the log swapped: the signatures decide. */
	snprintf(f1, sizeof(f1), "%s/checkpoint-key-test-key.v1.pub", dir);
	snprintf(f2, sizeof(f2), "%s/checkpoint-key-test-key.v2.pub", dir);
	at_write("", f1, pem, n);
	n = audit__pem_encode(signer.pub, pem);
	at_write("", f2, pem, n);
	keys[0] = p2;
	keys[1] = p1;
	assert_int_equal(audit_verify_keys(dir, keys, 2, &r), 0);
	for (i = 0; i <= AUDIT_VERIFY_KEYS_MAX; i++)
		keys[i] = p1;
	assert_int_equal(
	    audit_verify_keys(dir, keys, AUDIT_VERIFY_KEYS_MAX + 1, &r),
	    -E2BIG);
	remove(p1);
	remove(p2);
	at_rmrf(dir);
	at_signer_free(&second);
}

/* Cut before the first checkpoint, checkpoint.last removed: no line is
 * under a signature, so the log is not intact. */
static void
test_cut_before_first_checkpoint(void **state)
{
	struct audit_verify_result r;
	char dir[512], **v;
	size_t n, i;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day0, &v);
	for (i = 0; i < n && !at_str_is(v[i], "action", "audit.checkpoint");
	     i++)
		;
	assert_true(i > 1 && i < n);
	at_put_lines(dir, day0, v, i);
	free(v);
	unlink_in(dir, day1);
	unlink_in(dir, AUDIT__CKPT_LAST);
	at_verify(dir, NULL, -EBADMSG, day0, i, &r);
	if (strstr(r.problem, "no signed checkpoint covers lines 1..") == NULL)
		fail_msg("problem: %s", r.problem);
	at_rmrf(dir);
}

/* A forged line inserted after line 6, copying its seq and prev (alice
 * made mallory, its own hash recomputed): line 8 links to line 6, so the
 * forgery, line 7, is the one named. */
static void
test_insert_after_genuine(void **state)
{
	char dir[512], **v, forged[2048], *p;
	uint8_t h[32];
	size_t n, len;

	(void)state;
	copy_log(dir);
	n = at_lines(dir, day0, &v);
	p = strstr(v[5], "user:alice");
	if (p == NULL)
		p = strstr(v[5], "user:bob");
	assert_non_null(p);
	len = strlen(v[5]) - AUDIT__HASH_TAIL;
	memcpy(forged, v[5], len);
	forged[len] = '\0';
	p = forged + (p - v[5]) + 5;
	memmove(p + 7, p + (p[0] == 'a' ? 5 : 3),
	    strlen(p + (p[0] == 'a' ? 5 : 3)) + 1);
	memcpy(p, "mallory", 7);
	len = strlen(forged);
	forged[audit__line_seal(forged, len, h)] = '\0';
	expect_inserted(dir, v, n, 6, forged);
	at_rmrf(dir);
}

/* A real retention removal (retention 1 day, a third day opened) is
 * accepted; the oldest file deleted and passed off with a hand-made
 * retention event at the end of the newest file is not. */
static void
test_retention_forged(void **state)
{
	struct audit_verify_result r;
	struct audit_options o;
	struct audit *a;
	char dir[512], **v, **w, line[2048], hex[65], *p;
	uint8_t h[32], prev[32];
	size_t n, len;

	(void)state;
	copy_log(dir);
	at_options(&o, dir, &signer, 1);
	o.retention_days = 1;
	atomic_store(&at_now_ms, AT_T0 + 2 * AT_DAY);
	a = at_open(&o);
	audit_close(a);
	at_verify(dir, NULL, 0, NULL, 0, &r);
	assert_int_equal(r.files, 2);
	assert_true(r.first_seq > 1);
	at_rmrf(dir);

	copy_log(dir);
	unlink_in(dir, day0);
	n = at_lines(dir, day1, &v);
	p = strstr(v[0], "\"prev\":\"");
	assert_non_null(p);
	assert_int_equal(sr_hex_decode(prev, 32, p + 8, 64), 32);
	mbedtls_sha256((const uint8_t *)v[n - 1], strlen(v[n - 1]), h, 0);
	sr_hex_encode(hex, h, 32);
	len = (size_t)snprintf(line, sizeof(line),
	    "{\"ts\":\"2025-06-02T13:00:00.000Z\",\"event_id\":\"ap1-%llu\","
	    "\"seq\":%llu,\"actor\":\"audit\",\"action\":"
	    "\"audit.retention.remove\",\"resource\":\"%s\",\"status\":"
	    "\"ok\",\"duration_ms\":0,\"src\":\"\",\"retention_days\":180,"
	    "\"kept_from_seq\":%llu,\"kept_from_prev\":\"",
	    (unsigned long long)at_u64(v[n - 1], "seq") + 1,
	    (unsigned long long)at_u64(v[n - 1], "seq") + 1, day0,
	    (unsigned long long)at_u64(v[0], "seq"));
	sr_hex_encode(line + len, prev, 32);
	len += 64;
	len += (size_t)sprintf(line + len, "\",\"prev\":\"%s\"", hex);
	line[audit__line_seal(line, len, h)] = '\0';
	w = calloc(n + 2, sizeof(*w));
	assert_non_null(w);
	memcpy(w, v, n * sizeof(*v));
	w[n] = line;
	at_put_lines(dir, day1, w, n + 1);
	at_verify(dir, NULL, -EBADMSG, day1, n + 1, &r);
	if (strstr(r.problem, "no signed checkpoint covers") == NULL)
		fail_msg("problem: %s", r.problem);
	/* Even under a signed checkpoint (made here with the signer's own
	 * key), a file one day old is not past a retention of 180 days. */
	w[n + 1] = signed_ckpt(w[n], at_u64(w[n], "seq") + 1);
	at_put_lines(dir, day1, w, n + 2);
	at_write(dir, AUDIT__CKPT_LAST, w[n + 1], strlen(w[n + 1]));
	at_verify(dir, NULL, -EBADMSG, day1, n + 1, &r);
	if (strstr(r.problem, "not past the retention (180 days)") == NULL)
		fail_msg("problem: %s", r.problem);
	free(w[n + 1]);
	free(w);
	free(v);
	at_rmrf(dir);
}

/* The oldest file deleted (no retention event accounts for it). */
static void
test_delete_file(void **state)
{
	struct audit_verify_result r;
	char dir[512], path[600];

	(void)state;
	copy_log(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, day0);
	assert_int_equal(unlink(path), 0);
	at_verify(dir, NULL, -EBADMSG, day1, 1, &r);
	assert_non_null(strstr(r.problem, "starts at seq"));
	at_rmrf(dir);
}

/* --key finds the lines on a key (/api/keys/ID and below) as well as
 * those it authenticated; not another key whose id starts alike. */
static void
test_query_key_ops(void **state)
{
	static const char *const res[] = { "/api/keys/K2/revoke",
		"/api/keys/K2", "/api/keys/K22", "/api/keys/K22/rotate",
		"/api/apps/K2/keys", "/api/keys", "/api/keys/K2?x=1" };
	struct audit_query q = { "K2", NULL, NULL, NULL, NULL, 0 };
	struct audit_options o;
	struct audit_event ev;
	struct audit *a;
	char dir[512], err[256];
	uint64_t matched = 0;
	size_t i;
	FILE *null = fopen("/dev/null", "w");

	(void)state;
	assert_non_null(null);
	at_mkdtemp("audit-keyops", dir);
	at_options(&o, dir, &signer, 1);
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	for (i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
		ev = at_event("user:admin", "keys.revoke", res[i]);
		ev.key = "K9";
		assert_int_equal(audit_append(a, &ev, NULL), 0);
	}
	ev = at_event("app:K2", "inference", "/v1/chat/completions");
	ev.key = "K2";
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	assert_int_equal(audit_query_run(dir, &q, null, &matched, err), 0);
	fclose(null);
	/* /api/keys/K2/revoke, /api/keys/K2, /api/keys/K2?x=1, the key. */
	assert_int_equal(matched, 4);
	at_rmrf(dir);
}

static uint64_t
query(const char *key, const char *actor, const char *action, const char *since,
    const char *until, int *rc)
{
	struct audit_query q = { key, actor, action, since, until, 0 };
	uint64_t matched = 0;
	char err[256];
	FILE *null = fopen("/dev/null", "w");

	assert_non_null(null);
	*rc = audit_query_run(base, &q, null, &matched, err);
	fclose(null);
	return matched;
}

static void
test_query(void **state)
{
	static const struct {
		const char *since;
		int rc;
	} secs[] = { { "253402300799", 0 }, { "253402300800", -EINVAL },
		{ "1000000000000", -EINVAL } };
	size_t i;
	int rc;

	(void)state;
	assert_int_equal(query(NULL, "user:alice", NULL, NULL, NULL, &rc), 40);
	assert_int_equal(rc, 0);
	assert_int_equal(query(NULL, "user:*", "key.*", NULL, NULL, &rc), 40);
	assert_int_equal(query("K2", NULL, NULL, NULL, NULL, &rc), 28);
	assert_int_equal(
	    query("K2", "user:bob", "auth.apikey", NULL, NULL, &rc), 6);
	/* Day 0 from 12:10 to 12:20: events 10..19 of that day. */
	assert_int_equal(query(NULL, "user:*", NULL, "2025-06-01T12:10:00Z",
	                     "2025-06-01T12:20", &rc),
	    10);
	assert_int_equal(
	    query(NULL, "user:*", NULL, "2025-06-02", NULL, &rc), 40);
	assert_int_equal(
	    query(NULL, "audit", "audit.start", NULL, NULL, &rc), 2);
	/* An exact action (lines without its bytes go unparsed) finds what
	 * its prefix form finds, and is no prefix itself. */
	assert_int_equal(query(NULL, NULL, "key.create", NULL, NULL, &rc), 40);
	assert_int_equal(query(NULL, NULL, "key.create*", NULL, NULL, &rc), 40);
	assert_int_equal(query(NULL, NULL, "key.creat", NULL, NULL, &rc), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(query(NULL, NULL, NULL, "yesterday", NULL, &rc), 0);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(
	    query(NULL, NULL, NULL, "2025-02-30T00:00:00Z", NULL, &rc), 0);
	assert_int_equal(rc, -EINVAL);
	/* Unix seconds: the same window as its RFC 3339 form, and nothing
	 * past 9999-12-31T23:59:59Z (its year would wrap to four digits). */
	assert_int_equal(
	    query(NULL, "user:*", NULL, "1748779800", "2025-06-01T12:20", &rc),
	    10);
	assert_int_equal(rc, 0);
	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		assert_int_equal(
		    query(NULL, NULL, NULL, secs[i].since, NULL, &rc), 0);
		assert_int_equal(rc, secs[i].rc);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_key_rotation),
		cmocka_unit_test(test_edit_byte),
		cmocka_unit_test(test_delete_line),
		cmocka_unit_test(test_reorder),
		cmocka_unit_test(test_insert_forged),
		cmocka_unit_test(test_edit_rechained),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_delete_file),
		cmocka_unit_test(test_downgrade),
		cmocka_unit_test(test_cut_before_first_checkpoint),
		cmocka_unit_test(test_insert_after_genuine),
		cmocka_unit_test(test_retention_forged),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_key_ops),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
