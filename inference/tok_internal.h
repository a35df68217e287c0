/*
 * inference/tok_internal.h: what the tokenizer's files share among
 * themselves (the loaded tables, the per-thread workspaces, the BPE core).
 * Nothing outside inference/tok_*.c, chat.c and their own tests may include
 * it; everyone else goes through inference/tokenizer.h.
 */
#ifndef SR_INFERENCE_TOK_INTERNAL_H
#define SR_INFERENCE_TOK_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "inference/tokenizer.h"

#define TOK_FILE_MAX (64u << 20) /* bound on any JSON or template file */
#define TOK_STAGES_MAX 8         /* pre-tokenizer steps */
#define TOK_WS_SLOTS 8           /* shared workspaces (concurrent encoders) */

/* tokens[id].flags */
#define TOK_PRESENT 0x1   /* the id has a token */
#define TOK_ADDED 0x2     /* listed in added_tokens */
#define TOK_SPECIAL 0x4   /* added and "special": true */
#define TOK_BYTELEVEL 0x8 /* a vocab entry spelt in GPT-2's table */

struct tok_token {
	uint32_t off; /* into inf_tok.bytes */
	uint32_t len;
	uint32_t flags;
};

/* (left, right) -> merged, with the merge's rank; key UINT64_MAX = empty */
struct tok_merge_slot {
	uint64_t key;
	uint32_t rank;
	int32_t id;
};

struct tok_added {
	const unsigned char *bytes; /* into inf_tok.bytes */
	uint32_t len;
	int32_t id;
};

enum tok_stage_kind { TOK_STAGE_SPLIT, TOK_STAGE_BYTELEVEL };

/* One pre-tokenizer step: a Split (regex, Isolated) or a ByteLevel (prefix
 * space, then the GPT-2 regex when use_regex). re is NULL for a ByteLevel
 * without regex. */
struct tok_stage {
	enum tok_stage_kind kind;
	pcre2_code *re;
	int jit;
	int prefix_space;
	/* the regex is Qwen2's (1) or Llama-3's (3: \p{N}{1,3}) split, which
	 * inf_tok__fast_split() matches on ASCII without PCRE2; 0: neither */
	int fast_digits;
};

struct tok_ws;

/* The pre-tokenizer's part of a workspace (tok_encode.c). */
struct tok_ws_re {
	pcre2_match_data *md[TOK_STAGES_MAX];
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack;
	unsigned char *norm; /* NFC output */
	size_t norm_cap;
	unsigned char *prefix[TOK_STAGES_MAX]; /* a piece with its space */
	size_t prefix_cap[TOK_STAGES_MAX];
};

struct inf_tok {
	struct tok_token *tokens;
	size_t ntokens; /* one past the largest id */
	unsigned char *bytes;
	size_t nbytes;
	int32_t byte_id[256]; /* the token of each single byte */

	int32_t *vocab; /* open addressing on token bytes; -1 empty */
	uint32_t vocab_mask;

	struct tok_merge_slot *merges;
	uint32_t merge_mask;

	struct tok_added *added; /* by first byte, then longest first */
	size_t nadded;
	uint32_t added_start[256]; /* first added token with this first byte */
	uint32_t added_count[256];

	int nfc;
	int ignore_merges;
	struct tok_stage stages[TOK_STAGES_MAX];
	int nstages;

	int32_t bos, eos;
	int add_bos;
	enum inf_chat_family chat_family; /* recognised at load */
	int chat_template_found;

	pthread_mutex_t ws_lock[TOK_WS_SLOTS];
	struct tok_ws *ws[TOK_WS_SLOTS];
	_Atomic int forget; /* inf_tok_set_forget */
};

/* Loading (tokenizer.c, tok_config.c): each fills err with
 * "FILE[:LINE:COL]: problem" on failure. yyjson_doc is yyjson's. */
struct yyjson_doc;
struct yyjson_val;
int inf_tok__read_file(
    const char *path, char **buf, size_t *len, char err[256]);
int inf_tok__read_json(
    const char *path, struct yyjson_doc **doc, char err[256]);
int inf_tok__load_normalizer(
    struct inf_tok *tok, const char *path, struct yyjson_val *n, char err[256]);
int inf_tok__load_pre_tokenizer(struct inf_tok *tok, const char *path,
    struct yyjson_val *pt, char err[256]);
int inf_tok__check_decoder(
    const char *path, struct yyjson_val *d, char err[256]);
int inf_tok__load_config(struct inf_tok *tok, const char *dir, char err[256]);

/* Hashing of token bytes, shared by the vocabulary and the cache. */
uint64_t inf_tok__hash(const unsigned char *p, size_t n);

/* The id of a vocabulary token by its raw bytes, or -1. */
int32_t inf_tok__vocab_get(
    const struct inf_tok *tok, const unsigned char *p, size_t n);

/* Merge lookup: rank and merged id of (a, b); 0 when they merge, else -1. */
int inf_tok__merge_get(const struct inf_tok *tok, int32_t a, int32_t b,
    uint32_t *rank, int32_t *id);

/* Workspaces: inf_tok__ws_get() borrows one (slot >= 0) or makes a private
 * one (slot -1); inf_tok__ws_put() gives it back or frees it. */
int inf_tok__ws_get(struct inf_tok *tok, struct tok_ws **ws, int *slot);
void inf_tok__ws_put(struct inf_tok *tok, struct tok_ws *ws, int slot);
void inf_tok__ws_free(struct tok_ws *ws);
struct tok_ws_re *inf_tok__ws_re(struct tok_ws *ws);
int inf_tok__ws_re_setup(const struct inf_tok *tok, struct tok_ws_re *re);
void inf_tok__ws_re_free(struct tok_ws_re *re);

/* BPE of one pre-token's bytes, appended to out (through the cache when
 * use_cache). algo: 0 picks by length, 1 forces the quadratic scan, 2 the
 * heap (the tests check both give the same). */
int inf_tok__bpe(const struct inf_tok *tok, struct tok_ws *ws,
    const unsigned char *p, size_t n, int use_cache, int algo,
    struct inf_tok_ids *out);

/* The match of the Qwen2 / Llama-3 split regex (stage.fast_digits: the
 * most digits one piece takes) that starts at p[off], an ASCII byte, found
 * by hand: 1 with *end set when every byte it had to look at is ASCII (the
 * same match PCRE2 gives), 0 when a non-ASCII byte decides it (ask PCRE2). */
int inf_tok__fast_split(
    const unsigned char *p, size_t n, size_t off, int fast_digits, size_t *end);

/* The pre-tokenizer and BPE over one stretch of text that holds no added
 * token (normalised first when the tokenizer has NFC). */
int inf_tok__encode_plain(struct inf_tok *tok, struct tok_ws *ws,
    const unsigned char *p, size_t n, struct inf_tok_ids *out);

/* Growth helpers of the public buffers. */
int inf_tok__ids_reserve(struct inf_tok_ids *ids, size_t more);
int inf_tok__text_reserve(struct inf_tok_text *t, size_t more);
int inf_tok__text_append(struct inf_tok_text *t, const void *p, size_t n);

/* GPT-2's byte <-> printable code point table. */
void inf_tok__byte_to_cp(uint32_t cp_of_byte[256]);

#endif /* SR_INFERENCE_TOK_INTERNAL_H */
