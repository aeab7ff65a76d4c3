/* error.c: the core's status convention (see error.h). */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void jj_error_clear(jj_error *err)
{
    if (!err)
        return;
    err->code = 0;
    err->lib_code = 0;
    err->line = 0;
    err->column = 0;
    err->file[0] = '\0';
    err->message[0] = '\0';
}

static int set_va(jj_error *err, int code, long lib_code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    jj_error_clear(err);
    err->code = code;
    err->lib_code = lib_code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return code;
}

int jj_error_set(jj_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(err, code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int jj_error_set_lib(jj_error *err, int code, long lib_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_va(err, code, lib_code, fmt, ap);
    va_end(ap);
    return code;
}

/* out = "a: b", truncated to size. */
static void join_message(char *out, size_t size, const char *a, const char *b)
{
    size_t n = 0;
    for (const char *parts[3] = {a, ": ", b}, **p = parts; p < parts + 3; p++)
        for (const char *c = *p; *c && n + 1 < size; c++)
            out[n++] = *c;
    out[n] = '\0';
}

int jj_error_from_errno(int errnum)
{
    switch (errnum) {
    case ENOENT: return JJ_ENOENT;
    case EEXIST: return JJ_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS: return JJ_EACCES;
    case ENOMEM: return JJ_ENOMEM;
    case EINVAL: return JJ_EINVAL;
    case ENOTDIR: return JJ_ENOTDIR;
    case EISDIR: return JJ_EISDIR;
    case ETIMEDOUT: return JJ_ETIMEOUT;
    case EINTR: return JJ_EINTERRUPTED;
    case EWOULDBLOCK: return JJ_ELOCKED;
    default: return JJ_EIO;
    }
}

int jj_error_errno(jj_error *err, int errnum, const char *fmt, ...)
{
    int code = jj_error_from_errno(errnum);
    if (!err)
        return code;
    char prefix[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    jj_error_clear(err);
    err->code = code;
    err->lib_code = errnum;
    join_message(err->message, sizeof err->message, prefix, strerror(errnum));
    return code;
}

void jj_error_at(jj_error *err, const char *file, int line, int column)
{
    if (!err)
        return;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    err->column = column;
}

void jj_error_prefix(jj_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[JJ_ERROR_MSG_MAX];
    char old[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    join_message(err->message, sizeof err->message, prefix, old);
}

const char *jj_error_code_name(int code)
{
    static const char *const names[] = {
        "OK", "EINVAL", "ENOMEM", "EIO", "ENOENT", "EEXIST", "EACCES", "CRYPTO",
        "YAML_PARSE", "YAML_EMIT", "CONFIG", "LOCKED", "TIMEOUT", "ERANGE",
        "UNSUPPORTED", "CORRUPT", "HTTP", "HTTP_TIMEOUT", "SSH", "SSH_AUTH",
        "SSH_HOSTKEY", "MONGO", "SQLITE", "PROC", "INTERRUPTED", "CHECKSUM",
        "ENOTDIR", "EISDIR", "CONNECT", "TLS", "PROTO", "NOTLEADER", "BUSY",
        "DQLITE", "NOLEADER",
    };
    int idx = -code;
    if (idx < 0 || idx >= (int)(sizeof names / sizeof names[0]))
        return "UNKNOWN";
    return names[idx];
}
