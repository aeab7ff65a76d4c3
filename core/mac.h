/* mac.h: message digests and HMACs for the cloud API signers.
 *
 * AWS SigV4/SigV2 use HMAC-SHA256/SHA1, Azure SharedKey HMAC-SHA256, S3 and
 * Azure uploads carry Content-MD5, Joyent and Keystone need plain digests.
 * One streaming object covers both: created with a key it is an HMAC,
 * without one a plain digest. Results are raw bytes (the signers hex or
 * base64 them). Keys are copied into OpenSSL, which wipes them when the
 * object is freed.
 *
 * Codes: JJ_EINVAL (unknown algorithm name, use after final), JJ_ECRYPTO
 * (OpenSSL failure, lib_code = its error), JJ_ENOMEM, and for jj_mac_file
 * the errno-derived codes of the file (JJ_ENOENT, JJ_EACCES, JJ_EIO ...).
 */
#ifndef JUJU_CORE_MAC_H
#define JUJU_CORE_MAC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum jj_mac_hash {
    JJ_MAC_MD5,
    JJ_MAC_SHA1,
    JJ_MAC_SHA256,
    JJ_MAC_SHA384,
    JJ_MAC_SHA512
} jj_mac_hash;

#define JJ_MAC_MAX_SIZE 64

/* "md5", "sha1", "sha256", "sha384", "sha512" (case-insensitive, a dash
 * allowed: "SHA-256") -> *out; JJ_EINVAL naming the name otherwise. */
int jj_mac_hash_from_name(const char *name, jj_mac_hash *out, jj_error *err);

/* Output size in bytes (16, 20, 32, 48, 64). */
size_t jj_mac_size(jj_mac_hash hash);

typedef struct jj_mac jj_mac;

/* A new streaming digest (key NULL) or HMAC (key non-NULL, keylen may be
 * 0). *out is owned by the caller (jj_mac_free). */
int jj_mac_new(jj_mac_hash hash, const void *key, size_t keylen, jj_mac **out, jj_error *err);

int jj_mac_update(jj_mac *m, const void *data, size_t n, jj_error *err);

/* Writes the result over everything passed so far into out (at least
 * jj_mac_size bytes); *out_len (may be NULL) gets its size. m stays usable:
 * more updates continue the same stream. */
int jj_mac_final(const jj_mac *m, unsigned char *out, size_t *out_len, jj_error *err);

/* Frees m (NULL is fine). */
void jj_mac_free(jj_mac *m);

/* One-shot forms: key NULL for a plain digest. */
int jj_mac_oneshot(jj_mac_hash hash, const void *key, size_t keylen, const void *data, size_t n,
                   unsigned char *out, size_t *out_len, jj_error *err);

/* The digest/HMAC of a file's content, streamed through a 64 KiB buffer;
 * *size (may be NULL) gets the number of bytes read. */
int jj_mac_file(jj_mac_hash hash, const void *key, size_t keylen, const char *path,
                unsigned char *out, size_t *out_len, uint64_t *size, jj_error *err);

#endif
