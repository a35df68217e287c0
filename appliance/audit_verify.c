/*
 * appliance/audit_verify.c: reading the audit log back: `verify` walks
 * every file in day order and checks each line's own hash, the chain (seq
 * and prev) across files, every checkpoint's ES256 signature (under the
 * key audit_keys.c gives for its key_id), how the log
 * starts (genesis, or a retention removal a signed checkpoint covers), that
 * it reaches the checkpoint checkpoint.last records and that a signed
 * checkpoint covers it up to its last checkpoint; `query` prints the lines
 * that match a filter.
 *
 * Read-only: it must never write, repair or remove anything in the log
 * folder, and it stops at the first problem, naming its file and line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yyjson.h>

#include "appliance/audit_impl.h"

/* A retention event (audit.retention.remove) seen in the walk. */
struct kept {
	uint64_t seq;     /* kept_from_seq: where the log now starts */
	uint8_t prev[32]; /* kept_from_prev */
	uint64_t at;      /* the event's own seq */
	int64_t removed;  /* the day of the file it removed */
	int64_t when;     /* the day of its ts */
	int64_t days;     /* retention_days */
	int ok;           /* status "ok" and every field above read */
	char file[AUDIT__NAME_LEN + 1];
	uint64_t line;
};

struct walk {
	struct audit_verify_result *res;
	struct audit__keyring keys;
	const char *file;
	uint64_t lineno;
	int have_prev;
	uint64_t prev_seq, last_ckpt_seq;
	uint8_t prev_hash[32];
	uint8_t prev2_hash[32]; /* the line before the previous one */
	int have_prev2;
	uint8_t first_prev[32];
	char first_file[AUDIT__NAME_LEN + 1];
	char ckpt_file[AUDIT__NAME_LEN + 1]; /* previous signed checkpoint */
	uint64_t ckpt_line;
	struct kept *kept;
	size_t nkept, capkept;
	char *last; /* checkpoint.last's line, or NULL */
	size_t lastlen;
	uint64_t lastseq;
	int last_found;
	/* The newest unsigned checkpoint after the last signed one. */
	uint64_t unsigned_seq, unsigned_line;
	char unsigned_file[AUDIT__NAME_LEN + 1];
	/* Where the last line taken into the chain is. */
	char prev_file[AUDIT__NAME_LEN + 1];
	uint64_t prev_line;
	/* Two lines with one seq that both follow the line before them: one
	 * is a forgery, and the line after them tells which. */
	int pend;
	uint64_t pend_seq, pend_line;
	uint8_t pend_hash[32];
	char pend_file[AUDIT__NAME_LEN + 1];
};

static int vproblem(struct walk *w, const char *file, uint64_t line,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static int problem(struct walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int problem_at(struct walk *w, const char *file, uint64_t line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
vproblem(struct walk *w, const char *file, uint64_t line, const char *fmt,
    va_list ap)
{
	snprintf(
	    w->res->file, sizeof(w->res->file), "%s", file != NULL ? file : "");
	w->res->line = line;
	vsnprintf(w->res->problem, sizeof(w->res->problem), fmt, ap);
	return -EBADMSG;
}

static int
problem(struct walk *w, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vproblem(w, w->file, w->lineno, fmt, ap);
	va_end(ap);
	return rc;
}

/* A problem at another line than the one being read. */
static int
problem_at(
    struct walk *w, const char *file, uint64_t line, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vproblem(w, file, line, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *
str_of(yyjson_val *obj, const char *key)
{
	return yyjson_get_str(yyjson_obj_get(obj, key));
}

static int
hex32(yyjson_val *obj, const char *key, uint8_t out[32])
{
	yyjson_val *v = yyjson_obj_get(obj, key);

	return yyjson_is_str(v) && yyjson_get_len(v) == 64 &&
	        sr_hex_decode(out, 32, yyjson_get_str(v), 64) == 32
	    ? 0
	    : -EBADMSG;
}

static int
check_ckpt(
    struct walk *w, yyjson_val *root, uint64_t seq, const uint8_t prev[32])
{
	const char *status = str_of(root, "status"), *kid;
	yyjson_val *hs = yyjson_obj_get(root, "head_seq");
	uint8_t head[32], digest[32], sig[64];
	const uint8_t *pub;
	yyjson_val *sv;

	if (!yyjson_is_uint(hs) || yyjson_get_uint(hs) != seq - 1 ||
	    hex32(root, "head", head) != 0 || memcmp(head, prev, 32) != 0)
		return problem(
		    w, "checkpoint does not name the line before it");
	if (status != NULL && strcmp(status, "failed") == 0) {
		/* Acceptable only once a later signed checkpoint covers it
		 * (check_ends). */
		w->res->unsigned_checkpoints++;
		w->unsigned_seq = seq;
		w->unsigned_line = w->lineno;
		snprintf(
		    w->unsigned_file, sizeof(w->unsigned_file), "%s", w->file);
		return 0;
	}
	kid = str_of(root, "key_id");
	sv = yyjson_obj_get(root, "sig");
	if (kid == NULL || !yyjson_is_str(sv) || yyjson_get_len(sv) != 128 ||
	    sr_hex_decode(sig, 64, yyjson_get_str(sv), 128) != 64)
		return problem(w, "checkpoint without a well-formed signature");
	audit__ckpt_digest(seq - 1, head, digest);
	pub = audit__keyring_key(&w->keys, kid, digest, sig);
	if (pub == NULL && w->keys.ntrusted > 0)
		return problem(w,
		    "checkpoint signed by key \"%.64s\", which is not among "
		    "the trusted keys (--pubkey): none of them verifies its "
		    "signature",
		    kid);
	if (pub == NULL)
		return problem(w,
		    "no public key for checkpoint key \"%s\" "
		    "(checkpoint-key-%s.pub, or give --pubkey)",
		    kid, kid);
	if (audit__sig_verify(pub, digest, sig) != 0) {
		if (w->ckpt_file[0] != '\0')
			return problem(w,
			    "checkpoint signature does not verify: lines "
			    "after the checkpoint at %s:%llu were altered, "
			    "inserted or removed",
			    w->ckpt_file, (unsigned long long)w->ckpt_line);
		return problem(w,
		    "checkpoint signature does not verify: lines before it "
		    "were altered, inserted or removed");
	}
	w->res->checkpoints++;
	w->last_ckpt_seq = seq;
	w->unsigned_seq = 0;
	snprintf(w->ckpt_file, sizeof(w->ckpt_file), "%s", w->file);
	w->ckpt_line = w->lineno;
	return 0;
}

static int
note_kept(struct walk *w, yyjson_val *root, uint64_t seq)
{
	yyjson_val *s = yyjson_obj_get(root, "kept_from_seq");
	yyjson_val *d = yyjson_obj_get(root, "retention_days");
	const char *ts = str_of(root, "ts"), *res = str_of(root, "resource");
	const char *status = str_of(root, "status");
	char name[AUDIT__NAME_LEN + 16];
	struct kept *k;

	if (!yyjson_is_uint(s))
		return 0;
	if (w->nkept == w->capkept) {
		w->capkept = w->capkept ? w->capkept * 2 : 16;
		k = realloc(w->kept, w->capkept * sizeof(*k));
		if (k == NULL)
			return -ENOMEM;
		w->kept = k;
	}
	k = &w->kept[w->nkept];
	memset(k, 0, sizeof(*k));
	k->seq = yyjson_get_uint(s);
	k->at = seq;
	snprintf(k->file, sizeof(k->file), "%s", w->file);
	k->line = w->lineno;
	if (ts != NULL)
		snprintf(name, sizeof(name), "audit-%.10s.jsonl", ts);
	k->ok = status != NULL && strcmp(status, "ok") == 0 &&
	    yyjson_is_uint(d) && yyjson_get_uint(d) > 0 &&
	    yyjson_get_uint(d) < 1000000 && ts != NULL &&
	    audit__file_day(name, &k->when) == 0 && res != NULL &&
	    audit__file_day(res, &k->removed) == 0;
	k->days = k->ok ? (int64_t)yyjson_get_uint(d) : 0;
	if (hex32(root, "kept_from_prev", k->prev) == 0)
		w->nkept++;
	return 0;
}

/* The pair of lines with one seq (w->pend) and the line after them, which
 * follows one of the two: the other is the forgery. @p prev NULL: the log
 * ends after the pair, and either may be it. */
static int
blame_inserted(struct walk *w, const uint8_t *prev)
{
	if (prev != NULL && memcmp(prev, w->pend_hash, 32) == 0)
		return problem_at(w, w->prev_file, w->prev_line,
		    "inserted: this line (seq %llu) is not in the chain; the "
		    "next line has the same seq and the one after it follows "
		    "that one",
		    (unsigned long long)w->pend_seq);
	if (prev != NULL && memcmp(prev, w->prev_hash, 32) == 0)
		return problem_at(w, w->pend_file, w->pend_line,
		    "inserted: this line (seq %llu) is not in the chain; the "
		    "next line follows the one before it",
		    (unsigned long long)w->pend_seq);
	return problem_at(w, w->pend_file, w->pend_line,
	    "this line and the one before it both have seq %llu and follow "
	    "the same line: one of them was inserted",
	    (unsigned long long)w->pend_seq);
}

static int
check_line(struct walk *w, const char *line, size_t len)
{
	uint8_t h[32], prev[32];
	const char *actor, *action;
	yyjson_doc *doc;
	yyjson_val *root, *s;
	uint64_t seq;
	int rc = 0;

	if (audit__line_check(line, len, h) != 0)
		return problem(w,
		    "line edited: its hash does not match its "
		    "content");
	doc = yyjson_read(line, len, 0);
	root = yyjson_doc_get_root(doc);
	s = yyjson_obj_get(root, "seq");
	if (!yyjson_is_uint(s) || hex32(root, "prev", prev) != 0) {
		rc = problem(w, "not an audit line (no seq or prev)");
		goto out;
	}
	seq = yyjson_get_uint(s);
	if (w->pend) {
		rc = blame_inserted(w, prev);
		goto out;
	}
	if (!w->have_prev) {
		w->res->first_seq = seq;
		memcpy(w->first_prev, prev, 32);
		snprintf(w->first_file, sizeof(w->first_file), "%s", w->file);
	} else if (seq == w->prev_seq && w->have_prev2 &&
	    memcmp(prev, w->prev2_hash, 32) == 0) {
		/* This line and the previous one both follow the line before
		 * the previous: one of the two is a forgery slipped into the
		 * chain, and the next line tells which (blame_inserted). */
		w->pend = 1;
		w->pend_seq = seq;
		w->pend_line = w->lineno;
		memcpy(w->pend_hash, h, 32);
		snprintf(w->pend_file, sizeof(w->pend_file), "%s", w->file);
		goto out;
	} else if (seq <= w->prev_seq) {
		rc = problem(w,
		    "seq %llu comes after seq %llu: lines reordered, "
		    "repeated or inserted here",
		    (unsigned long long)seq, (unsigned long long)w->prev_seq);
	} else if (seq != w->prev_seq + 1) {
		rc = problem(w,
		    "seq jumps from %llu to %llu: %llu line(s) deleted "
		    "or moved from before this one",
		    (unsigned long long)w->prev_seq, (unsigned long long)seq,
		    (unsigned long long)(seq - w->prev_seq - 1));
	} else if (memcmp(prev, w->prev_hash, 32) != 0) {
		rc = problem(w,
		    "does not follow the line before it (prev differs): "
		    "that line was replaced or this one inserted");
	}
	if (rc != 0)
		goto out;
	actor = str_of(root, "actor");
	action = str_of(root, "action");
	if (actor != NULL && action != NULL &&
	    strcmp(actor, AUDIT__ACTOR) == 0) {
		if (strcmp(action, AUDIT__CKPT_ACTION) == 0)
			rc = check_ckpt(w, root, seq, prev);
		else if (strcmp(action, "audit.retention.remove") == 0)
			rc = note_kept(w, root, seq);
	}
	if (rc == 0 && w->last != NULL && seq == w->lastseq) {
		if (w->lastlen != len || memcmp(w->last, line, len) != 0)
			rc = problem(w,
			    "differs from the checkpoint %s records at seq "
			    "%llu",
			    AUDIT__CKPT_LAST, (unsigned long long)seq);
		w->last_found = 1;
	}
	w->have_prev2 = w->have_prev;
	memcpy(w->prev2_hash, w->prev_hash, 32);
	w->have_prev = 1;
	snprintf(w->prev_file, sizeof(w->prev_file), "%s", w->file);
	w->prev_line = w->lineno;
	w->prev_seq = seq;
	memcpy(w->prev_hash, h, 32);
	w->res->lines++;
	w->res->last_seq = seq;
out:
	yyjson_doc_free(doc);
	return rc;
}

static int
walk_file(struct walk *w, const char *dir, const char *name)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (f == NULL)
		return problem(w, "cannot read: %s", sr_strerror(-errno));
	w->file = name;
	w->lineno = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
		w->lineno++;
		if (line[n - 1] != '\n')
			rc = problem(w,
			    "last line incomplete (%zd bytes, no newline): a "
			    "torn write or a cut file",
			    n);
		else
			rc = check_line(w, line, (size_t)n - 1);
	}
	if (rc == 0 && ferror(f))
		rc = problem(w, "read error");
	free(line);
	fclose(f);
	w->res->files++;
	return rc;
}

/* Whether retention event @p k accounts for the log starting where it
 * does: 0, or a problem naming the event. Only an event a signed
 * checkpoint covers counts (anyone can append a line to the unsigned
 * tail), and only for a file older than the retention at its own time. */
static int
kept_ok(struct walk *w, const struct kept *k)
{
	int64_t first_day = INT64_MAX;
	char day[AUDIT__NAME_LEN + 1];

	if (!k->ok)
		return problem_at(w, k->file, k->line,
		    "retention event without status ok, retention_days, ts "
		    "or a day file as resource: it accounts for no deleted "
		    "file");
	if (k->at >= w->last_ckpt_seq)
		return problem_at(w, k->file, k->line,
		    "retention event (seq %llu) that no signed checkpoint "
		    "covers: it cannot account for the log starting at seq "
		    "%llu (a file or lines were deleted)",
		    (unsigned long long)k->at,
		    (unsigned long long)w->res->first_seq);
	audit__file_day(w->first_file, &first_day);
	if (k->removed >= first_day || k->removed >= k->when - k->days) {
		audit__file_name(k->removed, day);
		return problem_at(w, k->file, k->line,
		    "retention event for %s, which was not past the "
		    "retention (%lld days) when the event was written: a "
		    "deleted file passed off as retention",
		    day, (long long)k->days);
	}
	return 0;
}

/* After the walk: how the log starts, where checkpoint.last points, and
 * that a signed checkpoint covers the log up to its last checkpoint. */
static int
check_ends(struct walk *w, const char *last_file, uint64_t last_lines)
{
	static const uint8_t zero[32];
	uint64_t from;
	size_t i;
	int rc = 1;

	if (w->pend)
		return blame_inserted(w, NULL);
	w->file = w->first_file;
	w->lineno = 1;
	if (w->res->lines > 0 &&
	    !(w->res->first_seq == 1 && memcmp(w->first_prev, zero, 32) == 0)) {
		for (i = 0; i < w->nkept && rc != 0; i++)
			if (w->kept[i].seq == w->res->first_seq &&
			    memcmp(w->kept[i].prev, w->first_prev, 32) == 0)
				rc = kept_ok(w, &w->kept[i]);
		if (rc < 0)
			return rc;
		memset(w->res->file, 0, sizeof(w->res->file));
		w->res->problem[0] = '\0';
		if (rc > 0)
			return problem(w,
			    "the log starts at seq %llu but no retention "
			    "event accounts for the lines before it (a file "
			    "or lines were deleted)",
			    (unsigned long long)w->res->first_seq);
	}
	w->file = last_file;
	w->lineno = last_lines;
	if (w->last != NULL && !w->last_found)
		return problem(w,
		    "truncated: the log ends at seq %llu, before the "
		    "signed checkpoint at seq %llu that %s records",
		    (unsigned long long)w->res->last_seq,
		    (unsigned long long)w->lastseq, AUDIT__CKPT_LAST);
	/* A clean close ends with a signed checkpoint: a log whose last
	 * checkpoint is unsigned, or with no signed one at all, is not under
	 * any signature at its end, whatever its chain says. */
	from = w->last_ckpt_seq ? w->last_ckpt_seq + 1 : w->res->first_seq;
	if (w->unsigned_seq != 0)
		return problem_at(w, w->unsigned_file, w->unsigned_line,
		    "no signed checkpoint covers lines %llu..%llu: this "
		    "checkpoint was written unsigned and no signed one "
		    "follows",
		    (unsigned long long)from,
		    (unsigned long long)w->unsigned_seq);
	if (w->res->lines > 0 && w->res->checkpoints == 0)
		return problem(w,
		    "no signed checkpoint covers lines %llu..%llu: the log "
		    "holds no signed checkpoint",
		    (unsigned long long)from,
		    (unsigned long long)w->res->last_seq);
	if (w->last == NULL && w->res->checkpoints > 0)
		return problem(w,
		    "%s is missing; the log's end cannot be "
		    "checked",
		    AUDIT__CKPT_LAST);
	return 0;
}

static int
load_last(struct walk *w, const char *dir)
{
	uint8_t h[32], prev[32];
	yyjson_doc *doc;
	yyjson_val *s;
	int dirfd, rc;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	rc = audit__read_small(
	    dirfd, AUDIT__CKPT_LAST, AUDIT__LINE_MAX, &w->last, &w->lastlen);
	close(dirfd);
	if (rc == -ENOENT)
		return 0;
	w->file = AUDIT__CKPT_LAST;
	w->lineno = 1;
	if (rc != 0)
		return problem(w, "cannot read: %s", sr_strerror(rc));
	if (w->lastlen > 0 && w->last[w->lastlen - 1] == '\n')
		w->lastlen--;
	if (audit__line_check(w->last, w->lastlen, h) != 0)
		return problem(w, "damaged: its hash does not match");
	doc = yyjson_read(w->last, w->lastlen, 0);
	s = yyjson_obj_get(yyjson_doc_get_root(doc), "seq");
	rc = yyjson_is_uint(s) &&
	        hex32(yyjson_doc_get_root(doc), "prev", prev) == 0
	    ? 0
	    : problem(w, "not a checkpoint line");
	w->lastseq = yyjson_get_uint(s);
	yyjson_doc_free(doc);
	return rc;
}

int
audit_verify(
    const char *dir, const char *pubkey_pem, struct audit_verify_result *res)
{
	return audit_verify_keys(dir, pubkey_pem != NULL ? &pubkey_pem : NULL,
	    pubkey_pem != NULL, res);
}

int
audit_verify_keys(const char *dir, const char *const *pubkey_pem, size_t nkeys,
    struct audit_verify_result *res)
{
	char name[AUDIT__NAME_LEN + 1], last_name[AUDIT__NAME_LEN + 1] = "";
	struct walk w;
	int64_t *days = NULL;
	size_t n = 0, i;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.res = res;
	w.keys.dir = dir;
	for (i = 0; i < nkeys; i++) {
		rc = audit__keyring_trust(&w.keys, pubkey_pem[i]);
		if (rc == -E2BIG) {
			snprintf(res->problem, sizeof(res->problem),
			    "more than %d trusted keys", AUDIT_VERIFY_KEYS_MAX);
			return rc;
		}
		if (rc != 0) {
			snprintf(res->problem, sizeof(res->problem),
			    "%s: not a P-256 public key in PEM (%s)",
			    pubkey_pem[i], sr_strerror(rc));
			return rc;
		}
	}
	rc = audit__list_days(dir, &days, &n);
	if (rc == 0 && n == 0)
		rc = -ENOENT;
	if (rc != 0) {
		snprintf(res->problem, sizeof(res->problem),
		    "%s: no audit log here (%s)", dir, sr_strerror(rc));
		goto out;
	}
	rc = load_last(&w, dir);
	for (i = 0; rc == 0 && i < n; i++) {
		audit__file_name(days[i], name);
		rc = walk_file(&w, dir, name);
		memcpy(last_name, name, sizeof(name));
	}
	if (rc == 0)
		rc = check_ends(&w, last_name, w.lineno);
	res->uncovered = res->lines > 0 ? res->last_seq - w.last_ckpt_seq : 0;
	if (w.last_ckpt_seq == 0)
		res->uncovered = res->lines;
out:
	free(days);
	free(w.kept);
	free(w.last);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Query                                                                */
/* ------------------------------------------------------------------ */

static int
match(const char *want, const char *have)
{
	size_t n;

	if (want == NULL)
		return 1;
	if (have == NULL)
		return 0;
	n = strlen(want);
	if (n > 0 && want[n - 1] == '*')
		return strncmp(want, have, n - 1) == 0;
	return strcmp(want, have) == 0;
}

/* Whether @p res is the key @p id itself or an operation on it: the id, a
 * path with a /keys/ID segment (/api/keys/ID/rotate, /api/apps/A/keys/ID),
 * or any resource ending #ID (the key an operation made: keys.create,
 * rotate, leak). */
static int
resource_is_key(const char *res, const char *id)
{
	static const char seg[] = "/keys/";
	size_t n = strlen(id), len = strlen(res);
	const char *p;

	if (strcmp(res, id) == 0)
		return 1;
	if (n == 0)
		return 0;
	if (len > n && res[len - n - 1] == '#' &&
	    strcmp(res + len - n, id) == 0)
		return 1;
	for (p = strstr(res, seg); p != NULL; p = strstr(p + 1, seg)) {
		p += sizeof(seg) - 1;
		if (strncmp(p, id, n) == 0 &&
		    (p[n] == '\0' || p[n] == '/' || p[n] == '?' || p[n] == '#'))
			return 1;
		p -= sizeof(seg) - 1;
	}
	return 0;
}

static int
line_matches(const struct audit_query *q, const char *since, const char *until,
    const char *line, size_t len)
{
	yyjson_doc *doc = yyjson_read(line, len, 0);
	yyjson_val *root = yyjson_doc_get_root(doc);
	const char *ts = str_of(root, "ts"), *action = str_of(root, "action");
	const char *key = str_of(root, "key"), *res = str_of(root, "resource");
	int ok = doc != NULL && ts != NULL;

	if (ok && !q->with_checkpoints && action != NULL &&
	    strcmp(action, AUDIT__CKPT_ACTION) == 0 &&
	    (q->action == NULL || strcmp(q->action, AUDIT__CKPT_ACTION) != 0))
		ok = 0;
	if (ok && q->key != NULL)
		ok = (key != NULL && strcmp(key, q->key) == 0) ||
		    (res != NULL && resource_is_key(res, q->key));
	ok = ok && match(q->actor, str_of(root, "actor")) &&
	    match(q->action, action);
	if (ok && since[0] != '\0')
		ok = strcmp(ts, since) >= 0;
	if (ok && until[0] != '\0')
		ok = strcmp(ts, until) < 0;
	yyjson_doc_free(doc);
	return ok;
}

int
audit_query_run(const char *dir, const struct audit_query *q, FILE *out,
    uint64_t *matched, char err[256])
{
	char since[25] = "", until[25] = "", path[PATH_MAX], *line = NULL;
	char name[AUDIT__NAME_LEN + 1], needle[AUDIT_ACTION_MAX + 16] = "";
	int64_t *days = NULL, since_day = INT64_MIN;
	uint64_t count = 0;
	size_t n = 0, i, cap = 0;
	ssize_t len;
	FILE *f;
	int rc;

	if (q->since != NULL && audit__ts_parse(q->since, since) != 0) {
		snprintf(err, 256,
		    "--since \"%s\": not a UTC time (use "
		    "2025-06-01, 2025-06-01T12:00:00Z or Unix seconds, "
		    "up to 9999-12-31)",
		    q->since);
		return -EINVAL;
	}
	if (q->until != NULL && audit__ts_parse(q->until, until) != 0) {
		snprintf(err, 256,
		    "--until \"%s\": not a UTC time (use "
		    "2025-06-01, 2025-06-01T12:00:00Z or Unix seconds, "
		    "up to 9999-12-31)",
		    q->until);
		return -EINVAL;
	}
	/* A file of day D holds no line stamped after D (the writer never
	 * goes back to an older file), so earlier files can be skipped. */
	if (since[0] != '\0') {
		snprintf(name, sizeof(name), "audit-%.10s.jsonl", since);
		audit__file_day(name, &since_day);
	}
	/* An exact action is written as these bytes in every line that has
	 * it (names are [A-Za-z0-9._-], never escaped): lines without them
	 * are passed over unparsed. */
	if (q->action != NULL && audit__name_ok(q->action, AUDIT_ACTION_MAX, 1))
		snprintf(
		    needle, sizeof(needle), "\"action\":\"%s\"", q->action);
	rc = audit__list_days(dir, &days, &n);
	if (rc == 0 && n == 0)
		rc = -ENOENT;
	if (rc != 0) {
		snprintf(err, 256, "%s: no audit log here (%s)", dir,
		    sr_strerror(rc));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (days[i] < since_day)
			continue;
		audit__file_name(days[i], name);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		f = fopen(path, "re");
		if (f == NULL) {
			rc = -errno;
			snprintf(err, 256, "%s: %s", path, sr_strerror(rc));
			goto out;
		}
		while ((len = getline(&line, &cap, f)) > 0) {
			if (line[len - 1] == '\n')
				len--;
			if (needle[0] != '\0' &&
			    memmem(line, (size_t)len, needle, strlen(needle)) ==
			        NULL)
				continue;
			if (line_matches(q, since, until, line, (size_t)len)) {
				fwrite(line, 1, (size_t)len, out);
				fputc('\n', out);
				count++;
			}
		}
		fclose(f);
	}
out:
	if (matched != NULL)
		*matched = count;
	free(line);
	free(days);
	return rc;
}
