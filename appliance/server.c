/*
 * appliance/server.c: the event loops. One libuv loop per core, each
 * accepting on its own SO_REUSEPORT socket and owning its connections; the
 * control loop (control.c) wakes them to drain.
 *
 * A connection is TLS over memory buffers (tls.c) feeding the HTTP parser
 * (http.c); responses go back through TLS and one uv_write at a time. It
 * must never block a loop (nothing here calls the HSM or LMDB), never read
 * more requests while a response waits to be written (a client that does
 * not read cannot make us buffer), and never keep a connection past its
 * handshake, header, body or idle deadline.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "appliance/conn.h"
#include "appliance/internal.h"
#include "keystore/keystore.h"
#include "pkcs11/p11.h"

/* A body refused mid-upload (413) is read and dropped this long, or this
 * far, before the close: a close with its bytes unread would reset the
 * connection, and clients that still write lose the 413 to the reset. */
#define LINGER_MS 2000
#define LINGER_BYTES (8u << 20)

static void conn_close(struct conn *c);
static void conn_flush(struct conn *c);
static void conn_process(struct conn *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);

/*
 * Backpressure: a peer whose requests wait unread (its answers are still
 * being written, or one is pending) stops being read before the TLS input
 * buffer is full, instead of being cut off, and is read again once that
 * buffer has room. The kernel's socket buffers then slow the peer down.
 */
static void
conn_read_control(struct conn *c)
{
	size_t room = tls_conn_input_max() - SRV_READ_CHUNK;
	int pause = tls_conn_input_pending(c->tls) > room ||
	    (c->writing && c->wbuf.len > SRV_WRITE_HIGH);

	if (c->state == C_CLOSING || c->lingering == 2)
		return;
	if (pause && !c->read_paused) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->read_paused = 1;
	} else if (!pause && c->read_paused) {
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
		c->read_paused = 0;
	}
}

static uint64_t
now_ms(struct conn *c)
{
	return uv_now(&c->l->loop);
}

void
conn_release(struct conn *c)
{
	if (--c->handles > 0)
		return;
	if (c->counted)
		conncap_release(c->l->app->cap, c->addr);
	tls_conn_free(c->tls);
	http_parser_free(c->http);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->wbuf);
	app_gen_put(c->gen);
	atomic_fetch_sub(&c->l->app->conns, 1);
	metrics_conn_open(-1);
	free(c);
}

static void
conn_free(uv_handle_t *h)
{
	conn_release(h->data);
}

/* Draining, the last connection is gone and no request is pending: let
 * the loop end. */
void
loop_finish(struct app_loop *l)
{
	if (l->conns != NULL || l->npending > 0)
		return;
	/* A connection may end the loop before its wake-up ran: the
	 * listener goes here too, or it would keep the loop alive. */
	listen_stop(l);
	if (!uv_is_closing((uv_handle_t *)&l->wipe))
		uv_close((uv_handle_t *)&l->wipe, NULL);
	loop_spin_close(l);
	pthread_mutex_lock(&l->wake_mu);
	if (!l->wake_closed) {
		l->wake_closed = 1;
		uv_close((uv_handle_t *)&l->wake, NULL);
		pending_loop_close(l);
	}
	pthread_mutex_unlock(&l->wake_mu);
}

/* What a loop's finished calls left on its stack below the frames in
 * use (a vector register the dynamic linker or a signal spilled while it
 * held a credential, a library's local copy of one) is wiped a moment
 * after answers go out: one timer for many answers, never a wipe per
 * request. */
#define LOOP_WIPE_MS 50

static void
on_loop_wipe(uv_timer_t *t)
{
	(void)t;
	sr_stack_wipe(SRV_STACK_WIPE);
}

static void
loop_wipe_soon(struct app_loop *l)
{
	uv_handle_t *h = (uv_handle_t *)&l->wipe;

	if (!uv_is_active(h) && !uv_is_closing(h))
		uv_timer_start(&l->wipe, on_loop_wipe, LOOP_WIPE_MS, 0);
}

static void
conn_close(struct conn *c)
{
	if (c->state == C_CLOSING && c->handles == 2 &&
	    uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	c->state = C_CLOSING;
	if (c->pending != NULL) /* tell its producer: cancel */
		pending_conn_closed(c->pending);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (c->l->conns == c)
		c->l->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	loop_wipe_soon(c->l);
	if (atomic_load(&c->l->app->draining))
		loop_finish(c->l);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, conn_free);
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_free);
}

/* An error answer to a request that is not read (whole): for a HEAD, its
 * head only. The connection closes after it. */
static void
refusal(struct conn *c, int status, const char *code, const char *message)
{
	size_t mark = c->out.len;

	http_error(&c->out, status, code, message, 0);
	http_answer_fit(&c->out, mark,
	    &(struct http_fit){ .head = http_parser_is_head(c->http) });
}

static void
on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->lingering == 2) { /* done dropping a refused body */
		conn_close(c);
		return;
	}
	/* A request half sent when time ran out is answered 408. */
	if (c->state == C_OPEN && !http_parser_idle(c->http) && !c->writing) {
		refusal(c, 408, "request_timeout",
		    "the request took too long to arrive");
		metrics_request(MR_OTHER, 408, 0);
		c->close_after = 1;
		conn_flush(c);
		return;
	}
	conn_close(c);
}

static void
conn_arm(struct conn *c)
{
	const struct app_config *cfg = &c->gen->cfg;
	enum conn_wait w;
	unsigned ms;

	if (c->state == C_HANDSHAKE) {
		w = W_HANDSHAKE;
		ms = cfg->handshake_timeout_ms;
	} else if (c->pending != NULL && c->streaming && !c->writing) {
		/* A streamed answer waits on its producer, not on a clock;
		 * only a peer that stops reading is timed (W_WRITE). */
		uv_timer_stop(&c->timer);
		c->wait = W_NONE;
		return;
	} else if (c->pending != NULL && !c->streaming) {
		w = W_PENDING; /* a safety net: every pending step ends */
		ms = pending_deadline(c->pending);
		if (ms == 0) {
			uv_timer_stop(&c->timer);
			c->wait = W_NONE;
			return;
		}
	} else if (c->writing) {
		w = W_WRITE;
		ms = cfg->idle_timeout_ms; /* a peer that never reads */
	} else if (!http_parser_idle(c->http) &&
	    !http_parser_head_done(c->http)) {
		w = W_REQUEST;
		ms = cfg->header_timeout_ms;
	} else if (!http_parser_idle(c->http)) {
		w = W_BODY; /* from the end of the headers */
		ms = cfg->body_timeout_ms;
	} else {
		w = W_IDLE;
		ms = cfg->idle_timeout_ms;
	}
	/* Deadlines, not inactivity timers: bytes that trickle in do not
	 * move the handshake's, the head's, the body's or the idle one (a
	 * slowloris would keep them off forever). Each finished write is
	 * progress. */
	if (w == c->wait && w != W_WRITE)
		return;
	c->wait = w;
	uv_timer_start(&c->timer, on_timeout, ms, 0);
}

void
conn_rearm(struct conn *c)
{
	if (c->state == C_CLOSING)
		return;
	c->wait = W_NONE;
	conn_arm(c);
}

static void
on_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	c->writing = 0;
	c->wbuf.len = 0;
	if (status < 0 || c->state == C_CLOSING) {
		conn_close(c);
		return;
	}
	conn_flush(c);
	if (!c->writing && c->state == C_OPEN)
		conn_process(c); /* requests that waited for the write */
	conn_read_control(c);
}

/* The refusal is written: read and drop what the client still sends,
 * until it closes, LINGER_MS or LINGER_BYTES. */
static void
conn_linger(struct conn *c)
{
	c->lingering = 2;
	uv_timer_start(&c->timer, on_timeout, LINGER_MS, 0);
	if (c->read_paused) {
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
		c->read_paused = 0;
	}
}

/* Move the built response through TLS and start writing it. */
static void
conn_flush(struct conn *c)
{
	const uint8_t *p;
	size_t n;
	uv_buf_t b;
	int rc;

	if (c->out.len > 0) {
		if (tls_conn_write(c->tls, c->out.data, c->out.len) != 0) {
			conn_close(c);
			return;
		}
		c->out.len = 0;
	}
	/* A connection that ends after this answer says so in TLS too
	 * (lingering: the close says it). */
	if (c->close_after && !c->notified && c->state == C_OPEN &&
	    !c->lingering) {
		tls_conn_close_notify(c->tls);
		c->notified = 1;
	}
	if (c->writing)
		return;
	n = tls_conn_output(c->tls, &p);
	if (n > 0) {
		/* Most answers fit the socket buffer: written here, without
		 * a copy, a write request or a callback. */
		b = uv_buf_init((char *)p, (unsigned)n);
		rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (rc < 0 && rc != UV_EAGAIN && rc != UV_ENOSYS) {
			conn_close(c);
			return;
		}
		if (rc > 0) {
			tls_conn_output_done(c->tls, (size_t)rc);
			n = tls_conn_output(c->tls, &p);
			c->wait = W_NONE; /* progress: deadlines start anew */
		}
	}
	if (n == 0) {
		if (c->lingering == 1 && c->state == C_OPEN)
			conn_linger(c);
		else if (c->close_after ||
		    (atomic_load(&c->l->app->draining) && c->pending == NULL &&
		        http_parser_idle(c->http) && c->in.len == 0))
			conn_close(c);
		else
			conn_arm(c);
		return;
	}
	c->wbuf.len = 0;
	if (buf_append(&c->wbuf, p, n) != 0) {
		conn_close(c);
		return;
	}
	tls_conn_output_done(c->tls, n);
	b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) !=
	    0) {
		conn_close(c);
		return;
	}
	c->writing = 1;
	conn_arm(c);
}

#define CONTINUE_100 "HTTP/1.1 100 Continue\r\n\r\n"

#define RATE_LIMITED \
	"{\"error\":{\"code\":\"rate_limited\",\"message\":" \
	"\"too many requests; see Retry-After\"}}"

/* The JSON error code for what the parser refused. */
static const char *
parse_error_code(int status)
{
	switch (status) {
	case 413:
		return "body_too_large";
	case 414:
		return "uri_too_long";
	case 431:
		return "headers_too_large";
	case 501:
		return "not_implemented";
	case 505:
		return "http_version_not_supported";
	case 503:
		return "unavailable";
	default:
		return "bad_request";
	}
}

void
conn_answered(struct conn *c, enum metric_route route, int status,
    uint64_t t0_ns, int keep_alive)
{
	metrics_request(route, status, (uv_hrtime() - t0_ns) / 1000);
	loop_wipe_soon(c->l);
	if (!keep_alive)
		c->close_after = 1;
}

void
conn_resume(struct conn *c)
{
	conn_flush(c);
	if (!c->writing && c->state == C_OPEN)
		conn_process(c);
	conn_read_control(c);
}

static void
answer(struct conn *c, struct http_request *req)
{
	struct app *app = c->l->app;
	struct route_ctx ctx = { .app = app,
		.req = req,
		.addr = c->addr,
		.out = &c->out,
		.keep_alive = req->keep_alive && !atomic_load(&app->draining),
		.route = MR_OTHER,
		.t0_ns = uv_hrtime(),
		.conn = c };
	/* HEAD: the head only. */
	struct http_fit fit = { .head = req->head };
	size_t mark = c->out.len;
	unsigned retry;
	int status;
	char hdr[32];
	struct http_header ra;

	if (!rl_allow(app->rl, &c->l->rl, c->addr, now_ms(c), &retry)) {
		snprintf(hdr, sizeof(hdr), "%u", retry);
		ra =
		    (struct http_header){ "Retry-After", hdr, 11, strlen(hdr) };
		metrics_ratelimited();
		status = 429;
		http_response_head(&c->out, 429, "application/json",
		    sizeof(RATE_LIMITED) - 1, ctx.keep_alive, &ra, 1);
		buf_append(&c->out, RATE_LIMITED, sizeof(RATE_LIMITED) - 1);
	} else {
		status = route_request(&ctx);
		if (status == ROUTE_PENDING && ctx.pending != NULL)
			return; /* answered by its last step (pending.c) */
		if (status == ROUTE_PENDING) { /* a handler's bug */
			c->out.len = 0;
			status = http_error(&c->out, 500, "internal",
			    "the request could not be answered", 0);
			ctx.keep_alive = 0;
		}
	}
	http_answer_fit(&c->out, mark, &fit);
	conn_answered(c, ctx.route, status, ctx.t0_ns, ctx.keep_alive);
}

/* Decrypt what arrived and answer every whole request, one at a time:
 * the next request is read only after the previous answer was written. */
static void
conn_process(struct conn *c)
{
	uint8_t tmp[SRV_READ_CHUNK];
	struct http_request *req;
	size_t used;
	ssize_t n;
	int rc, status;

	for (;;) {
		if (c->writing || c->close_after || c->state != C_OPEN ||
		    c->pending != NULL)
			return;
		if (c->in.len > 0) {
			rc = http_parser_feed(c->http, c->in.data, c->in.len,
			    &used, &req, &status);
			buf_consume(&c->in, used);
			if (rc == HTTP_READY) {
				answer(c, req);
				http_parser_next(c->http);
				conn_flush(c);
				continue;
			}
			/* Expect: 100-continue: the client waits for this
			 * before it sends the body (RFC 9110 10.1.1). */
			if (rc == HTTP_MORE && http_parser_continue(c->http)) {
				if (buf_append(&c->out, CONTINUE_100,
				        sizeof(CONTINUE_100) - 1) != 0) {
					conn_close(c);
					return;
				}
				conn_flush(c);
				continue;
			}
			if (rc == HTTP_ERROR) {
				refusal(c, status, parse_error_code(status),
				    http_status_text(status));
				c->lingering = status == 413;
				metrics_request(MR_OTHER, status, 0);
				c->close_after = 1;
				conn_flush(c);
				return;
			}
		}
		n = tls_conn_read(c->tls, tmp, sizeof(tmp));
		if (n == TLS_AGAIN) {
			conn_flush(c);
			return;
		}
		if (n < 0) { /* TLS_EOF or TLS_FAIL */
			c->close_after = 1;
			conn_flush(c);
			return;
		}
		rc = buf_append(&c->in, tmp, (size_t)n);
		sr_wipe(tmp, (size_t)n);
		if (rc != 0) {
			conn_close(c);
			return;
		}
	}
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static _Thread_local char chunk[SRV_READ_CHUNK];

	(void)h;
	(void)hint;
	*b = uv_buf_init(chunk, sizeof(chunk));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;
	int rc;

	c->l->spin.reads++;
	if (n == 0)
		return;
	if (n < 0 || c->state == C_CLOSING) {
		conn_close(c);
		return;
	}
	if (c->lingering == 2) { /* a refused body: dropped unread */
		c->lingered += (size_t)n;
		if (c->lingered > LINGER_BYTES)
			conn_close(c);
		return;
	}
	if (tls_conn_feed(c->tls, (const uint8_t *)b->base, (size_t)n) != 0) {
		conn_close(c);
		return;
	}
	if (c->state == C_HANDSHAKE) {
		rc = tls_conn_handshake(c->tls);
		if (rc == TLS_FAIL) {
			c->close_after = 1;
			conn_flush(c);
			return;
		}
		if (rc == TLS_AGAIN) {
			conn_flush(c);
			return;
		}
		c->state = C_OPEN;
	}
	conn_process(c);
	conn_read_control(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct app_loop *l = server->data;
	struct app *app = l->app;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct conn *c;

	if (status < 0) {
		if (status == UV_EMFILE || status == UV_ENFILE)
			listen_pause(l, status); /* or libuv retries at once */
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->l = l;
	/* What a client sends and what it is sent can be a credential. */
	c->in.wipe = c->out.wipe = 1;
	uv_tcp_init(&l->loop, &c->tcp);
	uv_timer_init(&l->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	c->gen = app_gen_get(app);
	atomic_fetch_add(&app->conns, 1);
	metrics_conn_open(1);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		c->addr[10] = c->addr[11] = 0xff;
		memcpy(c->addr + 12, &in->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		memcpy(c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
	if (atomic_load(&app->draining) ||
	    atomic_load(&app->conns) > c->gen->cfg.max_conns ||
	    !(c->counted = conncap_acquire(app->cap, c->addr)) ||
	    tls_conn_new(c->gen->tls, &c->tls) != 0 ||
	    http_parser_new(
	        &(struct http_limits){ c->gen->cfg.max_header_bytes,
	            c->gen->cfg.max_url_bytes, c->gen->cfg.max_body_bytes,
	            c->gen->cfg.max_headers },
	        &c->http) != 0) {
		metrics_conn_refused();
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->next = l->conns;
	if (l->conns != NULL)
		l->conns->prev = c;
	l->conns = c;
	conn_arm(c);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ------------------------------------------------------------------ */
/* Loops, draining, the control loop                                    */
/* ------------------------------------------------------------------ */

static void
on_wake(uv_async_t *a)
{
	struct app_loop *l = a->data;
	int force = atomic_load(&l->app->draining) >= 2;
	struct conn *c, *next;

	/* Draining: accept nothing more; idle connections go now, busy ones
	 * after their current answer (answers carry Connection: close from
	 * here on); a request still arriving meets its deadline. Forced
	 * (drain deadline or a second signal): every connection goes now. */
	listen_stop(l);
	for (c = l->conns; c != NULL; c = next) {
		next = c->next;
		if (force ||
		    (!c->writing && c->state != C_HANDSHAKE &&
		        c->pending == NULL && http_parser_idle(c->http) &&
		        c->in.len == 0))
			conn_close(c);
	}
	loop_finish(l);
}

static void
loop_main(void *arg)
{
	struct app_loop *l = arg;
	char tag[16];

	snprintf(tag, sizeof(tag), "loop%u", l->id);
	sr_log_thread_tag(tag);
	metrics_bind_loop(l->id);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	if (atomic_fetch_sub(&l->app->loops_running, 1) == 1)
		uv_async_send(l->app->loops_done);
}

/* One listening socket per loop on the same address: SO_REUSEPORT lets
 * the kernel spread connections (libuv 1.44 has no flag for it). */
static int
bind_loop(struct app *app, struct app_loop *l, char err[256])
{
	int rc;

	uv_loop_init(&l->loop);
	uv_timer_init(&l->loop, &l->relisten);
	l->relisten.data = l;
	uv_timer_init(&l->loop, &l->wipe);
	l->wipe.data = l;
	l->on_conn = on_connection;
	if ((rc = listen_open(app, l, err)) != 0)
		return rc;
	uv_async_init(&l->loop, &l->wake, on_wake);
	l->wake.data = l;
	loop_spin_init(l);
	pthread_mutex_init(&l->wake_mu, NULL);
	return pending_loop_init(l);
}

int
loops_bind(struct app *app, char err[256])
{
	unsigned i;
	int rc;

	app->nloops = app->cfg.loops ? app->cfg.loops
	                             : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (app->nloops == 0)
		app->nloops = 1;
	if ((rc = listen_prepare(app, err)) != 0)
		return rc;
	app->loops = calloc(app->nloops, sizeof(*app->loops));
	if (app->loops == NULL)
		return -ENOMEM;
	for (i = 0, rc = 0; i < app->nloops && rc == 0; i++) {
		app->loops[i].app = app;
		app->loops[i].id = i;
		rc = bind_loop(app, &app->loops[i], err);
	}
	return rc;
}

unsigned
loops_start(struct app *app)
{
	unsigned i, started = 0;

	atomic_store(&app->loops_running, app->nloops);
	for (i = 0; i < app->nloops; i++) {
		if (uv_thread_create(&app->loops[i].thread, loop_main,
		        &app->loops[i]) == 0) {
			app->loops[i].started = 1;
			started++;
		} else {
			atomic_fetch_sub(&app->loops_running, 1);
		}
	}
	return started;
}

void
loops_wake(struct app *app)
{
	unsigned i;

	for (i = 0; i < app->nloops; i++) {
		pthread_mutex_lock(&app->loops[i].wake_mu);
		if (!app->loops[i].wake_closed)
			uv_async_send(&app->loops[i].wake);
		pthread_mutex_unlock(&app->loops[i].wake_mu);
	}
}

void
loops_join(struct app *app)
{
	unsigned i;

	for (i = 0; i < app->nloops; i++) {
		if (app->loops[i].started)
			uv_thread_join(&app->loops[i].thread);
		uv_loop_close(&app->loops[i].loop);
		pthread_mutex_destroy(&app->loops[i].wake_mu);
	}
	free(app->loops);
	app->loops = NULL;
}
