/*
 * appliance/serve_cache.c: the response cache for repeatable requests
 * (temperature 0): an answer is found again only under exactly the same
 * key, which the caller builds from the tenant (the app or user), the
 * model, the prompt's token ids and every parameter that shapes the
 * output. Entries expire after the TTL; the table is bounded in entries
 * and bytes, and the oldest entry leaves first.
 *
 * It must never hand one tenant's answer to another (the tenant is part
 * of the key, compared in full, not only its hash), never keep an entry
 * past its TTL, and never grow past its bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "appliance/serve_impl.h"
#include "lib/sr.h"

struct entry {
	struct entry *prev, *next; /* oldest first */
	uint64_t hash, expires_ms;
	void *key;
	size_t key_len;
	struct serve_cached v;
};

struct serve_cache {
	pthread_mutex_t mu;
	uint64_t ttl_ms;
	unsigned max_entries, n;
	size_t max_bytes, bytes;
	struct entry *oldest, *newest;
};

static uint64_t
fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

int
serve_cache_new(unsigned ttl_s, unsigned max_entries, size_t max_bytes,
    struct serve_cache **out)
{
	struct serve_cache *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->ttl_ms = (uint64_t)ttl_s * 1000;
	c->max_entries = max_entries;
	c->max_bytes = max_bytes;
	*out = c;
	return 0;
}

static void
unlink_entry(struct serve_cache *c, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->oldest = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->newest = e->prev;
	c->n--;
	c->bytes -= e->key_len + e->v.len;
	/* a prompt's ids and its answer: nothing stays behind */
	sr_free_wiped(e->key);
	sr_free_wiped(e->v.text);
	free(e);
}

void
serve_cache_free(struct serve_cache *c)
{
	if (c == NULL)
		return;
	while (c->oldest != NULL)
		unlink_entry(c, c->oldest);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Drop what has expired (the list is in expiry order: one TTL). */
static void
expire(struct serve_cache *c, uint64_t now_ms)
{
	while (c->oldest != NULL && c->oldest->expires_ms <= now_ms)
		unlink_entry(c, c->oldest);
}

int
serve_cache_get(struct serve_cache *c, const void *key, size_t key_len,
    struct serve_cached *out)
{
	uint64_t h = fnv1a(key, key_len), now_ms = uv_hrtime() / 1000000;
	struct entry *e;
	int rc = 0;

	if (c == NULL || c->ttl_ms == 0 || c->max_entries == 0)
		return 0;
	pthread_mutex_lock(&c->mu);
	expire(c, now_ms);
	for (e = c->newest; e != NULL; e = e->prev)
		if (e->hash == h && e->key_len == key_len &&
		    memcmp(e->key, key, key_len) == 0)
			break;
	if (e != NULL) {
		*out = e->v;
		out->text = malloc(e->v.len + 1);
		if (out->text == NULL) {
			rc = -ENOMEM;
		} else {
			memcpy(out->text, e->v.text, e->v.len + 1);
			rc = 1;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void
serve_cache_put(struct serve_cache *c, const void *key, size_t key_len,
    const struct serve_cached *v)
{
	uint64_t now_ms = uv_hrtime() / 1000000;
	struct entry *e;

	if (c == NULL || c->ttl_ms == 0 || c->max_entries == 0 ||
	    key_len + v->len > c->max_bytes / 4)
		return;
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->key = malloc(key_len)) == NULL ||
	    (e->v.text = malloc(v->len + 1)) == NULL) {
		if (e != NULL)
			free(e->key);
		free(e);
		return;
	}
	memcpy(e->key, key, key_len);
	e->key_len = key_len;
	e->hash = fnv1a(key, key_len);
	memcpy(e->v.text, v->text, v->len);
	e->v.text[v->len] = '\0';
	e->v.len = v->len;
	e->v.n_tokens = v->n_tokens;
	e->v.finish = v->finish;
	e->expires_ms = now_ms + c->ttl_ms;
	pthread_mutex_lock(&c->mu);
	expire(c, now_ms);
	while (c->oldest != NULL &&
	    (c->n >= c->max_entries ||
	        c->bytes + key_len + v->len > c->max_bytes))
		unlink_entry(c, c->oldest);
	e->prev = c->newest;
	if (c->newest != NULL)
		c->newest->next = e;
	else
		c->oldest = e;
	c->newest = e;
	c->n++;
	c->bytes += key_len + v->len;
	pthread_mutex_unlock(&c->mu);
}
