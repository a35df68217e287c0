/*
 * inference/generate.c: the generation loop: a prompt's prefill, then one
 * batched decode step at a time over every unfinished generation, each
 * sampling its own token and checking its own stop conditions (EOS ids,
 * stop token sequences, the caller's check, max tokens, a full sequence).
 * It works on token ids only and must never hold a tokenizer; nor may a
 * finished generation ever be stepped again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inference/model_internal.h"

struct inf_gen {
	struct inf_seq *seq;
	const struct inf_stop *stop;
	struct inf_sampler *sampler;
	const int32_t *eos;
	int n_eos;
	int32_t *out; /* max_tokens ids */
	int n_out, drop;
	enum inf_finish finish;
};

static int
is_eos(const struct inf_gen *g, int32_t tok)
{
	int i;

	for (i = 0; i < g->n_eos; i++)
		if (g->eos[i] == tok)
			return 1;
	return 0;
}

static int
ends_with_stop_seq(const struct inf_gen *g)
{
	const struct inf_stop *st = g->stop;
	int i, len;

	for (i = 0; i < st->n_stop_seqs; i++) {
		len = st->stop_lens[i];
		if (len > 0 && len <= g->n_out &&
		    memcmp(g->out + g->n_out - len, st->stop_seqs[i],
		        (size_t)len * sizeof(int32_t)) == 0)
			return len;
	}
	return 0;
}

/* Take a sampled token and decide whether the generation goes on. */
static void
accept(struct inf_gen *g, int32_t tok)
{
	const struct inf_stop *st = g->stop;
	int drop = 0;

	if (is_eos(g, tok)) {
		g->finish = INF_FINISH_EOS;
		return;
	}
	g->out[g->n_out++] = tok;
	if ((drop = ends_with_stop_seq(g)) > 0 ||
	    (st->check != NULL &&
	        st->check(g->out, g->n_out, &drop, st->check_arg))) {
		g->finish = INF_FINISH_STOP;
		g->drop = drop < 0 ? 0 : drop > g->n_out ? g->n_out : drop;
		return;
	}
	if (g->n_out >= st->max_tokens ||
	    inf_seq_length(g->seq) >= inf_seq_capacity(g->seq))
		g->finish = INF_FINISH_LENGTH;
}

int
inf_gen_start(struct inf_seq *s, const int32_t *prompt, int n,
    const struct inf_sampling *p, const struct inf_stop *stop,
    struct inf_gen **out)
{
	const struct inf_model_info *in = inf_model_info(inf__seq_model(s));
	struct inf_gen *g;
	float *logits = NULL;
	int rc, i;

	*out = NULL;
	if (n < 1 || prompt == NULL || stop == NULL || stop->max_tokens < 1 ||
	    stop->n_stop_seqs < 0 || stop->n_eos < 0 ||
	    (stop->n_stop_seqs > 0 &&
	        (stop->stop_seqs == NULL || stop->stop_lens == NULL)))
		return INF_EPARAM;
	for (i = 0; i < stop->n_stop_seqs; i++)
		if (stop->stop_lens[i] < 0 ||
		    (stop->stop_lens[i] > 0 && stop->stop_seqs[i] == NULL))
			return INF_EPARAM;
	if (n > inf_seq_capacity(s) - inf_seq_length(s))
		return INF_ECONTEXT;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->seq = s;
	g->stop = stop;
	if (!stop->ignore_eos) {
		g->eos = stop->eos_ids != NULL ? stop->eos_ids : in->eos_ids;
		g->n_eos = stop->eos_ids != NULL ? stop->n_eos : in->n_eos;
	}
	g->out = malloc((size_t)stop->max_tokens * sizeof(int32_t));
	logits = malloc((size_t)in->vocab_size * sizeof(float));
	if (g->out == NULL || logits == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = inf_sampler_new(p, in->vocab_size, &g->sampler)) != 0)
		goto fail;
	inf_sampler_prompt(g->sampler, prompt, n);
	if ((rc = inf_prefill(s, prompt, n, logits)) != 0)
		goto fail;
	accept(g, inf_sampler_next(g->sampler, logits));
	free(logits);
	*out = g;
	return 0;
fail:
	free(logits);
	inf_gen_free(g);
	return rc;
}

#define GEN_STACK 64

/*
 * The decode step through the backend's forward_top, when it has one and
 * every sampler's choice depends on the top INF_TOP_K logits alone: only
 * candidates come back from the device. INF_EUNSUPPORTED: nothing ran,
 * take the full-logits path.
 */
static int
step_top(struct inf_gen *const *gens, struct inf_seq *const *seqs,
    const int32_t *toks, const int *idx, int k)
{
	struct inf_batch_item *it;
	float *top_l;
	int32_t *top_id;
	int i, rc;

	for (i = 0; i < k; i++)
		if (!inf__sampler_top_ok(gens[idx[i]]->sampler))
			return INF_EUNSUPPORTED;
	it = calloc((size_t)k, sizeof(*it));
	top_l = malloc((size_t)k * INF_TOP_K * sizeof(float));
	top_id = malloc((size_t)k * INF_TOP_K * sizeof(int32_t));
	if (it == NULL || top_l == NULL || top_id == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < k; i++) {
		it[i].seq = seqs[i];
		it[i].tokens = &toks[i];
		it[i].n_tokens = 1;
		it[i].logits = INF_LOGITS_LAST;
	}
	rc = inf__forward_top(inf__seq_model(seqs[0]), it, k, top_l, top_id);
	if (rc != 0)
		goto out;
	for (i = 0; i < k; i++) {
		struct inf_gen *g = gens[idx[i]];

		accept(g,
		    inf__sampler_next_top(g->sampler,
		        top_l + (size_t)i * INF_TOP_K,
		        top_id + (size_t)i * INF_TOP_K, INF_TOP_K));
	}
out:
	free(it);
	free(top_l);
	free(top_id);
	return rc;
}

int
inf_gen_step(struct inf_gen *const *gens, int n)
{
	struct inf_seq *stack_seqs[GEN_STACK], **seqs = stack_seqs;
	int32_t stack_toks[GEN_STACK], *toks = stack_toks;
	int idx_stack[GEN_STACK], *idx = idx_stack;
	size_t V;
	float *logits = NULL;
	int i, k = 0, rc;

	if (n < 1)
		return INF_EPARAM;
	if (n > GEN_STACK) {
		seqs = malloc((size_t)n * sizeof(*seqs));
		toks = malloc((size_t)n * sizeof(*toks));
		idx = malloc((size_t)n * sizeof(*idx));
		if (seqs == NULL || toks == NULL || idx == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (gens[i] == NULL) {
			rc = INF_EPARAM;
			goto out;
		}
		if (gens[i]->finish != INF_FINISH_NONE)
			continue;
		seqs[k] = gens[i]->seq;
		toks[k] = gens[i]->out[gens[i]->n_out - 1];
		idx[k++] = i;
	}
	rc = 0;
	if (k == 0)
		goto out;
	if ((rc = step_top(gens, seqs, toks, idx, k)) != INF_EUNSUPPORTED)
		goto out;
	V = (size_t)inf_model_info(inf__seq_model(seqs[0]))->vocab_size;
	logits = malloc((size_t)k * V * sizeof(float));
	if (logits == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = inf_decode(seqs, toks, k, logits)) != 0)
		goto out;
	for (i = 0; i < k; i++) {
		struct inf_gen *g = gens[idx[i]];

		accept(g, inf_sampler_next(g->sampler, logits + (size_t)i * V));
	}
out:
	free(logits);
	if (seqs != stack_seqs) {
		free(seqs);
		free(toks);
		free(idx);
	}
	return rc;
}

enum inf_finish
inf_gen_finish(const struct inf_gen *g)
{
	return g->finish;
}

int
inf_gen_output(const struct inf_gen *g, const int32_t **ids)
{
	*ids = g->out;
	return g->n_out - g->drop;
}

void
inf_gen_free(struct inf_gen *g)
{
	if (g == NULL)
		return;
	inf_sampler_free(g->sampler);
	free(g->out);
	free(g);
}

int
inf_generate(struct inf_seq *s, const int32_t *prompt, int n,
    const struct inf_sampling *p, const struct inf_stop *stop, inf_token_cb *cb,
    void *arg, int32_t *out, int out_cap, int *n_out, enum inf_finish *finish)
{
	struct inf_gen *g;
	const int32_t *ids;
	int rc, have = 0, got;

	*n_out = 0;
	*finish = INF_FINISH_NONE;
	if ((rc = inf_gen_start(s, prompt, n, p, stop, &g)) != 0)
		return rc;
	for (;;) {
		got = inf_gen_output(g, &ids);
		if (got > have && cb != NULL && cb(ids, got, arg)) {
			g->finish = INF_FINISH_STOP;
			break;
		}
		have = got;
		if (g->finish != INF_FINISH_NONE)
			break;
		if ((rc = inf_gen_step(&g, 1)) != 0)
			break;
	}
	got = inf_gen_output(g, &ids);
	if (out != NULL) {
		*n_out = got < out_cap ? got : out_cap;
		memcpy(out, ids, (size_t)*n_out * sizeof(int32_t));
	}
	*finish = g->finish;
	inf_gen_free(g);
	return rc;
}
