/*
 * tools/mbedtls_config_extra.h: what Strongroom's mbedTLS adds to Debian
 * 13's configuration. tools/deps.sh builds mbedTLS 3.6 from Debian's source
 * package with Debian's own mbedtls_config.h and this file as
 * MBEDTLS_USER_CONFIG_FILE (read after mbedtls_config.h); the Makefile
 * passes the same define to every Strongroom compile, so our code sees the
 * configuration the libraries were built with. Changing this file rebuilds
 * mbedTLS (deps.sh's stamp records its SHA-256) and every object.
 *
 * It must only turn on mbedTLS's own options (no cryptography of ours), and
 * never turn off anything Debian's configuration enables.
 */
#ifndef SR_MBEDTLS_CONFIG_EXTRA_H
#define SR_MBEDTLS_CONFIG_EXTRA_H

/*
 * X25519 through Everest's HACL* code (formally verified, constant time,
 * 64-bit limbs) instead of the generic Montgomery ladder over mbedtls_mpi.
 * In 3.6, psa_raw_key_agreement() goes through mbedtls_ecdh_get_params()
 * and mbedtls_ecdh_calc_secret(), which take the Everest variant for
 * Curve25519 when this is set: a TLS 1.3 server's key agreement drops from
 * about 640 us to about 90 us here (tools/bench/tls_ceiling.c). The
 * ephemeral key's public half (psa_export_public_key) still goes through
 * the ladder: PSA computes it with mbedtls_ecp_mul() whatever this says.
 *
 * MBEDTLS_ECP_WINDOW_SIZE is left at its default (4) on purpose: it is
 * only an upper bound. For P-256 mbedTLS picks 4 for a random point and
 * uses its static table of the generator (built with 5) for signatures,
 * whatever the bound above 4, so 6 or 7 changes nothing we run; measured
 * with tls-ceiling, 6 gave the same figures as 4 within run-to-run noise.
 */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED

#endif
