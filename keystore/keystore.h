/*
 * keystore/keystore.h: the key hierarchy under the HSM's root keys.
 *
 * Every key Strongroom hands out or uses below the root lives here: records
 * in one LMDB environment (a named database per record kind), secret
 * material sealed with AES-256-GCM under a data-encryption key (DEK) whose
 * own copy is wrapped under the HSM's root KEK, and derivations from the
 * HSM's root KDK. Nothing is acknowledged before it is on disk.
 *
 * The API is message-shaped: one call, ks_call(), takes a plain request
 * struct and fills a plain reply struct, both fixed-size with explicit
 * lengths, validated as if they had come over a socket. No pointer crosses
 * the boundary, so the keystore can move into its own process later and
 * only the transport changes.
 *
 * Caveats
 * - Strings in requests are NUL-terminated inside their fixed arrays; a
 *   request whose string runs to the end of its array is refused
 *   (KS_EREQUEST). Sizes (`size` fields) must equal sizeof the struct.
 * - Replies that carry secret material (KS_OP_MATERIAL, KS_OP_DEVICE_KEY,
 *   KS_OP_APIKEY_CREATE, KS_OP_CRED_GET, KS_OP_CRED_SET) hold it in the reply
 * struct itself: the caller must ks_reply_wipe() the reply as soon as the
 * secret is used.
 * - Keys are referred to by their 12-character id (base62). Versions start
 *   at 1; a request with version 0 means "the current version".
 * - Never fork after ks_open() (LMDB and PKCS#11 forbid it).
 *
 * Threading: ks_call() may be called from any number of threads. Reads run
 * in the calling thread on an LMDB read transaction and never block on
 * writers; writes are queued to the keystore's single writer thread, which
 * commits each batch in one transaction (group commit) and wakes each
 * caller only after the commit is on disk. ks_open() and ks_close() must not
 * overlap other calls.
 *
 * Errors: ks_call() returns 0 or a negative code (lib/sr.h); the same code
 * is in reply->status. What the caller should do:
 *   KS_EREQUEST    the request is malformed (size, enum, unterminated or
 *                  over-long string, bad version): a caller bug; fix it.
 *   KS_ENOTFOUND   no key (or version) with that id: answer 404.
 *   KS_EEXISTS     the name or serial is taken (app, signing and user
 *                  names are unique per kind): answer 409.
 *   KS_ESTATE      the key's state forbids this (e.g. resume a revoked key,
 *                  material of a suspended key): answer 409 with the state.
 *                  (UPDATE with record_version) the key changed since the
 *                  caller read it: read it again and retry.
 *   KS_EEXPIRED    outside not_before .. expires_at: answer 403.
 *   KS_EINTEGRITY  a record or ciphertext failed its integrity check (edited,
 *                  swapped, or sealed under another DEK): raise an alarm; the
 *                  record is not used.
 *   KS_EFULL       the LMDB map is full: nothing was written; grow the map
 *                  (operator) and retry.
 *   KS_ESTORAGE    LMDB failed otherwise (I/O, corrupt environment): answer
 *                  503 and alert.
 *   KS_EAPIKEY     an API key is malformed or its checksum is wrong (no
 *                  lookup was made): answer 401.
 *   KS_EDENIED     an API key is unknown or its secret is wrong: 401.
 *   KS_EREVOKED, KS_ESUSPENDED, KS_ENOTYET
 *                  (API-key verification, after the secret matched) the key
 *                  or its owner is revoked, suspended or not valid yet;
 *                  KS_EEXPIRED there means expired: 401 with that code.
 *   KS_EMISS       (a request with KS_REQ_NO_WAIT) the answer needs the
 *                  HSM or a write: repeat the request without the flag on
 *                  a worker thread.
 *   KS_ESTATE      (CRED_SET TOTP_USE) the step was already used: a
 *                  replayed one-time code; refuse the login and audit it.
 *   KS_ECLOSED     the keystore is shutting down: answer 503.
 *   KS_EBUSY       (ks_open) another process has this keystore open: stop
 *                  it, or use its API; one process owns a keystore.
 *   P11_E*         the HSM failed; see pkcs11/p11.h (retry P11_EDEVICE and
 *                  P11_ESESSION once; answer 503 on P11_ERECOVER).
 *   -ENOMEM        allocation failed.
 */
#ifndef SR_KEYSTORE_KEYSTORE_H
#define SR_KEYSTORE_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/sr.h"

struct p11_ctx;
struct ks;

#define KS_ID_LEN 12         /* base62 characters of a key id */
#define KS_NAME_MAX 64       /* a key's display name, bytes incl. NUL */
#define KS_SERIAL_MAX 64     /* a device serial, bytes incl. NUL */
#define KS_SCOPE_MAX 512     /* scope JSON, bytes incl. NUL */
#define KS_REASON_MAX 128    /* revocation reason text, bytes incl. NUL */
#define KS_CIDR_MAX 8        /* bound networks per key */
#define KS_MATERIAL_MAX 65   /* largest material: a P-256 public point */
#define KS_APIKEY_LEN 64     /* characters of an API key */
#define KS_LIST_MAX 32       /* records per list page */
#define KS_LAST_USED_STEP 60 /* s: how coarsely an API key's use is noted */
#define KS_APPLIANCE_ID_LEN 16

enum ks_kind {
	KS_KIND_APP = 1, /* an application (service); parent of devices */
	KS_KIND_USER,    /* a person or service account */
	KS_KIND_DEVICE,  /* enrolled device: derived key, nothing stored */
	KS_KIND_SIGNING, /* EC P-256 key pair in the HSM (JWT, per domain) */
	KS_KIND_DATA,    /* a generic AES-256 data key */
	KS_KIND_APIKEY,  /* an API key of an app or user (hash only) */
	KS_KIND_COUNT
};

/* Lifecycle states (NIST SP 800-57); compromise is a flag beside them. */
enum ks_state {
	KS_STATE_PRE_ACTIVE = 1, /* created, not_before in the future */
	KS_STATE_ACTIVE,
	KS_STATE_SUSPENDED, /* temporarily unusable; can resume */
	KS_STATE_REVOKED,   /* permanently unusable; metadata kept */
	KS_STATE_DESTROYED, /* material crypto-shredded; tombstone kept */
	KS_STATE_COUNT
};

#define KS_FLAG_COMPROMISED 0x1u  /* revoked because it leaked */
#define KS_FLAG_DECRYPT_ONLY 0x2u /* an older version after rotation */
#define KS_FLAG_RETIRED 0x4u      /* an API key a rotation replaced */

struct ks_cidr {
	uint8_t family; /* 4 or 6; 0 marks an unused slot */
	uint8_t prefix; /* 0..32 or 0..128 */
	uint8_t addr[16];
};

/* What ks_get/ks_list return: metadata only, never material. */
struct ks_meta {
	char id[KS_ID_LEN + 1];
	char parent[KS_ID_LEN + 1]; /* empty when none */
	char name[KS_NAME_MAX];
	uint8_t kind;             /* enum ks_kind */
	uint8_t state;            /* enum ks_state */
	uint32_t flags;           /* KS_FLAG_* */
	uint32_t version;         /* this record's key version */
	uint32_t current_version; /* the newest version of the key */
	uint64_t record_version;  /* bumped on every change (replication) */
	char origin[KS_APPLIANCE_ID_LEN + 1];       /* appliance that made it */
	int64_t created_at, not_before, expires_at; /* Unix seconds; 0: none */
	int64_t updated_at;
	uint32_t dek_version;     /* DEK that seals the material; 0: none */
	uint32_t root_version;    /* root KDK/KEK version it came from */
	char scope[KS_SCOPE_MAX]; /* JSON text, "" when none */
	struct ks_cidr cidrs[KS_CIDR_MAX];
	char reason[KS_REASON_MAX]; /* revocation reason */
	char apikey_prefix[16];     /* API keys: first characters, shown */
	char serial[KS_SERIAL_MAX]; /* devices: the enrolled serial */
	int64_t last_used;          /* API keys: last accepted verification,
	                               to KS_LAST_USED_STEP s; 0: never */
};

enum ks_op {
	KS_OP_CREATE = 1, /* create a key (any kind but DEVICE, APIKEY) */
	KS_OP_GET,        /* metadata of one key (version 0: current) */
	KS_OP_LIST,       /* metadata by kind and parent, paginated */
	KS_OP_ROTATE,     /* new version; older ones decrypt-only */
	KS_OP_SUSPEND,
	KS_OP_RESUME,
	KS_OP_REVOKE,        /* with a reason; compromised flag optional */
	KS_OP_DESTROY,       /* crypto-shred material, keep a tombstone */
	KS_OP_EXPIRING,      /* keys whose expires_at is within `within` s */
	KS_OP_MATERIAL,      /* the secret material of a key version */
	KS_OP_DEVICE_KEY,    /* derive (and enrol once) a device's key */
	KS_OP_APIKEY_CREATE, /* a new API key for an app or user */
	KS_OP_APIKEY_VERIFY, /* check a presented API key */
	KS_OP_ROOT_ROTATE,   /* new root KEK and KDK versions; re-wrap DEKs */
	KS_OP_STATS,         /* counts and cache figures */
	KS_OP_SIGN,          /* ECDSA P-256 (JWS r||s) with a signing key */
	KS_OP_CHECK,         /* full consistency walk of the environment */
	KS_OP_PUBLIC,        /* public point of a signing key's version */
	KS_OP_CRED_GET,      /* a user's console credentials (by id or name) */
	KS_OP_CRED_SET,      /* set a password hash, enrol or use TOTP */
	KS_OP_APIKEY_RETIRE, /* end an API key's validity at a given time */
	KS_OP_UPDATE,        /* change an app's name, scope, CIDRs, expiry */
	KS_OP_USAGE_FLUSH,   /* write API keys' noted last use to records */
	KS_OP_COUNT
};

struct ks_create_req {
	uint8_t kind;               /* APP, USER, SIGNING, DATA */
	char parent[KS_ID_LEN + 1]; /* optional */
	char name[KS_NAME_MAX];     /* required for APP and SIGNING */
	int64_t not_before;         /* 0: now */
	int64_t expires_at;         /* 0: none (APP: at most 1 year) */
	char scope[KS_SCOPE_MAX];
	struct ks_cidr cidrs[KS_CIDR_MAX];
};

struct ks_key_req { /* GET, ROTATE, SUSPEND, RESUME, DESTROY,
	               MATERIAL, APIKEY (revoke via REVOKE) */
	char id[KS_ID_LEN + 1];
	uint32_t version; /* 0: current */
};

struct ks_revoke_req {
	char id[KS_ID_LEN + 1];
	uint8_t compromised; /* 1: the key leaked */
	char reason[KS_REASON_MAX];
};

struct ks_list_req {
	uint8_t kind;               /* required */
	char parent[KS_ID_LEN + 1]; /* "" for any */
	char after[KS_ID_LEN + 1];  /* page cursor: last id of previous page */
	uint32_t limit;             /* 1..KS_LIST_MAX */
};

struct ks_expiring_req {
	int64_t within; /* seconds from now, e.g. 72 h */
	char after[KS_ID_LEN + 1];
	uint32_t limit;
};

struct ks_device_req {
	char app[KS_ID_LEN + 1];
	char serial[KS_SERIAL_MAX]; /* [A-Za-z0-9._:-], 1..63 bytes */
};

struct ks_apikey_create_req {
	char owner[KS_ID_LEN + 1]; /* an APP or USER key id */
	int64_t expires_at;        /* 0: the owner's expiry */
	char scope[KS_SCOPE_MAX];
};

struct ks_apikey_verify_req {
	char key[KS_APIKEY_LEN + 1];
};

/* A user's console credentials (KS_OP_CRED_*). The password is stored as
 * the PHC string of its Argon2id hash (never the password); the TOTP
 * secret is random from the HSM, sealed under the DEK like any material,
 * and returned only in ks_reply.material (wipe it). */
#define KS_PHC_MAX 160 /* PHC string incl. NUL (appliance/password.h) */
#define KS_TOTP_SECRET_LEN 20

enum ks_cred_what {
	KS_CRED_PASSWORD = 1, /* store `phc` (an "$argon2id$..." string) */
	KS_CRED_TOTP_ENROL,   /* new secret (reply.material), step reset */
	KS_CRED_TOTP_USE,     /* record `step` as used: KS_ESTATE unless it is
	                         later than the last one recorded (replay) */
	KS_CRED_COUNT
};

struct ks_cred_req {
	char id[KS_ID_LEN + 1]; /* the USER key; GET: "" to look up `name` */
	char name[KS_NAME_MAX]; /* GET only: the user's unique name */
	uint8_t what;           /* SET: enum ks_cred_what */
	char phc[KS_PHC_MAX];   /* SET PASSWORD */
	uint64_t step;          /* SET TOTP_USE: the accepted time step */
};

struct ks_retire_req {
	char id[KS_ID_LEN + 1]; /* an APIKEY */
	int64_t expires_at;     /* new end of validity (never later than the
	                           key's own); at least now */
};

/*
 * KS_OP_USAGE_FLUSH (no arguments): an accepted API-key verification notes
 * the time in memory (at most once a KS_LAST_USED_STEP per key; GET and
 * LIST show it at once as meta.last_used); this writes the noted times
 * into the keys' records in one write transaction (never moving one
 * backwards). ks_close does it too. Call it from a worker now and then
 * (the daemon: every expiry watch tick). Errors: the store's; what was not
 * written is kept for the next call.
 *
 * KS_OP_UPDATE: change the attributes of a key in place, on every version
 * of it, in one write transaction: the fields named in `what`, nothing
 * else (state, owner, material and versions stay as they were). Each
 * record is rewritten with a new MAC, and cached verifications of the
 * key's API keys are dropped at once, so the change holds for the next
 * verification of any of them. Apps only today.
 * - `name` (KS_UPDATE_NAME): 1..63 bytes, unique per kind; the old name is
 *   freed. The key's own name again is no change.
 * - `scope` (KS_UPDATE_SCOPE): "" or a JSON object, replaces the whole
 *   scope (the caller merges what it keeps).
 * - `cidrs` (KS_UPDATE_CIDRS): replaces every bound network; none: any.
 * - `expires_at` (KS_UPDATE_EXPIRES): after now and after not_before; for
 *   an app at most one year after the later of now and not_before (the
 *   create rule, counted from the change). The key's API keys keep their
 *   own expiry, so a later one does not lengthen them.
 * - `record_version`: 0, or the record_version of the key's newest version
 *   as the caller read it: the update is refused if the key changed since
 *   (read again, merge again, retry).
 * Errors and what the caller does:
 *   KS_EREQUEST   a bad field, no or an unknown `what` bit, a kind other
 *                 than APP, an expiry outside the rules: a caller bug, or
 *                 400 for a value a client sent.
 *   KS_ENOTFOUND  no key with that id, or it is not of `kind`: 404.
 *   KS_EEXISTS    another key of the kind has the new name: 409.
 *   KS_ESTATE     the key is revoked or destroyed (its metadata is frozen:
 *                 a deleted app is gone, 404), or `record_version` no
 *                 longer matches (re-read and retry; 409 after a few).
 *   KS_EINTEGRITY a record failed its MAC: alarm; nothing was written.
 *   KS_EFULL, KS_ESTORAGE, KS_ECLOSED: as for any write (503).
 * A suspended key may be updated and stays suspended; an expired one may
 * be given a new expiry.
 */
#define KS_UPDATE_NAME 0x1u
#define KS_UPDATE_SCOPE 0x2u
#define KS_UPDATE_CIDRS 0x4u
#define KS_UPDATE_EXPIRES 0x8u
#define KS_UPDATE_ALL 0xFu

struct ks_update_req {
	char id[KS_ID_LEN + 1];
	uint8_t kind;            /* what the caller expects the key to be */
	uint32_t what;           /* KS_UPDATE_*: at least one */
	uint64_t record_version; /* 0, or the newest version's as read */
	char name[KS_NAME_MAX];
	char scope[KS_SCOPE_MAX];
	struct ks_cidr cidrs[KS_CIDR_MAX];
	int64_t expires_at;
};

struct ks_sign_req {
	char id[KS_ID_LEN + 1]; /* a SIGNING key */
	uint32_t len;
	uint8_t prehashed; /* 1: msg is the 32-byte SHA-256 to sign */
	uint8_t msg[2048];
};

/* ks_request.flags */
/* The caller is an event loop: answer only what needs neither the HSM nor
 * a write (GET, LIST, EXPIRING, STATS from LMDB and memory; APIKEY_VERIFY
 * from the verification cache only, never the record), KS_EMISS for
 * anything else, so the loop can hand that request to a worker thread. */
#define KS_REQ_NO_WAIT 1u

struct ks_request {
	uint32_t size;  /* sizeof(struct ks_request) */
	uint32_t op;    /* enum ks_op */
	uint32_t flags; /* KS_REQ_*; 0 by ks_request_init */
	union {
		struct ks_create_req create;
		struct ks_key_req key;
		struct ks_revoke_req revoke;
		struct ks_list_req list;
		struct ks_expiring_req expiring;
		struct ks_device_req device;
		struct ks_apikey_create_req apikey_create;
		struct ks_apikey_verify_req apikey_verify;
		struct ks_sign_req sign;
		struct ks_cred_req cred;
		struct ks_retire_req retire;
		struct ks_update_req update;
	} u;
};

struct ks_stats {
	uint64_t keys[KS_KIND_COUNT]; /* records per kind (all versions) */
	uint32_t dek_version, root_kek_version, root_kdk_version;
	uint64_t dek_encryptions;           /* under the current DEK */
	uint64_t cache_hits, cache_misses;  /* API-key verification cache */
	uint64_t commits, committed_writes; /* group commit figures */
	uint64_t map_size, map_used;        /* bytes */
	uint64_t checked; /* CHECK: records, DEKs and index entries verified */
	char appliance_id[KS_APPLIANCE_ID_LEN + 1];
};

struct ks_reply {
	uint32_t size;            /* sizeof(struct ks_reply) */
	int32_t status;           /* 0 or the error ks_call returned */
	struct ks_meta meta;      /* CREATE, GET, ROTATE, state changes,
	                             UPDATE, DEVICE_KEY, APIKEY_* (the owner
	                             for VERIFY) */
	uint32_t count;           /* LIST, EXPIRING: entries in `list` */
	char next[KS_ID_LEN + 1]; /* LIST, EXPIRING: cursor; "" at end */
	uint32_t material_len;    /* MATERIAL, DEVICE_KEY, SIGN */
	uint8_t material[KS_MATERIAL_MAX]; /* secret: ks_reply_wipe() */
	char apikey[KS_APIKEY_LEN + 1];    /* APIKEY_CREATE: shown once */
	uint8_t created;       /* DEVICE_KEY: 1 on first enrolment */
	struct ks_stats stats; /* STATS */
	/* CRED_GET / CRED_SET: the user's credentials (meta is the user's).
	 * The TOTP secret, when enrolled, is in `material` (GET, ENROL). */
	struct {
		char phc[KS_PHC_MAX]; /* "" when no password is set */
		uint64_t totp_step;   /* last accepted step; 0: none */
		uint8_t totp_enrolled;
	} cred;
	/* LIST, EXPIRING: `count` entries; those past `count` are left as
	 * they were (ks_reply_init does not clear this array: it is most of
	 * the reply, and clearing it on every call would cost more than a
	 * lookup). Last, so a transport can send only the entries used. */
	struct ks_meta list[KS_LIST_MAX];
};

/* Open options. */
struct ks_options {
	const char *path;       /* folder of the LMDB environment */
	size_t map_size;        /* bytes; 0: 1 GiB */
	unsigned cache_entries; /* API-key cache; 0: 65536 */
	unsigned dek_cache;     /* unwrapped DEKs kept; 0: 64 */
	int64_t dek_max_age;    /* seconds; 0: 30 days */
	uint64_t dek_max_uses;  /* encryptions; 0: 2^32 - 2^24 */
};

/**
 * @brief Open (creating on first start) the keystore in @p opts->path on
 * the HSM context @p hsm: finds or creates the root KEK, root KDK and the
 * API-key pepper in the HSM, opens the LMDB environment and starts the
 * writer thread.
 * @param[in] hsm  borrowed; must outlive the keystore.
 * @param[out] out the keystore; ks_close() it.
 * @param[out] err a message for the operator on failure (may be NULL).
 * @return 0, KS_EBUSY, KS_ESTORAGE, KS_EINTEGRITY (meta record), P11_E*,
 *         -errno.
 * @note Start-up only.
 */
int ks_open(struct p11_ctx *hsm, const struct ks_options *opts, struct ks **out,
    char err[256]);

/**
 * @brief Stop the writer after it has committed everything queued, close
 * LMDB, wipe every cached key. Safe on NULL. No call may be in flight.
 */
void ks_close(struct ks *ks);

/** @brief Zero a request or reply the caller filled. */
void ks_request_init(struct ks_request *req, enum ks_op op);
void ks_reply_init(struct ks_reply *rep);

/** @brief Wipe the secret fields of a reply (material, apikey). */
void ks_reply_wipe(struct ks_reply *rep);

/**
 * @brief Run one request. Validates it fully first.
 * @param[in]  req  read only during the call.
 * @param[out] rep  filled; about 30 KiB, so callers keep it off small
 *                  stacks.
 * @return 0 or a negative code (also in rep->status).
 * @note Any thread.
 */
int ks_call(struct ks *ks, const struct ks_request *req, struct ks_reply *rep);

/* "<key id>.v<version>": how a token's kid and an audit checkpoint's
 * key_id name one version of a signing key. */
#define KS_VERSION_NAME_MAX (KS_ID_LEN + 13) /* ".v" + 10 digits + NUL */

/** @brief Write "<@p id>.v<@p version>" into @p out. Any thread. */
void ks_version_name(
    char out[KS_VERSION_NAME_MAX], const char *id, uint32_t version);

/**
 * @brief Read a key id, or "<id>.v<N>" (N >= 1), as ks_version_name()
 * writes it. @p *version is 0 for a bare id (the current version).
 * @return 0, or KS_EREQUEST for anything else. Any thread.
 */
int ks_version_parse(
    const char *text, char id[KS_ID_LEN + 1], uint32_t *version);

/**
 * @brief The key of @p kind named @p name (names stay taken whatever the
 * key's state): the active one when there is one, else the last listed.
 * @param[out] rep  the listing's scratch (ks_call's), caller's.
 * @param[out] out  its metadata.
 * @return 0, KS_ENOTFOUND when no key of @p kind has the name, or
 * ks_call's error. The caller checks out->state.
 * @note Any thread.
 */
int ks_find_named(struct ks *ks, unsigned kind, const char *name,
    struct ks_reply *rep, struct ks_meta *out);

/**
 * @brief Why a key of metadata @p m is refused at @p now: KS_EREVOKED
 * (revoked or destroyed), KS_ESUSPENDED, KS_ENOTYET, KS_EEXPIRED; 0 when it
 * is usable. The keystore's own rule for API keys and their owners, for
 * callers that hold a key's metadata (a token's API key). Any thread.
 */
int ks_meta_refusal(const struct ks_meta *m, int64_t now);

/** @brief Printable names of kinds and states ("app", "revoked"). */
const char *ks_kind_name(unsigned kind);
const char *ks_state_name(unsigned state);

/**
 * @brief Check an API key's format and checksum without any lookup.
 * @return 0 or KS_EAPIKEY.
 */
int ks_apikey_check(const char *key, size_t len);

/**
 * @brief The key id inside a presented API key of the right shape
 * (length, prefix, alphabet): what the audit log and the management API
 * name it by; the secret part is never copied. The checksum is not
 * checked here: KS_OP_APIKEY_VERIFY checks it before any lookup, and
 * ks_apikey_check() checks it alone.
 * @return 0 or KS_EAPIKEY.
 */
int ks_apikey_id(const char *key, size_t len, char id[KS_ID_LEN + 1]);

#endif /* SR_KEYSTORE_KEYSTORE_H */
