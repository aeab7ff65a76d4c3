/* sshkey.h: OpenSSH keys (bootstrap.md 4.2): ed25519 key generation in OpenSSH
 * format, public lines, parsing and fingerprints. No libssh2 here.
 *
 * All functions follow error.h and the conventions of crypto.h (OpenSSL
 * failures carry ERR_get_error()'s code in err->lib_code; bad input is
 * JJ_EINVAL, an OpenSSL malfunction JJ_ECRYPTO; secrets are freed with
 * jj_secret_free).
 */
#ifndef JUJU_CORE_SSHKEY_H
#define JUJU_CORE_SSHKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---- SSH keys (bootstrap.md 4.2) ---- */

/* A new ed25519 key: *private_pem is an unencrypted OpenSSH
 * "openssh-key-v1" PEM (jj_secret_free), *public_line is
 * "ssh-ed25519 <base64> <comment>" without newline (free). comment may be
 * NULL or ""; it must not contain control characters. */
int jj_ssh_keygen_ed25519(const char *comment, char **private_pem, char **public_line,
                          jj_error *err);

/* The public line of a private key: an OpenSSH private key of any type
 * (comment kept; for encrypted ones only the public part is read), or a PEM
 * RSA / EC (P-256/384/521) / ed25519 key (PKCS#1, SEC1, PKCS#8; no comment).
 * On success the caller owns *public_line (free). */
int jj_ssh_public_from_private(const char *pem, size_t len, char **public_line, jj_error *err);

typedef struct jj_ssh_public {
    char *type;          /* "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256" ... */
    unsigned char *blob; /* the decoded key blob */
    size_t blob_len;
    char *comment;       /* "" when absent */
} jj_ssh_public;

/* Parses "<type> <base64 blob> [comment]". The blob must start with the
 * type; known types (ssh-rsa, ssh-ed25519, ecdsa-sha2-nistp*) are checked
 * fully. On success *out owns its fields: jj_ssh_public_free. */
int jj_ssh_parse_public(const char *line, size_t len, jj_ssh_public *out, jj_error *err);
void jj_ssh_public_free(jj_ssh_public *pub);

#define JJ_SSH_FP_SHA256_SIZE 51 /* "SHA256:" + 43 + NUL */
#define JJ_SSH_FP_MD5_SIZE 48    /* 16 "aa:" groups, last ':' becomes NUL */

/* "SHA256:<base64 of SHA-256(blob), no padding>", as ssh-keygen -l prints. */
int jj_ssh_fingerprint_sha256(const char *line, size_t len, char out[JJ_SSH_FP_SHA256_SIZE],
                              jj_error *err);
/* "aa:bb:...": MD5 of the blob in lowercase hex (ssh-keygen -E md5, no "MD5:"). */
int jj_ssh_fingerprint_md5(const char *line, size_t len, char out[JJ_SSH_FP_MD5_SIZE],
                           jj_error *err);

#endif
