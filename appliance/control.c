/*
 * appliance/control.c: the control loop on the main thread. It starts the
 * event loops, answers signals (SIGTERM/SIGINT drain, a second one or the
 * drain deadline forces every connection closed; SIGHUP reloads the
 * configuration and certificate), refreshes readiness once a second,
 * runs the key-expiry watch every expiry_check_s seconds on a worker, and
 * returns when the last loop has ended.
 *
 * It must never touch a connection (only the loop that owns one may) and
 * must never let a signal kill the process mid-drain: the handlers stay
 * installed until the loops are gone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "appliance/api.h"
#include "appliance/internal.h"
#include "keystore/keystore.h"
#include "pkcs11/p11.h"

struct control {
	struct app *app;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t ready, deadline, expiry;
	uv_work_t expiry_work;
	int expiry_busy; /* a check is on a worker: skip this tick */
	uv_async_t done; /* the last loop has ended */
	int stopping;
};

static void
check_ready(uv_timer_t *t)
{
	struct control *ctl = t->data;
	struct app *app = ctl->app;
	struct p11_token_info ti;

	/* The HSM is asked here, on the control thread, never by a loop. */
	atomic_store(&app->hsm_ready,
	    app->hsm != NULL && p11_token_info(app->hsm, &ti) == 0);
	atomic_store(&app->ks_ready, app->ks != NULL);
}

static void
expiry_run(uv_work_t *w)
{
	struct control *ctl = w->data;

	if (api_expiry_check(ctl->app->api) < 0)
		log_warnx("expiry watch: the keystore did not answer; next "
		          "tick retries");
	/* A pool thread: what this job's calls spilled (the dynamic linker
	 * saves vector registers that may still hold another job's key) is
	 * not left for the next scan of memory. */
	sr_stack_wipe(SRV_STACK_WIPE);
}

static void
expiry_done(uv_work_t *w, int status)
{
	struct control *ctl = w->data;

	(void)status;
	ctl->expiry_busy = 0;
}

static void
expiry_tick(uv_timer_t *t)
{
	struct control *ctl = t->data;

	if (ctl->expiry_busy || ctl->app->api == NULL || ctl->stopping)
		return;
	ctl->expiry_work.data = ctl;
	if (uv_queue_work(
	        t->loop, &ctl->expiry_work, expiry_run, expiry_done) == 0)
		ctl->expiry_busy = 1;
}

static void
force_close(struct control *ctl, const char *why)
{
	struct app *app = ctl->app;

	if (atomic_exchange(&app->draining, 2) == 2)
		return;
	log_warnx(
	    "%s: closing %u connection(s) now", why, atomic_load(&app->conns));
	loops_wake(app);
}

static void
on_deadline(uv_timer_t *t)
{
	force_close(t->data, "drain deadline reached");
}

static void
on_stop(uv_signal_t *s, int signum)
{
	struct control *ctl = s->data;
	struct app *app = ctl->app;
	const struct app_gen *g;

	if (ctl->stopping++) {
		force_close(ctl, "second signal while draining");
		return;
	}
	log_info("signal %d: draining %u connection(s)", signum,
	    atomic_load(&app->conns));
	atomic_store(&app->draining, 1);
	g = app->gen; /* the control thread is the only writer */
	uv_timer_start(&ctl->deadline, on_deadline, g->cfg.drain_timeout_ms, 0);
	loops_wake(app);
}

static void
on_reload(uv_signal_t *s, int signum)
{
	struct control *ctl = s->data;
	struct app *app = ctl->app;
	char err[256];

	(void)signum;
	if (ctl->stopping)
		return;
	if (app_reload(app, err) != 0) {
		log_warnx("SIGHUP: nothing reloaded: %s", err);
		return;
	}
	log_info("SIGHUP: configuration%s%s reloaded, certificate %s",
	    app->config_path[0] != '\0' ? " " : "", app->config_path,
	    tls_server_fingerprint(app->gen->tls));
}

static void
on_loops_done(uv_async_t *a)
{
	struct control *ctl = a->data;

	uv_close((uv_handle_t *)&ctl->sigterm, NULL);
	uv_close((uv_handle_t *)&ctl->sigint, NULL);
	uv_close((uv_handle_t *)&ctl->sighup, NULL);
	uv_close((uv_handle_t *)&ctl->ready, NULL);
	uv_close((uv_handle_t *)&ctl->deadline, NULL);
	uv_close((uv_handle_t *)&ctl->expiry, NULL);
	uv_close((uv_handle_t *)&ctl->done, NULL);
}

/* The host for the printed URL: localhost for the wildcard and loopback
 * addresses (a name the self-signed certificate carries), else the
 * address the daemon listens on. */
static void
banner_host(const char *listen, char *host, size_t cap)
{
	const char *colon = strrchr(listen, ':');
	size_t n = colon != NULL ? (size_t)(colon - listen) : 0;

	static const char *const local[] = { "0.0.0.0", "[::]", "127.0.0.1",
		"[::1]", "localhost" };
	size_t i;

	for (i = 0; n > 0 && i < sizeof(local) / sizeof(local[0]); i++)
		if (strlen(local[i]) == n && strncmp(listen, local[i], n) == 0)
			n = 0;
	if (n == 0 || n >= cap) {
		snprintf(host, cap, "localhost");
		return;
	}
	memcpy(host, listen, n);
	host[n] = '\0';
}

/* What the operator needs for a first request: the URL, the certificate
 * fingerprint to pin, and a curl line that works as printed. */
static void
print_banner(struct app *app)
{
	char cert[PATH_MAX + 16], host[256];

	banner_host(app->cfg.listen, host, sizeof(host));
	if (app->cfg.cert_file[0] != '\0')
		snprintf(cert, sizeof(cert), "%s", app->cfg.cert_file);
	else
		snprintf(
		    cert, sizeof(cert), "%s/tls/cert.pem", app->cfg.state_dir);
	printf("strongroomd: serving https://%s:%d/\n", host, app->port);
	printf("strongroomd: certificate %s\n",
	    tls_server_fingerprint(app->gen->tls));
	/* An address the certificate may not name is reached by its name
	 * with --resolve, so the printed line verifies either way. */
	if (strcmp(host, "localhost") == 0)
		printf("strongroomd: try: curl --cacert %s "
		       "https://localhost:%d/health\n",
		    cert, app->port);
	else
		printf("strongroomd: try: curl --cacert %s --resolve "
		       "localhost:%d:%s https://localhost:%d/health\n",
		    cert, app->port, host, app->port);
	fflush(stdout);
}

int
server_run(struct app *app, char err[256])
{
	struct control ctl = { .app = app };
	uv_loop_t control;
	unsigned started;
	int rc;

	if ((rc = loops_bind(app, err)) != 0)
		return rc;
	uv_loop_init(&control);
	uv_signal_init(&control, &ctl.sigterm);
	uv_signal_init(&control, &ctl.sigint);
	uv_signal_init(&control, &ctl.sighup);
	uv_timer_init(&control, &ctl.ready);
	uv_timer_init(&control, &ctl.deadline);
	uv_timer_init(&control, &ctl.expiry);
	uv_async_init(&control, &ctl.done, on_loops_done);
	ctl.sigterm.data = ctl.sigint.data = ctl.sighup.data = &ctl;
	ctl.ready.data = ctl.deadline.data = ctl.done.data = &ctl;
	ctl.expiry.data = &ctl;
	app->loops_done = &ctl.done;
	uv_signal_start(&ctl.sigterm, on_stop, SIGTERM);
	uv_signal_start(&ctl.sigint, on_stop, SIGINT);
	uv_signal_start(&ctl.sighup, on_reload, SIGHUP);
	check_ready(&ctl.ready);
	uv_timer_start(&ctl.ready, check_ready, 1000, 1000);
	uv_timer_start(&ctl.expiry, expiry_tick, 1000,
	    (uint64_t)app->gen->cfg.expiry_check_s * 1000);
	started = loops_start(app);
	if (started == 0) {
		snprintf(err, 256, "no event loop thread could start");
		rc = -EAGAIN;
		on_loops_done(&ctl.done);
	} else {
		log_info(
		    "serving on port %d with %u loop(s)", app->port, started);
		print_banner(app);
	}
	uv_run(&control, UV_RUN_DEFAULT);
	loops_join(app);
	uv_loop_close(&control);
	app->loops_done = NULL;
	if (rc == 0)
		log_info("stopped");
	return rc;
}
