/*
 * appliance/totp.c: RFC 6238 TOTP codes (HMAC-SHA1 through mbedTLS), base32
 * secrets and otpauth:// URIs, with replay-protected verification (API in
 * appliance/totp.h).
 *
 * It must never log a secret or a code, never compare codes with an
 * early-exit comparison, and never accept a code whose step is not later
 * than the last one accepted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/md.h>

#include "appliance/totp.h"

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int
totp_secret_generate(struct sr_secret *out)
{
	int rc;

	rc = sr_secret_alloc(out, TOTP_SECRET_BYTES);
	if (rc != 0)
		return rc;
	rc = sr_os_random(sr_secret_bytes(out), TOTP_SECRET_BYTES);
	if (rc != 0)
		sr_secret_free(out);
	return rc;
}

int
totp_base32_encode(char *out, size_t cap, const uint8_t *in, size_t len)
{
	size_t need = (len * 8 + 4) / 5, i, o = 0;
	unsigned bits = 0, acc = 0;

	if (cap < need + 1)
		return -ENOSPC;
	for (i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32_alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	acc = 0;
	return (int)o;
}

/* The 5-bit value of a base32 letter (either case), or -1. Branches on
 * the character class only, not on a table lookup indexed by secret. */
static int
b32_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int
totp_base32_decode(struct sr_secret *out, const char *text)
{
	uint8_t buf[TOTP_SECRET_MAX];
	size_t n = strnlen(text, TOTP_BASE32_MAX + 1), chars, pad = 0, i;
	size_t o = 0;
	unsigned acc = 0, bits = 0;
	int v, rc = APP_EBASE32;

	sr_secret_free(out);
	if (n == 0 || n > TOTP_BASE32_MAX - 1)
		return APP_EBASE32;
	chars = n;
	while (chars > 0 && text[chars - 1] == '=') {
		chars--;
		pad++;
	}
	/* Padding, when present, completes an 8-character group exactly. */
	if (pad > 0 && (n % 8 != 0 || pad > 6))
		return APP_EBASE32;
	/* 1, 3 and 6 leftover characters cannot come from whole bytes. */
	if (chars % 8 == 1 || chars % 8 == 3 || chars % 8 == 6)
		return APP_EBASE32;
	if (pad > 0 && pad != (8 - chars % 8) % 8)
		return APP_EBASE32;
	for (i = 0; i < chars; i++) {
		v = b32_value((unsigned char)text[i]);
		if (v < 0)
			goto out;
		acc = (acc << 5) | (unsigned)v;
		bits += 5;
		if (bits >= 8) {
			if (o == sizeof(buf))
				goto out;
			buf[o++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0 || o == 0)
		goto out;
	rc = sr_secret_set(out, buf, o);
out:
	sr_wipe(buf, sizeof(buf));
	acc = 0;
	return rc;
}

uint64_t
totp_step(time_t t)
{
	return t < 0 ? 0 : (uint64_t)t / TOTP_PERIOD;
}

/* The 31-bit dynamic truncation of RFC 4226 section 5.3 for one step. */
static int
hotp_value(const struct sr_secret *secret, uint64_t step, uint32_t *value)
{
	const mbedtls_md_info_t *md =
	    mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);
	uint8_t msg[8], mac[20];
	unsigned off;
	int i;

	if (md == NULL || sr_secret_len(secret) == 0 ||
	    sr_secret_len(secret) > TOTP_SECRET_MAX)
		return -EINVAL;
	for (i = 7; i >= 0; i--) {
		msg[i] = (uint8_t)(step & 0xff);
		step >>= 8;
	}
	if (mbedtls_md_hmac(md, sr_secret_bytes(secret), sr_secret_len(secret),
	        msg, sizeof(msg), mac) != 0)
		return -EINVAL;
	off = mac[19] & 0x0f;
	*value = ((uint32_t)(mac[off] & 0x7f) << 24) |
	    ((uint32_t)mac[off + 1] << 16) | ((uint32_t)mac[off + 2] << 8) |
	    (uint32_t)mac[off + 3];
	sr_wipe(mac, sizeof(mac));
	return 0;
}

int
totp_code_at_step(const struct sr_secret *secret, uint64_t step,
    char code[static TOTP_DIGITS + 1])
{
	uint32_t v;
	int rc, i;

	rc = hotp_value(secret, step, &v);
	if (rc != 0)
		return rc;
	v %= 1000000u;
	for (i = TOTP_DIGITS - 1; i >= 0; i--) {
		code[i] = (char)('0' + v % 10);
		v /= 10;
	}
	code[TOTP_DIGITS] = '\0';
	return 0;
}

int
totp_verify(const struct sr_secret *secret, const char *code, time_t now,
    uint64_t last_step, uint64_t *accepted_step)
{
	char want[TOTP_DIGITS + 1], given[TOTP_DIGITS];
	uint64_t step = totp_step(now), candidate, fresh = 0;
	int i, rc, well_formed = 1, matched = 0, matched_fresh = 0, eq;

	*accepted_step = 0;
	/* The format is not secret; the digits are, so they are copied
	 * to a fixed-size buffer and compared in constant time. */
	well_formed =
	    code != NULL && strnlen(code, TOTP_DIGITS + 1) == TOTP_DIGITS;
	for (i = 0; i < TOTP_DIGITS; i++) {
		given[i] = well_formed ? code[i] : 'x';
		if (given[i] < '0' || given[i] > '9')
			well_formed = 0;
	}
	for (i = -1; i <= 1; i++) {
		if (step == 0 && i < 0)
			continue;
		candidate = step + (uint64_t)(int64_t)i;
		rc = totp_code_at_step(secret, candidate, want);
		if (rc != 0) {
			sr_wipe(want, sizeof(want));
			return rc;
		}
		eq = sr_ct_equal(want, given, TOTP_DIGITS) & well_formed;
		matched |= eq;
		if (eq && candidate > last_step) {
			matched_fresh = 1;
			fresh = candidate;
		}
	}
	sr_wipe(want, sizeof(want));
	sr_wipe(given, sizeof(given));
	if (matched_fresh) {
		*accepted_step = fresh;
		return 0;
	}
	return matched ? APP_ETOTPREPLAY : APP_ETOTP;
}

/* Percent-encode @p s into @p out at @p *used, keeping RFC 3986's
 * unreserved characters. */
static int
uri_escape(char *out, size_t cap, size_t *used, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			if (*used + 1 >= cap)
				return -ENOSPC;
			out[(*used)++] = (char)c;
		} else {
			if (*used + 3 >= cap)
				return -ENOSPC;
			out[(*used)++] = '%';
			out[(*used)++] = hex[c >> 4];
			out[(*used)++] = hex[c & 15];
		}
	}
	out[*used] = '\0';
	return 0;
}

static int
uri_append(char *out, size_t cap, size_t *used, const char *s)
{
	size_t n = strlen(s);

	if (*used + n + 1 > cap)
		return -ENOSPC;
	memcpy(out + *used, s, n + 1);
	*used += n;
	return 0;
}

int
totp_uri(
    char *out, size_t cap, const char *account, const struct sr_secret *secret)
{
	char b32[TOTP_BASE32_MAX];
	size_t used = 0, alen = strnlen(account, 257);
	int rc;

	if (cap == 0)
		return -ENOSPC;
	out[0] = '\0';
	if (alen == 0 || alen > 256 || sr_secret_len(secret) == 0 ||
	    sr_secret_len(secret) > TOTP_SECRET_MAX)
		return -EINVAL;
	rc = totp_base32_encode(
	    b32, sizeof(b32), sr_secret_bytes(secret), sr_secret_len(secret));
	if (rc < 0)
		goto out;
	/* The label is "issuer:account"; the colon stays literal (Google's
	 * Key Uri Format), each side is escaped. */
	if ((rc = uri_append(out, cap, &used, "otpauth://totp/Strongroom:")) ||
	    (rc = uri_escape(out, cap, &used, account)) ||
	    (rc = uri_append(out, cap, &used, "?secret=")) ||
	    (rc = uri_append(out, cap, &used, b32)) ||
	    (rc = uri_append(out, cap, &used,
	         "&issuer=Strongroom&algorithm=SHA1&digits=6&period=30")))
		goto out;
	rc = (int)used;
out:
	sr_wipe(b32, sizeof(b32));
	if (rc < 0)
		sr_wipe(out, cap);
	return rc;
}
