/*
 * tests/unit/appliance/test_metrics.c: appliance/metrics.c: after a known
 * set of requests, connections, refusals and HSM operations, the rendered
 * text holds the expected series and values; every line is a HELP, a TYPE
 * or a sample of the text format 0.0.4; each family has one HELP and one
 * TYPE before its samples, no series appears twice, counters end in
 * _total; histogram buckets are cumulative and end in +Inf equal to
 * _count. promtool checks the text too where it is installed; where it is
 * not, that test says so and is skipped, never passed silently.
 *
 * The metrics are process-wide: the group set-up records everything once
 * and the tests only render, so the values are exact. Requests are
 * counted per loop (metrics_bind_loop): the three /health requests come
 * from this thread and two threads bound as loops, and the rendered
 * counts and histograms are their sums. The audit log's families are
 * rendered from a fixed struct audit_stats and three counted commits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "appliance/audit.h"
#include "appliance/internal.h"

#define PROMTOOL "/usr/bin/promtool"
#define NAME_RE "[a-zA-Z_:][a-zA-Z0-9_:]*"
#define LABEL_RE "[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
#define VALUE_RE "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|\\+Inf|-Inf|NaN)"

static struct tls_stats tls;
static const struct audit_stats audit_st = { .seq = 1234,
	.events = 1200,
	.batches = 80,
	.checkpoints = 3,
	.refused = 17,
	.last_error = -28 };

/* One /health request counted by a thread bound as loop *arg. */
static void *
count_as_loop(void *arg)
{
	metrics_bind_loop(*(unsigned *)arg);
	metrics_request(MR_HEALTH, 200, 100);
	return NULL;
}

static int
record(void **state)
{
	unsigned loop_ids[2] = { 0, 21 }; /* 21 shares a shard with 5 */
	pthread_t t[2];
	int i;

	(void)state;
	metrics_request(MR_HEALTH, 200, 100);
	for (i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, count_as_loop, &loop_ids[i]) !=
		    0)
			return -1;
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	metrics_request(MR_READY, 503, 2000);
	metrics_request(MR_METRICS, 200, 600000);
	metrics_request(MR_OTHER, 404, 10);
	metrics_request(MR_OTHER, 418, 30000000); /* 30 s: only +Inf */
	metrics_request(MR_OTHER, 101, 500);      /* exactly on a bound */
	metrics_request(MR_OTHER, 0, 1);
	metrics_request((enum metric_route)17, 200, 1);
	for (i = 0; i < 3; i++)
		metrics_conn_open(1);
	metrics_conn_open(-1);
	metrics_conn_refused();
	metrics_conn_refused();
	for (i = 0; i < 4; i++)
		metrics_ratelimited();
	metrics_hsm_op(700);
	metrics_hsm_op(3000000);
	metrics_audit_commit(NULL, 300, 5);
	metrics_audit_commit(NULL, 1200, 9);
	metrics_audit_commit(NULL, 40000, 1);
	atomic_init(&tls.handshakes, 7);
	atomic_init(&tls.handshake_failures, 2);
	atomic_init(&tls.resumed, 3);
	return 0;
}

/* The rendered text, NUL-terminated; the caller frees it. */
static char *
render(struct tls_stats *t)
{
	struct buf b = { 0 };
	char *s;

	assert_int_equal(metrics_render(&b, t), 0);
	assert_int_equal(metrics_render_audit(&b, &audit_st), 0);
	s = malloc(b.len + 1);
	assert_non_null(s);
	memcpy(s, b.data, b.len);
	s[b.len] = '\0';
	buf_free(&b);
	return s;
}

/* "strongroom_http_requests_total{route=...,code=...}" into @p out. */
static const char *
req(char *out, size_t cap, const char *route, const char *code)
{
	snprintf(out, cap,
	    "strongroom_http_requests_total{route=\"%s\",code=\"%s\"}", route,
	    code);
	return out;
}

/* The value of the sample named exactly @p series; fails when absent. */
static double
value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	for (; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	fail_msg("no series %s", series);
	return -1;
}

/* value_of() of the series printf makes of @p fmt. */
static double __attribute__((format(printf, 2, 3)))
valuef(const char *text, const char *fmt, ...)
{
	char series[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(series, sizeof(series), fmt, ap);
	va_end(ap);
	return value_of(text, series);
}

static void
test_values(void **state)
{
	char *t = render(&tls);
	const char *lat = "strongroom_http_request_duration_seconds";
	const char *hsm = "strongroom_hsm_operation_duration_seconds";
	char name[160];
	double start;

	(void)state;
	assert_true(value_of(t, req(name, sizeof(name), "health", "200")) == 3);
	assert_true(value_of(t, req(name, sizeof(name), "ready", "503")) == 1);
	assert_true(
	    value_of(t, req(name, sizeof(name), "metrics", "200")) == 1);
	assert_true(value_of(t, req(name, sizeof(name), "other", "404")) == 1);
	assert_true(value_of(t, req(name, sizeof(name), "other", "4xx")) == 1);
	assert_true(value_of(t, req(name, sizeof(name), "other", "1xx")) == 1);
	assert_true(
	    value_of(t, req(name, sizeof(name), "other", "other")) == 1);
	assert_true(value_of(t, req(name, sizeof(name), "other", "200")) == 1);
	/* Series that were never counted are left out. */
	assert_null(strstr(t, req(name, sizeof(name), "ready", "200")));
	assert_true(
	    valuef(t, "%s_bucket{route=\"health\",le=\"0.0005\"}", lat) == 3);
	assert_true(valuef(t, "%s_count{route=\"health\"}", lat) == 3);
	assert_true(valuef(t, "%s_sum{route=\"health\"}", lat) == 0.0003);
	/* 10, 500, 1 and 1 us */
	assert_true(
	    valuef(t, "%s_bucket{route=\"other\",le=\"0.0005\"}", lat) == 4);
	assert_true(valuef(t, "%s_bucket{route=\"other\",le=\"5\"}", lat) == 4);
	assert_true(
	    valuef(t, "%s_bucket{route=\"other\",le=\"+Inf\"}", lat) == 5);
	assert_true(
	    valuef(t, "%s_bucket{route=\"metrics\",le=\"0.5\"}", lat) == 0);
	assert_true(
	    valuef(t, "%s_bucket{route=\"metrics\",le=\"1\"}", lat) == 1);
	assert_true(valuef(t, "%s_bucket{le=\"0.0005\"}", hsm) == 0);
	assert_true(valuef(t, "%s_bucket{le=\"0.001\"}", hsm) == 1);
	assert_true(valuef(t, "%s_bucket{le=\"2.5\"}", hsm) == 1);
	assert_true(valuef(t, "%s_bucket{le=\"5\"}", hsm) == 2);
	assert_true(valuef(t, "%s_count", hsm) == 2);
	assert_true(valuef(t, "%s_sum", hsm) == 3.0007);

	assert_true(value_of(t, "strongroom_connections_open") == 2);
	assert_true(value_of(t, "strongroom_connections_refused_total") == 2);
	assert_true(
	    value_of(t, "strongroom_http_requests_ratelimited_total") == 4);
	assert_true(value_of(t, "strongroom_tls_handshakes_total") == 7);
	assert_true(
	    value_of(t, "strongroom_tls_handshake_failures_total") == 2);
	assert_true(value_of(t, "strongroom_tls_resumptions_total") == 3);
	assert_non_null(
	    strstr(t, "\nstrongroom_build_info{version=\"0.1.0\",compiler=\""));
	start = value_of(t, "strongroom_process_start_time_seconds");
	if (!(start > 1.5e9 && start <= (double)time(NULL) + 1))
		fail_msg("process start %.3f, now %lld", start,
		    (long long)time(NULL));
	free(t);

	/* Without TLS counters their families are left out. */
	t = render(NULL);
	assert_null(strstr(t, "strongroom_tls_"));
	assert_non_null(strstr(t, "strongroom_connections_open 2\n"));
	free(t);
}

struct family {
	char name[96], type[16];
	int helps, types, samples;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Does sample @p name belong to family @p f? */
static int
belongs(const struct family *f, const char *name)
{
	size_t n = strlen(f->name);
	const char *sfx = name + n;

	if (strncmp(name, f->name, n) != 0)
		return 0;
	if (*sfx == '\0')
		return strcmp(f->type, "histogram") != 0;
	return strcmp(f->type, "histogram") == 0 &&
	    (strcmp(sfx, "_bucket") == 0 || strcmp(sfx, "_sum") == 0 ||
	        strcmp(sfx, "_count") == 0);
}

/* Check @p text (changed in place), which must hold @p min_families. */
static void
check_format(char *text, size_t min_families)
{
	struct family fam[32], *cur = NULL;
	char *series[512], *line, *save = NULL, name[96];
	regex_t help, type, sample;
	regmatch_t m[2];
	size_t nfam = 0, nser = 0, i, j;

	assert_int_equal(
	    regcomp(&help, "^# HELP (" NAME_RE ") [^\n]+$", REG_EXTENDED), 0);
	assert_int_equal(regcomp(&type,
	                     "^# TYPE (" NAME_RE
	                     ") (counter|gauge|histogram|summary|untyped)$",
	                     REG_EXTENDED),
	    0);
	assert_int_equal(regcomp(&sample,
	                     "^(" NAME_RE ")(\\{" LABEL_RE "(," LABEL_RE
	                     ")*\\})? " VALUE_RE "$",
	                     REG_EXTENDED),
	    0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		int is_help = regexec(&help, line, 2, m, 0) == 0;
		int is_type = !is_help && regexec(&type, line, 2, m, 0) == 0;

		if (!is_help && !is_type) {
			if (regexec(&sample, line, 2, m, 0) != 0)
				fail_msg("not a sample: '%s'", line);
			snprintf(name, sizeof(name), "%.*s",
			    (int)(m[1].rm_eo - m[1].rm_so), line);
			if (cur == NULL || cur->types != 1 ||
			    !belongs(cur, name))
				fail_msg("sample outside its family: %s", line);
			cur->samples++;
			assert_true(nser < 512);
			series[nser++] = line;
			*strrchr(line, ' ') = '\0';
			continue;
		}
		snprintf(name, sizeof(name), "%.*s",
		    (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
		if (strncmp(name, "strongroom_", 11) != 0)
			fail_msg("name without the prefix: %s", name);
		for (cur = NULL, i = 0; i < nfam; i++)
			if (strcmp(fam[i].name, name) == 0)
				cur = &fam[i];
		if (cur == NULL) {
			assert_true(nfam < 32);
			cur = &fam[nfam++];
			memset(cur, 0, sizeof(*cur));
			snprintf(cur->name, sizeof(cur->name), "%s", name);
		} else if (cur->samples > 0) {
			fail_msg("%s: comment after its samples", name);
		}
		if (is_help) {
			cur->helps++;
		} else {
			cur->types++;
			snprintf(cur->type, sizeof(cur->type), "%s",
			    line + m[1].rm_eo + 1);
		}
	}
	for (i = 0; i < nfam; i++) {
		if (fam[i].helps != 1 || fam[i].types != 1)
			fail_msg("%s: %d HELP, %d TYPE", fam[i].name,
			    fam[i].helps, fam[i].types);
		j = strlen(fam[i].name);
		if (strcmp(fam[i].type, "counter") == 0 &&
		    (j < 6 || strcmp(fam[i].name + j - 6, "_total") != 0))
			fail_msg("counter %s without _total", fam[i].name);
	}
	qsort(series, nser, sizeof(series[0]), cmp_str);
	for (i = 1; i < nser; i++)
		if (strcmp(series[i - 1], series[i]) == 0)
			fail_msg("series twice: %s", series[i]);
	assert_true(nfam >= min_families);
	regfree(&help);
	regfree(&type);
	regfree(&sample);
}

/* The audit log's health as the stats say, and its commit latencies in
 * the buckets that hold them. */
static void
test_audit(void **state)
{
	char *t = render(&tls);
	const char *h = "strongroom_audit_commit_duration_seconds";

	(void)state;
	assert_true(value_of(t, "strongroom_audit_lines_total") == 1200);
	assert_true(value_of(t, "strongroom_audit_commits_total") == 80);
	assert_true(value_of(t, "strongroom_audit_checkpoints_total") == 3);
	assert_true(value_of(t, "strongroom_audit_refused_total") == 17);
	assert_true(value_of(t, "strongroom_audit_writable") == 0);
	assert_true(value_of(t, "strongroom_audit_sequence") == 1234);
	assert_true(valuef(t, "%s_bucket{le=\"0.0005\"}", h) == 1);
	assert_true(valuef(t, "%s_bucket{le=\"0.0025\"}", h) == 2);
	assert_true(valuef(t, "%s_bucket{le=\"0.025\"}", h) == 2);
	assert_true(valuef(t, "%s_bucket{le=\"0.05\"}", h) == 3);
	assert_true(valuef(t, "%s_count", h) == 3);
	assert_true(valuef(t, "%s_sum", h) > 0.0414);
	assert_true(valuef(t, "%s_sum", h) < 0.0416);
	free(t);
}

static void
test_format(void **state)
{
	char *t;

	(void)state;
	t = render(&tls);
	check_format(t, 18);
	free(t);
	t = render(NULL);
	check_format(t, 15);
	free(t);
}

/* @p line's series name and labels without le: "name{a="b"}". */
static void
series_key(const char *line, const char *suffix, char *out, size_t cap)
{
	const char *s = strstr(line, suffix), *le, *end;
	size_t n = (size_t)(s - line);

	snprintf(out, cap, "%.*s", (int)n, line);
	s += strlen(suffix);
	if (*s != '{')
		return;
	le = strstr(s, "le=\"");
	end = strchr(s, '}');
	if (le == NULL) {
		snprintf(out + n, cap - n, "%.*s", (int)(end - s + 1), s);
	} else if (le > s + 1) {
		/* Labels before le (le comes last), comma dropped. */
		snprintf(out + n, cap - n, "%.*s}", (int)(le - s - 1), s);
	}
}

static void
test_histograms(void **state)
{
	struct hs {
		char key[160];
		double last_le, last, inf;
		int buckets;
	} h[16];
	char *t = render(&tls), *line, *save = NULL, key[160];
	size_t nh = 0, i, checked = 0;
	struct hs *cur;

	(void)state;
	memset(h, 0, sizeof(h));
	for (line = strtok_r(t, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		double v = strtod(strrchr(line, ' ') + 1, NULL);

		if (line[0] == '#')
			continue;
		if (strstr(line, "_bucket{") != NULL) {
			const char *le = strstr(line, "le=\"") + 4;

			series_key(line, "_bucket", key, sizeof(key));
			for (cur = NULL, i = 0; i < nh; i++)
				if (strcmp(h[i].key, key) == 0)
					cur = &h[i];
			if (cur == NULL) {
				assert_true(nh < 16);
				cur = &h[nh++];
				snprintf(cur->key, sizeof(cur->key), "%s", key);
				cur->last_le = -1;
				cur->inf = -1;
			}
			/* le rises, counts never fall. */
			assert_true(strtod(le, NULL) > cur->last_le);
			assert_true(v >= cur->last);
			cur->last_le = strtod(le, NULL);
			cur->last = v;
			cur->buckets++;
			if (strncmp(le, "+Inf\"", 5) == 0)
				cur->inf = v;
		} else if (strstr(line, "_count") != NULL &&
		    strstr(line, "duration_seconds") != NULL) {
			series_key(line, "_count", key, sizeof(key));
			for (cur = NULL, i = 0; i < nh; i++)
				if (strcmp(h[i].key, key) == 0)
					cur = &h[i];
			if (cur == NULL)
				fail_msg("_count before its buckets: %s", line);
			assert_int_equal(cur->buckets, 14);
			assert_true(cur->inf == v);
			assert_true(cur->last == v);
			checked++;
		}
	}
	/* Four routes, the HSM and the audit log's commits. */
	assert_int_equal(nh, 6);
	assert_int_equal(checked, 6);
	free(t);
}

static void
test_promtool(void **state)
{
	char dir[] = "/tmp/sr-metrics-XXXXXX", file[64], cmd[256];
	char *t;
	FILE *f;
	int rc;

	(void)state;
	if (access(PROMTOOL, X_OK) != 0) {
		print_message("promtool not installed (" PROMTOOL
		              "; Debian package prometheus): skipped\n");
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/metrics.txt", dir);
	t = render(&tls);
	f = fopen(file, "w");
	assert_non_null(f);
	fputs(t, f);
	assert_int_equal(fclose(f), 0);
	free(t);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s", file);
	rc = system(cmd);
	unlink(file);
	rmdir(dir);
	assert_true(WIFEXITED(rc));
	assert_int_equal(WEXITSTATUS(rc), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_histograms),
		cmocka_unit_test(test_promtool),
	};

	return cmocka_run_group_tests_name(
	    "appliance/metrics", tests, record, NULL);
}
