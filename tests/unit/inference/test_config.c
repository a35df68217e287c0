/*
 * tests/unit/inference/test_config.c: inference/config.c: both config.json
 * layouts of the fixtures, the DeepSeek-R1-Distill shapes with Llama-3
 * rope_scaling (the frequency table against the piecewise definition),
 * generation_config.json's EOS lists and sampling defaults, and defaults
 * when keys are absent. Config files are written in a fresh mkdtemp folder
 * and removed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inference/model_internal.h"

struct dir {
	char path[64];
};

static int
dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/sr-infcfg-XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static void
put(const struct dir *d, const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d->path, name);
	if (text == NULL) {
		unlink(path);
		return;
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int
dir_teardown(void **state)
{
	struct dir *d = *state;

	put(d, "config.json", NULL);
	put(d, "generation_config.json", NULL);
	rmdir(d->path);
	free(d);
	return 0;
}

static void
test_fixture_layouts(void **state)
{
	struct inf_model_info in;
	char err[INF_ERR_MAX];

	(void)state;
	assert_int_equal(inf__config_load("tests/fixtures/tiny-qwen2", &in, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(in.arch, INF_ARCH_QWEN2);
	assert_string_equal(in.dtype, "bfloat16");
	assert_int_equal(in.hidden_size, 128);
	assert_int_equal(in.intermediate_size, 352);
	assert_int_equal(in.n_heads, 4);
	assert_int_equal(in.n_kv_heads, 2);
	assert_int_equal(in.vocab_size, 1024);
	assert_true(in.rope_theta == 10000.0);
	assert_true(in.rms_norm_eps == 1e-6f);
	assert_int_equal(in.rope_llama3, 0);
	assert_int_equal(in.bos_id, 0);
	assert_int_equal(in.tied_embeddings, 0);
	assert_int_equal(in.gen_do_sample, 0);

	assert_int_equal(inf__config_load("tests/fixtures/tiny-llama", &in, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(in.arch, INF_ARCH_LLAMA);
	assert_string_equal(in.dtype, "bfloat16"); /* from "dtype" */
	assert_true(in.rope_theta == 500000.0);    /* rope_parameters */
	assert_int_equal(in.head_dim, 16);
	assert_true(in.rms_norm_eps == 1e-5f);
}

/* DeepSeek-R1-Distill-Llama-8B's config (reference/inference.md 1.2). */
static const char llama8b[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4096,"
    "\"intermediate_size\":14336,\"num_hidden_layers\":32,"
    "\"num_attention_heads\":32,\"num_key_value_heads\":8,"
    "\"vocab_size\":128256,\"rms_norm_eps\":1e-05,"
    "\"rope_theta\":500000.0,\"max_position_embeddings\":131072,"
    "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
    "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
    "\"original_max_position_embeddings\":8192},"
    "\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\","
    "\"bos_token_id\":128000,\"eos_token_id\":128001}";

static void
test_llama3_rope(void **state)
{
	struct dir *d = *state;
	struct inf_model_info in;
	char err[INF_ERR_MAX];
	float f[64];
	int i, kept = 0, divided = 0, smoothed = 0;

	put(d, "config.json", llama8b);
	if (inf__config_load(d->path, &in, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(in.head_dim, 128);
	assert_int_equal(in.rope_llama3, 1);
	assert_true(in.rope_factor == 8.0);
	assert_int_equal(in.rope_original_max_position_embeddings, 8192);
	assert_int_equal(in.n_eos, 1);
	assert_int_equal(in.eos_ids[0], 128001);
	inf__rope_freqs(&in, f);
	for (i = 0; i < 64; i++) {
		double base = 1.0 / pow(500000.0, (2.0 * i) / 128.0);
		double wl = 2 * M_PI / base, want;

		if (wl < 8192.0 / 4.0) {
			want = base;
			kept++;
		} else if (wl > 8192.0 / 1.0) {
			want = base / 8.0;
			divided++;
		} else {
			double s = (8192.0 / wl - 1.0) / (4.0 - 1.0);

			want = (1 - s) * base / 8.0 + s * base;
			smoothed++;
		}
		assert_float_equal(f[i], want, want * 1e-5);
	}
	/* all three regimes are exercised at these shapes */
	assert_true(kept > 0 && divided > 0 && smoothed > 0);

	/* the same in the newer layout: rope_parameters carries it all */
	put(d, "config.json",
	    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":256,"
	    "\"intermediate_size\":512,\"num_hidden_layers\":1,"
	    "\"num_attention_heads\":2,\"vocab_size\":10,"
	    "\"rope_parameters\":{\"rope_theta\":500000.0,"
	    "\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
	    "\"high_freq_factor\":4.0,"
	    "\"original_max_position_embeddings\":8192}}");
	assert_int_equal(inf__config_load(d->path, &in, err, sizeof(err)), 0);
	assert_int_equal(in.rope_llama3, 1);
	assert_true(in.rope_theta == 500000.0);
	assert_int_equal(in.n_kv_heads, 2); /* defaults to the heads */

	put(d, "config.json",
	    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":256,"
	    "\"intermediate_size\":512,\"num_hidden_layers\":1,"
	    "\"num_attention_heads\":2,\"vocab_size\":10,"
	    "\"rope_scaling\":{\"type\":\"llama3\",\"factor\":8.0}}");
	assert_int_equal(
	    inf__config_load(d->path, &in, err, sizeof(err)), INF_EFORMAT);
	assert_non_null(strstr(err, "llama3 needs factor, low_freq_factor"));
}

/* DeepSeek-R1-Distill-Qwen-1.5B (reference/inference.md 1.1) with its
 * generation_config.json. */
static void
test_generation_config(void **state)
{
	struct dir *d = *state;
	struct inf_model_info in;
	char err[INF_ERR_MAX];

	put(d, "config.json",
	    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":1536,"
	    "\"intermediate_size\":8960,\"num_hidden_layers\":28,"
	    "\"num_attention_heads\":12,\"num_key_value_heads\":2,"
	    "\"vocab_size\":151936,\"rope_theta\":10000,"
	    "\"sliding_window\":4096,\"use_sliding_window\":false,"
	    "\"bos_token_id\":151643,\"eos_token_id\":151643}");
	put(d, "generation_config.json",
	    "{\"bos_token_id\":151646,\"eos_token_id\":[151643,151649],"
	    "\"do_sample\":true,\"temperature\":0.6,\"top_p\":0.95}");
	if (inf__config_load(d->path, &in, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(in.head_dim, 128);
	assert_int_equal(in.bos_id, 151646);
	assert_int_equal(in.n_eos, 2);
	assert_int_equal(in.eos_ids[1], 151649);
	assert_int_equal(in.gen_do_sample, 1);
	assert_float_equal(in.gen_temperature, 0.6, 1e-6);
	assert_float_equal(in.gen_top_p, 0.95, 1e-6);
	assert_int_equal(in.gen_top_k, 0);
	assert_int_equal(in.max_position_embeddings, 2048); /* default */

	put(d, "generation_config.json", "{\"top_p\": 1.5}");
	assert_int_equal(
	    inf__config_load(d->path, &in, err, sizeof(err)), INF_EFORMAT);
	assert_non_null(strstr(err,
	    "generation_config.json: top_p 1.5 is "
	    "outside (0, 1]"));
	put(d, "generation_config.json", "{\"eos_token_id\": \"x\"}");
	assert_int_equal(
	    inf__config_load(d->path, &in, err, sizeof(err)), INF_EFORMAT);
	assert_non_null(strstr(err, "eos_token_id is not an id or a list"));
	put(d, "generation_config.json", NULL);
	assert_int_equal(inf__config_load(d->path, &in, err, sizeof(err)), 0);
	assert_int_equal(in.n_eos, 1);
	assert_int_equal(in.eos_ids[0], 151643);
	assert_int_equal(in.bos_id, 151643);
}

static void
test_value_checks(void **state)
{
	struct dir *d = *state;
	struct inf_model_info in;
	char err[INF_ERR_MAX];

	put(d, "config.json",
	    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":-4,"
	    "\"intermediate_size\":8,\"num_hidden_layers\":1,"
	    "\"num_attention_heads\":1,\"vocab_size\":10}");
	assert_int_equal(
	    inf__config_load(d->path, &in, err, sizeof(err)), INF_EFORMAT);
	assert_non_null(strstr(err, "hidden_size -4 is outside [1, 1048576]"));
	put(d, "config.json",
	    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"vocab_size\":10,"
	    "\"hidden_size\":\"8\"}");
	assert_int_equal(
	    inf__config_load(d->path, &in, err, sizeof(err)), INF_EFORMAT);
	assert_non_null(strstr(err, "hidden_size is not an integer"));
	put(d, "config.json",
	    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,"
	    "\"intermediate_size\":8,\"num_hidden_layers\":1,"
	    "\"num_attention_heads\":1,\"vocab_size\":10,\"mlp_bias\":true}");
	assert_int_equal(
	    inf__config_load(d->path, &in, err, sizeof(err)), INF_EUNSUPPORTED);
	assert_non_null(strstr(err, "mlp_bias true is not supported"));
	put(d, "config.json",
	    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,"
	    "\"intermediate_size\":8,\"num_hidden_layers\":1,"
	    "\"num_attention_heads\":1,\"vocab_size\":10,"
	    "\"attention_bias\":true,\"tie_word_embeddings\":true}");
	assert_int_equal(inf__config_load(d->path, &in, err, sizeof(err)), 0);
	assert_int_equal(in.qkv_bias, 1);
	assert_int_equal(in.o_bias, 1);
	assert_int_equal(in.tied_embeddings, 1);
	assert_int_equal(in.n_eos, 0);
	assert_int_equal(in.bos_id, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_layouts),
		cmocka_unit_test_setup_teardown(
		    test_llama3_rope, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_generation_config, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_value_checks, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
