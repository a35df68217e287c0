/*
 * tools/bench/tls_ceiling.c: the handshake ceiling mbedTLS's own arithmetic
 * allows on this machine, the anchor for strongroomd's new-connection
 * figure. A TLS 1.3 full handshake on our server costs one ECDSA P-256
 * signature (CertificateVerify) and one ephemeral key agreement (a key pair
 * and a shared secret, X25519 as most clients offer first); this measures
 * both with the same mbedTLS the daemon links and prints handshakes per
 * second per core = 1 / (t_sign + t_agree).
 *
 * It only measures; it must never be mistaken for a handshake benchmark
 * (no record layer, no certificate parsing, no network).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(void)
{
	const double slice = getenv("SR_BENCH_SECONDS") != NULL
	    ? atof(getenv("SR_BENCH_SECONDS"))
	    : 1.0;
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ecdsa_context sig;
	mbedtls_ecp_group x, g;
	mbedtls_mpi d, z, r, s, sd;
	mbedtls_ecp_point q, peer, sq;
	unsigned char hash[32] = { 1 };
	double t0, t_sign, t_agree;
	long n;
	int rc = 0;

	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ecdsa_init(&sig);
	mbedtls_ecp_group_init(&x);
	mbedtls_ecp_group_init(&g);
	mbedtls_mpi_init(&sd);
	mbedtls_ecp_point_init(&sq);
	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&z);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	mbedtls_ecp_point_init(&q);
	mbedtls_ecp_point_init(&peer);
	rc |= mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0);
	rc |= mbedtls_ecdsa_genkey(
	    &sig, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &drbg);
	/* The key's group and secret through the public export call. */
	rc |= mbedtls_ecp_export(&sig, &g, &sd, &sq);
	rc |= mbedtls_ecp_group_load(&x, MBEDTLS_ECP_DP_CURVE25519);
	rc |= mbedtls_ecdh_gen_public(
	    &x, &d, &peer, mbedtls_ctr_drbg_random, &drbg);
	if (rc != 0) {
		fprintf(stderr, "tls_ceiling: set-up failed\n");
		return 1;
	}
	for (n = 0, t0 = now_s(); now_s() - t0 < slice; n++)
		rc |= mbedtls_ecdsa_sign(&g, &r, &s, &sd, hash, sizeof(hash),
		    mbedtls_ctr_drbg_random, &drbg);
	t_sign = (now_s() - t0) / (double)n;
	for (n = 0, t0 = now_s(); now_s() - t0 < slice; n++) {
		rc |= mbedtls_ecdh_gen_public(
		    &x, &d, &q, mbedtls_ctr_drbg_random, &drbg);
		rc |= mbedtls_ecdh_compute_shared(
		    &x, &z, &peer, &d, mbedtls_ctr_drbg_random, &drbg);
	}
	t_agree = (now_s() - t0) / (double)n;
	printf("mbedTLS on this machine: ECDSA P-256 sign %.0f/s, X25519 "
	       "key agreement %.0f/s\n",
	    1 / t_sign, 1 / t_agree);
	printf("handshake ceiling: %.0f full TLS 1.3 handshakes/s per core\n",
	    1 / (t_sign + t_agree));
	mbedtls_ecp_point_free(&sq);
	mbedtls_mpi_free(&sd);
	mbedtls_ecp_group_free(&g);
	mbedtls_ecp_point_free(&q);
	mbedtls_ecp_point_free(&peer);
	mbedtls_mpi_free(&d);
	mbedtls_mpi_free(&z);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	mbedtls_ecp_group_free(&x);
	mbedtls_ecdsa_free(&sig);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	return rc == 0 ? 0 : 1;
}
