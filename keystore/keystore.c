/*
 * keystore/keystore.c: opening and closing the keystore, its root keys in
 * the HSM (versioned, created on first start), its DEKs (wrapped under the
 * root KEK, rotated by age and by use count, cached unwrapped), and the
 * sealing of record material.
 *
 * Root keys never leave the HSM; an unwrapped DEK lives only in the
 * bounded, locked, wiping DEK cache and briefly on the stack of the thread
 * that uses it. This file must never write a DEK in plaintext anywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/internal.h"

#define KS_DEFAULT_MAP (1ULL << 30)
#define KS_DEFAULT_DEK_AGE (30LL * 24 * 3600)
#define KS_DEFAULT_DEK_USES ((1ULL << 32) - (1ULL << 24))
#define KS_META_KEY "versions"
#define KS_MAC_LABEL "strongroom/record-mac/v1"
#define KS_PEPPER_LABEL "sr-apikey-pepper-v1"
/* DEK use counts are written back at least this often. */
#define KS_DEK_PERSIST_EVERY 4096

/* Set for the length of a KS_REQ_NO_WAIT request on this thread: nothing
 * under it may wait for the HSM (ks_root_ready answers KS_EMISS). */
_Thread_local int ks__no_wait;

static int ks_dek_create(struct ks *ks);
static int ks_lock(struct ks *ks, char *err);
static int ks_rewrap_start(struct ks *ks);

int64_t
ks__now(void)
{
	return (int64_t)time(NULL);
}

int
ks__random(struct ks *ks, void *buf, size_t len)
{
	return p11_random(ks->hsm, buf, len);
}

int
ks__new_id(struct ks *ks, char id[KS_ID_LEN + 1])
{
	uint8_t rnd[KS_RANDOM_FOR_ID];
	int rc, tries;

	for (tries = 0; tries < 4; tries++) {
		rc = ks__random(ks, rnd, sizeof(rnd));
		if (rc != 0)
			return rc;
		rc = ks__id_make(rnd, sizeof(rnd), id);
		if (rc != -EAGAIN)
			return rc;
	}
	return -EAGAIN;
}

/* ------------------------------------------------------------------ */
/* Root keys                                                            */
/* ------------------------------------------------------------------ */

static int
ks_root_key(struct ks *ks, enum p11_key_kind kind, const char *fmt,
    uint32_t version, int create, struct p11_key **out)
{
	char label[64];
	int rc;

	snprintf(label, sizeof(label), fmt, version);
	rc = p11_key_find(ks->hsm, kind, label, NULL, 0, out);
	if (rc == P11_ENOTFOUND && create)
		rc = p11_key_generate(
		    ks->hsm, kind, label, NULL, 0, 32, P11_KEY_TOKEN, out);
	return rc;
}

/* Load (or, with @p create, make) both roots of @p version. */
static int
ks_root_load(struct ks *ks, uint32_t version, int create)
{
	int rc = 0;

	if (version == 0 || version >= KS_ROOT_MAX)
		return KS_EINTEGRITY;
	pthread_mutex_lock(&ks->root_lock);
	if (ks->kek[version] == NULL)
		rc = ks_root_key(ks, P11_KEY_AES, "sr-root-kek-v%u", version,
		    create, &ks->kek[version]);
	if (rc == 0 && ks->kdk[version] == NULL)
		rc = ks_root_key(ks, P11_KEY_HMAC, "sr-root-kdk-v%u", version,
		    create, &ks->kdk[version]);
	if (rc == 0 && sr_secret_len(&ks->mac_mem[version]) == 0) {
		struct sr_secret mem = { 0 };
		uint8_t key[32];

		rc = p11_kdf_sp800_108(ks->hsm, ks->kdk[version], KS_MAC_LABEL,
		    strlen(KS_MAC_LABEL), "", 0, key, sizeof(key));
		if (rc == 0)
			rc = sr_secret_alloc(&mem, sizeof(struct ks__mac));
		if (rc == 0)
			rc = ks__mac_setup(
			    (struct ks__mac *)sr_secret_bytes(&mem), key);
		if (rc == 0)
			ks->mac_mem[version] = mem;
		else
			sr_secret_free(&mem);
		sr_wipe(key, sizeof(key));
	}
	if (rc == 0)
		atomic_store_explicit(
		    &ks->root_ready[version], 1, memory_order_release);
	pthread_mutex_unlock(&ks->root_lock);
	return rc;
}

/* Fast path without the lock once a version is loaded: its pointers are
 * written once, before root_ready is released. */
static int
ks_root_ready(struct ks *ks, uint32_t version)
{
	int rc;

	if (version == 0 || version >= KS_ROOT_MAX)
		return KS_EINTEGRITY;
	if (atomic_load_explicit(
	        &ks->root_ready[version], memory_order_acquire))
		return 0;
	if (ks__no_wait)
		return KS_EMISS; /* loading a root version asks the HSM */
	rc = ks_root_load(ks, version, 0);
	return rc == P11_ENOTFOUND ? KS_EINTEGRITY : rc;
}

int
ks__root_kdk(struct ks *ks, uint32_t version, struct p11_key **out)
{
	int rc = ks_root_ready(ks, version);

	if (rc == 0)
		*out = ks->kdk[version];
	return rc;
}

int
ks__mac_ctx(struct ks *ks, uint32_t version, const struct ks__mac **m)
{
	int rc = ks_root_ready(ks, version);

	if (rc == 0)
		*m = (const struct ks__mac *)sr_secret_bytes(
		    &ks->mac_mem[version]);
	return rc;
}

struct ks_meta_arg {
	uint32_t kek, kdk;
	const char *appliance;
};

static int
ks_meta_put(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct ks_meta_arg *a = arg;
	uint8_t v[8 + KS_APPLIANCE_ID_LEN];
	MDB_val key = { strlen(KS_META_KEY), KS_META_KEY },
	        val = { sizeof(v), v };
	int i;

	for (i = 0; i < 4; i++) {
		v[i] = (uint8_t)(a->kek >> (24 - 8 * i));
		v[4 + i] = (uint8_t)(a->kdk >> (24 - 8 * i));
	}
	memcpy(v + 8, a->appliance, KS_APPLIANCE_ID_LEN);
	return ks__mdb_error(mdb_put(txn, ks->dbi[KS_DB_META], &key, &val, 0));
}

static int
ks_meta_load(struct ks *ks)
{
	MDB_val key = { strlen(KS_META_KEY), KS_META_KEY }, val;
	const uint8_t *v;
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return ks__mdb_error(rc);
	rc = mdb_get(txn, ks->dbi[KS_DB_META], &key, &val);
	if (rc == 0 && val.mv_size == 8 + KS_APPLIANCE_ID_LEN) {
		v = val.mv_data;
		ks->kek_version = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
		    (uint32_t)v[2] << 8 | v[3];
		ks->kdk_version = (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 |
		    (uint32_t)v[6] << 8 | v[7];
		memcpy(ks->appliance_id, v + 8, KS_APPLIANCE_ID_LEN);
		ks->appliance_id[KS_APPLIANCE_ID_LEN] = '\0';
	} else if (rc == 0) {
		rc = KS_EINTEGRITY;
	}
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? KS_ENOTFOUND : ks__mdb_error(rc);
}

/* First start: root keys v1, an appliance id, the meta record. */
static int
ks_first_start(struct ks *ks)
{
	struct ks_meta_arg a;
	char id[KS_ID_LEN + 1];
	int rc;

	rc = ks_root_load(ks, 1, 1);
	if (rc != 0)
		return rc;
	rc = ks__new_id(ks, id);
	if (rc != 0)
		return rc;
	snprintf(ks->appliance_id, sizeof(ks->appliance_id), "sr-%s", id);
	ks->kek_version = ks->kdk_version = 1;
	a = (struct ks_meta_arg){ 1, 1, ks->appliance_id };
	return ks__write(ks, ks_meta_put, &a);
}

int
ks__root_rotate(struct ks *ks)
{
	struct ks_meta_arg a;
	uint32_t next = ks->kek_version + 1;
	int rc;

	if (next >= KS_ROOT_MAX)
		return KS_EFULL;
	rc = ks_root_load(ks, next, 1);
	if (rc != 0)
		return rc;
	a = (struct ks_meta_arg){ next, next, ks->appliance_id };
	rc = ks__write(ks, ks_meta_put, &a);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&ks->dek_lock);
	ks->kek_version = ks->kdk_version = next;
	/* New work gets a DEK wrapped under the new root at once. */
	rc = ks_dek_create(ks);
	pthread_mutex_unlock(&ks->dek_lock);
	if (rc != 0)
		return rc;
	return ks_rewrap_start(ks);
}

/* ------------------------------------------------------------------ */
/* DEKs                                                                 */
/* ------------------------------------------------------------------ */

static int
ks_dek_put(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct ks__dek *d = arg;
	uint8_t kb[4], buf[256];
	MDB_val key = { 4, kb }, val;
	size_t len;
	int rc;

	kb[0] = (uint8_t)(d->version >> 24);
	kb[1] = (uint8_t)(d->version >> 16);
	kb[2] = (uint8_t)(d->version >> 8);
	kb[3] = (uint8_t)d->version;
	rc = ks__dek_encode(ks, d, buf, sizeof(buf), &len);
	if (rc != 0)
		return rc;
	val.mv_size = len;
	val.mv_data = buf;
	return ks__mdb_error(mdb_put(txn, ks->dbi[KS_DB_DEKS], &key, &val, 0));
}

/* A new DEK never replaces one: two writers racing for the same version
 * would otherwise lose every record sealed under the loser's key. */
static int
ks_dek_insert(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct ks__dek *d = arg;
	uint8_t kb[4] = { (uint8_t)(d->version >> 24),
		(uint8_t)(d->version >> 16), (uint8_t)(d->version >> 8),
		(uint8_t)d->version };
	MDB_val key = { 4, kb }, val;

	if (mdb_get(txn, ks->dbi[KS_DB_DEKS], &key, &val) == 0)
		return KS_EEXISTS;
	return ks_dek_put(ks, txn, d);
}

static int
ks_dek_persist_now(struct ks *ks, MDB_txn *txn, void *arg)
{
	struct ks__dek d;

	(void)arg;
	pthread_mutex_lock(&ks->dek_data_lock);
	d = ks->dek;
	pthread_mutex_unlock(&ks->dek_data_lock);
	d.uses = atomic_load(&ks->dek_uses);
	return ks_dek_put(ks, txn, &d);
}

int
ks__dek_persist(struct ks *ks, MDB_txn *txn)
{
	struct ks__dek d;
	uint64_t uses = atomic_load(&ks->dek_uses);

	int rc;

	pthread_mutex_lock(&ks->dek_data_lock);
	d = ks->dek;
	pthread_mutex_unlock(&ks->dek_data_lock);
	if (d.version == 0 || uses < d.uses + KS_DEK_PERSIST_EVERY)
		return 0;
	d.uses = uses;
	rc = ks_dek_put(ks, txn, &d);
	if (rc == 0) {
		pthread_mutex_lock(&ks->dek_data_lock);
		if (ks->dek.version == d.version)
			ks->dek.uses = uses;
		pthread_mutex_unlock(&ks->dek_data_lock);
	}
	return rc;
}

/* A new DEK from the HSM's generator, wrapped under the current root KEK
 * and committed before it is used. Called with dek_lock held. */
static int
ks_dek_create(struct ks *ks)
{
	uint8_t key[KS_DEK_LEN];
	struct ks__dek d;
	size_t n = 0;
	int rc;

	memset(&d, 0, sizeof(d));
	d.version = ks->dek.version + 1;
	d.root_version = ks->kek_version;
	d.mac_version = ks->kdk_version;
	d.created_at = ks__now();
	rc = ks__random(ks, key, sizeof(key));
	if (rc == 0)
		rc = p11_wrap(ks->hsm, ks->kek[d.root_version], key,
		    sizeof(key), d.wrapped, sizeof(d.wrapped), &n);
	if (rc == 0) {
		d.wrapped_len = (uint32_t)n;
		rc = ks__write(ks, ks_dek_insert, &d);
	}
	if (rc == 0) {
		ks__dek_cache_put(ks->dek_cache, d.version, key);
		pthread_mutex_lock(&ks->dek_data_lock);
		ks->dek = d;
		atomic_store(&ks->dek_uses, 0);
		pthread_mutex_unlock(&ks->dek_data_lock);
		log_info("keystore: DEK v%u created", d.version);
	}
	sr_wipe(key, sizeof(key));
	return rc;
}

static int
ks_dek_read(struct ks *ks, uint32_t version, struct ks__dek *d)
{
	uint8_t kb[4] = { (uint8_t)(version >> 24), (uint8_t)(version >> 16),
		(uint8_t)(version >> 8), (uint8_t)version };
	MDB_val key = { 4, kb }, val;
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return ks__mdb_error(rc);
	rc = mdb_get(txn, ks->dbi[KS_DB_DEKS], &key, &val);
	if (rc == 0)
		rc = ks__dek_decode(ks, &key, &val, d);
	else
		rc = rc == MDB_NOTFOUND ? KS_EINTEGRITY : ks__mdb_error(rc);
	mdb_txn_abort(txn);
	return rc;
}

/* The unwrapped DEK of @p version, from the cache or through the HSM. */
static int
ks_dek_get(struct ks *ks, uint32_t version, uint8_t key[KS_DEK_LEN])
{
	struct sr_secret plain = { 0 };
	struct ks__dek d;
	int rc;

	if (ks__dek_cache_get(ks->dek_cache, version, key))
		return 0;
	rc = ks_dek_read(ks, version, &d);
	if (rc != 0)
		return rc;
	rc = ks_root_load(ks, d.root_version, 0);
	if (rc != 0)
		return rc == P11_ENOTFOUND ? KS_EINTEGRITY : rc;
	rc = p11_unwrap(
	    ks->hsm, ks->kek[d.root_version], d.wrapped, d.wrapped_len, &plain);
	if (rc == P11_EINTEGRITY)
		rc = KS_EINTEGRITY;
	if (rc == 0 && sr_secret_len(&plain) != KS_DEK_LEN)
		rc = KS_EINTEGRITY;
	if (rc == 0) {
		memcpy(key, sr_secret_bytes(&plain), KS_DEK_LEN);
		ks__dek_cache_put(ks->dek_cache, version, key);
	}
	sr_secret_free(&plain);
	return rc;
}

/*
 * After a root rotation, re-wrap every DEK still under an older root KEK,
 * one small write each, in a background thread. Readers never wait: LMDB
 * readers see either the old or the new wrapping, and both unwrap while the
 * old root is kept.
 */
struct ks_rewrap_arg {
	struct ks__dek d;
};

static int
ks_rewrap_put(struct ks *ks, MDB_txn *txn, void *arg)
{
	return ks_dek_put(ks, txn, arg);
}

static void *
ks_rewrap_main(void *arg)
{
	struct ks *ks = arg;
	uint8_t key[KS_DEK_LEN];
	struct ks__dek d;
	uint32_t v, last, target;
	size_t n;
	int rc, done = 0;

	sr_log_thread_tag("ks-rewrap");
	pthread_mutex_lock(&ks->dek_data_lock);
	last = ks->dek.version;
	pthread_mutex_unlock(&ks->dek_data_lock);
	target = ks->kek_version;
	for (v = 1; v <= last; v++) {
		rc = ks_dek_read(ks, v, &d);
		if (rc != 0 || d.root_version >= target)
			continue;
		rc = ks_dek_get(ks, v, key);
		if (rc == 0)
			rc = p11_wrap(ks->hsm, ks->kek[target], key,
			    sizeof(key), d.wrapped, sizeof(d.wrapped), &n);
		sr_wipe(key, sizeof(key));
		if (rc == 0) {
			d.root_version = target;
			d.mac_version = ks->kdk_version;
			rc = ks__write(ks, ks_rewrap_put, &d);
		}
		if (rc != 0) {
			log_warnx("keystore: re-wrap of DEK v%u: %s", v,
			    sr_strerror(rc));
			continue;
		}
		done++;
	}
	log_info("keystore: re-wrapped %d DEK(s) under root v%u", done, target);
	return NULL;
}

static int
ks_rewrap_start(struct ks *ks)
{
	int rc;

	if (ks->rewrap_started) {
		pthread_join(ks->rewrap, NULL);
		ks->rewrap_started = 0;
	}
	rc = pthread_create(&ks->rewrap, NULL, ks_rewrap_main, ks);
	if (rc != 0)
		return -rc;
	ks->rewrap_started = 1;
	return 0;
}

static int
ks_dek_load_current(struct ks *ks)
{
	MDB_val key, val;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(ks->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return ks__mdb_error(rc);
	rc = mdb_cursor_open(txn, ks->dbi[KS_DB_DEKS], &cur);
	if (rc == 0) {
		rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
		if (rc == 0)
			rc = ks__dek_decode(ks, &key, &val, &ks->dek);
		else
			rc = ks__mdb_error(rc);
		mdb_cursor_close(cur);
	} else {
		rc = ks__mdb_error(rc);
	}
	mdb_txn_abort(txn);
	if (rc == 0)
		atomic_store(&ks->dek_uses, ks->dek.uses);
	return rc;
}

int
ks__seal_rec(struct ks *ks, struct ks__rec *r, const uint8_t *plain, size_t len)
{
	uint8_t key[KS_DEK_LEN];
	struct ks__aad aad;
	uint32_t version;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&ks->dek_lock);
	if (ks->dek.version == 0 ||
	    ks__now() - ks->dek.created_at >= ks->opt.dek_max_age ||
	    atomic_load(&ks->dek_uses) >= ks->opt.dek_max_uses)
		rc = ks_dek_create(ks);
	version = ks->dek.version;
	pthread_mutex_unlock(&ks->dek_lock);
	if (rc != 0)
		return rc;
	atomic_fetch_add(&ks->dek_uses, 1);
	rc = ks_dek_get(ks, version, key);
	if (rc != 0)
		return rc;
	r->m.dek_version = version;
	ks__aad_make(&aad, r->m.kind, r->m.id, r->m.version, version);
	rc = ks__seal(key, &aad, plain, len, r->sealed, &n);
	sr_wipe(key, sizeof(key));
	if (rc == 0)
		r->sealed_len = (uint32_t)n;
	return rc;
}

int
ks__open_rec(
    struct ks *ks, const struct ks__rec *r, uint8_t *plain, size_t *len)
{
	uint8_t key[KS_DEK_LEN];
	struct ks__aad aad;
	int rc;

	if (r->sealed_len == 0 || r->m.dek_version == 0)
		return KS_ESTATE;
	rc = ks_dek_get(ks, r->m.dek_version, key);
	if (rc != 0)
		return rc;
	ks__aad_make(&aad, r->m.kind, r->m.id, r->m.version, r->m.dek_version);
	rc = ks__open(key, &aad, r->sealed, r->sealed_len, plain, len);
	sr_wipe(key, sizeof(key));
	return rc;
}

/* ------------------------------------------------------------------ */
/* Open, close, call                                                    */
/* ------------------------------------------------------------------ */

int
ks_open(struct p11_ctx *hsm, const struct ks_options *opts, struct ks **out,
    char errbuf[256])
{
	char scratch[256], *err = errbuf != NULL ? errbuf : scratch;
	struct ks *ks;
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (hsm == NULL || opts == NULL || opts->path == NULL)
		return -EINVAL;
	ks = calloc(1, sizeof(*ks));
	if (ks == NULL)
		return -ENOMEM;
	ks->hsm = hsm;
	ks->opt = *opts;
	ks->lock_fd = -1;
	if (ks->opt.map_size == 0)
		ks->opt.map_size = KS_DEFAULT_MAP;
	if (ks->opt.cache_entries == 0)
		ks->opt.cache_entries = 65536;
	if (ks->opt.dek_cache == 0)
		ks->opt.dek_cache = 64;
	if (ks->opt.dek_max_age == 0)
		ks->opt.dek_max_age = KS_DEFAULT_DEK_AGE;
	if (ks->opt.dek_max_uses == 0)
		ks->opt.dek_max_uses = KS_DEFAULT_DEK_USES;
	pthread_mutex_init(&ks->root_lock, NULL);
	pthread_mutex_init(&ks->dek_lock, NULL);
	pthread_mutex_init(&ks->dek_data_lock, NULL);
	pthread_mutex_init(&ks->wlock, NULL);
	pthread_mutex_init(&ks->rpool_lock, NULL);
	pthread_mutex_init(&ks->sign_lock, NULL);
	pthread_cond_init(&ks->wcond, NULL);
	pthread_cond_init(&ks->wdone, NULL);
	rc = ks__dek_cache_new(ks->opt.dek_cache, &ks->dek_cache);
	if (rc == 0)
		rc = ks__vcache_new(ks->opt.cache_entries, &ks->vcache);
	if (rc == 0)
		rc = ks__usage_new(&ks->usage);
	if (rc != 0)
		goto bad;
	rc = ks_lock(ks, err);
	if (rc != 0)
		goto bad;
	rc = ks__store_open(ks, err, 256);
	if (rc != 0)
		goto bad;
	{
		uint8_t vk[32];

		rc = ks__random(ks, vk, sizeof(vk));
		if (rc == 0)
			rc = ks__mac_setup(&ks->vc_mac, vk);
		sr_wipe(vk, sizeof(vk));
		if (rc != 0)
			goto bad;
	}
	rc = ks_meta_load(ks);
	if (rc == KS_ENOTFOUND)
		rc = ks_first_start(ks);
	else if (rc == 0)
		rc = ks_root_load(ks, ks->kek_version, 0);
	if (rc == 0)
		rc = p11_key_find(
		    hsm, P11_KEY_HMAC, KS_PEPPER_LABEL, NULL, 0, &ks->pepper);
	if (rc == P11_ENOTFOUND)
		rc = p11_key_generate(hsm, P11_KEY_HMAC, KS_PEPPER_LABEL, NULL,
		    0, 32, P11_KEY_TOKEN, &ks->pepper);
	if (rc != 0) {
		snprintf(err, 256, "root keys: %s (%s)", sr_strerror(rc),
		    p11_rv_name(p11_last_rv()));
		goto bad;
	}
	rc = ks_dek_load_current(ks);
	if (rc == KS_ENOTFOUND) {
		pthread_mutex_lock(&ks->dek_lock);
		rc = ks_dek_create(ks);
		pthread_mutex_unlock(&ks->dek_lock);
	}
	if (rc != 0) {
		snprintf(err, 256, "data-encryption key: %s", sr_strerror(rc));
		goto bad;
	}
	*out = ks;
	return 0;
bad:
	ks_close(ks);
	return rc;
}

/*
 * One process owns a keystore: LMDB would allow several, but the writer's
 * batching, the DEK use count and the caches assume they see every write.
 * The lock dies with the process, so a crash never leaves it stale.
 */
static int
ks_lock(struct ks *ks, char *err)
{
	char path[4096];

	if (mkdir(ks->opt.path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, 256, "%s: %s", ks->opt.path, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/owner.lock", ks->opt.path);
	ks->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ks->lock_fd < 0) {
		snprintf(err, 256, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(ks->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(
		    err, 256, "%s is in use by another process", ks->opt.path);
		close(ks->lock_fd);
		ks->lock_fd = -1;
		return KS_EBUSY;
	}
	return 0;
}

void
ks_close(struct ks *ks)
{
	unsigned i;

	if (ks == NULL)
		return;
	if (ks->rewrap_started)
		pthread_join(ks->rewrap, NULL);
	/* Keep the DEK's use count across restarts: rotation by use must
	 * not be reset by a short-lived process. */
	if (ks->writer_started && ks->dek.version != 0 &&
	    atomic_load(&ks->dek_uses) != ks->dek.uses)
		ks__write(ks, ks_dek_persist_now, NULL);
	if (ks->writer_started && ks__usage_flush(ks) != 0)
		log_warnx("keystore: API keys' last use not written at close");
	ks__store_close(ks);
	for (i = 0; i < KS_ROOT_MAX; i++) {
		p11_key_free(ks->kek[i]);
		p11_key_free(ks->kdk[i]);
		if (sr_secret_len(&ks->mac_mem[i]) != 0)
			ks__mac_clear(
			    (struct ks__mac *)sr_secret_bytes(&ks->mac_mem[i]));
		sr_secret_free(&ks->mac_mem[i]);
	}
	p11_key_free(ks->pepper);
	ks__sign_keys_free(ks);
	ks__mac_clear(&ks->vc_mac);
	if (ks->lock_fd >= 0)
		close(ks->lock_fd);
	ks__dek_cache_free(ks->dek_cache);
	ks__vcache_free(ks->vcache);
	ks__usage_free(ks->usage);
	pthread_mutex_destroy(&ks->root_lock);
	pthread_mutex_destroy(&ks->dek_lock);
	pthread_mutex_destroy(&ks->dek_data_lock);
	pthread_mutex_destroy(&ks->wlock);
	pthread_mutex_destroy(&ks->rpool_lock);
	pthread_mutex_destroy(&ks->sign_lock);
	pthread_cond_destroy(&ks->wcond);
	pthread_cond_destroy(&ks->wdone);
	sr_wipe(ks, sizeof(*ks));
	free(ks);
}

void
ks_request_init(struct ks_request *req, enum ks_op op)
{
	memset(req, 0, sizeof(*req));
	req->size = sizeof(*req);
	req->op = op;
}

void
ks_reply_init(struct ks_reply *rep)
{
	memset(rep, 0, offsetof(struct ks_reply, list));
	rep->size = sizeof(*rep);
}

void
ks_reply_wipe(struct ks_reply *rep)
{
	sr_wipe(rep->material, sizeof(rep->material));
	sr_wipe(rep->apikey, sizeof(rep->apikey));
	rep->material_len = 0;
}

int
ks_call(struct ks *ks, const struct ks_request *req, struct ks_reply *rep)
{
	int rc;

	if (rep == NULL || rep->size != sizeof(*rep))
		return KS_EREQUEST;
	ks_reply_init(rep);
	if (ks == NULL || req == NULL || req->size != sizeof(*req) ||
	    (req->flags & ~KS_REQ_NO_WAIT) != 0)
		rc = KS_EREQUEST;
	else if (!(req->flags & KS_REQ_NO_WAIT))
		rc = ks__op(ks, req, rep);
	else if (req->op != KS_OP_GET && req->op != KS_OP_LIST &&
	    req->op != KS_OP_EXPIRING && req->op != KS_OP_STATS &&
	    req->op != KS_OP_APIKEY_VERIFY)
		rc = KS_EMISS;
	else {
		ks__no_wait = 1;
		rc = ks__op(ks, req, rep);
		ks__no_wait = 0;
	}
	if (rc != 0)
		ks_reply_wipe(rep);
	rep->status = rc;
	return rc;
}
