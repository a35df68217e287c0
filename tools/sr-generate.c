/*
 * tools/sr-generate.c: greedy generation with the engine alone, for tests
 * and for operators checking a model folder: the prompt built exactly as
 * the daemon builds it (the chat template for --chat, the tokenizer with
 * add_bos_token for --prompt), inf_generate() until EOS or --max-tokens,
 * and the result as one JSON line: prompt_tokens, completion_tokens,
 * finish ("stop" or "length"), the ids and the decoded text.
 *
 * It must never download anything or write anywhere but stdout, and
 * never fake a result: every failure is a message and exit status 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "inference/inference.h"
#include "inference/tokenizer.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: sr-generate MODEL_DIR (--chat TEXT | --prompt "
	    "TEXT) [--max-tokens N]\n");
	exit(2);
}

static int
build_prompt(struct inf_tok *tok, int chat, const char *text,
    struct inf_tok_ids *ids, char err[256])
{
	struct inf_chat_msg msg = { INF_CHAT_USER, text, strlen(text) };
	enum inf_chat_family family;
	int rc;

	if (!chat)
		return inf_tok_encode(tok, text, strlen(text),
		    inf_tok_add_bos(tok) ? INF_TOK_ADD_BOS : 0, ids);
	if ((rc = inf_chat_family_resolve(tok, NULL, &family, err)) != 0)
		return rc;
	return inf_chat_encode(tok, family, &msg, 1, 1, ids);
}

static int
print_result(const struct inf_tok *tok, int n_prompt, const int32_t *out,
    int n_out, enum inf_finish fin)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(NULL);
	yyjson_mut_val *root = yyjson_mut_obj(d), *arr;
	struct inf_tok_text text;
	char *json;
	int i;

	inf_tok_text_init(&text);
	if (inf_tok_decode(tok, out, (size_t)n_out, 0, &text) != 0)
		return -ENOMEM;
	yyjson_mut_doc_set_root(d, root);
	yyjson_mut_obj_add_int(d, root, "prompt_tokens", n_prompt);
	yyjson_mut_obj_add_int(d, root, "completion_tokens", n_out);
	yyjson_mut_obj_add_str(
	    d, root, "finish", fin == INF_FINISH_LENGTH ? "length" : "stop");
	arr = yyjson_mut_obj_add_arr(d, root, "ids");
	for (i = 0; i < n_out; i++)
		yyjson_mut_arr_add_int(d, arr, out[i]);
	yyjson_mut_obj_add_strncpy(
	    d, root, "text", text.text != NULL ? text.text : "", text.len);
	json = yyjson_mut_write(d, 0, NULL);
	if (json != NULL)
		printf("%s\n", json);
	free(json);
	yyjson_mut_doc_free(d);
	inf_tok_text_free(&text);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir, *text = NULL;
	struct inf_model *m = NULL;
	struct inf_tok *tok = NULL;
	struct inf_seq *seq = NULL;
	struct inf_tok_ids ids;
	struct inf_sampling sp;
	struct inf_stop st = { 0 };
	enum inf_finish fin;
	char err[INF_ERR_MAX];
	int32_t *out = NULL;
	int i, chat = 0, max_tokens = 16, n_out = 0, rc, ctx;

	if (argc < 4)
		usage();
	dir = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--chat") == 0 && i + 1 < argc)
			chat = 1, text = argv[++i];
		else if (strcmp(argv[i], "--prompt") == 0 && i + 1 < argc)
			chat = 0, text = argv[++i];
		else if (strcmp(argv[i], "--max-tokens") == 0 && i + 1 < argc)
			max_tokens = atoi(argv[++i]);
		else
			usage();
	}
	if (text == NULL || max_tokens < 1)
		usage();
	inf_tok_ids_init(&ids);
	if ((rc = inf_model_open(dir, NULL, &m, err)) != 0 ||
	    (rc = inf_tok_load(dir, &tok, err)) != 0 ||
	    (rc = build_prompt(tok, chat, text, &ids, err)) != 0) {
		fprintf(stderr, "sr-generate: %s (%d)\n", err, rc);
		return 1;
	}
	ctx = inf_model_info(m)->max_position_embeddings;
	if ((int)ids.len + max_tokens > ctx)
		max_tokens = ctx - (int)ids.len; /* as the daemon clamps */
	inf_sampling_defaults(&sp);
	st.max_tokens = max_tokens;
	out = malloc((size_t)max_tokens * sizeof(int32_t));
	rc = out == NULL ? -ENOMEM
	                 : inf_seq_new(m, (int)ids.len + max_tokens, &seq);
	if (rc == 0)
		rc = inf_generate(seq, ids.ids, (int)ids.len, &sp, &st, NULL,
		    NULL, out, max_tokens, &n_out, &fin);
	if (rc == 0)
		rc = print_result(tok, (int)ids.len, out, n_out, fin);
	if (rc != 0)
		fprintf(stderr, "sr-generate: %s\n", sr_strerror(rc));
	free(out);
	inf_seq_free(seq);
	inf_tok_ids_free(&ids);
	inf_tok_free(tok);
	inf_model_close(m);
	return rc == 0 ? 0 : 1;
}
