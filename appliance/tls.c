/*
 * appliance/tls.c: the daemon's TLS engine over memory buffers. One
 * struct tls_server holds the certificate and key (made on first start:
 * ECDSA P-256, self-signed, in <state_dir>/tls), the RNG, the session-
 * ticket keys and one mbedtls_ssl_config shared by every loop. One struct
 * tls_conn per connection runs an mbedtls_ssl_context whose BIO is two
 * buffers: ciphertext read from the socket (tls_conn_feed) and ciphertext
 * to be written (tls_conn_output). The socket is the server's business.
 *
 * It must never: log, copy or keep the private key outside mbedTLS's pk
 * context (the PEM made on first start lives in a locked sr_secret, goes
 * to a 0600 file and is wiped); block (no socket, no sleep, no lock but
 * mbedTLS's own for the DRBG and ticket keys); let a slow or hostile peer
 * grow a buffer without bound (TLS_IN_MAX bytes of unread ciphertext at
 * most; no new write once TLS_OUT_MAX bytes wait to go out); touch
 * MBEDTLS_PRIVATE fields or format mbedTLS errors on connection paths.
 *
 * Resumption: mbedTLS 3.6 has no public "was this resumed" query for a
 * server. mbedTLS calls the ticket parse callback from inside
 * mbedtls_ssl_handshake() on the calling thread, so our wrapper finds the
 * connection through a thread-local pointer and marks it. TLS 1.3 may
 * still turn down a ticket that decrypts (ticket age, key-exchange
 * modes), so there the mark is confirmed by mbedtls_ssl_get_verify_result():
 * with no client certificates asked for, a certificate handshake
 * leaves MBEDTLS_X509_BADCERT_SKIP_VERIFY and a PSK handshake leaves 0
 * (ssl_tls13_server.c); with no external PSKs configured, a PSK is a ticket.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "appliance/internal.h"
#include "appliance/tls_cert.h"

#define TLS_IN_MAX (64 * 1024)    /* unread ciphertext from the peer */
#define TLS_OUT_MAX (256 * 1024)  /* unsent ciphertext before a write */
#define TLS_OUT_SLACK (32 * 1024) /* handshake flights, alerts, tickets */
#define TLS_BUF_KEEP (16 * 1024)  /* an emptied buffer above this is freed */
#define TLS_TICKET_MAX_S 604800u  /* RFC 8446 4.6.1: at most 7 days */
#define TLS_FP_PREFIX "SHA256 Fingerprint="

/* A byte queue: bytes [off, len) of p are pending. */
struct tls_q {
	uint8_t *p;
	size_t off, len, cap;
};

struct tls_server {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt crt;
	mbedtls_pk_context pk;
	mbedtls_ssl_ticket_context ticket;
	mbedtls_ssl_config conf;
	struct tls_stats own_stats;
	struct tls_stats *stats; /* own_stats or a shared set */
	char fingerprint[sizeof(TLS_FP_PREFIX) + 32 * 3];
};

struct tls_conn {
	struct tls_server *srv;
	mbedtls_ssl_context ssl;
	struct tls_q in, out;
	size_t out_limit; /* what send() may hold; see tls_conn_write() */
	int done, failed, eof, closed, resumed, ticket_ok;
};

/* TLS 1.3 suites first; the TLS 1.2 ones matter only with c->tls12. */
static const int tls_suites[] = {
	MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
	MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	/* For an operator's RSA certificate: mbedTLS offers only the suites
	 * the certificate's key can sign for. */
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	0,
};

/* In order of preference: mbedTLS picks the first of ours the client
 * offers. HTTP/1.0 clients (curl --http1.0) offer "http/1.0" only. */
static const char *tls_alpn[] = { "http/1.1", "http/1.0", NULL };

/* The connection whose handshake this thread is driving (see top). */
static _Thread_local struct tls_conn *tls_current;

static pthread_once_t tls_psa_once = PTHREAD_ONCE_INIT;
static psa_status_t tls_psa_status = PSA_ERROR_BAD_STATE;

static size_t
tls_q_pending(const struct tls_q *q)
{
	return q->len - q->off;
}

static int
tls_q_push(struct tls_q *q, const void *data, size_t n)
{
	size_t pending = tls_q_pending(q), cap;
	uint8_t *p;

	if (q->cap - q->len < n && q->off > 0) {
		memmove(q->p, q->p + q->off, pending);
		q->off = 0;
		q->len = pending;
	}
	if (q->cap - q->len < n) {
		cap = q->cap > 0 ? q->cap : 4096;
		while (cap - q->len < n)
			cap *= 2;
		p = realloc(q->p, cap);
		if (p == NULL)
			return -ENOMEM;
		q->p = p;
		q->cap = cap;
	}
	memcpy(q->p + q->len, data, n);
	q->len += n;
	return 0;
}

static void
tls_q_consume(struct tls_q *q, size_t n)
{
	q->off += n < tls_q_pending(q) ? n : tls_q_pending(q);
	if (q->off < q->len)
		return;
	q->off = q->len = 0;
	if (q->cap > TLS_BUF_KEEP) {
		free(q->p);
		q->p = NULL;
		q->cap = 0;
	}
}

static int
tls_bio_send(void *ctx, const unsigned char *data, size_t len)
{
	struct tls_conn *c = ctx;
	size_t pending = tls_q_pending(&c->out);

	if (pending >= c->out_limit)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	len = len < c->out_limit - pending ? len : c->out_limit - pending;
	len = len < INT_MAX ? len : INT_MAX;
	if (tls_q_push(&c->out, data, len) != 0)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	return (int)len;
}

/* Never 0: a TCP EOF is the server's to report, not ours. */
static int
tls_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct tls_conn *c = ctx;
	size_t n = tls_q_pending(&c->in);

	if (n == 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	n = n < len ? n : len;
	n = n < INT_MAX ? n : INT_MAX;
	memcpy(buf, c->in.p + c->in.off, n);
	tls_q_consume(&c->in, n);
	return (int)n;
}

static int
tls_ticket_parse(void *p_ticket, mbedtls_ssl_session *session,
    unsigned char *buf, size_t len)
{
	int rc = mbedtls_ssl_ticket_parse(p_ticket, session, buf, len);

	if (rc == 0 && tls_current != NULL)
		tls_current->ticket_ok = 1;
	return rc;
}

static void
tls_psa_init_once(void)
{
	tls_psa_status = psa_crypto_init();
	if (tls_psa_status == PSA_SUCCESS && tls_x25519_selftest() != 0)
		log_warnx("TLS: the fast X25519 public key did not match "
		          "mbedTLS's own; using mbedTLS's");
	if (tls_gcm_selftest() != 0)
		log_warnx("TLS: AES-GCM records by libcrypto unavailable or "
		          "not equal to mbedTLS's; using mbedTLS's");
}

/* ------------------------------------------------------------------ */
/* Start-up: files, key and certificate                                 */
/* ------------------------------------------------------------------ */

/* 1 when @p path exists, 0 when it does not, -errno otherwise. */
static int
tls_exists(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* @p value from the configuration, or <dir>/<name> when it is empty. */
static int
tls_path(
    char out[PATH_MAX], const char *value, const char *dir, const char *name)
{
	int n = value[0] != '\0' ? snprintf(out, PATH_MAX, "%s", value)
	                         : snprintf(out, PATH_MAX, "%s/%s", dir, name);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Load the pair, making it first when neither file exists. */
static int
tls_load(struct tls_server *s, const struct app_config *c, char err[256])
{
	char cert_path[PATH_MAX], key_path[PATH_MAX], dir[PATH_MAX];
	int defaults = c->cert_file[0] == '\0' || c->key_file[0] == '\0';
	int have_cert, have_key, rc;

	if (snprintf(dir, sizeof(dir), "%s/tls", c->state_dir) >=
	        (int)sizeof(dir) ||
	    tls_path(cert_path, c->cert_file, dir, "cert.pem") != 0 ||
	    tls_path(key_path, c->key_file, dir, "key.pem") != 0) {
		snprintf(
		    err, 256, "TLS file path too long under %s", c->state_dir);
		return -ENAMETOOLONG;
	}

	have_cert = tls_exists(cert_path);
	have_key = tls_exists(key_path);
	if (have_cert < 0 || have_key < 0) {
		rc = have_cert < 0 ? have_cert : have_key;
		snprintf(err, 256, "%s: %s",
		    have_cert < 0 ? cert_path : key_path, sr_strerror(rc));
		return rc;
	}
	if (have_cert != have_key) {
		snprintf(err, 256, "TLS %s %s is missing (%s exists)",
		    have_cert ? "key" : "certificate",
		    have_cert ? key_path : cert_path,
		    have_cert ? cert_path : key_path);
		return -ENOENT;
	}
	if (!have_cert && !defaults) {
		/* Files the operator named are installed, never made up:
		 * a typo must not silently replace their certificate. */
		snprintf(err, 256,
		    "TLS certificate %s and key %s do not exist (cert_file and "
		    "key_file name an installed pair; leave both unset for a "
		    "self-signed one)",
		    cert_path, key_path);
		return -ENOENT;
	}
	if (!have_cert) {
		if (((mkdir(c->state_dir, 0700) != 0 && errno != EEXIST) ||
		        (mkdir(dir, 0700) != 0 && errno != EEXIST))) {
			rc = -errno;
			snprintf(
			    err, 256, "creating %s: %s", dir, sr_strerror(rc));
			return rc;
		}
		if ((rc = tls_cert_make(&s->drbg, cert_path, key_path, err)) !=
		    0)
			return rc;
	}

	if ((rc = mbedtls_x509_crt_parse_file(&s->crt, cert_path)) != 0) {
		tls_errf(err, rc, "reading the TLS certificate", cert_path);
		return -EINVAL;
	}
	if ((rc = mbedtls_pk_parse_keyfile(&s->pk, key_path, NULL,
	         mbedtls_ctr_drbg_random, &s->drbg)) != 0) {
		tls_errf(err, rc, "reading the TLS key", key_path);
		return -EINVAL;
	}
	if ((rc = mbedtls_pk_check_pair(
	         &s->crt.pk, &s->pk, mbedtls_ctr_drbg_random, &s->drbg)) != 0) {
		snprintf(err, 256, "TLS key %s does not match certificate %s",
		    key_path, cert_path);
		return -EINVAL;
	}
	if (mbedtls_x509_time_is_past(&s->crt.valid_to))
		log_warnx("TLS certificate %s has expired", cert_path);
	if (tls_ecdsa_attach(&s->pk) == -EPROTO)
		log_warnx("TLS: libcrypto's signature with %s did not verify; "
		          "mbedTLS signs the handshakes",
		    key_path);
	return 0;
}

static int
tls_configure(struct tls_server *s, const struct app_config *c, char err[256])
{
	mbedtls_ssl_config *conf = &s->conf;
	uint32_t lifetime = c->ticket_rotate_s;
	int rc;

	if ((rc = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER,
	         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT))) {
		tls_errf(err, rc, "TLS configuration", NULL);
		return -EINVAL;
	}
	mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &s->drbg);
	mbedtls_ssl_conf_min_tls_version(conf,
	    c->tls12 ? MBEDTLS_SSL_VERSION_TLS1_2 : MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_ciphersuites(conf, tls_suites);
	/* Tickets resume with a fresh (EC)DHE: no plain-PSK key exchange. */
	mbedtls_ssl_conf_tls13_key_exchange_modes(
	    conf, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ALL);
#if defined(MBEDTLS_SSL_EARLY_DATA)
	mbedtls_ssl_conf_early_data(conf, MBEDTLS_SSL_EARLY_DATA_DISABLED);
#endif
	if ((rc = mbedtls_ssl_conf_alpn_protocols(conf, tls_alpn)) != 0) {
		tls_errf(err, rc, "TLS ALPN", NULL);
		return -EINVAL;
	}
	/* 0 would make every ticket expire at once; TLS 1.3 forbids more
	 * than 7 days (mbedTLS then fails the connection). */
	lifetime = lifetime == 0 ? 86400 : lifetime;
	lifetime = lifetime > TLS_TICKET_MAX_S ? TLS_TICKET_MAX_S : lifetime;
	if ((rc = mbedtls_ssl_ticket_setup(&s->ticket, mbedtls_ctr_drbg_random,
	         &s->drbg, MBEDTLS_CIPHER_AES_256_GCM, lifetime)) != 0) {
		tls_errf(err, rc, "TLS session tickets", NULL);
		return -EIO;
	}
	mbedtls_ssl_conf_session_tickets_cb(
	    conf, mbedtls_ssl_ticket_write, tls_ticket_parse, &s->ticket);
	mbedtls_ssl_conf_new_session_tickets(conf, 1);
	if ((rc = mbedtls_ssl_conf_own_cert(conf, &s->crt, &s->pk)) != 0) {
		tls_errf(err, rc, "TLS certificate", NULL);
		return -ENOMEM;
	}
	return 0;
}

static void
tls_fingerprint_make(struct tls_server *s)
{
	size_t i, n, cap = sizeof(s->fingerprint);
	unsigned char h[32];

	mbedtls_sha256(s->crt.raw.p, s->crt.raw.len, h, 0);
	n = (size_t)snprintf(s->fingerprint, cap, "%s", TLS_FP_PREFIX);
	for (i = 0; i < sizeof(h); i++)
		n += (size_t)snprintf(s->fingerprint + n, cap - n,
		    i > 0 ? ":%02X" : "%02X", h[i]);
}

int
tls_server_new(
    const struct app_config *c, struct tls_server **out, char err[256])
{
	static const char pers[] = "strongroom-tls";
	struct tls_server *s;
	int rc;

	*out = NULL;
	err[0] = '\0';
	pthread_once(&tls_psa_once, tls_psa_init_once);
	if (tls_psa_status != PSA_SUCCESS) {
		snprintf(err, 256, "psa_crypto_init failed (%d)",
		    (int)tls_psa_status);
		return -EIO;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, 256, "TLS: out of memory");
		return -ENOMEM;
	}
	mbedtls_entropy_init(&s->entropy);
	mbedtls_ctr_drbg_init(&s->drbg);
	mbedtls_x509_crt_init(&s->crt);
	mbedtls_pk_init(&s->pk);
	mbedtls_ssl_ticket_init(&s->ticket);
	mbedtls_ssl_config_init(&s->conf);
	atomic_init(&s->own_stats.handshakes, 0);
	atomic_init(&s->own_stats.handshake_failures, 0);
	atomic_init(&s->own_stats.resumed, 0);
	s->stats = &s->own_stats;

	if ((rc = mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func,
	         &s->entropy, (const unsigned char *)pers, sizeof(pers) - 1)) !=
	    0) {
		tls_errf(err, rc, "seeding the TLS random generator", NULL);
		rc = -EIO;
		goto fail;
	}
	if ((rc = tls_load(s, c, err)) != 0 ||
	    (rc = tls_configure(s, c, err)) != 0)
		goto fail;
	tls_fingerprint_make(s);
	*out = s;
	return 0;
fail:
	tls_server_free(s);
	return rc;
}

void
tls_server_free(struct tls_server *s)
{
	if (s == NULL)
		return;
	mbedtls_ssl_config_free(&s->conf);
	mbedtls_ssl_ticket_free(&s->ticket);
	tls_ecdsa_detach(&s->pk);
	mbedtls_pk_free(&s->pk);
	mbedtls_x509_crt_free(&s->crt);
	mbedtls_ctr_drbg_free(&s->drbg);
	mbedtls_entropy_free(&s->entropy);
	free(s);
}

const char *
tls_server_fingerprint(const struct tls_server *s)
{
	return s->fingerprint;
}

struct tls_stats *
tls_server_stats(struct tls_server *s)
{
	return s->stats;
}

void
tls_server_share_stats(struct tls_server *s, struct tls_stats *shared)
{
	s->stats = shared;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

int
tls_conn_new(struct tls_server *s, struct tls_conn **out)
{
	struct tls_conn *c;
	int rc;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->srv = s;
	c->out_limit = TLS_OUT_MAX + TLS_OUT_SLACK;
	mbedtls_ssl_init(&c->ssl);
	if ((rc = mbedtls_ssl_setup(&c->ssl, &s->conf)) != 0) {
		mbedtls_ssl_free(&c->ssl);
		free(c);
		return rc == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -ENOMEM : -EIO;
	}
	mbedtls_ssl_set_bio(&c->ssl, c, tls_bio_send, tls_bio_recv, NULL);
	*out = c;
	return 0;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	mbedtls_ssl_free(&c->ssl);
	free(c->in.p);
	free(c->out.p);
	free(c);
}

size_t
tls_conn_input_pending(const struct tls_conn *c)
{
	return tls_q_pending(&c->in);
}

size_t
tls_conn_input_max(void)
{
	return TLS_IN_MAX;
}

int
tls_conn_feed(struct tls_conn *c, const uint8_t *data, size_t len)
{
	if (len > TLS_IN_MAX || tls_q_pending(&c->in) > TLS_IN_MAX - len)
		return -ENOBUFS;
	return tls_q_push(&c->in, data, len);
}

int
tls_conn_handshake(struct tls_conn *c)
{
	int rc;

	if (c->failed)
		return TLS_FAIL;
	if (c->done)
		return 0;
	tls_current = c;
	rc = mbedtls_ssl_handshake(&c->ssl);
	tls_current = NULL;
	if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
		return TLS_AGAIN;
	if (rc != 0) {
		/* mbedTLS has queued the fatal alert where it could. */
		c->failed = 1;
		atomic_fetch_add_explicit(&c->srv->stats->handshake_failures, 1,
		    memory_order_relaxed);
		return TLS_FAIL;
	}
	c->done = 1;
	if (c->ticket_ok &&
	    (mbedtls_ssl_get_version_number(&c->ssl) ==
	            MBEDTLS_SSL_VERSION_TLS1_2 ||
	        mbedtls_ssl_get_verify_result(&c->ssl) == 0))
		c->resumed = 1;
	atomic_fetch_add_explicit(
	    &c->srv->stats->handshakes, 1, memory_order_relaxed);
	if (c->resumed)
		atomic_fetch_add_explicit(
		    &c->srv->stats->resumed, 1, memory_order_relaxed);
	return 0;
}

int
tls_conn_handshake_done(const struct tls_conn *c)
{
	return c->done;
}

ssize_t
tls_conn_read(struct tls_conn *c, uint8_t *buf, size_t cap)
{
	int rc;

	if (c->failed)
		return TLS_FAIL;
	if (c->eof)
		return TLS_EOF;
	if (!c->done && (rc = tls_conn_handshake(c)) != 0)
		return rc;
	if (cap == 0)
		return TLS_AGAIN;
	cap = cap < INT_MAX ? cap : INT_MAX;
	for (;;) {
		rc = mbedtls_ssl_read(&c->ssl, buf, cap);
		if (rc > 0)
			return rc;
		switch (rc) {
		case MBEDTLS_ERR_SSL_WANT_READ:
		case MBEDTLS_ERR_SSL_WANT_WRITE:
			return TLS_AGAIN;
		case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
			continue; /* client side only; harmless here */
		case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		case 0:
			c->eof = 1;
			return TLS_EOF;
		case MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE:
			/* A TLS 1.3 post-handshake message (KeyUpdate):
			 * mbedTLS 3.6 refuses it without an alert. Say so;
			 * the server writes the alert out before it closes. */
			(void)mbedtls_ssl_send_alert_message(&c->ssl,
			    MBEDTLS_SSL_ALERT_LEVEL_FATAL,
			    MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE);
			c->failed = 1;
			return TLS_FAIL;
		default:
			c->failed = 1;
			return TLS_FAIL;
		}
	}
}

/*
 * Writes are all-or-nothing and never wait: the output buffer takes the
 * whole of @p data, so mbedtls_ssl_write() never sees WANT_WRITE and the
 * "same arguments again" rule never comes up. The bound on a slow peer:
 * a write that starts with more than TLS_OUT_MAX bytes unsent fails, so
 * the buffer holds at most that plus one write's records. send() is
 * allowed twice the plaintext (records of 64 bytes or more cost less) and
 * should it still answer WANT_WRITE, the connection fails rather than
 * leave a record half-written.
 */
int
tls_conn_write(struct tls_conn *c, const uint8_t *data, size_t len)
{
	size_t pending = tls_q_pending(&c->out), off = 0, chunk;
	int rc;

	if (c->failed || !c->done || c->closed)
		return TLS_FAIL;
	if (pending > TLS_OUT_MAX || len > SIZE_MAX / 4) {
		c->failed = 1;
		return TLS_FAIL;
	}
	c->out_limit = pending + 2 * len + TLS_OUT_SLACK;
	while (off < len) {
		chunk = len - off < INT_MAX ? len - off : INT_MAX;
		rc = mbedtls_ssl_write(&c->ssl, data + off, chunk);
		if (rc <= 0) {
			c->failed = 1;
			break;
		}
		off += (size_t)rc;
	}
	c->out_limit = TLS_OUT_MAX + TLS_OUT_SLACK;
	return c->failed ? TLS_FAIL : 0;
}

size_t
tls_conn_output(struct tls_conn *c, const uint8_t **data)
{
	size_t n = tls_q_pending(&c->out);

	*data = n > 0 ? c->out.p + c->out.off : NULL;
	return n;
}

void
tls_conn_output_done(struct tls_conn *c, size_t n)
{
	tls_q_consume(&c->out, n);
}

void
tls_conn_close_notify(struct tls_conn *c)
{
	if (!c->done || c->failed || c->closed)
		return;
	c->closed = 1;
	(void)mbedtls_ssl_close_notify(&c->ssl);
}

const char *
tls_conn_version(const struct tls_conn *c)
{
	return mbedtls_ssl_get_version(&c->ssl);
}

const char *
tls_conn_alpn(const struct tls_conn *c)
{
	return mbedtls_ssl_get_alpn_protocol(&c->ssl);
}

int
tls_conn_resumed(const struct tls_conn *c)
{
	return c->resumed;
}
