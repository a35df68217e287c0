/*
 * tests/unit/appliance/test_tls.c: the TLS engine of appliance/tls.c
 * against a real mbedTLS client in the same process. The two talk through
 * memory: the client's BIO callbacks fill and drain byte queues that the
 * test pumps into tls_conn_feed() and out of tls_conn_output(). Each test
 * works in a fresh mkdtemp state folder, so the first tls_server_new()
 * there makes the key and the self-signed certificate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "appliance/internal.h"

#define FP_LEN (19 + 95)

/* ---------------------------------------------------------------- */
/* Fixture: a state folder and a configuration                        */
/* ---------------------------------------------------------------- */

struct fx {
	char dir[64];
	char cert[PATH_MAX], key[PATH_MAX];
	struct app_config cfg;
	struct tls_server *srv;
};

static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;

static int
group_setup(void **state)
{
	(void)state;
	sr_log_init(SR_LOG_WARN, "test_tls"); /* no "made a certificate" */
	if (psa_crypto_init() != PSA_SUCCESS)
		return -1;
	mbedtls_entropy_init(&g_entropy);
	mbedtls_ctr_drbg_init(&g_drbg);
	return mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy,
	    (const unsigned char *)"test", 4);
}

static int
group_teardown(void **state)
{
	(void)state;
	mbedtls_ctr_drbg_free(&g_drbg);
	mbedtls_entropy_free(&g_entropy);
	mbedtls_psa_crypto_free();
	return 0;
}

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/sr-tls-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s", f->dir);
	snprintf(f->cert, sizeof(f->cert), "%s/tls/cert.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/tls/key.pem", f->dir);
	f->cfg.ticket_rotate_s = 86400;
	*state = f;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	tls_server_free(f->srv);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A server on the fixture's folder; fails the test when it cannot. */
static struct tls_server *
fx_server(struct fx *f)
{
	char err[256];

	tls_server_free(f->srv);
	f->srv = NULL;
	if (tls_server_new(&f->cfg, &f->srv, err) != 0)
		fail_msg("tls_server_new: %s", err);
	return f->srv;
}

/* ---------------------------------------------------------------- */
/* The client and the pump                                            */
/* ---------------------------------------------------------------- */

struct bytes {
	uint8_t *p;
	size_t off, len;
};

struct client {
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	struct bytes in, out;
};

static void
bytes_add(struct bytes *b, const void *data, size_t n)
{
	uint8_t *p = realloc(b->p, b->len + n + 1);

	assert_non_null(p);
	b->p = p;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static int
cli_send(void *ctx, const unsigned char *data, size_t len)
{
	bytes_add(&((struct client *)ctx)->out, data, len);
	return (int)len;
}

static int
cli_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct bytes *b = &((struct client *)ctx)->in;
	size_t n = b->len - b->off;

	if (n == 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (n > len)
		n = len;
	memcpy(buf, b->p + b->off, n);
	b->off += n;
	return (int)n;
}

/* A client for "localhost" that trusts @p f's cert.pem; versions from
 * @p min to @p max; @p suites NULL for the defaults. */
static struct client *
client_new(struct fx *f, mbedtls_ssl_protocol_version min,
    mbedtls_ssl_protocol_version max, const int *suites)
{
	static const char *alpn[] = { "http/1.1", NULL };
	struct client *cl = calloc(1, sizeof(*cl));

	assert_non_null(cl);
	mbedtls_ssl_init(&cl->ssl);
	mbedtls_ssl_config_init(&cl->conf);
	mbedtls_x509_crt_init(&cl->ca);
	assert_int_equal(mbedtls_x509_crt_parse_file(&cl->ca, f->cert), 0);
	assert_int_equal(
	    mbedtls_ssl_config_defaults(&cl->conf, MBEDTLS_SSL_IS_CLIENT,
	        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT),
	    0);
	mbedtls_ssl_conf_rng(&cl->conf, mbedtls_ctr_drbg_random, &g_drbg);
	mbedtls_ssl_conf_authmode(&cl->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&cl->conf, &cl->ca, NULL);
	mbedtls_ssl_conf_min_tls_version(&cl->conf, min);
	mbedtls_ssl_conf_max_tls_version(&cl->conf, max);
	if (suites != NULL)
		mbedtls_ssl_conf_ciphersuites(&cl->conf, suites);
	assert_int_equal(mbedtls_ssl_conf_alpn_protocols(&cl->conf, alpn), 0);
	mbedtls_ssl_conf_session_tickets(
	    &cl->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
	    &cl->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	assert_int_equal(mbedtls_ssl_setup(&cl->ssl, &cl->conf), 0);
	assert_int_equal(mbedtls_ssl_set_hostname(&cl->ssl, "localhost"), 0);
	mbedtls_ssl_set_bio(&cl->ssl, cl, cli_send, cli_recv, NULL);
	return cl;
}

static struct client *
client13(struct fx *f)
{
	return client_new(
	    f, MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_3, NULL);
}

static void
client_free(struct client *cl)
{
	if (cl == NULL)
		return;
	mbedtls_ssl_free(&cl->ssl);
	mbedtls_ssl_config_free(&cl->conf);
	mbedtls_x509_crt_free(&cl->ca);
	free(cl->in.p);
	free(cl->out.p);
	free(cl);
}

/* Move ciphertext both ways; the number of bytes moved. */
static size_t
pump(struct client *cl, struct tls_conn *c)
{
	const uint8_t *p;
	size_t n, moved = 0;

	n = cl->out.len - cl->out.off;
	if (n > 0) {
		assert_int_equal(
		    tls_conn_feed(c, cl->out.p + cl->out.off, n), 0);
		cl->out.off = cl->out.len = 0;
		moved += n;
	}
	n = tls_conn_output(c, &p);
	if (n > 0) {
		bytes_add(&cl->in, p, n);
		tls_conn_output_done(c, n);
		moved += n;
	}
	return moved;
}

struct hs {
	int cli, srv; /* 0 done, else the last mbedTLS code / TLS_* */
};

/* Run both handshakes until nothing moves any more: both sides have then
 * consumed everything the other sent, so both are done or stuck. */
static struct hs
handshake(struct client *cl, struct tls_conn *c)
{
	struct hs r = { MBEDTLS_ERR_SSL_WANT_READ, TLS_AGAIN };
	int i;

	for (i = 0; i < 100; i++) {
		if (r.cli == MBEDTLS_ERR_SSL_WANT_READ ||
		    r.cli == MBEDTLS_ERR_SSL_WANT_WRITE)
			r.cli = mbedtls_ssl_handshake(&cl->ssl);
		if (r.srv == TLS_AGAIN)
			r.srv = tls_conn_handshake(c);
		if (pump(cl, c) == 0)
			break;
	}
	return r;
}

/* The client reads exactly @p n bytes; a TLS 1.3 ticket that arrives on
 * the way is stored in @p ticket when it is not NULL. */
static void
client_read(struct client *cl, struct tls_conn *c, uint8_t *buf, size_t n,
    mbedtls_ssl_session *ticket)
{
	size_t got = 0;
	int rc, spins = 0;

	while (got < n) {
		pump(cl, c);
		rc = mbedtls_ssl_read(&cl->ssl, buf + got, n - got);
		if (rc > 0) {
			got += (size_t)rc;
			continue;
		}
		if (rc == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			if (ticket != NULL)
				assert_int_equal(
				    mbedtls_ssl_get_session(&cl->ssl, ticket),
				    0);
			continue;
		}
		assert_int_equal(rc, MBEDTLS_ERR_SSL_WANT_READ);
		assert_true(++spins < 1000);
	}
}

/* The server reads exactly @p n bytes. */
static void
server_read(struct client *cl, struct tls_conn *c, uint8_t *buf, size_t n)
{
	size_t got = 0;
	ssize_t rc;
	int spins = 0;

	while (got < n) {
		pump(cl, c);
		rc = tls_conn_read(c, buf + got, n - got);
		if (rc > 0) {
			got += (size_t)rc;
			continue;
		}
		assert_int_equal(rc, TLS_AGAIN);
		assert_true(++spins < 1000);
	}
}

static void
client_write(struct client *cl, const void *data, size_t n)
{
	assert_int_equal(mbedtls_ssl_write(&cl->ssl, data, n), (int)n);
}

/* A full connection: handshake done on both sides. */
static struct tls_conn *
connect_ok(struct fx *f, struct client *cl)
{
	struct tls_conn *c;
	struct hs r;

	assert_int_equal(tls_conn_new(f->srv, &c), 0);
	r = handshake(cl, c);
	assert_int_equal(r.cli, 0);
	assert_int_equal(r.srv, 0);
	assert_true(tls_conn_handshake_done(c));
	return c;
}

/* ---------------------------------------------------------------- */
/* Certificate and key files                                          */
/* ---------------------------------------------------------------- */

static void
assert_fingerprint_format(const char *fp)
{
	size_t i;

	assert_int_equal(strlen(fp), FP_LEN);
	assert_memory_equal(fp, "SHA256 Fingerprint=", 19);
	for (i = 0; i < 32; i++) {
		const char *h = fp + 19 + 3 * i;

		assert_true(isxdigit((unsigned char)h[0]) &&
		    !islower((unsigned char)h[0]));
		assert_true(isxdigit((unsigned char)h[1]) &&
		    !islower((unsigned char)h[1]));
		if (i < 31)
			assert_int_equal(h[2], ':');
	}
}

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
test_tls13_request_response_close(void **state)
{
	static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char resp[] =
	    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	struct fx *f = *state;
	struct client *cl;
	struct tls_conn *c;
	uint8_t buf[256];

	fx_server(f);
	cl = client13(f);
	c = connect_ok(f, cl);
	assert_string_equal(tls_conn_version(c), "TLSv1.3");
	assert_string_equal(tls_conn_alpn(c), "http/1.1");
	assert_string_equal(
	    mbedtls_ssl_get_alpn_protocol(&cl->ssl), "http/1.1");
	assert_int_equal(mbedtls_ssl_get_verify_result(&cl->ssl), 0);
	assert_int_equal(tls_conn_resumed(c), 0);
	assert_int_equal(tls_server_stats(f->srv)->handshakes, 1);
	assert_int_equal(tls_server_stats(f->srv)->handshake_failures, 0);

	/* Nothing to read yet. */
	assert_int_equal(tls_conn_read(c, buf, sizeof(buf)), TLS_AGAIN);

	client_write(cl, req, sizeof(req) - 1);
	server_read(cl, c, buf, sizeof(req) - 1);
	assert_memory_equal(buf, req, sizeof(req) - 1);
	assert_int_equal(tls_conn_read(c, buf, sizeof(buf)), TLS_AGAIN);

	assert_int_equal(
	    tls_conn_write(c, (const uint8_t *)resp, sizeof(resp) - 1), 0);
	client_read(cl, c, buf, sizeof(resp) - 1, NULL);
	assert_memory_equal(buf, resp, sizeof(resp) - 1);

	/* The server closes: the client sees close_notify. */
	tls_conn_close_notify(c);
	pump(cl, c);
	assert_int_equal(mbedtls_ssl_read(&cl->ssl, buf, sizeof(buf)),
	    MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
	assert_int_equal(tls_conn_write(c, buf, 1), TLS_FAIL);
	tls_conn_free(c);
	client_free(cl);
}

static void
test_client_close_notify_is_eof(void **state)
{
	struct fx *f = *state;
	struct client *cl;
	struct tls_conn *c;
	uint8_t buf[64];

	fx_server(f);
	cl = client13(f);
	c = connect_ok(f, cl);
	client_write(cl, "hi", 2);
	assert_int_equal(mbedtls_ssl_close_notify(&cl->ssl), 0);
	pump(cl, c);
	assert_int_equal(tls_conn_read(c, buf, sizeof(buf)), 2);
	assert_int_equal(tls_conn_read(c, buf, sizeof(buf)), TLS_EOF);
	assert_int_equal(tls_conn_read(c, buf, sizeof(buf)), TLS_EOF);
	tls_conn_close_notify(c); /* what the server does next: harmless */
	tls_conn_free(c);
	client_free(cl);
}

static void
test_tls12_refused_by_default(void **state)
{
	struct fx *f = *state;
	struct client *cl;
	struct tls_conn *c;
	uint8_t buf[16];
	struct hs r;

	fx_server(f);
	cl = client_new(
	    f, MBEDTLS_SSL_VERSION_TLS1_2, MBEDTLS_SSL_VERSION_TLS1_2, NULL);
	assert_int_equal(tls_conn_new(f->srv, &c), 0);
	r = handshake(cl, c);
	assert_int_equal(r.srv, TLS_FAIL);
	assert_true(r.cli < 0 && r.cli != MBEDTLS_ERR_SSL_WANT_READ);
	assert_int_equal(tls_server_stats(f->srv)->handshake_failures, 1);
	assert_int_equal(tls_server_stats(f->srv)->handshakes, 0);
	assert_int_equal(tls_conn_handshake(c), TLS_FAIL);
	assert_int_equal(tls_conn_read(c, buf, sizeof(buf)), TLS_FAIL);
	assert_int_equal(tls_conn_write(c, buf, 1), TLS_FAIL);
	tls_conn_close_notify(c);
	tls_conn_free(c);
	client_free(cl);
}

static void
test_tls12_when_enabled_aead_only(void **state)
{
	static const int cbc[] = {
		MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, 0
	};
	struct fx *f = *state;
	mbedtls_ssl_session sess;
	struct client *cl;
	struct tls_conn *c;
	uint8_t buf[16];
	struct hs r;

	f->cfg.tls12 = 1;
	fx_server(f);
	cl = client_new(
	    f, MBEDTLS_SSL_VERSION_TLS1_2, MBEDTLS_SSL_VERSION_TLS1_2, NULL);
	c = connect_ok(f, cl);
	assert_string_equal(tls_conn_version(c), "TLSv1.2");
	assert_string_equal(tls_conn_alpn(c), "http/1.1");
	assert_non_null(
	    strstr(mbedtls_ssl_get_ciphersuite(&cl->ssl), "ECDHE-ECDSA"));
	assert_true(strstr(mbedtls_ssl_get_ciphersuite(&cl->ssl), "GCM") ||
	    strstr(mbedtls_ssl_get_ciphersuite(&cl->ssl), "CHACHA20"));
	client_write(cl, "ping", 4);
	server_read(cl, c, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(tls_conn_resumed(c), 0);

	/* TLS 1.2 resumes from the ticket sent in the handshake. */
	mbedtls_ssl_session_init(&sess);
	assert_int_equal(mbedtls_ssl_get_session(&cl->ssl, &sess), 0);
	tls_conn_free(c);
	client_free(cl);
	cl = client_new(
	    f, MBEDTLS_SSL_VERSION_TLS1_2, MBEDTLS_SSL_VERSION_TLS1_2, NULL);
	assert_int_equal(mbedtls_ssl_set_session(&cl->ssl, &sess), 0);
	mbedtls_ssl_session_free(&sess);
	c = connect_ok(f, cl);
	assert_int_equal(tls_conn_resumed(c), 1);
	assert_int_equal(tls_server_stats(f->srv)->resumed, 1);
	tls_conn_free(c);
	client_free(cl);

	/* A CBC suite is not offered even with TLS 1.2 on. */
	cl = client_new(
	    f, MBEDTLS_SSL_VERSION_TLS1_2, MBEDTLS_SSL_VERSION_TLS1_2, cbc);
	assert_int_equal(tls_conn_new(f->srv, &c), 0);
	r = handshake(cl, c);
	assert_int_equal(r.srv, TLS_FAIL);
	assert_int_equal(tls_server_stats(f->srv)->handshake_failures, 1);
	tls_conn_free(c);
	client_free(cl);
}

static void
test_garbage_before_handshake(void **state)
{
	struct fx *f = *state;
	uint8_t *junk = malloc(70 * 1024);
	struct tls_conn *c;
	size_t off;
	int rc = 0, hs = TLS_AGAIN;

	assert_non_null(junk);
	memset(junk, 0x5a, 70 * 1024);
	fx_server(f);

	/* All at once: over the 64 KiB of pending input. */
	assert_int_equal(tls_conn_new(f->srv, &c), 0);
	assert_int_equal(tls_conn_feed(c, junk, 70 * 1024), -ENOBUFS);
	tls_conn_free(c);

	/* In pieces, driving the handshake after each. */
	assert_int_equal(tls_conn_new(f->srv, &c), 0);
	for (off = 0; off < 70 * 1024 && rc == 0 && hs != TLS_FAIL;
	     off += 7 * 1024) {
		rc = tls_conn_feed(c, junk + off, 7 * 1024);
		hs = tls_conn_handshake(c);
	}
	assert_true(rc == -ENOBUFS || hs == TLS_FAIL);
	assert_int_equal(tls_conn_handshake(c), TLS_FAIL);
	assert_int_equal(tls_server_stats(f->srv)->handshake_failures, 1);
	tls_conn_free(c);

	/* Bytes that parse as a record header then never complete: the
	 * cap stops them, not memory. */
	assert_int_equal(tls_conn_new(f->srv, &c), 0);
	junk[0] = 0x16;
	junk[1] = 0x03;
	junk[2] = 0x01;
	junk[3] = 0x40;
	junk[4] = 0x00;
	rc = tls_conn_feed(c, junk, 5);
	assert_int_equal(rc, 0);
	assert_true(tls_conn_handshake(c) != 0);
	for (off = 0; off < 16 && rc == 0; off++)
		rc = tls_conn_feed(c, junk + 5, 8 * 1024);
	assert_true(rc == -ENOBUFS || tls_conn_handshake(c) == TLS_FAIL);
	tls_conn_free(c);
	free(junk);
}

static void
test_feed_limit_after_handshake(void **state)
{
	struct fx *f = *state;
	uint8_t *junk = calloc(1, 64 * 1024);
	struct client *cl;
	struct tls_conn *c;

	assert_non_null(junk);
	fx_server(f);
	cl = client13(f);
	c = connect_ok(f, cl);
	assert_int_equal(tls_conn_feed(c, junk, 64 * 1024), 0);
	assert_int_equal(tls_conn_feed(c, junk, 1), -ENOBUFS);
	assert_int_equal(tls_conn_read(c, junk, 1024), TLS_FAIL);
	tls_conn_free(c);
	client_free(cl);
	free(junk);
}

static void
test_resumption_tls13(void **state)
{
	struct fx *f = *state;
	struct tls_server *other = NULL;
	mbedtls_ssl_session sess;
	struct client *cl;
	struct tls_conn *c;
	uint8_t buf[8];
	char err[256];

	fx_server(f);
	mbedtls_ssl_session_init(&sess);

	/* A full handshake; the ticket comes after it, with the data. */
	cl = client13(f);
	c = connect_ok(f, cl);
	assert_int_equal(tls_conn_resumed(c), 0);
	assert_int_equal(tls_conn_write(c, (const uint8_t *)"pong", 4), 0);
	client_read(cl, c, buf, 4, &sess);
	assert_memory_equal(buf, "pong", 4);
	tls_conn_free(c);
	client_free(cl);

	/* The second connection resumes from that ticket. */
	cl = client13(f);
	assert_int_equal(mbedtls_ssl_set_session(&cl->ssl, &sess), 0);
	c = connect_ok(f, cl);
	assert_int_equal(tls_conn_resumed(c), 1);
	assert_string_equal(tls_conn_version(c), "TLSv1.3");
	assert_string_equal(tls_conn_alpn(c), "http/1.1");
	assert_int_equal(tls_server_stats(f->srv)->handshakes, 2);
	assert_int_equal(tls_server_stats(f->srv)->resumed, 1);
	assert_int_equal(tls_conn_write(c, (const uint8_t *)"again", 5), 0);
	client_read(cl, c, buf, 5, NULL);
	assert_memory_equal(buf, "again", 5);
	tls_conn_free(c);
	client_free(cl);

	/* Another server (other ticket keys, same certificate) cannot
	 * decrypt it: a full handshake, not counted as resumed. */
	assert_int_equal(tls_server_new(&f->cfg, &other, err), 0);
	cl = client13(f);
	assert_int_equal(mbedtls_ssl_set_session(&cl->ssl, &sess), 0);
	assert_int_equal(tls_conn_new(other, &c), 0);
	{
		struct hs r = handshake(cl, c);

		assert_int_equal(r.cli, 0);
		assert_int_equal(r.srv, 0);
	}
	assert_int_equal(tls_conn_resumed(c), 0);
	assert_int_equal(tls_server_stats(other)->resumed, 0);
	tls_conn_free(c);
	client_free(cl);
	tls_server_free(other);
	mbedtls_ssl_session_free(&sess);
}

static void
test_large_write_and_slow_peer(void **state)
{
	struct fx *f = *state;
	size_t big = 1024 * 1024, i;
	uint8_t *data = malloc(big), *back = malloc(big);
	const uint8_t *p;
	struct client *cl;
	struct tls_conn *c;

	assert_non_null(data);
	assert_non_null(back);
	for (i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	fx_server(f);
	cl = client13(f);
	c = connect_ok(f, cl);

	/* One write larger than the output cap goes through whole. */
	assert_int_equal(tls_conn_write(c, data, big), 0);
	assert_true(tls_conn_output(c, &p) > big);
	client_read(cl, c, back, big, NULL);
	assert_memory_equal(back, data, big);
	assert_int_equal(tls_conn_output(c, &p), 0);

	/* A peer that reads nothing: once 256 KiB wait, writes fail. */
	assert_int_equal(tls_conn_write(c, data, 300 * 1024), 0);
	assert_int_equal(tls_conn_write(c, data, 1), TLS_FAIL);
	tls_conn_free(c);
	client_free(cl);
	free(data);
	free(back);
}

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
		F(test_tls13_request_response_close),
		F(test_client_close_notify_is_eof),
		F(test_tls12_refused_by_default),
		F(test_tls12_when_enabled_aead_only),
		F(test_garbage_before_handshake),
		F(test_feed_limit_after_handshake),
		F(test_resumption_tls13),
		F(test_large_write_and_slow_peer),
#undef F
	};

	return cmocka_run_group_tests_name(
	    "appliance/tls", tests, group_setup, group_teardown);
}
