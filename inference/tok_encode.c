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
	p = realloc(*buf, n);
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
