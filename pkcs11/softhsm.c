/*
 * pkcs11/softhsm.c: first-start set-up of the embedded SoftHSM2 default: a
 * configuration with an absolute tokendir in the state folder, a token with
 * random SO and user PINs in owner-only files, and the URI that opens it.
 *
 * Every step can be repeated after a crash: PIN files are written before the
 * token is initialised and reused if present, and the URI file is written
 * last. This file must never print a PIN, never overwrite a PIN file, and
 * never touch a token other than the one labelled as asked.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pkcs11/internal.h"

#define P11_URI_CAP (P11_URI_PATH_MAX + 512)

struct p11_setup {
	char dir[PATH_MAX]; /* absolute state_dir/hsm */
	char conf[PATH_MAX + 32];
	CK_FUNCTION_LIST_PTR f;
	void *dl;
	char *err;
};

static int
p11_mkdir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Percent-encode everything outside RFC 3986 unreserved and '/'. */
static int
p11_uri_append(char *dst, size_t cap, const char *s)
{
	size_t pos = strlen(dst);
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || c == '/';
		if (pos + 4 >= cap)
			return -ENAMETOOLONG;
		if (plain) {
			dst[pos++] = (char)c;
		} else {
			dst[pos++] = '%';
			dst[pos++] = hex[c >> 4];
			dst[pos++] = hex[c & 15];
		}
	}
	dst[pos] = '\0';
	return 0;
}

/* Read the PIN file, or make a random PIN and write it (mode 0600). */
static int
p11_pin_file(const char *dir, const char *name, struct sr_secret *pin)
{
	char path[PATH_MAX + 32];
	unsigned char raw[16];
	char hex[33];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = sr_secret_read_file(pin, path, 256);
	if (rc != -ENOENT)
		return rc;
	rc = sr_os_random(raw, sizeof(raw));
	if (rc == 0) {
		sr_hex_encode(hex, raw, sizeof(raw));
		rc = sr_write_private_file(path, hex, 32);
		if (rc == 0)
			rc = sr_secret_set(pin, hex, 32);
	}
	sr_wipe(raw, sizeof(raw));
	sr_wipe(hex, sizeof(hex));
	return rc;
}

static int
p11_write_conf(struct p11_setup *st)
{
	char body[PATH_MAX + 256];
	int n, rc;

	n = snprintf(body, sizeof(body),
	    "# SoftHSM2 configuration of this Strongroom state folder.\n"
	    "directories.tokendir = %s/tokens\n"
	    "objectstore.backend = file\n"
	    "log.level = ERROR\n"
	    "slots.removable = false\n"
	    "slots.mechanisms = ALL\n"
	    "library.reset_on_fork = false\n",
	    st->dir);
	if (n < 0 || (size_t)n >= sizeof(body))
		return -ENAMETOOLONG;
	rc = sr_write_private_file(st->conf, body, (size_t)n);
	return rc == -EEXIST ? 0 : rc;
}

/* Slot of the initialised token labelled @p label, or of a free slot. */
static CK_RV
p11_setup_slot(
    struct p11_setup *st, const char *label, CK_SLOT_ID *slot, int *initialised)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	CK_RV rv;
	int have_free = 0;
	size_t len = strlen(label);

	rv = st->f->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK)
		return rv;
	*initialised = 0;
	for (i = 0; i < n; i++) {
		if (st->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			if (!have_free)
				*slot = slots[i];
			have_free = 1;
			continue;
		}
		if (memcmp(ti.label, label, len) == 0 &&
		    (len == 32 || ti.label[len] == ' ')) {
			*slot = slots[i];
			*initialised = 1;
			return (ti.flags & CKF_USER_PIN_INITIALIZED)
			    ? CKR_OK
			    : CKR_USER_PIN_NOT_INITIALIZED;
		}
	}
	return have_free ? CKR_OK : CKR_TOKEN_NOT_PRESENT;
}

static CK_RV
p11_setup_token(struct p11_setup *st, const char *label,
    const struct sr_secret *so, const struct sr_secret *user)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	unsigned char padded[32];
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot = 0;
	CK_RV rv;
	int init, pass;

	for (pass = 0; pass < 2; pass++) {
		rv = st->f->C_Initialize(&args);
		if (rv != CKR_OK)
			return rv;
		rv = p11_setup_slot(st, label, &slot, &init);
		if (rv == CKR_OK && init) {
			st->f->C_Finalize(NULL);
			return CKR_OK;
		}
		if (rv == CKR_USER_PIN_NOT_INITIALIZED)
			break;
		if (rv != CKR_OK || pass == 1)
			goto out;
		memset(padded, ' ', sizeof(padded));
		memcpy(padded, label, strlen(label));
		rv = st->f->C_InitToken(
		    slot, sr_secret_bytes(so), sr_secret_len(so), padded);
		if (rv != CKR_OK)
			goto out;
		/* SoftHSM2 moves the new token to a new slot id: start over. */
		st->f->C_Finalize(NULL);
	}
	rv = st->f->C_OpenSession(
	    slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h);
	if (rv != CKR_OK)
		goto out;
	rv = st->f->C_Login(h, CKU_SO, sr_secret_bytes(so), sr_secret_len(so));
	if (rv == CKR_OK) {
		rv = st->f->C_InitPIN(
		    h, sr_secret_bytes(user), sr_secret_len(user));
		st->f->C_Logout(h);
	}
	st->f->C_CloseSession(h);
out:
	st->f->C_Finalize(NULL);
	return rv;
}

static int
p11_setup_load(struct p11_setup *st, const char *module)
{
	CK_RV (*getlist)(CK_FUNCTION_LIST_PTR_PTR);

	st->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (st->dl == NULL) {
		snprintf(st->err, 256, "cannot load %s: %s", module, dlerror());
		return P11_EMODULE;
	}
	*(void **)&getlist = dlsym(st->dl, "C_GetFunctionList");
	if (getlist == NULL || getlist(&st->f) != CKR_OK) {
		snprintf(st->err, 256, "%s is not a PKCS#11 module", module);
		return P11_EMODULE;
	}
	return 0;
}

static int
p11_read_uri(const char *path, char *uri)
{
	struct sr_secret s = { 0 };
	int rc;

	/* Not a secret, but the same careful small-file reader. */
	rc = sr_secret_read_file(&s, path, P11_URI_CAP - 1);
	if (rc == 0) {
		memcpy(uri, sr_secret_bytes(&s), sr_secret_len(&s));
		uri[sr_secret_len(&s)] = '\0';
	}
	sr_secret_free(&s);
	return rc;
}

int
p11_softhsm_setup(const char *state_dir, const char *module, const char *label,
    char uri[P11_URI_PATH_MAX + 512], char errbuf[256])
{
	char scratch[256], path[PATH_MAX + 32], tmp[PATH_MAX + 40];
	struct sr_secret so = { 0 }, user = { 0 };
	struct p11_setup st = { .err = errbuf != NULL ? errbuf : scratch };
	const char *p;
	CK_RV rv;
	int rc;

	st.err[0] = '\0';
	module = module != NULL ? module : P11_SOFTHSM_DEFAULT_MODULE;
	for (p = label; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		        *p == '.'))
			break;
	if (*p != '\0' || p == label || p - label > 32 || module[0] != '/') {
		snprintf(st.err, 256,
		    "token label must be 1-32 of [A-Za-z0-9._-] "
		    "and the module path absolute");
		return -EINVAL;
	}
	if ((rc = p11_mkdir(state_dir)) != 0 ||
	    realpath(state_dir, path) == NULL) {
		rc = rc != 0 ? rc : -errno;
		snprintf(st.err, 256, "state folder %s: %s", state_dir,
		    sr_strerror(rc));
		return rc;
	}
	snprintf(st.dir, sizeof(st.dir), "%.*s/hsm", PATH_MAX - 8, path);
	snprintf(st.conf, sizeof(st.conf), "%s/softhsm2.conf", st.dir);
	snprintf(path, sizeof(path), "%s/tokens", st.dir);
	if ((rc = p11_mkdir(st.dir)) != 0 || (rc = p11_mkdir(path)) != 0 ||
	    (rc = p11_write_conf(&st)) != 0) {
		snprintf(st.err, 256, "%s: %s", st.dir, sr_strerror(rc));
		return rc;
	}
	if (setenv("SOFTHSM2_CONF", st.conf, 1) != 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/uri", st.dir);
	rc = p11_read_uri(path, uri);
	if (rc != -ENOENT) {
		if (rc != 0)
			snprintf(st.err, 256, "%s: %s", path, sr_strerror(rc));
		return rc;
	}

	/* First start. */
	if ((rc = p11_pin_file(st.dir, "so.pin", &so)) != 0 ||
	    (rc = p11_pin_file(st.dir, "user.pin", &user)) != 0) {
		snprintf(st.err, 256, "PIN files in %s: %s", st.dir,
		    sr_strerror(rc));
		goto out;
	}
	rc = p11_setup_load(&st, module);
	if (rc != 0)
		goto out;
	rv = p11_setup_token(&st, label, &so, &user);
	if (rv != CKR_OK) {
		snprintf(st.err, 256, "initialising token '%s': %s", label,
		    p11_rv_name(rv));
		rc = P11_ESETUP;
		goto out;
	}
	snprintf(uri, P11_URI_CAP, "pkcs11:token=%s?module-path=", label);
	if ((rc = p11_uri_append(uri, P11_URI_CAP, module)) != 0)
		goto out;
	if (strlen(uri) + 32 >= P11_URI_CAP) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	strcat(uri, "&pin-source=file:");
	if ((rc = p11_uri_append(uri, P11_URI_CAP, st.dir)) != 0 ||
	    (rc = p11_uri_append(uri, P11_URI_CAP, "/user.pin")) != 0)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	rc = sr_write_private_file(tmp, uri, strlen(uri));
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		snprintf(st.err, 256, "%s: %s", path, sr_strerror(rc));
out:
	sr_secret_free(&so);
	sr_secret_free(&user);
	if (st.dl != NULL)
		dlclose(st.dl);
	return rc;
}
