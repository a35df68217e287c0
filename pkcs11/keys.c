/*
 * pkcs11/keys.c: creating, importing, finding and destroying key objects,
 * and the key references that find their handle again after recovery.
 *
 * Token keys are always private, sensitive and (unless a ceremony asks)
 * non-extractable; this file must never create a token key that can leave
 * the HSM in plaintext, and never hand a raw object handle to a caller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11/internal.h"

/* DER of the named curve prime256v1 (1.2.840.10045.3.1.7). */
static const unsigned char p11_p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48,
	0xce, 0x3d, 0x03, 0x01, 0x07 };

struct p11_tmpl {
	CK_ATTRIBUTE a[24];
	CK_ULONG n;
};

static CK_BBOOL p11_true = CK_TRUE, p11_false = CK_FALSE;

static void
p11_tmpl_add(
    struct p11_tmpl *t, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
	t->a[t->n].type = type;
	t->a[t->n].pValue = (void *)(uintptr_t)value;
	t->a[t->n].ulValueLen = len;
	t->n++;
}

static void
p11_tmpl_bool(struct p11_tmpl *t, CK_ATTRIBUTE_TYPE type, int on)
{
	p11_tmpl_add(t, type, on ? &p11_true : &p11_false, sizeof(CK_BBOOL));
}

static void
p11_tmpl_name(struct p11_tmpl *t, const struct p11_key *key)
{
	if (key->has_label)
		p11_tmpl_add(t, CKA_LABEL, key->label, strlen(key->label));
	if (key->id_len > 0)
		p11_tmpl_add(t, CKA_ID, key->id, key->id_len);
}

static int
p11_key_new(enum p11_key_kind kind, const char *label, const void *id,
    size_t id_len, int token, struct p11_key **out)
{
	struct p11_key *key;

	*out = NULL;
	if ((unsigned)kind > P11_KEY_EC_P256 || id_len > P11_URI_ID_MAX ||
	    (id == NULL && id_len > 0))
		return -EINVAL;
	if (label != NULL &&
	    (label[0] == '\0' || strlen(label) > P11_URI_OBJECT_MAX))
		return -EINVAL;
	if (label == NULL && id_len == 0)
		return -EINVAL;
	key = calloc(1, sizeof(*key));
	if (key == NULL)
		return -ENOMEM;
	key->kind = kind;
	if (label != NULL) {
		strcpy(key->label, label);
		key->has_label = 1;
	}
	if (id_len > 0)
		memcpy(key->id, id, id_len);
	key->id_len = id_len;
	key->token = token;
	pthread_mutex_init(&key->lock, NULL);
	*out = key;
	return 0;
}

void
p11_key_free(struct p11_key *key)
{
	if (key == NULL)
		return;
	pthread_mutex_destroy(&key->lock);
	free(key);
}

const char *
p11_key_label(const struct p11_key *key)
{
	return key->label;
}

static void
p11_class_of(enum p11_key_kind kind, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *type)
{
	switch (kind) {
	case P11_KEY_AES:
		*cls = CKO_SECRET_KEY;
		*type = CKK_AES;
		break;
	case P11_KEY_HMAC:
		*cls = CKO_SECRET_KEY;
		*type = CKK_GENERIC_SECRET;
		break;
	default:
		*cls = CKO_PRIVATE_KEY;
		*type = CKK_EC;
		break;
	}
}

/*
 * Find exactly one object of @p cls matching the key's kind, label and id.
 * Returns 0, P11_ENOTFOUND or P11_EAMBIGUOUS; on a PKCS#11 failure returns 1
 * with *rv set so the caller can hand it to p11__op_end.
 */
int
p11__find_one(struct p11__op *op, CK_OBJECT_CLASS cls,
    const struct p11_key *key, CK_OBJECT_HANDLE *out, CK_RV *rv)
{
	CK_FUNCTION_LIST_PTR f = op->ctx->f;
	CK_SESSION_HANDLE h = op->s->handle;
	CK_OBJECT_HANDLE found[2];
	CK_OBJECT_CLASS kcls;
	CK_KEY_TYPE type;
	struct p11_tmpl t = { .n = 0 };
	CK_ULONG n = 0;

	p11_class_of(key->kind, &kcls, &type);
	p11_tmpl_add(&t, CKA_CLASS, &cls, sizeof(cls));
	p11_tmpl_add(&t, CKA_KEY_TYPE, &type, sizeof(type));
	p11_tmpl_name(&t, key);
	*rv = f->C_FindObjectsInit(h, t.a, t.n);
	if (*rv != CKR_OK)
		return 1;
	*rv = f->C_FindObjects(h, found, 2, &n);
	if (*rv != CKR_OK)
		return 1;
	*rv = f->C_FindObjectsFinal(h);
	if (*rv != CKR_OK)
		return 1;
	if (n == 0)
		return P11_ENOTFOUND;
	if (n > 1)
		return P11_EAMBIGUOUS;
	*out = found[0];
	return 0;
}

/*
 * The key's current handle, found again by label and id when the module
 * was re-initialised since it was last found. Same return convention as
 * p11__find_one.
 */
int
p11__key_handle(
    struct p11__op *op, struct p11_key *key, CK_OBJECT_HANDLE *out, CK_RV *rv)
{
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE type;
	CK_OBJECT_HANDLE h;
	int rc = 0;

	*rv = CKR_OK;
	pthread_mutex_lock(&key->lock);
	if (key->epoch == op->epoch && key->handle != CK_INVALID_HANDLE) {
		*out = key->handle;
		goto out;
	}
	if (!key->token && key->epoch != 0) {
		/* Session objects died with the sessions at re-init. */
		rc = P11_ENOTFOUND;
		goto out;
	}
	p11_class_of(key->kind, &cls, &type);
	rc = p11__find_one(op, cls, key, &h, rv);
	if (rc == 0) {
		key->handle = h;
		key->pub = CK_INVALID_HANDLE;
		key->epoch = op->epoch;
		*out = h;
	}
out:
	pthread_mutex_unlock(&key->lock);
	return rc;
}

/* Forget a handle the module called invalid, so the next use finds it. */
void
p11__key_invalidate(struct p11_key *key, CK_RV rv)
{
	if (rv != CKR_OBJECT_HANDLE_INVALID && rv != CKR_KEY_HANDLE_INVALID &&
	    rv != CKR_WRAPPING_KEY_HANDLE_INVALID &&
	    rv != CKR_UNWRAPPING_KEY_HANDLE_INVALID)
		return;
	pthread_mutex_lock(&key->lock);
	if (key->token)
		key->handle = CK_INVALID_HANDLE;
	pthread_mutex_unlock(&key->lock);
}

/* Fill the private/secret template of a new key. */
static void
p11_tmpl_key(struct p11_tmpl *t, struct p11_ctx *ctx, struct p11_key *key,
    unsigned flags, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *type)
{
	p11_class_of(key->kind, cls, type);
	p11_tmpl_add(t, CKA_CLASS, cls, sizeof(*cls));
	p11_tmpl_add(t, CKA_KEY_TYPE, type, sizeof(*type));
	p11_tmpl_bool(t, CKA_TOKEN, flags & P11_KEY_TOKEN);
	/* Token keys are always private; session keys are private when we
	 * are logged in (a module used without login, such as NSS softokn's
	 * crypto token, cannot make private objects). */
	p11_tmpl_bool(t, CKA_PRIVATE, ctx->login || (flags & P11_KEY_TOKEN));
	p11_tmpl_bool(t, CKA_SENSITIVE, 1);
	p11_tmpl_bool(t, CKA_EXTRACTABLE, flags & P11_KEY_EXTRACTABLE);
	p11_tmpl_bool(t, CKA_DERIVE, flags & P11_KEY_DERIVE);
	/* Every use is stated: modules differ in their defaults (SoftHSM2
	 * lets a secret key encrypt, decrypt, wrap and unwrap unless told
	 * otherwise), and a key should do one job. */
	p11_tmpl_bool(t, CKA_UNWRAP, key->kind == P11_KEY_AES);
	p11_tmpl_bool(t, CKA_SIGN, key->kind != P11_KEY_AES);
	p11_tmpl_bool(t, CKA_DECRYPT, 0);
	/* Private keys have no wrap, encrypt or verify attributes. */
	if (key->kind != P11_KEY_EC_P256) {
		p11_tmpl_bool(t, CKA_WRAP, key->kind == P11_KEY_AES);
		p11_tmpl_bool(t, CKA_ENCRYPT, 0);
		p11_tmpl_bool(t, CKA_VERIFY, key->kind == P11_KEY_HMAC);
	}
	p11_tmpl_name(t, key);
}

/*
 * Create a key by generation (value == NULL) or import. Session objects are
 * made on the anchor session, which recovery alone ever closes, so a failed
 * operation elsewhere cannot take them with it.
 */
struct p11_derive {
	struct p11_key *base;
	CK_MECHANISM mech;
};

static int
p11_key_create(struct p11_ctx *ctx, struct p11_key *key, unsigned flags,
    size_t len, const void *value, const struct p11_derive *derive)
{
	struct p11_tmpl priv = { .n = 0 }, pub = { .n = 0 };
	CK_OBJECT_CLASS cls, pubcls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE type;
	CK_ULONG vlen = len;
	CK_MECHANISM m = { 0, NULL, 0 };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, hpub = CK_INVALID_HANDLE, x;
	CK_OBJECT_HANDLE base = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE sh;
	struct p11__op op;
	CK_RV rv = CKR_OK;
	int rc, anchor = !(flags & P11_KEY_TOKEN);

	p11_tmpl_key(&priv, ctx, key, flags, &cls, &type);
	if (value != NULL)
		p11_tmpl_add(&priv, CKA_VALUE, value, len);
	else if (key->kind != P11_KEY_EC_P256)
		p11_tmpl_add(&priv, CKA_VALUE_LEN, &vlen, sizeof(vlen));
	if (key->kind == P11_KEY_EC_P256) {
		m.mechanism = CKM_EC_KEY_PAIR_GEN;
		p11_tmpl_add(&pub, CKA_CLASS, &pubcls, sizeof(pubcls));
		p11_tmpl_add(&pub, CKA_KEY_TYPE, &type, sizeof(type));
		p11_tmpl_bool(&pub, CKA_TOKEN, flags & P11_KEY_TOKEN);
		p11_tmpl_bool(&pub, CKA_PRIVATE, 0);
		p11_tmpl_bool(&pub, CKA_VERIFY, 1);
		p11_tmpl_bool(&pub, CKA_ENCRYPT, 0);
		p11_tmpl_bool(&pub, CKA_WRAP, 0);
		p11_tmpl_bool(&pub, CKA_DERIVE, 0);
		p11_tmpl_add(
		    &pub, CKA_EC_PARAMS, p11_p256_oid, sizeof(p11_p256_oid));
		p11_tmpl_name(&pub, key);
	} else {
		m.mechanism = key->kind == P11_KEY_AES
		    ? CKM_AES_KEY_GEN
		    : CKM_GENERIC_SECRET_KEY_GEN;
	}

	if (!anchor && !ctx->login)
		return P11_EPIN; /* a private token key needs a login */
	rc = p11__op_begin(ctx, &op);
	if (rc != 0)
		return rc;
	if (!anchor) {
		/* Refuse a second token key under the same name. */
		rc = p11__find_one(&op, cls, key, &x, &rv);
		if (rc == 1)
			return p11__op_end(&op, rv);
		if (rc == 0 || rc == P11_EAMBIGUOUS) {
			p11__op_end(&op, CKR_OK);
			return P11_EEXISTS;
		}
	}
	if (derive != NULL) {
		rc = p11__key_handle(&op, derive->base, &base, &rv);
		if (rc == 1)
			return p11__op_end(&op, rv);
		if (rc != 0) {
			p11__op_end(&op, CKR_OK);
			return rc;
		}
	}
	sh = anchor ? ctx->anchor : op.s->handle;
	if (anchor)
		pthread_mutex_lock(&ctx->anchor_lock);
	if (derive != NULL)
		rv = ctx->f->C_DeriveKey(sh, (CK_MECHANISM_PTR)&derive->mech,
		    base, priv.a, priv.n, &h);
	else if (value != NULL)
		rv = ctx->f->C_CreateObject(sh, priv.a, priv.n, &h);
	else if (key->kind == P11_KEY_EC_P256)
		rv = ctx->f->C_GenerateKeyPair(
		    sh, &m, pub.a, pub.n, priv.a, priv.n, &hpub, &h);
	else
		rv = ctx->f->C_GenerateKey(sh, &m, priv.a, priv.n, &h);
	if (anchor)
		pthread_mutex_unlock(&ctx->anchor_lock);
	/* The anchor is never reset by a session fault; losing it needs a
	 * full re-initialisation. */
	if (anchor && p11__rv_is_session_loss(rv))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		key->handle = h;
		key->pub = hpub;
		key->epoch = op.epoch;
	}
	if (derive != NULL)
		p11__key_invalidate(derive->base, rv);
	return p11__op_end(&op, rv);
}

static int
p11_check_len(enum p11_key_kind kind, size_t len)
{
	if (kind == P11_KEY_AES && len != 16 && len != 24 && len != 32)
		return P11_EKEY;
	if (kind == P11_KEY_HMAC && (len < 32 || len > 64))
		return P11_EKEY;
	return 0;
}

int
p11_key_generate(struct p11_ctx *ctx, enum p11_key_kind kind, const char *label,
    const void *id, size_t id_len, size_t len, unsigned flags,
    struct p11_key **out)
{
	struct p11_key *key;
	int rc;

	rc = p11_check_len(kind, kind == P11_KEY_EC_P256 ? 32 : len);
	if (rc != 0)
		return rc;
	rc = p11_key_new(kind, label, id, id_len, flags & P11_KEY_TOKEN, &key);
	if (rc != 0)
		return rc;
	rc = p11_key_create(ctx, key, flags, len, NULL, NULL);
	if (rc != 0) {
		p11_key_free(key);
		return rc;
	}
	*out = key;
	return 0;
}

int
p11_key_import(struct p11_ctx *ctx, enum p11_key_kind kind, const char *label,
    const void *id, size_t id_len, const void *value, size_t value_len,
    unsigned flags, struct p11_key **out)
{
	struct p11_key *key;
	int rc;

	if (kind == P11_KEY_EC_P256 || value == NULL)
		return -EINVAL;
	/* HMAC keys of DPS groups may be 16..64 bytes; the module decides. */
	if (kind == P11_KEY_AES && (rc = p11_check_len(kind, value_len)) != 0)
		return rc;
	rc = p11_key_new(kind, label, id, id_len, flags & P11_KEY_TOKEN, &key);
	if (rc != 0)
		return rc;
	rc = p11_key_create(ctx, key, flags, value_len, value, NULL);
	if (rc != 0) {
		p11_key_free(key);
		return rc;
	}
	*out = key;
	return 0;
}

int
p11_key_derive_sp800_108(struct p11_ctx *ctx, struct p11_key *base,
    const void *label, size_t label_len, const void *context,
    size_t context_len, enum p11_key_kind kind, const char *new_label,
    size_t len, unsigned flags, struct p11_key **out)
{
	/* PKCS#11 3.0 CK_SP800_108_KDF_PARAMS: a 32-bit big-endian counter,
	 * Label || 0x00 || Context as one byte array, then [L] in bits. */
	struct p11__counter_format ctr = { CK_FALSE, 32 };
	struct p11__dkm_length_format dkm = {
		P11__SP800_108_DKM_LENGTH_SUM_OF_KEYS, CK_FALSE, 32
	};
	uint8_t fixed[255 + 1 + 255];
	struct p11__prf_data_param dp[3];
	struct p11__sp800_108_params params;
	struct p11_derive derive;
	struct p11_key *key;
	int rc;

	*out = NULL;
	if (base == NULL || base->kind != P11_KEY_HMAC || label_len > 255 ||
	    context_len > 255 || (label == NULL && label_len > 0) ||
	    (context == NULL && context_len > 0) || kind == P11_KEY_EC_P256)
		return -EINVAL;
	if (!p11_has_mech(ctx, P11_MECH_SP800_108_COUNTER_KDF))
		return P11_EMECH;
	rc = p11_check_len(kind, len);
	if (rc != 0)
		return rc;
	if (label_len > 0)
		memcpy(fixed, label, label_len);
	fixed[label_len] = 0;
	if (context_len > 0)
		memcpy(fixed + label_len + 1, context, context_len);
	dp[0] = (struct p11__prf_data_param){ P11__SP800_108_ITERATION_VARIABLE,
		&ctr, sizeof(ctr) };
	dp[1] = (struct p11__prf_data_param){ P11__SP800_108_BYTE_ARRAY, fixed,
		label_len + 1 + context_len };
	dp[2] = (struct p11__prf_data_param){ P11__SP800_108_DKM_LENGTH, &dkm,
		sizeof(dkm) };
	params =
	    (struct p11__sp800_108_params){ CKM_SHA256_HMAC, 3, dp, 0, NULL };
	derive.base = base;
	derive.mech.mechanism = CKM_SP800_108_COUNTER_KDF;
	derive.mech.pParameter = &params;
	derive.mech.ulParameterLen = sizeof(params);
	rc = p11_key_new(kind, new_label, NULL, 0, flags & P11_KEY_TOKEN, &key);
	if (rc != 0)
		return rc;
	rc = p11_key_create(ctx, key, flags, len, NULL, &derive);
	if (rc != 0) {
		p11_key_free(key);
		return rc;
	}
	*out = key;
	return 0;
}

int
p11_key_find(struct p11_ctx *ctx, enum p11_key_kind kind, const char *label,
    const void *id, size_t id_len, struct p11_key **out)
{
	struct p11_key *key;
	struct p11__op op;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int rc;

	rc = p11_key_new(kind, label, id, id_len, 1, &key);
	if (rc != 0)
		return rc;
	rc = p11__op_begin(ctx, &op);
	if (rc != 0)
		goto bad;
	rc = p11__key_handle(&op, key, &h, &rv);
	if (rc == 1) {
		rc = p11__op_end(&op, rv);
		goto bad;
	}
	p11__op_end(&op, CKR_OK);
	if (rc != 0)
		goto bad;
	*out = key;
	return 0;
bad:
	p11_key_free(key);
	return rc;
}

int
p11_key_find_uri(struct p11_ctx *ctx, enum p11_key_kind kind, const char *uri,
    struct p11_key **out, char err[P11_URI_ERR_MAX])
{
	struct p11_uri u;
	int rc;

	*out = NULL;
	rc = p11_uri_parse(uri, &u, err);
	if (rc != 0)
		return rc;
	if ((u.type == P11_TYPE_SECRET_KEY && kind == P11_KEY_EC_P256) ||
	    (u.type == P11_TYPE_PRIVATE && kind != P11_KEY_EC_P256) ||
	    (u.type != P11_TYPE_ANY && u.type != P11_TYPE_SECRET_KEY &&
	        u.type != P11_TYPE_PRIVATE)) {
		if (err != NULL)
			strcpy(err, "attribute 'type': does not name this key");
		rc = P11_EURI;
	} else if (!u.object[0] && !u.has_id) {
		if (err != NULL)
			strcpy(err, "the URI names no object= or id=");
		rc = P11_EURI;
	} else {
		rc = p11_key_find(ctx, kind, u.object[0] ? u.object : NULL,
		    u.id, u.id_len, out);
	}
	p11_uri_clear(&u);
	return rc;
}

int
p11_key_destroy(struct p11_ctx *ctx, struct p11_key *key)
{
	struct p11__op op;
	CK_OBJECT_HANDLE h, hpub;
	CK_RV rv;
	int rc;

	rc = p11__op_begin(ctx, &op);
	if (rc != 0)
		return rc;
	rc = p11__key_handle(&op, key, &h, &rv);
	if (rc == 1)
		return p11__op_end(&op, rv);
	if (rc != 0) {
		p11__op_end(&op, CKR_OK);
		return rc;
	}
	if (key->kind == P11_KEY_EC_P256) {
		rc = p11__find_one(&op, CKO_PUBLIC_KEY, key, &hpub, &rv);
		if (rc == 1)
			return p11__op_end(&op, rv);
		if (rc == 0) {
			rv = ctx->f->C_DestroyObject(op.s->handle, hpub);
			if (rv != CKR_OK)
				return p11__op_end(&op, rv);
		}
	}
	rv = ctx->f->C_DestroyObject(op.s->handle, h);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&key->lock);
		key->handle = CK_INVALID_HANDLE;
		key->epoch = 0;
		pthread_mutex_unlock(&key->lock);
	}
	p11__key_invalidate(key, rv);
	return p11__op_end(&op, rv);
}
