/* error.h: the one status convention of the C core.
 *
 * Every core function that can fail returns 0 on success or a negative
 * JJ_E* code, and fills a caller-provided jj_error with a stable code, a
 * human message, the underlying library's own code (OpenSSL error, CURLcode,
 * libssh2 error, errno...) and, where the failure has a position in a file,
 * the file name, line and column. Nothing in core/ prints, exits or aborts.
 */
#ifndef JUJU_CORE_ERROR_H
#define JUJU_CORE_ERROR_H

#include <stddef.h>

enum {
    JJ_OK = 0,
    JJ_EINVAL = -1,      /* bad argument or bad input value */
    JJ_ENOMEM = -2,      /* allocation failed */
    JJ_EIO = -3,         /* read/write failure */
    JJ_ENOENT = -4,      /* file or object does not exist */
    JJ_EEXIST = -5,      /* exclusive create found something */
    JJ_EACCES = -6,      /* permission denied */
    JJ_ECRYPTO = -7,     /* OpenSSL failure */
    JJ_EYAML_PARSE = -8, /* malformed YAML */
    JJ_EYAML_EMIT = -9,  /* cannot emit YAML */
    JJ_ECONFIG = -10,    /* configuration fails its schema */
    JJ_ELOCKED = -11,    /* a lock is held by someone else */
    JJ_ETIMEOUT = -12,   /* a bounded wait ran out */
    JJ_ERANGE = -13,     /* value out of range / buffer too small */
    JJ_EUNSUPPORTED = -14,
    JJ_ECORRUPT = -15,   /* data present but unreadable */
    JJ_EHTTP = -16,
    JJ_EHTTP_TIMEOUT = -17,
    JJ_ESSH = -18,
    JJ_ESSH_AUTH = -19,
    JJ_ESSH_HOSTKEY = -20,
    JJ_EMONGO = -21,
    JJ_ESQLITE = -22,
    JJ_EPROC = -23,
    JJ_EINTERRUPTED = -24,
    JJ_ECHECKSUM = -25,
    JJ_ENOTDIR = -26,
    JJ_EISDIR = -27,
    JJ_ECONNECT = -28,   /* cannot connect to a server */
    JJ_ETLS = -29,       /* TLS handshake or verification failed */
    JJ_EPROTO = -30,     /* a malformed answer on a wire protocol */
    JJ_ENOTLEADER = -31, /* a replicated store's node is not the leader */
    JJ_EBUSY = -32,      /* the database is busy (locked by another writer) */
    JJ_EDQLITE = -33,    /* any other dqlite failure */
    JJ_ENOLEADER = -34,  /* no server answered as the leader */
    JJ_E_LAST = -35
};

#define JJ_ERROR_MSG_MAX 1024
#define JJ_ERROR_FILE_MAX 512

typedef struct jj_error {
    int code;            /* one of JJ_E*, 0 when clear */
    long lib_code;       /* the underlying library's code, 0 if none */
    int line;            /* 1-based; 0 when the error has no position */
    int column;          /* 1-based; 0 when unknown */
    char file[JJ_ERROR_FILE_MAX]; /* file the position refers to, "" if none */
    char message[JJ_ERROR_MSG_MAX];
} jj_error;

/* Resets err to "no error". err may be NULL. */
void jj_error_clear(jj_error *err);

/* Sets code and a printf-style message; returns code so callers can write
 * `return jj_error_set(err, JJ_EINVAL, "...")`. err may be NULL. */
int jj_error_set(jj_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like jj_error_set, and records the library's own code. */
int jj_error_set_lib(jj_error *err, int code, long lib_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Like jj_error_set, from errno: code is derived from errnum (ENOENT ->
 * JJ_ENOENT ...), lib_code = errnum, message = "<prefix>: strerror". */
int jj_error_errno(jj_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records where in which file the error is. file may be NULL. */
void jj_error_at(jj_error *err, const char *file, int line, int column);

/* Prepends "<prefix>: " to the message, keeping code and position. */
void jj_error_prefix(jj_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Stable upper-case name of a code: "EINVAL", "ENOENT", "YAML_PARSE" ... */
const char *jj_error_code_name(int code);

/* Maps an errno value to a JJ_E* code. */
int jj_error_from_errno(int errnum);

#endif
