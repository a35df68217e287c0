/*
 * tests/unit/inference/utf8check.h: a strict UTF-8 validity check for the
 * tokenizer's tests and its fuzz target, written from the standard rather
 * than from the code under test, so that the two cannot share a mistake.
 * Header-only and free of cmocka (the fuzz target has none).
 */
#ifndef SR_TESTS_UTF8CHECK_H
#define SR_TESTS_UTF8CHECK_H

#include <stddef.h>

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF),
 * written from the table in Unicode 15 section 3.9. */
static inline int
toktest_valid_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, need;
	unsigned lo, hi;

	while (i < n) {
		unsigned c = p[i];

		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			lo = c == 0xe0 ? 0xa0 : 0x80;
			hi = c == 0xed ? 0x9f : 0xbf;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf;
		} else {
			return 0;
		}
		if (i + need >= n)
			return 0;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return 0;
		for (k = 2; k <= need; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return 0;
		i += need + 1;
	}
	return 1;
}

#endif /* SR_TESTS_UTF8CHECK_H */
