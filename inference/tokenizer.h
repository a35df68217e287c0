/*
 * inference/tokenizer.h: the tokenizer (byte-level BPE from a Hugging Face
 * tokenizer.json) and the chat templates (DeepSeek-R1, Llama-3, ChatML).
 * Text goes in, token ids come out, and back; nothing here knows about
 * keys, TLS or HTTP, and nothing here ever lets user text become a control
 * token: only the chat template puts turn markers in.
 *
 * Caveats
 * - Only byte-level BPE is loaded: model.type "BPE", a ByteLevel step in
 *   the pre-tokenizer, a ByteLevel decoder, normalizer absent or NFC.
 *   Anything else is refused at load with a message naming the field.
 * - Encoding is lossless for any bytes (invalid UTF-8 included) when the
 *   file has no normalizer: inf_tok_decode(INF_TOK_DECODE_RAW) gives the
 *   input back. With NFC the text must be valid UTF-8 (-EILSEQ).
 * - With INF_TOK_PARSE_SPECIAL, added tokens are found on their exact bytes
 *   (leftmost, then longest); without it no added token is ever produced,
 *   whatever the text holds. Use the plain mode for anything a user wrote.
 * - Decoding follows Hugging Face: unknown ids decode to nothing, and the
 *   default output is UTF-8 with each ill-formed sequence replaced by one
 *   U+FFFD (Rust's from_utf8_lossy).
 * - Chat families render system/user/assistant messages only; the
 *   DeepSeek-R1 family drops earlier assistant turns' reasoning (everything
 *   up to the last "</think>"). Llama-3 trims message contents as its
 *   template does. ChatML adds no default system prompt.
 *
 * Threading: a loaded struct inf_tok is read-only to its users and may be
 * shared by any number of threads: inf_tok_encode() and inf_chat_encode()
 * may run concurrently (each call borrows one of a few internal workspaces
 * with their caches under a lock, or makes a private one when all are in
 * use). A struct inf_tok_stream, inf_tok_ids or inf_tok_text belongs to one
 * thread at a time. inf_tok_free() must not overlap any other call.
 *
 * Errors: 0 on success, or a negative -errno:
 *   -ENOENT    (load) tokenizer.json is missing; (chat) the family's marker
 *              is not an added token of this tokenizer. Fix the model
 *              folder or name another family.
 *   -EINVAL    (load) malformed JSON, a missing or mistyped field, a merge
 *              naming an unknown token, a regex that does not compile:
 *              @p err says which file, line or field. Fix the file.
 *              (other calls) an argument is out of range: a caller bug.
 *   -ENOTSUP   (load) a valid file asking for what this tokenizer does
 *              not support (another model type, normalizer or
 *              pre-tokenizer); (chat) no known family in the template:
 *              name one in the model's configuration, or refuse the
 *              model.
 *   -EFBIG     (load) a file is larger than the 64 MiB bound.
 *   -EILSEQ    (encode) text is not valid UTF-8 and the tokenizer has an
 *              NFC normalizer: answer 400.
 *   -E2BIG     (encode) the pre-tokenizer regex hit PCRE2's match or stack
 *              limit on this text: answer 400 (pathological input).
 *   -ENOMEM    allocation failed; output buffers are left as they were.
 */
#ifndef SR_INFERENCE_TOKENIZER_H
#define SR_INFERENCE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct inf_tok;

/* Caller-owned growable id list. inf_tok_ids_init() zeroes it; functions
 * that fill it append and grow it with realloc; inf_tok_ids_free() frees it
 * (safe on a zeroed list). On failure, len is back to its value at entry. */
struct inf_tok_ids {
	int32_t *ids;
	size_t len;
	size_t cap;
};

/* Caller-owned growable byte string, the same way; always NUL-terminated
 * once anything was appended (text[len] == 0). */
struct inf_tok_text {
	char *text;
	size_t len;
	size_t cap;
};

void inf_tok_ids_init(struct inf_tok_ids *ids);
void inf_tok_ids_free(struct inf_tok_ids *ids);
void inf_tok_text_init(struct inf_tok_text *t);
void inf_tok_text_free(struct inf_tok_text *t);

/**
 * @brief Load the tokenizer of a Hugging Face model folder.
 * @param[in]  model_dir  folder holding tokenizer.json; tokenizer_config.json
 *                        (bos/eos, add_bos_token, chat_template) and
 *                        chat_template.jinja are read when present.
 * @param[out] out        the tokenizer, or NULL on failure.
 * @param[out] err        on failure "FILE[:LINE:COL]: problem".
 * @return 0, -ENOENT, -EINVAL, -ENOTSUP, -EFBIG, -ENOMEM (see above).
 * @note Any thread. The caller owns *out and frees it with inf_tok_free();
 *       nothing in it points into the files, which may change afterwards.
 */
int inf_tok_load(const char *model_dir, struct inf_tok **out, char err[256]);

/** @brief Free a tokenizer; NULL is fine. No other call may overlap. */
void inf_tok_free(struct inf_tok *tok);

/** Encode flags. */
#define INF_TOK_PARSE_SPECIAL 0x1 /* match added tokens in the text */
#define INF_TOK_ADD_BOS 0x2       /* put the BOS token first (if any) */

/**
 * @brief Encode @p len bytes of text, appending the ids to @p out.
 * @param[in] flags  INF_TOK_PARSE_SPECIAL only for text the product built
 *                   itself; INF_TOK_ADD_BOS to start with BOS.
 * @return 0, -EILSEQ, -E2BIG, -ENOMEM. On failure @p out is unchanged.
 * @note Any thread, concurrently. @p text is only read during the call.
 */
int inf_tok_encode(struct inf_tok *tok, const char *text, size_t len,
    unsigned flags, struct inf_tok_ids *out);

/** Decode flags. */
#define INF_TOK_DECODE_SKIP_SPECIAL 0x1 /* leave special tokens out */
#define INF_TOK_DECODE_RAW 0x2          /* the bytes as they are, no U+FFFD */

/**
 * @brief Decode @p n ids, appending the text to @p out.
 * @return 0 or -ENOMEM (then @p out is unchanged).
 * @note Any thread. Ids with no token (negative, past the vocabulary, holes)
 *       decode to nothing, as in Hugging Face.
 */
int inf_tok_decode(const struct inf_tok *tok, const int32_t *ids, size_t n,
    unsigned flags, struct inf_tok_text *out);

/*
 * Streaming decoder: one id in, the text it completes out. Only whole UTF-8
 * characters are ever emitted; the bytes of a character cut across tokens
 * wait for the next id. A sequence that can no longer become valid is
 * emitted as U+FFFD, exactly as inf_tok_decode() would, so the
 * concatenation of every push and the final flush equals inf_tok_decode()
 * of the same ids with the same flags. Fields are private.
 */
struct inf_tok_stream {
	const struct inf_tok *_tok;
	unsigned _flags;
	unsigned char _pending[4];
	size_t _npending;
};

/** @brief Start a stream (cannot fail). @p tok must outlive the stream.
 * @p flags: INF_TOK_DECODE_SKIP_SPECIAL or 0 (RAW is ignored). */
void inf_tok_stream_init(
    struct inf_tok_stream *s, const struct inf_tok *tok, unsigned flags);

/** @brief Feed one id; append what it completes to @p out (maybe nothing).
 * @return 0 or -ENOMEM (the stream and @p out are then unchanged). */
int inf_tok_stream_push(
    struct inf_tok_stream *s, int32_t id, struct inf_tok_text *out);

/** @brief End of stream: bytes still held become U+FFFD in @p out; the
 * stream is empty afterwards and can be reused. @return 0 or -ENOMEM. */
int inf_tok_stream_flush(struct inf_tok_stream *s, struct inf_tok_text *out);

/** @brief Ids one past the largest token id (the vocabulary's extent). */
size_t inf_tok_vocab_size(const struct inf_tok *tok);

/** @brief BOS / EOS ids from tokenizer_config.json, or -1 when unset. */
int32_t inf_tok_bos(const struct inf_tok *tok);
int32_t inf_tok_eos(const struct inf_tok *tok);

/** @brief tokenizer_config.json's add_bos_token (0 when absent). */
int inf_tok_add_bos(const struct inf_tok *tok);

/**
 * @brief With @p on 1, every encode forgets what it saw before it returns:
 * the piece cache that speeds up repeated words (their text and ids) and
 * the scratch buffers are wiped, so no caller's text stays in memory
 * between calls (a server's prompts). Off (0, the default) the cache
 * keeps words across calls. Any thread, at any time; it applies to the
 * encodes that end after it.
 */
void inf_tok_set_forget(struct inf_tok *tok, int on);

/** @brief The id of a token by its exact text (added tokens first, then the
 * vocabulary), or -1. */
int32_t inf_tok_find(const struct inf_tok *tok, const char *text, size_t len);

/**
 * @brief The raw bytes a token stands for (not necessarily UTF-8).
 * @return 0, or -EINVAL when @p id has no token.
 * @note *bytes is owned by @p tok and valid until inf_tok_free().
 */
int inf_tok_piece(const struct inf_tok *tok, int32_t id,
    const unsigned char **bytes, size_t *len);

/** @brief 1 when @p id is an added token flagged "special", else 0. */
int inf_tok_is_special(const struct inf_tok *tok, int32_t id);

/* ------------------------------------------------------------------ */
/* Chat templates                                                       */
/* ------------------------------------------------------------------ */

enum inf_chat_family {
	INF_CHAT_UNKNOWN = 0,
	INF_CHAT_DEEPSEEK_R1, /* BOS system <｜User｜>… <｜Assistant｜>… */
	INF_CHAT_LLAMA3,      /* <|start_header_id|>role<|end_header_id|>… */
	INF_CHAT_CHATML,      /* <|im_start|>role\n…<|im_end|>\n */
};

enum inf_chat_role {
	INF_CHAT_SYSTEM = 0,
	INF_CHAT_USER,
	INF_CHAT_ASSISTANT,
};

/* One message; content is borrowed for the duration of the call. */
struct inf_chat_msg {
	enum inf_chat_role role;
	const char *content;
	size_t content_len;
};

/** @brief The family's configuration name ("deepseek-r1", "llama3",
 * "chatml", "unknown"); a static string. */
const char *inf_chat_family_name(enum inf_chat_family family);

/**
 * @brief Recognise a family from a template's text by its markers.
 * @return the family, or INF_CHAT_UNKNOWN when none or several match, or
 *         when it is a variant rendered differently (Llama-3.1's dated
 *         system header).
 */
enum inf_chat_family inf_chat_family_detect(const char *tmpl, size_t len);

/**
 * @brief The family to use for this model: the one named by the operator
 * (@p name, a configuration name above), else the one recognised from
 * chat_template.jinja or tokenizer_config.json's chat_template at load.
 * Checks that every marker of the family is an added token.
 * @return 0; -ENOTSUP (nothing recognised and no name), -EINVAL (unknown
 *         name), -ENOENT (a marker is missing): @p err says which.
 */
int inf_chat_family_resolve(const struct inf_tok *tok, const char *name,
    enum inf_chat_family *out, char err[256]);

/**
 * @brief Render messages as the template would, appending to @p out (for
 * logs, tests and display; encode with inf_chat_encode(), never by
 * re-encoding this text with INF_TOK_PARSE_SPECIAL).
 * @param add_generation_prompt  nonzero to end with the assistant's cue.
 * @return 0, -EINVAL (family or role out of range), -ENOMEM.
 */
int inf_chat_render(const struct inf_tok *tok, enum inf_chat_family family,
    const struct inf_chat_msg *msgs, size_t n, int add_generation_prompt,
    struct inf_tok_text *out);

/**
 * @brief Encode the rendered chat, appending to @p out: the template's own
 * markers become their token ids, and everything else (message contents
 * with the template's plain text around them) is encoded as plain text, so
 * a message cannot forge a turn.
 * @return 0, -EINVAL, -ENOENT (a marker is not an added token), -EILSEQ,
 *         -E2BIG, -ENOMEM. On failure @p out is unchanged.
 * @note Any thread, concurrently, like inf_tok_encode().
 */
int inf_chat_encode(struct inf_tok *tok, enum inf_chat_family family,
    const struct inf_chat_msg *msgs, size_t n, int add_generation_prompt,
    struct inf_tok_ids *out);

#endif /* SR_INFERENCE_TOKENIZER_H */
