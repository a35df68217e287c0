/*
 * appliance/main.c: strongroomd, the appliance daemon's entry point.
 *
 * Today it performs the first-start set-up of the embedded HSM (a SoftHSM2
 * token in the state folder) or opens the HSM named by --uri, checks the
 * mechanisms the keystore needs, and reports what it found. The TLS/HTTP
 * front door arrives with the daemon work; until then it exits after the
 * report rather than pretend to serve. It must never print a PIN.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sr.h"
#include "pkcs11/p11.h"

#define SR_VERSION "0.1.0"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: strongroomd [--state-dir DIR] [--uri PKCS11-URI] "
	    "[--foreground] [--verbose]\n"
	    "       strongroomd --help | --version\n"
	    "\n"
	    "  --state-dir DIR  appliance state (default build/state); holds "
	    "the\n"
	    "                   embedded SoftHSM2 token on first start\n"
	    "  --uri URI        use this PKCS#11 token instead of the "
	    "embedded\n"
	    "                   one (see docs/hsm.md)\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "uri", required_argument, NULL, 'u' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char uri[P11_URI_PATH_MAX + 512], err[256];
	const char *state = "build/state", *given = NULL;
	struct p11_token_info ti;
	struct p11_ctx *hsm = NULL;
	int ch, rc, i, verbosity = SR_LOG_INFO;

	while (
	    (ch = getopt_long(argc, argv, "s:u:fvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			state = optarg;
			break;
		case 'u':
			given = optarg;
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
	sr_log_init(verbosity, "strongroomd");
	sr_log_thread_tag("main");
	if (given != NULL) {
		snprintf(uri, sizeof(uri), "%s", given);
	} else {
		rc = p11_softhsm_setup(state, NULL, "strongroom", uri, err);
		if (rc != 0)
			fatalx("HSM set-up in %s: %s", state, err);
	}
	rc = p11_open(uri, NULL, &hsm, err);
	if (rc != 0)
		fatalx("HSM: %s", err);
	if (p11_token_info(hsm, &ti) == 0) {
		log_info("HSM: token '%s' (serial %s) via %s", ti.token_label,
		    ti.token_serial, ti.module_path);
		for (i = 0; i < P11_MECH_COUNT; i++)
			log_debug("mechanism %s: %s",
			    p11_mech_name((enum p11_mech)i),
			    (ti.mechs >> i) & 1 ? "present" : "absent");
	}
	log_info("HSM ready; state folder %s", state);
	log_warnx("the HTTPS front door is not built yet: nothing to serve, "
	          "exiting");
	p11_close(hsm);
	return 0;
}
