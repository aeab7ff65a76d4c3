/* x509.h: the environment CA and the state-server certificate (bootstrap.md 4.1),
 * and reading certificates back.
 *
 * All functions follow error.h and the conventions of crypto.h (OpenSSL
 * failures carry ERR_get_error()'s code in err->lib_code; bad input is
 * JJ_EINVAL, an OpenSSL malfunction JJ_ECRYPTO; secrets are freed with
 * jj_secret_free).
 */
#ifndef JUJU_CORE_X509_H
#define JUJU_CORE_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---- X.509: environment CA and state-server certificate (bootstrap.md 4.1) ---- */

typedef enum jj_key_type {
    JJ_KEY_ECDSA_P256 = 0, /* the default: fast and small */
    JJ_KEY_RSA2048,
    JJ_KEY_RSA3072,
    JJ_KEY_ED25519
} jj_key_type;

/* "ecdsa-p256" | "rsa2048" | "rsa3072" | "ed25519"; JJ_EINVAL otherwise. */
int jj_key_type_from_name(const char *name, jj_key_type *out, jj_error *err);

typedef struct jj_cert_opts {
    jj_key_type key;               /* key of the new certificate */
    int years;                     /* validity after now; 1..1000, default 10 */
    bool now_set;                  /* false: use the current time */
    int64_t now;                   /* unix seconds, when now_set */
    const char *const *hostnames;  /* extra SANs (server cert only); IP literals become IP SANs */
    size_t n_hostnames;
} jj_cert_opts;

/* Defaults: ECDSA P-256, 10 years, current time, no extra hostnames. */
void jj_cert_opts_init(jj_cert_opts *opts);

/* Self-signed environment CA: CN=`juju-generated CA for environment
 * "<env_name>"`, O=juju, random 127-bit serial, validity now-7d .. now+years,
 * basicConstraints critical CA:TRUE, keyUsage critical keyCertSign, cRLSign,
 * digitalSignature, subjectKeyIdentifier, SHA-256 signature. opts may be
 * NULL. On success the caller owns *cert_pem (free) and *key_pem (PKCS#8
 * "PRIVATE KEY"; jj_secret_free). */
int jj_new_ca(const char *env_name, const jj_cert_opts *opts, char **cert_pem, char **key_pem,
              jj_error *err);

/* State-server certificate signed by the CA: CN=*, O=juju, SANs *,
 * juju-apiserver, juju-mongodb, localhost and opts->hostnames, EKU
 * serverAuth + clientAuth, keyUsage digitalSignature + keyEncipherment (RSA)
 * or keyAgreement (EC). The CA pair must pass jj_check_ca_pair's checks; its
 * failures use Juju's messages ("CA certificate is not a valid CA", "more
 * than one certificate for CA"). Ownership as for jj_new_ca. */
int jj_new_server_cert(const char *ca_cert_pem, size_t ca_cert_len, const char *ca_key_pem,
                       size_t ca_key_len, const jj_cert_opts *opts, char **cert_pem,
                       char **key_pem, jj_error *err);

/* Checks a configured CA: exactly one certificate, it parses, it is a CA
 * (basicConstraints CA:TRUE), the key (RSA PKCS#1 / EC SEC1 / PKCS#8, not
 * encrypted) parses and matches. JJ_EINVAL with "bad CA certificate/key in
 * configuration: <detail>" otherwise. */
int jj_check_ca_pair(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                     jj_error *err);

#define JJ_FINGERPRINT_SHA256_SIZE 96 /* 32 "AB:" groups, last ':' becomes NUL */

typedef struct jj_cert_info {
    char *subject;    /* RFC 2253, e.g. "CN=*,O=juju" */
    char *issuer;
    char *serial_hex; /* lowercase, no leading zeros; "-" prefix if negative */
    int64_t not_before, not_after; /* unix seconds */
    bool is_ca;       /* basicConstraints CA:TRUE */
    char key_type[16]; /* "EC", "RSA", "ED25519", "ED448", "DSA" or "UNKNOWN" */
    int key_bits;
    char **sans;      /* DNS names and IP addresses as text */
    size_t n_sans;
    char fingerprint_sha256[JJ_FINGERPRINT_SHA256_SIZE]; /* of the DER, "AB:CD:..." */
} jj_cert_info;

/* Describes the first certificate in pem. On success *info owns allocated
 * fields: release them with jj_cert_info_free. On failure nothing is left to
 * free. */
int jj_cert_info_parse(const char *pem, size_t len, jj_cert_info *info, jj_error *err);
/* Frees the fields of info (not info itself) and zeroes it. */
void jj_cert_info_free(jj_cert_info *info);


/* Reads one unencrypted PEM private key (any type OpenSSL reads) into *out
 * (the caller frees it with EVP_PKEY_free); what names it in errors. For
 * the crypto modules (sshkey.c). */
struct evp_pkey_st;
int jj_x509_read_private_key(const char *pem, size_t len, const char *what,
                             struct evp_pkey_st **out, jj_error *err);

#endif
