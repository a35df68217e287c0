/*
 * pkcs11/internal.h: declarations shared by the files of the pkcs11 module
 * and by nothing else. Other modules include pkcs11/p11.h only; `make lint`
 * fails if any file outside pkcs11/ includes this header.
 */
#ifndef SR_PKCS11_INTERNAL_H
#define SR_PKCS11_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/p11.h"

/* PKCS#11 3.0 names the 2.40 header of p11-kit lacks. */
#ifndef CKM_SP800_108_COUNTER_KDF
#define CKM_SP800_108_COUNTER_KDF 0x3acUL
#endif
#define P11__SP800_108_ITERATION_VARIABLE 0x00000001UL
#define P11__SP800_108_DKM_LENGTH 0x00000003UL
#define P11__SP800_108_BYTE_ARRAY 0x00000004UL
#define P11__SP800_108_DKM_LENGTH_SUM_OF_KEYS 0x00000001UL

struct p11__prf_data_param {
	unsigned long type;
	void *value;
	unsigned long value_len;
};
struct p11__counter_format {
	CK_BBOOL little_endian;
	unsigned long width_bits;
};
struct p11__dkm_length_format {
	unsigned long method;
	CK_BBOOL little_endian;
	unsigned long width_bits;
};
struct p11__sp800_108_params {
	unsigned long prf_type;
	unsigned long n_data_params;
	struct p11__prf_data_param *data_params;
	unsigned long n_additional_keys;
	void *additional_keys;
};

/* One pooled session. */
struct p11__session {
	CK_SESSION_HANDLE handle;
	int open;         /* handle is valid in the current epoch */
	atomic_int inuse; /* checked out by a thread */
};

struct p11_ctx {
	/* Immutable after open. */
	struct p11_uri uri;
	struct sr_secret pin;
	int login;
	atomic_int pin_bad; /* the module refused the PIN: never retry */
	int softhsm;        /* SoftHSM2, for its documented quirks */
	unsigned required_mechs;
	void *dl;
	CK_FUNCTION_LIST_PTR f;

	/*
	 * The module's state. Calls hold a pool session; recovery
	 * (re-opening sessions, C_Finalize/C_Initialize) holds recover_lock
	 * and checks out every session first, so no call is ever in flight
	 * across a re-initialisation.
	 */
	pthread_mutex_t recover_lock;
	atomic_int draining; /* recovery is collecting the pool */
	CK_SLOT_ID slot;
	int initialized;          /* C_Initialize succeeded in this epoch */
	int owns_init;            /* our C_Initialize did it: we finalize */
	atomic_int broken;        /* the module needs re-initialising */
	CK_SESSION_HANDLE anchor; /* never closed (SoftHSMv2#464) */
	int anchor_open;
	pthread_mutex_t anchor_lock; /* session objects are made here */
	unsigned mechs;
	atomic_ulong epoch; /* bumped at each re-initialisation */
	atomic_ulong recoveries;

	/* The session pool, guarded by pool_lock. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct p11__session *sessions;
	unsigned nsessions;
	atomic_uint pool_waiters; /* threads scanning or waiting */

	p11_timing_fn *timing; /* p11_set_timing(); NULL: none */
	void *timing_arg;
};

struct p11_key {
	enum p11_key_kind kind;
	char label[P11_URI_OBJECT_MAX + 1];
	unsigned char id[P11_URI_ID_MAX];
	size_t id_len;
	int has_label;
	int token; /* a session object cannot be found again after recovery */
	pthread_mutex_t lock;
	CK_OBJECT_HANDLE handle; /* private or secret key */
	CK_OBJECT_HANDLE pub;    /* public half of an EC pair, or 0 */
	unsigned long epoch;     /* ctx epoch when handle was found */
};

/* A call in flight: the pool session it holds until p11__op_end. */
struct p11__op {
	struct p11_ctx *ctx;
	struct p11__session *s;
	unsigned long epoch;
	uint64_t t0_ns; /* when the session was taken, for ctx->timing */
};

/* rv.c */
void p11__set_last_rv(CK_RV rv);
int p11__rv_is_session_loss(CK_RV rv);
int p11__rv_is_device_loss(CK_RV rv);

/* module.c */
int p11__module_start(struct p11_ctx *ctx, char *err, size_t errlen);
void p11__module_stop(struct p11_ctx *ctx);
int p11__login(struct p11_ctx *ctx, CK_SESSION_HANDLE h);
CK_MECHANISM_TYPE p11__mech_type(enum p11_mech mech);

/* session.c */
int p11__op_begin(struct p11_ctx *ctx, struct p11__op *op);
int p11__op_end(struct p11__op *op, CK_RV rv);
int p11__pool_open(struct p11_ctx *ctx);
void p11__pool_close(struct p11_ctx *ctx);

/* keys.c */
int p11__key_handle(
    struct p11__op *op, struct p11_key *key, CK_OBJECT_HANDLE *out, CK_RV *rv);
void p11__key_invalidate(struct p11_key *key, CK_RV rv);
int p11__find_one(struct p11__op *op, CK_OBJECT_CLASS cls,
    const struct p11_key *key, CK_OBJECT_HANDLE *out, CK_RV *rv);

#endif /* SR_PKCS11_INTERNAL_H */
