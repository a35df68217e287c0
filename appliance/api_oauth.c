/*
 * appliance/api_oauth.c: POST /oauth/token, the OAuth 2.0 client
 * credentials grant (RFC 6749 section 4.4). The client is an app: its
 * client_id is the app's id and its client secret one of the app's API
 * keys, sent either in the form body (client_id, client_secret) or with
 * HTTP Basic (section 2.3.1, which servers must accept), never both. The
 * token is an ES256 JWT signed in the HSM (jwt.h) carrying the app's
 * scopes, or the subset the request's scope parameter names (4.4.2).
 *
 * Errors are section 5.2's, in its format ({"error":"invalid_client",
 * "error_description":"..."}, api_oauth_error), whatever refuses the
 * request (the audit log's 503 included): invalid_request (not a form, a
 * parameter given twice or too long or decoding to a NUL byte, no grant_type,
 * two ways of authenticating), unsupported_grant_type, invalid_client (401,
 * with WWW-Authenticate when Basic was tried) and invalid_scope; and, as for
 * the app's key anywhere, 401 address_not_allowed from outside the app's bound
 * networks. Runs on a worker thread; api.c records the outcome in the audit log
 * before the answer is released.
 *
 * It must never echo or log a secret (the form, the Basic credentials and
 * the token are wiped here, the body by api.c), never issue a scope the
 * app does not hold, and never tell a caller which part of a failed
 * client authentication was wrong.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/base64.h>
#include "appliance/api_impl.h"

/* An error's code and description are each cut at OAUTH_ERROR_PART
 * bytes; OAUTH_ERROR_MAX holds the whole JSON text. */
#define OAUTH_ERROR_PART 240
#define OAUTH_ERROR_MAX (2 * OAUTH_ERROR_PART + 48)

/* The parameters this grant reads; RFC 6749 3.2: none may repeat. */
static const char *const oauth_params[] = { "grant_type", "client_id",
	"client_secret", "scope" };

/* {"error":"CODE","error_description":"MESSAGE"} into @p text (RFC 6749
 * 5.2). Both strings are cut down to the characters 5.2 allows
 * (%x20-21 / %x23-5B / %x5D-7E): a double quote becomes a single one and
 * anything else outside, a client's bytes included, a '?', so the JSON
 * needs no escapes. Returns the length. */
static size_t
oauth_error_text(
    char text[OAUTH_ERROR_MAX], const char *code, const char *message)
{
	static const char head[] = "{\"error\":\"",
	                  mid[] = "\",\"error_description\":\"";
	const char *parts[2] = { code, message };
	size_t n = 0, k;
	int i;

	for (i = 0; i < 2; i++) {
		const char *sep = i == 0 ? head : mid;

		memcpy(text + n, sep, strlen(sep));
		n += strlen(sep);
		for (k = 0; parts[i][k] != '\0' && k < OAUTH_ERROR_PART; k++) {
			unsigned char c = (unsigned char)parts[i][k];

			text[n++] = c == '"'                    ? '\''
			    : c < 0x20 || c > 0x7e || c == '\\' ? '?'
			                                        : (char)c;
		}
	}
	memcpy(text + n, "\"}", 3);
	return n + 2;
}

/* A whole 5.2 answer with @p extra headers into @p out: @p status, or
 * -ENOMEM with @p out as it was. */
static int
oauth_error_write(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, const struct http_header *extra,
    size_t nextra)
{
	char text[OAUTH_ERROR_MAX];
	size_t len = oauth_error_text(text, code, message), mark = out->len;

	if (http_response_head(out, status, "application/json", len, keep_alive,
	        extra, nextra) < 0 ||
	    buf_append(out, text, len) < 0) {
		out->len = mark;
		return -ENOMEM;
	}
	return status;
}

int
api_oauth_error(struct buf *out, int status, const char *code,
    const char *message, int keep_alive, unsigned retry_after_s)
{
	char secs[16];
	struct http_header ra = { "Retry-After", secs, 11, 0 };

	ra.value_len =
	    (size_t)snprintf(secs, sizeof(secs), "%u", retry_after_s);
	return oauth_error_write(
	    out, status, code, message, keep_alive, &ra, retry_after_s != 0);
}

/* A section 5.2 error; a 401 after a Basic attempt names the scheme
 * (RFC 6749 5.2, RFC 7617). */
static void
oauth_error(struct api_req *r, int status, const char *code,
    const char *message, int basic)
{
	static const char challenge[] = "Basic realm=\"strongroom\"";
	struct http_header h = { "WWW-Authenticate", challenge, 16,
		sizeof(challenge) - 1 };

	if (status != 401 || !basic) {
		api_answer_error(r, status, code, message);
		return;
	}
	r->answer.len = 0;
	r->status = status;
	if (oauth_error_write(
	        &r->answer, status, code, message, r->keep_alive, &h, 1) < 0)
		api_answer_error(r, status, code, message);
}

/* Basic credentials (RFC 6749 2.3.1): base64 of id ":" secret, each
 * form-urlencoded first. 0, or -EINVAL for anything else. */
static int
basic_credentials(
    const char *b64, char *id, size_t idcap, char *secret, size_t seccap)
{
	unsigned char raw[384];
	size_t len = 0;
	char *colon;
	int rc = -EINVAL;

	if (mbedtls_base64_decode(raw, sizeof(raw) - 1, &len,
	        (const unsigned char *)b64, strlen(b64)) != 0)
		goto out;
	raw[len] = '\0';
	colon = memchr(raw, ':', len);
	if (colon == NULL || strlen((char *)raw) != len)
		goto out;
	*colon = '\0';
	if (api_form_decode((char *)raw, strlen((char *)raw), id, idcap) == 0 &&
	    api_form_decode(colon + 1, strlen(colon + 1), secret, seccap) ==
	        0 &&
	    id[0] != '\0' && secret[0] != '\0')
		rc = 0;
out:
	sr_wipe(raw, sizeof(raw));
	return rc;
}

/* Narrow @p granted to the scopes @p asked names (RFC 6749 3.3: blank
 * separated; @p asked is cut up), each of which it must hold. 0, or
 * -EPERM naming the first scope it does not hold in @p bad. */
static int
narrow_scopes(char *granted, size_t cap, char *asked, char *bad, size_t badcap)
{
	char out[JWT_SCOPE_MAX] = "", *save = NULL, *w;
	size_t used = 0;

	for (w = strtok_r(asked, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		if (!policy_scope_has(granted, w)) {
			snprintf(bad, badcap, "%.64s", w);
			return -EPERM;
		}
		if (!policy_scope_has(out, w) &&
		    used + strlen(w) + 2 < sizeof(out))
			used += (size_t)snprintf(out + used, sizeof(out) - used,
			    "%s%s", used ? " " : "", w);
	}
	snprintf(granted, cap, "%s", out);
	return 0;
}

/* The request's client: from Basic or from the form. 0, or an answer. */
static int
client_of(struct api_req *r, const char *form, char *client, size_t ccap,
    char *secret, size_t scap)
{
	char named[64];

	if (r->basic[0] == '\0')
		return api_query_param(r, form, "client_id", client, ccap) !=
		            0 ||
		        api_query_param(
		            r, form, "client_secret", secret, scap) != 0
		    ? -EINVAL
		    : 0;
	if (api_query_count(form, "client_secret") > 0) {
		oauth_error(r, 400, "invalid_request",
		    "client credentials both in Authorization and in the "
		    "body: use one",
		    0);
		return -EINVAL;
	}
	if (basic_credentials(r->basic, client, ccap, secret, scap) != 0) {
		oauth_error(r, 401, "invalid_client",
		    "client authentication failed", 1);
		return -EACCES;
	}
	if (api_query_param(r, form, "client_id", named, sizeof(named)) != 0)
		return -EINVAL;
	if (named[0] != '\0' && strcmp(named, client) != 0) {
		oauth_error(r, 400, "invalid_request",
		    "client_id differs from the Authorization header's", 0);
		return -EINVAL;
	}
	return 0;
}

/* The form's own checks (RFC 6749 4.4.2, 3.2, 5.2). 0, or an answer. */
static int
form_ok(struct api_req *r, const char *form)
{
	char grant[64], msg[96];
	size_t i;

	if (!r->form_body) {
		oauth_error(r, 400, "invalid_request",
		    "the body must be application/x-www-form-urlencoded", 0);
		return -EINVAL;
	}
	for (i = 0; i < sizeof(oauth_params) / sizeof(oauth_params[0]); i++)
		if (api_query_count(form, oauth_params[i]) > 1) {
			snprintf(msg, sizeof(msg), "%s given more than once",
			    oauth_params[i]);
			oauth_error(r, 400, "invalid_request", msg, 0);
			return -EINVAL;
		}
	if (api_query_param(r, form, "grant_type", grant, sizeof(grant)) != 0)
		return -EINVAL;
	if (grant[0] == '\0') {
		oauth_error(
		    r, 400, "invalid_request", "grant_type is required", 0);
		return -EINVAL;
	}
	if (strcmp(grant, "client_credentials") != 0) {
		oauth_error(r, 400, "unsupported_grant_type",
		    "grant_type must be client_credentials", 0);
		return -EINVAL;
	}
	return 0;
}

void
api_oauth_token(struct api_req *r)
{
	struct jwt_claims *cl = NULL;
	/* Room for any secret a client might send: a wrong one is
	 * invalid_client, only one past this is refused as malformed. */
	char client[64] = "", secret[256] = "";
	char asked[JWT_SCOPE_MAX], bad[80], msg[160];
	char token[JWT_TOKEN_MAX], body[JWT_TOKEN_MAX + 256];
	const char *form = r->body != NULL ? (const char *)r->body : "";
	int basic = r->basic[0] != '\0';
	int64_t now = (int64_t)time(NULL);
	int rc, n;

	if (form_ok(r, form) != 0 ||
	    client_of(
	        r, form, client, sizeof(client), secret, sizeof(secret)) != 0)
		goto out;
	ks_request_init(&r->kq, KS_OP_APIKEY_VERIFY);
	snprintf(r->kq.u.apikey_verify.key, sizeof(r->kq.u.apikey_verify.key),
	    "%s", secret);
	rc = ks_apikey_check(secret, strlen(secret)) == 0 ? api_ks(r)
	                                                  : KS_EAPIKEY;
	sr_wipe(&r->kq, sizeof(r->kq));
	if (rc == 0)
		ks_apikey_id(secret, strlen(secret), r->key_id);
	if (rc != 0 || strcmp(r->kr.meta.id, client) != 0 ||
	    r->kr.meta.kind != KS_KIND_APP) {
		snprintf(r->actor, sizeof(r->actor), "client:%.20s", client);
		oauth_error(r, 401, "invalid_client",
		    "client authentication failed", basic);
		goto out;
	}
	api_caller_from_meta(r, &r->kr.meta); /* "app:ID", its scopes */
	/* The key is good only from the app's networks, for tokens too. */
	if (!api_from_bound_network(r)) {
		api_answer_error(r, 401, "address_not_allowed",
		    "this client is not accepted from your network");
		goto out;
	}
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL || jwt_new_jti(cl->jti) != 0) {
		api_answer_error(r, 503, "unavailable", "out of memory");
		goto out;
	}
	snprintf(cl->scope, sizeof(cl->scope), "%s", r->scopes);
	if (api_query_count(form, "scope") == 1) {
		if (api_query_param(r, form, "scope", asked, sizeof(asked)) !=
		    0)
			goto out;
		if (narrow_scopes(cl->scope, sizeof(cl->scope), asked, bad,
		        sizeof(bad)) != 0) {
			snprintf(msg, sizeof(msg),
			    "scope \"%s\" is not granted to this client", bad);
			api_answer_error(r, 400, "invalid_scope", msg);
			goto out;
		}
	}
	snprintf(cl->kid, sizeof(cl->kid), "%s", r->api->jwt_kid);
	snprintf(cl->iss, sizeof(cl->iss), "%s", r->api->issuer);
	snprintf(cl->aud, sizeof(cl->aud), "%s", r->api->issuer);
	snprintf(cl->sub, sizeof(cl->sub), "%s", client);
	snprintf(cl->client_key, sizeof(cl->client_key), "%s", r->key_id);
	cl->iat = cl->nbf = now;
	cl->exp = now + API_TOKEN_TTL;
	rc = jwt_build(cl, api_jwt_sign, r->api, token, sizeof(token), NULL);
	if (rc != 0) {
		api_answer_error(r, 503, "unavailable", sr_strerror(rc));
		goto out;
	}
	n = snprintf(body, sizeof(body),
	    "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
	    "\"expires_in\":%d,\"scope\":\"%s\"}",
	    token, API_TOKEN_TTL, cl->scope);
	api_answer_json(r, 200, body, (size_t)n);
	sr_wipe(token, sizeof(token));
	sr_wipe(body, sizeof(body));
out:
	sr_wipe(secret, sizeof(secret));
	sr_wipe(r->basic, sizeof(r->basic));
	free(cl);
}
