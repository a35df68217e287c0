/*
 * lib/secret.c: the secret-buffer type, memory wiping and constant-time
 * comparison.
 *
 * A secret is locked in RAM where the system allows and wiped before it is
 * freed. Small secrets (keys, PINs: up to 255 bytes) come from one arena
 * that is locked and kept out of core dumps once, at first use, because an
 * mlock/munlock pair per secret costs microseconds on hot paths such as
 * unwrapping a DEK; larger ones are locked one by one. This file must never
 * copy secret bytes anywhere but into another secret, and never prints
 * them.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lib/sr.h"

void
sr_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		explicit_bzero(p, len);
}

void
sr_free_wiped(void *p)
{
	if (p != NULL)
		sr_wipe(p, malloc_usable_size(p));
	free(p);
}

void *
sr_realloc_wiped(void *p, size_t keep, size_t size)
{
	void *q = malloc(size);

	if (q != NULL && p != NULL) {
		memcpy(q, p, keep < size ? keep : size);
		sr_free_wiped(p);
	}
	return q;
}

void *
sr_alc_malloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

void *
sr_alc_realloc(void *ctx, void *p, size_t old_size, size_t size)
{
	(void)ctx;
	return sr_realloc_wiped(p, old_size, size);
}

void
sr_alc_free(void *ctx, void *p)
{
	(void)ctx;
	sr_free_wiped(p);
}

/* Not inlined, so the zone lies below the caller's frame, where the
 * finished calls were; explicit_bzero's stores are never dropped. */
__attribute__((noinline)) void
sr_stack_wipe(size_t bytes)
{
	if (bytes > SR_STACK_WIPE_MAX)
		bytes = SR_STACK_WIPE_MAX;
	if (bytes == 0)
		return;
	unsigned char zone[bytes];

	explicit_bzero(zone, bytes);
	__asm__ __volatile__("" : : "r"(zone) : "memory");
}

int
sr_ct_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	size_t i;

	for (i = 0; i < len; i++)
		diff |= (unsigned char)(x[i] ^ y[i]);
	/* Map 0 to 1 and anything else to 0 without a branch on diff. */
	return (int)(1 & (((unsigned)diff - 1) >> 8));
}

#define SR_SLOT_SIZE 256
#define SR_SLOTS 2048

/* The arena of small secrets: SR_SLOTS slots, a stack of free ones. */
static pthread_once_t sr_arena_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t sr_arena_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *sr_arena;
static uint16_t sr_arena_free[SR_SLOTS];
static unsigned sr_arena_nfree;

enum { SR_HEAP = 0, SR_HEAP_LOCKED = 1, SR_ARENA = 2 };

static void
sr_arena_init(void)
{
	size_t size = (size_t)SR_SLOT_SIZE * SR_SLOTS;
	void *p;
	unsigned i;

#ifdef __SANITIZE_ADDRESS__
	/* Under AddressSanitizer secrets stay on the heap, where a use after
	 * free is caught. */
	return;
#endif
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	/* Without the lock the arena buys nothing: use the heap instead. */
	if (mlock(p, size) != 0) {
		munmap(p, size);
		return;
	}
	madvise(p, size, MADV_DONTDUMP);
	for (i = 0; i < SR_SLOTS; i++)
		sr_arena_free[i] = (uint16_t)(SR_SLOTS - 1 - i);
	sr_arena_nfree = SR_SLOTS;
	sr_arena = p;
}

static unsigned char *
sr_arena_get(void)
{
	unsigned char *p = NULL;

	pthread_once(&sr_arena_once, sr_arena_init);
	if (sr_arena == NULL)
		return NULL;
	pthread_mutex_lock(&sr_arena_lock);
	if (sr_arena_nfree > 0)
		p = sr_arena +
		    (size_t)sr_arena_free[--sr_arena_nfree] * SR_SLOT_SIZE;
	pthread_mutex_unlock(&sr_arena_lock);
	return p;
}

static void
sr_arena_put(unsigned char *p)
{
	pthread_mutex_lock(&sr_arena_lock);
	sr_arena_free[sr_arena_nfree++] =
	    (uint16_t)((size_t)(p - sr_arena) / SR_SLOT_SIZE);
	pthread_mutex_unlock(&sr_arena_lock);
}

int
sr_secret_alloc(struct sr_secret *s, size_t len)
{
	s->_bytes = NULL;
	s->_len = 0;
	s->_locked = SR_HEAP;
	/* One spare byte so a secret can always be used as a C string. */
	if (len == SIZE_MAX)
		return -ENOMEM;
	if (len + 1 <= SR_SLOT_SIZE) {
		s->_bytes = sr_arena_get();
		if (s->_bytes != NULL) {
			/* Slots are wiped when freed; clear anyway. */
			memset(s->_bytes, 0, len + 1);
			s->_len = len;
			s->_locked = SR_ARENA;
			return 0;
		}
	}
	s->_bytes = calloc(1, len + 1);
	if (s->_bytes == NULL)
		return -ENOMEM;
	s->_len = len;
	/* Locking can fail under RLIMIT_MEMLOCK; the wipe still holds. */
	if (mlock(s->_bytes, len + 1) == 0)
		s->_locked = SR_HEAP_LOCKED;
	return 0;
}

int
sr_secret_set(struct sr_secret *s, const void *src, size_t len)
{
	int rc;

	rc = sr_secret_alloc(s, len);
	if (rc != 0)
		return rc;
	if (len > 0)
		memcpy(s->_bytes, src, len);
	return 0;
}

void
sr_secret_free(struct sr_secret *s)
{
	if (s == NULL || s->_bytes == NULL)
		return;
	explicit_bzero(s->_bytes, s->_len + 1);
	if (s->_locked == SR_ARENA) {
		sr_arena_put(s->_bytes);
	} else {
		if (s->_locked == SR_HEAP_LOCKED)
			munlock(s->_bytes, s->_len + 1);
		free(s->_bytes);
	}
	s->_bytes = NULL;
	s->_len = 0;
	s->_locked = 0;
}
