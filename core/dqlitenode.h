/* dqlitenode.h: a Dqlite node inside this process (libdqlite's node API)
 * behind mutual TLS.
 *
 * libdqlite's node binds an abstract unix socket that only this process
 * knows; a proxy thread accepts TLS on the configured address (the client
 * must present a certificate signed by the CA; TLS >= 1.2), and only after
 * the handshake connects to the node's socket and relays bytes. The node
 * dials its peers through a connect function that opens TLS to the peer
 * (verified against the CA and the name "juju-dqlite") and hands libdqlite
 * one end of a socketpair, the proxy thread relaying the other end. This is
 * what go-dqlite's app package does (app/proxy.go, app/dial.go), so nodes of
 * either kind form one cluster.
 *
 * A node id 1 with an empty data dir bootstraps a single-voter cluster;
 * other ids wait to be added by a client (REQUEST_ADD, then ASSIGN).
 *
 * Threads: libdqlite's own, the proxy thread, and libdqlite's connect
 * function calls; none of them calls back into the caller.
 */
#ifndef JUJU_CORE_DQLITENODE_H
#define JUJU_CORE_DQLITENODE_H

#include <stdint.h>

#include "error.h"

/* The name every dqlite server certificate carries and every peer verifies. */
#define JJ_DQLITENODE_SERVER_NAME "juju-dqlite"

typedef struct jj_dqlitenode jj_dqlitenode;

typedef struct jj_dqlitenode_opts {
    uint64_t id;          /* > 0; 1 bootstraps a new cluster */
    const char *address;  /* "host:port" or "[v6]:port": what peers dial */
    const char *dir;      /* data dir, created 0700 when absent */
    /* PEM texts, all three required unless plain: the CA (one or more
     * certificates), this node's certificate (leaf first, then any chain)
     * and its private key. Copied; the key copy is wiped when freed. */
    const char *ca_pem;
    const char *cert_pem;
    const char *key_pem;
    /* Tests only: no TLS, libdqlite binds address itself (so nodes that
     * speak plain TCP, dqlite-demo, can join). The agent never sets it. */
    int plain;
} jj_dqlitenode_opts;

/* Validates opts, creates the dir, loads the TLS material, binds the
 * listener, then starts libdqlite and the proxy thread. On success *out
 * owns a running node (free it with jj_dqlitenode_free). On failure
 * nothing is left running or open; err names the address or dir and the
 * cause: JJ_EINVAL (bad options), JJ_EACCES (dir not writable), JJ_ECRYPTO
 * (bad certificate or key), JJ_EIO with lib_code EADDRINUSE (port in use)
 * or another errno, JJ_EIO (libdqlite refused; its message is included). */
int jj_dqlitenode_start(const jj_dqlitenode_opts *opts, jj_dqlitenode **out, jj_error *err);

/* Stops the node: libdqlite first (its connections close), then the proxy
 * thread, which closes every relayed connection and the listener.
 * Idempotent; returns 0, or JJ_EIO when libdqlite reported a failure while
 * stopping (everything is released anyway). */
int jj_dqlitenode_stop(jj_dqlitenode *n, jj_error *err);

/* Stops (when running) and frees. n may be NULL. */
void jj_dqlitenode_free(jj_dqlitenode *n);

uint64_t jj_dqlitenode_id(const jj_dqlitenode *n);
const char *jj_dqlitenode_address(const jj_dqlitenode *n);
const char *jj_dqlitenode_dir(const jj_dqlitenode *n);
int jj_dqlitenode_running(const jj_dqlitenode *n);

#endif
