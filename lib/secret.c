/*
 * lib/secret.c: the secret-buffer type, memory wiping and constant-time
 * comparison.
 *
 * A secret is locked in RAM where the system allows and wiped before it is
 * freed. This file must never copy secret bytes anywhere but into another
 * secret, and never prints them.
 */
#include <errno.h>
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

int
sr_secret_alloc(struct sr_secret *s, size_t len)
{
	s->_bytes = NULL;
	s->_len = 0;
	s->_locked = 0;
	/* One spare byte so a secret can always be used as a C string. */
	if (len == SIZE_MAX)
		return -ENOMEM;
	s->_bytes = calloc(1, len + 1);
	if (s->_bytes == NULL)
		return -ENOMEM;
	s->_len = len;
	/* Locking can fail under RLIMIT_MEMLOCK; the wipe still holds. */
	s->_locked = mlock(s->_bytes, len + 1) == 0;
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
	if (s->_locked)
		munlock(s->_bytes, s->_len + 1);
	free(s->_bytes);
	s->_bytes = NULL;
	s->_len = 0;
	s->_locked = 0;
}
