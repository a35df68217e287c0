/*
 * tests/unit/inference/test_load.c: a corpus of broken model folders, each
 * built in a fresh mkdtemp folder from a copy of a fixture and broken in
 * one way (truncated file, overlapping offsets, a hole, a header size too
 * big, a missing tensor, a wrong shape, bad JSON, another architecture,
 * sliding window on, an unknown rope type, unknown dtypes, a missing
 * shard...), each refused with its own code and message; and the good
 * fixtures' description. It writes only inside its temp folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yyjson.h>

#include "inference/inference.h"

struct corpus {
	char dir[64];
};

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* A fresh copy of a fixture's model files in the temp folder. */
static void
copy_fixture(struct corpus *c, const char *fixture)
{
	char from[512], to[512];
	struct dirent *e;
	DIR *d = opendir(fixture);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    strcmp(e->d_name, "reference.json") == 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", fixture, e->d_name);
		snprintf(to, sizeof(to), "%s/%s", c->dir, e->d_name);
		copy_file(from, to);
	}
	closedir(d);
}

static void
empty_dir(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static int
corpus_setup(void **state)
{
	struct corpus *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/sr-model-XXXXXX");
	if (mkdtemp(c->dir) == NULL) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int
corpus_teardown(void **state)
{
	struct corpus *c = *state;

	empty_dir(c->dir);
	rmdir(c->dir);
	free(c);
	return 0;
}

/* Open must fail with @p code and a message holding each needle. */
static void
refused(struct corpus *c, int code, const char *n1, const char *n2)
{
	struct inf_open_opts opts = { NULL, 1 };
	struct inf_model *m = (struct inf_model *)1;
	char err[INF_ERR_MAX];
	int rc = inf_model_open(c->dir, &opts, &m, err);

	if (rc != code)
		fail_msg("expected %s, got %s: %s", sr_errname(code),
		    sr_errname(rc), err);
	assert_null(m);
	if (strstr(err, n1) == NULL || (n2 != NULL && strstr(err, n2) == NULL))
		fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err, n1,
		    n2 ? n2 : "");
}

static void
write_text(struct corpus *c, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Edit one key of config.json (the value is JSON text; NULL removes). */
static void
config_set(struct corpus *c, const char *key, const char *json)
{
	char path[512];
	yyjson_doc *doc;
	yyjson_mut_doc *m;
	yyjson_mut_val *root;
	char *text;

	snprintf(path, sizeof(path), "%s/config.json", c->dir);
	doc = yyjson_read_file(path, 0, NULL, NULL);
	assert_non_null(doc);
	m = yyjson_doc_mut_copy(doc, NULL);
	root = yyjson_mut_doc_get_root(m);
	yyjson_mut_obj_remove_key(root, key);
	if (json != NULL) {
		yyjson_doc *v = yyjson_read(json, strlen(json), 0);

		assert_non_null(v);
		yyjson_mut_obj_add_val(m, root, key,
		    yyjson_val_mut_copy(m, yyjson_doc_get_root(v)));
		yyjson_doc_free(v);
	}
	text = yyjson_mut_write(m, YYJSON_WRITE_PRETTY, NULL);
	write_text(c, "config.json", text);
	free(text);
	yyjson_mut_doc_free(m);
	yyjson_doc_free(doc);
}

typedef void header_edit_fn(yyjson_mut_doc *m, yyjson_mut_val *root);

/* Rewrite a safetensors file's header through @p edit, keeping the data
 * bytes, padded with spaces to 8 like the reference writer. */
static void
header_edit(struct corpus *c, const char *file, header_edit_fn *edit)
{
	char path[512];
	unsigned char *buf, len8[8];
	uint64_t n = 0, hn;
	size_t size, tl;
	yyjson_doc *doc;
	yyjson_mut_doc *m;
	char *text;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/%s", c->dir, file);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = (size_t)ftell(f);
	rewind(f);
	buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, size, f), size);
	fclose(f);
	for (i = 0; i < 8; i++)
		n |= (uint64_t)buf[i] << (8 * i);
	doc = yyjson_read((char *)buf + 8, n, 0);
	assert_non_null(doc);
	m = yyjson_doc_mut_copy(doc, NULL);
	edit(m, yyjson_mut_doc_get_root(m));
	text = yyjson_mut_write(m, 0, &tl);
	hn = (tl + 7) & ~(uint64_t)7;
	for (i = 0; i < 8; i++)
		len8[i] = (unsigned char)(hn >> (8 * i));
	f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(len8, 1, 8, f);
	fwrite(text, 1, tl, f);
	for (; tl < hn; tl++)
		fputc(' ', f);
	fwrite(buf + 8 + n, 1, size - 8 - n, f);
	assert_int_equal(fclose(f), 0);
	free(text);
	free(buf);
	yyjson_mut_doc_free(m);
	yyjson_doc_free(doc);
}

static void
set_offsets(
    yyjson_mut_doc *m, yyjson_mut_val *root, const char *name, int64_t delta)
{
	yyjson_mut_val *t = yyjson_mut_obj_get(root, name);
	yyjson_mut_val *o = yyjson_mut_obj_get(t, "data_offsets");
	uint64_t b = yyjson_mut_get_uint(yyjson_mut_arr_get(o, 0));
	uint64_t e = yyjson_mut_get_uint(yyjson_mut_arr_get(o, 1));

	assert_non_null(o);
	yyjson_mut_arr_clear(o);
	yyjson_mut_arr_add_uint(m, o, b + delta);
	yyjson_mut_arr_add_uint(m, o, e + delta);
}

/* The fixture's layout puts model.norm.weight after other tensors, so
 * moving it opens a hole or an overlap. */
static void
edit_overlap(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	set_offsets(m, root, "model.norm.weight", -2);
}

static void
edit_hole(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	set_offsets(m, root, "model.norm.weight", 2);
}

static void
edit_rename_norm(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	yyjson_mut_obj_rename_key(
	    m, root, "model.norm.weight", "model.norm.weight_old");
}

static void
edit_swap_shape(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	yyjson_mut_val *t =
	    yyjson_mut_obj_get(root, "model.layers.0.mlp.gate_proj.weight");
	yyjson_mut_val *s = yyjson_mut_obj_get(t, "shape");
	uint64_t a = yyjson_mut_get_uint(yyjson_mut_arr_get(s, 0));
	uint64_t b = yyjson_mut_get_uint(yyjson_mut_arr_get(s, 1));

	yyjson_mut_arr_clear(s);
	yyjson_mut_arr_add_uint(m, s, b);
	yyjson_mut_arr_add_uint(m, s, a);
}

static void
set_dtype(yyjson_mut_doc *m, yyjson_mut_val *root, const char *dt)
{
	yyjson_mut_val *t =
	    yyjson_mut_obj_get(root, "model.layers.1.self_attn.k_proj.weight");

	yyjson_mut_obj_put(
	    t, yyjson_mut_str(m, "dtype"), yyjson_mut_str(m, dt));
}

static void
edit_dtype_i16(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	set_dtype(m, root, "I16");
}

static void
edit_dtype_q4(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	set_dtype(m, root, "Q4");
}

static void
test_good_fixtures(void **state)
{
	struct inf_model *m;
	const struct inf_model_info *in;
	char err[INF_ERR_MAX];

	(void)state;
	assert_int_equal(
	    inf_model_open("tests/fixtures/tiny-qwen2", NULL, &m, err), 0);
	in = inf_model_info(m);
	assert_int_equal(in->arch, INF_ARCH_QWEN2);
	assert_int_equal(in->n_layers, 4);
	assert_int_equal(in->head_dim, 32);
	assert_int_equal(in->qkv_bias, 1);
	assert_int_equal(in->o_bias, 0);
	assert_int_equal(in->n_eos, 1);
	assert_int_equal(in->eos_ids[0], 1);
	assert_string_equal(in->backend, "cpu");
	assert_true(in->decode_bytes < in->weight_bytes);
	inf_model_close(m);
	assert_int_equal(
	    inf_model_open("tests/fixtures/tiny-llama", NULL, &m, err), 0);
	in = inf_model_info(m);
	assert_int_equal(in->arch, INF_ARCH_LLAMA);
	assert_int_equal(in->n_kv_heads, 3);
	assert_true(in->rope_theta == 500000.0);
	assert_int_equal(in->qkv_bias, 0);
	/* 477600 parameters in BF16, as the index's metadata says */
	assert_true(in->weight_bytes == 955200);
	inf_model_close(m);
}

static void
test_broken_safetensors(void **state)
{
	struct corpus *c = *state;
	char path[512];
	unsigned char big[8] = { 0x00, 0xc2, 0xeb, 0x0b, 0, 0, 0, 0 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/model.safetensors", c->dir);
	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	assert_int_equal(truncate(path, 2008568 - 100), 0);
	refused(c, INF_EFORMAT, "model.safetensors: the tensors end at byte",
	    "truncated");
	assert_int_equal(truncate(path, 5), 0);
	refused(c, INF_EFORMAT, "shorter than the 8-byte header", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	header_edit(c, "model.safetensors", edit_overlap);
	refused(c, INF_EFORMAT, "tensor model.norm.weight",
	    "overlap the previous tensor");

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	header_edit(c, "model.safetensors", edit_hole);
	refused(c, INF_EFORMAT, "tensor model.norm.weight",
	    "leave a hole of 2 bytes");

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	f = fopen(path, "r+b");
	assert_non_null(f);
	fwrite(big, 1, 8, f); /* 200 000 000 */
	fclose(f);
	refused(
	    c, INF_EFORMAT, "header size 200000000 is above the limit", NULL);
	big[1] = 0x10; /* 0x03f01000: within the limit, past the end */
	big[2] = 0xf0;
	big[3] = 0x03;
	f = fopen(path, "r+b");
	fwrite(big, 1, 8, f);
	fclose(f);
	refused(c, INF_EFORMAT, "runs past the end of the file", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	f = fopen(path, "r+b");
	fseek(f, 8, SEEK_SET);
	fputc('[', f);
	fclose(f);
	refused(c, INF_EFORMAT, "header does not start with '{'", NULL);
}

static void
test_broken_tensors(void **state)
{
	struct corpus *c = *state;

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	header_edit(c, "model.safetensors", edit_rename_norm);
	refused(c, INF_EMODEL,
	    "model.safetensors: tensor model.norm.weight "
	    "is missing",
	    NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	header_edit(c, "model.safetensors", edit_swap_shape);
	refused(c, INF_EMODEL,
	    "tensor model.layers.0.mlp.gate_proj.weight has "
	    "shape [128, 352], config.json implies [352, 128]",
	    NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "intermediate_size", "353");
	refused(c, INF_EMODEL, "gate_proj.weight has shape [352, 128]",
	    "implies [353, 128]");

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	header_edit(c, "model.safetensors", edit_dtype_i16);
	refused(c, INF_EUNSUPPORTED,
	    "tensor model.layers.1.self_attn.k_proj.weight has dtype I16",
	    "not supported (BF16, F16, F32)");

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	header_edit(c, "model.safetensors", edit_dtype_q4);
	refused(c, INF_EFORMAT, "k_proj.weight: unknown dtype \"Q4\"", NULL);
}

static void
test_broken_config(void **state)
{
	struct corpus *c = *state;

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	write_text(c, "config.json",
	    "{\n  \"architectures\": [\"Qwen2\"],\n"
	    "  \"hidden_size\": 128,,\n}\n");
	refused(c, INF_EFORMAT, "config.json:3:", "bad JSON");

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	write_text(c, "generation_config.json", "{\"eos_token_id\": [1, }");
	refused(c, INF_EFORMAT, "generation_config.json:1:", "bad JSON");

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "architectures", "[\"GPT2LMHeadModel\"]");
	refused(c, INF_EUNSUPPORTED,
	    "architectures \"GPT2LMHeadModel\" is not supported", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "use_sliding_window", "true");
	refused(c, INF_EUNSUPPORTED, "use_sliding_window true is not supported",
	    NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(
	    c, "rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4}");
	refused(c, INF_EUNSUPPORTED,
	    "rope_scaling.rope_type \"yarn\" is not supported", NULL);

	copy_fixture(c, "tests/fixtures/tiny-llama");
	config_set(c, "rope_parameters",
	    "{\"rope_theta\": 500000.0, \"rope_type\": \"dynamic\"}");
	refused(c, INF_EUNSUPPORTED,
	    "rope_parameters.rope_type \"dynamic\" is not supported", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "torch_dtype", "\"float8_e4m3fn\"");
	refused(c, INF_EUNSUPPORTED,
	    "torch_dtype \"float8_e4m3fn\" is not "
	    "supported",
	    NULL);

	copy_fixture(c, "tests/fixtures/tiny-llama");
	config_set(c, "dtype", "\"int4\"");
	refused(c, INF_EUNSUPPORTED, "dtype \"int4\" is not supported", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "hidden_act", "\"gelu\"");
	refused(c, INF_EUNSUPPORTED, "hidden_act \"gelu\"", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "num_key_value_heads", "3");
	refused(c, INF_EFORMAT,
	    "num_attention_heads 4 is not a multiple of num_key_value_heads 3",
	    NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "hidden_size", NULL);
	refused(c, INF_EFORMAT, "config.json: hidden_size is missing", NULL);

	copy_fixture(c, "tests/fixtures/tiny-qwen2");
	config_set(c, "eos_token_id", "[1, 5000]");
	refused(c, INF_EFORMAT, "eos_token_id 5000 is outside the vocabulary",
	    NULL);
}

static void
test_broken_shards(void **state)
{
	struct corpus *c = *state;
	char path[512];

	copy_fixture(c, "tests/fixtures/tiny-llama");
	snprintf(
	    path, sizeof(path), "%s/model-00003-of-00006.safetensors", c->dir);
	assert_int_equal(unlink(path), 0);
	refused(c, INF_EMODEL,
	    "shard \"model-00003-of-00006.safetensors\" is missing", NULL);

	empty_dir(c->dir);
	copy_fixture(c, "tests/fixtures/tiny-llama");
	write_text(c, "model.safetensors.index.json",
	    "{\"weight_map\": {\"lm_head.weight\": \"../model.safetensors\"}}");
	refused(c, INF_EFORMAT,
	    "weight_map entry for lm_head.weight is not a "
	    "file name in the folder",
	    NULL);

	empty_dir(c->dir);
	copy_fixture(c, "tests/fixtures/tiny-llama");
	write_text(c, "model.safetensors.index.json",
	    "{\"weight_map\": {\"lm_head.weight\": "
	    "\"model-00006-of-00006.safetensors\"}}");
	refused(c, INF_EMODEL,
	    "model.embed_tokens.weight is missing from "
	    "weight_map",
	    NULL);

	/* the index names a shard that does not hold the tensor */
	empty_dir(c->dir);
	copy_fixture(c, "tests/fixtures/tiny-llama");
	write_text(c, "model.safetensors.index.json",
	    "{\"weight_map\": {\"model.embed_tokens.weight\": "
	    "\"model-00006-of-00006.safetensors\"}}");
	refused(c, INF_EMODEL,
	    "model-00006-of-00006.safetensors: tensor "
	    "model.embed_tokens.weight is missing",
	    NULL);

	empty_dir(c->dir);
	write_text(c, "config.json", "{}");
	refused(
	    c, INF_EFORMAT, "architectures must be a list of one name", NULL);
	snprintf(path, sizeof(path), "%s/config.json", c->dir);
	unlink(path);
	refused(c, -ENOENT, "config.json: cannot open", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_fixtures),
		cmocka_unit_test_setup_teardown(
		    test_broken_safetensors, corpus_setup, corpus_teardown),
		cmocka_unit_test_setup_teardown(
		    test_broken_tensors, corpus_setup, corpus_teardown),
		cmocka_unit_test_setup_teardown(
		    test_broken_config, corpus_setup, corpus_teardown),
		cmocka_unit_test_setup_teardown(
		    test_broken_shards, corpus_setup, corpus_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
