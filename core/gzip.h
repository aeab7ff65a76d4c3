/* gzip.h: gzip of in-memory strings (EC2 user-data is limited to 16 KiB
 * and cloud-init reads gzip'd user-data; Joyent's metadata takes it plain).
 *
 * Output is deterministic: no file name, mtime 0, OS byte "Unix", so the
 * same input and level always give the same bytes. gunzip reads one or more
 * concatenated gzip members (as gzip -dc does) and stops at max_size bytes
 * of output, so a small hostile input cannot expand without bound.
 *
 * Codes: JJ_EINVAL (level outside 0..9), JJ_ECORRUPT (not gzip, bad CRC or
 * length, truncated; lib_code = zlib's code), JJ_ERANGE (output larger
 * than max_size), JJ_ENOMEM.
 */
#ifndef JUJU_CORE_GZIP_H
#define JUJU_CORE_GZIP_H

#include <stddef.h>

#include "error.h"

#define JJ_GZIP_DEFAULT_LEVEL 9
#define JJ_GUNZIP_DEFAULT_MAX (64u * 1024u * 1024u)

/* Compresses in[0..n) at level (0..9; -1 = JJ_GZIP_DEFAULT_LEVEL). On
 * success *out receives a malloc'ed buffer the caller frees, *out_len its
 * length. */
int jj_gzip(const void *in, size_t n, int level, unsigned char **out, size_t *out_len,
            jj_error *err);

/* Decompresses gzip data in[0..n) (max_size 0 = JJ_GUNZIP_DEFAULT_MAX). On
 * success *out receives a malloc'ed buffer (NUL-terminated, for text
 * callers; the NUL is not counted) the caller frees, *out_len its length. */
int jj_gunzip(const void *in, size_t n, size_t max_size, unsigned char **out, size_t *out_len,
              jj_error *err);

#endif
