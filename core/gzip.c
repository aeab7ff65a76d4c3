/* gzip.c: zlib's deflate/inflate with the gzip wrapper (see gzip.h). */
#include "gzip.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int jj_gzip(const void *in, size_t n, int level, unsigned char **out, size_t *out_len,
            jj_error *err)
{
    jj_error_clear(err);
    *out = NULL;
    if (level == -1)
        level = JJ_GZIP_DEFAULT_LEVEL;
    if (level < 0 || level > 9)
        return jj_error_set(err, JJ_EINVAL, "gzip level %d is outside 0..9", level);
    if (n > UINT_MAX / 2)
        return jj_error_set(err, JJ_ERANGE, "gzip: input of %zu bytes is too large", n);
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper with a zero header (no name, mtime 0) */
    int zrc = deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK)
        return jj_error_set_lib(err, zrc == Z_MEM_ERROR ? JJ_ENOMEM : JJ_EINVAL, zrc,
                                "gzip: deflateInit2 failed (%d)", zrc);
    uLong bound = deflateBound(&z, (uLong)n);
    unsigned char *buf = malloc(bound ? bound : 1);
    if (!buf) {
        deflateEnd(&z);
        return jj_error_set(err, JJ_ENOMEM, "gzip: out of memory");
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)bound;
    zrc = deflate(&z, Z_FINISH);
    size_t len = z.total_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        free(buf);
        return jj_error_set_lib(err, JJ_ENOMEM, zrc, "gzip: deflate failed (%d)", zrc);
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int jj_gunzip(const void *in, size_t n, size_t max_size, unsigned char **out, size_t *out_len,
              jj_error *err)
{
    jj_error_clear(err);
    *out = NULL;
    if (max_size == 0)
        max_size = JJ_GUNZIP_DEFAULT_MAX;
    if (n > UINT_MAX)
        return jj_error_set(err, JJ_ERANGE, "gunzip: input of %zu bytes is too large", n);
    if (n < 2 || ((const unsigned char *)in)[0] != 0x1f || ((const unsigned char *)in)[1] != 0x8b)
        return jj_error_set(err, JJ_ECORRUPT, "gunzip: not gzip data (no 1f 8b magic)");
    z_stream z;
    memset(&z, 0, sizeof z);
    int zrc = inflateInit2(&z, 15 + 16);
    if (zrc != Z_OK)
        return jj_error_set_lib(err, JJ_ENOMEM, zrc, "gunzip: inflateInit2 failed (%d)", zrc);
    size_t cap = n * 4 < 4096 ? 4096 : n * 4, len = 0;
    if (cap > max_size + 1)
        cap = max_size + 1;
    unsigned char *buf = malloc(cap + 1);
    int rc = buf ? 0 : jj_error_set(err, JJ_ENOMEM, "gunzip: out of memory");
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    while (rc == 0) {
        if (len == cap) {
            if (cap > max_size) {
                rc = jj_error_set(err, JJ_ERANGE,
                                  "gunzip: output is larger than the limit of %zu bytes",
                                  max_size);
                break;
            }
            size_t ncap = cap * 2 > max_size + 1 ? max_size + 1 : cap * 2;
            unsigned char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = jj_error_set(err, JJ_ENOMEM, "gunzip: out of memory");
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t room = cap - len;
        z.next_out = buf + len;
        z.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = z.avail_out;
        zrc = inflate(&z, Z_NO_FLUSH);
        len += before - z.avail_out;
        if (zrc == Z_STREAM_END) {
            /* another member follows (gzip -dc reads them all) */
            if (z.avail_in == 0)
                break;
            if (inflateReset(&z) != Z_OK)
                rc = jj_error_set(err, JJ_ECORRUPT, "gunzip: cannot read the next member");
            continue;
        }
        if (zrc == Z_OK)
            continue;
        if (zrc == Z_BUF_ERROR && z.avail_out == 0)
            continue; /* needs more room */
        if (zrc == Z_BUF_ERROR)
            rc = jj_error_set_lib(err, JJ_ECORRUPT, zrc, "gunzip: truncated gzip data");
        else if (zrc == Z_MEM_ERROR)
            rc = jj_error_set(err, JJ_ENOMEM, "gunzip: out of memory");
        else
            rc = jj_error_set_lib(err, JJ_ECORRUPT, zrc, "gunzip: corrupt gzip data: %s",
                                  z.msg ? z.msg : "unknown error");
    }
    inflateEnd(&z);
    if (rc == 0 && len > max_size)
        rc = jj_error_set(err, JJ_ERANGE, "gunzip: output is larger than the limit of %zu bytes",
                          max_size);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}
