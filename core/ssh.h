/* ssh.h: the SSH client the bootstrap uses to reach machine 0, on libssh2.
 *
 * Juju 1.x ran `ssh -o StrictHostKeyChecking=no` and pushed the CA key over
 * whatever answered (bootstrap.md 7, W2). Here every connection verifies the
 * server's host key before a byte of ours is sent: a pinned key first, else
 * a per-environment known_hosts file; an unknown key is refused unless the
 * caller asked for trust-on-first-use, and a changed key is always refused,
 * with both fingerprints and the known_hosts line in the message.
 *
 * The session runs libssh2 in non-blocking mode and does every wait itself
 * with poll(), so each wait has a bound: `connect_timeout` covers TCP
 * connect, handshake and authentication; `timeout` is the longest one
 * protocol step (opening a channel, an SFTP request, pushing data the server
 * does not drain) may make no progress; waiting for a remote command's output
 * is bounded by the exec's own timeout and by keepalives (a server that
 * leaves three keepalive intervals unanswered is declared gone; with
 * keepalive 0 the session timeout bounds silences too).
 *
 * libssh2 1.10 resends nothing correctly if a second packet is started while
 * one is half-sent, so a call that leaves a partial packet behind is always
 * repeated, with the same arguments, before any other call.
 *
 * The host-key policy (known_hosts files, pinned keys, trust-on-first-use)
 * is core/knownhosts.h; jj_ssh_connect applies it to the key the server
 * presents before authenticating.
 *
 * Codes: JJ_ESSH (connection refused, protocol or channel failures),
 * JJ_ETIMEOUT, JJ_ESSH_AUTH, JJ_ESSH_HOSTKEY, JJ_ECORRUPT (malformed
 * known_hosts line, with file and line), JJ_EINTERRUPTED (a callback asked to
 * stop, the call's cancel token was requested, or a watched signal arrived:
 * see "cancellation" in sys.h; every socket wait checks it at least every
 * JJ_SYS_CANCEL_SLICE s), JJ_ENOENT/JJ_EACCES (local or remote files),
 * JJ_EINVAL.
 * lib_code is the libssh2 error, or the SFTP status for remote file errors.
 */
#ifndef JUJU_CORE_SSH_H
#define JUJU_CORE_SSH_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "error.h"
#include "knownhosts.h"
#include "sys.h"

/* libssh2_init, done once per process (pthread_once); jj_ssh_connect calls
 * it too. Never undone: libssh2 may be shared with other users. */
int jj_ssh_global_init(jj_error *err);

/* ---- sessions ------------------------------------------------------------ */

typedef struct jj_ssh_session jj_ssh_session;

typedef struct jj_ssh_connect_opts {
    const char *host;             /* name or address (required) */
    int port;                     /* default 22 */
    const char *user;             /* required */
    const char *private_key_file; /* required: OpenSSH or PEM private key */
    const char *public_key_file;  /* optional; libssh2 derives it otherwise */
    double connect_timeout;       /* seconds, default 30 */
    double timeout;               /* seconds without progress per step, default 60 */
    int keepalive;                /* seconds between keepalives, default 30; 0 = off */
    const char *known_hosts;      /* per-environment known_hosts path, or NULL */
    const char *host_key;         /* pinned public key line, or NULL */
    int trust_on_first_use;
    /* libssh2 host key algorithm list; NULL = the default below, reordered
     * so the pinned or known key types come first. */
    const char *hostkey_prefs;
    const jj_sys_cancel *cancel;  /* stops TCP connect, handshake and auth; or NULL */
} jj_ssh_connect_opts;

#define JJ_SSH_DEFAULT_HOSTKEY_PREFS                                                   \
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"         \
    "rsa-sha2-512,rsa-sha2-256,ssh-rsa"

/* Fills o with the defaults above (strings NULL). */
void jj_ssh_connect_opts_init(jj_ssh_connect_opts *o);

/* Connects, verifies the host key (see jj_knownhosts_check_host_key) and
 * authenticates with the key pair. On success *out is owned by the caller
 * (jj_ssh_close). Nothing is left open on failure. */
int jj_ssh_connect(const jj_ssh_connect_opts *o, jj_ssh_session **out, jj_error *err);

/* Disconnects (bounded to a couple of seconds) and frees. NULL is fine. */
void jj_ssh_close(jj_ssh_session *s);

typedef struct jj_ssh_host_key {
    char type[64];                           /* "ssh-ed25519" ... */
    char fingerprint[JJ_SSH_FP_SHA256_SIZE]; /* "SHA256:..." */
    char *line;                              /* "<type> <base64>" */
    jj_knownhosts_verified verified;
} jj_ssh_host_key;

/* The server's key as verified at connect; owned by the session. */
const jj_ssh_host_key *jj_ssh_session_host_key(const jj_ssh_session *s);

/* ---- exec ------------------------------------------------------------------ */

enum { JJ_SSH_STDOUT = 1, JJ_SSH_STDERR = 2 };

/* Output sink: return 0 to go on, non-zero to abort the command
 * (JJ_EINTERRUPTED). Called from the exec loop, never from inside libssh2. */
typedef int (*jj_ssh_output_fn)(void *ud, int stream, const char *data, size_t len);

typedef struct jj_ssh_exec_opts {
    const char *stdin_data;  /* streamed to the command's stdin (borrowed) */
    size_t stdin_len;
    const char *stdin_file;  /* or streamed from this file; neither: empty stdin */
    jj_ssh_output_fn on_output;
    void *ud;
    int collect;             /* default 1: keep stdout/stderr in the result */
    double timeout;          /* seconds for the whole command, 0 = none */
    const jj_sys_cancel *cancel; /* stops the command's waits; or NULL */
} jj_ssh_exec_opts;

void jj_ssh_exec_opts_init(jj_ssh_exec_opts *o);

typedef struct jj_ssh_exec_result {
    int code;          /* exit status; 128 + signal number when killed */
    char signal[32];   /* "KILL", "TERM" ... when killed by a signal, else "" */
    char *out, *err;   /* collected output, NUL-terminated (NULL when not collected) */
    size_t out_len, err_len;
    size_t out_cap, err_cap;
} jj_ssh_exec_result;

void jj_ssh_exec_result_init(jj_ssh_exec_result *r);
/* Frees the collected output and re-inits r. */
void jj_ssh_exec_result_free(jj_ssh_exec_result *r);

/* Runs command in a new channel, feeding stdin and draining stdout and
 * stderr together so no direction can stall the other. r must be initialised;
 * its buffers belong to the caller (jj_ssh_exec_result_free) whatever the
 * outcome. On timeout or abort the channel is closed (the remote command is
 * not signalled: libssh2 1.10 cannot) and the session stays usable if the
 * close completes. */
int jj_ssh_exec(jj_ssh_session *s, const char *command, const jj_ssh_exec_opts *o,
                jj_ssh_exec_result *r, jj_error *err);

/* ---- SFTP ------------------------------------------------------------------ */

/* Progress: bytes done and the total (-1 when unknown); non-zero aborts
 * (JJ_EINTERRUPTED). */
typedef int (*jj_ssh_progress_fn)(void *ud, uint64_t done, int64_t total);

typedef struct jj_ssh_transfer_opts {
    int mode;                    /* file mode; default 0644 (upload), 0600 (download) */
    int parents_mode;            /* upload: > 0 makes missing parent directories (this mode) */
    jj_ssh_progress_fn on_progress;
    void *ud;
    const jj_sys_cancel *cancel; /* stops the transfer's waits; or NULL */
} jj_ssh_transfer_opts;

/* SFTP upload in 1 MiB writes through "<remote>.juju-upload-<random>",
 * its missing parent directories made first over SFTP when o->parents_mode
 * is set (mkdir -p: no remote command),
 * fsynced, chmod'ed to mode and renamed over remote_path (a remote file in
 * the way is removed first: SFTP v3 renames do not overwrite). The temp file
 * is removed on failure, unless the failure is the connection itself (a
 * step that timed out leaves the session unusable: connect again).
 * Constant memory. *bytes = bytes sent (may be NULL). */
int jj_ssh_upload(jj_ssh_session *s, const char *local_path, const char *remote_path,
                  const jj_ssh_transfer_opts *o, uint64_t *bytes, jj_error *err);

/* SFTP download into "<local>.part-XXXXXX", fsynced and renamed over
 * local_path; nothing is left behind on failure. */
int jj_ssh_download(jj_ssh_session *s, const char *remote_path, const char *local_path,
                    const jj_ssh_transfer_opts *o, uint64_t *bytes, jj_error *err);

#endif
