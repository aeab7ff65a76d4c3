/* ssh_test_helpers.h: what tests/c/test_knownhosts.c and test_ssh.c share:
 * paths in the test's temp directory, small file checks and fresh keys.
 * Included once per test executable (static state). */
#ifndef JUJU_TESTS_SSH_TEST_HELPERS_H
#define JUJU_TESTS_SSH_TEST_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto.h"
#include "fs.h"

/* The test's temp directory, set by main. */
static char base[256];

static inline const char *P(const char *rel)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", base, rel);
    return b;
}

static inline int mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

static inline int contains(const char *hay, const char *needle)
{
    return hay && needle && strstr(hay, needle) != NULL;
}

static inline int write_text(const char *path, const char *text, mode_t mode)
{
    jj_error err;
    return jj_fs_write_atomic(path, text, strlen(text), mode, &err);
}

/* A fresh ed25519 public line (caller frees). */
static inline char *new_pub(void)
{
    char *pem = NULL, *pub = NULL;
    jj_error err;
    if (jj_ssh_keygen_ed25519("test", &pem, &pub, &err) != 0)
        return NULL;
    jj_secret_free(pem);
    return pub;
}

static inline void fingerprint(const char *line, char out[JJ_SSH_FP_SHA256_SIZE])
{
    jj_error err;
    if (jj_ssh_fingerprint_sha256(line, strlen(line), out, &err) != 0)
        out[0] = '\0';
}

#endif
