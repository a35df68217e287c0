/*
 * appliance/tls_cert.h: what tls.c (the TLS set-up and connections) and
 * tls_cert.c (the first-start certificate) share inside the appliance
 * module. Nothing else includes it.
 */
#ifndef SR_APPLIANCE_TLS_CERT_H
#define SR_APPLIANCE_TLS_CERT_H

#include <mbedtls/ctr_drbg.h>

/** "WHAT PATH: mbedTLS's text (-0xNNNN)" into @p err; @p path may be NULL. */
void tls_errf(char err[256], int rc, const char *what, const char *path);

/**
 * First start: a fresh ECDSA P-256 key (0600) and its self-signed
 * certificate (0644) for the host's names (hostname, "localhost",
 * 127.0.0.1, ::1), valid one year. Neither file may exist; the key is
 * removed again if the certificate cannot be written.
 * @param[in] drbg  borrowed; start-up thread only.
 * @return 0, -EIO (mbedTLS failed), -ENOMEM, or -errno writing a file;
 *         @p err says which.
 */
int tls_cert_make(mbedtls_ctr_drbg_context *drbg, const char *cert_path,
    const char *key_path, char err[256]);

#endif /* SR_APPLIANCE_TLS_CERT_H */
