/* test_tools.c: core/tools: tarballs as Juju builds them (headers, modes,
 * no directory entries, one-pass SHA-256), streaming round trips, and
 * extraction that refuses hostile members leaving nothing behind. Hostile
 * tarballs are written here with libarchive directly. */
#include "check.h"
#include "crypto.h"
#include "fs.h"
#include "tools.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];

static void setup(void)
{
    char *d;
    jj_error err;
    if (jj_fs_mkdtemp("/tmp/juju-test-tools-", &d, &err) != 0) {
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

static void write_file(const char *path, const char *text, mode_t mode)
{
    jj_fs_write_atomic(path, text, strlen(text), mode, NULL);
}

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len;
    if (jj_fs_read_file(path, &buf, &len, NULL) != 0)
        return NULL;
    return buf;
}

/* A pseudo-random (incompressible) file of n bytes. */
static void make_file(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    unsigned x = 777;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* "<count>:<path> <type> <mode>;..." of everything under dir. */
static char *snapshot(const char *dir)
{
    jj_fs_entry *e;
    size_t n;
    if (jj_fs_tree_snapshot(dir, &e, &n, NULL) != 0)
        return strdup("error");
    size_t cap = 64 + n * 300;
    char *out = malloc(cap);
    size_t w = (size_t)snprintf(out, cap, "%zu:", n);
    for (size_t i = 0; i < n && w < cap; i++)
        w += (size_t)snprintf(out + w, cap - w, "%s %s %o;", e[i].path,
                              jj_fs_type_name(e[i].st.type), (unsigned)e[i].st.mode);
    jj_fs_free_entries(e, n);
    return out;
}

/* A member of a hand-made tarball. */
typedef struct raw_member {
    const char *name;
    unsigned type; /* AE_IF* */
    const char *data;
    const char *link; /* symlink target, or hardlink target with hard = true */
    bool hard;
} raw_member;

static void make_raw_tar(const char *path, const raw_member *m, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_filetype(e, m[i].type);
        archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : 0644);
        if (m[i].link && m[i].hard)
            archive_entry_set_hardlink(e, m[i].link);
        else if (m[i].link)
            archive_entry_set_symlink(e, m[i].link);
        size_t len = m[i].data ? strlen(m[i].data) : 0;
        archive_entry_set_size(e, (la_int64_t)len);
        archive_write_header(a, e);
        if (len)
            archive_write_data(a, m[i].data, len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static void test_build_and_list(void)
{
    setup();
    jj_error err;
    write_file(P("jujud"), "#!/bin/sh\necho jujud\n", 0700);
    write_file(P("FORCE-VERSION"), "1.25.0.1", 0600);
    write_file(P("secret"), "s", 0640);
    struct stat sb;
    stat(P("jujud"), &sb);
    char jujud[512], fv[512], secret[512]; /* P()'s buffers get reused */
    snprintf(jujud, sizeof jujud, "%s", P("jujud"));
    snprintf(fv, sizeof fv, "%s", P("FORCE-VERSION"));
    snprintf(secret, sizeof secret, "%s", P("secret"));
    jj_tar_entry entries[] = {
        {jujud, "jujud", -1},
        {fv, "FORCE-VERSION", -1},
        {secret, "sub/dir/secret", 0600},
    };
    jj_tarball_info info;
    int fds = count_fds();
    CHECK_INT(jj_tools_build_tarball(P("out/t.tgz"), entries, 3, 6, &info, &err), JJ_ENOENT);
    CHECK_INT(jj_fs_mkdir(P("out"), 0755, &err), 0);
    CHECK_INT(jj_tools_build_tarball(P("out/t.tgz"), entries, 3, 6, &info, &err), 0);
    CHECK_INT(count_fds(), fds);
    CHECK_INT(mode_of(P("out/t.tgz")), 0644);

    unsigned char md[32];
    uint64_t size;
    CHECK_INT(jj_sha256_file(P("out/t.tgz"), md, &size, &err), 0);
    CHECK_INT(info.size, size);
    CHECK(memcmp(md, info.sha256, 32) == 0);
    CHECK(info.size < 1024); /* no block padding after the gzip stream */

    jj_tar_member *m;
    size_t n;
    CHECK_INT(jj_tools_list_tarball(P("out/t.tgz"), &m, &n, &err), 0);
    CHECK_INT(count_fds(), fds);
    CHECK_INT(n, 3); /* files only: no directory entries, not even for sub/dir */
    if (n == 3) {
        CHECK_STR(m[0].name, "jujud");
        CHECK_INT(m[0].mode, 0755);
        CHECK_INT(m[0].size, 21);
        CHECK_INT(m[0].mtime, sb.st_mtime);
        CHECK_STR(m[1].name, "FORCE-VERSION");
        CHECK_INT(m[1].mode, 0644);
        CHECK_INT(m[1].size, 8);
        CHECK_STR(m[2].name, "sub/dir/secret");
        CHECK_INT(m[2].mode, 0600);
        for (size_t i = 0; i < n; i++) {
            CHECK_INT(m[i].type, JJ_TAR_FILE);
            CHECK_STR(m[i].uname, "ubuntu");
            CHECK_STR(m[i].gname, "ubuntu");
            CHECK_INT(m[i].uid, 0);
            CHECK_INT(m[i].gid, 0);
            CHECK(m[i].target == NULL);
        }
    }
    jj_tools_free_members(m, n);
    jj_tools_free_members(NULL, 0);

    /* deterministic: no timestamp in the gzip header */
    jj_tarball_info again;
    CHECK_INT(jj_tools_build_tarball(P("out/t2.tgz"), entries, 3, 6, &again, &err), 0);
    CHECK(memcmp(again.sha256, info.sha256, 32) == 0);
    /* an empty tarball is still a valid one */
    CHECK_INT(jj_tools_build_tarball(P("out/empty.tgz"), entries, 0, 6, &again, &err), 0);
    CHECK_INT(jj_tools_list_tarball(P("out/empty.tgz"), &m, &n, &err), 0);
    CHECK_INT(n, 0);
    jj_tools_free_members(m, n);
    teardown();
}

static void test_build_levels(void)
{
    setup();
    jj_error err;
    FILE *f = fopen(P("text"), "w");
    for (int i = 0; i < 20000; i++)
        fprintf(f, "line %d of a fairly compressible file %d\n", i, i * 7 % 13);
    fclose(f);
    jj_tar_entry e[] = {{P("text"), "text", -1}};
    jj_tarball_info l1, l9;
    CHECK_INT(jj_tools_build_tarball(P("l1.tgz"), e, 1, 1, &l1, &err), 0);
    CHECK_INT(jj_tools_build_tarball(P("l9.tgz"), e, 1, 9, &l9, &err), 0);
    CHECK(l9.size < l1.size);
    CHECK_INT(jj_tools_build_tarball(P("l0.tgz"), e, 1, 0, &l1, &err), JJ_EINVAL);
    CHECK_INT(jj_tools_build_tarball(P("l10.tgz"), e, 1, 10, &l1, &err), JJ_EINVAL);
    CHECK(!jj_fs_exists(P("l0.tgz")));
    teardown();
}

static void test_build_errors_leave_nothing(void)
{
    setup();
    jj_error err;
    write_file(P("jujud"), "x", 0755);
    write_file(P("t.tgz"), "old content", 0644);
    jj_tarball_info info;
    jj_tar_entry missing[] = {{P("jujud"), "jujud", -1}, {P("nope"), "nope", -1}};
    char *before = snapshot(base);
    CHECK_INT(jj_tools_build_tarball(P("t.tgz"), missing, 2, 6, &info, &err), JJ_ENOENT);
    CHECK(strstr(err.message, P("nope")) != NULL);
    CHECK_INT(jj_tools_build_tarball(P("new.tgz"), missing, 2, 6, &info, &err), JJ_ENOENT);
    char *after = snapshot(base);
    CHECK_STR(after, before); /* old output intact, no temp file, no new file */
    free(after);
    char *old = slurp(P("t.tgz"));
    CHECK_STR(old, "old content");
    free(old);

    jj_tar_entry dir[] = {{base, "d", -1}};
    CHECK_INT(jj_tools_build_tarball(P("new.tgz"), dir, 1, 6, &info, &err), JJ_EISDIR);
    const char *bad_names[] = {"", "/abs", "../x", "a/../b", "./a", "a//b", "a/", "."};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        jj_tar_entry e[] = {{P("jujud"), bad_names[i], -1}};
        CHECK_INT(jj_tools_build_tarball(P("new.tgz"), e, 1, 6, &info, &err), JJ_EINVAL);
        CHECK(strstr(err.message, "tarball entry name") != NULL);
    }
    jj_tar_entry dup[] = {{P("jujud"), "jujud", -1}, {P("t.tgz"), "jujud", -1}};
    CHECK_INT(jj_tools_build_tarball(P("new.tgz"), dup, 2, 6, &info, &err), JJ_EINVAL);
    CHECK(strstr(err.message, "duplicate") != NULL);
    jj_tar_entry badmode[] = {{P("jujud"), "jujud", 010000}};
    CHECK_INT(jj_tools_build_tarball(P("new.tgz"), badmode, 1, 6, &info, &err), JJ_EINVAL);
    jj_tar_entry nosrc[] = {{NULL, "jujud", -1}};
    CHECK_INT(jj_tools_build_tarball(P("new.tgz"), nosrc, 1, 6, &info, &err), JJ_EINVAL);
    CHECK_INT(jj_tools_build_tarball("", nosrc, 1, 6, &info, &err), JJ_EINVAL);
    CHECK_INT(jj_tools_build_tarball(P("sub/"), dup, 1, 6, &info, &err), JJ_EISDIR);
    after = snapshot(base);
    CHECK_STR(after, before);
    free(after);
    free(before);
    teardown();
}

static void test_round_trip_streaming(void)
{
    setup();
    jj_error err;
    const size_t big = 8u << 20;
    make_file(P("jujud"), big);
    chmod(P("jujud"), 0755);
    write_file(P("FORCE-VERSION"), "1.25.0", 0644);
    jj_tar_entry e[] = {{P("jujud"), "jujud", -1}, {P("FORCE-VERSION"), "FORCE-VERSION", -1}};
    jj_tarball_info info;
    CHECK_INT(jj_tools_build_tarball(P("t.tgz"), e, 2, 1, &info, &err), 0);
    char **names;
    size_t n;
    CHECK_INT(jj_tools_extract_tarball(P("t.tgz"), P("dest/1.25.0-trusty-amd64"), &names, &n,
                                       &err), JJ_ENOENT); /* parent missing */
    CHECK(!jj_fs_exists(P("dest")));
    CHECK_INT(jj_fs_mkdir(P("dest"), 0755, &err), 0);
    mode_t old = umask(077);
    CHECK_INT(jj_tools_extract_tarball(P("t.tgz"), P("dest/1.25.0-trusty-amd64"), &names, &n,
                                       &err), 0);
    umask(old);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(names[0], "jujud");
        CHECK_STR(names[1], "FORCE-VERSION");
    }
    jj_fs_free_names(names, n);
    CHECK_INT(mode_of(P("dest/1.25.0-trusty-amd64")), 0755);
    CHECK_INT(mode_of(P("dest/1.25.0-trusty-amd64/jujud")), 0755);
    CHECK_INT(mode_of(P("dest/1.25.0-trusty-amd64/FORCE-VERSION")), 0644);
    unsigned char a[32], b[32];
    uint64_t sa, sb;
    CHECK_INT(jj_sha256_file(P("jujud"), a, &sa, &err), 0);
    CHECK_INT(jj_sha256_file(P("dest/1.25.0-trusty-amd64/jujud"), b, &sb, &err), 0);
    CHECK_INT(sa, big);
    CHECK_INT(sb, big);
    CHECK(memcmp(a, b, 32) == 0);
    char *fv = slurp(P("dest/1.25.0-trusty-amd64/FORCE-VERSION"));
    CHECK_STR(fv, "1.25.0");
    free(fv);
    /* only the extracted files: the temp dir is gone */
    char *snap = snapshot(P("dest"));
    CHECK_STR(snap, "3:1.25.0-trusty-amd64 dir 755;1.25.0-trusty-amd64/FORCE-VERSION file 644;"
                    "1.25.0-trusty-amd64/jujud file 755;");
    free(snap);
    teardown();
}

static void test_extract_layout(void)
{
    setup();
    jj_error err;
    raw_member m[] = {
        {"./", AE_IFDIR, NULL, NULL, false},
        {"./bin/", AE_IFDIR, NULL, NULL, false},
        {"./bin/jujud", AE_IFREG, "new", NULL, false},
        {"a//b/./c", AE_IFREG, "c", NULL, false},
        {"empty/", AE_IFDIR, NULL, NULL, false},
        {"bin/jujud", AE_IFREG, "newer", NULL, false},
    };
    make_raw_tar(P("t.tgz"), m, sizeof m / sizeof m[0]);
    CHECK_INT(jj_fs_mkdir_p(P("dest/bin"), 0700, &err), 0);
    write_file(P("dest/bin/jujud"), "old", 0644);
    write_file(P("dest/keep"), "k", 0644);
    char **names;
    size_t n;
    int fds = count_fds();
    CHECK_INT(jj_tools_extract_tarball(P("t.tgz"), P("dest"), &names, &n, &err), 0);
    CHECK_INT(count_fds(), fds);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(names[0], "bin");
        CHECK_STR(names[1], "bin/jujud");
        CHECK_STR(names[2], "a/b/c");
        CHECK_STR(names[3], "empty");
    }
    jj_fs_free_names(names, n);
    char *s = slurp(P("dest/bin/jujud"));
    CHECK_STR(s, "newer"); /* later member wins, existing file replaced */
    free(s);
    s = slurp(P("dest/a/b/c"));
    CHECK_STR(s, "c");
    free(s);
    CHECK_INT(mode_of(P("dest/a")), 0755);
    CHECK_INT(mode_of(P("dest/empty")), 0755);
    CHECK_INT(mode_of(P("dest/bin")), 0700); /* existing directories are left alone */
    CHECK(jj_fs_exists(P("dest/keep")));
    teardown();
}

/* Each hostile tarball is refused with EINVAL naming the member, and
 * neither dest nor anything outside it changes. */
static void test_extract_refuses_hostile(void)
{
    setup();
    jj_error err;
    CHECK_INT(jj_fs_mkdir(P("dest"), 0755, &err), 0);
    write_file(P("dest/existing"), "e", 0644);
    struct {
        raw_member m[2];
        const char *shown;
        const char *why;
    } cases[] = {
        {{{"good", AE_IFREG, "g", NULL, false}, {"../x", AE_IFREG, "evil", NULL, false}},
         "\"../x\"", "\"..\" component"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"a/../../x", AE_IFREG, "evil", NULL, false}},
         "\"a/../../x\"", "\"..\" component"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"/tmp/x", AE_IFREG, "evil", NULL, false}},
         "\"/tmp/x\"", "absolute name"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"lnk", AE_IFLNK, NULL, "/etc", false}},
         "\"lnk\"", "link members"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"hard", AE_IFREG, NULL, "good", true}},
         "\"hard\"", "hardlink members"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"dev", AE_IFCHR, NULL, NULL, false}},
         "\"dev\"", "char members"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"blk", AE_IFBLK, NULL, NULL, false}},
         "\"blk\"", "block members"},
        {{{"good", AE_IFREG, "g", NULL, false}, {"fifo", AE_IFIFO, NULL, NULL, false}},
         "\"fifo\"", "fifo members"},
        {{{"good", AE_IFREG, "g", NULL, false}, {".", AE_IFREG, "x", NULL, false}},
         "\".\"", "without a name"},
    };
    char *before = snapshot(base);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_raw_tar(P("evil.tgz"), cases[i].m, 2);
        char *evil_before = snapshot(base);
        char **names = (char **)&err;
        size_t n = 99;
        CHECK_INT(jj_tools_extract_tarball(P("evil.tgz"), P("dest"), &names, &n, &err), JJ_EINVAL);
        CHECK(names == NULL);
        CHECK_INT(n, 0);
        if (!strstr(err.message, cases[i].why))
            fprintf(stderr, "case %zu: %s\n", i, err.message);
        CHECK(strstr(err.message, "refusing to extract") != NULL);
        CHECK(strstr(err.message, cases[i].shown) != NULL);
        CHECK(strstr(err.message, cases[i].why) != NULL);
        CHECK(strstr(err.message, P("evil.tgz")) != NULL);
        char *after = snapshot(base);
        CHECK_STR(after, evil_before);
        free(after);
        free(evil_before);
        /* also into a destination that does not exist yet: it is not left */
        CHECK_INT(jj_tools_extract_tarball(P("evil.tgz"), P("fresh"), &names, &n, &err),
                  JJ_EINVAL);
        CHECK(!jj_fs_exists(P("fresh")));
        jj_fs_remove(P("evil.tgz"), NULL);
    }
    char *after = snapshot(base);
    CHECK_STR(after, before);
    free(after);
    free(before);
    teardown();
}

static void test_extract_conflicts(void)
{
    setup();
    jj_error err;
    raw_member m[] = {
        {"good", AE_IFREG, "g", NULL, false},
        {"sub/file", AE_IFREG, "f", NULL, false},
    };
    make_raw_tar(P("t.tgz"), m, 2);
    char **names;
    size_t n;
    /* a symlink where a parent directory goes is not followed */
    CHECK_INT(jj_fs_mkdir(P("dest"), 0755, &err), 0);
    CHECK_INT(jj_fs_mkdir(P("elsewhere"), 0755, &err), 0);
    CHECK_INT(jj_fs_symlink(P("elsewhere"), P("dest/sub"), &err), 0);
    char *before = snapshot(base);
    CHECK_INT(jj_tools_extract_tarball(P("t.tgz"), P("dest"), &names, &n, &err), JJ_ENOTDIR);
    CHECK(strstr(err.message, "sub/file") != NULL);
    char *after = snapshot(base);
    CHECK_STR(after, before);
    free(after);
    free(before);
    jj_fs_remove(P("dest/sub"), NULL);
    /* a directory where a file goes */
    CHECK_INT(jj_fs_mkdir_p(P("dest/good/x"), 0755, &err), 0);
    before = snapshot(base);
    CHECK_INT(jj_tools_extract_tarball(P("t.tgz"), P("dest"), &names, &n, &err), JJ_EISDIR);
    after = snapshot(base);
    CHECK_STR(after, before);
    free(after);
    free(before);
    teardown();
}

static void test_bad_input_files(void)
{
    setup();
    jj_error err;
    jj_tar_member *m;
    char **names;
    size_t n;
    CHECK_INT(jj_tools_list_tarball(P("missing.tgz"), &m, &n, &err), JJ_ENOENT);
    CHECK(strstr(err.message, P("missing.tgz")) != NULL);
    CHECK_INT(jj_tools_list_tarball(base, &m, &n, &err), JJ_EISDIR);
    write_file(P("junk"), "this is not a tarball at all, not even close to one", 0644);
    CHECK_INT(jj_tools_list_tarball(P("junk"), &m, &n, &err), JJ_ECORRUPT);
    CHECK(strstr(err.message, P("junk")) != NULL);
    CHECK_INT(jj_tools_extract_tarball(P("missing.tgz"), P("dest"), &names, &n, &err), JJ_ENOENT);
    CHECK(!jj_fs_exists(P("dest")));
    CHECK_INT(jj_tools_extract_tarball(P("junk"), P("dest"), &names, &n, &err), JJ_ECORRUPT);
    CHECK(!jj_fs_exists(P("dest")));
    CHECK_INT(jj_tools_extract_tarball(P("junk"), "", &names, &n, &err), JJ_EINVAL);

    /* a truncated tarball: the good first member must not be left */
    make_file(P("big"), 300000);
    jj_tar_entry e[] = {{P("junk"), "first", -1}, {P("big"), "big", -1}};
    jj_tarball_info info;
    CHECK_INT(jj_tools_build_tarball(P("t.tgz"), e, 2, 6, &info, &err), 0);
    CHECK_INT(truncate(P("t.tgz"), (off_t)(info.size / 2)), 0);
    CHECK_INT(jj_fs_mkdir(P("dest"), 0755, &err), 0);
    CHECK(jj_tools_extract_tarball(P("t.tgz"), P("dest"), &names, &n, &err) < 0);
    CHECK_INT(err.code, JJ_ECORRUPT);
    char *snap = snapshot(P("dest"));
    CHECK_STR(snap, "0:");
    free(snap);
    teardown();
}

static void test_list_types(void)
{
    setup();
    jj_error err;
    raw_member m[] = {
        {"d/", AE_IFDIR, NULL, NULL, false},
        {"d/f", AE_IFREG, "abc", NULL, false},
        {"l", AE_IFLNK, NULL, "d/f", false},
        {"h", AE_IFREG, NULL, "d/f", true},
        {"c", AE_IFCHR, NULL, NULL, false},
        {"p", AE_IFIFO, NULL, NULL, false},
    };
    make_raw_tar(P("t.tgz"), m, sizeof m / sizeof m[0]);
    jj_tar_member *v;
    size_t n;
    CHECK_INT(jj_tools_list_tarball(P("t.tgz"), &v, &n, &err), 0);
    CHECK_INT(n, 6);
    if (n == 6) {
        CHECK_STR(v[0].name, "d/");
        CHECK_STR(jj_tar_type_name(v[0].type), "dir");
        CHECK_STR(jj_tar_type_name(v[1].type), "file");
        CHECK_INT(v[1].size, 3);
        CHECK_STR(jj_tar_type_name(v[2].type), "link");
        CHECK_STR(v[2].target, "d/f");
        CHECK_STR(jj_tar_type_name(v[3].type), "hardlink");
        CHECK_STR(v[3].target, "d/f");
        CHECK_STR(jj_tar_type_name(v[4].type), "char");
        CHECK_STR(jj_tar_type_name(v[5].type), "fifo");
    }
    jj_tools_free_members(v, n);
    CHECK_STR(jj_tar_type_name(JJ_TAR_BLOCK), "block");
    CHECK_STR(jj_tar_type_name(JJ_TAR_SOCKET), "socket");
    CHECK_STR(jj_tar_type_name(JJ_TAR_OTHER), "other");
    /* a plain (uncompressed) tar is read too */
    struct archive *a = archive_write_new();
    archive_write_set_format_ustar(a);
    archive_write_open_filename(a, P("plain.tar"));
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "x");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 0);
    archive_write_header(a, e);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    CHECK_INT(jj_tools_list_tarball(P("plain.tar"), &v, &n, &err), 0);
    CHECK_INT(n, 1);
    jj_tools_free_members(v, n);
    teardown();
}

int main(void)
{
    RUN(test_build_and_list);
    RUN(test_build_levels);
    RUN(test_build_errors_leave_nothing);
    RUN(test_round_trip_streaming);
    RUN(test_extract_layout);
    RUN(test_extract_refuses_hostile);
    RUN(test_extract_conflicts);
    RUN(test_bad_input_files);
    RUN(test_list_types);
    return check_summary();
}
