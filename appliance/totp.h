/*
 * appliance/totp.h: time-based one-time passwords (RFC 6238) for the
 * console's second factor: HMAC-SHA1, 6 digits, 30-second steps, the codes
 * of the previous, current and next step accepted (clock drift of up to
 * one step either way), base32 secrets (RFC 4648) and the otpauth:// URI
 * that authenticator apps read from a QR code.
 *
 * Replay protection is part of the API: totp_verify() returns the time
 * step (counter) of the code it accepted, the caller stores it with the
 * user, and passes it back the next time; any code whose step is not
 * strictly later is refused. So a code observed over a shoulder or in a
 * log is useless once used, even within its 90-second window. The caller
 * must update the stored counter atomically with the login decision (a
 * compare-and-swap in the user record), or two logins racing with one
 * code could both pass.
 *
 * Secrets: the raw secret is held in a struct sr_secret (wiped on free)
 * and never logged; codes are compared in constant time, all three
 * candidate steps always computed.
 *
 * Threading: every function may run on any thread; none keeps state.
 */
#ifndef SR_APPLIANCE_TOTP_H
#define SR_APPLIANCE_TOTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/sr.h"

#define TOTP_DIGITS 6
#define TOTP_PERIOD 30
#define TOTP_SECRET_BYTES 20 /* 160 bits, RFC 4226's recommendation */
#define TOTP_SECRET_MAX 64   /* the longest secret accepted */
/* Base32 text of TOTP_SECRET_MAX bytes, padded, plus NUL. */
#define TOTP_BASE32_MAX 105
#define TOTP_URI_MAX 1024

/**
 * @brief A new random secret of TOTP_SECRET_BYTES from the kernel CSPRNG.
 * @param[out] out  owned by the caller; sr_secret_free() it.
 * @return 0, -ENOMEM, or -errno from getrandom (retry later).
 */
int totp_secret_generate(struct sr_secret *out);

/**
 * @brief Base32 (RFC 4648 alphabet, upper case, no padding) of @p len
 * bytes: what authenticator apps and `oathtool -b` read.
 * @return the text length (NUL not counted), or -ENOSPC if @p cap is too
 *         small for it and its NUL.
 * @note The output is a secret: wipe it (sr_wipe) after use.
 */
int totp_base32_encode(char *out, size_t cap, const uint8_t *in, size_t len);

/**
 * @brief Decode base32 text, either case, with or without correct '='
 * padding; nothing else (no blanks), and unused trailing bits must be
 * zero so each secret has exactly one spelling.
 * @param[out] out  the bytes (1 to TOTP_SECRET_MAX); owned by the caller.
 * @return 0; APP_EBASE32 for bad text or a length out of range (tell the
 *         user the secret is malformed); -ENOMEM.
 */
int totp_base32_decode(struct sr_secret *out, const char *text);

/**
 * @brief The code for one time step (RFC 4226 HOTP with counter @p step).
 * @param[out] code  6 digits and a NUL.
 * @return 0, or -EINVAL for an empty or over-long key.
 */
int totp_code_at_step(const struct sr_secret *secret, uint64_t step,
    char code[static TOTP_DIGITS + 1]);

/** @brief The time step of @p t: floor(t / 30); 0 for times before 1970. */
uint64_t totp_step(time_t t);

/**
 * @brief Check a code typed by a user, with replay protection.
 * @param[in]  code          exactly 6 ASCII digits (anything else fails).
 * @param[in]  now           the current time.
 * @param[in]  last_step     the step of the last accepted code, 0 if none.
 * @param[out] accepted_step on success the step to store for next time.
 * @return 0 accepted; APP_ETOTP wrong code (count it towards the
 *         account's back-off); APP_ETOTPREPLAY the code is right but its
 *         step was already used (refuse, and audit it: someone may have
 *         seen the code); -EINVAL for an unusable secret.
 * @note Any thread; constant time over the three candidate steps.
 */
int totp_verify(const struct sr_secret *secret, const char *code, time_t now,
    uint64_t last_step, uint64_t *accepted_step);

/**
 * @brief The enrolment URI: otpauth://totp/Strongroom:ACCOUNT?secret=..
 * &issuer=Strongroom&algorithm=SHA1&digits=6&period=30, with the label
 * and parameters percent-encoded (RFC 3986 unreserved kept).
 * @param[in] account  the user's name (UTF-8, 1 to 256 bytes).
 * @return the length, -EINVAL for an empty or too long account or secret,
 *         -ENOSPC if @p cap is too small.
 * @note The URI holds the secret: show it once and wipe it.
 */
int totp_uri(
    char *out, size_t cap, const char *account, const struct sr_secret *secret);

#endif /* SR_APPLIANCE_TOTP_H */
