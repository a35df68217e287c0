/*
 * appliance/internal.h: the pieces of the daemon and how they fit: the
 * configuration, the TLS engine over memory buffers, the HTTP/1.1 parser
 * and response writer, the router, metrics and rate limits. Declarations
 * shared by the appliance's .c files and by its own tests only.
 *
 * Threading: one libuv loop per core owns its connections; a struct
 * tls_conn and a struct http_parser belong to one connection and are used
 * from its loop thread only. Shared state (metrics, rate limits, the TLS
 * server configuration) is safe from any thread as documented per item.
 */
#ifndef SR_APPLIANCE_INTERNAL_H
#define SR_APPLIANCE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "lib/sr.h"

/* Stack a thread that served requests wipes when it goes back to waiting
 * (sr_stack_wipe): twice the deepest chain measured there, about 12 KiB
 * on a worker (SoftHSM2 and OpenSSL, Argon2) and 27 KiB on a loop (TLS,
 * the router). */
#define SRV_STACK_WIPE (64 * 1024)

/* ------------------------------------------------------------------ */
/* Byte buffers (buf.c)                                                 */
/* ------------------------------------------------------------------ */

/* A growable byte buffer. Owns its memory; buf_free() releases it.
 * With wipe set (requests, which carry credentials, and answers, which can
 * carry a new key or token), no byte it held is left behind in memory it
 * gives up: growth copies and wipes instead of realloc(), buf_consume()
 * and buf_clear() wipe what they drop, buf_free() wipes the whole block. */
struct buf {
	uint8_t *data;
	size_t len, cap;
	int wipe;
};

int buf_reserve(struct buf *b, size_t extra); /* 0 or -ENOMEM */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_clear(struct buf *b);             /* len 0, capacity kept */
void buf_free(struct buf *b);

/* ------------------------------------------------------------------ */
/* Configuration (config.c)                                             */
/* ------------------------------------------------------------------ */

struct app_config {
	char listen[256];            /* "0.0.0.0:8443", "[::]:8443", ":8443" */
	char state_dir[PATH_MAX];    /* default build/state */
	char hsm_uri[4096];          /* "" = embedded SoftHSM2 in state_dir */
	char cert_file[PATH_MAX];    /* "" = <state_dir>/tls/cert.pem */
	char key_file[PATH_MAX];     /* "" = <state_dir>/tls/key.pem */
	int tls12;                   /* also accept TLS 1.2 (AEAD suites) */
	unsigned loops;              /* event loops; 0 = one per core */
	unsigned loop_spin_us;       /* poll on after a read; default 20 */
	unsigned max_conns;          /* in total; default 10000 */
	unsigned max_conns_per_addr; /* default 256 */
	size_t max_header_bytes;     /* request line + headers; default 16384 */
	size_t max_url_bytes;        /* request target; default 8192 */
	size_t max_body_bytes;       /* default 1 MiB */
	unsigned max_headers;        /* default 100 */
	unsigned handshake_timeout_ms; /* default 10000 */
	unsigned header_timeout_ms;    /* default 10000 */
	unsigned body_timeout_ms;      /* default 30000 */
	unsigned idle_timeout_ms;      /* keep-alive idle; default 60000 */
	double rate_global;         /* requests/s for the whole daemon; 1000 */
	double rate_global_burst;   /* bucket size; default 2000 */
	double rate_per_addr;       /* requests/s per source address; 100 */
	double rate_per_addr_burst; /* default 200 */
	unsigned ticket_rotate_s;   /* session-ticket key lifetime; 86400 */
	unsigned drain_timeout_ms;  /* SIGTERM: longest wait; default 30000 */
	char policy_file[PATH_MAX]; /* "" = the built-in policy */
	double rate_per_key;        /* requests/s per API key; default 50 */
	double rate_per_key_burst;  /* default 100 */
	unsigned expiry_check_s;    /* expiry watch interval; default 60 */
	int foreground;
	int core_dumps; /* allow core files (process.c); default no */
	/* Inference (serve.h); read at start-up only */
	char models[4096];              /* "NAME=DIR,..."; "" = none */
	char model_default[64];         /* "" = the first of models */
	unsigned serve_max_batch;       /* sequences per step; default 32 */
	unsigned serve_batch_wait_ms;   /* gathering a prefill batch; 50 */
	unsigned serve_queue_max;       /* waiting requests per model; 256 */
	unsigned serve_kv_budget_mb;    /* KV cache per model; 2048 */
	unsigned serve_threads;         /* engine threads; 0 = one per core */
	char serve_backend[8];          /* "auto" (CUDA when usable), "cpu",
	                                   "cuda" */
	unsigned serve_key_concurrency; /* requests in flight per key; 64 */
	double serve_key_tokens_per_s;  /* tokens per key and second */
	double serve_key_tokens_burst;  /* the bucket; default 200000 */
	unsigned serve_cache_ttl_s;     /* response cache; 300 (0 = off) */
	unsigned serve_cache_entries;   /* default 4096 */
};

/** Fill the defaults above. Cannot fail. */
void app_config_defaults(struct app_config *c);

/**
 * Set one key ("listen", "tls12", "max_body_bytes", ...; the names are the
 * field names) from its text value, validated (numbers in range, booleans
 * true/false/yes/no/1/0, paths absolute or relative).
 * @return 0, or -EINVAL with @p err naming the key and the problem.
 */
int app_config_set(
    struct app_config *c, const char *key, const char *value, char err[256]);

/**
 * Load a configuration file: "key = value" lines, '#' comments, blank lines
 * ignored; unknown keys, duplicates and bad values are errors. On error
 * @p err reads "PATH:LINE: problem".
 * @return 0, -EINVAL, or -errno when the file cannot be read.
 */
int app_config_load(struct app_config *c, const char *path, char err[256]);

/* The few settings flags may give, winning over the file. NULL = not
 * given. The strings are argv's and live as long as the process. */
struct app_flags {
	const char *listen, *state_dir, *hsm_uri;
};

/**
 * Defaults, then the file at @p path (when not NULL), then @p flags: what
 * start-up and SIGHUP both build the configuration from.
 * @return 0, or a negative code with @p err naming file, line and problem.
 */
int app_config_compose(struct app_config *c, const char *path,
    const struct app_flags *flags, char err[256]);

/** The first setting that differs between @p a and @p b among those that
 * only a restart applies (listen, state_dir, hsm_uri, loops), or NULL. */
const char *app_config_restart_key(
    const struct app_config *a, const struct app_config *b);

/* ------------------------------------------------------------------ */
/* TLS over memory buffers (tls.c)                                      */
/* ------------------------------------------------------------------ */

/* Outcomes of tls_conn_* calls besides byte counts. */
#define TLS_AGAIN (-1) /* need more ciphertext from the peer */
#define TLS_EOF (-2)   /* the peer closed (close_notify or TCP EOF) */
#define TLS_FAIL (-3)  /* fatal: alert sent if possible; close */

/*
 * The server side: certificate and key, one mbedtls_ssl_config, the RNG
 * and the session-ticket context (keys rotate every ticket_rotate_s).
 * Shared by every loop: read-only after tls_server_new() except the
 * ticket keys, which mbedTLS rotates under its own lock.
 */
struct tls_server;

/**
 * Load cert_file/key_file, or on first start make an ECDSA P-256
 * self-signed certificate for the host's names (hostname, "localhost",
 * 127.0.0.1, ::1), valid 1 year, written with mode 0600 (key) and 0644.
 * @return 0 or a negative code with @p err for the operator.
 * @note Start-up (and SIGHUP reload) only.
 */
int tls_server_new(
    const struct app_config *c, struct tls_server **out, char err[256]);
void tls_server_free(struct tls_server *s);
/* tls_x25519.c: after psa_crypto_init(), compare the fast export of an
 * X25519 key's public half (the agreement with u = 9) with mbedTLS's own
 * on fresh keys; on a difference the fast path is turned off for good.
 * 0, -EPROTO (they differed: warn), -EIO (PSA failed). */
int tls_x25519_selftest(void);

/* Compare tls_gcm.c's AES-GCM records with mbedTLS's (both key sizes) and
 * turn the libcrypto path off unless they match: 0, or -EPROTO (libcrypto
 * absent or different; mbedTLS's own is used). Once, after
 * psa_crypto_init(). tls_gcm_fast(): 1 while the libcrypto path is on. */
int tls_gcm_selftest(void);
int tls_gcm_fast(void);
/* 1 when libcrypto does @p ctx's records (for tests). */
struct mbedtls_cipher_context_t;
int tls_gcm_twinned(const struct mbedtls_cipher_context_t *ctx);
/* tls_ecdsa.c: the server key @p pk's ECDSA signatures are made by
 * OpenSSL's libcrypto from now on (mbedtls_pk_sign and _ext are wrapped),
 * once a libcrypto signature verified with @p pk's public half. 0;
 * -ENOTSUP (not an EC key libcrypto takes: mbedTLS keeps signing),
 * -EPROTO (the self-test failed: warn; mbedTLS keeps signing), -ENOSPC.
 * detach before @p pk is freed. Start-up and reload only. */
struct mbedtls_pk_context;
int tls_ecdsa_attach(struct mbedtls_pk_context *pk);
void tls_ecdsa_detach(const struct mbedtls_pk_context *pk);
/** "SHA256 Fingerprint=AB:CD:..." of the leaf certificate (static storage
 * inside @p s). */
const char *tls_server_fingerprint(const struct tls_server *s);

/* Counters, updated with atomics. */
struct tls_stats {
	atomic_ullong handshakes, handshake_failures, resumed;
};
struct tls_stats *tls_server_stats(struct tls_server *s);
/** Count into @p shared (which outlives @p s) instead of @p s's own
 * counters, so that a reloaded configuration keeps counting where the old
 * one stopped. Call before the first connection. */
void tls_server_share_stats(struct tls_server *s, struct tls_stats *shared);

/* One connection's TLS state; loop thread only. */
struct tls_conn;

int tls_conn_new(struct tls_server *s, struct tls_conn **out);
void tls_conn_free(struct tls_conn *c);

/** Hand in ciphertext read from the socket (copied). -ENOBUFS when more
 * than 64 KiB would be pending unread. */
int tls_conn_feed(struct tls_conn *c, const uint8_t *data, size_t len);

/** Advance the handshake. 0 when complete, TLS_AGAIN, TLS_FAIL. */
int tls_conn_handshake(struct tls_conn *c);
int tls_conn_handshake_done(const struct tls_conn *c);
/** Ciphertext fed but not yet decrypted, and how much tls_conn_feed()
 * holds at most (TLS_IN_MAX). */
size_t tls_conn_input_pending(const struct tls_conn *c);
size_t tls_conn_input_max(void);

/** Decrypt into @p buf: bytes (>0), TLS_AGAIN, TLS_EOF or TLS_FAIL. */
ssize_t tls_conn_read(struct tls_conn *c, uint8_t *buf, size_t cap);

/** Encrypt all of @p data into the output buffer. 0 or TLS_FAIL. */
int tls_conn_write(struct tls_conn *c, const uint8_t *data, size_t len);

/** Ciphertext waiting to go out: a pointer into the connection's output
 * buffer (valid until the next call on @p c) and its length. */
size_t tls_conn_output(struct tls_conn *c, const uint8_t **data);
/** @p n bytes of tls_conn_output() were written to the socket. */
void tls_conn_output_done(struct tls_conn *c, size_t n);

/** Queue a close_notify alert (then flush the output and close). */
void tls_conn_close_notify(struct tls_conn *c);

/** Negotiated protocol ("TLSv1.3"), ALPN ("http/1.1", "http/1.0" or
 * NULL), and whether the session was resumed from a ticket. */
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_alpn(const struct tls_conn *c);
int tls_conn_resumed(const struct tls_conn *c);

/* ------------------------------------------------------------------ */
/* HTTP/1.1 (http.c)                                                    */
/* ------------------------------------------------------------------ */

struct http_limits {
	size_t max_header_bytes, max_url_bytes, max_body_bytes;
	unsigned max_headers;
};

struct http_header {
	const char *name, *value; /* NUL-terminated, in the parser's arena */
	size_t name_len, value_len;
};

/* A parsed request; every pointer is valid until http_parser_next(). */
struct http_request {
	const char *method; /* "GET" */
	const char *target; /* "/v1/models?x=1", as sent */
	const char *path;   /* "/v1/models" (no query), not decoded */
	const char *query;  /* "x=1" or "" */
	int version_minor;  /* 0 or 1 (HTTP/1.x) */
	int keep_alive;     /* after this request, per version/Connection */
	int head;           /* HEAD: its answer is sent without the body */
	struct http_header *headers;
	size_t nheaders;
	const uint8_t *body; /* de-chunked */
	size_t body_len;
};

/** Header lookup, case-insensitive; NULL when absent. */
const char *http_header_get(const struct http_request *r, const char *name);

struct http_parser;

int http_parser_new(const struct http_limits *lim, struct http_parser **out);
void http_parser_free(struct http_parser *p);

/* Results of http_parser_feed(). */
#define HTTP_MORE 0  /* consumed everything; need more bytes */
#define HTTP_READY 1 /* a whole request is ready in *req */
#define HTTP_ERROR \
	2 /* malformed or over a limit: answer *status \
	     (400, 413, 414, 431, 501, 505) and close */

/**
 * Feed plaintext. Consumes bytes up to the end of one request at most
 * (pipelined requests stay unread: feed the rest after http_parser_next()).
 * Rejects what request smuggling needs: both Content-Length and
 * Transfer-Encoding, several Content-Length values, a Transfer-Encoding
 * other than chunked, bad chunk sizes, NUL or bare CR in headers, obsolete
 * line folding.
 * @param[out] consumed  bytes of @p data used.
 * @return HTTP_MORE, HTTP_READY (*req set) or HTTP_ERROR (*status set).
 */
int http_parser_feed(struct http_parser *p, const uint8_t *data, size_t len,
    size_t *consumed, struct http_request **req, int *status);

/** Done with the ready request: reset for the next one. */
void http_parser_next(struct http_parser *p);

/** Whether the parser is between requests (no byte of a new one seen). */
int http_parser_idle(const struct http_parser *p);
/** Whether the current request's line and headers are complete (its body
 * may still be arriving): the body deadline applies from then on. */
int http_parser_head_done(const struct http_parser *p);
/** Whether the request being read (or refused) is a HEAD: its answer,
 * an error included, is sent without the body. */
int http_parser_is_head(const struct http_parser *p);
/** 1, once per request, when its headers asked "Expect: 100-continue"
 * (HTTP/1.1, a body to come) and none of it is read yet: the caller
 * sends "HTTP/1.1 100 Continue" now. A request the parser refuses at its
 * headers (413) gets its final status instead. */
int http_parser_continue(struct http_parser *p);

/* Response writing. Every response carries Date, Server: strongroom,
 * Strict-Transport-Security, X-Content-Type-Options: nosniff,
 * X-Frame-Options: DENY, Referrer-Policy: no-referrer, Cache-Control:
 * no-store and Content-Security-Policy: default-src 'none' (unless the
 * caller passes its own). */
#define HTTP_CHUNKED ((size_t)-1)
/* The body ends when the connection closes: neither Content-Length nor
 * Transfer-Encoding, and keep_alive must be 0. HTTP/1.0 has no chunked
 * coding (RFC 9112 7), so a stream to an HTTP/1.0 client is framed so. */
#define HTTP_UNTIL_CLOSE ((size_t)-2)

/** Status line and headers; @p content_length, HTTP_CHUNKED or
 * HTTP_UNTIL_CLOSE (then @p keep_alive 0, else -EINVAL). */
int http_response_head(struct buf *out, int status, const char *content_type,
    size_t content_length, int keep_alive, const struct http_header *extra,
    size_t nextra);
/** The framing of a streamed body for a request of HTTP/1.@p
 * version_minor: HTTP_CHUNKED for 1.1, HTTP_UNTIL_CLOSE for 1.0. The
 * producer chooses it once and gives it to the head and to every part. */
size_t http_stream_framing(int version_minor);
/** One part of a streamed body framed by @p framing (HTTP_CHUNKED: a chunk;
 * HTTP_UNTIL_CLOSE: the bytes as they are; len 0 writes nothing), and
 * its end (the last chunk; nothing when the close ends it). */
int http_body_part(
    struct buf *out, size_t framing, const void *data, size_t len);
int http_body_end(struct buf *out, size_t framing);
/** How an answer is cut to its request, as it is written
 * (http_answer_fit). Zeroed for each request; head set. */
struct http_fit {
	int head;  /* HEAD: only the head goes out */
	int state; /* where in the answer the writing is (http_response.c) */
};
/**
 * Cut the answer bytes written from @p from on in @p out to what the
 * request may receive: for HEAD the head only (up to and including its
 * blank line; nothing after it, in this call or a later one); any other
 * answer passes as it is. Call it after each part of an answer is
 * written: a HEAD is answered by the route that answers its GET, which
 * writes the body as for a GET (RFC 9110 9.3.2 wants the same head).
 */
void http_answer_fit(struct buf *out, size_t from, struct http_fit *f);
/** A whole response with a body. */
int http_response(struct buf *out, int status, const char *content_type,
    const void *body, size_t len, int keep_alive);
/** {"error":{"code":CODE,"message":MESSAGE}} with @p status (JSON-escaped
 * with yyjson). @return @p status, so a route may return it; -ENOMEM. */
int http_error(struct buf *out, int status, const char *code,
    const char *message, int keep_alive);
/** The same with extra header fields (a 405's Allow, a 429's Retry-After;
 * as http_response_head() takes them). */
int http_error_hdr(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, const struct http_header *extra,
    size_t nextra);
const char *http_status_text(int status);

/* ------------------------------------------------------------------ */
/* Rate limits (ratelimit.c)                                            */
/* ------------------------------------------------------------------ */

/* A token bucket: @p rate tokens per second up to @p burst. The hook the
 * access layer uses for per-key limits. Thread-safe (a spinning CAS). */
struct rl_bucket {
	_Atomic uint64_t state; /* GCRA: when the bucket is full again, ns */
	_Atomic double rate, burst; /* changed in place by a reload */
};

void rl_bucket_init(struct rl_bucket *b, double rate, double burst);
/** Take @p cost tokens at @p now_ms. 1 when allowed; 0 when refused, with
 * *retry_after_s (>= 1) set to when enough tokens will be there. */
int rl_bucket_take(
    struct rl_bucket *b, uint64_t now_ms, double cost, unsigned *retry_after_s);

/* The daemon's limits: one global bucket and one per source address (a
 * bounded, striped table; the least recently seen address is reused). */
struct rl;
int rl_new(const struct app_config *c, struct rl **out);
void rl_free(struct rl *r);
/** New rates for the global and per-address buckets (SIGHUP); what each
 * bucket has used so far is kept. Any thread. */
void rl_configure(struct rl *r, const struct app_config *c);
/* One loop's tokens taken ahead from the shared buckets (see
 * ratelimit.c, "Leases"): touched by its own loop only; all zero = none.
 * The fields are rl_allow's. */
struct rl_held {
	uint32_t left, size; /* tokens in hand; the next lease's size */
	uint64_t until_ms;   /* what is left then goes back */
};
#define RL_LOCAL_SLOTS 64
struct rl_local {
	uint64_t gen; /* of the limits the leases were taken under */
	struct rl_held global;
	struct {
		uint8_t addr[16];
		int used;
		struct rl_held held;
	} addr[RL_LOCAL_SLOTS];
};
/** @p addr: 16 bytes (IPv4 mapped into IPv6). 1 allowed, 0 refused.
 * @p local: the calling loop's leases, or NULL to take every token from
 * the shared buckets. */
int rl_allow(struct rl *r, struct rl_local *local, const uint8_t addr[16],
    uint64_t now_ms, unsigned *retry_after_s);

/** Keyed hash (SipHash-2-4) of a 16-byte address, so that a client cannot
 * aim its addresses at one place of a table. @p k: a random key. */
uint64_t addr_hash(const uint64_t k[2], const uint8_t addr[16]);

/* Open connections per source address (conncap.c), shared by the loops. */
struct conncap;
int conncap_new(
    unsigned max_per_addr, unsigned max_conns, struct conncap **out);
void conncap_free(struct conncap *c);
/** Count one more connection from @p addr: 1, or 0 when at the cap. */
int conncap_acquire(struct conncap *c, const uint8_t addr[16]);
void conncap_release(struct conncap *c, const uint8_t addr[16]);
/** A new per-address cap (SIGHUP); connections over it are not closed. */
void conncap_set_limit(struct conncap *c, unsigned max_per_addr);

/* ------------------------------------------------------------------ */
/* Metrics (metrics.c)                                                  */
/* ------------------------------------------------------------------ */

/* Routes the metrics know by index; the router maps paths to them. */
enum metric_route { MR_HEALTH, MR_READY, MR_METRICS, MR_OTHER, MR_COUNT };

/** Count a finished request: route, status, latency in microseconds.
 * Any thread. */
void metrics_request(enum metric_route route, int status, uint64_t usec);
/* The calling thread (loop @p loop_index) counts requests into a shard
 * of its own from now on; other threads share shard 0. */
void metrics_bind_loop(unsigned loop_index);
void metrics_conn_open(int delta); /* +1 / -1 */
void metrics_ratelimited(void);
void metrics_hsm_op(uint64_t usec); /* one HSM operation's latency */
void metrics_conn_refused(void);    /* over a connection cap */
/** The keys within 72 hours of their expiry, as the expiry watch last
 * counted them (gauge strongroom_keys_expiring). Any thread. */
void metrics_keys_expiring(unsigned n);
/** One durable audit batch: its write and journal sync took @p usec and
 * made @p lines lines durable (an audit_commit_cb; @p arg unused). Any
 * thread. */
void metrics_audit_commit(void *arg, uint64_t usec, uint32_t lines);
/** Render every metric in the Prometheus text format (0.0.4) into @p out,
 * with the TLS counters of @p tls and build info. */
int metrics_render(struct buf *out, struct tls_stats *tls);
struct audit_stats;
/** Render the audit log's families from @p st (audit_stats_get()) and the
 * commit latencies metrics_audit_commit() counted. */
int metrics_render_audit(struct buf *out, const struct audit_stats *st);

/* ------------------------------------------------------------------ */
/* The server (server.c) and the router (router.c)                      */
/* ------------------------------------------------------------------ */

struct p11_ctx;
struct ks;
struct api;
struct app_loop;

/*
 * What SIGHUP replaces: the configuration the loops read and the TLS
 * set-up built from it. Reference-counted: each connection holds the one
 * it was accepted under, so old connections finish on old settings and the
 * last holder frees it.
 */
struct app_gen {
	atomic_uint refs;
	struct app_config cfg;
	struct tls_server *tls;
};

/* What every loop shares. Written at start-up; then only atomics and the
 * generation (under gen_lock) change. */
struct app {
	struct app_config cfg;      /* as started: listen, state_dir, ... */
	char config_path[PATH_MAX]; /* "" when started without --config */
	struct app_flags flags;     /* re-applied over the file on SIGHUP */
	pthread_mutex_t gen_lock;
	struct app_gen *gen;        /* the current one; see app_gen_get() */
	struct tls_stats tls_stats; /* every generation counts here */
	struct rl *rl;
	struct conncap *cap;
	struct p11_ctx *hsm;
	struct ks *ks;
	struct api *api;     /* authenticated routes (api.h); NULL in tests */
	struct serve *serve; /* inference (serve.h); NULL when none */
	atomic_int hsm_ready, ks_ready; /* refreshed by the control loop */
	atomic_int draining; /* 1: SIGTERM, finish and accept nothing; 2:
	                        forced (deadline or second signal) */
	atomic_uint loops_running;
	void *loops_done;  /* uv_async_t of the control loop; see control.c */
	atomic_uint conns; /* open connections, all loops */
	struct app_loop *loops;
	unsigned nloops;
	atomic_int loop_spinners; /* loops polling on now (loop_spin.c) */
	int spin_max;             /* at most this many: half, at least one */
	uint64_t spin_ns;         /* cfg.loop_spin_us, in ns */
	int port;                 /* bound port (for --listen :0) */
	struct sockaddr_storage listen_addr; /* cfg.listen, parsed once */
	socklen_t listen_len;
};

/**
 * Build the first generation from app->cfg (certificate made on first
 * start). Start-up only. @return 0 or a negative code with @p err.
 */
int app_gen_init(struct app *app, char err[256]);
/** The current generation with a reference taken: any thread. */
struct app_gen *app_gen_get(struct app *app);
/** Drop a reference; the last one frees the generation. NULL is ignored. */
void app_gen_put(struct app_gen *g);
/**
 * SIGHUP: read the configuration file again (flags still win), load the
 * certificate it names, and swap in the new generation; apply new rate
 * limits and per-address caps. Settings only a restart applies are kept
 * with a warning. Nothing changes when anything fails.
 * @return 0, or a negative code with @p err saying what was wrong.
 */
int app_reload(struct app *app, char err[256]);
/** Release the current generation at exit. */
void app_gen_fini(struct app *app);

/* The loops (server.c), driven by the control loop (control.c). */
/** Refuse a port another process listens on, then bind one SO_REUSEPORT
 * socket per loop. @return 0 or a negative code with @p err. */
int loops_bind(struct app *app, char err[256]);

/* Listening sockets (listen.c); loop thread unless said otherwise. */
/** Parse app->cfg.listen (HOST:PORT, IPv6 in brackets, empty host: all)
 * into app->listen_addr and, for a fixed port, check that nothing
 * listens there; 0, -EINVAL or -errno with @p err. Start-up thread. */
int listen_prepare(struct app *app, char err[256]);
/** Open loop @p l's SO_REUSEPORT socket on app->listen_addr (its port
 * app->port once the first loop chose it) and listen with l->on_conn; 0 or
 * -errno with @p err. Start-up thread before the loop runs, or the loop's
 * own thread. */
int listen_open(struct app *app, struct app_loop *l, char err[256]);
/** Out of descriptors (UV_EMFILE/UV_ENFILE from accept): close the
 * listener and reopen it after a pause, unless draining. */
void listen_pause(struct app_loop *l, int status);
/** Close the listener and the reopening timer (drain, loop end). */
void listen_stop(struct app_loop *l);
/** Raise the soft RLIMIT_NOFILE to what @p max_conns connections and the
 * daemon's own descriptors need, never past the hard limit and never
 * lower; warn (naming LimitNOFILE) when the hard limit is too low for
 * @p max_conns. Start-up thread or SIGHUP's reload. @return the soft
 * limit now in force. */
unsigned long listen_fit_nofile(unsigned max_conns);
/**
 * Before the first secret is read: unless @p core_dumps, no core file
 * (RLIMIT_CORE 0) and not dumpable (no ptrace or /proc/PID/mem by the same
 * user); with it, a warning that cores hold secrets (process.c). Call it
 * again after any change of user or group id, which resets dumpable.
 * Start-up thread. @return 0, or -errno with @p err naming the setting
 * (the daemon must not start).
 */
int process_protect(int core_dumps, char err[256]);
/** Start the loop threads; @return how many started. The last loop to end
 * sends app->loops_done. */
unsigned loops_start(struct app *app);
/** Tell every loop that app->draining changed. Any thread. */
void loops_wake(struct app *app);
/** Join the loop threads and free them. */
void loops_join(struct app *app);

/**
 * Bind one SO_REUSEPORT socket per loop, start the loop threads and run
 * the control loop (signals, readiness checks) on the calling thread until
 * SIGTERM/SIGINT has drained every connection.
 * @return 0 on a clean stop, or a negative code with @p err.
 */
int server_run(struct app *app, char err[256]);

/* ------------------------------------------------------------------ */
/* Routing, and requests answered after work off the loop (pending.c)   */
/* ------------------------------------------------------------------ */

/* route_request()'s answer when a handler will answer later. */
#define ROUTE_PENDING 0
/* A step's answer when it appended part of a streamed answer to out (the
 * head first, then chunks): the connection sends it and the request stays
 * pending until a later step returns the status. */
#define ROUTE_STREAM (-1)

struct app_pending;

/* One request being routed. Loop thread; valid during route_request()
 * only: a handler that answers later copies what its steps need (the
 * request's bytes are reused for the next request). */
struct route_ctx {
	struct app *app;
	const struct http_request *req;
	const uint8_t *addr; /* the peer, 16 bytes (IPv4 mapped into IPv6) */
	struct buf *out;     /* where the answer goes */
	int keep_alive;      /* in: the request's; out: the answer's */
	enum metric_route route;     /* set by the router */
	uint64_t t0_ns;              /* when the request was complete */
	struct app_pending *pending; /* set by app_pending_new() */
	void *conn;                  /* opaque: the connection */
};

/**
 * Answer one request into ctx->out (status line, headers, body), or start
 * answering it later. Loop thread; never blocks.
 * @return the HTTP status written, or ROUTE_PENDING when a handler took
 *         app_pending_new() and will answer from a step.
 */
int route_request(struct route_ctx *ctx);

/*
 * A step of a pending request, run on the connection's loop thread. With
 * @p out NULL the connection has gone: free @p arg and return (anything).
 * Otherwise write the answer into @p out (and *keep_alive) and return its
 * status, or arrange the next step (app_pending_work / app_pending_post)
 * and return ROUTE_PENDING, or append part of a streamed answer and return
 * ROUTE_STREAM (the next step runs at the next post).
 */
typedef int (*app_step_fn)(
    struct app_pending *p, void *arg, struct buf *out, int *keep_alive);

/**
 * Make the request of @p ctx answered later: its connection reads nothing
 * more until the last step has answered. @p arg belongs to the steps.
 * @return the pending request, or NULL when out of memory (then answer
 *         503 at once).
 */
struct app_pending *app_pending_new(
    struct route_ctx *ctx, app_step_fn step, void *arg);
/**
 * Run @p work(arg) on a worker thread (HSM, LMDB writes, password
 * hashing), then the step on the loop. Loop thread.
 * @return 0, or a negative libuv code (then answer at once).
 */
int app_pending_work(struct app_pending *p, void (*work)(void *arg));
/**
 * Run the step on the request's loop: any thread (the audit writer's
 * acknowledgement, the inference scheduler's tokens). Posts made before
 * the step runs coalesce into one run. A thread other than the loop may
 * post only while the request cannot end under it: while it holds it
 * (app_pending_hold), or when its post is the step's only way on.
 */
void app_pending_post(struct app_pending *p);

/**
 * Holds: for producers that post many times (a stream of tokens). Take a
 * hold on the loop thread (in a step or right after app_pending_new())
 * before handing @p p to the other thread; that thread ends with
 * app_pending_release(), which also posts a step, and must not touch @p p
 * after it. While a hold remains the request is not freed, and the step
 * that sees a closed connection (out NULL) waits until the last release.
 * A step should not return a final status while a hold remains unless
 * its arg outlives the holder.
 */
void app_pending_hold(struct app_pending *p);
void app_pending_release(struct app_pending *p);

/**
 * Call @p fn(arg) on the loop thread as soon as the connection closes
 * while the request is pending (the client went away, a deadline, a
 * forced drain): cancel the work there. The step still runs once more,
 * with out NULL, once no hold remains. Loop thread.
 */
void app_pending_on_close(struct app_pending *p, void (*fn)(void *arg));

/**
 * How long the request may stay pending before its connection is closed:
 * @p ms (0: no limit; default the connection's idle_timeout_ms). Once a
 * step has streamed (ROUTE_STREAM) only a peer that stops reading is
 * timed. Loop thread.
 */
void app_pending_deadline(struct app_pending *p, unsigned ms);

#endif /* SR_APPLIANCE_INTERNAL_H */
