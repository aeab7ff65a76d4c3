/* sign.h: signatures with the user's own keys, for the cloud API signers.
 *
 * Joyent's HTTP Signature signs with the user's SSH key (rsa-sha256 in the
 * published vectors; ecdsa-sha256/384/512 and ed25519 too), Manta's signed
 * URLs use RSA-SHA1. Keys load from PEM (PKCS#1 "RSA PRIVATE KEY", PKCS#8
 * "PRIVATE KEY", SEC1 "EC PRIVATE KEY") and from OpenSSH's own format
 * ("OPENSSH PRIVATE KEY", openssh-key-v1, unencrypted), which OpenSSL cannot
 * read and this module parses itself: ssh-keygen writes every new key,
 * RSA included, in that format. Encrypted keys are refused (no prompt ever
 * reaches the terminal). Private key material read here is wiped
 * (OPENSSL_cleanse) before its buffers are freed.
 *
 * Signatures: RSA is PKCS#1 v1.5 over SHA-1/256/384/512; ECDSA (P-256,
 * P-384, P-521) over the hash given, as DER (what HTTP Signature's
 * ecdsa-shaNNN carries, as sshpk/node-http-signature verify it) or as raw
 * r||s, each half padded to the curve's size (JWS form); ed25519 signs the
 * message itself (PureEdDSA, no hash choice).
 *
 * Fingerprints are those of the key's SSH public blob, as ssh-keygen -l
 * prints them: "SHA256:<base64, no padding>" and MD5 "aa:bb:..." (Joyent's
 * key id).
 *
 * Codes: JJ_EINVAL (not a key, a malformed one, an unknown hash, a key
 * without the named part), JJ_EUNSUPPORTED (encrypted keys, DSA, other
 * curves), JJ_ECRYPTO (OpenSSL failure, lib_code = its error), JJ_ENOMEM,
 * errno codes for files (JJ_ENOENT, JJ_EACCES ...).
 */
#ifndef JUJU_CORE_SIGN_H
#define JUJU_CORE_SIGN_H

#include <stddef.h>

#include "error.h"

typedef struct jj_sign_key jj_sign_key;

typedef enum jj_sign_key_type { JJ_SIGN_RSA, JJ_SIGN_ECDSA, JJ_SIGN_ED25519 } jj_sign_key_type;

/* Loads a private key from text[0..len) (PEM or OpenSSH). source names the
 * input in errors (may be NULL). *out is owned by the caller
 * (jj_sign_key_free). */
int jj_sign_key_load(const char *text, size_t len, const char *source, jj_sign_key **out,
                     jj_error *err);

/* Reads and loads a key file (the read buffer is wiped). */
int jj_sign_key_load_file(const char *path, jj_sign_key **out, jj_error *err);

/* Frees the key (NULL is fine). */
void jj_sign_key_free(jj_sign_key *k);

typedef struct jj_sign_key_info {
    jj_sign_key_type type;
    const char *type_name; /* "rsa", "ecdsa", "ed25519" (static) */
    const char *ssh_type;  /* "ssh-rsa", "ecdsa-sha2-nistp256", ... (static) */
    const char *curve;     /* "P-256", "P-384", "P-521"; NULL unless ECDSA */
    int bits;
} jj_sign_key_info;

void jj_sign_key_info_get(const jj_sign_key *k, jj_sign_key_info *info);

#define JJ_SIGN_ECDSA_DER 0
#define JJ_SIGN_ECDSA_RAW 1

/* Signs data[0..n) with k. hash is "sha1", "sha256", "sha384" or "sha512"
 * (NULL = "sha256"; ignored for ed25519). ecdsa_form is JJ_SIGN_ECDSA_DER
 * or JJ_SIGN_ECDSA_RAW (ignored for other keys). On success *sig receives a
 * malloc'ed signature the caller frees, *sig_len its length. */
int jj_sign(const jj_sign_key *k, const char *hash, int ecdsa_form, const void *data, size_t n,
            unsigned char **sig, size_t *sig_len, jj_error *err);

/* Checks sig over data with k's public half (same hash and form rules).
 * Returns 1 (valid), 0 (invalid), or a negative code. */
int jj_sign_verify(const jj_sign_key *k, const char *hash, int ecdsa_form, const void *data,
                   size_t n, const unsigned char *sig, size_t sig_len, jj_error *err);

/* The SSH wire-format public key blob. *out malloc'ed, caller frees. */
int jj_sign_public_blob(const jj_sign_key *k, unsigned char **out, size_t *out_len,
                        jj_error *err);

/* The public key as SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----"),
 * what openssl dgst -verify reads. *out malloc'ed, NUL-terminated. */
int jj_sign_public_pem(const jj_sign_key *k, char **out, jj_error *err);

#define JJ_SIGN_FP_MD5_SIZE 48    /* "aa:" x 16, the last ':' is the NUL */
#define JJ_SIGN_FP_SHA256_SIZE 51 /* "SHA256:" + 43 + NUL */

int jj_sign_fingerprint_md5(const jj_sign_key *k, char out[JJ_SIGN_FP_MD5_SIZE], jj_error *err);
int jj_sign_fingerprint_sha256(const jj_sign_key *k, char out[JJ_SIGN_FP_SHA256_SIZE],
                               jj_error *err);

#endif
