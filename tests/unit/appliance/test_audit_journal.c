/*
 * tests/unit/appliance/test_audit_journal.c: appliance/audit_journal.c,
 * the journal that makes each batch durable. A power cut cannot be caused
 * on demand, so each test takes what it leaves behind: the log folder as
 * the disk held it (a copy made while the log is open, every event
 * acknowledged) with the day file's page-cache part gone (cut back, or
 * zeros as some file systems show). The next open must write every
 * acknowledged line back, exactly, and the chain must verify; a day file
 * edited inside the journal's range, or missing bytes it had made
 * durable, is refused. Also: the ring wraps (laps), the day changes, a
 * torn last record, a clean close leaves nothing to replay, and a file
 * that is not a journal. Each test works in its own mkdtemp folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/appliance/audittest.h"

/* The on-disk record header (docs/audit.md, "The journal"). */
#define J_OFF_AT 32
#define J_LEN_AT 40
#define J_BLOCK 4096

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The day-file offset of the current lap's first record (the block at 0);
 * -1 when block 0 holds no record. */
static int64_t
lap_start(const char *dir)
{
	size_t len = 0;
	char *j = at_read(dir, AUDIT__JOURNAL, &len);
	int64_t off = -1;

	assert_non_null(j);
	assert_true(len >= J_BLOCK);
	if (memcmp(j, "SRAJRNL1", 8) == 0)
		off = (int64_t)le64((const uint8_t *)j + J_OFF_AT);
	free(j);
	return off;
}

/* Copy the files of @p from into a new scratch folder @p to, as the disk
 * holds them now (read through the page cache: everything written). */
static void
snapshot(const char *from, char to[512])
{
	static const char *const keep[] = { AUDIT__JOURNAL, AUDIT__CKPT_LAST,
		"checkpoint-key-test-key.v1.pub" };
	char name[AUDIT__NAME_LEN + 1], *buf;
	int64_t *days = NULL;
	size_t n = 0, i, len;

	at_mkdtemp("audit-snap", to);
	assert_int_equal(audit__list_days(from, &days, &n), 0);
	for (i = 0; i < n; i++) {
		audit__file_name(days[i], name);
		buf = at_read(from, name, &len);
		assert_non_null(buf);
		at_write(to, name, buf, len);
		free(buf);
	}
	free(days);
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		buf = at_read(from, keep[i], &len);
		if (buf == NULL)
			continue;
		at_write(to, keep[i], buf, len);
		free(buf);
	}
}

/* Open @p o (whose dir is a snapshot) expecting @p want; on success the
 * log is closed again. @p err gets audit_open's message. */
static int
reopen(struct audit_options *o, char err[256])
{
	struct audit *a = NULL;
	int rc = audit_open(o, &a, err);

	if (rc == 0)
		audit_close(a);
	return rc;
}

static void
append_n(struct audit *a, int n, const char *actor)
{
	struct audit_event ev = at_event(actor, "key.create", "k1");

	for (int i = 0; i < n; i++)
		assert_int_equal(audit_append(a, &ev, NULL), 0);
}

/* The journal_replay line's restored_bytes; 0 when there is none. */
static uint64_t
replayed(const char *dir)
{
	char name[AUDIT__NAME_LEN + 1], **v;
	int64_t *days = NULL;
	size_t n = 0, k, i;
	uint64_t got = 0;

	assert_int_equal(audit__list_days(dir, &days, &n), 0);
	assert_true(n > 0);
	audit__file_name(days[n - 1], name);
	free(days);
	k = at_lines(dir, name, &v);
	for (i = 0; i < k; i++)
		if (at_str_is(v[i], "action", "audit.journal_replay"))
			got += at_u64(v[i], "restored_bytes");
	free(v);
	return got;
}

/* A log as a power cut leaves it: @p n events written and acknowledged
 * (clock at AT_T0), the folder copied while the log was open into
 * f->snap, and f->o pointing there for the next open. */
struct jfix {
	char dir[512], snap[512], name[AUDIT__NAME_LEN + 1];
	struct audit_options o;
	int64_t start; /* the lap's first byte in the day's file */
};

static void
jfix_make(struct jfix *f, const char *tag, uint32_t journal_kib, int n)
{
	struct audit *a;

	at_mkdtemp(tag, f->dir);
	at_options(&f->o, f->dir, &at_program_signer, 1);
	f->o.journal_kib = journal_kib;
	f->o.checkpoint_events = 1000000; /* no checkpoint.last to reach */
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&f->o);
	append_n(a, n, "svc");
	snapshot(f->dir, f->snap);
	audit_close(a);
	audit__file_name(AT_T0 / AT_DAY, f->name);
	f->start = lap_start(f->snap);
	assert_true(f->start >= 0);
	f->o.dir = f->snap;
}

/* Cut the snapshot's day file to @p size bytes. */
static void
jfix_cut(struct jfix *f, const char *dir, int64_t size)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, f->name);
	assert_int_equal(truncate(path, size), 0);
}

static void
jfix_free(struct jfix *f)
{
	at_rmrf(f->snap);
	at_rmrf(f->dir);
}

/* 1. The page cache's part of the day file lost: every acknowledged line
 * comes back byte for byte, the chain verifies, the replay is recorded. */
static void
test_replay_after_power_cut(void **state)
{
	struct audit_verify_result res;
	struct jfix f;
	char err[256], again[512], *before, *after;
	size_t blen = 0, alen = 0;

	(void)state;
	jfix_make(&f, "audit-jcut", 0, 50);
	before = at_read(f.snap, f.name, &blen);
	assert_true(blen > (size_t)f.start + 50 * 100);
	/* Cut back to the lap's start, and to the middle of a line. */
	for (int mid = 0; mid < 2; mid++) {
		snapshot(f.snap, again);
		f.o.dir = again;
		jfix_cut(&f, again, f.start + mid * 137);
		assert_int_equal(reopen(&f.o, err), 0);
		after = at_read(again, f.name, &alen);
		assert_true(alen > blen);
		assert_memory_equal(after, before, blen);
		assert_int_equal(
		    replayed(again), blen - (size_t)f.start - mid * 137);
		free(after);
		at_verify(again, NULL, 0, NULL, 0, &res);
		assert_int_equal(res.first_seq, 1);
		at_rmrf(again);
	}
	free(before);
	jfix_free(&f);
}

/* 2. The lost part reads as zeros (the file's length survived, its
 * data did not): written back the same way. */
static void
test_replay_over_zeros(void **state)
{
	struct jfix f;
	char err[256], *before, *after;
	size_t blen = 0, alen = 0;

	(void)state;
	jfix_make(&f, "audit-jzero", 0, 20);
	before = at_read(f.snap, f.name, &blen);
	after = malloc(blen);
	assert_non_null(after);
	memcpy(after, before, blen);
	memset(after + f.start + 300, 0, blen - (size_t)f.start - 300);
	at_write(f.snap, f.name, after, blen);
	free(after);
	assert_int_equal(reopen(&f.o, err), 0);
	after = at_read(f.snap, f.name, &alen);
	assert_true(alen > blen);
	assert_memory_equal(after, before, blen);
	assert_int_equal(replayed(f.snap), blen - (size_t)f.start - 300);
	at_verify(f.snap, NULL, 0, NULL, 0, NULL);
	free(before);
	free(after);
	jfix_free(&f);
}

/* 3. A day file edited inside the journal's range, or shorter than what
 * the journal says was already durable, is refused, not repaired. */
static void
test_refuses_edit_and_loss(void **state)
{
	struct jfix f;
	char err[256], *buf, *p;
	size_t len = 0;

	(void)state;
	jfix_make(&f, "audit-jedit", 0, 10);
	buf = at_read(f.snap, f.name, &len);
	p = strstr(buf + f.start, "\"svc\"");
	assert_non_null(p);
	p[1] = 'S'; /* "Svc": an edit, not a lost page */
	at_write(f.snap, f.name, buf, len);
	assert_int_equal(reopen(&f.o, err), -EBADMSG);
	assert_non_null(strstr(err, "differs from the journal"));
	assert_non_null(strstr(err, f.name));
	/* Nothing was changed by the refusal. */
	free(buf);
	buf = at_read(f.snap, f.name, &len);
	assert_non_null(strstr(buf + f.start, "\"Svc\""));
	free(buf);
	at_rmrf(f.snap);

	snapshot(f.dir, f.snap);
	if (f.start > 0) {
		jfix_cut(&f, f.snap, f.start - 1);
		assert_int_equal(reopen(&f.o, err), -EBADMSG);
		assert_non_null(strstr(err, "durable lines are missing"));
	}
	jfix_free(&f);
}

/* 4. A small ring wraps many times: each lap starts after the day file
 * was made durable, and the last lap alone brings the lines back. */
static void
test_ring_wraps(void **state)
{
	struct audit_verify_result res;
	struct jfix f;
	char err[256], *before, *after;
	size_t blen = 0, alen = 0;

	(void)state;
	/* 16 blocks: a lap every 16 batches or fewer. */
	jfix_make(&f, "audit-jwrap", 64, 150);
	before = at_read(f.snap, f.name, &blen);
	assert_true(f.start > (int64_t)blen / 2); /* a late lap */
	jfix_cut(&f, f.snap, f.start);
	assert_int_equal(reopen(&f.o, err), 0);
	after = at_read(f.snap, f.name, &alen);
	assert_memory_equal(after, before, blen);
	at_verify(f.snap, NULL, 0, NULL, 0, &res);
	assert_true(res.lines > 150);
	free(before);
	free(after);
	jfix_free(&f);
}

static void
count_done(void *arg, int status, uint64_t seq)
{
	(void)seq;
	atomic_fetch_add((atomic_int *)arg, status == 0 ? 1 : 1000000);
}

/* 5. A batch too large for a small ring is made durable in the day file
 * itself; the lines still verify and a later cut is still replayed. */
static void
test_batch_larger_than_ring(void **state)
{
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.create", "k1");
	struct audit *a;
	char dir[512], res_big[4000], err[256];
	atomic_int done = 0;

	(void)state;
	at_mkdtemp("audit-jbig", dir);
	at_options(&o, dir, &at_program_signer, 1);
	o.journal_kib = 64;
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	memset(res_big, 'r', sizeof(res_big) - 1);
	res_big[sizeof(res_big) - 1] = '\0';
	ev.resource = res_big;
	/* Queued together: batches of far more than the ring's 64 KiB. */
	for (int i = 0; i < 400; i++)
		assert_int_equal(
		    audit_append_async(a, &ev, count_done, &done), 0);
	while (atomic_load(&done) < 400)
		usleep(1000);
	assert_int_equal(atomic_load(&done), 400);
	append_n(a, 5, "svc");
	audit_close(a);
	o.dir = dir;
	assert_int_equal(reopen(&o, err), 0);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	at_rmrf(dir);
}

/* 6. The day changes: yesterday's file is made durable and left alone,
 * the lap holds the new day's lines only. */
static void
test_day_change(void **state)
{
	struct audit_verify_result res;
	struct audit_options o;
	struct audit *a;
	char dir[512], snap[512], d1[AUDIT__NAME_LEN + 1];
	char d2[AUDIT__NAME_LEN + 1], err[256], path[600], *b1, *a1;
	size_t l1 = 0, m1 = 0;

	(void)state;
	at_mkdtemp("audit-jday", dir);
	at_options(&o, dir, &at_program_signer, 1);
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	append_n(a, 5, "svc");
	atomic_store(&at_now_ms, AT_T0 + AT_DAY);
	append_n(a, 5, "svc");
	snapshot(dir, snap);
	audit_close(a);
	audit__file_name(AT_T0 / AT_DAY, d1);
	audit__file_name(AT_T0 / AT_DAY + 1, d2);
	assert_int_equal(lap_start(snap), 0); /* the new day's first byte */
	b1 = at_read(snap, d1, &l1);
	snprintf(path, sizeof(path), "%s/%s", snap, d2);
	assert_int_equal(truncate(path, 0), 0);
	o.dir = snap;
	assert_int_equal(reopen(&o, err), 0);
	a1 = at_read(snap, d1, &m1);
	assert_int_equal(m1, l1);
	assert_memory_equal(a1, b1, l1);
	at_verify(snap, NULL, 0, NULL, 0, &res);
	assert_int_equal(res.files, 2);
	free(a1);
	free(b1);
	at_rmrf(snap);
	at_rmrf(dir);
}

/* 7. A torn last record (the crash hit its write: never acknowledged)
 * ends the replay; the records before it come back. */
static void
test_torn_record(void **state)
{
	struct jfix f;
	char err[256], *j, *day;
	size_t jlen = 0, dlen = 0;
	uint64_t first_len;

	(void)state;
	jfix_make(&f, "audit-jtorn", 0, 3);
	j = at_read(f.snap, AUDIT__JOURNAL, &jlen);
	first_len = le64((const uint8_t *)j + J_LEN_AT);
	j[J_BLOCK + 100] ^= 1; /* the second record's header */
	at_write(f.snap, AUDIT__JOURNAL, j, jlen);
	free(j);
	jfix_cut(&f, f.snap, f.start);
	assert_int_equal(reopen(&f.o, err), 0);
	assert_int_equal(replayed(f.snap), first_len);
	day = at_read(f.snap, f.name, &dlen);
	assert_true(dlen > (size_t)f.start + first_len);
	free(day);
	at_verify(f.snap, NULL, 0, NULL, 0, NULL);
	jfix_free(&f);
}

/* 8. A clean close leaves no lap to replay; a file that is not a journal
 * stops the open with its name. */
static void
test_clean_close_and_bad_file(void **state)
{
	struct audit_options o;
	struct audit *a;
	char dir[512], err[256];

	(void)state;
	at_mkdtemp("audit-jclose", dir);
	at_options(&o, dir, &at_program_signer, 1);
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	append_n(a, 5, "svc");
	assert_true(lap_start(dir) >= 0);
	audit_close(a);
	assert_int_equal(lap_start(dir), -1);
	assert_int_equal(reopen(&o, err), 0);
	assert_int_equal(replayed(dir), 0);

	at_write(dir, AUDIT__JOURNAL, "not a journal\n", 14);
	assert_int_equal(reopen(&o, err), -EBADMSG);
	assert_non_null(strstr(err, AUDIT__JOURNAL));
	assert_non_null(strstr(err, "not a journal"));
	at_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_after_power_cut),
		cmocka_unit_test(test_replay_over_zeros),
		cmocka_unit_test(test_refuses_edit_and_loss),
		cmocka_unit_test(test_ring_wraps),
		cmocka_unit_test(test_batch_larger_than_ring),
		cmocka_unit_test(test_day_change),
		cmocka_unit_test(test_torn_record),
		cmocka_unit_test(test_clean_close_and_bad_file),
	};

	return cmocka_run_group_tests(tests, at_group_setup, at_group_teardown);
}
