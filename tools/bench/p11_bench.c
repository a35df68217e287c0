/*
 * tools/bench/p11_bench.c: `make bench` for the pkcs11 layer. On a scratch
 * SoftHSM2 token it times each operation through the layer and through the
 * raw anchor (p11_raw.c) in alternating slices, 1 and 2 threads, and prints
 * ops/s and their ratio. It reports and never asserts a goal; it must never
 * touch a token outside its own scratch folder.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/sr.h"
#include "pkcs11/p11.h"
#include "tools/bench/p11_raw.h"

#define BENCH_SECONDS 1.2 /* per cell and side, default */
#define BENCH_SLICE 0.1   /* seconds of one side in one round */
#define BENCH_MIN_ROUNDS 3
#define BENCH_MAX_THREADS 2
#define BENCH_GOAL 0.95

enum bench_op {
	OP_HMAC,
	OP_KDF,
	OP_ECDSA,
	OP_WRAP,
	OP_UNWRAP,
	OP_RANDOM,
	OP_COUNT
};

static const char *const bench_op_name[OP_COUNT] = {
	[OP_HMAC] = "hmac-sha256",
	[OP_KDF] = "kdf-800-108",
	[OP_ECDSA] = "ecdsa-p256",
	[OP_WRAP] = "wrap-32",
	[OP_UNWRAP] = "unwrap-32",
	[OP_RANDOM] = "random-32",
};

static const char bench_label[] = "device-key";
static const char bench_context[] = "sn-007-888-abc";

struct bench {
	struct p11_ctx *ctx;
	struct p11_raw *raw;
	struct p11_key *kek, *kdk, *sign;
	uint8_t msg[64];
	uint8_t plain[32];
	uint8_t blob[40];
	atomic_int stop;
};

struct worker {
	struct bench *b;
	pthread_barrier_t *start;
	pthread_t tid;
	unsigned idx; /* the anchor's session for this thread */
	enum bench_op op;
	int raw;
	unsigned long ops;
	struct timespec t0, t1;
	int rc;           /* layer error, 0 if none */
	unsigned long rv; /* CK_RV of the failure, 0 if none */
};

/* One operation through the layer; on failure *rv gets p11_last_rv(),
 * which is per thread and so must be read here. */
static int
bench_layer_op(struct bench *b, enum bench_op op, unsigned long *rv)
{
	struct sr_secret sec = { 0 };
	uint8_t out[64];
	size_t n;
	int rc;

	switch (op) {
	case OP_HMAC:
		rc = p11_hmac_sha256(
		    b->ctx, b->kdk, b->msg, sizeof(b->msg), out);
		break;
	case OP_KDF:
		rc = p11_kdf_sp800_108(b->ctx, b->kdk, bench_label,
		    sizeof(bench_label) - 1, bench_context,
		    sizeof(bench_context) - 1, out, 32);
		break;
	case OP_ECDSA:
		rc = p11_ecdsa_p256_sign(
		    b->ctx, b->sign, b->msg, sizeof(b->msg), out);
		break;
	case OP_WRAP:
		rc = p11_wrap(b->ctx, b->kek, b->plain, sizeof(b->plain), out,
		    sizeof(out), &n);
		break;
	case OP_UNWRAP:
		rc = p11_unwrap(b->ctx, b->kek, b->blob, sizeof(b->blob), &sec);
		sr_secret_free(&sec);
		break;
	default:
		rc = p11_random(b->ctx, out, 32);
		break;
	}
	if (rc != 0)
		*rv = p11_last_rv();
	return rc;
}

/* The same operation through the anchor on session @p s. */
static unsigned long
bench_raw_op(struct bench *b, unsigned s, enum bench_op op)
{
	uint8_t out[64];
	size_t n;

	switch (op) {
	case OP_HMAC:
		return p11_raw_hmac(b->raw, s, b->msg, sizeof(b->msg), out);
	case OP_KDF:
		return p11_raw_kdf_block(b->raw, s, bench_label,
		    sizeof(bench_label) - 1, bench_context,
		    sizeof(bench_context) - 1, out);
	case OP_ECDSA:
		return p11_raw_ecdsa(b->raw, s, b->msg, sizeof(b->msg), out);
	case OP_WRAP:
		return p11_raw_wrap(b->raw, s, b->plain, sizeof(b->plain), out,
		    sizeof(out), &n);
	case OP_UNWRAP:
		return p11_raw_unwrap(
		    b->raw, s, b->blob, sizeof(b->blob), out, sizeof(out), &n);
	default:
		return p11_raw_random(b->raw, s, out, 32);
	}
}

static void *
bench_worker(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	pthread_barrier_wait(w->start);
	clock_gettime(CLOCK_MONOTONIC, &w->t0);
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		if (w->raw)
			w->rv = bench_raw_op(b, w->idx, w->op);
		else
			w->rc = bench_layer_op(b, w->op, &w->rv);
		if (w->rc != 0 || w->rv != 0) {
			/* The measurement is void: stop the others too. */
			atomic_store(&b->stop, 1);
			break;
		}
		w->ops++;
	}
	clock_gettime(CLOCK_MONOTONIC, &w->t1);
	return NULL;
}

static double
bench_ts(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static void
bench_sleep(double secs)
{
	struct timespec ts;

	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A CK_RV for a message; 0 means the layer refused before the module. */
static const char *
bench_rv_text(unsigned long rv)
{
	return rv != 0 ? p11_rv_name(rv) : "none (refused by the layer)";
}

static void
bench_report(
    const char *side, enum bench_op op, unsigned nthr, const struct worker *w)
{
	if (w->rc != 0)
		fprintf(stderr,
		    "p11-bench: %s, %s, %u thread(s): %s (%s), "
		    "CK_RV %s\n",
		    bench_op_name[op], side, nthr, sr_strerror(w->rc),
		    sr_errname(w->rc), bench_rv_text(w->rv));
	else
		fprintf(stderr, "p11-bench: %s, %s, %u thread(s): %s\n",
		    bench_op_name[op], side, nthr, p11_rv_name(w->rv));
}

/*
 * Run @p nthr threads of one side for @p secs. Adds the ops done and the
 * wall time (first thread's start to last thread's end) to the totals.
 * Returns 0, or -1 after printing an operation error.
 */
static int
bench_slice(struct bench *b, enum bench_op op, unsigned nthr, int raw,
    double secs, unsigned long *ops, double *wall)
{
	struct worker w[BENCH_MAX_THREADS];
	pthread_barrier_t start;
	double t0 = 0, t1 = 0;
	unsigned i;
	int bad = 0, rc;

	memset(w, 0, sizeof(w));
	atomic_store(&b->stop, 0);
	pthread_barrier_init(&start, NULL, nthr + 1);
	for (i = 0; i < nthr; i++) {
		w[i].b = b;
		w[i].start = &start;
		w[i].idx = i;
		w[i].op = op;
		w[i].raw = raw;
		rc = pthread_create(&w[i].tid, NULL, bench_worker, &w[i]);
		if (rc != 0) {
			fprintf(stderr, "p11-bench: pthread_create: %s\n",
			    strerror(rc));
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	bench_sleep(secs);
	atomic_store(&b->stop, 1);
	for (i = 0; i < nthr; i++)
		pthread_join(w[i].tid, NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < nthr; i++) {
		if (w[i].rc != 0 || w[i].rv != 0) {
			bench_report(raw ? "raw" : "layer", op, nthr, &w[i]);
			bad = 1;
		}
		if (i == 0 || bench_ts(&w[i].t0) < t0)
			t0 = bench_ts(&w[i].t0);
		if (i == 0 || bench_ts(&w[i].t1) > t1)
			t1 = bench_ts(&w[i].t1);
		*ops += w[i].ops;
	}
	*wall += t1 - t0;
	return bad ? -1 : 0;
}

/*
 * Before timing an operation, check once that layer and anchor compute the
 * same thing (deterministic operations must agree byte for byte), so the
 * anchor is known to do the layer's work and not something cheaper.
 */
static int
bench_crosscheck(struct bench *b, enum bench_op op)
{
	struct sr_secret sec = { 0 };
	uint8_t a[64], r[64];
	size_t na = 0, nr = 0;
	unsigned long rv = 0;
	int rc = 0, same = 1;

	switch (op) {
	case OP_HMAC:
		rc = p11_hmac_sha256(b->ctx, b->kdk, b->msg, sizeof(b->msg), a);
		if (rc == 0)
			rv = p11_raw_hmac(b->raw, 0, b->msg, sizeof(b->msg), r);
		same = memcmp(a, r, 32) == 0;
		break;
	case OP_KDF:
		rc = p11_kdf_sp800_108(b->ctx, b->kdk, bench_label,
		    sizeof(bench_label) - 1, bench_context,
		    sizeof(bench_context) - 1, a, 32);
		if (rc == 0)
			rv = p11_raw_kdf_block(b->raw, 0, bench_label,
			    sizeof(bench_label) - 1, bench_context,
			    sizeof(bench_context) - 1, r);
		same = memcmp(a, r, 32) == 0;
		break;
	case OP_WRAP:
		rc = p11_wrap(b->ctx, b->kek, b->plain, sizeof(b->plain), a,
		    sizeof(a), &na);
		if (rc == 0)
			rv = p11_raw_wrap(b->raw, 0, b->plain, sizeof(b->plain),
			    r, sizeof(r), &nr);
		same = na == nr && memcmp(a, r, na) == 0;
		break;
	case OP_UNWRAP:
		rc = p11_unwrap(b->ctx, b->kek, b->blob, sizeof(b->blob), &sec);
		if (rc == 0)
			rv = p11_raw_unwrap(b->raw, 0, b->blob, sizeof(b->blob),
			    r, sizeof(r), &nr);
		same = rc == 0 && nr == sr_secret_len(&sec) &&
		    memcmp(sr_secret_bytes(&sec), r, nr) == 0;
		sr_secret_free(&sec);
		break;
	default:
		/* ECDSA signatures and random bytes differ by design. */
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "p11-bench: %s, layer: %s (%s), CK_RV %s\n",
		    bench_op_name[op], sr_strerror(rc), sr_errname(rc),
		    bench_rv_text(p11_last_rv()));
		return -1;
	}
	if (rv != 0) {
		fprintf(stderr, "p11-bench: %s, raw: %s\n", bench_op_name[op],
		    p11_rv_name(rv));
		return -1;
	}
	if (!same) {
		fprintf(stderr, "p11-bench: %s: layer and anchor disagree\n",
		    bench_op_name[op]);
		return -1;
	}
	return 0;
}

/*
 * Layer/raw alternations per cell: many short slices rather than a few
 * long ones, because on a small shared VM the speed drifts by 10-20% over
 * tenths of a second; with 0.1 s slices both sides see the same drift.
 */
static unsigned
bench_rounds(double secs)
{
	unsigned r = (unsigned)(secs / BENCH_SLICE + 0.5);

	return r < BENCH_MIN_ROUNDS ? BENCH_MIN_ROUNDS : r;
}

/* One table row; returns the ratio, or a negative value on error. */
static double
bench_cell(struct bench *b, enum bench_op op, unsigned nthr, double secs)
{
	unsigned rounds = bench_rounds(secs), k;
	double slice = secs / rounds, wl = 0, wr = 0, warm;
	unsigned long ol = 0, orw = 0, junk = 0;
	double lrate, rrate, junkw = 0;
	int rc = 0;

	/* Warm both paths (caches, the module's per-session state). */
	warm = slice;
	if (bench_slice(b, op, nthr, 0, warm, &junk, &junkw) != 0 ||
	    bench_slice(b, op, nthr, 1, warm, &junk, &junkw) != 0)
		return -1;
	/* Layer first in even rounds, raw first in odd ones, so a drift
	 * over the cell weighs on both sides alike. */
	for (k = 0; k < rounds && rc == 0; k++) {
		int first = k % 2;

		rc = bench_slice(b, op, nthr, first, slice, first ? &orw : &ol,
		    first ? &wr : &wl);
		if (rc == 0)
			rc = bench_slice(b, op, nthr, !first, slice,
			    first ? &ol : &orw, first ? &wl : &wr);
	}
	if (rc != 0)
		return -1;
	lrate = wl > 0 ? (double)ol / wl : 0;
	rrate = wr > 0 ? (double)orw / wr : 0;
	printf("%-13s %3u %14.0f %14.0f %8.2f\n", bench_op_name[op], nthr,
	    lrate, rrate, rrate > 0 ? lrate / rrate : 0.0);
	fflush(stdout);
	return rrate > 0 ? lrate / rrate : 0.0;
}

static int
bench_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "p11-bench: cannot remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

static void
bench_rmdir(const char *dir)
{
	if (dir[0] != '\0')
		nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static double
bench_seconds(void)
{
	const char *s = getenv("SR_BENCH_SECONDS");
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return BENCH_SECONDS;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0 || v > 3600) {
		fprintf(stderr,
		    "p11-bench: SR_BENCH_SECONDS='%s' is not a "
		    "number of seconds in (0, 3600]\n",
		    s);
		exit(1);
	}
	return v;
}

/* Make the keys, attach the anchor and prepare the inputs. */
static int
bench_setup(struct bench *b, const char *uri)
{
	const struct p11_raw_keys names = { "bench-kek", "bench-kdk",
		"bench-sign" };
	struct p11_options opts = { .sessions = 4 };
	char err[256];
	unsigned long rv;
	size_t n = 0;
	int rc;

	rc = p11_open(uri, &opts, &b->ctx, err);
	if (rc != 0) {
		fprintf(stderr, "p11-bench: p11_open: %s (%s)\n", err,
		    sr_strerror(rc));
		return -1;
	}
	rc = p11_key_generate(b->ctx, P11_KEY_AES, names.kek, NULL, 0, 32,
	    P11_KEY_TOKEN, &b->kek);
	if (rc == 0)
		rc = p11_key_generate(b->ctx, P11_KEY_HMAC, names.kdk, NULL, 0,
		    32, P11_KEY_TOKEN, &b->kdk);
	if (rc == 0)
		rc = p11_key_generate(b->ctx, P11_KEY_EC_P256, names.sign, NULL,
		    0, 0, P11_KEY_TOKEN, &b->sign);
	if (rc == 0)
		rc = p11_random(b->ctx, b->msg, sizeof(b->msg));
	if (rc == 0)
		rc = p11_random(b->ctx, b->plain, sizeof(b->plain));
	if (rc == 0)
		rc = p11_wrap(b->ctx, b->kek, b->plain, sizeof(b->plain),
		    b->blob, sizeof(b->blob), &n);
	if (rc == 0 && n != sizeof(b->blob))
		rc = P11_EGENERAL;
	if (rc != 0) {
		fprintf(stderr,
		    "p11-bench: setting up keys: %s (%s), "
		    "CK_RV %s\n",
		    sr_strerror(rc), sr_errname(rc),
		    bench_rv_text(p11_last_rv()));
		return -1;
	}
	rv = p11_raw_open(uri, BENCH_MAX_THREADS, &names, &b->raw, err);
	if (rv != 0) {
		fprintf(stderr, "p11-bench: raw anchor: %s\n", err);
		return -1;
	}
	return 0;
}

static void
bench_teardown(struct bench *b)
{
	/* The anchor first: it must not outlive the layer's module. */
	p11_raw_close(b->raw);
	p11_key_free(b->kek);
	p11_key_free(b->kdk);
	p11_key_free(b->sign);
	p11_close(b->ctx);
}

int
main(void)
{
	static const unsigned threads[] = { 1, 2 };
	struct p11_token_info ti;
	struct bench b;
	const char *base = getenv("SR_BENCH_TMP");
	char dir[512], uri[P11_URI_PATH_MAX + 512], err[256];
	double secs = bench_seconds(), ratio, min = -1;
	unsigned i, t;
	int status = 0;

	sr_log_init(SR_LOG_WARN, "p11-bench");
	memset(&b, 0, sizeof(b));
	snprintf(dir, sizeof(dir), "%s/p11-bench-XXXXXX",
	    base != NULL && *base != '\0' ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "p11-bench: mkdtemp %s: %s\n", dir,
		    strerror(errno));
		return 1;
	}
	if (p11_softhsm_setup(dir, NULL, "sr-bench", uri, err) != 0) {
		fprintf(stderr, "p11-bench: token set-up: %s\n", err);
		bench_rmdir(dir);
		return 1;
	}
	if (bench_setup(&b, uri) != 0) {
		bench_teardown(&b);
		bench_rmdir(dir);
		return 1;
	}
	if (p11_token_info(b.ctx, &ti) == 0)
		printf("module %s (%s), token '%s', slot %lu\n", ti.module_path,
		    ti.library_description, ti.token_label, ti.slot_id);
	printf("%u rounds of layer/raw alternation, %.2f s per side per "
	       "cell; ECDSA via %s\n\n",
	    bench_rounds(secs), secs,
	    p11_has_mech(b.ctx, P11_MECH_ECDSA_SHA256)
	        ? "CKM_ECDSA_SHA256"
	        : "SHA-256 in software + CKM_ECDSA");
	printf("op            thr   layer ops/s     raw ops/s   ratio\n");
	for (i = 0; i < OP_COUNT && status == 0; i++) {
		if (bench_crosscheck(&b, (enum bench_op)i) != 0) {
			status = 1;
			break;
		}
		for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
			ratio =
			    bench_cell(&b, (enum bench_op)i, threads[t], secs);
			if (ratio < 0) {
				status = 1;
				break;
			}
			if (min < 0 || ratio < min)
				min = ratio;
		}
	}
	bench_teardown(&b);
	bench_rmdir(dir);
	if (status != 0) {
		fprintf(stderr,
		    "p11-bench: an operation failed; the "
		    "measurement is void\n");
		return 1;
	}
	printf("p11 bench: min ratio %.2f (goal >= %.2f)\n", min, BENCH_GOAL);
	return 0;
}
