/*
 * tests/unit/appliance/test_audit.c: appliance/audit.c, the writer: the
 * line format (every field, valid JSON whatever the input, nothing cut
 * silently), refused events, 16 threads appending at once into a gapless
 * verifying chain, checkpoints by count and by time (and unsigned ones
 * when the signer fails), day rotation and retention on an injected clock,
 * fail-closed on a write that fails (RLIMIT_FSIZE, in a child process), on
 * a day file that cannot be opened and on a day file or journal removed
 * or replaced while open, recovery after each, and the resume
 * over a torn tail. Each test works in its own mkdtemp folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "tests/unit/appliance/audittest.h"

/* 1. One event with every field; the line is what docs/audit.md says. */
static void
test_line_format(void **state)
{
	struct audit_options o;
	struct audit_event ev;
	struct audit *a;
	char dir[512], name[AUDIT__NAME_LEN + 1], **v, *pem;
	uint64_t seq = 0;
	size_t n;

	(void)state;
	at_mkdtemp("audit-format", dir);
	at_options(&o, dir, &at_program_signer, 1);
	atomic_store(&at_now_ms, AT_T0 + 123);
	a = at_open(&o);
	ev = at_event("app:AAAABBBBCCCC", "inference", "/v1/chat/completions");
	ev.key = "sr_live_AAAABBBBCCCC";
	ev.input_tokens = 17;
	ev.output_tokens = 42;
	assert_int_equal(audit_append(a, &ev, &seq), 0);
	assert_int_equal(seq, 2); /* 1 is audit.start */
	audit_close(a);

	audit__file_name(AT_T0 / AT_DAY, name);
	assert_string_equal(name, "audit-2025-06-01.jsonl");
	n = at_lines(dir, name, &v);
	assert_int_equal(n, 3); /* start, the event, the closing checkpoint */
	assert_true(at_str_is(v[0], "action", "audit.start"));
	assert_int_equal(at_u64(v[0], "seq"), 1);
	assert_true(at_str_is(v[0], "prev",
	    "0000000000000000000000000000000"
	    "000000000000000000000000000000000"));
	assert_true(at_str_is(v[1], "ts", "2025-06-01T12:00:00.123Z"));
	assert_true(at_str_is(v[1], "event_id", "ap1-2"));
	assert_true(at_str_is(v[1], "actor", "app:AAAABBBBCCCC"));
	assert_true(at_str_is(v[1], "resource", "/v1/chat/completions"));
	assert_true(at_str_is(v[1], "key", "sr_live_AAAABBBBCCCC"));
	assert_true(at_str_is(v[1], "status", "200"));
	assert_true(at_str_is(v[1], "src", "192.0.2.7"));
	assert_int_equal(at_u64(v[1], "duration_ms"), 3);
	assert_int_equal(at_u64(v[1], "input_tokens"), 17);
	assert_int_equal(at_u64(v[1], "output_tokens"), 42);
	assert_non_null(strstr(v[1], ",\"hash\":\""));
	assert_true(at_str_is(v[2], "action", "audit.checkpoint"));
	assert_int_equal(at_u64(v[2], "head_seq"), 2);
	/* Non-inference events carry no token fields. */
	assert_null(strstr(v[0], "input_tokens"));
	free(v);
	pem = at_read(dir, "checkpoint-key-test-key.v1.pub", NULL);
	assert_non_null(pem);
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----\n"));
	free(pem);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	at_rmrf(dir);
}

/* 2. Hostile strings stay one valid JSON line; long ones are cut and
 * flagged; events missing what they need are refused. */
static void
test_escaping_and_refusals(void **state)
{
	static const char nasty[] = "a\"b\\c\n{\"x\":1}\r\t\x01\x7f\xff\xc3"
	                            "(\xe2\x82\xac";
	struct audit_options o;
	struct audit_event ev;
	char dir[512], name[AUDIT__NAME_LEN + 1], **v, big[4000];
	struct audit *a;
	yyjson_doc *d;
	const char *res;
	size_t n;

	(void)state;
	at_mkdtemp("audit-escape", dir);
	at_options(&o, dir, &at_program_signer, 1);
	a = at_open(&o);
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[AUDIT_RESOURCE_MAX - 1] = '\xe2'; /* a sequence across the cut */
	big[AUDIT_RESOURCE_MAX] = '\x82';
	big[AUDIT_RESOURCE_MAX + 1] = '\xac';
	ev = at_event(nasty, "auth.password", big);
	ev.src = nasty;
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	ev = at_event(NULL, "auth.password", "x");
	assert_int_equal(audit_append(a, &ev, NULL), -EINVAL);
	ev = at_event("u", NULL, "x");
	assert_int_equal(audit_append(a, &ev, NULL), -EINVAL);
	ev = at_event("u", "auth password", "x");
	assert_int_equal(audit_append(a, &ev, NULL), -EINVAL);
	ev = at_event("u", "audit.checkpoint", "x"); /* reserved */
	assert_int_equal(audit_append(a, &ev, NULL), -EINVAL);
	ev = at_event("u", "auth.password", "x");
	ev.status = "";
	assert_int_equal(audit_append(a, &ev, NULL), -EINVAL);
	assert_int_equal(audit_append(a, NULL, NULL), -EINVAL);
	audit_close(a);

	audit__file_name(AT_T0 / AT_DAY, name);
	n = at_lines(dir, name, &v);
	assert_int_equal(n, 3);
	d = yyjson_read(v[1], strlen(v[1]), 0);
	assert_non_null(d); /* valid JSON, on one line */
	assert_string_equal(
	    yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(d), "actor")),
	    "a\"b\\c\n{\"x\":1}\r\t\x01\x7f\xef\xbf\xbd\xef\xbf\xbd("
	    "\xe2\x82\xac");
	res =
	    yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(d), "resource"));
	assert_int_equal(strlen(res), AUDIT_RESOURCE_MAX - 1);
	assert_true(yyjson_get_bool(
	    yyjson_obj_get(yyjson_doc_get_root(d), "truncated")));
	yyjson_doc_free(d);
	free(v);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	at_rmrf(dir);
}

/* 3. 16 threads, blocking and async appends mixed: every acknowledged
 * seq is distinct, the chain has no gap, verify passes. */
#define THREADS 16
#define PER_THREAD 1500

struct worker {
	struct audit *a;
	unsigned id;
	uint64_t seqs[PER_THREAD];
	atomic_uint async_done;
	atomic_int async_err;
};

static void
async_done(void *arg, int status, uint64_t seq)
{
	struct worker *w = arg;

	if (status != 0 || seq == 0)
		atomic_store(&w->async_err, status ? status : -1);
	atomic_fetch_add(&w->async_done, 1);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct audit_event ev;
	char actor[32];
	unsigned i;
	int rc;

	snprintf(actor, sizeof(actor), "user:w%u", w->id);
	ev = at_event(actor, "key.create", "k");
	for (i = 0; i < PER_THREAD; i++) {
		if (i % 3 == 2) {
			rc = audit_append_async(w->a, &ev, async_done, w);
			w->seqs[i] = rc == 0 ? UINT64_MAX : 0;
		} else {
			rc = audit_append(w->a, &ev, &w->seqs[i]);
			if (rc != 0)
				w->seqs[i] = 0;
		}
	}
	return NULL;
}

/* What the commit observer saw: one call per durable batch. */
static atomic_ullong observed_commits, observed_lines;

static void
observe_commit(void *arg, uint64_t usec, uint32_t lines)
{
	(void)arg;
	(void)usec;
	atomic_fetch_add(&observed_commits, 1);
	atomic_fetch_add(&observed_lines, lines);
}

static void
test_sixteen_threads(void **state)
{
	static struct worker w[THREADS];
	struct audit_verify_result res;
	struct audit_options o;
	struct audit_stats st;
	pthread_t th[THREADS];
	uint8_t *seen;
	char dir[512];
	struct audit *a;
	unsigned t, i, async = 0, blocking = 0;

	(void)state;
	at_mkdtemp("audit-threads", dir);
	at_options(&o, dir, &at_program_signer, 0);
	o.checkpoint_events = 2000;
	o.on_commit = observe_commit;
	a = at_open(&o);
	for (t = 0; t < THREADS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].a = a;
		w[t].id = t;
		assert_int_equal(
		    pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	assert_int_equal(audit_checkpoint(a), 0);
	audit_stats_get(a, &st);
	seen = calloc(st.seq + 1, 1);
	assert_non_null(seen);
	for (t = 0; t < THREADS; t++) {
		assert_int_equal(atomic_load(&w[t].async_err), 0);
		assert_int_equal(atomic_load(&w[t].async_done), PER_THREAD / 3);
		for (i = 0; i < PER_THREAD; i++) {
			if (w[t].seqs[i] == UINT64_MAX) {
				async++;
				continue;
			}
			assert_true(
			    w[t].seqs[i] >= 2 && w[t].seqs[i] <= st.seq);
			assert_int_equal(seen[w[t].seqs[i]], 0);
			seen[w[t].seqs[i]] = 1;
			blocking++;
		}
	}
	free(seen);
	assert_int_equal(async + blocking, THREADS * PER_THREAD);
	assert_int_equal(st.refused, 0);
	assert_true(st.batches < st.events); /* group commit happened */
	/* The observer saw every durable batch and line the stats count. */
	assert_int_equal(atomic_load(&observed_commits), st.batches);
	assert_int_equal(atomic_load(&observed_lines), st.events);
	assert_true(st.checkpoints >= 2);
	audit_close(a);
	at_verify(dir, NULL, 0, NULL, 0, &res);
	/* start + events + checkpoints, nothing else, no gap */
	assert_int_equal(res.lines, 1 + THREADS * PER_THREAD + res.checkpoints);
	assert_int_equal(res.first_seq, 1);
	assert_int_equal(res.last_seq, res.lines);
	assert_int_equal(res.uncovered, 0);
	at_rmrf(dir);
}

/* 4. Checkpoints every N events and every T seconds; a failing signer
 * leaves an unsigned checkpoint and the events go on. */
static void
test_checkpoints(void **state)
{
	struct audit_verify_result res;
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.get", "k");
	struct audit_stats st;
	struct audit *a;
	char dir[512];
	int i;

	(void)state;
	at_mkdtemp("audit-ckpt", dir);
	at_options(&o, dir, &at_program_signer, 1);
	o.checkpoint_events = 50;
	o.checkpoint_seconds = 60;
	a = at_open(&o);
	for (i = 0; i < 500; i++)
		assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_stats_get(a, &st);
	assert_true(st.checkpoints >= 9);
	/* By time: one event, then a minute passes with no traffic. */
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_stats_get(a, &st);
	i = (int)st.checkpoints;
	atomic_fetch_add(&at_now_ms, 61 * 1000);
	for (int tries = 0; tries < 100 && (int)st.checkpoints == i; tries++) {
		usleep(20 * 1000);
		audit_stats_get(a, &st);
	}
	assert_int_equal(st.checkpoints, i + 1);
	/* The HSM is down: the checkpoint is written unsigned. */
	atomic_store(&at_program_signer.fail, P11_ERECOVER);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	assert_int_equal(audit_checkpoint(a), 0);
	atomic_store(&at_program_signer.fail, 0);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	at_verify(dir, NULL, 0, NULL, 0, &res);
	assert_int_equal(res.unsigned_checkpoints, 1);
	assert_int_equal(res.checkpoints, st.checkpoints + 1);
	at_rmrf(dir);
}

/* 5. One file per UTC day, the chain running across them; files past
 * retention removed, each removal an event, the log still verifies. */
static void
test_rotation_retention(void **state)
{
	struct audit_verify_result res;
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.get", "k");
	char dir[512], name[AUDIT__NAME_LEN + 1], **v, path[600];
	struct audit *a;
	struct stat stt;
	uint64_t seq_before, seq;
	size_t n;
	int day;

	(void)state;
	at_mkdtemp("audit-rotate", dir);
	at_options(&o, dir, &at_program_signer, 1);
	o.retention_days = 3;
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	for (day = 0; day < 6; day++) {
		atomic_store(&at_now_ms, AT_T0 + day * AT_DAY);
		assert_int_equal(audit_append(a, &ev, &seq_before), 0);
		assert_int_equal(audit_append(a, &ev, &seq), 0);
		assert_true(
		    seq > seq_before); /* a timed checkpoint may sit between */
	}
	audit_close(a);
	/* On day 5, days 0 and 1 are past 3 days of retention; 2..5 stay. */
	for (day = 0; day < 6; day++) {
		audit__file_name(AT_T0 / AT_DAY + day, name);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		assert_int_equal(stat(path, &stt) == 0, day >= 2);
	}
	audit__file_name(AT_T0 / AT_DAY + 5, name);
	n = at_lines(dir, name, &v);
	assert_true(n >= 3);
	/* The day-5 file starts with the removal of day 1's file (day 0's
	 * went on day 4). */
	assert_true(at_str_is(v[0], "action", "audit.retention.remove"));
	assert_true(at_str_is(v[0], "resource", "audit-2025-06-02.jsonl"));
	assert_true(at_str_is(v[0], "status", "ok"));
	free(v);
	at_verify(dir, NULL, 0, NULL, 0, &res);
	assert_int_equal(res.files, 4);
	assert_true(res.first_seq > 1);
	/* The clock goes back a day: lines still go to the newest file. */
	atomic_store(&at_now_ms, AT_T0 + 4 * AT_DAY);
	a = at_open(&o);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	at_verify(dir, NULL, 0, NULL, 0, &res);
	assert_int_equal(res.files, 4);
	at_rmrf(dir);
}

/* 6. Fail-closed on a write the kernel refuses (RLIMIT_FSIZE: write()
 * fails with EFBIG), in a child so the limit stays there; recovery after
 * the limit is lifted. The child's exit status names the failed step. */
static int
fsize_child(const char *dir)
{
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.create", "k");
	struct audit_stats st;
	struct rlimit rl;
	struct audit *a;
	struct worker w;
	int i, rc;

	signal(SIGXFSZ, SIG_IGN);
	at_options(&o, dir, &at_program_signer, 0);
	if (audit_open(&o, &a, NULL) != 0)
		return 10;
	for (i = 0; i < 10; i++)
		if (audit_append(a, &ev, NULL) != 0)
			return 11;
	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = 4096; /* the day file is already near it */
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		return 12;
	for (i = 0; i < 40; i++) {
		rc = audit_append(a, &ev, NULL);
		if (rc == -EFBIG)
			break;
		if (rc != 0)
			return 13;
	}
	if (i == 40)
		return 14; /* the limit never bit */
	/* Every later event is refused as well, blocking or async. */
	if (audit_append(a, &ev, NULL) != -EFBIG)
		return 15;
	memset(&w, 0, sizeof(w));
	if (audit_append_async(a, &ev, async_done, &w) != 0)
		return 16;
	while (atomic_load(&w.async_done) == 0)
		usleep(1000);
	if (atomic_load(&w.async_err) != -EFBIG)
		return 17;
	audit_stats_get(a, &st);
	if (st.refused < 3 || st.last_error != -EFBIG)
		return 18;
	rl.rlim_cur = RLIM_INFINITY;
	if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
		return 19;
	if (audit_append(a, &ev, NULL) != 0)
		return 20;
	audit_close(a);
	return 0;
}

static void
test_fail_closed_write(void **state)
{
	struct audit_query q = { .action = "audit.recovered" };
	struct audit_verify_result res;
	char dir[512];
	uint64_t matched = 0;
	char err[256];
	FILE *null;
	pid_t pid;
	int st;

	(void)state;
	at_mkdtemp("audit-efbig", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fsize_child(dir));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("child failed at step %d", WEXITSTATUS(st));
	/* The chain resumed exactly: no half line, no gap. */
	at_verify(dir, NULL, 0, NULL, 0, &res);
	null = fopen("/dev/null", "w");
	assert_int_equal(audit_query_run(dir, &q, null, &matched, err), 0);
	fclose(null);
	assert_int_equal(matched, 1);
	at_rmrf(dir);
}

/* 7. Fail-closed when the day's file cannot be opened (its name is a
 * folder): refused with the error, recovered once the path is free. */
static void
test_fail_closed_open(void **state)
{
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.create", "k");
	char dir[512], name[AUDIT__NAME_LEN + 1], path[600];
	struct audit *a;

	(void)state;
	at_mkdtemp("audit-eisdir", dir);
	at_options(&o, dir, &at_program_signer, 1);
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit__file_name(AT_T0 / AT_DAY + 1, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(mkdir(path, 0700), 0);
	atomic_store(&at_now_ms, AT_T0 + AT_DAY);
	assert_int_equal(audit_append(a, &ev, NULL), -EISDIR);
	assert_int_equal(audit_append(a, &ev, NULL), -EISDIR);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	at_rmrf(dir);
}

/* 7b. The day's file or the journal removed or replaced while open: the
 * lines would go to a file nobody can read, so they are refused until the
 * named files are the open ones again. */
static void
test_fail_closed_removed(void **state)
{
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.create", "k");
	char dir[512], name[AUDIT__NAME_LEN + 1], path[600], aside[640];
	char jpath[600], jaside[640];
	struct audit *a;
	int fd;

	(void)state;
	at_mkdtemp("audit-removed", dir);
	at_options(&o, dir, &at_program_signer, 1);
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit__file_name(AT_T0 / AT_DAY, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(aside, sizeof(aside), "%s.aside", path);
	/* Moved away: refused, and accepted again once it is back. */
	assert_int_equal(rename(path, aside), 0);
	assert_int_equal(audit_append(a, &ev, NULL), -ENOENT);
	/* A new file under the name is not the one open either. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(audit_append(a, &ev, NULL), -ENOENT);
	assert_int_equal(rename(aside, path), 0);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	/* The journal likewise. */
	snprintf(jpath, sizeof(jpath), "%s/%s", dir, AUDIT__JOURNAL);
	snprintf(jaside, sizeof(jaside), "%s.aside", jpath);
	assert_int_equal(rename(jpath, jaside), 0);
	assert_int_equal(audit_append(a, &ev, NULL), -ENOENT);
	assert_int_equal(rename(jaside, jpath), 0);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	at_rmrf(dir);
}

/* 8. A crash left half a batch: the resume cuts it, records it, and the
 * chain goes on; a folder that cannot be made is refused at open. */
static void
test_torn_tail(void **state)
{
	static const char torn[] = "{\"ts\":\"2025-06-01T12:00:01.000Z\","
	                           "\"event_id\":\"ap1-9\",\"seq\":9,\"act";
	struct audit_options o;
	struct audit_event ev = at_event("svc", "key.create", "k");
	char dir[512], name[AUDIT__NAME_LEN + 1], path[600], **v, err[256];
	struct audit *a;
	size_t n, len = 0;
	char *buf;
	FILE *f;

	(void)state;
	at_mkdtemp("audit-torn", dir);
	at_options(&o, dir, &at_program_signer, 1);
	atomic_store(&at_now_ms, AT_T0);
	a = at_open(&o);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	audit__file_name(AT_T0 / AT_DAY, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "a");
	assert_non_null(f);
	fputs(torn, f);
	fclose(f);
	at_verify(dir, NULL, -EBADMSG, name, 4, NULL);
	a = at_open(&o);
	assert_int_equal(audit_append(a, &ev, NULL), 0);
	audit_close(a);
	n = at_lines(dir, name, &v);
	assert_true(at_str_is(v[3], "action", "audit.torn_tail"));
	assert_int_equal(at_u64(v[3], "torn_bytes"), strlen(torn));
	free(v);
	buf = at_read(dir, name, &len);
	assert_null(memmem(buf, len, torn, strlen(torn)));
	free(buf);
	at_verify(dir, NULL, 0, NULL, 0, NULL);
	(void)n;
	/* A log folder under a file cannot be made. */
	at_options(&o, path, &at_program_signer, 1);
	assert_int_equal(audit_open(&o, &a, err), -ENOTDIR);
	assert_non_null(strstr(err, name));
	at_rmrf(dir);
}

/* An idle log's writer sleeps: over half a second with nothing to write,
 * the whole process uses well under half a second of CPU (a writer that
 * spun on its timed wait used all of it). */
static void
test_idle_writer_sleeps(void **state)
{
	struct audit_options o;
	struct audit *a;
	struct timespec c0, c1, w = { 0, 500 * 1000 * 1000 };
	char dir[512];
	double used;

	(void)state;
	at_mkdtemp("audit-idle", dir);
	at_options(&o, dir, &at_program_signer, 1);
	a = at_open(&o);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	nanosleep(&w, NULL);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	audit_close(a);
	used = (double)(c1.tv_sec - c0.tv_sec) +
	    (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	assert_true(used < 0.25);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_escaping_and_refusals),
		cmocka_unit_test(test_sixteen_threads),
		cmocka_unit_test(test_checkpoints),
		cmocka_unit_test(test_rotation_retention),
		cmocka_unit_test(test_fail_closed_write),
		cmocka_unit_test(test_fail_closed_open),
		cmocka_unit_test(test_fail_closed_removed),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_idle_writer_sleeps),
	};

	return cmocka_run_group_tests(tests, at_group_setup, at_group_teardown);
}
