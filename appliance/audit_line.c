/*
 * appliance/audit_line.c: the bytes of one audit line: JSON string
 * escaping (valid UTF-8 out whatever comes in), the caller's fields, the
 * timestamp, the line's own hash and the chain hash, the checkpoint digest
 * and its ES256 check, and the PEM form of the checkpoint key.
 *
 * Pure functions, any thread. Must never see or print a secret: it only
 * renders what struct audit_event carries (ids, names, addresses).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/sha256.h>

#include "appliance/audit_impl.h"
#include "appliance/digest.h"

/* DER of SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } up to the
 * BIT STRING holding the 65-byte point. */
static const uint8_t spki_p256[26] = { 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a,
	0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
	0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00 };

static const char hash_key[] = ",\"hash\":\"";

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong, surrogate and beyond-U+10FFFF forms. */
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return len;
}

size_t
audit__json_str(char *out, size_t len, const char *s, size_t max, int *cut)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	unsigned char c;

	while (i < n) {
		c = p[i];
		k = utf8_len(p + i, n - i);
		if (i + (k ? k : 1) > max) {
			*cut = 1;
			break;
		}
		if (k == 0) {
			memcpy(out + len, "\\ufffd", 6);
			len += 6;
			i++;
		} else if (k > 1) {
			memcpy(out + len, p + i, k);
			len += k;
			i += k;
		} else if (c == '"' || c == '\\') {
			out[len++] = '\\';
			out[len++] = (char)c;
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(out + len, "\\u00", 4);
			out[len + 4] = hex[c >> 4];
			out[len + 5] = hex[c & 15];
			len += 6;
			i++;
		} else {
			out[len++] = (char)c;
			i++;
		}
	}
	return len;
}

/* ,"name": (a field name of ours: no escaping needed); the new length.
 * Every event renders a dozen of these on a loop: no printf. */
static size_t
put_key(char *out, size_t len, const char *name)
{
	size_t n = strlen(name);

	memcpy(out + len, ",\"", 2);
	memcpy(out + len + 2, name, n);
	memcpy(out + len + 2 + n, "\":", 2);
	return len + n + 4;
}

/* ,"name":"value" with escaping; returns the new length. */
static size_t
put_str(char *out, size_t len, const char *name, const char *v, size_t max,
    int *cut)
{
	len = put_key(out, len, name);
	out[len++] = '"';
	len = audit__json_str(out, len, v != NULL ? v : "", max, cut);
	out[len++] = '"';
	return len;
}

static size_t
put_num(char *out, size_t len, const char *name, uint64_t v)
{
	len = put_key(out, len, name);
	return len + sr_u64_decimal(out + len, v);
}

int
audit__body_render(const struct audit_event *ev, char *out)
{
	size_t len = 0;
	int cut = 0;

	if (ev == NULL || ev->actor == NULL || ev->actor[0] == '\0' ||
	    ev->status == NULL || ev->status[0] == '\0' || ev->action == NULL ||
	    !audit__name_ok(ev->action, AUDIT_ACTION_MAX, 1) ||
	    strncmp(ev->action, "audit.", 6) == 0)
		return -EINVAL;
	len = put_str(out, len, "actor", ev->actor, AUDIT_ACTOR_MAX, &cut);
	len = put_str(out, len, "action", ev->action, AUDIT_ACTION_MAX, &cut);
	len = put_str(
	    out, len, "resource", ev->resource, AUDIT_RESOURCE_MAX, &cut);
	if (ev->key != NULL)
		len = put_str(out, len, "key", ev->key, AUDIT_KEY_MAX, &cut);
	len = put_str(out, len, "status", ev->status, AUDIT_STATUS_MAX, &cut);
	len = put_num(out, len, "duration_ms", ev->duration_ms);
	if (ev->input_tokens != 0 || ev->output_tokens != 0) {
		len = put_num(out, len, "input_tokens", ev->input_tokens);
		len = put_num(out, len, "output_tokens", ev->output_tokens);
	}
	len = put_str(out, len, "src", ev->src, AUDIT_SRC_MAX, &cut);
	if (cut) {
		memcpy(out + len, ",\"truncated\":true", 17);
		len += 17;
	}
	return (int)len;
}

void
audit__ts_format(int64_t ms, char out[25])
{
	int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	time_t t = (time_t)sec;
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 25, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms - sec * 1000));
}

int
audit__ts_parse(const char *in, char out[25])
{
	struct tm tm, back;
	int ms = 0, n = 0, frac = 0;
	const char *p;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	p = in + strspn(in, "0123456789");
	if (*in != '\0' && *p == '\0') {
		/* Unix seconds, up to 9999-12-31T23:59:59Z: a later year
		 * has no four-digit form to compare with a line's ts. */
		if (p - in > 12 || strtoll(in, NULL, 10) > AUDIT__TS_MAX_S)
			return -EINVAL;
		audit__ts_format(strtoll(in, NULL, 10) * 1000, out);
		return 0;
	}
	if (sscanf(in, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	        &n) != 3 ||
	    n != 10)
		return -EINVAL;
	p = in + n;
	if (*p == 'T' || *p == ' ') {
		n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) !=
		        2 ||
		    n != 5)
			return -EINVAL;
		p += 1 + n;
		if (*p == ':') {
			n = 0;
			if (sscanf(p + 1, "%2d%n", &tm.tm_sec, &n) != 1 ||
			    n != 2)
				return -EINVAL;
			p += 1 + n;
		}
		if (*p == '.') {
			for (p++; *p >= '0' && *p <= '9'; p++, frac++)
				if (frac < 3)
					ms = ms * 10 + (*p - '0');
			if (frac == 0)
				return -EINVAL;
			for (; frac < 3; frac++)
				ms *= 10;
		}
	}
	if (*p == 'Z')
		p++;
	if (*p != '\0')
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	t = timegm(&tm);
	/* timegm normalises 2025-02-30; a round trip must not move it. */
	if (t == (time_t)-1 || tm.tm_mday != back.tm_mday ||
	    tm.tm_mon != back.tm_mon || tm.tm_hour != back.tm_hour ||
	    tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec)
		return -EINVAL;
	audit__ts_format((int64_t)t * 1000 + ms, out);
	return 0;
}

size_t
audit__line_seal(char *line, size_t len, uint8_t line_hash[32])
{
	uint8_t h[32];
	char *tail = line + len;

	/* Two passes over the prefix with SHA extensions cost less than one
	 * pass and a cloned state in portable code. */
	digest_sha256(line, len, h);
	memcpy(tail, hash_key, sizeof(hash_key) - 1);
	sr_hex_encode(tail + 9, h, 32);
	tail[73] = '"';
	tail[74] = '}';
	digest_sha256_2(line, len, tail, AUDIT__HASH_TAIL, line_hash);
	return len + AUDIT__HASH_TAIL;
}

int
audit__line_check(const char *line, size_t len, uint8_t line_hash[32])
{
	uint8_t want[32], got[32];
	const char *tail;

	if (len < AUDIT__HASH_TAIL + 2)
		return -EBADMSG;
	tail = line + len - AUDIT__HASH_TAIL;
	if (memcmp(tail, hash_key, sizeof(hash_key) - 1) != 0 ||
	    tail[73] != '"' || tail[74] != '}' ||
	    sr_hex_decode(want, sizeof(want), tail + 9, 64) != 32)
		return -EBADMSG;
	digest_sha256(line, len - AUDIT__HASH_TAIL, got);
	if (memcmp(want, got, 32) != 0)
		return -EBADMSG;
	digest_sha256(line, len, line_hash);
	return 0;
}

void
audit__ckpt_digest(
    uint64_t head_seq, const uint8_t head[32], uint8_t digest[32])
{
	char msg[160], hex[65];
	int n;

	sr_hex_encode(hex, head, 32);
	n = snprintf(msg, sizeof(msg),
	    "strongroom-audit-checkpoint-v1\nseq=%llu\nhead=%s\n",
	    (unsigned long long)head_seq, hex);
	digest_sha256(msg, (size_t)n, digest);
}

int
audit__sig_verify(
    const uint8_t pub[65], const uint8_t digest[32], const uint8_t sig[64])
{
	mbedtls_ecp_group grp;
	mbedtls_ecp_point q;
	mbedtls_mpi r, s;
	uint8_t hash[32];
	int rc;

	mbedtls_ecp_group_init(&grp);
	mbedtls_ecp_point_init(&q);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	/* ES256 hashes its message; the message is the 32-byte digest. */
	rc = mbedtls_sha256(digest, 32, hash, 0);
	if (rc == 0)
		rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
	if (rc == 0)
		rc = mbedtls_ecp_point_read_binary(&grp, &q, pub, 65);
	if (rc == 0)
		rc = mbedtls_mpi_read_binary(&r, sig, 32);
	if (rc == 0)
		rc = mbedtls_mpi_read_binary(&s, sig + 32, 32);
	if (rc == 0)
		rc = mbedtls_ecdsa_verify(&grp, hash, 32, &q, &r, &s);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_group_free(&grp);
	return rc == 0 ? 0 : -EBADMSG;
}

size_t
audit__pem_encode(const uint8_t pub[65], char out[256])
{
	uint8_t der[sizeof(spki_p256) + 65];
	unsigned char b64[160];
	size_t n = 0, len = 0;

	memcpy(der, spki_p256, sizeof(spki_p256));
	memcpy(der + sizeof(spki_p256), pub, 65);
	mbedtls_base64_encode(b64, sizeof(b64), &n, der, sizeof(der));
	len = (size_t)sprintf(out, "-----BEGIN PUBLIC KEY-----\n");
	len += (size_t)sprintf(out + len, "%.64s\n%.*s\n", (char *)b64,
	    (int)(n - 64), (char *)b64 + 64);
	len += (size_t)sprintf(out + len, "-----END PUBLIC KEY-----\n");
	return len;
}

int
audit__pem_read(const char *path, uint8_t pub[65])
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----";
	static const char end[] = "-----END PUBLIC KEY-----";
	char *buf = NULL, *b, *e;
	unsigned char b64[512], der[256];
	size_t len = 0, n = 0, k = 0;
	int rc;

	rc = audit__read_small(AT_FDCWD, path, 4096, &buf, &len);
	if (rc != 0)
		return rc;
	rc = -EINVAL;
	b = strstr(buf, begin);
	e = b != NULL ? strstr(b, end) : NULL;
	if (e == NULL)
		goto out;
	for (b += sizeof(begin) - 1; b < e && k < sizeof(b64); b++)
		if (*b != '\n' && *b != '\r' && *b != ' ' && *b != '\t')
			b64[k++] = (unsigned char)*b;
	if (b != e ||
	    mbedtls_base64_decode(der, sizeof(der), &n, b64, k) != 0 ||
	    n != sizeof(spki_p256) + 65 ||
	    memcmp(der, spki_p256, sizeof(spki_p256)) != 0 ||
	    der[sizeof(spki_p256)] != 0x04)
		goto out;
	memcpy(pub, der + sizeof(spki_p256), 65);
	rc = 0;
out:
	free(buf);
	return rc;
}

int
audit__name_ok(const char *s, size_t max, int dot)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max)
			return 0;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-' || (dot && s[i] == '.')))
			return 0;
	}
	return i > 0;
}
