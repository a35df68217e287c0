/*
 * appliance/jwt_cache.c: the keyset's memory of signatures it has already
 * verified (internal API in appliance/jwt_impl.h). A service presents the
 * same token on every request until it expires; ECDSA verification costs
 * about 80 us here (libcrypto; 1.3 ms in mbedTLS), a remembered token's
 * whole check about 2 us, so only a token's first request pays for its
 * signature, and it does so on a worker, never on an event loop.
 *
 * An entry is the SHA-256 of a token's signing input (header.payload) and
 * its exact 64-byte signature, stored only after that pair verified under
 * this keyset, and kept until the token's exp plus the skew. A hit vouches
 * for those bytes only: any other signature over the same input, and any
 * other input, misses and is verified in full. Everything but the
 * signature (header, kid in the set, claims, time) is checked again on
 * every use by jwt_verify().
 *
 * It must never hold a token or any part of one that could be presented
 * (the digest is one-way; a signature alone authenticates nothing), never
 * remember a signature that did not verify, and never outlive its keyset:
 * a key leaving the set takes its tokens' entries with the old keyset.
 *
 * Threading: any number of threads; one mutex per set of ways.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/jwt_impl.h"
#include "lib/sr.h"

#define JWT_CACHE_SETS 1024 /* power of two */
#define JWT_CACHE_WAYS 4

struct jwt_cache_way {
	uint8_t digest[32];
	uint8_t sig[64];
	int64_t until; /* 0: empty; otherwise exp + JWT_SKEW */
};

struct jwt_cache_set {
	pthread_mutex_t lock;
	struct jwt_cache_way way[JWT_CACHE_WAYS];
};

struct jwt__cache {
	struct jwt_cache_set set[JWT_CACHE_SETS];
};

int
jwt__cache_new(struct jwt__cache **out)
{
	struct jwt__cache *c;
	size_t i;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	for (i = 0; i < JWT_CACHE_SETS; i++)
		pthread_mutex_init(&c->set[i].lock, NULL);
	*out = c;
	return 0;
}

void
jwt__cache_free(struct jwt__cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < JWT_CACHE_SETS; i++)
		pthread_mutex_destroy(&c->set[i].lock);
	free(c);
}

/* The digest is SHA-256 output: its first bytes are already uniform. */
static struct jwt_cache_set *
set_of(struct jwt__cache *c, const uint8_t digest[32])
{
	uint32_t h = (uint32_t)digest[0] | (uint32_t)digest[1] << 8 |
	    (uint32_t)digest[2] << 16 | (uint32_t)digest[3] << 24;

	return &c->set[h & (JWT_CACHE_SETS - 1)];
}

int
jwt__cache_seen(struct jwt__cache *c, const uint8_t digest[32],
    const uint8_t sig[64], int64_t now)
{
	struct jwt_cache_set *s;
	struct jwt_cache_way *w;
	int found = 0, i;

	if (c == NULL)
		return 0;
	s = set_of(c, digest);
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < JWT_CACHE_WAYS; i++) {
		w = &s->way[i];
		/* Both compares run whatever the first one says. */
		found |= (w->until > now) &
		    sr_ct_equal(w->digest, digest, sizeof(w->digest)) &
		    sr_ct_equal(w->sig, sig, sizeof(w->sig));
	}
	pthread_mutex_unlock(&s->lock);
	return found != 0;
}

void
jwt__cache_add(struct jwt__cache *c, const uint8_t digest[32],
    const uint8_t sig[64], int64_t until, int64_t now)
{
	struct jwt_cache_set *s;
	struct jwt_cache_way *w, *pick;
	int i;

	if (c == NULL || until <= now)
		return;
	s = set_of(c, digest);
	pthread_mutex_lock(&s->lock);
	/* An empty or expired way, else the one that expires first. */
	pick = &s->way[0];
	for (i = 0; i < JWT_CACHE_WAYS; i++) {
		w = &s->way[i];
		if (w->until <= now) {
			pick = w;
			break;
		}
		if (w->until < pick->until)
			pick = w;
	}
	memcpy(pick->digest, digest, sizeof(pick->digest));
	memcpy(pick->sig, sig, sizeof(pick->sig));
	pick->until = until;
	pthread_mutex_unlock(&s->lock);
}
