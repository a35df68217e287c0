/*
 * tests/unit/inference/test_tokenizer.c: inference/tokenizer.h against
 * both fixtures' reference.json (ids, ids with BOS, decode, Hugging Face's
 * lossy decode of the greedy tokens), plain text versus special-token
 * parsing, lossless round trips of arbitrary bytes, the streaming decoder,
 * the two merge loops agreeing, concurrent encoders, and the file forms
 * (pair merges, NFC). Temporary tokenizers are written to a fresh mkdtemp
 * folder each and nothing outside it is touched. Runs from the repo root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "inference/tok_internal.h"
#include "tests/unit/inference/toktest.h"

static const char *const fixtures[] = { "tests/fixtures/tiny-qwen2",
	"tests/fixtures/tiny-llama" };

static void
assert_ids_equal_json(
    const struct inf_tok_ids *ids, yyjson_val *want, const char *what)
{
	size_t i;

	if (ids->len != yyjson_arr_size(want))
		fail_msg("%s: %zu ids, reference has %zu", what, ids->len,
		    yyjson_arr_size(want));
	for (i = 0; i < ids->len; i++)
		if (ids->ids[i] !=
		    (int32_t)yyjson_get_sint(yyjson_arr_get(want, i)))
			fail_msg("%s: id %zu is %d, reference %lld", what, i,
			    ids->ids[i],
			    (long long)yyjson_get_sint(
			        yyjson_arr_get(want, i)));
}

/* Every prompt: ids, ids with BOS, special parsing changes nothing on
 * plain prompts, decode gives the text back, and the greedy tokens decode
 * to transformers' text (U+FFFD where the bytes are not UTF-8). */
static void
check_fixture(const char *dir)
{
	struct inf_tok *tok;
	struct inf_tok_ids ids;
	struct inf_tok_text text;
	yyjson_doc *ref = toktest_reference(dir);
	yyjson_val *prompts, *p, *greedy;
	size_t idx, max, i;
	char err[256];

	assert_int_equal(inf_tok_load(dir, &tok, err), 0);
	assert_int_equal(inf_tok_bos(tok), 0);
	assert_int_equal(inf_tok_eos(tok), 1);
	prompts = yyjson_obj_get(yyjson_doc_get_root(ref), "prompts");
	assert_true(yyjson_arr_size(prompts) >= 8);
	yyjson_arr_foreach(prompts, idx, max, p)
	{
		yyjson_val *t = yyjson_obj_get(p, "text");

		inf_tok_ids_init(&ids);
		inf_tok_text_init(&text);
		assert_int_equal(inf_tok_encode(tok, yyjson_get_str(t),
		                     yyjson_get_len(t), 0, &ids),
		    0);
		assert_ids_equal_json(
		    &ids, yyjson_obj_get(p, "ids"), yyjson_get_str(t));
		ids.len = 0;
		assert_int_equal(
		    inf_tok_encode(tok, yyjson_get_str(t), yyjson_get_len(t),
		        INF_TOK_ADD_BOS | INF_TOK_PARSE_SPECIAL, &ids),
		    0);
		assert_ids_equal_json(&ids,
		    yyjson_obj_get(p, "input_ids_with_bos"), yyjson_get_str(t));
		assert_int_equal(
		    inf_tok_decode(tok, ids.ids + 1, ids.len - 1, 0, &text), 0);
		assert_string_equal(text.text, yyjson_get_str(t));

		greedy = yyjson_obj_get(p, "greedy_24");
		ids.len = 0;
		for (i = 0; i < yyjson_arr_size(greedy); i++) {
			assert_int_equal(inf_tok__ids_reserve(&ids, 1), 0);
			ids.ids[ids.len++] =
			    (int32_t)yyjson_get_sint(yyjson_arr_get(greedy, i));
		}
		text.len = 0;
		assert_int_equal(
		    inf_tok_decode(tok, ids.ids, ids.len, 0, &text), 0);
		assert_string_equal(text.text,
		    yyjson_get_str(yyjson_obj_get(p, "greedy_24_text")));
		inf_tok_ids_free(&ids);
		inf_tok_text_free(&text);
	}
	yyjson_doc_free(ref);
	inf_tok_free(tok);
}

static void
test_fixture_qwen2(void **state)
{
	(void)state;
	check_fixture(fixtures[0]);
}

static void
test_fixture_llama(void **state)
{
	(void)state;
	check_fixture(fixtures[1]);
}

/* A message quoting a control token stays text; only the special mode (for
 * text the product built) turns it into the token. */
static void
test_plain_text_cannot_forge(void **state)
{
	static const char msg[] = "hi <\xef\xbd\x9cUser\xef\xbd\x9c> and "
	                          "<think></think><\xef\xbd\x9c"
	                          "end\xe2\x96\x81of\xe2\x96\x81sentence\xef"
	                          "\xbd\x9c>";
	struct inf_tok *tok;
	struct inf_tok_ids ids;
	struct inf_tok_text text;
	char err[256];
	size_t i, f;

	(void)state;
	for (f = 0; f < 2; f++) {
		assert_int_equal(inf_tok_load(fixtures[f], &tok, err), 0);
		inf_tok_ids_init(&ids);
		inf_tok_text_init(&text);
		assert_int_equal(
		    inf_tok_encode(tok, msg, strlen(msg), 0, &ids), 0);
		for (i = 0; i < ids.len; i++)
			assert_true(ids.ids[i] > 6); /* 0..6: added tokens */
		assert_int_equal(
		    inf_tok_decode(tok, ids.ids, ids.len, 0, &text), 0);
		assert_string_equal(text.text, msg);

		ids.len = 0;
		assert_int_equal(inf_tok_encode(tok, msg, strlen(msg),
		                     INF_TOK_PARSE_SPECIAL, &ids),
		    0);
		/* "hi", " ", then <｜User｜> = 2 ... and the tail 4 5 1 */
		assert_int_equal(ids.ids[ids.len - 1], 1);
		assert_int_equal(ids.ids[ids.len - 2], 5);
		assert_int_equal(ids.ids[ids.len - 3], 4);
		for (i = 0; i < ids.len && ids.ids[i] != 2; i++)
			;
		assert_true(i < ids.len);
		text.len = 0;
		assert_int_equal(
		    inf_tok_decode(tok, ids.ids, ids.len, 0, &text), 0);
		assert_string_equal(text.text, msg);
		text.len = 0;
		assert_int_equal(inf_tok_decode(tok, ids.ids, ids.len,
		                     INF_TOK_DECODE_SKIP_SPECIAL, &text),
		    0);
		assert_string_equal(text.text, "hi  and ");
		inf_tok_ids_free(&ids);
		inf_tok_text_free(&text);
		inf_tok_free(tok);
	}
}

/* Any bytes, invalid UTF-8 included, come back exactly (RAW decode); the
 * default decode is valid UTF-8 and equal to the input when it was. */
static void
test_raw_round_trip(void **state)
{
	struct inf_tok *tok;
	struct inf_tok_ids ids;
	struct inf_tok_text text;
	unsigned char buf[512];
	unsigned seed = 7;
	char err[256];
	int round, f;
	size_t i, n;

	(void)state;
	for (f = 0; f < 2; f++) {
		assert_int_equal(inf_tok_load(fixtures[f], &tok, err), 0);
		inf_tok_ids_init(&ids);
		inf_tok_text_init(&text);
		for (round = 0; round < 300; round++) {
			n = (size_t)(rand_r(&seed) % sizeof(buf));
			for (i = 0; i < n; i++)
				buf[i] = (unsigned char)(round % 3 == 0
				        ? rand_r(&seed)
				        : " a\xe6\xb7\xb1\xf0\x9f\x94\x90'\n1"
				              [rand_r(&seed) % 12]);
			ids.len = text.len = 0;
			assert_int_equal(
			    inf_tok_encode(tok, (char *)buf, n,
			        round & 1 ? INF_TOK_PARSE_SPECIAL : 0, &ids),
			    0);
			assert_int_equal(inf_tok_decode(tok, ids.ids, ids.len,
			                     INF_TOK_DECODE_RAW, &text),
			    0);
			assert_int_equal(text.len, n);
			assert_memory_equal(text.text, buf, n);
			text.len = 0;
			assert_int_equal(
			    inf_tok_decode(tok, ids.ids, ids.len, 0, &text), 0);
			assert_true(toktest_valid_utf8(text.text, text.len));
			if (toktest_valid_utf8((char *)buf, n)) {
				assert_int_equal(text.len, n);
				assert_memory_equal(text.text, buf, n);
			}
		}
		inf_tok_ids_free(&ids);
		inf_tok_text_free(&text);
		inf_tok_free(tok);
	}
}

/* The quadratic scan and the heap merge identically, on text and on long
 * runs where ties between equal pairs decide (leftmost first). */
/* Random strings from pieces chosen to hit every branch of the hand
 * matcher: letters that (?i) contractions need, digits, each kind of
 * white space, punctuation, and non-ASCII letters, digits, spaces, the
 * long s that (?i)'s matches, and a byte that is not UTF-8 at all. */
static size_t
random_split_text(unsigned char *buf, size_t cap, uint64_t *seed)
{
	static const char *const atoms[] = { "a", "Z", "s", "S", "l", "L", "e",
		"E", "r", "R", "v", "m", "d", "t", "T", "0", "7", "12345", "'",
		"'", " ", " ", "  ", "\t", "\n", "\r", "\v", "\f", ".", "(",
		"-", "\x01", "\x7f", "\xc3\xa9", "\xc5\xbf", "\xc2\xa0",
		"\xc2\x85", "\xd9\xa3", "\xe4\xb8\xad", "\xe2\x80\x94",
		"\xff" };
	size_t n = 0, k, want;
	const char *a;

	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	want = 1 + (size_t)(*seed >> 59); /* 1..32 atoms */
	while (want-- > 0) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		a = atoms[(*seed >> 33) % (sizeof(atoms) / sizeof(atoms[0]))];
		k = strlen(a);
		if (n + k > cap)
			break;
		memcpy(buf + n, a, k);
		n += k;
	}
	return n;
}

/* The hand matcher of the Qwen2 / Llama-3 split regex gives PCRE2's own
 * match wherever it decides, and whole encodes with and without it are
 * equal. */
static void
test_fast_split_matches_pcre2(void **state)
{
	unsigned char buf[256];
	struct inf_tok *tok, *slow;
	struct inf_tok_ids a, b;
	pcre2_match_data *md;
	PCRE2_SIZE *ov;
	uint64_t seed = 42;
	size_t n, off, end, decided = 0, asked = 0;
	char err[256];
	int f, i, rc;

	(void)state;
	for (f = 0; f < 2; f++) {
		assert_int_equal(inf_tok_load(fixtures[f], &tok, err), 0);
		assert_int_equal(inf_tok_load(fixtures[f], &slow, err), 0);
		assert_int_equal(tok->stages[0].fast_digits, f == 0 ? 1 : 3);
		slow->stages[0].fast_digits = 0;
		md = pcre2_match_data_create_from_pattern(
		    tok->stages[0].re, NULL);
		assert_non_null(md);
		inf_tok_ids_init(&a);
		inf_tok_ids_init(&b);
		for (i = 0; i < 20000; i++) {
			n = random_split_text(buf, sizeof(buf), &seed);
			for (off = 0; off < n; off++) {
				if (buf[off] >= 0x80)
					continue;
				asked++;
				if (!inf_tok__fast_split(buf, n, off,
				        tok->stages[0].fast_digits, &end))
					continue;
				decided++;
				rc = pcre2_match(tok->stages[0].re, buf, n, off,
				    0, md, NULL);
				assert_true(rc > 0);
				ov = pcre2_get_ovector_pointer(md);
				if (ov[0] != off || ov[1] != end)
					fail_msg("%s: at %zu of \"%.*s\": "
					         "PCRE2 [%zu, %zu), hand %zu",
					    fixtures[f], off, (int)n, buf,
					    (size_t)ov[0], (size_t)ov[1], end);
			}
			a.len = b.len = 0;
			assert_int_equal(
			    inf_tok_encode(tok, (char *)buf, n, 0, &a), 0);
			assert_int_equal(
			    inf_tok_encode(slow, (char *)buf, n, 0, &b), 0);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(
			    a.ids, b.ids, a.len * sizeof(int32_t));
		}
		pcre2_match_data_free(md);
		inf_tok_ids_free(&a);
		inf_tok_ids_free(&b);
		inf_tok_free(tok);
		inf_tok_free(slow);
	}
	/* most ASCII positions are decided by hand, not all */
	assert_true(decided > asked / 2 && decided < asked);
}

static void
test_merge_loops_agree(void **state)
{
	static const char *const pieces[] = { "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
		"      \n\n\n   ", "appliance", "derive(key, ctx)",
		"\xe6\xb7\xb1\xe5\xba\xa6\xe6\x8e\xa2\xe7\xb4\xa2\xe8\xa7\xa3"
		"\xe9\x94\x81",
		"eeeeeeeeeerrrrrrrrrreeeeeeerrrrr",
		"ssssssssssssssssssssssss"
		"sssssssssssssssssssssssssssssssss" };
	struct inf_tok *tok;
	struct inf_tok_ids a, b;
	struct tok_ws *ws;
	char err[256];
	int slot, f;
	size_t i;

	(void)state;
	for (f = 0; f < 2; f++) {
		assert_int_equal(inf_tok_load(fixtures[f], &tok, err), 0);
		assert_int_equal(inf_tok__ws_get(tok, &ws, &slot), 0);
		inf_tok_ids_init(&a);
		inf_tok_ids_init(&b);
		for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
			const unsigned char *p =
			    (const unsigned char *)pieces[i];

			a.len = b.len = 0;
			assert_int_equal(inf_tok__bpe(tok, ws, p,
			                     strlen(pieces[i]), 0, 1, &a),
			    0);
			assert_int_equal(inf_tok__bpe(tok, ws, p,
			                     strlen(pieces[i]), 0, 2, &b),
			    0);
			assert_int_equal(a.len, b.len);
			assert_memory_equal(
			    a.ids, b.ids, a.len * sizeof(int32_t));
			assert_true(a.len < strlen(pieces[i]));
		}
		inf_tok__ws_put(tok, ws, slot);
		inf_tok_ids_free(&a);
		inf_tok_ids_free(&b);
		inf_tok_free(tok);
	}
}

/* The streaming decoder: after every push the text so far is valid UTF-8,
 * nothing is emitted mid-character, and push*+flush == decode(), on the
 * fixtures' emoji and CJK prompts and on bytes that never become UTF-8. */
static void
check_stream(struct inf_tok *tok, const int32_t *ids, size_t n)
{
	struct inf_tok_stream s;
	struct inf_tok_text whole, streamed;
	size_t i, before;

	inf_tok_text_init(&whole);
	inf_tok_text_init(&streamed);
	assert_int_equal(inf_tok_decode(tok, ids, n, 0, &whole), 0);
	inf_tok_stream_init(&s, tok, 0);
	for (i = 0; i < n; i++) {
		before = streamed.len;
		assert_int_equal(inf_tok_stream_push(&s, ids[i], &streamed), 0);
		assert_true(toktest_valid_utf8(
		    streamed.text + before, streamed.len - before));
	}
	assert_int_equal(inf_tok_stream_flush(&s, &streamed), 0);
	assert_int_equal(streamed.len, whole.len);
	assert_memory_equal(streamed.text, whole.text, whole.len);
	inf_tok_text_free(&whole);
	inf_tok_text_free(&streamed);
}

static void
test_stream_decode(void **state)
{
	static const char *const texts[] = {
		"Emoji \xf0\x9f\x94\x90 and caf\xc3\xa9",
		"\xe6\xb7\xb1\xe5\xba\xa6\xe6\x8e\xa2\xe7\xb4\xa2\xef\xbc\x9a"
		"\xe8\xa7\xa3\xe9\x94\x81",
		"\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd x",
		"bad \xf0\x9f\x94 then \xed\xa0\x80 and \xc0\xaf \xff end \xe6",
	};
	struct inf_tok *tok;
	struct inf_tok_ids ids;
	struct inf_tok_text text;
	char err[256];
	size_t i, emitted_mid = 0;
	int f;

	(void)state;
	for (f = 0; f < 2; f++) {
		assert_int_equal(inf_tok_load(fixtures[f], &tok, err), 0);
		inf_tok_ids_init(&ids);
		for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			ids.len = 0;
			assert_int_equal(inf_tok_encode(tok, texts[i],
			                     strlen(texts[i]), 0, &ids),
			    0);
			check_stream(tok, ids.ids, ids.len);
		}
		/* 🔐 is "ĠðŁ", "Ķ", "Ĳ": the first two emit nothing */
		{
			struct inf_tok_stream s;
			int32_t emoji[3];

			emoji[0] = inf_tok_find(tok, " \xf0\x9f", 3);
			emoji[1] = inf_tok_find(tok, "\x94", 1);
			emoji[2] = inf_tok_find(tok, "\x90", 1);
			inf_tok_text_init(&text);
			inf_tok_stream_init(&s, tok, 0);
			assert_int_equal(
			    inf_tok_stream_push(&s, emoji[0], &text), 0);
			assert_string_equal(text.text, " ");
			assert_int_equal(
			    inf_tok_stream_push(&s, emoji[1], &text), 0);
			emitted_mid += text.len - 1;
			assert_int_equal(
			    inf_tok_stream_push(&s, emoji[2], &text), 0);
			assert_string_equal(text.text, " \xf0\x9f\x94\x90");
			assert_int_equal(inf_tok_stream_flush(&s, &text), 0);
			assert_string_equal(text.text, " \xf0\x9f\x94\x90");
			/* a cut character at the end becomes U+FFFD */
			assert_int_equal(
			    inf_tok_stream_push(&s, emoji[0], &text), 0);
			assert_int_equal(inf_tok_stream_flush(&s, &text), 0);
			assert_string_equal(
			    text.text, " \xf0\x9f\x94\x90 \xef\xbf\xbd");
			inf_tok_text_free(&text);
		}
		inf_tok_ids_free(&ids);
		inf_tok_free(tok);
	}
	assert_int_equal(emitted_mid, 0);
}

struct enc_thread {
	struct inf_tok *tok;
	const char *text;
	struct inf_tok_ids want;
	int mismatches;
};

static void *
enc_thread_run(void *arg)
{
	struct enc_thread *t = arg;
	struct inf_tok_ids ids;
	int i;

	inf_tok_ids_init(&ids);
	for (i = 0; i < 50; i++) {
		ids.len = 0;
		if (inf_tok_encode(t->tok, t->text, strlen(t->text), 0, &ids) !=
		        0 ||
		    ids.len != t->want.len ||
		    memcmp(ids.ids, t->want.ids, ids.len * sizeof(int32_t)))
			t->mismatches++;
	}
	inf_tok_ids_free(&ids);
	return NULL;
}

/* More threads than shared workspaces: some encode in private ones; all
 * get the same ids as a lone encoder. */
static void
test_concurrent_encoders(void **state)
{
	enum { N = TOK_WS_SLOTS + 4 };
	struct enc_thread t[N];
	pthread_t th[N];
	struct inf_tok *tok;
	char err[256], *text;
	int i;

	(void)state;
	text = toktest_mixed_text(20000);
	assert_int_equal(inf_tok_load(fixtures[0], &tok, err), 0);
	for (i = 0; i < N; i++) {
		t[i].tok = tok;
		t[i].text = text;
		t[i].mismatches = 0;
		inf_tok_ids_init(&t[i].want);
		assert_int_equal(
		    inf_tok_encode(tok, text, strlen(text), 0, &t[i].want), 0);
	}
	for (i = 0; i < N; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, enc_thread_run, &t[i]), 0);
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].mismatches, 0);
		inf_tok_ids_free(&t[i].want);
	}
	inf_tok_free(tok);
	free(text);
}

/* Forgetting after every encode (the daemon's setting) gives the same
 * ids as keeping the piece cache, on the first call, on the next ones, and
 * on a text with more distinct pieces than the cache holds (its resets). */
static void
test_forget_same_ids(void **state)
{
	static const size_t sizes[] = { 2000, 400000 };
	struct inf_tok_ids kept, forgot;
	struct inf_tok *tok;
	char err[256], *text;
	size_t s;
	int round;

	(void)state;
	assert_int_equal(inf_tok_load(fixtures[0], &tok, err), 0);
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		text = toktest_mixed_text(sizes[s]);
		inf_tok_set_forget(tok, 0);
		inf_tok_ids_init(&kept);
		assert_int_equal(
		    inf_tok_encode(tok, text, strlen(text), 0, &kept), 0);
		assert_true(kept.len > 0);
		inf_tok_set_forget(tok, 1);
		for (round = 0; round < 2; round++) {
			inf_tok_ids_init(&forgot);
			assert_int_equal(
			    inf_tok_encode(tok, text, strlen(text), 0, &forgot),
			    0);
			assert_int_equal(forgot.len, kept.len);
			assert_memory_equal(
			    forgot.ids, kept.ids, kept.len * sizeof(*kept.ids));
			inf_tok_ids_free(&forgot);
		}
		inf_tok_ids_free(&kept);
		free(text);
	}
	inf_tok_free(tok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_qwen2),
		cmocka_unit_test(test_fixture_llama),
		cmocka_unit_test(test_plain_text_cannot_forge),
		cmocka_unit_test(test_raw_round_trip),
		cmocka_unit_test(test_merge_loops_agree),
		cmocka_unit_test(test_fast_split_matches_pcre2),
		cmocka_unit_test(test_stream_decode),
		cmocka_unit_test(test_concurrent_encoders),
		cmocka_unit_test(test_forget_same_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
