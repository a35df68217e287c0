/*
 * appliance/audit_keys.c: the public keys `verify` checks checkpoint
 * signatures with. With no trusted key given, a checkpoint's key_id names
 * the checkpoint-key-<key_id>.pub file beside the log. With trusted keys
 * (sr-audit verify --pubkey, up to AUDIT_VERIFY_KEYS_MAX: one per key the
 * log was signed with, across rotations), each key_id is matched to one of
 * them, once: the trusted key under which that key_id's first checkpoint
 * verifies, else the trusted key checkpoint-key-<key_id>.pub beside the
 * log holds (so that a failing signature reads as an altered log). The
 * key_id is the keystore's id of the signing key and its version
 * (<id>.v<N>), random and not derived from the key, so a PEM file cannot
 * name it: the signature does.
 *
 * With trusted keys given it must never hand back any other key (a file
 * beside the log only says which trusted key a key_id is, never adds
 * one), and it never writes anything.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "appliance/audit_impl.h"

int
audit__keyring_trust(struct audit__keyring *r, const char *pem_path)
{
	int rc;

	if (r->ntrusted == AUDIT_VERIFY_KEYS_MAX)
		return -E2BIG;
	rc = audit__pem_read(pem_path, r->trusted[r->ntrusted]);
	if (rc == 0)
		r->ntrusted++;
	return rc;
}

/* The trusted key equal to @p pub, or NULL. */
static const uint8_t *
trusted_equal(const struct audit__keyring *r, const uint8_t pub[65])
{
	unsigned i;

	for (i = 0; i < r->ntrusted; i++)
		if (memcmp(r->trusted[i], pub, 65) == 0)
			return r->trusted[i];
	return NULL;
}

/* The trusted key for a key_id seen for the first time: the one its
 * checkpoint verifies under, else the one its file beside the log holds
 * (then the signature fails, and is reported as an altered log, not as an
 * unknown key). */
static const uint8_t *
trusted_match(const struct audit__keyring *r, const uint8_t *beside,
    const uint8_t digest[32], const uint8_t sig[64])
{
	unsigned i;

	for (i = 0; i < r->ntrusted; i++)
		if (audit__sig_verify(r->trusted[i], digest, sig) == 0)
			return r->trusted[i];
	return beside != NULL ? trusted_equal(r, beside) : NULL;
}

const uint8_t *
audit__keyring_key(struct audit__keyring *r, const char *kid,
    const uint8_t digest[32], const uint8_t sig[64])
{
	char path[PATH_MAX];
	uint8_t pub[65];
	int named = audit__name_ok(kid, AUDIT_KEY_ID_MAX, 1), beside = 0;
	const uint8_t *t = NULL;
	unsigned i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->k[i].kid, kid) == 0)
			return r->k[i].key;
	if (named) {
		snprintf(path, sizeof(path), "%s/checkpoint-key-%s.pub", r->dir,
		    kid);
		beside = audit__pem_read(path, pub) == 0;
	}
	if (r->ntrusted > 0)
		t = trusted_match(r, beside ? pub : NULL, digest, sig);
	if (r->n == AUDIT__KEYRING_IDS || !named)
		return t; /* not remembered: found again next time */
	/* Remembered, found or not: a key_id is one key for the walk. */
	i = r->n++;
	snprintf(r->k[i].kid, sizeof(r->k[i].kid), "%s", kid);
	r->k[i].key = t;
	if (r->ntrusted == 0 && beside) {
		memcpy(r->k[i].pub, pub, 65);
		r->k[i].key = r->k[i].pub;
	}
	return r->k[i].key;
}
