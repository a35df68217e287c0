/*
 * lib/sr.h: the pieces every Strongroom module shares: logging, error codes
 * and their text, the secret-buffer type, and a few small utilities.
 *
 * lib/ depends on nothing else of ours and on no third-party library; every
 * module may include this header. It must never learn about HSMs, LMDB,
 * TLS or models: those belong to their modules.
 *
 * Threading: every function here may be called from any thread unless its
 * comment says otherwise. Logging configuration (sr_log_init,
 * sr_log_set_sink) is meant to be set once at start, before threads run.
 */
#ifndef SR_LIB_SR_H
#define SR_LIB_SR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Error codes                                                          */
/* ------------------------------------------------------------------ */

/*
 * Every function in Strongroom returns 0 on success and a negative code on
 * failure. Codes from -1 to -999 are plain -errno values (-ENOMEM, -EINVAL,
 * -ENOENT...). Each module owns a range of its own:
 *
 *   -1000 .. -1999  keystore/   (KS_E*)
 *   -2000 .. -2999  pkcs11/     (P11_E*)
 *   -3000 .. -3999  inference/  (INF_E*)
 *   -4000 .. -4999  appliance/  (APP_E*)
 *
 * The table below is the only place codes are defined; sr_strerror() and
 * sr_errname() read it. What a caller should do for each code is documented
 * in the owning module's header.
 */
#define SR_ERROR_MAP(XX) \
	XX(KS_EREQUEST, -1001, "malformed keystore request") \
	XX(KS_ENOTFOUND, -1002, "no such key") \
	XX(KS_EEXISTS, -1003, "a key with this name or serial exists") \
	XX(KS_ESTATE, -1004, "the key's state forbids this operation") \
	XX(KS_EEXPIRED, -1005, "the key is not valid at this time") \
	XX(KS_EINTEGRITY, -1006, \
	    "a keystore record failed its integrity check") \
	XX(KS_EFULL, -1007, "the keystore's map is full") \
	XX(KS_ESTORAGE, -1008, "keystore storage failure") \
	XX(KS_EAPIKEY, -1009, "malformed API key") \
	XX(KS_EDENIED, -1010, "API key not accepted") \
	XX(KS_ECLOSED, -1011, "the keystore is closing") \
	XX(KS_EBUSY, -1012, "the keystore is in use by another process") \
	XX(KS_EREVOKED, -1013, "the key was revoked") \
	XX(KS_ESUSPENDED, -1014, "the key is suspended") \
	XX(KS_ENOTYET, -1015, "the key is not valid yet") \
	XX(KS_EMISS, -1016, "not in the verification cache") \
	XX(P11_EURI, -2001, "malformed PKCS#11 URI") \
	XX(P11_EMODULE, -2002, "PKCS#11 module cannot be loaded or used") \
	XX(P11_ETOKEN, -2003, "token not found") \
	XX(P11_EPIN, -2004, "PIN unavailable, incorrect or locked") \
	XX(P11_EMECH, -2005, "required mechanism missing from the module") \
	XX(P11_ENOTFOUND, -2006, "no object matches") \
	XX(P11_EAMBIGUOUS, -2007, "more than one object matches") \
	XX(P11_EDEVICE, -2008, "HSM device failure; the layer recovered") \
	XX(P11_ESESSION, -2009, "HSM session lost; the layer recovered") \
	XX(P11_EKEY, -2010, "key cannot be used for this operation") \
	XX(P11_EDATA, -2011, "input rejected by the HSM") \
	XX(P11_EINTEGRITY, -2012, "wrapped data failed its integrity check") \
	XX(P11_ENOMEM, -2013, "HSM or module out of memory") \
	XX(P11_EGENERAL, -2014, "unexpected PKCS#11 failure") \
	XX(P11_EEXISTS, -2015, "an object with this label already exists") \
	XX(P11_ENOTSUPP, -2016, "operation not supported by the module") \
	XX(P11_ERECOVER, -2017, "HSM unavailable; recovery did not succeed") \
	XX(P11_ESETUP, -2018, "token set-up failed") \
	XX(INF_EFORMAT, -3001, "model file malformed") \
	XX(INF_EUNSUPPORTED, -3002, \
	    "model uses a feature that is not supported") \
	XX(INF_EMODEL, -3003, "model files disagree with each other") \
	XX(INF_ECONTEXT, -3004, "sequence is full: context length reached") \
	XX(INF_EPARAM, -3005, "invalid inference parameter") \
	XX(INF_EBACKEND, -3006, "inference backend failure") \
	SR_ERROR_MAP_AUTHZ(XX)

/*
 * appliance/ access control (-4100 .. -4199): CIDR lists, the policy file,
 * TOTP, passwords and JWTs. What a caller does with each is in
 * appliance/cidr.h, policy.h, totp.h, password.h and jwt.h.
 */
#define SR_ERROR_MAP_AUTHZ(XX) \
	XX(APP_ECIDR, -4101, "malformed CIDR list") \
	XX(APP_EPOLICY, -4102, "malformed access policy") \
	XX(APP_ETOTP, -4110, "TOTP code not accepted") \
	XX(APP_ETOTPREPLAY, -4111, "TOTP code already used") \
	XX(APP_EBASE32, -4112, "malformed base32 secret") \
	XX(APP_EPWEMPTY, -4120, "empty password") \
	XX(APP_EPWLONG, -4121, "password too long") \
	XX(APP_EPWMISMATCH, -4122, "password does not match") \
	XX(APP_EPWHASH, -4123, "malformed or unusable password hash") \
	XX(APP_EJWTFORMAT, -4130, "malformed token") \
	XX(APP_EJWTALG, -4131, "token algorithm not accepted") \
	XX(APP_EJWTSIG, -4132, "token signature does not verify") \
	XX(APP_EJWTKID, -4133, "token signed by an unknown key") \
	XX(APP_EJWTEXPIRED, -4134, "token expired") \
	XX(APP_EJWTNOTYET, -4135, "token not yet valid") \
	XX(APP_EJWTAUD, -4136, "token issued for another audience") \
	XX(APP_EJWTISS, -4137, "token from another issuer") \
	XX(APP_EJWTLIFETIME, -4138, "token lifetime over the 15-minute limit")

enum sr_error {
#define SR__ERR_ENUM(name, value, text) name = (value),
	SR_ERROR_MAP(SR__ERR_ENUM)
#undef SR__ERR_ENUM
};

/**
 * @brief Text for any Strongroom error code (negative), -errno, or 0.
 * @return A static string; never NULL. Unknown codes give "unknown error".
 * @note Any thread. The string is owned by the library, valid forever.
 */
const char *sr_strerror(int code);

/**
 * @brief The symbolic name of a code ("P11_EURI", "ENOMEM", "OK").
 * @return A static string; never NULL.
 */
const char *sr_errname(int code);

/* ------------------------------------------------------------------ */
/* Logging: the OpenBSD five verbs                                      */
/* ------------------------------------------------------------------ */

/*
 * log_warn    a warning, with strerror(errno) appended
 * log_warnx   a warning, no errno
 * log_info    normal operation worth recording
 * log_debug   developer detail; off unless asked for
 * fatal/fatalx  log and exit(1): start-up and impossible states only, never
 *             for anything a client can cause.
 *
 * The level is checked before the arguments are formatted (and before they
 * are evaluated), so a disabled log_debug costs one comparison. Each line
 * carries the thread's tag (sr_log_thread_tag) so "loop3", "hsm-worker" or
 * "gpu-sched" show up. Never pass a secret: struct sr_secret has no printing
 * path on purpose.
 */
enum sr_log_level {
	SR_LOG_WARN = 0,
	SR_LOG_INFO = 1,
	SR_LOG_DEBUG = 2,
};

/** Current verbosity; read by the macros. Set with sr_log_init(). */
extern volatile int sr_log_verbosity;

/**
 * @brief Where a formatted line goes. Tests install one to capture output.
 * @param level  the line's level; @param line  NUL-terminated, no newline,
 *               valid only during the call.
 */
typedef void sr_log_sink_cb(int level, const char *line, void *arg);

/**
 * @brief Set verbosity and the process name that starts every line.
 * @param procname  copied (at most 15 bytes kept).
 * @note Call once at start, before other threads log.
 */
void sr_log_init(int verbosity, const char *procname);

/** @brief Replace the sink (NULL restores stderr). Call before threads run. */
void sr_log_set_sink(sr_log_sink_cb *sink, void *arg);

/**
 * @brief Name this thread in log lines ("loop3"); copied, at most 15 bytes.
 * A thread other than the process's main one also takes "sr-<tag>" (cut
 * to 15 bytes) as its system name, as top -H, perf and gdb show it; the
 * main thread keeps the program's name, which pgrep and killall match.
 */
void sr_log_thread_tag(const char *tag);

void sr_log__emit(int level, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sr_log__vemit(int level, int errnum, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
_Noreturn void sr_log__fatal(int errnum, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int sr_log__errno(void);

#define log_warn(...) sr_log__emit(SR_LOG_WARN, sr_log__errno(), __VA_ARGS__)
#define log_warnx(...) sr_log__emit(SR_LOG_WARN, 0, __VA_ARGS__)
#define log_info(...) \
	do { \
		if (sr_log_verbosity >= SR_LOG_INFO) \
			sr_log__emit(SR_LOG_INFO, 0, __VA_ARGS__); \
	} while (0)
#define log_debug(...) \
	do { \
		if (sr_log_verbosity >= SR_LOG_DEBUG) \
			sr_log__emit(SR_LOG_DEBUG, 0, __VA_ARGS__); \
	} while (0)
#define fatal(...) sr_log__fatal(sr_log__errno(), __VA_ARGS__)
#define fatalx(...) sr_log__fatal(0, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* Secret buffers                                                       */
/* ------------------------------------------------------------------ */

/*
 * Key material, PINs and anything else that must not outlive its use lives
 * in a struct sr_secret. The memory is locked against swapping where the
 * system allows, wiped with explicit_bzero before it is freed, and there is
 * deliberately no function that formats or prints it. Fields are private.
 */
struct sr_secret {
	unsigned char *_bytes;
	size_t _len;
	int _locked;
};

/**
 * @brief Allocate a zeroed secret of @p len bytes (len may be 0).
 * @return 0, or -ENOMEM (the secret is left empty).
 * @note The caller owns the secret and must sr_secret_free() it.
 */
int sr_secret_alloc(struct sr_secret *s, size_t len);

/** @brief Allocate and copy @p len bytes from @p src. 0 or -ENOMEM. */
int sr_secret_set(struct sr_secret *s, const void *src, size_t len);

/** @brief Wipe and free; safe on a zeroed or already freed secret. */
void sr_secret_free(struct sr_secret *s);

/** @brief The bytes (owned by @p s, valid until sr_secret_free). */
static inline unsigned char *
sr_secret_bytes(const struct sr_secret *s)
{
	return s->_bytes;
}

static inline size_t
sr_secret_len(const struct sr_secret *s)
{
	return s->_len;
}

/** @brief Wipe memory so the compiler cannot drop the stores. */
void sr_wipe(void *p, size_t len);

/** @brief free() @p p (from malloc; NULL is fine) after wiping the whole
 * block malloc gave, not only the bytes in use. */
void sr_free_wiped(void *p);

/**
 * @brief realloc() that leaves no copy behind: a new block of @p size,
 * the first @p keep bytes of @p p copied into it (at most @p size), then
 * @p p wiped and freed (sr_free_wiped). On failure NULL and @p p as it was.
 */
void *sr_realloc_wiped(void *p, size_t keep, size_t size);

/**
 * @brief A JSON library's allocator that leaves no copy behind: the
 * three functions of yyjson's yyjson_alc (malloc, realloc, free; @p ctx
 * unused), so a parsed document's strings (prompts, credentials) are
 * wiped when it is freed or grown. Any thread.
 */
void *sr_alc_malloc(void *ctx, size_t size);
void *sr_alc_realloc(void *ctx, void *p, size_t old_size, size_t size);
void sr_alc_free(void *ctx, void *p);

/** The most sr_stack_wipe() clears in one call. */
#define SR_STACK_WIPE_MAX (128 * 1024)

/**
 * @brief Wipe @p bytes (at most SR_STACK_WIPE_MAX) of the calling
 * thread's stack below the caller's frame: what finished calls left there
 * (a credential a library copied into a local array, an HMAC's input
 * block) is gone. A thread that handled a secret calls it when it goes
 * back to waiting; the deepest chains measured (a worker in SoftHSM2 and
 * OpenSSL, Argon2; a loop in TLS and the router) stay under 32 KiB.
 * About 1 us per 32 KiB. Any thread.
 */
void sr_stack_wipe(size_t bytes);

/**
 * @brief Constant-time equality of two buffers of the same length.
 * @return 1 if equal, 0 if not; time depends only on @p len.
 */
int sr_ct_equal(const void *a, const void *b, size_t len);

/* ------------------------------------------------------------------ */
/* Small utilities                                                      */
/* ------------------------------------------------------------------ */

/**
 * @brief One step of xoshiro256** (Blackman and Vigna) over the state
 * @p s (not all zero): the project's reproducible, non-cryptographic PRNG
 * (sampling seeds, random test weights). Never for keys or nonces.
 * @note The caller owns @p s; one thread at a time per state.
 */
uint64_t sr_xoshiro_next(uint64_t s[4]);

/**
 * @brief Lower-case hex of @p len bytes into @p out (2*len+1 bytes, NUL
 * terminated). Not for secrets that must not be shown.
 */
void sr_hex_encode(char *out, const void *in, size_t len);

/**
 * @brief @p v in decimal into @p out (at least 20 bytes; no NUL written),
 * without printf: for lines written on hot paths (HTTP heads, audit
 * lines). @return the number of digits.
 */
size_t sr_u64_decimal(char *out, uint64_t v);

/**
 * @brief Copy the string @p src into @p dst of @p cap bytes (cap > 0),
 * cut at cap - 1 bytes and always NUL-terminated: snprintf(dst, cap, "%s",
 * src) without printf, for request paths. @return strlen(dst).
 */
size_t sr_strlcpy(char *dst, const char *src, size_t cap);

/**
 * @brief Decode hex (either case) into @p out.
 * @return the number of bytes written, or -EINVAL (odd length, non-hex) or
 *         -ENOSPC (@p cap too small).
 */
int sr_hex_decode(void *out, size_t cap, const char *hex, size_t hexlen);

/**
 * @brief Read a whole small file (at most @p max bytes) into a secret,
 * dropping one trailing "\n" or "\r\n".
 * @return 0; -errno from open/read; -EFBIG when larger than @p max.
 * @note The file is read with O_NOFOLLOW|O_CLOEXEC; the caller owns @p out.
 */
int sr_secret_read_file(struct sr_secret *out, const char *path, size_t max);

/**
 * @brief Write @p len bytes to @p path, created new with mode 0600 (fails
 * with -EEXIST if it exists), then fsync file and folder.
 * @return 0 or -errno.
 */
int sr_write_private_file(const char *path, const void *data, size_t len);

/**
 * @brief Fill @p buf with bytes from the kernel's CSPRNG (getrandom).
 * @return 0 or -errno. For key material use the HSM's generator instead.
 */
int sr_os_random(void *buf, size_t len);

#endif /* SR_LIB_SR_H */
