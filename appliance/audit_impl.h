/*
 * appliance/audit_impl.h: what the audit log's own files share (line
 * rendering and hashing, file names, the checkpoint digest and key file,
 * the tail scan of the resume, the keys verify trusts, the log object):
 * audit.c, audit_api.c, audit_line.c, audit_file.c, audit_keys.c,
 * audit_verify.c and the audit tests only. The public API is audit.h.
 *
 * Nothing here may hold or print a secret; every function is reentrant.
 */
#ifndef SR_APPLIANCE_AUDIT_IMPL_H
#define SR_APPLIANCE_AUDIT_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "appliance/audit.h"

#define AUDIT__DAY_MS (86400LL * 1000)
#define AUDIT__NAME_LEN 22   /* "audit-YYYY-MM-DD.jsonl" */
#define AUDIT__HASH_TAIL 75  /* ,"hash":"<64 hex>"} */
#define AUDIT__BODY_MAX 8192 /* a rendered body is never longer */
#define AUDIT__LINE_MAX (AUDIT__BODY_MAX + 512)
#define AUDIT__CKPT_LAST "checkpoint.last"
#define AUDIT__ACTOR "audit" /* the writer's own events */
#define AUDIT__CKPT_ACTION "audit.checkpoint"

/* ---- audit_line.c ------------------------------------------------- */

/**
 * Render the caller's part of a line: ,"actor":...,"src":"..." (leading
 * comma, no braces) into @p out (AUDIT__BODY_MAX bytes).
 * @return its length, or -EINVAL (a required field is NULL or empty).
 */
int audit__body_render(const struct audit_event *ev, char *out);

/* Append @p s as JSON string content (no quotes), cut after @p max bytes
 * of input at a UTF-8 boundary; *cut set to 1 if it was cut. Returns the
 * new length. @p out needs 6 * max + 1 bytes past @p len. */
size_t audit__json_str(
    char *out, size_t len, const char *s, size_t max, int *cut);

/* "2025-06-01T12:00:00.123Z" (24 chars + NUL) for Unix ms. */
void audit__ts_format(int64_t ms, char out[25]);

/* Parse RFC 3339 ("2025-06-01", "2025-06-01T12:00[:00[.123]][Z]") or
 * Unix seconds (at most AUDIT__TS_MAX_S) into the fixed form above.
 * @return 0 or -EINVAL. */
#define AUDIT__TS_MAX_S 253402300799LL /* 9999-12-31T23:59:59Z */
int audit__ts_parse(const char *in, char out[25]);

/*
 * Seal a line: @p line holds the prefix {"ts":...,"prev":"<hex>" of
 * @p len bytes; appends ,"hash":"<SHA-256(prefix)>"}, no newline, and puts
 * SHA-256 of the whole line into @p line_hash. @return the new length.
 * @p line needs AUDIT__HASH_TAIL spare bytes.
 */
size_t audit__line_seal(char *line, size_t len, uint8_t line_hash[32]);

/*
 * Check a line's own hash (its last 75 bytes are ,"hash":"<hex>"} and the
 * hex is SHA-256 of what comes before) and hash the whole line.
 * @return 0, or -EBADMSG.
 */
int audit__line_check(const char *line, size_t len, uint8_t line_hash[32]);

/* The message a checkpoint signs: SHA-256 of
 * "strongroom-audit-checkpoint-v1\nseq=<seq>\nhead=<hex>\n". */
void audit__ckpt_digest(
    uint64_t head_seq, const uint8_t head[32], uint8_t digest[32]);

/* ES256 check of @p sig over the 32-byte message @p digest. 0 or
 * -EBADMSG. */
int audit__sig_verify(
    const uint8_t pub[65], const uint8_t digest[32], const uint8_t sig[64]);

/* PEM SubjectPublicKeyInfo of a P-256 point; @p out of 256 bytes.
 * @return its length. */
size_t audit__pem_encode(const uint8_t pub[65], char out[256]);

/* Read a PEM P-256 public key file. 0, -EINVAL (not one), -errno. */
int audit__pem_read(const char *path, uint8_t pub[65]);

/* [A-Za-z0-9._-] of 1..@p max bytes (dot only when @p dot). */
int audit__name_ok(const char *s, size_t max, int dot);

/* ---- audit_keys.c ------------------------------------------------- */

#define AUDIT__KEYRING_IDS 16 /* key_ids one walk remembers */

/* The keys a verify walk checks checkpoints with (audit_keys.c). */
struct audit__keyring {
	const char *dir;   /* the log folder: checkpoint-key-<id>.pub */
	unsigned ntrusted; /* 0: the files beside the log are the keys */
	uint8_t trusted[AUDIT_VERIFY_KEYS_MAX][65];
	unsigned n;
	struct {
		char kid[AUDIT_KEY_ID_MAX + 1];
		uint8_t pub[65];
		const uint8_t *key; /* pub, or NULL: no key for kid */
	} k[AUDIT__KEYRING_IDS];
};

/* Add the PEM P-256 public key at @p pem_path to the trusted keys.
 * @return 0, -E2BIG (AUDIT_VERIFY_KEYS_MAX already), -EINVAL (not a
 * P-256 public key in PEM), -errno (cannot read it). */
int audit__keyring_trust(struct audit__keyring *r, const char *pem_path);

/* The key to check the checkpoint of key_id @p kid with: with trusted keys,
 * the one matched to @p kid (the first time @p kid is seen: the one @p sig
 * over @p digest verifies under, else the one its file beside the log
 * holds); without, its file beside the log. NULL: none. */
const uint8_t *audit__keyring_key(struct audit__keyring *r, const char *kid,
    const uint8_t digest[32], const uint8_t sig[64]);

/* ---- audit_file.c ------------------------------------------------- */

/* "audit-YYYY-MM-DD.jsonl" of day @p day (days since 1970-01-01). */
void audit__file_name(int64_t day, char out[AUDIT__NAME_LEN + 1]);

/* The day a log file name stands for. 0, or -EINVAL if not one. */
int audit__file_day(const char *name, int64_t *day);

/* The log files' days in @p dir, oldest first; *days is malloc'd (free
 * it). @return 0, -ENOENT (no folder), -ENOMEM, -errno. */
int audit__list_days(const char *dir, int64_t **days, size_t *n);

/* What the resume found at the end of the log. */
struct audit__tail {
	uint64_t seq;     /* last complete line's seq; 0: empty log */
	uint8_t head[32]; /* SHA-256 of that line; zeros: empty log */
	int64_t day;      /* newest file's day; INT64_MIN: no file */
	uint64_t size;    /* that file's length after any repair */
	uint64_t torn;    /* bytes cut off a torn tail (0: none) */
	uint8_t torn_hash[32];
	char torn_file[AUDIT__NAME_LEN + 1];
};

/*
 * Find the chain's end: the newest non-empty file's last line that checks
 * and links; a torn tail of at most @p max_torn bytes after it is cut off
 * (ftruncate + fsync) and described in @p t. Then compare with
 * checkpoint.last. @return 0, -EBADMSG (err says file:line and why),
 * -errno.
 */
int audit__resume(
    const char *dir, uint64_t max_torn, struct audit__tail *t, char err[256]);

/* Write <dir>/checkpoint-key-<id>.pub once (same key: nothing to do).
 * @return 0, -EEXIST (another key), -errno. */
int audit__pubkey_write(
    const char *dir, const char *key_id, const uint8_t pub[65], char err[256]);

/* Replace <dir>/checkpoint.last with @p line (temp, fsync, rename,
 * fsync folder). 0 or -errno. */
int audit__ckpt_last_write(int dirfd, const char *line, size_t len);

/* The seq and prev of the first line of <dir>/<name>. 0, -ENOENT (empty
 * file or none), -EBADMSG, -errno. */
int audit__first_line(
    int dirfd, const char *name, uint64_t *seq, uint8_t prev[32]);

/* Read a small file whole (at most @p max bytes), NUL-terminated.
 * @return 0, -EFBIG, -errno; *buf malloc'd. */
int audit__read_small(
    int dirfd, const char *name, size_t max, char **buf, size_t *len);

/* fsync a folder. 0 or -errno. */
int audit__fsync_dir(int dirfd);

/* ---- audit_journal.c ---------------------------------------------- */

#define AUDIT__JOURNAL "audit.journal"
#define AUDIT__JOURNAL_MIN (64u << 10)     /* 16 blocks */
#define AUDIT__JOURNAL_DEFAULT (16u << 20) /* when none is asked for */

/* The journal ring; the writer thread's alone once the log is open. */
struct audit__journal {
	int fd;       /* -1: none */
	uint64_t cap; /* ring bytes, whole 4 KiB blocks */
	uint64_t pos; /* where the next record goes */
	uint64_t gen; /* the next record's number */
	uint64_t lap; /* the number of this lap's first record */
	dev_t dev;    /* the file opened, to see it is still the one named */
	ino_t ino;
};

/* What the open found in the journal and wrote back. */
struct audit__replay {
	uint64_t records;  /* records of the last lap (0: none) */
	uint64_t restored; /* bytes written back into the day's file */
	char file[AUDIT__NAME_LEN + 1];
};

/*
 * Open <dir>/audit.journal (making a zero-filled ring of @p cap bytes if
 * there is none; an existing one keeps its size), replay its last lap into
 * the day's file (see audit_journal.c), fdatasync that file and forget the
 * lap. @return 0, -EBADMSG (a day file differs from the journal or lacks
 * durable bytes; err names the file and byte), -errno.
 */
int audit__journal_open(int dirfd, uint64_t cap, struct audit__journal *j,
    struct audit__replay *rep, char err[256]);

/* Make @p len bytes just appended at @p off of day @p day's file (open as
 * @p day_fd) durable: one record + fdatasync of the journal. A full ring
 * first fdatasyncs the day's file and starts a new lap. 0 or -errno;
 * on failure the slot is reused by the next call. */
int audit__journal_put(struct audit__journal *j, int day_fd, int64_t day,
    uint64_t off, const char *p, size_t len);

/* fdatasync @p day_fd and start a new lap (the day changes). 0 or
 * -errno (the lap goes on). */
int audit__journal_restart(struct audit__journal *j, int day_fd);
/* 0 when the folder @p dirfd still names the journal's open file as
 * AUDIT__JOURNAL; -ENOENT when it was removed or replaced. */
int audit__journal_named(const struct audit__journal *j, int dirfd);

/* On close: fdatasync @p day_fd (-1: none) and forget the lap. 0 or
 * -errno (the next open replays it). */
int audit__journal_finish(struct audit__journal *j, int day_fd);

void audit__journal_close(struct audit__journal *j);

/* ---- audit.c and audit_api.c: the log object ---------------------- */

#define AUDIT__BATCH_BYTES (1u << 20) /* bodies per batch, at most */
#define AUDIT__MAX_TORN (4u << 20)    /* a crash leaves at most this */

enum node_kind { NODE_EVENT, NODE_SYNC, NODE_CKPT };

struct node {
	struct node *next;
	audit_done_cb *cb; /* NULL for the writer's own events */
	void *arg;
	uint64_t seq;
	uint32_t len;
	uint8_t kind;
	char body[];
};

struct list {
	struct node *head, *tail;
};

struct audit {
	char dir[PATH_MAX];
	char appid[33];
	char kid[AUDIT_KEY_ID_MAX + 1];
	audit_sign_cb *sign;
	void *sign_arg;
	uint32_t ckpt_events, max_batch;
	int64_t ckpt_ms, retention_days;
	audit_clock_cb *clock;
	void *clock_arg;
	audit_commit_cb *on_commit;
	void *on_commit_arg;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct list queue; /* under lock */
	int stopping;      /* under lock */
	pthread_t thread;
	int started;

	/* Writer thread only. */
	int dirfd, fd, dirty;
	dev_t fd_dev; /* the day's file as opened: still the one named? */
	ino_t fd_ino;
	struct audit__journal j;
	uint64_t kicked; /* day file bytes handed to write-back so far */
	int64_t day, retention_day, last_ckpt_ms, fail_ms;
	uint64_t size, seq, since_ckpt, refused_run;
	uint8_t head[32];
	struct list carry; /* own events not yet durable */
	int failing;
	char *buf;
	size_t cap;

	_Atomic uint64_t st_seq, st_events, st_batches, st_ckpts, st_refused;
	_Atomic int st_err;
};

static inline void
audit__list_push(struct list *l, struct node *n)
{
	n->next = NULL;
	if (l->tail != NULL)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
}

/* The writer's own event (,"actor":"audit",... plus @p extra raw JSON
 * members), queued on the carry list. Writer thread, or before it runs. */
void audit__own_event(struct audit *a, const char *action, const char *resource,
    const char *status, const char *extra);

/* The writer thread's body (audit.c). */
void *audit__writer_main(void *arg);

#endif /* SR_APPLIANCE_AUDIT_IMPL_H */
