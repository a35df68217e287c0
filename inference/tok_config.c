/*
 * inference/tok_config.c: the parts of tokenizer.json around the BPE model
 * (normalizer, pre-tokenizer regexes, decoder), tokenizer_config.json
 * (bos/eos, add_bos_token, chat template) and the tokenizer's small
 * accessors and buffers. It must never accept a step it cannot run
 * exactly as Hugging Face does: anything else is refused by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "inference/tok_internal.h"
#include "lib/sr.h"

/* GPT-2's ByteLevel regex, used when a ByteLevel step has use_regex. */
static const char gpt2_regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+"
                                 "| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* The split regexes of Qwen2 (DeepSeek-R1-Distill-Qwen) and Llama-3
 * (DeepSeek-R1-Distill-Llama): on ASCII text tok_encode.c matches them by
 * hand, exactly as PCRE2 would, several times faster. */
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---------------------------------------------------------------- */
/* Normalizer, pre-tokenizer, decoder                                 */
/* ---------------------------------------------------------------- */

int
inf_tok__load_normalizer(
    struct inf_tok *tok, const char *path, yyjson_val *n, char err[256])
{
	const char *type;
	yyjson_val *v;
	size_t idx, max;
	int rc;

	if (n == NULL || yyjson_is_null(n))
		return 0;
	type = yyjson_get_str(yyjson_obj_get(n, "type"));
	if (type != NULL && strcmp(type, "NFC") == 0) {
		tok->nfc = 1;
		return 0;
	}
	if (type != NULL && strcmp(type, "Sequence") == 0 &&
	    yyjson_is_arr(yyjson_obj_get(n, "normalizers"))) {
		yyjson_arr_foreach(
		    yyjson_obj_get(n, "normalizers"), idx, max, v)
		{
			rc = inf_tok__load_normalizer(tok, path, v, err);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	snprintf(err, 256,
	    "%s: normalizer type \"%.40s\" is not supported (NFC only)", path,
	    type ? type : "(none)");
	return -ENOTSUP;
}

/* Onig's \s (what Hugging Face runs) also matches U+0085; PCRE2's does not.
 * Rewrite \s outside classes to [\s\x{85}], inside to \s\x{85}, and \S
 * outside classes to [^\s\x{85}], so both engines split alike. */
static char *
onig_spaces(const char *pat, size_t len, size_t *outlen)
{
	char *out = malloc(len * 10 + 1), *o = out;
	int in_class = 0;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (pat[i] == '\\' && i + 1 < len) {
			char c = pat[i + 1];

			if (c == 's' && in_class)
				o += sprintf(o, "\\s\\x{85}");
			else if (c == 's')
				o += sprintf(o, "[\\s\\x{85}]");
			else if (c == 'S' && !in_class)
				o += sprintf(o, "[^\\s\\x{85}]");
			else {
				*o++ = pat[i];
				*o++ = c;
			}
			i++;
			continue;
		}
		if (pat[i] == '[' && !in_class) {
			in_class = 1;
			*o++ = pat[i];
			/* a ']' right after '[' or '[^' is a literal */
			if (i + 1 < len && pat[i + 1] == '^')
				*o++ = pat[++i];
			if (i + 1 < len && pat[i + 1] == ']')
				*o++ = pat[++i];
			continue;
		}
		if (pat[i] == ']' && in_class)
			in_class = 0;
		*o++ = pat[i];
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

static int
compile_stage(struct tok_stage *st, const char *path, const char *field,
    const char *pat, size_t len, int literal, char err[256])
{
	PCRE2_UCHAR msg[128];
	PCRE2_SIZE erroff;
	uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	size_t n = len;
	char *rewritten = NULL;
	int ec;

	if (literal) {
		opts |= PCRE2_LITERAL;
	} else {
		opts |= PCRE2_UCP;
		rewritten = onig_spaces(pat, len, &n);
		if (rewritten == NULL) {
			snprintf(err, 256, "%s: out of memory", path);
			return -ENOMEM;
		}
	}
	st->re = pcre2_compile((PCRE2_SPTR)(rewritten ? rewritten : pat), n,
	    opts, &ec, &erroff, NULL);
	free(rewritten);
	if (st->re == NULL) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		/* the offset is in the rewritten pattern; name the source */
		snprintf(err, 256,
		    "%s: %s: the regex \"%.40s\" does not compile: %s", path,
		    field, pat, (const char *)msg);
		return -EINVAL;
	}
	st->jit = pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE) == 0;
	if (!literal && len == strlen(qwen2_regex) &&
	    memcmp(pat, qwen2_regex, len) == 0)
		st->fast_digits = 1;
	if (!literal && len == strlen(llama3_regex) &&
	    memcmp(pat, llama3_regex, len) == 0)
		st->fast_digits = 3;
	return 0;
}

static int
add_stage(struct inf_tok *tok, const char *path, yyjson_val *pt,
    const char *field, int *bytelevel, char err[256])
{
	const char *type = yyjson_get_str(yyjson_obj_get(pt, "type"));
	struct tok_stage *st;
	char sub[64];
	yyjson_val *v, *pat;
	size_t idx, max;
	int rc;

	if (type != NULL && strcmp(type, "Sequence") == 0) {
		v = yyjson_obj_get(pt, "pretokenizers");
		if (!yyjson_is_arr(v)) {
			snprintf(err, 256,
			    "%s: %s.pretokenizers must be a list", path, field);
			return -EINVAL;
		}
		yyjson_arr_foreach(v, idx, max, pat)
		{
			snprintf(sub, sizeof(sub), "%s.pretokenizers[%zu]",
			    field, idx);
			rc = add_stage(tok, path, pat, sub, bytelevel, err);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	if (type == NULL ||
	    (strcmp(type, "Split") != 0 && strcmp(type, "ByteLevel") != 0)) {
		snprintf(err, 256,
		    "%s: %s: pre-tokenizer type \"%.40s\" is not supported "
		    "(Split, ByteLevel, Sequence)",
		    path, field, type ? type : "(none)");
		return -ENOTSUP;
	}
	if (tok->nstages == TOK_STAGES_MAX) {
		snprintf(err, 256, "%s: %s: more than %d pre-tokenizer steps",
		    path, field, TOK_STAGES_MAX);
		return -EINVAL;
	}
	st = &tok->stages[tok->nstages++];
	if (strcmp(type, "ByteLevel") == 0) {
		*bytelevel = 1;
		st->kind = TOK_STAGE_BYTELEVEL;
		v = yyjson_obj_get(pt, "add_prefix_space");
		st->prefix_space = v == NULL || yyjson_get_bool(v);
		v = yyjson_obj_get(pt, "use_regex");
		if (v != NULL && !yyjson_get_bool(v)) {
			/* bytes are already the model's alphabet: a step
			 * without regex or prefix does nothing */
			if (!st->prefix_space)
				tok->nstages--;
			return 0;
		}
		return compile_stage(
		    st, path, field, gpt2_regex, strlen(gpt2_regex), 0, err);
	}
	st->kind = TOK_STAGE_SPLIT;
	v = yyjson_obj_get(pt, "behavior");
	if (yyjson_get_str(v) == NULL ||
	    strcmp(yyjson_get_str(v), "Isolated") != 0 ||
	    yyjson_get_bool(yyjson_obj_get(pt, "invert"))) {
		snprintf(err, 256,
		    "%s: %s: Split behavior \"%.30s\"%s is not supported "
		    "(Isolated only)",
		    path, field, yyjson_get_str(v) ? yyjson_get_str(v) : "",
		    yyjson_get_bool(yyjson_obj_get(pt, "invert")) ? " inverted"
		                                                  : "");
		return -ENOTSUP;
	}
	v = yyjson_obj_get(pt, "pattern");
	if ((pat = yyjson_obj_get(v, "Regex")) != NULL && yyjson_is_str(pat))
		return compile_stage(st, path, field, yyjson_get_str(pat),
		    yyjson_get_len(pat), 0, err);
	if ((pat = yyjson_obj_get(v, "String")) != NULL && yyjson_is_str(pat) &&
	    yyjson_get_len(pat) > 0)
		return compile_stage(st, path, field, yyjson_get_str(pat),
		    yyjson_get_len(pat), 1, err);
	snprintf(err, 256,
	    "%s: %s.pattern must be {\"Regex\": ...} or {\"String\": ...}",
	    path, field);
	return -EINVAL;
}

int
inf_tok__load_pre_tokenizer(
    struct inf_tok *tok, const char *path, yyjson_val *pt, char err[256])
{
	int bytelevel = 0, rc;

	if (pt == NULL || yyjson_is_null(pt)) {
		snprintf(err, 256,
		    "%s: pre_tokenizer is missing (byte-level BPE needs a "
		    "ByteLevel step)",
		    path);
		return -ENOTSUP;
	}
	rc = add_stage(tok, path, pt, "pre_tokenizer", &bytelevel, err);
	if (rc != 0)
		return rc;
	if (!bytelevel) {
		snprintf(err, 256,
		    "%s: pre_tokenizer has no ByteLevel step (byte-level BPE "
		    "only)",
		    path);
		return -ENOTSUP;
	}
	return 0;
}

int
inf_tok__check_decoder(const char *path, yyjson_val *d, char err[256])
{
	const char *type = yyjson_get_str(yyjson_obj_get(d, "type"));

	if (type != NULL && strcmp(type, "ByteLevel") == 0)
		return 0;
	snprintf(err, 256,
	    "%s: decoder type \"%.40s\" is not supported (ByteLevel only)",
	    path, type ? type : "(none)");
	return -ENOTSUP;
}

/* ---------------------------------------------------------------- */
/* tokenizer_config.json and the chat template                        */
/* ---------------------------------------------------------------- */

/* bos_token / eos_token: a string, {"content": "..."}, or null. */
static int
config_token(struct inf_tok *tok, const char *path, yyjson_val *cfg,
    const char *key, int32_t *id, char err[256])
{
	yyjson_val *v = yyjson_obj_get(cfg, key);

	if (yyjson_is_obj(v))
		v = yyjson_obj_get(v, "content");
	if (v == NULL || yyjson_is_null(v))
		return 0;
	if (!yyjson_is_str(v)) {
		snprintf(err, 256, "%s: %s must be a string", path, key);
		return -EINVAL;
	}
	*id = inf_tok_find(tok, yyjson_get_str(v), yyjson_get_len(v));
	if (*id < 0) {
		snprintf(err, 256,
		    "%s: %s \"%.60s\" is not a token of tokenizer.json", path,
		    key, yyjson_get_str(v));
		return -EINVAL;
	}
	return 0;
}

/* chat_template: a string, or a list of {"name", "template"} (the one
 * named "default", else the first). */
static yyjson_val *
config_template(yyjson_val *cfg)
{
	yyjson_val *v = yyjson_obj_get(cfg, "chat_template"), *e;
	size_t idx, max;

	if (yyjson_is_str(v))
		return v;
	yyjson_arr_foreach(v, idx, max, e)
	{
		const char *name = yyjson_get_str(yyjson_obj_get(e, "name"));

		if (name != NULL && strcmp(name, "default") == 0)
			return yyjson_obj_get(e, "template");
	}
	return yyjson_obj_get(yyjson_arr_get_first(v), "template");
}

int
inf_tok__load_config(struct inf_tok *tok, const char *dir, char err[256])
{
	yyjson_doc *doc = NULL;
	yyjson_val *cfg = NULL, *tmpl = NULL;
	char path[4096], *jinja = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
	rc = inf_tok__read_json(path, &doc, err);
	if (rc == -ENOENT) {
		rc = 0;
	} else if (rc != 0) {
		return rc;
	} else {
		cfg = yyjson_doc_get_root(doc);
		if (!yyjson_is_obj(cfg)) {
			snprintf(err, 256, "%s: not a JSON object", path);
			rc = -EINVAL;
			goto out;
		}
		rc = config_token(tok, path, cfg, "bos_token", &tok->bos, err);
		if (rc == 0)
			rc = config_token(
			    tok, path, cfg, "eos_token", &tok->eos, err);
		if (rc != 0)
			goto out;
		tok->add_bos =
		    yyjson_get_bool(yyjson_obj_get(cfg, "add_bos_token"));
		tmpl = config_template(cfg);
	}
	/* chat_template.jinja wins over the config's copy, as in
	 * transformers. */
	snprintf(path, sizeof(path), "%s/chat_template.jinja", dir);
	rc = inf_tok__read_file(path, &jinja, &len, err);
	if (rc == 0) {
		tok->chat_template_found = 1;
		tok->chat_family = inf_chat_family_detect(jinja, len);
	} else if (rc == -ENOENT) {
		rc = 0;
		if (yyjson_is_str(tmpl)) {
			tok->chat_template_found = 1;
			tok->chat_family = inf_chat_family_detect(
			    yyjson_get_str(tmpl), yyjson_get_len(tmpl));
		}
	}
out:
	free(jinja);
	yyjson_doc_free(doc);
	return rc;
}

/* ---------------------------------------------------------------- */
/* Accessors and buffers                                              */
/* ---------------------------------------------------------------- */

size_t
inf_tok_vocab_size(const struct inf_tok *tok)
{
	return tok->ntokens;
}

int32_t
inf_tok_bos(const struct inf_tok *tok)
{
	return tok->bos;
}

int32_t
inf_tok_eos(const struct inf_tok *tok)
{
	return tok->eos;
}

int
inf_tok_add_bos(const struct inf_tok *tok)
{
	return tok->add_bos;
}

int32_t
inf_tok_find(const struct inf_tok *tok, const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < tok->nadded; i++)
		if (tok->added[i].len == len &&
		    memcmp(tok->added[i].bytes, text, len) == 0)
			return tok->added[i].id;
	return inf_tok__vocab_get(tok, (const unsigned char *)text, len);
}

int
inf_tok_piece(const struct inf_tok *tok, int32_t id,
    const unsigned char **bytes, size_t *len)
{
	if (id < 0 || (size_t)id >= tok->ntokens ||
	    !(tok->tokens[id].flags & TOK_PRESENT))
		return -EINVAL;
	*bytes = tok->bytes + tok->tokens[id].off;
	*len = tok->tokens[id].len;
	return 0;
}

int
inf_tok_is_special(const struct inf_tok *tok, int32_t id)
{
	return id >= 0 && (size_t)id < tok->ntokens &&
	    (tok->tokens[id].flags & TOK_SPECIAL) != 0;
}

void
inf_tok_ids_init(struct inf_tok_ids *ids)
{
	memset(ids, 0, sizeof(*ids));
}

void
inf_tok_ids_free(struct inf_tok_ids *ids)
{
	if (ids == NULL)
		return;
	sr_free_wiped(ids->ids); /* a prompt's or an answer's tokens */
	memset(ids, 0, sizeof(*ids));
}

void
inf_tok_text_init(struct inf_tok_text *t)
{
	memset(t, 0, sizeof(*t));
}

void
inf_tok_text_free(struct inf_tok_text *t)
{
	if (t == NULL)
		return;
	sr_free_wiped(t->text);
	memset(t, 0, sizeof(*t));
}

void
inf_tok_set_forget(struct inf_tok *tok, int on)
{
	atomic_store(&tok->forget, on != 0);
}

int
inf_tok__ids_reserve(struct inf_tok_ids *ids, size_t more)
{
	size_t cap;
	int32_t *p;

	if (ids->cap - ids->len >= more)
		return 0;
	cap = ids->cap ? ids->cap * 2 : 64;
	while (cap - ids->len < more)
		cap *= 2;
	/* grown without leaving a copy of the tokens behind */
	p = sr_realloc_wiped(ids->ids, ids->len * sizeof(*p), cap * sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	ids->ids = p;
	ids->cap = cap;
	return 0;
}

int
inf_tok__text_reserve(struct inf_tok_text *t, size_t more)
{
	size_t cap;
	char *q;

	if (t->cap - t->len >= more + 1)
		return 0;
	cap = t->cap ? t->cap * 2 : 64;
	while (cap - t->len < more + 1)
		cap *= 2;
	q = sr_realloc_wiped(t->text, t->len + (t->text != NULL), cap);
	if (q == NULL)
		return -ENOMEM;
	t->text = q;
	t->cap = cap;
	return 0;
}

int
inf_tok__text_append(struct inf_tok_text *t, const void *p, size_t n)
{
	if (inf_tok__text_reserve(t, n) != 0)
		return -ENOMEM;
	if (n > 0)
		memcpy(t->text + t->len, p, n);
	t->len += n;
	t->text[t->len] = '\0';
	return 0;
}
