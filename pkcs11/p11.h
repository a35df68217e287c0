/*
 * pkcs11/p11.h: Strongroom's only door to the HSM.
 *
 * The pkcs11 module loads any PKCS#11 module with dlopen, chooses the module,
 * token and objects by an RFC 7512 PKCS#11 URI, logs in once, keeps a pool of
 * persistent sessions (one per worker thread plus one that is never closed,
 * because SoftHSM2 invalidates new sessions when a slot's session count drops
 * to zero: SoftHSMv2#464), and offers the few operations the keystore needs.
 * No other code includes <pkcs11.h> or calls a C_* function.
 *
 * Caveats
 * - Keys are referred to by struct p11_key, which remembers the object's
 *   label and id, not just its handle. After the layer recovers from a lost
 *   session or a re-initialised module, the handle is found again by label
 *   and id on the next use; callers never hold raw handles.
 * - Recovery: on CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
 *   CKR_DEVICE_REMOVED, CKR_OBJECT_HANDLE_INVALID, CKR_TOKEN_NOT_PRESENT or
 *   CKR_DEVICE_ERROR the operation in flight fails with one clear error
 *   (P11_ESESSION, P11_EDEVICE or P11_ENOTFOUND), and the layer repairs
 *   itself before returning: it reopens sessions and logs in again, and for
 *   device-level errors calls C_Finalize and C_Initialize, finds the token
 *   again and reopens everything. If repair fails, the next call tries again.
 *   The caller may retry an idempotent operation at once.
 * - AES key wrap uses CKM_AES_KEY_WRAP (RFC 3394) only, on payloads whose
 *   length is a multiple of 8. CKM_AES_KEY_WRAP_PAD (0x210A) is avoided on
 *   purpose: SoftHSM2 2.6.1 zero-pads the input to a multiple of 8 before
 *   applying RFC 5649, so its blobs for other lengths match no strict RFC 5649
 *   peer (fixed in SoftHSM 2.7.0). Our payloads are whole keys (16, 32 or
 *   64 bytes), so RFC 3394 loses nothing.
 * - Foreign CK_RV codes are translated here, at the boundary, into P11_E*
 *   codes; the original CK_RV of the last failure is kept per thread for the
 *   log (p11_last_rv).
 *
 * Threading: after p11_open() returns, every function may be called from any
 * number of threads at once; the context serialises nothing but session
 * checkout. p11_open() and p11_close() must not run concurrently with other
 * calls on the same context. Never fork after p11_open().
 *
 * Errors: every function returns 0 or a negative code from lib/sr.h. What the
 * caller should do:
 *   P11_EURI        fix the URI; the message names the bad part.
 *   P11_EMODULE     the module path is wrong or not a PKCS#11 module: fix
 *                   configuration; nothing to retry.
 *   P11_ETOKEN      no token matches the URI: check label/serial/slot-id.
 *   P11_EPIN        the PIN is unreadable, wrong or locked: fix the PIN file;
 *                   do not retry in a loop (PINs lock).
 *   P11_EMECH       a required mechanism is missing: use another module.
 *   P11_ENOTFOUND   no object with that label/id: create it, or fix the name.
 *   P11_EAMBIGUOUS  two objects share a label/id: an operator must resolve it.
 *   P11_EEXISTS     p11_key_generate refused to make a second key with a
 *                   label that already exists.
 *   P11_EDEVICE     the device failed; the layer has re-initialised. Retry
 *                   idempotent operations; report others.
 *   P11_ESESSION    a session was lost; the layer reopened it. Retry.
 *   P11_ERECOVER    repair itself failed (module or token still gone): answer
 *                   "not ready" and try again later.
 *   P11_EKEY        the key's type or attributes do not allow this operation.
 *   P11_EDATA       the input was rejected (length or content): a caller bug
 *                   or bad client data; do not retry.
 *   P11_EINTEGRITY  a wrapped blob failed to unwrap: it was altered or was
 *                   wrapped under another key.
 *   P11_ENOMEM      host or device memory ran out; back off and retry.
 *   P11_ENOTSUPP    the module does not implement the function.
 *   P11_EGENERAL    any other CK_RV; see p11_last_rv() for the log.
 *   -EINVAL         an argument broke this header's contract.
 *   -ENOMEM         allocation failed in the layer.
 */
#ifndef SR_PKCS11_P11_H
#define SR_PKCS11_P11_H

#include <stddef.h>
#include <stdint.h>

#include "lib/sr.h"

/* ------------------------------------------------------------------ */
/* PKCS#11 URIs (RFC 7512)                                              */
/* ------------------------------------------------------------------ */

/* Object classes a URI's "type" attribute can name. */
enum p11_obj_type {
	P11_TYPE_ANY = 0,
	P11_TYPE_SECRET_KEY,
	P11_TYPE_PRIVATE,
	P11_TYPE_PUBLIC,
	P11_TYPE_CERT,
	P11_TYPE_DATA,
};

#define P11_URI_TOKEN_MAX 32   /* CK_TOKEN_INFO.label */
#define P11_URI_SERIAL_MAX 16  /* CK_TOKEN_INFO.serialNumber */
#define P11_URI_MANUF_MAX 32   /* manufacturerID fields */
#define P11_URI_MODEL_MAX 16   /* CK_TOKEN_INFO.model */
#define P11_URI_OBJECT_MAX 128 /* CKA_LABEL, our limit */
#define P11_URI_ID_MAX 64      /* CKA_ID, our limit */
#define P11_URI_PATH_MAX 4096
#define P11_URI_ERR_MAX 160

/*
 * A parsed URI. Text fields are NUL-terminated UTF-8 after percent-decoding;
 * an absent attribute is an empty string (or has_* == 0). pin_value, when
 * present, is a secret: the struct must be cleared with p11_uri_clear().
 */
struct p11_uri {
	char token[P11_URI_TOKEN_MAX + 1];
	char manufacturer[P11_URI_MANUF_MAX + 1];
	char serial[P11_URI_SERIAL_MAX + 1];
	char model[P11_URI_MODEL_MAX + 1];
	char object[P11_URI_OBJECT_MAX + 1];
	unsigned char id[P11_URI_ID_MAX];
	size_t id_len;
	int has_id;
	enum p11_obj_type type;
	unsigned long slot_id;
	int has_slot_id;
	char module_path[P11_URI_PATH_MAX];
	char module_name[256];
	char pin_source[P11_URI_PATH_MAX]; /* "file:/abs/path" or "/abs/path" */
	struct sr_secret pin_value;        /* empty unless pin-value= given */
	/* Vendor attribute x-init-args: the C_Initialize pReserved string some
	 * modules need (NSS softokn). Not a secret. */
	char init_args[512];
};

/**
 * @brief Parse a PKCS#11 URI strictly.
 *
 * Accepts the path attributes token, manufacturer, serial, model, object,
 * id, type, slot-id (and ignores library-* and slot-description/
 * slot-manufacturer, which select nothing here) and the query attributes
 * module-path, module-name, pin-source, pin-value and x-init-args. Rejects:
 * a missing "pkcs11:" scheme, unknown non "x-" attributes, a repeated
 * attribute, empty names, bad or truncated percent-encoding, characters
 * RFC 7512 requires to be encoded, a value too long for its PKCS#11 field,
 * an unknown type, a slot-id that is not a decimal number, both pin-source
 * and pin-value, and a relative module-path.
 *
 * @param[in]  text  the URI, NUL-terminated.
 * @param[out] out   filled on success; cleared (and safe to p11_uri_clear)
 *                   on failure.
 * @param[out] err   on failure, a message naming the bad part, e.g.
 *                   "attribute 'slot-id': not a decimal number"; may be NULL.
 * @return 0, P11_EURI, or -ENOMEM.
 * @note Any thread. Owns nothing of @p text after return.
 */
int p11_uri_parse(
    const char *text, struct p11_uri *out, char err[P11_URI_ERR_MAX]);

/** @brief Wipe the PIN and zero the struct. Safe on a zeroed struct. */
void p11_uri_clear(struct p11_uri *uri);

/* ------------------------------------------------------------------ */
/* Opening a token                                                      */
/* ------------------------------------------------------------------ */

struct p11_ctx;

/* Mechanisms the layer knows how to use. */
enum p11_mech {
	P11_MECH_AES_KEY_GEN,
	P11_MECH_AES_KEY_WRAP,
	P11_MECH_GENERIC_SECRET_KEY_GEN,
	P11_MECH_SHA256_HMAC,
	P11_MECH_EC_KEY_PAIR_GEN,
	P11_MECH_ECDSA,
	P11_MECH_ECDSA_SHA256,
	P11_MECH_SP800_108_COUNTER_KDF,
	P11_MECH_COUNT
};

/* The set the keystore needs; p11_open refuses a module lacking any. */
#define P11_MECHS_KEYSTORE \
	((1u << P11_MECH_AES_KEY_GEN) | (1u << P11_MECH_AES_KEY_WRAP) | \
	    (1u << P11_MECH_GENERIC_SECRET_KEY_GEN) | \
	    (1u << P11_MECH_SHA256_HMAC) | (1u << P11_MECH_EC_KEY_PAIR_GEN) | \
	    (1u << P11_MECH_ECDSA))

struct p11_options {
	/* Sessions in the pool besides the one never closed; 0 means 8.
	 * Threads beyond this many wait for a free session. */
	unsigned sessions;
	/* Bit set of enum p11_mech that must be present; 0 means
	 * P11_MECHS_KEYSTORE. */
	unsigned required_mechs;
};

/**
 * @brief Load the module named by @p uri, initialise it with
 * CKF_OS_LOCKING_OK, find the token by label, serial, manufacturer, model or
 * slot-id (never by assuming slot 0; the URI must name at least one), log in
 * with the PIN from pin-source or pin-value (no login when neither is given),
 * probe the required mechanisms, and open the session pool.
 *
 * @param[in]  uri   a PKCS#11 URI; its object/id/type are ignored here.
 * @param[in]  opts  may be NULL for defaults.
 * @param[out] out   the context, owned by the caller: p11_close() it.
 * @param[out] err   on failure a message for the operator (which part of
 *                   the URI, which mechanisms are missing...); may be NULL.
 * @return 0, P11_EURI, P11_EMODULE, P11_ETOKEN, P11_EPIN, P11_EMECH,
 *         P11_EDEVICE, P11_EGENERAL, -ENOMEM.
 * @note Start-up only: not concurrently with other calls on the context.
 */
int p11_open(const char *uri, const struct p11_options *opts,
    struct p11_ctx **out, char err[256]);

/**
 * @brief Close every session, C_Finalize and dlclose the module, wipe the
 * PIN and free the context. Safe on NULL. No call may be in flight.
 */
void p11_close(struct p11_ctx *ctx);

/** @brief Whether the module offers @p mech (probed at open). */
int p11_has_mech(const struct p11_ctx *ctx, enum p11_mech mech);

/** @brief Printable name of a mechanism ("CKM_SHA256_HMAC"). Static. */
const char *p11_mech_name(enum p11_mech mech);

/**
 * @brief What the context is attached to, for status pages. No secrets.
 * Strings are copied into @p info.
 */
struct p11_token_info {
	char module_path[P11_URI_PATH_MAX];
	char library_description[33];
	char token_label[33];
	char token_serial[17];
	char token_model[17];
	char token_manufacturer[33];
	unsigned long slot_id;
	unsigned mechs;           /* bit set of enum p11_mech present */
	unsigned long recoveries; /* re-initialisations so far */
};
int p11_token_info(struct p11_ctx *ctx, struct p11_token_info *info);

/**
 * @brief Have @p fn told the duration of every operation, in microseconds
 * from taking a pool session to giving it back (the module's own time,
 * plus any recovery the operation needed), on the thread that made it:
 * for latency metrics. @p fn must be thread-safe, quick, and must not call
 * into @p ctx. NULL turns it off.
 * @note Start-up only: before the context is used from other threads.
 */
typedef void p11_timing_fn(void *arg, uint64_t usec);
void p11_set_timing(struct p11_ctx *ctx, p11_timing_fn *fn, void *arg);

/** @brief CK_RV of this thread's last failed call (0 if none), for logs. */
unsigned long p11_last_rv(void);

/** @brief Name of a CK_RV ("CKR_DEVICE_ERROR"), or "CKR_0x..." ; static
 * or thread-local storage, valid until the thread's next call. */
const char *p11_rv_name(unsigned long rv);

/** @brief The P11_E* code (or 0) a CK_RV translates to. */
int p11_rv_to_error(unsigned long rv);

/* ------------------------------------------------------------------ */
/* Keys                                                                 */
/* ------------------------------------------------------------------ */

/* Kinds of key the layer creates and uses. */
enum p11_key_kind {
	P11_KEY_AES,     /* CKK_AES secret key */
	P11_KEY_HMAC,    /* CKK_GENERIC_SECRET used with SHA256-HMAC */
	P11_KEY_EC_P256, /* the private half of a P-256 key pair */
};

/*
 * A reference to one key object: kind, label, id, and a cached handle that
 * is refreshed by label and id after recovery. Owned by the caller; free
 * with p11_key_free(). May be shared between threads once created.
 */
struct p11_key;

/* Attributes for new keys. Token keys are always CKA_PRIVATE, CKA_SENSITIVE
 * and not CKA_EXTRACTABLE; these flags only add uses. */
enum p11_key_flags {
	P11_KEY_TOKEN = 1 << 0,       /* persistent token object */
	P11_KEY_SESSION = 0,          /* session object, gone at close */
	P11_KEY_EXTRACTABLE = 1 << 1, /* may be wrapped (ceremonies only) */
	P11_KEY_DERIVE = 1 << 2,      /* CKA_DERIVE for native KDFs */
};

/**
 * @brief Generate a key inside the HSM: AES-256 (@p len 32), an HMAC key of
 * @p len bytes (32..64; SoftHSM2 refuses fewer than 32), or a P-256 key pair
 * (@p len ignored). Token keys are sensitive and non-extractable unless
 * P11_KEY_EXTRACTABLE is given.
 *
 * @param[in] label  CKA_LABEL, 1..P11_URI_OBJECT_MAX bytes; for token keys no
 *                   object of that label and kind may exist (P11_EEXISTS).
 * @param[in] id     CKA_ID bytes (may be NULL with @p id_len 0).
 * @param[out] out   the new key; caller frees with p11_key_free().
 * @return 0, P11_EEXISTS, P11_EKEY (size), P11_EMECH, recovery codes, -EINVAL.
 * @note Any thread.
 */
int p11_key_generate(struct p11_ctx *ctx, enum p11_key_kind kind,
    const char *label, const void *id, size_t id_len, size_t len,
    unsigned flags, struct p11_key **out);

/**
 * @brief Import a secret key value (AES or HMAC) as a new object. For known-
 * answer tests and for keys restored from a ceremony quorum; the value is
 * only read. Same attribute policy as p11_key_generate().
 */
int p11_key_import(struct p11_ctx *ctx, enum p11_key_kind kind,
    const char *label, const void *id, size_t id_len, const void *value,
    size_t value_len, unsigned flags, struct p11_key **out);

/**
 * @brief Find exactly one existing key of @p kind by label and/or id.
 * @param[in] label  may be NULL to match by id alone.
 * @param[in] id     may be NULL (id_len 0) to match by label alone.
 * @return 0, P11_ENOTFOUND, P11_EAMBIGUOUS, recovery codes.
 */
int p11_key_find(struct p11_ctx *ctx, enum p11_key_kind kind, const char *label,
    const void *id, size_t id_len, struct p11_key **out);

/**
 * @brief Find the key a PKCS#11 URI names with object=, id= and type=
 * (type=secret-key needs @p kind AES or HMAC; type=private needs EC_P256).
 */
int p11_key_find_uri(struct p11_ctx *ctx, enum p11_key_kind kind,
    const char *uri, struct p11_key **out, char err[P11_URI_ERR_MAX]);

/** @brief Destroy the key object(s) in the token (both halves of an EC
 * pair). The reference stays valid for p11_key_free() only. */
int p11_key_destroy(struct p11_ctx *ctx, struct p11_key *key);

/** @brief Free a reference (not the object). Safe on NULL. */
void p11_key_free(struct p11_key *key);

/** @brief The key's label (owned by @p key). */
const char *p11_key_label(const struct p11_key *key);

/* ------------------------------------------------------------------ */
/* Operations                                                           */
/* ------------------------------------------------------------------ */

/** @brief HMAC-SHA256 of @p msg under an HMAC key. */
int p11_hmac_sha256(struct p11_ctx *ctx, struct p11_key *key, const void *msg,
    size_t msg_len, uint8_t mac[static 32]);

/**
 * @brief NIST SP 800-108 KDF in counter mode with HMAC-SHA256 as PRF:
 * K(i) = HMAC(K_IN, [i]_32 || Label || 0x00 || Context || [L]_32), i from 1,
 * big-endian 32-bit counter and bit length, output the first @p out_len
 * bytes, computed with one C_Sign(CKM_SHA256_HMAC) per 32-byte block. For
 * keys whose bytes leave the HSM (device keys, DPS-style derivation); the
 * caller owns @p out and must wipe it. A module's native
 * CKM_SP800_108_COUNTER_KDF is not used here: a careful module (NSS
 * softokn, hardware HSMs) refuses to release derived bytes from a
 * sensitive base key. For keys that stay inside, use
 * p11_key_derive_sp800_108().
 * @param out_len 1..1024 bytes.
 */
int p11_kdf_sp800_108(struct p11_ctx *ctx, struct p11_key *key,
    const void *label, size_t label_len, const void *context,
    size_t context_len, uint8_t *out, size_t out_len);

/**
 * @brief The same SP 800-108 derivation with the module's native
 * CKM_SP800_108_COUNTER_KDF, into a new key object that never leaves the
 * HSM (an AES key of 16/24/32 bytes or an HMAC key of 32..64 bytes, same
 * attribute policy as p11_key_generate). The base key must have been made
 * with P11_KEY_DERIVE.
 * @return 0, P11_EMECH when the module lacks the mechanism (SoftHSM2 2.6.1
 *         does), P11_EKEY when the base key may not derive, recovery codes.
 */
int p11_key_derive_sp800_108(struct p11_ctx *ctx, struct p11_key *base,
    const void *label, size_t label_len, const void *context,
    size_t context_len, enum p11_key_kind kind, const char *new_label,
    size_t len, unsigned flags, struct p11_key **out);

/**
 * @brief ECDSA P-256 over SHA-256(@p msg), in the raw r||s form JWS (ES256)
 * needs. Uses CKM_ECDSA_SHA256 where the module has it; otherwise hashes in
 * software and calls CKM_ECDSA.
 */
int p11_ecdsa_p256_sign(struct p11_ctx *ctx, struct p11_key *key,
    const void *msg, size_t msg_len, uint8_t sig[static 64]);

/**
 * @brief ECDSA P-256 over a SHA-256 @p digest the caller computed (raw
 * CKM_ECDSA), r||s: for signers that hash their input themselves (JWS).
 */
int p11_ecdsa_p256_sign_digest(struct p11_ctx *ctx, struct p11_key *key,
    const uint8_t digest[static 32], uint8_t sig[static 64]);

/** @brief The public point of an EC P-256 key: 0x04 || X || Y. */
int p11_ec_public_get(
    struct p11_ctx *ctx, struct p11_key *key, uint8_t point[static 65]);

/**
 * @brief Wrap @p len bytes of key material under an AES key with RFC 3394
 * (CKM_AES_KEY_WRAP). @p len must be a multiple of 8, 16..512; the blob is
 * @p len + 8 bytes. The plaintext travels into the HSM as a short-lived
 * session object that is destroyed before return.
 */
int p11_wrap(struct p11_ctx *ctx, struct p11_key *kek, const void *plain,
    size_t len, uint8_t *blob, size_t blob_cap, size_t *blob_len);

/**
 * @brief Unwrap an RFC 3394 blob into @p out (a secret the caller owns and
 * frees). P11_EINTEGRITY when the blob was altered or wrapped under another
 * key.
 */
int p11_unwrap(struct p11_ctx *ctx, struct p11_key *kek, const void *blob,
    size_t blob_len, struct sr_secret *out);

/** @brief @p len bytes (1..65536) from the HSM's random generator. */
int p11_random(struct p11_ctx *ctx, void *buf, size_t len);

/* ------------------------------------------------------------------ */
/* First-start token set-up for the embedded SoftHSM2 default            */
/* ------------------------------------------------------------------ */

#define P11_SOFTHSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/**
 * @brief Make sure the state folder holds a SoftHSM2 token and return the
 * URI that opens it. On first start, creates @p state_dir/hsm/ (mode 0700)
 * with softhsm2.conf (absolute tokendir), tokens/, a token labelled
 * @p label initialised with random SO and user PINs kept in so.pin and
 * user.pin (mode 0600), and uri (the PKCS#11 URI, pin-source=file:...).
 * Later starts only read the uri file. Either way it sets SOFTHSM2_CONF for
 * this process so the module finds the token.
 *
 * @param[in]  state_dir  absolute or relative folder, created if missing.
 * @param[in]  module     module path; NULL for P11_SOFTHSM_DEFAULT_MODULE.
 * @param[out] uri        the URI (NUL-terminated).
 * @return 0, P11_ESETUP (message in @p err), P11_EMODULE, -errno.
 * @note Start-up only, before threads and before p11_open(); it changes the
 *       process environment.
 */
int p11_softhsm_setup(const char *state_dir, const char *module,
    const char *label, char uri[P11_URI_PATH_MAX + 512], char err[256]);

#endif /* SR_PKCS11_P11_H */
