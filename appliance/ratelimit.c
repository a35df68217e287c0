/*
 * appliance/ratelimit.c: token buckets and the daemon's request limits:
 * one bucket for the whole daemon and one per source address, kept in a
 * bounded table striped over 256 mutexes.
 *
 * A bucket is the GCRA form of a token bucket: the one 64-bit state word
 * holds the "theoretical arrival time" (TAT), in nanoseconds on the
 * caller's millisecond clock, at which the bucket would be full again if
 * nothing more were taken. With T = the period of one token (1/rate) and
 * tau = burst * T, a request of cost c at time now is allowed when
 * max(TAT, now) + c*T - now <= tau, and then TAT becomes max(TAT, now) +
 * c*T. That is exactly a bucket of @p burst tokens refilled at @p rate,
 * with no packing of a token count and a time stamp and so none of its
 * range limits: one word, one compare-and-swap, and a clock that steps
 * back a little between threads does no harm (max() ignores it). A state
 * of 0 is a full bucket at any time.
 *
 * Limits, by construction: T is rounded to a whole nanosecond, so the
 * effective rate is 1e9 / round(1e9 / rate): exact for rates that divide
 * 1e9, within 5e-7 at 1000/s and within 0.5% at the 10M/s maximum the
 * configuration allows. Whole-token bursts are exact (tau = burst * T).
 * now_ms must stay below 2^62 ns (146 years); a monotonic clock or the
 * wall clock in ms both do. Rates are clamped to [0.001, 1e9] per second
 * and bursts to [1, 1e12] tokens.
 *
 * Per-address order: the address's bucket is checked first and the
 * global one second; when the global bucket refuses, the address's token
 * is given back (its state restored under the stripe's lock, or the
 * token kept in the loop's lease, below). So one
 * address that its own limit refuses never spends the daemon's global
 * budget, and a globally refused request costs its address nothing.
 *
 * Leases: with limits set far above the traffic (a benchmark, a large
 * deployment), every request of every loop would take from the same
 * address bucket and the same global one, and about 5 % of a keep-alive
 * request on two loops went to passing those cache lines and the
 * stripe's mutex between cores. So a loop may take tokens ahead and spend
 * them itself (struct rl_local, one per loop). A lease holds at most
 * burst / 64 tokens (at most 32) and is only offered when that is at
 * least 2: a bucket with a burst under 128 is never leased (the defaults,
 * 200 per address and 2000 in all, allow leases of 3 and 31). A loop's lease
 * for a bucket starts at 1 token, doubles each time one runs out within
 * RL_LEASE_MS, and falls back to 1 when one lasted longer; what is left of a
 * lease after RL_LEASE_MS goes back to its bucket when the loop next looks at
 * it (a bucket that filled up meanwhile stays full). So at any moment a
 * loop holds at most burst / 64 of a bucket's tokens, and an address can
 * be refused on one loop while another still holds a few of its tokens;
 * with one loop, or bursts under 128, the limits are exact. A reload of
 * the rates drops every lease.
 *
 * It must never block in rl_bucket_take, never let memory grow with the
 * number of addresses seen (the table is fixed; the least recently seen
 * address within a probe window is reused), and never place addresses
 * with a hash an attacker can predict (SipHash-2-4 with a random key).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/internal.h"

#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL
#define NS_MAX (1ULL << 62)

#define RL_STRIPES 256      /* mutexes */
#define RL_STRIPE_SLOTS 256 /* addresses per stripe: 65536 in all */
#define RL_PROBE 8          /* slots looked at for one address */
#define RL_LEASE_MS 20      /* a lease's tokens go back after this */

/* Generations are unique across every struct rl of the process, so a
 * loop's leases can never be taken for another table's. */
static atomic_ullong next_gen = 1;

static uint64_t
ns_round(double x)
{
	if (!(x > 0))
		return 0;
	if (x >= (double)NS_MAX)
		return NS_MAX;
	return (uint64_t)(x + 0.5);
}

/* The period of one token in ns, at least 1. */
static uint64_t
period_ns(const struct rl_bucket *b)
{
	uint64_t t = ns_round(
	    1e9 / atomic_load_explicit(&b->rate, memory_order_relaxed));

	return t == 0 ? 1 : t;
}

/* Clamped into what the arithmetic handles; the use so far is kept. */
static void
bucket_set_rate(struct rl_bucket *b, double rate, double burst)
{
	if (!(rate >= 0.001))
		rate = 0.001;
	if (rate > 1e9)
		rate = 1e9;
	if (!(burst >= 1))
		burst = 1;
	if (burst > 1e12)
		burst = 1e12;
	atomic_store_explicit(&b->rate, rate, memory_order_relaxed);
	atomic_store_explicit(&b->burst, burst, memory_order_relaxed);
}

void
rl_bucket_init(struct rl_bucket *b, double rate, double burst)
{
	bucket_set_rate(b, rate, burst);
	atomic_init(&b->state, 0);
}

static unsigned
seconds_up(uint64_t ns)
{
	uint64_t s = ns / NS_PER_S + (ns % NS_PER_S != 0);

	if (s < 1)
		return 1;
	return s > UINT_MAX ? UINT_MAX : (unsigned)s;
}

/*
 * Cost 0 is always allowed and takes nothing. A cost above the burst can
 * never be met: refused, with the time the cost alone would take to
 * refill as the hint. A negative or NaN cost is refused.
 */
int
rl_bucket_take(
    struct rl_bucket *b, uint64_t now_ms, double cost, unsigned *retry_after_s)
{
	uint64_t t = period_ns(b), now, inc, tau, tat, base, next;
	unsigned dummy;

	if (retry_after_s == NULL)
		retry_after_s = &dummy;
	if (cost == 0)
		return 1;
	if (!(cost > 0)) {
		*retry_after_s = 1;
		return 0;
	}
	now = now_ms >= NS_MAX / NS_PER_MS ? NS_MAX : now_ms * NS_PER_MS;
	inc = ns_round(cost * (double)t);
	tau = ns_round(
	    atomic_load_explicit(&b->burst, memory_order_relaxed) * (double)t);
	if (inc > tau) {
		*retry_after_s = seconds_up(inc);
		return 0;
	}
	tat = atomic_load_explicit(&b->state, memory_order_relaxed);
	for (;;) {
		base = tat > now ? tat : now;
		next = base + inc;
		if (next - now > tau) {
			*retry_after_s = seconds_up(next - now - tau);
			return 0;
		}
		if (atomic_compare_exchange_weak_explicit(&b->state, &tat, next,
		        memory_order_relaxed, memory_order_relaxed))
			return 1;
	}
}

/* ------------------------------------------------------------------ */
/* The daemon's limits                                                  */
/* ------------------------------------------------------------------ */

struct rl_slot {
	uint8_t addr[16];
	int used;
	uint64_t last_seen; /* now_ms of the address's latest request */
	struct rl_bucket bucket;
};

struct rl_stripe {
	pthread_mutex_t mu;
	struct rl_slot slot[RL_STRIPE_SLOTS];
};

struct rl {
	struct rl_bucket global;
	atomic_ullong gen;          /* +1 at each rl_configure */
	_Atomic double rate, burst; /* per address */
	uint64_t key[2];            /* SipHash key */
	unsigned nstripes;          /* mutexes initialised, for rl_free */
	struct rl_stripe stripe[RL_STRIPES];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void
sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = ROTL(v[1], 13);
	v[1] ^= v[0];
	v[0] = ROTL(v[0], 32);
	v[2] += v[3];
	v[3] = ROTL(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = ROTL(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = ROTL(v[1], 17);
	v[1] ^= v[2];
	v[2] = ROTL(v[2], 32);
}

/* SipHash-2-4 of exactly 16 bytes (an address). */
uint64_t
addr_hash(const uint64_t k[2], const uint8_t in[16])
{
	uint64_t v[4] = { k[0] ^ 0x736f6d6570736575ULL,
		k[1] ^ 0x646f72616e646f6dULL, k[0] ^ 0x6c7967656e657261ULL,
		k[1] ^ 0x7465646279746573ULL };
	uint64_t m;
	int i, j;

	for (i = 0; i < 3; i++) {
		m = 0;
		if (i < 2)
			for (j = 7; j >= 0; j--)
				m = m << 8 | in[8 * i + j];
		else
			m = 16ULL << 56; /* the length, no bytes left */
		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int
rl_new(const struct app_config *c, struct rl **out)
{
	struct rl *r;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	rl_bucket_init(&r->global, c->rate_global, c->rate_global_burst);
	atomic_init(&r->gen, atomic_fetch_add(&next_gen, 1));
	atomic_init(&r->rate, c->rate_per_addr);
	atomic_init(&r->burst, c->rate_per_addr_burst);
	rc = sr_os_random(r->key, sizeof(r->key));
	for (; rc == 0 && r->nstripes < RL_STRIPES; r->nstripes++)
		rc = -pthread_mutex_init(&r->stripe[r->nstripes].mu, NULL);
	if (rc != 0) {
		rl_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void
rl_configure(struct rl *r, const struct app_config *c)
{
	unsigned i, j;

	bucket_set_rate(&r->global, c->rate_global, c->rate_global_burst);
	atomic_store(&r->gen, atomic_fetch_add(&next_gen, 1));
	atomic_store(&r->rate, c->rate_per_addr);
	atomic_store(&r->burst, c->rate_per_addr_burst);
	for (i = 0; i < r->nstripes; i++) {
		pthread_mutex_lock(&r->stripe[i].mu);
		for (j = 0; j < RL_STRIPE_SLOTS; j++)
			if (r->stripe[i].slot[j].used)
				bucket_set_rate(&r->stripe[i].slot[j].bucket,
				    c->rate_per_addr, c->rate_per_addr_burst);
		pthread_mutex_unlock(&r->stripe[i].mu);
	}
}

void
rl_free(struct rl *r)
{
	unsigned i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nstripes; i++)
		pthread_mutex_destroy(&r->stripe[i].mu);
	free(r);
}

/* The address's slot in @p st (locked): its own, else an empty one in
 * the probe window, else the window's least recently seen, reset. */
static struct rl_slot *
slot_for(struct rl *r, struct rl_stripe *st, unsigned start,
    const uint8_t addr[16], uint64_t now_ms)
{
	struct rl_slot *s, *victim = NULL;
	unsigned i;

	for (i = 0; i < RL_PROBE; i++) {
		s = &st->slot[(start + i) % RL_STRIPE_SLOTS];
		if (s->used && memcmp(s->addr, addr, 16) == 0)
			return s;
		if (victim == NULL || (victim->used && !s->used) ||
		    (victim->used && s->last_seen < victim->last_seen))
			victim = s;
	}
	memcpy(victim->addr, addr, 16);
	victim->used = 1;
	victim->last_seen = now_ms;
	rl_bucket_init(
	    &victim->bucket, atomic_load(&r->rate), atomic_load(&r->burst));
	return victim;
}

/* Every token from the shared buckets (no leases). */
static int
allow_shared(struct rl *r, const uint8_t addr[16], uint64_t now_ms,
    unsigned *retry_after_s)
{
	uint64_t h = addr_hash(r->key, addr), before;
	struct rl_stripe *st = &r->stripe[h % RL_STRIPES];
	struct rl_slot *s;
	unsigned dummy;
	int ok;

	if (retry_after_s == NULL)
		retry_after_s = &dummy;
	pthread_mutex_lock(&st->mu);
	s = slot_for(r, st, (unsigned)(h >> 8) % RL_STRIPE_SLOTS, addr, now_ms);
	if (now_ms > s->last_seen)
		s->last_seen = now_ms;
	before = atomic_load_explicit(&s->bucket.state, memory_order_relaxed);
	ok = rl_bucket_take(&s->bucket, now_ms, 1, retry_after_s);
	if (ok && !rl_bucket_take(&r->global, now_ms, 1, retry_after_s)) {
		/* Give the address its token back: only this lock's holder
		 * changes a slot's bucket. */
		atomic_store_explicit(
		    &s->bucket.state, before, memory_order_relaxed);
		ok = 0;
	}
	pthread_mutex_unlock(&st->mu);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Leases                                                               */
/* ------------------------------------------------------------------ */

/* The largest lease of a bucket with @p burst tokens; 1 = none. */
static uint32_t
lease_cap(double burst)
{
	double m = burst / 64;

	if (!(m >= 2))
		return 1;
	return m >= 32 ? 32 : (uint32_t)m;
}

/* @p n tokens back into @p b: its TAT moves back n periods, never below
 * now (a bucket that is full stays full, no fuller). */
static void
bucket_give_back(struct rl_bucket *b, uint64_t now_ms, uint32_t n)
{
	uint64_t t = period_ns(b), now, back, tat, next;

	now = now_ms >= NS_MAX / NS_PER_MS ? NS_MAX : now_ms * NS_PER_MS;
	back = (uint64_t)n * t;
	tat = atomic_load_explicit(&b->state, memory_order_relaxed);
	while (tat > now) {
		next = tat - now > back ? tat - back : now;
		if (atomic_compare_exchange_weak_explicit(&b->state, &tat, next,
		        memory_order_relaxed, memory_order_relaxed))
			return;
	}
}

/* Refill @p h from @p b: a lease of h->size tokens (doubled first when
 * the last one ran out within RL_LEASE_MS, else 1), or a single token
 * when the bucket no longer holds that many. 0 when refused. */
static int
lease_take(struct rl_bucket *b, struct rl_held *h, uint32_t cap,
    uint64_t now_ms, unsigned *retry_after_s)
{
	uint32_t k;

	k = now_ms < h->until_ms ? h->size * 2 : 1;
	if (k < 1)
		k = 1;
	if (k > cap)
		k = cap;
	h->size = k;
	if (k > 1 && rl_bucket_take(b, now_ms, k, retry_after_s))
		h->left = k;
	else if (rl_bucket_take(b, now_ms, 1, retry_after_s))
		h->left = 1;
	else
		return 0;
	h->until_ms = now_ms + RL_LEASE_MS;
	return 1;
}

/* What is left of the address's lease (@p h: its addr_hash) back into its
 * shared bucket. An
 * address the table has forgotten meanwhile starts full anyway: nothing
 * to give back, and no other address's slot is taken for it. */
static void
addr_give_back(struct rl *r, uint64_t h, const uint8_t addr[16], uint32_t n,
    uint64_t now_ms)
{
	struct rl_stripe *st = &r->stripe[h % RL_STRIPES];
	unsigned start = (unsigned)(h >> 8) % RL_STRIPE_SLOTS, i;
	struct rl_slot *s;

	if (n == 0)
		return;
	pthread_mutex_lock(&st->mu);
	for (i = 0; i < RL_PROBE; i++) {
		s = &st->slot[(start + i) % RL_STRIPE_SLOTS];
		if (s->used && memcmp(s->addr, addr, 16) == 0) {
			bucket_give_back(&s->bucket, now_ms, n);
			break;
		}
	}
	pthread_mutex_unlock(&st->mu);
}

/* A token of @p addr's own bucket (@p hash: its addr_hash) into @p h (its
 * lease refilled under the stripe's lock). 0 when refused. */
static int
addr_lease(struct rl *r, uint64_t hash, const uint8_t addr[16],
    struct rl_held *h, uint32_t cap, uint64_t now_ms, unsigned *retry_after_s)
{
	struct rl_stripe *st = &r->stripe[hash % RL_STRIPES];
	struct rl_slot *s;
	int ok;

	pthread_mutex_lock(&st->mu);
	s = slot_for(
	    r, st, (unsigned)(hash >> 8) % RL_STRIPE_SLOTS, addr, now_ms);
	if (now_ms > s->last_seen)
		s->last_seen = now_ms;
	ok = lease_take(&s->bucket, h, cap, now_ms, retry_after_s);
	pthread_mutex_unlock(&st->mu);
	return ok;
}

int
rl_allow(struct rl *r, struct rl_local *l, const uint8_t addr[16],
    uint64_t now_ms, unsigned *retry_after_s)
{
	uint32_t cap_a, cap_g;
	uint64_t gen, hash;
	unsigned dummy, i;
	struct rl_held *ha, *hg;

	if (retry_after_s == NULL)
		retry_after_s = &dummy;
	cap_a =
	    lease_cap(atomic_load_explicit(&r->burst, memory_order_relaxed));
	cap_g = lease_cap(
	    atomic_load_explicit(&r->global.burst, memory_order_relaxed));
	if (l == NULL || (cap_a == 1 && cap_g == 1))
		return allow_shared(r, addr, now_ms, retry_after_s);
	gen = atomic_load_explicit(&r->gen, memory_order_relaxed);
	if (l->gen != gen) { /* new rates: the old leases are dropped */
		memset(l, 0, sizeof(*l));
		l->gen = gen;
	}
	/* The address's place in the loop's table: one slot, taken over
	 * from another address after giving that one's tokens back. */
	hash = addr_hash(r->key, addr);
	i = (unsigned)(hash % RL_LOCAL_SLOTS);
	if (l->addr[i].used && memcmp(l->addr[i].addr, addr, 16) != 0) {
		if (l->addr[i].held.left > 0)
			addr_give_back(r, addr_hash(r->key, l->addr[i].addr),
			    l->addr[i].addr, l->addr[i].held.left, now_ms);
		l->addr[i].used = 0;
	}
	if (!l->addr[i].used) {
		memset(&l->addr[i], 0, sizeof(l->addr[i]));
		memcpy(l->addr[i].addr, addr, 16);
		l->addr[i].used = 1;
	}
	ha = &l->addr[i].held;
	hg = &l->global;
	if (ha->left > 0 && now_ms >= ha->until_ms) {
		addr_give_back(r, hash, addr, ha->left, now_ms);
		ha->left = 0;
	}
	if (hg->left > 0 && now_ms >= hg->until_ms) {
		bucket_give_back(&r->global, now_ms, hg->left);
		hg->left = 0;
	}
	if (ha->left == 0 &&
	    !addr_lease(r, hash, addr, ha, cap_a, now_ms, retry_after_s))
		return 0;
	if (hg->left == 0 &&
	    !lease_take(&r->global, hg, cap_g, now_ms, retry_after_s)) {
		/* The address keeps its token: back to its bucket when it is
		 * the only one taken, else in the lease. */
		if (ha->left == 1 && cap_a == 1) {
			addr_give_back(r, hash, addr, 1, now_ms);
			ha->left = 0;
		}
		return 0;
	}
	ha->left--;
	hg->left--;
	return 1;
}
