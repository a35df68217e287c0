/*
 * appliance/password.c: Argon2id password hashing and verification through
 * libargon2, stored as PHC strings (API and the choice of parameters in
 * appliance/password.h).
 *
 * It must never log or keep a password, never compare tags itself (libargon2
 * compares in constant time), and never let a stored string choose a cost
 * that would exhaust the machine.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>

#include "appliance/password.h"
#include "lib/sr.h"

/* The most a stored string may ask of verify: 1 GiB, 64 passes. */
#define PW_VERIFY_M_MAX (1024u * 1024u)
#define PW_VERIFY_T_MAX 64u
#define PW_VERIFY_P_MAX 16u

static const struct pw_params pw_defaults = { PW_M_KIB, PW_T_COST,
	PW_PARALLELISM };

static pthread_mutex_t pw_dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static int pw_dummy_ready;
static char pw_dummy_phc[PW_PHC_MAX];

static int
pw_check_length(size_t len)
{
	if (len == 0)
		return APP_EPWEMPTY;
	if (len > PW_MAX_BYTES)
		return APP_EPWLONG;
	return 0;
}

static int
pw_from_argon2(int rc)
{
	switch (rc) {
	case ARGON2_OK:
		return 0;
	case ARGON2_VERIFY_MISMATCH:
		return APP_EPWMISMATCH;
	case ARGON2_MEMORY_ALLOCATION_ERROR:
		return -ENOMEM;
	default:
		return APP_EPWHASH;
	}
}

int
pw_hash_with(char phc[static PW_PHC_MAX], const void *password, size_t len,
    const struct pw_params *params)
{
	uint8_t salt[PW_SALT_BYTES];
	int rc;

	phc[0] = '\0';
	rc = pw_check_length(len);
	if (rc != 0)
		return rc;
	if (params->t_cost < 1 || params->parallelism < 1 ||
	    params->parallelism > PW_VERIFY_P_MAX ||
	    params->m_kib < 8 * params->parallelism ||
	    params->m_kib > PW_VERIFY_M_MAX || params->t_cost > PW_VERIFY_T_MAX)
		return -EINVAL;
	rc = sr_os_random(salt, sizeof(salt));
	if (rc != 0)
		return rc;
	rc = argon2id_hash_encoded(params->t_cost, params->m_kib,
	    params->parallelism, password, len, salt, sizeof(salt),
	    PW_TAG_BYTES, phc, PW_PHC_MAX);
	sr_wipe(salt, sizeof(salt));
	if (rc != ARGON2_OK) {
		phc[0] = '\0';
		return rc == ARGON2_MEMORY_ALLOCATION_ERROR ? -ENOMEM : -EINVAL;
	}
	return 0;
}

int
pw_hash(char phc[static PW_PHC_MAX], const void *password, size_t len)
{
	return pw_hash_with(phc, password, len, &pw_defaults);
}

/* A decimal number without sign or leading zero, ended by @p end. */
static int
pw_number(const char **p, char end, uint32_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (*s < '0' || *s > '9' || (*s == '0' && s[1] != end))
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	if (*s != end)
		return -1;
	*out = (uint32_t)v;
	*p = s + 1;
	return 0;
}

/* Read "$argon2id$v=19$m=M,t=T,p=P$" from a stored string. */
static int
pw_parse(const char *phc, struct pw_params *out)
{
	static const char head[] = "$argon2id$v=19$m=";
	const char *p = phc;

	if (phc == NULL || strnlen(phc, PW_PHC_MAX) >= PW_PHC_MAX ||
	    strncmp(p, head, sizeof(head) - 1) != 0)
		return -1;
	p += sizeof(head) - 1;
	if (pw_number(&p, ',', &out->m_kib) != 0 || strncmp(p, "t=", 2) != 0)
		return -1;
	p += 2;
	if (pw_number(&p, ',', &out->t_cost) != 0 || strncmp(p, "p=", 2) != 0)
		return -1;
	p += 2;
	if (pw_number(&p, '$', &out->parallelism) != 0)
		return -1;
	return 0;
}

int
pw_verify(const char *phc, const void *password, size_t len)
{
	struct pw_params params;
	int rc;

	rc = pw_check_length(len);
	if (rc != 0)
		return rc;
	if (pw_parse(phc, &params) != 0 || params.m_kib > PW_VERIFY_M_MAX ||
	    params.t_cost > PW_VERIFY_T_MAX || params.t_cost < 1 ||
	    params.parallelism < 1 || params.parallelism > PW_VERIFY_P_MAX ||
	    params.m_kib < 8 * params.parallelism)
		return APP_EPWHASH;
	return pw_from_argon2(argon2id_verify(phc, password, len));
}

/* Make the per-process dummy hash once; 0 or an error to retry later. */
static int
pw_dummy_setup(void)
{
	uint8_t random_password[32];
	int rc = 0;

	pthread_mutex_lock(&pw_dummy_lock);
	if (!pw_dummy_ready) {
		rc = sr_os_random(random_password, sizeof(random_password));
		if (rc == 0)
			rc = pw_hash(pw_dummy_phc, random_password,
			    sizeof(random_password));
		sr_wipe(random_password, sizeof(random_password));
		pw_dummy_ready = rc == 0;
	}
	pthread_mutex_unlock(&pw_dummy_lock);
	return rc;
}

int
pw_verify_dummy(const void *password, size_t len)
{
	uint8_t filler[1] = { 0 };
	int rc;

	rc = pw_check_length(len);
	if (rc != 0)
		return rc;
	if (pw_dummy_setup() != 0) {
		/* No dummy hash (no memory now): still spend the time of a
		 * hash so the answer is not faster than for a real user. */
		char scratch[PW_PHC_MAX];

		(void)pw_hash(scratch, filler, sizeof(filler));
		return APP_EPWMISMATCH;
	}
	rc = argon2id_verify(pw_dummy_phc, password, len);
	/* A random 256-bit password is never typed; refuse regardless. */
	(void)rc;
	return APP_EPWMISMATCH;
}

int
pw_needs_rehash(const char *phc)
{
	struct pw_params p;
	const char *salt, *tag;
	size_t salt_len;

	if (pw_parse(phc, &p) != 0)
		return 1;
	if (p.m_kib != pw_defaults.m_kib || p.t_cost != pw_defaults.t_cost ||
	    p.parallelism != pw_defaults.parallelism)
		return 1;
	/* The salt and tag lengths too: base64 without padding. */
	salt = strrchr(phc, '$');
	tag = salt;
	while (salt > phc && salt[-1] != '$')
		salt--;
	salt_len = (size_t)(tag - salt);
	return salt_len != (PW_SALT_BYTES * 4 + 2) / 3 ||
	    strlen(tag + 1) != (PW_TAG_BYTES * 4 + 2) / 3;
}
