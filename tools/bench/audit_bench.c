/*
 * tools/bench/audit_bench.c: durable audit events per second for `make
 * bench`: many producer threads appending to the real audit log (async
 * with a bounded window, as the daemon's loops do, and blocking), with the
 * acknowledgement latency (p50/p99, from append to "on disk"), side by side
 * with the anchor: raw appends of lines of the same size, in batches of the
 * size the log's writer reached, each batch one write() and one
 * fdatasync(), on the same file system in the same run.
 *
 * It reports; it fails only when an append errs (the figure is then void).
 * It writes only under its own scratch folder and removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>

#include "appliance/audit.h"

#define BUCKET_US 10
#define BUCKETS 20000 /* 10 us buckets up to 200 ms; the last: beyond */
#define WINDOW 64     /* async events in flight per producer */
#define SLOTS WINDOW

struct producer {
	struct audit *a;
	pthread_t th;
	unsigned id;
	int async;
	sem_t room;
	int64_t start_ns[SLOTS];
	uint64_t done;
	atomic_int err;
	uint32_t hist[BUCKETS]; /* written by the ack's thread only */
};

static atomic_int stop;
static mbedtls_ecp_group grp;
static mbedtls_mpi priv;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
rng(void *arg, unsigned char *p, size_t n)
{
	(void)arg;
	return sr_os_random(p, n) == 0 ? 0 : -1;
}

/* The checkpoint signer: ES256 in software (the HSM's cost every 10 000
 * events is not what this measures). */
static int
sign(void *arg, const uint8_t digest[32], uint8_t sig[64])
{
	mbedtls_mpi r, s;
	uint8_t h[32];
	int rc;

	(void)arg;
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	rc = mbedtls_sha256(digest, 32, h, 0);
	if (rc == 0)
		rc = mbedtls_ecdsa_sign(&grp, &r, &s, &priv, h, 32, rng, NULL);
	if (rc == 0)
		rc = mbedtls_mpi_write_binary(&r, sig, 32);
	if (rc == 0)
		rc = mbedtls_mpi_write_binary(&s, sig + 32, 32);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return rc == 0 ? 0 : -EIO;
}

static void
record(struct producer *p, int64_t start)
{
	int64_t us = (now_ns() - start) / 1000;
	int64_t b = us / BUCKET_US;

	p->hist[b < BUCKETS ? b : BUCKETS - 1]++;
	p->done++;
}

/* The async completion: arg is the producer; slots complete in order. */
static void
acked_async(void *arg, int status, uint64_t seq)
{
	struct producer *p = arg;

	(void)seq;
	if (status != 0)
		atomic_store(&p->err, status);
	record(p, p->start_ns[p->done % SLOTS]);
	sem_post(&p->room);
}

static void *
producer_main(void *arg)
{
	struct producer *p = arg;
	struct audit_event ev;
	char actor[32];
	uint64_t i = 0;
	int64_t t;
	int rc;

	snprintf(actor, sizeof(actor), "app:BENCH%07u", p->id);
	memset(&ev, 0, sizeof(ev));
	ev.actor = actor;
	ev.action = "inference";
	ev.resource = "/v1/chat/completions";
	ev.key = "sr_AAAABBBBCCCC";
	ev.status = "200";
	ev.src = "198.51.100.23";
	ev.duration_ms = 41;
	ev.input_tokens = 312;
	ev.output_tokens = 128;
	while (!atomic_load(&stop)) {
		if (p->async) {
			while (sem_wait(&p->room) != 0)
				;
			p->start_ns[i % SLOTS] = now_ns();
			rc = audit_append_async(p->a, &ev, acked_async, p);
		} else {
			t = now_ns();
			rc = audit_append(p->a, &ev, NULL);
			record(p, t);
		}
		if (rc != 0) {
			atomic_store(&p->err, rc);
			break;
		}
		i++;
	}
	return NULL;
}

static double
pct(struct producer *ps, unsigned n, double q)
{
	uint64_t total = 0, want, acc = 0;
	unsigned i, b;

	for (i = 0; i < n; i++)
		total += ps[i].done;
	want = (uint64_t)(q * (double)total);
	for (b = 0; b < BUCKETS; b++) {
		for (i = 0; i < n; i++)
			acc += ps[i].hist[b];
		if (acc > want)
			return (b + 0.5) * BUCKET_US / 1000.0;
	}
	return BUCKETS * BUCKET_US / 1000.0;
}

/* One cell: @p n producers for @p secs. Prints and returns events/s;
 * *batch gets the average events per write. */
static double
cell(const char *dir, unsigned n, int async, double secs, double *batch)
{
	struct audit_options o;
	struct audit_stats s0, s1;
	struct producer *ps;
	struct audit *a;
	uint8_t pub[65] = { 0x04 };
	char err[256];
	double t0, t1, rate;
	unsigned i;
	int failed = 0;
	mbedtls_ecdsa_context k;
	size_t olen;

	mbedtls_ecdsa_init(&k);
	if (mbedtls_ecdsa_genkey(&k, MBEDTLS_ECP_DP_SECP256R1, rng, NULL) !=
	        0 ||
	    mbedtls_ecp_export(&k, &grp, &priv, NULL) != 0 ||
	    mbedtls_ecp_write_public_key(
	        &k, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub, 65) != 0) {
		fprintf(stderr, "audit-bench: key generation failed\n");
		exit(1);
	}
	mbedtls_ecdsa_free(&k);
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.appliance_id = "bench";
	o.sign = sign;
	o.sign_key_id = "bench-key";
	o.sign_pubkey = pub;
	if (audit_open(&o, &a, err) != 0) {
		fprintf(stderr, "audit-bench: %s\n", err);
		exit(1);
	}
	ps = calloc(n, sizeof(*ps));
	if (ps == NULL)
		exit(1);
	atomic_store(&stop, 0);
	audit_stats_get(a, &s0);
	t0 = (double)now_ns() / 1e9;
	for (i = 0; i < n; i++) {
		ps[i].a = a;
		ps[i].id = i;
		ps[i].async = async;
		sem_init(&ps[i].room, 0, WINDOW);
		pthread_create(&ps[i].th, NULL, producer_main, &ps[i]);
	}
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop, 1);
	for (i = 0; i < n; i++)
		pthread_join(ps[i].th, NULL);
	audit_checkpoint(a); /* every async event acknowledged */
	t1 = (double)now_ns() / 1e9;
	audit_stats_get(a, &s1);
	audit_close(a);
	for (i = 0; i < n; i++) {
		failed |= atomic_load(&ps[i].err) != 0;
		sem_destroy(&ps[i].room);
	}
	rate = (double)(s1.events - s0.events) / (t1 - t0);
	*batch = (double)(s1.events - s0.events) /
	    (double)(s1.batches - s0.batches ? s1.batches - s0.batches : 1);
	printf("  %-30s %9.0f events/s  p50 %6.2f ms  p99 %6.2f ms  "
	       "(%.0f per write)\n",
	    async ? "async, 16 x 64 in flight" : "blocking, 64 threads", rate,
	    pct(ps, n, 0.50), pct(ps, n, 0.99), *batch);
	free(ps);
	mbedtls_mpi_free(&priv);
	mbedtls_ecp_group_free(&grp);
	if (failed) {
		fprintf(stderr, "audit-bench: an append failed\n");
		exit(1);
	}
	return rate;
}

/* The anchor: lines of @p len bytes in batches of @p batch, each one
 * write() + one fdatasync(). */
static double
raw(const char *dir, size_t len, unsigned batch, double secs)
{
	char path[600], *buf;
	uint64_t lines = 0;
	double t0, t;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "%s/raw.jsonl", dir);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	buf = malloc(len * batch);
	if (fd < 0 || buf == NULL)
		exit(1);
	memset(buf, 'x', len * batch);
	for (i = 1; i <= batch; i++)
		buf[i * len - 1] = '\n';
	t0 = (double)now_ns() / 1e9;
	do {
		if (write(fd, buf, len * batch) != (ssize_t)(len * batch) ||
		    fdatasync(fd) != 0) {
			perror("audit-bench: raw");
			exit(1);
		}
		lines += batch;
		t = (double)now_ns() / 1e9;
	} while (t - t0 < secs);
	close(fd);
	free(buf);
	return (double)lines / (t - t0);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

int
main(void)
{
	const char *s = getenv("SR_BENCH_SECONDS"), *base = getenv("BUILD");
	char dir[512], name[600];
	double secs = s != NULL ? atof(s) : 1.2, batch, rate, anchor;
	size_t len = 0;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	unsigned b;
	int async;

	if (secs <= 0)
		secs = 1.2;
	sr_log_init(SR_LOG_WARN, "audit-bench");
	snprintf(dir, sizeof(dir), "%s/audit-bench-XXXXXX",
	    base != NULL ? base : "build");
	if (mkdtemp(dir) == NULL) {
		perror("audit-bench: mkdtemp");
		return 1;
	}
	for (async = 1; async >= 0; async--) {
		snprintf(name, sizeof(name), "%s/log%d", dir, async);
		rate = cell(name, async ? 16 : 64, async, secs, &batch);
		/* The size of a real line of this run, for the anchor. */
		snprintf(name, sizeof(name),
		    "cat %s/log%d/audit-*.jsonl | "
		    "sed -n 5p",
		    dir, async);
		f = popen(name, "r");
		if (f == NULL || getline(&line, &cap, f) <= 0)
			return 1;
		pclose(f);
		len = strlen(line);
		b = batch < 1 ? 1 : (unsigned)(batch + 0.5);
		anchor = raw(dir, len, b, secs);
		printf("  %-30s %9.0f lines/s  (%zu-byte lines, %u per "
		       "write+fdatasync)\n",
		    "anchor: raw appends", anchor, len, b);
		printf("  ratio audit/raw: %.2f\n", rate / anchor);
	}
	free(line);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
