/*
 * tests/fuzz/fuzz_tokenizer.c: libFuzzer target for the tokenizer, with
 * both fixtures' tokenizers (loaded once; run from the repo root). Every
 * input is encoded as plain text and with special tokens parsed, and the
 * promises are checked: encoding never fails on any bytes, byte-level BPE
 * is lossless (the raw decode is the input, in both modes), plain text
 * never yields a special token, the default decode is valid UTF-8 (equal
 * to the input when the input was), and the streaming decoder's output is
 * the whole decode. The hand matcher of the Qwen2 / Llama-3 split regex
 * must give PCRE2's match at every ASCII offset where it decides. ASan
 * and UBSan catch the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/tok_internal.h"
#include "inference/tokenizer.h"
#include "tests/unit/inference/utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct inf_tok *toks[2];

static void
load_once(void)
{
	static const char *const dirs[] = { "tests/fixtures/tiny-qwen2",
		"tests/fixtures/tiny-llama" };
	char err[256];
	int i;

	for (i = 0; i < 2; i++) {
		if (toks[i] != NULL)
			continue;
		if (inf_tok_load(dirs[i], &toks[i], err) != 0) {
			fprintf(stderr,
			    "fuzz_tokenizer: %s (run from the repo "
			    "root)\n",
			    err);
			abort();
		}
	}
}

static void
check(struct inf_tok *tok, const uint8_t *data, size_t size, unsigned flags)
{
	struct inf_tok_ids ids;
	struct inf_tok_text raw, text, streamed;
	struct inf_tok_stream s;
	size_t i;

	inf_tok_ids_init(&ids);
	inf_tok_text_init(&raw);
	inf_tok_text_init(&text);
	inf_tok_text_init(&streamed);
	if (inf_tok_encode(tok, (const char *)data, size, flags, &ids) != 0)
		abort();
	if (!(flags & INF_TOK_PARSE_SPECIAL))
		for (i = 0; i < ids.len; i++)
			if (inf_tok_is_special(tok, ids.ids[i]))
				abort();
	if (inf_tok_decode(tok, ids.ids, ids.len, INF_TOK_DECODE_RAW, &raw) !=
	        0 ||
	    raw.len != size || (size > 0 && memcmp(raw.text, data, size) != 0))
		abort();
	if (inf_tok_decode(tok, ids.ids, ids.len, 0, &text) != 0 ||
	    !toktest_valid_utf8(text.text, text.len))
		abort();
	if (toktest_valid_utf8((const char *)data, size) &&
	    (text.len != size ||
	        (size > 0 && memcmp(text.text, data, size) != 0)))
		abort();
	inf_tok_stream_init(&s, tok, 0);
	for (i = 0; i < ids.len; i++)
		if (inf_tok_stream_push(&s, ids.ids[i], &streamed) != 0)
			abort();
	if (inf_tok_stream_flush(&s, &streamed) != 0 ||
	    streamed.len != text.len ||
	    (text.len > 0 && memcmp(streamed.text, text.text, text.len) != 0))
		abort();
	inf_tok_ids_free(&ids);
	inf_tok_text_free(&raw);
	inf_tok_text_free(&text);
	inf_tok_text_free(&streamed);
}

/* The first split step's hand matcher against PCRE2 itself. */
static void
check_fast_split(struct inf_tok *tok, const uint8_t *data, size_t size)
{
	static pcre2_match_data *md;
	const struct tok_stage *st = &tok->stages[0];
	PCRE2_SIZE *ov;
	size_t off, end;
	int rc;

	if (st->fast_digits == 0)
		abort(); /* both fixtures have a recognised regex */
	if (md == NULL && (md = pcre2_match_data_create(4, NULL)) == NULL)
		abort();
	for (off = 0; off < size; off++) {
		if (data[off] >= 0x80 ||
		    !inf_tok__fast_split(
		        data, size, off, st->fast_digits, &end))
			continue;
		rc = pcre2_match(st->re, data, size, off, 0, md, NULL);
		ov = pcre2_get_ovector_pointer(md);
		if (rc <= 0 || ov[0] != off || ov[1] != end) {
			fprintf(stderr,
			    "hand split at %zu ends at %zu, PCRE2 (%d) "
			    "[%zu, %zu)\n",
			    off, end, rc, (size_t)ov[0], (size_t)ov[1]);
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int i;

	load_once();
	for (i = 0; i < 2; i++) {
		check(toks[i], data, size, 0);
		check(toks[i], data, size, INF_TOK_PARSE_SPECIAL);
		check_fast_split(toks[i], data, size);
	}
	return 0;
}
