/*
 * tools/sr-mkmodel.c: writes a Hugging Face model folder with random BF16
 * weights at real shapes (DeepSeek-R1-Distill-Qwen-1.5B, -Llama-8B, and the
 * tiny fixtures' shapes): config.json, generation_config.json and
 * safetensors, sharded with model.safetensors.index.json above a size. For
 * benchmarks and full-size tests, driven with token ids.
 *
 * It must never overwrite a folder that already holds files unless told
 * to (--force), and never leave a half-written file looking complete: a
 * failed run says so and exits non-zero.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/sr.h"

struct shape {
	const char *name, *arch, *model_type, *about;
	int hidden, inter, layers, heads, kv_heads, vocab, max_pos;
	double theta, eps;
	int qkv_bias, llama3, new_layout, bos, eos;
};

/* reference/inference.md 1.1 and 1.2; the fixtures' config.json. */
static const struct shape shapes[] = {
	{ "qwen2-1.5b", "Qwen2ForCausalLM", "qwen2",
	    "DeepSeek-R1-Distill-Qwen-1.5B", 1536, 8960, 28, 12, 2, 151936,
	    131072, 10000.0, 1e-6, 1, 0, 0, 151646, 151643 },
	{ "llama-8b", "LlamaForCausalLM", "llama",
	    "DeepSeek-R1-Distill-Llama-8B", 4096, 14336, 32, 32, 8, 128256,
	    131072, 500000.0, 1e-5, 0, 1, 0, 128000, 128001 },
	{ "tiny-qwen2", "Qwen2ForCausalLM", "qwen2", "the tiny-qwen2 fixture",
	    128, 352, 4, 4, 2, 1024, 512, 10000.0, 1e-6, 1, 0, 0, 0, 1 },
	{ "tiny-llama", "LlamaForCausalLM", "llama", "the tiny-llama fixture",
	    96, 256, 3, 6, 3, 900, 512, 500000.0, 1e-5, 0, 0, 1, 0, 1 },
};

struct tensor {
	char name[96];
	uint64_t rows, cols; /* cols 0: a vector */
	int kind;            /* 0 weight, 1 norm (ones), 2 bias */
	int shard;
	uint64_t begin;
};

struct plan {
	const struct shape *s;
	struct tensor *t;
	int n, n_shards;
	uint64_t total;
	uint64_t rng[4];
};

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out,
	    "usage: sr-mkmodel --shape NAME --out DIR [options]\n"
	    "\n"
	    "Writes a model folder with random BF16 weights at real shapes:\n"
	    "config.json, generation_config.json, model.safetensors (or\n"
	    "shards and model.safetensors.index.json above --shard-mb).\n"
	    "\n"
	    "  --shape NAME     one of:\n");
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		fprintf(out, "                     %-11s %s\n", shapes[i].name,
		    shapes[i].about);
	fprintf(out,
	    "  --out DIR        the folder (made if absent; must be empty)\n"
	    "  --layers N       fewer (or more) layers than the real model\n"
	    "  --shard-mb N     largest shard in MB (default 5000)\n"
	    "  --seed N         weights' seed (default 1)\n"
	    "  --force          write into a folder that holds files\n"
	    "  --help           this text\n");
}

static uint16_t
to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
	return (uint16_t)(u >> 16);
}

static int
add(struct plan *p, int kind, uint64_t rows, uint64_t cols, const char *fmt,
    int layer)
{
	struct tensor *t = &p->t[p->n++];

	snprintf(t->name, sizeof(t->name), fmt, layer);
	t->rows = rows;
	t->cols = cols;
	t->kind = kind;
	return 0;
}

static uint64_t
bytes_of(const struct tensor *t)
{
	return t->rows * (t->cols ? t->cols : 1) * 2;
}

static int
make_plan(struct plan *p, int layers, uint64_t shard_bytes)
{
	const struct shape *s = p->s;
	uint64_t H = (uint64_t)s->hidden, I = (uint64_t)s->inter;
	uint64_t hd = H / (uint64_t)s->heads, qd = hd * (uint64_t)s->heads;
	uint64_t kd = hd * (uint64_t)s->kv_heads, in_shard = 0;
	int l, i;

	p->t = calloc((size_t)layers * 12 + 4, sizeof(p->t[0]));
	if (p->t == NULL)
		return -ENOMEM;
	add(p, 0, (uint64_t)s->vocab, H, "model.embed_tokens.weight", 0);
	for (l = 0; l < layers; l++) {
		add(p, 1, H, 0, "model.layers.%d.input_layernorm.weight", l);
		add(p, 0, qd, H, "model.layers.%d.self_attn.q_proj.weight", l);
		add(p, 0, kd, H, "model.layers.%d.self_attn.k_proj.weight", l);
		add(p, 0, kd, H, "model.layers.%d.self_attn.v_proj.weight", l);
		if (s->qkv_bias) {
			add(p, 2, qd, 0,
			    "model.layers.%d.self_attn.q_proj.bias", l);
			add(p, 2, kd, 0,
			    "model.layers.%d.self_attn.k_proj.bias", l);
			add(p, 2, kd, 0,
			    "model.layers.%d.self_attn.v_proj.bias", l);
		}
		add(p, 0, H, qd, "model.layers.%d.self_attn.o_proj.weight", l);
		add(p, 1, H, 0,
		    "model.layers.%d.post_attention_layernorm.weight", l);
		add(p, 0, I, H, "model.layers.%d.mlp.gate_proj.weight", l);
		add(p, 0, I, H, "model.layers.%d.mlp.up_proj.weight", l);
		add(p, 0, H, I, "model.layers.%d.mlp.down_proj.weight", l);
	}
	add(p, 1, H, 0, "model.norm.weight", 0);
	add(p, 0, (uint64_t)s->vocab, H, "lm_head.weight", 0);
	for (i = 0; i < p->n; i++) {
		uint64_t b = bytes_of(&p->t[i]);

		if (in_shard > 0 && in_shard + b > shard_bytes) {
			p->n_shards++;
			in_shard = 0;
		}
		p->t[i].shard = p->n_shards;
		p->t[i].begin = in_shard;
		in_shard += b;
		p->total += b;
	}
	p->n_shards++;
	return 0;
}

static void
shard_name(const struct plan *p, int k, char *out, size_t len)
{
	if (p->n_shards == 1)
		snprintf(out, len, "model.safetensors");
	else
		snprintf(out, len, "model-%05d-of-%05d.safetensors", k + 1,
		    p->n_shards);
}

static int
write_values(FILE *f, struct plan *p, const struct tensor *t)
{
	static uint16_t buf[1 << 16];
	uint64_t n = bytes_of(t) / 2, done = 0;
	/* uniform with the spread of N(0, 0.02), HF's initializer_range */
	const float a = 0.02f * 1.7320508f;
	size_t i, m;

	while (done < n) {
		m = n - done < (1 << 16) ? (size_t)(n - done) : (1 << 16);
		for (i = 0; i < m; i++) {
			float u =
			    (float)(sr_xoshiro_next(p->rng) >> 40) * 0x1p-24f;

			buf[i] = t->kind == 1 ? 0x3f80 /* 1.0 */
			                      : to_bf16((2 * u - 1) * a);
		}
		if (fwrite(buf, 2, m, f) != m)
			return -errno;
		done += m;
	}
	return 0;
}

static int
write_shard(const char *dir, struct plan *p, int k)
{
	char name[64], path[4096], *hdr;
	size_t cap = 1 << 20, len = 0, pad;
	uint64_t hn;
	unsigned char len8[8];
	FILE *f;
	int i, rc = 0;

	hdr = malloc(cap);
	if (hdr == NULL)
		return -ENOMEM;
	len += (size_t)snprintf(hdr, cap,
	    "{\"__metadata__\":{\"format\":"
	    "\"pt\"}");
	for (i = 0; i < p->n; i++) {
		const struct tensor *t = &p->t[i];

		if (t->shard != k)
			continue;
		if (cap - len < 256) {
			char *n2 = realloc(hdr, cap * 2);

			if (n2 == NULL) {
				free(hdr);
				return -ENOMEM;
			}
			hdr = n2;
			cap *= 2;
		}
		if (t->cols)
			len += (size_t)snprintf(hdr + len, cap - len,
			    ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu,%llu],"
			    "\"data_offsets\":[%llu,%llu]}",
			    t->name, (unsigned long long)t->rows,
			    (unsigned long long)t->cols,
			    (unsigned long long)t->begin,
			    (unsigned long long)(t->begin + bytes_of(t)));
		else
			len += (size_t)snprintf(hdr + len, cap - len,
			    ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu],"
			    "\"data_offsets\":[%llu,%llu]}",
			    t->name, (unsigned long long)t->rows,
			    (unsigned long long)t->begin,
			    (unsigned long long)(t->begin + bytes_of(t)));
	}
	len += (size_t)snprintf(hdr + len, cap - len, "}");
	pad = (8 - len % 8) % 8;
	hn = len + pad;
	for (i = 0; i < 8; i++)
		len8[i] = (unsigned char)(hn >> (8 * i));
	shard_name(p, k, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		rc = -errno;
		fprintf(stderr, "sr-mkmodel: %s: %s\n", path, strerror(errno));
		free(hdr);
		return rc;
	}
	if (fwrite(len8, 1, 8, f) != 8 || fwrite(hdr, 1, len, f) != len ||
	    fwrite("        ", 1, pad, f) != pad)
		rc = -EIO;
	for (i = 0; rc == 0 && i < p->n; i++)
		if (p->t[i].shard == k)
			rc = write_values(f, p, &p->t[i]);
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0) {
		fprintf(stderr, "sr-mkmodel: %s: write failed: %s\n", path,
		    strerror(-rc));
		unlink(path);
	}
	free(hdr);
	return rc;
}

static int
write_text(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "sr-mkmodel: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	return 0;
}

static int
write_configs(const char *dir, const struct plan *p, int layers)
{
	const struct shape *s = p->s;
	char cfg[4096], rope[512], gen[512];

	if (s->new_layout)
		snprintf(rope, sizeof(rope),
		    "  \"dtype\": \"bfloat16\",\n"
		    "  \"rope_parameters\": {\"rope_theta\": %.1f, "
		    "\"rope_type\": \"default\"},\n",
		    s->theta);
	else if (s->llama3)
		snprintf(rope, sizeof(rope),
		    "  \"torch_dtype\": \"bfloat16\",\n"
		    "  \"rope_theta\": %.1f,\n"
		    "  \"rope_scaling\": {\"rope_type\": \"llama3\", "
		    "\"factor\": 8.0, \"low_freq_factor\": 1.0, "
		    "\"high_freq_factor\": 4.0, "
		    "\"original_max_position_embeddings\": 8192},\n",
		    s->theta);
	else
		snprintf(rope, sizeof(rope),
		    "  \"torch_dtype\": \"bfloat16\",\n"
		    "  \"rope_theta\": %.1f,\n"
		    "  \"use_sliding_window\": false,\n",
		    s->theta);
	snprintf(cfg, sizeof(cfg),
	    "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n"
	    "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %d,\n"
	    "  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
	    "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n"
	    "  \"vocab_size\": %d,\n  \"max_position_embeddings\": %d,\n"
	    "  \"rms_norm_eps\": %g,\n%s"
	    "  \"tie_word_embeddings\": false,\n"
	    "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n",
	    s->arch, s->model_type, s->hidden, s->inter, layers, s->heads,
	    s->kv_heads, s->vocab, s->max_pos, s->eps, rope, s->bos, s->eos);
	snprintf(gen, sizeof(gen),
	    "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
	    "  \"do_sample\": true,\n  \"temperature\": 0.6,\n"
	    "  \"top_p\": 0.95\n}\n",
	    s->bos, s->eos);
	if (write_text(dir, "config.json", cfg) != 0 ||
	    write_text(dir, "generation_config.json", gen) != 0)
		return -EIO;
	return 0;
}

static int
write_index(const char *dir, const struct plan *p)
{
	char name[64], path[4096];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "sr-mkmodel: %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	fprintf(f,
	    "{\n  \"metadata\": {\"total_size\": %llu},\n"
	    "  \"weight_map\": {\n",
	    (unsigned long long)p->total);
	for (i = 0; i < p->n; i++) {
		shard_name(p, p->t[i].shard, name, sizeof(name));
		fprintf(f, "    \"%s\": \"%s\"%s\n", p->t[i].name, name,
		    i + 1 < p->n ? "," : "");
	}
	fprintf(f, "  }\n}\n");
	if (fclose(f) != 0)
		return -EIO;
	return 0;
}

static int
dir_ready(const char *dir, int force)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "sr-mkmodel: %s: cannot make the folder: %s\n",
		    dir, strerror(errno));
		return -1;
	}
	if (!force && rmdir(dir) != 0) {
		fprintf(stderr,
		    "sr-mkmodel: %s: the folder is not empty (use --force)\n",
		    dir);
		return -1;
	}
	if (!force && mkdir(dir, 0755) != 0)
		return -1;
	return 0;
}

static int
parse_num(
    const char *opt, const char *s, long long lo, long long hi, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *out < lo || *out > hi) {
		fprintf(stderr,
		    "sr-mkmodel: %s \"%s\": want a number from "
		    "%lld to %lld\n",
		    opt, s, lo, hi);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "shape", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "layers", required_argument, NULL, 'l' },
		{ "shard-mb", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'r' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *shape = NULL, *out = NULL;
	long long layers = -1, shard_mb = 5000, seed = 1;
	struct plan p = { 0 };
	uint64_t sm;
	size_t i;
	int c, k, force = 0, rc = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			shape = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'l':
			if (parse_num("--layers", optarg, 1, 1024, &layers))
				return 2;
			break;
		case 'm':
			if (parse_num(
			        "--shard-mb", optarg, 1, 1 << 20, &shard_mb))
				return 2;
			break;
		case 'r':
			if (parse_num("--seed", optarg, 0, INT64_MAX, &seed))
				return 2;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || shape == NULL || out == NULL) {
		fprintf(stderr, "sr-mkmodel: --shape and --out are required\n");
		usage(stderr);
		return 2;
	}
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		if (strcmp(shapes[i].name, shape) == 0)
			p.s = &shapes[i];
	if (p.s == NULL) {
		fprintf(stderr,
		    "sr-mkmodel: unknown shape \"%s\" (see "
		    "--help)\n",
		    shape);
		return 2;
	}
	if (layers < 0)
		layers = p.s->layers;
	sm = (uint64_t)seed;
	for (k = 0; k < 4; k++) {
		sm += 0x9e3779b97f4a7c15ull;
		p.rng[k] = (sm ^ (sm >> 31)) * 0xbf58476d1ce4e5b9ull;
	}
	if (dir_ready(out, force) != 0)
		return 1;
	if (make_plan(&p, (int)layers, (uint64_t)shard_mb << 20) != 0) {
		fprintf(stderr, "sr-mkmodel: out of memory\n");
		return 1;
	}
	rc = write_configs(out, &p, (int)layers);
	for (k = 0; rc == 0 && k < p.n_shards; k++)
		rc = write_shard(out, &p, k);
	if (rc == 0 && p.n_shards > 1)
		rc = write_index(out, &p);
	if (rc == 0)
		printf("%s: %s, %lld layers, %.2f GB of BF16 in %d file(s)\n",
		    out, p.s->about, layers, (double)p.total / 1e9, p.n_shards);
	free(p.t);
	return rc == 0 ? 0 : 1;
}
