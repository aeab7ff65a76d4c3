/* test_gzip.c: core/gzip round trips, deterministic output, gzip -dc reads
 * what jj_gzip writes, jj_gunzip reads what gzip(1) writes (concatenated
 * members too), and the refusals: bad level, corrupt, truncated, too big. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gzip.h"

static void test_roundtrip_and_determinism(void)
{
    char in[20000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)("#cloud-config\nruncmd: []\n"[i % 25]);
    unsigned char *a = NULL, *b = NULL, *plain = NULL;
    size_t la = 0, lb = 0, lp = 0;
    jj_error err;
    CHECK_INT(jj_gzip(in, sizeof in, -1, &a, &la, &err), 0);
    CHECK_INT(jj_gzip(in, sizeof in, 9, &b, &lb, &err), 0);
    CHECK(la == lb && memcmp(a, b, la) == 0);
    CHECK(la < 1000);
    CHECK(a[0] == 0x1f && a[1] == 0x8b && a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0);
    CHECK_INT(jj_gunzip(a, la, 0, &plain, &lp, &err), 0);
    CHECK(lp == sizeof in && memcmp(plain, in, lp) == 0);
    free(plain);
    /* the limit: exactly the size passes, one byte less fails */
    CHECK_INT(jj_gunzip(a, la, sizeof in, &plain, &lp, &err), 0);
    free(plain);
    CHECK_INT(jj_gunzip(a, la, sizeof in - 1, &plain, &lp, &err), JJ_ERANGE);
    CHECK(strstr(err.message, "limit of 19999") != NULL);
    /* truncated and corrupted */
    CHECK_INT(jj_gunzip(a, la - 5, 0, &plain, &lp, &err), JJ_ECORRUPT);
    CHECK(strstr(err.message, "truncated") != NULL);
    a[la - 6] ^= 0xff; /* the CRC */
    CHECK_INT(jj_gunzip(a, la, 0, &plain, &lp, &err), JJ_ECORRUPT);
    CHECK_INT(jj_gunzip("hello", 5, 0, &plain, &lp, &err), JJ_ECORRUPT);
    CHECK(strstr(err.message, "not gzip") != NULL);
    CHECK_INT(jj_gzip("x", 1, 10, &plain, &lp, &err), JJ_EINVAL);
    free(a);
    free(b);
    /* empty input */
    CHECK_INT(jj_gzip("", 0, 6, &a, &la, &err), 0);
    CHECK_INT(jj_gunzip(a, la, 0, &plain, &lp, &err), 0);
    CHECK_INT(lp, 0);
    free(a);
    free(plain);
}

static void test_with_gzip_tool(void)
{
    char dir[] = "/tmp/test_gzip_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *text = "#!/bin/sh\necho hello from user-data\n";
    unsigned char *z = NULL;
    size_t zl = 0;
    jj_error err;
    CHECK_INT(jj_gzip(text, strlen(text), 9, &z, &zl, &err), 0);
    char path[256], cmd[700], buf[256];
    snprintf(path, sizeof path, "%s/ud.gz", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(z, 1, zl, f) == zl);
    if (f)
        fclose(f);
    free(z);
    snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    buf[got] = '\0';
    CHECK(p && pclose(p) == 0);
    CHECK_STR(buf, text);
    /* two members written by gzip(1) read as one stream */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'one\\n' | gzip -c > m.gz && printf 'two\\n' | gzip -9 -c >> m.gz",
             dir);
    CHECK_INT(system(cmd), 0);
    snprintf(path, sizeof path, "%s/m.gz", dir);
    f = fopen(path, "rb");
    unsigned char in[512];
    size_t n = f ? fread(in, 1, sizeof in, f) : 0;
    if (f)
        fclose(f);
    unsigned char *plain = NULL;
    size_t lp = 0;
    CHECK_INT(jj_gunzip(in, n, 0, &plain, &lp, &err), 0);
    CHECK_STR((char *)plain, "one\ntwo\n");
    free(plain);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    RUN(test_roundtrip_and_determinism);
    RUN(test_with_gzip_tool);
    return check_summary();
}
