/*
 * tests/integration/keystore/kstest.h: what the keystore's integration
 * tests share: one scratch SoftHSM2 token and PKCS#11 context per program,
 * keystores in scratch folders beside the token, request helpers, a log
 * sink that keeps every line, and a registry of every plaintext secret a
 * test saw, with the scan that proves none of them reached an LMDB file or
 * a log line.
 *
 * Header-only, included after cmocka.h. The kt_* request helpers never
 * assert, so worker threads may call them (each thread has its own request
 * and reply); kt_open, kt_stats and the scan assert and run on the test's
 * own thread only.
 */
#ifndef SR_TEST_KSTEST_H
#define SR_TEST_KSTEST_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>

#include "keystore/internal.h"
#include "tests/integration/pkcs11/fixture.h"

#define KT_ID (KS_ID_LEN + 1) /* an id with its NUL */
#define KT_MAX_KS 16          /* keystore folders per program */
#define KT_YEAR (365LL * 24 * 3600)

static struct p11_fixture kt_fx;
static struct p11_ctx *kt_hsm;
static char kt_paths[KT_MAX_KS][600];
static unsigned kt_npaths;

/* ------------------------------------------------------------------ */
/* Log capture                                                          */
/* ------------------------------------------------------------------ */

static pthread_mutex_t kt_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *kt_log;
static size_t kt_log_len, kt_log_cap;
static unsigned kt_log_lines;

static inline void
kt_log_sink(int level, const char *line, void *arg)
{
	size_t n = strlen(line);
	char *p;

	(void)arg;
	pthread_mutex_lock(&kt_log_lock);
	if (kt_log_len + n + 2 > kt_log_cap) {
		kt_log_cap = (kt_log_cap + n + 2) * 2;
		p = realloc(kt_log, kt_log_cap);
		if (p == NULL)
			abort();
		kt_log = p;
	}
	memcpy(kt_log + kt_log_len, line, n);
	kt_log_len += n;
	kt_log[kt_log_len++] = '\n';
	kt_log[kt_log_len] = '\0';
	kt_log_lines++;
	pthread_mutex_unlock(&kt_log_lock);
	if (level == SR_LOG_WARN || getenv("SR_TEST_VERBOSE") != NULL)
		fprintf(stderr, "%s\n", line);
}

/* ------------------------------------------------------------------ */
/* Secrets seen                                                         */
/* ------------------------------------------------------------------ */

/* A byte string that must appear nowhere; at least 8 bytes long. */
struct kt_needle {
	size_t len;
	const char *what;
	uint8_t b[KS_APIKEY_LEN];
};

static pthread_mutex_t kt_needle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kt_needle *kt_needles;
static size_t kt_nneedles, kt_needles_cap;

static inline void
kt_needle_add(const void *p, size_t len, const char *what)
{
	struct kt_needle *n;

	if (len < 8 || len > KS_APIKEY_LEN)
		abort();
	pthread_mutex_lock(&kt_needle_lock);
	if (kt_nneedles == kt_needles_cap) {
		kt_needles_cap = kt_needles_cap ? kt_needles_cap * 2 : 256;
		n = realloc(kt_needles, kt_needles_cap * sizeof(*n));
		if (n == NULL)
			abort();
		kt_needles = n;
	}
	n = &kt_needles[kt_nneedles++];
	n->len = len;
	n->what = what;
	memcpy(n->b, p, len);
	pthread_mutex_unlock(&kt_needle_lock);
}

/* Key material: the raw bytes and their lower-case hex. */
static inline void
kt_secret_bytes(const uint8_t *p, size_t len, const char *what)
{
	char hex[2 * 32 + 1];

	if (len > 32)
		abort();
	kt_needle_add(p, len, what);
	sr_hex_encode(hex, p, len);
	kt_needle_add(hex, 2 * len, what);
}

/* An API key: the whole text and its secret part alone. */
static inline void
kt_secret_apikey(const char *key)
{
	kt_needle_add(key, KS_APIKEY_LEN, "api key");
	kt_needle_add(key + KS_APIKEY_PREFIX_LEN + KS_ID_LEN,
	    KS_APIKEY_SECRET_LEN, "api key secret");
}

struct kt_prefix {
	uint64_t v;
	size_t i;
};

static inline int
kt_prefix_cmp(const void *a, const void *b)
{
	const struct kt_prefix *x = a, *y = b;

	return x->v < y->v ? -1 : x->v > y->v;
}

/*
 * Every offset of @p buf against every needle, through a sorted index of
 * their first 8 bytes. Prints where a needle was found (never the needle)
 * unless @p where is NULL. @return the number of hits.
 */
static inline size_t
kt_scan(const struct kt_prefix *ix, size_t nix, const uint8_t *buf, size_t len,
    const char *where)
{
	struct kt_prefix key, *hit;
	const struct kt_needle *n;
	size_t off, hits = 0;

	for (off = 0; off + 8 <= len; off++) {
		memcpy(&key.v, buf + off, 8);
		hit = bsearch(&key, ix, nix, sizeof(*ix), kt_prefix_cmp);
		if (hit == NULL)
			continue;
		/* Back to the first entry with this prefix, then all. */
		while (hit > ix && hit[-1].v == key.v)
			hit--;
		for (; hit < ix + nix && hit->v == key.v; hit++) {
			n = &kt_needles[hit->i];
			if (n->len <= len - off &&
			    memcmp(buf + off, n->b, n->len) == 0) {
				if (where != NULL)
					fprintf(stderr,
					    "secret (%s #%zu) in %s at %zu\n",
					    n->what, hit->i, where, off);
				hits++;
			}
		}
	}
	return hits;
}

static inline uint8_t *
kt_read_file(const char *path, size_t *len)
{
	uint8_t *buf = NULL;
	FILE *f = fopen(path, "rb");
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf != NULL)
			*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

/*
 * The scan itself: every file of every keystore folder this program used
 * (data.mdb and lock.mdb among them), and every log line. Asserts that it
 * read something, that it finds a planted needle (so a broken scan cannot
 * pass), and that nothing else was found.
 */
static inline void
kt_scan_all(size_t min_needles)
{
	struct kt_prefix *ix;
	struct dirent *de;
	uint8_t *buf, planted[100];
	char path[1024];
	size_t i, len, hits = 0, scanned = 0, nmdb = 0;
	DIR *dir;

	assert_true(kt_nneedles >= min_needles);
	ix = calloc(kt_nneedles, sizeof(*ix));
	assert_non_null(ix);
	for (i = 0; i < kt_nneedles; i++) {
		memcpy(&ix[i].v, kt_needles[i].b, 8);
		ix[i].i = i;
	}
	qsort(ix, kt_nneedles, sizeof(*ix), kt_prefix_cmp);

	/* The scan must see a needle that is there. */
	memset(planted, 0x5a, sizeof(planted));
	memcpy(planted + 17, kt_needles[kt_nneedles / 2].b,
	    kt_needles[kt_nneedles / 2].len);
	assert_true(
	    kt_scan(ix, kt_nneedles, planted, sizeof(planted), NULL) >= 1);

	for (i = 0; i < kt_npaths; i++) {
		dir = opendir(kt_paths[i]);
		assert_non_null(dir);
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", kt_paths[i],
			    de->d_name);
			buf = kt_read_file(path, &len);
			if (buf == NULL)
				continue;
			hits += kt_scan(ix, kt_nneedles, buf, len, path);
			scanned += len;
			nmdb += strcmp(de->d_name, "data.mdb") == 0 ||
			    strcmp(de->d_name, "lock.mdb") == 0;
			free(buf);
		}
		closedir(dir);
	}
	pthread_mutex_lock(&kt_log_lock);
	assert_true(kt_log_lines > 0);
	hits += kt_scan(
	    ix, kt_nneedles, (const uint8_t *)kt_log, kt_log_len, "the log");
	pthread_mutex_unlock(&kt_log_lock);
	free(ix);
	/* Every folder's data.mdb and lock.mdb were read. */
	assert_int_equal(nmdb, 2 * kt_npaths);
	assert_true(scanned > 0);
	assert_int_equal(hits, 0);
}

/* ------------------------------------------------------------------ */
/* Program set-up and keystores                                         */
/* ------------------------------------------------------------------ */

static inline int
kt_setup(const char *name)
{
	char err[256];

	sr_log_init(SR_LOG_DEBUG, "kstest");
	sr_log_set_sink(kt_log_sink, NULL);
	p11_fixture_setup(&kt_fx, name);
	if (p11_open(kt_fx.uri, NULL, &kt_hsm, err) != 0) {
		fprintf(stderr, "p11_open: %s\n", err);
		return -1;
	}
	return 0;
}

/* Open (creating) the keystore in folder @p name of the scratch folder. */
static inline struct ks *
kt_open(const char *name, const struct ks_options *base)
{
	struct ks_options o;
	struct ks *ks = NULL;
	char path[600], err[256];
	unsigned i;
	int rc;

	if (base != NULL)
		o = *base;
	else
		memset(&o, 0, sizeof(o));
	snprintf(path, sizeof(path), "%s/%s", kt_fx.dir, name);
	for (i = 0; i < kt_npaths && strcmp(kt_paths[i], path) != 0; i++)
		;
	if (i == kt_npaths) {
		assert_true(kt_npaths < KT_MAX_KS);
		memcpy(kt_paths[kt_npaths++], path, sizeof(path));
	}
	o.path = kt_paths[i];
	rc = ks_open(kt_hsm, &o, &ks, err);
	if (rc != 0)
		fprintf(
		    stderr, "ks_open %s: %s: %s\n", path, sr_errname(rc), err);
	assert_int_equal(rc, 0);
	assert_non_null(ks);
	return ks;
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */
/* ------------------------------------------------------------------ */

/* One request and its reply per thread, off the stack. */
struct kt_call {
	struct ks_request q;
	struct ks_reply r;
};

static _Thread_local struct kt_call *kt_tls;

static inline struct kt_call *
kt_c(void)
{
	if (kt_tls == NULL) {
		kt_tls = calloc(1, sizeof(*kt_tls));
		if (kt_tls == NULL)
			abort();
	}
	return kt_tls;
}

/* A thread frees its call buffer before it ends. */
static inline void
kt_c_free(void)
{
	if (kt_tls != NULL) {
		sr_wipe(kt_tls, sizeof(*kt_tls));
		free(kt_tls);
		kt_tls = NULL;
	}
}

/* This thread's request, reset for @p op, and its reply. */
#define KT_R (&kt_c()->r)

static inline struct ks_request *
kt_req(enum ks_op op)
{
	ks_request_init(&kt_c()->q, op);
	return &kt_c()->q;
}

/* Run this thread's request. */
static inline int
kt_run(struct ks *ks)
{
	struct kt_call *c = kt_c();

	ks_reply_init(&c->r);
	return ks_call(ks, &c->q, &c->r);
}

static inline void
kt_setid(char *dst, const char *id)
{
	snprintf(dst, KT_ID, "%s", id != NULL ? id : "");
}

static inline int
kt_create(struct ks *ks, unsigned kind, const char *name, const char *parent,
    int64_t not_before, int64_t expires_at, char id[KT_ID])
{
	struct ks_request *q = kt_req(KS_OP_CREATE);
	int rc;

	q->u.create.kind = (uint8_t)kind;
	if (name != NULL)
		snprintf(
		    q->u.create.name, sizeof(q->u.create.name), "%s", name);
	kt_setid(q->u.create.parent, parent);
	q->u.create.not_before = not_before;
	q->u.create.expires_at = expires_at;
	rc = kt_run(ks);
	if (id != NULL)
		kt_setid(id, rc == 0 ? KT_R->meta.id : "");
	return rc;
}

/* GET, ROTATE, SUSPEND, RESUME, DESTROY: the reply's meta is the result. */
static inline int
kt_key(struct ks *ks, enum ks_op op, const char *id, uint32_t version)
{
	struct ks_request *q = kt_req(op);

	kt_setid(q->u.key.id, id);
	q->u.key.version = version;
	return kt_run(ks);
}

/* MATERIAL: 32 bytes into @p out (registered as a secret). */
static inline int
kt_material(struct ks *ks, const char *id, uint32_t version, uint8_t out[32])
{
	int rc = kt_key(ks, KS_OP_MATERIAL, id, version);

	if (rc == 0 && KT_R->material_len != 32)
		rc = -EPROTO;
	if (rc == 0) {
		memcpy(out, KT_R->material, 32);
		kt_secret_bytes(out, 32, "material");
	}
	ks_reply_wipe(KT_R);
	return rc;
}

static inline int
kt_revoke(struct ks *ks, const char *id, const char *reason, int compromised)
{
	struct ks_request *q = kt_req(KS_OP_REVOKE);

	kt_setid(q->u.revoke.id, id);
	snprintf(q->u.revoke.reason, sizeof(q->u.revoke.reason), "%s", reason);
	q->u.revoke.compromised = (uint8_t)compromised;
	return kt_run(ks);
}

/* DEVICE_KEY: the key into @p out (registered), created into @p created. */
static inline int
kt_device(struct ks *ks, const char *app, const char *serial, uint8_t out[32],
    int *created)
{
	struct ks_request *q = kt_req(KS_OP_DEVICE_KEY);
	int rc;

	kt_setid(q->u.device.app, app);
	snprintf(q->u.device.serial, sizeof(q->u.device.serial), "%s", serial);
	rc = kt_run(ks);
	if (rc == 0 && KT_R->material_len != 32)
		rc = -EPROTO;
	if (rc == 0) {
		memcpy(out, KT_R->material, 32);
		kt_secret_bytes(out, 32, "device key");
		if (created != NULL)
			*created = KT_R->created;
	}
	ks_reply_wipe(KT_R);
	return rc;
}

/* APIKEY_CREATE: the key text into @p key (registered). */
static inline int
kt_apikey(struct ks *ks, const char *owner, int64_t expires_at,
    char key[KS_APIKEY_LEN + 1])
{
	struct ks_request *q = kt_req(KS_OP_APIKEY_CREATE);
	int rc;

	kt_setid(q->u.apikey_create.owner, owner);
	q->u.apikey_create.expires_at = expires_at;
	rc = kt_run(ks);
	if (rc == 0 && strlen(KT_R->apikey) != KS_APIKEY_LEN)
		rc = -EPROTO;
	if (rc == 0) {
		memcpy(key, KT_R->apikey, KS_APIKEY_LEN + 1);
		kt_secret_apikey(key);
	}
	sr_wipe(KT_R->apikey, sizeof(KT_R->apikey));
	return rc;
}

static inline int
kt_verify(struct ks *ks, const char *key)
{
	struct ks_request *q = kt_req(KS_OP_APIKEY_VERIFY);

	snprintf(
	    q->u.apikey_verify.key, sizeof(q->u.apikey_verify.key), "%s", key);
	return kt_run(ks);
}

static inline struct ks_stats
kt_stats(struct ks *ks)
{
	kt_req(KS_OP_STATS);
	assert_int_equal(kt_run(ks), 0);
	return KT_R->stats;
}

static inline int
kt_check(struct ks *ks, uint64_t *checked)
{
	int rc;

	kt_req(KS_OP_CHECK);
	rc = kt_run(ks);
	if (checked != NULL)
		*checked = KT_R->stats.checked;
	return rc;
}

static inline int64_t
kt_now(void)
{
	return (int64_t)time(NULL);
}

static inline double
kt_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep until the wall clock reaches @p t (Unix seconds). */
static inline void
kt_wait_until(int64_t t)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	while (kt_now() < t)
		nanosleep(&ts, NULL);
}

static inline void
kt_teardown(void)
{
	kt_c_free();
	p11_close(kt_hsm);
	p11_fixture_teardown(&kt_fx);
	sr_log_set_sink(NULL, NULL);
	free(kt_needles);
	free(kt_log);
}

/* Signing helpers shared by the signing and the rotation-race tests. */
static inline int
kt_ecdsa_verify(
    const uint8_t point[65], const void *msg, size_t len, const uint8_t sig[64])
{
	mbedtls_ecp_group grp;
	mbedtls_ecp_point pub;
	mbedtls_mpi r, s;
	uint8_t hash[32];
	int rc;

	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&pub);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
	if (rc == 0)
		rc = mbedtls_ecp_point_read_binary(&grp, &pub, point, 65);
	if (rc == 0)
		rc = mbedtls_mpi_read_binary(&r, sig, 32);
	if (rc == 0)
		rc = mbedtls_mpi_read_binary(&s, sig + 32, 32);
	if (rc == 0)
		rc = mbedtls_sha256(msg, len, hash, 0);
	if (rc == 0)
		rc = mbedtls_ecdsa_verify(&grp, hash, 32, &pub, &r, &s);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_ecp_point_free(&pub);
	mbedtls_ecp_group_free(&grp);
	return rc;
}

static inline void
kt_public_of(const char *id, unsigned version, uint8_t point[65])
{
	struct p11_key *k = NULL;
	char label[48];

	snprintf(label, sizeof(label), "sr-sign-%s-v%u", id, version);
	assert_int_equal(
	    p11_key_find(kt_hsm, P11_KEY_EC_P256, label, NULL, 0, &k), 0);
	assert_int_equal(p11_ec_public_get(kt_hsm, k, point), 0);
	assert_int_equal(point[0], 0x04);
	p11_key_free(k);
}

static inline int
kt_sign(struct ks *ks, const char *id, const char *msg, uint8_t sig[64])
{
	struct ks_request *q = kt_req(KS_OP_SIGN);
	int rc;

	kt_setid(q->u.sign.id, id);
	q->u.sign.len = (uint32_t)strlen(msg);
	memcpy(q->u.sign.msg, msg, q->u.sign.len);
	rc = kt_run(ks);
	if (rc == 0 && KT_R->material_len != 64)
		rc = -EPROTO;
	if (rc == 0)
		memcpy(sig, KT_R->material, 64);
	return rc;
}

/* Whether the HSM holds a key of @p kind labelled @p label (want: 0 or
 * P11_ENOTFOUND). */
static inline void
kt_hsm_has(enum p11_key_kind kind, const char *label, int want)
{
	struct p11_key *k = NULL;
	int rc = p11_key_find(kt_hsm, kind, label, NULL, 0, &k);

	if (rc != want)
		fail_msg(
		    "%s: %s, want %s", label, sr_errname(rc), sr_errname(want));
	p11_key_free(k);
}

/* The keystore most tests of a program share, opened on first use, and
 * the cmocka group set-up and tear-down around it. */
static struct ks *kt_main_;

static inline struct ks *
kt_main_ks(void)
{
	if (kt_main_ == NULL)
		kt_main_ = kt_open("main", NULL);
	return kt_main_;
}

static inline int
kt_group_setup(void **state)
{
	(void)state;
	return kt_setup("keystore");
}

static inline int
kt_group_teardown(void **state)
{
	(void)state;
	ks_close(kt_main_);
	kt_teardown();
	return 0;
}

/* GET into @p m; asserts success. */
static inline void
kt_get_meta(struct ks *ks, const char *id, uint32_t version, struct ks_meta *m)
{
	assert_int_equal(kt_key(ks, KS_OP_GET, id, version), 0);
	assert_int_equal(KT_R->material_len, 0);
	*m = KT_R->meta;
}

#endif /* SR_TEST_KSTEST_H */
