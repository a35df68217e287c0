/*
 * tests/unit/appliance/tlstest.h: the harness the TLS engine's tests share:
 * a state folder and configuration per test, and a real mbedTLS client in
 * the same process talking to a struct tls_conn through byte queues the
 * test pumps. Header-only so each test file stands alone.
 */
#ifndef SR_TEST_TLSTEST_H
#define SR_TEST_TLSTEST_H

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

static inline int
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

static inline int
group_teardown(void **state)
{
	(void)state;
	mbedtls_ctr_drbg_free(&g_drbg);
	mbedtls_entropy_free(&g_entropy);
	mbedtls_psa_crypto_free();
	return 0;
}

static inline int
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

static inline int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline int
fx_teardown(void **state)
{
	struct fx *f = *state;

	tls_server_free(f->srv);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A server on the fixture's folder; fails the test when it cannot. */
static inline struct tls_server *
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

static inline void
bytes_add(struct bytes *b, const void *data, size_t n)
{
	uint8_t *p = realloc(b->p, b->len + n + 1);

	assert_non_null(p);
	b->p = p;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static inline int
cli_send(void *ctx, const unsigned char *data, size_t len)
{
	bytes_add(&((struct client *)ctx)->out, data, len);
	return (int)len;
}

static inline int
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
static inline struct client *
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

static inline struct client *
client13(struct fx *f)
{
	return client_new(
	    f, MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_SSL_VERSION_TLS1_3, NULL);
}

static inline void
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
static inline size_t
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
static inline struct hs
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
static inline void
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
static inline void
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

static inline void
client_write(struct client *cl, const void *data, size_t n)
{
	assert_int_equal(mbedtls_ssl_write(&cl->ssl, data, n), (int)n);
}

/* A full connection: handshake done on both sides. */
static inline struct tls_conn *
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

static inline void
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

#endif /* SR_TEST_TLSTEST_H */
