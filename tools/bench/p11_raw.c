/*
 * tools/bench/p11_raw.c: the anchor of the pkcs11 benchmark: tight calls of
 * the very PKCS#11 work the layer does per operation, made straight on the
 * module's function list. It is the one place outside pkcs11/ allowed to
 * call C_* functions, because it is what the layer is measured against; it
 * must never C_Finalize the module the layer holds, nor add work per call
 * that the layer does not do.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <p11-kit/pkcs11.h>

#include "pkcs11/p11.h"
#include "tools/bench/p11_raw.h"

#define P11_RAW_EHOST (~0UL) /* a failure outside the module */
#define P11_RAW_PIN_MAX 256

struct p11_raw {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int owns_init; /* we, not the layer, initialised the module */
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE *sess;
	unsigned nsess;
	CK_OBJECT_HANDLE kek, kdk, sign;
};

static unsigned long
p11_raw_fail(char *err, const char *what, CK_RV rv)
{
	snprintf(err, 256, "%s: %s", what, p11_rv_name(rv));
	return rv;
}

/* Compare a blank-padded CK_TOKEN_INFO field with a string. */
static int
p11_raw_field_eq(const unsigned char *field, size_t flen, const char *want)
{
	size_t n = strlen(want);

	while (flen > 0 && (field[flen - 1] == ' ' || field[flen - 1] == '\0'))
		flen--;
	return n == flen && memcmp(field, want, n) == 0;
}

static unsigned long
p11_raw_find_slot(struct p11_raw *r, const char *label, char *err)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	rv = r->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK)
		return p11_raw_fail(err, "C_GetSlotList", rv);
	for (i = 0; i < n; i++) {
		if (r->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (p11_raw_field_eq(ti.label, sizeof(ti.label), label)) {
			r->slot = slots[i];
			return 0;
		}
	}
	snprintf(err, 256, "no token labelled '%s'", label);
	return P11_RAW_EHOST;
}

static unsigned long
p11_raw_login(struct p11_raw *r, const struct p11_uri *u, char *err)
{
	struct sr_secret pin = { 0 };
	const char *path = u->pin_source;
	CK_RV rv;
	int rc;

	if (sr_secret_len(&u->pin_value) > 0) {
		rc = sr_secret_set(&pin, sr_secret_bytes(&u->pin_value),
		    sr_secret_len(&u->pin_value));
	} else if (path[0] != '\0') {
		if (strncmp(path, "file:", 5) == 0)
			path += 5;
		rc = sr_secret_read_file(&pin, path, P11_RAW_PIN_MAX);
	} else {
		return 0; /* the URI asks for no login */
	}
	if (rc != 0) {
		snprintf(err, 256, "reading the PIN: %s", sr_strerror(rc));
		return P11_RAW_EHOST;
	}
	/* Login is per application: the layer has usually done it. */
	rv = r->f->C_Login(
	    r->sess[0], CKU_USER, sr_secret_bytes(&pin), sr_secret_len(&pin));
	sr_secret_free(&pin);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		return p11_raw_fail(err, "C_Login", rv);
	return 0;
}

/* The same search template the layer uses: class, key type, label. */
static unsigned long
p11_raw_find_key(struct p11_raw *r, CK_OBJECT_CLASS cls, CK_KEY_TYPE type,
    const char *label, CK_OBJECT_HANDLE *out, char *err)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &type, sizeof(type) },
		{ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) },
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_RV rv;

	rv = r->f->C_FindObjectsInit(r->sess[0], t, 3);
	if (rv != CKR_OK)
		return p11_raw_fail(err, "C_FindObjectsInit", rv);
	rv = r->f->C_FindObjects(r->sess[0], found, 2, &n);
	r->f->C_FindObjectsFinal(r->sess[0]);
	if (rv != CKR_OK)
		return p11_raw_fail(err, "C_FindObjects", rv);
	if (n != 1) {
		snprintf(err, 256, "%lu keys labelled '%s'", (unsigned long)n,
		    label);
		return P11_RAW_EHOST;
	}
	*out = found[0];
	return 0;
}

static unsigned long
p11_raw_attach(struct p11_raw *r, const struct p11_uri *u, unsigned nsess,
    const struct p11_raw_keys *keys, char *err)
{
	CK_RV (*getlist)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	unsigned i;

	/* The same path gives the same loaded module as the layer's. */
	r->dl = dlopen(u->module_path, RTLD_NOW | RTLD_LOCAL);
	if (r->dl == NULL) {
		snprintf(err, 256, "dlopen %s: %s", u->module_path, dlerror());
		return P11_RAW_EHOST;
	}
	*(void **)&getlist = dlsym(r->dl, "C_GetFunctionList");
	if (getlist == NULL) {
		snprintf(
		    err, 256, "%s has no C_GetFunctionList", u->module_path);
		return P11_RAW_EHOST;
	}
	rv = getlist(&r->f);
	if (rv != CKR_OK || r->f == NULL) {
		r->f = NULL;
		return p11_raw_fail(err, "C_GetFunctionList", rv);
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if (u->init_args[0])
		args.pReserved = (void *)(uintptr_t)u->init_args;
	rv = r->f->C_Initialize(&args);
	if (rv == CKR_OK)
		r->owns_init = 1;
	else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return p11_raw_fail(err, "C_Initialize", rv);
	rv = p11_raw_find_slot(r, u->token, err);
	if (rv != 0)
		return rv;
	r->sess = calloc(nsess, sizeof(*r->sess));
	if (r->sess == NULL) {
		snprintf(err, 256, "out of memory");
		return P11_RAW_EHOST;
	}
	for (i = 0; i < nsess; i++) {
		rv = r->f->C_OpenSession(r->slot,
		    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		    &r->sess[i]);
		if (rv != CKR_OK)
			return p11_raw_fail(err, "C_OpenSession", rv);
		r->nsess++;
	}
	rv = p11_raw_login(r, u, err);
	if (rv == 0)
		rv = p11_raw_find_key(
		    r, CKO_SECRET_KEY, CKK_AES, keys->kek, &r->kek, err);
	if (rv == 0)
		rv = p11_raw_find_key(r, CKO_SECRET_KEY, CKK_GENERIC_SECRET,
		    keys->kdk, &r->kdk, err);
	if (rv == 0)
		rv = p11_raw_find_key(
		    r, CKO_PRIVATE_KEY, CKK_EC, keys->sign, &r->sign, err);
	return rv;
}

unsigned long
p11_raw_open(const char *uri, unsigned nsess, const struct p11_raw_keys *keys,
    struct p11_raw **out, char err[256])
{
	char urierr[P11_URI_ERR_MAX];
	struct p11_uri u;
	struct p11_raw *r;
	unsigned long rv;

	*out = NULL;
	if (p11_uri_parse(uri, &u, urierr) != 0) {
		snprintf(err, 256, "PKCS#11 URI: %s", urierr);
		return P11_RAW_EHOST;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		p11_uri_clear(&u);
		snprintf(err, 256, "out of memory");
		return P11_RAW_EHOST;
	}
	rv = p11_raw_attach(r, &u, nsess, keys, err);
	p11_uri_clear(&u);
	if (rv != 0) {
		p11_raw_close(r);
		return rv;
	}
	*out = r;
	return 0;
}

void
p11_raw_close(struct p11_raw *r)
{
	unsigned i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nsess; i++)
		r->f->C_CloseSession(r->sess[i]);
	if (r->owns_init)
		r->f->C_Finalize(NULL);
	if (r->dl != NULL)
		dlclose(r->dl);
	free(r->sess);
	free(r);
}

/* C_SignInit + C_Sign, as the layer's p11_sign. */
static CK_RV
p11_raw_sign(struct p11_raw *r, CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mech,
    CK_OBJECT_HANDLE key, const void *msg, size_t len, uint8_t *sig,
    CK_ULONG *siglen)
{
	CK_MECHANISM m = { mech, NULL, 0 };
	CK_RV rv;

	rv = r->f->C_SignInit(h, &m, key);
	if (rv != CKR_OK)
		return rv;
	return r->f->C_Sign(h, (CK_BYTE_PTR)(uintptr_t)msg, len, sig, siglen);
}

unsigned long
p11_raw_hmac(
    struct p11_raw *r, unsigned s, const void *msg, size_t len, uint8_t mac[32])
{
	CK_ULONG n = 32;
	CK_RV rv;

	rv = p11_raw_sign(
	    r, r->sess[s], CKM_SHA256_HMAC, r->kdk, msg, len, mac, &n);
	if (rv == CKR_OK && n != 32)
		rv = CKR_GENERAL_ERROR;
	return rv;
}

static void
p11_raw_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Block 1 of SP 800-108 with [L] = 256: one HMAC of
 * [1]_32 || Label || 0x00 || Context || [256]_32. */
unsigned long
p11_raw_kdf_block(struct p11_raw *r, unsigned s, const void *label,
    size_t label_len, const void *context, size_t context_len, uint8_t out[32])
{
	uint8_t in[4 + 255 + 1 + 255 + 4];
	size_t pos = 4;
	CK_ULONG n = 32;
	CK_RV rv;

	if (label_len > 255 || context_len > 255)
		return CKR_ARGUMENTS_BAD;
	p11_raw_be32(in, 1);
	memcpy(in + pos, label, label_len);
	pos += label_len;
	in[pos++] = 0;
	memcpy(in + pos, context, context_len);
	pos += context_len;
	p11_raw_be32(in + pos, 256);
	pos += 4;
	rv = p11_raw_sign(
	    r, r->sess[s], CKM_SHA256_HMAC, r->kdk, in, pos, out, &n);
	if (rv == CKR_OK && n != 32)
		rv = CKR_GENERAL_ERROR;
	return rv;
}

/* SoftHSM2 2.6.1 has raw CKM_ECDSA only: hash in software, as the layer. */
unsigned long
p11_raw_ecdsa(
    struct p11_raw *r, unsigned s, const void *msg, size_t len, uint8_t sig[64])
{
	uint8_t digest[32];
	CK_ULONG n = 64;
	CK_RV rv;

	if (mbedtls_sha256(msg, len, digest, 0) != 0)
		return CKR_GENERAL_ERROR;
	rv = p11_raw_sign(
	    r, r->sess[s], CKM_ECDSA, r->sign, digest, sizeof(digest), sig, &n);
	if (rv == CKR_OK && n != 64)
		rv = CKR_GENERAL_ERROR;
	return rv;
}

/* The plaintext enters as a short-lived session object, as in p11_wrap. */
unsigned long
p11_raw_wrap(struct p11_raw *r, unsigned s, const void *plain, size_t len,
    uint8_t *blob, size_t cap, size_t *blob_len)
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
	CK_SESSION_HANDLE h = r->sess[s];
	CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
	CK_ULONG n = cap;
	CK_RV rv, rv2;

	rv = r->f->C_CreateObject(h, t, 6, &tmp);
	if (rv != CKR_OK)
		return rv;
	rv = r->f->C_WrapKey(h, &m, r->kek, tmp, blob, &n);
	rv2 = r->f->C_DestroyObject(h, tmp);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK)
		*blob_len = n;
	return rv;
}

unsigned long
p11_raw_unwrap(struct p11_raw *r, unsigned s, const void *blob, size_t len,
    uint8_t *plain, size_t cap, size_t *plain_len)
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
	CK_ATTRIBUTE get = { CKA_VALUE, plain, cap };
	CK_SESSION_HANDLE h = r->sess[s];
	CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
	CK_RV rv, rv2;

	rv = r->f->C_UnwrapKey(
	    h, &m, r->kek, (CK_BYTE_PTR)(uintptr_t)blob, len, t, 5, &tmp);
	if (rv != CKR_OK)
		return rv;
	rv = r->f->C_GetAttributeValue(h, tmp, &get, 1);
	rv2 = r->f->C_DestroyObject(h, tmp);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK)
		*plain_len = get.ulValueLen;
	return rv;
}

unsigned long
p11_raw_random(struct p11_raw *r, unsigned s, void *buf, size_t len)
{
	return r->f->C_GenerateRandom(r->sess[s], buf, len);
}
