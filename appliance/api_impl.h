/*
 * appliance/api_impl.h: what api.c (authentication, policy, audit, the
 * request's steps), api_external.c (the same for the routes other parts
 * of the daemon serve), api_routes.c (the handlers) and api_boot.c
 * (start-up) share, with the other api_*.c files. Nothing else in the
 * daemon includes it; the form parser's unit test and fuzz target do, to
 * reach the form decoder without a daemon.
 */
#ifndef SR_APPLIANCE_API_IMPL_H
#define SR_APPLIANCE_API_IMPL_H

#include "appliance/api.h"
#include "appliance/audit.h"
#include "appliance/jwt.h"
#include "appliance/policy.h"
#include "appliance/session.h"
#include "keystore/keystore.h"

#define API_TOKEN_TTL 900 /* seconds: the JWTs /oauth/token issues */
#define API_EXPIRING_WITHIN (72 * 3600) /* the expiry warning window */
#define API_GRACE_DEFAULT 86400         /* rotation: old key's grace, s */
#define API_GRACE_MAX (7 * 86400)       /* the longest grace a caller gets */

struct api_sessions; /* session.c */
struct api_backoff;  /* session.c */
struct api_keyrate;  /* api_keys.c */
struct api_expiry;   /* api_keys.c */

struct api {
	struct ks *ks;
	struct p11_ctx *hsm; /* borrowed; may be NULL */
	struct policy *policy;
	struct audit *audit;
	struct jwt_keyset *jwks; /* the OAuth key's versions, for verify */
	/* /.well-known/jwks.json, prebuilt for each span of time in which
	 * its keys stay the same (jwt_jwks_docs); never changed after start,
	 * so the loops read them without a lock. */
	struct jwt_jwks_doc jwks_doc[JWT_KEYS_MAX];
	unsigned njwks_doc;
	char jwt_key[KS_ID_LEN + 1];   /* keystore id of the OAuth key */
	char audit_key[KS_ID_LEN + 1]; /* keystore id of the audit key */
	/* The versions KS_OP_SIGN signs with, and the names tokens (kid) and
	 * checkpoints (key_id) give them: "<keystore id>.v<version>". */
	uint32_t jwt_version, audit_version;
	char jwt_kid[KS_VERSION_NAME_MAX], audit_kid[KS_VERSION_NAME_MAX];
	char issuer[64];
	char audit_dir[PATH_MAX]; /* what GET /api/audit reads */
	struct api_sessions *sessions;
	struct api_backoff *backoff;
	struct api_keyrate *keyrate;
	struct api_expiry *expiry;
	double rate_per_key, rate_per_key_burst; /* defaults for a key */
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
	int public; /* no caller needed (token endpoint, login, logout) */
	/* 1: the handler only reads the keystore (GET, LIST, EXPIRING), so
	 * the loop runs it with KS_REQ_NO_WAIT first and hands it to a
	 * worker only when the keystore answers KS_EMISS. */
	int reads_only;
	/* the route's own error format; NULL: {"error":{"code","message"}} */
	api_error_fn *error;
};

enum api_phase {
	PH_AUTH,
	PH_INTENT, /* a state change's decision being recorded first */
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
	char session[API_SESSION_TOKEN_MAX]; /* console cookie: wiped */
	char csrf[API_SESSION_TOKEN_MAX];    /* X-CSRF-Token: wiped */
	char session_user[KS_ID_LEN + 1];    /* whose session it was */
	char basic[512]; /* Authorization: Basic (token only): wiped */
	int form_body;   /* Content-Type application/x-www-form-urlencoded */
	uint8_t addr[16];
	char src[64];
	/* the caller, once authenticated */
	int auth_rc;
	const char *auth_code; /* JSON error code when auth_rc != 0 */
	int auth_status;       /* its HTTP status; 0: 401 */
	int is_apikey;         /* authenticated by an API key */
	double rate, burst;    /* the caller's own limit; 0: the default */
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
	int intent_done; /* the decision line is on disk: the change ran */
	char made_key[KS_ID_LEN + 1]; /* a key this request made: #ID */
	int not_found;                /* no route: 404, or 405 with allow[] */
	char allow[64];
	uint64_t t0_ns;
	/* on the event loop: api_ks asks with KS_REQ_NO_WAIT, and a KS_EMISS
	 * sets loop_miss (the step is then repeated on a worker) */
	int on_loop, loop_miss;
	/* an external route (api_route_external): its steps and their arg */
	const struct api_external *ext;
	void *ext_arg;
	/* the route's error format (ext->error, api_oauth_error); NULL:
	 * {"error":{"code","message"}} */
	api_error_fn *error_fmt;
	/* The {id} record as authentication read it, for its owner (res_read
	 * 1): the first api_expect_kind answers from it rather than read it
	 * again in the same request; any keystore call but a GET drops it. */
	struct ks_meta res_meta;
	int res_read;
	struct ks_request kq;
	/* Last: its list (35 KB) is neither zeroed nor wiped per request (it
	 * holds metadata only, valid up to kr.count); see API_REQ_CLEAR. */
	struct ks_reply kr;
};

/* The bytes of a struct api_req that are zeroed when it is made and wiped
 * when it is freed: all but kr.list. */
#define API_REQ_CLEAR \
	(offsetof(struct api_req, kr) + offsetof(struct ks_reply, list))

/** The route table and its lookup (api_routes.c). NULL: no route;
 * *@p method_ok 0 when the path exists under another method. */
const struct api_route *api_route_find(const char *method, const char *path,
    char id[KS_ID_LEN + 1], int *method_ok);

/** The methods @p path takes, as a 405's Allow field ("GET, PATCH, DELETE")
 * into @p out (NUL-terminated); its length, 0 when none. */
size_t api_route_allow(const char *path, char *out, size_t cap);

/** The whole table (the authorization matrix reads it). */
const struct api_route *api_route_table(size_t *n);

/** Run one keystore call into r->kr (worker thread). */
int api_ks(struct api_req *r);

/* The request pipeline, shared by api.c (the management API) and
 * api_external.c (api_route_external: routes other modules serve). Loop
 * thread unless said otherwise. */
/** A request with everything but r->kr's list zeroed; NULL: no memory. */
struct api_req *api_req_new(void);
/** Wipe and free @p r (safe on NULL). An external route's arg that its
 * start never received goes to its step with out NULL, to be freed. */
void api_req_free(struct api_req *r);
/** Copy what the pipeline needs of ctx's request into @p r: method, path,
 * query, body, the credentials (Bearer, Basic, session cookie, CSRF
 * token), the source address, keep-alive and t0.
 * @return 0; -ENAMETOOLONG (path or query too long), -ENOMEM. */
int api_req_copy(struct api_req *r, const struct route_ctx *ctx);
/** Authenticate r->bearer (its form first, then its record: from the
 * cache here, else on a worker), then decide and go on; as
 * route_request(). */
int api_bearer_authenticate(struct api_req *r);
/** Every step of a request after its routing (app_pending_new's). */
int api_step(
    struct app_pending *p, void *arg, struct buf *out, int *keep_alive);
/** audit_done_cb of a request's line: the result in r->audit_rc, then
 * the request's next step is posted (the audit writer's thread). */
void api_on_audited(void *arg, int status, uint64_t seq);
/** The fail-closed answer into @p out: 503 audit_unavailable with
 * Retry-After, in the route's format, and the connection closed. */
void api_answer_audit_unavailable(struct api_req *r, struct buf *out);
/** An external route's caller is allowed: its decision is recorded (or
 * not, answers_after_own_line) and the route started from the next step
 * (api_external.c). @return ROUTE_PENDING. */
int api_external_admit(struct api_req *r);
/** An external request's steps from its admission on (PH_EXT_AUDIT,
 * PH_EXTERNAL), as app_step_fn; r is freed after the last
 * (api_external.c). */
int api_external_step(struct api_req *r, struct buf *out, int *keep_alive);

/* api_auth.c. Worker: the whole check of r->bearer (or the session's
 * user), the caller's roles and scopes, and the resource's owner; sets
 * auth_rc/auth_code and wipes the bearer. */
void api_auth_work(void *arg);
/* Loop: the same check when the keystore can answer without waiting (an
 * API key in its cache, a session's user): 0 when done (bearer wiped),
 * -EAGAIN when api_auth_work must do it on a worker (nothing kept). */
int api_auth_on_loop(struct api_req *r);
/* The caller's record @p m as r->caller, with r->actor ("app:ID",
 * "user:ID"), r->roles, r->scopes ("a b") and its own rate limit. */
void api_caller_from_meta(struct api_req *r, const struct ks_meta *m);
/* The role bits of record @p m: POLICY_ROLE_SERVICE for an app, a user's
 * from its scope JSON, 0 for any other kind. Any thread. */
unsigned api_meta_roles(const struct ks_meta *m);
/* Refuse (403 forbidden, answered; -EPERM) a change to the credentials or
 * state of user @p user when it holds security-officer and the caller
 * does not; 0 otherwise, also for a record that is not a user
 * (api_users.c). */
int api_officer_guard(struct api_req *r, const struct ks_meta *user);
/* The same for the owner of API key @p key (a user or an app): reads the
 * owner into r->kr (api_users.c). */
int api_officer_guard_key(struct api_req *r, const struct ks_meta *key);
/* 1 when the caller may come from r->addr (its bound networks, if any). */
int api_from_bound_network(const struct api_req *r);
/** A JSON answer (status and body) into r->answer. */
void api_answer_json(
    struct api_req *r, int status, const char *json, size_t len);
/** {"error":{"code","message"}} into r->answer, or the route's own
 * format (r->error_fmt). */
void api_answer_error(
    struct api_req *r, int status, const char *code, const char *message);
/** The keystore's error as an HTTP answer (404, 409, 400, 503...). */
void api_answer_ks_error(struct api_req *r, int rc);

/** A JSON answer with extra headers (Set-Cookie, Retry-After). */
void api_answer_json_hdr(struct api_req *r, int status, const char *json,
    size_t len, const struct http_header *extra, size_t nextra);
/** An error answer with a Retry-After header of @p retry_after seconds. */
void api_answer_retry(struct api_req *r, int status, const char *code,
    const char *message, unsigned retry_after);

/* Shared by the handler files (api_routes.c). */
struct yyjson_alc;
struct yyjson_mut_doc;
struct yyjson_mut_val;
/** Metadata as JSON members of @p o: never material. */
void api_meta_json(struct yyjson_mut_doc *d, struct yyjson_mut_val *o,
    const struct ks_meta *m);
/** yyjson's allocator for the API's documents: plain malloc, but every
 * block is wiped when freed or moved (a document can hold a new API key,
 * a TOTP secret or a password). Use it for yyjson_mut_doc_new() and the
 * reading of request bodies; a text written with it is freed with
 * sr_free_wiped(). Any thread. */
const struct yyjson_alc *api_alc(void);
/** Write @p d as the answer and free it. */
void api_answer_doc(struct api_req *r, int status, struct yyjson_mut_doc *d);
/** One key's metadata (r->kr.meta) as the answer. */
void api_answer_meta(struct api_req *r, int status);
/** POST /oauth/token (api_oauth.c). Worker thread. */
void api_oauth_token(struct api_req *r);
/* The token endpoint's errors (RFC 6749 5.2): {"error":"CODE",
 * "error_description":"MESSAGE"}, the description cut down to the
 * characters 5.2 allows (api_error_fn). */
int api_oauth_error(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, unsigned retry_after_s);
/* Forms and query strings (api_form.c; pure, any thread). */
/** Percent-decode @p len bytes of a form value ('+' is a blank) into
 * @p out, NUL-terminated. @return 0; -E2BIG when it does not fit in
 * @p cap - 1 bytes, -EILSEQ when it decodes to a NUL byte (then @p out
 * holds what came before, never to be used as the value: refuse it). */
int api_form_decode(const char *v, size_t len, char *out, size_t cap);
/** How many times @p name= appears as a parameter of @p query. */
unsigned api_query_count(const char *query, const char *name);
/** The first value of @p name in a query or form string, decoded as
 * api_form_decode() does; "" and 0 when absent. @return as there. */
int api_query_get(const char *query, const char *name, char *out, size_t cap);
/** What api_query_stray() found. */
#define API_QUERY_UNKNOWN 1  /* a name not in the list */
#define API_QUERY_NO_VALUE 2 /* a known name without '=' */
#define API_QUERY_REPEATED 3 /* a known name given again */
/** The first parameter of @p query that is not one of @p names (a
 * NULL-ended list), has no '=', or repeats an earlier one: its API_QUERY_*
 * reason, and its name as sent, cut to @p cap - 1 bytes, in @p bad; 0 when
 * there is none. Empty parameters ("a=1&&b=2", a trailing '&') are
 * skipped. A filter whose name is mistyped or given twice would otherwise
 * be dropped or half-used without a word. */
int api_query_stray(
    const char *query, const char *const names[], char *bad, size_t cap);
/** api_query_get() for a handler: 0, or an error after answering 400
 * invalid_request naming @p name (too long, or an encoded NUL). */
int api_query_param(struct api_req *r, const char *query, const char *name,
    char *out, size_t cap);
/** api_query_stray() for a handler: 0 when every parameter of the request's
 * query is one of @p names, given once with a value; else -EINVAL after
 * answering 400 invalid_request that names the parameter (when it is a
 * plain name) and lists @p names. */
int api_query_only(struct api_req *r, const char *const names[]);
/** A page of keys of @p kind under @p parent ("" any), from ?after=. */
void api_list_op(struct api_req *r, unsigned kind, const char *parent);
/** GET into r->kr; answer 404 and return non-zero unless the key of the
 * path is of @p kind. */
int api_expect_kind(struct api_req *r, unsigned kind);
/* An app's create or update body, checked (api_apps.c). */
#define API_APP_NAME 0x1u
#define API_APP_CIDRS 0x2u
#define API_APP_SCOPES 0x4u
#define API_APP_EXPIRES 0x8u
#define API_APP_RATE 0x10u
struct yyjson_doc;
struct yyjson_val;
struct api_app_body {
	unsigned set; /* API_APP_*: the members the body named */
	char name[KS_NAME_MAX];
	struct ks_cidr cidrs[KS_CIDR_MAX]; /* unused slots zero */
	int64_t expires_at;                /* now + expires_in_days */
	struct yyjson_val *scopes;         /* the array, inside doc */
	struct yyjson_val *rate_limit;     /* the object, inside doc */
	struct yyjson_doc *doc;            /* the parsed body */
};
/**
 * Check r->body as an app's create (@p create 1: "name" required, a year's
 * expiry by default) or update (at least one member) into @p b, which
 * api_app_body_free() releases whatever this returns.
 * @return 0; -EINVAL after answering 400 invalid_request naming the member
 *         (an empty or non-object body, an unknown member, a wrong type or
 *         value, a network cidr.c refuses, more than 8 networks).
 */
int api_app_body_parse(struct api_req *r, int create, struct api_app_body *b);
/**
 * Read r's body as a JSON object whose members are all named in @p members
 * (NULL-terminated), each given once, no name holding a NUL (api_apps.c).
 * With @p optional an empty body is accepted (*doc and *root NULL).
 * @return 0 with *doc (yyjson_doc_free it, also on error) and *root; or
 * -EINVAL after answering 400 invalid_request naming the member.
 */
int api_body_object(struct api_req *r, const char *const *members, int optional,
    struct yyjson_doc **doc, struct yyjson_val **root);
/** @p v as a C string: NULL unless it is a JSON string with no NUL inside
 * (one would cut it short: "dev2\u0000zz" is not "dev2"). Owned by v's
 * document. */
const char *api_json_str(struct yyjson_val *v);
/** A "scopes" list as apps and users take it: at most 32 strings of 1 to
 * 64 printable ASCII bytes without blanks, quotes or backslashes. 0, or
 * -EINVAL after answering 400. */
int api_scopes_check(struct api_req *r, struct yyjson_val *arr);
void api_app_body_free(struct api_app_body *b);
/**
 * The scope JSON to store: the members of @p current (an app's stored
 * scope, "" or NULL for none) with the body's scopes and rate_limit in
 * place of theirs; "scopes" is [] when neither has one.
 * @return 0; -E2BIG (400 answered) when it exceeds KS_SCOPE_MAX; -ENOMEM
 *         (503 answered).
 */
int api_app_scope(struct api_req *r, const struct api_app_body *b,
    const char *current, char out[KS_SCOPE_MAX]);
/** A key's bound networks as "cidrs":["ADDR/PREFIX",...] in @p o (none:
 * no member). */
void api_app_cidrs_json(struct yyjson_mut_doc *d, struct yyjson_mut_val *o,
    const struct ks_meta *m);
/** POST /api/{apps,users}/{id}/keys (the key shown once) and the list. */
void api_keys_create(struct api_req *r);
void api_keys_list(struct api_req *r);

/* Handlers (worker thread), by file. */
void api_users_create(struct api_req *r); /* api_users.c */
void api_users_list(struct api_req *r);
void api_users_read(struct api_req *r);
void api_users_disable(struct api_req *r);
void api_users_delete(struct api_req *r);
void api_users_password(struct api_req *r);
void api_users_totp(struct api_req *r);
void api_keys_rotate(struct api_req *r); /* api_keys.c */
void api_keys_leak(struct api_req *r);
void api_audit_read(struct api_req *r);
void api_login(struct api_req *r); /* api_session.c */
void api_logout(struct api_req *r);

/* Per-key rate limits and the expiry watch (api_keys.c). */
int api_keyrate_new(struct api_keyrate **out);
void api_keyrate_free(struct api_keyrate *k);
/** Take one request from the bucket of @p id (rate/burst 0: defaults).
 * @return 1 allowed; 0 refused with *retry_after set. Any thread. */
int api_keyrate_take(struct api *a, const char *id, double rate, double burst,
    unsigned *retry_after);
int api_expiry_new(struct api_expiry **out);
void api_expiry_free(struct api_expiry *e);

/** Sign @p digest with the OAuth key in the HSM (jwt_sign_cb). */
int api_jwt_sign(void *arg, const uint8_t digest[32], uint8_t rs[64]);

#endif /* SR_APPLIANCE_API_IMPL_H */
