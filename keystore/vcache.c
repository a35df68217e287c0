/*
 * keystore/vcache.c: the API-key verification cache, which keeps the common
 * case (a key seen in the last second) off the HSM.
 *
 * Direct-mapped by a hash of the key id, one mutex per stripe of slots.
 * An entry holds a keyed digest of the full presented key (AES-CMAC under a
 * key drawn at open; never the key, never a plain hash of it), the owner's
 * metadata and when it was stored; it answers for one second, so a
 * change made anywhere (a revoked owner, an expiry) is seen within a second
 * even without an explicit drop, and revoking a key drops its entry at once.
 * Changing an owner (an app's networks or scopes) drops every entry of its
 * keys, and a verification that read the owner before that change does
 * not store its answer afterwards: a generation counter, bumped by each
 * such drop, is taken on each miss and compared when storing.
 * This file must never hold an API key in clear.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/internal.h"

#define KS_VC_STRIPES 64
#define KS_VC_TTL_NS 1000000000LL

struct ks_vc_entry {
	char id[KS_ID_LEN];
	uint8_t digest[32];
	int64_t stored_ns;   /* 0: empty */
	int64_t valid_until; /* the API key's own expiry; 0: none */
	struct ks_meta owner;
};

struct ks__vcache {
	unsigned n;
	struct ks_vc_entry *e;
	pthread_mutex_t lock[KS_VC_STRIPES];
	atomic_ullong hits, misses;
	atomic_ullong owner_drops; /* generation: ks__vcache_drop_owner */
};

/* The generation this thread saw at its last miss (ks__vcache_put). */
static _Thread_local unsigned long long vc_seen;

static int64_t
vc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static unsigned
vc_slot(const struct ks__vcache *c, const char *id)
{
	return ks__id_hash(id) % c->n;
}

int
ks__vcache_new(unsigned entries, struct ks__vcache **out)
{
	struct ks__vcache *c;
	unsigned i;

	*out = NULL;
	if (entries == 0 || entries > (1u << 24))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->e = calloc(entries, sizeof(*c->e));
	if (c->e == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->n = entries;
	for (i = 0; i < KS_VC_STRIPES; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	*out = c;
	return 0;
}

void
ks__vcache_free(struct ks__vcache *c)
{
	unsigned i;

	if (c == NULL)
		return;
	for (i = 0; i < KS_VC_STRIPES; i++)
		pthread_mutex_destroy(&c->lock[i]);
	sr_wipe(c->e, (size_t)c->n * sizeof(*c->e));
	free(c->e);
	free(c);
}

int
ks__vcache_check(struct ks__vcache *c, const char *id, const uint8_t digest[32],
    struct ks_meta *owner, int64_t *valid_until)
{
	unsigned s = vc_slot(c, id);
	struct ks_vc_entry *e = &c->e[s];
	int hit = 0;

	/* Before anything is read for a miss (the caller reads after). */
	vc_seen = atomic_load(&c->owner_drops);
	pthread_mutex_lock(&c->lock[s % KS_VC_STRIPES]);
	if (e->stored_ns != 0 && memcmp(e->id, id, KS_ID_LEN) == 0 &&
	    vc_now() - e->stored_ns < KS_VC_TTL_NS) {
		/* The digest is compared in constant time; a mismatch is a
		 * miss, and the slow path decides. */
		hit = sr_ct_equal(e->digest, digest, 32);
		if (hit) {
			*owner = e->owner;
			*valid_until = e->valid_until;
		}
	}
	pthread_mutex_unlock(&c->lock[s % KS_VC_STRIPES]);
	atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
	return hit;
}

void
ks__vcache_put(struct ks__vcache *c, const char *id, const uint8_t digest[32],
    const struct ks_meta *owner, int64_t valid_until)
{
	unsigned s = vc_slot(c, id);
	struct ks_vc_entry *e = &c->e[s];

	pthread_mutex_lock(&c->lock[s % KS_VC_STRIPES]);
	/* An owner changed after this answer was read: it may be stale. A
	 * drop that bumped the generation after this check scans the
	 * stripe after this store, and removes it then. */
	if (atomic_load(&c->owner_drops) == vc_seen) {
		memcpy(e->id, id, KS_ID_LEN);
		memcpy(e->digest, digest, 32);
		e->owner = *owner;
		e->valid_until = valid_until;
		e->stored_ns = vc_now();
	}
	pthread_mutex_unlock(&c->lock[s % KS_VC_STRIPES]);
}

void
ks__vcache_drop(struct ks__vcache *c, const char *id)
{
	unsigned s = vc_slot(c, id);
	struct ks_vc_entry *e = &c->e[s];

	pthread_mutex_lock(&c->lock[s % KS_VC_STRIPES]);
	if (memcmp(e->id, id, KS_ID_LEN) == 0)
		sr_wipe(e, sizeof(*e));
	pthread_mutex_unlock(&c->lock[s % KS_VC_STRIPES]);
}

void
ks__vcache_drop_owner(struct ks__vcache *c, const char *owner)
{
	unsigned stripe, i;

	/* First the generation, so no verification that began before it
	 * stores an answer after the scan has passed its slot. */
	atomic_fetch_add(&c->owner_drops, 1);
	for (stripe = 0; stripe < KS_VC_STRIPES; stripe++) {
		pthread_mutex_lock(&c->lock[stripe]);
		for (i = stripe; i < c->n; i += KS_VC_STRIPES)
			if (c->e[i].stored_ns != 0 &&
			    memcmp(c->e[i].owner.id, owner, KS_ID_LEN) == 0)
				sr_wipe(&c->e[i], sizeof(c->e[i]));
		pthread_mutex_unlock(&c->lock[stripe]);
	}
}

void
ks__vcache_counts(struct ks__vcache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = atomic_load(&c->hits);
	*misses = atomic_load(&c->misses);
}
