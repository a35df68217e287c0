/*
 * keystore/record.c: the on-disk form of key records and DEK records, and
 * the MAC that binds each one to its LMDB key.
 *
 * A record is a versioned, big-endian encoding of its metadata and its
 * material field, followed by an AES-256-CMAC over the database, the LMDB
 * key and the encoding, under a MAC key derived in the HSM from the root
 * KDK (CMAC rather than HMAC: AES-NI makes it several times cheaper, and
 * every read checks one). Editing a record, or moving it under another key,
 * fails the MAC with KS_EINTEGRITY. This file must never accept a record whose
 * MAC it did not check, and never reads past the value LMDB hands it.
 */
#include <errno.h>
#include <string.h>

#include "keystore/internal.h"
#include "pkcs11/p11.h"

#define KS_REC_MAGIC "SRR1"
#define KS_DEK_MAGIC "SRD1"

struct ks_wbuf {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};

static void
put_bytes(struct ks_wbuf *w, const void *src, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void
put_u(struct ks_wbuf *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	put_bytes(w, b, (size_t)bytes);
}

/* A string field: u16 length, bytes (no NUL). */
static void
put_str(struct ks_wbuf *w, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	put_u(w, n, 2);
	put_bytes(w, s, n);
}

struct ks_rbuf {
	const uint8_t *p;
	size_t len, pos;
	int bad;
};

static uint64_t
get_u(struct ks_rbuf *r, int bytes)
{
	uint64_t v = 0;
	int i;

	if (r->bad || (size_t)bytes > r->len - r->pos) {
		r->bad = 1;
		return 0;
	}
	for (i = 0; i < bytes; i++)
		v = v << 8 | r->p[r->pos++];
	return v;
}

static void
get_bytes(struct ks_rbuf *r, void *dst, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = 1;
		return;
	}
	memcpy(dst, r->p + r->pos, n);
	r->pos += n;
}

/* A string field into a buffer of @p cap bytes (NUL-terminated). */
static void
get_str(struct ks_rbuf *r, char *dst, size_t cap)
{
	size_t n = (size_t)get_u(r, 2);

	if (n >= cap) {
		r->bad = 1;
		return;
	}
	get_bytes(r, dst, n);
	dst[r->bad ? 0 : n] = '\0';
	if (memchr(dst, '\0', n) != NULL)
		r->bad = 1;
}

void
ks__reckey(uint8_t out[KS_ID_LEN + 4], const char *id, uint32_t version)
{
	memcpy(out, id, KS_ID_LEN);
	out[KS_ID_LEN] = (uint8_t)(version >> 24);
	out[KS_ID_LEN + 1] = (uint8_t)(version >> 16);
	out[KS_ID_LEN + 2] = (uint8_t)(version >> 8);
	out[KS_ID_LEN + 3] = (uint8_t)version;
}

int
ks__mac_setup(struct ks__mac *m, const uint8_t key[32])
{
	static const uint8_t zero[16];
	uint8_t l[16];
	int i;

	mbedtls_aes_init(&m->aes);
	if (mbedtls_aes_setkey_enc(&m->aes, key, 256) != 0 ||
	    mbedtls_aes_crypt_ecb(&m->aes, MBEDTLS_AES_ENCRYPT, zero, l) != 0) {
		mbedtls_aes_free(&m->aes);
		return -EIO;
	}
	/* Subkeys: K1 = dbl(AES(0)), K2 = dbl(K1), in GF(2^128). */
	for (i = 0; i < 16; i++)
		m->k1[i] = (uint8_t)(l[i] << 1 | (i < 15 ? l[i + 1] >> 7 : 0));
	if (l[0] & 0x80)
		m->k1[15] ^= 0x87;
	for (i = 0; i < 16; i++)
		m->k2[i] =
		    (uint8_t)(m->k1[i] << 1 | (i < 15 ? m->k1[i + 1] >> 7 : 0));
	if (m->k1[0] & 0x80)
		m->k2[15] ^= 0x87;
	sr_wipe(l, sizeof(l));
	return 0;
}

void
ks__mac_clear(struct ks__mac *m)
{
	mbedtls_aes_free(&m->aes);
	sr_wipe(m, sizeof(*m));
}

void
ks__cmac(
    const struct ks__mac *m, const uint8_t *msg, size_t len, uint8_t out[16])
{
	uint8_t x[16] = { 0 }, last[16];
	size_t i, full = len == 0 ? 0 : (len - 1) / 16, rest = len - 16 * full;

	for (i = 0; i < full; i++) {
		for (int b = 0; b < 16; b++)
			x[b] ^= msg[16 * i + b];
		mbedtls_aes_crypt_ecb(
		    (mbedtls_aes_context *)&m->aes, MBEDTLS_AES_ENCRYPT, x, x);
	}
	/* The last block: whole, or padded with 10...0 and the other key. */
	memset(last, 0, sizeof(last));
	memcpy(last, msg + 16 * full, rest);
	if (rest == 16) {
		for (i = 0; i < 16; i++)
			last[i] ^= m->k1[i];
	} else {
		last[rest] = 0x80;
		for (i = 0; i < 16; i++)
			last[i] ^= m->k2[i];
	}
	for (i = 0; i < 16; i++)
		x[i] ^= last[i];
	mbedtls_aes_crypt_ecb(
	    (mbedtls_aes_context *)&m->aes, MBEDTLS_AES_ENCRYPT, x, out);
}

/* AES-256-CMAC(mac key, db || key || body): 16 bytes. */
static int
rec_mac(struct ks *ks, uint32_t mac_version, unsigned db, const MDB_val *key,
    const uint8_t *body, size_t len, uint8_t mac[KS_MAC_LEN])
{
	const struct ks__mac *m;
	uint8_t msg[1 + KS_ID_LEN + 4 + 2048];
	int rc;

	rc = ks__mac_ctx(ks, mac_version, &m);
	if (rc != 0)
		return rc;
	if (key->mv_size > KS_ID_LEN + 4 || len > 2048)
		return -EINVAL;
	msg[0] = (uint8_t)db;
	memcpy(msg + 1, key->mv_data, key->mv_size);
	memcpy(msg + 1 + key->mv_size, body, len);
	ks__cmac(m, msg, 1 + key->mv_size + len, mac);
	sr_wipe(msg, 1 + key->mv_size + len);
	return 0;
}

static int
finish(struct ks *ks, struct ks_wbuf *w, uint32_t mac_version, unsigned db,
    const MDB_val *key, size_t *len)
{
	uint8_t mac[KS_MAC_LEN];
	int rc;

	put_u(w, mac_version, 4);
	if (w->overflow || w->cap - w->len < KS_MAC_LEN)
		return -ENOSPC;
	rc = rec_mac(ks, mac_version, db, key, w->p, w->len, mac);
	if (rc != 0)
		return rc;
	put_bytes(w, mac, KS_MAC_LEN);
	*len = w->len;
	return 0;
}

/* Check the trailing MAC; on success r covers the body only. */
static int
check(struct ks *ks, unsigned db, const MDB_val *key, const MDB_val *val,
    struct ks_rbuf *r, uint32_t *mac_version)
{
	uint8_t mac[KS_MAC_LEN];
	const uint8_t *p = val->mv_data;
	size_t n = val->mv_size;
	int rc;

	if (n < 4 + 4 + KS_MAC_LEN)
		return KS_EINTEGRITY;
	*mac_version = (uint32_t)p[n - KS_MAC_LEN - 4] << 24 |
	    (uint32_t)p[n - KS_MAC_LEN - 3] << 16 |
	    (uint32_t)p[n - KS_MAC_LEN - 2] << 8 | p[n - KS_MAC_LEN - 1];
	rc = rec_mac(ks, *mac_version, db, key, p, n - KS_MAC_LEN, mac);
	if (rc == -ENOENT || rc == KS_ENOTFOUND)
		return KS_EINTEGRITY; /* a MAC version we never had */
	if (rc != 0)
		return rc;
	if (!sr_ct_equal(mac, p + n - KS_MAC_LEN, KS_MAC_LEN))
		return KS_EINTEGRITY;
	r->p = p;
	r->len = n - KS_MAC_LEN - 4;
	r->pos = 0;
	r->bad = 0;
	return 0;
}

int
ks__rec_encode(struct ks *ks, unsigned db, const MDB_val *key,
    const struct ks__rec *r, uint8_t *buf, size_t cap, size_t *len)
{
	struct ks_wbuf w = { buf, 0, cap, 0 };
	const struct ks_meta *m = &r->m;
	unsigned i, ncidr = 0;

	put_bytes(&w, KS_REC_MAGIC, 4);
	put_u(&w, m->kind, 1);
	put_u(&w, m->state, 1);
	put_u(&w, m->flags, 4);
	put_u(&w, m->version, 4);
	put_u(&w, m->record_version, 8);
	put_u(&w, m->dek_version, 4);
	put_u(&w, m->root_version, 4);
	put_u(&w, (uint64_t)m->created_at, 8);
	put_u(&w, (uint64_t)m->not_before, 8);
	put_u(&w, (uint64_t)m->expires_at, 8);
	put_u(&w, (uint64_t)m->updated_at, 8);
	put_u(&w, (uint64_t)m->last_used, 8);
	put_str(&w, m->id, sizeof(m->id));
	put_str(&w, m->parent, sizeof(m->parent));
	put_str(&w, m->origin, sizeof(m->origin));
	put_str(&w, m->name, sizeof(m->name));
	put_str(&w, m->scope, sizeof(m->scope));
	put_str(&w, m->reason, sizeof(m->reason));
	put_str(&w, m->apikey_prefix, sizeof(m->apikey_prefix));
	put_str(&w, r->serial, sizeof(r->serial));
	for (i = 0; i < KS_CIDR_MAX; i++)
		ncidr += m->cidrs[i].family != 0;
	put_u(&w, ncidr, 1);
	for (i = 0; i < KS_CIDR_MAX; i++) {
		if (m->cidrs[i].family == 0)
			continue;
		put_u(&w, m->cidrs[i].family, 1);
		put_u(&w, m->cidrs[i].prefix, 1);
		put_bytes(&w, m->cidrs[i].addr, 16);
	}
	if (r->sealed_len > sizeof(r->sealed))
		return -EINVAL;
	put_u(&w, r->sealed_len, 2);
	put_bytes(&w, r->sealed, r->sealed_len);
	return finish(ks, &w, r->mac_version, db, key, len);
}

int
ks__rec_decode(struct ks *ks, unsigned db, const MDB_val *key,
    const MDB_val *val, struct ks__rec *r)
{
	struct ks_rbuf rb;
	struct ks_meta *m = &r->m;
	char magic[4];
	unsigned i, ncidr;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = check(ks, db, key, val, &rb, &r->mac_version);
	if (rc != 0)
		return rc;
	get_bytes(&rb, magic, 4);
	m->kind = (uint8_t)get_u(&rb, 1);
	m->state = (uint8_t)get_u(&rb, 1);
	m->flags = (uint32_t)get_u(&rb, 4);
	m->version = (uint32_t)get_u(&rb, 4);
	m->record_version = get_u(&rb, 8);
	m->dek_version = (uint32_t)get_u(&rb, 4);
	m->root_version = (uint32_t)get_u(&rb, 4);
	m->created_at = (int64_t)get_u(&rb, 8);
	m->not_before = (int64_t)get_u(&rb, 8);
	m->expires_at = (int64_t)get_u(&rb, 8);
	m->updated_at = (int64_t)get_u(&rb, 8);
	m->last_used = (int64_t)get_u(&rb, 8);
	get_str(&rb, m->id, sizeof(m->id));
	get_str(&rb, m->parent, sizeof(m->parent));
	get_str(&rb, m->origin, sizeof(m->origin));
	get_str(&rb, m->name, sizeof(m->name));
	get_str(&rb, m->scope, sizeof(m->scope));
	get_str(&rb, m->reason, sizeof(m->reason));
	get_str(&rb, m->apikey_prefix, sizeof(m->apikey_prefix));
	get_str(&rb, r->serial, sizeof(r->serial));
	ncidr = (unsigned)get_u(&rb, 1);
	if (ncidr > KS_CIDR_MAX)
		rb.bad = 1;
	for (i = 0; i < ncidr && !rb.bad; i++) {
		m->cidrs[i].family = (uint8_t)get_u(&rb, 1);
		m->cidrs[i].prefix = (uint8_t)get_u(&rb, 1);
		get_bytes(&rb, m->cidrs[i].addr, 16);
	}
	r->sealed_len = (uint32_t)get_u(&rb, 2);
	if (r->sealed_len > sizeof(r->sealed))
		rb.bad = 1;
	else
		get_bytes(&rb, r->sealed, r->sealed_len);
	/* A MAC-valid record that does not parse was written by a newer or
	 * broken format: still an integrity failure, never half-used. */
	if (rb.bad || rb.pos != rb.len || memcmp(magic, KS_REC_MAGIC, 4) != 0 ||
	    m->kind != db || m->state == 0 || m->state >= KS_STATE_COUNT ||
	    key->mv_size != KS_ID_LEN + 4 ||
	    memcmp(key->mv_data, m->id, KS_ID_LEN) != 0) {
		memset(r, 0, sizeof(*r));
		return KS_EINTEGRITY;
	}
	return 0;
}

int
ks__dek_encode(struct ks *ks, const struct ks__dek *d, uint8_t *buf, size_t cap,
    size_t *len)
{
	struct ks_wbuf w = { buf, 0, cap, 0 };
	uint8_t kb[4];
	MDB_val key = { 4, kb };

	kb[0] = (uint8_t)(d->version >> 24);
	kb[1] = (uint8_t)(d->version >> 16);
	kb[2] = (uint8_t)(d->version >> 8);
	kb[3] = (uint8_t)d->version;
	put_bytes(&w, KS_DEK_MAGIC, 4);
	put_u(&w, d->version, 4);
	put_u(&w, d->root_version, 4);
	put_u(&w, (uint64_t)d->created_at, 8);
	put_u(&w, d->uses, 8);
	put_u(&w, d->wrapped_len, 2);
	put_bytes(&w, d->wrapped, d->wrapped_len);
	return finish(ks, &w, d->mac_version, KS_DB_DEKS, &key, len);
}

int
ks__dek_decode(
    struct ks *ks, const MDB_val *key, const MDB_val *val, struct ks__dek *d)
{
	struct ks_rbuf rb;
	char magic[4];
	int rc;

	memset(d, 0, sizeof(*d));
	rc = check(ks, KS_DB_DEKS, key, val, &rb, &d->mac_version);
	if (rc != 0)
		return rc;
	get_bytes(&rb, magic, 4);
	d->version = (uint32_t)get_u(&rb, 4);
	d->root_version = (uint32_t)get_u(&rb, 4);
	d->created_at = (int64_t)get_u(&rb, 8);
	d->uses = get_u(&rb, 8);
	d->wrapped_len = (uint32_t)get_u(&rb, 2);
	if (d->wrapped_len != sizeof(d->wrapped))
		rb.bad = 1;
	else
		get_bytes(&rb, d->wrapped, d->wrapped_len);
	if (rb.bad || rb.pos != rb.len || memcmp(magic, KS_DEK_MAGIC, 4) != 0) {
		memset(d, 0, sizeof(*d));
		return KS_EINTEGRITY;
	}
	return 0;
}

/* The names of a record's kind and state, as the API and tools print them. */
const char *
ks_kind_name(unsigned kind)
{
	static const char *const names[KS_KIND_COUNT] = { "?", "app", "user",
		"device", "signing", "data", "apikey" };

	return kind < KS_KIND_COUNT ? names[kind] : "?";
}

const char *
ks_state_name(unsigned state)
{
	static const char *const names[KS_STATE_COUNT] = { "?", "pre-active",
		"active", "suspended", "revoked", "destroyed" };

	return state < KS_STATE_COUNT ? names[state] : "?";
}
