/*
 * appliance/tls_cert.c: the daemon's first-start TLS identity: a fresh
 * ECDSA P-256 key and a self-signed certificate naming this host, written
 * for the operator to replace with their own.
 *
 * It must never overwrite an existing key or certificate, leave a key
 * behind without its certificate, or leave the key's PEM in memory after
 * it is written (sr_secret, wiped).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "appliance/internal.h"
#include "appliance/tls_cert.h"
#include "lib/sr.h"

void
tls_errf(char err[256], int rc, const char *what, const char *path)
{
	char text[128];

	mbedtls_strerror(rc, text, sizeof(text));
	snprintf(err, 256, "%s%s%s: %s (-0x%04x)", what, path ? " " : "",
	    path ? path : "", text, (unsigned)-rc);
}

/* The host name for CN and SAN, or "localhost" when it is not a plain DNS
 * name (it goes into "CN=...,O=..." unescaped). */
static void
tls_hostname(char *out, size_t cap)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";

	if (gethostname(out, cap) != 0 || (out[cap - 1] = '\0', out[0]) == 0 ||
	    out[strspn(out, ok)] != '\0' || strlen(out) > 63) /* CN bound */
		snprintf(out, cap, "localhost");
}

static int
tls_utc(char out[16], time_t t)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 16, "%Y%m%d%H%M%S", &tm) != 14)
		return -EINVAL;
	return 0;
}

/* Fill the certificate fields of @p w for @p key. mbedTLS return codes. */
static int
tls_cert_fields(mbedtls_ctr_drbg_context *drbg, mbedtls_x509write_cert *w,
    mbedtls_pk_context *key, const char *host)
{
	static const unsigned char v4[4] = { 127, 0, 0, 1 };
	static const unsigned char v6[16] = { [15] = 1 };
	const struct {
		int type;
		const void *p;
		size_t len;
	} names[] = {
		{ MBEDTLS_X509_SAN_DNS_NAME, host, strlen(host) },
		{ MBEDTLS_X509_SAN_DNS_NAME, "localhost", 9 },
		{ MBEDTLS_X509_SAN_IP_ADDRESS, v4, sizeof(v4) },
		{ MBEDTLS_X509_SAN_IP_ADDRESS, v6, sizeof(v6) },
	};
	unsigned char oid[] = MBEDTLS_OID_SERVER_AUTH, serial[16];
	mbedtls_asn1_sequence eku = { 0 };
	mbedtls_x509_san_list san[4];
	char subject[300], from[16], until[16];
	time_t now = time(NULL);
	size_t i, n = 0;
	int rc;

	/* mbedTLS only reads the names; its struct has no const. */
	memset(san, 0, sizeof(san));
	for (i = 0; i < 4; i++) {
		if (i == 1 && strcasecmp(host, "localhost") == 0)
			continue;
		san[n].node.type = names[i].type;
		san[n].node.san.unstructured_name.p =
		    (unsigned char *)names[i].p;
		san[n].node.san.unstructured_name.len = names[i].len;
		if (n > 0)
			san[n - 1].next = &san[n];
		n++;
	}
	eku.buf.tag = MBEDTLS_ASN1_OID;
	eku.buf.p = oid;
	eku.buf.len = sizeof(oid) - 1;

	/* 16 random bytes, positive and minimally encoded. */
	if ((rc = mbedtls_ctr_drbg_random(drbg, serial, sizeof(serial))))
		return rc;
	serial[0] &= 0x7f;
	if (serial[0] == 0)
		serial[0] = 0x01;
	if (tls_utc(from, now - 3600) != 0 ||
	    tls_utc(until, now + 365 * 86400) != 0)
		return MBEDTLS_ERR_X509_BAD_INPUT_DATA;
	snprintf(subject, sizeof(subject), "CN=%s,O=Strongroom", host);

	mbedtls_x509write_crt_set_version(w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(w, key);
	mbedtls_x509write_crt_set_issuer_key(w, key);
	if ((rc = mbedtls_x509write_crt_set_serial_raw(
	         w, serial, sizeof(serial))) != 0 ||
	    (rc = mbedtls_x509write_crt_set_validity(w, from, until)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_subject_name(w, subject)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_issuer_name(w, subject)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_basic_constraints(w, 0, -1)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_key_usage(
	         w, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_ext_key_usage(w, &eku)) != 0 ||
	    (rc = mbedtls_x509write_crt_set_subject_alternative_name(w, san)) !=
	        0)
		return rc;
#if defined(MBEDTLS_MD_CAN_SHA1)
	if ((rc = mbedtls_x509write_crt_set_subject_key_identifier(w)) != 0)
		return rc;
#endif
	return 0;
}

/* First start: a fresh P-256 key (0600) and its self-signed certificate
 * (0644). Neither file may exist; the key is removed if the certificate
 * cannot be written, so the next start does not find half a pair. */
int
tls_cert_make(mbedtls_ctr_drbg_context *drbg, const char *cert_path,
    const char *key_path, char err[256])
{
	mbedtls_x509write_cert w;
	mbedtls_pk_context key;
	struct sr_secret pem = { 0 };
	unsigned char crt_pem[4096];
	char host[256];
	int rc;

	mbedtls_x509write_crt_init(&w);
	mbedtls_pk_init(&key);
	tls_hostname(host, sizeof(host));

	if ((rc = mbedtls_pk_setup(
	         &key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0 ||
	    (rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
	         mbedtls_pk_ec(key), mbedtls_ctr_drbg_random, drbg)) != 0) {
		tls_errf(err, rc, "generating the TLS key", NULL);
		rc = -EIO;
		goto out;
	}
	if ((rc = sr_secret_alloc(&pem, 2048)) != 0) {
		snprintf(err, 256, "generating the TLS key: out of memory");
		goto out;
	}
	if ((rc = mbedtls_pk_write_key_pem(
	         &key, sr_secret_bytes(&pem), sr_secret_len(&pem))) != 0 ||
	    (rc = tls_cert_fields(drbg, &w, &key, host)) != 0 ||
	    (rc = mbedtls_x509write_crt_pem(&w, crt_pem, sizeof(crt_pem),
	         mbedtls_ctr_drbg_random, drbg)) != 0) {
		tls_errf(err, rc, "making the TLS certificate", NULL);
		rc = -EIO;
		goto out;
	}
	rc = sr_write_private_file(key_path, sr_secret_bytes(&pem),
	    strlen((const char *)sr_secret_bytes(&pem)));
	if (rc != 0) {
		snprintf(err, 256, "writing %s: %s", key_path, sr_strerror(rc));
		goto out;
	}
	/* The certificate goes through the same create-new-and-sync path,
	 * then opens up to 0644 whatever the umask. */
	rc = sr_write_private_file(
	    cert_path, crt_pem, strlen((const char *)crt_pem));
	if (rc == 0 && chmod(cert_path, 0644) != 0) {
		rc = -errno;
		unlink(cert_path);
	}
	if (rc != 0) {
		snprintf(
		    err, 256, "writing %s: %s", cert_path, sr_strerror(rc));
		unlink(key_path);
		goto out;
	}
	log_info(
	    "made a self-signed TLS certificate for %s in %s", host, cert_path);
out:
	sr_secret_free(&pem);
	sr_wipe(crt_pem, sizeof(crt_pem));
	mbedtls_x509write_crt_free(&w);
	mbedtls_pk_free(&key);
	return rc;
}
