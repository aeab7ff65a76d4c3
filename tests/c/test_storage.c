/* test_storage.c: core/storage: name validation, atomic puts that leave no
 * temp files, streamed put_file/get_to_file, listing with prefixes, URLs,
 * removal and remove_all. */
#include "check.h"
#include "crypto.h"
#include "fs.h"
#include "storage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];

static void setup(void)
{
    char *d;
    jj_error err;
    if (jj_fs_mkdtemp("/tmp/juju-test-storage-", &d, &err) != 0) {
        fprintf(stderr, "mkdtemp: %s\n", err.message);
        exit(2);
    }
    snprintf(base, sizeof base, "%s", d);
    free(d);
}

static void teardown(void)
{
    jj_fs_remove_tree(base, NULL);
}

static const char *P(const char *rel)
{
    static char bufs[64][512];
    static int next;
    char *b = bufs[next++ % 64];
    snprintf(b, 512, "%s/%s", base, rel);
    return b;
}

static int mode_of(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return -1;
    return (int)(sb.st_mode & 07777);
}

static jj_storage *open_store(const char *rel)
{
    jj_storage *s = NULL;
    jj_error err;
    if (jj_storage_open_dir(P(rel), 0600, 0700, &s, &err) != 0)
        fprintf(stderr, "open_dir: %s\n", err.message);
    return s;
}

/* Number of names under dir (recursively) that look like temp files. */
static int count_temp_files(const char *dir)
{
    jj_fs_entry *e;
    size_t n;
    if (jj_fs_tree_snapshot(dir, &e, &n, NULL) != 0)
        return -1;
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(e[i].path, ".tmp-"))
            found++;
    jj_fs_free_entries(e, n);
    return found;
}

static void test_check_name(void)
{
    jj_error err;
    const char *good[] = {"a", "provider-state", "tools/released/juju-1.25.0-trusty-amd64.tgz",
                          ".hidden", "a..b", "..a", "a/.b", "a b", "x/y/z"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_INT(jj_storage_check_name(good[i], strlen(good[i]), &err), 0);
    }
    const char *bad[] = {"", "/a", "a//b", "a/", "./a", "a/.", "a/../b", "..", ".", "a\\b",
                         "../x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(jj_storage_check_name(bad[i], strlen(bad[i]), &err), JJ_EINVAL);
        CHECK(strstr(err.message, "invalid storage name") != NULL);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        CHECK(strstr(err.message, quoted) != NULL);
    }
    CHECK_INT(jj_storage_check_name("a\0b", 3, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "NUL") != NULL);
    CHECK_INT(jj_storage_check_name("a/../b", 6, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "\"..\" component") != NULL);
}

static void test_open_dir(void)
{
    setup();
    jj_error err;
    mode_t old = umask(0);
    jj_storage *s = open_store("new/root");
    umask(old);
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(mode_of(P("new/root")), 0700);
        CHECK_STR(jj_storage_root(s), P("new/root"));
        jj_storage_close(s);
    }
    /* a relative path becomes absolute */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK_INT(chdir(base), 0);
    s = NULL;
    CHECK_INT(jj_storage_open_dir("rel", 0600, 0700, &s, &err), 0);
    CHECK_INT(chdir(cwd), 0);
    if (s) {
        CHECK_STR(jj_storage_root(s), P("rel"));
        jj_storage_close(s);
    }
    /* a file in the way */
    CHECK_INT(jj_fs_write_atomic(P("file"), "x", 1, 0600, &err), 0);
    s = NULL;
    CHECK(jj_storage_open_dir(P("file"), 0600, 0700, &s, &err) < 0);
    CHECK(s == NULL);
    CHECK(strstr(err.message, P("file")) != NULL);
    CHECK_INT(jj_storage_open_dir("", 0600, 0700, &s, &err), JJ_EINVAL);
    jj_storage_close(NULL);
    teardown();
}

static void test_put_get(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    char *data;
    size_t len;
    mode_t old = umask(0277); /* modes are exact whatever the umask */
    CHECK_INT(jj_storage_put(s, "provider-state", "state-instances: []\n", 20, -1, &err), 0);
    CHECK_INT(jj_storage_put(s, "tools/released/t.tgz", "a\0b", 3, 0644, &err), 0);
    umask(old);
    CHECK_INT(mode_of(P("st/provider-state")), 0600);
    CHECK_INT(mode_of(P("st/tools/released/t.tgz")), 0644);
    CHECK_INT(mode_of(P("st/tools/released")), 0700);
    CHECK_INT(jj_storage_get(s, "provider-state", &data, &len, &err), 0);
    CHECK_INT(len, 20);
    CHECK_STR(data, "state-instances: []\n");
    free(data);
    CHECK_INT(jj_storage_get(s, "tools/released/t.tgz", &data, &len, &err), 0);
    CHECK_INT(len, 3);
    CHECK(memcmp(data, "a\0b", 3) == 0);
    free(data);
    /* overwrite */
    CHECK_INT(jj_storage_put(s, "provider-state", "new", 3, -1, &err), 0);
    CHECK_INT(jj_storage_get(s, "provider-state", &data, &len, &err), 0);
    CHECK_STR(data, "new");
    free(data);
    /* errors */
    CHECK_INT(jj_storage_get(s, "missing", &data, &len, &err), JJ_ENOENT);
    CHECK(data == NULL);
    CHECK(strstr(err.message, "missing") != NULL);
    CHECK_INT(jj_storage_get(s, "provider-state/x", &data, &len, &err), JJ_ENOENT);
    CHECK_INT(jj_storage_get(s, "tools", &data, &len, &err), JJ_EISDIR);
    CHECK_INT(jj_storage_get(s, "../escape", &data, &len, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "../escape") != NULL);
    CHECK_INT(jj_storage_put(s, "/etc/x", "x", 1, -1, &err), JJ_EINVAL);
    CHECK_INT(jj_storage_put(s, "a//b", "x", 1, -1, &err), JJ_EINVAL);
    CHECK(!jj_fs_exists(P("st/a")));
    /* failures leave no temp file and no object */
    CHECK_INT(jj_storage_put(s, "tools", "x", 1, -1, &err), JJ_EISDIR);
    CHECK(strstr(err.message, "put tools") != NULL);
    CHECK_INT(jj_storage_put(s, "provider-state/sub", "x", 1, -1, &err), JJ_ENOTDIR);
    CHECK_INT(count_temp_files(P("st")), 0);
    CHECK_INT(count_temp_files(base), 0);
    jj_storage_close(s);
    teardown();
}

/* A file of n bytes with a non-repeating pattern. */
static void make_file(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
}

static void test_put_file_get_to_file(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    make_file(P("src.bin"), 3 * 65536 + 17);
    unsigned char want[32], got[32], again[32];
    uint64_t size = 0, size2 = 0;
    CHECK_INT(jj_sha256_file(P("src.bin"), want, &size2, &err), 0);
    CHECK_INT(jj_storage_put_file(s, "tools/released/juju.tgz", P("src.bin"), 0644, &size, got,
                                  &err), 0);
    CHECK_INT(size, 3 * 65536 + 17);
    CHECK(memcmp(want, got, 32) == 0);
    CHECK_INT(mode_of(P("st/tools/released/juju.tgz")), 0644);
    CHECK_INT(jj_sha256_file(P("st/tools/released/juju.tgz"), again, &size2, &err), 0);
    CHECK(memcmp(want, again, 32) == 0);
    /* NULL outputs are fine */
    CHECK_INT(jj_storage_put_file(s, "copy", P("src.bin"), -1, NULL, NULL, &err), 0);
    CHECK_INT(mode_of(P("st/copy")), 0600);

    size = 0;
    CHECK_INT(jj_storage_get_to_file(s, "tools/released/juju.tgz", P("out.bin"), -1, &size,
                                     &err), 0);
    CHECK_INT(size, 3 * 65536 + 17);
    CHECK_INT(mode_of(P("out.bin")), 0644);
    CHECK_INT(jj_sha256_file(P("out.bin"), again, &size2, &err), 0);
    CHECK(memcmp(want, again, 32) == 0);
    CHECK_INT(jj_storage_get_to_file(s, "copy", P("out2.bin"), 0640, NULL, &err), 0);
    CHECK_INT(mode_of(P("out2.bin")), 0640);

    /* errors: nothing created, no temp files */
    CHECK_INT(jj_storage_put_file(s, "x", P("nonexistent"), -1, &size, got, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "nonexistent") != NULL);
    CHECK(!jj_fs_exists(P("st/x")));
    CHECK_INT(jj_storage_put_file(s, "x", base, -1, &size, got, &err), JJ_EISDIR);
    CHECK_INT(jj_storage_put_file(s, "../x", P("src.bin"), -1, &size, got, &err), JJ_EINVAL);
    CHECK_INT(jj_storage_get_to_file(s, "missing", P("out3.bin"), -1, &size, &err), JJ_ENOENT);
    CHECK(!jj_fs_exists(P("out3.bin")));
    CHECK_INT(jj_storage_get_to_file(s, "copy", P("nodir/out.bin"), -1, &size, &err), JJ_ENOENT);
    CHECK_INT(jj_storage_get_to_file(s, "tools", P("out4.bin"), -1, &size, &err), JJ_EISDIR);
    CHECK_INT(count_temp_files(base), 0);
    jj_storage_close(s);
    teardown();
}

static void test_exists_size(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    CHECK_INT(jj_storage_put(s, "a/b", "hello", 5, -1, &err), 0);
    bool e = true;
    uint64_t size = 1;
    CHECK_INT(jj_storage_exists(s, "a/b", &e, &err), 0);
    CHECK(e);
    CHECK_INT(jj_storage_exists(s, "a", &e, &err), 0);
    CHECK(!e); /* a prefix, not an object */
    CHECK_INT(jj_storage_exists(s, "nope", &e, &err), 0);
    CHECK(!e);
    CHECK_INT(jj_storage_exists(s, "a/b/c", &e, &err), 0);
    CHECK(!e);
    CHECK_INT(jj_storage_exists(s, "a/../a/b", &e, &err), JJ_EINVAL);
    CHECK_INT(jj_storage_size(s, "a/b", &size, &err), 0);
    CHECK_INT(size, 5);
    CHECK_INT(jj_storage_size(s, "nope", &size, &err), JJ_ENOENT);
    CHECK(strstr(err.message, "nope") != NULL);
    CHECK_INT(jj_storage_size(s, "a/b/c", &size, &err), JJ_ENOENT);
    CHECK_INT(jj_storage_size(s, "a", &size, &err), JJ_EISDIR);
    CHECK_INT(jj_storage_size(s, "", &size, &err), JJ_EINVAL);
    jj_storage_close(s);
    teardown();
}

static void test_list(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    const char *names[] = {"tools/streams/v1/index.json", "provider-state",
                           "tools/released/juju-1.25.0-trusty-amd64.tgz",
                           "tools/releases/juju-1.24.7-trusty-amd64.tgz", "tools-x", "b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK_INT(jj_storage_put(s, names[i], "x", 1, -1, &err), 0);
    /* neither a crash's leftover temp file nor a symlink is an object */
    CHECK_INT(jj_fs_write_atomic(P("st/tools/.juju.tgz.tmp-AbC123"), "t", 1, 0600, &err), 0);
    CHECK_INT(jj_fs_symlink(P("st/b"), P("st/tools/link"), &err), 0);
    CHECK_INT(jj_fs_symlink(P("st/tools"), P("st/dirlink"), &err), 0);
    CHECK_INT(jj_fs_mkdir_p(P("st/empty/dir"), 0700, &err), 0);

    char **v;
    size_t n;
    CHECK_INT(jj_storage_list(s, NULL, &v, &n, &err), 0);
    CHECK_INT(n, 6);
    if (n == 6) {
        CHECK_STR(v[0], "b");
        CHECK_STR(v[1], "provider-state");
        CHECK_STR(v[2], "tools-x");
        CHECK_STR(v[3], "tools/released/juju-1.25.0-trusty-amd64.tgz");
        CHECK_STR(v[4], "tools/releases/juju-1.24.7-trusty-amd64.tgz");
        CHECK_STR(v[5], "tools/streams/v1/index.json");
    }
    jj_fs_free_names(v, n);
    CHECK_INT(jj_storage_list(s, "tools/", &v, &n, &err), 0);
    CHECK_INT(n, 3);
    jj_fs_free_names(v, n);
    CHECK_INT(jj_storage_list(s, "tools", &v, &n, &err), 0);
    CHECK_INT(n, 4);
    jj_fs_free_names(v, n);
    CHECK_INT(jj_storage_list(s, "tools/release", &v, &n, &err), 0);
    CHECK_INT(n, 2);
    jj_fs_free_names(v, n);
    CHECK_INT(jj_storage_list(s, "tools/released/", &v, &n, &err), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(v[0], "tools/released/juju-1.25.0-trusty-amd64.tgz");
    jj_fs_free_names(v, n);
    CHECK_INT(jj_storage_list(s, "zzz", &v, &n, &err), 0);
    CHECK_INT(n, 0);
    jj_fs_free_names(v, n);
    CHECK_INT(jj_storage_list(s, "", &v, &n, &err), 0);
    CHECK_INT(n, 6);
    jj_fs_free_names(v, n);
    jj_storage_close(s);
    teardown();
}

static void test_remove(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    CHECK_INT(jj_storage_put(s, "a/b", "x", 1, -1, &err), 0);
    CHECK_INT(jj_storage_remove(s, "a/b", &err), 0);
    CHECK(!jj_fs_exists(P("st/a/b")));
    CHECK_INT(jj_storage_remove(s, "a/b", &err), 0);      /* missing is fine */
    CHECK_INT(jj_storage_remove(s, "x/y/z", &err), 0);
    CHECK_INT(jj_storage_put(s, "f", "x", 1, -1, &err), 0);
    CHECK_INT(jj_storage_remove(s, "f/g", &err), 0);
    CHECK_INT(jj_storage_remove(s, "a", &err), JJ_EISDIR); /* a prefix, not an object */
    CHECK_INT(jj_storage_remove(s, "../f", &err), JJ_EINVAL);
    CHECK(jj_fs_exists(P("st/f")));
    jj_storage_close(s);
    teardown();
}

static void test_remove_all(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    CHECK_INT(jj_storage_put(s, "a/b/c", "x", 1, -1, &err), 0);
    CHECK_INT(jj_storage_put(s, "d", "x", 1, -1, &err), 0);
    CHECK_INT(jj_storage_remove_all(s, &err), 0);
    CHECK(!jj_fs_exists(P("st")));
    char **v;
    size_t n = 9;
    CHECK_INT(jj_storage_list(s, NULL, &v, &n, &err), 0);
    CHECK_INT(n, 0);
    jj_fs_free_names(v, n);
    bool e = true;
    CHECK_INT(jj_storage_exists(s, "d", &e, &err), 0);
    CHECK(!e);
    CHECK_INT(jj_storage_remove_all(s, &err), 0); /* again: nothing to do */
    /* the storage is usable again: the root comes back 0700 */
    CHECK_INT(jj_storage_put(s, "x/y", "z", 1, -1, &err), 0);
    CHECK_INT(mode_of(P("st")), 0700);
    CHECK_INT(jj_storage_list(s, NULL, &v, &n, &err), 0);
    CHECK_INT(n, 1);
    jj_fs_free_names(v, n);
    jj_storage_close(s);
    teardown();
}

static void test_url_path(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    char *out;
    char want[600];
    CHECK_INT(jj_storage_path(s, "tools/a.tgz", &out, &err), 0);
    CHECK_STR(out, P("st/tools/a.tgz"));
    free(out);
    CHECK_INT(jj_storage_url(s, "tools/released/juju-1.25.0-trusty-amd64.tgz", &out, &err), 0);
    snprintf(want, sizeof want, "file://%s", P("st/tools/released/juju-1.25.0-trusty-amd64.tgz"));
    CHECK_STR(out, want);
    free(out);
    CHECK_INT(jj_storage_url(s, "a b/c%d#e?\xc3\xa9~", &out, &err), 0);
    snprintf(want, sizeof want, "file://%s", P("st/a%20b/c%25d%23e%3F%C3%A9~"));
    CHECK_STR(out, want);
    free(out);
    out = (char *)"unchanged";
    CHECK_INT(jj_storage_url(s, "../x", &out, &err), JJ_EINVAL);
    CHECK(out == NULL);
    CHECK_INT(jj_storage_path(s, "/x", &out, &err), JJ_EINVAL);
    jj_storage_close(s);
    teardown();
}

/* put_file_link: a hard link when the modes agree (the object shares the
 * source's inode and survives its removal), a copy when they do not. */
static void test_put_file_link(void)
{
    setup();
    jj_error err;
    jj_storage *s = open_store("st");
    make_file(P("src.bin"), 2 * 65536 + 5);
    CHECK_INT(chmod(P("src.bin"), 0644), 0);
    unsigned char want[32], got[32];
    uint64_t size = 0, size2 = 0;
    bool linked = false;
    CHECK_INT(jj_sha256_file(P("src.bin"), want, &size2, &err), 0);
    CHECK_INT(jj_storage_put_file_link(s, "tools/t.tgz", P("src.bin"), 0644, &size, got, &linked, &err), 0);
    CHECK(linked);
    CHECK_INT(size, 2 * 65536 + 5);
    CHECK(memcmp(want, got, 32) == 0);
    struct stat a, b;
    CHECK_INT(stat(P("src.bin"), &a), 0);
    CHECK_INT(stat(P("st/tools/t.tgz"), &b), 0);
    CHECK(a.st_ino == b.st_ino);
    CHECK_INT((int)a.st_nlink, 2);
    /* again over the existing object: replaced, still one extra name */
    CHECK_INT(jj_storage_put_file_link(s, "tools/t.tgz", P("src.bin"), 0644, &size, got, &linked, &err), 0);
    CHECK(linked);
    CHECK_INT(stat(P("src.bin"), &a), 0);
    CHECK_INT((int)a.st_nlink, 2);
    /* another mode: copied */
    CHECK_INT(jj_storage_put_file_link(s, "private", P("src.bin"), -1, &size, got, &linked, &err), 0);
    CHECK(!linked);
    CHECK_INT(mode_of(P("st/private")), 0600);
    CHECK(memcmp(want, got, 32) == 0);
    CHECK_INT(stat(P("st/private"), &b), 0);
    CHECK(a.st_ino != b.st_ino);
    CHECK_INT(jj_storage_put_file_link(s, "x", P("nonexistent"), 0644, &size, got, &linked, &err), JJ_ENOENT);
    CHECK(!jj_fs_exists(P("st/x")));
    CHECK_INT(count_temp_files(base), 0);
    /* the object outlives the source's name */
    CHECK_INT(unlink(P("src.bin")), 0);
    unsigned char again[32];
    CHECK_INT(jj_sha256_file(P("st/tools/t.tgz"), again, &size2, &err), 0);
    CHECK(memcmp(want, again, 32) == 0);
    jj_storage_close(s);
    teardown();
}

int main(void)
{
    RUN(test_check_name);
    RUN(test_open_dir);
    RUN(test_put_get);
    RUN(test_put_file_get_to_file);
    RUN(test_put_file_link);
    RUN(test_exists_size);
    RUN(test_list);
    RUN(test_remove);
    RUN(test_remove_all);
    RUN(test_url_path);
    return check_summary();
}
