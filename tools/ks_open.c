/*
 * tools/ks_open.c: the local admin tools' way to the keystore (see
 * ks_open.h): HSM, lock, keystore. It prints paths and errors only, never
 * key material. Without `create` it makes nothing: a state folder with no
 * keystore is an error before any SoftHSM2 token is set up there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/ks_open.h"

int
tool_ks_open(const char *prog, const char *state, const char *uri, int create,
    struct p11_ctx **ctx, struct ks **ks, int *lockfd)
{
	char seturi[P11_URI_PATH_MAX + 512], err[256], kspath[4096];
	struct ks_options opts;
	struct stat st;

	if (snprintf(kspath, sizeof(kspath), "%s/keystore", state) >=
	    (int)sizeof(kspath)) {
		fprintf(stderr, "%s: %s: path too long\n", prog, state);
		return 1;
	}
	/* A reader makes nothing: not the keystore, not a SoftHSM2 token. */
	if (!create && stat(kspath, &st) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, kspath, strerror(errno));
		return 1;
	}
	if (uri == NULL) {
		if (p11_softhsm_setup(state, NULL, "strongroom", seturi, err)) {
			fprintf(stderr, "%s: %s\n", prog, err);
			return 1;
		}
		uri = seturi;
	}
	/* The tools queue here; ks_open refuses (KS_EBUSY) a keystore
	 * another process owns. */
	if ((create && mkdir(kspath, 0700) != 0 && errno != EEXIST) ||
	    (*lockfd = open(kspath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    flock(*lockfd, LOCK_EX) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, kspath, strerror(errno));
		return 1;
	}
	if (p11_open(uri, NULL, ctx, err) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.path = kspath;
	if (ks_open(*ctx, &opts, ks, err) != 0) {
		fprintf(stderr, "%s: keystore %s: %s\n", prog, kspath, err);
		return 1;
	}
	return 0;
}
