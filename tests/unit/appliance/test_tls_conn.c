/*
 * tests/unit/appliance/test_tls_conn.c: connections of appliance/tls.c
 * against a real mbedTLS client in the same process: TLS 1.3 request and
 * response, close_notify, ALPN choices, TLS 1.2 refused then allowed with
 * AEAD suites only, garbage and input limits, ticket resumption, large writes
 * to a slow peer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/appliance/tlstest.h"

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

/* ALPN: "http/1.1" first, "http/1.0" for a client that offers only that,
 * and a handshake that offers only other protocols fails. */
static void
test_alpn_choices(void **state)
{
	static const char *offers[][3] = {
		{ "http/1.0", NULL, NULL },
		{ "http/1.0", "http/1.1", NULL },
		{ "h2", "http/1.0", NULL },
		{ "h2", NULL, NULL },
	};
	static const char *const chosen[] = { "http/1.0", "http/1.1",
		"http/1.0", NULL };
	struct fx *f = *state;
	struct client *cl;
	struct tls_conn *c;
	struct hs r;
	size_t i;

	fx_server(f);
	for (i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
		cl = client13(f);
		/* The config is read when the ClientHello is written. */
		assert_int_equal(
		    mbedtls_ssl_conf_alpn_protocols(&cl->conf, offers[i]), 0);
		assert_int_equal(tls_conn_new(f->srv, &c), 0);
		r = handshake(cl, c);
		if (chosen[i] == NULL) {
			assert_int_equal(r.srv, TLS_FAIL);
			assert_true(
			    r.cli < 0 && r.cli != MBEDTLS_ERR_SSL_WANT_READ);
		} else {
			assert_int_equal(r.srv, 0);
			assert_int_equal(r.cli, 0);
			assert_string_equal(tls_conn_alpn(c), chosen[i]);
			assert_string_equal(
			    mbedtls_ssl_get_alpn_protocol(&cl->ssl), chosen[i]);
		}
		tls_conn_free(c);
		client_free(cl);
	}
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define F(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		F(test_tls13_request_response_close),
		F(test_client_close_notify_is_eof),
		F(test_tls12_refused_by_default),
		F(test_alpn_choices),
		F(test_tls12_when_enabled_aead_only),
		F(test_garbage_before_handshake),
		F(test_feed_limit_after_handshake),
		F(test_resumption_tls13),
		F(test_large_write_and_slow_peer),
#undef F
	};

	return cmocka_run_group_tests_name(
	    "appliance/tls-conn", tests, group_setup, group_teardown);
}
