/*
 * tools/sr-p11.c: the operator's HSM tool. Sets up the embedded SoftHSM2
 * token, shows what a PKCS#11 URI reaches, and creates or destroys the
 * non-extractable keys Strongroom uses, all through pkcs11/p11.h.
 *
 * It must never print a PIN or key material; errors go to stderr with a
 * non-zero exit.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11/p11.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: sr-p11 [--state-dir DIR | --uri URI] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  setup                 make the SoftHSM2 token in DIR (first\n"
	    "                        start) and print its PKCS#11 URI\n"
	    "  info                  module, token and mechanisms\n"
	    "  genkey aes|hmac|ec LABEL   generate a token key\n"
	    "  destroy aes|hmac|ec LABEL  destroy a token key\n"
	    "\n"
	    "--state-dir defaults to build/state; --uri overrides it.\n");
}

static int
parse_kind(const char *s, enum p11_key_kind *kind)
{
	if (strcmp(s, "aes") == 0)
		*kind = P11_KEY_AES;
	else if (strcmp(s, "hmac") == 0)
		*kind = P11_KEY_HMAC;
	else if (strcmp(s, "ec") == 0)
		*kind = P11_KEY_EC_P256;
	else
		return -EINVAL;
	return 0;
}

static int
cmd_info(struct p11_ctx *ctx)
{
	struct p11_token_info ti;
	int rc, i;

	rc = p11_token_info(ctx, &ti);
	if (rc != 0)
		return rc;
	printf(
	    "module:       %s (%s)\n", ti.module_path, ti.library_description);
	printf("token:        %s, serial %s, %s %s, slot %lu\n", ti.token_label,
	    ti.token_serial, ti.token_manufacturer, ti.token_model, ti.slot_id);
	printf("mechanisms:  ");
	for (i = 0; i < P11_MECH_COUNT; i++)
		printf(" %s%s", (ti.mechs >> i) & 1 ? "" : "!",
		    p11_mech_name((enum p11_mech)i));
	printf("\n(! = absent; the layer falls back where it can)\n");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "uri", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char seturi[P11_URI_PATH_MAX + 512], err[256];
	const char *state = "build/state", *uri = NULL, *cmd;
	enum p11_key_kind kind;
	struct p11_ctx *ctx = NULL;
	struct p11_key *key = NULL;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "s:u:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			state = optarg;
			break;
		case 'u':
			uri = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (uri == NULL) {
		rc = p11_softhsm_setup(state, NULL, "strongroom", seturi, err);
		if (rc != 0) {
			fprintf(stderr, "sr-p11: %s\n", err);
			return 1;
		}
		uri = seturi;
	}
	if (strcmp(cmd, "setup") == 0) {
		printf("%s\n", uri);
		return 0;
	}
	rc = p11_open(uri, NULL, &ctx, err);
	if (rc != 0) {
		fprintf(stderr, "sr-p11: %s\n", err);
		return 1;
	}
	if (strcmp(cmd, "info") == 0) {
		rc = cmd_info(ctx);
	} else if ((strcmp(cmd, "genkey") == 0 ||
	               strcmp(cmd, "destroy") == 0) &&
	    optind + 2 < argc && parse_kind(argv[optind + 1], &kind) == 0) {
		if (cmd[0] == 'g')
			rc = p11_key_generate(ctx, kind, argv[optind + 2], NULL,
			    0, 32, P11_KEY_TOKEN, &key);
		else if ((rc = p11_key_find(
		              ctx, kind, argv[optind + 2], NULL, 0, &key)) == 0)
			rc = p11_key_destroy(ctx, key);
		p11_key_free(key);
	} else {
		usage(stderr);
		p11_close(ctx);
		return 2;
	}
	if (rc != 0 && p11_last_rv() != 0)
		fprintf(stderr, "sr-p11: %s: %s (%s)\n", cmd, sr_strerror(rc),
		    p11_rv_name(p11_last_rv()));
	else if (rc != 0)
		fprintf(stderr, "sr-p11: %s: %s\n", cmd, sr_strerror(rc));
	p11_close(ctx);
	return rc == 0 ? 0 : 1;
}
