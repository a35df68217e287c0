/*
 * appliance/serve_stream.c: the OpenAI wire format of the inference API:
 * whole answers (chat.completion, text_completion), Server-Sent Events
 * (chat.completion.chunk objects with choices[].delta and finish_reason,
 * the usage chunk, "data: [DONE]"), errors in OpenAI's shape, and the
 * DeepSeek-R1 split of generated text into reasoning_content (before
 * "</think>") and content.
 *
 * It must never write text that is not JSON-escaped (yyjson writes every
 * value), never split a UTF-8 character between two events, and never
 * let "</think>" itself reach the client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "appliance/serve_impl.h"
#include "lib/sr.h"

/* Answers carry generated text and requests their prompt: their documents
 * and serializations are wiped when freed. */
const yyjson_alc serve_wiping_alc = { sr_alc_malloc, sr_alc_realloc,
	sr_alc_free, NULL };

#define THINK_END "</think>"
#define THINK_END_LEN (sizeof(THINK_END) - 1)

static int
text_add(struct inf_tok_text *t, const char *p, size_t n)
{
	size_t cap;
	char *nt;

	if (n == 0)
		return 0;
	if (t->len + n + 1 > t->cap) {
		cap = t->cap < 64 ? 64 : t->cap;
		while (cap < t->len + n + 1)
			cap *= 2;
		if ((nt = realloc(t->text, cap)) == NULL)
			return -ENOMEM;
		t->text = nt;
		t->cap = cap;
	}
	memcpy(t->text + t->len, p, n);
	t->len += n;
	t->text[t->len] = '\0';
	return 0;
}

void
serve_split_init(struct serve_split *sp, int reasoning)
{
	sp->thinking = reasoning;
	inf_tok_text_init(&sp->hold);
}

void
serve_split_free(struct serve_split *sp)
{
	inf_tok_text_free(&sp->hold);
}

int
serve_split_feed(struct serve_split *sp, const char *p, size_t n, int final,
    struct inf_tok_text *reason, struct inf_tok_text *content)
{
	struct inf_tok_text *t = &sp->hold;
	char *end;
	size_t keep, k;
	int rc;

	if (!sp->thinking)
		return text_add(content, p, n);
	if ((rc = text_add(t, p, n)) != 0)
		return rc;
	if (t->len == 0)
		return 0;
	end = memmem(t->text, t->len, THINK_END, THINK_END_LEN);
	if (end != NULL) {
		size_t before = (size_t)(end - t->text),
		       after = before + THINK_END_LEN;

		sp->thinking = 0;
		if ((rc = text_add(reason, t->text, before)) == 0)
			rc = text_add(content, t->text + after, t->len - after);
		t->len = 0;
		return rc;
	}
	keep = 0;
	if (!final)
		for (k = THINK_END_LEN - 1; k > 0; k--)
			if (k <= t->len &&
			    memcmp(t->text + t->len - k, THINK_END, k) == 0) {
				keep = k;
				break;
			}
	if ((rc = text_add(reason, t->text, t->len - keep)) != 0)
		return rc;
	memmove(t->text, t->text + t->len - keep, keep);
	t->len = keep;
	return 0;
}

const char *
serve_finish_name(enum sched_finish f)
{
	switch (f) {
	case SCHED_STOP:
		return "stop";
	case SCHED_LENGTH:
		return "length";
	case SCHED_ABORT:
		return "abort";
	case SCHED_ERROR:
		return "error";
	default:
		return NULL;
	}
}

static const char *
error_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 429:
		return "rate_limit_error";
	default:
		return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

/* Serialize @p d and free it; NULL when out of memory. */
static char *
doc_text(yyjson_mut_doc *d, size_t *len)
{
	char *text = yyjson_mut_write_opts(d, 0, &serve_wiping_alc, len, NULL);

	yyjson_mut_doc_free(d);
	return text;
}

int
serve_error(struct buf *out, int status, const char *code, const char *param,
    const char *message, int keep_alive, unsigned retry_after_s)
{
	struct http_header h = { "Retry-After", NULL, 11, 0 };
	char ra[16];

	snprintf(ra, sizeof(ra), "%u", retry_after_s);
	h.value = ra;
	h.value_len = strlen(ra);
	return serve_error_hdr(out, status, code, param, message, keep_alive,
	    retry_after_s ? &h : NULL);
}

int
serve_error_hdr(struct buf *out, int status, const char *code,
    const char *param, const char *message, int keep_alive,
    const struct http_header *extra)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(&serve_wiping_alc);
	yyjson_mut_val *root, *e;
	char *text;
	size_t len = 0;

	if (d == NULL)
		return http_error_hdr(out, status, code, message, keep_alive,
		    extra, extra != NULL);
	root = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, root);
	e = yyjson_mut_obj_add_obj(d, root, "error");
	yyjson_mut_obj_add_strcpy(d, e, "message", message);
	yyjson_mut_obj_add_str(d, e, "type", error_type(status));
	if (param != NULL)
		yyjson_mut_obj_add_strcpy(d, e, "param", param);
	else
		yyjson_mut_obj_add_null(d, e, "param");
	yyjson_mut_obj_add_strcpy(d, e, "code", code);
	if ((text = doc_text(d, &len)) == NULL)
		return http_error_hdr(out, status, code, message, keep_alive,
		    extra, extra != NULL);
	http_response_head(out, status, "application/json", len, keep_alive,
	    extra, extra != NULL);
	buf_append(out, text, len);
	sr_free_wiped(text);
	return status;
}

static yyjson_mut_val *
answer_root(yyjson_mut_doc *d, const struct serve_answer *a, int chunk)
{
	yyjson_mut_val *root = yyjson_mut_obj(d);

	yyjson_mut_doc_set_root(d, root);
	yyjson_mut_obj_add_strcpy(d, root, "id", a->id);
	yyjson_mut_obj_add_str(d, root, "object",
	    !a->chat    ? "text_completion"
	        : chunk ? "chat.completion.chunk"
	                : "chat.completion");
	yyjson_mut_obj_add_int(d, root, "created", a->created);
	yyjson_mut_obj_add_strcpy(d, root, "model", a->model);
	return root;
}

static void
add_usage(yyjson_mut_doc *d, yyjson_mut_val *root, int n_prompt, int n_out)
{
	yyjson_mut_val *u = yyjson_mut_obj_add_obj(d, root, "usage");

	yyjson_mut_obj_add_int(d, u, "prompt_tokens", n_prompt);
	yyjson_mut_obj_add_int(d, u, "completion_tokens", n_out);
	yyjson_mut_obj_add_int(d, u, "total_tokens", n_prompt + n_out);
}

static void
add_text(yyjson_mut_doc *d, yyjson_mut_val *o, const char *key,
    const struct inf_tok_text *t)
{
	yyjson_mut_obj_add_strncpy(d, o, key,
	    t != NULL && t->text != NULL ? t->text : "",
	    t != NULL ? t->len : 0);
}

int
serve_answer_json(struct buf *out, const struct serve_answer *a,
    const struct inf_tok_text *reason, const struct inf_tok_text *content,
    const char *finish, int n_prompt, int n_out, int keep_alive)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(&serve_wiping_alc);
	yyjson_mut_val *root, *choices, *c, *msg;
	char *text;
	size_t len = 0;

	if (d == NULL)
		return -ENOMEM;
	root = answer_root(d, a, 0);
	choices = yyjson_mut_obj_add_arr(d, root, "choices");
	c = yyjson_mut_arr_add_obj(d, choices);
	yyjson_mut_obj_add_int(d, c, "index", 0);
	if (a->chat) {
		msg = yyjson_mut_obj_add_obj(d, c, "message");
		yyjson_mut_obj_add_str(d, msg, "role", "assistant");
		add_text(d, msg, "content", content);
		if (reason != NULL && reason->len > 0)
			add_text(d, msg, "reasoning_content", reason);
	} else {
		add_text(d, c, "text", content);
	}
	yyjson_mut_obj_add_null(d, c, "logprobs");
	yyjson_mut_obj_add_str(d, c, "finish_reason", finish);
	add_usage(d, root, n_prompt, n_out);
	if ((text = doc_text(d, &len)) == NULL)
		return -ENOMEM;
	http_response(out, 200, "application/json", text, len, keep_alive);
	sr_free_wiped(text);
	return 0;
}

int
serve_sse_head(struct buf *out, size_t framing, int keep_alive)
{
	static const struct http_header h = { "X-Accel-Buffering", "no", 17,
		2 };

	return http_response_head(
	    out, 200, "text/event-stream", framing, keep_alive, &h, 1);
}

/* "data: JSON\n\n" as one part of the body. */
static int
sse_event(struct buf *out, size_t framing, const char *json, size_t len)
{
	struct buf ev = { .wipe = 1 };
	int rc;

	rc = buf_printf(&ev, "data: ");
	if (rc == 0)
		rc = buf_append(&ev, json, len);
	if (rc == 0)
		rc = buf_append(&ev, "\n\n", 2);
	if (rc == 0)
		rc = http_body_part(out, framing, ev.data, ev.len);
	buf_free(&ev);
	return rc;
}

static int
sse_doc(struct buf *out, size_t framing, yyjson_mut_doc *d)
{
	size_t len = 0;
	char *text = doc_text(d, &len);
	int rc;

	if (text == NULL)
		return -ENOMEM;
	rc = sse_event(out, framing, text, len);
	sr_free_wiped(text);
	return rc;
}

int
serve_sse_delta(struct buf *out, size_t framing, const struct serve_answer *a,
    const char *role, const struct inf_tok_text *reason,
    const struct inf_tok_text *content, const char *finish)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(&serve_wiping_alc);
	yyjson_mut_val *root, *choices, *c, *delta;

	if (d == NULL)
		return -ENOMEM;
	root = answer_root(d, a, 1);
	choices = yyjson_mut_obj_add_arr(d, root, "choices");
	c = yyjson_mut_arr_add_obj(d, choices);
	yyjson_mut_obj_add_int(d, c, "index", 0);
	if (a->chat) {
		delta = yyjson_mut_obj_add_obj(d, c, "delta");
		if (role != NULL)
			yyjson_mut_obj_add_str(d, delta, "role", role);
		if (reason != NULL && reason->len > 0)
			add_text(d, delta, "reasoning_content", reason);
		if ((content != NULL && content->len > 0) || role != NULL)
			add_text(d, delta, "content", content);
	} else {
		add_text(d, c, "text", content);
	}
	yyjson_mut_obj_add_null(d, c, "logprobs");
	if (finish != NULL)
		yyjson_mut_obj_add_str(d, c, "finish_reason", finish);
	else
		yyjson_mut_obj_add_null(d, c, "finish_reason");
	return sse_doc(out, framing, d);
}

int
serve_sse_usage(struct buf *out, size_t framing, const struct serve_answer *a,
    int n_prompt, int n_out)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(&serve_wiping_alc);
	yyjson_mut_val *root;

	if (d == NULL)
		return -ENOMEM;
	root = answer_root(d, a, 1);
	yyjson_mut_obj_add_arr(d, root, "choices");
	add_usage(d, root, n_prompt, n_out);
	return sse_doc(out, framing, d);
}

int
serve_sse_error(
    struct buf *out, size_t framing, const char *code, const char *message)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(&serve_wiping_alc);
	yyjson_mut_val *root, *e;

	if (d == NULL)
		return -ENOMEM;
	root = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, root);
	e = yyjson_mut_obj_add_obj(d, root, "error");
	yyjson_mut_obj_add_strcpy(d, e, "message", message);
	yyjson_mut_obj_add_str(d, e, "type", "server_error");
	yyjson_mut_obj_add_null(d, e, "param");
	yyjson_mut_obj_add_strcpy(d, e, "code", code);
	return sse_doc(out, framing, d);
}

int
serve_sse_done(struct buf *out, size_t framing)
{
	static const char done[] = "data: [DONE]\n\n";
	int rc = http_body_part(out, framing, done, sizeof(done) - 1);

	return rc == 0 ? http_body_end(out, framing) : rc;
}
