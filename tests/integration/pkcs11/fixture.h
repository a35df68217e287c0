/*
 * tests/integration/pkcs11/fixture.h: a scratch SoftHSM2 token per test
 * program, made by the product's own first-start set-up (p11_softhsm_setup)
 * in a fresh folder under $SR_TEST_TMP (or /tmp).
 *
 * Header-only so each test stays one file; it must never point a test at
 * a token outside its own scratch folder.
 */
#ifndef SR_TEST_P11_FIXTURE_H
#define SR_TEST_P11_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11/p11.h"

struct p11_fixture {
	char dir[512];
	char uri[P11_URI_PATH_MAX + 512];
};

/* Make the token; on failure print why and exit, since no test can run. */
static inline void
p11_fixture_setup(struct p11_fixture *fx, const char *name)
{
	const char *base = getenv("SR_TEST_TMP");
	char err[256], tmpl[512];

	snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp", name);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(fx->dir, sizeof(fx->dir), "%s", tmpl);
	if (p11_softhsm_setup(fx->dir, NULL, "sr-test", fx->uri, err) != 0) {
		fprintf(stderr, "token set-up failed: %s\n", err);
		exit(1);
	}
}

/* The same URI with the module replaced (for the fault-injection module). */
static inline void
p11_fixture_uri_with_module(
    const struct p11_fixture *fx, const char *module, char *out, size_t cap)
{
	const char *pin = strstr(fx->uri, "&pin-source=");

	snprintf(out, cap, "pkcs11:token=sr-test?module-path=%s%s", module,
	    pin != NULL ? pin : "");
}

static inline void
p11_fixture_teardown(struct p11_fixture *fx)
{
	char cmd[600];

	if (getenv("SR_TEST_KEEP") != NULL)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
}

static inline void
p11_fixture_hex(const char *hex, unsigned char *out, size_t len)
{
	size_t i;
	unsigned v;

	for (i = 0; i < len; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (unsigned char)v;
	}
}

#endif /* SR_TEST_P11_FIXTURE_H */
