/*
 * appliance/api_impl.h: what api.c (authentication, policy, audit, the
 * request's steps), api_routes.c (the handlers) and api_boot.c (start-up)
 * share. Nothing else includes it.
 */
#ifndef SR_APPLIANCE_API_IMPL_H
#define SR_APPLIANCE_API_IMPL_H

#include "appliance/api.h"
#include "appliance/audit.h"
#include "appliance/jwt.h"
#include "appliance/policy.h"
#include "keystore/keystore.h"

#define API_TOKEN_TTL 900 /* seconds: the JWTs /oauth/token issues */

struct api {
	struct ks *ks;
	struct policy *policy;
	struct audit *audit;
	struct jwt_keyset *jwks; /* the OAuth key's versions, for verify */
	char *jwks_json;         /* /.well-known/jwks.json, prebuilt */
	size_t jwks_len;
	char jwt_key[KS_ID_LEN + 1];   /* keystore id of the OAuth key */
	char audit_key[KS_ID_LEN + 1]; /* keystore id of the audit key */
	char issuer[64];
};

struct api_req;
typedef void api_work_fn(struct api_req *r);

/* One route: method, path pattern ("{id}" is one key id), the policy's
 * action, and the handler run on a worker thread. */
struct api_route {
	const char *method;
	const char *pattern;
	const char *action;
	api_work_fn *work;
	int public; /* no caller needed (token endpoint) */
};

enum api_phase {
	PH_AUTH,
	PH_WORK,
	PH_AUDIT,
	PH_EXT_AUDIT, /* an external route's decision being recorded */
	PH_EXTERNAL,  /* an external route's own steps (api_route_external) */
};

/* A request from its routing to its answer. Heap; wiped and freed by its
 * last step. */
struct api_req {
	struct api *api;
	struct app_pending *p;
	const struct api_route *rt;
	enum api_phase phase;
	char method[8];
	char path[256];
	char query[512];
	char id[KS_ID_LEN + 1]; /* the {id} of the path, "" when none */
	uint8_t *body;
	size_t body_len;
	char bearer[JWT_TOKEN_MAX]; /* the presented credential: wiped */
	char basic[512];            /* Authorization: Basic (token only) */
	uint8_t addr[16];
	char src[64];
	/* the caller, once authenticated */
	int auth_rc;
	const char *auth_code; /* JSON error code when auth_rc != 0 */
	char actor[64];        /* "app:ID", "user:ID" */
	char key_id[KS_ID_LEN + 1];
	unsigned roles;
	char scopes[KS_SCOPE_MAX];
	struct ks_meta caller;
	char owner[KS_ID_LEN + 1]; /* owner of the {id} resource */
	/* the answer, held until its audit line is on disk */
	int status;
	struct buf answer; /* the whole HTTP response */
	int keep_alive;
	int audit_rc;
	uint64_t t0_ns;
	struct ks_request kq;
	struct ks_reply kr;
	/* an external route (api_route_external): its steps and their arg */
	const struct api_external *ext;
	void *ext_arg;
};

/** The route table and its lookup (api_routes.c). NULL: no route;
 * *@p method_ok 0 when the path exists under another method. */
const struct api_route *api_route_find(const char *method, const char *path,
    char id[KS_ID_LEN + 1], int *method_ok);

/** Run one keystore call into r->kr (worker thread). */
int api_ks(struct api_req *r);
/** A JSON answer (status and body) into r->answer. */
void api_answer_json(
    struct api_req *r, int status, const char *json, size_t len);
/** {"error":{"code","message"}} into r->answer. */
void api_answer_error(
    struct api_req *r, int status, const char *code, const char *message);
/** The keystore's error as an HTTP answer (404, 409, 400, 503...). */
void api_answer_ks_error(struct api_req *r, int rc);

/** Sign @p digest with the OAuth key in the HSM (jwt_sign_cb). */
int api_jwt_sign(void *arg, const uint8_t digest[32], uint8_t rs[64]);

#endif /* SR_APPLIANCE_API_IMPL_H */
