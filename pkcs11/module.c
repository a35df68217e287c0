/*
 * pkcs11/module.c: loads a PKCS#11 module, initialises it with OS locking,
 * finds the token the URI names, logs in once and probes mechanisms; also
 * p11_open/p11_close and the status report.
 *
 * It must never assume slot 0 (SoftHSM2 gives initialised tokens random slot
 * ids), never call C_Initialize without CKF_OS_LOCKING_OK (SoftHSM2 then
 * disables all its locking), and never put a PIN in a message.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11/internal.h"

#define P11_PIN_MAX 256

static const struct {
	CK_MECHANISM_TYPE type;
	const char *name;
} p11_mechtab[P11_MECH_COUNT] = {
	[P11_MECH_AES_KEY_GEN] = { CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN" },
	[P11_MECH_AES_KEY_WRAP] = { CKM_AES_KEY_WRAP, "CKM_AES_KEY_WRAP" },
	[P11_MECH_GENERIC_SECRET_KEY_GEN] = { CKM_GENERIC_SECRET_KEY_GEN,
	    "CKM_GENERIC_SECRET_KEY_GEN" },
	[P11_MECH_SHA256_HMAC] = { CKM_SHA256_HMAC, "CKM_SHA256_HMAC" },
	[P11_MECH_EC_KEY_PAIR_GEN] = { CKM_EC_KEY_PAIR_GEN,
	    "CKM_EC_KEY_PAIR_GEN" },
	[P11_MECH_ECDSA] = { CKM_ECDSA, "CKM_ECDSA" },
	[P11_MECH_ECDSA_SHA256] = { CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256" },
	[P11_MECH_SP800_108_COUNTER_KDF] = { CKM_SP800_108_COUNTER_KDF,
	    "CKM_SP800_108_COUNTER_KDF" },
};

CK_MECHANISM_TYPE
p11__mech_type(enum p11_mech mech)
{
	return p11_mechtab[mech].type;
}

const char *
p11_mech_name(enum p11_mech mech)
{
	if ((unsigned)mech >= P11_MECH_COUNT)
		return "CKM_UNKNOWN";
	return p11_mechtab[mech].name;
}

int
p11_has_mech(const struct p11_ctx *ctx, enum p11_mech mech)
{
	if ((unsigned)mech >= P11_MECH_COUNT)
		return 0;
	return (ctx->mechs >> mech) & 1u;
}

/* Compare a blank-padded PKCS#11 field with a URI value. */
static int
p11_field_eq(const unsigned char *field, size_t flen, const char *want)
{
	size_t n = strlen(want);

	while (flen > 0 && (field[flen - 1] == ' ' || field[flen - 1] == '\0'))
		flen--;
	return n == flen && memcmp(field, want, n) == 0;
}

static void
p11_field_copy(char *dst, size_t cap, const unsigned char *field, size_t flen)
{
	while (flen > 0 && (field[flen - 1] == ' ' || field[flen - 1] == '\0'))
		flen--;
	if (flen >= cap)
		flen = cap - 1;
	memcpy(dst, field, flen);
	dst[flen] = '\0';
}

static int
p11_token_matches(
    const struct p11_uri *u, CK_SLOT_ID slot, const CK_TOKEN_INFO *ti)
{
	if (u->has_slot_id && u->slot_id != slot)
		return 0;
	if (u->token[0] &&
	    !p11_field_eq(ti->label, sizeof(ti->label), u->token))
		return 0;
	if (u->serial[0] &&
	    !p11_field_eq(
	        ti->serialNumber, sizeof(ti->serialNumber), u->serial))
		return 0;
	if (u->manufacturer[0] &&
	    !p11_field_eq(ti->manufacturerID, sizeof(ti->manufacturerID),
	        u->manufacturer))
		return 0;
	if (u->model[0] &&
	    !p11_field_eq(ti->model, sizeof(ti->model), u->model))
		return 0;
	return 1;
}

/* Find the one slot whose token matches the URI. */
static int
p11_find_slot(struct p11_ctx *ctx, char *err, size_t errlen)
{
	CK_SLOT_ID slots[64], found = 0;
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	int matches = 0;

	rv = ctx->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK) {
		p11__set_last_rv(rv);
		snprintf(err, errlen, "C_GetSlotList: %s", p11_rv_name(rv));
		return p11_rv_to_error(rv);
	}
	for (i = 0; i < n; i++) {
		rv = ctx->f->C_GetTokenInfo(slots[i], &ti);
		if (rv != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (p11_token_matches(&ctx->uri, slots[i], &ti)) {
			found = slots[i];
			matches++;
		}
	}
	if (matches == 0) {
		snprintf(err, errlen,
		    "no initialised token matches token='%s' serial='%s' "
		    "model='%s' manufacturer='%s'%s",
		    ctx->uri.token, ctx->uri.serial, ctx->uri.model,
		    ctx->uri.manufacturer,
		    ctx->uri.has_slot_id ? " and slot-id" : "");
		return P11_ETOKEN;
	}
	if (matches > 1) {
		snprintf(err, errlen,
		    "%d tokens match the URI; add serial= to choose one",
		    matches);
		return P11_ETOKEN;
	}
	ctx->slot = found;
	return 0;
}

static void
p11_probe_mechs(struct p11_ctx *ctx)
{
	CK_MECHANISM_INFO mi;
	unsigned i;

	ctx->mechs = 0;
	for (i = 0; i < P11_MECH_COUNT; i++)
		if (ctx->f->C_GetMechanismInfo(
		        ctx->slot, p11_mechtab[i].type, &mi) == CKR_OK)
			ctx->mechs |= 1u << i;
}

int
p11__login(struct p11_ctx *ctx, CK_SESSION_HANDLE h)
{
	CK_RV rv;

	if (!ctx->login)
		return 0;
	/* A refused PIN is never tried again: hardware tokens lock after a
	 * few wrong tries, and recovery would otherwise try on every call. */
	if (atomic_load(&ctx->pin_bad))
		return P11_EPIN;
	rv = ctx->f->C_Login(
	    h, CKU_USER, sr_secret_bytes(&ctx->pin), sr_secret_len(&ctx->pin));
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return 0;
	p11__set_last_rv(rv);
	if (p11_rv_to_error(rv) == P11_EPIN) {
		atomic_store(&ctx->pin_bad, 1);
		log_warnx(
		    "%s: the token refused the PIN (%s); not trying again",
		    __func__, p11_rv_name(rv));
	}
	return p11_rv_to_error(rv);
}

/*
 * Bring the module up: C_Initialize, find the slot, open the anchor session
 * and log in. Called at open and, with the whole pool drained, by recovery. On
 * failure the context stays marked broken and the next call tries again.
 */
int
p11__module_start(struct p11_ctx *ctx, char *err, size_t errlen)
{
	CK_C_INITIALIZE_ARGS args;
	CK_INFO li;
	CK_RV rv;
	int rc;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if (ctx->uri.init_args[0])
		args.pReserved = ctx->uri.init_args;
	rv = ctx->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		p11__set_last_rv(rv);
		snprintf(err, errlen, "C_Initialize: %s", p11_rv_name(rv));
		return p11_rv_to_error(rv);
	}
	ctx->initialized = 1;
	/* Another user of this module in the process initialised it first:
	 * then it is theirs to finalize, never ours. */
	ctx->owns_init = rv == CKR_OK;
	rc = p11_find_slot(ctx, err, errlen);
	if (rc != 0)
		return rc;
	rv = ctx->f->C_OpenSession(ctx->slot,
	    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &ctx->anchor);
	if (rv != CKR_OK) {
		p11__set_last_rv(rv);
		snprintf(err, errlen, "C_OpenSession: %s", p11_rv_name(rv));
		return p11_rv_to_error(rv);
	}
	ctx->anchor_open = 1;
	rc = p11__login(ctx, ctx->anchor);
	if (rc != 0) {
		snprintf(
		    err, errlen, "C_Login: %s", p11_rv_name(p11_last_rv()));
		return rc;
	}
	p11_probe_mechs(ctx);
	if (ctx->f->C_GetInfo(&li) == CKR_OK)
		ctx->softhsm = memcmp(li.manufacturerID, "SoftHSM", 7) == 0;
	return 0;
}

/* Close everything and finalize; errors are ignored (the device may be
 * gone, which is why we are here). */
void
p11__module_stop(struct p11_ctx *ctx)
{
	unsigned i;

	if (!ctx->initialized)
		return;
	for (i = 0; ctx->sessions != NULL && i < ctx->nsessions; i++) {
		if (ctx->sessions[i].open)
			ctx->f->C_CloseSession(ctx->sessions[i].handle);
		ctx->sessions[i].open = 0;
	}
	/* The anchor goes last so the slot's session count reaches zero only
	 * here, with nothing else open. */
	if (ctx->anchor_open)
		ctx->f->C_CloseSession(ctx->anchor);
	ctx->anchor_open = 0;
	if (ctx->owns_init)
		ctx->f->C_Finalize(NULL);
	ctx->initialized = 0;
}

static int
p11_read_pin(struct p11_ctx *ctx, char *err, size_t errlen)
{
	const char *path = ctx->uri.pin_source;
	int rc;

	if (sr_secret_len(&ctx->uri.pin_value) > 0) {
		ctx->login = 1;
		return sr_secret_set(&ctx->pin,
		    sr_secret_bytes(&ctx->uri.pin_value),
		    sr_secret_len(&ctx->uri.pin_value));
	}
	if (path[0] == '\0')
		return 0;
	if (strncmp(path, "file:", 5) == 0)
		path += 5;
	rc = sr_secret_read_file(&ctx->pin, path, P11_PIN_MAX);
	if (rc != 0) {
		snprintf(
		    err, errlen, "pin-source %s: %s", path, sr_strerror(rc));
		return P11_EPIN;
	}
	if (sr_secret_len(&ctx->pin) == 0) {
		snprintf(err, errlen, "pin-source %s: empty", path);
		return P11_EPIN;
	}
	ctx->login = 1;
	return 0;
}

static int
p11_load(struct p11_ctx *ctx, char *err, size_t errlen)
{
	CK_RV (*getlist)(CK_FUNCTION_LIST_PTR_PTR);
	const char *path = ctx->uri.module_path;
	CK_RV rv;

	if (path[0] == '\0') {
		snprintf(err, errlen, "the URI has no module-path%s",
		    ctx->uri.module_name[0] ? " (module-name alone needs "
		                              "p11-kit's registry, which "
		                              "Strongroom does not read)"
		                            : "");
		return P11_EMODULE;
	}
	ctx->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (ctx->dl == NULL) {
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return P11_EMODULE;
	}
	*(void **)&getlist = dlsym(ctx->dl, "C_GetFunctionList");
	if (getlist == NULL) {
		snprintf(err, errlen, "%s has no C_GetFunctionList", path);
		return P11_EMODULE;
	}
	rv = getlist(&ctx->f);
	if (rv != CKR_OK || ctx->f == NULL) {
		p11__set_last_rv(rv);
		snprintf(err, errlen, "%s: C_GetFunctionList: %s", path,
		    p11_rv_name(rv));
		return P11_EMODULE;
	}
	if (ctx->f->version.major < 2) {
		snprintf(err, errlen, "%s: PKCS#11 %d.%d is too old", path,
		    ctx->f->version.major, ctx->f->version.minor);
		return P11_EMODULE;
	}
	return 0;
}

static int
p11_check_mechs(struct p11_ctx *ctx, char *err, size_t errlen)
{
	size_t pos;
	unsigned i, missing = ctx->required_mechs & ~ctx->mechs;

	/* CKM_ECDSA_SHA256 stands in for CKM_ECDSA: we hash in software
	 * only when the combined mechanism is missing. */
	if ((missing & (1u << P11_MECH_ECDSA)) &&
	    p11_has_mech(ctx, P11_MECH_ECDSA_SHA256))
		missing &= ~(1u << P11_MECH_ECDSA);
	if (missing == 0)
		return 0;
	pos = (size_t)snprintf(
	    err, errlen, "the token lacks required mechanisms:");
	for (i = 0; i < P11_MECH_COUNT && pos < errlen; i++)
		if (missing & (1u << i))
			pos += (size_t)snprintf(err + pos, errlen - pos, " %s",
			    p11_mechtab[i].name);
	return P11_EMECH;
}

int
p11_open(const char *uri, const struct p11_options *opts, struct p11_ctx **out,
    char errbuf[256])
{
	char scratch[256], urierr[P11_URI_ERR_MAX];
	char *err = errbuf != NULL ? errbuf : scratch;
	const size_t errlen = 256;
	struct p11_ctx *ctx;
	int rc;

	*out = NULL;
	err[0] = '\0';
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return -ENOMEM;
	rc = p11_uri_parse(uri, &ctx->uri, urierr);
	if (rc != 0) {
		snprintf(err, errlen, "PKCS#11 URI: %s", urierr);
		free(ctx);
		return rc;
	}
	pthread_mutex_init(&ctx->recover_lock, NULL);
	pthread_mutex_init(&ctx->pool_lock, NULL);
	pthread_mutex_init(&ctx->anchor_lock, NULL);
	pthread_cond_init(&ctx->pool_cond, NULL);
	/* Epoch 0 marks a key reference that holds no valid handle. */
	atomic_store(&ctx->epoch, 1);
	ctx->nsessions = opts != NULL && opts->sessions ? opts->sessions : 8;
	ctx->required_mechs = opts != NULL && opts->required_mechs
	    ? opts->required_mechs
	    : P11_MECHS_KEYSTORE;
	if (!ctx->uri.token[0] && !ctx->uri.serial[0] &&
	    !ctx->uri.has_slot_id && !ctx->uri.model[0] &&
	    !ctx->uri.manufacturer[0]) {
		snprintf(err, errlen,
		    "PKCS#11 URI: name the token with token=, "
		    "serial=, model=, manufacturer= or slot-id= "
		    "(slot 0 is never assumed)");
		rc = P11_EURI;
		goto bad;
	}
	rc = p11_read_pin(ctx, err, errlen);
	if (rc != 0)
		goto bad;
	rc = p11_load(ctx, err, errlen);
	if (rc != 0)
		goto bad;
	rc = p11__module_start(ctx, err, errlen);
	if (rc != 0)
		goto bad;
	rc = p11_check_mechs(ctx, err, errlen);
	if (rc != 0)
		goto bad;
	rc = p11__pool_open(ctx);
	if (rc != 0) {
		snprintf(err, errlen, "opening %u sessions: %s (%s)",
		    ctx->nsessions, sr_strerror(rc),
		    p11_rv_name(p11_last_rv()));
		goto bad;
	}
	*out = ctx;
	return 0;
bad:
	p11_close(ctx);
	return rc;
}

void
p11_close(struct p11_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->f != NULL)
		p11__module_stop(ctx);
	p11__pool_close(ctx);
	if (ctx->dl != NULL)
		dlclose(ctx->dl);
	sr_secret_free(&ctx->pin);
	p11_uri_clear(&ctx->uri);
	pthread_mutex_destroy(&ctx->recover_lock);
	pthread_mutex_destroy(&ctx->pool_lock);
	pthread_mutex_destroy(&ctx->anchor_lock);
	pthread_cond_destroy(&ctx->pool_cond);
	free(ctx);
}

int
p11_token_info(struct p11_ctx *ctx, struct p11_token_info *info)
{
	struct p11__op op;
	CK_TOKEN_INFO ti;
	CK_INFO li;
	CK_RV rv;
	int rc;

	memset(info, 0, sizeof(*info));
	snprintf(info->module_path, sizeof(info->module_path), "%s",
	    ctx->uri.module_path);
	rc = p11__op_begin(ctx, &op);
	info->recoveries = atomic_load(&ctx->recoveries);
	if (rc != 0)
		return rc;
	info->slot_id = ctx->slot;
	info->mechs = ctx->mechs;
	info->recoveries = atomic_load(&ctx->recoveries);
	if (ctx->f->C_GetInfo(&li) == CKR_OK)
		p11_field_copy(info->library_description,
		    sizeof(info->library_description), li.libraryDescription,
		    sizeof(li.libraryDescription));
	rv = ctx->f->C_GetTokenInfo(ctx->slot, &ti);
	if (rv == CKR_OK) {
		p11_field_copy(info->token_label, sizeof(info->token_label),
		    ti.label, sizeof(ti.label));
		p11_field_copy(info->token_serial, sizeof(info->token_serial),
		    ti.serialNumber, sizeof(ti.serialNumber));
		p11_field_copy(info->token_model, sizeof(info->token_model),
		    ti.model, sizeof(ti.model));
		p11_field_copy(info->token_manufacturer,
		    sizeof(info->token_manufacturer), ti.manufacturerID,
		    sizeof(ti.manufacturerID));
	}
	return p11__op_end(&op, rv);
}
