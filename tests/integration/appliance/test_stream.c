/*
 * tests/integration/appliance/test_stream.c: streamed answers and answers
 * produced by another thread (appliance/pending.c), through the real event
 * loops, real TLS and curl. This program is its own router: it defines
 * route_request() (so router.c is not linked) with
 *   /stream?n=N&ms=M  a producer thread makes N events M ms apart and
 *                     posts each; the step sends them as Server-Sent Events
 *   /wait?ms=M        a non-streamed answer a thread posts after M ms
 *   /plain            answered at once
 * and checks that every event arrives once and in order however the posts
 * coalesce, that a client that goes away cancels its producer (on_close)
 * and the last step runs only after the producer let go (hold/release),
 * that pending deadlines hold, and that a drain waits for a stream.
 * It must never talk to the HSM: the loops run without one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "appliance/internal.h"

#define IDLE_MS 1000 /* the daemon's idle (and default pending) deadline */

static struct app app;
static uv_loop_t ctl_loop;
static uv_async_t loops_done;

/* What the steps saw, for the assertions. */
static atomic_int lost_steps;      /* steps run with out NULL */
static atomic_int lost_while_held; /* ... while the producer still ran */
static atomic_int cancels;         /* on_close callbacks */
static atomic_int cancelled_early; /* producers stopped by a cancel */

struct job {
	struct app_pending *p;
	pthread_t thread;
	int n, ms, stream;
	size_t framing; /* http_stream_framing of the request */
	atomic_int produced, cancelled, finished, released;
	int sent, head_sent;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *
producer(void *arg)
{
	struct job *j = arg;
	struct app_pending *p = j->p;
	int i;

	for (i = 0; i < j->n && !atomic_load(&j->cancelled); i++) {
		if (j->ms > 0)
			sleep_ms(j->ms);
		atomic_fetch_add(&j->produced, 1);
		app_pending_post(p);
	}
	if (i < j->n)
		atomic_fetch_add(&cancelled_early, 1);
	atomic_store(&j->finished, 1);
	atomic_store(&j->released, 1);
	/* The last touch of p; j may be freed by the step from here on. */
	app_pending_release(p);
	return NULL;
}

static void
on_close(void *arg)
{
	struct job *j = arg;

	atomic_fetch_add(&cancels, 1);
	atomic_store(&j->cancelled, 1);
}

static int
step(struct app_pending *p, void *arg, struct buf *out, int *keep_alive)
{
	struct job *j = arg;
	int produced, finished;
	char line[32];

	(void)p;
	if (out == NULL) {
		atomic_fetch_add(&lost_steps, 1);
		if (!atomic_load(&j->released))
			atomic_fetch_add(&lost_while_held, 1);
		pthread_join(j->thread, NULL);
		free(j);
		return 0;
	}
	finished = atomic_load(&j->finished); /* before produced: no loss */
	produced = atomic_load(&j->produced);
	if (!j->stream) {
		if (!finished)
			return ROUTE_PENDING;
		http_response(
		    out, 200, "text/plain", "waited\n", 7, *keep_alive);
		pthread_join(j->thread, NULL);
		free(j);
		return 200;
	}
	if (!j->head_sent) {
		/* HTTP/1.0: the close ends the body, whatever keep-alive
		 * the client asked for. */
		if (j->framing == HTTP_UNTIL_CLOSE)
			*keep_alive = 0;
		http_response_head(out, 200, "text/event-stream", j->framing,
		    *keep_alive, NULL, 0);
		j->head_sent = 1;
	}
	for (; j->sent < produced; j->sent++) {
		int len = snprintf(line, sizeof(line), "data: %d\n\n", j->sent);
		http_body_part(out, j->framing, line, (size_t)len);
	}
	if (!finished)
		return ROUTE_STREAM;
	http_body_end(out, j->framing);
	pthread_join(j->thread, NULL);
	free(j);
	return 200;
}

static int
query_int(const char *target, const char *name, int dflt)
{
	const char *q = strstr(target, name);

	return q != NULL ? atoi(q + strlen(name)) : dflt;
}

int
route_request(struct route_ctx *ctx)
{
	const char *path = ctx->req->path;
	struct job *j;

	if (strcmp(path, "/plain") == 0) {
		http_response(
		    ctx->out, 200, "text/plain", "plain\n", 6, ctx->keep_alive);
		return 200;
	}
	if (strcmp(path, "/stream") != 0 && strcmp(path, "/wait") != 0) {
		http_error(
		    ctx->out, 404, "not_found", "no route", ctx->keep_alive);
		return 404;
	}
	j = calloc(1, sizeof(*j));
	assert_non_null(j);
	j->stream = strcmp(path, "/stream") == 0;
	j->n = j->stream ? query_int(ctx->req->target, "n=", 10) : 1;
	j->ms = query_int(ctx->req->target, "ms=", 10);
	j->framing = http_stream_framing(ctx->req->version_minor);
	j->p = app_pending_new(ctx, step, j);
	assert_non_null(j->p);
	if (query_int(ctx->req->target, "nodeadline=", 0))
		app_pending_deadline(j->p, 0);
	app_pending_on_close(j->p, on_close);
	app_pending_hold(j->p);
	assert_int_equal(pthread_create(&j->thread, NULL, producer, j), 0);
	return ROUTE_PENDING;
}

/* Run curl on @p path; its body into @p body (NUL-terminated). */
static int
curl(const char *path, const char *extra, char *body, size_t cap)
{
	char cmd[512];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd),
	    "PORT=%d; curl -sSkN --max-time 20 \"https://127.0.0.1:$PORT%s\" "
	    "%s 2>/dev/null",
	    app.port, path, extra);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	n = fread(body, 1, cap - 1, f);
	body[n] = '\0';
	return pclose(f);
}

/* Whether @p body holds exactly events 0..n-1, in order. */
static int
events_in_order(const char *body, int n)
{
	char want[32];
	const char *at = body;
	int i;

	for (i = 0; i < n; i++) {
		int len = snprintf(want, sizeof(want), "data: %d\n\n", i);
		if (strncmp(at, want, (size_t)len) != 0)
			return 0;
		at += len;
	}
	return *at == '\0';
}

static void
wait_for(atomic_int *v, int want)
{
	int i;

	for (i = 0; i < 500 && atomic_load(v) < want; i++)
		sleep_ms(10);
}

static void
test_stream_in_order(void **state)
{
	static char body[1 << 16];

	(void)state;
	assert_int_equal(curl("/stream?n=20&ms=5", "", body, sizeof(body)), 0);
	assert_true(events_in_order(body, 20));
	/* The same connection serves on after a stream (curl reuses it
	 * for a second URL; -w counts the connections it opened). */
	assert_int_equal(
	    curl("/stream?n=3&ms=5",
	        "-w '%{num_connects}' https://127.0.0.1:$PORT/plain", body,
	        sizeof(body)),
	    0);
	assert_string_equal(body, "data: 0\n\ndata: 1\n\ndata: 2\n\n1plain\n0");
}

static void
test_posts_coalesce_without_loss(void **state)
{
	static char body[1 << 16];

	(void)state;
	/* 3000 posts as fast as a thread can make them. */
	assert_int_equal(
	    curl("/stream?n=3000&ms=0", "", body, sizeof(body)), 0);
	assert_true(events_in_order(body, 3000));
}

static void
test_disconnect_cancels_producer(void **state)
{
	static char body[1 << 16];
	int lost0 = atomic_load(&lost_steps), cancels0 = atomic_load(&cancels);
	int early0 = atomic_load(&cancelled_early);

	(void)state;
	/* 100 s of events; the client leaves after half a second. */
	curl("/stream?n=10000&ms=10", "--max-time 0.5", body, sizeof(body));
	wait_for(&lost_steps, lost0 + 1);
	assert_int_equal(atomic_load(&cancels), cancels0 + 1);
	assert_int_equal(atomic_load(&lost_steps), lost0 + 1);
	assert_int_equal(atomic_load(&cancelled_early), early0 + 1);
	assert_int_equal(atomic_load(&lost_while_held), 0);
}

static void
test_pending_deadlines(void **state)
{
	static char body[4096];
	int cancels0 = atomic_load(&cancels);

	(void)state;
	/* Past the default deadline (the idle timeout) the connection goes
	 * and the producer hears of it. */
	assert_int_not_equal(curl("/wait?ms=2000", "", body, sizeof(body)), 0);
	wait_for(&cancels, cancels0 + 1);
	assert_int_equal(atomic_load(&cancels), cancels0 + 1);
	/* Without a deadline it is answered however long it takes. */
	assert_int_equal(
	    curl("/wait?ms=2000&nodeadline=1", "", body, sizeof(body)), 0);
	assert_string_equal(body, "waited\n");
	/* A stream is not cut by the idle deadline while it flows. */
	assert_int_equal(curl("/stream?n=30&ms=50", "", body, sizeof(body)), 0);
	assert_true(events_in_order(body, 30));
}

/* A client that sends 20 000 pipelined requests (660 KB, ten times what
 * the TLS input buffer holds) and reads its answers only after 0.4 s (under the
 * 1 s write deadline): it is slowed down, not cut off, and every request is
 * answered. */
static void
test_pipelining_beyond_the_input_buffer(void **state)
{
	char cmd[1024], reqs[PATH_MAX], got[64] = "";
	FILE *f;
	int i;

	(void)state;
	snprintf(reqs, sizeof(reqs), "%s/pipelined", app.cfg.state_dir);
	f = fopen(reqs, "w");
	assert_non_null(f);
	for (i = 0; i < 19999; i++)
		fputs("GET /plain HTTP/1.1\r\nHost: a\r\n\r\n", f);
	fputs("GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", f);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd),
	    "timeout 60 openssl s_client -quiet -ign_eof -connect "
	    "127.0.0.1:%d <%s 2>/dev/null | (sleep 0.4; cat) | "
	    "grep -c '^HTTP/1.1 200'",
	    app.port, reqs);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	pclose(f);
	assert_int_equal(atoi(got), 20000);
}

struct bg {
	pthread_t t;
	char body[4096];
	int rc;
};

static void *
bg_curl(void *arg)
{
	struct bg *b = arg;

	b->rc = curl("/stream?n=40&ms=20", "", b->body, sizeof(b->body));
	return NULL;
}

static void
test_concurrent_streams(void **state)
{
	static struct bg bgs[24];
	unsigned i;

	(void)state;
	for (i = 0; i < 24; i++)
		assert_int_equal(
		    pthread_create(&bgs[i].t, NULL, bg_curl, &bgs[i]), 0);
	for (i = 0; i < 24; i++) {
		pthread_join(bgs[i].t, NULL);
		assert_int_equal(bgs[i].rc, 0);
		assert_true(events_in_order(bgs[i].body, 40));
	}
}

/* Last: SIGTERM's drain lets a running stream finish, then the loops end. */
static void
test_drain_waits_for_stream(void **state)
{
	struct bg b;

	(void)state;
	assert_int_equal(pthread_create(&b.t, NULL, bg_curl, &b), 0);
	sleep_ms(300); /* the stream has started */
	atomic_store(&app.draining, 1);
	loops_wake(&app);
	pthread_join(b.t, NULL);
	assert_int_equal(b.rc, 0);
	assert_true(events_in_order(b.body, 40));
	loops_join(&app); /* returns only once every loop ended */
	assert_int_equal(atomic_load(&app.loops_running), 0);
}

/* HTTP/1.0 cannot take chunked framing (RFC 9112 6.1): a streamed answer
 * is close-delimited, even to a client that asked for keep-alive. */
static void
test_http10_stream_close_delimited(void **state)
{
	static char body[1 << 16];
	const char *at;

	(void)state;
	assert_int_equal(
	    curl("/stream?n=5&ms=5",
	        "--http1.0 --no-alpn -i -H 'Connection: keep-alive'", body,
	        sizeof(body)),
	    0);
	assert_non_null(strstr(body, "HTTP/1.1 200 OK\r\n"));
	assert_null(strstr(body, "Transfer-Encoding"));
	assert_null(strstr(body, "Content-Length"));
	assert_non_null(strstr(body, "\r\nConnection: close\r\n"));
	at = strstr(body, "\r\n\r\n");
	assert_non_null(at);
	assert_true(events_in_order(at + 4, 5));
}

/* A HEAD's answer is its head only, streamed or not: the next answer on
 * the connection follows the head at once. */
static void
test_head_stream_then_get(void **state)
{
	static char out[1 << 16];
	char cmd[512];
	const char *at;
	FILE *f;
	size_t n;

	(void)state;
	snprintf(cmd, sizeof(cmd),
	    "printf 'HEAD /stream?n=3&ms=5 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"
	    "GET /plain HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n"
	    "\\r\\n' | openssl s_client -quiet -ign_eof -connect "
	    "127.0.0.1:%d 2>/dev/null",
	    app.port);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	pclose(f);
	assert_int_equal(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0);
	at = strstr(out, "\r\n\r\n");
	assert_non_null(at);
	assert_int_equal(strncmp(at + 4, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_null(strstr(out, "data:"));
	assert_true(n > 6 && strcmp(out + n - 6, "plain\n") == 0);
}

static int
setup(void **state)
{
	char err[256];
	const char *tmp = getenv("SR_TEST_TMP");

	(void)state;
	app_config_defaults(&app.cfg);
	snprintf(app.cfg.state_dir, sizeof(app.cfg.state_dir),
	    "%s/stream-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(app.cfg.state_dir) == NULL)
		return -1;
	snprintf(app.cfg.listen, sizeof(app.cfg.listen), "127.0.0.1:0");
	app.cfg.loops = 2;
	app.cfg.idle_timeout_ms = IDLE_MS;
	/* Rate limits are not what this tests. */
	app.cfg.rate_global = app.cfg.rate_per_addr = 1e6;
	app.cfg.rate_global_burst = app.cfg.rate_per_addr_burst = 1e6;
	if (uv_loop_init(&ctl_loop) != 0 ||
	    uv_async_init(&ctl_loop, &loops_done, NULL) != 0)
		return -1;
	app.loops_done = &loops_done;
	if (app_gen_init(&app, err) != 0 || rl_new(&app.cfg, &app.rl) != 0 ||
	    conncap_new(
	        app.cfg.max_conns_per_addr, app.cfg.max_conns, &app.cap) != 0 ||
	    loops_bind(&app, err) != 0 || loops_start(&app) != app.nloops) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (app.loops != NULL) {
		atomic_store(&app.draining, 2);
		loops_wake(&app);
		loops_join(&app);
	}
	rl_free(app.rl);
	conncap_free(app.cap);
	app_gen_fini(&app);
	uv_close((uv_handle_t *)&loops_done, NULL);
	uv_run(&ctl_loop, UV_RUN_DEFAULT);
	uv_loop_close(&ctl_loop);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_in_order),
		cmocka_unit_test(test_posts_coalesce_without_loss),
		cmocka_unit_test(test_disconnect_cancels_producer),
		cmocka_unit_test(test_pending_deadlines),
		cmocka_unit_test(test_concurrent_streams),
		cmocka_unit_test(test_pipelining_beyond_the_input_buffer),
		cmocka_unit_test(test_http10_stream_close_delimited),
		cmocka_unit_test(test_head_stream_then_get),
		cmocka_unit_test(test_drain_waits_for_stream),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
