/*
 * tools/ks_open.h: how the local admin tools (sr-keys, sr-audit pubkey)
 * reach the keystore: the HSM sr-p11 would open, <state>/keystore, and the
 * lock that queues tools on it. It must never print key material.
 */
#ifndef SR_TOOLS_KS_OPEN_H
#define SR_TOOLS_KS_OPEN_H

#include "keystore/keystore.h"
#include "pkcs11/p11.h"

/**
 * @brief Open the HSM (@p uri, or the SoftHSM2 token under @p state when
 * NULL), lock <state>/keystore and open the keystore in it.
 * @param prog    the tool's name, for messages on stderr.
 * @param create  make <state>/keystore when it is missing (else an error).
 * @param[out] lockfd  the lock; close it after ks_close() and p11_close().
 * @return 0, or 1 after a message on stderr.
 */
int tool_ks_open(const char *prog, const char *state, const char *uri,
    int create, struct p11_ctx **ctx, struct ks **ks, int *lockfd);

#endif /* SR_TOOLS_KS_OPEN_H */
