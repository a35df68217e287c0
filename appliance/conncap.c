/*
 * appliance/conncap.c: the cap on open connections per source address,
 * shared by every loop (a client's connections land on any of them).
 *
 * An open-addressing table of addresses and their counts under one mutex
 * (taken once per accept and once per close), placed by a keyed hash. It must
 * never refuse an address below its cap; when the table itself is full it
 * refuses, since that takes more distinct addresses than max_conns allows
 * anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/internal.h"

#define CAP_PROBE 32

struct cap_slot {
	uint8_t addr[16];
	unsigned n; /* 0: free */
};

struct conncap {
	pthread_mutex_t lock;
	uint64_t key[2]; /* keys addr_hash: probe chains cannot be aimed */
	unsigned max, nslots;
	struct cap_slot *slots;
};

int
conncap_new(unsigned max_per_addr, unsigned max_conns, struct conncap **out)
{
	struct conncap *c;
	unsigned n = 1024;

	*out = NULL;
	/* Twice the connections there can be, so probes stay short. */
	while (n < 2 * max_conns && n < (1u << 24))
		n <<= 1;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->slots = calloc(n, sizeof(*c->slots));
	if (c->slots == NULL) {
		free(c);
		return -ENOMEM;
	}
	if (sr_os_random(c->key, sizeof(c->key)) != 0) {
		free(c->slots);
		free(c);
		return -EIO;
	}
	c->nslots = n;
	c->max = max_per_addr;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void
conncap_set_limit(struct conncap *c, unsigned max_per_addr)
{
	pthread_mutex_lock(&c->lock);
	c->max = max_per_addr;
	pthread_mutex_unlock(&c->lock);
}

void
conncap_free(struct conncap *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->slots);
	free(c);
}

int
conncap_acquire(struct conncap *c, const uint8_t addr[16])
{
	unsigned i, idx, h = (unsigned)addr_hash(c->key, addr),
	                 freeslot = UINT32_MAX;
	int ok = 0;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < CAP_PROBE; i++) {
		idx = (h + i) & (c->nslots - 1);
		if (c->slots[idx].n == 0) {
			if (freeslot == UINT32_MAX)
				freeslot = idx;
			continue;
		}
		if (memcmp(c->slots[idx].addr, addr, 16) == 0) {
			ok = c->slots[idx].n < c->max;
			c->slots[idx].n += ok;
			goto out;
		}
	}
	if (freeslot != UINT32_MAX && c->max > 0) {
		memcpy(c->slots[freeslot].addr, addr, 16);
		c->slots[freeslot].n = 1;
		ok = 1;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return ok;
}

void
conncap_release(struct conncap *c, const uint8_t addr[16])
{
	unsigned i, idx, h = (unsigned)addr_hash(c->key, addr);

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < CAP_PROBE; i++) {
		idx = (h + i) & (c->nslots - 1);
		if (c->slots[idx].n != 0 &&
		    memcmp(c->slots[idx].addr, addr, 16) == 0) {
			c->slots[idx].n--;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
}
