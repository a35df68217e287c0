/*
 * appliance/http_impl.h: the character rules http.c (the request parser)
 * and http_response.c (the response writer) share inside the appliance
 * module. Nothing else includes it. Locale-free, any thread.
 */
#ifndef SR_APPLIANCE_HTTP_IMPL_H
#define SR_APPLIANCE_HTTP_IMPL_H

#include <stddef.h>

/** 1 when the @p alen bytes at @p a equal the NUL-terminated @p b,
 * ASCII case-insensitively (header names). */
int http_ci_equal(const char *a, size_t alen, const char *b);
/** 1 for an RFC 9110 tchar (the characters of a token, header names). */
int http_is_tchar(int c);
/** 1 when a field value is VCHAR, obs-text, SP or HTAB only (no CR, LF,
 * NUL or DEL). */
int http_value_ok(const char *v, size_t len);

#endif /* SR_APPLIANCE_HTTP_IMPL_H */
