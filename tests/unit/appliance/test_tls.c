/*
 * tests/unit/appliance/test_tls.c: the TLS server of appliance/tls.c: the
 * first start that makes the key and the self-signed certificate, reuse of
 * a pair, a half or mismatched pair refused, and the fingerprint (checked
 * against openssl). Connections are in test_tls_conn.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/appliance/tlstest.h"

static void
test_first_start_makes_cert(void **state)
{
	struct fx *f = *state;
	mbedtls_x509_crt crt;
	unsigned char h[32];
	char want[FP_LEN + 1], *p, tlsdir[PATH_MAX];
	uint32_t flags = 0;
	struct stat st;
	size_t i;

	fx_server(f);
	snprintf(tlsdir, sizeof(tlsdir), "%s/tls", f->dir);
	assert_int_equal(stat(tlsdir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(f->cert, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	/* The fingerprint is SHA-256 over the DER, upper-case, colons. */
	assert_fingerprint_format(tls_server_fingerprint(f->srv));
	mbedtls_x509_crt_init(&crt);
	assert_int_equal(mbedtls_x509_crt_parse_file(&crt, f->cert), 0);
	assert_int_equal(mbedtls_sha256(crt.raw.p, crt.raw.len, h, 0), 0);
	p = want + snprintf(want, sizeof(want), "SHA256 Fingerprint=");
	for (i = 0; i < sizeof(h); i++)
		p += sprintf(p, i ? ":%02X" : "%02X", h[i]);
	assert_string_equal(tls_server_fingerprint(f->srv), want);

	/* v3, serverAuth, digitalSignature, names for localhost and both
	 * loopback addresses; self-signed, so it verifies against itself. */
	assert_int_equal(crt.version, 3);
	assert_int_equal(mbedtls_x509_crt_check_key_usage(
	                     &crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE),
	    0);
	assert_int_equal(mbedtls_x509_crt_check_extended_key_usage(&crt,
	                     MBEDTLS_OID_SERVER_AUTH,
	                     MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
	    0);
	assert_int_equal(mbedtls_x509_crt_verify(
	                     &crt, &crt, NULL, "localhost", &flags, NULL, NULL),
	    0);
	assert_int_equal(mbedtls_x509_crt_verify(
	                     &crt, &crt, NULL, "127.0.0.1", &flags, NULL, NULL),
	    0);
	assert_int_equal(mbedtls_x509_crt_verify(
	                     &crt, &crt, NULL, "::1", &flags, NULL, NULL),
	    0);
	assert_int_not_equal(mbedtls_x509_crt_verify(&crt, &crt, NULL,
	                         "example.org", &flags, NULL, NULL),
	    0);
	mbedtls_x509_crt_free(&crt);
}

/* The same text `openssl x509 -noout -fingerprint -sha256` prints, up to
 * the digest name's case: OpenSSL 1.1 says "SHA256", 3.x "sha256"; the
 * contract keeps "SHA256". */
static void
test_fingerprint_matches_openssl(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 128], line[256];
	FILE *fp;

	if (system("command -v openssl >/dev/null 2>&1") != 0)
		skip();
	fx_server(f);
	snprintf(cmd, sizeof(cmd),
	    "openssl x509 -noout -fingerprint -sha256 -in '%s'", f->cert);
	fp = popen(cmd, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_int_equal(pclose(fp), 0);
	line[strcspn(line, "\n")] = '\0';
	assert_int_equal(strncasecmp(line, "SHA256 Fingerprint=", 19), 0);
	assert_string_equal(line + 19, tls_server_fingerprint(f->srv) + 19);
}

static void
test_second_start_reuses_cert(void **state)
{
	struct fx *f = *state;
	char first[FP_LEN + 1];
	struct stat a, b;

	fx_server(f);
	snprintf(first, sizeof(first), "%s", tls_server_fingerprint(f->srv));
	assert_int_equal(stat(f->key, &a), 0);
	fx_server(f);
	assert_string_equal(tls_server_fingerprint(f->srv), first);
	assert_int_equal(stat(f->key, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
}

static void
test_half_a_pair_is_an_error(void **state)
{
	struct fx *f = *state;
	struct tls_server *s = NULL;
	char err[256], saved[PATH_MAX];

	fx_server(f);
	tls_server_free(f->srv);
	f->srv = NULL;

	/* Only cert.pem: the error names key.pem. */
	snprintf(saved, sizeof(saved), "%s.saved", f->key);
	assert_int_equal(rename(f->key, saved), 0);
	assert_true(tls_server_new(&f->cfg, &s, err) < 0);
	assert_null(s);
	assert_non_null(strstr(err, "key.pem is missing"));
	assert_int_equal(access(f->key, F_OK), -1); /* not made anew */

	/* Only key.pem: the error names cert.pem. */
	assert_int_equal(rename(saved, f->key), 0);
	assert_int_equal(unlink(f->cert), 0);
	assert_true(tls_server_new(&f->cfg, &s, err) < 0);
	assert_null(s);
	assert_non_null(strstr(err, "cert.pem is missing"));
}

/* A key that does not belong to the certificate is refused. */
static void
test_mismatched_key_refused(void **state)
{
	struct fx *f = *state;
	struct tls_server *s = NULL;
	char err[256], other[64 + 16];

	fx_server(f);
	tls_server_free(f->srv);
	f->srv = NULL;
	snprintf(other, sizeof(other), "%s/o", f->dir);
	assert_int_equal(mkdir(other, 0700), 0);
	snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s", other);
	fx_server(f); /* a second pair under <dir>/o/tls */
	tls_server_free(f->srv);
	f->srv = NULL;
	snprintf(f->cfg.cert_file, sizeof(f->cfg.cert_file), "%s", f->cert);
	snprintf(
	    f->cfg.key_file, sizeof(f->cfg.key_file), "%s/tls/key.pem", other);
	assert_true(tls_server_new(&f->cfg, &s, err) < 0);
	assert_null(s);
	assert_non_null(strstr(err, "does not match"));
}

/* ---------------------------------------------------------------- */
/* Connections                                                        */
/* ---------------------------------------------------------------- */

static void
test_fingerprint_format(void **state)
{
	struct fx *f = *state;

	fx_server(f);
	assert_fingerprint_format(tls_server_fingerprint(f->srv));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define F(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		F(test_first_start_makes_cert),
		F(test_fingerprint_matches_openssl),
		F(test_second_start_reuses_cert),
		F(test_half_a_pair_is_an_error),
		F(test_mismatched_key_refused),
		F(test_fingerprint_format),
#undef F
	};

	return cmocka_run_group_tests_name(
	    "appliance/tls", tests, group_setup, group_teardown);
}
