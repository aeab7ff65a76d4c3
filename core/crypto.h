/* crypto.h: the engine's cryptography, on OpenSSL 3.
 *
 * Everything Juju 1.x bootstrap derives from secrets lives here: encodings
 * (hex, base64), digests (one-shot, streamed, of a file), PBKDF2 and the
 * Juju password hashes, CSPRNG helpers (admin-secret, agent passwords,
 * UUIDs), the environment CA and the state-server certificate, and SSH keys
 * (OpenSSH ed25519 private keys, public lines, fingerprints).
 *
 * All functions follow error.h: 0 or a negative JJ_E* code, with details in
 * the caller's jj_error. OpenSSL failures carry ERR_get_error()'s code in
 * err->lib_code and its reason string in the message; bad input is
 * JJ_EINVAL, an OpenSSL malfunction JJ_ECRYPTO. Inputs that may hold any
 * bytes are taken as (pointer, length); no function keeps a pointer to its
 * arguments after it returns.
 *
 * Ownership: strings returned through `char **` are malloc'd and owned by the
 * caller. Anything that holds a private key or a password-equivalent is
 * released with jj_secret_free, which wipes it first; the rest with free().
 */
#ifndef JUJU_CORE_CRYPTO_H
#define JUJU_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Wipes and frees a NUL-terminated secret string; takes ownership. NULL ok. */
void jj_secret_free(char *secret);

/* ---- random ---- */

/* Fills buf with n bytes from OpenSSL's CSPRNG. */
int jj_random_bytes(void *buf, size_t n, jj_error *err);

/* ---- encodings ---- */

/* Lowercase hex of in[0..n): out must hold 2n + 1 bytes (NUL-terminated). */
void jj_hex_encode(const void *in, size_t n, char *out);

/* Decodes hex (either case, even length, nothing else). out must hold
 * len / 2 bytes; *out_len receives the decoded length. */
int jj_hex_decode(const char *in, size_t len, unsigned char *out, size_t *out_len,
                  jj_error *err);

/* Size of standard padded base64 of n bytes, including the NUL. */
size_t jj_base64_encoded_size(size_t n);

/* Standard alphabet, '=' padded, no line breaks; out must hold
 * jj_base64_encoded_size(n) bytes. */
void jj_base64_encode(const void *in, size_t n, char *out);

/* Upper bound of the decoded length of `len` base64 characters. */
size_t jj_base64_decoded_max(size_t len);

/* Decodes standard base64, ignoring ASCII whitespace (so wrapped PEM bodies
 * work), with or without '=' padding. Rejects other characters, misplaced
 * padding, an impossible length and non-zero trailing bits. out must hold
 * jj_base64_decoded_max(len) bytes. */
int jj_base64_decode(const char *in, size_t len, unsigned char *out, size_t *out_len,
                     jj_error *err);

/* ---- digests ---- */

typedef enum jj_digest_alg { JJ_DIGEST_SHA256, JJ_DIGEST_SHA512 } jj_digest_alg;

#define JJ_DIGEST_MAX 64 /* bytes of the largest digest (SHA-512) */

/* Output size in bytes of alg (32 or 64). */
size_t jj_digest_size(jj_digest_alg alg);

/* md must hold jj_digest_size(alg) bytes. */
int jj_digest(jj_digest_alg alg, const void *data, size_t n, unsigned char *md, jj_error *err);

/* A streaming digest: new, any number of updates, final as often as wanted
 * (final does not end the stream: further updates continue it). */
typedef struct jj_hasher jj_hasher;

/* On success *out is owned by the caller; release with jj_hasher_free. */
int jj_hasher_new(jj_digest_alg alg, jj_hasher **out, jj_error *err);
int jj_hasher_update(jj_hasher *h, const void *data, size_t n, jj_error *err);
/* Digest of everything so far; md must hold jj_hasher_size(h) bytes. */
int jj_hasher_final(const jj_hasher *h, unsigned char *md, jj_error *err);
size_t jj_hasher_size(const jj_hasher *h);
/* Takes ownership of h and frees it. NULL ok. */
void jj_hasher_free(jj_hasher *h);

/* SHA-256 of a file, read through a fixed buffer (constant memory). *size
 * receives the number of bytes hashed. Errors carry errno's code (JJ_ENOENT,
 * JJ_EACCES, JJ_EISDIR, JJ_EIO ...). */
int jj_sha256_file(const char *path, unsigned char md[32], uint64_t *size, jj_error *err);

/* ---- passwords (bootstrap.md 4.3) ---- */

/* The fixed salt of Juju's admin password hash: 0x75 0x82 0x81 0xca. */
extern const unsigned char jj_compat_salt[4];
#define JJ_COMPAT_SALT_LEN 4

#define JJ_PASSWORD_HASH_ITERATIONS 8192
#define JJ_PASSWORD_HASH_BYTES 18
#define JJ_PASSWORD_SIZE 25 /* 24 base64 characters + NUL */
#define JJ_ADMIN_SECRET_SIZE 33 /* 32 hex characters + NUL */

/* PBKDF2-HMAC-SHA512. iterations >= 1; out receives keylen bytes. */
int jj_pbkdf2_sha512(const void *password, size_t password_len, const void *salt,
                     size_t salt_len, unsigned iterations, unsigned char *out, size_t keylen,
                     jj_error *err);

/* base64(PBKDF2-HMAC-SHA512(password, salt, 8192, 18)): Juju's
 * UserPasswordHash. out: JJ_PASSWORD_SIZE bytes. */
int jj_user_password_hash(const void *password, size_t password_len, const void *salt,
                          size_t salt_len, char out[JJ_PASSWORD_SIZE], jj_error *err);

/* base64(SHA-512(password)[0..18)): Juju's AgentPasswordHash. */
int jj_agent_password_hash(const void *password, size_t password_len,
                           char out[JJ_PASSWORD_SIZE], jj_error *err);

/* base64 of 18 random bytes: Juju's RandomPassword. */
int jj_random_password(char out[JJ_PASSWORD_SIZE], jj_error *err);

/* 16 random bytes as lowercase hex: a generated admin-secret. */
int jj_admin_secret(char out[JJ_ADMIN_SECRET_SIZE], jj_error *err);

/* ---- UUIDs ---- */

#define JJ_UUID_SIZE 37 /* 36 characters + NUL */

/* RFC 4122 version 4 (random), lowercase 8-4-4-4-12. */
int jj_uuid4(char out[JJ_UUID_SIZE], jj_error *err);

/* True when s is exactly 8-4-4-4-12 hex digits (either case, any version). */
bool jj_is_uuid(const char *s, size_t len);

/* ---- X.509: environment CA and state-server certificate (bootstrap.md 4.1) ---- */

typedef enum jj_key_type {
    JJ_KEY_ECDSA_P256 = 0, /* the default: fast and small */
    JJ_KEY_RSA2048,
    JJ_KEY_RSA3072,
    JJ_KEY_ED25519
} jj_key_type;

/* "ecdsa-p256" | "rsa2048" | "rsa3072" | "ed25519"; JJ_EINVAL otherwise. */
int jj_key_type_from_name(const char *name, jj_key_type *out, jj_error *err);

typedef struct jj_cert_opts {
    jj_key_type key;               /* key of the new certificate */
    int years;                     /* validity after now; 1..1000, default 10 */
    bool now_set;                  /* false: use the current time */
    int64_t now;                   /* unix seconds, when now_set */
    const char *const *hostnames;  /* extra SANs (server cert only); IP literals become IP SANs */
    size_t n_hostnames;
} jj_cert_opts;

/* Defaults: ECDSA P-256, 10 years, current time, no extra hostnames. */
void jj_cert_opts_init(jj_cert_opts *opts);

/* Self-signed environment CA: CN=`juju-generated CA for environment
 * "<env_name>"`, O=juju, random 127-bit serial, validity now-7d .. now+years,
 * basicConstraints critical CA:TRUE, keyUsage critical keyCertSign, cRLSign,
 * digitalSignature, subjectKeyIdentifier, SHA-256 signature. opts may be
 * NULL. On success the caller owns *cert_pem (free) and *key_pem (PKCS#8
 * "PRIVATE KEY"; jj_secret_free). */
int jj_new_ca(const char *env_name, const jj_cert_opts *opts, char **cert_pem, char **key_pem,
              jj_error *err);

/* State-server certificate signed by the CA: CN=*, O=juju, SANs *,
 * juju-apiserver, juju-mongodb, localhost and opts->hostnames, EKU
 * serverAuth + clientAuth, keyUsage digitalSignature + keyEncipherment (RSA)
 * or keyAgreement (EC). The CA pair must pass jj_check_ca_pair's checks; its
 * failures use Juju's messages ("CA certificate is not a valid CA", "more
 * than one certificate for CA"). Ownership as for jj_new_ca. */
int jj_new_server_cert(const char *ca_cert_pem, size_t ca_cert_len, const char *ca_key_pem,
                       size_t ca_key_len, const jj_cert_opts *opts, char **cert_pem,
                       char **key_pem, jj_error *err);

/* Checks a configured CA: exactly one certificate, it parses, it is a CA
 * (basicConstraints CA:TRUE), the key (RSA PKCS#1 / EC SEC1 / PKCS#8, not
 * encrypted) parses and matches. JJ_EINVAL with "bad CA certificate/key in
 * configuration: <detail>" otherwise. */
int jj_check_ca_pair(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                     jj_error *err);

#define JJ_FINGERPRINT_SHA256_SIZE 96 /* 32 "AB:" groups, last ':' becomes NUL */

typedef struct jj_cert_info {
    char *subject;    /* RFC 2253, e.g. "CN=*,O=juju" */
    char *issuer;
    char *serial_hex; /* lowercase, no leading zeros; "-" prefix if negative */
    int64_t not_before, not_after; /* unix seconds */
    bool is_ca;       /* basicConstraints CA:TRUE */
    char key_type[16]; /* "EC", "RSA", "ED25519", "ED448", "DSA" or "UNKNOWN" */
    int key_bits;
    char **sans;      /* DNS names and IP addresses as text */
    size_t n_sans;
    char fingerprint_sha256[JJ_FINGERPRINT_SHA256_SIZE]; /* of the DER, "AB:CD:..." */
} jj_cert_info;

/* Describes the first certificate in pem. On success *info owns allocated
 * fields: release them with jj_cert_info_free. On failure nothing is left to
 * free. */
int jj_cert_info_parse(const char *pem, size_t len, jj_cert_info *info, jj_error *err);
/* Frees the fields of info (not info itself) and zeroes it. */
void jj_cert_info_free(jj_cert_info *info);

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

/* ---- misc ---- */

/* Equal lengths and equal bytes, in time independent of where they differ. */
bool jj_constant_time_equal(const void *a, size_t a_len, const void *b, size_t b_len);

#endif
