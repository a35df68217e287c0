/*
 * appliance/session.h: the state behind console login: the session table
 * (the sr_session cookie and its CSRF token, idle and absolute timeouts)
 * and the failed-login back-off (per account, per account and source
 * address, per source address). appliance/api_session.c answers
 * POST /api/login and /api/logout with them; api.c checks the cookie.
 * Shared by the appliance's files and its tests only.
 *
 * Both live in memory only: a restart logs everyone out and forgets the
 * counters. Session ids and CSRF tokens are kept as SHA-256 hashes, looked
 * up by hash and compared in constant time; back-off keys are hashed too.
 * Nothing here logs or audits, and nothing keeps a token in the clear.
 *
 * Time is read through a clock callback (Unix seconds); the daemon uses
 * the wall clock, tests inject their own to cross timeouts without sleeping.
 *
 * Threading: every function may be called from any thread (one mutex per
 * table), except the *_clock() setters: before the table is shared.
 */
#ifndef SR_APPLIANCE_SESSION_H
#define SR_APPLIANCE_SESSION_H

#include <stdint.h>

#include "keystore/keystore.h"

#define API_SESSION_IDLE 900       /* console session idle timeout, s */
#define API_SESSION_ABSOLUTE 28800 /* and absolute lifetime (8 h) */
#define API_SESSION_COOKIE "sr_session"
#define API_SESSION_TOKEN_MAX 64 /* base64url of 32 random bytes + NUL */
#define API_SESSIONS_MAX 4096    /* live sessions; then the LRU one goes */

/* Back-off (seconds and counts). A key's first wait comes with its
 * free-th failure and doubles with each further one up to the cap. */
#define API_BACKOFF_FREE_PAIR 3     /* an account from one address */
#define API_BACKOFF_FREE_ACCOUNT 10 /* an account from all addresses */
#define API_BACKOFF_FREE_ADDR 10    /* an address over all accounts */
#define API_BACKOFF_BASE 5u
#define API_BACKOFF_CAP 900u

/* Wall clock in Unix seconds; NULL in a setter: time(NULL). */
typedef int64_t api_clock_cb(void *arg);

struct api_sessions;
struct api_backoff;

/* ------------------------------------------------------------------ */
/* Sessions                                                             */
/* ------------------------------------------------------------------ */

/**
 * @brief An empty session table on the wall clock.
 * @param[out] out  the table; api_sessions_free() it.
 * @return 0 or -ENOMEM.
 */
int api_sessions_new(struct api_sessions **out);

/** @brief Wipe and free the table. Safe on NULL. */
void api_sessions_free(struct api_sessions *s);

/** @brief Read time through @p cb (tests); NULL: the wall clock. */
void api_sessions_clock(struct api_sessions *s, api_clock_cb *cb, void *arg);

/**
 * @brief Open a session for @p user: a random id and a random CSRF token
 * (32 bytes each from the kernel CSPRNG, as base64url). When every slot
 * holds a live session the least recently used one is ended for it.
 * @param[out] id    the cookie's value; the caller wipes it after use.
 * @param[out] csrf  the CSRF token; the caller wipes it after use.
 * @return 0, or -errno from the CSPRNG (answer 503; nothing was opened).
 */
int api_session_open(struct api_sessions *s, const char *user,
    char id[API_SESSION_TOKEN_MAX], char csrf[API_SESSION_TOKEN_MAX]);

/**
 * @brief Check a session cookie; with @p need_csrf the X-CSRF-Token
 * header @p csrf must match the session's token (state-changing calls).
 * A session lives while it was used less than API_SESSION_IDLE seconds
 * ago and opened less than API_SESSION_ABSOLUTE seconds ago; a successful
 * check counts as use.
 * @param[in]  csrf  the header's value, or NULL when absent.
 * @param[out] user  the session's user id (only on success).
 * @return 0; -ENOENT unknown or timed out (401 invalid_session);
 *         -EPERM the CSRF token is missing or wrong (403 csrf_required;
 *         the session is not touched).
 */
int api_session_check(struct api_sessions *s, const char *token,
    const char *csrf, int need_csrf, char user[KS_ID_LEN + 1]);

/**
 * @brief End the session of cookie @p token (logout).
 * @return 0, or -ENOENT when there was no live one.
 */
int api_session_end(struct api_sessions *s, const char *token);

/** @brief End every session of @p user (deleted or disabled users). */
void api_sessions_end_user(struct api_sessions *s, const char *user);

/* ------------------------------------------------------------------ */
/* Failed-login back-off                                                */
/* ------------------------------------------------------------------ */

/*
 * Three counters per failure: the account from this address, the account
 * from all addresses, and the address over all accounts. An address adds
 * to its account's all-addresses count only for its first
 * API_BACKOFF_FREE_PAIR failures there, so one address alone can never
 * bring the account's own back-off on: it locks out only itself, while
 * failures from many addresses still slow every attempt on the account.
 * A success clears the first two counters, never the address's (an
 * attacker's own account must not reset the address that guesses others).
 */

/**
 * @brief An empty back-off table on the wall clock.
 * @return 0 or -ENOMEM.
 */
int api_backoff_new(struct api_backoff **out);

/** @brief Free the table. Safe on NULL. */
void api_backoff_free(struct api_backoff *b);

/** @brief Read time through @p cb (tests); NULL: the wall clock. */
void api_backoff_clock(struct api_backoff *b, api_clock_cb *cb, void *arg);

/**
 * @brief Seconds until @p name may be tried from @p addr again: the
 * longest of its three waits; 0 now (then check the credentials).
 */
unsigned api_backoff_wait(
    struct api_backoff *b, const char *name, const char *addr);

/** @brief Count one refused login of @p name from @p addr. */
void api_backoff_failed(
    struct api_backoff *b, const char *name, const char *addr);

/** @brief A login of @p name from @p addr succeeded: clear the account's
 * counts (the address's stay). */
void api_backoff_succeeded(
    struct api_backoff *b, const char *name, const char *addr);

/* Room for api_backoff_source()'s text. */
#define API_BACKOFF_SOURCE_MAX 56

/**
 * @brief The source a login's back-off counts for a peer address (16
 * bytes, IPv4 mapped as ::ffff:a.b.c.d): the IPv4 address, or the /64 of
 * an IPv6 one ("2001:db8:1:2::/64"), since one host is usually given a
 * whole /64 and its addresses must count as one source, not 2^64.
 * @return @p out.
 */
const char *api_backoff_source(
    const uint8_t addr[16], char out[API_BACKOFF_SOURCE_MAX]);

#endif /* SR_APPLIANCE_SESSION_H */
