/*
 * keystore/usage.c: when each API key was last used. An accepted
 * verification (from the cache or from the record) notes the time in
 * memory, at most once a KS_LAST_USED_STEP per key, so the hot path costs
 * a short lock and no write; KS_OP_USAGE_FLUSH (the daemon's minute watch)
 * and ks_close write the noted times into the keys' records in one
 * transaction. GET and LIST show the later of the record's time and the
 * noted one, so a listing is current before the flush.
 *
 * It must never write on a verification's path, never move a record's
 * last_used backwards, and never touch anything of a record but last_used.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

/* Keys whose use is remembered between flushes; when the table is full a
 * further key's use waits for the next flush to make room. */
#define USAGE_SLOTS 4096

struct usage_slot {
	char id[KS_ID_LEN + 1]; /* "" when free */
	int64_t at;             /* last noted use */
	int dirty;              /* not written yet */
};

struct ks__usage {
	pthread_mutex_t lock;
	struct usage_slot slot[USAGE_SLOTS];
	unsigned used;
};

int
ks__usage_new(struct ks__usage **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	pthread_mutex_init(&(*out)->lock, NULL);
	return 0;
}

void
ks__usage_free(struct ks__usage *u)
{
	if (u == NULL)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* The slot of @p id, or the free slot it would take (NULL: table full).
 * Called with the lock held. */
static struct usage_slot *
usage_find(struct ks__usage *u, const char *id)
{
	unsigned i, n;

	for (n = 0, i = ks__id_hash(id) % USAGE_SLOTS; n < USAGE_SLOTS;
	     n++, i = (i + 1) % USAGE_SLOTS) {
		if (u->slot[i].id[0] == '\0' || strcmp(u->slot[i].id, id) == 0)
			return &u->slot[i];
	}
	return NULL;
}

void
ks__usage_touch(struct ks *ks, const char *id, int64_t now)
{
	struct ks__usage *u = ks->usage;
	struct usage_slot *s;

	if (u == NULL)
		return;
	pthread_mutex_lock(&u->lock);
	s = usage_find(u, id);
	if (s != NULL && s->id[0] == '\0' && u->used < USAGE_SLOTS - 1) {
		memcpy(s->id, id, KS_ID_LEN);
		s->id[KS_ID_LEN] = '\0';
		s->at = 0;
		u->used++;
	}
	if (s != NULL && s->id[0] != '\0' && now - s->at >= KS_LAST_USED_STEP) {
		s->at = now;
		s->dirty = 1;
	}
	pthread_mutex_unlock(&u->lock);
}

void
ks__usage_merge(struct ks *ks, struct ks_meta *m)
{
	struct ks__usage *u = ks->usage;
	struct usage_slot *s;

	if (u == NULL || m->kind != KS_KIND_APIKEY)
		return;
	pthread_mutex_lock(&u->lock);
	s = usage_find(u, m->id);
	if (s != NULL && s->id[0] != '\0' && s->at > m->last_used)
		m->last_used = s->at;
	pthread_mutex_unlock(&u->lock);
}

struct usage_batch {
	unsigned n;
	struct {
		char id[KS_ID_LEN + 1];
		int64_t at;
	} e[USAGE_SLOTS];
	struct ks__rec rec; /* scratch for one record */
};

static int
usage_write_job(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct usage_batch *b = arg;
	unsigned i;
	int rc;

	for (i = 0; i < b->n; i++) {
		rc = ks__get_rec(
		    ks, txn, KS_KIND_APIKEY, b->e[i].id, 1, &b->rec);
		if (rc == KS_ENOTFOUND)
			continue; /* destroyed meanwhile: nothing to keep */
		if (rc != 0)
			return rc;
		if (b->rec.m.last_used >= b->e[i].at)
			continue;
		b->rec.m.last_used = b->e[i].at;
		if ((rc = ks__put_rec(ks, txn, &b->rec, 0)) != 0)
			return rc;
	}
	return 0;
}

int
ks__usage_flush(struct ks *ks)
{
	struct ks__usage *u = ks->usage;
	struct usage_batch *b;
	struct usage_slot *s;
	unsigned i;
	int rc;

	if (u == NULL)
		return 0;
	if ((b = malloc(sizeof(*b))) == NULL)
		return -ENOMEM;
	b->n = 0;
	pthread_mutex_lock(&u->lock);
	for (i = 0; i < USAGE_SLOTS; i++) {
		s = &u->slot[i];
		if (s->id[0] == '\0' || !s->dirty)
			continue;
		memcpy(b->e[b->n].id, s->id, KS_ID_LEN + 1);
		b->e[b->n++].at = s->at;
		s->dirty = 0;
	}
	pthread_mutex_unlock(&u->lock);
	rc = b->n == 0 ? 0 : ks__write(ks, usage_write_job, b);
	pthread_mutex_lock(&u->lock);
	if (rc != 0) {
		/* Not written: note them again for the next flush. */
		for (i = 0; i < b->n; i++)
			if ((s = usage_find(u, b->e[i].id)) != NULL &&
			    s->id[0] != '\0')
				s->dirty = 1;
	} else if (u->used >= USAGE_SLOTS / 2) {
		/* Written: forget the clean ones to make room (their records
		 * hold their times now); keep what was noted since. */
		b->n = 0;
		for (i = 0; i < USAGE_SLOTS; i++)
			if (u->slot[i].id[0] != '\0' && u->slot[i].dirty) {
				memcpy(b->e[b->n].id, u->slot[i].id,
				    KS_ID_LEN + 1);
				b->e[b->n++].at = u->slot[i].at;
			}
		memset(u->slot, 0, sizeof(u->slot));
		u->used = 0;
		for (i = 0; i < b->n; i++) {
			s = usage_find(u, b->e[i].id);
			memcpy(s->id, b->e[i].id, KS_ID_LEN + 1);
			s->at = b->e[i].at;
			s->dirty = 1;
			u->used++;
		}
	}
	pthread_mutex_unlock(&u->lock);
	sr_wipe(&b->rec, sizeof(b->rec));
	free(b);
	return rc;
}
