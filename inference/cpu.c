/*
 * inference/cpu.c: the CPU backend behind struct inf_backend_ops: a Llama /
 * Qwen2 forward pass in fp32 over the mapped 16-bit weights, for a ragged
 * batch of sequences at once (whole prompts and single decode tokens
 * alike), with a per-sequence KV cache and a persistent thread pool that
 * splits every matrix by rows and attention by (token, head). It must never
 * read past a sequence's cache or let one sequence see another's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/model_internal.h"

struct cpu_kv {
	float *k, *v; /* [layer][capacity][kv_dim] */
	int capacity;
};

struct cpu_state {
	const struct inf_model_info *info;
	const struct inf_weights *w;
	struct cpu_pool *pool;
	float *inv_freq; /* head_dim / 2 */
	/* per-step scratch, grown on demand */
	float *x, *xn, *q, *k, *v, *att, *gate, *up, *rope, *scores;
	int *tok_item, *tok_pos;
	size_t cap_tokens, cap_scores;
};

/* One matrix of a pool run: y = x W^T + bias over all step tokens. */
struct mm_job {
	float *y;
	int ldy;
	const float *x;
	const struct inf_matrix *w;
	const float *bias;
};

/* What a thread does with its own rows once its matrices are done, so
 * the elementwise step after a matrix runs in parallel too instead of on
 * the caller alone between two pool runs. Same arithmetic, same results. */
enum mm_epilogue {
	MM_PLAIN = 0,
	MM_SWIGLU,   /* jobs[0] gate, jobs[1] up: gate = silu(gate) * up */
	MM_RESIDUAL, /* resid += jobs[0].y (the residual stream) */
};

struct mm_task {
	const struct mm_job *jobs;
	int n_jobs, n_tokens;
	enum mm_epilogue epilogue;
	float *resid;
};

static void
mm_epilogue(const struct mm_task *t, int r0, int r1)
{
	const struct mm_job *jb = &t->jobs[0];
	int tok, r;

	for (tok = 0; tok < t->n_tokens; tok++) {
		float *y = jb->y + (size_t)tok * jb->ldy;

		if (t->epilogue == MM_SWIGLU) {
			const float *up = t->jobs[1].y + (size_t)tok * jb->ldy;

			for (r = r0; r < r1; r++) {
				float g = y[r];

				y[r] = g / (1.0f + expf(-g)) * up[r];
			}
		} else {
			float *x = t->resid + (size_t)tok * jb->ldy;

			for (r = r0; r < r1; r++)
				x[r] += y[r];
		}
	}
}

static void
mm_run(void *ctx, int index, int count)
{
	const struct mm_task *t = ctx;
	int j, rows, per, r0 = 0, r1 = 0;

	for (j = 0; j < t->n_jobs; j++) {
		const struct mm_job *jb = &t->jobs[j];

		rows = jb->w->rows;
		per = ((rows + count - 1) / count + 3) & ~3;
		r0 = index * per;
		r1 = r0 + per < rows ? r0 + per : rows;
		if (r0 < r1)
			cpu__matmul_rows(jb->y, jb->ldy, jb->x, t->n_tokens,
			    jb->w, jb->bias, r0, r1);
	}
	/* the epilogue's jobs share one row count, hence one split */
	if (t->epilogue != MM_PLAIN && r0 < r1)
		mm_epilogue(t, r0, r1);
}

static void
mm_then(struct cpu_state *s, const struct mm_job *jobs, int n_jobs,
    int n_tokens, enum mm_epilogue epilogue, float *resid)
{
	struct mm_task t = { jobs, n_jobs, n_tokens, epilogue, resid };

	cpu__pool_run(s->pool, mm_run, &t);
}

static void
mm(struct cpu_state *s, const struct mm_job *jobs, int n_jobs, int n_tokens)
{
	mm_then(s, jobs, n_jobs, n_tokens, MM_PLAIN, NULL);
}

static void
rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
	double ss = 0;
	float scale;
	int i;

	for (i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	scale = 1.0f / sqrtf((float)(ss / n) + eps);
	for (i = 0; i < n; i++)
		out[i] = w[i] * (x[i] * scale);
}

/* Rotate every head of @p v (n_heads x head_dim) by the token's angles,
 * in the half-split (NeoX) layout HF checkpoints use. */
static void
rope_apply(float *v, int n_heads, int hd, const float *cs)
{
	int half = hd / 2, h, i;

	for (h = 0; h < n_heads; h++, v += hd)
		for (i = 0; i < half; i++) {
			float c = cs[i], sn = cs[half + i];
			float a = v[i], b = v[i + half];

			v[i] = a * c - b * sn;
			v[i + half] = b * c + a * sn;
		}
}

struct att_task {
	struct cpu_state *s;
	const struct inf_step_item *items;
	int layer, n_tokens;
	size_t score_stride;
};

static void
att_run(void *ctx, int index, int count)
{
	const struct att_task *a = ctx;
	const struct cpu_state *s = a->s;
	const struct inf_model_info *in = s->info;
	int hd = in->head_dim, nh = in->n_heads,
	    group = in->n_heads / in->n_kv_heads;
	int kvd = in->n_kv_heads * hd, qd = nh * hd;
	float *sc = s->scores + (size_t)index * a->score_stride;
	float scale = 1.0f / sqrtf((float)hd);
	int u, units = a->n_tokens * nh;

	for (u = index; u < units; u += count) {
		int t = u / nh, h = u % nh, p = s->tok_pos[t], j, d;
		const struct cpu_kv *kv = a->items[s->tok_item[t]].kv;
		size_t base = (size_t)a->layer * kv->capacity * kvd +
		    (size_t)(h / group) * hd;
		const float *q = s->q + (size_t)t * qd + (size_t)h * hd;
		float *o = s->att + (size_t)t * qd + (size_t)h * hd;
		float mx = -INFINITY, sum = 0;

		for (j = 0; j <= p; j++) {
			const float *kr = kv->k + base + (size_t)j * kvd;
			float dot = 0;

			for (d = 0; d < hd; d++)
				dot += q[d] * kr[d];
			sc[j] = dot * scale;
			if (sc[j] > mx)
				mx = sc[j];
		}
		for (j = 0; j <= p; j++) {
			sc[j] = expf(sc[j] - mx);
			sum += sc[j];
		}
		memset(o, 0, (size_t)hd * sizeof(float));
		for (j = 0; j <= p; j++) {
			const float *vr = kv->v + base + (size_t)j * kvd;
			float wgt = sc[j] / sum;

			for (d = 0; d < hd; d++)
				o[d] += wgt * vr[d];
		}
	}
}

static int
grow(float **p, size_t n)
{
	float *q = realloc(*p, n * sizeof(float));

	if (q == NULL)
		return -ENOMEM;
	*p = q;
	return 0;
}

static int
scratch(struct cpu_state *s, size_t T, size_t max_pos)
{
	const struct inf_model_info *in = s->info;
	size_t H = (size_t)in->hidden_size,
	       qd = (size_t)in->n_heads * in->head_dim;
	size_t kd = (size_t)in->n_kv_heads * in->head_dim;
	size_t nthreads = (size_t)cpu__pool_size(s->pool);
	int *ti, *tp;

	if (T > s->cap_tokens) {
		if (grow(&s->x, T * H) || grow(&s->xn, T * H) ||
		    grow(&s->q, T * qd) || grow(&s->att, T * qd) ||
		    grow(&s->k, T * kd) || grow(&s->v, T * kd) ||
		    grow(&s->gate, T * in->intermediate_size) ||
		    grow(&s->up, T * in->intermediate_size) ||
		    grow(&s->rope, T * in->head_dim))
			return -ENOMEM;
		ti = realloc(s->tok_item, T * sizeof(int));
		if (ti == NULL)
			return -ENOMEM;
		s->tok_item = ti;
		tp = realloc(s->tok_pos, T * sizeof(int));
		if (tp == NULL)
			return -ENOMEM;
		s->tok_pos = tp;
		s->cap_tokens = T;
	}
	if (max_pos * nthreads > s->cap_scores) {
		if (grow(&s->scores, max_pos * nthreads))
			return -ENOMEM;
		s->cap_scores = max_pos * nthreads;
	}
	return 0;
}

static void
layer_attention(struct cpu_state *s, const struct inf_layer *L, int l,
    const struct inf_step_item *items, int n_items, int T)
{
	const struct inf_model_info *in = s->info;
	int H = in->hidden_size, hd = in->head_dim, t;
	int qd = in->n_heads * hd, kd = in->n_kv_heads * hd;
	struct mm_job qkv[3] = {
		{ s->q, qd, s->xn, &L->q, L->q_bias },
		{ s->k, kd, s->xn, &L->k, L->k_bias },
		{ s->v, kd, s->xn, &L->v, L->v_bias },
	};
	struct mm_job o = { s->xn, H, s->att, &L->o, L->o_bias };
	struct att_task at = { s, items, l, T,
		s->cap_scores / (size_t)cpu__pool_size(s->pool) };

	for (t = 0; t < T; t++)
		rmsnorm(s->xn + (size_t)t * H, s->x + (size_t)t * H,
		    L->attn_norm, H, in->rms_norm_eps);
	mm(s, qkv, 3, T);
	for (t = 0; t < T; t++) {
		const float *cs = s->rope + (size_t)t * hd;
		const struct cpu_kv *kv = items[s->tok_item[t]].kv;
		size_t at_pos = ((size_t)l * kv->capacity + s->tok_pos[t]) * kd;

		rope_apply(s->q + (size_t)t * qd, in->n_heads, hd, cs);
		rope_apply(s->k + (size_t)t * kd, in->n_kv_heads, hd, cs);
		memcpy(kv->k + at_pos, s->k + (size_t)t * kd,
		    (size_t)kd * sizeof(float));
		memcpy(kv->v + at_pos, s->v + (size_t)t * kd,
		    (size_t)kd * sizeof(float));
	}
	(void)n_items;
	cpu__pool_run(s->pool, att_run, &at);
	mm_then(s, &o, 1, T, MM_RESIDUAL, s->x);
}

static void
layer_mlp(struct cpu_state *s, const struct inf_layer *L, int T)
{
	const struct inf_model_info *in = s->info;
	int H = in->hidden_size, I = in->intermediate_size;
	struct mm_job gu[2] = {
		{ s->gate, I, s->xn, &L->gate, NULL },
		{ s->up, I, s->xn, &L->up, NULL },
	};
	struct mm_job down = { s->xn, H, s->gate, &L->down, NULL };
	int t;

	for (t = 0; t < T; t++)
		rmsnorm(s->xn + (size_t)t * H, s->x + (size_t)t * H,
		    L->mlp_norm, H, in->rms_norm_eps);
	mm_then(s, gu, 2, T, MM_SWIGLU, NULL);
	mm_then(s, &down, 1, T, MM_RESIDUAL, s->x);
}

/* The final norm of the wanted rows, packed, then the classifier. */
static void
logits_out(struct cpu_state *s, const struct inf_step_item *items, int n_items,
    float *logits)
{
	const struct inf_model_info *in = s->info;
	int H = in->hidden_size, i, j, t = 0, nw = 0;
	struct mm_job head = { logits, in->vocab_size, s->xn, &s->w->lm_head,
		NULL };

	for (i = 0; i < n_items; i++) {
		for (j = 0; j < items[i].n_tokens; j++, t++) {
			if (items[i].logits == INF_LOGITS_NONE ||
			    (items[i].logits == INF_LOGITS_LAST &&
			        j != items[i].n_tokens - 1))
				continue;
			rmsnorm(s->xn + (size_t)nw * H, s->x + (size_t)t * H,
			    s->w->final_norm, H, in->rms_norm_eps);
			nw++;
		}
	}
	if (nw > 0)
		mm(s, &head, 1, nw);
}

static int
cpu_forward(
    void *state, const struct inf_step_item *items, int n_items, float *logits)
{
	struct cpu_state *s = state;
	const struct inf_model_info *in = s->info;
	int H = in->hidden_size, hd = in->head_dim, half = hd / 2;
	size_t T = 0, max_pos = 0;
	int i, j, l, t, rc;

	for (i = 0; i < n_items; i++) {
		T += (size_t)items[i].n_tokens;
		if ((size_t)(items[i].pos + items[i].n_tokens) > max_pos)
			max_pos = (size_t)(items[i].pos + items[i].n_tokens);
	}
	if ((rc = scratch(s, T, max_pos)) != 0)
		return rc;
	for (i = 0, t = 0; i < n_items; i++)
		for (j = 0; j < items[i].n_tokens; j++, t++) {
			float *cs = s->rope + (size_t)t * hd;
			int d;

			s->tok_item[t] = i;
			s->tok_pos[t] = items[i].pos + j;
			inf__to_f32(s->x + (size_t)t * H,
			    (const char *)s->w->embed.data +
			        (size_t)items[i].tokens[j] * H *
			            inf__dtype_size(s->w->embed.dtype),
			    s->w->embed.dtype, (size_t)H);
			/* HF: angle = position * inv_freq in fp32 */
			for (d = 0; d < half; d++) {
				float ang =
				    (float)s->tok_pos[t] * s->inv_freq[d];

				cs[d] = cosf(ang);
				cs[half + d] = sinf(ang);
			}
		}
	for (l = 0; l < in->n_layers; l++) {
		layer_attention(s, &s->w->layers[l], l, items, n_items, (int)T);
		layer_mlp(s, &s->w->layers[l], (int)T);
	}
	logits_out(s, items, n_items, logits);
	return 0;
}

static int
cpu_kv_alloc(void *state, int capacity, void **out)
{
	struct cpu_state *s = state;
	const struct inf_model_info *in = s->info;
	size_t n =
	    (size_t)in->n_layers * capacity * in->n_kv_heads * in->head_dim;
	struct cpu_kv *kv = calloc(1, sizeof(*kv));

	*out = NULL;
	if (kv == NULL)
		return -ENOMEM;
	kv->capacity = capacity;
	kv->k = malloc(n * sizeof(float) + 1);
	kv->v = malloc(n * sizeof(float) + 1);
	if (kv->k == NULL || kv->v == NULL) {
		free(kv->k);
		free(kv->v);
		free(kv);
		return -ENOMEM;
	}
	*out = kv;
	return 0;
}

static void
cpu_kv_free(void *state, void *p)
{
	struct cpu_kv *kv = p;

	(void)state;
	if (kv == NULL)
		return;
	free(kv->k);
	free(kv->v);
	free(kv);
}

static void
cpu_unload(void *state)
{
	struct cpu_state *s = state;

	if (s == NULL)
		return;
	cpu__pool_free(s->pool);
	free(s->inv_freq);
	free(s->x);
	free(s->xn);
	free(s->q);
	free(s->k);
	free(s->v);
	free(s->att);
	free(s->gate);
	free(s->up);
	free(s->rope);
	free(s->scores);
	free(s->tok_item);
	free(s->tok_pos);
	free(s);
}

static int
cpu_load(const struct inf_model_info *info, const struct inf_weights *w,
    int threads, void **state, char *err, size_t errlen)
{
	struct cpu_state *s;
	int rc;

	*state = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto nomem;
	s->info = info;
	s->w = w;
	s->inv_freq = malloc((size_t)info->head_dim / 2 * sizeof(float));
	if (s->inv_freq == NULL)
		goto nomem;
	inf__rope_freqs(info, s->inv_freq);
	if ((rc = cpu__pool_new(threads, &s->pool)) != 0)
		goto fail;
	*state = s;
	return 0;
nomem:
	rc = -ENOMEM;
fail:
	snprintf(err, errlen, "cpu backend: cannot start %d threads: %s",
	    threads, sr_strerror(rc));
	cpu_unload(s);
	return rc;
}

const struct inf_backend_ops inf_backend_cpu = {
	.name = "cpu",
	.load = cpu_load,
	.unload = cpu_unload,
	.kv_alloc = cpu_kv_alloc,
	.kv_free = cpu_kv_free,
	.forward = cpu_forward,
};
