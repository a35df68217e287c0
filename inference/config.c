/*
 * inference/config.c: reads a model folder's config.json (both layouts:
 * top-level rope_theta/torch_dtype, and rope_parameters/dtype) and
 * generation_config.json into struct inf_model_info, and computes the RoPE
 * frequency table (Llama-3 scaling included). It refuses what the engine
 * does not implement, naming the key and its value, and never fills in a
 * guess for a required key.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yyjson.h>

#include "inference/model_internal.h"

#define CFG_MAX_BYTES (16u << 20) /* no real config is near this */
#define CFG_DIM_MAX (1 << 20)     /* bound on every dimension */

struct cfg {
	const char *path;
	char *err;
	size_t errlen;
};

static int cfg_fail(const struct cfg *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cfg_fail(const struct cfg *c, int rc, const char *fmt, ...)
{
	char why[INF_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s", c->path, why);
	return rc;
}

void *
inf__json_read(const char *path, size_t max, int *rc, char *err, size_t errlen)
{
	yyjson_read_err jerr;
	yyjson_doc *doc = NULL;
	struct stat st;
	char *buf = NULL;
	size_t got = 0, line = 0, col = 0, chr = 0;
	ssize_t r;
	int fd;

	*rc = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*rc = -errno;
		snprintf(
		    err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		*rc = INF_EFORMAT;
		snprintf(err, errlen,
		    "%s: not a regular file of at most %zu "
		    "bytes",
		    path, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		*rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			*rc = r < 0 ? -errno : INF_EFORMAT;
			snprintf(err, errlen, "%s: read failed", path);
			goto out;
		}
		got += (size_t)r;
	}
	doc = yyjson_read_opts(buf, got, 0, NULL, &jerr);
	if (doc == NULL) {
		*rc = jerr.code == YYJSON_READ_ERROR_MEMORY_ALLOCATION
		    ? -ENOMEM
		    : INF_EFORMAT;
		if (!yyjson_locate_pos(buf, got, jerr.pos, &line, &col, &chr))
			line = col = 0;
		snprintf(err, errlen, "%s:%zu:%zu: bad JSON: %s", path, line,
		    col, jerr.msg);
	}
out:
	free(buf);
	close(fd);
	return doc;
}

/* An integer key in [lo, hi]; absent gives @p def, or an error when
 * @p def is below lo (required). */
static int
cfg_int(const struct cfg *c, yyjson_val *obj, const char *key, int64_t def,
    int64_t lo, int64_t hi, int *out)
{
	yyjson_val *v = yyjson_obj_get(obj, key);
	int64_t x;

	if (v == NULL || yyjson_is_null(v)) {
		if (def < lo)
			return cfg_fail(c, INF_EFORMAT, "%s is missing", key);
		*out = (int)def;
		return 0;
	}
	if (!yyjson_is_int(v))
		return cfg_fail(c, INF_EFORMAT, "%s is not an integer", key);
	x = yyjson_is_uint(v) && yyjson_get_uint(v) > INT64_MAX
	    ? INT64_MAX
	    : yyjson_get_sint(v);
	if (x < lo || x > hi)
		return cfg_fail(c, INF_EFORMAT,
		    "%s %lld is outside [%lld, %lld]", key, (long long)x,
		    (long long)lo, (long long)hi);
	*out = (int)x;
	return 0;
}

/* A number key in (lo, hi]; absent gives @p def. */
static int
cfg_num(const struct cfg *c, yyjson_val *obj, const char *key, double def,
    double lo, double hi, double *out)
{
	yyjson_val *v = yyjson_obj_get(obj, key);
	double x;

	if (v == NULL || yyjson_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!yyjson_is_num(v))
		return cfg_fail(c, INF_EFORMAT, "%s is not a number", key);
	x = yyjson_get_num(v);
	if (!(x > lo && x <= hi))
		return cfg_fail(c, INF_EFORMAT, "%s %g is outside (%g, %g]",
		    key, x, lo, hi);
	*out = x;
	return 0;
}

static int
cfg_bool(
    const struct cfg *c, yyjson_val *obj, const char *key, int def, int *out)
{
	yyjson_val *v = yyjson_obj_get(obj, key);

	if (v == NULL || yyjson_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!yyjson_is_bool(v))
		return cfg_fail(c, INF_EFORMAT, "%s is not true or false", key);
	*out = yyjson_get_bool(v);
	return 0;
}

static int
cfg_arch(const struct cfg *c, yyjson_val *root, struct inf_model_info *info)
{
	yyjson_val *a = yyjson_obj_get(root, "architectures");
	const char *name;

	if (!yyjson_is_arr(a) || yyjson_arr_size(a) != 1 ||
	    !yyjson_is_str(yyjson_arr_get_first(a)))
		return cfg_fail(
		    c, INF_EFORMAT, "architectures must be a list of one name");
	name = yyjson_get_str(yyjson_arr_get_first(a));
	if (strcmp(name, "LlamaForCausalLM") == 0)
		info->arch = INF_ARCH_LLAMA;
	else if (strcmp(name, "Qwen2ForCausalLM") == 0)
		info->arch = INF_ARCH_QWEN2;
	else
		return cfg_fail(c, INF_EUNSUPPORTED,
		    "architectures \"%.64s\" is not supported "
		    "(LlamaForCausalLM, Qwen2ForCausalLM)",
		    name);
	snprintf(info->architecture, sizeof(info->architecture), "%s", name);
	return 0;
}

static int
cfg_dtype(const struct cfg *c, yyjson_val *root, struct inf_model_info *info)
{
	static const char *const ok[] = { "bfloat16", "float16", "float32" };
	const char *key = "torch_dtype";
	yyjson_val *v = yyjson_obj_get(root, key);
	size_t i;

	if (v == NULL) {
		key = "dtype";
		v = yyjson_obj_get(root, key);
	}
	if (v == NULL || yyjson_is_null(v)) {
		snprintf(info->dtype, sizeof(info->dtype), "bfloat16");
		return 0;
	}
	if (!yyjson_is_str(v))
		return cfg_fail(c, INF_EFORMAT, "%s is not a string", key);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(yyjson_get_str(v), ok[i]) == 0) {
			snprintf(info->dtype, sizeof(info->dtype), "%s", ok[i]);
			return 0;
		}
	return cfg_fail(c, INF_EUNSUPPORTED,
	    "%s \"%.32s\" is not supported (bfloat16, float16, float32)", key,
	    yyjson_get_str(v));
}

/* rope_theta and the rope type: top-level rope_theta with rope_scaling
 * (older files) or rope_parameters (newer). */
static int
cfg_rope(const struct cfg *c, yyjson_val *root, struct inf_model_info *info)
{
	const char *where = "rope_parameters";
	yyjson_val *rp = yyjson_obj_get(root, where), *type;
	const char *tkey = "rope_type";
	double x;
	int rc;

	if (rp == NULL || yyjson_is_null(rp)) {
		where = "rope_scaling";
		rp = yyjson_obj_get(root, where);
	}
	rc =
	    cfg_num(c, root, "rope_theta", 10000.0, 0, 1e12, &info->rope_theta);
	if (rc != 0)
		return rc;
	if (rp == NULL || yyjson_is_null(rp))
		return 0;
	if (!yyjson_is_obj(rp))
		return cfg_fail(c, INF_EFORMAT, "%s is not an object", where);
	if (yyjson_obj_get(rp, "rope_theta") != NULL) {
		rc =
		    cfg_num(c, rp, "rope_theta", 0, 0, 1e12, &info->rope_theta);
		if (rc != 0)
			return rc;
	}
	type = yyjson_obj_get(rp, tkey);
	if (type == NULL) {
		tkey = "type";
		type = yyjson_obj_get(rp, tkey);
	}
	if (type == NULL || yyjson_is_null(type))
		return 0;
	if (!yyjson_is_str(type))
		return cfg_fail(
		    c, INF_EFORMAT, "%s.%s is not a string", where, tkey);
	if (strcmp(yyjson_get_str(type), "default") == 0)
		return 0;
	if (strcmp(yyjson_get_str(type), "llama3") != 0)
		return cfg_fail(c, INF_EUNSUPPORTED,
		    "%s.%s \"%.32s\" is not supported (default, llama3)", where,
		    tkey, yyjson_get_str(type));
	info->rope_llama3 = 1;
	if ((rc = cfg_num(c, rp, "factor", -1, 0, 1e6, &info->rope_factor)) ||
	    (rc = cfg_num(c, rp, "low_freq_factor", -1, 0, 1e6,
	         &info->rope_low_freq_factor)) ||
	    (rc = cfg_num(c, rp, "high_freq_factor", -1, 0, 1e6,
	         &info->rope_high_freq_factor)) ||
	    (rc = cfg_num(c, rp, "original_max_position_embeddings", -1, 0,
	         CFG_DIM_MAX, &x)))
		return rc;
	if (info->rope_factor < 0 || info->rope_low_freq_factor < 0 ||
	    info->rope_high_freq_factor < 0 || x < 0)
		return cfg_fail(c, INF_EFORMAT,
		    "%s: llama3 needs factor, low_freq_factor, "
		    "high_freq_factor and original_max_position_embeddings",
		    where);
	if (info->rope_high_freq_factor <= info->rope_low_freq_factor)
		return cfg_fail(c, INF_EFORMAT,
		    "%s: high_freq_factor %g is not above low_freq_factor %g",
		    where, info->rope_high_freq_factor,
		    info->rope_low_freq_factor);
	info->rope_original_max_position_embeddings = (int)x;
	return 0;
}

/* The refusals that are not about sizes: activation, sliding window, MLP
 * bias. */
static int
cfg_features(const struct cfg *c, yyjson_val *root, struct inf_model_info *info)
{
	yyjson_val *act = yyjson_obj_get(root, "hidden_act");
	int on, rc;

	if (act != NULL &&
	    !(yyjson_is_str(act) && strcmp(yyjson_get_str(act), "silu") == 0))
		return cfg_fail(c, INF_EUNSUPPORTED,
		    "hidden_act \"%.32s\" is not supported (silu)",
		    yyjson_is_str(act) ? yyjson_get_str(act) : "?");
	if ((rc = cfg_bool(c, root, "use_sliding_window", 0, &on)) != 0)
		return rc;
	if (on)
		return cfg_fail(c, INF_EUNSUPPORTED,
		    "use_sliding_window true is not supported (full attention "
		    "only)");
	if ((rc = cfg_bool(c, root, "mlp_bias", 0, &on)) != 0)
		return rc;
	if (on)
		return cfg_fail(
		    c, INF_EUNSUPPORTED, "mlp_bias true is not supported");
	if ((rc = cfg_bool(c, root, "attention_bias", 0, &on)) != 0)
		return rc;
	/* Qwen2 hard-codes bias on q/k/v (not o); Llama's attention_bias
	 * puts one on all four. */
	info->qkv_bias = info->arch == INF_ARCH_QWEN2 || on;
	info->o_bias = info->arch == INF_ARCH_LLAMA && on;
	return cfg_bool(
	    c, root, "tie_word_embeddings", 0, &info->tied_embeddings);
}

static int
cfg_sizes(const struct cfg *c, yyjson_val *root, struct inf_model_info *info)
{
	double eps;
	int rc;

	if ((rc = cfg_int(
	         c, root, "vocab_size", -1, 1, 1 << 24, &info->vocab_size)) ||
	    (rc = cfg_int(c, root, "hidden_size", -1, 1, CFG_DIM_MAX,
	         &info->hidden_size)) ||
	    (rc = cfg_int(c, root, "intermediate_size", -1, 1, CFG_DIM_MAX,
	         &info->intermediate_size)) ||
	    (rc = cfg_int(
	         c, root, "num_hidden_layers", -1, 1, 1024, &info->n_layers)) ||
	    (rc = cfg_int(c, root, "num_attention_heads", -1, 1, 1024,
	         &info->n_heads)) ||
	    (rc = cfg_int(c, root, "num_key_value_heads", info->n_heads, 1,
	         1024, &info->n_kv_heads)) ||
	    (rc = cfg_int(c, root, "max_position_embeddings", 2048, 1,
	         CFG_DIM_MAX, &info->max_position_embeddings)))
		return rc;
	if (yyjson_obj_get(root, "head_dim") == NULL &&
	    info->hidden_size % info->n_heads != 0)
		return cfg_fail(c, INF_EFORMAT,
		    "hidden_size %d is not a multiple of num_attention_heads "
		    "%d",
		    info->hidden_size, info->n_heads);
	if ((rc = cfg_int(c, root, "head_dim",
	         info->hidden_size / info->n_heads, 2, 4096, &info->head_dim)))
		return rc;
	if (info->head_dim % 2 != 0)
		return cfg_fail(
		    c, INF_EFORMAT, "head_dim %d is odd", info->head_dim);
	if (info->n_heads % info->n_kv_heads != 0)
		return cfg_fail(c, INF_EFORMAT,
		    "num_attention_heads %d is not a multiple of "
		    "num_key_value_heads %d",
		    info->n_heads, info->n_kv_heads);
	if ((int64_t)info->n_heads * info->head_dim > CFG_DIM_MAX)
		return cfg_fail(c, INF_EFORMAT,
		    "num_attention_heads x head_dim is too large");
	if ((rc = cfg_num(c, root, "rms_norm_eps", 1e-6, 0, 1, &eps)) != 0)
		return rc;
	info->rms_norm_eps = (float)eps;
	return 0;
}

/* eos_token_id: one id or a list; each must be in the vocabulary. */
static int
cfg_eos(const struct cfg *c, yyjson_val *v, struct inf_model_info *info)
{
	size_t i, n = yyjson_is_arr(v) ? yyjson_arr_size(v) : 1;
	yyjson_val *e;
	int64_t id;

	if (!yyjson_is_arr(v) && !yyjson_is_int(v))
		return cfg_fail(c, INF_EFORMAT,
		    "eos_token_id is not an id or a list of ids");
	if (n > INF_EOS_MAX)
		return cfg_fail(c, INF_EUNSUPPORTED,
		    "more than %d eos_token_id values", INF_EOS_MAX);
	for (i = 0; i < n; i++) {
		e = yyjson_is_arr(v) ? yyjson_arr_get(v, i) : v;
		if (!yyjson_is_int(e))
			return cfg_fail(c, INF_EFORMAT,
			    "eos_token_id[%zu] is not an integer", i);
		id = yyjson_get_sint(e);
		if (id < 0 || id >= info->vocab_size)
			return cfg_fail(c, INF_EFORMAT,
			    "eos_token_id %lld is outside the vocabulary "
			    "(%d ids)",
			    (long long)id, info->vocab_size);
		info->eos_ids[i] = (int)id;
	}
	info->n_eos = (int)n;
	return 0;
}

static int
cfg_ids(const struct cfg *c, yyjson_val *root, struct inf_model_info *info)
{
	yyjson_val *eos = yyjson_obj_get(root, "eos_token_id");
	int rc;

	if ((rc = cfg_int(c, root, "bos_token_id", -1, -1, info->vocab_size - 1,
	         &info->bos_id)))
		return rc;
	if (eos == NULL || yyjson_is_null(eos))
		return 0;
	return cfg_eos(c, eos, info);
}

static int
cfg_generation(
    const char *dir, struct inf_model_info *info, char *err, size_t errlen)
{
	char path[4096];
	struct cfg c = { path, err, errlen };
	yyjson_doc *doc;
	yyjson_val *root;
	double x;
	int rc, k;

	snprintf(path, sizeof(path), "%s/generation_config.json", dir);
	if (access(path, F_OK) != 0)
		return 0; /* optional */
	doc = inf__json_read(path, CFG_MAX_BYTES, &rc, err, errlen);
	if (doc == NULL)
		return rc;
	root = yyjson_doc_get_root(doc);
	if (!yyjson_is_obj(root)) {
		rc = cfg_fail(&c, INF_EFORMAT, "not a JSON object");
		goto out;
	}
	if ((rc = cfg_ids(&c, root, info)) != 0 ||
	    (rc = cfg_bool(&c, root, "do_sample", 0, &info->gen_do_sample)))
		goto out;
	if ((rc = cfg_num(&c, root, "temperature", 1.0, -1e-9, 100, &x)))
		goto out;
	info->gen_temperature = (float)x;
	if ((rc = cfg_num(&c, root, "top_p", 1.0, 0, 1, &x)))
		goto out;
	info->gen_top_p = (float)x;
	if ((rc = cfg_num(&c, root, "repetition_penalty", 1.0, 0, 100, &x)))
		goto out;
	info->gen_repetition_penalty = (float)x;
	if ((rc = cfg_int(&c, root, "top_k", 0, 0, 1 << 24, &k)))
		goto out;
	info->gen_top_k = k;
out:
	yyjson_doc_free(doc);
	return rc;
}

int
inf__config_load(
    const char *dir, struct inf_model_info *info, char *err, size_t errlen)
{
	char path[4096];
	struct cfg c = { path, err, errlen };
	yyjson_doc *doc;
	yyjson_val *root;
	int rc;

	memset(info, 0, sizeof(*info));
	info->bos_id = -1;
	info->gen_temperature = 1.0f;
	info->gen_top_p = 1.0f;
	info->gen_repetition_penalty = 1.0f;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	doc = inf__json_read(path, CFG_MAX_BYTES, &rc, err, errlen);
	if (doc == NULL)
		return rc;
	root = yyjson_doc_get_root(doc);
	if (!yyjson_is_obj(root)) {
		rc = cfg_fail(&c, INF_EFORMAT, "not a JSON object");
		goto out;
	}
	if ((rc = cfg_arch(&c, root, info)) != 0 ||
	    (rc = cfg_dtype(&c, root, info)) != 0 ||
	    (rc = cfg_features(&c, root, info)) != 0 ||
	    (rc = cfg_sizes(&c, root, info)) != 0 ||
	    (rc = cfg_rope(&c, root, info)) != 0 ||
	    (rc = cfg_ids(&c, root, info)) != 0)
		goto out;
	yyjson_doc_free(doc);
	doc = NULL;
	rc = cfg_generation(dir, info, err, errlen);
out:
	yyjson_doc_free(doc);
	return rc;
}

void
inf__rope_freqs(const struct inf_model_info *info, float *inv_freq)
{
	int half = info->head_dim / 2, i;
	double lo_wl, hi_wl, wl, s, f, scaled;

	for (i = 0; i < half; i++) {
		/* HF: 1 / base ** (arange(0, dim, 2).float() / dim) in fp32 */
		float expo = (float)(2 * i) / (float)info->head_dim;

		inv_freq[i] = 1.0f / powf((float)info->rope_theta, expo);
	}
	if (!info->rope_llama3)
		return;
	lo_wl = info->rope_original_max_position_embeddings /
	    info->rope_low_freq_factor;
	hi_wl = info->rope_original_max_position_embeddings /
	    info->rope_high_freq_factor;
	for (i = 0; i < half; i++) {
		f = inv_freq[i];
		wl = 2 * M_PI / f;
		if (wl < hi_wl)
			continue; /* high frequency: kept */
		scaled = f / info->rope_factor;
		if (wl > lo_wl) {
			inv_freq[i] = (float)scaled; /* low frequency */
			continue;
		}
		s = (info->rope_original_max_position_embeddings / wl -
		        info->rope_low_freq_factor) /
		    (info->rope_high_freq_factor - info->rope_low_freq_factor);
		inv_freq[i] = (float)((1 - s) * scaled + s * f);
	}
}
