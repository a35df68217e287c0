/*
 * appliance/serve_models.c: the models being served: loading a Hugging
 * Face folder with its tokenizer and chat family and starting its
 * scheduler, the registry (listed models, the default), reference counts
 * so that unloading or switching never drops a request in flight, the
 * listings for /v1/models and /api/models, readiness and the metrics of
 * every listed model; serve_open()/serve_close() build and end it all.
 *
 * It must never free a model a request still holds, never list two
 * models under one name, and never load a model on a loop thread
 * (start-up and the admin API's worker only).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "appliance/serve_impl.h"
#include "lib/sr.h"

int
serve_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= SERVE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == '-'))
			return 0;
	}
	return 1;
}

/* Every load's own id, never reused while the daemon runs. */
static atomic_ullong load_count;

static void
model_free(struct serve_model *m)
{
	if (m == NULL)
		return;
	sched_stop(m->sched);
	inf_tok_free(m->tok);
	inf_model_close(m->m);
	free(m);
}

int
serve_model_load(struct serve *s, const char *name, const char *dir,
    struct serve_model **out, char err[256])
{
	struct inf_open_opts oo = { s->backend, s->threads };
	struct serve_model *m;
	char ierr[INF_ERR_MAX];
	int rc;

	*out = NULL;
	if (!serve_name_ok(name)) {
		snprintf(err, 256,
		    "model name \"%.64s\" must be 1-63 of "
		    "A-Z a-z 0-9 . _ -",
		    name);
		return -EINVAL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->dir, sizeof(m->dir), "%s", dir);
	m->created = (int64_t)time(NULL);
	m->load_id = atomic_fetch_add(&load_count, 1) + 1;
	atomic_store(&m->refs, 1);
	if ((rc = inf_model_open(dir, &oo, &m->m, ierr)) != 0) {
		snprintf(err, 256, "%s", ierr);
		goto fail;
	}
	if ((rc = inf_tok_load(dir, &m->tok, err)) != 0)
		goto fail;
	/* Prompts are the callers' data: the tokenizer keeps none of them
	 * between requests (docs/operations.md, "What stays in memory"). */
	inf_tok_set_forget(m->tok, 1);
	rc = inf_chat_family_resolve(m->tok, NULL, &m->family, err);
	if (rc != 0)
		m->family = INF_CHAT_UNKNOWN; /* completions still work */
	m->reasoning = m->family == INF_CHAT_DEEPSEEK_R1;
	m->context = inf_model_info(m->m)->max_position_embeddings;
	rc = sched_start(m->m, m->tok, &s->so, &m->mx, &m->sched);
	if (rc != 0) {
		snprintf(err, 256, "%s: scheduler: %s", name, sr_strerror(rc));
		goto fail;
	}
	*out = m;
	return 0;
fail:
	model_free(m);
	return rc;
}

int
serve_model_add(struct serve *s, struct serve_model *m, int make_default)
{
	struct serve_model *it;

	pthread_mutex_lock(&s->mu);
	for (it = s->models; it != NULL; it = it->next)
		if (strcmp(it->name, m->name) == 0) {
			pthread_mutex_unlock(&s->mu);
			return -EEXIST;
		}
	m->next = NULL;
	if (s->models == NULL) {
		s->models = m;
	} else {
		for (it = s->models; it->next != NULL; it = it->next)
			;
		it->next = m;
	}
	if (make_default || s->default_name[0] == '\0')
		snprintf(
		    s->default_name, sizeof(s->default_name), "%s", m->name);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

struct serve_model *
serve_model_get(struct serve *s, const char *name)
{
	struct serve_model *m;

	if (name == NULL || name[0] == '\0')
		name = NULL;
	pthread_mutex_lock(&s->mu);
	for (m = s->models; m != NULL; m = m->next)
		if (strcmp(m->name, name != NULL ? name : s->default_name) == 0)
			break;
	if (m != NULL)
		atomic_fetch_add(&m->refs, 1);
	pthread_mutex_unlock(&s->mu);
	return m;
}

void
serve_model_put(struct serve_model *m)
{
	if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1)
		model_free(m); /* nothing runs on it: the join is quick */
}

int
serve_model_remove(struct serve *s, const char *name)
{
	struct serve_model **pp, *m = NULL;

	pthread_mutex_lock(&s->mu);
	for (pp = &s->models; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0) {
			m = *pp;
			*pp = m->next;
			break;
		}
	if (m != NULL && strcmp(s->default_name, name) == 0)
		snprintf(s->default_name, sizeof(s->default_name), "%s",
		    s->models != NULL ? s->models->name : "");
	pthread_mutex_unlock(&s->mu);
	if (m == NULL)
		return -ENOENT;
	serve_model_put(m);
	return 0;
}

int
serve_model_set_default(struct serve *s, const char *name)
{
	struct serve_model *m;
	int rc = -ENOENT;

	pthread_mutex_lock(&s->mu);
	for (m = s->models; m != NULL; m = m->next)
		if (strcmp(m->name, name) == 0) {
			snprintf(s->default_name, sizeof(s->default_name), "%s",
			    name);
			rc = 0;
		}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

char *
serve_models_json(struct serve *s, int admin, size_t *len)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(NULL);
	yyjson_mut_val *root, *arr, *o;
	struct serve_model *m;
	char *text = NULL;
	int running, waiting;

	if (d == NULL)
		return NULL;
	root = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, root);
	arr = yyjson_mut_arr(d);
	pthread_mutex_lock(&s->mu);
	if (admin) {
		yyjson_mut_obj_add_strcpy(d, root, "default", s->default_name);
		yyjson_mut_obj_add_val(d, root, "models", arr);
	} else {
		yyjson_mut_obj_add_str(d, root, "object", "list");
		yyjson_mut_obj_add_val(d, root, "data", arr);
	}
	for (m = s->models; m != NULL; m = m->next) {
		o = yyjson_mut_arr_add_obj(d, arr);
		if (!admin) {
			yyjson_mut_obj_add_strcpy(d, o, "id", m->name);
			yyjson_mut_obj_add_str(d, o, "object", "model");
			yyjson_mut_obj_add_int(d, o, "created", m->created);
			yyjson_mut_obj_add_str(d, o, "owned_by", "strongroom");
			yyjson_mut_obj_add_int(
			    d, o, "max_model_len", m->context);
			continue;
		}
		sched_load(m->sched, &running, &waiting);
		yyjson_mut_obj_add_strcpy(d, o, "name", m->name);
		yyjson_mut_obj_add_strcpy(d, o, "path", m->dir);
		yyjson_mut_obj_add_str(d, o, "state", "ready");
		yyjson_mut_obj_add_bool(
		    d, o, "default", strcmp(m->name, s->default_name) == 0);
		yyjson_mut_obj_add_strcpy(
		    d, o, "architecture", inf_model_info(m->m)->architecture);
		yyjson_mut_obj_add_str(
		    d, o, "chat_family", inf_chat_family_name(m->family));
		yyjson_mut_obj_add_int(d, o, "context", m->context);
		yyjson_mut_obj_add_int(d, o, "running", running);
		yyjson_mut_obj_add_int(d, o, "waiting", waiting);
		yyjson_mut_obj_add_int(d, o, "created", m->created);
	}
	pthread_mutex_unlock(&s->mu);
	text = yyjson_mut_write(d, 0, len);
	yyjson_mut_doc_free(d);
	return text;
}

/* ------------------------------------------------------------------ */
/* The serving part's life                                              */
/* ------------------------------------------------------------------ */

/* "NAME=DIR,NAME=DIR": load each and list it. */
static int
load_configured(struct serve *s, const char *list, char err[256])
{
	char *copy = strdup(list), *item, *save = NULL, *eq;
	struct serve_model *m;
	int rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		if ((eq = strchr(item, '=')) == NULL || eq == item ||
		    eq[1] == '\0') {
			snprintf(err, 256, "models: \"%.64s\" is not NAME=DIR",
			    item);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		if ((rc = serve_model_load(s, item, eq + 1, &m, err)) != 0)
			break;
		if ((rc = serve_model_add(s, m, 0)) != 0) {
			snprintf(
			    err, 256, "models: \"%s\" is listed twice", item);
			serve_model_put(m);
		}
	}
	free(copy);
	return rc;
}

/* serve_backend: "cpu", "cuda" (refused when no GPU can be used), or
 * "auto" (CUDA when a GPU can be used, else the CPU, said in the log). */
static int
pick_backend(
    const char *want, const struct inf_backend_ops **out, char err[256])
{
	char why[200] = "";

	*out = &inf_backend_cpu;
	if (strcmp(want, "cpu") == 0)
		return 0; /* no CUDA probe at all */
	if (inf_cuda_available(why, sizeof(why))) {
		*out = &inf_backend_cuda;
		log_info("serving on the GPU: %s (CUDA backend)", why);
		return 0;
	}
	if (strcmp(want, "cuda") == 0) {
		snprintf(err, 256, "serve_backend = cuda: %s", why);
		return -ENODEV;
	}
	log_info("serving on the CPU: %s", why);
	return 0;
}

int
serve_open(const struct app_config *cfg, struct serve **out, char err[256])
{
	struct serve *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	s->so = (struct sched_opts){ (int)cfg->serve_max_batch,
		(int)cfg->serve_batch_wait_ms, (int)cfg->serve_queue_max,
		(uint64_t)cfg->serve_kv_budget_mb << 20, 4096 };
	s->threads = (int)cfg->serve_threads;
	if ((rc = pick_backend(cfg->serve_backend, &s->backend, err)) != 0)
		goto fail;
	rc = serve_limits_new(cfg->serve_key_concurrency,
	    cfg->serve_key_tokens_per_s, cfg->serve_key_tokens_burst,
	    &s->limits);
	if (rc == 0)
		rc = serve_cache_new(cfg->serve_cache_ttl_s,
		    cfg->serve_cache_entries, 64u << 20, &s->cache);
	if (rc != 0) {
		snprintf(err, 256, "serving: out of memory");
		goto fail;
	}
	if ((rc = load_configured(s, cfg->models, err)) != 0)
		goto fail;
	if (cfg->model_default[0] != '\0' &&
	    serve_model_set_default(s, cfg->model_default) != 0) {
		snprintf(err, 256, "model_default: \"%s\" is not in models",
		    cfg->model_default);
		rc = -EINVAL;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	serve_close(s);
	return rc;
}

void
serve_close(struct serve *s)
{
	struct serve_model *m, *next;

	if (s == NULL)
		return;
	for (m = s->models; m != NULL; m = next) {
		next = m->next;
		serve_model_put(m);
	}
	serve_cache_free(s->cache);
	serve_limits_free(s->limits);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int
serve_ready(struct serve *s, char *text, size_t len)
{
	struct serve_model *m;
	int n = 0;

	if (s == NULL) {
		snprintf(text, len, "none configured");
		return 0;
	}
	pthread_mutex_lock(&s->mu);
	for (m = s->models; m != NULL; m = m->next)
		n++;
	if (n == 0)
		snprintf(text, len, "none configured");
	else
		snprintf(text, len, "ready");
	pthread_mutex_unlock(&s->mu);
	return n > 0;
}

#define METRIC_MODELS 32

int
serve_metrics_render(struct serve *s, struct buf *out)
{
	struct serve_model *held[METRIC_MODELS], *m;
	const char *names[METRIC_MODELS];
	struct serve_metrics *mx[METRIC_MODELS];
	int n = 0, i, rc;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	for (m = s->models; m != NULL && n < METRIC_MODELS; m = m->next) {
		atomic_fetch_add(&m->refs, 1);
		held[n] = m;
		names[n] = m->name;
		mx[n++] = &m->mx;
	}
	pthread_mutex_unlock(&s->mu);
	rc = serve_metrics_write(out, names, mx, n);
	for (i = 0; i < n; i++)
		serve_model_put(held[i]);
	return rc;
}
