/*
 * tests/unit/inference/test_tok_files.c: the forms a tokenizer.json may
 * take and the ones that are refused. Variants of the Qwen2 fixture's file
 * are written to a fresh mkdtemp folder each: merges as "a b" strings
 * (same ids as the pair form), an NFC normalizer (alone and in a
 * Sequence), ignore_merges, and every broken file with its own message and
 * code. Never touches anything outside its own folders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "inference/tokenizer.h"
#include "tests/unit/inference/toktest.h"

static void
encode(struct inf_tok *tok, const char *text, struct inf_tok_ids *ids)
{
	ids->len = 0;
	assert_int_equal(inf_tok_encode(tok, text, strlen(text), 0, ids), 0);
}

static void
assert_same_ids(const struct inf_tok_ids *a, const struct inf_tok_ids *b)
{
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->ids, b->ids, a->len * sizeof(int32_t));
}

/* Merges written as "a b" strings give the same ids as the pair form on
 * every reference prompt. */
static void
test_string_merges(void **state)
{
	yyjson_doc *src =
	    yyjson_read_file(TOKTEST_FIXTURE "/tokenizer.json", 0, NULL, NULL);
	yyjson_doc *ref = toktest_reference(TOKTEST_FIXTURE);
	yyjson_val *merges, *m, *prompts, *p;
	yyjson_mut_doc *doc;
	yyjson_mut_val *arr;
	struct inf_tok *pairs, *strings;
	struct inf_tok_ids a, b;
	char err[256], *dir, path[600], line[256];
	size_t idx, max;

	(void)state;
	assert_non_null(src);
	doc = yyjson_doc_mut_copy(src, NULL);
	arr = yyjson_mut_arr(doc);
	merges = yyjson_obj_get(
	    yyjson_obj_get(yyjson_doc_get_root(src), "model"), "merges");
	yyjson_arr_foreach(merges, idx, max, m)
	{
		assert_true(yyjson_is_arr(m)); /* the fixture has pairs */
		snprintf(line, sizeof(line), "%s %s",
		    yyjson_get_str(yyjson_arr_get(m, 0)),
		    yyjson_get_str(yyjson_arr_get(m, 1)));
		yyjson_mut_arr_add_strcpy(doc, arr, line);
	}
	yyjson_mut_obj_remove_key(
	    toktest_walk(yyjson_mut_doc_get_root(doc), "model"), "merges");
	yyjson_mut_obj_put(toktest_walk(yyjson_mut_doc_get_root(doc), "model"),
	    yyjson_mut_str(doc, "merges"), arr);
	dir = toktest_mkdir();
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	assert_true(yyjson_mut_write_file(path, doc, 0, NULL, NULL));

	assert_int_equal(inf_tok_load(TOKTEST_FIXTURE, &pairs, err), 0);
	assert_int_equal(inf_tok_load(dir, &strings, err), 0);
	inf_tok_ids_init(&a);
	inf_tok_ids_init(&b);
	prompts = yyjson_obj_get(yyjson_doc_get_root(ref), "prompts");
	yyjson_arr_foreach(prompts, idx, max, p)
	{
		encode(pairs, yyjson_get_str(yyjson_obj_get(p, "text")), &a);
		encode(strings, yyjson_get_str(yyjson_obj_get(p, "text")), &b);
		assert_same_ids(&a, &b);
	}
	/* without tokenizer_config.json there is no BOS or EOS */
	assert_int_equal(inf_tok_bos(strings), -1);
	assert_int_equal(inf_tok_eos(strings), -1);
	inf_tok_ids_free(&a);
	inf_tok_ids_free(&b);
	inf_tok_free(pairs);
	inf_tok_free(strings);
	yyjson_mut_doc_free(doc);
	yyjson_doc_free(src);
	yyjson_doc_free(ref);
	toktest_rmdir(dir);
}

/* With NFC, a decomposed "é" (e + U+0301) encodes as the composed one;
 * without it, it does not. Invalid UTF-8 is refused under NFC. */
static void
check_nfc(const char *normalizer)
{
	static const char composed[] = "caf\xc3\xa9 \xe6\xb7\xb1";
	static const char decomposed[] = "cafe\xcc\x81 \xe6\xb7\xb1";
	const struct toktest_edit e = { "", "normalizer", normalizer };
	struct inf_tok *nfc, *plain;
	struct inf_tok_ids a, b;
	char err[256], *dir = toktest_variant(&e, 1);

	assert_int_equal(inf_tok_load(dir, &nfc, err), 0);
	assert_int_equal(inf_tok_load(TOKTEST_FIXTURE, &plain, err), 0);
	inf_tok_ids_init(&a);
	inf_tok_ids_init(&b);
	encode(nfc, composed, &a);
	encode(nfc, decomposed, &b);
	assert_same_ids(&a, &b);
	encode(plain, decomposed, &b);
	assert_true(a.len != b.len ||
	    memcmp(a.ids, b.ids, a.len * sizeof(int32_t)) != 0);
	assert_int_equal(inf_tok_encode(nfc, "ab\xff\xe9", 4, 0, &a), -EILSEQ);
	assert_int_equal(inf_tok_encode(nfc, "plain ascii", 11, 0, &a), 0);
	inf_tok_ids_free(&a);
	inf_tok_ids_free(&b);
	inf_tok_free(nfc);
	inf_tok_free(plain);
	toktest_rmdir(dir);
}

static void
test_nfc(void **state)
{
	(void)state;
	check_nfc("{\"type\": \"NFC\"}");
	check_nfc("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": "
	          "\"NFC\"}]}");
}

/* ignore_merges: a pre-token that is a vocabulary entry is that entry,
 * even where the merges would not build it ("llo" is in the vocab). */
static void
test_ignore_merges(void **state)
{
	const struct toktest_edit e = { "model", "ignore_merges", "true" };
	struct inf_tok *tok;
	struct inf_tok_ids ids;
	char err[256], *dir = toktest_variant(&e, 1);
	int32_t hello;

	(void)state;
	assert_int_equal(inf_tok_load(dir, &tok, err), 0);
	inf_tok_ids_init(&ids);
	hello = inf_tok_find(tok, "llo", 3);
	assert_true(hello > 6);
	encode(tok, "llo", &ids);
	assert_int_equal(ids.len, 1);
	assert_int_equal(ids.ids[0], hello);
	/* never an added token, though "<think>" is in the vocab too */
	encode(tok, "<think>", &ids);
	assert_true(ids.len > 1);
	inf_tok_ids_free(&ids);
	inf_tok_free(tok);
	toktest_rmdir(dir);
}

struct broken {
	struct toktest_edit e;
	int rc;
	const char *msg;
};

/* Each broken tokenizer.json is refused with its own code and message. */
static void
test_broken_tokenizer_json(void **state)
{
	static const struct broken cases[] = {
		{ { "", "model", NULL }, -EINVAL, "no \"model\" object" },
		{ { "model", "type", "\"WordPiece\"" }, -ENOTSUP,
		    "model.type \"WordPiece\" is not supported" },
		{ { "model", "type", NULL }, -EINVAL, "model.type is missing" },
		{ { "model", "vocab", "[1, 2]" }, -EINVAL,
		    "model.vocab must be an object" },
		{ { "model", "vocab", "{\"a\": 0, \"b\": -3}" }, -EINVAL,
		    "model.vocab[\"b\"]: the id must be a non-negative" },
		{ { "model", "merges", "[[\"e\", \"r\"], [\"zz\", \"q\"]]" },
		    -EINVAL, "model.merges[1]: \"zz\" is not in the vocab" },
		{ { "model", "merges", "[\"e r\", \"q\"]" }, -EINVAL,
		    "model.merges[1]: \"q\" is not two tokens" },
		{ { "model", "merges", "[\"e r\", 7]" }, -EINVAL,
		    "model.merges[1] must be" },
		{ { "model", "byte_fallback", "true" }, -ENOTSUP,
		    "byte_fallback" },
		{ { "", "normalizer", "{\"type\": \"Lowercase\"}" }, -ENOTSUP,
		    "normalizer type \"Lowercase\" is not supported" },
		{ { "", "pre_tokenizer", "{\"type\": \"Whitespace\"}" },
		    -ENOTSUP,
		    "pre_tokenizer: pre-tokenizer type \"Whitespace\" is not "
		    "supported" },
		{ { "", "pre_tokenizer", NULL }, -ENOTSUP,
		    "pre_tokenizer is missing" },
		{ { "pre_tokenizer.pretokenizers.0.pattern", "Regex",
		      "\"(?i:'s|[a\"" },
		    -EINVAL,
		    "pre_tokenizer.pretokenizers[0]: the regex \"(?i:'s|[a\" "
		    "does not compile: " },
		{ { "pre_tokenizer.pretokenizers.0", "behavior",
		      "\"MergedWithNext\"" },
		    -ENOTSUP, "Split behavior \"MergedWithNext\" is not" },
		{ { "pre_tokenizer", "pretokenizers",
		      "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
		      "\"behavior\": \"Isolated\"}]" },
		    -ENOTSUP, "pre_tokenizer has no ByteLevel step" },
		{ { "", "decoder", "{\"type\": \"WordPiece\"}" }, -ENOTSUP,
		    "decoder type \"WordPiece\" is not supported" },
		{ { "", "added_tokens", "[{\"id\": 3}]" }, -EINVAL,
		    "added_tokens[0] needs an \"id\" and a non-empty" },
	};
	struct inf_tok *tok;
	char err[256], *dir;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dir = toktest_variant(&cases[i].e, 1);
		err[0] = '\0';
		rc = inf_tok_load(dir, &tok, err);
		if (rc != cases[i].rc || strstr(err, cases[i].msg) == NULL ||
		    strstr(err, "tokenizer.json: ") == NULL)
			fail_msg("case %zu: rc %d, err \"%s\"; want %d and "
			         "\"%s\"",
			    i, rc, err, cases[i].rc, cases[i].msg);
		assert_null(tok);
		toktest_rmdir(dir);
	}
}

/* Files that are not JSON say where (FILE:LINE:COL); a missing file is
 * -ENOENT; a config naming an unknown BOS is refused. */
static void
test_broken_files(void **state)
{
	struct inf_tok *tok;
	char err[256], *dir = toktest_mkdir(), want[600];
	int rc;

	(void)state;
	rc = inf_tok_load(dir, &tok, err);
	assert_int_equal(rc, -ENOENT);
	snprintf(want, sizeof(want), "%s/tokenizer.json: ", dir);
	assert_non_null(strstr(err, want));

	toktest_write(dir, "tokenizer.json",
	    "{\n  \"model\": {\n    \"type\": \"BPE\",,\n  }\n}\n");
	rc = inf_tok_load(dir, &tok, err);
	assert_int_equal(rc, -EINVAL);
	snprintf(want, sizeof(want), "%s/tokenizer.json:3:", dir);
	if (strstr(err, want) == NULL || strstr(err, "bad JSON") == NULL)
		fail_msg("err \"%s\"", err);
	toktest_rmdir(dir);

	{
		const struct toktest_edit e = { "", "version", "\"1.0\"" };

		dir = toktest_variant(&e, 1);
	}
	toktest_write(
	    dir, "tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
	rc = inf_tok_load(dir, &tok, err);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err,
	    "tokenizer_config.json: bos_token "
	    "\"<nope>\" is not a token"));
	toktest_write(dir, "tokenizer_config.json", "{\"bos_token\": [}");
	rc = inf_tok_load(dir, &tok, err);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "tokenizer_config.json:1:"));
	toktest_write(dir, "tokenizer_config.json",
	    "{\"bos_token\": {\"content\": \"</think>\"}, \"eos_token\": null, "
	    "\"add_bos_token\": true}");
	assert_int_equal(inf_tok_load(dir, &tok, err), 0);
	assert_int_equal(inf_tok_bos(tok), 5);
	assert_int_equal(inf_tok_eos(tok), -1);
	assert_int_equal(inf_tok_add_bos(tok), 1);
	inf_tok_free(tok);
	toktest_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string_merges),
		cmocka_unit_test(test_nfc),
		cmocka_unit_test(test_ignore_merges),
		cmocka_unit_test(test_broken_tokenizer_json),
		cmocka_unit_test(test_broken_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
