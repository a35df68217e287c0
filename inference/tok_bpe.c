/*
 * inference/tok_bpe.c: byte-pair merging of one pre-token, by merge rank
 * (lowest rank first, leftmost first among equals, as Hugging Face's
 * tokenizers does), the per-workspace cache of pre-token -> ids, and the
 * workspaces themselves. It must never allocate per byte or per merge:
 * every buffer lives in the workspace and only grows.
 */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "inference/tok_internal.h"
#include "lib/sr.h"

#define CACHE_SLOTS (1u << 15)     /* open-addressing table, power of 2 */
#define CACHE_ENTRIES (1u << 14)   /* reset when this many are held */
#define CACHE_KEY_BYTES (1u << 20) /* reset when keys take more */
#define CACHE_IDS (1u << 18)       /* reset when ids take more */
#define CACHE_PIECE_MAX 256        /* longer pieces are not cached */
#define SCAN_MAX 24 /* up to this many bytes: quadratic scan, else heap */

struct cache_slot {
	uint64_t hash;
	uint64_t head;             /* the key's first bytes (up to 8) */
	uint32_t key_off, key_len; /* key_len 0: empty */
	uint32_t ids_off, nids;
};

struct heap_item {
	uint32_t rank;
	int32_t pos;
	int32_t left, right; /* the ids the pair had when pushed */
};

struct bpe_sym {
	int32_t id;
	int32_t prev, next; /* -1 at the ends */
	int32_t alive;
};

struct tok_ws {
	/* cache */
	struct cache_slot *slots;
	unsigned char *keys;
	int32_t *ids;
	uint32_t nentries, key_used, ids_used;
	uint32_t *touched; /* the slots filled since the last reset */
	uint32_t ntouched;
	/* BPE scratch */
	int32_t *seq;
	uint32_t *ranks;
	int32_t *merged;
	struct bpe_sym *syms;
	struct heap_item *heap;
	size_t scratch_cap;
	/* pre-tokenizer and normalizer scratch (tok_encode.c) */
	struct tok_ws_re re;
};

/* Empty the cache: only the slots filled are cleared. With @p wipe,
 * also the keys' and ids' bytes (a caller's text). */
static void
ws_cache_reset(struct tok_ws *ws, int wipe)
{
	uint32_t i;

	for (i = 0; i < ws->ntouched; i++)
		memset(&ws->slots[ws->touched[i]], 0, sizeof(*ws->slots));
	if (wipe) {
		sr_wipe(ws->keys, ws->key_used);
		sr_wipe(ws->ids, ws->ids_used * sizeof(*ws->ids));
	}
	ws->nentries = ws->key_used = ws->ids_used = ws->ntouched = 0;
}

/* The whole of a malloc'd block, wiped in place (NULL is fine). */
static void
wipe_block(void *p)
{
	if (p != NULL)
		sr_wipe(p, malloc_usable_size(p));
}

/* Forget everything this workspace saw: its cache and its scratch. */
static void
ws_forget(struct tok_ws *ws)
{
	int i;

	ws_cache_reset(ws, 1);
	wipe_block(ws->seq);
	wipe_block(ws->ranks);
	wipe_block(ws->merged);
	wipe_block(ws->syms);
	wipe_block(ws->heap);
	wipe_block(ws->re.norm);
	for (i = 0; i < TOK_STAGES_MAX; i++)
		wipe_block(ws->re.prefix[i]);
}

static struct tok_ws *
ws_new(const struct inf_tok *tok)
{
	struct tok_ws *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return NULL;
	ws->slots = calloc(CACHE_SLOTS, sizeof(*ws->slots));
	ws->keys = malloc(CACHE_KEY_BYTES);
	ws->ids = malloc(CACHE_IDS * sizeof(*ws->ids));
	ws->touched = malloc(CACHE_ENTRIES * sizeof(*ws->touched));
	if (ws->slots == NULL || ws->keys == NULL || ws->ids == NULL ||
	    ws->touched == NULL || inf_tok__ws_re_setup(tok, &ws->re) != 0) {
		inf_tok__ws_free(ws);
		return NULL;
	}
	return ws;
}

void
inf_tok__ws_free(struct tok_ws *ws)
{
	if (ws == NULL)
		return;
	ws_forget(ws); /* safe on a half-made one: empty buffers are NULL */
	inf_tok__ws_re_free(&ws->re);
	free(ws->slots);
	free(ws->keys);
	free(ws->ids);
	free(ws->touched);
	free(ws->seq);
	free(ws->ranks);
	free(ws->merged);
	free(ws->syms);
	free(ws->heap);
	free(ws);
}

int
inf_tok__ws_get(struct inf_tok *tok, struct tok_ws **ws, int *slot)
{
	int i;

	for (i = 0; i < TOK_WS_SLOTS; i++) {
		if (pthread_mutex_trylock(&tok->ws_lock[i]) != 0)
			continue;
		if (tok->ws[i] == NULL)
			tok->ws[i] = ws_new(tok);
		if (tok->ws[i] == NULL) {
			pthread_mutex_unlock(&tok->ws_lock[i]);
			return -ENOMEM;
		}
		*ws = tok->ws[i];
		*slot = i;
		return 0;
	}
	/* every shared workspace is busy: a private one for this call */
	*ws = ws_new(tok);
	*slot = -1;
	return *ws ? 0 : -ENOMEM;
}

void
inf_tok__ws_put(struct inf_tok *tok, struct tok_ws *ws, int slot)
{
	if (slot < 0) {
		inf_tok__ws_free(ws);
		return;
	}
	if (atomic_load_explicit(&tok->forget, memory_order_relaxed))
		ws_forget(ws);
	pthread_mutex_unlock(&tok->ws_lock[slot]);
}

struct tok_ws_re *
inf_tok__ws_re(struct tok_ws *ws)
{
	return &ws->re;
}

static int
scratch_reserve(struct tok_ws *ws, size_t n)
{
	size_t cap = ws->scratch_cap ? ws->scratch_cap : 64;
	void *a, *b, *c, *d, *e;

	if (n <= ws->scratch_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	a = sr_realloc_wiped(ws->seq, ws->scratch_cap * sizeof(*ws->seq),
	    cap * sizeof(*ws->seq));
	if (a != NULL)
		ws->seq = a;
	b = sr_realloc_wiped(ws->ranks, ws->scratch_cap * sizeof(*ws->ranks),
	    cap * sizeof(*ws->ranks));
	if (b != NULL)
		ws->ranks = b;
	c = sr_realloc_wiped(ws->merged, ws->scratch_cap * sizeof(*ws->merged),
	    cap * sizeof(*ws->merged));
	if (c != NULL)
		ws->merged = c;
	d = sr_realloc_wiped(ws->syms, ws->scratch_cap * sizeof(*ws->syms),
	    cap * sizeof(*ws->syms));
	if (d != NULL)
		ws->syms = d;
	/* each merge pushes at most two pairs: 3n bounds the heap */
	e = sr_realloc_wiped(ws->heap, 3 * ws->scratch_cap * sizeof(*ws->heap),
	    3 * cap * sizeof(*ws->heap));
	if (e != NULL)
		ws->heap = e;
	if (!a || !b || !c || !d || !e)
		return -ENOMEM;
	ws->scratch_cap = cap;
	return 0;
}

/* ---------------------------------------------------------------- */
/* The two merge loops                                                */
/* ---------------------------------------------------------------- */

/* Short pieces: keep the rank of every adjacent pair, take the lowest
 * (leftmost on ties), merge, refresh the two neighbours. Returns the
 * number of ids left in ws->seq. */
static size_t
bpe_scan(const struct inf_tok *tok, struct tok_ws *ws, size_t n)
{
	int32_t *seq = ws->seq, *merged = ws->merged;
	uint32_t *ranks = ws->ranks;
	size_t i, best;

	for (i = 0; i + 1 < n; i++)
		if (inf_tok__merge_get(
		        tok, seq[i], seq[i + 1], &ranks[i], &merged[i]) != 0)
			ranks[i] = UINT32_MAX;
	while (n > 1) {
		best = 0;
		for (i = 1; i + 1 < n; i++)
			if (ranks[i] < ranks[best])
				best = i;
		if (ranks[best] == UINT32_MAX)
			break;
		seq[best] = merged[best];
		memmove(&seq[best + 1], &seq[best + 2],
		    (n - best - 2) * sizeof(*seq));
		memmove(&ranks[best], &ranks[best + 1],
		    (n - best - 2) * sizeof(*ranks));
		memmove(&merged[best], &merged[best + 1],
		    (n - best - 2) * sizeof(*merged));
		n--;
		if (best > 0 &&
		    inf_tok__merge_get(tok, seq[best - 1], seq[best],
		        &ranks[best - 1], &merged[best - 1]) != 0)
			ranks[best - 1] = UINT32_MAX;
		if (best + 1 < n &&
		    inf_tok__merge_get(tok, seq[best], seq[best + 1],
		        &ranks[best], &merged[best]) != 0)
			ranks[best] = UINT32_MAX;
	}
	return n;
}

static int
heap_less(const struct heap_item *a, const struct heap_item *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push(struct heap_item *h, size_t *n, struct heap_item it)
{
	size_t i = (*n)++;

	while (i > 0 && heap_less(&it, &h[(i - 1) / 2])) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = it;
}

static struct heap_item
heap_pop(struct heap_item *h, size_t *n)
{
	struct heap_item top = h[0], last = h[--(*n)];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < *n) {
		if (c + 1 < *n && heap_less(&h[c + 1], &h[c]))
			c++;
		if (!heap_less(&h[c], &last))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = last;
	return top;
}

static void
pair_push(
    const struct inf_tok *tok, struct tok_ws *ws, size_t *nheap, int32_t pos)
{
	struct bpe_sym *s = ws->syms;
	struct heap_item it;
	int32_t id;

	if (pos < 0 || s[pos].next < 0)
		return;
	it.left = s[pos].id;
	it.right = s[s[pos].next].id;
	if (inf_tok__merge_get(tok, it.left, it.right, &it.rank, &id) != 0)
		return;
	it.pos = pos;
	heap_push(ws->heap, nheap, it);
}

/* Long pieces: a heap of candidate pairs over a linked list of symbols
 * (Hugging Face's Word::merge_all). A popped pair whose symbols changed
 * since it was pushed is stale and dropped. */
static size_t
bpe_heap(const struct inf_tok *tok, struct tok_ws *ws, size_t n)
{
	struct bpe_sym *s = ws->syms;
	size_t i, nheap = 0, out = 0;
	int32_t pos, nx, id;
	uint32_t rank;

	for (i = 0; i < n; i++) {
		s[i].id = ws->seq[i];
		s[i].prev = (int32_t)i - 1;
		s[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
		s[i].alive = 1;
	}
	for (i = 0; i + 1 < n; i++)
		pair_push(tok, ws, &nheap, (int32_t)i);
	while (nheap > 0) {
		struct heap_item it = heap_pop(ws->heap, &nheap);

		pos = it.pos;
		nx = s[pos].next;
		if (!s[pos].alive || nx < 0 || s[pos].id != it.left ||
		    s[nx].id != it.right)
			continue;
		inf_tok__merge_get(tok, it.left, it.right, &rank, &id);
		s[pos].id = id;
		s[pos].next = s[nx].next;
		if (s[nx].next >= 0)
			s[s[nx].next].prev = pos;
		s[nx].alive = 0;
		pair_push(tok, ws, &nheap, s[pos].prev);
		pair_push(tok, ws, &nheap, pos);
	}
	for (pos = 0; pos >= 0; pos = s[pos].next)
		ws->seq[out++] = s[pos].id;
	return out;
}

/* ---------------------------------------------------------------- */
/* Cache and entry point                                              */
/* ---------------------------------------------------------------- */

/* The first min(n, 8) bytes of a piece (n >= 2) as a little-endian
 * number, without reading past p + n: most pieces are words of up to 8
 * bytes, which this value and the length identify completely. */
static inline uint64_t
key_head(const unsigned char *p, size_t n)
{
	uint64_t v;
	uint32_t lo, hi;

	if (n >= 8) {
		memcpy(&v, p, 8);
		return v;
	}
	if (n >= 4) {
		/* two overlapping loads; the shared bytes agree */
		memcpy(&lo, p, 4);
		memcpy(&hi, p + n - 4, 4);
		return (uint64_t)hi << ((n - 4) * 8) | lo;
	}
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 |
	    (n == 3 ? (uint64_t)p[2] << 16 : 0);
}

static inline uint64_t
key_hash(const unsigned char *p, size_t n, uint64_t head)
{
	uint64_t h;

	if (n > 8)
		return inf_tok__hash(p, n);
	h = (head ^ ((uint64_t)n << 59)) * 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static inline struct cache_slot *
cache_find(struct tok_ws *ws, const unsigned char *p, size_t n, uint64_t h,
    uint64_t head)
{
	uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
	struct cache_slot *s;

	for (;; i = (i + 1) & (CACHE_SLOTS - 1)) {
		s = &ws->slots[i];
		if (s->key_len == 0)
			return s;
		if (s->hash == h && s->key_len == n && s->head == head &&
		    (n <= 8 ||
		        memcmp(ws->keys + s->key_off + 8, p + 8, n - 8) == 0))
			return s;
	}
}

static void
cache_put(struct tok_ws *ws, const unsigned char *p, size_t n, uint64_t h,
    uint64_t head, const int32_t *ids, size_t nids)
{
	struct cache_slot *s;

	if (ws->nentries + 1 > CACHE_ENTRIES ||
	    ws->key_used + n > CACHE_KEY_BYTES ||
	    ws->ids_used + nids > CACHE_IDS)
		ws_cache_reset(ws, 0);
	s = cache_find(ws, p, n, h, head);
	if (s->key_len == 0)
		ws->touched[ws->ntouched++] = (uint32_t)(s - ws->slots);
	s->hash = h;
	s->head = head;
	s->key_off = ws->key_used;
	s->key_len = (uint32_t)n;
	s->ids_off = ws->ids_used;
	s->nids = (uint32_t)nids;
	memcpy(ws->keys + ws->key_used, p, n);
	memcpy(ws->ids + ws->ids_used, ids, nids * sizeof(*ids));
	ws->key_used += (uint32_t)n;
	ws->ids_used += (uint32_t)nids;
	ws->nentries++;
}

int
inf_tok__bpe(const struct inf_tok *tok, struct tok_ws *ws,
    const unsigned char *p, size_t n, int use_cache, int algo,
    struct inf_tok_ids *out)
{
	struct cache_slot *hit = NULL;
	uint64_t h = 0, head = 0;
	size_t i, m;
	int32_t whole, *dst;
	const int32_t *src;

	if (n == 0)
		return 0;
	if (out->cap - out->len < n && inf_tok__ids_reserve(out, n) != 0)
		return -ENOMEM;
	if (n == 1) {
		out->ids[out->len++] = tok->byte_id[p[0]];
		return 0;
	}
	use_cache = use_cache && n <= CACHE_PIECE_MAX;
	if (use_cache) {
		head = key_head(p, n);
		h = key_hash(p, n, head);
		hit = cache_find(ws, p, n, h, head);
		if (hit->key_len != 0) {
			/* a few ids: a loop beats a call to memcpy */
			dst = out->ids + out->len;
			src = ws->ids + hit->ids_off;
			for (i = 0; i < hit->nids; i++)
				dst[i] = src[i];
			out->len += hit->nids;
			return 0;
		}
	}
	/* ignore_merges: a piece that is a token as a whole is that token
	 * (never an added one: plain text must not produce those) */
	if (tok->ignore_merges) {
		whole = inf_tok__vocab_get(tok, p, n);
		if (whole >= 0 && !(tok->tokens[whole].flags & TOK_ADDED)) {
			out->ids[out->len++] = whole;
			if (use_cache)
				cache_put(ws, p, n, h, head, &whole, 1);
			return 0;
		}
	}
	if (scratch_reserve(ws, n) != 0)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		ws->seq[i] = tok->byte_id[p[i]];
	if (algo == 1 || (algo == 0 && n <= SCAN_MAX))
		m = bpe_scan(tok, ws, n);
	else
		m = bpe_heap(tok, ws, n);
	memcpy(out->ids + out->len, ws->seq, m * sizeof(int32_t));
	out->len += m;
	if (use_cache)
		cache_put(ws, p, n, h, head, ws->seq, m);
	return 0;
}
