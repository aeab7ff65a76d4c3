/* encoding.h: hex and base64 (RFC 4648) encodings.
 *
 * All functions follow error.h and the conventions of crypto.h (OpenSSL
 * failures carry ERR_get_error()'s code in err->lib_code; bad input is
 * JJ_EINVAL, an OpenSSL malfunction JJ_ECRYPTO; secrets are freed with
 * jj_secret_free).
 */
#ifndef JUJU_CORE_ENCODING_H
#define JUJU_CORE_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

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


/* "ab:cd:...": n bytes as colon-separated hex (upper or lower case) into
 * out, which holds 3 * n bytes (the last ':' becomes the NUL). */
void jj_hex_encode_colons(const void *in, size_t n, bool upper, char *out);

/* Base64 of n bytes without '=' padding (OpenSSH SHA256 fingerprints);
 * returns the length written, no NUL. */
size_t jj_base64_encode_unpadded(const void *in, size_t n, char *out);

#endif
