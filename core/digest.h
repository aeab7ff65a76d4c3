/* digest.h: digests (SHA-256/512, one-shot, streamed, of a file), PBKDF2 and the
 * Juju 1.x password hashes, generated passwords and the admin secret.
 *
 * All functions follow error.h and the conventions of crypto.h (OpenSSL
 * failures carry ERR_get_error()'s code in err->lib_code; bad input is
 * JJ_EINVAL, an OpenSSL malfunction JJ_ECRYPTO; secrets are freed with
 * jj_secret_free).
 */
#ifndef JUJU_CORE_DIGEST_H
#define JUJU_CORE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

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

#endif
