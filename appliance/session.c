/*
 * appliance/session.c: the console's session table (random id and CSRF
 * token per session, idle and absolute timeouts, logout, the LRU session
 * ended when the table is full) and the failed-login back-off counters
 * (account from one address, account from all, address), both in memory
 * and read through an injectable clock. The API is appliance/session.h.
 *
 * It must never keep a session id or CSRF token in the clear (SHA-256
 * hashes only, compared in constant time), never log or audit anything,
 * and never let one source address lock anyone else out of an account.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/sha256.h>

#include "appliance/digest.h"
#include "appliance/jwt.h"
#include "appliance/session.h"
#include "lib/sr.h"

#define BACKOFF_SLOTS 4096
#define BACKOFF_PROBE 16 /* slots searched from a key's home slot */

struct session {
	uint8_t id_hash[32], csrf_hash[32];
	char user[KS_ID_LEN + 1];
	int64_t created, last;
	int used;
};

struct api_sessions {
	pthread_mutex_t lock;
	api_clock_cb *clock;
	void *clock_arg;
	struct session s[API_SESSIONS_MAX];
};

struct backoff_slot {
	uint8_t key_hash[32]; /* SHA-256 of a kind letter, address, name */
	unsigned failures;
	int64_t until, last;
};

struct api_backoff {
	pthread_mutex_t lock;
	api_clock_cb *clock;
	void *clock_arg;
	struct backoff_slot s[BACKOFF_SLOTS];
};

static int64_t
clock_wall(void *arg)
{
	(void)arg;
	return (int64_t)time(NULL);
}

static void
sha256_str(const char *s, uint8_t out[32])
{
	digest_sha256(s, strlen(s), out);
}

/* ------------------------------------------------------------------ */
/* Sessions                                                             */
/* ------------------------------------------------------------------ */

int
api_sessions_new(struct api_sessions **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	(*out)->clock = clock_wall;
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

void
api_sessions_clock(struct api_sessions *s, api_clock_cb *cb, void *arg)
{
	s->clock = cb != NULL ? cb : clock_wall;
	s->clock_arg = arg;
}

static int
session_live(const struct session *e, int64_t now)
{
	return e->used && now - e->last < API_SESSION_IDLE &&
	    now - e->created < API_SESSION_ABSOLUTE;
}

int
api_session_open(struct api_sessions *s, const char *user,
    char id[API_SESSION_TOKEN_MAX], char csrf[API_SESSION_TOKEN_MAX])
{
	uint8_t rnd[64];
	int64_t now;
	size_t i, pick = 0;
	int rc;

	if ((rc = sr_os_random(rnd, sizeof(rnd))) != 0)
		return rc;
	b64url_encode(id, API_SESSION_TOKEN_MAX, rnd, 32);
	b64url_encode(csrf, API_SESSION_TOKEN_MAX, rnd + 32, 32);
	sr_wipe(rnd, sizeof(rnd));
	pthread_mutex_lock(&s->lock);
	now = s->clock(s->clock_arg);
	/* A free or dead slot, else the least recently used one. */
	for (i = 0; i < API_SESSIONS_MAX; i++) {
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
 * compare is constant-time per slot and visits every slot; a timed-out
 * session found is wiped. */
static struct session *
session_find(struct api_sessions *s, const uint8_t h[32], int64_t now)
{
	struct session *hit = NULL;
	size_t i;

	for (i = 0; i < API_SESSIONS_MAX; i++)
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
	struct session *e;
	int64_t now;
	int rc = 0;

	sha256_str(token, h);
	if (csrf != NULL)
		sha256_str(csrf, c);
	pthread_mutex_lock(&s->lock);
	now = s->clock(s->clock_arg);
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

int
api_session_end(struct api_sessions *s, const char *token)
{
	uint8_t h[32];
	struct session *e;

	sha256_str(token, h);
	pthread_mutex_lock(&s->lock);
	e = session_find(s, h, s->clock(s->clock_arg));
	if (e != NULL)
		sr_wipe(e, sizeof(*e));
	pthread_mutex_unlock(&s->lock);
	return e != NULL ? 0 : -ENOENT;
}

void
api_sessions_end_user(struct api_sessions *s, const char *user)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < API_SESSIONS_MAX; i++)
		if (s->s[i].used && strcmp(s->s[i].user, user) == 0)
			sr_wipe(&s->s[i], sizeof(s->s[i]));
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Back-off                                                             */
/* ------------------------------------------------------------------ */

/* The three counters of a login attempt (the kind letter of its key). */
enum { BK_ACCOUNT = 'a', BK_PAIR = 'p', BK_ADDR = 'n' };

int
api_backoff_new(struct api_backoff **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	(*out)->clock = clock_wall;
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

void
api_backoff_clock(struct api_backoff *b, api_clock_cb *cb, void *arg)
{
	b->clock = cb != NULL ? cb : clock_wall;
	b->clock_arg = arg;
}

/* SHA-256 of kind, address, NUL, name: the account's counter leaves the
 * address out, the address's the name. */
static void
backoff_key(int kind, const char *name, const char *addr, uint8_t h[32])
{
	mbedtls_sha256_context c;
	unsigned char k = (unsigned char)kind, nul = 0;

	mbedtls_sha256_init(&c);
	mbedtls_sha256_starts(&c, 0);
	mbedtls_sha256_update(&c, &k, 1);
	if (kind != BK_ACCOUNT)
		mbedtls_sha256_update(
		    &c, (const unsigned char *)addr, strlen(addr));
	mbedtls_sha256_update(&c, &nul, 1);
	if (kind != BK_ADDR)
		mbedtls_sha256_update(
		    &c, (const unsigned char *)name, strlen(name));
	mbedtls_sha256_finish(&c, h);
	mbedtls_sha256_free(&c);
}

/* The slot of a counter (made when @p make, reusing the least recently
 * failed slot near its home), or NULL; under the lock. */
static struct backoff_slot *
backoff_slot(struct api_backoff *b, int kind, const char *name,
    const char *addr, int make)
{
	uint8_t h[32];
	size_t i, start, oldest;

	backoff_key(kind, name, addr, h);
	start = ((size_t)h[0] << 8 | h[1]) % BACKOFF_SLOTS;
	oldest = start;
	for (i = 0; i < BACKOFF_PROBE; i++) {
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

/* Seconds the counter still holds; under the lock. */
static unsigned
slot_wait(struct api_backoff *b, int kind, const char *name, const char *addr,
    int64_t now)
{
	struct backoff_slot *e = backoff_slot(b, kind, name, addr, 0);

	return e != NULL && e->until > now ? (unsigned)(e->until - now) : 0;
}

unsigned
api_backoff_wait(struct api_backoff *b, const char *name, const char *addr)
{
	unsigned w, most;
	int64_t now;

	pthread_mutex_lock(&b->lock);
	now = b->clock(b->clock_arg);
	most = slot_wait(b, BK_ACCOUNT, name, addr, now);
	if ((w = slot_wait(b, BK_PAIR, name, addr, now)) > most)
		most = w;
	if ((w = slot_wait(b, BK_ADDR, name, addr, now)) > most)
		most = w;
	pthread_mutex_unlock(&b->lock);
	return most;
}

/* One more failure on a counter: from its @p free_tries-th on, wait 5 s,
 * doubling with each further failure up to 15 minutes. @return the
 * failures it had before this one. Under the lock. */
static unsigned
slot_fail(struct api_backoff *b, int kind, const char *name, const char *addr,
    unsigned free_tries, int64_t now)
{
	struct backoff_slot *e = backoff_slot(b, kind, name, addr, 1);
	unsigned over, wait;

	e->failures++;
	e->last = now;
	if (e->failures >= free_tries) {
		over = e->failures - free_tries;
		over = over > 8 ? 8 : over;
		wait = API_BACKOFF_BASE << over;
		e->until =
		    now + (wait > API_BACKOFF_CAP ? API_BACKOFF_CAP : wait);
	}
	return e->failures - 1;
}

void
api_backoff_failed(struct api_backoff *b, const char *name, const char *addr)
{
	unsigned before;
	int64_t now;

	pthread_mutex_lock(&b->lock);
	now = b->clock(b->clock_arg);
	before = slot_fail(b, BK_PAIR, name, addr, API_BACKOFF_FREE_PAIR, now);
	/* An address counts towards the account only until its own
	 * back-off there begins: alone it can never lock others out. */
	if (before < API_BACKOFF_FREE_PAIR)
		slot_fail(
		    b, BK_ACCOUNT, name, addr, API_BACKOFF_FREE_ACCOUNT, now);
	slot_fail(b, BK_ADDR, name, addr, API_BACKOFF_FREE_ADDR, now);
	pthread_mutex_unlock(&b->lock);
}

void
api_backoff_succeeded(struct api_backoff *b, const char *name, const char *addr)
{
	struct backoff_slot *e;

	pthread_mutex_lock(&b->lock);
	if ((e = backoff_slot(b, BK_ACCOUNT, name, addr, 0)) != NULL)
		memset(e, 0, sizeof(*e));
	if ((e = backoff_slot(b, BK_PAIR, name, addr, 0)) != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&b->lock);
}

const char *
api_backoff_source(const uint8_t addr[16], char out[API_BACKOFF_SOURCE_MAX])
{
	uint8_t net[16] = { 0 };
	int v4 = memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;

	if (!v4)
		memcpy(net, addr, 8);
	if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr + 12 : net, out,
	        INET6_ADDRSTRLEN) == NULL)
		snprintf(out, API_BACKOFF_SOURCE_MAX, "?");
	else if (!v4)
		strcat(out, "/64");
	return out;
}
