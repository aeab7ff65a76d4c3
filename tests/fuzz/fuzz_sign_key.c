/* fuzz_sign_key.c: libFuzzer entry point for core/sign's key loading (the
 * openssh-key-v1 parser this project wrote, and the PEM path).
 *
 * Run: scripts/fuzz.sh 30 sign_key
 *
 * Every input loads or fails with a code and a message; a loaded key gives
 * its public blob, fingerprints and a signature that verifies. The seeds
 * are throwaway keys generated for this corpus (no real credentials).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jj_sign_key *k = NULL;
    jj_error err;
    int rc = jj_sign_key_load((const char *)data, size, "fuzz", &k, &err);
    if (rc != 0) {
        if (k || rc >= 0 || err.message[0] == '\0')
            abort();
        return 0;
    }
    unsigned char *blob = NULL, *sig = NULL;
    size_t blob_len = 0, sig_len = 0;
    char md5[JJ_SIGN_FP_MD5_SIZE], sha[JJ_SIGN_FP_SHA256_SIZE];
    if (jj_sign_public_blob(k, &blob, &blob_len, &err) != 0 ||
        jj_sign_fingerprint_md5(k, md5, &err) != 0 ||
        jj_sign_fingerprint_sha256(k, sha, &err) != 0)
        abort();
    /* a key whose parts disagree may fail to sign or verify, never crash */
    if (jj_sign(k, "sha256", JJ_SIGN_ECDSA_RAW, "m", 1, &sig, &sig_len, &err) == 0)
        (void)jj_sign_verify(k, "sha256", JJ_SIGN_ECDSA_RAW, "m", 1, sig, sig_len, &err);
    free(sig);
    free(blob);
    jj_sign_key_free(k);
    return 0;
}
