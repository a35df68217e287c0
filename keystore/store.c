/*
 * keystore/store.c: the LMDB environment, its named databases, and the
 * single writer that commits concurrent requests in one transaction.
 *
 * Callers queue a write job and sleep; the writer takes everything queued,
 * runs each job in a nested transaction of one batch (so a job that fails
 * leaves nothing behind), commits once, and wakes every caller of the batch
 * only after the commit (and its fsync) returned. This file must never
 * acknowledge a job before its commit is on disk, and never opens the
 * environment with MDB_NOSYNC or MDB_NOMETASYNC.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/internal.h"

#define KS_BATCH_MAX 4096

static const char *const ks_dbnames[KS_DB_COUNT] = {
	[KS_DB_APP] = "apps",
	[KS_DB_USER] = "users",
	[KS_DB_DEVICE] = "devices",
	[KS_DB_SIGNING] = "signing",
	[KS_DB_DATA] = "data",
	[KS_DB_APIKEY] = "apikeys",
	[KS_DB_DEKS] = "deks",
	[KS_DB_META] = "meta",
	[KS_DB_NAMES] = "names",
	[KS_DB_SERIALS] = "serials",
	[KS_DB_CREDS] = "creds",
};

/* LMDB's codes become ours here and nowhere else. */
int
ks__mdb_error(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return KS_ENOTFOUND;
	case MDB_KEYEXIST:
		return KS_EEXISTS;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return KS_EFULL;
	case ENOMEM:
		return -ENOMEM;
	default:
		if (rc != MDB_SUCCESS)
			log_warnx("keystore: LMDB: %s", mdb_strerror(rc));
		return KS_ESTORAGE;
	}
}

static void *
ks_writer_main(void *arg)
{
	struct ks *ks = arg;
	struct ks__job *batch, *j;
	MDB_txn *txn, *child;
	unsigned n;
	int rc;

	sr_log_thread_tag("ks-writer");
	pthread_mutex_lock(&ks->wlock);
	for (;;) {
		while (ks->queue == NULL && !ks->stopping)
			pthread_cond_wait(&ks->wcond, &ks->wlock);
		if (ks->queue == NULL && ks->stopping)
			break;
		/* Take at most KS_BATCH_MAX jobs; the rest wait for the next
		 * commit, which bounds the transaction and the ack latency. */
		batch = ks->queue;
		for (j = batch, n = 1; j->next != NULL && n < KS_BATCH_MAX; n++)
			j = j->next;
		ks->queue = j->next;
		j->next = NULL;
		if (ks->queue == NULL)
			ks->queue_tail = &ks->queue;
		pthread_mutex_unlock(&ks->wlock);

		rc = ks__mdb_error(mdb_txn_begin(ks->env, NULL, 0, &txn));
		n = 0;
		for (j = batch; j != NULL && rc == 0; j = j->next) {
			j->rc = ks__mdb_error(
			    mdb_txn_begin(ks->env, txn, 0, &child));
			if (j->rc != 0)
				continue;
			j->rc = j->fn(ks, child, j->arg);
			if (j->rc == 0)
				j->rc = ks__mdb_error(mdb_txn_commit(child));
			else
				mdb_txn_abort(child);
			n += j->rc == 0;
		}
		if (rc == 0) {
			rc = ks__mdb_error(mdb_txn_commit(txn));
			if (rc == 0) {
				atomic_fetch_add(&ks->commits, 1);
				atomic_fetch_add(&ks->committed, n);
			}
		}
		pthread_mutex_lock(&ks->wlock);
		/* A failed commit takes the whole batch with it: nothing of it
		 * is on disk, and every caller hears so. */
		for (j = batch; j != NULL; j = j->next) {
			if (rc != 0)
				j->rc = rc;
			j->done = 1;
		}
		pthread_cond_broadcast(&ks->wdone);
	}
	pthread_mutex_unlock(&ks->wlock);
	return NULL;
}

int
ks__write(struct ks *ks, ks__write_fn *fn, void *arg)
{
	struct ks__job job = { fn, arg, 0, 0, NULL };

	pthread_mutex_lock(&ks->wlock);
	if (ks->stopping) {
		pthread_mutex_unlock(&ks->wlock);
		return KS_ECLOSED;
	}
	*ks->queue_tail = &job;
	ks->queue_tail = &job.next;
	pthread_cond_signal(&ks->wcond);
	while (!job.done)
		pthread_cond_wait(&ks->wdone, &ks->wlock);
	pthread_mutex_unlock(&ks->wlock);
	return job.rc;
}

int
ks__store_open(struct ks *ks, char *err, size_t errlen)
{
	MDB_txn *txn;
	unsigned i;
	int rc;

	/* The folder exists: ks_open made it to take the owner lock. */
	rc = mdb_env_create(&ks->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(ks->env, KS_DB_COUNT + 2);
	if (rc == 0)
		rc = mdb_env_set_mapsize(ks->env, ks->opt.map_size);
	/* MDB_NOTLS: read transactions are not tied to threads, so a read
	 * can run on any worker of the thread pool. */
	if (rc == 0)
		rc = mdb_env_open(ks->env, ks->opt.path, MDB_NOTLS, 0600);
	if (rc != 0) {
		snprintf(
		    err, errlen, "LMDB %s: %s", ks->opt.path, mdb_strerror(rc));
		return ks__mdb_error(rc);
	}
	rc = mdb_txn_begin(ks->env, NULL, 0, &txn);
	for (i = 1; rc == 0 && i < KS_DB_COUNT; i++)
		rc = mdb_dbi_open(txn, ks_dbnames[i], MDB_CREATE, &ks->dbi[i]);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc != 0) {
		snprintf(err, errlen, "LMDB databases: %s", mdb_strerror(rc));
		return ks__mdb_error(rc);
	}
	ks->queue = NULL;
	ks->queue_tail = &ks->queue;
	rc = pthread_create(&ks->writer, NULL, ks_writer_main, ks);
	if (rc != 0) {
		snprintf(err, errlen, "writer thread: %s", strerror(rc));
		return -rc;
	}
	ks->writer_started = 1;
	return 0;
}

int
ks__rd_begin(struct ks *ks, MDB_txn **txn)
{
	MDB_txn *t = NULL;
	int rc;

	pthread_mutex_lock(&ks->rpool_lock);
	if (ks->nrpool > 0)
		t = ks->rpool[--ks->nrpool];
	pthread_mutex_unlock(&ks->rpool_lock);
	if (t != NULL) {
		rc = mdb_txn_renew(t);
		if (rc == 0) {
			*txn = t;
			return 0;
		}
		mdb_txn_abort(t);
	}
	return ks__mdb_error(mdb_txn_begin(ks->env, NULL, MDB_RDONLY, txn));
}

void
ks__rd_end(struct ks *ks, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_mutex_lock(&ks->rpool_lock);
	if (ks->nrpool < sizeof(ks->rpool) / sizeof(ks->rpool[0])) {
		ks->rpool[ks->nrpool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&ks->rpool_lock);
	if (txn != NULL)
		mdb_txn_abort(txn);
}

void
ks__store_close(struct ks *ks)
{
	if (ks->writer_started) {
		pthread_mutex_lock(&ks->wlock);
		ks->stopping = 1;
		pthread_cond_signal(&ks->wcond);
		pthread_mutex_unlock(&ks->wlock);
		pthread_join(ks->writer, NULL);
		ks->writer_started = 0;
	}
	while (ks->nrpool > 0)
		mdb_txn_abort(ks->rpool[--ks->nrpool]);
	if (ks->env != NULL)
		mdb_env_close(ks->env);
	ks->env = NULL;
}

int
ks__put_rec(
    struct ks *ks, MDB_txn *txn, const struct ks__rec *r, unsigned flags)
{
	uint8_t kb[KS_ID_LEN + 4], buf[2048];
	MDB_val key = { sizeof(kb), kb }, val;
	size_t len;
	int rc;

	ks__reckey(kb, r->m.id, r->m.version);
	rc = ks__rec_encode(ks, r->m.kind, &key, r, buf, sizeof(buf), &len);
	if (rc != 0)
		return rc;
	val.mv_size = len;
	val.mv_data = buf;
	rc = mdb_put(txn, ks->dbi[r->m.kind], &key, &val, flags);
	sr_wipe(buf, sizeof(buf));
	return ks__mdb_error(rc);
}

/* Version 0 reads the newest version of the id. */
int
ks__get_rec(struct ks *ks, MDB_txn *txn, unsigned db, const char *id,
    uint32_t version, struct ks__rec *r)
{
	uint8_t kb[KS_ID_LEN + 4];
	MDB_val key = { sizeof(kb), kb }, val;
	MDB_cursor *cur;
	int rc;

	if (version != 0) {
		ks__reckey(kb, id, version);
		rc = mdb_get(txn, ks->dbi[db], &key, &val);
		if (rc != 0)
			return ks__mdb_error(rc);
		return ks__rec_decode(ks, db, &key, &val, r);
	}
	/* The newest version sorts last among the id's keys. */
	ks__reckey(kb, id, UINT32_MAX);
	rc = mdb_cursor_open(txn, ks->dbi[db], &cur);
	if (rc != 0)
		return ks__mdb_error(rc);
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
	if (rc == 0 &&
	    (key.mv_size != KS_ID_LEN + 4 ||
	        memcmp(key.mv_data, id, KS_ID_LEN) != 0))
		rc = MDB_NOTFOUND;
	if (rc == 0)
		rc = ks__rec_decode(ks, db, &key, &val, r);
	else
		rc = ks__mdb_error(rc);
	mdb_cursor_close(cur);
	return rc;
}

int
ks__rewrite_versions(struct ks *ks, MDB_txn *txn, unsigned kind, const char *id,
    uint32_t last, ks__rec_change *change, void *arg, struct ks__rec *scratch,
    struct ks__rec *newest)
{
	uint32_t v;
	int rc;

	for (v = 1; v <= last; v++) {
		rc = ks__get_rec(ks, txn, kind, id, v, scratch);
		if (rc == KS_ENOTFOUND)
			continue;
		if (rc != 0)
			return rc;
		change(scratch, arg);
		scratch->mac_version = ks->kdk_version;
		rc = ks__put_rec(ks, txn, scratch, 0);
		if (rc != 0)
			return rc;
		if (v == last)
			*newest = *scratch;
	}
	return 0;
}

/* Which kind's database holds @p id. */
int
ks__find_kind(struct ks *ks, MDB_txn *txn, const char *id, unsigned *kind)
{
	struct ks__rec r;
	unsigned k;
	int rc = KS_ENOTFOUND;

	for (k = 1; k < KS_KIND_COUNT; k++) {
		rc = ks__get_rec(ks, txn, k, id, 0, &r);
		if (rc != KS_ENOTFOUND)
			break;
	}
	if (rc == 0)
		*kind = k;
	return rc;
}
