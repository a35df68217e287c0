/*
 * pkcs11/ops.c: the operations the keystore needs: HMAC-SHA256, the
 * SP 800-108 counter KDF, ECDSA P-256 in raw r||s form, reading an EC
 * public key, RFC 3394 wrap and unwrap, and random bytes.
 *
 * Every call runs on one pooled session between p11__op_begin and
 * p11__op_end, which owns recovery. This file must never use
 * CKM_AES_KEY_WRAP_PAD (SoftHSM2 2.6.1 zero-pads before RFC 5649) and must
 * never leave plaintext key material in a token object or an unwiped buffer.
 */
#include <errno.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "pkcs11/internal.h"

#define P11_KDF_MAX 1024
#define P11_WRAP_MAX 512
#define P11_RANDOM_MAX 65536

/* Begin an operation and resolve the key's handle; on failure the op is
 * already ended and the error returned. */
static int
p11_op_key(struct p11_ctx *ctx, struct p11_key *key, enum p11_key_kind kind,
    struct p11__op *op, CK_OBJECT_HANDLE *h)
{
	CK_RV rv;
	int rc;

	if (key == NULL || key->kind != kind)
		return -EINVAL;
	rc = p11__op_begin(ctx, op);
	if (rc != 0)
		return rc;
	rc = p11__key_handle(op, key, h, &rv);
	if (rc == 1)
		return p11__op_end(op, rv);
	if (rc != 0)
		p11__op_end(op, CKR_OK);
	return rc;
}

static int
p11_op_done(struct p11__op *op, struct p11_key *key, CK_RV rv)
{
	if (key != NULL)
		p11__key_invalidate(key, rv);
	return p11__op_end(op, rv);
}

static CK_RV
p11_sign(struct p11__op *op, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE h,
    const void *msg, size_t len, uint8_t *sig, CK_ULONG *siglen)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_FUNCTION_LIST_PTR f = op->ctx->f;
	CK_RV rv;

	rv = f->C_SignInit(op->s->handle, &m, h);
	if (rv != CKR_OK)
		return rv;
	return f->C_Sign(
	    op->s->handle, (CK_BYTE_PTR)(uintptr_t)msg, len, sig, siglen);
}

int
p11_hmac_sha256(struct p11_ctx *ctx, struct p11_key *key, const void *msg,
    size_t msg_len, uint8_t mac[static 32])
{
	struct p11__op op;
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 32;
	CK_RV rv;
	int rc;

	if (msg == NULL && msg_len > 0)
		return -EINVAL;
	rc = p11_op_key(ctx, key, P11_KEY_HMAC, &op, &h);
	if (rc != 0)
		return rc;
	rv = p11_sign(&op, CKM_SHA256_HMAC, h, msg, msg_len, mac, &n);
	if (rv == CKR_OK && n != 32)
		rv = CKR_GENERAL_ERROR;
	return p11_op_done(&op, key, rv);
}

static void
p11_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
p11_kdf_sp800_108(struct p11_ctx *ctx, struct p11_key *key, const void *label,
    size_t label_len, const void *context, size_t context_len, uint8_t *out,
    size_t out_len)
{
	/* [i] || Label || 0x00 || Context || [L], labels and contexts of at
	 * most 255 bytes each. */
	uint8_t in[4 + 255 + 1 + 255 + 4], block[32];
	struct p11__op op;
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	CK_RV rv = CKR_OK;
	size_t pos, done, take;
	uint32_t i;
	int rc;

	if (out == NULL || out_len == 0 || out_len > P11_KDF_MAX ||
	    label_len > 255 || context_len > 255 ||
	    (label == NULL && label_len > 0) ||
	    (context == NULL && context_len > 0))
		return -EINVAL;
	rc = p11_op_key(ctx, key, P11_KEY_HMAC, &op, &h);
	if (rc != 0)
		return rc;
	pos = 4;
	memcpy(in + pos, label, label_len);
	pos += label_len;
	in[pos++] = 0;
	memcpy(in + pos, context, context_len);
	pos += context_len;
	p11_be32(in + pos, (uint32_t)(out_len * 8));
	pos += 4;
	for (i = 1, done = 0; done < out_len; i++) {
		p11_be32(in, i);
		n = sizeof(block);
		rv = p11_sign(&op, CKM_SHA256_HMAC, h, in, pos, block, &n);
		if (rv != CKR_OK)
			break;
		take = out_len - done < 32 ? out_len - done : 32;
		memcpy(out + done, block, take);
		done += take;
	}
	sr_wipe(block, sizeof(block));
	if (rv != CKR_OK)
		sr_wipe(out, out_len);
	return p11_op_done(&op, key, rv);
}

int
p11_ecdsa_p256_sign(struct p11_ctx *ctx, struct p11_key *key, const void *msg,
    size_t msg_len, uint8_t sig[static 64])
{
	uint8_t digest[32];
	struct p11__op op;
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 64;
	CK_RV rv;
	int rc;

	if (msg == NULL && msg_len > 0)
		return -EINVAL;
	rc = p11_op_key(ctx, key, P11_KEY_EC_P256, &op, &h);
	if (rc != 0)
		return rc;
	if (p11_has_mech(ctx, P11_MECH_ECDSA_SHA256)) {
		rv = p11_sign(&op, CKM_ECDSA_SHA256, h, msg, msg_len, sig, &n);
	} else {
		/* SoftHSM2 2.6.1 has only raw CKM_ECDSA: hash here. */
		if (mbedtls_sha256(msg, msg_len, digest, 0) != 0) {
			p11__op_end(&op, CKR_OK);
			return P11_EGENERAL;
		}
		rv = p11_sign(
		    &op, CKM_ECDSA, h, digest, sizeof(digest), sig, &n);
	}
	/* PKCS#11 returns r||s, each padded to the field size: JWS form. */
	if (rv == CKR_OK && n != 64)
		rv = CKR_GENERAL_ERROR;
	return p11_op_done(&op, key, rv);
}

int
p11_ecdsa_p256_sign_digest(struct p11_ctx *ctx, struct p11_key *key,
    const uint8_t digest[static 32], uint8_t sig[static 64])
{
	struct p11__op op;
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 64;
	CK_RV rv;
	int rc;

	rc = p11_op_key(ctx, key, P11_KEY_EC_P256, &op, &h);
	if (rc != 0)
		return rc;
	rv = p11_sign(&op, CKM_ECDSA, h, digest, 32, sig, &n);
	if (rv == CKR_OK && n != 64)
		rv = CKR_GENERAL_ERROR;
	return p11_op_done(&op, key, rv);
}

int
p11_ec_public_get(
    struct p11_ctx *ctx, struct p11_key *key, uint8_t point[static 65])
{
	uint8_t der[80];
	CK_ATTRIBUTE a = { CKA_EC_POINT, der, sizeof(der) };
	struct p11__op op;
	CK_OBJECT_HANDLE h, pub;
	CK_RV rv;
	int rc;

	rc = p11_op_key(ctx, key, P11_KEY_EC_P256, &op, &h);
	if (rc != 0)
		return rc;
	rc = p11__find_one(&op, CKO_PUBLIC_KEY, key, &pub, &rv);
	if (rc == 1)
		return p11_op_done(&op, key, rv);
	if (rc != 0) {
		p11__op_end(&op, CKR_OK);
		return rc;
	}
	rv = op.ctx->f->C_GetAttributeValue(op.s->handle, pub, &a, 1);
	if (rv == CKR_OK) {
		/* CKA_EC_POINT is a DER OCTET STRING around 04||X||Y; some
		 * modules return the bare point. */
		if (a.ulValueLen == 67 && der[0] == 0x04 && der[1] == 65 &&
		    der[2] == 0x04)
			memcpy(point, der + 2, 65);
		else if (a.ulValueLen == 65 && der[0] == 0x04)
			memcpy(point, der, 65);
		else
			rc = P11_EKEY;
	}
	if (rc != 0) {
		p11__op_end(&op, CKR_OK);
		return rc;
	}
	return p11_op_done(&op, key, rv);
}

int
p11_wrap(struct p11_ctx *ctx, struct p11_key *kek, const void *plain,
    size_t len, uint8_t *blob, size_t blob_cap, size_t *blob_len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
		{ CKA_VALUE, (void *)(uintptr_t)plain, len },
	};
	CK_MECHANISM m = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_OBJECT_HANDLE h, tmp = CK_INVALID_HANDLE;
	CK_ULONG n = blob_cap;
	struct p11__op op;
	CK_RV rv;
	int rc;

	if (plain == NULL || blob == NULL || blob_len == NULL || len % 8 != 0 ||
	    len < 16 || len > P11_WRAP_MAX)
		return -EINVAL;
	if (blob_cap < len + 8)
		return -ENOSPC;
	rc = p11_op_key(ctx, kek, P11_KEY_AES, &op, &h);
	if (rc != 0)
		return rc;
	rv = ctx->f->C_CreateObject(op.s->handle, t, 6, &tmp);
	if (rv == CKR_OK) {
		rv = ctx->f->C_WrapKey(op.s->handle, &m, h, tmp, blob, &n);
		/* On failure the session reset destroys tmp as well. */
		if (ctx->f->C_DestroyObject(op.s->handle, tmp) != CKR_OK &&
		    rv == CKR_OK)
			rv = CKR_GENERAL_ERROR;
	}
	if (rv == CKR_OK)
		*blob_len = n;
	return p11_op_done(&op, kek, rv);
}

int
p11_unwrap(struct p11_ctx *ctx, struct p11_key *kek, const void *blob,
    size_t blob_len, struct sr_secret *out)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_SENSITIVE, &no, sizeof(no) },
		{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
	};
	CK_MECHANISM m = { CKM_AES_KEY_WRAP, NULL, 0 };
	CK_OBJECT_HANDLE h, tmp = CK_INVALID_HANDLE;
	CK_ATTRIBUTE get = { CKA_VALUE, NULL, 0 };
	struct p11__op op;
	CK_RV rv, rv2;
	int rc, integrity;

	if (blob == NULL || out == NULL || blob_len % 8 != 0 || blob_len < 24 ||
	    blob_len > P11_WRAP_MAX + 8)
		return -EINVAL;
	rc = sr_secret_alloc(out, blob_len - 8);
	if (rc != 0)
		return rc;
	rc = p11_op_key(ctx, kek, P11_KEY_AES, &op, &h);
	if (rc != 0) {
		sr_secret_free(out);
		return rc;
	}
	rv = ctx->f->C_UnwrapKey(op.s->handle, &m, h,
	    (CK_BYTE_PTR)(uintptr_t)blob, blob_len, t, 5, &tmp);
	/* SoftHSM2 2.6.1 reports a failed RFC 3394 integrity check as
	 * CKR_GENERAL_ERROR; a device fault would be CKR_DEVICE_ERROR. */
	integrity = rv == CKR_GENERAL_ERROR && ctx->softhsm;
	if (rv == CKR_OK) {
		get.pValue = sr_secret_bytes(out);
		get.ulValueLen = sr_secret_len(out);
		rv = ctx->f->C_GetAttributeValue(op.s->handle, tmp, &get, 1);
		if (rv == CKR_OK && get.ulValueLen != sr_secret_len(out))
			rv = CKR_GENERAL_ERROR;
		rv2 = ctx->f->C_DestroyObject(op.s->handle, tmp);
		if (rv == CKR_OK)
			rv = rv2;
	}
	rc = p11_op_done(&op, kek, rv);
	if (rc == P11_EGENERAL && integrity)
		rc = P11_EINTEGRITY;
	if (rc != 0)
		sr_secret_free(out);
	return rc;
}

int
p11_random(struct p11_ctx *ctx, void *buf, size_t len)
{
	struct p11__op op;
	CK_RV rv;
	int rc;

	if (buf == NULL || len == 0 || len > P11_RANDOM_MAX)
		return -EINVAL;
	rc = p11__op_begin(ctx, &op);
	if (rc != 0)
		return rc;
	rv = ctx->f->C_GenerateRandom(op.s->handle, buf, len);
	return p11__op_end(&op, rv);
}
