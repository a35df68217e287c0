/*
 * tools/bench/tok_bench.c: tokenizer figures for `make bench`: encoding
 * speed (MB/s, and milliseconds per 100 KB against the 1 ms a GPU decode
 * token takes) on 128 KB of mixed text (English, code, digits, CJK,
 * emoji) with each fixture's tokenizer, side by side with its anchor
 * measured in the same run on the same text: the fixture's own
 * pre-tokenizer regex alone (PCRE2 JIT), the floor any exact encoder pays.
 * Also the first encode after load (empty cache) and decoding.
 *
 * It reports; it fails only when something cannot be measured (a fixture
 * missing, an encode error, a round trip that does not give the text back).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <yyjson.h>

#include "inference/tokenizer.h"

#define TEXT_BYTES (128u << 10)

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 128 KB+ of text that looks like what users send: prose with
 * contractions, code, numbers of every length, CJK, emoji, whitespace
 * runs. Numbers vary so that not every pre-token repeats. */
static char *
mixed_text(int ascii_only, size_t *len)
{
	static const char *const parts[] = {
		"The appliance keeps its root keys in the HSM and derives app "
		"keys for every service. ",
		"I'm sure they'll say it's fine, we've done it many times "
		"before; haven't we? ",
		"def derive(key, ctx):\n    return hmac.new(key, ctx, "
		"'sha256').digest()\n\n",
		"for (size_t i = 0; i < n; i++) {\n\tsum += a[i] * b[i];\n}\n",
		"\xe6\xb7\xb1\xe5\xba\xa6\xe6\x8e\xa2\xe7\xb4\xa2\xef\xbc\x9a"
		"\xe8\xa7\xa3\xe9\x94\x81"
		"DeepSeek\xe5\xae\x89\xe5\x85\xa8"
		"\xe6\x8e\xa5\xe5\x85\xa5\xe4\xb8\x8e\xe7\xa8\xb3\xe5\xae\x9a"
		"\xe8\xbf\x90\xe8\xa1\x8c\xe6\x96\xb0\xe8\xb7\xaf\xe5\xbe\x84"
		"\xe3\x80\x82",
		"Emoji \xf0\x9f\x94\x90\xf0\x9f\x98\x80\xf0\x9f\x91\x8d"
		"\xf0\x9f\x8f\xbd and caf\xc3\xa9    with  spaces\n\t",
		"Invoice 2024-11-23: 1,234,567.89 EUR; ref #A7F3-99; "
		"id=0x7ffe12ab. ",
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, "
		"\xd0\xbc\xd0\xb8\xd1\x80! \xce\x9a\xce\xb1\xce\xbb\xce\xb7"
		"\xce\xbc\xce\xad\xcf\x81\xce\xb1. ",
	};
	/* plain English and code: the first four parts and the invoice */
	static const int ascii_parts[] = { 0, 1, 2, 3, 6 };
	size_t n = 0, i = 0, k;
	const char *part;
	char *s = malloc(TEXT_BYTES + 512);

	if (s == NULL)
		return NULL;
	while (n < TEXT_BYTES) {
		part = ascii_only ? parts[ascii_parts[i % 5]] : parts[i % 8];
		k = strlen(part);
		memcpy(s + n, part, k);
		n += k;
		n += (size_t)sprintf(s + n, "%zu ", i * 2654435761u % 1000003);
		i++;
	}
	s[n] = '\0';
	*len = n;
	return s;
}

/* The anchor: the first Split regex of the fixture, run over the text the
 * way an Isolated split does (every match, and the gaps). */
static int
regex_pass(pcre2_code *re, pcre2_match_data *md, pcre2_match_context *mc,
    const char *text, size_t len, size_t *pieces)
{
	size_t off = 0;
	PCRE2_SIZE *ov;
	int rc;

	*pieces = 0;
	while (off < len) {
		rc = pcre2_jit_match(re, (PCRE2_SPTR)text, len, off, 0, md, mc);
		if (rc == PCRE2_ERROR_NOMATCH)
			break;
		if (rc < 0)
			return -1;
		ov = pcre2_get_ovector_pointer(md);
		off = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
		(*pieces)++;
	}
	return 0;
}

static pcre2_code *
fixture_regex(const char *dir)
{
	char path[512];
	yyjson_doc *doc;
	yyjson_val *re;
	pcre2_code *code = NULL;
	PCRE2_SIZE eo;
	int ec;

	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	doc = yyjson_read_file(path, 0, NULL, NULL);
	re = yyjson_ptr_get(yyjson_doc_get_root(doc),
	    "/pre_tokenizer/pretokenizers/0/pattern/Regex");
	if (yyjson_is_str(re))
		code = pcre2_compile((PCRE2_SPTR)yyjson_get_str(re),
		    yyjson_get_len(re),
		    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo,
		    NULL);
	yyjson_doc_free(doc);
	if (code != NULL && pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) != 0) {
		pcre2_code_free(code);
		code = NULL;
	}
	return code;
}

enum cell_kind { CELL_REGEX, CELL_ENCODE, CELL_DECODE };

struct cell {
	struct inf_tok *tok;
	pcre2_code *re;
	pcre2_match_data *md;
	pcre2_match_context *mc;
	const char *text;
	size_t len;
	struct inf_tok_ids *ids;
	struct inf_tok_text *out;
};

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Run one operation over the whole text again and again for secs; the
 * median round, which a busy shared machine disturbs least. -1 on error. */
static double
median_time(enum cell_kind kind, struct cell *c, double secs)
{
	enum { MAX_ROUNDS = 100000 };
	static double times[MAX_ROUNDS];
	double start = now(), t0;
	size_t n = 0, pieces;
	int rc = 0;

	while (n < MAX_ROUNDS && (n < 5 || now() - start < secs)) {
		t0 = now();
		if (kind == CELL_REGEX) {
			rc = regex_pass(
			    c->re, c->md, c->mc, c->text, c->len, &pieces);
		} else if (kind == CELL_ENCODE) {
			c->ids->len = 0;
			rc = inf_tok_encode(c->tok, c->text, c->len, 0, c->ids);
		} else {
			c->out->len = 0;
			rc = inf_tok_decode(
			    c->tok, c->ids->ids, c->ids->len, 0, c->out);
		}
		if (rc != 0)
			return -1;
		times[n++] = now() - t0;
	}
	qsort(times, n, sizeof(times[0]), by_value);
	return times[n / 2];
}

static int
bench_fixture(const char *dir, const char *label, const char *text, size_t len,
    double secs)
{
	struct inf_tok *tok = NULL, *fresh = NULL;
	struct inf_tok_ids ids;
	struct inf_tok_text out;
	pcre2_code *re = fixture_regex(dir);
	pcre2_match_data *md = NULL;
	pcre2_match_context *mc = pcre2_match_context_create(NULL);
	pcre2_jit_stack *js = pcre2_jit_stack_create(32 << 10, 1 << 20, NULL);
	double t0, regex_s, enc_s, cold_s, dec_s;
	struct cell c;
	char err[256];
	int rc = -1;

	inf_tok_ids_init(&ids);
	inf_tok_text_init(&out);
	if (re == NULL || mc == NULL || js == NULL) {
		fprintf(stderr, "tok-bench: %s: no regex to anchor on\n", dir);
		goto out;
	}
	pcre2_jit_stack_assign(mc, NULL, js);
	md = pcre2_match_data_create_from_pattern(re, NULL);
	if (inf_tok_load(dir, &tok, err) != 0 ||
	    inf_tok_load(dir, &fresh, err) != 0) {
		fprintf(stderr, "tok-bench: %s\n", err);
		goto out;
	}
	/* first encode after load: every pre-token misses the cache */
	t0 = now();
	if (inf_tok_encode(fresh, text, len, 0, &ids) != 0)
		goto fail;
	cold_s = now() - t0;
	if (inf_tok_decode(tok, ids.ids, ids.len, INF_TOK_DECODE_RAW, &out) !=
	        0 ||
	    out.len != len || memcmp(out.text, text, len) != 0) {
		fprintf(stderr, "tok-bench: %s: round trip differs\n", dir);
		goto out;
	}
	c.tok = tok;
	c.re = re;
	c.md = md;
	c.mc = mc;
	c.text = text;
	c.len = len;
	c.ids = &ids;
	c.out = &out;

	if ((regex_s = median_time(CELL_REGEX, &c, secs)) < 0 ||
	    (enc_s = median_time(CELL_ENCODE, &c, secs)) < 0 ||
	    (dec_s = median_time(CELL_DECODE, &c, secs)) < 0)
		goto fail;

	printf("%-12s %-13s %7zu %8zu %9.1f %9.1f %9.1f %7.3f %6.2f %9.1f\n",
	    strrchr(dir, '/') + 1, label, len, ids.len, len / regex_s / 1e6,
	    len / enc_s / 1e6, len / cold_s / 1e6,
	    enc_s * 1e3 * 102400.0 / (double)len, enc_s / regex_s,
	    len / dec_s / 1e6);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "tok-bench: %s: encode or decode failed\n", dir);
out:
	inf_tok_ids_free(&ids);
	inf_tok_text_free(&out);
	inf_tok_free(tok);
	inf_tok_free(fresh);
	pcre2_match_data_free(md);
	pcre2_match_context_free(mc);
	pcre2_jit_stack_free(js);
	pcre2_code_free(re);
	return rc;
}

int
main(void)
{
	static const char *const dirs[] = { "tests/fixtures/tiny-qwen2",
		"tests/fixtures/tiny-llama" };
	static const char *const labels[] = { "mixed", "English+code" };
	const char *env = getenv("SR_BENCH_SECONDS");
	double secs = env ? atof(env) : 0.5;
	size_t len[2], i, k;
	char *text[2] = { mixed_text(0, &len[0]), mixed_text(1, &len[1]) };
	int status = 0;

	if (text[0] == NULL || text[1] == NULL || secs <= 0)
		return 1;
	printf(
	    "tokenizer: %zu bytes of mixed text (English, code, digits, "
	    "CJK, Cyrillic, Greek, emoji),\n  and %zu bytes of plain English "
	    "and code (ASCII); %.1f s per cell\n",
	    len[0], len[1], secs);
	printf("  regex: the fixture's pre-tokenizer regex alone (PCRE2 JIT), "
	       "the anchor\n");
	printf("  warm: the cache of pre-tokens filled; cold: the first "
	       "encode after load; median rounds\n");
	printf("  ms/100KB: warm encode time for 100 KB (budget: about 1 ms, "
	       "one GPU decode token)\n");
	printf("%-12s %-13s %7s %8s %9s %9s %9s %7s %6s %9s\n", "tokenizer",
	    "text", "bytes", "ids", "regexMB/s", "warmMB/s", "coldMB/s",
	    "ms/100K", "x rgx", "decMB/s");
	for (i = 0; i < 2; i++)
		for (k = 0; k < 2; k++)
			if (bench_fixture(
			        dirs[i], labels[k], text[k], len[k], secs) != 0)
				status = 1;
	free(text[0]);
	free(text[1]);
	return status;
}
