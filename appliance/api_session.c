/*
 * appliance/api_session.c: console login for people. POST /api/login takes
 * a name, a password (Argon2id, appliance/password.h) and a TOTP code
 * (RFC 6238, each code accepted once per account through the keystore's
 * compare-and-set), backs failures off per account and per source address
 * (429 + Retry-After), and opens a session: a random 256-bit id in an
 * HttpOnly; Secure; SameSite=Strict cookie and a CSRF token in the body,
 * with idle and absolute timeouts. POST /api/logout ends it.
 *
 * Sessions and back-off counters live in memory only (a restart logs
 * everyone out and forgets the counters). Session ids and CSRF tokens are
 * kept as SHA-256 hashes, looked up by hash and compared in constant time.
 * It must never log, audit or keep a password, a code, a session id or a
 * CSRF token, and never say which of the three factors was wrong.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/sha256.h>
#include <yyjson.h>

#include "appliance/api_impl.h"
#include "appliance/password.h"
#include "appliance/totp.h"

#define SESSIONS_MAX 4096
#define BACKOFF_SLOTS 4096
/* Failures before back-off starts, and its ceiling (seconds). */
#define BACKOFF_FREE_ACCOUNT 3
#define BACKOFF_FREE_ADDR 10
#define BACKOFF_BASE 5u /* the first wait; doubles per failure */
#define BACKOFF_CAP 900u

struct session {
	uint8_t id_hash[32], csrf_hash[32];
	char user[KS_ID_LEN + 1];
	int64_t created, last;
	int used;
};

struct api_sessions {
	pthread_mutex_t lock;
	struct session s[SESSIONS_MAX];
};

struct backoff_slot {
	uint8_t key_hash[32]; /* SHA-256 of "a:" name or "n:" address */
	unsigned failures;
	int64_t until, last;
};

struct api_backoff {
	pthread_mutex_t lock;
	struct backoff_slot s[BACKOFF_SLOTS];
};

static void
sha256_str(const char *s, uint8_t out[32])
{
	mbedtls_sha256((const unsigned char *)s, strlen(s), out, 0);
}

int
api_sessions_new(struct api_sessions **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	return 0;
}

void
api_sessions_free(struct api_sessions *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	sr_wipe(s, sizeof(*s));
	free(s);
}

static int
session_live(const struct session *e, int64_t now)
{
	return e->used && now - e->last < API_SESSION_IDLE &&
	    now - e->created < API_SESSION_ABSOLUTE;
}

/* A new session for @p user: its id and CSRF token as base64url. */
static int
session_open(struct api_sessions *s, const char *user,
    char id[API_SESSION_TOKEN_MAX], char csrf[API_SESSION_TOKEN_MAX])
{
	uint8_t rnd[64];
	int64_t now = (int64_t)time(NULL);
	size_t i, pick = 0;
	int rc;

	if ((rc = sr_os_random(rnd, sizeof(rnd))) != 0)
		return rc;
	b64url_encode(id, API_SESSION_TOKEN_MAX, rnd, 32);
	b64url_encode(csrf, API_SESSION_TOKEN_MAX, rnd + 32, 32);
	sr_wipe(rnd, sizeof(rnd));
	pthread_mutex_lock(&s->lock);
	/* A free or dead slot, else the least recently used one. */
	for (i = 0; i < SESSIONS_MAX; i++) {
		if (!session_live(&s->s[i], now)) {
			pick = i;
			break;
		}
		if (s->s[i].last < s->s[pick].last)
			pick = i;
	}
	sha256_str(id, s->s[pick].id_hash);
	sha256_str(csrf, s->s[pick].csrf_hash);
	snprintf(s->s[pick].user, sizeof(s->s[pick].user), "%s", user);
	s->s[pick].created = s->s[pick].last = now;
	s->s[pick].used = 1;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The live session whose id hashes to @p h, or NULL; under the lock. The
 * compare is constant-time per slot and visits every slot. */
static struct session *
session_find(struct api_sessions *s, const uint8_t h[32], int64_t now)
{
	struct session *hit = NULL;
	size_t i;

	for (i = 0; i < SESSIONS_MAX; i++)
		if (sr_ct_equal(s->s[i].id_hash, h, 32) & s->s[i].used)
			hit = &s->s[i];
	if (hit != NULL && !session_live(hit, now)) {
		sr_wipe(hit, sizeof(*hit));
		hit = NULL;
	}
	return hit;
}

int
api_session_check(struct api_sessions *s, const char *token, const char *csrf,
    int need_csrf, char user[KS_ID_LEN + 1])
{
	uint8_t h[32], c[32];
	int64_t now = (int64_t)time(NULL);
	struct session *e;
	int rc = 0;

	sha256_str(token, h);
	if (csrf != NULL)
		sha256_str(csrf, c);
	pthread_mutex_lock(&s->lock);
	e = session_find(s, h, now);
	if (e == NULL)
		rc = -ENOENT;
	else if (need_csrf &&
	    (csrf == NULL || !sr_ct_equal(c, e->csrf_hash, 32)))
		rc = -EPERM;
	if (e != NULL && rc == 0) {
		e->last = now;
		snprintf(user, KS_ID_LEN + 1, "%s", e->user);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void
api_sessions_end_user(struct api_sessions *s, const char *user)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < SESSIONS_MAX; i++)
		if (s->s[i].used && strcmp(s->s[i].user, user) == 0)
			sr_wipe(&s->s[i], sizeof(s->s[i]));
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Back-off                                                             */
/* ------------------------------------------------------------------ */

int
api_backoff_new(struct api_backoff **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	return 0;
}

void
api_backoff_free(struct api_backoff *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* The slot of @p key (made when @p make), under the lock. */
static struct backoff_slot *
backoff_slot(struct api_backoff *b, const char *key, int make)
{
	uint8_t h[32];
	size_t i, start, oldest;

	sha256_str(key, h);
	start = ((size_t)h[0] << 8 | h[1]) % BACKOFF_SLOTS;
	oldest = start;
	for (i = 0; i < 16; i++) {
		struct backoff_slot *e = &b->s[(start + i) % BACKOFF_SLOTS];

		if (memcmp(e->key_hash, h, 32) == 0)
			return e;
		if (e->last < b->s[oldest].last)
			oldest = (start + i) % BACKOFF_SLOTS;
	}
	if (!make)
		return NULL;
	memset(&b->s[oldest], 0, sizeof(b->s[oldest]));
	memcpy(b->s[oldest].key_hash, h, 32);
	return &b->s[oldest];
}

/* Seconds until @p key may try again; 0 now. */
static unsigned
backoff_wait(struct api_backoff *b, const char *key, int64_t now)
{
	struct backoff_slot *e;
	unsigned wait = 0;

	pthread_mutex_lock(&b->lock);
	e = backoff_slot(b, key, 0);
	if (e != NULL && e->until > now)
		wait = (unsigned)(e->until - now);
	pthread_mutex_unlock(&b->lock);
	return wait;
}

/* One more failure: from the @p free_tries-th on, wait 5 s, doubling
 * with each further failure up to 15 minutes. */
static void
backoff_fail(
    struct api_backoff *b, const char *key, unsigned free_tries, int64_t now)
{
	struct backoff_slot *e;
	unsigned over;

	pthread_mutex_lock(&b->lock);
	e = backoff_slot(b, key, 1);
	e->failures++;
	e->last = now;
	if (e->failures >= free_tries) {
		over = e->failures - free_tries;
		over = over > 8 ? 8 : over;
		e->until = now +
		    (BACKOFF_BASE << over > BACKOFF_CAP ? BACKOFF_CAP
		                                        : BACKOFF_BASE << over);
	}
	pthread_mutex_unlock(&b->lock);
}

static void
backoff_clear(struct api_backoff *b, const char *key)
{
	struct backoff_slot *e;

	pthread_mutex_lock(&b->lock);
	if ((e = backoff_slot(b, key, 0)) != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&b->lock);
}

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
login_refused(struct api_req *r, const char *acct, const char *addr, int rc)
{
	int64_t now = (int64_t)time(NULL);

	backoff_fail(r->api->backoff, acct, BACKOFF_FREE_ACCOUNT, now);
	backoff_fail(r->api->backoff, addr, BACKOFF_FREE_ADDR, now);
	if (rc == APP_ETOTPREPLAY)
		api_answer_error(r, 401, "totp_replayed",
		    "this one-time code was already used; wait for the next");
	else
		api_answer_error(r, 401, "invalid_credentials",
		    "name, password or one-time code not accepted");
}

/* {"name","password","totp"} -> a session cookie and a CSRF token. */
static void
login_run(struct api_req *r, yyjson_val *root, char *acct, char *addr)
{
	const char *name = yyjson_get_str(yyjson_obj_get(root, "name"));
	const char *pw = yyjson_get_str(yyjson_obj_get(root, "password"));
	const char *code = yyjson_get_str(yyjson_obj_get(root, "totp"));
	char sid[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX];
	char cookie[160], body[256];
	struct http_header h = { "Set-Cookie", cookie, 10, 0 };
	unsigned wait, w2;
	uint64_t step = 0;
	int rc, n;

	if (name == NULL || pw == NULL || code == NULL ||
	    strlen(name) >= KS_NAME_MAX) {
		api_answer_error(r, 400, "invalid_request",
		    "a JSON object with \"name\", \"password\" and \"totp\" "
		    "is required");
		return;
	}
	snprintf(acct, 80, "a:%s", name);
	snprintf(addr, 80, "n:%s", r->src);
	snprintf(r->actor, sizeof(r->actor), "login:%.50s", name);
	wait = backoff_wait(r->api->backoff, acct, time(NULL));
	w2 = backoff_wait(r->api->backoff, addr, time(NULL));
	if (wait > 0 || w2 > 0) {
		api_answer_retry(r, 429, "too_many_attempts",
		    "too many failed logins; try again later",
		    wait > w2 ? wait : w2);
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
		login_refused(r, acct, addr, rc);
		return;
	}
	backoff_clear(r->api->backoff, acct);
	if (session_open(r->api->sessions, r->kr.meta.id, sid, csrf) != 0) {
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
	yyjson_doc *doc = NULL;
	char acct[80], addr[80];

	if (r->body != NULL)
		doc = yyjson_read((char *)r->body, r->body_len, 0);
	/* The password is in the body: gone before anything else runs. */
	if (r->body != NULL)
		sr_wipe(r->body, r->body_len);
	snprintf(r->actor, sizeof(r->actor), "login:?");
	if (!yyjson_is_obj(yyjson_doc_get_root(doc)))
		api_answer_error(r, 400, "invalid_request",
		    "a JSON object with \"name\", \"password\" and \"totp\" "
		    "is required");
	else
		login_run(r, yyjson_doc_get_root(doc), acct, addr);
	if (doc != NULL) {
		/* yyjson keeps the strings in its own buffer: wipe it. */
		yyjson_val *v =
		    yyjson_obj_get(yyjson_doc_get_root(doc), "password");

		if (yyjson_is_str(v))
			sr_wipe((void *)yyjson_get_str(v), yyjson_get_len(v));
		yyjson_doc_free(doc);
	}
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
	uint8_t hash[32];
	struct session *e;
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
	sha256_str(r->session, hash);
	pthread_mutex_lock(&r->api->sessions->lock);
	if ((e = session_find(r->api->sessions, hash, time(NULL))) != NULL)
		sr_wipe(e, sizeof(*e));
	pthread_mutex_unlock(&r->api->sessions->lock);
	api_answer_json_hdr(r, 200, "{\"logged_out\":true}", 19, &h, 1);
}
