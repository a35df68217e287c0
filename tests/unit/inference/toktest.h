/*
 * tests/unit/inference/toktest.h: helpers shared by the tokenizer and chat
 * tests: reading a fixture's reference.json, a UTF-8 validity check that
 * does not trust the code under test, a mixed text generator, and
 * temporary model folders (mkdtemp under $SR_TEST_TMP or /tmp) that are
 * removed file by file. Never touches anything outside its own folders.
 */
#ifndef SR_TESTS_TOKTEST_H
#define SR_TESTS_TOKTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yyjson.h>

#include "tests/unit/inference/utf8check.h"

static inline yyjson_doc *
toktest_reference(const char *dir)
{
	char path[512];
	yyjson_doc *doc;

	snprintf(path, sizeof(path), "%s/reference.json", dir);
	doc = yyjson_read_file(path, 0, NULL, NULL);
	if (doc == NULL) {
		fprintf(
		    stderr, "cannot read %s (run from the repo root)\n", path);
		abort();
	}
	return doc;
}

/* At least n bytes of English, code, digits, CJK and emoji, NUL-ended;
 * the caller frees it. */
static inline char *
toktest_mixed_text(size_t n)
{
	static const char *const parts[] = {
		"The appliance keeps its root keys in the HSM and derives "
		"app keys. ",
		"I'm sure they'll say it's fine, we've done it 1234567 "
		"times.\n",
		"def derive(key, ctx):\n    return hmac.new(key, ctx, "
		"'sha256').digest()\n",
		"\xe6\xb7\xb1\xe5\xba\xa6\xe6\x8e\xa2\xe7\xb4\xa2\xef\xbc\x9a"
		"\xe8\xa7\xa3\xe9\x94\x81"
		"DeepSeek\xe5\xae\x89\xe5\x85\xa8"
		"\xe6\x8e\xa5\xe5\x85\xa5\n",
		"Emoji \xf0\x9f\x94\x90 and caf\xc3\xa9    with  spaces\n\n\t",
		"for (i = 0; i < 4096; i++) { sum += a[i] * 31; }\n",
	};
	size_t len = 0, i = 0, k;
	char *s = malloc(n + 256);

	if (s == NULL)
		abort();
	while (len < n) {
		k = strlen(parts[i % 6]);
		memcpy(s + len, parts[i % 6], k);
		len += k;
		len += (size_t)sprintf(s + len, "%zu ", i * 7919 % 100003);
		i++;
	}
	s[len] = '\0';
	return s;
}

static inline char *
toktest_mkdir(void)
{
	const char *base = getenv("SR_TEST_TMP");
	char *dir = malloc(512);

	if (dir == NULL)
		abort();
	snprintf(dir, 512, "%s/tok-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	return dir;
}

static inline void
toktest_write(const char *dir, const char *name, const char *text)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/* Remove the files these tests write, then the folder, and free it. */
static inline void
toktest_rmdir(char *dir)
{
	static const char *const names[] = { "tokenizer.json",
		"tokenizer_config.json", "chat_template.jinja" };
	char path[600];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
	free(dir);
}

/* Needs cmocka (included first by the test). */
#define TOKTEST_FIXTURE "tests/fixtures/tiny-qwen2"

/* A change to the fixture's tokenizer.json: `key` of the object at `path`
 * (dot-separated, "" for the root) set to the JSON `value`, or removed
 * when value is NULL. */
struct toktest_edit {
	const char *path;
	const char *key;
	const char *value;
};

static inline yyjson_mut_val *
toktest_walk(yyjson_mut_val *v, const char *path)
{
	char buf[128], *save = NULL, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, ".", &save); part != NULL;
	     part = strtok_r(NULL, ".", &save))
		v = yyjson_mut_is_arr(v) ? yyjson_mut_arr_get(v, atoi(part))
		                         : yyjson_mut_obj_get(v, part);
	assert_non_null(v);
	return v;
}

/* Write the fixture's tokenizer.json with the edits into a new folder. */
static inline char *
toktest_variant(const struct toktest_edit *edits, size_t n)
{
	yyjson_doc *src, *snip;
	yyjson_mut_doc *doc;
	yyjson_mut_val *obj, *val;
	char *dir = toktest_mkdir(), path[600];
	size_t i;

	src =
	    yyjson_read_file(TOKTEST_FIXTURE "/tokenizer.json", 0, NULL, NULL);
	assert_non_null(src);
	doc = yyjson_doc_mut_copy(src, NULL);
	for (i = 0; i < n; i++) {
		obj = toktest_walk(yyjson_mut_doc_get_root(doc), edits[i].path);
		val = NULL;
		if (edits[i].value != NULL) {
			snip = yyjson_read(
			    edits[i].value, strlen(edits[i].value), 0);
			assert_non_null(snip);
			val =
			    yyjson_val_mut_copy(doc, yyjson_doc_get_root(snip));
			yyjson_doc_free(snip);
		}
		yyjson_mut_obj_remove_key(obj, edits[i].key);
		if (val != NULL)
			yyjson_mut_obj_put(
			    obj, yyjson_mut_strcpy(doc, edits[i].key), val);
	}
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	assert_true(yyjson_mut_write_file(path, doc, 0, NULL, NULL));
	yyjson_mut_doc_free(doc);
	yyjson_doc_free(src);
	return dir;
}

#endif /* SR_TESTS_TOKTEST_H */
