/*
 * inference/tok_decode.c: token ids back to text, whole or one id at a
 * time. The ByteLevel decoder is already folded into the tables (every
 * token holds its raw bytes); what is left is making the bytes valid
 * UTF-8 the way Hugging Face does (each maximal ill-formed subpart becomes
 * one U+FFFD). The streaming decoder must never emit half a character, and
 * must emit exactly what the whole decode would.
 */
#include <errno.h>
#include <string.h>

#include "inference/tok_internal.h"

static const unsigned char replacement[3] = { 0xef, 0xbf, 0xbd };

/* The length a lead byte announces, or 0 when it cannot start one. */
static size_t
utf8_need(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

/* May c follow the bytes held so far? The second byte's range depends on
 * the lead (no overlongs, no surrogates, nothing past U+10FFFF). */
static int
utf8_follows(const unsigned char *held, size_t nheld, unsigned char c)
{
	unsigned char lo = 0x80, hi = 0xbf;

	if (nheld == 1) {
		switch (held[0]) {
		case 0xe0:
			lo = 0xa0;
			break;
		case 0xed:
			hi = 0x9f;
			break;
		case 0xf0:
			lo = 0x90;
			break;
		case 0xf4:
			hi = 0x8f;
			break;
		}
	}
	return c >= lo && c <= hi;
}

/* Feed bytes through the held state, writing valid UTF-8 to dst (which has
 * room for 3 bytes per input byte plus 3). Returns the bytes written. */
static size_t
utf8_feed(unsigned char held[4], size_t *nheld, const unsigned char *p,
    size_t n, char *dst)
{
	char *o = dst;
	size_t i = 0, need;

	while (i < n) {
		unsigned char c = p[i];

		if (*nheld == 0) {
			if (c < 0x80) {
				*o++ = (char)c;
				i++;
				continue;
			}
			need = utf8_need(c);
			if (need == 0) {
				memcpy(o, replacement, 3);
				o += 3;
			} else {
				held[(*nheld)++] = c;
			}
			i++;
			continue;
		}
		if (!utf8_follows(held, *nheld, c)) {
			/* the held bytes can never complete: one U+FFFD,
			 * and c starts afresh */
			memcpy(o, replacement, 3);
			o += 3;
			*nheld = 0;
			continue;
		}
		held[(*nheld)++] = c;
		i++;
		if (*nheld == utf8_need(held[0])) {
			memcpy(o, held, *nheld);
			o += *nheld;
			*nheld = 0;
		}
	}
	return (size_t)(o - dst);
}

/* The bytes of one id as decoding sees them, or NULL to skip it. */
static const unsigned char *
decode_piece(const struct inf_tok *tok, int32_t id, unsigned flags, size_t *len)
{
	const struct tok_token *t;

	if (id < 0 || (size_t)id >= tok->ntokens)
		return NULL;
	t = &tok->tokens[id];
	if (!(t->flags & TOK_PRESENT) ||
	    ((flags & INF_TOK_DECODE_SKIP_SPECIAL) && (t->flags & TOK_SPECIAL)))
		return NULL;
	*len = t->len;
	return tok->bytes + t->off;
}

int
inf_tok_decode(const struct inf_tok *tok, const int32_t *ids, size_t n,
    unsigned flags, struct inf_tok_text *out)
{
	const unsigned char *p;
	unsigned char held[4];
	size_t i, len, need = 0, nheld = 0;

	for (i = 0; i < n; i++)
		if ((p = decode_piece(tok, ids[i], flags, &len)) != NULL)
			need += len;
	if (!(flags & INF_TOK_DECODE_RAW))
		need = need * 3 + 3;
	if (inf_tok__text_reserve(out, need) != 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		p = decode_piece(tok, ids[i], flags, &len);
		if (p == NULL)
			continue;
		if (flags & INF_TOK_DECODE_RAW) {
			memcpy(out->text + out->len, p, len);
			out->len += len;
		} else {
			out->len += utf8_feed(
			    held, &nheld, p, len, out->text + out->len);
		}
	}
	if (nheld > 0) {
		memcpy(out->text + out->len, replacement, 3);
		out->len += 3;
	}
	out->text[out->len] = '\0';
	return 0;
}

void
inf_tok_stream_init(
    struct inf_tok_stream *s, const struct inf_tok *tok, unsigned flags)
{
	memset(s, 0, sizeof(*s));
	s->_tok = tok;
	s->_flags = flags & INF_TOK_DECODE_SKIP_SPECIAL;
}

int
inf_tok_stream_push(
    struct inf_tok_stream *s, int32_t id, struct inf_tok_text *out)
{
	const unsigned char *p;
	size_t len;

	p = decode_piece(s->_tok, id, s->_flags, &len);
	if (p == NULL)
		return 0;
	if (inf_tok__text_reserve(out, len * 3 + 3) != 0)
		return -ENOMEM;
	out->len +=
	    utf8_feed(s->_pending, &s->_npending, p, len, out->text + out->len);
	out->text[out->len] = '\0';
	return 0;
}

int
inf_tok_stream_flush(struct inf_tok_stream *s, struct inf_tok_text *out)
{
	if (s->_npending == 0)
		return 0;
	if (inf_tok__text_append(out, replacement, 3) != 0)
		return -ENOMEM;
	s->_npending = 0;
	return 0;
}
