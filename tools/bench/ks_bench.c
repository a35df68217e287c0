/*
 * tools/bench/ks_bench.c: keystore figures for `make bench`: durable key
 * creations per second under concurrency (group commit), API-key
 * verifications per second on a cache hit and on a cache miss, and
 * device-key derivations per second, the last two side by side with the
 * raw PKCS#11 call they rest on (tools/bench/p11_raw.c) in the same run.
 *
 * It reports; it never fails on a slow figure, only when an operation
 * errs (the measurement is then void). It must never print key material.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore/keystore.h"
#include "pkcs11/p11.h"
#include "tools/bench/p11_raw.h"

enum cell { CELL_CREATE, CELL_HIT, CELL_MISS, CELL_DEVICE, CELL_RAW_HMAC };

struct bench {
	struct ks *a, *b; /* b has a one-entry cache: every verify misses */
	struct p11_raw *raw;
	char app[KS_ID_LEN + 1];
	char key_hit[KS_APIKEY_LEN + 1];
	char key_miss[2][KS_APIKEY_LEN + 1];
	atomic_int stop;
	atomic_ullong ops;
	atomic_int failed;
	enum cell cell;
};

struct worker {
	struct bench *b;
	unsigned id;
	pthread_t th;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
one_op(struct bench *b, unsigned tid, unsigned long i, struct ks_request *q,
    struct ks_reply *r)
{
	uint8_t mac[32];
	unsigned long rv;
	int rc;

	ks_reply_init(r);
	switch (b->cell) {
	case CELL_CREATE:
		ks_request_init(q, KS_OP_CREATE);
		q->u.create.kind = KS_KIND_DATA;
		return ks_call(b->a, q, r);
	case CELL_HIT:
		ks_request_init(q, KS_OP_APIKEY_VERIFY);
		memcpy(q->u.apikey_verify.key, b->key_hit, KS_APIKEY_LEN + 1);
		return ks_call(b->a, q, r);
	case CELL_MISS:
		ks_request_init(q, KS_OP_APIKEY_VERIFY);
		memcpy(q->u.apikey_verify.key, b->key_miss[i & 1],
		    KS_APIKEY_LEN + 1);
		return ks_call(b->b, q, r);
	case CELL_DEVICE:
		ks_request_init(q, KS_OP_DEVICE_KEY);
		memcpy(q->u.device.app, b->app, KS_ID_LEN + 1);
		strcpy(q->u.device.serial, "sn-007-888-abc");
		rc = ks_call(b->a, q, r);
		ks_reply_wipe(r);
		return rc;
	default:
		rv = p11_raw_hmac(
		    b->raw, tid, b->key_miss[i & 1], KS_APIKEY_LEN, mac);
		return rv == 0 ? 0 : P11_EGENERAL;
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	struct ks_request *q = malloc(sizeof(*q));
	struct ks_reply *r = malloc(sizeof(*r));
	unsigned long i, n = 0;
	int rc;

	if (q == NULL || r == NULL) {
		atomic_store(&b->failed, -ENOMEM);
		goto out;
	}
	for (i = w->id; !atomic_load_explicit(&b->stop, memory_order_relaxed);
	     i++) {
		rc = one_op(b, w->id, i, q, r);
		if (rc != 0) {
			atomic_store(&b->failed, rc);
			break;
		}
		n++;
	}
	atomic_fetch_add(&b->ops, n);
out:
	free(q);
	free(r);
	return NULL;
}

/* Run @p cell on @p threads threads for @p secs; ops per second. */
static double
run(struct bench *b, enum cell cell, unsigned threads, double secs)
{
	struct worker w[32];
	double t0, t1;
	unsigned i;

	b->cell = cell;
	atomic_store(&b->stop, 0);
	atomic_store(&b->ops, 0);
	t0 = now_s();
	for (i = 0; i < threads; i++) {
		w[i] = (struct worker){ b, i, 0 };
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&b->stop, 1);
	for (i = 0; i < threads; i++)
		pthread_join(w[i].th, NULL);
	t1 = now_s();
	if (atomic_load(&b->failed) != 0) {
		fprintf(stderr, "ks-bench: operation failed: %s (%s)\n",
		    sr_strerror(atomic_load(&b->failed)),
		    p11_rv_name(p11_last_rv()));
		exit(1);
	}
	return (double)atomic_load(&b->ops) / (t1 - t0);
}

/* Alternate the keystore cell and its raw anchor in short slices. */
static void
compare(struct bench *b, const char *name, enum cell cell, unsigned threads,
    double secs, double *worst)
{
	double ks = 0, raw = 0, ratio;
	int round, rounds = 8;

	for (round = 0; round < rounds; round++) {
		if (round % 2 == 0) {
			ks += run(b, cell, threads, secs / rounds);
			raw += run(b, CELL_RAW_HMAC, threads, secs / rounds);
		} else {
			raw += run(b, CELL_RAW_HMAC, threads, secs / rounds);
			ks += run(b, cell, threads, secs / rounds);
		}
	}
	ratio = ks / raw;
	if (ratio < *worst)
		*worst = ratio;
	printf("%-26s %3u %12.0f %12.0f %7.2f\n", name, threads, ks / rounds,
	    raw / rounds, ratio);
}

static int
call(struct ks *ks, struct ks_request *q, struct ks_reply *r)
{
	ks_reply_init(r);
	if (ks_call(ks, q, r) != 0) {
		fprintf(
		    stderr, "ks-bench: set-up: %s\n", sr_strerror(r->status));
		exit(1);
	}
	return 0;
}

static void
make_apikey(struct ks *ks, char out[KS_APIKEY_LEN + 1], struct ks_request *q,
    struct ks_reply *r)
{
	char app[KS_ID_LEN + 1];

	ks_request_init(q, KS_OP_CREATE);
	q->u.create.kind = KS_KIND_APP;
	snprintf(q->u.create.name, sizeof(q->u.create.name), "bench-%p",
	    (void *)out);
	call(ks, q, r);
	memcpy(app, r->meta.id, sizeof(app));
	ks_request_init(q, KS_OP_APIKEY_CREATE);
	memcpy(q->u.apikey_create.owner, app, sizeof(app));
	call(ks, q, r);
	memcpy(out, r->apikey, KS_APIKEY_LEN + 1);
	ks_reply_wipe(r);
}

int
main(void)
{
	const char *base = getenv("SR_BENCH_TMP"),
	           *s = getenv("SR_BENCH_SECONDS");
	double secs = s != NULL ? atof(s) : 1.2, worst = 10, rate;
	struct p11_options po = { .sessions = 4 };
	struct p11_raw_keys rk = { "sr-root-kek-v1", "sr-apikey-pepper-v1",
		"bench-sign" };
	struct ks_options oa = { 0 }, ob = { .cache_entries = 1 };
	char dir[512], pa[600], pb[600], uri[P11_URI_PATH_MAX + 512], err[256];
	struct bench b;
	struct ks_request *q = malloc(sizeof(*q));
	struct ks_reply *r = malloc(sizeof(*r));
	struct p11_ctx *hsm;
	struct p11_key *sk;
	unsigned t;

	memset(&b, 0, sizeof(b));
	snprintf(dir, sizeof(dir), "%s/sr-ks-bench-XXXXXX",
	    base != NULL ? base : "/tmp");
	if (q == NULL || r == NULL || secs <= 0 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "ks-bench: set-up failed\n");
		return 1;
	}
	snprintf(pa, sizeof(pa), "%s/ks-a", dir);
	snprintf(pb, sizeof(pb), "%s/ks-b", dir);
	oa.path = pa;
	ob.path = pb;
	if (p11_softhsm_setup(dir, NULL, "sr-ks-bench", uri, err) != 0 ||
	    p11_open(uri, &po, &hsm, err) != 0 ||
	    ks_open(hsm, &oa, &b.a, err) != 0 ||
	    ks_open(hsm, &ob, &b.b, err) != 0 ||
	    p11_key_generate(hsm, P11_KEY_EC_P256, "bench-sign", NULL, 0, 0,
	        P11_KEY_TOKEN, &sk) != 0) {
		fprintf(stderr, "ks-bench: %s\n", err);
		return 1;
	}
	p11_key_free(sk);
	if (p11_raw_open(uri, 2, &rk, &b.raw, err) != 0) {
		fprintf(stderr, "ks-bench: raw anchor: %s\n", err);
		return 1;
	}
	make_apikey(b.a, b.key_hit, q, r);
	make_apikey(b.b, b.key_miss[0], q, r);
	make_apikey(b.b, b.key_miss[1], q, r);
	ks_request_init(q, KS_OP_CREATE);
	q->u.create.kind = KS_KIND_APP;
	strcpy(q->u.create.name, "bench-devices");
	call(b.a, q, r);
	memcpy(b.app, r->meta.id, sizeof(b.app));

	printf("keystore: durable creations, group commit (fsync per batch)\n");
	for (t = 1; t <= 16; t *= 4) {
		rate = run(&b, CELL_CREATE, t, secs * 2);
		printf("  %2u threads: %8.0f key creations/s%s\n", t, rate,
		    t == 16 ? "  (goal >= 10000; Cosmian KMS: 3500)" : "");
	}
	ks_request_init(q, KS_OP_STATS);
	call(b.a, q, r);
	printf("  %llu writes in %llu commits (%.1f per commit)\n",
	    (unsigned long long)r->stats.committed_writes,
	    (unsigned long long)r->stats.commits,
	    (double)r->stats.committed_writes /
	        (double)(r->stats.commits ? r->stats.commits : 1));
	printf("\n%-26s %3s %12s %12s %7s\n", "op", "thr", "keystore/s",
	    "raw HMAC/s", "ratio");
	for (t = 1; t <= 2; t++) {
		rate = run(&b, CELL_HIT, t, secs);
		printf("%-26s %3u %12.0f %12s %7s\n", "apikey verify (hit)", t,
		    rate, "-", "-");
	}
	for (t = 1; t <= 2; t++)
		compare(&b, "apikey verify (miss)", CELL_MISS, t, secs, &worst);
	for (t = 1; t <= 2; t++)
		compare(
		    &b, "device key derivation", CELL_DEVICE, t, secs, &worst);
	printf("ks bench: min ratio %.2f (goal >= 0.90)\n", worst);

	p11_raw_close(b.raw);
	ks_close(b.a);
	ks_close(b.b);
	p11_close(hsm);
	free(q);
	free(r);
	snprintf(pa, sizeof(pa), "rm -rf '%s'", dir);
	return system(pa) == 0 ? 0 : 1;
}
