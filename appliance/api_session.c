/*
 * appliance/api_session.c: console login for people. POST /api/login takes
 * a name, a password (Argon2id, appliance/password.h) and a TOTP code
 * (RFC 6238, each code accepted once per account through the keystore's
 * compare-and-set), backs failures off per account, per account and
 * source address and per source address (429 + Retry-After), and opens a
 * session: a random 256-bit id in an HttpOnly; Secure; SameSite=Strict
 * cookie and a CSRF token in the body, with idle and absolute timeouts.
 * POST /api/logout ends it.
 *
 * The session table and the back-off counters are appliance/session.h
 * (memory only: a restart logs everyone out and forgets the counters).
 * It must never log, audit or keep a password, a code, a session id or a
 * CSRF token, and never say which of the three factors was wrong.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "appliance/api_impl.h"
#include "appliance/password.h"
#include "appliance/totp.h"

/* ------------------------------------------------------------------ */
/* POST /api/login, POST /api/logout                                    */
/* ------------------------------------------------------------------ */

/* The factors against the user's stored credentials (r->kr after
 * CRED_GET). @return 0, APP_ETOTPREPLAY, or another failure. */
static int
factors_check(struct api_req *r, int found, const char *password,
    const char *code, uint64_t *step)
{
	struct sr_secret secret = { 0 };
	int rc;

	if (!found || r->kr.cred.phc[0] == '\0') {
		(void)pw_verify_dummy(password, strlen(password));
		return APP_EPWMISMATCH;
	}
	rc = pw_verify(r->kr.cred.phc, password, strlen(password));
	if (rc != 0)
		return rc;
	if (r->kr.meta.state != KS_STATE_ACTIVE || !r->kr.cred.totp_enrolled)
		return APP_ETOTP; /* disabled, or no second factor yet */
	rc = sr_secret_set(&secret, r->kr.material, r->kr.material_len);
	if (rc == 0)
		rc = totp_verify(
		    &secret, code, time(NULL), r->kr.cred.totp_step, step);
	sr_secret_free(&secret);
	return rc;
}

static void
login_refused(struct api_req *r, const char *name, const char *src, int rc)
{
	api_backoff_failed(r->api->backoff, name, src);
	if (rc == APP_ETOTPREPLAY)
		api_answer_error(r, 401, "totp_replayed",
		    "this one-time code was already used; wait for the next");
	else
		api_answer_error(r, 401, "invalid_credentials",
		    "name, password or one-time code not accepted");
}

/* {"name","password","totp"} -> a session cookie and a CSRF token. */
static void
login_run(struct api_req *r, yyjson_val *root)
{
	const char *name = api_json_str(yyjson_obj_get(root, "name"));
	const char *pw = api_json_str(yyjson_obj_get(root, "password"));
	const char *code = api_json_str(yyjson_obj_get(root, "totp"));
	char sid[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX];
	char cookie[160], body[256], src[API_BACKOFF_SOURCE_MAX];
	struct http_header h = { "Set-Cookie", cookie, 10, 0 };
	unsigned wait;
	uint64_t step = 0;
	int rc, n;

	if (name == NULL || pw == NULL || code == NULL ||
	    strlen(name) >= KS_NAME_MAX) {
		api_answer_error(r, 400, "invalid_request",
		    "a JSON object with \"name\", \"password\" and \"totp\" "
		    "strings (no NUL character inside) is required");
		return;
	}
	snprintf(r->actor, sizeof(r->actor), "login:%.50s", name);
	api_backoff_source(r->addr, src);
	if ((wait = api_backoff_wait(r->api->backoff, name, src)) > 0) {
		api_answer_retry(r, 429, "too_many_attempts",
		    "too many failed logins; try again later", wait);
		return;
	}
	ks_request_init(&r->kq, KS_OP_CRED_GET);
	snprintf(r->kq.u.cred.name, sizeof(r->kq.u.cred.name), "%s", name);
	rc = api_ks(r);
	if (rc != 0 && rc != KS_ENOTFOUND) {
		api_answer_ks_error(r, rc);
		return;
	}
	rc = factors_check(r, rc == 0, pw, code, &step);
	ks_reply_wipe(&r->kr);
	if (rc == 0) {
		/* The step is used once, atomically with this login. */
		snprintf(r->actor, sizeof(r->actor), "user:%s", r->kr.meta.id);
		ks_request_init(&r->kq, KS_OP_CRED_SET);
		snprintf(r->kq.u.cred.id, sizeof(r->kq.u.cred.id), "%s",
		    r->kr.meta.id);
		r->kq.u.cred.what = KS_CRED_TOTP_USE;
		r->kq.u.cred.step = step;
		rc = api_ks(r);
		if (rc == KS_ESTATE)
			rc = APP_ETOTPREPLAY;
	}
	if (rc != 0) {
		login_refused(r, name, src, rc);
		return;
	}
	api_backoff_succeeded(r->api->backoff, name, src);
	if (api_session_open(r->api->sessions, r->kr.meta.id, sid, csrf) != 0) {
		api_answer_error(r, 503, "unavailable", "no randomness");
		return;
	}
	h.value_len = (size_t)snprintf(cookie, sizeof(cookie),
	    API_SESSION_COOKIE "=%s; Path=/; HttpOnly; Secure; "
	                       "SameSite=Strict; Max-Age=%d",
	    sid, API_SESSION_ABSOLUTE);
	n = snprintf(body, sizeof(body),
	    "{\"user\":\"%s\",\"csrf_token\":\"%s\",\"idle_timeout\":%d,"
	    "\"expires_in\":%d}",
	    r->kr.meta.id, csrf, API_SESSION_IDLE, API_SESSION_ABSOLUTE);
	api_answer_json_hdr(r, 200, body, (size_t)n, &h, 1);
	sr_wipe(sid, sizeof(sid));
	sr_wipe(csrf, sizeof(csrf));
	sr_wipe(cookie, sizeof(cookie));
	sr_wipe(body, sizeof(body));
}

void
api_login(struct api_req *r)
{
	static const char *const members[] = { "name", "password", "totp",
		NULL };
	yyjson_doc *doc;
	yyjson_val *root;
	int rc;

	snprintf(r->actor, sizeof(r->actor), "login:?");
	rc = api_body_object(r, members, 0, &doc, &root);
	/* The password is in the body: gone before anything else runs. */
	if (r->body != NULL)
		sr_wipe(r->body, r->body_len);
	if (rc == 0)
		login_run(r, root);
	yyjson_doc_free(doc); /* api_alc(): the password's copy is wiped */
}

/* Ends the cookie's session; the CSRF token is required like any other
 * state-changing call, so a forged page cannot log anyone out. */
void
api_logout(struct api_req *r)
{
	char user[KS_ID_LEN + 1];
	struct http_header h = { "Set-Cookie",
		API_SESSION_COOKIE "=; Path=/; HttpOnly; Secure; "
		                   "SameSite=Strict; Max-Age=0",
		10, 0 };
	int rc;

	h.value_len = strlen(h.value);
	if (r->session[0] == '\0') {
		api_answer_error(r, 401, "unauthenticated", "no session");
		return;
	}
	rc = api_session_check(r->api->sessions, r->session,
	    r->csrf[0] != '\0' ? r->csrf : NULL, 1, user);
	if (rc != 0) {
		api_answer_error(r, rc == -EPERM ? 403 : 401,
		    rc == -EPERM ? "csrf_required" : "invalid_session",
		    "the session or its CSRF token was not accepted");
		return;
	}
	snprintf(r->actor, sizeof(r->actor), "user:%s", user);
	(void)api_session_end(r->api->sessions, r->session);
	api_answer_json_hdr(r, 200, "{\"logged_out\":true}", 19, &h, 1);
}
