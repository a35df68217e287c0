/*
 * appliance/serve_limits.c: per-key limits of the inference API: how many
 * requests one key may have in flight at once, and how many tokens
 * (prompt plus the most it may generate) it may ask for per second, as a
 * token bucket. Keys live in a fixed table of slots found by a keyed
 * hash; an idle slot is reused for a new key.
 *
 * It must never block a loop for longer than a table lookup under one
 * lock, never let a key's concurrency count go negative, and never grow
 * without bound (the table is fixed; when every slot is busy a new key is
 * refused as "too many at once" rather than admitted unlimited).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "appliance/serve_impl.h"

#define LIMIT_SLOTS 4096
#define LIMIT_KEY_MAX 128
#define LIMIT_PROBE 32

struct slot {
	char key[LIMIT_KEY_MAX];
	unsigned active;
	struct rl_bucket bucket;
	uint64_t last_ms;
};

struct serve_limits {
	pthread_mutex_t mu;
	unsigned concurrency;
	double rate, burst;
	uint64_t hash_key[2];
	struct slot slot[LIMIT_SLOTS];
};

int
serve_limits_new(unsigned concurrency, double tokens_per_s, double burst,
    struct serve_limits **out)
{
	struct serve_limits *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (l == NULL)
		return -ENOMEM;
	pthread_mutex_init(&l->mu, NULL);
	l->concurrency = concurrency;
	l->rate = tokens_per_s;
	l->burst = burst;
	if (sr_os_random(l->hash_key, sizeof(l->hash_key)) != 0)
		l->hash_key[0] = (uint64_t)uv_hrtime();
	*out = l;
	return 0;
}

void
serve_limits_free(struct serve_limits *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* The key's slot, or a free one claimed for it (l->mu held); NULL when
 * every probed slot is busy with another key. */
static struct slot *
find(struct serve_limits *l, const char *key, uint64_t now_ms)
{
	uint8_t h[16] = { 0 };
	size_t n = strlen(key), i, at;
	struct slot *free_slot = NULL, *s;

	for (i = 0; i < n; i++) /* fold the key into addr_hash's 16 bytes */
		h[i % 16] = (uint8_t)(h[i % 16] * 31u + (uint8_t)key[i]);
	at = (size_t)(addr_hash(l->hash_key, h) % LIMIT_SLOTS);
	for (i = 0; i < LIMIT_PROBE; i++) {
		s = &l->slot[(at + i) % LIMIT_SLOTS];
		if (strcmp(s->key, key) == 0)
			return s;
		/* idle: nothing in flight and its bucket long full again */
		if (free_slot == NULL &&
		    (s->key[0] == '\0' ||
		        (s->active == 0 && now_ms - s->last_ms > 60000)))
			free_slot = s;
	}
	if (free_slot != NULL) {
		memset(free_slot, 0, sizeof(*free_slot));
		strncpy(free_slot->key, key, LIMIT_KEY_MAX - 1);
		rl_bucket_init(&free_slot->bucket, l->rate, l->burst);
	}
	return free_slot;
}

int
serve_limits_enter(struct serve_limits *l, const char *key, double tokens,
    unsigned *retry_after_s)
{
	uint64_t now_ms = uv_hrtime() / 1000000;
	struct slot *s;
	int rc = 0;

	*retry_after_s = 1;
	pthread_mutex_lock(&l->mu);
	s = find(l, key, now_ms);
	if (s == NULL || s->active >= l->concurrency) {
		rc = -EBUSY;
	} else {
		/* A request bigger than the bucket costs the whole bucket. */
		if (tokens > l->burst)
			tokens = l->burst;
		if (!rl_bucket_take(&s->bucket, now_ms, tokens, retry_after_s))
			rc = -EAGAIN;
		else
			s->active++;
		s->last_ms = now_ms;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void
serve_limits_done(struct serve_limits *l, const char *key)
{
	uint64_t now_ms = uv_hrtime() / 1000000;
	struct slot *s;

	pthread_mutex_lock(&l->mu);
	s = find(l, key, now_ms);
	if (s != NULL && s->active > 0)
		s->active--;
	pthread_mutex_unlock(&l->mu);
}
