/*
 * appliance/audit.h: the tamper-evident audit log. Every authentication,
 * key operation, admin action and inference call becomes one JSON line in
 * a per-day file, hash-chained to the line before it, with checkpoints
 * signed by an HSM-held key; a verifier and a query over the same files.
 *
 * The log never holds a secret: events carry key ids and prefixes only,
 * and no field of struct audit_event has room for anything else.
 *
 * Caveats
 * - One process owns an audit folder; two writers would fork the chain.
 * - An event is acknowledged (blocking return or completion callback with
 *   status 0) only after its line is on disk: appended to the day's file
 *   and recorded in <dir>/audit.journal, a preallocated ring that is
 *   fdatasync'd (a power cut can take the day file's page cache, never an
 *   acknowledged line: audit_open writes them back from the journal).
 * - Fail-closed: when the log cannot be written (folder gone, disk full,
 *   I/O error, file size limit) every event of the failed batch and every
 *   later one is refused with the error until a write succeeds again; the
 *   daemon answers such requests 503 instead of serving them unrecorded.
 *   After a fault clears the chain resumes exactly where the last durable
 *   line left it, and an "audit.recovered" event says how many were
 *   refused.
 * - Checkpoints are signed through a callback, so this part does not
 *   depend on the keystore; the daemon wires it to KS_OP_SIGN.
 * - audit.c must never fork and never call the keystore or PKCS#11.
 *
 * Line format, hash chain, checkpoints, retention: docs/audit.md.
 *
 * Errors (negative, lib/sr.h); what the caller does:
 *   -EINVAL      a required field is missing or a name is malformed: a
 *                caller bug; fix it (the request gets 500).
 *   -ESHUTDOWN   the log is closing: answer 503.
 *   -ENOMEM      allocation failed: answer 503.
 *   -EIO, -ENOSPC, -EFBIG, -EROFS, -EACCES, -EISDIR, -ENOENT and any other
 *                -errno from open/write/fdatasync: the event is NOT
 *                recorded; answer 503 (Retry-After) and alert.
 *   -EBADMSG     (audit_open) the newest file's tail is damaged beyond one
 *                batch, the log ends before its last signed checkpoint
 *                (truncated), or the day's file differs from the journal
 *                or lacks durable bytes it should hold, or audit.journal
 *                is not a journal: run `sr-audit verify` and investigate; the
 *                daemon must not start on a log it cannot continue.
 *   -EEXIST      (audit_open) checkpoint-key-KID.pub holds another key.
 */
#ifndef SR_APPLIANCE_AUDIT_H
#define SR_APPLIANCE_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/sr.h"

struct audit;

/* Longest field values kept; longer values are cut at a UTF-8 boundary
 * and the line carries "truncated":true. */
#define AUDIT_ACTOR_MAX 128
#define AUDIT_ACTION_MAX 64
#define AUDIT_RESOURCE_MAX 512
#define AUDIT_KEY_MAX 64
#define AUDIT_STATUS_MAX 32
#define AUDIT_SRC_MAX 64
#define AUDIT_KEY_ID_MAX 64 /* checkpoint signing key id */

/*
 * One event. Every string is borrowed for the duration of the append call
 * only (it is rendered before the call returns). Bytes that are not UTF-8
 * become U+FFFD; control characters are escaped.
 */
struct audit_event {
	const char *actor;    /* required: "app:ID", "user:NAME", "system" */
	const char *action;   /* required: "auth.apikey", "key.create", ... */
	const char *resource; /* what it acted on (route, key id); NULL: "" */
	const char *key;      /* key id or prefix that authenticated the
	                         request; NULL: field omitted */
	const char *status;   /* required: "200", "401", "503", "ok", ... */
	const char *src;      /* source address; NULL: "" */
	uint32_t duration_ms;
	uint32_t input_tokens;  /* inference only; 0: field omitted */
	uint32_t output_tokens; /* inference only; 0: field omitted */
};

/*
 * Checkpoint signer: ES256 over the 32-byte message @p digest, that is
 * ECDSA P-256 over SHA-256(digest), raw r||s into @p sig (what KS_OP_SIGN
 * returns for a 32-byte message). Called on the writer thread, at most
 * once per checkpoint. @return 0, or any negative code (the checkpoint is
 * then written with "status":"failed" and no signature; events go on).
 */
typedef int audit_sign_cb(void *arg, const uint8_t digest[32], uint8_t sig[64]);

/*
 * Completion of audit_append_async(): @p status is 0 once the line is on
 * disk (then @p seq is its sequence number), or the error that kept it
 * off disk (then @p seq is 0). Called exactly once, on the writer thread,
 * after fdatasync; it must not block and must not call audit_append() (it
 * may call audit_append_async()). The daemon bounces it to its loop with
 * uv_async_send.
 */
typedef void audit_done_cb(void *arg, int status, uint64_t seq);

/* Wall clock in Unix milliseconds; tests inject one to cross days. */
typedef int64_t audit_clock_cb(void *arg);

/* After each durable batch, on the writer thread: how long its write and
 * journal sync took and how many lines (checkpoints included) it made
 * durable. For metrics; must not block or call back into the log. */
typedef void audit_commit_cb(void *arg, uint64_t usec, uint32_t lines);

struct audit_options {
	const char *dir;          /* required; created 0700 if missing */
	const char *appliance_id; /* in every event_id; [A-Za-z0-9_-]{1,32} */
	audit_sign_cb *sign;      /* required */
	void *sign_arg;
	const char *sign_key_id;     /* [A-Za-z0-9._-]{1,64}, in checkpoints */
	const uint8_t *sign_pubkey;  /* 65 bytes 0x04||X||Y, written to
	                                <dir>/checkpoint-key-<id>.pub (PEM) */
	uint32_t checkpoint_events;  /* 0: 10000 */
	uint32_t checkpoint_seconds; /* 0: 60 */
	uint32_t retention_days;     /* 0: 180 */
	uint32_t max_batch;          /* events per write; 0: 4096 */
	uint32_t journal_kib;        /* a new audit.journal's KiB; 0: 16384 */
	audit_clock_cb *clock;       /* NULL: CLOCK_REALTIME */
	void *clock_arg;
	audit_commit_cb *on_commit; /* NULL: none */
	void *on_commit_arg;
	/* 1: the open ends with a signed checkpoint after audit.start, so
	 * the log verifies from its first minute (sr-audit verify wants a
	 * signed checkpoint over everything up to the last one) */
	int checkpoint_at_open;
};

struct audit_stats {
	uint64_t seq;         /* last durable sequence number */
	uint64_t events;      /* durable lines written by this process */
	uint64_t batches;     /* successful write+journal sync rounds */
	uint64_t checkpoints; /* signed checkpoints written */
	uint64_t refused;     /* events refused because a write failed */
	int last_error;       /* 0 when the last batch was durable */
};

/**
 * @brief Open (creating) the log in @p o->dir: write back into the day's
 * file what the journal holds and a power cut took from it (recorded as
 * "audit.journal_replay"), resume the chain from the
 * newest file's last complete line (a torn tail from a crash is cut off and
 * recorded), check it against the last signed checkpoint, write the signing
 * key's public key beside the log, apply retention, start the writer.
 * @param[in]  o    read during the call only; strings copied.
 * @param[out] out  the log; audit_close() it.
 * @param[out] err  a message naming the file and problem (may be NULL).
 * @return 0, -EINVAL, -EBADMSG, -EEXIST, -ENOMEM, -errno.
 * @note Start-up only; not concurrent with other calls on the same folder.
 */
int audit_open(
    const struct audit_options *o, struct audit **out, char err[256]);

/**
 * @brief Refuse new events, write everything queued, a final checkpoint,
 * stop the writer, fdatasync the day's file (the journal is then not
 * needed) and free. Safe on NULL. No append may be in flight.
 */
void audit_close(struct audit *a);

/**
 * @brief Append one event and wait until it is on disk.
 * @param[out] seq  its sequence number (may be NULL).
 * @return 0 when durable; -EINVAL, -ESHUTDOWN, -ENOMEM, -errno (fail-
 *         closed: not recorded, answer 503).
 * @note Any thread but the writer's (so never from audit_done_cb).
 */
int audit_append(struct audit *a, const struct audit_event *ev, uint64_t *seq);

/**
 * @brief Queue one event; @p cb reports when it is on disk or failed.
 * @return 0 when queued (@p cb will be called exactly once, later, on the
 *         writer thread); -EINVAL, -ESHUTDOWN or -ENOMEM when refused at
 *         once (@p cb is then never called).
 * @note Any thread; never blocks on disk.
 */
int audit_append_async(struct audit *a, const struct audit_event *ev,
    audit_done_cb *cb, void *arg);

/**
 * @brief Write a signed checkpoint now (covering everything durable so
 * far) and wait for it. @return 0 or the write error.
 * @note Any thread but the writer's.
 */
int audit_checkpoint(struct audit *a);

/** @brief Counters (any thread; a consistent-enough snapshot). */
void audit_stats_get(struct audit *a, struct audit_stats *st);

/* ------------------------------------------------------------------ */
/* Verification and query (audit_verify.c): read-only, any thread        */
/* ------------------------------------------------------------------ */

struct audit_verify_result {
	uint64_t files, lines, checkpoints; /* checkpoints: signatures OK */
	uint64_t unsigned_checkpoints;      /* written while signing failed */
	uint64_t first_seq, last_seq;
	uint64_t uncovered; /* lines after the last signed checkpoint */
	char file[128];     /* where the first problem is ("" if none) */
	uint64_t line;      /* its line number in that file (1-based) */
	char problem[384];  /* what is wrong, for a person */
};

#define AUDIT_VERIFY_KEYS_MAX 16 /* trusted keys audit_verify_keys takes */

/**
 * @brief Verify the whole log in @p dir: every line's own hash, the chain
 * (seq and prev) across files, every checkpoint's signature, the start of
 * the log (genesis, or accounted for by a retention event a signed
 * checkpoint covers), that the log reaches the checkpoint recorded in
 * <dir>/checkpoint.last, and that a signed checkpoint covers it up to its
 * last checkpoint (none signed, or an unsigned one last: -EBADMSG).
 * @param pubkey_pem  a trusted public key (PEM); NULL: use the
 *                    checkpoint-key-<id>.pub files beside the log.
 * @return 0 when intact; -EBADMSG when a problem was found (res->file,
 *         res->line and res->problem say which); -ENOENT (no log files),
 *         -errno when the folder cannot be read.
 */
int audit_verify(
    const char *dir, const char *pubkey_pem, struct audit_verify_result *res);

/**
 * @brief audit_verify() with @p n trusted public keys (PEM files), for a
 * log whose checkpoint key was replaced: each checkpoint key_id is matched
 * to one of them (the one that key_id's first checkpoint verifies under,
 * else the one checkpoint-key-<id>.pub beside the log holds), and a
 * checkpoint whose key is none of them is a problem naming its line and
 * key_id. @p n 0: the checkpoint-key-<id>.pub files beside the log.
 * @return as audit_verify(); -E2BIG: more than AUDIT_VERIFY_KEYS_MAX keys;
 *         -EINVAL or -errno: a file is not a P-256 public key in PEM, or
 *         cannot be read (res->problem names it).
 */
int audit_verify_keys(const char *dir, const char *const *pubkey_pem, size_t n,
    struct audit_verify_result *res);

struct audit_query {
	const char *key;      /* "key" is it, or "resource" is it or
	                       * /api/keys/<it>[/...]; NULL: any */
	const char *actor;    /* exact, or a prefix when it ends in '*' */
	const char *action;   /* exact, or a prefix when it ends in '*' */
	const char *since;    /* RFC 3339 or YYYY-MM-DD, inclusive; NULL */
	const char *until;    /* exclusive; NULL: no end */
	int with_checkpoints; /* include audit.checkpoint lines */
};

/**
 * @brief Print to @p out every line of @p dir matching @p q, oldest first.
 * @param[out] matched  lines printed (may be NULL).
 * @return 0; -EINVAL (bad time, message in @p err); -ENOENT; -errno.
 */
int audit_query_run(const char *dir, const struct audit_query *q, FILE *out,
    uint64_t *matched, char err[256]);

#endif /* SR_APPLIANCE_AUDIT_H */
