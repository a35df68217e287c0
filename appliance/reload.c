/*
 * appliance/reload.c: the daemon's configuration generations. Start-up
 * builds the first one; SIGHUP reads the configuration file again (flags
 * still win), loads the certificate it names and swaps in a new
 * generation, while connections accepted earlier keep the one they hold.
 *
 * It must never leave the daemon half reloaded: every part of a new
 * generation is built before anything is swapped, and a failure changes
 * nothing. It must never apply a setting that needs a restart (the listen
 * address, the state folder, the HSM, the number of loops, core dumps)
 * behind the operator's back: those are kept and named in a warning.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/internal.h"

static int
gen_new(struct app *app, const struct app_config *cfg, struct app_gen **out,
    char err[256])
{
	struct app_gen *g = calloc(1, sizeof(*g));
	int rc;

	*out = NULL;
	if (g == NULL) {
		snprintf(err, 256, "out of memory");
		return -ENOMEM;
	}
	g->cfg = *cfg;
	if ((rc = tls_server_new(&g->cfg, &g->tls, err)) != 0) {
		free(g);
		return rc;
	}
	tls_server_share_stats(g->tls, &app->tls_stats);
	atomic_init(&g->refs, 1); /* the app's */
	*out = g;
	return 0;
}

int
app_gen_init(struct app *app, char err[256])
{
	int rc;

	atomic_init(&app->tls_stats.handshakes, 0);
	atomic_init(&app->tls_stats.handshake_failures, 0);
	atomic_init(&app->tls_stats.resumed, 0);
	if ((rc = -pthread_mutex_init(&app->gen_lock, NULL)) != 0) {
		snprintf(err, 256, "%s", sr_strerror(rc));
		return rc;
	}
	return gen_new(app, &app->cfg, &app->gen, err);
}

struct app_gen *
app_gen_get(struct app *app)
{
	struct app_gen *g;

	/* Under the lock: a reload cannot drop the app's reference between
	 * reading the pointer and taking ours. */
	pthread_mutex_lock(&app->gen_lock);
	g = app->gen;
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&app->gen_lock);
	return g;
}

void
app_gen_put(struct app_gen *g)
{
	if (g == NULL ||
	    atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	tls_server_free(g->tls);
	free(g);
}

int
app_reload(struct app *app, char err[256])
{
	struct app_config *cfg = malloc(sizeof(*cfg));
	struct app_gen *fresh, *old;
	const char *key;
	int rc;

	if (cfg == NULL) {
		snprintf(err, 256, "out of memory");
		return -ENOMEM;
	}
	rc = app_config_compose(cfg,
	    app->config_path[0] != '\0' ? app->config_path : NULL, &app->flags,
	    err);
	if (rc != 0) {
		free(cfg);
		return rc;
	}
	while ((key = app_config_restart_key(&app->cfg, cfg)) != NULL) {
		log_warnx("SIGHUP: %s changed; it takes effect at the next "
		          "restart",
		    key);
		/* Keep what is running, one setting at a time. */
		if (strcmp(key, "listen") == 0)
			memcpy(
			    cfg->listen, app->cfg.listen, sizeof(cfg->listen));
		else if (strcmp(key, "state_dir") == 0)
			memcpy(cfg->state_dir, app->cfg.state_dir,
			    sizeof(cfg->state_dir));
		else if (strcmp(key, "hsm_uri") == 0)
			memcpy(cfg->hsm_uri, app->cfg.hsm_uri,
			    sizeof(cfg->hsm_uri));
		else if (strcmp(key, "core_dumps") == 0)
			cfg->core_dumps = app->cfg.core_dumps;
		else
			cfg->loops = app->cfg.loops;
	}
	rc = gen_new(app, cfg, &fresh, err);
	if (rc != 0) {
		free(cfg);
		return rc;
	}
	rl_configure(app->rl, cfg);
	(void)listen_fit_nofile(cfg->max_conns); /* a new max_conns */
	conncap_set_limit(app->cap, cfg->max_conns_per_addr);
	free(cfg);
	pthread_mutex_lock(&app->gen_lock);
	old = app->gen;
	app->gen = fresh;
	pthread_mutex_unlock(&app->gen_lock);
	app_gen_put(old);
	return 0;
}

void
app_gen_fini(struct app *app)
{
	app_gen_put(app->gen);
	app->gen = NULL;
	pthread_mutex_destroy(&app->gen_lock);
}
