/* knownhosts.h: the SSH host-key policy, without a connection: OpenSSH
 * known_hosts files (parsing, host matching, hashed names, markers,
 * appending) and the decision whether a presented host key is trusted
 * (pinned key first, then known_hosts, trust-on-first-use only when asked,
 * a changed key always refused). No libssh2 here: core/ssh.c applies this
 * policy to the key its session receives, and anything else (a key read from
 * a cloud console, tests, the fuzzer) can use it on its own.
 *
 * Codes: JJ_ESSH_HOSTKEY (key refused), JJ_ECORRUPT (malformed known_hosts
 * line, with file and line), JJ_EINVAL (unparseable key line, bad host),
 * JJ_ENOENT/JJ_EACCES/JJ_EIO (the known_hosts file).
 */
#ifndef JUJU_CORE_KNOWNHOSTS_H
#define JUJU_CORE_KNOWNHOSTS_H

#include <stddef.h>

#include "crypto.h"
#include "error.h"

/* Longest "[host]:port" name this module and core/ssh.c handle. */
#define JJ_KNOWNHOSTS_NAME_MAX 300

/* "host:port", or "[v6]:port" for an IPv6 address, for messages. Always
 * NUL-terminates (truncating). */
void jj_knownhosts_hostport(char *out, size_t size, const char *host, int port);

/* The SHA256 fingerprint of a "<type> <base64>" key line for messages, or
 * "SHA256:?" when the line does not parse. */
void jj_knownhosts_fingerprint(const char *line, char out[JJ_SSH_FP_SHA256_SIZE]);

/* ---- known_hosts -------------------------------------------------------- */

typedef struct jj_known_host {
    int lineno;    /* 1-based line in the file */
    char *line;    /* the whole line, without its newline */
    char *key;     /* "<type> <base64>", without comment */
    char *marker;  /* NULL, "revoked" or "cert-authority" */
} jj_known_host;

/* Parses known_hosts text (OpenSSH format: optional @marker, comma-separated
 * host patterns with * ? and !negation or a hashed |1|salt|hash name, key
 * type, base64 key, optional comment) and returns the entries whose hosts
 * match host at port (the name is "host", or "[host]:port" when port is not
 * 22; hosts compare case-insensitively). host NULL returns every entry.
 * A malformed line is JJ_ECORRUPT with source and the line number recorded
 * (jj_error_at). On success *out (may be NULL when *count is 0) is owned by
 * the caller: jj_knownhosts_free. */
int jj_knownhosts_parse(const char *text, size_t len, const char *source, const char *host,
                        int port, jj_known_host **out, size_t *count, jj_error *err);

/* As jj_knownhosts_parse on the file at path; a missing file has no
 * entries. Ownership as above. */
int jj_knownhosts_lookup(const char *path, const char *host, int port,
                         jj_known_host **out, size_t *count, jj_error *err);

void jj_knownhosts_free(jj_known_host *entries, size_t count);

/* Appends "<name> <type> <base64>" for host:port to path (created 0600, its
 * directory 0700 when missing), fsynced. key_line must parse as a public key
 * line; its comment is not copied. */
int jj_knownhosts_add(const char *path, const char *host, int port, const char *key_line,
                      jj_error *err);

/* ---- host key verification ----------------------------------------------- */

typedef enum {
    JJ_KNOWNHOSTS_VERIFIED_PINNED = 1, /* matched the pinned key */
    JJ_KNOWNHOSTS_VERIFIED_KNOWN,      /* matched a known_hosts entry */
    JJ_KNOWNHOSTS_VERIFIED_ADDED       /* unknown, trusted on first use and recorded */
} jj_knownhosts_verified;

typedef struct jj_knownhosts_check {
    const char *host;
    int port;
    const char *presented;   /* the server's key line, "<type> <base64>" */
    const char *pinned;      /* a pinned key line, or NULL */
    const char *known_hosts; /* path, or NULL */
    int trust_on_first_use;  /* record an unknown key instead of refusing it */
} jj_knownhosts_check;

/* The verification policy of jj_ssh_connect, usable on its own (a key read
 * from a cloud console, tests). 0 and *how set when the key is accepted;
 * JJ_ESSH_HOSTKEY when refused, the message naming host:port, the presented
 * fingerprint and, for a changed key, the expected one and where it came
 * from (pin, or file and line). JJ_EINVAL for an unparseable key line. */
int jj_knownhosts_check_host_key(const jj_knownhosts_check *c, jj_knownhosts_verified *how, jj_error *err);

/* "pinned", "known_hosts" or "added". */
const char *jj_knownhosts_verified_name(jj_knownhosts_verified how);

#endif
