/* knownhosts.c: known_hosts files and the host-key policy (see
 * knownhosts.h). */
#include "knownhosts.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "crypto.h"
#include "fs.h"

#define HOSTPORT_MAX JJ_KNOWNHOSTS_NAME_MAX

void jj_knownhosts_hostport(char *out, size_t size, const char *host, int port)
{
    if (strchr(host, ':'))
        snprintf(out, size, "[%s]:%d", host, port);
    else
        snprintf(out, size, "%s:%d", host, port);
}

/* ---- known_hosts files ------------------------------------------------------------- */

/* The name a known_hosts file uses for host:port, lower-cased. */
static int known_name(const char *host, int port, char *out, size_t size, jj_error *err)
{
    int n = port == 22 ? snprintf(out, size, "%s", host)
                       : snprintf(out, size, "[%s]:%d", host, port);
    if (n < 0 || (size_t)n >= size)
        return jj_error_set(err, JJ_EINVAL, "host name too long");
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

/* OpenSSH's wildcards: '*' any run, '?' one character; name is lower-case. */
static int wild_match(const char *name, const char *pat, size_t plen)
{
    size_t ni = 0, pi = 0, star = (size_t)-1, mark = 0, nlen = strlen(name);
    while (ni < nlen) {
        if (pi < plen && (pat[pi] == '?' || tolower((unsigned char)pat[pi]) == name[ni])) {
            ni++;
            pi++;
        } else if (pi < plen && pat[pi] == '*') {
            star = pi++;
            mark = ni;
        } else if (star != (size_t)-1) {
            pi = star + 1;
            ni = ++mark;
        } else {
            return 0;
        }
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

/* 1 when name matches the comma-separated pattern list and no negated
 * pattern matches it, else 0. */
static int hostlist_match(const char *name, const char *list, size_t len)
{
    int matched = 0;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && list[j] != ',')
            j++;
        const char *p = list + i;
        size_t plen = j - i;
        int negated = plen > 0 && *p == '!';
        if (negated) {
            p++;
            plen--;
        }
        if (plen > 0 && wild_match(name, p, plen)) {
            if (negated)
                return 0;
            matched = 1;
        }
        i = j + 1;
    }
    return matched;
}

/* A hashed name "|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>": 1 match,
 * 0 no match, -1 malformed. */
static int hashed_match(const char *name, const char *field, size_t len)
{
    const char *salt = field + 3;
    const char *bar = memchr(salt, '|', len - 3);
    if (!bar)
        return -1;
    size_t salt_len = (size_t)(bar - salt), hash_len = len - 3 - salt_len - 1;
    unsigned char saltb[64], hashb[64];
    size_t sl, hl;
    if (jj_base64_decoded_max(salt_len) > sizeof saltb ||
        jj_base64_decoded_max(hash_len) > sizeof hashb ||
        jj_base64_decode(salt, salt_len, saltb, &sl, NULL) != 0 ||
        jj_base64_decode(bar + 1, hash_len, hashb, &hl, NULL) != 0 || sl != 20 || hl != 20)
        return -1;
    if (!name)
        return 0;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha1(), saltb, (int)sl, (const unsigned char *)name, strlen(name), mac, &mlen))
        return 0;
    return mlen == hl && CRYPTO_memcmp(mac, hashb, hl) == 0;
}

typedef struct kh_list {
    jj_known_host *v;
    size_t n, cap;
} kh_list;

static void kh_entry_free(jj_known_host *e)
{
    free(e->line);
    free(e->key);
    free(e->marker);
}

void jj_knownhosts_free(jj_known_host *entries, size_t count)
{
    for (size_t i = 0; entries && i < count; i++)
        kh_entry_free(&entries[i]);
    free(entries);
}

static int kh_corrupt(jj_error *err, const char *source, int lineno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int kh_corrupt(jj_error *err, const char *source, int lineno, const char *fmt, ...)
{
    char msg[JJ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jj_error_set(err, JJ_ECORRUPT, "malformed known_hosts line: %s", msg);
    jj_error_at(err, source, lineno, 0);
    return JJ_ECORRUPT;
}

/* Field separators: blanks, and the CR/VT/FF that editors leave behind, so
 * a stray control character never becomes part of a key. */
static inline int kh_sep(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Next whitespace-separated token of line[*i..len). */
static size_t next_token(const char *line, size_t len, size_t *i, const char **tok)
{
    while (*i < len && kh_sep(line[*i]))
        (*i)++;
    *tok = line + *i;
    size_t start = *i;
    while (*i < len && !kh_sep(line[*i]))
        (*i)++;
    return *i - start;
}

static int kh_parse_line(const char *line, size_t len, int lineno, const char *source,
                         const char *name, kh_list *out, jj_error *err)
{
    size_t i = 0;
    const char *tok;
    size_t tlen = next_token(line, len, &i, &tok);
    if (tlen == 0 || tok[0] == '#')
        return 0;
    const char *marker = NULL;
    if (tok[0] == '@') {
        if (tlen == 8 && memcmp(tok, "@revoked", 8) == 0)
            marker = "revoked";
        else if (tlen == 15 && memcmp(tok, "@cert-authority", 15) == 0)
            marker = "cert-authority";
        else
            return kh_corrupt(err, source, lineno, "unknown marker '%.*s'", (int)(tlen > 64 ? 64 : tlen),
                              tok);
        tlen = next_token(line, len, &i, &tok);
    }
    const char *hosts = tok;
    size_t hosts_len = tlen;
    const char *type, *b64;
    size_t type_len = next_token(line, len, &i, &type);
    size_t b64_len = next_token(line, len, &i, &b64);
    if (hosts_len == 0 || type_len == 0 || b64_len == 0)
        return kh_corrupt(err, source, lineno, "expected '<hosts> <key type> <base64 key>'");

    int match;
    if (hosts_len > 3 && memcmp(hosts, "|1|", 3) == 0) {
        match = hashed_match(name, hosts, hosts_len);
        if (match < 0)
            return kh_corrupt(err, source, lineno, "bad hashed host name");
    } else {
        match = name ? hostlist_match(name, hosts, hosts_len) : 1;
    }

    /* Every line is checked, matching or not: a damaged file is reported
     * rather than half-used. */
    size_t key_len = type_len + 1 + b64_len;
    char *key = malloc(key_len + 1);
    if (!key)
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    memcpy(key, type, type_len);
    key[type_len] = ' ';
    memcpy(key + type_len + 1, b64, b64_len);
    key[key_len] = '\0';
    jj_ssh_public pub;
    jj_error perr;
    if (jj_ssh_parse_public(key, key_len, &pub, &perr) != 0) {
        free(key);
        if (perr.code == JJ_ENOMEM)
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        return kh_corrupt(err, source, lineno, "%s", perr.message);
    }
    jj_ssh_public_free(&pub);
    if (!match) {
        free(key);
        return 0;
    }
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 4;
        jj_known_host *v = realloc(out->v, cap * sizeof *v);
        if (!v) {
            free(key);
            return jj_error_set(err, JJ_ENOMEM, "out of memory");
        }
        out->v = v;
        out->cap = cap;
    }
    jj_known_host *e = &out->v[out->n];
    memset(e, 0, sizeof *e);
    e->lineno = lineno;
    e->key = key;
    e->line = strndup(line, len);
    e->marker = marker ? strndup(marker, strlen(marker)) : NULL;
    if (!e->line || (marker && !e->marker)) {
        kh_entry_free(e);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    out->n++;
    return 0;
}

int jj_knownhosts_parse(const char *text, size_t len, const char *source, const char *host,
                        int port, jj_known_host **out, size_t *count, jj_error *err)
{
    *out = NULL;
    *count = 0;
    if (!source)
        source = "known_hosts";
    char name[HOSTPORT_MAX];
    if (host) {
        int rc = known_name(host, port, name, sizeof name, err);
        if (rc)
            return rc;
    }
    kh_list list = {0};
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t l = end - pos;
        lineno++;
        if (l && text[pos + l - 1] == '\r')
            l--;
        int rc = 0;
        if (memchr(text + pos, '\0', l))
            rc = kh_corrupt(err, source, lineno, "NUL byte");
        else
            rc = kh_parse_line(text + pos, l, lineno, source, host ? name : NULL, &list, err);
        if (rc) {
            jj_knownhosts_free(list.v, list.n);
            return rc;
        }
        pos = end + 1;
    }
    *out = list.v;
    *count = list.n;
    return 0;
}

int jj_knownhosts_lookup(const char *path, const char *host, int port,
                         jj_known_host **out, size_t *count, jj_error *err)
{
    *out = NULL;
    *count = 0;
    char *text = NULL;
    size_t len = 0;
    jj_error rerr;
    int rc = jj_fs_read_file(path, &text, &len, &rerr);
    if (rc == JJ_ENOENT)
        return 0;
    if (rc) {
        if (err)
            *err = rerr;
        return rc;
    }
    rc = jj_knownhosts_parse(text, len, path, host, port, out, count, err);
    free(text);
    return rc;
}

static int valid_host(const char *host)
{
    if (!host || !*host || strlen(host) > 255)
        return 0;
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == ',' || *p == '#' || *p == '[' || *p == ']' ||
            *p == '*' || *p == '?' || *p == '!' || *p == '|' || *p == 0x7f)
            return 0;
    return 1;
}

int jj_knownhosts_add(const char *path, const char *host, int port, const char *key_line,
                      jj_error *err)
{
    if (!path || !*path)
        return jj_error_set(err, JJ_EINVAL, "known_hosts path is empty");
    if (!valid_host(host))
        return jj_error_set(err, JJ_EINVAL, "invalid host name for known_hosts: '%s'",
                            host ? host : "");
    if (port < 1 || port > 65535)
        return jj_error_set(err, JJ_EINVAL, "invalid port %d", port);
    jj_ssh_public pub;
    int rc = jj_ssh_parse_public(key_line, strlen(key_line), &pub, err);
    if (rc) {
        jj_error_prefix(err, "bad host key line");
        return rc;
    }
    char name[HOSTPORT_MAX];
    rc = known_name(host, port, name, sizeof name, err);
    size_t b64_size = jj_base64_encoded_size(pub.blob_len);
    size_t cap = strlen(name) + strlen(pub.type) + b64_size + 4;
    char *line = rc ? NULL : malloc(cap);
    if (!rc && !line)
        rc = jj_error_set(err, JJ_ENOMEM, "out of memory");
    if (rc) {
        jj_ssh_public_free(&pub);
        return rc;
    }
    /* Start on a fresh line even if someone left the file without a final newline. */
    int need_nl = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        char last;
        if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1)
            need_nl = last != '\n';
        close(fd);
    }
    int n = snprintf(line, cap, "%s%s %s ", need_nl ? "\n" : "", name, pub.type);
    jj_base64_encode(pub.blob, pub.blob_len, line + n);
    strcat(line + n, "\n");
    jj_ssh_public_free(&pub);

    char *dir = strndup(path, strlen(path));
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (!dir) {
        free(line);
        return jj_error_set(err, JJ_ENOMEM, "out of memory");
    }
    if (slash && slash != dir) {
        *slash = '\0';
        rc = jj_fs_mkdir_p(dir, 0700, err);
    }
    free(dir);
    if (!rc)
        rc = jj_fs_append_sync(path, line, strlen(line), 0600, err);
    free(line);
    return rc;
}

/* ---- host key policy ---------------------------------------------------------- */

const char *jj_knownhosts_verified_name(jj_knownhosts_verified how)
{
    switch (how) {
    case JJ_KNOWNHOSTS_VERIFIED_PINNED: return "pinned";
    case JJ_KNOWNHOSTS_VERIFIED_KNOWN: return "known_hosts";
    case JJ_KNOWNHOSTS_VERIFIED_ADDED: return "added";
    }
    return "unknown";
}

static int same_key(const jj_ssh_public *a, const jj_ssh_public *b)
{
    return strcmp(a->type, b->type) == 0 && a->blob_len == b->blob_len &&
           memcmp(a->blob, b->blob, a->blob_len) == 0;
}

void jj_knownhosts_fingerprint(const char *line, char out[JJ_SSH_FP_SHA256_SIZE])
{
    if (jj_ssh_fingerprint_sha256(line, strlen(line), out, NULL) != 0)
        snprintf(out, JJ_SSH_FP_SHA256_SIZE, "SHA256:?");
}

/* Checks the presented key against known_hosts entries (pres parsed). */
static int check_known(const jj_knownhosts_check *c, const char *hp, const jj_ssh_public *pres,
                       const char *pres_fp, jj_knownhosts_verified *how, jj_error *err)
{
    jj_known_host *ents;
    size_t n;
    int rc = jj_knownhosts_lookup(c->known_hosts, c->host, c->port, &ents, &n, err);
    if (rc)
        return rc;
    const jj_known_host *expected = NULL, *same_type = NULL;
    int known = 0, revoked_line = 0;
    for (size_t i = 0; i < n && !known && !revoked_line; i++) {
        const jj_known_host *e = &ents[i];
        if (e->marker && strcmp(e->marker, "cert-authority") == 0)
            continue; /* certificates are not offered by libssh2 */
        jj_ssh_public k;
        if (jj_ssh_parse_public(e->key, strlen(e->key), &k, NULL) != 0)
            continue; /* the parser already validated it */
        int same = same_key(&k, pres);
        if (!expected && !e->marker)
            expected = e;
        if (!same_type && !e->marker && strcmp(k.type, pres->type) == 0)
            same_type = e;
        jj_ssh_public_free(&k);
        if (same && e->marker)
            revoked_line = e->lineno;
        else if (same)
            known = 1;
    }
    if (revoked_line) {
        rc = jj_error_set(err, JJ_ESSH_HOSTKEY,
                          "host key verification failed for %s: the server's %s key %s is marked "
                          "@revoked in %s line %d",
                          hp, pres->type, pres_fp, c->known_hosts, revoked_line);
    } else if (known) {
        *how = JJ_KNOWNHOSTS_VERIFIED_KNOWN;
    } else if (expected) {
        if (same_type)
            expected = same_type;
        char efp[JJ_SSH_FP_SHA256_SIZE];
        jj_knownhosts_fingerprint(expected->key, efp);
        char etype[64];
        snprintf(etype, sizeof etype, "%.*s", (int)strcspn(expected->key, " "), expected->key);
        rc = jj_error_set(err, JJ_ESSH_HOSTKEY,
                          "HOST KEY CHANGED for %s: %s line %d expects %s %s, but the server "
                          "presented %s %s. Someone may be intercepting the connection, or the "
                          "machine was rebuilt; if you are sure it was, remove line %d from %s "
                          "and connect again",
                          hp, c->known_hosts, expected->lineno, etype, efp, pres->type, pres_fp,
                          expected->lineno, c->known_hosts);
    } else if (c->trust_on_first_use) {
        rc = jj_knownhosts_add(c->known_hosts, c->host, c->port, c->presented, err);
        if (rc)
            jj_error_prefix(err, "cannot record the host key of %s", hp);
        else
            *how = JJ_KNOWNHOSTS_VERIFIED_ADDED;
    } else {
        rc = jj_error_set(err, JJ_ESSH_HOSTKEY,
                          "the host key of %s is not known: the server presented %s %s, which is "
                          "not in %s. Check the fingerprint, then add the key to that file "
                          "(ssh.known_hosts_add) or connect once with trust_on_first_use",
                          hp, pres->type, pres_fp, c->known_hosts);
    }
    jj_knownhosts_free(ents, n);
    return rc;
}

int jj_knownhosts_check_host_key(const jj_knownhosts_check *c, jj_knownhosts_verified *how, jj_error *err)
{
    if (!c->host || !c->presented)
        return jj_error_set(err, JJ_EINVAL, "host and presented key are required");
    char hp[HOSTPORT_MAX];
    jj_knownhosts_hostport(hp, sizeof hp, c->host, c->port);
    jj_ssh_public pres;
    int rc = jj_ssh_parse_public(c->presented, strlen(c->presented), &pres, err);
    if (rc) {
        jj_error_prefix(err, "bad host key presented by %s", hp);
        return rc;
    }
    char pres_fp[JJ_SSH_FP_SHA256_SIZE];
    jj_knownhosts_fingerprint(c->presented, pres_fp);
    if (c->pinned) {
        jj_ssh_public pin;
        rc = jj_ssh_parse_public(c->pinned, strlen(c->pinned), &pin, err);
        if (rc) {
            jj_error_prefix(err, "bad pinned host key");
        } else {
            if (same_key(&pin, &pres)) {
                *how = JJ_KNOWNHOSTS_VERIFIED_PINNED;
            } else {
                char pin_fp[JJ_SSH_FP_SHA256_SIZE];
                jj_knownhosts_fingerprint(c->pinned, pin_fp);
                rc = jj_error_set(err, JJ_ESSH_HOSTKEY,
                                  "HOST KEY MISMATCH for %s: the pinned key is %s %s, but the "
                                  "server presented %s %s. Someone may be intercepting the "
                                  "connection, or the machine is not the one that was created",
                                  hp, pin.type, pin_fp, pres.type, pres_fp);
            }
            jj_ssh_public_free(&pin);
        }
    } else if (!c->known_hosts) {
        rc = jj_error_set(err, JJ_ESSH_HOSTKEY,
                          "cannot verify the host key of %s (%s %s): no pinned key and no "
                          "known_hosts file were given",
                          hp, pres.type, pres_fp);
    } else {
        rc = check_known(c, hp, &pres, pres_fp, how, err);
    }
    jj_ssh_public_free(&pres);
    return rc;
}
