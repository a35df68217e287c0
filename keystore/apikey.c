/*
 * keystore/apikey.c: key ids and API keys as text. Ids are 12 base62
 * characters drawn from random bytes by rejection sampling; an API key is
 * "srk_", the record's id, 42 secret base62 characters and a 6-character
 * base62 CRC-32 checksum over the first 58 characters, so that typos and
 * truncations are refused before any lookup is made.
 *
 * This file must never log or print a key, nor any part of its secret. The
 * secret characters are written straight into the caller's output buffer
 * and never leave it: no copy is made, and what a failed call had written
 * is wiped. Parsing runs in time independent of the secret part's content:
 * characters are classified without branches, the CRC is computed bit by
 * bit without table lookups, and the checksum compare is constant-time.
 */
#include <errno.h>
#include <string.h>

#include "keystore/internal.h"

static const char base62[] = "0123456789"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             "abcdefghijklmnopqrstuvwxyz";

/* Bytes at or above this are skipped: 248 = 4 * 62 keeps the draw uniform. */
#define KS__SAMPLE_LIMIT 248

#define KS__CRC_POLY 0xEDB88320u

/* Offsets of the parts of an API key. */
#define KS__OFF_ID KS_APIKEY_PREFIX_LEN
#define KS__OFF_SECRET (KS__OFF_ID + KS_ID_LEN)
#define KS__OFF_CHECK (KS__OFF_SECRET + KS_APIKEY_SECRET_LEN)

_Static_assert(KS__OFF_CHECK + KS_APIKEY_CHECK_LEN == KS_APIKEY_LEN,
    "API key layout does not add up");

/* 1 when lo <= c <= hi, without a branch: exactly then neither difference
 * borrows into bit 31. */
static uint32_t
ct_in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
	return ((((c - lo) | (hi - c)) >> 31) ^ 1u) & 1u;
}

/* 1 when @p ch is a base62 character, 0 otherwise (NUL included). */
static uint32_t
is_base62(char ch)
{
	uint32_t c = (unsigned char)ch;

	return ct_in_range(c, '0', '9') | ct_in_range(c, 'A', 'Z') |
	    ct_in_range(c, 'a', 'z');
}

/*
 * Fill @p dst with @p count base62 characters drawn from @p random by
 * rejection sampling. @return 0, or -EAGAIN when the bytes ran out (what
 * was written is left for the caller to wipe).
 */
static int
sample_base62(const uint8_t *random, size_t n, char *dst, size_t count)
{
	size_t i, got = 0;

	for (i = 0; i < n && got < count; i++) {
		if (random[i] >= KS__SAMPLE_LIMIT)
			continue;
		dst[got++] = base62[random[i] % 62];
	}
	return got == count ? 0 : -EAGAIN;
}

/* The zlib CRC-32 (reflected, poly 0xEDB88320) without a table indexed by
 * secret characters: a byte's table entry is the XOR of the entries of its
 * set bits (the CRC is linear), each taken under a mask, so every byte
 * costs the same eight independent steps whatever its value. */
static uint32_t
crc32_ieee(const char *p, size_t len)
{
	/* The table entries of 1, 2, 4, ..., 128. */
	static const uint32_t bit_entry[8] = { 0x77073096u, 0xEE0E612Cu,
		0x076DC419u, 0x0EDB8832u, 0x1DB71064u, 0x3B6E20C8u, 0x76DC4190u,
		KS__CRC_POLY };
	uint32_t crc = 0xFFFFFFFFu, x, t;
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		x = (crc ^ (unsigned char)p[i]) & 0xFFu;
		t = 0;
		for (bit = 0; bit < 8; bit++)
			t ^= bit_entry[bit] & (0u - ((x >> bit) & 1u));
		crc = (crc >> 8) ^ t;
	}
	return crc ^ 0xFFFFFFFFu;
}

/* The checksum of the first KS__OFF_CHECK characters of @p key, as base62,
 * most-significant digit first, zero-padded. */
static void
checksum(const char *key, char out[KS_APIKEY_CHECK_LEN])
{
	uint32_t crc = crc32_ieee(key, KS__OFF_CHECK);
	int i;

	for (i = KS_APIKEY_CHECK_LEN - 1; i >= 0; i--) {
		out[i] = base62[crc % 62];
		crc /= 62;
	}
	sr_wipe(&crc, sizeof(crc));
}

/* Format (and, when @p with_checksum, checksum) of a presented key: 0 or
 * KS_EAPIKEY. */
static int
apikey_verify(const char *key, size_t len, int with_checksum)
{
	char want[KS_APIKEY_CHECK_LEN];
	uint32_t ok = 1;
	size_t i;
	int equal = 1;

	/* Length and prefix are public; nothing past key[len - 1] is read. */
	if (key == NULL || len != KS_APIKEY_LEN)
		return KS_EAPIKEY;
	if (memcmp(key, KS_APIKEY_PREFIX, KS_APIKEY_PREFIX_LEN) != 0)
		return KS_EAPIKEY;
	for (i = KS__OFF_ID; i < KS_APIKEY_LEN; i++)
		ok &= is_base62(key[i]);
	if (with_checksum) {
		checksum(key, want);
		equal =
		    sr_ct_equal(want, key + KS__OFF_CHECK, KS_APIKEY_CHECK_LEN);
		sr_wipe(want, sizeof(want));
	}
	return (ok & (uint32_t)equal) ? 0 : KS_EAPIKEY;
}

static int
apikey_id(const char *key, size_t len, char id[KS_ID_LEN + 1], int checked)
{
	int rc = apikey_verify(key, len, checked);

	if (id == NULL)
		return rc;
	if (rc != 0) {
		memset(id, 0, KS_ID_LEN + 1);
		return rc;
	}
	memcpy(id, key + KS__OFF_ID, KS_ID_LEN);
	id[KS_ID_LEN] = '\0';
	return 0;
}

int
ks__id_make(const uint8_t *random, size_t n, char id[KS_ID_LEN + 1])
{
	int rc;

	if (id == NULL || (random == NULL && n > 0))
		return -EINVAL;
	rc = sample_base62(random, n, id, KS_ID_LEN);
	if (rc != 0) {
		memset(id, 0, KS_ID_LEN + 1);
		return rc;
	}
	id[KS_ID_LEN] = '\0';
	return 0;
}

uint32_t
ks__id_hash(const char *id)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < KS_ID_LEN && id[i] != '\0'; i++)
		h = (h ^ (uint8_t)id[i]) * 16777619u;
	return h;
}

int
ks__id_valid(const char *id)
{
	size_t i;

	if (id == NULL)
		return 0;
	/* Stops at the first non-base62 byte, so a NUL is never passed. */
	for (i = 0; i < KS_ID_LEN; i++)
		if (!is_base62(id[i]))
			return 0;
	return id[KS_ID_LEN] == '\0';
}

int
ks__apikey_make(const char id[KS_ID_LEN + 1], const uint8_t *random, size_t n,
    char out[KS_APIKEY_LEN + 1])
{
	int rc;

	if (out == NULL || !ks__id_valid(id) || (random == NULL && n > 0))
		return -EINVAL;
	memcpy(out, KS_APIKEY_PREFIX, KS_APIKEY_PREFIX_LEN);
	memcpy(out + KS__OFF_ID, id, KS_ID_LEN);
	rc = sample_base62(
	    random, n, out + KS__OFF_SECRET, KS_APIKEY_SECRET_LEN);
	if (rc != 0) {
		sr_wipe(out, KS_APIKEY_LEN + 1);
		return rc;
	}
	checksum(out, out + KS__OFF_CHECK);
	out[KS_APIKEY_LEN] = '\0';
	return 0;
}

/* On failure @p id is zeroed. */
int
ks__apikey_parse(const char *key, size_t len, char id[KS_ID_LEN + 1])
{
	return apikey_id(key, len, id, 1);
}

int
ks__apikey_id(const char *key, size_t len, char id[KS_ID_LEN + 1])
{
	return apikey_id(key, len, id, 0);
}

int
ks_apikey_check(const char *key, size_t len)
{
	return apikey_verify(key, len, 1);
}

int
ks_apikey_id(const char *key, size_t len, char id[KS_ID_LEN + 1])
{
	return apikey_id(key, len, id, 0);
}
