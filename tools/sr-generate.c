/*
 * tools/sr-generate.c: loads a Hugging Face model folder and generates
 * from a prompt (--prompt, --prompt-file) or one chat turn (--chat, with an
 * optional --system, rendered by the model's chat template), streaming the
 * text to stdout as tokens come (whole UTF-8 characters only) and printing
 * prefill and decode tokens per second to stderr at the end. The operator's
 * check that a model folder is installed right, and the engine's
 * command-line face for tests and benchmarks.
 *
 * It must never turn text from the command line into control tokens unless
 * told to (--special), never print half a UTF-8 character, and never exit
 * 0 after an error: a bad argument exits 2, a model or generation error 1,
 * each with a message naming the problem.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yyjson.h>

#include "inference/inference.h"
#include "inference/tokenizer.h"

#define PROMPT_FILE_MAX (16u << 20) /* bytes read from --prompt-file */

struct gen_args {
	const char *model, *prompt, *prompt_file, *chat, *system, *family;
	int max_tokens, threads, top_k, ids, render, ignore_eos, no_bos;
	int special, skip_special, json;
	double temperature, top_p, repetition_penalty;
	unsigned long long seed;
	/* which sampling options were given (others: the model's defaults) */
	int set_temperature, set_top_k, set_top_p, set_rep, set_seed;
};

enum {
	OPT_SYSTEM = 256,
	OPT_PROMPT_FILE,
	OPT_FAMILY,
	OPT_TOP_P,
	OPT_TOP_K,
	OPT_REP,
	OPT_IGNORE_EOS,
	OPT_NO_BOS,
	OPT_SPECIAL,
	OPT_SKIP_SPECIAL,
	OPT_RENDER,
	OPT_JSON,
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: sr-generate --model DIR (--prompt TEXT | --prompt-file FILE"
	    " |\n"
	    "                   --chat TEXT [--system TEXT]) [options]\n"
	    "\n"
	    "Loads a Hugging Face model folder (config.json, safetensors,\n"
	    "tokenizer.json) and generates on the CPU, streaming the text to\n"
	    "stdout; prefill and decode tokens/s go to stderr at the end.\n"
	    "\n"
	    "  --model DIR            the model folder\n"
	    "  --prompt TEXT          generate after TEXT (BOS first when the\n"
	    "                         tokenizer has one, unless --no-bos)\n"
	    "  --prompt-file FILE     the prompt's bytes from FILE (- : "
	    "stdin)\n"
	    "  --chat TEXT            one user turn, rendered with the "
	    "model's\n"
	    "                         chat template and its generation prompt\n"
	    "  --system TEXT          a system message before the --chat turn\n"
	    "  --family NAME          chat template family: deepseek-r1, "
	    "llama3\n"
	    "                         or chatml (default: recognised from the\n"
	    "                         folder's chat template)\n"
	    "  --max-tokens N         tokens to generate, 1..1000000 (default "
	    "256)\n"
	    "  --temperature T        0 (greedy) to 100\n"
	    "  --top-p P              above 0, at most 1 (1: off)\n"
	    "  --top-k K              0 (off) or more\n"
	    "  --repetition-penalty R above 0, at most 100 (1: off)\n"
	    "                         (sampling defaults: the folder's\n"
	    "                         generation_config.json, else greedy)\n"
	    "  --seed N               the sampler's seed (default 0)\n"
	    "  --threads N            CPU threads, 1..1024 (default: one per "
	    "CPU)\n"
	    "  --ignore-eos           do not stop on the model's EOS tokens\n"
	    "  --no-bos               no BOS token before a --prompt\n"
	    "  --special              find special tokens in --prompt text\n"
	    "                         (never for text someone else wrote)\n"
	    "  --skip-special         leave special tokens out of the output\n"
	    "  --ids                  print \"prompt: IDS\" and \"output: "
	    "IDS\"\n"
	    "                         lines instead of the text\n"
	    "  --render               print the rendered prompt and exit (the\n"
	    "                         tokenizer only; no weights are loaded)\n"
	    "  --json                 answer as the daemon's /v1 would: BOS "
	    "as\n"
	    "                         tokenizer_config.json's add_bos_token\n"
	    "                         says, nothing streamed, one JSON line\n"
	    "                         {prompt_tokens, completion_tokens,\n"
	    "                         finish, ids, text} at the end\n"
	    "  --help                 this text\n"
	    "\n"
	    "Exit status: 0 done, 1 the model or generation failed, 2 a bad\n"
	    "argument.\n");
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Whole-string integer in [lo, hi], else a message and 0. */
static int
parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr,
		    "sr-generate: %s \"%s\": want a whole number from %ld to "
		    "%ld\n",
		    opt, s, lo, hi);
		return 0;
	}
	*out = (int)v;
	return 1;
}

/* Whole-string finite number; the range is checked by the sampler's own
 * inf_sampling_check() so the CLI and the API refuse the same values. */
static int
parse_num(const char *opt, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v)) {
		fprintf(
		    stderr, "sr-generate: %s \"%s\": want a number\n", opt, s);
		return 0;
	}
	*out = v;
	return 1;
}

static int
parse_seed(const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
		fprintf(stderr,
		    "sr-generate: --seed \"%s\": want a whole number from 0 to "
		    "%llu\n",
		    s, ULLONG_MAX);
		return 0;
	}
	return 1;
}

/* 0 to go on, else the exit status (2 for a bad argument, 0 for --help). */
static int
parse_args(int argc, char **argv, struct gen_args *a)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "prompt", required_argument, NULL, 'p' },
		{ "prompt-file", required_argument, NULL, OPT_PROMPT_FILE },
		{ "chat", required_argument, NULL, 'c' },
		{ "system", required_argument, NULL, OPT_SYSTEM },
		{ "family", required_argument, NULL, OPT_FAMILY },
		{ "max-tokens", required_argument, NULL, 'n' },
		{ "temperature", required_argument, NULL, 't' },
		{ "top-p", required_argument, NULL, OPT_TOP_P },
		{ "top-k", required_argument, NULL, OPT_TOP_K },
		{ "repetition-penalty", required_argument, NULL, OPT_REP },
		{ "seed", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 'j' },
		{ "ignore-eos", no_argument, NULL, OPT_IGNORE_EOS },
		{ "no-bos", no_argument, NULL, OPT_NO_BOS },
		{ "special", no_argument, NULL, OPT_SPECIAL },
		{ "skip-special", no_argument, NULL, OPT_SKIP_SPECIAL },
		{ "ids", no_argument, NULL, 'i' },
		{ "render", no_argument, NULL, OPT_RENDER },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ok = 1, sources;

	memset(a, 0, sizeof(*a));
	a->max_tokens = 256;
	opterr = 0;
	while (ok && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			a->model = optarg;
			break;
		case 'p':
			a->prompt = optarg;
			break;
		case OPT_PROMPT_FILE:
			a->prompt_file = optarg;
			break;
		case 'c':
			a->chat = optarg;
			break;
		case OPT_SYSTEM:
			a->system = optarg;
			break;
		case OPT_FAMILY:
			a->family = optarg;
			break;
		case 'n':
			ok = parse_int(
			    "--max-tokens", optarg, 1, 1000000, &a->max_tokens);
			break;
		case 't':
			ok =
			    parse_num("--temperature", optarg, &a->temperature);
			a->set_temperature = 1;
			break;
		case OPT_TOP_P:
			ok = parse_num("--top-p", optarg, &a->top_p);
			a->set_top_p = 1;
			break;
		case OPT_TOP_K:
			ok =
			    parse_int("--top-k", optarg, 0, INT_MAX, &a->top_k);
			a->set_top_k = 1;
			break;
		case OPT_REP:
			ok = parse_num("--repetition-penalty", optarg,
			    &a->repetition_penalty);
			a->set_rep = 1;
			break;
		case 's':
			ok = parse_seed(optarg, &a->seed);
			a->set_seed = 1;
			break;
		case 'j':
			ok = parse_int(
			    "--threads", optarg, 1, 1024, &a->threads);
			break;
		case OPT_IGNORE_EOS:
			a->ignore_eos = 1;
			break;
		case OPT_NO_BOS:
			a->no_bos = 1;
			break;
		case OPT_SPECIAL:
			a->special = 1;
			break;
		case OPT_SKIP_SPECIAL:
			a->skip_special = 1;
			break;
		case 'i':
			a->ids = 1;
			break;
		case OPT_JSON:
			a->json = 1;
			break;
		case OPT_RENDER:
			a->render = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			if (optopt != 0)
				fprintf(stderr,
				    "sr-generate: %s needs a value (see "
				    "--help)\n",
				    argv[optind - 1]);
			else
				fprintf(stderr,
				    "sr-generate: unknown option \"%s\" (see "
				    "--help)\n",
				    argv[optind - 1]);
			return 2;
		}
	}
	if (!ok)
		return 2;
	if (optind < argc) {
		fprintf(stderr, "sr-generate: unexpected argument \"%s\"\n",
		    argv[optind]);
		return 2;
	}
	sources =
	    (a->prompt != NULL) + (a->prompt_file != NULL) + (a->chat != NULL);
	if (a->model == NULL || sources != 1) {
		fprintf(stderr, "sr-generate: %s (see --help)\n",
		    a->model == NULL ? "--model DIR is required"
		                     : "give one of --prompt, --prompt-file or "
		                       "--chat");
		return 2;
	}
	if ((a->system != NULL || a->family != NULL) && a->chat == NULL) {
		fprintf(stderr,
		    "sr-generate: --system and --family go with "
		    "--chat\n");
		return 2;
	}
	return 0;
}

/* The bytes of --prompt-file (or stdin), NUL-terminated; NULL on error. */
static char *
read_prompt_file(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *buf = NULL, *p;

	if (f == NULL) {
		fprintf(stderr, "sr-generate: --prompt-file \"%s\": %s\n", path,
		    strerror(errno));
		return NULL;
	}
	for (;;) {
		if ((p = realloc(buf, cap + 1)) == NULL)
			goto nomem;
		buf = p;
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n < cap)
			break;
		if (cap >= PROMPT_FILE_MAX) {
			fprintf(stderr,
			    "sr-generate: --prompt-file \"%s\": larger than "
			    "%u MiB\n",
			    path, PROMPT_FILE_MAX >> 20);
			goto fail;
		}
		cap *= 2;
	}
	if (ferror(f)) {
		fprintf(stderr,
		    "sr-generate: --prompt-file \"%s\": read error\n", path);
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
nomem:
	fprintf(stderr, "sr-generate: out of memory\n");
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}

/* The prompt's ids: the chat turn through the template, or the text. */
static int
build_prompt(struct inf_tok *tok, const struct gen_args *a,
    struct inf_tok_ids *ids, struct inf_tok_text *rendered)
{
	struct inf_chat_msg msgs[2];
	enum inf_chat_family family;
	char err[256];
	char *text = NULL;
	size_t n = 0, len;
	unsigned flags = 0;
	int rc;

	if (a->chat != NULL) {
		rc = inf_chat_family_resolve(tok, a->family, &family, err);
		if (rc != 0) {
			fprintf(
			    stderr, "sr-generate: chat template: %s\n", err);
			return rc == -EINVAL ? 2 : 1;
		}
		if (a->system != NULL)
			msgs[n++] = (struct inf_chat_msg){ INF_CHAT_SYSTEM,
				a->system, strlen(a->system) };
		msgs[n++] = (struct inf_chat_msg){ INF_CHAT_USER, a->chat,
			strlen(a->chat) };
		rc = inf_chat_render(tok, family, msgs, n, 1, rendered);
		if (rc == 0)
			rc = inf_chat_encode(tok, family, msgs, n, 1, ids);
		if (rc != 0) {
			fprintf(stderr,
			    "sr-generate: cannot encode the chat "
			    "turn: %s\n",
			    strerror(-rc));
			return 1;
		}
		return 0;
	}
	if (a->prompt_file != NULL) {
		if ((text = read_prompt_file(a->prompt_file, &len)) == NULL)
			return 1;
	} else {
		len = strlen(a->prompt);
	}
	if (!a->no_bos && (!a->json || inf_tok_add_bos(tok)))
		flags |= INF_TOK_ADD_BOS;
	if (a->special)
		flags |= INF_TOK_PARSE_SPECIAL;
	rc = inf_tok_encode(tok, text ? text : a->prompt, len, flags, ids);
	/* what the model reads: the ids back as bytes, BOS included */
	if (rc == 0)
		rc = inf_tok_decode(
		    tok, ids->ids, ids->len, INF_TOK_DECODE_RAW, rendered);
	free(text);
	if (rc != 0) {
		fprintf(stderr, "sr-generate: cannot encode the prompt: %s\n",
		    rc == -EILSEQ ? "not valid UTF-8 (this tokenizer "
		                    "normalizes to NFC)"
		                  : strerror(-rc));
		return 1;
	}
	if (ids->len == 0) {
		fprintf(stderr,
		    "sr-generate: the prompt is empty (and the "
		    "tokenizer has no BOS token)\n");
		return 2;
	}
	return 0;
}

/* Text (or ids) out as tokens come: the streaming decoder holds the bytes
 * of a character cut across tokens until it is whole. */
struct out_stream {
	struct inf_tok_stream st;
	struct inf_tok_text text;
	int ids; /* --ids: numbers instead of text */
	int failed;
};

static void
out_write(struct out_stream *o, const void *p, size_t n)
{
	if (n > 0 && !o->failed &&
	    (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0)) {
		fprintf(stderr, "sr-generate: writing the output: %s\n",
		    strerror(errno));
		o->failed = 1;
	}
}

static int
out_push(struct out_stream *o, int32_t id)
{
	char num[16];
	int rc;

	if (o->ids) {
		out_write(
		    o, num, (size_t)snprintf(num, sizeof(num), " %d", (int)id));
		return o->failed ? -EIO : 0;
	}
	o->text.len = 0;
	if ((rc = inf_tok_stream_push(&o->st, id, &o->text)) != 0)
		return rc;
	out_write(o, o->text.text, o->text.len);
	return o->failed ? -EIO : 0;
}

static int
out_end(struct out_stream *o)
{
	int rc;

	if (o->ids) {
		out_write(o, "\n", 1);
		return o->failed ? -EIO : 0;
	}
	o->text.len = 0;
	if ((rc = inf_tok_stream_flush(&o->st, &o->text)) != 0)
		return rc;
	out_write(o, o->text.text, o->text.len);
	/* a terminal gets its prompt back on a new line; a pipe or file
	 * gets exactly the generated text */
	if (isatty(STDOUT_FILENO))
		out_write(o, "\n", 1);
	return o->failed ? -EIO : 0;
}

static const char *
finish_name(enum inf_finish f)
{
	switch (f) {
	case INF_FINISH_EOS:
		return "end of sequence";
	case INF_FINISH_STOP:
		return "stop";
	case INF_FINISH_LENGTH:
		return "length";
	default:
		return "none";
	}
}

/* --json: the answer in one line, as the serving tests compare it. */
static int
print_json(struct inf_tok *tok, size_t n_prompt, const int32_t *out, int n,
    enum inf_finish fin)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(NULL);
	yyjson_mut_val *root, *arr;
	struct inf_tok_text text;
	char *json = NULL;
	int i, rc = -ENOMEM;

	inf_tok_text_init(&text);
	if (d == NULL || inf_tok_decode(tok, out, (size_t)n, 0, &text) != 0)
		goto out;
	root = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, root);
	yyjson_mut_obj_add_int(d, root, "prompt_tokens", (int64_t)n_prompt);
	yyjson_mut_obj_add_int(d, root, "completion_tokens", n);
	yyjson_mut_obj_add_str(
	    d, root, "finish", fin == INF_FINISH_LENGTH ? "length" : "stop");
	arr = yyjson_mut_obj_add_arr(d, root, "ids");
	for (i = 0; i < n; i++)
		yyjson_mut_arr_add_int(d, arr, out[i]);
	yyjson_mut_obj_add_strncpy(
	    d, root, "text", text.text != NULL ? text.text : "", text.len);
	if ((json = yyjson_mut_write(d, 0, NULL)) == NULL)
		goto out;
	rc = printf("%s\n", json) < 0 || fflush(stdout) != 0 ? -EIO : 0;
	if (rc == -EIO)
		fprintf(stderr, "sr-generate: writing the output: %s\n",
		    strerror(errno));
out:
	free(json);
	yyjson_mut_doc_free(d);
	inf_tok_text_free(&text);
	return rc;
}

/* The sampling parameters: the model's defaults, then the options. */
static int
sampling_of(const struct gen_args *a, const struct inf_model *m,
    struct inf_sampling *sp)
{
	char err[INF_ERR_MAX];

	inf_sampling_from_model(sp, m);
	if (a->set_temperature)
		sp->temperature = (float)a->temperature;
	if (a->set_top_p)
		sp->top_p = (float)a->top_p;
	if (a->set_top_k)
		sp->top_k = a->top_k;
	if (a->set_rep)
		sp->repetition_penalty = (float)a->repetition_penalty;
	if (a->set_seed)
		sp->seed = a->seed;
	if (inf_sampling_check(sp, err) != 0) {
		fprintf(stderr, "sr-generate: %s\n", err);
		return 2;
	}
	return 0;
}

static int
generate(struct inf_model *m, struct inf_tok *tok, const struct gen_args *a,
    const struct inf_tok_ids *prompt)
{
	const struct inf_model_info *in = inf_model_info(m);
	struct inf_sampling sp;
	struct inf_stop stop = { 0 };
	struct out_stream o = { 0 };
	struct inf_seq *seq = NULL;
	struct inf_gen *g = NULL;
	const int32_t *out;
	double t0, t_prefill, t_decode = 0;
	long cap;
	int rc, n, shown = 0, steps = 0, status = 1;
	size_t i;

	if ((rc = sampling_of(a, m, &sp)) != 0)
		return rc;
	if (prompt->len >= (size_t)in->max_position_embeddings) {
		fprintf(stderr,
		    "sr-generate: the prompt is %zu tokens; this model holds "
		    "at most %d with the answer\n",
		    prompt->len, in->max_position_embeddings);
		return 2;
	}
	cap = (long)prompt->len + a->max_tokens;
	if (cap > in->max_position_embeddings)
		cap = in->max_position_embeddings;
	if ((rc = inf_seq_new(m, (int)cap, &seq)) != 0)
		goto fail;
	stop.max_tokens = a->max_tokens;
	stop.ignore_eos = a->ignore_eos;
	inf_tok_text_init(&o.text);
	inf_tok_stream_init(
	    &o.st, tok, a->skip_special ? INF_TOK_DECODE_SKIP_SPECIAL : 0);
	o.ids = a->ids;
	if (a->ids) {
		out_write(&o, "prompt:", 7);
		for (i = 0; i < prompt->len; i++)
			out_push(&o, prompt->ids[i]);
		out_write(&o, "\noutput:", 8);
	}

	t0 = now();
	rc = inf_gen_start(seq, prompt->ids, (int)prompt->len, &sp, &stop, &g);
	t_prefill = now() - t0;
	if (rc != 0)
		goto fail;
	t0 = now();
	for (;;) {
		n = inf_gen_output(g, &out);
		for (; shown < n; shown++)
			if (!a->json && (rc = out_push(&o, out[shown])) != 0)
				goto fail;
		if (inf_gen_finish(g) != INF_FINISH_NONE)
			break;
		if ((rc = inf_gen_step(&g, 1)) != 0)
			goto fail;
		steps++;
	}
	t_decode = now() - t0;
	n = inf_gen_output(g, &out);
	if ((rc = a->json
	            ? print_json(tok, prompt->len, out, n, inf_gen_finish(g))
	            : out_end(&o)) != 0)
		goto fail;
	fprintf(stderr,
	    "sr-generate: %zu prompt tokens, prefill %.1f ms = %.1f tokens/s; "
	    "%d tokens decoded in %.1f ms = %.1f tokens/s; %d generated, "
	    "finish: %s (%s, %d threads)\n",
	    prompt->len, t_prefill * 1e3, (double)prompt->len / t_prefill,
	    steps, t_decode * 1e3, steps > 0 ? steps / t_decode : 0.0, shown,
	    finish_name(inf_gen_finish(g)), in->backend, in->threads);
	status = 0;
	goto out;
fail:
	if (rc != -EIO)
		fprintf(stderr, "sr-generate: generation failed: %s\n",
		    sr_strerror(rc));
out:
	inf_gen_free(g);
	inf_seq_free(seq);
	inf_tok_text_free(&o.text);
	return status;
}

int
main(int argc, char **argv)
{
	struct gen_args a;
	struct inf_open_opts opts = { NULL, 0 };
	struct inf_tok *tok = NULL;
	struct inf_model *m = NULL;
	struct inf_tok_ids ids;
	struct inf_tok_text rendered;
	struct stat st;
	char err[INF_ERR_MAX];
	int rc, status;

	if ((status = parse_args(argc, argv, &a)) != 0)
		return status < 0 ? 0 : status;
	if (stat(a.model, &st) != 0) {
		fprintf(stderr, "sr-generate: model folder \"%s\": %s\n",
		    a.model, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr,
		    "sr-generate: model folder \"%s\": not a folder\n",
		    a.model);
		return 1;
	}
	inf_tok_ids_init(&ids);
	inf_tok_text_init(&rendered);
	if ((rc = inf_tok_load(a.model, &tok, err)) != 0) {
		fprintf(stderr, "sr-generate: tokenizer: %s\n", err);
		status = 1;
		goto out;
	}
	if ((status = build_prompt(tok, &a, &ids, &rendered)) != 0)
		goto out;
	if (a.render) {
		if (fwrite(rendered.text, 1, rendered.len, stdout) !=
		        rendered.len ||
		    fflush(stdout) != 0) {
			fprintf(stderr, "sr-generate: writing the output: %s\n",
			    strerror(errno));
			status = 1;
		}
		goto out;
	}
	opts.threads = a.threads;
	if ((rc = inf_model_open(a.model, &opts, &m, err)) != 0) {
		fprintf(stderr, "sr-generate: %s\n", err);
		status = 1;
		goto out;
	}
	if (inf_tok_vocab_size(tok) > (size_t)inf_model_info(m)->vocab_size) {
		fprintf(stderr,
		    "sr-generate: %s/tokenizer.json has ids up to %zu but the "
		    "model's vocab_size is %d: they do not belong together\n",
		    a.model, inf_tok_vocab_size(tok) - 1,
		    inf_model_info(m)->vocab_size);
		status = 1;
		goto out;
	}
	status = generate(m, tok, &a, &ids);
out:
	inf_model_close(m);
	inf_tok_free(tok);
	inf_tok_ids_free(&ids);
	inf_tok_text_free(&rendered);
	return status;
}
