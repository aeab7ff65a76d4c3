/* crypto.h: the engine's cryptography, on OpenSSL 3.
 *
 * This header is the base every crypto module shares (secret wiping, the
 * CSPRNG, UUIDs, constant-time comparison, OpenSSL error capture) and it
 * includes the four modules, so `#include "crypto.h"` gives all of them:
 * encoding.h, digest.h, x509.h, sshkey.h.
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

/* ---- UUIDs ---- */

#define JJ_UUID_SIZE 37 /* 36 characters + NUL */

/* RFC 4122 version 4 (random), lowercase 8-4-4-4-12. */
int jj_uuid4(char out[JJ_UUID_SIZE], jj_error *err);

/* True when s is exactly 8-4-4-4-12 hex digits (either case, any version). */
bool jj_is_uuid(const char *s, size_t len);

/* ---- misc ---- */

/* Equal lengths and equal bytes, in time independent of where they differ. */
bool jj_constant_time_equal(const void *a, size_t a_len, const void *b, size_t b_len);

/* ---- for the crypto modules ---- */

/* Moves the OpenSSL error queue into err (the root cause becomes lib_code,
 * its reason follows `what`) and returns code. */
int jj_crypto_fail(jj_error *err, int code, const char *what);

/* A malloc'ed NUL-terminated copy of s[0..n), or NULL. */
char *jj_crypto_dup_range(const char *s, size_t n);

#include "digest.h"
#include "encoding.h"
#include "sshkey.h"
#include "x509.h"

#endif
