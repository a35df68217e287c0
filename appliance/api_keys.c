/*
 * appliance/api_keys.c: the life of API keys after creation: rotation with
 * a grace period for the old key, the one-call leak response (revoke as
 * compromised, issue the replacement, answer every audited request the
 * key made), the audit query route, per-key rate limits and the expiry
 * watch (gauge plus one "key.expiring" audit event per key per day; the
 * day's set of keys already announced is rebuilt from that day's audit
 * file at start, so a restart does not repeat them).
 *
 * It must never show a key's secret except the replacement's, once; never
 * extend a key's life (the grace period only shortens it); and never
 * answer an audit query with anything but the log's own lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "appliance/api_impl.h"

#define KEYRATE_SLOTS 4096
#define KEYRATE_PROBE 8
#define AUDIT_ANSWER_MAX 1000 /* lines one query answers at most */

struct keyrate_slot {
	char id[64];
	uint64_t last_ms;
	struct rl_bucket b;
};

struct api_keyrate {
	pthread_mutex_t lock;
	struct keyrate_slot s[KEYRATE_SLOTS];
};

/* The keys announced on one UTC day. */
struct expiry_set {
	size_t n, cap;
	char (*id)[KS_ID_LEN + 1];
};

struct api_expiry {
	pthread_mutex_t lock;
	int64_t day; /* UTC day number the set is for; INT64_MIN: none yet */
	struct expiry_set seen;
};

/* ------------------------------------------------------------------ */
/* Rotation and leaks                                                   */
/* ------------------------------------------------------------------ */

/* The key of the path must be an API key that is still usable (the
 * keystore's own rule: active, valid now, not expired) and not already
 * retired by a rotation, whose owner the caller may manage; its metadata
 * stays in *@p old. */
static int
usable_key(struct api_req *r, struct ks_meta *old)
{
	if (api_expect_kind(r, KS_KIND_APIKEY) != 0)
		return -ENOENT;
	*old = r->kr.meta;
	if (ks_meta_refusal(old, (int64_t)time(NULL)) != 0 ||
	    (old->flags & KS_FLAG_RETIRED)) {
		api_answer_error(r, 409, "conflict",
		    "only an active key can be rotated or reported");
		return -EINVAL;
	}
	return api_officer_guard_key(r, old);
}

/* A new key for the owner of @p old into r->kr (secret in r->kr.apikey). */
static int
replacement(struct api_req *r, const struct ks_meta *old)
{
	int rc;

	ks_request_init(&r->kq, KS_OP_APIKEY_CREATE);
	snprintf(r->kq.u.apikey_create.owner,
	    sizeof(r->kq.u.apikey_create.owner), "%s", old->parent);
	rc = api_ks(r);
	if (rc != 0)
		api_answer_ks_error(r, rc);
	else
		sr_strlcpy(r->made_key, r->kr.meta.id, sizeof(r->made_key));
	return rc;
}

/* {"key": secret, ...meta} of the new key, then wipe it from r->kr. */
static yyjson_mut_val *
replacement_json(struct api_req *r, yyjson_mut_doc *d)
{
	yyjson_mut_val *o = yyjson_mut_obj(d);

	api_meta_json(d, o, &r->kr.meta);
	yyjson_mut_obj_add_strcpy(d, o, "key", r->kr.apikey);
	ks_reply_wipe(&r->kr);
	return o;
}

/* POST /api/keys/{id}/rotate {"grace_seconds": N}: 0..7 days, default 1
 * day; the old key is refused with key_expired after it. */
void
api_keys_rotate(struct api_req *r)
{
	static const char *const members[] = { "grace_seconds", NULL };
	yyjson_doc *doc;
	yyjson_val *root, *v;
	int64_t grace = API_GRACE_DEFAULT;
	struct ks_meta old;
	yyjson_mut_doc *d;
	yyjson_mut_val *o, *rep;
	int rc;

	if (api_body_object(r, members, 1, &doc, &root) != 0) {
		yyjson_doc_free(doc);
		return;
	}
	if ((v = yyjson_obj_get(root, "grace_seconds")) != NULL)
		grace = yyjson_is_int(v) ? yyjson_get_sint(v) : -1;
	yyjson_doc_free(doc);
	if (grace < 0 || grace > API_GRACE_MAX) {
		api_answer_error(r, 400, "invalid_request",
		    "grace_seconds must be 0..604800 (7 days)");
		return;
	}
	if (usable_key(r, &old) != 0 || replacement(r, &old) != 0)
		return;
	d = yyjson_mut_doc_new(api_alc());
	o = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, o);
	rep = replacement_json(r, d);
	yyjson_mut_obj_add_val(d, o, "replacement", rep);
	ks_request_init(&r->kq, KS_OP_APIKEY_RETIRE);
	snprintf(r->kq.u.retire.id, sizeof(r->kq.u.retire.id), "%s", old.id);
	r->kq.u.retire.expires_at = (int64_t)time(NULL) + grace;
	rc = api_ks(r);
	if (rc != 0) {
		/* The new key exists; say so, without its secret again. */
		yyjson_mut_doc_free(d);
		api_answer_ks_error(r, rc);
		return;
	}
	rep = yyjson_mut_obj(d);
	api_meta_json(d, rep, &r->kr.meta);
	yyjson_mut_obj_add_val(d, o, "retired", rep);
	yyjson_mut_obj_add_int(d, o, "grace_seconds", grace);
	api_answer_doc(r, 201, d);
}

/* The log's lines for @p q as a JSON array in @p o["requests"]. */
static int
audit_lines(struct api_req *r, const struct audit_query *q, yyjson_mut_doc *d,
    yyjson_mut_val *o)
{
	yyjson_mut_val *arr = yyjson_mut_arr(d);
	char *text = NULL, *line, *save = NULL, err[256];
	size_t size = 0, count = 0;
	uint64_t matched = 0;
	FILE *f = open_memstream(&text, &size);
	int rc;

	if (f == NULL)
		return -ENOMEM;
	rc = audit_query_run(r->api->audit_dir, q, f, &matched, err);
	fclose(f);
	if (rc == -ENOENT)
		rc = 0; /* no log yet: nothing matched */
	for (line = text != NULL ? strtok_r(text, "\n", &save) : NULL;
	     rc == 0 && line != NULL; line = strtok_r(NULL, "\n", &save)) {
		yyjson_doc *ld;

		if (count == AUDIT_ANSWER_MAX)
			break;
		if ((ld = yyjson_read(line, strlen(line), 0)) == NULL)
			continue;
		yyjson_mut_arr_append(
		    arr, yyjson_val_mut_copy(d, yyjson_doc_get_root(ld)));
		yyjson_doc_free(ld);
		count++;
	}
	free(text);
	if (rc == -EINVAL)
		return rc;
	yyjson_mut_obj_add_val(d, o, "requests", arr);
	yyjson_mut_obj_add_uint(d, o, "count", count);
	yyjson_mut_obj_add_bool(d, o, "truncated", matched > count);
	return rc;
}

/* POST /api/keys/{id}/leak: revoke as compromised, issue the replacement,
 * and answer every audited request the key made. */
void
api_keys_leak(struct api_req *r)
{
	struct audit_query q = { 0 };
	struct ks_meta old;
	yyjson_mut_doc *d;
	yyjson_mut_val *o, *m;
	int rc;

	if (usable_key(r, &old) != 0)
		return;
	ks_request_init(&r->kq, KS_OP_REVOKE);
	snprintf(r->kq.u.revoke.id, sizeof(r->kq.u.revoke.id), "%s", old.id);
	snprintf(r->kq.u.revoke.reason, sizeof(r->kq.u.revoke.reason),
	    "compromised");
	r->kq.u.revoke.compromised = 1;
	if ((rc = api_ks(r)) != 0) {
		api_answer_ks_error(r, rc);
		return;
	}
	d = yyjson_mut_doc_new(api_alc());
	o = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, o);
	m = yyjson_mut_obj(d);
	api_meta_json(d, m, &r->kr.meta);
	yyjson_mut_obj_add_val(d, o, "revoked", m);
	if (replacement(r, &old) != 0) {
		yyjson_mut_doc_free(d);
		return;
	}
	yyjson_mut_obj_add_val(d, o, "replacement", replacement_json(r, d));
	q.key = old.id;
	if (audit_lines(r, &q, d, o) != 0) {
		yyjson_mut_doc_free(d);
		api_answer_error(r, 503, "unavailable",
		    "the key is revoked and replaced, but the audit log could "
		    "not be read");
		return;
	}
	api_answer_doc(r, 201, d);
}

/* GET /api/audit?key=&actor=&action=&from=&to=: what `sr-audit query`
 * prints, as JSON; times RFC 3339 or YYYY-MM-DD, `to` exclusive. */
void
api_audit_read(struct api_req *r)
{
	char key[64], actor[128], action[64], from[40], to[40];
	struct audit_query q = { 0 };
	yyjson_mut_doc *d;
	yyjson_mut_val *o;
	static const char *const params[] = { "key", "actor", "action", "from",
		"to", NULL };

	if (api_query_only(r, params) != 0 ||
	    api_query_param(r, r->query, "key", key, sizeof(key)) != 0 ||
	    api_query_param(r, r->query, "actor", actor, sizeof(actor)) != 0 ||
	    api_query_param(r, r->query, "action", action, sizeof(action)) !=
	        0 ||
	    api_query_param(r, r->query, "from", from, sizeof(from)) != 0 ||
	    api_query_param(r, r->query, "to", to, sizeof(to)) != 0)
		return;
	q.key = key[0] ? key : NULL;
	q.actor = actor[0] ? actor : NULL;
	q.action = action[0] ? action : NULL;
	q.since = from[0] ? from : NULL;
	q.until = to[0] ? to : NULL;
	d = yyjson_mut_doc_new(api_alc());
	o = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, o);
	if (audit_lines(r, &q, d, o) != 0) {
		yyjson_mut_doc_free(d);
		api_answer_error(r, 400, "invalid_request",
		    "from/to: RFC 3339 time, YYYY-MM-DD or Unix seconds "
		    "(up to 9999-12-31)");
		return;
	}
	api_answer_doc(r, 200, d);
}

/* ------------------------------------------------------------------ */
/* Per-key rate limits                                                  */
/* ------------------------------------------------------------------ */

int
api_keyrate_new(struct api_keyrate **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	return 0;
}

void
api_keyrate_free(struct api_keyrate *k)
{
	if (k == NULL)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t
id_hash(const char *id)
{
	size_t h = 5381;

	while (*id != '\0')
		h = h * 33 + (unsigned char)*id++;
	return h;
}

int
api_keyrate_take(struct api *a, const char *id, double rate, double burst,
    unsigned *retry_after)
{
	struct api_keyrate *k = a->keyrate;
	uint64_t now = mono_ms();
	size_t i, start = id_hash(id) % KEYRATE_SLOTS, pick = start;
	struct keyrate_slot *s = NULL;

	if (rate <= 0)
		rate = a->rate_per_key;
	if (burst < 1)
		burst =
		    rate == a->rate_per_key ? a->rate_per_key_burst : 2 * rate;
	pthread_mutex_lock(&k->lock);
	for (i = 0; i < KEYRATE_PROBE && s == NULL; i++) {
		struct keyrate_slot *e = &k->s[(start + i) % KEYRATE_SLOTS];

		if (strcmp(e->id, id) == 0)
			s = e;
		else if (e->last_ms < k->s[pick].last_ms)
			pick = (start + i) % KEYRATE_SLOTS;
	}
	if (s == NULL) { /* the least recently seen of the probe run */
		s = &k->s[pick];
		snprintf(s->id, sizeof(s->id), "%s", id);
		rl_bucket_init(&s->b, rate, burst);
	}
	s->last_ms = now;
	/* A record's own limit may change (a new app key); follow it. */
	atomic_store(&s->b.rate, rate);
	atomic_store(&s->b.burst, burst);
	i = (size_t)rl_bucket_take(&s->b, now, 1, retry_after);
	pthread_mutex_unlock(&k->lock);
	return (int)i;
}

/* ------------------------------------------------------------------ */
/* The expiry watch                                                     */
/* ------------------------------------------------------------------ */

int
api_expiry_new(struct api_expiry **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	(*out)->day = INT64_MIN;
	return 0;
}

void
api_expiry_free(struct api_expiry *e)
{
	if (e == NULL)
		return;
	pthread_mutex_destroy(&e->lock);
	free(e->seen.id);
	free(e);
}

static int
set_has(const struct expiry_set *set, const char *id)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->id[i], id) == 0)
			return 1;
	return 0;
}

/* Add @p id (once). 0 or -ENOMEM. */
static int
set_add(struct expiry_set *set, const char *id)
{
	char(*grown)[KS_ID_LEN + 1];
	size_t cap;

	if (set_has(set, id))
		return 0;
	if (set->n == set->cap) {
		cap = set->cap != 0 ? 2 * set->cap : 64;
		grown = realloc(set->id, cap * sizeof(*set->id));
		if (grown == NULL)
			return -ENOMEM;
		set->id = grown;
		set->cap = cap;
	}
	snprintf(set->id[set->n++], KS_ID_LEN + 1, "%s", id);
	return 0;
}

/* The keys the log already holds a "key.expiring" event for on UTC day
 * @p day (the audit module's own query over that day's file), into
 * @p set. 0 (also when the day has no file yet) or a negative code. */
static int
expiry_logged(const char *audit_dir, int64_t day, struct expiry_set *set)
{
	struct audit_query q = { 0 };
	char since[16], until[16], err[256], *text = NULL, *line, *save = NULL;
	time_t t;
	struct tm tm;
	size_t size = 0;
	FILE *f;
	int rc;

	t = (time_t)(day * 86400);
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%d", &tm);
	t += 86400;
	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%d", &tm);
	q.actor = "system";
	q.action = "key.expiring";
	q.since = since;
	q.until = until;
	if ((f = open_memstream(&text, &size)) == NULL)
		return -ENOMEM;
	rc = audit_query_run(audit_dir, &q, f, NULL, err);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc == -ENOENT)
		rc = 0; /* no log yet */
	for (line = text != NULL ? strtok_r(text, "\n", &save) : NULL;
	     rc == 0 && line != NULL; line = strtok_r(NULL, "\n", &save)) {
		yyjson_doc *d = yyjson_read(line, strlen(line), 0);
		const char *id = yyjson_get_str(
		    yyjson_obj_get(yyjson_doc_get_root(d), "key"));

		if (id != NULL && strlen(id) == KS_ID_LEN)
			rc = set_add(set, id);
		yyjson_doc_free(d);
	}
	free(text);
	return rc;
}

/* Start UTC day @p day's set from what its audit file already holds:
 * at the first check and at each new day. What cannot be read is left
 * out: a warning given twice is better than one never given. */
static void
expiry_day(struct api *a, int64_t day)
{
	struct api_expiry *e = a->expiry;
	struct expiry_set set = { 0 }, old;
	int rc;

	pthread_mutex_lock(&e->lock);
	rc = e->day == day;
	pthread_mutex_unlock(&e->lock);
	if (rc)
		return;
	if ((rc = expiry_logged(a->audit_dir, day, &set)) != 0) {
		log_warnx("expiry watch: %s/: today's key.expiring events not "
		          "read (%s); they may be written again",
		    a->audit_dir, sr_strerror(rc));
	}
	pthread_mutex_lock(&e->lock);
	old = e->seen;
	e->seen = set;
	e->day = day;
	pthread_mutex_unlock(&e->lock);
	free(old.id);
}

/* Whether @p id was already announced today; marks it. Out of memory it
 * answers "not yet": the warning is repeated rather than lost. */
static int
expiry_seen(struct api_expiry *e, const char *id)
{
	int seen;

	pthread_mutex_lock(&e->lock);
	seen = set_has(&e->seen, id);
	if (!seen)
		(void)set_add(&e->seen, id);
	pthread_mutex_unlock(&e->lock);
	return seen;
}

static void
expiry_forget(struct api_expiry *e, const char *id)
{
	struct expiry_set *set = &e->seen;
	size_t i;

	pthread_mutex_lock(&e->lock);
	for (i = 0; i < set->n; i++)
		if (strcmp(set->id[i], id) == 0) {
			set->n--;
			memcpy(set->id[i], set->id[set->n], KS_ID_LEN + 1);
			break;
		}
	pthread_mutex_unlock(&e->lock);
}

/* One event per key per day; the resource names the key's end. */
static int
expiry_warn(struct api *a, const struct ks_meta *m, int64_t now)
{
	char resource[96], status[16];
	struct audit_event ev = { 0 };
	struct tm tm;
	time_t t = (time_t)m->expires_at;

	if (expiry_seen(a->expiry, m->id))
		return 0;
	gmtime_r(&t, &tm);
	snprintf(resource, sizeof(resource),
	    "%s %s expires %04d-%02d-%02dT"
	    "%02d:%02d:%02dZ",
	    ks_kind_name(m->kind), m->id, tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	snprintf(status, sizeof(status), "%s",
	    m->expires_at <= now ? "expired" : "expiring");
	ev.actor = "system";
	ev.action = "key.expiring";
	ev.resource = resource;
	ev.key = m->id;
	ev.status = status;
	return audit_append(a->audit, &ev, NULL);
}

int
api_expiry_check(struct api *a)
{
	struct ks_request *q = malloc(sizeof(*q));
	struct ks_reply *rep = malloc(sizeof(*rep));
	int64_t now = (int64_t)time(NULL);
	int rc = -ENOMEM, count = 0;
	uint32_t i;

	if (q == NULL || rep == NULL)
		goto out;
	expiry_day(a, now / 86400);
	ks_request_init(q, KS_OP_EXPIRING);
	q->u.expiring.within = API_EXPIRING_WITHIN;
	q->u.expiring.limit = KS_LIST_MAX;
	for (;;) {
		ks_reply_init(rep);
		if ((rc = ks_call(a->ks, q, rep)) != 0)
			goto out;
		for (i = 0; i < rep->count; i++) {
			count++;
			/* A failed line is tried again at the next tick. */
			if (expiry_warn(a, &rep->list[i], now) != 0)
				expiry_forget(a->expiry, rep->list[i].id);
		}
		if (rep->next[0] == '\0')
			break;
		memcpy(q->u.expiring.after, rep->next, sizeof(rep->next));
	}
	metrics_keys_expiring((unsigned)count);
	rc = count;
	/* The same tick writes the API keys' last use the keystore noted
	 * since the last one (GET and LIST already show it). */
	ks_request_init(q, KS_OP_USAGE_FLUSH);
	ks_reply_init(rep);
	if (ks_call(a->ks, q, rep) != 0)
		log_warnx("keystore: API keys' last use not written; next tick "
		          "retries");
out:
	free(q);
	free(rep);
	return rc;
}
