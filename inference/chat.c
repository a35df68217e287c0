/*
 * inference/chat.c: the chat template families (DeepSeek-R1, Llama-3,
 * ChatML), recognised by their markers rather than by running Jinja, and
 * rendered as a list of segments: the template's own markers, and plain
 * text. Encoding turns markers into their ids and encodes the text plainly,
 * so a message can never forge a turn. It must never pass message text
 * through the added-token matcher.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "inference/tok_internal.h"

/* Markers, by family (UTF-8; "｜" is U+FF5C and "▁" U+2581). */
#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT \
	"<\xef\xbd\x9c" \
	"Assistant\xef\xbd\x9c>"
#define DS_END \
	"<\xef\xbd\x9c" \
	"end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_THINK "<think>"
#define DS_THINK_END "</think>"
#define L3_START "<|start_header_id|>"
#define L3_END "<|end_header_id|>"
#define L3_EOT "<|eot_id|>"
#define CM_START "<|im_start|>"
#define CM_END "<|im_end|>"

static const char *const family_markers[][5] = {
	[INF_CHAT_UNKNOWN] = { NULL },
	[INF_CHAT_DEEPSEEK_R1] = { DS_USER, DS_ASSISTANT, DS_END, DS_THINK,
	    NULL },
	[INF_CHAT_LLAMA3] = { L3_START, L3_END, L3_EOT, NULL },
	[INF_CHAT_CHATML] = { CM_START, CM_END, NULL },
};

static const char *const role_names[] = { "system", "user", "assistant" };

/* A segment sink: a marker (text is the marker, id its token or -1 when
 * the tokenizer lacks it) or plain text (id -2). */
typedef int seg_cb(void *arg, int32_t id, const char *text, size_t len);

const char *
inf_chat_family_name(enum inf_chat_family family)
{
	switch (family) {
	case INF_CHAT_DEEPSEEK_R1:
		return "deepseek-r1";
	case INF_CHAT_LLAMA3:
		return "llama3";
	case INF_CHAT_CHATML:
		return "chatml";
	default:
		return "unknown";
	}
}

static int
has(const char *s, size_t n, const char *needle)
{
	return memmem(s, n, needle, strlen(needle)) != NULL;
}

enum inf_chat_family
inf_chat_family_detect(const char *tmpl, size_t len)
{
	int ds = has(tmpl, len, DS_USER) && has(tmpl, len, DS_ASSISTANT);
	int l3 = has(tmpl, len, L3_START) && has(tmpl, len, L3_EOT);
	int cm = has(tmpl, len, CM_START) && has(tmpl, len, CM_END);

	if (ds + l3 + cm != 1)
		return INF_CHAT_UNKNOWN;
	if (ds)
		return INF_CHAT_DEEPSEEK_R1;
	/* Llama-3.1 and later put a dated system header in every prompt:
	 * another rendering, not this family's. */
	if (l3)
		return has(tmpl, len, "Cutting Knowledge Date")
		    ? INF_CHAT_UNKNOWN
		    : INF_CHAT_LLAMA3;
	return INF_CHAT_CHATML;
}

static int32_t
marker_id(const struct inf_tok *tok, const char *m)
{
	int32_t id = inf_tok_find(tok, m, strlen(m));

	return id >= 0 && (tok->tokens[id].flags & TOK_ADDED) ? id : -1;
}

int
inf_chat_family_resolve(const struct inf_tok *tok, const char *name,
    enum inf_chat_family *out, char err[256])
{
	enum inf_chat_family f = INF_CHAT_UNKNOWN;
	const char *const *m;

	*out = INF_CHAT_UNKNOWN;
	if (name != NULL && name[0] != '\0') {
		for (f = INF_CHAT_DEEPSEEK_R1; f <= INF_CHAT_CHATML; f++)
			if (strcmp(name, inf_chat_family_name(f)) == 0)
				break;
		if (f > INF_CHAT_CHATML) {
			snprintf(err, 256,
			    "unknown chat family \"%.40s\" (deepseek-r1, "
			    "llama3, chatml)",
			    name);
			return -EINVAL;
		}
	} else if (tok->chat_family != INF_CHAT_UNKNOWN) {
		f = tok->chat_family;
	} else {
		snprintf(err, 256,
		    "%s; name a family (deepseek-r1, llama3, "
		    "chatml) in the model's configuration",
		    tok->chat_template_found
		        ? "the chat template matches no known family"
		        : "no chat template (chat_template.jinja or "
		          "tokenizer_config.json)");
		return -ENOTSUP;
	}
	for (m = family_markers[f]; *m != NULL; m++) {
		if (marker_id(tok, *m) < 0) {
			snprintf(err, 256,
			    "chat family %s needs \"%s\" as an added token of "
			    "tokenizer.json",
			    inf_chat_family_name(f), *m);
			return -ENOENT;
		}
	}
	*out = f;
	return 0;
}

/* ---------------------------------------------------------------- */
/* Rendering as segments                                              */
/* ---------------------------------------------------------------- */

/* Python's str.isspace() for the character ending (back) or starting
 * (!back) the n bytes at p: its length, or 0. */
static size_t
space_len(const unsigned char *p, size_t n, int back)
{
	static const char *const wide[] = { "\xc2\x85", "\xc2\xa0",
		"\xe1\x9a\x80", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf",
		"\xe2\x81\x9f", "\xe3\x80\x80" };
	const unsigned char *c;
	size_t i, k;

	if (n == 0)
		return 0;
	c = back ? p + n - 1 : p;
	if (*c == ' ' || (*c >= '\t' && *c <= '\r') ||
	    (*c >= 0x1c && *c <= 0x1f))
		return 1;
	for (k = 2; k <= 3 && k <= n; k++) {
		c = back ? p + n - k : p;
		if (k == 3 && c[0] == 0xe2 && c[1] == 0x80 && c[2] >= 0x80 &&
		    c[2] <= 0x8a)
			return 3; /* U+2000..U+200A */
		for (i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
			if (strlen(wide[i]) == k && memcmp(c, wide[i], k) == 0)
				return k;
	}
	return 0;
}

static void
trim(const char **s, size_t *n)
{
	size_t k;

	while ((k = space_len((const unsigned char *)*s, *n, 0)) > 0) {
		*s += k;
		*n -= k;
	}
	while ((k = space_len((const unsigned char *)*s, *n, 1)) > 0)
		*n -= k;
}

/* What follows the last "</think>", as the DeepSeek-R1 template keeps of
 * an earlier assistant turn. */
static void
strip_reasoning(const char **s, size_t *n)
{
	const char *p = *s, *end = *s + *n, *hit;
	size_t k = strlen(DS_THINK_END);

	while ((hit = memmem(p, (size_t)(end - p), DS_THINK_END, k)) != NULL)
		p = hit + k;
	*n = (size_t)(end - p);
	*s = p;
}

#define MARK(m) emit(arg, marker_id(tok, m), m, strlen(m))
#define TEXT(t, n) emit(arg, -2, t, n)
#define TRY(x) \
	do { \
		if ((rc = (x)) != 0) \
			return rc; \
	} while (0)

static int
bos(const struct inf_tok *tok, seg_cb *emit, void *arg)
{
	const unsigned char *p;
	size_t n;

	if (tok->bos < 0 || inf_tok_piece(tok, tok->bos, &p, &n) != 0)
		return 0;
	return emit(arg, tok->bos, (const char *)p, n);
}

static int
walk_deepseek(const struct inf_tok *tok, const struct inf_chat_msg *msgs,
    size_t n, int gen, seg_cb *emit, void *arg)
{
	const char *c;
	size_t i, len;
	int rc;

	/* the system prompt goes right after BOS, wherever it was given */
	TRY(bos(tok, emit, arg));
	for (i = 0; i < n; i++)
		if (msgs[i].role == INF_CHAT_SYSTEM)
			TRY(TEXT(msgs[i].content, msgs[i].content_len));
	for (i = 0; i < n; i++) {
		c = msgs[i].content;
		len = msgs[i].content_len;
		if (msgs[i].role == INF_CHAT_USER) {
			TRY(MARK(DS_USER));
			TRY(TEXT(c, len));
		} else if (msgs[i].role == INF_CHAT_ASSISTANT) {
			strip_reasoning(&c, &len);
			TRY(MARK(DS_ASSISTANT));
			TRY(TEXT(c, len));
			TRY(MARK(DS_END));
		}
	}
	if (gen) {
		TRY(MARK(DS_ASSISTANT));
		TRY(MARK(DS_THINK));
		TRY(TEXT("\n", 1));
	}
	return 0;
}

static int
walk_llama3(const struct inf_tok *tok, const struct inf_chat_msg *msgs,
    size_t n, int gen, seg_cb *emit, void *arg)
{
	const char *c;
	size_t i, len;
	int rc;

	for (i = 0; i < n; i++) {
		c = msgs[i].content;
		len = msgs[i].content_len;
		trim(&c, &len);
		if (i == 0)
			TRY(bos(tok, emit, arg));
		TRY(MARK(L3_START));
		TRY(TEXT(role_names[msgs[i].role],
		    strlen(role_names[msgs[i].role])));
		TRY(MARK(L3_END));
		TRY(TEXT("\n\n", 2));
		TRY(TEXT(c, len));
		TRY(MARK(L3_EOT));
	}
	if (gen) {
		TRY(MARK(L3_START));
		TRY(TEXT("assistant", 9));
		TRY(MARK(L3_END));
		TRY(TEXT("\n\n", 2));
	}
	return 0;
}

static int
walk_chatml(const struct inf_tok *tok, const struct inf_chat_msg *msgs,
    size_t n, int gen, seg_cb *emit, void *arg)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		TRY(MARK(CM_START));
		TRY(TEXT(role_names[msgs[i].role],
		    strlen(role_names[msgs[i].role])));
		TRY(TEXT("\n", 1));
		TRY(TEXT(msgs[i].content, msgs[i].content_len));
		TRY(MARK(CM_END));
		TRY(TEXT("\n", 1));
	}
	if (gen) {
		TRY(MARK(CM_START));
		TRY(TEXT("assistant\n", 10));
	}
	return 0;
}

static int
walk(const struct inf_tok *tok, enum inf_chat_family family,
    const struct inf_chat_msg *msgs, size_t n, int gen, seg_cb *emit, void *arg)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned)msgs[i].role > INF_CHAT_ASSISTANT ||
		    (msgs[i].content == NULL && msgs[i].content_len > 0))
			return -EINVAL;
	switch (family) {
	case INF_CHAT_DEEPSEEK_R1:
		return walk_deepseek(tok, msgs, n, gen, emit, arg);
	case INF_CHAT_LLAMA3:
		return walk_llama3(tok, msgs, n, gen, emit, arg);
	case INF_CHAT_CHATML:
		return walk_chatml(tok, msgs, n, gen, emit, arg);
	default:
		return -EINVAL;
	}
}

/* ---------------------------------------------------------------- */
/* Render and encode                                                  */
/* ---------------------------------------------------------------- */

static int
render_seg(void *arg, int32_t id, const char *text, size_t len)
{
	(void)id;
	return inf_tok__text_append(arg, text, len);
}

int
inf_chat_render(const struct inf_tok *tok, enum inf_chat_family family,
    const struct inf_chat_msg *msgs, size_t n, int add_generation_prompt,
    struct inf_tok_text *out)
{
	size_t at_entry = out->len;
	int rc;

	rc = walk(tok, family, msgs, n, add_generation_prompt, render_seg, out);
	if (rc != 0 && out->text != NULL) {
		out->len = at_entry;
		out->text[at_entry] = '\0';
	}
	return rc;
}

struct encode_state {
	struct inf_tok *tok;
	struct tok_ws *ws;
	struct inf_tok_ids *out;
	struct inf_tok_text text; /* plain text since the last marker */
};

static int
encode_flush(struct encode_state *st)
{
	int rc;

	rc = inf_tok__encode_plain(st->tok, st->ws,
	    (const unsigned char *)st->text.text, st->text.len, st->out);
	st->text.len = 0;
	return rc;
}

static int
encode_seg(void *arg, int32_t id, const char *text, size_t len)
{
	struct encode_state *st = arg;
	int rc;

	if (id == -2)
		return inf_tok__text_append(&st->text, text, len);
	if (id < 0)
		return -ENOENT;
	if ((rc = encode_flush(st)) != 0 ||
	    (rc = inf_tok__ids_reserve(st->out, 1)) != 0)
		return rc;
	st->out->ids[st->out->len++] = id;
	return 0;
}

int
inf_chat_encode(struct inf_tok *tok, enum inf_chat_family family,
    const struct inf_chat_msg *msgs, size_t n, int add_generation_prompt,
    struct inf_tok_ids *out)
{
	struct encode_state st = { tok, NULL, out, { NULL, 0, 0 } };
	size_t at_entry = out->len;
	int rc, slot;

	rc = inf_tok__ws_get(tok, &st.ws, &slot);
	if (rc != 0)
		return rc;
	rc = walk(tok, family, msgs, n, add_generation_prompt, encode_seg, &st);
	if (rc == 0)
		rc = encode_flush(&st);
	inf_tok__ws_put(tok, st.ws, slot);
	inf_tok_text_free(&st.text);
	if (rc != 0)
		out->len = at_entry;
	return rc;
}
