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

#include "appliance/internal.h"

struct api;

struct api_options {
	const char *state_dir;     /* audit/ and the bootstrap key live here */
	const char *policy_file;   /* NULL or "": the shipped default policy */
	const char *issuer;        /* JWT iss and aud; NULL: "strongroom" */
	double rate_per_key;       /* requests/s per API key or caller when its
	                              record sets none; 0: 50 */
	double rate_per_key_burst; /* 0: twice the rate */
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
 * "key.expiring" audit event per key per UTC day (remembered in memory, so
 * a restart may repeat the day's events once).
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
 * @param[in] policy_file  NULL: the shipped default.
 * @return 0, or the policy's load error (message in @p err).
 * @note Any thread; reads the file once.
 */
int api_authz_matrix(const char *policy_file, FILE *out, char err[512]);

#endif /* SR_APPLIANCE_API_H */
