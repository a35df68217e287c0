/*
 * inference/model.c: opens a model folder (config, one safetensors file or
 * the shards that model.safetensors.index.json names), checks that every
 * tensor the architecture needs is there with the shape the config implies
 * and a usable dtype, hands the weights to a backend, and runs forward
 * steps over sequences after validating every argument. It never guesses a
 * shard's name and never lets a backend see an unchecked token or position.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yyjson.h>

#include "inference/model_internal.h"

#define MODEL_MAX_SHARDS 4096
#define INDEX_MAX_BYTES (64u << 20)

struct inf_model {
	char *dir;
	struct inf_model_info info;
	struct inf_st_file *files;
	int n_files;
	struct inf_weights w;
	const struct inf_backend_ops *ops;
	void *state;
	int n_seqs;
};

struct inf_seq {
	struct inf_model *model;
	void *kv;
	int len, capacity;
};

/* Where each tensor lives while loading: its file's index. */
struct load {
	struct inf_model *m;
	yyjson_doc *index; /* NULL for a single model.safetensors */
	char *err;
	size_t errlen;
};

static int load_fail(struct load *l, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
load_fail(struct load *l, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->err, l->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* A shard name from the index must be a plain file name in the folder. */
static int
shard_name_ok(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

static int
load_files_index(struct load *l, const char *ipath)
{
	struct inf_model *m = l->m;
	yyjson_val *map, *k, *v;
	yyjson_obj_iter it;
	const char *names[MODEL_MAX_SHARDS];
	char path[4096];
	int rc, i, n = 0;

	l->index =
	    inf__json_read(ipath, INDEX_MAX_BYTES, &rc, l->err, l->errlen);
	if (l->index == NULL)
		return rc;
	map = yyjson_obj_get(yyjson_doc_get_root(l->index), "weight_map");
	if (!yyjson_is_obj(map))
		return load_fail(
		    l, INF_EFORMAT, "%s: no weight_map object", ipath);
	yyjson_obj_iter_init(map, &it);
	while ((k = yyjson_obj_iter_next(&it)) != NULL) {
		v = yyjson_obj_iter_get_val(k);
		if (!yyjson_is_str(v) || !shard_name_ok(yyjson_get_str(v)))
			return load_fail(l, INF_EFORMAT,
			    "%s: weight_map entry for %.128s is not a file "
			    "name in the folder",
			    ipath, yyjson_get_str(k));
		for (i = 0; i < n; i++)
			if (strcmp(names[i], yyjson_get_str(v)) == 0)
				break;
		if (i < n)
			continue;
		if (n == MODEL_MAX_SHARDS)
			return load_fail(l, INF_EUNSUPPORTED,
			    "%s: more than %d shards", ipath, MODEL_MAX_SHARDS);
		names[n++] = yyjson_get_str(v);
	}
	m->files = calloc((size_t)n + 1, sizeof(m->files[0]));
	if (m->files == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", m->dir, names[i]);
		if (access(path, F_OK) != 0)
			return load_fail(l, INF_EMODEL,
			    "%s: shard \"%.128s\" is missing from the folder",
			    ipath, names[i]);
		rc = inf__st_open(path, &m->files[i], l->err, l->errlen);
		m->n_files = i + 1;
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
load_files(struct load *l)
{
	struct inf_model *m = l->m;
	char path[4096], ipath[4096];

	snprintf(
	    ipath, sizeof(ipath), "%s/model.safetensors.index.json", m->dir);
	if (access(ipath, F_OK) == 0)
		return load_files_index(l, ipath);
	snprintf(path, sizeof(path), "%s/model.safetensors", m->dir);
	if (access(path, F_OK) != 0)
		return load_fail(l, INF_EMODEL,
		    "%s: neither model.safetensors nor "
		    "model.safetensors.index.json is there",
		    m->dir);
	m->files = calloc(1, sizeof(m->files[0]));
	if (m->files == NULL)
		return -ENOMEM;
	m->n_files = 1;
	return inf__st_open(path, &m->files[0], l->err, l->errlen);
}

/* Find a tensor: through the index's weight_map, or in the only file. */
static int
find_tensor(struct load *l, const char *name, const struct inf_st_tensor **out,
    const char **file)
{
	struct inf_model *m = l->m;
	yyjson_val *v;
	int i;

	*out = NULL;
	if (l->index == NULL) {
		*file = "model.safetensors";
		*out = inf__st_find(&m->files[0], name);
		if (*out == NULL)
			return load_fail(l, INF_EMODEL,
			    "%s/model.safetensors: tensor %s is missing",
			    m->dir, name);
		return 0;
	}
	v = yyjson_obj_get(
	    yyjson_obj_get(yyjson_doc_get_root(l->index), "weight_map"), name);
	if (v == NULL)
		return load_fail(l, INF_EMODEL,
		    "%s/model.safetensors.index.json: tensor %s is missing "
		    "from weight_map",
		    m->dir, name);
	*file = yyjson_get_str(v);
	for (i = 0; i < m->n_files; i++) {
		const char *p = strrchr(m->files[i].path, '/');

		if (strcmp(p + 1, *file) == 0)
			*out = inf__st_find(&m->files[i], name);
	}
	if (*out == NULL)
		return load_fail(l, INF_EMODEL,
		    "%s/%s: tensor %s is missing (weight_map names this "
		    "shard)",
		    m->dir, *file, name);
	return 0;
}

/* A tensor of exactly the given shape (rows, cols; cols 0 for vectors). */
static int
take(struct load *l, const char *name, int rows, int cols,
    struct inf_matrix *mat)
{
	const struct inf_st_tensor *t;
	const char *file;
	int rc, ndim = cols > 0 ? 2 : 1;

	if ((rc = find_tensor(l, name, &t, &file)) != 0)
		return rc;
	if (t->dtype != INF_DT_BF16 && t->dtype != INF_DT_F16 &&
	    t->dtype != INF_DT_F32)
		return load_fail(l, INF_EUNSUPPORTED,
		    "%s/%s: tensor %s has dtype %s, which is not supported "
		    "(BF16, F16, F32)",
		    l->m->dir, file, name, t->dtype_name);
	if (t->ndim != ndim || t->shape[0] != (uint64_t)rows ||
	    (ndim == 2 && t->shape[1] != (uint64_t)cols)) {
		char got[96] = "", *p = got;
		int i;

		for (i = 0; i < t->ndim && p < got + sizeof(got) - 24; i++)
			p += sprintf(p, "%s%llu", i ? ", " : "",
			    (unsigned long long)t->shape[i]);
		if (ndim == 2)
			return load_fail(l, INF_EMODEL,
			    "%s/%s: tensor %s has shape [%s], config.json "
			    "implies [%d, %d]",
			    l->m->dir, file, name, got, rows, cols);
		return load_fail(l, INF_EMODEL,
		    "%s/%s: tensor %s has shape [%s], config.json implies "
		    "[%d]",
		    l->m->dir, file, name, got, rows);
	}
	if ((uintptr_t)t->data % inf__dtype_size(t->dtype) != 0)
		return load_fail(l, INF_EFORMAT,
		    "%s/%s: tensor %s is not aligned to its element size",
		    l->m->dir, file, name);
	mat->data = t->data;
	mat->dtype = t->dtype;
	mat->rows = rows;
	mat->cols = cols > 0 ? cols : 1;
	l->m->info.weight_bytes += t->end - t->begin;
	return 0;
}

/* A vector tensor copied out as fp32 (norm weights, biases). */
static int
take_f32(struct load *l, const char *name, int n, float **out)
{
	struct inf_matrix mat;
	int rc;

	if ((rc = take(l, name, n, 0, &mat)) != 0)
		return rc;
	*out = malloc((size_t)n * sizeof(float));
	if (*out == NULL)
		return -ENOMEM;
	inf__to_f32(*out, mat.data, mat.dtype, (size_t)n);
	return 0;
}

static int
load_layer(struct load *l, int i, struct inf_layer *L)
{
	const struct inf_model_info *in = &l->m->info;
	int H = in->hidden_size, I = in->intermediate_size;
	int qd = in->n_heads * in->head_dim, kd = in->n_kv_heads * in->head_dim;
	char n[128];
	int rc;

#define NAME(s) (snprintf(n, sizeof(n), "model.layers.%d.%s", i, s), n)
	if ((rc = take_f32(
	         l, NAME("input_layernorm.weight"), H, &L->attn_norm)) ||
	    (rc = take_f32(l, NAME("post_attention_layernorm.weight"), H,
	         &L->mlp_norm)) ||
	    (rc = take(l, NAME("self_attn.q_proj.weight"), qd, H, &L->q)) ||
	    (rc = take(l, NAME("self_attn.k_proj.weight"), kd, H, &L->k)) ||
	    (rc = take(l, NAME("self_attn.v_proj.weight"), kd, H, &L->v)) ||
	    (rc = take(l, NAME("self_attn.o_proj.weight"), H, qd, &L->o)) ||
	    (rc = take(l, NAME("mlp.gate_proj.weight"), I, H, &L->gate)) ||
	    (rc = take(l, NAME("mlp.up_proj.weight"), I, H, &L->up)) ||
	    (rc = take(l, NAME("mlp.down_proj.weight"), H, I, &L->down)))
		return rc;
	if (in->qkv_bias &&
	    ((rc = take_f32(
	          l, NAME("self_attn.q_proj.bias"), qd, &L->q_bias)) ||
	        (rc = take_f32(
	             l, NAME("self_attn.k_proj.bias"), kd, &L->k_bias)) ||
	        (rc = take_f32(
	             l, NAME("self_attn.v_proj.bias"), kd, &L->v_bias))))
		return rc;
	if (in->o_bias &&
	    (rc = take_f32(l, NAME("self_attn.o_proj.bias"), H, &L->o_bias)))
		return rc;
#undef NAME
	return 0;
}

static int
load_weights(struct load *l)
{
	struct inf_model *m = l->m;
	struct inf_model_info *in = &m->info;
	struct inf_weights *w = &m->w;
	uint64_t embed_bytes;
	int rc, i;

	w->layers = calloc((size_t)in->n_layers, sizeof(w->layers[0]));
	if (w->layers == NULL)
		return -ENOMEM;
	w->n_layers = in->n_layers;
	if ((rc = take(l, "model.embed_tokens.weight", in->vocab_size,
	         in->hidden_size, &w->embed)) != 0)
		return rc;
	embed_bytes = in->weight_bytes;
	for (i = 0; i < in->n_layers; i++)
		if ((rc = load_layer(l, i, &w->layers[i])) != 0)
			return rc;
	if ((rc = take_f32(
	         l, "model.norm.weight", in->hidden_size, &w->final_norm)) != 0)
		return rc;
	if (in->tied_embeddings) {
		w->lm_head = w->embed;
		in->decode_bytes = in->weight_bytes;
		return 0;
	}
	rc = take(
	    l, "lm_head.weight", in->vocab_size, in->hidden_size, &w->lm_head);
	in->decode_bytes = in->weight_bytes - embed_bytes;
	return rc;
}

int
inf_model_open(const char *dir, const struct inf_open_opts *opts,
    struct inf_model **out, char err[static INF_ERR_MAX])
{
	struct inf_model *m;
	struct load l = { 0 };
	long ncpu;
	int rc, threads;

	*out = NULL;
	err[0] = '\0';
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->dir = strdup(dir)) == NULL) {
		free(m);
		snprintf(err, INF_ERR_MAX, "%s: out of memory", dir);
		return -ENOMEM;
	}
	l.m = m;
	l.err = err;
	l.errlen = INF_ERR_MAX;
	m->ops = opts != NULL && opts->backend != NULL ? opts->backend
	                                               : &inf_backend_cpu;
	threads = opts != NULL ? opts->threads : 0;
	if (threads <= 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu > 0 ? (int)ncpu : 1;
	}
	if (threads > 256)
		threads = 256;
	if ((rc = inf__config_load(dir, &m->info, err, INF_ERR_MAX)) != 0 ||
	    (rc = load_files(&l)) != 0 || (rc = load_weights(&l)) != 0)
		goto fail;
	m->info.backend = m->ops->name;
	m->info.threads = threads;
	rc =
	    m->ops->load(&m->info, &m->w, threads, &m->state, err, INF_ERR_MAX);
	if (rc != 0)
		goto fail;
	yyjson_doc_free(l.index);
	*out = m;
	return 0;
fail:
	if (rc == -ENOMEM && err[0] == '\0')
		snprintf(err, INF_ERR_MAX, "%s: out of memory", dir);
	yyjson_doc_free(l.index);
	inf_model_close(m);
	return rc;
}

void
inf_model_close(struct inf_model *m)
{
	int i;

	if (m == NULL)
		return;
	if (m->state != NULL)
		m->ops->unload(m->state);
	for (i = 0; m->w.layers != NULL && i < m->w.n_layers; i++) {
		struct inf_layer *L = &m->w.layers[i];

		free(L->attn_norm);
		free(L->mlp_norm);
		free(L->q_bias);
		free(L->k_bias);
		free(L->v_bias);
		free(L->o_bias);
	}
	free(m->w.layers);
	free(m->w.final_norm);
	for (i = 0; i < m->n_files; i++)
		inf__st_close(&m->files[i]);
	free(m->files);
	free(m->dir);
	free(m);
}

const struct inf_model_info *
inf_model_info(const struct inf_model *m)
{
	return &m->info;
}

int
inf_seq_new(struct inf_model *m, int capacity, struct inf_seq **out)
{
	struct inf_seq *s;
	int rc;

	*out = NULL;
	if (capacity == 0)
		capacity = m->info.max_position_embeddings;
	if (capacity < 0 || capacity > m->info.max_position_embeddings)
		return INF_EPARAM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = m->ops->kv_alloc(m->state, capacity, &s->kv);
	if (rc != 0) {
		free(s);
		return rc;
	}
	s->model = m;
	s->capacity = capacity;
	m->n_seqs++;
	*out = s;
	return 0;
}

void
inf_seq_free(struct inf_seq *s)
{
	if (s == NULL)
		return;
	s->model->ops->kv_free(s->model->state, s->kv);
	s->model->n_seqs--;
	free(s);
}

struct inf_model *
inf__seq_model(const struct inf_seq *s)
{
	return s->model;
}

int
inf_seq_length(const struct inf_seq *s)
{
	return s->len;
}

int
inf_seq_capacity(const struct inf_seq *s)
{
	return s->capacity;
}

int
inf_seq_truncate(struct inf_seq *s, int length)
{
	if (length < 0 || length > s->len)
		return INF_EPARAM;
	s->len = length;
	return 0;
}

#define STEP_STACK 64
#define STEP_TOKENS 512 /* longer steps run in chunks (bounded scratch) */

/* One backend call; grows the sequences on success. */
static int
run_step(struct inf_model *m, const struct inf_batch_item *items, int n_items,
    float *logits)
{
	struct inf_step_item stack[STEP_STACK] = { { 0 } }, *st = stack;
	int i, rc;

	if (n_items > STEP_STACK) {
		st = calloc((size_t)n_items, sizeof(*st));
		if (st == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < n_items; i++) {
		st[i].kv = items[i].seq->kv;
		st[i].pos = items[i].seq->len;
		st[i].tokens = items[i].tokens;
		st[i].n_tokens = items[i].n_tokens;
		st[i].logits = items[i].logits;
	}
	rc = m->ops->forward(m->state, st, n_items, logits);
	if (rc == 0)
		for (i = 0; i < n_items; i++)
			items[i].seq->len += items[i].n_tokens;
	if (st != stack)
		free(st);
	return rc;
}

/* A step too long for one call: each item alone, in chunks. */
static int
run_chunked(struct inf_model *m, const struct inf_batch_item *items,
    int n_items, float *logits)
{
	size_t V = (size_t)m->info.vocab_size;
	struct inf_batch_item c;
	int i, off, rc = 0, done = 0;

	for (i = 0; i < n_items && rc == 0; i++, done++) {
		for (off = 0; off < items[i].n_tokens && rc == 0;
		     off += c.n_tokens) {
			c = items[i];
			c.tokens += off;
			c.n_tokens = c.n_tokens - off < STEP_TOKENS
			    ? c.n_tokens - off
			    : STEP_TOKENS;
			if (c.logits == INF_LOGITS_LAST &&
			    off + c.n_tokens < items[i].n_tokens)
				c.logits = INF_LOGITS_NONE;
			rc = run_step(m, &c, 1, logits);
			if (rc == 0 && c.logits != INF_LOGITS_NONE)
				logits += V *
				    (c.logits == INF_LOGITS_ALL
				            ? (size_t)c.n_tokens
				            : 1);
		}
		if (rc != 0)
			items[i].seq->len -= off - c.n_tokens;
	}
	for (i = 0; rc != 0 && i < done - 1; i++)
		items[i].seq->len -= items[i].n_tokens;
	return rc;
}

/* inf_forward's checks: every item valid and fitting; counts the items
 * that want logits and the step's tokens. */
static int
check_items(struct inf_model *m, const struct inf_batch_item *items,
    int n_items, int *want_out, size_t *total_out)
{
	int i, j, want = 0;
	size_t total = 0;

	if (n_items < 1)
		return INF_EPARAM;
	for (i = 0; i < n_items; i++) {
		const struct inf_batch_item *it = &items[i];

		if (it->seq == NULL || it->seq->model != m ||
		    it->n_tokens < 1 || it->tokens == NULL ||
		    (unsigned)it->logits > INF_LOGITS_ALL)
			return INF_EPARAM;
		for (j = 0; j < it->n_tokens; j++)
			if (it->tokens[j] < 0 ||
			    it->tokens[j] >= m->info.vocab_size)
				return INF_EPARAM;
		for (j = 0; j < i; j++)
			if (items[j].seq == it->seq)
				return INF_EPARAM;
		if (it->n_tokens > it->seq->capacity - it->seq->len)
			return INF_ECONTEXT;
		want += it->logits != INF_LOGITS_NONE;
		total += (size_t)it->n_tokens;
	}
	*want_out = want;
	*total_out = total;
	return 0;
}

int
inf_forward(struct inf_model *m, const struct inf_batch_item *items,
    int n_items, float *logits)
{
	size_t total;
	int want, rc;

	if ((rc = check_items(m, items, n_items, &want, &total)) != 0)
		return rc;
	if (want > 0 && logits == NULL)
		return INF_EPARAM;
	if (total > STEP_TOKENS)
		return run_chunked(m, items, n_items, logits);
	return run_step(m, items, n_items, logits);
}

int
inf__forward_top(struct inf_model *m, const struct inf_batch_item *items,
    int n_items, float *top_logits, int32_t *top_ids)
{
	struct inf_step_item stack[STEP_STACK] = { { 0 } }, *st = stack;
	size_t total;
	int i, want, rc;

	if (m->ops->forward_top == NULL)
		return INF_EUNSUPPORTED;
	if ((rc = check_items(m, items, n_items, &want, &total)) != 0)
		return rc;
	if (want != n_items || total > STEP_TOKENS || top_logits == NULL ||
	    top_ids == NULL)
		return INF_EPARAM;
	for (i = 0; i < n_items; i++)
		if (items[i].logits != INF_LOGITS_LAST)
			return INF_EPARAM;
	if (n_items > STEP_STACK) {
		st = calloc((size_t)n_items, sizeof(*st));
		if (st == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < n_items; i++) {
		st[i].kv = items[i].seq->kv;
		st[i].pos = items[i].seq->len;
		st[i].tokens = items[i].tokens;
		st[i].n_tokens = items[i].n_tokens;
		st[i].logits = items[i].logits;
	}
	rc = m->ops->forward_top(m->state, st, n_items, top_logits, top_ids);
	if (rc == 0)
		for (i = 0; i < n_items; i++)
			items[i].seq->len += items[i].n_tokens;
	if (st != stack)
		free(st);
	return rc;
}

const char *
inf_model_backend_error(const struct inf_model *m)
{
	if (m->ops->last_error == NULL || m->state == NULL)
		return "";
	return m->ops->last_error(m->state);
}

int
inf_prefill(struct inf_seq *s, const int32_t *tokens, int n, float *logits_last)
{
	struct inf_batch_item it = { s, tokens, n,
		logits_last != NULL ? INF_LOGITS_LAST : INF_LOGITS_NONE };

	return inf_forward(s->model, &it, 1, logits_last);
}

int
inf_decode(
    struct inf_seq *const *seqs, const int32_t *tokens, int n, float *logits)
{
	struct inf_batch_item stack[STEP_STACK], *it = stack;
	int i, rc;

	if (n < 1 || seqs[0] == NULL)
		return INF_EPARAM;
	if (n > STEP_STACK) {
		it = calloc((size_t)n, sizeof(*it));
		if (it == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		it[i].seq = seqs[i];
		it[i].tokens = &tokens[i];
		it[i].n_tokens = 1;
		it[i].logits = INF_LOGITS_LAST;
	}
	rc = inf_forward(seqs[0]->model, it, n, logits);
	if (it != stack)
		free(it);
	return rc;
}
