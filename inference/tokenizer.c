/*
 * inference/tokenizer.c: loading a Hugging Face tokenizer.json (byte-level
 * BPE) and tokenizer_config.json into the tables that encoding and decoding
 * read, and the small accessors. It must never accept a file it cannot
 * encode exactly as Hugging Face would: anything unsupported is refused
 * with a message naming the file and the field.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yyjson.h>

#include "inference/tok_internal.h"

static int load_model(
    struct inf_tok *tok, const char *path, yyjson_val *root, char err[256]);
static int load_merges(
    struct inf_tok *tok, const char *path, yyjson_val *m, char err[256]);

void
inf_tok__byte_to_cp(uint32_t cp_of_byte[256])
{
	uint32_t next = 256;
	int b;

	for (b = 0; b < 256; b++) {
		if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) ||
		    b >= 0xae)
			cp_of_byte[b] = (uint32_t)b;
		else
			cp_of_byte[b] = next++;
	}
}

uint64_t
inf_tok__hash(const unsigned char *p, size_t n)
{
	uint64_t h =
	    0x9e3779b97f4a7c15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
	uint64_t v;

	while (n > 8) {
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
		p += 8;
		n -= 8;
	}
	/* the last 1..8 bytes: two overlapping 4-byte loads, or bytes */
	if (n >= 4) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + n - 4, 4);
		v = (uint64_t)hi << 32 | lo;
	} else {
		v = 0;
		while (n > 0)
			v = v << 8 | p[--n];
	}
	h = (h ^ v) * 0x94d049bb133111ebull;
	h ^= h >> 29;
	h *= 0xd6e8feb86659fd93ull;
	return h ^ (h >> 32);
}

int32_t
inf_tok__vocab_get(const struct inf_tok *tok, const unsigned char *p, size_t n)
{
	uint32_t i = (uint32_t)inf_tok__hash(p, n) & tok->vocab_mask;
	int32_t id;

	while ((id = tok->vocab[i]) >= 0) {
		const struct tok_token *t = &tok->tokens[id];

		if (t->len == n && memcmp(tok->bytes + t->off, p, n) == 0)
			return id;
		i = (i + 1) & tok->vocab_mask;
	}
	return -1;
}

static uint32_t
merge_hash(uint64_t key)
{
	key *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(key >> 32);
}

int
inf_tok__merge_get(const struct inf_tok *tok, int32_t a, int32_t b,
    uint32_t *rank, int32_t *id)
{
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	uint32_t i = merge_hash(key) & tok->merge_mask;

	for (;; i = (i + 1) & tok->merge_mask) {
		const struct tok_merge_slot *s = &tok->merges[i];

		if (s->key == UINT64_MAX)
			return -1;
		if (s->key == key) {
			*rank = s->rank;
			*id = s->id;
			return 0;
		}
	}
}

/* ---------------------------------------------------------------- */
/* Files                                                              */
/* ---------------------------------------------------------------- */

int
inf_tok__read_file(const char *path, char **buf, size_t *len, char err[256])
{
	struct stat st;
	ssize_t got;
	size_t off = 0;
	int fd, rc = 0;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, 256, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, 256, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > TOK_FILE_MAX) {
		rc = -EFBIG;
		snprintf(
		    err, 256, "%s: larger than %u bytes", path, TOK_FILE_MAX);
		goto out;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (*buf == NULL) {
		rc = -ENOMEM;
		snprintf(err, 256, "%s: out of memory", path);
		goto out;
	}
	while (off < (size_t)st.st_size) {
		got = read(fd, *buf + off, (size_t)st.st_size - off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -EINVAL;
			snprintf(err, 256, "%s: short read", path);
			goto out;
		}
		off += (size_t)got;
	}
	(*buf)[off] = '\0';
	*len = off;
out:
	close(fd);
	if (rc != 0) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

int
inf_tok__read_json(const char *path, yyjson_doc **doc, char err[256])
{
	yyjson_read_err rerr;
	char *buf;
	size_t len, i, line = 1, col = 1;
	int rc;

	rc = inf_tok__read_file(path, &buf, &len, err);
	if (rc != 0)
		return rc;
	*doc = yyjson_read_opts(buf, len, 0, NULL, &rerr);
	if (*doc == NULL) {
		for (i = 0; i < rerr.pos && i < len; i++) {
			col++;
			if (buf[i] == '\n') {
				line++;
				col = 1;
			}
		}
		snprintf(err, 256, "%s:%zu:%zu: bad JSON: %s", path, line, col,
		    rerr.msg);
		rc = -EINVAL;
	}
	free(buf);
	return rc;
}

/* ---------------------------------------------------------------- */
/* Vocabulary and added tokens                                        */
/* ---------------------------------------------------------------- */

/* A ByteLevel token string to its raw bytes. Returns the byte count, or -1
 * when some character is outside GPT-2's table (the token is then kept as
 * its UTF-8 text, as Hugging Face's decoder does). out holds >= n bytes. */
static long
bytelevel_to_raw(
    const int16_t byte_of_cp[324], const char *s, size_t n, unsigned char *out)
{
	size_t i = 0, k = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;

		if (c < 0x80) {
			cp = c;
			i += 1;
		} else if ((c & 0xe0) == 0xc0 && i + 1 < n) {
			cp = (uint32_t)(c & 0x1f) << 6 |
			    ((unsigned char)s[i + 1] & 0x3f);
			i += 2;
		} else {
			return -1;
		}
		if (cp >= 324 || byte_of_cp[cp] < 0)
			return -1;
		out[k++] = (unsigned char)byte_of_cp[cp];
	}
	return (long)k;
}

static uint32_t
table_size(size_t entries)
{
	uint32_t cap = 16;

	while (cap < entries * 2)
		cap <<= 1;
	return cap;
}

static int
id_of(yyjson_val *v, int64_t *id)
{
	if (!yyjson_is_int(v))
		return -1;
	*id = yyjson_get_sint(v);
	return *id >= 0 && *id < INT32_MAX ? 0 : -1;
}

/* Vocabulary and added tokens into tokens[], bytes and the vocab table. */
static int
load_tokens(struct inf_tok *tok, const char *path, yyjson_val *vocab,
    yyjson_val *added, char err[256])
{
	int16_t byte_of_cp[324];
	uint32_t cp_of_byte[256];
	yyjson_val *k, *v, *content;
	yyjson_obj_iter it;
	size_t total = 0, idx, max, nvocab = 0, off = 0;
	int64_t id = 0, maxid = -1;
	int b;

	memset(byte_of_cp, 0xff, sizeof(byte_of_cp));
	inf_tok__byte_to_cp(cp_of_byte);
	for (b = 0; b < 256; b++)
		byte_of_cp[cp_of_byte[b]] = (int16_t)b;

	yyjson_obj_foreach(vocab, idx, max, k, v)
	{
		if (id_of(v, &id) != 0) {
			snprintf(err, 256,
			    "%s: model.vocab[\"%.60s\"]: the id must be a "
			    "non-negative integer",
			    path, yyjson_get_str(k));
			return -EINVAL;
		}
		maxid = id > maxid ? id : maxid;
		total += yyjson_get_len(k);
		nvocab++;
	}
	yyjson_arr_foreach(added, idx, max, v)
	{
		content = yyjson_obj_get(v, "content");
		if (id_of(yyjson_obj_get(v, "id"), &id) != 0 ||
		    !yyjson_is_str(content) || yyjson_get_len(content) == 0) {
			snprintf(err, 256,
			    "%s: added_tokens[%zu] needs an \"id\" and a "
			    "non-empty \"content\"",
			    path, idx);
			return -EINVAL;
		}
		maxid = id > maxid ? id : maxid;
		total += yyjson_get_len(content);
	}
	if (maxid < 0 || total >= UINT32_MAX) {
		snprintf(err, 256, "%s: model.vocab is %s", path,
		    maxid < 0 ? "empty" : "too large");
		return -EINVAL;
	}
	tok->ntokens = (size_t)maxid + 1;
	tok->tokens = calloc(tok->ntokens, sizeof(*tok->tokens));
	tok->bytes = malloc(total + 1);
	tok->vocab_mask = table_size(nvocab) - 1;
	tok->vocab = malloc(((size_t)tok->vocab_mask + 1) * sizeof(int32_t));
	tok->added = calloc(yyjson_arr_size(added) + 1, sizeof(*tok->added));
	if (!tok->tokens || !tok->bytes || !tok->vocab || !tok->added)
		goto nomem;
	memset(
	    tok->vocab, 0xff, ((size_t)tok->vocab_mask + 1) * sizeof(int32_t));

	yyjson_obj_iter_init(vocab, &it);
	while ((k = yyjson_obj_iter_next(&it)) != NULL) {
		struct tok_token *t;
		const char *s = yyjson_get_str(k);
		size_t n = yyjson_get_len(k);
		long raw;

		id = yyjson_get_sint(yyjson_obj_iter_get_val(k));
		t = &tok->tokens[id];
		if (t->flags & TOK_PRESENT) {
			snprintf(err, 256,
			    "%s: model.vocab: the id %lld is given twice", path,
			    (long long)id);
			return -EINVAL;
		}
		raw = bytelevel_to_raw(byte_of_cp, s, n, tok->bytes + off);
		t->off = (uint32_t)off;
		t->flags = TOK_PRESENT;
		if (raw < 0) {
			memcpy(tok->bytes + off, s, n);
			t->len = (uint32_t)n;
		} else {
			t->len = (uint32_t)raw;
			t->flags |= TOK_BYTELEVEL;
			if (inf_tok__vocab_get(tok, tok->bytes + off, t->len) <
			    0) {
				uint32_t i = (uint32_t)inf_tok__hash(
				                 tok->bytes + off, t->len) &
				    tok->vocab_mask;

				while (tok->vocab[i] >= 0)
					i = (i + 1) & tok->vocab_mask;
				tok->vocab[i] = (int32_t)id;
			}
		}
		off += t->len;
	}
	yyjson_arr_foreach(added, idx, max, v)
	{
		struct tok_added *a = &tok->added[tok->nadded++];
		struct tok_token *t;

		content = yyjson_obj_get(v, "content");
		id_of(yyjson_obj_get(v, "id"), &id);
		t = &tok->tokens[id];
		t->off = (uint32_t)off;
		t->len = (uint32_t)yyjson_get_len(content);
		t->flags = TOK_PRESENT | TOK_ADDED |
		    (yyjson_get_bool(yyjson_obj_get(v, "special")) ? TOK_SPECIAL
		                                                   : 0);
		memcpy(tok->bytes + off, yyjson_get_str(content), t->len);
		a->bytes = tok->bytes + off;
		a->len = t->len;
		a->id = (int32_t)id;
		off += t->len;
	}
	tok->nbytes = off;
	return 0;
nomem:
	snprintf(err, 256, "%s: out of memory", path);
	return -ENOMEM;
}

static int
added_longest_first(const void *a, const void *b)
{
	const struct tok_added *x = a, *y = b;

	if (x->bytes[0] != y->bytes[0])
		return x->bytes[0] < y->bytes[0] ? -1 : 1;
	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int
load_model(
    struct inf_tok *tok, const char *path, yyjson_val *root, char err[256])
{
	yyjson_val *model = yyjson_obj_get(root, "model"), *v;
	yyjson_val *added = yyjson_obj_get(root, "added_tokens");
	const char *type;
	size_t i;
	int rc, b;

	if (!yyjson_is_obj(model)) {
		snprintf(err, 256, "%s: no \"model\" object", path);
		return -EINVAL;
	}
	type = yyjson_get_str(yyjson_obj_get(model, "type"));
	if (type == NULL) {
		snprintf(err, 256, "%s: model.type is missing", path);
		return -EINVAL;
	}
	if (strcmp(type, "BPE") != 0) {
		snprintf(err, 256,
		    "%s: model.type \"%.40s\" is not supported (byte-level BPE "
		    "only)",
		    path, type);
		return -ENOTSUP;
	}
	v = yyjson_obj_get(model, "dropout");
	if ((v != NULL && !yyjson_is_null(v) && yyjson_get_num(v) != 0) ||
	    yyjson_get_bool(yyjson_obj_get(model, "byte_fallback")) ||
	    yyjson_get_len(
	        yyjson_obj_get(model, "continuing_subword_prefix")) ||
	    yyjson_get_len(yyjson_obj_get(model, "end_of_word_suffix"))) {
		snprintf(err, 256,
		    "%s: model: dropout, byte_fallback, continuing_subword_"
		    "prefix and end_of_word_suffix are not supported",
		    path);
		return -ENOTSUP;
	}
	tok->ignore_merges =
	    yyjson_get_bool(yyjson_obj_get(model, "ignore_merges"));
	if (!yyjson_is_obj(yyjson_obj_get(model, "vocab"))) {
		snprintf(err, 256, "%s: model.vocab must be an object", path);
		return -EINVAL;
	}
	if (added != NULL && !yyjson_is_null(added) && !yyjson_is_arr(added)) {
		snprintf(err, 256, "%s: added_tokens must be a list", path);
		return -EINVAL;
	}
	rc = load_tokens(tok, path, yyjson_obj_get(model, "vocab"),
	    yyjson_is_arr(added) ? added : NULL, err);
	if (rc != 0)
		return rc;
	qsort(
	    tok->added, tok->nadded, sizeof(*tok->added), added_longest_first);
	for (i = tok->nadded; i-- > 0;) {
		tok->added_start[tok->added[i].bytes[0]] = (uint32_t)i;
		tok->added_count[tok->added[i].bytes[0]]++;
	}
	for (b = 0; b < 256; b++) {
		unsigned char c = (unsigned char)b;

		tok->byte_id[b] = inf_tok__vocab_get(tok, &c, 1);
		if (tok->byte_id[b] < 0) {
			snprintf(err, 256,
			    "%s: model.vocab has no token for the byte 0x%02x "
			    "(not a byte-level vocabulary)",
			    path, b);
			return -EINVAL;
		}
	}
	return load_merges(tok, path, yyjson_obj_get(model, "merges"), err);
}

/* One side of a merge to its id (through its raw bytes). */
static int32_t
merge_side(struct inf_tok *tok, const int16_t byte_of_cp[324], const char *s,
    size_t n, unsigned char *scratch, size_t *rawlen)
{
	long raw = bytelevel_to_raw(byte_of_cp, s, n, scratch);

	if (raw < 0)
		return -1;
	*rawlen = (size_t)raw;
	return inf_tok__vocab_get(tok, scratch, (size_t)raw);
}

static int
load_merges(struct inf_tok *tok, const char *path, yyjson_val *m, char err[256])
{
	int16_t byte_of_cp[324];
	uint32_t cp_of_byte[256];
	unsigned char *scratch = NULL;
	size_t idx, max, cap = 0;
	yyjson_val *v;
	int b, rc = 0;

	if (!yyjson_is_arr(m)) {
		snprintf(err, 256, "%s: model.merges must be a list", path);
		return -EINVAL;
	}
	memset(byte_of_cp, 0xff, sizeof(byte_of_cp));
	inf_tok__byte_to_cp(cp_of_byte);
	for (b = 0; b < 256; b++)
		byte_of_cp[cp_of_byte[b]] = (int16_t)b;
	tok->merge_mask = table_size(yyjson_arr_size(m)) - 1;
	tok->merges =
	    malloc(((size_t)tok->merge_mask + 1) * sizeof(*tok->merges));
	if (tok->merges == NULL)
		goto nomem;
	memset(tok->merges, 0xff,
	    ((size_t)tok->merge_mask + 1) * sizeof(*tok->merges));

	yyjson_arr_foreach(m, idx, max, v)
	{
		const char *l, *r, *sp;
		size_t ln, rn, lraw, rraw;
		int32_t a, c, merged;
		uint64_t key;
		uint32_t i;

		if (yyjson_is_str(v)) {
			l = yyjson_get_str(v);
			sp = memchr(l, ' ', yyjson_get_len(v));
			if (sp == NULL ||
			    memchr(sp + 1, ' ',
			        yyjson_get_len(v) - (size_t)(sp + 1 - l)) !=
			        NULL) {
				snprintf(err, 256,
				    "%s: model.merges[%zu]: \"%.40s\" is not "
				    "two tokens separated by one space",
				    path, idx, l);
				rc = -EINVAL;
				goto out;
			}
			ln = (size_t)(sp - l);
			r = sp + 1;
			rn = yyjson_get_len(v) - ln - 1;
		} else if (yyjson_is_arr(v) && yyjson_arr_size(v) == 2 &&
		    yyjson_is_str(yyjson_arr_get(v, 0)) &&
		    yyjson_is_str(yyjson_arr_get(v, 1))) {
			l = yyjson_get_str(yyjson_arr_get(v, 0));
			ln = yyjson_get_len(yyjson_arr_get(v, 0));
			r = yyjson_get_str(yyjson_arr_get(v, 1));
			rn = yyjson_get_len(yyjson_arr_get(v, 1));
		} else {
			snprintf(err, 256,
			    "%s: model.merges[%zu] must be \"a b\" or "
			    "[\"a\", \"b\"]",
			    path, idx);
			rc = -EINVAL;
			goto out;
		}
		if (ln + rn > cap) {
			unsigned char *p = realloc(scratch, (ln + rn) * 2);

			if (p == NULL)
				goto nomem;
			scratch = p;
			cap = (ln + rn) * 2;
		}
		/* scratch ends up holding left then right: the merged
		 * token's bytes */
		a = merge_side(tok, byte_of_cp, l, ln, scratch, &lraw);
		c = a < 0
		    ? -1
		    : merge_side(tok, byte_of_cp, r, rn, scratch + lraw, &rraw);
		if (c < 0) {
			snprintf(err, 256,
			    "%s: model.merges[%zu]: \"%.*s\" is not in the "
			    "vocab",
			    path, idx,
			    (int)(a < 0 ? (ln > 40 ? 40 : ln)
			                : (rn > 40 ? 40 : rn)),
			    a < 0 ? l : r);
			rc = -EINVAL;
			goto out;
		}
		merged = inf_tok__vocab_get(tok, scratch, lraw + rraw);
		if (merged < 0) {
			snprintf(err, 256,
			    "%s: model.merges[%zu]: the merged token of "
			    "\"%.40s\" is not in the vocab",
			    path, idx, l);
			rc = -EINVAL;
			goto out;
		}
		/* Later duplicates win, as in Hugging Face's map. */
		key = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
		i = merge_hash(key) & tok->merge_mask;
		while (tok->merges[i].key != UINT64_MAX &&
		    tok->merges[i].key != key)
			i = (i + 1) & tok->merge_mask;
		tok->merges[i].key = key;
		tok->merges[i].rank = (uint32_t)idx;
		tok->merges[i].id = merged;
	}
out:
	free(scratch);
	return rc;
nomem:
	free(scratch);
	snprintf(err, 256, "%s: out of memory", path);
	return -ENOMEM;
}

/* ---------------------------------------------------------------- */
/* Load and free                                                      */
/* ---------------------------------------------------------------- */

int
inf_tok_load(const char *model_dir, struct inf_tok **out, char err[256])
{
	struct inf_tok *tok;
	yyjson_doc *doc = NULL;
	yyjson_val *root;
	char path[4096];
	int rc, i;

	*out = NULL;
	err[0] = '\0';
	tok = calloc(1, sizeof(*tok));
	if (tok == NULL) {
		snprintf(err, 256, "%s: out of memory", model_dir);
		return -ENOMEM;
	}
	for (i = 0; i < TOK_WS_SLOTS; i++)
		pthread_mutex_init(&tok->ws_lock[i], NULL);
	tok->bos = tok->eos = -1;
	snprintf(path, sizeof(path), "%s/tokenizer.json", model_dir);
	rc = inf_tok__read_json(path, &doc, err);
	if (rc != 0)
		goto out;
	root = yyjson_doc_get_root(doc);
	if (!yyjson_is_obj(root)) {
		snprintf(err, 256, "%s: not a JSON object", path);
		rc = -EINVAL;
		goto out;
	}
	rc = load_model(tok, path, root, err);
	if (rc == 0)
		rc = inf_tok__load_normalizer(
		    tok, path, yyjson_obj_get(root, "normalizer"), err);
	if (rc == 0)
		rc = inf_tok__load_pre_tokenizer(
		    tok, path, yyjson_obj_get(root, "pre_tokenizer"), err);
	if (rc == 0)
		rc = inf_tok__check_decoder(
		    path, yyjson_obj_get(root, "decoder"), err);
	if (rc == 0)
		rc = inf_tok__load_config(tok, model_dir, err);
out:
	yyjson_doc_free(doc);
	if (rc != 0) {
		inf_tok_free(tok);
		return rc;
	}
	*out = tok;
	return 0;
}

void
inf_tok_free(struct inf_tok *tok)
{
	int i;

	if (tok == NULL)
		return;
	for (i = 0; i < TOK_WS_SLOTS; i++) {
		inf_tok__ws_free(tok->ws[i]);
		pthread_mutex_destroy(&tok->ws_lock[i]);
	}
	for (i = 0; i < tok->nstages; i++)
		pcre2_code_free(tok->stages[i].re);
	free(tok->tokens);
	free(tok->bytes);
	free(tok->vocab);
	free(tok->merges);
	free(tok->added);
	free(tok);
}
