/*
 * inference/tok_encode.c: text to token ids. Added tokens are found on
 * their exact bytes first (only when the caller asks for it), each stretch
 * between them is NFC-normalised when the tokenizer says so, split by the
 * pre-tokenizer's regexes (PCRE2, JIT) and merged by BPE. It must never
 * produce an added token from text encoded without INF_TOK_PARSE_SPECIAL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uninorm.h>
#include <unistr.h>

#include "inference/tok_internal.h"
#include "lib/sr.h"

#define JIT_STACK_MIN (32u << 10)
#define JIT_STACK_MAX (1u << 20)

int
inf_tok__ws_re_setup(const struct inf_tok *tok, struct tok_ws_re *re)
{
	int i;

	memset(re, 0, sizeof(*re));
	re->mctx = pcre2_match_context_create(NULL);
	re->jit_stack =
	    pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
	if (re->mctx == NULL || re->jit_stack == NULL)
		return -ENOMEM;
	pcre2_jit_stack_assign(re->mctx, NULL, re->jit_stack);
	for (i = 0; i < tok->nstages; i++) {
		if (tok->stages[i].re == NULL)
			continue;
		re->md[i] = pcre2_match_data_create_from_pattern(
		    tok->stages[i].re, NULL);
		if (re->md[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

void
inf_tok__ws_re_free(struct tok_ws_re *re)
{
	int i;

	for (i = 0; i < TOK_STAGES_MAX; i++) {
		pcre2_match_data_free(re->md[i]);
		free(re->prefix[i]);
	}
	pcre2_match_context_free(re->mctx);
	pcre2_jit_stack_free(re->jit_stack);
	free(re->norm);
	memset(re, 0, sizeof(*re));
}

static int
grow(unsigned char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 256;
	unsigned char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = sr_realloc_wiped(*buf, *cap, n); /* a caller's text: no copy left */
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int
pcre_error(int rc)
{
	return rc == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -E2BIG;
}

/* ASCII classes of the split regexes under PCRE2_UCP: \p{L} is A-Z a-z,
 * \p{N} is 0-9, \s is space and \t \n \v \f \r; everything else ASCII
 * is "other" ([^\s\p{L}\p{N}]). */
static inline int
is_letter(unsigned c)
{
	return (c | 0x20) - 'a' < 26;
}

static inline int
is_digit(unsigned c)
{
	return c - '0' < 10;
}

static inline int
is_space(unsigned c)
{
	return c == ' ' || c - '\t' < 5;
}

static inline int
is_other(unsigned c)
{
	return c < 0x80 && !is_letter(c) && !is_digit(c) && !is_space(c);
}

/* 1 when p[i] exists and is not ASCII: its class needs Unicode tables */
#define NON_ASCII_AT(i) ((i) < n && p[i] >= 0x80)

/* The alternatives in the regex's order; each either decides (returns 1
 * with *end), fails (falls through to the next), or cannot tell without a
 * non-ASCII byte's properties (returns 0: PCRE2 decides). */
int
inf_tok__fast_split(
    const unsigned char *p, size_t n, size_t off, int fast_digits, size_t *end)
{
	unsigned c = p[off], d, e;
	size_t k, r;

	/* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
	if (c == '\'' && off + 1 < n) {
		d = p[off + 1];
		if (d >= 0x80)
			return 0; /* U+017F matches (?i)s */
		d = is_letter(d) ? d | 0x20 : 0;
		if (d == 's' || d == 't' || d == 'm' || d == 'd') {
			*end = off + 2;
			return 1;
		}
		if ((d == 'r' || d == 'v' || d == 'l') && off + 2 < n) {
			e = p[off + 2];
			if (e >= 0x80)
				return 0;
			if (is_letter(e) &&
			    (e | 0x20) == (d == 'l' ? 'l' : 'e')) {
				*end = off + 3;
				return 1;
			}
		}
	}
	/* [^\r\n\p{L}\p{N}]?\p{L}+ */
	k = n; /* no letter run found */
	if (is_letter(c)) {
		k = off;
	} else if (!is_digit(c) && c != '\r' && c != '\n' && off + 1 < n) {
		if (p[off + 1] >= 0x80)
			return 0;
		if (is_letter(p[off + 1]))
			k = off + 1;
	}
	if (k < n) {
		while (k < n && is_letter(p[k]))
			k++;
		if (NON_ASCII_AT(k))
			return 0;
		*end = k;
		return 1;
	}
	/* \p{N} or \p{N}{1,3} */
	if (is_digit(c)) {
		for (k = off + 1;
		     k < n && k - off < (size_t)fast_digits && is_digit(p[k]);
		     k++)
			;
		if (k - off < (size_t)fast_digits && NON_ASCII_AT(k))
			return 0;
		*end = k;
		return 1;
	}
	/* ?[^\s\p{L}\p{N}]+[\r\n]* */
	k = c == ' ' ? off + 1 : off;
	if (NON_ASCII_AT(k))
		return 0;
	if (k < n && is_other(p[k])) {
		while (k < n && is_other(p[k]))
			k++;
		if (NON_ASCII_AT(k))
			return 0;
		while (k < n && (p[k] == '\r' || p[k] == '\n'))
			k++;
		*end = k;
		return 1;
	}
	/* c is white space: the run decides the last three */
	for (k = off; k < n && is_space(p[k]); k++)
		;
	if (NON_ASCII_AT(k))
		return 0; /* U+00A0, U+0085, ... continue the run */
	/* \s*[\r\n]+ : through the run's last line break */
	for (r = k; r > off; r--)
		if (p[r - 1] == '\r' || p[r - 1] == '\n') {
			*end = r;
			return 1;
		}
	/* \s+(?!\S) : all of it at the end, else all but the last */
	if (k == n || k - off >= 2) {
		*end = k == n ? k : k - 1;
		return 1;
	}
	/* \s+ */
	*end = k;
	return 1;
}

/* Pre-tokenizer step `stage` on one piece; the last step hands each piece
 * to BPE. Split steps keep both the matches and the text between them
 * (behavior Isolated). */
static int
run_stage(const struct inf_tok *tok, struct tok_ws *ws, int stage,
    const unsigned char *p, size_t n, struct inf_tok_ids *out)
{
	const struct tok_stage *st = &tok->stages[stage];
	struct tok_ws_re *re = inf_tok__ws_re(ws);
	PCRE2_SIZE *ov;
	size_t off = 0, start = 0, ms, me;
	int rc;

	if (n == 0)
		return 0;
	if (stage == tok->nstages)
		return inf_tok__bpe(tok, ws, p, n, 1, 0, out);
	if (st->kind == TOK_STAGE_BYTELEVEL && st->prefix_space &&
	    p[0] != ' ') {
		if (grow(&re->prefix[stage], &re->prefix_cap[stage], n + 1))
			return -ENOMEM;
		re->prefix[stage][0] = ' ';
		memcpy(re->prefix[stage] + 1, p, n);
		p = re->prefix[stage];
		n++;
	}
	if (st->re == NULL)
		return run_stage(tok, ws, stage + 1, p, n, out);
	while (off < n) {
		if (st->fast_digits && p[off] < 0x80 &&
		    inf_tok__fast_split(p, n, off, st->fast_digits, &me)) {
			if (off > start &&
			    (rc = run_stage(tok, ws, stage + 1, p + start,
			         off - start, out)) != 0)
				return rc;
			/* the usual last step: straight to BPE */
			rc = stage + 1 == tok->nstages
			    ? inf_tok__bpe(
			          tok, ws, p + off, me - off, 1, 0, out)
			    : run_stage(
			          tok, ws, stage + 1, p + off, me - off, out);
			if (rc != 0)
				return rc;
			start = off = me;
			continue;
		}
		if (st->jit)
			rc = pcre2_jit_match(
			    st->re, p, n, off, 0, re->md[stage], re->mctx);
		else
			rc = pcre2_match(
			    st->re, p, n, off, 0, re->md[stage], re->mctx);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0)
			return pcre_error(rc);
		ov = pcre2_get_ovector_pointer(re->md[stage]);
		ms = ov[0];
		me = ov[1];
		if (me <= ms) {
			/* an empty match splits nothing: step one character */
			off = ms + 1;
			while (off < n && (p[off] & 0xc0) == 0x80)
				off++;
			continue;
		}
		if (ms > start &&
		    (rc = run_stage(
		         tok, ws, stage + 1, p + start, ms - start, out)) != 0)
			return rc;
		rc = run_stage(tok, ws, stage + 1, p + ms, me - ms, out);
		if (rc != 0)
			return rc;
		start = off = me;
	}
	return run_stage(tok, ws, stage + 1, p + start, n - start, out);
}

static int
is_ascii(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc |= p[i];
	return acc < 0x80;
}

int
inf_tok__encode_plain(struct inf_tok *tok, struct tok_ws *ws,
    const unsigned char *p, size_t n, struct inf_tok_ids *out)
{
	struct tok_ws_re *re = inf_tok__ws_re(ws);
	uint8_t *norm;
	size_t len;

	if (n == 0)
		return 0;
	if (tok->nfc && !is_ascii(p, n)) {
		/* u8_normalize would turn bad bytes into U+FFFD silently */
		if (u8_check(p, n) != NULL)
			return -EILSEQ;
		if (re->norm == NULL && grow(&re->norm, &re->norm_cap, n) != 0)
			return -ENOMEM;
		len = re->norm_cap;
		norm = u8_normalize(UNINORM_NFC, p, n, re->norm, &len);
		if (norm == NULL)
			return errno == ENOMEM ? -ENOMEM : -EILSEQ;
		if (norm != re->norm) {
			/* did not fit: keep the larger buffer libunistring
			 * made for next time */
			free(re->norm);
			re->norm = norm;
			re->norm_cap = len;
		}
		p = norm;
		n = len;
	}
	return run_stage(tok, ws, 0, p, n, out);
}

/* The added token starting at p (leftmost-longest: they are sorted longest
 * first within each first byte), or NULL. */
static const struct tok_added *
added_at(const struct inf_tok *tok, const unsigned char *p, size_t n)
{
	uint32_t i = tok->added_start[p[0]], end = i + tok->added_count[p[0]];

	for (; i < end; i++)
		if (tok->added[i].len <= n &&
		    memcmp(tok->added[i].bytes, p, tok->added[i].len) == 0)
			return &tok->added[i];
	return NULL;
}

static int
encode_special(struct inf_tok *tok, struct tok_ws *ws, const unsigned char *p,
    size_t n, struct inf_tok_ids *out)
{
	const struct tok_added *a;
	size_t i = 0, start = 0;
	int rc;

	while (i < n) {
		if (tok->added_count[p[i]] == 0 ||
		    (a = added_at(tok, p + i, n - i)) == NULL) {
			i++;
			continue;
		}
		rc = inf_tok__encode_plain(tok, ws, p + start, i - start, out);
		if (rc == 0)
			rc = inf_tok__ids_reserve(out, 1);
		if (rc != 0)
			return rc;
		out->ids[out->len++] = a->id;
		i += a->len;
		start = i;
	}
	return inf_tok__encode_plain(tok, ws, p + start, n - start, out);
}

int
inf_tok_encode(struct inf_tok *tok, const char *text, size_t len,
    unsigned flags, struct inf_tok_ids *out)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t at_entry = out->len;
	struct tok_ws *ws;
	int rc, slot;

	rc = inf_tok__ws_get(tok, &ws, &slot);
	if (rc != 0)
		return rc;
	if ((flags & INF_TOK_ADD_BOS) && tok->bos >= 0) {
		rc = inf_tok__ids_reserve(out, 1);
		if (rc != 0)
			goto out;
		out->ids[out->len++] = tok->bos;
	}
	if (flags & INF_TOK_PARSE_SPECIAL)
		rc = encode_special(tok, ws, p, len, out);
	else
		rc = inf_tok__encode_plain(tok, ws, p, len, out);
out:
	inf_tok__ws_put(tok, ws, slot);
	if (rc != 0)
		out->len = at_entry;
	return rc;
}
