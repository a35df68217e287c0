/*
 * appliance/buf.c: struct buf, the growable byte buffer the HTTP writer,
 * the metrics renderer and the connection code append into.
 *
 * Capacity grows by doubling so appends are amortised O(1). Every size
 * computation is checked: a request that would wrap size_t fails with
 * -ENOMEM and leaves the buffer as it was. A buffer must never be left
 * half-updated by a failed call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appliance/internal.h"

#define BUF_MIN_CAP 64

int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap > BUF_MIN_CAP ? b->cap : BUF_MIN_CAP;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	/* realloc would leave a copy of a wiping buffer behind */
	p = b->wipe ? sr_realloc_wiped(b->data, b->len, cap)
	            : realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	const uint8_t *src = p;
	size_t inside = SIZE_MAX;
	int rc;

	if (n == 0)
		return 0;
	/* The source may lie inside the buffer: keep its offset, as the
	 * reallocation below may move it. */
	if (b->data != NULL && src >= b->data && src < b->data + b->len)
		inside = (size_t)(src - b->data);
	if ((rc = buf_reserve(b, n)) != 0)
		return rc;
	if (inside != SIZE_MAX)
		src = b->data + inside;
	memmove(b->data + b->len, src, n);
	b->len += n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	/* Room for the terminating NUL vsnprintf writes; it stays past len. */
	if ((rc = buf_reserve(b, (size_t)n + 1)) != 0)
		return rc;
	va_start(ap, fmt);
	n = vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	b->len += (size_t)n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_clear(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->wipe)
		sr_wipe(b->data + b->len, n);
}

void
buf_clear(struct buf *b)
{
	if (b->wipe && b->len > 0)
		sr_wipe(b->data, b->len);
	b->len = 0;
}

void
buf_free(struct buf *b)
{
	if (b->wipe)
		sr_free_wiped(b->data);
	else
		free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
