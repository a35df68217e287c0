/*
 * keystore/internal.h: declarations shared by the files of the keystore
 * module and by its own tests, nothing else. Other modules include
 * keystore/keystore.h only.
 */
#ifndef SR_KEYSTORE_INTERNAL_H
#define SR_KEYSTORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/keystore.h"
#include "pkcs11/p11.h"

/* ------------------------------------------------------------------ */
/* Identifiers and API keys (apikey.c)                                   */
/* ------------------------------------------------------------------ */

/*
 * An API key is 64 characters:
 *   "srk_"          4  fixed prefix, so secret scanners can find leaks
 *   key id         12  base62, the API-key record's id (one lookup)
 *   secret         42  base62, uniform, 42 * log2(62) = 250 bits
 *   checksum        6  base62 of CRC-32 over the first 58 characters
 */
#define KS_APIKEY_PREFIX "srk_"
#define KS_APIKEY_PREFIX_LEN 4
#define KS_APIKEY_SECRET_LEN 42
#define KS_APIKEY_CHECK_LEN 6
/* Random bytes a caller hands in: enough for rejection sampling with
 * overwhelming probability (each byte is kept with probability 248/256). */
#define KS_RANDOM_FOR_ID 32
#define KS_RANDOM_FOR_APIKEY 96

/**
 * Make a 12-character base62 id from @p random (KS_RANDOM_FOR_ID bytes)
 * by rejection sampling (bytes >= 248 are skipped; byte % 62 otherwise).
 * @return 0, or -EAGAIN if the bytes ran out (the caller draws more).
 */
int ks__id_make(const uint8_t *random, size_t n, char id[KS_ID_LEN + 1]);

/** Whether @p id is exactly KS_ID_LEN base62 characters and a NUL. */
int ks__id_valid(const char *id);

/** FNV-1a of @p id's first KS_ID_LEN characters (fewer at a NUL), for the
 * in-memory tables' slots; ids are random already, so no keyed hash. */
uint32_t ks__id_hash(const char *id);

/**
 * Build an API key for record @p id from @p random (KS_RANDOM_FOR_APIKEY
 * bytes, from the HSM): prefix, id, 42 secret characters, checksum.
 * @return 0 or -EAGAIN (draw more random bytes).
 * @note @p out is a secret; the caller wipes it.
 */
int ks__apikey_make(const char id[KS_ID_LEN + 1], const uint8_t *random,
    size_t n, char out[KS_APIKEY_LEN + 1]);

/**
 * Check format and checksum (no lookup) and copy the embedded id.
 * @return 0 or KS_EAPIKEY. Runs in time independent of the secret part's
 *         content (the checksum compare is constant-time).
 */
int ks__apikey_parse(const char *key, size_t len, char id[KS_ID_LEN + 1]);

/**
 * Check the format only (length, prefix, alphabet; not the checksum) and
 * copy the embedded id: for a lookup whose match proves the whole key (the
 * verification cache holds keyed digests of keys that passed
 * ks__apikey_parse). @return 0 or KS_EAPIKEY.
 */
int ks__apikey_id(const char *key, size_t len, char id[KS_ID_LEN + 1]);

/* ------------------------------------------------------------------ */
/* Sealing and the DEK cache (seal.c)                                   */
/* ------------------------------------------------------------------ */

#define KS_DEK_LEN 32
#define KS_NONCE_LEN 12
#define KS_TAG_LEN 16
/* A sealed blob: nonce || ciphertext || tag. */
#define KS_SEALED_MAX (KS_NONCE_LEN + KS_MATERIAL_MAX + KS_TAG_LEN)

/* Additional data that binds a ciphertext to its record. */
struct ks__aad {
	uint8_t bytes[4 + 1 + KS_ID_LEN + 4 + 4];
	size_t len;
};

/** "SRK1" || kind || id || be32(version) || be32(dek_version). */
void ks__aad_make(struct ks__aad *aad, unsigned kind, const char *id,
    uint32_t version, uint32_t dek_version);

/**
 * AES-256-GCM seal of @p len bytes (0..KS_MATERIAL_MAX) under @p dek with a
 * random 96-bit nonce; @p out gets nonce || ct || tag (len + 28 bytes).
 * @return 0, -EINVAL, or -EIO (the cipher failed).
 */
int ks__seal(const uint8_t dek[KS_DEK_LEN], const struct ks__aad *aad,
    const uint8_t *plain, size_t len, uint8_t *out, size_t *out_len);

/**
 * Open a sealed blob. @return 0, or KS_EINTEGRITY when the tag, the AAD or
 * the key does not match (nothing is written to @p plain then), -EINVAL.
 */
int ks__open(const uint8_t dek[KS_DEK_LEN], const struct ks__aad *aad,
    const uint8_t *in, size_t in_len, uint8_t *plain, size_t *plain_len);

/*
 * A bounded cache of unwrapped DEKs by version, least recently used out
 * first; what it evicts or drops is wiped. Thread-safe.
 */
struct ks__dek_cache;

int ks__dek_cache_new(unsigned capacity, struct ks__dek_cache **out);
void ks__dek_cache_free(struct ks__dek_cache *c); /* wipes everything */
/** Copy the DEK of @p version into @p dek. @return 1 found, 0 not. */
int ks__dek_cache_get(
    struct ks__dek_cache *c, uint32_t version, uint8_t dek[KS_DEK_LEN]);
void ks__dek_cache_put(
    struct ks__dek_cache *c, uint32_t version, const uint8_t dek[KS_DEK_LEN]);
void ks__dek_cache_drop(struct ks__dek_cache *c, uint32_t version);
unsigned ks__dek_cache_count(struct ks__dek_cache *c);

/* ------------------------------------------------------------------ */
/* Records and storage (record.c, store.c)                              */
/* ------------------------------------------------------------------ */

#include <lmdb.h>
#include <mbedtls/aes.h>

#define KS_MAC_LEN 16
#define KS_ROOT_MAX 64   /* root versions a keystore can hold */
#define KS__SIGN_KEYS 32 /* signing-key versions whose HSM refs are kept */

/* One stored key version: its metadata and its material field. */
struct ks__rec {
	struct ks_meta m;
	char serial[KS_SERIAL_MAX]; /* devices */
	uint32_t mac_version;       /* root KDK version of the record MAC */
	uint32_t sealed_len;
	/* DATA, USER, APP: nonce||ct||tag under DEK m.dek_version.
	 * SIGNING: the public point (not secret). APIKEY: the keyed hash.
	 * DEVICE: empty (derived on demand). Destroyed: empty. */
	uint8_t sealed[KS_SEALED_MAX];
};

/* Databases of the environment. */
enum ks__db {
	KS_DB_APP = KS_KIND_APP,
	KS_DB_USER = KS_KIND_USER,
	KS_DB_DEVICE = KS_KIND_DEVICE,
	KS_DB_SIGNING = KS_KIND_SIGNING,
	KS_DB_DATA = KS_KIND_DATA,
	KS_DB_APIKEY = KS_KIND_APIKEY,
	KS_DB_DEKS = KS_KIND_COUNT, /* be32(version) -> wrapped DEK */
	KS_DB_META,                 /* name -> value */
	KS_DB_NAMES,                /* kind || name -> id (unique names) */
	KS_DB_SERIALS,              /* app id || serial -> device id */
	KS_DB_CREDS,                /* user id -> console credentials */
	KS_DB_COUNT
};

struct ks__dek {
	uint32_t version;
	uint32_t root_version; /* root KEK version that wraps it */
	int64_t created_at;
	uint64_t uses; /* encryptions, persisted per commit */
	uint32_t mac_version;
	uint32_t wrapped_len;
	uint8_t wrapped[KS_DEK_LEN + 8];
};

/* A write job for the single writer: fn runs inside a nested transaction
 * of the batch; a non-zero return aborts only its own changes. */
typedef int ks__write_fn(struct ks *ks, MDB_txn *txn, void *arg);

struct ks__job {
	ks__write_fn *fn;
	void *arg;
	int rc;
	int done;
	struct ks__job *next;
};

/* AES-256-CMAC (RFC 4493 / SP 800-38B) with a precomputed schedule. */
struct ks__mac {
	mbedtls_aes_context aes;
	uint8_t k1[16], k2[16];
};
int ks__mac_setup(struct ks__mac *m, const uint8_t key[32]);
void ks__mac_clear(struct ks__mac *m);
void ks__cmac(
    const struct ks__mac *m, const uint8_t *msg, size_t len, uint8_t out[16]);

/* usage.c: API keys' last use (see there). touch and merge from any
 * thread, the loops included (memory only); flush on a worker or at close
 * (a write transaction). */
struct ks__usage;
int ks__usage_new(struct ks__usage **out);
void ks__usage_free(struct ks__usage *u);
void ks__usage_touch(struct ks *ks, const char *id, int64_t now);
void ks__usage_merge(struct ks *ks, struct ks_meta *m);
int ks__usage_flush(struct ks *ks);

/* use.c: the signing-key references (struct ks's sign_keys), at close. */
void ks__sign_keys_free(struct ks *ks);

/* keystore.c: 1 while this thread serves a KS_REQ_NO_WAIT request. */
extern _Thread_local int ks__no_wait;

struct ks {
	struct p11_ctx *hsm;
	struct ks_options opt;
	MDB_env *env;
	MDB_dbi dbi[KS_DB_COUNT];
	char appliance_id[KS_APPLIANCE_ID_LEN + 1];

	/* Root keys in the HSM, by version (index 0 unused). */
	pthread_mutex_t root_lock;
	uint32_t kek_version, kdk_version;
	struct p11_key *kek[KS_ROOT_MAX];
	struct p11_key *kdk[KS_ROOT_MAX];
	struct p11_key *pepper;
	/* Record MAC state per root KDK version, in locked memory; a
	 * version's roots and MAC are usable once root_ready[v] is set. */
	struct sr_secret mac_mem[KS_ROOT_MAX];
	atomic_int root_ready[KS_ROOT_MAX];

	/* The current DEK. dek_lock serialises rotation (held across the
	 * commit of a new DEK); dek_data_lock guards reads and writes of
	 * `dek` and is never held while waiting for the writer. */
	pthread_mutex_t dek_lock, dek_data_lock;
	struct ks__dek dek;
	atomic_ullong dek_uses;
	struct ks__dek_cache *dek_cache;

	/* The writer. */
	pthread_t writer;
	pthread_mutex_t wlock;
	pthread_cond_t wcond, wdone;
	struct ks__job *queue, **queue_tail;
	int stopping, writer_started;
	atomic_ullong commits, committed;

	/* Background re-wrap after a root rotation. */
	pthread_t rewrap;
	int rewrap_started;

	struct ks__vcache *vcache;
	struct ks__usage *usage; /* usage.c: API keys' last use, unwritten */
	struct ks__mac vc_mac;   /* keys the verification cache's digests */
	int lock_fd;             /* flock: one process owns the keystore */

	/* Read transactions kept reset between uses: renewing one costs no
	 * reader-table lock, unlike beginning one (MDB_NOTLS). */
	pthread_mutex_t rpool_lock;
	MDB_txn *rpool[64];
	unsigned nrpool;

	/* use.c: HSM references of signing-key versions by label, only
	 * added until ks_close (a label names one version), so a reference
	 * handed out stays valid: finding an object in SoftHSM2 reads its
	 * token folder and costs more than the signature itself. */
	pthread_mutex_t sign_lock;
	struct {
		char label[48];
		struct p11_key *key;
	} sign_keys[KS__SIGN_KEYS];
	unsigned nsign_keys;
};

/* record.c */
int ks__rec_encode(struct ks *ks, unsigned db, const MDB_val *key,
    const struct ks__rec *r, uint8_t *buf, size_t cap, size_t *len);
int ks__rec_decode(struct ks *ks, unsigned db, const MDB_val *key,
    const MDB_val *val, struct ks__rec *r);
int ks__dek_encode(struct ks *ks, const struct ks__dek *d, uint8_t *buf,
    size_t cap, size_t *len);
int ks__dek_decode(
    struct ks *ks, const MDB_val *key, const MDB_val *val, struct ks__dek *d);
int ks__mac_ctx(struct ks *ks, uint32_t version, const struct ks__mac **m);
void ks__reckey(uint8_t out[KS_ID_LEN + 4], const char *id, uint32_t version);

/* store.c */
int ks__mdb_error(int rc);
int ks__store_open(struct ks *ks, char *err, size_t errlen);
void ks__store_close(struct ks *ks);
int ks__write(struct ks *ks, ks__write_fn *fn, void *arg);
int ks__rd_begin(struct ks *ks, MDB_txn **txn);
void ks__rd_end(struct ks *ks, MDB_txn *txn);
int ks__put_rec(
    struct ks *ks, MDB_txn *txn, const struct ks__rec *r, unsigned flags);
int ks__get_rec(struct ks *ks, MDB_txn *txn, unsigned db, const char *id,
    uint32_t version, struct ks__rec *r);
int ks__find_kind(struct ks *ks, MDB_txn *txn, const char *id, unsigned *kind);
/* Every stored version 1..@p last of @p id (kind @p kind) read into
 * @p scratch, changed by @p change, re-MACed under the current KDK and
 * written back in @p txn; a missing version is skipped. Version @p last
 * as written is copied into @p newest. 0 or the first error. */
typedef void ks__rec_change(struct ks__rec *r, void *arg);
int ks__rewrite_versions(struct ks *ks, MDB_txn *txn, unsigned kind,
    const char *id, uint32_t last, ks__rec_change *change, void *arg,
    struct ks__rec *scratch, struct ks__rec *newest);

/* keystore.c */
int64_t ks__now(void);
int ks__random(struct ks *ks, void *buf, size_t len);
int ks__new_id(struct ks *ks, char id[KS_ID_LEN + 1]);
/* Seal material for record @p r (sets dek_version, sealed, sealed_len). */
int ks__seal_rec(
    struct ks *ks, struct ks__rec *r, const uint8_t *plain, size_t len);
/* Open @p r's material into @p plain (KS_MATERIAL_MAX bytes). */
int ks__open_rec(
    struct ks *ks, const struct ks__rec *r, uint8_t *plain, size_t *len);
/* Store the current DEK's use count (inside a write job). */
int ks__dek_persist(struct ks *ks, MDB_txn *txn);
int ks__root_kdk(struct ks *ks, uint32_t version, struct p11_key **out);
int ks__root_rotate(struct ks *ks);

/* check.c */
int ks__check(struct ks *ks, struct ks_stats *st);
int ks__op_stats(struct ks *ks, struct ks_reply *rep);

/* ops.c: dispatch, and helpers the operations share */
#define KS_YEAR (365LL * 24 * 3600) /* an app's longest validity */
int ks__op(struct ks *ks, const struct ks_request *req, struct ks_reply *rep);
struct ks__two_recs {
	struct ks__rec r, newest;
};
int ks__str_ok(const char *s, size_t cap);
int ks__opt_id_ok(const char *id);
unsigned ks__effective_state(const struct ks_meta *m, int64_t now);
int ks__usable(const struct ks_meta *m, int64_t now);
void ks__put_be32(uint8_t *p, uint32_t v);
void ks__meta_out(
    const struct ks__rec *r, uint32_t newest, int64_t now, struct ks_meta *out);
int ks__read_key(struct ks *ks, MDB_txn *txn, const char *id, uint32_t version,
    struct ks__rec *r, struct ks__rec *newest);
void ks__rec_init(struct ks *ks, struct ks__rec *r, unsigned kind, int64_t now);

/* use.c */
int ks__op_material(
    struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep);
int ks__op_device(
    struct ks *ks, const struct ks_device_req *q, struct ks_reply *rep);
int ks__op_sign(
    struct ks *ks, const struct ks_sign_req *q, struct ks_reply *rep);
int ks__op_public(
    struct ks *ks, const struct ks_key_req *q, struct ks_reply *rep);
int ks__op_apikey_create(
    struct ks *ks, const struct ks_apikey_create_req *q, struct ks_reply *rep);
int ks__op_apikey_verify(
    struct ks *ks, const struct ks_apikey_verify_req *q, struct ks_reply *rep);

/* cred.c: console credentials, API-key retirement and (update.c) key
 * updates: the ops after KS_OP_PUBLIC; KS_EREQUEST for an unknown op. */
int ks__op_cred(
    struct ks *ks, const struct ks_request *req, struct ks_reply *rep);

/* update.c: KS_OP_UPDATE, and the CIDR check create shares with it. */
int ks__op_update(
    struct ks *ks, const struct ks_update_req *q, struct ks_reply *rep);
/* 1 when every used slot of @p c is a well-formed network. */
int ks__cidrs_ok(const struct ks_cidr *c);

/* vcache.c: the API-key verification cache */
struct ks__vcache;
int ks__vcache_new(unsigned entries, struct ks__vcache **out);
void ks__vcache_free(struct ks__vcache *c);
/* 1 when @p id is cached with this digest and fresh (< 1 s old); the
 * owner's metadata and the key's own end of validity are copied out. */
int ks__vcache_check(struct ks__vcache *c, const char *id,
    const uint8_t digest[32], struct ks_meta *owner, int64_t *valid_until);
/* Stores nothing when an owner was dropped (ks__vcache_drop_owner) since
 * this thread's last ks__vcache_check: what it read may predate that. */
void ks__vcache_put(struct ks__vcache *c, const char *id,
    const uint8_t digest[32], const struct ks_meta *owner, int64_t valid_until);
void ks__vcache_drop(struct ks__vcache *c, const char *id);
/* Drop every entry whose owner is @p owner (after a committed change of
 * the owner: a scan of the whole cache, so for rare writes only). */
void ks__vcache_drop_owner(struct ks__vcache *c, const char *owner);
void ks__vcache_counts(struct ks__vcache *c, uint64_t *hits, uint64_t *misses);

#endif /* SR_KEYSTORE_INTERNAL_H */
