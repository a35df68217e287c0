/*
 * appliance/api.h: the authenticated part of the daemon: who is calling
 * (API keys and JWTs), whether the policy lets them, the management API
 * (/api/...), OAuth 2.0 client credentials (/oauth/token) and the JWKS,
 * every decision written to the audit log before it is answered.
 *
 * Ownership: one struct api per daemon, made by api_open() at start-up
 * and freed by api_close() after the loops have ended. Threading: the
 * route entry runs on a loop thread and never blocks; keystore and HSM
 * work runs on libuv's worker threads (appliance/internal.h's pending
 * requests); the audit writer acknowledges on its own thread.
 *
 * Errors: api_open() returns 0 or a negative code with a message for the
 * operator (policy file line, audit folder, keystore); requests get JSON
 * errors {"error":{"code","message"}}: 401 for any failed authentication
 * (codes invalid_api_key, invalid_token, key_revoked, key_suspended,
 * key_expired, key_not_yet_valid, address_not_allowed, unauthenticated),
 * 403 forbidden for a policy denial, 503 audit_unavailable when the audit
 * line could not be written (nothing is answered unrecorded).
 */
#ifndef SR_APPLIANCE_API_H
#define SR_APPLIANCE_API_H

#include <stdio.h>

#include "appliance/audit.h"
#include "appliance/internal.h"

struct api;

struct api_options {
	const char *state_dir;     /* audit/ and the bootstrap key live here */
	const char *policy_file;   /* NULL or "": the shipped default policy */
	const char *issuer;        /* JWT iss and aud; NULL: "strongroom" */
	double rate_per_key;       /* requests/s per API key or caller when its
	                              record sets none; 0: 50 */
	double rate_per_key_burst; /* 0: twice the rate */
	struct p11_ctx *hsm;       /* borrowed, for GET /api/hsm; NULL: keystore
	                              figures only */
};

/**
 * Load the policy, open the audit log (checkpoints signed by an HSM key
 * the keystore holds), make sure the OAuth signing key exists and, on first
 * start, create the "admin" user and write its API key to
 * <state_dir>/admin.key (0600) for the operator.
 * @param[in] ks  borrowed; outlives the api.
 * @return 0, or a negative code with @p err.
 */
int api_open(struct ks *ks, const struct api_options *o, struct api **out,
    char err[256]);
/** Close the audit log (final checkpoint) and free. Safe on NULL. */
void api_close(struct api *a);

/**
 * Whether @p path is one of the api's routes (/api/..., /oauth/token,
 * /.well-known/jwks.json).
 */
int api_owns(const char *path);

/** Route one request; as route_request(). */
int api_route(struct api *a, struct route_ctx *ctx);

/**
 * @brief The expiry watch: find every key within 72 hours of its expiry,
 * publish the count as the strongroom_keys_expiring gauge, and write one
 * "key.expiring" audit event per key per UTC day. The keys announced on a
 * day are read back from that day's audit file at the first call and at
 * each new day, so a restart does not repeat them (an unreadable file is
 * warned about, and its keys announced again). The same tick writes the
 * API keys' last use the keystore noted (KS_OP_USAGE_FLUSH).
 * @return the number of keys expiring, or a negative code (keystore
 *         unavailable: the gauge keeps its last value; try again at the
 *         next tick).
 * @note Blocks on the keystore and the audit writer: call it from a worker
 *       thread (the control loop queues it every expiry_check_s seconds),
 *       never from an event loop; not concurrently with itself.
 */
int api_expiry_check(struct api *a);

/**
 * @brief The authorization matrix a policy gives the management API: one
 * line "ROLE METHOD PATH ACTION allow|deny" per role and per route that
 * needs a caller, the path's {id} written as "zzzzzzzzzzzz" (a key that
 * does not exist, whose owner is unknown), the caller an API key from
 * 127.0.0.1 with no scopes, now. What tests compare the daemon against.
 * @param[in] policy_file  NULL or "": the built-in policy.
 * @return 0, or the policy's load error (message in @p err).
 * @note Any thread; reads the file once.
 */
int api_authz_matrix(const char *policy_file, FILE *out, char err[512]);

/* ------------------------------------------------------------------ */
/* Routes served by other parts of the daemon (inference)               */
/* ------------------------------------------------------------------ */

/* The allowed caller of an external route. Every pointer is valid during
 * the start callback only: copy what later steps need. */
struct api_caller {
	const char *actor;  /* "app:ID" or "user:ID", for the audit log */
	const char *id;     /* the app or user the credential belongs to */
	const char *key_id; /* the credential's key id ("" when none) */
	const char *src;    /* the source address as text */
	unsigned roles;     /* POLICY_ROLE_* bits */
	const char *method, *path, *query;
	const uint8_t *body; /* the request body (NUL-terminated), or NULL */
	size_t body_len;
	uint64_t t0_ns; /* when the request was complete (uv_hrtime) */
};

/* A route's own error format: write a refusal into @p out (a whole HTTP
 * response), with Retry-After when @p retry_after_s is not 0. Returns
 * @p status, or a negative errno (out of memory; @p out unchanged). */
typedef int api_error_fn(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, unsigned retry_after_s);

/* An external route: the access layer authenticates the caller,
 * authorizes @p action on the request's path, records the decision in
 * the audit log and only then hands the request over. */
struct api_external {
	const char *action; /* a policy action ("inference.chat") */
	/* Refusals (401, 403, 503) in the route's own format; NULL:
	 * http_error()'s. */
	api_error_fn *error;
	/* Loop thread, once allowed: answer (return the status), or keep
	 * the request (ROUTE_PENDING / ROUTE_STREAM). *arg comes in as
	 * api_route_external()'s arg and may be changed for the later
	 * steps. Free *arg before returning a final status. */
	int (*start)(struct app_pending *p, const struct api_caller *who,
	    void **arg, struct buf *out, int *keep_alive);
	/* The later steps, as app_step_fn with the start's *arg (out NULL:
	 * the connection is gone, or the request was refused before the
	 * start: free arg). */
	app_step_fn step;
	/* The connection closed while the route held the request (loop
	 * thread): cancel its work. May be NULL. */
	void (*on_close)(void *arg);
	/* 0: the admission ("allowed") is recorded and on disk before start
	 * runs, for routes that stream or change state. 1: the route only
	 * reads and records its own line (api_audit) before it answers
	 * anything, so the admission needs no line of its own: one durable
	 * line per request instead of two, one group commit of waiting. */
	int answers_after_own_line;
};

/**
 * @brief Route one request to an external route through authentication,
 * policy and audit; as route_request().
 * @param[in] ext  static: it outlives every request.
 * @param[in] arg  the route's, handed to ext->start (or, when the request
 *                 is refused first, to ext->step with out NULL to free).
 * @note Loop thread. Refusals (401/403, 503 when the audit log cannot be
 *       written) are answered here in ext->error's format.
 */
int api_route_external(struct api *a, struct route_ctx *ctx,
    const struct api_external *ext, void *arg);

/**
 * @brief The audit log's counters now (for /metrics).
 * @note Any thread; reads atomics only.
 */
void api_audit_stats(struct api *a, struct audit_stats *st);

/**
 * @brief Record one line in the audit log (an external route's usage:
 * tokens, duration); @p cb reports when it is on disk.
 * @return as audit_append_async(): 0 when queued, else the refusal (then
 *         answer 503: nothing is served unrecorded).
 * @note Any thread.
 */
int api_audit(
    struct api *a, const struct audit_event *ev, audit_done_cb *cb, void *arg);

#endif /* SR_APPLIANCE_API_H */
