/*
 * appliance/main.c: strongroomd, the appliance daemon's entry point:
 * flags and configuration, the HSM (the embedded SoftHSM2 token on first
 * start, or the token --uri / hsm_uri names), the keystore, the TLS
 * certificate, then the event loops until SIGTERM.
 *
 * It runs in the foreground (systemd supervises it) and must never print a
 * PIN or a key; the certificate fingerprint and the URL are printed so the
 * first curl can pin what it talks to.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appliance/api.h"
#include "appliance/internal.h"
#include "appliance/serve.h"
#include "keystore/keystore.h"
#include "lib/sr.h"
#include "pkcs11/p11.h"

#define SR_VERSION "0.1.0"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: strongroomd [--config FILE] [--listen HOST:PORT] "
	    "[--state-dir DIR] [--uri PKCS11-URI]\n"
	    "                   [--foreground] [--verbose]\n"
	    "       strongroomd --help | --version\n"
	    "\n"
	    "  --config FILE      configuration file (docs/operations.md)\n"
	    "  --listen HOST:PORT where to serve HTTPS (default "
	    "127.0.0.1:8443)\n"
	    "  --state-dir DIR    appliance state (default build/state)\n"
	    "  --uri URI          PKCS#11 token instead of the embedded one\n"
	    "  --foreground       accepted for clarity: strongroomd always\n"
	    "                     runs in the foreground under systemd\n");
}

/* Every HSM operation's latency into strongroom_hsm_operation_duration_
 * seconds (any thread; the histogram is atomic). */
static void
hsm_timed(void *arg, uint64_t usec)
{
	(void)arg;
	metrics_hsm_op(usec);
}

static int
open_state(struct app *app, char *err)
{
	char uri[P11_URI_PATH_MAX + 512], path[PATH_MAX + 16];
	struct ks_options ko = { 0 };
	int rc;

	if (app->cfg.hsm_uri[0] != '\0') {
		snprintf(uri, sizeof(uri), "%s", app->cfg.hsm_uri);
	} else {
		rc = p11_softhsm_setup(
		    app->cfg.state_dir, NULL, "strongroom", uri, err);
		if (rc != 0)
			return rc;
	}
	rc = p11_open(uri, NULL, &app->hsm, err);
	if (rc != 0)
		return rc;
	p11_set_timing(app->hsm, hsm_timed, NULL);
	snprintf(path, sizeof(path), "%s/keystore", app->cfg.state_dir);
	ko.path = path;
	return ks_open(app->hsm, &ko, &app->ks, err);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "uri", required_argument, NULL, 'u' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *listen = NULL, *state = NULL, *uri = NULL;
	static struct app app;
	char err[256];
	int ch, rc, verbosity = SR_LOG_INFO;

	while ((ch = getopt_long(argc, argv, "c:l:s:u:fvhV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'u':
			uri = optarg;
			break;
		case 'f':
			break;
		case 'v':
			verbosity = SR_LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("strongroomd %s\n", SR_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	sr_log_init(verbosity, "strongroomd");
	sr_log_thread_tag("main");
	/* A write to a connection the client reset returns EPIPE, and a
	 * write past a file size limit (systemd's LimitFSIZE) EFBIG: each is
	 * an error for its own request or log, never the process's end,
	 * which these signals' default would be. libuv leaves both alone. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	app.flags = (struct app_flags){ listen, state, uri };
	if (config != NULL)
		snprintf(
		    app.config_path, sizeof(app.config_path), "%s", config);
	if (app_config_compose(&app.cfg, config, &app.flags, err) != 0) {
		fprintf(stderr, "strongroomd: %s\n", err);
		return 2;
	}
	if (process_protect(app.cfg.core_dumps, err) != 0) {
		fprintf(stderr, "strongroomd: %s\n", err);
		return 1;
	}
	(void)listen_fit_nofile(app.cfg.max_conns);
	rc = open_state(&app, err);
	if (rc != 0)
		fatalx("state %s: %s", app.cfg.state_dir, err);
	if (app_gen_init(&app, err) != 0)
		fatalx("TLS: %s", err);
	if (api_open(app.ks,
	        &(struct api_options){ app.cfg.state_dir, app.cfg.policy_file,
	            NULL, app.cfg.rate_per_key, app.cfg.rate_per_key_burst,
	            app.hsm },
	        &app.api, err) != 0)
		fatalx("access: %s", err);
	/* A first start made the admin key on this thread. */
	sr_stack_wipe(SRV_STACK_WIPE);
	/* A model that does not load leaves inference unavailable (503,
	 * /ready says so) but keys are still served. */
	if (app.cfg.models[0] != '\0' &&
	    serve_open(&app.cfg, &app.serve, err) != 0)
		log_warnx("inference: %s", err);
	if (rl_new(&app.cfg, &app.rl) != 0 ||
	    conncap_new(
	        app.cfg.max_conns_per_addr, app.cfg.max_conns, &app.cap) != 0)
		fatalx("limits: out of memory");
	rc = server_run(&app, err);
	if (rc != 0)
		log_warnx("%s", err);
	rl_free(app.rl);
	conncap_free(app.cap);
	serve_close(app.serve);
	api_close(app.api);
	app_gen_fini(&app);
	ks_close(app.ks);
	p11_close(app.hsm);
	return rc == 0 ? 0 : 1;
}
