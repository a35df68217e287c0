/*
 * appliance/metrics.c: the daemon's process-wide metrics and their
 * rendering in the Prometheus text format 0.0.4: requests by route and
 * status, request and HSM latency histograms, connections open and
 * refused, rate-limited requests, the TLS engine's counters, build info,
 * the process start time, and the audit log's health (its counters as the
 * caller reads them from the log, and the commit latencies the log reports
 * here). Every name starts with "strongroom_".
 *
 * Counting is a relaxed atomic add, from any thread, with no lock and no
 * allocation. Requests, counted on every answer, go to the counting
 * loop's own shard (metrics_bind_loop), on cache lines no other loop
 * writes: with shared counters two loops spent about 3 % of a keep-alive
 * request passing those lines between cores. Rendering adds the shards. It must
 * never block a loop thread, never emit a series twice or a family without its
 * HELP and TYPE lines, and never put request data (paths, addresses, keys) into
 * a label: labels come from fixed tables only, so the number of series is
 * bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "appliance/audit.h"
#include "appliance/internal.h"

#ifndef SR_VERSION
#define SR_VERSION "0.1.0"
#endif
#if defined(__clang__)
#define SR_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define SR_COMPILER "gcc " __VERSION__
#else
#define SR_COMPILER "unknown"
#endif

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bound_us[] = { 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000 };
static const char *const bound_le[] = { "0.0005", "0.001", "0.0025", "0.005",
	"0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
	"+Inf" };
#define NBOUNDS (sizeof(bound_us) / sizeof(bound_us[0]))
#define NBUCKETS (NBOUNDS + 1)
_Static_assert(
    sizeof(bound_le) / sizeof(bound_le[0]) == NBUCKETS, "one label per bucket");

/* Buckets hold their own observations only; rendering sums them up. */
struct hist {
	atomic_ullong bucket[NBUCKETS];
	atomic_ullong sum_us;
};

static const char *const route_name[MR_COUNT] = { "health", "ready", "metrics",
	"other" };

/* Status codes counted exactly; any other counts under its class ("4xx"),
 * and one outside 100..599 under "other". */
static const int exact_code[] = { 200, 201, 202, 204, 206, 301, 302, 304, 307,
	308, 400, 401, 403, 404, 405, 406, 408, 409, 411, 412, 413, 414, 415,
	416, 422, 429, 431, 500, 501, 502, 503, 504, 505 };
#define NEXACT (sizeof(exact_code) / sizeof(exact_code[0]))
#define NCODES (NEXACT + 5 + 1)

/* Shard 0 counts for threads that are not loops; loop i counts into
 * 1 + i % (METRICS_SHARDS - 1). */
#define METRICS_SHARDS 17
struct req_shard {
	atomic_ullong requests[MR_COUNT][NCODES];
	struct hist latency[MR_COUNT];
} __attribute__((aligned(64)));

static struct req_shard shards[METRICS_SHARDS];
static _Thread_local struct req_shard *my_shard;
static struct hist hsm_latency;
static struct hist audit_commit;
static atomic_llong conns_open;
static atomic_ullong conns_refused;
static atomic_ullong ratelimited;
static atomic_ullong keys_expiring;
static double start_time; /* set once before main() runs */

__attribute__((constructor)) static void
metrics_start(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
		start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
code_index(int status)
{
	size_t i;

	for (i = 0; i < NEXACT; i++)
		if (exact_code[i] == status)
			return i;
	if (status >= 100 && status <= 599)
		return NEXACT + (size_t)(status / 100 - 1);
	return NCODES - 1;
}

/* The label text of code slot @p i, in @p tmp when it must be made. */
static const char *
code_label(size_t i, char tmp[8])
{
	if (i < NEXACT)
		snprintf(tmp, 8, "%d", exact_code[i]);
	else if (i < NCODES - 1)
		snprintf(tmp, 8, "%zuxx", i - NEXACT + 1);
	else
		return "other";
	return tmp;
}

static void
hist_observe(struct hist *h, uint64_t usec)
{
	size_t i = 0;

	while (i < NBOUNDS && usec > bound_us[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, usec, memory_order_relaxed);
}

void
metrics_bind_loop(unsigned loop_index)
{
	my_shard = &shards[1 + loop_index % (METRICS_SHARDS - 1)];
}

void
metrics_request(enum metric_route route, int status, uint64_t usec)
{
	unsigned r = (unsigned)route < MR_COUNT ? (unsigned)route : MR_OTHER;
	struct req_shard *sh = my_shard != NULL ? my_shard : &shards[0];

	atomic_fetch_add_explicit(
	    &sh->requests[r][code_index(status)], 1, memory_order_relaxed);
	hist_observe(&sh->latency[r], usec);
}

void
metrics_conn_open(int delta)
{
	atomic_fetch_add_explicit(&conns_open, delta, memory_order_relaxed);
}

void
metrics_ratelimited(void)
{
	atomic_fetch_add_explicit(&ratelimited, 1, memory_order_relaxed);
}

void
metrics_keys_expiring(unsigned n)
{
	atomic_store_explicit(&keys_expiring, n, memory_order_relaxed);
}

void
metrics_hsm_op(uint64_t usec)
{
	hist_observe(&hsm_latency, usec);
}

void
metrics_audit_commit(void *arg, uint64_t usec, uint32_t lines)
{
	(void)arg;
	(void)lines; /* lines are counted by the log itself (audit_stats) */
	hist_observe(&audit_commit, usec);
}

void
metrics_conn_refused(void)
{
	atomic_fetch_add_explicit(&conns_refused, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */
/* ------------------------------------------------------------------ */

static unsigned long long
load(atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static int
family(struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample. */
static int
single(struct buf *out, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	if (family(out, name, type, help) < 0)
		return -ENOMEM;
	return buf_printf(out, "%s %llu\n", name, v);
}

/* A histogram as read at one moment: one or the sum of several. */
struct hist_sum {
	unsigned long long bucket[NBUCKETS], sum_us;
};

static void
hist_add(struct hist_sum *to, struct hist *h)
{
	size_t i;

	for (i = 0; i < NBUCKETS; i++)
		to->bucket[i] += load(&h->bucket[i]);
	to->sum_us += load(&h->sum_us);
}

/* One histogram's series; @p labels is "" or 'route="x",'. The +Inf
 * bucket and _count are the same sum, so they agree even while other
 * threads count. */
static int
hist_render(struct buf *out, const char *name, const char *labels,
    const struct hist_sum *h)
{
	unsigned long long cum = 0;
	size_t i, n = 0;
	char lab[64];
	int rc = 0;

	for (i = 0; i < NBUCKETS && rc >= 0; i++) {
		cum += h->bucket[i];
		rc = buf_printf(out, "%s_bucket{%sle=\"%s\"} %llu\n", name,
		    labels, bound_le[i], cum);
	}
	/* The labels without their trailing comma, in braces. */
	if (labels[0] != '\0')
		n = (size_t)snprintf(lab, sizeof(lab), "{%s", labels);
	if (n > 0)
		lab[n - 1] = '}';
	else
		lab[0] = '\0';
	if (rc >= 0)
		rc = buf_printf(out, "%s_sum%s %.6f\n%s_count%s %llu\n", name,
		    lab, (double)h->sum_us / 1e6, name, lab, cum);
	return rc < 0 ? -ENOMEM : 0;
}

/* @p s with '\\', '"' and newlines escaped as a label value needs. */
static void
label_escape(char *dst, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			dst[n++] = '\\';
			dst[n++] = *s == '\n' ? 'n' : *s;
		} else {
			dst[n++] = *s;
		}
	}
	dst[n] = '\0';
}

static int
render_requests(struct buf *out)
{
	struct hist_sum lat;
	unsigned long long v;
	char tmp[8], lab[32];
	size_t r, i, k;

	if (family(out, "strongroom_http_requests_total", "counter",
	        "HTTP requests answered, by route and status code.") < 0)
		return -ENOMEM;
	for (r = 0; r < MR_COUNT; r++)
		for (i = 0; i < NCODES; i++) {
			for (k = 0, v = 0; k < METRICS_SHARDS; k++)
				v += load(&shards[k].requests[r][i]);
			if (v != 0 &&
			    buf_printf(out,
			        "strongroom_http_requests_total{route=\"%s\","
			        "code=\"%s\"} %llu\n",
			        route_name[r], code_label(i, tmp), v) < 0)
				return -ENOMEM;
		}
	if (family(out, "strongroom_http_request_duration_seconds", "histogram",
	        "Time from a whole request to its response, by route.") < 0)
		return -ENOMEM;
	for (r = 0; r < MR_COUNT; r++) {
		snprintf(lab, sizeof(lab), "route=\"%s\",", route_name[r]);
		memset(&lat, 0, sizeof(lat));
		for (k = 0; k < METRICS_SHARDS; k++)
			hist_add(&lat, &shards[k].latency[r]);
		if (hist_render(out, "strongroom_http_request_duration_seconds",
		        lab, &lat) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int
render_tls(struct buf *out, struct tls_stats *tls)
{
	if (tls == NULL)
		return 0;
	if (single(out, "strongroom_tls_handshakes_total", "counter",
	        "TLS handshakes completed.", load(&tls->handshakes)) < 0 ||
	    single(out, "strongroom_tls_handshake_failures_total", "counter",
	        "TLS handshakes that failed.",
	        load(&tls->handshake_failures)) < 0 ||
	    single(out, "strongroom_tls_resumptions_total", "counter",
	        "TLS handshakes that resumed a session from a ticket.",
	        load(&tls->resumed)) < 0)
		return -ENOMEM;
	return 0;
}

int
metrics_render(struct buf *out, struct tls_stats *tls)
{
	struct hist_sum hsm;
	char compiler[128];

	label_escape(compiler, sizeof(compiler), SR_COMPILER);
	if (family(out, "strongroom_build_info", "gauge",
	        "Build information; the value is always 1.") < 0 ||
	    buf_printf(out,
	        "strongroom_build_info{version=\"%s\",compiler=\"%s\"} 1\n",
	        SR_VERSION, compiler) < 0 ||
	    family(out, "strongroom_process_start_time_seconds", "gauge",
	        "Start time of the process since the Unix epoch in "
	        "seconds.") < 0 ||
	    buf_printf(out, "strongroom_process_start_time_seconds %.3f\n",
	        start_time) < 0)
		return -ENOMEM;
	if (render_requests(out) < 0 ||
	    single(out, "strongroom_http_requests_ratelimited_total", "counter",
	        "HTTP requests refused by a rate limit.",
	        load(&ratelimited)) < 0)
		return -ENOMEM;
	if (family(out, "strongroom_connections_open", "gauge",
	        "Client connections open now.") < 0 ||
	    buf_printf(out, "strongroom_connections_open %lld\n",
	        atomic_load_explicit(&conns_open, memory_order_relaxed)) < 0 ||
	    single(out, "strongroom_connections_refused_total", "counter",
	        "Connections closed at once for being over a connection "
	        "cap.",
	        load(&conns_refused)) < 0)
		return -ENOMEM;
	if (render_tls(out, tls) < 0)
		return -ENOMEM;
	memset(&hsm, 0, sizeof(hsm));
	hist_add(&hsm, &hsm_latency);
	if (single(out, "strongroom_keys_expiring", "gauge",
	        "Keys (apps, users, API keys) within 72 hours of their "
	        "expiry at the last check.",
	        load(&keys_expiring)) < 0)
		return -ENOMEM;
	if (family(out, "strongroom_hsm_operation_duration_seconds",
	        "histogram", "Latency of single HSM operations.") < 0 ||
	    hist_render(
	        out, "strongroom_hsm_operation_duration_seconds", "", &hsm) < 0)
		return -ENOMEM;
	return 0;
}

/* The audit log's health: what an operator alerts on, since a log that
 * cannot be written turns every audited request into a 503. */
int
metrics_render_audit(struct buf *out, const struct audit_stats *st)
{
	struct hist_sum commit;

	memset(&commit, 0, sizeof(commit));
	hist_add(&commit, &audit_commit);
	if (single(out, "strongroom_audit_lines_total", "counter",
	        "Audit lines (events and checkpoints) made durable by this "
	        "process.",
	        st->events) < 0 ||
	    single(out, "strongroom_audit_commits_total", "counter",
	        "Audit group commits: one write and one journal sync each.",
	        st->batches) < 0 ||
	    single(out, "strongroom_audit_checkpoints_total", "counter",
	        "Signed audit checkpoints written by this process.",
	        st->checkpoints) < 0 ||
	    single(out, "strongroom_audit_refused_total", "counter",
	        "Audit events refused because the log could not be written; "
	        "their requests were answered 503.",
	        st->refused) < 0 ||
	    single(out, "strongroom_audit_writable", "gauge",
	        "1 when the last audit write was durable, 0 while writes "
	        "fail.",
	        st->last_error == 0) < 0 ||
	    single(out, "strongroom_audit_sequence", "gauge",
	        "Sequence number of the last durable audit line.", st->seq) < 0)
		return -ENOMEM;
	if (family(out, "strongroom_audit_commit_duration_seconds", "histogram",
	        "Time to write one audit group commit and sync its journal "
	        "record.") < 0 ||
	    hist_render(out, "strongroom_audit_commit_duration_seconds", "",
	        &commit) < 0)
		return -ENOMEM;
	return 0;
}
