/*
 * tests/unit/appliance/audittest.h: what the audit log's tests share: a
 * real ES256 signer in software (mbedTLS, fresh key per signer) standing in
 * for the HSM callback, an injectable clock, scratch folders, and helpers
 * to read, split and rewrite the log's lines. Header-only, after cmocka.h.
 *
 * It must never point a test at a folder outside its own scratch folder.
 */
#ifndef SR_TEST_AUDITTEST_H
#define SR_TEST_AUDITTEST_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>
#include <yyjson.h>

#include "appliance/audit_impl.h"

#define AT_DAY AUDIT__DAY_MS
#define AT_T0 (1748779200000LL) /* 2025-06-01T12:00:00Z */

struct at_signer {
	mbedtls_ecp_group grp;
	mbedtls_mpi d;
	uint8_t pub[65];
	atomic_int fail; /* non-zero: the next signatures fail with it */
	atomic_int calls;
};

static inline int
at_rng(void *arg, unsigned char *p, size_t n)
{
	(void)arg;
	return sr_os_random(p, n) == 0 ? 0 : -1;
}

static inline void
at_signer_init(struct at_signer *s)
{
	mbedtls_ecdsa_context k;
	size_t olen = 0;

	memset(s, 0, sizeof(*s));
	mbedtls_ecdsa_init(&k);
	mbedtls_ecp_group_init(&s->grp);
	mbedtls_mpi_init(&s->d);
	assert_int_equal(
	    mbedtls_ecdsa_genkey(&k, MBEDTLS_ECP_DP_SECP256R1, at_rng, NULL),
	    0);
	assert_int_equal(mbedtls_ecp_export(&k, &s->grp, &s->d, NULL), 0);
	assert_int_equal(mbedtls_ecp_write_public_key(&k,
	                     MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, s->pub, 65),
	    0);
	assert_int_equal(olen, 65);
	mbedtls_ecdsa_free(&k);
}

static inline void
at_signer_free(struct at_signer *s)
{
	mbedtls_mpi_free(&s->d);
	mbedtls_ecp_group_free(&s->grp);
}

/* The signer a whole test program shares, made by at_group_setup() and
 * freed by at_group_teardown(), cmocka's group fixtures for the programs
 * that need nothing else before their tests (logging at warnings, under
 * the program's own name). */
static struct at_signer at_program_signer __attribute__((unused));

static inline int
at_group_setup(void **state)
{
	(void)state;
	sr_log_init(SR_LOG_WARN, program_invocation_short_name);
	at_signer_init(&at_program_signer);
	return 0;
}

static inline int
at_group_teardown(void **state)
{
	(void)state;
	at_signer_free(&at_program_signer);
	return 0;
}

/* The audit_sign_cb: ES256 over the 32-byte message. */
static inline int
at_sign(void *arg, const uint8_t digest[32], uint8_t sig[64])
{
	struct at_signer *s = arg;
	mbedtls_mpi r, t;
	uint8_t h[32];
	int rc;

	atomic_fetch_add(&s->calls, 1);
	if (atomic_load(&s->fail) != 0)
		return atomic_load(&s->fail);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&t);
	rc = mbedtls_sha256(digest, 32, h, 0);
	if (rc == 0)
		rc = mbedtls_ecdsa_sign(
		    &s->grp, &r, &t, &s->d, h, 32, at_rng, NULL);
	if (rc == 0)
		rc = mbedtls_mpi_write_binary(&r, sig, 32);
	if (rc == 0)
		rc = mbedtls_mpi_write_binary(&t, sig + 32, 32);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&t);
	return rc == 0 ? 0 : -EIO;
}

/* An injectable clock (Unix ms). */
static atomic_llong at_now_ms = AT_T0;

static inline int64_t
at_clock(void *arg)
{
	(void)arg;
	return (int64_t)atomic_load(&at_now_ms);
}

static inline int
at_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static inline void
at_rmrf(const char *dir)
{
	if (getenv("SR_TEST_KEEP") == NULL)
		nftw(dir, at_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh scratch folder; @p out of 512 bytes. */
static inline void
at_mkdtemp(const char *name, char out[512])
{
	const char *base = getenv("SR_TEST_TMP");

	snprintf(out, 512, "%s/%s-XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp", name);
	assert_non_null(mkdtemp(out));
}

static inline void
at_options(struct audit_options *o, const char *dir, struct at_signer *s,
    int fake_clock)
{
	memset(o, 0, sizeof(*o));
	o->dir = dir;
	o->appliance_id = "ap1";
	o->sign = at_sign;
	o->sign_arg = s;
	o->sign_key_id = "test-key.v1";
	o->sign_pubkey = s->pub;
	if (fake_clock)
		o->clock = at_clock;
}

static inline struct audit *
at_open(const struct audit_options *o)
{
	struct audit *a = NULL;
	char err[256];
	int rc = audit_open(o, &a, err);

	if (rc != 0)
		fail_msg("audit_open: %s: %s", sr_errname(rc), err);
	return a;
}

static inline struct audit_event
at_event(const char *actor, const char *action, const char *resource)
{
	struct audit_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.actor = actor;
	ev.action = action;
	ev.resource = resource;
	ev.status = "200";
	ev.src = "192.0.2.7";
	ev.duration_ms = 3;
	return ev;
}

static inline char *
at_read(const char *dir, const char *name, size_t *len)
{
	char path[1024], *buf = NULL;
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = audit__read_small(AT_FDCWD, path, 1 << 28, &buf, &n);
	if (rc != 0)
		return NULL;
	if (len != NULL)
		*len = n;
	return buf;
}

static inline void
at_write(const char *dir, const char *name, const char *buf, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Split a file into lines (each without its newline, NUL-terminated,
 * in one allocation with the array); returns the count. */
static inline size_t
at_lines(const char *dir, const char *name, char ***out)
{
	size_t len = 0, n = 0, i;
	char *buf = at_read(dir, name, &len), **v;

	assert_non_null(buf);
	for (i = 0; i < len; i++)
		n += buf[i] == '\n';
	v = malloc((n + 1) * sizeof(*v) + len + 1);
	assert_non_null(v);
	memcpy((char *)(v + n + 1), buf, len);
	((char *)(v + n + 1))[len] = '\0';
	free(buf);
	buf = (char *)(v + n + 1);
	for (i = 0; i < n; i++) {
		v[i] = buf;
		buf = strchr(buf, '\n');
		*buf++ = '\0';
	}
	v[n] = NULL;
	*out = v;
	return n;
}

/* Write lines back (a newline after each). */
static inline void
at_put_lines(const char *dir, const char *name, char **v, size_t n)
{
	char path[1024];
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", v[i]);
	assert_int_equal(fclose(f), 0);
}

/* A field of a line as a string or number (for assertions). */
static inline uint64_t
at_u64(const char *line, const char *key)
{
	yyjson_doc *d = yyjson_read(line, strlen(line), 0);
	yyjson_val *v = yyjson_obj_get(yyjson_doc_get_root(d), key);
	uint64_t r;

	assert_true(yyjson_is_uint(v));
	r = yyjson_get_uint(v);
	yyjson_doc_free(d);
	return r;
}

static inline int
at_str_is(const char *line, const char *key, const char *want)
{
	yyjson_doc *d = yyjson_read(line, strlen(line), 0);
	const char *s =
	    yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(d), key));
	int r = s != NULL && want != NULL && strcmp(s, want) == 0;

	if (d == NULL)
		fail_msg("not JSON: %s", line);
	yyjson_doc_free(d);
	return r;
}

/* Verify and assert the outcome; prints the problem when unexpected. */
static inline void
at_verify(const char *dir, const char *pub, int want, const char *file,
    uint64_t line, struct audit_verify_result *res)
{
	struct audit_verify_result r;
	int rc = audit_verify(dir, pub, &r);

	if (rc != want || (file != NULL && strcmp(r.file, file) != 0) ||
	    (line != 0 && r.line != line))
		fail_msg("verify: %s at %s:%llu (%s); want %s at %s:%llu",
		    sr_errname(rc), r.file, (unsigned long long)r.line,
		    r.problem, sr_errname(want), file ? file : "-",
		    (unsigned long long)line);
	if (res != NULL)
		*res = r;
}

#endif /* SR_TEST_AUDITTEST_H */
