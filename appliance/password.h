/*
 * appliance/password.h: console passwords, hashed with Argon2id through
 * libargon2 and stored as PHC strings
 * ("$argon2id$v=19$m=65536,t=3,p=1$SALT$HASH").
 *
 * Parameters (PW_M_KIB, PW_T_COST, PW_PARALLELISM): m = 64 MiB, t = 3,
 * p = 1, a 16-byte salt from the kernel CSPRNG and a 32-byte tag. This is
 * RFC 9106's second recommended setting (64 MiB, 3 passes) with one lane
 * instead of four: hashing runs on the daemon's worker threads, one hash
 * per thread, so concurrency comes from concurrent logins and a single
 * login never takes more than one core. It is well above OWASP's floor
 * (19 MiB, t = 2, p = 1) and costs roughly 0.1 to 0.3 s on one core of a
 * current server, which a person logging in does not notice and an
 * attacker with a stolen database pays per guess, with 64 MiB of memory
 * per guess in flight. The worker pool bounds memory: N workers use at
 * most N x 64 MiB. pw_needs_rehash() tells the caller to re-hash a stored
 * string after these defaults change (at the next successful login).
 *
 * Inputs: passwords are bytes (the console sends UTF-8); empty ones and
 * ones longer than PW_MAX_BYTES are refused with distinct codes before any
 * hashing, so a megabyte "password" costs nothing. The caller owns the
 * password buffer and wipes it after the call (sr_wipe); nothing here
 * keeps or copies it beyond libargon2's own memory, which libargon2 wipes.
 *
 * Threading: any thread, but each hash or verify takes 64 MiB and a few
 * hundred milliseconds: call them from a worker thread, never on a loop.
 */
#ifndef SR_APPLIANCE_PASSWORD_H
#define SR_APPLIANCE_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define PW_M_KIB 65536u /* 64 MiB */
#define PW_T_COST 3u
#define PW_PARALLELISM 1u
#define PW_SALT_BYTES 16
#define PW_TAG_BYTES 32
#define PW_MAX_BYTES 1024
/* The longest PHC string pw_hash() writes or pw_verify() reads, + NUL. */
#define PW_PHC_MAX 160

/* Cost parameters; the defaults above unless a test asks for less. */
struct pw_params {
	uint32_t m_kib;
	uint32_t t_cost;
	uint32_t parallelism;
};

/**
 * @brief Hash a new password with the default parameters.
 * @param[out] phc  the PHC string to store, NUL-terminated.
 * @return 0; APP_EPWEMPTY (ask for a password); APP_EPWLONG (over
 *         PW_MAX_BYTES: tell the user the limit); -ENOMEM when Argon2
 *         cannot get its memory (retry later); -errno from the CSPRNG.
 */
int pw_hash(char phc[static PW_PHC_MAX], const void *password, size_t len);

/**
 * @brief As pw_hash() with explicit parameters (tests use small ones;
 * m_kib >= 8 * parallelism, t_cost >= 1, parallelism 1 to 16).
 * @return as pw_hash(), or -EINVAL for parameters out of range.
 */
int pw_hash_with(char phc[static PW_PHC_MAX], const void *password, size_t len,
    const struct pw_params *params);

/**
 * @brief Check a password against a stored PHC string (constant-time
 * tag comparison inside libargon2).
 * @return 0 match; APP_EPWMISMATCH wrong password (count it towards the
 *         back-off); APP_EPWEMPTY / APP_EPWLONG as for pw_hash (treat like
 *         a mismatch towards the user); APP_EPWHASH the stored string is
 *         not an Argon2id PHC string we accept, including costs over 1 GiB
 *         or 64 passes (a corrupted record: log it, refuse the login);
 *         -ENOMEM.
 */
int pw_verify(const char *phc, const void *password, size_t len);

/**
 * @brief The same work as pw_verify() for a user that does not exist, so
 * the time of a failed login does not tell whether the name is known. It
 * verifies against a hash of a random password made once per process (on
 * first use, with the default parameters), so it costs what a real verify
 * costs, and nothing more to set up.
 * @return always APP_EPWMISMATCH (or APP_EPWEMPTY / APP_EPWLONG, checked
 *         first exactly as pw_verify() does).
 */
int pw_verify_dummy(const void *password, size_t len);

/**
 * @brief Whether a stored PHC string uses other parameters than the
 * current defaults (re-hash after the next successful login).
 * @return 1 yes, 0 no; 1 for a string that does not parse.
 */
int pw_needs_rehash(const char *phc);

#endif /* SR_APPLIANCE_PASSWORD_H */
